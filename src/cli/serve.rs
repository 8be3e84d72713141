//! `sparky serve`: the daemon. With no configuration it runs on the embedded defaults
//! (SQLite `sparky.db` here, `./playbooks`, dry-run, 127.0.0.1:8080).

use crate::daemon::{self, config::Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The configuration file (`sparky.yaml`, see docs/configuration.md); `./sparky.yaml` is
    /// read when it exists, otherwise the embedded defaults are used.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address and port to listen on (overrides `listen` in the configuration).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Playbook files or folders (override `playbooks` in the configuration).
    #[arg(long)]
    playbooks: Vec<PathBuf>,
    /// Service catalog files or folders (override `catalog` in the configuration).
    #[arg(long)]
    catalog: Vec<PathBuf>,
    /// The store URL (overrides `store`), e.g. `sqlite://sparky.db`.
    #[arg(long)]
    store: Option<String>,
    /// This replica's name (overrides `replica`; by default the host name).
    #[arg(long)]
    replica: Option<String>,
    /// Accept sources without authentication on a non-loopback address.
    #[arg(long)]
    insecure: bool,
}

pub(super) fn run(args: Args) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let default_file = PathBuf::from("sparky.yaml");
    let path = args.config.clone().or_else(|| default_file.exists().then_some(default_file));
    let mut config = match &path {
        Some(p) => match Config::load(p, &env) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if !args.catalog.is_empty() {
        config.catalog = Some(args.catalog.clone());
    }
    if !args.playbooks.is_empty() {
        config.playbooks = args.playbooks.clone();
    }
    if let Some(store) = &args.store {
        config.store = store.clone();
    }
    if let Some(replica) = &args.replica {
        config.replica = Some(replica.clone());
    }
    daemon::init_logging(&config);
    match &path {
        Some(p) => tracing::info!(config = %p.display(), "configuration read"),
        None => tracing::info!("no configuration file: running on the embedded defaults"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        let running = daemon::start(daemon::Options {
            config,
            insecure: args.insecure,
            clock: daemon::Clock::system(),
            facts: None,
        })
        .await?;
        running.wait().await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
