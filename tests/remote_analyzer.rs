//! The remote analyzer against a local fake OpenAI-compatible server: the request it sends
//! (path, key, model, structured-output schema, the package) and what it makes of each kind
//! of answer, good, malformed, failed, slow, huge or absent.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sparky::analysis::remote::*;
use sparky::event::Severity;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-test-SECRET-4242";
const MODEL: &str = "test-model";
const MARKER: &str = "MARKER-7f3a";

#[derive(Clone)]
enum Scenario {
    /// 200, a chat completion whose message content is this text.
    Content(String),
    /// This status and body.
    Status(u16, &'static str),
    /// Sleeps, then answers well.
    Sleep(Duration),
    /// 200 with this body as is.
    Body(String),
}

struct Fake {
    scenario: Scenario,
    key: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
    /// The user message of each request.
    users: Mutex<Vec<String>>,
}

impl Fake {
    /// Everything the client must send; the first problem, for a 418 the test will show.
    fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value, String> {
        if method != Method::POST {
            return Err(format!("method {method}"));
        }
        if uri.path() != self.path || uri.query() != self.query {
            return Err(format!("path {uri}"));
        }
        let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
        if auth != self.key.map(|k| format!("Bearer {k}")) {
            return Err(format!("authorization {auth:?}"));
        }
        if headers.get("content-type").is_none_or(|v| v != "application/json") {
            return Err("content-type".into());
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
        let format = &body["response_format"];
        let problems = [
            (body["model"] != MODEL, "model"),
            (body["temperature"] != json!(0.0), "temperature"),
            (body["stream"] != json!(false), "stream"),
            (format["type"] != "json_schema", "response_format.type"),
            (format["json_schema"]["name"] != "sparky_analysis", "json_schema.name"),
            (format["json_schema"]["strict"] != json!(true), "json_schema.strict"),
            (format["json_schema"]["schema"] != Remote::answer_schema(), "json_schema.schema"),
            (body["messages"][0]["role"] != "system", "messages[0].role"),
            (!body["messages"][0]["content"].as_str().unwrap_or("").contains("ONLY one JSON object"), "system prompt"),
            (body["messages"][1]["role"] != "user", "messages[1].role"),
            (!body["messages"][1]["content"].as_str().unwrap_or("").contains(MARKER), "package in the user message"),
        ];
        if let Some((_, what)) = problems.iter().find(|(bad, _)| *bad) {
            return Err(format!("{what} is wrong in {body}"));
        }
        Ok(body)
    }
}

async fn handle(State(fake): State<Arc<Fake>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request = match fake.check(&method, &uri, &headers, &body) {
        Ok(request) => request,
        Err(problem) => return (StatusCode::IM_A_TEAPOT, format!("fake server: {problem}")).into_response(),
    };
    fake.users.lock().unwrap().push(request["messages"][1]["content"].as_str().unwrap().to_string());
    match fake.scenario.clone() {
        Scenario::Content(content) => completion(&content),
        Scenario::Status(status, body) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
        Scenario::Sleep(pause) => {
            tokio::time::sleep(pause).await;
            completion(&good().to_string())
        }
        Scenario::Body(body) => ([("content-type", "application/json")], body).into_response(),
    }
}

fn completion(content: &str) -> Response {
    let body = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2 }
    });
    axum::Json(body).into_response()
}

struct Server {
    base: String,
    fake: Arc<Fake>,
}

async fn serve(scenario: Scenario, key: Option<&'static str>) -> Server {
    serve_at(scenario, key, "/v1/chat/completions", None).await
}

async fn serve_at(
    scenario: Scenario,
    key: Option<&'static str>,
    path: &'static str,
    query: Option<&'static str>,
) -> Server {
    let fake = Arc::new(Fake { scenario, key, path, query, users: Mutex::default() });
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base, fake }
}

fn config(url: &str, key: Option<&str>) -> RemoteConfig {
    RemoteConfig {
        url: url.to_string(),
        model: MODEL.to_string(),
        api_key: key.map(str::to_string),
        timeout: Some("5s".to_string()),
        max_tokens: None,
        temperature: None,
    }
}

