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
fn cloudevents_payloads() {
    assert!(run_source("cloudevents") >= 6);
}

#[test]
fn grafana_payloads() {
    assert!(run_source("grafana") >= 5);
}

#[test]
fn datadog_payloads() {
    assert!(run_source("datadog") >= 1);
}

#[test]
fn pagerduty_payloads() {
    assert!(run_source("pagerduty") >= 6);
}

#[test]
fn github_payloads() {
    assert!(run_source("github") >= 9);
}

/// A fixture's body and the headers beside it (`<name>.headers.json`), if any.
fn fixture(path: &str) -> (ingest::Headers, Vec<u8>) {
    let path = Path::new("tests/fixtures/ingest").join(path);
    let body = std::fs::read(&path).unwrap();
    let pairs: serde_json::Map<String, serde_json::Value> = std::fs::read(path.with_extension("headers.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_default();
    let headers = ingest::Headers::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string())));
    (headers, body)
}

#[test]
fn redeliveries_keep_their_event_ids() {
    for source in ["grafana", "datadog", "pagerduty", "github", "cloudevents"] {
        let dir = Path::new("tests/fixtures/ingest").join(source);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().to_string();
            if !name.ends_with(".json") || name.ends_with(".headers.json") {
                continue;
            }
            let (headers, body) = fixture(&format!("{source}/{name}"));
            let a = ingest::normalize(source, &headers, &body, Utc::now()).unwrap();
            let b = ingest::normalize(source, &headers, &body, Utc::now() + chrono::Duration::hours(1)).unwrap();
            let ids = |b: &ingest::Batch| b.events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&a), ids(&b), "{source}/{name}");
            for e in &a.events {
                assert_eq!(e.source, source);
                assert!(e.fingerprint.starts_with(&format!("{source}/")), "{source}/{name}: {}", e.fingerprint);
            }
        }
    }
}

#[test]
fn grafana_groups_and_legacy_rules() {
    let (h, body) = fixture("grafana/unified_docs_example_firing_2alerts.json");
    let batch = ingest::normalize("grafana", &h, &body, Utc::now()).unwrap();
    assert_eq!(batch.events.len(), 2);
    assert_eq!(batch.events[0].fingerprint, "grafana/c6eadffa33fcdf37");
    let (h, body) = fixture("grafana/unified_unittest_max_alerts_truncated.json");
    let batch = ingest::normalize("grafana", &h, &body, Utc::now()).unwrap();
    assert!(batch.notes.iter().any(|n| n.contains("left out 1 alert(s)")), "{:?}", batch.notes);
    let (h, body) = fixture("grafana/unified_composed_resolved.json");
    let e = ingest::normalize("grafana", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.status.as_str(), e.severity.as_str()), ("resolved", "critical"));
    assert_eq!(e.service.as_deref(), Some("payments-api"));
    let rels: Vec<&str> = e.links.iter().map(|l| l.rel.as_str()).collect();
    assert_eq!(rels, ["source", "runbook", "dashboard", "panel", "silence", "grafana"]);
    let (h, body) = fixture("grafana/legacy_dashboard_alerting_example.json");
    let e = ingest::normalize("grafana", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.status.as_str(), e.fingerprint.as_str()), ("firing", "grafana/legacy/1/1"));
    assert_eq!(e.annotations["valueString"], "Count=1");
}

