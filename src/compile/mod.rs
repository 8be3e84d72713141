//! The compiler: parsed files to compiled playbooks, with every problem as a diagnostic.
//!
//! The phases, in order:
//! 1. parse every file (`dsl`), the embedded standard library first;
//! 2. collect the library: named lists and helper functions (`library.rs`), helpers compiled
//!    by rhai one by one so errors point at the right file;
//! 3. build the sandboxed engine with the library (`script::build_engine`);
//! 4. compile each playbook (`playbook.rs`): identity, triggers and matchers (`fields.rs`),
//!    conditions (`condition.rs`), responses and their calls (`call.rs`);
//! 5. run the lints (`lints/`), which look across playbooks.
//!
//! Every phase reports all it finds and carries on, so one run shows every problem.

mod call;
pub(crate) mod condition;
mod cron;
mod fields;
mod library;
mod lints;
pub mod model;
mod playbook;
mod sources;
pub mod stdlib;

pub use fields::{MAP_FIELDS, TOP_FIELDS};
pub use model::*;
pub use sources::{files_under, read_sources};

use crate::diagnostics::{self, Code, Diagnostic, SourceFile};
use crate::dsl;
use crate::script::{self, Library};
use library::LibIndex;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Event sources Sparky knows how to receive.
pub const SOURCES: &[&str] = &[
    "alertmanager",
    "argocd",
    "cloudevents",
    "datadog",
    "generic",
    "github",
    "grafana",
    "kubernetes",
    "pagerduty",
    "sparky",
];

/// Event kinds a trigger may name (`any` matches every kind).
pub const KINDS: &[&str] = &["alert", "any", "change", "deploy", "incident", "k8s_event", "schedule"];

/// The result of compiling a set of files.
pub struct Compiled {
    /// Files read (not counting the embedded standard library).
    pub files: usize,
    /// Playbooks that compiled without error, in file order.
    pub playbooks: Vec<CompiledPlaybook>,
    /// Playbooks found, including those with errors.
    pub playbooks_seen: usize,
    /// The engine conditions were compiled with, holding the library; evaluate with it.
    pub engine: Arc<rhai::Engine>,
    pub library: Library,
    /// A content hash of every source (the standard library's too) and of Sparky's version:
    /// the same hash means the same rules.
    pub ruleset_hash: String,
    /// Every problem, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compiled {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// What the compiler of one file needs at hand.
pub(crate) struct Cx<'a> {
    pub file: Arc<SourceFile>,
    pub diags: &'a mut Vec<Diagnostic>,
    pub lib: &'a mut LibIndex,
    /// Present once the library is built (phase 3 on).
    pub script: Option<&'a ScriptEnv>,
}

impl Cx<'_> {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }
}

/// The engine and the names it knows.
pub(crate) struct ScriptEnv {
    pub engine: Arc<rhai::Engine>,
    /// Function name (with `kg::` for namespaced ones) → accepted argument counts.
    pub known: BTreeMap<String, Vec<usize>>,
}

/// Compiles user files (and the embedded standard library).
pub fn compile(sources: &[Arc<SourceFile>]) -> Compiled {
    let mut diags = Vec::new();
    let stdlib_files = stdlib::files();

    // Phase 1: parse.
    let mut parsed = Vec::new();
    for (file, is_stdlib) in stdlib_files.iter().map(|f| (f, true)).chain(sources.iter().map(|f| (f, false))) {
        let (ast, mut found) = dsl::parse_file(file);
        diags.append(&mut found);
        if let Some(ast) = ast {
            if !is_stdlib && ast.items.is_empty() {
                diags.push(lints::empty_file::check(file));
            }
            parsed.push((file.clone(), ast, is_stdlib));
        }
    }
    let playbooks_seen = parsed
        .iter()
        .filter(|(_, _, std)| !std)
        .flat_map(|(_, ast, _)| &ast.items)
        .filter(|i| matches!(i, dsl::ast::Item::Playbook(_)))
        .count();

    // Phase 2: the library.
    let mut lib = LibIndex::default();
    for (file, ast, is_stdlib) in &parsed {
        let mut cx = Cx { file: file.clone(), diags: &mut diags, lib: &mut lib, script: None };
        library::collect(&mut cx, ast, *is_stdlib);
    }
    let library = lib.to_library();

    // Phase 3: the engine.
    let engine = Arc::new(script::build_engine(Some(&library)));
    let env = ScriptEnv { known: script::known_functions(Some(&library)), engine: engine.clone() };

    // Phase 4: playbooks, and the names inside helpers.
    let mut playbooks = Vec::new();
    for (file, ast, is_stdlib) in &parsed {
        let mut cx = Cx { file: file.clone(), diags: &mut diags, lib: &mut lib, script: Some(&env) };
        library::check_helper_names(&mut cx);
        let mut seen_playbook: Option<&dsl::ast::Playbook> = None;
        for item in &ast.items {
            let dsl::ast::Item::Playbook(pb) = item else { continue };
            if let Some(first) = seen_playbook {
                cx.push(
                    Diagnostic::new(
                        Code::SeveralPlaybooksInFile,
                        format!("`{}` is a second playbook in this file", pb.id.node),
                    )
                    .at(file, pb.id.span, "second playbook")
                    .with_secondary(first.id.span, "first playbook")
                    .with_help("put each playbook in its own file: the file is the playbook's document"),
                );
            }
            seen_playbook.get_or_insert(pb);
            if *is_stdlib {
                continue;
            }
            if let Some(compiled) = playbook::compile(&mut cx, pb) {
                playbooks.push(compiled);
            }
        }
    }

    // Phase 5: lints across playbooks and the library.
    lints::run(&playbooks, &parsed, &lib, &mut diags);

    diagnostics::sort(&mut diags);
    let ruleset_hash = ruleset_hash(stdlib_files.iter().chain(sources));
    Compiled { files: sources.len(), playbooks, playbooks_seen, engine, library, ruleset_hash, diagnostics: diags }
}

/// The hash of the sources, in name order so that the order they were given in does not matter.
fn ruleset_hash<'a>(files: impl Iterator<Item = &'a Arc<SourceFile>>) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<&Arc<SourceFile>> = files.collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    for f in files {
        for part in [f.name.as_bytes(), f.text.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
    }
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}
