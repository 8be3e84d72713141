//! Reading playbook files from disk: files or folders, `*.sparky`, in a stable order.

use crate::diagnostics::SourceFile;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads every `.sparky` file under `paths`, sorted within each folder.
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
            collect_dir(path, &mut files, 0)?;
        } else {
            files.push(path.clone());
        }
    }
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

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("`{}` is nested more than 32 folders deep; is there a symlink loop?", dir.display()));
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
            collect_dir(&p, out, depth + 1)?;
        } else if p.extension().is_some_and(|e| e == "sparky") {
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
