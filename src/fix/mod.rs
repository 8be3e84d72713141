//! L2 fix generators: what an `l2` block can propose.
//!
//! For now this holds their metadata, so that `sparky check` validates every `fix` call; the
//! generators themselves (change sets, tests, pull requests) come with the L2 issue, one file
//! each, and this table moves into those files.

use crate::actions::{ParamSpec, ParamType};

/// The metadata of one fix generator.
#[derive(Debug)]
pub struct GeneratorSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
}

static GENERATORS: &[GeneratorSpec] = &[
    GeneratorSpec {
        name: "config_value",
        summary: "Set a bounded value in a YAML, JSON or TOML configuration file.",
        params: &[
            ParamSpec::new("path", ParamType::Str, "The file, relative to the repository root.").literal(),
            ParamSpec::new("key", ParamType::Str, "Dotted key of the value, e.g. `server.pool.size`.").literal(),
            ParamSpec::new("max", ParamType::Number, "The largest value the fix may write.").literal().optional(),
        ],
    },
    GeneratorSpec {
        name: "memory_limit",
        summary: "Raise a container's memory limit in manifests, Kustomize or Helm values.",
        params: &[
            ParamSpec::new("factor", ParamType::Number, "Multiplier for the current limit, e.g. `1.5`.").literal(),
            ParamSpec::new("max", ParamType::Str, "Ceiling as a Kubernetes quantity, e.g. `\"4Gi\"`.").literal(),
        ],
    },
    GeneratorSpec {
        name: "patch",
        summary: "Apply the unified diff proposed by the analyzer, within allowed paths.",
        params: &[ParamSpec::new("allowed_paths", ParamType::StrList, "Globs the patch may touch.").literal()],
    },
    GeneratorSpec {
        name: "replicas_floor",
        summary: "Raise the minimum replica count in configuration.",
        params: &[ParamSpec::new("max", ParamType::Int, "The largest floor the fix may set.").literal()],
    },
    GeneratorSpec { name: "revert", summary: "Revert the commits of the deploy the analysis blames.", params: &[] },
    GeneratorSpec {
        name: "timeout",
        summary: "Raise a timeout in configuration by a bounded factor.",
        params: &[
            ParamSpec::new("factor", ParamType::Number, "Multiplier for the current timeout.").literal(),
            ParamSpec::new("max", ParamType::Duration, "The longest timeout the fix may set.").literal(),
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
