//! The guards of an L1 block, checked against the run history: each gives its figure, its
//! limit and whether it passed, for the trace.
//!
//! A check keeps its numbers, not text: a decision is made for every event, its trace is
//! read for a few. The text is made when the trace is shown or stored.

use super::context::{Outcome, Pause, Run};
use super::decision::ConditionResult;
use crate::compile::{Condition, Field, Guards, Status};
use crate::dsl::ast::Duration;
use crate::event::Event;
use crate::graph::matcher::field_value;
use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use std::fmt;

/// What a guard measured.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardFigure {
    /// The kill switch, with the pause in force if any.
    KillSwitch {
        pause: Option<Pause>,
    },
    SuccessRate {
        min_percent: f64,
        window: Duration,
        min_runs: u64,
        runs: u64,
        successes: u64,
    },
    /// `radius`: instances the plan touches (action metadata); `downstream`: services that
    /// depend on the event's service (the knowledge graph), for the reader.
    BlastRadius {
        max: u64,
        radius: u64,
        downstream: usize,
    },
    /// `key`: the `per` field and the event's value of it; `missing` when the event lacks
    /// the field; `last_ms_ago`: the last counted run for that key.
    Cooldown {
        period: Duration,
        per: Option<Field>,
        value: Option<String>,
        last_ms_ago: Option<u64>,
    },
    AtMost {
        count: u64,
        window: Duration,
        runs: u64,
    },
    /// `guard when { ... }`: the condition as written, and what it gave.
    When {
        condition: String,
        result: super::decision::ConditionResult,
    },
}

/// One guard of the deciding playbook's L1: its figure against its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardCheck {
    pub figure: GuardFigure,
    pub passed: bool,
    /// The guard passes only with a person's approval (trust not yet earned).
    pub needs_approval: bool,
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn ago(ms: u64) -> String {
    // Whole seconds read better than `2m13s412ms`.
    let rounded = if ms >= 1000 { ms / 1000 * 1000 } else { ms };
    format!("{} ago", Duration { millis: rounded })
}

impl GuardCheck {
    /// The guard as written: `cooldown 15m per labels.pod`, or `kill switch`.
    pub fn guard(&self) -> String {
        match &self.figure {
            GuardFigure::KillSwitch { pause: Some(p) } => p.guard().into(),
            GuardFigure::KillSwitch { pause: None } => "kill switch".into(),
            GuardFigure::SuccessRate { min_percent, window, min_runs, .. } => {
                format!("success_rate >= {min_percent}% over {window} min {min_runs} runs")
            }
            GuardFigure::BlastRadius { max, .. } => format!("blast_radius <= {max}"),
            GuardFigure::Cooldown { period, per: Some(f), .. } => format!("cooldown {period} per {f}"),
            GuardFigure::Cooldown { period, per: None, .. } => format!("cooldown {period}"),
            GuardFigure::AtMost { count, window, .. } => format!("at_most {count} per {window}"),
            GuardFigure::When { condition, .. } => format!("when {{ {condition} }}"),
        }
    }

    /// What was measured.
    pub fn figure(&self) -> String {
        match &self.figure {
            GuardFigure::KillSwitch { pause: None } => "not paused".into(),
            GuardFigure::KillSwitch { pause: Some(p) } => p.describe(),
            GuardFigure::SuccessRate { window, min_runs, runs, .. } if runs < min_runs => {
                format!("{runs} verified run{} in {window}", plural(*runs))
            }
            GuardFigure::SuccessRate { window, runs, successes, .. } => {
                let rate = *successes as f64 * 100.0 / *runs as f64;
                format!("{rate:.1}% ({successes} of {runs} runs in {window} succeeded)")
            }
            GuardFigure::BlastRadius { radius, downstream: 0, .. } => radius.to_string(),
            GuardFigure::BlastRadius { radius, downstream, .. } => {
                format!("{radius} ({downstream} service{} downstream)", plural(*downstream as u64))
            }
            GuardFigure::Cooldown { per: Some(f), value: None, .. } => {
                format!("`{f}` is missing from the event: no key to count by")
            }
            GuardFigure::Cooldown { per, value, last_ms_ago, .. } => {
                let scope = match (per, value) {
                    (Some(f), Some(v)) => format!(" for {f} = {v:?}"),
                    _ => String::new(),
                };
                match last_ms_ago {
                    Some(ms) => format!("last run{scope} {}", ago(*ms)),
                    None => format!("no run{scope} yet"),
                }
            }
            GuardFigure::AtMost { window, runs, .. } => format!("{runs} run{} in the last {window}", plural(*runs)),
            GuardFigure::When { result, .. } => match (&result.value, &result.error) {
                (Some(v), _) => v.to_string(),
                (None, e) => e.clone().unwrap_or_else(|| "no value".into()),
            },
        }
    }

    /// What the figure had to be.
    pub fn limit(&self) -> String {
        match &self.figure {
            GuardFigure::KillSwitch { .. } => "not paused".into(),
            GuardFigure::SuccessRate { min_percent, window, min_runs, .. } => {
                format!(">= {min_percent}% over {window}, with at least {min_runs} runs")
            }
            GuardFigure::BlastRadius { max, .. } => format!("<= {max}"),
            GuardFigure::Cooldown { period, .. } => format!("no run in the last {period}"),
            GuardFigure::AtMost { count, .. } => format!("fewer than {count} before this one"),
            GuardFigure::When { .. } => "must be true".into(),
        }
    }
}

