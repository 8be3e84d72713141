//! The service catalog: the Backstage `catalog-info.yaml` entities SRE teams already keep.
//!
//! Sparky reads six kinds (Component, Resource, System, Group, User, API) from multi-document
//! YAML files. Components and Resources are *services*: what an event is about, what breaks
//! when it breaks, who owns it, who is on call. Dependencies are adjacency lists by index in
//! both directions, so `downstream` and `upstream` walk only the edges they follow.
//!
//! Reading never stops at the first problem: a file that is not YAML, or one bad document,
//! costs only that document; every problem becomes a [`Diagnostic`] pointing at its line.
//! `docs/catalog.md` documents the format.

use crate::diagnostics::{Code, Diagnostic, SourceFile, Span};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// How deep `downstream` and `upstream` walk; a longer chain is a modelling accident.
const MAX_DEPTH: u32 = 64;

/// How deeply nested keys are indexed to point at them; Sparky reads four levels.
const MAX_KEY_DEPTH: usize = 16;

/// Kinds that are Backstage's own but tell Sparky nothing: read past without a word.
const IGNORED_KINDS: &[&str] = &["Domain", "Location", "Template"];

/// The `sparky.dev/` annotations Sparky reads.
const SPARKY_ANNOTATIONS: &[&str] = &[
    "sparky.dev/aliases",
    "sparky.dev/expires-at",
    "sparky.dev/max-replicas",
    "sparky.dev/oncall",
    "sparky.dev/replicas",
    "sparky.dev/runbook",
    "sparky.dev/slack-channel",
    "sparky.dev/stateless",
    "sparky.dev/test-command",
    "sparky.dev/tier",
];

const ENTITY_SHAPE: &str = "every entity needs `apiVersion: backstage.io/v1alpha1`, a `kind` (Component, Resource, System, Group, User or API) and `metadata.name`";

/// The entity kinds Sparky reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Component,
    Resource,
    System,
    Group,
    User,
    Api,
}

impl Kind {
    const ALL: [Kind; 6] = [Kind::Component, Kind::Resource, Kind::System, Kind::Group, Kind::User, Kind::Api];

    fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(text))
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Component => "Component",
            Kind::Resource => "Resource",
            Kind::System => "System",
            Kind::Group => "Group",
            Kind::User => "User",
            Kind::Api => "API",
        }
    }

    /// The kind as refs write it: `component`, `api`.
    fn ref_prefix(self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    fn is_service(self) -> bool {
        matches!(self, Kind::Component | Kind::Resource)
    }
}

/// The catalog paths to use: the ones given, or `./catalog` when that folder exists (what
/// `sparky check`, `explain`, `replay` and `serve` do without `--catalog`).
pub fn paths_or_default(given: Option<&[PathBuf]>) -> Vec<PathBuf> {
    match given {
        Some(paths) if !paths.is_empty() => paths.to_vec(),
        Some(_) => Vec::new(),
        None => {
            let default = PathBuf::from("catalog");
            if default.is_dir() { vec![default] } else { Vec::new() }
        }
    }
}

/// Annotations that hold secrets: read into their own fields, never kept among the
/// annotations that conditions, packages and the API show.
pub const SECRET_ANNOTATIONS: &[&str] = &["pagerduty.com/integration-key"];

/// Everything the catalog says, indexed for the questions Sparky asks of it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    services: Vec<Service>,
    /// Lowercase `metadata.name` → service (the first loaded, when namespaces share a name).
    names: HashMap<String, usize>,
    /// Lowercase `namespace/name` → service.
    qualified: HashMap<String, usize>,
    /// Lowercase alias → service.
    aliases: HashMap<String, usize>,
    graph: Graph,
    /// `(lowercase kind, lowercase name)` of a Group or User → what it says of itself.
    owners: HashMap<(String, String), Owner>,
    tokens: Vec<Token>,
    files: usize,
    entities: usize,
}

/// A service and one of the services it is related to, with how many hops away it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Related {
    pub name: String,
    /// 1 for a direct dependency or dependent.
    pub depth: u32,
}

/// A Component or Resource of the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    pub name: String,
    /// `Component` or `Resource`.
    pub kind: String,
    /// `default` unless `metadata.namespace` says otherwise.
    pub namespace: String,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The owner's entity ref as written, e.g. `group:team-checkout`.
    pub owner: Option<String>,
    pub system: Option<String>,
    pub lifecycle: Option<String>,
    /// `spec.type`.
    pub r#type: Option<String>,
    /// `sparky.dev/stateless`.
    pub stateless: Option<bool>,
    /// `sparky.dev/tier`.
    pub tier: Option<String>,
    /// `sparky.dev/oncall`.
    pub oncall: Option<String>,
    /// `sparky.dev/runbook`.
    pub runbook: Option<String>,
    /// `sparky.dev/replicas`: how many instances run, for blast radius.
    pub replicas: Option<u32>,
    /// `github.com/project-slug`: `org/repo`.
    pub repo: Option<String>,
    /// `pagerduty.com/integration-key`: a secret (it lets anyone page the team). Kept for
    /// L3 only: never serialized (the context package, the remote analyzer's prompt, the
    /// API) and left out of `annotations`, so conditions never see it either.
    #[serde(skip)]
    pub pagerduty_integration_key: Option<String>,
    /// `pagerduty.com/service-id`.
    pub pagerduty_service_id: Option<String>,
    /// `jira/project-key`.
    pub jira_project: Option<String>,
    /// `sparky.dev/test-command`.
    pub test_command: Option<String>,
    /// Other names events use for the service: `backstage.io/kubernetes-id` and
    /// `sparky.dev/aliases`.
    pub aliases: Vec<String>,
    pub tags: Vec<String>,
    pub links: Vec<Link>,
    pub annotations: BTreeMap<String, String>,
    /// The file the entity is in, and the 1-based line where it starts.
    pub file: String,
    pub line: usize,
}

/// A link of `metadata.links`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The link's `title`, or its URL when it has none.
    pub title: String,
    pub url: String,
}

/// Who owns a service: a Group or User of the catalog, or only the ref when the catalog does
/// not hold that entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Owner {
    /// The ref as the service writes it (`group:team-checkout`).
    pub reference: String,
    /// `Group`, `User`, or `""` when the entity is not in the catalog.
    pub kind: String,
    pub name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// `sparky.dev/slack-channel`.
    pub slack: Option<String>,
    /// `sparky.dev/oncall`.
    pub oncall: Option<String>,
    /// On GitHub: a User's `github.com/user-login`, a Group's `github.com/team-slug`
    /// (`org/team`), as Backstage's GitHub integration writes them. L2 asks them to review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<String>,
}

/// Who is asked to review an L2 pull request: GitHub logins and teams (`org/team`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewers {
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
}

/// A GitHub login: letters, digits and single hyphens, at most 39 characters.
pub fn is_github_login(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 39
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

/// An API token the catalog knows of: a Resource of type `api-token`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Token {
    pub name: String,
    /// `spec.owner`, as written.
    pub owner: Option<String>,
    /// `sparky.dev/expires-at`.
    pub expires_at: Option<DateTime<Utc>>,
    pub file: String,
    pub line: usize,
}

/// Dependencies between named nodes: every service has one, and a dependency added by name
/// alone (a context file naming a service the catalog lacks) gets one too.
#[derive(Debug, Clone, Default)]
struct Graph {
    names: Vec<String>,
    /// Lowercase name → node.
    index: HashMap<String, u32>,
    /// Node → the nodes it depends on.
    depends_on: Vec<Vec<u32>>,
    /// Node → the nodes that depend on it.
    dependents: Vec<Vec<u32>>,
    edges: HashSet<(u32, u32)>,
    /// Dependents per node, counted on first ask and kept until the graph changes: the
    /// blast-radius guard asks on every L1, and a hub's walk is the costly part of it.
    downstream_counts: OnceLock<Vec<OnceLock<u32>>>,
}

impl Graph {
    fn find(&self, name: &str) -> Option<u32> {
        self.index.get(lower(name).as_ref()).copied()
    }