#[test]
fn datadog_custom_templates_are_read_as_strings() {
    let body = br#"{
        "alert_title": "payments-api p99 latency high",
        "alert_id": "81234567",
        "alert_transition": "Recovered",
        "alert_type": "success",
        "alert_priority": "P2",
        "aggreg_key": "9bd4ac313a4d1e8fae2482df7b77628",
        "tags": "service:payments-api,env:prod,team:payments,monitor",
        "hostname": "ip-10-0-1-12",
        "link": "https://app.datadoghq.com/event/event?id=42",
        "date": "1773134500000",
        "id": "42",
        "run_count": "not a number"
    }"#;
    let batch = ingest::normalize("datadog", &ingest::Headers::none(), body, Utc::now()).unwrap();
    let e = &batch.events[0];
    assert_eq!((e.status.as_str(), e.severity.as_str()), ("resolved", "high"));
    assert_eq!(e.fingerprint, "datadog/9bd4ac313a4d1e8fae2482df7b77628");
    assert_eq!(e.service.as_deref(), Some("payments-api"));
    assert_eq!(e.labels["env"], "prod");
    assert_eq!(e.labels["monitor"], "");
    assert_eq!(e.labels["host"], "ip-10-0-1-12");
    assert_eq!(e.labels["monitor_id"], "81234567");
    assert_eq!(e.occurred_at.to_rfc3339(), "2026-03-10T09:21:40+00:00");
    assert_eq!(e.links[0].rel, "source");
    assert_eq!(e.delivery_id, None, "`$ID` is the template's, not a delivery id");
    assert!(batch.notes.is_empty(), "{:?}", batch.notes);

    // Numbers where strings were expected, a date that is no date, no transition: read, noted.
    let body = br#"{"title": "disk full", "alert_id": 1234, "date": "yesterday", "tags": ["host:db-1"]}"#;
    let batch = ingest::normalize("datadog", &ingest::Headers::none(), body, Utc::now()).unwrap();
    let e = &batch.events[0];
    assert_eq!((e.status.as_str(), e.severity.as_str()), ("firing", "warning"));
    assert_eq!(e.fingerprint, "datadog/1234");
    assert_eq!(e.labels["host"], "db-1");
    assert!(batch.notes.iter().any(|n| n.contains("`date` is `yesterday`, not a time")), "{:?}", batch.notes);
    assert!(batch.notes.iter().any(|n| n.contains("no alert transition")), "{:?}", batch.notes);
}

#[test]
fn datadog_default_template_reads_its_title_and_links() {
    let (h, body) = fixture("datadog/default_payload_triggered.json");
    let e = ingest::normalize("datadog", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!(e.status.as_str(), "firing");
    assert_eq!(e.fingerprint, "datadog/81234567/service:payments-api");
    assert_eq!(e.service.as_deref(), Some("payments-api"));
    assert!(e.links.iter().any(|l| l.rel == "runbook"), "{:?}", e.links);
}

#[test]
fn datadog_form_encoded_bodies() {
    let body = b"alert_title=disk+full&alert_transition=Triggered&alert_id=77&tags=service%3Adb";
    let form = ingest::Headers::from_pairs([("Content-Type", "application/x-www-form-urlencoded")]);
    for headers in [form, ingest::Headers::none()] {
        let e = ingest::normalize("datadog", &headers, body, Utc::now()).unwrap().events.remove(0);
        assert_eq!((e.summary.as_str(), e.status.as_str()), ("disk full", "firing"));
        assert_eq!(e.service.as_deref(), Some("db"));
    }
}

#[test]
fn pagerduty_v2_messages_become_one_event_each() {
    let (_, trigger) = fixture("pagerduty/v2_legacy_incident.trigger.json");
    let (_, resolve) = fixture("pagerduty/v2_legacy_incident.resolve.json");
    let message = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap()["messages"][0].clone();
    let both = serde_json::json!({ "messages": [message(&trigger), message(&resolve)] });
    let batch =
        ingest::normalize("pagerduty", &ingest::Headers::none(), both.to_string().as_bytes(), Utc::now()).unwrap();
    let statuses: Vec<&str> = batch.events.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses, ["firing", "resolved"]);
    for e in &batch.events {
        assert_eq!(e.kind.as_str(), "incident");
        assert_eq!(e.fingerprint, "pagerduty/PRORDTY");
        assert_eq!(e.service.as_deref(), Some("Production XDB Cluster"));
        assert_eq!(e.delivery_id, None);
    }
}

