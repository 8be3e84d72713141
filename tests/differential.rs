//! The simulator predicts the daemon: every shipped suite (`playbooks/*.test.yaml`) and every
//! triage fixture (`tests/fixtures/triage/<case>/`) is decided twice, by the simulator
//! (`sparky test`'s runner, `sparky explain`'s reader) and by a real daemon started in this
//! process (events posted over HTTP, its clock held at each step's time, the case's context
//! given through the `facts` hook), and the decisions are compared event by event: level,
//! playbook, incident key and effect, planned actions.
//!
//! What cannot go through the daemon (a normalized event file has no webhook; a `set:` that
//! no payload can express) is skipped with a SKIP line saying why; the test asserts that most
//! steps were compared and that every compared step agreed.

use serde_json::Value;
use sparky::cli::{explain, input, test as suite};
use sparky::daemon::{self, Clock, Options, config::Config};
use sparky::event::Event;
use sparky::triage::{ContextFile, Decision, L1Mode, Level, Outcome, PlannedAction};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ADMIN: &str = "differential-admin";

/// A decision reduced to what is compared (and the reasons, shown when they differ).
#[derive(Debug, Clone)]
struct Seen {
    level: String,
    playbook: String,
    incident: String,
    actions: Vec<String>,
    service: String,
    reasons: Vec<String>,
}

impl Seen {
    fn of(d: &Decision, e: &Event) -> Seen {
        Seen {
            level: d.level.as_str().to_string(),
            playbook: d.playbook.clone().unwrap_or_else(|| "none".into()),
            incident: d.incident.as_ref().map_or("none".into(), |i| format!("{} {}", i.effect.as_str(), i.key)),
            actions: d.actions.iter().map(ToString::to_string).collect(),
            service: e.service.clone().unwrap_or_else(|| "none".into()),
            reasons: d.reasons.clone(),
        }
    }

