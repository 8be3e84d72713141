//! The incident lifecycle through the real daemon, fed the sequences production sends: an
//! alert that resolves and fires again, one that flaps, one whose L1 "worked" until it fired
//! again inside the verification window, and a page that goes nowhere. The daemon's decision
//! clock is held by the test, so that each event is decided at the time the sequence says.

#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/daemon.rs"]
mod support;

use serde_json::Value;
use std::time::Duration;
use support::{Daemon, copy_playbooks, minute};

/// An Alertmanager notification of one alert of `name` (fingerprint `fp`), `status` `firing`
/// or `resolved`, whose occurrence started at `started` minutes.
fn alert(name: &str, fp: &str, status: &str, started: f64, labels: &[(&str, &str)]) -> String {
    let mut l = serde_json::json!({ "alertname": name, "namespace": "prod", "severity": "critical" });
    for (k, v) in labels {
        l[*k] = Value::String(v.to_string());
    }
    let starts = minute(started).to_rfc3339();
    let ends = if status == "resolved" { minute(started + 1.0).to_rfc3339() } else { "0001-01-01T00:00:00Z".into() };
    serde_json::json!({
        "receiver": "sparky", "status": status, "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{name}\"}}"),
        "groupLabels": { "alertname": name }, "commonLabels": l, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status, "labels": l,
            "annotations": { "summary": format!("{name} in prod") },
            "startsAt": starts, "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp
        }]
    })
    .to_string()
}

fn level(d: &Value) -> &str {
    d["decision"]["level"].as_str().unwrap_or_default()
}

fn incident(d: &Value) -> (String, String) {
    let i = &d["decision"]["incident"];
    (i["key"].as_str().unwrap_or("-").to_string(), i["effect"].as_str().unwrap_or("-").to_string())
}

fn reasons(d: &Value) -> String {
    d["decision"]["reasons"].to_string()
}

const RESTART: &str = r#"/// Restart a crash-looping deployment.
playbook PB-960 "Restart a crash-looping deployment" {
  status active
  owner  "team:platform"
  on alert from alertmanager {
    labels.alertname == "KubeDeploymentCrashing"
  }
  l1 "restart the deployment" {
    guard blast_radius <= 1
    do k8s.rollout_restart(namespace = labels.namespace, name = labels.deployment)
    verify resolved within 10m
  }
  l3 priority P2
}
"#;

fn with_playbook(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/PB-960.sparky"), text).unwrap();
    dir
}

/// PB-004's own suite expects this sequence to escalate; the daemon used to attach the
/// re-fire to the resolution as a repeat, and nothing happened for a critical alert.
#[tokio::test]
async fn a_re_fire_after_a_resolution_is_triaged_again_with_a_new_incident() {
    let dir = tempfile::tempdir().unwrap();
    copy_playbooks(&dir.path().join("playbooks"));
    let d = Daemon::start_at(dir, "", minute(0.0)).await;
    let firing = std::fs::read_to_string("playbooks/events/CacheDataInconsistency_prod_firing.json").unwrap();
    let resolved = std::fs::read_to_string("playbooks/events/CacheDataInconsistency_prod_resolved.json").unwrap();

    let first = d.decide("alertmanager", firing.clone(), minute(0.0)).await;
    assert_eq!(level(&first), "L1", "{first}");
    let (k1, effect) = incident(&first);
    assert_eq!(effect, "open");
    let closed = d.decide("alertmanager", resolved, minute(1.0)).await;
    assert_eq!(incident(&closed), (k1.clone(), "close".into()), "{closed}");

    // 30 seconds later the alert fires again: a new occurrence (Alertmanager gives it a new
    // `startsAt`), well inside the 5-minute grouping window.
    let again = firing.replace("2026-03-10T14:32:11.204Z", "2026-03-10T14:33:41.000Z");
    let refire = d.decide("alertmanager", again, minute(1.5)).await;
    assert_eq!(level(&refire), "L3", "{refire}");
    let (k2, effect) = incident(&refire);
    assert_eq!(effect, "open", "{refire}");
    assert_ne!(k2, k1, "a new occurrence is a new incident");
    assert!(reasons(&refire).contains("cooldown"), "PB-004's cooldown per user refuses its plan: {refire}");

    // No PagerDuty is configured: the page it wants goes nowhere, and the decision says so.
    assert!(reasons(&refire).contains("no PagerDuty is configured"), "{refire}");
    assert!(d.metric("sparky_pages_undeliverable_total{playbook=\"PB-004\"}").await >= 1.0);

    // The same occurrence delivered again while its incident is open is a repeat.
    let d2 = d.decide("alertmanager", firing.replace("\"sparky\"", "\"sparky-2\""), minute(2.0)).await;
    assert_eq!(level(&d2), "suppressed", "{d2}");
    d.stop().await;
}

