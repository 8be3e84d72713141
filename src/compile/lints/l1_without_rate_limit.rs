//! `W301 L1WithoutRateLimit`.
//!
//! **What it does.** Flags an `l1` block that has neither a `guard cooldown` nor a
//! `guard at_most`.
//!
//! **Why it matters.** Without a rate limit, a flapping alert makes Sparky repeat the
//! remediation as fast as the alert fires: a restart loop of Sparky's own making. A cooldown
//! per target and a cap per window bound what the automation can do in a bad hour.
//!
//! **Example.**
//! ```text
//! l1 "restart" {
//!   do k8s.delete_pod(namespace = labels.namespace, pod = labels.pod)
//!   verify resolved within 10m
//! }
//! ```
//! Add `guard cooldown 15m per labels.pod` and `guard at_most 5 per 1h`.

use super::l1_keyword;
use crate::compile::model::CompiledPlaybook;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(pb: &CompiledPlaybook) -> Option<Diagnostic> {
    let l1 = pb.l1.as_ref()?;
    if !l1.guards.cooldowns.is_empty() || !l1.guards.at_most.is_empty() {
        return None;
    }
    Some(
        Diagnostic::new(Code::L1WithoutRateLimit, format!("the `l1` response of `{}` has no rate limit", pb.id))
            .at(&pb.file, l1_keyword(pb)?, "no `cooldown` or `at_most` guard")
            .with_help("add `guard cooldown 15m per labels.<target>` and `guard at_most 5 per 1h`, so a flapping alert cannot make Sparky repeat the action without end"),
    )
}
