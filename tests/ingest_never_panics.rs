//! Bad deliveries never panic: every source in `ingest::SOURCES` gets 10,000 malformed bodies
//! derived from its real payloads (`tests/fixtures/ingest/<source>/`), and every `Auth`
//! scheme gets random headers. Each answer is `Ok` or an error whose message is for people:
//! not empty, and no Rust type names outside the backticks that quote user input.
//!
//! The inputs come from a seeded generator, so a failure repeats. When one panics, the
//! source, the mutation and the file holding the body are printed. `SPARKY_INGEST_CASES`
//! changes the number of bodies per source (for a longer local run).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;
use sparky::ingest::auth::{Auth, Secret};
use sparky::ingest::{self, Headers};
use std::path::{Path, PathBuf};

/// SplitMix64: a few lines, good enough spread, and no new crate.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Rng {
        // FNV-1a of the seed, so each source has its own stream.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// One real payload and the headers its sender set.
struct Fixture {
    name: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    json: Option<Value>,
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") && !p.to_string_lossy().ends_with(".headers.json") {
            out.push(p);
        }
    }
}

fn fixtures(source: &str) -> Vec<Fixture> {
    let mut files = Vec::new();
    json_files(&Path::new("tests/fixtures/ingest").join(source), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let body = std::fs::read(&f).unwrap();
            let headers: Map<String, Value> = std::fs::read(f.with_extension("headers.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            Fixture {
                name: f.display().to_string(),
                headers: headers.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect(),
                json: serde_json::from_slice(&body).ok(),
                body,
            }
        })
        .collect()
}

/// Bodies for a source that has no fixtures yet: still worth feeding.
fn fallback_fixtures() -> Vec<Fixture> {
    let bodies = [
        r#"{"status":"firing","alerts":[{"labels":{"alertname":"X"},"annotations":{},"startsAt":"2024-01-01T00:00:00Z"}]}"#,
        r#"{"specversion":"1.0","type":"dev.cdevents.service.deployed.0.1.1","source":"/x","id":"1","data":{}}"#,
        r#"[{"id":"1"},{"id":"2"}]"#,
    ];
    bodies
        .iter()
        .map(|b| Fixture {
            name: "(built-in seed)".into(),
            headers: Vec::new(),
            body: b.as_bytes().to_vec(),
            json: serde_json::from_str(b).ok(),
        })
        .collect()
}

/// Strings that have broken parsers before: times at and past chrono's range, numbers as
/// text, control characters, unpaired-surrogate escapes (as text), URLs that are not.
const STRINGS: &[&str] = &[
    "",
    " ",
    "null",
    "0",
    "-1",
    "1e400",
    "18446744073709551616",
    "9999-99-99T99:99:99Z",
    "2024-02-30T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "-262144-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "firing",
    "resolved",
    "triggered",
    "acknowledged",
    "critical",
    "P1",
    "high",
    "deployment",
    "workflow_run",
    "ping",
    "push",
    "incident.triggered",
    "\u{0}",
    "\u{feff}",
    "é\u{301}",
    "\u{202e}",
    "🔥",
    "http://",
    "https://",
    "javascript:alert(1)",
    "\\ud800",
    "`",
    "${x}",
    "{{ .Status }}",
    "a\nb",
    "\r\n",
];

fn numbers(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::from(u64::MAX),
        1 => Value::from(i64::MIN),
        2 => Value::from(-1),
        3 => Value::from(0),
        4 => serde_json::json!(1.5),
        5 => serde_json::json!(1e300),
        6 => serde_json::json!(-1e300),
        7 => Value::from(253_402_300_800_i64), // 10000-01-01 in Unix seconds
        _ => Value::from(rng.next() as i64),
    }
}

fn nested(depth: usize, object: bool) -> Value {
    let mut v = Value::Null;
    for _ in 0..depth {
        v = if object { serde_json::json!({ "a": v }) } else { Value::Array(vec![v]) };
    }
    v
}

