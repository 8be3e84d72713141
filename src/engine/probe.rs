//! Verification after the apply: deadlines, and HTTP probes tried every `probe_interval`.
//! (The alert's own resolution is marked by the worker, with the resolved event.)

use super::{Engine, ms};
use crate::store::{Execution, StoreError, Verify};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// When each verifying execution was last probed, and which were verifying last round (to
/// report those that the alert's resolution verified meanwhile).
#[derive(Default)]
pub(super) struct Probes {
    last: HashMap<String, DateTime<Utc>>,
    watching: HashSet<String>,
}

impl Engine {
    pub(super) async fn verify(&self, probes: &mut Probes) -> Result<(), StoreError> {
        let verifying = self.store.verifying().await?;
        probes.last.retain(|id, _| verifying.iter().any(|e| &e.id == id));
        // Verified by the worker (the resolved alert) since the last round: report how it ended.
        let now_verifying: HashSet<String> = verifying.iter().map(|e| e.id.clone()).collect();
        for id in probes.watching.difference(&now_verifying) {
            if let Some(e) = self.store.execution(id).await? {
                self.observer.finished(&e.playbook, &e.state, e.dry_run);
            }
        }
        probes.watching = now_verifying;
        let interval = chrono::Duration::milliseconds(ms(&self.config.probe_interval) as i64);
        for e in verifying {
            let now = Utc::now();
            let deadline = e.verify_deadline.unwrap_or(now);
            let probe = e.verify.iter().find_map(|v| match v {
                Verify::Probe { url, status, .. } => Some((url.clone(), *status)),
                _ => None,
            });
            if let Some((url, status)) = probe
                && now <= deadline
                && probes.last.get(&e.id).is_none_or(|t| now - *t >= interval)
            {
                probes.last.insert(e.id.clone(), now);
                match self.probe(&url, status).await {
                    Ok(()) => {
                        let how = json!({ "probe": url, "status": status });
                        self.finish(probes, &e, "success", how).await?;
                        continue;
                    }
                    Err(why) => tracing::debug!(execution = %e.id, %url, %why, "probe not answered yet"),
                }
            }
            if now > deadline {
                let waited = e.verify.iter().map(|v| match v {
                    Verify::Resolved { .. } => "the source alert did not resolve".to_string(),
                    Verify::Probe { url, status, .. } => format!("{url} did not answer {status}"),
                    Verify::Delivered => "delivered".to_string(),
                });
                let how =
                    json!({ "timed_out": waited.collect::<Vec<_>>().join("; "), "deadline": deadline.to_rfc3339() });
                self.finish(probes, &e, "timed_out", how).await?;
            }
        }
        Ok(())
    }

    async fn finish(
        &self,
        probes: &mut Probes,
        e: &Execution,
        outcome: &str,
        how: serde_json::Value,
    ) -> Result<(), StoreError> {
        probes.watching.remove(&e.id);
        let demotion = match self.store.verified(e, outcome, how, self.config.breaker_failures, Utc::now()).await? {
            crate::store::Verified::Recorded(d) => d,
            // Another replica verified it first, and said so.
            crate::store::Verified::Already => return Ok(()),
        };
        let state = if outcome == "success" { "succeeded" } else { outcome };
        if outcome == "success" {
            tracing::info!(execution = %e.id, playbook = %e.playbook, "verified");
        } else {
            tracing::warn!(execution = %e.id, playbook = %e.playbook, outcome, "verification failed; escalated");
        }
        self.observer.finished(&e.playbook, state, e.dry_run);
        if let Some(d) = demotion {
            self.demoted(&d).await;
        }
        Ok(())
    }

    async fn probe(&self, url: &str, status: u16) -> Result<(), String> {
        let answer = tokio::time::timeout(Duration::from_secs(5), self.clients.http.get(url).send()).await;
        match answer {
            Ok(Ok(r)) if r.status().as_u16() == status => Ok(()),
            Ok(Ok(r)) => Err(format!("answered {}", r.status().as_u16())),
            Ok(Err(e)) => Err(e.without_url().to_string()),
            Err(_) => Err("no answer within 5s".into()),
        }
    }
}
