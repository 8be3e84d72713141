//! The built-in analyzer: deterministic, evidence-based rules over the knowledge snapshot.
//!
//! Each rule looks for one pattern an on-call engineer checks first, says which facts it
//! used, and gives a confidence calibrated on how strong those facts are (documented in
//! `docs/analysis.md`; change the two together). The strongest rule names the root cause;
//! every rule that found something contributes its evidence and its fix proposal.
//!
//! 1. **Deploy** — the service was deployed shortly before the event started: the deploy is
//!    the likely cause; proposal `revert`.
//! 2. **Out of memory** — the pod's container was OOM-killed (from the pod, the event's
//!    reason, or the alert's name): proposal `memory_limit`.
//! 3. **Saturation with headroom** — a saturation alert on a stateless service whose catalog
//!    ceiling leaves room: proposal `replicas_floor`.
//! 4. **Recurrence** — the same fingerprint happened before and a fix worked: the same fix.

use super::Input;
use crate::event::{Event, Kind, Severity, Status};
use crate::knowledge::{Deploy, DeployState, Knowledge};
use crate::script::ContextView;
use crate::triage::{Analysis, Impact, Proposal};
use chrono::Duration;
use serde_json::json;
use std::collections::BTreeMap;

/// How far back a deploy counts as "shortly before".
const DEPLOY_WINDOW_MIN: i64 = 120;
/// Clock skew tolerated between the deployer's clock and the alert's.
const SKEW_MIN: i64 = 2;
/// How far back "has this happened before" looks.
const HISTORY_DAYS: i64 = 90;
/// Alerts that mean "more load than capacity".
const SATURATION_ALERTS: &[&str] =
    &["KubeHpaMaxedOut", "KubeHpaReplicasMismatch", "CPUThrottlingHigh", "HighRequestLatency", "HighCPUUsage"];

/// One rule's finding.
struct Finding {
    cause: String,
    confidence: f64,
    evidence: Vec<String>,
    proposal: Option<Proposal>,
}

/// Analyzes `input.event` with the rules above.
pub fn analyze(input: &Input<'_>) -> Analysis {
    let event = input.event;
    let kg = input.knowledge;
    let mut findings: Vec<Finding> =
        [deploy_rule(event, kg), oom_rule(event, kg), saturation_rule(event, kg)].into_iter().flatten().collect();
    findings.extend(recurrence_rule(event, kg));
    findings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));

    let impact = impact(event, kg);
    let mut analysis = Analysis { analyzer: "builtin".into(), impact, ..Default::default() };
    match findings.first() {
        Some(best) => {
            analysis.root_cause = Some(best.cause.clone());
            analysis.confidence = best.confidence;
            analysis.summary = format!("likely cause: {} ({:.0}% confidence)", best.cause, best.confidence);
        }
        None => {
            analysis.summary =
                "no evidence points to a cause: no recent deploy, no known failure pattern, no past fix".into();
        }
    }
    for f in findings {
        analysis.evidence.extend(f.evidence);
        analysis.proposals.extend(f.proposal);
    }
    analysis
}

fn service(event: &Event) -> Option<&str> {
    event.service.as_deref().filter(|s| !s.is_empty())
}

