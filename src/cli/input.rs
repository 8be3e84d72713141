//! Reading events for `explain`, `replay` and `test`: payload files (the source told or
//! inferred), normalized events, and JSON Lines of either.

use crate::analysis::{Input, builtin};
use crate::event::Event;
use crate::ingest;
use crate::knowledge::{Catalog, Knowledge};
use crate::triage::Analysis;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Which source sent `doc`, judged from its shape (a file has no headers to tell).
pub fn infer_source(doc: &Value) -> Option<&'static str> {
    let guess = guess_source(doc)?;
    (guess == NORMALIZED || ingest::SOURCES.contains(&guess)).then_some(guess)
}

fn guess_source(doc: &Value) -> Option<&'static str> {
    let has = |o: &serde_json::Map<String, Value>, keys: &[&str]| keys.iter().any(|k| o.contains_key(*k));
    if let Some(items) = doc.as_array() {
        let first = items.first()?.as_object()?;
        return first.contains_key("specversion").then_some("cloudevents");
    }
    let obj = doc.as_object()?;
    if let Some(alerts) = obj.get("alerts").and_then(Value::as_array) {
        // Grafana's unified payload extends Alertmanager's with these.
        let grafana_alert = alerts
            .first()
            .and_then(Value::as_object)
            .is_some_and(|a| has(a, &["valueString", "dashboardURL", "panelURL", "values", "imageURL"]));
        if grafana_alert || has(obj, &["orgId", "title", "state", "message"]) {
            return Some("grafana");
        }
        if has(obj, &["groupKey", "receiver", "version"]) {
            return Some("alertmanager");
        }
    }
    if has(obj, &["ruleId", "ruleName", "evalMatches"]) {
        return Some("grafana");
    }
    if obj.get("event").and_then(|e| e.get("event_type")).is_some() || obj.get("messages").is_some_and(Value::is_array)
    {
        return Some("pagerduty");
    }
    if obj.contains_key("specversion") {
        return Some("cloudevents");
    }
    if has(obj, &["zen", "hook_id", "repository", "workflow_run", "deployment"]) && has(obj, &["sender", "hook", "zen"])
    {
        return Some("github");
    }
    if has(obj, &["alert_transition", "alert_id", "alert_cycle_key"])
        || (has(obj, &["event_type"]) && has(obj, &["last_updated"]) && has(obj, &["org"]))
    {
        return Some("datadog");
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

/// The catalog at `paths` (none when empty). A catalog with errors is refused: decisions on
/// a half-read catalog would mislead.
pub fn load_catalog(paths: &[PathBuf]) -> Result<Arc<Catalog>, String> {
    if paths.is_empty() {
        return Ok(Arc::new(Catalog::default()));
    }
    let (catalog, diagnostics) = Catalog::load(paths)?;
    let errors: Vec<String> =
        diagnostics.iter().filter(|d| d.is_error()).map(|d| crate::diagnostics::render_human(d, false)).collect();
    if !errors.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "the catalog has {} error{}; run `sparky check --catalog {}` to see them all\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            shown.join(" --catalog "),
            errors.join("\n")
        ));
    }
    Ok(Arc::new(catalog))
}

/// `--catalog` as given, or `./catalog` when it exists.
pub fn catalog_paths(given: &Option<Vec<PathBuf>>) -> Vec<PathBuf> {
    crate::knowledge::catalog::paths_or_default(given.as_deref())
}

/// The analysis `explain`, `replay` and `test` use when a decision wants one: the context
/// file's when it gives one (to ask "what if"), otherwise the built-in analyzer's, as the
/// daemon would gather it (the remote analyzer is the daemon's alone: these commands never
/// touch the network).
pub fn analyzer(
    given: &Option<Analysis>,
    now: DateTime<Utc>,
) -> impl FnOnce(&Event, &Knowledge) -> Option<Analysis> + '_ {
    move |event, knowledge| match given {
        Some(a) => Some(a.clone()),
        None => Some(builtin::analyze(&Input { event, knowledge, now })),
    }
}

#[cfg(test)]
mod inference {
    use super::*;

    /// Every real payload is recognised as its sender's, from its shape alone (CloudEvents in
    /// binary mode excepted: their context is in headers, the body is bare data).
    #[test]
    fn every_fixture_payload_is_recognised() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest");
        let mut checked = 0;
        for source in ingest::SOURCES {
            let Ok(dir) = std::fs::read_dir(root.join(source)) else { continue };
            for f in dir.map(|e| e.unwrap().path()) {
                let name = f.to_string_lossy().to_string();
                if !name.ends_with(".json") || name.ends_with(".headers.json") {
                    continue;
                }
                let headers = std::fs::read_to_string(f.with_extension("headers.json")).unwrap_or_default();
                if headers.contains("ce-specversion") {
                    continue;
                }
                let doc: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
                assert_eq!(infer_source(&doc), Some(*source), "{name}");
                checked += 1;
            }
        }
        assert!(checked >= 30, "{checked}");
    }
}
