//! Deduplication of webhook deliveries through the real daemon: only an id the sender
//! documents as its delivery id is a key, and only the same body under it is a duplicate.
//! A header a proxy sets the same on every request (`X-Request-Id`) must never drop an alert.

#[path = "support/daemon.rs"]
mod support;

use serde_json::Value;
use support::{Daemon, payload};

const CRASH_LOOP: &str = "kube-prometheus_KubePodCrashLooping_firing.json";
const TARGET_DOWN: &str = "kube-prometheus_TargetDown_firing.json";

fn ids(answer: &Value) -> Vec<String> {
    answer["events"].as_array().unwrap().iter().map(|e| e.as_str().unwrap().to_string()).collect()
}

async fn reused_key_count(d: &Daemon, source: &str) -> u64 {
    let (_, text) = d.get("/metrics").await;
    let prefix = format!("sparky_delivery_key_reused_total{{source=\"{source}\"}} ");
    text.as_str().unwrap().lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn two_alerts_with_one_request_id_are_both_accepted_and_decided() {
    let d = Daemon::start("").await;
    let same = [("x-request-id", "static-from-the-proxy")];
    let (s1, a1) = d.post("alertmanager", payload("alertmanager", CRASH_LOOP), &same).await;
    let (s2, a2) = d.post("alertmanager", payload("alertmanager", TARGET_DOWN), &same).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!((a1["status"].as_str(), a2["status"].as_str()), (Some("accepted"), Some("accepted")), "{a2}");
    assert!(a1["delivery"].as_str().unwrap().starts_with("sha256:"), "{a1}");
    d.settle().await;
    let decided: Vec<String> =
        d.decisions().await.iter().map(|dec| dec["event_id"].as_str().unwrap().to_string()).collect();
    for id in ids(&a1).iter().chain(&ids(&a2)) {
        assert!(decided.contains(id), "{id} not decided: {decided:?}");
    }
    assert_eq!(reused_key_count(&d, "alertmanager").await, 0);
    d.stop().await;
}

#[tokio::test]
async fn the_same_alertmanager_body_twice_is_one_event() {
    let d = Daemon::start("").await;
    let body = payload("alertmanager", TARGET_DOWN);
    let (_, first) = d.post("alertmanager", body.clone(), &[("x-request-id", "a")]).await;
    let (code, again) = d.post("alertmanager", body, &[("x-request-id", "b")]).await;
    assert_eq!(first["status"], "accepted", "{first}");
    assert_eq!((code, again["status"].as_str()), (202, Some("duplicate")), "{again}");
    assert_eq!(again["delivery"], first["delivery"]);
    let status = d.settle().await;
    assert_eq!(status["events"]["decided"], 1, "{status}");
    d.stop().await;
}

/// A retry (same id, same body) is a duplicate; another body under the same id is a new
/// delivery, stored under a key of its own, whose own retry is a duplicate again.
async fn a_reused_id_keeps_both_bodies(
    source: &str,
    header: &str,
    first: Vec<u8>,
    second: Vec<u8>,
    extra: &[(&str, &str)],
) {
    let d = Daemon::start("").await;
    let mut headers = extra.to_vec();
    headers.push((header, "the-one-id"));
    let (_, a) = d.post(source, first.clone(), &headers).await;
    assert_eq!(a["status"], "accepted", "{source}: {a}");
    assert_eq!(a["delivery"], "delivery:the-one-id", "{source}: {a}");
    let (_, retry) = d.post(source, first, &headers).await;
    assert_eq!(retry["status"], "duplicate", "{source}: {retry}");

    let (code, b) = d.post(source, second.clone(), &headers).await;
    assert_eq!((code, b["status"].as_str()), (202, Some("accepted")), "{source}: {b}");
    let stored_as = b["delivery"].as_str().unwrap();
    assert!(stored_as.starts_with("delivery:the-one-id#") && stored_as.len() == "delivery:the-one-id#".len() + 16);
    assert!(b["notes"].to_string().contains("came before with another body"), "{source}: {b}");
    let (_, retry) = d.post(source, second, &headers).await;
    assert_eq!(retry["status"], "duplicate", "{source}: {retry}");
    assert_eq!(retry["delivery"], stored_as);
    assert_eq!(reused_key_count(&d, source).await, 1, "{source}");
    d.stop().await;
}

#[tokio::test]
async fn a_github_delivery_id_is_a_duplicate_only_with_the_same_body() {
    let first = payload("github", "deployment.created.json");
    let mut second = first.clone();
    second.extend_from_slice(b"\n");
    a_reused_id_keeps_both_bodies("github", "x-github-delivery", first, second, &[("x-github-event", "deployment")])
        .await;
}

#[tokio::test]
async fn a_pagerduty_webhook_id_is_a_duplicate_only_with_the_same_body() {
    let first = payload("pagerduty", "v3_incident.triggered.json");
    let second = payload("pagerduty", "v3_incident.acknowledged.json");
    a_reused_id_keeps_both_bodies("pagerduty", "x-webhook-id", first, second, &[]).await;
}

#[tokio::test]
async fn cloudevents_with_one_id_from_two_sources_are_two_deliveries() {
    let d = Daemon::start("").await;
    let body = br#"{"message": "cache flushed"}"#.to_vec();
    let from = |source: &'static str| {
        [
            ("content-type", "application/json"),
            ("ce-specversion", "1.0"),
            ("ce-type", "com.example.cache.flushed"),
            ("ce-id", "42"),
            ("ce-source", source),
        ]
    };
    let (_, a) = d.post("cloudevents", body.clone(), &from("/cache/eu")).await;
    let (_, b) = d.post("cloudevents", body.clone(), &from("/cache/us")).await;
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("accepted"), Some("accepted")), "{a} {b}");
    assert_ne!(a["delivery"], b["delivery"]);
    let (_, again) = d.post("cloudevents", body, &from("/cache/us")).await;
    assert_eq!(again["status"], "duplicate", "{again}");
    assert_eq!(again["delivery"], b["delivery"]);
    assert_eq!(reused_key_count(&d, "cloudevents").await, 0);
    d.stop().await;
}

