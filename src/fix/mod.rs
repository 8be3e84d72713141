//! L2 fix generators: what an `l2` block can propose.
//!
//! For now this holds their metadata, so that `sparky check` validates every `fix` call; the
//! generators themselves (change sets, tests, pull requests) come with the L2 issue, one file
//! each, and this table moves into those files.

use crate::actions::{ParamSource, ParamSpec, ParamType};

/// The metadata of one fix generator.
#[derive(Debug)]
pub struct GeneratorSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
}

const fn param(name: &'static str, ty: ParamType, required: bool, doc: &'static str) -> ParamSpec {
    ParamSpec { name, ty, required, source: ParamSource::Literal, target: false, choices: &[], range: None, doc }
}

static GENERATORS: &[GeneratorSpec] = &[
    GeneratorSpec {
        name: "config_value",
        summary: "Set a bounded value in a YAML, JSON or TOML configuration file.",
        params: &[
            param("path", ParamType::Str, true, "The file, relative to the repository root."),
            param("key", ParamType::Str, true, "Dotted key of the value, e.g. `server.pool.size`."),
            param("max", ParamType::Number, false, "The largest value the fix may write."),
        ],
    },
    GeneratorSpec {
        name: "memory_limit",
        summary: "Raise a container's memory limit in manifests, Kustomize or Helm values.",
        params: &[
            param("factor", ParamType::Number, true, "Multiplier for the current limit, e.g. `1.5`."),
            param("max", ParamType::Str, true, "Ceiling as a Kubernetes quantity, e.g. `\"4Gi\"`."),
        ],
    },
    GeneratorSpec {
        name: "patch",
        summary: "Apply the unified diff proposed by the analyzer, within allowed paths.",
        params: &[param("allowed_paths", ParamType::StrList, true, "Globs the patch may touch.")],
    },
    GeneratorSpec {
        name: "replicas_floor",
        summary: "Raise the minimum replica count in configuration.",
        params: &[param("max", ParamType::Int, true, "The largest floor the fix may set.")],
    },
    GeneratorSpec { name: "revert", summary: "Revert the commits of the deploy the analysis blames.", params: &[] },
    GeneratorSpec {
        name: "timeout",
        summary: "Raise a timeout in configuration by a bounded factor.",
        params: &[
            param("factor", ParamType::Number, true, "Multiplier for the current timeout."),
            param("max", ParamType::Duration, true, "The longest timeout the fix may set."),
        ],
    },
];

/// Every generator, sorted by name.
pub fn all() -> &'static [GeneratorSpec] {
    GENERATORS
}

pub fn find(name: &str) -> Option<&'static GeneratorSpec> {
    GENERATORS.iter().find(|g| g.name == name)
}
