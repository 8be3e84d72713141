//! Hostile requests against the real daemon: credentials sent twice, and CloudEvents
//! attributes that are not text. Each gets a clear 4xx and adds nothing.

#[path = "support/daemon.rs"]
mod support;

use support::{Daemon, hmac_hex, payload};

/// A verifier must not depend on header order: a valid signature followed by a wrong one
/// was accepted (and the reverse refused). Both orders are refused now, on every scheme.
#[tokio::test]
async fn a_signature_header_sent_twice_is_refused_in_either_order() {
    let yaml = "sources:
  github: {auth: {type: github, secret: gh-secret}}
  pagerduty: {auth: {type: pagerduty, secrets: [pd-secret]}}
  alertmanager: {auth: {type: bearer, token: am-token}}
";
    let d = Daemon::start(yaml).await;
    let body = payload("github", "deployment_status.created.json");
    let good = format!("sha256={}", hmac_hex("gh-secret", &body));
    let bad = format!("sha256={}", hmac_hex("another", &body));
    let event = ("x-github-event", "deployment_status");
    for pair in [[good.as_str(), bad.as_str()], [bad.as_str(), good.as_str()], [good.as_str(), good.as_str()]] {
        let headers = [event, ("x-hub-signature-256", pair[0]), ("x-hub-signature-256", pair[1])];
        let (code, answer) = d.post("github", body.clone(), &headers).await;
        assert_eq!(code, 403, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("sent 2 times"), "{answer}");
    }
    let (code, answer) = d.post("github", body.clone(), &[event, ("x-hub-signature-256", good.as_str())]).await;
    assert_eq!(code, 202, "one copy of the right signature passes: {answer}");

    let pd = payload("pagerduty", "v3_incident.triggered.json");
    let sig = format!("v1={}", hmac_hex("pd-secret", &pd));
    let (code, _) =
        d.post("pagerduty", pd.clone(), &[("x-pagerduty-signature", &sig), ("x-pagerduty-signature", &sig)]).await;
    assert_eq!(code, 403);
    let am = payload("alertmanager", "kube-prometheus_TargetDown_firing.json");
    let (code, _) =
        d.post("alertmanager", am, &[("authorization", "Bearer am-token"), ("authorization", "Bearer am-token")]).await;
    assert_eq!(code, 403);
    let status = d.settle().await;
    assert_eq!(status["events"]["decided"], 1, "only the one good delivery: {status}");
    d.stop().await;
}

/// `docs/sources/cloudevents.md` says attributes that are not UTF-8 are refused; raw bytes
/// in a `ce-*` header were read as replacement characters instead.
#[tokio::test]
async fn a_cloudevents_header_that_is_not_utf8_gets_400() {
    let d = Daemon::start("").await;
    let client = reqwest::Client::new();
    let send = |subject: reqwest::header::HeaderValue| {
        client
            .post(d.url("/webhooks/cloudevents"))
            .header("ce-specversion", "1.0")
            .header("ce-id", "hostile-1")
            .header("ce-source", "/ci/hostile")
            .header("ce-type", "dev.sparky.test")
            .header("ce-subject", subject)
            .header("content-type", "application/json")
            .body(r#"{"status":"firing"}"#)
            .send()
    };
    let resp = send(reqwest::header::HeaderValue::from_bytes(b"\xff\xfe").unwrap()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("`ce-subject` header is not UTF-8"), "{text}");
    let resp = send(reqwest::header::HeaderValue::from_static("checkout")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{}", resp.text().await.unwrap());
    d.stop().await;
}

/// Sends the head of a POST whose body is announced but never sent, and returns the status
/// line the daemon answers with within two seconds (`None`: it waited for the body).
async fn answer_without_body(d: &Daemon, path: &str, extra: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = d.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 900000\r\n{extra}\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buf)).await.ok()?.ok()?;
    String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_string)
}

/// Credentials are checked before the body is read: an unauthenticated client cannot make
/// Sparky wait for, or buffer, the megabyte it announces.
#[tokio::test]
async fn credentials_the_headers_decide_are_refused_before_the_body_is_read() {
    let yaml = "sources:
  alertmanager: {auth: {type: bearer, token: am-token}}
  github: {auth: {type: github, secret: gh-secret}}
";
    let d = Daemon::start(yaml).await;
    let wrong = answer_without_body(&d, "/webhooks/alertmanager", "Authorization: Bearer nope\r\n").await;
    assert!(wrong.as_deref().is_some_and(|l| l.contains(" 403")), "{wrong:?}");
    let none = answer_without_body(&d, "/webhooks/alertmanager", "").await;
    assert!(none.as_deref().is_some_and(|l| l.contains(" 401")), "{none:?}");
    let unsigned = answer_without_body(&d, "/webhooks/github", "X-GitHub-Event: push\r\n").await;
    assert!(unsigned.as_deref().is_some_and(|l| l.contains(" 401")), "{unsigned:?}");
    // A well-formed signature is checked against the body: the daemon waits for it.
    let sig = format!("X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256={}\r\n", "0".repeat(64));
    assert_eq!(answer_without_body(&d, "/webhooks/github", &sig).await, None);
    d.stop().await;
}

/// An alert's content never widens what an action touches: through the daemon, a user id of
/// `*` is escaped in PB-004's Redis pattern, and a pod label that is no Kubernetes name
/// refuses PB-001's plan while the alert is still escalated.
#[tokio::test]
async fn hostile_label_values_are_escaped_or_refused_in_plans() {
    let d = Daemon::start("").await;
    let mut cache: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("playbooks/events/CacheDataInconsistency_prod_firing.json").unwrap(),
    )
    .unwrap();
    cache["alerts"][0]["labels"]["user_id"] = "*".into();
    let (code, _) = d.post("alertmanager", cache.to_string(), &[]).await;
    assert_eq!(code, 202);
    let mut crash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("playbooks/events/KubePodCrashLooping_prod_firing.json").unwrap(),
    )
    .unwrap();
    crash["alerts"][0]["labels"]["pod"] = "../kube-system/x".into();
    let (code, _) = d.post("alertmanager", crash.to_string(), &[]).await;
    assert_eq!(code, 202);
    d.settle().await;
    let decisions = d.decisions().await;
    let of = |playbook: &str| {
        decisions.iter().find(|x| x["playbook"] == playbook).unwrap_or_else(|| panic!("{decisions:?}"))["explained"]
            ["decision"]
            .clone()
    };
    let flush = of("PB-004");
    assert_eq!(flush["actions"][0]["args"]["pattern"], "user:\\*:*", "{flush}");
    let restart = of("PB-001");
    assert_eq!(restart["level"], "L3", "{restart}");
    assert!(restart["actions"].as_array().unwrap().is_empty());
    assert!(restart["reasons"].to_string().contains("is not a Kubernetes name"), "{restart}");
    d.stop().await;
}
