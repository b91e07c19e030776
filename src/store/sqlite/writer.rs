//! The writer: SQLite admits one writer at a time, so there is one writer connection, behind
//! an async mutex. Every write is a [`WriteTx`] on it, so no write can skip the queue: the
//! type that writes is the one that holds the lock.
//!
//! Statements run in place on the calling task, prepared and cached: a chat change is a
//! dozen short statements, a few microseconds each, with no hand-off to another thread.
//!
//! **Group commit.** A commit writes every page the transaction changed to the WAL: for a
//! message, some thirty pages (the chat row, its indexes, the transcript, the agents' feeds,
//! the search index), over 100 KB, most of it the same pages the next message changes again.
//! So writes that queue up share one transaction: each runs inside its own savepoint (its
//! rollback undoes its changes only), and a write that finishes while others wait for the
//! writer hands the open transaction on instead of committing; the last of the queue (or the
//! `MAX_BATCH`th) commits for all of them. Every write's `commit` returns only once its
//! changes are committed, with the commit's outcome, so an acknowledged write is as durable
//! as before; without a queue a write commits alone, as before, with no added wait.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::{Either, ready};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Mutex, OwnedMutexGuard, oneshot};

use super::connection;
use crate::store::sql::{Conn, Dialect, RowSink, SQLITE, Step, Transaction, Value};
use crate::store::{DbError, DbResult};

/// Most writes sharing one commit: bounds how long the first of them waits for the rest.
const MAX_BATCH: usize = 32;

/// The outcome of a shared commit, for every write in it.
type Outcome = Result<(), Arc<str>>;

/// The writer connection and the transaction its writes share.
struct State {
    conn: Connection,
    /// The open transaction's number, while one is open.
    batch: Option<u64>,
    next_batch: u64,
    /// The writes whose changes are in the open transaction, waiting for its commit.
    waiting: Vec<oneshot::Sender<Outcome>>,
}

impl State {
    /// Commits the open transaction for every write in it; the outcome.
    fn commit(&mut self) -> Outcome {
        self.batch = None;
        let outcome = self.conn.execute_batch("COMMIT").map_err(|err| {
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            Arc::<str>::from(format!("the commit failed: {err}"))
        });
        for waiter in self.waiting.drain(..) {
            let _ = waiter.send(outcome.clone());
        }
        outcome
    }

    /// When SQLite rolled the whole transaction back on its own (a full disk, say), the
    /// writes waiting for it learn so, and the next write begins afresh.
    fn check_rolled_back(&mut self) {
        if self.batch.is_some() && self.conn.is_autocommit() {
            self.batch = None;
            for waiter in self.waiting.drain(..) {
                let _ = waiter.send(Err("SQLite rolled the transaction back".into()));
            }
        }
    }
}

/// The writer connection, shared by every write.
pub(super) struct Writer {
    state: Arc<Mutex<State>>,
    /// Writes waiting for the lock: while there are any, a finished write hands its
    /// transaction on.
    queued: Arc<AtomicUsize>,
    stats: Arc<Stats>,
}

/// Counts for /metrics.
#[derive(Default)]
struct Stats {
    /// Writes committed (each counted once its shared commit succeeded).
    writes: AtomicU64,
    /// Commits run.
    commits: AtomicU64,
}

