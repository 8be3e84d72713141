//! The incident lifecycle of a fingerprint, and the one account of what a decision does.
//!
//! What Sparky remembers of each fingerprint between its events is a [`Track`]: the alert's
//! last state, its recent state changes (to tell a flapping alert), the last decision (to
//! group a storm), and the L1 run whose verification a re-fire would undo. Three pure steps
//! move it, and every caller uses the same three:
//!
//! - [`arrive`], before deciding: the event's own state change (a re-fire starts flapping, or
//!   undoes a run that the resolution had verified);
//! - [`effects`], after deciding: what the decision does to the state (incidents opened,
//!   joined, closed; deploys and runs recorded; the track);
//! - [`settle`], with no event: a flapping fingerprint that went quiet stops flapping, and its
//!   incident closes when the alert is resolved.
//!
//! The simulator (`sparky test`, `replay`, `explain`) applies the [`Effects`] to its
//! [`super::MemoryContext`]; the daemon applies the very same ones to the batch's
//! `MemoryContext` and writes them to the store in the decision's transaction. So the
//! simulator predicts the daemon, and a differential test holds them to it.

use super::context::{OpenIncident, Outcome, Run, Settings};
use super::decision::{Decision, IncidentEffect, L1Mode, Level};
use super::guards::run_keys;
use crate::compile::VerifyStep;
use crate::event::{Event, Kind, Status};
use crate::graph::RuleGraph;
use crate::knowledge::{Deploy, PastIncident};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many state changes a track keeps at most, whatever the window: a fingerprint that
/// changes state every second must not grow its row without bound.
const MAX_CHANGES: usize = 200;

/// How many state changes a flap report names (the latest); the others are counted.
const SHOWN_CHANGES: usize = 20;

/// When a fingerprint flaps: at least `start` state changes (firing ⇄ resolved) within
/// `window` start it, at a re-fire; `stop` or fewer end it. Two thresholds, so that flapping
/// does not itself flap (Nagios' and Icinga's high and low thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Flapping {
    pub window: super::context::Span,
    pub start: usize,
    pub stop: usize,
}

impl Default for Flapping {
    fn default() -> Self {
        Flapping { window: super::context::Span::minutes(60), start: 5, stop: 2 }
    }
}

impl Flapping {
    /// Whether the thresholds make sense; the error says how to fix them.
    pub fn check(&self) -> Result<(), String> {
        if self.start < 2 {
            return Err(format!(
                "`start` is {}: a fingerprint needs at least 2 state changes to flap; write e.g. `start: 5`",
                self.start
            ));
        }
        if self.stop >= self.start {
            return Err(format!(
                "`stop` ({}) must be below `start` ({}), or flapping would stop as soon as it starts",
                self.stop, self.start
            ));
        }
        if self.window.millis == 0 {
            return Err("`window` is 0s: no state change would ever be counted; write e.g. `window: 1h`".into());
        }
        Ok(())
    }
}

/// A state change of a fingerprint's alert.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub at: DateTime<Utc>,
    pub status: Status,
}

/// The last decision on a fingerprint that was not a repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub level: String,
    #[serde(default)]
    pub playbook: Option<String>,
    pub at: DateTime<Utc>,
}

/// An incident key with a time: the L1 run of `key` whose verification (the alert's own
/// resolution) a re-fire before `at` undoes; or the incident `key`, closed at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyAt {
    pub key: String,
    pub at: DateTime<Utc>,
}

/// What Sparky remembers of one fingerprint between its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Track {
    /// The alert's last state (`firing` or `resolved`; acknowledgements are not states).
    pub status: Option<Status>,
    /// Its state changes within the flapping window, oldest first.
    pub changes: Vec<Change>,
    /// Since when it flaps.
    pub flapping_since: Option<DateTime<Utc>>,
    /// The last decision that was not a repeat (what a storm is grouped with).
    pub last: Option<Seen>,
    /// The last L1 applied on it whose verification is the resolution, and until when.
    pub verifying: Option<KeyAt>,
    /// The last incident a resolution closed, and when.
    pub closed: Option<KeyAt>,
    /// Whether the event just arrived changed the state (only right after [`arrive`]).
    #[serde(skip)]
    pub changed: bool,
}

impl Track {
    pub fn is_flapping(&self) -> bool {
        self.flapping_since.is_some()
    }

