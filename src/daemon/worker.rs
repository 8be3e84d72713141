//! The inbox worker: takes accepted events in arrival order, gathers their context, decides,
//! and records each decision with the incident change in one transaction. One worker per
//! daemon, so events of one fingerprint are decided in order and never concurrently.
//!
//! Nothing is lost on a crash: an event leaves the inbox only in the transaction that records
//! its decision, so the restarted daemon decides exactly the events that were not recorded.

use super::State;
use crate::analysis::Input;
use crate::analysis::package::Package;
use crate::escalate::EscalationPackage;
use crate::event::Event;
use crate::knowledge::{Knowledge, ServiceMatch, find_service};
use crate::store::{Pending, Record, Settled, StoreError};
use crate::triage::lifecycle::{self, Effects};
use crate::triage::{self, AnalysisUse, Decision, MemoryContext, Options, Outcome, Pause, Run, TriageContext};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events taken from the inbox per round trip.
const BATCH: i64 = 64;

/// How long this replica holds the events it claimed: renewed while a batch takes long (the
/// analyzer), so it ends only when the replica stops working on them (it died, or lost the
/// database). Then another replica decides them.
const LEASE: Duration = Duration::from_secs(60);

fn lease_end(now: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    now + chrono::Duration::from_std(LEASE).unwrap_or_default()
}

/// How often flapping fingerprints that went quiet are looked for (also before every batch).
const SETTLE_EVERY: Duration = Duration::from_secs(30);

