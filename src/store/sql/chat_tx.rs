//! The chat transaction ([`ChatTx`]): the hot path of every chat change. Each statement is a
//! constant, so SQLite runs it as a prepared, cached statement in place on the writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::accounts::{agent_live, agent_reachable, enter_chat, load_agent, lock_organization};
use super::rows::{
    candidate_from, chat_from, device_from, event_from, feed_data_json, push_message_json,
};
use super::{Transaction, all, execute, one, optional, optional_text, scalar, texts};
use crate::domain::{
    Agent, Chat, ChatEvent, FeedData, FeedEntry, FeedKind, Greeting, NotificationKind,
    OfflineMessage, Organization, PushDevice, PushJob, PushMessage, RoutingCandidate,
    RoutingStatus, WidgetSettings,
};
use crate::store::{
    ChatTx, DbError, DbResult, EnteredChat, NewChatEvent, ParticipantRole, from_millis, to_millis,
};

const CHAT: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats c WHERE c.id = $1 AND c.organization_id = $2"
);

/// The rest of the row is written by [`UPDATE_CHAT`] right after.
const INSERT_CHAT: &str = "INSERT INTO chats (id, organization_id, customer_id, group_id, \
     channel, status, created_at, last_customer_activity_at, last_activity_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const UPDATE_CHAT: &str = "UPDATE chats SET group_id = $1, status = $2, assignee_id = $3, \
     attention = $4, queued_at = $5, assigned_at = $6, first_response_at = $7, closed_at = $8, \
     rating = $9, rating_comment = $10, awaiting_reply_since = $11, \
     last_customer_activity_at = $12, last_activity_at = $13, agent_typing_since = $14, \
     acceptance_deadline = $15, first_assigned_at = COALESCE(first_assigned_at, $16, $6), \
     response_count = $17, response_total_ms = $18, reply_run_since = $19 WHERE id = $20";

/// id, chat_limit, last_assigned_at, load of the agents who may take a chat of group `$3`.
const ROUTING_CANDIDATES: &str = concat!(
    "SELECT a.id, a.chat_limit, a.last_assigned_at, (",
    load_sql!(),
    ") AS load FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND a.routing_status = 'ACCEPTING_CHATS' AND (",
    reachable_sql!(),
    ") AND ",
    in_group!("3")
);

const PREVIOUS_AGENT_OF_CUSTOMER: &str = "SELECT assignee_id FROM chats \
     WHERE customer_id = $1 AND assignee_id IS NOT NULL ORDER BY created_at DESC LIMIT 1";

const OPEN_CHAT_OF_CUSTOMER: &str = "SELECT id FROM chats WHERE customer_id = $1 \
     AND status <> 'CLOSED' ORDER BY created_at DESC LIMIT 1";

const PARTICIPANTS: &str = "SELECT agent_id, role FROM chat_participants WHERE chat_id = $1";

const ADD_PARTICIPANT: &str = "INSERT INTO chat_participants (chat_id, agent_id, role, \
     joined_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

/// A chat that had a previous assignee is a transferred chat, for the reports.
const MARK_TRANSFERRED: &str = "UPDATE chats SET transferred = $2 WHERE id = $1";

/// Who hears chat `$1` besides its assignee: the supervisors who joined it, and the active
/// supervisors of organization `$2` whose groups include `$3` (or who have no groups).
const WATCHERS: &str = concat!(
    "SELECT agent_id FROM chat_participants WHERE chat_id = $1 AND role = 'SUPERVISOR' \
     UNION SELECT a.id FROM agents a WHERE a.organization_id = $2 AND a.active \
     AND a.role = 'SUPERVISOR' AND ",
    in_group!("3")
);

/// Taking the next number locks the chat row: entries commit in number order.
const NEXT_EVENT_SEQ: &str = "UPDATE chats SET last_event_seq = last_event_seq + 1 \
     WHERE id = $1 RETURNING last_event_seq";

/// Nothing when the author already sent its client id (the chat's row is locked, so an
/// earlier send of it has committed).
const INSERT_EVENT: &str = "INSERT INTO chat_events (id, chat_id, organization_id, seq, \
     kind, author_kind, author_id, author_name, text, client_id, visibility, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
     ON CONFLICT (chat_id, author_id, client_id) WHERE client_id IS NOT NULL DO NOTHING";

const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM chat_events e WHERE e.chat_id = $1 AND e.author_id = $2 AND e.client_id = $3"
);

