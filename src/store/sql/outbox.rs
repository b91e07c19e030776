//! Push devices, notification preferences and the push outbox: the [`PushStore`] trait.
//! Claims and finishes run once per push sent: their statements are constants, prepared once
//! per connection.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::accounts::agent_live;
use super::rows::{device_from, job_from, parse};
use super::{
    Backend, Conn, SqlStore, Transaction, all, execute, one, optional, optional_text, scalar,
};
use crate::domain::{NotificationKind, PushDevice, PushJob, PushJobStatus};
use crate::store::{DbError, DbResult, PushStore, from_millis, to_millis};

const DEVICE: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM push_devices WHERE id = $1"
);

/// The badge: the agent's active chats awaiting a reply.
const UNREAD_CHATS: &str = "SELECT COUNT(*) FROM chats WHERE assignee_id = $1 \
     AND status = 'ACTIVE' AND awaiting_reply_since IS NOT NULL";

/// When the next pending push is due.
const NEXT_PUSH_DUE: &str = "SELECT MIN(next_attempt_at) FROM push_jobs WHERE status = 'PENDING'";

/// A push job's fate: sent, dead, or pending again at `$2`.
const FINISH_PUSH_JOB: &str = "UPDATE push_jobs SET status = $1, next_attempt_at = $2, \
     last_error = $3, locked_until = NULL, sent_at = CASE WHEN $1 = 'SENT' THEN $4 ELSE sent_at END \
     WHERE id = $5";

/// Claims due jobs with their devices, in the caller's transaction.
async fn claim(
    conn: &mut dyn Conn,
    now: DateTime<Utc>,
    locked_until: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<(PushJob, PushDevice)>> {
    let sql = conn.dialect().claim_push_jobs;
    let jobs = all(
        conn,
        sql,
        params![to_millis(locked_until), to_millis(now), limit],
        job_from,
    )
    .await?;
    let mut claimed = Vec::with_capacity(jobs.len());
    for job in jobs {
        let device = one(conn, DEVICE, params![&job.device_id], device_from).await?;
        claimed.push((job, device));
    }
    Ok(claimed)
}

#[async_trait]
impl<B: Backend> PushStore for SqlStore<B> {
    async fn upsert_push_device(&self, device: &PushDevice) -> DbResult<PushDevice> {
        let mut tx = self.backend.write().await?;
        let stored = optional(
            &mut tx,
            concat!(
                "INSERT INTO push_devices (",
                device_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $10, $11, $12) \
                 ON CONFLICT (token) DO UPDATE SET agent_id = excluded.agent_id, \
                 organization_id = excluded.organization_id, platform = excluded.platform, \
                 app_id = excluded.app_id, environment = excluded.environment, \
                 locale = excluded.locale, device_name = excluded.device_name, \
                 disabled_reason = NULL, updated_at = excluded.updated_at, \
                 web_push_p256dh = excluded.web_push_p256dh, \
                 web_push_auth = excluded.web_push_auth \
                 WHERE push_devices.organization_id = excluded.organization_id \
                 RETURNING ",
                device_columns!()
            ),
            params![
                &device.id,
                &device.agent_id,
                &device.organization_id,
                device.platform.as_str(),
                &device.token,
                &device.app_id,
                device.environment.as_str(),
                &device.locale,
                &device.device_name,
                to_millis(device.updated_at),
                device.web_push.as_ref().map(|keys| keys.p256dh.as_str()),
                device.web_push.as_ref().map(|keys| keys.auth.as_str()),
            ],
            device_from,
        )
        .await?
        // The token belongs to an agent of another organization: it stays there.
        .ok_or_else(|| DbError::Conflict("this device token cannot be registered".into()))?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn delete_push_device(&self, agent_id: &str, token: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let id = optional_text(
            &mut tx,
            "SELECT id FROM push_devices WHERE agent_id = $1 AND token = $2",
            params![agent_id, token],
        )
        .await?;
        let Some(id) = id else { return Ok(false) };
        execute(
            &mut tx,
            "DELETE FROM push_jobs WHERE device_id = $1",
            params![&id],
        )
        .await?;
        execute(
            &mut tx,
            "DELETE FROM push_devices WHERE id = $1",
            params![&id],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn push_devices(&self, agent_id: &str) -> DbResult<Vec<PushDevice>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                device_columns!(),
                " FROM push_devices WHERE agent_id = $1 ORDER BY created_at"
            ),
            params![agent_id],
            device_from,
        )
        .await
    }

    async fn push_preferences(&self, agent_id: &str) -> DbResult<Vec<(NotificationKind, bool)>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT kind, enabled FROM push_preferences WHERE agent_id = $1",
            params![agent_id],
            |r| Ok((parse(r.text(0)?)?, r.bool(1)?)),
        )
        .await
    }

    async fn set_push_preference(
        &self,
        agent_id: &str,
        kind: NotificationKind,
        enabled: bool,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO push_preferences (agent_id, kind, enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id, kind) DO UPDATE SET enabled = excluded.enabled",
            params![agent_id, kind.as_str(), enabled],
        )
        .await?;
        tx.commit().await
    }

    async fn claim_push_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(PushJob, PushDevice)>> {
        let mut tx = self.backend.write().await?;
        let claimed = claim(&mut tx, now, locked_until, limit).await?;
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_push_job(
        &self,
        job_id: &str,
        status: PushJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            FINISH_PUSH_JOB,
            params![
                status.as_str(),
                to_millis(next_attempt_at),
                error,
                to_millis(at),
                job_id,
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn disable_push_device(
        &self,
        device_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE push_devices SET disabled_reason = $1, updated_at = $2 WHERE id = $3",
            params![reason, to_millis(at), device_id],
        )
        .await?;
        tx.commit().await
    }

    async fn push_outbox_depth(&self) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(
            &mut conn,
            "SELECT COUNT(*) FROM push_jobs WHERE status IN ('PENDING', 'SENDING')",
            params![],
        )
        .await
    }

    async fn next_push_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let next = one(&mut conn, NEXT_PUSH_DUE, params![], |r| r.opt_int(0)).await?;
        Ok(next.map(from_millis))
    }

    async fn push_jobs(&self, agent_id: &str) -> DbResult<Vec<PushJob>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                job_columns!(),
                " FROM push_jobs WHERE agent_id = $1 ORDER BY created_at DESC, id DESC"
            ),
            params![agent_id],
            job_from,
        )
        .await
    }

    async fn unread_chats(&self, agent_id: &str) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(&mut conn, UNREAD_CHATS, params![agent_id]).await
    }

    async fn agent_live(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let mut conn = self.backend.read().await?;
        agent_live(&mut conn, agent_id, now).await
    }

    async fn acknowledge_assignments(&self, agent_id: &str) -> DbResult<()> {
        // Almost every connection has nothing to acknowledge: look on a reader, and take the
        // writer only when there is something to write.
        let waiting = {
            let mut conn = self.backend.read().await?;
            optional(
                &mut conn,
                "SELECT 1 FROM chats WHERE assignee_id = $1 \
                 AND acceptance_deadline IS NOT NULL LIMIT 1",
                params![agent_id],
                |_| Ok(()),
            )
            .await?
        };
        if waiting.is_none() {
            return Ok(());
        }
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE chats SET acceptance_deadline = NULL WHERE assignee_id = $1 \
             AND acceptance_deadline IS NOT NULL",
            params![agent_id],
        )
        .await?;
        tx.commit().await
    }
}
