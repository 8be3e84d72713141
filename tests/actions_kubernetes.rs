//! The four `k8s.*` actions: `plan()` refusals and text, and `apply()` through the real
//! Kubernetes client against the fake API server (`support/fake_kube.rs`), which records
//! every call.

#[path = "support/fake_kube.rs"]
mod fake_kube;

use fake_kube::FakeKube;
use serde_json::{Value, json};
use sparky::actions::{self, Applied, ApplyError, Args, Clients, Plan};

fn args(pairs: &[(&str, Value)]) -> Args {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn plan(action: &str, a: &[(&str, Value)]) -> Plan {
    let spec = actions::find(action).expect("the action exists");
    spec.plan(&args(a)).unwrap_or_else(|e| panic!("{action} should plan: {e}"))
}

async fn apply(p: &Plan, clients: &Clients) -> Result<Applied, ApplyError> {
    let spec = actions::find(&p.action).expect("the action exists");
    (spec.apply)(p, clients).await
}

async fn fake() -> (FakeKube, Clients) {
    let kube = FakeKube::start().await;
    let clients = Clients::new(kube.actions_config());
    (kube, clients)
}

fn pod_args(ns: &str, pod: &str) -> Vec<(&'static str, Value)> {
    vec![("namespace", json!(ns)), ("pod", json!(pod))]
}

fn scale_args(name: &str, step: i64, max: i64) -> Vec<(&'static str, Value)> {
    vec![("namespace", json!("prod")), ("name", json!(name)), ("step", json!(step)), ("max_replicas", json!(max))]
}

/// An action, the parameter naming its object, and its other arguments.
type Case = (&'static str, &'static str, Vec<(&'static str, Value)>);

fn refused(r: Result<Applied, ApplyError>) -> String {
    match r {
        Err(ApplyError::Refused(m)) => m,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn failed(r: Result<Applied, ApplyError>) -> String {
    match r {
        Err(ApplyError::Failed(m)) => m,
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn transient(r: Result<Applied, ApplyError>) -> String {
    match r {
        Err(ApplyError::Transient(m)) => m,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

// ---- plan ----------------------------------------------------------------------------------

#[test]
fn every_action_refuses_an_empty_missing_or_malformed_selector() {
    let cases: [Case; 4] = [
        ("k8s.delete_pod", "pod", vec![]),
        ("k8s.evict_pod", "pod", vec![]),
        ("k8s.rollout_restart", "name", vec![]),
        ("k8s.scale", "name", vec![("step", json!(1)), ("max_replicas", json!(5))]),
    ];
    for (action, name_param, extra) in cases {
        let spec = actions::find(action).unwrap();
        let with = |ns: Value, name: Option<Value>| {
            let mut a = args(&extra);
            a.insert("namespace".into(), ns);
            if let Some(n) = name {
                a.insert(name_param.into(), n);
            }
            spec.plan(&a)
        };
        assert!(with(json!("prod"), Some(json!("checkout-7d9"))).is_ok(), "{action}: a valid selector plans");
        for (ns, name, why) in [
            (json!(""), Some(json!("checkout-7d9")), "empty namespace"),
            (json!("   "), Some(json!("checkout-7d9")), "blank namespace"),
            (json!("Prod"), Some(json!("checkout-7d9")), "uppercase namespace"),
            (json!("prod"), Some(json!("")), "empty name"),
            (json!("prod"), None, "missing name"),
            (json!("prod"), Some(json!("checkout-*")), "a pattern"),
            (json!("prod"), Some(json!("Checkout_7d9")), "uppercase and underscore"),
            (json!("prod"), Some(json!("checkout/7d9")), "a slash"),
            (json!("prod"), Some(json!(" checkout")), "leading space"),
            (json!("prod"), Some(json!(42)), "not a string"),
        ] {
            let err = with(ns, name).expect_err(&format!("{action}: {why} must not plan"));
            assert!(err.0.starts_with(action), "{action}: {why}: {err}");
        }
    }
}

#[test]
fn delete_and_evict_plans_name_the_pod_and_say_what_they_do() {
    let p = plan(
        "k8s.delete_pod",
        &[("namespace", json!("prod")), ("pod", json!("checkout-7d9")), ("grace_period", json!("30s"))],
    );
    assert_eq!(p.target, "kubernetes:prod/pod/checkout-7d9");
    assert_eq!((p.integration.as_str(), p.mutating), ("kubernetes", true));
    assert_eq!(p.args["grace_period_seconds"], json!(30));
    assert!(
        p.steps[0].contains("delete pod `checkout-7d9` in namespace `prod`, giving it 30s to stop"),
        "{:?}",
        p.steps
    );

    let p = plan("k8s.evict_pod", &pod_args("prod", "checkout-7d9"));
    assert_eq!(p.target, "kubernetes:prod/pod/checkout-7d9");
    assert!(p.steps[0].contains("evict pod `checkout-7d9` in namespace `prod` through the Eviction API"));
    assert!(p.steps.iter().any(|s| s.contains("never deleted instead")), "{:?}", p.steps);

    for action in ["k8s.delete_pod", "k8s.evict_pod"] {
        let mut a = pod_args("prod", "checkout-7d9");
        a.push(("grace_period", json!("0s")));
        let err = actions::find(action).unwrap().plan(&args(&a)).unwrap_err();
        assert!(err.0.contains("`grace_period` is 0"), "{err}");
    }
}

#[test]
fn rollout_restart_plans_target_the_workload_by_kind() {
    let p = plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("name", json!("checkout"))]);
    assert_eq!(p.target, "kubernetes:prod/deployment/checkout");
    assert!(
        p.steps.iter().any(|s| s.contains("`kubectl.kubernetes.io/restartedAt` to the current time")),
        "{:?}",
        p.steps
    );
    assert!(p.steps.iter().any(|s| s.contains("paused")));

    let p = plan(
        "k8s.rollout_restart",
        &[
            ("namespace", json!("prod")),
            ("kind", json!("StatefulSet")),
            ("name", json!("db")),
            ("restarted_at", json!("2024-05-01T03:00:00Z")),
        ],
    );
    assert_eq!(p.target, "kubernetes:prod/statefulset/db");
    assert!(p.steps.iter().any(|s| s.contains("`2024-05-01T03:00:00Z`")), "{:?}", p.steps);

    let spec = actions::find("k8s.rollout_restart").unwrap();
    let base = [("namespace", json!("prod")), ("name", json!("checkout"))];
    let mut bad_kind = args(&base);
    bad_kind.insert("kind".into(), json!("ReplicaSet"));
    assert!(spec.plan(&bad_kind).unwrap_err().0.contains("must be one of Deployment, StatefulSet, DaemonSet"));
    let mut bad_time = args(&base);
    bad_time.insert("restarted_at".into(), json!("yesterday"));
    assert!(spec.plan(&bad_time).is_err());
}

#[test]
fn scale_plans_state_the_bounds_and_refuse_nonsense() {
    let p = plan("k8s.scale", &scale_args("checkout", 2, 20));
    assert_eq!(p.target, "kubernetes:prod/deployment/checkout");
    assert!(!p.args.contains_key("min_replicas"), "a floor left out stays out (apply reads 1): {:?}", p.args);
    assert!(p.steps.iter().any(|s| s.contains("raise it by 2, to at most 20")), "{:?}", p.steps);
    assert!(p.steps.iter().any(|s| s.contains("already 20 or more, change nothing and escalate")));

    let mut a = scale_args("checkout", 4, 40);
    a.push(("kind", json!("HorizontalPodAutoscaler")));
    let p = plan("k8s.scale", &a);
    assert_eq!(p.target, "kubernetes:prod/horizontalpodautoscaler/checkout");
    assert!(p.steps[0].contains("`maxReplicas`"), "{:?}", p.steps);

    let spec = actions::find("k8s.scale").unwrap();
    for (extra, why) in [
        (vec![("step", json!(0))], "step 0"),
        (vec![("step", json!(50))], "step out of range"),
        (vec![("step", json!(1.5))], "fractional step"),
        (vec![("max_replicas", json!(0))], "ceiling 0"),
        (vec![("min_replicas", json!(30))], "floor above ceiling"),
        (vec![("kind", json!("DaemonSet"))], "a kind that does not scale"),
    ] {
        let mut a = args(&scale_args("checkout", 2, 20));
        a.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        assert!(spec.plan(&a).is_err(), "{why} must not plan");
    }
    let mut no_ceiling = args(&scale_args("checkout", 2, 20));
    no_ceiling.remove("max_replicas");
    assert!(spec.plan(&no_ceiling).unwrap_err().0.contains("ceiling"));
}

// ---- k8s.delete_pod ------------------------------------------------------------------------

#[tokio::test]
async fn delete_pod_deletes_it_once_and_a_second_apply_finds_it_gone() {
    let (kube, clients) = fake().await;
    kube.add_pod("prod", "checkout-7d9");
    kube.add_pod("prod", "checkout-8e1");
    let p = plan(
        "k8s.delete_pod",
        &[("namespace", json!("prod")), ("pod", json!("checkout-7d9")), ("grace_period", json!("20s"))],
    );

    let done = apply(&p, &clients).await.expect("deleted");
    assert_eq!(done.summary, "deleted pod prod/checkout-7d9");
    assert_eq!(done.details["deleted"], json!(true));
    assert!(kube.pod("prod", "checkout-7d9").is_none());
    assert!(kube.pod("prod", "checkout-8e1").is_some(), "only the named pod is touched");
    let calls = kube.mutating_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("DELETE", "/api/v1/namespaces/prod/pods/checkout-7d9")
    );
    assert_eq!(calls[0].body["gracePeriodSeconds"], json!(20));

    let again = apply(&p, &clients).await.expect("a pod already gone is a success");
    assert_eq!(again.summary, "pod prod/checkout-7d9 was already gone");
    assert_eq!(again.details["already_gone"], json!(true));
}

#[tokio::test]
async fn delete_pod_errors_are_classified_for_the_executor() {
    let (kube, clients) = fake().await;
    kube.add_pod("prod", "checkout-7d9");
    let p = plan("k8s.delete_pod", &pod_args("prod", "checkout-7d9"));

    kube.fail_next(1, 500);
    let m = transient(apply(&p, &clients).await);
    assert!(m.contains("500"), "{m}");
    assert!(kube.pod("prod", "checkout-7d9").is_some());

    kube.fail_next(1, 409);
    transient(apply(&p, &clients).await);

    kube.fail_next(1, 403);
    let m = failed(apply(&p, &clients).await);
    assert!(m.contains("forbidden"), "{m}");
    assert!(m.contains(r#"resources ["pods"], verbs ["delete"]"#), "names the RBAC rule: {m}");
    assert!(m.contains("namespace `prod`"), "{m}");

    kube.fail_next(1, 401);
    assert!(failed(apply(&p, &clients).await).contains("credentials"));

    assert!(kube.pod("prod", "checkout-7d9").is_some(), "no fault deleted the pod");
    apply(&p, &clients).await.expect("once the faults pass, it works");
    assert!(kube.pod("prod", "checkout-7d9").is_none());
}

#[tokio::test]
async fn an_unreachable_api_server_is_transient() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut config = actions::ActionsConfig::default();
    config.kubernetes.url = Some(url);
    config.kubernetes.timeout = Some("2s".into());
    let clients = Clients::new(config);
    let m = transient(apply(&plan("k8s.delete_pod", &pod_args("prod", "checkout-7d9")), &clients).await);
    assert!(m.contains("no answer from the Kubernetes API"), "{m}");
}

// ---- k8s.evict_pod -------------------------------------------------------------------------

#[tokio::test]
async fn evict_pod_posts_a_policy_v1_eviction_and_is_idempotent() {
    let (kube, clients) = fake().await;
    kube.add_pod("prod", "checkout-7d9");
    let p = plan(
        "k8s.evict_pod",
        &[("namespace", json!("prod")), ("pod", json!("checkout-7d9")), ("grace_period", json!("10s"))],
    );

    let done = apply(&p, &clients).await.expect("evicted");
    assert_eq!(done.summary, "evicted pod prod/checkout-7d9");
    assert!(kube.pod("prod", "checkout-7d9").is_none());
    let calls = kube.mutating_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("POST", "/api/v1/namespaces/prod/pods/checkout-7d9/eviction")
    );
    assert_eq!(calls[0].body["apiVersion"], json!("policy/v1"));
    assert_eq!(calls[0].body["kind"], json!("Eviction"));
    assert_eq!(calls[0].body["metadata"], json!({ "name": "checkout-7d9", "namespace": "prod" }));
    assert_eq!(calls[0].body["deleteOptions"]["gracePeriodSeconds"], json!(10));

    let again = apply(&p, &clients).await.expect("a pod already gone is a success");
    assert_eq!(again.summary, "pod prod/checkout-7d9 was already gone");
    assert!(kube.mutating_calls().iter().all(|c| c.method != "DELETE"));
}

#[tokio::test]
async fn a_disruption_budget_refusal_is_final_and_never_becomes_a_delete() {
    let (kube, clients) = fake().await;
    kube.add_pod("prod", "checkout-7d9");
    kube.pdb_blocks("prod", "checkout-7d9");
    let p = plan("k8s.evict_pod", &pod_args("prod", "checkout-7d9"));

    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("would violate the pod's disruption budget"), "quotes the API: {m}");
    assert!(m.contains("checkout-7d9-pdb needs 2 healthy pods"), "quotes the cause: {m}");
    assert!(m.contains("was not deleted"), "{m}");
    assert!(kube.pod("prod", "checkout-7d9").is_some());
    let calls = kube.mutating_calls();
    assert_eq!(calls.len(), 1, "one eviction request, not retried, no delete: {calls:?}");
    assert_eq!(calls[0].method, "POST");
}

#[tokio::test]
async fn evict_pod_server_errors_are_transient_and_forbidden_names_the_subresource() {
    let (kube, clients) = fake().await;
    kube.add_pod("prod", "checkout-7d9");
    let p = plan("k8s.evict_pod", &pod_args("prod", "checkout-7d9"));
    kube.fail_next(1, 503);
    transient(apply(&p, &clients).await);
    kube.fail_next(1, 403);
    let m = failed(apply(&p, &clients).await);
    assert!(m.contains(r#"resources ["pods/eviction"], verbs ["create"]"#), "{m}");
    assert!(kube.pod("prod", "checkout-7d9").is_some());
    assert!(kube.mutating_calls().iter().all(|c| c.method == "POST"));
}

// ---- k8s.rollout_restart -------------------------------------------------------------------

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

fn restarted_at(kube: &FakeKube, plural: &str, name: &str) -> Value {
    kube.object(plural, "prod", name).unwrap()["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT].clone()
}

#[tokio::test]
async fn rollout_restart_sets_the_annotation_and_a_reapply_of_the_plan_changes_nothing() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 3);
    let mut p = plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("name", json!("checkout"))]);
    p.args.insert("restarted_at".into(), json!("2024-05-01T03:00:00Z"));

    let done = apply(&p, &clients).await.expect("restarted");
    assert_eq!(done.summary, "restarted deployment prod/checkout (restartedAt 2024-05-01T03:00:00Z)");
    assert_eq!(done.details["replicas"], json!(3));
    assert_eq!(restarted_at(&kube, "deployments", "checkout"), json!("2024-05-01T03:00:00Z"));
    let calls = kube.mutating_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        (calls[0].method.as_str(), calls[0].path.as_str()),
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/checkout")
    );
    assert_eq!(kube.replicas("prod", "checkout"), Some(3), "the patch touches only the template annotation");
    assert_eq!(
        kube.deployment("prod", "checkout").unwrap()["spec"]["template"]["spec"]["containers"][0]["name"],
        json!("app")
    );

    let again = apply(&p, &clients).await.expect("a re-apply succeeds");
    assert_eq!(again.details["already_restarted"], json!(true));
    assert_eq!(kube.mutating_calls().len(), 1, "the second apply of the same plan writes nothing");
}

#[tokio::test]
async fn rollout_restart_without_a_stable_time_uses_the_clock_and_handles_other_kinds() {
    let (kube, clients) = fake().await;
    kube.add_statefulset("prod", "db", 3);
    kube.add_daemonset("prod", "agent");
    for (kind, plural, name) in [("StatefulSet", "statefulsets", "db"), ("DaemonSet", "daemonsets", "agent")] {
        let p =
            plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("kind", json!(kind)), ("name", json!(name))]);
        apply(&p, &clients).await.expect("restarted");
        let at = restarted_at(&kube, plural, name);
        let at = at.as_str().expect("an annotation was set");
        assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
        assert!(
            kube.calls()
                .iter()
                .any(|c| c.method == "PATCH" && c.path == format!("/apis/apps/v1/namespaces/prod/{plural}/{name}"))
        );
    }
}

#[tokio::test]
async fn rollout_restart_refuses_a_paused_deployment_and_fails_on_a_missing_one() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 3);
    kube.set_paused("prod", "checkout", true);
    let p = plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("name", json!("checkout"))]);
    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("paused") && m.contains("kubectl rollout resume deployment/checkout -n prod"), "{m}");

    let p = plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("name", json!("ghost"))]);
    let m = failed(apply(&p, &clients).await);
    assert!(m.contains("no deployment `ghost` in namespace `prod`"), "{m}");
    assert!(kube.mutating_calls().is_empty(), "{:?}", kube.calls());

    kube.fail_next(1, 403);
    let p = plan("k8s.rollout_restart", &[("namespace", json!("prod")), ("name", json!("checkout"))]);
    let m = failed(apply(&p, &clients).await);
    assert!(m.contains(r#"apiGroups ["apps"], resources ["deployments"], verbs ["get"]"#), "{m}");
}

// ---- k8s.scale -----------------------------------------------------------------------------

#[tokio::test]
async fn scale_adds_the_step_through_the_scale_subresource() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 3);
    let done = apply(&plan("k8s.scale", &scale_args("checkout", 2, 20)), &clients).await.expect("scaled");
    assert_eq!(done.summary, "scaled deployment prod/checkout from 3 to 5 replicas");
    assert_eq!(done.details["replicas_before"], json!(3));
    assert_eq!(done.details["replicas_after"], json!(5));
    assert_eq!(kube.replicas("prod", "checkout"), Some(5));
    let calls = kube.calls();
    let paths: Vec<_> = calls.iter().map(|c| format!("{} {}", c.method, c.path)).collect();
    assert_eq!(
        paths,
        [
            "GET /apis/apps/v1/namespaces/prod/deployments/checkout/scale",
            "PATCH /apis/apps/v1/namespaces/prod/deployments/checkout/scale"
        ]
    );
    assert_eq!(calls[1].body["spec"], json!({ "replicas": 5 }));
    assert!(calls[1].body["metadata"]["resourceVersion"].is_string(), "the write is conditional on what was read");
}

