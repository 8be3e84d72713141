//! A local fake of the GitHub REST endpoints L2 uses, speaking their shapes: `GET
//! /repos/{o}/{r}`, `GET`/`POST /repos/{o}/{r}/pulls`, `PATCH /repos/{o}/{r}/pulls/{n}`,
//! `POST /repos/{o}/{r}/pulls/{n}/requested_reviewers`, `POST /repos/{o}/{r}/issues/{n}/labels`.
//! It keeps pull requests, refuses a second open one for a branch with GitHub's 422, refuses
//! a reviewer who is not a collaborator with a 422, and injects faults: the next N calls to
//! an endpoint answer a status (a 403 secondary rate limit with `Retry-After`, a 500), or
//! commit then answer 500 (the answer is lost).

#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Repo,
    ListPulls,
    CreatePull,
    UpdatePull,
    Reviewers,
    Labels,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub state: String,
    pub merged: bool,
    pub draft: bool,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Status { status: u16, retry_after: Option<u64> },
    CommitThenFail,
}

#[derive(Default)]
struct State {
    pulls: Vec<Pull>,
    faults: HashMap<Endpoint, VecDeque<Fault>>,
    calls: Vec<(Endpoint, String, Value)>,
    collaborators: Vec<String>,
}

pub struct FakeGitHub {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn route(method: &Method, path: &str) -> Option<(Endpoint, Option<u64>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["repos", _, _]) => Some((Endpoint::Repo, None)),
        ("GET", ["repos", _, _, "pulls"]) => Some((Endpoint::ListPulls, None)),
        ("POST", ["repos", _, _, "pulls"]) => Some((Endpoint::CreatePull, None)),
        ("PATCH", ["repos", _, _, "pulls", n]) => Some((Endpoint::UpdatePull, n.parse().ok())),
        ("POST", ["repos", _, _, "pulls", n, "requested_reviewers"]) => Some((Endpoint::Reviewers, n.parse().ok())),
        ("POST", ["repos", _, _, "issues", n, "labels"]) => Some((Endpoint::Labels, n.parse().ok())),
        _ => None,
    }
}

fn pull_json(url: &str, p: &Pull) -> Value {
    json!({ "number": p.number, "html_url": format!("{url}/acme/pricing/pull/{}", p.number), "state": p.state,
            "merged": p.merged, "merged_at": if p.merged { json!("2026-11-29T10:00:00Z") } else { Value::Null },
            "draft": p.draft, "title": p.title, "body": p.body,
            "head": { "ref": p.head }, "base": { "ref": p.base } })
}

fn answer(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

impl FakeGitHub {
    pub async fn start() -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State { collaborators: vec!["dana".into()], ..State::default() }));
        let shared = state.clone();
        let base = url.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            let base = base.clone();
            async move { handle(&state, &base, method, uri, headers, body) }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub { url, state, task }
    }

    pub fn fail_next(&self, endpoint: Endpoint, n: usize, status: u16, retry_after: Option<u64>) {
        let mut s = self.state.lock().unwrap();
        for _ in 0..n {
            s.faults.entry(endpoint).or_default().push_back(Fault::Status { status, retry_after });
        }
    }

    /// The next create commits the pull request, then answers 500 (its answer is lost).
    pub fn commit_then_fail_next_create(&self) {
        self.state.lock().unwrap().faults.entry(Endpoint::CreatePull).or_default().push_back(Fault::CommitThenFail);
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.state.lock().unwrap().pulls.clone()
    }

    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.state.lock().unwrap().calls.iter().filter(|c| c.0 == endpoint).count()
    }

    /// A person closes (or merges) pull request `n`.
    pub fn close(&self, n: u64, merged: bool) {
        let mut s = self.state.lock().unwrap();
        if let Some(p) = s.pulls.iter_mut().find(|p| p.number == n) {
            p.state = "closed".into();
            p.merged = merged;
        }
    }
}

