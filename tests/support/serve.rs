//! The real daemon for a test: started in this process on an ephemeral port, with a
//! temporary store, the playbooks and catalog the test gives, and its decision clock held by
//! the test, so that a sequence of events (re-fires, flaps, echoes) is decided at the times
//! the test says, as production would send them.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde_json::Value;
use sparky::daemon::{self, Clock, Options, config::Config};
use std::path::Path;
use std::time::Duration;

pub struct Daemon {
    running: Option<daemon::Running>,
    pub base: String,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
}

/// Copies the shipped playbooks (`*.sparky`) into `to`.
pub fn copy_shipped_playbooks(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir("playbooks").unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "sparky") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

impl Daemon {
    /// Starts the daemon on `dir` (its `playbooks/` and, when present, `catalog/`) with the
    /// configuration `yaml`, its clock held at `at`.
    pub async fn start(dir: tempfile::TempDir, yaml: &str, at: DateTime<Utc>) -> Daemon {
        let env = |name: &str| std::env::var(name).ok();
        let mut config = Config::parse(yaml, "sparky.yaml", &env).unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.playbooks = vec![dir.path().join("playbooks")];
        config.catalog = Some(vec![dir.path().join("catalog")].into_iter().filter(|c| c.is_dir()).collect());
        config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
        let clock = Clock::held(at);
        let options = Options { config, clock: clock.clone(), ..Options::default() };
        let running = daemon::start(options).await.unwrap();
        let base = format!("http://{}", running.addr);
        Daemon { running: Some(running), base, clock, dir }
    }

    pub async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Moves the decision clock to `at`.
    pub fn at(&self, at: DateTime<Utc>) {
        self.clock.set(at);
    }

    pub async fn post(&self, source: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp =
            reqwest::Client::new().post(self.url(&format!("/webhooks/{source}"))).body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> Value {
        let text = reqwest::get(self.url(path)).await.unwrap().text().await.unwrap();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// Waits until the inbox is empty.
    pub async fn settle(&self) {
        for _ in 0..800 {
            if self.get("/api/v1/status").await["events"].get("pending").is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the inbox did not drain");
    }

    /// Posts `body` to `source` at `at`, waits for it to be decided, and returns the decision
    /// of its (last) event, as `sparky explain --format json` shows it.
    pub async fn decide(&self, source: &str, body: impl Into<reqwest::Body>, at: DateTime<Utc>) -> Value {
        self.at(at);
        let (code, answer) = self.post(source, body).await;
        assert_eq!(code, 202, "{answer}");
        assert_eq!(answer["status"], "accepted", "{answer}");
        self.settle().await;
        let seq = answer["seqs"].as_array().and_then(|s| s.last()).and_then(Value::as_i64).expect("an event seq");
        let ev = self.get(&format!("/api/v1/events/{seq}")).await;
        ev["decision"].clone()
    }

    /// The value of the metric line starting with `name{labels}` (0 when absent).
    pub async fn metric(&self, line_start: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics")).await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }
}

/// The time `minutes` after `2026-03-10T08:00:00Z`.
pub fn minute(minutes: f64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-10T08:00:00Z").unwrap().with_timezone(&Utc)
        + chrono::Duration::milliseconds((minutes * 60_000.0) as i64)
}
