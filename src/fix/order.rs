//! The order that carries an L2 decision out: the planned fix and what the catalog said when
//! Sparky decided — the repository, its test command, who reviews — with the context package
//! the pull request's description renders. Written to the outbox (`github` / `open`) in the
//! decision's transaction and delivered by the delivery worker, so a restart never loses
//! or doubles it; frozen like the escalation package, so the pull request tells what Sparky
//! knew when it decided.

use super::FixRequest;
use crate::analysis::package::Package;
use crate::event::Event;
use crate::knowledge::catalog::{Catalog, Reviewers};
use crate::triage::{Decision, Level, PlannedFix};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixOrder {
    pub incident_key: String,
    pub playbook: Option<String>,
    pub service: Option<String>,
    pub fix: PlannedFix,
    /// `owner/repo`: the service's `github.com/project-slug`, else the repository the blamed
    /// deploy names.
    pub repo: Option<String>,
    /// Where `repo` was read: `catalog`, `deploy`.
    #[serde(default)]
    pub repo_from: Option<String>,
    /// `sparky.dev/test-command`, run on the fix branch.
    pub test_command: Option<String>,
    /// The on-call engineer (or the owning team) on GitHub.
    pub reviewers: Reviewers,
    pub package: Package,
}

impl FixOrder {
    /// The order of an L2 decision that opens its incident; `None` for any other decision.
    pub fn of_decision(event: &Event, decision: &Decision, catalog: &Catalog, package: Package) -> Option<FixOrder> {
        if decision.level != Level::L2 {
            return None;
        }
        let change = decision.incident.as_ref().filter(|c| c.effect == crate::triage::IncidentEffect::Open)?;
        let fix = decision.fix.clone()?;
        let service = event.service.clone().filter(|s| !s.is_empty());
        let entry = service.as_deref().and_then(|s| catalog.service(s));
        let from_deploy = fix
            .proposal
            .get("repository")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|r| crate::knowledge::catalog::is_project_slug(r));
        let (repo, repo_from) = match (entry.and_then(|s| s.repo.clone()), from_deploy) {
            (Some(r), _) => (Some(r), Some("catalog".to_string())),
            (None, Some(r)) => (Some(r.to_string()), Some("deploy".to_string())),
            (None, None) => (None, None),
        };
        Some(FixOrder {
            incident_key: change.key.clone(),
            playbook: decision.playbook.clone(),
            service: service.clone(),
            fix,
            repo,
            repo_from,
            test_command: entry.and_then(|s| s.test_command.clone()).filter(|c| !c.trim().is_empty()),
            reviewers: service.as_deref().map(|s| catalog.reviewers(s)).unwrap_or_default(),
            package,
        })
    }

    /// What the generator is asked for.
    pub fn request(&self) -> FixRequest {
        FixRequest { incident_key: self.incident_key.clone(), service: self.service.clone(), fix: self.fix.clone() }
    }

    pub fn branch(&self) -> String {
        super::pr::branch_of(&self.incident_key)
    }

    /// The analysis's root cause, when it names one.
    pub fn root_cause(&self) -> Option<String> {
        let a = self.package.analysis.as_ref()?;
        a.root_cause.clone().map(|c| format!("{c} (confidence {:.0}%, {}).", a.confidence, a.analyzer))
    }

    /// The evidence the pull request lists: the analysis's facts, then the event's links (the
    /// alert, dashboards, runbook) and the recent deploys, each a Markdown line.
    pub fn evidence(&self) -> Vec<String> {
        let mut out: Vec<String> = self.package.analysis.iter().flat_map(|a| a.evidence.iter().cloned()).collect();
        out.push(format!(
            "the event: {} ({}, {})",
            self.package.event.summary.trim(),
            self.package.event.source,
            self.package.event.occurred_at.to_rfc3339()
        ));
        for l in &self.package.links {
            out.push(format!("[{}]({})", l.rel, l.url));
        }
        for d in self.package.recent_deploys.iter().take(3) {
            let what = d.version.as_deref().or(d.commit.as_deref()).unwrap_or(d.key.as_str());
            let link = d.url.as_deref().map(|u| format!(" ([deploy]({u}))")).unwrap_or_default();
            out.push(format!("deploy of `{what}` to {} at {}{link}", d.service, d.at.to_rfc3339()));
        }
        out
    }
}
