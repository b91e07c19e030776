//! Chat reads and the small writes beside the chat transaction: the [`ChatStore`] trait.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::accounts::{agents, organization};
use super::chat_tx::{CHATS_STARTED_SINCE, SqlTx};
use super::rows::{
    chat_from, event_from, feed_data, offline_message_from, organization_from, parse,
};
use super::{Backend, SqlStore, Transaction, all, customers, execute, one, scalar};
use crate::domain::{
    Chat, ChatEvent, ChatSettings, ChatStatus, Customer, FeedEntry, OfflineMessage, Organization,
    PageView,
};
use crate::store::{
    AgentLoad, ChatStore, ChatTx, CustomerVisit, DbError, DbResult, RecordedVisit, from_millis,
    to_millis,
};

const OFFLINE_MESSAGE: &str = concat!(
    "SELECT ",
    offline_message_columns!(),
    " FROM offline_messages WHERE id = $1 AND organization_id = $2"
);

/// The earliest chat timer deadline, in milliseconds, by the rules of `domain::chat`
/// (`acceptance_missed`, `auto_close_due`, `auto_transfer_due`, `attention_at`,
/// `queue_abandoned`); `$1` is now. Each branch is one rule.
const NEXT_TIMER_DUE: &str = "SELECT MIN(due) FROM ( \
     SELECT c.acceptance_deadline AS due FROM chats c \
     WHERE c.status = 'ACTIVE' AND c.acceptance_deadline IS NOT NULL \
     UNION ALL \
     SELECT c.last_activity_at + o.auto_close_seconds * 1000 FROM chats c \
     JOIN organizations o ON o.id = c.organization_id WHERE c.status = 'ACTIVE' \
     UNION ALL \
     SELECT CASE WHEN c.agent_typing_since IS NOT NULL \
     AND c.agent_typing_since + 60000 > c.awaiting_reply_since + o.auto_transfer_seconds * 1000 \
     THEN c.agent_typing_since + 60000 \
     ELSE c.awaiting_reply_since + o.auto_transfer_seconds * 1000 END FROM chats c \
     JOIN organizations o ON o.id = c.organization_id \
     WHERE c.status = 'ACTIVE' AND c.awaiting_reply_since IS NOT NULL \
     UNION ALL \
     SELECT CASE WHEN c.attention <> 'NORMAL' THEN $1 \
     WHEN c.awaiting_reply_since IS NOT NULL \
     THEN c.awaiting_reply_since + o.waiting_long_seconds * 1000 \
     ELSE c.last_customer_activity_at + o.customer_idle_seconds * 1000 END FROM chats c \
     JOIN organizations o ON o.id = c.organization_id \
     WHERE c.status = 'ACTIVE' AND (c.attention = 'NORMAL' \
     OR (c.attention = 'WAITING_LONG' AND (c.awaiting_reply_since IS NULL \
     OR c.awaiting_reply_since + o.waiting_long_seconds * 1000 > $1)) \
     OR (c.attention = 'CUSTOMER_IDLE' AND (c.awaiting_reply_since IS NOT NULL \
     OR c.last_customer_activity_at + o.customer_idle_seconds * 1000 > $1))) \
     UNION ALL \
     SELECT CASE \
     WHEN c.last_customer_activity_at >= COALESCE(c.customer_seen_at, 0) \
     AND c.last_customer_activity_at >= COALESCE(c.queued_at, 0) THEN c.last_customer_activity_at \
     WHEN COALESCE(c.customer_seen_at, 0) >= COALESCE(c.queued_at, 0) THEN c.customer_seen_at \
     ELSE c.queued_at END + o.queue_abandon_seconds * 1000 FROM chats c \
     JOIN organizations o ON o.id = c.organization_id WHERE c.status = 'QUEUED' \
     ) deadlines";

#[async_trait]
impl<B: Backend> ChatStore for SqlStore<B> {
    async fn begin(&self) -> DbResult<Box<dyn ChatTx>> {
        Ok(Box::new(SqlTx::new(self.backend.write().await?)))
    }

