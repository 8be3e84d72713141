//! The daemon, `sparky serve`: webhook ingest, the durable inbox, the worker that decides, hot
//! reload, the operations API and metrics.
//!
//! | file        | what it holds                                                       |
//! |-------------|---------------------------------------------------------------------|
//! | config.rs   | `sparky.yaml`: keys, defaults, `${ENV}` secrets, errors with lines  |
//! | server.rs   | the HTTP routes: webhooks, health, metrics, status, admin           |
//! | admin.rs    | the engine's operations API: executions, approvals, pauses, audit   |
//! | accept.rs   | group commit of accepted deliveries (one transaction for many)  |
//! | worker.rs   | the inbox worker: context, decide, record (escalations to the outbox) |
//! | reload.rs   | full-check reloads, atomic swap, the file watcher                   |
//! | scheduler.rs| schedules of proactive playbooks: slots, catch-up, persisted runs   |
//! | tokens.rs   | the token inventory's sources (GitHub, HTTP inventories) and their config |
//! | metrics.rs  | the Prometheus registry                                             |

mod accept;
mod admin;
pub mod config;
mod metrics;
pub mod reload;
pub mod scheduler;
mod server;
pub mod tokens;
mod worker;

use crate::analysis::{Analyzer, Builtin, RemoteAnalyzer};
use crate::store::Store;
use arc_swap::ArcSwap;
use config::{AnalyzerKind, Config, LogFormat, SourceConfig};
use metrics::Metrics;
use reload::{Loaded, ReloadStatus};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What every request handler and the worker share.
pub struct State {
    pub config: Config,
    pub sources: BTreeMap<String, SourceConfig>,
    pub store: Store,
    /// Commits deliveries, grouped.
    committer: accept::Committer,
    pub ruleset: Arc<ArcSwap<Loaded>>,
    /// Answers when a decision needs an analysis.
    pub analyzer: Arc<dyn Analyzer>,
    /// Carries L1 decisions out.
    pub engine: Arc<crate::engine::Engine>,
    /// Delivers escalations from the outbox.
    pub delivery: Arc<crate::escalate::delivery::Delivery>,
    pub reload_status: Mutex<Option<ReloadStatus>>,
    pub metrics: Arc<Metrics>,
    /// Wakes the worker when events are accepted.
    pub wake: Notify,
    /// What time it is for decisions.
    pub clock: Clock,
    /// The test hook's static facts (`Options::facts`).
    pub facts: Option<Facts>,
    /// Why the store is known to be unreachable (from the probe or the last failed commit);
    /// `None` while it answers.
    store_down: Mutex<Option<String>>,
    shutting_down: AtomicBool,
}

impl State {
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The time decisions are made at: the system's, or the one a test holds.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Why the store is known to be unreachable, if it is: webhooks and `/readyz` answer 503
    /// at once from this instead of waiting for a connection that will not come.
    pub fn store_down(&self) -> Option<String> {
        self.store_down.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records what the store last said: `None` when it answered.
    pub fn set_store_down(&self, why: Option<String>) {
        let mut down = self.store_down.lock().unwrap_or_else(|e| e.into_inner());
        match (&*down, &why) {
            (None, Some(w)) => {
                tracing::error!(error = %w, "the store is unreachable: webhooks get 503 with Retry-After until it answers")
            }
            (Some(_), None) => tracing::info!("the store answers again"),
            _ => {}
        }
        *down = why;
    }
}

/// The daemon's clock for decisions: the system's, or one a test holds and moves (so that
/// the daemon decides a suite's events at the times the simulator does).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Mutex<chrono::DateTime<chrono::Utc>>>>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock held at `at` until [`Clock::set`] moves it.
    pub fn held(at: chrono::DateTime<chrono::Utc>) -> Clock {
        Clock(Some(Arc::new(Mutex::new(at))))
    }

    /// Moves a held clock to `at` (the system's clock cannot be moved).
    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        if let Some(held) = &self.0 {
            *held.lock().unwrap_or_else(|e| e.into_inner()) = at;
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.0 {
            Some(held) => *held.lock().unwrap_or_else(|e| e.into_inner()),
            None => chrono::Utc::now(),
        }
    }
}

/// How `sparky serve` was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Config,
    /// Accept unauthenticated sources on a non-loopback address.
    pub insecure: bool,
    /// The clock decisions are made at (the system's unless a test holds one).
    pub clock: Clock,
    /// A test hook: static facts (a `sparky test` case's context) layered under what the
    /// store knows, so that a suite's case runs through the daemon from the context the
    /// simulator starts it from. `None` in production. See [`Facts`].
    pub facts: Option<Facts>,
}

