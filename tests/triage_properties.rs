//! `decide` is total and deterministic: over generated events and contexts it never panics,
//! the same inputs give the same decision, and the trigger index never changes a decision
//! (deciding from the index's candidates equals deciding over every playbook).

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use sparky::compile::{compile, read_sources};
use sparky::diagnostics::SourceFile;
use sparky::event::{Event, Kind, Severity, Status};
use sparky::graph::RuleGraph;
use sparky::triage::{
    Analysis, Decision, Level, MemoryContext, OpenIncident, Options, Outcome, Pause, Proposal, Run, decide, decide_with,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Playbooks meant to be awkward: conditions that error, hit limits, read the payload, read
/// missing fields; numeric and regex matchers; every guard; a schedule; a disabled one.
const EXTRA: &str = r#"
/// t
playbook X-ERR "condition errors" {
  status active
  owner "t"
  priority 500
  on alert { labels.alertname in ["A", "B"] }
  when { event.labels.missing.len() > 2 }
  l3 priority P1
}
/// t
playbook X-LIMIT "condition loops" {
  status active
  owner "t"
  priority 400
  on alert { labels.alertname == "B" }
  when { let n = 0; for i in 0..1000000 { n += 1; } n > 5 }
  l3 priority P1
}
/// t
playbook X-PAYLOAD "reads the payload" {
  status active
  owner "t"
  priority 300
  on any { labels.alertname == "C" }
  when { event.payload.value > 3 }
  l1 "restart" {
    guard success_rate >= 90% over 1d min 2 runs
    guard blast_radius <= 1
    guard cooldown 10m per labels.pod
    guard at_most 3 per 1h
    do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)
    verify resolved within 5m
  }
  l2 { fix memory_limit(factor = 1.5, max = "4Gi") min_confidence 70% }
  l3 priority P2
}
/// t
playbook X-NUM "numeric" {
  status draft
  owner "t"
  on alert { labels.value > 10  labels.pod =~ "^p" }
  l1 "scale" {
    guard cooldown 5m
    guard at_most 2 per 1h
    do k8s.scale(namespace = labels.namespace, name = labels.pod, step = 2, max_replicas = 10)
    verify resolved within 5m
  }
  l3 priority P4
}
/// t
playbook X-OFF "disabled" {
  status disabled
  owner "t"
  on any
  l3 priority P1
}
"#;

fn graph() -> &'static RuleGraph {
    static GRAPH: OnceLock<RuleGraph> = OnceLock::new();
    GRAPH.get_or_init(|| {
        let mut sources = read_sources(&["playbooks".into()]).unwrap();
        // One playbook per file.
        for (i, text) in EXTRA.split("/// t\n").filter(|t| !t.trim().is_empty()).enumerate() {
            sources.push(SourceFile::new(format!("extra{i}.sparky"), format!("/// t\n{text}")));
        }
        let compiled = compile(&sources);
        assert_eq!(compiled.errors(), 0, "{:#?}", compiled.diagnostics);
        RuleGraph::build(&compiled)
    })
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 8, 0, 0).unwrap()
}

const ALERTNAMES: &[&str] =
    &["KubePodCrashLooping", "KubeHpaMaxedOut", "CacheDataInconsistency", "A", "B", "C", "Watchdog", ""];
const NAMESPACES: &[&str] = &["prod", "staging", "payments", "prod-eu", ""];

fn event_strategy() -> impl Strategy<Value = Event> {
    (
        (
            0usize..ALERTNAMES.len(),
            0usize..NAMESPACES.len(),
            proptest::option::of(prop_oneof![
                9 => "[a-z]([a-z0-9-]{0,10}[a-z0-9])?",
                // Not a Kubernetes name: the plan refuses it.
                1 => "-[a-z0-9-]{0,4}",
            ]),
        ),
        (0usize..6, 0usize..4, 0usize..4, 0usize..3),
        (proptest::option::of("-?[0-9]{1,3}(\\.[0-9])?|x"), proptest::option::of("[a-z]{1,6}"), any::<i64>()),
        (0i64..7200, proptest::collection::btree_map("[a-z_.]{1,8}", "[ -~]{0,8}", 0..4)),
    )
        .prop_map(|((a, ns, pod), (kind, status, sev, fp), (value, user, payload), (offset, extra))| {
            let mut labels: BTreeMap<String, String> = extra;
            if !ALERTNAMES[a].is_empty() {
                labels.insert("alertname".into(), ALERTNAMES[a].into());
            }
            if !NAMESPACES[ns].is_empty() {
                labels.insert("namespace".into(), NAMESPACES[ns].into());
            }
            if let Some(p) = pod {
                labels.insert("pod".into(), p.clone());
                labels.insert("horizontalpodautoscaler".into(), p);
            }
            if let Some(v) = value {
                labels.insert("value".into(), v);
            }
            if let Some(u) = user {
                labels.insert("user_id".into(), u);
            }
            let at = t0() + Duration::seconds(offset);
            Event {
                id: format!("e{offset}"),
                source: ["alertmanager", "grafana"][offset as usize % 2].into(),
                kind: [Kind::Alert, Kind::Incident, Kind::Deploy, Kind::Change, Kind::K8sEvent, Kind::Schedule][kind]
                    .clone(),
                status: [Status::Firing, Status::Resolved, Status::Acknowledged, Status::Info][status],
                fingerprint: format!("alertmanager/fp{fp}"),
                service: labels.get("pod").cloned(),
                severity: [Severity::Info, Severity::Warning, Severity::High, Severity::Critical][sev],
                summary: "generated".into(),
                labels,
                annotations: BTreeMap::new(),
                links: vec![],
                occurred_at: at,
                received_at: at,
                delivery_id: None,
                payload: serde_json::json!({ "value": payload % 10, "nested": { "list": [1, 2, 3] } }),
            }
        })
}

