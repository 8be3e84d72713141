//! `redis.flush`: empty one cache namespace, the keys under a literal prefix such as
//! `profile-cache:`.
//!
//! The same all-or-nothing, SCAN-bounded delete as `redis.delete_keys` (whose code it calls),
//! on the pattern `<prefix>*`. The prefix is a literal written in the playbook, never taken
//! from the alert, and ends with a separator so that `cache:` cannot also flush `cache2:`.
//! Never FLUSHDB or FLUSHALL.

use super::redis_delete_keys::{self, MIN_PREFIX};
use super::{
    ActionSpec, ApplyError, ApplyFuture, Args, Clients, ParamSpec, ParamType, Plan, PlanError, Radius, RadiusCount,
    arg_i64, arg_str, required_str,
};
use serde_json::json;

const NAME: &str = "redis.flush";
/// What a namespace prefix may end with.
const SEPARATORS: &[char] = &[':', '.', '/', '|', '#', '-', '_'];

pub(super) static SPEC: ActionSpec = ActionSpec {
    name: NAME,
    summary: "Delete every key of a cache namespace (`prefix*`), found with SCAN, at most `max_keys` of them; never FLUSHDB.",
    mutating: true,
    idempotent: true,
    blast_radius: Radius {
        count: RadiusCount::Param("max_keys"),
        doc: "the number of keys deleted, at most `max_keys`",
    },
    params: &[
        ParamSpec::new(
            "prefix",
            ParamType::Str,
            "The namespace, a literal ending with a separator (`:` `.` `/` `|` `#` `-` `_`), at least 3 characters \
             and no glob characters, e.g. `\"profile-cache:\"`; the keys `prefix*` are deleted.",
        )
        .literal(),
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
    examples: &["redis.flush(prefix = \"profile-cache:\", max_keys = 50000)"],
    integration: "redis",
    plan,
    apply,
};

/// Why `prefix` cannot name a namespace, if it cannot.
fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.contains(['*', '?', '[', ']', '\\']) {
        return Err(format!(
            "the prefix `{prefix}` holds a glob character (`*`, `?`, `[`, `]`, `\\`); write the literal namespace, e.g. `profile-cache:`"
        ));
    }
    if prefix.chars().any(char::is_whitespace) {
        return Err(format!("the prefix `{prefix}` holds a space"));
    }
    if prefix.chars().count() < MIN_PREFIX {
        return Err(format!("the prefix `{prefix}` is too broad: it must be at least {MIN_PREFIX} characters"));
    }
    if !prefix.ends_with(SEPARATORS) {
        return Err(format!(
            "the prefix `{prefix}` does not end with a separator (`:` `.` `/` `|` `#` `-` `_`), so it would also \
             flush other namespaces that start with it; write e.g. `{prefix}:`"
        ));
    }
    Ok(())
}

fn plan(args: &Args) -> Result<Plan, PlanError> {
    let prefix = required_str(args, "prefix", NAME)?;
    check_prefix(prefix).map_err(|e| PlanError(format!("{NAME}: {e}; nothing is deleted")))?;
    let max = redis_delete_keys::max_keys(args, NAME)?;
    let inst = redis_delete_keys::instance(args, NAME)?;
    let name = inst.as_deref().unwrap_or("default");
    let pattern = format!("{prefix}*");
    let mut normalized = Args::from([("prefix".to_string(), json!(prefix)), ("max_keys".to_string(), json!(max))]);
    if let Some(i) = &inst {
        normalized.insert("instance".into(), json!(i));
    }
    Ok(Plan {
        action: NAME.into(),
        target: format!("redis:{name}/{pattern}"),
        steps: redis_delete_keys::scan_steps(name, &pattern, max),
        args: normalized,
        integration: "redis".into(),
        mutating: true,
    })
}

fn apply<'a>(plan: &'a Plan, clients: &'a Clients) -> ApplyFuture<'a> {
    Box::pin(async move {
        let instance = arg_str(&plan.args, "instance").unwrap_or("default");
        let (Some(prefix), Some(max)) = (arg_str(&plan.args, "prefix"), arg_i64(&plan.args, "max_keys")) else {
            return Err(ApplyError::Failed(format!("{NAME}: the plan has no `prefix` or `max_keys`")));
        };
        check_prefix(prefix).map_err(|e| ApplyError::Refused(format!("{NAME}: {e}")))?;
        if !(1..=redis_delete_keys::MAX_KEYS_LIMIT).contains(&max) {
            return Err(ApplyError::Refused(format!("{NAME}: the plan's max_keys {max} is out of bounds")));
        }
        let pattern = format!("{prefix}*");
        let max = usize::try_from(max).unwrap_or(0);
        let d = redis_delete_keys::delete_matching(clients, NAME, instance, &pattern, max).await?;
        Ok(redis_delete_keys::applied(instance, &pattern, &d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(prefix: &str) -> Args {
        Args::from([("prefix".to_string(), json!(prefix)), ("max_keys".to_string(), json!(100))])
    }

    #[test]
    fn a_namespace_prefix_is_planned_as_prefix_star() {
        let p = plan(&args("profile-cache:")).unwrap();
        assert_eq!(p.target, "redis:default/profile-cache:*");
        assert!(p.steps[0].contains("`profile-cache:*`"));
    }

    #[test]
    fn broad_globbed_or_unseparated_prefixes_are_refused() {
        for bad in ["", "a:", "ab", "cache", "user:*", "us?r:", "[a]bc:", "my cache:", "\\*\\*:"] {
            assert!(plan(&args(bad)).is_err(), "{bad}");
        }
    }
}
