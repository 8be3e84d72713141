//! `k8s.delete_pod`: delete one pod so that its controller starts a fresh one.

use super::{ActionSpec, ParamSource, ParamSpec, ParamType};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "k8s.delete_pod",
    summary: "Delete one pod; its controller (Deployment, ReplicaSet, ...) replaces it.",
    mutating: true,
    blast_radius: "1: exactly one pod",
    params: &[
        ParamSpec {
            name: "namespace",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: false,
            choices: &[],
            range: None,
            doc: "Namespace of the pod, usually `labels.namespace`.",
        },
        ParamSpec {
            name: "pod",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: true,
            choices: &[],
            range: None,
            doc: "Name of the pod, usually `labels.pod`.",
        },
        ParamSpec {
            name: "grace_period",
            ty: ParamType::Duration,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: None,
            doc: "How long the pod may take to stop; the pod's own setting when left out.",
        },
    ],
    examples: &["k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)"],
};