#[test]
fn pagerduty_v3_incidents_and_changes() {
    let (h, body) = fixture("pagerduty/v3_incident.acknowledged.json");
    let e = ingest::normalize("pagerduty", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.kind.as_str(), e.status.as_str(), e.severity.as_str()), ("incident", "acknowledged", "critical"));
    assert_eq!(e.fingerprint, "pagerduty/PGR0VU2");
    assert_eq!(e.service.as_deref(), Some("API Service"));
    assert_eq!(e.delivery_id.as_deref(), h.get("x-webhook-id"));
    let (h, body) = fixture("pagerduty/v3_service.updated.json");
    let e = ingest::normalize("pagerduty", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.kind.as_str(), e.status.as_str()), ("change", "info"));
    // What Sparky sends to PagerDuty is not a webhook from it.
    let sent = br#"{"routing_key": "samplekeyhere", "event_action": "resolve", "dedup_key": "samplekeyhere"}"#;
    let e = ingest::normalize("pagerduty", &ingest::Headers::none(), sent, Utc::now()).unwrap_err().to_string();
    assert!(e.contains("Events API v2 event (what is sent to PagerDuty)"), "{e}");
}

#[test]
fn github_ping_gives_no_event() {
    let (h, body) = fixture("github/no_event/ping.json");
    let batch = ingest::normalize("github", &h, &body, Utc::now()).unwrap();
    assert!(batch.events.is_empty());
    assert_eq!(batch.notes.len(), 1);
    assert!(batch.notes[0].starts_with("GitHub ping for hook 109948940"), "{:?}", batch.notes);
    // Without the header, the body still reads as a ping.
    let batch = ingest::normalize("github", &ingest::Headers::none(), &body, Utc::now()).unwrap();
    assert!(batch.events.is_empty());
}

#[test]
fn github_form_encoded_bodies_read_like_json() {
    let (h, json) = fixture("github/push.json");
    let expected = ingest::normalize("github", &h, &json, Utc::now()).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish();
    let mut pairs: Vec<(String, String)> = h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let by_body = ingest::normalize("github", &ingest::Headers::from_pairs(pairs.clone()), form.as_bytes(), Utc::now());
    pairs.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
    let by_header = ingest::normalize("github", &ingest::Headers::from_pairs(pairs), form.as_bytes(), Utc::now());
    for got in [by_body.unwrap(), by_header.unwrap()] {
        assert_eq!(got.events[0].id, expected.events[0].id);
        assert_eq!(got.events[0].payload, expected.events[0].payload);
    }
}

#[test]
fn github_deploys_and_changes() {
    let kind_of = |name: &str| {
        let (h, body) = fixture(&format!("github/{name}.json"));
        let e = ingest::normalize("github", &h, &body, Utc::now()).unwrap().events.remove(0);
        (e.kind.as_str().to_string(), e.status.as_str().to_string(), e.labels.get("event").cloned().unwrap_or_default())
    };
    assert_eq!(kind_of("deployment.created"), ("deploy".into(), "info".into(), "deployment".into()));
    assert_eq!(kind_of("deployment_status.created"), ("deploy".into(), "info".into(), "deployment_status".into()));
    assert_eq!(kind_of("workflow_run.completed"), ("change".into(), "info".into(), "workflow_run".into()));
    assert_eq!(kind_of("repository_dispatch"), ("change".into(), "info".into(), "repository_dispatch".into()));
    let (h, body) = fixture("github/deployment_status.created.json");
    let e = ingest::normalize("github", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!(e.labels["state"], "success");
    assert_eq!(e.labels["environment"], "production");
    assert_eq!(e.service.as_deref(), Some("Hello-World"));
    assert_eq!(e.fingerprint, "github/Codertocat/Hello-World/deployments/145988746");
    assert_eq!(e.delivery_id.as_deref(), h.get("x-github-delivery"));

    // A failed deploy stays `info` (a deploy has no life cycle) but is a warning.
    let mut failed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    failed["deployment_status"]["state"] = "failure".into();
    let e = ingest::normalize("github", &h, failed.to_string().as_bytes(), Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.status.as_str(), e.severity.as_str()), ("info", "warning"));
    assert_eq!(e.labels["state"], "failure");

    // A workflow run is a deploy when its name (or file, or trigger) says so.
    let (h, body) = fixture("github/workflow_run.completed.json");
    let mut run: serde_json::Value = serde_json::from_slice(&body).unwrap();
    run["workflow"]["name"] = "Deploy to production".into();
    run["workflow_run"]["conclusion"] = "failure".into();
    let e = ingest::normalize("github", &h, run.to_string().as_bytes(), Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.kind.as_str(), e.severity.as_str()), ("deploy", "warning"));
    assert_eq!(e.labels["conclusion"], "failure");
}

