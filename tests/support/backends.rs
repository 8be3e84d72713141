//! The store tests run on every backend this machine has: SQLite always (a file in a
//! temporary folder), PostgreSQL when `SPARKY_TEST_DATABASE_URL` names a server (each test in
//! a schema of its own, dropped afterwards). Without it the PostgreSQL half is skipped, and
//! says so.

#![allow(dead_code)]

use sqlx::Executor;
use std::sync::atomic::{AtomicU64, Ordering};

/// A database for one test.
pub struct TestDb {
    /// `sqlite` or `postgres`, for assertion messages.
    pub name: &'static str,
    /// The store URL.
    pub url: String,
    dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TestDb {
    /// A fresh SQLite file.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("sparky.db").display());
        TestDb { name: "sqlite", url, dir: Some(dir), schema: None }
    }

    /// A fresh schema on the test PostgreSQL, or none (with a visible skip) when
    /// `SPARKY_TEST_DATABASE_URL` is unset.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let Ok(base) = std::env::var("SPARKY_TEST_DATABASE_URL") else {
            eprintln!("SKIP {test} on PostgreSQL: SPARKY_TEST_DATABASE_URL is not set");
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let schema = format!("sparky_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let admin = sqlx::PgPool::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("SPARKY_TEST_DATABASE_URL={base} does not answer: {e}"));
        admin
            .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str())
            .await
            .unwrap();
        admin.close().await;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Some(TestDb { name: "postgres", url, dir: None, schema: Some((base, schema)) })
    }

    /// A fresh database on backend `on` (one of [`names`]).
    pub async fn on(on: &str, test: &str) -> TestDb {
        match on {
            "postgres" => TestDb::postgres(test).await.expect("SPARKY_TEST_DATABASE_URL is set"),
            _ => TestDb::sqlite(),
        }
    }

    /// The folder of a SQLite database (for other files a test writes next to it).
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else { return };
        // A runtime of its own: the test's may be shutting down.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(admin) = sqlx::PgPool::connect(&base).await {
                    // A failed test may leave a transaction open on it: never wait long.
                    let sql = format!("SET lock_timeout = '2s'; DROP SCHEMA IF EXISTS {schema} CASCADE");
                    let _ = admin.execute(sql.as_str()).await;
                    admin.close().await;
                }
            });
        })
        .join();
    }
}

/// The backends to run `test` on: `sqlite`, and `postgres` when there is one (else a
/// visible skip).
pub fn names(test: &str) -> Vec<&'static str> {
    if std::env::var_os("SPARKY_TEST_DATABASE_URL").is_some() {
        vec!["sqlite", "postgres"]
    } else {
        eprintln!("SKIP {test} on PostgreSQL: SPARKY_TEST_DATABASE_URL is not set");
        vec!["sqlite"]
    }
}
