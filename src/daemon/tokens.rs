//! The token inventory as the daemon gathers it: the catalog's tokens, Sparky's own GitHub
//! token (asked of GitHub, which reports its expiry in a response header), and the configured
//! HTTP inventories. `GET /api/v1/tokens` shows it; PB-003 reads it.

use crate::actions::Secret;
use crate::actions::clients::{BoxFuture, RunRef};
use crate::escalate::EscalationPackage;
use crate::knowledge::tokens::{self, HttpMapping, Inventory, Notice, Raise};
use crate::store::TokenRaise;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `tokens:` in the configuration: inventory sources beyond the catalog.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    pub github: Option<GitHubToken>,
    pub http: Vec<HttpInventory>,
}

/// Sparky's own GitHub token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubToken {
    /// The API base: `https://api.github.com`, or GitHub Enterprise's `https://HOST/api/v3`.
    #[serde(default = "github_api")]
    pub url: String,
    pub token: Secret,
    /// How the inventory names it.
    #[serde(default = "github_name")]
    pub name: String,
    /// Who renews it, e.g. `group:platform`.
    pub owner: String,
}

fn github_api() -> String {
    "https://api.github.com".into()
}

fn github_name() -> String {
    "sparky-github-token".into()
}

/// An HTTP inventory: a `GET` whose JSON answer lists tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInventory {
    /// How problems and the inventory name it.
    pub name: String,
    pub url: String,
    /// Request headers (an API key: write `${NAME}`); never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Where the tokens are in the answer.
    pub mapping: HttpMapping,
}

impl TokensConfig {
    /// Checks URLs and mappings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(g) = &self.github
            && reqwest::Url::parse(&g.url).is_err()
        {
            return Err(format!("`tokens.github.url`: `{}` is not a URL", g.url));
        }
        for (i, h) in self.http.iter().enumerate() {
            if reqwest::Url::parse(&h.url).is_err() {
                return Err(format!("`tokens.http[{i}].url`: `{}` is not a URL", h.url));
            }
            h.mapping.validate().map_err(|e| format!("`tokens.http[{i}].mapping.{}", e.trim_start_matches('`')))?;
        }
        Ok(())
    }
}

/// Every token the sources know, what went wrong reading them (a source down is a problem,
/// not an empty inventory), and whether every source answered with a token list.
pub async fn inventory(
    catalog: &crate::knowledge::Catalog,
    config: &TokensConfig,
    http: &reqwest::Client,
) -> Inventory {
    let mut all = Inventory { tokens: tokens::from_catalog(catalog), problems: Vec::new(), complete: true };
    let unread = |all: &mut Inventory, problem: String| {
        all.problems.push(problem);
        all.complete = false;
    };
    if let Some(g) = &config.github {
        let url = format!("{}/rate_limit", g.url.trim_end_matches('/'));
        let request = http
            .get(url)
            .bearer_auth(g.token.expose())
            .header("Accept", "application/vnd.github+json")
            .timeout(Duration::from_secs(10));
        match request.send().await {
            Ok(r) if r.status().is_success() => {
                let header = r.headers().get("github-authentication-token-expiration").and_then(|v| v.to_str().ok());
                match tokens::from_github_header(&g.name, &g.owner, header) {
                    Ok(t) => all.tokens.push(t),
                    Err(e) => unread(&mut all, e),
                }
            }
            Ok(r) => unread(&mut all, format!("GitHub answered {} when asked for the token's expiry", r.status())),
            Err(e) => unread(
                &mut all,
                format!("GitHub did not answer when asked for the token's expiry: {}", e.without_url()),
            ),
        }
    }
    for h in &config.http {
        let mut request = http.get(&h.url).timeout(Duration::from_secs(10));
        for (k, v) in &h.headers {
            request = request.header(k, v.expose());
        }
        match request.send().await {
            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                Ok(body) => {
                    if body.pointer(&h.mapping.items).and_then(|v| v.as_array()).is_none() {
                        all.complete = false;
                    }
                    let (found, mut why) = tokens::from_http_inventory(&h.name, &body, &h.mapping);
                    all.tokens.extend(found);
                    // An item without a name or with an unreadable expiry: what the source
                    // lists is not all known, so nothing is taken as gone.
                    if !why.is_empty() {
                        all.complete = false;
                    }
                    all.problems.append(&mut why);
                }
                Err(_) => unread(&mut all, format!("`{}`: its answer is not JSON", h.name)),
            },
            Ok(r) => unread(&mut all, format!("`{}` answered {}", h.name, r.status())),
            Err(e) => unread(&mut all, format!("`{}` did not answer: {}", h.name, e.without_url())),
        }
    }
    all
}

