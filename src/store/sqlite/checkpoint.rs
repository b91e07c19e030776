//! The checkpoint thread: copies the WAL back into the database file beside the writer.
//!
//! SQLite checkpoints by default in the commit that takes the WAL past 1,000 pages: copying
//! 4 MB and syncing inside the single writer's commit, on a tokio worker, several times a
//! second under load. Every write waited for it. Automatic checkpoints are off on every
//! connection (connection.rs); a passive checkpoint here copies what readers no longer need
//! and never blocks a commit.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::OpenFlags;

use crate::store::{DbError, DbResult};

/// How often the WAL is copied back into the database file.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Starts the thread; it stops when the returned sender is dropped.
pub(super) fn start(path: &Path, busy_timeout: Duration) -> DbResult<mpsc::Sender<()>> {
    let conn = super::connection::open(path, OpenFlags::SQLITE_OPEN_READ_WRITE, busy_timeout)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if let Err(err) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        })
        .map_err(|err| DbError::Other(Box::new(err)))?;
    Ok(stop)
}
