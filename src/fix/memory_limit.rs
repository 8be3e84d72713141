//! `memory_limit`: raise a container's memory limit by the playbook's `factor`, at most to its
//! `max` — in a Kubernetes manifest or Kustomize patch (`containers[].resources.limits.memory`
//! of the container the analyzer names), else in Helm values (`resources.limits.memory`).

use super::edit::{self, Seg};
use super::{ChangeSet, FixError, FixRequest, GeneratorSpec, Place, choose, value_at, yaml_outlines};
use crate::actions::{ParamSpec, ParamType};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "memory_limit",
    summary: "Raise a container's memory limit in manifests, Kustomize or Helm values.",
    params: &[
        ParamSpec::new("factor", ParamType::Number, "Multiplier for the current limit, e.g. `1.5`.").literal(),
        ParamSpec::new("max", ParamType::Str, "Ceiling as a Kubernetes quantity, e.g. `\"4Gi\"`.").literal(),
    ],
    generate,
};

/// A Kubernetes memory quantity in bytes: `512Mi`, `1Gi`, `1G`, `1e9`, `1048576`.
pub fn bytes(q: &str) -> Option<f64> {
    let q = q.trim();
    let units: [(&str, f64); 12] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().filter(|v| *v >= 0.0).map(|v| v * factor);
        }
    }
    q.parse::<f64>().ok().filter(|v| *v >= 0.0)
}

/// Bytes as a quantity people write: whole `Gi` when it is one, else `Mi` rounded up.
pub fn quantity(bytes: f64) -> String {
    let mi = (bytes / 1024f64.powi(2)).ceil() as u64;
    if mi.is_multiple_of(1024) { format!("{}Gi", mi / 1024) } else { format!("{mi}Mi") }
}

/// The memory limits of `container` in manifests (any container when it is `None`), else
/// in Helm values.
fn places(repo: &Path, container: Option<&str>, service: &str) -> Vec<Place> {
    let mut manifests = Vec::new();
    let mut helm = Vec::new();
    for (file, text, entries) in yaml_outlines(repo) {
        for e in &entries {
            let path = edit::path_text(&e.path);
            if !path.ends_with("resources.limits.memory") || e.value.0 == e.value.1 {
                continue;
            }
            let place = Place { file: file.clone(), key: path.clone(), value: e.scalar(&text) };
            // `...containers[i].resources.limits.memory`: the container's name is beside it.
            let n = e.path.len();
            if n >= 4 && matches!(e.path[n - 4], Seg::Item(_)) {
                let item = edit::path_text(&e.path[..n - 3]);
                let name = value_at(&text, &entries, e.doc, &format!("{item}.name")).unwrap_or_default();
                let owner = value_at(&text, &entries, e.doc, "metadata.name").unwrap_or_default();
                let ours = match container {
                    Some(c) => name == c,
                    None => service.is_empty() || owner == service,
                };
                if ours {
                    manifests.push(place);
                }
            } else if file.rsplit('/').next().is_some_and(|f| f.starts_with("values")) {
                // Helm: top-level `resources`, or the container's own section.
                let section_ok = e.path.len() == 3
                    || container.is_some_and(|c| e.path.iter().any(|s| *s == Seg::Key(c.to_string())));
                if section_ok {
                    helm.push(place);
                }
            }
        }
    }
    if manifests.is_empty() { helm } else { manifests }
}

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let factor = request.number("factor")?;
    if !(factor > 1.0 && factor <= 4.0) {
        return Err(FixError::new(format!("`factor` is {factor}: a raise is more than 1 and at most 4")));
    }
    let max_text = request
        .bound("max")
        .and_then(|v| v.as_str())
        .ok_or_else(|| FixError::new("the playbook's `l2` gives no `max` quantity"))?;
    let max = bytes(max_text).ok_or_else(|| FixError::new(format!("`max` `{max_text}` is not a memory quantity")))?;
    let container = request.proposed_str("container");
    let service = request.who();
    let what = match container {
        Some(c) => format!("memory limit of container `{c}`"),
        None => "memory limit".to_string(),
    };
    let place = choose(places(repo, container, &service), &what)?;
    let current = bytes(&place.value).ok_or_else(|| {
        FixError::new(format!("`{}` in `{}` is `{}`, not a memory quantity", place.key, place.file, place.value))
    })?;
    if current >= max {
        return Err(FixError::new(format!(
            "the {what} is already {} in `{}`, at or above the playbook's `max` ({max_text})",
            place.value, place.file
        )));
    }
    let new = quantity((current * factor).min(max));
    let who = container.map(str::to_string).unwrap_or_else(|| service.clone());
    let title = format!("raise the memory limit of {who} from {} to {new}", place.value);
    let why = vec![
        request.fix.summary.clone(),
        format!("Raised by the playbook's factor {} and capped at its `max` ({max_text}).", super::number_text(factor)),
    ];
    super::config_value::set_value(repo, request, &place.file, &place.key, &new, title, why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_and_write() {
        assert_eq!(bytes("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(bytes("1G"), Some(1e9));
        assert_eq!(bytes("lots"), None);
        assert_eq!(quantity(bytes("512Mi").unwrap() * 1.5), "768Mi");
        assert_eq!(quantity(bytes("1Gi").unwrap() * 2.0), "2Gi");
        assert_eq!(quantity(1e9), "954Mi");
    }
}