/// Taking the next number locks the agent row: entries commit in number order.
const NEXT_FEED_SEQ: &str =
    "UPDATE agents SET feed_seq = feed_seq + 1 WHERE id = $1 RETURNING feed_seq";

const INSERT_FEED: &str = "INSERT INTO agent_feed (agent_id, seq, kind, chat_id, event_id, \
     data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

const SET_ROUTING_STATUS: &str = "UPDATE agents SET routing_status = $1 WHERE id = $2";

const MARK_ASSIGNED: &str = "UPDATE agents SET last_assigned_at = $1 WHERE id = $2";

const QUEUED_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats c WHERE c.organization_id = $1 AND c.status = 'QUEUED' \
     ORDER BY c.queued_at, c.id"
);

const PUSH_TARGETS: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM push_devices WHERE agent_id = $1 AND disabled_reason IS NULL \
     AND NOT EXISTS (SELECT 1 FROM push_preferences p WHERE p.agent_id = $1 AND p.kind = $2 \
     AND NOT p.enabled) ORDER BY created_at"
);

const INSERT_PUSH_JOB: &str = "INSERT INTO push_jobs (id, device_id, agent_id, \
     organization_id, kind, chat_id, message, status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

const PENDING_PUSH_JOBS: &str = "SELECT id FROM push_jobs WHERE agent_id = $1 AND kind = $2 \
     AND status = 'PENDING' AND COALESCE(chat_id, '') = $3";

const UPDATE_PUSH_JOB_MESSAGE: &str = "UPDATE push_jobs SET message = $1 WHERE id = $2";

/// Agents to tell by push that customers wait: accepting chats, no live connection, a
/// device, in the group, and not told since `$4`.
const QUEUE_PUSH_RECIPIENTS: &str = concat!(
    "SELECT a.id FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND a.routing_status = 'ACCEPTING_CHATS' AND COALESCE(a.live_until, 0) <= $2 \
     AND EXISTS (SELECT 1 FROM push_devices d \
                 WHERE d.agent_id = a.id AND d.disabled_reason IS NULL) AND ",
    in_group!("3"),
    " AND NOT EXISTS (SELECT 1 FROM push_jobs j WHERE j.agent_id = a.id \
     AND j.kind = 'QUEUED_CUSTOMERS' AND j.created_at >= $4)"
);

/// How many chats organization `$1` started after `$2`, and the oldest one's start.
pub(super) const CHATS_STARTED_SINCE: &str =
    "SELECT COUNT(*), MIN(created_at) FROM chats WHERE organization_id = $1 AND created_at > $2";

/// Queued chats of the organization, but for chat `$2` ('' for none).
const QUEUED_COUNT: &str = "SELECT COUNT(*) FROM chats WHERE organization_id = $1 \
     AND status = 'QUEUED' AND id <> $2";

const LATEST_CUSTOMER_MESSAGE: &str = "SELECT text FROM chat_events WHERE chat_id = $1 \
     AND author_kind = 'CUSTOMER' ORDER BY seq DESC LIMIT 1";

const CUSTOMER_NAME: &str = "SELECT name FROM customers WHERE id = $1";

const INSERT_OFFLINE_MESSAGE: &str = "INSERT INTO offline_messages (id, organization_id, \
     customer_id, group_id, name, email, text, handled, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Admins and owners see every offline message; others those of their groups.
const OFFLINE_MESSAGE_RECIPIENTS: &str = concat!(
    "SELECT a.id FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND (a.role IN ('ADMIN', 'OWNER') OR ",
    in_group!("2"),
    ")"
);

fn millis(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_millis)
}

/// A chat transaction on a backend's writer; dropped without `commit`, it rolls back.
pub(crate) struct SqlTx<W> {
    tx: W,
}

impl<W: Transaction> SqlTx<W> {
    pub(crate) fn new(tx: W) -> Self {
        SqlTx { tx }
    }
}

#[async_trait]
impl<W: Transaction> ChatTx for SqlTx<W> {
    async fn lock_organization(&mut self, organization_id: &str) -> DbResult<Organization> {
        lock_organization(&mut self.tx, organization_id).await
    }

    async fn enter_chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<EnteredChat> {
        enter_chat(&mut self.tx, organization_id, chat_id).await
    }

    async fn agent(&mut self, organization_id: &str, agent_id: &str) -> DbResult<Agent> {
        load_agent(&mut self.tx, organization_id, agent_id).await
    }

