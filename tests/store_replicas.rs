//! Several replicas on one store, on both backends: inbox claims (one replica per event,
//! one per fingerprint at a time, a lease that ends), a batch decided on stale runs is not
//! recorded, an outbox row is taken by one replica, a gone replica's applies are taken over,
//! replicas say which ruleset they run; and a schema newer than the binary is refused.

#[path = "support/backends.rs"]
mod backends;
use backends::TestDb;

use chrono::{Duration, Utc};
use sparky::event::Event;
use sparky::ingest::{self, Headers};
use sparky::store::{Record, Store};
use sparky::triage::{self, MemoryContext, Outcome, Run};

fn alert(name: &str, fingerprint: &str) -> Event {
    let body = std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap();
    let mut e = ingest::normalize("alertmanager", &Headers::none(), &body, Utc::now()).unwrap().events.remove(0);
    e.id = name.into();
    e.fingerprint = fingerprint.into();
    e
}

fn graph() -> sparky::graph::RuleGraph {
    let sources = sparky::compile::read_sources(&["playbooks".into()]).unwrap();
    sparky::graph::RuleGraph::build(&sparky::compile::compile(&sources))
}

fn record<'a>(seq: i64, event: &'a Event, decision: &'a triage::Decision, run: Option<Run>) -> Record<'a> {
    Record {
        seq,
        event,
        decision,
        json: "{}".into(),
        deploy: None,
        run,
        execution: None,
        package: None,
        fix: None,
        feedback: None,
    }
}

#[tokio::test]
async fn each_event_is_claimed_by_one_replica_and_a_fingerprint_by_one_at_a_time() {
    for on in backends::names("claims") {
        eprintln!("claims on {on}");
        let db = TestDb::on(on, "claims").await;
        let a = Store::open(&db.url).await.unwrap().with_replica("a");
        let b = Store::open(&db.url).await.unwrap().with_replica("b");
        let now = Utc::now();
        let lease = now + Duration::seconds(60);
        let (f1, f2, g) = (alert("e1", "fp-f"), alert("e2", "fp-f"), alert("e3", "fp-g"));
        a.accept("alertmanager", "d1", std::slice::from_ref(&f1), now).await.unwrap();
        // `a` claims what there is; `b` then finds nothing of fingerprint F, even an event of
        // it that arrives later, but takes G.
        let got_a = a.claim_inbox(10, now, lease).await.unwrap();
        assert_eq!(got_a.iter().map(|p| p.event.id.as_str()).collect::<Vec<_>>(), ["e1"], "{on}");
        b.accept("alertmanager", "d2", &[f2.clone(), g.clone()], now).await.unwrap();
        let got_b = b.claim_inbox(10, now, lease).await.unwrap();
        assert_eq!(got_b.iter().map(|p| p.event.id.as_str()).collect::<Vec<_>>(), ["e3"], "{on}");
        // `a`, asking again, has its own and the rest of F.
        let again = a.claim_inbox(10, now, lease).await.unwrap();
        assert_eq!(again.iter().map(|p| p.event.id.as_str()).collect::<Vec<_>>(), ["e1", "e2"], "{on}");

        // `a` dies: once its lease has ended, `b` takes F, and what `a` records late is not
        // recorded twice.
        let later = lease + Duration::seconds(1);
        let taken = b.claim_inbox(10, later, later + Duration::seconds(60)).await.unwrap();
        assert_eq!(taken.iter().map(|p| p.event.id.as_str()).collect::<Vec<_>>(), ["e1", "e2", "e3"], "{on}");
        let g_ = graph();
        let d = triage::decide(&f1, &MemoryContext::default(), &g_, now);
        assert_eq!(a.record_all(&[record(again[0].seq, &f1, &d, None)]).await.unwrap(), 0, "{on}");
        assert_eq!(b.record_all(&[record(taken[0].seq, &f1, &d, None)]).await.unwrap(), 1, "{on}");
        assert_eq!(b.decisions(10, None, None).await.unwrap().len(), 1, "{on}");

        // Released claims are anyone's again.
        b.release_inbox(&[taken[1].seq, taken[2].seq]).await.unwrap();
        assert_eq!(a.claim_inbox(10, later, later + Duration::seconds(60)).await.unwrap().len(), 2, "{on}");
        // Renewing holds them past the first lease.
        assert_eq!(a.renew_inbox(&[taken[1].seq, taken[2].seq], later + Duration::seconds(600)).await.unwrap(), 2);
        let much_later = later + Duration::seconds(120);
        assert!(b.claim_inbox(10, much_later, much_later).await.unwrap().is_empty(), "{on}");
    }
}

