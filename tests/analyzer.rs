//! The analyzers as the daemon uses them: a remote model that answers is used as is; one that
//! fails, times out or answers badly is replaced by the built-in rules, and the analysis says
//! so. The remote side is a local fake OpenAI-compatible server.

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sparky::analysis::remote::{Remote, RemoteConfig};
use sparky::analysis::{Analyzer, Builtin, Input, RemoteAnalyzer};
use sparky::event::Event;
use sparky::ingest::{self, Headers};
use sparky::knowledge::{Deploy, DeployState, Knowledge, resolve_service};

fn now() -> DateTime<Utc> {
    "2026-03-10T08:20:00Z".parse().unwrap()
}

/// The shipped crash loop, four minutes after a deploy of its service.
fn setting() -> (Event, Knowledge) {
    let body = std::fs::read("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap();
    let mut event = ingest::normalize("alertmanager", &Headers::none(), &body, now()).unwrap().events.remove(0);
    let mut kg = Knowledge::new(Default::default(), now().timestamp_millis());
    kg.add_deploy(Deploy {
        key: "github/acme/checkout-api/deployments/1".into(),
        service: "checkout-api".into(),
        at: event.occurred_at - Duration::minutes(4),
        state: DeployState::Succeeded,
        environment: Some("production".into()),
        version: Some("v2.42.0".into()),
        commit: Some("7d1e0fa".into()),
        repository: Some("acme/checkout-api".into()),
        by: None,
        url: None,
        source: "github".into(),
        summary: "deploy".into(),
    });
    resolve_service(&mut event, &kg);
    (event, kg)
}

/// A fake chat-completions endpoint answering `mode`; returns its base URL (up to `/v1`).
async fn fake(mode: &'static str) -> String {
    let handler = move || async move {
        match mode {
            "good" => {
                let answer = json!({
                    "summary": "checkout-api v2.42.0 crashes on start: a missing config key",
                    "root_cause": "the v2.42.0 deploy",
                    "confidence": 91,
                    "impact": {"downstream": ["storefront"], "severity": "high"},
                    "evidence": ["the crash began 4 minutes after v2.42.0"],
                    "proposals": [{"generator": "revert", "confidence": 91, "summary": "revert v2.42.0",
                                   "args": [{"name": "commit", "value": "7d1e0fa"}]}]
                });
                axum::Json(json!({"choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": answer.to_string()}}]}))
                .into_response()
            }
            "garbage" => axum::Json(json!({"choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "I think it is DNS."}}]}))
            .into_response(),
            "slow" => {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                StatusCode::OK.into_response()
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "upstream overloaded").into_response(),
        }
    };
    let app = Router::new().route("/v1/chat/completions", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn remote(url: String) -> RemoteAnalyzer {
    remote_pausing(url, std::time::Duration::ZERO)
}

fn remote_pausing(url: String, pause: std::time::Duration) -> RemoteAnalyzer {
    let config = RemoteConfig {
        url,
        model: "local-model".into(),
        api_key: None,
        timeout: Some("400ms".into()),
        max_tokens: None,
        temperature: None,
    };
    RemoteAnalyzer::with_pause(Remote::new(config).unwrap(), pause)
}

#[tokio::test]
async fn a_remote_answer_is_used_as_given() {
    let (event, kg) = setting();
    let analyzer = remote(fake("good").await);
    let a = analyzer.analyze(&Input { event: &event, knowledge: &kg, now: now() }).await;
    assert_eq!(a.analyzer, "remote local-model");
    assert_eq!(analyzer.name(), "remote local-model");
    assert_eq!(a.root_cause.as_deref(), Some("the v2.42.0 deploy"));
    assert_eq!(a.proposals[0].generator, "revert");
    assert_eq!(a.proposals[0].args["commit"], "7d1e0fa");
    assert!(a.notes.is_empty(), "{:?}", a.notes);
}

#[tokio::test]
async fn a_failing_remote_falls_back_to_the_builtin_rules_and_says_so() {
    let (event, kg) = setting();
    let builtin = Builtin.analyze(&Input { event: &event, knowledge: &kg, now: now() }).await;
    assert_eq!(builtin.proposals[0].generator, "revert");
    for (mode, says) in [("error", "500"), ("garbage", "not"), ("slow", "400")] {
        let started = std::time::Instant::now();
        let a = remote(fake(mode).await).analyze(&Input { event: &event, knowledge: &kg, now: now() }).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "{mode}: the timeout holds");
        assert_eq!(a.analyzer, "builtin", "{mode}");
        assert_eq!(a.proposals, builtin.proposals, "{mode}: the built-in answer stands in");
        let note = a.notes.join(" ");
        assert!(note.contains("the remote analyzer (local-model) failed"), "{mode}: {note}");
        assert!(note.contains("the built-in analyzer answered instead"), "{mode}: {note}");
        assert!(note.contains(says), "{mode}: {note}");
    }
    // Nobody listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{a}/v1")
    };
    let a = remote(closed).analyze(&Input { event: &event, knowledge: &kg, now: now() }).await;
    assert_eq!(a.analyzer, "builtin");
    assert!(!a.notes.is_empty());
}

#[tokio::test]
async fn after_a_failure_the_remote_is_left_alone_for_a_while() {
    let (event, kg) = setting();
    let analyzer = remote_pausing(fake("slow").await, std::time::Duration::from_secs(60));
    let input = Input { event: &event, knowledge: &kg, now: now() };
    let first = analyzer.analyze(&input).await;
    assert!(first.notes.join(" ").contains("failed"), "{:?}", first.notes);
    // The next events do not wait for the timeout again.
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let a = analyzer.analyze(&input).await;
        assert_eq!(a.analyzer, "builtin");
        assert!(a.notes.join(" ").contains("failed recently and is not asked for another"), "{:?}", a.notes);
    }
    assert!(started.elapsed() < std::time::Duration::from_millis(300), "{:?}", started.elapsed());
}
