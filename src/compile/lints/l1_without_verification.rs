//! `W302 L1WithoutVerification`.
//!
//! **What it does.** Flags an `l1` block without a `verify` step.
//!
//! **Why it matters.** An unverified remediation counts as a success whether or not it
//! worked, so success-rate guards learn nothing, and a fix that failed is never escalated.
//!
//! **Example.** An `l1` block with `do k8s.scale(...)` and no `verify resolved within 15m`.

use super::l1_keyword;
use crate::compile::model::CompiledPlaybook;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(pb: &CompiledPlaybook) -> Option<Diagnostic> {
    let l1 = pb.l1.as_ref()?;
    if !l1.verify.is_empty() {
        return None;
    }
    Some(
        Diagnostic::new(Code::L1WithoutVerification, format!("the `l1` response of `{}` is never verified", pb.id))
            .at(&pb.file, l1_keyword(pb)?, "no `verify` step")
            .with_help("add `verify resolved within 10m` (the alert's own resolution), `verify when { ... } within 5m`, or `verify delivered` for notifications; unverified runs teach the success-rate guard nothing"),
    )
}
