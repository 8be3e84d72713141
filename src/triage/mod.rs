//! Triage: `decide(event, context, graph, now) -> Decision`, pure and synchronous.
//!
//! The procedure (the user-facing account is `docs/triage.md`; keep the two in step):
//!
//! 1. A resolved event never remediates: it closes the incident open for its fingerprint.
//!    An acknowledged one updates it. A firing event whose fingerprint has an open incident is
//!    a repeat: `suppressed`, naming the incident. (A scheduled run is never a repeat: it
//!    joins the incident an earlier failed run left open, which its success closes.)
//! 2. The deciding playbook is the first, in triage order (priority, specificity, id), whose
//!    trigger matches (index candidates, then every matcher) and whose condition is true. A
//!    condition that fails or hits a limit does not match; its error is in the trace.
//! 3. L1 when the deciding playbook has an L1 block, its plan can be made from the event,
//!    and every guard passes. A draft plans only; a playbook that has not earned trust yet
//!    awaits approval. Both also escalate, so the event is never left unhandled.
//! 4. L2 when no L1 applies and the analysis proposes a fix that meets the threshold.
//! 5. L3 when a playbook matched, or the event is at or above the escalation severity;
//!    `observe` otherwise.
//!
//! No I/O, no clock, no randomness: everything comes in through the arguments. (Conditions
//! have a wall-clock deadline as a last resort against a runaway; their operation limit,
//! which is deterministic, stops any realistic one first.)

mod context;
mod decision;
mod guards;
pub mod lifecycle;
mod memory;
mod plan;

pub use context::{Analysis, Impact, OpenIncident, Outcome, Pause, Proposal, Run, Settings, Span, TriageContext};
pub use decision::*;
pub use guards::run_keys;
pub use memory::{ContextFile, MemoryContext, TokenFact, token_inventory};
pub use plan::{fill, fill_all};

use crate::compile::{CompiledPlaybook, CompiledTrigger, Condition, Status, VerifyStep};
use crate::diagnostics::SourceFile;
use crate::event::{Event, Kind, Severity, Status as EventStatus, stable_id};
use crate::graph::{RuleGraph, matcher};
use crate::script::event::{Reads, event_map};
use crate::script::{self, EVENT_VAR};
use chrono::{DateTime, Utc};
use rhai::Scope;

/// How much of the rule graph `decide` looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Consider every playbook, not only the index's candidates, so that the trace says why
    /// each one did not match (for `sparky explain`). The decision is the same either way.
    pub explain_all: bool,
}

/// Decides what to do with `event`.
pub fn decide(event: &Event, ctx: &dyn TriageContext, graph: &RuleGraph, now: DateTime<Utc>) -> Decision {
    decide_with(event, ctx, graph, now, Options::default())
}

/// Decides in two passes when the analysis could matter: first without it; when that gives
/// an L3 that an L2 could replace, `gather` is asked for the analysis and the event is
/// decided again with it. The second decision keeps the first pass in `first_pass`.
pub fn decide_lazily(
    event: &Event,
    ctx: &dyn TriageContext,
    graph: &RuleGraph,
    now: DateTime<Utc>,
    options: Options,
    gather: impl FnOnce(&Decision) -> Option<Analysis>,
) -> Decision {
    let first = decide_with(event, &Pass { ctx, analysis: None }, graph, now, options);
    if first.analysis != AnalysisUse::Wanted {
        return first;
    }
    let Some(analysis) = gather(&first) else { return first };
    decide_again(event, ctx, graph, now, options, first, &analysis)
}

/// The second pass of [`decide_lazily`], for callers that gather the analysis themselves
/// (the daemon asks a remote analyzer between the passes): decides `event` again with
/// `analysis`, keeping `first` in `first_pass`.
pub fn decide_again(
    event: &Event,
    ctx: &dyn TriageContext,
    graph: &RuleGraph,
    now: DateTime<Utc>,
    options: Options,
    first: Decision,
    analysis: &Analysis,
) -> Decision {
    let mut second = decide_with(event, &Pass { ctx, analysis: Some(analysis) }, graph, now, options);
    second.first_pass = Some(FirstPass { level: first.level, reasons: first.reasons });
    second.service = first.service;
    second.analyzer = Some(analysis.clone());
    second
}