#[tokio::test]
async fn scale_clamps_at_the_ceiling_then_refuses() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 19);
    let p = plan("k8s.scale", &scale_args("checkout", 2, 20));
    let done = apply(&p, &clients).await.expect("scaled to the ceiling");
    assert_eq!(done.details["replicas_after"], json!(20));
    assert_eq!(kube.replicas("prod", "checkout"), Some(20));

    kube.clear_calls();
    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("already at max_replicas 20"), "{m}");
    assert_eq!(kube.replicas("prod", "checkout"), Some(20));
    assert!(kube.mutating_calls().is_empty(), "{:?}", kube.calls());
}

#[tokio::test]
async fn scale_up_never_lowers_a_workload_already_above_the_ceiling() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 25);
    let m = refused(apply(&plan("k8s.scale", &scale_args("checkout", 2, 20)), &clients).await);
    assert!(m.contains("already above max_replicas 20"), "{m}");
    assert_eq!(kube.replicas("prod", "checkout"), Some(25));
    assert!(kube.mutating_calls().is_empty());
}

#[tokio::test]
async fn scale_down_stops_at_the_floor() {
    let (kube, clients) = fake().await;
    kube.add_statefulset("prod", "db", 3);
    let mut a = scale_args("db", -5, 10);
    a.push(("kind", json!("StatefulSet")));
    a.push(("min_replicas", json!(2)));
    let p = plan("k8s.scale", &a);
    let done = apply(&p, &clients).await.expect("scaled down");
    assert_eq!(done.details["replicas_after"], json!(2));
    assert_eq!(kube.object("statefulsets", "prod", "db").unwrap()["spec"]["replicas"], json!(2));
    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("already at min_replicas 2"), "{m}");

    // Without a floor, one replica is the floor: never scaled to zero.
    kube.add_deployment("prod", "web", 2);
    let p = plan("k8s.scale", &scale_args("web", -5, 10));
    assert_eq!(apply(&p, &clients).await.expect("scaled down").details["replicas_after"], json!(1));
    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("already at min_replicas 1"), "{m}");
    assert_eq!(kube.replicas("prod", "web"), Some(1));
}

