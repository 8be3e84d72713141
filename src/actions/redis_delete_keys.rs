//! `redis.delete_keys`: delete the cache keys matching a pattern, found with SCAN (never KEYS).
//!
//! All or nothing: the keys are counted first (SCAN with MATCH, stopping as soon as one more
//! than `max_keys` is seen); when more than `max_keys` match, nothing is deleted and the
//! action is refused, so a selector broader than expected never half-flushes a cache. Only
//! the keys the scan found are deleted (UNLINK, in batches), so a run never deletes more than
//! `max_keys`. Idempotent: a second run finds nothing and deletes nothing.
//!
//! Plain (non-cluster) Redis: on a cluster, SCAN sees the node the connection reaches only.

use super::text::TextKind;
use super::{
    ActionSpec, Applied, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius,
    RadiusCount, arg_i64, arg_str, required_str,
};
use serde_json::json;
use std::collections::BTreeSet;

const NAME: &str = "redis.delete_keys";
/// Keys asked for per SCAN call: a hint to Redis, which keeps each call short.
const SCAN_COUNT: usize = 500;
/// Keys per UNLINK.
const DELETE_BATCH: usize = 500;
/// The largest `max_keys`, as in the parameter's range.
pub(super) const MAX_KEYS_LIMIT: i64 = 1_000_000;
/// The fewest literal characters a pattern must start with.
pub(super) const MIN_PREFIX: usize = 3;

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Delete the keys that match `pattern`, found with SCAN, at most `max_keys` of them.",
    mutating: true,
    idempotent: true,
    blast_radius: Radius {
        count: RadiusCount::Param("max_keys"),
        doc: "the number of keys deleted, at most `max_keys`",
    },
    params: &[
        ParamSpec::new(
            "pattern",
            ParamType::Str,
            "A Redis glob pattern; bind it to the event, e.g. `\"user:{labels.user_id}:*\"`. It must start with at \
             least 3 literal characters before the first `*`, `?` or `[`; an empty or over-broad pattern is refused. \
             A value from the event matches itself only: its glob characters are escaped.",
        )
        .target()
        .text(TextKind::Glob),
        ParamSpec::new(
            "max_keys",
            ParamType::Int,
            "The most keys one run may delete; when more match, nothing is deleted and the run escalates.",
        )
        .literal()
        .range(1.0, 1_000_000.0),
        ParamSpec::new(
            "instance",
            ParamType::Str,
            "Name of the Redis instance in the configuration; `default` when left out.",
        )
        .optional()
        .literal(),
    ],
    examples: &["redis.delete_keys(pattern = \"user:{labels.user_id}:*\", max_keys = 1000)"],
    integration: "redis",
    plan,
    apply,
};

/// The literal start of a glob pattern: everything before the first `*`, `?`, `[` or `\`
/// (an escape is treated as a glob character, which only ever makes the prefix shorter).
pub(super) fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    &pattern[..end]
}

/// `max_keys`, checked.
pub(super) fn max_keys(args: &Args, action: &str) -> Result<i64, PlanError> {
    match args.get("max_keys") {
        None => Err(PlanError(format!("{action}: `max_keys` is missing; a delete needs a bound"))),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=MAX_KEYS_LIMIT).contains(&n) => Ok(n),
            _ => Err(PlanError(format!(
                "{action}: `max_keys` is `{v}`; it must be a whole number from 1 to {MAX_KEYS_LIMIT}"
            ))),
        },
    }
}

/// `instance` when given (then non-blank), `None` when left out.
pub(super) fn instance(args: &Args, action: &str) -> Result<Option<String>, PlanError> {
    match args.get("instance") {
        None => Ok(None),
        Some(_) => Ok(Some(required_str(args, "instance", action)?.trim().to_string())),
    }
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let pattern = required_str(args, "pattern", NAME)?;
    let prefix = literal_prefix(pattern);
    if prefix.trim().chars().count() < MIN_PREFIX {
        return Err(PlanError(format!(
            "{NAME}: the pattern `{pattern}` is too broad: it must start with at least {MIN_PREFIX} literal \
             characters before the first `*`, `?` or `[` (e.g. `user:42:*`); nothing is deleted"
        )));
    }
    let max = max_keys(args, NAME)?;
    let inst = instance(args, NAME)?;
    let name = inst.as_deref().unwrap_or("default");
    let mut normalized = Args::from([("pattern".to_string(), json!(pattern)), ("max_keys".to_string(), json!(max))]);
    if let Some(i) = &inst {
        normalized.insert("instance".into(), json!(i));
    }
    Ok(Plan {
        action: NAME.into(),
        target: format!("redis:{name}/{pattern}"),
        steps: scan_steps(name, pattern, max),
        args: normalized,
        integration: "redis".into(),
        mutating: true,
    })
}

/// The steps of a SCAN-bounded delete, in words.
pub(super) fn scan_steps(instance: &str, pattern: &str, max: i64) -> Vec<String> {
    vec![
        format!("on Redis `{instance}`, find the keys matching `{pattern}` with SCAN (never KEYS)"),
        format!("if more than {max} keys match (`max_keys`), delete nothing and escalate"),
        format!("otherwise delete the keys found (UNLINK, in batches of {DELETE_BATCH}); if none match, do nothing"),
    ]
}

