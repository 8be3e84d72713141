//! The analyzer ("Cerebro"): given an event and its context, the likely root cause, a
//! confidence, the predicted impact, and a fix proposal that L2 can act on (or none).
//!
//! Two implementations of [`Analyzer`]:
//! - [`Builtin`] ([`builtin`]): deterministic rules over the knowledge snapshot, each with the
//!   evidence it used;
//! - [`RemoteAnalyzer`] ([`remote`]): an OpenAI-compatible chat-completions endpoint prompted
//!   with the context package ([`package`]), its answer validated against a JSON schema. A
//!   timeout, an error or an invalid answer falls back to the built-in analyzer, and the
//!   analysis says so in its `notes`.
//!
//! Analysis is the one costly part of the context: triage asks for it only when no L1
//! applies and an analysis could turn an L3 into an L2 (`triage::decide_lazily`).

pub mod builtin;
pub mod package;
pub mod remote;

use crate::event::Event;
use crate::knowledge::Knowledge;
use crate::triage::Analysis;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;

/// What an analyzer reads: the event (its service resolved) and the knowledge around it.
pub struct Input<'a> {
    pub event: &'a Event,
    pub knowledge: &'a Knowledge,
    pub now: DateTime<Utc>,
}

/// The answer of an analyzer, when it comes.
pub type Answer<'a> = Pin<Box<dyn Future<Output = Analysis> + Send + 'a>>;

/// analyze(event, context) → root cause, confidence, impact, fix proposal.
pub trait Analyzer: Send + Sync {
    /// How the analyzer is named in traces and metrics (`builtin`, `remote <model>`).
    fn name(&self) -> String;
    /// Always answers: an analyzer that cannot says so in the analysis it returns.
    fn analyze<'a>(&'a self, input: &'a Input<'a>) -> Answer<'a>;
}

/// The built-in rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Builtin;

impl Analyzer for Builtin {
    fn name(&self) -> String {
        "builtin".into()
    }
    fn analyze<'a>(&'a self, input: &'a Input<'a>) -> Answer<'a> {
        Box::pin(std::future::ready(builtin::analyze(input)))
    }
}

/// How long the remote analyzer is left alone after it failed: meanwhile the built-in rules
/// answer at once, so a hung endpoint costs one timeout per pause, not one per event (the
/// daemon decides events one after another).
pub const REMOTE_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// A remote model, with the built-in rules as the fallback.
pub struct RemoteAnalyzer {
    remote: remote::Remote,
    /// Until when the remote is not asked, after a failure.
    paused_until: std::sync::Mutex<Option<std::time::Instant>>,
    pause: std::time::Duration,
}

impl RemoteAnalyzer {
    pub fn new(remote: remote::Remote) -> RemoteAnalyzer {
        RemoteAnalyzer::with_pause(remote, REMOTE_PAUSE)
    }

    /// With another pause after a failure (tests).
    pub fn with_pause(remote: remote::Remote, pause: std::time::Duration) -> RemoteAnalyzer {
        RemoteAnalyzer { remote, paused_until: std::sync::Mutex::new(None), pause }
    }

    fn paused(&self) -> Option<std::time::Duration> {
        let until = (*self.paused_until.lock().unwrap_or_else(|e| e.into_inner()))?;
        until.checked_duration_since(std::time::Instant::now())
    }

    fn set_paused(&self, failed: bool) {
        let mut until = self.paused_until.lock().unwrap_or_else(|e| e.into_inner());
        *until = failed.then(|| std::time::Instant::now() + self.pause);
    }

    fn fallback(&self, input: &Input<'_>, why: String) -> Analysis {
        let mut analysis = builtin::analyze(input);
        analysis.notes.push(why);
        analysis
    }
}

impl Analyzer for RemoteAnalyzer {
    fn name(&self) -> String {
        format!("remote {}", self.remote.model())
    }
    fn analyze<'a>(&'a self, input: &'a Input<'a>) -> Answer<'a> {
        Box::pin(async move {
            let model = self.remote.model();
            if let Some(left) = self.paused() {
                let why = format!(
                    "the remote analyzer ({model}) failed recently and is not asked for another {}s; the built-in analyzer answered instead",
                    left.as_secs().max(1)
                );
                return self.fallback(input, why);
            }
            let prompt = package::Package::assemble(input.event, input.knowledge, None, None, input.now);
            let prompt = serde_json::to_value(&prompt).unwrap_or_default();
            match self.remote.ask(&prompt).await {
                Ok(analysis) => {
                    self.set_paused(false);
                    analysis
                }
                Err(e) => {
                    self.set_paused(true);
                    tracing::warn!(error = %e, model, pause_s = self.pause.as_secs(), "the remote analyzer failed; the built-in analyzer answers until it is asked again");
                    self.fallback(
                        input,
                        format!("the remote analyzer ({model}) failed: {e}; the built-in analyzer answered instead"),
                    )
                }
            }
        })
    }
}
