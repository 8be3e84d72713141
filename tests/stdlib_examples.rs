//! The standard library: it checks clean, and every `Example:` line of every helper's doc
//! comment evaluates to `true`.

use rhai::Scope;
use sparky::compile::{compile, stdlib};
use sparky::script::{self, ContextView, NoContext};
use std::sync::Arc;

#[test]
fn stdlib_checks_clean() {
    let compiled = compile(&[]);
    assert!(
        compiled.diagnostics.is_empty(),
        "{:?}",
        compiled.diagnostics.iter().map(|d| format!("{}: {}", d.code.as_str(), d.message)).collect::<Vec<_>>()
    );
}

/// `(helper, example)` for every indented line after `/// Example:`.
fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (_, text) in stdlib::SOURCES {
        let mut in_example = false;
        let mut pending = Vec::new();
        for line in text.lines() {
            if let Some(doc) = line.strip_prefix("///") {
                if doc.trim() == "Example:" {
                    in_example = true;
                } else if in_example && doc.starts_with("     ") {
                    pending.push(doc.trim().to_string());
                } else {
                    in_example = false;
                }
            } else if let Some(rest) = line.strip_prefix("fn ") {
                let name = rest.split('(').next().unwrap().to_string();
                out.extend(pending.drain(..).map(|e| (name.clone(), e)));
                in_example = false;
            }
        }
    }
    out
}

#[test]
fn every_helper_has_examples_and_they_hold() {
    let compiled = compile(&[]);
    let examples = examples();
    let helpers: Vec<String> =
        compiled.library.helpers.as_ref().unwrap().iter_functions().map(|f| f.name.to_string()).collect();
    for h in &helpers {
        assert!(examples.iter().any(|(n, _)| n == h), "helper `{h}` has no example");
    }
    let ctx: Arc<dyn ContextView> = Arc::new(NoContext);
    for (helper, example) in examples {
        let ast = compiled.engine.compile(&example).unwrap_or_else(|e| panic!("{helper}: `{example}`: {e}"));
        let mut scope = Scope::new();
        let ok = script::evaluate_bool(&compiled.engine, &ast, &mut scope, &ctx, script::limits::DEADLINE);
        assert_eq!(ok, Ok(true), "{helper}: `{example}`");
    }
}

#[test]
fn stdlib_lists_are_visible_to_conditions() {
    let compiled = compile(&[]);
    let ast = compiled
        .engine
        .compile(
            "\"Error\" in lists::benign_crash_reasons && !(\"OOMKilled\" in lists::benign_crash_reasons) && !(\"CrashLoopBackOff\" in lists::benign_crash_reasons)",
        )
        .unwrap();
    let ctx: Arc<dyn ContextView> = Arc::new(NoContext);
    assert_eq!(
        script::evaluate_bool(&compiled.engine, &ast, &mut Scope::new(), &ctx, script::limits::DEADLINE),
        Ok(true)
    );
}
