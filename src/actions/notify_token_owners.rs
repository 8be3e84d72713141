//! `notify.token_owners`: tell the owners of API tokens that expire soon, once per threshold;
//! file a ticket at the last threshold and escalate a token that expired.
//!
//! `apply()` reads the token inventory (the catalog's tokens, Sparky's GitHub token, HTTP
//! inventories: `knowledge::tokens`) and the notices already sent, and works out the notices
//! due (`knowledge::tokens::NoticePolicy`: the tightest threshold crossed, `expired`, `no
//! expiry`, each once per token and expiry). First it raises the token incidents (through the
//! desk, in the store's outbox: a Jira ticket at the last threshold when `jira` is a channel,
//! an escalation with the playbook's `l3` settings once a token expired) and closes those of
//! tokens renewed or gone (only when every source answered); then it posts each notice to
//! Slack (the `default` webhook, naming the owner) and remembers it as soon as it is sent —
//! so a run that fails half-way sends the rest next time and never repeats one. `email` is
//! accepted and reported as skipped (no mail transport in Sparky).

use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount,
};
use crate::actions::clients::RunRef;
use crate::knowledge::tokens::{Notice, NoticePolicy, Raise, Settle};
use serde_json::Value;

pub const NAME: &str = "notify.token_owners";
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
            "Destinations: `slack` (a message on the `default` webhook, naming the owner at every threshold); `jira` (a ticket for the token at the last threshold, in the playbook's Jira project, no page); `email` is accepted and reported as skipped. `[\"slack\"]` when left out. An expired token is escalated whatever the channels.",
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
    let mut thresholds_ms: Vec<(String, u64)> = Vec::new();
    if let Some(items) = list(args, "thresholds")? {
        for item in items {
            let (ms, text) = duration(item, "the threshold")?;
            if ms > within_ms {
                return Err(PlanError(format!(
                    "{NAME}: the threshold `{text}` is longer than `within` ({within_text}), so it is never reached"
                )));
            }
            thresholds_ms.push((text.clone(), ms));
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
        steps: {
            let mut steps = vec![format!("list the API tokens that expire within {within_text}, with their owners")];
            let told: Vec<&str> = channels.iter().map(String::as_str).filter(|c| *c != "jira").collect();
            if !told.is_empty() {
                steps.push(format!("tell each owner about their tokens on {}, {when}", told.join(", ")));
            }
            if channels.iter().any(|c| c == "jira") {
                let last = thresholds_ms.iter().min_by_key(|(_, ms)| *ms).map_or(within_text.as_str(), |(t, _)| t);
                steps.push(format!("file a Jira ticket for each token at its last threshold ({last} before expiry)"));
            }
            steps.push(
                "escalate each token that has expired; close the incidents of tokens renewed or gone since".into(),
            );
            steps
        },
        args: normalized,
        integration: "slack".into(),
        mutating: false,
    })
}

/// The notice policy of a planned `notify.token_owners` (for `sparky test`'s simulation).
pub fn notice_policy(args: &Args) -> Result<NoticePolicy, String> {
    policy(args).map(|(p, _)| p).map_err(|e| e.0)
}

