//! `sparky explain`, `sparky replay` and `sparky test` as users run them: the real binary,
//! its output and exit status, on good and bad input.

use std::path::Path;
use std::process::{Command, Output};

fn sparky(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sparky")).args(args).env("NO_COLOR", "1").output().expect("the binary runs")
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const CRASH: &str = "playbooks/events/KubePodCrashLooping_prod_firing.json";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn explain_says_what_and_why_in_both_formats() {
    let o = sparky(&["explain", CRASH]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    // The shipped catalog (./catalog) knows checkout-api as stateless, but nothing is known of
    // the pod: PB-001 claims the alert and its safety guard refuses.
    assert!(text.contains("service: checkout-api (from label pod, in the catalog)"), "{text}");
    assert!(text.contains("decision: L3 by PB-001"), "{text}");
    assert!(text.contains("✓ when { kg::service(event.service).stateless }"), "{text}");
    assert!(text.contains("✗ when { kg::pod(event.labels.namespace, event.labels.pod)"), "{text}");
    assert!(text.contains("analysis (builtin): no evidence points to a cause"), "{text}");
    // Without a catalog, nothing is known of the service either.
    let empty = tempfile::tempdir().unwrap();
    let o = sparky(&["explain", CRASH, "--catalog", empty.path().to_str().unwrap()]);
    let text = out(&o);
    assert!(text.contains("service: checkout-api (from label pod, not in the catalog)"), "{text}");
    assert!(text.contains("✗ when { kg::service(event.service).stateless }"), "{text}");
    assert!(text.contains("PB-002     trigger mismatch"), "{text}");
    assert!(text.contains("ruleset "), "{text}");

    let o = sparky(&["explain", CRASH, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ruleset"].as_str().unwrap().len(), 32);
    let e = &v["events"][0];
    for key in ["id", "source", "kind", "status", "fingerprint", "service", "severity", "decision", "trace"] {
        assert!(e.get(key).is_some(), "missing {key}: {e}");
    }
    assert_eq!(e["decision"]["level"], "L3");
    assert_eq!(e["decision"]["playbook"], "PB-001");
    assert!(e["decision"]["reasons"].as_array().unwrap().len() >= 2);
    assert!(e["decision"]["actions"].as_array().unwrap().is_empty());
}

#[test]
fn explain_with_a_context_answers_what_if() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = write(
        dir.path(),
        "ctx.yaml",
        "now: 2026-03-10T08:20:00Z\nservices:\n  checkout-api: {stateless: true}\npods:\n  prod/checkout-api-6f8d9c7b5-x2x9q: {last_termination_reason: Error}\nruns:\n  PB-001:\n    - {ago: 1d, outcome: success, count: 25}\n",
    );
    let o = sparky(&["explain", CRASH, "--context", &ctx, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", out(&o)));
    let d = &v["events"][0]["decision"];
    assert_eq!(d["level"], "L1", "{d}");
    assert_eq!(d["mode"], "apply");
    assert_eq!(d["actions"][0]["action"], "k8s.delete_pod");
}

#[test]
fn explain_refuses_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![CRASH.into(), "--source".into(), "nagios".into()], "unknown source `nagios`; known sources:"),
        (vec!["no/such/file.json".into()], "cannot read no/such/file.json"),
        (vec![write(dir.path(), "bad.json", "{\"alerts\": [")], "not valid JSON"),
        (vec![write(dir.path(), "odd.json", "{\"hello\": 1}")], "cannot tell which source sent it; pass `--source`"),
        (
            vec![write(dir.path(), "shape.json", "{\"alerts\": [{\"labels\": {}}], \"version\": \"4\"}")],
            "not a valid Alertmanager payload: `alerts[0].status` is missing",
        ),
        (
            vec![CRASH.into(), "--context".into(), write(dir.path(), "ctx.yaml", "runz: {}\n")],
            "not a valid context: unknown field `runz`",
        ),
        (
            vec![CRASH.into(), "--playbooks".into(), write(dir.path(), "broken.sparky", "playbook {")],
            "the playbooks have 1 error; run `sparky check",
        ),
        (
            vec![
                CRASH.into(),
                "--catalog".into(),
                write(
                    dir.path(),
                    "catalog-info.yaml",
                    "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {}\n",
                ),
            ],
            "the catalog has 1 error; run `sparky check --catalog",
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["explain"];
        full.extend(args.iter().map(String::as_str));
        let o = sparky(&full);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(expected), "{args:?}: expected {expected:?} in {}", out(&o));
        assert!(!out(&o).contains("panicked"), "{}", out(&o));
    }
}

#[test]
fn replay_summarizes_levels_playbooks_and_automation() {
    let dir = tempfile::tempdir().unwrap();
    // A storm: the same crash loop three times, then its resolution, as JSON Lines.
    let firing: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(CRASH).unwrap()).unwrap();
    let resolved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("playbooks/events/KubePodCrashLooping_prod_resolved.json").unwrap(),
    )
    .unwrap();
    let lines = [&firing, &firing, &firing, &resolved].map(|v| v.to_string()).join("\n");
    let jsonl = write(dir.path(), "storm.jsonl", &lines);
    let o = sparky(&["replay", &jsonl]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("4 events replayed"), "{text}");
    assert!(text.contains("suppressed") && text.contains("2"), "{text}");
    assert!(text.contains("PB-001"), "{text}");
    assert!(text.contains("automation rate: 0.0% (0 of 1 events that needed action"), "{text}");

    let o = sparky(&["replay", &jsonl, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["events"], 4);
    assert_eq!(v["summary"]["by_level"]["suppressed"], 2);
    assert_eq!(v["summary"]["by_level"]["observe"], 1);
    assert_eq!(v["events"][3]["decision"]["incident"]["effect"], "close");

    let o = sparky(&["replay", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

#[test]
fn the_shipped_suites_pass() {
    let o = sparky(&["test", "playbooks/"]);
    let text = out(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with("passed, 0 failed"), "{last}");
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 20, "{last}");
}

#[test]
fn a_failing_case_fails_the_run_and_a_broken_suite_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(CRASH, dir.path().join("crash.json")).unwrap();
    let suite = |expect: &str| {
        format!(
            "playbooks: [{}]\ncases:\n  - name: the crash loop\n    steps:\n      - event: crash.json\n        expect: {{ {expect} }}\n",
            std::env::current_dir().unwrap().join("playbooks").display()
        )
    };
    write(dir.path(), "good.test.yaml", &suite("level: L3, playbook: PB-001, escalation: P2"));
    let o = sparky(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).trim_end().ends_with("1 passed, 0 failed"), "{}", out(&o));

    write(dir.path(), "bad.test.yaml", &suite("level: L1"));
    let o = sparky(&["test", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("FAIL  the crash loop") && text.contains("level: expected L1, got L3"), "{text}");
    assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");

    write(dir.path(), "typo.test.yaml", &suite("levle: L1"));
    let o = sparky(&["test", &dir.path().join("typo.test.yaml").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("unknown field `levle`"), "{}", out(&o));

    let empty = tempfile::tempdir().unwrap();
    let o = sparky(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(out(&o).contains("no test suites"), "{}", out(&o));
}

#[test]
fn explain_package_carries_the_context_an_engineer_needs() {
    let case = "tests/fixtures/triage/05-pb001-crashloop-after-deploy";
    let args = ["explain", &format!("{case}/events.json"), "--context", &format!("{case}/context.yaml"), "--package"];
    let o = sparky(&args);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    for needle in [
        "decision: L2 by PB-001",
        "analysis (builtin): likely cause: the deploy of v2.42.0 to checkout-api (92% confidence)",
        "- **Service** checkout-api (from label pod)",
        "owner: Checkout (checkout@acme.example, #team-checkout)",
        "on call: alice",
        "incident SPK-",
        "### Recent deploys (last 24 h)",
        "v2.42.0",
        "proposal `revert` at 92%",
        "### What Sparky did",
        "refused: PB-001: `when { !kg::deployed_within(event.service, \"30m\") }`",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let o = sparky(&json_args);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["events"][0]["package"];
    assert_eq!(p["service"]["name"], "checkout-api");
    assert_eq!(p["recent_deploys"][0]["commit"], "7d1e0fa");
    assert_eq!(p["analysis"]["proposals"][0]["generator"], "revert");
    assert_eq!(p["decision"]["level"], "L2");
}

#[test]
fn explain_package_of_an_escalation_shows_what_the_engineer_is_handed() {
    let case = "tests/fixtures/triage/02-no-playbook-critical-escalates-p1";
    let o = sparky(&["explain", &format!("{case}/events.json"), "--package"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    for needle in [
        "# P1 SPK-",
        "— etcdInsufficientMembers: etcd cluster has insufficient number of members.",
        "**Why Sparky escalated:** no playbook matched, and its severity `critical` is at or above the escalation threshold `high`",
        "### What Sparky did",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn explain_simulates_a_scheduled_run_at_a_given_time() {
    let o = sparky(&["explain", "--schedule", "PB-003", "--at", "2026-12-01T09:00:00Z"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    assert!(text.contains("decision: L1 by PB-003"), "{text}");
    assert!(text.contains("notify.token_owners"), "{text}");
    let o = sparky(&["explain", "--schedule", "PB-003", "--at", "2026-12-01T09:00:00Z", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["events"][0]["decision"]["decided_at"], "2026-12-01T09:00:00Z", "decided at the given time");
    assert_eq!(v["events"][0]["kind"], "schedule");
    let o = sparky(&["explain", "--schedule", "PB-001"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("PB-001 has no schedule"), "{}", out(&o));
    let o = sparky(&["explain", "--schedule", "PB-404"]);
    assert!(out(&o).contains("no playbook `PB-404` (loaded: PB-001"), "{}", out(&o));
}

#[test]
fn a_suite_can_run_on_a_catalog() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("catalog")).unwrap();
    write(
        &dir.path().join("catalog"),
        "catalog-info.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout-api\n  annotations: {sparky.dev/stateless: \"true\"}\nspec: {type: service, lifecycle: production, owner: group:team-checkout}\n",
    );
    let crash = std::fs::canonicalize(CRASH).unwrap();
    let playbooks = std::fs::canonicalize("playbooks").unwrap();
    let suite = format!(
        "playbooks: [\"{}\"]\ncatalog: [catalog]\ncontext:\n  now: 2026-03-10T08:20:00Z\n  pods: {{\"prod/checkout-api-6f8d9c7b5-x2x9q\": {{last_termination_reason: Error}}}}\n  runs: {{PB-001: [{{ago: 1d, outcome: success, count: 25}}]}}\ncases:\n  - name: the catalog says stateless, so the pod is restarted\n    steps:\n      - event: \"{}\"\n        expect: {{level: L1, playbook: PB-001}}\n",
        playbooks.display(),
        crash.display()
    );
    let path = write(dir.path(), "stateful.test.yaml", &suite);
    let o = sparky(&["test", &path]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("ok    the catalog says stateless, so the pod is restarted"), "{}", out(&o));
    // Without the catalog nothing says the service is stateless: the same case fails.
    let without = suite.replace("catalog: [catalog]\n", "");
    let path = write(dir.path(), "stateless.test.yaml", &without);
    let o = sparky(&["test", &path]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
}

/// A `pull_request` webhook (GitHub's own payload, closed) about branch `head`.
fn pull_closed(head: &str, merged: bool) -> String {
    let mut pr: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string("tests/fixtures/ingest/github/pull_request.opened.json").unwrap(),
    )
    .unwrap();
    pr["action"] = "closed".into();
    pr["pull_request"]["state"] = "closed".into();
    pr["pull_request"]["merged"] = merged.into();
    pr["pull_request"]["head"]["ref"] = head.into();
    pr.to_string()
}

#[test]
fn replay_reports_the_acceptance_of_l2_fixes_from_pull_request_answers() {
    let fixture = "tests/fixtures/triage/04-l2-analysis-meets-threshold";
    let (events, context, playbooks) =
        (format!("{fixture}/events.json"), format!("{fixture}/context.yaml"), format!("{fixture}/playbooks"));
    let args = |files: &[&str], json: bool| {
        let mut a = vec!["replay"];
        a.extend_from_slice(files);
        a.extend(["--context", &context, "--playbooks", &playbooks]);
        if json {
            a.extend(["--format", "json"]);
        }
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| sparky(&a.iter().map(String::as_str).collect::<Vec<_>>());
    // The fix's incident key, as the decision gives it.
    let o = run(args(&[&events], true));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let key = v["events"][0]["decision"]["incident"]["key"].as_str().unwrap().to_string();
    assert_eq!(v["summary"]["fixes"]["all"]["open"], 1, "{v}");
    assert_eq!(v["summary"]["fixes"]["all"]["acceptance_rate"], serde_json::Value::Null);

    let dir = tempfile::tempdir().unwrap();
    let merged = write(dir.path(), "b-merged.json", &pull_closed(&format!("sparky/{key}"), true));
    let stranger = write(dir.path(), "c-other.json", &pull_closed("sparky/SPK-000000000000", false));
    let feature = write(dir.path(), "d-feature.json", &pull_closed("feature/login", true));
    let o = run(args(&[&events, &merged, &stranger, &feature], true));
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fixes = &v["summary"]["fixes"];
    assert_eq!(fixes["all"]["merged"], 1, "{v}");
    assert_eq!(fixes["all"]["acceptance_rate"], 100.0);
    assert_eq!(fixes["by_generator"]["memory_limit"]["merged"], 1);
    assert_eq!(fixes["by_playbook"]["worker-oom"]["acceptance_rate"], 100.0);
    // Only Sparky's branches are answers; one whose incident the replay did not open is said.
    assert_eq!(v["summary"]["unmatched_answers"], 1);

    let o = run(args(&[&events, &merged, &stranger, &feature], false));
    let text = out(&o);
    assert!(text.contains("L2 fixes: 1 proposed; 1 of 1 answered merged (100.0%)"), "{text}");
    assert!(text.contains("memory_limit"), "{text}");
    assert!(text.contains("1 pull request answer on sparky/ branches matched no fix"), "{text}");
}
