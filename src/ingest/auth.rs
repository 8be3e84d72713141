//! Webhook authentication: does a delivery come from the sender it names?
//!
//! Each source may carry one [`Auth`] (the `auth` key of a source in `sparky.yaml`). The daemon
//! calls [`Auth::verify`] on the raw headers and body before any normalizer reads the payload:
//! a signature covers the bytes as sent, so nothing may parse, re-encode or trim them first.
//!
//! Every scheme follows the same rules, documented for operators in `docs/authentication.md`:
//! - a header the scheme needs that is absent or empty is *missing credentials* (401); one that
//!   is present but malformed, does not match, or carries a stale timestamp is *wrong
//!   credentials* (403);
//! - secrets and tokens are compared in constant time, signatures only after their length and
//!   form are checked (an empty signature, a bare `sha256=` or `v1,`, a prefix of the real
//!   one, upper-case hex, the wrong length: all refused);
//! - hex signatures must be lower case, as every supported sender writes them: accepting
//!   either case buys nothing, and one spelling per signature keeps the rule simple;
//! - signed timestamps more than [`TOLERANCE`] away from the time of receipt are refused;
//! - messages say what was wrong and which setting to check, never a secret, a token or a
//!   received signature in full (they are logged and returned to the sender).

use super::Headers;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::{Choice, ConstantTimeEq};

/// How far a signed timestamp may be from the time of receipt, either way. Five minutes, as
/// Standard Webhooks recommends: room for clock skew and a slow retry, little for a replay.
pub const TOLERANCE: TimeDelta = TimeDelta::minutes(5);

/// The header Grafana puts its HMAC signature in unless the contact point names another.
pub const GRAFANA_SIGNATURE_HEADER: &str = "X-Grafana-Alerting-Signature";

/// The default written in `grafana/alerting`'s `http/hmac.go` (`defaultHeaderName`) in some
/// versions, while Grafana's documentation and contact point form say
/// [`GRAFANA_SIGNATURE_HEADER`]. Read as a fallback when `header` is not configured.
const GRAFANA_FALLBACK_SIGNATURE_HEADER: &str = "X-Grafana-Alert-Signature";

const GITHUB_HEADER: &str = "X-Hub-Signature-256";
const PAGERDUTY_HEADER: &str = "X-PagerDuty-Signature";
const SW_ID: &str = "webhook-id";
const SW_TIMESTAMP: &str = "webhook-timestamp";
const SW_SIGNATURE: &str = "webhook-signature";
const AUTHORIZATION: &str = "Authorization";

/// A secret from the configuration: the key bytes of an HMAC, a token or a password. Its
/// `Debug` never shows it, so a configuration can be logged whole.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret used as written (its UTF-8 bytes): tokens, passwords, GitHub, PagerDuty and
    /// Grafana secrets.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into().into_bytes())
    }

    /// A Standard Webhooks signing secret, `whsec_<base64>` (the prefix may be left out): the
    /// key is the decoded bytes.
    pub fn from_whsec(text: &str) -> Result<Secret, String> {
        let encoded = text.trim().strip_prefix("whsec_").unwrap_or(text.trim());
        match BASE64.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(Secret(key)),
            Ok(_) => Err("the signing secret is empty; copy the `whsec_…` secret the sender shows".into()),
            Err(_) => {
                Err("the signing secret is not `whsec_` followed by base64; copy the `whsec_…` secret the sender shows"
                    .into())
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            // An empty HMAC key or token is one anybody can use: most likely `${VAR}` of a
            // variable that is set but empty.
            return Err(serde::de::Error::custom(
                "the secret is empty; set it to the value configured at the sender (is its environment variable empty?)",
            ));
        }
        Ok(Secret::new(text))
    }
}

fn whsec<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let text = String::deserialize(d)?;
    Secret::from_whsec(&text).map_err(serde::de::Error::custom)
}

fn non_empty_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    let secrets = Vec::<Secret>::deserialize(d)?;
    if secrets.is_empty() {
        return Err(serde::de::Error::custom(
            "`secrets` is an empty list; give the subscription's secret (two during a rotation)",
        ));
    }
    Ok(secrets)
}

/// How the senders of one source prove who they are (`auth:` in `sparky.yaml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    /// `Authorization: Bearer <token>` (Alertmanager's `authorization`, Datadog or Argo CD
    /// custom headers, CloudEvents webhooks).
    Bearer { token: Secret },
    /// `Authorization: Basic <base64(username:password)>`.
    Basic { username: String, password: Secret },
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
    Github { secret: Secret },
    /// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]`, one signature per secret
    /// of the subscription; any match of any listed secret is enough (rotation).
    Pagerduty {
        #[serde(deserialize_with = "non_empty_secrets")]
        secrets: Vec<Secret>,
    },
    /// Grafana Alerting's webhook HMAC: lower-case hex HMAC-SHA256 of the body, or of
    /// `timestamp + ":" + body` when the contact point sets a timestamp header.
    Grafana {
        secret: Secret,
        /// The signature header; [`GRAFANA_SIGNATURE_HEADER`] when absent or empty.
        #[serde(default)]
        header: Option<String>,
        /// The timestamp header (e.g. `X-Grafana-Alerting-Timestamp`); when set, the
        /// timestamp is required, signed and checked against [`TOLERANCE`].
        #[serde(default)]
        timestamp_header: Option<String>,
    },
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>
    /// …` (space-separated), signed content `id.timestamp.body`, secret `whsec_<base64>`.
    StandardWebhooks {
        #[serde(deserialize_with = "whsec")]
        secret: Secret,
    },
}

