//! L2 end to end, through the real daemon (in this process, on an ephemeral port, with a
//! temporary store): GitHub reports a deploy of `pricing`, an alert follows three minutes
//! later, the built-in analyzer blames the deploy and proposes a revert, the playbook takes
//! it at L2, and the delivery worker clones a bare repository on disk, reverts the commit,
//! runs the repository's tests, pushes `sparky/<incident-key>` and opens the pull request on
//! a local fake GitHub, asking the on-call engineer for review; the incident is escalated to
//! (fake) Jira meanwhile and told of the pull request. Then GitHub's `pull_request` webhook
//! says it was merged: the fix, the incident's outcome and the acceptance rate follow.

#[path = "support/fake_escalation.rs"]
mod fake_escalation;
#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/fix_repo.rs"]
mod fix_repo;

use chrono::{Duration as Minutes, Utc};
use fake_escalation::FakeEscalation;
use fake_github::FakeGitHub;
use serde_json::{Value, json};
use sparky::daemon::{self, Options, config::Config};
use sparky::fix::git::Git;
use std::path::Path;
use std::time::Duration;

const PLAYBOOK: &str = r#"/// Pricing errors right after a deploy: revert it, in reviewed code.
playbook PB-970 "Pricing errors after a deploy" {
  status active
  owner  "team:pricing"
  on alert from alertmanager {
    labels.alertname == "PricingErrorRate"
  }
  l2 "revert the deploy" {
    fix revert()
    min_confidence 90%
  }
  l3 priority P2
}
"#;

fn catalog(test_command: &str) -> String {
    format!(
        r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: pricing
  annotations:
    github.com/project-slug: acme/pricing
    jira/project-key: CHK
    sparky.dev/oncall: "@dana"
    sparky.dev/test-command: {}
spec:
  type: service
  lifecycle: production
  owner: group:team-pricing
"#,
        serde_json::to_string(test_command).unwrap()
    )
}

fn config(dir: &Path, github: &str, jira: &str, mode: &str, max_attempts: u32) -> String {
    format!(
        r#"triage:
  group_window: 0s
integrations:
  mode: live
  jira:
    url: {jira}
    email: sparky@example.com
    token: jira-token
    timeout: 2s
  github:
    enabled: true
    mode: {mode}
    api: {github}
    token: gh-token
    clone_url: {remotes}/{{repo}}.git
    clone_dir: {clones}
    base: main
    labels: [sparky, "sparky:l2"]
    test_timeout: 1m
    git_timeout: 1m
    max_attempts: {max_attempts}
escalation:
  max_backoff: 1s
"#,
        remotes = dir.join("remotes").display(),
        clones = dir.join("clones").display(),
    )
}

async fn start(dir: &Path, yaml: &str) -> daemon::Running {
    let pbs = dir.join("playbooks");
    std::fs::create_dir_all(&pbs).unwrap();
    std::fs::write(pbs.join("PB-970.sparky"), PLAYBOOK).unwrap();
    let env = |name: &str| std::env::var(name).ok();
    let mut config = Config::parse(yaml, "sparky.yaml", &env).unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.playbooks = vec![pbs];
    config.catalog = Some(vec![dir.join("catalog")]);
    config.store = format!("sqlite://{}", dir.join("sparky.db").display());
    daemon::start(Options { config, insecure: false, ..Options::default() }).await.unwrap()
}

