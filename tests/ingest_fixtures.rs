//! Normalizers against real payloads: every file in `tests/fixtures/ingest/<source>/` becomes
//! an insta snapshot of its normalized events (`received_at` fixed, so snapshots are stable).
//! A payload's headers, when its sender sets ones the normalizer reads (an event type, a
//! delivery id, CloudEvents' `ce-*`), sit beside it in `<name>.headers.json` (an object of
//! header name to value) and are part of the snapshot.

use chrono::{TimeZone, Utc};
use sparky::ingest;
use std::path::Path;

fn run_source(source: &str) -> usize {
    let dir = Path::new("tests/fixtures/ingest").join(source);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".headers.json"))
        .collect();
    files.sort();
    let received = Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
    for f in &files {
        let body = std::fs::read(f).unwrap();
        let headers_file = f.with_extension("headers.json");
        let header_map: serde_json::Map<String, serde_json::Value> = match std::fs::read(&headers_file) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", headers_file.display())),
            Err(_) => Default::default(),
        };
        let headers = ingest::Headers::from_pairs(
            header_map.iter().map(|(k, v)| (k.as_str(), v.as_str().expect("header values are strings").to_string())),
        );
        let batch =
            ingest::normalize(source, &headers, &body, received).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!batch.events.is_empty(), "{}: no events", f.display());
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new("fixtures/ingest").join(source).join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(f);
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let view = if header_map.is_empty() {
            serde_json::json!({ "notes": batch.notes, "events": batch.events })
        } else {
            serde_json::json!({ "headers": header_map, "notes": batch.notes, "events": batch.events })
        };
        settings.bind(|| insta::assert_json_snapshot!(name, view));
    }
    files.len()
}

#[test]
fn alertmanager_payloads() {
    assert!(run_source("alertmanager") >= 9);
}

#[test]
fn alertmanager_groups_become_one_event_per_alert() {
    let body = std::fs::read(
        "tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing_plus_resolved.json",
    )
    .unwrap();
    let batch = ingest::normalize("alertmanager", &ingest::Headers::none(), &body, Utc::now()).unwrap();
    let statuses: Vec<&str> = batch.events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"firing") && statuses.contains(&"resolved"), "{statuses:?}");
    let body =
        std::fs::read("tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodNotReady_max_alerts_truncated.json")
            .unwrap();
    let batch = ingest::normalize("alertmanager", &ingest::Headers::none(), &body, Utc::now()).unwrap();
    assert_eq!(batch.events.len(), 5);
    assert!(batch.notes.iter().any(|n| n.contains("left out 3 alert(s)")), "{:?}", batch.notes);
}

#[test]
fn repeated_notifications_keep_their_event_id() {
    let body =
        std::fs::read("tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json").unwrap();
    let a = ingest::normalize("alertmanager", &ingest::Headers::none(), &body, Utc::now()).unwrap();
    let b =
        ingest::normalize("alertmanager", &ingest::Headers::none(), &body, Utc::now() + chrono::Duration::minutes(5))
            .unwrap();
    assert_eq!(a.events[0].id, b.events[0].id);
    assert_eq!(a.events[0].service.as_deref(), Some("payments-api"));
    assert_eq!(a.events[0].fingerprint, "alertmanager/19f9209d83a3de2e");
}

#[test]
fn unknown_sources_and_bad_bodies_are_errors_for_people() {
    let e = ingest::normalize("nagios", &ingest::Headers::none(), b"{}", Utc::now()).unwrap_err().to_string();
    assert!(e.starts_with("unknown source `nagios`"), "{e}");
    let e =
        ingest::normalize("alertmanager", &ingest::Headers::none(), b"not json", Utc::now()).unwrap_err().to_string();
    assert!(e.starts_with("the body is not valid JSON (line 1, column 2"), "{e}");
}
