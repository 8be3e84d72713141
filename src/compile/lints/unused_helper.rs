//! `W305 UnusedHelper`.
//!
//! **What it does.** Flags a helper (`fn`) defined in your files that no condition or other
//! helper calls. Helpers of the standard library are never flagged.
//!
//! **Why it matters.** An unused helper is usually a misspelt call elsewhere, or dead code
//! that readers will assume is doing something.
//!
//! **Example.** `fn is_canary(ns) { ns.ends_with("-canary") }` and no call to `is_canary`.

use crate::compile::library::LibIndex;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(lib: &LibIndex, diags: &mut Vec<Diagnostic>) {
    for (name, helper) in &lib.helpers {
        if helper.def.stdlib || helper.def.used.get() {
            continue;
        }
        diags.push(
            Diagnostic::new(Code::UnusedHelper, format!("the helper `{name}` is never called"))
                .at(&helper.def.file, helper.def.span, "defined here")
                .with_help(format!("call it from a `when` condition (`{name}(...)`) or delete it")),
        );
    }
}
