//! L2 end to end up to the pull request: a bare repository on disk as the remote, a real
//! clone, the `revert` generator, the repository's test command run on the branch, a real
//! push, and the pull request opened on a local fake GitHub — twice (a retry), giving one
//! branch and one pull request.

#[path = "support/fake_github.rs"]
mod fake_github;
#[path = "support/fix_repo.rs"]
mod fix_repo;

use fake_github::FakeGitHub;
use fix_repo::{TEST_COMMAND, remote};
use sparky::fix::FixRequest;
use sparky::fix::git::Git;
use sparky::fix::github::{GitHub, PullRequestSpec};
use sparky::fix::pr::{self, Workspace};
use sparky::triage::PlannedFix;
use std::path::Path;
use std::time::Duration;

fn request(commit: &str) -> FixRequest {
    FixRequest {
        incident_key: "SPK-0123456789ab".into(),
        service: Some("pricing".into()),
        fix: PlannedFix {
            generator: "revert".into(),
            confidence: 93.0,
            threshold: 90.0,
            summary: "revert the deploy of 3.1.1 to pricing".into(),
            args: Default::default(),
            proposal: [("commit".to_string(), serde_json::json!(commit))].into_iter().collect(),
        },
    }
}

fn workspace(root: &Path, remote: &str, test: &str) -> Workspace {
    Workspace {
        clone_dir: root.join("clones"),
        remote: remote.to_string(),
        token: None,
        base: "main".into(),
        test_command: Some(test.into()),
        test_timeout: Duration::from_secs(60),
        git_timeout: Duration::from_secs(60),
        author_name: "Sparky".into(),
        author_email: "sparky@example.com".into(),
    }
}

#[tokio::test]
async fn a_revert_is_pushed_and_opened_once_with_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, bad) = remote(dir.path());
    let ws = workspace(dir.path(), &bare, TEST_COMMAND);
    let req = request(&bad);
    let fake = FakeGitHub::start().await;
    let gh = GitHub::new(&fake.url, "gh-token", Duration::from_secs(5));
    for attempt in 0..2 {
        let (ws2, req2) = (ws.clone(), req.clone());
        let prepared = tokio::task::spawn_blocking(move || pr::prepare(&ws2, &req2)).await.unwrap().unwrap();
        assert_eq!(prepared.branch, "sparky/SPK-0123456789ab");
        let tests = prepared.tests.clone().unwrap();
        assert!(tests.passed && tests.tail.contains("12 passed"), "{tests:?}");
        // The branch is on the remote with one commit on top of main.
        let remote = Git::at(Path::new(&bare));
        let on_remote = remote.run(&["rev-parse", "refs/heads/sparky/SPK-0123456789ab"]).unwrap();
        assert_eq!(on_remote.trim(), prepared.commit);
        let message = remote.run(&["log", "-1", "--format=%B", &prepared.commit]).unwrap();
        assert!(
            message.starts_with("Sparky L2 Fix: revert ") && message.contains("Sparky-Incident: SPK-0123456789ab"),
            "{message}"
        );
        let count = remote.run(&["rev-list", "--count", "main..sparky/SPK-0123456789ab"]).unwrap();
        assert_eq!(count.trim(), "1");
        let body = pr::body(
            &prepared,
            &req,
            Some("The deploy of 3.1.1 divides by zero."),
            &["ZeroDivisionError since 10:02".into()],
        );
        assert!(
            body.contains("**passed**") && body.contains("divides by zero") && body.contains("python -m pytest"),
            "{body}"
        );
        let spec = PullRequestSpec {
            repo: "acme/pricing".into(),
            head: prepared.branch.clone(),
            base: "main".into(),
            title: format!("Sparky L2 Fix: {}", prepared.change.title),
            body,
            reviewers: vec!["dana".into()],
            labels: vec!["sparky".into()],
            team_reviewers: Vec::new(),
            draft: false,
        };
        let opened = gh.open_pull_request(&spec).await.unwrap();
        assert_eq!(opened.created, attempt == 0);
    }
    assert_eq!(fake.pulls().len(), 1);
}

