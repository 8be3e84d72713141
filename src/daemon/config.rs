//! `sparky.yaml`: what `sparky serve` runs with. Every key is optional; the embedded defaults
//! are the zero-configuration daemon (SQLite in the working folder, `./playbooks`, dry-run,
//! 127.0.0.1:8080, every built-in source without authentication, loopback only).
//!
//! Secrets are written `${NAME}` and read from the environment at start. A config that does
//! not read fails at start, naming the file, the line and the key.

use crate::event::Severity;
use crate::ingest::auth::Auth;
use crate::ingest::generic::Mapping;
use crate::triage::Settings;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Playbook files or folders, watched for changes.
    pub playbooks: Vec<PathBuf>,
    /// Service catalog files or folders (Backstage `catalog-info.yaml`), watched and reloaded
    /// with the playbooks. `./catalog` by default, when it exists.
    pub catalog: Option<Vec<PathBuf>>,
    pub knowledge: KnowledgeConfig,
    pub analysis: AnalysisConfig,
    /// The store: `sqlite://FILE` (the default, `sqlite://sparky.db`), or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` for one database shared by several replicas.
    pub store: String,
    /// This replica's name among those on one PostgreSQL store (the status API shows each
    /// replica's ruleset). By default the host name (a pod's name): it must differ between
    /// replicas, and stay the same across a restart of one.
    pub replica: Option<String>,
    /// Webhook sources by the name in their URL (`POST /webhooks/<name>`). When the key is
    /// absent, every built-in source is enabled without authentication.
    pub sources: Option<BTreeMap<String, SourceConfig>>,
    /// Bearer token for the admin endpoints (`POST /-/reload`, anything that changes state).
    /// Without one, the admin endpoints answer 403.
    pub admin_token: Option<String>,
    /// Largest webhook body accepted, e.g. `1MiB`, `512KiB`.
    pub max_body: ByteSize,
    pub triage: TriageConfig,
    pub integrations: IntegrationsConfig,
    /// The engine: approvals, budgets, the circuit breaker, freeze windows.
    pub engine: crate::engine::EngineConfig,
    /// L3 delivery: the Slack channel, waiting for the Jira link, repeats, retry backoff.
    pub escalation: crate::escalate::delivery::EscalationConfig,
    /// Schedules of proactive playbooks: how late a missed run may still run.
    pub scheduler: super::scheduler::SchedulerConfig,
    /// Token inventory sources beyond the catalog (PB-003).
    pub tokens: super::tokens::TokensConfig,
    pub log: LogConfig,
    /// How long to wait after the last change in a watched folder before reloading (ms).
    pub reload_debounce_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            playbooks: vec![PathBuf::from("playbooks")],
            catalog: None,
            knowledge: KnowledgeConfig::default(),
            analysis: AnalysisConfig::default(),
            store: "sqlite://sparky.db".into(),
            replica: None,
            sources: None,
            admin_token: None,
            max_body: ByteSize(1024 * 1024),
            triage: TriageConfig::default(),
            integrations: IntegrationsConfig::default(),
            engine: crate::engine::EngineConfig::default(),
            escalation: crate::escalate::delivery::EscalationConfig::default(),
            scheduler: super::scheduler::SchedulerConfig::default(),
            tokens: super::tokens::TokensConfig::default(),
            log: LogConfig::default(),
            reload_debounce_ms: 300,
        }
    }
}

/// One webhook source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The normalizer: a built-in source (`alertmanager`, `grafana`, ...) or `generic`.
    /// Defaults to the source's name.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// How senders prove who they are; none is accepted only on a loopback address.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// For `type: generic`: where each event field is in the sender's JSON.
    #[serde(default)]
    pub mapping: Option<Mapping>,
}

