//! SQLite's chat writer: chat transactions run on one rusqlite connection, statement by
//! statement on the calling thread.
//!
//! sqlx runs each SQLite statement on its connection's worker thread and hands the rows back
//! through a channel. A chat change is a dozen short statements (lock the organization, read
//! the chat, update it, number and insert the entry, number and insert each watcher's feed
//! entry, …), so it paid two dozen thread hand-offs for well under a millisecond of SQLite
//! work, and the single writer spent most of its time waiting for wake-ups. Here each
//! statement is a prepared, cached statement run in place: a few microseconds, no hand-off.
//!
//! SQLite allows one writer at a time, so the connection sits behind an async mutex that the
//! other writes (through sqlx's writer connection) also take; reads keep using sqlx's pool,
//! which WAL lets run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::ToSql;
use rusqlite::{CachedStatement, Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::domain::{
    Agent, Chat, ChatEvent, Customer, FeedData, FeedEntry, FeedKind, NotificationKind,
    OfflineMessage, Organization, PushDevice, PushJob, PushJobStatus, PushMessage,
    RoutingCandidate, RoutingStatus,
};
use crate::store::chat_sql::{
    self as stmt, AgentRow, CandidateRow, Columns, OrganizationRow, agent_from_row,
    candidate_from_row, chat_from, customer_from, device_from, event_from, feed_data_json,
    job_from, organization_from_row, push_message_json,
};
use crate::store::{
    ChatTx, DbError, DbResult, Direct, NewChatEvent, ParticipantRole, WriterHold, from_millis,
    to_millis,
};

/// How many prepared statements the writer keeps: every chat statement, with room to spare.
const STATEMENT_CACHE: usize = 64;

/// How many idle read connections the point reads keep.
const READERS: usize = 4;

/// The writer connection, shared by the store and every open chat transaction, and the read
/// connections of the point reads every request makes (its agent's session, its customer).
pub struct Writer {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    busy_timeout: Duration,
    readers: std::sync::Mutex<Vec<Connection>>,
    closed: AtomicBool,
    /// Dropping it stops the checkpointer.
    checkpoints: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Starts the thread that checkpoints the WAL until the returned sender is dropped.
///
/// SQLite checkpoints by default in the commit that takes the WAL past 1,000 pages: copying
/// 4 MB and syncing inside the single writer's commit, on a tokio worker, several times a
/// second under load. Every write waited for it. A passive checkpoint here runs beside the
/// writer instead: it copies what readers no longer need and never blocks a commit.
fn checkpointer(path: &Path, busy_timeout: Duration) -> DbResult<std::sync::mpsc::Sender<()>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(busy_timeout)?;
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        })
        .map_err(|err| DbError::Other(sqlx::Error::Io(err)))?;
    Ok(stop)
}

impl Writer {
    /// Opens the database file that the sqlx pools already opened (and so created).
    pub fn open(path: &Path, busy_timeout: Duration) -> DbResult<Writer> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(busy_timeout)?;
        // The same settings as sqlx's connections: WAL is a property of the file, the rest
        // are per connection.
        conn.execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0;",
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let checkpoints = checkpointer(path, busy_timeout)?;
        Ok(Writer {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_owned(),
            busy_timeout,
            readers: std::sync::Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            checkpoints: std::sync::Mutex::new(Some(checkpoints)),
        })
    }

    /// An error once the store is closed.
    fn ensure_open(&self) -> DbResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DbError::Other(sqlx::Error::PoolClosed));
        }
        Ok(())
    }

    /// Runs `read` on an idle read connection, opening one if none is idle. A point read
    /// takes microseconds, so it runs in place like the writer's statements; WAL lets it
    /// run beside the writer.
    fn read<T>(&self, read: impl FnOnce(&Connection) -> DbResult<T>) -> DbResult<T> {
        self.ensure_open()?;
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(self.busy_timeout)?;
                conn
            }
        };
        let result = read(&conn);
        let mut readers = self
            .readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if readers.len() < READERS {
            readers.push(conn);
        }
        result
    }
}

#[async_trait]
impl Direct for Writer {
    async fn begin(&self) -> DbResult<Box<dyn ChatTx>> {
        self.ensure_open()?;
        let conn = self.conn.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(Box::new(WriterTx { conn, open: true }))
    }