    async fn chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<Chat> {
        one(
            &mut self.tx,
            CHAT,
            params![chat_id, organization_id],
            chat_from,
        )
        .await
    }

    async fn insert_chat(&mut self, chat: &Chat) -> DbResult<()> {
        execute(
            &mut self.tx,
            INSERT_CHAT,
            params![
                &chat.id,
                &chat.organization_id,
                &chat.customer_id,
                &chat.group_id,
                chat.channel.as_str(),
                chat.status.as_str(),
                to_millis(chat.created_at),
                to_millis(chat.last_customer_activity_at),
                to_millis(chat.last_activity_at),
            ],
        )
        .await?;
        self.update_chat(chat).await
    }

    async fn update_chat(&mut self, chat: &Chat) -> DbResult<()> {
        execute(
            &mut self.tx,
            UPDATE_CHAT,
            params![
                &chat.group_id,
                chat.status.as_str(),
                &chat.assignee_id,
                chat.attention.as_str(),
                millis(chat.queued_at),
                millis(chat.assigned_at),
                millis(chat.first_response_at),
                millis(chat.closed_at),
                chat.rating.map(|r| r.as_str()),
                &chat.rating_comment,
                millis(chat.awaiting_reply_since),
                to_millis(chat.last_customer_activity_at),
                to_millis(chat.last_activity_at),
                millis(chat.agent_typing_since),
                millis(chat.acceptance_deadline),
                millis(chat.reply_clock.first_assigned_at),
                chat.reply_clock.response_count,
                chat.reply_clock.response_total_ms,
                millis(chat.reply_clock.reply_run_since),
                &chat.id,
            ],
        )
        .await?;
        Ok(())
    }

    async fn routing_candidates(
        &mut self,
        organization: &Organization,
        group_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<RoutingCandidate>> {
        all(
            &mut self.tx,
            ROUTING_CANDIDATES,
            params![&organization.id, to_millis(now), group_id.unwrap_or("")],
            |r| candidate_from(organization, r),
        )
        .await
    }

    async fn previous_agent_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        optional_text(
            &mut self.tx,
            PREVIOUS_AGENT_OF_CUSTOMER,
            params![customer_id],
        )
        .await
    }

