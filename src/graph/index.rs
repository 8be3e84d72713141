//! The trigger index: from an event to the triggers that could match it, without looking at
//! the triggers that cannot.
//!
//! Triggers are bucketed by `(source, kind)` (either may be "any"). Inside a bucket, a
//! trigger with an equality or membership matcher is filed under that field and each of its
//! values; one without is kept aside and always tried. Looking an event up costs four bucket
//! probes plus one hash probe per indexed field of each bucket: it does not grow with the
//! number of triggers that cannot match.

use super::matcher::field_value;
use crate::compile::{CompiledMatcher, Field, Scalar, Test};
use crate::event::Event;
use std::collections::HashMap;

/// A trigger: which playbook, and which of its `on` statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TriggerRef {
    pub playbook: usize,
    pub trigger: usize,
}

#[derive(Debug, Default)]
struct Bucket {
    /// Field → value → triggers requiring that value.
    by_field: HashMap<Field, HashMap<String, Vec<TriggerRef>>>,
    /// Triggers with no equality or membership matcher.
    rest: Vec<TriggerRef>,
}

/// The index over every event trigger of a ruleset.
#[derive(Debug, Default)]
pub struct TriggerIndex {
    /// Source → kind → bucket; `""` stands for "any" so an event is looked up by `&str`,
    /// without building keys.
    buckets: HashMap<String, HashMap<String, Bucket>>,
}

/// The text an equality value is filed under; numbers and booleans as the event would spell
/// them.
fn key_of(s: &Scalar) -> Option<String> {
    match s {
        Scalar::Str(s) => Some(s.clone()),
        // Numbers may be spelt many ways in a payload (`1`, `1.0`): leave them to the residual
        // check rather than index one spelling.
        Scalar::Int(_) | Scalar::Float(_) => None,
        Scalar::Bool(b) => Some(b.to_string()),
    }
}

/// The matcher to file a trigger under: the first equality or membership on a string value,
/// preferring `labels.alertname` (the most selective field of alerts).
fn indexable(matchers: &[CompiledMatcher]) -> Option<(&Field, Vec<String>)> {
    let keys = |m: &CompiledMatcher| -> Option<Vec<String>> {
        match &m.test {
            Test::Eq(s) => key_of(s).map(|k| vec![k]),
            Test::In(vals) => vals.iter().map(key_of).collect(),
            _ => None,
        }
    };
    let alertname = Field::Label("alertname".into());
    matchers.iter().filter(|m| m.field == alertname).chain(matchers.iter()).find_map(|m| keys(m).map(|k| (&m.field, k)))
}

impl TriggerIndex {
    pub fn insert(&mut self, at: TriggerRef, source: Option<&str>, kind: Option<&str>, matchers: &[CompiledMatcher]) {
        let bucket = self
            .buckets
            .entry(source.unwrap_or_default().to_string())
            .or_default()
            .entry(kind.unwrap_or_default().to_string())
            .or_default();
        match indexable(matchers) {
            Some((field, keys)) => {
                let by_value = bucket.by_field.entry(field.clone()).or_default();
                for k in keys {
                    let list = by_value.entry(k).or_default();
                    if !list.contains(&at) {
                        list.push(at);
                    }
                }
            }
            None => bucket.rest.push(at),
        }
    }

    /// The triggers that could match `event`, sorted, without duplicates. Every one still has
    /// to pass all its matchers.
    pub fn candidates(&self, event: &Event) -> Vec<TriggerRef> {
        let (source, kind) = (event.source.as_str(), event.kind.as_str());
        let mut out = Vec::new();
        for (s, k) in [(source, kind), (source, ""), ("", kind), ("", "")] {
            let Some(bucket) = self.buckets.get(s).and_then(|by_kind| by_kind.get(k)) else { continue };
            out.extend_from_slice(&bucket.rest);
            for (field, by_value) in &bucket.by_field {
                if let Some(value) = field_value(event, field)
                    && let Some(found) = by_value.get(value.as_ref())
                {
                    out.extend_from_slice(found);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}
