//! The read connections: WAL lets them read beside the writer. A read takes an idle
//! connection (opening one when none is idle), runs its statements in place like the
//! writer's, and puts the connection back.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::{Either, ready};
use rusqlite::{Connection, OpenFlags};

use super::connection;
use crate::store::DbResult;
use crate::store::sql::{Conn, Dialect, RowSink, SQLITE, Step, Value};

/// How many idle read connections are kept.
const IDLE_READERS: usize = 8;

/// The pool of read connections.
pub(super) struct Readers {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    /// Connections lent out right now, for /metrics.
    busy: AtomicUsize,
}

impl Readers {
    pub(super) fn new(path: PathBuf, busy_timeout: Duration) -> Readers {
        Readers {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            busy: AtomicUsize::new(0),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An idle reader, or a new one.
    pub(super) fn take(&self) -> DbResult<Reader<'_>> {
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => connection::open(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_ONLY,
                self.busy_timeout,
            )?,
        };
        self.busy.fetch_add(1, Ordering::Relaxed);
        Ok(Reader {
            conn: Some(conn),
            readers: self,
        })
    }

    /// (open connections, idle ones)
    pub(super) fn stats(&self) -> (usize, usize) {
        let idle = self.idle().len();
        (idle + self.busy.load(Ordering::Relaxed), idle)
    }

    /// Closes the idle connections.
    pub(super) fn clear(&self) {
        self.idle().clear();
    }
}

/// A read connection, back among the idle ones when dropped.
pub struct Reader<'a> {
    conn: Option<Connection>,
    readers: &'a Readers,
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.readers.busy.fetch_sub(1, Ordering::Relaxed);
        if let Some(conn) = self.conn.take() {
            let mut idle = self.readers.idle();
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl Reader<'_> {
    fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a reader holds its connection until dropped")
    }
}

impl Conn for Reader<'_> {
    fn dialect(&self) -> &'static Dialect {
        &SQLITE
    }

    fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [Value<'a>],
        row: &'a mut RowSink<'_>,
    ) -> Step<'a, ()> {
        Either::Left(ready(connection::query(self.conn(), sql, params, row)))
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64> {
        Either::Left(ready(connection::execute(self.conn(), sql, params)))
    }
}
