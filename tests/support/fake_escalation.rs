//! A fake escalation back end for tests: Jira (Cloud REST v3 and Server REST v2), the PagerDuty
//! Events API v2 and Slack incoming webhooks, all on one `127.0.0.1:<random port>`, in memory,
//! with their real paths, validation and JSON shapes, and fault injection.
//!
//! ```ignore
//! #[path = "support/fake_escalation.rs"]
//! mod fake_escalation;
//! use fake_escalation::{Endpoint, FakeEscalation};
//!
//! let fake = FakeEscalation::start().await;
//! fake.commit_then_hang_next(Endpoint::JiraCreate, 1, Duration::from_secs(2));
//! // ... point Jira at fake.url(), PagerDuty at fake.url(), Slack at format!("{}/slack/T/B/X", fake.url()) ...
//! assert_eq!(fake.issues_with_label("inc-42").len(), 1);
//! assert_eq!(fake.pd_alerts()[0].state, "resolved");
//! ```
//!
//! What it serves (`{v}` is `3`, Cloud, or `2`, Server; `{issue}` is a key or an id):
//! - `GET /rest/api/3/search/jql` (Cloud) and `GET /rest/api/2/search` (Server), also as `POST`
//!   with a JSON body (`jql`, `fields`, `maxResults`): JQL of `AND`ed clauses on `labels`,
//!   `project`, `statusCategory`, `status`, `key` with `=` or `!=`, values bare or quoted;
//!   `ORDER BY` is ignored (issues come in creation order). Other JQL is a 400. An issue always
//!   carries `summary`, `status` (with `statusCategory`) and `labels`, plus `priority`,
//!   `issuetype`, `project`, `components`, `description` when named in `fields` (or `*all`).
//!   Cloud answers `{issues, isLast[, nextPageToken]}` and refuses an empty JQL (unbounded);
//!   Server answers `{startAt, maxResults, total, issues}`. `GET /rest/api/3/search`, removed
//!   from Cloud, is a 410 as there.
//! - `POST /rest/api/{v}/issue`: validated as Jira does (a known project, see
//!   [`FakeEscalation::add_project`]; a summary of one line and at most 255 characters; an issue
//!   type; a configured priority; an ADF document description on v3, a string on v2; labels
//!   without spaces); 400 `{"errorMessages":[],"errors":{field: message}}` naming every bad
//!   field, or 201 `{id, key, self}` with keys numbered per project. A new issue is "To Do".
//! - `POST /rest/api/{v}/issue/{issue}/comment`: `{"body": ADF}` on v3, `{"body": "text"}` on v2;
//!   201 with the comment; 404 with Jira's message for an unknown issue.
//! - `GET`, `POST /rest/api/{v}/issue/{issue}/transitions`: transitions `11` "In Progress" and
//!   `31` "Done", less the one to the issue's status; `POST {"transition":{"id":"31"}}` is a 204
//!   and the issue is Done (category `done`, so `statusCategory != Done` no longer finds it); a
//!   transition not offered is a 400.
//! - `POST /v2/enqueue`: PagerDuty events (`trigger`, `acknowledge`, `resolve`), validated
//!   (32-character `routing_key`; `payload.summary` of at most 1024 characters, `source` and
//!   `severity` for a trigger; `dedup_key` of at most 255, required but for a trigger); 202
//!   `{"status":"success","message":"Event processed","dedup_key":...}` (a key is generated for a
//!   trigger without one), 400 `{"status":"invalid event","message":"Event object is invalid",
//!   "errors":[...]}`. Alerts are kept by (routing key, dedup key): a trigger opens one or joins
//!   the open one; acknowledge and resolve move it, and are accepted and dropped when no alert is
//!   open, as PagerDuty does.
//! - `POST /slack/{anything}`: a Slack incoming webhook: 200 `ok` (text/plain) for a JSON object
//!   with a non-empty `text` or `blocks`; 400 `no_text` for other JSON, `invalid_payload` for a
//!   body that is not JSON.
//!
//! Anything else is a 404 (405 for a known path with another method). Jira requests are checked
//! against [`FakeEscalation::require_auth`] when set (401 otherwise).
//!
//! Faults, by [`Endpoint`], each taken by one request: [`FakeEscalation::fail_next`] answers an
//! error (in the service's own error shape, with `Retry-After` when asked) and does nothing;
//! [`FakeEscalation::hang_next`] waits before serving (a client that gives up meanwhile closes
//! the connection and the request is dropped undone); [`FakeEscalation::commit_then_hang_next`]
//! does the work, then waits before answering (the "remote side committed, the client timed out"
//! case). [`FakeEscalation::down`] answers every request 503; [`FakeEscalation::rate_limit_pd`]
//! throttles PagerDuty per routing key (429). Every request is recorded ([`FakeEscalation::calls`])
//! with the status answered, faults included.
//!
//! The server stops when the `FakeEscalation` is dropped.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A routing key of the right length (32 characters) for PagerDuty events.
pub const ROUTING_KEY: &str = "0123456789abcdef0123456789abcdef";