/// The whole step for one event outside the daemon (`explain`, `replay`, `test`), as the
/// daemon takes it: time passes to `now` (flapping that went quiet ends), the event arrives
/// (its state change counted), its service is found in the knowledge (written into the
/// event), and it is decided; when the first pass wants an analysis, `analyze` is asked for
/// it. Returns the decision and the arrival, which [`MemoryContext::record`] takes with it.
pub fn triage_event(
    event: &mut Event,
    ctx: &mut MemoryContext,
    graph: &RuleGraph,
    now: DateTime<Utc>,
    options: Options,
    analyze: impl FnOnce(&Event, &crate::knowledge::Knowledge) -> Option<Analysis>,
) -> (Decision, lifecycle::Arrival) {
    ctx.settle(now);
    let arrival = ctx.arrive(event, now);
    let service = crate::knowledge::resolve_service(event, ctx.knowledge_graph());
    let event = &*event;
    let ctx = &*ctx;
    let mut d = decide_lazily(event, ctx, graph, now, options, |_| analyze(event, ctx.knowledge_graph()));
    d.service = service;
    (d, arrival)
}

/// `ctx` with its analysis replaced: hidden in the first pass, freshly gathered in the second.
struct Pass<'a> {
    ctx: &'a dyn TriageContext,
    analysis: Option<&'a Analysis>,
}

impl TriageContext for Pass<'_> {
    fn knowledge(&self) -> &std::sync::Arc<dyn script::ContextView> {
        self.ctx.knowledge()
    }
    fn runs(&self, playbook: &str) -> &[Run] {
        self.ctx.runs(playbook)
    }
    fn open_incident(&self, fingerprint: &str) -> Option<&OpenIncident> {
        self.ctx.open_incident(fingerprint)
    }
    fn pauses(&self) -> &[Pause] {
        self.ctx.pauses()
    }
    fn analysis(&self) -> Option<&Analysis> {
        self.analysis
    }
    fn settings(&self) -> &Settings {
        self.ctx.settings()
    }
    fn track(&self, fingerprint: &str) -> Option<&lifecycle::Track> {
        self.ctx.track(fingerprint)
    }
    fn incident(&self, key: &str) -> Option<&OpenIncident> {
        self.ctx.incident(key)
    }
}

/// The incident key for an occurrence: the same for every delivery of it, new when the
/// problem comes back after it was resolved.
pub fn incident_key(event: &Event) -> String {
    let started = event.occurred_at.timestamp_millis().to_string();
    format!("SPK-{}", &stable_id(&[&event.fingerprint, &started])[..12])
}

/// The escalation a playbook's `l3` settings give.
pub fn escalation_of(pb: &CompiledPlaybook) -> Escalation {
    Escalation { priority: format!("P{}", pb.l3.priority), jira_project: pb.l3.jira_project.clone(), page: pb.l3.page }
}

/// The escalation of an event no playbook claimed, by its severity.
pub fn escalation_by_severity(severity: Severity) -> Escalation {
    let priority = match severity {
        Severity::Critical => 1,
        Severity::High => 2,
        Severity::Warning => 3,
        Severity::Info => 4,
    };
    Escalation { priority: format!("P{priority}"), jira_project: None, page: priority <= 2 }
}

fn verify_text(step: &VerifyStep) -> String {
    match step {
        VerifyStep::Resolved { within } => format!("resolved within {within}"),
        VerifyStep::Delivered => "delivered".into(),
        VerifyStep::Probe { url, status, within } => format!("probe {url:?} status {status} within {within}"),
        VerifyStep::When { condition, within } => {
            format!("when {{ {} }} within {within}", condition.source.text.trim())
        }
    }
}

