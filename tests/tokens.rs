//! The token inventory through the real daemon: the catalog's tokens, Sparky's own GitHub
//! token (a local fake GitHub answering with the expiry header), an HTTP inventory (a local
//! fake secrets manager), and a source that is down; and PB-003's token incidents and its
//! runs' own incident delivered to a local fake Jira and PagerDuty.

#[path = "support/fake_escalation.rs"]
mod fake_escalation;

use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};
use sparky::daemon::{self, Options, config::Config};

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: stripe-key
  annotations:
    sparky.dev/expires-at: "2099-01-31"
spec:
  type: api-token
  owner: group:team-payments
"#;

/// A fake GitHub (`/rate_limit` with the expiry header, for the right token only) and a fake
/// inventory (`/v1/keys`, behind an API key).
async fn fakes() -> String {
    let app = axum::Router::new()
        .route(
            "/rate_limit",
            get(|headers: HeaderMap| async move {
                let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer gh-token");
                if !ok {
                    return (axum::http::StatusCode::UNAUTHORIZED, HeaderMap::new(), "{}".to_string());
                }
                let mut h = HeaderMap::new();
                h.insert("github-authentication-token-expiration", "2099-03-01 12:00:00 UTC".parse().unwrap());
                (axum::http::StatusCode::OK, h, json!({ "resources": {} }).to_string())
            }),
        )
        .route(
            "/v1/keys",
            get(|headers: HeaderMap| async move {
                if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some("vault-key") {
                    return axum::Json(json!({ "error": "forbidden" }));
                }
                axum::Json(json!({ "keys": [
                    { "id": "sendgrid", "owner": "group:team-growth", "expires": "2099-02-01T00:00:00Z" },
                    { "id": "legacy-ftp", "owner": "group:team-data" },
                ] }))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn the_inventory_joins_catalog_github_and_http_sources_and_names_what_failed() {
    let fake = fakes().await;
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    std::fs::write(cat.join("tokens.yaml"), CATALOG).unwrap();
    let pbs = dir.path().join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::copy("playbooks/PB-003-api-token-expiry.sparky", pbs.join("PB-003.sparky")).unwrap();
    let yaml = format!(
        r#"tokens:
  github:
    url: {fake}
    token: gh-token
    owner: group:platform
  http:
    - name: vault
      url: {fake}/v1/keys
      headers: {{x-api-key: vault-key}}
      mapping: {{items: /keys, name: /id, owner: /owner, expires_at: /expires}}
    - name: down
      url: http://127.0.0.1:9/keys
      mapping: {{name: /id}}
"#
    );
    let mut config = Config::parse(&yaml, "sparky.yaml", &|_| None).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec![pbs];
    config.catalog = Some(vec![cat]);
    config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
    let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
    let v: Value = reqwest::get(format!("http://{}/api/v1/tokens", running.addr)).await.unwrap().json().await.unwrap();
    let names: Vec<&str> = v["tokens"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["stripe-key", "sendgrid", "sparky-github-token", "legacy-ftp"], "soonest first: {v:#}");
    let github = &v["tokens"][2];
    assert_eq!(github["expires_at"], "2099-03-01T12:00:00Z");
    assert_eq!((github["owner"].as_str(), github["source"].as_str()), (Some("group:platform"), Some("github")));
    assert!(v["tokens"][0]["days_left"].as_i64().unwrap() > 20_000);
    assert!(v["tokens"][0]["source"].as_str().unwrap().starts_with("catalog "));
    assert_eq!(v["tokens"][3]["expires_at"], Value::Null, "no expiry: reported as such");
    let problems = v["problems"].to_string();
    assert!(problems.contains("`down` did not answer"), "{problems}");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn pb003_tells_each_owner_once_per_threshold_through_slack() {
    use sparky::daemon::scheduler::Schedule;
    // A fake Slack webhook that keeps what it is sent.
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::days(5)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let catalog = CATALOG.replace("2099-01-31", &soon)
        + "---\napiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: old-ftp\nspec:\n  type: api-token\n  owner: group:team-data\n";
    std::fs::write(cat.join("tokens.yaml"), catalog).unwrap();
    let pbs = dir.path().join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::copy("playbooks/PB-003-api-token-expiry.sparky", pbs.join("PB-003.sparky")).unwrap();

    // PB-003 last ran two days ago: started now, it catches up with one run at once.
    let url = format!("sqlite://{}", dir.path().join("sparky.db").display());
    let store = sparky::store::Store::open(&url).await.unwrap();
    let sources = sparky::compile::read_sources(std::slice::from_ref(&pbs)).unwrap();
    let graph = sparky::graph::RuleGraph::build(&sparky::compile::compile(&sources));
    let schedule = Schedule::of(&graph.playbooks()[0]).unwrap();
    let now = chrono::Utc::now();
    let before = schedule.latest(schedule.latest(now).unwrap() - chrono::Duration::seconds(1)).unwrap();
    store.schedule_seen("PB-003", &schedule.spec(), before, now).await.unwrap();
    store.close().await;

    let yaml = format!(
        "integrations:\n  mode: live\n  slack:\n    webhooks:\n      default: {hook}\nscheduler:\n  catch_up: 48h\n"
    );
    let mut config = Config::parse(&yaml, "sparky.yaml", &|_| None).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec![pbs];
    config.catalog = Some(vec![cat]);
    config.store = url.clone();
    let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
    for _ in 0..200 {
        if got.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Give a stray third message the chance to show up.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let texts: Vec<String> = got.lock().unwrap().iter().map(|b| b["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts.len(), 2, "{texts:#?}");
    assert!(texts.iter().any(|t| t.contains("`stripe-key` (owner group:team-payments) expires in")), "{texts:#?}");
    assert!(texts.iter().any(|t| t.contains("`old-ftp`") && t.contains("no expiry")), "{texts:#?}");
    running.stop().await.unwrap();
    let store = sparky::store::Store::open(&url).await.unwrap();
    let sent = store.token_notices_sent().await.unwrap();
    let mut marks: Vec<String> = sent.iter().map(|k| format!("{} {}", k.token, k.mark)).collect();
    marks.sort();
    assert_eq!(marks, ["old-ftp no expiry", "stripe-key 7d"]);
}

/// PB-003 without its 12 h guard (the test runs it on demand, several times a minute),
/// escalating at P2 with a page.
const FAST_PB003: &str = r#"/// Token expiry, run on demand by the test.
playbook PB-903 "Token expiry (test cadence)" {
  status active
  owner  "team:platform"
  on schedule every 1h
  l1 "notify owners of expiring tokens" {
    do notify.token_owners(within = 30d, thresholds = [30d, 7d, 1d], channels = ["slack", "jira"])
    verify delivered
  }
  l3 {
    priority P2
    jira     "OPS"
    page     on
  }
}
"#;

/// Waits until `done` holds (at most 30 s).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("gave up waiting: {what}");
}

#[tokio::test]
async fn token_incidents_reach_jira_and_pagerduty_once_and_close_when_renewed_and_a_failed_run_closes_on_success() {
    use fake_escalation::{Endpoint, FakeEscalation};
    let fake = FakeEscalation::start().await;
    // The inventory: one token a few hours from expiry (its last threshold), one expired
    // yesterday, one far off. Shared, so the test can renew a token.
    let hours = |h: i64| (chrono::Utc::now() + chrono::Duration::hours(h)).to_rfc3339();
    let inventory = std::sync::Arc::new(std::sync::Mutex::new(json!({ "keys": [
        { "id": "stripe-key", "owner": "group:team-payments", "expires": hours(10) },
        { "id": "old-webhook-secret", "owner": "group:team-checkout", "expires": hours(-24) },
        { "id": "far-key", "owner": "group:team-growth", "expires": hours(24 * 300) },
    ] })));
    let shared = inventory.clone();
    let app = axum::Router::new().route(
        "/v1/keys",
        get(move || {
            let shared = shared.clone();
            async move { axum::Json(shared.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let vault = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let pbs = dir.path().join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::write(pbs.join("PB-903.sparky"), FAST_PB003).unwrap();
    let url = fake.url();
    let yaml = format!(
        r#"admin_token: s3cret
triage:
  group_window: 0s
integrations:
  mode: live
  slack:
    webhooks:
      default: {url}/slack/T000/B000/NOTICES
  jira:
    url: {url}
    email: sparky@example.com
    token: jira-token
    resolve_transition: Done
    timeout: 500ms
    search_lag: 1s
  pagerduty:
    enabled: true
    url: {url}
    routing_key: {key}
    min_interval: 10ms
escalation:
  link_wait: 3s
  max_backoff: 1s
tokens:
  http:
    - name: vault
      url: {vault}/v1/keys
      mapping: {{ items: /keys, name: /id, owner: /owner, expires_at: /expires }}
"#,
        key = fake_escalation::ROUTING_KEY
    );
    // Slack refuses the first run's first notice: that run fails after it raised the
    // token incidents, and is escalated itself.
    fake.fail_next(Endpoint::Slack, 1, 500, None);
    let mut config = Config::parse(&yaml, "sparky.yaml", &|_| None).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec![pbs];
    let cat = dir.path().join("catalog");
    std::fs::create_dir_all(&cat).unwrap();
    config.catalog = Some(vec![cat]);
    config.store = format!("sqlite://{}", dir.path().join("sparky.db").display());
    let running = daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap();
    let base = format!("http://{}", running.addr);
    let run_now = || async {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v1/schedules/PB-903/run"))
            .bearer_auth("s3cret")
            .json(&json!({ "by": "test" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
    };
    let schedules: Value = reqwest::get(format!("{base}/api/v1/schedules")).await.unwrap().json().await.unwrap();
    assert_eq!(schedules["schedules"][0]["schedule"], "every 1h", "{schedules}");
    run_now().await;

    // Three issues: the ticket, the expired token, the failed run; a page for the expired
    // token only (a ticket never pages; the run's own incident pages by PB-903's l3).
    until("three issues", || fake.issues().len() >= 3).await;
    let issue = |needle: &str| fake.issues().into_iter().find(|i| i.summary.contains(needle));
    let ticket = issue("`stripe-key` expires in").expect("a ticket for the token at its last threshold");
    let expired = issue("`old-webhook-secret` expired").expect("an issue for the expired token");
    let run = issue("scheduled run of PB-903").expect("an issue for the failed run");
    assert_eq!((ticket.project.as_str(), ticket.priority.as_str()), ("OPS", "High"));
    // The failed run's incident closes when a later run succeeds.
    run_now().await;
    until("the failed run's issue resolved", || fake.issue(&run.key).is_some_and(|i| i.status_category == "done"))
        .await;
    // The notices due went out once each, on the second run (the far-off token has none).
    until("two notices", || fake.slack_messages().len() >= 2).await;

    // Renewed: the expired token's incident closes at the next run; its page resolves.
    inventory.lock().unwrap()["keys"][1]["expires"] = json!(hours(24 * 365));
    run_now().await;
    until("the expired token's issue resolved", || {
        fake.issue(&expired.key).is_some_and(|i| i.status_category == "done")
    })
    .await;
    until("its page resolved", || fake.pd_alerts().iter().all(|a| a.state == "resolved")).await;
    // Two more runs: nothing new anywhere.
    run_now().await;
    run_now().await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    running.stop().await.unwrap();

    let issues = fake.issues();
    assert_eq!(issues.len(), 3, "{:#?}", issues.iter().map(|i| &i.summary).collect::<Vec<_>>());
    assert_eq!(fake.issue(&ticket.key).unwrap().status_category, "new", "the ticket stays open until renewed");
    let pages: Vec<String> = fake.pd_alerts().iter().map(|a| a.payload["summary"].to_string()).collect();
    assert_eq!(pages.len(), 2, "the expired token and the failed run page; the ticket does not: {pages:?}");
    let texts: Vec<String> =
        fake.slack_messages().iter().map(|m| m["text"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(texts.len(), 2, "one notice per token due, none repeated, none for far-key: {texts:#?}");
    for t in ["stripe-key", "old-webhook-secret"] {
        assert_eq!(texts.iter().filter(|m| m.contains(&format!("`{t}`"))).count(), 1, "{texts:#?}");
    }
}
