//! Fixture-driven tests of `sparky check`.
//!
//! Every entry of `tests/fixtures/check/{ok,errors,warnings}/` is one concern: a `.sparky`
//! file, or a folder of them checked together (for problems across files). Its name starts
//! with the code it must produce (`E101-unknown-action.sparky`), except in `ok/`. The output
//! of `check` (human format, no colour, then the JSON report) is an insta snapshot in the
//! group's `snapshots/` folder, reviewed like code.

use sparky::cli::check_output;
use sparky::compile::{compile, read_sources};
use sparky::diagnostics::{Code, Format, Severity};
use std::path::{Path, PathBuf};

fn entries(group: &str) -> Vec<PathBuf> {
    let dir = Path::new("tests/fixtures/check").join(group);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sparky") || (p.is_dir() && !p.ends_with("snapshots")))
        .collect();
    out.sort();
    out
}

fn run_group(group: &str, check: impl Fn(&Path, &sparky::compile::Compiled)) -> usize {
    let mut count = 0;
    for path in entries(group) {
        let sources = read_sources(std::slice::from_ref(&path)).expect("fixture is readable");
        let compiled = compile(&sources);
        check(&path, &compiled);
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let human = check_output(&compiled, Format::Human { colour: false });
        let json = check_output(&compiled, Format::Json);
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new("fixtures/check").join(group).join("snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(&path);
        settings.bind(|| insta::assert_snapshot!(name, format!("{human}\n{json}")));
        count += 1;
    }
    count
}

/// The code a fixture is named after.
fn expected_code(path: &Path) -> Code {
    let name = path.file_name().unwrap().to_string_lossy();
    let code = name.split('-').next().unwrap();
    Code::parse(code).unwrap_or_else(|| panic!("{name} does not start with a diagnostic code"))
}

#[test]
fn ok_fixtures_have_no_diagnostics() {
    let n = run_group("ok", |path, c| {
        assert!(
            c.diagnostics.is_empty(),
            "{}: {:#?}",
            path.display(),
            c.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
    });
    assert!(n > 0);
}

#[test]
fn error_fixtures_produce_their_code() {
    run_group("errors", |path, c| {
        let code = expected_code(path);
        assert_eq!(code.severity(), Severity::Error, "{}", path.display());
        assert!(
            c.diagnostics.iter().any(|d| d.code == code),
            "{} should produce {}, got {:?}",
            path.display(),
            code.as_str(),
            c.diagnostics.iter().map(|d| d.code.as_str()).collect::<Vec<_>>()
        );
    });
}

#[test]
fn warning_fixtures_produce_their_code_and_no_error() {
    run_group("warnings", |path, c| {
        let code = expected_code(path);
        assert_eq!(code.severity(), Severity::Warning, "{}", path.display());
        assert_eq!(
            c.errors(),
            0,
            "{}: {:?}",
            path.display(),
            c.diagnostics.iter().map(|d| &d.message).collect::<Vec<_>>()
        );
        assert!(c.diagnostics.iter().any(|d| d.code == code), "{} should produce {}", path.display(), code.as_str());
    });
}

#[test]
fn every_code_has_a_fixture_and_a_page_whose_example_is_a_fixture() {
    let all: Vec<PathBuf> = ["errors", "warnings"].iter().flat_map(|g| entries(g)).collect();
    // The catalog's codes have catalogs for fixtures: `catalog_fixtures.rs` checks those.
    for code in Code::ALL.iter().filter(|c| !c.is_catalog()) {
        let fixtures: Vec<&PathBuf> = all.iter().filter(|p| expected_code(p) == *code).collect();
        assert!(!fixtures.is_empty(), "{} has no fixture", code.as_str());
        let page = code.page();
        assert!(
            page.starts_with(&format!("# {}", code.as_str())),
            "docs/codes/{}.md must start with its code",
            code.as_str()
        );
        let example =
            sparky_block(page).unwrap_or_else(|| panic!("docs/codes/{}.md has no ```sparky example", code.as_str()));
        let matching = fixtures.iter().find(|f| {
            let texts: Vec<String> = if f.is_dir() {
                std::fs::read_dir(f)
                    .unwrap()
                    .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
                    .collect()
            } else {
                vec![String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned()]
            };
            texts.iter().any(|t| t.trim() == example.trim())
        });
        let fixture = matching.unwrap_or_else(|| {
            panic!("the example in docs/codes/{}.md is not the text of one of its fixtures", code.as_str())
        });
        // The output shown on the page is what `check` prints for that fixture today.
        let compiled = compile(&read_sources(std::slice::from_ref(*fixture)).unwrap());
        let human = check_output(&compiled, Format::Human { colour: false });
        let page_path = format!("docs/codes/{}.md", code.as_str());
        let shown = output_block(page).unwrap_or_else(|| panic!("{page_path} shows no output after `reports:`"));
        if shown.trim_end() != human.trim_end() {
            if std::env::var_os("SPARKY_UPDATE_DOCS").is_some() {
                let updated = page.replacen(&shown, human.trim_end(), 1);
                std::fs::write(&page_path, updated).unwrap();
            } else {
                panic!(
                    "{page_path} shows an output that `check` no longer prints; run `SPARKY_UPDATE_DOCS=1 cargo test --test check_fixtures` (then rebuild, as pages are embedded)\n--- page ---\n{shown}\n--- check ---\n{human}"
                );
            }
        }
    }
}

/// The ```text block following "reports:" on a code page.
fn output_block(page: &str) -> Option<String> {
    let start = page.find("reports:\n\n```text\n")? + "reports:\n\n```text\n".len();
    let end = page[start..].find("\n```")? + start;
    Some(page[start..end].to_string())
}

/// The first ```sparky block of a Markdown page.
fn sparky_block(page: &str) -> Option<String> {
    let start = page.find("```sparky\n")? + "```sparky\n".len();
    let end = page[start..].find("\n```")? + start;
    Some(page[start..end].to_string())
}

#[test]
fn fixture_count() {
    let n: usize = ["ok", "errors", "warnings"].iter().map(|g| entries(g).len()).sum();
    assert!(n >= 40, "the issue asks for at least 40 fixtures, there are {n}");
}
