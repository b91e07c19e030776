//! The SQLite backend: a WAL database file under the data directory, nothing to install.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::DbResult;

/// The sqlx database type `sql.rs` is compiled for here.
type Db = sqlx::Sqlite;

/// How a SELECT locks the rows it reads for the rest of the transaction. SQLite needs
/// nothing: its one writer connection already serializes writers.
const FOR_UPDATE: &str = "";

/// How a worker's SELECT skips rows another worker has claimed. SQLite has one writer,
/// so nothing is ever claimed concurrently.
const SKIP_LOCKED: &str = "";

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

async fn connect(options: SqliteConnectOptions) -> DbResult<SqliteStore> {
    let options = options
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL is durable against application crashes and fast; only a power
        // loss may roll back the last transactions.
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .connect_with(options.clone())
        .await?;
    let read = SqlitePoolOptions::new()
        .max_connections(READ_CONNECTIONS)
        .connect_with(options)
        .await?;
    Ok(SqliteStore::new(
        read,
        write,
        false,
        "sqlite",
        super::migrations::SQLITE,
    ))
}
