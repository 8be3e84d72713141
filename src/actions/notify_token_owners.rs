//! `notify.token_owners`: tell the owners of API tokens that expire soon, once per threshold.

use super::{ActionSpec, ParamSource, ParamSpec, ParamType};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "notify.token_owners",
    summary: "Notify each owner of a token that expires within `within`, once per threshold crossed.",
    mutating: false,
    blast_radius: "0: it only sends messages",
    params: &[
        ParamSpec {
            name: "within",
            ty: ParamType::Duration,
            required: true,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: None,
            doc: "Tokens expiring within this span are reported.",
        },
        ParamSpec {
            name: "thresholds",
            ty: ParamType::DurationList,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: None,
            doc: "Time-before-expiry marks at which an owner hears again, e.g. `[30d, 14d, 7d, 1d]`.",
        },
        ParamSpec {
            name: "channels",
            ty: ParamType::StrList,
            required: false,
            source: ParamSource::Literal,
            target: false,
            choices: &[],
            range: None,
            doc: "Destinations: `slack`, `email`, `jira`; `[\"slack\"]` when left out.",
        },
    ],
    examples: &["notify.token_owners(within = 30d, thresholds = [30d, 14d, 7d, 1d], channels = [\"slack\"])"],
};
