//! The store on SQLite: the inbox is durable, a delivery is accepted once, a decision moves
//! its event out of the inbox exactly once, incidents open and close by fingerprint.

#[path = "support/backends.rs"]
mod backends;
use backends::TestDb;

use chrono::Utc;
use sparky::event::Event;
use sparky::ingest::{self, Headers};
use sparky::store::Store;
use sparky::triage::{self, MemoryContext};

fn events(name: &str) -> Vec<Event> {
    let path = if name.contains('/') { name.to_string() } else { format!("tests/fixtures/ingest/alertmanager/{name}") };
    let body = std::fs::read(path).unwrap();
    ingest::normalize("alertmanager", &Headers::none(), &body, Utc::now()).unwrap().events
}

fn graph() -> sparky::graph::RuleGraph {
    let sources = sparky::compile::read_sources(&["playbooks".into()]).unwrap();
    sparky::graph::RuleGraph::build(&sparky::compile::compile(&sources))
}

#[tokio::test]
async fn the_inbox_survives_reopening_and_each_event_is_decided_once() {
    for on in backends::names("the_inbox_survives_reopening_and_each_event_is_decided_once") {
        eprintln!("the_inbox_survives_reopening_and_each_event_is_decided_once on {on}");
        let db = TestDb::on(on, "the_inbox_survives_reopening_and_each_event_is_decided_once").await;
        let url = db.url.clone();
        let store = Store::open(&url).await.unwrap();
        let evs = events("kube-prometheus_KubePodCrashLooping_firing_plus_resolved.json");
        let a = store.accept("alertmanager", "sha256:one", &evs, Utc::now()).await.unwrap();
        assert!(!a.duplicate);
        assert_eq!(a.seqs.len(), 2);
        let again = store.accept("alertmanager", "sha256:one", &evs, Utc::now()).await.unwrap();
        assert!(again.duplicate && again.seqs.is_empty());
        // The same key from another source is another delivery.
        assert!(!store.accept("grafana", "sha256:one", &[], Utc::now()).await.unwrap().duplicate);
        store.close().await;

        // Reopened: both events still wait, in arrival order, identical to what was accepted.
        let store = Store::open(&url).await.unwrap();
        let pending = store.pending(10).await.unwrap();
        assert_eq!(pending.iter().map(|p| p.seq).collect::<Vec<_>>(), a.seqs);
        assert_eq!(pending[0].event, evs[0]);
        assert_eq!(store.inbox_depth().await.unwrap(), 2);

        let g = graph();
        let p = &pending[0];
        let d = triage::decide(&p.event, &MemoryContext::default(), &g, Utc::now());
        let json = serde_json::json!({ "decision": d });
        assert!(store.record(p.seq, &p.event, &d, &json).await.unwrap());
        // A second record of the same event (a replay after a crash) changes nothing.
        assert!(!store.record(p.seq, &p.event, &d, &json).await.unwrap());
        assert_eq!(store.inbox_depth().await.unwrap(), 1);
        assert_eq!(store.decisions(10, None, None).await.unwrap().len(), 1);
        let ev = store.event(&p.event.id).await.unwrap().unwrap();
        assert_eq!(ev["state"], "decided");
        assert_eq!(ev["event"]["id"], p.event.id.as_str());
    }
}

#[tokio::test]
async fn a_key_is_a_duplicate_only_with_the_same_body() {
    use sparky::store::Delivery;
    for on in backends::names("a_key_is_a_duplicate_only_with_the_same_body") {
        let db = TestDb::on(on, "a_key_is_a_duplicate_only_with_the_same_body").await;
        let store = Store::open(&db.url).await.unwrap();
        let one = events("kube-prometheus_TargetDown_firing.json");
        let two = events("kube-prometheus_Watchdog_repeat.json");
        let (one, two) = (one.as_slice(), two.as_slice());
        let now = Utc::now();
        fn delivery<'a>(events: &'a [Event], hash: &'a str, now: chrono::DateTime<Utc>) -> Delivery<'a> {
            Delivery { source: "github", key: "delivery:d1", body_hash: Some(hash), events, received_at: now }
        }
        let (h1, h2) = ("1111111111111111aaaa", "2222222222222222bbbb");
        // In one group commit: the first body takes the key, another body under it is a
        // delivery of its own, and a retry of the first is a duplicate.
        let answers =
            store.accept_all(&[delivery(one, h1, now), delivery(two, h2, now), delivery(one, h1, now)]).await.unwrap();
        let shown: Vec<_> = answers.iter().map(|a| (a.key.as_str(), a.duplicate, a.key_reused, a.seqs.len())).collect();
        assert_eq!(
            shown,
            [
                ("delivery:d1", false, false, 1),
                ("delivery:d1#2222222222222222", false, true, 1),
                ("delivery:d1", true, false, 0),
            ],
            "{on}"
        );
        // Later retries of either body are duplicates, under the key each was stored under.
        let again = store.accept_all(&[delivery(two, h2, now), delivery(one, h1, now)]).await.unwrap();
        assert!(again.iter().all(|a| a.duplicate), "{on}: {again:?}");
        assert_eq!(again[0].key, "delivery:d1#2222222222222222", "{on}");
        // Without a body hash (Sparky's own deliveries), the key alone decides.
        assert!(store.accept("github", "delivery:d1", two, now).await.unwrap().duplicate, "{on}");
        assert_eq!(store.inbox_depth().await.unwrap(), 2, "{on}");
        store.close().await;
    }
}

