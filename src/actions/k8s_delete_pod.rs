//! `k8s.delete_pod`: delete one pod so that its controller starts a fresh one.

use super::{ActionSpec, ParamSpec, ParamType, Radius, RadiusCount};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "k8s.delete_pod",
    summary: "Delete one pod; its controller (Deployment, ReplicaSet, ...) replaces it.",
    mutating: true,
    blast_radius: Radius { count: RadiusCount::Fixed(1), doc: "1: exactly one pod" },
    params: &[
        ParamSpec::new("namespace", ParamType::Str, "Namespace of the pod, usually `labels.namespace`."),
        ParamSpec::new("pod", ParamType::Str, "Name of the pod, usually `labels.pod`.").target(),
        ParamSpec::new(
            "grace_period",
            ParamType::Duration,
            "How long the pod may take to stop; the pod's own setting when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &["k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)"],
};