/// A sender whose payloads carry no times of their own sends the same bytes for every
/// firing and every resolution. Keyed by its body, the second firing after a resolution is
/// the next occurrence, not a retry: it must be decided (it reopens the incident), and only a
/// retry of it, with nothing between, is a duplicate.
#[tokio::test]
async fn the_same_body_after_another_event_of_its_alert_is_the_next_occurrence() {
    let d = Daemon::start("").await;
    let firing = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json");
    let resolved = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_resolved.json");
    let (_, f1) = d.post("alertmanager", firing.clone(), &[]).await;
    let (_, retry) = d.post("alertmanager", firing.clone(), &[]).await;
    assert_eq!((f1["status"].as_str(), retry["status"].as_str()), (Some("accepted"), Some("duplicate")));
    let (_, r1) = d.post("alertmanager", resolved.clone(), &[]).await;
    assert_eq!(r1["status"], "accepted", "{r1}");
    let (_, f2) = d.post("alertmanager", firing.clone(), &[]).await;
    assert_eq!(f2["status"], "accepted", "the firing after the resolution is not a retry: {f2}");
    assert_ne!(f2["delivery"], f1["delivery"]);
    let (_, f2_retry) = d.post("alertmanager", firing.clone(), &[]).await;
    assert_eq!(f2_retry["status"], "duplicate", "{f2_retry}");
    let (_, r2) = d.post("alertmanager", resolved, &[]).await;
    assert_eq!(r2["status"], "accepted", "the second resolution is not a retry of the first: {r2}");
    d.settle().await;
    let decisions = d.decisions().await;
    let statuses: Vec<&str> = decisions.iter().rev().map(|x| x["explained"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["firing", "resolved", "firing", "resolved"], "every occurrence is decided: {decisions:?}");
    d.stop().await;
}