    fn node(&mut self, name: &str) -> u32 {
        if let Some(n) = self.find(name) {
            return n;
        }
        let n = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_ascii_lowercase(), n);
        self.depends_on.push(Vec::new());
        self.dependents.push(Vec::new());
        self.downstream_counts = OnceLock::new();
        n
    }

    /// Adds `from` depends on `to`; false when it was there already or is a self-loop.
    fn add_edge(&mut self, from: u32, to: u32) -> bool {
        if from == to || !self.edges.insert((from, to)) {
            return false;
        }
        self.depends_on[from as usize].push(to);
        self.dependents[to as usize].push(from);
        self.downstream_counts = OnceLock::new();
        true
    }

    /// Breadth-first from `start` (excluded), nearest first, names sorted within a depth.
    fn walk(&self, start: u32, downstream: bool) -> Vec<Related> {
        self.walk_nearest(start, downstream, usize::MAX)
    }

    /// The strongly connected components of more than one node (Tarjan, without recursion so
    /// that a long chain cannot overflow the stack).
    fn cycles(&self) -> Vec<Vec<u32>> {
        let n = self.names.len();
        let mut index = vec![u32::MAX; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut next_index = 0u32;
        let mut out = Vec::new();
        for root in 0..n {
            if index[root] != u32::MAX {
                continue;
            }
            // (node, position in its adjacency list)
            let mut work = vec![(root, 0usize)];
            while let Some(&mut (v, ref mut pos)) = work.last_mut() {
                if *pos == 0 && index[v] == u32::MAX {
                    index[v] = next_index;
                    low[v] = next_index;
                    next_index += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if let Some(&w) = self.depends_on[v].get(*pos) {
                    *pos += 1;
                    let w = w as usize;
                    if index[w] == u32::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w as u32);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        out.push(component);
                    }
                }
            }
        }
        out
    }

    /// The shortest cycle through `start` within `members`: `[start, .., last]`, `last`
    /// depending on `start`.
    fn cycle_through(&self, start: u32, members: &HashSet<u32>) -> Vec<u32> {
        let mut parent: HashMap<u32, u32> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            let mut next: Vec<u32> = self.depends_on[v as usize].clone();
            next.sort_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
            for w in next {
                if w == start {
                    let mut path = vec![v];
                    let mut at = v;
                    while let Some(&p) = parent.get(&at) {
                        path.push(p);
                        at = p;
                    }
                    path.reverse();
                    return path;
                }
                if members.contains(&w) && w != start && !parent.contains_key(&w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        vec![start]
    }
}

fn lower(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

impl Catalog {
    /// Reads every `*.yaml` and `*.yml` file under `paths` (files or folders, recursively,
    /// sorted, hidden folders skipped) and parses them. Fails only when a path cannot be read
    /// at all; everything wrong inside the files is a diagnostic.
    pub fn load(paths: &[PathBuf]) -> Result<(Catalog, Vec<Diagnostic>), String> {
        let hint = "point Sparky at a folder of Backstage `catalog-info.yaml` files, or at one such file";
        let mut found = Vec::new();
        for path in paths {
            let files = crate::compile::files_under(path, &is_yaml).map_err(|e| format!("{e}; {hint}"))?;
            found.extend(files);
        }
        // A file reachable twice is read once, under the first path it was found by.
        let mut seen = HashSet::new();
        found.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
        let mut sources = Vec::new();
        for f in found {
            let bytes = std::fs::read(&f).map_err(|e| {
                let reason = match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file or folder".to_string(),
                    std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                    _ => e.to_string().to_lowercase(),
                };
                format!("cannot read `{}`: {reason}; {hint}", f.display())
            })?;
            let name = f.display().to_string();
            sources.push(match String::from_utf8(bytes) {
                Ok(text) => SourceFile::new(name, text),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    SourceFile::new_invalid_utf8(name, String::from_utf8_lossy(e.as_bytes()).into_owned(), at)
                }
            });
        }
        Ok(build(&sources))
    }

    /// Parses files already read, as `(name, text)`.
    pub fn parse(files: &[(String, String)]) -> (Catalog, Vec<Diagnostic>) {
        let sources: Vec<Arc<SourceFile>> =
            files.iter().map(|(name, text)| SourceFile::new(name.clone(), text.clone())).collect();
        build(&sources)
    }

    /// No services.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The number of services (Components and Resources).
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// The number of files read.
    pub fn file_count(&self) -> usize {
        self.files
    }

    /// The number of entities read, of every kind.
    pub fn entity_count(&self) -> usize {
        self.entities
    }

    /// The number of dependency edges between services.
    pub fn dependency_count(&self) -> usize {
        self.graph.edges.len()
    }

    /// One line for people: `checked the catalog: 3 files, 14 entities (11 services, 12 dependencies)`.
    pub fn summary(&self) -> String {
        format!(
            "checked the catalog: {}, {} ({}, {})",
            plural(self.files, "file", "files"),
            plural(self.entities, "entity", "entities"),
            plural(self.services.len(), "service", "services"),
            plural(self.graph.edges.len(), "dependency", "dependencies")
        )
    }

    /// A Component or Resource by `metadata.name` or by one of its aliases (names first),
    /// ignoring ASCII case; `namespace/name` finds it in its namespace.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.service_index(name).map(|i| &self.services[i])
    }

    fn service_index(&self, name: &str) -> Option<usize> {
        let key = lower(name);
        let key = key.as_ref();
        self.names.get(key).or_else(|| self.aliases.get(key)).or_else(|| self.qualified.get(key)).copied()
    }

    /// Every service, in the order read.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter()
    }

    /// The graph node of a service or name, when it has one.
    fn node_of(&self, name: &str) -> Option<u32> {
        match self.service(name) {
            Some(s) => self.graph.find(&s.name),
            None => self.graph.find(name),
        }
    }

    /// Who breaks when `name` breaks: its dependents, transitively, nearest first.
    pub fn downstream(&self, name: &str) -> Vec<Related> {
        self.node_of(name).map(|n| self.graph.walk(n, true)).unwrap_or_default()
    }

    /// What `name` needs: its dependencies, transitively, nearest first.
    pub fn upstream(&self, name: &str) -> Vec<Related> {
        self.node_of(name).map(|n| self.graph.walk(n, false)).unwrap_or_default()
    }

    /// The owner of a service: its Group or User, or only the ref when the catalog lacks it.
    pub fn owner(&self, name: &str) -> Option<Owner> {
        let reference = self.service(name)?.owner.clone()?;
        Some(self.owner_by_ref(&reference))
    }

    fn owner_by_ref(&self, reference: &str) -> Owner {
        parse_ref(reference)
            .and_then(|r| {
                let kind = r.kind.unwrap_or_else(|| "group".into());
                self.owners.get(&(kind, r.name.to_ascii_lowercase())).cloned()
            })
            .map(|owner| Owner { reference: reference.to_string(), ..owner })
            .unwrap_or_else(|| Owner { reference: reference.to_string(), ..Owner::default() })
    }

    /// Who is on call for a service: its own `sparky.dev/oncall`, else its owner's.
    pub fn oncall(&self, name: &str) -> Option<String> {
        let service = self.service(name)?;
        service.oncall.clone().or_else(|| self.owner(name).and_then(|o| o.oncall))
    }

    /// Who reviews an L2 fix of a service: its on-call engineer on GitHub — the User the
    /// on-call names (its `github.com/user-login`), else the on-call text itself when it is a
    /// GitHub login (`@dana`, `dana`) — and, when no person can be named, the owning Group's
    /// GitHub team (`github.com/team-slug`).
    pub fn reviewers(&self, name: &str) -> Reviewers {
        let mut out = Reviewers::default();
        if let Some(oncall) = self.oncall(name) {
            let handle = oncall.trim().trim_start_matches('@');
            let user = self.owners.get(&("user".to_string(), handle.to_ascii_lowercase()));
            match user.and_then(|u| u.github.clone()) {
                Some(login) if is_github_login(&login) => out.users.push(login),
                _ if is_github_login(handle) => out.users.push(handle.to_string()),
                _ => {}
            }
        }
        if out.users.is_empty()
            && let Some(team) = self.owner(name).and_then(|o| o.github)
            && is_project_slug(&team)
        {
            out.teams.push(team);
        }
        out
    }

    /// Adds a service, or replaces the one with the same namespace and name (its
    /// dependencies stay).
    pub fn insert(&mut self, mut service: Service) {
        if service.namespace.is_empty() {
            service.namespace = "default".into();
        }
        let qualified = format!("{}/{}", service.namespace, service.name).to_ascii_lowercase();
        let i = match self.qualified.get(&qualified) {
            Some(&i) => {
                self.aliases.retain(|_, v| *v != i);
                self.tokens.retain(|t| !t.name.eq_ignore_ascii_case(&self.services[i].name));
                self.services[i] = service;
                i
            }
            None => {
                let i = self.services.len();
                self.names.entry(service.name.to_ascii_lowercase()).or_insert(i);
                self.qualified.insert(qualified, i);
                self.services.push(service);
                i
            }
        };
        let service = &self.services[i];
        for alias in &service.aliases {
            let key = alias.to_ascii_lowercase();
            if !self.names.contains_key(&key) {
                self.aliases.entry(key).or_insert(i);
            }
        }
        self.graph.node(&service.name);
        if service.kind == "Resource" && service.r#type.as_deref() == Some("api-token") {
            self.tokens.push(Token {
                name: service.name.clone(),
                owner: service.owner.clone(),
                expires_at: service.annotations.get("sparky.dev/expires-at").and_then(|t| parse_time(t)),
                file: service.file.clone(),
                line: service.line,
            });
        }
    }

    /// Adds `from` depends on `to`. Either may be a service, an alias or a bare name.
    pub fn add_dependency(&mut self, from: &str, to: &str) {
        let from = self.node_for(from);
        let to = self.node_for(to);
        self.graph.add_edge(from, to);
    }

    fn node_for(&mut self, name: &str) -> u32 {
        match self.service_index(name) {
            Some(i) => {
                let name = self.services[i].name.clone();
                self.graph.node(&name)
            }
            None => self.graph.node(name),
        }
    }

    /// The API tokens of the catalog: Resources of type `api-token`.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

impl Service {
    /// The map `kg::service(name)` returns.
    pub fn to_map(&self) -> rhai::Map {
        use rhai::Dynamic;
        let text = |o: &Option<String>| Dynamic::from(o.clone().unwrap_or_default());
        let mut m = rhai::Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("known".into(), true.into());
        m.insert("stateless".into(), self.stateless.unwrap_or(false).into());
        m.insert("tier".into(), text(&self.tier));
        m.insert("owner".into(), text(&self.owner));
        m.insert("system".into(), text(&self.system));
        m.insert("lifecycle".into(), text(&self.lifecycle));
        m.insert("type".into(), text(&self.r#type));
        m.insert("oncall".into(), text(&self.oncall));
        m.insert("runbook".into(), text(&self.runbook));
        m.insert("replicas".into(), self.replicas.map(|n| Dynamic::from(n as rhai::INT)).unwrap_or(Dynamic::UNIT));
        m.insert("repo".into(), text(&self.repo));
        m.insert("jira_project".into(), text(&self.jira_project));
        m.insert("pagerduty_service_id".into(), text(&self.pagerduty_service_id));
        let tags: rhai::Array = self.tags.iter().map(|t| Dynamic::from(t.clone())).collect();
        m.insert("tags".into(), tags.into());
        let links: rhai::Array = self
            .links
            .iter()
            .map(|l| {
                let mut link = rhai::Map::new();
                link.insert("title".into(), l.title.clone().into());
                link.insert("url".into(), l.url.clone().into());
                Dynamic::from_map(link)
            })
            .collect();
        m.insert("links".into(), links.into());
        let annotations: rhai::Map =
            self.annotations.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect();
        m.insert("annotations".into(), Dynamic::from_map(annotations));
        m
    }
}

impl Owner {
    /// The map `kg::owner(name)` returns: every key a string, `""` when unknown.
    pub fn to_map(&self) -> rhai::Map {
        let text = |o: &Option<String>| rhai::Dynamic::from(o.clone().unwrap_or_default());
        let mut m = rhai::Map::new();
        m.insert("reference".into(), self.reference.clone().into());
        m.insert("kind".into(), self.kind.clone().into());
        m.insert("name".into(), self.name.clone().into());
        m.insert("display_name".into(), text(&self.display_name));
        m.insert("email".into(), text(&self.email));
        m.insert("slack".into(), text(&self.slack));
        m.insert("oncall".into(), text(&self.oncall));
        m
    }
}

/// An entity ref, `[kind:][namespace/]name`, with the kind in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntityRef {
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
}

/// Parses an entity ref; `None` when it is not one (empty parts, spaces, extra separators).
fn parse_ref(text: &str) -> Option<EntityRef> {
    let text = text.trim();
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (Some(kind), rest),
        None => (None, text),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((namespace, name)) => (Some(namespace), name),
        None => (None, rest),
    };
    let valid = |s: &str| !s.is_empty() && !s.contains([':', '/']) && !s.chars().any(char::is_whitespace);
    if !valid(name) || !kind.is_none_or(valid) || !namespace.is_none_or(valid) {
        return None;
    }
    Some(EntityRef {
        kind: kind.map(str::to_ascii_lowercase),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
    })
}

