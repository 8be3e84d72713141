//! `k8s.scale`: raise (or lower) a workload's replicas by a bounded step, never past a ceiling.

use super::{ActionSpec, ParamSource, ParamSpec, ParamType};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "k8s.scale",
    summary: "Change a Deployment's or StatefulSet's replicas by `step`, staying within `min_replicas..max_replicas`.",
    mutating: true,
    blast_radius: "the number of replicas added or removed (`step`)",
    params: &[
        ParamSpec {
            name: "namespace",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: true,
            doc: "Namespace of the workload.",
        },
        ParamSpec {
            name: "deployment",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: true,
            doc: "Name of the Deployment (or StatefulSet with `kind = \"StatefulSet\"`).",
        },
        ParamSpec {
            name: "kind",
            ty: ParamType::Str,
            required: false,
            source: ParamSource::Literal,
            target: false,
            doc: "`Deployment` (default) or `StatefulSet`.",
        },
        ParamSpec {
            name: "step",
            ty: ParamType::Int,
            required: true,
            source: ParamSource::Literal,
            target: false,
            doc: "Replicas to add (negative to remove) in one run.",
        },
        ParamSpec {
            name: "max_replicas",
            ty: ParamType::Int,
            required: true,
            source: ParamSource::Literal,
            target: false,
            doc: "Ceiling: the action never sets more replicas than this.",
        },
        ParamSpec {
            name: "min_replicas",
            ty: ParamType::Int,
            required: false,
            source: ParamSource::Literal,
            target: false,
            doc: "Floor for scaling down; 1 when left out.",
        },
    ],
    examples: &["k8s.scale(namespace = labels.namespace, deployment = labels.deployment, step = 2, max_replicas = 20)"],
};
