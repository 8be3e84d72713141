//! Ingest: raw webhook payloads to normalized [`Event`]s, one file per source.
//!
//! A normalizer is pure: the delivery's headers, its body and the time of receipt in, events
//! out. Authentication (`auth`) checks a delivery before it is read; `delivery` says which
//! delivery it is (the key a retry shares); the durable inbox belongs to the store.

pub mod alertmanager;
pub mod auth;
pub mod cloudevents;
pub mod datadog;
pub(crate) mod delivery;
pub mod generic;
pub mod github;
pub mod grafana;
pub mod pagerduty;

use crate::event::Event;
use chrono::{DateTime, Utc};
use std::fmt;

/// The events of one delivery, with what the reader noticed on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub events: Vec<Event>,
    /// Things worth recording that are not errors (e.g. alerts the sender left out).
    pub notes: Vec<String>,
}

/// Why a payload could not be read. Messages are for the person who sent it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum IngestError {
    /// The body is not JSON.
    NotJson { line: usize, column: usize, reason: String },
    /// JSON, but not what the source sends.
    Shape { source: &'static str, path: String, reason: String },
    /// No normalizer for this source.
    UnknownSource(String),
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::NotJson { line, column, reason } => {
                write!(f, "the body is not valid JSON (line {line}, column {column}: {reason})")
            }
            IngestError::Shape { source, path, reason } => {
                write!(f, "not a valid {source} payload: `{}` {}", clip_sized(path, 100), clip_sized(reason, 250))
            }
            IngestError::UnknownSource(s) => {
                write!(f, "unknown source `{}`; known sources: {}", clip_sized(s, 100), SOURCES.join(", "))
            }
        }
    }
}

/// Sender text quoted in a message, cut to `max` characters (`…` marks the cut).
pub(crate) fn clip(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((i, _)) => std::borrow::Cow::Owned(format!("{}…", &text[..i])),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// Sender text quoted inside a longer message: 80 characters at most.
pub(crate) fn quote(text: &str) -> String {
    clip(text, 80).into_owned()
}

/// An error's quoted sender text: clipped, with its full size when it was cut. It goes back
/// to the sender and into the logs.
fn clip_sized(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match clip(text, max) {
        std::borrow::Cow::Owned(cut) => std::borrow::Cow::Owned(format!("{cut} ({} bytes in all)", text.len())),
        whole => whole,
    }
}

/// Text of a JSON scalar: strings as they are, numbers and booleans written out.
pub(crate) fn scalar_text(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn long_sender_text_is_cut_in_messages() {
        let e = super::IngestError::Shape {
            source: "grafana",
            path: "alerts[0].startsAt".into(),
            reason: format!("is not `{}`", "é".repeat(40_000)),
        };
        let m = e.to_string();
        assert!(m.len() < 700 && m.ends_with("(80009 bytes in all)"), "{}", m.len());
    }
}

impl std::error::Error for IngestError {}

/// Sources with a normalizer.
pub const SOURCES: &[&str] = &["alertmanager", "grafana", "datadog", "pagerduty", "github", "cloudevents"];

/// The HTTP headers of a delivery: names lowercased, values as sent (a header sent several
/// times appears several times, in order). Normalizers read the ones their sender sets (an
/// event type, a delivery id); HTTP itself stays in the daemon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers: a payload read from a file.
    pub fn none() -> Headers {
        Headers::default()
    }

    /// Headers from (name, value) pairs; names are lowercased.
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Headers {
        Headers(pairs.into_iter().map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into())).collect())
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (any case), in the order sent.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Normalizes one delivery from `source`.
pub fn normalize(
    source: &str,
    headers: &Headers,
    body: &[u8],
    received_at: DateTime<Utc>,
) -> Result<Batch, IngestError> {
    match source {
        "alertmanager" => alertmanager::normalize(body, received_at),
        "grafana" => grafana::normalize(headers, body, received_at),
        "datadog" => datadog::normalize(headers, body, received_at),
        "pagerduty" => pagerduty::normalize(headers, body, received_at),
        "github" => github::normalize(headers, body, received_at),
        "cloudevents" => cloudevents::normalize(headers, body, received_at),
        other => Err(IngestError::UnknownSource(other.to_string())),
    }
}

/// Parses a JSON body, turning serde's error into one for people.
pub(crate) fn parse_json(body: &[u8]) -> Result<serde_json::Value, IngestError> {
    serde_json::from_slice(body).map_err(|e| IngestError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: e.to_string().split(" at line").next().unwrap_or("").to_string(),
    })
}
