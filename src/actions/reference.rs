//! `docs/actions.md`, generated from the actions' metadata so the two never disagree. A test
//! fails when the committed page is stale; `SPARKY_UPDATE_DOCS=1 cargo test` rewrites it.

use super::{ParamSource, all};
use std::fmt::Write;

/// The reference page of every action, in Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Actions\n\n\
         <!-- Generated from src/actions/*.rs by `sparky::actions::reference::markdown`. Do not edit: \
         run `SPARKY_UPDATE_DOCS=1 cargo test --test docs_generated` after changing an action. -->\n\n\
         What an `l1` block can `do`. `sparky check` validates every call against this list: the \
         action's name (E101), its parameters (E102, E103, E123) and their types (E104). A \
         parameter marked *literal* must be written in the playbook (bounds are reviewed code, \
         never set by the alert); a *target* parameter should come from the event (W306). A value \
         the event brings into a string parameter is made into the kind of text the parameter is \
         (its notes say which): escaped so that it is only itself, or, when it cannot be, the plan \
         is refused with the reason in the trace and the alert is escalated. The playbook's own \
         text is kept as written. Any value over 4096 bytes, or with a NUL byte, is refused.\n\n",
    );
    for a in all() {
        let _ = writeln!(out, "## `{}`\n\n{}\n", a.name, a.summary);
        let _ = writeln!(out, "- changes the world: {}", if a.mutating { "yes" } else { "no" });
        let _ = writeln!(
            out,
            "- retried after a transient error: {}",
            if a.idempotent {
                "yes (applying it twice does what applying it once does)"
            } else {
                "no (a second attempt could act twice)"
            }
        );
        let _ = writeln!(out, "- blast radius: {}\n", a.blast_radius.doc);
        out.push_str("| parameter | type | required | notes | description |\n|---|---|---|---|---|\n");
        for p in a.params {
            let mut notes = Vec::new();
            if p.source == ParamSource::Literal {
                notes.push("literal".to_string());
            }
            if p.target {
                notes.push("target".to_string());
            }
            if let Some((lo, hi)) = p.range {
                notes.push(format!("{lo} to {hi}"));
            }
            if !p.choices.is_empty() {
                notes.push(format!("one of {}", crate::diagnostics::quoted_list(p.choices)));
            }
            if let Some(kind) = p.text.describe() {
                notes.push(kind.to_string());
            }
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                p.name,
                p.ty.describe(),
                if p.required { "yes" } else { "no" },
                notes.join(", "),
                p.doc.replace('|', "\\|")
            );
        }
        out.push_str("\nExample:\n\n```text\n");
        for e in a.examples {
            let _ = writeln!(out, "do {e}");
        }
        out.push_str("```\n\n");
    }
    out
}