impl fmt::Display for GuardCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (limit: {})", self.guard(), self.figure(), self.limit())
    }
}

impl Serialize for GuardCheck {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("GuardCheck", if self.needs_approval { 5 } else { 4 })?;
        st.serialize_field("guard", &self.guard())?;
        st.serialize_field("figure", &self.figure())?;
        st.serialize_field("limit", &self.limit())?;
        st.serialize_field("passed", &self.passed)?;
        if self.needs_approval {
            st.serialize_field("needs_approval", &true)?;
        }
        st.end()
    }
}

fn within(run: &Run, now: DateTime<Utc>, window: Duration) -> bool {
    run.at <= now && (now - run.at).num_milliseconds() < window.millis as i64
}

fn check(figure: GuardFigure, passed: bool) -> GuardCheck {
    GuardCheck { figure, passed, needs_approval: false }
}

/// The kill switch: the first pause in force for `playbook` and `event`.
pub fn kill_switch(playbook: &str, event: &Event, pauses: &[Pause], now: DateTime<Utc>) -> GuardCheck {
    let namespace = event.labels.get("namespace").map(String::as_str);
    let pause = pauses.iter().find(|p| p.applies(playbook, event.service.as_deref(), namespace, now)).cloned();
    let passed = pause.is_none();
    check(GuardFigure::KillSwitch { pause }, passed)
}

/// Checks every guard of an L1 block. `blast_radius` is the plan's total and the number of
/// services downstream; `status` tells which runs count (a draft's planned runs count for
/// itself only).
pub fn check_all(
    guards: &Guards,
    runs: &[Run],
    status: Status,
    event: &Event,
    blast_radius: (u64, usize),
    now: DateTime<Utc>,
    evaluate: &mut dyn FnMut(&Condition) -> ConditionResult,
) -> Vec<GuardCheck> {
    // A draft's plans count for its own cooldowns and rates; dry-run runs count as the live
    // runs they stand for; refused ones were never carried out.
    let counted = |r: &&Run| match r.outcome {
        Outcome::Planned => status == Status::Draft,
        Outcome::Refused => false,
        _ => true,
    };
    let mut out = Vec::with_capacity(4);
    // Safety facts first (they are what a reader checks first), then trust and limits.
    for condition in &guards.conditions {
        let result = evaluate(condition);
        let passed = result.value == Some(true);
        let text = condition.source.text.split_whitespace().collect::<Vec<_>>().join(" ");
        out.push(check(GuardFigure::When { condition: text, result }, passed));
    }
    if let Some((min_percent, window, min_runs)) = guards.success_rate {
        let (mut n, mut successes) = (0u64, 0u64);
        for r in runs.iter().filter(|r| within(r, now, window)) {
            match r.outcome {
                Outcome::Success => (n, successes) = (n + 1, successes + 1),
                Outcome::Failure => n += 1,
                Outcome::Pending | Outcome::Planned | Outcome::DryRun | Outcome::Refused => {}
            }
        }
        let figure = GuardFigure::SuccessRate { min_percent, window, min_runs, runs: n, successes };
        if n < min_runs {
            out.push(GuardCheck { figure, passed: true, needs_approval: true });
        } else {
            out.push(check(figure, successes as f64 * 100.0 / n as f64 >= min_percent));
        }
    }
    if let Some(max) = guards.blast_radius {
        let (radius, downstream) = blast_radius;
        out.push(check(GuardFigure::BlastRadius { max, radius, downstream }, radius <= max));
    }
    for (period, per) in &guards.cooldowns {
        out.push(cooldown(*period, per.as_ref(), runs.iter().filter(counted), event, now));
    }
    for (count, window) in &guards.at_most {
        let n = runs.iter().filter(counted).filter(|r| within(r, now, *window)).count() as u64;
        out.push(check(GuardFigure::AtMost { count: *count, window: *window, runs: n }, n < *count));
    }
    out
}

fn cooldown<'r>(
    period: Duration,
    per: Option<&Field>,
    runs: impl Iterator<Item = &'r Run>,
    event: &Event,
    now: DateTime<Utc>,
) -> GuardCheck {
    let value = per.and_then(|f| field_value(event, f));
    if per.is_some() && value.is_none() {
        // No key to count by: refuse rather than guess.
        return check(GuardFigure::Cooldown { period, per: per.cloned(), value: None, last_ms_ago: None }, false);
    }
    let key = per.map(|f| f.to_string());
    let last = runs
        .filter(|r| r.at <= now)
        .filter(|r| match (&key, &value) {
            (Some(k), Some(v)) => r.keys.get(k).is_some_and(|rv| rv == v.as_ref()),
            _ => true,
        })
        .map(|r| r.at)
        .max();
    let last_ms_ago = last.map(|at| (now - at).num_milliseconds().max(0) as u64);
    let passed = last_ms_ago.is_none_or(|ms| ms >= period.millis);
    let figure = GuardFigure::Cooldown { period, per: per.cloned(), value: value.map(|v| v.into_owned()), last_ms_ago };
    check(figure, passed)
}

/// The keys a run of this L1 block records, one per keyed cooldown.
pub fn run_keys(guards: &Guards, event: &Event) -> std::collections::BTreeMap<String, String> {
    guards
        .cooldowns
        .iter()
        .filter_map(|(_, key)| key.as_ref())
        .filter_map(|f| field_value(event, f).map(|v| (f.to_string(), v.into_owned())))
        .collect()
}
