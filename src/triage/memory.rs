//! The triage context held in memory, and the YAML that describes it (`sparky explain
//! --context`, test suites). It can also play the executor's part in a simulation: after each
//! decision, [`MemoryContext::record`] opens and closes incidents and adds runs, so a
//! sequence of events (a storm, a cooldown that expires, a success rate that drops) is decided
//! as the daemon would decide it.

use super::context::{Analysis, OpenIncident, Outcome, Pause, Run, Settings, TriageContext};
use super::decision::Decision;
use super::lifecycle::{self, Arrival, Effects, Track};
use crate::dsl::parse_duration;
use crate::event::Event;
use crate::graph::RuleGraph;
use crate::knowledge::{Deploy, DeployState, Knowledge, PastIncident};
use crate::script::ContextView;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A context in memory.
#[derive(Clone)]
pub struct MemoryContext {
    kg: Arc<Knowledge>,
    knowledge: Arc<dyn ContextView>,
    runs: Arc<HashMap<String, Vec<Run>>>,
    open: HashMap<String, OpenIncident>,
    tracks: HashMap<String, Track>,
    pauses: Vec<Pause>,
    analysis: Option<Analysis>,
    settings: Settings,
}

impl std::fmt::Debug for MemoryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryContext")
            .field("knowledge", &self.kg.incident_count())
            .field("runs", &self.runs)
            .field("open", &self.open)
            .field("tracks", &self.tracks)
            .field("pauses", &self.pauses)
            .field("analysis", &self.analysis)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Default for MemoryContext {
    fn default() -> Self {
        MemoryContext::new(Knowledge::default())
    }
}

impl TriageContext for MemoryContext {
    fn knowledge(&self) -> &Arc<dyn ContextView> {
        &self.knowledge
    }
    fn runs(&self, playbook: &str) -> &[Run] {
        self.runs.get(playbook).map_or(&[], Vec::as_slice)
    }
    fn open_incident(&self, fingerprint: &str) -> Option<&OpenIncident> {
        self.open.get(fingerprint)
    }
    fn pauses(&self) -> &[Pause] {
        &self.pauses
    }
    fn analysis(&self) -> Option<&Analysis> {
        self.analysis.as_ref()
    }
    fn settings(&self) -> &Settings {
        &self.settings
    }
    fn track(&self, fingerprint: &str) -> Option<&Track> {
        self.tracks.get(fingerprint)
    }
    fn incident(&self, key: &str) -> Option<&OpenIncident> {
        self.open.values().find(|i| i.key == key)
    }
}

impl MemoryContext {
    pub fn new(kg: Knowledge) -> MemoryContext {
        MemoryContext::shared(Arc::new(kg))
    }

    /// A context over a knowledge snapshot shared with others (the daemon's batch).
    pub fn shared(kg: Arc<Knowledge>) -> MemoryContext {
        MemoryContext {
            knowledge: kg.clone(),
            kg,
            runs: Arc::default(),
            open: HashMap::new(),
            tracks: HashMap::new(),
            pauses: Vec::new(),
            analysis: None,
            settings: Settings::default(),
        }
    }

    /// The knowledge snapshot, typed (for the analyzer and the context package).
    pub fn knowledge_graph(&self) -> &Knowledge {
        &self.kg
    }

    /// Changes the knowledge snapshot (copied first when it is shared).
    /// Call `refresh` when done.
    fn knowledge_mut(&mut self) -> &mut Knowledge {
        // Let go of the view's reference first, so that an unshared snapshot is not copied.
        self.knowledge = Arc::new(crate::script::NoContext);
        Arc::make_mut(&mut self.kg)
    }

    fn refresh(&mut self) {
        self.knowledge = self.kg.clone();
    }

