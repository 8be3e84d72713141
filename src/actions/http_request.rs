//! `http.request`: send one HTTP request (purge a CDN path, call a runbook endpoint) and check
//! its status.
//!
//! Secrets are written `${secret:NAME}` in a header value or the body, and are resolved from
//! `integrations.http.secrets` only inside `apply()`: the plan, which the audit log records,
//! keeps the placeholder. Both are literals written in the playbook. The URL may be a template
//! filled from the event, so it may not name a secret: an alert label holding
//! `${secret:NAME}` would otherwise have the secret sent wherever the URL points. A header that carries credentials (`Authorization`,
//! `Cookie`, `X-Api-Key`, any name with `token`, `secret`, `key`, `auth`, `password` or
//! `session`) must take its value from a secret, so that no credential is written in a
//! playbook or recorded. Errors quote at most 200 bytes of the answer, secrets cut out.
//!
//! A 5xx, a 429, a timeout or a dropped connection is retried by the executor: the endpoint
//! must be safe to call twice. Redirects are not followed (a 3xx is a failure).

use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_i64, arg_str, notify_slack::head, required_str,
};
use serde_json::json;

const NAME: &str = "http.request";
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
const OPEN: &str = "${secret:";
/// Header names (lowercase) whose values must come from a secret.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];
const CREDENTIAL_WORDS: &[&str] = &["token", "secret", "key", "auth", "password", "session"];
/// How much of an answer an error or the details quote.
const BODY_QUOTE: usize = 200;

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Send one HTTP request and check its status; secrets are named `${secret:NAME}` and resolved only when it is sent.",
    mutating: true,
    idempotent: false,
    blast_radius: Radius { count: RadiusCount::Fixed(1), doc: "1: one request" },
    params: &[
        ParamSpec::new("method", ParamType::Str, "The HTTP method.").literal().choices(METHODS),
        ParamSpec::new(
            "url",
            ParamType::Str,
            "An `http` or `https` URL, e.g. `\"https://cdn.example.com/purge/{labels.path}\"`; it may not hold a \
             secret (send those in a header or the body) nor credentials before the host. A value from the \
             event is percent-encoded as one path segment (`/` becomes `%2F`; `.` and `..` are refused).",
        )
        .target()
        .text(TextKind::UrlSegment),
        ParamSpec::new(
            "headers",
            ParamType::StrList,
            "Headers, each `\"Name: value\"`, written in the playbook; a credential header takes its value \
             from a secret in `integrations.http.secrets`, e.g. `\"Authorization: Bearer ${secret:CDN_TOKEN}\"`.",
        )
        .optional()
        .literal(),
        ParamSpec::new(
            "body",
            ParamType::Str,
            "The request body, written in the playbook; sent as `application/json` when it is JSON and no \
             `Content-Type` is given. May hold `${secret:NAME}`.",
        )
        .optional()
        .literal(),
        ParamSpec::new(
            "expect_status",
            ParamType::Int,
            "The status that means success; any 2xx when left out. A 5xx or 429 is retried, anything else escalates.",
        )
        .optional()
        .literal()
        .range(100.0, 599.0),
    ],
    examples: &[
        "http.request(method = \"POST\", url = \"https://cdn.example.com/purge/{labels.path}\", headers = [\"Authorization: Bearer ${secret:CDN_TOKEN}\"])",
        "http.request(method = \"GET\", url = \"https://status.example.com/check/{service}\", expect_status = 200)",
    ],
    integration: "http",
    plan,
    apply,
};

/// The `${secret:NAME}` placeholders in `text`, in order; an error for a malformed one.
fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(format!("`{OPEN}` is not closed; write `${{secret:NAME}}`"));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return Err(format!("`{OPEN}{name}}}` does not name a secret (letters, digits, `_`, `-`, `.`)"));
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `text` with every placeholder replaced by `value(name)`.
fn substitute(text: &str, mut value: impl FnMut(&str) -> Result<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let end = after.find('}').ok_or_else(|| format!("`{OPEN}` is not closed"))?;
        out.push_str(&value(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_credential_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&lower.as_str()) || CREDENTIAL_WORDS.iter().any(|w| lower.contains(w))
}

/// A `"Name: value"` header, checked.
fn parse_header(text: &str) -> Result<(&str, &str), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("the header `{text}` is not `Name: value`"));
    };
    let (name, value) = (name.trim(), value.trim());
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() || name.contains('$') {
        return Err(format!("`{name}` is not a header name"));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(format!("the value of the header `{name}` holds a line break"));
    }
    placeholders(value).map_err(|e| format!("the header `{name}`: {e}"))?;
    if is_credential_header(name) && !value.contains(OPEN) {
        return Err(format!(
            "the header `{name}` carries a credential written in the playbook; put it in \
             `integrations.http.secrets` and write `{name}: ${{secret:NAME}}`"
        ));
    }
    Ok((name, value))
}

