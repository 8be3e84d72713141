//! What actions act through: the Kubernetes client, Redis connections, the HTTP client, the
//! Slack webhooks and the command allow-list, built once from the `integrations:` section of
//! the configuration. Secrets (webhook URLs, passwords, header values) live here and only
//! here: plans name them, `apply()` resolves them, and neither logs nor the audit log see them.

use crate::knowledge::tokens::{Inventory, Notice, NoticeKey, Raise, Settle};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

/// Whether an integration changes the world.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Plans are made, guarded and recorded in the audit log exactly as in live mode; nothing
    /// is applied.
    #[default]
    DryRun,
    /// Plans that pass every guard are applied.
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Live => "live",
        }
    }
}

/// A value that must never be shown: its `Debug` is `***`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn duration_ms(text: &str) -> Option<Duration> {
    crate::dsl::parse_duration(text).map(Duration::from_millis)
}

/// `integrations.kubernetes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// Overrides `integrations.mode` for Kubernetes actions.
    pub mode: Option<Mode>,
    /// A kubeconfig file; when left out, the in-cluster service account, then `KUBECONFIG`
    /// and `~/.kube/config`, as kubectl finds them.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context; its current context when left out.
    pub context: Option<String>,
    /// The API server URL, overriding the kubeconfig's (for a proxy, or tests).
    pub url: Option<String>,
    /// Per request; `10s` when left out.
    pub timeout: Option<String>,
}

/// `integrations.redis`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    pub mode: Option<Mode>,
    /// Instances by name (`default` is used when an action names none): `redis://...` URLs.
    pub instances: BTreeMap<String, Secret>,
    /// Per command; `5s` when left out.
    pub timeout: Option<String>,
}

/// `integrations.http`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub mode: Option<Mode>,
    /// Values that `http.request` headers, URLs and bodies name as `${secret:NAME}`.
    pub secrets: BTreeMap<String, Secret>,
    /// Per request; `10s` when left out.
    pub timeout: Option<String>,
}

/// `integrations.slack`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackConfig {
    pub mode: Option<Mode>,
    /// Incoming-webhook URLs by channel name (`default` when an action names none).
    pub webhooks: BTreeMap<String, Secret>,
}

/// `integrations.command`: off unless `enabled`, and then only the allowed programs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandConfig {
    pub mode: Option<Mode>,
    pub enabled: bool,
    /// Allowed commands, each an argv prefix: `["/usr/local/bin/purge-cdn", "--zone"]` allows
    /// that program with those first arguments, and any arguments after them.
    pub allow: Vec<Vec<String>>,
    /// Per run; `30s` when left out.
    pub timeout: Option<String>,
}

/// The integrations actions use, as configured.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    pub kubernetes: KubernetesConfig,
    pub redis: RedisConfig,
    pub http: HttpConfig,
    pub slack: SlackConfig,
    pub command: CommandConfig,
}

impl ActionsConfig {
    /// The mode of `integration`, given the global one.
    pub fn mode(&self, integration: &str, global: Mode) -> Mode {
        let own = match integration {
            "kubernetes" => self.kubernetes.mode,
            "redis" => self.redis.mode,
            "http" => self.http.mode,
            "slack" => self.slack.mode,
            "command" => self.command.mode,
            _ => None,
        };
        own.unwrap_or(global)
    }

    /// Checks durations and URLs; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value) in [
            ("kubernetes.timeout", &self.kubernetes.timeout),
            ("redis.timeout", &self.redis.timeout),
            ("http.timeout", &self.http.timeout),
            ("command.timeout", &self.command.timeout),
        ] {
            if let Some(text) = value
                && duration_ms(text).is_none()
            {
                return Err(format!("`integrations.{key}`: `{text}` is not a duration; write e.g. `10s`"));
            }
        }
        for (name, url) in &self.redis.instances {
            if redis::Client::open(url.expose()).is_err() {
                return Err(format!(
                    "`integrations.redis.instances.{name}` is not a Redis URL; write e.g. `redis://127.0.0.1:6379`"
                ));
            }
        }
        for (name, url) in &self.slack.webhooks {
            if reqwest::Url::parse(url.expose()).is_err() {
                return Err(format!("`integrations.slack.webhooks.{name}` is not a URL"));
            }
        }
        if let Some(bad) = self.command.allow.iter().find(|argv| argv.is_empty() || argv[0].trim().is_empty()) {
            return Err(format!("`integrations.command.allow`: {bad:?} names no program"));
        }
        Ok(())
    }
}

/// Where `notify.token_owners` reads the token inventory and remembers the notices sent
/// (the daemon provides it: the catalog in force, the configured sources, the store).
pub trait TokenDesk: Send + Sync {
    /// Every token the sources know, the problems reading them, and whether every source
    /// answered.
    fn inventory(&self) -> BoxFuture<'_, Inventory>;
    /// The notices sent so far.
    fn sent(&self) -> BoxFuture<'_, Result<HashSet<NoticeKey>, String>>;
    /// Remembers that `notice` was sent on `channel`.
    fn record<'a>(&'a self, notice: &'a Notice, channel: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Opens the token incidents a run of `run.playbook` raised (a ticket: Jira only, no
    /// page; an escalation: the playbook's `l3` settings), and closes that playbook's open
    /// token incidents that `settle` says are over (renewed; gone from a complete inventory).
    /// The same raise twice opens nothing new. Returns the keys it closed.
    fn raise<'a>(
        &'a self,
        run: &'a RunRef,
        raised: &'a [(Notice, Raise)],
        settle: &'a Settle,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;
}

