//! `k8s.scale`: add replicas to a workload by a bounded step, never past a ceiling.
//!
//! A workload managed by a HorizontalPodAutoscaler cannot be scaled by setting its replicas:
//! the autoscaler sets them back within seconds. For those, scale the autoscaler itself
//! (`kind = "HorizontalPodAutoscaler"`): the step and the ceiling then apply to its
//! `maxReplicas`, and the autoscaler does the rest.
//!
//! The new value is `current + step`, clamped to `min_replicas..=max_replicas`. When that
//! changes nothing (already at the ceiling or the floor), or would move the wrong way (already
//! above the ceiling when scaling up), the action is refused so that the event escalates.
//! The write carries the `resourceVersion` read, so a concurrent change (another scaler, a
//! deploy) answers 409 and the retry starts from the new value.

use super::kubernetes::{self, Call};
use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_i64, arg_str,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

const NAME: &str = "k8s.scale";
const KINDS: &[&str] = &["Deployment", "StatefulSet", "HorizontalPodAutoscaler"];

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Change a workload's replicas (or an autoscaler's `maxReplicas`) by `step`, within `min_replicas..max_replicas`.",
    mutating: true,
    idempotent: false,
    blast_radius: Radius { count: RadiusCount::Param("step"), doc: "the number of replicas added or removed (`step`)" },
    params: &[
        ParamSpec::new("namespace", ParamType::Str, "Namespace of the workload.").text(TextKind::KubernetesNamespace),
        ParamSpec::new("kind", ParamType::Str, "What to scale: `Deployment` (default), `StatefulSet`, or `HorizontalPodAutoscaler` (raises its `maxReplicas`).").optional().literal().choices(KINDS),
        ParamSpec::new("name", ParamType::Str, "Name of the workload or autoscaler, e.g. `labels.deployment` or `labels.horizontalpodautoscaler`.").target().text(TextKind::KubernetesName),
        ParamSpec::new("step", ParamType::Int, "Replicas to add (negative to remove) in one run.").literal().range(-10.0, 10.0),
        ParamSpec::new("max_replicas", ParamType::Int, "Ceiling: the action never sets more replicas (or a higher `maxReplicas`) than this.").literal().range(1.0, 1000.0),
        ParamSpec::new("min_replicas", ParamType::Int, "Floor for scaling down; 1 when left out.").optional().literal().range(0.0, 1000.0),
    ],
    examples: &[
        "k8s.scale(namespace = labels.namespace, name = labels.deployment, step = 2, max_replicas = 20)",
        "k8s.scale(kind = \"HorizontalPodAutoscaler\", namespace = labels.namespace, name = labels.horizontalpodautoscaler, step = 4, max_replicas = 40)",
    ],
    integration: "kubernetes",
    plan,
    apply,
};

fn int(args: &Args, name: &str, range: (i64, i64)) -> Result<Option<i64>, PlanError> {
    let Some(v) = args.get(name) else { return Ok(None) };
    match v.as_i64() {
        Some(n) if (range.0..=range.1).contains(&n) => Ok(Some(n)),
        _ => Err(PlanError(format!(
            "{NAME}: `{name}` is `{v}`; it must be a whole number from {} to {}",
            range.0, range.1
        ))),
    }
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let ns = kubernetes::namespace(args, NAME)?;
    let kind = kubernetes::kind(args, KINDS, NAME)?;
    let name = kubernetes::object_name(args, "name", NAME)?;
    let step = int(args, "step", (-10, 10))?.ok_or_else(|| PlanError(format!("{NAME}: `step` is missing")))?;
    if step == 0 {
        return Err(PlanError(format!("{NAME}: `step` is 0, so there is nothing to change")));
    }
    let max = int(args, "max_replicas", (1, 1000))?
        .ok_or_else(|| PlanError(format!("{NAME}: `max_replicas` is missing; a scale needs a ceiling")))?;
    let given_min = int(args, "min_replicas", (0, 1000))?;
    let min = given_min.unwrap_or(1);
    if min > max {
        return Err(PlanError(format!("{NAME}: `min_replicas` {min} is above `max_replicas` {max}")));
    }
    let lower = kind.to_ascii_lowercase();
    let (field, how) = if kind == "HorizontalPodAutoscaler" {
        ("`maxReplicas`", "scale the autoscaler's ceiling")
    } else {
        ("the replicas", "use the scale subresource")
    };
    let change = if step > 0 {
        format!("raise it by {step}, to at most {max} (`max_replicas`)")
    } else {
        format!("lower it by {}, to at least {min} (`min_replicas`)", -step)
    };
    let stop = if step > 0 {
        format!("if it is already {max} or more, change nothing and escalate")
    } else {
        format!("if it is already {min} or fewer, change nothing and escalate")
    };
    Ok(Plan {
        action: NAME.into(),
        target: kubernetes::target(ns, kind, name),
        steps: vec![format!("read {field} of {lower} `{name}` in namespace `{ns}` ({how})"), stop, change],
        // The plan repeats the playbook's arguments (a floor left out stays out: `apply` reads 1).
        args: Args::from_iter(
            [
                ("namespace", json!(ns)),
                ("kind", json!(kind)),
                ("name", json!(name)),
                ("step", json!(step)),
                ("max_replicas", json!(max)),
            ]
            .into_iter()
            .chain(given_min.map(|m| ("min_replicas", json!(m))))
            .map(|(k, v)| (k.to_string(), v)),
        ),
        integration: "kubernetes".into(),
        mutating: true,
    })
}