#[tokio::test]
async fn failing_tests_are_reported_and_a_bad_remote_is_an_error_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, bad) = remote(dir.path());
    let ws = workspace(dir.path(), &bare, "echo 1 failed; exit 1");
    let prepared = pr::prepare(&ws, &request(&bad)).unwrap();
    let tests = prepared.tests.unwrap();
    assert!(!tests.passed && tests.outcome == "exit 1" && tests.tail.contains("1 failed"), "{tests:?}");
    let mut ws = workspace(dir.path(), "https://127.0.0.1:9/acme/none.git", "true");
    ws.clone_dir = dir.path().join("other");
    ws.token = Some("ghp_SECRET".into());
    // An unreachable remote is a failure worth retrying, not a refusal of the fix.
    let e = match pr::prepare(&ws, &request(&bad)).unwrap_err() {
        pr::PrepareError::Failed(e) => e,
        other => panic!("an unreachable remote is not a refusal: {other:?}"),
    };
    assert!(e.0.contains("git clone") && !e.0.contains("ghp_SECRET"), "{e}");
    // A commit that is not on the base branch is a refusal: the fix escalates.
    let ws = workspace(dir.path(), &bare, "true");
    match pr::prepare(&ws, &request("0123456789abcdef0123456789abcdef01234567")).unwrap_err() {
        pr::PrepareError::Refused(e) => assert!(e.0.contains("0123456789ab"), "{e}"),
        other => panic!("an unknown commit is refused: {other:?}"),
    }
}

#[tokio::test]
async fn the_tests_see_only_the_allowed_environment() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, bad) = remote(dir.path());
    // Under `cargo test` this process carries CARGO_* and more: none may reach the tests.
    assert!(std::env::vars().any(|(k, _)| !pr::TEST_ENVIRONMENT.contains(&k.as_str())));
    let ws = workspace(dir.path(), &bare, "env");
    let tests = pr::prepare(&ws, &request(&bad)).unwrap().tests.unwrap();
    assert!(tests.passed, "{tests:?}");
    let names: Vec<&str> = tests.tail.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k).collect();
    assert!(names.contains(&"CI") && names.contains(&"PATH"), "{names:?}");
    // What `sh` sets itself aside, only the allowed names.
    let shell = ["CI", "PWD", "OLDPWD", "SHLVL", "_"];
    let leaked: Vec<&&str> = names.iter().filter(|k| !pr::TEST_ENVIRONMENT.contains(k) && !shell.contains(k)).collect();
    assert!(leaked.is_empty(), "the tests saw {leaked:?}");
}

#[tokio::test]
async fn an_engineers_commit_on_the_fix_branch_is_never_pushed_over() {
    let dir = tempfile::tempdir().unwrap();
    let (bare, bad) = remote(dir.path());
    let ws = workspace(dir.path(), &bare, "true");
    let first = pr::prepare(&ws, &request(&bad)).unwrap();
    // The on-call engineer adds a commit to Sparky's branch.
    let theirs = dir.path().join("theirs");
    Git::at(dir.path()).run(&["clone", "--quiet", &bare, &theirs.to_string_lossy()]).unwrap();
    let git = Git::at(&theirs);
    git.run(&["checkout", "--quiet", &first.branch]).unwrap();
    std::fs::write(theirs.join("NOTES.md"), "reviewed; one more change\n").unwrap();
    git.run(&["add", "NOTES.md"]).unwrap();
    git.run(&["-c", "user.name=Dana", "-c", "user.email=dana@acme.example", "commit", "--quiet", "-m", "tweak"])
        .unwrap();
    git.run(&["push", "--quiet", "origin", &first.branch]).unwrap();
    let head = git.run(&["rev-parse", "HEAD"]).unwrap().trim().to_string();
    // A retry leaves the branch as it is and says whose commits it found.
    match pr::prepare(&ws, &request(&bad)).unwrap_err() {
        pr::PrepareError::Taken { head: at, authors } => {
            assert_eq!(at, head);
            assert_eq!(authors, "Dana <dana@acme.example>");
        }
        other => panic!("the branch has Dana's commit: {other:?}"),
    }
    let on_remote = Git::at(Path::new(&bare)).run(&["rev-parse", &format!("refs/heads/{}", first.branch)]).unwrap();
    assert_eq!(on_remote.trim(), head);
}
