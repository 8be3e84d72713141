//! Slack messages (incoming webhook, Block Kit): a short summary of the package — what
//! happened, why Sparky stopped, who to call, where to look — with the Jira issue when there
//! is one. The whole story is in the ticket; Slack is where people notice.
//!
//! Slack refuses a message over its limits (a section's text over 3000 characters, a header
//! over 150, more than 50 blocks) with `invalid_blocks`, and a refused message would wait in
//! the outbox; every text is cut to its limit *after* escaping, since `&` becomes `&amp;`.

use super::package::{deploy_text, one_line, owner_text, truncate, web_url};
use super::{EscalationPackage, IssueLink, Note};
use serde_json::{Value, json};

/// Block Kit's limits.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const BUTTON_MAX: usize = 75;
const URL_MAX: usize = 3000;
/// The fallback `text` (notifications, screen readers): Slack cuts longer ones itself.
const FALLBACK_MAX: usize = 3000;
/// How many event links and recent deploys the message shows: the ticket has them all.
const LINKS_MAX: usize = 5;
const DEPLOYS_MAX: usize = 3;

/// The message announcing an escalation.
pub fn message(p: &EscalationPackage, jira: Option<&IssueLink>) -> Value {
    let pkg = &p.package;
    let title = one_line(&p.title());
    let mut blocks = vec![json!({
        "type": "header",
        "text": { "type": "plain_text", "text": fit(&format!("{} · {title}", p.priority), HEADER_MAX) },
    })];

    let mut why = format!("*Why Sparky escalated:* {}", fit(&p.cause, 1200));
    if let Some(a) = &p.attempt {
        why.push_str(&format!("\n*What Sparky tried:* {}", fit(&a.describe(), 1200)));
    }
    blocks.push(section(why));

    let e = &pkg.event;
    let mut fields = vec![field("Incident", &format!("{} ({})", p.incident_key, p.priority))];
    match &pkg.service {
        Some(s) => {
            let known = if s.known { "" } else { " — not in the catalog" };
            fields.push(field("Service", &format!("{}{known}", s.name)));
            fields.push(field("Owner", &s.owner.as_ref().map(owner_text).unwrap_or_else(|| "unknown".into())));
            fields.push(field("On call", s.oncall.as_deref().unwrap_or("unknown")));
        }
        None => fields.push(field("Service", "unknown: no label names one")),
    }
    fields.push(field("Event", &format!("{} {} {} from {}", e.severity, e.kind, e.status, e.source)));
    fields.push(field("Since", &e.occurred_at.to_rfc3339()));
    blocks.push(json!({ "type": "section", "fields": fields }));

    let runbook = pkg.service.as_ref().and_then(|s| s.catalog.as_ref()).and_then(|c| c.runbook.as_deref());
    let links: Vec<String> = runbook
        .map(|r| ("service runbook", r))
        .into_iter()
        .chain(pkg.links.iter().map(|l| (l.rel.as_str(), l.url.as_str())))
        .filter_map(|(rel, url)| link(url, rel))
        .take(LINKS_MAX)
        .collect();
    if !links.is_empty() {
        blocks.push(section(within(&format!("*Links:* {}", links.join(" · ")), SECTION_MAX)));
    }

    if !pkg.recent_deploys.is_empty() {
        let mut text = String::from("*Recent deploys:*");
        for d in pkg.recent_deploys.iter().take(DEPLOYS_MAX) {
            text.push_str(&format!("\n• {}", fit(&deploy_text(d), 500)));
            if let Some(l) = d.url.as_deref().and_then(|u| link(u, "deploy")) {
                text.push_str(&format!(" — {l}"));
            }
        }
        if pkg.recent_deploys.len() > DEPLOYS_MAX {
            text.push_str(&format!("\n_and {} more in the ticket_", pkg.recent_deploys.len() - DEPLOYS_MAX));
        }
        blocks.push(section(within(&text, SECTION_MAX)));
    }

    if let Some(j) = jira {
        blocks.push(jira_block(j));
    }
    blocks.push(context(&format!("Sparky · fingerprint `{}`", fit(&e.fingerprint, 500))));

    let jira_key = jira.map(|j| format!(" ({})", j.key)).unwrap_or_default();
    let text = fit(&format!("{} {}: {title}{jira_key}", p.priority, p.incident_key), FALLBACK_MAX);
    json!({ "text": text, "blocks": blocks })
}

