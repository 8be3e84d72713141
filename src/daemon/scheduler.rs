//! The scheduler: fires the schedules of proactive playbooks (`on schedule every 1h`,
//! `on schedule cron "0 9 * * *" tz "Europe/Paris"`). A run is a `schedule` event that goes
//! through the same inbox, decision, engine and trace as any webhook.
//!
//! Slots are instants: `every D` slots are multiples of `D` since the Unix epoch (so they are
//! the same after a restart), cron slots are the expression's times in its zone (a time that a
//! DST change skips runs at the first instant after the jump, once; one it repeats runs
//! once). The last slot of
//! every schedule is persisted with the run it fired (`store::schedules`), so:
//!
//! - a restart never **doubles** a run: a slot fires in the transaction that records it, under
//!   a delivery key the inbox refuses twice;
//! - a restart never **skips** a recent run: slots missed while Sparky was down are coalesced
//!   into **one** run, at start, for the latest missed slot — if that slot is less than
//!   `scheduler.catch_up` old (`6h` by default); an older one is logged as missed and the
//!   schedule goes on from its next slot (a daily report is not worth sending at 3 a.m.);
//! - a schedule seen for the first time (a new playbook, a new store) starts with its next
//!   slot.
//!
//! The time is always given ([`tick`]): the loop passes the wall clock, tests pass any time.

use crate::compile::{CompiledPlaybook, CompiledTrigger, Status};
use crate::event::Event;
use crate::graph::RuleGraph;
use crate::store::{Store, StoreError};
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use std::str::FromStr;
use std::time::Duration;

/// `scheduler:` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// A slot missed while Sparky was down still runs at start when it is less than this old.
    pub catch_up: String,
    /// Whether this replica fires schedules (on by default). Off, its slots are left to the
    /// other replicas (a slot fires once cluster-wide whichever fires it), or to
    /// `POST /api/v1/schedules/<playbook>/run`.
    pub enabled: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { catch_up: "6h".into(), enabled: true }
    }
}

impl SchedulerConfig {
    pub fn validate(&self) -> Result<(), String> {
        match crate::dsl::parse_duration(&self.catch_up) {
            // Shorter than the loop's pace, every slot would count as missed.
            Some(ms) if ms >= 60_000 => Ok(()),
            Some(_) => {
                Err(format!("`scheduler.catch_up`: `{}` is shorter than a minute; write e.g. `6h`", self.catch_up))
            }
            None => Err(format!("`scheduler.catch_up`: `{}` is not a duration; write e.g. `6h`", self.catch_up)),
        }
    }

    pub fn catch_up(&self) -> chrono::Duration {
        chrono::Duration::milliseconds(crate::dsl::parse_duration(&self.catch_up).unwrap_or(0) as i64)
    }
}

/// When a playbook runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    Every(chrono::Duration),
    Cron { cron: Box<croner::Cron>, expr: String, tz: chrono_tz::Tz },
}

impl Schedule {
    /// The schedule of `pb`, when it has one (its first schedule trigger).
    pub fn of(pb: &CompiledPlaybook) -> Option<Schedule> {
        pb.triggers.iter().find_map(|t| match t {
            CompiledTrigger::Every { period, .. } if period.millis > 0 => {
                Some(Schedule::Every(chrono::Duration::milliseconds(period.millis.min(i64::MAX as u64) as i64)))
            }
            CompiledTrigger::Cron { expr, tz, .. } => {
                let cron = croner::Cron::from_str(expr).ok()?;
                let tz = chrono_tz::Tz::from_str(tz).unwrap_or(chrono_tz::UTC);
                Some(Schedule::Cron { cron: Box::new(cron), expr: expr.clone(), tz })
            }
            _ => None,
        })
    }

    /// How the schedule is written: `every 3600000ms`, `cron "0 9 * * *" tz "UTC"`.
    pub fn spec(&self) -> String {
        match self {
            Schedule::Every(d) => format!("every {}ms", d.num_milliseconds()),
            Schedule::Cron { expr, tz, .. } => format!("cron \"{expr}\" tz \"{}\"", tz.name()),
        }
    }