/// Decision settings (see docs/triage.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriageConfig {
    pub escalate_at: Severity,
    /// Escalate events no playbook handles at or above `escalate_at` (on by default).
    pub escalate_unmatched: bool,
    pub l2_min_confidence: f64,
    pub analysis: bool,
    /// A firing event whose fingerprint was decided less than this long ago, with no
    /// incident open (an `observe`), is attached to that decision instead of being triaged
    /// again (`5m`; `0s` turns grouping off). A firing after a resolution is never grouped.
    pub group_window: String,
    /// When a fingerprint flaps: `window` (`1h`), `start` (5 state changes), `stop` (2).
    pub flapping: crate::triage::lifecycle::Flapping,
}

impl Default for TriageConfig {
    fn default() -> Self {
        let s = Settings::default();
        TriageConfig {
            escalate_at: s.escalate_at,
            escalate_unmatched: s.escalate_unmatched,
            l2_min_confidence: s.l2_min_confidence,
            analysis: s.analysis,
            group_window: s.group_window.to_string(),
            flapping: s.flapping,
        }
    }
}

impl TriageConfig {
    pub fn settings(&self) -> Settings {
        Settings {
            escalate_at: self.escalate_at,
            escalate_unmatched: self.escalate_unmatched,
            l2_min_confidence: self.l2_min_confidence,
            analysis: self.analysis,
            group_window: crate::triage::Span { millis: self.group_window_ms() },
            flapping: self.flapping,
        }
    }

    /// The grouping window in milliseconds.
    pub fn group_window_ms(&self) -> u64 {
        crate::dsl::parse_duration(&self.group_window).unwrap_or(0)
    }
}

/// How much dynamic knowledge a decision gathers from the store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KnowledgeConfig {
    /// Deploys this recent are read for every batch (`kg::deployed_within`, the analyzer).
    pub deploy_window: String,
    /// Past incidents this recent are read for the batch's fingerprints (`kg::history`).
    pub history_window: String,
    /// Past incidents read per fingerprint, newest first.
    pub history_limit: usize,
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        KnowledgeConfig { deploy_window: "7d".into(), history_window: "90d".into(), history_limit: 50 }
    }
}

/// Which analyzer answers when a decision needs an analysis.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    pub analyzer: AnalyzerKind,
    /// For `analyzer: remote`: the OpenAI-compatible endpoint.
    pub remote: Option<crate::analysis::remote::RemoteConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalyzerKind {
    /// The built-in, deterministic rules.
    #[default]
    Builtin,
    /// A model behind an OpenAI-compatible chat-completions endpoint, the built-in rules as
    /// its fallback.
    Remote,
}

/// Integrations (Kubernetes, Redis, HTTP, Slack, commands, Jira, PagerDuty, GitHub):
/// the global mode and each integration's own settings (and mode, which overrides it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// `dry-run` (the default: plans are guarded and audited, nothing is applied) or `live`.
    pub mode: Mode,
    pub kubernetes: crate::actions::clients::KubernetesConfig,
    pub redis: crate::actions::clients::RedisConfig,
    pub http: crate::actions::clients::HttpConfig,
    pub slack: crate::actions::clients::SlackConfig,
    pub command: crate::actions::clients::CommandConfig,
    /// Where escalations file issues (L3).
    pub jira: crate::escalate::jira::JiraConfig,
    /// Where escalations page (L3).
    pub pagerduty: crate::escalate::pagerduty::PagerDutyConfig,
    /// Where L2 fixes are pushed and opened as pull requests.
    pub github: crate::fix::github::GitHubConfig,
}

impl IntegrationsConfig {
    /// What the actions' clients are built from.
    pub fn actions(&self) -> ActionsConfig {
        ActionsConfig {
            kubernetes: self.kubernetes.clone(),
            redis: self.redis.clone(),
            http: self.http.clone(),
            slack: self.slack.clone(),
            command: self.command.clone(),
        }
    }
}

