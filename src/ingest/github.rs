//! GitHub's repository and organization webhooks: one event per delivery.
//!
//! The event name travels in the `X-GitHub-Event` header (the body's `action` refines it) and
//! the delivery's id in `X-GitHub-Delivery`. Deployments and their statuses become `deploy`
//! events, workflow runs `deploy` or `change` events, everything else a `change` event; a
//! `ping` (sent when a hook is created) is accepted and gives none. The body is JSON, or the
//! form `payload=<json>` when the hook's content type is `application/x-www-form-urlencoded`.
//! Documented in `docs/sources/github.md`.

use super::{Batch, Headers, IngestError, parse_json};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const SOURCE: &str = "github";

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "GitHub", path: path.into(), reason: reason.into() }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// A string, number or boolean as text (ids are numbers, flags booleans).
fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    match path.iter().try_fold(v, |v, k| v.get(k))? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// RFC 3339, or epoch seconds (`repository.pushed_at` in a push).
fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    match path.iter().try_fold(v, |v, k| v.get(k))? {
        Value::String(s) => DateTime::parse_from_rfc3339(s.trim()).ok().map(|t| t.with_timezone(&Utc)),
        Value::Number(n) => Utc.timestamp_opt(n.as_i64()?, 0).single(),
        _ => None,
    }
}

fn push_link(links: &mut Vec<Link>, rel: &str, url: Option<&str>) {
    if let Some(url) = url.map(str::trim).filter(|u| u.starts_with("http"))
        && !links.iter().any(|l| l.url == url)
    {
        links.push(Link { rel: rel.into(), url: url.into() });
    }
}

/// Reads the body: JSON, or GitHub's form encoding (`payload=<url-encoded json>`).
fn parse_body(headers: &Headers, body: &[u8]) -> Result<Value, IngestError> {
    let declared_form = headers
        .get("content-type")
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if declared_form || body.starts_with(b"payload=") {
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .ok_or_else(|| shape("payload", "form field is missing: a form-encoded delivery holds its JSON there"))?
            .1;
        return parse_json(payload.as_bytes());
    }
    parse_json(body)
}

/// The event a body without `X-GitHub-Event` is (a payload read from a file), told by the
/// fields only that event has.
fn infer_event(obj: &Map<String, Value>) -> Option<&'static str> {
    let has = |k: &str| obj.contains_key(k);
    Some(if has("zen") && has("hook_id") {
        "ping"
    } else if has("deployment_status") {
        "deployment_status"
    } else if has("workflow_job") {
        "workflow_job"
    } else if has("workflow_job_run") {
        "deployment_review"
    } else if has("deployment") {
        "deployment"
    } else if has("workflow_run") && has("workflow") {
        "workflow_run"
    } else if has("pull_request") && has("review") {
        "pull_request_review"
    } else if has("pull_request") && has("number") {
        "pull_request"
    } else if has("ref") && has("before") && has("after") {
        "push"
    } else if has("client_payload") {
        "repository_dispatch"
    } else {
        return None;
    })
}

/// An event before the payload is moved into it.
struct Draft {
    kind: Kind,
    severity: Severity,
    fingerprint: String,
    service: Option<String>,
    summary: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    links: Vec<Link>,
    occurred_at: Option<DateTime<Utc>>,
    /// What tells this occurrence from others of the same fingerprint.
    id_parts: Vec<String>,
}

