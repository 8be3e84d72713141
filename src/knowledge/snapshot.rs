//! The knowledge snapshot a decision reads: the catalog (shared, reloaded with the
//! playbooks), the deploys and past incidents gathered for the event, and what is known of
//! pods. Every lookup is indexed (by service, by fingerprint), so asking costs the same on a
//! catalog of ten services or ten thousand.

use super::catalog::Catalog;
use super::deploy::Deploy;
use super::history::PastIncident;
use crate::script::ContextView;
use crate::script::context::{unknown_pod, unknown_service};
use rhai::{Array, Dynamic, Map};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything known around an event, at one instant.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    /// "Now", in milliseconds since the Unix epoch; windows count back from it.
    now_ms: i64,
    catalog: Arc<Catalog>,
    /// Facts about services beyond the catalog (from a context file), laid over its entries.
    facts: HashMap<String, Map>,
    /// By service, newest first.
    deploys: HashMap<String, Vec<Deploy>>,
    /// By fingerprint, newest first.
    incidents: HashMap<String, Vec<PastIncident>>,
    /// `(namespace, pod)` → what is known of the pod, over [`unknown_pod`]'s defaults.
    pods: HashMap<(String, String), Map>,
}

impl Knowledge {
    pub fn new(catalog: Arc<Catalog>, now_ms: i64) -> Knowledge {
        Knowledge { now_ms, catalog, ..Default::default() }
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn set_now_ms(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog, to add services and dependencies (context files, tests, benchmarks).
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        Arc::make_mut(&mut self.catalog)
    }

    /// Lays `facts` over the catalog entry of `service` (or stands in for one).
    pub fn add_facts(&mut self, service: &str, facts: Map) {
        self.facts.entry(service.to_string()).or_default().extend(facts);
    }

    /// Adds a deploy; a deploy already known by its key is merged.
    pub fn add_deploy(&mut self, deploy: Deploy) {
        let list = self.deploys.entry(deploy.service.clone()).or_default();
        if let Some(known) = list.iter_mut().find(|d| d.key == deploy.key) {
            known.merge(deploy);
        } else {
            list.push(deploy);
        }
        list.sort_by_key(|d| std::cmp::Reverse(d.at));
    }

    /// Adds a past incident; one already known by its key is replaced.
    pub fn add_incident(&mut self, incident: PastIncident) {
        let list = self.incidents.entry(incident.fingerprint.clone()).or_default();
        list.retain(|i| i.key != incident.key);
        let at = list.partition_point(|i| i.opened_at > incident.opened_at);
        list.insert(at, incident);
    }

    pub fn add_pod(&mut self, namespace: &str, pod: &str, facts: Map) {
        self.pods.insert((namespace.to_string(), pod.to_string()), facts);
    }

    fn within(&self, at_ms: i64, window_ms: u64) -> bool {
        at_ms <= self.now_ms && self.now_ms.saturating_sub(at_ms) <= window_ms as i64
    }

    /// Every deploy of `service` the snapshot holds, newest first.
    pub fn deploys_of(&self, service: &str) -> impl Iterator<Item = &Deploy> {
        self.deploys.get(service).into_iter().flatten()
    }

    /// The deploys of `service` that started within the window, newest first.
    pub fn deploys_within(&self, service: &str, window_ms: u64) -> impl Iterator<Item = &Deploy> {
        self.deploys.get(service).into_iter().flatten().filter(move |d| self.within(d.at.timestamp_millis(), window_ms))
    }

    /// The incidents with `fingerprint` opened within the window, newest first.
    pub fn history_within(&self, fingerprint: &str, window_ms: u64) -> impl Iterator<Item = &PastIncident> {
        self.incidents
            .get(fingerprint)
            .into_iter()
            .flatten()
            .filter(move |i| self.within(i.opened_at.timestamp_millis(), window_ms))
    }

    /// How many past incidents the snapshot holds.
    pub fn incident_count(&self) -> usize {
        self.incidents.values().map(Vec::len).sum()
    }

    /// Whether the service is known to the catalog or described by facts.
    pub fn knows(&self, service: &str) -> bool {
        self.catalog.service(service).is_some() || self.facts.contains_key(service)
    }

    /// The name the catalog knows `name` by (its own name for an alias), when it knows it.
    pub fn canonical(&self, name: &str) -> Option<String> {
        match self.catalog.service(name) {
            Some(s) => Some(s.name.clone()),
            None => self.facts.contains_key(name).then(|| name.to_string()),
        }
    }

    /// The owner of `service`: the catalog's, or a context file's `owner:` fact standing for
    /// an owner the catalog does not describe.
    pub fn owner_of(&self, service: &str) -> Option<super::catalog::Owner> {
        self.catalog.owner(service).or_else(|| {
            let reference = self.facts_of(service)?.get("owner")?.to_string();
            Some(super::catalog::Owner { reference, ..Default::default() })
        })
    }

    /// Who is on call for `service`: the catalog's answer, or a context file's `oncall:`.
    pub fn oncall_of(&self, service: &str) -> Option<String> {
        self.catalog.oncall(service).or_else(|| self.facts_of(service)?.get("oncall").map(|o| o.to_string()))
    }

    /// The facts about `service`, written under its catalog name or under the name asked.
    fn facts_of(&self, service: &str) -> Option<&Map> {
        let name = self.catalog.service(service).map_or(service, |s| s.name.as_str());
        self.facts.get(name).or_else(|| self.facts.get(service))
    }

    fn related(list: Vec<super::catalog::Related>) -> Array {
        list.into_iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("name".into(), r.name.into());
                m.insert("depth".into(), (r.depth as rhai::INT).into());
                Dynamic::from_map(m)
            })
            .collect()
    }
}

impl ContextView for Knowledge {
    fn service(&self, service: &str) -> Map {
        let mut full = match self.catalog.service(service) {
            Some(s) => s.to_map(),
            None => unknown_service(service),
        };
        if let Some(facts) = self.facts_of(service) {
            full.insert("known".into(), true.into());
            full.extend(facts.clone());
        }
        full
    }
    fn deployed_within(&self, service: &str, window_ms: u64) -> bool {
        self.deploys_within(service, window_ms).next().is_some()
    }
    fn recent_deploys(&self, service: &str, window_ms: u64) -> Array {
        self.deploys_within(service, window_ms).map(|d| Dynamic::from_map(d.to_map())).collect()
    }
    fn downstream(&self, service: &str) -> Array {
        Self::related(self.catalog.downstream(service))
    }
    fn upstream(&self, service: &str) -> Array {
        Self::related(self.catalog.upstream(service))
    }
    fn downstream_count(&self, service: &str) -> usize {
        self.catalog.downstream_count(service)
    }
    fn history(&self, fingerprint: &str, window_ms: u64) -> Array {
        self.history_within(fingerprint, window_ms).map(|i| Dynamic::from_map(i.to_map())).collect()
    }
    fn pod(&self, namespace: &str, pod: &str) -> Map {
        let mut full = unknown_pod(namespace, pod);
        if let Some(known) = self.pods.get(&(namespace.to_string(), pod.to_string())) {
            full.insert("known".into(), true.into());
            full.extend(known.clone());
        }
        full
    }
    fn owner(&self, service: &str) -> Map {
        self.owner_of(service).unwrap_or_default().to_map()
    }
    fn oncall(&self, service: &str) -> String {
        self.oncall_of(service).unwrap_or_default()
    }
}
