//! Feeds arbitrary text to a playbook's `when` condition, compiles it as `sparky check` would
//! and, when it compiles, evaluates it against an event with the sandbox's limits. Any panic,
//! hang or crash is a bug, and so is an evaluation that outlives its limits: closures called
//! by iterating built-ins (`sort`, `map`, `filter`, `reduce`, `retain`, `all`, `some`) must
//! stop at the deadline as the rest of a condition does.
//!
//! Run: `cargo fuzz run condition -- -max_total_time=300` (add `RUSTC_BOOTSTRAP=1` on a
//! stable toolchain). Seeds worth starting from:
//! `a.sort(|x, y| { let s = 0; for j in 0..2000 { s += j } y - x }); true`,
//! `[1, 2, 3].map(|x| x * 2).reduce(|s, x| s + x, 0) > 3`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparky::compile::compile;
use sparky::diagnostics::SourceFile;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Ok(condition) = std::str::from_utf8(data) else { return };
    if condition.contains('}') {
        // Kept inside the `when { }` block, so that the input is the condition alone.
        return;
    }
    let text = format!(
        "playbook PB-900 \"Fuzz\" {{\n  status active\n  owner \"team:fuzz\"\n  on alert from alertmanager {{\n    labels.alertname == \"X\"\n  }}\n  when {{ {condition} }}\n  l3 priority P3\n}}\n"
    );
    let compiled = compile(&[SourceFile::new("fuzz.sparky", &text)]);
    let Some(cond) = compiled.playbooks.first().and_then(|p| p.condition.clone()) else { return };
    let mut event = rhai::Map::new();
    event.insert("severity".into(), "critical".into());
    let mut scope = rhai::Scope::new();
    scope.push_constant("event", rhai::Dynamic::from(event));
    let context: std::sync::Arc<dyn sparky::script::ContextView> = std::sync::Arc::new(sparky::script::NoContext);
    let started = Instant::now();
    let _ = sparky::script::evaluate_bool(&compiled.engine, &cond.ast, &mut scope, &context, sparky::script::limits::DEADLINE);
    assert!(started.elapsed() < Duration::from_secs(2), "a condition outlived its limits: {condition:?}");
});
