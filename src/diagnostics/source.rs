//! Source files and byte spans, with line/column lookup for people.

use std::sync::Arc;

/// A half-open byte range `start..end` in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end: end.max(start) }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(s: pest::Span<'_>) -> Self {
        Span::new(s.start(), s.end())
    }
}

/// A file as read from disk (or embedded), named as the user named it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as given on the command line (or `stdlib/<file>` for embedded files).
    pub name: String,
    pub text: String,
    /// For a file that is not UTF-8: the offset of its first invalid byte (`text` then holds
    /// a lossy copy, for display only).
    pub invalid_utf8_at: Option<usize>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Arc::new(SourceFile { name: name.into(), text, invalid_utf8_at: None, line_starts })
    }

    /// A file whose bytes are not UTF-8: `lossy` is its text with replacement characters,
    /// `at` the offset of the first bad byte.
    pub fn new_invalid_utf8(name: impl Into<String>, lossy: String, at: usize) -> Arc<Self> {
        let mut file = SourceFile::new(name, lossy);
        if let Some(f) = Arc::get_mut(&mut file) {
            f.invalid_utf8_at = Some(at);
        }
        file
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text.get(start..offset).map(|s| s.chars().count()).unwrap_or(offset - start);
        (line + 1, col + 1)
    }

    /// The text of a span.
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let f = SourceFile::new("x", "ab\ncdé\nf");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
    }
}
