//! Offline messages by email: the organization's chosen address, agents' replies kept with
//! their messages, and the email outbox ([`EmailStore`]). Jobs are inserted by the chat
//! transaction (`insert_email_job`) or with a reply, and claimed and finished by the worker.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::parse;
use super::{Backend, Columns, Conn, SqlStore, Transaction, all, execute, optional};
use crate::domain::{EmailJob, EmailJobStatus, OfflineReply};
use crate::store::{DbError, DbResult, EmailStore, from_millis, to_millis};

const INSERT_EMAIL_JOB: &str = concat!(
    "INSERT INTO email_jobs (",
    email_job_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);

const OFFLINE_MESSAGE_EMAIL: &str = "SELECT offline_message_email FROM organizations WHERE id = $1";

/// The replies with their emails' states.
const OFFLINE_REPLIES: &str = "SELECT r.id, r.organization_id, r.offline_message_id, \
     r.agent_id, r.agent_name, r.text, r.email_job_id, r.created_at, j.status, j.last_error \
     FROM offline_message_replies r JOIN email_jobs j ON j.id = r.email_job_id \
     WHERE r.organization_id = $1 AND r.offline_message_id = $2 ORDER BY r.created_at, r.id";

/// An email job's fate: sent, dead, or pending again at `$2`.
const FINISH_EMAIL_JOB: &str = "UPDATE email_jobs SET status = $1, next_attempt_at = $2, \
     last_error = $3, locked_until = NULL, sent_at = CASE WHEN $1 = 'SENT' THEN $4 ELSE sent_at END \
     WHERE id = $5";

/// An email job row (`email_job_columns!`).
fn email_job_from(row: &dyn Columns) -> DbResult<EmailJob> {
    Ok(EmailJob {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        offline_message_id: row.text("offline_message_id")?,
        kind: parse(row.text("kind")?)?,
        to_address: row.text("to_address")?,
        from_name: row.opt_text("from_name")?,
        reply_to: row.opt_text("reply_to")?,
        subject: row.text("subject")?,
        body: row.text("body")?,
        message_id: row.text("message_id")?,
        in_reply_to: row.opt_text("in_reply_to")?,
        status: parse(row.text("status")?)?,
        attempts: row.int32("attempts")?,
        next_attempt_at: from_millis(row.int("next_attempt_at")?),
        last_error: row.opt_text("last_error")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

fn offline_reply_from(row: &dyn Columns) -> DbResult<OfflineReply> {
    let status: EmailJobStatus = parse(row.text("status")?)?;
    Ok(OfflineReply {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        offline_message_id: row.text("offline_message_id")?,
        agent_id: row.text("agent_id")?,
        agent_name: row.text("agent_name")?,
        text: row.text("text")?,
        email_job_id: row.text("email_job_id")?,
        created_at: from_millis(row.int("created_at")?),
        delivery: status.delivery(),
        delivery_error: row.opt_text("last_error")?,
    })
}

/// Queues `job` on `conn` (the caller's transaction).
pub(super) async fn insert_email_job(conn: &mut dyn Conn, job: &EmailJob) -> DbResult<()> {
    execute(
        conn,
        INSERT_EMAIL_JOB,
        params![
            &job.id,
            &job.organization_id,
            &job.offline_message_id,
            job.kind.as_str(),
            &job.to_address,
            &job.from_name,
            &job.reply_to,
            &job.subject,
            &job.body,
            &job.message_id,
            &job.in_reply_to,
            job.status.as_str(),
            job.attempts,
            to_millis(job.next_attempt_at),
            &job.last_error,
            to_millis(job.created_at),
        ],
    )
    .await?;
    Ok(())
}

/// The organization's chosen address for offline messages, if any.
pub(super) async fn offline_message_email(
    conn: &mut dyn Conn,
    organization_id: &str,
) -> DbResult<Option<String>> {
    Ok(
        optional(conn, OFFLINE_MESSAGE_EMAIL, params![organization_id], |r| {
            r.opt_text(0)
        })
        .await?
        .flatten(),
    )
}

#[async_trait]
impl<B: Backend> EmailStore for SqlStore<B> {
    async fn offline_message_email(&self, organization_id: &str) -> DbResult<Option<String>> {
        let mut conn = self.backend.read().await?;
        offline_message_email(&mut conn, organization_id).await
    }

    async fn set_offline_message_email(
        &self,
        organization_id: &str,
        email: Option<&str>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE organizations SET offline_message_email = $1 WHERE id = $2",
            params![email, organization_id],
        )
        .await?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn insert_offline_reply(&self, reply: &OfflineReply, job: &EmailJob) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let handled = execute(
            &mut tx,
            "UPDATE offline_messages SET handled = $1 WHERE id = $2 AND organization_id = $3",
            params![true, &reply.offline_message_id, &reply.organization_id],
        )
        .await?;
        if handled == 0 {
            return Err(DbError::NotFound);
        }
        insert_email_job(&mut tx, job).await?;
        execute(
            &mut tx,
            "INSERT INTO offline_message_replies (id, organization_id, offline_message_id, \
             agent_id, agent_name, text, email_job_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                &reply.id,
                &reply.organization_id,
                &reply.offline_message_id,
                &reply.agent_id,
                &reply.agent_name,
                &reply.text,
                &reply.email_job_id,
                to_millis(reply.created_at),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn offline_replies(
        &self,
        organization_id: &str,
        offline_message_id: &str,
    ) -> DbResult<Vec<OfflineReply>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            OFFLINE_REPLIES,
            params![organization_id, offline_message_id],
            offline_reply_from,
        )
        .await
    }

    async fn email_jobs(
        &self,
        organization_id: &str,
        offline_message_id: &str,
    ) -> DbResult<Vec<EmailJob>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                email_job_columns!(),
                " FROM email_jobs WHERE organization_id = $1 AND offline_message_id = $2 \
                 ORDER BY created_at, id"
            ),
            params![organization_id, offline_message_id],
            email_job_from,
        )
        .await
    }

    async fn next_email_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let due = optional(
            &mut conn,
            "SELECT MIN(next_attempt_at) FROM email_jobs WHERE status = 'PENDING'",
            params![],
            |r| r.opt_int(0),
        )
        .await?
        .flatten();
        Ok(due.map(from_millis))
    }

    async fn claim_email_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<EmailJob>> {
        let mut tx = self.backend.write().await?;
        let sql = tx.dialect().claim_email_jobs;
        let jobs = all(
            &mut tx,
            sql,
            params![to_millis(locked_until), to_millis(now), limit],
            email_job_from,
        )
        .await?;
        tx.commit().await?;
        Ok(jobs)
    }

    async fn finish_email_job(
        &self,
        job_id: &str,
        status: EmailJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            FINISH_EMAIL_JOB,
            params![
                status.as_str(),
                to_millis(next_attempt_at),
                error,
                to_millis(at),
                job_id
            ],
        )
        .await?;
        tx.commit().await
    }
}
