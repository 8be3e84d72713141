//! The token inventory through the real daemon: the catalog's tokens, Sparky's own GitHub
//! token (a local fake GitHub answering with the expiry header), an HTTP inventory (a local
//! fake secrets manager), and a source that is down.

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
    let running = daemon::start(Options { config, insecure: false }).await.unwrap();
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
    let running = daemon::start(Options { config, insecure: false }).await.unwrap();
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
