//! The writer: SQLite admits one writer at a time, so there is one writer connection, behind
//! an async mutex. Every write is a [`WriteTx`] on it (`BEGIN IMMEDIATE` … `COMMIT`), so no
//! write can skip the queue: the type that writes is the one that holds the lock.
//!
//! Statements run in place on the calling task, prepared and cached: a chat change is a
//! dozen short statements, a few microseconds each, with no hand-off to another thread.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{Either, ready};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::connection;
use crate::store::DbResult;
use crate::store::sql::{Conn, Dialect, RowSink, SQLITE, Step, Transaction, Value};

/// The writer connection, shared by every write.
pub(super) struct Writer {
    conn: Arc<Mutex<Connection>>,
}

impl Writer {
    /// Opens (creating it if needed) the database file, in WAL mode so that readers run
    /// beside the writer.
    pub(super) fn open(
        path: &Path,
        busy_timeout: Duration,
        synchronous: super::Synchronous,
    ) -> DbResult<Writer> {
        let conn = connection::open(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            busy_timeout,
        )?;
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
        conn.execute_batch(synchronous.pragma())?;
        Ok(Writer {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Waits for the writer and begins a transaction on it.
    pub(super) async fn begin(&self) -> DbResult<WriteTx> {
        let conn = self.conn.clone().lock_owned().await;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(WriteTx { conn, open: true })
    }

    /// The writer connection itself, outside any transaction: for migrations, which manage
    /// their own transactions and pragmas.
    pub(super) async fn lock(&self) -> OwnedMutexGuard<Connection> {
        self.conn.clone().lock_owned().await
    }

    /// Whether no write is running, for /metrics.
    pub(super) fn is_idle(&self) -> bool {
        self.conn.try_lock().is_ok()
    }
}

/// A transaction on the writer; dropped without [`Transaction::commit`], it rolls back.
pub struct WriteTx {
    conn: OwnedMutexGuard<Connection>,
    open: bool,
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.open {
            // Fails only when SQLite already rolled back on its own (a full disk, say).
            if let Err(err) = self.conn.execute_batch("ROLLBACK") {
                tracing::debug!(%err, "rollback of a write transaction");
            }
        }
    }
}

impl Conn for WriteTx {
    fn dialect(&self) -> &'static Dialect {
        &SQLITE
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value<'a>],
        row: &'a mut RowSink<'_>,
    ) -> Step<'a, ()> {
        Either::Left(ready(connection::query(&self.conn, sql, params, row)))
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64> {
        Either::Left(ready(connection::execute(&self.conn, sql, params)))
    }
}

impl Transaction for WriteTx {
    async fn commit(mut self) -> DbResult<()> {
        self.conn.execute_batch("COMMIT")?;
        self.open = false;
        Ok(())
    }
}