/// An RFC 3339 time, or a date (midnight UTC).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Backstage's rule for names: 1 to 63 of `[A-Za-z0-9-_.]`, starting and ending alphanumeric.
fn is_valid_name(name: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (1..=63).contains(&name.len())
        && name.chars().all(ok_char)
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// How a value is described in a message: `a number`, `a list`.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A scalar as text (for annotation values written without quotes).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The byte ranges of the documents of a YAML stream. The stream is split at `---` and `...`
/// lines (YAML forbids them inside content), so a broken document costs only itself.
fn documents(text: &str) -> Vec<(usize, usize)> {
    let is_marker =
        |line: &str, m: &str| line.strip_prefix(m).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']));
    let mut out = Vec::new();
    let mut start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut offset = start;
    for line in text[start..].split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if is_marker(bare, "---") {
            if offset > start {
                out.push((start, offset));
            }
            start = offset;
        } else if is_marker(bare, "...") {
            if offset > start {
                out.push((start, offset));
            }
            start = offset + line.len();
        }
        offset += line.len();
    }
    if text.len() > start {
        out.push((start, text.len()));
    }
    out
}

/// A line of a document: its absolute byte range, without the line break.
#[derive(Debug, Clone, Copy)]
struct Line {
    start: usize,
    end: usize,
}

/// Where a block-mapping key is written: its line, indentation (of the key itself, after any
/// `- `) and span.
#[derive(Debug, Clone, Copy)]
struct KeyAt {
    line: usize,
    indent: usize,
    span: Span,
}

/// One YAML document of a file, for pointing at where its keys and values are written. The
/// keys written in block style are indexed by path in one pass, so finding one costs nothing
/// however large the document.
struct Doc {
    file: Arc<SourceFile>,
    lines: Vec<Line>,
    /// Path (keys joined with NUL; `-` for a list item) → the first key written there.
    keys: HashMap<String, KeyAt>,
}

impl Doc {
    fn new(file: &Arc<SourceFile>, start: usize, end: usize) -> Doc {
        let mut lines = Vec::new();
        let mut at = start;
        for piece in file.text[start..end].split_inclusive('\n') {
            let bare = piece.trim_end_matches(['\n', '\r']);
            lines.push(Line { start: at, end: at + bare.len() });
            at += piece.len();
        }
        let mut doc = Doc { file: file.clone(), lines, keys: HashMap::new() };
        doc.index_keys();
        doc
    }

    fn index_keys(&mut self) {
        let mut stack: Vec<(usize, String)> = Vec::new();
        let mut keys = HashMap::new();
        for i in 0..self.lines.len() {
            if self.is_filler(i) {
                continue;
            }
            let text = self.text(i);
            let mut indent = self.indent(i);
            let mut content = &text[indent..];
            while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
                stack.pop();
            }
            while content == "-" || content.starts_with("- ") {
                stack.push((indent, "-".into()));
                let skip = 1 + (content.len() - 1 - content[1..].trim_start_matches(' ').len());
                indent += skip;
                content = &content[skip..];
            }
            // Deeper than any entity Sparky reads (the text of a block scalar can look nested
            // without end): not worth indexing.
            if stack.len() >= MAX_KEY_DEPTH {
                continue;
            }
            if let Some((key, len)) = leading_key(content) {
                let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).chain([key]).collect();
                let start = self.lines[i].start + indent;
                keys.entry(path.join("\0")).or_insert(KeyAt { line: i, indent, span: Span::new(start, start + len) });
                stack.push((indent, key.to_string()));
            }
        }
        self.keys = keys;
    }

    fn text(&self, i: usize) -> &str {
        &self.file.text[self.lines[i].start..self.lines[i].end]
    }

    /// Whether a line holds nothing for the entity: blank, a comment, a directive, a marker.
    fn is_filler(&self, i: usize) -> bool {
        let t = self.text(i).trim();
        t.is_empty()
            || t.starts_with('#')
            || t.starts_with('%')
            || t == "---"
            || (t.starts_with("---") && t[3..].trim_start().starts_with('#'))
    }

    /// Whether the document holds nothing but comments, directives and markers.
    fn is_blank(&self) -> bool {
        (0..self.lines.len()).all(|i| self.is_filler(i))
    }

    /// The first line with content, trimmed: where the entity starts.
    fn start(&self) -> Span {
        match (0..self.lines.len()).find(|&i| !self.is_filler(i)) {
            Some(i) => {
                let text = self.text(i);
                let lead = text.len() - text.trim_start().len();
                let line = self.lines[i];
                Span::new(line.start + lead, line.start + text.trim_end().len())
            }
            None => self.lines.first().map(|l| Span::new(l.start, l.end)).unwrap_or_default(),
        }
    }

    /// The 1-based line where the entity starts.
    fn start_line(&self) -> usize {
        self.file.line_col(self.start().start).0
    }

    fn indent(&self, i: usize) -> usize {
        let t = self.text(i);
        t.len() - t.trim_start_matches(' ').len()
    }

    /// The index after the last line of the block of the key at line `at`, written at
    /// indentation `indent`. A list may sit at the key's own indentation.
    fn block_end(&self, at: usize, indent: usize) -> usize {
        for i in at + 1..self.lines.len() {
            if self.is_filler(i) {
                continue;
            }
            let ind = self.indent(i);
            let rest = &self.text(i)[ind..];
            let item = rest == "-" || rest.starts_with("- ");
            if ind < indent || (ind == indent && !item) {
                return i;
            }
        }
        self.lines.len()
    }

    fn find_key(&self, path: &[&str]) -> Option<KeyAt> {
        self.keys.get(&path.join("\0")).copied()
    }

    /// The span of the key at `path`, or of the nearest ancestor written in block style, or
    /// of the entity's start.
    fn key(&self, path: &[&str]) -> Span {
        (1..=path.len()).rev().find_map(|n| self.find_key(&path[..n]).map(|k| k.span)).unwrap_or_else(|| self.start())
    }

    /// The text after the key at `at` on its line, then its block's lines: `(offset, text)`.
    fn block_text(&self, at: KeyAt) -> impl Iterator<Item = (usize, &str)> {
        let end = self.block_end(at.line, at.indent);
        (at.line..end).map(move |i| {
            let from = if i == at.line { at.span.end - self.lines[i].start } else { 0 };
            (self.lines[i].start + from, &self.text(i)[from..])
        })
    }

    /// The span of `value` written after the key at `path` (on its line or in its block), or
    /// of the key when the value is not found as written.
    fn value(&self, path: &[&str], value: &str) -> Span {
        let Some(at) = self.find_key(path) else { return self.key(path) };
        if value.is_empty() {
            return at.span;
        }
        for (offset, text) in self.block_text(at) {
            let mut search = 0;
            while let Some(pos) = text.get(search..).and_then(|t| t.find(value)) {
                let found = search + pos;
                let before = text[..found].chars().next_back();
                let after = text[found + value.len()..].chars().next();
                if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
                    return Span::new(offset + found, offset + found + value.len());
                }
                search = found + value.len();
            }
        }
        at.span
    }

    /// The spans of the items of a list under the key at `path`, in order, in one pass over
    /// its block (a list of thousands of items costs no more than reading it).
    fn values(&self, path: &[&str], items: &[&str]) -> Vec<Span> {
        let Some(at) = self.find_key(path) else { return vec![self.key(path); items.len()] };
        let mut words: HashMap<&str, Vec<usize>> = HashMap::new();
        for (offset, text) in self.block_text(at) {
            let mut start = None;
            for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
                match (start, is_word(c)) {
                    (None, true) => start = Some(i),
                    (Some(s), false) => {
                        words.entry(&text[s..i]).or_default().push(offset + s);
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        let mut cursor = 0;
        items
            .iter()
            .map(|item| match words.get(item) {
                Some(places) => {
                    let after = places.partition_point(|p| *p < cursor);
                    let place = places.get(after).unwrap_or(&places[0]);
                    cursor = place + item.len();
                    Span::new(*place, place + item.len())
                }
                None => at.span,
            })
            .collect()
    }
}

/// Characters of names and refs: a value is found only as a whole word of these.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || "-_.:/@".contains(c)
}

/// The key a block-mapping line starts with, and its length as written (with quotes).
fn leading_key(content: &str) -> Option<(&str, usize)> {
    let (key, written) = match content.chars().next()? {
        quote @ ('"' | '\'') => {
            let close = content[1..].find(quote)? + 1;
            (&content[1..close], close + 1)
        }
        '{' | '[' | '#' | '&' | '*' | '!' | '|' | '>' | '?' => return None,
        _ => {
            let colon = content.match_indices(':').map(|(i, _)| i).find(|&i| {
                let after = &content[i + 1..];
                after.is_empty() || after.starts_with([' ', '\t'])
            })?;
            let key = content[..colon].trim_end();
            (key, key.len())
        }
    };
    let rest = content[written..].trim_start_matches(' ');
    let after = rest.strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some((key, written))
}

/// A reference an entity makes to another, with where it is written.
#[derive(Debug)]
struct RefUse {
    /// `dependsOn`, `owner`, ...
    field: &'static str,
    text: String,
    span: Span,
}

/// An entity as read from one document.
struct Entity {
    kind: Kind,
    namespace: String,
    name: String,
    file: Arc<SourceFile>,
    /// The span of `metadata.name`'s value.
    name_span: Span,
    refs: Vec<RefUse>,
    /// For a Component or Resource.
    service: Option<Service>,
    /// For a Group or User.
    owner: Option<Owner>,
    /// Alias → where it is written, for a Component or Resource.
    alias_spans: Vec<(String, Span)>,
}

impl Entity {
    /// The entity as a ref: `component:checkout-api`, `api:shop/orders`.
    fn display_ref(&self) -> String {
        if self.namespace.eq_ignore_ascii_case("default") {
            format!("{}:{}", self.kind.ref_prefix(), self.name)
        } else {
            format!("{}:{}/{}", self.kind.ref_prefix(), self.namespace, self.name)
        }
    }
}

/// Reads one document into an entity, reporting every problem found in it.
struct Reader<'a> {
    doc: Doc,
    diags: &'a mut Vec<Diagnostic>,
}

