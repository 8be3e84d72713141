//! `notify.token_owners`: tell the owners of API tokens that expire soon, once per threshold.
//!
//! Not carried out yet: the token inventory (the catalog's tokens and their owners) is not
//! reachable from `apply()`, and the per-threshold memory (one notice per token per threshold
//! crossed) comes with a later issue. `plan()` is complete, so dry-run, `explain` and `test`
//! show what would be sent; `apply()` fails with that reason and sends nothing, so the run
//! escalates rather than pretending the owners were told.

use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount,
};
use serde_json::Value;

const NAME: &str = "notify.token_owners";
const CHANNELS: &[&str] = &["slack", "email", "jira"];

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Notify each owner of a token that expires within `within`, once per threshold crossed.",
    mutating: false,
    idempotent: false,
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
    integration: "slack",
    plan,
    apply,
};

/// A duration argument in milliseconds, with its text.
fn duration(v: &Value, what: &str) -> Result<(u64, String), PlanError> {
    v.as_str()
        .and_then(|t| crate::dsl::parse_duration(t).filter(|ms| *ms > 0).map(|ms| (ms, t.to_string())))
        .ok_or_else(|| PlanError(format!("{NAME}: {what} `{v}` is not a duration such as `30d`")))
}

fn list<'a>(args: &'a Args, name: &str) -> Result<Option<&'a Vec<Value>>, PlanError> {
    match args.get(name) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(v) => Err(PlanError(format!("{NAME}: `{name}` is `{v}`, not a list"))),
    }
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let within = args.get("within").ok_or_else(|| PlanError(format!("{NAME}: `within` is missing")))?;
    let (within_ms, within_text) = duration(within, "`within`")?;
    let mut normalized = Args::from([("within".to_string(), within.clone())]);
    let mut thresholds = Vec::new();
    if let Some(items) = list(args, "thresholds")? {
        for item in items {
            let (ms, text) = duration(item, "the threshold")?;
            if ms > within_ms {
                return Err(PlanError(format!(
                    "{NAME}: the threshold `{text}` is longer than `within` ({within_text}), so it is never reached"
                )));
            }
            thresholds.push(text);
        }
        normalized.insert("thresholds".into(), Value::Array(items.clone()));
    }
    let mut channels = Vec::new();
    match list(args, "channels")? {
        Some(items) => {
            for item in items {
                match item.as_str() {
                    Some(c) if CHANNELS.contains(&c) => channels.push(c.to_string()),
                    _ => {
                        return Err(PlanError(format!(
                            "{NAME}: the channel `{item}` is not one of {}",
                            CHANNELS.join(", ")
                        )));
                    }
                }
            }
            if channels.is_empty() {
                return Err(PlanError(format!("{NAME}: `channels` is empty, so no one would be told")));
            }
            normalized.insert("channels".into(), Value::Array(items.clone()));
        }
        None => channels.push("slack".into()),
    }
    let when = if thresholds.is_empty() {
        "once".to_string()
    } else {
        format!("once per threshold crossed ({} before expiry)", thresholds.join(", "))
    };
    Ok(Plan {
        action: NAME.into(),
        target: "slack:token-owners".into(),
        steps: vec![
            format!("list the API tokens that expire within {within_text}, with their owners"),
            format!("tell each owner about their tokens on {}, {when}", channels.join(", ")),
        ],
        args: normalized,
        integration: "slack".into(),
        mutating: false,
    })
}

fn apply<'a>(_plan: &'a Plan, _clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async {
        Err::<Applied, _>(ApplyError::Failed(format!(
            "{NAME}: the token inventory is not wired into actions yet, so no owner was notified; check the \
             expiring tokens by hand"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_notice_is_planned_with_the_args_as_written() {
        let args = Args::from([
            ("within".to_string(), json!("30d")),
            ("thresholds".to_string(), json!(["30d", "14d", "7d", "1d"])),
            ("channels".to_string(), json!(["slack"])),
        ]);
        let p = plan(&args).unwrap();
        assert_eq!(p.args, args);
        assert_eq!(p.target, "slack:token-owners");
        assert!(!p.mutating);
        assert!(p.steps[1].contains("30d, 14d, 7d, 1d"), "{:?}", p.steps);
    }

    #[test]
    fn bad_durations_thresholds_and_channels_are_refused() {
        for (k, v) in [
            ("within", json!("soon")),
            ("thresholds", json!(["60d"])),
            ("thresholds", json!("7d")),
            ("channels", json!(["pager"])),
            ("channels", json!([])),
        ] {
            let mut args = Args::from([("within".to_string(), json!("30d"))]);
            args.insert(k.to_string(), v.clone());
            assert!(plan(&args).is_err(), "{k} = {v}");
        }
        assert!(plan(&Args::new()).is_err());
    }
}