fn context_strategy() -> impl Strategy<Value = MemoryContext> {
    (
        proptest::collection::vec(
            (
                0usize..5,
                0i64..7200,
                // Mostly successes, so that trust is earned often enough to reach `apply`.
                prop_oneof![5 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize), 1 => Just(3usize)],
                proptest::option::of("[a-z]{1,3}"),
            ),
            0..12,
        ),
        proptest::option::of(0usize..3),
        any::<bool>(),
        proptest::option::of((0usize..4, 0.0f64..100.0)),
    )
        .prop_map(|(runs, open, paused, proposal)| {
            let mut ctx = MemoryContext::default();
            let ids = ["PB-001", "PB-002", "PB-004", "X-PAYLOAD", "X-NUM"];
            for (pb, ago, outcome, pod) in runs {
                let keys = pod.map(|p| BTreeMap::from([("labels.pod".to_string(), p)])).unwrap_or_default();
                let outcome = [Outcome::Success, Outcome::Failure, Outcome::Pending, Outcome::Planned][outcome];
                ctx.add_run(ids[pb], Run { at: t0() - Duration::seconds(ago), keys, outcome, incident: None });
            }
            if let Some(fp) = open {
                ctx.open(OpenIncident {
                    key: "SPK-open".into(),
                    fingerprint: format!("alertmanager/fp{fp}"),
                    opened_at: t0() - Duration::minutes(3),
                    level: "L3".into(),
                    playbook: None,
                });
            }
            if paused {
                ctx.pause(Pause { playbook: Some("X-PAYLOAD".into()), reason: "testing".into(), ..Pause::default() });
            }
            if let Some((g, confidence)) = proposal {
                let generator = ["memory_limit", "revert", "timeout", "bogus"][g].to_string();
                let summary = "proposed".into();
                ctx.set_analysis(Some(Analysis {
                    summary: String::new(),
                    proposals: vec![Proposal { generator, confidence, summary, args: BTreeMap::new() }],
                    ..Default::default()
                }));
            }
            ctx
        })
}

fn without_trace(d: &Decision) -> Decision {
    let mut d = d.clone();
    d.trace.clear();
    d
}

/// A decision as text, with a runaway condition's stop made one: its operation limit stops
/// it, or on a loaded machine the wall-clock deadline comes first. Which one is timing, not a
/// difference in the decision (both make the playbook not match).
fn canonical(d: &Decision) -> String {
    format!("{d:?}")
        .replace("the condition ran past its 50 ms deadline", "the condition was stopped")
        .replace("the condition exceeded a limit: more than 200000 operations", "the condition was stopped")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decide_is_total_and_deterministic(event in event_strategy(), ctx in context_strategy(), later in 0i64..3600) {
        let graph = graph();
        let now = event.received_at + Duration::seconds(later);
        let a = decide(&event, &ctx, graph, now);
        let b = decide(&event, &ctx, graph, now);
        prop_assert_eq!(canonical(&a), canonical(&b));
        let all = decide_with(&event, &ctx, graph, now, Options { explain_all: true });
        prop_assert_eq!(canonical(&without_trace(&a)), canonical(&without_trace(&all)));
        // The procedure's invariants.
        if event.status != Status::Firing && event.status != Status::Info {
            prop_assert!(matches!(a.level, Level::Observe), "{:?} never remediates: {:?}", event.status, a.level);
        }
        if a.level == Level::L1 {
            prop_assert!(a.mode.is_some() && !a.actions.is_empty());
        }
        if a.level == Level::L3 || a.level == Level::L2 {
            prop_assert!(a.escalation.is_some());
        }
        prop_assert!(!a.reasons.is_empty());
        prop_assert_eq!(&a.ruleset, graph.hash());
        // Disabled playbooks never decide.
        prop_assert_ne!(a.playbook.as_deref(), Some("X-OFF"));
    }
}

/// The generators reach every outcome, so the property above is not vacuous.
#[test]
fn generated_inputs_reach_every_level_and_a_condition_error() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    let mut condition_errors = 0;
    for _ in 0..3000 {
        let event = event_strategy().new_tree(&mut runner).unwrap().current();
        let ctx = context_strategy().new_tree(&mut runner).unwrap().current();
        let d = decide(&event, &ctx, graph(), event.received_at);
        seen.insert(format!("{}{}", d.level, d.mode.map(|m| format!(" {}", m.as_str())).unwrap_or_default()));
        condition_errors += d.trace.iter().filter(|t| t.condition.as_ref().is_some_and(|c| c.error.is_some())).count();
    }
    for level in ["L1 apply", "L1 plan_only", "L2", "L3", "observe", "suppressed"] {
        assert!(seen.contains(level), "never reached {level}: {seen:?}");
    }
    assert!(condition_errors > 0);
}