/// Static facts for the worker (a test hook): the knowledge (services, pods, deploys, past
/// incidents) goes under the store's, the runs under the store's runs, the pauses beside
/// the store's; the settings replace the configured triage settings and the analysis, when
/// given, answers instead of the analyzer. Its open incidents are open until a recorded
/// decision closes them (the daemon's own close sticks). Times
/// written `ago`/`for` count back from the file's `now` (the batch's time when absent), so
/// that they do not move as the clock does.
pub type Facts = Arc<crate::triage::ContextFile>;

/// A running daemon: its address, and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    shutdown: Arc<Notify>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Running {
    /// Stops accepting, finishes what is in flight, flushes the store.
    pub async fn stop(self) -> Result<(), String> {
        self.shutdown.notify_one();
        self.task.await.map_err(|e| format!("the daemon task failed: {e}"))?
    }

    /// Waits until the daemon stops by itself (a signal).
    pub async fn wait(self) -> Result<(), String> {
        self.task.await.map_err(|e| format!("the daemon task failed: {e}"))?
    }
}

/// Sets up logging from the configuration; `RUST_LOG` overrides the level.
pub fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.log.level.clone().unwrap_or_else(|| "info".into())));
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.with_target(false).try_init(),
    };
}

/// Says at start when playbooks page and no PagerDuty is configured: those pages go nowhere
/// (each decision says so again, and `sparky_pages_undeliverable_total` counts them).
fn warn_of_pages_nowhere(config: &Config, graph: &crate::graph::RuleGraph, pagerduty: bool) {
    if pagerduty {
        return;
    }
    let paging: Vec<&str> = graph.playbooks().iter().filter(|p| p.l3.page).map(|p| p.id.as_str()).collect();
    let unmatched = config.triage.escalate_unmatched;
    if paging.is_empty() && !unmatched {
        return;
    }
    tracing::warn!(
        playbooks = %paging.join(", "),
        unmatched_high_severity = unmatched,
        "these escalations want a page, but no PagerDuty is configured (`integrations.pagerduty`): nobody will be paged; each such decision says so"
    );
}

/// Refuses unauthenticated sources on a non-loopback address unless `insecure`.
fn check_exposure(options: &Options, sources: &BTreeMap<String, SourceConfig>) -> Result<(), String> {
    let open: Vec<&str> = sources.iter().filter(|(_, s)| s.auth.is_none()).map(|(n, _)| n.as_str()).collect();
    if open.is_empty() {
        return Ok(());
    }
    let addr = options.config.listen;
    if addr.ip().is_loopback() {
        tracing::info!(
            sources = %open.join(", "),
            "these sources accept deliveries without authentication because Sparky listens on loopback ({addr}) only"
        );
        Ok(())
    } else if options.insecure {
        tracing::warn!(
            sources = %open.join(", "),
            "these sources accept deliveries WITHOUT authentication on {addr} (--insecure)"
        );
        Ok(())
    } else {
        Err(format!(
            "sources without authentication ({}) would be open to anyone who can reach {addr}; configure `auth` for each in the config file (see docs/authentication.md), listen on 127.0.0.1, or pass --insecure",
            open.join(", ")
        ))
    }
}