/// Why a delivery was refused. Messages are for the person setting the sender up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A header the scheme needs is absent (or `empty`): the sender sends no credentials.
    Missing { header: String, empty: bool, hint: &'static str },
    /// The header is there but not in the scheme's form.
    Malformed { header: String, reason: String, expected: &'static str },
    /// Well-formed credentials that do not match the configured secret.
    Mismatch { header: String, received: Option<String>, hint: &'static str },
    /// A genuine signature over a timestamp too far from the time of receipt (positive
    /// `skew_seconds`: the timestamp is in the past).
    Stale { header: String, skew_seconds: i64, looks_like_millis: bool },
}

impl AuthError {
    /// The HTTP status to answer with: 401 when credentials are missing, 403 when wrong.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing { .. } => 401,
            _ => 403,
        }
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Missing { header, empty: false, hint } => {
                write!(f, "the delivery has no `{header}` header; {hint}")
            }
            AuthError::Missing { header, empty: true, hint } => {
                write!(f, "the `{header}` header is empty; {hint}")
            }
            AuthError::Malformed { header, reason, expected } => {
                write!(f, "the `{header}` header is malformed: {reason}; expected {expected}")
            }
            AuthError::Mismatch { header, received: Some(received), hint } => {
                write!(f, "the signature in `{header}` does not match (received {received}); {hint}")
            }
            AuthError::Mismatch { header, received: None, hint } => {
                write!(f, "the credentials in `{header}` do not match; {hint}")
            }
            AuthError::Stale { header, skew_seconds, looks_like_millis } => {
                let limit = TOLERANCE.num_seconds();
                let (amount, side) = if *skew_seconds >= 0 {
                    (skew_seconds.unsigned_abs(), "in the past")
                } else {
                    (skew_seconds.unsigned_abs(), "in the future")
                };
                write!(
                    f,
                    "the time in `{header}` is {amount} s {side}, beyond the {limit} s Sparky accepts either way; "
                )?;
                if *looks_like_millis {
                    write!(f, "it looks like milliseconds: the sender must send Unix time in seconds")
                } else {
                    write!(
                        f,
                        "check the sender's clock (and Sparky's: both should use NTP), or this is a replayed delivery"
                    )
                }
            }
        }
    }
}

impl std::error::Error for AuthError {}

const HINT_BEARER_MISSING: &str =
    "the sender must send `Authorization: Bearer <token>` with the token in this source's `auth.token`";
const HINT_BEARER_MISMATCH: &str = "check the token the sender is configured with against this source's `auth.token`";
const HINT_BASIC_MISSING: &str =
    "the sender must use basic authentication with this source's `auth.username` and `auth.password`";
const HINT_BASIC_MISMATCH: &str = "check the username and password the sender is configured with against this source's `auth.username` and `auth.password`";
const HINT_GITHUB_MISSING: &str = "GitHub signs deliveries only when the webhook has a secret: set it (webhook settings, Secret) to this source's `auth.secret`";
const HINT_GITHUB_MISMATCH: &str = "check that the webhook's secret in GitHub is this source's `auth.secret`, and that nothing between GitHub and Sparky changes the body";
const HINT_PAGERDUTY_MISSING: &str =
    "PagerDuty signs every v3 webhook; v2 (legacy) webhooks are not signed: move the subscription to v3 webhooks";
const HINT_PAGERDUTY_MISMATCH: &str = "check that `auth.secrets` holds the subscription's current secret (PagerDuty shows it once, when the subscription is created), and that nothing changes the body";
const HINT_GRAFANA_MISSING: &str = "set an HMAC secret on the Grafana contact point (webhook, HMAC signature) equal to this source's `auth.secret`; if the contact point names another signature header, set it in `auth.header`";
const HINT_GRAFANA_TIMESTAMP_MISSING: &str = "this source's `auth.timestamp_header` asks for a signed timestamp: set the contact point's HMAC timestamp header to the same name, or remove `timestamp_header`";
const HINT_GRAFANA_MISMATCH: &str = "check that the contact point's HMAC secret is this source's `auth.secret`, that a timestamp header is set on both sides or on neither (`auth.timestamp_header`), and that nothing between Grafana and Sparky changes the body";
const HINT_SW_MISSING: &str =
    "the sender must sign as Standard Webhooks do, with `webhook-id`, `webhook-timestamp` and `webhook-signature`";
const HINT_SW_MISMATCH: &str = "check that this source's `auth.secret` is the endpoint's `whsec_…` signing secret, and that nothing between the sender and Sparky changes the body";

const EXPECT_BEARER: &str = "`Bearer <token>`";
const EXPECT_BASIC: &str = "`Basic <base64 of username:password>`";
const EXPECT_GITHUB: &str = "`sha256=` followed by 64 lower-case hex digits";
const EXPECT_PAGERDUTY: &str = "`v1=` followed by 64 lower-case hex digits, several separated by commas";
const EXPECT_GRAFANA: &str = "64 lower-case hex digits";
const EXPECT_TIMESTAMP: &str = "Unix time in seconds";
const EXPECT_SW: &str = "`v1,` followed by a base64 HMAC-SHA256, several separated by spaces";

impl Auth {
    /// The scheme's name as written in the configuration (`github`, `bearer`, ...), for the
    /// status API and logs.
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::Bearer { .. } => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::Github { .. } => "github",
            Auth::Pagerduty { .. } => "pagerduty",
            Auth::Grafana { .. } => "grafana",
            Auth::StandardWebhooks { .. } => "standard_webhooks",
        }
    }

    /// What can be decided from the headers alone, before the body is read, so that an
    /// unauthenticated client never makes Sparky buffer a body: everything for `bearer` and
    /// `basic`; for the signature schemes, a missing, repeated or malformed header (the
    /// signature itself is checked with the body, by [`Auth::verify`]).
    pub fn verify_headers(&self, headers: &Headers, now: DateTime<Utc>) -> Result<(), AuthError> {
        match self.verify(headers, &[], now) {
            Ok(()) => Ok(()),
            Err(e) if matches!(self, Auth::Bearer { .. } | Auth::Basic { .. }) => Err(e),
            Err(e @ (AuthError::Missing { .. } | AuthError::Malformed { .. })) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Checks a delivery's credentials against this configuration. `body` is the raw body as
    /// received; `now` is the time of receipt, against which signed timestamps are checked.
    pub fn verify(&self, headers: &Headers, body: &[u8], now: DateTime<Utc>) -> Result<(), AuthError> {
        match self {
            Auth::Bearer { token } => verify_bearer(headers, token),
            Auth::Basic { username, password } => verify_basic(headers, username, password),
            Auth::Github { secret } => verify_github(headers, body, secret),
            Auth::Pagerduty { secrets } => verify_pagerduty(headers, body, secrets),
            Auth::Grafana { secret, header, timestamp_header } => {
                verify_grafana(headers, body, now, secret, header.as_deref(), timestamp_header.as_deref())
            }
            Auth::StandardWebhooks { secret } => verify_standard_webhooks(headers, body, now, secret),
        }
    }
}

/// The value of `name`, trimmed, or `Missing` when absent or blank. A header sent more than
/// once is refused: which copy a verifier reads must never decide whether a request passes.
fn required<'h>(headers: &'h Headers, name: &str, hint: &'static str) -> Result<&'h str, AuthError> {
    let copies = headers.get_all(name).count();
    if copies > 1 {
        return Err(malformed(
            name,
            format!("it is sent {copies} times; a request carries its credentials once"),
            "exactly one copy of the header",
        ));
    }
    match headers.get(name).map(|v| v.trim_matches([' ', '\t'])) {
        Some(v) if !v.is_empty() => Ok(v),
        found => Err(AuthError::Missing { header: name.to_string(), empty: found.is_some(), hint }),
    }
}

fn malformed(header: &str, reason: impl Into<String>, expected: &'static str) -> AuthError {
    AuthError::Malformed { header: header.to_string(), reason: reason.into(), expected }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length (longer ones are hashed), so this never fails; the
    // fallback only keeps the function total.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return sha256(key);
    };
    for part in parts {
        mac.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(data));
    out
}