/// The event as rhai sees it, built at the first condition and shared by the rest; rebuilt
/// (at most a few times) when a condition reads a field the earlier ones did not.
struct EventScope<'e> {
    event: &'e Event,
    scope: Option<Scope<'static>>,
    reads: Reads,
}

impl EventScope<'_> {
    fn evaluate(
        &mut self,
        cond: &Condition,
        file: &SourceFile,
        graph: &RuleGraph,
        ctx: &dyn TriageContext,
    ) -> ConditionResult {
        if self.scope.is_none() || !self.reads.contains(cond.reads) {
            self.reads = self.reads.union(cond.reads);
            let mut scope = Scope::new();
            scope.push_constant(EVENT_VAR, event_map(self.event, self.reads));
            self.scope = Some(scope);
        }
        let scope = self.scope.as_mut().expect("scope was just built");
        let len = scope.len();
        let result = script::evaluate_bool(graph.engine(), &cond.ast, scope, ctx.knowledge(), script::limits::DEADLINE);
        scope.rewind(len);
        match result {
            Ok(v) => ConditionResult { value: Some(v), error: None },
            Err(e) => {
                // Point at the `.sparky` file, as `sparky check` does.
                let at = match &e {
                    script::EvalError::Runtime { line, column, .. } => {
                        let span = crate::compile::condition::span_at(&cond.source, *line, *column, 1);
                        let (l, c) = file.line_col(span.start);
                        format!(" (at {}:{l}:{c})", file.name)
                    }
                    _ => String::new(),
                };
                ConditionResult { value: None, error: Some(format!("{e}{at}")) }
            }
        }
    }
}

/// The trace entry of `pb` before its condition: which trigger matched, or how each failed.
fn match_triggers(pb: &CompiledPlaybook, only: Option<&[usize]>, event: &Event) -> TraceEntry {
    let mut entry = TraceEntry {
        playbook: pb.id.clone(),
        priority: pb.priority,
        verdict: Verdict::TriggerMismatch,
        trigger: None,
        mismatches: Vec::new(),
        condition: None,
        guards: Vec::new(),
        plan_error: None,
    };
    if pb.status == Status::Disabled {
        entry.verdict = Verdict::Disabled;
        return entry;
    }
    let mut any_event_trigger = false;
    for (t, trigger) in pb.triggers.iter().enumerate() {
        match trigger {
            CompiledTrigger::Event { matchers, .. } => {
                any_event_trigger = true;
                if only.is_some_and(|o| !o.contains(&t)) {
                    continue;
                }
                if let CompiledTrigger::Event { kind: Some(k), .. } = trigger
                    && k != event.kind.as_str()
                {
                    entry.mismatches.push(Mismatch {
                        trigger: t + 1,
                        field: "kind".into(),
                        expected: format!("kind == {k:?}"),
                        actual: Some(event.kind.as_str().into()),
                    });
                    continue;
                }
                if let CompiledTrigger::Event { source: Some(s), .. } = trigger
                    && *s != event.source
                {
                    entry.mismatches.push(Mismatch {
                        trigger: t + 1,
                        field: "source".into(),
                        expected: format!("source == {s:?}"),
                        actual: Some(event.source.clone()),
                    });
                    continue;
                }
                match matchers.iter().find(|m| !matcher::matches(m, event)) {
                    None => {
                        entry.trigger = Some(t + 1);
                        entry.mismatches.clear();
                        return entry;
                    }
                    Some(m) => entry.mismatches.push(Mismatch {
                        trigger: t + 1,
                        field: m.field.to_string(),
                        expected: matcher::describe(m),
                        actual: matcher::field_value(event, &m.field).map(|v| v.into_owned()),
                    }),
                }
            }
            CompiledTrigger::Every { .. } | CompiledTrigger::Cron { .. } => {
                if event.kind == Kind::Schedule && event.labels.get("playbook") == Some(&pb.id) {
                    entry.trigger = Some(t + 1);
                    entry.mismatches.clear();
                    return entry;
                }
            }
        }
    }
    if !any_event_trigger {
        entry.verdict = Verdict::NotScheduled;
    }
    entry
}