/// A later word on an escalated incident, in the same channel.
pub fn note(n: &Note, jira: Option<&IssueLink>) -> Value {
    let mut text = format!("*{}* {}", fit(&n.incident_key, 200), fit(&n.headline, 1000));
    for line in &n.lines {
        text.push_str(&format!("\n• {}", fit(line, 500)));
    }
    if let Some(a) = &n.attempt {
        text.push_str(&format!("\n*What Sparky tried:* {}", fit(&a.describe(), 500)));
    }
    let mut blocks = vec![section(within(&text, SECTION_MAX))];
    if let Some(j) = jira {
        blocks.push(jira_block(j));
    }
    let jira_key = jira.map(|j| format!(" ({})", j.key)).unwrap_or_default();
    let fallback = fit(&format!("{}: {}{jira_key}", n.incident_key, n.headline), FALLBACK_MAX);
    json!({ "text": fallback, "blocks": blocks })
}

fn section(text: String) -> Value {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
}

fn context(text: &str) -> Value {
    json!({ "type": "context", "elements": [{ "type": "mrkdwn", "text": within(text, SECTION_MAX) }] })
}

fn field(label: &str, value: &str) -> Value {
    json!({ "type": "mrkdwn", "text": format!("*{label}*\n{}", fit(value, FIELD_MAX - label.len() - 3)) })
}

/// The issue as a line with a button: the button is what people click, the line is what a
/// client without buttons (or a notification) still shows.
fn jira_block(j: &IssueLink) -> Value {
    let line = match link(&j.url, &j.key) {
        Some(l) => format!("*Jira:* {l}"),
        None => format!("*Jira:* {}", fit(&j.key, 200)),
    };
    let mut block = section(line);
    if let Some(url) = web_url(&j.url).filter(|u| u.chars().count() <= URL_MAX) {
        block["accessory"] = json!({
            "type": "button",
            "text": { "type": "plain_text", "text": truncate(&format!("Open {}", one_line(&j.key)), BUTTON_MAX) },
            "url": url,
        });
    }
    block
}

/// `<url|label>`, when `url` is a web address short enough to be worth a link.
fn link(url: &str, label: &str) -> Option<String> {
    let url = web_url(url).filter(|u| u.chars().count() <= 500)?;
    // In a link, `|` ends the URL and `>` the link: percent-encoded, the URL means the same.
    let url = escape(url).replace('|', "%7C");
    Some(format!("<{url}|{}>", fit(label, 100).replace('|', "¦")))
}

/// `text` on one line, escaped for mrkdwn, at most `max` characters once escaped.
fn fit(text: &str, max: usize) -> String {
    let text = one_line(text);
    let mut cut = max;
    loop {
        let escaped = escape(&truncate(&text, cut));
        let len = escaped.chars().count();
        if len <= max || cut == 0 {
            return escaped;
        }
        cut = cut.saturating_sub(len - max);
    }
}

/// Composed mrkdwn (already escaped) cut to `max` characters; cut at a line so no link or
/// entity is broken in two.
fn within(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out = String::new();
    for line in text.lines() {
        if out.chars().count() + line.chars().count() + 2 > max {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
    }
    out.push('…');
    out
}

/// Slack's control characters as entities: without this an alert summary could hold
/// `<!channel>` or `<https://evil|docs>`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_entities() {
        assert_eq!(escape("<!channel> & <http://evil|docs>"), "&lt;!channel&gt; &amp; &lt;http://evil|docs&gt;");
    }

    #[test]
    fn fitting_counts_the_escaped_text() {
        let fitted = fit(&"&".repeat(100), 50);
        assert!(fitted.chars().count() <= 50, "{fitted}");
        assert!(fitted.ends_with('…') && !fitted.contains("&am…"), "no entity is cut: {fitted}");
        assert_eq!(fit("short", 50), "short");
    }

    #[test]
    fn a_link_needs_a_web_url() {
        assert_eq!(link("javascript:alert(1)", "x"), None);
        assert_eq!(
            link("https://g.example/d?a=1&b=2", "graph"),
            Some("<https://g.example/d?a=1&amp;b=2|graph>".into())
        );
    }
}