impl Reader<'_> {
    fn error(&mut self, code: Code, message: String, span: Span, label: &str, help: String) {
        self.diags.push(Diagnostic::new(code, message).at(&self.doc.file, span, label).with_help(help));
    }

    /// `path.key` must be a string when present.
    fn string(&mut self, map: &Mapping, path: &[&str], key: &str) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                let full: Vec<&str> = path.iter().copied().chain([key]).collect();
                let span = self.doc.key(&full);
                let got = describe(other);
                let help = match scalar_text(other) {
                    Some(t) => format!("quote it, `{key}: \"{t}\"`: without quotes YAML reads {got}"),
                    None => format!("write `{key}:` followed by one value, as text"),
                };
                self.error(
                    Code::InvalidEntity,
                    format!("`{}` must be a string, not {got}", full.join(".")),
                    span,
                    got,
                    help,
                );
                scalar_text(other)
            }
        }
    }

    /// `path.key` must be a list of strings when present: each with its span.
    fn strings(&mut self, map: &Mapping, path: &[&str], key: &str, example: &str) -> Vec<(String, Span)> {
        let full: Vec<&str> = path.iter().copied().chain([key]).collect();
        let items = match map.get(key) {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                let got = describe(other);
                let span = self.doc.key(&full);
                self.error(
                    Code::InvalidEntity,
                    format!("`{}` must be a list, not {got}", full.join(".")),
                    span,
                    got,
                    format!("write a YAML list, even of one item: `{key}: [{example}]`"),
                );
                return Vec::new();
            }
        };
        let mut texts = Vec::new();
        for item in items {
            match item {
                Value::String(s) => texts.push(s.as_str()),
                other => {
                    let got = describe(other);
                    let span = self.doc.key(&full);
                    self.error(
                        Code::InvalidEntity,
                        format!("the items of `{}` must be strings, not {got}", full.join(".")),
                        span,
                        &format!("holds {got}"),
                        format!("write each item as text, e.g. `{example}`"),
                    );
                }
            }
        }
        let spans = self.doc.values(&full, &texts);
        texts.into_iter().map(String::from).zip(spans).collect()
    }

    /// The mapping at `path.key`, when present and a mapping.
    fn mapping<'v>(&mut self, map: &'v Mapping, path: &[&str], key: &str) -> Option<&'v Mapping> {
        match map.get(key)? {
            Value::Mapping(m) => Some(m),
            Value::Null => None,
            other => {
                let full: Vec<&str> = path.iter().copied().chain([key]).collect();
                let got = describe(other);
                let span = self.doc.key(&full);
                self.error(
                    Code::InvalidEntity,
                    format!("`{}` must be a mapping, not {got}", full.join(".")),
                    span,
                    got,
                    format!("write `{key}:` followed by indented `key: value` lines"),
                );
                None
            }
        }
    }

    fn missing(&mut self, what: &str) {
        let span = self.doc.start();
        self.error(
            Code::InvalidEntity,
            format!("the entity has no `{what}`"),
            span,
            &format!("this entity has no `{what}`"),
            ENTITY_SHAPE.into(),
        );
    }

    fn read(&mut self, value: &Value) -> Option<Entity> {
        let root = match value {
            Value::Mapping(m) => m,
            other => {
                let got = describe(other);
                let span = self.doc.start();
                self.error(
                    Code::InvalidEntity,
                    format!("a catalog document must be an entity (a mapping), not {got}"),
                    span,
                    &format!("this document is {got}"),
                    format!("each document between `---` lines holds one entity; {ENTITY_SHAPE}"),
                );
                return None;
            }
        };
        let api_version = self.string(root, &[], "apiVersion");
        let kind_text = self.string(root, &[], "kind");
        // A Kubernetes manifest or some other YAML: say so once, not field by field.
        if let Some(v) = &api_version
            && !v.contains("backstage.io/")
        {
            let span = self.doc.value(&["apiVersion"], v);
            self.error(
                Code::InvalidEntity,
                format!("`{v}` is not a Backstage catalog `apiVersion`"),
                span,
                "not `backstage.io/...`",
                "catalog entities have `apiVersion: backstage.io/v1alpha1`; keep other YAML (Kubernetes manifests, configuration) out of the catalog folders".into(),
            );
            return None;
        }
        if api_version.is_none() {
            self.missing("apiVersion");
        }
        let kind = match kind_text {
            None => {
                self.missing("kind");
                None
            }
            Some(k) if IGNORED_KINDS.iter().any(|i| i.eq_ignore_ascii_case(&k)) => return None,
            Some(k) => match Kind::parse(&k) {
                Some(kind) => Some(kind),
                None => {
                    let span = self.doc.value(&["kind"], &k);
                    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                    let d = Diagnostic::new(Code::InvalidEntity, format!("unknown entity kind `{k}`"))
                        .at(&self.doc.file, span, "not a kind Sparky reads")
                        .with_help(
                            "the kinds are Component, Resource, System, Group, User and API (Backstage's Domain, Location and Template are read past)",
                        )
                        .suggest(&k, names);
                    self.diags.push(d);
                    None
                }
            },
        };
        let empty = Mapping::new();
        let metadata = self.mapping(root, &[], "metadata").unwrap_or(&empty);
        // Without a name the entity cannot be used, but its other problems are still worth
        // reporting in the same run.
        let name = self.string(metadata, &["metadata"], "name");
        if name.is_none() {
            self.missing("metadata.name");
        }
        let name_span = match &name {
            Some(name) => self.doc.value(&["metadata", "name"], name),
            None => self.doc.start(),
        };
        if let Some(name) = name.as_ref().filter(|n| !is_valid_name(n)) {
            self.error(
                Code::InvalidEntity,
                format!("`{name}` is not a valid entity name"),
                name_span,
                "not a valid name",
                "names are 1 to 63 letters, digits, `-`, `_` or `.`, starting and ending with a letter or digit".into(),
            );
        }
        let namespace = self.string(metadata, &["metadata"], "namespace").unwrap_or_else(|| "default".into());
        let title = self.string(metadata, &["metadata"], "title");
        let description = self.string(metadata, &["metadata"], "description");
        let tags: Vec<String> =
            self.strings(metadata, &["metadata"], "tags", "java").into_iter().map(|(t, _)| t).collect();
        let links = self.links(metadata);
        let annotations = self.annotations(metadata);
        let (Some(kind), Some(name)) = (kind, name) else { return None };
        let spec = self.mapping(root, &[], "spec").unwrap_or(&empty);

        let mut refs = Vec::new();
        let mut single = |reader: &mut Self, field: &'static str| -> Option<String> {
            let text = reader.string(spec, &["spec"], field)?;
            let span = reader.doc.value(&["spec", field], &text);
            refs.push(RefUse { field, text: text.clone(), span });
            Some(text)
        };
        let owner_ref = single(self, "owner");
        let system = if kind == Kind::Group || kind == Kind::User { None } else { single(self, "system") };
        let spec_type = self.string(spec, &["spec"], "type");
        let lifecycle = self.string(spec, &["spec"], "lifecycle");
        if kind.is_service() {
            for (field, example) in [
                ("dependsOn", "component:payments-api"),
                ("dependencyOf", "component:checkout-api"),
                ("providesApis", "api:orders"),
                ("consumesApis", "api:orders"),
            ] {
                for (text, span) in self.strings(spec, &["spec"], field, example) {
                    refs.push(RefUse { field, text, span });
                }
            }
        }
        for r in &refs {
            if parse_ref(&r.text).is_none() {
                let d = Diagnostic::new(Code::InvalidEntity, format!("`{}` is not an entity ref", r.text))
                    .at(&self.doc.file, r.span, "not `[kind:][namespace/]name`")
                    .with_help("write refs as `[kind:][namespace/]name`, e.g. `component:payments-api` or `group:team-checkout`");
                self.diags.push(d);
            }
        }
        refs.retain(|r| parse_ref(&r.text).is_some());

        let text = |key: &str| annotations.get(key).map(|(v, _)| v.clone());
        let line = self.doc.start_line();
        let file_name = self.doc.file.name.clone();
        let mut entity = Entity {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            file: self.doc.file.clone(),
            name_span,
            refs,
            service: None,
            owner: None,
            alias_spans: Vec::new(),
        };
        match kind {
            Kind::Component | Kind::Resource => {
                let mut aliases: Vec<(String, Span)> = Vec::new();
                let mut add_alias = |alias: &str, span: Span| {
                    let alias = alias.trim();
                    if !alias.is_empty()
                        && !alias.eq_ignore_ascii_case(&name)
                        && !aliases.iter().any(|(a, _)| a.eq_ignore_ascii_case(alias))
                    {
                        aliases.push((alias.to_string(), span));
                    }
                };
                if let Some((id, _)) = annotations.get("backstage.io/kubernetes-id") {
                    let span = self.doc.value(&["metadata", "annotations", "backstage.io/kubernetes-id"], id);
                    add_alias(id, span);
                }
                if let Some((list, _)) = annotations.get("sparky.dev/aliases") {
                    let items: Vec<&str> = list.split(',').map(str::trim).collect();
                    let spans = self.doc.values(&["metadata", "annotations", "sparky.dev/aliases"], &items);
                    for (alias, span) in items.into_iter().zip(spans) {
                        add_alias(alias, span);
                    }
                }
                let service = Service {
                    name: name.clone(),
                    kind: kind.as_str().into(),
                    namespace,
                    title,
                    description,
                    owner: owner_ref,
                    system,
                    lifecycle,
                    r#type: spec_type,
                    stateless: text("sparky.dev/stateless").and_then(|v| match v.as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    }),
                    tier: text("sparky.dev/tier"),
                    oncall: text("sparky.dev/oncall"),
                    runbook: text("sparky.dev/runbook"),
                    replicas: text("sparky.dev/replicas").and_then(|v| v.trim().parse().ok()),
                    repo: text("github.com/project-slug").filter(|v| is_project_slug(v)),
                    pagerduty_integration_key: text("pagerduty.com/integration-key"),
                    pagerduty_service_id: text("pagerduty.com/service-id"),
                    jira_project: text("jira/project-key"),
                    test_command: text("sparky.dev/test-command"),
                    aliases: aliases.iter().map(|(a, _)| a.clone()).collect(),
                    tags,
                    links,
                    annotations: annotations
                        .into_iter()
                        .filter(|(k, _)| !SECRET_ANNOTATIONS.contains(&k.as_str()))
                        .map(|(k, (v, _))| (k, v))
                        .collect(),
                    file: file_name,
                    line,
                };
                entity.alias_spans = aliases;
                entity.service = Some(service);
            }
            Kind::Group | Kind::User => {
                let profile = self.mapping(spec, &["spec"], "profile");
                let (display_name, email) = match profile {
                    Some(p) => (
                        self.string(p, &["spec", "profile"], "displayName"),
                        self.string(p, &["spec", "profile"], "email"),
                    ),
                    None => (None, None),
                };
                entity.owner = Some(Owner {
                    reference: entity.display_ref(),
                    kind: kind.as_str().into(),
                    name: name.clone(),
                    display_name,
                    email,
                    slack: text("sparky.dev/slack-channel"),
                    oncall: text("sparky.dev/oncall"),
                    github: match kind {
                        Kind::User => text("github.com/user-login"),
                        _ => text("github.com/team-slug"),
                    },
                });
            }
            Kind::System | Kind::Api => {}
        }
        Some(entity)
    }

    fn links(&mut self, metadata: &Mapping) -> Vec<Link> {
        let items = match metadata.get("links") {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                let got = describe(other);
                let span = self.doc.key(&["metadata", "links"]);
                self.error(
                    Code::InvalidEntity,
                    format!("`metadata.links` must be a list, not {got}"),
                    span,
                    got,
                    "write a list of links: `- url: https://...` with an optional `title:`".into(),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for item in items {
            let url = match item {
                Value::Mapping(m) => m.get("url").and_then(Value::as_str).map(|url| {
                    let title = m.get("title").and_then(Value::as_str).unwrap_or(url);
                    Link { title: title.to_string(), url: url.to_string() }
                }),
                _ => None,
            };
            match url {
                Some(link) => out.push(link),
                None => {
                    let span = self.doc.key(&["metadata", "links"]);
                    self.error(
                        Code::InvalidEntity,
                        "a link of `metadata.links` has no `url`".into(),
                        span,
                        "a link without a `url`",
                        "write each link as `- url: https://...` with an optional `title:`".into(),
                    );
                }
            }
        }
        out
    }

    /// `metadata.annotations`, every value as text with the span of its key; problems
    /// reported.
    fn annotations(&mut self, metadata: &Mapping) -> BTreeMap<String, (String, Span)> {
        let mut out = BTreeMap::new();
        let Some(map) = self.mapping(metadata, &["metadata"], "annotations") else { return out };
        for (key, value) in map {
            let Some(key) = key.as_str() else {
                let span = self.doc.key(&["metadata", "annotations"]);
                self.error(
                    Code::InvalidEntity,
                    format!("an annotation key must be a string, not {}", describe(key)),
                    span,
                    "in these annotations",
                    "annotation keys are text, such as `sparky.dev/tier`".into(),
                );
                continue;
            };
            let path = ["metadata", "annotations", key];
            let key_span = self.doc.key(&path);
            let text = match value {
                Value::String(s) => s.clone(),
                other => {
                    let got = describe(other);
                    let help = match scalar_text(other) {
                        Some(t) => format!(
                            "Backstage annotations are text: write `{key}: \"{t}\"`; without quotes YAML reads {got}"
                        ),
                        None => format!("Backstage annotations are text: write `{key}: \"...\"`"),
                    };
                    self.error(
                        Code::InvalidEntity,
                        format!("the annotation `{key}` must be a string, not {got}"),
                        key_span,
                        got,
                        help,
                    );
                    match scalar_text(other) {
                        Some(t) => t,
                        None => continue,
                    }
                }
            };
            self.check_annotation(key, &text, key_span);
            out.insert(key.to_string(), (text, key_span));
        }
        out
    }

    fn check_annotation(&mut self, key: &str, value: &str, key_span: Span) {
        let path = ["metadata", "annotations", key];
        let problem = match key {
            "sparky.dev/stateless" if value != "true" && value != "false" => Some((
                "`\"true\"` or `\"false\"`",
                "not true or false",
                "write `\"true\"` when any instance may be restarted or scaled without losing data, `\"false\"` otherwise; Sparky restarts and scales only services marked stateless",
            )),
            "sparky.dev/replicas" if value.trim().parse::<u32>().is_err() => Some((
                "a whole number",
                "not a whole number",
                "write how many instances run, e.g. `\"3\"`; blast radius and capacity headroom are measured against it",
            )),
            "sparky.dev/max-replicas" if value.trim().parse::<u32>().is_err() => Some((
                "a whole number",
                "not a whole number",
                "write the most instances the service may run, e.g. `\"12\"`; proposals to add replicas stay within it",
            )),
            "sparky.dev/expires-at" if parse_time(value).is_none() => Some((
                "a date",
                "not a date",
                "write an RFC 3339 time (`2026-06-30T00:00:00Z`) or a date (`2026-06-30`)",
            )),
            "github.com/project-slug" if !is_project_slug(value) => Some((
                "`owner/repo`",
                "not `owner/repo`",
                "write the repository as `owner/repo`, e.g. `acme/checkout-api`; L2 fixes open their pull requests there",
            )),
            _ => None,
        };
        if let Some((expected, label, help)) = problem {
            let span = self.doc.value(&path, value);
            self.error(
                Code::InvalidAnnotation,
                format!("`{key}` must be {expected}, not `{value}`"),
                span,
                label,
                help.into(),
            );
        }
        if key.starts_with("sparky.dev/") && !SPARKY_ANNOTATIONS.contains(&key) {
            let d = Diagnostic::new(Code::UnknownAnnotation, format!("unknown annotation `{key}`"))
                .at(&self.doc.file, key_span, "Sparky does not read this annotation")
                .with_help(format!(
                    "Sparky reads these `sparky.dev/` annotations: {}; see docs/catalog.md",
                    crate::diagnostics::quoted_list(SPARKY_ANNOTATIONS.iter().map(|a| &a["sparky.dev/".len()..]))
                ))
                .suggest(key, SPARKY_ANNOTATIONS.iter().copied());
            self.diags.push(d);
        }
    }
}

/// `owner/name` as GitHub spells repositories and `org/team` slugs: two parts of letters,
/// digits, `-`, `_` and `.` (not `.` or `..` alone). The one check of a repository that
/// Sparky opens pull requests in, from the catalog or from a deploy.
pub fn is_project_slug(value: &str) -> bool {
    match value.split_once('/') {
        Some((owner, repo)) => {
            let part = |s: &str| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.len() <= 100
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            };
            part(owner) && part(repo)
        }
        None => false,
    }
}

