//! The token inventory as the daemon gathers it: the catalog's tokens, Sparky's own GitHub
//! token (asked of GitHub, which reports its expiry in a response header), and the configured
//! HTTP inventories. `GET /api/v1/tokens` shows it; PB-003 reads it.

use crate::actions::Secret;
use crate::knowledge::tokens::{self, HttpMapping, TokenInfo};
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

/// Every token the sources know, and what went wrong reading them (a source down is a
/// problem, not an empty inventory).
pub async fn inventory(
    catalog: &crate::knowledge::Catalog,
    config: &TokensConfig,
    http: &reqwest::Client,
) -> (Vec<TokenInfo>, Vec<String>) {
    let mut all = tokens::from_catalog(catalog);
    let mut problems = Vec::new();
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
                    Ok(t) => all.push(t),
                    Err(e) => problems.push(e),
                }
            }
            Ok(r) => problems.push(format!("GitHub answered {} when asked for the token's expiry", r.status())),
            Err(e) => {
                problems.push(format!("GitHub did not answer when asked for the token's expiry: {}", e.without_url()))
            }
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
                    let (found, mut why) = tokens::from_http_inventory(&h.name, &body, &h.mapping);
                    all.extend(found);
                    problems.append(&mut why);
                }
                Err(_) => problems.push(format!("`{}`: its answer is not JSON", h.name)),
            },
            Ok(r) => problems.push(format!("`{}` answered {}", h.name, r.status())),
            Err(e) => problems.push(format!("`{}` did not answer: {}", h.name, e.without_url())),
        }
    }
    (all, problems)
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
    fn inventory(&self) -> crate::actions::clients::BoxFuture<'_, (Vec<TokenInfo>, Vec<String>)> {
        Box::pin(async move {
            let loaded = self.ruleset.load_full();
            inventory(&loaded.catalog, &self.config, &self.http).await
        })
    }

    fn sent(
        &self,
    ) -> crate::actions::clients::BoxFuture<'_, Result<std::collections::HashSet<tokens::NoticeKey>, String>> {
        Box::pin(async move { self.store.token_notices_sent().await.map_err(|e| e.to_string()) })
    }

    fn record<'a>(
        &'a self,
        notice: &'a tokens::Notice,
        channel: &'a str,
    ) -> crate::actions::clients::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .record_token_notice(notice, channel, chrono::Utc::now())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
