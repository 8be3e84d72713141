//! `redis.delete_keys` and `redis.flush` against a real Redis, at `SPARKY_TEST_REDIS_URL`
//! (e.g. `redis://127.0.0.1:6379`); the tests that need it say they were skipped when it is
//! not set. Every test works under its own key prefix and removes what it wrote.

use serde_json::{Value, json};
use sparky::actions::clients::RedisConfig;
use sparky::actions::{ActionsConfig, ApplyError, Args, Clients, Plan, Secret};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn redis_url() -> Option<String> {
    match std::env::var("SPARKY_TEST_REDIS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("skipped: SPARKY_TEST_REDIS_URL is not set");
            None
        }
    }
}

/// A prefix no other test or user of the instance writes under.
fn unique_prefix() -> String {
    format!("sparkytest:{}:{}:", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst))
}

fn clients(url: &str) -> Clients {
    Clients::new(ActionsConfig {
        redis: RedisConfig {
            instances: BTreeMap::from([("default".to_string(), Secret(url.to_string()))]),
            ..RedisConfig::default()
        },
        ..ActionsConfig::default()
    })
}

fn args(pairs: &[(&str, Value)]) -> Args {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn plan(action: &str, pairs: &[(&str, Value)]) -> Result<Plan, String> {
    sparky::actions::find(action).unwrap().plan(&args(pairs)).map_err(|e| e.0)
}

async fn apply(plan: &Plan, clients: &Clients) -> Result<sparky::actions::Applied, ApplyError> {
    (sparky::actions::find(&plan.action).unwrap().apply)(plan, clients).await
}

/// A direct connection, to set up and look.
struct Redis(redis::aio::MultiplexedConnection, String);

impl Redis {
    async fn open(url: &str) -> Redis {
        let client = redis::Client::open(url).unwrap();
        Redis(client.get_multiplexed_async_connection().await.unwrap(), unique_prefix())
    }

    /// Writes `prefix + key` for each key.
    async fn set(&mut self, keys: &[&str]) {
        for k in keys {
            let _: () =
                redis::cmd("SET").arg(format!("{}{k}", self.1)).arg("v").query_async(&mut self.0).await.unwrap();
        }
    }

    /// The keys under this test's prefix, without it.
    async fn keys(&mut self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.1))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.0)
                .await
                .unwrap();
            out.extend(batch.into_iter().map(|k| k[self.1.len()..].to_string()));
            cursor = next;
            if cursor == 0 {
                return out;
            }
        }
    }

    async fn clean(&mut self) {
        let keys: Vec<String> = self.keys().await.into_iter().map(|k| format!("{}{k}", self.1)).collect();
        for chunk in keys.chunks(500) {
            let _: usize = redis::cmd("DEL").arg(chunk).query_async(&mut self.0).await.unwrap();
        }
    }
}

