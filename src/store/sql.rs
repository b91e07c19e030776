//! The SQL implementation of [`Database`], compiled once per backend (see the store's module
//! docs). `super::Db` is the sqlx database type of the backend that includes this file.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Pool, Row as _, Transaction};

use super::Db;
use crate::domain::{
    Agent, Chat, ChatEvent, ChatSettings, ChatStatus, Customer, FeedData, FeedEntry, FeedKind,
    Group, NotificationKind, OfflineMessage, Organization, PageView, PushDevice, PushJob,
    PushJobStatus, Role, RoutingCandidate, RoutingStatus,
};
use crate::store::chat_sql::{
    self as stmt, AGENT_COLUMNS, AgentRow, CHAT_COLUMNS, CUSTOMER_COLUMNS, CandidateRow, Columns,
    DEVICE_COLUMNS, EVENT_COLUMNS, JOB_COLUMNS, LOAD_SQL, ORGANIZATION_COLUMNS, OrganizationRow,
    REACHABLE_SQL, agent_from_row, candidate_from_row, chat_from as chat_from_row,
    customer_from as customer_from_row, device_from as device_from_row,
    event_from as event_from_row, feed_data_json, job_from as job_from_row, json_error,
    organization_from_row, parse, push_message_json,
};
use crate::store::migrations::migrator;
use crate::store::{
    AgentLoad, AgentUpdate, ChatStore, ChatTx, CustomerVisit, Database, DbError, DbResult, Direct,
    NewAgent, NewChatEvent, NewRefreshToken, ParticipantRole, PoolStats, PushStore, RecordedVisit,
    RefreshOutcome, WriterHold, from_millis, on_unique, to_millis,
};

/// A store on one SQL backend. SQLite gets a single writer connection (SQLite allows one
/// writer at a time; queuing in the pool beats `SQLITE_BUSY`), a pool of readers, and a
/// [`Direct`] that runs chat transactions; Postgres uses one pool for everything.
pub struct SqlStore {
    read: Pool<Db>,
    write: Pool<Db>,
    /// Whether `read` and `write` are the same pool (Postgres).
    shared_pool: bool,
    /// Runs chat transactions; writes through `write` wait for it.
    direct: Option<Arc<dyn Direct>>,
    backend: &'static str,
    migrations: &'static [(i64, &'static str, &'static str)],
}

/// A transaction on the write pool that holds off the direct writer while it lives. Dropped
/// without a commit, sqlx queues its rollback on the connection's thread; should the direct
/// writer begin before that ran, SQLite's busy timeout makes it wait the moment out.
struct WriteTx {
    tx: Transaction<'static, Db>,
    _hold: Option<WriterHold>,
}

impl WriteTx {
    async fn commit(self) -> DbResult<()> {
        Ok(self.tx.commit().await?)
    }
}

impl std::ops::Deref for WriteTx {
    type Target = <Db as sqlx::Database>::Connection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

impl SqlStore {
    pub(super) fn new(
        read: Pool<Db>,
        write: Pool<Db>,
        shared_pool: bool,
        direct: Option<Arc<dyn Direct>>,
        backend: &'static str,
        migrations: &'static [(i64, &'static str, &'static str)],
    ) -> Self {
        SqlStore {
            read,
            write,
            shared_pool,
            direct,
            backend,
            migrations,
        }
    }

    /// Waits for the direct writer, if any, to finish, and keeps it waiting.
    async fn hold(&self) -> Option<WriterHold> {
        match &self.direct {
            Some(direct) => Some(direct.hold().await),
            None => None,
        }
    }

