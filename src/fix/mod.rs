//! L2: fix generators — what an `l2` block can propose — each turning a planned fix (the
//! playbook's bounds, the analyzer's proposal) into a change on a checkout of the service's
//! repository, plus a test that pins it.
//!
//! One file per generator, each with its [`GeneratorSpec`] (name, summary, parameters for
//! `sparky check`, and `generate`):
//!
//! - `revert`: revert the commit of the deploy the analysis blames (`git revert`);
//! - `memory_limit`: raise a container's memory limit in manifests, Kustomize or Helm values;
//! - `replicas_floor`, `timeout`, `config_value`: set a bounded value in YAML, JSON or TOML;
//! - `patch`: apply the analyzer's unified diff, only within the allowed paths.
//!
//! Edits keep the file's formatting outside the changed value ([`edit`]); the test that pins
//! the fix is written in the repository's own framework when Sparky can tell which, otherwise
//! as a check script under `.sparky/checks/` ([`pin`]). [`git`] runs the git CLI.
//!
//! Carrying an L2 decision out: the decision writes a [`order::FixOrder`] to the outbox; the
//! delivery worker hands it to [`deliver::Pulls`], which makes the branch ([`pr`]) and opens
//! the pull request ([`github`]). People's answers (merged, closed) come back as `pull_request`
//! webhooks ([`feedback`]) and add up to each generator's and playbook's acceptance rate.

pub mod config_value;
pub mod deliver;
pub mod edit;
pub mod feedback;
pub mod git;
pub mod github;
pub mod memory_limit;
pub mod order;
pub mod patch;
pub mod pin;
pub mod pr;
pub mod replicas_floor;
pub mod revert;
pub mod timeout;

use crate::actions::ParamSpec;
use crate::triage::PlannedFix;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The metadata of one fix generator, and its work.
pub struct GeneratorSpec {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamSpec],
    pub generate: fn(&Path, &FixRequest) -> Result<ChangeSet, FixError>,
}

impl fmt::Debug for GeneratorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratorSpec").field("name", &self.name).finish_non_exhaustive()
    }
}

static GENERATORS: [&GeneratorSpec; 6] =
    [&config_value::SPEC, &memory_limit::SPEC, &patch::SPEC, &replicas_floor::SPEC, &revert::SPEC, &timeout::SPEC];

/// Every generator, sorted by name.
pub fn all() -> impl Iterator<Item = &'static GeneratorSpec> {
    GENERATORS.iter().copied()
}

pub fn find(name: &str) -> Option<&'static GeneratorSpec> {
    all().find(|g| g.name == name)
}

/// What a generator is asked for.
#[derive(Debug, Clone)]
pub struct FixRequest {
    /// The incident the fix is for (`SPK-…`): names the branch and the pinned test.
    pub incident_key: String,
    pub service: Option<String>,
    pub fix: PlannedFix,
}

impl FixRequest {
    /// A bound from the playbook's `l2` block.
    pub fn bound(&self, name: &str) -> Option<&Value> {
        self.fix.args.get(name)
    }

    /// What the analyzer proposes (`container`, `commit`, `diff`, `value`).
    pub fn proposed(&self, name: &str) -> Option<&Value> {
        self.fix.proposal.get(name)
    }

    pub fn proposed_str(&self, name: &str) -> Option<&str> {
        self.proposed(name).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }

    /// A numeric bound, required.
    pub fn number(&self, name: &str) -> Result<f64, FixError> {
        match self.bound(name) {
            Some(Value::Number(n)) => n.as_f64().ok_or_else(|| FixError::new(format!("`{name}` is not a number"))),
            Some(Value::String(s)) => s.parse().map_err(|_| FixError::new(format!("`{name}` is `{s}`, not a number"))),
            Some(other) => Err(FixError::new(format!("`{name}` is `{other}`, not a number"))),
            None => Err(FixError::new(format!("the playbook's `l2` gives no `{name}`"))),
        }
    }

    /// The service's name as the fix names it.
    pub fn who(&self) -> String {
        self.service.clone().or_else(|| self.proposed_str("service").map(str::to_string)).unwrap_or_default()
    }
}

/// The test that pins a fix: where it is and how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinnedTest {
    /// Relative to the repository root.
    pub path: String,
    /// `pytest`, `cargo test`, `sh` (a check script), or `the repository's tests` (a patch
    /// brings its own).
    pub framework: String,
    /// The command that runs it, from the repository root.
    pub run: String,
}

/// What a generator changed in the checkout.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeSet {
    pub generator: String,
    /// `Sparky L2 Fix: <title>`: `raise the memory limit of api from 512Mi to 768Mi`.
    pub title: String,
    /// What changed and why, one Markdown paragraph or bullet each, for the pull request.
    pub description: Vec<String>,
    /// The files changed, added or removed, relative to the repository root, sorted.
    pub files: Vec<String>,
    pub test: PinnedTest,
}

