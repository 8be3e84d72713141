//! Feeds arbitrary bytes to the parser and the whole check, as `sparky check` would read a
//! file. Any panic, hang or crash is a bug.
//!
//! Run: `cargo fuzz run check -- -max_total_time=300` (add `RUSTC_BOOTSTRAP=1` on a stable
//! toolchain). Seed it with the shipped playbooks: `cargo fuzz run check ../playbooks`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparky::compile::compile;
use sparky::diagnostics::SourceFile;

fuzz_target!(|data: &[u8]| {
    let file = match std::str::from_utf8(data) {
        Ok(text) => SourceFile::new("fuzz.sparky", text),
        Err(e) => SourceFile::new_invalid_utf8("fuzz.sparky", String::from_utf8_lossy(data).into_owned(), e.valid_up_to()),
    };
    let compiled = compile(&[file]);
    for d in &compiled.diagnostics {
        let _ = sparky::diagnostics::render_human(d, false);
    }
});
