//! The escalation outbox on SQLite: rows are written with the decision that raises them,
//! once per incident, destination and cause; repeats, acknowledgements and resolutions
//! follow only where the incident was escalated; delivery order holds per incident and
//! destination; only failed rows are requeued.

#[path = "support/backends.rs"]
mod backends;
use backends::TestDb;

use chrono::{DateTime, Duration, Utc};
use sparky::analysis::package::Package;
use sparky::escalate::EscalationPackage;
use sparky::event::{Event, Status};
use sparky::ingest::{self, Headers};
use sparky::knowledge::Knowledge;
use sparky::store::{Destinations, Record, RemoteLink, Store};
use sparky::triage::{Decision, Escalation, IncidentChange, IncidentEffect, Level};
use std::sync::Arc;

const ALL: Destinations = Destinations {
    jira: true,
    pagerduty: true,
    slack: true,
    github: false,
    acknowledge: true,
    repeat_every_ms: 3_600_000,
};

fn graph() -> sparky::graph::RuleGraph {
    let sources = sparky::compile::read_sources(&["playbooks".into()]).unwrap();
    sparky::graph::RuleGraph::build(&sparky::compile::compile(&sources))
}

fn alert(status: Status) -> Event {
    let body = std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap();
    let mut e = ingest::normalize("alertmanager", &Headers::none(), &body, Utc::now()).unwrap().events.remove(0);
    e.status = status;
    e
}

async fn open(on: &str, to: Destinations) -> (TestDb, Store) {
    let db = TestDb::on(on, "store_outbox").await;
    let store = Store::open(&db.url).await.unwrap().with_destinations(to);
    (db, store)
}

/// Accepts `event` as delivery `n` and records `d` for it, as the worker does.
async fn record(store: &Store, n: u32, event: &Event, d: &Decision, now: DateTime<Utc>) -> usize {
    let seq = store.accept("alertmanager", &format!("k{n}"), std::slice::from_ref(event), now).await.unwrap().seqs[0];
    let package = d.incident.as_ref().filter(|c| c.effect == IncidentEffect::Open).map(|_| {
        let knowledge = Knowledge::new(Arc::default(), now.timestamp_millis());
        EscalationPackage::of_decision(event, d, &graph(), Package::assemble(event, &knowledge, Some(d), None, now))
    });
    let r = Record {
        seq,
        event,
        decision: d,
        json: "{}".into(),
        deploy: None,
        run: None,
        execution: None,
        package,
        fix: None,
        feedback: None,
        track: None,
        refired: None,
    };
    store.record_all(&[r]).await.unwrap()
}

fn decision(level: Level, effect: IncidentEffect, page: bool, now: DateTime<Utc>) -> Decision {
    let mut d = Decision::blank(&graph(), now);
    d.level = level;
    d.reasons = vec!["no playbook matched".into()];
    if level == Level::L3 {
        d.escalation = Some(Escalation { priority: "P1".into(), jira_project: None, page });
    }
    d.incident = Some(IncidentChange { key: "SPK-1".into(), effect });
    d
}

