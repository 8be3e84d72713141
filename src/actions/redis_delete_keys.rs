//! `redis.delete_keys`: delete the cache keys matching a pattern, found with SCAN (never KEYS).

use super::{ActionSpec, ParamSource, ParamSpec, ParamType};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "redis.delete_keys",
    summary: "Delete the keys that match `pattern`, found with SCAN, at most `max_keys` of them.",
    mutating: true,
    blast_radius: "the number of keys deleted, at most `max_keys`",
    params: &[
        ParamSpec {
            name: "pattern",
            ty: ParamType::Str,
            required: true,
            source: ParamSource::Any,
            target: true,
            choices: &[],
            range: None,
            doc: "A Redis glob pattern; bind it to the event, e.g. `\"user:{labels.user_id}:*\"`.",
        },
        ParamSpec {
            name: "max_keys",
            ty: ParamType::Int,
            required: true,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: Some((1.0, 1_000_000.0)),
            doc: "The most keys one run may delete; the run stops and escalates beyond it.",
        },
        ParamSpec {
            name: "instance",
            ty: ParamType::Str,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: None,
            doc: "Name of the Redis instance in the configuration; `default` when left out.",
        },
    ],
    examples: &["redis.delete_keys(pattern = \"user:{labels.user_id}:*\", max_keys = 1000)"],
};
