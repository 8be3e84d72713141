//! `W304 UnusedList`.
//!
//! **What it does.** Flags a `list` defined in your files that no matcher, argument or
//! condition uses. Lists of the standard library are never flagged.
//!
//! **Why it matters.** An unused list is usually a typo'd reference elsewhere, or dead
//! configuration that misleads whoever reads it.
//!
//! **Example.** `list noisy_alerts = ["Watchdog"]` and no `in noisy_alerts` anywhere.

use crate::compile::library::LibIndex;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(lib: &LibIndex, diags: &mut Vec<Diagnostic>) {
    for (name, list) in &lib.lists {
        if list.def.stdlib || list.def.used.get() {
            continue;
        }
        diags.push(
            Diagnostic::new(Code::UnusedList, format!("the list `{name}` is never used"))
                .at(&list.def.file, list.def.span, "defined here")
                .with_help(format!("use it (`labels.x in {name}`, or `lists::{name}` in a condition) or delete it")),
        );
    }
}
