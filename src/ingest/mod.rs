//! Ingest: raw webhook payloads to normalized [`Event`]s, one file per source.
//!
//! A normalizer is pure: bytes and the time of receipt in, events out. Authentication,
//! deduplication and the durable inbox belong to the daemon; this stage only reads.

pub mod alertmanager;

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
                write!(f, "not a valid {source} payload: `{path}` {reason}")
            }
            IngestError::UnknownSource(s) => write!(f, "unknown source `{s}`; known sources: {}", SOURCES.join(", ")),
        }
    }
}

impl std::error::Error for IngestError {}

/// Sources with a normalizer.
pub const SOURCES: &[&str] = &["alertmanager"];

/// Normalizes one delivery from `source`.
pub fn normalize(source: &str, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    match source {
        "alertmanager" => alertmanager::normalize(body, received_at),
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