/// A body-hash key: the same body is a duplicate only while nothing else of its fingerprints
/// came since; after another event of them (a resolution), it is the next occurrence.
#[tokio::test]
async fn the_same_body_after_another_event_of_its_fingerprint_is_accepted() {
    use sparky::store::Delivery;
    for on in backends::names("the_same_body_after_another_event_of_its_fingerprint_is_accepted") {
        let db = TestDb::on(on, "the_same_body_after_another_event_of_its_fingerprint_is_accepted").await;
        let store = Store::open(&db.url).await.unwrap();
        let firing = events("kube-prometheus_KubePodCrashLooping_firing.json");
        let resolved = events("kube-prometheus_KubePodCrashLooping_resolved.json");
        assert_eq!(firing[0].fingerprint, resolved[0].fingerprint);
        let now = Utc::now();
        let (hf, hr) = ("f".repeat(64), "e".repeat(64));
        let (kf, kr) = (format!("sha256:{hf}"), format!("sha256:{hr}"));
        let d = |events, key: &str, hash: &str| -> (Vec<Event>, String, String) { (events, key.into(), hash.into()) };
        let sequence = [
            d(firing.clone(), &kf, &hf),
            d(firing.clone(), &kf, &hf),
            d(resolved.clone(), &kr, &hr),
            d(firing.clone(), &kf, &hf),
            d(firing.clone(), &kf, &hf),
        ];
        let mut shown = Vec::new();
        for (events, key, hash) in &sequence {
            let delivery = Delivery { source: "alertmanager", key, body_hash: Some(hash), events, received_at: now };
            let a = store.accept_all(&[delivery]).await.unwrap().remove(0);
            shown.push((a.duplicate, a.key.split('@').nth(1).is_some()));
        }
        assert_eq!(
            shown,
            [(false, false), (true, false), (false, false), (false, true), (true, true)],
            "{on}: firing, its retry, resolved, the next firing (a key of its own), its retry"
        );
        assert_eq!(store.inbox_depth().await.unwrap(), 3, "{on}");
        store.close().await;
    }
}