    async fn organization_by_widget_key(&self, widget_key: &str) -> DbResult<Organization> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                organization_columns!(),
                " FROM organizations WHERE widget_key = $1"
            ),
            params![widget_key],
            organization_from,
        )
        .await
    }

    async fn update_organization_settings(
        &self,
        organization_id: &str,
        settings: &ChatSettings,
    ) -> DbResult<Organization> {
        let seconds = |d: chrono::Duration| i32::try_from(d.num_seconds()).unwrap_or(i32::MAX);
        let mut tx = self.backend.write().await?;
        let done = execute(
            &mut tx,
            "UPDATE organizations SET default_chat_limit = $1, auto_transfer_seconds = $2, \
             waiting_long_seconds = $3, customer_idle_seconds = $4, auto_close_seconds = $5, \
             presence_grace_seconds = $6, queue_limit = $7, acceptance_timeout_seconds = $8, \
             queue_abandon_seconds = $10, new_chats_per_minute = $11, \
             agents_see_group_chats = $12 WHERE id = $9",
            params![
                settings.default_chat_limit,
                seconds(settings.auto_transfer_after),
                seconds(settings.waiting_long_after),
                seconds(settings.customer_idle_after),
                seconds(settings.auto_close_after),
                seconds(settings.presence_grace),
                settings.queue_limit,
                seconds(settings.acceptance_timeout),
                organization_id,
                seconds(settings.queue_abandon_after),
                settings.new_chats_per_minute,
                settings.agents_see_group_chats,
            ],
        )
        .await?;
        if done == 0 {
            return Err(DbError::NotFound);
        }
        let updated = organization(&mut tx, organization_id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn record_visit(&self, visit: &CustomerVisit, new_id: &str) -> DbResult<RecordedVisit> {
        let mut tx = self.backend.write().await?;
        let recorded = customers::record_visit(&mut tx, visit, new_id).await?;
        tx.commit().await?;
        Ok(recorded)
    }

    async fn customer(&self, organization_id: &str, customer_id: &str) -> DbResult<Customer> {
        let mut conn = self.backend.read().await?;
        customers::customer(&mut conn, organization_id, customer_id).await
    }

    async fn record_page_view(
        &self,
        organization_id: &str,
        customer_id: &str,
        url: &str,
        title: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<Customer> {
        let mut tx = self.backend.write().await?;
        let customer =
            customers::record_page_view(&mut tx, organization_id, customer_id, url, title, at)
                .await?;
        tx.commit().await?;
        Ok(customer)
    }

    async fn page_views(&self, customer_id: &str, limit: i64) -> DbResult<Vec<PageView>> {
        let mut conn = self.backend.read().await?;
        customers::page_views(&mut conn, customer_id, limit).await
    }

    async fn chat(&self, organization_id: &str, chat_id: &str) -> DbResult<Chat> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                chat_columns!(),
                " FROM chats c WHERE c.id = $1 AND c.organization_id = $2"
            ),
            params![chat_id, organization_id],
            chat_from,
        )
        .await
    }

    async fn participated(&self, chat_id: &str, agent_id: &str) -> DbResult<bool> {
        let mut conn = self.backend.read().await?;
        let found = super::optional(
            &mut conn,
            "SELECT 1 FROM chat_participants WHERE chat_id = $1 AND agent_id = $2 LIMIT 1",
            params![chat_id, agent_id],
            |_| Ok(()),
        )
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
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                chat_columns!(),
                " FROM chats c WHERE c.organization_id = $1 \
                 AND c.status IN ($2, $3, $4) AND ($5 = '' OR c.assignee_id = $5) \
                 ORDER BY c.created_at DESC, c.id DESC"
            ),
            params![
                organization_id,
                wanted.first().copied().unwrap_or(""),
                wanted.get(1).copied().unwrap_or(""),
                wanted.get(2).copied().unwrap_or(""),
                assignee_id.unwrap_or(""),
            ],
            chat_from,
        )
        .await
    }

    async fn customer_chats(&self, customer_id: &str) -> DbResult<Vec<Chat>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                chat_columns!(),
                " FROM chats c WHERE c.customer_id = $1 ORDER BY c.created_at DESC, c.id DESC"
            ),
            params![customer_id],
            chat_from,
        )
        .await
    }

    async fn chat_events(
        &self,
        chat_id: &str,
        after_seq: i64,
        limit: i64,
        include_agents_only: bool,
    ) -> DbResult<Vec<ChatEvent>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                event_columns!(),
                " FROM chat_events e WHERE e.chat_id = $1 AND e.seq > $2 \
                 AND ($3 OR e.visibility = 'PUBLIC') ORDER BY e.seq LIMIT $4"
            ),
            params![chat_id, after_seq, include_agents_only, limit],
            event_from,
        )
        .await
    }

    async fn chat_events_before(
        &self,
        chat_id: &str,
        before_seq: i64,
        limit: i64,
        include_agents_only: bool,
        messages_only: bool,
    ) -> DbResult<Vec<ChatEvent>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                event_columns!(),
                " FROM chat_events e WHERE e.chat_id = $1 AND e.seq < $2 \
                 AND ($3 OR e.visibility = 'PUBLIC') AND (NOT $5 OR e.kind = 'MESSAGE') \
                 ORDER BY e.seq DESC LIMIT $4"
            ),
            params![
                chat_id,
                before_seq,
                include_agents_only,
                limit,
                messages_only
            ],
            event_from,
        )
        .await
    }

    async fn chat_event_seq(&self, chat_id: &str) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(
            &mut conn,
            "SELECT last_event_seq FROM chats WHERE id = $1",
            params![chat_id],
        )
        .await
    }

    async fn unread_count(&self, chat_id: &str, agent_id: &str) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(
            &mut conn,
            "SELECT COUNT(*) FROM chat_events e WHERE e.chat_id = $1 AND e.kind = 'MESSAGE' \
             AND (e.author_kind = 'CUSTOMER' OR (e.visibility = 'AGENTS' AND e.author_id <> $4)) \
             AND e.seq > COALESCE((SELECT r.read_seq \
             FROM chat_reads r WHERE r.chat_id = $2 AND r.agent_id = $3), 0)",
            params![chat_id, chat_id, agent_id, agent_id],
        )
        .await
    }

    async fn mark_chat_read(&self, chat_id: &str, agent_id: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        // The transcript's seq only grows, so the latest one is never behind the stored marker.
        execute(
            &mut tx,
            "INSERT INTO chat_reads (chat_id, agent_id, read_seq) \
             SELECT id, $1, last_event_seq FROM chats WHERE id = $2 \
             ON CONFLICT (chat_id, agent_id) DO UPDATE SET read_seq = excluded.read_seq",
            params![agent_id, chat_id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn feed(&self, agent_id: &str, after_seq: i64, limit: i64) -> DbResult<Vec<FeedEntry>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT f.agent_id, f.seq AS feed_seq, f.kind AS feed_kind, \
                 f.chat_id AS feed_chat_id, f.data, f.created_at AS feed_created_at, \
                 f.event_id, ",
                event_columns!(),
                " FROM agent_feed f LEFT JOIN chat_events e ON e.id = f.event_id \
                 WHERE f.agent_id = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3"
            ),
            params![agent_id, after_seq, limit],
            |row| {
                let event_id = row.opt_text("event_id")?;
                Ok(FeedEntry {
                    agent_id: row.text("agent_id")?,
                    seq: row.int("feed_seq")?,
                    kind: parse(row.text("feed_kind")?)?,
                    chat_id: row.opt_text("feed_chat_id")?,
                    event: event_id.map(|_| event_from(row)).transpose()?,
                    data: feed_data(&row.text("data")?)?,
                    created_at: from_millis(row.int("feed_created_at")?),
                })
            },
        )
        .await
    }

    async fn feed_seq(&self, agent_id: &str) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(
            &mut conn,
            "SELECT feed_seq FROM agents WHERE id = $1",
            params![agent_id],
        )
        .await
    }

    async fn active_chats(&self) -> DbResult<Vec<(Chat, ChatSettings)>> {
        let mut conn = self.backend.read().await?;
        let rows = all(
            &mut conn,
            concat!(
                "SELECT ",
                chat_columns!(),
                " FROM chats c WHERE c.status = 'ACTIVE' ORDER BY c.organization_id"
            ),
            params![],
            chat_from,
        )
        .await?;
        let mut chats = Vec::with_capacity(rows.len());
        let mut settings: Option<(String, ChatSettings)> = None;
        for chat in rows {
            let org_settings = match &settings {
                Some((org, s)) if *org == chat.organization_id => *s,
                _ => {
                    let s = organization(&mut conn, &chat.organization_id)
                        .await?
                        .settings;
                    settings = Some((chat.organization_id.clone(), s));
                    s
                }
            };
            chats.push((chat, org_settings));
        }
        Ok(chats)
    }

    async fn next_timer_due(&self, now: DateTime<Utc>) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let next = one(&mut conn, NEXT_TIMER_DUE, params![to_millis(now)], |r| {
            r.opt_int(0)
        })
        .await?;
        Ok(next.map(from_millis))
    }

    async fn agent_loads(
        &self,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<AgentLoad>> {
        let mut conn = self.backend.read().await?;
        let loads = all(
            &mut conn,
            concat!(
                "SELECT a.id, (",
                load_sql!(),
                ") AS load, (",
                reachable_sql!(),
                ") AS reachable FROM agents a WHERE a.organization_id = $1"
            ),
            params![organization_id, to_millis(now)],
            |r| Ok((r.text(0)?, r.int(1)?, r.bool(2)?)),
        )
        .await?;
        let agents = agents(&mut conn, organization_id).await?;
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
        let mut tx = self.backend.write().await?;
        for id in agent_ids {
            // An agent signed out of every app has no presence to extend: a socket closing
            // after its session ended must not make them reachable for another grace period.
            execute(
                &mut tx,
                "UPDATE agents SET presence_expires_at = $1, live_until = $2 WHERE id = $3 \
                 AND EXISTS (SELECT 1 FROM sessions s \
                             WHERE s.agent_id = agents.id AND s.revoked_at IS NULL)",
                params![to_millis(until), live.then(|| to_millis(until)), id],
            )
            .await?;
        }
        tx.commit().await
    }

    async fn average_handle_seconds(&self, organization_id: &str) -> DbResult<Option<i64>> {
        let since = to_millis(crate::domain::now() - chrono::Duration::days(1));
        let mut conn = self.backend.read().await?;
        let average = one(
            &mut conn,
            "SELECT AVG(CAST(closed_at - assigned_at AS DOUBLE PRECISION)) FROM chats \
             WHERE organization_id = $1 AND status = 'CLOSED' AND assigned_at IS NOT NULL \
             AND closed_at > $2",
            params![organization_id, since],
            |r| r.opt_float(0),
        )
        .await?;
        Ok(average.map(|ms| (ms / 1000.0).round() as i64))
    }

    async fn chats_started_since(
        &self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<i64> {
        let mut conn = self.backend.read().await?;
        scalar(
            &mut conn,
            CHATS_STARTED_SINCE,
            params![organization_id, to_millis(since)],
        )
        .await
    }

    async fn renew_customer_presence(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE chats SET customer_seen_at = $1 WHERE id = $2 AND status = 'QUEUED'",
            params![to_millis(at), chat_id],
        )
        .await?;
        tx.commit().await
    }

    async fn abandoned_queued_chats(&self, now: DateTime<Utc>) -> DbResult<Vec<(String, String)>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT c.id, c.organization_id FROM chats c \
             JOIN organizations o ON o.id = c.organization_id \
             WHERE c.status = 'QUEUED' \
             AND c.last_customer_activity_at <= $1 - o.queue_abandon_seconds * 1000 \
             AND COALESCE(c.customer_seen_at, 0) <= $1 - o.queue_abandon_seconds * 1000 \
             AND COALESCE(c.queued_at, 0) <= $1 - o.queue_abandon_seconds * 1000 \
             ORDER BY c.organization_id",
            params![to_millis(now)],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )
        .await
    }

    async fn touch_customer_activity(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        /// Typing is reported often; the idle timers need a resolution of seconds, not keys.
        const RESOLUTION_MS: i64 = 5_000;
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE chats SET last_customer_activity_at = $1, last_activity_at = $1 \
             WHERE id = $2 AND last_customer_activity_at < $3",
            params![to_millis(at), chat_id, to_millis(at) - RESOLUTION_MS],
        )
        .await?;
        tx.commit().await
    }

    async fn set_agent_typing(
        &self,
        chat_id: &str,
        typing: bool,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let sql = if typing {
            "UPDATE chats SET agent_typing_since = $1 WHERE id = $2 AND agent_typing_since IS NULL"
        } else {
            // The auto-transfer clock restarts when the agent stops typing without sending.
            "UPDATE chats SET agent_typing_since = NULL, awaiting_reply_since = \
             CASE WHEN awaiting_reply_since IS NULL THEN NULL ELSE $1 END \
             WHERE id = $2 AND agent_typing_since IS NOT NULL"
        };
        let mut tx = self.backend.write().await?;
        execute(&mut tx, sql, params![to_millis(at), chat_id]).await?;
        tx.commit().await
    }

    async fn offline_messages(&self, organization_id: &str) -> DbResult<Vec<OfflineMessage>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                offline_message_columns!(),
                " FROM offline_messages WHERE organization_id = $1 \
                 ORDER BY created_at DESC, id DESC"
            ),
            params![organization_id],
            offline_message_from,
        )
        .await
    }

    async fn offline_message(&self, organization_id: &str, id: &str) -> DbResult<OfflineMessage> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            OFFLINE_MESSAGE,
            params![id, organization_id],
            offline_message_from,
        )
        .await
    }

    async fn set_offline_message_handled(
        &self,
        organization_id: &str,
        id: &str,
        handled: bool,
    ) -> DbResult<OfflineMessage> {
        let mut tx = self.backend.write().await?;
        let message = one(
            &mut tx,
            concat!(
                "UPDATE offline_messages SET handled = $1 WHERE id = $2 AND organization_id = $3 \
                 RETURNING ",
                offline_message_columns!()
            ),
            params![handled, id, organization_id],
            offline_message_from,
        )
        .await?;
        tx.commit().await?;
        Ok(message)
    }
}
