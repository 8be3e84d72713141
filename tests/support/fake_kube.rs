//! A fake Kubernetes API server for tests: the real paths and JSON shapes (objects, `Scale`,
//! `Status` errors with `application/json`), in memory, on `127.0.0.1:<random port>`.
//!
//! ```ignore
//! #[path = "support/fake_kube.rs"]
//! mod fake_kube;
//!
//! let kube = fake_kube::FakeKube::start().await;
//! kube.add_deployment("prod", "checkout", 3);
//! let clients = sparky::actions::Clients::new(kube.actions_config());
//! // ... apply a plan ...
//! assert_eq!(kube.replicas("prod", "checkout"), Some(5));
//! assert!(kube.mutating_calls().iter().all(|c| c.method != "DELETE"));
//! ```
//!
//! What it serves:
//! - pods: `GET`, `DELETE /api/v1/namespaces/{ns}/pods/{name}`, and
//!   `POST .../pods/{name}/eviction` (201 and the pod is gone; 429 with the API's disruption
//!   budget `Status` when [`FakeKube::pdb_blocks`] was called for it);
//! - deployments, statefulsets, daemonsets: `GET`, `PATCH /apis/apps/v1/namespaces/{ns}/{plural}/{name}`
//!   and, but for daemonsets, `GET`, `PATCH .../{name}/scale` (an `autoscaling/v1` `Scale`);
//! - horizontalpodautoscalers: `GET`, `PATCH /apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}`.
//!
//! `PATCH` takes a JSON merge patch or a strategic merge patch (treated as a merge patch, which
//! is the same for maps); a `metadata.resourceVersion` in the patch is a precondition (409 when
//! stale), as in the real API. A missing object is a 404 `Status` naming it. Every request is
//! recorded ([`FakeKube::calls`]), faults included; [`FakeKube::fail_next`] answers the next
//! requests with an error status instead of serving them.
//!
//! The server stops when the `FakeKube` is dropped.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `GET`, `DELETE`, `POST`, `PATCH`, `PUT`.
    pub method: String,
    /// Without the query: `/api/v1/namespaces/prod/pods/checkout-1/eviction`.
    pub path: String,
    /// The query string, `""` when none.
    pub query: String,
    /// The body as JSON; `Null` when empty, a string when not JSON.
    pub body: Value,
    /// The `Content-Type` header, `""` when none.
    pub content_type: String,
}

impl Call {
    /// Whether the request would change something (anything but `GET`).
    pub fn is_mutating(&self) -> bool {
        self.method != "GET"
    }
}

#[derive(Default)]
struct State {
    /// By (plural, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
    calls: Vec<Call>,
    faults: VecDeque<u16>,
    /// Pods whose eviction a disruption budget refuses, by (namespace, name).
    pdb: BTreeSet<(String, String)>,
    resource_version: u64,
}

impl State {
    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// A running fake API server.
pub struct FakeKube {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeKube {
    /// Starts a server with no objects.
    pub async fn start() -> FakeKube {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move { handle(&state, &method, &uri, &headers, &body) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake API server");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKube { url, state, task }
    }

    /// The `integrations` configuration pointing Kubernetes actions at this server (mode
    /// left to the caller).
    pub fn actions_config(&self) -> sparky::actions::ActionsConfig {
        let mut config = sparky::actions::ActionsConfig::default();
        config.kubernetes.url = Some(self.url.clone());
        config.kubernetes.timeout = Some("5s".into());
        config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, plural: &str, ns: &str, name: &str, mut object: Value) {
        let mut s = self.lock();
        let rv = s.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv);
        object["metadata"]["uid"] = json!(format!("uid-{plural}-{ns}-{name}"));
        s.objects.insert((plural.into(), ns.into(), name.into()), object);
    }

