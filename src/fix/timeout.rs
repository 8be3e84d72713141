//! `timeout`: raise a timeout in a configuration file by the playbook's `factor`, at most to
//! its `max`. The analyzer names the file and key (`path`, `key`); the value is a duration
//! (`"2s"`, `"500ms"`) or a number whose unit the key names (`timeout_ms`, `readTimeoutSeconds`).

use super::{ChangeSet, FixError, FixRequest, GeneratorSpec, edit, read};
use crate::actions::{ParamSpec, ParamType};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "timeout",
    summary: "Raise a timeout in configuration by a bounded factor.",
    params: &[
        ParamSpec::new("factor", ParamType::Number, "Multiplier for the current timeout.").literal(),
        ParamSpec::new("max", ParamType::Duration, "The longest timeout the fix may set.").literal(),
    ],
    generate,
};

/// Milliseconds per unit of a bare number, from the key's name.
fn unit_of(key: &str) -> Option<u64> {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| last.ends_with(s));
    if ends(&["ms", "millis", "milliseconds"]) {
        Some(1)
    } else if ends(&["seconds", "secs", "_s", "sec"]) {
        Some(1_000)
    } else if ends(&["minutes", "mins", "_m"]) {
        Some(60_000)
    } else {
        None
    }
}

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let file = request.proposed_str("path").ok_or_else(|| FixError::new("the analyzer names no `path` (the file)"))?;
    let key = request.proposed_str("key").ok_or_else(|| FixError::new("the analyzer names no `key` (the timeout)"))?;
    let factor = request.number("factor")?;
    if !(factor > 1.0 && factor <= 10.0) {
        return Err(FixError::new(format!("`factor` is {factor}: a raise is more than 1 and at most 10")));
    }
    let max_ms = match request.bound("max") {
        Some(serde_json::Value::String(s)) => crate::dsl::parse_duration(s),
        _ => None,
    }
    .ok_or_else(|| FixError::new("the playbook's `l2` gives no `max` duration"))?;
    let format = edit::Format::of(file)
        .ok_or_else(|| FixError::new(format!("`{file}` is not a YAML, JSON or TOML file (by its extension)")))?;
    let old = edit::get(format, &read(repo, file)?, key).map_err(|e| FixError::new(format!("`{file}`: {e}")))?;
    // A duration keeps its form; a number keeps its unit.
    let (old_ms, write_as): (u64, Box<dyn Fn(u64) -> String>) = match old.parse::<f64>() {
        Ok(n) => {
            let unit = unit_of(key).ok_or_else(|| {
                FixError::new(format!(
                    "`{key}` is the number {old}, and its name does not say its unit (ms, seconds, minutes)"
                ))
            })?;
            ((n * unit as f64) as u64, Box::new(move |ms| super::number_text((ms / unit) as f64)))
        }
        Err(_) => {
            let ms = crate::dsl::parse_duration(&old)
                .ok_or_else(|| FixError::new(format!("`{key}` is `{old}`, neither a duration nor a number")))?;
            (ms, Box::new(|ms| crate::dsl::ast::Duration { millis: ms }.to_string()))
        }
    };
    if old_ms >= max_ms {
        return Err(FixError::new(format!(
            "`{key}` is already {} (`{old}`), at or above the playbook's `max`",
            crate::dsl::ast::Duration { millis: old_ms }
        )));
    }
    let new_ms = ((old_ms as f64 * factor) as u64).min(max_ms);
    let new = write_as(new_ms);
    let title = format!("raise `{key}` from `{old}` to `{new}` in `{file}`");
    let why = vec![
        request.fix.summary.clone(),
        format!(
            "Raised by the playbook's factor {} and capped at its `max` ({}).",
            super::number_text(factor),
            crate::dsl::ast::Duration { millis: max_ms }
        ),
    ];
    super::config_value::set_value(repo, request, file, key, &new, title, why)
}
