//! The SQL of the store, each query written once for both backends.
//!
//! The queries run over [`Conn`], a small connection trait of our own: parameters are
//! [`Value`]s written `$1`, `$2`… (Postgres and SQLite both read them by number), rows are
//! read through [`Columns`]. SQLite implements it on rusqlite (`super::sqlite`), Postgres on
//! sqlx (`super::postgres`); where the dialects differ, the connection's [`Dialect`] says how.
//!
//! A [`Backend`] hands out connections: a reader for reads, and a [`Transaction`] for every
//! write. On SQLite that transaction holds the single writer, so a write cannot forget to
//! take it. [`SqlStore`] implements the store's traits once over any backend, grouped by
//! aggregate: `accounts` (organizations, agents, groups, sessions), `customers` (visitors and
//! page views), `chats` (reads and small writes), `chat_tx` (the chat transaction), `greetings`
//! (greetings and greeting rules), `canned` (canned responses), `tags` (tags and chats' tags),
//! `files` (attachments and their limits), `messenger` (Facebook pages and the Send API
//! outbox), `email` (offline messages by email: replies and the email outbox), `webhooks`
//! (endpoints and their deliveries), `outbox` (push devices, preferences, jobs) and `cluster`
//! (leases on once-per-cluster work, shared rate-limit windows), and `gauges` (what /metrics
//! counts at each scrape).

/// The parameters of a statement, `$1` first: `params![a, b]` is `&[Value::from(a), …]`,
/// an array on the stack.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::store::sql::Value::from($value)),*]
    };
}

#[macro_use]
mod rows;
mod accounts;
mod archive;
mod canned;
mod chat_tx;
mod chats;
mod cluster;
mod customers;
mod email;
mod files;
mod gauges;
mod greetings;
mod messenger;
mod outbox;
mod reports;
mod tags;
mod webhooks;

use std::future::Future;

use futures_util::future::{BoxFuture, Either, Ready};

use super::{DbError, DbResult, PoolStats};

pub(crate) use rows::{At, Columns};

/// A parameter of a statement. Nulls carry their type: Postgres must know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Any integer: ids are text, so these are times, counts, limits and seconds.
    Int(i64),
    Text(&'a str),
    /// A BOOLEAN on Postgres, 0 or 1 on SQLite.
    Bool(bool),
    /// NULL in an integer column.
    NullInt,
    /// NULL in a text column.
    NullText,
    /// A BLOB on SQLite, a BYTEA on Postgres.
    Bytes(&'a [u8]),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<i32> for Value<'_> {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::NullInt, Value::Int)
    }
}

impl From<Option<i32>> for Value<'_> {
    fn from(v: Option<i32>) -> Self {
        v.map_or(Value::NullInt, |v| Value::Int(i64::from(v)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Value::NullText, Value::Text)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Value::NullText, Value::Text)
    }
}

/// What a statement step gives back: ready at once on SQLite, whose statements run in
/// place, and a boxed future on Postgres, whose statements go over the network.
pub type Step<'a, T> = Either<Ready<DbResult<T>>, BoxFuture<'a, DbResult<T>>>;

/// Called once per result row.
pub type RowSink<'a> = dyn FnMut(&dyn Columns) -> DbResult<()> + Send + 'a;

/// A connection the SQL runs on: a reader, or a transaction on the writer.
pub trait Conn: Send {
    /// How this database spells what the dialects disagree on.
    fn dialect(&self) -> &'static Dialect;
    /// Runs `sql` and hands each result row to `row`.
    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value<'a>],
        row: &'a mut RowSink<'_>,
    ) -> Step<'a, ()>;
    /// Runs `sql` and returns how many rows it changed.
    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64>;
}

/// A transaction: [`Conn`] plus commit. Dropped without a commit, it rolls back.
pub trait Transaction: Conn + Sized + 'static {
    /// Makes the transaction's writes durable and visible.
    fn commit(self) -> impl Future<Output = DbResult<()>> + Send;
}