/// Runs until `state.shutdown` is set and the inbox is drained of what was taken.
pub async fn run(state: Arc<State>) {
    let mut backoff = Duration::from_millis(100);
    let mut settled = Instant::now();
    loop {
        if state.is_shutting_down() {
            return;
        }
        if settled.elapsed() >= SETTLE_EVERY {
            settled = Instant::now();
            if let Err(e) = settle(&state).await {
                tracing::warn!(error = %e, "cannot look for flapping alerts that went quiet; retried in 30s");
            }
        }
        match round(&state).await {
            Ok(0) => {
                backoff = Duration::from_millis(100);
                // Woken by the webhook handler; the timeout is a safety net.
                let _ = tokio::time::timeout(Duration::from_secs(1), state.wake.notified()).await;
            }
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "the inbox worker cannot reach the store; events wait in the inbox");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Decides one batch and records it in one transaction; returns how many events were
/// handled. The batch's context is read in two queries, and each decision's effect (an
/// incident opened or closed, a decision made) is applied to it before the next event of
/// the batch is decided, exactly as if they were decided one at a time.
async fn round(state: &State) -> Result<usize, StoreError> {
    // Read before the batch's context: if another replica adds a run meanwhile, the batch is
    // decided again, so that no cooldown or rate window is exceeded between replicas.
    let runs_mark = state.store.runs_mark().await?;
    let claimed_at = Utc::now();
    let pending = state.store.claim_inbox(BATCH, claimed_at, lease_end(claimed_at)).await?;
    if pending.is_empty() {
        return Ok(0);
    }
    // Time passed since the last batch, as the simulator lets it pass before each event.
    settle(state).await?;
    let seqs: Vec<i64> = pending.iter().map(|p| p.seq).collect();
    let mut renewed = Instant::now();
    let started = Instant::now();
    // The graph and catalog in force when the batch is taken; a reload meanwhile does not
    // affect it.
    let loaded = state.ruleset.load_full();
    let graph = &loaded.graph;
    let batch_now = state.now();
    // Echoes of Sparky's own pages move the incident they belong to: its fingerprint is read
    // with the batch's own.
    let echoed: Vec<&str> = {
        let mut k: Vec<&str> = pending.iter().filter_map(|p| lifecycle::echo_key(&p.event)).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    let by_key = state.store.open_incidents_by_key(&echoed).await?;
    let facts = facts_at(state, &loaded, batch_now);
    let fingerprints: Vec<&str> = {
        let mut f: Vec<&str> = pending.iter().map(|p| p.event.fingerprint.as_str()).collect();
        f.extend(by_key.values().map(|i| i.fingerprint.as_str()));
        // An echo of an incident the facts hold open moves that incident's fingerprint.
        if let Some(facts) = &facts {
            f.extend(
                facts
                    .open_incidents()
                    .values()
                    .filter(|i| echoed.contains(&i.key.as_str()))
                    .map(|i| i.fingerprint.as_str()),
            );
        }
        f.sort_unstable();
        f.dedup();
        f
    };
    let open = state.store.open_incidents(&fingerprints).await?;
    let tracks = state.store.tracks(&fingerprints).await?;
    let (knowledge, runs, services) =
        gather(state, &loaded, &pending, &fingerprints, facts.as_ref(), batch_now).await?;
    let pauses: Vec<Pause> = state.store.active_pauses(batch_now).await?.into_iter().map(|(_, p)| p).collect();
    // One context for the batch: each decision's effects are applied to it before the next
    // event is decided, exactly as the simulator applies them, and as if the events were
    // decided one at a time.
    let mut ctx = MemoryContext::shared(knowledge);
    *ctx.settings_mut() = settings(state, facts.as_ref());
    ctx.set_runs(runs);
    for p in pauses.into_iter().chain(facts.iter().flat_map(|f| f.pauses().to_vec())) {
        ctx.pause(p);
    }
    if let Some(facts) = &facts {
        // Open until the daemon closes it: its close (recorded by key) sticks.
        let keys: Vec<&str> = facts.open_incidents().values().map(|i| i.key.as_str()).collect();
        let closed = state.store.closed_by_decision(&keys).await?;
        for inc in facts.open_incidents().values().filter(|i| !closed.contains(&i.key)) {
            ctx.open(inc.clone());
        }
    }
    for inc in open.into_values().chain(by_key.into_values()) {
        ctx.open(inc);
    }
    for (fingerprint, track) in tracks {
        ctx.set_track(&fingerprint, track);
    }
    let pagerduty = state.delivery.destinations().pagerduty;
    let mut decided = Vec::with_capacity(pending.len());
    for (Pending { seq, event }, service) in pending.iter().zip(services) {
        let now = state.now();
        // Windows count back from this event's time, as `explain` counts them.
        ctx.set_now(now);
        let mut event = event.clone();
        if let Some(m) = &service {
            event.service = Some(m.name.clone());
        }
        let arrival = ctx.arrive(&event, now);
        let mut decision = triage::decide(&event, &ctx, graph, now);
        if decision.analysis == AnalysisUse::Wanted {
            if renewed.elapsed() > LEASE / 3 {
                state.store.renew_inbox(&seqs, lease_end(Utc::now())).await?;
                renewed = Instant::now();
            }
            let given = facts.as_ref().and_then(|f| f.analysis().cloned());
            let analysis = match given {
                Some(a) => a,
                None => {
                    let asked = Instant::now();
                    let input = Input { event: &event, knowledge: ctx.knowledge_graph(), now };
                    let analysis = state.analyzer.analyze(&input).await;
                    let configured = state.analyzer.name();
                    let fallback = configured != analysis.analyzer;
                    state.metrics.analyzed(&configured, fallback, asked.elapsed().as_secs_f64());
                    analysis
                }
            };
            decision = triage::decide_again(&event, &ctx, graph, now, Options::default(), decision, &analysis);
        }
        decision.service = service.clone();
        if let Some(e) = decision.escalation.as_ref().filter(|e| e.page && !pagerduty) {
            // Said where the on-call engineer looks: a page that goes nowhere is not silent.
            decision.reasons.push(format!(
                "it wants a page ({}), but no PagerDuty is configured (`integrations.pagerduty`): nobody is paged; the ticket and chat message go out as configured",
                e.priority
            ));
        }
        // What the decision does: the one account of effects, applied to the batch's context
        // here and written to the store with the decision below.
        let fx = ctx.record(&event, arrival, &decision, graph, Outcome::Pending, now);
        let execution = decision
            .playbook
            .as_deref()
            .and_then(|id| graph.playbooks().iter().find(|p| p.id == id))
            .and_then(|pb| pb.l1.as_ref())
            .and_then(|l1| crate::engine::new_execution(*seq, &event, &decision, l1, &state.config.engine, now));
        let package = escalation_package(&event, &decision, graph, ctx.knowledge_graph(), now);
        let fix = package.as_ref().and_then(|p| {
            crate::fix::order::FixOrder::of_decision(
                &event,
                &decision,
                ctx.knowledge_graph().catalog(),
                p.package.clone(),
            )
        });
        let feedback = crate::fix::feedback::Feedback::of(&event);
        if let Some(f) = &feedback {
            // Said in the webhook's own decision, when the pull request is one of Sparky's.
            if state.store.fix_pull(&f.incident_key).await?.is_some() {
                decision.reasons.push(format!(
                    "{} (incident {}): recorded for the acceptance rate of its generator and playbook",
                    f.headline(),
                    f.incident_key
                ));
            }
        }
        decided.push(Decided { seq: *seq, event, decision, fx, execution, package, fix, feedback });
    }
    let records: Vec<Record<'_>> = decided
        .iter()
        .map(|d| Record {
            seq: d.seq,
            event: &d.event,
            decision: &d.decision,
            json: d.decision.explained(&d.event).to_string(),
            deploy: d.fx.deploy.clone(),
            run: d.fx.run.as_ref().map(|(_, r)| r.clone()),
            execution: d.execution.clone(),
            package: d.package.clone(),
            fix: d.fix.clone(),
            feedback: d.feedback.clone(),
            track: d.fx.track.clone().map(|t| (d.fx.fingerprint.clone(), t)),
            refired: d.fx.refired.clone(),
        })
        .collect();
    if state.store.record_batch(&records, Some(runs_mark)).await?.is_none() {
        tracing::debug!(
            events = records.len(),
            "another replica recorded an L1 run meanwhile; the batch is decided again"
        );
        return Ok(decided.len());
    }
    if decided.iter().any(|d| d.execution.is_some()) {
        state.engine.wake.notify_one();
    }
    if decided.iter().any(|d| d.decision.incident.is_some() || d.feedback.is_some()) {
        state.delivery.wake.notify_waiters();
    }
    let per_event = started.elapsed().as_secs_f64() / decided.len() as f64;
    // Counted once recorded: a batch decided again (another replica's run) counts once.
    for Decided { seq, event, decision, fx, .. } in &decided {
        state.metrics.decided(decision.level.as_str(), decision.playbook.as_deref(), per_event);
        if fx.flap_started {
            state.metrics.flapping_started();
        }
        if fx.flap_stopped {
            state.metrics.flapping_stopped(1);
        }
        if decision.escalation.as_ref().is_some_and(|e| e.page) && !pagerduty {
            state.metrics.page_undeliverable(decision.playbook.as_deref());
            tracing::warn!(
                event = %event.id,
                playbook = decision.playbook.as_deref().unwrap_or("-"),
                "a decision wants a page, but no PagerDuty is configured: nobody is paged"
            );
        }
        tracing::info!(
            seq,
            event = %event.id,
            source = %event.source,
            fingerprint = %event.fingerprint,
            level = decision.level.as_str(),
            playbook = decision.playbook.as_deref().unwrap_or("-"),
            incident = decision.incident.as_ref().map_or("-", |i| i.key.as_str()),
            reason = decision.reasons.first().map_or("", String::as_str),
            "decided"
        );
    }
    if let Ok(depth) = state.store.inbox_depth().await {
        state.metrics.set_inbox_depth(depth);
    }
    Ok(decided.len())
}

/// Flapping fingerprints that went quiet stop flapping; the incidents of those whose alert
/// is resolved close ([`lifecycle::settle`], as the simulator applies it before each event).
async fn settle(state: &State) -> Result<usize, StoreError> {
    let (tracks, open) = state.store.flapping().await?;
    if tracks.is_empty() {
        return Ok(0);
    }
    let now = state.now();
    let mut ctx = MemoryContext::default();
    let facts = facts_at(state, &state.ruleset.load_full(), now);
    *ctx.settings_mut() = settings(state, facts.as_ref());
    for inc in open.into_values() {
        ctx.open(inc);
    }
    let mut was: HashMap<String, String> = HashMap::new();
    for t in tracks {
        ctx.set_track(&t.fingerprint, t.track);
        was.insert(t.fingerprint, t.text);
    }
    let settings = ctx.settings().clone();
    let settled: Vec<Settled> = ctx
        .settle(now)
        .into_iter()
        .map(|fx| Settled {
            headline: lifecycle::settle_headline(fx.track.as_ref(), &settings, now),
            was: was.remove(&fx.fingerprint).unwrap_or_default(),
            effects: fx,
        })
        .collect();
    let applied = state.store.settle(&settled, now).await?;
    if applied == 0 {
        return Ok(0);
    }
    state.metrics.flapping_stopped(applied as u64);
    for Settled { effects: fx, .. } in &settled {
        tracing::info!(
            fingerprint = %fx.fingerprint,
            incident = fx.closed.as_deref().unwrap_or("-"),
            "the alert stopped flapping{}",
            if fx.closed.is_some() { "; it stays resolved, so its incident is closed" } else { "" }
        );
    }
    if settled.iter().any(|s| s.effects.closed.is_some()) {
        state.delivery.wake.notify_waiters();
    }
    Ok(applied)
}

/// The test hook's facts (`Options::facts`) as a context, for a batch at `now`; `None` in
/// production. Their times count back from the facts' own `now`, so they do not move with
/// the clock.
fn facts_at(state: &State, loaded: &super::reload::Loaded, now: chrono::DateTime<Utc>) -> Option<MemoryContext> {
    let facts = state.facts.as_ref()?;
    match MemoryContext::from_file(facts, loaded.catalog.clone(), facts.now.unwrap_or(now)) {
        Ok(ctx) => Some(ctx),
        Err(e) => {
            // Checked at start; only a catalog reloaded since could make them unreadable.
            tracing::error!(error = %e, "the static facts cannot be read; the batch is decided without them");
            None
        }
    }
}

/// The triage settings: the facts' when the test hook gives them, else the configured ones.
fn settings(state: &State, facts: Option<&MemoryContext>) -> triage::Settings {
    facts.map_or_else(|| state.config.triage.settings(), |f| f.settings().clone())
}

/// One decided event of a batch and everything recorded with it.
struct Decided {
    seq: i64,
    event: Event,
    decision: Decision,
    /// What the decision does (the one account of effects).
    fx: Effects,
    execution: Option<crate::store::NewExecution>,
    package: Option<EscalationPackage>,
    fix: Option<crate::fix::order::FixOrder>,
    feedback: Option<crate::fix::feedback::Feedback>,
}

/// The escalation package of a decision that opens an incident, kept with the incident and
/// sent when it escalates (now, or later when the engine does).
fn escalation_package(
    event: &Event,
    decision: &Decision,
    graph: &crate::graph::RuleGraph,
    knowledge: &Knowledge,
    now: chrono::DateTime<Utc>,
) -> Option<EscalationPackage> {
    decision.incident.as_ref().filter(|c| c.effect == triage::IncidentEffect::Open)?;
    let package = Package::assemble(event, knowledge, Some(decision), decision.analyzer.as_ref(), now);
    Some(EscalationPackage::of_decision(event, decision, graph, package))
}

/// Dependencies per service whose deploys are read.
const MAX_UPSTREAM: usize = 50;

/// The batch's knowledge snapshot, run history, and each pending event's service.
type Gathered = (Arc<Knowledge>, Arc<HashMap<String, Vec<Run>>>, Vec<Option<ServiceMatch>>);

/// Reads what the batch's decisions need from the store: recent deploys of the batch's
/// services and their dependencies, past incidents of the batch's fingerprints, and
/// the run history of every playbook with an L1.
async fn gather(
    state: &State,
    loaded: &super::reload::Loaded,
    pending: &[Pending],
    fingerprints: &[&str],
    facts: Option<&MemoryContext>,
    now: chrono::DateTime<Utc>,
) -> Result<Gathered, StoreError> {
    let (deploy_ms, history_ms) = state.config.knowledge_windows_ms();
    // A window longer than the calendar reaches back to its beginning.
    let back = |m: u64| {
        chrono::Duration::try_milliseconds(m.min(i64::MAX as u64) as i64)
            .and_then(|d| now.checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
    };
    // The test hook's facts lie under what the store knows.
    let mut knowledge = match facts {
        Some(f) => {
            let mut k = f.knowledge_graph().clone();
            k.set_now_ms(now.timestamp_millis());
            k
        }
        None => Knowledge::new(loaded.catalog.clone(), now.timestamp_millis()),
    };
    // Deploys of the batch's services and of what they depend on (a deploy upstream is as
    // likely a cause), capped so that a batch never reads the whole table.
    // Each event's service is found once, here, and handed to the decision loop.
    let matches: Vec<Option<ServiceMatch>> = pending.iter().map(|p| find_service(&p.event, &knowledge)).collect();
    let mut services: Vec<String> = Vec::new();
    for m in matches.iter().flatten() {
        services.extend(knowledge.catalog().upstream_nearest(&m.name, MAX_UPSTREAM).into_iter().map(|r| r.name));
        services.push(m.name.clone());
    }
    services.sort_unstable();
    services.dedup();
    let names: Vec<&str> = services.iter().map(String::as_str).collect();
    for d in state.store.deploys(&names, back(deploy_ms), 10_000).await? {
        knowledge.add_deploy(d);
    }
    for i in state.store.history(fingerprints, back(history_ms), state.config.knowledge.history_limit).await? {
        knowledge.add_incident(i);
    }
    let playbooks: Vec<&str> = graph_l1_playbooks(&loaded.graph);
    let window = longest_guard_window(&loaded.graph);
    let mut runs = state.store.runs(&playbooks, back(window)).await?;
    if let Some(f) = facts {
        // The facts' runs came first: the store's follow them.
        for (playbook, earlier) in f.all_runs() {
            let later = runs.remove(playbook).unwrap_or_default();
            runs.insert(playbook.clone(), earlier.iter().cloned().chain(later).collect());
        }
    }
    Ok((Arc::new(knowledge), Arc::new(runs), matches))
}

fn graph_l1_playbooks(graph: &crate::graph::RuleGraph) -> Vec<&str> {
    graph.playbooks().iter().filter(|p| p.l1.is_some()).map(|p| p.id.as_str()).collect()
}

/// The longest window any guard counts runs over (success rate, cooldown, rate).
fn longest_guard_window(graph: &crate::graph::RuleGraph) -> u64 {
    graph
        .playbooks()
        .iter()
        .filter_map(|p| p.l1.as_ref())
        .flat_map(|l1| {
            let g = &l1.guards;
            g.success_rate
                .iter()
                .map(|(_, w, _)| w.millis)
                .chain(g.cooldowns.iter().map(|(d, _)| d.millis))
                .chain(g.at_most.iter().map(|(_, w)| w.millis))
        })
        .max()
        .unwrap_or(0)
}