/// A firing event with no incident open whose fingerprint was decided less than the grouping
/// window ago (an `observe`), with no resolution since: it is attached to that decision, not
/// triaged again, so that a storm of identical alerts makes one decision. A firing after a
/// resolution is a new occurrence, never grouped.
fn grouped(
    track: Option<&lifecycle::Track>,
    settings: &Settings,
    graph: &RuleGraph,
    now: DateTime<Utc>,
) -> Option<Decision> {
    let track = track?;
    let last = track.last.as_ref()?;
    let ago = (now - last.at).to_std().ok()?;
    if track.changed || last.level != Level::Observe.as_str() || ago >= settings.group_window.to_std() {
        return None;
    }
    let mut d = Decision::blank(graph, now);
    d.level = Level::Suppressed;
    d.playbook = last.playbook.clone();
    d.reasons.push(format!(
        "a repeat of an event decided {} ago ({}), inside the grouping window: it is attached to that decision, nothing new is done",
        crate::dsl::ast::Duration { millis: ago.as_millis() as u64 },
        last.level
    ));
    Some(d)
}

/// Step 0: a PagerDuty event about one of Sparky's own pages (`key`) is a lifecycle update of
/// that incident, never a new escalation.
fn echo(d: &mut Decision, key: &str, event: &Event, ctx: &dyn TriageContext) {
    let what = match event.labels.get("event_type") {
        Some(t) => format!("PagerDuty's `{t}`"),
        None => format!("PagerDuty's {} event", event.status.as_str()),
    };
    let Some(inc) = ctx.incident(key) else {
        d.reasons.push(format!(
            "{what} echoes Sparky's own page {key}, which is not open (it was closed, or is not known here): recorded only; Sparky never escalates its own pages again"
        ));
        return;
    };
    d.playbook = inc.playbook.clone();
    let effect = match event.status {
        EventStatus::Resolved => {
            d.reasons.push(format!(
                "{what} for Sparky's own incident {key}: resolved in PagerDuty, so the incident is closed; never escalated again"
            ));
            IncidentEffect::Close
        }
        EventStatus::Acknowledged => {
            d.reasons.push(format!(
                "{what} for Sparky's own incident {key}: acknowledged in PagerDuty, a person owns it, so Sparky does not act"
            ));
            IncidentEffect::Update
        }
        _ => {
            d.reasons.push(format!(
                "{what} for Sparky's own incident {key}: PagerDuty's record of Sparky's page, recorded on the incident; never escalated again"
            ));
            IncidentEffect::Update
        }
    };
    d.incident = Some(IncidentChange { key: key.to_string(), effect });
}

/// Decides, with [`Options`].
pub fn decide_with(
    event: &Event,
    ctx: &dyn TriageContext,
    graph: &RuleGraph,
    now: DateTime<Utc>,
    options: Options,
) -> Decision {
    let mut d = decide_steps(event, ctx, graph, now, options);
    // Every decision on a flapping fingerprint says so (the trace, the incident's history).
    if d.flapping.is_none() && lifecycle::echo_key(event).is_none() {
        d.flapping = ctx.track(&event.fingerprint).and_then(|t| lifecycle::FlapReport::of(t, &ctx.settings().flapping));
    }
    // Sparky never pages PagerDuty about what PagerDuty itself reported: the people it would
    // page are the ones PagerDuty already told. The ticket is filed all the same.
    if event.source == "pagerduty"
        && let Some(e) = d.escalation.as_mut().filter(|e| e.page)
    {
        e.page = false;
        d.reasons.push(
            "the event came from PagerDuty, so Sparky does not page PagerDuty about it: the ticket is filed without a page".into(),
        );
    }
    d
}

