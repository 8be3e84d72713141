//! Freeze windows: times no L1 runs (a release freeze, a weekend, a sale). Either one span
//! (`from` .. `until`) or a recurring one (`cron` start, `for` how long, in `tz`).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::str::FromStr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub name: String,
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
    /// When a recurring window starts: five cron fields.
    #[serde(default)]
    pub cron: Option<String>,
    /// How long a recurring window lasts.
    #[serde(default, rename = "for")]
    pub lasts: Option<String>,
    /// The cron's time zone; UTC when left out.
    #[serde(default)]
    pub tz: Option<String>,
}

impl FreezeWindow {
    pub fn validate(&self) -> Result<(), String> {
        match (&self.from, &self.until, &self.cron, &self.lasts) {
            (Some(f), Some(u), None, None) if f < u => Ok(()),
            (Some(_), Some(_), None, None) => Err("`from` must be before `until`".into()),
            (None, None, Some(c), Some(l)) => {
                croner::Cron::from_str(c).map_err(|e| format!("`cron`: `{c}` is not a cron schedule: {e}"))?;
                if crate::dsl::parse_duration(l).is_none_or(|ms| ms == 0) {
                    return Err(format!("`for`: `{l}` is not a duration; write e.g. `62h`"));
                }
                if let Some(tz) = &self.tz {
                    chrono_tz::Tz::from_str(tz).map_err(|_| format!("`tz`: unknown time zone `{tz}`"))?;
                }
                Ok(())
            }
            _ => Err("give either `from` and `until`, or `cron` and `for` (with an optional `tz`)".into()),
        }
    }

    /// When it is in force at `now`: `freeze "weekend" until 2026-11-30T06:00:00+00:00`.
    pub fn in_force(&self, now: DateTime<Utc>) -> Option<String> {
        let until = match (&self.from, &self.until, &self.cron, &self.lasts) {
            (Some(f), Some(u), _, _) => (*f <= now && now < *u).then_some(*u)?,
            (_, _, Some(c), Some(l)) => {
                let cron = croner::Cron::from_str(c).ok()?;
                let lasts = chrono::Duration::milliseconds(crate::dsl::parse_duration(l)? as i64);
                let tz = self.tz.as_deref().and_then(|t| chrono_tz::Tz::from_str(t).ok()).unwrap_or(chrono_tz::UTC);
                // The first start strictly after `now - lasts` (a window ends before `start + lasts`):
                // in force when it is not after `now`.
                let from = (now - lasts).with_timezone(&tz);
                let start = cron.find_next_occurrence(&from, false).ok()?.with_timezone(&Utc);
                (start <= now).then_some(start + lasts)?
            }
            _ => return None,
        };
        Some(format!("freeze `{}` is in force until {}", self.name, until.to_rfc3339()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_span_is_in_force_between_its_ends() {
        let w = FreezeWindow {
            name: "sale".into(),
            from: Some(at("2026-11-27T00:00:00Z")),
            until: Some(at("2026-11-30T00:00:00Z")),
            cron: None,
            lasts: None,
            tz: None,
        };
        assert!(w.validate().is_ok());
        assert!(w.in_force(at("2026-11-26T23:59:59Z")).is_none());
        assert!(w.in_force(at("2026-11-28T12:00:00Z")).unwrap().contains("until 2026-11-30"));
        assert!(w.in_force(at("2026-11-30T00:00:00Z")).is_none());
    }

    #[test]
    fn a_recurring_window_starts_at_its_cron_in_its_time_zone() {
        // Fridays 18:00 in Paris, for 62 hours: until Monday 08:00.
        let w = FreezeWindow {
            name: "weekend".into(),
            from: None,
            until: None,
            cron: Some("0 18 * * FRI".into()),
            lasts: Some("62h".into()),
            tz: Some("Europe/Paris".into()),
        };
        assert!(w.validate().is_ok());
        // 2026-11-27 is a Friday; Paris is UTC+1 in November.
        assert!(w.in_force(at("2026-11-27T16:59:00Z")).is_none());
        assert!(w.in_force(at("2026-11-27T17:00:00Z")).is_some());
        assert!(w.in_force(at("2026-11-29T20:00:00Z")).is_some());
        assert!(w.in_force(at("2026-11-30T07:00:00Z")).is_none());
        assert!(w.in_force(at("2026-11-25T12:00:00Z")).is_none());
    }

    #[test]
    fn half_a_window_is_an_error() {
        let w = FreezeWindow {
            name: "x".into(),
            from: None,
            until: None,
            cron: Some("0 18 * * FRI".into()),
            lasts: None,
            tz: None,
        };
        assert!(w.validate().unwrap_err().contains("either"));
    }
}
