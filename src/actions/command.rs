//! `command`: run one allowed program with arguments, never through a shell.
//!
//! Off unless `integrations.command.enabled`; then only an argv that starts with one of the
//! `integrations.command.allow` prefixes (element by element) runs. The program is an
//! absolute path; it runs with no stdin, in `/`, with an environment reduced to `PATH`,
//! `HOME`, `LANG` and `TZ` (the daemon's own secrets stay in the daemon), and is killed when
//! its timeout passes or the run is abandoned. A non-zero exit fails with its code and the end
//! of its stderr. The program must be safe to run twice: a timeout is retried.

use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_str,
};
use serde_json::json;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NAME: &str = "command";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout` a playbook may set.
const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Bytes of stdout and stderr kept (the end of each).
const KEEP: usize = 4096;
/// Lines of stderr quoted in an error.
const ERR_LINES: usize = 10;
const ENV_KEPT: &[&str] = &["PATH", "HOME", "LANG", "TZ"];

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Run one program allowed by `integrations.command.allow`, with arguments, never through a shell.",
    mutating: true,
    idempotent: false,
    blast_radius: Radius { count: RadiusCount::Fixed(1), doc: "1: one run of the program" },
    params: &[
        ParamSpec::new(
            "argv",
            ParamType::StrList,
            "The program (an absolute path) and its arguments, written in the playbook, e.g. \
             `[\"/usr/local/bin/purge-cdn\", \"--zone\", \"eu-west\"]`; it must start with one of the prefixes in \
             `integrations.command.allow`.",
        )
        .literal(),
        ParamSpec::new(
            "timeout",
            ParamType::Duration,
            "How long it may run before it is killed, at most `10m`; `integrations.command.timeout` (else `30s`) \
             when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &["command(argv = [\"/usr/local/bin/purge-cdn\", \"--zone\", \"eu-west\"], timeout = 1m)"],
    integration: "command",
    plan,
    apply,
};

fn argv(args: &Args) -> Result<Vec<String>, PlanError> {
    let Some(v) = args.get("argv") else { return Err(PlanError(format!("{NAME}: `argv` is missing"))) };
    let Some(items) = v.as_array() else { return Err(PlanError(format!("{NAME}: `argv` is not a list of strings"))) };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(s) = item.as_str() else {
            return Err(PlanError(format!("{NAME}: `argv` holds `{item}`, which is not a string")));
        };
        if s.contains('\0') {
            return Err(PlanError(format!("{NAME}: an argument of `argv` holds a NUL byte")));
        }
        out.push(s.to_string());
    }
    match out.first() {
        None => Err(PlanError(format!("{NAME}: `argv` is empty, so there is nothing to run"))),
        Some(p) if !p.starts_with('/') => Err(PlanError(format!(
            "{NAME}: the program `{p}` is not an absolute path; write it in full, e.g. `/usr/bin/{p}`"
        ))),
        Some(_) => Ok(out),
    }
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let argv = argv(args)?;
    let mut normalized = Args::from([("argv".to_string(), json!(argv))]);
    let timeout = match args.get("timeout") {
        None => None,
        Some(v) => {
            let ms = v.as_str().and_then(crate::dsl::parse_duration).filter(|ms| (1000..=MAX_TIMEOUT_MS).contains(ms));
            let Some(ms) = ms else {
                return Err(PlanError(format!("{NAME}: `timeout` is `{v}`; it must be a duration from 1s to 10m")));
            };
            normalized.insert("timeout".into(), v.clone());
            Some(format!("{}s", ms as f64 / 1000.0))
        }
    };
    let program = &argv[0];
    let shown: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    Ok(Plan {
        action: NAME.into(),
        target: format!("command:{program}"),
        steps: vec![
            format!("check that `integrations.command` is enabled and allows [{}]", shown.join(", ")),
            format!(
                "run `{program}` with {} argument(s), no shell and no stdin, killed after {}",
                argv.len() - 1,
                timeout.unwrap_or_else(|| "the configured timeout (30s by default)".into())
            ),
            "succeed when it exits 0; otherwise escalate with its exit code and the end of its stderr".into(),
        ],
        args: normalized,
        integration: "command".into(),
        mutating: true,
    })
}

/// Kills the child when dropped before it was reaped: on a timeout, and when the run is
/// abandoned (the executor's own deadline drops the future).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Reads a pipe to its end on a thread, keeping the last `KEEP` bytes.
fn drain(pipe: Option<impl Read + Send + 'static>) -> tokio::sync::oneshot::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut cut = false;
        if let Some(mut pipe) = pipe {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > KEEP {
                    kept.drain(..kept.len() - KEEP);
                    cut = true;
                }
            }
        }
        let _ = tx.send((kept, cut));
    });
    rx
}

