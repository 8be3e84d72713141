//! The GitHub client of L2 against a local fake GitHub (`tests/support/fake_github.rs`):
//! one pull request per branch whatever the retries, a lost answer, a 422 duplicate, a
//! secondary rate limit with Retry-After, a 500, a reviewer who is not a collaborator, and
//! a pull request a person closed.

#[path = "support/fake_github.rs"]
mod fake_github;

use fake_github::{Endpoint, FakeGitHub};
use sparky::escalate::http::DeliveryError;
use sparky::fix::github::{GitHub, PullRequestSpec};
use std::time::Duration;

fn spec() -> PullRequestSpec {
    PullRequestSpec {
        repo: "acme/pricing".into(),
        head: "sparky/SPK-0123456789ab".into(),
        base: "main".into(),
        title: "Sparky L2 Fix: revert 1a47b86b7346 (make big orders cheaper)".into(),
        body: "## Root cause\n...".into(),
        reviewers: vec!["dana".into()],
        team_reviewers: Vec::new(),
        labels: vec!["sparky".into(), "sparky:l2".into()],
        draft: false,
    }
}

#[tokio::test]
async fn one_pull_request_per_branch_whatever_the_retries() {
    let fake = FakeGitHub::start().await;
    let gh = GitHub::new(&fake.url, "gh-token", Duration::from_secs(5));
    assert_eq!(gh.default_branch("acme/pricing").await.unwrap(), "main");
    let first = gh.open_pull_request(&spec()).await.unwrap();
    assert!(first.created && first.notes.is_empty(), "{first:?}");
    assert_eq!(first.pull.number, 1);
    // A retry (a restart, a redelivery) updates it.
    let mut again = spec();
    again.body = "## Root cause\nupdated".into();
    let second = gh.open_pull_request(&again).await.unwrap();
    assert!(!second.created);
    let pulls = fake.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].body, "## Root cause\nupdated");
    assert_eq!(pulls[0].reviewers, ["dana"]);
    assert_eq!(pulls[0].labels, ["sparky", "sparky:l2"]);
}

#[tokio::test]
async fn a_lost_answer_and_a_422_duplicate_are_success() {
    let fake = FakeGitHub::start().await;
    let gh = GitHub::new(&fake.url, "gh-token", Duration::from_secs(5));
    // GitHub opened it, then the answer was lost: the caller retries.
    fake.commit_then_fail_next_create();
    match gh.open_pull_request(&spec()).await {
        Err(DeliveryError::Retry { ambiguous: true, .. }) => {}
        other => panic!("expected an ambiguous retry, got {other:?}"),
    }
    // The retry finds it. A concurrent creator's 422 "already exists" is success too: the
    // fake lists it, so no second one is opened either way.
    let retried = gh.open_pull_request(&spec()).await.unwrap();
    assert!(!retried.created);
    assert_eq!(fake.pulls().len(), 1);
    assert_eq!(fake.calls(Endpoint::CreatePull), 1);
}

#[tokio::test]
async fn rate_limits_and_server_errors_come_back_as_waits() {
    let fake = FakeGitHub::start().await;
    let gh = GitHub::new(&fake.url, "gh-token", Duration::from_secs(5));
    fake.fail_next(Endpoint::CreatePull, 1, 403, Some(7));
    match gh.open_pull_request(&spec()).await {
        Err(DeliveryError::Retry { after, reason, .. }) => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(reason.contains("secondary rate limit"), "{reason}");
        }
        other => panic!("expected a wait, got {other:?}"),
    }
    fake.fail_next(Endpoint::ListPulls, 1, 500, None);
    assert!(matches!(gh.open_pull_request(&spec()).await, Err(DeliveryError::Retry { .. })));
    assert!(gh.open_pull_request(&spec()).await.unwrap().created);
    // A bad token is retried (fixing it delivers what waited) and never shown.
    let bad = GitHub::new(&fake.url, "wrong-token", Duration::from_secs(5));
    match bad.default_branch("acme/pricing").await {
        Err(DeliveryError::Retry { reason, .. }) => {
            assert!(reason.contains("401") && !reason.contains("wrong-token"), "{reason}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reviewer_who_cannot_review_is_a_note_and_a_closed_pull_request_is_never_reopened() {
    let fake = FakeGitHub::start().await;
    let gh = GitHub::new(&fake.url, "gh-token", Duration::from_secs(5));
    let mut s = spec();
    s.reviewers = vec!["outsider".into()];
    let opened = gh.open_pull_request(&s).await.unwrap();
    assert!(opened.created);
    assert_eq!(opened.notes.len(), 1);
    assert!(opened.notes[0].contains("outsider") || opened.notes[0].contains("collaborator"), "{:?}", opened.notes);
    fake.close(opened.pull.number, false);
    let after = gh.open_pull_request(&spec()).await.unwrap();
    assert!(!after.created);
    assert!(after.notes[0].contains("closed without merging"), "{:?}", after.notes);
    assert_eq!(fake.pulls().len(), 1);
}