    /// A running pod.
    pub fn add_pod(&self, ns: &str, name: &str) {
        self.insert(
            "pods",
            ns,
            name,
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": name, "namespace": ns, "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }],
                          "terminationGracePeriodSeconds": 30 },
                "status": { "phase": "Running" },
            }),
        );
    }

    fn add_workload(&self, plural: &str, kind: &str, ns: &str, name: &str, replicas: Option<i64>) {
        let mut spec = json!({
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "app", "image": "registry.example/app:1" }] },
            },
        });
        if let Some(r) = replicas {
            spec["replicas"] = json!(r);
        }
        self.insert(
            plural,
            ns,
            name,
            json!({
                "apiVersion": "apps/v1", "kind": kind,
                "metadata": { "name": name, "namespace": ns, "generation": 1 },
                "spec": spec,
                "status": { "replicas": replicas.unwrap_or(1) },
            }),
        );
    }

    pub fn add_deployment(&self, ns: &str, name: &str, replicas: i64) {
        self.add_workload("deployments", "Deployment", ns, name, Some(replicas));
    }

    pub fn add_statefulset(&self, ns: &str, name: &str, replicas: i64) {
        self.add_workload("statefulsets", "StatefulSet", ns, name, Some(replicas));
    }

    pub fn add_daemonset(&self, ns: &str, name: &str) {
        self.add_workload("daemonsets", "DaemonSet", ns, name, None);
    }

    /// Pauses (or resumes) a deployment, as `kubectl rollout pause` does.
    pub fn set_paused(&self, ns: &str, name: &str, paused: bool) {
        let mut s = self.lock();
        if let Some(d) = s.objects.get_mut(&("deployments".into(), ns.into(), name.into())) {
            d["spec"]["paused"] = json!(paused);
        }
    }

    /// An `autoscaling/v2` HorizontalPodAutoscaler of the deployment of the same name.
    pub fn add_hpa(&self, ns: &str, name: &str, min: i64, max: i64) {
        self.insert(
            "horizontalpodautoscalers",
            ns,
            name,
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": { "name": name, "namespace": ns },
                "spec": {
                    "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": name },
                    "minReplicas": min, "maxReplicas": max,
                    "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                                  "target": { "type": "Utilization", "averageUtilization": 70 } } }],
                },
                "status": { "currentReplicas": min, "desiredReplicas": min },
            }),
        );
    }

    /// An object as stored, by plural (`pods`, `deployments`, `horizontalpodautoscalers`, ...).
    pub fn object(&self, plural: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock().objects.get(&(plural.into(), ns.into(), name.into())).cloned()
    }

    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        self.object("pods", ns, name)
    }

    pub fn deployment(&self, ns: &str, name: &str) -> Option<Value> {
        self.object("deployments", ns, name)
    }

    pub fn hpa(&self, ns: &str, name: &str) -> Option<Value> {
        self.object("horizontalpodautoscalers", ns, name)
    }

    /// `spec.replicas` of a deployment.
    pub fn replicas(&self, ns: &str, name: &str) -> Option<i64> {
        self.deployment(ns, name).and_then(|d| d["spec"]["replicas"].as_i64())
    }

    /// Every request received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The requests that would change something (anything but `GET`), faults included.
    pub fn mutating_calls(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_mutating).collect()
    }

    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }

    /// The next `n` requests are answered `status` (e.g. 500, 403, 409, 429) with the matching
    /// `Status` body, and change nothing.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.lock().faults.extend(std::iter::repeat_n(status, n));
    }

    /// A PodDisruptionBudget refuses the eviction of this pod (429), as long as the test runs.
    pub fn pdb_blocks(&self, ns: &str, pod: &str) {
        self.lock().pdb.insert((ns.into(), pod.into()));
    }
}

/// A `Status` error response, as the API server writes it.
fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "details": details, "code": code,
    });
    respond(code, &body)
}

fn respond(code: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `pods`, `deployments.apps`: how the API names a resource in messages.
fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

fn not_found(plural: &str, group: &str, name: &str) -> Response {
    status(
        404,
        "NotFound",
        &format!("{} \"{name}\" not found", qualified(plural, group)),
        json!({ "name": name, "group": group, "kind": plural }),
    )
}

fn fault(code: u16, verb: &str, plural: &str, group: &str, ns: &str, name: &str) -> Response {
    let q = qualified(plural, group);
    let details = json!({ "name": name, "group": group, "kind": plural });
    match code {
        401 => status(401, "Unauthorized", "Unauthorized", json!({})),
        403 => status(
            403,
            "Forbidden",
            &format!(
                "{q} \"{name}\" is forbidden: User \"system:serviceaccount:sparky:sparky\" cannot {verb} resource \
                 \"{plural}\" in API group \"{group}\" in the namespace \"{ns}\""
            ),
            details,
        ),
        404 => not_found(plural, group, name),
        409 => status(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {q} \"{name}\": the object has been modified; please apply your \
                 changes to the latest version and try again"
            ),
            details,
        ),
        429 => status(429, "TooManyRequests", "Too many requests, please try again later.", json!({})),
        503 => status(503, "ServiceUnavailable", "the server is currently unable to handle the request", json!({})),
        code => status(code, "InternalError", "Internal error occurred: etcdserver: request timed out", details),
    }
}

