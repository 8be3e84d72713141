//! The knowledge a condition may read, through `kg::` functions.
//!
//! Conditions run inside the pure decide step, so they never do I/O: they read a snapshot
//! gathered beforehand. [`ContextView`] is that snapshot's interface; the knowledge graph
//! issue backs it with the catalog and the store. During an evaluation the view is installed
//! for the current thread and removed afterwards.

use rhai::{Array, Dynamic, Map};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// A snapshot of the knowledge about services, deploys and past incidents.
pub trait ContextView: Send + Sync {
    /// The catalog entry of `service`: at least `name`, `known`, `stateless`, `tier`, `owner`.
    fn service(&self, service: &str) -> Map;
    /// Whether `service` was deployed within the last `window_ms` milliseconds.
    fn deployed_within(&self, service: &str, window_ms: u64) -> bool;
    /// Deploys of `service` within the window, newest first, as maps.
    fn recent_deploys(&self, service: &str, window_ms: u64) -> Array;
    /// Services that depend on `service`, transitively, as `#{name, depth}` maps.
    fn downstream(&self, service: &str) -> Array;
    /// Services `service` depends on, transitively, as `#{name, depth}` maps.
    fn upstream(&self, service: &str) -> Array;
    /// Past incidents with this fingerprint within the window, newest first.
    fn history(&self, fingerprint: &str, window_ms: u64) -> Array;
    /// The state of a pod: at least `namespace`, `name`, `known`, `last_termination_reason`
    /// (why its container last stopped: `Error`, `OOMKilled`, ...), `restarts`, `owner_kind`.
    fn pod(&self, namespace: &str, pod: &str) -> Map {
        unknown_pod(namespace, pod)
    }
}

/// The pod map for a pod nobody described: nothing about it may be assumed.
pub fn unknown_pod(namespace: &str, pod: &str) -> Map {
    let mut m = Map::new();
    m.insert("namespace".into(), namespace.into());
    m.insert("name".into(), pod.into());
    m.insert("known".into(), false.into());
    m.insert("last_termination_reason".into(), "".into());
    m.insert("restarts".into(), (0 as rhai::INT).into());
    m.insert("owner_kind".into(), "".into());
    m
}

/// The service map for a service nobody described.
pub fn unknown_service(service: &str) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), service.into());
    m.insert("known".into(), false.into());
    m.insert("stateless".into(), false.into());
    m.insert("tier".into(), "".into());
    m.insert("owner".into(), "".into());
    m
}

/// No knowledge at all: every service is unknown, nothing was deployed, nothing happened.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoContext;

impl ContextView for NoContext {
    fn service(&self, service: &str) -> Map {
        unknown_service(service)
    }
    fn deployed_within(&self, _: &str, _: u64) -> bool {
        false
    }
    fn recent_deploys(&self, _: &str, _: u64) -> Array {
        Array::new()
    }
    fn downstream(&self, _: &str) -> Array {
        Array::new()
    }
    fn upstream(&self, _: &str) -> Array {
        Array::new()
    }
    fn history(&self, _: &str, _: u64) -> Array {
        Array::new()
    }
}

/// Knowledge held in memory: for tests, `sparky test` suites and examples.
#[derive(Debug, Default, Clone)]
pub struct StaticContext {
    /// "Now", in milliseconds since the Unix epoch; windows count back from it.
    pub now_ms: i64,
    pub services: HashMap<String, Map>,
    /// `(service, deployed_at_ms, details)`.
    pub deploys: Vec<(String, i64, Map)>,
    /// `(from, to)`: `from` depends on `to`.
    pub depends_on: Vec<(String, String)>,
    /// `(fingerprint, at_ms, details)`.
    pub incidents: Vec<(String, i64, Map)>,
    /// `(namespace, pod)` → what is known of the pod, over [`unknown_pod`]'s defaults.
    pub pods: HashMap<(String, String), Map>,
}

impl StaticContext {
    fn walk(&self, start: &str, forward: bool) -> Array {
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut frontier = vec![start.to_string()];
        let mut depth = 0;
        while !frontier.is_empty() && depth < 64 {
            depth += 1;
            let mut next = Vec::new();
            for node in &frontier {
                for (from, to) in &self.depends_on {
                    let (a, b) = if forward { (to, from) } else { (from, to) };
                    if a == node && b != start && !seen.iter().any(|(n, _)| n == b) {
                        seen.push((b.clone(), depth));
                        next.push(b.clone());
                    }
                }
            }
            frontier = next;
        }
        seen.into_iter()
            .map(|(name, depth)| {
                let mut m = Map::new();
                m.insert("name".into(), name.into());
                m.insert("depth".into(), depth.into());
                Dynamic::from_map(m)
            })
            .collect()
    }

    fn within(&self, at_ms: i64, window_ms: u64) -> bool {
        at_ms <= self.now_ms && self.now_ms.saturating_sub(at_ms) <= window_ms as i64
    }
}

impl ContextView for StaticContext {
    fn pod(&self, namespace: &str, pod: &str) -> Map {
        let mut full = unknown_pod(namespace, pod);
        if let Some(known) = self.pods.get(&(namespace.to_string(), pod.to_string())) {
            full.insert("known".into(), true.into());
            full.extend(known.clone());
        }
        full
    }
    fn service(&self, service: &str) -> Map {
        match self.services.get(service) {
            Some(m) => {
                let mut full = unknown_service(service);
                full.insert("known".into(), true.into());
                full.extend(m.clone());
                full
            }
            None => unknown_service(service),
        }
    }
    fn deployed_within(&self, service: &str, window_ms: u64) -> bool {
        self.deploys.iter().any(|(s, at, _)| s == service && self.within(*at, window_ms))
    }
    fn recent_deploys(&self, service: &str, window_ms: u64) -> Array {
        let mut found: Vec<_> =
            self.deploys.iter().filter(|(s, at, _)| s == service && self.within(*at, window_ms)).collect();
        found.sort_by_key(|(_, at, _)| -at);
        found.into_iter().map(|(_, _, m)| Dynamic::from_map(m.clone())).collect()
    }
    fn downstream(&self, service: &str) -> Array {
        self.walk(service, true)
    }
    fn upstream(&self, service: &str) -> Array {
        self.walk(service, false)
    }
    fn history(&self, fingerprint: &str, window_ms: u64) -> Array {
        let mut found: Vec<_> =
            self.incidents.iter().filter(|(f, at, _)| f == fingerprint && self.within(*at, window_ms)).collect();
        found.sort_by_key(|(_, at, _)| -at);
        found.into_iter().map(|(_, _, m)| Dynamic::from_map(m.clone())).collect()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<dyn ContextView>>> = const { RefCell::new(None) };
}

/// Runs `f` with `view` installed as this thread's context.
pub(super) fn with_context<R>(view: &Arc<dyn ContextView>, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.replace(Some(view.clone())));
    let result = f();
    CURRENT.with(|c| *c.borrow_mut() = previous);
    result
}

/// Calls `f` with the current view, or with [`NoContext`] outside an evaluation.
pub(super) fn current<R>(f: impl FnOnce(&dyn ContextView) -> R) -> R {
    let view = CURRENT.with(|c| c.borrow().clone());
    match view {
        Some(v) => f(v.as_ref()),
        None => f(&NoContext),
    }
}