fn decide_steps(
    event: &Event,
    ctx: &dyn TriageContext,
    graph: &RuleGraph,
    now: DateTime<Utc>,
    options: Options,
) -> Decision {
    let mut d = Decision::blank(graph, now);

    // 0. An echo of one of Sparky's own pages updates the incident it belongs to.
    if let Some(key) = lifecycle::echo_key(event) {
        echo(&mut d, key, event, ctx);
        return d;
    }

    // 1. Resolved and acknowledged events never remediate; repeats are suppressed.
    let open = ctx.open_incident(&event.fingerprint);
    let track = ctx.track(&event.fingerprint);
    let flapping = track.and_then(|t| lifecycle::FlapReport::of(t, &ctx.settings().flapping));
    match (event.status, open) {
        (EventStatus::Resolved, Some(inc)) if flapping.is_some() => {
            let f = flapping.as_ref().expect("checked");
            d.reasons.push(format!(
                "the source resolved it, but the alert flaps ({}): incident {} stays open until the flapping stops; resolved events never remediate",
                f.describe(),
                inc.key
            ));
            d.incident = Some(IncidentChange { key: inc.key.clone(), effect: IncidentEffect::Update });
            d.flapping = flapping;
            return d;
        }
        (EventStatus::Resolved, Some(inc)) => {
            d.reasons.push(format!(
                "the source resolved it: incident {} (opened {} at {}) is closed; resolved events never remediate",
                inc.key,
                describe_opener(inc),
                inc.opened_at.to_rfc3339()
            ));
            d.incident = Some(IncidentChange { key: inc.key.clone(), effect: IncidentEffect::Close });
            return d;
        }
        (EventStatus::Resolved, None) => {
            d.reasons.push(format!(
                "the source resolved it and nothing is open for fingerprint {}: recorded only; resolved events never remediate",
                event.fingerprint
            ));
            return d;
        }
        (EventStatus::Acknowledged, Some(inc)) => {
            d.reasons.push(format!(
                "acknowledged at the source: incident {} is updated; a person owns it, so Sparky does not act",
                inc.key
            ));
            d.incident = Some(IncidentChange { key: inc.key.clone(), effect: IncidentEffect::Update });
            return d;
        }
        (EventStatus::Acknowledged, None) => {
            d.reasons.push("acknowledged at the source: a person owns it, so Sparky does not act".into());
            return d;
        }
        (EventStatus::Firing, Some(inc)) => {
            d.level = Level::Suppressed;
            d.playbook = inc.playbook.clone();
            d.reasons.push(format!(
                "a repeat of incident {}, open since {} ({}): it is updated, nothing new is done{}",
                inc.key,
                inc.opened_at.to_rfc3339(),
                describe_opener(inc),
                match &flapping {
                    Some(f) => format!("; the alert flaps ({})", f.describe()),
                    None => String::new(),
                }
            ));
            d.incident = Some(IncidentChange { key: inc.key.clone(), effect: IncidentEffect::Update });
            d.flapping = flapping;
            return d;
        }
        (EventStatus::Firing, None) => {
            if let Some(grouped) = grouped(track, ctx.settings(), graph, now) {
                return grouped;
            }
        }
        (EventStatus::Info, _) => {}
    }

    // 2. The deciding playbook. The event map for rhai is built once, with every field that
    // a candidate's conditions read (built only if a condition runs).
    let candidates = if options.explain_all { Vec::new() } else { graph.candidates(event) };
    let conditions_of = |pb: &CompiledPlaybook| -> Reads {
        let guards = pb.l1.iter().flat_map(|l| &l.guards.conditions);
        pb.condition.iter().chain(guards).fold(Reads::NONE, |r, c| r.union(c.reads))
    };
    let reads = if options.explain_all {
        graph.playbooks().iter().fold(Reads::NONE, |r, pb| r.union(conditions_of(pb)))
    } else {
        candidates.iter().fold(Reads::NONE, |r, c| r.union(conditions_of(&graph.playbooks()[c.playbook])))
    };
    let mut scope = EventScope { event, scope: None, reads };
    let mut deciding: Option<usize> = None;
    let mut consider = |p: usize, only: Option<&[usize]>, d: &mut Decision| {
        let pb = &graph.playbooks()[p];
        let mut entry = match_triggers(pb, only, event);
        if entry.trigger.is_some() {
            if deciding.is_some() {
                entry.verdict = Verdict::Shadowed;
            } else {
                let result = match &pb.condition {
                    Some(cond) => scope.evaluate(cond, &pb.file, graph, ctx),
                    None => ConditionResult { value: Some(true), error: None },
                };
                entry.verdict = match result.value {
                    Some(true) => {
                        deciding = Some(p);
                        Verdict::Decides
                    }
                    Some(false) => Verdict::ConditionFalse,
                    None => Verdict::ConditionError,
                };
                if pb.condition.is_some() {
                    entry.condition = Some(result);
                }
            }
        }
        d.trace.push(entry);
    };
    if options.explain_all {
        for p in 0..graph.playbooks().len() {
            consider(p, None, &mut d);
        }
    } else {
        // Candidates come sorted by playbook (triage order), then trigger: group them.
        let mut groups: Vec<(usize, Option<Vec<usize>>)> = Vec::new();
        for c in candidates {
            match groups.last_mut() {
                Some((p, Some(triggers))) if *p == c.playbook => triggers.push(c.trigger),
                _ => groups.push((c.playbook, Some(vec![c.trigger]))),
            }
        }
        if let Some(p) = graph.scheduled(event)
            && let Err(at) = groups.binary_search_by_key(&p, |(q, _)| *q)
        {
            groups.insert(at, (p, None));
        }
        for (p, only) in &groups {
            consider(*p, only.as_deref(), &mut d);
        }
    }
    for e in &d.trace {
        if let (Verdict::ConditionError, Some(c)) = (e.verdict, &e.condition) {
            d.reasons.push(format!("{} does not match: {}", e.playbook, c.error.as_deref().unwrap_or("")));
        }
    }
    let firing = event.status == EventStatus::Firing;
    let scheduled = event.kind == Kind::Schedule;
    // The incident a decision that acts or escalates opens: a firing event's own; for a
    // scheduled run, the one a failed earlier run left open (the runs of a schedule are one
    // incident until one succeeds: the engine closes it then), else the run's own.
    let incident = if firing {
        Some(IncidentChange { key: incident_key(event), effect: IncidentEffect::Open })
    } else if scheduled {
        Some(match open {
            Some(inc) => IncidentChange { key: inc.key.clone(), effect: IncidentEffect::Update },
            None => IncidentChange { key: incident_key(event), effect: IncidentEffect::Open },
        })
    } else {
        None
    };

    let Some(p) = deciding else {
        // No playbook claims the event: escalate by severity, or observe.
        let threshold = ctx.settings().escalate_at;
        if firing && event.severity >= threshold && !ctx.settings().escalate_unmatched {
            d.reasons.push(format!(
                "no playbook matched; its severity `{}` is at or above `{}`, but escalating unmatched events is off (`triage.escalate_unmatched`): recorded only",
                event.severity.as_str(),
                threshold.as_str()
            ));
        } else if firing && event.severity >= threshold {
            d.level = Level::L3;
            d.escalation = Some(escalation_by_severity(event.severity));
            d.reasons.push(format!(
                "no playbook matched, and its severity `{}` is at or above the escalation threshold `{}`",
                event.severity.as_str(),
                threshold.as_str()
            ));
        } else {
            d.reasons.push(if firing {
                format!(
                    "no playbook matched, and its severity `{}` is below the escalation threshold `{}`: recorded only",
                    event.severity.as_str(),
                    threshold.as_str()
                )
            } else {
                "no playbook matched: recorded only".into()
            });
        }
        try_l2(&mut d, None, ctx, event);
        if d.level != Level::Observe {
            d.incident = incident;
        }
        return d;
    };
    let pb = &graph.playbooks()[p];
    d.playbook = Some(pb.id.clone());
    let entry = d.trace.iter().position(|e| e.playbook == pb.id).expect("the deciding playbook is in the trace");
    let matched_on = match d.trace[entry].condition {
        Some(_) => "its trigger matched and its condition is true",
        None => "its trigger matched (it has no condition)",
    };
    d.reasons.push(format!("{} \"{}\" decides: {matched_on}", pb.id, pb.title));

    // 3. L1, unless the alert flaps: restarting what keeps coming back is no remedy.
    if let (Some(_), Some(f)) = (&pb.l1, &flapping) {
        d.reasons.push(format!("its L1 does not run while the alert flaps: {}", f.describe()));
        d.flapping = flapping.clone();
    } else if let Some(l1) = &pb.l1 {
        let planned: Result<Vec<PlannedAction>, String> = l1.actions.iter().map(|a| plan::plan(a, event)).collect();
        match planned {
            Err(e) => {
                d.reasons.push(format!("its L1 cannot be planned: {e}"));
                d.trace[entry].plan_error = Some(e);
            }
            Ok(actions) => {
                let radius: u64 = actions.iter().map(|a| a.blast_radius).sum();
                let downstream = match (&l1.guards.blast_radius, event.service.as_deref()) {
                    (Some(_), Some(s)) => ctx.knowledge().downstream_count(s),
                    _ => 0,
                };
                let radius = (radius, downstream);
                let mut checks = vec![guards::kill_switch(&pb.id, event, ctx.pauses(), now)];
                let mut evaluate = |c: &Condition| scope.evaluate(c, &pb.file, graph, ctx);
                let runs = ctx.runs(&pb.id);
                checks.extend(guards::check_all(&l1.guards, runs, pb.status, event, radius, now, &mut evaluate));
                let failed: Vec<&GuardCheck> = checks.iter().filter(|c| !c.passed).collect();
                if failed.is_empty() {
                    let approval = checks.iter().find(|c| c.needs_approval);
                    d.level = Level::L1;
                    d.actions = actions;
                    d.verify = l1.verify.iter().map(verify_text).collect();
                    let mode = if pb.status == Status::Draft {
                        d.reasons.push(if scheduled {
                            format!("{} is a draft: its scheduled run is planned and recorded, never applied", pb.id)
                        } else {
                            format!(
                                "{} is a draft: its L1 is planned and recorded, never applied; the event is escalated meanwhile",
                                pb.id
                            )
                        });
                        L1Mode::PlanOnly
                    } else if let Some(c) = approval {
                        d.reasons.push(format!(
                            "{} has not earned trust yet ({}, `{}`): the plan waits for a person's approval, and the event is escalated meanwhile",
                            pb.id,
                            c.figure(),
                            c.guard()
                        ));
                        L1Mode::AwaitApproval
                    } else {
                        d.reasons.push(format!("every guard of its L1 passed ({} checked)", checks.len()));
                        L1Mode::Apply
                    };
                    // A draft's scheduled run is practice: nothing to hand over.
                    let practice = scheduled && mode == L1Mode::PlanOnly;
                    if mode != L1Mode::Apply && !practice {
                        d.escalation = Some(escalation_of(pb));
                    }
                    d.mode = Some(mode);
                    d.trace[entry].guards = checks;
                    d.incident = if practice { None } else { incident };
                    return d;
                }
                for c in &failed {
                    d.reasons.push(format!(
                        "guard `{}` refused its L1: {} (limit: {})",
                        c.guard(),
                        c.figure(),
                        c.limit()
                    ));
                }
                d.trace[entry].guards = checks;
                if scheduled {
                    // Nothing was attempted and nothing is broken: the next slot runs as
                    // planned. (A pause during an outage must not file a ticket per schedule.)
                    d.reasons.push(format!(
                        "a scheduled run of {} that its guards refuse is recorded only: nothing was attempted, so nothing is handed over; the next slot runs as planned",
                        pb.id
                    ));
                    return d;
                }
            }
        }
    }

    // 4 and 5: L2, else L3 with the playbook's settings.
    d.level = Level::L3;
    d.escalation = Some(escalation_of(pb));
    d.reasons.push(match &pb.l1 {
        Some(_) => format!("{} escalates: its L1 did not apply", pb.id),
        None => format!("{} escalates: it has no L1", pb.id),
    });
    try_l2(&mut d, Some(pb), ctx, event);
    d.incident = incident;
    d
}