/// Normalizes one GitHub webhook delivery.
pub fn normalize(headers: &Headers, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let root = parse_body(headers, body)?;
    let obj = root.as_object().ok_or_else(|| shape("$", "must be an object"))?;
    let mut notes = Vec::new();
    let event_name = match headers.get("x-github-event").map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => e.to_string(),
        None => match infer_event(obj) {
            Some(e) => {
                notes.push(format!("no `X-GitHub-Event` header; the body reads as a `{e}` event"));
                e.to_string()
            }
            None => {
                return Err(shape(
                    "X-GitHub-Event",
                    "header is missing, and the body is not an event Sparky can recognise without it",
                ));
            }
        },
    };
    let delivery_id = headers.get("x-github-delivery").map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    if event_name == "ping" {
        let hook = text_at(&root, &["hook_id"]).map(|h| format!(" for hook {h}")).unwrap_or_default();
        let zen = str_at(&root, &["zen"]).map(|z| format!(" ({z})")).unwrap_or_default();
        notes.push(format!("GitHub ping{hook}: the webhook works; no event{zen}"));
        return Ok(Batch { events: Vec::new(), notes });
    }

    let repo = str_at(&root, &["repository", "full_name"]);
    let mut labels = BTreeMap::new();
    labels.insert("event".to_string(), event_name.clone());
    let action = str_at(&root, &["action"]);
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            labels.insert(k.to_string(), v);
        }
    };
    put("action", action.map(str::to_string));
    put("repository", repo.map(str::to_string));
    put("sender", str_at(&root, &["sender", "login"]).map(str::to_string));
    let base = Base {
        root: &root,
        repo,
        scope: repo.or_else(|| str_at(&root, &["organization", "login"])).unwrap_or("github").to_string(),
        service: str_at(&root, &["repository", "name"]).map(str::to_string),
        action: action.unwrap_or(""),
        labels,
    };
    let draft = match event_name.as_str() {
        "deployment" => deployment(base)?,
        "deployment_status" => deployment_status(base)?,
        "workflow_run" => workflow_run(base)?,
        "pull_request" => pull_request(base)?,
        "push" => push(base)?,
        other => any_event(base, other),
    };
    let occurred_at = draft.occurred_at.unwrap_or_else(|| {
        notes.push("the payload gives no time for this event; the time of receipt stands in".into());
        received_at
    });
    let mut id_parts: Vec<&str> = vec![SOURCE, &draft.fingerprint, &event_name];
    id_parts.extend(draft.id_parts.iter().map(String::as_str));
    Ok(Batch {
        events: vec![Event {
            id: stable_id(&id_parts),
            source: SOURCE.into(),
            kind: draft.kind,
            status: Status::Info,
            fingerprint: draft.fingerprint,
            service: draft.service,
            severity: draft.severity,
            summary: draft.summary,
            labels: draft.labels,
            annotations: draft.annotations,
            links: draft.links,
            occurred_at,
            received_at,
            delivery_id,
            payload: root,
        }],
        notes,
    })
}

/// What every event reads the same way.
struct Base<'a> {
    root: &'a Value,
    /// `owner/name`, when the event is about a repository.
    repo: Option<&'a str>,
    /// The repository, else the organization: what fingerprints are scoped to.
    scope: String,
    /// The repository's name: the service unless the payload names a better one.
    service: Option<String>,
    action: &'a str,
    labels: BTreeMap<String, String>,
}

impl<'a> Base<'a> {
    fn object(&self, key: &str) -> Result<&'a Value, IngestError> {
        match self.root.get(key) {
            Some(v) if v.is_object() => Ok(v),
            Some(_) => Err(shape(key, "must be an object")),
            None => Err(shape(key, "is missing")),
        }
    }

    fn repo_links(&self) -> Vec<Link> {
        let mut links = Vec::new();
        push_link(&mut links, "repository", str_at(self.root, &["repository", "html_url"]));
        links
    }

    /// `owner/name: ` before a summary, when there is a repository.
    fn prefix(&self) -> String {
        self.repo.map(|r| format!("{r}: ")).unwrap_or_default()
    }
}