    /// How a person writes it: `every 1h`, `cron "0 9 * * *" tz "UTC"` (the spec is the
    /// stored identity, in milliseconds).
    pub fn describe(&self) -> String {
        match self {
            Schedule::Every(d) => {
                format!("every {}", crate::dsl::ast::Duration { millis: d.num_milliseconds().max(0) as u64 })
            }
            Schedule::Cron { .. } => self.spec(),
        }
    }

    /// The latest slot at or before `t`.
    pub fn latest(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let p = d.num_milliseconds().max(1);
                let ms = t.timestamp_millis().div_euclid(p) * p;
                Utc.timestamp_millis_opt(ms).single()
            }
            Schedule::Cron { cron, tz, .. } => {
                let mut wall = t.with_timezone(tz).naive_local();
                let mut inclusive = true;
                for _ in 0..WALK_MAX {
                    let w = cron.find_previous_occurrence(&Utc.from_utc_datetime(&wall), inclusive).ok()?.naive_utc();
                    inclusive = false;
                    let slot = instant(tz, w)?;
                    if slot <= t {
                        return Some(slot);
                    }
                    wall = w;
                }
                None
            }
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => self.latest(t).map(|l| l + *d),
            Schedule::Cron { cron, tz, .. } => {
                let mut wall = t.with_timezone(tz).naive_local();
                for _ in 0..WALK_MAX {
                    let w = cron.find_next_occurrence(&Utc.from_utc_datetime(&wall), false).ok()?.naive_utc();
                    let slot = instant(tz, w)?;
                    if slot > t {
                        return Some(slot);
                    }
                    wall = w;
                }
                None
            }
        }
    }
}

/// Wall-clock times looked at, at most, to find one slot (a cron is a handful per day; this
/// only bounds a pathological walk).
const WALK_MAX: usize = 10_000;

/// The instant of wall-clock time `w` in `tz`. Cron times are wall-clock times, and DST makes
/// that mapping imperfect, so: a time the clocks skip (02:30 on the spring-forward night) is
/// the first instant after the jump; a time they repeat (the fall-back night) is its first
/// occurrence only. Every cron time of a day therefore runs at most once, whatever its fields.
fn instant(tz: &chrono_tz::Tz, w: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::LocalResult;
    match tz.from_local_datetime(&w) {
        LocalResult::Single(x) => Some(x.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        // The first valid minute after the gap is the jump's instant.
        LocalResult::None => (1..=24 * 60)
            .find_map(|m| tz.from_local_datetime(&(w + chrono::Duration::minutes(m))).earliest())
            .map(|x| x.with_timezone(&Utc)),
    }
}

/// What a schedule whose last slot is `last` should do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Nothing before `next`.
    Wait { next: Option<DateTime<Utc>> },
    /// Run for `slot`; `missed` earlier slots since `last` are coalesced into it.
    Run { slot: DateTime<Utc>, missed: u32 },
    /// The latest slot is older than the catch-up window: recorded as missed, not run.
    Missed { slot: DateTime<Utc> },
}

/// Slots counted at most when reporting how many were coalesced.
const COUNT_MAX: u32 = 10_000;

/// The decision for one schedule at `now` (pure: the loop and the tests give the time).
pub fn due(schedule: &Schedule, last: DateTime<Utc>, now: DateTime<Utc>, catch_up: chrono::Duration) -> Due {
    let Some(slot) = schedule.latest(now).filter(|s| *s > last) else {
        return Due::Wait { next: schedule.next_after(now) };
    };
    if now - slot > catch_up {
        return Due::Missed { slot };
    }
    let mut missed = 0;
    let mut t = last;
    while let Some(n) = schedule.next_after(t) {
        if n >= slot || missed >= COUNT_MAX {
            break;
        }
        missed += 1;
        t = n;
    }
    Due::Run { slot, missed }
}

/// A schedule fired (or found missed) by one [`tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub playbook: String,
    pub slot: DateTime<Utc>,
    /// Earlier slots coalesced into this run.
    pub missed: u32,
    /// False when the slot was too old to run (see `scheduler.catch_up`).
    pub ran: bool,
}

