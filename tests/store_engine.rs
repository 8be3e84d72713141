//! The engine's persisted state on SQLite: claims re-check the guards that can change after
//! the decision (pauses, the circuit breaker, one action in flight per target, the
//! per-target rate, the global budget), approvals expire, an interrupted apply is never
//! applied again, the alert's resolution verifies, and the audit log's hash chain finds any
//! record altered or removed.

#[path = "support/backends.rs"]
mod backends;
use backends::TestDb;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sparky::actions::Plan;
use sparky::event::Event;
use sparky::ingest::{self, Headers};
use sparky::store::{AuditEntry, Claim, Limits, NewExecution, Rate, Record, Store, Verify};
use sparky::triage::{Decision, IncidentChange, IncidentEffect, L1Mode, Level, Outcome, Pause, PlannedAction, Run};
use std::collections::BTreeMap;

fn graph() -> sparky::graph::RuleGraph {
    let sources = sparky::compile::read_sources(&["playbooks".into()]).unwrap();
    sparky::graph::RuleGraph::build(&sparky::compile::compile(&sources))
}

fn alert(n: u32, service: &str, status: &str) -> Event {
    let path = format!("playbooks/events/KubePodCrashLooping_prod_{status}.json");
    let body = std::fs::read(path).unwrap();
    let mut e = ingest::normalize("alertmanager", &Headers::none(), &body, Utc::now()).unwrap().events.remove(0);
    e.id = format!("ev-{n}-{status}");
    e.fingerprint = format!("fp-{n}");
    e.service = Some(service.to_string());
    e
}

fn plan(target: &str) -> Plan {
    Plan {
        action: "k8s.rollout_restart".into(),
        target: target.into(),
        steps: vec![format!("restart {target}")],
        args: BTreeMap::new(),
        integration: "kubernetes".into(),
        mutating: true,
    }
}

fn limits() -> Limits {
    Limits {
        per_target: Rate { count: 10, window_ms: 3_600_000 },
        budget: Rate { count: 10, window_ms: 3_600_000 },
        freeze: None,
        dry_run: false,
    }
}

struct Made {
    id: String,
    key: String,
}

/// Accepts an alert and records an L1 decision for it with its execution (`state`).
async fn l1(store: &Store, n: u32, service: &str, target: &str, state: &'static str, now: DateTime<Utc>) -> Made {
    let g = graph();
    let event = alert(n, service, "firing");
    let seq = store.accept("alertmanager", &format!("k{n}"), std::slice::from_ref(&event), now).await.unwrap().seqs[0];
    let key = format!("SPK-{n}");
    let mut d = Decision::blank(&g, now);
    d.level = Level::L1;
    d.mode = Some(if state == "awaiting_approval" { L1Mode::AwaitApproval } else { L1Mode::Apply });
    d.playbook = Some("PB-001".into());
    d.actions = vec![PlannedAction { plan: plan(target), blast_radius: 1 }];
    d.incident = Some(IncidentChange { key: key.clone(), effect: IncidentEffect::Open });
    let id = format!("act-{seq}");
    let execution = NewExecution {
        id: id.clone(),
        state,
        plans: vec![plan(target)],
        verify: vec![Verify::Resolved { within_ms: 60_000 }],
        run_keys: BTreeMap::new(),
        guards: json!([]),
        namespace: Some("prod".into()),
        expires_at: (state == "awaiting_approval").then(|| now + Duration::minutes(30)),
    };
    // As the worker records them: a plan awaiting approval is a pending run too (it counts
    // for cooldowns and rates, as the action a person may approve).
    let run = matches!(state, "queued" | "awaiting_approval").then(|| Run {
        at: now,
        keys: BTreeMap::new(),
        outcome: Outcome::Pending,
        incident: None,
    });
    let record = Record {
        seq,
        event: &event,
        decision: &d,
        json: "{}".into(),
        deploy: None,
        run,
        execution: Some(execution),
        package: None,
        fix: None,
        feedback: None,
        track: None,
        refired: None,
    };
    assert_eq!(store.record_all(&[record]).await.unwrap(), 1);
    Made { id, key }
}