    async fn hold(&self) -> WriterHold {
        Box::new(self.conn.clone().lock_owned().await)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.checkpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        self.readers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    async fn claim_push_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(PushJob, PushDevice)>> {
        self.ensure_open()?;
        let conn = self.conn.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let tx = WriterTx { conn, open: true };
        let jobs = tx.all(
            stmt::CLAIM_PUSH_JOBS,
            &[&to_millis(locked_until), &to_millis(now), &limit],
            |r| job_from(r),
        )?;
        let mut claimed = Vec::with_capacity(jobs.len());
        for job in jobs {
            let device = tx.one(stmt::DEVICE, &[&job.device_id], |r| device_from(r))?;
            claimed.push((job, device));
        }
        Box::new(tx).commit().await?;
        Ok(claimed)
    }

    async fn session_agent(&self, session_id: &str, agent_id: &str) -> DbResult<Option<Agent>> {
        self.read(|conn| {
            let organization: Option<String> = optional(
                conn,
                stmt::SESSION_ORGANIZATION,
                &[&session_id, &agent_id],
                |r| Ok(r.get(0)?),
            )?;
            organization
                .map(|organization_id| agent(conn, &organization_id, agent_id))
                .transpose()
        })
    }

    async fn customer(&self, organization_id: &str, customer_id: &str) -> DbResult<Customer> {
        self.read(|conn| {
            optional(
                conn,
                stmt::CUSTOMER,
                &[&customer_id, &organization_id],
                |r| customer_from(r),
            )?
            .ok_or(DbError::NotFound)
        })
    }

    async fn unread_chats(&self, agent_id: &str) -> DbResult<i64> {
        self.read(|conn| {
            optional(conn, stmt::UNREAD_CHATS, &[&agent_id], |r| Ok(r.get(0)?))?
                .ok_or(DbError::NotFound)
        })
    }

    async fn next_push_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        self.read(|conn| {
            let next: Option<i64> =
                optional(conn, stmt::NEXT_PUSH_DUE, &[], |r| Ok(r.get(0)?))?.flatten();
            Ok(next.map(from_millis))
        })
    }

    async fn finish_push_job(
        &self,
        job_id: &str,
        status: PushJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        self.ensure_open()?;
        let conn = self.conn.lock().await;
        bound(
            &conn,
            stmt::FINISH_PUSH_JOB,
            &[
                &status.as_str(),
                &to_millis(next_attempt_at),
                &error,
                &to_millis(at),
                &job_id,
            ],
        )?
        .raw_execute()?;
        Ok(())
    }
}

/// A chat transaction on the writer; dropped without `commit`, it rolls back.
struct WriterTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl Drop for WriterTx {
    fn drop(&mut self) {
        if self.open {
            // Fails only when SQLite already rolled back on its own (a full disk, say).
            if let Err(err) = self.conn.execute_batch("ROLLBACK") {
                tracing::debug!(%err, "rollback of a chat transaction");
            }
        }
    }
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, column: &str) -> DbResult<String> {
        Ok(self.get(column)?)
    }

    fn opt_text(&self, column: &str) -> DbResult<Option<String>> {
        Ok(self.get(column)?)
    }

    fn int(&self, column: &str) -> DbResult<i64> {
        Ok(self.get(column)?)
    }

    fn opt_int(&self, column: &str) -> DbResult<Option<i64>> {
        Ok(self.get(column)?)
    }

    fn int32(&self, column: &str) -> DbResult<i32> {
        Ok(self.get(column)?)
    }
}

/// A prepared statement with `params` bound by number: `$3` takes `params[2]`, wherever
/// and however often it appears.
fn bound<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[&dyn ToSql],
) -> DbResult<CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=params.len()).contains(n))
            .ok_or_else(|| {
                DbError::Other(sqlx::Error::Protocol(format!(
                    "parameter {index} of {sql:?} is not one of $1..${}",
                    params.len()
                )))
            })?;
        statement.raw_bind_parameter(index, params[number - 1])?;
    }
    Ok(statement)
}

