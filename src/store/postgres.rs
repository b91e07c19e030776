//! The Postgres backend, for several server nodes sharing one database.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;

use super::DbResult;

/// Its row type, named concretely so that `sql.rs` may implement traits for it.
type Row = sqlx::postgres::PgRow;

/// The sqlx database type `sql.rs` is compiled for here.
type Db = sqlx::Postgres;

/// How a SELECT locks the rows it reads for the rest of the transaction.
const FOR_UPDATE: &str = " FOR UPDATE";

/// How a worker's SELECT skips rows another worker has claimed.
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

#[allow(clippy::duplicate_mod)] // deliberate: the same SQL compiled for each backend
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as PostgresStore;

/// Connects to the database at `url` (postgres://user:password@host:port/database).
pub async fn connect(url: &str, max_connections: u32) -> DbResult<PostgresStore> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    Ok(PostgresStore::new(
        pool.clone(),
        pool,
        true,
        None,
        "postgres",
        super::migrations::POSTGRES,
    ))
}
