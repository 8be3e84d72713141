//! Carrying one [`FixOrder`] out: what the delivery worker does with a `github` outbox row.
//! In order — the pull request of the incident's branch first (one a person closed or
//! merged is their answer: nothing is pushed again), the base branch, the fix branch made
//! and pushed off the runtime ([`pr::prepare`]: clone, generator, pinned test, the
//! repository's tests, one commit), then the pull request opened or updated. A fix whose
//! tests fail is opened as a draft and escalated with the attempt; a fix the generator
//! refuses is escalated with the reason; so is one whose branch someone else committed to
//! and that has no pull request. Git and GitHub faults come back as retries, but a
//! repository that does not exist and a panic, which are permanent.

use super::github::{GitHub, GitHubConfig, PullRequest, PullRequestSpec};
use super::order::FixOrder;
use super::pr::{self, PrepareError, TestRun, Workspace};
use crate::actions::Mode;
use crate::escalate::http::DeliveryError;
use serde_json::{Value, json};
use std::time::Duration;

/// GitHub as L2 uses it.
pub struct Pulls {
    config: GitHubConfig,
    mode: Mode,
    github: GitHub,
}

impl std::fmt::Debug for Pulls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pulls").field("mode", &self.mode).finish_non_exhaustive()
    }
}

/// What carrying a fix out came to.
#[derive(Debug, Clone, PartialEq)]
pub enum FixResult {
    /// GitHub is in dry-run: what would have been done.
    DryRun(Value),
    /// The pull request is open (or was updated); a draft when the tests failed.
    Opened {
        pull: PullRequest,
        created: bool,
        ready: bool,
        generator: String,
        commit: String,
        tests: Option<TestRun>,
        notes: Vec<String>,
    },
    /// A person closed or merged this incident's pull request already.
    Answered { pull: PullRequest },
    /// No fix was made: the reason, for the escalation.
    Refused { reason: String },
    /// GitHub or git refused for good, or Sparky gave up retrying
    /// (`integrations.github.max_attempts`): escalated with the reason.
    Failed { reason: String },
}

impl FixResult {
    /// `open`, `draft`, `merged`, `closed`, `refused`, `dry_run`: the `fix_pulls` state.
    pub fn state(&self) -> &'static str {
        match self {
            FixResult::DryRun(_) => "dry_run",
            FixResult::Opened { ready: true, .. } => "open",
            FixResult::Opened { .. } => "draft",
            FixResult::Answered { pull } if pull.merged => "merged",
            FixResult::Answered { .. } => "closed",
            FixResult::Refused { .. } => "refused",
            FixResult::Failed { .. } => "failed",
        }
    }
}

impl Pulls {
    pub fn new(config: &GitHubConfig, global: Mode) -> Pulls {
        let timeout = config.duration(&config.timeout);
        Pulls {
            github: GitHub::new(&config.api, config.token.expose(), timeout),
            mode: config.mode.unwrap_or(global),
            config: config.clone(),
        }
    }

