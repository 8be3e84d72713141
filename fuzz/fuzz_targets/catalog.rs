//! Feeds arbitrary text to the catalog reader, as `sparky check --catalog` and a reload would
//! read a `catalog-info.yaml`, then asks the graph questions. Any panic, hang or crash is a bug.
//!
//! Run: `cargo fuzz run catalog -- -max_total_time=300` (add `RUSTC_BOOTSTRAP=1` on a stable
//! toolchain). Seed it with the example catalog: `cargo fuzz run catalog ../catalog`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparky::knowledge::Catalog;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let (catalog, diagnostics) = Catalog::parse(&[("fuzz.yaml".to_string(), text)]);
    for d in &diagnostics {
        let _ = sparky::diagnostics::render_human(d, false);
    }
    let names: Vec<String> = catalog.services().map(|s| s.name.clone()).collect();
    for name in names.iter().take(16) {
        let _ = (catalog.downstream(name), catalog.upstream(name), catalog.owner(name), catalog.oncall(name));
        let _ = catalog.service(name).map(|s| s.to_map());
    }
});
