//! What `support/fake_escalation.rs` does, shown against it with a plain HTTP client.

#[path = "support/fake_escalation.rs"]
mod fake_escalation;

use fake_escalation::{Endpoint, FakeEscalation, ROUTING_KEY};
use serde_json::{Value, json};
use std::time::Duration;

fn adf(text: &str) -> Value {
    json!({ "type": "doc", "version": 1, "content": [{ "type": "paragraph", "content": [{ "type": "text", "text": text }] }] })
}

fn issue_fields(project: &str, description: Value, labels: &[&str]) -> Value {
    json!({ "fields": {
        "project": { "key": project }, "summary": "checkout is down", "issuetype": { "name": "Incident" },
        "priority": { "name": "High" }, "labels": labels, "description": description,
    } })
}

/// (status, body as JSON, or as a string when not JSON).
async fn call(client: &reqwest::Client, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("the fake answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn search_jql(fake: &FakeEscalation, version: u8, jql: &str) -> String {
    let path = if version == 3 { "search/jql" } else { "search" };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("jql", jql)
        .append_pair("fields", "summary,status,labels")
        .finish();
    format!("{}/rest/api/{version}/{path}?{query}", fake.url())
}

#[tokio::test]
async fn a_cloud_issue_is_filed_found_commented_and_closed() {
    let fake = FakeEscalation::start().await;
    let c = reqwest::Client::new();
    let base = fake.url();
    let (status, created) =
        call(&c, "POST", &format!("{base}/rest/api/3/issue"), Some(issue_fields("OPS", adf("details"), &["inc-1"])))
            .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created, json!({ "id": "10001", "key": "OPS-1", "self": format!("{base}/rest/api/3/issue/10001") }));

    let open = search_jql(&fake, 3, "labels = \"inc-1\" AND statusCategory != Done ORDER BY created ASC");
    let (status, found) = call(&c, "GET", &open, None).await;
    assert_eq!(status, 200);
    assert_eq!(found["isLast"], true);
    assert_eq!(found["issues"][0]["key"], "OPS-1");
    assert_eq!(found["issues"][0]["fields"]["status"]["statusCategory"]["key"], "new");
    assert_eq!(found["issues"][0]["fields"]["labels"], json!(["inc-1"]));
    let (_, none) = call(&c, "GET", &search_jql(&fake, 3, "project = CHK AND labels = inc-1"), None).await;
    assert_eq!(none["issues"], json!([]));

    let transitions = format!("{base}/rest/api/3/issue/OPS-1/transitions");
    let (_, list) = call(&c, "GET", &transitions, None).await;
    let ids: Vec<&str> = list["transitions"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["11", "31"]);
    assert_eq!(call(&c, "POST", &transitions, Some(json!({ "transition": { "id": "31" } }))).await.0, 204);
    assert_eq!(call(&c, "GET", &open, None).await.1["issues"], json!([]));
    assert_eq!(fake.issue("OPS-1").unwrap().status_category, "done");
    let (status, again) = call(&c, "POST", &transitions, Some(json!({ "transition": { "id": "31" } }))).await;
    assert_eq!((status, &again["errorMessages"][0]), (400, &json!("Transition id '31' is not valid for this issue.")));

    let (status, _) =
        call(&c, "POST", &format!("{base}/rest/api/3/issue/OPS-1/comment"), Some(json!({ "body": adf("fixed") })))
            .await;
    assert_eq!(status, 201);
    assert_eq!(fake.issues_with_label("inc-1")[0].comments, vec![adf("fixed")]);
    let (status, missing) =
        call(&c, "POST", &format!("{base}/rest/api/3/issue/OPS-99/comment"), Some(json!({ "body": adf("x") }))).await;
    assert_eq!(status, 404);
    assert_eq!(missing["errorMessages"][0], "Issue does not exist or you do not have permission to see it.");
    assert_eq!(call(&c, "GET", &format!("{base}/rest/api/3/search?jql=labels%3Dx"), None).await.0, 410);
}