    /// The longest one attempt can take (the clone and push, the tests, the API calls): how
    /// long a replica holds the outbox row it works on.
    pub fn longest_attempt(&self) -> Duration {
        let c = &self.config;
        c.duration(&c.test_timeout) + c.duration(&c.git_timeout) * 3 + c.duration(&c.timeout) * 6
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many attempts a fix gets before Sparky gives up on it and escalates.
    pub fn max_attempts(&self) -> u32 {
        self.config.max_attempts
    }

    fn reviewers(&self, order: &FixOrder) -> (Vec<String>, Vec<String>) {
        let mut users = order.reviewers.users.clone();
        // GitHub takes a team's slug without its organization.
        let teams: Vec<String> =
            order.reviewers.teams.iter().map(|t| t.rsplit('/').next().unwrap_or(t).to_string()).collect();
        if users.is_empty() && teams.is_empty() {
            users = self.config.reviewers.clone();
        }
        (users, teams)
    }

    /// Carries `order` out (or, in dry-run, says what it would do).
    pub async fn carry_out(&self, order: &FixOrder) -> Result<FixResult, DeliveryError> {
        let Some(repo) = order.repo.clone() else {
            return Ok(FixResult::Refused {
                reason: format!(
                    "the catalog gives {} no `github.com/project-slug`, and the proposal names no repository: Sparky does not know where to open the fix",
                    order.service.as_deref().map_or("the event's service".to_string(), |s| format!("`{s}`"))
                ),
            });
        };
        let branch = order.branch();
        let (reviewers, teams) = self.reviewers(order);
        if self.mode == Mode::DryRun {
            return Ok(FixResult::DryRun(json!({
                "repo": repo,
                "clone_url": super::git::redact(&self.config.clone_url_of(&repo)),
                "head": branch,
                "base": self.config.base.as_deref().unwrap_or("(the repository's default branch)"),
                "title": format!("Sparky L2 Fix: {}", order.fix.summary),
                "generator": order.fix.generator,
                "args": order.fix.args,
                "proposal": order.fix.proposal,
                "test_command": order.test_command,
                "reviewers": reviewers,
                "team_reviewers": teams,
                "labels": self.config.labels,
            })));
        }
        // A person's answer stands: a merged or closed pull request is never pushed to again.
        let existing = self.github.find(&repo, &branch).await?;
        if let Some(p) = &existing
            && p.state != "open"
        {
            return Ok(FixResult::Answered { pull: p.clone() });
        }
        let base = match &self.config.base {
            Some(b) => b.clone(),
            None => self.github.default_branch(&repo).await?,
        };
        let ws = Workspace {
            clone_dir: self.config.clone_dir.clone(),
            remote: self.config.clone_url_of(&repo),
            token: Some(self.config.token.expose().to_string()).filter(|t| !t.is_empty()),
            base: base.clone(),
            test_command: order.test_command.clone(),
            test_timeout: self.config.duration(&self.config.test_timeout),
            git_timeout: self.config.duration(&self.config.git_timeout),
            author_name: self.config.author_name.clone(),
            author_email: self.config.author_email.clone(),
        };
        let request = order.request();
        let prepared = {
            let request = request.clone();
            tokio::task::spawn_blocking(move || pr::prepare(&ws, &request)).await
        };
        let prepared = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(PrepareError::Refused(e))) => return Ok(FixResult::Refused { reason: e.0 }),
            Ok(Err(PrepareError::Failed(e))) if super::git::is_permanent(&e.0) => {
                return Err(DeliveryError::Permanent(format!(
                    "the repository cannot be cloned from `{}`: {e} — check the catalog's `github.com/project-slug` and that the token may read it",
                    super::git::redact(&self.config.clone_url_of(&repo))
                )));
            }
            Ok(Err(PrepareError::Failed(e))) => {
                return Err(DeliveryError::retry(format!("the fix branch could not be pushed: {e}")));
            }
            Ok(Err(PrepareError::Taken { head, authors })) => {
                return Ok(match existing {
                    // Someone works on Sparky's pull request: it stays as they left it.
                    Some(pull) => FixResult::Opened {
                        ready: !pull.draft,
                        pull,
                        created: false,
                        generator: order.fix.generator.clone(),
                        commit: head,
                        tests: None,
                        notes: vec![format!(
                            "the branch `{branch}` has commits by {authors} since Sparky pushed it: Sparky left the branch and the pull request as they are"
                        )],
                    },
                    None => FixResult::Refused {
                        reason: format!(
                            "the branch `{branch}` already exists in `{repo}` with commits by {authors}: Sparky does not push over other people's work"
                        ),
                    },
                });
            }
            // A panic is a bug in Sparky: trying again would do the same.
            Err(e) => {
                return Err(DeliveryError::Permanent(format!("the fix branch's work stopped (a bug in Sparky): {e}")));
            }
        };
        let ready = prepared.tests.as_ref().is_none_or(|t| t.passed);
        let mut body = pr::body(&prepared, &request, order.root_cause().as_deref(), &order.evidence());
        if !ready {
            body.insert_str(
                0,
                "> [!WARNING]\n> The repository's tests failed on this branch: Sparky opened it as a draft and escalated the incident. It is here for the record and a head start, not for merging as is.\n\n",
            );
        }
        body.push_str(&format!(
            "\n<details><summary>What Sparky knew when it decided (the context package)</summary>\n\n{}\n</details>\n",
            order.package.to_markdown()
        ));
        let spec = PullRequestSpec {
            repo: repo.clone(),
            head: prepared.branch.clone(),
            base,
            title: format!("Sparky L2 Fix: {}", prepared.change.title),
            body: crate::escalate::package::truncate(&body, 60_000),
            reviewers,
            team_reviewers: teams,
            labels: self.config.labels.clone(),
            draft: !ready,
        };
        let opened = self.github.open_pull_request(&spec).await?;
        if opened.pull.state != "open" {
            return Ok(FixResult::Answered { pull: opened.pull });
        }
        Ok(FixResult::Opened {
            pull: opened.pull,
            created: opened.created,
            ready,
            generator: prepared.change.generator,
            commit: prepared.commit,
            tests: prepared.tests,
            notes: opened.notes,
        })
    }
}
