//! Three `sparky serve` processes on one PostgreSQL database behave as one Sparky: each of
//! 1,000 deliveries is posted to all three at once; every event is decided exactly once,
//! each incident key has one Jira issue and one PagerDuty alert, the engine's budget and
//! cooldown hold across the replicas; one replica is killed (SIGKILL) mid-run and nothing
//! acknowledged is lost. And while the database is down (a proxy in front of it cut),
//! webhooks get 503 and `/readyz` says so; once it is back, the retried delivery is accepted
//! and every acknowledged event decided. Needs `SPARKY_TEST_DATABASE_URL` (skipped, visibly,
//! without it).

#[path = "support/backends.rs"]
mod backends;
#[path = "support/binary.rs"]
mod binary;
#[path = "support/fake_escalation.rs"]
mod fake_escalation;
#[path = "support/fake_kube.rs"]
mod fake_kube;

use backends::TestDb;
use fake_escalation::FakeEscalation;
use fake_kube::FakeKube;
use serde_json::{Value, json};
use sparky::store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const CHECKOUT_KEY: &str = "0123456789abcdef0123456789abcdef";

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    jira/project-key: CHK
    pagerduty.com/integration-key: KEY
spec:
  type: service
  lifecycle: production
  owner: group:team-checkout
"#;

/// A restart with a cooldown per deployment; the engine's budget is 3 per hour. Its
/// verification fails (nothing resolves the alert), so each restart also escalates.
const RESTART: &str = r#"/// Restart a crash-looping deployment.
playbook PB-961 "Restart a crash-looping deployment" {
  status active
  owner  "team:platform"
  on alert from alertmanager {
    labels.alertname == "KubeDeploymentCrashing"
  }
  l1 "restart the deployment" {
    guard blast_radius <= 1
    guard cooldown 1h per labels.deployment
    do k8s.rollout_restart(namespace = labels.namespace, name = labels.deployment)
    verify resolved within 1s
  }
  l3 priority P2
}
"#;

fn config(fake: &str, kube: &str, store: &str, dir: &std::path::Path) -> String {
    format!(
        r#"store: "{store}"
playbooks: [{pbs}]
catalog: [{cat}]
triage:
  group_window: 0s
engine:
  budget: 3 per 1h
  per_target: 100 per 1h
  breaker_failures: 0
  retry_backoff: 10ms
integrations:
  mode: live
  kubernetes:
    url: {kube}
  jira:
    url: {fake}
    email: sparky@example.com
    token: jira-token
    timeout: 5s
    search_lag: 1s
  pagerduty:
    enabled: true
    url: {fake}
    routing_key: fedcba9876543210fedcba9876543210
    min_interval: 1ms
escalation:
  link_wait: 1s
  max_backoff: 1s
"#,
        pbs = dir.join("playbooks").display(),
        cat = dir.join("catalog").display(),
    )
}

