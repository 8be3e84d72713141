//! The L2 fix generators over fixture repositories (`tests/fixtures/fix/<case>/`): `repo/`
//! is committed to a fresh git repository, `history.patch` (when there is one) is committed
//! on top as the change a revert undoes (`commit: HEAD` in the request names it), and
//! `request.yaml` is the planned fix. Each case's change set and `git diff` — or the refusal
//! — are an insta snapshot; a pinned check script is run, and must pass on the fix and fail
//! once the fix is undone.

use serde::Deserialize;
use sparky::fix::{self, FixRequest, git::Git};
use sparky::triage::PlannedFix;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct Request {
    generator: String,
    service: Option<String>,
    #[serde(default)]
    args: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    proposal: BTreeMap<String, serde_json::Value>,
    summary: String,
}

fn copy(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn commit(git: &Git, message: &str) {
    git.run(&["add", "--all"]).unwrap();
    git.run(&["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qm", message]).unwrap();
}

fn run_case(case: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    copy(&case.join("repo"), dir.path());
    let git = Git::at(dir.path());
    git.run(&["init", "-q", "-b", "main"]).unwrap();
    commit(&git, "the service as it was");
    let request: Request = serde_yaml::from_str(&std::fs::read_to_string(case.join("request.yaml")).unwrap()).unwrap();
    let mut proposal = request.proposal.clone();
    if case.join("history.patch").exists() {
        let patch = std::fs::read(case.join("history.patch")).unwrap();
        git.run_with(&["apply", "-"], Some(&patch)).unwrap();
        commit(&git, "make big orders cheaper");
        if proposal.get("commit").and_then(|c| c.as_str()) == Some("HEAD") {
            let head = git.run(&["rev-parse", "HEAD"]).unwrap();
            proposal.insert("commit".into(), serde_json::json!(head.trim()));
        }
    }
    let head = git.run(&["rev-parse", "HEAD"]).unwrap().trim().to_string();
    let req = FixRequest {
        incident_key: "SPK-0123456789ab".into(),
        service: request.service.clone(),
        fix: PlannedFix {
            generator: request.generator.clone(),
            confidence: 95.0,
            threshold: 90.0,
            summary: request.summary.clone(),
            args: request.args.clone(),
            proposal,
        },
    };
    let out = match fix::generate(dir.path(), &req) {
        Err(e) => {
            let changed = git.changed_files().unwrap();
            assert!(changed.is_empty(), "a refused fix leaves the checkout as it was: {changed:?}");
            format!("refused: {e}\n")
        }
        Ok(change) => {
            let mut text = serde_yaml::to_string(&change).unwrap();
            let diff = git.diff().unwrap();
            text.push_str("---\n");
            // Blob ids follow the content, which names the commit: left out.
            for line in diff.lines().filter(|l| !l.starts_with("index ")) {
                text.push_str(line);
                text.push('\n');
            }
            // The pinned test is run as the repository's CI would: the check script with `sh`,
            // a pytest file's test functions with Python (pytest itself need not be here).
            let python = format!(
                "import runpy\ng = runpy.run_path({:?})\nfor n, f in g.items():\n    if n.startswith('test_'):\n        f()\n",
                change.test.path
            );
            let runner = match change.test.framework.as_str() {
                "sh" => Some(("sh", vec![change.test.path.clone()])),
                "pytest" if std::process::Command::new("python3").arg("--version").output().is_ok() => {
                    Some(("python3", vec!["-c".to_string(), python]))
                }
                _ => None,
            };
            if let Some((program, args)) = runner {
                let run = || std::process::Command::new(program).args(&args).current_dir(dir.path()).output().unwrap();
                let ok = run();
                assert!(
                    ok.status.success(),
                    "the pinned check fails on the fix: {}{}",
                    String::from_utf8_lossy(&ok.stdout),
                    String::from_utf8_lossy(&ok.stderr)
                );
                // Undo the fix (keep the check): the check must fail.
                let fixed: Vec<String> = change.files.iter().filter(|f| **f != change.test.path).cloned().collect();
                let mut args = vec!["checkout".to_string(), "HEAD".to_string(), "--".to_string()];
                args.extend(fixed);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                git.run(&args).unwrap();
                assert!(!run().status.success(), "the pinned check passes without the fix");
            }
            text
        }
    };
    // Commit ids change with the time of the run: the head commit reads `<head>`.
    out.replace(&head, "<head>").replace(&head[..12], "<head>").replace(&head[..7], "<head>")
}

#[test]
fn fix_generators() {
    let root = Path::new("tests/fixtures/fix");
    let mut cases: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("request.yaml").exists())
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "fixture cases are missing");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let text = run_case(&case);
        insta::with_settings!({ snapshot_path => "fixtures/fix/snapshots", prepend_module_to_snapshot => false, input_file => &case }, {
            insta::assert_snapshot!(name, text);
        });
    }
}
