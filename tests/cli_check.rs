//! `sparky check` as users run it: the real binary, its output and exit status.

use std::path::Path;
use std::process::{Command, Output};

fn sparky(args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sparky"));
    cmd.args(args).env("NO_COLOR", "1");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn shipped_playbooks_check_clean() {
    let o = sparky(&["check", "playbooks/", "--deny-warnings"], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("checked 4 files and 4 playbooks: 0 errors, 0 warnings"), "{}", stdout(&o));
}

#[test]
fn default_path_is_playbooks_in_the_working_directory() {
    let o = sparky(&["check"], None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let empty = tempfile::tempdir().unwrap();
    let o = sparky(&["check"], Some(empty.path()));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read `playbooks`"), "{}", stderr(&o));
    assert!(stderr(&o).contains("pass the path to your playbooks"), "{}", stderr(&o));
}

#[test]
fn json_report_has_the_documented_shape() {
    let o = sparky(&["check", "--format", "json", "tests/fixtures/check/errors/E101-unknown-action.sparky"], None);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["files"], 1);
    assert_eq!(v["playbooks"], 1);
    assert_eq!(v["errors"], 1);
    assert_eq!(v["warnings"], 0);
    let d = &v["diagnostics"][0];
    for key in ["code", "severity", "message", "file", "line", "column", "help"] {
        assert!(d.get(key).is_some(), "missing {key}");
    }
    assert_eq!(d["code"], "E101");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 10);
}

#[test]
fn errors_exit_1_and_warnings_only_with_deny_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let warn = dir.path().join("w.sparky");
    std::fs::write(
        &warn,
        "playbook W-1 \"undocumented\" {\n  status active\n  owner \"t\"\n  on alert from alertmanager { labels.alertname == \"X\" }\n  l3 priority P3\n}\n",
    )
    .unwrap();
    let w = warn.to_str().unwrap();
    let o = sparky(&["check", w], None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("W308"));
    let o = sparky(&["check", "--deny-warnings", w], None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn all_problems_in_all_files_are_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.sparky"),
        "playbook A-1 \"a\" {\n  status actve\n  owner \"t\"\n  on alert { labels.x == \"y\" }\n  l3 priority P7\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.sparky"),
        "playbook B-1 \"b\" {\n  owner \"t\"\n  on alert from alertmanger { labels.x == \"y\" }\n  l3 priority P2\n}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.sparky"), "playbook C-1 \"c\" {\n  owner \"t\"\n  on alert {\n").unwrap();
    let o = sparky(&["check", "--format", "json", dir.path().to_str().unwrap()], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    for code in ["E106", "E120", "E108", "E003"] {
        assert!(codes.contains(&code), "{code} missing from {codes:?}");
    }
    assert_eq!(v["files"], 3);
}