/// Every row, each turned into a value by `read`.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    mut read: impl FnMut(&rusqlite::Row<'_>) -> DbResult<T>,
) -> DbResult<Vec<T>> {
    let mut statement = bound(conn, sql, params)?;
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// The first row, if any.
fn optional<T>(
    conn: &Connection,
    sql: &str,
    params: &[&dyn ToSql],
    read: impl FnOnce(&rusqlite::Row<'_>) -> DbResult<T>,
) -> DbResult<Option<T>> {
    let mut statement = bound(conn, sql, params)?;
    let mut rows = statement.raw_query();
    rows.next()?.map(read).transpose()
}

/// One agent with their groups.
fn agent(conn: &Connection, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
    let row: AgentRow = optional(conn, stmt::AGENT, &[&agent_id, &organization_id], |r| {
        Ok(r.try_into()?)
    })?
    .ok_or(DbError::NotFound)?;
    let groups = all(conn, stmt::AGENT_GROUPS, &[&agent_id], |r| Ok(r.get(0)?))?;
    agent_from_row(row, groups)
}

impl WriterTx {
    fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> DbResult<usize> {
        Ok(bound(&self.conn, sql, params)?.raw_execute()?)
    }

    fn all<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: impl FnMut(&rusqlite::Row<'_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        all(&self.conn, sql, params, read)
    }

    fn optional<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: impl FnOnce(&rusqlite::Row<'_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        optional(&self.conn, sql, params, read)
    }

    /// The first row; [`DbError::NotFound`] when there is none.
    fn one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        read: impl FnOnce(&rusqlite::Row<'_>) -> DbResult<T>,
    ) -> DbResult<T> {
        self.optional(sql, params, read)?.ok_or(DbError::NotFound)
    }

    /// The first column of every row.
    fn column<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
    ) -> DbResult<Vec<T>> {
        self.all(sql, params, |row| Ok(row.get(0)?))
    }
}

fn millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_millis)
}

