//! Diagnostics: the one error/warning type every stage reports with.
//!
//! A [`Diagnostic`] has a stable [`Code`] (see `codes.rs`; never reuse one), a message written
//! for people (lowercase, no trailing period, user input in backticks), an optional primary
//! label on the culprit, secondary labels, and a `help` that says what to do. Rendering lives in
//! `render.rs` (human, with or without colour, and JSON).

mod codes;
mod render;
mod source;
mod text;

pub use codes::{Code, Severity};
pub use render::{Format, Report, render_human, render_json};
pub use source::{SourceFile, Span};
pub use text::{as_fragment, quoted_list};

use std::sync::Arc;

/// One problem found in the user's input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The file the problem is in, when it is in one.
    pub file: Option<Arc<SourceFile>>,
    /// Where in the file, with the text of the primary label.
    pub primary: Option<(Span, String)>,
    /// Other places worth seeing (the first definition of a duplicate, ...).
    pub secondary: Vec<(Span, String)>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new diagnostic with a code and message; add the place with [`Diagnostic::at`].
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { code, message: message.into(), file: None, primary: None, secondary: Vec::new(), help: None }
    }

    /// Points the diagnostic at `span` in `file`, with a label.
    pub fn at(mut self, file: &Arc<SourceFile>, span: Span, label: impl Into<String>) -> Self {
        self.file = Some(file.clone());
        self.primary = Some((span, label.into()));
        self
    }

    /// Names the file without pointing at a place in it.
    pub fn in_file(mut self, file: &Arc<SourceFile>) -> Self {
        self.file = Some(file.clone());
        self
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Appends a "did you mean" suggestion to the help when one of `candidates` is close.
    pub fn suggest<'a>(self, typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(typed, candidates) {
            Some(best) => {
                let hint = format!("did you mean `{best}`?");
                let help = match &self.help {
                    Some(h) => format!("{hint} {h}"),
                    None => hint,
                };
                self.with_help(help)
            }
            None => self,
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// 1-based line and column of the primary span, when there is one.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        let file = self.file.as_ref()?;
        let (span, _) = self.primary.as_ref()?;
        Some(file.line_col(span.start))
    }
}

/// The closest of `candidates` to `typed`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed_lower = typed.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| *c != typed)
        .map(|c| (c, strsim::damerau_levenshtein(&typed_lower, &c.to_ascii_lowercase())))
        .filter(|(c, d)| {
            let limit = (c.len().max(typed.len()) / 3).max(1);
            *d <= limit
        })
        .min_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)))
        .map(|(c, _)| c)
}

/// Sorts diagnostics by file, position and code so that output is stable.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let fa = a.file.as_ref().map(|f| f.name.as_str()).unwrap_or("");
        let fb = b.file.as_ref().map(|f| f.name.as_str()).unwrap_or("");
        let pa = a.primary.as_ref().map(|p| p.0.start).unwrap_or(0);
        let pb = b.primary.as_ref().map(|p| p.0.start).unwrap_or(0);
        fa.cmp(fb).then(pa.cmp(&pb)).then(a.code.as_str().cmp(b.code.as_str()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_finds_near_names_only() {
        let names = ["k8s.delete_pod", "k8s.scale", "redis.delete_keys"];
        assert_eq!(did_you_mean("k8s.delete_pods", names), Some("k8s.delete_pod"));
        assert_eq!(did_you_mean("k8s.scael", names), Some("k8s.scale"));
        assert_eq!(did_you_mean("launch_missiles", names), None);
    }
}
