//! The daemon end to end: each test starts the real daemon (in this process, on an ephemeral
//! port, with a temporary store and a copy of the shipped playbooks) and talks HTTP to it.
//! The crash test runs the `sparky` binary itself and kills it.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/daemon.rs"]
mod support;

use serde_json::Value;
use sparky::daemon::{self, Options, config::Config};
use std::path::Path;
use std::time::Duration;
use support::{Daemon, PAYLOADS, copy_playbooks, fixture_headers, hmac_hex, payload, payload_files};

#[tokio::test]
async fn every_alertmanager_payload_is_accepted_stored_and_decided() {
    let d = Daemon::start("").await;
    let mut accepted = 0;
    for f in payload_files("alertmanager") {
        let (status, body) = d.post("alertmanager", std::fs::read(&f).unwrap(), &[]).await;
        assert_eq!(status, 202, "{}: {body}", f.display());
        accepted += body["accepted"].as_u64().unwrap();
    }
    let status = d.settle().await;
    let decided =
        status["events"]["decided"].as_u64().unwrap_or(0) + status["events"]["attached"].as_u64().unwrap_or(0);
    assert_eq!(decided, accepted, "{status}");
    let decisions = d.decisions().await;
    assert!(!decisions.is_empty());
    for dec in &decisions {
        assert_eq!(dec["ruleset"], status["ruleset"]);
        assert!(dec["explained"]["trace"].is_array(), "{dec}");
    }
    // An event and its decision, by id.
    let id = decisions[0]["event_id"].as_str().unwrap();
    let (code, ev) = d.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(ev["event"]["id"], id);
    assert!(ev["decision"]["decision"]["level"].is_string(), "{ev}");
    d.stop().await;
}

#[tokio::test]
async fn a_redelivery_is_acknowledged_and_adds_nothing() {
    let d = Daemon::start("").await;
    let body = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json");
    let (s1, b1) = d.post("alertmanager", body.clone(), &[]).await;
    let (s2, b2) = d.post("alertmanager", body, &[]).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1["status"], "accepted");
    assert_eq!(b2["status"], "duplicate", "{b2}");
    let status = d.settle().await;
    assert_eq!(status["events"]["decided"], 1, "{status}");
    d.stop().await;
}

