//! `k8s.scale`: add replicas to a workload by a bounded step, never past a ceiling.
//!
//! A workload managed by a HorizontalPodAutoscaler cannot be scaled by setting its replicas:
//! the autoscaler sets them back within seconds. For those, scale the autoscaler itself
//! (`kind = "HorizontalPodAutoscaler"`): the step and the ceiling then apply to its
//! `maxReplicas`, and the autoscaler does the rest.

use super::{ActionSpec, ParamSpec, ParamType, Radius, RadiusCount};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "k8s.scale",
    summary: "Change a workload's replicas (or an autoscaler's `maxReplicas`) by `step`, within `min_replicas..max_replicas`.",
    mutating: true,
    blast_radius: Radius { count: RadiusCount::Param("step"), doc: "the number of replicas added or removed (`step`)" },
    params: &[
        ParamSpec::new("namespace", ParamType::Str, "Namespace of the workload."),
        ParamSpec::new("kind", ParamType::Str, "What to scale: `Deployment` (default), `StatefulSet`, or `HorizontalPodAutoscaler` (raises its `maxReplicas`).").optional().literal().choices(&["Deployment", "StatefulSet", "HorizontalPodAutoscaler"]),
        ParamSpec::new("name", ParamType::Str, "Name of the workload or autoscaler, e.g. `labels.deployment` or `labels.horizontalpodautoscaler`.").target(),
        ParamSpec::new("step", ParamType::Int, "Replicas to add (negative to remove) in one run.").literal().range(-10.0, 10.0),
        ParamSpec::new("max_replicas", ParamType::Int, "Ceiling: the action never sets more replicas (or a higher `maxReplicas`) than this.").literal().range(1.0, 1000.0),
        ParamSpec::new("min_replicas", ParamType::Int, "Floor for scaling down; 1 when left out.").optional().literal().range(0.0, 1000.0),
    ],
    examples: &[
        "k8s.scale(namespace = labels.namespace, name = labels.deployment, step = 2, max_replicas = 20)",
        "k8s.scale(kind = \"HorizontalPodAutoscaler\", namespace = labels.namespace, name = labels.horizontalpodautoscaler, step = 4, max_replicas = 40)",
    ],
};