/// The execution an action runs in, as the engine stamps it on the plan it applies (see
/// [`super::for_execution`]): for actions that raise incidents of their own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunRef {
    pub playbook: String,
    pub execution: String,
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The clients actions act through. Built once at start; cheap to share.
pub struct Clients {
    pub config: ActionsConfig,
    /// `None` until the first Kubernetes action asks for it (a daemon that never restarts a
    /// pod needs no kubeconfig).
    kube: tokio::sync::OnceCell<Result<kube::Client, String>>,
    redis: tokio::sync::Mutex<BTreeMap<String, redis::aio::ConnectionManager>>,
    pub http: reqwest::Client,
    /// The token inventory and notice memory, once the daemon sets it (absent in tools that
    /// only plan).
    pub tokens: std::sync::OnceLock<std::sync::Arc<dyn TokenDesk>>,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Clients {
    pub fn new(config: ActionsConfig) -> Clients {
        let timeout = config.http.timeout.as_deref().and_then(duration_ms).unwrap_or(Duration::from_secs(10));
        let http = crate::escalate::http::client(timeout);
        Clients {
            config,
            kube: tokio::sync::OnceCell::new(),
            redis: tokio::sync::Mutex::new(BTreeMap::new()),
            http,
            tokens: std::sync::OnceLock::new(),
        }
    }

    /// The Kubernetes client: the configured kubeconfig and context, else in-cluster, else
    /// the default kubeconfig; the error says which was tried.
    pub async fn kube(&self) -> Result<kube::Client, String> {
        self.kube
            .get_or_init(|| async {
                let k = &self.config.kubernetes;
                let mut cfg = match &k.kubeconfig {
                    Some(path) => {
                        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                            format!("cannot read the kubeconfig `{}`: {e}", path.display())
                        })?;
                        let opts = kube::config::KubeConfigOptions { context: k.context.clone(), ..Default::default() };
                        kube::Config::from_custom_kubeconfig(kc, &opts).await.map_err(|e| {
                            format!("the kubeconfig `{}` cannot be used: {e}", path.display())
                        })?
                    }
                    None if k.url.is_some() => kube::Config::new(
                        k.url.as_deref().unwrap_or_default().parse().map_err(|e| {
                            format!("`integrations.kubernetes.url` is not a URL: {e}")
                        })?,
                    ),
                    None => kube::Config::infer().await.map_err(|e| {
                        format!(
                            "no Kubernetes credentials: not in a cluster and no usable kubeconfig ({e}); set `integrations.kubernetes.kubeconfig`"
                        )
                    })?,
                };
                if let (Some(url), Some(_)) = (&k.url, &k.kubeconfig) {
                    cfg.cluster_url =
                        url.parse().map_err(|e| format!("`integrations.kubernetes.url` is not a URL: {e}"))?;
                }
                let timeout = k.timeout.as_deref().and_then(duration_ms).unwrap_or(Duration::from_secs(10));
                cfg.read_timeout = Some(timeout);
                cfg.write_timeout = Some(timeout);
                cfg.connect_timeout = Some(timeout);
                // kube retries 429/503/504 by itself, up to 15 times with a backoff of up to
                // 1000s: a PodDisruptionBudget's 429 on an eviction would be re-sent for many
                // minutes inside one attempt. The executor retries transient errors itself,
                // within `engine.apply_timeout`.
                cfg.default_retry = false;
                kube::Client::try_from(cfg).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
            })
            .await
            .clone()
    }

    /// A connection to the Redis instance `name` (reconnecting by itself).
    pub async fn redis(&self, name: &str) -> Result<redis::aio::ConnectionManager, String> {
        let mut conns = self.redis.lock().await;
        if let Some(c) = conns.get(name) {
            return Ok(c.clone());
        }
        let Some(url) = self.config.redis.instances.get(name) else {
            let known: Vec<&str> = self.config.redis.instances.keys().map(String::as_str).collect();
            return Err(format!(
                "no Redis instance `{name}` in `integrations.redis.instances` (configured: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        };
        let client = redis::Client::open(url.expose())
            .map_err(|e| format!("the Redis URL of `{name}` is not valid: {}", redact(&e.to_string(), url)))?;
        let timeout = self.config.redis.timeout.as_deref().and_then(duration_ms).unwrap_or(Duration::from_secs(5));
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_with_config(client, cfg)
            .await
            .map_err(|e| format!("cannot connect to Redis `{name}`: {}", redact(&e.to_string(), url)))?;
        conns.insert(name.to_string(), conn.clone());
        Ok(conn)
    }

    /// A configured `http` secret by name.
    pub fn secret(&self, name: &str) -> Option<&str> {
        self.config.http.secrets.get(name).map(Secret::expose)
    }

    /// The Slack webhook URL of `channel`.
    pub fn slack_webhook(&self, channel: &str) -> Result<&str, String> {
        self.config.slack.webhooks.get(channel).map(Secret::expose).ok_or_else(|| {
            format!("no Slack webhook `{channel}` in `integrations.slack.webhooks`; add its incoming-webhook URL")
        })
    }
}

/// `text` with the secret `s` cut out, for error messages that might quote it.
pub fn redact(text: &str, s: &Secret) -> String {
    if s.0.is_empty() { text.to_string() } else { text.replace(s.expose(), "***") }
}
