//! The knowledge a condition may read, through `kg::` functions.
//!
//! Conditions run inside the pure decide step, so they never do I/O: they read a snapshot
//! gathered beforehand. [`ContextView`] is that snapshot's interface;
//! `crate::knowledge::Knowledge` backs it with the catalog and the store. During an evaluation the view is installed
//! for the current thread and removed afterwards.

use rhai::{Array, Map};
use std::cell::RefCell;
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
    /// How many services depend on `service`, transitively: [`ContextView::downstream`]'s
    /// length without building it (the blast-radius guard asks on every L1).
    fn downstream_count(&self, service: &str) -> usize {
        self.downstream(service).len()
    }
    /// Past incidents with this fingerprint within the window, newest first.
    fn history(&self, fingerprint: &str, window_ms: u64) -> Array;
    /// The state of a pod: at least `namespace`, `name`, `known`, `last_termination_reason`
    /// (why its container last stopped: `Error`, `OOMKilled`, ...), `restarts`, `owner_kind`.
    fn pod(&self, namespace: &str, pod: &str) -> Map {
        unknown_pod(namespace, pod)
    }
    /// The owner of `service`: at least `reference` (as the catalog writes it, `""` when
    /// nobody owns it), `kind`, `name`, `email`, `slack`, `oncall`.
    fn owner(&self, service: &str) -> Map {
        let _ = service;
        unknown_owner()
    }
    /// Who is on call for `service` (`""` when nobody is named).
    fn oncall(&self, service: &str) -> String {
        let _ = service;
        String::new()
    }
}

/// The owner map when nobody is known to own the service.
pub fn unknown_owner() -> Map {
    let mut m = Map::new();
    for key in ["reference", "kind", "name", "email", "slack", "oncall"] {
        m.insert(key.into(), "".into());
    }
    m
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
