//! The knowledge graph with real payloads: deploys read from GitHub and CDEvents webhooks,
//! correlated with the alert that follows; the built-in analyzer's rules one by one; the
//! store's deploys, history and runs.

use chrono::{DateTime, Duration, Utc};
use sparky::analysis::package::Package;
use sparky::analysis::{Input, builtin};
use sparky::event::Event;
use sparky::ingest::{self, Headers};
use sparky::knowledge::catalog::Catalog;
use sparky::knowledge::{Deploy, DeployState, Knowledge, PastIncident, deploy_of, resolve_service};
use sparky::script::ContextView;
use std::sync::Arc;

const PAYLOADS: &str = "../shared/payloads";

fn payload(source: &str, file: &str) -> Vec<u8> {
    let path = format!("{PAYLOADS}/{source}/{file}");
    match std::fs::read(&path) {
        Ok(b) => b,
        // The fixtures folder holds the same payloads, for a clone without ../shared.
        Err(_) => std::fs::read(format!("tests/fixtures/ingest/{source}/{file}")).unwrap(),
    }
}

fn headers(source: &str, file: &str) -> Headers {
    let sidecar = format!("tests/fixtures/ingest/{source}/{}", file.replace(".json", ".headers.json"));
    match std::fs::read_to_string(sidecar) {
        Ok(text) => {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
            Headers::from_pairs(map.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string())))
        }
        Err(_) => Headers::none(),
    }
}

fn normalize(source: &str, file: &str) -> Vec<Event> {
    let at: DateTime<Utc> = "2026-03-10T09:00:00Z".parse().unwrap();
    ingest::normalize(source, &headers(source, file), &payload(source, file), at).unwrap().events
}

