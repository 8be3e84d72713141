//! Triage cost on a 2 KB Alertmanager alert, against the cost of parsing it.
//! Run with `cargo bench --bench triage`.
//!
//! Measured in one run, so the ratios hold on a noisy machine:
//! - `parse`: the baseline, `serde_json` reading the body into a `Value`;
//! - `normalize`: the Alertmanager normalizer (parse included) producing the `Event`;
//! - `normalize+decide/N`: normalize, then `decide` over N generated playbooks.
//!
//! The goals: (normalize + decide) / parse ≤ 1.5 at 1,000 playbooks, and the cost at
//! 10,000 playbooks ≤ 1.5 × the cost at 10. At setup the bench prints how many triggers the
//! index offers and how many rhai conditions run per event, for each N.
//!
//! The playbook mix is what a large ruleset looks like: most playbooks are about other alerts
//! (equality or membership on `alertname`, a regex on the namespace, a `kg::` condition, an L1
//! with four guards), some listen to another source; four are about this alert: one whose
//! namespace regex fails, one whose condition is false, the one that decides (every guard
//! checked, L1 planned), and one shadowed by it.

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use sparky::compile::compile;
use sparky::diagnostics::SourceFile;
use sparky::event::Event;
use sparky::graph::RuleGraph;
use sparky::ingest;
use sparky::knowledge::Knowledge;
use sparky::triage::{Level, MemoryContext, Outcome, Run, decide};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const BODY: &str =
    include_str!("../tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json");

fn body() -> Vec<u8> {
    BODY.replace("\"namespace\": \"payments\"", "\"namespace\": \"prod\"").into_bytes()
}

fn now() -> DateTime<Utc> {
    "2026-03-10T08:20:00Z".parse().unwrap()
}

const L1: &str = r#"
  l1 "restart" {
    guard success_rate >= 99% over 30d min 20 runs
    guard blast_radius <= 1
    guard cooldown 15m per labels.pod
    guard at_most 5 per 1h
    do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)
    verify resolved within 10m
  }"#;

fn file(id: &str, priority: i64, trigger: &str, condition: &str, l1: bool) -> Arc<SourceFile> {
    let when = if condition.is_empty() { String::new() } else { format!("  when {{ {condition} }}\n") };
    let l1 = if l1 { L1 } else { "" };
    SourceFile::new(
        format!("gen/{id}.sparky"),
        format!(
            "/// Generated.\nplaybook {id} \"generated\" {{\n  status active\n  owner \"team:gen\"\n  priority {priority}\n  {trigger}\n{when}{l1}\n  l3 priority P2\n}}\n"
        ),
    )
}

const KG: &str = "kg::service(event.service).stateless && !kg::deployed_within(event.service, \"30m\")";

/// `n` playbooks, four of them about the benchmark's alert.
fn sources(n: usize) -> Vec<Arc<SourceFile>> {
    let crash = r#"labels.alertname == "KubePodCrashLooping""#;
    let mut out = vec![
        file(
            "HIT-1",
            50,
            &format!("on alert from alertmanager {{ {crash} labels.namespace =~ \"^staging\" }}"),
            KG,
            true,
        ),
        file(
            "HIT-2",
            40,
            &format!("on alert from alertmanager {{ {crash} }}"),
            "event.labels.container == \"sidecar\"",
            true,
        ),
        file(
            "HIT-3",
            30,
            &format!(
                "on alert from alertmanager {{ {crash} labels.namespace =~ \"^(prod|staging)\" labels.pod exists }}"
            ),
            "kg::service(event.service).stateless && kg::pod(event.labels.namespace, event.labels.pod).last_termination_reason in lists::benign_crash_reasons && !kg::deployed_within(event.service, \"30m\")",
            true,
        ),
        file("HIT-4", 20, &format!("on alert from alertmanager {{ {crash} }}"), "", false),
    ];
    for i in 0..n.saturating_sub(4) {
        let id = format!("GEN-{i:05}");
        let f = match i % 10 {
            0..=5 => file(
                &id,
                (i % 7) as i64,
                &format!(
                    "on alert from alertmanager {{ labels.alertname == \"Alert{i}\" labels.namespace =~ \"^prod\" }}"
                ),
                KG,
                true,
            ),
            6..=8 => file(
                &id,
                0,
                &format!("on alert {{ labels.alertname in [\"Alert{i}a\", \"Alert{i}b\"] severity == \"critical\" }}"),
                "",
                false,
            ),
            _ => file(&id, 0, &format!("on alert from grafana {{ labels.alertname == \"Grafana{i}\" }}"), KG, false),
        };
        out.push(f);
    }
    out.truncate(n);
    out
}

fn context() -> MemoryContext {
    let mut kg = Knowledge::new(Default::default(), now().timestamp_millis());
    let mut service = rhai::Map::new();
    service.insert("stateless".into(), true.into());
    kg.add_facts("payments-api", service);
    let mut pod = rhai::Map::new();
    pod.insert("last_termination_reason".into(), "Error".into());
    kg.add_pod("prod", "payments-api-7d9c8b6f5-x2x9q", pod);
    let mut ctx = MemoryContext::new(kg);
    for d in 1..=25 {
        let at = now() - chrono::Duration::days(d % 20 + 1);
        ctx.add_run("HIT-3", Run { at, keys: Default::default(), outcome: Outcome::Success, incident: None });
    }
    ctx
}

fn normalize(body: &[u8]) -> Event {
    ingest::normalize("alertmanager", &ingest::Headers::none(), body, now()).unwrap().events.remove(0)
}

fn bench(c: &mut Criterion) {
    let body = body();
    let ctx = context();
    let sizes = [10usize, 100, 1_000, 10_000];
    let graphs: Vec<(usize, RuleGraph)> = sizes
        .iter()
        .map(|&n| {
            let compiled = compile(&sources(n));
            assert_eq!(compiled.errors(), 0, "{:?}", compiled.diagnostics.first().map(|d| &d.message));
            let graph = RuleGraph::build(&compiled);
            let d = decide(&normalize(&body), &ctx, &graph, now());
            assert_eq!((d.level, d.playbook.as_deref()), (Level::L1, Some("HIT-3")), "{:?}", d.reasons);
            let conditions = d.trace.iter().filter(|t| t.condition.is_some()).count();
            eprintln!(
                "{n:>6} playbooks: {} considered, {conditions} rhai condition(s) evaluated per event",
                d.trace.len()
            );
            (n, graph)
        })
        .collect();

    let mut group = c.benchmark_group("triage");
    group.sample_size(50).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    group.bench_function("parse", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).unwrap()))
    });
    group.bench_function("normalize", |b| b.iter(|| black_box(normalize(black_box(&body)))));
    for (n, graph) in &graphs {
        group.bench_function(format!("normalize+decide/{n}"), |b| {
            b.iter(|| {
                let event = normalize(black_box(&body));
                black_box(decide(&event, &ctx, graph, now()))
            })
        });
    }
    let event = normalize(&body);
    for (n, graph) in &graphs {
        group.bench_function(format!("decide/{n}"), |b| {
            b.iter(|| black_box(decide(black_box(&event), &ctx, graph, now())))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
