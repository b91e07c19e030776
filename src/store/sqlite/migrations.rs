//! SQLite's migration runner, on the writer connection.
//!
//! It keeps the table sqlx's migrator kept in earlier releases, `_sqlx_migrations`, in the
//! same format (version, description, installed_on, success, checksum = SHA-384 of the SQL,
//! execution_time in nanoseconds), so a database created by an earlier release is
//! recognised, its checksums verified, and only the newer migrations applied.
//!
//! SQLite rebuilds a table to change a constraint, and dropping the old table would cascade
//! through foreign keys; the pragma cannot change inside a transaction, so it is off around
//! all the migrations and each rebuild checks the keys itself before it commits (migration 8).

use std::time::Instant;

use rusqlite::{Connection, params};
use sha2::{Digest, Sha384};

use crate::store::migrations::Embedded;
use crate::store::{DbError, DbResult};

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// The checksum sqlx records: SHA-384 of the migration's text.
pub(super) fn checksum(sql: &str) -> Vec<u8> {
    Sha384::digest(sql.as_bytes()).to_vec()
}

fn refuse(message: String) -> DbError {
    DbError::Other(message.into())
}

/// Applies the migrations of `list` that `conn`'s database lacks, each in its own
/// transaction, after checking the applied ones against it.
pub(super) fn run(conn: &Connection, list: &[Embedded]) -> DbResult<()> {
    conn.execute_batch(CREATE_TABLE)?;
    let applied: Vec<(i64, bool, Vec<u8>)> = {
        let mut statement = conn
            .prepare("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")?;
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?
    };
    for (version, success, stored) in &applied {
        if !success {
            return Err(refuse(format!(
                "migration {version} is partially applied; fix the database and remove its row"
            )));
        }
        match list.iter().find(|m| m.0 == *version) {
            None => {
                return Err(refuse(format!(
                    "migration {version} was applied but is missing from this build"
                )));
            }
            Some(&(_, _, sql)) if checksum(sql) != *stored => {
                return Err(refuse(format!(
                    "migration {version} was applied but has been modified"
                )));
            }
            Some(_) => {}
        }
    }
    let pending: Vec<&Embedded> = list
        .iter()
        .filter(|m| !applied.iter().any(|(version, _, _)| *version == m.0))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let result = pending.into_iter().try_for_each(|m| apply(conn, m));
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    result
}

fn apply(conn: &Connection, &(version, description, sql): &Embedded) -> DbResult<()> {
    let started = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let applied = conn.execute_batch(sql).and_then(|()| {
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
            params![
                version,
                description,
                checksum(sql),
                i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)
            ],
        )
    });
    match applied {
        Ok(_) => Ok(conn.execute_batch("COMMIT")?),
        Err(err) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(refuse(format!(
                "migration {version} ({description}) failed: {err}"
            )))
        }
    }
}