/// Parses the documents of every file and builds the catalog.
fn build(sources: &[Arc<SourceFile>]) -> (Catalog, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut entities = Vec::new();
    for file in sources {
        if let Some(at) = file.invalid_utf8_at {
            diags.push(
                Diagnostic::new(Code::InvalidUtf8, "this file is not valid UTF-8 text")
                    .at(file, Span::new(at, at + 1), "the first invalid byte is here")
                    .with_help("save the file as UTF-8; catalog files are YAML text"),
            );
            continue;
        }
        for (start, end) in documents(&file.text) {
            let doc = Doc::new(file, start, end);
            if doc.is_blank() {
                continue;
            }
            let mut value: Value = match serde_yaml::from_str(&file.text[start..end]) {
                Ok(v) => v,
                Err(e) => {
                    diags.push(syntax_error(file, start, &e));
                    continue;
                }
            };
            if value.apply_merge().is_err() || value.is_null() {
                continue;
            }
            if let Some(entity) = (Reader { doc, diags: &mut diags }).read(&value) {
                entities.push(entity);
            }
        }
    }

    // Duplicates: the first definition wins. A Component and a Resource of the same name are
    // one too: both are services, and events find services by name.
    let mut first: HashMap<(String, String, &'static str), usize> = HashMap::new();
    let mut kept = Vec::new();
    for entity in entities {
        let kind = if entity.kind.is_service() { "service" } else { entity.kind.as_str() };
        let key = (entity.namespace.to_ascii_lowercase(), entity.name.to_ascii_lowercase(), kind);
        match first.get(&key) {
            None => {
                first.insert(key, kept.len());
                kept.push(entity);
            }
            Some(&i) => diags.push(duplicate(&kept[i], &entity)),
        }
    }
    let entities = kept;

    let mut catalog = Catalog { files: sources.len(), entities: entities.len(), ..Catalog::default() };
    // Services in the order read; index of each service entity's service.
    let mut service_of: HashMap<usize, usize> = HashMap::new();
    for (i, entity) in entities.iter().enumerate() {
        if let Some(service) = &entity.service {
            service_of.insert(i, catalog.services.len());
            catalog.insert(service.clone());
        }
        if let Some(owner) = &entity.owner {
            let key = (entity.kind.ref_prefix(), entity.name.to_ascii_lowercase());
            catalog.owners.entry(key).or_insert_with(|| owner.clone());
        }
    }
    check_aliases(&catalog, &entities, &service_of, &mut diags);

    // Systems and APIs by lowercase `namespace/name`; providers of each API.
    let qualified = |e: &Entity| format!("{}/{}", e.namespace, e.name).to_ascii_lowercase();
    let systems: HashSet<String> = entities.iter().filter(|e| e.kind == Kind::System).map(qualified).collect();
    let apis: HashSet<String> = entities.iter().filter(|e| e.kind == Kind::Api).map(qualified).collect();
    let mut origins: HashMap<(u32, u32), (Arc<SourceFile>, Span)> = HashMap::new();
    let mut providers: HashMap<String, Vec<usize>> = HashMap::new();
    let mut consumers: Vec<(usize, &Entity, String, &RefUse)> = Vec::new();
    let resolver = Resolver { catalog: &catalog, systems: &systems, apis: &apis };
    let mut edges: Vec<(usize, usize, &Entity, &RefUse)> = Vec::new();
    for (i, entity) in entities.iter().enumerate() {
        for r in &entity.refs {
            match resolver.resolve(entity, r) {
                Resolved::Service(target) => {
                    let me = service_of[&i];
                    let (from, to) = if r.field == "dependencyOf" { (target, me) } else { (me, target) };
                    edges.push((from, to, entity, r));
                }
                Resolved::Api(key) => {
                    if let Some(&me) = service_of.get(&i) {
                        if r.field == "providesApis" {
                            providers.entry(key).or_default().push(me);
                        } else {
                            consumers.push((me, entity, key, r));
                        }
                    }
                }
                Resolved::Found => {}
                Resolved::Missing(d) => diags.push(d),
            }
        }
    }
    for (consumer, entity, key, r) in consumers {
        for &provider in providers.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
            // A service using its own API is no dependency.
            if provider != consumer {
                edges.push((consumer, provider, entity, r));
            }
        }
    }
    for (from, to, entity, r) in edges {
        if from == to {
            let name = &catalog.services[from].name;
            diags.push(
                Diagnostic::new(Code::DependencyCycle, format!("`{name}` depends on itself"))
                    .at(&entity.file, r.span, "a dependency on itself")
                    .with_help("remove this ref: a service cannot need itself to run"),
            );
            continue;
        }
        let a = catalog.graph.node(&catalog.services[from].name.clone());
        let b = catalog.graph.node(&catalog.services[to].name.clone());
        if catalog.graph.add_edge(a, b) {
            origins.insert((a, b), (entity.file.clone(), r.span));
        }
    }
    report_cycles(&catalog.graph, &origins, &mut diags);
    crate::diagnostics::sort(&mut diags);
    (catalog, diags)
}

/// What a ref names.
enum Resolved {
    /// A service, by index.
    Service(usize),
    /// An API of the catalog, by lowercase `namespace/name`.
    Api(String),
    /// An entity of the catalog Sparky only needs to know exists.
    Found,
    Missing(Diagnostic),
}

struct Resolver<'a> {
    catalog: &'a Catalog,
    systems: &'a HashSet<String>,
    apis: &'a HashSet<String>,
}