/// Constant-time equality of two byte strings of any lengths: their SHA-256 digests are
/// compared, so neither the content nor the length of the expected value leaks through time.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(sha256(a).ct_eq(&sha256(b)))
}

/// Whether any candidate equals any expected MAC, examining every pair (no early exit).
fn any_matches(candidates: &[[u8; 32]], expected: &[[u8; 32]]) -> bool {
    let mut hit = Choice::from(0);
    for c in candidates {
        for e in expected {
            hit |= c.ct_eq(e);
        }
    }
    bool::from(hit)
}

/// A lower-case hex SHA-256 digest. Errors say what is wrong without repeating the value.
fn parse_hex32(text: &str) -> Result<[u8; 32], String> {
    if text.is_empty() {
        return Err("the signature is empty".into());
    }
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("the signature has characters that are not hex digits".into());
    }
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("the signature has upper-case hex digits, and senders write lower case".into());
    }
    if text.len() != 64 {
        return Err(format!("the signature has {} hex digits instead of 64", text.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    Ok(out)
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => 0,
    }
}

/// A base64 HMAC-SHA256 (Standard Webhooks).
fn parse_base64_32(text: &str) -> Result<[u8; 32], String> {
    if text.is_empty() {
        return Err("the signature after `v1,` is empty".into());
    }
    let bytes = BASE64.decode(text).map_err(|_| "the signature after `v1,` is not base64".to_string())?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("the signature after `v1,` decodes to {} bytes instead of 32", bytes.len()))
}

/// The start of a received signature, enough to match a log line against the sender's
/// delivery log and too little to be of use to anyone else.
fn excerpt(prefix: &str, signature: &str) -> String {
    let start: String = signature.chars().take(7).collect();
    format!("`{prefix}{start}…`")
}

/// Unix seconds, digits only (no sign, no fraction). Up to 18 digits, so that milliseconds
/// parse and are named as such in the refusal.
fn parse_unix_seconds(header: &str, text: &str) -> Result<i64, AuthError> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(header, "it is not a whole number of seconds", EXPECT_TIMESTAMP));
    }
    text.parse::<i64>().map_err(|_| malformed(header, "it is not a whole number of seconds", EXPECT_TIMESTAMP))
}

fn check_fresh(header: &str, timestamp: i64, now: DateTime<Utc>) -> Result<(), AuthError> {
    let now = now.timestamp();
    let skew = now.saturating_sub(timestamp);
    let limit = TOLERANCE.num_seconds().unsigned_abs();
    if skew.unsigned_abs() <= limit {
        return Ok(());
    }
    let looks_like_millis = (now.saturating_sub(timestamp / 1000)).unsigned_abs() <= limit;
    Err(AuthError::Stale { header: header.to_string(), skew_seconds: skew, looks_like_millis })
}

/// Splits `Authorization` into its scheme and credentials, checking the scheme (case
/// insensitive, RFC 9110). The received scheme is named only when it is a well-known one, so
/// a bare token sent without a scheme is never echoed.
fn authorization<'h>(
    headers: &'h Headers,
    scheme: &str,
    hint: &'static str,
    expected: &'static str,
) -> Result<&'h str, AuthError> {
    let value = required(headers, AUTHORIZATION, hint)?;
    let (given, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !given.eq_ignore_ascii_case(scheme) {
        const KNOWN: &[&str] = &["Basic", "Bearer", "Digest", "Token", "Negotiate", "ApiKey", "HMAC"];
        let reason = match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(given)) {
            Some(k) => format!("it uses the `{k}` scheme, and this source expects `{scheme}`"),
            None if credentials.is_empty() => "it has no scheme".to_string(),
            None => format!("it does not use the `{scheme}` scheme"),
        };
        return Err(malformed(AUTHORIZATION, reason, expected));
    }
    let credentials = credentials.trim_start_matches(' ');
    if credentials.is_empty() {
        return Err(AuthError::Missing { header: AUTHORIZATION.into(), empty: true, hint });
    }
    Ok(credentials)
}

fn verify_bearer(headers: &Headers, token: &Secret) -> Result<(), AuthError> {
    let given = authorization(headers, "Bearer", HINT_BEARER_MISSING, EXPECT_BEARER)?;
    if secret_eq(given.as_bytes(), token.bytes()) {
        Ok(())
    } else {
        Err(AuthError::Mismatch { header: AUTHORIZATION.into(), received: None, hint: HINT_BEARER_MISMATCH })
    }
}

fn verify_basic(headers: &Headers, username: &str, password: &Secret) -> Result<(), AuthError> {
    let given = authorization(headers, "Basic", HINT_BASIC_MISSING, EXPECT_BASIC)?;
    let decoded = BASE64
        .decode(given)
        .map_err(|_| malformed(AUTHORIZATION, "the credentials after `Basic` are not base64", EXPECT_BASIC))?;
    let mut expected = Vec::with_capacity(username.len() + 1 + password.bytes().len());
    expected.extend_from_slice(username.as_bytes());
    expected.push(b':');
    expected.extend_from_slice(password.bytes());
    if secret_eq(&decoded, &expected) {
        Ok(())
    } else {
        Err(AuthError::Mismatch { header: AUTHORIZATION.into(), received: None, hint: HINT_BASIC_MISMATCH })
    }
}