/// RFC 7396: `null` removes, objects merge, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().expect("just made an object");
            for (k, v) in fields {
                if v.is_null() {
                    map.remove(k);
                } else {
                    merge(map.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Where a path points: (plural, group, namespace, name, subresource).
fn route(path: &str) -> Option<(String, String, String, String, Option<String>)> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_string(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let ["namespaces", ns, plural, name, sub @ ..] = rest else { return None };
    let group = match (*plural, group_version.as_str()) {
        ("pods", "v1") => "",
        ("deployments" | "statefulsets" | "daemonsets", "apps/v1") => "apps",
        ("horizontalpodautoscalers", "autoscaling/v2") => "autoscaling",
        _ => return None,
    };
    let sub = match sub {
        [] => None,
        [s] => Some((*s).to_string()),
        _ => return None,
    };
    Some((plural.to_string(), group.to_string(), ns.to_string(), name.to_string(), sub))
}

fn scale_of(object: &Value, ns: &str, name: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": { "name": name, "namespace": ns, "resourceVersion": object["metadata"]["resourceVersion"] },
        "spec": { "replicas": object["spec"]["replicas"] },
        "status": { "replicas": object["status"]["replicas"], "selector": format!("app={name}") },
    })
}

fn handle(state: &Mutex<State>, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    let parsed = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    s.calls.push(Call {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or_default().to_string(),
        body: parsed.clone(),
        content_type: content_type.clone(),
    });
    let Some((plural, group, ns, name, sub)) = route(uri.path()) else {
        return status(404, "NotFound", "the server could not find the requested resource", json!({}));
    };
    let verb = match *method {
        Method::GET => "get",
        Method::DELETE => "delete",
        Method::POST => "create",
        Method::PATCH => "patch",
        Method::PUT => "update",
        _ => "unknown",
    };
    if let Some(code) = s.faults.pop_front() {
        let resource = match &sub {
            Some(sub) => format!("{plural}/{sub}"),
            None => plural.clone(),
        };
        return fault(code, verb, &resource, &group, &ns, &name);
    }
    let key = (plural.clone(), ns.clone(), name.clone());
    let Some(current) = s.objects.get(&key).cloned() else {
        return not_found(&plural, &group, &name);
    };
    let is_patch = content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json");
    if *method == Method::PATCH && !is_patch {
        return status(
            415,
            "UnsupportedMediaType",
            &format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (not {content_type})"
            ),
            json!({}),
        );
    }
    let stale = |current: &Value| {
        let wanted = &parsed["metadata"]["resourceVersion"];
        !wanted.is_null() && *wanted != current["metadata"]["resourceVersion"]
    };
    match (method.clone(), plural.as_str(), sub.as_deref()) {
        (Method::GET, _, None) => respond(200, &current),
        (Method::DELETE, "pods", None) => {
            s.objects.remove(&key);
            let mut gone = current;
            gone["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
            respond(200, &gone)
        }
        (Method::POST, "pods", Some("eviction")) => {
            if parsed["kind"] != "Eviction" || parsed["metadata"]["name"] != json!(name) {
                return status(400, "BadRequest", "the body is not an Eviction of this pod", json!({}));
            }
            if s.pdb.contains(&(ns.clone(), name.clone())) {
                return status(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    json!({ "causes": [{ "reason": "DisruptionBudget",
                        "message": format!("The disruption budget {name}-pdb needs 2 healthy pods and has 2 currently") }] }),
                );
            }
            s.objects.remove(&key);
            respond(
                201,
                &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
            )
        }
        (Method::PATCH, _, None) => {
            if stale(&current) {
                return fault(409, verb, &plural, &group, &ns, &name);
            }
            let mut next = current;
            let mut patch = parsed.clone();
            if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let spec_before = next["spec"].clone();
            merge(&mut next, &patch);
            if next["spec"] != spec_before {
                let generation = next["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
                next["metadata"]["generation"] = json!(generation);
            }
            next["metadata"]["resourceVersion"] = json!(s.next_rv());
            s.objects.insert(key, next.clone());
            respond(200, &next)
        }
        (Method::GET, "deployments" | "statefulsets", Some("scale")) => respond(200, &scale_of(&current, &ns, &name)),
        (Method::PATCH, "deployments" | "statefulsets", Some("scale")) => {
            if stale(&current) {
                return fault(409, verb, &format!("{plural}/scale"), &group, &ns, &name);
            }
            let mut scale = scale_of(&current, &ns, &name);
            merge(&mut scale, &parsed);
            let Some(replicas) = scale["spec"]["replicas"].as_i64().filter(|r| *r >= 0) else {
                return status(422, "Invalid", "Scale.autoscaling \"spec.replicas\": Invalid value", json!({}));
            };
            let mut next = current;
            next["spec"]["replicas"] = json!(replicas);
            next["status"]["replicas"] = json!(replicas);
            next["metadata"]["resourceVersion"] = json!(s.next_rv());
            let answer = scale_of(&next, &ns, &name);
            s.objects.insert(key, next);
            respond(200, &answer)
        }
        _ => status(
            405,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method} {})", uri.path()),
            json!({}),
        ),
    }
}