async fn collected(rx: tokio::sync::oneshot::Receiver<(Vec<u8>, bool)>) -> String {
    // A grandchild that kept the pipe open must not hold the answer.
    match tokio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok((bytes, cut))) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if cut { format!("[…]{text}") } else { text }
        }
        _ => String::new(),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let cfg = &clients.config.command;
        let argv = argv(&plan.args).map_err(|e| ApplyError::Failed(e.0))?;
        if !cfg.enabled {
            return Err(ApplyError::Failed(format!(
                "{NAME}: commands are off; set `integrations.command.enabled: true` and list the program in \
                 `integrations.command.allow`"
            )));
        }
        let allowed = cfg.allow.iter().any(|prefix| !prefix.is_empty() && argv.starts_with(prefix));
        if !allowed {
            return Err(ApplyError::Refused(format!(
                "{NAME}: {:?} does not start with any prefix in `integrations.command.allow`; not run",
                argv
            )));
        }
        let timeout = match arg_str(&plan.args, "timeout") {
            Some(t) => Duration::from_millis(crate::dsl::parse_duration(t).unwrap_or(0).clamp(1000, MAX_TIMEOUT_MS)),
            None => cfg
                .timeout
                .as_deref()
                .and_then(crate::dsl::parse_duration)
                .map_or(DEFAULT_TIMEOUT, Duration::from_millis),
        };
        let program = &argv[0];
        let mut cmd = Command::new(program);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .current_dir("/")
            .env_clear();
        for key in ENV_KEPT {
            if let Some(v) = std::env::var_os(key) {
                cmd.env(key, v);
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist".to_string(),
                std::io::ErrorKind::PermissionDenied => "is not executable by sparky".to_string(),
                _ => format!("cannot be started: {e}"),
            };
            ApplyError::Failed(format!("{NAME}: `{program}` {why}"))
        })?;
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let mut guard = KillOnDrop(Some(child));
        let started = Instant::now();
        // std's wait() blocks: poll instead, so the timeout and an abandoned run both kill.
        let status = loop {
            let polled = match guard.0.as_mut() {
                Some(c) => c.try_wait(),
                None => return Err(ApplyError::Failed(format!("{NAME}: `{program}` was lost"))),
            };
            match polled {
                Ok(Some(status)) => {
                    guard.0 = None;
                    break status;
                }
                Ok(None) => {}
                Err(e) => return Err(ApplyError::Failed(format!("{NAME}: cannot wait for `{program}`: {e}"))),
            }
            if started.elapsed() >= timeout {
                drop(guard);
                let stderr = last_lines(&collected(err).await, ERR_LINES);
                return Err(ApplyError::Transient(format!(
                    "{NAME}: `{program}` ran longer than {}s and was killed; stderr: {stderr:?}",
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stdout = collected(out).await;
        let stderr = collected(err).await;
        match status.code() {
            Some(0) => Ok(Applied {
                summary: format!("ran `{program}`: exit 0"),
                details: json!({ "argv": argv, "exit_code": 0, "elapsed_ms": elapsed_ms,
                                 "stdout": stdout, "stderr": stderr }),
            }),
            Some(code) => Err(ApplyError::Failed(format!(
                "{NAME}: `{program}` exited with code {code}; stderr: {:?}",
                last_lines(&stderr, ERR_LINES)
            ))),
            None => Err(ApplyError::Failed(format!(
                "{NAME}: `{program}` was killed by a signal ({status}); stderr: {:?}",
                last_lines(&stderr, ERR_LINES)
            ))),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_relative_or_malformed_argv_is_refused() {
        for bad in [json!([]), json!(["echo", "hi"]), json!("/bin/echo"), json!(["/bin/echo", 3]), json!([""])] {
            assert!(plan(&Args::from([("argv".to_string(), bad.clone())])).is_err(), "{bad}");
        }
        assert!(plan(&Args::new()).is_err());
    }

    #[test]
    fn an_absolute_program_is_planned_with_its_timeout() {
        let p =
            plan(&Args::from([("argv".to_string(), json!(["/bin/echo", "hi"])), ("timeout".to_string(), json!("5s"))]))
                .unwrap();
        assert_eq!(p.target, "command:/bin/echo");
        assert_eq!(arg_str(&p.args, "timeout"), Some("5s"));
        assert!(p.steps[1].contains("killed after 5s"), "{:?}", p.steps);
        for bad in ["0s", "11m", "soon"] {
            let a = Args::from([("argv".to_string(), json!(["/bin/echo"])), ("timeout".to_string(), json!(bad))]);
            assert!(plan(&a).is_err(), "{bad}");
        }
    }

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("", 2), "");
    }
}