pub use crate::actions::Mode as IntegrationMode;
use crate::actions::{ActionsConfig, Mode};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `sparky=debug,tower_http=info`); `RUST_LOG` overrides it.
    pub level: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// A size in bytes, written `1048576`, `512KiB`, `1MiB`, `1MB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::N(n) => return Ok(ByteSize(n as usize)),
            Raw::S(s) => s,
        };
        parse_size(&text).map(ByteSize).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{text}` is not a size; write e.g. `1MiB`, `512KiB` or a number of bytes"
            ))
        })
    }
}

fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: usize = t[..split].parse().ok()?;
    let factor = match t[split..].trim() {
        "" | "B" => 1,
        "KiB" => 1024,
        "KB" | "kB" => 1000,
        "MiB" => 1024 * 1024,
        "MB" => 1_000_000,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// A configuration that did not load. The message names the file, the line and the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The catalog paths: the configured ones, or `./catalog` when that folder exists.
    pub fn catalog_paths(&self) -> Vec<PathBuf> {
        crate::knowledge::catalog::paths_or_default(self.catalog.as_deref())
    }

    fn window_ms(text: &str) -> u64 {
        crate::dsl::parse_duration(text).unwrap_or(0)
    }

    /// `knowledge.deploy_window` and `knowledge.history_window`, in milliseconds.
    pub fn knowledge_windows_ms(&self) -> (u64, u64) {
        (Self::window_ms(&self.knowledge.deploy_window), Self::window_ms(&self.knowledge.history_window))
    }

    /// Reads `path`, with `${NAME}` taken from `env`.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read the configuration `{}`: {e}", path.display())))?;
        Config::parse(&text, &path.display().to_string(), env)
    }

    /// Parses configuration text; `name` is used in messages.
    pub fn parse(text: &str, name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let at = |line: usize, col: usize| format!("{name}:{line}:{col}");
        let mut missing = Vec::new();
        let substituted = interpolate(text, env, &mut missing);
        if let Some((var, line, col)) = missing.first() {
            return Err(ConfigError(format!(
                "{}: the environment variable `{var}` is not set; set it, or write the value in the file",
                at(*line, *col)
            )));
        }
        if substituted.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_yaml::from_str(&substituted).map_err(|e| {
            let place = e.location().map(|l| at(l.line(), l.column())).unwrap_or_else(|| name.to_string());
            ConfigError(format!("{place}: {}", plain_yaml_error(&e.to_string())))
        })?;
        config.validate(name)?;
        Ok(config)
    }

    fn validate(&self, name: &str) -> Result<(), ConfigError> {
        if self.playbooks.is_empty() {
            return Err(ConfigError(format!("{name}: `playbooks` is empty; name at least one file or folder")));
        }
        for (key, text) in [
            ("knowledge.deploy_window", &self.knowledge.deploy_window),
            ("knowledge.history_window", &self.knowledge.history_window),
        ] {
            if crate::dsl::parse_duration(text).is_none() {
                return Err(ConfigError(format!(
                    "{name}: `{key}`: `{text}` is not a duration; write e.g. `7d` or `90d`"
                )));
            }
        }
        match (self.analysis.analyzer, &self.analysis.remote) {
            (AnalyzerKind::Remote, None) => {
                return Err(ConfigError(format!(
                    "{name}: `analysis.analyzer` is `remote` but `analysis.remote` is missing; give its `url` and `model`"
                )));
            }
            (AnalyzerKind::Remote, Some(remote)) => {
                if let Err(e) = crate::analysis::remote::Remote::new(remote.clone()) {
                    return Err(ConfigError(format!("{name}: `analysis.remote`: {e}")));
                }
            }
            _ => {}
        }
        if crate::dsl::parse_duration(&self.triage.group_window).is_none() {
            return Err(ConfigError(format!(
                "{name}: `triage.group_window`: `{}` is not a duration; write e.g. `5m` or `0s`",
                self.triage.group_window
            )));
        }
        if let Err(e) = self.triage.flapping.check() {
            return Err(ConfigError(format!("{name}: `triage.flapping`: {e}")));
        }
        if self.max_body.0 == 0 {
            return Err(ConfigError(format!("{name}: `max_body` must be more than 0 bytes")));
        }
        self.integrations.actions().validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.engine.validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.integrations.jira.validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.integrations.pagerduty.validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.integrations.github.validate(self.integrations.mode).map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.escalation.validate(&self.integrations.slack).map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.scheduler.validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        self.tokens.validate().map_err(|e| ConfigError(format!("{name}: {e}")))?;
        if let Some(channel) = &self.engine.notify_channel
            && !self.integrations.slack.webhooks.contains_key(channel)
        {
            return Err(ConfigError(format!(
                "{name}: `engine.notify_channel` is `{channel}`, but `integrations.slack.webhooks` has no `{channel}`"
            )));
        }
        for (source, sc) in self.sources.iter().flatten() {
            let kind = sc.kind.as_deref().unwrap_or(source);
            let key = format!("sources.{source}");
            if kind == "generic" {
                let Some(mapping) = &sc.mapping else {
                    return Err(ConfigError(format!(
                        "{name}: `{key}` is a generic source and needs a `mapping` (see docs/sources/generic.md)"
                    )));
                };
                if let Err(e) = mapping.validate() {
                    return Err(ConfigError(format!("{name}: `{key}.mapping`: {e}")));
                }
            } else if !crate::ingest::SOURCES.contains(&kind) {
                return Err(ConfigError(format!(
                    "{name}: `{key}`: unknown source type `{kind}`; known: {}, generic (set `type:` when the name differs)",
                    crate::ingest::SOURCES.join(", ")
                )));
            } else if sc.mapping.is_some() {
                return Err(ConfigError(format!("{name}: `{key}.mapping` is only for `type: generic` sources")));
            }
            if source.is_empty() || !source.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(ConfigError(format!(
                    "{name}: `{key}`: a source name is its URL path segment: letters, digits, `-` and `_` only"
                )));
            }
        }
        Ok(())
    }

    /// The configured sources, or every built-in one without authentication.
    pub fn effective_sources(&self) -> BTreeMap<String, SourceConfig> {
        match &self.sources {
            Some(s) => s.clone(),
            None => crate::ingest::SOURCES
                .iter()
                .map(|s| (s.to_string(), SourceConfig { kind: None, auth: None, mapping: None }))
                .collect(),
        }
    }
}

/// Replaces `${NAME}` with the variable's value; `$${` is a literal `${`. Records every unset
/// variable with its line and column.
fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>, missing: &mut Vec<(String, usize, usize)>) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        let mut col = 1;
        while let Some(i) = rest.find("${") {
            if i > 0 && rest.as_bytes()[i - 1] == b'$' {
                out.push_str(&rest[..i - 1]);
                out.push_str("${");
                col += i + 2;
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let Some(end) = rest[i..].find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let var = &rest[i + 2..i + end];
            match env(var) {
                Some(v) => out.push_str(&v),
                None => missing.push((var.to_string(), n + 1, col + i)),
            }
            col += i + end + 1;
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
    }
    out
}

/// serde_yaml's message without its own position (we put ours in front) and without Rust
/// type names.
fn plain_yaml_error(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.replace("struct Config", "the configuration")
        .replace("struct SourceConfig", "a source")
        .replace("internally tagged enum Auth", "`auth`")
        .replace("a sequence", "a list")
        .replace("invalid type: map, expected", "expected")
        .replace("invalid type:", "this value is")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GH_SECRET" => Some("s3cret".into()),
            "TOKEN" => Some("t0k".into()),
            _ => None,
        }
    }

    #[test]
    fn an_empty_file_is_the_default() {
        let c = Config::parse("", "sparky.yaml", &env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.store, "sqlite://sparky.db");
        assert_eq!(c.max_body.0, 1 << 20);
        assert!(c.effective_sources().contains_key("alertmanager"));
    }

    #[test]
    fn secrets_come_from_the_environment() {
        let text = "admin_token: ${TOKEN}\nsources:\n  alertmanager:\n    auth: {type: bearer, token: \"${TOKEN}\"}\n";
        let c = Config::parse(text, "sparky.yaml", &env).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("t0k"));
        let e = Config::parse("admin_token: ${NOPE}\n", "sparky.yaml", &env).unwrap_err().0;
        assert_eq!(
            e,
            "sparky.yaml:1:14: the environment variable `NOPE` is not set; set it, or write the value in the file"
        );
        let c = Config::parse("admin_token: \"$${TOKEN}\"\n", "sparky.yaml", &env).unwrap();
        assert_eq!(c.admin_token.as_deref(), Some("${TOKEN}"));
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let e = Config::parse("listen: 127.0.0.1:8080\nplaybok: [x]\n", "sparky.yaml", &env).unwrap_err().0;
        assert!(e.starts_with("sparky.yaml:2:1: unknown field `playbok`"), "{e}");
        let e = Config::parse("listen: here\n", "sparky.yaml", &env).unwrap_err().0;
        assert!(e.starts_with("sparky.yaml:1:") && e.contains("listen"), "{e}");
        let e = Config::parse("max_body: 2 tons\n", "sparky.yaml", &env).unwrap_err().0;
        assert!(e.contains("`2 tons` is not a size"), "{e}");
        let e = Config::parse("sources:\n  nagios: {}\n", "sparky.yaml", &env).unwrap_err().0;
        assert!(e.contains("`sources.nagios`: unknown source type `nagios`"), "{e}");
        let e = Config::parse("triage:\n  group_window: soon\n", "sparky.yaml", &env).unwrap_err().0;
        assert!(e.contains("`triage.group_window`"), "{e}");
    }

    #[test]
    fn github_is_checked_only_when_enabled_and_each_error_names_its_key() {
        let gh = |body: &str| Config::parse(&format!("integrations:\n  github:\n{body}"), "sparky.yaml", &env);
        assert!(gh("    clone_url: nowhere\n").is_ok(), "a disabled GitHub is not checked");
        let c = gh("    enabled: true\n    mode: dry-run\n").unwrap();
        assert_eq!(c.integrations.github.clone_url_of("acme/pricing"), "https://github.com/acme/pricing.git");
        for (body, expected) in [
            ("    enabled: true\n    mode: live\n", "`integrations.github.token` is empty"),
            ("    enabled: true\n    mode: live\n    token: t\n    api: ftp://x\n", "`integrations.github.api`"),
            ("    enabled: true\n    token: t\n    clone_url: https://github.com/acme.git\n", "has no `{repo}`"),
            (
                "    enabled: true\n    token: t\n    clone_url: https://x:ghp_1@github.com/{repo}.git\n",
                "holds a credential",
            ),
            ("    enabled: true\n    token: t\n    reviewers: [\"Dana Smith\"]\n", "is not a GitHub login"),
            ("    enabled: true\n    token: t\n    test_timeout: forever\n", "`integrations.github.test_timeout`"),
        ] {
            let e = gh(body).map(|_| ()).unwrap_err().0;
            assert!(e.starts_with("sparky.yaml: ") && e.contains(expected), "{body}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("1GB"), None);
    }
}

#[cfg(test)]
mod documented {
    use super::*;

    /// The commented example in docs/configuration.md reads, with every `${NAME}` set.
    #[test]
    fn the_documented_example_reads() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
        let start = doc.find("```yaml\n").expect("a yaml example") + "```yaml\n".len();
        let end = start + doc[start..].find("```").unwrap();
        let config = Config::parse(&doc[start..end], "docs/configuration.md", &|_| Some("x".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        let sources = config.effective_sources();
        assert_eq!(sources.len(), 6);
        assert_eq!(sources["argocd"].kind.as_deref(), Some("generic"));
        assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    }
}
