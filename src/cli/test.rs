//! `sparky test [PATH...]`: run the playbook test suites that live beside the playbooks.
//!
//! A suite (`*.test.yaml`) is a list of cases; a case is a sequence of steps, each an event
//! (a real payload file, an inline payload, or a schedule firing) at a point in time, with
//! what the decision must be. Between steps the context plays the executor's part (see
//! `MemoryContext::record`), so storms, resolutions, cooldowns and success rates behave as
//! they would in the daemon. The format is documented in `docs/triage.md`.

use super::input;
use crate::compile::files_under;
use crate::event::{Event, Severity, Status};
use crate::graph::RuleGraph;
use crate::knowledge::tokens::{DeskSimulation, SimulatedRun};
use crate::triage::{self, AnalysisUse, Decision, L1Mode, Level, MemoryContext, Options, Outcome};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Suite files (`*.test.yaml`) or folders to search for them; `./playbooks` by default.
    paths: Vec<PathBuf>,
    /// Print every step's decision, not only failures.
    #[arg(long, short)]
    verbose: bool,
}

/// A suite file (the differential test reads it as the runner does).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Folders or files of playbooks, relative to the suite; the suite's folder by default.
    #[serde(default)]
    playbooks: Vec<String>,
    /// Folders or files of the service catalog, relative to the suite; none by default (the
    /// context's `services` stand for it).
    #[serde(default)]
    catalog: Vec<String>,
    /// The context every case starts from.
    #[serde(default)]
    context: Option<serde_yaml::Value>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// Merged over the suite's context (mappings key by key).
    #[serde(default)]
    context: Option<serde_yaml::Value>,
    /// The time of the first step: the context's `now`, else the first event's time.
    #[serde(default)]
    start: Option<DateTime<Utc>>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A payload file (relative to the suite) or an inline payload.
    #[serde(default)]
    pub event: Option<serde_yaml::Value>,
    /// The schedule of this playbook fires.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Who sent the event; inferred when left out.
    #[serde(default)]
    pub source: Option<String>,
    /// Changes to the normalized event: `labels.<key>`, `annotations.<key>`, `service`,
    /// `severity`, `status`, `summary`, `fingerprint`, `occurred_at`.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
    /// Time since the previous step.
    #[serde(default)]
    after: Option<String>,
    /// Deliver it this many times.
    #[serde(default = "one")]
    pub repeat: usize,
    /// Time between repeated deliveries.
    #[serde(default)]
    every: Option<String>,
    /// How an applied L1 run ends, for the guards of later steps.
    #[serde(default = "success")]
    pub outcome: Outcome,
    /// The token inventory from this step on (a token renewed, added, removed), as in the
    /// context's `tokens`; `expires_in` counts from this step's time.
    #[serde(default)]
    tokens: Option<Vec<triage::TokenFact>>,
    #[serde(default)]
    expect: Option<Expect>,
}

fn one() -> usize {
    1
}

fn success() -> Outcome {
    Outcome::Success
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    level: Option<String>,
    /// A playbook id, or `none`.
    playbook: Option<String>,
    /// `apply`, `await_approval`, `plan_only`.
    mode: Option<String>,
    /// The planned actions, as `name(arg = value, ...)`; exactly these, in order.
    actions: Option<Vec<String>>,
    /// `P1`..`P4`, or `none`.
    escalation: Option<String>,
    page: Option<bool>,
    /// `open`, `update`, `close`, or `none`.
    incident: Option<String>,
    /// Guards that must have refused (the start of their text: `cooldown`, `at_most 5`).
    #[serde(default)]
    guards_failed: Vec<String>,
    /// Words each found in some reason.
    #[serde(default)]
    reasons: Vec<String>,
    /// The fix generator of an L2.
    fix: Option<String>,
    /// `not_needed`, `wanted`, `used`.
    analysis: Option<String>,
    /// The token notices a `notify.token_owners` run sends, as `<token>: <mark>` (`30d`,
    /// `expired`, `no expiry`); exactly these, in order.
    notices: Option<Vec<String>>,
    /// The token incidents it raises, as `<token>: ticket` or `<token>: escalate`.
    raised: Option<Vec<String>>,
    /// The tokens whose incidents it closes (renewed, or gone from the inventory).
    closed: Option<Vec<String>>,
}

