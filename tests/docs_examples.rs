//! Every example in the documentation runs: each ```sparky block of `docs/*.md` and of the
//! README is a complete file that `check` accepts without errors. (The pages in
//! `docs/codes/` show broken examples on purpose; `check_fixtures.rs` tests those.)

use sparky::compile::compile;
use sparky::diagnostics::SourceFile;

/// `(line, text)` of every ```sparky block.
fn sparky_blocks(page: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in page.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```sparky" => current = Some((i + 2, String::new())),
            Some((start, text)) if line.trim_start().starts_with("```") => {
                out.push((*start, std::mem::take(text)));
                current = None;
            }
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn documentation_examples_check_without_errors() {
    let mut pages: Vec<std::path::PathBuf> = std::fs::read_dir("docs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.push("README.md".into());
    pages.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for (line, block) in sparky_blocks(&text) {
            let name = format!("{}:{line}", page.display());
            let compiled = compile(&[SourceFile::new(name.clone(), block)]);
            checked += 1;
            for d in compiled.diagnostics.iter().filter(|d| d.is_error()) {
                failures.push(format!("{name}: {} {}", d.code.as_str(), d.message));
            }
        }
    }
    assert!(failures.is_empty(), "examples with errors:\n{}", failures.join("\n"));
    assert!(checked > 0);
}

/// Every action's examples (shown in docs/actions.md) check without errors inside a playbook.
#[test]
fn action_examples_check_without_errors() {
    let mut failures = Vec::new();
    for action in sparky::actions::all() {
        for (i, example) in action.examples.iter().enumerate() {
            let playbook = format!(
                "/// Runs an example.\nplaybook PB-990 \"Example\" {{\n  status draft\n  owner \"team:platform\"\n\n  \
                 on alert from alertmanager {{\n    labels.alertname == \"Example\"\n  }}\n\n  l1 \"example\" {{\n    \
                 guard cooldown 15m\n    do {example}\n    verify resolved within 10m\n  }}\n}}\n"
            );
            let name = format!("{} example {}", action.name, i + 1);
            let compiled = compile(&[SourceFile::new(name.clone(), playbook)]);
            for d in compiled.diagnostics.iter().filter(|d| d.is_error()) {
                failures.push(format!("{name} `{example}`: {} {}", d.code.as_str(), d.message));
            }
        }
    }
    assert!(failures.is_empty(), "action examples with errors:\n{}", failures.join("\n"));
}
