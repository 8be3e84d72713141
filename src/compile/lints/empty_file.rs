//! `W309 EmptyFile`.
//!
//! **What it does.** Flags a `.sparky` file that holds no playbook, list or helper (only
//! comments, or nothing).
//!
//! **Why it matters.** Usually a playbook was deleted or commented out by mistake, or a file
//! was created and never written. Sparky would load it and do nothing.
//!
//! **Example.** A file whose whole text is `// TODO: restart playbook`.

use crate::diagnostics::{Code, Diagnostic, SourceFile};
use std::sync::Arc;

pub(crate) fn check(file: &Arc<SourceFile>) -> Diagnostic {
    Diagnostic::new(Code::EmptyFile, "this file holds no playbook, list or helper")
        .in_file(file)
        .with_help("write a playbook in it, or delete the file")
}