/// The new value, or why there is none: `what` is `deployment prod/checkout`, `field` what
/// is counted (`replicas`, `maxReplicas`).
fn next(current: i64, step: i64, floor: i64, ceiling: i64, what: &str, field: &str) -> Result<i64, ApplyError> {
    if step > 0 {
        if current >= ceiling {
            let where_ = if current == ceiling { "already at" } else { "already above" };
            return Err(ApplyError::Refused(format!(
                "{what} has {field} {current}, {where_} max_replicas {ceiling}; not scaled, a person must decide \
                 whether to raise the ceiling"
            )));
        }
        Ok((current + step).min(ceiling))
    } else {
        if current <= floor {
            let where_ = if current == floor { "already at" } else { "already below" };
            return Err(ApplyError::Refused(format!(
                "{what} has {field} {current}, {where_} min_replicas {floor}; not scaled down"
            )));
        }
        Ok((current + step).max(floor))
    }
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let a = &plan.args;
        let ns = arg_str(a, "namespace").unwrap_or_default();
        let name = arg_str(a, "name").unwrap_or_default();
        let kind = arg_str(a, "kind").unwrap_or("Deployment");
        let (Some(step), Some(max)) = (arg_i64(a, "step"), arg_i64(a, "max_replicas")) else {
            return Err(ApplyError::Failed(format!("{NAME}: the plan has no `step` or `max_replicas`")));
        };
        let min = arg_i64(a, "min_replicas").unwrap_or(1);
        let client = kubernetes::client(clients).await?;
        let what = format!("{} {ns}/{name}", kind.to_ascii_lowercase());
        if kind == "HorizontalPodAutoscaler" {
            let ar = ApiResource::erase::<HorizontalPodAutoscaler>(&());
            let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &ar);
            let call =
                |verb| Call { verb, resource: "horizontalpodautoscalers", group: "autoscaling", namespace: ns, name };
            let hpa = api.get(name).await.map_err(|e| kubernetes::api_error(&e, &call("get")))?;
            let Some(current) = hpa.data["spec"]["maxReplicas"].as_i64() else {
                return Err(ApplyError::Failed(format!("{what} has no `spec.maxReplicas`")));
            };
            // The autoscaler rejects a maxReplicas below its minReplicas.
            let own_min = hpa.data["spec"]["minReplicas"].as_i64().unwrap_or(1);
            let new = next(current, step, min.max(own_min).max(1), max, &what, "maxReplicas")?;
            let patch = json!({
                "metadata": { "resourceVersion": hpa.metadata.resource_version },
                "spec": { "maxReplicas": new },
            });
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| kubernetes::api_error(&e, &call("patch")))?;
            return Ok(Applied {
                summary: format!("set maxReplicas of {what} from {current} to {new}"),
                details: json!({ "kind": kind, "namespace": ns, "name": name,
                                 "max_replicas_before": current, "max_replicas_after": new }),
            });
        }
        let (ar, resource) = if kind == "StatefulSet" {
            (ApiResource::erase::<StatefulSet>(&()), "statefulsets/scale")
        } else {
            (ApiResource::erase::<Deployment>(&()), "deployments/scale")
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &ar);
        let call = |verb| Call { verb, resource, group: "apps", namespace: ns, name };
        let scale = api.get_scale(name).await.map_err(|e| kubernetes::api_error(&e, &call("get")))?;
        let current = i64::from(scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        let new = next(current, step, min, max, &what, "replicas")?;
        let patch = json!({
            "metadata": { "resourceVersion": scale.metadata.resource_version },
            "spec": { "replicas": new },
        });
        api.patch_scale(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| kubernetes::api_error(&e, &call("patch")))?;
        Ok(Applied {
            summary: format!("scaled {what} from {current} to {new} replicas"),
            details: json!({ "kind": kind, "namespace": ns, "name": name,
                             "replicas_before": current, "replicas_after": new }),
        })
    })
}
