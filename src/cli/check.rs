//! `sparky check [PATH...] [--catalog PATH...]`: the linter SREs run in CI.

use crate::compile;
use crate::compile::read_sources;
use crate::diagnostics::{Code, Diagnostic, Format, Report, Severity, render_human, render_json};
use crate::knowledge::catalog::Catalog;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Files or folders to check (folders are searched for `*.sparky`); `./playbooks` by default.
    paths: Vec<PathBuf>,
    /// `human` (colour only on a terminal) or `json`.
    #[arg(long, value_enum, default_value = "human")]
    format: super::FormatArg,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    deny_warnings: bool,
    /// Print the documentation of a diagnostic code (e.g. `E101`) and exit.
    #[arg(long, value_name = "CODE")]
    explain: Option<String>,
    /// A Backstage catalog to check too: a folder of `*.yaml` files or one file; repeat for
    /// several. `./catalog` by default, when that folder exists.
    #[arg(long, value_name = "PATH")]
    catalog: Vec<PathBuf>,
}

pub(super) fn run(args: Args) -> ExitCode {
    if let Some(code) = &args.explain {
        return explain(code);
    }
    let paths = if args.paths.is_empty() { vec![PathBuf::from("playbooks")] } else { args.paths.clone() };
    let sources = match read_sources(&paths) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let compiled = compile::compile(&sources);
    let given = (!args.catalog.is_empty()).then_some(args.catalog.as_slice());
    let catalog_paths = crate::knowledge::catalog::paths_or_default(given);
    let catalog = if catalog_paths.is_empty() {
        None
    } else {
        match Catalog::load(&catalog_paths) {
            Ok(loaded) => Some(loaded),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    };
    let catalog = catalog.as_ref().map(|(c, d)| (c, d.as_slice()));
    let format = match args.format {
        super::FormatArg::Json => Format::Json,
        super::FormatArg::Human => Format::Human {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        },
    };
    let output = render_with_catalog(&compiled, catalog, format);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`sparky check | head`) is not an error worth a panic.
    let _ = stdout.write_all(output.as_bytes());
    let _ = stdout.flush();
    let (errors, warnings) = counts(&compiled, catalog);
    let failed = errors > 0 || (args.deny_warnings && warnings > 0);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// The whole output of a check run in `format`.
pub fn render(compiled: &compile::Compiled, format: Format) -> String {
    render_with_catalog(compiled, None, format)
}

/// The whole output of a check run that checked a catalog too: the catalog's diagnostics
/// come after the playbooks', in the same format, and count in the totals.
pub fn render_with_catalog(
    compiled: &compile::Compiled,
    catalog: Option<(&Catalog, &[Diagnostic])>,
    format: Format,
) -> String {
    let catalog_diags = catalog.map(|(_, d)| d).unwrap_or(&[]);
    match format {
        Format::Json => {
            let all: Vec<Diagnostic> = compiled.diagnostics.iter().chain(catalog_diags).cloned().collect();
            let report = Report::new(compiled.files, compiled.playbooks_seen, &all);
            let Some((catalog, _)) = catalog else { return render_json(&report) + "\n" };
            // The report's shape, with the catalog's counts after the playbooks'.
            let mut value = serde_json::to_value(&report).unwrap_or_default();
            let Some(fields) = value.as_object_mut() else { return render_json(&report) + "\n" };
            let mut ordered = serde_json::Map::new();
            for (key, field) in std::mem::take(fields) {
                let after_playbooks = key == "playbooks";
                ordered.insert(key, field);
                if after_playbooks {
                    ordered.insert(
                        "catalog".into(),
                        serde_json::json!({
                            "files": catalog.file_count(),
                            "entities": catalog.entity_count(),
                            "services": catalog.len(),
                            "dependencies": catalog.dependency_count(),
                        }),
                    );
                }
            }
            serde_json::to_string_pretty(&ordered).unwrap_or_else(|_| render_json(&report)) + "\n"
        }
        Format::Human { colour } => {
            let mut out = String::new();
            for d in compiled.diagnostics.iter().chain(catalog_diags) {
                out.push_str(&render_human(d, colour));
                out.push('\n');
            }
            if let Some((catalog, _)) = catalog {
                out.push_str(&catalog.summary());
                out.push('\n');
            }
            out.push_str(&summary(compiled, counts(compiled, catalog)));
            out
        }
    }
}

/// Errors and warnings of the playbooks and the catalog together.
fn counts(compiled: &compile::Compiled, catalog: Option<(&Catalog, &[Diagnostic])>) -> (usize, usize) {
    let catalog_diags = catalog.map(|(_, d)| d).unwrap_or(&[]);
    let errors = catalog_diags.iter().filter(|d| d.severity() == Severity::Error).count();
    (compiled.errors() + errors, compiled.warnings() + catalog_diags.len() - errors)
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn summary(c: &compile::Compiled, (errors, warnings): (usize, usize)) -> String {
    format!(
        "checked {} and {}: {}, {}\n",
        plural(c.files, "file"),
        plural(c.playbooks_seen, "playbook"),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

fn explain(code: &str) -> ExitCode {
    match Code::parse(code) {
        Some(c) => {
            print!("{}", c.page());
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "error: `{code}` is not a Sparky diagnostic code\n  help: codes look like `E101` or `W301`; `docs/codes/` lists them all"
            );
            ExitCode::from(2)
        }
    }
}
