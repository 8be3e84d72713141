//! The rule graph: triage order, the trigger index, matcher semantics and the ruleset hash.

use chrono::Utc;
use sparky::compile::{Compiled, compile, read_sources};
use sparky::diagnostics::SourceFile;
use sparky::event::Event;
use sparky::graph::RuleGraph;
use sparky::ingest;
use std::sync::Arc;

fn crashloop(namespace: &str) -> Event {
    let body =
        std::fs::read_to_string("tests/fixtures/ingest/alertmanager/kube-prometheus_KubePodCrashLooping_firing.json")
            .unwrap()
            .replace("\"namespace\": \"payments\"", &format!("\"namespace\": \"{namespace}\""));
    ingest::normalize("alertmanager", &ingest::Headers::none(), body.as_bytes(), Utc::now()).unwrap().events.remove(0)
}

fn shipped() -> Compiled {
    compile(&read_sources(&["playbooks".into()]).unwrap())
}

fn ids(graph: &RuleGraph, refs: &[sparky::graph::index::TriggerRef]) -> Vec<String> {
    refs.iter().map(|r| graph.playbooks()[r.playbook].id.clone()).collect()
}

#[test]
fn the_index_finds_pb001_for_a_crash_loop_and_the_matchers_decide() {
    let graph = RuleGraph::build(&shipped());
    let prod = crashloop("prod");
    assert_eq!(ids(&graph, &graph.candidates(&prod)), ["PB-001"]);
    assert_eq!(ids(&graph, &graph.matching(&prod)), ["PB-001"]);
    // `payments` is neither prod nor staging: still a candidate by alertname, no longer a match.
    let other = crashloop("payments");
    assert_eq!(ids(&graph, &graph.candidates(&other)), ["PB-001"]);
    assert!(graph.matching(&other).is_empty());
}

#[test]
fn triage_order_is_priority_then_specificity_then_id() {
    let pb = |id: &str, prio: i64, matchers: &str| {
        SourceFile::new(
            format!("{id}.sparky"),
            format!(
                "/// t\nplaybook {id} \"t\" {{\n  status active\n  owner \"t\"\n  priority {prio}\n  on alert {{ {matchers} }}\n  l3 priority P3\n}}\n"
            ),
        )
    };
    let a = r#"labels.alertname == "X""#;
    let ab = r#"labels.alertname == "X"  labels.pod exists"#;
    let compiled = compile(&[pb("B", 0, a), pb("A", 0, a), pb("C", 0, ab), pb("D", 5, a)]);
    let graph = RuleGraph::build(&compiled);
    let order: Vec<&str> = graph.playbooks().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(order, ["D", "C", "A", "B"]);
}

#[test]
fn cost_does_not_grow_with_playbooks_that_cannot_match() {
    let sources: Vec<Arc<SourceFile>> = (0..500)
        .map(|i| {
            SourceFile::new(
                format!("g{i}.sparky"),
                format!(
                    "/// t\nplaybook G-{i} \"t\" {{\n  status active\n  owner \"t\"\n  on alert from alertmanager {{ labels.alertname == \"A{i}\"  labels.namespace =~ \"^prod\" }}\n  l3 priority P3\n}}\n"
                ),
            )
        })
        .collect();
    let compiled = compile(&sources);
    assert_eq!(compiled.errors(), 0);
    let graph = RuleGraph::build(&compiled);
    let mut event = crashloop("prod");
    event.labels.insert("alertname".into(), "A234".into());
    assert_eq!(ids(&graph, &graph.candidates(&event)), ["G-234"]);
    event.labels.insert("alertname".into(), "Nothing".into());
    assert!(graph.candidates(&event).is_empty());
}

#[test]
fn missing_fields_are_absent_not_empty() {
    let text = |matcher: &str| {
        format!(
            "/// t\nplaybook M \"t\" {{\n  status active\n  owner \"t\"\n  on alert {{ {matcher} }}\n  l3 priority P3\n}}\n"
        )
    };
    let event = crashloop("prod");
    for (matcher, expected) in [
        ("labels.team == \"x\"", false),
        ("labels.team != \"x\"", true),
        ("labels.team =~ \".*\"", false),
        ("labels.team !~ \"x\"", true),
        ("labels.team in [\"x\"]", false),
        ("labels.team not in [\"x\"]", true),
        ("labels.team exists", false),
        ("labels.team missing", true),
        ("labels.team > 1", false),
        ("labels.pod exists", true),
        ("payload.fingerprint == \"19f9209d83a3de2e\"", true),
        ("payload.labels.severity in [\"warning\", \"critical\"]", true),
        ("severity == \"warning\"", true),
        ("service == \"payments-api\"", true),
    ] {
        let compiled = compile(&[SourceFile::new("m.sparky", text(matcher))]);
        assert_eq!(compiled.errors(), 0, "{matcher}");
        let graph = RuleGraph::build(&compiled);
        assert_eq!(!graph.matching(&event).is_empty(), expected, "{matcher}");
    }
}

#[test]
fn the_ruleset_hash_follows_content_not_order() {
    let a = SourceFile::new("a.sparky", "list x = [\"a\"]\n");
    let b = SourceFile::new("b.sparky", "list y = [\"b\"]\n");
    let h1 = compile(&[a.clone(), b.clone()]).ruleset_hash;
    let h2 = compile(&[b.clone(), a.clone()]).ruleset_hash;
    assert_eq!(h1, h2);
    let b2 = SourceFile::new("b.sparky", "list y = [\"c\"]\n");
    assert_ne!(h1, compile(&[a, b2]).ruleset_hash);
    assert_eq!(h1.len(), 32);
}
