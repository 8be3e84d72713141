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

/// A remote model, with the built-in rules as the fallback.
pub struct RemoteAnalyzer {
    remote: remote::Remote,
}

impl RemoteAnalyzer {
    pub fn new(remote: remote::Remote) -> RemoteAnalyzer {
        RemoteAnalyzer { remote }
    }
}

impl Analyzer for RemoteAnalyzer {
    fn name(&self) -> String {
        format!("remote {}", self.remote.model())
    }
    fn analyze<'a>(&'a self, input: &'a Input<'a>) -> Answer<'a> {
        Box::pin(async move {
            let prompt = package::Package::assemble(input.event, input.knowledge, None, None, input.now);
            let prompt = serde_json::to_value(&prompt).unwrap_or_default();
            match self.remote.ask(&prompt).await {
                Ok(analysis) => analysis,
                Err(e) => {
                    tracing::warn!(error = %e, model = self.remote.model(), "the remote analyzer failed; the built-in analyzer answers");
                    let mut fallback = builtin::analyze(input);
                    fallback.notes.push(format!(
                        "the remote analyzer ({}) failed: {e}; the built-in analyzer answered instead",
                        self.remote.model()
                    ));
                    fallback
                }
            }
        })
    }
}