#[tokio::test]
async fn incidents_open_attach_and_close_by_fingerprint() {
    for on in backends::names("incidents_open_attach_and_close_by_fingerprint") {
        eprintln!("incidents_open_attach_and_close_by_fingerprint on {on}");
        let db = TestDb::on(on, "incidents_open_attach_and_close_by_fingerprint").await;
        let store = Store::open(&db.url).await.unwrap();
        let g = graph();
        let firing = events("playbooks/events/KubePodCrashLooping_prod_firing.json").remove(0);
        let resolved = events("playbooks/events/KubePodCrashLooping_prod_resolved.json").remove(0);
        assert_eq!(firing.fingerprint, resolved.fingerprint);

        let mut seqs = Vec::new();
        for (i, e) in [&firing, &firing, &resolved].into_iter().enumerate() {
            seqs.extend(
                store.accept("alertmanager", &format!("k{i}"), std::slice::from_ref(e), Utc::now()).await.unwrap().seqs,
            );
        }
        let mut levels = Vec::new();
        for p in store.pending(10).await.unwrap() {
            let mut ctx = MemoryContext::default();
            if let Some(open) = store.open_incident(&p.event.fingerprint).await.unwrap() {
                ctx.open(open);
            }
            let d = triage::decide(&p.event, &ctx, &g, Utc::now());
            levels.push(d.level.as_str());
            store.record(p.seq, &p.event, &d, &serde_json::json!({})).await.unwrap();
        }
        // PB-001 knows nothing of the pod here: it escalates; the repeat is attached; the
        // resolution closes the incident.
        assert_eq!(levels, ["L3", "suppressed", "observe"]);
        assert!(store.open_incident(&firing.fingerprint).await.unwrap().is_none());
        let counts = store.event_counts().await.unwrap();
        assert_eq!(counts, vec![("attached".to_string(), 1), ("decided".to_string(), 2)]);
        assert_eq!(store.decisions(10, None, None).await.unwrap().len(), 2);
        assert_eq!(store.decisions(10, Some("PB-001"), Some("L3")).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn bad_store_urls_say_what_to_do() {
    let e = Store::open("postgres://u:pw@db/x").await.unwrap_err().to_string();
    assert!(e.contains("postgres://u:***@db/x") && !e.contains("pw"), "{e}");
    let e = Store::open("sqlite:///nonexistent-dir/x/y.db").await.unwrap_err().to_string();
    assert!(e.starts_with("cannot open the store"), "{e}");
}

#[tokio::test]
async fn deploys_runs_and_incident_history_are_kept_for_the_knowledge_graph() {
    for on in backends::names("deploys_runs_and_incident_history_are_kept_for_the_knowledge_graph") {
        eprintln!("deploys_runs_and_incident_history_are_kept_for_the_knowledge_graph on {on}");
        use sparky::knowledge::{DeployState, deploy_of};
        use sparky::store::Record;
        use sparky::triage::{Outcome, Run};
        let db = TestDb::on(on, "deploys_runs_and_incident_history_are_kept_for_the_knowledge_graph").await;
        let store = Store::open(&db.url).await.unwrap();
        let g = graph();
        let gh = |name: &str| {
            let body = std::fs::read(format!("tests/fixtures/ingest/github/{name}")).unwrap();
            let headers: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(
                &std::fs::read(format!("tests/fixtures/ingest/github/{}", name.replace(".json", ".headers.json")))
                    .unwrap(),
            )
            .unwrap();
            let headers = Headers::from_pairs(headers.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())));
            ingest::normalize("github", &headers, &body, Utc::now()).unwrap().events.remove(0)
        };
        // A deployment, then its status: one deploy, the earliest time, the latest state.
        let created = gh("deployment.created.json");
        let status = gh("deployment_status.created.json");
        let crash = events("playbooks/events/KubePodCrashLooping_prod_firing.json").remove(0);
        let all = [created.clone(), status.clone(), crash.clone()];
        let seqs = store.accept("github", "d1", &all, Utc::now()).await.unwrap().seqs;
        let now = Utc::now();
        let decisions: Vec<_> = all.iter().map(|e| triage::decide(e, &MemoryContext::default(), &g, now)).collect();
        let records: Vec<Record<'_>> = all
            .iter()
            .zip(&decisions)
            .zip(&seqs)
            .map(|((e, d), seq)| Record {
                seq: *seq,
                event: e,
                decision: d,
                json: "{}".into(),
                deploy: deploy_of(e, None),
                run: (e.kind == sparky::event::Kind::Alert).then(|| Run {
                    at: now,
                    keys: [("labels.pod".to_string(), "checkout-api-6f8d9c7b5-x2x9q".to_string())].into(),
                    outcome: Outcome::Pending,
                    incident: None,
                }),
                execution: None,
                package: None,
                fix: None,
                feedback: None,
                track: None,
                refired: None,
            })
            .collect();
        assert_eq!(store.record_all(&records).await.unwrap(), 3);

        let since = created.occurred_at - chrono::Duration::days(1);
        let deploys = store.deploys(&["Hello-World", "nothing-else"], since, 100).await.unwrap();
        assert_eq!(deploys.len(), 1, "{deploys:#?}");
        let d = &deploys[0];
        assert_eq!(d.state, DeployState::Succeeded);
        assert_eq!(d.at, created.occurred_at.min(status.occurred_at));
        assert_eq!(d.commit.as_deref(), Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e"));
        assert!(store.deploys(&["Hello-World"], Utc::now(), 100).await.unwrap().is_empty(), "older than the window");
        assert!(store.deploys(&[], since, 100).await.unwrap().is_empty());

        // The crash loop's decision opened an incident: it is history now, with its service.
        let history = store.history(&[crash.fingerprint.as_str()], now - chrono::Duration::days(1), 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].service.as_deref(), Some("checkout-api"));
        assert_eq!(history[0].level, decisions[2].level.as_str());
        assert_eq!(
            store.history(&[crash.fingerprint.as_str()], now - chrono::Duration::days(1), 0).await.unwrap().len(),
            0
        );

        // The run is kept with its keys, for cooldowns and rates across restarts.
        let playbook = decisions[2].playbook.clone().unwrap();
        let runs = store.runs(&[playbook.as_str()], now - chrono::Duration::hours(1)).await.unwrap();
        let kept = &runs[&playbook];
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].outcome, Outcome::Pending);
        assert_eq!(kept[0].keys["labels.pod"], "checkout-api-6f8d9c7b5-x2x9q");
    }
}