fn verify_github(headers: &Headers, body: &[u8], secret: &Secret) -> Result<(), AuthError> {
    let value = required(headers, GITHUB_HEADER, HINT_GITHUB_MISSING)?;
    let Some(hex) = value.strip_prefix("sha256=") else {
        return Err(malformed(GITHUB_HEADER, "it does not start with `sha256=`", EXPECT_GITHUB));
    };
    let given = parse_hex32(hex).map_err(|reason| malformed(GITHUB_HEADER, reason, EXPECT_GITHUB))?;
    if any_matches(&[given], &[hmac_sha256(secret.bytes(), &[body])]) {
        Ok(())
    } else {
        Err(AuthError::Mismatch {
            header: GITHUB_HEADER.into(),
            received: Some(excerpt("sha256=", hex)),
            hint: HINT_GITHUB_MISMATCH,
        })
    }
}

fn verify_pagerduty(headers: &Headers, body: &[u8], secrets: &[Secret]) -> Result<(), AuthError> {
    required(headers, PAGERDUTY_HEADER, HINT_PAGERDUTY_MISSING)?;
    let mut candidates = Vec::new();
    let mut first_error = None;
    let mut first_hex = None;
    // A comma-separated list, which HTTP lets a proxy split over several header lines.
    // Versions other than `v1` are skipped, as PagerDuty asks, so a future `v2` can be sent
    // beside `v1`.
    let entries = headers.get_all(PAGERDUTY_HEADER).flat_map(|v| v.split(','));
    for entry in entries.map(|e| e.trim_matches([' ', '\t'])).filter(|e| !e.is_empty()) {
        let Some(hex) = entry.strip_prefix("v1=") else { continue };
        match parse_hex32(hex) {
            Ok(sig) => {
                first_hex.get_or_insert(hex);
                candidates.push(sig);
            }
            Err(reason) => {
                first_error.get_or_insert(reason);
            }
        }
    }
    if candidates.is_empty() {
        let reason = first_error.unwrap_or_else(|| "it has no `v1=` signature".into());
        return Err(malformed(PAGERDUTY_HEADER, reason, EXPECT_PAGERDUTY));
    }
    let expected: Vec<[u8; 32]> = secrets.iter().map(|s| hmac_sha256(s.bytes(), &[body])).collect();
    if any_matches(&candidates, &expected) {
        return Ok(());
    }
    let first = excerpt("v1=", first_hex.unwrap_or_default());
    let received = match candidates.len() {
        1 => first,
        n => format!("{n} `v1` signatures, the first {first}"),
    };
    Err(AuthError::Mismatch {
        header: PAGERDUTY_HEADER.into(),
        received: Some(received),
        hint: HINT_PAGERDUTY_MISMATCH,
    })
}

fn verify_grafana(
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    secret: &Secret,
    header: Option<&str>,
    timestamp_header: Option<&str>,
) -> Result<(), AuthError> {
    // Empty names mean "not set", as in Grafana's own contact point settings.
    let configured = header.map(str::trim).filter(|h| !h.is_empty());
    let (name, value) = match configured {
        Some(name) => (name, required(headers, name, HINT_GRAFANA_MISSING)?),
        None => match required(headers, GRAFANA_SIGNATURE_HEADER, HINT_GRAFANA_MISSING) {
            Ok(v) => (GRAFANA_SIGNATURE_HEADER, v),
            Err(missing) => match required(headers, GRAFANA_FALLBACK_SIGNATURE_HEADER, HINT_GRAFANA_MISSING) {
                Ok(v) => (GRAFANA_FALLBACK_SIGNATURE_HEADER, v),
                Err(_) => return Err(missing),
            },
        },
    };
    let given = parse_hex32(value).map_err(|reason| malformed(name, reason, EXPECT_GRAFANA))?;
    let timestamp = match timestamp_header.map(str::trim).filter(|h| !h.is_empty()) {
        Some(ts_name) => {
            let text = required(headers, ts_name, HINT_GRAFANA_TIMESTAMP_MISSING)?;
            Some((ts_name, text, parse_unix_seconds(ts_name, text)?))
        }
        None => None,
    };
    let expected = match timestamp {
        Some((_, text, _)) => hmac_sha256(secret.bytes(), &[text.as_bytes(), b":", body]),
        None => hmac_sha256(secret.bytes(), &[body]),
    };
    if !any_matches(&[given], &[expected]) {
        return Err(AuthError::Mismatch {
            header: name.to_string(),
            received: Some(excerpt("", value)),
            hint: HINT_GRAFANA_MISMATCH,
        });
    }
    match timestamp {
        Some((ts_name, _, seconds)) => check_fresh(ts_name, seconds, now),
        None => Ok(()),
    }
}

