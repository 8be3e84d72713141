//! CloudEvents 1.0 over HTTP, in its three content modes, and the CDEvents carried in them.
//!
//! - *structured*: `Content-Type: application/cloudevents+json`, the whole event in the body;
//! - *batch*: `Content-Type: application/cloudevents-batch+json`, a JSON array of events;
//! - *binary*: the context in `ce-*` headers, the body is the event's `data`.
//!
//! With no `Content-Type` (a payload replayed from a file) or a plain one, the mode is told
//! from the `ce-specversion` header, else from the body's shape. The context is validated as
//! the spec requires (an event without `id` is refused, naming it); the data is read when it
//! can be: an undecodable `data_base64` leaves the event without its data and adds a note,
//! so one bad event does not sink the batch it came in. CDEvents
//! (`dev.cdevents.<subject>.<predicate>.<version>`) become incidents and deploys; any other
//! CloudEvent is a `change`. Documented in `docs/sources/cloudevents.md`.

use super::{Batch, Headers, IngestError, parse_json};
use super::{quote, scalar_text};
use crate::event::{Event, Kind, Link, Severity, Status, stable_id};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

const SOURCE: &str = "cloudevents";

/// The attributes the spec defines; any other top-level member is an extension.
const CORE: &[&str] =
    &["specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"];

fn shape(path: impl Into<String>, reason: impl Into<String>) -> IngestError {
    IngestError::Shape { source: "CloudEvents", path: path.into(), reason: reason.into() }
}

/// Where an event came from in the delivery, for messages: its attributes are named
/// `id` (structured), `[1].id` (batch) or `ce-id` (binary).
#[derive(Clone, Copy)]
enum Place {
    Structured,
    Batch(usize),
    Binary,
}

impl Place {
    fn at(self, attr: &str) -> String {
        match self {
            Place::Structured => attr.to_string(),
            Place::Batch(i) => format!("[{i}].{attr}"),
            // The data is the body, not a header.
            Place::Binary if attr == "data" || attr.starts_with("data.") => attr.to_string(),
            Place::Binary => format!("ce-{attr}"),
        }
    }

    fn missing(self) -> &'static str {
        match self {
            Place::Binary => "header is missing",
            _ => "is missing",
        }
    }
}

/// The media type of `Content-Type`, lowercased, without parameters.
fn media_type(headers: &Headers) -> Option<String> {
    let raw = headers.get("content-type")?;
    let t = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

/// `*/json` or `*/*+json`: data Sparky can read as JSON.
fn is_json_type(media: &str) -> bool {
    let media = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    media.split_once('/').is_some_and(|(_, sub)| sub == "json" || sub.ends_with("+json"))
}

/// Normalizes one CloudEvents delivery (structured, batch or binary).
pub fn normalize(headers: &Headers, body: &[u8], received_at: DateTime<Utc>) -> Result<Batch, IngestError> {
    let media = media_type(headers);
    let mut notes = Vec::new();
    let events = match media.as_deref() {
        Some(t) if t.starts_with("application/cloudevents-batch") => {
            if t != "application/cloudevents-batch+json" {
                return Err(shape(
                    "Content-Type",
                    format!(
                        "is `{}`: Sparky reads the JSON batch format (`application/cloudevents-batch+json`) only",
                        quote(t)
                    ),
                ));
            }
            batch(parse_json(body)?, received_at, &mut notes)?
        }
        Some(t) if t.starts_with("application/cloudevents") => {
            if t != "application/cloudevents+json" {
                return Err(shape(
                    "Content-Type",
                    format!(
                        "is `{}`: Sparky reads the JSON event format (`application/cloudevents+json`) only",
                        quote(t)
                    ),
                ));
            }
            structured(parse_json(body)?, received_at, &mut notes)?
        }
        _ if headers.get("ce-specversion").is_some() => {
            let ce = from_headers(headers, media.as_deref(), body, &mut notes)?;
            vec![read_event(ce, Place::Binary, received_at, &mut notes)?]
        }
        _ => {
            // Neither a CloudEvents content type nor `ce-*` headers: a file, or a sender that
            // labels a structured event `application/json`. The body's shape tells.
            let root = parse_json(body)?;
            let plain = |mode: &str| {
                media.as_ref().map(|t| {
                    format!("sent as `{}` without `ce-*` headers; read as a {mode} from the body's shape", quote(t))
                })
            };
            match &root {
                Value::Array(_) => {
                    notes.extend(plain("batch"));
                    batch(root, received_at, &mut notes)?
                }
                Value::Object(o) if o.contains_key("specversion") => {
                    notes.extend(plain("structured event"));
                    structured(root, received_at, &mut notes)?
                }
                _ => {
                    return Err(shape(
                        "ce-specversion",
                        "header is missing: a CloudEvent comes with `ce-*` headers (binary mode), as a JSON object \
                         with `specversion` (`application/cloudevents+json`), or as a JSON array of those \
                         (`application/cloudevents-batch+json`)",
                    ));
                }
            }
        }
    };
    Ok(Batch { events, notes })
}

fn structured(root: Value, received_at: DateTime<Utc>, notes: &mut Vec<String>) -> Result<Vec<Event>, IngestError> {
    match root {
        Value::Object(ce) => Ok(vec![read_event(ce, Place::Structured, received_at, notes)?]),
        _ => Err(shape("$", "must be an object (a CloudEvent in the JSON format)")),
    }
}

fn batch(root: Value, received_at: DateTime<Utc>, notes: &mut Vec<String>) -> Result<Vec<Event>, IngestError> {
    let Value::Array(items) = root else {
        return Err(shape("$", "must be an array of CloudEvents (the JSON batch format)"));
    };
    if items.is_empty() {
        notes.push("an empty batch: no events".into());
    }
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(ce) => events.push(read_event(ce, Place::Batch(i), received_at, notes)?),
            _ => return Err(shape(format!("[{i}]"), "must be an object (a CloudEvent in the JSON format)")),
        }
    }
    Ok(events)
}