/// Every `json payload` block of a source's page, with the `json headers` block before it and
/// the `json event` block after it: the payload normalizes to an event holding those fields.
#[test]
fn source_pages_examples_normalize() {
    fn subset(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
        match (expected, actual) {
            (serde_json::Value::Object(e), serde_json::Value::Object(a)) => {
                e.iter().all(|(k, v)| a.get(k).is_some_and(|av| subset(v, av)))
            }
            _ => expected == actual,
        }
    }
    for source in ["grafana", "datadog", "pagerduty", "github", "cloudevents"] {
        let page = std::fs::read_to_string(format!("docs/sources/{source}.md")).unwrap();
        let mut blocks: Vec<(String, String)> = Vec::new();
        let mut current: Option<(String, String)> = None;
        for line in page.lines() {
            match &mut current {
                None if line.starts_with("```json ") => current = Some((line[8..].trim().to_string(), String::new())),
                Some(_) if line.starts_with("```") => blocks.extend(current.take()),
                Some((_, text)) => {
                    text.push_str(line);
                    text.push('\n');
                }
                None => {}
            }
        }
        let mut headers = ingest::Headers::none();
        let mut event = None;
        let mut checked = 0;
        for (tag, text) in blocks {
            match tag.as_str() {
                "headers" => {
                    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
                    headers = ingest::Headers::from_pairs(
                        map.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string())),
                    );
                }
                "payload" => {
                    let batch = ingest::normalize(source, &headers, text.as_bytes(), Utc::now())
                        .unwrap_or_else(|e| panic!("docs/sources/{source}.md: {e}"));
                    event = Some(serde_json::to_value(&batch.events[0]).unwrap());
                    headers = ingest::Headers::none();
                }
                "event" => {
                    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let actual = event.take().expect("a `json event` block follows a `json payload` block");
                    assert!(subset(&expected, &actual), "docs/sources/{source}.md: the example gives\n{actual:#}");
                    checked += 1;
                }
                other => panic!("docs/sources/{source}.md: unknown block `json {other}`"),
            }
        }
        assert!(checked > 0, "docs/sources/{source}.md has no example");
    }
}

