//! Reading playbook files from disk: files or folders, `*.sparky`, in a stable order.

use crate::diagnostics::SourceFile;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads every `.sparky` file under `paths`, sorted within each folder, each file once. A
/// folder holding no `.sparky` file is an error; a file named in `paths` is read whatever its
/// extension.
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Arc<SourceFile>>, String> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| {
            let hint = if path == Path::new("playbooks") && e.kind() == std::io::ErrorKind::NotFound {
                "; run this in a folder with a `playbooks/` folder, or pass the path to your playbooks"
            } else {
                ""
            };
            format!("cannot read `{}`: {}{hint}", path.display(), io_reason(&e))
        })?;
        if meta.is_dir() {
            let found = files_under(path, &|p| p.extension().is_some_and(|e| e == "sparky"))?;
            if found.is_empty() {
                return Err(format!(
                    "no `.sparky` files in `{}`; is this the folder with your playbooks?",
                    path.display()
                ));
            }
            files.extend(found);
        } else {
            // A file named on the command line is read whatever its extension.
            files.push(path.clone());
        }
    }
    // A file reachable twice (through a symlink, or named twice) is read once, under the
    // first path it was found by.
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    let mut sources = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).map_err(|e| format!("cannot read `{}`: {}", f.display(), io_reason(&e)))?;
        let name = f.display().to_string();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                sources.push(SourceFile::new_invalid_utf8(name, lossy, at));
                continue;
            }
        };
        sources.push(SourceFile::new(name, text));
    }
    Ok(sources)
}

/// The files under `path` that `keep` accepts: `path` itself when it is a file (whatever its
/// name), otherwise every accepted file in its folders, sorted within each folder, skipping
/// hidden entries and folders already visited (a symlink back up the tree).
pub fn files_under(path: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {}", path.display(), io_reason(&e)))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    collect_dir(path, keep, &mut out, &mut HashSet::new(), 0)?;
    Ok(out)
}

fn collect_dir(
    dir: &Path,
    keep: &dyn Fn(&Path) -> bool,
    out: &mut Vec<PathBuf>,
    visited: &mut HashSet<PathBuf>,
    depth: usize,
) -> Result<(), String> {
    if let Ok(canonical) = std::fs::canonicalize(dir)
        && !visited.insert(canonical)
    {
        return Ok(());
    }
    if depth > 32 {
        return Err(format!("`{}` is nested more than 32 folders deep", dir.display()));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the folder `{}`: {}", dir.display(), io_reason(&e)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let hidden = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            collect_dir(&p, keep, out, visited, depth + 1)?;
        } else if keep(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}