/// Starts the daemon: opens the store, loads the playbooks (a failure here stops the start),
/// binds, and runs the worker, the watcher and the signal handlers.
pub async fn start(options: Options) -> Result<Running, String> {
    let mut config = options.config.clone();
    // `./catalog` is chosen once, at start: a folder that disappears later (a checkout, an
    // rsync) is a reload error that keeps the catalog in force, not an empty catalog.
    config.catalog = Some(config.catalog_paths());
    let sources = config.effective_sources();
    check_exposure(&options, &sources)?;
    let mut store = Store::open(&config.store).await.map_err(|e| e.to_string())?;
    if let Some(replica) = &config.replica {
        store = store.with_replica(replica);
    }
    if let Ok(others) = store.replicas(chrono::Utc::now()).await
        && let Some(twin) = others.iter().find(|r| r.id == store.replica() && r.alive)
    {
        tracing::warn!(
            replica = %twin.id, seen_at = %twin.seen_at,
            "a replica of this name was seen moments ago: if it is another process (not this one before a restart), give each replica its own `replica` name, or they will take each other's work for their own"
        );
    }
    if let Some(facts) = &options.facts {
        let at = facts.now.unwrap_or_else(|| options.clock.now());
        crate::triage::MemoryContext::from_file(facts, Arc::default(), at).map_err(|e| format!("the facts: {e}"))?;
    }
    let (graph, catalog, diagnostics) =
        reload::build(&config.playbooks, &config.catalog_paths()).map_err(|(e, diags)| {
            let mut msg = format!("cannot start: {e}");
            for d in diags {
                msg.push('\n');
                msg.push_str(&d);
            }
            msg.replace(
                "; the previous rules and catalog stay in force",
                &format!("; run `sparky check {}`", paths(&config)),
            )
        })?;
    for d in &diagnostics {
        tracing::warn!("{d}");
    }
    let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
        format!("cannot listen on {}: {e}; is another process using it? (`--listen` to change)", config.listen)
    })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let hash = graph.hash().to_string();
    let playbooks = graph.playbooks().len();
    let services = catalog.len();
    let analyzer: Arc<dyn Analyzer> = match (config.analysis.analyzer, &config.analysis.remote) {
        (AnalyzerKind::Remote, Some(remote)) => {
            Arc::new(RemoteAnalyzer::new(crate::analysis::remote::Remote::new(remote.clone())?))
        }
        _ => Arc::new(Builtin),
    };
    let metrics = Arc::new(Metrics::new());
    let ruleset = Arc::new(ArcSwap::from_pointee(Loaded {
        graph: Arc::new(graph),
        catalog: Arc::new(catalog),
        loaded_at: chrono::Utc::now(),
    }));
    let delivery = Arc::new(crate::escalate::delivery::Delivery::new(
        store.clone(),
        config.escalation.clone(),
        crate::escalate::delivery::Integrations {
            mode: config.integrations.mode,
            jira: &config.integrations.jira,
            pagerduty: &config.integrations.pagerduty,
            slack: &config.integrations.slack,
            github: &config.integrations.github,
        },
        routing_keys(ruleset.clone()),
        Arc::new(DeliveryObserver { metrics: metrics.clone() }),
    ));
    // From here on, decisions and the engine write escalations for the destinations.
    let store = store.with_destinations(delivery.destinations()).with_breaker(config.engine.breaker_failures);
    warn_of_pages_nowhere(&config, &ruleset.load().graph, delivery.destinations().pagerduty);
    let clients = Arc::new(crate::actions::Clients::new(config.integrations.actions()));
    let desk = tokens::Desk {
        ruleset: ruleset.clone(),
        config: config.tokens.clone(),
        store: store.clone(),
        http: clients.http.clone(),
    };
    let _ = clients.tokens.set(Arc::new(desk));
    let engine = Arc::new(crate::engine::Engine::new(
        store.clone(),
        clients,
        config.engine.clone(),
        config.integrations.mode,
        Arc::new(EngineObserver { metrics: metrics.clone(), ruleset: ruleset.clone() }),
    ));
    let (committer, writer) = accept::Committer::start(store.clone());
    let state = Arc::new(State {
        delivery,
        sources,
        committer,
        store,
        ruleset,
        analyzer,
        engine,
        reload_status: Mutex::new(Some(ReloadStatus {
            successful: true,
            at: chrono::Utc::now(),
            trigger: "start".into(),
            ruleset: hash.clone(),
            playbooks,
            services,
            diagnostics,
            error: None,
            took_ms: 0,
            count: 1,
        })),
        metrics,
        wake: Notify::new(),
        clock: options.clock.clone(),
        facts: options.facts.clone(),
        store_down: Mutex::new(None),
        shutting_down: AtomicBool::new(false),
        config,
    });
    state.metrics.reloaded(true);
    let watcher = reload::watch(state.clone(), Duration::from_millis(state.config.reload_debounce_ms))?;
    tracing::info!(%addr, ruleset = %hash, playbooks, store = %state.store.url(), replica = state.store.replica(), "sparky is listening");

    let shutdown = Arc::new(Notify::new());
    let task = tokio::spawn(run(state.clone(), listener, shutdown.clone(), watcher, writer));
    Ok(Running { addr, state, shutdown, task })
}

/// What the engine reports to the daemon: metrics, and playbook owners for demotion notices.
struct EngineObserver {
    metrics: Arc<Metrics>,
    ruleset: Arc<ArcSwap<Loaded>>,
}

impl crate::engine::Observer for EngineObserver {
    fn finished(&self, playbook: &str, state: &str, dry_run: bool) {
        self.metrics.executed(playbook, state, dry_run);
    }

    fn owner(&self, playbook: &str) -> Option<String> {
        let loaded = self.ruleset.load();
        loaded.graph.playbooks().iter().find(|p| p.id == playbook).map(|p| p.owner.clone())
    }
}

/// What the delivery worker reports to the daemon: metrics.
struct DeliveryObserver {
    metrics: Arc<Metrics>,
}

impl crate::escalate::delivery::Observer for DeliveryObserver {
    fn attempted(&self, destination: &str, action: &str, outcome: &str) {
        self.metrics.delivery_attempted(destination, action, outcome);
    }