/// What a request is for, from its method and path; faults are queued per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET`/`POST /rest/api/3/search/jql`, `/rest/api/2/search`.
    JiraSearch,
    /// `POST /rest/api/{v}/issue`.
    JiraCreate,
    /// `POST /rest/api/{v}/issue/{issue}/comment`.
    JiraComment,
    /// `GET`/`POST /rest/api/{v}/issue/{issue}/transitions`.
    JiraTransitions,
    /// `POST /v2/enqueue`.
    PagerDuty,
    /// `POST /slack/...`.
    Slack,
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Without the query: `/rest/api/3/issue/OPS-1/comment`.
    pub path: String,
    /// The raw query string, `""` when none.
    pub query: String,
    /// The body as JSON; `Null` when empty, a string when not JSON.
    pub body: Value,
    /// The `Authorization` header, `""` when none.
    pub authorization: String,
    /// The status answered (under [`FakeEscalation::commit_then_hang_next`], the one it answers
    /// after the wait, recorded as the work is done); `0` for a request under
    /// [`FakeEscalation::hang_next`] whose client gave up before it was served.
    pub status: u16,
    /// `None` for a path the fake does not serve.
    pub endpoint: Option<Endpoint>,
    /// When the request arrived.
    pub at: Instant,
}

/// A Jira issue as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// `"10001"`, ...
    pub id: String,
    /// `OPS-1`, ...
    pub key: String,
    pub project: String,
    /// The API that created it: `"cloud"` (v3) or `"server"` (v2).
    pub flavour: String,
    pub summary: String,
    /// As sent: an ADF document (v3), a string (v2), `Null` when none.
    pub description: Value,
    /// The priority name (`Medium` when none was given).
    pub priority: String,
    /// The issue type name (or id, when given by id).
    pub issuetype: String,
    pub labels: Vec<String>,
    /// Component names.
    pub components: Vec<String>,
    /// The status name: `To Do`, `In Progress`, `Done`.
    pub status: String,
    /// The status category key: `new`, `indeterminate`, `done`.
    pub status_category: String,
    /// The `body` of each comment, as sent, in order.
    pub comments: Vec<Value>,
}

/// A PagerDuty alert, by (routing key, dedup key).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub routing_key: String,
    pub dedup_key: String,
    /// `triggered`, `acknowledged`, `resolved`.
    pub state: String,
    /// The `payload` of the last trigger.
    pub payload: Value,
    /// The `links` of the last trigger (`Null` when it had none).
    pub links: Value,
    /// The `event_action` of each event applied to it, in order.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Fail { status: u16, retry_after: Option<u64> },
    Hang(Duration),
    CommitThenHang(Duration),
}

const PRIORITIES: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];

/// The workflow's transitions: (id, name, target status category).
const TRANSITIONS: [(&str, &str, &str); 2] = [("11", "In Progress", "indeterminate"), ("31", "Done", "done")];

struct State {
    url: String,
    calls: Vec<Call>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    down: bool,
    auth: Option<String>,
    projects: BTreeSet<String>,
    priorities: Vec<String>,
    issues: Vec<Issue>,
    last_issue_id: u64,
    last_comment_id: u64,
    issue_numbers: BTreeMap<String, u64>,
    alerts: Vec<Alert>,
    pd_events: Vec<Value>,
    pd_rate: Option<usize>,
    pd_recent: HashMap<String, VecDeque<Instant>>,
    generated_keys: u64,
    slack: Vec<Value>,
}

impl State {
    fn new(url: String) -> State {
        State {
            url,
            calls: Vec::new(),
            faults: HashMap::new(),
            down: false,
            auth: None,
            projects: ["OPS", "CHK"].into_iter().map(String::from).collect(),
            priorities: PRIORITIES.into_iter().map(String::from).collect(),
            issues: Vec::new(),
            last_issue_id: 10000,
            last_comment_id: 10100,
            issue_numbers: BTreeMap::new(),
            alerts: Vec::new(),
            pd_events: Vec::new(),
            pd_rate: None,
            pd_recent: HashMap::new(),
            generated_keys: 0,
            slack: Vec::new(),
        }
    }

    fn insert_issue(&mut self, mut issue: Issue) -> Issue {
        self.last_issue_id += 1;
        let n = self.issue_numbers.entry(issue.project.clone()).or_insert(0);
        *n += 1;
        issue.id = self.last_issue_id.to_string();
        issue.key = format!("{}-{n}", issue.project);
        self.issues.push(issue.clone());
        issue
    }

    fn issue_index(&self, key_or_id: &str) -> Option<usize> {
        self.issues.iter().position(|i| i.key.eq_ignore_ascii_case(key_or_id) || i.id == key_or_id)
    }
}

