//! Throughput of one and of three replicas on one PostgreSQL store (and of one on SQLite, for
//! reference). Run with `cargo bench --bench replicas`; needs `SPARKY_TEST_DATABASE_URL`
//! (skipped, and says so, without it).
//!
//! Each run starts the daemons in this process on a fresh schema, posts 3,000 Alertmanager
//! deliveries (one alert each, 1,000 fingerprints, three firings each) from 16 clients spread
//! over the replicas as a load balancer would, and measures until every event is decided:
//! deliveries acknowledged per second, and events decided per second. Three runs per set-up;
//! the median is printed. The machine is shared and has 2 cores, so three replicas here share
//! the cores one replica has: the figure shows what the coordination costs, not what more
//! machines would give.

use serde_json::{Value, json};
use sparky::daemon::{self, Options, config::Config};
use sparky::store::Store;
use sqlx::Executor;
use std::time::{Duration, Instant};

const DELIVERIES: usize = 3000;
const CLIENTS: usize = 16;

fn body(i: usize) -> Value {
    let n = i % 1000;
    json!({ "receiver": "sparky", "status": "firing", "version": "4", "groupKey": "{}:{}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": "firing",
                "labels": { "alertname": "CheckoutDown", "namespace": "prod", "service": "checkout",
                            "severity": "critical", "instance": format!("checkout-{n}") },
                "annotations": { "summary": format!("checkout is down ({n}), delivery {i}") },
                "startsAt": "2026-11-28T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("down-{n:04}"),
            }] })
}

/// One run: `replicas` daemons on `url`; (acknowledged per second, decided per second).
async fn run(url: &str, replicas: usize) -> (f64, f64) {
    let mut running = Vec::new();
    for r in 0..replicas {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: url.to_string(),
            replica: Some(format!("bench-{r}")),
            playbooks: vec!["playbooks".into()],
            catalog: Some(vec!["catalog".into()]),
            ..Default::default()
        };
        config.triage.group_window = "0s".into();
        running.push(daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap());
    }
    let bases: Vec<String> = running.iter().map(|r| format!("http://{}", r.addr)).collect();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, bases) = (client.clone(), bases.clone());
        tasks.spawn(async move {
            for i in (c..DELIVERIES).step_by(CLIENTS) {
                let base = &bases[i % bases.len()];
                let r = client.post(format!("{base}/webhooks/alertmanager")).json(&body(i)).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 202);
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let acknowledged = started.elapsed();
    let store = Store::open(url).await.unwrap();
    while store.inbox_depth().await.unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let decided = started.elapsed();
    store.close().await;
    for r in running {
        r.stop().await.unwrap();
    }
    (DELIVERIES as f64 / acknowledged.as_secs_f64(), DELIVERIES as f64 / decided.as_secs_f64())
}

fn median(mut v: Vec<(f64, f64)>) -> (f64, f64) {
    let mid = v.len() / 2;
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v[mid]
}

async fn postgres(base: &str, schema: &str) -> String {
    let admin = sqlx::PgPool::connect(base).await.unwrap();
    admin.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str()).await.unwrap();
    admin.close().await;
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes `--bench`; a filter that is not ours (`cargo bench triage`) skips.
    if std::env::args().skip(1).any(|a| !a.starts_with('-') && !"replicas".contains(a.as_str())) {
        return;
    }
    let Ok(base) = std::env::var("SPARKY_TEST_DATABASE_URL") else {
        eprintln!("SKIP replicas bench: SPARKY_TEST_DATABASE_URL is not set");
        return;
    };
    let mut rows = Vec::new();
    {
        let mut runs = Vec::new();
        for k in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join(format!("bench-{k}.db")).display());
            runs.push(run(&url, 1).await);
        }
        rows.push(("1 replica, SQLite", median(runs)));
    }
    for replicas in [1, 3] {
        let mut runs = Vec::new();
        for k in 0..3 {
            let schema = format!("sparky_bench_{}_{replicas}_{k}", std::process::id());
            let url = postgres(&base, &schema).await;
            runs.push(run(&url, replicas).await);
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.unwrap();
        }
        rows.push((if replicas == 1 { "1 replica, PostgreSQL" } else { "3 replicas, PostgreSQL" }, median(runs)));
    }
    println!("replicas: {DELIVERIES} deliveries from {CLIENTS} clients, median of 3 runs");
    for (name, (acked, decided)) in rows {
        println!("  {name:<24} {acked:>7.0} deliveries/s acknowledged  {decided:>7.0} events/s decided");
    }
}
