//! `redis.delete_keys`: delete the cache keys matching a pattern, found with SCAN (never KEYS).

use super::{ActionSpec, ParamSpec, ParamType, Radius, RadiusCount};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "redis.delete_keys",
    summary: "Delete the keys that match `pattern`, found with SCAN, at most `max_keys` of them.",
    mutating: true,
    blast_radius: Radius {
        count: RadiusCount::Param("max_keys"),
        doc: "the number of keys deleted, at most `max_keys`",
    },
    params: &[
        ParamSpec::new(
            "pattern",
            ParamType::Str,
            "A Redis glob pattern; bind it to the event, e.g. `\"user:{labels.user_id}:*\"`.",
        )
        .target(),
        ParamSpec::new(
            "max_keys",
            ParamType::Int,
            "The most keys one run may delete; the run stops and escalates beyond it.",
        )
        .literal()
        .range(1.0, 1_000_000.0),
        ParamSpec::new(
            "instance",
            ParamType::Str,
            "Name of the Redis instance in the configuration; `default` when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &["redis.delete_keys(pattern = \"user:{labels.user_id}:*\", max_keys = 1000)"],
};