    fn outbox(&self, counts: &[crate::store::OutboxCount]) {
        self.metrics.set_outbox(counts, chrono::Utc::now());
    }

    fn fixed(&self, generator: &str, state: &str) {
        self.metrics.fixed(generator, state);
    }
}

/// A service's PagerDuty integration key, from the catalog in force (a reload that rotates
/// the key is used by the next page).
fn routing_keys(ruleset: Arc<ArcSwap<Loaded>>) -> crate::escalate::delivery::RoutingKeys {
    Arc::new(move |service: &str| {
        ruleset.load().catalog.service(service).and_then(|s| s.pagerduty_integration_key.clone())
    })
}

fn paths(config: &Config) -> String {
    let mut args: Vec<String> = config.playbooks.iter().map(|p| p.display().to_string()).collect();
    args.extend(config.catalog_paths().iter().map(|p| format!("--catalog {}", p.display())));
    args.join(" ")
}

async fn run(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: Arc<Notify>,
    watcher: notify::RecommendedWatcher,
    writer: tokio::task::JoinHandle<()>,
) -> Result<(), String> {
    let worker = tokio::spawn(worker::run(state.clone()));
    let scheduler = tokio::spawn(scheduler::run(state.clone()));
    if !state.config.scheduler.enabled {
        tracing::info!(
            "the scheduler is off on this replica (`scheduler.enabled: false`): schedules fire elsewhere, or through the API"
        );
        scheduler.abort();
    }
    let engine_stop = Arc::new(AtomicBool::new(false));
    let engine = tokio::spawn(state.engine.clone().run(engine_stop.clone()));
    let delivery_stop = Arc::new(AtomicBool::new(false));
    let delivery = tokio::spawn(state.delivery.clone().run(delivery_stop.clone()));
    let hup = tokio::spawn(reload_on_sighup(state.clone()));
    let heartbeat = tokio::spawn(heartbeat(state.clone()));
    let probe = tokio::spawn(probe_store(state.clone()));
    let app = server::router(state.clone());
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = shutdown.notified() => {}
                _ = terminate_signal() => {}
            }
            tracing::info!("shutting down: no new deliveries; finishing what is in flight");
        }
    };
    let served = axum::serve(listener, app).with_graceful_shutdown(stop).await;
    // Requests in flight have been answered (so every delivery handed to the writer is
    // committed); now the worker finishes the events at hand.
    writer.abort();
    scheduler.abort();
    state.shutting_down.store(true, Ordering::SeqCst);
    state.wake.notify_one();
    let _ = worker.await;
    // Then the engine finishes the applies under way (each bounded by its timeout).
    engine_stop.store(true, Ordering::SeqCst);
    state.engine.wake.notify_one();
    let _ = engine.await;
    // Last, the deliveries under way finish (each bounded by its timeout); what is not
    // delivered stays in the outbox for the next start.
    delivery_stop.store(true, Ordering::SeqCst);
    state.delivery.wake.notify_waiters();
    let mut delivery = delivery;
    if tokio::time::timeout(Duration::from_secs(15), &mut delivery).await.is_err() {
        tracing::warn!(
            "deliveries still under way after 15 s are left; they stay in the outbox and are sent after the restart"
        );
        delivery.abort();
    }
    hup.abort();
    heartbeat.abort();
    probe.abort();
    drop(watcher);
    state.store.close().await;
    tracing::info!("stopped");
    served.map_err(|e| format!("the server failed: {e}"))
}

/// Says every few seconds, in the store, that this replica runs and which ruleset it runs
/// (the status API lists the replicas; the others take over its work once it is unseen).
async fn heartbeat(state: Arc<State>) {
    let started_at = chrono::Utc::now();
    loop {
        let ruleset = state.ruleset.load().graph.hash().to_string();
        if let Err(e) = state.store.heartbeat(&ruleset, started_at, chrono::Utc::now()).await {
            tracing::warn!(error = %e, "cannot tell the store that this replica runs; it is tried again in 5 s");
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Asks the store every second whether it answers (within [`PROBE_TIMEOUT`]), so that while
/// it is down a webhook or a load balancer's probe gets its 503 at once.
async fn probe_store(state: Arc<State>) {
    loop {
        let why = match tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("the store did not answer within {} ms", PROBE_TIMEOUT.as_millis())),
        };
        state.set_store_down(why);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// How long the store's health probe and `/readyz` wait for an answer.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// How often a replica says it runs: well within [`crate::store::GONE_AFTER`].
const HEARTBEAT: Duration = Duration::from_secs(5);

async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn reload_on_sighup(state: Arc<State>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else { return };
        while hup.recv().await.is_some() {
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || reload::reload(&s, "SIGHUP")).await;
        }
    }
    #[cfg(not(unix))]
    let _ = state;
}