#[tokio::test]
async fn a_storm_of_identical_alerts_makes_one_decision() {
    let d = Daemon::start("").await;
    let body = String::from_utf8(payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json")).unwrap();
    // 1,000 notifications of the same alert: each a distinct delivery (Alertmanager's repeat
    // notifications differ in their group key's receiver here), the same fingerprint.
    let mut handles = Vec::new();
    for i in 0..1000 {
        let b = body.replacen("\"receiver\": \"", &format!("\"receiver\": \"r{i}-"), 1);
        let client = reqwest::Client::new();
        let url = d.url("/webhooks/alertmanager");
        handles.push(tokio::spawn(async move { client.post(url).body(b).send().await.unwrap().status().as_u16() }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), 202);
    }
    let status = d.settle().await;
    let decisions = d.decisions().await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(status["events"]["attached"], 999, "{status}");
    d.stop().await;
}

#[tokio::test]
async fn bad_requests_get_answers_senders_understand() {
    let d = Daemon::start("max_body: 4KiB\n").await;
    let (code, body) = d.post("alertmanager", "{not json", &[]).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"), "{body}");
    let (code, body) = d.post("alertmanager", r#"{"version":"4"}"#, &[]).await;
    assert_eq!(code, 400);
    assert!(body["error"].as_str().unwrap().contains("alerts"), "{body}");
    let (code, body) = d.post("nagios", "{}", &[]).await;
    assert_eq!(code, 404);
    assert!(body["error"].as_str().unwrap().contains("no source `nagios`"), "{body}");
    let big = vec![b' '; 5000];
    let (code, body) = d.post("alertmanager", big, &[]).await;
    assert_eq!(code, 413, "{body}");
    // Chunked, without a length: refused once the limit is passed.
    let addr = d.base.trim_start_matches("http://").to_string();
    let chunk = vec![b' '; 3000];
    assert_eq!(post_chunked(&addr, "/webhooks/alertmanager", &[&chunk, &chunk]).await, 413);
    let (code, _) = d.get("/healthz").await;
    assert_eq!(code, 200);
    let (code, _) = d.get("/readyz").await;
    assert_eq!(code, 200);
    d.stop().await;
}

/// Posts a chunked body (no Content-Length) over a raw connection; returns the status code.
async fn post_chunked(addr: &str, path: &str, chunks: &[&[u8]]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    for c in chunks {
        // The server may answer and close before the last chunk: that is the point.
        if conn.write_all(format!("{:x}\r\n", c.len()).as_bytes()).await.is_err()
            || conn.write_all(c).await.is_err()
            || conn.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn ten_thousand_malformed_bodies_get_only_4xx() {
    let d = Daemon::start("").await;
    let seed = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json");
    let client = reqwest::Client::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut codes = std::collections::BTreeMap::new();
    for _ in 0..10_000 {
        let mut body = seed.clone();
        match next() % 4 {
            0 => body.truncate((next() as usize) % body.len()),
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % body.len();
                    body[i] = next() as u8;
                }
            }
            2 => {
                let i = (next() as usize) % body.len();
                body.splice(i..i, b"[{\"".iter().copied());
            }
            _ => body = (0..(next() % 64)).map(|_| next() as u8).collect(),
        }
        let resp = client.post(d.url("/webhooks/alertmanager")).body(body).send().await.unwrap();
        *codes.entry(resp.status().as_u16()).or_insert(0) += 1;
    }
    // A mutation can leave valid JSON with a valid shape: accepted. Nothing else but 400.
    assert!(codes.keys().all(|c| *c == 400 || *c == 202), "{codes:?}");
    assert!(codes[&400] > 9_000, "{codes:?}");
    let (code, _) = d.get("/healthz").await;
    assert_eq!(code, 200);
    d.stop().await;
}

#[tokio::test]
async fn bearer_authentication_is_enforced() {
    let d = Daemon::start("sources:\n  alertmanager:\n    auth: {type: bearer, token: s3cret-token}\n").await;
    let body = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json");
    let (code, b) = d.post("alertmanager", body.clone(), &[]).await;
    assert_eq!(code, 401, "{b}");
    let (code, b) = d.post("alertmanager", body.clone(), &[("authorization", "Bearer wrong")]).await;
    assert_eq!(code, 403, "{b}");
    let (code, b) = d.post("alertmanager", body, &[("authorization", "Bearer s3cret-token")]).await;
    assert_eq!(code, 202, "{b}");
    // Sources not configured are not served.
    let (code, _) = d.post("grafana", "{}", &[]).await;
    assert_eq!(code, 404);
    d.stop().await;
}

#[tokio::test]
async fn unauthenticated_sources_are_refused_off_loopback() {
    let config = Config { listen: "0.0.0.0:0".parse().unwrap(), ..Default::default() };
    let err = match daemon::start(Options { config, insecure: false, ..Options::default() }).await {
        Ok(_) => panic!("started with open sources on 0.0.0.0"),
        Err(e) => e,
    };
    assert!(err.contains("without authentication") && err.contains("--insecure"), "{err}");
}

const PROBE_PLAYBOOK: &str = r#"/// Reload probe
///
/// Exists only in the hot-reload test.
playbook PB-900 "Reload probe" {
  status active
  owner  "team:sre"

  on alert from alertmanager {
    labels.alertname == "ReloadProbe"
  }

  l3 priority P1
}
"#;

/// The crash-looping alert renamed `ReloadProbe`, with its own fingerprint.
fn probe(n: u32) -> String {
    let body = String::from_utf8(payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json")).unwrap();
    body.replace("KubePodCrashLooping", "ReloadProbe")
        .replace("\"fingerprint\": \"", &format!("\"fingerprint\": \"{n:04}"))
}

async fn level_of(d: &Daemon, body: String) -> (String, String) {
    let (code, v) = d.post("alertmanager", body, &[]).await;
    assert_eq!(code, 202, "{v}");
    let seq = v["seqs"][0].as_i64().unwrap();
    let mut ev = Value::Null;
    for _ in 0..400 {
        ev = d.get(&format!("/api/v1/events/{seq}")).await.1;
        if ev["state"] != "pending" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let dec = &ev["decision"]["decision"];
    (dec["level"].as_str().unwrap().to_string(), dec["playbook"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn reload_while_posting_swaps_rules_and_a_broken_edit_keeps_the_old_ones() {
    let d = Daemon::start("admin_token: adm1n\n").await;
    // Deliveries keep arriving during every reload below; none may be refused.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let (stop, url) = (stop.clone(), d.url("/webhooks/alertmanager"));
        let body =
            String::from_utf8(payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json")).unwrap();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut sent, mut refused) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let b = body.replacen("\"receiver\": \"", &format!("\"receiver\": \"r{sent}-"), 1);
                if client.post(&url).body(b).send().await.unwrap().status().as_u16() != 202 {
                    refused += 1;
                }
                sent += 1;
            }
            (sent, refused)
        })
    };

    let (_, before) = d.get("/api/v1/status").await;
    let hash_before = before["ruleset"].as_str().unwrap().to_string();
    assert_eq!(level_of(&d, probe(1)).await, ("observe".to_string(), String::new()));

    // A new playbook, picked up by the watcher, decides later events.
    let playbooks = d.dir.path().join("playbooks");
    std::fs::write(playbooks.join("PB-900-probe.sparky"), PROBE_PLAYBOOK).unwrap();
    let mut swapped = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (_, s) = d.get("/api/v1/status").await;
        if s["ruleset"] != hash_before.as_str() {
            swapped = Some(s);
            break;
        }
    }
    let swapped = swapped.expect("the watcher did not reload");
    assert_eq!(swapped["last_reload"]["trigger"], "files changed");
    assert_eq!(swapped["playbooks"].as_array().unwrap().len(), 5);
    assert_eq!(level_of(&d, probe(2)).await, ("L3".to_string(), "PB-900".to_string()));

    // A broken edit: the previous rules stay, the status says why, the metric says 0.
    std::fs::write(playbooks.join("PB-900-probe.sparky"), PROBE_PLAYBOOK.replace("l3 priority P1", "l3 priority"))
        .unwrap();
    let resp = reqwest::Client::new().post(d.url("/-/reload")).bearer_auth("adm1n").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let (_, after) = d.get("/api/v1/status").await;
    assert_eq!(after["ruleset"], swapped["ruleset"]);
    assert_eq!(after["last_reload"]["successful"], false);
    assert!(!after["last_reload"]["diagnostics"].as_array().unwrap().is_empty(), "{after}");
    let (_, metrics) = d.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("sparky_config_last_reload_successful 0"), "{metrics}");
    assert_eq!(level_of(&d, probe(3)).await, ("L3".to_string(), "PB-900".to_string()));

    // Fixed again: back to 1.
    std::fs::write(playbooks.join("PB-900-probe.sparky"), PROBE_PLAYBOOK).unwrap();
    let resp = reqwest::Client::new().post(d.url("/-/reload")).bearer_auth("adm1n").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, metrics) = d.get("/metrics").await;
    assert!(metrics.as_str().unwrap().contains("sparky_config_last_reload_successful 1"), "{metrics}");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (sent, refused) = poster.await.unwrap();
    assert!(sent > 0);
    assert_eq!(refused, 0, "{refused} of {sent} deliveries refused during reloads");

    // Admin endpoints need the token.
    let resp = reqwest::Client::new().post(d.url("/-/reload")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = reqwest::Client::new().post(d.url("/-/reload")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    d.stop().await;
}

#[tokio::test]
async fn events_survive_a_restart() {
    let d = Daemon::start("").await;
    let body = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_firing.json");
    assert_eq!(d.post("alertmanager", body, &[]).await.0, 202);
    d.settle().await;
    let dir = d.stop().await;
    let d = Daemon::start_in(dir, "").await;
    assert_eq!(d.decisions().await.len(), 1);
    // The resolution closes the incident opened before the restart.
    let body = payload("alertmanager", "kube-prometheus_KubePodCrashLooping_resolved.json");
    assert_eq!(d.post("alertmanager", body, &[]).await.0, 202);
    d.settle().await;
    let decisions = d.decisions().await;
    assert_eq!(decisions.len(), 2);
    d.stop().await;
}

fn spawn_binary(dir: &Path) -> binary::Child {
    let playbooks = dir.join("playbooks").display().to_string();
    let store = format!("sqlite://{}", dir.join("sparky.db").display());
    binary::spawn(dir, &["--playbooks", &playbooks, "--store", &store])
}

#[tokio::test]
async fn a_crash_during_ingest_loses_no_acknowledged_event_and_decides_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    copy_playbooks(&dir.path().join("playbooks"));
    let body =
        String::from_utf8(std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap()).unwrap();
    let mut child = spawn_binary(dir.path());
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    // 400 distinct alerts (distinct fingerprints), posted by 8 senders; the daemon is killed
    // (SIGKILL) in the middle.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut senders = Vec::new();
    for s in 0..8 {
        let (client, base, body, acked) = (client.clone(), child.base.clone(), body.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            for i in 0..50 {
                let n = s * 50 + i;
                let b = body.replace("a41c7e0b9d2f5836", &format!("{n:016x}")).replace("x2x9q", &format!("p{n:04}"));
                match client.post(format!("{base}/webhooks/alertmanager")).body(b).send().await {
                    Ok(r) if r.status().as_u16() == 202 => {
                        let v: Value = r.json().await.unwrap();
                        let seqs: Vec<i64> =
                            v["seqs"].as_array().unwrap().iter().map(|s| s.as_i64().unwrap()).collect();
                        acked.lock().unwrap().extend(seqs);
                    }
                    // Refused connections and cut-off answers after the kill: not acknowledged.
                    _ => {}
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 120 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.child.kill().unwrap();
    child.child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acknowledged.lock().unwrap().clone();
    assert!(acked.len() >= 120 && acked.len() < 400, "{} acknowledged", acked.len());

    // Restarted on the same store, it finishes the inbox.
    let mut child = spawn_binary(dir.path());
    let mut settled = false;
    for _ in 0..400 {
        let v: Value = client.get(format!("{}/api/v1/status", child.base)).send().await.unwrap().json().await.unwrap();
        if v["events"].get("pending").is_none() {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(settled, "the inbox did not drain after the restart");
    for seq in &acked {
        let v: Value =
            client.get(format!("{}/api/v1/events/{seq}", child.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(v["state"], "decided", "acknowledged event {seq} was not decided: {v}");
    }
    let v: Value =
        client.get(format!("{}/api/v1/decisions?limit=1000", child.base)).send().await.unwrap().json().await.unwrap();
    let mut per_event = std::collections::BTreeMap::new();
    for d in v["decisions"].as_array().unwrap() {
        *per_event.entry(d["event_seq"].as_i64().unwrap()).or_insert(0) += 1;
    }
    assert!(per_event.values().all(|n| *n == 1), "an event was decided twice: {per_event:?}");
    for seq in &acked {
        assert_eq!(per_event.get(seq), Some(&1), "event {seq} has no decision");
    }
    child.child.kill().unwrap();
    let _ = child.child.wait();
}

#[tokio::test]
async fn every_shared_payload_of_every_source_is_accepted_with_valid_auth_and_refused_without() {
    let yaml = "sources:
  alertmanager: {auth: {type: bearer, token: am-token}}
  grafana: {auth: {type: grafana, secret: gf-secret}}
  pagerduty: {auth: {type: pagerduty, secrets: [pd-old, pd-new]}}
  github: {auth: {type: github, secret: gh-secret}}
  datadog: {auth: {type: basic, username: dd, password: dd-pass}}
  cloudevents: {auth: {type: bearer, token: ce-token}}
";
    let d = Daemon::start(yaml).await;
    let mut posted = 0;
    for source in ["alertmanager", "grafana", "pagerduty", "github", "datadog", "cloudevents"] {
        for f in payload_files(source) {
            let body = std::fs::read(&f).unwrap();
            let headers = fixture_headers(&f);
            let mut with: Vec<(String, String)> = headers.clone();
            match source {
                "alertmanager" => with.push(("authorization".into(), "Bearer am-token".into())),
                "cloudevents" => with.push(("authorization".into(), "Bearer ce-token".into())),
                "datadog" => with.push(("authorization".into(), "Basic ZGQ6ZGQtcGFzcw==".into())),
                "grafana" => with.push(("x-grafana-alerting-signature".into(), hmac_hex("gf-secret", &body))),
                "github" => {
                    with.push(("x-hub-signature-256".into(), format!("sha256={}", hmac_hex("gh-secret", &body))))
                }
                "pagerduty" => with.push((
                    "x-pagerduty-signature".into(),
                    format!("v1={},v1={}", hmac_hex("pd-old", &body), hmac_hex("pd-new", &body)),
                )),
                _ => unreachable!(),
            }
            let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (code, answer) = d.post(source, body.clone(), &refs).await;
            assert_eq!(code, 401, "{} without credentials: {answer}", f.display());
            let refs: Vec<(&str, &str)> = with.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (code, answer) = d.post(source, body.clone(), &refs).await;
            assert_eq!(code, 202, "{}: {answer}", f.display());
            // A signature over another body is wrong, not missing.
            if matches!(source, "github" | "grafana" | "pagerduty") {
                let mut other = body.clone();
                other.push(b'\n');
                let (code, answer) = d.post(source, other, &refs).await;
                assert_eq!(code, 403, "{} tampered: {answer}", f.display());
            }
            posted += 1;
        }
    }
    assert!(posted >= 35, "{posted}");
    let status = d.settle().await;
    assert!(status["events"]["decided"].as_u64().unwrap() > 0, "{status}");
    d.stop().await;
}

/// The shipped catalog, copied for a test that edits it.
fn copy_catalog(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir("catalog").unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// Waits for the decision of the event at inbox position `seq`.
async fn decision_of(d: &Daemon, seq: i64) -> Value {
    for _ in 0..400 {
        let ev = d.get(&format!("/api/v1/events/{seq}")).await.1;
        if ev["state"] != "pending" {
            return ev["decision"]["decision"].clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("event {seq} was not decided");
}

#[tokio::test]
async fn a_deploy_then_a_crash_loop_is_decided_with_the_catalog_and_the_stored_deploy() {
    let dir = tempfile::tempdir().unwrap();
    copy_playbooks(&dir.path().join("playbooks"));
    copy_catalog(&dir.path().join("catalog"));
    let d = Daemon::start_in(dir, "admin_token: adm1n\n").await;
    let (_, status) = d.get("/api/v1/status").await;
    assert!(status["last_reload"]["services"].as_u64().unwrap() >= 10, "{status}");
    assert_eq!(status["catalog"]["services"], status["last_reload"]["services"]);
    assert_eq!(status["analyzer"], "builtin");

    // The real CDEvents `service.deployed`, for checkout-api, four minutes ago.
    let now = chrono::Utc::now();
    let deployed = (now - chrono::Duration::minutes(4)).to_rfc3339();
    let body = String::from_utf8(payload("cloudevents", "cdevents_service_deployed.json"))
        .unwrap()
        .replace("mySubject123", "checkout-api")
        .replace("2023-03-20T14:27:05.315384Z", &deployed);
    let mut headers: Vec<(String, String)> =
        fixture_headers(&Path::new(PAYLOADS).join("cloudevents/cdevents_service_deployed.json"));
    for (k, v) in headers.iter_mut() {
        *v = v.replace("mySubject123", "checkout-api").replace("2023-03-20T14:27:05.315384Z", &deployed);
        if k == "ce-id" {
            *v = format!("{v}-{}", now.timestamp());
        }
    }
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (code, v) = d.post("cloudevents", body, &h).await;
    assert_eq!(code, 202, "{v}");
    let deploy = decision_of(&d, v["seqs"][0].as_i64().unwrap()).await;
    assert_eq!(deploy["service"]["name"], "checkout-api", "{deploy}");

    // Then checkout-api's pod crash-loops: PB-001 refuses to restart right after a deploy,
    // and the analysis blames the deploy.
    let alert = String::from_utf8(std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap())
        .unwrap()
        .replace("2026-03-10T08:14:03.352Z", &now.to_rfc3339());
    let (code, v) = d.post("alertmanager", alert, &[]).await;
    assert_eq!(code, 202, "{v}");
    let dec = decision_of(&d, v["seqs"][0].as_i64().unwrap()).await;
    assert_eq!(dec["service"], serde_json::json!({"name": "checkout-api", "from": "label pod", "known": true}));
    assert_eq!(dec["level"], "L2", "{dec}");
    assert_eq!(dec["fix"]["generator"], "revert", "{dec}");
    assert_eq!(dec["analyzer"]["analyzer"], "builtin");
    assert_eq!(dec["first_pass"]["level"], "L3");

    // A broken catalog edit is refused as a whole: the previous catalog stays in force.
    let catalog = d.dir.path().join("catalog");
    std::fs::write(catalog.join("broken.yaml"), "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {}\n")
        .unwrap();
    let resp = reqwest::Client::new().post(d.url("/-/reload")).bearer_auth("adm1n").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let (_, after) = d.get("/api/v1/status").await;
    assert_eq!(after["last_reload"]["successful"], false);
    assert_eq!(after["last_reload"]["services"], status["last_reload"]["services"]);
    let diags = after["last_reload"]["diagnostics"].to_string();
    assert!(diags.contains("broken.yaml"), "{diags}");
    d.stop().await;
}

/// PB-001 promises that every crash-loop alert in prod or staging is its own. One that names no
/// pod (a relabelling dropped the label) cannot be restarted: PB-001 escalates it itself and
/// says why, instead of leaving a warning nobody claims to be recorded only.
#[tokio::test]
async fn a_crash_loop_without_a_pod_label_is_escalated_by_pb001_saying_why() {
    let d = Daemon::start("").await;
    let mut alert: Value =
        serde_json::from_slice(&std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap())
            .unwrap();
    for labels in ["/alerts/0/labels", "/commonLabels"] {
        let labels = alert.pointer_mut(labels).unwrap().as_object_mut().unwrap();
        assert!(labels.remove("pod").is_some(), "the shipped alert names its pod");
    }
    // Alertmanager's fingerprint hashes the labels: without `pod` it is another alert.
    alert["alerts"][0]["fingerprint"] = "e5c0a93f17b24d68".into();
    let (code, v) = d.post("alertmanager", alert.to_string(), &[]).await;
    assert_eq!(code, 202, "{v}");
    d.settle().await;

    let decisions = d.decisions().await;
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    let listed = &decisions[0];
    assert_eq!(listed["level"], "L3", "{listed}");
    assert_eq!(listed["playbook"], "PB-001", "{listed}");
    assert!(listed["incident"].as_str().is_some_and(|k| k.starts_with("SPK-")), "{listed}");
    let dec = &listed["explained"]["decision"];
    assert_eq!(dec["incident"]["effect"], "open", "{dec}");
    assert_eq!(dec["incident"]["key"], listed["incident"], "{dec}");
    assert_eq!(dec["escalation"]["priority"], "P2", "{dec}");
    assert_eq!(dec["escalation"]["page"], true, "{dec}");
    assert_eq!(dec["actions"], serde_json::json!([]), "{dec}");
    assert!(dec.get("mode").is_none(), "{dec}");
    let reasons: Vec<&str> = dec["reasons"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let why = "its L1 cannot be planned: k8s.delete_pod: `labels.pod` is missing from the event";
    assert!(reasons.iter().any(|r| r.starts_with(why)), "{reasons:#?}");
    assert!(reasons.contains(&"PB-001 escalates: its L1 did not apply"), "{reasons:#?}");
    let trace = listed["explained"]["trace"].as_array().unwrap();
    let pb001 = trace.iter().find(|e| e["playbook"] == "PB-001").unwrap();
    assert_eq!(pb001["verdict"], "decides", "{pb001}");
    assert!(pb001["plan_error"].as_str().is_some_and(|e| e.contains("`labels.pod` is missing")), "{pb001}");
    d.stop().await;
}