/// A running fake.
pub struct FakeEscalation {
    url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEscalation {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeEscalation {
    /// Starts a server with projects `OPS` and `CHK`, the default priorities, no issues, no
    /// alerts, no authentication required.
    pub async fn start() -> FakeEscalation {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake escalation server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let state = Arc::new(Mutex::new(State::new(url.clone())));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { handle(state, method, uri, headers, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeEscalation { url, state, task }
    }

    /// `http://127.0.0.1:<port>`: the Jira base URL, the PagerDuty events URL (without
    /// `/v2/enqueue`), and the root of Slack webhook URLs (`{url}/slack/...`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    // ---- configuration ----

    /// A Jira project issues can be filed in (besides `OPS` and `CHK`).
    pub fn add_project(&self, key: &str) {
        self.lock().projects.insert(key.to_string());
    }

    /// Replaces the priority names Jira accepts (by default Highest, High, Medium, Low, Lowest).
    pub fn set_priorities(&self, names: &[&str]) {
        self.lock().priorities = names.iter().map(|n| n.to_string()).collect();
    }

    /// Jira requests must carry exactly this `Authorization` header (e.g. `Basic ...`,
    /// `Bearer ...`), or get a 401.
    pub fn require_auth(&self, header_value: &str) {
        self.lock().auth = Some(header_value.to_string());
    }

    /// An issue someone filed by hand (Cloud, "To Do", priority Medium, type Task); its key.
    pub fn add_issue(&self, project: &str, summary: &str, labels: &[&str]) -> String {
        let issue = Issue {
            id: String::new(),
            key: String::new(),
            project: project.to_string(),
            flavour: "cloud".into(),
            summary: summary.to_string(),
            description: Value::Null,
            priority: "Medium".into(),
            issuetype: "Task".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            components: Vec::new(),
            status: "To Do".into(),
            status_category: "new".into(),
            comments: Vec::new(),
        };
        self.lock().insert_issue(issue).key
    }

    /// Moves an issue to a status, as someone working it would; `category` is `new`,
    /// `indeterminate` or `done`.
    pub fn set_status(&self, key: &str, status: &str, category: &str) {
        let mut s = self.lock();
        if let Some(i) = s.issue_index(key) {
            s.issues[i].status = status.to_string();
            s.issues[i].status_category = category.to_string();
        }
    }

    // ---- faults ----

    fn queue(&self, endpoint: Endpoint, n: usize, fault: Fault) {
        self.lock().faults.entry(endpoint).or_default().extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` requests to `endpoint` are answered `status` (with `Retry-After: <secs>`
    /// when given), in the service's error shape, and do nothing.
    pub fn fail_next(&self, endpoint: Endpoint, n: usize, status: u16, retry_after: Option<u64>) {
        self.queue(endpoint, n, Fault::Fail { status, retry_after });
    }

    /// The next `n` requests to `endpoint` are served (the issue is filed, the event recorded),
    /// then answered only after `hang`.
    pub fn commit_then_hang_next(&self, endpoint: Endpoint, n: usize, hang: Duration) {
        self.queue(endpoint, n, Fault::CommitThenHang(hang));
    }

    /// The next `n` requests to `endpoint` wait `hang` before anything is done; a client that
    /// gives up meanwhile leaves nothing done.
    pub fn hang_next(&self, endpoint: Endpoint, n: usize, hang: Duration) {
        self.queue(endpoint, n, Fault::Hang(hang));
    }

    /// While down, every request is answered 503 (and queued faults wait).
    pub fn down(&self, down: bool) {
        self.lock().down = down;
    }

    /// PagerDuty accepts at most `max_per_second_per_key` events per routing key in any rolling
    /// second; the rest get 429 (and do not count).
    pub fn rate_limit_pd(&self, max_per_second_per_key: usize) {
        self.lock().pd_rate = Some(max_per_second_per_key);
    }

    // ---- assertions ----

    /// Every request received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests to `endpoint`, faults included.
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<Call> {
        self.lock().calls.iter().filter(|c| c.endpoint == Some(endpoint)).cloned().collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// Every Jira issue, in creation order.
    pub fn issues(&self) -> Vec<Issue> {
        self.lock().issues.clone()
    }

    /// The issue with that key (or id).
    pub fn issue(&self, key: &str) -> Option<Issue> {
        let s = self.lock();
        s.issue_index(key).map(|i| s.issues[i].clone())
    }

    /// The issues carrying `label`, whatever their status.
    pub fn issues_with_label(&self, label: &str) -> Vec<Issue> {
        self.lock().issues.iter().filter(|i| i.labels.iter().any(|l| l == label)).cloned().collect()
    }

    /// Every PagerDuty alert, in the order they were opened.
    pub fn pd_alerts(&self) -> Vec<Alert> {
        self.lock().alerts.clone()
    }

    /// The body of every event PagerDuty accepted (202), in order.
    pub fn pd_events(&self) -> Vec<Value> {
        self.lock().pd_events.clone()
    }

    /// The body of every message Slack accepted, in order.
    pub fn slack_messages(&self) -> Vec<Value> {
        self.lock().slack.clone()
    }
}

// ---- answers ----

enum Body {
    Json(Value),
    Text(String),
    Empty,
}

struct Answer {
    status: u16,
    body: Body,
    retry_after: Option<u64>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Answer {
        Answer { status, body: Body::Json(body), retry_after: None }
    }

    fn text(status: u16, body: &str) -> Answer {
        Answer { status, body: Body::Text(body.to_string()), retry_after: None }
    }

    fn empty(status: u16) -> Answer {
        Answer { status, body: Body::Empty, retry_after: None }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.body {
            Body::Json(v) => {
                (status, [(header::CONTENT_TYPE, "application/json;charset=UTF-8")], v.to_string()).into_response()
            }
            Body::Text(t) => (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], t).into_response(),
            Body::Empty => status.into_response(),
        };
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Jira's error body.
fn jira_error(status: u16, messages: &[&str], errors: Value) -> Answer {
    Answer::json(status, json!({ "errorMessages": messages, "errors": errors }))
}

const NO_ISSUE: &str = "Issue does not exist or you do not have permission to see it.";
const NOT_AUTHENTICATED: &str = "You are not authenticated. Authentication required to perform this operation.";

fn pd_invalid(errors: Vec<String>) -> Answer {
    Answer::json(400, json!({ "status": "invalid event", "message": "Event object is invalid", "errors": errors }))
}

fn pd_throttled() -> Answer {
    Answer::json(
        429,
        json!({ "status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later." }),
    )
}

fn fault_answer(endpoint: Endpoint, status: u16, retry_after: Option<u64>) -> Answer {
    let mut answer = match endpoint {
        Endpoint::PagerDuty => match status {
            429 => pd_throttled(),
            400 => pd_invalid(vec!["injected fault".into()]),
            _ => Answer::json(status, json!({ "status": "error", "message": "Internal server error" })),
        },
        Endpoint::Slack => Answer::text(
            status,
            match status {
                400 => "invalid_payload",
                403 => "invalid_token",
                404 => "no_service",
                410 => "channel_is_archived",
                429 => "rate_limited",
                _ => "internal_error",
            },
        ),
        _ => {
            let message = match status {
                400 => "Bad request",
                401 => NOT_AUTHENTICATED,
                403 => "You do not have permission to perform this operation.",
                404 => NO_ISSUE,
                409 => "Conflict",
                429 => "Rate limit exceeded.",
                500 => "Internal server error",
                502 => "Bad gateway",
                503 => "Service unavailable",
                504 => "Gateway timeout",
                _ => "Unexpected error",
            };
            jira_error(status, &[message], json!({}))
        }
    };
    answer.retry_after = retry_after;
    answer
}

// ---- routing ----

enum JiraOp {
    Search,
    Create,
    Comment(String),
    /// `post`: take a transition, else list them.
    Transitions {
        issue: String,
        post: bool,
    },
}

enum Route {
    Jira {
        cloud: bool,
        op: JiraOp,
    },
    PagerDuty,
    Slack,
    /// `/rest/api/3/search`, removed from Cloud.
    Gone,
    NotFound {
        jira: bool,
    },
    MethodNotAllowed {
        jira: bool,
    },
}

impl Route {
    fn endpoint(&self) -> Option<Endpoint> {
        match self {
            Route::Jira { op: JiraOp::Search, .. } => Some(Endpoint::JiraSearch),
            Route::Jira { op: JiraOp::Create, .. } => Some(Endpoint::JiraCreate),
            Route::Jira { op: JiraOp::Comment(_), .. } => Some(Endpoint::JiraComment),
            Route::Jira { op: JiraOp::Transitions { .. }, .. } => Some(Endpoint::JiraTransitions),
            Route::PagerDuty => Some(Endpoint::PagerDuty),
            Route::Slack => Some(Endpoint::Slack),
            _ => None,
        }
    }
}

fn route(method: &Method, path: &str) -> Route {
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["rest", "api", v @ ("2" | "3"), rest @ ..] => {
            let cloud = *v == "3";
            let (op, allowed) = match rest {
                ["search", "jql"] if cloud => (JiraOp::Search, get || post),
                ["search"] if !cloud => (JiraOp::Search, get || post),
                ["search"] => return Route::Gone,
                ["issue"] => (JiraOp::Create, post),
                ["issue", issue, "comment"] => (JiraOp::Comment(issue.to_string()), post),
                ["issue", issue, "transitions"] => {
                    (JiraOp::Transitions { issue: issue.to_string(), post }, get || post)
                }
                _ => return Route::NotFound { jira: true },
            };
            if allowed { Route::Jira { cloud, op } } else { Route::MethodNotAllowed { jira: true } }
        }
        ["v2", "enqueue"] => {
            if post {
                Route::PagerDuty
            } else {
                Route::MethodNotAllowed { jira: false }
            }
        }
        ["slack", rest @ ..] if rest.iter().any(|p| !p.is_empty()) => {
            if post {
                Route::Slack
            } else {
                Route::MethodNotAllowed { jira: false }
            }
        }
        _ => Route::NotFound { jira: false },
    }
}

async fn handle(state: Arc<Mutex<State>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let is_json = !body.is_empty() && serde_json::from_slice::<Value>(&body).is_ok();
    let authorization =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let query = uri.query().unwrap_or_default().to_string();
    let route = route(&method, uri.path());
    let endpoint = route.endpoint();
    let (index, fault) = {
        let mut s = lock(&state);
        let index = s.calls.len();
        s.calls.push(Call {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: query.clone(),
            body: parsed.clone(),
            authorization: authorization.clone(),
            status: 0,
            endpoint,
            at: Instant::now(),
        });
        if s.down {
            s.calls[index].status = 503;
            return Answer::text(503, "Service Unavailable").into_response();
        }
        let fault = endpoint.and_then(|e| s.faults.get_mut(&e).and_then(VecDeque::pop_front));
        (index, fault)
    };
    if let Some(Fault::Hang(hang)) = fault {
        tokio::time::sleep(hang).await;
    }
    let answer = {
        let mut s = lock(&state);
        let answer = match (fault, endpoint) {
            (Some(Fault::Fail { status, retry_after }), Some(endpoint)) => fault_answer(endpoint, status, retry_after),
            _ => serve(&mut s, route, &query, &parsed, is_json, &authorization),
        };
        s.calls[index].status = answer.status;
        answer
    };
    if let Some(Fault::CommitThenHang(hang)) = fault {
        tokio::time::sleep(hang).await;
    }
    answer.into_response()
}

fn serve(s: &mut State, route: Route, query: &str, body: &Value, is_json: bool, authorization: &str) -> Answer {
    match route {
        Route::Jira { cloud, op } => {
            if s.auth.as_deref().is_some_and(|wanted| wanted != authorization) {
                return jira_error(401, &[NOT_AUTHENTICATED], json!({}));
            }
            match op {
                JiraOp::Search => search(s, cloud, query, body),
                JiraOp::Create => create(s, cloud, body, is_json),
                JiraOp::Comment(issue) => comment(s, cloud, &issue, body),
                JiraOp::Transitions { issue, post: false } => list_transitions(s, &issue),
                JiraOp::Transitions { issue, post: true } => transition(s, &issue, body),
            }
        }
        Route::PagerDuty => enqueue(s, body),
        Route::Slack => slack(s, body, is_json),
        Route::Gone => jira_error(
            410,
            &[
                "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
            ],
            json!({}),
        ),
        Route::NotFound { jira: true } => jira_error(404, &["null for uri"], json!({})),
        Route::NotFound { jira: false } => Answer::text(404, "Not Found"),
        Route::MethodNotAllowed { jira: true } => jira_error(405, &["Method Not Allowed"], json!({})),
        Route::MethodNotAllowed { jira: false } => Answer::text(405, "Method Not Allowed"),
    }
}

// ---- Jira ----

fn category_of(key: &str) -> (u64, &'static str) {
    match key {
        "done" => (3, "Done"),
        "indeterminate" => (4, "In Progress"),
        _ => (2, "To Do"),
    }
}

fn status_json(name: &str, category: &str) -> Value {
    let (category_id, category_name) = category_of(category);
    let id = match category {
        "done" => "10002",
        "indeterminate" => "10001",
        _ => "10000",
    };
    json!({
        "name": name, "id": id,
        "statusCategory": { "id": category_id, "key": category, "name": category_name },
    })
}

fn issue_json(base: &str, cloud: bool, issue: &Issue, wanted: &[String]) -> Value {
    let version = if cloud { 3 } else { 2 };
    let all = wanted.iter().any(|w| w == "*all" || w == "*navigable");
    let mut fields = Map::new();
    fields.insert("summary".into(), json!(issue.summary));
    fields.insert("status".into(), status_json(&issue.status, &issue.status_category));
    fields.insert("labels".into(), json!(issue.labels));
    let extra = [
        ("priority", json!({ "name": issue.priority })),
        ("issuetype", json!({ "name": issue.issuetype })),
        ("project", json!({ "key": issue.project })),
        ("components", issue.components.iter().map(|c| json!({ "name": c })).collect()),
        ("description", issue.description.clone()),
    ];
    for (name, value) in extra {
        if all || wanted.iter().any(|w| w == name) {
            fields.insert(name.into(), value);
        }
    }
    json!({
        "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
        "id": issue.id,
        "self": format!("{base}/rest/api/{version}/issue/{}", issue.id),
        "key": issue.key,
        "fields": fields,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(String),
    Other(char),
}

fn tokenize(jql: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = jql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let special = |c: char| c.is_whitespace() || "=!<>~()\",'".contains(c);
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("The quoted string '{s}' has not been completed.")),
                    Some('\\') => {
                        let Some(next) = chars.get(i + 1) else {
                            return Err("The quoted string ends with an escape.".into());
                        };
                        s.push(*next);
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        s.push(*other);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if "=!<>~".contains(c) {
            let start = i;
            while i < chars.len() && "=!<>~".contains(chars[i]) {
                i += 1;
            }
            out.push(Tok::Op(chars[start..i].iter().collect()));
        } else if "(),".contains(c) {
            out.push(Tok::Other(c));
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !special(chars[i]) {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        }
    }
    Ok(out)
}

/// One `field = value` or `field != value`; `field` lower-cased.
struct Clause {
    field: String,
    negated: bool,
    value: String,
}

fn parse_jql(jql: &str) -> Result<Vec<Clause>, String> {
    let tokens = tokenize(jql)?;
    let mut clauses = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let field = match &tokens[i] {
            Tok::Word(w) if w.eq_ignore_ascii_case("order") => {
                return match tokens.get(i + 1) {
                    Some(Tok::Word(by)) if by.eq_ignore_ascii_case("by") => Ok(clauses),
                    _ => Err("Expecting 'BY' after 'ORDER'.".into()),
                };
            }
            Tok::Word(w) | Tok::Str(w) => w.to_ascii_lowercase(),
            other => return Err(format!("Expecting a field name but got {other:?}.")),
        };
        let negated = match tokens.get(i + 1) {
            Some(Tok::Op(op)) if op == "=" => false,
            Some(Tok::Op(op)) if op == "!=" => true,
            other => return Err(format!("The fake supports only '=' and '!=' after '{field}', not {other:?}.")),
        };
        let value = match tokens.get(i + 2) {
            Some(Tok::Word(v)) | Some(Tok::Str(v)) => v.clone(),
            other => return Err(format!("Expecting a value after '{field}' but got {other:?}.")),
        };
        clauses.push(Clause { field, negated, value });
        i += 3;
        match tokens.get(i) {
            None => break,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("and") => i += 1,
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("order") => {}
            Some(other) => return Err(format!("The fake supports only AND between clauses, not {other:?}.")),
        }
    }
    Ok(clauses)
}

/// The status category key a JQL `statusCategory` value names (by name, key or id).
fn category_named(value: &str) -> Option<&'static str> {
    match value.to_ascii_lowercase().as_str() {
        "done" | "3" => Some("done"),
        "to do" | "new" | "2" => Some("new"),
        "in progress" | "indeterminate" | "4" => Some("indeterminate"),
        _ => None,
    }
}

fn matches(s: &State, clauses: &[Clause], issue: &Issue) -> Result<bool, String> {
    for c in clauses {
        let hit = match c.field.as_str() {
            "labels" => issue.labels.contains(&c.value),
            "project" => {
                if !s.projects.iter().any(|p| p.eq_ignore_ascii_case(&c.value)) {
                    return Err(format!("The value '{}' does not exist for the field 'project'.", c.value));
                }
                issue.project.eq_ignore_ascii_case(&c.value)
            }
            "statuscategory" => {
                let Some(category) = category_named(&c.value) else {
                    return Err(format!("The value '{}' does not exist for the field 'statusCategory'.", c.value));
                };
                issue.status_category == category
            }
            "status" => issue.status.eq_ignore_ascii_case(&c.value),
            "key" | "issuekey" | "id" => issue.key.eq_ignore_ascii_case(&c.value) || issue.id == c.value,
            other => return Err(format!("Field '{other}' does not exist or you do not have permission to view it.")),
        };
        if hit == c.negated {
            return Ok(false);
        }
    }
    Ok(true)
}

fn search(s: &State, cloud: bool, query: &str, body: &Value) -> Answer {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let jql = body["jql"].as_str().map(String::from).or_else(|| params.get("jql").cloned()).unwrap_or_default();
    let wanted: Vec<String> = match &body["fields"] {
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => params.get("fields").map(|f| f.split(',').map(|x| x.trim().to_string()).collect()).unwrap_or_default(),
    };
    let number = |name: &str, default: usize| {
        body[name]
            .as_u64()
            .map(|n| n as usize)
            .or_else(|| params.get(name).and_then(|v| v.parse().ok()))
            .unwrap_or(default)
    };
    let max_results = number("maxResults", 50);
    if cloud && jql.trim().is_empty() {
        return jira_error(
            400,
            &["Unbounded JQL queries are not allowed here. Please add a search restriction to your query."],
            json!({}),
        );
    }
    let clauses = match parse_jql(&jql) {
        Ok(c) => c,
        Err(e) => return jira_error(400, &[&format!("Error in the JQL Query: {e}")], json!({})),
    };
    let mut found = Vec::new();
    for issue in &s.issues {
        match matches(s, &clauses, issue) {
            Ok(true) => found.push(issue),
            Ok(false) => {}
            Err(e) => return jira_error(400, &[&e], json!({})),
        }
    }
    let start = if cloud {
        body["nextPageToken"]
            .as_str()
            .map(String::from)
            .or_else(|| params.get("nextPageToken").cloned())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    } else {
        number("startAt", 0)
    };
    let page: Vec<Value> =
        found.iter().skip(start).take(max_results).map(|i| issue_json(&s.url, cloud, i, &wanted)).collect();
    if cloud {
        let end = start + page.len();
        let mut answer = json!({ "issues": page, "isLast": end >= found.len() });
        if end < found.len() {
            answer["nextPageToken"] = json!(end.to_string());
        }
        Answer::json(200, answer)
    } else {
        Answer::json(
            200,
            json!({
                "expand": "schema,names", "startAt": start, "maxResults": max_results,
                "total": found.len(), "issues": page,
            }),
        )
    }
}

fn is_adf(v: &Value) -> bool {
    v["type"] == "doc" && v["version"] == 1 && v["content"].is_array()
}

const ADF_MESSAGE: &str = "Operation value must be an Atlassian Document (see the Atlassian Document Format)";

fn create(s: &mut State, cloud: bool, body: &Value, is_json: bool) -> Answer {
    if !is_json || !body.is_object() {
        return jira_error(400, &["The request body must be a JSON object."], json!({}));
    }
    let empty = json!({});
    let fields = if body["fields"].is_object() { &body["fields"] } else { &empty };
    let mut errors = Map::new();
    let mut error = |field: &str, message: String| {
        errors.entry(field.to_string()).or_insert(json!(message));
    };

    let project = fields["project"]["key"].as_str().unwrap_or_default();
    let project = s.projects.iter().find(|p| p.eq_ignore_ascii_case(project)).cloned();
    if project.is_none() {
        error("project", "Specify a valid project ID or key".into());
    }

    let summary = fields["summary"].as_str().unwrap_or_default();
    if summary.trim().is_empty() {
        error("summary", "You must specify a summary of the issue.".into());
    } else if summary.chars().count() > 255 {
        error("summary", "Summary must be less than 255 characters.".into());
    } else if summary.contains(['\n', '\r']) {
        error("summary", "The summary is invalid because it contains newline characters.".into());
    }

    let issuetype = fields["issuetype"]["name"].as_str().or_else(|| fields["issuetype"]["id"].as_str());
    let issuetype = issuetype.filter(|t| !t.trim().is_empty()).unwrap_or_default().to_string();
    if issuetype.is_empty() {
        error("issuetype", "Specify an issue type".into());
    }

    let priority = match &fields["priority"] {
        Value::Null => "Medium".to_string(),
        Value::Object(p) => {
            let by_id = p.get("id").and_then(Value::as_str).and_then(|id| id.parse::<usize>().ok());
            let name = match (p.get("name").and_then(Value::as_str), by_id) {
                (Some(name), _) => s.priorities.iter().find(|x| *x == name).cloned().ok_or(name.to_string()),
                (None, Some(id)) => s.priorities.get(id.wrapping_sub(1)).cloned().ok_or(id.to_string()),
                (None, None) => Err(String::new()),
            };
            match name {
                Ok(name) => name,
                Err(bad) => {
                    error("priority", format!("Priority name '{bad}' is not valid."));
                    String::new()
                }
            }
        }
        _ => {
            error("priority", "Specify the Priority (id or name) in the string format".into());
            String::new()
        }
    };

    let description = fields["description"].clone();
    match (&description, cloud) {
        (Value::Null, _) => {}
        (d, true) if !is_adf(d) => error("description", ADF_MESSAGE.into()),
        (d, false) if !d.is_string() => error("description", "Operation value must be a string".into()),
        _ => {}
    }

    let mut labels = Vec::new();
    match &fields["labels"] {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                match item.as_str() {
                    Some(l) if l.is_empty() || l.chars().any(char::is_whitespace) => {
                        error("labels", format!("The label '{l}' contains spaces which is invalid."))
                    }
                    Some(l) if l.chars().count() > 255 => {
                        error("labels", "The label must not exceed 255 characters.".into())
                    }
                    Some(l) => labels.push(l.to_string()),
                    None => error("labels", "Operation value must be a string".into()),
                }
            }
        }
        _ => error("labels", "data was not an array".into()),
    }

    let mut components = Vec::new();
    match &fields["components"] {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                match item["name"].as_str().or_else(|| item["id"].as_str()) {
                    Some(c) => components.push(c.to_string()),
                    None => error("components", "Component name or id is required.".into()),
                }
            }
        }
        _ => error("components", "data was not an array".into()),
    }

    let Some(project) = project.filter(|_| errors.is_empty()) else {
        return jira_error(400, &[], Value::Object(errors));
    };
    let issue = s.insert_issue(Issue {
        id: String::new(),
        key: String::new(),
        project,
        flavour: if cloud { "cloud" } else { "server" }.into(),
        summary: summary.to_string(),
        description,
        priority,
        issuetype,
        labels,
        components,
        status: "To Do".into(),
        status_category: "new".into(),
        comments: Vec::new(),
    });
    let version = if cloud { 3 } else { 2 };
    Answer::json(
        201,
        json!({ "id": issue.id, "key": issue.key, "self": format!("{}/rest/api/{version}/issue/{}", s.url, issue.id) }),
    )
}

fn now_jira() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

fn comment(s: &mut State, cloud: bool, issue: &str, body: &Value) -> Answer {
    let Some(index) = s.issue_index(issue) else {
        return jira_error(404, &[NO_ISSUE], json!({}));
    };
    let text = &body["body"];
    let bad = match text {
        Value::Null => Some("Comment body can not be empty!"),
        Value::String(t) if t.trim().is_empty() => Some("Comment body can not be empty!"),
        t if cloud && !is_adf(t) => Some(ADF_MESSAGE),
        t if !cloud && !t.is_string() => Some("Operation value must be a string"),
        _ => None,
    };
    if let Some(message) = bad {
        return jira_error(400, &[], json!({ "comment": message }));
    }
    s.last_comment_id += 1;
    let id = s.last_comment_id.to_string();
    let version = if cloud { 3 } else { 2 };
    let created = now_jira();
    s.issues[index].comments.push(text.clone());
    let issue_id = s.issues[index].id.clone();
    Answer::json(
        201,
        json!({
            "self": format!("{}/rest/api/{version}/issue/{issue_id}/comment/{id}", s.url),
            "id": id,
            "author": { "displayName": "Sparky", "active": true },
            "body": text,
            "created": created,
            "updated": created,
        }),
    )
}

fn transition_json(base: &str, (id, name, category): (&str, &str, &str)) -> Value {
    json!({
        "id": id, "name": name,
        "to": { "self": format!("{base}/rest/api/3/status/{id}"), "name": name, "id": status_json(name, category)["id"],
                "statusCategory": status_json(name, category)["statusCategory"] },
        "hasScreen": false, "isGlobal": true, "isInitial": false, "isAvailable": true, "isConditional": false,
    })
}

/// The transitions the issue can take: all but the one to its own status.
fn offered(issue: &Issue) -> Vec<(&'static str, &'static str, &'static str)> {
    TRANSITIONS.into_iter().filter(|(_, name, _)| *name != issue.status).collect()
}

fn list_transitions(s: &State, issue: &str) -> Answer {
    let Some(index) = s.issue_index(issue) else {
        return jira_error(404, &[NO_ISSUE], json!({}));
    };
    let list: Vec<Value> = offered(&s.issues[index]).into_iter().map(|t| transition_json(&s.url, t)).collect();
    Answer::json(200, json!({ "expand": "transitions", "transitions": list }))
}

fn transition(s: &mut State, issue: &str, body: &Value) -> Answer {
    let Some(index) = s.issue_index(issue) else {
        return jira_error(404, &[NO_ISSUE], json!({}));
    };
    let id = match &body["transition"]["id"] {
        Value::String(id) => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return jira_error(400, &["Missing 'transition' identifier"], json!({})),
    };
    let Some((_, name, category)) = offered(&s.issues[index]).into_iter().find(|(t, _, _)| *t == id) else {
        return jira_error(400, &[&format!("Transition id '{id}' is not valid for this issue.")], json!({}));
    };
    s.issues[index].status = name.to_string();
    s.issues[index].status_category = category.to_string();
    Answer::empty(204)
}

// ---- PagerDuty ----

fn generated_dedup_key(s: &mut State) -> String {
    s.generated_keys += 1;
    let hasher = RandomState::new();
    let a = hasher.hash_one(s.generated_keys);
    let b = hasher.hash_one((s.generated_keys, "dedup"));
    format!("{a:016x}{b:016x}")
}

fn enqueue(s: &mut State, body: &Value) -> Answer {
    let Some(event) = body.as_object() else {
        return pd_invalid(vec!["Event object must be a JSON object".into()]);
    };
    let routing_key = event.get("routing_key").and_then(Value::as_str).unwrap_or_default().to_string();
    if let (Some(max), false) = (s.pd_rate, routing_key.is_empty()) {
        let now = Instant::now();
        let recent = s.pd_recent.entry(routing_key.clone()).or_default();
        while recent.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
            recent.pop_front();
        }
        if recent.len() >= max {
            return pd_throttled();
        }
        recent.push_back(now);
    }
    let mut errors: Vec<String> = Vec::new();
    if routing_key.is_empty() {
        errors.push("'routing_key' is missing or blank".into());
    } else if routing_key.chars().count() != 32 {
        errors.push("Invalid routing key: it must be 32 characters".into());
    }
    let action = event.get("event_action").and_then(Value::as_str).unwrap_or_default().to_string();
    if !["trigger", "acknowledge", "resolve"].contains(&action.as_str()) {
        errors.push("'event_action' is missing or invalid (must be one of trigger, acknowledge, resolve)".into());
    }
    let dedup_key = match event.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            errors.push("'dedup_key' must be a string".into());
            None
        }
    };
    if dedup_key.as_ref().is_some_and(|k| k.chars().count() > 255) {
        errors.push("'dedup_key' is too long (maximum is 255 characters)".into());
    }
    if (action == "acknowledge" || action == "resolve") && dedup_key.as_deref().is_none_or(|k| k.trim().is_empty()) {
        errors.push("'dedup_key' is missing or blank".into());
    }
    let payload = event.get("payload").cloned().unwrap_or(Value::Null);
    if action == "trigger" {
        if !payload.is_object() {
            errors.push("'payload' is missing or is not an object".into());
        } else {
            let text = |name: &str| payload[name].as_str().map(str::trim).unwrap_or_default().to_string();
            let summary = text("summary");
            if summary.is_empty() {
                errors.push("'payload.summary' is missing or blank".into());
            } else if payload["summary"].as_str().unwrap_or_default().chars().count() > 1024 {
                errors.push("'payload.summary' is too long (maximum is 1024 characters)".into());
            }
            if text("source").is_empty() {
                errors.push("'payload.source' is missing or blank".into());
            }
            if !["critical", "error", "warning", "info"].contains(&payload["severity"].as_str().unwrap_or_default()) {
                errors.push(
                    "'payload.severity' is missing or invalid (must be one of critical, error, warning, info)".into(),
                );
            }
            if !matches!(payload.get("custom_details"), None | Some(Value::Null | Value::Object(_))) {
                errors.push("'payload.custom_details' must be an object".into());
            }
        }
    }
    for list in ["links", "images"] {
        if !matches!(event.get(list), None | Some(Value::Null | Value::Array(_))) {
            errors.push(format!("'{list}' must be an array"));
        }
    }
    if !errors.is_empty() {
        return pd_invalid(errors);
    }
    let dedup_key = match dedup_key.filter(|k| !k.is_empty()) {
        Some(k) => k,
        None => generated_dedup_key(s),
    };
    s.pd_events.push(body.clone());
    let open = s
        .alerts
        .iter()
        .rposition(|a| a.routing_key == routing_key && a.dedup_key == dedup_key && a.state != "resolved");
    let links = event.get("links").cloned().unwrap_or(Value::Null);
    match (action.as_str(), open) {
        ("trigger", Some(i)) => {
            let alert = &mut s.alerts[i];
            alert.payload = payload;
            alert.links = links;
            alert.events.push(action);
        }
        ("trigger", None) => s.alerts.push(Alert {
            routing_key,
            dedup_key: dedup_key.clone(),
            state: "triggered".into(),
            payload,
            links,
            events: vec![action],
        }),
        (_, Some(i)) => {
            let alert = &mut s.alerts[i];
            alert.state = if action == "resolve" { "resolved" } else { "acknowledged" }.into();
            alert.events.push(action);
        }
        (_, None) => {}
    }
    Answer::json(202, json!({ "status": "success", "message": "Event processed", "dedup_key": dedup_key }))
}

// ---- Slack ----

fn slack(s: &mut State, body: &Value, is_json: bool) -> Answer {
    if !is_json || !body.is_object() {
        return Answer::text(400, "invalid_payload");
    }
    let text = body["text"].as_str().is_some_and(|t| !t.trim().is_empty());
    let blocks = body["blocks"].as_array().is_some_and(|b| !b.is_empty());
    if !text && !blocks {
        return Answer::text(400, "no_text");
    }
    s.slack.push(body.clone());
    Answer::text(200, "ok")
}
