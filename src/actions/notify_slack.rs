//! `notify.slack`: post a message to a Slack channel through its configured incoming webhook.
//!
//! The webhook URL is a secret (whoever has it can post): it lives in
//! `integrations.slack.webhooks` and appears in no plan, log or error. Slack answers `200 ok`;
//! a 429 or a 5xx is worth another try, any other answer (`404 no_service`, `403
//! invalid_token`, `410 channel_is_archived`) will not work until the configuration changes.
//! A retry after a lost answer may post the message twice.

use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, Secret, arg_str, clients::redact, required_str,
};
use serde_json::json;

const NAME: &str = "notify.slack";
/// Slack truncates longer messages itself; cutting first keeps the plan honest.
const MAX_TEXT: usize = 40_000;

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Post a message to a Slack channel through its incoming webhook in `integrations.slack.webhooks`.",
    mutating: false,
    idempotent: false,
    blast_radius: Radius { count: RadiusCount::Fixed(0), doc: "0: it only sends a message" },
    params: &[
        ParamSpec::new(
            "text",
            ParamType::Str,
            "The message (Slack `mrkdwn`); may be a template, e.g. `\"{labels.alertname} on {service}\"`.",
        ),
        ParamSpec::new(
            "channel",
            ParamType::Str,
            "Name of the webhook in `integrations.slack.webhooks`; `default` when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &[
        "notify.slack(text = \"restarted {labels.pod} after {labels.alertname}\")",
        "notify.slack(text = \"{summary}\", channel = \"ops-alerts\")",
    ],
    integration: "slack",
    plan,
    apply,
};

/// The webhook name `channel`, or `default`.
pub(super) fn channel(args: &Args, action: &str) -> Result<String, PlanError> {
    match args.get("channel") {
        None => Ok("default".to_string()),
        Some(_) => Ok(required_str(args, "channel", action)?.trim().to_string()),
    }
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let text = required_str(args, "text", NAME)?;
    let text = match text.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => format!("{}… (truncated)", &text[..cut]),
        None => text.to_string(),
    };
    let channel = channel(args, NAME)?;
    let mut normalized = Args::from([("text".to_string(), json!(text))]);
    if args.contains_key("channel") {
        normalized.insert("channel".into(), json!(channel));
    }
    Ok(Plan {
        action: NAME.into(),
        target: format!("slack:{channel}"),
        steps: vec![format!(
            "post a message of {} characters to the Slack webhook `{channel}` (`integrations.slack.webhooks.{channel}`)",
            text.chars().count()
        )],
        args: normalized,
        integration: "slack".into(),
        mutating: false,
    })
}

/// The first `n` bytes of `text` (cut at a character boundary).
pub(super) fn head(text: &str, n: usize) -> &str {
    let mut end = n.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Posts `payload` to the webhook of `channel`; the error never quotes the webhook URL.
pub(super) async fn post(
    clients: &Clients,
    action: &str,
    channel: &str,
    payload: &serde_json::Value,
) -> Result<(), ApplyError> {
    let url = clients.slack_webhook(channel).map_err(|e| ApplyError::Failed(format!("{action}: {e}")))?;
    let secret = Secret(url.to_string());
    let response = clients.http.post(url).json(payload).send().await.map_err(|e| {
        let e = redact(&e.without_url().to_string(), &secret);
        ApplyError::Transient(format!("{action}: the Slack webhook `{channel}` did not answer: {e}"))
    })?;
    let status = response.status();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = response.text().await.unwrap_or_default();
    let body = redact(head(body.trim(), 200), &secret);
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if code == 429 {
        let wait = retry_after.map_or_else(String::new, |s| format!("; Slack asks to retry after {s}s"));
        return Err(ApplyError::Transient(format!("{action}: Slack rate-limited the webhook `{channel}` (429){wait}")));
    }
    let msg = format!("{action}: the Slack webhook `{channel}` answered {code} `{body}`");
    if status.is_server_error() {
        Err(ApplyError::Transient(msg))
    } else {
        Err(ApplyError::Failed(format!(
            "{msg}; check `integrations.slack.webhooks.{channel}` (a revoked or deleted webhook answers 403 or 404)"
        )))
    }
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let channel = arg_str(&plan.args, "channel").unwrap_or("default");
        let Some(text) = arg_str(&plan.args, "text") else {
            return Err(ApplyError::Failed(format!("{NAME}: the plan has no `text`")));
        };
        post(clients, NAME, channel, &json!({ "text": text })).await?;
        Ok(Applied {
            summary: format!("posted a message to Slack `{channel}`"),
            details: json!({ "channel": channel, "characters": text.chars().count() }),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_planned_for_its_channel_without_the_webhook() {
        let p = plan(&Args::from([("text".to_string(), json!("hello"))])).unwrap();
        assert_eq!(p.target, "slack:default");
        assert!(!p.mutating);
        let p = plan(&Args::from([("text".to_string(), json!("hi")), ("channel".to_string(), json!("ops"))])).unwrap();
        assert_eq!(p.target, "slack:ops");
        assert!(plan(&Args::from([("text".to_string(), json!("  "))])).is_err());
    }

    #[test]
    fn a_long_text_is_cut() {
        let p = plan(&Args::from([("text".to_string(), json!("é".repeat(MAX_TEXT + 5)))])).unwrap();
        let t = arg_str(&p.args, "text").unwrap();
        assert!(t.ends_with("(truncated)") && t.chars().count() < MAX_TEXT + 20);
    }
}
