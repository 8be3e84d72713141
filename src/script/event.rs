//! The event as conditions see it: `event.service`, `event.labels.pod`, `event.payload.x`.
//!
//! Built once per event, not once per condition: the rule graph shares one map between every
//! condition it evaluates for the event. The payload (the costly part: a whole JSON document)
//! is converted only when a condition reads it.

use crate::event::Event;
use rhai::{Array, Dynamic, Map};
use std::collections::BTreeMap;

fn string_map(m: &BTreeMap<String, String>) -> Dynamic {
    Dynamic::from_map(m.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect::<Map>())
}

fn opt(v: &Option<String>) -> Dynamic {
    v.as_ref().map_or(Dynamic::UNIT, |s| Dynamic::from(s.clone()))
}

/// The `event` map, without its payload unless `payload` (see [`add_payload`]).
pub fn event_map(event: &Event, payload: bool) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), event.id.clone().into());
    m.insert("source".into(), event.source.clone().into());
    m.insert("kind".into(), event.kind.as_str().into());
    m.insert("status".into(), event.status.as_str().into());
    m.insert("fingerprint".into(), event.fingerprint.clone().into());
    m.insert("service".into(), opt(&event.service));
    m.insert("severity".into(), event.severity.as_str().into());
    m.insert("summary".into(), event.summary.clone().into());
    m.insert("labels".into(), string_map(&event.labels));
    m.insert("annotations".into(), string_map(&event.annotations));
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
    m.insert("links".into(), links.into());
    m.insert("occurred_at".into(), event.occurred_at.to_rfc3339().into());
    m.insert("received_at".into(), event.received_at.to_rfc3339().into());
    m.insert("delivery_id".into(), opt(&event.delivery_id));
    if payload {
        add_payload(&mut m, event);
    }
    m
}

/// Adds `payload` to a map built by [`event_map`]. A payload rhai cannot hold (nested past
/// its limits) is left out: reading it gives `()`, as for a missing field.
pub fn add_payload(map: &mut Map, event: &Event) {
    let value = rhai::serde::to_dynamic(&event.payload).unwrap_or(Dynamic::UNIT);
    map.insert("payload".into(), value);
}
