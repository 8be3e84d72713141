//! Feeds arbitrary bodies to every normalizer, as the daemon would after authentication.
//! The first byte picks the source (from `ingest::SOURCES`, so new sources are fuzzed without
//! editing this file) and a set of headers; the rest is the body. Any panic, hang or crash is
//! a bug; an error must have a message.
//!
//! Run: `cargo fuzz run normalize -- -max_total_time=300` (add `RUSTC_BOOTSTRAP=1` on a
//! stable toolchain). Seed it with the real payloads, each behind the byte that picks its
//! source (its index in `SOURCES`), e.g. for `alertmanager` (index 0):
//! `for f in ../tests/fixtures/ingest/alertmanager/*.json; do (printf '\000'; cat "$f") > corpus/normalize/am-$(basename "$f"); done`

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use sparky::ingest::{self, Headers};

/// Header sets the normalizers read: none (a file), content types, event names, delivery ids
/// and CloudEvents' binary-mode context.
const HEADER_SETS: &[&[(&str, &str)]] = &[
    &[],
    &[("content-type", "application/json")],
    &[("content-type", "application/x-www-form-urlencoded")],
    &[("x-github-event", "deployment"), ("x-github-delivery", "d-1")],
    &[("x-github-event", "deployment_status"), ("x-github-delivery", "d-2")],
    &[("x-github-event", "workflow_run"), ("content-type", "application/x-www-form-urlencoded")],
    &[("x-github-event", "push")],
    &[("x-github-event", "ping")],
    &[("x-github-event", "pull_request")],
    &[("x-webhook-id", "3c554852-e029-0681-ea58-6cab5f89577f")],
    &[("content-type", "application/cloudevents+json; charset=UTF-8")],
    &[("content-type", "application/cloudevents-batch+json")],
    &[
        ("ce-specversion", "1.0"),
        ("ce-type", "dev.cdevents.service.deployed.0.1.1"),
        ("ce-source", "/ci"),
        ("ce-id", "1"),
        ("ce-time", "2024-01-01T00:00:00Z"),
        ("content-type", "application/json"),
    ],
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let sources = ingest::SOURCES;
    let source = sources[usize::from(pick) % sources.len()];
    let set = HEADER_SETS[(usize::from(pick) / sources.len()) % HEADER_SETS.len()];
    let headers = Headers::from_pairs(set.iter().map(|(k, v)| (*k, v.to_string())));
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
    if let Err(e) = ingest::normalize(source, &headers, body, now) {
        assert!(!e.to_string().trim().is_empty(), "{source}: empty error message");
    }
});
