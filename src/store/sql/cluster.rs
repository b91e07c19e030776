//! What the nodes of a cluster share ([`ClusterStore`]): leases on once-per-cluster work, by
//! the database's clock, and rate-limit windows counted in one statement per attempt.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, Conn, SqlStore, Transaction, all, execute, optional, scalar};
use crate::store::{ClusterStore, DbResult, LeaseHolder, from_millis, to_millis};

/// Takes the lease when it is free, ran out, or is the holder's own; a renewal keeps when it
/// was taken. `$3` is when it runs out, `$4` the database's now.
const ACQUIRE_LEASE: &str = "INSERT INTO cluster_leases (name, holder, expires_at, acquired_at) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, \
     acquired_at = CASE WHEN cluster_leases.holder = excluded.holder \
     THEN cluster_leases.acquired_at ELSE excluded.acquired_at END \
     WHERE cluster_leases.holder = excluded.holder OR cluster_leases.expires_at <= excluded.acquired_at";

/// Counts an attempt unless the key's live window is used up: a new window starts at the
/// first attempt after the last one ended. `$3` is now, `$4` when a window that is still live
/// began at the earliest, `$5` the limit. Changes no row when the attempt is refused.
const COUNT_ATTEMPT: &str = "INSERT INTO rate_counters (scope, key, window_start, attempts) \
     VALUES ($1, $2, $3, 1) \
     ON CONFLICT (scope, key) DO UPDATE SET \
     attempts = CASE WHEN rate_counters.window_start > $4 THEN rate_counters.attempts + 1 ELSE 1 END, \
     window_start = CASE WHEN rate_counters.window_start > $4 \
     THEN rate_counters.window_start ELSE $3 END \
     WHERE rate_counters.window_start <= $4 OR rate_counters.attempts < $5";

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Counts on `conn`; `Err(wait)` when refused.
async fn count_attempt(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
    limit: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> DbResult<Result<(), Duration>> {
    let now = to_millis(now);
    let window = millis(window);
    let counted = execute(
        conn,
        COUNT_ATTEMPT,
        params![
            scope,
            key,
            now,
            now.saturating_sub(window),
            i64::from(limit)
        ],
    )
    .await?;
    if counted > 0 {
        return Ok(Ok(()));
    }
    let started = optional(
        conn,
        "SELECT window_start FROM rate_counters WHERE scope = $1 AND key = $2",
        params![scope, key],
        |r| r.int(0),
    )
    .await?
    .unwrap_or(now);
    // Clamped: a concurrent attempt whose clock read came later may have started the window.
    let left = started
        .saturating_add(window)
        .saturating_sub(now)
        .clamp(0, window);
    Ok(Err(Duration::from_millis(left.unsigned_abs())))
}

#[async_trait]
impl<B: Backend> ClusterStore for SqlStore<B> {
    async fn acquire_lease(&self, name: &str, holder: &str, length: Duration) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let now_sql = tx.dialect().now_millis;
        let now = scalar(&mut tx, now_sql, params![]).await?;
        let granted = execute(
            &mut tx,
            ACQUIRE_LEASE,
            params![name, holder, now.saturating_add(millis(length)), now],
        )
        .await?;
        tx.commit().await?;
        Ok(granted > 0)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "DELETE FROM cluster_leases WHERE name = $1 AND holder = $2",
            params![name, holder],
        )
        .await?;
        tx.commit().await
    }

    async fn leases(&self) -> DbResult<Vec<LeaseHolder>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT name, holder, expires_at, acquired_at FROM cluster_leases ORDER BY name",
            params![],
            |r| {
                Ok(LeaseHolder {
                    name: r.text("name")?,
                    holder: r.text("holder")?,
                    expires_at: from_millis(r.int("expires_at")?),
                    acquired_at: from_millis(r.int("acquired_at")?),
                })
            },
        )
        .await
    }

    async fn count_attempt(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> DbResult<Result<(), Duration>> {
        if self.backend.name() == "postgres" {
            // One statement on a pooled connection, committed by itself: no BEGIN and
            // COMMIT round trips on the customers' message path.
            let mut conn = self.backend.read().await?;
            return count_attempt(&mut conn, scope, key, limit, window, now).await;
        }
        // SQLite's readers cannot write: the writer.
        let mut tx = self.backend.write().await?;
        let counted = count_attempt(&mut tx, scope, key, limit, window, now).await?;
        tx.commit().await?;
        Ok(counted)
    }

    async fn refund_attempt(&self, scope: &str, key: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE rate_counters SET attempts = attempts - 1 \
             WHERE scope = $1 AND key = $2 AND attempts > 0",
            params![scope, key],
        )
        .await?;
        tx.commit().await
    }

    async fn clear_attempts(&self, scope: &str, key: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "DELETE FROM rate_counters WHERE scope = $1 AND key = $2",
            params![scope, key],
        )
        .await?;
        tx.commit().await
    }

    async fn sweep_attempts(&self, before: DateTime<Utc>) -> DbResult<u64> {
        let mut tx = self.backend.write().await?;
        let swept = execute(
            &mut tx,
            "DELETE FROM rate_counters WHERE window_start < $1",
            params![to_millis(before)],
        )
        .await?;
        tx.commit().await?;
        Ok(swept)
    }
}