/// `scheme://host[:port]/path` of `url` (the path normalized, the query dropped), once the URL
/// is checked.
fn checked_target(url: &str) -> Result<String, String> {
    if url.contains(OPEN) {
        return Err(format!(
            "`{url}` names a secret; the URL may come from the event, so secrets go in a header or the body"
        ));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an `http` or `https` URL"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("`{url}` holds credentials before its host; send them in a header from a secret instead"));
    }
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return Err(format!("`{url}` names no host"));
    };
    let port = parsed.port().map_or_else(String::new, |p| format!(":{p}"));
    Ok(format!("{}://{host}{port}{}", parsed.scheme(), parsed.path()))
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let bad = |e: String| PlanError(format!("{NAME}: {e}"));
    let method = required_str(args, "method", NAME)?.trim().to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(bad(format!("`{method}` is not one of {}", METHODS.join(", "))));
    }
    let url = required_str(args, "url", NAME)?.trim();
    let target = checked_target(url).map_err(bad)?;
    let mut normalized = Args::from([("method".to_string(), json!(method)), ("url".to_string(), json!(url))]);
    let mut steps = Vec::new();
    let mut header_names = Vec::new();
    if let Some(h) = args.get("headers") {
        let Some(items) = h.as_array() else { return Err(bad("`headers` is not a list of strings".into())) };
        let mut headers = Vec::new();
        for item in items {
            let Some(text) = item.as_str() else { return Err(bad(format!("the header `{item}` is not a string"))) };
            let (name, value) = parse_header(text).map_err(bad)?;
            header_names.push(name.to_string());
            headers.push(format!("{name}: {value}"));
        }
        normalized.insert("headers".into(), json!(headers));
    }
    let what_headers = if header_names.is_empty() {
        String::new()
    } else {
        format!(" with the headers {}", header_names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "))
    };
    let mut what_body = String::new();
    if let Some(body) = args.get("body") {
        let Some(body) = body.as_str() else { return Err(bad("`body` is not a string".into())) };
        placeholders(body).map_err(|e| bad(format!("the body: {e}")))?;
        what_body = format!(" and a body of {} bytes", body.len());
        normalized.insert("body".into(), json!(body));
    }
    let expect = match args.get("expect_status") {
        None => None,
        Some(v) => match v.as_i64() {
            Some(n) if (100..=599).contains(&n) => Some(n),
            _ => return Err(bad(format!("`expect_status` is `{v}`; it must be a status from 100 to 599"))),
        },
    };
    if let Some(n) = expect {
        normalized.insert("expect_status".into(), json!(n));
    }
    let mut secrets: Vec<&str> = Vec::new();
    for h in normalized.get("headers").and_then(|h| h.as_array()).into_iter().flatten() {
        secrets.extend(placeholders(h.as_str().unwrap_or_default()).unwrap_or_default());
    }
    if let Some(b) = arg_str(&normalized, "body") {
        secrets.extend(placeholders(b).unwrap_or_default());
    }
    secrets.sort_unstable();
    secrets.dedup();
    steps.push(format!("send `{method} {target}`{what_headers}{what_body}"));
    if !secrets.is_empty() {
        let names: Vec<String> = secrets.iter().map(|s| format!("`{s}`")).collect();
        steps.insert(0, format!("resolve the secrets {} from `integrations.http.secrets`", names.join(", ")));
    }
    steps.push(match expect {
        Some(n) => format!("succeed on status {n}; a 5xx, a 429 or a timeout is retried, any other status escalates"),
        None => "succeed on a 2xx status; a 5xx, a 429 or a timeout is retried, any other status escalates".into(),
    });
    Ok(Plan {
        action: NAME.into(),
        target: format!("http:{method} {target}"),
        steps,
        args: normalized,
        integration: "http".into(),
        mutating: !matches!(method.as_str(), "GET" | "HEAD"),
    })
}

/// Resolves placeholders, remembering the values so messages can cut them out.
struct Resolver<'a> {
    clients: &'a Clients,
    used: Vec<String>,
}

