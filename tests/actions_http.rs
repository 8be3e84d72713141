//! `http.request`, `notify.slack`, `command` and `notify.token_owners`, applied against a
//! local fake HTTP server (on `127.0.0.1:<random port>`) that records every request and
//! answers as each test tells it, and against real programs (`/bin/echo`, `/bin/false`,
//! `/bin/sleep`, `/bin/ls`).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sparky::actions::clients::{CommandConfig, HttpConfig, SlackConfig};
use sparky::actions::{ActionsConfig, Applied, ApplyError, Args, Clients, Plan, Secret};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: String,
}

#[derive(Clone)]
struct Reply {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// Answers by path; 200 `ok` for any other.
    replies: BTreeMap<String, Reply>,
}

struct Fake {
    base: String,
    state: Arc<Mutex<State>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self._server.abort();
    }
}

impl Fake {
    async fn start() -> Fake {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move {
                let mut s = shared.lock().unwrap();
                // The `/echo` path answers 400 with the request's Authorization header.
                let echo = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                s.seen.push(Seen {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    query: uri.query().unwrap_or_default().to_string(),
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let reply = if uri.path() == "/echo" {
                    Reply { status: 400, body: format!("bad credentials: {echo}"), headers: vec![] }
                } else {
                    s.replies.get(uri.path()).cloned().unwrap_or(Reply {
                        status: 200,
                        body: "ok".into(),
                        headers: vec![],
                    })
                };
                let mut r: Response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                for (k, v) in reply.headers {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                r
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake { base, state, _server: server }
    }

    fn reply(&self, path: &str, status: u16, body: &str, headers: &[(&'static str, &str)]) {
        let headers = headers.iter().map(|(k, v)| (*k, v.to_string())).collect();
        self.state.lock().unwrap().replies.insert(path.into(), Reply { status, body: body.into(), headers });
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn args(pairs: &[(&str, Value)]) -> Args {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn plan(action: &str, pairs: &[(&str, Value)]) -> Result<Plan, String> {
    sparky::actions::find(action).unwrap().plan(&args(pairs)).map_err(|e| e.0)
}

async fn apply(plan: &Plan, clients: &Clients) -> Result<Applied, ApplyError> {
    (sparky::actions::find(&plan.action).unwrap().apply)(plan, clients).await
}

const TOKEN: &str = "s3cr3t-t0ken-value";
const ZONE: &str = "zone-9f8e7d";
const WEBHOOK_PATH: &str = "/services/T0001/B0002/XXXXwebhookSECRET";

fn http_clients(fake: &Fake) -> Clients {
    Clients::new(ActionsConfig {
        http: HttpConfig {
            secrets: BTreeMap::from([
                ("CDN_TOKEN".to_string(), Secret(TOKEN.into())),
                ("ZONE".to_string(), Secret(ZONE.into())),
            ]),
            timeout: Some("2s".into()),
            ..HttpConfig::default()
        },
        slack: SlackConfig {
            webhooks: BTreeMap::from([
                ("default".to_string(), Secret(format!("{}{WEBHOOK_PATH}", fake.base))),
                ("limited".to_string(), Secret(format!("{}/limited{WEBHOOK_PATH}", fake.base))),
                ("gone".to_string(), Secret(format!("{}/gone{WEBHOOK_PATH}", fake.base))),
                ("broken".to_string(), Secret(format!("{}/broken{WEBHOOK_PATH}", fake.base))),
            ]),
            ..SlackConfig::default()
        },
        ..ActionsConfig::default()
    })
}

// ---- http.request ----

#[tokio::test]
async fn secrets_are_sent_but_never_planned() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let plan = plan(
        "http.request",
        &[
            ("method", json!("POST")),
            ("url", json!(format!("{}/purge/checkout?zone=eu", fake.base))),
            ("headers", json!(["Authorization: Bearer ${secret:CDN_TOKEN}", "X-Request-Source: sparky"])),
            ("body", json!("{\"zone\": \"${secret:ZONE}\"}")),
        ],
    )
    .unwrap();
    assert_eq!(plan.target, format!("http:POST {}/purge/checkout", fake.base));
    assert!(plan.mutating);
    let recorded = serde_json::to_string(&plan).unwrap();
    assert!(!recorded.contains(TOKEN) && !recorded.contains(ZONE), "{recorded}");
    assert!(recorded.contains("Authorization: Bearer ${secret:CDN_TOKEN}"), "{recorded}");

    let done = apply(&plan, &c).await.unwrap();
    assert_eq!(done.details["status"], 200);
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/purge/checkout"));
    assert_eq!(r.query, "zone=eu");
    assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}").as_str());
    assert_eq!(r.headers["x-request-source"], "sparky");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body, format!("{{\"zone\": \"{ZONE}\"}}"));
    assert!(!format!("{done:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_missing_secret_fails_naming_it_and_sends_nothing() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let plan = plan(
        "http.request",
        &[
            ("method", json!("GET")),
            ("url", json!(format!("{}/x", fake.base))),
            ("headers", json!(["X-Api-Key: ${secret:NOPE}"])),
        ],
    )
    .unwrap();
    match apply(&plan, &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("`NOPE`") && m.contains("integrations.http.secrets"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    assert!(fake.seen().is_empty());
}

#[tokio::test]
async fn statuses_are_checked_and_classified() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    fake.reply("/created", 201, "made", &[]);
    fake.reply("/down", 503, "upstream unavailable", &[]);
    fake.reply("/missing", 404, "no such path", &[]);
    fake.reply("/redirect", 302, "", &[("location", "http://elsewhere.example/")]);
    let req = |path: &str, expect: Option<i64>| {
        let mut a = vec![("method", json!("GET")), ("url", json!(format!("{}{path}", fake.base)))];
        if let Some(n) = expect {
            a.push(("expect_status", json!(n)));
        }
        plan("http.request", &a).unwrap()
    };

    let ok = apply(&req("/created", None), &c).await.unwrap();
    assert_eq!(ok.details["status"], 201);
    assert!(!req("/created", None).mutating, "a GET changes nothing");

    match apply(&req("/created", Some(200)), &c).await {
        Err(ApplyError::Failed(m)) => {
            assert!(m.contains("201") && m.contains("expected 200") && m.contains("made"), "{m}")
        }
        x => panic!("expected a failure, got {x:?}"),
    }
    assert!(apply(&req("/missing", Some(404)), &c).await.is_ok());
    match apply(&req("/missing", None), &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("404") && m.contains("no such path"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    match apply(&req("/down", None), &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains("503"), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
    assert!(matches!(apply(&req("/redirect", None), &c).await, Err(ApplyError::Failed(m)) if m.contains("302")));
    assert_eq!(fake.seen().len(), 6, "a redirect is not followed");
}

#[tokio::test]
async fn an_answer_quoting_a_secret_is_redacted_and_cut() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let plan = plan(
        "http.request",
        &[
            ("method", json!("POST")),
            ("url", json!(format!("{}/echo", fake.base))),
            ("headers", json!(["Authorization: ${secret:CDN_TOKEN}"])),
        ],
    )
    .unwrap();
    match apply(&plan, &c).await {
        Err(ApplyError::Failed(m)) => {
            assert!(m.contains("400") && m.contains("bad credentials: ***"), "{m}");
            assert!(!m.contains(TOKEN), "{m}");
        }
        x => panic!("expected a failure, got {x:?}"),
    }
    fake.reply("/long", 500, &"x".repeat(1000), &[]);
    let long =
        self::plan("http.request", &[("method", json!("GET")), ("url", json!(format!("{}/long", fake.base)))]).unwrap();
    match apply(&long, &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains(&"x".repeat(200)) && !m.contains(&"x".repeat(201)), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // A port just bound and released: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = Clients::new(ActionsConfig::default());
    let plan = plan("http.request", &[("method", json!("GET")), ("url", json!(format!("http://127.0.0.1:{port}/x")))])
        .unwrap();
    match apply(&plan, &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains("could not connect"), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
}

#[test]
fn a_secret_in_the_url_is_refused_as_it_may_come_from_the_event() {
    // `url = "https://cdn.example.com/purge/{labels.path}"` with a label `${secret:CDN_TOKEN}`.
    let err = plan(
        "http.request",
        &[("method", json!("GET")), ("url", json!("https://cdn.example.com/purge/${secret:CDN_TOKEN}"))],
    )
    .unwrap_err();
    assert!(err.contains("names a secret"), "{err}");
}

#[test]
fn a_credential_written_in_the_playbook_is_refused() {
    let err = plan(
        "http.request",
        &[
            ("method", json!("GET")),
            ("url", json!("https://x.example/")),
            ("headers", json!(["Authorization: Bearer abc"])),
        ],
    )
    .unwrap_err();
    assert!(err.contains("integrations.http.secrets"), "{err}");
}

// ---- notify.slack ----

#[tokio::test]
async fn slack_ok_posts_the_text() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let plan = plan("notify.slack", &[("text", json!("restarted checkout-7d9"))]).unwrap();
    assert_eq!(plan.target, "slack:default");
    assert!(!plan.mutating);
    assert!(!serde_json::to_string(&plan).unwrap().contains("XXXXwebhookSECRET"));
    apply(&plan, &c).await.unwrap();
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", WEBHOOK_PATH));
    assert_eq!(serde_json::from_str::<Value>(&seen[0].body).unwrap(), json!({"text": "restarted checkout-7d9"}));
}

#[tokio::test]
async fn slack_429_is_transient_with_retry_after_and_4xx_fails_without_the_url() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    fake.reply(&format!("/limited{WEBHOOK_PATH}"), 429, "rate_limited", &[("retry-after", "30")]);
    fake.reply(&format!("/gone{WEBHOOK_PATH}"), 404, "no_service", &[]);
    fake.reply(&format!("/broken{WEBHOOK_PATH}"), 500, "oops", &[]);
    let to = |channel: &str| plan("notify.slack", &[("text", json!("hi")), ("channel", json!(channel))]).unwrap();

    match apply(&to("limited"), &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains("429") && m.contains("30s"), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
    match apply(&to("gone"), &c).await {
        Err(ApplyError::Failed(m)) => {
            assert!(m.contains("404") && m.contains("no_service") && m.contains("`gone`"), "{m}");
            assert!(!m.contains("XXXXwebhookSECRET") && !m.contains(&fake.base), "{m}");
        }
        x => panic!("expected a failure, got {x:?}"),
    }
    assert!(matches!(apply(&to("broken"), &c).await, Err(ApplyError::Transient(_))));
    match apply(&to("nowhere"), &c).await {
        Err(ApplyError::Failed(m)) => {
            assert!(m.contains("`nowhere`") && m.contains("integrations.slack.webhooks"), "{m}")
        }
        x => panic!("expected a failure, got {x:?}"),
    }
    assert_eq!(fake.seen().len(), 3, "an unknown channel sends nothing");
}

#[tokio::test]
async fn a_dead_webhook_is_transient_and_not_quoted() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = Clients::new(ActionsConfig {
        slack: SlackConfig {
            webhooks: BTreeMap::from([(
                "default".to_string(),
                Secret(format!("http://127.0.0.1:{port}{WEBHOOK_PATH}")),
            )]),
            ..SlackConfig::default()
        },
        ..ActionsConfig::default()
    });
    let plan = plan("notify.slack", &[("text", json!("hi"))]).unwrap();
    match apply(&plan, &c).await {
        Err(ApplyError::Transient(m)) => assert!(!m.contains("XXXXwebhookSECRET"), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
}

// ---- notify.token_owners ----

/// An in-memory token desk: a fixed inventory and the notices remembered.
struct Desk {
    tokens: Vec<sparky::knowledge::tokens::TokenInfo>,
    sent: std::sync::Mutex<std::collections::HashSet<sparky::knowledge::tokens::NoticeKey>>,
    /// What each run raised, and whether it could settle (a complete inventory).
    raised: std::sync::Mutex<Vec<(Vec<String>, bool)>>,
}

impl sparky::actions::clients::TokenDesk for Desk {
    fn inventory(&self) -> sparky::actions::clients::BoxFuture<'_, sparky::knowledge::tokens::Inventory> {
        Box::pin(async move {
            sparky::knowledge::tokens::Inventory {
                tokens: self.tokens.clone(),
                problems: vec!["`vault` did not answer".to_string()],
                complete: false,
            }
        })
    }
    fn sent(
        &self,
    ) -> sparky::actions::clients::BoxFuture<
        '_,
        Result<std::collections::HashSet<sparky::knowledge::tokens::NoticeKey>, String>,
    > {
        Box::pin(async move { Ok(self.sent.lock().unwrap().clone()) })
    }
    fn record<'a>(
        &'a self,
        notice: &'a sparky::knowledge::tokens::Notice,
        _channel: &'a str,
    ) -> sparky::actions::clients::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.sent.lock().unwrap().insert(notice.key.clone());
            Ok(())
        })
    }
    fn raise<'a>(
        &'a self,
        run: &'a sparky::actions::clients::RunRef,
        raised: &'a [(sparky::knowledge::tokens::Notice, sparky::knowledge::tokens::Raise)],
        settle: &'a sparky::knowledge::tokens::Settle,
    ) -> sparky::actions::clients::BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let what: Vec<String> =
                raised.iter().map(|(n, r)| format!("{} {} {}", run.playbook, n.key.token, r.as_str())).collect();
            self.raised.lock().unwrap().push((what, settle.complete));
            Ok(Vec::new())
        })
    }
}

#[tokio::test]
async fn token_owners_are_told_once_per_threshold_and_never_without_an_inventory() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let plan = plan(
        "notify.token_owners",
        &[("within", json!("30d")), ("thresholds", json!(["30d", "7d"])), ("channels", json!(["slack", "email"]))],
    )
    .unwrap();
    assert_eq!(plan.target, "slack:token-owners");
    // No inventory (a tool that only plans): it says so and sends nothing.
    match apply(&plan, &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("no token inventory"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    assert!(fake.seen().is_empty());
    let soon = chrono::Utc::now() + chrono::Duration::days(3);
    let desk = Desk {
        tokens: vec![
            sparky::knowledge::tokens::TokenInfo {
                name: "stripe-key".into(),
                owner: Some("group:team-payments".into()),
                expires_at: Some(soon),
                source: "catalog tokens.yaml:1".into(),
            },
            sparky::knowledge::tokens::TokenInfo {
                name: "far".into(),
                owner: None,
                expires_at: Some(chrono::Utc::now() + chrono::Duration::days(300)),
                source: "github".into(),
            },
        ],
        sent: std::sync::Mutex::new(Default::default()),
        raised: std::sync::Mutex::new(Vec::new()),
    };
    assert!(c.tokens.set(std::sync::Arc::new(desk)).is_ok());
    let done = apply(&plan, &c).await.unwrap();
    assert_eq!(
        done.details["notices"],
        json!([{ "token": "stripe-key", "mark": "7d", "owner": "group:team-payments", "by": "slack" }])
    );
    assert_eq!(done.details["skipped_channels"], json!(["email"]));
    assert_eq!(done.details["problems"], json!(["`vault` did not answer"]));
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].body.contains("stripe-key"), "{}", seen[0].body);
    // The next run: nothing new to say.
    let again = apply(&plan, &c).await.unwrap();
    assert_eq!(again.details["notices"], json!([]));
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn the_last_threshold_files_a_ticket_and_an_expired_token_escalates_even_when_slack_is_down() {
    let fake = Fake::start().await;
    let c = http_clients(&fake);
    let token = |name: &str, days: i64| sparky::knowledge::tokens::TokenInfo {
        name: name.into(),
        owner: Some("group:team-payments".into()),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::days(days) + chrono::Duration::hours(1)),
        source: "catalog tokens.yaml:1".into(),
    };
    let desk = std::sync::Arc::new(Desk {
        tokens: vec![token("stripe-key", 3), token("old-key", -2), token("far", 20)],
        sent: std::sync::Mutex::new(Default::default()),
        raised: std::sync::Mutex::new(Vec::new()),
    });
    assert!(c.tokens.set(desk.clone()).is_ok());
    let plan = plan(
        "notify.token_owners",
        &[("within", json!("30d")), ("thresholds", json!(["30d", "7d"])), ("channels", json!(["slack", "jira"]))],
    )
    .unwrap();
    // Outside an execution there is no playbook to escalate for: refused, nothing sent.
    match apply(&plan, &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("belongs to no execution"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    assert!(fake.seen().is_empty());
    let run = sparky::actions::clients::RunRef { playbook: "PB-003".into(), execution: "ex-9".into() };
    let stamped = sparky::actions::for_execution(&plan, chrono::Utc::now(), &run);
    // Slack is down: the run fails, but the incidents were raised first.
    fake.reply(WEBHOOK_PATH, 503, "down", &[]);
    match apply(&stamped, &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("0 of 3 notices sent"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    fake.reply(WEBHOOK_PATH, 200, "ok", &[]);
    let raised = desk.raised.lock().unwrap().clone();
    assert_eq!(raised, [(vec!["PB-003 stripe-key ticket".to_string(), "PB-003 old-key escalate".to_string()], false)]);
    // Slack is back: the notices go out, each carried by Slack and its incident.
    let done = apply(&stamped, &c).await.unwrap();
    let by: Vec<(String, String)> = done.details["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["token"].as_str().unwrap().to_string(), n["by"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        by,
        [
            ("stripe-key".to_string(), "slack+jira".to_string()),
            ("old-key".to_string(), "slack+escalation".to_string()),
            ("far".to_string(), "slack".to_string())
        ]
    );
    assert_eq!(done.details["expired"], json!(["old-key"]));
    assert_eq!(done.details["complete"], json!(false));
}

// ---- command ----

fn command_clients(enabled: bool) -> Clients {
    let allow =
        [vec!["/bin/echo"], vec!["/bin/false"], vec!["/bin/sleep"], vec!["/bin/ls", "-d"], vec!["/usr/bin/env"]];
    Clients::new(ActionsConfig {
        command: CommandConfig {
            enabled,
            allow: allow.iter().map(|a| a.iter().map(|s| s.to_string()).collect()).collect(),
            ..CommandConfig::default()
        },
        ..ActionsConfig::default()
    })
}

fn run(argv: &[&str], timeout: Option<&str>) -> Plan {
    let mut a = vec![("argv", json!(argv))];
    if let Some(t) = timeout {
        a.push(("timeout", json!(t)));
    }
    plan("command", &a).unwrap()
}

#[tokio::test]
async fn an_allowed_command_runs_without_a_shell() {
    let c = command_clients(true);
    let p = run(&["/bin/echo", "$HOME; touch /tmp/sparky-pwned", "`id`"], None);
    assert_eq!(p.target, "command:/bin/echo");
    let done = apply(&p, &c).await.unwrap();
    assert_eq!(done.details["exit_code"], 0);
    assert_eq!(done.details["stdout"], "$HOME; touch /tmp/sparky-pwned `id`\n");
}

#[tokio::test]
async fn a_failing_command_reports_its_code_and_stderr() {
    let c = command_clients(true);
    match apply(&run(&["/bin/false"], None), &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("`/bin/false` exited with code 1"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    match apply(&run(&["/bin/ls", "-d", "/no/such/dir-sparky"], None), &c).await {
        Err(ApplyError::Failed(m)) => {
            assert!(m.contains("exited with code 2") && m.contains("/no/such/dir-sparky"), "{m}")
        }
        x => panic!("expected a failure, got {x:?}"),
    }
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed() {
    let c = command_clients(true);
    let started = Instant::now();
    match apply(&run(&["/bin/sleep", "20"], Some("1s")), &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains("killed"), "{m}"),
        x => panic!("expected a timeout, got {x:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn commands_are_off_unless_enabled_and_only_allowed_prefixes_run() {
    match apply(&run(&["/bin/echo", "hi"], None), &command_clients(false)).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("integrations.command.enabled"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    let c = command_clients(true);
    for argv in [&["/bin/cat", "/etc/hostname"][..], &["/bin/ls", "/"], &["/bin/ls"], &["/bin/echo/../cat"]] {
        match apply(&run(argv, None), &c).await {
            Err(ApplyError::Refused(m)) => assert!(m.contains("integrations.command.allow"), "{argv:?}: {m}"),
            x => panic!("{argv:?}: expected a refusal, got {x:?}"),
        }
    }
    assert!(apply(&run(&["/bin/ls", "-d", "/"], None), &c).await.is_ok());
}

#[tokio::test]
async fn a_command_does_not_inherit_the_daemon_environment() {
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "cargo sets it for the test process");
    let done = apply(&run(&["/usr/bin/env"], None), &command_clients(true)).await.unwrap();
    let out = done.details["stdout"].as_str().unwrap();
    assert!(!out.contains("CARGO_"), "{out}");
}

#[test]
fn a_relative_or_empty_program_is_refused_at_plan() {
    assert!(plan("command", &[("argv", json!(["echo", "hi"]))]).unwrap_err().contains("absolute path"));
    assert!(plan("command", &[("argv", json!([]))]).unwrap_err().contains("empty"));
}