/// A header value as the HTTP binding encodes it: double quotes (older senders) unescaped,
/// then one round of percent-decoding, which must give UTF-8.
fn header_value(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    let unquoted = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
            }
            out
        }
        None => raw.to_string(),
    };
    let bytes = unquoted.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            // A `%` the sender did not encode: kept as it is.
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| "is not valid UTF-8 once percent-decoded".to_string())
}

/// A binary-mode event in the JSON format's shape: the attributes from `ce-*` headers,
/// `datacontenttype` from `Content-Type`, `data` from the body.
fn from_headers(
    headers: &Headers,
    media: Option<&str>,
    body: &[u8],
    notes: &mut Vec<String>,
) -> Result<Map<String, Value>, IngestError> {
    let mut ce = Map::new();
    for (name, value) in headers.iter() {
        let Some(attr) = name.strip_prefix("ce-").filter(|a| !a.is_empty()) else { continue };
        if attr == "datacontenttype" {
            notes.push(
                "the `ce-datacontenttype` header is ignored: in binary mode `Content-Type` is the data's type".into(),
            );
            continue;
        }
        // Data travels in the body, never in a header.
        if matches!(attr, "data" | "data_base64") {
            continue;
        }
        let value = header_value(value).map_err(|reason| shape(format!("ce-{attr}"), format!("header {reason}")))?;
        if ce.contains_key(attr) {
            notes.push(format!("the `ce-{attr}` header is repeated; the first value is read"));
            continue;
        }
        ce.insert(attr.to_string(), Value::String(value));
    }
    if let Some(ct) = headers.get("content-type").map(str::trim).filter(|c| !c.is_empty()) {
        ce.insert("datacontenttype".into(), Value::String(ct.to_string()));
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        // Without a content type the data is taken for JSON, as the JSON format does.
        if media.is_none_or(is_json_type) {
            ce.insert("data".into(), parse_json(body)?);
        } else {
            match std::str::from_utf8(body) {
                Ok(text) => ce.insert("data".into(), Value::String(text.to_string())),
                Err(_) => ce.insert("data_base64".into(), Value::String(STANDARD.encode(body))),
            };
        }
    }
    Ok(ce)
}

/// The required and typed attributes of a CloudEvent.
struct Context {
    id: String,
    source: String,
    kind: String,
    subject: Option<String>,
    time: Option<DateTime<Utc>>,
}

