//! `notify.token_owners`: tell the owners of API tokens that expire soon, once per threshold.

use super::{ActionSpec, ParamSpec, ParamType, Radius, RadiusCount};

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: "notify.token_owners",
    summary: "Notify each owner of a token that expires within `within`, once per threshold crossed.",
    mutating: false,
    blast_radius: Radius { count: RadiusCount::Fixed(0), doc: "0: it only sends messages" },
    params: &[
        ParamSpec::new("within", ParamType::Duration, "Tokens expiring within this span are reported.").literal(),
        ParamSpec::new(
            "thresholds",
            ParamType::DurationList,
            "Time-before-expiry marks at which an owner hears again, e.g. `[30d, 14d, 7d, 1d]`.",
        )
        .optional()
        .literal(),
        ParamSpec::new(
            "channels",
            ParamType::StrList,
            "Destinations: `slack`, `email`, `jira`; `[\"slack\"]` when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &["notify.token_owners(within = 30d, thresholds = [30d, 14d, 7d, 1d], channels = [\"slack\"])"],
};
