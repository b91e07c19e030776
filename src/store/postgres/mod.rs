//! The Postgres backend, for several server nodes sharing one database: sqlx only.
//!
//! One pool serves reads and write transactions; rows are locked where the SQL asks for it
//! (the [`POSTGRES`] dialect), so concurrent nodes serialize on the organization's row and
//! push workers skip each other's jobs.

use std::borrow::Cow;
use std::time::Duration;

use futures_util::future::{BoxFuture, Either};
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{PgConnection, PgPool, Postgres as Pg, Row as _};

use super::migrations::{Embedded, POSTGRES as MIGRATIONS};
use super::sql::{
    At, Backend, Columns, Conn, Dialect, POSTGRES, RowSink, SqlStore, Step, Transaction, Value,
};
use super::{DbError, DbResult, PoolStats};

/// The store on Postgres.
pub type PostgresStore = SqlStore<Postgres>;

/// Connects to the database at `url` (postgres://user:password@host:port/database).
pub async fn connect(url: &str, max_connections: u32) -> DbResult<PostgresStore> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await?;
    Ok(SqlStore::new(Postgres { pool }))
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                DbError::Conflict("already exists".into())
            }
            other => DbError::Other(Box::new(other)),
        }
    }
}

/// Postgres's connection pool.
pub struct Postgres {
    pool: PgPool,
}

impl Backend for Postgres {
    type Reader<'a> = Reader;
    type Writer = Tx;

    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn read(&self) -> DbResult<Reader> {
        Ok(Reader(self.pool.acquire().await?))
    }

    async fn write(&self) -> DbResult<Tx> {
        Ok(Tx(self.pool.begin().await?))
    }

    async fn migrate(&self) -> DbResult<()> {
        let migrator = Migrator::new(EmbeddedSource(MIGRATIONS))
            .await
            .map_err(|err| DbError::Other(Box::new(err)))?;
        migrator
            .run(&self.pool)
            .await
            .map_err(|err| DbError::Other(Box::new(err)))
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        vec![PoolStats {
            name: "main",
            size: self.pool.size(),
            idle: self.pool.num_idle(),
            commits: None,
        }]
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// A pooled connection for reads.
pub struct Reader(PoolConnection<Pg>);

/// A transaction; sqlx rolls it back when it is dropped without a commit.
pub struct Tx(sqlx::Transaction<'static, Pg>);

fn bind<'q>(
    mut query: Query<'q, Pg, PgArguments>,
    params: &'q [Value<'q>],
) -> Query<'q, Pg, PgArguments> {
    for param in params {
        query = match *param {
            Value::Int(v) => query.bind(v),
            Value::Text(v) => query.bind(v),
            Value::Bool(v) => query.bind(v),
            Value::NullInt => query.bind(None::<i64>),
            Value::NullText => query.bind(None::<&str>),
            Value::Bytes(v) => query.bind(v),
        };
    }
    query
}

fn query<'a>(
    conn: &'a mut PgConnection,
    sql: &'a str,
    params: &'a [Value<'a>],
    sink: &'a mut RowSink<'_>,
) -> Step<'a, ()> {
    Either::Right(Box::pin(async move {
        let rows = bind(sqlx::query(sql), params).fetch_all(&mut *conn).await?;
        for row in &rows {
            sink(row)?;
        }
        Ok(())
    }) as BoxFuture<'a, DbResult<()>>)
}

fn execute<'a>(conn: &'a mut PgConnection, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64> {
    Either::Right(Box::pin(async move {
        Ok(bind(sqlx::query(sql), params)
            .execute(&mut *conn)
            .await?
            .rows_affected())
    }))
}

/// A reader and a transaction run statements alike, on the connection they wrap.
macro_rules! postgres_conn {
    ($($conn:ty),*) => {$(
        impl Conn for $conn {
            fn dialect(&self) -> &'static Dialect {
                &POSTGRES
            }

            fn query<'a>(
                &'a mut self,
                sql: &'a str,
                params: &'a [Value<'a>],
                row: &'a mut RowSink<'_>,
            ) -> Step<'a, ()> {
                query(&mut self.0, sql, params, row)
            }

            fn execute<'a>(&'a mut self, sql: &'a str, params: &'a [Value<'a>]) -> Step<'a, u64> {
                execute(&mut self.0, sql, params)
            }
        }
    )*};
}

postgres_conn!(Reader, Tx);

impl Transaction for Tx {
    async fn commit(self) -> DbResult<()> {
        Ok(self.0.commit().await?)
    }
}

/// A column decoded as `T`, by name or position.
fn get<'r, T>(row: &'r PgRow, at: At<'_>) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, Pg> + sqlx::Type<Pg>,
{
    match at {
        At::Name(name) => row.try_get(name),
        At::Index(index) => row.try_get(index),
    }
}

impl Columns for PgRow {
    fn opt_text_at(&self, at: At<'_>) -> DbResult<Option<String>> {
        Ok(get(self, at)?)
    }

    fn opt_int_at(&self, at: At<'_>) -> DbResult<Option<i64>> {
        // BIGINT columns and COUNT(*) are INT8, INTEGER ones INT4: sqlx decodes each only
        // as its own width.
        match get::<Option<i64>>(self, at) {
            Ok(value) => Ok(value),
            Err(sqlx::Error::ColumnDecode { .. }) => {
                Ok(get::<Option<i32>>(self, at)?.map(i64::from))
            }
            Err(err) => Err(err.into()),
        }
    }

    fn opt_bool_at(&self, at: At<'_>) -> DbResult<Option<bool>> {
        Ok(get(self, at)?)
    }

    fn opt_float_at(&self, at: At<'_>) -> DbResult<Option<f64>> {
        Ok(get(self, at)?)
    }

    fn opt_ints_at(&self, at: At<'_>) -> DbResult<Option<Vec<i64>>> {
        Ok(get(self, at)?)
    }

    fn opt_bytes_at(&self, at: At<'_>) -> DbResult<Option<Vec<u8>>> {
        Ok(get(self, at)?)
    }
}

#[derive(Debug)]
struct EmbeddedSource(&'static [Embedded]);

impl MigrationSource<'static> for EmbeddedSource {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}
