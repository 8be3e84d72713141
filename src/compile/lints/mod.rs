//! Lints: problems visible only across a playbook or across playbooks. One lint per file;
//! each file's doc comment (what it does, why it matters, an example) is also the source of
//! its page in `docs/codes/`.

pub(super) mod duplicate_playbook_id;
pub(super) mod empty_file;
mod l1_on_unfiltered_trigger;
mod l1_without_rate_limit;
mod l1_without_verification;
mod missing_docs;
mod unbounded_target;
mod unreachable_playbook;
mod unused_helper;
mod unused_list;

use super::library::LibIndex;
use super::model::CompiledPlaybook;
use crate::diagnostics::{Diagnostic, SourceFile, Span};
use crate::dsl::ast::File;
use std::sync::Arc;

/// Runs every lint.
pub(super) fn run(
    playbooks: &[CompiledPlaybook],
    parsed: &[(Arc<SourceFile>, File, bool)],
    lib: &LibIndex,
    diags: &mut Vec<Diagnostic>,
) {
    duplicate_playbook_id::check(parsed, diags);
    for pb in playbooks {
        diags.extend(l1_without_rate_limit::check(pb));
        diags.extend(l1_without_verification::check(pb));
        diags.extend(l1_on_unfiltered_trigger::check(pb));
        diags.extend(unbounded_target::check(pb));
        diags.extend(missing_docs::check(pb));
    }
    unreachable_playbook::check(playbooks, diags);
    unused_list::check(lib, diags);
    unused_helper::check(lib, diags);
}

/// The span of an `l1` keyword, where L1 lints point.
fn l1_keyword(pb: &CompiledPlaybook) -> Option<Span> {
    pb.l1.as_ref().map(|l1| Span::new(l1.span.start, l1.span.start + 2))
}
