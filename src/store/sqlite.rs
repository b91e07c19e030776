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
    use crate::store::Database;

    /// Migration 8 rebuilds `agents`: every row, every reference to it and every trigger on
    /// it must come through, on a database that has data.
    #[tokio::test]
    async fn rebuilding_agents_keeps_rows_references_and_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let options = super::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let all = super::super::migrations::SQLITE;
        let before_rebuild = &all[..all.iter().position(|m| m.0 == 8).unwrap()];
        super::super::migrations::migrator(before_rebuild)
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        for statement in [
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, created_at) \
             VALUES ('o', 'Acme', 'wk_1', 3, 0)",
            "INSERT INTO agents (id, organization_id, email, name, password_hash, role, \
             created_at, feed_seq) VALUES ('a', 'o', 'ada@acme.test', 'Ada', 'h', 'ADMIN', 0, 7)",
            "INSERT INTO org_groups (id, organization_id, name, created_at) \
             VALUES ('g', 'o', 'Sales', 0)",
            "INSERT INTO group_members (group_id, agent_id) VALUES ('g', 'a')",
            "INSERT INTO sessions (id, agent_id, created_at, last_used_at) VALUES ('s', 'a', 0, 0)",
            "INSERT INTO push_devices (id, agent_id, organization_id, platform, token, app_id, \
             environment, created_at, updated_at) \
             VALUES ('d', 'a', 'o', 'IOS', 't', 'app', 'SANDBOX', 0, 0)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        pool.close().await;

        let store = super::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let pool = sqlx::SqlitePool::connect_with(
            super::SqliteConnectOptions::new()
                .filename(&path)
                .foreign_keys(true),
        )
        .await
        .unwrap();
        let agent: (String, String, i64) =
            sqlx::query_as("SELECT email, role, feed_seq FROM agents WHERE id = 'a'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(agent, ("ada@acme.test".into(), "ADMIN".into(), 7));
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(integrity, "ok");
        // Foreign keys hold again, and the access trigger came back with the table.
        let orphan = sqlx::query(
            "INSERT INTO sessions (id, agent_id, created_at, last_used_at) \
             VALUES ('x', 'missing', 0, 0)",
        )
        .execute(&pool)
        .await;
        assert!(orphan.is_err(), "sessions still reference agents");
        sqlx::query("UPDATE agents SET role = 'AGENT' WHERE id = 'a'")
            .execute(&pool)
            .await
            .unwrap();
        let changed: i64 =
            sqlx::query_scalar("SELECT access_changed_at FROM agents WHERE id = 'a'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(changed > 0);
        // A second agent with the same email fits in another organization only.
        sqlx::query(
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, created_at) \
             VALUES ('o2', 'Other', 'wk_2', 3, 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let insert = |org: &'static str, id: &'static str| {
            sqlx::query(
                "INSERT INTO agents (id, organization_id, email, name, password_hash, role, \
                 created_at) VALUES ($1, $2, 'ada@acme.test', 'Ada', 'h', 'AGENT', 0)",
            )
            .bind(id)
            .bind(org)
            .execute(&pool)
        };
        assert!(insert("o2", "b").await.is_ok());
        assert!(insert("o", "c").await.is_err());
        store.close().await;
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_the_reason() {
        let Err(err) = super::open_url("sqlite::memory:").await else {
            panic!("an in-memory database opened");
        };
        assert!(err.to_string().contains("needs a database file"), "{err}");
    }
}
