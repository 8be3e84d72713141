//! `sparky migrate`: applies the store's schema migrations on their own (every `sparky
//! serve` applies them at start too), for a deployment that upgrades the schema in a step of
//! its own before starting the new replicas. Says what it did and the version now in force.

use super::StoreArgs;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    store: StoreArgs,
}

pub(super) fn run(args: Args) -> ExitCode {
    let result = (|| {
        let url = args.store.url()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(async {
            let store = crate::store::Store::connect(&url).await.map_err(|e| e.to_string())?;
            let applied = store.migrate().await.map_err(|e| e.to_string());
            let version = store.schema_version().await.map_err(|e| e.to_string());
            store.close().await;
            let (applied, version) = (applied?, version?);
            match applied {
                0 => println!("{}: the schema is up to date (version {version})", store.url()),
                n => println!(
                    "{}: applied {n} migration{}; the schema is at version {version}",
                    store.url(),
                    if n == 1 { "" } else { "s" }
                ),
            }
            Ok::<_, String>(ExitCode::SUCCESS)
        })
    })();
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}
