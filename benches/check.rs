//! `sparky check` on 1,000 generated playbooks: the goal is under 1 s for all of them
//! (release build, these 2-core machines). Run with `cargo bench --bench check`.
//!
//! Besides the whole check, it measures parsing alone and compiling one playbook, so the
//! report can say where the time goes.

use criterion::{Criterion, criterion_group, criterion_main};
use sparky::compile::compile;
use sparky::diagnostics::SourceFile;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

/// A realistic playbook: trigger with three matchers, a rhai condition, an L1 with four
/// guards, one action and verification, and an L3.
fn playbook(i: usize) -> String {
    let action = match i % 3 {
        0 => "k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)".to_string(),
        1 => {
            "k8s.scale(namespace = labels.namespace, name = labels.deployment, step = 2, max_replicas = 20)".to_string()
        }
        _ => format!("redis.delete_keys(pattern = \"tenant{i}:{{labels.user_id}}:*\", max_keys = 500)"),
    };
    format!(
        r#"/// Generated playbook {i}.
///
/// Restarts or scales the service behind alert {i} when it is safe to.
playbook GEN-{i:04} "generated {i}" {{
  status   active
  owner    "team:gen-{team}"
  priority {prio}

  on alert from alertmanager {{
    labels.alertname == "GeneratedAlert{i}"
    labels.namespace =~ "^(prod|staging)-{team}"
    severity in urgent_severities
  }}

  when {{
    kg::service(event.service).stateless
      && kg::pod(event.labels.namespace, event.labels.pod).last_termination_reason in lists::benign_crash_reasons
      && !kg::deployed_within(event.service, "30m")
  }}

  l1 "remediate {i}" {{
    guard success_rate >= 99% over 30d min 20 runs
    guard blast_radius <= 2
    guard cooldown 15m per labels.pod
    guard at_most 5 per 1h
    do {action}
    verify resolved within 10m
  }}

  l3 priority P2
}}
"#,
        team = i % 17,
        prio = i % 10,
    )
}

fn sources(n: usize) -> Vec<Arc<SourceFile>> {
    (0..n).map(|i| SourceFile::new(format!("gen/{i:04}.sparky"), playbook(i))).collect()
}

fn bench(c: &mut Criterion) {
    let thousand = sources(1000);
    let check = compile(&thousand);
    assert_eq!(check.errors(), 0, "{:?}", check.diagnostics.iter().take(3).map(|d| &d.message).collect::<Vec<_>>());
    assert_eq!(check.playbooks.len(), 1000);

    let mut group = c.benchmark_group("check");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.bench_function("1000 playbooks", |b| b.iter(|| black_box(compile(black_box(&thousand)))));
    group.bench_function("parse 1000 playbooks", |b| {
        b.iter(|| {
            for f in &thousand {
                black_box(sparky::dsl::parse_file(f));
            }
        })
    });
    let one = sources(1);
    group.bench_function("1 playbook (with stdlib)", |b| b.iter(|| black_box(compile(black_box(&one)))));
    group.bench_function("stdlib only", |b| b.iter(|| black_box(compile(&[]))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