/// What a SCAN-bounded delete did.
pub(super) struct Deleted {
    /// Keys the scan found.
    pub matched: usize,
    /// Keys the deletes removed (fewer than `matched` when some expired or were deleted
    /// in between).
    pub deleted: usize,
}

fn redis_error(e: &redis::RedisError, what: &str) -> ApplyError {
    let msg = format!("{what}: {e}");
    if e.is_timeout() || e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        ApplyError::Transient(msg)
    } else {
        ApplyError::Failed(msg)
    }
}

/// Finds the keys matching `pattern` on `instance` with SCAN and, when there are at most
/// `max`, deletes them; when there are more, deletes nothing and refuses. Shared by
/// `redis.delete_keys` and `redis.flush`.
pub(super) async fn delete_matching(
    clients: &Clients,
    action: &str,
    instance: &str,
    pattern: &str,
    max: usize,
) -> Result<Deleted, ApplyError> {
    let mut conn = clients.redis(instance).await.map_err(|e| {
        if clients.config.redis.instances.contains_key(instance) {
            ApplyError::Transient(format!("{action}: {e}"))
        } else {
            ApplyError::Failed(format!("{action}: {e}"))
        }
    })?;
    // SCAN may return a key more than once: the set counts each once.
    let mut keys: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error(&e, &format!("{action}: SCAN on Redis `{instance}` failed")))?;
        keys.extend(batch);
        if keys.len() > max {
            return Err(ApplyError::Refused(format!(
                "{action}: more than {max} keys (`max_keys`) match `{pattern}` on Redis `{instance}` (stopped counting \
                 at {}); nothing was deleted",
                keys.len()
            )));
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    let matched = keys.len();
    let keys: Vec<Vec<u8>> = keys.into_iter().collect();
    let mut deleted = 0usize;
    for batch in keys.chunks(DELETE_BATCH) {
        // Once deletes have begun, an error is final, never retried: a second attempt would
        // scan again and could delete up to `max_keys` more.
        let n: usize = redis::cmd("UNLINK").arg(batch).query_async(&mut conn).await.map_err(|e| {
            ApplyError::Failed(format!(
                "{action}: UNLINK on Redis `{instance}` failed after {deleted} of {matched} keys were deleted: {e}; \
                 not retried, so that no more than `max_keys` are deleted"
            ))
        })?;
        deleted += n;
    }
    Ok(Deleted { matched, deleted })
}

/// The `Applied` of a SCAN-bounded delete.
pub(super) fn applied(instance: &str, pattern: &str, d: &Deleted) -> Applied {
    let summary = if d.matched == 0 {
        format!("no key matches `{pattern}` on Redis `{instance}`; nothing to delete")
    } else {
        format!("deleted {} of {} keys matching `{pattern}` on Redis `{instance}`", d.deleted, d.matched)
    };
    Applied {
        summary,
        details: json!({ "instance": instance, "pattern": pattern, "matched": d.matched, "deleted": d.deleted }),
    }
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let instance = arg_str(&plan.args, "instance").unwrap_or("default");
        let (Some(pattern), Some(max)) = (arg_str(&plan.args, "pattern"), arg_i64(&plan.args, "max_keys")) else {
            return Err(ApplyError::Failed(format!("{NAME}: the plan has no `pattern` or `max_keys`")));
        };
        // The plan was checked by plan(); a hand-made one is checked again.
        if literal_prefix(pattern).trim().chars().count() < MIN_PREFIX || !(1..=MAX_KEYS_LIMIT).contains(&max) {
            return Err(ApplyError::Refused(format!(
                "{NAME}: the plan's pattern `{pattern}` or max_keys {max} is out of bounds"
            )));
        }
        let max = usize::try_from(max).unwrap_or(0);
        let d = delete_matching(clients, NAME, instance, pattern, max).await?;
        Ok(applied(instance, pattern, &d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, serde_json::Value)]) -> Args {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn over_broad_or_empty_patterns_are_refused() {
        for p in ["", "  ", "*", "**", "?*", "[a-z]*", "ab*", "a*b:*", "\\*\\*\\*", "  x*"] {
            let err = plan(&args(&[("pattern", json!(p)), ("max_keys", json!(10))])).unwrap_err();
            assert!(err.0.contains("pattern"), "{p}: {err}");
        }
    }

    #[test]
    fn a_user_pattern_is_planned_with_its_target_and_the_args_as_given() {
        let p = plan(&args(&[("pattern", json!("user:42:*")), ("max_keys", json!(1000))])).unwrap();
        assert_eq!(p.target, "redis:default/user:42:*");
        assert_eq!(p.args.len(), 2);
        assert!(p.mutating);
        let p =
            plan(&args(&[("pattern", json!("abc")), ("max_keys", json!(1)), ("instance", json!("sessions"))])).unwrap();
        assert_eq!(p.target, "redis:sessions/abc");
    }

    #[test]
    fn max_keys_is_required_and_bounded() {
        for m in [json!(0), json!(-1), json!(1_000_001), json!("10"), json!(1.5)] {
            assert!(plan(&args(&[("pattern", json!("user:1:*")), ("max_keys", m.clone())])).is_err(), "{m}");
        }
        assert!(plan(&args(&[("pattern", json!("user:1:*"))])).is_err());
    }
}