#[async_trait]
impl ChatTx for WriterTx {
    async fn lock_organization(&mut self, organization_id: &str) -> DbResult<Organization> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        let row: OrganizationRow = self.one(stmt::ORGANIZATION, &[&organization_id], |r| {
            Ok(r.try_into()?)
        })?;
        Ok(organization_from_row(row))
    }

    async fn agent(&mut self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        agent(&self.conn, organization_id, agent_id)
    }

    async fn chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<Chat> {
        self.one(stmt::CHAT, &[&chat_id, &organization_id], |r| chat_from(r))
    }

    async fn insert_chat(&mut self, chat: &Chat) -> DbResult<()> {
        self.execute(
            stmt::INSERT_CHAT,
            &[
                &chat.id,
                &chat.organization_id,
                &chat.customer_id,
                &chat.group_id,
                &chat.channel.as_str(),
                &chat.status.as_str(),
                &to_millis(chat.created_at),
                &to_millis(chat.last_customer_activity_at),
                &to_millis(chat.last_activity_at),
            ],
        )?;
        self.update_chat(chat).await
    }

    async fn update_chat(&mut self, chat: &Chat) -> DbResult<()> {
        self.execute(
            stmt::UPDATE_CHAT,
            &[
                &chat.group_id,
                &chat.status.as_str(),
                &chat.assignee_id,
                &chat.attention.as_str(),
                &millis(chat.queued_at),
                &millis(chat.assigned_at),
                &millis(chat.first_response_at),
                &millis(chat.closed_at),
                &chat.rating.map(|r| r.as_str()),
                &chat.rating_comment,
                &millis(chat.awaiting_reply_since),
                &to_millis(chat.last_customer_activity_at),
                &to_millis(chat.last_activity_at),
                &millis(chat.agent_typing_since),
                &millis(chat.acceptance_deadline),
                &chat.id,
            ],
        )?;
        Ok(())
    }

    async fn routing_candidates(
        &mut self,
        organization: &Organization,
        group_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<RoutingCandidate>> {
        self.all(
            stmt::ROUTING_CANDIDATES,
            &[&organization.id, &to_millis(now), &group_id.unwrap_or("")],
            |r| {
                let row: CandidateRow = r.try_into()?;
                Ok(candidate_from_row(organization, row))
            },
        )
    }

    async fn previous_agent_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        self.optional(stmt::PREVIOUS_AGENT_OF_CUSTOMER, &[&customer_id], |r| {
            Ok(r.get(0)?)
        })
    }

    async fn open_chat_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        self.optional(stmt::OPEN_CHAT_OF_CUSTOMER, &[&customer_id], |r| {
            Ok(r.get(0)?)
        })
    }

    async fn participants(&mut self, chat_id: &str) -> DbResult<Vec<(String, ParticipantRole)>> {
        self.all(stmt::PARTICIPANTS, &[&chat_id], |r| {
            let role: String = r.get(1)?;
            Ok((r.get(0)?, ParticipantRole::from_stored(&role)))
        })
    }

    async fn add_participant(
        &mut self,
        chat_id: &str,
        agent_id: &str,
        role: ParticipantRole,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        self.execute(
            stmt::ADD_PARTICIPANT,
            &[&chat_id, &agent_id, &role.as_str(), &to_millis(at)],
        )?;
        Ok(())
    }

    async fn supervisors(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        self.column(
            stmt::SUPERVISORS,
            &[&organization_id, &group_id.unwrap_or("")],
        )
    }

    async fn append_event(&mut self, event: &NewChatEvent) -> DbResult<ChatEvent> {
        let seq: i64 = self.one(stmt::NEXT_EVENT_SEQ, &[&event.chat_id], |r| Ok(r.get(0)?))?;
        let stored = event.stored(seq);
        self.execute(
            stmt::INSERT_EVENT,
            &[
                &stored.id,
                &stored.chat_id,
                &stored.organization_id,
                &stored.seq,
                &stored.kind.as_str(),
                &stored.author_kind.as_str(),
                &stored.author_id,
                &stored.author_name,
                &stored.text,
                &stored.client_id,
                &stored.visibility.as_str(),
                &to_millis(stored.created_at),
            ],
        )?;
        Ok(stored)
    }

    async fn message_by_client_id(
        &mut self,
        chat_id: &str,
        author_id: &str,
        client_id: &str,
    ) -> DbResult<Option<ChatEvent>> {
        self.optional(
            stmt::MESSAGE_BY_CLIENT_ID,
            &[&chat_id, &author_id, &client_id],
            |r| event_from(r),
        )
    }

    async fn append_feed(
        &mut self,
        agent_id: &str,
        kind: FeedKind,
        chat_id: Option<&str>,
        event: Option<&ChatEvent>,
        data: &FeedData,
        at: DateTime<Utc>,
    ) -> DbResult<FeedEntry> {
        let seq: i64 = self.one(stmt::NEXT_FEED_SEQ, &[&agent_id], |r| Ok(r.get(0)?))?;
        self.execute(
            stmt::INSERT_FEED,
            &[
                &agent_id,
                &seq,
                &kind.as_str(),
                &chat_id,
                &event.map(|e| e.id.as_str()),
                &feed_data_json(data)?,
                &to_millis(at),
            ],
        )?;
        Ok(FeedEntry {
            agent_id: agent_id.to_owned(),
            seq,
            kind,
            chat_id: chat_id.map(str::to_owned),
            event: event.cloned(),
            data: data.clone(),
            created_at: at,
        })
    }

    async fn set_routing_status(&mut self, agent_id: &str, status: RoutingStatus) -> DbResult<()> {
        self.execute(stmt::SET_ROUTING_STATUS, &[&status.as_str(), &agent_id])?;
        Ok(())
    }

    async fn mark_assigned(&mut self, agent_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        self.execute(stmt::MARK_ASSIGNED, &[&to_millis(at), &agent_id])?;
        Ok(())
    }

    async fn queued_chats(&mut self, organization_id: &str) -> DbResult<Vec<Chat>> {
        self.all(stmt::QUEUED_CHATS, &[&organization_id], |r| chat_from(r))
    }

    async fn agent_live(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let live: Option<i64> = self.one(stmt::AGENT_LIVE, &[&agent_id], |r| Ok(r.get(0)?))?;
        Ok(live.is_some_and(|until| until > to_millis(now)))
    }

    async fn push_targets(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
    ) -> DbResult<Vec<PushDevice>> {
        self.all(stmt::PUSH_TARGETS, &[&agent_id, &kind.as_str()], |r| {
            device_from(r)
        })
    }

    async fn insert_push_job(&mut self, job: &PushJob) -> DbResult<()> {
        self.execute(
            stmt::INSERT_PUSH_JOB,
            &[
                &job.id,
                &job.device_id,
                &job.agent_id,
                &job.organization_id,
                &job.kind.as_str(),
                &job.chat_id,
                &push_message_json(&job.message)?,
                &job.status.as_str(),
                &job.attempts,
                &to_millis(job.next_attempt_at),
                &to_millis(job.created_at),
            ],
        )?;
        Ok(())
    }

    async fn pending_push_jobs(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        self.column(
            stmt::PENDING_PUSH_JOBS,
            &[&agent_id, &kind.as_str(), &chat_id.unwrap_or("")],
        )
    }

    async fn update_push_job_message(
        &mut self,
        job_id: &str,
        message: &PushMessage,
    ) -> DbResult<()> {
        self.execute(
            stmt::UPDATE_PUSH_JOB_MESSAGE,
            &[&push_message_json(message)?, &job_id],
        )?;
        Ok(())
    }

    async fn queue_push_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<String>> {
        self.column(
            stmt::QUEUE_PUSH_RECIPIENTS,
            &[
                &organization_id,
                &to_millis(now),
                &group_id.unwrap_or(""),
                &to_millis(since),
            ],
        )
    }

    async fn queued_count(&mut self, organization_id: &str, except: Option<&str>) -> DbResult<i64> {
        self.one(
            stmt::QUEUED_COUNT,
            &[&organization_id, &except.unwrap_or("")],
            |r| Ok(r.get(0)?),
        )
    }

    async fn chats_started_since(
        &mut self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<(i64, Option<DateTime<Utc>>)> {
        self.one(
            stmt::CHATS_STARTED_SINCE,
            &[&organization_id, &to_millis(since)],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.map(from_millis))),
        )
    }

    async fn agent_reachable(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let count: i64 = self.one(stmt::AGENT_REACHABLE, &[&agent_id, &to_millis(now)], |r| {
            Ok(r.get(0)?)
        })?;
        Ok(count > 0)
    }

    async fn latest_customer_message(&mut self, chat_id: &str) -> DbResult<Option<String>> {
        self.optional(
            stmt::LATEST_CUSTOMER_MESSAGE,
            &[&chat_id],
            |r| Ok(r.get(0)?),
        )
    }

    async fn customer_name(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        Ok(self
            .optional(stmt::CUSTOMER_NAME, &[&customer_id], |r| Ok(r.get(0)?))?
            .flatten())
    }

    async fn insert_offline_message(&mut self, message: &OfflineMessage) -> DbResult<()> {
        self.execute(
            stmt::INSERT_OFFLINE_MESSAGE,
            &[
                &message.id,
                &message.organization_id,
                &message.customer_id,
                &message.group_id,
                &message.name,
                &message.email,
                &message.text,
                &message.handled,
                &to_millis(message.created_at),
            ],
        )?;
        Ok(())
    }

    async fn offline_message_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        self.column(
            stmt::OFFLINE_MESSAGE_RECIPIENTS,
            &[&organization_id, &group_id.unwrap_or("")],
        )
    }

    async fn commit(mut self: Box<Self>) -> DbResult<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With automatic checkpoints off, only the checkpointer moves pages from the WAL into
    /// the database file: the file grows to hold the migrated tables without any commit
    /// crossing a threshold.
    #[tokio::test]
    async fn the_checkpointer_moves_the_wal_into_the_database_file() {
        use crate::store::Database;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let store = super::super::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + CHECKPOINT_EVERY * 10;
        while size() < 64 * 1024 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_EVERY / 5).await;
        }
        assert!(size() >= 64 * 1024, "still {} bytes", size());
        store.close().await;
    }

    #[test]
    fn parameters_bind_by_number_not_by_position() {
        let conn = Connection::open_in_memory().unwrap();
        let difference: i64 = bound(&conn, "SELECT $2 - $1 + $2", &[&1_i64, &10_i64])
            .unwrap()
            .raw_query()
            .next()
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(difference, 19);
    }

    #[test]
    fn a_parameter_without_a_value_is_an_error_not_a_null() {
        let conn = Connection::open_in_memory().unwrap();
        let err = bound(&conn, "SELECT $1, $3", &[&1_i64, &2_i64])
            .err()
            .expect("$3 has no value");
        assert!(err.to_string().contains("not one of $1..$2"), "{err}");
    }
}
