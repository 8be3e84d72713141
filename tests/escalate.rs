//! L3 delivery end to end: the real daemon (in this process, on an ephemeral port, with a
//! temporary store) escalating through the real Jira, PagerDuty and Slack clients to a local
//! fake server that speaks their protocols, with faults injected: 429 with Retry-After,
//! 500, a destination down, a timeout after Jira committed, a 400, and the `sparky` binary
//! killed in the middle of a delivery. One incident key must give one Jira issue and one
//! PagerDuty alert, whatever happens.

#[path = "support/binary.rs"]
mod binary;
#[path = "support/escalation.rs"]
mod escalation;
#[path = "support/fake_escalation.rs"]
mod fake_escalation;

use escalation::*;
use fake_escalation::{Endpoint, FakeEscalation};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn one_alert_arriving_twice_in_two_seconds_files_one_issue_and_one_page_then_resolves_them() {
    let fake = FakeEscalation::start().await;
    let d = Daemon::start(&config(&fake.url(), "")).await;
    // The same alert again (as a second Alertmanager replica sends it), three deliveries at
    // once a second later, while the first may be mid-delivery.
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "firing")]).await, 202);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut again = alert("CheckoutDown", 1, "firing");
    again["annotations"]["description"] = json!("sent again");
    let (a, b, c) = tokio::join!(
        post(&d.base, vec![again.clone()]),
        post(&d.base, vec![again.clone()]),
        post(&d.base, vec![again])
    );
    assert_eq!((a, b, c), (202, 202, 202));
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    // The second delivery is a repeat of the open incident: a comment on its issue, no more.
    assert_eq!(
        states(&rows),
        ["jira note delivered", "jira open delivered", "pagerduty open delivered", "slack open delivered"],
        "{rows:#?}"
    );

    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    let issue = &issues[0];
    let key = rows[0]["incident_key"].as_str().unwrap().to_string();
    assert_eq!(issue.project, "CHK", "the service's project (jira/project-key)");
    assert_eq!(issue.priority, "Highest", "critical and unmatched: P1, mapped to the instance's name");
    assert!(issue.labels.contains(&key) && issue.labels.contains(&"sparky".to_string()), "{:?}", issue.labels);
    assert!(issue.summary.contains("checkout is down"), "{}", issue.summary);
    assert_eq!(issue.description["type"], "doc", "Jira Cloud takes ADF");

    let alerts = fake.pd_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let page = &alerts[0];
    assert_eq!(page.dedup_key, key);
    assert_eq!(page.routing_key, CHECKOUT_KEY, "the service's integration key, not the default");
    assert_eq!(page.payload["severity"], "critical");
    let links = page.links.to_string();
    assert!(links.contains(&format!("/browse/{}", issue.key)), "the page links to the Jira issue: {links}");
    assert!(page.payload["custom_details"]["jira"].as_str().unwrap().contains(&issue.key));
    assert_eq!(fake.slack_messages().len(), 1);
    // Jira was asked whether the issue existed before it was created.
    let jira_calls: Vec<String> = fake
        .calls()
        .iter()
        .filter(|c| c.path.starts_with("/rest/api/3"))
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(jira_calls[..2], ["GET /rest/api/3/search/jql", "POST /rest/api/3/issue"]);
    let repeat = fake.issue(&issue.key).unwrap().comments;
    assert_eq!(repeat.len(), 1);
    assert!(repeat[0].to_string().contains("fired again"), "{repeat:?}");

    // The alert resolves: the page resolves, the issue is transitioned and commented.
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "resolved")]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    let alerts = fake.pd_alerts();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].state, "resolved");
    let issues = fake.issues();
    assert_eq!(issues[0].status, "Done");
    assert_eq!(issues[0].comments.len(), 2, "the repeat and the resolution: {:?}", issues[0].comments);
    assert_eq!(fake.slack_messages().len(), 2, "the escalation and its resolution");
    d.stop().await;
}

#[tokio::test]
async fn rate_limits_server_errors_and_an_outage_delay_delivery_but_lose_nothing() {
    let fake = FakeEscalation::start().await;
    fake.fail_next(Endpoint::JiraCreate, 1, 429, Some(1));
    fake.fail_next(Endpoint::PagerDuty, 2, 500, None);
    let d = Daemon::start(&config(&fake.url(), "")).await;
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "firing")]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(30)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.pd_alerts().len(), 1);
    // The 429's Retry-After (1 s) was honoured: the retry came at least a second later.
    let creates = fake.calls_to(Endpoint::JiraCreate);
    assert_eq!(creates.len(), 2, "{creates:#?}");
    assert!(creates[1].at - creates[0].at >= Duration::from_millis(950), "{creates:#?}");
    assert_eq!(fake.calls_to(Endpoint::PagerDuty).len(), 3);

    // Every destination down: nothing is lost, the status says what waits and why.
    fake.down(true);
    let alerts = (2..7).map(|n| alert("CheckoutDown", n, "firing")).collect();
    assert_eq!(post(&d.base, alerts).await, 202);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = get(&d.base, "/api/v1/status").await;
    let escalation = &status["escalation"];
    assert!(escalation["outbox"]["jira"]["pending"].as_i64().unwrap() >= 5, "{escalation:#}");
    assert!(escalation["errors"][0]["last_error"].as_str().unwrap().contains("503"), "{escalation:#}");
    let metrics = reqwest::get(format!("{}/metrics", d.base)).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("sparky_escalation_deliveries_total{destination=\"jira\",action=\"open\",outcome=\"retry\"}"),
        "{metrics}"
    );
    fake.down(false);
    let rows = outbox_settled(&d.base, Duration::from_secs(30)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    assert_eq!(fake.issues().len(), 6);
    assert_eq!(fake.pd_alerts().len(), 6);
    d.stop().await;
}

