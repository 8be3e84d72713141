//! `sparky check [PATH...]`: the linter SREs run in CI.

use crate::compile;
use crate::compile::read_sources;
use crate::diagnostics::{Code, Format, Report, render_human, render_json};
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
    let format = match args.format {
        super::FormatArg::Json => Format::Json,
        super::FormatArg::Human => Format::Human {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        },
    };
    let output = render(&compiled, format);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`sparky check | head`) is not an error worth a panic.
    let _ = stdout.write_all(output.as_bytes());
    let _ = stdout.flush();
    let failed = compiled.errors() > 0 || (args.deny_warnings && compiled.warnings() > 0);
    if failed { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// The whole output of a check run in `format`.
pub fn render(compiled: &compile::Compiled, format: Format) -> String {
    match format {
        Format::Json => {
            let report = Report::new(compiled.files, compiled.playbooks_seen, &compiled.diagnostics);
            render_json(&report) + "\n"
        }
        Format::Human { colour } => {
            let mut out = String::new();
            for d in &compiled.diagnostics {
                out.push_str(&render_human(d, colour));
                out.push('\n');
            }
            out.push_str(&summary(compiled));
            out
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn summary(c: &compile::Compiled) -> String {
    format!(
        "checked {} and {}: {}, {}\n",
        plural(c.files, "file"),
        plural(c.playbooks_seen, "playbook"),
        plural(c.errors(), "error"),
        plural(c.warnings(), "warning")
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
