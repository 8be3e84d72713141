//! The triage context held in memory, and the YAML that describes it (`sparky explain
//! --context`, test suites). It can also play the executor's part in a simulation: after each
//! decision, [`MemoryContext::record`] opens and closes incidents and adds runs, so a
//! sequence of events (a storm, a cooldown that expires, a success rate that drops) is decided
//! as the daemon would decide it.

use super::context::{Analysis, OpenIncident, Outcome, Pause, Run, Settings, TriageContext};
use super::decision::{Decision, IncidentEffect, L1Mode, Level};
use super::guards::run_keys;
use crate::dsl::parse_duration;
use crate::event::Event;
use crate::graph::RuleGraph;
use crate::script::{ContextView, StaticContext};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A context in memory.
#[derive(Clone)]
pub struct MemoryContext {
    kg: StaticContext,
    knowledge: Arc<dyn ContextView>,
    runs: HashMap<String, Vec<Run>>,
    open: HashMap<String, OpenIncident>,
    pauses: Vec<Pause>,
    analysis: Option<Analysis>,
    settings: Settings,
}

impl std::fmt::Debug for MemoryContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryContext")
            .field("knowledge", &self.kg)
            .field("runs", &self.runs)
            .field("open", &self.open)
            .field("pauses", &self.pauses)
            .field("analysis", &self.analysis)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Default for MemoryContext {
    fn default() -> Self {
        MemoryContext::new(StaticContext::default())
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
}

impl MemoryContext {
    pub fn new(kg: StaticContext) -> MemoryContext {
        MemoryContext {
            knowledge: Arc::new(kg.clone()),
            kg,
            runs: HashMap::new(),
            open: HashMap::new(),
            pauses: Vec::new(),
            analysis: None,
            settings: Settings::default(),
        }
    }

    /// Moves the knowledge snapshot's "now" (its windows count back from it).
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        if self.kg.now_ms != now.timestamp_millis() {
            self.kg.now_ms = now.timestamp_millis();
            self.knowledge = Arc::new(self.kg.clone());
        }
    }

    pub fn add_run(&mut self, playbook: &str, run: Run) {
        self.runs.entry(playbook.to_string()).or_default().push(run);
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

    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }

    /// Plays the executor's part after `decision` on `event` at `now`: an applied L1 adds a
    /// run with `outcome` (a draft's adds a planned one); a decision that acts opens the
    /// incident (and adds it to the knowledge history); a resolution closes it.
    pub fn record(
        &mut self,
        event: &Event,
        decision: &Decision,
        graph: &RuleGraph,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) {
        if let (Level::L1, Some(id)) = (decision.level, &decision.playbook) {
            let outcome = match decision.mode {
                Some(L1Mode::Apply) => Some(outcome),
                Some(L1Mode::PlanOnly) => Some(Outcome::Planned),
                _ => None,
            };
            let guards = graph.playbooks().iter().find(|p| &p.id == id).and_then(|p| p.l1.as_ref()).map(|l| &l.guards);
            if let (Some(outcome), Some(guards)) = (outcome, guards) {
                self.add_run(id, Run { at: now, keys: run_keys(guards, event), outcome });
            }
        }
        let Some(change) = &decision.incident else { return };
        match change.effect {
            IncidentEffect::Open => {
                self.open(OpenIncident {
                    key: change.key.clone(),
                    fingerprint: event.fingerprint.clone(),
                    opened_at: now,
                    level: decision.level.as_str().to_string(),
                    playbook: decision.playbook.clone(),
                });
                let mut past = rhai::Map::new();
                past.insert("key".into(), change.key.clone().into());
                past.insert("level".into(), decision.level.as_str().into());
                past.insert("playbook".into(), decision.playbook.clone().unwrap_or_default().into());
                past.insert("summary".into(), event.summary.clone().into());
                self.kg.incidents.push((event.fingerprint.clone(), now.timestamp_millis(), past));
                self.knowledge = Arc::new(self.kg.clone());
            }
            IncidentEffect::Close => {
                self.open.remove(&event.fingerprint);
            }
            IncidentEffect::Update => {}
        }
    }

    /// Builds a context from its YAML description, times relative to `now`.
    pub fn from_file(file: &ContextFile, now: DateTime<Utc>) -> Result<MemoryContext, String> {
        let at = |a: &Option<DateTime<Utc>>, ago: &Option<String>, what: &str| {
            when(a, ago, now).map_err(|e| format!("{what}: {e}"))
        };
        let mut kg = StaticContext { now_ms: now.timestamp_millis(), ..Default::default() };
        for (name, service) in &file.services {
            let mut map = to_map(&service.rest).map_err(|e| format!("services.{name}: {e}"))?;
            if let Some(owner) = &service.owner {
                map.insert("owner".into(), owner.clone().into());
            }
            for dep in &service.depends_on {
                kg.depends_on.push((name.clone(), dep.clone()));
            }
            kg.services.insert(name.clone(), map);
        }
        for (key, pod) in &file.pods {
            let (namespace, name) = key.split_once('/').ok_or_else(|| {
                format!("pods: `{key}` should read `<namespace>/<pod>`, e.g. `prod/api-7d9c8b6f5-x2x9q`")
            })?;
            let map = to_map(pod).map_err(|e| format!("pods.{key}: {e}"))?;
            kg.pods.insert((namespace.to_string(), name.to_string()), map);
        }
        for (i, deploy) in file.deploys.iter().enumerate() {
            let when = at(&deploy.at, &deploy.ago, &format!("deploys[{i}]"))?;
            let mut map = to_map(&deploy.rest).map_err(|e| format!("deploys[{i}]: {e}"))?;
            map.insert("service".into(), deploy.service.clone().into());
            map.insert("at".into(), when.to_rfc3339().into());
            kg.deploys.push((deploy.service.clone(), when.timestamp_millis(), map));
        }
        for (i, inc) in file.incidents.iter().enumerate() {
            let when = at(&inc.at, &inc.ago, &format!("incidents[{i}]"))?;
            let mut map = to_map(&inc.rest).map_err(|e| format!("incidents[{i}]: {e}"))?;
            map.insert("at".into(), when.to_rfc3339().into());
            kg.incidents.push((inc.fingerprint.clone(), when.timestamp_millis(), map));
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
                    ctx.add_run(playbook, Run { at: when, keys: r.keys.clone(), outcome: r.outcome });
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
            ctx.pause(Pause { playbook: p.playbook.clone(), reason: p.reason.clone(), by: p.by.clone(), until });
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

#[derive(Debug, Clone, Deserialize)]
pub struct DeployFact {
    pub service: String,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_yaml::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IncidentFact {
    pub fingerprint: String,
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ago: Option<String>,
    #[serde(flatten)]
    pub rest: BTreeMap<String, serde_yaml::Value>,
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
    pub reason: String,
    #[serde(default)]
    pub by: Option<String>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// How long from now.
    #[serde(default)]
    pub r#for: Option<String>,
}
