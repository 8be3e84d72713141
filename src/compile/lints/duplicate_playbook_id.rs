//! `E105 DuplicatePlaybookId`.
//!
//! **What it does.** Finds two playbooks with the same id, in any two files checked together.
//!
//! **Why it matters.** The id names a playbook in decisions, the audit log, run history and
//! success-rate guards. Two playbooks sharing one would share their history: one could earn
//! trust for the other. This is an error, not a warning.
//!
//! **Example.** `playbooks/a.sparky` and `playbooks/b.sparky` both declare `playbook PB-001`.

use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use crate::dsl::ast::{File, Item};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn check(parsed: &[(Arc<SourceFile>, File, bool)], diags: &mut Vec<Diagnostic>) {
    let mut first: HashMap<&str, (&Arc<SourceFile>, Span)> = HashMap::new();
    for (file, ast, stdlib) in parsed {
        if *stdlib {
            continue;
        }
        for item in &ast.items {
            let Item::Playbook(pb) = item else { continue };
            match first.get(pb.id.node.as_str()) {
                None => {
                    first.insert(&pb.id.node, (file, pb.id.span));
                }
                // Two playbooks in one file are already E113, which says more.
                Some((first_file, _)) if Arc::ptr_eq(first_file, file) => {}
                Some((first_file, first_span)) => {
                    let (line, _) = first_file.line_col(first_span.start);
                    let d = Diagnostic::new(
                        Code::DuplicatePlaybookId,
                        format!("the playbook id `{}` is used twice", pb.id.node),
                    )
                    .at(file, pb.id.span, "used again here")
                    .with_help(format!(
                        "`{}` line {line} already uses it; give each playbook its own id: ids name playbooks in decisions, run history and the audit log",
                        first_file.name
                    ));
                    diags.push(d);
                }
            }
        }
    }
}
