//! Which delivery a webhook request is: the key the inbox deduplicates it by.
//!
//! Only an id the sender documents as its delivery id may be a key: a header any proxy or
//! sender may set the same on different requests (`X-Request-Id`) would make a second alert
//! look like a retry of the first, and it would be dropped. The normalizers know their
//! sender, so they set [`Event::delivery_id`](crate::event::Event) only from such an id
//! (`X-GitHub-Delivery`, PagerDuty's `X-Webhook-Id`, a CloudEvent's `source` and `id`, the
//! generic source's `delivery_header`); a Standard Webhooks signature vouches for its
//! `webhook-id` on any source. Without one, the key is the body's hash.
//!
//! The key alone never drops a delivery: the store keeps the body's hash with it and answers
//! `duplicate` only for the same body (see `Store::accept_all`).

use super::auth::Auth;
use super::{Batch, Headers};
use sha2::{Digest, Sha256};

/// Longer delivery ids are keyed by their hash, so the key stays small enough to index.
const LONGEST_ID: usize = 256;

/// How the inbox knows a delivery again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeliveryKey {
    /// `delivery:<the sender's id>` or `sha256:<the body's hash>`.
    pub(crate) key: String,
    /// The body's SHA-256, lower-case hex: what tells a retry from another body under a
    /// reused id.
    pub(crate) body_hash: String,
    /// Whether the key is the sender's id (else it is the body's hash).
    pub(crate) from_sender: bool,
}

/// The key of one delivery whose events are `batch` (read from `headers` and `body`, checked
/// with `auth`). A verified Standard Webhooks `webhook-id` becomes the events' delivery id
/// when their source found none, so that each event says which delivery carried it.
pub(crate) fn delivery_key(batch: &mut Batch, auth: Option<&Auth>, headers: &Headers, body: &[u8]) -> DeliveryKey {
    if matches!(auth, Some(Auth::StandardWebhooks { .. }))
        && let Some(id) = headers.get("webhook-id").map(str::trim).filter(|v| !v.is_empty())
    {
        for e in batch.events.iter_mut().filter(|e| e.delivery_id.is_none()) {
            e.delivery_id = Some(id.to_string());
        }
    }
    let body_hash = hex(&Sha256::digest(body));
    // A batch whose events carry different ids (a CloudEvents batch) is no one delivery of
    // the sender's: its body is what a retry repeats.
    let mut ids = batch.events.iter().map(|e| e.delivery_id.as_deref());
    let shared = match ids.next() {
        Some(Some(first)) if ids.all(|id| id == Some(first)) => Some(first),
        _ => None,
    };
    match shared {
        Some(id) if id.len() <= LONGEST_ID => {
            DeliveryKey { key: format!("delivery:{id}"), body_hash, from_sender: true }
        }
        Some(id) => DeliveryKey {
            key: format!("delivery-sha256:{}", hex(&Sha256::digest(id.as_bytes()))),
            body_hash,
            from_sender: true,
        },
        None => DeliveryKey { key: format!("sha256:{body_hash}"), body_hash, from_sender: false },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, generic::Mapping};
    use chrono::Utc;

    const ALERT: &[u8] =
        include_bytes!("../../tests/fixtures/ingest/alertmanager/kube-prometheus_TargetDown_firing.json");
    const DEPLOY: &[u8] = include_bytes!("../../tests/fixtures/ingest/github/deployment.created.json");

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(pairs.iter().copied())
    }

    fn key_of(source: &str, pairs: &[(&str, &str)], body: &[u8], auth: Option<&Auth>) -> DeliveryKey {
        let h = headers(pairs);
        let mut batch = ingest::normalize(source, &h, body, Utc::now()).unwrap();
        delivery_key(&mut batch, auth, &h, body)
    }

    fn body_key(body: &[u8]) -> String {
        format!("sha256:{}", hex(&Sha256::digest(body)))
    }

    #[test]
    fn request_ids_and_foreign_delivery_headers_are_never_keys() {
        let pairs = [("x-request-id", "static"), ("x-webhook-id", "w"), ("webhook-id", "m"), ("ce-id", "c")];
        let k = key_of("alertmanager", &pairs, ALERT, None);
        assert_eq!(k.key, body_key(ALERT));
        assert!(!k.from_sender);
        assert_eq!(k.key, format!("sha256:{}", k.body_hash));
    }

    #[test]
    fn a_source_documented_id_is_the_key() {
        let k = key_of("github", &[("x-github-event", "deployment"), ("x-github-delivery", "g-1")], DEPLOY, None);
        assert_eq!(k.key, "delivery:g-1");
        assert!(k.from_sender);
        assert_eq!(k.body_hash, hex(&Sha256::digest(DEPLOY)));
        // PagerDuty's header means nothing to GitHub.
        let k = key_of("github", &[("x-github-event", "deployment"), ("x-webhook-id", "w-1")], DEPLOY, None);
        assert_eq!(k.key, body_key(DEPLOY));
    }

    #[test]
    fn cloudevents_are_told_apart_by_source_and_id() {
        let body = br#"{"x": 1}"#;
        let at = |source: &str| {
            let pairs = [
                ("content-type", "application/json"),
                ("ce-specversion", "1.0"),
                ("ce-type", "com.example.thing"),
                ("ce-id", "1"),
                ("ce-source", source),
            ];
            key_of("cloudevents", &pairs, body, None).key
        };
        assert_ne!(at("/a"), at("/b"));
        assert_eq!(at("/a"), at("/a"));
        // A space cannot move from the source into the id.
        assert_ne!(at("/a b"), at("/a"));
    }

    #[test]
    fn a_cloudevents_batch_is_keyed_by_its_body() {
        let body = include_bytes!("../../tests/fixtures/ingest/cloudevents/batch_two_events.json");
        let k = key_of("cloudevents", &[("content-type", "application/cloudevents-batch+json")], body, None);
        assert_eq!(k.key, body_key(body));
    }

    #[test]
    fn standard_webhooks_ids_count_only_when_signed_so() {
        let sw = Auth::StandardWebhooks { secret: crate::ingest::auth::Secret::new("k") };
        let bearer = Auth::Bearer { token: crate::ingest::auth::Secret::new("t") };
        let h = headers(&[("webhook-id", "msg_1")]);
        let mut batch = ingest::normalize("alertmanager", &h, ALERT, Utc::now()).unwrap();
        assert_eq!(delivery_key(&mut batch.clone(), Some(&bearer), &h, ALERT).key, body_key(ALERT));
        assert_eq!(delivery_key(&mut batch, Some(&sw), &h, ALERT).key, "delivery:msg_1");
        assert!(batch.events.iter().all(|e| e.delivery_id.as_deref() == Some("msg_1")));
    }

    #[test]
    fn the_generic_source_reads_its_delivery_header() {
        let mapping: Mapping = serde_yaml::from_str("summary: $.text\ndelivery_header: X-Delivery").unwrap();
        let body = br#"{"text": "hello"}"#;
        let h = headers(&[("x-delivery", "d-9"), ("webhook-id", "other")]);
        let mut batch = ingest::generic::normalize(&mapping, "home", &h, body, Utc::now()).unwrap();
        assert_eq!(delivery_key(&mut batch, None, &h, body).key, "delivery:d-9");
    }

    #[test]
    fn long_ids_are_keyed_by_their_hash() {
        let id = "g".repeat(LONGEST_ID + 1);
        let k = key_of("github", &[("x-github-event", "deployment"), ("x-github-delivery", &id)], DEPLOY, None);
        assert!(k.key.starts_with("delivery-sha256:") && k.key.len() < 100, "{}", k.key);
    }
}
