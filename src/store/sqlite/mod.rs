//! The SQLite backend: a WAL database file under the data directory, nothing to install.
//!
//! rusqlite only. One writer connection behind an async mutex takes every write, each in a
//! savepoint of a `BEGIN IMMEDIATE` transaction that writes queued behind it share (group
//! commit, writer.rs); a few read connections read beside it
//! (readers.rs); a thread checkpoints the WAL (checkpoint.rs); migrations run on the writer
//! (migrations.rs). Statements are prepared once per connection and run in place on the
//! calling task: no worker thread, no hand-off.

mod checkpoint;
mod connection;
mod migrations;
mod readers;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::sql::{Backend, SqlStore};
use super::{DbError, DbResult, PoolStats};

pub use readers::Reader;
pub use writer::WriteTx;

/// The store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

/// How long a connection waits for the database's write lock (held by another process, or
/// by the checkpointer for a moment) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite's `synchronous` setting, in WAL mode: what a commit waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Synchronous {
    /// The WAL is synced at checkpoints, not at each commit: durable against the server's
    /// crash; a power loss may roll back the last transactions, never corrupt the file.
    #[default]
    Normal,
    /// The WAL is synced at every commit: what was acknowledged survives a power loss too.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "PRAGMA synchronous = NORMAL;",
            Synchronous::Full => "PRAGMA synchronous = FULL;",
        }
    }
}

/// Opens (creating if needed) the database file at `path`.
pub async fn open(path: &Path, synchronous: Synchronous) -> DbResult<SqliteStore> {
    // Opening creates the file and may wait on its lock: off the runtime's threads.
    let path = path.to_owned();
    let backend = tokio::task::spawn_blocking(move || Sqlite::open(&path, synchronous))
        .await
        .map_err(|err| DbError::Other(Box::new(err)))??;
    Ok(SqlStore::new(backend))
}

/// Opens a database named by a `sqlite:` URL: `sqlite:chat.db`, `sqlite://chat.db` or
/// `sqlite:///var/lib/chat.db`; a query string (`?mode=rwc`) is ignored.
pub async fn open_url(url: &str, synchronous: Synchronous) -> DbResult<SqliteStore> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path == ":memory:" || url.contains("mode=memory") {
        return Err(DbError::Other(
            "SQLite needs a database file: an in-memory database cannot be shared by the \
             server's connections"
                .into(),
        ));
    }
    open(Path::new(path), synchronous).await
}

/// SQLite's connections.
pub struct Sqlite {
    writer: writer::Writer,
    readers: readers::Readers,
    closed: AtomicBool,
    /// Dropping it stops the checkpoint thread.
    checkpoints: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Sqlite {
    fn open(path: &Path, synchronous: Synchronous) -> DbResult<Sqlite> {
        // The writer creates the file; the others open it. Only the writer commits; the
        // checkpointer syncs the database file whatever the setting.
        let writer = writer::Writer::open(path, BUSY_TIMEOUT, synchronous)?;
        let checkpoints = checkpoint::start(path, BUSY_TIMEOUT)?;
        Ok(Sqlite {
            writer,
            readers: readers::Readers::new(PathBuf::from(path), BUSY_TIMEOUT),
            closed: AtomicBool::new(false),
            checkpoints: Mutex::new(Some(checkpoints)),
        })
    }

    /// An error once the store is closed.
    fn ensure_open(&self) -> DbResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(DbError::Other("the database is closed".into()));
        }
        Ok(())
    }
}

