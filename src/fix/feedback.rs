//! What people made of Sparky's pull requests: a GitHub `pull_request` webhook on a
//! `sparky/<incident-key>` branch that was merged, closed without merging or reopened; and
//! the acceptance rate of each generator and playbook it adds up to (merged ÷ answered). The
//! daemon records feedback with the webhook's decision; `sparky replay` tallies it from the
//! replayed events the same way.

use crate::event::Event;
use serde::Serialize;
use std::collections::BTreeMap;

/// A person's answer to a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Merged,
    /// Closed without merging: the fix was not accepted.
    Closed,
    /// Reopened after a close: not answered any more.
    Reopened,
}

/// A `pull_request` webhook about one of Sparky's branches: a branch `sparky/<incident-key>`
/// of the repository itself (the same branch name on a fork is someone else's and says
/// nothing about Sparky's fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// `owner/repo`.
    pub repo: String,
    pub branch: String,
    pub incident_key: String,
    pub number: Option<u64>,
    pub url: Option<String>,
    pub answer: Answer,
    /// Who merged or closed it (the webhook's sender).
    pub by: Option<String>,
    /// The pull request is a draft (a reopened draft waits as a draft).
    pub draft: bool,
}

impl Feedback {
    /// The feedback a normalized GitHub event carries, if it is one.
    pub fn of(event: &Event) -> Option<Feedback> {
        let label = |k: &str| event.labels.get(k).map(String::as_str);
        if event.source != "github" || label("event") != Some("pull_request") {
            return None;
        }
        let branch = label("head")?;
        let incident_key = branch.strip_prefix("sparky/").filter(|k| k.starts_with("SPK-") && k.len() <= 64)?;
        let answer = match (label("action")?, label("merged")) {
            ("closed", Some("true")) => Answer::Merged,
            ("closed", _) => Answer::Closed,
            ("reopened", _) => Answer::Reopened,
            _ => return None,
        };
        let repo = label("repository")?;
        if !label("head_repository").is_some_and(|h| h.eq_ignore_ascii_case(repo)) {
            return None;
        }
        Some(Feedback {
            repo: repo.to_string(),
            branch: branch.to_string(),
            incident_key: incident_key.to_string(),
            number: label("number").and_then(|n| n.parse().ok()),
            url: event.links.iter().find(|l| l.rel == "source").map(|l| l.url.clone()),
            answer,
            by: label("sender").map(str::to_string),
            draft: label("draft") == Some("true"),
        })
    }

    /// The `fix_pulls` state the answer leads to: `merged`, `closed`, or back to `open`
    /// (`draft`) when reopened.
    pub fn state(&self) -> &'static str {
        match self.answer {
            Answer::Merged => "merged",
            Answer::Closed => "closed",
            Answer::Reopened if self.draft => "draft",
            Answer::Reopened => "open",
        }
    }

    /// One line for the incident's issue and the decision's reasons.
    pub fn headline(&self) -> String {
        let pr = self
            .number
            .map_or_else(|| format!("the pull request on `{}`", self.branch), |n| format!("pull request #{n}"));
        let by = self.by.as_deref().map(|b| format!(" by @{b}")).unwrap_or_default();
        match self.answer {
            Answer::Merged => format!("{pr} was merged{by}: the fix was accepted"),
            Answer::Closed => format!("{pr} was closed without merging{by}: the fix was not accepted"),
            Answer::Reopened => format!("{pr} was reopened{by}: it waits for review again"),
        }
    }
}

/// The fixes of one generator or playbook, by what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Every L2 fix carried out (or planned, in dry-run).
    pub proposed: u64,
    /// Waiting to be carried out.
    pub pending: u64,
    /// Rendered only (GitHub in dry-run).
    pub dry_run: u64,
    /// The generator would not make the change: escalated instead.
    pub refused: u64,
    /// GitHub refused the branch or the pull request for good (or Sparky gave up retrying):
    /// escalated instead.
    pub failed: u64,
    /// Open for review, and open as a draft (its tests failed).
    pub open: u64,
    pub draft: u64,
    pub merged: u64,
    /// Closed without merging.
    pub closed: u64,
}

impl Tally {
    fn add(&mut self, state: &str, n: u64) {
        self.proposed += n;
        match state {
            "pending" => self.pending += n,
            "dry_run" => self.dry_run += n,
            "refused" => self.refused += n,
            "failed" => self.failed += n,
            "draft" => self.draft += n,
            "merged" => self.merged += n,
            "closed" => self.closed += n,
            _ => self.open += n,
        }
    }

    /// Merged ÷ (merged + closed without merging), percent; `None` before any answer.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let answered = self.merged + self.closed;
        (answered > 0).then(|| self.merged as f64 * 100.0 / answered as f64)
    }

    /// `1 of 2 answered merged (50.0%), 1 open` — for people.
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.acceptance_rate() {
            Some(r) => format!("{} of {} answered merged ({r:.1}%)", self.merged, self.merged + self.closed),
            None => "none answered yet".to_string(),
        }];
        for (n, what) in [
            (self.open, "open"),
            (self.draft, "draft (tests failed)"),
            (self.refused, "refused"),
            (self.failed, "failed"),
            (self.pending, "pending"),
            (self.dry_run, "dry-run"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }

    fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).expect("a tally serializes");
        v["acceptance_rate"] = serde_json::json!(self.acceptance_rate().map(|r| (r * 10.0).round() / 10.0));
        v
    }
}