fn describe_opener(inc: &OpenIncident) -> String {
    match &inc.playbook {
        Some(p) => format!("at {} by {p}", inc.level),
        None => format!("at {}", inc.level),
    }
}

/// Step 4: turns an L3 into an L2 when the analysis proposes a fix that meets the playbook's
/// threshold (or the global one), among the playbook's generators when it names some.
/// Without an analysis, marks it wanted when it could make that difference.
fn try_l2(d: &mut Decision, pb: Option<&CompiledPlaybook>, ctx: &dyn TriageContext, event: &Event) {
    if d.level != Level::L3 || event.status != EventStatus::Firing {
        return;
    }
    let l2 = pb.and_then(|p| p.l2.as_ref());
    let threshold = l2.map_or(ctx.settings().l2_min_confidence, |l| l.min_confidence);
    let Some(analysis) = ctx.analysis() else {
        if ctx.settings().analysis {
            d.analysis = AnalysisUse::Wanted;
        }
        return;
    };
    d.analysis = AnalysisUse::Used;
    // What a fix may change is bounded in reviewed code, never by the analyzer: with an `l2`
    // block, only its generators, with its arguments; without one, only generators that take
    // no bounds (`revert`).
    let allowed = |g: &str| match l2 {
        Some(l) => l.fixes.iter().any(|f| f.generator.name == g),
        None => crate::fix::find(g).is_some_and(|spec| spec.params.is_empty()),
    };
    let best = analysis
        .proposals
        .iter()
        .filter(|p| allowed(&p.generator) && p.confidence.is_finite())
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence).then_with(|| b.generator.cmp(&a.generator)));
    match best {
        Some(p) if p.confidence >= threshold => {
            let call = l2.and_then(|l| l.fixes.iter().find(|f| f.generator.name == p.generator));
            let args = match call.map(|c| fill_all(&c.args, event)).transpose() {
                Ok(args) => args.unwrap_or_default(),
                Err(e) => {
                    d.reasons.push(format!("the `{}` fix cannot be prepared: {e}", p.generator));
                    return;
                }
            };
            d.level = Level::L2;
            d.reasons.push(format!(
                "the analysis proposes `{}` at {}% confidence, meeting the {}% threshold: a fix goes to review as a pull request, escalated meanwhile",
                p.generator, p.confidence, threshold
            ));
            d.fix = Some(PlannedFix {
                generator: p.generator.clone(),
                confidence: p.confidence,
                threshold,
                summary: p.summary.clone(),
                args,
                proposal: p.args.clone(),
            });
        }
        Some(p) => d.reasons.push(format!(
            "the analysis proposes `{}` at {}% confidence, below the {}% threshold: no L2",
            p.generator, p.confidence, threshold
        )),
        None if analysis.proposals.is_empty() => d.reasons.push("the analysis proposes no fix: no L2".into()),
        None if l2.is_some() => {
            d.reasons.push("the analysis proposes no fix this playbook's `l2` block allows: no L2".into())
        }
        None => d.reasons.push(
            "the analysis proposes only fixes that need bounds, which only a playbook's `l2` block gives: no L2".into(),
        ),
    }
}
