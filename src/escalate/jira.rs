//! Jira: the issue an escalation files, its comments and its resolution. Jira Cloud speaks
//! REST v3 with Atlassian Document Format bodies; Server and Data Center speak REST v2 with
//! wiki markup. Both are searched for an open issue carrying the incident key as a label
//! before an issue is created, so a retry after a timeout (the issue may exist) or a restart
//! finds the issue instead of filing a second one.

use super::http::{DeliveryError, send};
use super::{EscalationPackage, IssueLink, Note, adf, wiki};
use crate::actions::{Mode, Secret};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// `integrations.jira`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JiraConfig {
    /// Overrides `integrations.mode` for Jira.
    pub mode: Option<Mode>,
    /// The site: `https://acme.atlassian.net`, or a Server base URL with its context path.
    pub url: String,
    /// `cloud` (REST v3, Atlassian Document Format) or `server` (REST v2, wiki markup; also
    /// Data Center).
    pub flavor: Flavor,
    /// Cloud: the account's email, with an API token as `token` (basic auth).
    pub email: Option<String>,
    /// Server: a user name, with its password as `token` (basic auth); without it `token` is
    /// a personal access token (bearer).
    pub user: Option<String>,
    pub token: Secret,
    /// The project when neither the service's catalog entry (`jira/project-key`) nor the
    /// playbook (`l3 jira "..."`) names one.
    pub project: Option<String>,
    /// The issue type created (`Task` by default; `Incident` in service-management projects).
    pub issue_type: String,
    /// Sparky's priorities → the instance's priority names.
    pub priorities: BTreeMap<String, String>,
    /// Labels added to every issue, besides the incident key.
    pub labels: Vec<String>,
    /// Components set on every issue.
    pub components: Vec<String>,
    /// The transition (by name, e.g. `Done`) applied when the source resolves the incident;
    /// without one, a comment says it resolved.
    pub resolve_transition: Option<String>,
    /// Per request; `10s` when left out.
    pub timeout: Option<String>,
    /// How long Jira's search may lag behind a create (Jira Cloud's index is eventually
    /// consistent): after a create whose answer was lost, the search that decides whether to
    /// create again waits at least this long.
    pub search_lag: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    #[default]
    Cloud,
    Server,
}

impl Default for JiraConfig {
    fn default() -> Self {
        JiraConfig {
            mode: None,
            url: String::new(),
            flavor: Flavor::Cloud,
            email: None,
            user: None,
            token: Secret::default(),
            project: None,
            issue_type: "Task".into(),
            priorities: [("P1", "Highest"), ("P2", "High"), ("P3", "Medium"), ("P4", "Low")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: vec!["sparky".into()],
            components: Vec::new(),
            resolve_transition: None,
            timeout: None,
            search_lag: "30s".into(),
        }
    }
}

impl JiraConfig {
    /// Whether Jira is configured at all (escalations go there).
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Checks the URL, the credentials and the priority map; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return Err(format!("`integrations.jira.url`: `{}` is not an http(s) URL", self.url)),
        }
        if self.token.expose().is_empty() {
            return Err("`integrations.jira.token` is empty; write `token: ${JIRA_TOKEN}` and set the variable".into());
        }
        if self.flavor == Flavor::Cloud && self.email.as_deref().is_none_or(str::is_empty) {
            return Err(
                "`integrations.jira.email` is required for Jira Cloud (basic auth is the email and an API token)"
                    .into(),
            );
        }
        for p in ["P1", "P2", "P3", "P4"] {
            if !self.priorities.contains_key(p) {
                return Err(format!(
                    "`integrations.jira.priorities` does not map `{p}` to a priority name of the instance"
                ));
            }
        }
        if let Some(bad) = self.labels.iter().find(|l| l.contains(char::is_whitespace) || l.is_empty()) {
            return Err(format!("`integrations.jira.labels`: `{bad}` is not a Jira label (no spaces)"));
        }
        for (key, value) in [("timeout", self.timeout.as_ref()), ("search_lag", Some(&self.search_lag))] {
            if let Some(t) = value
                && crate::dsl::parse_duration(t).is_none()
            {
                return Err(format!("`integrations.jira.{key}`: `{t}` is not a duration; write e.g. `10s`"));
            }
        }
        Ok(())
    }
}

