//! Context gathering against the decision it feeds. Run with `cargo bench --bench knowledge`.
//!
//! The knowledge is large on purpose: a catalog of 5,000 services with 20,000 dependency
//! edges, 100,000 past incidents (over 10,000 fingerprints) and 20,000 deploys. Measured in
//! one run, so the ratios hold on a noisy machine:
//! - `parse`: `serde_json` reading the 2 KB alert body (the baseline of every figure);
//! - `resolve`: finding the event's service in the catalog by label order;
//! - `package`: assembling the whole context package (service, owner, on-call, deploys,
//!   history, downstream and upstream impact);
//! - `analyze`: the built-in analyzer's four rules;
//! - `decide`: the decision on the shipped playbooks with this knowledge;
//! - `package-leaf`, `decide-leaf`: the same for a service few others depend on (the alert
//!   above is about `payments-api`, a hub that 86% of the catalog depends on);
//! - `gather-store`: what the daemon reads per batch from SQLite (deploys of the batch's
//!   services and their dependencies in the last 7 days, history of the batch's
//!   fingerprints) with 100,000 incidents and 20,000 deploys stored.
//!
//! The goal: context gathering does not dominate the decision.

use chrono::{DateTime, Duration as Span, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sparky::analysis::package::Package;
use sparky::analysis::{Input, builtin};
use sparky::compile::{compile, read_sources};
use sparky::event::Event;
use sparky::graph::RuleGraph;
use sparky::ingest;
use sparky::knowledge::catalog::Service;
use sparky::knowledge::{Deploy, DeployState, Knowledge, PastIncident, resolve_service};
use sparky::triage::{MemoryContext, decide};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

const BODY: &str =
    include_str!("../tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json");

const SERVICES: usize = 5_000;
const EDGES: usize = 20_000;
const INCIDENTS: usize = 100_000;
const FINGERPRINTS: usize = 10_000;
const DEPLOYS: usize = 20_000;

fn now() -> DateTime<Utc> {
    "2026-03-10T08:20:00Z".parse().unwrap()
}

/// A deterministic pseudo-random sequence (no dependency for it).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

fn name(i: usize) -> String {
    if i == 0 { "payments-api".into() } else { format!("svc-{i:04}") }
}

fn knowledge(event: &Event) -> Knowledge {
    let mut rng = Lcg(42);
    let mut kg = Knowledge::new(Default::default(), now().timestamp_millis());
    for i in 0..SERVICES {
        kg.catalog_mut().insert(Service {
            name: name(i),
            kind: "Component".into(),
            namespace: "default".into(),
            owner: Some(format!("group:team-{}", i % 50)),
            stateless: Some(i % 3 != 0),
            tier: Some(format!("tier-{}", 1 + i % 3)),
            repo: Some(format!("acme/{}", name(i))),
            ..Default::default()
        });
    }
    for _ in 0..EDGES {
        // Layered: a service depends on ones with a higher index, so chains are long but the
        // graph has no cycle, as most real ones do not.
        let from = rng.next(SERVICES - 1);
        let to = from + 1 + rng.next((SERVICES - from - 1).min(400));
        kg.catalog_mut().add_dependency(&name(to), &name(from));
    }
    for i in 0..INCIDENTS {
        let fingerprint =
            if i % FINGERPRINTS == 0 { event.fingerprint.clone() } else { format!("fp-{}", i % FINGERPRINTS) };
        kg.add_incident(PastIncident {
            key: format!("SPK-{i:012x}"),
            fingerprint,
            service: Some(name(i % SERVICES)),
            opened_at: now() - Span::minutes((i % 120_000) as i64 + 60),
            closed_at: None,
            level: "L1".into(),
            playbook: Some("PB-001".into()),
            summary: "past".into(),
            actions: vec!["k8s.delete_pod".into()],
            fix: (i % 7 == 0).then(|| "memory_limit".into()),
            outcome: Some(if i % 5 == 0 { "failure" } else { "success" }.into()),
            flapping: false,
        });
    }
    for i in 0..DEPLOYS {
        kg.add_deploy(deploy(i, &name(rng.next(SERVICES)), now() - Span::minutes((i % 10_000) as i64 + 5)));
    }
    kg
}

fn deploy(i: usize, service: &str, at: DateTime<Utc>) -> Deploy {
    Deploy {
        key: format!("deploy-{i}"),
        service: service.into(),
        at,
        state: DeployState::Succeeded,
        environment: Some("production".into()),
        version: Some(format!("v1.{i}")),
        commit: Some(format!("{i:07x}")),
        repository: None,
        by: None,
        url: None,
        source: "bench".into(),
        summary: "deploy".into(),
    }
}

fn normalize(body: &[u8]) -> Event {
    ingest::normalize("alertmanager", &ingest::Headers::none(), body, now()).unwrap().events.remove(0)
}

fn bench(c: &mut Criterion) {
    let body = BODY.replace("\"namespace\": \"payments\"", "\"namespace\": \"prod\"").into_bytes();
    let mut event = normalize(&body);
    let started = std::time::Instant::now();
    let kg = knowledge(&event);
    eprintln!(
        "knowledge: {} services, {} incidents, built in {:?}; payments-api has {} downstream, {} upstream",
        kg.catalog().len(),
        kg.incident_count(),
        started.elapsed(),
        kg.catalog().downstream("payments-api").len(),
        kg.catalog().upstream("payments-api").len()
    );
    let matched = resolve_service(&mut event, &kg).expect("the alert names a service");
    assert!(matched.known, "{matched:?}");
    let compiled = compile(&read_sources(&[PathBuf::from("playbooks")]).unwrap());
    let graph = RuleGraph::build(&compiled);
    let ctx = MemoryContext::new(kg.clone());
    let kg = ctx.knowledge_graph();
    let d = decide(&event, &ctx, &graph, now());
    eprintln!("decision: {} by {:?}", d.level, d.playbook);

    let mut group = c.benchmark_group("knowledge");
    group.sample_size(50).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap()))
    });
    group.bench_function("resolve", |b| {
        b.iter(|| {
            let mut e = event.clone();
            black_box(resolve_service(&mut e, kg))
        })
    });
    group.bench_function("package", |b| b.iter(|| black_box(Package::assemble(&event, kg, Some(&d), None, now()))));
    group.bench_function("analyze", |b| {
        b.iter(|| black_box(builtin::analyze(&Input { event: &event, knowledge: kg, now: now() })))
    });
    group.bench_function("downstream-count-hub", |b| {
        b.iter(|| black_box(kg.catalog().downstream_count(black_box("payments-api"))))
    });
    group.bench_function("decide", |b| b.iter(|| black_box(decide(black_box(&event), &ctx, &graph, now()))));
    // The same alert for a service near the edge of the graph (few dependents): what most
    // events look like; payments-api above is a hub nearly everything depends on.
    let mut leaf = event.clone();
    for v in leaf.labels.values_mut() {
        *v = v.replace("payments-api", "svc-4990");
    }
    leaf.service = None;
    resolve_service(&mut leaf, kg).expect("the leaf is in the catalog");
    eprintln!("leaf {:?}: {} downstream", leaf.service, kg.catalog().downstream_count("svc-4990"));
    let leaf_decision = decide(&leaf, &ctx, &graph, now());
    group.bench_function("package-leaf", |b| {
        b.iter(|| black_box(Package::assemble(&leaf, kg, Some(&leaf_decision), None, now())))
    });
    group.bench_function("decide-leaf", |b| b.iter(|| black_box(decide(black_box(&leaf), &ctx, &graph, now()))));
    group.finish();
    gather_from_store(c, &event);
}

