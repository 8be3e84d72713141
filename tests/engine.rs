//! The engine end to end: the real daemon (in this process, on an ephemeral port, with a
//! temporary store) acting through the real Kubernetes client against a local fake API
//! server that records every call. The restart test runs the `sparky` binary and kills it.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/fake_kube.rs"]
mod fake_kube;

use fake_kube::FakeKube;
use serde_json::{Value, json};
use sparky::daemon::{self, Options, config::Config};
use sparky::store::Store;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "s3cret-admin";

/// Restarts the deployment whose pods crash-loop; the alert's resolution proves it.
const PLAYBOOK: &str = r#"/// Restart a crash-looping deployment.
playbook PB-901 "Restart a crash-looping deployment" {
  status active
  owner  "team:platform"

  on alert from alertmanager {
    labels.alertname == "KubeDeploymentCrashing"
    labels.deployment exists
  }

  l1 "restart the deployment" {
    guard blast_radius <= 1
    guard cooldown COOLDOWN per labels.deployment
    guard at_most 1000 per 1h
    do k8s.rollout_restart(namespace = labels.namespace, name = labels.deployment)
    verify resolved within VERIFY
  }

  l3 priority P2
}
"#;

struct Daemon {
    running: Option<daemon::Running>,
    base: String,
    dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(playbook: &str, yaml: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let pbs = dir.path().join("playbooks");
        std::fs::create_dir_all(&pbs).unwrap();
        std::fs::write(pbs.join("PB-901.sparky"), playbook).unwrap();
        let env = |name: &str| std::env::var(name).ok();
        let mut config = Config::parse(yaml, "sparky.yaml", &env).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.playbooks = vec![pbs];
        config.catalog = Some(Vec::new());
        config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
        let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
        let base = format!("http://{}", running.addr);
        Daemon { running: Some(running), base, dir }
    }