/// The notice policy the plan's arguments give, and the channels.
fn policy(args: &Args) -> Result<(NoticePolicy, Vec<String>), PlanError> {
    let within = args.get("within").ok_or_else(|| PlanError(format!("{NAME}: `within` is missing")))?;
    let (within_ms, within_text) = duration(within, "`within`")?;
    let mut thresholds = Vec::new();
    for item in list(args, "thresholds")?.into_iter().flatten() {
        let (ms, text) = duration(item, "the threshold")?;
        thresholds.push((text, ms));
    }
    let channels: Vec<String> = match list(args, "channels")? {
        Some(items) => items.iter().filter_map(|c| c.as_str().map(str::to_string)).collect(),
        None => vec!["slack".into()],
    };
    let tickets = channels.iter().any(|c| c == "jira");
    Ok((NoticePolicy { within: (within_text, within_ms), thresholds, tickets }, channels))
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let desk = clients.tokens.get().ok_or_else(|| {
            ApplyError::Failed(format!("{NAME}: no token inventory in this process (`sparky serve` provides one)"))
        })?;
        let (policy, channels) = policy(&plan.args).map_err(|e| ApplyError::Failed(e.0))?;
        let run: Option<RunRef> = plan.args.get("run").and_then(|v| serde_json::from_value(v.clone()).ok());
        let inventory = desk.inventory().await;
        let sent = desk.sent().await.map_err(|e| ApplyError::Transient(format!("{NAME}: {e}")))?;
        let now = chrono::Utc::now();
        let due = policy.due(&inventory.tokens, now, &sent);
        // The token incidents first: an expired token is escalated even when Slack is down.
        let raised: Vec<(Notice, Raise)> = policy.raises(&due);
        let settle = Settle::of(&policy, &inventory, now);
        // A raise that cannot be recorded does not hold back the owners' notices: they go
        // out, then the run fails (and is escalated) with the reason.
        let (closed, raise_error) = match &run {
            Some(run) => match desk.raise(run, &raised, &settle).await {
                Ok(closed) => (closed, None),
                Err(e) => (Vec::new(), Some(format!("the token incidents could not be recorded: {e}"))),
            },
            None if raised.is_empty() => (Vec::new(), None),
            None => {
                return Err(ApplyError::Failed(format!(
                    "{NAME}: {} token incident(s) to raise, but this apply belongs to no execution (the engine stamps its run)",
                    raised.len()
                )));
            }
        };
        let skipped: Vec<&String> = channels.iter().filter(|c| c.as_str() == "email").collect();
        let slack = channels.iter().any(|c| c == "slack");
        let mut told = Vec::new();
        for n in &due {
            let mut carried = Vec::new();
            if slack {
                let payload = serde_json::json!({ "text": notice_text(n, now) });
                if let Err(e) = super::notify_slack::post(clients, NAME, "default", &payload).await {
                    return Err(ApplyError::Failed(format!(
                        "{NAME}: {} of {} notices sent, then Slack {e}; the rest go out on the next run",
                        told.len(),
                        due.len()
                    )));
                }
                carried.push("slack");
            }
            match raised.iter().find(|(r, _)| r.key == n.key).map(|(_, how)| *how) {
                Some(Raise::Ticket) => carried.push("jira"),
                Some(Raise::Escalate) => carried.push("escalation"),
                None => {}
            }
            let channel = if carried.is_empty() { "none".to_string() } else { carried.join("+") };
            desk.record(n, &channel)
                .await
                .map_err(|e| ApplyError::Failed(format!("{NAME}: sent but not remembered: {e}")))?;
            told.push(serde_json::json!({ "token": n.key.token, "mark": n.key.mark, "owner": n.owner, "by": channel }));
        }
        if let Some(e) = raise_error {
            return Err(ApplyError::Failed(format!("{NAME}: {} notices sent, but {e}", told.len())));
        }
        let expired: Vec<&str> = due.iter().filter(|n| n.key.mark == "expired").map(|n| n.key.token.as_str()).collect();
        let raised: Vec<serde_json::Value> = raised
            .iter()
            .map(|(n, how)| serde_json::json!({ "token": n.key.token, "mark": n.key.mark, "raise": how }))
            .collect();
        Ok(Applied {
            summary: format!(
                "told the owners of {} token{} ({} in the inventory), raised {} token incident{}, closed {}",
                told.len(),
                if told.len() == 1 { "" } else { "s" },
                inventory.tokens.len(),
                raised.len(),
                if raised.len() == 1 { "" } else { "s" },
                closed.len()
            ),
            details: serde_json::json!({
                "notices": told,
                "raised": raised,
                "closed": closed,
                "expired": expired,
                "inventory": inventory.tokens.len(),
                "complete": inventory.complete,
                "problems": inventory.problems,
                "skipped_channels": skipped,
            }),
        })
    })
}

/// `Token `stripe-key` (owner group:team-payments) expires in 6 days (2026-12-05T09:00:00+00:00): renew it.`
fn notice_text(n: &crate::knowledge::tokens::Notice, now: chrono::DateTime<chrono::Utc>) -> String {
    let owner = n.owner.as_deref().map(|o| format!(" (owner {o})")).unwrap_or_default();
    let what = match (n.key.mark.as_str(), n.expires_at, n.days_left) {
        ("no expiry", ..) => "has no expiry date in the inventory: add one, or confirm it never expires".to_string(),
        ("expired", Some(e), _) => {
            format!("EXPIRED at {}: whatever uses it is failing or about to; renew it now", e.to_rfc3339())
        }
        (_, Some(e), Some(_)) => {
            format!("expires in {} ({}): renew it", crate::knowledge::tokens::time_left(e, now), e.to_rfc3339())
        }
        _ => "expires soon: renew it".to_string(),
    };
    format!("Token `{}`{owner} {what}. (from {}; Sparky PB-003)", n.key.token, n.source)
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
