//! The token inventory: API tokens, who owns them and when they expire — what PB-003 (API
//! Token Expiry) reads. Three sources, each documented in `docs/catalog.md`:
//!
//! - the catalog: a `Resource` of `type: api-token` (owner `spec.owner`, expiry
//!   `sparky.dev/expires-at`);
//! - GitHub: the expiry GitHub reports for Sparky's own token, in the
//!   `github-authentication-token-expiration` response header ([`from_github_header`]);
//! - an HTTP inventory (a secrets manager's lookup endpoint): a JSON document whose token list
//!   and fields are found by JSON pointers ([`HttpMapping`], [`from_http_inventory`]).
//!
//! Nothing here does I/O: the daemon fetches, this reads what was fetched.

use super::Catalog;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;

/// The inventory as read at one time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Inventory {
    pub tokens: Vec<TokenInfo>,
    /// What went wrong reading the sources (a source down, an item without a name).
    pub problems: Vec<String>,
    /// Every source answered with a token list: a token that is not in it is not there
    /// (only then are the incidents of tokens that left the inventory closed).
    pub complete: bool,
}

/// One token of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub name: String,
    /// An entity ref (`group:team-payments`) or whatever the source names.
    pub owner: Option<String>,
    /// `None`: the source gives no expiry (reported once as such).
    pub expires_at: Option<DateTime<Utc>>,
    /// Where it was found: `catalog tokens.yaml:12`, `github`, `http vault`.
    pub source: String,
}

/// The catalog's tokens.
pub fn from_catalog(catalog: &Catalog) -> Vec<TokenInfo> {
    catalog
        .tokens()
        .iter()
        .map(|t| TokenInfo {
            name: t.name.clone(),
            owner: t.owner.clone(),
            expires_at: t.expires_at,
            source: format!("catalog {}:{}", t.file, t.line),
        })
        .collect()
}

/// Sparky's own GitHub token, from the value of the `github-authentication-token-expiration`
/// header (`2026-12-31 23:59:59 UTC`, or with a numeric offset `+0100`). A token without the
/// header does not expire (a classic token without expiry, or an app token) and is reported as
/// such; a value that does not read is an error naming it.
pub fn from_github_header(name: &str, owner: &str, header: Option<&str>) -> Result<TokenInfo, String> {
    let expires_at = match header.map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(parse_github_time(text).ok_or_else(|| {
            format!("GitHub's `github-authentication-token-expiration` header `{text}` is not a time Sparky reads")
        })?),
    };
    Ok(TokenInfo { name: name.to_string(), owner: Some(owner.to_string()), expires_at, source: "github".into() })
}

fn parse_github_time(text: &str) -> Option<DateTime<Utc>> {
    if let Some(utc) = text.strip_suffix(" UTC") {
        return NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.and_utc());
    }
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Where an HTTP inventory's answer holds its tokens: JSON pointers (RFC 6901), the list's
/// from the document root, the fields' from each item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpMapping {
    /// The token list, e.g. `/data/keys`; `""` when the answer is the list itself.
    #[serde(default)]
    pub items: String,
    /// The token's name in an item, e.g. `/name`.
    pub name: String,
    /// Its owner, e.g. `/metadata/owner`.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its expiry: an RFC 3339 time, a date, or Unix seconds, e.g. `/expires_at`.
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl HttpMapping {
    /// Checks that every pointer is a JSON pointer; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let fields = [("items", Some(&self.items)), ("name", Some(&self.name)), ("owner", self.owner.as_ref())];
        let fields = fields.into_iter().chain([("expires_at", self.expires_at.as_ref())]);
        for (field, pointer) in fields {
            if let Some(p) = pointer
                && !(p.is_empty() || p.starts_with('/'))
            {
                return Err(format!("`{field}`: `{p}` is not a JSON pointer; write it from the root, e.g. `/name`"));
            }
        }
        if self.name.is_empty() {
            return Err("`name`: the pointer to each token's name is empty".into());
        }
        Ok(())
    }
}

