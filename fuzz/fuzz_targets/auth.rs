//! Feeds arbitrary headers and bodies to every `Auth` scheme. Any panic is a bug; a refusal
//! must be 401 or 403 and its message must never show a configured secret.
//!
//! Input layout (so the fuzzer reaches the headers each scheme reads): byte 0 picks the
//! scheme, byte 1 the number of headers (up to 7); each header is a byte picking its name
//! from `NAMES` and a length byte followed by that many bytes of value (lossy UTF-8, as the
//! daemon converts them); the rest is the body.
//!
//! Run: `cargo fuzz run auth -- -max_total_time=300` (add `RUSTC_BOOTSTRAP=1` on a stable
//! toolchain).

#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use sparky::ingest::Headers;
use sparky::ingest::auth::{Auth, Secret};

const NAMES: &[&str] = &[
    "Authorization",
    "X-Hub-Signature-256",
    "X-PagerDuty-Signature",
    "X-Grafana-Alerting-Signature",
    "X-Grafana-Alert-Signature",
    "X-Grafana-Alerting-Timestamp",
    "X-Sig",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "Content-Type",
];

const SECRETS: &[&str] = &["fuzz-token-91", "fuzz-password-27", "fuzz-github-33", "fuzz-pd-old-5", "fuzz-pd-new-8"];
const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn schemes() -> Vec<Auth> {
    vec![
        Auth::Bearer { token: Secret::new(SECRETS[0]) },
        Auth::Basic { username: "sparky".into(), password: Secret::new(SECRETS[1]) },
        Auth::Github { secret: Secret::new(SECRETS[2]) },
        Auth::Pagerduty { secrets: vec![Secret::new(SECRETS[3]), Secret::new(SECRETS[4])] },
        Auth::Grafana { secret: Secret::new(SECRETS[2]), header: None, timestamp_header: None },
        Auth::Grafana {
            secret: Secret::new(SECRETS[2]),
            header: Some("X-Sig".into()),
            timestamp_header: Some("X-Grafana-Alerting-Timestamp".into()),
        },
        Auth::StandardWebhooks { secret: Secret::from_whsec(WHSEC).expect("a valid whsec secret") },
    ]
}

fuzz_target!(|data: &[u8]| {
    let [scheme, count, rest @ ..] = data else { return };
    let schemes = schemes();
    let auth = &schemes[usize::from(*scheme) % schemes.len()];
    let mut rest = rest;
    let mut pairs = Vec::new();
    for _ in 0..usize::from(*count) % 8 {
        let [name, len, tail @ ..] = rest else { break };
        let len = usize::from(*len).min(tail.len());
        let value = String::from_utf8_lossy(&tail[..len]).into_owned();
        pairs.push((NAMES[usize::from(*name) % NAMES.len()], value));
        rest = &tail[len..];
    }
    let headers = Headers::from_pairs(pairs);
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap();
    if let Err(e) = auth.verify(&headers, rest, now) {
        assert!(e.status() == 401 || e.status() == 403);
        let msg = e.to_string();
        assert!(!msg.trim().is_empty());
        for secret in SECRETS.iter().copied().chain([&WHSEC[6..]]) {
            assert!(!msg.contains(secret), "the message shows a secret: {msg}");
        }
    }
});