/// Rule 1: a deploy of the service shortly before the event started.
fn deploy_rule(event: &Event, kg: &Knowledge) -> Option<Finding> {
    if event.kind == Kind::Deploy || event.status != Status::Firing {
        return None;
    }
    let service = service(event)?;
    let started = event.occurred_at;
    let before: Vec<&Deploy> = kg
        .deploys_of(service)
        .filter(|d| {
            // Checked: a sender's time may be anywhere chrono allows.
            let latest = started.checked_add_signed(Duration::minutes(SKEW_MIN)).unwrap_or(started);
            d.at <= latest && started.signed_duration_since(d.at) <= Duration::minutes(DEPLOY_WINDOW_MIN)
        })
        .collect();
    let deploy = *before.first()?;
    let gap = started.signed_duration_since(deploy.at).num_minutes().max(0);
    let mut confidence: f64 = match gap {
        0..=10 => 80.0,
        11..=30 => 70.0,
        31..=60 => 55.0,
        _ => 40.0,
    };
    let what = deploy.version.as_deref().or(deploy.commit.as_deref()).unwrap_or("an unnamed version");
    let mut evidence = vec![format!(
        "{service} was deployed ({what}, {}) {gap} minute{} before the event started",
        deploy.state.as_str(),
        if gap == 1 { "" } else { "s" }
    )];
    // Did this problem exist before the deploy? If not, the deploy brought it.
    let earlier = kg
        .history_within(&event.fingerprint, (HISTORY_DAYS * 86_400_000) as u64)
        .filter(|i| i.opened_at < deploy.at)
        .count();
    if earlier == 0 {
        confidence += 12.0;
        evidence
            .push("the problem is new since the deploy: no earlier incident with this fingerprint on record".into());
    } else {
        confidence -= 15.0;
        evidence.push(format!("the problem predates the deploy: {earlier} earlier incident(s) with this fingerprint"));
    }
    if before.len() > 1 {
        confidence -= 10.0;
        evidence
            .push(format!("{} deploys in the {DEPLOY_WINDOW_MIN} minutes before: the newest is blamed", before.len()));
    }
    if deploy.state == DeployState::Failed {
        evidence.push("the deploy itself reported a failure".into());
    }
    let revertable = deploy.commit.is_some() || deploy.version.is_some();
    if !revertable {
        confidence -= 20.0;
        evidence.push("the deploy names no commit or version to revert".into());
    }
    let confidence = confidence.clamp(0.0, 95.0);
    let proposal = revertable.then(|| {
        let mut args = BTreeMap::new();
        args.insert("deploy".to_string(), json!(deploy.key));
        args.insert("service".to_string(), json!(deploy.service));
        for (k, v) in [("commit", &deploy.commit), ("version", &deploy.version), ("repository", &deploy.repository)] {
            if let Some(v) = v {
                args.insert(k.to_string(), json!(v));
            }
        }
        Proposal {
            generator: "revert".into(),
            confidence,
            summary: format!("revert the deploy of {what} to {service}"),
            args,
        }
    });
    Some(Finding { cause: format!("the deploy of {what} to {service}"), confidence, evidence, proposal })
}

/// Rule 2: the container ran out of memory.
fn oom_rule(event: &Event, kg: &Knowledge) -> Option<Finding> {
    if event.status != Status::Firing && event.status != Status::Info {
        return None;
    }
    let label = |k: &str| event.labels.get(k).map(String::as_str).unwrap_or("");
    let (namespace, pod) = (label("namespace"), label("pod"));
    let from_pod = (!namespace.is_empty() && !pod.is_empty())
        .then(|| kg.pod(namespace, pod))
        .and_then(|p| p.get("last_termination_reason").map(|r| r.to_string()))
        .filter(|r| r == "OOMKilled");
    let reason = label("reason");
    let (confidence, fact) = if from_pod.is_some() {
        (88.0, format!("the pod {namespace}/{pod} last terminated with `OOMKilled`"))
    } else if matches!(reason, "OOMKilled" | "OOMKilling") {
        (85.0, format!("the event's reason is `{reason}`"))
    } else if label("alertname").to_ascii_lowercase().contains("oom") {
        (70.0, format!("the alert `{}` reports out-of-memory kills", label("alertname")))
    } else {
        return None;
    };
    let who = service(event).unwrap_or(if pod.is_empty() { "the workload" } else { pod });
    let mut args = BTreeMap::new();
    for k in ["namespace", "pod", "container"] {
        if !label(k).is_empty() {
            args.insert(k.to_string(), json!(label(k)));
        }
    }
    if let Some(s) = service(event) {
        args.insert("service".into(), json!(s));
    }
    Some(Finding {
        cause: format!("{who} runs out of memory"),
        confidence,
        evidence: vec![fact],
        proposal: Some(Proposal {
            generator: "memory_limit".into(),
            confidence,
            summary: format!("raise the memory limit of {who}"),
            args,
        }),
    })
}