/// Replaces one node with something of another type or an edge-case value.
fn mutate_node(v: &mut Value, rng: &mut Rng) {
    *v = match rng.below(16) {
        0 => Value::Null,
        1 => match v {
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or_else(|| numbers(rng), Value::Number),
            Value::Number(n) => Value::String(n.to_string()),
            Value::Bool(b) => Value::String(b.to_string()),
            Value::Object(m) => Value::Array(m.values().cloned().collect()),
            Value::Array(a) => Value::Object(a.iter().enumerate().map(|(i, x)| (i.to_string(), x.clone())).collect()),
            Value::Null => Value::String(String::new()),
        },
        2 => Value::Bool(rng.chance(50)),
        3 => numbers(rng),
        4 => Value::String(rng.pick(STRINGS).to_string()),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(Map::new()),
        7 => Value::Array(vec![v.take(), Value::Null]),
        8 => serde_json::json!({ "value": v.take() }),
        9 if rng.chance(10) => Value::String(rng.pick(&["x", "é", "\u{0}", "ab"]).repeat(64 * 1024)),
        10 if rng.chance(20) => nested(20 + rng.below(120), rng.chance(50)),
        11 => match v {
            Value::Object(m) if !m.is_empty() => {
                let key = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
                m.remove(&key);
                return;
            }
            Value::Array(a) if !a.is_empty() => {
                a.remove(rng.below(a.len()));
                return;
            }
            _ => Value::Null,
        },
        12 => match v {
            Value::Array(a) if !a.is_empty() => {
                // Many copies of an element: a large alert group.
                let item = a[rng.below(a.len())].clone();
                Value::Array(vec![item; 1 + rng.below(300)])
            }
            Value::String(s) => Value::String(format!("{s}{}", rng.pick(STRINGS))),
            _ => return,
        },
        _ => match v {
            Value::Number(_) => numbers(rng),
            Value::String(_) => Value::String(rng.pick(STRINGS).to_string()),
            _ => return,
        },
    };
}

/// Walks down a random path (most of the time a few levels deep) and mutates the node there.
fn mutate_value(v: &mut Value, rng: &mut Rng) {
    let descend = rng.chance(85);
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let i = rng.below(m.len());
            if let Some((_, child)) = m.iter_mut().nth(i) {
                mutate_value(child, rng);
            }
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = rng.below(a.len());
            mutate_value(&mut a[i], rng);
        }
        _ => mutate_node(v, rng),
    }
}

/// Byte-level damage: truncation, flips, invalid UTF-8, splices.
fn mutate_bytes(mut body: Vec<u8>, rng: &mut Rng) -> Vec<u8> {
    for _ in 0..1 + rng.below(3) {
        let len = body.len();
        match rng.below(7) {
            0 => body.truncate(rng.below(len + 1)),
            1 if len > 0 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(len);
                    body[at] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let at = rng.below(len + 1);
                const INVALID_UTF8: &[&[u8]] =
                    &[&[0xff], &[0xc3], &[0xed, 0xa0, 0x80], &[0xf4, 0x90, 0x80, 0x80], &[0xc0, 0xaf], &[0]];
                let bad = *rng.pick(INVALID_UTF8);
                body.splice(at..at, bad.iter().copied());
            }
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let junk = rng.bytes(n);
                body.splice(at..at, junk);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(200)).min(len);
                let piece = body[at..end].to_vec();
                body.splice(at..at, piece);
            }
            5 if len > 0 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                body.drain(at..end);
            }
            _ => {
                // A byte order mark.
                let mut with_bom = vec![0xef, 0xbb, 0xbf];
                with_bom.append(&mut body);
                body = with_bom;
            }
        }
    }
    body
}

fn form_encoded(json: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(json);
    let mut out = b"payload=".to_vec();
    out.extend(form_urlencoded::byte_serialize(text.as_bytes()).flat_map(str::bytes));
    out
}

