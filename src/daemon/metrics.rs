//! `GET /metrics`: Prometheus text, from the prometheus-client registry.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    received: Family<Labels, Counter>,
    key_reused: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    last_reload_successful: Gauge,
    last_reload_success_time: Gauge<f64, AtomicU64>,
    inbox_depth: Gauge,
    decision_seconds: Histogram,
    analyses: Family<Labels, Counter>,
    analysis_seconds: Histogram,
    executions: Family<Labels, Counter>,
    deliveries: Family<Labels, Counter>,
    outbox: Family<Labels, Gauge>,
    outbox_oldest: Family<Labels, Gauge<f64, AtomicU64>>,
    fixes: Family<Labels, Counter>,
    flapping: Family<Labels, Counter>,
    pages_undeliverable: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let received = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_events_received",
            "Webhook deliveries by source and outcome (accepted, duplicate, bad_request, unauthorized, forbidden, too_large, unavailable)",
            received.clone(),
        );
        let key_reused = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_delivery_key_reused",
            "Deliveries whose sender's delivery id had come before with another body, by source: each was accepted as a new delivery",
            key_reused.clone(),
        );
        let decisions = Family::<Labels, Counter>::default();
        registry.register("sparky_decisions", "Decisions by level and deciding playbook", decisions.clone());
        let reloads = Family::<Labels, Counter>::default();
        registry.register("sparky_config_reloads", "Playbook reloads by result", reloads.clone());
        let last_reload_successful = Gauge::default();
        registry.register(
            "sparky_config_last_reload_successful",
            "1 when the last reload succeeded, 0 when the previous rules stayed in force",
            last_reload_successful.clone(),
        );
        let last_reload_success_time = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "sparky_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful reload",
            last_reload_success_time.clone(),
        );
        let inbox_depth = Gauge::default();
        registry.register("sparky_inbox_depth", "Events accepted and waiting for a decision", inbox_depth.clone());
        let decision_seconds =
            Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0]);
        registry.register(
            "sparky_decision_duration_seconds",
            "Time from taking an event out of the inbox to its decision being recorded",
            decision_seconds.clone(),
        );
        let analyses = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_analyses",
            "Analyses asked for, by the analyzer configured and the result (answered, or fallback when a remote analyzer failed and the built-in rules answered)",
            analyses.clone(),
        );
        let analysis_seconds = Histogram::new([0.0001, 0.001, 0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "sparky_analysis_duration_seconds",
            "Time an analysis took, remote calls included",
            analysis_seconds.clone(),
        );
        let executions = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_executions",
            "L1 executions that ended, by playbook, final state (succeeded, failed, timed_out, refused, skipped, interrupted) and mode (live, dry-run)",
            executions.clone(),
        );
        let deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_escalation_deliveries",
            "Delivery attempts of escalations, by destination (jira, pagerduty, slack; github for L2 fixes), action (open, note, acknowledge, resolve) and outcome (delivered, dry_run, retry, failed)",
            deliveries.clone(),
        );
        let outbox = Family::<Labels, Gauge>::default();
        registry.register(
            "sparky_outbox",
            "Escalation messages in the outbox, by destination and state (pending, delivered, dry_run, failed)",
            outbox.clone(),
        );
        let outbox_oldest = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "sparky_outbox_oldest_pending_seconds",
            "Age of the oldest escalation message not delivered yet, by destination (0 when none waits): alert when it grows",
            outbox_oldest.clone(),
        );
        let fixes = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_fix_pull_requests",
            "L2 fixes carried out, by generator and what came of it (open, draft when its tests failed, refused, dry_run, merged or closed when the pull request had been answered already)",
            fixes.clone(),
        );
        let flapping = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_flapping",
            "Fingerprints that started or stopped flapping (transition: started, stopped); while one flaps its incident stays open and no L1 runs",
            flapping.clone(),
        );
        let pages_undeliverable = Family::<Labels, Counter>::default();
        registry.register(
            "sparky_pages_undeliverable",
            "Decisions that wanted a page while no PagerDuty is configured (integrations.pagerduty), by deciding playbook: nobody was paged",
            pages_undeliverable.clone(),
        );
        Metrics {
            flapping,
            pages_undeliverable,
            fixes,
            deliveries,
            outbox,
            outbox_oldest,
            executions,
            analyses,
            analysis_seconds,
            registry,
            received,
            key_reused,
            decisions,
            reloads,
            last_reload_successful,
            last_reload_success_time,
            inbox_depth,
            decision_seconds,
        }
    }

    /// One analysis by `analyzer` (as configured), answered by it or by the fallback.
    pub fn analyzed(&self, analyzer: &str, fallback: bool, seconds: f64) {
        let result = if fallback { "fallback" } else { "answered" };
        self.analyses.get_or_create(&vec![("analyzer", analyzer.to_string()), ("result", result.to_string())]).inc();
        self.analysis_seconds.observe(seconds);
    }

    /// An execution of `playbook` ended in `state`.
    pub fn executed(&self, playbook: &str, state: &str, dry_run: bool) {
        let mode = if dry_run { "dry-run" } else { "live" };
        self.executions
            .get_or_create(&vec![
                ("playbook", playbook.to_string()),
                ("state", state.to_string()),
                ("mode", mode.to_string()),
            ])
            .inc();
    }

    /// One delivery attempt of an escalation, and how it ended.
    pub fn delivery_attempted(&self, destination: &str, action: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&vec![
                ("destination", destination.to_string()),
                ("action", action.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// An L2 fix carried out, and what came of it.
    pub fn fixed(&self, generator: &str, state: &str) {
        self.fixes.get_or_create(&vec![("generator", generator.to_string()), ("state", state.to_string())]).inc();
    }

    /// The outbox now: counts by destination and state, the age of the oldest pending row.
    pub fn set_outbox(&self, counts: &[crate::store::OutboxCount], now: chrono::DateTime<chrono::Utc>) {
        self.outbox.clear();
        for destination in ["jira", "pagerduty", "slack", "github"] {
            self.outbox_oldest.get_or_create(&vec![("destination", destination.to_string())]).set(0.0);
        }
        for c in counts {
            self.outbox
                .get_or_create(&vec![("destination", c.destination.clone()), ("state", c.state.clone())])
                .set(c.count);
            if c.state == "pending" {
                let age = (now - c.oldest).num_milliseconds().max(0) as f64 / 1000.0;
                self.outbox_oldest.get_or_create(&vec![("destination", c.destination.clone())]).set(age);
            }
        }
    }

    /// One webhook delivery from `source`, and what became of it.
    /// A fingerprint started flapping.
    pub fn flapping_started(&self) {
        self.flapping.get_or_create(&vec![("transition", "started".to_string())]).inc();
    }

    /// Fingerprints that stopped flapping.
    pub fn flapping_stopped(&self, n: u64) {
        self.flapping.get_or_create(&vec![("transition", "stopped".to_string())]).inc_by(n);
    }

    /// A decision of `playbook` wanted a page, and no PagerDuty is configured.
    pub fn page_undeliverable(&self, playbook: Option<&str>) {
        self.pages_undeliverable.get_or_create(&vec![("playbook", playbook.unwrap_or("").to_string())]).inc();
    }

    pub fn received(&self, source: &str, outcome: &'static str) {
        self.received.get_or_create(&vec![("source", source.to_string()), ("outcome", outcome.to_string())]).inc();
    }

    /// A delivery from `source` whose delivery id had come before with another body.
    pub fn delivery_key_reused(&self, source: &str) {
        self.key_reused.get_or_create(&vec![("source", source.to_string())]).inc();
    }

    pub fn decided(&self, level: &str, playbook: Option<&str>, seconds: f64) {
        self.decisions
            .get_or_create(&vec![("level", level.to_string()), ("playbook", playbook.unwrap_or("").to_string())])
            .inc();
        self.decision_seconds.observe(seconds);
    }

    pub fn reloaded(&self, ok: bool) {
        self.reloads.get_or_create(&vec![("result", if ok { "success" } else { "failure" }.to_string())]).inc();
        self.last_reload_successful.set(i64::from(ok));
        if ok {
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
            self.last_reload_success_time.set(now);
        }
    }

    pub fn set_inbox_depth(&self, depth: i64) {
        self.inbox_depth.set(depth);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
