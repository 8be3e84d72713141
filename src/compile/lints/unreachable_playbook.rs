//! `W303 UnreachablePlaybook`.
//!
//! **What it does.** Flags a playbook whose triggers are exactly those of another playbook
//! that comes first in triage order (higher `priority`, then id) and has no `when`
//! condition: the first one decides every event they both match, so the second never does.
//!
//! **Why it matters.** The second playbook looks active and is reviewed as if it ran, yet it
//! never decides anything: usually a copy that was meant to be narrower.
//!
//! **Example.** `PB-010` and `PB-011` both `on alert from alertmanager { labels.alertname ==
//! "TargetDown" }`, same priority, neither with a `when`: `PB-011` is unreachable. Narrow
//! one trigger, add a condition to `PB-010`, or merge them.

use crate::compile::model::{CompiledPlaybook, CompiledTrigger, Status, Test};
use crate::diagnostics::{Code, Diagnostic};
use std::cmp::Reverse;
use std::collections::HashMap;

/// A trigger as text, so identical triggers compare equal whatever their spans.
fn trigger_key(t: &CompiledTrigger) -> String {
    match t {
        CompiledTrigger::Event { kind, source, matchers, .. } => {
            let mut ms: Vec<String> = matchers
                .iter()
                .map(|m| {
                    let test = match &m.test {
                        Test::Matches(r) => format!("=~{}", r.as_str()),
                        Test::NotMatches(r) => format!("!~{}", r.as_str()),
                        Test::In(v) | Test::NotIn(v) => {
                            let mut items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
                            items.sort();
                            format!("{}{}", if matches!(m.test, Test::In(_)) { "in" } else { "notin" }, items.join(","))
                        }
                        other => format!("{other:?}"),
                    };
                    format!("{}{}", m.field, test)
                })
                .collect();
            ms.sort();
            ms.dedup();
            format!("event {kind:?} {source:?} {}", ms.join(" & "))
        }
        CompiledTrigger::Every { period, .. } => format!("every {period}"),
        CompiledTrigger::Cron { expr, tz, .. } => format!("cron {expr} {tz}"),
    }
}

fn triggers_key(pb: &CompiledPlaybook) -> Vec<String> {
    let mut keys: Vec<String> = pb.triggers.iter().map(trigger_key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Where a playbook stands in triage order: the greater decides first (higher priority,
/// then the smaller id).
fn rank(pb: &CompiledPlaybook) -> (i64, Reverse<&str>) {
    (pb.priority, Reverse(pb.id.as_str()))
}

pub(crate) fn check(playbooks: &[CompiledPlaybook], diags: &mut Vec<Diagnostic>) {
    let live: Vec<&CompiledPlaybook> = playbooks.iter().filter(|p| p.status != Status::Disabled).collect();
    let keys: Vec<Vec<String>> = live.iter().map(|pb| triggers_key(pb)).collect();
    // For each set of triggers, the playbook without a condition that decides first; on a tie
    // (the same priority and id), the first one read. Every playbook it decides before is
    // unreachable.
    let mut first: HashMap<&[String], &CompiledPlaybook> = HashMap::new();
    for (pb, key) in live.iter().zip(&keys) {
        if pb.condition.is_some() {
            continue;
        }
        let slot = first.entry(key.as_slice()).or_insert(pb);
        if rank(pb) > rank(slot) {
            *slot = pb;
        }
    }
    for (pb, key) in live.iter().zip(&keys) {
        let shadow = first.get(key.as_slice()).copied().filter(|other| rank(other) > rank(pb));
        if let Some(other) = shadow {
            let mut d = Diagnostic::new(
                Code::UnreachablePlaybook,
                format!("`{}` can never decide: `{}` always comes first", pb.id, other.id),
            )
            .at(&pb.file, pb.ast.id.span, "unreachable");
            let why = if other.priority == pb.priority {
                format!("both have priority {}, and `{}` sorts first by id", pb.priority, other.id)
            } else {
                format!("its priority is {}, this one's {}", other.priority, pb.priority)
            };
            let help = format!(
                "`{}` has the same triggers and no `when` condition, and it decides first ({why}), so it takes every event `{}` would match; narrow one of the triggers, add a `when` condition to `{}`, or merge the two",
                other.id, pb.id, other.id
            );
            if std::sync::Arc::ptr_eq(&other.file, &pb.file) {
                d = d.with_secondary(other.ast.id.span, "decides first");
            }
            diags.push(d.with_help(help));
        }
    }
}