/// Every L2 fix, overall and by generator and playbook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acceptance {
    pub all: Tally,
    pub by_generator: BTreeMap<String, Tally>,
    pub by_playbook: BTreeMap<String, Tally>,
}

impl Acceptance {
    /// Counts `n` fixes of `generator` (proposed by `playbook`, `-` for none) in `state`.
    pub fn add(&mut self, generator: &str, playbook: Option<&str>, state: &str, n: u64) {
        self.all.add(state, n);
        self.by_generator.entry(generator.to_string()).or_default().add(state, n);
        self.by_playbook.entry(playbook.unwrap_or("-").to_string()).or_default().add(state, n);
    }

    pub fn is_empty(&self) -> bool {
        self.all.proposed == 0
    }

    /// As the status API and `sparky replay --format json` show it.
    pub fn to_json(&self) -> serde_json::Value {
        let map = |m: &BTreeMap<String, Tally>| -> serde_json::Map<String, serde_json::Value> {
            m.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()
        };
        serde_json::json!({
            "all": self.all.to_json(),
            "by_generator": map(&self.by_generator),
            "by_playbook": map(&self.by_playbook),
        })
    }

    /// The lines `sparky replay` prints.
    pub fn describe(&self) -> String {
        let mut out = format!("L2 fixes: {} proposed; {}\n", self.all.proposed, self.all.describe());
        for (title, m) in [("by generator", &self.by_generator), ("by playbook", &self.by_playbook)] {
            out.push_str(&format!("  {title}:\n"));
            for (k, t) in m {
                out.push_str(&format!("    {k:<20} {} proposed; {}\n", t.proposed, t.describe()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Kind, Severity, Status};

    fn event(action: &str, merged: bool, head: &str) -> Event {
        let labels = [
            ("event", "pull_request"),
            ("action", action),
            ("merged", if merged { "true" } else { "false" }),
            ("head", head),
            ("repository", "acme/pricing"),
            ("head_repository", "acme/pricing"),
            ("number", "7"),
            ("sender", "dana"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Event {
            id: "e".into(),
            source: "github".into(),
            kind: Kind::Change,
            status: Status::Info,
            fingerprint: "github/acme/pricing/pull/7".into(),
            service: Some("pricing".into()),
            severity: Severity::Info,
            summary: "pull request".into(),
            labels,
            annotations: Default::default(),
            links: Vec::new(),
            occurred_at: Default::default(),
            received_at: Default::default(),
            delivery_id: None,
            payload: serde_json::Value::Null,
        }
    }

    #[test]
    fn only_answers_on_sparky_branches_are_feedback() {
        let f = Feedback::of(&event("closed", true, "sparky/SPK-0123456789ab")).unwrap();
        assert_eq!((f.answer, f.incident_key.as_str(), f.number), (Answer::Merged, "SPK-0123456789ab", Some(7)));
        assert_eq!(f.headline(), "pull request #7 was merged by @dana: the fix was accepted");
        assert_eq!(Feedback::of(&event("closed", false, "sparky/SPK-1")).unwrap().answer, Answer::Closed);
        assert_eq!(Feedback::of(&event("reopened", false, "sparky/SPK-1")).unwrap().answer, Answer::Reopened);
        for (action, head) in [("opened", "sparky/SPK-1"), ("closed", "feature/x"), ("closed", "sparky/other")] {
            assert_eq!(Feedback::of(&event(action, true, head)), None, "{action} {head}");
        }
        let mut other = event("closed", true, "sparky/SPK-1");
        other.source = "generic".into();
        assert_eq!(Feedback::of(&other), None);
    }

    #[test]
    fn a_forks_branch_of_the_same_name_is_not_feedback() {
        let mut fork = event("closed", true, "sparky/SPK-0123456789ab");
        fork.labels.insert("head_repository".into(), "mallory/pricing".into());
        assert_eq!(Feedback::of(&fork), None);
        // A deleted fork: GitHub sends no head repository.
        fork.labels.remove("head_repository");
        assert_eq!(Feedback::of(&fork), None);
        // Names are case-insensitive on GitHub.
        fork.labels.insert("head_repository".into(), "Acme/Pricing".into());
        assert_eq!(Feedback::of(&fork).unwrap().state(), "merged");
    }

    #[test]
    fn a_reopened_draft_waits_as_a_draft() {
        let mut e = event("reopened", false, "sparky/SPK-1");
        assert_eq!(Feedback::of(&e).unwrap().state(), "open");
        e.labels.insert("draft".into(), "true".into());
        assert_eq!(Feedback::of(&e).unwrap().state(), "draft");
    }

    #[test]
    fn acceptance_is_merged_over_answered() {
        let mut a = Acceptance::default();
        a.add("revert", Some("PB-001"), "merged", 3);
        a.add("revert", Some("PB-001"), "closed", 1);
        a.add("memory_limit", None, "open", 2);
        assert_eq!(a.all.acceptance_rate(), Some(75.0));
        assert_eq!(a.by_generator["memory_limit"].acceptance_rate(), None);
        assert_eq!(a.all.describe(), "3 of 4 answered merged (75.0%), 2 open");
        assert_eq!(a.to_json()["by_playbook"]["-"]["proposed"], 2);
        assert_eq!(a.to_json()["all"]["acceptance_rate"], 75.0);
    }
}