async fn rows(store: &Store) -> Vec<String> {
    let mut v: Vec<String> = store
        .outbox(None, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{} {} {} {}", r.destination, r.action, r.dedup, r.state))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn an_escalation_is_written_once_per_destination_with_its_decision() {
    for on in backends::names("an_escalation_is_written_once_per_destination_with_its_decision") {
        eprintln!("an_escalation_is_written_once_per_destination_with_its_decision on {on}");
        let (_dir, store) = open(on, ALL).await;
        let now = Utc::now();
        let firing = alert(Status::Firing);
        assert_eq!(record(&store, 1, &firing, &decision(Level::L3, IncidentEffect::Open, true, now), now).await, 1);
        // The same incident opened again (a redelivery triaged anew after its close, a replay):
        // nothing is added.
        record(&store, 2, &firing, &decision(Level::L3, IncidentEffect::Open, true, now), now).await;
        assert_eq!(
            rows(&store).await,
            ["jira open open pending", "pagerduty open open pending", "slack open open pending"]
        );
        let open = &store.outbox(None, 10).await.unwrap()[0];
        let package: EscalationPackage = serde_json::from_value(open.body.clone()).unwrap();
        assert_eq!((package.incident_key.as_str(), package.priority.as_str()), ("SPK-1", "P1"));
        assert_eq!(package.cause, "no playbook matched");
    }
}

#[tokio::test]
async fn no_destination_no_page_and_no_escalation_write_nothing_they_should_not() {
    for on in backends::names("no_destination_no_page_and_no_escalation_write_nothing_they_should_not") {
        eprintln!("no_destination_no_page_and_no_escalation_write_nothing_they_should_not on {on}");
        let now = Utc::now();
        let (_dir, none) = open(on, Destinations::default()).await;
        record(&none, 1, &alert(Status::Firing), &decision(Level::L3, IncidentEffect::Open, true, now), now).await;
        assert!(rows(&none).await.is_empty(), "the zero-configuration daemon has no destination");

        let (_dir, store) = open(on, ALL).await;
        record(&store, 1, &alert(Status::Firing), &decision(Level::L3, IncidentEffect::Open, false, now), now).await;
        assert_eq!(
            rows(&store).await,
            ["jira open open pending", "slack open open pending"],
            "`page false` files, no page"
        );

        let (_dir, store) = open(on, ALL).await;
        record(&store, 1, &alert(Status::Firing), &decision(Level::L1, IncidentEffect::Open, true, now), now).await;
        assert!(rows(&store).await.is_empty(), "an L1 escalates only if the engine says so later");
        // Its repeats and resolution do not reach destinations it never went to.
        record(&store, 2, &alert(Status::Firing), &decision(Level::Suppressed, IncidentEffect::Update, true, now), now)
            .await;
        record(&store, 3, &alert(Status::Resolved), &decision(Level::Observe, IncidentEffect::Close, true, now), now)
            .await;
        assert!(rows(&store).await.is_empty());
    }
}

#[tokio::test]
async fn repeats_acknowledgement_and_resolution_follow_the_escalation() {
    for on in backends::names("repeats_acknowledgement_and_resolution_follow_the_escalation") {
        eprintln!("repeats_acknowledgement_and_resolution_follow_the_escalation on {on}");
        let (_dir, store) = open(on, ALL).await;
        let now = Utc::now();
        record(&store, 1, &alert(Status::Firing), &decision(Level::L3, IncidentEffect::Open, true, now), now).await;
        // Three repeats in one hour: one comment; one more an hour later: another.
        for (n, at) in [(2, now), (3, now + Duration::minutes(1)), (4, now + Duration::minutes(2))] {
            record(
                &store,
                n,
                &alert(Status::Firing),
                &decision(Level::Suppressed, IncidentEffect::Update, true, at),
                at,
            )
            .await;
        }
        let later = now + Duration::hours(1);
        record(
            &store,
            5,
            &alert(Status::Firing),
            &decision(Level::Suppressed, IncidentEffect::Update, true, later),
            later,
        )
        .await;
        record(
            &store,
            6,
            &alert(Status::Acknowledged),
            &decision(Level::Suppressed, IncidentEffect::Update, true, later),
            later,
        )
        .await;
        record(
            &store,
            7,
            &alert(Status::Resolved),
            &decision(Level::Observe, IncidentEffect::Close, true, later),
            later,
        )
        .await;
        let all = rows(&store).await;
        let notes = all.iter().filter(|r| r.starts_with("jira note repeat:")).count();
        assert_eq!(notes, 2, "{all:#?}");
        assert!(all.contains(&"pagerduty acknowledge acknowledge pending".to_string()), "{all:#?}");
        for d in ["jira", "pagerduty", "slack"] {
            assert!(all.contains(&format!("{d} resolve resolve pending")), "{all:#?}");
        }
    }
}

#[tokio::test]
async fn delivery_order_holds_per_incident_and_destination_and_only_failures_are_requeued() {
    for on in backends::names("delivery_order_holds_per_incident_and_destination_and_only_failures_are_requeued") {
        eprintln!("delivery_order_holds_per_incident_and_destination_and_only_failures_are_requeued on {on}");
        let (_dir, store) = open(on, ALL).await;
        let now = Utc::now();
        record(&store, 1, &alert(Status::Firing), &decision(Level::L3, IncidentEffect::Open, true, now), now).await;
        record(&store, 2, &alert(Status::Resolved), &decision(Level::Observe, IncidentEffect::Close, true, now), now)
            .await;
        let soon = now + Duration::seconds(1);
        // The resolve waits behind the open, whatever their times.
        let due = store.outbox_due("jira", soon, 10).await.unwrap();
        assert_eq!(due.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["open"]);
        let link = RemoteLink { remote: "OPS-1".into(), url: Some("https://jira/browse/OPS-1".into()) };
        store.outbox_delivered(&due[0], "delivered", Some(&link), None, soon).await.unwrap();
        assert_eq!(store.escalation_link("SPK-1", "jira").await.unwrap(), Some(link));
        let due = store.outbox_due("jira", soon, 10).await.unwrap();
        assert_eq!(due.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["resolve"]);
        // A retry waits for its time; a failure is final until requeued.
        store.outbox_retry(due[0].id, "Jira answered 503", soon + Duration::seconds(30), soon).await.unwrap();
        assert!(store.outbox_due("jira", soon, 10).await.unwrap().is_empty());
        assert_eq!(store.outbox_due("jira", soon + Duration::seconds(31), 10).await.unwrap().len(), 1);
        assert!(!store.outbox_requeue(due[0].id, soon).await.unwrap(), "a pending row is not requeued");
        store.outbox_failed(due[0].id, "Jira answered 400", soon).await.unwrap();
        assert!(store.outbox_due("jira", soon + Duration::hours(1), 10).await.unwrap().is_empty());
        assert!(store.outbox_requeue(due[0].id, soon).await.unwrap());
        // A requeued row starts afresh: its backoff and its attempt limit count from zero.
        let again = store.outbox_due("jira", soon, 10).await.unwrap();
        assert_eq!((again[0].id, again[0].attempts), (due[0].id, 0));
        let counts = store.outbox_counts().await.unwrap();
        assert!(
            counts.iter().any(|c| c.destination == "pagerduty" && c.state == "pending" && c.count == 2),
            "{counts:?}"
        );
    }
}