fn remote(server: &Server, key: Option<&str>) -> Remote {
    Remote::new(config(&format!("{}/v1", server.base), key)).unwrap()
}

fn package() -> Value {
    json!({
        "event": { "id": MARKER, "service": "checkout", "title": "HTTP 500 rate above 5%" },
        "deploys": [{ "id": "d-42", "service": "checkout", "minutes_before": 2 }]
    })
}

fn good() -> Value {
    json!({
        "summary": "checkout returns 500s since deploy d-42",
        "root_cause": "deploy d-42 broke the payment client",
        "confidence": 92,
        "impact": { "downstream": ["orders", "emails"], "severity": "high" },
        "evidence": ["errors began 2 minutes after d-42", "the errors name the payment client"],
        "proposals": [{
            "generator": "revert",
            "confidence": 88.5,
            "summary": "revert deploy d-42",
            "args": [{ "name": "deploy", "value": "d-42" }, { "name": "factor", "value": 1.5 }]
        }]
    })
}

/// A message for people: lowercase start, no trailing period, names the endpoint, hides the key.
fn assert_readable(e: &RemoteError, endpoint: &str) {
    let text = e.to_string();
    assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
    assert!(!text.ends_with('.'), "{text}");
    assert!(text.contains(endpoint), "{text}");
    assert_eq!(e.endpoint(), endpoint);
    assert!(!text.contains(KEY) && !format!("{e:?}").contains(KEY), "{text}");
}