/// The token desk `notify.token_owners` acts through: the catalog in force, the configured
/// sources, the notices remembered in the store.
pub(super) struct Desk {
    pub ruleset: std::sync::Arc<arc_swap::ArcSwap<super::reload::Loaded>>,
    pub config: TokensConfig,
    pub store: crate::store::Store,
    pub http: reqwest::Client,
}

impl crate::actions::clients::TokenDesk for Desk {
    fn inventory(&self) -> BoxFuture<'_, Inventory> {
        Box::pin(async move {
            let loaded = self.ruleset.load_full();
            inventory(&loaded.catalog, &self.config, &self.http).await
        })
    }

    fn sent(&self) -> BoxFuture<'_, Result<std::collections::HashSet<tokens::NoticeKey>, String>> {
        Box::pin(async move { self.store.token_notices_sent().await.map_err(|e| e.to_string()) })
    }

    fn record<'a>(&'a self, notice: &'a Notice, channel: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .record_token_notice(notice, channel, chrono::Utc::now())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn raise<'a>(
        &'a self,
        run: &'a RunRef,
        raised: &'a [(Notice, Raise)],
        settle: &'a tokens::Settle,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let now = chrono::Utc::now();
            let loaded = self.ruleset.load_full();
            let settings = match loaded.graph.playbooks().iter().find(|p| p.id == run.playbook) {
                Some(pb) => crate::triage::escalation_of(pb),
                // Unloaded since the run started: a ticket at the default priority.
                None => crate::triage::escalation_by_severity(crate::event::Severity::Warning),
            };
            let knowledge = crate::knowledge::Knowledge::new(loaded.catalog.clone(), now.timestamp_millis());
            let raises: Vec<TokenRaise> = raised
                .iter()
                .map(|(notice, how)| token_raise(notice, *how, &settings, &run.playbook, &knowledge, now))
                .collect();
            self.store
                .raise_token_incidents(&run.playbook, &run.execution, &raises, settle, now)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The incident `notice` raises: a ticket never pages; an escalation takes the playbook's
/// settings.
fn token_raise(
    notice: &Notice,
    how: Raise,
    settings: &crate::triage::Escalation,
    playbook: &str,
    knowledge: &crate::knowledge::Knowledge,
    now: chrono::DateTime<chrono::Utc>,
) -> TokenRaise {
    let event = tokens::token_event(notice, how, now);
    let (_, key) = tokens::token_incident(&notice.key.token, notice.expires_at.unwrap_or(now));
    let owner = notice.owner.as_deref().unwrap_or("no owner in the inventory");
    let cause = match how {
        Raise::Ticket => format!(
            "{playbook}: the token crossed its last notice threshold ({}) and its owner ({owner}) has not renewed it; a ticket so that the rotation is tracked",
            notice.key.mark
        ),
        Raise::Escalate => format!(
            "{playbook}: the token expired and its owner ({owner}) did not renew it; whatever uses it fails until it is"
        ),
    };
    TokenRaise {
        fingerprint: event.fingerprint.clone(),
        raise: how,
        package: EscalationPackage {
            incident_key: key,
            priority: settings.priority.clone(),
            jira_project: settings.jira_project.clone(),
            page: how == Raise::Escalate && settings.page,
            cause,
            attempt: None,
            package: crate::analysis::package::Package::assemble(&event, knowledge, None, None, now),
        },
    }
}
