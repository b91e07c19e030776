//! Persistence: the [`Database`] trait and its two implementations, SQLite (the embedded
//! default) and Postgres (for clusters).
//!
//! Both backends run the same SQL: ids are TEXT (UUIDv7 strings), times are BIGINT
//! milliseconds since the Unix epoch (UTC), and parameters are written `$1`, which both
//! drivers accept. So the implementation is written once, in `sql.rs`, and compiled once per
//! backend as a child module of `sqlite.rs` and of `postgres.rs`, each of which supplies its
//! `Db` type, its pools and the few statements where the dialects differ. Generic code over
//! `sqlx::Database` would do the same with far worse compile errors and higher-ranked trait
//! bounds on every future.

mod migrations;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{Agent, Group, Organization, Role, RoutingStatus, UnknownVariant};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for does not exist (in that organization).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the message says what already exists.
    #[error("{0}")]
    Conflict(String),
    /// Anything else: connection, I/O, a bug in SQL.
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                DbError::Conflict("already exists".into())
            }
            other => DbError::Other(other),
        }
    }
}

impl From<UnknownVariant> for DbError {
    fn from(err: UnknownVariant) -> Self {
        DbError::Other(sqlx::Error::Decode(Box::new(err)))
    }
}

/// Turns a unique violation into a conflict that says what clashed; other errors pass.
fn on_unique(message: &'static str) -> impl FnOnce(sqlx::Error) -> DbError {
    move |err| match DbError::from(err) {
        DbError::Conflict(_) => DbError::Conflict(message.into()),
        other => other,
    }
}

/// The result of a store call.
pub type DbResult<T> = Result<T, DbError>;

/// How busy a connection pool is, for /metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` or `write` on SQLite (one writer connection), `main` on Postgres.
    pub name: &'static str,
    pub size: u32,
    pub idle: usize,
}

/// An agent about to be created.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub chat_limit: Option<i32>,
    pub group_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A change to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` returns the agent to the organization's default limit.
    pub chat_limit: Option<Option<i32>>,
    pub group_ids: Option<Vec<String>>,
}

/// A refresh token about to be stored. Only its SHA-256 is kept: a stolen database does not
/// yield usable tokens.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current; it is now spent and the new one stored.
    Rotated {
        agent_id: String,
        session_id: String,
    },
    /// The token had already been spent: someone holds a copy. The whole session is revoked.
    Reused {
        agent_id: String,
        session_id: String,
    },
    /// Unknown, expired, revoked, or its agent was deactivated.
    Invalid,
}

/// Everything Switchboard keeps. Methods that take an `organization_id` only ever see that
/// organization's rows: tenancy is enforced here, not only above.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> DbResult<()>;
    /// Checks that the database answers, for /readyz.
    async fn ping(&self) -> DbResult<()>;
    /// Connection pool usage, for /metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Closes every connection; later calls fail.
    async fn close(&self);

    /// How many organizations exist; zero means a fresh server that needs bootstrapping.
    async fn organization_count(&self) -> DbResult<i64>;
    /// Creates an organization together with its first owner, atomically.
    async fn create_organization(&self, org: &Organization, owner: &NewAgent) -> DbResult<Agent>;
    async fn organization(&self, id: &str) -> DbResult<Organization>;

    async fn agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent>;
    /// The agent with this (normalized) email and their password hash, active or not.
    async fn agent_credentials(&self, email: &str) -> DbResult<Option<(Agent, String)>>;
    async fn agents(&self, organization_id: &str) -> DbResult<Vec<Agent>>;
    async fn create_agent(&self, agent: &NewAgent) -> DbResult<Agent>;
    async fn update_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        update: &AgentUpdate,
    ) -> DbResult<Agent>;
    /// Deactivates an agent and revokes all their sessions in one transaction.
    async fn deactivate_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<Agent>;
    async fn set_password_hash(&self, agent_id: &str, password_hash: &str) -> DbResult<()>;
    /// Records a successful login and sets the routing status it leads to.
    async fn record_login(
        &self,
        agent_id: &str,
        routing_status: RoutingStatus,
        at: DateTime<Utc>,
    ) -> DbResult<Agent>;

    async fn groups(&self, organization_id: &str) -> DbResult<Vec<Group>>;
    async fn create_group(&self, group: &Group) -> DbResult<Group>;

    /// Starts a session (one signed-in app) with its first refresh token.
    async fn create_session(
        &self,
        session_id: &str,
        agent_id: &str,
        first_token: &NewRefreshToken,
    ) -> DbResult<()>;
    /// Spends a refresh token and stores its successor, or detects reuse.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> DbResult<RefreshOutcome>;
    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// The agent behind a live session: `None` when the session was revoked or the agent
    /// deactivated. Checked on every request, so a logout or deactivation takes effect at once.
    async fn session_agent(&self, session_id: &str, agent_id: &str) -> DbResult<Option<Agent>>;
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