fn handle(state: &Mutex<State>, base: &str, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut s = state.lock().unwrap();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer gh-token") {
        return answer(
            401,
            json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest" }),
        );
    }
    let Some((endpoint, number)) = route(&method, uri.path()) else {
        return answer(404, json!({ "message": "Not Found" }));
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    s.calls.push((endpoint, uri.to_string(), body.clone()));
    let mut commit_then_fail = false;
    if let Some(fault) = s.faults.get_mut(&endpoint).and_then(VecDeque::pop_front) {
        match fault {
            Fault::Status { status, retry_after } => {
                let message = if status == 403 {
                    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                } else {
                    "Server Error"
                };
                let mut r = answer(status, json!({ "message": message }));
                if let Some(after) = retry_after {
                    r.headers_mut().insert("retry-after", after.to_string().parse().unwrap());
                }
                return r;
            }
            Fault::CommitThenFail => commit_then_fail = true,
        }
    }
    let find = |s: &mut State, n: Option<u64>| s.pulls.iter().position(|p| Some(p.number) == n);
    match endpoint {
        Endpoint::Repo => answer(200, json!({ "full_name": "acme/pricing", "default_branch": "main" })),
        Endpoint::ListPulls => {
            let query = uri.query().unwrap_or_default();
            let head = query.split('&').find_map(|kv| kv.strip_prefix("head=")).unwrap_or_default();
            let branch = head.split_once(':').map_or(head, |(_, b)| b);
            let list: Vec<Value> = s.pulls.iter().filter(|p| p.head == branch).map(|p| pull_json(base, p)).collect();
            answer(200, Value::Array(list))
        }
        Endpoint::CreatePull => {
            let head = body["head"].as_str().unwrap_or_default().to_string();
            if s.pulls.iter().any(|p| p.head == head && p.state == "open") {
                return answer(
                    422,
                    json!({ "message": "Validation Failed", "errors": [{ "resource": "PullRequest", "code": "custom",
                            "message": format!("A pull request already exists for acme:{head}.") }],
                            "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request" }),
                );
            }
            let p = Pull {
                number: s.pulls.len() as u64 + 1,
                head,
                base: body["base"].as_str().unwrap_or_default().into(),
                title: body["title"].as_str().unwrap_or_default().into(),
                body: body["body"].as_str().unwrap_or_default().into(),
                state: "open".into(),
                merged: false,
                draft: body["draft"].as_bool().unwrap_or(false),
                reviewers: Vec::new(),
                team_reviewers: Vec::new(),
                labels: Vec::new(),
            };
            let out = pull_json(base, &p);
            s.pulls.push(p);
            if commit_then_fail {
                return answer(500, json!({ "message": "Server Error" }));
            }
            answer(201, out)
        }
        Endpoint::UpdatePull => match find(&mut s, number) {
            Some(i) => {
                if let Some(t) = body["title"].as_str() {
                    s.pulls[i].title = t.into();
                }
                if let Some(b) = body["body"].as_str() {
                    s.pulls[i].body = b.into();
                }
                answer(200, pull_json(base, &s.pulls[i]))
            }
            None => answer(404, json!({ "message": "Not Found" })),
        },
        Endpoint::Reviewers => {
            let wanted: Vec<String> = body["reviewers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(String::from))
                .collect();
            if let Some(r) = wanted.iter().find(|r| !s.collaborators.contains(r)) {
                return answer(
                    422,
                    json!({ "message": format!("Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the acme/pricing repository. ({r})") }),
                );
            }
            let teams: Vec<String> = body["team_reviewers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(String::from))
                .collect();
            match find(&mut s, number) {
                Some(i) => {
                    for r in wanted {
                        if !s.pulls[i].reviewers.contains(&r) {
                            s.pulls[i].reviewers.push(r);
                        }
                    }
                    for t in teams {
                        if !s.pulls[i].team_reviewers.contains(&t) {
                            s.pulls[i].team_reviewers.push(t);
                        }
                    }
                    answer(201, pull_json(base, &s.pulls[i]))
                }
                None => answer(404, json!({ "message": "Not Found" })),
            }
        }
        Endpoint::Labels => match find(&mut s, number) {
            Some(i) => {
                for l in body["labels"].as_array().into_iter().flatten().filter_map(|l| l.as_str()) {
                    if !s.pulls[i].labels.iter().any(|x| x == l) {
                        s.pulls[i].labels.push(l.into());
                    }
                }
                let labels: Vec<Value> = s.pulls[i].labels.iter().map(|l| json!({ "name": l })).collect();
                answer(200, Value::Array(labels))
            }
            None => answer(404, json!({ "message": "Not Found" })),
        },
    }
}
