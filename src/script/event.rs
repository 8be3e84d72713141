//! The event as conditions see it: `event.service`, `event.labels.pod`, `event.payload.x`.
//!
//! Built once per event, not once per condition, and only with the fields the conditions
//! read ([`Reads`], found by the compiler): the payload (a whole JSON document) and the
//! times (formatted text) cost the most, and most conditions read neither.

use crate::event::Event;
use rhai::{Array, Dynamic, Map};
use std::collections::BTreeMap;

/// The top-level fields of `event` in conditions, in the order of [`Reads`]' bits.
pub const FIELDS: [&str; 15] = [
    "id",
    "source",
    "kind",
    "status",
    "fingerprint",
    "service",
    "severity",
    "summary",
    "labels",
    "annotations",
    "links",
    "occurred_at",
    "received_at",
    "delivery_id",
    "payload",
];

/// Which top-level fields of `event` a condition may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads(u16);

impl Reads {
    pub const NONE: Reads = Reads(0);
    /// Every field: for a condition that uses `event` other than through a named field.
    pub const ALL: Reads = Reads((1 << FIELDS.len()) - 1);

    /// The field `name`; `ALL` for a name that is not a field (the compiler reports it).
    pub fn field(name: &str) -> Reads {
        FIELDS.iter().position(|f| *f == name).map_or(Reads::ALL, |i| Reads(1 << i))
    }

    pub fn union(self, other: Reads) -> Reads {
        Reads(self.0 | other.0)
    }

    pub fn contains(self, other: Reads) -> bool {
        self.0 & other.0 == other.0
    }

    fn has(self, i: usize) -> bool {
        self.0 & (1 << i) != 0
    }
}

fn string_map(m: &BTreeMap<String, String>) -> Dynamic {
    Dynamic::from_map(m.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect::<Map>())
}

fn opt(v: &Option<String>) -> Dynamic {
    v.as_ref().map_or(Dynamic::UNIT, |s| Dynamic::from(s.clone()))
}

fn value(event: &Event, i: usize) -> Dynamic {
    match FIELDS[i] {
        "id" => event.id.clone().into(),
        "source" => event.source.clone().into(),
        "kind" => event.kind.as_str().into(),
        "status" => event.status.as_str().into(),
        "fingerprint" => event.fingerprint.clone().into(),
        "service" => opt(&event.service),
        "severity" => event.severity.as_str().into(),
        "summary" => event.summary.clone().into(),
        "labels" => string_map(&event.labels),
        "annotations" => string_map(&event.annotations),
        "links" => {
            let links: Array = event
                .links
                .iter()
                .map(|l| {
                    let mut link = Map::new();
                    link.insert("rel".into(), l.rel.clone().into());
                    link.insert("url".into(), l.url.clone().into());
                    Dynamic::from_map(link)
                })
                .collect();
            links.into()
        }
        "occurred_at" => event.occurred_at.to_rfc3339().into(),
        "received_at" => event.received_at.to_rfc3339().into(),
        "delivery_id" => opt(&event.delivery_id),
        // A payload rhai cannot hold (nested past its limits) reads as `()`, like a missing field.
        _ => rhai::serde::to_dynamic(&event.payload).unwrap_or(Dynamic::UNIT),
    }
}

/// The `event` map with the fields in `reads`.
pub fn event_map(event: &Event, reads: Reads) -> Map {
    let mut m = Map::new();
    for (i, name) in FIELDS.iter().enumerate() {
        if reads.has(i) {
            m.insert((*name).into(), value(event, i));
        }
    }
    m
}