impl Resolver<'_> {
    fn resolve(&self, entity: &Entity, r: &RefUse) -> Resolved {
        let parsed = parse_ref(&r.text).expect("refs that do not parse were left out");
        let default_kind = match r.field {
            "owner" => "group",
            "system" => "system",
            "providesApis" | "consumesApis" => "api",
            _ => "component",
        };
        let kind = parsed.kind.clone().unwrap_or_else(|| default_kind.into());
        let namespace = parsed.namespace.clone().unwrap_or_else(|| entity.namespace.clone());
        let qualified = format!("{namespace}/{}", parsed.name).to_ascii_lowercase();
        let find_in = |set: &HashSet<String>| {
            set.contains(&qualified)
                || (parsed.namespace.is_none()
                    && set.contains(&format!("default/{}", parsed.name).to_ascii_lowercase()))
        };
        match (r.field, kind.as_str()) {
            ("dependsOn" | "dependencyOf", "component" | "resource") => {
                let by_namespace = self.catalog.qualified.get(&qualified);
                let by_name = || {
                    if parsed.namespace.is_none() {
                        self.catalog.names.get(&parsed.name.to_ascii_lowercase())
                    } else {
                        None
                    }
                };
                match by_namespace.or_else(by_name) {
                    Some(&i) => Resolved::Service(i),
                    None => Resolved::Missing(self.missing(entity, r, &parsed.name, self.service_names())),
                }
            }
            ("dependsOn" | "dependencyOf", _) => Resolved::Missing(
                Diagnostic::new(
                    Code::UnresolvedEntityRef,
                    format!("{}`{}`, which is not a component or resource", relation(entity, r.field), r.text),
                )
                .at(&entity.file, r.span, "not a component or resource")
                .with_help("dependencies are followed between components and resources only; this ref is ignored"),
            ),
            ("providesApis" | "consumesApis", "api") if find_in(self.apis) => {
                let key = if self.apis.contains(&qualified) {
                    qualified
                } else {
                    format!("default/{}", parsed.name).to_ascii_lowercase()
                };
                Resolved::Api(key)
            }
            ("system", "system") if find_in(self.systems) => Resolved::Found,
            ("owner", "group" | "user")
                if self.catalog.owners.contains_key(&(kind.clone(), parsed.name.to_ascii_lowercase())) =>
            {
                Resolved::Found
            }
            ("owner", _) => {
                let candidates: Vec<String> = self.catalog.owners.keys().map(|(k, n)| format!("{k}:{n}")).collect();
                Resolved::Missing(self.missing(entity, r, &r.text, candidates))
            }
            _ => Resolved::Missing(self.missing(entity, r, &parsed.name, Vec::new())),
        }
    }

    fn service_names(&self) -> Vec<String> {
        self.catalog.services.iter().map(|s| s.name.clone()).collect()
    }

    fn missing(&self, entity: &Entity, r: &RefUse, typed: &str, candidates: Vec<String>) -> Diagnostic {
        let consequence = match r.field {
            "owner" => "`kg::owner` gives only this ref and `kg::oncall` cannot fall back on the owner's on-call",
            "system" => "the system is kept as written",
            _ => "the dependency is ignored",
        };
        let mut candidates = candidates;
        candidates.sort();
        Diagnostic::new(Code::UnresolvedEntityRef, format!("{}`{}`, which is not in the catalog", relation(entity, r.field), r.text))
            .at(&entity.file, r.span, "not in the catalog")
            .with_help(format!(
                "{consequence}; add the entity (a catalog split across repositories loads with several `--catalog` paths) or fix the ref"
            ))
            .suggest(typed, candidates.iter().map(String::as_str))
    }
}

/// The start of a W310 message: "`checkout-api` depends on ".
fn relation(entity: &Entity, field: &str) -> String {
    let name = &entity.name;
    match field {
        "dependsOn" => format!("`{name}` depends on "),
        "dependencyOf" => format!("`{name}` is a dependency of "),
        "providesApis" => format!("`{name}` provides the API "),
        "consumesApis" => format!("`{name}` consumes the API "),
        "owner" => format!("`{name}` is owned by "),
        "system" => format!("`{name}` is part of the system "),
        _ => format!("`{name}` refers to "),
    }
}

fn duplicate(first: &Entity, again: &Entity) -> Diagnostic {
    let message = if first.kind == again.kind {
        format!("the entity `{}` is defined twice", again.display_ref())
    } else {
        format!(
            "the service `{}` is defined twice, as a {} and a {}",
            again.name,
            first.kind.as_str(),
            again.kind.as_str()
        )
    };
    let d = Diagnostic::new(Code::DuplicateEntity, message).at(&again.file, again.name_span, "defined again here");
    let help = "remove one of the two, or give one another name: Sparky keeps the first and ignores this one";
    if Arc::ptr_eq(&first.file, &again.file) {
        d.with_secondary(first.name_span, "first defined here").with_help(help)
    } else {
        let (line, _) = first.file.line_col(first.name_span.start);
        d.with_help(format!("`{}` line {line} already defines it; {help}", first.file.name))
    }
}

/// W313: aliases that are the name or alias of another service.
fn check_aliases(
    catalog: &Catalog,
    entities: &[Entity],
    service_of: &HashMap<usize, usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut owner_of_alias: HashMap<String, usize> = HashMap::new();
    let mut indices: Vec<(&usize, &usize)> = service_of.iter().collect();
    indices.sort();
    for (&e, &s) in indices {
        let entity = &entities[e];
        for (alias, span) in &entity.alias_spans {
            let key = alias.to_ascii_lowercase();
            let me = &catalog.services[s].name;
            if let Some(&other) = catalog.names.get(&key)
                && other != s
            {
                diags.push(
                    Diagnostic::new(
                        Code::AmbiguousAlias,
                        format!("the alias `{alias}` of `{me}` is the name of another service"),
                    )
                    .at(&entity.file, *span, "already a service's name")
                    .with_help(format!(
                        "events naming `{alias}` go to the service `{}`, never to `{me}`; remove the alias or rename one of them",
                        catalog.services[other].name
                    )),
                );
                continue;
            }
            match owner_of_alias.get(&key) {
                Some(&other) if other != s => diags.push(
                    Diagnostic::new(
                        Code::AmbiguousAlias,
                        format!("the alias `{alias}` is given to both `{}` and `{me}`", catalog.services[other].name),
                    )
                    .at(&entity.file, *span, "already an alias of another service")
                    .with_help(format!(
                        "events naming `{alias}` go to `{}`, read first; give the alias to one service only",
                        catalog.services[other].name
                    )),
                ),
                Some(_) => {}
                None => {
                    owner_of_alias.insert(key, s);
                }
            }
        }
    }
}

/// W311 for every set of services that depend on each other in a cycle.
fn report_cycles(graph: &Graph, origins: &HashMap<(u32, u32), (Arc<SourceFile>, Span)>, diags: &mut Vec<Diagnostic>) {
    for component in graph.cycles() {
        let members: HashSet<u32> = component.iter().copied().collect();
        let start = *component
            .iter()
            .min_by(|a, b| graph.names[**a as usize].cmp(&graph.names[**b as usize]))
            .expect("not empty");
        let cycle = graph.cycle_through(start, &members);
        let name = |n: u32| format!("`{}`", graph.names[n as usize]);
        let mut path: Vec<String> = cycle.iter().map(|&n| name(n)).collect();
        path.push(name(start));
        let mut d = Diagnostic::new(Code::DependencyCycle, format!("dependency cycle: {}", path.join(" → ")));
        let edges: Vec<(u32, u32)> =
            cycle.iter().enumerate().map(|(i, &n)| (n, *cycle.get(i + 1).unwrap_or(&start))).collect();
        if let Some((file, span)) = origins.get(&edges[0]) {
            d = d.at(file, *span, format!("{} depends on {}", name(edges[0].0), name(edges[0].1)));
            for edge in &edges[1..] {
                if let Some((f, s)) = origins.get(edge)
                    && Arc::ptr_eq(f, file)
                {
                    d = d.with_secondary(*s, format!("{} depends on {}", name(edge.0), name(edge.1)));
                }
            }
        }
        let more = if component.len() > cycle.len() {
            format!(" ({} services in all depend on each other through cycles)", component.len())
        } else {
            String::new()
        };
        diags.push(d.with_help(format!(
            "Sparky's queries still end, visiting each service once, but a cycle usually means a `dependsOn` is wrong or inverted: a failure of any of them is counted as breaking all the others{more}; remove the dependency that is not real"
        )));
    }
}

/// E401 for a document serde_yaml could not read, at the place it stopped.
fn syntax_error(file: &Arc<SourceFile>, start: usize, e: &serde_yaml::Error) -> Diagnostic {
    let full = e.to_string();
    let marks = regex_marks();
    let problem = full.split(", while ").next().unwrap_or(&full);
    let problem = marks.replace_all(problem, "").trim().to_string();
    let offset = |line: usize, column: usize| offset_of(&file.text, start, line, column);
    let at = e.location().map(|l| offset(l.line(), l.column())).unwrap_or(start);
    let end = file.text[at..].chars().next().map(|c| at + c.len_utf8()).unwrap_or(at);
    let mut d = Diagnostic::new(Code::CatalogSyntax, format!("this file is not valid YAML: {problem}"))
        .at(file, Span::new(at, end), "the YAML parser stopped here")
        .with_help("fix the YAML here (the file's other documents are still read); common causes are a tab in the indentation, a value holding `: ` without quotes, and a line indented differently from its siblings");
    if let Some(context) = regex_context().captures(&full) {
        let line = context[2].parse().unwrap_or(1);
        let column = context[3].parse().unwrap_or(1);
        let c = offset(line, column);
        if c != at {
            let end = file.text[c..].chars().next().map(|ch| c + ch.len_utf8()).unwrap_or(c);
            d = d.with_secondary(Span::new(c, end), context[1].to_string());
        }
    }
    d
}

fn regex_marks() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r" at (line \d+ column \d+|position \d+)").expect("valid regex"))
}

fn regex_context() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r", (while [^,]*?) at line (\d+) column (\d+)$").expect("valid regex"))
}

