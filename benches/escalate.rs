//! The cost of an escalation's rendering against the JSON parse of an alert. Run with
//! `cargo bench --bench escalate`.
//!
//! On the rich fixture package (`tests/fixtures/escalate/rich`: a known service with owner,
//! on-call and runbook, four deploys, past incidents, downstream impact, an analysis, a failed
//! L1 attempt), measured in one run so the ratios hold on a noisy machine:
//! - `parse`: `serde_json` reading the 2 KB Alertmanager body (the baseline);
//! - `outbox-write`: the package serialized as the outbox stores it;
//! - `outbox-read`: the package read back, as the delivery worker does per attempt;
//! - `adf`, `wiki`, `slack`, `pagerduty`: each destination's rendering.
//!
//! The goal: rendering and the outbox round trip cost no more than a few alert parses, so an
//! escalation never slows the decision it comes with.

use criterion::{Criterion, criterion_group, criterion_main};
use sparky::escalate::pagerduty::{PagerDuty, PagerDutyConfig};
use sparky::escalate::{EscalationPackage, IssueLink, adf, slack, wiki};
use std::hint::black_box;
use std::time::Duration;

const BODY: &str =
    include_str!("../tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json");
const RICH: &str = include_str!("../tests/fixtures/escalate/rich/escalation.json");

fn bench(c: &mut Criterion) {
    let package: EscalationPackage = serde_json::from_str(RICH).unwrap();
    let stored = serde_json::to_string(&package).unwrap();
    let jira = IssueLink { key: "OPS-12".into(), url: "https://acme.atlassian.net/browse/OPS-12".into() };
    let pd = PagerDuty::new(PagerDutyConfig::default());
    let mut g = c.benchmark_group("escalate");
    g.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    g.bench_function("parse", |b| b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(BODY)).unwrap()));
    g.bench_function("outbox-write", |b| b.iter(|| serde_json::to_string(black_box(&package)).unwrap()));
    g.bench_function("outbox-read", |b| {
        b.iter(|| serde_json::from_str::<EscalationPackage>(black_box(&stored)).unwrap())
    });
    g.bench_function("adf", |b| b.iter(|| adf::description(black_box(&package))));
    g.bench_function("wiki", |b| b.iter(|| wiki::description(black_box(&package))));
    g.bench_function("slack", |b| b.iter(|| slack::message(black_box(&package), Some(&jira))));
    g.bench_function("pagerduty", |b| b.iter(|| pd.trigger_event(black_box(&package), Some(&jira))));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
