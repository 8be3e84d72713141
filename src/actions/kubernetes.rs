//! What the four `k8s.*` actions share: name validation for `plan()`, the `target` string,
//! and the mapping of Kubernetes API errors to [`ApplyError`] for `apply()`.
//!
//! The mapping decides what the executor does next, so it is deliberate: a 5xx, a 409
//! conflict, a throttling 429, a timeout or a dropped connection is worth another try
//! (`Transient`); a 401 or 403 will not get better by itself (`Failed`, with the RBAC rule the
//! service account lacks); a 404 is the caller's to judge (a pod already gone is a success, a
//! workload that does not exist is not).

use super::{ApplyError, Args, Clients, PlanError, required_str};
use serde_json::json;

/// A namespace: a DNS-1123 label.
pub(super) fn namespace<'a>(args: &'a Args, action: &str) -> Result<&'a str, PlanError> {
    let ns = required_str(args, "namespace", action)?;
    if is_dns1123_label(ns) {
        Ok(ns)
    } else {
        Err(PlanError(format!(
            "{action}: `namespace` is `{ns}`, which is not a Kubernetes namespace name (lowercase letters, digits \
             and `-`, at most 63 characters)"
        )))
    }
}

/// The name of a pod or workload in `param`: a DNS-1123 subdomain. A pattern (`checkout-*`)
/// is refused: these actions touch one named object.
pub(super) fn object_name<'a>(args: &'a Args, param: &str, action: &str) -> Result<&'a str, PlanError> {
    let name = required_str(args, param, action)?;
    if is_dns1123_subdomain(name) {
        Ok(name)
    } else {
        Err(PlanError(format!(
            "{action}: `{param}` is `{name}`, which is not a Kubernetes object name (lowercase letters, digits, \
             `-` and `.`, at most 253 characters); these actions touch one named object, never a pattern"
        )))
    }
}

/// `kind` among `choices` (the first when left out).
pub(super) fn kind<'a>(args: &'a Args, choices: &[&'a str], action: &str) -> Result<&'a str, PlanError> {
    match args.get("kind") {
        None => Ok(choices[0]),
        Some(v) => {
            let k = v.as_str().unwrap_or_default();
            choices.iter().copied().find(|c| *c == k).ok_or_else(|| {
                let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                PlanError(format!("{action}: `kind` is `{shown}`; it must be one of {}", choices.join(", ")))
            })
        }
    }
}

/// `grace_period` in whole seconds, rounded up; 0 is refused: it removes the pod from the API
/// at once, without waiting for its containers to stop (two StatefulSet pods with one
/// identity can then run side by side).
pub(super) fn grace_period_seconds(args: &Args, action: &str) -> Result<Option<u32>, PlanError> {
    let Some(v) = args.get("grace_period") else { return Ok(None) };
    let text = v.as_str().unwrap_or_default();
    let Some(ms) = crate::dsl::parse_duration(text) else {
        return Err(PlanError(format!("{action}: `grace_period` is `{v}`, not a duration; write e.g. `30s`")));
    };
    if ms == 0 {
        return Err(PlanError(format!(
            "{action}: `grace_period` is 0, which would remove the pod without waiting for it to stop; use at \
             least `1s`, or leave it out to use the pod's own setting"
        )));
    }
    u32::try_from(ms.div_ceil(1000))
        .map(Some)
        .map_err(|_| PlanError(format!("{action}: `grace_period` `{text}` is too long")))
}

/// A pod action's plan: the pod, its normalized arguments, and how it is given time to stop
/// (`giving it 30s to stop`). Shared by `k8s.delete_pod` and `k8s.evict_pod`.
pub(super) struct PodPlan<'a> {
    pub ns: &'a str,
    pub pod: &'a str,
    pub args: Args,
    pub stop: String,
}

pub(super) fn pod_plan<'a>(args: &'a Args, action: &str) -> Result<PodPlan<'a>, PlanError> {
    let ns = namespace(args, action)?;
    let pod = object_name(args, "pod", action)?;
    let mut normalized = Args::from([("namespace".to_string(), json!(ns)), ("pod".to_string(), json!(pod))]);
    let stop = match grace_period_seconds(args, action)? {
        Some(s) => {
            normalized.insert("grace_period_seconds".into(), json!(s));
            format!("giving it {s}s to stop")
        }
        None => "giving it its own grace period to stop".to_string(),
    };
    Ok(PodPlan { ns, pod, args: normalized, stop })
}