/// Where the dialects differ. Everything else is the same text on both.
#[derive(Debug)]
pub struct Dialect {
    /// Waits until no chat writer of organization `$1` is in progress and keeps new ones out
    /// until the transaction ends: run by `accounts::lock_organization` before it locks the
    /// row. Empty where the transaction already holds the whole database.
    pub exclude_chat_writers: &'static str,
    /// Reads the organization and locks it for the rest of the transaction.
    pub lock_organization: &'static str,
    /// Lets a chat writer of organization `$1` in beside the others, and keeps out those
    /// that lock the organization (`exclude_chat_writers`) until the transaction ends.
    pub share_organization: &'static str,
    /// Reads chat `$1` of organization `$2` and locks it for the rest of the transaction, or
    /// finds none; with the customer's name (`customer_name`), which a message carries.
    pub lock_chat: &'static str,
    /// Appends a transcript entry numbered by its chat in one statement: parameters as
    /// `chat_tx::INSERT_EVENT`'s but `seq`, returning the number; nothing when the author
    /// already sent its client id. Empty where the number is taken by a statement of its own
    /// (SQLite, whose statements cost no round trip).
    pub append_event: &'static str,
    /// Appends an agent's feed entry numbered by the agent's counter in one statement:
    /// parameters as `chat_tx::INSERT_FEED`'s but `seq`, returning the number. Empty where
    /// the number is taken by a statement of its own.
    pub append_feed: &'static str,
    /// Claims due push jobs, skipping rows another worker is claiming.
    pub claim_push_jobs: &'static str,
    /// Ends a select whose rows a claim takes: `FOR UPDATE SKIP LOCKED` on Postgres.
    pub skip_locked: &'static str,
    /// Claims due email jobs, the same way.
    pub claim_email_jobs: &'static str,
    /// The database's clock, in milliseconds since the epoch: leases go by it, so nodes
    /// whose clocks drift still agree on who holds one.
    pub now_millis: &'static str,
}

/// Chat `$1` of organization `$2` and its customer's name, for `Dialect::lock_chat`.
macro_rules! lock_chat_head {
    () => {
        concat!(
            "SELECT ",
            chat_columns!(),
            ", (SELECT u.name FROM customers u WHERE u.id = c.customer_id) AS customer_name \
             FROM chats c WHERE c.id = $1 AND c.organization_id = $2"
        )
    };
}

/// SQLite: `BEGIN IMMEDIATE` on the one writer already locks the whole database.
pub const SQLITE: Dialect = Dialect {
    exclude_chat_writers: "",
    lock_organization: concat!(
        "SELECT ",
        organization_columns!(),
        " FROM organizations WHERE id = $1"
    ),
    share_organization: "",
    lock_chat: concat!(lock_chat_head!(), ""),
    append_event: "",
    append_feed: "",
    claim_push_jobs: concat!(claim_push_jobs_head!(), claim_push_jobs_tail!()),
    skip_locked: "",
    claim_email_jobs: concat!(claim_email_jobs_head!(), claim_email_jobs_tail!()),
    now_millis: "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
};

/// Postgres: rows are locked one by one, and concurrent claims skip each other's rows.
///
/// The organization's chat writers (messages) and the changes that lock the organization
/// (routing, agents' limits and roles) meet at a transaction-level advisory lock keyed by
/// the organization: shared by the writers, so they run side by side, each behind its own
/// chat's row; exclusive for the others, which still lock the organization's row as before.
pub const POSTGRES: Dialect = Dialect {
    exclude_chat_writers: "SELECT pg_advisory_xact_lock(17, hashtext($1))",
    lock_organization: concat!(
        "SELECT ",
        organization_columns!(),
        " FROM organizations WHERE id = $1 FOR UPDATE"
    ),
    share_organization: "SELECT pg_advisory_xact_lock_shared(17, hashtext($1))",
    lock_chat: concat!(lock_chat_head!(), " FOR NO KEY UPDATE"),
    append_event: "WITH n AS (UPDATE chats SET last_event_seq = last_event_seq + 1 \
         WHERE id = $2 RETURNING last_event_seq) \
         INSERT INTO chat_events (id, chat_id, organization_id, seq, kind, author_kind, \
         author_id, author_name, text, client_id, visibility, created_at) \
         SELECT $1, $2, $3, n.last_event_seq, $4, $5, $6, $7, $8, $9, $10, $11 FROM n \
         ON CONFLICT (chat_id, author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING \
         RETURNING seq",
    append_feed: "WITH n AS (UPDATE agents SET feed_seq = feed_seq + 1 WHERE id = $1 \
         RETURNING feed_seq) \
         INSERT INTO agent_feed (agent_id, seq, kind, chat_id, event_id, data, created_at) \
         SELECT $1, n.feed_seq, $2, $3, $4, $5, $6 FROM n RETURNING seq",
    claim_push_jobs: concat!(
        claim_push_jobs_head!(),
        " FOR UPDATE SKIP LOCKED",
        claim_push_jobs_tail!()
    ),
    skip_locked: " FOR UPDATE SKIP LOCKED",
    claim_email_jobs: concat!(
        claim_email_jobs_head!(),
        " FOR UPDATE SKIP LOCKED",
        claim_email_jobs_tail!()
    ),
    now_millis: "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
};

