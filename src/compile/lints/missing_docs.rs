//! `W308 MissingDocs`.
//!
//! **What it does.** Flags a playbook with no `///` documentation.
//!
//! **Why it matters.** The playbook file is also its document: the on-call engineer reading a
//! decision at 3 a.m. needs to know what the playbook is for, when it applies, the exact
//! steps and how success is verified, without reading the code.
//!
//! **Example.** `playbook PB-009 "Restart" { ... }` with no `///` lines above it.

use crate::compile::model::CompiledPlaybook;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(pb: &CompiledPlaybook) -> Option<Diagnostic> {
    if !pb.ast.docs.is_empty() {
        return None;
    }
    Some(
        Diagnostic::new(Code::MissingDocs, format!("`{}` has no documentation", pb.id))
            .at(&pb.file, pb.ast.id.span, "undocumented")
            .with_help("add `///` lines above `playbook`: what it is for, when it applies, the exact steps, how success is verified"),
    )
}