/// `kubernetes:<namespace>/<kind lowercase>/<name>`.
pub(super) fn target(namespace: &str, kind: &str, name: &str) -> String {
    format!("kubernetes:{namespace}/{}/{name}", kind.to_ascii_lowercase())
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// The Kubernetes client, or `Failed` saying why there is none.
pub(super) async fn client(clients: &Clients) -> Result<kube::Client, ApplyError> {
    clients.kube().await.map_err(ApplyError::Failed)
}

/// One API call, for error messages: `patch` on `deployments/scale` in group `apps`.
pub(super) struct Call<'a> {
    pub verb: &'static str,
    /// The resource as RBAC names it: `pods/eviction`, `deployments/scale`.
    pub resource: &'a str,
    /// The API group as RBAC names it: `""` for the core group.
    pub group: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The HTTP status of an API error (`None` for a connection error, a timeout, ...).
pub(super) fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) if s.code != 0 => Some(s.code),
        _ => None,
    }
}

/// The server's own message of an API error, for quoting.
pub(super) fn server_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) => {
            let mut m = s.message.trim_end_matches('.').to_string();
            if let Some(d) = &s.details {
                for c in d.causes.iter().filter(|c| !c.message.is_empty()) {
                    m.push_str(&format!("; {}", c.message.trim_end_matches('.')));
                }
            }
            m
        }
        other => other.to_string(),
    }
}

/// Maps an error of `call` to what the executor should do about it. A 404 maps to `Failed`
/// with "no such object": callers for which a missing object is a success check for 404 first.
pub(super) fn api_error(err: &kube::Error, call: &Call<'_>) -> ApplyError {
    let Call { verb, resource, group, namespace, name } = call;
    let what = format!("`{verb}` on {resource} `{namespace}/{name}`");
    match err {
        kube::Error::Api(s) => {
            let msg = server_message(err);
            match s.code {
                401 => ApplyError::Failed(format!(
                    "{what}: the Kubernetes API did not accept Sparky's credentials (401: {msg}); check the \
                     kubeconfig or the service account token"
                )),
                403 => {
                    let api_group = if group.is_empty() { "\"\"".to_string() } else { format!("\"{group}\"") };
                    ApplyError::Failed(format!(
                        "{what} is forbidden (403: {msg}); grant Sparky's service account a Role in namespace \
                         `{namespace}` with apiGroups [{api_group}], resources [\"{resource}\"], verbs [\"{verb}\"]"
                    ))
                }
                404 => {
                    let kind = resource.split('/').next().unwrap_or(resource).trim_end_matches('s');
                    ApplyError::Failed(format!(
                        "no {kind} `{name}` in namespace `{namespace}` (404 on {verb}); check the playbook's \
                         `namespace` and name, or whether the {kind} was renamed"
                    ))
                }
                409 => ApplyError::Transient(format!(
                    "{what}: the object changed while Sparky was updating it (409: {msg}); retrying reads it again"
                )),
                429 => ApplyError::Transient(format!("{what}: the Kubernetes API is throttling (429: {msg})")),
                code if code >= 500 => {
                    ApplyError::Transient(format!("{what}: the Kubernetes API answered {code} ({msg})"))
                }
                code => ApplyError::Failed(format!(
                    "{what}: the Kubernetes API answered {} ({msg}); the request will not succeed as it is",
                    if code == 0 { "an error".to_string() } else { code.to_string() }
                )),
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => ApplyError::Transient(format!(
            "{what}: no answer from the Kubernetes API ({}); check that it is reachable from Sparky",
            error_chain(err)
        )),
        kube::Error::Auth(_) => ApplyError::Failed(format!(
            "{what}: cannot authenticate to the Kubernetes API ({}); check the kubeconfig or the service account",
            error_chain(err)
        )),
        other => ApplyError::Failed(format!("{what}: {}", error_chain(other))),
    }
}

/// An error with its sources, `a: b: c`: kube's own `Display` stops at the outermost one,
/// which for a connection error says only "client error (Connect)".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_1123() {
        assert!(is_dns1123_label("prod-eu1"));
        assert!(!is_dns1123_label("Prod"));
        assert!(!is_dns1123_label("-prod"));
        assert!(!is_dns1123_label("prod-"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("checkout-7d9f.v2"));
        assert!(!is_dns1123_subdomain("checkout-*"));
        assert!(!is_dns1123_subdomain("checkout..v2"));
        assert!(!is_dns1123_subdomain(" checkout"));
    }

    #[test]
    fn a_zero_or_bad_grace_period_is_refused_and_fractions_round_up() {
        let args = |v: &str| Args::from([("grace_period".to_string(), serde_json::json!(v))]);
        assert_eq!(grace_period_seconds(&args("1500ms"), "a"), Ok(Some(2)));
        assert_eq!(grace_period_seconds(&args("30s"), "a"), Ok(Some(30)));
        assert!(grace_period_seconds(&args("0s"), "a").is_err());
        assert!(grace_period_seconds(&args("soon"), "a").is_err());
        assert_eq!(grace_period_seconds(&Args::new(), "a"), Ok(None));
    }
}
