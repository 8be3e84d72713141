//! `W306 UnboundedTarget`.
//!
//! **What it does.** Flags an L1 action whose target parameter (the pod, the deployment, the
//! key pattern) is a fixed value instead of coming from the event.
//!
//! **Why it matters.** A target that does not depend on the event is the same whatever
//! fired: `pattern = "*"` deletes every key, `pod = "api-0"` restarts one pod for any alert.
//! Targets should be narrowed by the event that proved them broken.
//!
//! **Example.** `do redis.delete_keys(pattern = "*", max_keys = 1000)`. Write
//! `pattern = "user:{labels.user_id}:*"`.

use crate::compile::model::CompiledPlaybook;
use crate::diagnostics::{Code, Diagnostic};

pub(crate) fn check(pb: &CompiledPlaybook) -> Vec<Diagnostic> {
    let Some(l1) = &pb.l1 else { return Vec::new() };
    let mut out = Vec::new();
    for call in &l1.actions {
        for param in call.action.params.iter().filter(|p| p.target) {
            let Some(value) = call.args.get(param.name) else { continue };
            if value.is_bound_by_event() {
                continue;
            }
            let span = pb
                .ast
                .entries
                .iter()
                .filter_map(|e| match &e.kind {
                    crate::dsl::ast::EntryKind::L1(b) => Some(b),
                    _ => None,
                })
                .flat_map(|b| &b.actions)
                .filter(|c| c.span == call.span)
                .flat_map(|c| &c.args)
                .find(|a| a.name.node == param.name)
                .map(|a| a.value.span)
                .unwrap_or(call.span);
            out.push(
                Diagnostic::new(
                    Code::UnboundedTarget,
                    format!("`{}` of `{}` does not depend on the event", param.name, call.action.name),
                )
                .at(&pb.file, span, "the same target whatever fired")
                .with_help(match call.action.examples.first() {
                    Some(example) => format!("bind the target to the event that proved it broken, as in `{example}`"),
                    None => format!("bind `{}` to the event that proved it broken, e.g. `labels.<name>` or a template such as `\"{{labels.<name>}}\"`", param.name),
                }),
            );
        }
    }
    out
}
