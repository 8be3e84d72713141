//! Fixture-driven tests of the service catalog loader.
//!
//! Every folder of `tests/fixtures/catalog/` is one catalog, loaded as `sparky check --catalog`
//! loads it. Its name starts with the code it must produce (`E401-broken-yaml`), or with `ok`
//! when it must load without a diagnostic. The snapshot holds the diagnostics (human format,
//! no colour), then what was loaded: services, owners, on-call, tokens, and each service's
//! upstream and downstream. The pages of the catalog codes (`docs/codes/E4xx.md`, `W310`
//! onwards) show the text of one of their fixtures' files and what `check` prints for it.

use sparky::diagnostics::{Code, Diagnostic, Severity, render_human};
use sparky::knowledge::catalog::Catalog;
use std::fmt::Write;
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/catalog")
        .expect("the fixtures folder exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("snapshots"))
        .collect();
    out.sort();
    out
}

/// The code a fixture is named after, `None` for `ok-*`.
fn expected_code(path: &Path) -> Option<Code> {
    let name = path.file_name().unwrap().to_string_lossy();
    if name.starts_with("ok") {
        return None;
    }
    let code = name.split('-').next().unwrap();
    Some(Code::parse(code).unwrap_or_else(|| panic!("{name} starts with neither `ok` nor a diagnostic code")))
}

/// What `sparky check --catalog` prints for the catalog, before the playbooks' summary line.
fn rendered(catalog: &Catalog, diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&render_human(d, false));
        out.push('\n');
    }
    out.push_str(&catalog.summary());
    out.push('\n');
    out
}

/// What was loaded, for people to review.
fn loaded(catalog: &Catalog) -> String {
    let list = |related: Vec<sparky::knowledge::catalog::Related>| {
        let items: Vec<String> = related.iter().map(|r| format!("{} ({})", r.name, r.depth)).collect();
        if items.is_empty() { "-".to_string() } else { items.join(", ") }
    };
    let mut out = String::new();
    for s in catalog.services() {
        let _ = writeln!(out, "{} {} `{}/{}` ({}:{})", s.kind, s.name, s.namespace, s.name, s.file, s.line);
        if !s.aliases.is_empty() {
            let _ = writeln!(out, "  aliases:    {}", s.aliases.join(", "));
        }
        let flags =
            format!("stateless {:?}, tier {:?}, replicas {:?}, repo {:?}", s.stateless, s.tier, s.replicas, s.repo);
        let _ = writeln!(out, "  {flags}");
        if let Some(owner) = catalog.owner(&s.name) {
            let kind = if owner.kind.is_empty() { "not in the catalog" } else { owner.kind.as_str() };
            let _ = writeln!(out, "  owner:      {} ({kind})", owner.reference);
        }
        if let Some(oncall) = catalog.oncall(&s.name) {
            let _ = writeln!(out, "  on call:    {oncall}");
        }
        let _ = writeln!(out, "  upstream:   {}", list(catalog.upstream(&s.name)));
        let _ = writeln!(out, "  downstream: {}", list(catalog.downstream(&s.name)));
    }
    for t in catalog.tokens() {
        let expires = t.expires_at.map(|e| e.to_rfc3339()).unwrap_or_else(|| "-".into());
        let _ = writeln!(out, "token {} owned by {:?}, expires {expires}", t.name, t.owner);
    }
    out
}

#[test]
fn fixtures_load_as_their_name_says() {
    let all = fixtures();
    assert!(all.len() >= 10, "{} fixtures", all.len());
    for path in all {
        let (catalog, diags) = Catalog::load(std::slice::from_ref(&path)).expect("the fixture is readable");
        let codes: Vec<&str> = diags.iter().map(|d| d.code.as_str()).collect();
        match expected_code(&path) {
            None => assert!(diags.is_empty(), "{}: {codes:?}", path.display()),
            Some(code) => {
                assert!(
                    diags.iter().any(|d| d.code == code),
                    "{} should produce {}, got {codes:?}",
                    path.display(),
                    code.as_str()
                );
                if code.severity() == Severity::Warning {
                    assert!(diags.iter().all(|d| !d.is_error()), "{}: {codes:?}", path.display());
                }
            }
        }
        for d in &diags {
            assert!(
                d.primary.is_some() && d.line_col().is_some(),
                "{}: `{}` points nowhere",
                path.display(),
                d.message
            );
            assert!(d.help.is_some(), "{}: `{}` has no help", path.display(), d.message);
            let first = d.message.chars().next().unwrap();
            assert!(!first.is_uppercase() && !d.message.ends_with('.'), "{}: {}", path.display(), d.message);
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path("fixtures/catalog/snapshots");
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(&path);
        let text = format!("{}\n{}", rendered(&catalog, &diags), loaded(&catalog));
        settings.bind(|| insta::assert_snapshot!(name, text));
    }
}

#[test]
fn the_shipped_catalog_loads_without_diagnostics() {
    let (catalog, diags) = Catalog::load(&[PathBuf::from("catalog")]).expect("catalog/ is readable");
    let messages: Vec<String> = diags.iter().map(|d| render_human(d, false)).collect();
    assert!(diags.is_empty(), "{}", messages.join("\n"));
    // Every service the shipped playbooks' tests and the triage fixtures name for the catalog.
    for name in ["checkout-api", "cart-api", "payments-api", "search-api", "profile-api", "orders-db", "kafka-connect"]
    {
        assert!(catalog.service(name).is_some(), "{name} is missing");
    }
    let checkout = catalog.service("checkout").expect("an alias");
    assert_eq!(checkout.name, "checkout-api");
    assert_eq!(checkout.stateless, Some(true));
    assert_eq!(catalog.service("orders-db").and_then(|s| s.stateless), Some(false));
    assert_eq!(catalog.oncall("checkout-api").as_deref(), Some("alice"));
    let owner = catalog.owner("payments-api").expect("an owner");
    assert_eq!((owner.kind.as_str(), owner.slack.as_deref()), ("Group", Some("#team-payments")));
    assert!(catalog.upstream("checkout-api").iter().any(|r| r.name == "payments-api" && r.depth == 1));
    assert!(catalog.downstream("orders-db").iter().any(|r| r.name == "checkout-api"));
    let token = catalog.tokens().iter().find(|t| t.expires_at.is_some()).expect("an api-token with an expiry");
    assert!(token.owner.is_some());
}

#[test]
fn an_unreadable_path_is_an_error_naming_it() {
    let e = Catalog::load(&[PathBuf::from("no/such/catalog")]).unwrap_err();
    assert!(e.contains("`no/such/catalog`"), "{e}");
    assert!(e.contains("no such file or folder"), "{e}");
    assert!(e.contains("catalog-info.yaml"), "{e}");
}

#[test]
fn a_file_that_is_not_utf8_is_reported_and_the_others_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        b"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: caf\xe9\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\n",
    )
    .unwrap();
    let (catalog, diags) = Catalog::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(diags.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["E004"]);
    assert_eq!(diags[0].line_col(), Some((4, 12)));
    assert_eq!(catalog.len(), 1);
    assert_eq!(catalog.file_count(), 2);
}