/// The byte offset of a 1-based line and column (in characters) counted from `base`.
fn offset_of(text: &str, base: usize, line: usize, column: usize) -> usize {
    let region = &text[base..];
    let mut at = 0;
    for _ in 1..line {
        match region[at..].find('\n') {
            Some(i) => at += i + 1,
            None => break,
        }
    }
    let rest = &region[at..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let byte = rest[..line_end].char_indices().nth(column.saturating_sub(1)).map(|(i, _)| i).unwrap_or(line_end);
    base + at + byte
}

/// Bounded walks, for questions asked on every decision: a hub that half the company depends
/// on must not cost a full walk with every name copied.
impl Catalog {
    /// How many services depend on `name`, transitively (cycle-safe, no names copied).
    pub fn downstream_count(&self, name: &str) -> usize {
        let Some(start) = self.node_of(name) else { return 0 };
        let counts =
            self.graph.downstream_counts.get_or_init(|| self.graph.names.iter().map(|_| OnceLock::new()).collect());
        match counts.get(start as usize) {
            Some(cell) => *cell.get_or_init(|| self.graph.count(start, true) as u32) as usize,
            None => self.graph.count(start, true),
        }
    }

    /// The `limit` nearest dependents of `name` (as [`Catalog::downstream`], cut short).
    pub fn downstream_nearest(&self, name: &str, limit: usize) -> Vec<Related> {
        self.node_of(name).map_or_else(Vec::new, |start| self.graph.walk_nearest(start, true, limit))
    }

    /// The `limit` nearest dependencies of `name`.
    pub fn upstream_nearest(&self, name: &str, limit: usize) -> Vec<Related> {
        self.node_of(name).map_or_else(Vec::new, |start| self.graph.walk_nearest(start, false, limit))
    }
}

impl Graph {
    /// [`Graph::walk`]'s length, without names.
    fn count(&self, start: u32, downstream: bool) -> usize {
        let adjacency = if downstream { &self.dependents } else { &self.depends_on };
        let mut seen = vec![false; self.names.len()];
        seen[start as usize] = true;
        let (mut frontier, mut next) = (vec![start], Vec::new());
        let (mut depth, mut n) = (0, 0);
        while !frontier.is_empty() && depth < MAX_DEPTH {
            depth += 1;
            for &v in &frontier {
                for &m in &adjacency[v as usize] {
                    if !seen[m as usize] {
                        seen[m as usize] = true;
                        next.push(m);
                    }
                }
            }
            n += next.len();
            std::mem::swap(&mut frontier, &mut next);
            next.clear();
        }
        n
    }

    /// [`Graph::walk`] stopped once `limit` are found: the last depth is sorted and cut.
    fn walk_nearest(&self, start: u32, downstream: bool, limit: usize) -> Vec<Related> {
        let adjacency = if downstream { &self.dependents } else { &self.depends_on };
        let mut seen = vec![false; self.names.len()];
        seen[start as usize] = true;
        let mut out = Vec::new();
        let mut frontier = vec![start];
        let mut depth = 0;
        while !frontier.is_empty() && depth < MAX_DEPTH && out.len() < limit {
            depth += 1;
            let mut next = Vec::new();
            for &n in &frontier {
                for &m in &adjacency[n as usize] {
                    if !seen[m as usize] {
                        seen[m as usize] = true;
                        next.push(m);
                    }
                }
            }
            next.sort_by(|a, b| self.names[*a as usize].cmp(&self.names[*b as usize]));
            let room = limit - out.len();
            out.extend(next.iter().take(room).map(|&m| Related { name: self.names[m as usize].clone(), depth }));
            frontier = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> Service {
        Service { name: name.into(), kind: "Component".into(), ..Service::default() }
    }

    fn names(related: &[Related]) -> Vec<(&str, u32)> {
        related.iter().map(|r| (r.name.as_str(), r.depth)).collect()
    }

    fn parse_one(text: &str) -> (Catalog, Vec<Diagnostic>) {
        Catalog::parse(&[("catalog-info.yaml".into(), text.into())])
    }

    fn codes(diags: &[Diagnostic]) -> Vec<&'static str> {
        diags.iter().map(|d| d.code.as_str()).collect()
    }

    fn component(name: &str, spec: &str) -> String {
        format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  owner: group:team-a\n{spec}"
        )
    }

    const TEAM: &str = "---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\n  annotations:\n    sparky.dev/oncall: alice\nspec:\n  type: team\n  children: []\n";

    #[test]
    fn refs_have_an_optional_kind_and_namespace() {
        let r = |kind: Option<&str>, namespace: Option<&str>, name: &str| EntityRef {
            kind: kind.map(String::from),
            namespace: namespace.map(String::from),
            name: name.into(),
        };
        assert_eq!(parse_ref("checkout-api"), Some(r(None, None, "checkout-api")));
        assert_eq!(parse_ref("Component:checkout-api"), Some(r(Some("component"), None, "checkout-api")));
        assert_eq!(parse_ref("resource:shop/orders-db"), Some(r(Some("resource"), Some("shop"), "orders-db")));
        assert_eq!(parse_ref("shop/orders-db"), Some(r(None, Some("shop"), "orders-db")));
        assert_eq!(parse_ref(" group:team-a "), Some(r(Some("group"), None, "team-a")));
        for bad in ["", "component:", ":x", "a/b/c", "a:b:c", "ns/", "two words", "component:/x"] {
            assert_eq!(parse_ref(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(parse_time("2026-04-15").unwrap().to_rfc3339(), "2026-04-15T00:00:00+00:00");
        assert_eq!(parse_time("2026-04-15T10:00:00+02:00").unwrap().to_rfc3339(), "2026-04-15T08:00:00+00:00");
        assert_eq!(parse_time("next week"), None);
        assert_eq!(parse_time("2026-02-30"), None);
    }

    #[test]
    fn documents_split_at_markers_only() {
        let text = "a: 1\n---\nb: |\n  ---x\n--- # c\nc: 3\n...\n---\n";
        let docs: Vec<&str> = documents(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(docs, ["a: 1\n", "---\nb: |\n  ---x\n", "--- # c\nc: 3\n", "---\n"]);
    }

    #[test]
    fn downstream_is_breadth_first_with_depths() {
        // d → c → b → a: `a` breaks everything above it.
        let mut c = Catalog::default();
        for n in ["a", "b", "c", "d"] {
            c.insert(service(n));
        }
        c.add_dependency("b", "a");
        c.add_dependency("c", "b");
        c.add_dependency("d", "c");
        assert_eq!(names(&c.downstream("a")), [("b", 1), ("c", 2), ("d", 3)]);
        assert_eq!(names(&c.upstream("d")), [("c", 1), ("b", 2), ("a", 3)]);
        assert!(c.downstream("d").is_empty());
        assert!(c.downstream("nobody").is_empty());
    }

    #[test]
    fn a_diamond_lists_each_service_once_at_its_nearest_depth() {
        let mut c = Catalog::default();
        c.add_dependency("top", "left");
        c.add_dependency("top", "right");
        c.add_dependency("left", "bottom");
        c.add_dependency("right", "bottom");
        c.add_dependency("top", "bottom");
        assert_eq!(names(&c.downstream("bottom")), [("left", 1), ("right", 1), ("top", 1)]);
        assert_eq!(names(&c.upstream("top")), [("bottom", 1), ("left", 1), ("right", 1)]);
        // Edges added twice count once.
        c.add_dependency("top", "left");
        assert_eq!(c.dependency_count(), 5);
        // Names the catalog lacks are nodes, not services.
        assert!(c.is_empty());
    }

    #[test]
    fn cycles_terminate_and_exclude_the_start() {
        let mut c = Catalog::default();
        c.add_dependency("a", "b");
        c.add_dependency("b", "c");
        c.add_dependency("c", "a");
        c.add_dependency("a", "a");
        assert_eq!(names(&c.downstream("a")), [("c", 1), ("b", 2)]);
        assert_eq!(names(&c.upstream("a")), [("b", 1), ("c", 2)]);
        assert_eq!(c.graph.cycles().len(), 1);
    }

    #[test]
    fn nearest_and_count_agree_with_the_full_walk() {
        let mut c = Catalog::default();
        for (from, to) in [("b", "a"), ("c", "a"), ("d", "b"), ("e", "d"), ("a", "e")] {
            c.add_dependency(from, to);
        }
        let all = c.downstream("a");
        assert_eq!(names(&all), [("b", 1), ("c", 1), ("d", 2), ("e", 3)]);
        assert_eq!(c.downstream_count("a"), all.len());
        assert_eq!(c.downstream_nearest("a", 3), all[..3]);
        assert_eq!(c.downstream_nearest("a", 0), []);
        assert_eq!(names(&c.upstream_nearest("b", 2)), [("a", 1), ("e", 2)]);
        assert_eq!(c.downstream_count("nobody"), 0);
    }

    #[test]
    fn walks_stop_at_depth_64() {
        let mut c = Catalog::default();
        for i in 0..100 {
            c.add_dependency(&format!("s{}", i + 1), &format!("s{i}"));
        }
        let down = c.downstream("s0");
        assert_eq!(down.len(), 64);
        assert_eq!(down.last().map(|r| r.depth), Some(64));
    }

    #[test]
    fn large_graphs_are_walked_by_adjacency() {
        // The benchmark size: 5,000 services, 20,000 edges.
        let mut c = Catalog::default();
        for i in 0..5000 {
            c.insert(service(&format!("svc-{i}")));
        }
        let mut x: u64 = 42;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize % 5000
        };
        let mut added = 0;
        while added < 20_000 {
            let (a, b) = (next(), next());
            if a != b && !c.graph.edges.contains(&(a as u32, b as u32)) {
                c.add_dependency(&format!("svc-{a}"), &format!("svc-{b}"));
                added += 1;
            }
        }
        assert_eq!(c.dependency_count(), 20_000);
        let started = std::time::Instant::now();
        let mut total = 0;
        for i in 0..200 {
            total += c.downstream(&format!("svc-{i}")).len() + c.upstream(&format!("svc-{i}")).len();
        }
        assert!(total > 0);
        // Generous, for debug builds on slow machines: a scan of all edges per hop would not fit.
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn services_are_found_by_name_alias_and_namespace_ignoring_case() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: checkout-api\n  namespace: shop\n  annotations:\n    backstage.io/kubernetes-id: checkout\n    sparky.dev/aliases: \"checkout-web, co\"\n";
        let (c, diags) = parse_one(text);
        assert!(diags.is_empty(), "{:?}", codes(&diags));
        for name in ["checkout-api", "Checkout-API", "checkout", "checkout-web", "co", "shop/checkout-api"] {
            assert_eq!(c.service(name).map(|s| s.name.as_str()), Some("checkout-api"), "{name}");
        }
        let s = c.service("co").unwrap();
        assert_eq!(s.aliases, ["checkout", "checkout-web", "co"]);
        assert_eq!((s.namespace.as_str(), s.line, s.file.as_str()), ("shop", 1, "catalog-info.yaml"));
        assert!(c.service("default/checkout-api").is_none());
    }

    #[test]
    fn owners_and_oncall_come_from_the_service_then_its_group() {
        let text = format!(
            "{TEAM}{}{}{}",
            component("a", "  dependsOn: [b]\n"),
            component("b", ""),
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: c\n  annotations:\n    sparky.dev/oncall: bob\nspec:\n  owner: group:team-gone\n"
        );
        let (c, diags) = parse_one(&text);
        assert_eq!(codes(&diags), ["W310"]);
        let owner = c.owner("a").unwrap();
        assert_eq!(
            (owner.reference.as_str(), owner.kind.as_str(), owner.name.as_str()),
            ("group:team-a", "Group", "team-a")
        );
        assert_eq!(owner.oncall.as_deref(), Some("alice"));
        assert_eq!(c.oncall("a").as_deref(), Some("alice"));
        assert_eq!(c.oncall("c").as_deref(), Some("bob"));
        assert_eq!(c.owner("c"), Some(Owner { reference: "group:team-gone".into(), ..Owner::default() }));
        assert_eq!(names(&c.downstream("b")), [("a", 1)]);
        assert_eq!(c.owner("nobody"), None);
    }

    #[test]
    fn reviewers_are_the_oncall_on_github_else_the_owning_team() {
        let group = TEAM.replace(
            "    sparky.dev/oncall: alice\n",
            "    sparky.dev/oncall: alice\n    github.com/team-slug: acme/team-a\n",
        );
        let user = "---\napiVersion: backstage.io/v1alpha1\nkind: User\nmetadata:\n  name: alice\n  annotations:\n    github.com/user-login: alice-gh\nspec:\n  memberOf: [team-a]\n";
        let with_oncall = |name: &str, oncall: &str| {
            format!(
                "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n  annotations:\n    sparky.dev/oncall: \"{oncall}\"\nspec:\n  owner: group:team-a\n"
            )
        };
        let text = format!(
            "{group}{user}{}{}{}",
            component("a", ""),
            with_oncall("b", "@bob"),
            with_oncall("c", "Carol Smith (pager)")
        );
        let (c, diags) = parse_one(&text);
        assert!(diags.iter().all(|d| !d.is_error()), "{:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
        // The group's on-call is a User whose GitHub login the catalog gives.
        assert_eq!(c.reviewers("a"), Reviewers { users: vec!["alice-gh".into()], teams: vec![] });
        // An on-call that is itself a login.
        assert_eq!(c.reviewers("b").users, ["bob"]);
        // No person GitHub knows: the owning team reviews.
        assert_eq!(c.reviewers("c"), Reviewers { users: vec![], teams: vec!["acme/team-a".into()] });
        assert_eq!(c.reviewers("nobody"), Reviewers::default());
        assert!(is_github_login("dana-2") && !is_github_login("-dana") && !is_github_login("a b"));
    }

    #[test]
    fn api_links_make_consumers_depend_on_providers() {
        let api = "---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: payments\nspec:\n  type: openapi\n  owner: team-a\n";
        let text = format!(
            "{TEAM}{api}{}{}",
            component("checkout", "  consumesApis: [payments]\n"),
            component("payments-api", "  providesApis: [api:payments]\n  consumesApis: [payments]\n")
        );
        let (c, diags) = parse_one(&text);
        assert!(diags.is_empty(), "{:?}", diags.iter().map(|d| &d.message).collect::<Vec<_>>());
        assert_eq!(names(&c.upstream("checkout")), [("payments-api", 1)]);
        assert!(c.upstream("payments-api").is_empty());
    }

    #[test]
    fn a_component_and_a_resource_of_one_name_are_one_service_twice() {
        let text = format!(
            "{}{}",
            component("db", ""),
            "---\napiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: db\n---\napiVersion: backstage.io/v1alpha1\nkind: System\nmetadata:\n  name: db\n"
        );
        let (c, diags) = parse_one(&text);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`db` is owned by `group:team-a`, which is not in the catalog",
                "the service `db` is defined twice, as a Component and a Resource"
            ]
        );
        assert_eq!(c.service("db").map(|s| s.kind.as_str()), Some("Component"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn dependency_of_points_the_other_way() {
        let text = format!("{TEAM}{}{}", component("db", "  dependencyOf: [component:app]\n"), component("app", ""));
        let (c, diags) = parse_one(&text);
        assert!(diags.is_empty());
        assert_eq!(names(&c.upstream("app")), [("db", 1)]);
    }

    #[test]
    fn cycles_are_reported_once_with_their_path() {
        let text = format!(
            "{TEAM}{}{}{}{}",
            component("a", "  dependsOn: [b]\n"),
            component("b", "  dependsOn: [c]\n"),
            component("c", "  dependsOn: [a]\n"),
            component("d", "  dependsOn: [d]\n"),
        );
        let (c, diags) = parse_one(&text);
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["dependency cycle: `a` → `b` → `c` → `a`", "`d` depends on itself"]);
        assert_eq!(diags[0].line_col().map(|(l, _)| l), Some(18));
        assert_eq!(diags[0].secondary.len(), 2);
        assert_eq!(names(&c.downstream("a")), [("c", 1), ("b", 2)]);
    }

    #[test]
    fn annotations_are_read_and_checked() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: db\n  annotations:\n    sparky.dev/stateless: \"yes\"\n    sparky.dev/replicas: many\n    sparky.dev/tier: tier-1\n    sparky.dev/stateles: \"true\"\n    github.com/project-slug: acme\n";
        let (c, diags) = parse_one(text);
        let found: Vec<(&str, usize)> = diags.iter().map(|d| (d.code.as_str(), d.line_col().unwrap().0)).collect();
        assert_eq!(found, [("E404", 6), ("E404", 7), ("W312", 9), ("E404", 10)]);
        assert!(diags[2].help.as_deref().unwrap().starts_with("did you mean `sparky.dev/stateless`?"));
        let s = c.service("db").unwrap();
        assert_eq!((s.stateless, s.replicas, s.tier.as_deref(), s.repo.as_deref()), (None, None, Some("tier-1"), None));
    }

    #[test]
    fn unquoted_annotation_values_are_an_error_but_still_read() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\n  annotations:\n    sparky.dev/stateless: true\n    sparky.dev/replicas: 3\n";
        let (c, diags) = parse_one(text);
        assert_eq!(codes(&diags), ["E402", "E402"]);
        assert!(diags[0].help.as_deref().unwrap().contains("`sparky.dev/stateless: \"true\"`"));
        let s = c.service("a").unwrap();
        assert_eq!((s.stateless, s.replicas), (Some(true), Some(3)));
    }

    #[test]
    fn tokens_are_api_token_resources() {
        let text = "apiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: stripe-key\n  annotations:\n    sparky.dev/expires-at: \"2026-04-15\"\nspec:\n  type: api-token\n  owner: group:team-a\n---\napiVersion: backstage.io/v1alpha1\nkind: Resource\nmetadata:\n  name: bucket\nspec:\n  type: s3-bucket\n";
        let (c, _) = parse_one(text);
        assert_eq!(c.tokens().len(), 1);
        let t = &c.tokens()[0];
        assert_eq!((t.name.as_str(), t.owner.as_deref(), t.line), ("stripe-key", Some("group:team-a"), 1));
        assert_eq!(t.expires_at.unwrap().to_rfc3339(), "2026-04-15T00:00:00+00:00");
    }

    #[test]
    fn insert_replaces_and_keeps_the_index_right() {
        let mut c = Catalog::default();
        c.insert(Service { aliases: vec!["old".into()], ..service("a") });
        c.add_dependency("a", "b");
        c.insert(Service { aliases: vec!["new".into()], tier: Some("tier-1".into()), ..service("a") });
        assert_eq!(c.len(), 1);
        assert!(c.service("old").is_none());
        assert_eq!(c.service("new").and_then(|s| s.tier.as_deref()), Some("tier-1"));
        assert_eq!(names(&c.upstream("new")), [("b", 1)]);
        c.insert(service("b"));
        assert_eq!(names(&c.downstream("b")), [("a", 1)]);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn to_map_has_the_documented_keys() {
        let s = Service { replicas: Some(3), tags: vec!["java".into()], ..service("a") };
        let m = s.to_map();
        for key in [
            "name",
            "known",
            "stateless",
            "tier",
            "owner",
            "system",
            "lifecycle",
            "type",
            "oncall",
            "runbook",
            "replicas",
            "repo",
            "jira_project",
            "pagerduty_service_id",
            "tags",
            "links",
            "annotations",
        ] {
            assert!(m.contains_key(key), "{key}");
        }
        assert_eq!(m["replicas"].as_int().unwrap(), 3);
        assert!(!m["stateless"].as_bool().unwrap());
        assert!(service("b").to_map()["replicas"].is_unit());
        let o = Owner { reference: "group:x".into(), ..Owner::default() }.to_map();
        assert_eq!(o["reference"].clone().into_string().unwrap(), "group:x");
        assert_eq!(o["email"].clone().into_string().unwrap(), "");
    }

    #[test]
    fn bad_input_never_panics() {
        let deep_list = "[".repeat(10_000);
        let deep_map = (0..500).map(|i| format!("{}k:\n", " ".repeat(i))).collect::<String>();
        let huge = format!("{}{}", component("big", "  dependsOn:\n"), "    - component:x\n".repeat(50_000));
        let inputs: Vec<String> = vec![
            String::new(),
            "---".into(),
            "---\n---\n...\n".into(),
            "\u{feff}".into(),
            "\0\u{1}\u{7f}".into(),
            "- a\n- b\n".into(),
            "just a string".into(),
            "42".into(),
            "kind: [".into(),
            "a: &x [*x]".into(),
            "\tkind: Component".into(),
            "%YAML 1.2\n---\nkind: Component\n".into(),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: [1]}\n".into(),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\n  annotations: [1]\n  links: {a: 1}\n  tags: 3\nspec: 4\n".into(),
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: x\nspec:\n  dependsOn: [{a: 1}, component:, '']\n".into(),
            deep_list,
            deep_map,
            huge,
            "a: b: c".into(),
            "é: [\n".into(),
        ];
        for input in inputs {
            let (c, diags) = parse_one(&input);
            // Rendering copies the file per diagnostic: a few show that it works.
            for d in diags.iter().take(20) {
                let _ = crate::diagnostics::render_human(d, false);
            }
            let _ = c.services().count();
        }
    }

    #[test]
    fn invalid_entities_report_every_problem() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n---\nkind: Componnet\nmetadata:\n  name: x\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  title: 3\n---\n- a\n";
        let (c, diags) = parse_one(text);
        let found: Vec<(&str, usize, &str)> =
            diags.iter().map(|d| (d.code.as_str(), d.line_col().unwrap().0, d.message.as_str())).collect();
        assert_eq!(
            found,
            [
                ("E402", 1, "`apps/v1` is not a Backstage catalog `apiVersion`"),
                ("E402", 6, "the entity has no `apiVersion`"),
                ("E402", 6, "unknown entity kind `Componnet`"),
                ("E402", 10, "the entity has no `metadata.name`"),
                ("E402", 13, "`metadata.title` must be a string, not a number"),
                ("E402", 15, "a catalog document must be an entity (a mapping), not a list"),
            ]
        );
        assert!(diags[2].help.as_deref().unwrap().starts_with("did you mean `Component`?"), "{:?}", diags[2].help);
        assert!(c.is_empty());
    }

    #[test]
    fn a_broken_document_does_not_hide_the_others() {
        let text = format!(
            "{}---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [broken\n{}",
            component("a", ""),
            component("b", "")
        );
        let (c, diags) = parse_one(&text);
        assert_eq!(codes(&diags).iter().filter(|c| **c == "E401").count(), 1);
        assert!(c.service("a").is_some() && c.service("b").is_some());
        assert!(diags.iter().find(|d| d.code == Code::CatalogSyntax).unwrap().line_col().unwrap().0 >= 12);
    }
}