fn short_sha(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The service a deployment names in its free-form `payload` (an object, or a string of
/// one), under the keys deploy tools use.
fn service_in_deployment(d: &Value) -> Option<String> {
    let parsed;
    let payload = match d.get("payload")? {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        v => v,
    };
    ["service", "app", "application", "component"].iter().find_map(|k| str_at(payload, &[k]).map(str::to_string))
}

fn deployment_labels(labels: &mut BTreeMap<String, String>, d: &Value) {
    for (key, path) in [
        ("environment", &["environment"][..]),
        ("ref", &["ref"]),
        ("sha", &["sha"]),
        ("task", &["task"]),
        ("deployment_id", &["id"]),
        ("creator", &["creator", "login"]),
        ("production", &["production_environment"]),
    ] {
        if let Some(v) = text_at(d, path) {
            labels.entry(key.to_string()).or_insert(v);
        }
    }
}

fn deployment_fingerprint(base: &Base<'_>, d: &Value) -> String {
    match text_at(d, &["id"]) {
        Some(id) => format!("{SOURCE}/{}/deployments/{id}", base.scope),
        None => format!("{SOURCE}/{}/deployments", base.scope),
    }
}

/// `master (f95f852) to production`
fn deployment_target(d: &Value, env: Option<&str>) -> String {
    let what = match (str_at(d, &["ref"]), str_at(d, &["sha"])) {
        (Some(r), Some(s)) if r != s => format!("{r} ({})", short_sha(s)),
        (Some(r), _) => r.to_string(),
        (None, Some(s)) => short_sha(s).to_string(),
        (None, None) => "a deployment".into(),
    };
    match env.or_else(|| str_at(d, &["environment"])) {
        Some(env) => format!("{what} to {env}"),
        None => what,
    }
}

fn deployment(mut base: Base<'_>) -> Result<Draft, IngestError> {
    let d = base.object("deployment")?;
    deployment_labels(&mut base.labels, d);
    let mut annotations = BTreeMap::new();
    if let Some(desc) = str_at(d, &["description"]) {
        annotations.insert("description".into(), desc.to_string());
    }
    Ok(Draft {
        kind: Kind::Deploy,
        severity: Severity::Info,
        fingerprint: deployment_fingerprint(&base, d),
        service: service_in_deployment(d).or(base.service.clone()),
        summary: format!("{}deployment of {} {}", base.prefix(), deployment_target(d, None), base.action)
            .trim_end()
            .to_string(),
        labels: std::mem::take(&mut base.labels),
        annotations,
        links: base.repo_links(),
        occurred_at: time_at(d, &["created_at"]),
        id_parts: vec![base.action.to_string(), text_at(d, &["updated_at"]).unwrap_or_default()],
    })
}

/// A deployment status stays `info` (a deploy has no life cycle of its own); a failed one is
/// a `warning`, and `labels.state` says how it went.
fn deployment_status(mut base: Base<'_>) -> Result<Draft, IngestError> {
    let ds = base.object("deployment_status")?;
    let d = base.root.get("deployment").filter(|d| d.is_object());
    let state = str_at(ds, &["state"]).ok_or_else(|| shape("deployment_status.state", "is missing"))?;
    base.labels.insert("state".into(), state.to_string());
    let env = str_at(ds, &["environment"]);
    if let Some(env) = env {
        base.labels.insert("environment".into(), env.to_string());
    }
    if let Some(d) = d {
        deployment_labels(&mut base.labels, d);
    }
    let mut annotations = BTreeMap::new();
    if let Some(desc) = str_at(ds, &["description"]) {
        annotations.insert("description".into(), desc.to_string());
    }
    let mut links = Vec::new();
    push_link(&mut links, "logs", str_at(ds, &["log_url"]).or_else(|| str_at(ds, &["target_url"])));
    push_link(&mut links, "environment", str_at(ds, &["environment_url"]));
    links.extend(base.repo_links());
    let fingerprint = match d {
        Some(d) => deployment_fingerprint(&base, d),
        None => format!("{SOURCE}/{}/deployment_statuses/{}", base.scope, text_at(ds, &["id"]).unwrap_or_default()),
    };
    let target = d.map(|d| deployment_target(d, env)).unwrap_or_else(|| env.unwrap_or("a deployment").to_string());
    Ok(Draft {
        kind: Kind::Deploy,
        severity: if matches!(state, "failure" | "error") { Severity::Warning } else { Severity::Info },
        fingerprint,
        service: d.and_then(service_in_deployment).or(base.service.clone()),
        summary: format!("{}deployment of {target}: {state}", base.prefix()),
        labels: std::mem::take(&mut base.labels),
        annotations,
        links,
        occurred_at: time_at(ds, &["created_at"]).or_else(|| time_at(ds, &["updated_at"])),
        id_parts: vec![text_at(ds, &["id"]).unwrap_or_default(), state.to_string()],
    })
}

/// Conclusions that mean the run went wrong.
fn is_failed(conclusion: Option<&str>) -> bool {
    matches!(conclusion, Some("failure" | "timed_out" | "startup_failure"))
}

/// A workflow run is a deploy when a deployment started it, or when its name or file says
/// `deploy`; any other run is a change.
fn is_deploy_workflow(trigger: Option<&str>, name: &str, path: Option<&str>) -> bool {
    let says_deploy = |s: &str| s.to_ascii_lowercase().contains("deploy");
    matches!(trigger, Some("deployment" | "deployment_status"))
        || says_deploy(name)
        || path.is_some_and(|p| says_deploy(p.rsplit('/').next().unwrap_or(p)))
}

fn workflow_run(mut base: Base<'_>) -> Result<Draft, IngestError> {
    let run = base.object("workflow_run")?;
    let wf = base.root.get("workflow").filter(|w| w.is_object());
    let path = str_at(run, &["path"]).or_else(|| wf.and_then(|w| str_at(w, &["path"])));
    let name = str_at(run, &["name"])
        .or_else(|| wf.and_then(|w| str_at(w, &["name"])))
        .or(path)
        .unwrap_or("unnamed workflow")
        .to_string();
    let status = str_at(run, &["status"]);
    let conclusion = str_at(run, &["conclusion"]);
    let trigger = str_at(run, &["event"]);
    let labels = &mut base.labels;
    labels.insert("workflow".into(), name.clone());
    for (key, value) in [
        ("workflow_path", path.map(str::to_string)),
        ("status", status.map(str::to_string)),
        ("conclusion", conclusion.map(str::to_string)),
        ("branch", str_at(run, &["head_branch"]).map(str::to_string)),
        ("sha", str_at(run, &["head_sha"]).map(str::to_string)),
        ("trigger", trigger.map(str::to_string)),
        ("run_id", text_at(run, &["id"])),
        ("run_number", text_at(run, &["run_number"])),
        ("run_attempt", text_at(run, &["run_attempt"])),
    ] {
        if let Some(v) = value {
            labels.insert(key.into(), v);
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some(t) = str_at(run, &["display_title"]) {
        annotations.insert("summary".into(), t.to_string());
    }
    let mut links = Vec::new();
    push_link(&mut links, "source", str_at(run, &["html_url"]));
    push_link(&mut links, "workflow", wf.and_then(|w| str_at(w, &["html_url"])));
    links.extend(base.repo_links());
    let outcome = match (status, conclusion) {
        (Some(s), Some(c)) => format!("{s} ({c})"),
        (Some(s), None) => s.to_string(),
        (None, Some(c)) => c.to_string(),
        (None, None) => base.action.to_string(),
    };
    let branch = str_at(run, &["head_branch"]).map(|b| format!(" on {b}")).unwrap_or_default();
    Ok(Draft {
        kind: if is_deploy_workflow(trigger, &name, path) { Kind::Deploy } else { Kind::Change },
        severity: if is_failed(conclusion) { Severity::Warning } else { Severity::Info },
        fingerprint: format!("{SOURCE}/{}/actions/runs/{}", base.scope, text_at(run, &["id"]).unwrap_or_default()),
        service: base.service.clone(),
        summary: format!("{}workflow {name} {outcome}{branch}", base.prefix()),
        labels: std::mem::take(&mut base.labels),
        annotations,
        links,
        occurred_at: time_at(run, &["updated_at"]).or_else(|| time_at(run, &["created_at"])),
        id_parts: vec![
            base.action.to_string(),
            status.unwrap_or("").to_string(),
            conclusion.unwrap_or("").to_string(),
            text_at(run, &["run_attempt"]).unwrap_or_default(),
            text_at(run, &["updated_at"]).unwrap_or_default(),
        ],
    })
}

fn pull_request(mut base: Base<'_>) -> Result<Draft, IngestError> {
    let pr = base.object("pull_request")?;
    let number = text_at(pr, &["number"]).or_else(|| text_at(base.root, &["number"])).unwrap_or_default();
    let merged = pr.get("merged").and_then(Value::as_bool).unwrap_or(false);
    for (key, value) in [
        ("number", Some(number.clone())),
        ("state", str_at(pr, &["state"]).map(str::to_string)),
        ("merged", Some(merged.to_string())),
        ("draft", text_at(pr, &["draft"])),
        ("base", str_at(pr, &["base", "ref"]).map(str::to_string)),
        ("head", str_at(pr, &["head", "ref"]).map(str::to_string)),
        // Where the head branch lives: a fork's pull request has the same branch name in
        // another repository.
        ("head_repository", str_at(pr, &["head", "repo", "full_name"]).map(str::to_string)),
        ("author", str_at(pr, &["user", "login"]).map(str::to_string)),
    ] {
        if let Some(v) = value {
            base.labels.insert(key.into(), v);
        }
    }
    let title = str_at(pr, &["title"]).unwrap_or("untitled");
    let mut annotations = BTreeMap::new();
    annotations.insert("summary".into(), title.to_string());
    let mut links = Vec::new();
    push_link(&mut links, "source", str_at(pr, &["html_url"]));
    links.extend(base.repo_links());
    let what = if base.action == "closed" && merged { "merged" } else { base.action };
    Ok(Draft {
        kind: Kind::Change,
        severity: Severity::Info,
        fingerprint: format!("{SOURCE}/{}/pull/{number}", base.scope),
        service: base.service.clone(),
        summary: format!("{}pull request #{number} {what}: {title}", base.prefix()),
        labels: std::mem::take(&mut base.labels),
        annotations,
        links,
        occurred_at: time_at(pr, &["updated_at"]).or_else(|| time_at(pr, &["created_at"])),
        id_parts: vec![base.action.to_string(), text_at(pr, &["updated_at"]).unwrap_or_default()],
    })
}

fn push(mut base: Base<'_>) -> Result<Draft, IngestError> {
    let root = base.root;
    let git_ref = str_at(root, &["ref"]).ok_or_else(|| shape("ref", "is missing"))?;
    let commits = root.get("commits").and_then(Value::as_array).map_or(0, Vec::len);
    let flag = |k: &str| root.get(k).and_then(Value::as_bool).unwrap_or(false);
    let (short, ref_kind) = if let Some(b) = git_ref.strip_prefix("refs/heads/") {
        (b, "branch")
    } else if let Some(t) = git_ref.strip_prefix("refs/tags/") {
        (t, "tag")
    } else {
        (git_ref, "ref")
    };
    let pusher = str_at(root, &["pusher", "name"]).or_else(|| str_at(root, &["sender", "login"]));
    for (key, value) in [
        ("ref", Some(git_ref.to_string())),
        (ref_kind, Some(short.to_string())),
        ("before", str_at(root, &["before"]).map(str::to_string)),
        ("after", str_at(root, &["after"]).map(str::to_string)),
        ("pusher", pusher.map(str::to_string)),
        ("created", Some(flag("created").to_string())),
        ("deleted", Some(flag("deleted").to_string())),
        ("forced", Some(flag("forced").to_string())),
        ("commits", Some(commits.to_string())),
    ] {
        if let Some(v) = value {
            base.labels.insert(key.into(), v);
        }
    }
    let who = pusher.unwrap_or("someone");
    let what = if flag("deleted") {
        format!("{who} deleted {ref_kind} {short}")
    } else if flag("created") && commits == 0 {
        format!("{who} created {ref_kind} {short}")
    } else {
        let forced = if flag("forced") { "force-" } else { "" };
        format!("{who} {forced}pushed {commits} commit(s) to {ref_kind} {short}")
    };
    let mut annotations = BTreeMap::new();
    if let Some(m) = str_at(root, &["head_commit", "message"]).and_then(|m| m.lines().next()) {
        annotations.insert("summary".into(), m.to_string());
    }
    let mut links = Vec::new();
    push_link(&mut links, "source", str_at(root, &["compare"]));
    push_link(&mut links, "commit", str_at(root, &["head_commit", "url"]));
    links.extend(base.repo_links());
    Ok(Draft {
        kind: Kind::Change,
        severity: Severity::Info,
        fingerprint: format!("{SOURCE}/{}/{git_ref}", base.scope),
        service: base.service.clone(),
        summary: format!("{}{what}", base.prefix()),
        labels: std::mem::take(&mut base.labels),
        annotations,
        links,
        occurred_at: time_at(root, &["head_commit", "timestamp"])
            .or_else(|| time_at(root, &["repository", "pushed_at"])),
        id_parts: vec![
            str_at(root, &["before"]).unwrap_or("").to_string(),
            str_at(root, &["after"]).unwrap_or("").to_string(),
        ],
    })
}

/// Any other event: a `change` named after it, never an error.
fn any_event(mut base: Base<'_>, event: &str) -> Draft {
    // Most events carry their subject under their own name (`workflow_job`, `release`).
    let subject = base.root.get(event).filter(|v| v.is_object());
    let subject_id = subject.and_then(|s| text_at(s, &["id"]));
    let fingerprint = match &subject_id {
        Some(id) => format!("{SOURCE}/{}/{event}/{id}", base.scope),
        None => format!("{SOURCE}/{}/{event}", base.scope),
    };
    let name = subject.and_then(|s| str_at(s, &["name"]).or_else(|| str_at(s, &["title"])));
    // A deployment review or a job gated by an environment names it.
    if let Some(env) = str_at(base.root, &["environment"]).or_else(|| str_at(base.root, &["deployment", "environment"]))
    {
        base.labels.insert("environment".into(), env.to_string());
    }
    let mut links = Vec::new();
    push_link(&mut links, "source", subject.and_then(|s| str_at(s, &["html_url"])));
    links.extend(base.repo_links());
    let action = if base.action.is_empty() { String::new() } else { format!(" {}", base.action) };
    let named = name.map(|n| format!(": {n}")).unwrap_or_default();
    // No field says what tells one delivery of this event from another: the whole body does.
    let body = serde_json::to_string(base.root).unwrap_or_default();
    Draft {
        kind: Kind::Change,
        severity: Severity::Info,
        fingerprint,
        service: base.service.clone(),
        summary: format!("{}{event}{action}{named}", base.prefix()),
        labels: std::mem::take(&mut base.labels),
        annotations: BTreeMap::new(),
        links,
        occurred_at: subject.and_then(|s| time_at(s, &["updated_at"]).or_else(|| time_at(s, &["created_at"]))),
        id_parts: vec![base.action.to_string(), stable_id(&[&body])],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(event: &str) -> Headers {
        Headers::from_pairs([("X-GitHub-Event", event), ("X-GitHub-Delivery", "d-1")])
    }

    #[test]
    fn bad_payloads_say_what_is_wrong() {
        let now = Utc::now();
        let e = normalize(&Headers::none(), br#"{"hello": 1}"#, now).unwrap_err().to_string();
        assert!(e.starts_with("not a valid GitHub payload: `X-GitHub-Event` header is missing"), "{e}");
        let e = normalize(&headers("deployment"), br#"{"action": "created"}"#, now).unwrap_err().to_string();
        assert_eq!(e, "not a valid GitHub payload: `deployment` is missing");
        let e = normalize(&headers("deployment_status"), br#"{"deployment_status": {}}"#, now).unwrap_err().to_string();
        assert_eq!(e, "not a valid GitHub payload: `deployment_status.state` is missing");
        let e = normalize(&headers("push"), b"payload=", now).unwrap_err().to_string();
        assert!(e.starts_with("the body is not valid JSON"), "{e}");
        let form = Headers::from_pairs([("content-type", "application/x-www-form-urlencoded")]);
        let e = normalize(&form, b"other=1", now).unwrap_err().to_string();
        assert!(e.contains("`payload` form field is missing"), "{e}");
    }

    #[test]
    fn unknown_events_are_changes() {
        let body = br#"{"action": "published", "release": {"id": 5, "name": "v1.2", "html_url": "https://github.com/o/r/releases/5"},
            "repository": {"full_name": "o/r", "name": "r", "html_url": "https://github.com/o/r"}}"#;
        let batch = normalize(&headers("release"), body, Utc::now()).unwrap();
        let e = &batch.events[0];
        assert_eq!((e.kind.clone(), e.status), (Kind::Change, Status::Info));
        assert_eq!(e.labels["event"], "release");
        assert_eq!(e.fingerprint, "github/o/r/release/5");
        assert_eq!(e.summary, "o/r: release published: v1.2");
        assert_eq!(e.delivery_id.as_deref(), Some("d-1"));
    }

    #[test]
    fn deploy_workflows_by_trigger_or_name() {
        assert!(is_deploy_workflow(Some("deployment"), "ci", None));
        assert!(is_deploy_workflow(Some("push"), "Deploy to prod", None));
        assert!(is_deploy_workflow(Some("push"), "cd", Some(".github/workflows/deploy.yml")));
        assert!(!is_deploy_workflow(Some("push"), "test", Some(".github/workflows/test.yml")));
        // The folder does not count, only the file.
        assert!(!is_deploy_workflow(None, "lint", Some("deploy-tools/.github/workflows/lint.yml")));
    }

    #[test]
    fn deployments_may_name_their_service() {
        let d = serde_json::json!({"payload": {"service": "payments-api"}});
        assert_eq!(service_in_deployment(&d).as_deref(), Some("payments-api"));
        let d = serde_json::json!({"payload": "{\"app\": \"web\"}"});
        assert_eq!(service_in_deployment(&d).as_deref(), Some("web"));
        let d = serde_json::json!({"payload": {}});
        assert_eq!(service_in_deployment(&d), None);
    }
}