    /// The state changes within `window` back from `now`.
    fn forget_before(&mut self, now: DateTime<Utc>, window: super::context::Span) {
        let from = now - chrono::Duration::milliseconds(window.millis.min(i64::MAX as u64) as i64);
        self.changes.retain(|c| c.at > from);
        if self.changes.len() > MAX_CHANGES {
            self.changes.drain(..self.changes.len() - MAX_CHANGES);
        }
    }
}

/// The flapping of a fingerprint as a decision shows it (in the trace, the escalation
/// package and the stored decision).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlapReport {
    pub since: DateTime<Utc>,
    /// The state changes counted, oldest first.
    pub changes: Vec<Change>,
    pub window: super::context::Span,
    pub start: usize,
    pub stop: usize,
}

impl FlapReport {
    pub fn of(track: &Track, settings: &Flapping) -> Option<FlapReport> {
        Some(FlapReport {
            since: track.flapping_since?,
            changes: track.changes.clone(),
            window: settings.window,
            start: settings.start,
            stop: settings.stop,
        })
    }

    /// `6 state changes within 1h (flapping from 5, until 2 or fewer): firing at …`, the
    /// latest [`SHOWN_CHANGES`] of them.
    pub fn describe(&self) -> String {
        let skip = self.changes.len().saturating_sub(SHOWN_CHANGES);
        let mut changes: Vec<String> = self.changes[skip..]
            .iter()
            .map(|c| format!("{} at {}", c.status.as_str(), c.at.format("%H:%M:%S")))
            .collect();
        if skip > 0 {
            changes.insert(0, format!("{skip} earlier"));
        }
        format!(
            "{} state changes within {} (flapping from {}, until {} or fewer): {}",
            self.changes.len(),
            self.window,
            self.start,
            self.stop,
            changes.join(", ")
        )
    }
}

/// What an event's arrival changed before it was decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Arrival {
    /// The event's fingerprint.
    pub fingerprint: String,
    pub track: Track,
    /// The incident whose L1 run failed its verification: the alert fired again inside the
    /// verification window after it resolved.
    pub refired: Option<String>,
    /// This event started the flapping.
    pub flap_started: bool,
    /// Flapping stopped at this event.
    pub flap_stopped: bool,
    /// Whether the event is part of its alert's life (firing, resolved, acknowledged): an
    /// echo of one of Sparky's own pages is not (PagerDuty's word on a page is not the alert's
    /// state), nor is a deploy or a schedule tick. Nothing is remembered of those.
    pub remembered: bool,
}

/// The incident key in a PagerDuty event that echoes one of Sparky's own pages (Sparky's
/// key is the `dedup_key` of every page, which PagerDuty reports as the incident key).
pub fn echo_key(event: &Event) -> Option<&str> {
    if event.source != "pagerduty" {
        return None;
    }
    event.labels.get("incident_key").map(String::as_str).filter(|k| is_incident_key(k))
}