/// Rule 3: saturation of a stateless service that may grow.
fn saturation_rule(event: &Event, kg: &Knowledge) -> Option<Finding> {
    if event.status != Status::Firing {
        return None;
    }
    let alert = event.labels.get("alertname")?;
    if !SATURATION_ALERTS.contains(&alert.as_str()) {
        return None;
    }
    let service = service(event)?;
    let entry = kg.catalog().service(service)?;
    let mut evidence = vec![format!("`{alert}` is a saturation alert")];
    if entry.stateless != Some(true) {
        return None;
    }
    evidence.push(format!("the catalog marks {service} stateless: more replicas share the load"));
    let ceiling = entry.annotations.get("sparky.dev/max-replicas").and_then(|v| v.trim().parse::<u32>().ok());
    let (confidence, floor) = match (entry.replicas, ceiling) {
        (Some(now), Some(max)) if max > now => {
            evidence.push(format!("headroom: {now} replicas now, the catalog allows up to {max}"));
            (75.0, Some((now + 2).min(max)))
        }
        (Some(now), Some(max)) => {
            evidence.push(format!("no headroom: {now} replicas, already at the catalog's ceiling of {max}"));
            return Some(Finding {
                cause: format!("{service} is saturated at its replica ceiling"),
                confidence: 50.0,
                evidence,
                proposal: None,
            });
        }
        _ => {
            evidence.push(
                "the catalog gives no replica count and ceiling (`sparky.dev/replicas`, `sparky.dev/max-replicas`)"
                    .into(),
            );
            (55.0, None)
        }
    };
    let mut args = BTreeMap::new();
    args.insert("service".to_string(), json!(service));
    if let Some(f) = floor {
        args.insert("replicas".to_string(), json!(f));
    }
    Some(Finding {
        cause: format!("{service} has more load than its replicas can take"),
        confidence,
        evidence,
        proposal: Some(Proposal {
            generator: "replicas_floor".into(),
            confidence,
            summary: format!("raise the replica floor of {service}"),
            args,
        }),
    })
}

/// Rule 4: the same problem happened before, and a fix worked.
fn recurrence_rule(event: &Event, kg: &Knowledge) -> Option<Finding> {
    if event.status != Status::Firing {
        return None;
    }
    let past: Vec<_> = kg.history_within(&event.fingerprint, (HISTORY_DAYS * 86_400_000) as u64).collect();
    if past.is_empty() {
        return None;
    }
    let mut evidence =
        vec![format!("{} incident(s) with this fingerprint in the last {HISTORY_DAYS} days", past.len())];
    // The generator with the best record, counting successes and failures.
    let mut record: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for i in &past {
        if let Some(fix) = i.fix.as_deref() {
            let e = record.entry(fix).or_default();
            match i.outcome.as_deref() {
                Some("success") => e.0 += 1,
                Some("failure") => e.1 += 1,
                _ => {}
            }
        }
    }
    let best =
        record.iter().filter(|(_, (ok, _))| *ok > 0).max_by_key(|(_, (ok, bad))| (*ok as i64 - *bad as i64, *ok));
    let Some((fix, (ok, bad))) = best else {
        return Some(Finding {
            cause: "a recurring problem with no fix on record".into(),
            confidence: 30.0,
            evidence,
            proposal: None,
        });
    };
    let confidence = (60.0 + 10.0 * f64::from(*ok) - 20.0 * f64::from(*bad)).clamp(0.0, 90.0);
    evidence.push(format!("the `{fix}` fix worked {ok} time(s) and failed {bad} time(s) for it"));
    let last = past.iter().find(|i| i.fix.as_deref() == Some(*fix)).map(|i| i.key.clone()).unwrap_or_default();
    let mut args = BTreeMap::new();
    args.insert("like_incident".to_string(), json!(last));
    Some(Finding {
        cause: format!("a recurring problem that `{fix}` fixed before"),
        confidence,
        evidence,
        proposal: Some(Proposal {
            generator: fix.to_string(),
            confidence,
            summary: format!("apply the `{fix}` fix that worked for {last}"),
            args,
        }),
    })
}

/// Who else suffers: the services downstream, and how bad it may get.
fn impact(event: &Event, kg: &Knowledge) -> Impact {
    let Some(service) = service(event) else {
        return Impact { downstream: Vec::new(), severity: Some(event.severity) };
    };
    // The nearest dependents are named; the tier check looks a little further.
    let nearest = kg.catalog().downstream_nearest(service, 200);
    let critical_downstream = nearest.iter().any(|d| {
        kg.catalog()
            .service(&d.name)
            .and_then(|s| s.tier.as_deref())
            .is_some_and(|t| matches!(t, "tier-1" | "1" | "critical"))
    });
    let downstream: Vec<String> = nearest.into_iter().take(50).map(|r| r.name).collect();
    let severity = if critical_downstream && event.severity < Severity::High { Severity::High } else { event.severity };
    Impact { downstream, severity: Some(severity) }
}
