//! From a planned fix to a branch ready for review: a local clone of the service's
//! repository (kept under the configured clone folder and fetched again each time), the
//! branch `sparky/<incident-key>` from the default branch, the generator's change and its
//! pinned test, the repository's test command run on it (with a timeout), one commit, and a
//! push of the branch (Sparky's own: a retry replaces it, with a lease on what was fetched;
//! a branch someone else committed to is left alone — [`PrepareError::Taken`]). Then
//! [`body`] writes the pull request's description. Blocking (git); run it off the runtime.

use super::git::Git;
use super::{ChangeSet, FixError, FixRequest};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where and how the fix branch is made.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Clones live under it, one folder per repository.
    pub clone_dir: PathBuf,
    /// The remote: `https://github.com/acme/pricing.git`, or a path / `file://` URL in tests.
    pub remote: String,
    /// An HTTPS token for the remote (never on a command line, never logged).
    pub token: Option<String>,
    /// The branch the fix goes into.
    pub base: String,
    /// The repository's test command (`sparky.dev/test-command`), run on the fix branch.
    pub test_command: Option<String>,
    pub test_timeout: Duration,
    /// How long one git command (clone, fetch, push) may take.
    pub git_timeout: Duration,
    /// The commit's author: `Sparky <sparky@example.com>`.
    pub author_name: String,
    pub author_email: String,
}

/// The repository's tests as run on the fix branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestRun {
    pub command: String,
    pub passed: bool,
    /// `exit 0`, `exit 1`, `timed out after 600 s`.
    pub outcome: String,
    /// The last lines of its output.
    pub tail: String,
    pub seconds: u64,
}

/// A fix branch pushed and ready for its pull request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prepared {
    pub branch: String,
    pub commit: String,
    pub change: ChangeSet,
    /// `None` when the catalog gives the repository no test command.
    pub tests: Option<TestRun>,
}

/// `sparky/SPK-0123456789ab`.
pub fn branch_of(incident_key: &str) -> String {
    format!("sparky/{incident_key}")
}

/// The clone folder of `remote` under `root`: `github.com__acme__pricing`.
fn clone_path(root: &Path, remote: &str) -> PathBuf {
    let name: String = remote
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("__")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' { c } else { '_' })
        .collect();
    root.join(name.trim_start_matches('.'))
}

/// What the repository's test command sees of Sparky's environment: where programs and
/// toolchains are, the locale and a temporary folder — never Sparky's own variables, whose
/// tokens the tests' output would carry into the pull request.
pub const TEST_ENVIRONMENT: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "GOPATH",
    "GOCACHE",
    "JAVA_HOME",
    "VIRTUAL_ENV",
    "NODE_PATH",
];

/// Runs `command` with `sh -c` in `dir` (with only [`TEST_ENVIRONMENT`] and `CI=true`), at
/// most `timeout`, keeping the last 40 lines.
fn run_tests(dir: &Path, command: &str, timeout: Duration) -> TestRun {
    let started = Instant::now();
    let out_file = dir.join(".git").join("sparky-test-output");
    let file = std::fs::File::create(&out_file);
    let (stdout, stderr) = match file.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env_clear()
        .envs(TEST_ENVIRONMENT.iter().filter_map(|k| std::env::var_os(k).map(|v| (*k, v))))
        .env("CI", "true")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn();
    let (passed, outcome) = match child {
        Err(e) => (false, format!("could not start: {e}")),
        Ok(mut child) => loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    break (status.success(), status.code().map_or("killed".into(), |c| format!("exit {c}")));
                }
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break (false, format!("timed out after {} s", timeout.as_secs()));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break (false, format!("could not wait for it: {e}")),
            }
        },
    };
    let text = std::fs::read_to_string(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    TestRun { command: command.to_string(), passed, outcome, tail, seconds: started.elapsed().as_secs() }
}

/// Why no fix branch was pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// The generator would not make the change (at its bound, a conflict, nothing found):
    /// an answer, not a fault; the fix escalates with the reason.
    Refused(FixError),
    /// Git, the remote or the disk failed (unreachable, a timeout, a full disk): worth
    /// trying again (see [`super::git::is_permanent`]).
    Failed(FixError),
    /// The branch on the remote carries commits by someone else (`authors`) since Sparky
    /// pushed it: Sparky does not push over them. `head` is the branch's commit.
    Taken { head: String, authors: String },
}

impl std::fmt::Display for PrepareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrepareError::Refused(e) | PrepareError::Failed(e) => e.fmt(f),
            PrepareError::Taken { head, authors } => {
                write!(f, "the fix branch (at {head}) has commits by {authors}; Sparky leaves it as it is")
            }
        }
    }
}

