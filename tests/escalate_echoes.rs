//! PagerDuty's webhooks about Sparky's own pages, end to end: the real daemon pages through
//! the real PagerDuty client to the local fake server, and PagerDuty's echoes of that page
//! come back as webhooks. (A binary of its own, so that its daemons do not slow the timing of
//! the other escalation tests.)

#[path = "support/escalation.rs"]
mod escalation;
#[path = "support/fake_escalation.rs"]
mod fake_escalation;

use escalation::{Daemon, alert, config, get, outbox_settled, post, states};
use fake_escalation::FakeEscalation;
use serde_json::{Value, json};
use std::time::Duration;

/// PagerDuty's v3 webhook about incident `key` (a real payload, its key and status changed).
fn pagerduty_echo(key: &str, event_type: &str, status: &str, id: &str) -> String {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/ingest/pagerduty/v3_incident.triggered.json").unwrap(),
    )
    .unwrap();
    v["event"]["id"] = json!(id);
    v["event"]["event_type"] = json!(event_type);
    v["event"]["data"]["status"] = json!(status);
    v["event"]["data"]["incident_key"] = json!(key);
    v.to_string()
}

async fn post_pagerduty(base: &str, body: String) -> u16 {
    let r = reqwest::Client::new().post(format!("{base}/webhooks/pagerduty")).body(body).send().await;
    r.unwrap().status().as_u16()
}

async fn latest_decision(base: &str) -> Value {
    get(base, "/api/v1/decisions?limit=1").await["decisions"][0]["explained"]["decision"].clone()
}

/// With PagerDuty's webhooks subscribed on the service Sparky pages, every page comes back as
/// `incident.triggered`, then `acknowledged` and `resolved` as people act. Each is a lifecycle
/// update of Sparky's own incident: never a second issue, page or chat message; an
/// acknowledgement or a resolution in PagerDuty reaches the issue, and nothing is sent back to
/// PagerDuty about what PagerDuty itself reported.
#[tokio::test]
async fn pagerduty_echoes_of_sparkys_own_page_update_its_incident_and_never_escalate_again() {
    let fake = FakeEscalation::start().await;
    let d = Daemon::start(&config(&fake.url(), "")).await;
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 7, "firing")]).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(states(&rows), ["jira open delivered", "pagerduty open delivered", "slack open delivered"]);
    let key = rows[0]["incident_key"].as_str().unwrap().to_string();
    assert_eq!(fake.pd_alerts()[0].dedup_key, key, "PagerDuty's incident key is Sparky's");

    assert_eq!(post_pagerduty(&d.base, pagerduty_echo(&key, "incident.triggered", "triggered", "E1")).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(rows.len(), 3, "the echo of the page escalates nothing: {rows:#?}");
    let echo = latest_decision(&d.base).await;
    assert_eq!(echo["level"], "observe", "{echo}");
    assert_eq!(echo["incident"]["key"], key.as_str());
    assert!(echo["reasons"].to_string().contains("never escalated again"), "{echo}");

    assert_eq!(post_pagerduty(&d.base, pagerduty_echo(&key, "incident.acknowledged", "acknowledged", "E2")).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(
        states(&rows),
        ["jira note delivered", "jira open delivered", "pagerduty open delivered", "slack open delivered"],
        "the issue hears of the acknowledgement; PagerDuty is not told what it said: {rows:#?}"
    );
    let comments = fake.issues()[0].comments.clone();
    assert!(comments.last().unwrap().to_string().contains("acknowledged in PagerDuty"), "{comments:?}");

    assert_eq!(post_pagerduty(&d.base, pagerduty_echo(&key, "incident.resolved", "resolved", "E3")).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    let resolved = latest_decision(&d.base).await;
    assert_eq!(resolved["incident"]["effect"], "close", "{resolved}");
    assert!(rows.iter().any(|r| r["destination"] == "jira" && r["action"] == "resolve"), "{rows:#?}");
    assert!(!rows.iter().any(|r| r["destination"] == "pagerduty" && r["action"] != "open"), "{rows:#?}");
    assert_eq!(fake.issues()[0].status, "Done");
    // Alertmanager's own resolution comes later: nothing is open any more, nothing is sent.
    assert_eq!(post(&d.base, vec![alert("CheckoutDown", 7, "resolved")]).await, 202);
    let after = outbox_settled(&d.base, Duration::from_secs(20)).await;
    assert_eq!(after.len(), rows.len(), "{after:#?}");

    assert_eq!(fake.issues().len(), 1);
    assert_eq!(fake.pd_alerts().len(), 1);
    assert_eq!(fake.pd_events().len(), 1, "one trigger, nothing echoed back: {:#?}", fake.pd_events());
    assert_eq!(fake.slack_messages().len(), 2, "the escalation and the resolution");
    d.stop().await;
}

/// A PagerDuty incident that is not Sparky's is escalated as any event would be, but never
/// paged back to PagerDuty: the people it would wake are the ones PagerDuty already woke.
#[tokio::test]
async fn an_incident_from_pagerduty_is_never_paged_back_to_pagerduty() {
    let fake = FakeEscalation::start().await;
    let d = Daemon::start(&config(&fake.url(), "")).await;
    let body = pagerduty_echo("d3640fbd41094207a1c11e58e46b1662", "incident.triggered", "triggered", "X1");
    assert_eq!(post_pagerduty(&d.base, body).await, 202);
    let rows = outbox_settled(&d.base, Duration::from_secs(20)).await;
    let decision = latest_decision(&d.base).await;
    assert_eq!(decision["level"], "L3", "{decision}");
    assert_eq!(decision["escalation"]["page"], false, "{decision}");
    assert!(decision["reasons"].to_string().contains("does not page PagerDuty"), "{decision}");
    assert!(rows.iter().all(|r| r["destination"] != "pagerduty"), "{rows:#?}");
    assert!(fake.pd_events().is_empty());
    d.stop().await;
}