fn read_context(ce: &Map<String, Value>, place: Place) -> Result<Context, IngestError> {
    // `null` means unset (JSON format, section 2.2).
    let attr = |name: &str| ce.get(name).filter(|v| !v.is_null());
    let required = |name: &str| match attr(name) {
        None => Err(shape(place.at(name), place.missing())),
        Some(Value::String(s)) if s.is_empty() => Err(shape(place.at(name), "must not be empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(shape(place.at(name), "must be a string")),
    };
    let specversion = required("specversion")?;
    if specversion != "1.0" {
        return Err(shape(
            place.at("specversion"),
            format!("must be `1.0`, not `{}` (Sparky reads CloudEvents 1.0)", quote(&specversion)),
        ));
    }
    let id = required("id")?;
    let source = required("source")?;
    let kind = required("type")?;
    let subject = match attr("subject") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
        Some(_) => return Err(shape(place.at("subject"), "must be a string")),
    };
    let time = match attr("time") {
        None => None,
        Some(Value::String(t)) => {
            Some(DateTime::parse_from_rfc3339(t.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                shape(
                    place.at("time"),
                    format!("must be an RFC 3339 time such as `2018-04-05T17:31:00Z`, not `{}`", quote(t)),
                )
            })?)
        }
        Some(_) => return Err(shape(place.at("time"), "must be an RFC 3339 time as a string")),
    };
    Ok(Context { id, source, kind, subject, time })
}

/// The event's data as Sparky reads it. A valid `data_base64` is decoded and, when it is
/// text, added to the event as `data` (JSON when it parses as JSON and the content type is
/// JSON or unset), so that matchers reach it as `payload.data`; an invalid one is noted.
fn read_data(ce: &mut Map<String, Value>, place: Place, notes: &mut Vec<String>) -> Option<Value> {
    if let Some(data) = ce.get("data") {
        return Some(data.clone());
    }
    let encoded = match ce.get("data_base64")? {
        Value::Null => return None,
        Value::String(s) => s.trim().to_string(),
        _ => {
            notes.push(format!(
                "`{}` is not a base64 string; the event is kept without its data",
                place.at("data_base64")
            ));
            return None;
        }
    };
    let bytes = match STANDARD_PAD_INDIFFERENT.decode(encoded.as_bytes()) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!(
                "`{}` is not valid base64 ({}); the event is kept without its data",
                place.at("data_base64"),
                e.to_string().trim_end_matches('.').to_ascii_lowercase()
            ));
            return None;
        }
    };
    // Binary data (not UTF-8) stays as sent: only `data_base64`.
    let text = String::from_utf8(bytes).ok()?;
    let json_type = ce.get("datacontenttype").and_then(Value::as_str).is_none_or(is_json_type);
    let data = json_type.then(|| serde_json::from_str::<Value>(&text).ok()).flatten().unwrap_or(Value::String(text));
    ce.insert("data".into(), data.clone());
    Some(data)
}

fn str_at<'a>(v: Option<&'a Value>, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v?, |v, k| v.get(k))?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// The last segment of an identifier: `service/myapp` → `myapp`, `myApp` → `myApp`.
fn last_segment(id: &str) -> Option<String> {
    id.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).map(str::to_string)
}

/// The name in a package URL: `pkg:oci/myapp@sha256%3A0b31…` → `myapp`. `None` for an
/// artifact id that is not a purl (a bare digest).
fn purl_name(purl: &str) -> Option<String> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split(['?', '#']).next()?;
    let path = rest.rsplit_once('@').map_or(rest, |(p, _)| p);
    let name = path.rsplit('/').next().filter(|n| !n.is_empty() && path.contains('/'))?;
    header_value(name).ok()
}

/// A source for a fingerprint: without the slashes that open and close URI-references
/// (`/monitoring/prod1/` → `monitoring/prod1`), so none reads `cloudevents//…`.
fn trimmed_source(source: &str) -> &str {
    let t = source.trim_matches('/');
    if t.is_empty() { source } else { t }
}

/// What a CDEvents `type` says: `dev.cdevents.incident.detected.0.3.0` → (`incident`,
/// `detected`, `0.3.0`).
fn cdevents_type(kind: &str) -> Option<(&str, &str, &str)> {
    let rest = kind.strip_prefix("dev.cdevents.")?;
    let mut parts = rest.splitn(3, '.');
    Some((parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or("")))
}

/// Severity of an event that names none: a CDEvents incident is a `warning` (like an alert
/// with no severity: neither lost nor paged for); anything else, a record of something that
/// happened, is `info`.
fn default_severity(kind: &Kind) -> Severity {
    if *kind == Kind::Incident { Severity::Warning } else { Severity::Info }
}

