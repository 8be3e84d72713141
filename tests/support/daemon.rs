//! The real daemon for tests: started in this process on an ephemeral port, with a temporary
//! SQLite store and a copy of the shipped playbooks, talked to over HTTP. Its decision clock
//! can be held by the test (`start_at`), so that a sequence of events (re-fires, flaps,
//! echoes) is decided at the times the test says, as production would send them.
//!
//! ```ignore
//! #[path = "support/daemon.rs"]
//! mod support;
//! let d = support::Daemon::start("").await;
//! ```

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use sparky::daemon::{self, Clock, Options, config::Config};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PAYLOADS: &str = "tests/fixtures/ingest";

pub struct Daemon {
    running: Option<daemon::Running>,
    pub base: String,
    pub dir: tempfile::TempDir,
    /// The decision clock: the system's, or held by the test (`start_at`).
    pub clock: Clock,
}

impl Daemon {
    pub async fn start(yaml: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        copy_playbooks(&dir.path().join("playbooks"));
        Daemon::start_in(dir, yaml).await
    }

    pub async fn start_in(dir: tempfile::TempDir, yaml: &str) -> Daemon {
        Daemon::start_with(dir, yaml, Clock::system()).await
    }

    /// Starts the daemon on `dir` (its `playbooks/` and, when present, `catalog/`) with its
    /// decision clock held at `at`; [`Daemon::at`] moves it.
    pub async fn start_at(dir: tempfile::TempDir, yaml: &str, at: DateTime<Utc>) -> Daemon {
        Daemon::start_with(dir, yaml, Clock::held(at)).await
    }

    async fn start_with(dir: tempfile::TempDir, yaml: &str, clock: Clock) -> Daemon {
        let env = |name: &str| std::env::var(name).ok();
        let mut config = Config::parse(yaml, "sparky.yaml", &env).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.playbooks = vec![dir.path().join("playbooks")];
        // The test's own catalog folder (none unless the test writes one), never ./catalog.
        config.catalog = Some(vec![dir.path().join("catalog")].into_iter().filter(|c| c.is_dir()).collect());
        config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
        config.reload_debounce_ms = 100;
        let options = Options { config, clock: clock.clone(), ..Options::default() };
        let running = daemon::start(options).await.unwrap();
        let base = format!("http://{}", running.addr);
        Daemon { running: Some(running), base, dir, clock }
    }

    /// Moves the held decision clock to `at`.
    pub fn at(&self, at: DateTime<Utc>) {
        self.clock.set(at);
    }

    /// Posts `body` to `source` at `at`, waits for it to be decided, and returns the decision
    /// of its (last) event, as `sparky explain --format json` shows it.
    pub async fn decide(&self, source: &str, body: impl Into<reqwest::Body>, at: DateTime<Utc>) -> Value {
        self.at(at);
        let (code, answer) = self.post(source, body, &[]).await;
        assert_eq!(code, 202, "{answer}");
        assert_eq!(answer["status"], "accepted", "{answer}");
        self.settle().await;
        let seq = answer["seqs"].as_array().and_then(|s| s.last()).and_then(Value::as_i64).expect("an event seq");
        self.get(&format!("/api/v1/events/{seq}")).await.1["decision"].clone()
    }

    /// The value of the metric whose line starts with `name{labels}` (0 when absent).
    pub async fn metric(&self, line_start: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        self.running.take().unwrap().stop().await.unwrap();
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, source: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(self.url(&format!("/webhooks/{source}"))).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::get(self.url(path)).await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Waits until the inbox is empty.
    pub async fn settle(&self) -> Value {
        for _ in 0..400 {
            let (_, status) = self.get("/api/v1/status").await;
            if status["events"].get("pending").is_none() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the inbox did not drain");
    }

    pub async fn decisions(&self) -> Vec<Value> {
        let (_, v) = self.get("/api/v1/decisions?limit=1000").await;
        v["decisions"].as_array().unwrap().clone()
    }
}

pub fn copy_playbooks(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir("playbooks").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sparky") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The time `minutes` after `2026-03-10T08:00:00Z`.
pub fn minute(minutes: f64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T08:00:00Z").unwrap().with_timezone(&Utc)
        + chrono::Duration::milliseconds((minutes * 60_000.0) as i64)
}

pub fn payload(source: &str, name: &str) -> Vec<u8> {
    std::fs::read(Path::new(PAYLOADS).join(source).join(name)).unwrap()
}

pub fn payload_files(source: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(PAYLOADS).join(source))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.to_string_lossy().ends_with(".headers.json"))
        .collect();
    v.sort();
    v
}

/// The headers a fixture's sender sets (`<stem>.headers.json`), if any.
pub fn fixture_headers(path: &Path) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(path.with_extension("headers.json")) else { return Vec::new() };
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    map.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect()
}

pub fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