/// Writes the incidents and deploys straight into the store's tables (the daemon writes them
/// one decision at a time; a bench cannot wait for 100,000 of those).
async fn seed(url: &str, event: &Event) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for i in 0..INCIDENTS {
        let fingerprint =
            if i % FINGERPRINTS == 0 { event.fingerprint.clone() } else { format!("fp-{}", i % FINGERPRINTS) };
        let at = ts(now() - Span::minutes((i % 120_000) as i64 + 60));
        sqlx::query(
            "INSERT INTO incidents (key, fingerprint, state, level, playbook, opened_at, updated_at, closed_at, service, summary, actions, outcome)
             VALUES ($1, $2, 'closed', 'L1', 'PB-001', $3, $3, $3, $4, 'past', 'k8s.delete_pod', 'success')",
        )
        .bind(format!("SPK-{i:012x}"))
        .bind(fingerprint)
        .bind(at)
        .bind(name(i % SERVICES))
        .execute(&mut *tx)
        .await?;
    }
    for i in 0..DEPLOYS {
        let at = ts(now() - Span::minutes((i % 10_000) as i64 + 5));
        sqlx::query(
            "INSERT INTO deploys (key, service, at, state, version, source, summary, updated_at)
             VALUES ($1, $2, $3, 'succeeded', $4, 'bench', 'deploy', $3)",
        )
        .bind(format!("deploy-{i}"))
        .bind(name(i % SERVICES))
        .bind(at)
        .bind(format!("v1.{i}"))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The daemon's per-batch reads, from a SQLite store holding the same history.
fn gather_from_store(c: &mut Criterion, event: &Event) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let store = rt.block_on(sparky::store::Store::open(&url)).unwrap();
    rt.block_on(seed(&url, event)).unwrap();
    let fingerprints = [event.fingerprint.as_str(), "fp-17", "fp-4242"];
    // The batch's services and what they depend on, as the daemon asks.
    let services = ["payments-api", "svc-0017", "svc-4242", "svc-0100", "svc-0200"];
    let mut group = c.benchmark_group("knowledge");
    group.sample_size(30).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.bench_function("gather-store", |b| {
        b.iter(|| {
            rt.block_on(async {
                let deploys = store.deploys(&services, now() - Span::days(7), 10_000).await.unwrap();
                let history = store.history(&fingerprints, now() - Span::days(90), 50).await.unwrap();
                black_box((deploys.len(), history.len()))
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
