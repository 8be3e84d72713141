//! `replicas_floor`: raise the minimum replica count of the service — an HPA's
//! `minReplicas`, else a Deployment's or StatefulSet's `replicas`, else a Helm chart's
//! `autoscaling.minReplicas` or `replicaCount` — to the analyzer's `replicas` (one more
//! than now when it names none), at most the playbook's `max`.

use super::{ChangeSet, FixError, FixRequest, GeneratorSpec, Place, choose, value_at, yaml_outlines};
use crate::actions::{ParamSpec, ParamType};
use std::path::Path;

pub static SPEC: GeneratorSpec = GeneratorSpec {
    name: "replicas_floor",
    summary: "Raise the minimum replica count in configuration.",
    params: &[ParamSpec::new("max", ParamType::Int, "The largest floor the fix may set.").literal()],
    generate,
};

/// Where the service's floor is set, best kind first.
fn places(repo: &Path, service: &str) -> Vec<Place> {
    let mut hpa = Vec::new();
    let mut workload = Vec::new();
    let mut helm = Vec::new();
    for (file, text, entries) in yaml_outlines(repo) {
        let docs = entries.iter().map(|e| e.doc).max().map_or(0, |d| d + 1);
        for doc in 0..docs {
            let at = |p: &str| value_at(&text, &entries, doc, p);
            let kind = at("kind").unwrap_or_default();
            let name = at("metadata.name").unwrap_or_default();
            let place = |key: &str| at(key).map(|value| Place { file: file.clone(), key: key.into(), value });
            if kind == "HorizontalPodAutoscaler"
                && (at("spec.scaleTargetRef.name").as_deref() == Some(service) || name == service)
            {
                hpa.extend(place("spec.minReplicas"));
            } else if matches!(kind.as_str(), "Deployment" | "StatefulSet") && name == service {
                workload.extend(place("spec.replicas"));
            } else if kind.is_empty() && file.rsplit('/').next().is_some_and(|n| n.starts_with("values")) {
                let autoscaling = at("autoscaling.enabled").is_some_and(|v| v == "true");
                if autoscaling {
                    helm.extend(place("autoscaling.minReplicas"));
                } else {
                    helm.extend(place("replicaCount"));
                }
            }
        }
    }
    [hpa, workload, helm].into_iter().find(|p| !p.is_empty()).unwrap_or_default()
}

fn generate(repo: &Path, request: &FixRequest) -> Result<ChangeSet, FixError> {
    let service = request.who();
    if service.is_empty() {
        return Err(FixError::new("the fix names no service whose replicas to raise"));
    }
    let max = request.number("max")?;
    let place = choose(places(repo, &service), &format!("replica count of `{service}`"))?;
    let current: f64 = place.value.parse().map_err(|_| {
        FixError::new(format!("`{}` in `{}` is `{}`, not a number", place.key, place.file, place.value))
    })?;
    if current >= max {
        return Err(FixError::new(format!(
            "`{}` in `{}` is already {}, at or above the playbook's `max` ({})",
            place.key,
            place.file,
            place.value,
            super::number_text(max)
        )));
    }
    let wanted = match request.proposed("replicas").and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok())) {
        Some(n) => n.floor(),
        None => current + 1.0,
    };
    if wanted <= current {
        return Err(FixError::new(format!(
            "the analyzer proposes {} replicas, not more than the {} set now",
            super::number_text(wanted),
            place.value
        )));
    }
    let new = super::number_text(wanted.min(max));
    let title = format!("raise the replica floor of {service} from {} to {new}", place.value);
    let mut why = vec![request.fix.summary.clone()];
    if wanted > max {
        why.push(format!(
            "The analyzer asked for {}; the playbook's `max` caps it at {new}.",
            super::number_text(wanted)
        ));
    }
    super::config_value::set_value(repo, request, &place.file, &place.key, &new, title, why)
}
