//! Which service an event is about, as the catalog names it.
//!
//! Senders name services in many ways (a `service` label, Kubernetes' recommended
//! `app.kubernetes.io/name`, a pod whose workload must be read from its name, a repository).
//! The candidates are tried in a documented order (`docs/catalog.md`) and the first one the
//! catalog knows, by name or alias, wins; the decision says which label it came from.

use super::Knowledge;
use crate::event::Event;
use crate::ingest::alertmanager::service_candidates;
use serde::{Deserialize, Serialize};

/// How the event's service was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMatch {
    /// The service, as the catalog names it when it knows it.
    pub name: String,
    /// Where the name was read: `label app`, `label pod`, `repository`, `sender`.
    pub from: String,
    /// Whether the catalog (or the context) knows the service.
    pub known: bool,
}

/// Finds the event's service and writes it into `event.service`. `None` when nothing in
/// the event names a service.
pub fn resolve_service(event: &mut Event, knowledge: &Knowledge) -> Option<ServiceMatch> {
    let found = find_service(event, knowledge);
    if let Some(m) = &found {
        event.service = Some(m.name.clone());
    }
    found
}

/// Finds the event's service without changing the event.
pub fn find_service(event: &Event, knowledge: &Knowledge) -> Option<ServiceMatch> {
    let candidates = service_candidates(&event.labels);
    for (label, value) in &candidates {
        if let Some(name) = knowledge.canonical(value) {
            return Some(ServiceMatch { name, from: format!("label {label}"), known: true });
        }
    }
    if let Some(own) = &event.service
        && let Some(name) = knowledge.canonical(own)
    {
        return Some(ServiceMatch { name, from: "sender".into(), known: true });
    }
    // A deploy or a change names a repository: the catalog says whose it is.
    if let Some(repo) = event.labels.get("repository")
        && let Some(s) = knowledge.catalog().services().find(|s| s.repo.as_deref() == Some(repo.as_str()))
    {
        return Some(ServiceMatch { name: s.name.clone(), from: "label repository".into(), known: true });
    }
    match (candidates.into_iter().next(), &event.service) {
        (Some((label, value)), _) => Some(ServiceMatch { name: value, from: format!("label {label}"), known: false }),
        (None, Some(own)) => Some(ServiceMatch { name: own.clone(), from: "sender".into(), known: false }),
        (None, None) => None,
    }
}