    async fn begin(&self) -> DbResult<WriteTx> {
        let hold = self.hold().await;
        Ok(WriteTx {
            tx: self.write.begin().await?,
            _hold: hold,
        })
    }
}

// Rows are read as tuples: sqlx's `FromRow` derive would pull in its macro crate, which builds
// both database drivers a second time.

fn seconds_i32(d: chrono::Duration) -> i32 {
    i32::try_from(d.num_seconds()).unwrap_or(i32::MAX)
}

/// id, organization_id, name, created_at
type GroupRow = (String, String, String, i64);

fn group_from_row((id, organization_id, name, created_at): GroupRow) -> Group {
    Group {
        id,
        organization_id,
        name,
        created_at: from_millis(created_at),
    }
}

/// Whether the agent has a live connection at `now`, through any connection.
async fn agent_live(
    conn: &mut <Db as sqlx::Database>::Connection,
    agent_id: &str,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    let live: Option<i64> = sqlx::query_scalar(stmt::AGENT_LIVE)
        .bind(agent_id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(live.is_some_and(|until| until > to_millis(now)))
}

/// Loads one agent with their groups through any connection (pool or transaction).
async fn load_agent(
    conn: &mut <Db as sqlx::Database>::Connection,
    organization_id: &str,
    agent_id: &str,
) -> DbResult<Agent> {
    let row: AgentRow = sqlx::query_as(stmt::AGENT)
        .bind(agent_id)
        .bind(organization_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(DbError::NotFound)?;
    let group_ids: Vec<String> = sqlx::query_scalar(stmt::AGENT_GROUPS)
        .bind(agent_id)
        .fetch_all(&mut *conn)
        .await?;
    agent_from_row(row, group_ids)
}

/// Locks the organization's row until the transaction ends, serializing the changes that
/// must see each other (on Postgres; SQLite's single writer serializes them already).
async fn lock_organization_row(
    conn: &mut <Db as sqlx::Database>::Connection,
    organization_id: &str,
) -> DbResult<()> {
    sqlx::query(&format!(
        "SELECT id FROM organizations WHERE id = $1{}",
        super::FOR_UPDATE
    ))
    .bind(organization_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(())
}

/// Refuses a change that would leave the organization without an active owner besides
/// `agent_id`. Run after [`lock_organization_row`], so no concurrent change slips between
/// this check and the write.
async fn ensure_another_active_owner(
    conn: &mut <Db as sqlx::Database>::Connection,
    organization_id: &str,
    agent_id: &str,
) -> DbResult<()> {
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM agents WHERE organization_id = $1 AND role = 'OWNER' \
         AND active AND id <> $2",
    )
    .bind(organization_id)
    .bind(agent_id)
    .fetch_one(&mut *conn)
    .await?;
    if others == 0 {
        return Err(DbError::LastActiveOwner);
    }
    Ok(())
}

async fn insert_agent(
    conn: &mut <Db as sqlx::Database>::Connection,
    agent: &NewAgent,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO agents (id, organization_id, email, name, password_hash, role, chat_limit, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&agent.id)
    .bind(&agent.organization_id)
    .bind(&agent.email)
    .bind(&agent.name)
    .bind(&agent.password_hash)
    .bind(agent.role.as_str())
    .bind(agent.chat_limit)
    .bind(to_millis(agent.created_at))
    .execute(&mut *conn)
    .await
    .map_err(on_unique("an agent with this email already exists"))?;
    replace_groups(conn, &agent.id, &agent.group_ids).await
}

async fn replace_groups(
    conn: &mut <Db as sqlx::Database>::Connection,
    agent_id: &str,
    group_ids: &[String],
) -> DbResult<()> {
    sqlx::query("DELETE FROM group_members WHERE agent_id = $1")
        .bind(agent_id)
        .execute(&mut *conn)
        .await?;
    for group_id in group_ids {
        sqlx::query(
            "INSERT INTO group_members (group_id, agent_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group_id)
        .bind(agent_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_refresh_token(
    conn: &mut <Db as sqlx::Database>::Connection,
    token: &NewRefreshToken,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&token.token_hash)
    .bind(&token.session_id)
    .bind(to_millis(token.created_at))
    .bind(to_millis(token.expires_at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn revoke(
    conn: &mut <Db as sqlx::Database>::Connection,
    session_id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(to_millis(at))
    .bind(reason)
    .bind(session_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait]
impl Database for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.backend
    }

    async fn migrate(&self) -> DbResult<()> {
        let _hold = self.hold().await;
        let migrator = migrator(self.migrations).await?;
        // SQLite rebuilds a table to change a constraint, and dropping the old table would
        // cascade through foreign keys; sqlx runs each migration in a transaction, where the
        // pragma cannot change, so it is switched off around all of them, on SQLite's one
        // writer connection. A rebuild checks the keys itself before it commits (migration 8).
        let sqlite = self.backend == "sqlite";
        if sqlite {
            sqlx::query("PRAGMA foreign_keys = OFF")
                .execute(&self.write)
                .await?;
        }
        let migrated = migrator
            .run(&self.write)
            .await
            .map_err(|err| DbError::Other(err.into()));
        if sqlite {
            sqlx::query("PRAGMA foreign_keys = ON")
                .execute(&self.write)
                .await?;
        }
        migrated
    }

    async fn ping(&self) -> DbResult<()> {
        let mut tx = self.write.begin().await?;
        // Matches no row, yet takes the write lock (SQLite) or a writable transaction
        // (Postgres, refused on a read-only server).
        sqlx::query("UPDATE organizations SET name = name WHERE id = ''")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        let stats = |name, pool: &Pool<Db>| PoolStats {
            name,
            size: pool.size(),
            idle: pool.num_idle(),
        };
        if self.shared_pool {
            vec![stats("main", &self.write)]
        } else {
            vec![stats("read", &self.read), stats("write", &self.write)]
        }
    }

    async fn close(&self) {
        if let Some(direct) = &self.direct {
            direct.close();
        }
        self.read.close().await;
        self.write.close().await;
    }

    async fn organization_count(&self) -> DbResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
            .fetch_one(&self.read)
            .await?)
    }

    async fn create_organization(&self, org: &Organization, owner: &NewAgent) -> DbResult<Agent> {
        let mut tx = self.begin().await?;
        let settings = &org.settings;
        sqlx::query(
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, \
             auto_transfer_seconds, waiting_long_seconds, customer_idle_seconds, \
             auto_close_seconds, presence_grace_seconds, queue_limit, \
             acceptance_timeout_seconds, created_at, queue_abandon_seconds, \
             new_chats_per_minute) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&org.id)
        .bind(&org.name)
        .bind(&org.widget_key)
        .bind(settings.default_chat_limit)
        .bind(seconds_i32(settings.auto_transfer_after))
        .bind(seconds_i32(settings.waiting_long_after))
        .bind(seconds_i32(settings.customer_idle_after))
        .bind(seconds_i32(settings.auto_close_after))
        .bind(seconds_i32(settings.presence_grace))
        .bind(settings.queue_limit)
        .bind(seconds_i32(settings.acceptance_timeout))
        .bind(to_millis(org.created_at))
        .bind(seconds_i32(settings.queue_abandon_after))
        .bind(settings.new_chats_per_minute)
        .execute(&mut *tx)
        .await?;
        insert_agent(&mut tx, owner).await?;
        let agent = load_agent(&mut tx, &owner.organization_id, &owner.id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn organization(&self, id: &str) -> DbResult<Organization> {
        let row: OrganizationRow = sqlx::query_as(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&self.read)
        .await?;
        Ok(organization_from_row(row))
    }

    async fn agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        let mut conn = self.read.acquire().await?;
        load_agent(&mut conn, organization_id, agent_id).await
    }

    async fn agent_credentials(&self, email: &str) -> DbResult<Vec<(Agent, String)>> {
        let mut conn = self.read.acquire().await?;
        // A handful at most: login checks the password against each.
        let found: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, organization_id, password_hash FROM agents WHERE email = $1 \
             ORDER BY COALESCE(last_login_at, 0) DESC, created_at DESC LIMIT 5",
        )
        .bind(email)
        .fetch_all(&mut *conn)
        .await?;
        let mut credentials = Vec::with_capacity(found.len());
        for (id, organization_id, password_hash) in found {
            let agent = load_agent(&mut conn, &organization_id, &id).await?;
            credentials.push((agent, password_hash));
        }
        Ok(credentials)
    }

    async fn agents(&self, organization_id: &str) -> DbResult<Vec<Agent>> {
        let rows: Vec<AgentRow> = sqlx::query_as(&format!(
            "SELECT {AGENT_COLUMNS} FROM agents a WHERE a.organization_id = $1 \
             ORDER BY a.name, a.id"
        ))
        .bind(organization_id)
        .fetch_all(&self.read)
        .await?;
        let memberships: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.agent_id, m.group_id FROM group_members m \
             JOIN agents a ON a.id = m.agent_id WHERE a.organization_id = $1 \
             ORDER BY m.group_id",
        )
        .bind(organization_id)
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|row| {
                let groups = memberships
                    .iter()
                    .filter(|(agent_id, _)| *agent_id == row.0)
                    .map(|(_, group_id)| group_id.clone())
                    .collect();
                agent_from_row(row, groups)
            })
            .collect()
    }

    async fn create_agent(&self, agent: &NewAgent) -> DbResult<Agent> {
        let mut tx = self.begin().await?;
        insert_agent(&mut tx, agent).await?;
        let created = load_agent(&mut tx, &agent.organization_id, &agent.id).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn update_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        update: &AgentUpdate,
    ) -> DbResult<Agent> {
        let mut tx = self.begin().await?;
        lock_organization_row(&mut tx, organization_id).await?;
        let current = load_agent(&mut tx, organization_id, agent_id).await?;
        let name = update.name.as_ref().unwrap_or(&current.name);
        let role = update.role.unwrap_or(current.role);
        if current.active && current.role == Role::Owner && role != Role::Owner {
            ensure_another_active_owner(&mut tx, organization_id, agent_id).await?;
        }
        let chat_limit = update.chat_limit.unwrap_or(current.chat_limit);
        sqlx::query("UPDATE agents SET name = $1, role = $2, chat_limit = $3 WHERE id = $4")
            .bind(name)
            .bind(role.as_str())
            .bind(chat_limit)
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        if let Some(group_ids) = &update.group_ids {
            replace_groups(&mut tx, agent_id, group_ids).await?;
        }
        let updated = load_agent(&mut tx, organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn deactivate_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<Agent> {
        let mut tx = self.begin().await?;
        lock_organization_row(&mut tx, organization_id).await?;
        let current = load_agent(&mut tx, organization_id, agent_id).await?;
        if current.active && current.role == Role::Owner {
            ensure_another_active_owner(&mut tx, organization_id, agent_id).await?;
        }
        let done = sqlx::query(
            "UPDATE agents SET active = FALSE, routing_status = 'OFFLINE' \
             WHERE id = $1 AND organization_id = $2",
        )
        .bind(agent_id)
        .bind(organization_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = 'agent deactivated' \
             WHERE agent_id = $2 AND revoked_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(agent_id)
        .execute(&mut *tx)
        .await?;
        let agent = load_agent(&mut tx, organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn set_password_hash(&self, agent_id: &str, password_hash: &str) -> DbResult<()> {
        let _hold = self.hold().await;
        let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(agent_id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    async fn record_login(
        &self,
        agent_id: &str,
        routing_status: RoutingStatus,
        at: DateTime<Utc>,
    ) -> DbResult<Agent> {
        let mut tx = self.begin().await?;
        let organization_id: String = sqlx::query_scalar(
            "UPDATE agents SET last_login_at = $1, routing_status = $2 WHERE id = $3 \
             RETURNING organization_id",
        )
        .bind(to_millis(at))
        .bind(routing_status.as_str())
        .bind(agent_id)
        .fetch_one(&mut *tx)
        .await?;
        let agent = load_agent(&mut tx, &organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn groups(&self, organization_id: &str) -> DbResult<Vec<Group>> {
        let rows: Vec<GroupRow> = sqlx::query_as(
            "SELECT id, organization_id, name, created_at FROM org_groups \
             WHERE organization_id = $1 ORDER BY name, id",
        )
        .bind(organization_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(group_from_row).collect())
    }

    async fn create_group(&self, group: &Group) -> DbResult<Group> {
        let _hold = self.hold().await;
        sqlx::query(
            "INSERT INTO org_groups (id, organization_id, name, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&group.id)
        .bind(&group.organization_id)
        .bind(&group.name)
        .bind(to_millis(group.created_at))
        .execute(&self.write)
        .await
        .map_err(on_unique("a group with this name already exists"))?;
        Ok(group.clone())
    }

    async fn create_session(
        &self,
        session_id: &str,
        agent_id: &str,
        first_token: &NewRefreshToken,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, agent_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
        )
        .bind(session_id)
        .bind(agent_id)
        .bind(to_millis(first_token.created_at))
        .execute(&mut *tx)
        .await?;
        insert_refresh_token(&mut tx, first_token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> DbResult<RefreshOutcome> {
        let mut tx = self.begin().await?;
        let found: Option<(String, String, i64, Option<i64>, Option<i64>, bool)> = sqlx::query_as(
            "SELECT t.session_id, s.agent_id, t.expires_at, t.rotated_at, s.revoked_at, \
                 a.active FROM refresh_tokens t \
                 JOIN sessions s ON s.id = t.session_id \
                 JOIN agents a ON a.id = s.agent_id \
                 WHERE t.token_hash = $1",
        )
        .bind(presented_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((session_id, agent_id, expires_at, rotated_at, revoked_at, active)) = found else {
            return Ok(RefreshOutcome::Invalid);
        };
        if revoked_at.is_some() || !active || expires_at <= to_millis(at) {
            return Ok(RefreshOutcome::Invalid);
        }
        // Spend the token only if nobody else did in the meantime: on Postgres a concurrent
        // rotation blocks on the row and then finds rotated_at set.
        let spent = match rotated_at {
            Some(_) => false,
            None => {
                sqlx::query(
                    "UPDATE refresh_tokens SET rotated_at = $1 \
                 WHERE token_hash = $2 AND rotated_at IS NULL",
                )
                .bind(to_millis(at))
                .bind(presented_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1
            }
        };
        if !spent {
            revoke(&mut tx, &session_id, "refresh token reused", at).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::Reused {
                agent_id,
                session_id,
            });
        }
        let next = NewRefreshToken {
            session_id: session_id.clone(),
            ..next.clone()
        };
        insert_refresh_token(&mut tx, &next).await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id = $2")
            .bind(to_millis(at))
            .bind(&session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated {
            agent_id,
            session_id,
        })
    }

    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        revoke(&mut tx, session_id, reason, at).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session_agent(&self, session_id: &str, agent_id: &str) -> DbResult<Option<Agent>> {
        if let Some(direct) = &self.direct {
            return direct.session_agent(session_id, agent_id).await;
        }
        let mut conn = self.read.acquire().await?;
        let organization_id: Option<String> = sqlx::query_scalar(stmt::SESSION_ORGANIZATION)
            .bind(session_id)
            .bind(agent_id)
            .fetch_optional(&mut *conn)
            .await?;
        match organization_id {
            Some(organization_id) => Ok(Some(
                load_agent(&mut conn, &organization_id, agent_id).await?,
            )),
            None => Ok(None),
        }
    }

    async fn change_password(
        &self,
        agent_id: &str,
        password_hash: &str,
        keep_session_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password changed' \
             WHERE agent_id = $2 AND id <> $3 AND revoked_at IS NULL",
        )
        .bind(to_millis(at))
        .bind(agent_id)
        .bind(keep_session_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sign_out_session(
        &self,
        session_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        revoke(&mut tx, session_id, "logout", at).await?;
        let reachable: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE agent_id = $1 AND revoked_at IS NULL) \
             OR EXISTS (SELECT 1 FROM push_devices \
                        WHERE agent_id = $1 AND disabled_reason IS NULL)",
        )
        .bind(agent_id)
        .fetch_one(&mut *tx)
        .await?;
        if !reachable {
            sqlx::query(
                "UPDATE agents SET presence_expires_at = $1, live_until = NULL WHERE id = $2",
            )
            .bind(to_millis(at))
            .bind(agent_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(reachable)
    }

    async fn access_changes_since(&self, since: DateTime<Utc>) -> DbResult<Vec<(String, i64)>> {
        Ok(
            sqlx::query_as("SELECT id, access_changed_at FROM agents WHERE access_changed_at > $1")
                .bind(to_millis(since))
                .fetch_all(&self.read)
                .await?,
        )
    }

    async fn agent_reachable(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let count: i64 = sqlx::query_scalar(stmt::AGENT_REACHABLE)
            .bind(agent_id)
            .bind(to_millis(now))
            .fetch_one(&self.read)
            .await?;
        Ok(count > 0)
    }
}

// ---- chats ---------------------------------------------------------------------------------

use super::Row;

impl Columns for Row {
    fn text(&self, column: &str) -> DbResult<String> {
        Ok(self.try_get(column)?)
    }

    fn opt_text(&self, column: &str) -> DbResult<Option<String>> {
        Ok(self.try_get(column)?)
    }

    fn int(&self, column: &str) -> DbResult<i64> {
        Ok(self.try_get(column)?)
    }

    fn opt_int(&self, column: &str) -> DbResult<Option<i64>> {
        Ok(self.try_get(column)?)
    }

    fn int32(&self, column: &str) -> DbResult<i32> {
        Ok(self.try_get(column)?)
    }
}

fn offline_message_from_row(row: &Row) -> DbResult<OfflineMessage> {
    Ok(OfflineMessage {
        id: row.try_get("id")?,
        organization_id: row.try_get("organization_id")?,
        customer_id: row.try_get("customer_id")?,
        group_id: row.try_get("group_id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        text: row.try_get("text")?,
        handled: row.try_get("handled")?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

fn feed_data(json: &str) -> DbResult<FeedData> {
    serde_json::from_str(json).map_err(json_error)
}

/// A chat transaction on the writer connection.
struct SqlTx {
    tx: WriteTx,
}

#[async_trait]
impl ChatTx for SqlTx {
    async fn lock_organization(&mut self, organization_id: &str) -> DbResult<Organization> {
        let row: OrganizationRow =
            sqlx::query_as(&format!("{}{}", stmt::ORGANIZATION, super::FOR_UPDATE))
                .bind(organization_id)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(organization_from_row(row))
    }

    async fn agent(&mut self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        load_agent(&mut self.tx, organization_id, agent_id).await
    }

    async fn chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<Chat> {
        let row = sqlx::query(stmt::CHAT)
            .bind(chat_id)
            .bind(organization_id)
            .fetch_one(&mut *self.tx)
            .await?;
        chat_from_row(&row)
    }

    async fn insert_chat(&mut self, chat: &Chat) -> DbResult<()> {
        sqlx::query(stmt::INSERT_CHAT)
            .bind(&chat.id)
            .bind(&chat.organization_id)
            .bind(&chat.customer_id)
            .bind(&chat.group_id)
            .bind(chat.channel.as_str())
            .bind(chat.status.as_str())
            .bind(to_millis(chat.created_at))
            .bind(to_millis(chat.last_customer_activity_at))
            .bind(to_millis(chat.last_activity_at))
            .execute(&mut *self.tx)
            .await?;
        self.update_chat(chat).await
    }

    async fn update_chat(&mut self, chat: &Chat) -> DbResult<()> {
        let millis = |t: Option<DateTime<Utc>>| t.map(to_millis);
        sqlx::query(stmt::UPDATE_CHAT)
            .bind(&chat.group_id)
            .bind(chat.status.as_str())
            .bind(&chat.assignee_id)
            .bind(chat.attention.as_str())
            .bind(millis(chat.queued_at))
            .bind(millis(chat.assigned_at))
            .bind(millis(chat.first_response_at))
            .bind(millis(chat.closed_at))
            .bind(chat.rating.map(|r| r.as_str()))
            .bind(&chat.rating_comment)
            .bind(millis(chat.awaiting_reply_since))
            .bind(to_millis(chat.last_customer_activity_at))
            .bind(to_millis(chat.last_activity_at))
            .bind(millis(chat.agent_typing_since))
            .bind(millis(chat.acceptance_deadline))
            .bind(&chat.id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn routing_candidates(
        &mut self,
        organization: &Organization,
        group_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<RoutingCandidate>> {
        let rows: Vec<CandidateRow> = sqlx::query_as(stmt::ROUTING_CANDIDATES)
            .bind(&organization.id)
            .bind(to_millis(now))
            .bind(group_id.unwrap_or(""))
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| candidate_from_row(organization, row))
            .collect())
    }

    async fn previous_agent_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        Ok(sqlx::query_scalar(stmt::PREVIOUS_AGENT_OF_CUSTOMER)
            .bind(customer_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn open_chat_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        Ok(sqlx::query_scalar(stmt::OPEN_CHAT_OF_CUSTOMER)
            .bind(customer_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn participants(&mut self, chat_id: &str) -> DbResult<Vec<(String, ParticipantRole)>> {
        let rows: Vec<(String, String)> = sqlx::query_as(stmt::PARTICIPANTS)
            .bind(chat_id)
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(agent, role)| (agent, ParticipantRole::from_stored(&role)))
            .collect())
    }

    async fn add_participant(
        &mut self,
        chat_id: &str,
        agent_id: &str,
        role: ParticipantRole,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        sqlx::query(stmt::ADD_PARTICIPANT)
            .bind(chat_id)
            .bind(agent_id)
            .bind(role.as_str())
            .bind(to_millis(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn supervisors(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar(stmt::SUPERVISORS)
            .bind(organization_id)
            .bind(group_id.unwrap_or(""))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn append_event(&mut self, event: &NewChatEvent) -> DbResult<ChatEvent> {
        let seq: i64 = sqlx::query_scalar(stmt::NEXT_EVENT_SEQ)
            .bind(&event.chat_id)
            .fetch_one(&mut *self.tx)
            .await?;
        let stored = event.stored(seq);
        sqlx::query(stmt::INSERT_EVENT)
            .bind(&stored.id)
            .bind(&stored.chat_id)
            .bind(&stored.organization_id)
            .bind(stored.seq)
            .bind(stored.kind.as_str())
            .bind(stored.author_kind.as_str())
            .bind(&stored.author_id)
            .bind(&stored.author_name)
            .bind(&stored.text)
            .bind(&stored.client_id)
            .bind(stored.visibility.as_str())
            .bind(to_millis(stored.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(stored)
    }

    async fn message_by_client_id(
        &mut self,
        chat_id: &str,
        author_id: &str,
        client_id: &str,
    ) -> DbResult<Option<ChatEvent>> {
        let row = sqlx::query(stmt::MESSAGE_BY_CLIENT_ID)
            .bind(chat_id)
            .bind(author_id)
            .bind(client_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn append_feed(
        &mut self,
        agent_id: &str,
        kind: FeedKind,
        chat_id: Option<&str>,
        event: Option<&ChatEvent>,
        data: &FeedData,
        at: DateTime<Utc>,
    ) -> DbResult<FeedEntry> {
        let seq: i64 = sqlx::query_scalar(stmt::NEXT_FEED_SEQ)
            .bind(agent_id)
            .fetch_one(&mut *self.tx)
            .await?;
        let json = feed_data_json(data)?;
        sqlx::query(stmt::INSERT_FEED)
            .bind(agent_id)
            .bind(seq)
            .bind(kind.as_str())
            .bind(chat_id)
            .bind(event.map(|e| e.id.as_str()))
            .bind(&json)
            .bind(to_millis(at))
            .execute(&mut *self.tx)
            .await?;
        Ok(FeedEntry {
            agent_id: agent_id.to_owned(),
            seq,
            kind,
            chat_id: chat_id.map(str::to_owned),
            event: event.cloned(),
            data: data.clone(),
            created_at: at,
        })
    }

    async fn set_routing_status(&mut self, agent_id: &str, status: RoutingStatus) -> DbResult<()> {
        sqlx::query(stmt::SET_ROUTING_STATUS)
            .bind(status.as_str())
            .bind(agent_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn mark_assigned(&mut self, agent_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        sqlx::query(stmt::MARK_ASSIGNED)
            .bind(to_millis(at))
            .bind(agent_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn queued_chats(&mut self, organization_id: &str) -> DbResult<Vec<Chat>> {
        let rows = sqlx::query(stmt::QUEUED_CHATS)
            .bind(organization_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(chat_from_row).collect()
    }

    async fn agent_live(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        agent_live(&mut self.tx, agent_id, now).await
    }

    async fn push_targets(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
    ) -> DbResult<Vec<PushDevice>> {
        let rows = sqlx::query(stmt::PUSH_TARGETS)
            .bind(agent_id)
            .bind(kind.as_str())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn insert_push_job(&mut self, job: &PushJob) -> DbResult<()> {
        sqlx::query(stmt::INSERT_PUSH_JOB)
            .bind(&job.id)
            .bind(&job.device_id)
            .bind(&job.agent_id)
            .bind(&job.organization_id)
            .bind(job.kind.as_str())
            .bind(&job.chat_id)
            .bind(push_message_json(&job.message)?)
            .bind(job.status.as_str())
            .bind(job.attempts)
            .bind(to_millis(job.next_attempt_at))
            .bind(to_millis(job.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn pending_push_jobs(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar(stmt::PENDING_PUSH_JOBS)
            .bind(agent_id)
            .bind(kind.as_str())
            .bind(chat_id.unwrap_or(""))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn update_push_job_message(
        &mut self,
        job_id: &str,
        message: &crate::domain::PushMessage,
    ) -> DbResult<()> {
        sqlx::query(stmt::UPDATE_PUSH_JOB_MESSAGE)
            .bind(push_message_json(message)?)
            .bind(job_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn queue_push_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar(stmt::QUEUE_PUSH_RECIPIENTS)
            .bind(organization_id)
            .bind(to_millis(now))
            .bind(group_id.unwrap_or(""))
            .bind(to_millis(since))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn queued_count(&mut self, organization_id: &str, except: Option<&str>) -> DbResult<i64> {
        Ok(sqlx::query_scalar(stmt::QUEUED_COUNT)
            .bind(organization_id)
            .bind(except.unwrap_or(""))
            .fetch_one(&mut *self.tx)
            .await?)
    }

    async fn chats_started_since(
        &mut self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<(i64, Option<DateTime<Utc>>)> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(stmt::CHATS_STARTED_SINCE)
            .bind(organization_id)
            .bind(to_millis(since))
            .fetch_one(&mut *self.tx)
            .await?;
        Ok((count, oldest.map(from_millis)))
    }

    async fn agent_reachable(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let count: i64 = sqlx::query_scalar(stmt::AGENT_REACHABLE)
            .bind(agent_id)
            .bind(to_millis(now))
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(count > 0)
    }

    async fn latest_customer_message(&mut self, chat_id: &str) -> DbResult<Option<String>> {
        Ok(sqlx::query_scalar(stmt::LATEST_CUSTOMER_MESSAGE)
            .bind(chat_id)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    async fn customer_name(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        Ok(sqlx::query_scalar(stmt::CUSTOMER_NAME)
            .bind(customer_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .flatten())
    }

    async fn insert_offline_message(&mut self, message: &OfflineMessage) -> DbResult<()> {
        insert_offline_message(&mut self.tx, message).await
    }

    async fn offline_message_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        Ok(sqlx::query_scalar(stmt::OFFLINE_MESSAGE_RECIPIENTS)
            .bind(organization_id)
            .bind(group_id.unwrap_or(""))
            .fetch_all(&mut *self.tx)
            .await?)
    }

    async fn commit(self: Box<Self>) -> DbResult<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl ChatStore for SqlStore {
    async fn begin(&self) -> DbResult<Box<dyn ChatTx>> {
        if let Some(direct) = &self.direct {
            return direct.begin().await;
        }
        Ok(Box::new(SqlTx {
            tx: self.begin().await?,
        }))
    }

    async fn organization_by_widget_key(&self, widget_key: &str) -> DbResult<Organization> {
        let row: OrganizationRow = sqlx::query_as(&format!(
            "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE widget_key = $1"
        ))
        .bind(widget_key)
        .fetch_one(&self.read)
        .await?;
        Ok(organization_from_row(row))
    }

    async fn update_organization_settings(
        &self,
        organization_id: &str,
        settings: &ChatSettings,
    ) -> DbResult<Organization> {
        let _hold = self.hold().await;
        let done = sqlx::query(
            "UPDATE organizations SET default_chat_limit = $1, auto_transfer_seconds = $2, \
             waiting_long_seconds = $3, customer_idle_seconds = $4, auto_close_seconds = $5, \
             presence_grace_seconds = $6, queue_limit = $7, acceptance_timeout_seconds = $8, \
             queue_abandon_seconds = $10, new_chats_per_minute = $11 WHERE id = $9",
        )
        .bind(settings.default_chat_limit)
        .bind(seconds_i32(settings.auto_transfer_after))
        .bind(seconds_i32(settings.waiting_long_after))
        .bind(seconds_i32(settings.customer_idle_after))
        .bind(seconds_i32(settings.auto_close_after))
        .bind(seconds_i32(settings.presence_grace))
        .bind(settings.queue_limit)
        .bind(seconds_i32(settings.acceptance_timeout))
        .bind(organization_id)
        .bind(seconds_i32(settings.queue_abandon_after))
        .bind(settings.new_chats_per_minute)
        .execute(&self.write)
        .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::NotFound);
        }
        self.organization(organization_id).await
    }

    async fn record_visit(&self, visit: &CustomerVisit, new_id: &str) -> DbResult<RecordedVisit> {
        let mut tx = self.begin().await?;
        let recorded = match upsert_customer(&mut tx, visit, &visit.visitor_id, new_id).await? {
            Some(recorded) => recorded,
            // Someone else's visitor id: a customer of their own, under an id of their own.
            None => upsert_customer(
                &mut tx,
                visit,
                &crate::domain::new_id(),
                &crate::domain::new_id(),
            )
            .await?
            .ok_or(DbError::NotFound)?,
        };
        if let Some(url) = &visit.page_url {
            insert_page_view(
                &mut tx,
                &recorded.customer.id,
                url,
                visit.page_title.as_deref(),
                visit.at,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn customer(&self, organization_id: &str, customer_id: &str) -> DbResult<Customer> {
        if let Some(direct) = &self.direct {
            return direct.customer(organization_id, customer_id).await;
        }
        let row = sqlx::query(stmt::CUSTOMER)
            .bind(customer_id)
            .bind(organization_id)
            .fetch_one(&self.read)
            .await?;
        customer_from_row(&row)
    }

    async fn record_page_view(
        &self,
        organization_id: &str,
        customer_id: &str,
        url: &str,
        title: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<Customer> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(&format!(
            "UPDATE customers SET current_page_url = $1, current_page_title = $2, \
             last_seen_at = $3 WHERE id = $4 AND organization_id = $5 RETURNING {CUSTOMER_COLUMNS}"
        ))
        .bind(url)
        .bind(title)
        .bind(to_millis(at))
        .bind(customer_id)
        .bind(organization_id)
        .fetch_one(&mut *tx)
        .await?;
        insert_page_view(&mut tx, customer_id, url, title, at).await?;
        tx.commit().await?;
        customer_from_row(&row)
    }

    async fn page_views(&self, customer_id: &str, limit: i64) -> DbResult<Vec<PageView>> {
        let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT url, title, viewed_at FROM page_views WHERE customer_id = $1 \
             ORDER BY viewed_at DESC, id DESC LIMIT $2",
        )
        .bind(customer_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(url, title, at)| PageView {
                url,
                title,
                viewed_at: from_millis(at),
            })
            .collect())
    }

    async fn chat(&self, organization_id: &str, chat_id: &str) -> DbResult<Chat> {
        let row = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.id = $1 AND c.organization_id = $2"
        ))
        .bind(chat_id)
        .bind(organization_id)
        .fetch_one(&self.read)
        .await?;
        chat_from_row(&row)
    }

    async fn participated(&self, chat_id: &str, agent_id: &str) -> DbResult<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM chat_participants WHERE chat_id = $1 AND agent_id = $2 LIMIT 1",
        )
        .bind(chat_id)
        .bind(agent_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    async fn chats(
        &self,
        organization_id: &str,
        statuses: &[ChatStatus],
        assignee_id: Option<&str>,
    ) -> DbResult<Vec<Chat>> {
        let wanted: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.organization_id = $1 \
             AND c.status IN ($2, $3, $4) AND ($5 = '' OR c.assignee_id = $5) \
             ORDER BY c.created_at DESC, c.id DESC"
        ))
        .bind(organization_id)
        .bind(wanted.first().copied().unwrap_or(""))
        .bind(wanted.get(1).copied().unwrap_or(""))
        .bind(wanted.get(2).copied().unwrap_or(""))
        .bind(assignee_id.unwrap_or(""))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(chat_from_row).collect()
    }

    async fn customer_chats(&self, customer_id: &str) -> DbResult<Vec<Chat>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.customer_id = $1 \
             ORDER BY c.created_at DESC, c.id DESC"
        ))
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(chat_from_row).collect()
    }

    async fn chat_events(
        &self,
        chat_id: &str,
        after_seq: i64,
        limit: i64,
        include_agents_only: bool,
    ) -> DbResult<Vec<ChatEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM chat_events e WHERE e.chat_id = $1 AND e.seq > $2 \
             AND ($3 OR e.visibility = 'PUBLIC') ORDER BY e.seq LIMIT $4"
        ))
        .bind(chat_id)
        .bind(after_seq)
        .bind(include_agents_only)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn chat_events_before(
        &self,
        chat_id: &str,
        before_seq: i64,
        limit: i64,
        include_agents_only: bool,
        messages_only: bool,
    ) -> DbResult<Vec<ChatEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM chat_events e WHERE e.chat_id = $1 AND e.seq < $2 \
             AND ($3 OR e.visibility = 'PUBLIC') AND (NOT $5 OR e.kind = 'MESSAGE') \
             ORDER BY e.seq DESC LIMIT $4"
        ))
        .bind(chat_id)
        .bind(before_seq)
        .bind(include_agents_only)
        .bind(limit)
        .bind(messages_only)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn chat_event_seq(&self, chat_id: &str) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT last_event_seq FROM chats WHERE id = $1")
                .bind(chat_id)
                .fetch_one(&self.read)
                .await?,
        )
    }

    async fn feed(&self, agent_id: &str, after_seq: i64, limit: i64) -> DbResult<Vec<FeedEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT f.agent_id, f.seq AS feed_seq, f.kind AS feed_kind, f.chat_id AS feed_chat_id, \
             f.data, f.created_at AS feed_created_at, f.event_id, {EVENT_COLUMNS} \
             FROM agent_feed f LEFT JOIN chat_events e ON e.id = f.event_id \
             WHERE f.agent_id = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3"
        ))
        .bind(agent_id)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let event_id: Option<String> = row.try_get("event_id")?;
                let data: String = row.try_get("data")?;
                Ok(FeedEntry {
                    agent_id: row.try_get("agent_id")?,
                    seq: row.try_get("feed_seq")?,
                    kind: parse(row.try_get("feed_kind")?)?,
                    chat_id: row.try_get("feed_chat_id")?,
                    event: event_id.map(|_| event_from_row(row)).transpose()?,
                    data: feed_data(&data)?,
                    created_at: from_millis(row.try_get("feed_created_at")?),
                })
            })
            .collect()
    }

    async fn feed_seq(&self, agent_id: &str) -> DbResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT feed_seq FROM agents WHERE id = $1")
                .bind(agent_id)
                .fetch_one(&self.read)
                .await?,
        )
    }

    async fn active_chats(&self) -> DbResult<Vec<(Chat, ChatSettings)>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS} FROM chats c WHERE c.status = 'ACTIVE' ORDER BY c.organization_id"
        ))
        .fetch_all(&self.read)
        .await?;
        let mut chats = Vec::with_capacity(rows.len());
        let mut settings: Option<(String, ChatSettings)> = None;
        for row in &rows {
            let chat = chat_from_row(row)?;
            let org_settings = match &settings {
                Some((org, s)) if *org == chat.organization_id => *s,
                _ => {
                    let s = self.organization(&chat.organization_id).await?.settings;
                    settings = Some((chat.organization_id.clone(), s));
                    s
                }
            };
            chats.push((chat, org_settings));
        }
        Ok(chats)
    }

    async fn agent_loads(
        &self,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<AgentLoad>> {
        let loads: Vec<(String, i64, bool)> = sqlx::query_as(&format!(
            "SELECT a.id, ({LOAD_SQL}) AS load, ({REACHABLE_SQL}) AS reachable FROM agents a \
             WHERE a.organization_id = $1"
        ))
        .bind(organization_id)
        .bind(to_millis(now))
        .fetch_all(&self.read)
        .await?;
        let agents = self.agents(organization_id).await?;
        Ok(agents
            .into_iter()
            .filter_map(|agent| {
                let (_, load, reachable) = loads.iter().find(|(id, _, _)| *id == agent.id)?;
                Some(AgentLoad {
                    active_chats: *load,
                    reachable: *reachable,
                    agent,
                })
            })
            .collect())
    }

    async fn set_presence(
        &self,
        agent_ids: &[String],
        until: DateTime<Utc>,
        live: bool,
    ) -> DbResult<()> {
        let mut tx = self.begin().await?;
        for id in agent_ids {
            // An agent signed out of every app has no presence to extend: a socket closing
            // after its session ended must not make them reachable for another grace period.
            sqlx::query(
                "UPDATE agents SET presence_expires_at = $1, live_until = $2 WHERE id = $3 \
                 AND EXISTS (SELECT 1 FROM sessions s \
                             WHERE s.agent_id = agents.id AND s.revoked_at IS NULL)",
            )
            .bind(to_millis(until))
            .bind(live.then(|| to_millis(until)))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn average_handle_seconds(&self, organization_id: &str) -> DbResult<Option<i64>> {
        let since = to_millis(crate::domain::now() - chrono::Duration::days(1));
        let average: Option<f64> = sqlx::query_scalar(
            "SELECT AVG(CAST(closed_at - assigned_at AS DOUBLE PRECISION)) FROM chats \
             WHERE organization_id = $1 AND status = 'CLOSED' AND assigned_at IS NOT NULL \
             AND closed_at > $2",
        )
        .bind(organization_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(average.map(|ms| (ms / 1000.0).round() as i64))
    }

    async fn chats_started_since(
        &self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<i64> {
        let (count, _oldest): (i64, Option<i64>) = sqlx::query_as(stmt::CHATS_STARTED_SINCE)
            .bind(organization_id)
            .bind(to_millis(since))
            .fetch_one(&self.read)
            .await?;
        Ok(count)
    }

    async fn renew_customer_presence(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        let _hold = self.hold().await;
        sqlx::query("UPDATE chats SET customer_seen_at = $1 WHERE id = $2 AND status = 'QUEUED'")
            .bind(to_millis(at))
            .bind(chat_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn abandoned_queued_chats(&self, now: DateTime<Utc>) -> DbResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT c.id, c.organization_id FROM chats c \
             JOIN organizations o ON o.id = c.organization_id \
             WHERE c.status = 'QUEUED' \
             AND c.last_customer_activity_at <= $1 - o.queue_abandon_seconds * 1000 \
             AND COALESCE(c.customer_seen_at, 0) <= $1 - o.queue_abandon_seconds * 1000 \
             AND COALESCE(c.queued_at, 0) <= $1 - o.queue_abandon_seconds * 1000 \
             ORDER BY c.organization_id",
        )
        .bind(to_millis(now))
        .fetch_all(&self.read)
        .await?)
    }

    async fn touch_customer_activity(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        let _hold = self.hold().await;
        /// Typing is reported often; the idle timers need a resolution of seconds, not keys.
        const RESOLUTION_MS: i64 = 5_000;
        sqlx::query(
            "UPDATE chats SET last_customer_activity_at = $1, last_activity_at = $1 \
             WHERE id = $2 AND last_customer_activity_at < $3",
        )
        .bind(to_millis(at))
        .bind(chat_id)
        .bind(to_millis(at) - RESOLUTION_MS)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn set_agent_typing(
        &self,
        chat_id: &str,
        typing: bool,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let _hold = self.hold().await;
        let sql = if typing {
            "UPDATE chats SET agent_typing_since = $1 WHERE id = $2 AND agent_typing_since IS NULL"
        } else {
            // The auto-transfer clock restarts when the agent stops typing without sending.
            "UPDATE chats SET agent_typing_since = NULL, awaiting_reply_since = \
             CASE WHEN awaiting_reply_since IS NULL THEN NULL ELSE $1 END \
             WHERE id = $2 AND agent_typing_since IS NOT NULL"
        };
        sqlx::query(sql)
            .bind(to_millis(at))
            .bind(chat_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn offline_messages(&self, organization_id: &str) -> DbResult<Vec<OfflineMessage>> {
        let rows = sqlx::query(
            "SELECT id, organization_id, customer_id, group_id, name, email, text, handled, \
             created_at FROM offline_messages WHERE organization_id = $1 \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(organization_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(offline_message_from_row).collect()
    }

    async fn offline_message(&self, organization_id: &str, id: &str) -> DbResult<OfflineMessage> {
        let row = sqlx::query(
            "SELECT id, organization_id, customer_id, group_id, name, email, text, handled, \
             created_at FROM offline_messages WHERE id = $1 AND organization_id = $2",
        )
        .bind(id)
        .bind(organization_id)
        .fetch_one(&self.read)
        .await?;
        offline_message_from_row(&row)
    }

    async fn set_offline_message_handled(
        &self,
        organization_id: &str,
        id: &str,
        handled: bool,
    ) -> DbResult<OfflineMessage> {
        let _hold = self.hold().await;
        let row = sqlx::query(
            "UPDATE offline_messages SET handled = $1 WHERE id = $2 AND organization_id = $3 \
             RETURNING id, organization_id, customer_id, group_id, name, email, text, handled, \
             created_at",
        )
        .bind(handled)
        .bind(id)
        .bind(organization_id)
        .fetch_one(&self.write)
        .await?;
        offline_message_from_row(&row)
    }
}

/// Inserts the customer `visitor_id`, or updates them when the visit presents their secret
/// (or they have none yet, from before secrets: the visit claims them with its new one).
/// `None` when the customer exists and the secret does not match: nothing was written.
async fn upsert_customer(
    conn: &mut <Db as sqlx::Database>::Connection,
    visit: &CustomerVisit,
    visitor_id: &str,
    new_id: &str,
) -> DbResult<Option<RecordedVisit>> {
    let at = to_millis(visit.at);
    // A returning visitor keeps what they told us before unless they tell us anew.
    let row = sqlx::query(&format!(
        "INSERT INTO customers (id, organization_id, visitor_id, name, email, location, \
         ip_address, current_page_url, current_page_title, referrer, user_agent, visits, \
         created_at, last_seen_at, visitor_secret_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $12, $13) \
         ON CONFLICT (organization_id, visitor_id) DO UPDATE SET \
         name = COALESCE(excluded.name, customers.name), \
         email = COALESCE(excluded.email, customers.email), \
         location = COALESCE(excluded.location, customers.location), \
         ip_address = COALESCE(excluded.ip_address, customers.ip_address), \
         current_page_url = COALESCE(excluded.current_page_url, customers.current_page_url), \
         current_page_title = COALESCE(excluded.current_page_title, customers.current_page_title), \
         referrer = COALESCE(excluded.referrer, customers.referrer), \
         user_agent = COALESCE(excluded.user_agent, customers.user_agent), \
         visits = customers.visits + 1, last_seen_at = excluded.last_seen_at, \
         visitor_secret_hash = COALESCE(customers.visitor_secret_hash, excluded.visitor_secret_hash) \
         WHERE customers.visitor_secret_hash IS NULL OR customers.visitor_secret_hash = $14 \
         RETURNING {CUSTOMER_COLUMNS}, visitor_secret_hash"
    ))
    .bind(new_id)
    .bind(&visit.organization_id)
    .bind(visitor_id)
    .bind(&visit.name)
    .bind(&visit.email)
    .bind(&visit.location)
    .bind(&visit.ip_address)
    .bind(&visit.page_url)
    .bind(&visit.page_title)
    .bind(&visit.referrer)
    .bind(&visit.user_agent)
    .bind(at)
    .bind(&visit.new_secret_hash)
    .bind(&visit.presented_secret_hash)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored_hash: Option<String> = row.try_get("visitor_secret_hash")?;
    Ok(Some(RecordedVisit {
        customer: customer_from_row(&row)?,
        secret_issued: stored_hash.as_deref() == Some(visit.new_secret_hash.as_str()),
    }))
}

async fn insert_page_view(
    conn: &mut <Db as sqlx::Database>::Connection,
    customer_id: &str,
    url: &str,
    title: Option<&str>,
    at: DateTime<Utc>,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO page_views (id, customer_id, url, title, viewed_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(crate::domain::new_id())
    .bind(customer_id)
    .bind(url)
    .bind(title)
    .bind(to_millis(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_offline_message(
    conn: &mut <Db as sqlx::Database>::Connection,
    message: &OfflineMessage,
) -> DbResult<()> {
    sqlx::query(stmt::INSERT_OFFLINE_MESSAGE)
        .bind(&message.id)
        .bind(&message.organization_id)
        .bind(&message.customer_id)
        .bind(&message.group_id)
        .bind(&message.name)
        .bind(&message.email)
        .bind(&message.text)
        .bind(message.handled)
        .bind(to_millis(message.created_at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- push ----------------------------------------------------------------------------------

#[async_trait]
impl PushStore for SqlStore {
    async fn upsert_push_device(&self, device: &PushDevice) -> DbResult<PushDevice> {
        let _hold = self.hold().await;
        let row = sqlx::query(&format!(
            "INSERT INTO push_devices ({DEVICE_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10, $10) \
             ON CONFLICT (token) DO UPDATE SET agent_id = excluded.agent_id, \
             organization_id = excluded.organization_id, platform = excluded.platform, \
             app_id = excluded.app_id, environment = excluded.environment, \
             locale = excluded.locale, device_name = excluded.device_name, \
             disabled_reason = NULL, updated_at = excluded.updated_at \
             WHERE push_devices.organization_id = excluded.organization_id \
             RETURNING {DEVICE_COLUMNS}"
        ))
        .bind(&device.id)
        .bind(&device.agent_id)
        .bind(&device.organization_id)
        .bind(device.platform.as_str())
        .bind(&device.token)
        .bind(&device.app_id)
        .bind(device.environment.as_str())
        .bind(&device.locale)
        .bind(&device.device_name)
        .bind(to_millis(device.updated_at))
        .fetch_optional(&self.write)
        .await?
        // The token belongs to an agent of another organization: it stays there.
        .ok_or_else(|| DbError::Conflict("this device token cannot be registered".into()))?;
        device_from_row(&row)
    }

    async fn delete_push_device(&self, agent_id: &str, token: &str) -> DbResult<bool> {
        let mut tx = self.begin().await?;
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM push_devices WHERE agent_id = $1 AND token = $2")
                .bind(agent_id)
                .bind(token)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(id) = id else { return Ok(false) };
        sqlx::query("DELETE FROM push_jobs WHERE device_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM push_devices WHERE id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn push_devices(&self, agent_id: &str) -> DbResult<Vec<PushDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM push_devices WHERE agent_id = $1 ORDER BY created_at"
        ))
        .bind(agent_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn push_preferences(&self, agent_id: &str) -> DbResult<Vec<(NotificationKind, bool)>> {
        let rows: Vec<(String, bool)> =
            sqlx::query_as("SELECT kind, enabled FROM push_preferences WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_all(&self.read)
                .await?;
        rows.into_iter()
            .map(|(kind, enabled)| Ok((parse(kind)?, enabled)))
            .collect()
    }

    async fn set_push_preference(
        &self,
        agent_id: &str,
        kind: NotificationKind,
        enabled: bool,
    ) -> DbResult<()> {
        let _hold = self.hold().await;
        sqlx::query(
            "INSERT INTO push_preferences (agent_id, kind, enabled) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id, kind) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(agent_id)
        .bind(kind.as_str())
        .bind(enabled)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn claim_push_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(PushJob, PushDevice)>> {
        if let Some(direct) = &self.direct {
            return direct.claim_push_jobs(now, locked_until, limit).await;
        }
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&format!(
            "{}{}{}",
            stmt::CLAIM_PUSH_JOBS_HEAD,
            super::SKIP_LOCKED,
            stmt::CLAIM_PUSH_JOBS_TAIL
        ))
        .bind(to_millis(locked_until))
        .bind(to_millis(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = job_from_row(row)?;
            let device = sqlx::query(stmt::DEVICE)
                .bind(&job.device_id)
                .fetch_one(&mut *tx)
                .await?;
            claimed.push((job, device_from_row(&device)?));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn finish_push_job(
        &self,
        job_id: &str,
        status: PushJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        if let Some(direct) = &self.direct {
            return direct
                .finish_push_job(job_id, status, next_attempt_at, error, at)
                .await;
        }
        sqlx::query(stmt::FINISH_PUSH_JOB)
            .bind(status.as_str())
            .bind(to_millis(next_attempt_at))
            .bind(error)
            .bind(to_millis(at))
            .bind(job_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn disable_push_device(
        &self,
        device_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let _hold = self.hold().await;
        sqlx::query("UPDATE push_devices SET disabled_reason = $1, updated_at = $2 WHERE id = $3")
            .bind(reason)
            .bind(to_millis(at))
            .bind(device_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn push_outbox_depth(&self) -> DbResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM push_jobs WHERE status IN ('PENDING', 'SENDING')",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn next_push_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        if let Some(direct) = &self.direct {
            return direct.next_push_due().await;
        }
        let next: Option<i64> = sqlx::query_scalar(stmt::NEXT_PUSH_DUE)
            .fetch_one(&self.read)
            .await?;
        Ok(next.map(from_millis))
    }

    async fn push_jobs(&self, agent_id: &str) -> DbResult<Vec<PushJob>> {
        let rows = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM push_jobs WHERE agent_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(agent_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn unread_chats(&self, agent_id: &str) -> DbResult<i64> {
        if let Some(direct) = &self.direct {
            return direct.unread_chats(agent_id).await;
        }
        Ok(sqlx::query_scalar(stmt::UNREAD_CHATS)
            .bind(agent_id)
            .fetch_one(&self.read)
            .await?)
    }

    async fn agent_live(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let mut conn = self.read.acquire().await?;
        agent_live(&mut conn, agent_id, now).await
    }

    async fn acknowledge_assignments(&self, agent_id: &str) -> DbResult<()> {
        let _hold = self.hold().await;
        // Almost every connection has nothing to acknowledge: look before taking the writer.
        let waiting: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM chats WHERE assignee_id = $1 AND acceptance_deadline IS NOT NULL LIMIT 1",
        )
        .bind(agent_id)
        .fetch_optional(&self.read)
        .await?;
        if waiting.is_none() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE chats SET acceptance_deadline = NULL WHERE assignee_id = $1 \
             AND acceptance_deadline IS NOT NULL",
        )
        .bind(agent_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