    async fn open_chat_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        optional_text(&mut self.tx, OPEN_CHAT_OF_CUSTOMER, params![customer_id]).await
    }

    async fn participants(&mut self, chat_id: &str) -> DbResult<Vec<(String, ParticipantRole)>> {
        all(&mut self.tx, PARTICIPANTS, params![chat_id], |r| {
            Ok((r.text(0)?, ParticipantRole::from_stored(&r.text(1)?)))
        })
        .await
    }

    async fn add_participant(
        &mut self,
        chat_id: &str,
        agent_id: &str,
        role: ParticipantRole,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        execute(
            &mut self.tx,
            ADD_PARTICIPANT,
            params![chat_id, agent_id, role.as_str(), to_millis(at)],
        )
        .await?;
        if role == ParticipantRole::PreviousAssignee {
            // The reports' transferred flag (migration 0021), in the same transaction as
            // the participant it summarizes.
            execute(&mut self.tx, MARK_TRANSFERRED, params![chat_id, true]).await?;
        }
        Ok(())
    }

    async fn watchers(
        &mut self,
        chat_id: &str,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        texts(
            &mut self.tx,
            WATCHERS,
            params![chat_id, organization_id, group_id.unwrap_or("")],
        )
        .await
    }

    async fn append_event(&mut self, event: &NewChatEvent) -> DbResult<ChatEvent> {
        self.append_message(event).await?.ok_or_else(|| {
            DbError::Conflict("the author already sent an entry with this client id".into())
        })
    }

    async fn append_message(&mut self, event: &NewChatEvent) -> DbResult<Option<ChatEvent>> {
        let mut stored = event.stored(0);
        let numbered = self.tx.dialect().append_event;
        if !numbered.is_empty() {
            let seq = optional(
                &mut self.tx,
                numbered,
                params![
                    &stored.id,
                    &stored.chat_id,
                    &stored.organization_id,
                    stored.kind.as_str(),
                    stored.author_kind.as_str(),
                    &stored.author_id,
                    &stored.author_name,
                    &stored.text,
                    &stored.client_id,
                    stored.visibility.as_str(),
                    to_millis(stored.created_at),
                ],
                |r| r.int(0),
            )
            .await?;
            return Ok(seq.map(|seq| {
                stored.seq = seq;
                stored
            }));
        }
        stored.seq = scalar(&mut self.tx, NEXT_EVENT_SEQ, params![&event.chat_id]).await?;
        let inserted = execute(
            &mut self.tx,
            INSERT_EVENT,
            params![
                &stored.id,
                &stored.chat_id,
                &stored.organization_id,
                stored.seq,
                stored.kind.as_str(),
                stored.author_kind.as_str(),
                &stored.author_id,
                &stored.author_name,
                &stored.text,
                &stored.client_id,
                stored.visibility.as_str(),
                to_millis(stored.created_at),
            ],
        )
        .await?;
        Ok((inserted > 0).then_some(stored))
    }

    async fn message_by_client_id(
        &mut self,
        chat_id: &str,
        author_id: &str,
        client_id: &str,
    ) -> DbResult<Option<ChatEvent>> {
        optional(
            &mut self.tx,
            MESSAGE_BY_CLIENT_ID,
            params![chat_id, author_id, client_id],
            event_from,
        )
        .await
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
        let json = feed_data_json(data)?;
        let numbered = self.tx.dialect().append_feed;
        let seq = if numbered.is_empty() {
            let seq = scalar(&mut self.tx, NEXT_FEED_SEQ, params![agent_id]).await?;
            execute(
                &mut self.tx,
                INSERT_FEED,
                params![
                    agent_id,
                    seq,
                    kind.as_str(),
                    chat_id,
                    event.map(|e| e.id.as_str()),
                    &json,
                    to_millis(at),
                ],
            )
            .await?;
            seq
        } else {
            scalar(
                &mut self.tx,
                numbered,
                params![
                    agent_id,
                    kind.as_str(),
                    chat_id,
                    event.map(|e| e.id.as_str()),
                    &json,
                    to_millis(at),
                ],
            )
            .await?
        };
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
        execute(
            &mut self.tx,
            SET_ROUTING_STATUS,
            params![status.as_str(), agent_id],
        )
        .await?;
        Ok(())
    }

    async fn mark_assigned(&mut self, agent_id: &str, at: DateTime<Utc>) -> DbResult<()> {
        execute(
            &mut self.tx,
            MARK_ASSIGNED,
            params![to_millis(at), agent_id],
        )
        .await?;
        Ok(())
    }

    async fn queued_chats(&mut self, organization_id: &str) -> DbResult<Vec<Chat>> {
        all(
            &mut self.tx,
            QUEUED_CHATS,
            params![organization_id],
            chat_from,
        )
        .await
    }

    async fn agent_live(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        agent_live(&mut self.tx, agent_id, now).await
    }

    async fn push_targets(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
    ) -> DbResult<Vec<PushDevice>> {
        all(
            &mut self.tx,
            PUSH_TARGETS,
            params![agent_id, kind.as_str()],
            device_from,
        )
        .await
    }

    async fn insert_push_job(&mut self, job: &PushJob) -> DbResult<()> {
        let message = push_message_json(&job.message)?;
        execute(
            &mut self.tx,
            INSERT_PUSH_JOB,
            params![
                &job.id,
                &job.device_id,
                &job.agent_id,
                &job.organization_id,
                job.kind.as_str(),
                &job.chat_id,
                &message,
                job.status.as_str(),
                job.attempts,
                to_millis(job.next_attempt_at),
                to_millis(job.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn pending_push_jobs(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        texts(
            &mut self.tx,
            PENDING_PUSH_JOBS,
            params![agent_id, kind.as_str(), chat_id.unwrap_or("")],
        )
        .await
    }

    async fn update_push_job_message(
        &mut self,
        job_id: &str,
        message: &PushMessage,
    ) -> DbResult<()> {
        let message = push_message_json(message)?;
        execute(
            &mut self.tx,
            UPDATE_PUSH_JOB_MESSAGE,
            params![&message, job_id],
        )
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
        texts(
            &mut self.tx,
            QUEUE_PUSH_RECIPIENTS,
            params![
                organization_id,
                to_millis(now),
                group_id.unwrap_or(""),
                to_millis(since),
            ],
        )
        .await
    }

    async fn queued_count(&mut self, organization_id: &str, except: Option<&str>) -> DbResult<i64> {
        scalar(
            &mut self.tx,
            QUEUED_COUNT,
            params![organization_id, except.unwrap_or("")],
        )
        .await
    }

    async fn agent_reachable(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool> {
        agent_reachable(&mut self.tx, agent_id, now).await
    }

    async fn chats_started_since(
        &mut self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<(i64, Option<DateTime<Utc>>)> {
        one(
            &mut self.tx,
            CHATS_STARTED_SINCE,
            params![organization_id, to_millis(since)],
            |r| Ok((r.int(0)?, r.opt_int(1)?.map(from_millis))),
        )
        .await
    }

    async fn latest_customer_message(&mut self, chat_id: &str) -> DbResult<Option<String>> {
        optional_text(&mut self.tx, LATEST_CUSTOMER_MESSAGE, params![chat_id]).await
    }

    async fn transcript_locale(&mut self, organization_id: &str) -> DbResult<String> {
        let stored = optional_text(
            &mut self.tx,
            "SELECT settings FROM widget_settings WHERE organization_id = $1",
            params![organization_id],
        )
        .await?;
        let settings: WidgetSettings = match stored {
            Some(json) => {
                serde_json::from_str(&json).map_err(|err| DbError::Other(Box::new(err)))?
            }
            None => WidgetSettings::default(),
        };
        Ok(settings.locale)
    }

    async fn customer_name(&mut self, customer_id: &str) -> DbResult<Option<String>> {
        Ok(
            optional(&mut self.tx, CUSTOMER_NAME, params![customer_id], |r| {
                r.opt_text(0)
            })
            .await?
            .flatten(),
        )
    }

    async fn insert_offline_message(&mut self, message: &OfflineMessage) -> DbResult<()> {
        execute(
            &mut self.tx,
            INSERT_OFFLINE_MESSAGE,
            params![
                &message.id,
                &message.organization_id,
                &message.customer_id,
                &message.group_id,
                &message.name,
                &message.email,
                &message.text,
                message.handled,
                to_millis(message.created_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn offline_message_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>> {
        texts(
            &mut self.tx,
            OFFLINE_MESSAGE_RECIPIENTS,
            params![organization_id, group_id.unwrap_or("")],
        )
        .await
    }

    async fn greeting(&mut self, organization_id: &str, id: &str) -> DbResult<Greeting> {
        super::greetings::greeting(&mut self.tx, organization_id, id).await
    }

    async fn answer_greeting(
        &mut self,
        id: &str,
        chat_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool> {
        super::greetings::answer_greeting(&mut self.tx, id, chat_id, at).await
    }

    async fn tag(&mut self, organization_id: &str, id: &str) -> DbResult<crate::domain::Tag> {
        super::tags::tag(&mut self.tx, organization_id, id).await
    }

    async fn add_chat_tag(
        &mut self,
        chat: &Chat,
        tag_id: &str,
        added_by: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool> {
        super::tags::add_chat_tag(&mut self.tx, chat, tag_id, added_by, at).await
    }

    async fn remove_chat_tag(&mut self, chat_id: &str, tag_id: &str) -> DbResult<bool> {
        super::tags::remove_chat_tag(&mut self.tx, chat_id, tag_id).await
    }

    async fn attach_files(
        &mut self,
        chat_id: &str,
        uploader_id: &str,
        event_id: &str,
        file_ids: &[String],
    ) -> DbResult<usize> {
        super::files::attach_files(&mut self.tx, chat_id, uploader_id, event_id, file_ids).await
    }

    async fn webhook_targets(
        &mut self,
        organization_id: &str,
    ) -> DbResult<Vec<crate::domain::WebhookEndpoint>> {
        super::webhooks::webhook_targets(&mut self.tx, organization_id).await
    }

    async fn insert_webhook_delivery(
        &mut self,
        delivery: &crate::domain::WebhookDelivery,
    ) -> DbResult<()> {
        super::webhooks::insert_delivery(&mut self.tx, delivery).await
    }

    async fn messenger_recipient(
        &mut self,
        customer_id: &str,
    ) -> DbResult<Option<(String, String, DateTime<Utc>)>> {
        super::messenger::messenger_recipient(&mut self.tx, customer_id).await
    }

    async fn insert_messenger_send(&mut self, send: &crate::domain::MessengerSend) -> DbResult<()> {
        super::messenger::insert_send(&mut self.tx, send).await
    }

    async fn commit(self: Box<Self>) -> DbResult<()> {
        self.tx.commit().await
    }

    async fn insert_email_job(&mut self, job: &crate::domain::EmailJob) -> DbResult<()> {
        super::email::insert_email_job(&mut self.tx, job).await
    }

    async fn offline_message_email(&mut self, organization_id: &str) -> DbResult<Option<String>> {
        super::email::offline_message_email(&mut self.tx, organization_id).await
    }
}
