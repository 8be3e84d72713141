//! The git CLI on a checkout: what the generators and the pull-request work need. Every
//! command runs without a terminal prompt (`GIT_TERMINAL_PROMPT=0`), without the user's or
//! the system's git configuration, with a timeout, and its errors never show a credential
//! (`https://user:token@host` is written `https://***@host`).

use super::FixError;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A checkout (or the folder a clone goes to).
#[derive(Debug, Clone)]
pub struct Git {
    pub dir: PathBuf,
    pub timeout: Duration,
    /// Extra environment (credentials as `GIT_CONFIG_*`: never on the command line, so never
    /// in a process listing or an error).
    pub env: Vec<(String, String)>,
}

/// `https://user:secret@host/x` → `https://***@host/x`, anywhere in `text`.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace() || c == '/' || c == '\'' || c == '"').unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Whether a git failure will not get better by trying again: the remote repository does
/// not exist (or the token may not see it — GitHub answers "not found" to both). A refused
/// credential is retried (fixing the token brings the fix through) up to
/// `integrations.github.max_attempts`.
pub fn is_permanent(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["repository not found", "not found", "does not exist", "does not appear to be a git repository"]
        .iter()
        .any(|p| m.contains(p))
}

impl Git {
    pub fn at(dir: &Path) -> Git {
        Git { dir: dir.to_path_buf(), timeout: Duration::from_secs(120), env: Vec::new() }
    }

    /// With an HTTPS token for the remote: sent as a Basic `Authorization` header
    /// (`x-access-token:<token>`, what GitHub takes), through the environment.
    pub fn with_token(mut self, token: &str) -> Git {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        self.env.extend([
            ("GIT_CONFIG_COUNT".to_string(), "1".to_string()),
            ("GIT_CONFIG_KEY_0".to_string(), "http.extraHeader".to_string()),
            ("GIT_CONFIG_VALUE_0".to_string(), format!("Authorization: Basic {basic}")),
        ]);
        self
    }

    /// Runs `git <args>` in the checkout; its standard output, or an error naming the
    /// command and git's last words.
    pub fn run(&self, args: &[&str]) -> Result<String, FixError> {
        self.run_with(args, None)
    }

    /// [`run`](Self::run) with `input` on its standard input.
    pub fn run_with(&self, args: &[&str], input: Option<&[u8]>) -> Result<String, FixError> {
        let shown = redact(&args.join(" "));
        let mut child = Command::new("git")
            .args(["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("LC_ALL", "C")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| FixError::new(format!("cannot run git ({e}): is it installed?")))?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            use std::io::Write;
            let _ = stdin.write_all(data);
        }
        // Read both pipes while waiting, so that a large output cannot block git.
        let mut out_pipe = child.stdout.take();
        let mut err_pipe = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(p) = out_pipe.as_mut() {
                let _ = p.read_to_end(&mut s);
            }
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(p) = err_pipe.as_mut() {
                let _ = p.read_to_end(&mut s);
            }
            s
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(FixError::new(format!(
                        "`git {shown}` did not finish within {} s and was stopped",
                        self.timeout.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(FixError::new(format!("`git {shown}`: {e}"))),
            }
        };
        let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        if status.success() {
            return Ok(stdout);
        }
        let said: Vec<&str> = stderr.lines().chain(stdout.lines()).filter(|l| !l.trim().is_empty()).collect();
        let last = said[said.len().saturating_sub(4)..].join(" / ");
        Err(FixError::new(format!("`git {shown}` failed: {}", redact(&last))))
    }

    /// The files changed, added or removed in the working tree (untracked included),
    /// relative, sorted.
    pub fn changed_files(&self) -> Result<Vec<String>, FixError> {
        let out = self.run(&["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
        let mut files = Vec::new();
        let mut parts = out.split('\0').filter(|p| !p.is_empty());
        while let Some(entry) = parts.next() {
            if entry.len() < 4 {
                continue;
            }
            let (code, path) = entry.split_at(3);
            files.push(path.to_string());
            // A rename names the old path next.
            if code.starts_with('R') || code.starts_with('C') {
                parts.next();
            }
        }
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// The diff of the working tree against `HEAD`, new files included.
    pub fn diff(&self) -> Result<String, FixError> {
        self.run(&["add", "--intent-to-add", "--all"])?;
        self.run(&["diff", "HEAD", "--no-color", "--no-ext-diff"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact("fatal: unable to access 'https://x-access-token:ghp_SECRET@github.com/acme/api.git/': 403"),
            "fatal: unable to access 'https://***@github.com/acme/api.git/': 403"
        );
        assert_eq!(redact("https://github.com/acme/api"), "https://github.com/acme/api");
    }

    #[test]
    fn a_failing_command_says_what_git_said() {
        let dir = tempfile::tempdir().unwrap();
        let git = Git::at(dir.path());
        git.run(&["init", "-q", "-b", "main"]).unwrap();
        let e = git.run(&["checkout", "no-such-branch"]).unwrap_err();
        assert!(e.0.contains("git checkout no-such-branch") && e.0.contains("no-such-branch"), "{e}");
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        git.run(&["add", "a.txt"]).unwrap();
        git.run(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "a"]).unwrap();
        std::fs::write(dir.path().join("b.txt"), "b\n").unwrap();
        std::fs::write(dir.path().join("a.txt"), "a2\n").unwrap();
        assert_eq!(git.changed_files().unwrap(), ["a.txt", "b.txt"]);
        let diff = git.diff().unwrap();
        assert!(diff.contains("+a2") && diff.contains("+b"), "{diff}");
    }
}