/// The tokens of an HTTP inventory's answer. Items without a name are skipped with a
/// problem; an expiry that does not read is a problem too (and the token is reported with no
/// expiry rather than dropped).
pub fn from_http_inventory(source: &str, body: &Value, mapping: &HttpMapping) -> (Vec<TokenInfo>, Vec<String>) {
    let mut problems = Vec::new();
    let Some(items) = body.pointer(&mapping.items).and_then(Value::as_array) else {
        problems.push(format!("`{source}`: no list at `{}` in its answer", mapping.items));
        return (Vec::new(), problems);
    };
    let text = |item: &Value, pointer: &Option<String>| {
        pointer.as_ref().and_then(|p| item.pointer(p)).and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let mut tokens = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(name) = text(item, &Some(mapping.name.clone())).filter(|n| !n.trim().is_empty()) else {
            problems.push(format!("`{source}`: item {i} has no name at `{}`", mapping.name));
            continue;
        };
        let expires_at = match text(item, &mapping.expires_at) {
            None => None,
            Some(t) => {
                let parsed = parse_expiry(&t);
                if parsed.is_none() {
                    problems.push(format!("`{source}`: the expiry `{t}` of `{name}` is not a time"));
                }
                parsed
            }
        };
        tokens.push(TokenInfo {
            name,
            owner: text(item, &mapping.owner),
            expires_at,
            source: format!("http {source}"),
        });
    }
    (tokens, problems)
}

/// A notice an owner gets about a token: once per token, expiry and mark.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NoticeKey {
    pub token: String,
    /// The expiry it is about (RFC 3339), `""` for a token without one: a renewed token (a
    /// new expiry) is told about afresh.
    pub expires_at: String,
    /// The threshold crossed (`30d`, `7d`), `expired`, or `no expiry`.
    pub mark: String,
}

/// A notice due now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub key: NoticeKey,
    pub owner: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whole days left (negative once expired).
    pub days_left: Option<i64>,
    pub source: String,
}

/// The notices due at `now`: for each token expiring within `within`, the tightest threshold
/// it has crossed (`thresholds` as `(text, ms)`; a run that missed a threshold does not send
/// the looser one late), `expired` once it has expired, and `no expiry` once for a token
/// without one — each only if not in `sent`. With no thresholds, entering `within` is the
/// one threshold.
pub fn due_notices(
    tokens: &[TokenInfo],
    within: (&str, u64),
    thresholds: &[(String, u64)],
    now: DateTime<Utc>,
    sent: &HashSet<NoticeKey>,
) -> Vec<Notice> {
    let mut out = Vec::new();
    for t in tokens {
        let expiry_text = t.expires_at.map(|e| e.to_rfc3339()).unwrap_or_default();
        let mark = match t.expires_at {
            None => Some("no expiry".to_string()),
            Some(e) if e <= now => Some("expired".to_string()),
            Some(e) => {
                let left = (e - now).num_milliseconds().max(0) as u64;
                if left > within.1 {
                    None
                } else {
                    thresholds
                        .iter()
                        .filter(|(_, ms)| left <= *ms)
                        .min_by_key(|(_, ms)| *ms)
                        .map(|(text, _)| text.clone())
                        .or_else(|| thresholds.is_empty().then(|| within.0.to_string()))
                }
            }
        };
        let Some(mark) = mark else { continue };
        let key = NoticeKey { token: t.name.clone(), expires_at: expiry_text, mark };
        if sent.contains(&key) {
            continue;
        }
        out.push(Notice {
            key,
            owner: t.owner.clone(),
            expires_at: t.expires_at,
            days_left: t.expires_at.map(|e| (e - now).num_days()),
            source: t.source.clone(),
        });
    }
    out
}

/// How `notify.token_owners` treats the inventory: its `within`, its thresholds, and whether
/// the last threshold files a ticket (`jira` among its channels).
#[derive(Debug, Clone, PartialEq)]
pub struct NoticePolicy {
    /// `("30d", ms)`.
    pub within: (String, u64),
    /// `[("30d", ms), ("14d", ms), ...]`, any order.
    pub thresholds: Vec<(String, u64)>,
    /// The last threshold files a Jira ticket for the token.
    pub tickets: bool,
}

/// What a notice raises beyond the owner's message: the token's own incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Raise {
    /// The last threshold crossed: a Jira ticket for the owner's team, no page.
    Ticket,
    /// The token expired: escalated with the playbook's `l3` settings (Jira, a page when
    /// it pages, the escalation channel).
    Escalate,
}

impl Raise {
    pub fn as_str(self) -> &'static str {
        match self {
            Raise::Ticket => "ticket",
            Raise::Escalate => "escalate",
        }
    }
}

impl NoticePolicy {
    /// The last threshold (the smallest), `within` when there are none.
    pub fn last(&self) -> (&str, u64) {
        self.thresholds
            .iter()
            .min_by_key(|(_, ms)| *ms)
            .map_or((self.within.0.as_str(), self.within.1), |(t, ms)| (t.as_str(), *ms))
    }

