//! rusqlite under the store's [`Conn`]: parameters bound by number onto prepared, cached
//! statements, rows read in place, errors translated to [`DbError`].

use std::path::Path;
use std::time::Duration;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags};

use crate::store::sql::{At, Columns, RowSink, Value};
use crate::store::{DbError, DbResult};

/// How many prepared statements a connection keeps: every hot statement, with room to spare.
const STATEMENT_CACHE: usize = 64;

impl From<rusqlite::Error> for DbError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
        match err {
            rusqlite::Error::QueryReturnedNoRows => DbError::NotFound,
            rusqlite::Error::SqliteFailure(ref failure, _)
                if matches!(
                    failure.extended_code,
                    SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                DbError::Conflict("already exists".into())
            }
            other => DbError::Other(Box::new(other)),
        }
    }
}

/// Opens a connection to the database file with the settings every connection needs (WAL
/// itself is a property of the file, set once by the writer).
pub(super) fn open(path: &Path, flags: OpenFlags, busy_timeout: Duration) -> DbResult<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy_timeout)?;
    // In WAL mode NORMAL is durable against application crashes and fast; only a power loss
    // may roll back the last transactions. The writer sets FULL instead when configured
    // (`Synchronous`). Checkpoints run on their own thread (checkpoint.rs), not in whichever
    // commit crosses the threshold.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Int(v) => ValueRef::Integer(v),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Bool(v) => ValueRef::Integer(i64::from(v)),
            Value::NullInt | Value::NullText => ValueRef::Null,
            Value::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

/// A prepared statement with `params` bound by number: `$3` takes `params[2]`, wherever and
/// however often it appears.
fn bound<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Value<'_>],
) -> DbResult<CachedStatement<'c>> {
    let mut statement = conn.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=params.len()).contains(n))
            .ok_or_else(|| {
                DbError::Other(
                    format!(
                        "parameter {index} of {sql:?} is not one of $1..${}",
                        params.len()
                    )
                    .into(),
                )
            })?;
        statement.raw_bind_parameter(index, params[number - 1])?;
    }
    Ok(statement)
}

/// Runs a query in place, handing each row to `sink`.
pub(super) fn query(
    conn: &Connection,
    sql: &str,
    params: &[Value<'_>],
    sink: &mut RowSink<'_>,
) -> DbResult<()> {
    let mut statement = bound(conn, sql, params)?;
    let mut rows = statement.raw_query();
    while let Some(row) = rows.next()? {
        sink(row)?;
    }
    Ok(())
}

/// Runs a statement in place; how many rows it changed.
pub(super) fn execute(conn: &Connection, sql: &str, params: &[Value<'_>]) -> DbResult<u64> {
    Ok(bound(conn, sql, params)?.raw_execute()? as u64)
}

fn get<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, at: At<'_>) -> DbResult<T> {
    Ok(match at {
        At::Name(name) => row.get(name)?,
        At::Index(index) => row.get(index)?,
    })
}

impl Columns for rusqlite::Row<'_> {
    fn opt_text_at(&self, at: At<'_>) -> DbResult<Option<String>> {
        get(self, at)
    }

    fn opt_int_at(&self, at: At<'_>) -> DbResult<Option<i64>> {
        get(self, at)
    }

    fn opt_bool_at(&self, at: At<'_>) -> DbResult<Option<bool>> {
        get(self, at)
    }

    fn opt_float_at(&self, at: At<'_>) -> DbResult<Option<f64>> {
        get(self, at)
    }

    fn opt_bytes_at(&self, at: At<'_>) -> DbResult<Option<Vec<u8>>> {
        get(self, at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(conn: &Connection, sql: &str, params: &[Value<'_>]) -> DbResult<i64> {
        let mut value = 0;
        query(conn, sql, params, &mut |row| {
            value = row.int(0)?;
            Ok(())
        })?;
        Ok(value)
    }

    #[test]
    fn parameters_bind_by_number_not_by_position() {
        let conn = Connection::open_in_memory().unwrap();
        let difference = first(
            &conn,
            "SELECT $2 - $1 + $2",
            &[Value::Int(1), Value::Int(10)],
        );
        assert_eq!(difference.unwrap(), 19);
    }

    #[test]
    fn a_parameter_without_a_value_is_an_error_not_a_null() {
        let conn = Connection::open_in_memory().unwrap();
        let err = first(&conn, "SELECT $1, $3", &[Value::Int(1), Value::Int(2)])
            .expect_err("$3 has no value");
        assert!(err.to_string().contains("not one of $1..$2"), "{err}");
    }
}
