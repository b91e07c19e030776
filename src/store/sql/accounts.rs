//! Organizations, agents, groups and sessions: the [`Database`] trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{agent_from, chat_from, group_from, organization_from};
use super::{
    Backend, Conn, SqlStore, Transaction, all, execute, on_unique, one, optional, optional_text,
    scalar, texts,
};
use crate::domain::{Agent, Group, Organization, Role, RoutingStatus, WidgetSettings};
use crate::store::{
    AgentUpdate, Database, DbError, DbResult, EnteredChat, NewAgent, NewRefreshToken, PoolStats,
    RefreshOutcome, to_millis,
};

const AGENT: &str = concat!(
    "SELECT ",
    agent_columns!(),
    " FROM agents a WHERE a.id = $1 AND a.organization_id = $2"
);

const AGENT_GROUPS: &str =
    "SELECT group_id FROM group_members WHERE agent_id = $1 ORDER BY group_id";

/// Agent `$2` with session `$1`, if the session is open and the agent active: one row per
/// group the agent is in (the group in `member_of`, in order), or one row with no group.
/// Every request of an agent asks it, so it is one statement.
const SESSION_AGENT: &str = concat!(
    "SELECT ",
    agent_columns!(),
    ", m.group_id AS member_of FROM sessions s JOIN agents a ON a.id = s.agent_id \
     LEFT JOIN group_members m ON m.agent_id = a.id \
     WHERE s.id = $1 AND s.agent_id = $2 AND s.revoked_at IS NULL AND a.active \
     ORDER BY m.group_id"
);

/// 1 when agent `$1` is reachable at `$2`, else 0.
const AGENT_REACHABLE: &str = concat!(
    "SELECT COUNT(*) FROM agents a WHERE a.id = $1 AND (",
    reachable_sql!(),
    ")"
);

const AGENT_LIVE: &str = "SELECT live_until FROM agents WHERE id = $1";

fn seconds_i32(d: chrono::Duration) -> i32 {
    i32::try_from(d.num_seconds()).unwrap_or(i32::MAX)
}

/// One agent with their groups.
pub(super) async fn load_agent(
    conn: &mut dyn Conn,
    organization_id: &str,
    agent_id: &str,
) -> DbResult<Agent> {
    let row = optional(conn, AGENT, params![agent_id, organization_id], |r| {
        agent_from(r, Vec::new())
    })
    .await?
    .ok_or(DbError::NotFound)?;
    let group_ids = texts(conn, AGENT_GROUPS, params![agent_id]).await?;
    Ok(Agent { group_ids, ..row })
}

/// Whether the agent has a live connection at `now`.
pub(super) async fn agent_live(
    conn: &mut dyn Conn,
    agent_id: &str,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    let live = one(conn, AGENT_LIVE, params![agent_id], |r| r.opt_int(0)).await?;
    Ok(live.is_some_and(|until| until > to_millis(now)))
}

/// Whether the agent is reachable at `now` by routing's rule.
pub(super) async fn agent_reachable(
    conn: &mut dyn Conn,
    agent_id: &str,
    now: DateTime<Utc>,
) -> DbResult<bool> {
    Ok(scalar(conn, AGENT_REACHABLE, params![agent_id, to_millis(now)]).await? > 0)
}

/// Locks the organization's row until the transaction ends, serializing the changes that
/// must see each other. First it waits for the organization's chat writers in progress
/// ([`enter_chat`]) and keeps new ones out: they see the organization as it was before or
/// after this change, never during it.
pub(super) async fn lock_organization(
    conn: &mut dyn Conn,
    organization_id: &str,
) -> DbResult<Organization> {
    let exclude = conn.dialect().exclude_chat_writers;
    if !exclude.is_empty() {
        execute(conn, exclude, params![organization_id]).await?;
    }
    let sql = conn.dialect().lock_organization;
    one(conn, sql, params![organization_id], organization_from).await
}

