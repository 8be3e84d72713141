//! `k8s.rollout_restart`: restart a workload's pods the way `kubectl rollout restart` does.
//!
//! It sets the pod template annotation `kubectl.kubernetes.io/restartedAt`, and the
//! controller replaces the pods under the workload's own rollout strategy. The timestamp is
//! `restarted_at` from the plan's arguments when present (the executor sets it, stable for one
//! execution, so that a retried apply of the same plan finds the annotation already set and
//! changes nothing), otherwise the current time. A paused Deployment is refused: the restart
//! would not roll out until someone resumes it.

use super::kubernetes::{self, Call};
use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_str,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

pub(super) const NAME: &str = "k8s.rollout_restart";
const KINDS: &[&str] = &["Deployment", "StatefulSet", "DaemonSet"];
/// The annotation `kubectl rollout restart` sets.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Restart a Deployment's (or StatefulSet's, DaemonSet's) pods as `kubectl rollout restart` does, under its own rollout strategy.",
    mutating: true,
    idempotent: true,
    blast_radius: Radius {
        count: RadiusCount::Fixed(1),
        doc: "1 workload (all its pods are replaced, one surge at a time)",
    },
    params: &[
        ParamSpec::new("namespace", ParamType::Str, "Namespace of the workload, usually `labels.namespace`.")
            .text(TextKind::KubernetesNamespace),
        ParamSpec::new(
            "kind",
            ParamType::Str,
            "What to restart: `Deployment` (default), `StatefulSet` or `DaemonSet`.",
        )
        .optional()
        .literal()
        .choices(KINDS),
        ParamSpec::new(
            "name",
            ParamType::Str,
            "Name of the workload, e.g. `labels.deployment` or `labels.statefulset`.",
        )
        .target()
        .text(TextKind::KubernetesName),
    ],
    examples: &[
        "k8s.rollout_restart(namespace = labels.namespace, name = labels.deployment)",
        "k8s.rollout_restart(kind = \"StatefulSet\", namespace = labels.namespace, name = labels.statefulset)",
    ],
    integration: "kubernetes",
    plan,
    apply,
};

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let ns = kubernetes::namespace(args, NAME)?;
    let kind = kubernetes::kind(args, KINDS, NAME)?;
    let name = kubernetes::object_name(args, "name", NAME)?;
    let mut normalized = Args::from([
        ("namespace".to_string(), json!(ns)),
        ("kind".to_string(), json!(kind)),
        ("name".to_string(), json!(name)),
    ]);
    let at = match args.get("restarted_at") {
        None => "the current time".to_string(),
        Some(v) => {
            let text = v.as_str().unwrap_or_default();
            if chrono::DateTime::parse_from_rfc3339(text).is_err() {
                return Err(PlanError(format!(
                    "{NAME}: `restarted_at` is `{v}`, not an RFC 3339 time such as `2024-05-01T03:00:00Z`"
                )));
            }
            normalized.insert("restarted_at".into(), json!(text));
            format!("`{text}`")
        }
    };
    let lower = kind.to_ascii_lowercase();
    let mut steps = vec![
        format!("read {lower} `{name}` in namespace `{ns}`"),
        format!(
            "set its pod template annotation `{RESTARTED_AT}` to {at}: the controller replaces every pod under \
             the {lower}'s rollout strategy"
        ),
        "if the annotation already has that value, change nothing".into(),
    ];
    if kind == "Deployment" {
        steps.insert(1, "if the deployment is paused, stop and escalate".into());
    }
    Ok(Plan {
        action: NAME.into(),
        target: kubernetes::target(ns, kind, name),
        steps,
        args: normalized,
        integration: "kubernetes".into(),
        mutating: true,
    })
}

fn resource(kind: &str) -> (ApiResource, &'static str) {
    match kind {
        "StatefulSet" => (ApiResource::erase::<StatefulSet>(&()), "statefulsets"),
        "DaemonSet" => (ApiResource::erase::<DaemonSet>(&()), "daemonsets"),
        _ => (ApiResource::erase::<Deployment>(&()), "deployments"),
    }
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let ns = arg_str(&plan.args, "namespace").unwrap_or_default();
        let name = arg_str(&plan.args, "name").unwrap_or_default();
        let kind = arg_str(&plan.args, "kind").unwrap_or("Deployment");
        let at = arg_str(&plan.args, "restarted_at")
            .map_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), str::to_string);
        let (ar, plural) = resource(kind);
        let api: Api<DynamicObject> = Api::namespaced_with(kubernetes::client(clients).await?, ns, &ar);
        let call = |verb| Call { verb, resource: plural, group: "apps", namespace: ns, name };
        let lower = kind.to_ascii_lowercase();

        let current = api.get(name).await.map_err(|e| kubernetes::api_error(&e, &call("get")))?;
        let spec = &current.data["spec"];
        if kind == "Deployment" && spec["paused"].as_bool() == Some(true) {
            return Err(ApplyError::Refused(format!(
                "deployment {ns}/{name} is paused, so a restart would not roll out; resume it first \
                 (`kubectl rollout resume deployment/{name} -n {ns}`) or restart it by hand"
            )));
        }
        let before = spec["template"]["metadata"]["annotations"][RESTARTED_AT].as_str().map(str::to_string);
        let replicas = spec["replicas"].as_i64();
        if before.as_deref() == Some(at.as_str()) {
            return Ok(Applied {
                summary: format!("{lower} {ns}/{name} was already restarted at {at}; nothing changed"),
                details: json!({ "kind": kind, "namespace": ns, "name": name, "restarted_at": at,
                                 "already_restarted": true, "replicas": replicas }),
            });
        }
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: at } } } } });
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| kubernetes::api_error(&e, &call("patch")))?;
        Ok(Applied {
            summary: format!("restarted {lower} {ns}/{name} (restartedAt {at})"),
            details: json!({ "kind": kind, "namespace": ns, "name": name, "restarted_at": at,
                             "previous_restarted_at": before, "already_restarted": false, "replicas": replicas }),
        })
    })
}