/// A database the store runs on: where its connections come from.
pub trait Backend: Send + Sync + 'static {
    /// A connection for reads; back to its pool when dropped.
    type Reader<'a>: Conn + 'a
    where
        Self: 'a;
    /// A transaction on the writer.
    type Writer: Transaction;

    /// `sqlite` or `postgres`.
    fn name(&self) -> &'static str;
    /// A reader; on SQLite it never waits for the writer.
    fn read(&self) -> impl Future<Output = DbResult<Self::Reader<'_>>> + Send;
    /// Begins a write transaction; on SQLite it waits for the one writer.
    fn write(&self) -> impl Future<Output = DbResult<Self::Writer>> + Send;
    /// Applies the backend's pending migrations.
    fn migrate(&self) -> impl Future<Output = DbResult<()>> + Send;
    /// Connection usage, for /metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Closes the connections; later calls fail.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

/// The store's traits, implemented once over a [`Backend`].
pub struct SqlStore<B> {
    backend: B,
}

impl<B: Backend> SqlStore<B> {
    pub(crate) fn new(backend: B) -> Self {
        SqlStore { backend }
    }

    /// The connections themselves, for tests of their settings.
    #[cfg(test)]
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }
}

// ---- helpers over any connection -------------------------------------------------------------

/// Every row, each turned into a value by `read`.
pub async fn all<T: Send>(
    conn: &mut dyn Conn,
    sql: &str,
    params: &[Value<'_>],
    mut read: impl FnMut(&dyn Columns) -> DbResult<T> + Send,
) -> DbResult<Vec<T>> {
    let mut out = Vec::new();
    conn.query(sql, params, &mut |row| {
        out.push(read(row)?);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The first row, if any.
pub async fn optional<T: Send>(
    conn: &mut dyn Conn,
    sql: &str,
    params: &[Value<'_>],
    read: impl FnOnce(&dyn Columns) -> DbResult<T> + Send,
) -> DbResult<Option<T>> {
    let mut read = Some(read);
    let mut out = None;
    conn.query(sql, params, &mut |row| {
        if let Some(read) = read.take() {
            out = Some(read(row)?);
        }
        Ok(())
    })
    .await?;
    Ok(out)
}

/// The first row; [`DbError::NotFound`] when there is none.
pub async fn one<T: Send>(
    conn: &mut dyn Conn,
    sql: &str,
    params: &[Value<'_>],
    read: impl FnOnce(&dyn Columns) -> DbResult<T> + Send,
) -> DbResult<T> {
    optional(conn, sql, params, read)
        .await?
        .ok_or(DbError::NotFound)
}

/// The integer in the first column of the first row (`COUNT(*)` and the like).
pub async fn scalar(conn: &mut dyn Conn, sql: &str, params: &[Value<'_>]) -> DbResult<i64> {
    one(conn, sql, params, |r| r.int(0)).await
}

/// The text in the first column of the first row, if there is a row.
pub async fn optional_text(
    conn: &mut dyn Conn,
    sql: &str,
    params: &[Value<'_>],
) -> DbResult<Option<String>> {
    optional(conn, sql, params, |r| r.text(0)).await
}

/// The text in the first column of every row.
pub async fn texts(conn: &mut dyn Conn, sql: &str, params: &[Value<'_>]) -> DbResult<Vec<String>> {
    all(conn, sql, params, |r| r.text(0)).await
}

/// Runs a statement; the number of rows it changed.
pub async fn execute(conn: &mut dyn Conn, sql: &str, params: &[Value<'_>]) -> DbResult<u64> {
    conn.execute(sql, params).await
}

/// Turns a unique violation into a conflict that says what clashed; other errors pass.
fn on_unique(message: &'static str) -> impl FnOnce(DbError) -> DbError {
    move |err| match err {
        DbError::Conflict(_) => DbError::Conflict(message.into()),
        other => other,
    }
}