/// Whether `key` has the shape of Sparky's incident keys (`SPK-` and 12 hex digits).
pub fn is_incident_key(key: &str) -> bool {
    key.strip_prefix("SPK-").is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The event arrives at `now`, `track` being what was known of `fingerprint` (the event's
/// own, or the echoed incident's).
pub fn arrive(fingerprint: &str, track: Option<&Track>, event: &Event, now: DateTime<Utc>, s: &Settings) -> Arrival {
    let mut t = track.cloned().unwrap_or_default();
    t.changed = false;
    let mut arrival = Arrival { fingerprint: fingerprint.to_string(), ..Arrival::default() };
    if echo_key(event).is_some() || event.status == Status::Info {
        arrival.track = t;
        return arrival;
    }
    arrival.remembered = true;
    t.forget_before(now, s.flapping.window);
    let state = match event.status {
        Status::Firing if event.kind != Kind::Schedule => Some(Status::Firing),
        Status::Resolved => Some(Status::Resolved),
        _ => None,
    };
    if let Some(state) = state
        && t.status != Some(state)
    {
        t.changes.push(Change { at: now, status: state });
        t.forget_before(now, s.flapping.window);
        t.status = Some(state);
        t.changed = true;
        if state == Status::Firing {
            if let (Some(v), Some(c)) = (&t.verifying, &t.closed)
                && v.key == c.key
                && now <= v.at
            {
                arrival.refired = Some(v.key.clone());
            }
            t.verifying = None;
            if !t.is_flapping() && t.changes.len() >= s.flapping.start {
                t.flapping_since = Some(now);
                arrival.flap_started = true;
            }
        }
    }
    if t.is_flapping() && t.changes.len() <= s.flapping.stop {
        t.flapping_since = None;
        arrival.flap_stopped = true;
    }
    arrival.track = t;
    arrival
}

/// What one decision (or the passing of time) does to the state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// The fingerprint whose track changed, and its new track (`None`: nothing to remember,
    /// see [`Arrival::remembered`]).
    pub fingerprint: String,
    pub track: Option<Track>,
    /// The incident opened (new, or a closed one opened again under the same key).
    pub opened: Option<OpenIncident>,
    /// The incident closed, by key.
    pub closed: Option<String>,
    /// The incident updated (a repeat, an acknowledgement, an echo), by key.
    pub updated: Option<String>,
    /// The incident opened, as "has this happened before?" remembers it.
    pub past: Option<PastIncident>,
    pub deploy: Option<Deploy>,
    /// The L1 run the decision starts, by playbook.
    pub run: Option<(String, Run)>,
    /// The incident whose L1 run is now a failure (a re-fire inside its verification window).
    pub refired: Option<String>,
    pub flap_started: bool,
    pub flap_stopped: bool,
}

/// What `decision` on `event` at `now` does, after `arrival`. `applied` is how an applied L1
/// run is recorded: `pending` in the daemon (its verification decides), the step's outcome in
/// a simulation.
pub fn effects(
    event: &Event,
    arrival: Arrival,
    decision: &Decision,
    graph: &RuleGraph,
    applied: Outcome,
    now: DateTime<Utc>,
) -> Effects {
    let Arrival { fingerprint, mut track, refired, flap_started, flap_stopped, remembered } = arrival;
    let mut fx = Effects { refired, flap_started, flap_stopped, ..Effects::default() };
    fx.deploy = crate::knowledge::deploy_of(event, event.service.as_deref());
    let playbook = decision.playbook.as_deref().and_then(|id| graph.playbooks().iter().find(|p| p.id == id));
    let key = decision.incident.as_ref().map(|c| c.key.clone());
    let mut run_succeeded = false;
    if let (Level::L1, Some(mode), Some(pb)) = (decision.level, decision.mode, playbook)
        && let Some(l1) = &pb.l1
    {
        let outcome = mode.run_outcome(applied);
        run_succeeded = matches!(outcome, Outcome::Success | Outcome::DryRun);
        fx.run =
            Some((pb.id.clone(), Run { at: now, keys: run_keys(&l1.guards, event), outcome, incident: key.clone() }));
        // A resolution verifies an applied run only if the alert stays resolved for the rest
        // of the window: a re-fire before then makes the run a failure.
        let within = l1.verify.iter().find_map(|v| match v {
            VerifyStep::Resolved { within } => Some(within.millis),
            _ => None,
        });
        if let (L1Mode::Apply, Some(ms), Some(key)) = (mode, within, &key) {
            track.verifying = Some(KeyAt { key: key.clone(), at: now + chrono::Duration::milliseconds(ms as i64) });
        }
    }
    if let Some(change) = &decision.incident {
        match change.effect {
            IncidentEffect::Open => {
                fx.opened = Some(OpenIncident {
                    key: change.key.clone(),
                    fingerprint: fingerprint.clone(),
                    opened_at: now,
                    level: decision.level.as_str().to_string(),
                    playbook: decision.playbook.clone(),
                });
                fx.past = decision.opened_incident(event, now);
            }
            IncidentEffect::Close => {
                track.closed = Some(KeyAt { key: change.key.clone(), at: now });
                fx.closed = Some(change.key.clone());
            }
            IncidentEffect::Update => fx.updated = Some(change.key.clone()),
        }
        // A scheduled run that succeeded closes its incident (the engine does the same when
        // the daemon's run is verified).
        if event.kind == Kind::Schedule && run_succeeded {
            fx.opened = None;
            fx.updated = None;
            fx.closed = Some(change.key.clone());
        }
    }
    if decision.level != Level::Suppressed {
        track.last =
            Some(Seen { level: decision.level.as_str().to_string(), playbook: decision.playbook.clone(), at: now });
    }
    fx.fingerprint = fingerprint;
    fx.track = remembered.then_some(track);
    fx
}

/// Time passes for a flapping fingerprint with no event: once its state changes within the
/// window fall to `stop`, it stops flapping, and its incident (`open`) closes when the alert
/// is resolved. `None` while nothing changes.
pub fn settle(
    fingerprint: &str,
    track: &Track,
    open: Option<&OpenIncident>,
    now: DateTime<Utc>,
    s: &Settings,
) -> Option<Effects> {
    if !track.is_flapping() {
        return None;
    }
    let mut t = track.clone();
    t.forget_before(now, s.flapping.window);
    if t.changes.len() > s.flapping.stop {
        return None;
    }
    t.flapping_since = None;
    let mut fx = Effects { fingerprint: fingerprint.to_string(), flap_stopped: true, ..Effects::default() };
    if t.status == Some(Status::Resolved)
        && let Some(inc) = open
    {
        t.closed = Some(KeyAt { key: inc.key.clone(), at: now });
        fx.closed = Some(inc.key.clone());
    }
    fx.track = Some(t);
    Some(fx)
}

/// The words a settle's close is recorded with (the incident's resolution note).
pub fn settle_headline(track: Option<&Track>, s: &Settings, now: DateTime<Utc>) -> String {
    let last = match track.and_then(|t| t.changes.last()) {
        Some(c) => format!(" (last: {} at {})", c.status.as_str(), c.at.to_rfc3339()),
        None => String::new(),
    };
    format!(
        "the alert stopped flapping and stays resolved: {} or fewer state changes within {} at {}{last}",
        s.flapping.stop,
        s.flapping.window,
        now.to_rfc3339()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::Span;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-10T08:00:00Z").unwrap().with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    fn event(status: Status) -> Event {
        let mut e = Event::schedule("x", at(0));
        e.kind = Kind::Alert;
        e.source = "alertmanager".into();
        e.status = status;
        e
    }

    fn walk(steps: &[(i64, Status)], s: &Settings) -> Vec<Arrival> {
        let mut track: Option<Track> = None;
        let mut out = Vec::new();
        for (m, status) in steps {
            let a = arrive("fp", track.as_ref(), &event(*status), at(*m), s);
            track = Some(a.track.clone());
            out.push(a);
        }
        out
    }

    #[test]
    fn flapping_starts_at_the_re_fire_that_reaches_start_and_not_before() {
        use Status::*;
        let s = Settings::default();
        let a = walk(&[(0, Firing), (3, Resolved), (6, Firing), (9, Resolved), (12, Firing)], &s);
        assert!(a[..4].iter().all(|a| !a.track.is_flapping()));
        assert!(a[4].flap_started && a[4].track.is_flapping());
        assert_eq!(a[4].track.changes.len(), 5);
    }

    #[test]
    fn repeats_and_acknowledgements_are_not_state_changes() {
        use Status::*;
        let s = Settings::default();
        let a = walk(&[(0, Firing), (1, Firing), (2, Acknowledged), (3, Firing)], &s);
        assert_eq!(a[3].track.changes.len(), 1);
        assert!(a[0].track.changed && !a[1].track.changed && !a[3].track.changed);
    }

    #[test]
    fn changes_older_than_the_window_do_not_count() {
        use Status::*;
        let s = Settings::default();
        // Five changes, but spread over more than an hour: no flapping.
        let a = walk(&[(0, Firing), (20, Resolved), (40, Firing), (61, Resolved), (81, Firing)], &s);
        assert!(!a[4].track.is_flapping());
        assert_eq!(a[4].track.changes.len(), 3);
    }

    #[test]
    fn flapping_stops_by_time_alone_and_closes_a_resolved_incident() {
        use Status::*;
        let s = Settings::default();
        let a = walk(&[(0, Firing), (3, Resolved), (6, Firing), (9, Resolved), (12, Firing), (15, Resolved)], &s);
        let track = &a[5].track;
        assert!(track.is_flapping());
        let inc = OpenIncident {
            key: "SPK-000000000001".into(),
            fingerprint: "fp".into(),
            opened_at: at(12),
            level: "L3".into(),
            playbook: None,
        };
        // Still six changes within the hour at 30m; at 71m only 12m and 15m are left.
        assert!(settle("fp", track, Some(&inc), at(30), &s).is_none());
        let fx = settle("fp", track, Some(&inc), at(71), &s).expect("it stops flapping");
        assert!(fx.flap_stopped && !fx.track.as_ref().unwrap().is_flapping());
        assert_eq!(fx.closed.as_deref(), Some("SPK-000000000001"));
    }

    #[test]
    fn a_re_fire_inside_the_verification_window_undoes_the_verified_run() {
        use Status::*;
        let s = Settings::default();
        let mut t = Track {
            status: Some(Resolved),
            verifying: Some(KeyAt { key: "SPK-aaaaaaaaaaaa".into(), at: at(10) }),
            closed: Some(KeyAt { key: "SPK-aaaaaaaaaaaa".into(), at: at(3) }),
            ..Track::default()
        };
        let a = arrive("fp", Some(&t), &event(Firing), at(5), &s);
        assert_eq!(a.refired.as_deref(), Some("SPK-aaaaaaaaaaaa"));
        assert!(a.track.verifying.is_none());
        // After the window, a re-fire is a new problem: the run stays verified.
        let b = arrive("fp", Some(&t), &event(Firing), at(11), &s);
        assert!(b.refired.is_none());
        // A run of another incident than the one closed is not undone.
        t.closed = Some(KeyAt { key: "SPK-bbbbbbbbbbbb".into(), at: at(3) });
        assert!(arrive("fp", Some(&t), &event(Firing), at(5), &s).refired.is_none());
    }

    #[test]
    fn an_echo_of_a_page_is_no_state_of_the_alert() {
        use Status::*;
        let s = Settings::default();
        let a = walk(&[(0, Firing), (3, Resolved), (6, Firing), (9, Resolved), (12, Firing), (15, Resolved)], &s);
        let track = a[5].track.clone();
        // PagerDuty escalates the page (an `incident.escalated`, status triggered) while the
        // alert stays resolved: the track is untouched and nothing is remembered of it.
        let mut echo = event(Firing);
        echo.source = "pagerduty".into();
        echo.labels.insert("incident_key".into(), "SPK-9e8d7c6b5a41".into());
        let e = arrive("fp", Some(&track), &echo, at(40), &s);
        assert!(!e.remembered);
        assert_eq!(e.track.status, Some(Resolved));
        assert_eq!(e.track.changes, track.changes);
        // So the flapping still settles, and the resolved alert's incident closes.
        let inc = OpenIncident {
            key: "SPK-9e8d7c6b5a41".into(),
            fingerprint: "fp".into(),
            opened_at: at(12),
            level: "L3".into(),
            playbook: None,
        };
        assert!(settle("fp", &track, Some(&inc), at(76), &s).is_some_and(|fx| fx.closed.is_some()));
    }

    #[test]
    fn a_flap_report_names_the_latest_changes_and_counts_the_rest() {
        let changes: Vec<Change> = (0..30)
            .map(|m| Change { at: at(m), status: if m % 2 == 0 { Status::Firing } else { Status::Resolved } })
            .collect();
        let r = FlapReport { since: at(4), changes, window: Span::minutes(60), start: 5, stop: 2 };
        let text = r.describe();
        assert!(text.starts_with("30 state changes within 1h"), "{text}");
        assert!(text.contains(": 10 earlier, firing at 08:10:00"), "{text}");
        assert_eq!(text.matches(" at ").count(), SHOWN_CHANGES);
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Flapping::default().check().is_ok());
        let bad = Flapping { stop: 5, ..Flapping::default() };
        assert!(bad.check().unwrap_err().contains("must be below"));
        assert!(Flapping { start: 1, stop: 0, ..Flapping::default() }.check().is_err());
    }

    #[test]
    fn echo_keys_are_sparky_keys_from_pagerduty_only() {
        let mut e = event(Status::Firing);
        e.labels.insert("incident_key".into(), "SPK-9e8d7c6b5a41".into());
        assert_eq!(echo_key(&e), None, "not from PagerDuty");
        e.source = "pagerduty".into();
        assert_eq!(echo_key(&e), Some("SPK-9e8d7c6b5a41"));
        e.labels.insert("incident_key".into(), "d3640fbd41094207a1c11e58e46b1662".into());
        assert_eq!(echo_key(&e), None);
        e.labels.insert("incident_key".into(), "SPK-../../x".into());
        assert_eq!(echo_key(&e), None);
    }
}