    /// The notices due at `now` ([`due_notices`]).
    pub fn due(&self, tokens: &[TokenInfo], now: DateTime<Utc>, sent: &HashSet<NoticeKey>) -> Vec<Notice> {
        due_notices(tokens, (&self.within.0, self.within.1), &self.thresholds, now, sent)
    }

    /// What the notices `due` raise, one per token (two sources listing one token with two
    /// expiries: the earliest).
    pub fn raises(&self, due: &[Notice]) -> Vec<(Notice, Raise)> {
        let mut out: Vec<(Notice, Raise)> = Vec::new();
        for n in due {
            let Some(how) = self.raise(n) else { continue };
            match out.iter_mut().find(|(o, _)| o.key.token == n.key.token) {
                Some(o) if n.expires_at < o.0.expires_at => *o = (n.clone(), how),
                Some(_) => {}
                None => out.push((n.clone(), how)),
            }
        }
        out
    }

    /// What `notice` raises: an expired token escalates; the last threshold files a ticket
    /// when tickets are wanted.
    pub fn raise(&self, notice: &Notice) -> Option<Raise> {
        match notice.key.mark.as_str() {
            "expired" => Some(Raise::Escalate),
            m if self.tickets && m == self.last().0 => Some(Raise::Ticket),
            _ => None,
        }
    }

    /// The token incidents that still stand at `now`, by key: each token that has expired,
    /// or (with tickets) is past its last threshold. An open token incident not among them
    /// was renewed or left the inventory.
    pub fn standing(&self, tokens: &[TokenInfo], now: DateTime<Utc>) -> HashSet<String> {
        let last = self.last().1;
        tokens
            .iter()
            .filter_map(|t| {
                let e = t.expires_at?;
                let left = (e - now).num_milliseconds();
                (left <= 0 || (self.tickets && left as u64 <= last)).then(|| token_incident(&t.name, e).1)
            })
            .collect()
    }
}

/// The incident of a token's expiry: its fingerprint (`token/<name>`) and key (one per token
/// and expiry: a renewed token that nears its new expiry is a new incident).
pub fn token_incident(name: &str, expires_at: DateTime<Utc>) -> (String, String) {
    let fingerprint = format!("token/{name}");
    let key = format!("SPK-{}", &crate::event::stable_id(&[&fingerprint, &expires_at.to_rfc3339()])[..12]);
    (fingerprint, key)
}

/// What a run knows about which token incidents may close.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settle {
    /// The keys of the token incidents that still stand ([`NoticePolicy::standing`]).
    pub standing: HashSet<String>,
    /// The fingerprints of the tokens the inventory lists with an expiry that reads.
    pub dated: HashSet<String>,
    /// The fingerprints of every token the inventory lists.
    pub present: HashSet<String>,
    /// Every source answered whole, without a problem: a token not listed is gone.
    pub complete: bool,
}

impl Settle {
    pub fn of(policy: &NoticePolicy, inventory: &Inventory, now: DateTime<Utc>) -> Settle {
        let fingerprint = |t: &TokenInfo| format!("token/{}", t.name);
        Settle {
            standing: policy.standing(&inventory.tokens, now),
            dated: inventory.tokens.iter().filter(|t| t.expires_at.is_some()).map(fingerprint).collect(),
            present: inventory.tokens.iter().map(fingerprint).collect(),
            complete: inventory.complete,
        }
    }
}