async fn malformed(content: Value) -> String {
    let server = serve(Scenario::Content(content.as_str().map_or(content.to_string(), str::to_string)), None).await;
    match remote(&server, None).ask(&package()).await {
        Err(e @ RemoteError::Malformed { .. }) => {
            assert_readable(&e, &format!("{}/v1/chat/completions", server.base));
            let RemoteError::Malformed { reason, .. } = e else { unreachable!() };
            reason
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_answer_becomes_the_analysis() {
    let server = serve(Scenario::Content(good().to_string()), Some(KEY)).await;
    let analysis = remote(&server, Some(KEY)).ask(&package()).await.unwrap();
    assert_eq!(analysis.analyzer, "remote test-model");
    assert_eq!(analysis.summary, "checkout returns 500s since deploy d-42");
    assert_eq!(analysis.root_cause.as_deref(), Some("deploy d-42 broke the payment client"));
    assert_eq!(analysis.confidence, 92.0);
    assert_eq!(analysis.impact.downstream, ["orders", "emails"]);
    assert_eq!(analysis.impact.severity, Some(Severity::High));
    assert_eq!(analysis.evidence.len(), 2);
    assert_eq!(analysis.proposals.len(), 1);
    let p = &analysis.proposals[0];
    assert_eq!((p.generator.as_str(), p.confidence, p.summary.as_str()), ("revert", 88.5, "revert deploy d-42"));
    assert_eq!(serde_json::to_value(&p.args).unwrap(), json!({ "deploy": "d-42", "factor": 1.5 }));
    assert!(analysis.notes.is_empty());
    let users = server.fake.users.lock().unwrap();
    assert_eq!(users.len(), 1, "one request, no retries");
    assert!(users[0].contains(&serde_json::to_string_pretty(&package()).unwrap()));
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent() {
    // The fake answers 418 if an Authorization header arrives when no key is configured.
    let server = serve(Scenario::Content(good().to_string()), None).await;
    assert!(remote(&server, None).ask(&package()).await.is_ok());
}

#[tokio::test]
async fn an_answer_in_json_fences_is_accepted() {
    let fenced = format!("```json\n{}\n```", serde_json::to_string_pretty(&good()).unwrap());
    let server = serve(Scenario::Content(fenced), None).await;
    let analysis = remote(&server, None).ask(&package()).await.unwrap();
    assert_eq!(analysis.proposals[0].generator, "revert");
}

#[tokio::test]
async fn malformed_answers_say_precisely_what_is_wrong() {
    let reason = malformed(json!("Sure! The deploy d-42 is to blame.")).await;
    assert!(
        reason.starts_with("the answer is not JSON (expected value at line 1 column 1), it starts with `Sure!"),
        "{reason}"
    );

    let mut missing = good();
    missing.as_object_mut().unwrap().remove("evidence");
    let reason = malformed(missing).await;
    assert_eq!(reason, "`evidence`: missing; every field is required (null where a value is unknown)");

    let mut rollback = good();
    rollback["proposals"][0]["generator"] = json!("rollback");
    assert_eq!(
        malformed(rollback).await,
        "`proposals[0].generator`: `rollback` is not a fix generator; known: config_value, memory_limit, patch, \
         replicas_floor, revert, timeout"
    );

    let mut sure = good();
    sure["confidence"] = json!(250);
    assert_eq!(malformed(sure).await, "`confidence`: 250 is not a percent; write a number from 0 to 100");

    let mut extra = good();
    extra["impact"]["blast_radius"] = json!("big");
    assert!(malformed(extra).await.starts_with("`impact.blast_radius`: unknown field"));
}

#[tokio::test]
async fn a_body_that_is_no_chat_completion_is_malformed() {
    let server = serve(Scenario::Body("<html>It works!</html>".into()), None).await;
    let e = remote(&server, None).ask(&package()).await.unwrap_err();
    let RemoteError::Malformed { reason, .. } = &e else { panic!("{e:?}") };
    assert!(reason.starts_with("the response is not JSON"), "{reason}");
    assert!(reason.contains("is `url` an OpenAI-compatible endpoint?"), "{reason}");
}

#[tokio::test]
async fn error_statuses_are_reported_with_a_hint() {
    let cases = [
        (500, "{\"error\":{\"message\":\"upstream exploded\"}}", "the server failed; check its logs and status"),
        (401, "{\"error\":{\"message\":\"Incorrect API key provided\"}}", "check `api_key`"),
        (404, "not found", "check `url` (the base URL up to `/v1`) and `model`"),
        (307, "", "the server redirected; write the final URL in `url`"),
    ];
    for (code, body, hint) in cases {
        let server = serve(Scenario::Status(code, body), Some(KEY)).await;
        let e = remote(&server, Some(KEY)).ask(&package()).await.unwrap_err();
        let endpoint = format!("{}/v1/chat/completions", server.base);
        assert_readable(&e, &endpoint);
        assert_eq!(e, RemoteError::Status { endpoint: endpoint.clone(), status: code, body: body.to_string() });
        let text = e.to_string();
        assert!(text.contains(&format!("answered HTTP {code}")) && text.ends_with(hint), "{text}");
        assert_eq!(e.kind(), "status");
    }
    // A long error body is cut to about 300 bytes.
    let long: &'static str = "x".repeat(10_000).leak();
    let server = serve(Scenario::Status(503, long), None).await;
    let RemoteError::Status { body, .. } = remote(&server, None).ask(&package()).await.unwrap_err() else { panic!() };
    assert!(body.len() <= 304 && body.ends_with('…'), "{}", body.len());
}

#[tokio::test]
async fn a_slow_server_times_out_fast() {
    let server = serve(Scenario::Sleep(Duration::from_secs(10)), None).await;
    let mut c = config(&format!("{}/v1", server.base), None);
    c.timeout = Some("300ms".into());
    let remote = Remote::new(c).unwrap();
    let start = Instant::now();
    let e = remote.ask(&package()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let endpoint = format!("{}/v1/chat/completions", server.base);
    assert_eq!(e, RemoteError::Timeout { endpoint: endpoint.clone(), after_ms: 300 });
    assert_readable(&e, &endpoint);
    assert!(e.to_string().contains("did not answer within 300ms"), "{e}");
}

/// A raw HTTP server: reads each request, answers it with `head`, then `chunks` times `chunk`
/// with `pause` before each.
async fn raw_server(head: &'static str, chunk: Vec<u8>, chunks: usize, pause: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let chunk = chunk.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await.is_none() || socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..chunks {
                    tokio::time::sleep(pause).await;
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

/// Reads one request: the head, then `content-length` bytes of body.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<()> {
    let mut seen = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    let head_end = loop {
        let n = socket.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        seen.extend_from_slice(&buf[..n]);
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    while seen.len() < head_end + length {
        let n = socket.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        seen.extend_from_slice(&buf[..n]);
    }
    Some(())
}

#[tokio::test]
async fn a_huge_body_is_not_read_past_the_limit() {
    // With a Content-Length: refused before reading.
    let huge = completion_text(&"x".repeat(2 * 1024 * 1024));
    let server = serve(Scenario::Body(huge), None).await;
    let e = remote(&server, None).ask(&package()).await.unwrap_err();
    let RemoteError::Malformed { reason, .. } = &e else { panic!("{e:?}") };
    assert_eq!(reason, "the response is larger than 1 MiB");

    // Chunked, without a length, and endless: reading stops at the limit.
    let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
    chunk.extend(std::iter::repeat_n(b' ', 64 * 1024));
    chunk.extend_from_slice(b"\r\n");
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    let base = raw_server(head, chunk, 1_000_000, Duration::ZERO).await;
    let start = Instant::now();
    let e = Remote::new(config(&format!("{base}/v1"), None)).unwrap().ask(&package()).await.unwrap_err();
    let RemoteError::Malformed { reason, .. } = &e else { panic!("{e:?}") };
    assert_eq!(reason, "the response is larger than 1 MiB");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

fn completion_text(content: &str) -> String {
    json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": content }, "finish_reason": "stop" }] })
        .to_string()
}

#[tokio::test]
async fn a_body_that_trickles_past_the_timeout_times_out() {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
    let base = raw_server(head, b"{".to_vec(), 1000, Duration::from_millis(100)).await;
    let mut c = config(&format!("{base}/v1"), None);
    c.timeout = Some("300ms".into());
    let start = Instant::now();
    let e = Remote::new(c).unwrap().ask(&package()).await.unwrap_err();
    assert!(matches!(e, RemoteError::Timeout { after_ms: 300, .. }), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let remote = Remote::new(config(&format!("http://127.0.0.1:{port}/v1"), Some(KEY))).unwrap();
    let start = Instant::now();
    let e = remote.ask(&package()).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    let endpoint = format!("http://127.0.0.1:{port}/v1/chat/completions");
    assert_readable(&e, &endpoint);
    let RemoteError::Connect { reason, .. } = &e else { panic!("{e:?}") };
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(e.to_string().contains("check `url` and that the server is running"), "{e}");
}

#[tokio::test]
async fn a_large_package_is_cut_and_noted() {
    let server = serve(Scenario::Content(good().to_string()), None).await;
    let mut big = package();
    big["logs"] = json!(vec!["GET /checkout 500 upstream connect error"; 5000]);
    let analysis = remote(&server, None).ask(&big).await.unwrap();
    assert_eq!(analysis.notes, ["the context package was cut to its first 48 KiB for the remote analyzer"]);
    let user = server.fake.users.lock().unwrap()[0].clone();
    assert!(user.len() <= MAX_PACKAGE_BYTES + 300, "{}", user.len());
    assert!(user.ends_with("[... cut]"));
}

#[tokio::test]
async fn an_azure_style_url_keeps_its_query() {
    let server = serve_at(
        Scenario::Content(good().to_string()),
        Some(KEY),
        "/openai/deployments/gpt/chat/completions",
        Some("api-version=2024-10-21"),
    )
    .await;
    let url = format!("{}/openai/deployments/gpt/?api-version=2024-10-21", server.base);
    let remote = Remote::new(config(&url, Some(KEY))).unwrap();
    assert_eq!(remote.endpoint(), format!("{}/openai/deployments/gpt/chat/completions", server.base));
    assert!(remote.ask(&package()).await.is_ok());
}

#[test]
fn the_configuration_reads_from_yaml() {
    let yaml = "url: https://api.openai.com/v1\nmodel: gpt-4o-mini\napi_key: sk-abc\ntimeout: 20s\nmax_tokens: 2048\n";
    let c: RemoteConfig = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(
        (c.url.as_str(), c.model.as_str(), c.max_tokens),
        ("https://api.openai.com/v1", "gpt-4o-mini", Some(2048))
    );
    let remote = Remote::new(c).unwrap();
    assert_eq!((remote.model(), remote.timeout_ms()), ("gpt-4o-mini", 20_000));
    assert_eq!(remote.endpoint(), "https://api.openai.com/v1/chat/completions");

    let local: RemoteConfig = serde_yaml::from_str("url: http://127.0.0.1:8080/v1\nmodel: qwen\n").unwrap();
    assert_eq!(Remote::new(local).unwrap().timeout_ms(), DEFAULT_TIMEOUT_MS);

    let typo = serde_yaml::from_str::<RemoteConfig>("url: http://x/v1\nmodel: m\napi-key: k\n").unwrap_err();
    assert!(typo.to_string().contains("unknown field `api-key`"), "{typo}");
}

#[test]
fn the_configuration_is_validated() {
    type Change = fn(&mut RemoteConfig);
    let cases: &[(Change, &str)] = &[
        (|c| c.url = String::new(), "`url` is empty; write the base URL up to `/v1`"),
        (|c| c.url = "api.openai.com/v1".into(), "`url`: `api.openai.com/v1` is not a URL"),
        (|c| c.url = "ftp://host/v1".into(), "`url`: the scheme `ftp` is not supported"),
        (
            |c| c.url = "https://api.openai.com/v1/chat/completions".into(),
            "`url`: write the base URL without `/chat/completions` (Sparky adds it), e.g. `/v1`",
        ),
        (|c| c.url = "https://me:pw@host/v1".into(), "`url` carries credentials"),
        (|c| c.model = " ".into(), "`model` is empty"),
        (|c| c.timeout = Some("ten seconds".into()), "`timeout`: `ten seconds` is not a duration; write e.g. `10s`"),
        (|c| c.timeout = Some("0s".into()), "`timeout` must be more than zero"),
        (|c| c.timeout = Some("1h".into()), "`timeout`: `1h` is longer than 10 minutes"),
        (|c| c.max_tokens = Some(0), "`max_tokens` must be at least 1"),
        (|c| c.temperature = Some(7.0), "`temperature`: 7 is out of range; write a number from 0 to 2"),
        (|c| c.temperature = Some(f64::NAN), "`temperature`: NaN is out of range"),
        (|c| c.api_key = Some(String::new()), "`api_key` is empty"),
        (|c| c.api_key = Some("sk-a\nb".into()), "`api_key` contains characters that cannot be sent"),
    ];
    for (change, expected) in cases {
        let mut c = config("http://127.0.0.1:8080/v1", Some(KEY));
        change(&mut c);
        let e = Remote::new(c).unwrap_err();
        assert!(e.starts_with(expected), "expected `{expected}`, got `{e}`");
        assert!(!e.contains(KEY) && !e.contains("sk-a"), "{e}");
    }
    // The password of a URL is not echoed either.
    let mut c = config("https://me:hunter2@/v1", None);
    c.model = "m".into();
    let e = Remote::new(c).unwrap_err();
    assert!(!e.contains("hunter2"), "{e}");
    // A key pasted with a trailing newline is fine.
    assert!(Remote::new(config("http://127.0.0.1:8080/v1", Some("sk-abc\n"))).is_ok());
}

#[test]
fn debug_never_shows_the_key() {
    let c = config("https://api.openai.com/v1", Some(KEY));
    let shown = format!("{c:?} {c:#?}");
    assert!(!shown.contains(KEY) && shown.contains("<redacted>"), "{shown}");
    let remote = Remote::new(c).unwrap();
    let shown = format!("{remote:?} {remote:#?}");
    assert!(!shown.contains(KEY) && shown.contains("<redacted>") && shown.contains(MODEL), "{shown}");
    let keyless = format!("{:?}", config("http://127.0.0.1:8080/v1", None));
    assert!(keyless.contains("api_key: None"), "{keyless}");
}