pub(super) fn run(args: Args) -> ExitCode {
    let paths = if args.paths.is_empty() { vec![PathBuf::from("playbooks")] } else { args.paths.clone() };
    let mut suites = Vec::new();
    for p in &paths {
        match files_under(p, &is_suite) {
            Ok(found) => suites.extend(found),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if suites.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: no test suites (`*.test.yaml`) under {}; see docs/triage.md for the format",
            shown.join(", ")
        );
        return ExitCode::from(2);
    }
    let mut graphs: HashMap<Vec<PathBuf>, RuleGraph> = HashMap::new();
    let (mut passed, mut failed) = (0, 0);
    let mut out = std::io::stdout().lock();
    for suite_path in &suites {
        match run_suite(suite_path, &mut graphs, args.verbose) {
            Ok(result) => {
                let _ = out.write_all(result.text.as_bytes());
                passed += result.passed;
                failed += result.failed;
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("error: {}: {e}", suite_path.display());
                return ExitCode::from(2);
            }
        }
    }
    let _ = writeln!(out, "\n{passed} passed, {failed} failed");
    if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn is_suite(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
}

/// What one suite gave.
pub struct SuiteResult {
    pub text: String,
    pub passed: usize,
    pub failed: usize,
}

/// Merges `over` into `base`: mappings key by key, anything else replaced.
fn merge(base: &mut serde_yaml::Value, over: &serde_yaml::Value) {
    match (base, over) {
        (serde_yaml::Value::Mapping(b), serde_yaml::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A suite read from its file, with the folders it names resolved against its own.
pub struct LoadedSuite {
    pub suite: Suite,
    /// The suite's folder: payload files are relative to it.
    pub dir: PathBuf,
    pub playbooks: Vec<PathBuf>,
    pub catalog: Vec<PathBuf>,
}

/// Reads the suite at `path`.
pub fn load_suite(path: &Path) -> Result<LoadedSuite, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let suite: Suite = serde_yaml::from_str(&text).map_err(|e| format!("not a valid test suite: {e}"))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let playbooks: Vec<PathBuf> = if suite.playbooks.is_empty() {
        vec![dir.clone()]
    } else {
        suite.playbooks.iter().map(|p| dir.join(p)).collect()
    };
    let catalog: Vec<PathBuf> = suite.catalog.iter().map(|p| dir.join(p)).collect();
    Ok(LoadedSuite { suite, dir, playbooks, catalog })
}

/// The context `case` starts from: the suite's, with the case's merged over it.
pub fn case_context(suite: &Suite, case: &Case) -> Result<triage::ContextFile, String> {
    let mut context = suite.context.clone().unwrap_or(serde_yaml::Value::Mapping(Default::default()));
    if let Some(c) = &case.context {
        merge(&mut context, c);
    }
    serde_yaml::from_value(context).map_err(|e| format!("case `{}`: the context is not valid: {e}", case.name))
}

/// Runs the suite at `path`; an unreadable suite, a broken playbook or an unreadable event is
/// an error, a decision that differs from the expectation is a failure.
pub fn run_suite(
    path: &Path,
    graphs: &mut HashMap<Vec<PathBuf>, RuleGraph>,
    verbose: bool,
) -> Result<SuiteResult, String> {
    let LoadedSuite { suite, dir, playbooks, catalog: catalog_paths } = load_suite(path)?;
    let dir = dir.as_path();
    if !graphs.contains_key(&playbooks) {
        graphs.insert(playbooks.clone(), input::load_graph(&playbooks)?);
    }
    let graph = &graphs[&playbooks];
    let catalog = input::load_catalog(&catalog_paths)?;
    let mut result = SuiteResult { text: format!("{}\n", path.display()), passed: 0, failed: 0 };
    for case in &suite.cases {
        let file = case_context(&suite, case)?;
        match run_case(case, &file, &catalog, dir, graph, verbose) {
            Ok(Ok(log)) => {
                result.passed += 1;
                let _ = writeln!(result.text, "  ok    {}", case.name);
                result.text.push_str(&log);
            }
            Ok(Err(failure)) => {
                result.failed += 1;
                let _ = writeln!(result.text, "  FAIL  {}", case.name);
                result.text.push_str(&failure);
            }
            Err(e) => return Err(format!("case `{}`: {e}", case.name)),
        }
    }
    Ok(result)
}

fn duration(text: &str, what: &str) -> Result<chrono::Duration, String> {
    crate::dsl::parse_duration(text)
        .map(|ms| chrono::Duration::milliseconds(ms as i64))
        .ok_or_else(|| format!("{what}: `{text}` is not a duration; write one such as `30s`, `15m` or `1d`"))
}

/// The events of a step, before time is applied.
fn step_events(step: &Step, dir: &Path, i: usize) -> Result<Vec<Event>, String> {
    let at = |e: String| format!("step {}: {e}", i + 1);
    let mut events = match (&step.event, &step.schedule) {
        (Some(_), Some(_)) => return Err(at("give `event` or `schedule`, not both".into())),
        (None, None) => return Err(at("give an `event` (a payload file or inline) or a `schedule`".into())),
        (None, Some(pb)) => vec![Event::schedule(pb, DateTime::<Utc>::UNIX_EPOCH)],
        (Some(serde_yaml::Value::String(file)), None) => {
            input::check_source(step.source.as_deref()).map_err(at)?;
            input::read_file(&dir.join(file), step.source.as_deref(), DateTime::<Utc>::UNIX_EPOCH).map_err(at)?.0
        }
        (Some(inline), None) => {
            input::check_source(step.source.as_deref()).map_err(at)?;
            let doc: serde_json::Value =
                serde_json::to_value(inline).map_err(|e| at(format!("the inline event is not JSON-like: {e}")))?;
            let raw = serde_json::to_vec(&doc).expect("JSON values serialize");
            input::events_of(&doc, &raw, step.source.as_deref(), DateTime::<Utc>::UNIX_EPOCH).map_err(at)?.0
        }
    };
    for event in &mut events {
        for (key, value) in &step.set {
            set_field(event, key, value).map_err(at)?;
        }
    }
    if events.is_empty() {
        return Err(at("the event holds no events".into()));
    }
    Ok(events)
}

fn set_field(event: &mut Event, key: &str, value: &str) -> Result<(), String> {
    if let Some(k) = key.strip_prefix("labels.") {
        event.labels.insert(k.to_string(), value.to_string());
    } else if let Some(k) = key.strip_prefix("annotations.") {
        event.annotations.insert(k.to_string(), value.to_string());
    } else {
        match key {
            "service" => event.service = Some(value.to_string()),
            "summary" => event.summary = value.to_string(),
            "fingerprint" => event.fingerprint = value.to_string(),
            "severity" => {
                event.severity = Severity::parse_loose(value)
                    .ok_or_else(|| format!("`set.severity`: `{value}` is not critical, high, warning or info"))?
            }
            "status" => {
                event.status = match value {
                    "firing" => Status::Firing,
                    "resolved" => Status::Resolved,
                    "acknowledged" => Status::Acknowledged,
                    "info" => Status::Info,
                    other => {
                        return Err(format!("`set.status`: `{other}` is not firing, resolved, acknowledged or info"));
                    }
                }
            }
            "occurred_at" => {
                event.occurred_at = DateTime::parse_from_rfc3339(value)
                    .map_err(|e| format!("`set.occurred_at`: `{value}` is not an RFC 3339 time ({e})"))?
                    .with_timezone(&Utc)
            }
            other => {
                return Err(format!(
                    "`set` cannot change `{other}`; it changes labels.<key>, annotations.<key>, service, severity, status, summary, fingerprint and occurred_at"
                ));
            }
        }
    }
    Ok(())
}

/// One delivery of a case's event, as the simulator decided it.
pub struct Delivered {
    /// The step (from 0) and its delivery (from 0, for `repeat`).
    pub step: usize,
    pub delivery: usize,
    pub at: DateTime<Utc>,
    /// The event as decided (normalized, `set:` applied, its service resolved).
    pub event: Event,
    pub decision: Decision,
}

/// A case as the simulator runs it: the time of its first step, and every delivery in order.
pub struct Simulated {
    pub start: DateTime<Utc>,
    pub delivered: Vec<Delivered>,
}

/// Decides every delivery of `case` in order, the context playing the executor's part
/// between them. The differential test holds the daemon to these decisions.
pub fn simulate_case(
    case: &Case,
    file: &triage::ContextFile,
    catalog: &std::sync::Arc<crate::knowledge::Catalog>,
    dir: &Path,
    graph: &RuleGraph,
) -> Result<Simulated, String> {
    if case.steps.is_empty() {
        return Err("a case needs at least one step".into());
    }
    let steps: Vec<Vec<Event>> =
        case.steps.iter().enumerate().map(|(i, s)| step_events(s, dir, i)).collect::<Result<_, _>>()?;
    let first_time = steps[0].iter().map(|e| e.occurred_at).find(|t| t.timestamp() > 0);
    let start = case.start.or(file.now).or(first_time).unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut ctx = MemoryContext::from_file(file, catalog.clone(), start).map_err(|e| format!("context: {e}"))?;
    let mut now = start;
    let mut delivered = Vec::new();
    for (i, (step, events)) in case.steps.iter().zip(steps).enumerate() {
        if let Some(at) = step.at {
            now = at;
        } else if let Some(after) = &step.after {
            now += duration(after, &format!("step {}: `after`", i + 1))?;
        }
        let every = match &step.every {
            Some(e) => duration(e, &format!("step {}: `every`", i + 1))?,
            None => chrono::Duration::zero(),
        };
        for r in 0..step.repeat.max(1) {
            if r > 0 {
                now += every;
            }
            ctx.set_now(now);
            for template in &events {
                let mut event = template.clone();
                event.received_at = now;
                if event.kind == crate::event::Kind::Schedule {
                    event = Event::schedule(step.schedule.as_deref().unwrap_or_default(), now);
                }
                let (decision, arrival) = triage::triage_event(
                    &mut event,
                    &mut ctx,
                    graph,
                    now,
                    Options::default(),
                    super::input::analyzer(&file.analysis, now),
                );
                ctx.record(&event, arrival, &decision, graph, step.outcome, now);
                delivered.push(Delivered { step: i, delivery: r, at: now, event, decision });
            }
        }
    }
    Ok(Simulated { start, delivered })
}

/// Runs one case: `Ok(Ok(log))` passed, `Ok(Err(report))` failed, `Err` could not run.
fn run_case(
    case: &Case,
    file: &triage::ContextFile,
    catalog: &std::sync::Arc<crate::knowledge::Catalog>,
    dir: &Path,
    graph: &RuleGraph,
    verbose: bool,
) -> Result<Result<String, String>, String> {
    let Simulated { start, delivered } = simulate_case(case, file, catalog, dir, graph)?;
    let mut desk = DeskSimulation {
        tokens: crate::knowledge::tokens::from_catalog(catalog)
            .into_iter()
            .chain(triage::token_inventory(&file.tokens, start).map_err(|e| format!("context: {e}"))?)
            .collect(),
        ..DeskSimulation::default()
    };
    let mut log = String::new();
    let mut failures = String::new();
    let mut stepped = None;
    for Delivered { step: i, delivery: r, at: now, decision: d, .. } in &delivered {
        let (i, r, now) = (*i, *r, *now);
        let step = &case.steps[i];
        // A step's inventory holds from its first delivery on.
        if stepped != Some(i) {
            stepped = Some(i);
            if let Some(tokens) = &step.tokens {
                desk.tokens = crate::knowledge::tokens::from_catalog(catalog)
                    .into_iter()
                    .chain(triage::token_inventory(tokens, now).map_err(|e| format!("step {}: {e}", i + 1))?)
                    .collect();
            }
        }
        let tokens = simulate_token_owners(d, step.outcome, &mut desk, now)?;
        let where_ = if step.repeat > 1 {
            format!("step {}, delivery {} of {}", i + 1, r + 1, step.repeat)
        } else {
            format!("step {}", i + 1)
        };
        let problems = step.expect.as_ref().map(|e| check(e, d, &tokens)).unwrap_or_default();
        if verbose || !problems.is_empty() {
            let by = d.playbook.as_deref().map(|p| format!(" by {p}")).unwrap_or_default();
            let line = format!("        {where_} at {}: {}{by}\n", now.to_rfc3339(), d.level);
            if problems.is_empty() {
                log.push_str(&line);
            } else {
                failures.push_str(&line);
                for p in &problems {
                    let _ = writeln!(failures, "          ✗ {p}");
                }
                for reason in &d.reasons {
                    let _ = writeln!(failures, "            because: {reason}");
                }
            }
        }
    }
    Ok(if failures.is_empty() { Ok(log) } else { Err(failures) })
}

/// The `notify.token_owners` actions a decision applies, run against the simulated desk
/// (when the run is carried out: applied, whether its verification then holds or not).
fn simulate_token_owners(
    d: &Decision,
    outcome: Outcome,
    desk: &mut DeskSimulation,
    now: DateTime<Utc>,
) -> Result<SimulatedRun, String> {
    let mut run = SimulatedRun::default();
    let applies =
        d.level == Level::L1 && d.mode == Some(L1Mode::Apply) && matches!(outcome, Outcome::Success | Outcome::Failure);
    if !applies {
        return Ok(run);
    }
    for a in d.actions.iter().filter(|a| a.plan.action == crate::actions::TOKEN_OWNERS) {
        let policy = crate::actions::notice_policy(&a.plan.args)?;
        let one = desk.run(&policy, now, outcome == Outcome::Success);
        run.notices.extend(one.notices);
        run.raised.extend(one.raised);
        run.closed.extend(one.closed);
    }
    Ok(run)
}

/// What differs between the expectation and the decision, one line each.
fn check(e: &Expect, d: &Decision, tokens: &SimulatedRun) -> Vec<String> {
    let mut out = Vec::new();
    let mut lists = |what: &str, expected: &Option<Vec<String>>, got: Vec<String>| {
        if let Some(expected) = expected
            && *expected != got
        {
            out.push(format!("{what}: expected {expected:?}, got {got:?}"));
        }
    };
    lists("notices", &e.notices, tokens.notices.iter().map(|n| format!("{}: {}", n.key.token, n.key.mark)).collect());
    lists("raised", &e.raised, tokens.raised.iter().map(|(n, r)| format!("{}: {}", n.key.token, r.as_str())).collect());
    lists("closed", &e.closed, tokens.closed.clone());
    let mut differ = |what: &str, expected: &str, got: &str| {
        if !expected.eq_ignore_ascii_case(got) {
            out.push(format!("{what}: expected {expected}, got {got}"));
        }
    };
    if let Some(level) = &e.level {
        differ("level", level, d.level.as_str());
    }
    if let Some(pb) = &e.playbook {
        differ("playbook", pb, d.playbook.as_deref().unwrap_or("none"));
    }
    if let Some(mode) = &e.mode {
        differ("mode", mode, d.mode.map_or("none", L1Mode::as_str));
    }
    if let Some(p) = &e.escalation {
        differ("escalation", p, d.escalation.as_ref().map_or("none", |x| x.priority.as_str()));
    }
    if let Some(page) = e.page {
        let got = d.escalation.as_ref().is_some_and(|x| x.page);
        differ("page", &page.to_string(), &got.to_string());
    }
    if let Some(inc) = &e.incident {
        differ("incident", inc, d.incident.as_ref().map_or("none", |i| i.effect.as_str()));
    }
    if let Some(fix) = &e.fix {
        differ("fix", fix, d.fix.as_ref().map_or("none", |f| f.generator.as_str()));
    }
    if let Some(a) = &e.analysis {
        let got = match d.analysis {
            AnalysisUse::NotNeeded => "not_needed",
            AnalysisUse::Wanted => "wanted",
            AnalysisUse::Used => "used",
        };
        differ("analysis", a, got);
    }
    if let Some(actions) = &e.actions {
        let got: Vec<String> = d.actions.iter().map(|a| a.to_string()).collect();
        if &got != actions {
            out.push(format!("actions: expected {actions:?}, got {got:?}"));
        }
    }
    let failed: Vec<String> = d.trace.iter().flat_map(|t| &t.guards).filter(|g| !g.passed).map(|g| g.guard()).collect();
    for g in &e.guards_failed {
        if !failed.iter().any(|f| f.starts_with(g.as_str())) {
            out.push(format!("guard `{g}` should have refused; refused: {failed:?}"));
        }
    }
    for r in &e.reasons {
        if !d.reasons.iter().any(|x| x.contains(r.as_str())) {
            out.push(format!("no reason mentions {r:?}"));
        }
    }
    if let Some(level) = &e.level
        && Level::parse(level).is_none()
    {
        out.push(format!("`{level}` is not a level: write L1, L2, L3, observe or suppressed"));
    }
    out
}
