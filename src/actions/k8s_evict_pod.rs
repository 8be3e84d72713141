//! `k8s.evict_pod`: evict one pod through the Eviction API, which honours its
//! PodDisruptionBudget.
//!
//! When the budget says no (the API answers 429), the action is refused and the event
//! escalated: it never falls back to a delete, which would bypass the budget. A pod that is
//! already gone (404) is a success.

use super::kubernetes::{self, Call};
use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_i64, arg_str,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

const NAME: &str = "k8s.evict_pod";

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Evict one pod, respecting its PodDisruptionBudget; refused (never forced) when the budget does not allow it.",
    mutating: true,
    idempotent: true,
    blast_radius: Radius { count: RadiusCount::Fixed(1), doc: "1: exactly one pod" },
    params: &[
        ParamSpec::new("namespace", ParamType::Str, "Namespace of the pod, usually `labels.namespace`.")
            .text(TextKind::KubernetesNamespace),
        ParamSpec::new("pod", ParamType::Str, "Name of the pod, usually `labels.pod`.")
            .target()
            .text(TextKind::KubernetesName),
        ParamSpec::new(
            "grace_period",
            ParamType::Duration,
            "How long the pod may take to stop (whole seconds, at least `1s`); the pod's own setting when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &[
        "k8s.evict_pod(namespace = labels.namespace, pod = labels.pod)",
        "k8s.evict_pod(namespace = labels.namespace, pod = labels.pod, grace_period = 30s)",
    ],
    integration: "kubernetes",
    plan,
    apply,
};

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let kubernetes::PodPlan { ns, pod, args: normalized, stop } = kubernetes::pod_plan(args, NAME)?;
    Ok(Plan {
        action: NAME.into(),
        target: kubernetes::target(ns, "pod", pod),
        steps: vec![
            format!("evict pod `{pod}` in namespace `{ns}` through the Eviction API, {stop}"),
            "if its PodDisruptionBudget does not allow it, stop and escalate: the pod is never deleted instead".into(),
            "if the pod is already gone, do nothing".into(),
        ],
        args: normalized,
        integration: "kubernetes".into(),
        mutating: true,
    })
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let ns = arg_str(&plan.args, "namespace").unwrap_or_default();
        let pod = arg_str(&plan.args, "pod").unwrap_or_default();
        let grace = arg_i64(&plan.args, "grace_period_seconds");
        let api: Api<Pod> = Api::namespaced(kubernetes::client(clients).await?, ns);
        let mut eviction = json!({
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": { "name": pod, "namespace": ns },
        });
        if let Some(s) = grace {
            eviction["deleteOptions"] = json!({ "gracePeriodSeconds": s });
        }
        let answer: Result<serde_json::Value, _> =
            api.create_subresource("eviction", pod, &PostParams::default(), &eviction).await;
        match answer {
            Ok(_) => Ok(Applied {
                summary: format!("evicted pod {ns}/{pod}"),
                details: json!({ "namespace": ns, "pod": pod, "evicted": true, "grace_period_seconds": grace }),
            }),
            Err(e) if kubernetes::status_code(&e) == Some(404) => Ok(Applied {
                summary: format!("pod {ns}/{pod} was already gone"),
                details: json!({ "namespace": ns, "pod": pod, "evicted": false, "already_gone": true }),
            }),
            // Every 429 on an eviction is final here: the disruption budget's is the usual one,
            // and retrying it around the budget is exactly what must not happen.
            Err(e) if kubernetes::status_code(&e) == Some(429) => Err(ApplyError::Refused(format!(
                "the eviction of pod {ns}/{pod} was refused by its disruption budget ({}); the pod was left \
                 running and was not deleted; see `kubectl get pdb -n {ns}`",
                kubernetes::server_message(&e)
            ))),
            Err(e) => Err(kubernetes::api_error(
                &e,
                &Call { verb: "create", resource: "pods/eviction", group: "", namespace: ns, name: pod },
            )),
        }
    })
}