fn verify_standard_webhooks(
    headers: &Headers,
    body: &[u8],
    now: DateTime<Utc>,
    secret: &Secret,
) -> Result<(), AuthError> {
    let signatures = required(headers, SW_SIGNATURE, HINT_SW_MISSING)?;
    let id = required(headers, SW_ID, HINT_SW_MISSING)?;
    let timestamp_text = required(headers, SW_TIMESTAMP, HINT_SW_MISSING)?;
    let timestamp = parse_unix_seconds(SW_TIMESTAMP, timestamp_text)?;

    let mut candidates = Vec::new();
    let mut first_error = None;
    let mut first_b64 = None;
    let mut asymmetric = false;
    for entry in signatures.split([' ', '\t']).filter(|e| !e.is_empty()) {
        match entry.split_once(',') {
            Some(("v1", b64)) => match parse_base64_32(b64) {
                Ok(sig) => {
                    first_b64.get_or_insert(b64);
                    candidates.push(sig);
                }
                Err(reason) => {
                    first_error.get_or_insert(reason);
                }
            },
            // `v1a` (ed25519) and future versions: not ours to check.
            Some(("v1a", _)) => asymmetric = true,
            _ => {}
        }
    }
    if candidates.is_empty() {
        let reason = first_error.unwrap_or_else(|| {
            if asymmetric {
                "it has only asymmetric (`v1a`) signatures, which Sparky does not check; give the endpoint a `whsec_` secret".into()
            } else {
                "it has no `v1,` signature".into()
            }
        });
        return Err(malformed(SW_SIGNATURE, reason, EXPECT_SW));
    }
    // The timestamp is signed as sent (digits only, checked above).
    let expected = hmac_sha256(secret.bytes(), &[id.as_bytes(), b".", timestamp_text.as_bytes(), b".", body]);
    if !any_matches(&candidates, &[expected]) {
        let first = excerpt("v1,", first_b64.unwrap_or_default());
        let received = match candidates.len() {
            1 => first,
            n => format!("{n} `v1` signatures, the first {first}"),
        };
        return Err(AuthError::Mismatch {
            header: SW_SIGNATURE.into(),
            received: Some(received),
            hint: HINT_SW_MISMATCH,
        });
    }
    check_fresh(SW_TIMESTAMP, timestamp, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(pairs.iter().map(|(k, v)| (*k, v.to_string())))
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// An HMAC computed the plain way, independent of the code under test.
    fn reference_hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    fn parse(yaml: &str) -> Result<Auth, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    /// Asserts the refusal's status and that its message shows none of `hidden`.
    fn refused(result: Result<(), AuthError>, status: u16, hidden: &[&str]) -> String {
        let e = result.expect_err("should be refused");
        assert_eq!(e.status(), status, "{e}");
        let msg = e.to_string();
        assert!(!msg.is_empty() && !msg.ends_with('.'), "{msg}");
        for h in hidden {
            assert!(!msg.contains(h), "message shows `{h}`: {msg}");
        }
        msg
    }

    const NOW: i64 = 1_700_000_000;

    // GitHub's published example (docs: "Validating webhook deliveries").
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &[u8] = b"Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn github() -> Auth {
        Auth::Github { secret: Secret::new(GH_SECRET) }
    }

    #[test]
    fn github_published_vector() {
        let h = headers(&[("X-Hub-Signature-256", GH_SIG)]);
        github().verify(&h, GH_BODY, at(NOW)).unwrap();
        // Header names are case-insensitive; the daemon lowercases them.
        let h = headers(&[("x-hub-signature-256", GH_SIG)]);
        github().verify(&h, GH_BODY, at(NOW)).unwrap();
    }

    #[test]
    fn github_refusals() {
        let sig_hex = &GH_SIG["sha256=".len()..];
        let check = |value: Option<&str>, status: u16| {
            let h = match value {
                Some(v) => headers(&[("X-Hub-Signature-256", v)]),
                None => headers(&[("X-Hub-Signature", "sha1=01e7eb3ae5d4b7e1b53b36d1ec1ba8b5c7f5e7a0")]),
            };
            refused(github().verify(&h, GH_BODY, at(NOW)), status, &[GH_SECRET, sig_hex])
        };
        assert!(check(None, 401).contains("no `X-Hub-Signature-256` header"));
        check(Some(""), 401);
        check(Some("   "), 401);
        assert!(check(Some("sha256="), 403).contains("the signature is empty"));
        assert!(check(Some(sig_hex), 403).contains("does not start with `sha256=`"));
        assert!(check(Some(&GH_SIG[..40]), 403).contains("33 hex digits instead of 64"));
        assert!(check(Some(&GH_SIG[..GH_SIG.len() - 1]), 403).contains("63 hex digits"));
        assert!(check(Some(&format!("{GH_SIG}0")), 403).contains("65 hex digits"));
        assert!(check(Some(&GH_SIG.to_uppercase().replace("SHA256=", "sha256=")), 403).contains("upper-case"));
        assert!(check(Some(&GH_SIG.replace('e', "g")), 403).contains("not hex digits"));
        assert!(check(Some("sha1=01e7eb3ae5d4b7e1b53b36d1ec1ba8b5c7f5e7a0"), 403).contains("`sha256=`"));
        let flipped = format!("{}{}", &GH_SIG[..GH_SIG.len() - 1], "8");
        let msg = check(Some(&flipped), 403);
        assert!(msg.contains("does not match (received `sha256=757107e…`)"), "{msg}");
        assert!(msg.contains("`auth.secret`"), "{msg}");

        // Right signature, other body or other secret.
        let h = headers(&[("X-Hub-Signature-256", GH_SIG)]);
        refused(github().verify(&h, b"Hello, World?", at(NOW)), 403, &[GH_SECRET]);
        let other = Auth::Github { secret: Secret::new("It's a secret to everybody") };
        refused(other.verify(&h, GH_BODY, at(NOW)), 403, &[GH_SECRET]);
    }

    // Standard Webhooks' reference vector (the libraries' `test_sign`, e.g.
    // standard-webhooks/libraries/rust/src/lib.rs).
    const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const SW_MSG_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const SW_TS: i64 = 1_649_367_553;
    const SW_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SW_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn standard() -> Auth {
        Auth::StandardWebhooks { secret: Secret::from_whsec(SW_SECRET).unwrap() }
    }

    fn sw_headers(signature: &str, ts: &str) -> Headers {
        headers(&[("webhook-id", SW_MSG_ID), ("webhook-timestamp", ts), ("webhook-signature", signature)])
    }

    #[test]
    fn standard_webhooks_published_vector() {
        let ts = SW_TS.to_string();
        standard().verify(&sw_headers(SW_SIG, &ts), SW_BODY, at(SW_TS)).unwrap();
        standard().verify(&sw_headers(SW_SIG, &ts), SW_BODY, at(SW_TS + 299)).unwrap();
        standard().verify(&sw_headers(SW_SIG, &ts), SW_BODY, at(SW_TS - 300)).unwrap();
        // The key without its prefix is the same key.
        let bare = Auth::StandardWebhooks { secret: Secret::from_whsec(&SW_SECRET[6..]).unwrap() };
        bare.verify(&sw_headers(SW_SIG, &ts), SW_BODY, at(SW_TS)).unwrap();
        // Several signatures (rotation), an asymmetric one among them: any v1 match is enough.
        let list = format!(
            "v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ= v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== {SW_SIG} v1,9DfC1c3eeOrXB6w/5dIDydLNQaEyww5KalE5jLBZucE="
        );
        standard().verify(&sw_headers(&list, &ts), SW_BODY, at(SW_TS)).unwrap();
    }

    #[test]
    fn standard_webhooks_refusals() {
        let ts = SW_TS.to_string();
        let sig_b64 = &SW_SIG[3..];
        let hidden = [&SW_SECRET[6..], sig_b64];
        let check = |sig: &str, ts: &str, now: i64, status: u16| {
            refused(standard().verify(&sw_headers(sig, ts), SW_BODY, at(now)), status, &hidden)
        };
        assert!(check("v1,", &ts, SW_TS, 403).contains("empty"));
        assert!(check("", &ts, SW_TS, 401).contains("the `webhook-signature` header is empty"));
        assert!(check("v1,tZ1I4/hDygAJgO5T", &ts, SW_TS, 403).contains("instead of 32"));
        assert!(check("v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kk", &ts, SW_TS, 403).contains("not base64"));
        assert!(check("v1,!!!!", &ts, SW_TS, 403).contains("not base64"));
        assert!(check("v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=", &ts, SW_TS, 403).contains("no `v1,`"));
        assert!(
            check(
                "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
                &ts,
                SW_TS,
                403
            )
            .contains("`v1a`")
        );
        assert!(check(&format!("v1={sig_b64}"), &ts, SW_TS, 403).contains("no `v1,`"));
        let msg = check("v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU=", &ts, SW_TS, 403);
        assert!(msg.contains("does not match (received `v1,R3PTzyf…`)"), "{msg}");
        let msg = check(
            "v1,R3PTzyfHASBKHH98a7yexTwaJ4yNIcGhFQc1yuN+BPU= v1,tFtCZ5RDCPxzWQRWXWPgrCgE2frDBe9gjpbWQxnVfsQ=",
            &ts,
            SW_TS,
            403,
        );
        assert!(msg.contains("2 `v1` signatures"), "{msg}");
        // The timestamp is signed: another one, even fresh, does not match.
        check(SW_SIG, &(SW_TS + 1).to_string(), SW_TS, 403);
        // Stale and future, with the skew in the message.
        let msg = check(SW_SIG, &ts, SW_TS + 301, 403);
        assert!(msg.contains("time in `webhook-timestamp` is 301 s in the past"), "{msg}");
        let msg = check(SW_SIG, &ts, SW_TS - 3600, 403);
        assert!(msg.contains("3600 s in the future"), "{msg}");
        // Not a number of seconds.
        for bad in ["-1649367553", "+1649367553", "1649367553.5", "16493 67553", "x", "99999999999999999999"] {
            let h = headers(&[("webhook-id", SW_MSG_ID), ("webhook-timestamp", bad), ("webhook-signature", SW_SIG)]);
            let e = standard().verify(&h, SW_BODY, at(SW_TS)).unwrap_err();
            assert_eq!(e.status(), 403, "{bad}: {e}");
        }
        // Missing id or timestamp.
        for missing in ["webhook-id", "webhook-timestamp"] {
            let h = Headers::from_pairs(sw_headers(SW_SIG, &ts).iter().filter(|(k, _)| *k != missing));
            let msg = refused(standard().verify(&h, SW_BODY, at(SW_TS)), 401, &hidden);
            assert!(msg.contains(&format!("no `{missing}` header")), "{msg}");
        }
    }

    #[test]
    fn millisecond_timestamps_are_named() {
        let ts_ms = (SW_TS * 1000).to_string();
        let id_ts_body = [SW_MSG_ID.as_bytes(), b".", ts_ms.as_bytes(), b".", SW_BODY].concat();
        let key = Secret::from_whsec(SW_SECRET).unwrap();
        let sig = format!("v1,{}", BASE64.encode(reference_hmac(key.bytes(), &id_ts_body)));
        let msg = refused(standard().verify(&sw_headers(&sig, &ts_ms), SW_BODY, at(SW_TS)), 403, &[]);
        assert!(msg.contains("milliseconds"), "{msg}");
    }

    #[test]
    fn pagerduty_rotation() {
        let body = br#"{"event":{"id":"01DEN4HPBQAAAG05V5QQYBRZMF","event_type":"incident.triggered"}}"#;
        let old = "r8V8Kk2+old-subscription-secret";
        let new = "xH1bQ9+new-subscription-secret";
        let sig_old = hex(&reference_hmac(old.as_bytes(), body));
        let sig_new = hex(&reference_hmac(new.as_bytes(), body));
        // The header as PagerDuty documents it: one string, comma-separated, no spaces.
        let rotating = headers(&[("X-PagerDuty-Signature", &format!("v1={sig_old},v1={sig_new}"))]);
        let pd = |secrets: &[&str]| Auth::Pagerduty { secrets: secrets.iter().map(|s| Secret::new(*s)).collect() };

        for secrets in [&[new][..], &[old], &[old, new], &[new, old], &["unrelated", new]] {
            pd(secrets).verify(&rotating, body, at(NOW)).unwrap();
        }
        let single = headers(&[("X-PagerDuty-Signature", &format!("v1={sig_new}"))]);
        pd(&[old, new]).verify(&single, body, at(NOW)).unwrap();
        // Spaces after commas, empty entries and other versions are tolerated.
        let loose = headers(&[("X-PagerDuty-Signature", &format!("v2=abc, v1={sig_new} ,"))]);
        pd(&[new]).verify(&loose, body, at(NOW)).unwrap();
        // Two copies of the header are refused, as on every scheme: PagerDuty sends one, and
        // which copy a verifier reads must never decide.
        let split = headers(&[
            ("X-PagerDuty-Signature", format!("v1={sig_old}").as_str()),
            ("X-PagerDuty-Signature", &format!("v1={sig_new}")),
        ]);
        let msg = refused(pd(&[new]).verify(&split, body, at(NOW)), 403, &[old, new]);
        assert!(msg.contains("sent 2 times"), "{msg}");

        let hidden = [old, new, sig_old.as_str(), sig_new.as_str()];
        let msg = refused(pd(&["unrelated"]).verify(&rotating, body, at(NOW)), 403, &hidden);
        assert!(msg.contains("2 `v1` signatures, the first `v1="), "{msg}");
        refused(pd(&[new]).verify(&rotating, b"{}", at(NOW)), 403, &hidden);
        let check = |value: &str, status| {
            let h = headers(&[("X-PagerDuty-Signature", value)]);
            refused(pd(&[new]).verify(&h, body, at(NOW)), status, &hidden)
        };
        check("", 401);
        assert!(check("v1=", 403).contains("empty"));
        assert!(check(",,,", 403).contains("no `v1=`"));
        assert!(check(&format!("v2={sig_new}"), 403).contains("no `v1=`"));
        assert!(check(&format!("v1={}", &sig_new[..32]), 403).contains("32 hex digits"));
        assert!(check(&format!("v1={}", sig_new.to_uppercase()), 403).contains("upper-case"));
        assert!(check(&format!("sha256={sig_new}"), 403).contains("no `v1=`"));
        let msg = refused(pd(&[new]).verify(&Headers::none(), body, at(NOW)), 401, &hidden);
        assert!(msg.contains("v2 (legacy) webhooks are not signed"), "{msg}");
    }

    #[test]
    fn grafana_without_timestamp() {
        let body = br#"{"receiver":"sparky","status":"firing","alerts":[]}"#;
        let secret = "grafana-hmac-secret";
        let sig = hex(&reference_hmac(secret.as_bytes(), body));
        let auth = Auth::Grafana { secret: Secret::new(secret), header: None, timestamp_header: None };
        auth.verify(&headers(&[("X-Grafana-Alerting-Signature", &sig)]), body, at(NOW)).unwrap();
        auth.verify(&headers(&[("X-Grafana-Alert-Signature", &sig)]), body, at(NOW)).unwrap();
        let hidden = [secret, sig.as_str()];
        let msg = refused(auth.verify(&Headers::none(), body, at(NOW)), 401, &hidden);
        assert!(msg.contains("no `X-Grafana-Alerting-Signature` header"), "{msg}");
        refused(auth.verify(&headers(&[("X-Grafana-Alerting-Signature", &sig)]), b"{}", at(NOW)), 403, &hidden);
        let upper = sig.to_uppercase();
        let msg =
            refused(auth.verify(&headers(&[("X-Grafana-Alerting-Signature", &upper)]), body, at(NOW)), 403, &hidden);
        assert!(msg.contains("upper-case"), "{msg}");
        let prefixed = format!("sha256={sig}");
        refused(auth.verify(&headers(&[("X-Grafana-Alerting-Signature", &prefixed)]), body, at(NOW)), 403, &hidden);

        // A configured header is the only one read.
        let custom =
            Auth::Grafana { secret: Secret::new(secret), header: Some("X-Sig".into()), timestamp_header: None };
        custom.verify(&headers(&[("x-sig", &sig)]), body, at(NOW)).unwrap();
        let msg = refused(custom.verify(&headers(&[("X-Grafana-Alerting-Signature", &sig)]), body, at(NOW)), 401, &[]);
        assert!(msg.contains("no `X-Sig` header"), "{msg}");
        // An empty name is no name, as in Grafana's settings.
        let empty = Auth::Grafana {
            secret: Secret::new(secret),
            header: Some(String::new()),
            timestamp_header: Some(" ".into()),
        };
        empty.verify(&headers(&[("X-Grafana-Alerting-Signature", &sig)]), body, at(NOW)).unwrap();
    }

    #[test]
    fn grafana_with_timestamp() {
        let body = br#"{"receiver":"sparky","status":"resolved","alerts":[]}"#;
        let secret = "grafana-hmac-secret";
        let ts = NOW.to_string();
        let signed = [ts.as_bytes(), b":", body].concat();
        let sig = hex(&reference_hmac(secret.as_bytes(), &signed));
        let auth = Auth::Grafana {
            secret: Secret::new(secret),
            header: None,
            timestamp_header: Some("X-Grafana-Alerting-Timestamp".into()),
        };
        let h = |sig: &str, ts: &str| {
            headers(&[("X-Grafana-Alerting-Signature", sig), ("X-Grafana-Alerting-Timestamp", ts)])
        };
        auth.verify(&h(&sig, &ts), body, at(NOW)).unwrap();
        auth.verify(&h(&sig, &ts), body, at(NOW + 300)).unwrap();

        let hidden = [secret, sig.as_str()];
        let msg = refused(auth.verify(&h(&sig, &ts), body, at(NOW + 301)), 403, &hidden);
        assert!(msg.contains("time in `X-Grafana-Alerting-Timestamp` is 301 s in the past"), "{msg}");
        let msg = refused(auth.verify(&h(&sig, &ts), body, at(NOW - 400)), 403, &hidden);
        assert!(msg.contains("400 s in the future"), "{msg}");
        let msg =
            refused(auth.verify(&headers(&[("X-Grafana-Alerting-Signature", &sig)]), body, at(NOW)), 401, &hidden);
        assert!(msg.contains("no `X-Grafana-Alerting-Timestamp` header"), "{msg}");
        refused(auth.verify(&h(&sig, "soon"), body, at(NOW)), 403, &hidden);
        // Another timestamp (signed one is `ts`) or a body-only signature do not match.
        refused(auth.verify(&h(&sig, &(NOW + 1).to_string()), body, at(NOW)), 403, &hidden);
        let body_only = hex(&reference_hmac(secret.as_bytes(), body));
        let msg = refused(auth.verify(&h(&body_only, &ts), body, at(NOW)), 403, &hidden);
        assert!(msg.contains("timestamp header is set on both sides or on neither"), "{msg}");
    }

    #[test]
    fn bearer() {
        let auth = Auth::Bearer { token: Secret::new("t0ken-abc") };
        auth.verify(&headers(&[("Authorization", "Bearer t0ken-abc")]), b"", at(NOW)).unwrap();
        auth.verify(&headers(&[("authorization", "bearer t0ken-abc")]), b"", at(NOW)).unwrap();
        let check = |value: &str, status| {
            refused(auth.verify(&headers(&[("Authorization", value)]), b"", at(NOW)), status, &["t0ken-abc", "t0ken"])
        };
        check("Bearer t0ken-abd", 403);
        check("Bearer t0ken-ab", 403);
        check("Bearer t0ken-abc0", 403);
        check("Bearer ", 401);
        check("Bearer", 401);
        check("", 401);
        assert!(check("t0ken-abc", 403).contains("no scheme"));
        assert!(check("Basic dDBrZW4tYWJj", 403).contains("`Basic` scheme"));
        assert!(check("Bearer\tt0ken-abc", 403).contains("no scheme"));
        let msg = refused(auth.verify(&Headers::none(), b"", at(NOW)), 401, &["t0ken-abc"]);
        assert!(msg.contains("`Authorization: Bearer <token>`"), "{msg}");
        // A bare token in an unknown scheme position is never echoed.
        let msg = check("s3cr3t-token-sent-alone other", 403);
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn basic() {
        let auth = Auth::Basic { username: "sparky".into(), password: Secret::new("pa:ss") };
        let good = format!("Basic {}", BASE64.encode("sparky:pa:ss"));
        auth.verify(&headers(&[("Authorization", &good)]), b"", at(NOW)).unwrap();
        let check = |value: &str, status| {
            refused(auth.verify(&headers(&[("Authorization", value)]), b"", at(NOW)), status, &["pa:ss"])
        };
        check(&format!("Basic {}", BASE64.encode("sparky:pa:sS")), 403);
        check(&format!("Basic {}", BASE64.encode("Sparky:pa:ss")), 403);
        check(&format!("Basic {}", BASE64.encode("sparky:")), 403);
        check(&format!("Basic {}", BASE64.encode("")), 401);
        assert!(check("Basic not*base64", 403).contains("not base64"));
        assert!(check("Bearer xyz", 403).contains("`Bearer` scheme"));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let all = [
            Auth::Bearer { token: Secret::new("tok-SECRET") },
            Auth::Basic { username: "u".into(), password: Secret::new("pw-SECRET") },
            Auth::Github { secret: Secret::new("gh-SECRET") },
            Auth::Pagerduty { secrets: vec![Secret::new("pd1-SECRET"), Secret::new("pd2-SECRET")] },
            Auth::Grafana { secret: Secret::new("gr-SECRET"), header: None, timestamp_header: None },
            Auth::StandardWebhooks { secret: Secret::from_whsec(SW_SECRET).unwrap() },
        ];
        for auth in &all {
            let debug = format!("{auth:?} {auth:#?}");
            assert!(!debug.contains("SECRET") && !debug.contains("C2FVsBQ"), "{debug}");
            assert!(debug.contains("<redacted>"), "{debug}");
            assert!(!auth.scheme().is_empty());
        }
    }

    #[test]
    fn configuration() {
        let a = parse(r#"{type: github, secret: "abc"}"#).unwrap();
        assert_eq!(a.scheme(), "github");
        let a = parse("type: pagerduty\nsecrets: [a, b]\n").unwrap();
        assert!(matches!(a, Auth::Pagerduty { ref secrets } if secrets.len() == 2));
        let a = parse("{type: grafana, secret: s, timestamp_header: X-Grafana-Alerting-Timestamp}").unwrap();
        assert!(matches!(a, Auth::Grafana { header: None, timestamp_header: Some(_), .. }));
        let a = parse(&format!("{{type: standard_webhooks, secret: \"{SW_SECRET}\"}}")).unwrap();
        assert_eq!(a.scheme(), "standard_webhooks");
        parse("{type: basic, username: u, password: p}").unwrap();
        parse("{type: bearer, token: t}").unwrap();

        for (yaml, needle) in [
            ("{type: github, secret: s, extra: 1}", "unknown field `extra`"),
            ("{type: github, secret: \"\"}", "the secret is empty"),
            ("{type: bearer, token: \"\"}", "the secret is empty"),
            ("{type: pagerduty, secrets: []}", "empty list"),
            ("{type: pagerduty, secrets: [\"\"]}", "the secret is empty"),
            ("{type: standard_webhooks, secret: \"whsec_***\"}", "not `whsec_` followed by base64"),
            ("{type: standard_webhooks, secret: \"whsec_\"}", "empty"),
            ("{type: gitlab, secret: s}", "unknown variant `gitlab`"),
            ("{type: github}", "missing field `secret`"),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.contains(needle), "{yaml}: {e}");
            assert!(!e.contains("whsec_***") && !e.contains("Secret"), "{yaml}: {e}");
        }
    }

    /// Every `auth` in docs/authentication.md's YAML blocks reads, with `${NAME}` standing for
    /// a secret that is valid for every scheme (base64, for `standard_webhooks`).
    #[test]
    fn documented_examples_parse() {
        let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/authentication.md")).unwrap();
        let mut blocks = Vec::new();
        let mut current: Option<String> = None;
        for line in page.lines() {
            match &mut current {
                None if line.trim() == "```yaml" => current = Some(String::new()),
                Some(text) if line.trim_start().starts_with("```") => blocks.push(std::mem::take(text)),
                Some(text) => {
                    text.push_str(line);
                    text.push('\n');
                }
                None => {}
            }
            if line.trim_start().starts_with("```") && line.trim() != "```yaml" {
                current = None;
            }
        }
        let mut parsed = 0;
        for block in &blocks {
            let mut text = block.clone();
            while let Some(start) = text.find("${") {
                let end = text[start..].find('}').map_or(text.len(), |e| start + e + 1);
                text.replace_range(start..end, "c2VjcmV0LWZvci1kb2NzLWV4YW1wbGVz");
            }
            let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}:\n{block}"));
            let mut auths: Vec<serde_yaml::Value> = doc.get("auth").cloned().into_iter().collect();
            if let Some(serde_yaml::Value::Mapping(sources)) = doc.get("sources") {
                auths.extend(sources.values().filter_map(|s| s.get("auth").cloned()));
            }
            assert!(!auths.is_empty(), "a YAML block without `auth`:\n{block}");
            for auth in auths {
                serde_yaml::from_value::<Auth>(auth).unwrap_or_else(|e| panic!("{e}:\n{block}"));
                parsed += 1;
            }
        }
        assert!(parsed >= 7, "{parsed} examples");
    }

    #[test]
    fn odd_header_bytes_never_panic() {
        let mut values: Vec<String> =
            ["", " ", "\u{0}", "é", "sha256=é", "v1=é,v1=", "v1,é", "Bearer é", "Basic é", "é é", ",", "=", "v1,="]
                .iter()
                .map(|s| s.to_string())
                .collect();
        values.push("9".repeat(100));
        let all = [
            Auth::Bearer { token: Secret::new("t") },
            Auth::Basic { username: "u".into(), password: Secret::new("p") },
            github(),
            Auth::Pagerduty { secrets: vec![Secret::new("p")] },
            Auth::Grafana { secret: Secret::new("g"), header: None, timestamp_header: Some("ts".into()) },
            standard(),
        ];
        for v in values.iter().map(String::as_str).chain(["sha256=ÿÿÿÿ"]) {
            let names = [
                "Authorization",
                "X-Hub-Signature-256",
                "X-PagerDuty-Signature",
                "X-Grafana-Alerting-Signature",
                "ts",
                "webhook-id",
                "webhook-timestamp",
                "webhook-signature",
            ];
            let h = Headers::from_pairs(names.iter().map(|n| (*n, v.to_string())));
            for auth in &all {
                if let Err(e) = auth.verify(&h, v.as_bytes(), at(NOW)) {
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