/// The flapping pod of the issue: fires and resolves every three minutes. One L1 and one
/// page for the first occurrences, then one escalation for the flapping, one incident kept
/// open across the flaps, no L1 while it flaps; and once it stays quiet for the window, the
/// incident closes and the next firing is a fresh start.
#[tokio::test]
async fn a_flapping_alert_keeps_one_incident_runs_no_l1_and_settles_when_quiet() {
    let d = Daemon::start_at(with_playbook(RESTART), "", minute(0.0)).await;
    let labels = [("deployment", "checkout")];
    let fire = |m: f64| alert("KubeDeploymentCrashing", "f1a90000000000aa", "firing", m, &labels);
    let resolve = |m: f64| alert("KubeDeploymentCrashing", "f1a90000000000aa", "resolved", m - 2.0, &labels);

    let f0 = d.decide("alertmanager", fire(0.0), minute(0.0)).await;
    assert_eq!(level(&f0), "L1", "{f0}");
    assert_eq!(incident(&d.decide("alertmanager", resolve(3.0), minute(3.0)).await).1, "close");
    let f6 = d.decide("alertmanager", fire(6.0), minute(6.0)).await;
    assert_eq!(level(&f6), "L1", "a re-fire is triaged like a first firing: {f6}");
    assert_eq!(incident(&f6).1, "open");
    assert_eq!(incident(&d.decide("alertmanager", resolve(9.0), minute(9.0)).await).1, "close");

    // The fifth state change within the hour, at a re-fire: it flaps.
    let f12 = d.decide("alertmanager", fire(12.0), minute(12.0)).await;
    assert_eq!(level(&f12), "L3", "{f12}");
    assert!(reasons(&f12).contains("does not run while the alert flaps"), "{f12}");
    let (flap_key, effect) = incident(&f12);
    assert_eq!(effect, "open");
    let flap = &f12["decision"]["flapping"];
    assert_eq!(flap["changes"].as_array().map(Vec::len), Some(5), "the flap history is in the decision: {f12}");
    assert_eq!(d.metric("sparky_flapping_total{transition=\"started\"}").await, 1.0);

    // While it flaps a resolution does not close the incident, and a re-fire is a repeat.
    let r15 = d.decide("alertmanager", resolve(15.0), minute(15.0)).await;
    assert_eq!(incident(&r15), (flap_key.clone(), "update".into()), "{r15}");
    assert!(reasons(&r15).contains("stays open until the flapping stops"), "{r15}");
    let f18 = d.decide("alertmanager", fire(18.0), minute(18.0)).await;
    assert_eq!(level(&f18), "suppressed", "{f18}");
    assert_eq!(incident(&f18), (flap_key.clone(), "update".into()));
    let r21 = d.decide("alertmanager", resolve(21.0), minute(21.0)).await;
    assert_eq!(incident(&r21), (flap_key.clone(), "update".into()));

    // An hour of quiet: it stops flapping and, being resolved, its incident closes (seen at
    // the next batch, whatever its fingerprint).
    d.decide("alertmanager", alert("Unrelated", "0000000000000bbb", "firing", 81.0, &[]), minute(82.0)).await;
    assert_eq!(d.metric("sparky_flapping_total{transition=\"stopped\"}").await, 1.0);
    let fresh = d.decide("alertmanager", fire(83.0), minute(83.0)).await;
    assert_eq!(level(&fresh), "L1", "the flapping is over and its incident closed: a fresh start: {fresh}");
    let (key, effect) = incident(&fresh);
    assert_eq!(effect, "open");
    assert_ne!(key, flap_key);
    // Every decision on the fingerprint: two L1s before the flapping, none during it.
    let all = d.get("/api/v1/decisions?limit=100").await.1;
    let l1: Vec<&Value> = all["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["level"] == "L1" && x["playbook"] == "PB-960")
        .collect();
    assert_eq!(l1.len(), 3, "f0, f6 and the fresh start after the flapping: {all}");
    d.stop().await;
}

/// Live mode against the fake API server: the restart is applied, the alert resolves (the
/// run verified), then fires again five minutes later, inside the 10-minute window: the run
/// was no success, and its execution and run say so.
#[tokio::test]
async fn a_re_fire_inside_the_verification_window_makes_the_verified_run_a_failure() {
    let kube = fake_kube::FakeKube::start().await;
    kube.add_deployment("prod", "checkout", 3);
    let yaml = format!(
        "admin_token: t0ken\nintegrations:\n  mode: live\n  kubernetes:\n    url: {}\nengine:\n  retry_backoff: 10ms\n",
        kube.url
    );
    let d = Daemon::start_at(with_playbook(RESTART), &yaml, minute(0.0)).await;
    let labels = [("deployment", "checkout")];
    let f0 = d
        .decide(
            "alertmanager",
            alert("KubeDeploymentCrashing", "0000000000000ccc", "firing", 0.0, &labels),
            minute(0.0),
        )
        .await;
    assert_eq!(level(&f0), "L1", "{f0}");
    let key = incident(&f0).0;
    let execution = wait_for_execution(&d, &key, "verifying").await;
    assert!(!kube.mutating_calls().is_empty(), "the restart was applied");

    let r = alert("KubeDeploymentCrashing", "0000000000000ccc", "resolved", 0.0, &labels);
    assert_eq!(incident(&d.decide("alertmanager", r, minute(3.0)).await).1, "close");
    let verified = wait_for_execution(&d, &key, "succeeded").await;
    assert_eq!(verified["id"], execution["id"]);

    let refire = alert("KubeDeploymentCrashing", "0000000000000ccc", "firing", 5.0, &labels);
    let f5 = d.decide("alertmanager", refire, minute(5.0)).await;
    assert_eq!(incident(&f5).1, "open", "{f5}");
    let failed = wait_for_execution(&d, &key, "failed").await;
    let how = failed["result"]["verification"].to_string();
    assert!(how.contains("fired again inside the verification window"), "{failed}");
    d.stop().await;
}

async fn wait_for_execution(d: &Daemon, key: &str, state: &str) -> Value {
    for _ in 0..400 {
        let all = d.get("/api/v1/executions?limit=100").await.1;
        if let Some(e) =
            all["executions"].as_array().into_iter().flatten().find(|e| e["incident_key"] == key && e["state"] == state)
        {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no execution of {key} reached `{state}`: {}", d.get("/api/v1/executions?limit=100").await.1);
}
