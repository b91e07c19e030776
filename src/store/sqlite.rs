//! The SQLite backend: a WAL database file under the data directory, nothing to install.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{DbError, DbResult};

/// Its row type, named concretely so that `sql.rs` may implement traits for it.
type Row = sqlx::sqlite::SqliteRow;

/// The sqlx database type `sql.rs` is compiled for here.
type Db = sqlx::Sqlite;

/// How a SELECT locks the rows it reads for the rest of the transaction. SQLite needs
/// nothing: its one writer connection already serializes writers.
const FOR_UPDATE: &str = "";

/// How a worker's SELECT skips rows another worker has claimed. SQLite has one writer,
/// so nothing is ever claimed concurrently.
const SKIP_LOCKED: &str = "";

mod writer;

#[allow(clippy::duplicate_mod)] // deliberate: the same SQL compiled for each backend
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as SqliteStore;

/// How many connections serve reads. Writes go through one connection.
const READ_CONNECTIONS: u32 = 8;

/// Opens (creating if needed) the database file at `path`.
pub async fn open(path: &Path) -> DbResult<SqliteStore> {
    connect(
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
    )
    .await
}

/// Opens a database named by a `sqlite:` URL.
pub async fn open_url(url: &str) -> DbResult<SqliteStore> {
    connect(SqliteConnectOptions::from_str(url)?.create_if_missing(true)).await
}

/// How long a writer waits for the database's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

async fn connect(options: SqliteConnectOptions) -> DbResult<SqliteStore> {
    let options = options
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL is durable against application crashes and fast; only a power
        // loss may roll back the last transactions.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        // Checkpoints run on the writer's own thread (see writer.rs), not in whichever
        // connection's commit crosses the threshold.
        .pragma("wal_autocheckpoint", "0")
        .busy_timeout(BUSY_TIMEOUT);
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(options.clone())
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .connect_with(options)
        .await?;
    // The chat writer opens the very file the pools opened, wherever the URL put it.
    let (_, _, file): (i64, String, String) = sqlx::query_as("PRAGMA database_list")
        .fetch_one(&write)
        .await?;
    if file.is_empty() {
        return Err(DbError::Other(sqlx::Error::Configuration(
            "SQLite needs a database file: an in-memory database cannot be shared by the \
             server's connections"
                .into(),
        )));
    }
    let direct = writer::Writer::open(Path::new(&file), BUSY_TIMEOUT)?;
    Ok(SqliteStore::new(
        read,
        write,
        false,
        Some(std::sync::Arc::new(direct)),
        "sqlite",
        super::migrations::SQLITE,
    ))
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_the_reason() {
        let Err(err) = super::open_url("sqlite::memory:").await else {
            panic!("an in-memory database opened");
        };
        assert!(err.to_string().contains("needs a database file"), "{err}");
    }
}
