//! Reading events for `explain`, `replay` and `test`: payload files (the source told or
//! inferred), normalized events, and JSON Lines of either.

use crate::event::Event;
use crate::ingest;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;

/// The name `--source` takes for a file of normalized events (Sparky's own format).
pub const NORMALIZED: &str = "event";

/// Every name `--source` accepts.
pub fn source_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = ingest::SOURCES.to_vec();
    names.push(NORMALIZED);
    names
}

/// Checks a `--source` value before any file is read.
pub fn check_source(source: Option<&str>) -> Result<(), String> {
    match source {
        Some(s) if !source_names().contains(&s) => {
            Err(format!("unknown source `{s}`; known sources: {}", source_names().join(", ")))
        }
        _ => Ok(()),
    }
}

/// Which source sent `doc`, judged from its shape.
pub fn infer_source(doc: &Value) -> Option<&'static str> {
    let obj = doc.as_object()?;
    if obj.get("alerts").is_some_and(Value::is_array)
        && (obj.contains_key("groupKey") || obj.contains_key("receiver") || obj.contains_key("version"))
    {
        return Some("alertmanager");
    }
    if ["source", "kind", "status", "fingerprint"].iter().all(|k| obj.contains_key(*k)) {
        return Some(NORMALIZED);
    }
    None
}

/// The events of one JSON document.
pub fn events_of(
    doc: &Value,
    raw: &[u8],
    source: Option<&str>,
    received_at: DateTime<Utc>,
) -> Result<(Vec<Event>, Vec<String>), String> {
    let source = match source {
        Some(s) => s,
        None => infer_source(doc).ok_or_else(|| {
            format!("cannot tell which source sent it; pass `--source` (known sources: {})", source_names().join(", "))
        })?,
    };
    if source == NORMALIZED {
        let event: Event = serde_json::from_value(doc.clone()).map_err(|e| format!("not a normalized event: {e}"))?;
        return Ok((vec![event], Vec::new()));
    }
    let batch = ingest::normalize(source, &ingest::Headers::none(), raw, received_at).map_err(|e| e.to_string())?;
    Ok((batch.events, batch.notes))
}

/// Reads the events in `path`: one JSON document, or JSON Lines (one document per line).
pub fn read_file(
    path: &Path,
    source: Option<&str>,
    received_at: DateTime<Utc>,
) -> Result<(Vec<Event>, Vec<String>), String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    read_bytes(&text, source, received_at).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the events in `bytes` (see [`read_file`]).
pub fn read_bytes(
    bytes: &[u8],
    source: Option<&str>,
    received_at: DateTime<Utc>,
) -> Result<(Vec<Event>, Vec<String>), String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(doc) => events_of(&doc, bytes, source, received_at),
        Err(whole) => {
            let lines: Vec<(usize, &[u8])> = bytes
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .collect();
            if lines.len() < 2 {
                return Err(format!("not valid JSON: {whole}"));
            }
            let (mut events, mut notes) = (Vec::new(), Vec::new());
            for (n, line) in lines {
                let doc: Value = serde_json::from_slice(line)
                    .map_err(|e| format!("line {}: not valid JSON (JSON Lines: one document per line): {e}", n + 1))?;
                let (e, mut found) =
                    events_of(&doc, line, source, received_at).map_err(|e| format!("line {}: {e}", n + 1))?;
                events.extend(e);
                notes.append(&mut found);
            }
            Ok((events, notes))
        }
    }
}

/// Compiles the playbooks under `paths` into a rule graph; playbook errors refuse (the daemon
/// would keep its last good ruleset, so a decision without the broken playbook would mislead).
pub fn load_graph(paths: &[std::path::PathBuf]) -> Result<crate::graph::RuleGraph, String> {
    let sources = crate::compile::read_sources(paths)?;
    let compiled = crate::compile::compile(&sources);
    if compiled.errors() > 0 {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "the playbooks have {} error{}; run `sparky check {}` and fix {} first",
            compiled.errors(),
            if compiled.errors() == 1 { "" } else { "s" },
            shown.join(" "),
            if compiled.errors() == 1 { "it" } else { "them" }
        ));
    }
    Ok(crate::graph::RuleGraph::build(&compiled))
}

/// Reads a context file (`--context`): YAML, described in `docs/triage.md`.
pub fn load_context_file(path: &Path) -> Result<crate::triage::ContextFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_context(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a context from YAML text.
pub fn parse_context(text: &str) -> Result<crate::triage::ContextFile, String> {
    if text.trim().is_empty() {
        return Ok(Default::default());
    }
    serde_yaml::from_str(text).map_err(|e| format!("not a valid context: {e}"))
}