/// A malformed body from a fixture, and how it was made (printed if it panics).
fn malformed_body(fx: &Fixture, rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let value_mutation = |rng: &mut Rng| -> Option<Vec<u8>> {
        let mut v = fx.json.clone()?;
        for _ in 0..1 + rng.below(3) {
            mutate_value(&mut v, rng);
        }
        serde_json::to_vec(&v).ok()
    };
    match rng.below(100) {
        0..=49 => match value_mutation(rng) {
            Some(b) => (b, "json value mutation"),
            None => (mutate_bytes(fx.body.clone(), rng), "byte mutation"),
        },
        50..=79 => (mutate_bytes(fx.body.clone(), rng), "byte mutation"),
        80..=89 => {
            let b = value_mutation(rng).unwrap_or_else(|| fx.body.clone());
            (mutate_bytes(b, rng), "json value and byte mutation")
        }
        90..=94 => {
            let b = value_mutation(rng).unwrap_or_else(|| fx.body.clone());
            (form_encoded(&b), "form-encoded mutation")
        }
        95 => (Vec::new(), "empty body"),
        96 => (b" \n\t ".to_vec(), "whitespace"),
        97 => (
            rng.pick(&[&b"null"[..], b"[]", b"{}", b"0", b"\"x\"", b"true", b"payload=", b"payload"]).to_vec(),
            "json scalar",
        ),
        _ => {
            let n = rng.below(512);
            (rng.bytes(n), "random bytes")
        }
    }
}

/// The fixture's headers, sometimes dropped, altered or joined by others the normalizers read.
fn headers_for(fx: &Fixture, rng: &mut Rng) -> Headers {
    let mut pairs = if rng.chance(85) { fx.headers.clone() } else { Vec::new() };
    if rng.chance(20) && !pairs.is_empty() {
        let i = rng.below(pairs.len());
        pairs[i].1 = rng.pick(STRINGS).to_string();
    }
    if rng.chance(10) {
        let names = [
            "content-type",
            "x-github-event",
            "x-github-delivery",
            "x-webhook-id",
            "ce-specversion",
            "ce-type",
            "ce-source",
            "ce-id",
            "ce-time",
        ];
        let values = [
            "application/x-www-form-urlencoded",
            "application/json",
            "application/cloudevents+json; charset=UTF-8",
            "application/cloudevents-batch+json",
            "text/plain",
        ];
        let value = if rng.chance(50) { rng.pick(&values).to_string() } else { rng.pick(STRINGS).to_string() };
        pairs.push((rng.pick(&names).to_string(), value));
    }
    Headers::from_pairs(pairs)
}

/// Rust names that must not reach a person, outside backticks.
const TYPE_NAMES: &[&str] = &[
    "::", "Vec<", "Option<", "Result<", "HashMap", "BTreeMap", "serde", "struct ", "enum ", "&str", "i64", "u64",
    "f64", "usize", "i32", "u32", "u8", "String", "Value", "Map<", "DateTime", "Utc", "Some(", "None", "Err(", "Ok(",
];

/// The message without its backtick-quoted parts (user input, config keys).
fn outside_backticks(msg: &str) -> String {
    msg.split('`').step_by(2).collect::<Vec<_>>().join("")
}

fn check_message(what: &str, msg: &str) {
    assert!(!msg.trim().is_empty(), "{what}: empty error message");
    let prose = outside_backticks(msg);
    for name in TYPE_NAMES {
        assert!(!prose.contains(name), "{what}: the message names `{name}`: {msg}");
    }
}

