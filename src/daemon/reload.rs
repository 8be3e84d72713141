//! Hot reload: a reload is a full `sparky check` of the playbooks. On success the new rule
//! graph is swapped in atomically (a decision in flight finishes on the graph it started
//! with); on any error the old graph stays and the diagnostics are kept for
//! `GET /api/v1/status`. Triggered by file changes (debounced, robust to editors that save by
//! rename), SIGHUP and `POST /-/reload`.

use super::State;
use crate::compile::{self, read_sources};
use crate::diagnostics::render_human;
use crate::graph::RuleGraph;
use crate::knowledge::Catalog;
use chrono::{DateTime, Utc};
use notify::{RecursiveMode, Watcher};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rule graph in use.
pub struct Loaded {
    pub graph: Arc<RuleGraph>,
    /// The service catalog, loaded with the playbooks.
    pub catalog: Arc<Catalog>,
    pub loaded_at: DateTime<Utc>,
}

/// What the last reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub successful: bool,
    pub at: DateTime<Utc>,
    /// Why it was asked for: `start`, `files changed`, `SIGHUP`, `api`.
    pub trigger: String,
    /// The ruleset hash after it (the old one when it failed).
    pub ruleset: String,
    pub playbooks: usize,
    /// Services in the catalog in force.
    pub services: usize,
    /// The check's diagnostics, as `sparky check` prints them (errors and warnings).
    pub diagnostics: Vec<String>,
    pub error: Option<String>,
    pub took_ms: u64,
    /// Successful reloads since start, the first load included.
    pub count: u64,
}

/// What a successful build gives: the rule graph, the catalog, and the warnings.
pub type Built = (RuleGraph, Catalog, Vec<String>);

/// Compiles the playbooks into a rule graph and loads the catalog, or says why not (the
/// diagnostics, rendered). The two are one unit: an error in either keeps both as they were.
pub fn build(playbooks: &[PathBuf], catalog: &[PathBuf]) -> Result<Built, (String, Vec<String>)> {
    let sources = read_sources(playbooks).map_err(|e| (e, Vec::new()))?;
    let compiled = compile::compile(&sources);
    let mut rendered: Vec<String> = compiled.diagnostics.iter().map(|d| render_human(d, false)).collect();
    let (cat, cat_diags) = if catalog.is_empty() {
        (Catalog::default(), Vec::new())
    } else {
        Catalog::load(catalog)
            .map_err(|e| (format!("{e}; the previous rules and catalog stay in force"), rendered.clone()))?
    };
    rendered.extend(cat_diags.iter().map(|d| render_human(d, false)));
    let catalog_errors = cat_diags.iter().filter(|d| d.is_error()).count();
    let errors = compiled.errors() + catalog_errors;
    if errors > 0 {
        let what = match (compiled.errors() > 0, catalog_errors > 0) {
            (true, true) => "the playbooks and the catalog have",
            (true, false) => "the playbooks have",
            _ => "the catalog has",
        };
        return Err((
            format!(
                "{what} {errors} error{}; the previous rules and catalog stay in force",
                if errors == 1 { "" } else { "s" }
            ),
            rendered,
        ));
    }
    Ok((RuleGraph::build(&compiled), cat, rendered))
}

/// Reloads now; returns whether the new rules are in force.
pub fn reload(state: &State, trigger: &str) -> bool {
    let started = Instant::now();
    let result = build(&state.config.playbooks, &state.config.catalog_paths());
    let took_ms = started.elapsed().as_millis() as u64;
    let mut status = state.reload_status.lock().unwrap_or_else(|e| e.into_inner());
    let previous_count = status.as_ref().map_or(0, |s| s.count);
    let ok = match result {
        Ok((graph, catalog, diagnostics)) => {
            let hash = graph.hash().to_string();
            let playbooks = graph.playbooks().len();
            let services = catalog.len();
            state.ruleset.store(Arc::new(Loaded {
                graph: Arc::new(graph),
                catalog: Arc::new(catalog),
                loaded_at: Utc::now(),
            }));
            tracing::info!(trigger, ruleset = %hash, playbooks, services, took_ms, "playbooks and catalog loaded");
            for d in &diagnostics {
                tracing::warn!("{d}");
            }
            *status = Some(ReloadStatus {
                successful: true,
                at: Utc::now(),
                trigger: trigger.into(),
                ruleset: hash,
                playbooks,
                services,
                diagnostics,
                error: None,
                took_ms,
                count: previous_count + 1,
            });
            true
        }
        Err((error, diagnostics)) => {
            let current = state.ruleset.load();
            tracing::error!(trigger, %error, "reload failed; the previous rules stay in force");
            for d in &diagnostics {
                tracing::error!("{d}");
            }
            *status = Some(ReloadStatus {
                successful: false,
                at: Utc::now(),
                trigger: trigger.into(),
                ruleset: current.graph.hash().to_string(),
                playbooks: current.graph.playbooks().len(),
                services: current.catalog.len(),
                diagnostics,
                error: Some(error),
                took_ms,
                count: previous_count,
            });
            false
        }
    };
    drop(status);
    state.metrics.reloaded(ok);
    ok
}

/// Watches the playbook and catalog paths and reloads after `debounce` of quiet. Editors that save by
/// writing a temporary file and renaming it over the original produce create/rename events
/// on the folder, which is what is watched (a file named directly is watched through its
/// folder). Returns the watcher, which stops when dropped.
pub fn watch(state: Arc<State>, debounce: Duration) -> Result<notify::RecommendedWatcher, String> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && !matches!(event.kind, notify::EventKind::Access(_))
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch the playbooks for changes: {e}"))?;
    for path in state.config.playbooks.iter().chain(state.config.catalog_paths().iter()) {
        let (target, mode) = if path.is_dir() {
            (path.clone(), RecursiveMode::Recursive)
        } else {
            let parent =
                path.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("."), PathBuf::from);
            (parent, RecursiveMode::NonRecursive)
        };
        watcher.watch(&target, mode).map_err(|e| format!("cannot watch `{}` for changes: {e}", target.display()))?;
    }
    std::thread::Builder::new()
        .name("sparky-reload".into())
        .spawn(move || {
            // Debounce: after the first change, wait until `debounce` passes without another.
            while rx.recv().is_ok() {
                while rx.recv_timeout(debounce).is_ok() {}
                reload(&state, "files changed");
            }
        })
        .map_err(|e| format!("cannot start the reload thread: {e}"))?;
    Ok(watcher)
}