    async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().stop().await.unwrap();
        self.dir
    }

    async fn store(&self) -> Store {
        Store::open(&format!("sqlite://{}", self.dir.path().join("sparky.db").display())).await.unwrap()
    }

    async fn post_alerts(&self, alerts: Vec<Value>) -> u16 {
        let body = json!({ "receiver": "sparky", "status": "firing", "alerts": alerts, "version": "4",
                           "groupKey": "{}:{}", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                           "externalURL": "http://alertmanager:9093" });
        let r = reqwest::Client::new().post(format!("{}/webhooks/alertmanager", self.base)).json(&body).send().await;
        r.unwrap().status().as_u16()
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.base)).await.unwrap().json().await.unwrap()
    }

    async fn admin(&self, path: &str, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the inbox is empty and no execution is queued or being applied.
    async fn settle(&self) {
        for _ in 0..800 {
            let status = self.get("/api/v1/status").await;
            let engine = &status["engine"];
            if status["events"].get("pending").is_none() && engine["queued"] == 0 {
                let applying = self.get("/api/v1/executions?state=applying").await;
                if applying["executions"].as_array().is_some_and(|a| a.is_empty()) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the daemon did not settle");
    }

    async fn decisions(&self) -> Vec<Value> {
        self.get("/api/v1/decisions?limit=5000").await["decisions"].as_array().unwrap().clone()
    }
}

fn playbook(cooldown: &str, verify: &str) -> String {
    PLAYBOOK.replace("COOLDOWN", cooldown).replace("VERIFY", verify)
}

fn config(kube: &str, mode: &str, engine: &str) -> String {
    format!(
        "admin_token: {TOKEN}\ntriage:\n  group_window: 0s\nintegrations:\n  mode: {mode}\n  kubernetes:\n    url: {kube}\nengine:\n  retry_backoff: 10ms\n{engine}"
    )
}

fn alert(deployment: &str, n: usize, status: &str) -> Value {
    json!({
        "status": status,
        "labels": { "alertname": "KubeDeploymentCrashing", "namespace": "prod", "deployment": deployment,
                    "pod": format!("{deployment}-{n}"), "severity": "critical" },
        "annotations": { "summary": format!("{deployment} crash-loops") },
        "startsAt": "2026-11-28T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-11-28T10:05:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": format!("{deployment}-{n:06}"),
    })
}

fn levels(decisions: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for d in decisions {
        *m.entry(d["level"].as_str().unwrap().to_string()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn a_remediation_storm_acts_once_at_a_time_within_cooldown_and_budget() {
    let kube = FakeKube::start().await;
    kube.add_deployment("prod", "checkout", 3);
    let d = Daemon::start(
        &playbook("1s", "1s"),
        &config(&kube.url, "live", "  budget: 2 per 1h\n  per_target: 100 per 1h\n  breaker_failures: 0\n"),
    )
    .await;
    // 1,000 alerts for one deployment (each pod its own alert) over about four seconds.
    for wave in 0..10 {
        let alerts = (0..100).map(|i| alert("checkout", wave * 100 + i, "firing")).collect();
        assert_eq!(d.post_alerts(alerts).await, 202);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    d.settle().await;
    let decisions = d.decisions().await;
    assert_eq!(decisions.len(), 1000, "every alert is decided: {:?}", levels(&decisions));

    let store = d.store().await;
    let mut executions = store.executions(&[], 5000).await.unwrap();
    executions.sort_by_key(|e| e.created_at);
    let started: Vec<_> = executions.iter().filter(|e| e.started_at.is_some()).collect();
    // The global budget is never exceeded, and every start is a call to the API server.
    assert!(!started.is_empty() && started.len() <= 2, "{} started", started.len());
    assert_eq!(kube.mutating_calls().len(), started.len(), "{:?}", kube.calls());
    // One action in flight per target: each started only after the one before it finished.
    for pair in started.windows(2) {
        assert!(pair[1].started_at.unwrap() >= pair[0].updated_at, "{:?} overlaps {:?}", pair[1].id, pair[0].id);
    }
    // At most one per cooldown: the L1 decisions that were not refused (a refusal is no
    // action, so it does not start a cooldown) at least 1s apart.
    let acted: Vec<_> = executions.iter().filter(|e| !matches!(e.state.as_str(), "refused" | "skipped")).collect();
    assert!(acted.len() >= started.len());
    for pair in acted.windows(2) {
        let gap = pair[1].created_at - pair[0].created_at;
        assert!(gap >= chrono::Duration::milliseconds(1000), "{} then {}: {gap}", pair[0].id, pair[1].id);
    }
    // Every refusal names its guard and figure.
    for e in executions.iter().filter(|e| e.state == "refused") {
        let refused = &e.result.as_ref().unwrap()["refused"];
        assert!(refused["guard"].is_string() && refused["figure"].is_string(), "{refused}");
    }
    let l3: Vec<&Value> = decisions.iter().filter(|x| x["level"] == "L3").collect();
    assert!(l3.len() >= 990, "{:?}", levels(&decisions));
    let reasons = l3[0]["explained"]["decision"]["reasons"].to_string();
    assert!(reasons.contains("guard `cooldown 1s per labels.deployment` refused"), "{reasons}");
    assert!(store.audit_verify().await.unwrap().problems.is_empty());
    d.stop().await;
}

#[tokio::test]
async fn the_fourth_failed_verification_demotes_the_playbook_and_escalates() {
    let kube = FakeKube::start().await;
    kube.add_deployment("prod", "checkout", 3);
    let d = Daemon::start(
        &playbook("1s", "1s"),
        &config(&kube.url, "live", "  breaker_failures: 4\n  per_target: 10 per 1h\n"),
    )
    .await;
    let store = d.store().await;
    for wave in 0..4 {
        assert_eq!(d.post_alerts(vec![alert("checkout", wave, "firing")]).await, 202);
        // Applied, then the alert never resolves: the verification times out after 1s.
        let mut done = false;
        for _ in 0..200 {
            let ex = store.executions(&[], 10).await.unwrap();
            if ex.len() == wave + 1 && ex.iter().all(|e| e.state == "timed_out") {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(done, "wave {wave}: {:?}", store.executions(&[], 10).await.unwrap());
        let paused = store.active_pauses(chrono::Utc::now()).await.unwrap();
        assert_eq!(paused.len(), usize::from(wave == 3), "after failure {}: {paused:?}", wave + 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(kube.mutating_calls().len(), 4);
    let (_, pause) = &store.active_pauses(chrono::Utc::now()).await.unwrap()[0];
    assert!(pause.breaker && pause.playbook.as_deref() == Some("PB-901"), "{pause:?}");
    let causes: Vec<String> =
        store.escalations(50).await.unwrap().iter().map(|e| e["cause"].as_str().unwrap().to_string()).collect();
    assert_eq!(causes.iter().filter(|c| *c == "verification failed").count(), 4, "{causes:?}");
    let audit = store.audit(None, Some("PB-901"), None, 1000).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.action == "demote").count(), 1);

    // Demoted: the next alert is escalated, the breaker named, nothing applied.
    assert_eq!(d.post_alerts(vec![alert("checkout", 99, "firing")]).await, 202);
    d.settle().await;
    let last = d.decisions().await.into_iter().max_by_key(|x| x["seq"].as_i64()).unwrap();
    assert_eq!(last["explained"]["fingerprint"], "alertmanager/checkout-000099", "{last}");
    assert_eq!(last["level"], "L3", "{last}");
    let reasons = last["explained"]["decision"]["reasons"].to_string();
    assert!(reasons.contains("guard `circuit breaker` refused"), "{reasons}");
    assert_eq!(kube.mutating_calls().len(), 4);

    // A person re-enables it.
    let (code, body) = d.admin("/api/v1/resume", json!({ "scope": { "playbook": "PB-901" }, "by": "alice" })).await;
    assert_eq!(code, 200, "{body}");
    assert!(store.active_pauses(chrono::Utc::now()).await.unwrap().is_empty());
    d.stop().await;
}

#[tokio::test]
async fn once_paused_nothing_is_applied_while_events_are_still_accepted_and_escalated() {
    let kube = FakeKube::start().await;
    for n in 0..20 {
        kube.add_deployment("prod", &format!("svc{n}"), 2);
    }
    let d = Daemon::start(&playbook("1m", "10m"), &config(&kube.url, "live", "")).await;
    // Without the token, no pause.
    let r = reqwest::Client::new().post(format!("{}/api/v1/pauses", d.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (code, body) = d.admin("/api/v1/pauses", json!({ "reason": "incident bridge open", "by": "alice" })).await;
    assert_eq!(code, 201, "{body}");
    for n in 0..20 {
        assert_eq!(d.post_alerts(vec![alert(&format!("svc{n}"), n, "firing")]).await, 202);
    }
    d.settle().await;
    let decisions = d.decisions().await;
    assert_eq!(levels(&decisions), [("L3".to_string(), 20)].into());
    for dec in &decisions {
        let reasons = dec["explained"]["decision"]["reasons"].to_string();
        assert!(reasons.contains("guard `kill switch` refused its L1: all L1 is paused by alice"), "{reasons}");
    }
    assert!(kube.mutating_calls().is_empty(), "{:?}", kube.calls());

    // Resumed: the next alert is acted on.
    let (code, _) = d.admin("/api/v1/resume", json!({})).await;
    assert_eq!(code, 200);
    assert_eq!(d.post_alerts(vec![alert("svc0", 100, "firing")]).await, 202);
    d.settle().await;
    assert_eq!(kube.mutating_calls().len(), 1, "{:?}", kube.calls());
    d.stop().await;
}

/// The audit records of a run, without what differs by nature between two runs: times, the
/// result of the apply, how long the verification took.
async fn audit_shape(store: &Store) -> Vec<Value> {
    let mut out = Vec::new();
    for r in store.audit(None, None, None, 1000).await.unwrap() {
        let mut record = r.record.clone();
        if let Some(m) = record.as_object_mut() {
            m.remove("how");
            // The ruleset hash covers the playbook files' paths: each run has its own folder.
            m.remove("ruleset");
            if r.action == "result" {
                // What the apply did: the one part that differs by design.
                m.remove("result");
                m.remove("outcome");
            }
        }
        out.push(json!({ "action": r.action, "execution": r.execution, "playbook": r.playbook,
                         "incident": r.incident_key, "record": record }));
    }
    out
}

#[tokio::test]
async fn dry_run_and_live_make_the_same_plans_and_audit_records() {
    let mut shapes = Vec::new();
    let mut results = Vec::new();
    for mode in ["dry-run", "live"] {
        let kube = FakeKube::start().await;
        for n in ["checkout", "billing", "search"] {
            kube.add_deployment("prod", n, 2);
        }
        let d = Daemon::start(&playbook("1m", "10m"), &config(&kube.url, mode, "")).await;
        for (i, n) in ["checkout", "billing", "search"].into_iter().enumerate() {
            assert_eq!(d.post_alerts(vec![alert(n, i, "firing")]).await, 202);
            d.settle().await;
        }
        // A repeat for checkout while its restart is verifying, then checkout resolves.
        assert_eq!(d.post_alerts(vec![alert("checkout", 7, "firing")]).await, 202);
        d.settle().await;
        assert_eq!(d.post_alerts(vec![alert("checkout", 0, "resolved")]).await, 202);
        d.settle().await;
        let store = d.store().await;
        shapes.push(audit_shape(&store).await);
        let states: Vec<(String, String, bool)> =
            store.executions(&[], 100).await.unwrap().into_iter().map(|e| (e.id, e.state, e.dry_run)).collect();
        results.push((states, kube.mutating_calls().len()));
        d.stop().await;
    }
    assert_eq!(shapes[0], shapes[1]);
    assert!(shapes[0].iter().any(|r| r["action"] == "claim"), "{:#?}", shapes[0]);
    let (dry, live) = (&results[0], &results[1]);
    assert_eq!(dry.1, 0, "dry-run calls nothing");
    assert_eq!(live.1, 3, "live restarts the three deployments");
    let strip = |v: &Vec<(String, String, bool)>| v.iter().map(|(i, s, _)| (i.clone(), s.clone())).collect::<Vec<_>>();
    assert_eq!(strip(&dry.0), strip(&live.0));
    assert!(dry.0.iter().all(|(_, _, d)| *d) && live.0.iter().all(|(_, _, d)| !*d));
}

/// A listener that accepts connections and never answers: an API server that hangs.
async fn hanging_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, seen)
}

fn spawn_binary(dir: &Path) -> binary::Child {
    binary::spawn(dir, &["--config", &dir.join("sparky.yaml").display().to_string()])
}

#[tokio::test]
async fn a_restart_in_the_middle_of_an_action_never_applies_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let pbs = dir.path().join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::write(pbs.join("PB-901.sparky"), playbook("1m", "2s")).unwrap();
    let write_config = |kube: &str| {
        let yaml = format!(
            "store: sqlite://{}\nplaybooks: [{}]\ncatalog: []\n{}  apply_timeout: 60s\n",
            dir.path().join("sparky.db").display(),
            pbs.display(),
            config(kube, "live", "")
        );
        std::fs::write(dir.path().join("sparky.yaml"), yaml).unwrap();
    };
    let (hang, seen) = hanging_server().await;
    write_config(&hang);
    let mut child = spawn_binary(dir.path());
    let client = reqwest::Client::new();
    let body = json!({ "receiver": "sparky", "status": "firing", "alerts": [alert("checkout", 1, "firing")] });
    let r = client.post(format!("{}/webhooks/alertmanager", child.base)).json(&body).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // The apply is under way (the API server took the request and hangs): kill the daemon.
    let mut applying = false;
    for _ in 0..400 {
        let v: Value = client
            .get(format!("{}/api/v1/executions?state=applying", child.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["executions"].as_array().is_some_and(|a| a.len() == 1)
            && seen.load(std::sync::atomic::Ordering::SeqCst) > 0
        {
            applying = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(applying, "the apply never started");
    child.child.kill().unwrap();
    child.child.wait().unwrap();

    // Restarted against a healthy API server: it does not apply the action again.
    let kube = FakeKube::start().await;
    kube.add_deployment("prod", "checkout", 3);
    write_config(&kube.url);
    let mut child = spawn_binary(dir.path());
    let store = Store::open(&format!("sqlite://{}", dir.path().join("sparky.db").display())).await.unwrap();
    let mut state = String::new();
    for _ in 0..400 {
        state = store.executions(&[], 10).await.unwrap()[0].state.clone();
        if state == "timed_out" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(state, "timed_out", "its verification decided (the alert never resolved)");
    assert!(kube.calls().is_empty(), "{:?}", kube.calls());
    let audit = store.audit(None, None, None, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["decide", "claim", "interrupted", "verify", "escalate"], "{audit:#?}");
    assert!(store.audit_verify().await.unwrap().problems.is_empty());
    child.child.kill().unwrap();
    child.child.wait().unwrap();
}

#[test]
fn an_over_broad_or_empty_selector_takes_no_action() {
    use sparky::compile::{compile, read_sources};
    use sparky::diagnostics::SourceFile;
    let text = r#"/// Flush a cache.
playbook PB-902 "Flush" {
  status active
  owner  "team:data"
  on alert from alertmanager { labels.alertname == "CacheBad" }
  l1 "flush" {
    guard cooldown 10m per labels.alertname
    do redis.delete_keys(pattern = "{labels.prefix}*", max_keys = 100)
    verify resolved within 10m
  }
}
"#;
    let _ = read_sources;
    let compiled = compile(&[SourceFile::new("PB-902.sparky", text)]);
    let graph = sparky::graph::RuleGraph::build(&compiled);
    assert_eq!(graph.playbooks().len(), 1);
    let ctx = sparky::triage::MemoryContext::default();
    for prefix in ["", "*"] {
        let body = json!({ "receiver": "x", "status": "firing", "alerts": [{
            "status": "firing", "labels": { "alertname": "CacheBad", "prefix": prefix, "severity": "critical" },
            "annotations": {}, "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "f1" }] });
        let events = sparky::ingest::normalize(
            "alertmanager",
            &sparky::ingest::Headers::none(),
            body.to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .unwrap()
        .events;
        let d = sparky::triage::decide(&events[0], &ctx, &graph, chrono::Utc::now());
        assert_eq!(d.level, sparky::triage::Level::L3, "prefix {prefix:?}: {:?}", d.reasons);
        assert!(d.actions.is_empty());
        assert!(d.reasons.iter().any(|r| r.contains("its L1 cannot be planned")), "{:?}", d.reasons);
    }
}