fn set_of(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[tokio::test]
async fn delete_keys_deletes_exactly_the_matching_keys_and_is_idempotent() {
    let Some(url) = redis_url() else { return };
    let mut r = Redis::open(&url).await;
    let p = r.1.clone();
    r.set(&["user:1:a", "user:1:b", "user:1:c:nested", "user:11:a", "user:2:a", "other", "user:1"]).await;
    let plan =
        plan("redis.delete_keys", &[("pattern", json!(format!("{p}user:1:*"))), ("max_keys", json!(10))]).unwrap();
    assert_eq!(plan.target, format!("redis:default/{p}user:1:*"));
    let c = clients(&url);

    let done = apply(&plan, &c).await.unwrap();
    assert_eq!(done.details["matched"], 3, "{done:?}");
    assert_eq!(done.details["deleted"], 3, "{done:?}");
    assert_eq!(r.keys().await, set_of(&["user:11:a", "user:2:a", "other", "user:1"]));

    let again = apply(&plan, &c).await.unwrap();
    assert_eq!((again.details["matched"].clone(), again.details["deleted"].clone()), (json!(0), json!(0)));
    assert!(again.summary.contains("nothing to delete"), "{}", again.summary);
    assert_eq!(r.keys().await, set_of(&["user:11:a", "user:2:a", "other", "user:1"]));
    r.clean().await;
}

#[tokio::test]
async fn more_matches_than_max_keys_deletes_nothing() {
    let Some(url) = redis_url() else { return };
    let mut r = Redis::open(&url).await;
    let p = r.1.clone();
    let five = ["s:1", "s:2", "s:3", "s:4", "s:5", "t:1"];
    r.set(&five).await;
    let c = clients(&url);

    let four = plan("redis.delete_keys", &[("pattern", json!(format!("{p}s:*"))), ("max_keys", json!(4))]).unwrap();
    match apply(&four, &c).await {
        Err(ApplyError::Refused(m)) => {
            assert!(m.contains("more than 4 keys") && m.contains("nothing was deleted"), "{m}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(r.keys().await, set_of(&five), "a refused run deleted keys");

    // Exactly max_keys matching keys is within the bound.
    let exact = plan("redis.delete_keys", &[("pattern", json!(format!("{p}s:*"))), ("max_keys", json!(5))]).unwrap();
    let done = apply(&exact, &c).await.unwrap();
    assert_eq!(done.details["deleted"], 5);
    assert_eq!(r.keys().await, set_of(&["t:1"]));
    r.clean().await;
}

#[tokio::test]
async fn many_keys_are_scanned_and_deleted_in_batches() {
    let Some(url) = redis_url() else { return };
    let mut r = Redis::open(&url).await;
    let p = r.1.clone();
    let names: Vec<String> = (0..1203).map(|i| format!("bulk:{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    r.set(&refs).await;
    r.set(&["keep:1"]).await;
    let c = clients(&url);

    let short =
        plan("redis.delete_keys", &[("pattern", json!(format!("{p}bulk:*"))), ("max_keys", json!(1202))]).unwrap();
    assert!(matches!(apply(&short, &c).await, Err(ApplyError::Refused(_))));
    assert_eq!(r.keys().await.len(), 1204);

    let enough =
        plan("redis.delete_keys", &[("pattern", json!(format!("{p}bulk:*"))), ("max_keys", json!(1203))]).unwrap();
    let done = apply(&enough, &c).await.unwrap();
    assert_eq!((done.details["matched"].clone(), done.details["deleted"].clone()), (json!(1203), json!(1203)));
    assert_eq!(r.keys().await, set_of(&["keep:1"]));
    r.clean().await;
}

#[tokio::test]
async fn flush_empties_one_namespace_only() {
    let Some(url) = redis_url() else { return };
    let mut r = Redis::open(&url).await;
    let p = r.1.clone();
    r.set(&["cache:a", "cache:b:c", "cache2:a", "cachex", "cache"]).await;
    let c = clients(&url);
    let plan = plan("redis.flush", &[("prefix", json!(format!("{p}cache:"))), ("max_keys", json!(2))]).unwrap();
    assert_eq!(plan.target, format!("redis:default/{p}cache:*"));
    let done = apply(&plan, &c).await.unwrap();
    assert_eq!(done.details["deleted"], 2);
    assert_eq!(r.keys().await, set_of(&["cache2:a", "cachex", "cache"]));
    let again = apply(&plan, &c).await.unwrap();
    assert_eq!(again.details["deleted"], 0);

    r.set(&["cache:1", "cache:2", "cache:3"]).await;
    assert!(matches!(apply(&plan, &c).await, Err(ApplyError::Refused(_))));
    assert_eq!(r.keys().await, set_of(&["cache2:a", "cachex", "cache", "cache:1", "cache:2", "cache:3"]));
    r.clean().await;
}

#[test]
fn over_broad_patterns_and_prefixes_are_refused_at_plan() {
    for pattern in ["", "*", "**", "?", "[u]ser:*", "us*", "u?er:1:*", "   *"] {
        let err = plan("redis.delete_keys", &[("pattern", json!(pattern)), ("max_keys", json!(10))]).unwrap_err();
        assert!(err.contains("pattern"), "{pattern}: {err}");
    }
    for prefix in ["", "*", "a:", "user", "user:*", "user:?:"] {
        assert!(plan("redis.flush", &[("prefix", json!(prefix)), ("max_keys", json!(10))]).is_err(), "{prefix}");
    }
    assert!(plan("redis.delete_keys", &[("pattern", json!("user:1:*")), ("max_keys", json!(0))]).is_err());
}

#[tokio::test]
async fn an_unknown_instance_fails_and_an_unreachable_one_is_transient() {
    let c = clients("redis://127.0.0.1:1");
    let other = plan(
        "redis.delete_keys",
        &[("pattern", json!("user:1:*")), ("max_keys", json!(10)), ("instance", json!("sessions"))],
    )
    .unwrap();
    match apply(&other, &c).await {
        Err(ApplyError::Failed(m)) => assert!(m.contains("`sessions`"), "{m}"),
        x => panic!("expected a failure, got {x:?}"),
    }
    let down = plan("redis.delete_keys", &[("pattern", json!("user:1:*")), ("max_keys", json!(10))]).unwrap();
    match apply(&down, &c).await {
        Err(ApplyError::Transient(m)) => assert!(m.contains("redis.delete_keys"), "{m}"),
        x => panic!("expected a transient failure, got {x:?}"),
    }
}
