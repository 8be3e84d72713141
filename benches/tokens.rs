//! What a PB-003 run costs besides its I/O, for an inventory of 10,000 tokens (a large
//! secrets manager), against reading that inventory's JSON answer. Run with
//! `cargo bench --bench tokens`; measured in one run so the ratios hold on a noisy machine:
//! - `read`: `serde_json` parsing the HTTP inventory's answer and mapping it by JSON pointers
//!   (the baseline: the run must read it anyway);
//! - `due`: the notices due (`NoticePolicy::due`, 2,000 already sent);
//! - `raises+settle`: what they raise and which incidents may close (`raises`, `Settle::of`,
//!   `closing` over 500 open incidents).

use criterion::{Criterion, criterion_group, criterion_main};
use sparky::knowledge::tokens::{self, HttpMapping, Inventory, NoticePolicy, Settle};
use std::collections::HashSet;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let now: chrono::DateTime<chrono::Utc> = "2026-11-29T09:00:00Z".parse().unwrap();
    let items: Vec<serde_json::Value> = (0..10_000)
        .map(|i| {
            let expiry = now + chrono::Duration::hours((i % 2_000) as i64 - 100);
            serde_json::json!({ "id": format!("token-{i}"), "meta": { "owner": format!("group:team-{}", i % 50) },
                                "expires_at": expiry.to_rfc3339() })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "data": { "keys": items } })).unwrap();
    let mapping = HttpMapping {
        items: "/data/keys".into(),
        name: "/id".into(),
        owner: Some("/meta/owner".into()),
        expires_at: Some("/expires_at".into()),
    };
    let read = |body: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        tokens::from_http_inventory("vault", &v, &mapping).0
    };
    let list = read(&body);
    let day = 86_400_000;
    let policy = NoticePolicy {
        within: ("30d".into(), 30 * day),
        thresholds: [("30d", 30), ("14d", 14), ("7d", 7), ("1d", 1)]
            .iter()
            .map(|(t, d)| (t.to_string(), d * day))
            .collect(),
        tickets: true,
    };
    let sent: HashSet<tokens::NoticeKey> =
        policy.due(&list, now, &HashSet::new()).into_iter().take(2_000).map(|n| n.key).collect();
    let due = policy.due(&list, now, &sent);
    let inventory = Inventory { tokens: list.clone(), problems: Vec::new(), complete: true };
    let open: Vec<(String, String)> =
        (0..500).map(|i| (format!("SPK-{i:012}"), format!("token/token-{}", i * 7))).collect();
    let mut g = c.benchmark_group("tokens");
    g.bench_function("read", |b| b.iter(|| black_box(read(black_box(&body)))));
    g.bench_function("due", |b| b.iter(|| black_box(policy.due(black_box(&list), now, &sent))));
    g.bench_function("raises+settle", |b| {
        b.iter(|| {
            let raised = policy.raises(black_box(&due));
            let keys: Vec<(String, String)> = raised
                .iter()
                .map(|(n, _)| {
                    let (f, k) = tokens::token_incident(&n.key.token, n.expires_at.unwrap_or(now));
                    (k, f)
                })
                .collect();
            let settle = Settle::of(&policy, &inventory, now);
            black_box(tokens::closing(&open, &keys, &settle))
        })
    });
    g.finish();
}

criterion_group! { name = benches; config = Criterion::default().sample_size(20); targets = bench }
criterion_main!(benches);