/// A Jira client for one site.
#[derive(Debug, Clone)]
pub struct Jira {
    config: JiraConfig,
    http: reqwest::Client,
    base: String,
}

impl Jira {
    pub fn new(config: JiraConfig) -> Jira {
        let timeout = config.timeout.as_deref().and_then(crate::dsl::parse_duration).unwrap_or(10_000);
        let http = crate::escalate::http::client(Duration::from_millis(timeout));
        let base = config.url.trim_end_matches('/').to_string();
        Jira { config, http, base }
    }

    pub fn config(&self) -> &JiraConfig {
        &self.config
    }

    fn api(&self, path: &str) -> String {
        let version = match self.config.flavor {
            Flavor::Cloud => 3,
            Flavor::Server => 2,
        };
        format!("{}/rest/api/{version}{path}", self.base)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, self.api(path)).header("Accept", "application/json");
        match (self.config.flavor, &self.config.email, &self.config.user) {
            (Flavor::Cloud, Some(email), _) => r.basic_auth(email, Some(self.config.token.expose())),
            (Flavor::Server, _, Some(user)) => r.basic_auth(user, Some(self.config.token.expose())),
            _ => r.bearer_auth(self.config.token.expose()),
        }
    }

    fn link(&self, key: &str) -> IssueLink {
        IssueLink { key: key.to_string(), url: format!("{}/browse/{key}", self.base) }
    }

    /// The project the issue goes to: the service's, the playbook's, the default.
    pub fn project_of(&self, p: &EscalationPackage) -> Option<String> {
        let service = p.package.service.as_ref().and_then(|s| s.catalog.as_ref()).and_then(|c| c.jira_project.clone());
        service.or_else(|| p.jira_project.clone()).or_else(|| self.config.project.clone()).filter(|k| !k.is_empty())
    }

    /// The create request for `p`, as it is sent (also what dry-run records).
    pub fn create_request(&self, p: &EscalationPackage) -> Result<Value, DeliveryError> {
        let project = self.project_of(p).ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "no Jira project for incident {}: set `jira/project-key` on the service, `l3 jira \"KEY\"` in the playbook, or `integrations.jira.project`",
                p.incident_key
            ))
        })?;
        let priority = self.config.priorities.get(&p.priority).cloned().unwrap_or_else(|| p.priority.clone());
        let mut labels = self.config.labels.clone();
        labels.push(p.incident_key.clone());
        let description = match self.config.flavor {
            Flavor::Cloud => adf::description(p),
            Flavor::Server => Value::String(wiki::description(p)),
        };
        let mut fields = json!({
            "project": { "key": project },
            "summary": p.title(),
            "issuetype": { "name": self.config.issue_type },
            "priority": { "name": priority },
            "labels": labels,
            "description": description,
        });
        if !self.config.components.is_empty() {
            fields["components"] = self.config.components.iter().map(|c| json!({ "name": c })).collect();
        }
        Ok(json!({ "fields": fields }))
    }

    /// The open issue labelled with `incident_key`, if one exists.
    pub async fn find_open(&self, incident_key: &str) -> Result<Option<IssueLink>, DeliveryError> {
        let jql = format!("labels = \"{incident_key}\" AND statusCategory != Done ORDER BY created ASC");
        let path = match self.config.flavor {
            Flavor::Cloud => "/search/jql",
            Flavor::Server => "/search",
        };
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("jql", &jql)
            .append_pair("fields", "summary,status,labels")
            .append_pair("maxResults", "5")
            .finish();
        let request = self.request(reqwest::Method::GET, &format!("{path}?{query}"));
        let (_, body) = send(request, "Jira (search)").await?;
        let key = body.get("issues").and_then(Value::as_array).and_then(|a| a.first()).and_then(|i| i.get("key"));
        Ok(key.and_then(Value::as_str).map(|k| self.link(k)))
    }

    /// Files the issue of `p`, unless an open one with its incident key exists (a retry of a
    /// create whose answer was lost); returns it either way.
    pub async fn open(&self, p: &EscalationPackage) -> Result<IssueLink, DeliveryError> {
        if let Some(found) = self.find_open(&p.incident_key).await? {
            return Ok(found);
        }
        let body = self.create_request(p)?;
        let request = self.request(reqwest::Method::POST, "/issue").json(&body);
        let lag = Duration::from_millis(crate::dsl::parse_duration(&self.config.search_lag).unwrap_or(30_000));
        let (_, answer) = send(request, "Jira (create issue)").await.map_err(|e| match e {
            // Jira may have filed it: the next attempt's search must be able to see it.
            DeliveryError::Retry { reason, after, ambiguous: true } => DeliveryError::Retry {
                reason: format!("{reason} (the issue may exist: the next attempt searches for it first)"),
                after: Some(after.unwrap_or_default().max(lag)),
                ambiguous: true,
            },
            other => other,
        })?;
        match answer.get("key").and_then(Value::as_str) {
            Some(key) => Ok(self.link(key)),
            None => Err(DeliveryError::retry(format!("Jira created an issue but its answer names no key: {answer}"))),
        }
    }

    /// The comment request body for `note`.
    pub fn comment_request(&self, note: &Note) -> Value {
        match self.config.flavor {
            Flavor::Cloud => json!({ "body": adf::note(note) }),
            Flavor::Server => json!({ "body": wiki::note(note) }),
        }
    }

    /// Comments `note` on `issue`.
    pub async fn comment(&self, issue: &str, note: &Note) -> Result<(), DeliveryError> {
        let request =
            self.request(reqwest::Method::POST, &format!("/issue/{issue}/comment")).json(&self.comment_request(note));
        send(request, "Jira (comment)").await.map(|_| ())
    }

    /// The incident resolved: applies the configured transition (when the issue can still
    /// take it), then comments; without a transition, only comments. The transition goes
    /// first because a retry finds it done and skips it, where a comment would be repeated.
    pub async fn resolve(&self, issue: &str, note: &Note) -> Result<(), DeliveryError> {
        match self.transition(issue).await {
            // A transition Jira refuses (a required screen field, a workflow condition) must
            // not keep the resolution from being said.
            Err(DeliveryError::Permanent(why)) => {
                tracing::warn!(issue, error = %why, "Jira refused the resolve transition; the resolution is commented only");
            }
            other => other?,
        }
        self.comment(issue, note).await
    }

    async fn transition(&self, issue: &str) -> Result<(), DeliveryError> {
        let Some(name) = &self.config.resolve_transition else { return Ok(()) };
        let (_, body) =
            send(self.request(reqwest::Method::GET, &format!("/issue/{issue}/transitions")), "Jira (transitions)")
                .await?;
        let transitions = body.get("transitions").and_then(Value::as_array).cloned().unwrap_or_default();
        let found = transitions
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name)));
        let Some(id) = found.and_then(|t| t.get("id")).and_then(Value::as_str) else {
            // Someone moved the issue already (it is Done, or in a status without that
            // transition): the comment says it resolved; nothing to force.
            let available: Vec<&str> =
                transitions.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect();
            tracing::warn!(issue, transition = %name, available = %available.join(", "), "the Jira issue cannot take the resolve transition from its status; left as it is");
            return Ok(());
        };
        let request = self
            .request(reqwest::Method::POST, &format!("/issue/{issue}/transitions"))
            .json(&json!({ "transition": { "id": id } }));
        send(request, "Jira (transition)").await.map(|_| ())
    }
}