async fn post_github(base: &str, event: &str, body: &Value) -> u16 {
    let r = reqwest::Client::new()
        .post(format!("{base}/webhooks/github"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", uuid_like(body))
        .json(body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// A delivery id of its own for each body.
fn uuid_like(body: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    body.to_string().hash(&mut h);
    format!("{:016x}-0000-4000-8000-000000000000", h.finish())
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("tests/fixtures/ingest/github/{name}")).unwrap()).unwrap()
}

/// GitHub's `deployment_status` (success) of commit `sha` of acme/pricing at `at`.
fn deployed(sha: &str, at: &str) -> Value {
    let mut d = fixture("deployment_status.created.json");
    d["deployment"]["sha"] = sha.into();
    d["deployment"]["ref"] = "v3.1.1".into();
    d["deployment"]["created_at"] = at.into();
    d["deployment_status"]["created_at"] = at.into();
    d["deployment_status"]["updated_at"] = at.into();
    d["repository"]["name"] = "pricing".into();
    d["repository"]["full_name"] = "acme/pricing".into();
    d
}

/// GitHub's `pull_request` `closed` of pull request `number` on `head`.
fn closed(number: u64, head: &str, merged: bool, url: &str) -> Value {
    let mut pr = fixture("pull_request.opened.json");
    pr["action"] = "closed".into();
    pr["number"] = number.into();
    pr["pull_request"]["number"] = number.into();
    pr["pull_request"]["state"] = "closed".into();
    pr["pull_request"]["merged"] = merged.into();
    pr["pull_request"]["html_url"] = url.into();
    pr["pull_request"]["head"]["ref"] = head.into();
    // A branch of the repository itself (a fork's branch names its own repository here).
    pr["pull_request"]["head"]["repo"]["full_name"] = "acme/pricing".into();
    pr["repository"]["name"] = "pricing".into();
    pr["repository"]["full_name"] = "acme/pricing".into();
    pr["sender"]["login"] = "dana".into();
    pr
}

async fn alert(base: &str, starts_at: &str) -> u16 {
    let a = json!({
        "status": "firing",
        "labels": { "alertname": "PricingErrorRate", "namespace": "prod", "service": "pricing", "severity": "critical" },
        "annotations": { "summary": "pricing answers 500 to 12% of quotes" },
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=pricing_errors",
        "fingerprint": "5c1f0aa2b3c4d5e6",
    });
    let body = json!({ "receiver": "sparky", "status": "firing", "alerts": [a], "version": "4",
                       "groupKey": "{}:{}", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager:9093" });
    let r = reqwest::Client::new().post(format!("{base}/webhooks/alertmanager")).json(&body).send().await;
    r.unwrap().status().as_u16()
}

async fn get(base: &str, path: &str) -> Value {
    reqwest::get(format!("{base}{path}")).await.unwrap().json().await.unwrap()
}

/// The first fix once `done` holds of it (or the last seen, after a minute).
async fn fix_when(base: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let v = get(base, "/api/v1/fixes").await;
        let fix = v["fixes"][0].clone();
        if done(&fix) || std::time::Instant::now() > deadline {
            return fix;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Once every event received has been decided (or after a minute).
async fn decided(base: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while get(base, "/api/v1/status").await["events"]["pending"].as_i64().unwrap_or(0) > 0
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running Sparky with pricing's repository, fake GitHub and fake Jira.
struct World {
    dir: tempfile::TempDir,
    bare: String,
    bad: String,
    github: FakeGitHub,
    jira: FakeEscalation,
    running: daemon::Running,
    base: String,
}

async fn world(test_command: &str, mode: &str) -> World {
    world_with(test_command, mode, 10).await
}

async fn world_with(test_command: &str, mode: &str, max_attempts: u32) -> World {
    let dir = tempfile::tempdir().unwrap();
    let (bare, bad) = fix_repo::remote_at(dir.path(), &dir.path().join("remotes/acme/pricing.git"));
    std::fs::create_dir_all(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/catalog-info.yaml"), catalog(test_command)).unwrap();
    let github = FakeGitHub::start().await;
    let jira = FakeEscalation::start().await;
    let running = start(dir.path(), &config(dir.path(), &github.url, &jira.url(), mode, max_attempts)).await;
    let base = format!("http://{}", running.addr);
    World { dir, bare, bad, github, jira, running, base }
}

impl World {
    /// GitHub reports a deploy of `sha` five minutes ago; the alert started two minutes ago.
    /// The fix once carried out.
    async fn deploy_then_alert(&self, sha: &str) -> Value {
        let now = Utc::now();
        let at = |m: i64| (now - Minutes::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        assert_eq!(post_github(&self.base, "deployment_status", &deployed(sha, &at(5))).await, 202);
        assert_eq!(alert(&self.base, &at(2)).await, 202);
        fix_when(&self.base, |f| f["state"].as_str().is_some_and(|s| s != "pending")).await
    }

    /// The Jira issue once it holds `n` comments (or as it is after a minute).
    async fn issue_with_comments(&self, n: usize) -> fake_escalation::Issue {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(i) = self.jira.issues().first()
                && (i.comments.len() >= n || std::time::Instant::now() > deadline)
            {
                return i.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn an_alert_after_a_deploy_becomes_a_reviewed_revert_and_its_merge_is_counted() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    let (base, github, jira, bare) = (&w.base, &w.github, &w.jira, &w.bare);
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "open", "{fix:#}");
    assert_eq!(fix["generator"], "revert");
    assert_eq!(fix["playbook"], "PB-970");
    assert_eq!(fix["repository"], "acme/pricing");
    assert_eq!(fix["tests"], "passed");
    let key = fix["incident_key"].as_str().unwrap().to_string();
    let branch = format!("sparky/{key}");
    assert_eq!(fix["branch"], branch.as_str());

    // The branch is on the remote, one commit on main that takes the bad change back out.
    let remote = Git::at(Path::new(&bare));
    assert_eq!(remote.run(&["rev-list", "--count", &format!("main..{branch}")]).unwrap().trim(), "1");
    let file = remote.run(&["show", &format!("{branch}:app/pricing.py")]).unwrap();
    assert!(file.contains("round(net * (1 + TAX), 2)"), "{file}");

    // One pull request, ready, for the on-call engineer, labelled, saying why and how tested.
    let pulls = github.pulls();
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    let pr = &pulls[0];
    assert_eq!((pr.head.as_str(), pr.base.as_str(), pr.draft), (branch.as_str(), "main", false));
    assert!(pr.title.starts_with("Sparky L2 Fix: revert"), "{}", pr.title);
    assert_eq!(pr.reviewers, ["dana"]);
    assert_eq!(pr.labels, ["sparky", "sparky:l2"]);
    for part in ["the deploy of v3.1.1 to pricing", "**passed**", "PricingErrorRate", "context package"] {
        assert!(pr.body.contains(part), "the body lacks {part:?}:\n{}", pr.body);
    }
    assert_eq!(fix["url"], format!("{}/acme/pricing/pull/{}", github.url, pr.number));

    // The incident is escalated meanwhile, and its Jira issue is told of the pull request.
    let issue = w.issue_with_comments(1).await;
    assert_eq!(issue.project, "CHK");
    assert!(issue.comments[0].to_string().contains("opened pull request #1"), "{:?}", issue.comments);

    // Dana merges it; GitHub says so.
    github.close(pr.number, true);
    let url = fix["url"].as_str().unwrap();
    assert_eq!(post_github(base, "pull_request", &closed(pr.number, &branch, true, url)).await, 202);
    let fix = fix_when(base, |f| f["state"] == "merged").await;
    assert_eq!(fix["state"], "merged", "{fix:#}");
    assert_eq!(fix["answered_by"], "dana");

    let status = get(base, "/api/v1/status").await;
    let acceptance = &status["fixes"]["acceptance"];
    assert_eq!(status["fixes"]["mode"], "live");
    assert_eq!(acceptance["all"]["merged"], 1, "{acceptance:#}");
    assert_eq!(acceptance["all"]["acceptance_rate"], 100.0);
    assert_eq!(acceptance["by_generator"]["revert"]["acceptance_rate"], 100.0);
    assert_eq!(acceptance["by_playbook"]["PB-970"]["merged"], 1);
    let comments = w.issue_with_comments(2).await.comments;
    assert!(comments.iter().any(|c| c.to_string().contains("was merged by @dana")), "{comments:?}");
    // A pull request of someone else's branch is no answer to Sparky, and a merge is final:
    // a later close (GitHub sends one when a merged branch is deleted and restored) moves nothing.
    assert_eq!(post_github(base, "pull_request", &closed(9, "feature/login", false, url)).await, 202);
    let mut again = closed(pr.number, &branch, false, url);
    again["sender"]["login"] = "erin".into();
    assert_eq!(post_github(base, "pull_request", &again).await, 202);
    decided(base).await;
    let fix = fix_when(base, |_| true).await;
    assert_eq!((fix["state"].as_str(), fix["answered_by"].as_str()), (Some("merged"), Some("dana")), "{fix:#}");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"sparky_fix_pull_requests_total{generator="revert",state="open"} 1"#),
        "{}",
        metrics.lines().filter(|l| l.contains("fix")).collect::<Vec<_>>().join("\n")
    );
    assert!(jira.issue(&issue.key).is_some());
    w.running.stop().await.unwrap();
    assert_eq!(w.github.pulls().len(), 1);
}

#[tokio::test]
async fn a_fix_whose_tests_fail_opens_as_a_draft_and_escalates_with_the_attempt() {
    let w = world("echo '1 failed: test_big_orders'; exit 1", "live").await;
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "draft", "{fix:#}");
    assert_eq!(fix["tests"], "failed (exit 1)");
    let pulls = w.github.pulls();
    assert_eq!(pulls.len(), 1);
    assert!(pulls[0].draft, "a fix whose tests fail is not opened as ready");
    assert!(
        pulls[0].body.contains("tests failed on this branch") && pulls[0].body.contains("1 failed"),
        "{}",
        pulls[0].body
    );
    // The incident's issue hears that the fix is not ready, with the attempt.
    let issue = w.issue_with_comments(1).await;
    let said = issue.comments.iter().map(Value::to_string).collect::<String>();
    assert!(said.contains("tests failed on its branch") && said.contains("is a draft"), "{said}");
    assert!(
        said.contains("(exit 1)") && !said.contains("opened pull request"),
        "a draft is not announced as ready: {said}"
    );
    let status = get(&w.base, "/api/v1/status").await;
    assert_eq!(status["fixes"]["acceptance"]["all"]["draft"], 1);
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_revert_the_repository_cannot_take_is_refused_and_escalated_and_nothing_is_pushed() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    let fix = w.deploy_then_alert("0123456789abcdef0123456789abcdef01234567").await;
    assert_eq!(fix["state"], "refused", "{fix:#}");
    assert!(fix["reason"].as_str().unwrap().contains("is not in the repository"), "{fix:#}");
    assert!(w.github.pulls().is_empty());
    let branches = Git::at(Path::new(&w.bare)).run(&["branch", "--list", "sparky/*"]).unwrap();
    assert_eq!(branches.trim(), "", "nothing is pushed for a refused fix");
    let issue = w.issue_with_comments(1).await;
    let said = issue.comments.iter().map(Value::to_string).collect::<String>();
    assert!(said.contains("the L2 fix could not be made"), "{said}");
    // The github row is failed (it can be retried once the cause is fixed) and says why.
    let v = get(&w.base, "/api/v1/escalations").await;
    let row = v["outbox"].as_array().unwrap().iter().find(|r| r["destination"] == "github").unwrap().clone();
    assert_eq!(row["state"], "failed", "{row:#}");
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn in_dry_run_the_fix_is_described_and_nothing_is_cloned_pushed_or_opened() {
    let w = world(fix_repo::TEST_COMMAND, "dry-run").await;
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "dry_run", "{fix:#}");
    assert!(w.github.pulls().is_empty());
    assert!(!w.dir.path().join("clones").exists(), "dry-run clones nothing");
    let v = get(&w.base, "/api/v1/escalations").await;
    let row = v["outbox"].as_array().unwrap().iter().find(|r| r["destination"] == "github").unwrap().clone();
    assert_eq!(row["state"], "dry_run", "{row:#}");
    let status = get(&w.base, "/api/v1/status").await;
    assert_eq!(status["fixes"]["mode"], "dry-run");
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_pull_request_whose_answer_was_lost_is_retried_into_the_same_one() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    // GitHub creates the pull request, then answers 500; the next list is refused too.
    w.github.commit_then_fail_next_create();
    w.github.fail_next(fake_github::Endpoint::ListPulls, 1, 500, None);
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "open", "{fix:#}");
    let pulls = w.github.pulls();
    assert_eq!(pulls.len(), 1, "one pull request per incident, whatever GitHub answered: {pulls:#?}");
    assert_eq!(pulls[0].reviewers, ["dana"]);
    let v = get(&w.base, "/api/v1/escalations").await;
    let row = v["outbox"].as_array().unwrap().iter().find(|r| r["destination"] == "github").unwrap().clone();
    assert_eq!(row["state"], "delivered", "{row:#}");
    assert!(row["attempts"].as_i64().unwrap() >= 2, "{row:#}");
    let remote = Git::at(Path::new(&w.bare));
    let branch = format!("sparky/{}", fix["incident_key"].as_str().unwrap());
    assert_eq!(remote.run(&["rev-list", "--count", &format!("main..{branch}")]).unwrap().trim(), "1");
    w.running.stop().await.unwrap();
}

/// The `github` outbox row of the one fix.
async fn github_row(base: &str) -> Value {
    let v = get(base, "/api/v1/escalations").await;
    v["outbox"].as_array().unwrap().iter().find(|r| r["destination"] == "github").unwrap().clone()
}

#[tokio::test]
async fn a_pull_request_github_refuses_for_good_fails_and_escalates_without_retrying() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    w.github.fail_next(fake_github::Endpoint::CreatePull, 1, 422, None);
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "failed", "{fix:#}");
    assert!(fix["reason"].as_str().unwrap().contains("422"), "{fix:#}");
    assert_eq!(w.github.calls(fake_github::Endpoint::CreatePull), 1, "a 422 is not retried");
    assert!(w.github.pulls().is_empty());
    let row = github_row(&w.base).await;
    assert_eq!((row["state"].as_str(), row["attempts"].as_i64()), (Some("failed"), Some(1)), "{row:#}");
    let issue = w.issue_with_comments(1).await;
    let said = issue.comments.iter().map(Value::to_string).collect::<String>();
    assert!(said.contains("could not open the L2 fix's pull request") && said.contains("422"), "{said}");
    let status = get(&w.base, "/api/v1/status").await;
    assert_eq!(status["fixes"]["acceptance"]["all"]["failed"], 1, "{:#}", status["fixes"]);
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_fix_that_keeps_failing_is_given_up_after_max_attempts() {
    let w = world_with(fix_repo::TEST_COMMAND, "live", 2).await;
    w.github.fail_next(fake_github::Endpoint::CreatePull, 5, 500, None);
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "failed", "{fix:#}");
    let reason = fix["reason"].as_str().unwrap();
    assert!(reason.contains("gave up after 2 attempts") && reason.contains("500"), "{reason}");
    assert_eq!(w.github.calls(fake_github::Endpoint::CreatePull), 2);
    let row = github_row(&w.base).await;
    assert_eq!(row["state"], "failed", "{row:#}");
    let issue = w.issue_with_comments(1).await;
    assert!(issue.comments.iter().any(|c| c.to_string().contains("gave up after 2 attempts")), "{issue:?}");
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_forks_branch_of_the_same_name_does_not_answer_sparkys_pull_request() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    let fix = w.deploy_then_alert(&w.bad).await;
    assert_eq!(fix["state"], "open", "{fix:#}");
    let branch = fix["branch"].as_str().unwrap();
    let url = fix["url"].as_str().unwrap();
    // Mallory opens a pull request from her fork's `sparky/<key>` and merges it there.
    let mut forked = closed(7, branch, true, url);
    forked["pull_request"]["head"]["repo"]["full_name"] = "mallory/pricing".into();
    forked["sender"]["login"] = "mallory".into();
    assert_eq!(post_github(&w.base, "pull_request", &forked).await, 202);
    // Dana closes Sparky's own without merging: that is the answer (a merge would be final).
    assert_eq!(post_github(&w.base, "pull_request", &closed(1, branch, false, url)).await, 202);
    let fix = fix_when(&w.base, |f| f["state"] != "open").await;
    assert_eq!((fix["state"].as_str(), fix["answered_by"].as_str()), (Some("closed"), Some("dana")), "{fix:#}");
    w.running.stop().await.unwrap();
}

#[tokio::test]
async fn a_pull_request_merged_while_its_retry_waited_is_recorded_as_merged() {
    let w = world(fix_repo::TEST_COMMAND, "live").await;
    // The create's answer is lost, and GitHub stays unwell for a while.
    w.github.commit_then_fail_next_create();
    w.github.fail_next(fake_github::Endpoint::ListPulls, 3, 500, None);
    let now = Utc::now();
    let at = |m: i64| (now - Minutes::minutes(m)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(post_github(&w.base, "deployment_status", &deployed(&w.bad, &at(5))).await, 202);
    assert_eq!(alert(&w.base, &at(2)).await, 202);
    // Dana merges it meanwhile, and the webhook never reaches Sparky.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while w.github.pulls().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.github.close(1, true);
    let fix = fix_when(&w.base, |f| f["state"] != "pending").await;
    assert_eq!(fix["state"], "merged", "{fix:#}");
    let status = get(&w.base, "/api/v1/status").await;
    assert_eq!(status["fixes"]["acceptance"]["all"]["merged"], 1, "{:#}", status["fixes"]);
    // No "opened" note came first (Sparky never saw it open): the merge is the one comment.
    let issue = w.issue_with_comments(1).await;
    assert!(issue.comments.iter().any(|c| c.to_string().contains("#1 was merged")), "{:?}", issue.comments);
    assert_eq!(w.github.pulls().len(), 1);
    w.running.stop().await.unwrap();
}
