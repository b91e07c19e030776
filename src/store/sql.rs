//! The SQL implementation of [`Database`], compiled once per backend (see the store's module
//! docs). `super::Db` is the sqlx database type of the backend that includes this file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Pool, Transaction};

use super::Db;
use crate::domain::{Agent, Group, Organization, RoutingStatus};
use crate::store::migrations::migrator;
use crate::store::{
    AgentUpdate, Database, DbError, DbResult, NewAgent, NewRefreshToken, PoolStats, RefreshOutcome,
    from_millis, on_unique, to_millis,
};

/// A store on one SQL backend. SQLite gets a single writer connection (SQLite allows one
/// writer at a time; queuing in the pool beats `SQLITE_BUSY`) and a pool of readers.
/// Postgres uses one pool for both.
pub struct SqlStore {
    read: Pool<Db>,
    write: Pool<Db>,
    /// Whether `read` and `write` are the same pool (Postgres).
    shared_pool: bool,
    backend: &'static str,
    migrations: &'static [(i64, &'static str, &'static str)],
}

impl SqlStore {
    pub(super) fn new(
        read: Pool<Db>,
        write: Pool<Db>,
        shared_pool: bool,
        backend: &'static str,
        migrations: &'static [(i64, &'static str, &'static str)],
    ) -> Self {
        SqlStore {
            read,
            write,
            shared_pool,
            backend,
            migrations,
        }
    }

    async fn begin(&self) -> DbResult<Transaction<'static, Db>> {
        Ok(self.write.begin().await?)
    }
}

// Rows are read as tuples: sqlx's `FromRow` derive would pull in its macro crate, which builds
// both database drivers a second time.

/// id, name, widget_key, default_chat_limit, created_at
type OrganizationRow = (String, String, String, i32, i64);

fn organization_from_row(row: OrganizationRow) -> Organization {
    let (id, name, widget_key, default_chat_limit, created_at) = row;
    Organization {
        id,
        name,
        widget_key,
        default_chat_limit,
        created_at: from_millis(created_at),
    }
}

const AGENT_COLUMNS: &str = "a.id, a.organization_id, a.email, a.name, a.role, \
     a.routing_status, a.chat_limit, a.active, a.last_login_at, a.created_at";

/// The columns of AGENT_COLUMNS, in order.
type AgentRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i32>,
    bool,
    Option<i64>,
    i64,
);

fn agent_from_row(row: AgentRow, group_ids: Vec<String>) -> DbResult<Agent> {
    let (
        id,
        organization_id,
        email,
        name,
        role,
        routing_status,
        chat_limit,
        active,
        last_login_at,
        created_at,
    ) = row;
    Ok(Agent {
        id,
        organization_id,
        email,
        name,
        role: role.parse()?,
        routing_status: routing_status.parse()?,
        chat_limit,
        group_ids,
        active,
        last_login_at: last_login_at.map(from_millis),
        created_at: from_millis(created_at),
    })
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

/// Loads one agent with their groups through any connection (pool or transaction).
async fn load_agent(
    conn: &mut <Db as sqlx::Database>::Connection,
    organization_id: &str,
    agent_id: &str,
) -> DbResult<Agent> {
    let row: AgentRow = sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents a WHERE a.id = $1 AND a.organization_id = $2"
    ))
    .bind(agent_id)
    .bind(organization_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DbError::NotFound)?;
    let group_ids: Vec<String> = sqlx::query_scalar(
        "SELECT group_id FROM group_members WHERE agent_id = $1 ORDER BY group_id",
    )
    .bind(agent_id)
    .fetch_all(&mut *conn)
    .await?;
    agent_from_row(row, group_ids)
}

async fn insert_agent(tx: &mut Transaction<'static, Db>, agent: &NewAgent) -> DbResult<()> {
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
    .execute(&mut **tx)
    .await
    .map_err(on_unique("an agent with this email already exists"))?;
    replace_groups(tx, &agent.id, &agent.group_ids).await
}

async fn replace_groups(
    tx: &mut Transaction<'static, Db>,
    agent_id: &str,
    group_ids: &[String],
) -> DbResult<()> {
    sqlx::query("DELETE FROM group_members WHERE agent_id = $1")
        .bind(agent_id)
        .execute(&mut **tx)
        .await?;
    for group_id in group_ids {
        sqlx::query(
            "INSERT INTO group_members (group_id, agent_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(group_id)
        .bind(agent_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn insert_refresh_token(
    tx: &mut Transaction<'static, Db>,
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn revoke(
    tx: &mut Transaction<'static, Db>,
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Database for SqlStore {
    fn backend_name(&self) -> &'static str {
        self.backend
    }

    async fn migrate(&self) -> DbResult<()> {
        let migrator = migrator(self.migrations).await?;
        migrator
            .run(&self.write)
            .await
            .map_err(|err| DbError::Other(err.into()))
    }

    async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
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
        sqlx::query(
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&org.id)
        .bind(&org.name)
        .bind(&org.widget_key)
        .bind(org.default_chat_limit)
        .bind(to_millis(org.created_at))
        .execute(&mut *tx)
        .await?;
        insert_agent(&mut tx, owner).await?;
        let agent = load_agent(&mut tx, &owner.organization_id, &owner.id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn organization(&self, id: &str) -> DbResult<Organization> {
        let row: OrganizationRow = sqlx::query_as(
            "SELECT id, name, widget_key, default_chat_limit, created_at \
             FROM organizations WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.read)
        .await?;
        Ok(organization_from_row(row))
    }

    async fn agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        let mut conn = self.read.acquire().await?;
        load_agent(&mut conn, organization_id, agent_id).await
    }

    async fn agent_credentials(&self, email: &str) -> DbResult<Option<(Agent, String)>> {
        let mut conn = self.read.acquire().await?;
        let found: Option<(String, String, String)> = sqlx::query_as(
            "SELECT id, organization_id, password_hash FROM agents WHERE email = $1",
        )
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((id, organization_id, password_hash)) = found else {
            return Ok(None);
        };
        let agent = load_agent(&mut conn, &organization_id, &id).await?;
        Ok(Some((agent, password_hash)))
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
        let current = load_agent(&mut tx, organization_id, agent_id).await?;
        let name = update.name.as_ref().unwrap_or(&current.name);
        let role = update.role.unwrap_or(current.role);
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
        let mut conn = self.read.acquire().await?;
        let organization_id: Option<String> = sqlx::query_scalar(
            "SELECT a.organization_id FROM sessions s JOIN agents a ON a.id = s.agent_id \
             WHERE s.id = $1 AND s.agent_id = $2 AND s.revoked_at IS NULL AND a.active",
        )
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
}