#[tokio::test]
async fn jira_validates_fields_per_flavour() {
    let fake = FakeEscalation::start().await;
    let c = reqwest::Client::new();
    let base = fake.url();
    let bad = json!({ "fields": {
        "project": { "key": "NOPE" }, "summary": "", "issuetype": { "name": "Incident" },
        "priority": { "name": "P1" }, "labels": ["two words"], "description": "plain text",
    } });
    let (status, answer) = call(&c, "POST", &format!("{base}/rest/api/3/issue"), Some(bad)).await;
    assert_eq!(status, 400);
    let fields: Vec<&String> = answer["errors"].as_object().unwrap().keys().collect();
    assert_eq!(fields, ["project", "summary", "priority", "description", "labels"]);
    assert_eq!(answer["errors"]["labels"], "The label 'two words' contains spaces which is invalid.");

    let server = format!("{base}/rest/api/2/issue");
    let (status, answer) = call(&c, "POST", &server, Some(issue_fields("CHK", adf("x"), &["inc-2"]))).await;
    assert_eq!((status, &answer["errors"]["description"]), (400, &json!("Operation value must be a string")));
    let (status, answer) = call(&c, "POST", &server, Some(issue_fields("CHK", json!("h1. wiki"), &["inc-2"]))).await;
    assert_eq!((status, &answer["key"]), (201, &json!("CHK-1")));
    assert_eq!(fake.issues()[0].flavour, "server");

    let (_, found) = call(&c, "GET", &search_jql(&fake, 2, "labels = inc-2 AND statusCategory != Done"), None).await;
    assert_eq!(
        (&found["total"], &found["startAt"], &found["issues"][0]["key"]),
        (&json!(1), &json!(0), &json!("CHK-1"))
    );
    assert_eq!(call(&c, "GET", &search_jql(&fake, 3, "labels = x OR labels = y"), None).await.0, 400);
}

#[tokio::test]
async fn jira_requires_the_configured_authorization() {
    let fake = FakeEscalation::start().await;
    fake.require_auth("Bearer s3cret");
    let c = reqwest::Client::new();
    let url = format!("{}/rest/api/3/issue", fake.url());
    let (status, answer) = call(&c, "POST", &url, Some(issue_fields("OPS", adf("x"), &[]))).await;
    assert_eq!(status, 401);
    assert!(answer["errorMessages"][0].as_str().unwrap().starts_with("You are not authenticated"));
    let authed = c.post(&url).bearer_auth("s3cret").json(&issue_fields("OPS", adf("x"), &[])).send().await.unwrap();
    assert_eq!(authed.status(), 201);
    let seen: Vec<(String, u16)> = fake.calls().into_iter().map(|c| (c.authorization, c.status)).collect();
    assert_eq!(seen, [("".to_string(), 401), ("Bearer s3cret".to_string(), 201)]);
}

#[tokio::test]
async fn pagerduty_opens_dedups_and_resolves_alerts() {
    let fake = FakeEscalation::start().await;
    let c = reqwest::Client::new();
    let url = format!("{}/v2/enqueue", fake.url());
    let trigger = |dedup: Option<&str>| {
        let mut e = json!({ "routing_key": ROUTING_KEY, "event_action": "trigger",
            "payload": { "summary": "checkout down", "source": "sparky", "severity": "critical" },
            "links": [{ "href": "https://jira.example/browse/OPS-1", "text": "OPS-1" }] });
        if let Some(d) = dedup {
            e["dedup_key"] = json!(d);
        }
        e
    };
    let state =
        |action: &str, dedup: &str| json!({ "routing_key": ROUTING_KEY, "event_action": action, "dedup_key": dedup });

    let (status, answer) = call(&c, "POST", &url, Some(trigger(None))).await;
    assert_eq!((status, &answer["status"], &answer["message"]), (202, &json!("success"), &json!("Event processed")));
    assert_eq!(answer["dedup_key"].as_str().unwrap().len(), 32);
    assert_eq!(call(&c, "POST", &url, Some(trigger(Some("inc-7")))).await.1["dedup_key"], "inc-7");
    call(&c, "POST", &url, Some(trigger(Some("inc-7")))).await;
    call(&c, "POST", &url, Some(state("acknowledge", "inc-7"))).await;
    call(&c, "POST", &url, Some(state("resolve", "inc-7"))).await;
    assert_eq!(call(&c, "POST", &url, Some(state("resolve", "never-triggered"))).await.0, 202);
    call(&c, "POST", &url, Some(trigger(Some("inc-7")))).await;

    let alerts: Vec<(String, String, Vec<String>)> = fake
        .pd_alerts()
        .into_iter()
        .filter(|a| a.dedup_key == "inc-7")
        .map(|a| (a.dedup_key, a.state, a.events))
        .collect();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        alerts,
        [
            ("inc-7".into(), "resolved".into(), strings(&["trigger", "trigger", "acknowledge", "resolve"])),
            ("inc-7".into(), "triggered".into(), strings(&["trigger"])),
        ]
    );
    assert_eq!(fake.pd_alerts()[1].links[0]["text"], "OPS-1");
    assert_eq!(fake.pd_events().len(), 7);

    let invalid =
        json!({ "routing_key": "short", "event_action": "trigger", "payload": { "source": "x", "severity": "fatal" } });
    let (status, answer) = call(&c, "POST", &url, Some(invalid)).await;
    assert_eq!((status, &answer["status"]), (400, &json!("invalid event")));
    assert_eq!(answer["errors"].as_array().unwrap().len(), 3, "{answer}");

    fake.rate_limit_pd(2);
    let statuses = [
        call(&c, "POST", &url, Some(state("resolve", "a"))).await.0,
        call(&c, "POST", &url, Some(state("resolve", "b"))).await.0,
        call(&c, "POST", &url, Some(state("resolve", "c"))).await.0,
    ];
    assert_eq!(statuses, [202, 202, 429]);
}

