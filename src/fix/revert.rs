//! `revert`: revert the commit of the deploy the analysis blames (`commit` in the proposal),
//! with `git revert` on the checkout: a merge commit against its first parent, a commit that
//! no longer reverts cleanly refused with the files in conflict. The pinned test checks that
//! the lines the commit added are gone (and those it removed are back).

use super::git::Git;
use super::pin::{Fact, write_pin};
use super::{ChangeSet, FixError, FixRequest, GeneratorSpec};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "revert",
    summary: "Revert the commits of the deploy the analysis blames.",
    params: &[],
    generate,
};

/// Lines worth pinning: long enough to be the commit's own, at most this many.
const PINNED_LINES: usize = 5;

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let commit = request
        .proposed_str("commit")
        .ok_or_else(|| FixError::new("the analysis names no commit to revert (the deploy has no commit)"))?;
    if !(7..=64).contains(&commit.len()) || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(FixError::new(format!("`{commit}` is not a commit id")));
    }
    let git = Git::at(repo);
    let full = git
        .run(&["rev-parse", "--verify", "--quiet", &format!("{commit}^{{commit}}")])
        .map_err(|_| {
            FixError::new(format!("commit {commit} is not in the repository (was it pushed to another fork?)"))
        })?
        .trim()
        .to_string();
    if git.run(&["merge-base", "--is-ancestor", &full, "HEAD"]).is_err() {
        return Err(FixError::new(format!(
            "commit {commit} is not on the branch the fix is based on: reverting it there changes nothing"
        )));
    }
    let parents = git.run(&["rev-list", "--parents", "-n", "1", &full])?;
    let merge = parents.split_whitespace().count() > 2;
    let subject = git.run(&["log", "-1", "--format=%s", &full])?.trim().to_string();
    let short = &full[..12.min(full.len())];
    let mut args = vec!["revert", "--no-commit", "--no-edit"];
    if merge {
        args.extend(["-m", "1"]);
    }
    args.push(&full);
    if let Err(e) = git.run(&args) {
        let conflicts = git.run(&["diff", "--name-only", "--diff-filter=U"]).unwrap_or_default();
        let _ = git.run(&["revert", "--abort"]);
        let files: Vec<&str> = conflicts.lines().collect();
        return Err(FixError::new(if files.is_empty() {
            format!("commit {short} does not revert: {e}")
        } else {
            format!("commit {short} no longer reverts cleanly: later changes touch {}", files.join(", "))
        }));
    }
    let mut facts = Vec::new();
    let shown = git.run(&["show", "--format=", "--unified=0", "--no-color", "--no-ext-diff", &full])?;
    let mut file: Option<String> = None;
    for line in shown.lines() {
        if let Some(f) = line.strip_prefix("+++ b/") {
            file = Some(f.to_string());
        } else if line.starts_with("+++ ") || line.starts_with("--- ") {
            if line == "+++ /dev/null" {
                file = None;
            }
        } else if let Some(f) = &file {
            let (added, text) = match line.as_bytes().first() {
                Some(b'+') => (true, &line[1..]),
                Some(b'-') => (false, &line[1..]),
                _ => continue,
            };
            if text.trim().len() >= 8 && facts.len() < PINNED_LINES && repo.join(f).exists() {
                facts.push(Fact::Line { file: f.clone(), line: text.to_string(), present: !added });
            }
        }
    }
    let changed = git.changed_files()?;
    if changed.is_empty() {
        return Err(FixError::new(format!("reverting commit {short} changes nothing: it was undone already")));
    }
    let title = format!("revert {short} ({subject})");
    let test = if facts.is_empty() {
        // A commit that only added or removed whole files: nothing line-sized to pin.
        return Err(FixError::new(format!(
            "commit {short} only adds or removes files; the revert is left to a person (no line to pin it with)"
        )));
    } else {
        write_pin(repo, &request.incident_key, &title, &facts)?
    };
    let mut description = vec![request.fix.summary.clone()];
    let deploy = request.proposed_str("deploy").map(|d| format!(" (deploy `{d}`)")).unwrap_or_default();
    description.push(format!(
        "Reverts {full}{deploy}: \"{subject}\"{}.",
        if merge { ", a merge, against its first parent" } else { "" }
    ));
    let mut files = git.changed_files()?;
    files.sort();
    Ok(ChangeSet { generator: "revert".into(), title, description, files, test })
}