#[tokio::test]
async fn scale_raises_an_autoscalers_max_replicas_within_the_ceiling() {
    let (kube, clients) = fake().await;
    kube.add_hpa("prod", "checkout", 2, 10);
    let mut a = scale_args("checkout", 4, 12);
    a.push(("kind", json!("HorizontalPodAutoscaler")));
    let p = plan("k8s.scale", &a);

    let done = apply(&p, &clients).await.expect("raised");
    assert_eq!(done.details["max_replicas_before"], json!(10));
    assert_eq!(done.details["max_replicas_after"], json!(12), "clamped at the ceiling");
    let hpa = kube.hpa("prod", "checkout").unwrap();
    assert_eq!(hpa["spec"]["maxReplicas"], json!(12));
    assert_eq!(hpa["spec"]["minReplicas"], json!(2), "the rest of the spec is kept");
    assert!(
        kube.calls().iter().any(|c| c.method == "PATCH"
            && c.path == "/apis/autoscaling/v2/namespaces/prod/horizontalpodautoscalers/checkout")
    );

    let m = refused(apply(&p, &clients).await);
    assert!(m.contains("maxReplicas 12, already at max_replicas 12"), "{m}");
}

#[tokio::test]
async fn scale_errors_are_classified() {
    let (kube, clients) = fake().await;
    kube.add_deployment("prod", "checkout", 3);
    let p = plan("k8s.scale", &scale_args("checkout", 2, 20));

    kube.fail_next(1, 500);
    transient(apply(&p, &clients).await);
    kube.fail_next(1, 403);
    let m = failed(apply(&p, &clients).await);
    assert!(m.contains(r#"apiGroups ["apps"], resources ["deployments/scale"], verbs ["get"]"#), "{m}");
    assert_eq!(kube.replicas("prod", "checkout"), Some(3));

    let m = failed(apply(&plan("k8s.scale", &scale_args("ghost", 2, 20)), &clients).await);
    assert!(m.contains("no deployment `ghost` in namespace `prod`"), "{m}");
    assert!(kube.mutating_calls().is_empty());
}