/// Why a generator did not make its change: the fix escalates to L3 with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixError(pub String);

impl FixError {
    pub fn new(why: impl Into<String>) -> FixError {
        FixError(why.into())
    }
}

impl fmt::Display for FixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs the generator the request names on the checkout at `repo`.
pub fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let spec = find(&request.fix.generator)
        .ok_or_else(|| FixError::new(format!("no fix generator `{}` in this version", request.fix.generator)))?;
    (spec.generate)(repo, request)
}

/// `rel` inside `repo`, refused when it is absolute or climbs out (`..`), or when it goes
/// through a symbolic link (a link could point anywhere on the machine).
pub fn inside(repo: &Path, rel: &str) -> Result<PathBuf, FixError> {
    let p = Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(FixError::new(format!("`{rel}` is not a path inside the repository")));
    }
    let mut at = repo.to_path_buf();
    for c in p.components() {
        at.push(c);
        if at.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(FixError::new(format!("`{rel}` goes through a symbolic link; Sparky does not follow them")));
        }
    }
    Ok(at)
}

pub(crate) fn read(repo: &Path, rel: &str) -> Result<String, FixError> {
    let p = inside(repo, rel)?;
    std::fs::read_to_string(&p).map_err(|e| FixError::new(format!("cannot read `{rel}`: {e}")))
}

pub(crate) fn write(repo: &Path, rel: &str, text: &str) -> Result<(), FixError> {
    let p = inside(repo, rel)?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FixError::new(format!("cannot create the folder of `{rel}`: {e}")))?;
    }
    std::fs::write(&p, text).map_err(|e| FixError::new(format!("cannot write `{rel}`: {e}")))
}

/// The YAML files of the repository (not under `.git`, `node_modules`, `vendor`), relative,
/// sorted; at most 5,000.
pub(crate) fn yaml_files(repo: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().to_string();
            if kind.is_dir() && !matches!(name.as_str(), ".git" | "node_modules" | "vendor" | "target") {
                stack.push(e.path());
            } else if kind.is_file()
                && edit::Format::of(&name) == Some(edit::Format::Yaml)
                && let Ok(rel) = e.path().strip_prefix(repo)
            {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        if out.len() > 5_000 {
            break;
        }
    }
    out.sort();
    out
}

/// A place in a YAML file where a generator could make its change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    pub file: String,
    pub key: String,
    pub value: String,
}

/// The one place to change among `places`: the only one, else the only one under a
/// production path (`prod`, `production` in the file's path: a Kustomize overlay, a Helm
/// values file per environment). Several candidates left: refused, naming them (a person
/// picks, or the playbook names the file with `config_value`).
pub(crate) fn choose(places: Vec<Place>, what: &str) -> Result<Place, FixError> {
    if places.len() == 1 {
        return Ok(places.into_iter().next().expect("one"));
    }
    if places.is_empty() {
        return Err(FixError::new(format!("no {what} found in the repository's YAML files")));
    }
    let prod: Vec<&Place> = places.iter().filter(|p| p.file.split('/').any(|part| part.contains("prod"))).collect();
    if prod.len() == 1 {
        return Ok(prod[0].clone());
    }
    let listed: Vec<String> = places.iter().take(6).map(|p| format!("`{}` ({})", p.file, p.key)).collect();
    Err(FixError::new(format!(
        "{} places set the {what}: {}; Sparky does not guess which one production uses",
        places.len(),
        listed.join(", ")
    )))
}

/// The YAML entries of every YAML file of the repository, with each file's text.
pub(crate) fn yaml_outlines(repo: &Path) -> Vec<(String, String, Vec<edit::Entry>)> {
    yaml_files(repo)
        .into_iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(repo.join(&f)).ok()?;
            let entries = edit::outline(&text);
            Some((f, text, entries))
        })
        .collect()
}

/// In one file's outline: the scalar at `path` of document `doc`.
pub(crate) fn value_at(text: &str, entries: &[edit::Entry], doc: usize, path: &str) -> Option<String> {
    entries
        .iter()
        .find(|e| e.doc == doc && edit::path_text(&e.path) == path && e.value.0 < e.value.1)
        .map(|e| e.scalar(text))
}

/// A value written the way it was: `768Mi`, `3`, `2.5`.
pub(crate) fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_are_sorted_and_documented() {
        let names: Vec<&str> = all().map(|g| g.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(all().all(|g| !g.summary.is_empty() && g.params.iter().all(|p| !p.doc.is_empty())));
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert!(inside(dir.path(), "deploy/values.yaml").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert!(inside(dir.path(), bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
            assert!(inside(dir.path(), "etc/passwd").unwrap_err().0.contains("symbolic link"));
        }
    }
}