thread_local! {
    /// Set while a normalizer runs under `quietly`: its panic is recorded, not printed.
    static PANIC: std::cell::RefCell<Option<Option<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f`, returning the place and message of its panic instead of unwinding. The same
/// bug would otherwise print thousands of times; each distinct one is reported once below.
fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let captured = PANIC.with_borrow_mut(|slot| match slot {
                Some(record) => {
                    // The innermost frame in Sparky, not the std function that panicked.
                    let trace = std::backtrace::Backtrace::force_capture().to_string();
                    let lines: Vec<&str> = trace.lines().collect();
                    let ours = lines.iter().position(|l| l.contains("sparky::") && !l.contains("ingest_never_panics"));
                    let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
                    let place = match ours {
                        Some(i) => {
                            let frame = lines[i].trim();
                            let function = frame.split_once(": ").map_or(frame, |(_, f)| f);
                            format!("{function} {}", lines.get(i + 1).map_or("", |l| l.trim()))
                        }
                        None => location,
                    };
                    let msg = info
                        .payload()
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| info.payload().downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    *record = Some(format!("{place}: {msg}"));
                    true
                }
                None => false,
            });
            if !captured {
                default(info);
            }
        }));
    });
    PANIC.with_borrow_mut(|slot| *slot = Some(None));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let record = PANIC.with_borrow_mut(|slot| slot.take().flatten());
    result.map_err(|_| record.unwrap_or_else(|| "(no message)".into()))
}

/// One distinct panic, with the first input that caused it (written to a file).
struct Panic {
    place: String,
    count: usize,
    example: String,
}

fn cases() -> usize {
    std::env::var("SPARKY_INGEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, 0, 0).unwrap()
}

/// What one source made of its malformed bodies.
#[derive(Default)]
struct Outcome {
    oks: usize,
    errs: usize,
    longest_message: usize,
    panics: Vec<Panic>,
}

/// Feeds one source its malformed bodies.
fn run_source(source: &str) -> Outcome {
    let mut corpus = fixtures(source);
    if corpus.is_empty() {
        eprintln!("note: `{source}` has no fixtures in tests/fixtures/ingest/{source}/; using built-in seeds");
        corpus = fallback_fixtures();
    }
    let mut rng = Rng::new(source);
    let mut out = Outcome::default();
    for case in 0..cases() {
        let fx = &corpus[rng.below(corpus.len())];
        let (body, how) = malformed_body(fx, &mut rng);
        let headers = headers_for(fx, &mut rng);
        match quietly(|| ingest::normalize(source, &headers, &body, now())) {
            Ok(Ok(_)) => out.oks += 1,
            Ok(Err(e)) => {
                out.errs += 1;
                let msg = e.to_string();
                out.longest_message = out.longest_message.max(msg.len());
                check_message(&format!("{source} case {case} ({how}, from {})", fx.name), &msg);
            }
            Err(place) => match out.panics.iter_mut().find(|p| p.place == place) {
                Some(p) => p.count += 1,
                None => {
                    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ingest-panic-{source}-{case}.bin"));
                    let _ = std::fs::write(&file, &body);
                    let example =
                        format!("case {case}: {how} of {}, headers {headers:?}, body in {}", fx.name, file.display());
                    out.panics.push(Panic { place, count: 1, example });
                }
            },
        }
    }
    out
}

#[test]
fn malformed_bodies_never_panic() {
    assert!(!ingest::SOURCES.is_empty());
    let outcomes: Vec<(&str, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            ingest::SOURCES.iter().map(|source| (*source, s.spawn(move || run_source(source)))).collect();
        handles.into_iter().map(|(source, h)| (source, h.join().expect("the test itself panicked"))).collect()
    });
    let mut report = String::new();
    for (source, out) in &outcomes {
        eprintln!(
            "{source}: {} accepted, {} refused, {} panicked; longest message {} bytes",
            out.oks,
            out.errs,
            out.panics.iter().map(|p| p.count).sum::<usize>(),
            out.longest_message
        );
        for p in &out.panics {
            report.push_str(&format!("\n{source}: panic at {} ({} times); first {}", p.place, p.count, p.example));
        }
        // Mutations that break nothing are fine; all-accepted would mean the body is not read.
        assert!(out.errs > 0, "{source}: no malformed body was refused");
    }
    assert!(report.is_empty(), "normalizers panicked:{report}");
}

#[test]
fn an_unknown_source_is_an_error() {
    let e = ingest::normalize("nagios", &Headers::none(), b"{}", now()).unwrap_err();
    check_message("unknown source", &e.to_string());
}

// ---------------------------------------------------------------------------------------
// Auth::verify

const SECRETS: &[&str] = &["tok-3f9a1c", "pw-77d2e0", "gh-5b8e4f", "pd-old-91c2", "pd-new-0a7d", "gr-c41f86"];
const WHSEC: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_b64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    BASE64.encode(mac.finalize().into_bytes())
}

/// Every scheme, with headers a correct sender would set for `body` at `ts`.
fn schemes(body: &[u8], ts: i64, id: &str) -> Vec<(Auth, Vec<(String, String)>)> {
    let ts_text = ts.to_string();
    let wh_key = BASE64.decode(&WHSEC[6..]).unwrap();
    let gr_ts = format!("{ts_text}:");
    vec![
        (
            Auth::Bearer { token: Secret::new(SECRETS[0]) },
            vec![("authorization".into(), format!("Bearer {}", SECRETS[0]))],
        ),
        (
            Auth::Basic { username: "sparky".into(), password: Secret::new(SECRETS[1]) },
            vec![("authorization".into(), format!("Basic {}", BASE64.encode(format!("sparky:{}", SECRETS[1]))))],
        ),
        (
            Auth::Github { secret: Secret::new(SECRETS[2]) },
            vec![("x-hub-signature-256".into(), format!("sha256={}", hmac_hex(SECRETS[2].as_bytes(), &[body])))],
        ),
        (
            Auth::Pagerduty { secrets: vec![Secret::new(SECRETS[3]), Secret::new(SECRETS[4])] },
            vec![(
                "x-pagerduty-signature".into(),
                format!(
                    "v1={},v1={}",
                    hmac_hex(SECRETS[3].as_bytes(), &[body]),
                    hmac_hex(SECRETS[4].as_bytes(), &[body])
                ),
            )],
        ),
        (
            Auth::Grafana { secret: Secret::new(SECRETS[5]), header: None, timestamp_header: None },
            vec![("x-grafana-alerting-signature".into(), hmac_hex(SECRETS[5].as_bytes(), &[body]))],
        ),
        (
            Auth::Grafana {
                secret: Secret::new(SECRETS[5]),
                header: Some("X-Sig".into()),
                timestamp_header: Some("X-Grafana-Alerting-Timestamp".into()),
            },
            vec![
                ("x-sig".into(), hmac_hex(SECRETS[5].as_bytes(), &[gr_ts.as_bytes(), body])),
                ("x-grafana-alerting-timestamp".into(), ts_text.clone()),
            ],
        ),
        (
            Auth::StandardWebhooks { secret: Secret::from_whsec(WHSEC).unwrap() },
            vec![
                ("webhook-id".into(), id.to_string()),
                ("webhook-timestamp".into(), ts_text.clone()),
                (
                    "webhook-signature".into(),
                    format!("v1,{}", hmac_b64(&wh_key, &[id.as_bytes(), b".", ts_text.as_bytes(), b".", body])),
                ),
            ],
        ),
    ]
}

/// Damages one header value the way a broken or hostile sender would.
fn damage(value: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = value.chars().collect();
    match rng.below(14) {
        0 => String::new(),
        1 => chars[..rng.below(chars.len() + 1)].iter().collect(), // a prefix
        2 => value.to_uppercase(),
        3 => {
            let mut c = chars.clone();
            if !c.is_empty() {
                let i = rng.below(c.len());
                c[i] = *rng.pick(&['0', 'f', 'G', '=', ',', ' ', 'é', '\u{0}', '+', '/']);
            }
            c.into_iter().collect()
        }
        4 => format!("{value}{}", rng.pick(&["0", "=", ",", " ", ",v1=", " v1,", "é"])),
        5 => rng
            .pick(&["sha256=", "v1=", "v1,", "v1a,", "Bearer", "Bearer ", "Basic ", "Basic", "=", ",", " "])
            .to_string(),
        6 => {
            let n = 1 + rng.below(100);
            String::from_utf8_lossy(&rng.bytes(n)).into_owned()
        }
        7 => format!("{value},{value}"),
        8 => format!("{value} {value}"),
        9 => value.repeat(1 + rng.below(50)),
        10 => rng.pick(STRINGS).to_string(),
        11 => value.replace(',', "=").replace('=', ","),
        12 => chars.iter().rev().collect(),
        _ => format!("{}{value}", rng.pick(&["sha256=", "v1=", "v1,", "Bearer ", "Basic ", " ", "\t"])),
    }
}

#[test]
fn random_headers_never_panic_auth() {
    let mut rng = Rng::new("auth");
    let bodies: Vec<Vec<u8>> = ["alertmanager", "github", "pagerduty", "grafana"]
        .iter()
        .flat_map(|s| fixtures(s).into_iter().take(2).map(|f| f.body))
        .chain([Vec::new(), b"{}".to_vec(), vec![0xff, 0xfe, 0x00]])
        .collect();
    let names = [
        "authorization",
        "x-hub-signature-256",
        "x-hub-signature",
        "x-pagerduty-signature",
        "x-grafana-alerting-signature",
        "x-grafana-alert-signature",
        "x-grafana-alerting-timestamp",
        "x-sig",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ];
    let base = now().timestamp();
    let mut accepted = vec![0usize; schemes(b"", base, "x").len()];
    for case in 0..20_000 {
        let body = rng.pick(&bodies).clone();
        let ts = base
            + rng.pick(&[0i64, 1, -1, 299, -300, 301, -301, 86_400, -86_400, base * 999])
            + (rng.below(3) as i64 - 1);
        let id = rng.pick(&["msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "", "a.b", "é"]).to_string();
        let all = schemes(&body, ts, &id);
        let which = rng.below(all.len());
        let (auth, good) = &all[which];
        let mut pairs = good.clone();
        match rng.below(10) {
            0..=2 => {}
            3..=6 => {
                if !pairs.is_empty() {
                    let i = rng.below(pairs.len());
                    pairs[i].1 = damage(&pairs[i].1, &mut rng);
                }
            }
            7 => {
                if !pairs.is_empty() {
                    pairs.remove(rng.below(pairs.len()));
                }
            }
            8 => pairs = (0..rng.below(6)).map(|_| (rng.pick(&names).to_string(), damage("v1=00", &mut rng))).collect(),
            _ => {
                // Another scheme's headers (a sender set up for the wrong scheme).
                let (_, other) = &all[rng.below(all.len())];
                pairs = other.clone();
            }
        }
        // Bodies that differ from the signed one.
        let sent = if rng.chance(10) { mutate_bytes(body.clone(), &mut rng) } else { body.clone() };
        let headers = Headers::from_pairs(pairs.clone());
        match auth.verify(&headers, &sent, now()) {
            Ok(()) => accepted[which] += 1,
            Err(e) => {
                let what = format!("auth case {case} ({}), headers {pairs:?}", auth.scheme());
                assert!(e.status() == 401 || e.status() == 403, "{what}: status {}", e.status());
                let msg = e.to_string();
                check_message(&what, &msg);
                for secret in SECRETS.iter().copied().chain([&WHSEC[6..]]) {
                    assert!(!msg.contains(secret), "{what}: the message shows a secret: {msg}");
                }
                // No received signature in full: the longest run of signature characters
                // outside the quoted excerpt stays short.
                for (_, v) in &pairs {
                    if v.len() >= 16 && !v.trim().is_empty() {
                        let tail = v.trim();
                        let tail = tail.get(tail.len().saturating_sub(12)..).unwrap_or("");
                        assert!(
                            tail.trim().is_empty() || !msg.contains(tail),
                            "{what}: the message repeats `{v}`: {msg}"
                        );
                    }
                }
            }
        }
    }
    for (i, n) in accepted.iter().enumerate() {
        assert!(*n > 0, "scheme {i} never accepted a correct delivery: the test is not reaching it");
    }
}