/// The organization and whether it has an enabled webhook endpoint: a change that finds
/// none need not look its endpoints up.
const ENTER_ORGANIZATION: &str = concat!(
    "SELECT ",
    organization_columns!(),
    ", EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.organization_id = organizations.id \
     AND w.enabled) AS has_webhooks FROM organizations WHERE id = $1"
);

/// Enters chat `chat_id` of the organization as one of its chat writers: beside the other
/// chat writers of the organization, after and before whatever locks the organization
/// ([`lock_organization`]), and alone in the chat, whose row it locks until the transaction
/// ends. The organization is read, not locked. Three statements at most, one round trip
/// each: a message's transaction is mostly round trips.
pub(super) async fn enter_chat(
    conn: &mut dyn Conn,
    organization_id: &str,
    chat_id: &str,
) -> DbResult<EnteredChat> {
    let share = conn.dialect().share_organization;
    if !share.is_empty() {
        execute(conn, share, params![organization_id]).await?;
    }
    let (organization, has_webhooks) =
        one(conn, ENTER_ORGANIZATION, params![organization_id], |r| {
            Ok((organization_from(r)?, r.bool("has_webhooks")?))
        })
        .await?;
    let sql = conn.dialect().lock_chat;
    let (chat, customer_name) = optional(conn, sql, params![chat_id, organization_id], |r| {
        Ok((chat_from(r)?, r.opt_text("customer_name")?))
    })
    .await?
    .ok_or(DbError::NotFound)?;
    Ok(EnteredChat {
        organization,
        has_webhooks,
        chat,
        customer_name,
    })
}

/// Refuses a change that would leave the organization without an active owner besides
/// `agent_id`. Run after [`lock_organization`], so no concurrent change slips between this
/// check and the write.
async fn ensure_another_active_owner(
    conn: &mut dyn Conn,
    organization_id: &str,
    agent_id: &str,
) -> DbResult<()> {
    let others = scalar(
        conn,
        "SELECT COUNT(*) FROM agents WHERE organization_id = $1 AND role = 'OWNER' \
         AND active AND id <> $2",
        params![organization_id, agent_id],
    )
    .await?;
    if others == 0 {
        return Err(DbError::LastActiveOwner);
    }
    Ok(())
}

async fn insert_agent(conn: &mut dyn Conn, agent: &NewAgent) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO agents (id, organization_id, email, name, password_hash, role, chat_limit, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        params![
            &agent.id,
            &agent.organization_id,
            &agent.email,
            &agent.name,
            &agent.password_hash,
            agent.role.as_str(),
            agent.chat_limit,
            to_millis(agent.created_at),
        ],
    )
    .await
    .map_err(on_unique("an agent with this email already exists"))?;
    replace_groups(conn, &agent.id, &agent.group_ids).await
}

async fn replace_groups(conn: &mut dyn Conn, agent_id: &str, group_ids: &[String]) -> DbResult<()> {
    execute(
        conn,
        "DELETE FROM group_members WHERE agent_id = $1",
        params![agent_id],
    )
    .await?;
    for group_id in group_ids {
        execute(
            conn,
            "INSERT INTO group_members (group_id, agent_id) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
            params![group_id, agent_id],
        )
        .await?;
    }
    Ok(())
}

async fn insert_refresh_token(conn: &mut dyn Conn, token: &NewRefreshToken) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
        params![
            &token.token_hash,
            &token.session_id,
            to_millis(token.created_at),
            to_millis(token.expires_at),
        ],
    )
    .await?;
    Ok(())
}