#[test]
fn explain_prints_the_code_page() {
    let o = sparky(&["check", "--explain", "E101"], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("# E101"), "{}", stdout(&o));
    let o = sparky(&["check", "--explain", "unknownaction"], None);
    assert!(stdout(&o).starts_with("# E101"));
    let o = sparky(&["check", "--explain", "E999"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`E999` is not a Sparky diagnostic code"));
}

#[test]
fn the_command_itself_failing_exits_2() {
    let o = sparky(&["check", "no/such/dir"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read `no/such/dir`: no such file or folder"), "{}", stderr(&o));
    let o = sparky(&["check", "--no-such-flag"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = sparky(&["check", "--format", "xml", "playbooks"], None);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn human_output_has_no_colour_off_a_terminal() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sparky"));
    let o = cmd
        .args(["check", "tests/fixtures/check/errors/E101-unknown-action.sparky"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains('\u{1b}'), "escape codes in piped output");
    assert!(stdout(&o).contains("did you mean `k8s.delete_pod`?"));
}

/// A playbook that checks with one warning (W308, no documentation), naming its file.
const UNDOCUMENTED: &str = "playbook W-1 \"undocumented\" {\n  status active\n  owner \"t\"\n  on alert from alertmanager { labels.alertname == \"X\" }\n  l3 priority P3\n}\n";

#[test]
fn a_folder_without_playbooks_is_an_error_but_a_named_file_is_read_whatever_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), UNDOCUMENTED).unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let o = sparky(&["check", dir.path().to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("no `.sparky` files in `"), "{}", stderr(&o));
    assert!(stderr(&o).contains("is this the folder with your playbooks?"), "{}", stderr(&o));

    let o = sparky(&["check", "--format", "json", dir.path().join("notes.txt").to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["playbooks"], 1);
}

#[test]
fn a_symlink_loop_does_not_stop_the_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.sparky"), UNDOCUMENTED).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
    let o = sparky(&["check", "--format", "json", dir.path().to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 1);
    assert_eq!(v["playbooks"], 1);
}

#[test]
fn a_file_reachable_twice_is_read_once_under_its_first_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.sparky"), UNDOCUMENTED).unwrap();
    // Both sorted after `a.sparky`: a symlink to it beside it, and one in a subfolder.
    std::os::unix::fs::symlink("a.sparky", dir.path().join("b.sparky")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("../a.sparky", dir.path().join("sub/c.sparky")).unwrap();
    let o = sparky(&["check", "--format", "json", dir.path().to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"], 1, "{v}");
    assert_eq!(v["playbooks"], 1, "{v}");
    let diagnostics = v["diagnostics"].as_array().unwrap();
    assert!(diagnostics.iter().all(|d| d["code"] != "E105"), "{v}");
    let file = diagnostics[0]["file"].as_str().unwrap();
    assert!(file.ends_with("a.sparky"), "{file}");
}

#[test]
fn the_catalog_is_checked_with_the_playbooks_and_counts_in_the_totals() {
    let o = sparky(&["check", "playbooks/", "--catalog", "tests/fixtures/catalog/E404-bad-annotation"], None);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("`sparky.dev/stateless` must be `\"true\"` or `\"false\"`, not `yes`"), "{out}");
    assert!(out.contains("E404-bad-annotation/catalog-info.yaml:6:28"), "{out}");
    // The catalog's line, then the totals of both.
    assert!(
        out.ends_with(
            "checked the catalog: 1 file, 2 entities (2 services, 0 dependencies)\nchecked 4 files and 4 playbooks: 4 errors, 0 warnings\n"
        ),
        "{out}"
    );
}

#[test]
fn catalog_warnings_fail_only_with_deny_warnings_and_show_in_json() {
    let args = ["check", "playbooks/", "--format", "json", "--catalog", "tests/fixtures/catalog/W311-dependency-cycle"];
    let o = sparky(&args, None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["files"], 4);
    assert_eq!(v["catalog"], serde_json::json!({"files": 1, "entities": 4, "services": 4, "dependencies": 4}));
    assert_eq!((v["errors"].clone(), v["warnings"].clone()), (0.into(), 1.into()));
    let d = &v["diagnostics"][0];
    assert_eq!(d["code"], "W311");
    assert_eq!(d["file"], "tests/fixtures/catalog/W311-dependency-cycle/catalog-info.yaml");
    assert_eq!(d["line"], 23);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["files", "playbooks", "catalog", "errors", "warnings", "diagnostics"]);
    let o = sparky(&[&args[..], &["--deny-warnings"]].concat(), None);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn catalog_is_repeatable_and_refs_resolve_across_paths() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b.yaml"));
    std::fs::create_dir(&a).unwrap();
    std::fs::write(
        a.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: web\nspec:\n  dependsOn: [api-server]\n",
    )
    .unwrap();
    std::fs::write(&b, "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: api-server\n").unwrap();
    let o = sparky(&["check", "playbooks/", "--catalog", a.to_str().unwrap(), "--catalog", b.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("checked the catalog: 2 files, 2 entities (2 services, 1 dependency)"),
        "{}",
        stdout(&o)
    );
    // Alone, the first part of the catalog refers to a service it does not hold.
    let o = sparky(&["check", "playbooks/", "--catalog", a.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("`web` depends on `api-server`, which is not in the catalog"), "{}", stdout(&o));
}

#[test]
fn the_catalog_folder_in_the_working_directory_is_checked_by_default() {
    // The shipped catalog, beside the shipped playbooks, is clean.
    let o = sparky(&["check", "--deny-warnings"], None);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("checked the catalog: 5 files,"), "{}", stdout(&o));

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/w.sparky"), UNDOCUMENTED).unwrap();
    let o = sparky(&["check"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(!stdout(&o).contains("catalog"), "no catalog folder, no catalog line: {}", stdout(&o));

    std::fs::create_dir(dir.path().join("catalog")).unwrap();
    std::fs::write(dir.path().join("catalog/broken.yaml"), "kind: [\n").unwrap();
    let o = sparky(&["check", "--format", "json"], Some(dir.path()));
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = v["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["W308", "E401"], "the playbooks' diagnostics first");
    assert_eq!(v["diagnostics"][1]["file"], "catalog/broken.yaml");
}

#[test]
fn an_unreadable_catalog_exits_2() {
    let o = sparky(&["check", "playbooks/", "--catalog", "no/such/catalog"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read `no/such/catalog`: no such file or folder"), "{}", stderr(&o));
}