impl Backend for Sqlite {
    type Reader<'a> = Reader<'a>;
    type Writer = writer::WriteTx;

    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn read(&self) -> DbResult<Reader<'_>> {
        self.ensure_open()?;
        self.readers.take()
    }

    async fn write(&self) -> DbResult<writer::WriteTx> {
        self.ensure_open()?;
        self.writer.begin().await
    }

    async fn migrate(&self) -> DbResult<()> {
        self.ensure_open()?;
        let conn = self.writer.lock().await;
        migrations::run(&conn, super::migrations::SQLITE)
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let (size, idle) = self.readers.stats();
        vec![
            PoolStats {
                name: "read",
                size: u32::try_from(size).unwrap_or(u32::MAX),
                idle,
                commits: None,
            },
            PoolStats {
                name: "write",
                size: 1,
                idle: usize::from(self.writer.is_idle()),
                commits: Some(self.writer.commits()),
            },
        ]
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.checkpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        self.readers.clear();
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::Synchronous;
    use super::migrations::checksum;
    use crate::store::Database;
    use crate::store::migrations::SQLITE;

    /// Builds a database as an earlier release (sqlx's migrator) left it after migration
    /// `last`: the schema, and `_sqlx_migrations` rows as sqlx wrote them.
    fn migrated_by_an_earlier_release(path: &std::path::Path, last: i64) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = OFF;")
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE _sqlx_migrations (
                version BIGINT PRIMARY KEY,
                description TEXT NOT NULL,
                installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                success BOOLEAN NOT NULL,
                checksum BLOB NOT NULL,
                execution_time BIGINT NOT NULL
            )",
        )
        .unwrap();
        for &(version, description, sql) in SQLITE.iter().filter(|m| m.0 <= last) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (?1, ?2, 1, ?3, 1398727)",
                rusqlite::params![version, description, checksum(sql)],
            )
            .unwrap();
        }
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        conn
    }

    /// The checksum an earlier release recorded for migration 1, read from a database it
    /// migrated: the runner must compute the same, or every upgrade would fail.
    #[test]
    fn checksums_are_the_ones_sqlx_recorded() {
        let recorded = "BB2D4B48112D326246F3F4DAD354A44B1A9C1BE0EA2A8968506A66BA1F8AF80B\
                        B1084992481F9729490A6C9FD87D1800";
        let ours: String = checksum(SQLITE[0].2)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(ours, recorded);
    }

    /// A database migrated by an earlier release is recognised: nothing is applied twice
    /// (migration 1 would fail, its tables exist), and the next run changes nothing.
    #[tokio::test]
    async fn a_database_from_an_earlier_release_is_not_migrated_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        drop(migrated_by_an_earlier_release(&path, 8));
        let store = super::open(&path, Synchronous::Normal).await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let conn = Connection::open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM _sqlx_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, SQLITE.len() as i64);
    }

    /// A migration changed after it was applied is refused, as sqlx refused it.
    #[tokio::test]
    async fn a_modified_migration_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = migrated_by_an_earlier_release(&path, 2);
        conn.execute(
            "UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 2",
            [],
        )
        .unwrap();
        drop(conn);
        let store = super::open(&path, Synchronous::Normal).await.unwrap();
        let err = store.migrate().await.expect_err("a modified migration");
        assert!(err.to_string().contains("modified"), "{err}");
        store.close().await;
    }

    /// Migration 8 rebuilds `agents`: every row, every reference to it and every trigger on
    /// it must come through, on a database that has data.
    #[tokio::test]
    async fn rebuilding_agents_keeps_rows_references_and_triggers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = migrated_by_an_earlier_release(&path, 7);
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
            conn.execute_batch(statement).unwrap();
        }
        drop(conn);

        let store = super::open(&path, Synchronous::Normal).await.unwrap();
        store.migrate().await.unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let agent: (String, String, i64) = conn
            .query_row(
                "SELECT email, role, feed_seq FROM agents WHERE id = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(agent, ("ada@acme.test".into(), "ADMIN".into(), 7));
        let broken: i64 = conn
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        // Foreign keys hold again, and the access trigger came back with the table.
        let orphan = conn.execute(
            "INSERT INTO sessions (id, agent_id, created_at, last_used_at) \
             VALUES ('x', 'missing', 0, 0)",
            [],
        );
        assert!(orphan.is_err(), "sessions still reference agents");
        conn.execute("UPDATE agents SET role = 'AGENT' WHERE id = 'a'", [])
            .unwrap();
        let changed: i64 = conn
            .query_row(
                "SELECT access_changed_at FROM agents WHERE id = 'a'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(changed > 0);
        // A second agent with the same email fits in another organization only.
        conn.execute(
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, created_at) \
             VALUES ('o2', 'Other', 'wk_2', 3, 0)",
            [],
        )
        .unwrap();
        let insert = |org: &str, id: &str| {
            conn.execute(
                "INSERT INTO agents (id, organization_id, email, name, password_hash, role, \
                 created_at) VALUES (?1, ?2, 'ada@acme.test', 'Ada', 'h', 'AGENT', 0)",
                [id, org],
            )
        };
        assert!(insert("o2", "b").is_ok());
        assert!(insert("o", "c").is_err());
        store.close().await;
    }

    /// Migration 11 rebuilds `push_devices` for Web Push: devices and the jobs that point at
    /// them come through, and the new constraints hold.
    #[tokio::test]
    async fn rebuilding_push_devices_keeps_devices_and_their_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let conn = migrated_by_an_earlier_release(&path, 10);
        for statement in [
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, created_at) \
             VALUES ('o', 'Acme', 'wk_1', 3, 0)",
            "INSERT INTO agents (id, organization_id, email, name, password_hash, role, \
             created_at) VALUES ('a', 'o', 'ada@acme.test', 'Ada', 'h', 'AGENT', 0)",
            "INSERT INTO push_devices (id, agent_id, organization_id, platform, token, app_id, \
             environment, disabled_reason, created_at, updated_at) \
             VALUES ('d', 'a', 'o', 'IOS', 't', 'app', 'SANDBOX', 'gone', 1, 2)",
            "INSERT INTO push_jobs (id, device_id, agent_id, organization_id, kind, message, \
             status, next_attempt_at, created_at) \
             VALUES ('j', 'd', 'a', 'o', 'NEW_CHAT', '{}', 'PENDING', 0, 0)",
        ] {
            conn.execute_batch(statement).unwrap();
        }
        drop(conn);

        let store = super::open(&path, Synchronous::Normal).await.unwrap();
        store.migrate().await.unwrap();
        store.close().await;
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        let device: (String, String, Option<String>) = conn
            .query_row(
                "SELECT platform, disabled_reason, web_push_p256dh FROM push_devices \
                 WHERE id = 'd'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(device, ("IOS".into(), "gone".into(), None));
        let jobs: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM push_jobs WHERE device_id = 'd'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(jobs, 1);
        let web = |id: &str, token: &str, keys: &str| {
            conn.execute_batch(&format!(
                "INSERT INTO push_devices (id, agent_id, organization_id, platform, token, \
                 app_id, environment, created_at, updated_at, web_push_p256dh, web_push_auth) \
                 VALUES ('{id}', 'a', 'o', 'WEB', '{token}', 'https://acme.test', \
                 'PRODUCTION', 0, 0, {keys})"
            ))
        };
        assert!(web("w1", "https://push.test/1", "'p', 'a'").is_ok());
        assert!(
            web("w2", "https://push.test/2", "NULL, NULL").is_err(),
            "a browser without its keys"
        );
        assert!(
            conn.execute_batch(
                "INSERT INTO push_jobs (id, device_id, agent_id, organization_id, kind, \
                 message, status, next_attempt_at, created_at) \
                 VALUES ('x', 'missing', 'a', 'o', 'NEW_CHAT', '{}', 'PENDING', 0, 0)"
            )
            .is_err(),
            "jobs still reference devices"
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_the_reason() {
        let Err(err) = super::open_url("sqlite::memory:", Synchronous::Normal).await else {
            panic!("an in-memory database opened");
        };
        assert!(err.to_string().contains("needs a database file"), "{err}");
    }

    /// With automatic checkpoints off, only the checkpointer moves pages from the WAL into
    /// the database file: the file grows to hold the migrated tables without any commit
    /// crossing a threshold.
    #[tokio::test]
    async fn the_checkpointer_moves_the_wal_into_the_database_file() {
        use super::checkpoint::CHECKPOINT_EVERY;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.db");
        let store = super::open(&path, Synchronous::Normal).await.unwrap();
        store.migrate().await.unwrap();
        let size = || std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + CHECKPOINT_EVERY * 10;
        while size() < 64 * 1024 && std::time::Instant::now() < deadline {
            tokio::time::sleep(CHECKPOINT_EVERY / 5).await;
        }
        assert!(size() >= 64 * 1024, "still {} bytes", size());
        store.close().await;
    }

    /// The durability setting reaches the connection that commits: FULL syncs the WAL at
    /// every commit (`synchronous` 2), NORMAL at checkpoints (1).
    #[tokio::test]
    async fn the_writer_commits_with_the_configured_durability() {
        for (setting, expected) in [(Synchronous::Normal, 1), (Synchronous::Full, 2)] {
            let dir = tempfile::tempdir().unwrap();
            let store = super::open(&dir.path().join("switchboard.db"), setting)
                .await
                .unwrap();
            let read: i64 = store
                .backend()
                .writer
                .lock()
                .await
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap();
            assert_eq!(read, expected, "{setting:?}");
            store.close().await;
        }
    }
}
