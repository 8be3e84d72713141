//! Generated documentation is committed; these tests fail when it is stale.
//! `SPARKY_UPDATE_DOCS=1 cargo test --test docs_generated` rewrites it.

fn check_generated(path: &str, generated: String) {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current == generated {
        return;
    }
    if std::env::var_os("SPARKY_UPDATE_DOCS").is_some() {
        std::fs::write(path, generated).unwrap();
        return;
    }
    panic!("{path} is stale: run `SPARKY_UPDATE_DOCS=1 cargo test --test docs_generated` and commit the result");
}

#[test]
fn actions_reference_is_current() {
    check_generated("docs/actions.md", sparky::actions::reference::markdown());
}
