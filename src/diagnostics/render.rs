//! Rendering diagnostics: for people (miette's graphical report, coloured only when asked) and
//! for machines (one JSON object, the contract of `sparky check --format json`).

use super::{Diagnostic, Severity};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;
use std::fmt;

/// Output format of `sparky check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// miette's report; `colour` only when writing to a terminal.
    Human {
        colour: bool,
    },
    Json,
}

/// The summary of a check run, in the shape of the JSON contract.
#[derive(Debug, Serialize)]
pub struct Report {
    pub files: usize,
    pub playbooks: usize,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// One diagnostic in the JSON output.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub code: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub help: Option<String>,
}

impl Report {
    pub fn new(files: usize, playbooks: usize, diags: &[Diagnostic]) -> Self {
        let errors = diags.iter().filter(|d| d.severity() == Severity::Error).count();
        Report {
            files,
            playbooks,
            errors,
            warnings: diags.len() - errors,
            diagnostics: diags
                .iter()
                .map(|d| {
                    let (line, column) = d.line_col().map(|(l, c)| (Some(l), Some(c))).unwrap_or((None, None));
                    JsonDiagnostic {
                        code: d.code.as_str(),
                        severity: d.severity().as_str(),
                        message: d.message.clone(),
                        file: d.file.as_ref().map(|f| f.name.clone()),
                        line,
                        column,
                        help: d.help.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// The JSON object for a run.
pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Lines longer than this are not shown as a snippet: miette lays snippets out with
/// formatting widths that overflow on very long lines, and nobody reads such a line anyway.
const MAX_SNIPPET_LINE: usize = 1000;

/// Human-readable rendering of one diagnostic.
pub fn render_human(diag: &Diagnostic, colour: bool) -> String {
    let theme = if colour { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let view = View::new(diag);
    let mut out = String::new();
    // A renderer bug must never cost the user their diagnostics: fall back to one plain line.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.render_report(&mut out, &view)));
    if !matches!(rendered, Ok(Ok(()))) {
        out = plain(diag);
    }
    out
}

/// `error[E101]: message` with `--> file:line:column` and the help, without a snippet.
fn plain(diag: &Diagnostic) -> String {
    let mut out = format!("{}[{}]: {}\n", diag.severity().as_str(), diag.code.as_str(), diag.message);
    if let Some(file) = &diag.file {
        match diag.line_col() {
            Some((l, c)) => out.push_str(&format!("  --> {}:{l}:{c}\n", file.name)),
            None => out.push_str(&format!("  --> {}\n", file.name)),
        }
    }
    if let Some(help) = &diag.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// Whether every span of `diag` sits on a line short enough to show.
fn snippet_fits(diag: &Diagnostic) -> bool {
    let Some(file) = &diag.file else { return true };
    // Bytes, not chars: a span may end inside a character (a bad byte of a non-UTF-8 file).
    let line_len = |offset: usize| {
        let bytes = file.text.as_bytes();
        let offset = offset.min(bytes.len());
        let start = bytes[..offset].iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let end = bytes[offset..].iter().position(|b| *b == b'\n').map(|i| offset + i).unwrap_or(bytes.len());
        end - start
    };
    diag.primary.iter().chain(&diag.secondary).all(|(span, _)| {
        line_len(span.start) <= MAX_SNIPPET_LINE && line_len(span.end) <= MAX_SNIPPET_LINE && span.len() <= 64 * 1024
    })
}

/// Adapts a [`Diagnostic`] to miette's trait for rendering.
struct View<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<String>>,
}

impl<'a> View<'a> {
    fn new(diag: &'a Diagnostic) -> Self {
        let source = diag
            .file
            .as_ref()
            .filter(|_| snippet_fits(diag))
            .map(|f| NamedSource::new(&f.name, f.text.clone()).with_language("sparky"));
        View { diag, source }
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Without a snippet miette shows no file name: say where in the message.
        match (&self.diag.file, self.diag.line_col(), self.source.is_some()) {
            (Some(file), None, _) => write!(f, "{}: {}", file.name, self.diag.message),
            (Some(file), Some((line, col)), false) => write!(f, "{}:{line}:{col}: {}", file.name, self.diag.message),
            _ => f.write_str(&self.diag.message),
        }
    }
}

impl std::error::Error for View<'_> {}

impl miette::Diagnostic for View<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diag.primary.as_ref()?;
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let (span, label) = self.diag.primary.as_ref()?;
        let mut labels = vec![LabeledSpan::new_primary_with_span(non_empty(label), (span.start, span.len()))];
        labels.extend(
            self.diag.secondary.iter().map(|(s, l)| LabeledSpan::new_with_span(non_empty(l), (s.start, s.len()))),
        );
        Some(Box::new(labels.into_iter()))
    }
}

fn non_empty(label: &str) -> Option<String> {
    if label.is_empty() { None } else { Some(label.to_string()) }
}