/// Makes the fix branch for `request` and pushes it.
pub fn prepare(ws: &Workspace, request: &FixRequest) -> Result<Prepared, PrepareError> {
    use PrepareError::{Failed, Refused};
    std::fs::create_dir_all(&ws.clone_dir).map_err(|e| {
        Failed(FixError::new(format!("cannot create the clone folder {}: {e}", ws.clone_dir.display())))
    })?;
    let dir = clone_path(&ws.clone_dir, &ws.remote);
    let mut outer = Git::at(&ws.clone_dir);
    let mut git = Git::at(&dir);
    outer.timeout = ws.git_timeout;
    git.timeout = ws.git_timeout;
    if let Some(t) = &ws.token {
        outer = outer.with_token(t);
        git = git.with_token(t);
    }
    if dir.join(".git").exists() {
        git.run(&["remote", "set-url", "origin", &ws.remote]).map_err(Failed)?;
        git.run(&["fetch", "--prune", "--no-tags", "origin"]).map_err(Failed)?;
    } else {
        let target = dir.to_string_lossy().to_string();
        outer.run(&["clone", "--no-tags", &ws.remote, &target]).map_err(Failed)?;
    }
    let branch = branch_of(&request.incident_key);
    let base = format!("origin/{}", ws.base);
    if git.run(&["rev-parse", "--verify", "--quiet", &format!("{base}^{{commit}}")]).is_err() {
        return Err(Refused(FixError::new(format!("the repository has no branch `{}` to fix", ws.base))));
    }
    // The branch as the remote has it: Sparky's to replace, unless someone added to it.
    let pushed = format!("refs/remotes/origin/{branch}");
    let lease = match git.run(&["rev-parse", "--verify", "--quiet", &format!("{pushed}^{{commit}}")]) {
        Ok(head) => {
            let head = head.trim().to_string();
            let range = format!("{base}..{pushed}");
            let log = git.run(&["log", "--format=%ae%x09%an", &range]).map_err(Failed)?;
            let mut others: Vec<String> = log
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .filter(|(email, _)| !email.eq_ignore_ascii_case(&ws.author_email))
                .map(|(email, name)| format!("{name} <{email}>"))
                .collect();
            others.sort();
            others.dedup();
            if !others.is_empty() {
                return Err(PrepareError::Taken { head, authors: others.join(", ") });
            }
            head
        }
        Err(_) => String::new(),
    };
    git.run(&["checkout", "--force", "-B", &branch, &base]).map_err(Failed)?;
    git.run(&["reset", "--hard", &base]).map_err(Failed)?;
    git.run(&["clean", "-fdx", "--quiet"]).map_err(Failed)?;
    let change = super::generate(&dir, request).map_err(Refused)?;
    let tests = ws.test_command.as_ref().map(|c| run_tests(&dir, c, ws.test_timeout));
    git.run(&["add", "--all"]).map_err(Failed)?;
    let message = format!(
        "Sparky L2 Fix: {}\n\n{}\n\nTest: {}\nSparky-Incident: {}\n",
        change.title,
        change.description.join("\n\n"),
        change.test.run,
        request.incident_key
    );
    let author = format!("user.name={}", ws.author_name);
    let email = format!("user.email={}", ws.author_email);
    git.run_with(
        &["-c", &author, "-c", &email, "commit", "--quiet", "--no-verify", "-F", "-"],
        Some(message.as_bytes()),
    )
    .map_err(Failed)?;
    let commit = git.run(&["rev-parse", "HEAD"]).map_err(Failed)?.trim().to_string();
    // Replaces only the branch as fetched (none: it must not exist yet); someone pushing
    // in between makes this fail, and the retry sees their commits.
    let lease = format!("--force-with-lease=refs/heads/{branch}:{lease}");
    git.run(&["push", &lease, "--quiet", "origin", &format!("{branch}:refs/heads/{branch}")]).map_err(Failed)?;
    Ok(Prepared { branch, commit, change, tests })
}

/// The pull request's description: the root cause, the fix, the evidence, the tests added
/// and their result, and that Sparky never merges.
pub fn body(prepared: &Prepared, request: &FixRequest, root_cause: Option<&str>, evidence: &[String]) -> String {
    let mut out = String::new();
    let c = &prepared.change;
    out.push_str(&format!("Sparky opened this pull request for incident `{}`.\n\n", request.incident_key));
    out.push_str("## Root cause\n\n");
    out.push_str(root_cause.unwrap_or("The analysis names no root cause beyond the fix it proposes."));
    out.push_str(&format!(
        "\n\n## The fix\n\n{}\n\nGenerator `{}`, proposed at {:.0}% confidence (the playbook asks for {:.0}%).\n",
        c.description.iter().map(|d| format!("- {d}")).collect::<Vec<_>>().join("\n"),
        c.generator,
        request.fix.confidence,
        request.fix.threshold
    ));
    if !evidence.is_empty() {
        out.push_str("\n## Evidence\n\n");
        for e in evidence {
            out.push_str(&format!("- {e}\n"));
        }
    }
    out.push_str(&format!(
        "\n## Tests\n\nThe fix is pinned by `{}` ({}). Run it with:\n\n```sh\n{}\n```\n",
        c.test.path, c.test.framework, c.test.run
    ));
    match &prepared.tests {
        Some(t) => out.push_str(&format!(
            "\nThe repository's tests (`{}`) on this branch: **{}** ({}, {} s).\n\n<details><summary>Last lines</summary>\n\n```\n{}\n```\n</details>\n",
            t.command,
            if t.passed { "passed" } else { "FAILED" },
            t.outcome,
            t.seconds,
            t.tail.replace("```", "'''")
        )),
        None => out.push_str("\nThe catalog gives this repository no test command (`sparky.dev/test-command`), so Sparky did not run its tests: CI will.\n"),
    }
    out.push_str(&format!(
        "\n---\nBranch `{}`, commit `{}`. Sparky never merges: review, then merge or close; closing tells Sparky the fix was not accepted.\n",
        prepared.branch, prepared.commit
    ));
    out
}