/// Fires every schedule of `graph` that is due at `now`; returns what fired and the next
/// slot of any schedule (when the loop should look again).
pub async fn tick(
    store: &Store,
    graph: &RuleGraph,
    catch_up: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(Vec<Fired>, Option<DateTime<Utc>>), StoreError> {
    let known = store.schedules().await?;
    let mut fired = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    let mut soonest = |n: Option<DateTime<Utc>>| {
        next = match (next, n) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    for pb in graph.playbooks() {
        let Some(schedule) = Schedule::of(pb) else { continue };
        let spec = schedule.spec();
        let current = schedule.latest(now).unwrap_or(now);
        let state = known.iter().find(|k| k.playbook == pb.id);
        if pb.status == Status::Disabled {
            // Its slots pass quietly, so that enabling it again starts with its next slot
            // instead of catching up what it was meant to skip.
            if state.is_none_or(|k| k.last_slot != current || k.spec != spec) {
                store.schedule_restart(&pb.id, &spec, current, now).await?;
            }
            continue;
        }
        let last = match state {
            // A new schedule for the playbook (edited and reloaded), or a last slot in the
            // future (the clock was ahead and was set back): it starts again with its next
            // slot. A slot that fired keeps its delivery key, so nothing fires twice.
            Some(k) if k.spec != spec || k.last_slot > now + chrono::Duration::minutes(1) => {
                if k.spec == spec {
                    tracing::warn!(playbook = %pb.id, last = %k.last_slot.to_rfc3339(), "the last scheduled run is in the future: the clock was set back; the schedule starts again from now");
                }
                store.schedule_restart(&pb.id, &spec, current, now).await?;
                current
            }
            Some(k) => k.last_slot,
            // First seen: it starts after the current slot (no run for a slot that passed
            // before Sparky knew the schedule).
            None => store.schedule_seen(&pb.id, &spec, current, now).await?.last_slot,
        };
        match due(&schedule, last, now, catch_up) {
            Due::Wait { next: n } => soonest(n),
            Due::Run { slot, missed } => {
                let mut event = Event::schedule(&pb.id, slot);
                event.received_at = now;
                if store.fire_schedule(&pb.id, slot, &event, now).await? {
                    fired.push(Fired { playbook: pb.id.clone(), slot, missed, ran: true });
                }
                soonest(schedule.next_after(slot));
            }
            Due::Missed { slot } => {
                store.schedule_missed(&pb.id, slot, now).await?;
                fired.push(Fired { playbook: pb.id.clone(), slot, missed: 0, ran: false });
                soonest(schedule.next_after(slot));
            }
        }
    }
    Ok((fired, next))
}

/// Runs until `state` shuts down: fires what is due, then sleeps until the next slot (at
/// most 30 s, so that a reload adding a schedule is seen soon).
pub(super) async fn run(state: std::sync::Arc<super::State>) {
    let catch_up = state.config.scheduler.catch_up();
    while !state.is_shutting_down() {
        let graph = state.ruleset.load_full().graph.clone();
        let now = Utc::now();
        let wait = match tick(&state.store, &graph, catch_up, now).await {
            Ok((fired, next)) => {
                for f in &fired {
                    if f.ran {
                        tracing::info!(playbook = %f.playbook, slot = %f.slot.to_rfc3339(), coalesced = f.missed, "schedule fired");
                    } else {
                        tracing::warn!(
                            playbook = %f.playbook, slot = %f.slot.to_rfc3339(), catch_up = %state.config.scheduler.catch_up,
                            "a scheduled run was missed while Sparky was down and is too old to run now; the schedule goes on from its next slot"
                        );
                    }
                }
                if fired.iter().any(|f| f.ran) {
                    state.wake.notify_one();
                }
                // A slot already due (a slow tick) is looked at again at once.
                next.map_or(Duration::from_secs(30), |n| (n - Utc::now()).to_std().unwrap_or(Duration::ZERO))
            }
            Err(e) => {
                tracing::error!(error = %e, "the scheduler cannot reach the store; due runs fire when it answers");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(wait.clamp(Duration::from_millis(200), Duration::from_secs(30))).await;
    }
}
