//! `k8s.scale`: add replicas to a workload by a bounded step, never past a ceiling.
//!
//! A workload managed by a HorizontalPodAutoscaler cannot be scaled by setting its replicas:
//! the autoscaler sets them back within seconds. For those, scale the autoscaler itself
//! (`kind = "HorizontalPodAutoscaler"`): the step and the ceiling then apply to its
//! `maxReplicas`, and the autoscaler does the rest.

use super::{ActionSpec, ParamSource, ParamSpec, ParamType};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "k8s.scale",
    summary: "Change a workload's replicas (or an autoscaler's `maxReplicas`) by `step`, within `min_replicas..max_replicas`.",
    mutating: true,
    blast_radius: "the number of replicas added or removed (`step`)",
    params: &[
        ParamSpec {
            name: "namespace",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: false,
            choices: &[],
            range: None,
            doc: "Namespace of the workload.",
        },
        ParamSpec {
            name: "kind",
            ty: ParamType::Str,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &["Deployment", "StatefulSet", "HorizontalPodAutoscaler"],
            range: None,
            doc: "What to scale: `Deployment` (default), `StatefulSet`, or `HorizontalPodAutoscaler` (raises its `maxReplicas`).",
        },
        ParamSpec {
            name: "name",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: true,
            choices: &[],
            range: None,
            doc: "Name of the workload or autoscaler, e.g. `labels.deployment` or `labels.horizontalpodautoscaler`.",
        },
        ParamSpec {
            name: "step",
            ty: ParamType::Int,
            required: true,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: Some((-10.0, 10.0)),
            doc: "Replicas to add (negative to remove) in one run.",
        },
        ParamSpec {
            name: "max_replicas",
            ty: ParamType::Int,
            required: true,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: Some((1.0, 1000.0)),
            doc: "Ceiling: the action never sets more replicas (or a higher `maxReplicas`) than this.",
        },
        ParamSpec {
            name: "min_replicas",
            ty: ParamType::Int,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: Some((0.0, 1000.0)),
            doc: "Floor for scaling down; 1 when left out.",
        },
    ],
    examples: &[
        "k8s.scale(namespace = labels.namespace, name = labels.deployment, step = 2, max_replicas = 20)",
        "k8s.scale(kind = \"HorizontalPodAutoscaler\", namespace = labels.namespace, name = labels.horizontalpodautoscaler, step = 4, max_replicas = 40)",
    ],
};