fn read_event(
    mut ce: Map<String, Value>,
    place: Place,
    received_at: DateTime<Utc>,
    notes: &mut Vec<String>,
) -> Result<Event, IngestError> {
    let ctx = read_context(&ce, place)?;
    let data = read_data(&mut ce, place, notes);

    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    let mut links = Vec::new();
    labels.insert("type".to_string(), ctx.kind.clone());
    labels.insert("source".to_string(), ctx.source.clone());
    if let Some(s) = &ctx.subject {
        labels.insert("subject".to_string(), s.clone());
    }
    for (k, v) in &ce {
        if !CORE.contains(&k.as_str())
            && let Some(text) = scalar_text(v)
        {
            labels.insert(k.clone(), text);
        }
    }
    for key in ["datacontenttype", "dataschema"] {
        if let Some(v) = ce.get(key).and_then(Value::as_str) {
            annotations.insert(key.to_string(), v.to_string());
        }
    }
    if ctx.source.starts_with("http://") || ctx.source.starts_with("https://") {
        links.push(Link { rel: "source".into(), url: ctx.source.clone() });
    }

    let mut kind = Kind::Change;
    let mut status = Status::Info;
    let mut service = None;
    let mut fingerprint =
        format!("{SOURCE}/{}/{}", trimmed_source(&ctx.source), ctx.subject.as_deref().unwrap_or(&ctx.id));
    let mut summary = match &ctx.subject {
        Some(s) => format!("{} ({}, subject {s})", ctx.kind, ctx.source),
        None => format!("{} ({})", ctx.kind, ctx.source),
    };
    let mut occurred_at = ctx.time;
    let mut severity_text = ce.get("severity").and_then(scalar_text).map(|s| ("severity", s));
    if severity_text.is_none() {
        severity_text =
            data.as_ref().and_then(|d| d.get("severity")).and_then(scalar_text).map(|s| ("data.severity", s));
    }

    if let Some((subject_kind, predicate, version)) = cdevents_type(&ctx.kind) {
        // The CDEvent is the data (binary mode: the body).
        let cdevent = data.as_ref().filter(|d| d.is_object());
        let subject = cdevent.and_then(|d| d.get("subject"));
        let content = subject.and_then(|s| s.get("content"));
        let subject_id = str_at(subject, &["id"]);
        let subject_source = str_at(subject, &["source"]).unwrap_or(&ctx.source);
        let environment = str_at(content, &["environment", "id"]);
        let artifact = str_at(content, &["artifactId"]);
        let description = str_at(content, &["description"]);
        labels.insert("cdevent".into(), format!("{subject_kind}.{predicate}"));
        if !version.is_empty() {
            labels.insert("cdevents_version".into(), version.to_string());
        }
        if let Some(id) = subject_id {
            labels.entry("subject".into()).or_insert_with(|| id.to_string());
        }
        let mut put = |key: &str, value: Option<&str>| {
            if let Some(v) = value {
                labels.insert(key.into(), v.to_string());
            }
        };
        put("environment", environment);
        put("environment_source", str_at(content, &["environment", "source"]));
        put("artifact", artifact);
        put("chain_id", str_at(cdevent, &["context", "chainId"]));
        if let Some(d) = description {
            annotations.insert("description".into(), d.to_string());
        }
        if let Some(ticket) = str_at(content, &["ticketURI"]) {
            annotations.insert("ticket_uri".into(), ticket.to_string());
            if ticket.starts_with("http://") || ticket.starts_with("https://") {
                links.push(Link { rel: "ticket".into(), url: ticket.to_string() });
            }
        }
        if let Some(Value::Object(custom)) = cdevent.and_then(|d| d.get("customData")) {
            for (k, v) in custom {
                if let Some(text) = scalar_text(v) {
                    annotations.entry(k.clone()).or_insert(text);
                }
            }
            if severity_text.is_none() {
                severity_text = custom.get("severity").and_then(scalar_text).map(|s| ("data.customData.severity", s));
            }
        }
        if occurred_at.is_none() {
            occurred_at = str_at(cdevent, &["context", "timestamp"])
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
        }
        let artifact_name = artifact.and_then(purl_name);
        // The service an incident names, or the one a service event is about (its subject).
        let referenced = str_at(content, &["service", "id"]).and_then(last_segment);
        service = match subject_kind {
            "service" => subject_id.and_then(last_segment).or(artifact_name),
            "incident" => referenced.or(artifact_name),
            _ => referenced,
        };
        let on = |s: &mut String| {
            if let Some(svc) = &service {
                s.push_str(&format!(" on {svc}"));
            }
            if let Some(env) = environment {
                s.push_str(&format!(" in {env}"));
            }
        };
        match (subject_kind, predicate) {
            ("incident", "detected" | "reported" | "resolved") => {
                kind = Kind::Incident;
                status = if predicate == "resolved" { Status::Resolved } else { Status::Firing };
                // The incident's own identity (subject id within its source), so that its
                // detection, report and resolution share one fingerprint.
                match subject_id {
                    Some(id) => fingerprint = format!("{SOURCE}/{}/{id}", trimmed_source(subject_source)),
                    None => notes.push(format!(
                        "`{}` is missing (CDEvent `{}`); the fingerprint is the CloudEvent's own",
                        place.at("data.subject.id"),
                        ctx.kind
                    )),
                }
                let mut s = format!("incident {predicate}");
                on(&mut s);
                s.push_str(&format!(": {}", description.or(subject_id).unwrap_or(&ctx.id)));
                summary = s;
            }
            ("service", "deployed" | "upgraded" | "rolledback") => {
                kind = Kind::Deploy;
                let what = service.clone().or_else(|| subject_id.map(str::to_string)).unwrap_or_else(|| ctx.id.clone());
                summary = format!("service {predicate}: {what}");
                if let Some(env) = environment {
                    summary.push_str(&format!(" to {env}"));
                }
            }
            _ => {
                summary = format!("{subject_kind} {predicate}: {}", subject_id.unwrap_or(&ctx.id));
            }
        }
        if cdevent.is_none() {
            notes.push(format!(
                "`{}` is not a CDEvent object (type `{}`); only the CloudEvents context is read",
                place.at("data"),
                ctx.kind
            ));
        }
    }

    let default = default_severity(&kind);
    let severity = match severity_text {
        None => default,
        Some((from, text)) => Severity::parse_loose(&text).unwrap_or_else(|| {
            notes.push(format!(
                "`{}` `{}` is not a severity Sparky reads; `{}` is used",
                place.at(from),
                quote(&text),
                default.as_str()
            ));
            default
        }),
    };
    let occurred_at = occurred_at.unwrap_or_else(|| {
        notes.push(format!("`{}` is missing; the time of receipt stands in", place.at("time")));
        received_at
    });
    Ok(Event {
        // `source` + `id` identify a CloudEvent (spec: "Consumers MAY assume that Events with
        // identical source and id are duplicates").
        id: stable_id(&[SOURCE, &ctx.source, &ctx.id]),
        source: SOURCE.into(),
        kind,
        status,
        fingerprint,
        service,
        severity,
        summary,
        labels,
        annotations,
        links,
        occurred_at,
        received_at,
        delivery_id: Some(delivery_id(&ctx.source, &ctx.id)),
        payload: Value::Object(ce),
    })
}