#[tokio::test]
async fn a_batch_decided_before_another_replica_added_a_run_is_decided_again() {
    for on in backends::names("runs_mark") {
        eprintln!("runs_mark on {on}");
        let db = TestDb::on(on, "runs_mark").await;
        let a = Store::open(&db.url).await.unwrap().with_replica("a");
        let b = Store::open(&db.url).await.unwrap().with_replica("b");
        let now = Utc::now();
        let (e1, e2) = (alert("e1", "fp-1"), alert("e2", "fp-2"));
        let s1 = a.accept("alertmanager", "d1", std::slice::from_ref(&e1), now).await.unwrap().seqs[0];
        let s2 = a.accept("alertmanager", "d2", std::slice::from_ref(&e2), now).await.unwrap().seqs[0];
        let mark = a.runs_mark().await.unwrap();
        assert_eq!(mark, b.runs_mark().await.unwrap());
        let g = graph();
        let d = triage::decide(&e1, &MemoryContext::default(), &g, now);
        let run = Run { at: now, outcome: Outcome::Pending, keys: Default::default() };
        // `b` records a run first: `a`'s batch, decided on the runs before it, is refused
        // whole, and nothing of it is written.
        let d2 = triage::decide(&e2, &MemoryContext::default(), &g, now);
        let mut with_playbook = d2.clone();
        with_playbook.playbook = Some("PB-001".into());
        assert_eq!(b.record_batch(&[record(s2, &e2, &with_playbook, Some(run))], Some(mark)).await.unwrap(), Some(1));
        assert_eq!(a.record_batch(&[record(s1, &e1, &d, None)], Some(mark)).await.unwrap(), None, "{on}");
        assert_eq!(a.inbox_depth().await.unwrap(), 1, "{on}");
        let fresh = a.runs_mark().await.unwrap();
        assert!(fresh > mark);
        assert_eq!(a.record_batch(&[record(s1, &e1, &d, None)], Some(fresh)).await.unwrap(), Some(1), "{on}");
    }
}

#[tokio::test]
async fn replicas_say_which_ruleset_they_run_and_a_newer_schema_is_refused() {
    for on in backends::names("replicas") {
        eprintln!("replicas on {on}");
        let db = TestDb::on(on, "replicas").await;
        let a = Store::open(&db.url).await.unwrap().with_replica("a");
        let b = Store::open(&db.url).await.unwrap().with_replica("b");
        let now = Utc::now();
        a.heartbeat("hash-1", now, now).await.unwrap();
        b.heartbeat("hash-2", now, now - Duration::seconds(120)).await.unwrap();
        let seen = b.replicas(now).await.unwrap();
        let shown: Vec<_> = seen.iter().map(|r| (r.id.as_str(), r.ruleset.as_str(), r.alive)).collect();
        assert_eq!(shown, [("b", "hash-2", false), ("a", "hash-1", true)], "{on}: this replica first");
        a.heartbeat("hash-3", now, now).await.unwrap();
        assert_eq!(a.replicas(now).await.unwrap()[0].ruleset, "hash-3");
        assert_eq!(a.schema_version().await.unwrap(), 8);
        assert_eq!(a.migrate().await.unwrap(), 0, "{on}: nothing left to apply");
        a.close().await;
        b.close().await;

        // A later Sparky's migration: this one refuses to start on it, and says why.
        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&db.url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time)
             VALUES (99, 'from the future', CURRENT_TIMESTAMP, TRUE, $1, 1)",
        )
        .bind(vec![0u8; 48])
        .execute(&raw)
        .await
        .unwrap();
        raw.close().await;
        let e = Store::open(&db.url).await.unwrap_err().to_string();
        assert!(e.contains("schema version 99, newer than this Sparky knows"), "{on}: {e}");
    }
}
