//! Schedules: the last slot each scheduled playbook fired for, and the firing itself — the
//! `schedule` event accepted into the inbox and the slot recorded in one transaction, under
//! the delivery key `schedule/<playbook>/<slot>`, so a slot fires once whatever restarts or
//! concurrent schedulers do.

use super::{Delivery, Store, StoreError, insert_delivery, parse_ts, ts, unavailable};
use crate::event::Event;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// What the store remembers of one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    pub playbook: String,
    /// `every 1h`, `cron "0 9 * * *" tz "UTC"`.
    pub spec: String,
    /// The slot it last fired for, or the slot it started after when first seen.
    pub last_slot: DateTime<Utc>,
    /// When it last fired (`None` until it first does).
    pub last_fired: Option<DateTime<Utc>>,
}

impl Store {
    /// Every schedule the store remembers, by playbook.
    pub async fn schedules(&self) -> Result<Vec<ScheduleState>, StoreError> {
        let rows = sqlx::query("SELECT playbook, spec, last_slot, last_fired FROM schedules ORDER BY playbook")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| ScheduleState {
                playbook: r.get(0),
                spec: r.get(1),
                last_slot: parse_ts(&r.get::<String, _>(2)),
                last_fired: r.get::<Option<String>, _>(3).map(|t| parse_ts(&t)),
            })
            .collect())
    }

    /// Remembers a schedule first seen at `slot` (it fires from the slot after it); a
    /// schedule already known is left as it is. Returns its state.
    pub async fn schedule_seen(
        &self,
        playbook: &str,
        spec: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<ScheduleState, StoreError> {
        sqlx::query(
            "INSERT INTO schedules (playbook, spec, last_slot, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (playbook) DO UPDATE SET spec = excluded.spec",
        )
        .bind(playbook)
        .bind(spec)
        .bind(ts(slot))
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        let r = sqlx::query("SELECT playbook, spec, last_slot, last_fired FROM schedules WHERE playbook = $1")
            .bind(playbook)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(ScheduleState {
            playbook: r.get(0),
            spec: r.get(1),
            last_slot: parse_ts(&r.get::<String, _>(2)),
            last_fired: r.get::<Option<String>, _>(3).map(|t| parse_ts(&t)),
        })
    }

    /// Fires `playbook`'s schedule for `slot`: its `schedule` event enters the inbox and the
    /// slot is recorded, in one transaction. Returns false when that slot had fired already
    /// (nothing is added).
    pub async fn fire_schedule(
        &self,
        playbook: &str,
        slot: DateTime<Utc>,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        // The slot moves forward first: a slot older than one already fired (another
        // scheduler with a skewed clock) fires nothing.
        let moved = sqlx::query(
            "UPDATE schedules SET last_slot = $1, last_fired = $2, updated_at = $2 WHERE playbook = $3 AND last_slot < $1",
        )
        .bind(ts(slot))
        .bind(ts(now))
        .bind(playbook)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        let key = format!("schedule/{playbook}/{}", ts(slot));
        let delivery = Delivery {
            source: "sparky",
            key: &key,
            body_hash: None,
            events: std::slice::from_ref(event),
            received_at: now,
        };
        let accepted = insert_delivery(&mut tx, &delivery).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(!accepted.duplicate)
    }

    /// Starts `playbook`'s schedule again from `slot` (its spec changed, the clock was set
    /// back, it is disabled): the slots up to `slot` are passed without a run.
    pub async fn schedule_restart(
        &self,
        playbook: &str,
        spec: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedules (playbook, spec, last_slot, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (playbook) DO UPDATE SET spec = excluded.spec, last_slot = excluded.last_slot,
                                                  updated_at = excluded.updated_at",
        )
        .bind(playbook)
        .bind(spec)
        .bind(ts(slot))
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Records that `playbook`'s `slot` passed without a run (too old to catch up).
    pub async fn schedule_missed(
        &self,
        playbook: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE schedules SET last_slot = $1, updated_at = $2 WHERE playbook = $3 AND last_slot < $1")
            .bind(ts(slot))
            .bind(ts(now))
            .bind(playbook)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