/// A CloudEvent's delivery id: `<source> <id>`. Only the pair is unique (an `id` alone may
/// repeat across sources); the source's own `%` and spaces are escaped so that no other pair
/// reads the same.
fn delivery_id(source: &str, id: &str) -> String {
    format!("{} {id}", source.replace('%', "%25").replace(' ', "%20"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_unquoted_and_percent_decoded() {
        assert_eq!(header_value("Euro%20%E2%82%AC%20%F0%9F%98%80").unwrap(), "Euro € 😀");
        assert_eq!(header_value("\"quoted \\\"value\\\"\"").unwrap(), "quoted \"value\"");
        assert_eq!(header_value("100%").unwrap(), "100%");
        assert_eq!(header_value("%c3%a9").unwrap(), "é");
        assert!(header_value("%C0%A0").is_err(), "an overlong encoding must be refused");
    }

    #[test]
    fn names_from_identifiers() {
        assert_eq!(last_segment("service/myapp").as_deref(), Some("myapp"));
        assert_eq!(last_segment("myApp").as_deref(), Some("myApp"));
        assert_eq!(last_segment("/namespace/taskrun-123/").as_deref(), Some("taskrun-123"));
        assert_eq!(
            purl_name("pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427")
                .as_deref(),
            Some("myapp")
        );
        assert_eq!(purl_name("pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c").as_deref(), Some("myapp"));
        assert_eq!(purl_name("0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"), None);
        assert_eq!(
            cdevents_type("dev.cdevents.incident.detected.0.1.0-draft"),
            Some(("incident", "detected", "0.1.0-draft"))
        );
        assert_eq!(cdevents_type("com.example.someevent"), None);
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("application/cdevents+json; charset=utf-8"));
        assert!(is_json_type("Text/JSON"));
        assert!(!is_json_type("text/xml"));
        assert!(!is_json_type("application/vnd.apache.thrift.binary"));
    }
}