    /// Moves the knowledge snapshot's "now" (its windows count back from it).
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        if self.kg.now_ms() != now.timestamp_millis() {
            self.knowledge_mut().set_now_ms(now.timestamp_millis());
            self.refresh();
        }
    }

    pub fn add_run(&mut self, playbook: &str, run: Run) {
        Arc::make_mut(&mut self.runs).entry(playbook.to_string()).or_default().push(run);
    }

    /// The run history, by playbook.
    pub fn all_runs(&self) -> &HashMap<String, Vec<Run>> {
        &self.runs
    }

    /// Replaces the run history with one shared with others (the daemon's batch).
    pub fn set_runs(&mut self, runs: Arc<HashMap<String, Vec<Run>>>) {
        self.runs = runs;
    }

    pub fn open(&mut self, incident: OpenIncident) {
        self.open.insert(incident.fingerprint.clone(), incident);
    }

    pub fn pause(&mut self, pause: Pause) {
        self.pauses.push(pause);
    }

    pub fn set_analysis(&mut self, analysis: Option<Analysis>) {
        self.analysis = analysis;
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Sets what is remembered of `fingerprint` (the daemon's batch reads it from the store).
    pub fn set_track(&mut self, fingerprint: &str, track: Track) {
        self.tracks.insert(fingerprint.to_string(), track);
    }

    /// The open incidents, by fingerprint.
    pub fn open_incidents(&self) -> &HashMap<String, OpenIncident> {
        &self.open
    }

    /// The event arrives at `now`, before it is decided: its state change is counted on its
    /// fingerprint, which may start or stop flapping, and a re-fire inside the verification window makes the
    /// run the resolution had verified a failure. Applied here; the returned arrival goes
    /// with the decision to [`MemoryContext::record`].
    pub fn arrive(&mut self, event: &Event, now: DateTime<Utc>) -> Arrival {
        let fingerprint = &event.fingerprint;
        let arrival = lifecycle::arrive(fingerprint, self.tracks.get(fingerprint), event, now, &self.settings);
        if let Some(key) = &arrival.refired {
            self.fail_run(key);
        }
        if arrival.remembered {
            self.tracks.insert(fingerprint.clone(), arrival.track.clone());
        }
        arrival
    }

    /// Plays the executor's part after `decision` on `event` at `now`: the one account of
    /// effects ([`lifecycle::effects`]), applied here and returned for the store. An applied
    /// L1 adds a run with `outcome` (a draft's adds a planned one); a decision that acts
    /// opens the incident (and adds it to the knowledge history); a resolution closes it; a
    /// deploy event adds its deploy to the knowledge.
    pub fn record(
        &mut self,
        event: &Event,
        arrival: Arrival,
        decision: &Decision,
        graph: &RuleGraph,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Effects {
        let fx = lifecycle::effects(event, arrival, decision, graph, outcome, now);
        self.apply(&fx);
        fx
    }

    /// Time passes to `now` with no event: flapping fingerprints that went quiet stop
    /// flapping, and their incidents close when the alert is resolved. Applied here; returned
    /// for the store.
    pub fn settle(&mut self, now: DateTime<Utc>) -> Vec<Effects> {
        let mut flapping: Vec<&String> = self.tracks.iter().filter(|(_, t)| t.is_flapping()).map(|(f, _)| f).collect();
        flapping.sort();
        let all: Vec<Effects> = flapping
            .into_iter()
            .filter_map(|f| lifecycle::settle(f, &self.tracks[f], self.open.get(f), now, &self.settings))
            .collect();
        for fx in &all {
            self.apply(fx);
        }
        all
    }

    /// Applies `fx` to this context.
    fn apply(&mut self, fx: &Effects) {
        if let Some(deploy) = &fx.deploy {
            self.knowledge_mut().add_deploy(deploy.clone());
            self.refresh();
        }
        if let Some((playbook, run)) = &fx.run {
            self.add_run(playbook, run.clone());
        }
        if let Some(key) = &fx.closed {
            self.open.retain(|_, i| &i.key != key);
        }
        if let Some(inc) = &fx.opened {
            self.open(inc.clone());
        }
        if let Some(past) = &fx.past {
            self.knowledge_mut().add_incident(past.clone());
            self.refresh();
        }
        if let Some(track) = &fx.track {
            self.tracks.insert(fx.fingerprint.clone(), track.clone());
        }
    }

    /// The runs of incident `key` that a resolution had verified are failures after all.
    fn fail_run(&mut self, key: &str) {
        if !self.runs.values().flatten().any(|r| r.incident.as_deref() == Some(key)) {
            return;
        }
        for run in Arc::make_mut(&mut self.runs).values_mut().flatten() {
            if run.incident.as_deref() == Some(key) && matches!(run.outcome, Outcome::Success | Outcome::Pending) {
                run.outcome = Outcome::Failure;
            }
        }
    }

    /// Builds a context from its YAML description, times relative to `now`.
    pub fn from_file(
        file: &ContextFile,
        catalog: Arc<crate::knowledge::Catalog>,
        now: DateTime<Utc>,
    ) -> Result<MemoryContext, String> {
        let at = |a: &Option<DateTime<Utc>>, ago: &Option<String>, what: &str| {
            when(a, ago, now).map_err(|e| format!("{what}: {e}"))
        };
        let mut kg = Knowledge::new(catalog, now.timestamp_millis());
        for (name, service) in &file.services {
            let mut map = to_map(&service.rest).map_err(|e| format!("services.{name}: {e}"))?;
            if let Some(owner) = &service.owner {
                map.insert("owner".into(), owner.clone().into());
            }
            for dep in &service.depends_on {
                kg.catalog_mut().add_dependency(name, dep);
            }
            kg.add_facts(name, map);
        }
        for (key, pod) in &file.pods {
            let (namespace, name) = key.split_once('/').ok_or_else(|| {
                format!("pods: `{key}` should read `<namespace>/<pod>`, e.g. `prod/api-7d9c8b6f5-x2x9q`")
            })?;
            let map = to_map(pod).map_err(|e| format!("pods.{key}: {e}"))?;
            kg.add_pod(namespace, name, map);
        }
        for (i, d) in file.deploys.iter().enumerate() {
            let when = at(&d.at, &d.ago, &format!("deploys[{i}]"))?;
            kg.add_deploy(Deploy {
                key: d.key.clone().unwrap_or_else(|| format!("context/deploys/{i}")),
                service: d.service.clone(),
                at: when,
                state: d.state.map_or(DeployState::Succeeded, |s| s),
                environment: d.environment.clone(),
                version: d.version.clone(),
                commit: d.commit.clone(),
                repository: d.repository.clone(),
                by: d.by.clone(),
                url: d.url.clone(),
                source: "context".into(),
                summary: format!("deploy of {} to {}", d.version.as_deref().unwrap_or("a new version"), d.service),
            });
        }
        for (i, inc) in file.incidents.iter().enumerate() {
            let when = at(&inc.at, &inc.ago, &format!("incidents[{i}]"))?;
            kg.add_incident(PastIncident {
                key: inc.key.clone().unwrap_or_else(|| format!("PAST-{i}")),
                fingerprint: inc.fingerprint.clone(),
                service: inc.service.clone(),
                opened_at: when,
                closed_at: None,
                level: inc.level.clone().unwrap_or_else(|| "L3".into()),
                playbook: inc.playbook.clone(),
                summary: inc.summary.clone().unwrap_or_default(),
                actions: inc.actions.clone(),
                fix: inc.fix.clone(),
                outcome: inc.outcome.clone(),
                flapping: inc.flapping,
            });
        }
        let mut ctx = MemoryContext::new(kg);
        for (i, inc) in file.open_incidents.iter().enumerate() {
            let opened_at = at(&inc.at, &inc.ago, &format!("open_incidents[{i}]"))?;
            ctx.open(OpenIncident {
                key: inc.key.clone(),
                fingerprint: inc.fingerprint.clone(),
                opened_at,
                level: inc.level.clone(),
                playbook: inc.playbook.clone(),
            });
        }
        for (playbook, runs) in &file.runs {
            for (i, r) in runs.iter().enumerate() {
                let when = at(&r.at, &r.ago, &format!("runs.{playbook}[{i}]"))?;
                for _ in 0..r.count.unwrap_or(1).min(100_000) {
                    ctx.add_run(playbook, Run { at: when, keys: r.keys.clone(), outcome: r.outcome, incident: None });
                }
            }
        }
        for (i, p) in file.paused.iter().enumerate() {
            let until = match (&p.until, &p.r#for) {
                (Some(u), _) => Some(*u),
                (None, Some(d)) => {
                    Some(now + chrono::Duration::milliseconds(duration_ms(d, &format!("paused[{i}].for"))?))
                }
                (None, None) => None,
            };
            ctx.pause(Pause {
                playbook: p.playbook.clone(),
                service: p.service.clone(),
                namespace: p.namespace.clone(),
                breaker: false,
                reason: p.reason.clone(),
                by: p.by.clone(),
                until,
            });
        }
        ctx.analysis = file.analysis.clone();
        ctx.settings = file.settings.clone();
        Ok(ctx)
    }
}

fn duration_ms(text: &str, what: &str) -> Result<i64, String> {
    parse_duration(text)
        .map(|d| d as i64)
        .ok_or_else(|| format!("{what}: `{text}` is not a duration; write one such as `30m`, `2h` or `7d`"))
}

fn to_map(v: &BTreeMap<String, serde_yaml::Value>) -> Result<rhai::Map, String> {
    v.iter()
        .map(|(k, v)| {
            let d = rhai::serde::to_dynamic(v).map_err(|e| format!("`{k}` cannot be read: {e}"))?;
            Ok((k.as_str().into(), d))
        })
        .collect()
}

/// A point in time, written `at: <RFC 3339>` or `ago: <duration>` (before "now"); "now"
/// when neither is given.
fn when(at: &Option<DateTime<Utc>>, ago: &Option<String>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    match (at, ago) {
        (Some(_), Some(_)) => Err("give `at` or `ago`, not both".into()),
        (Some(at), None) => Ok(*at),
        (None, Some(ago)) => Ok(now - chrono::Duration::milliseconds(duration_ms(ago, "ago")?)),
        (None, None) => Ok(now),
    }
}

/// The YAML description of a context. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextFile {
    /// What "now" is; the clock (or the suite's time) when left out.
    #[serde(default)]
    pub now: Option<DateTime<Utc>>,
    #[serde(default)]
    pub settings: Settings,
    /// Catalog entries, by service name: `stateless`, `tier`, `owner`, `depends_on`, and any
    /// other key a condition reads.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceFacts>,
    /// Pods by `<namespace>/<name>`: `last_termination_reason`, `restarts`, `owner_kind`, ...
    #[serde(default)]
    pub pods: BTreeMap<String, BTreeMap<String, serde_yaml::Value>>,
    #[serde(default)]
    pub deploys: Vec<DeployFact>,
    /// Past incidents, for `kg::history`.
    #[serde(default)]
    pub incidents: Vec<IncidentFact>,
    /// Incidents open now, for suppression and resolution.
    #[serde(default)]
    pub open_incidents: Vec<OpenIncidentFact>,
    /// L1 runs by playbook id.
    #[serde(default)]
    pub runs: BTreeMap<String, Vec<RunFact>>,
    #[serde(default)]
    pub paused: Vec<PauseFact>,
    #[serde(default)]
    pub analysis: Option<Analysis>,
    /// The token inventory (`sparky test` runs `notify.token_owners` against it).
    #[serde(default)]
    pub tokens: Vec<TokenFact>,
}

/// A token of a simulated inventory: `name`, `owner`, and `expires_at` (a time) or
/// `expires_in` (a duration from the case's start, or the step's time); neither is a token
/// without an expiry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFact {
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// The inventory `facts` describe at `now`.
pub fn token_inventory(
    facts: &[TokenFact],
    now: DateTime<Utc>,
) -> Result<Vec<crate::knowledge::tokens::TokenInfo>, String> {
    facts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let expires_at = match (&t.expires_at, &t.expires_in) {
                (Some(_), Some(_)) => return Err(format!("tokens[{i}]: give `expires_at` or `expires_in`, not both")),
                (Some(at), None) => Some(*at),
                (None, Some(d)) => Some(now + chrono::Duration::milliseconds(duration_ms(d, "expires_in")?)),
                (None, None) => None,
            };
            Ok(crate::knowledge::tokens::TokenInfo {
                name: t.name.clone(),
                owner: t.owner.clone(),
                expires_at,
                source: "test context".into(),
            })
        })
        .collect()
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceFacts {
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_yaml::Value>,
}

/// A deploy: `service` and `at`/`ago`; `version`, `commit`, `by`, ... as known.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployFact {
    pub service: String,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub state: Option<DeployState>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

/// A past incident: `fingerprint` and `at`/`ago`; what was done and how it ended.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentFact {
    pub fingerprint: String,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub actions: Vec<String>,
    /// The fix generator used (`revert`, ...).
    #[serde(default)]
    pub fix: Option<String>,
    /// `success` or `failure`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Opened while its alert flapped.
    #[serde(default)]
    pub flapping: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenIncidentFact {
    pub fingerprint: String,
    pub key: String,
    #[serde(default = "default_level")]
    pub level: String,
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
}

fn default_level() -> String {
    "L3".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFact {
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
    pub outcome: Outcome,
    /// How many identical runs this line stands for.
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseFact {
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    pub reason: String,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// How long from now.
    #[serde(default)]
    pub r#for: Option<String>,
}
