//! Sparky's standard library (`stdlib/`), written in the language and in rhai, embedded in
//! the binary so that every playbook can use it without configuration.

use crate::diagnostics::SourceFile;
use std::sync::{Arc, OnceLock};

/// The embedded files, by the name diagnostics show.
pub const SOURCES: &[(&str, &str)] = &[
    ("stdlib/lists.sparky", include_str!("../../stdlib/lists.sparky")),
    ("stdlib/helpers.sparky", include_str!("../../stdlib/helpers.sparky")),
];

/// The standard library's files, read once.
pub fn files() -> &'static [Arc<SourceFile>] {
    static FILES: OnceLock<Vec<Arc<SourceFile>>> = OnceLock::new();
    FILES.get_or_init(|| SOURCES.iter().map(|(name, text)| SourceFile::new(*name, *text)).collect())
}