#[tokio::test]
async fn a_create_that_timed_out_after_jira_committed_is_found_not_filed_twice() {
    let fake = FakeEscalation::start().await;
    // Jira creates the issue, then answers after the client gave up (timeout 500 ms).
    fake.commit_then_hang_next(Endpoint::JiraCreate, 1, Duration::from_secs(2));
    let d = Daemon::start(&config(&fake.url(), "")).await;
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "firing")]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(30)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    assert_eq!(fake.issues().len(), 1, "{:#?}", fake.issues());
    let jira = rows.iter().find(|r| r["destination"] == "jira").unwrap();
    assert_eq!(jira["attempts"], 2);
    assert_eq!(jira["remote"], fake.issues()[0].key);
    d.stop().await;
}

#[tokio::test]
async fn a_request_the_destination_refuses_is_not_retried_and_says_why() {
    let fake = FakeEscalation::start().await;
    // A routing key PagerDuty rejects (400), and a default Jira project that does not exist
    // for an event of no known service.
    let yaml = config(&fake.url(), "")
        .replace(DEFAULT_KEY, "too-short")
        .replace("    resolve_transition: Done\n", "    resolve_transition: Done\n    project: NOPE\n");
    let d = Daemon::start(&yaml).await;
    let mut a = alert("DiskFull", 1, "firing");
    a["labels"].as_object_mut().unwrap().retain(|k, _| !matches!(k.as_str(), "service" | "deployment"));
    assert_eq!(post(&d.base, vec![a]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(states(&rows), ["jira open failed", "pagerduty open failed", "slack open delivered"], "{rows:#?}");
    assert_eq!(fake.calls_to(Endpoint::PagerDuty).len(), 1, "a 400 is never retried");
    assert_eq!(fake.calls_to(Endpoint::JiraCreate).len(), 1);
    let pd = rows.iter().find(|r| r["destination"] == "pagerduty").unwrap();
    assert!(pd["last_error"].as_str().unwrap().contains("400"), "{pd:#}");
    let jira = rows.iter().find(|r| r["destination"] == "jira").unwrap();
    assert!(jira["last_error"].as_str().unwrap().contains("project"), "{jira:#}");

    // Once the project exists, an operator puts the row back in line.
    fake.add_project("NOPE");
    let id = jira["id"].as_i64().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/outbox/{id}/retry", d.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(states(&rows), ["jira open delivered", "pagerduty open failed", "slack open delivered"]);
    assert_eq!(fake.issues()[0].project, "NOPE");
    d.stop().await;
}

#[tokio::test]
async fn a_failed_verification_escalates_with_the_attempt_and_dry_run_sends_nothing() {
    let fake = FakeEscalation::start().await;
    // Kubernetes in dry-run (the restart is recorded, not applied); Jira live, PagerDuty and
    // Slack dry-run.
    let yaml = config(&fake.url(), "")
        .replace("    enabled: true\n", "    enabled: true\n    mode: dry-run\n")
        .replace("  slack:\n    webhooks:", "  slack:\n    mode: dry-run\n    webhooks:");
    let d = Daemon::start(&yaml).await;
    let mut a = alert("KubeDeploymentCrashing", 1, "firing");
    a["labels"]["severity"] = json!("warning");
    assert_eq!(post(&d.base, vec![a]).await, 202);
    let mut rows = Vec::new();
    for _ in 0..200 {
        rows = outbox_settled(&d.base, Duration::from_secs(10)).await;
        if rows.len() == 3 && rows.iter().all(|r| r["state"] != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(states(&rows), ["jira open delivered", "pagerduty open dry_run", "slack open dry_run"], "{rows:#?}");
    assert!(rows.iter().all(|r| r["cause"] == "verification failed"), "{rows:#?}");
    let issues = fake.issues();
    assert_eq!(issues.len(), 1);
    let description = issues[0].description.to_string();
    assert!(description.contains("PB-951"), "the attempt is in the issue: {description}");
    assert_eq!(issues[0].priority, "High", "the playbook's l3 priority P2");
    assert!(fake.pd_events().is_empty() && fake.slack_messages().is_empty(), "dry-run sends nothing");
    d.stop().await;
}

#[tokio::test]
async fn a_daemon_killed_mid_delivery_files_one_issue_after_restart() {
    let fake = FakeEscalation::start().await;
    fake.commit_then_hang_next(Endpoint::JiraCreate, 1, Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path());
    // A long client timeout: the daemon is killed while it waits for Jira's answer.
    let yaml = format!(
        "store: sqlite://{}\nplaybooks: [{}]\ncatalog: [{}]\n{}",
        dir.path().join("sparky.db").display(),
        dir.path().join("playbooks").display(),
        dir.path().join("catalog").display(),
        config(&fake.url(), "").replace("timeout: 500ms", "timeout: 120s")
    );
    std::fs::write(dir.path().join("sparky.yaml"), yaml).unwrap();
    let args = ["--config", "sparky.yaml"];
    let child = binary::spawn(dir.path(), &args);
    assert_eq!(post(&child.base, vec![alert("CheckoutDown", 1, "firing")]).await, 202);
    for _ in 0..400 {
        if !fake.issues().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(fake.issues().len(), 1, "Jira took the create");
    child.kill();

    let child = binary::spawn(dir.path(), &args);
    let rows = outbox_settled(&child.base, Duration::from_secs(30)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    assert_eq!(fake.issues().len(), 1, "found by its label, not filed again: {:#?}", fake.issues());
    assert_eq!(fake.pd_alerts().len(), 1);
    child.kill();
}

#[tokio::test]
async fn jira_server_gets_wiki_markup_and_pagerduty_throttling_is_waited_out() {
    let fake = FakeEscalation::start().await;
    // PagerDuty throttles the key beyond one event a second; Sparky's own spacing (10 ms
    // here) is shorter, so some events get a 429 and are retried.
    fake.rate_limit_pd(1);
    let yaml = config(&fake.url(), "").replace("    email: sparky@example.com\n", "    flavor: server\n");
    let d = Daemon::start(&yaml).await;
    let alerts = (1..4).map(|n| alert("CheckoutDown", n, "firing")).collect();
    assert_eq!(post(&d.base, alerts).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(30)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    let issues = fake.issues();
    assert_eq!(issues.len(), 3);
    assert!(issues.iter().all(|i| i.flavour == "server" && i.description.is_string()), "{issues:#?}");
    assert!(fake.calls().iter().any(|c| c.path == "/rest/api/2/search"));
    assert!(fake.calls().iter().all(|c| !c.path.starts_with("/rest/api/") || c.authorization == "Bearer jira-token"));
    assert_eq!(fake.pd_alerts().len(), 3);
    let throttled = fake.calls_to(Endpoint::PagerDuty).iter().filter(|c| c.status == 429).count();
    assert!(throttled > 0, "the fake throttled some events: {:#?}", fake.calls_to(Endpoint::PagerDuty));
    d.stop().await;
}

#[tokio::test]
async fn an_alert_that_fires_again_after_it_resolved_is_paged_again_on_its_one_issue() {
    let fake = FakeEscalation::start().await;
    let d = Daemon::start(&config(&fake.url(), "")).await;
    // A multi-line summary (alert descriptions often are): Jira takes one line.
    let mut firing = alert("CheckoutDown", 1, "firing");
    firing["annotations"]["summary"] = json!("checkout is down\nsince the 10:00 deploy");
    assert_eq!(post(&d.base, vec![firing.clone()]).await, 202);
    outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "resolved")]).await, 202);
    outbox_settled(&d.base, Duration::from_secs(20)).await;
    // The same alert (same start) again: Alertmanager resends after its resolve timeout.
    firing["annotations"]["description"] = json!("again");
    assert_eq!(post(&d.base, vec![firing]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert!(rows.iter().all(|r| r["state"] == "delivered"), "{rows:#?}");
    let issues = fake.issues();
    assert_eq!(issues.len(), 1, "one issue per incident key: {issues:#?}");
    assert_eq!(issues[0].summary, "CheckoutDown: checkout is down since the 10:00 deploy");
    let comments = issues[0].comments.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    assert!(comments.contains("fired again after it resolved"), "{comments}");
    let actions: Vec<String> =
        fake.pd_events().iter().map(|e| e["event_action"].as_str().unwrap().to_string()).collect();
    assert_eq!(actions, ["trigger", "resolve", "trigger"], "paged again for the new opening");
    d.stop().await;
}

#[tokio::test]
async fn a_webhook_url_never_shows_in_errors() {
    let fake = FakeEscalation::start().await;
    // A Slack webhook nobody answers: its token must not reach the error the API shows.
    let yaml = config(&fake.url(), "")
        .replace(&format!("{}/slack/T000/B000/XXXX", fake.url()), "http://127.0.0.1:9/services/T1/B1/SECRETTOKEN");
    let d = Daemon::start(&yaml).await;
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 1, "firing")]).await, 202);
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = get(&d.base, "/api/v1/escalations").await;
        let slack = seen["outbox"].as_array().unwrap().iter().find(|r| r["destination"] == "slack").cloned();
        if slack.is_some_and(|r| r["last_error"].is_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = format!("{seen} {}", get(&d.base, "/api/v1/status").await);
    assert!(text.contains("Slack"), "{seen:#}");
    assert!(!text.contains("SECRETTOKEN"), "{text}");
    d.stop().await;
}
