//! `config_value`: set a value in a YAML, JSON or TOML configuration file — the file and key
//! come from the playbook (`path`, `key`), the value from the analyzer (`value`), bounded by
//! the playbook's `max` when the value is a number.

use super::edit::{self, Format};
use super::pin::{Fact, write_pin};
use super::{ChangeSet, FixError, FixRequest, GeneratorSpec, read, write};
use crate::actions::{ParamSpec, ParamType};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "config_value",
    summary: "Set a bounded value in a YAML, JSON or TOML configuration file.",
    params: &[
        ParamSpec::new("path", ParamType::Str, "The file, relative to the repository root.").literal(),
        ParamSpec::new("key", ParamType::Str, "Dotted key of the value, e.g. `server.pool.size`.").literal(),
        ParamSpec::new("max", ParamType::Number, "The largest value the fix may write.").literal().optional(),
    ],
    generate,
};

fn text_arg(request: &FixRequest, name: &str) -> Result<String, FixError> {
    request
        .bound(name)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| FixError::new(format!("the playbook's `l2` gives no `{name}`")))
}

/// Sets `key` of `file` to `new` and pins it: the change set's pieces, shared with the
/// generators built on it (`timeout`, `replicas_floor`).
pub(super) fn set_value(
    repo: &Path,
    request: &FixRequest,
    file: &str,
    key: &str,
    new: &str,
    title: String,
    why: Vec<String>,
) -> Result<ChangeSet, FixError> {
    let format = Format::of(file)
        .ok_or_else(|| FixError::new(format!("`{file}` is not a YAML, JSON or TOML file (by its extension)")))?;
    let text = read(repo, file)?;
    let old = edit::get(format, &text, key).map_err(|e| FixError::new(format!("`{file}`: {e}")))?;
    if old == new {
        return Err(FixError::new(format!("`{key}` in `{file}` is already `{new}`: there is nothing to change")));
    }
    let changed = edit::set(format, &text, key, new).map_err(|e| FixError::new(format!("`{file}`: {e}")))?;
    write(repo, file, &changed)?;
    let facts = [Fact::Value { file: file.into(), format, key: key.into(), value: new.into() }];
    let test = write_pin(repo, &request.incident_key, &title, &facts)?;
    let mut description = why;
    description.push(format!("`{key}` in `{file}`: `{old}` → `{new}`."));
    let mut files = vec![file.to_string(), test.path.clone()];
    files.sort();
    Ok(ChangeSet { generator: request.fix.generator.clone(), title, description, files, test })
}

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let file = text_arg(request, "path")?;
    let key = text_arg(request, "key")?;
    let new = match request.proposed("value") {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => return Err(FixError::new("the analyzer proposes no `value` to set")),
    };
    if new.contains('\n') {
        return Err(FixError::new("the proposed value spans several lines; only one-line values are set"));
    }
    if request.bound("max").is_some() {
        let max = request.number("max")?;
        let n: f64 = new
            .parse()
            .map_err(|_| FixError::new(format!("the proposed value `{new}` is not a number, and `max` bounds it")))?;
        if n > max {
            return Err(FixError::new(format!(
                "the proposed value {new} is above the playbook's `max` ({})",
                super::number_text(max)
            )));
        }
    }
    let title = format!("set `{key}` to `{new}` in `{file}`");
    let why = vec![request.fix.summary.clone()];
    set_value(repo, request, &file, &key, &new, title, why)
}
