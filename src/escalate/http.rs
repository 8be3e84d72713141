//! What every destination's HTTP call shares: which answers are worth a retry, `Retry-After`,
//! and the backoff between attempts. A destination that refuses a request for good (a 400:
//! the request itself is wrong) is never retried; everything else — rate limits, server
//! errors, timeouts, a network that is down, credentials that may be fixed — is retried
//! until it goes through, so a destination down for an hour loses nothing.

use reqwest::StatusCode;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Why a delivery did not go through.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryError {
    /// Worth trying again, no sooner than `after` when the destination said so.
    /// `ambiguous`: the destination may have done it (a timeout or a 5xx after the request
    /// was sent), so a retry must first find out.
    Retry { reason: String, after: Option<Duration>, ambiguous: bool },
    /// The destination will never take this request.
    Permanent(String),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Retry { reason, .. } => f.write_str(reason),
            DeliveryError::Permanent(reason) => f.write_str(reason),
        }
    }
}

impl DeliveryError {
    pub fn retry(reason: impl Into<String>) -> DeliveryError {
        DeliveryError::Retry { reason: reason.into(), after: None, ambiguous: false }
    }
}

/// The HTTP client Sparky talks to an outside API with: `timeout` per request, no redirect
/// followed (a 3xx could carry a credential elsewhere), `sparky/<version>` as user agent.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sparky/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

/// Sends `request` to `what` (`Jira`, `PagerDuty`) and reads its JSON answer (`Null` when it
/// has none). Non-2xx answers are classified: 408, 425, 429 and 5xx are retried (after
/// `Retry-After` when given); 401 and 403 are retried too, since fixing the credentials
/// should deliver what waited; any other 4xx is permanent.
pub async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<(StatusCode, Value), DeliveryError> {
    let response = request.send().await.map_err(|e| {
        let (kind, ambiguous) = if e.is_timeout() {
            ("timed out", true)
        } else if e.is_connect() {
            ("could not connect", false)
        } else {
            ("failed", true)
        };
        // Without the URL: a Slack webhook's token is in its path.
        DeliveryError::Retry {
            reason: format!("the request to {what} {kind}: {}", e.without_url()),
            after: None,
            ambiguous,
        }
    })?;
    let status = response.status();
    let after = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok((status, body));
    }
    let excerpt = excerpt(&text);
    let reason = format!("{what} answered {status}: {excerpt}");
    Err(match status.as_u16() {
        401 | 403 => DeliveryError::Retry {
            reason: format!(
                "{reason} — check the credentials in the configuration; delivery is retried until they work"
            ),
            after,
            ambiguous: false,
        },
        408 | 425 | 429 => DeliveryError::Retry { reason, after, ambiguous: false },
        500..=599 => DeliveryError::Retry { reason, after, ambiguous: true },
        _ => DeliveryError::Permanent(reason),
    })
}

/// The first 300 characters of an error body, on one line.
fn excerpt(text: &str) -> String {
    let one_line = super::package::one_line(text);
    if one_line.is_empty() {
        return "(no body)".into();
    }
    super::package::truncate(&one_line, 300)
}

/// `Retry-After` in seconds (`120`) or as an HTTP date; also GitHub's and Jira's
/// `X-RateLimit-Reset` style is not standard, so only this header is read.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(3600)));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default().min(Duration::from_secs(3600)))
}

/// The pause before attempt `attempts + 1`: one second doubled per attempt, capped at `max`,
/// plus up to a quarter of it as jitter (so that deliveries waiting on one outage do not all
/// come back in the same second), and never less than what the destination asked for.
pub fn backoff(attempts: i64, asked: Option<Duration>, max: Duration, seed: u64) -> Duration {
    let exponent = attempts.clamp(0, 20) as u32;
    let base = Duration::from_secs(1).saturating_mul(2u32.saturating_pow(exponent)).min(max);
    // A cheap, well-spread jitter from the row and the attempt; no randomness needed.
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(attempts as u64).rotate_left(17);
    let jitter = base.mul_f64((mixed % 1000) as f64 / 4000.0);
    (base + jitter).max(asked.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&h).unwrap();
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90), "{wait:?}");
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_doubles_is_capped_and_honours_the_destination() {
        let max = Duration::from_secs(300);
        let first = backoff(0, None, max, 1);
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1250), "{first:?}");
        let fifth = backoff(5, None, max, 1);
        assert!(fifth >= Duration::from_secs(32) && fifth <= Duration::from_secs(40), "{fifth:?}");
        let late = backoff(60, None, max, 1);
        assert!(late >= max && late <= max.mul_f64(1.25), "{late:?}");
        assert_eq!(backoff(0, Some(Duration::from_secs(30)), max, 1), Duration::from_secs(30));
        // Rows retried together spread out.
        let spread: std::collections::BTreeSet<_> = (0..20).map(|seed| backoff(3, None, max, seed)).collect();
        assert!(spread.len() > 10);
    }
}
