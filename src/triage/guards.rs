//! The guards of an L1 block, checked against the run history: each gives its figure, its
//! limit and whether it passed, for the trace.

use super::context::{Outcome, Pause, Run};
use super::decision::GuardCheck;
use crate::compile::{Field, Guards, Status};
use crate::dsl::ast::Duration;
use crate::event::Event;
use crate::graph::matcher::field_value;
use chrono::{DateTime, Utc};

fn ago(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let ms = (now - at).num_milliseconds().max(0) as u64;
    // Whole seconds read better than `2m13s412ms`.
    let rounded = if ms >= 1000 { ms / 1000 * 1000 } else { ms };
    format!("{} ago", Duration { millis: rounded })
}

fn within(run: &Run, now: DateTime<Utc>, window: Duration) -> bool {
    run.at <= now && (now - run.at).num_milliseconds() < window.millis as i64
}

fn check(guard: String, figure: String, limit: String, passed: bool) -> GuardCheck {
    GuardCheck { guard, figure, limit, passed, needs_approval: false }
}

/// The kill switch: the first pause in force for `playbook`.
pub fn kill_switch(playbook: &str, pauses: &[Pause], now: DateTime<Utc>) -> GuardCheck {
    match pauses.iter().find(|p| p.applies(playbook, now)) {
        Some(p) => {
            let scope = if p.playbook.is_some() { format!("{playbook} is paused") } else { "all L1 is paused".into() };
            let by = p.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            let until = p.until.map(|u| format!(" until {}", u.to_rfc3339())).unwrap_or_default();
            check("kill switch".into(), format!("{scope}{by}{until}: {}", p.reason), "not paused".into(), false)
        }
        None => check("kill switch".into(), "not paused".into(), "not paused".into(), true),
    }
}

/// Checks every guard of an L1 block. `blast_radius` is the plan's total; `status` tells
/// which runs count (a draft's planned runs count for itself only).
pub fn check_all(
    guards: &Guards,
    runs: &[Run],
    status: Status,
    event: &Event,
    blast_radius: u64,
    now: DateTime<Utc>,
) -> Vec<GuardCheck> {
    let counted = |r: &&Run| status == Status::Draft || r.outcome != Outcome::Planned;
    let mut out = Vec::new();
    if let Some((min_percent, window, min_runs)) = guards.success_rate {
        let finished: Vec<&Run> = runs
            .iter()
            .filter(|r| within(r, now, window) && matches!(r.outcome, Outcome::Success | Outcome::Failure))
            .collect();
        let successes = finished.iter().filter(|r| r.outcome == Outcome::Success).count();
        let n = finished.len() as u64;
        let guard = format!("success_rate >= {min_percent}% over {window} min {min_runs} runs");
        let limit = format!(">= {min_percent}% over {window}, with at least {min_runs} runs");
        if n < min_runs {
            let mut c = check(
                guard,
                format!("{n} verified run{} in {window}: trust not yet earned", if n == 1 { "" } else { "s" }),
                limit,
                true,
            );
            c.needs_approval = true;
            out.push(c);
        } else {
            let rate = successes as f64 * 100.0 / n as f64;
            let figure = format!("{rate:.1}% ({successes} of {n} runs in {window} succeeded)");
            out.push(check(guard, figure, limit, rate >= min_percent));
        }
    }
    if let Some(max) = guards.blast_radius {
        out.push(check(
            format!("blast_radius <= {max}"),
            blast_radius.to_string(),
            format!("<= {max}"),
            blast_radius <= max,
        ));
    }
    for (period, key) in &guards.cooldowns {
        out.push(cooldown(*period, key.as_ref(), runs.iter().filter(counted), event, now));
    }
    for (count, window) in &guards.at_most {
        let n = runs.iter().filter(counted).filter(|r| within(r, now, *window)).count() as u64;
        out.push(check(
            format!("at_most {count} per {window}"),
            format!("{n} run{} in the last {window}", if n == 1 { "" } else { "s" }),
            format!("fewer than {count} before this one"),
            n < *count,
        ));
    }
    out
}

fn cooldown<'r>(
    period: Duration,
    key: Option<&Field>,
    runs: impl Iterator<Item = &'r Run>,
    event: &Event,
    now: DateTime<Utc>,
) -> GuardCheck {
    let guard = match key {
        Some(f) => format!("cooldown {period} per {f}"),
        None => format!("cooldown {period}"),
    };
    let limit = format!("no run in the last {period}");
    let value = match key {
        Some(f) => match field_value(event, f) {
            Some(v) => Some((f.to_string(), v.into_owned())),
            None => {
                return check(guard, format!("`{f}` is missing from the event: no key to count by"), limit, false);
            }
        },
        None => None,
    };
    let last = runs
        .filter(|r| r.at <= now)
        .filter(|r| value.as_ref().is_none_or(|(f, v)| r.keys.get(f) == Some(v)))
        .map(|r| r.at)
        .max();
    let scope = value.as_ref().map(|(f, v)| format!(" for {f} = {v:?}")).unwrap_or_default();
    match last {
        Some(at) => {
            let passed = (now - at).num_milliseconds() >= period.millis as i64;
            check(guard, format!("last run{scope} {}", ago(now, at)), limit, passed)
        }
        None => check(guard, format!("no run{scope} yet"), limit, true),
    }
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
