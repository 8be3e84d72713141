//! The rule graph: compiled playbooks in triage order, with the index over their triggers.
//!
//! Immutable and `Send + Sync`: the daemon swaps whole graphs on reload and evaluates events
//! against one from many tasks at once. It carries the ruleset hash that every decision
//! records, so a decision can always be traced to the exact playbooks that made it.

pub mod index;
pub mod matcher;

use crate::compile::{Compiled, CompiledPlaybook, CompiledTrigger, Status};
use crate::event::{Event, Kind};
use index::{TriggerIndex, TriggerRef};
use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::Arc;

pub struct RuleGraph {
    /// In triage order: explicit priority (higher first), then specificity (more matchers
    /// first), then id.
    playbooks: Vec<CompiledPlaybook>,
    index: TriggerIndex,
    /// Playbook id → position, for playbooks with a schedule trigger.
    scheduled: HashMap<String, usize>,
    engine: Arc<rhai::Engine>,
    hash: String,
}

/// The number of matchers of a playbook's most specific event trigger.
pub fn specificity(pb: &CompiledPlaybook) -> usize {
    pb.triggers
        .iter()
        .map(|t| match t {
            CompiledTrigger::Event { matchers, .. } => matchers.len(),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

impl RuleGraph {
    /// Builds the graph from a compilation; playbooks with errors are not in `compiled`.
    pub fn build(compiled: &Compiled) -> RuleGraph {
        let mut playbooks = compiled.playbooks.clone();
        playbooks.sort_by(|a, b| {
            (Reverse(a.priority), Reverse(specificity(a)), &a.id).cmp(&(
                Reverse(b.priority),
                Reverse(specificity(b)),
                &b.id,
            ))
        });
        let mut index = TriggerIndex::default();
        let mut scheduled = HashMap::new();
        // Disabled playbooks stay in the graph (so `sparky explain` can say so) but out of the
        // index: triage never considers them.
        for (p, pb) in playbooks.iter().enumerate().filter(|(_, pb)| pb.status != Status::Disabled) {
            for (t, trigger) in pb.triggers.iter().enumerate() {
                match trigger {
                    CompiledTrigger::Event { kind, source, matchers, .. } => {
                        let at = TriggerRef { playbook: p, trigger: t };
                        index.insert(at, source.as_deref(), kind.as_deref(), matchers);
                    }
                    CompiledTrigger::Every { .. } | CompiledTrigger::Cron { .. } => {
                        scheduled.insert(pb.id.clone(), p);
                    }
                }
            }
        }
        RuleGraph { playbooks, index, scheduled, engine: compiled.engine.clone(), hash: compiled.ruleset_hash.clone() }
    }

    pub fn playbooks(&self) -> &[CompiledPlaybook] {
        &self.playbooks
    }

    /// The content hash of the sources the graph was built from.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The sandboxed engine holding the library the conditions were compiled with.
    pub fn engine(&self) -> &rhai::Engine {
        &self.engine
    }

    /// The triggers the index finds for `event`: a superset of those that match.
    pub fn candidates(&self, event: &Event) -> Vec<TriggerRef> {
        self.index.candidates(event)
    }

    /// For a `schedule` event, the playbook whose schedule it is (named by `labels.playbook`).
    pub fn scheduled(&self, event: &Event) -> Option<usize> {
        if event.kind != Kind::Schedule {
            return None;
        }
        self.scheduled.get(event.labels.get("playbook")?).copied()
    }

    /// The playbooks (by position) with a trigger whose every matcher holds for `event`, in
    /// triage order, each with the first such trigger.
    pub fn matching(&self, event: &Event) -> Vec<TriggerRef> {
        let mut out: Vec<TriggerRef> = Vec::new();
        for c in self.candidates(event) {
            if out.last().is_some_and(|l| l.playbook == c.playbook) {
                continue;
            }
            if let CompiledTrigger::Event { matchers, .. } = &self.playbooks[c.playbook].triggers[c.trigger]
                && matchers.iter().all(|m| matcher::matches(m, event))
            {
                out.push(c);
            }
        }
        out
    }
}

// The daemon shares one graph between tasks: keep it so.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RuleGraph>();
};