#[tokio::test]
async fn slack_takes_json_with_text_or_blocks() {
    let fake = FakeEscalation::start().await;
    let c = reqwest::Client::new();
    let url = format!("{}/slack/services/T0/B0/XYZ", fake.url());
    assert_eq!(call(&c, "POST", &url, Some(json!({ "text": "paging" }))).await, (200, json!("ok")));
    assert_eq!(call(&c, "POST", &url, Some(json!({ "username": "x" }))).await, (400, json!("no_text")));
    let not_json = c.post(&url).body("not json").send().await.unwrap();
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.text().await.unwrap(), "invalid_payload");
    assert_eq!(fake.slack_messages(), vec![json!({ "text": "paging" })]);
}

#[tokio::test]
async fn faults_fail_hang_and_take_the_server_down() {
    let fake = FakeEscalation::start().await;
    let c = reqwest::Client::new();
    let impatient = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let create = format!("{}/rest/api/3/issue", fake.url());
    let body = || Some(issue_fields("OPS", adf("x"), &["inc-9"]));

    fake.fail_next(Endpoint::JiraCreate, 1, 429, Some(7));
    let throttled = c.post(&create).json(&body().unwrap()).send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "7");
    assert!(throttled.json::<Value>().await.unwrap()["errorMessages"].is_array());
    assert!(fake.issues().is_empty());
    fake.fail_next(Endpoint::PagerDuty, 1, 429, None);
    let pd = json!({ "routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "x" });
    let (status, answer) = call(&c, "POST", &format!("{}/v2/enqueue", fake.url()), Some(pd)).await;
    assert_eq!((status, &answer["status"]), (429, &json!("throttle event")));

    // The remote side commits, the client times out: the issue exists all the same.
    fake.commit_then_hang_next(Endpoint::JiraCreate, 1, Duration::from_millis(500));
    let lost = impatient.post(&create).json(&body().unwrap()).send().await;
    assert!(lost.unwrap_err().is_timeout());
    assert_eq!(fake.issues_with_label("inc-9").len(), 1);

    // A hang before the work: the client gives up, the request is dropped undone.
    fake.hang_next(Endpoint::JiraCreate, 1, Duration::from_millis(200));
    assert!(impatient.post(&create).json(&body().unwrap()).send().await.unwrap_err().is_timeout());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.issues().len(), 1);

    fake.down(true);
    assert_eq!(call(&c, "POST", &create, body()).await.0, 503);
    fake.down(false);
    assert_eq!(call(&c, "POST", &create, body()).await.0, 201);
    let statuses: Vec<u16> = fake.calls_to(Endpoint::JiraCreate).iter().map(|c| c.status).collect();
    assert_eq!(statuses, [429, 201, 0, 503, 201]);
}