async fn revoke(
    conn: &mut dyn Conn,
    session_id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> DbResult<()> {
    execute(
        conn,
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at IS NULL",
        params![to_millis(at), reason, session_id],
    )
    .await?;
    Ok(())
}

/// Revokes every live session of the agent but `except` ("" for none).
async fn revoke_sessions_of(
    conn: &mut dyn Conn,
    agent_id: &str,
    except: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> DbResult<()> {
    execute(
        conn,
        "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
         WHERE agent_id = $3 AND id <> $4 AND revoked_at IS NULL",
        params![to_millis(at), reason, agent_id, except],
    )
    .await?;
    Ok(())
}

/// Replaces the agent's password hash; NOT_FOUND when there is no such agent.
async fn set_password(conn: &mut dyn Conn, agent_id: &str, password_hash: &str) -> DbResult<()> {
    let done = execute(
        conn,
        "UPDATE agents SET password_hash = $1 WHERE id = $2",
        params![password_hash, agent_id],
    )
    .await?;
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The organization by id.
pub(super) async fn organization(conn: &mut dyn Conn, id: &str) -> DbResult<Organization> {
    one(
        conn,
        concat!(
            "SELECT ",
            organization_columns!(),
            " FROM organizations WHERE id = $1"
        ),
        params![id],
        organization_from,
    )
    .await
}

/// Every agent of the organization with their groups.
pub(super) async fn agents(conn: &mut dyn Conn, organization_id: &str) -> DbResult<Vec<Agent>> {
    let agents = all(
        conn,
        concat!(
            "SELECT ",
            agent_columns!(),
            " FROM agents a WHERE a.organization_id = $1 ORDER BY a.name, a.id"
        ),
        params![organization_id],
        |r| agent_from(r, Vec::new()),
    )
    .await?;
    let memberships = all(
        conn,
        "SELECT m.agent_id, m.group_id FROM group_members m \
         JOIN agents a ON a.id = m.agent_id WHERE a.organization_id = $1 \
         ORDER BY m.group_id",
        params![organization_id],
        |r| Ok((r.text(0)?, r.text(1)?)),
    )
    .await?;
    Ok(agents
        .into_iter()
        .map(|agent| {
            let group_ids = memberships
                .iter()
                .filter(|(agent_id, _)| *agent_id == agent.id)
                .map(|(_, group_id)| group_id.clone())
                .collect();
            Agent { group_ids, ..agent }
        })
        .collect())
}

#[async_trait]
impl<B: Backend> Database for SqlStore<B> {
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    async fn migrate(&self) -> DbResult<()> {
        self.backend.migrate().await
    }

    async fn ping(&self) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        // Matches no row, yet takes the write lock (SQLite) or a writable transaction
        // (Postgres, refused on a read-only server). Dropped, it rolls back.
        execute(
            &mut tx,
            "UPDATE organizations SET name = name WHERE id = ''",
            params![],
        )
        .await?;
        Ok(())
    }

    async fn backup_into(&self, path: &std::path::Path) -> DbResult<()> {
        if self.backend.name() == "postgres" {
            return Err(DbError::Other(
                "a Postgres database is backed up with pg_dump".into(),
            ));
        }
        let path = path
            .to_str()
            .ok_or_else(|| DbError::Other("the backup's path is not UTF-8".into()))?;
        // One read transaction: the copy is the database as of its start, writers go on.
        let mut conn = self.backend.read().await?;
        execute(&mut conn, "VACUUM INTO $1", params![path]).await?;
        Ok(())
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.backend.pool_stats()
    }

    async fn close(&self) {
        self.backend.close().await;
    }

    async fn organization_count(&self) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(&mut conn, "SELECT COUNT(*) FROM organizations", params![]).await
    }

    async fn create_organization(&self, org: &Organization, owner: &NewAgent) -> DbResult<Agent> {
        let mut tx = self.backend.write().await?;
        let settings = &org.settings;
        execute(
            &mut tx,
            "INSERT INTO organizations (id, name, widget_key, default_chat_limit, \
             auto_transfer_seconds, waiting_long_seconds, customer_idle_seconds, \
             auto_close_seconds, presence_grace_seconds, queue_limit, \
             acceptance_timeout_seconds, created_at, queue_abandon_seconds, \
             new_chats_per_minute) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            params![
                &org.id,
                &org.name,
                &org.widget_key,
                settings.default_chat_limit,
                seconds_i32(settings.auto_transfer_after),
                seconds_i32(settings.waiting_long_after),
                seconds_i32(settings.customer_idle_after),
                seconds_i32(settings.auto_close_after),
                seconds_i32(settings.presence_grace),
                settings.queue_limit,
                seconds_i32(settings.acceptance_timeout),
                to_millis(org.created_at),
                seconds_i32(settings.queue_abandon_after),
                settings.new_chats_per_minute,
            ],
        )
        .await?;
        insert_agent(&mut tx, owner).await?;
        let agent = load_agent(&mut tx, &owner.organization_id, &owner.id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn organization(&self, id: &str) -> DbResult<Organization> {
        let mut conn = self.backend.read().await?;
        organization(&mut conn, id).await
    }

    async fn first_organization(&self) -> DbResult<Option<Organization>> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            concat!(
                "SELECT ",
                organization_columns!(),
                " FROM organizations ORDER BY created_at, id LIMIT 1"
            ),
            params![],
            organization_from,
        )
        .await
    }

    async fn agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        let mut conn = self.backend.read().await?;
        load_agent(&mut conn, organization_id, agent_id).await
    }

    async fn agent_credentials(&self, email: &str) -> DbResult<Vec<(Agent, String)>> {
        let mut conn = self.backend.read().await?;
        // A handful at most: login checks the password against each.
        let found = all(
            &mut conn,
            "SELECT id, organization_id, password_hash FROM agents WHERE email = $1 \
             ORDER BY COALESCE(last_login_at, 0) DESC, created_at DESC LIMIT 5",
            params![email],
            |r| Ok((r.text(0)?, r.text(1)?, r.text(2)?)),
        )
        .await?;
        let mut credentials = Vec::with_capacity(found.len());
        for (id, organization_id, password_hash) in found {
            let agent = load_agent(&mut conn, &organization_id, &id).await?;
            credentials.push((agent, password_hash));
        }
        Ok(credentials)
    }

    async fn agents(&self, organization_id: &str) -> DbResult<Vec<Agent>> {
        let mut conn = self.backend.read().await?;
        agents(&mut conn, organization_id).await
    }

    async fn create_agent(&self, agent: &NewAgent) -> DbResult<Agent> {
        let mut tx = self.backend.write().await?;
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
        let mut tx = self.backend.write().await?;
        lock_organization(&mut tx, organization_id).await?;
        let current = load_agent(&mut tx, organization_id, agent_id).await?;
        let name = update.name.as_ref().unwrap_or(&current.name);
        let role = update.role.unwrap_or(current.role);
        if current.active && current.role == Role::Owner && role != Role::Owner {
            ensure_another_active_owner(&mut tx, organization_id, agent_id).await?;
        }
        let chat_limit = update.chat_limit.unwrap_or(current.chat_limit);
        execute(
            &mut tx,
            "UPDATE agents SET name = $1, role = $2, chat_limit = $3 WHERE id = $4",
            params![name, role.as_str(), chat_limit, agent_id],
        )
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
        let mut tx = self.backend.write().await?;
        lock_organization(&mut tx, organization_id).await?;
        let current = load_agent(&mut tx, organization_id, agent_id).await?;
        if current.active && current.role == Role::Owner {
            ensure_another_active_owner(&mut tx, organization_id, agent_id).await?;
        }
        let done = execute(
            &mut tx,
            "UPDATE agents SET active = FALSE, routing_status = 'OFFLINE' \
             WHERE id = $1 AND organization_id = $2",
            params![agent_id, organization_id],
        )
        .await?;
        if done == 0 {
            return Err(DbError::NotFound);
        }
        revoke_sessions_of(&mut tx, agent_id, "", "agent deactivated", at).await?;
        let agent = load_agent(&mut tx, organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn organizations(&self) -> DbResult<Vec<Organization>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                organization_columns!(),
                " FROM organizations ORDER BY created_at, id"
            ),
            params![],
            organization_from,
        )
        .await
    }

    async fn reactivate_agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        let mut tx = self.backend.write().await?;
        lock_organization(&mut tx, organization_id).await?;
        let done = execute(
            &mut tx,
            "UPDATE agents SET active = TRUE, routing_status = 'OFFLINE' \
             WHERE id = $1 AND organization_id = $2",
            params![agent_id, organization_id],
        )
        .await?;
        if done == 0 {
            return Err(DbError::NotFound);
        }
        let agent = load_agent(&mut tx, organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn set_password_hash(&self, agent_id: &str, password_hash: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        set_password(&mut tx, agent_id, password_hash).await?;
        tx.commit().await
    }

    async fn record_login(
        &self,
        agent_id: &str,
        routing_status: RoutingStatus,
        at: DateTime<Utc>,
    ) -> DbResult<Agent> {
        let mut tx = self.backend.write().await?;
        let organization_id = one(
            &mut tx,
            "UPDATE agents SET last_login_at = $1, routing_status = $2 WHERE id = $3 \
             RETURNING organization_id",
            params![to_millis(at), routing_status.as_str(), agent_id],
            |r| r.text(0),
        )
        .await?;
        let agent = load_agent(&mut tx, &organization_id, agent_id).await?;
        tx.commit().await?;
        Ok(agent)
    }

    async fn groups(&self, organization_id: &str) -> DbResult<Vec<Group>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT id, organization_id, name, created_at FROM org_groups \
             WHERE organization_id = $1 ORDER BY name, id",
            params![organization_id],
            group_from,
        )
        .await
    }

    async fn create_group(&self, group: &Group) -> DbResult<Group> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO org_groups (id, organization_id, name, created_at) \
             VALUES ($1, $2, $3, $4)",
            params![
                &group.id,
                &group.organization_id,
                &group.name,
                to_millis(group.created_at),
            ],
        )
        .await
        .map_err(on_unique("a group with this name already exists"))?;
        tx.commit().await?;
        Ok(group.clone())
    }

    async fn create_session(
        &self,
        session_id: &str,
        agent_id: &str,
        first_token: &NewRefreshToken,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO sessions (id, agent_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)",
            params![session_id, agent_id, to_millis(first_token.created_at)],
        )
        .await?;
        insert_refresh_token(&mut tx, first_token).await?;
        tx.commit().await
    }

    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> DbResult<RefreshOutcome> {
        let mut tx = self.backend.write().await?;
        let found = optional(
            &mut tx,
            "SELECT t.session_id, s.agent_id, t.expires_at, t.rotated_at, s.revoked_at, \
             a.active FROM refresh_tokens t \
             JOIN sessions s ON s.id = t.session_id \
             JOIN agents a ON a.id = s.agent_id \
             WHERE t.token_hash = $1",
            params![presented_hash],
            |r| {
                Ok((
                    r.text(0)?,
                    r.text(1)?,
                    r.int(2)?,
                    r.opt_int(3)?,
                    r.opt_int(4)?,
                    r.bool(5)?,
                ))
            },
        )
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
                execute(
                    &mut tx,
                    "UPDATE refresh_tokens SET rotated_at = $1 \
                     WHERE token_hash = $2 AND rotated_at IS NULL",
                    params![to_millis(at), presented_hash],
                )
                .await?
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
        execute(
            &mut tx,
            "UPDATE sessions SET last_used_at = $1 WHERE id = $2",
            params![to_millis(at), &session_id],
        )
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
        let mut tx = self.backend.write().await?;
        revoke(&mut tx, session_id, reason, at).await?;
        tx.commit().await
    }

    async fn session_agent(&self, session_id: &str, agent_id: &str) -> DbResult<Option<Agent>> {
        let mut conn = self.backend.read().await?;
        let mut agent: Option<Agent> = None;
        conn.query(SESSION_AGENT, params![session_id, agent_id], &mut |row| {
            let group = row.opt_text("member_of")?;
            match &mut agent {
                Some(agent) => agent.group_ids.extend(group),
                None => agent = Some(agent_from(row, group.into_iter().collect())?),
            }
            Ok(())
        })
        .await?;
        Ok(agent)
    }

    async fn change_password(
        &self,
        agent_id: &str,
        password_hash: &str,
        keep_session_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        set_password(&mut tx, agent_id, password_hash).await?;
        revoke_sessions_of(&mut tx, agent_id, keep_session_id, "password changed", at).await?;
        tx.commit().await
    }

    async fn sign_out_session(
        &self,
        session_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        revoke(&mut tx, session_id, "logout", at).await?;
        let reachable = one(
            &mut tx,
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE agent_id = $1 AND revoked_at IS NULL) \
             OR EXISTS (SELECT 1 FROM push_devices \
                        WHERE agent_id = $1 AND disabled_reason IS NULL)",
            params![agent_id],
            |r| r.bool(0),
        )
        .await?;
        if !reachable {
            execute(
                &mut tx,
                "UPDATE agents SET presence_expires_at = $1, live_until = NULL WHERE id = $2",
                params![to_millis(at), agent_id],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(reachable)
    }

    async fn access_changes_since(&self, since: DateTime<Utc>) -> DbResult<Vec<(String, i64)>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT id, access_changed_at FROM agents WHERE access_changed_at > $1",
            params![to_millis(since)],
            |r| Ok((r.text(0)?, r.int(1)?)),
        )
        .await
    }

    async fn agent_reachable(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        let mut conn = self.backend.read().await?;
        agent_reachable(&mut conn, agent_id, now).await
    }

    async fn widget_settings(&self, organization_id: &str) -> DbResult<WidgetSettings> {
        let mut conn = self.backend.read().await?;
        let stored = optional_text(
            &mut conn,
            "SELECT settings FROM widget_settings WHERE organization_id = $1",
            params![organization_id],
        )
        .await?;
        match stored {
            None => Ok(WidgetSettings::default()),
            Some(json) => serde_json::from_str(&json).map_err(|err| DbError::Other(Box::new(err))),
        }
    }

    async fn update_widget_settings(
        &self,
        organization_id: &str,
        settings: &WidgetSettings,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let json = serde_json::to_string(settings).map_err(|err| DbError::Other(Box::new(err)))?;
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO widget_settings (organization_id, settings, updated_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET \
             settings = excluded.settings, updated_at = excluded.updated_at",
            params![organization_id, &json, to_millis(at)],
        )
        .await?;
        tx.commit().await
    }

    async fn stored_identity_secret(&self, organization_id: &str) -> DbResult<Option<String>> {
        let mut conn = self.backend.read().await?;
        let secret = optional(
            &mut conn,
            "SELECT identity_secret FROM widget_settings WHERE organization_id = $1",
            params![organization_id],
            |r| r.opt_text("identity_secret"),
        )
        .await?;
        Ok(secret.flatten())
    }

    async fn identity_secret(
        &self,
        organization_id: &str,
        generated: &str,
        replace: bool,
        at: DateTime<Utc>,
    ) -> DbResult<String> {
        let mut tx = self.backend.write().await?;
        let secret = one(
            &mut tx,
            "INSERT INTO widget_settings (organization_id, identity_secret, updated_at) \
             VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET \
             identity_secret = CASE WHEN $4 = 1 OR widget_settings.identity_secret IS NULL \
             THEN excluded.identity_secret ELSE widget_settings.identity_secret END, \
             updated_at = excluded.updated_at \
             RETURNING identity_secret",
            params![
                organization_id,
                generated,
                to_millis(at),
                i64::from(replace)
            ],
            |r| r.text(0),
        )
        .await?;
        tx.commit().await?;
        Ok(secret)
    }
}