    /// From the daemon's stored decision (`explained`, as `GET /api/v1/decisions` lists it).
    fn of_json(explained: &Value) -> Seen {
        let d = &explained["decision"];
        let text = |v: &Value| v.as_str().map_or("none".to_string(), str::to_string);
        let level = d["level"].as_str().and_then(Level::parse).map_or("?".into(), |l| l.as_str().into());
        let actions = d["actions"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| match serde_json::from_value::<sparky::actions::Plan>(a.clone()) {
                        Ok(plan) => {
                            PlannedAction { plan, blast_radius: a["blast_radius"].as_u64().unwrap_or(0) }.to_string()
                        }
                        Err(e) => format!("<unreadable action {a}: {e}>"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Seen {
            level,
            playbook: text(&d["playbook"]),
            incident: match d.get("incident") {
                Some(i) if !i.is_null() => format!("{} {}", text(&i["effect"]), text(&i["key"])),
                _ => "none".into(),
            },
            actions,
            service: text(&explained["service"]),
            reasons: d["reasons"].as_array().map(|r| r.iter().map(text).collect()).unwrap_or_default(),
        }
    }

    /// What differs, one line each; empty when they agree.
    fn differences(&self, daemon: &Seen) -> Vec<String> {
        let mut out = Vec::new();
        for (what, a, b) in [
            ("level", &self.level, &daemon.level),
            ("playbook", &self.playbook, &daemon.playbook),
            ("incident", &self.incident, &daemon.incident),
            ("service", &self.service, &daemon.service),
        ] {
            if a != b {
                out.push(format!("{what}: simulator {a}, daemon {b}"));
            }
        }
        if self.actions != daemon.actions {
            out.push(format!("actions: simulator {:?}, daemon {:?}", self.actions, daemon.actions));
        }
        out
    }
}

/// Both decisions side by side.
fn side_by_side(sim: &Seen, dae: &Seen) -> String {
    let mut out = String::new();
    let rows = [
        ("level", sim.level.clone(), dae.level.clone()),
        ("playbook", sim.playbook.clone(), dae.playbook.clone()),
        ("incident", sim.incident.clone(), dae.incident.clone()),
        ("service", sim.service.clone(), dae.service.clone()),
        ("actions", format!("{:?}", sim.actions), format!("{:?}", dae.actions)),
    ];
    let _ = writeln!(out, "        {:<10} {:<60} daemon", "", "simulator");
    for (what, a, b) in rows {
        let mark = if a == b { " " } else { "✗" };
        let _ = writeln!(out, "      {mark} {what:<10} {a:<60} {b}");
    }
    for (who, reasons) in [("simulator", &sim.reasons), ("daemon", &dae.reasons)] {
        for r in reasons {
            let _ = writeln!(out, "        {who} because: {r}");
        }
    }
    out
}

#[derive(Default)]
struct Tally {
    compared: usize,
    skipped: usize,
    disagreements: Vec<String>,
}

impl Tally {
    fn skip(&mut self, steps: usize, what: &str, why: &str) {
        self.skipped += steps;
        println!("SKIP {what}: {why}");
    }
}

/// A daemon for one case: a temporary store and playbooks folder, the case's catalog and
/// facts, its clock held.
struct Daemon {
    running: daemon::Running,
    base: String,
    clock: Clock,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(
        playbooks: &[PathBuf],
        catalog: &[PathBuf],
        facts: ContextFile,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("playbooks");
        for p in playbooks {
            copy_sparky(p, &copy);
        }
        let env = |_: &str| None;
        let mut config =
            Config::parse(&format!("admin_token: {ADMIN}\nscheduler:\n  enabled: false\n"), "sparky.yaml", &env)
                .unwrap();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.playbooks = vec![copy];
        config.catalog = Some(catalog.to_vec());
        config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
        let clock = Clock::held(at);
        let options = Options { config, insecure: false, clock: clock.clone(), facts: Some(Arc::new(facts)) };
        let running = daemon::start(options).await.unwrap();
        let base = format!("http://{}", running.addr);
        Daemon { running, base, clock, client: reqwest::Client::new(), _dir: dir }
    }

    /// Posts one delivery; the seqs of its events in the inbox, or none when the daemon took
    /// it for a duplicate (a byte-identical body: the delivery keys of senders without an id of
    /// their own are the body's hash, so a storm of identical notifications is one delivery).
    async fn post(&self, source: &str, body: Vec<u8>) -> Result<Option<Vec<i64>>, String> {
        let resp = self
            .client
            .post(format!("{}/webhooks/{source}", self.base))
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        match (status, v["status"].as_str()) {
            (202, Some("accepted")) => {
                Ok(Some(v["seqs"].as_array().unwrap().iter().map(|s| s.as_i64().unwrap()).collect()))
            }
            (202, Some("duplicate")) => Ok(None),
            _ => Err(format!("the daemon answered {status}: {v}")),
        }
    }

    async fn run_schedule(&self, playbook: &str) -> Result<Vec<i64>, String> {
        let resp = self
            .client
            .post(format!("{}/api/v1/schedules/{playbook}/run", self.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        match v["seq"].as_i64() {
            Some(seq) if status == 202 => Ok(vec![seq]),
            _ => Err(format!("the daemon answered {status}: {v}")),
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// Waits until the inbox is empty (every posted event decided) and the engine has carried
    /// out what was decided: the simulator counts an applied L1 as done when it is decided (a
    /// scheduled run that succeeded closes its incident), while the daemon's engine does it
    /// moments later; between a suite's steps there is time enough in production.
    async fn settle(&self) {
        for _ in 0..2000 {
            let status = self.get("/api/v1/status").await;
            let busy = self.get("/api/v1/executions?state=queued,approved,applying").await;
            let carried_out = busy["executions"].as_array().is_some_and(Vec::is_empty);
            if status["events"].get("pending").is_none() && carried_out {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the inbox did not drain, or the engine did not carry the decisions out");
    }

    /// The decisions of the events at `seqs`, in that order (by inbox position: a repeat has
    /// its event id, and a suppressed event is attached to its incident, not listed among
    /// the decisions).
    async fn decisions(&self, seqs: &[i64]) -> Vec<Option<Seen>> {
        let mut out = Vec::new();
        for seq in seqs {
            let ev = self.get(&format!("/api/v1/events/{seq}")).await;
            out.push(ev.get("decision").filter(|d| d.is_object()).map(Seen::of_json));
        }
        out
    }

    /// Stops it, and says so when it decided events it was not given (its scheduler is off:
    /// the suites fire schedules through the run API, as the simulator does).
    async fn stop(self, posted: usize, what: &str, tally: &mut Tally) {
        let status = self.get("/api/v1/status").await;
        let count = |k: &str| status["events"][k].as_u64().unwrap_or(0) as usize;
        let decided = count("decided") + count("attached");
        if decided != posted {
            tally.disagreements.push(format!("{what}: the daemon decided {decided} events, {posted} were posted\n"));
        }
        self.running.stop().await.unwrap();
    }
}

/// Copies the playbooks (`.sparky` files) under `from` to `to`, folders kept.
fn copy_sparky(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    if from.is_file() {
        std::fs::copy(from, to.join(from.file_name().unwrap())).unwrap();
        return;
    }
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            copy_sparky(&p, &to.join(p.file_name().unwrap()));
        } else if p.extension().is_some_and(|x| x == "sparky") {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// The payload a step posts: its file or inline document, with the step's `set:` applied to
/// the raw JSON where the sender's format can say it (Alertmanager: labels, annotations,
/// fingerprint, status, times). Whether that was enough is checked by normalizing it.
fn step_payload(step: &suite::Step, dir: &Path) -> Result<(String, Value), String> {
    let mut doc: Value = match &step.event {
        Some(serde_yaml::Value::String(file)) => {
            let bytes = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|_| format!("{file} is JSON Lines, not one payload"))?
        }
        Some(inline) => serde_json::to_value(inline).map_err(|e| e.to_string())?,
        None => return Err("no event".into()),
    };
    let source = match step.source.as_deref() {
        Some(s) => s.to_string(),
        None => input::infer_source(&doc).ok_or("the sender cannot be told")?.to_string(),
    };
    if source == input::NORMALIZED {
        return Err("a normalized event has no webhook".into());
    }
    if source == "pagerduty" {
        // A v3 webhook's incident: the labels PagerDuty's normalizer reads from it.
        for (key, value) in &step.set {
            if let (Some(k @ ("incident_key" | "urgency")), Some(data)) =
                (key.strip_prefix("labels."), doc.pointer_mut("/event/data"))
            {
                data[k] = Value::String(value.clone());
            }
        }
    }
    if source == "alertmanager" && !step.set.is_empty() {
        for alert in doc["alerts"].as_array_mut().into_iter().flatten() {
            for (key, value) in &step.set {
                let v = Value::String(value.clone());
                if let Some(k) = key.strip_prefix("labels.") {
                    alert["labels"][k] = v;
                } else if let Some(k) = key.strip_prefix("annotations.") {
                    alert["annotations"][k] = v;
                } else if key == "fingerprint" {
                    if let Some(f) = value.strip_prefix("alertmanager/") {
                        alert["fingerprint"] = Value::String(f.into());
                    }
                } else if key == "status" {
                    alert["status"] = v;
                } else if key == "occurred_at" {
                    let field = if alert["status"] == "resolved" { "endsAt" } else { "startsAt" };
                    alert[field] = v;
                }
            }
        }
    }
    Ok((source, doc))
}

/// Whether the daemon, given `doc`, sees the events the simulator decided (its `set:`
/// applied); the first difference otherwise. The service is compared after resolution.
fn same_events(source: &str, doc: &Value, sim: &[&Event]) -> Result<(), String> {
    let raw = serde_json::to_vec(doc).unwrap();
    let batch = sparky::ingest::normalize(source, &sparky::ingest::Headers::none(), &raw, chrono::Utc::now())
        .map_err(|e| e.to_string())?;
    if batch.events.len() != sim.len() {
        return Err(format!("the payload holds {} events, the simulator decided {}", batch.events.len(), sim.len()));
    }
    for (d, s) in batch.events.iter().zip(sim) {
        let fields = [
            ("status", d.status.as_str().to_string(), s.status.as_str().to_string()),
            ("fingerprint", d.fingerprint.clone(), s.fingerprint.clone()),
            ("severity", d.severity.as_str().to_string(), s.severity.as_str().to_string()),
            ("summary", d.summary.clone(), s.summary.clone()),
            ("labels", format!("{:?}", d.labels), format!("{:?}", s.labels)),
            ("annotations", format!("{:?}", d.annotations), format!("{:?}", s.annotations)),
            ("occurred_at", d.occurred_at.to_rfc3339(), s.occurred_at.to_rfc3339()),
        ];
        for (what, a, b) in fields {
            if a != b {
                return Err(format!(
                    "`set:` changes the normalized {what} in a way no {source} payload can say ({a} ≠ {b})"
                ));
            }
        }
    }
    Ok(())
}

/// Compares the decisions of one delivery.
fn compare(tally: &mut Tally, what: &str, sim: &[(&Event, &Decision)], daemon: &[Option<Seen>]) {
    for ((event, decision), dae) in sim.iter().zip(daemon) {
        let s = Seen::of(decision, event);
        let Some(dae) = dae else {
            tally.disagreements.push(format!("{what}: the daemon recorded no decision for {}\n", event.fingerprint));
            continue;
        };
        tally.compared += 1;
        if !s.differences(dae).is_empty() {
            tally.disagreements.push(format!("{what} ({}):\n{}", event.fingerprint, side_by_side(&s, dae)));
        }
    }
}

/// Runs every case of the suite at `path` through both.
async fn suite_file(path: &Path, tally: &mut Tally) {
    let loaded = suite::load_suite(path).unwrap();
    let graph = input::load_graph(&loaded.playbooks).unwrap();
    let catalog = input::load_catalog(&loaded.catalog).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    for case in &loaded.suite.cases {
        let what = format!("{name}: {}", case.name);
        let mut facts = suite::case_context(&loaded.suite, case).unwrap();
        let sim = suite::simulate_case(case, &facts, &catalog, &loaded.dir, &graph).unwrap();
        // The facts' times count from the case's start, as the simulator counts them.
        facts.now = Some(sim.start);
        let d = Daemon::start(&loaded.playbooks, &loaded.catalog, facts, sim.start).await;
        // Set once the simulator ends an applied L1 otherwise than in success (`outcome:`): a
        // dry-run daemon cannot, so what follows depends on what it cannot reproduce.
        let mut ended: Option<String> = None;
        let mut posted = 0;
        for (i, step) in case.steps.iter().enumerate() {
            let step_what = format!("{what}, step {}", i + 1);
            let deliveries: Vec<&suite::Delivered> = sim.delivered.iter().filter(|x| x.step == i).collect();
            if let Some(why) = &ended {
                tally.skip(deliveries.len(), &step_what, why);
                continue;
            }
            let payload = match &step.schedule {
                Some(pb) => {
                    let scheduled = graph
                        .playbooks()
                        .iter()
                        .find(|p| &p.id == pb)
                        .is_some_and(|p| daemon::scheduler::Schedule::of(p).is_some());
                    if !scheduled {
                        let why = format!(
                            "{pb} has no schedule: the daemon's run API refuses it (the simulator decides the event)"
                        );
                        tally.skip(deliveries.len(), &step_what, &why);
                        continue;
                    }
                    None
                }
                None => match step_payload(step, &loaded.dir) {
                    Ok(p) => Some(p),
                    Err(why) => {
                        tally.skip(deliveries.len(), &step_what, &why);
                        continue;
                    }
                },
            };
            if let Some((source, doc)) = &payload {
                let first: Vec<&Event> = deliveries.iter().filter(|x| x.delivery == 0).map(|x| &x.event).collect();
                if let Err(why) = same_events(source, doc, &first) {
                    tally.skip(deliveries.len(), &step_what, &why);
                    continue;
                }
            }
            for r in 0..step.repeat.max(1) {
                let these: Vec<&suite::Delivered> = deliveries.iter().copied().filter(|x| x.delivery == r).collect();
                d.clock.set(these[0].at);
                let seqs = match (&payload, &step.schedule) {
                    (Some((source, doc)), _) => d.post(source, serde_json::to_vec(doc).unwrap()).await,
                    (None, Some(pb)) => d.run_schedule(pb).await.map(Some),
                    (None, None) => unreachable!(),
                };
                let seqs = match seqs {
                    Ok(Some(s)) => {
                        posted += s.len();
                        s
                    }
                    // A duplicate does nothing; so does a repeat the simulator suppresses.
                    Ok(None) if these.iter().all(|x| x.decision.level == Level::Suppressed) => {
                        tally.compared += these.len();
                        continue;
                    }
                    Ok(None) => {
                        let levels: Vec<&str> = these.iter().map(|x| x.decision.level.as_str()).collect();
                        tally.disagreements.push(format!(
                            "{step_what}: the daemon took it for a duplicate of an earlier body, the simulator decided {levels:?}\n"
                        ));
                        continue;
                    }
                    Err(e) => {
                        tally.disagreements.push(format!("{step_what}: the daemon did not take it: {e}\n"));
                        continue;
                    }
                };
                d.settle().await;
                let decided = d.decisions(&seqs).await;
                let pairs: Vec<(&Event, &Decision)> = these.iter().map(|x| (&x.event, &x.decision)).collect();
                let where_ =
                    if step.repeat > 1 { format!("{step_what}, delivery {}", r + 1) } else { step_what.clone() };
                compare(tally, &where_, &pairs, &decided);
            }
            let applied =
                deliveries.iter().any(|x| x.decision.level == Level::L1 && x.decision.mode == Some(L1Mode::Apply));
            if applied && step.outcome != Outcome::Success {
                ended = Some(format!(
                    "step {} ends its applied L1 with `outcome: {:?}`, which a dry-run daemon cannot reproduce; the decisions after it depend on it",
                    i + 1,
                    step.outcome
                ));
            }
        }
        d.stop(posted, &what, tally).await;
    }
}

/// "Now" for fixtures whose context does not set it (as `tests/triage_fixtures.rs` has it).
fn default_now() -> chrono::DateTime<chrono::Utc> {
    "2026-03-10T08:20:00Z".parse().unwrap()
}

/// Runs one triage fixture through both: the events of its file, decided at its `now`.
async fn fixture(dir: &Path, tally: &mut Tally) {
    let name = format!("fixture {}", dir.file_name().unwrap().to_string_lossy());
    let own = dir.join("playbooks");
    let playbooks = vec![if own.is_dir() { own } else { PathBuf::from("playbooks") }];
    let context = dir.join("context.yaml");
    let catalog: Vec<PathBuf> = Some(dir.join("catalog")).filter(|c| c.is_dir()).into_iter().collect();
    let source = std::fs::read_to_string(dir.join("source")).ok().map(|s| s.trim().to_string());
    let events = ["events.json", "events.jsonl"].iter().map(|f| dir.join(f)).find(|p| p.exists()).unwrap();
    let req = explain::Request {
        event_file: Some(&events),
        schedule: None,
        at: None,
        source: source.as_deref(),
        playbooks: &playbooks,
        context: context.exists().then_some(context.as_path()),
        catalog: &catalog,
        now: default_now(),
        explain_all: false,
    };
    let explained = explain::decide_file(&req).unwrap_or_else(|e| panic!("{name}: {e}"));
    let count = explained.decided.len();
    if source.as_deref() == Some(input::NORMALIZED) {
        tally.skip(count, &name, "its events are normalized events, which no webhook takes");
        return;
    }
    let mut facts = if context.exists() { input::load_context_file(&context).unwrap() } else { ContextFile::default() };
    let now = facts.now.unwrap_or_else(default_now);
    facts.now = Some(now);
    // One delivery per document: the file, or each of its lines.
    let text = std::fs::read(&events).unwrap();
    let docs: Vec<Vec<u8>> = match serde_json::from_slice::<Value>(&text) {
        Ok(_) => vec![text],
        Err(_) => {
            text.split(|b| *b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)).map(<[u8]>::to_vec).collect()
        }
    };
    let d = Daemon::start(&playbooks, &catalog, facts, now).await;
    let mut decided = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let parsed: Value = serde_json::from_slice(doc).unwrap();
        let Some(src) = source.clone().or_else(|| input::infer_source(&parsed).map(str::to_string)) else {
            tally.skip(count, &name, "the sender of its events cannot be told");
            d.stop(decided.len(), &name, tally).await;
            return;
        };
        let Some(seqs) = d.post(&src, doc.clone()).await.unwrap() else {
            tally
                .disagreements
                .push(format!("{name}: the daemon took line {} for a duplicate of an earlier one\n", i + 1));
            continue;
        };
        d.settle().await;
        decided.extend(d.decisions(&seqs).await);
    }
    d.stop(decided.len(), &name, tally).await;
    if decided.len() != count {
        tally
            .disagreements
            .push(format!("{name}: the daemon took {} events, the simulator decided {count}\n", decided.len()));
        return;
    }
    let pairs: Vec<(&Event, &Decision)> = explained.decided.iter().map(|(e, d)| (e, d)).collect();
    compare(tally, &name, &pairs, &decided);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_predicts_the_daemon() {
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut suites: Vec<PathBuf> = std::fs::read_dir("playbooks")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    suites.sort();
    assert!(!suites.is_empty());
    for s in &suites {
        suite_file(s, &mut tally).await;
    }
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/triage")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "snapshots"))
        .collect();
    fixtures.sort();
    for f in &fixtures {
        fixture(f, &mut tally).await;
    }
    let total = tally.compared + tally.skipped;
    println!(
        "{} of {total} decisions compared, {} skipped, {} disagreements ({} suites, {} fixtures, {:.1}s)",
        tally.compared,
        tally.skipped,
        tally.disagreements.len(),
        suites.len(),
        fixtures.len(),
        started.elapsed().as_secs_f64()
    );
    for d in &tally.disagreements {
        println!("DIFFER {d}");
    }
    assert!(
        tally.disagreements.is_empty(),
        "the daemon decided otherwise than the simulator predicted (see DIFFER above)"
    );
    assert!(tally.compared * 100 >= total * 80, "only {} of {total} decisions could be compared", tally.compared);
}
