//! The GitHub REST client L2 opens its pull requests with (github.com, or GitHub Enterprise
//! with its `https://HOST/api/v3` base). Idempotent per branch — one branch per incident
//! key: an open pull request for the branch is updated rather than opened twice, and a 422
//! "a pull request already exists" is success. Writes are serial (one at a time per client);
//! rate limits come back as [`DeliveryError::Retry`] with the time GitHub asked to wait
//! (`Retry-After`, or `x-ratelimit-reset` once `x-ratelimit-remaining` is 0), for the caller
//! to wait out. Sparky never merges.

use crate::actions::{Mode, Secret};
use crate::escalate::http::DeliveryError;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// `integrations.github`: where L2 fixes are pushed and opened as pull requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitHubConfig {
    /// Overrides `integrations.mode` for GitHub: in `dry-run` the pull request is rendered
    /// and recorded, nothing is cloned, pushed or opened.
    pub mode: Option<Mode>,
    /// Whether L2 decisions are carried out at all.
    pub enabled: bool,
    /// The REST API: `https://api.github.com`, or GitHub Enterprise's `https://HOST/api/v3`.
    pub api: String,
    /// A token that may push branches and open pull requests (a fine-grained token with
    /// contents and pull requests read/write, or a GitHub App installation token). Used for
    /// the API and, as an `Authorization` header through the environment, for git over HTTPS.
    pub token: Secret,
    /// Where a repository is cloned from: `{repo}` is the catalog's `github.com/project-slug`.
    pub clone_url: String,
    /// Local clones live here, one folder per repository, reused between fixes.
    pub clone_dir: PathBuf,
    /// The branch fixes go into; the repository's default branch (asked of GitHub) when
    /// left out.
    pub base: Option<String>,
    /// The fix commit's author.
    pub author_name: String,
    pub author_email: String,
    /// Labels set on every pull request.
    pub labels: Vec<String>,
    /// GitHub logins asked to review when the catalog names no on-call engineer or team.
    pub reviewers: Vec<String>,
    /// How long the repository's test command (`sparky.dev/test-command`) may run.
    pub test_timeout: String,
    /// How long one git command (clone, fetch, push) may take.
    pub git_timeout: String,
    /// Per API request.
    pub timeout: String,
    /// How many times one fix is tried (git or GitHub failing, the token refused) before
    /// Sparky gives up on it and escalates the incident with the attempt.
    pub max_attempts: u32,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        GitHubConfig {
            mode: None,
            enabled: false,
            api: "https://api.github.com".into(),
            token: Secret::default(),
            clone_url: "https://github.com/{repo}.git".into(),
            clone_dir: PathBuf::from(".sparky/clones"),
            base: None,
            author_name: "Sparky".into(),
            author_email: "sparky@users.noreply.github.com".into(),
            labels: vec!["sparky".into(), "sparky:l2".into()],
            reviewers: Vec::new(),
            test_timeout: "10m".into(),
            git_timeout: "5m".into(),
            timeout: "30s".into(),
            max_attempts: 10,
        }
    }
}

impl GitHubConfig {
    /// Checks the URLs, the token and the durations; the message names the key.
    pub fn validate(&self, global: Mode) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        match reqwest::Url::parse(&self.api) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(format!(
                    "`integrations.github.api`: `{}` is not an http(s) URL; write `https://api.github.com` or `https://HOST/api/v3`",
                    self.api
                ));
            }
        }
        if !self.clone_url.contains("{repo}") {
            return Err(format!(
                "`integrations.github.clone_url`: `{}` has no `{{repo}}`; write e.g. `https://github.com/{{repo}}.git`",
                self.clone_url
            ));
        }
        if crate::fix::git::redact(&self.clone_url) != self.clone_url {
            return Err("`integrations.github.clone_url` holds a credential; put the token in `integrations.github.token`, it is sent without appearing in any URL".into());
        }
        if self.mode.unwrap_or(global) == Mode::Live && self.token.expose().trim().is_empty() {
            return Err(
                "`integrations.github.token` is empty; write `token: ${GITHUB_TOKEN}` and set the variable (or keep GitHub in `mode: dry-run`)"
                    .into(),
            );
        }
        if let Some(bad) = self.reviewers.iter().find(|r| !crate::knowledge::catalog::is_github_login(r)) {
            return Err(format!("`integrations.github.reviewers`: `{bad}` is not a GitHub login"));
        }
        if let Some(bad) = self.labels.iter().find(|l| l.trim().is_empty() || l.len() > 50) {
            return Err(format!(
                "`integrations.github.labels`: `{bad}` is not a label GitHub takes (1 to 50 characters)"
            ));
        }
        if self.max_attempts == 0 {
            return Err(
                "`integrations.github.max_attempts` is 0; write how many times a fix is tried, e.g. `10`".into()
            );
        }
        for (key, value) in
            [("test_timeout", &self.test_timeout), ("git_timeout", &self.git_timeout), ("timeout", &self.timeout)]
        {
            if crate::dsl::parse_duration(value).is_none_or(|ms| ms == 0) {
                return Err(format!("`integrations.github.{key}`: `{value}` is not a duration; write e.g. `10m`"));
            }
        }
        Ok(())
    }

    /// A duration key already validated.
    pub fn duration(&self, value: &str) -> Duration {
        Duration::from_millis(crate::dsl::parse_duration(value).unwrap_or(30_000))
    }

    /// The URL `repo` is cloned from.
    pub fn clone_url_of(&self, repo: &str) -> String {
        self.clone_url.replace("{repo}", repo)
    }
}

