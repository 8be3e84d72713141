//! The `kg::` functions: the knowledge graph as conditions see it.

use super::context::current;
use crate::dsl::parse_duration;
use rhai::{Array, EvalAltResult, Map, Module, Position};

type Res<T> = Result<T, Box<EvalAltResult>>;

fn window(text: &str) -> Res<u64> {
    parse_duration(text).ok_or_else(|| {
        Box::new(EvalAltResult::ErrorRuntime(
            format!("`{text}` is not a duration; write one such as `30m`, `2h` or `7d`").into(),
            Position::NONE,
        ))
    })
}

/// The `kg` module registered in the engine.
pub(super) fn module() -> Module {
    let mut m = Module::new();
    m.set_native_fn("service", |name: &str| -> Res<Map> { Ok(current(|c| c.service(name))) });
    m.set_native_fn("deployed_within", |name: &str, w: &str| -> Res<bool> {
        let w = window(w)?;
        Ok(current(|c| c.deployed_within(name, w)))
    });
    m.set_native_fn("recent_deploys", |name: &str, w: &str| -> Res<Array> {
        let w = window(w)?;
        Ok(current(|c| c.recent_deploys(name, w)))
    });
    m.set_native_fn("downstream", |name: &str| -> Res<Array> { Ok(current(|c| c.downstream(name))) });
    m.set_native_fn("upstream", |name: &str| -> Res<Array> { Ok(current(|c| c.upstream(name))) });
    m.set_native_fn("pod", |namespace: &str, pod: &str| -> Res<Map> { Ok(current(|c| c.pod(namespace, pod))) });
    m.set_native_fn("owner", |name: &str| -> Res<Map> { Ok(current(|c| c.owner(name))) });
    m.set_native_fn("oncall", |name: &str| -> Res<String> { Ok(current(|c| c.oncall(name))) });
    m.set_native_fn("history", |fingerprint: &str, w: &str| -> Res<Array> {
        let w = window(w)?;
        Ok(current(|c| c.history(fingerprint, w)))
    });
    m
}