/// Delivery `i`: 900 `CheckoutDown` alerts over 300 fingerprints (each fires three times,
/// with different text), and 100 crash-loops over 5 deployments (each pod its own alert).
fn delivery(i: usize) -> Value {
    let alert = if i % 10 == 9 {
        let pod = i / 10;
        json!({
            "status": "firing",
            "labels": { "alertname": "KubeDeploymentCrashing", "namespace": "prod",
                        "deployment": format!("app-{}", pod % 5), "pod": format!("app-{pod}"),
                        "service": "checkout", "severity": "critical" },
            "annotations": { "summary": "crash-loops" },
            "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("crash-{pod:04}"),
        })
    } else {
        let n = (i - i / 10) % 300;
        json!({
            "status": "firing",
            "labels": { "alertname": "CheckoutDown", "namespace": "prod", "service": "checkout",
                        "severity": "critical", "instance": format!("checkout-{n}") },
            "annotations": { "summary": format!("checkout is down ({n}), delivery {i}") },
            "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": format!("down-{n:04}"),
        })
    };
    json!({ "receiver": "sparky", "status": "firing", "alerts": [alert], "version": "4",
            "groupKey": "{}:{}", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093" })
}

/// Posts `body` to `base`; the status, or none when the replica does not answer.
async fn post(client: &reqwest::Client, base: &str, body: &Value) -> Option<u16> {
    let r = client.post(format!("{base}/webhooks/alertmanager")).json(body).send().await;
    r.ok().map(|r| r.status().as_u16())
}

async fn status(base: &str) -> Value {
    reqwest::get(format!("{base}/api/v1/status")).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_one_database_act_as_one_sparky_even_when_one_is_killed() {
    let Some(db) = TestDb::postgres("three_replicas_on_one_database").await else { return };
    let fake = FakeEscalation::start().await;
    let kube = FakeKube::start().await;
    for d in 0..5 {
        kube.add_deployment("prod", &format!("app-{d}"), 3);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/PB-961.sparky"), RESTART).unwrap();
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), CATALOG.replace("KEY", CHECKOUT_KEY)).unwrap();
    std::fs::write(dir.path().join("sparky.yaml"), config(&fake.url(), &kube.url, &db.url, dir.path())).unwrap();
    let replicas: Vec<binary::Child> = ["r1", "r2", "r3"]
        .iter()
        .map(|r| binary::spawn(dir.path(), &["--config", "sparky.yaml", "--replica", r]))
        .collect();
    let bases: Vec<String> = replicas.iter().map(|c| c.base.clone()).collect();

    // Each delivery to all three at once, eight deliveries in flight; the third replica is
    // killed halfway.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut acknowledged = BTreeSet::new();
    let mut replicas = replicas.into_iter();
    let (r1, r2, r3) = (replicas.next().unwrap(), replicas.next().unwrap(), replicas.next().unwrap());
    let mut r3 = Some(r3);
    for chunk in (0..1000).collect::<Vec<_>>().chunks(8) {
        if chunk[0] >= 500
            && let Some(r) = r3.take()
        {
            r.kill();
        }
        let mut sends = tokio::task::JoinSet::new();
        for &i in chunk {
            let (client, bases, body) = (client.clone(), bases.clone(), delivery(i));
            sends.spawn(async move {
                let (a, b, c) = tokio::join!(
                    post(&client, &bases[0], &body),
                    post(&client, &bases[1], &body),
                    post(&client, &bases[2], &body)
                );
                (i, [a, b, c])
            });
        }
        while let Some(sent) = sends.join_next().await {
            let (i, answers) = sent.unwrap();
            // Acknowledged: at least one replica answered 202 (the others 202 as duplicates,
            // or, for the killed one, nothing).
            if answers.contains(&Some(202)) {
                acknowledged.insert(i);
            }
            assert!(answers.iter().all(|a| matches!(a, Some(202) | None)), "delivery {i}: {answers:?}");
        }
    }
    assert_eq!(acknowledged.len(), 1000, "the surviving replicas acknowledge every delivery");
    let posted = started.elapsed();

    // The survivors decide everything (the killed replica's claims end with their lease) and
    // deliver every escalation (its rows are taken over once it is unseen).
    let store = Store::open(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let pending = store.inbox_depth().await.unwrap();
        let outbox = store.outbox(None, 5000).await.unwrap();
        let waiting = outbox.iter().filter(|r| r.state == "pending").count();
        let applying = store.executions(&["queued", "applying", "verifying"], 100).await.unwrap().len();
        if pending == 0 && waiting == 0 && applying == 0 && !outbox.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled: {pending} events, {waiting} escalations pending, {applying} executions under way"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let settled = started.elapsed();

    // Every acknowledged delivery is one event (not three), decided exactly once.
    let counts: BTreeMap<String, i64> = store.event_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts.values().sum::<i64>(), 1000, "{counts:?}");
    assert_eq!(counts.get("pending"), None);
    let decisions = store.decisions(5000, None, None).await.unwrap();
    let decided: BTreeSet<i64> = decisions.iter().map(|d| d.event_seq).collect();
    assert_eq!(decided.len(), decisions.len(), "no event has two decisions");
    assert_eq!(decisions.len() as i64 + counts.get("attached").copied().unwrap_or(0), 1000);
    // 300 `CheckoutDown` incidents and 100 crash-loop incidents: one issue and one page each.
    let issues = fake.issues();
    let keys: BTreeSet<String> =
        issues.iter().flat_map(|i| i.labels.iter().filter(|l| l.starts_with("SPK-")).cloned()).collect();
    assert_eq!(issues.len(), 400, "one Jira issue per incident");
    assert_eq!(keys.len(), 400, "each for its own incident key");
    let alerts = fake.pd_alerts();
    let dedup: BTreeSet<&str> = alerts.iter().map(|a| a.dedup_key.as_str()).collect();
    assert_eq!((alerts.len(), dedup.len()), (400, 400), "one PagerDuty alert per incident");
    // The budget (3 per hour) and the cooldown (one per deployment) held across replicas.
    let restarts = kube.mutating_calls();
    assert!(!restarts.is_empty() && restarts.len() <= 3, "{} restarts", restarts.len());
    let targets: BTreeSet<String> = restarts.iter().map(|c| c.path.clone()).collect();
    assert_eq!(targets.len(), restarts.len(), "never twice the same deployment: {restarts:?}");
    let started_executions = store.executions(&[], 5000).await.unwrap();
    assert_eq!(started_executions.iter().filter(|e| e.started_at.is_some()).count(), restarts.len());
    assert!(store.audit_verify().await.unwrap().problems.is_empty());

    // The status API lists the replicas and the ruleset each runs; the killed one is gone.
    let s = status(&r1.base).await;
    let shown: Vec<(String, bool)> = s["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["alive"].as_bool().unwrap()))
        .collect();
    assert_eq!(shown[0].0, "r1", "this replica first: {shown:?}");
    assert!(shown.contains(&("r2".into(), true)) && shown.contains(&("r3".into(), false)), "{shown:?}");
    assert!(s["replicas"].as_array().unwrap().iter().all(|r| r["ruleset"] == s["ruleset"]));
    eprintln!(
        "three replicas (one killed halfway): 1,000 deliveries x 3 posted in {:.1} s ({:.0} deliveries/s acknowledged); all decided and escalated after {:.1} s",
        posted.as_secs_f64(),
        1000.0 / posted.as_secs_f64(),
        settled.as_secs_f64()
    );
    r1.kill();
    r2.kill();
}

/// A TCP proxy in front of PostgreSQL that the test can cut (every connection dropped, new
/// ones accepted and never answered) and restore: the database "goes down" for the daemon
/// alone.
struct Cuttable {
    port: u16,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(upstream: &str) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, c, upstream) = (down.clone(), conns.clone(), upstream.to_string());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    // Accepted and never answered, as a database behind a dead network path
                    // looks: a client waits for its own timeout.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(client);
                    });
                    continue;
                }
                let upstream = upstream.clone();
                c.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                }));
            }
        });
        Cuttable { port, down, conns }
    }

    fn cut(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        if down {
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_down_webhooks_get_503_and_nothing_acknowledged_is_lost() {
    use sparky::daemon::{self, Options, config::Config};
    let Some(db) = TestDb::postgres("while_the_database_is_down").await else { return };
    // The same database and schema, through the proxy.
    let url = reqwest::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = Cuttable::start(&upstream).await;
    let mut through = url.clone();
    through.set_host(Some("127.0.0.1")).unwrap();
    through.set_port(Some(proxy.port)).unwrap();
    let mut config = Config { store: through.to_string(), ..Default::default() };
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec!["playbooks".into()];
    config.catalog = Some(vec!["catalog".into()]);
    config.triage.group_window = "0s".into();
    let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();

    assert_eq!(post(&client, &base, &delivery(0)).await, Some(202));
    proxy.cut(true);
    let first = Instant::now();
    let r = client.post(format!("{base}/webhooks/alertmanager")).json(&delivery(1)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503, "not acknowledged while the database is down");
    assert!(first.elapsed() < Duration::from_secs(5), "within PagerDuty's patience: {:?}", first.elapsed());
    assert!(r.headers().contains_key("retry-after"));
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503, "the load balancer is told");
    // Known down now: the next sender and the next probe are answered at once (PagerDuty
    // gives up on a webhook after 5 s; a load balancer's probe waits less).
    let started = Instant::now();
    let r = client.post(format!("{base}/webhooks/alertmanager")).json(&delivery(2)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

    // The database is back: the sender's retry is accepted, and both events are decided.
    proxy.cut(false);
    let mut answered = None;
    for _ in 0..100 {
        answered = post(&client, &base, &delivery(1)).await;
        if answered == Some(202) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answered, Some(202));
    let store = Store::open(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.inbox_depth().await.unwrap() > 0 || store.event_counts().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the inbox did not drain");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts: BTreeMap<String, i64> = store.event_counts().await.unwrap().into_iter().collect();
    assert_eq!(counts.values().sum::<i64>(), 2, "{counts:?}");
    assert_eq!(store.decisions(10, None, None).await.unwrap().len(), 2);
    running.stop().await.unwrap();
}