/// Records the resolved alert of `n`, closing its incident.
async fn resolve(store: &Store, n: u32, key: &str, now: DateTime<Utc>) {
    let g = graph();
    let event = alert(n, "checkout", "resolved");
    let seq = store.accept("alertmanager", &format!("r{n}"), std::slice::from_ref(&event), now).await.unwrap().seqs[0];
    let mut d = Decision::blank(&g, now);
    d.incident = Some(IncidentChange { key: key.into(), effect: IncidentEffect::Close });
    let record = Record {
        seq,
        event: &event,
        decision: &d,
        json: "{}".into(),
        deploy: None,
        run: None,
        execution: None,
        package: None,
        fix: None,
        feedback: None,
        track: None,
        refired: None,
    };
    store.record_all(&[record]).await.unwrap();
}

async fn runs(store: &Store) -> Vec<Outcome> {
    let all = store.runs(&["PB-001"], DateTime::<Utc>::MIN_UTC).await.unwrap();
    all.get("PB-001").map(|r| r.iter().map(|r| r.outcome).collect()).unwrap_or_default()
}

fn refused(c: &Claim) -> String {
    match c {
        Claim::Refused(_, check) => format!("{}: {} (limit: {})", check.guard, check.figure, check.limit),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn one_action_in_flight_per_target_then_the_alert_resolution_verifies_it() {
    for on in backends::names("one_action_in_flight_per_target_then_the_alert_resolution_verifies_it") {
        eprintln!("one_action_in_flight_per_target_then_the_alert_resolution_verifies_it on {on}");
        let db = TestDb::on(on, "one_action_in_flight_per_target_then_the_alert_resolution_verifies_it").await;
        let store = Store::open(&db.url).await.unwrap();
        let now = Utc::now();
        let a = l1(&store, 1, "checkout", "kubernetes:prod/deployment/checkout", "queued", now).await;
        let b = l1(&store, 2, "checkout", "kubernetes:prod/deployment/checkout", "queued", now).await;
        let c = l1(&store, 3, "billing", "kubernetes:prod/deployment/billing", "queued", now).await;
        assert_eq!(store.claimable(10).await.unwrap(), vec![a.id.clone(), b.id.clone(), c.id.clone()]);

        let Claim::Ready(ea, checks) = store.claim(&a.id, &limits(), now).await.unwrap() else { panic!() };
        assert!(checks.iter().all(|c| c.passed));
        // Claimed once only.
        assert!(matches!(store.claim(&a.id, &limits(), now).await.unwrap(), Claim::Gone));
        let why = refused(&store.claim(&b.id, &limits(), now).await.unwrap());
        assert!(why.contains("one action in flight per target") && why.contains(&a.id), "{why}");
        // Another target is free.
        assert!(matches!(store.claim(&c.id, &limits(), now).await.unwrap(), Claim::Ready(..)));

        store.applied(&ea, json!([{ "applied": true }]), None, 3, now).await.unwrap();
        assert_eq!(store.execution(&a.id).await.unwrap().unwrap().state, "verifying");
        resolve(&store, 1, &a.key, now + Duration::seconds(30)).await;
        let done = store.execution(&a.id).await.unwrap().unwrap();
        assert_eq!(done.state, "succeeded", "{done:?}");
        // a succeeded, b was refused (counts for nothing), c is still pending its verification.
        assert_eq!(runs(&store).await, vec![Outcome::Success, Outcome::Refused, Outcome::Pending]);
        // The refusal was escalated.
        let esc = store.escalations(10).await.unwrap();
        assert!(esc.iter().any(|e| e["execution"] == b.id.as_str() && e["cause"] == "refused at execution"), "{esc:?}");
    }
}

#[tokio::test]
async fn the_per_target_rate_and_the_global_budget_hold() {
    for on in backends::names("the_per_target_rate_and_the_global_budget_hold") {
        eprintln!("the_per_target_rate_and_the_global_budget_hold on {on}");
        let db = TestDb::on(on, "the_per_target_rate_and_the_global_budget_hold").await;
        let store = Store::open(&db.url).await.unwrap();
        let now = Utc::now();
        let tight = Limits {
            per_target: Rate { count: 1, window_ms: 3_600_000 },
            budget: Rate { count: 2, window_ms: 3_600_000 },
            ..limits()
        };
        let a = l1(&store, 1, "checkout", "t:one", "queued", now).await;
        let b = l1(&store, 2, "checkout", "t:one", "queued", now).await;
        let c = l1(&store, 3, "checkout", "t:two", "queued", now).await;
        let d = l1(&store, 4, "checkout", "t:three", "queued", now).await;
        let Claim::Ready(ea, _) = store.claim(&a.id, &tight, now).await.unwrap() else { panic!() };
        store.applied(&ea, json!([]), None, 3, now).await.unwrap();
        store.verified(&ea, "success", json!({}), 3, now).await.unwrap();
        // Not in flight any more, but the target had its one run this hour.
        let why = refused(&store.claim(&b.id, &tight, now).await.unwrap());
        assert!(why.starts_with("at_most 1 per 1h per target (t:one): 1 run in the last 1h"), "{why}");
        assert!(matches!(store.claim(&c.id, &tight, now).await.unwrap(), Claim::Ready(..)));
        let why = refused(&store.claim(&d.id, &tight, now).await.unwrap());
        assert!(why.starts_with("global budget 2 per 1h: 2 actions started in the last 1h"), "{why}");
    }
}

#[tokio::test]
async fn pauses_stop_claims_in_their_scope_until_resumed_and_a_freeze_stops_all() {
    for on in backends::names("pauses_stop_claims_in_their_scope_until_resumed_and_a_freeze_stops_all") {
        eprintln!("pauses_stop_claims_in_their_scope_until_resumed_and_a_freeze_stops_all on {on}");
        let db = TestDb::on(on, "pauses_stop_claims_in_their_scope_until_resumed_and_a_freeze_stops_all").await;
        let store = Store::open(&db.url).await.unwrap();
        let now = Utc::now();
        let a = l1(&store, 1, "checkout", "t:a", "queued", now).await;
        let b = l1(&store, 2, "billing", "t:b", "queued", now).await;
        let c = l1(&store, 3, "billing", "t:c", "queued", now).await;
        let scoped = Pause {
            service: Some("checkout".into()),
            reason: "deploy in progress".into(),
            by: Some("alice".into()),
            ..Pause::default()
        };
        let id = store.pause(&scoped, now).await.unwrap();
        let why = refused(&store.claim(&a.id, &limits(), now).await.unwrap());
        assert_eq!(why, "kill switch: service=checkout is paused by alice: deploy in progress (limit: not paused)");
        // Another service runs.
        assert!(matches!(store.claim(&b.id, &limits(), now).await.unwrap(), Claim::Ready(..)));
        // A freeze window stops everything.
        let frozen =
            Limits { freeze: Some("freeze `sale` is in force until 2026-11-30T00:00:00+00:00".into()), ..limits() };
        let why = refused(&store.claim(&c.id, &frozen, now).await.unwrap());
        assert!(why.starts_with("freeze: freeze `sale` is in force"), "{why}");
        // Resuming with another scope lifts nothing; with the same, the pause.
        assert!(store.resume(None, &Pause::default(), "bob", now).await.unwrap().is_empty());
        let lifted = store
            .resume(None, &Pause { service: Some("checkout".into()), ..Pause::default() }, "bob", now)
            .await
            .unwrap();
        assert_eq!(lifted.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![id]);
        assert!(store.active_pauses(now).await.unwrap().is_empty());
        // A pause with an end is over after it.
        let brief = Pause { reason: "maintenance".into(), until: Some(now + Duration::minutes(5)), ..Pause::default() };
        store.pause(&brief, now).await.unwrap();
        assert_eq!(store.active_pauses(now).await.unwrap().len(), 1);
        assert!(store.active_pauses(now + Duration::minutes(6)).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn consecutive_failed_verifications_trip_the_breaker_until_resumed() {
    for on in backends::names("consecutive_failed_verifications_trip_the_breaker_until_resumed") {
        eprintln!("consecutive_failed_verifications_trip_the_breaker_until_resumed on {on}");
        let db = TestDb::on(on, "consecutive_failed_verifications_trip_the_breaker_until_resumed").await;
        let store = Store::open(&db.url).await.unwrap();
        let mut now = Utc::now();
        let mut demotions = Vec::new();
        for n in 1..=3 {
            let m = l1(&store, n, "checkout", &format!("t:{n}"), "queued", now).await;
            let Claim::Ready(e, _) = store.claim(&m.id, &limits(), now).await.unwrap() else { panic!() };
            store.applied(&e, json!([]), None, 3, now).await.unwrap();
            let e = store.execution(&m.id).await.unwrap().unwrap();
            demotions.push(
                store
                    .verified(&e, "timed_out", json!({ "timed_out": "the source alert did not resolve" }), 3, now)
                    .await
                    .unwrap()
                    .demotion(),
            );
            now += Duration::seconds(1);
        }
        assert_eq!(demotions[..2], [None, None]);
        let d = demotions[2].clone().expect("the third failure demotes");
        assert_eq!(d.playbook, "PB-001");
        let pauses = store.active_pauses(now).await.unwrap();
        assert_eq!(pauses.len(), 1);
        assert!(pauses[0].1.breaker && pauses[0].1.playbook.as_deref() == Some("PB-001"));
        // Demoted: the next claim is refused by the breaker.
        let m = l1(&store, 4, "checkout", "t:4", "queued", now).await;
        let why = refused(&store.claim(&m.id, &limits(), now).await.unwrap());
        assert!(why.starts_with("circuit breaker: playbook=PB-001 is paused by circuit breaker"), "{why}");
        // Re-enabled, one more failure does not demote it again at once.
        store.resume(None, &Pause { playbook: Some("PB-001".into()), ..Pause::default() }, "alice", now).await.unwrap();
        now += Duration::seconds(1);
        let m = l1(&store, 5, "checkout", "t:5", "queued", now).await;
        let Claim::Ready(e, _) = store.claim(&m.id, &limits(), now).await.unwrap() else { panic!() };
        store.applied(&e, json!([]), None, 3, now).await.unwrap();
        let e = store.execution(&m.id).await.unwrap().unwrap();
        assert_eq!(
            store.verified(&e, "timed_out", json!({}), 3, now).await.unwrap(),
            sparky::store::Verified::Recorded(None)
        );
        // A second replica's verdict on the same execution changes nothing.
        assert_eq!(store.verified(&e, "success", json!({}), 3, now).await.unwrap(), sparky::store::Verified::Already);
        let causes: Vec<String> =
            store.escalations(20).await.unwrap().iter().map(|e| e["cause"].as_str().unwrap().to_string()).collect();
        assert_eq!(causes.iter().filter(|c| *c == "verification failed").count(), 4, "{causes:?}");
    }
}

#[tokio::test]
async fn an_interrupted_apply_is_never_applied_again() {
    for on in backends::names("an_interrupted_apply_is_never_applied_again") {
        eprintln!("an_interrupted_apply_is_never_applied_again on {on}");
        let db = TestDb::on(on, "an_interrupted_apply_is_never_applied_again").await;
        let store = Store::open(&db.url).await.unwrap().with_replica("a");
        let other = Store::open(&db.url).await.unwrap().with_replica("b");
        let now = Utc::now();
        let m = l1(&store, 1, "checkout", "t:1", "queued", now).await;
        store.heartbeat("r", now, now).await.unwrap();
        assert!(matches!(store.claim(&m.id, &limits(), now).await.unwrap(), Claim::Ready(..)));
        // Another replica starting, or sweeping, leaves a live replica's apply alone; the
        // replica's own sweep too.
        assert!(other.interrupted(now).await.unwrap().is_empty());
        assert!(other.orphaned(now).await.unwrap().is_empty());
        assert!(store.orphaned(now).await.unwrap().is_empty());
        // The process dies here. Once it has been unseen for a minute, the other takes over
        // (as it would itself at its next start):
        let later = now + Duration::seconds(61);
        assert_eq!(other.orphaned(later).await.unwrap(), vec![m.id.clone()]);
        assert!(store.interrupted(later).await.unwrap().is_empty(), "taken over once only");
        let e = store.execution(&m.id).await.unwrap().unwrap();
        assert_eq!(e.state, "verifying");
        assert!(store.claimable(10).await.unwrap().is_empty());
        assert!(matches!(store.claim(&m.id, &limits(), now).await.unwrap(), Claim::Gone));
        // Its verification decides.
        resolve(&store, 1, &m.key, now).await;
        assert_eq!(store.execution(&m.id).await.unwrap().unwrap().state, "succeeded");
    }
}

#[tokio::test]
async fn approvals_are_answered_once_before_they_expire() {
    for on in backends::names("approvals_are_answered_once_before_they_expire") {
        eprintln!("approvals_are_answered_once_before_they_expire on {on}");
        let db = TestDb::on(on, "approvals_are_answered_once_before_they_expire").await;
        let store = Store::open(&db.url).await.unwrap();
        let now = Utc::now();
        let a = l1(&store, 1, "checkout", "t:1", "awaiting_approval", now).await;
        let b = l1(&store, 2, "checkout", "t:2", "awaiting_approval", now).await;
        let c = l1(&store, 3, "checkout", "t:3", "awaiting_approval", now).await;
        assert!(store.claimable(10).await.unwrap().is_empty());
        assert_eq!(runs(&store).await, vec![Outcome::Pending; 3], "each waiting plan holds its place");
        let e = store.answer(&a.id, true, "alice", now).await.unwrap().unwrap();
        assert_eq!((e.state.as_str(), e.answered_by.as_deref()), ("approved", Some("alice")));
        let again = store.answer(&a.id, false, "bob", now).await.unwrap().unwrap_err();
        assert!(again.contains("is `approved`, not awaiting approval"), "{again}");
        store.answer(&b.id, false, "bob", now).await.unwrap().unwrap();
        assert_eq!(store.claimable(10).await.unwrap(), vec![a.id.clone()]);
        // Approved: claimed, and from then on a run of the playbook (it earns trust).
        assert!(matches!(store.claim(&a.id, &limits(), now).await.unwrap(), Claim::Ready(..)));
        let mut outcomes = runs(&store).await;
        outcomes.sort_by_key(|o| o.as_str());
        assert_eq!(
            outcomes,
            vec![Outcome::Pending, Outcome::Pending, Outcome::Refused],
            "b's rejection refuses its run"
        );
        // Expired: no answer any more.
        let later = now + Duration::minutes(31);
        assert_eq!(store.expire(later).await.unwrap(), 1);
        assert_eq!(store.execution(&c.id).await.unwrap().unwrap().state, "expired");
        let mut outcomes = runs(&store).await;
        outcomes.sort_by_key(|o| o.as_str());
        assert_eq!(
            outcomes,
            vec![Outcome::Pending, Outcome::Refused, Outcome::Refused],
            "only the approved one counts"
        );
        let late = store.answer(&c.id, true, "carol", later).await.unwrap().unwrap_err();
        assert!(late.contains("is `expired`"), "{late}");
        let unknown = store.answer("act-999", true, "carol", later).await.unwrap().unwrap_err();
        assert!(unknown.starts_with("no execution `act-999`"), "{unknown}");
    }
}

#[tokio::test]
async fn the_audit_chain_finds_altered_and_removed_records() {
    for on in backends::names("the_audit_chain_finds_altered_and_removed_records") {
        eprintln!("the_audit_chain_finds_altered_and_removed_records on {on}");
        let db = TestDb::on(on, "the_audit_chain_finds_altered_and_removed_records").await;
        let url = db.url.clone();
        let store = Store::open(&url).await.unwrap();
        let now = Utc::now();
        let m = l1(&store, 1, "checkout", "t:1", "queued", now).await;
        store.claim(&m.id, &limits(), now).await.unwrap();
        for i in 0..3 {
            let entry = AuditEntry {
                actor: "alice",
                action: "pause",
                execution: None,
                playbook: None,
                incident_key: None,
                record: json!({ "n": i }),
            };
            store.audit_append(now, &entry).await.unwrap();
        }
        let report = store.audit_verify().await.unwrap();
        assert!(report.problems.is_empty(), "{report:?}");
        assert_eq!(report.records, 5); // decide, claim, three pauses
        let records = store.audit(None, None, None, 100).await.unwrap();
        assert_eq!(
            records.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
            ["decide", "claim", "pause", "pause", "pause"]
        );
        assert_eq!(records[1].prev_hash, records[0].hash);
        // Only this execution's records, and none with a secret-looking field.
        assert_eq!(store.audit(None, None, Some(&m.id), 100).await.unwrap().len(), 2);
        store.close().await;

        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&url).await.unwrap();
        let tamper = |sql: &'static str| {
            let raw = raw.clone();
            async move { sqlx::query(sql).execute(&raw).await.unwrap() }
        };
        tamper("UPDATE audit SET record_json = '{\"n\":99}' WHERE seq = 3").await;
        let store = Store::open(&url).await.unwrap();
        let problems = store.audit_verify().await.unwrap().problems;
        assert_eq!(problems, ["record 3 was altered: its content does not match its hash"]);
        tamper("DELETE FROM audit WHERE seq = 4").await;
        let problems = store.audit_verify().await.unwrap().problems;
        assert!(problems.iter().any(|p| p == "records 4 to 4 are missing: removed from the log"), "{problems:?}");
        // Removing the newest record is found through the head.
        tamper("DELETE FROM audit WHERE seq = 5").await;
        let problems = store.audit_verify().await.unwrap().problems;
        assert!(
            problems.iter().any(|p| p.starts_with("the chain ends at record 3, but its head says 5")),
            "{problems:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_verification_escalates_to_the_destinations_even_without_a_recorded_package() {
    for on in backends::names("a_failed_verification_escalates_to_the_destinations_even_without_a_recorded_package") {
        eprintln!("a_failed_verification_escalates_to_the_destinations_even_without_a_recorded_package on {on}");
        let db =
            TestDb::on(on, "a_failed_verification_escalates_to_the_destinations_even_without_a_recorded_package").await;
        let store = Store::open(&db.url).await.unwrap().with_destinations(sparky::store::Destinations {
            jira: true,
            pagerduty: true,
            slack: false,
            github: false,
            acknowledge: false,
            repeat_every_ms: 0,
        });
        let now = Utc::now();
        // Recorded without a package (as incidents opened before packages were kept).
        let m = l1(&store, 1, "checkout", "t:1", "queued", now).await;
        let Claim::Ready(e, _) = store.claim(&m.id, &limits(), now).await.unwrap() else { panic!() };
        store.applied(&e, json!([]), None, 3, now).await.unwrap();
        let e = store.execution(&m.id).await.unwrap().unwrap();
        store
            .verified(&e, "timed_out", json!({ "timed_out": "the source alert did not resolve" }), 3, now)
            .await
            .unwrap();
        let rows = store.outbox(Some(&m.key), 10).await.unwrap();
        let mut got: Vec<(&str, &str)> = rows.iter().map(|r| (r.destination.as_str(), r.action.as_str())).collect();
        got.sort();
        // A warning: P3 by its severity, filed without a page.
        assert_eq!(got, [("jira", "open")]);
        let p: sparky::escalate::EscalationPackage = serde_json::from_value(rows[0].body.clone()).unwrap();
        assert_eq!(p.cause, "verification failed");
        assert_eq!(p.attempt.as_ref().unwrap().id, m.id);
        assert_eq!((p.priority.as_str(), p.page), ("P3", false));
        assert_eq!(p.package.event.id, "ev-1-firing", "the package is the event's");
    }
}