#[test]
fn every_catalog_code_has_a_fixture_and_a_page_whose_example_is_a_fixture() {
    let codes: Vec<Code> = Code::ALL.iter().copied().filter(|c| c.is_catalog()).collect();
    assert!(codes.len() >= 8);
    let all = fixtures();
    for code in codes {
        let page_path = format!("docs/codes/{}.md", code.as_str());
        let page = code.page();
        assert!(
            page.starts_with(&format!("# {} {}", code.as_str(), code.name())),
            "{page_path} must start with its code and name"
        );
        let folders: Vec<&PathBuf> = all.iter().filter(|f| expected_code(f) == Some(code)).collect();
        assert!(!folders.is_empty(), "{} has no fixture", code.as_str());
        let example = yaml_block(page).unwrap_or_else(|| panic!("{page_path} has no ```yaml example"));
        let fixture = folders
            .iter()
            .flat_map(|folder| std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()))
            .find(|file| std::fs::read_to_string(file).is_ok_and(|t| t.trim() == example.trim()))
            .unwrap_or_else(|| panic!("the example in {page_path} is not the text of one of its fixtures' files"));
        // The output shown on the page is what `check --catalog` prints for that file today.
        let (catalog, diags) = Catalog::load(std::slice::from_ref(&fixture)).unwrap();
        let output = rendered(&catalog, &diags);
        let shown = output_block(page).unwrap_or_else(|| panic!("{page_path} shows no output after `reports:`"));
        if shown.trim_end() != output.trim_end() {
            if std::env::var_os("SPARKY_UPDATE_DOCS").is_some() {
                std::fs::write(&page_path, page.replacen(&shown, output.trim_end(), 1)).unwrap();
            } else {
                panic!(
                    "{page_path} shows an output that `check` no longer prints; run `SPARKY_UPDATE_DOCS=1 cargo test --test catalog_fixtures` (then rebuild, as pages are embedded)\n--- page ---\n{shown}\n--- check ---\n{output}"
                );
            }
        }
    }
}

/// The first ```yaml block of a Markdown page.
fn yaml_block(page: &str) -> Option<String> {
    let start = page.find("```yaml\n")? + "```yaml\n".len();
    let end = page[start..].find("\n```")? + start;
    Some(page[start..end].to_string())
}

/// The ```text block following "reports:" on a code page.
fn output_block(page: &str) -> Option<String> {
    let start = page.find("reports:\n\n```text\n")? + "reports:\n\n```text\n".len();
    let end = page[start..].find("\n```")? + start;
    Some(page[start..end].to_string())
}

/// The ```yaml and ```text blocks of `docs/catalog.md`, in order.
fn catalog_page_blocks(lang: &str) -> Vec<String> {
    let page = std::fs::read_to_string("docs/catalog.md").unwrap();
    let open = format!("```{lang}\n");
    let mut out = Vec::new();
    let mut rest = page.as_str();
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("\n```").unwrap();
        out.push(body[..end + 1].to_string());
        rest = &body[end..];
    }
    out
}

#[test]
fn the_catalog_page_says_what_the_loader_does() {
    // The example catalog, and what the page says of it.
    let example = catalog_page_blocks("yaml").pop().expect("an example catalog");
    let (catalog, diags) = Catalog::parse(&[("catalog/checkout.yaml".into(), example)]);
    assert!(diags.is_empty(), "{:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
    assert_eq!(catalog.service("checkout").map(|s| s.name.as_str()), Some("checkout-api"));
    assert_eq!(catalog.service("checkout").map(|s| s.to_map()["stateless"].as_bool().unwrap()), Some(true));
    let down: Vec<(String, u32)> = catalog.downstream("orders-db").into_iter().map(|r| (r.name, r.depth)).collect();
    assert_eq!(down, [("checkout-api".to_string(), 1)]);
    assert_eq!(catalog.oncall("checkout-api").as_deref(), Some("alice"));
    // The summary the page shows is the shipped catalog's.
    let (shipped, _) = Catalog::load(&[PathBuf::from("catalog")]).unwrap();
    let shown = catalog_page_blocks("text").into_iter().find(|b| b.contains("checked the catalog")).unwrap();
    assert!(
        shown.contains(&shipped.summary()),
        "docs/catalog.md shows `{shown}`, the catalog gives `{}`",
        shipped.summary()
    );
}
