//! The token notices sent (PB-003): what each owner was told, so that a notice goes out once
//! per token, expiry and threshold, across runs and restarts.

use super::{Store, StoreError, ts, unavailable};
use crate::knowledge::tokens::{Notice, NoticeKey};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashSet;

impl Store {
    /// Every notice sent.
    pub async fn token_notices_sent(&self) -> Result<HashSet<NoticeKey>, StoreError> {
        let rows = sqlx::query("SELECT token, expires_at, mark FROM token_notices")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|r| NoticeKey { token: r.get(0), expires_at: r.get(1), mark: r.get(2) }).collect())
    }

    /// Records that `notice` was sent on `channel`; false when it had been already.
    pub async fn record_token_notice(
        &self,
        notice: &Notice,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO token_notices (token, expires_at, mark, owner, channel, sent_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (token, expires_at, mark) DO NOTHING",
        )
        .bind(&notice.key.token)
        .bind(&notice.key.expires_at)
        .bind(&notice.key.mark)
        .bind(notice.owner.as_deref())
        .bind(channel)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        Ok(n == 1)
    }
}