#[test]
fn bad_payloads_name_the_field_for_every_source() {
    let none = ingest::Headers::none();
    let err = |source: &str, body: &str| {
        ingest::normalize(source, &none, body.as_bytes(), Utc::now()).unwrap_err().to_string()
    };
    assert_eq!(
        err("grafana", r#"{"alerts": [{"status": "pending"}]}"#),
        "not a valid Grafana payload: `alerts[0].status` must be `firing` or `resolved`, not `pending`"
    );
    assert!(err("datadog", r#"{"foo": "bar"}"#).starts_with("not a valid Datadog payload: `title` is missing"));
    assert_eq!(
        err("pagerduty", r#"{"event": {"data": {}}}"#),
        "not a valid PagerDuty payload: `event.event_type` is missing"
    );
    assert!(
        err("github", r#"{"zen": 1}"#).starts_with("not a valid GitHub payload: `X-GitHub-Event` header is missing"),
    );
    for source in ["grafana", "datadog", "pagerduty", "github"] {
        assert!(err(source, "{").starts_with("the body is not valid JSON"), "{source}");
        assert!(err(source, "[1]").ends_with("`$` must be an object"), "{source}");
    }
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

/// A CloudEvents delivery with these headers and body.
fn cloudevents(headers: &[(&str, &str)], body: &str) -> Result<ingest::Batch, ingest::IngestError> {
    let headers = ingest::Headers::from_pairs(headers.iter().copied());
    ingest::normalize("cloudevents", &headers, body.as_bytes(), Utc::now())
}

#[test]
fn cloudevents_binary_mode_reads_the_context_from_headers() {
    let (h, body) = fixture("cloudevents/cdevents_incident_detected.json");
    let e = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((e.kind.as_str(), e.status.as_str(), e.severity.as_str()), ("incident", "firing", "warning"));
    assert_eq!(e.fingerprint, "cloudevents/monitoring/prod1/incident-123");
    assert_eq!(e.service.as_deref(), Some("myApp"));
    assert_eq!(e.delivery_id.as_deref(), Some("/monitoring/prod1 F4BD2B55-B6F6-4F44-AF72-BD2D0E7A8708"));
    assert_eq!(e.occurred_at.to_rfc3339(), "2022-11-11T13:52:20.079+00:00");
    assert_eq!(e.labels["environment"], "prod1");
    assert_eq!(e.payload["data"]["subject"]["id"], "incident-123");
    assert_eq!(e.summary, "incident detected on myApp in prod1: Response time above threshold of 100ms");

    // Its resolution, reported by another system, closes the same incident.
    let mut pairs: Vec<(String, String)> = h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (k, v) in &mut pairs {
        match k.as_str() {
            "ce-type" => *v = "dev.cdevents.incident.resolved.0.3.0".into(),
            "ce-id" => *v = "8d7b1f0e-resolved".into(),
            "ce-source" => *v = "/ticketing/jira".into(),
            _ => {}
        }
    }
    let mut resolved: serde_json::Value = serde_json::from_slice(&body).unwrap();
    resolved["context"]["source"] = "/ticketing/jira".into();
    let r = ingest::normalize(
        "cloudevents",
        &ingest::Headers::from_pairs(pairs.clone()),
        resolved.to_string().as_bytes(),
        Utc::now(),
    )
    .unwrap()
    .events
    .remove(0);
    assert_eq!((r.kind.as_str(), r.status.as_str()), ("incident", "resolved"));
    assert_eq!(r.fingerprint, e.fingerprint, "detected and resolved share the incident's fingerprint");
    assert_ne!(r.id, e.id);

    // Header values are percent-decoded; extensions become labels.
    pairs.push(("ce-team".into(), "SRE%20%E2%82%AC".into()));
    pairs.push(("ce-severity".into(), "P1".into()));
    let x = ingest::normalize("cloudevents", &ingest::Headers::from_pairs(pairs), &body, Utc::now()).unwrap();
    let x = &x.events[0];
    assert_eq!(x.labels["team"], "SRE €");
    assert_eq!(x.severity.as_str(), "critical");

    let (h, body) = fixture("cloudevents/cdevents_service_deployed.json");
    let d = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!((d.kind.as_str(), d.status.as_str(), d.severity.as_str()), ("deploy", "info", "info"));
    assert_eq!(d.service.as_deref(), Some("mySubject123"));
    assert_eq!(d.labels["environment"], "test123");
    assert_eq!(d.fingerprint, "cloudevents/event/source/123/mySubject123");
    assert_eq!(d.summary, "service deployed: mySubject123 to test123");

    // The same body without its headers is no CloudEvent.
    let e = cloudevents(&[], std::str::from_utf8(&body).unwrap()).unwrap_err().to_string();
    assert!(e.starts_with("not a valid CloudEvents payload: `ce-specversion` header is missing"), "{e}");
    // A binary event without `ce-id`.
    let e = cloudevents(
        &[("ce-specversion", "1.0"), ("ce-type", "t"), ("ce-source", "/s"), ("content-type", "application/json")],
        "{}",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "not a valid CloudEvents payload: `ce-id` header is missing");
}

#[test]
fn cloudevents_structured_mode() {
    let (h, body) = fixture("cloudevents/structured_json_data.json");
    let b = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap();
    assert!(b.notes.is_empty(), "{:?}", b.notes);
    let e = &b.events[0];
    assert_eq!((e.kind.as_str(), e.status.as_str(), e.severity.as_str()), ("change", "info", "info"));
    assert_eq!(e.fingerprint, "cloudevents/mycontext/C234-1234-1234");
    assert_eq!(e.labels["type"], "com.example.someevent");
    assert_eq!(e.labels["source"], "/mycontext");
    assert_eq!(e.labels["comexampleothervalue"], "5");
    assert!(!e.labels.contains_key("subject"), "a null subject is unset");
    assert_eq!(e.delivery_id.as_deref(), Some("/mycontext C234-1234-1234"));
    assert_eq!(e.payload, serde_json::from_slice::<serde_json::Value>(&body).unwrap());

    // With a subject, the fingerprint uses it.
    let (h, body) = fixture("cloudevents/spec_example_github_pull_request_opened.json");
    let e = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap().events.remove(0);
    assert_eq!(e.fingerprint, "cloudevents/https://github.com/cloudevents/spec/pull/123");
    assert_eq!(e.labels["subject"], "123");
    assert_eq!(e.links[0].rel, "source");

    // Sent as plain JSON: read from its shape, with a note.
    let b = cloudevents(&[("Content-Type", "application/json")], std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(b.events[0].id, e.id);
    assert!(b.notes[0].contains("read as a structured event from the body's shape"), "{:?}", b.notes);

    // A valid `data_base64` is decoded for matchers, as `payload.data`.
    let (h, body) = fixture("cloudevents/structured_data_base64.json");
    let b = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap();
    assert_eq!(b.events[0].payload["data"], serde_json::json!({"xyz": 123}));
    assert_eq!(b.events[0].payload["data_base64"], "eyAieHl6IjogMTIzIH0=");

    // A severity in the data; an unreadable one is noted.
    let ev = |extra: &str| {
        format!(r#"{{"specversion": "1.0", "id": "1", "source": "/s", "type": "com.example.alarm"{extra}}}"#)
    };
    let h = [("content-type", "application/cloudevents+json")];
    let b = cloudevents(&h, &ev(r#", "data": {"severity": "error"}"#)).unwrap();
    assert_eq!(b.events[0].severity.as_str(), "high");
    let b = cloudevents(&h, &ev(r#", "severity": "purple""#)).unwrap();
    assert_eq!(b.events[0].severity.as_str(), "info");
    assert!(b.notes.iter().any(|n| n.contains("`severity` `purple` is not a severity")), "{:?}", b.notes);
    // Other event formats are refused.
    let e = cloudevents(&[("content-type", "application/cloudevents+avro")], "x").unwrap_err().to_string();
    assert!(e.contains("`Content-Type` is `application/cloudevents+avro`"), "{e}");
}

#[test]
fn cloudevents_batch_of_two_survives_bad_base64() {
    let (h, body) = fixture("cloudevents/batch_two_events.json");
    let b = ingest::normalize("cloudevents", &h, &body, Utc::now()).unwrap();
    let ids: Vec<_> = b.events.iter().map(|e| e.delivery_id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["/mycontext/4 B234-1234-1234", "/mycontext/9 C234-1234-1234"]);
    assert_eq!(b.notes.len(), 1, "{:?}", b.notes);
    assert!(b.notes[0].starts_with("`[0].data_base64` is not valid base64"), "{:?}", b.notes);
    assert!(b.events[0].payload.get("data").is_none(), "undecodable data is not invented");
    assert_eq!(b.events[0].payload["data_base64"], "... base64 encoded string ...");
    assert_eq!(b.events[1].payload["data"]["appinfoA"], "abc");
    // Without `Content-Type` the array reads as a batch too.
    let b2 = cloudevents(&[], std::str::from_utf8(&body).unwrap()).unwrap();
    assert_eq!(b2.events.len(), 2);
    assert_eq!(b2.events[1].id, b.events[1].id);
}

#[test]
fn cloudevents_required_attributes_are_named() {
    let structured = [("content-type", "application/cloudevents+json")];
    let batch = [("content-type", "application/cloudevents-batch+json")];
    let err = |h: &[(&str, &str)], body: &str| cloudevents(h, body).unwrap_err().to_string();
    assert_eq!(
        err(&structured, r#"{"specversion": "1.0", "type": "t", "source": "/s"}"#),
        "not a valid CloudEvents payload: `id` is missing"
    );
    assert_eq!(
        err(
            &batch,
            r#"[{"specversion": "1.0", "id": "1", "type": "t", "source": "/s"}, {"specversion": "1.0", "id": "2", "type": "t"}]"#
        ),
        "not a valid CloudEvents payload: `[1].source` is missing"
    );
    assert_eq!(
        err(&structured, r#"{"specversion": "0.3", "id": "1", "type": "t", "source": "/s"}"#),
        "not a valid CloudEvents payload: `specversion` must be `1.0`, not `0.3` (Sparky reads CloudEvents 1.0)"
    );
    assert_eq!(
        err(&structured, r#"{"specversion": "1.0", "id": "", "type": "t", "source": "/s"}"#),
        "not a valid CloudEvents payload: `id` must not be empty"
    );
    assert_eq!(
        err(&structured, r#"{"specversion": "1.0", "id": 7, "type": "t", "source": "/s"}"#),
        "not a valid CloudEvents payload: `id` must be a string"
    );
    assert!(
        err(&structured, r#"{"specversion": "1.0", "id": "1", "type": "t", "source": "/s", "time": "soon"}"#)
            .contains("`time` must be an RFC 3339 time"),
    );
    assert_eq!(
        err(&batch, "[1]"),
        "not a valid CloudEvents payload: `[0]` must be an object (a CloudEvent in the JSON format)"
    );
    assert!(err(&structured, "{").starts_with("the body is not valid JSON"));
    assert!(err(&[], r#"{"hello": 1}"#).contains("`ce-specversion` header is missing"));
    // An empty batch is no error.
    let b = cloudevents(&batch, "[]").unwrap();
    assert!(b.events.is_empty());
}

/// Every payload in `tests/fixtures/ingest/generic/` with its `<name>.mapping.yaml`, as the
/// source `argocd`: the mapping, the notes and the events are the snapshot.
#[test]
fn generic_payloads() {
    let dir = Path::new("tests/fixtures/ingest/generic");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2);
    let received = Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
    for f in &files {
        let mapping_file = f.with_extension("mapping.yaml");
        let text = std::fs::read_to_string(&mapping_file).unwrap_or_else(|e| panic!("{}: {e}", mapping_file.display()));
        let mapping: ingest::generic::Mapping =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", mapping_file.display()));
        mapping.validate().unwrap_or_else(|e| panic!("{}: {e}", mapping_file.display()));
        let body = std::fs::read(f).unwrap();
        let batch = ingest::generic::normalize(&mapping, "argocd", &ingest::Headers::none(), &body, received)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert!(!batch.events.is_empty(), "{}: no events", f.display());
        let mapping_view: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("fixtures/ingest/generic/snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(f);
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let view = serde_json::json!({ "mapping": mapping_view, "notes": batch.notes, "events": batch.events });
        settings.bind(|| insta::assert_json_snapshot!(name, view));
    }
}

#[test]
fn generic_argocd_events() {
    let read = |stem: &str| {
        let dir = Path::new("tests/fixtures/ingest/generic");
        let text = std::fs::read_to_string(dir.join(format!("{stem}.mapping.yaml"))).unwrap();
        let mapping: ingest::generic::Mapping = serde_yaml::from_str(&text).unwrap();
        let body = std::fs::read(dir.join(format!("{stem}.json"))).unwrap();
        ingest::generic::normalize(&mapping, "argocd", &ingest::Headers::none(), &body, Utc::now()).unwrap()
    };
    let b = read("notifications_webhook_slack_template_rendered");
    let e = &b.events[0];
    assert_eq!(
        (e.source.as_str(), e.kind.as_str(), e.status.as_str(), e.severity.as_str()),
        ("argocd", "deploy", "info", "info")
    );
    assert_eq!(e.service.as_deref(), Some("payments-api"));
    assert_eq!(e.fingerprint, "argocd/payments-api");
    assert_eq!(e.summary, "payments-api: Sync Status Synced");
    assert_eq!(e.labels["sync_status"], "Synced");
    assert_eq!(e.links[0].url, "https://argocd.example.com/applications/payments-api");
    assert!(b.notes.is_empty(), "{:?}", b.notes);
    let b = read("notifications_webhook_github_commit_status_rendered");
    let e = &b.events[0];
    assert_eq!((e.kind.as_str(), e.status.as_str(), e.severity.as_str()), ("deploy", "info", "info"));
    assert_eq!(e.fingerprint, "argocd/continuous-delivery/payments-api");
    assert_eq!(e.summary, "Argo CD continuous-delivery/payments-api: success");
}

/// Every `yaml mapping` block of `docs/sources/generic.md`, with the `json payload` block
/// after it, gives an event holding the fields of the `json event` block that follows.
#[test]
fn generic_page_examples_normalize() {
    fn subset(expected: &serde_json::Value, actual: &serde_json::Value) -> bool {
        match (expected, actual) {
            (serde_json::Value::Object(e), serde_json::Value::Object(a)) => {
                e.iter().all(|(k, v)| a.get(k).is_some_and(|av| subset(v, av)))
            }
            _ => expected == actual,
        }
    }
    let page = std::fs::read_to_string("docs/sources/generic.md").unwrap();
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in page.lines() {
        match &mut current {
            None if line.starts_with("```yaml mapping") || line.starts_with("```json ") => {
                current = Some((line[3..].trim().to_string(), String::new()))
            }
            Some(_) if line.starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    let mut mapping: Option<ingest::generic::Mapping> = None;
    let mut event = None;
    let mut checked = 0;
    for (tag, text) in blocks {
        match tag.as_str() {
            "yaml mapping" => {
                let m: ingest::generic::Mapping =
                    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("docs/sources/generic.md: {e}\n{text}"));
                m.validate().unwrap_or_else(|e| panic!("docs/sources/generic.md: {e}\n{text}"));
                mapping = Some(m);
            }
            "json payload" => {
                let m = mapping.as_ref().expect("a `yaml mapping` block comes before a `json payload` block");
                let batch =
                    ingest::generic::normalize(m, "argocd", &ingest::Headers::none(), text.as_bytes(), Utc::now())
                        .unwrap_or_else(|e| panic!("docs/sources/generic.md: {e}"));
                event = Some(serde_json::to_value(&batch.events[0]).unwrap());
            }
            "json event" => {
                let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
                let actual = event.take().expect("a `json event` block follows a `json payload` block");
                assert!(subset(&expected, &actual), "docs/sources/generic.md: the example gives\n{actual:#}");
                checked += 1;
            }
            other => panic!("docs/sources/generic.md: unknown block `{other}`"),
        }
    }
    assert!(checked > 0, "docs/sources/generic.md has no example");
}
