//! `patch`: apply the unified diff the remote analyzer proposes (`diff`), code and tests,
//! only when every path it touches matches the playbook's `allowed_paths` globs, it applies
//! cleanly (`git apply --check`), it changes no binary file, and it brings a test.

use super::git::Git;
use super::{ChangeSet, FixError, FixRequest, GeneratorSpec, PinnedTest};
use crate::actions::{ParamSpec, ParamType};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "patch",
    summary: "Apply the unified diff proposed by the analyzer, within allowed paths.",
    params: &[ParamSpec::new("allowed_paths", ParamType::StrList, "Globs the patch may touch.").literal()],
    generate,
};

/// The largest diff applied.
const MAX_DIFF: usize = 256 * 1024;

/// The paths a unified diff touches (old and new names).
pub fn paths(diff: &str) -> Result<Vec<String>, FixError> {
    let mut out = Vec::new();
    for line in diff.lines() {
        if line.starts_with("GIT binary patch") || line.starts_with("Binary files ") {
            return Err(FixError::new("the patch changes a binary file; only text changes are applied"));
        }
        let path = if let Some(rest) = line.strip_prefix("+++ ").or_else(|| line.strip_prefix("--- ")) {
            let p = rest.split('\t').next().unwrap_or(rest).trim();
            if p == "/dev/null" {
                continue;
            }
            p.strip_prefix("a/").or_else(|| p.strip_prefix("b/")).unwrap_or(p).to_string()
        } else if let Some(p) = line.strip_prefix("rename from ").or_else(|| line.strip_prefix("rename to ")) {
            p.to_string()
        } else {
            continue;
        };
        let bad =
            path.starts_with('/') || path.split('/').any(|part| part == ".." || part == ".git") || path.contains('\\');
        if bad {
            return Err(FixError::new(format!("the patch touches `{path}`, outside the repository's files")));
        }
        if !out.contains(&path) {
            out.push(path);
        }
    }
    if out.is_empty() {
        return Err(FixError::new("the proposed diff names no file: it is not a unified diff"));
    }
    Ok(out)
}

/// Whether `path` is a test: under a test folder, or named like one.
pub fn is_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/').any(|p| matches!(p, "tests" | "test" | "spec" | "__tests__"))
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
}

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let diff = request.proposed_str("diff").ok_or_else(|| FixError::new("the analyzer proposes no `diff`"))?;
    if diff.len() > MAX_DIFF {
        return Err(FixError::new(format!("the diff is {} bytes; at most {MAX_DIFF} are applied", diff.len())));
    }
    let globs: Vec<String> = match request.bound("allowed_paths") {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|g| g.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    if globs.is_empty() {
        return Err(FixError::new("the playbook's `l2` gives no `allowed_paths`: a patch may touch nothing"));
    }
    let mut set = globset::GlobSetBuilder::new();
    for g in &globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| FixError::new(format!("`allowed_paths`: `{g}` is not a glob: {e}")))?;
        set.add(glob);
    }
    let set = set.build().map_err(|e| FixError::new(e.to_string()))?;
    let touched = paths(diff)?;
    let outside: Vec<&String> = touched.iter().filter(|p| !set.is_match(p.as_str())).collect();
    if !outside.is_empty() {
        let outside: Vec<String> = outside.iter().map(|p| format!("`{p}`")).collect();
        return Err(FixError::new(format!(
            "the patch touches {} outside `allowed_paths` ({})",
            outside.join(", "),
            globs.join(", ")
        )));
    }
    let tests: Vec<&String> = touched.iter().filter(|p| is_test(p)).collect();
    if tests.is_empty() {
        return Err(FixError::new(
            "the patch brings no test: a fix for review comes with the test that shows it works",
        ));
    }
    let git = Git::at(repo);
    let mut data = diff.to_string();
    if !data.ends_with('\n') {
        data.push('\n');
    }
    git.run_with(&["apply", "--check", "--whitespace=nowarn", "-"], Some(data.as_bytes()))
        .map_err(|e| FixError::new(format!("the patch does not apply cleanly: {}", e.0)))?;
    git.run_with(&["apply", "--whitespace=nowarn", "-"], Some(data.as_bytes()))?;
    let files = git.changed_files()?;
    let run = if repo.join("Cargo.toml").exists() {
        "cargo test".to_string()
    } else if repo.join("pyproject.toml").exists() || repo.join("pytest.ini").exists() || repo.join("setup.py").exists()
    {
        let py: Vec<&str> = tests.iter().filter(|t| t.ends_with(".py")).map(|t| t.as_str()).collect();
        format!("python -m pytest {}", py.join(" ")).trim_end().to_string()
    } else if repo.join("go.mod").exists() {
        "go test ./...".to_string()
    } else if repo.join("package.json").exists() {
        "npm test".to_string()
    } else {
        "the repository's own test command".to_string()
    };
    let test = PinnedTest {
        path: tests.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", "),
        framework: "the repository's tests".into(),
        run,
    };
    let summary = request.fix.summary.trim();
    let title = if summary.is_empty() { "apply the analyzer's patch".to_string() } else { summary.to_string() };
    let description = vec![
        format!(
            "Applies the analyzer's patch to {}.",
            touched.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
        ),
        format!("Every path is within the playbook's `allowed_paths` ({}).", globs.join(", ")),
    ];
    Ok(ChangeSet { generator: "patch".into(), title, description, files, test })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_read_and_escapes_refused() {
        let diff = "diff --git a/src/app.py b/src/app.py\n--- a/src/app.py\n+++ b/src/app.py\n@@ -1 +1 @@\n-a\n+b\n--- /dev/null\n+++ b/tests/test_app.py\n@@ -0,0 +1 @@\n+x\n";
        assert_eq!(paths(diff).unwrap(), ["src/app.py", "tests/test_app.py"]);
        assert!(paths("--- a/../etc/passwd\n+++ b/../etc/passwd\n").is_err());
        assert!(paths("--- a/.git/config\n+++ b/.git/config\n").is_err());
        assert!(paths("GIT binary patch\n").is_err());
        assert!(paths("just words\n").is_err());
        assert!(is_test("tests/test_app.py") && is_test("src/app_test.go") && is_test("web/a.spec.ts"));
        assert!(!is_test("src/app.py"));
    }
}