impl Resolver<'_> {
    fn resolve(&mut self, text: &str, place: &str) -> Result<String, ApplyError> {
        substitute(text, |name| match self.clients.secret(name) {
            Some(v) => {
                if !v.is_empty() {
                    self.used.push(v.to_string());
                }
                Ok(v.to_string())
            }
            None => Err(format!(
                "the secret `{name}` named in {place} is not in `integrations.http.secrets`; add it or fix its name"
            )),
        })
        .map_err(|e| ApplyError::Failed(format!("{NAME}: {e}")))
    }

    fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.used {
            out = out.replace(s.as_str(), "***");
        }
        out
    }
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let a = &plan.args;
        let (Some(method), Some(url)) = (arg_str(a, "method"), arg_str(a, "url")) else {
            return Err(ApplyError::Failed(format!("{NAME}: the plan has no `method` or `url`")));
        };
        let target = checked_target(url).map_err(|e| ApplyError::Failed(format!("{NAME}: {e}")))?;
        let shown = format!("{method} {target}");
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ApplyError::Failed(format!("{NAME}: `{method}` is not an HTTP method")))?;
        let mut r = Resolver { clients, used: Vec::new() };
        // checked_target() refused any secret in the URL: it is sent as planned.
        let mut request = clients.http.request(method, url);
        let mut has_content_type = false;
        for h in a.get("headers").and_then(|h| h.as_array()).into_iter().flatten() {
            let text = h.as_str().unwrap_or_default();
            let (name, value) = parse_header(text).map_err(|e| ApplyError::Failed(format!("{NAME}: {e}")))?;
            let value = r.resolve(value, &format!("the header `{name}`"))?;
            let value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                ApplyError::Failed(format!("{NAME}: the value of the header `{name}` is not a valid header value"))
            })?;
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            request = request.header(name, value);
        }
        if let Some(body) = arg_str(a, "body") {
            let body = r.resolve(body, "the body")?;
            if !has_content_type && serde_json::from_str::<serde_json::Value>(&body).is_ok() {
                request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
            }
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            ApplyError::Transient(format!("{NAME}: `{shown}` {why}: {}", r.redact(&e.without_url().to_string())))
        })?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let quote = r.redact(head(&body, BODY_QUOTE));
        let expected = match arg_i64(a, "expect_status") {
            Some(n) => i64::from(status) == n,
            None => (200..300).contains(&status),
        };
        if expected {
            return Ok(Applied {
                summary: format!("`{shown}` answered {status}"),
                details: json!({ "method": method_of(&shown), "target": target, "status": status, "body": quote }),
            });
        }
        let want = arg_i64(a, "expect_status").map_or_else(|| "a 2xx".to_string(), |n| n.to_string());
        let msg = format!("{NAME}: `{shown}` answered {status}, expected {want}: `{quote}`");
        if status >= 500 || status == 429 || status == 408 {
            Err(ApplyError::Transient(msg))
        } else {
            Err(ApplyError::Failed(msg))
        }
    })
}

fn method_of(shown: &str) -> &str {
    shown.split(' ').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, serde_json::Value)]) -> Args {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn the_target_drops_the_query_and_keeps_placeholders() {
        let p = plan(&args(&[
            ("method", json!("post")),
            ("url", json!("https://CDN.example.com:8443/purge/x?zone=eu#top")),
            ("headers", json!(["Authorization: Bearer ${secret:T}"])),
            ("body", json!("{\"zone\": \"${secret:ZONE}\"}")),
        ]))
        .unwrap();
        assert_eq!(p.target, "http:POST https://cdn.example.com:8443/purge/x");
        assert!(p.mutating);
        assert!(p.steps[0].contains("`T`") && p.steps[0].contains("`ZONE`"), "{:?}", p.steps);
        let p = plan(&args(&[("method", json!("GET")), ("url", json!("http://a.example"))])).unwrap();
        assert_eq!(p.target, "http:GET http://a.example/");
        assert!(!p.mutating);
    }

    #[test]
    fn bad_urls_methods_and_headers_are_refused() {
        let url = |u: &str| plan(&args(&[("method", json!("GET")), ("url", json!(u))]));
        for bad in [
            "",
            "ftp://x.example/",
            "file:///etc/passwd",
            "https://user:pw@x.example/",
            "https://${secret:HOST}/x",
            "https://x.example/${secret:T}",
            "https://x.example/x?token=${secret:T}",
            "not a url",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
        assert!(plan(&args(&[("method", json!("TRACE")), ("url", json!("https://x.example"))])).is_err());
        let header = |h: &str| {
            plan(&args(&[("method", json!("GET")), ("url", json!("https://x.example")), ("headers", json!([h]))]))
        };
        for bad in ["Authorization: Bearer abc123", "X-Api-Key: abc", "Cookie: s=1", "no colon", "Bad Name: x"] {
            assert!(header(bad).is_err(), "{bad}");
        }
        assert!(header("Authorization: Bearer ${secret:T}").is_ok());
        assert!(header("Accept: application/json").is_ok());
    }
}
