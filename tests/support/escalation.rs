//! The real daemon escalating through the real Jira, PagerDuty and Slack clients to the local
//! fake server (`fake_escalation.rs`): its configuration, catalog and playbooks, and the
//! helpers the escalation tests share.

#![allow(dead_code)]

use serde_json::{Value, json};
use sparky::daemon::{self, Options, config::Config};
use std::path::Path;
use std::time::Duration;

pub const TOKEN: &str = "s3cret-admin";
/// A PagerDuty integration key is 32 characters.
pub const CHECKOUT_KEY: &str = "0123456789abcdef0123456789abcdef";
pub const DEFAULT_KEY: &str = "fedcba9876543210fedcba9876543210";

pub const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    jira/project-key: CHK
    pagerduty.com/integration-key: KEY
    sparky.dev/runbook: https://runbooks.example.com/checkout
spec:
  type: service
  lifecycle: production
  owner: group:team-checkout
"#;

/// Nothing handles `CheckoutDown`: at severity critical it is escalated as it is.
pub const PLAYBOOK: &str = r#"/// Watches deploys; handles no alert.
playbook PB-950 "Observe deploys" {
  status active
  owner  "team:platform"
  on deploy from github {
    labels.environment == "production"
  }
  l3 priority P3
}
"#;

/// Restarts a deployment; its verification fails in the tests (nothing resolves the alert).
pub const RESTART: &str = r#"/// Restart a crash-looping deployment.
playbook PB-951 "Restart a crash-looping deployment" {
  status active
  owner  "team:platform"
  on alert from alertmanager {
    labels.alertname == "KubeDeploymentCrashing"
  }
  l1 "restart the deployment" {
    guard blast_radius <= 1
    do k8s.rollout_restart(namespace = labels.namespace, name = labels.deployment)
    verify resolved within 1s
  }
  l3 priority P2
}
"#;

pub struct Daemon {
    pub running: Option<daemon::Running>,
    pub base: String,
    _dir: tempfile::TempDir,
}

pub fn write_files(dir: &Path) {
    let pbs = dir.join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::write(pbs.join("PB-950.sparky"), PLAYBOOK).unwrap();
    std::fs::write(pbs.join("PB-951.sparky"), RESTART).unwrap();
    let cat = dir.join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    std::fs::write(cat.join("catalog-info.yaml"), CATALOG.replace("KEY", CHECKOUT_KEY)).unwrap();
}

/// The configuration: Jira Cloud, PagerDuty and Slack at `fake`, live, fast retries.
pub fn config(fake: &str, extra: &str) -> String {
    format!(
        r#"admin_token: {TOKEN}
triage:
  group_window: 0s
integrations:
  mode: live
  kubernetes:
    mode: dry-run
  slack:
    webhooks:
      oncall: {fake}/slack/T000/B000/XXXX
  jira:
    url: {fake}
    email: sparky@example.com
    token: jira-token
    resolve_transition: Done
    timeout: 500ms
    search_lag: 1s
  pagerduty:
    enabled: true
    url: {fake}
    routing_key: {DEFAULT_KEY}
    acknowledge: true
    min_interval: 10ms
escalation:
  slack_channel: oncall
  link_wait: 3s
  max_backoff: 1s
{extra}"#
    )
}

impl Daemon {
    pub async fn start(yaml: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        write_files(dir.path());
        let env = |name: &str| std::env::var(name).ok();
        let mut config = Config::parse(yaml, "sparky.yaml", &env).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.playbooks = vec![dir.path().join("playbooks")];
        config.catalog = Some(vec![dir.path().join("catalog")]);
        config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
        let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
        let base = format!("http://{}", running.addr);
        Daemon { running: Some(running), base, _dir: dir }
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }
}

pub async fn post(base: &str, alerts: Vec<Value>) -> u16 {
    let body = json!({ "receiver": "sparky", "status": "firing", "alerts": alerts, "version": "4",
                       "groupKey": "{}:{}", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager:9093" });
    let r = reqwest::Client::new().post(format!("{base}/webhooks/alertmanager")).json(&body).send().await;
    r.unwrap().status().as_u16()
}

pub async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}")).await.unwrap().json().await.unwrap()
}

pub fn alert(name: &str, n: usize, status: &str) -> Value {
    json!({
        "status": status,
        "labels": { "alertname": name, "namespace": "prod", "deployment": "checkout", "service": "checkout",
                    "severity": "critical", "instance": format!("checkout-{n}") },
        "annotations": { "summary": format!("checkout is down ({n})") },
        "startsAt": "2026-11-28T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-28T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": format!("{name}-{n:04}"),
    })
}

/// The outbox rows, once none is pending (or after `patience`).
pub async fn outbox_settled(base: &str, patience: Duration) -> Vec<Value> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        // The inbox first: an event decided after it was read cannot hide behind rows read
        // before its decision.
        let inbox = get(base, "/api/v1/status").await;
        let v = get(base, "/api/v1/escalations?limit=1000").await;
        let rows = v["outbox"].as_array().cloned().unwrap_or_default();
        let pending = rows.iter().any(|r| r["state"] == "pending") || inbox["events"].get("pending").is_some();
        if (!pending && !rows.is_empty()) || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn states(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["destination"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["state"].as_str().unwrap()
            )
        })
        .collect();
    v.sort();
    v
}