/// Which open token incidents (`(key, fingerprint)`) close when a run raises `raised`
/// (`(key, fingerprint)`): one whose token is raised again for another expiry, or is listed
/// with an expiry whose incident no longer stands (renewed); and, when the inventory is
/// complete, one whose token is not listed at all (gone). A token listed without a readable
/// expiry closes nothing: an unreadable field is not a renewal.
pub fn closing(open: &[(String, String)], raised: &[(String, String)], settle: &Settle) -> Vec<String> {
    open.iter()
        .filter(|(key, fingerprint)| {
            if raised.iter().any(|(k, _)| k == key) {
                return false;
            }
            let renewed = raised.iter().any(|(_, f)| f == fingerprint)
                || (settle.dated.contains(fingerprint) && !settle.standing.contains(key));
            let gone = settle.complete && !settle.present.contains(fingerprint);
            renewed || gone
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// `notify.token_owners` without I/O, for `sparky test`: an inventory, the notices
/// remembered and the token incidents open, run after run as the daemon's desk and store
/// keep them (the same [`NoticePolicy`] and [`closing`]).
#[derive(Debug, Clone, Default)]
pub struct DeskSimulation {
    pub tokens: Vec<TokenInfo>,
    pub sent: HashSet<NoticeKey>,
    /// Open token incidents: `(key, fingerprint)`.
    pub open: Vec<(String, String)>,
}

/// What one simulated run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatedRun {
    pub notices: Vec<Notice>,
    pub raised: Vec<(Notice, Raise)>,
    /// The tokens whose incidents closed.
    pub closed: Vec<String>,
}

impl DeskSimulation {
    /// One run at `now`; `delivered`: the notices went out (a run whose Slack failed raised
    /// its incidents but is told again next time).
    pub fn run(&mut self, policy: &NoticePolicy, now: DateTime<Utc>, delivered: bool) -> SimulatedRun {
        let notices = policy.due(&self.tokens, now, &self.sent);
        let raised = policy.raises(&notices);
        let raised_keys: Vec<(String, String)> = raised
            .iter()
            .map(|(n, _)| {
                let (fingerprint, key) = token_incident(&n.key.token, n.expires_at.unwrap_or(now));
                (key, fingerprint)
            })
            .collect();
        let inventory = Inventory { tokens: self.tokens.clone(), problems: Vec::new(), complete: true };
        let closed_keys = closing(&self.open, &raised_keys, &Settle::of(policy, &inventory, now));
        let mut closed = Vec::new();
        self.open.retain(|(key, fingerprint)| {
            let close = closed_keys.contains(key);
            if close {
                closed.push(fingerprint.trim_start_matches("token/").to_string());
            }
            !close
        });
        for (key, fingerprint) in raised_keys {
            if !self.open.iter().any(|(k, _)| *k == key) {
                self.open.push((key, fingerprint));
            }
        }
        if delivered {
            self.sent.extend(notices.iter().map(|n| n.key.clone()));
        }
        SimulatedRun { notices, raised, closed }
    }
}

/// The time left until `expires_at`, in the largest whole unit: `3 days`, `10 hours`,
/// `25 minutes` (`0 minutes` once past).
pub fn time_left(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = expires_at - now;
    let (n, unit) = if left.num_days() >= 1 {
        (left.num_days(), "day")
    } else if left.num_hours() >= 1 {
        (left.num_hours(), "hour")
    } else {
        (left.num_minutes().max(0), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The event a token incident stands for: what its ticket and page say.
pub fn token_event(notice: &Notice, raise: Raise, now: DateTime<Utc>) -> crate::event::Event {
    use crate::event::{Event, Kind, Severity, Status};
    let expires_at = notice.expires_at.unwrap_or(now);
    let (fingerprint, _) = token_incident(&notice.key.token, expires_at);
    let summary = match raise {
        Raise::Escalate => format!("API token `{}` expired at {}", notice.key.token, expires_at.to_rfc3339()),
        Raise::Ticket => format!(
            "API token `{}` expires in {} ({}): renew it",
            notice.key.token,
            time_left(expires_at, now),
            expires_at.to_rfc3339()
        ),
    };
    let mut labels = std::collections::BTreeMap::from([
        ("token".to_string(), notice.key.token.clone()),
        ("expires_at".to_string(), expires_at.to_rfc3339()),
        ("threshold".to_string(), notice.key.mark.clone()),
        ("inventory".to_string(), notice.source.clone()),
    ]);
    if let Some(owner) = &notice.owner {
        labels.insert("owner".into(), owner.clone());
    }
    Event {
        id: crate::event::stable_id(&[&fingerprint, &expires_at.to_rfc3339(), raise.as_str()]),
        source: "sparky".into(),
        kind: Kind::Alert,
        status: Status::Firing,
        fingerprint,
        service: None,
        severity: match raise {
            Raise::Escalate => Severity::High,
            Raise::Ticket => Severity::Warning,
        },
        summary,
        labels,
        annotations: std::collections::BTreeMap::new(),
        links: Vec::new(),
        occurred_at: now,
        received_at: now,
        delivery_id: None,
        payload: serde_json::Value::Null,
    }
}

/// An RFC 3339 time, a date (midnight UTC), or Unix seconds.
fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_notice_per_threshold_crossed_over_simulated_days() {
        let start: DateTime<Utc> = "2026-11-01T09:00:00Z".parse().unwrap();
        let token = |name: &str, days: i64| TokenInfo {
            name: name.into(),
            owner: Some("group:team".into()),
            expires_at: Some(start + chrono::Duration::days(days)),
            source: "catalog".into(),
        };
        let tokens = vec![
            token("stripe", 40),
            TokenInfo { name: "legacy".into(), owner: None, expires_at: None, source: "http vault".into() },
        ];
        let day = 86_400_000;
        let thresholds: Vec<(String, u64)> =
            [("30d", 30), ("14d", 14), ("7d", 7), ("1d", 1)].iter().map(|(t, d)| (t.to_string(), d * day)).collect();
        let mut sent = std::collections::HashSet::new();
        let mut told = Vec::new();
        // A daily run for 45 days, remembering what was sent.
        for d in 0..45 {
            let now = start + chrono::Duration::days(d);
            for n in due_notices(&tokens, ("30d", 30 * day), &thresholds, now, &sent) {
                told.push((d, n.key.token.clone(), n.key.mark.clone()));
                sent.insert(n.key);
            }
        }
        let told: Vec<(i64, &str, &str)> = told.iter().map(|(d, t, m)| (*d, t.as_str(), m.as_str())).collect();
        assert_eq!(
            told,
            [
                (0, "legacy", "no expiry"),
                (10, "stripe", "30d"),
                (26, "stripe", "14d"),
                (33, "stripe", "7d"),
                (39, "stripe", "1d"),
                (40, "stripe", "expired"),
            ]
        );
        // Down for a week around the 7-day mark: the run after it sends the tightest
        // threshold crossed, not the missed one late.
        let mut sent = std::collections::HashSet::new();
        let late = start + chrono::Duration::days(38);
        let n = due_notices(&tokens[..1], ("30d", 30 * day), &thresholds, late, &sent);
        assert_eq!(n.iter().map(|n| n.key.mark.as_str()).collect::<Vec<_>>(), ["7d"]);
        sent.insert(n[0].key.clone());
        // Renewed (a new expiry): told afresh when it nears again.
        let renewed = vec![token("stripe", 400)];
        assert!(due_notices(&renewed, ("30d", 30 * day), &thresholds, late, &sent).is_empty());
        let near = start + chrono::Duration::days(372);
        assert_eq!(due_notices(&renewed, ("30d", 30 * day), &thresholds, near, &sent).len(), 1);
    }

    #[test]
    fn the_last_threshold_tickets_expiry_escalates_and_renewal_closes() {
        let start: DateTime<Utc> = "2026-11-01T09:00:00Z".parse().unwrap();
        let day = 86_400_000;
        let policy = NoticePolicy {
            within: ("30d".into(), 30 * day),
            thresholds: [("7d", 7), ("1d", 1), ("30d", 30)].iter().map(|(t, d)| (t.to_string(), d * day)).collect(),
            tickets: true,
        };
        assert_eq!(policy.last(), ("1d", day));
        let token = |days: i64| TokenInfo {
            name: "stripe".into(),
            owner: Some("group:team".into()),
            expires_at: Some(start + chrono::Duration::days(days)),
            source: "catalog".into(),
        };
        let mut desk = DeskSimulation { tokens: vec![token(3)], ..DeskSimulation::default() };
        let marks = |run: &SimulatedRun| -> Vec<String> {
            run.raised.iter().map(|(n, r)| format!("{} {}", n.key.mark, r.as_str())).collect()
        };
        assert!(marks(&desk.run(&policy, start, true)).is_empty());
        let day2 = start + chrono::Duration::days(2);
        assert_eq!(marks(&desk.run(&policy, day2, true)), ["1d ticket"]);
        assert!(marks(&desk.run(&policy, day2, true)).is_empty(), "raised once");
        let expired = desk.run(&policy, start + chrono::Duration::days(4), true);
        assert_eq!(marks(&expired), ["expired escalate"]);
        assert_eq!(desk.open.len(), 1, "the ticket's incident is the expiry's");
        // Renewed: the incident closes; without tickets, only an expired token stands.
        desk.tokens = vec![token(400)];
        let renewed = desk.run(&policy, start + chrono::Duration::days(5), true);
        assert_eq!(renewed.closed, ["stripe"]);
        assert!(desk.open.is_empty());
        let quiet = NoticePolicy { tickets: false, ..policy.clone() };
        assert!(quiet.standing(&[token(1)], start).is_empty());
        assert_eq!(quiet.standing(&[token(-1)], start).len(), 1);
        // An incomplete inventory closes only what is listed with a new expiry; a token
        // listed without a readable expiry closes nothing.
        let open = vec![("SPK-a".to_string(), "token/x".to_string()), ("SPK-b".to_string(), "token/y".to_string())];
        let mut settle = Settle::default();
        assert!(closing(&open, &[], &settle).is_empty());
        assert_eq!(closing(&open, &[("SPK-c".into(), "token/y".into())], &settle), ["SPK-b"]);
        settle.present.insert("token/x".into());
        assert!(closing(&open, &[], &settle).is_empty(), "x has no readable expiry, y is not listed");
        settle.dated.insert("token/x".into());
        assert_eq!(closing(&open, &[], &settle), ["SPK-a"], "x renewed");
        settle.standing.insert("SPK-a".into());
        settle.complete = true;
        assert_eq!(closing(&open, &[], &settle), ["SPK-b"], "y gone from a complete inventory");
    }

    #[test]
    fn one_token_listed_twice_raises_once_for_its_earliest_expiry() {
        let now: DateTime<Utc> = "2026-11-01T09:00:00Z".parse().unwrap();
        let day = 86_400_000;
        let policy =
            NoticePolicy { within: ("30d".into(), 30 * day), thresholds: vec![("1d".into(), day)], tickets: true };
        let listed = |hours: i64, source: &str| TokenInfo {
            name: "stripe".into(),
            owner: None,
            expires_at: Some(now + chrono::Duration::hours(hours)),
            source: source.into(),
        };
        let due = policy.due(&[listed(-2, "vault"), listed(-5, "catalog")], now, &HashSet::new());
        assert_eq!(due.len(), 2);
        let raised = policy.raises(&due);
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].0.source, "catalog");
    }

    #[test]
    fn time_left_reads_in_the_largest_whole_unit() {
        let now: DateTime<Utc> = "2026-11-01T09:00:00Z".parse().unwrap();
        let at = |m: i64| now + chrono::Duration::minutes(m);
        assert_eq!(time_left(at(3 * 1440 + 5), now), "3 days");
        assert_eq!(time_left(at(1440), now), "1 day");
        assert_eq!(time_left(at(600), now), "10 hours");
        assert_eq!(time_left(at(25), now), "25 minutes");
        assert_eq!(time_left(at(-5), now), "0 minutes");
    }

    #[test]
    fn github_reports_the_expiry_in_its_own_format() {
        let t = from_github_header("sparky", "group:platform", Some("2026-12-31 23:59:59 UTC")).unwrap();
        assert_eq!(t.expires_at.unwrap().to_rfc3339(), "2026-12-31T23:59:59+00:00");
        let t = from_github_header("sparky", "group:platform", Some("2026-12-31 23:59:59 +0100")).unwrap();
        assert_eq!(t.expires_at.unwrap().to_rfc3339(), "2026-12-31T22:59:59+00:00");
        assert_eq!(from_github_header("sparky", "group:platform", None).unwrap().expires_at, None);
        assert!(
            from_github_header("sparky", "group:platform", Some("next tuesday")).unwrap_err().contains("next tuesday")
        );
    }

    #[test]
    fn an_http_inventory_is_read_through_its_pointers() {
        let body = json!({ "data": { "keys": [
            { "id": "stripe", "meta": { "owner": "group:payments" }, "expiry": "2026-12-15" },
            { "id": "sendgrid", "expiry": 1798761600 },
            { "id": "legacy" },
            { "meta": {} },
            { "id": "bad", "expiry": "soon" },
        ] } });
        let mapping = HttpMapping {
            items: "/data/keys".into(),
            name: "/id".into(),
            owner: Some("/meta/owner".into()),
            expires_at: Some("/expiry".into()),
        };
        assert!(mapping.validate().is_ok());
        let (tokens, problems) = from_http_inventory("vault", &body, &mapping);
        let names: Vec<&str> = tokens.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["stripe", "sendgrid", "legacy", "bad"]);
        assert_eq!(tokens[0].owner.as_deref(), Some("group:payments"));
        assert_eq!(tokens[0].expires_at.unwrap().to_rfc3339(), "2026-12-15T00:00:00+00:00");
        assert_eq!(tokens[1].expires_at.unwrap().to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!((tokens[2].expires_at, tokens[3].expires_at), (None, None));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("item 3") && problems[1].contains("`soon`"), "{problems:?}");
        let (none, problems) = from_http_inventory("vault", &json!({ "other": [] }), &mapping);
        assert!(none.is_empty() && problems[0].contains("/data/keys"));
        let bad = HttpMapping { items: "data".into(), ..mapping };
        assert!(bad.validate().unwrap_err().contains("`items`"));
    }
}
