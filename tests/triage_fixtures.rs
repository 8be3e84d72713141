//! Triage fixtures: every folder under `tests/fixtures/triage/` is one case.
//!
//! A case holds `events.json` (a payload as its sender posts it, JSON Lines of payloads, or
//! normalized events), optionally `playbooks/` (the shipped `playbooks/` when absent),
//! `context.yaml` (the `--context` of `sparky explain`) and `source` (a file holding the
//! `--source` name), and `README.md` saying what it shows. The decisions, as
//! `sparky explain --format json` prints them, are snapshotted in `snapshots/<case>.snap`
//! with the decision time and the ruleset hash redacted.

use chrono::{DateTime, Utc};
use sparky::cli::explain::{Request, decide_file, to_json};
use std::path::{Path, PathBuf};

/// "Now" for cases whose context does not set it.
fn default_now() -> DateTime<Utc> {
    "2026-03-10T08:20:00Z".parse().unwrap()
}

fn redact(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if k == "decided_at" {
                    *val = serde_json::Value::String("[time]".into());
                } else if k == "ruleset" {
                    // Checked against the graph in triage_properties; here it would change
                    // with every edit of the shipped playbooks.
                    *val = serde_json::Value::String("[ruleset]".into());
                } else {
                    redact(val);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn run_case(dir: &Path) -> serde_json::Value {
    let own = dir.join("playbooks");
    let playbooks = vec![if own.is_dir() { own } else { PathBuf::from("playbooks") }];
    let context = dir.join("context.yaml");
    let catalog: Vec<PathBuf> = Some(dir.join("catalog")).filter(|c| c.is_dir()).into_iter().collect();
    let source = std::fs::read_to_string(dir.join("source")).ok().map(|s| s.trim().to_string());
    let events = ["events.json", "events.jsonl"].iter().map(|f| dir.join(f)).find(|p| p.exists());
    let events = events.unwrap_or_else(|| panic!("{}: no events.json or events.jsonl", dir.display()));
    let req = Request {
        event_file: Some(&events),
        schedule: None,
        at: None,
        source: source.as_deref(),
        playbooks: &playbooks,
        context: context.exists().then_some(context.as_path()),
        catalog: &catalog,
        now: default_now(),
        explain_all: true,
    };
    let explained = decide_file(&req).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    // The index must not change a decision: deciding from candidates only gives the same.
    let fast = decide_file(&Request { explain_all: false, ..req }).unwrap();
    for ((_, a), (_, b)) in explained.decided.iter().zip(&fast.decided) {
        let (mut a, mut b) = (a.clone(), b.clone());
        a.trace.clear();
        b.trace.clear();
        assert_eq!(a, b, "{}: the decision depends on explain_all", dir.display());
    }
    let mut json = to_json(&explained, false);
    redact(&mut json);
    json
}

#[test]
fn triage_fixtures() {
    let root = Path::new("tests/fixtures/triage");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(root).unwrap().filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
    cases.retain(|p| p.file_name().is_some_and(|n| n != "snapshots"));
    cases.sort();
    assert!(cases.len() >= 25, "the triage needs at least 25 fixtures, found {}", cases.len());
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        assert!(dir.join("README.md").exists(), "{name}: every fixture says what it shows in README.md");
        let json = run_case(&dir);
        insta::with_settings!({ snapshot_path => "fixtures/triage/snapshots", prepend_module_to_snapshot => false, input_file => &dir }, {
            insta::assert_json_snapshot!(name.clone(), json);
        });
    }
}