/// Counts a write waiting for the lock while it exists (a cancelled wait uncounts itself).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn new(queued: &Arc<AtomicUsize>) -> Queued {
        queued.fetch_add(1, Ordering::AcqRel);
        Queued(queued.clone())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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
        // A savepoint's rollback journal stays in memory.
        conn.execute_batch("PRAGMA temp_store = MEMORY")?;
        Ok(Writer {
            state: Arc::new(Mutex::new(State {
                conn,
                batch: None,
                next_batch: 0,
                waiting: Vec::new(),
            })),
            queued: Arc::new(AtomicUsize::new(0)),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Waits for the writer and begins a write on it: in the open transaction when the
    /// write before handed it on, else in a new one.
    pub(super) async fn begin(&self) -> DbResult<WriteTx> {
        let queued = Queued::new(&self.queued);
        let mut state = self.state.clone().lock_owned().await;
        drop(queued);
        state.check_rolled_back();
        if state.batch.is_none() {
            state.conn.execute_batch("BEGIN IMMEDIATE")?;
            state.batch = Some(state.next_batch);
            state.next_batch += 1;
        }
        if let Err(err) = state.conn.execute_batch("SAVEPOINT write") {
            if state.waiting.is_empty() {
                let _ = state.conn.execute_batch("ROLLBACK");
                state.batch = None;
            } else {
                let _ = state.commit();
            }
            return Err(err.into());
        }
        Ok(WriteTx {
            state: Some(state),
            mutex: self.state.clone(),
            queued: self.queued.clone(),
            stats: self.stats.clone(),
            open: true,
        })
    }

    /// The writer connection itself, outside any transaction: for migrations, which manage
    /// their own transactions and pragmas.
    pub(super) async fn lock(&self) -> Locked {
        Locked(self.state.clone().lock_owned().await)
    }

    /// Whether no write is running, for /metrics.
    pub(super) fn is_idle(&self) -> bool {
        self.state.try_lock().is_ok()
    }

    /// The writes committed, and the commits that carried them.
    pub(super) fn commits(&self) -> (u64, u64) {
        (
            self.stats.writes.load(Ordering::Relaxed),
            self.stats.commits.load(Ordering::Relaxed),
        )
    }
}

/// The writer connection, locked.
pub(super) struct Locked(OwnedMutexGuard<State>);

impl std::ops::Deref for Locked {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

/// A write on the writer; dropped without [`Transaction::commit`], its changes roll back
/// (and only its own).
pub struct WriteTx {
    /// Held until the write commits or rolls back.
    state: Option<OwnedMutexGuard<State>>,
    mutex: Arc<Mutex<State>>,
    queued: Arc<AtomicUsize>,
    stats: Arc<Stats>,
    /// Whether the write's savepoint is open.
    open: bool,
}

impl WriteTx {
    fn conn(&self) -> &Connection {
        &self.state.as_ref().expect("a write holds the writer").conn
    }

    /// Hands the open transaction to the writes queued behind, or commits it.
    fn finish(state: &mut State, queued: &AtomicUsize) -> Option<Outcome> {
        if queued.load(Ordering::Acquire) > 0 && state.waiting.len() + 1 < MAX_BATCH {
            None
        } else {
            Some(state.commit())
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        if self.open {
            // Fails only when SQLite already rolled back on its own (a full disk, say).
            if let Err(err) = state.conn.execute_batch("ROLLBACK TO write; RELEASE write") {
                tracing::debug!(%err, "rollback of a write");
            }
        }
        state.check_rolled_back();
        if state.batch.is_some() && self.queued.load(Ordering::Acquire) == 0 {
            if state.waiting.is_empty() {
                let _ = state.conn.execute_batch("ROLLBACK");
                state.batch = None;
            } else {
                let _ = state.commit();
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
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
        Either::Left(ready(connection::query(self.conn(), sql, params, row)))
    }

    fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64> {
        Either::Left(ready(connection::execute(self.conn(), sql, params)))
    }
}

impl Transaction for WriteTx {
    async fn commit(mut self) -> DbResult<()> {
        let mut state = self.state.take().expect("a write holds the writer");
        if let Err(err) = state.conn.execute_batch("RELEASE write") {
            // Put the writer back for Drop to roll this write back.
            self.state = Some(state);
            return Err(err.into());
        }
        self.open = false;
        let batch = state.batch;
        let outcome = match WriteTx::finish(&mut state, &self.queued) {
            Some(outcome) => {
                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                drop(state);
                outcome
            }
            None => {
                let (sender, mut receiver) = oneshot::channel();
                state.waiting.push(sender);
                drop(state);
                // The next write commits for us; should every write queued behind be
                // cancelled before it reaches the writer, this write takes the writer back
                // and commits itself.
                tokio::select! {
                    biased;
                    outcome = &mut receiver => outcome.unwrap_or_else(|_| Err("the writer stopped".into())),
                    mut state = self.mutex.clone().lock_owned() => {
                        match receiver.try_recv() {
                            Ok(outcome) => outcome,
                            Err(_) if state.batch == batch => {
                                self.stats.commits.fetch_add(1, Ordering::Relaxed);
                                state.commit()
                            }
                            Err(_) => {
                                drop(state);
                                receiver.await.unwrap_or_else(|_| Err("the writer stopped".into()))
                            }
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(message) => Err(DbError::Other(message.to_string().into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Synchronous;

    fn writer(dir: &tempfile::TempDir) -> Writer {
        let writer = Writer::open(
            &dir.path().join("w.db"),
            Duration::from_secs(5),
            Synchronous::Normal,
        )
        .unwrap();
        writer
            .state
            .try_lock()
            .unwrap()
            .conn
            .execute_batch("CREATE TABLE t (name TEXT PRIMARY KEY)")
            .unwrap();
        writer
    }

    async fn insert(tx: &mut WriteTx, name: &str) -> DbResult<u64> {
        tx.execute("INSERT INTO t (name) VALUES ($1)", &[Value::Text(name)])
            .await
    }

    async fn names(writer: &Writer) -> Vec<String> {
        let conn = writer.lock().await;
        let mut statement = conn.prepare("SELECT name FROM t ORDER BY name").unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    async fn until_queued(writer: &Writer, count: usize) {
        while writer.queued.load(Ordering::Acquire) < count {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Fifty writes queued behind one share two commits (the batch is at most 32), and each
    /// returns only after its commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_writes_share_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer(&dir));
        let mut first = writer.begin().await.unwrap();
        insert(&mut first, "w00").await.unwrap();
        let mut tasks = Vec::new();
        for i in 1..50 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = writer.begin().await?;
                insert(&mut tx, &format!("w{i:02}")).await?;
                tx.commit().await
            }));
        }
        until_queued(&writer, 49).await;
        first.commit().await.unwrap();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(names(&writer).await.len(), 50);
        assert_eq!(writer.commits(), (50, 2));
    }

    /// A write that rolls back inside a shared transaction takes only its own changes with
    /// it; a failing statement fails only its write.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rollback_in_a_shared_transaction_undoes_only_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer(&dir));
        let mut first = writer.begin().await.unwrap();
        insert(&mut first, "a").await.unwrap();
        let rolled_back = {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut tx = writer.begin().await.unwrap();
                insert(&mut tx, "b").await.unwrap();
                // Dropped: rolled back.
            })
        };
        until_queued(&writer, 1).await;
        let duplicate = {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut tx = writer.begin().await.unwrap();
                assert!(matches!(
                    insert(&mut tx, "a").await,
                    Err(DbError::Conflict(_))
                ));
                insert(&mut tx, "c").await.unwrap();
                tx.commit().await
            })
        };
        until_queued(&writer, 2).await;
        first.commit().await.unwrap();
        rolled_back.await.unwrap();
        duplicate.await.unwrap().unwrap();
        assert_eq!(names(&writer).await, ["a", "c"]);
        assert_eq!(writer.commits(), (2, 1));
    }

    /// When the write queued behind is cancelled before it reaches the writer, the write
    /// that handed the transaction on takes the writer back and commits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_queued_write_does_not_strand_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Arc::new(writer(&dir));
        let mut first = writer.begin().await.unwrap();
        insert(&mut first, "a").await.unwrap();
        let mut queued = Box::pin(writer.begin());
        assert!(
            tokio::time::timeout(Duration::from_millis(20), &mut queued)
                .await
                .is_err()
        );
        assert_eq!(writer.queued.load(Ordering::Acquire), 1);
        let commit = tokio::spawn(first.commit());
        // The commit hands the transaction on to the queued write...
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!commit.is_finished());
        // ...which is cancelled without ever running.
        drop(queued);
        tokio::time::timeout(Duration::from_secs(5), commit)
            .await
            .expect("the commit is not stranded")
            .unwrap()
            .unwrap();
        assert_eq!(names(&writer).await, ["a"]);
        assert_eq!(writer.commits(), (1, 1));
    }
}