/// A GitHub API client for one token.
pub struct GitHub {
    api: String,
    token: String,
    http: reqwest::Client,
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub").field("api", &self.api).finish_non_exhaustive()
    }
}

/// A pull request as GitHub reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    /// `open`, `closed`.
    pub state: String,
    pub merged: bool,
    pub draft: bool,
}

/// What [`GitHub::open_pull_request`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub pull: PullRequest,
    /// False when an open pull request for the branch was found and updated.
    pub created: bool,
    /// What could not be done and does not stop the pull request (a reviewer who is not a
    /// collaborator, a label GitHub refused).
    pub notes: Vec<String>,
}

/// What the pull request says and who reviews it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestSpec {
    /// `owner/repo`.
    pub repo: String,
    /// `sparky/SPK-…`.
    pub head: String,
    /// The branch it goes into (the repository's default branch).
    pub base: String,
    pub title: String,
    pub body: String,
    /// GitHub logins asked to review.
    pub reviewers: Vec<String>,
    /// Team slugs (`sre`, without the organization) asked to review.
    pub team_reviewers: Vec<String>,
    pub labels: Vec<String>,
    /// Opened as a draft: a fix whose tests failed is not ready for review.
    pub draft: bool,
}

fn pull_of(v: &Value) -> Option<PullRequest> {
    Some(PullRequest {
        number: v.get("number")?.as_u64()?,
        url: v.get("html_url").and_then(Value::as_str).unwrap_or_default().to_string(),
        state: v.get("state").and_then(Value::as_str).unwrap_or("open").to_string(),
        merged: v.get("merged").and_then(Value::as_bool).unwrap_or(false)
            || v.get("merged_at").is_some_and(|m| !m.is_null()),
        draft: v.get("draft").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// How long GitHub asks to wait: `Retry-After`, else the rate limit's reset when none is
/// left.
fn wait_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(after) = crate::escalate::http::retry_after(headers) {
        return Some(after);
    }
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    if header("x-ratelimit-remaining") == Some(0) {
        let reset = header("x-ratelimit-reset")?;
        let wait = (reset - chrono::Utc::now().timestamp()).clamp(1, 3600);
        return Some(Duration::from_secs(wait as u64));
    }
    None
}

impl GitHub {
    /// `api`: `https://api.github.com` or `https://HOST/api/v3`.
    pub fn new(api: &str, token: &str, timeout: Duration) -> GitHub {
        let http = crate::escalate::http::client(timeout);
        GitHub {
            api: api.trim_end_matches('/').to_string(),
            token: token.to_string(),
            http,
            writes: tokio::sync::Mutex::new(()),
        }
    }

    /// One call: the status and JSON body of a 2xx or a 422 (the caller reads it); other
    /// answers as errors — rate limits (403/429 with a wait, or no requests left) and 5xx
    /// retried, 401 retried (fixing the token delivers what waited), any other 4xx permanent.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), DeliveryError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request.send().await.map_err(|e| DeliveryError::Retry {
            reason: format!("the request to GitHub ({method} {path}) failed: {}", e.without_url()),
            after: None,
            ambiguous: method != reqwest::Method::GET,
        })?;
        let status = response.status();
        let wait = wait_of(response.headers());
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY {
            return Ok((status, value));
        }
        let message = value.get("message").and_then(Value::as_str).unwrap_or(text.trim());
        let message: String = message.chars().take(300).collect();
        let reason = format!("GitHub answered {status} to {method} {path}: {message}");
        Err(match status.as_u16() {
            403 | 429 if wait.is_some() || message.to_lowercase().contains("rate limit") => {
                DeliveryError::Retry { reason, after: wait.or(Some(Duration::from_secs(60))), ambiguous: false }
            }
            401 => DeliveryError::Retry {
                reason: format!("{reason} — check `integrations.github.token`; retried until it works"),
                after: wait,
                ambiguous: false,
            },
            500..=599 => DeliveryError::Retry { reason, after: wait, ambiguous: true },
            _ => DeliveryError::Permanent(reason),
        })
    }

    /// The repository's default branch.
    pub async fn default_branch(&self, repo: &str) -> Result<String, DeliveryError> {
        let (status, v) = self.call(reqwest::Method::GET, &format!("/repos/{repo}"), None).await?;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            return Err(DeliveryError::Permanent(format!("GitHub refused to describe `{repo}`")));
        }
        v.get("default_branch")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| DeliveryError::Permanent(format!("GitHub did not name the default branch of `{repo}`")))
    }

    /// The pull request whose head is `branch` (open first, else the newest closed).
    pub async fn find(&self, repo: &str, branch: &str) -> Result<Option<PullRequest>, DeliveryError> {
        let owner = repo.split('/').next().unwrap_or_default();
        let path = format!("/repos/{repo}/pulls?head={owner}:{branch}&state=all&per_page=10");
        let (_, v) = self.call(reqwest::Method::GET, &path, None).await?;
        let pulls: Vec<PullRequest> = v.as_array().map(|a| a.iter().filter_map(pull_of).collect()).unwrap_or_default();
        Ok(pulls.iter().find(|p| p.state == "open").or_else(|| pulls.iter().max_by_key(|p| p.number)).cloned())
    }

    /// Opens the pull request of `spec` or, when one is open for its branch, updates its
    /// title and body; then asks for the reviews and sets the labels.
    pub async fn open_pull_request(&self, spec: &PullRequestSpec) -> Result<Opened, DeliveryError> {
        let _serial = self.writes.lock().await;
        let repo = &spec.repo;
        let mut created = false;
        let pull = match self.find(repo, &spec.head).await? {
            Some(p) if p.state == "open" => p,
            // Closed or merged by a person: the incident's answer was given; never reopened.
            Some(p) => {
                let how = if p.merged { "merged" } else { "closed without merging" };
                return Ok(Opened {
                    notes: vec![format!(
                        "pull request #{} for this incident was {how}; Sparky does not open another",
                        p.number
                    )],
                    pull: p,
                    created: false,
                });
            }
            None => {
                let body = json!({ "title": spec.title, "head": spec.head, "base": spec.base, "body": spec.body,
                                   "draft": spec.draft, "maintainer_can_modify": true });
                let (status, v) =
                    self.call(reqwest::Method::POST, &format!("/repos/{repo}/pulls"), Some(&body)).await?;
                if status == StatusCode::UNPROCESSABLE_ENTITY {
                    let said = v.to_string();
                    if !said.to_lowercase().contains("already exists") {
                        // GitHub's message, then each validation error's (or the whole answer).
                        let mut told: Vec<String> =
                            v.get("message").and_then(Value::as_str).map(str::to_string).into_iter().collect();
                        let errors = v.get("errors").and_then(Value::as_array).into_iter().flatten();
                        told.extend(errors.map(|e| {
                            e.get("message").and_then(Value::as_str).map_or_else(|| e.to_string(), str::to_string)
                        }));
                        let told = if told.is_empty() { said } else { told.join("; ") };
                        return Err(DeliveryError::Permanent(format!(
                            "GitHub answered 422 Unprocessable Entity to the pull request for `{}` into `{}`: {} — check that the base branch exists and the branch differs from it",
                            spec.head,
                            spec.base,
                            crate::escalate::package::truncate(&told, 300)
                        )));
                    }
                    // Opened by an earlier attempt whose answer was lost: that one is ours.
                    self.find(repo, &spec.head).await?.filter(|p| p.state == "open").ok_or_else(|| {
                        DeliveryError::retry(
                            "GitHub says a pull request exists for the branch but does not list it yet",
                        )
                    })?
                } else {
                    created = true;
                    pull_of(&v)
                        .ok_or_else(|| DeliveryError::Permanent("GitHub's answer names no pull request".into()))?
                }
            }
        };
        if !created {
            let body = json!({ "title": spec.title, "body": spec.body });
            let path = format!("/repos/{repo}/pulls/{}", pull.number);
            let (status, v) = self.call(reqwest::Method::PATCH, &path, Some(&body)).await?;
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                return Err(DeliveryError::Permanent(format!(
                    "GitHub refused to update pull request #{}: {v}",
                    pull.number
                )));
            }
        }
        let mut notes = Vec::new();
        if !spec.reviewers.is_empty() || !spec.team_reviewers.is_empty() {
            let path = format!("/repos/{repo}/pulls/{}/requested_reviewers", pull.number);
            let asked = json!({ "reviewers": spec.reviewers, "team_reviewers": spec.team_reviewers });
            let (status, v) = self.call(reqwest::Method::POST, &path, Some(&asked)).await?;
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                let message = v.get("message").and_then(Value::as_str).unwrap_or("refused");
                let who: Vec<String> = spec
                    .reviewers
                    .iter()
                    .cloned()
                    .chain(spec.team_reviewers.iter().map(|t| format!("team {t}")))
                    .collect();
                notes.push(format!("review not requested from {}: {message}", who.join(", ")));
            }
        }
        if !spec.labels.is_empty() {
            let path = format!("/repos/{repo}/issues/{}/labels", pull.number);
            let (status, v) = self.call(reqwest::Method::POST, &path, Some(&json!({ "labels": spec.labels }))).await?;
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                let message = v.get("message").and_then(Value::as_str).unwrap_or("refused");
                notes.push(format!("labels not set: {message}"));
            }
        }
        Ok(Opened { pull, created, notes })
    }
}
