//! `W307 L1OnUnfilteredTrigger`.
//!
//! **What it does.** Flags a playbook with an `l1` response whose event trigger has no
//! matcher, when the playbook has no `when` condition either.
//!
//! **Why it matters.** `on alert from alertmanager` with no matcher matches every alert
//! Alertmanager sends: the remediation would run for alerts it was never written for.
//!
//! **Example.** `on alert from alertmanager` followed by `l1 { do k8s.delete_pod(...) }`.
//! Add `{ labels.alertname == "KubePodCrashLooping" }`.

use super::l1_keyword;
use crate::compile::model::{CompiledPlaybook, CompiledTrigger};
use crate::diagnostics::{Code, Diagnostic, Span};

pub(crate) fn check(pb: &CompiledPlaybook) -> Option<Diagnostic> {
    pb.l1.as_ref()?;
    if pb.condition.is_some() {
        return None;
    }
    let span = pb.triggers.iter().find_map(|t| match t {
        CompiledTrigger::Event { matchers, span, kind, .. }
            if matchers.is_empty() && kind.as_deref() != Some("schedule") =>
        {
            // The trigger's span runs on over the blank lines after it.
            let written = pb.file.slice(*span).trim_end().len();
            Some(Span::new(span.start, span.start + written))
        }
        _ => None,
    })?;
    Some(
        Diagnostic::new(
            Code::L1OnUnfilteredTrigger,
            format!("the `l1` response of `{}` runs on every event of its kind", pb.id),
        )
        .at(&pb.file, span, "no matcher narrows this trigger")
        .with_secondary(l1_keyword(pb)?, "this remediation would run for all of them")
        .with_help("add matchers, e.g. `{ labels.alertname == \"KubePodCrashLooping\" }`, or a `when` condition"),
    )
}
