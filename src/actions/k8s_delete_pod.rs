//! `k8s.delete_pod`: delete one pod so that its controller starts a fresh one.
//!
//! Idempotent: a pod that is already gone (404) is a success, so a retry after a lost answer
//! does not fail. A delete does not consult PodDisruptionBudgets; `k8s.evict_pod` does.

use super::kubernetes::{self, Call};
use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_i64, arg_str,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

const NAME: &str = "k8s.delete_pod";

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Delete one pod; its controller (Deployment, ReplicaSet, ...) replaces it.",
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
    examples: &["k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)"],
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
            format!("delete pod `{pod}` in namespace `{ns}`, {stop}; its controller starts a replacement"),
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
        let grace = arg_i64(&plan.args, "grace_period_seconds").and_then(|s| u32::try_from(s).ok());
        let api: Api<Pod> = Api::namespaced(kubernetes::client(clients).await?, ns);
        let dp = DeleteParams { grace_period_seconds: grace, ..DeleteParams::default() };
        match api.delete(pod, &dp).await {
            Ok(_) => Ok(Applied {
                summary: format!("deleted pod {ns}/{pod}"),
                details: json!({ "namespace": ns, "pod": pod, "deleted": true, "grace_period_seconds": grace }),
            }),
            Err(e) if kubernetes::status_code(&e) == Some(404) => Ok(Applied {
                summary: format!("pod {ns}/{pod} was already gone"),
                details: json!({ "namespace": ns, "pod": pod, "deleted": false, "already_gone": true }),
            }),
            Err(e) => Err::<Applied, ApplyError>(kubernetes::api_error(
                &e,
                &Call { verb: "delete", resource: "pods", group: "", namespace: ns, name: pod },
            )),
        }
    })
}