/// The catalog the payloads' services belong to.
fn catalog() -> Arc<Catalog> {
    let text = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: hello-world
  annotations:
    github.com/project-slug: Codertocat/Hello-World
    sparky.dev/stateless: "true"
spec: {type: service, lifecycle: production, owner: group:team-hello}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: my-subject
  annotations:
    backstage.io/kubernetes-id: mySubject123
spec: {type: service, lifecycle: production, owner: group:team-hello, dependsOn: [component:hello-world]}
"#;
    let (catalog, diags) = Catalog::parse(&[("catalog-info.yaml".into(), text.into())]);
    assert!(diags.iter().all(|d| !d.is_error()), "{:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
    Arc::new(catalog)
}

/// A crash-loop alert for `service`'s pod that started at `at`.
fn alert(service: &str, at: DateTime<Utc>) -> Event {
    let text = std::fs::read_to_string("playbooks/events/KubePodCrashLooping_prod_firing.json")
        .unwrap()
        .replace("checkout-api", service)
        .replace("2026-03-10T08:14:03.352Z", &at.to_rfc3339());
    ingest::normalize("alertmanager", &Headers::none(), text.as_bytes(), at).unwrap().events.remove(0)
}

#[test]
fn github_deployment_and_status_make_one_deploy_of_the_catalog_service() {
    let mut kg = Knowledge::new(catalog(), Utc::now().timestamp_millis());
    let mut created = normalize("github", "deployment.created.json").remove(0);
    let mut status = normalize("github", "deployment_status.created.json").remove(0);
    // GitHub names the repository `Hello-World`: the catalog knows it, names ignoring case.
    let m = resolve_service(&mut created, &kg).unwrap();
    assert_eq!((m.name.as_str(), m.from.as_str(), m.known), ("hello-world", "sender", true));
    // A repository named otherwise maps through `github.com/project-slug`.
    let mut renamed = created.clone();
    renamed.service = Some("hw".into());
    let m = resolve_service(&mut renamed, &kg).unwrap();
    assert_eq!((m.name.as_str(), m.from.as_str()), ("hello-world", "label repository"));
    resolve_service(&mut status, &kg).unwrap();
    let first = deploy_of(&created, None).expect("a deployment is a deploy");
    assert_eq!(first.state, DeployState::Started);
    let second = deploy_of(&status, None).unwrap();
    assert_eq!(second.state, DeployState::Succeeded);
    assert_eq!(first.key, second.key, "a deployment and its statuses share a key");
    kg.add_deploy(first.clone());
    kg.add_deploy(second);
    let deploys: Vec<&Deploy> = kg.deploys_of("hello-world").collect();
    assert_eq!(deploys.len(), 1);
    let d = deploys[0];
    assert_eq!(d.state, DeployState::Succeeded);
    assert_eq!(d.at, first.at.min(d.at), "the deploy keeps its earliest time");
    assert_eq!(d.commit.as_deref(), Some("f95f852bd8fca8fcc58a9a2d6c842781e32a215e"));
    assert_eq!(d.environment.as_deref(), Some("production"));
    assert_eq!(d.repository.as_deref(), Some("Codertocat/Hello-World"));
}

#[test]
fn a_test_workflow_is_not_a_deploy() {
    let run = normalize("github", "workflow_run.completed.json").remove(0);
    assert!(deploy_of(&run, None).is_none(), "{}", run.summary);
}

#[test]
fn cdevents_service_deployed_is_a_deploy_by_alias() {
    let kg = Knowledge::new(catalog(), Utc::now().timestamp_millis());
    let mut e = normalize("cloudevents", "cdevents_service_deployed.json").remove(0);
    let m = resolve_service(&mut e, &kg).unwrap();
    assert_eq!((m.name.as_str(), m.from.as_str()), ("my-subject", "sender"));
    let d = deploy_of(&e, None).unwrap();
    assert_eq!(d.service, "my-subject");
    assert_eq!(d.state, DeployState::Succeeded);
    assert_eq!(d.environment.as_deref(), Some("test123"));
    assert!(d.version.as_deref().unwrap().starts_with("pkg:oci/myapp@"), "{:?}", d.version);
}

#[test]
fn a_crash_loop_after_a_real_deploy_blames_it_and_proposes_a_revert() {
    let mut status = normalize("github", "deployment_status.created.json").remove(0);
    let deployed_at = status.occurred_at;
    let now = deployed_at + Duration::minutes(10);
    let mut kg = Knowledge::new(catalog(), now.timestamp_millis());
    resolve_service(&mut status, &kg);
    kg.add_deploy(deploy_of(&status, None).unwrap());
    let mut crash = alert("hello-world", deployed_at + Duration::minutes(6));
    let m = resolve_service(&mut crash, &kg).unwrap();
    assert_eq!((m.name.as_str(), m.from.as_str()), ("hello-world", "label pod"));
    assert!(kg.deployed_within("hello-world", 30 * 60_000));
    let a = builtin::analyze(&Input { event: &crash, knowledge: &kg, now });
    assert_eq!(a.root_cause.as_deref(), Some("the deploy of master to hello-world"), "{a:#?}");
    assert_eq!(a.confidence, 92.0, "6 minutes, never seen before: {a:#?}");
    let revert = a.proposals.iter().find(|p| p.generator == "revert").unwrap();
    assert_eq!(revert.args["commit"], "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
    // Downstream of hello-world: my-subject depends on it.
    assert_eq!(a.impact.downstream, vec!["my-subject".to_string()]);

    // An hour and a half later, the same deploy is weak evidence.
    let late = alert("hello-world", deployed_at + Duration::minutes(90));
    let a = builtin::analyze(&Input { event: &late, knowledge: &kg, now: deployed_at + Duration::minutes(95) });
    assert_eq!(a.confidence, 52.0, "{a:#?}");
    // A problem that predates the deploy is not the deploy's doing.
    kg.add_incident(past(&crash.fingerprint, deployed_at - Duration::days(3), None, None));
    let a = builtin::analyze(&Input { event: &crash, knowledge: &kg, now });
    assert_eq!(a.proposals.iter().find(|p| p.generator == "revert").unwrap().confidence, 65.0, "{a:#?}");
}

fn past(fingerprint: &str, at: DateTime<Utc>, fix: Option<&str>, outcome: Option<&str>) -> PastIncident {
    PastIncident {
        key: format!("SPK-{}", at.timestamp()),
        fingerprint: fingerprint.into(),
        service: None,
        opened_at: at,
        closed_at: None,
        level: if fix.is_some() { "L2" } else { "L3" }.into(),
        playbook: None,
        summary: "before".into(),
        actions: Vec::new(),
        fix: fix.map(str::to_string),
        outcome: outcome.map(str::to_string),
        flapping: false,
    }
}

#[test]
fn an_oom_killed_pod_gets_a_memory_limit_proposal() {
    let now: DateTime<Utc> = "2026-03-10T08:20:00Z".parse().unwrap();
    let mut kg = Knowledge::new(catalog(), now.timestamp_millis());
    let mut pod = rhai::Map::new();
    pod.insert("last_termination_reason".into(), "OOMKilled".into());
    kg.add_pod("prod", "hello-world-6f8d9c7b5-x2x9q", pod);
    let mut crash = alert("hello-world", now - Duration::minutes(3));
    resolve_service(&mut crash, &kg);
    let a = builtin::analyze(&Input { event: &crash, knowledge: &kg, now });
    assert_eq!(a.root_cause.as_deref(), Some("hello-world runs out of memory"));
    assert_eq!((a.proposals[0].generator.as_str(), a.proposals[0].confidence), ("memory_limit", 88.0));
    assert_eq!(a.proposals[0].args["container"], "api");

    // Without the pod's state, the event's own reason says it (a Kubernetes `OOMKilling`
    // event from the node problem detector).
    let bare = Knowledge::new(catalog(), now.timestamp_millis());
    crash.labels.insert("reason".into(), "OOMKilling".into());
    let a = builtin::analyze(&Input { event: &crash, knowledge: &bare, now });
    assert_eq!((a.proposals[0].generator.as_str(), a.proposals[0].confidence), ("memory_limit", 85.0));
}

#[test]
fn saturation_with_headroom_proposes_more_replicas_and_none_at_the_ceiling() {
    let text = |replicas: u32, max: u32| {
        format!(
            r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: search-api
  annotations:
    sparky.dev/stateless: "true"
    sparky.dev/replicas: "{replicas}"
    sparky.dev/max-replicas: "{max}"
spec: {{type: service, lifecycle: production, owner: group:team-search}}
"#
        )
    };
    let now: DateTime<Utc> = "2026-03-10T08:20:00Z".parse().unwrap();
    let body = std::fs::read_to_string(
        "tests/fixtures/ingest/alertmanager/kube-prometheus_KubeHpaMaxedOut_plus_ReplicasMismatch_group.json",
    )
    .unwrap();
    let events = ingest::normalize("alertmanager", &Headers::none(), body.as_bytes(), now).unwrap().events;
    let mut hpa =
        events.into_iter().find(|e| e.labels.get("alertname").is_some_and(|a| a == "KubeHpaMaxedOut")).unwrap();
    hpa.service = Some("search-api".into());
    hpa.labels.insert("service".into(), "search-api".into());
    for (replicas, max, expect) in [(4, 10, Some(75.0)), (10, 10, None)] {
        let (catalog, _) = Catalog::parse(&[("c.yaml".into(), text(replicas, max))]);
        let kg = Knowledge::new(Arc::new(catalog), now.timestamp_millis());
        let a = builtin::analyze(&Input { event: &hpa, knowledge: &kg, now });
        let p = a.proposals.iter().find(|p| p.generator == "replicas_floor");
        assert_eq!(p.map(|p| p.confidence), expect, "{replicas}/{max}: {a:#?}");
        if let Some(p) = p {
            assert_eq!(p.args["replicas"], 6);
        }
    }
}

#[test]
fn a_recurring_problem_gets_the_fix_that_worked() {
    let now: DateTime<Utc> = "2026-03-10T08:20:00Z".parse().unwrap();
    let mut kg = Knowledge::new(catalog(), now.timestamp_millis());
    let crash = alert("hello-world", now - Duration::minutes(2));
    for (days, fix, outcome) in
        [(40, "memory_limit", "success"), (20, "memory_limit", "success"), (10, "timeout", "failure")]
    {
        kg.add_incident(past(&crash.fingerprint, now - Duration::days(days), Some(fix), Some(outcome)));
    }
    let a = builtin::analyze(&Input { event: &crash, knowledge: &kg, now });
    let p = a.proposals.iter().find(|p| p.generator == "memory_limit").expect("the fix that worked");
    assert_eq!(p.confidence, 80.0);
    assert!(a.proposals.iter().all(|p| p.generator != "timeout"), "a fix that failed is not proposed: {a:#?}");
    assert!(a.evidence.iter().any(|e| e.contains("worked 2 time(s)")), "{a:#?}");
    // Nothing at all: an honest "no evidence".
    let quiet = Knowledge::new(catalog(), now.timestamp_millis());
    let a = builtin::analyze(&Input { event: &alert("other", now), knowledge: &quiet, now });
    assert!(a.root_cause.is_none() && a.proposals.is_empty() && a.confidence == 0.0, "{a:#?}");
}

#[test]
fn the_context_package_holds_everything_known() {
    let mut status = normalize("github", "deployment_status.created.json").remove(0);
    let now = status.occurred_at + Duration::minutes(10);
    let mut kg = Knowledge::new(catalog(), now.timestamp_millis());
    resolve_service(&mut status, &kg);
    kg.add_deploy(deploy_of(&status, None).unwrap());
    let mut crash = alert("hello-world", status.occurred_at + Duration::minutes(6));
    resolve_service(&mut crash, &kg);
    kg.add_incident(past(&crash.fingerprint, now - Duration::days(5), Some("revert"), Some("success")));
    let analysis = builtin::analyze(&Input { event: &crash, knowledge: &kg, now });
    let p = Package::assemble(&crash, &kg, None, Some(&analysis), now);
    let service = p.service.as_ref().unwrap();
    assert!(service.known && service.catalog.is_some());
    assert_eq!(p.recent_deploys.len(), 1);
    assert_eq!(p.past_incidents.len(), 1);
    assert_eq!(p.downstream.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["my-subject"]);
    let md = p.to_markdown();
    for needle in [
        "### Recent deploys",
        "master",
        "### Has this happened before?",
        "fix `revert`, success",
        "downstream (1): my-subject",
        "proposal `revert`",
    ] {
        assert!(md.contains(needle), "missing {needle:?} in\n{md}");
    }
    let json = serde_json::to_value(&p).unwrap();
    for key in ["event", "links", "service", "recent_deploys", "past_incidents", "downstream", "upstream", "analysis"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
}

#[test]
fn bounded_walks_agree_with_the_full_ones() {
    let mut catalog = Catalog::default();
    // A hub with a diamond, a chain and a cycle below it.
    for (from, to) in
        [("b", "hub"), ("c", "hub"), ("d", "b"), ("d", "c"), ("e", "d"), ("f", "e"), ("e", "f"), ("g", "f")]
    {
        catalog.add_dependency(from, to);
    }
    for name in ["hub", "b", "d", "f", "nobody"] {
        let all = catalog.downstream(name);
        assert_eq!(catalog.downstream_count(name), all.len(), "{name}");
        for limit in [0, 1, 2, 3, 10] {
            let nearest = catalog.downstream_nearest(name, limit);
            assert_eq!(nearest, all.iter().take(limit).cloned().collect::<Vec<_>>(), "{name} {limit}");
        }
        let up = catalog.upstream(name);
        assert_eq!(catalog.upstream_nearest(name, 2), up.iter().take(2).cloned().collect::<Vec<_>>(), "{name}");
    }
    assert_eq!(catalog.downstream_count("hub"), 6);
}

#[test]
fn the_pagerduty_integration_key_is_kept_for_l3_and_shown_nowhere() {
    let (catalog, _) = Catalog::load(&["catalog".into()]).unwrap();
    let svc = catalog.service("checkout-api").unwrap();
    let key = svc.pagerduty_integration_key.clone().expect("the example catalog gives one");
    let shown = [
        serde_json::to_string(svc).unwrap(),
        format!("{:?}", svc.to_map()),
        format!("{:?}", Knowledge::new(Arc::new(catalog.clone()), 0).service("checkout-api")),
    ];
    for text in shown {
        assert!(!text.contains(&key), "the key shows in {text}");
        assert!(!text.contains("integration-key"), "{text}");
    }
}

#[test]
fn a_pod_alert_is_about_the_pod_not_the_exporter_that_reported_it() {
    let text = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: kube-state-metrics, annotations: {sparky.dev/stateless: "true"}}
spec: {type: service, lifecycle: production, owner: group:team-platform}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: ledger, annotations: {sparky.dev/stateless: "false"}}
spec: {type: service, lifecycle: production, owner: group:team-payments}
"#;
    let (catalog, _) = Catalog::parse(&[("c.yaml".into(), text.into())]);
    let kg = Knowledge::new(Arc::new(catalog), 0);
    let mut e = alert("ledger", Utc::now());
    e.labels.insert("service".into(), "kube-state-metrics".into());
    let m = resolve_service(&mut e, &kg).unwrap();
    assert_eq!((m.name.as_str(), m.from.as_str()), ("ledger", "label pod"));
    assert!(!kg.service("ledger").get("stateless").unwrap().as_bool().unwrap());
}
