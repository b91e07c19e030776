//! The unit of work every chat use case runs in: one transaction that first locks the
//! organization ([`ChatService::begin`]: routing, the queue, agents' status) or enters one chat
//! ([`ChatService::begin_in_chat`]: messages and notes, side by side with the other chats'),
//! and what the change tells others. Feed and transcript entries and push jobs
//! are written in the transaction; bus announcements wait for the commit, so nobody hears of
//! a change that rolled back. Use cases record what happened as domain events (`events`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ChatService, new_event, not_found};
use crate::bus::{BusEvent, Topic};
use crate::domain::{
    self, AuthorKind, Chat, ChatEvent, ChatEventKind, FeedData, FeedKind, NotificationKind,
    Organization, PushJob, PushJobStatus, PushMessage, PushWording, RoutingCandidate, Wording,
};
use crate::error::Result;
use crate::store::{ChatTx, NewChatEvent, ParticipantRole};

/// What a push says.
pub(super) enum PushText<'a> {
    /// Worded when sent, in the device's locale; the `&str` is the body where the wording
    /// has none (a customer's message, previewed).
    Worded(PushWording, &'a str),
    /// Said as given: a customer's name and message.
    Quoted { title: &'a str, body: &'a str },
}

/// One change in progress: its transaction and what to announce after the commit.
pub(super) struct UnitOfWork {
    pub(super) tx: Box<dyn ChatTx>,
    /// The organization: locked for the whole change, or only read when the change writes
    /// in one chat (whose row is locked).
    pub(super) org: Organization,
    /// The one time the whole change is stamped with.
    pub(super) now: DateTime<Utc>,
    /// Feed and transcript entries and what the bus publisher made of the events, in the
    /// order they happened: published once the change commits.
    announcements: Vec<(Topic, BusEvent)>,
    /// Whether the queue changed, so the queue announcer must tell positions again.
    pub(super) queue_changed: bool,
    /// A chat that just joined the queue.
    pub(super) joined_queue: Option<String>,
    /// Whether pushes were queued, so the push worker must wake up.
    pushes_queued: bool,
    /// The last feed cursor given to each agent in this change, for pushes to carry.
    pub(super) feed_cursors: HashMap<String, i64>,
    /// Whether webhook deliveries were queued, so the webhook worker must wake up.
    pub(super) webhooks_queued: bool,
    /// The organization's enabled webhook endpoints, read at the first event.
    webhook_targets: Option<Vec<crate::domain::WebhookEndpoint>>,
    /// Routing candidates per group while the queue drains: read once per group, and kept
    /// up to date as chats are assigned, so a long queue costs one read per group.
    pub(super) drain_candidates: Option<HashMap<Option<String>, Vec<RoutingCandidate>>>,
    /// The language transcript entries are written in (the widget's), read at the first one.
    transcript_locale: Option<String>,
    /// Whether Send API calls were queued, so the Messenger worker must wake up.
    pub(super) messenger_sends_queued: bool,
    /// Set when SMTP is configured: what emailing offline messages needs.
    pub(super) offline_email: Option<std::sync::Arc<super::OfflineEmail>>,
    /// Whether emails were queued, so the email worker must wake up.
    pub(super) emails_queued: bool,
}

impl UnitOfWork {
    /// Appends a transcript entry and tells the chat's agents through their feeds.
    pub(super) async fn append(&mut self, chat: &Chat, event: NewChatEvent) -> Result<ChatEvent> {
        let stored = self.tx.append_event(&event).await?;
        self.tell_watchers(chat, stored).await
    }

    /// [`Self::append`] for a message: nothing when its author already sent its client id
    /// (the caller returns the earlier message and drops the change).
    pub(super) async fn append_message(
        &mut self,
        chat: &Chat,
        event: NewChatEvent,
    ) -> Result<Option<ChatEvent>> {
        match self.tx.append_message(&event).await? {
            Some(stored) => Ok(Some(self.tell_watchers(chat, stored).await?)),
            None => Ok(None),
        }
    }

    /// Tells the chat's agents of a stored entry through their feeds, and its chat's
    /// subscribers once the change commits.
    async fn tell_watchers(&mut self, chat: &Chat, stored: ChatEvent) -> Result<ChatEvent> {
        for agent_id in self.watchers(chat).await? {
            let entry = self
                .tx
                .append_feed(
                    &agent_id,
                    FeedKind::MessageAdded,
                    Some(&chat.id),
                    Some(&stored),
                    &FeedData::default(),
                    self.now,
                )
                .await?;
            self.feed_cursors.insert(agent_id.clone(), entry.seq);
            self.announce(Topic::Agent(agent_id), BusEvent::Feed(Box::new(entry)));
        }
        self.announce(
            Topic::Chat(chat.id.clone()),
            BusEvent::Transcript(stored.clone()),
        );
        Ok(stored)
    }

    /// `wording` in the organization's language, as transcripts store it for both sides.
    pub(super) async fn transcript_text(&mut self, wording: &Wording) -> Result<String> {
        if self.transcript_locale.is_none() {
            let locale = self.tx.transcript_locale(&self.org.id).await?;
            self.transcript_locale = Some(locale);
        }
        Ok(wording.render(self.transcript_locale.as_deref().unwrap_or_default()))
    }

    /// A system entry everybody sees.
    pub(super) async fn system(
        &mut self,
        chat: &Chat,
        kind: ChatEventKind,
        wording: Wording,
    ) -> Result<ChatEvent> {
        let text = self.transcript_text(&wording).await?;
        let event = new_event(chat, kind, AuthorKind::System, None, None, text, self.now);
        self.append(chat, event).await
    }

    /// Adds an entry to one agent's feed.
    pub(super) async fn feed(
        &mut self,
        agent_id: &str,
        kind: FeedKind,
        chat: Option<&Chat>,
        data: FeedData,
    ) -> Result<()> {
        let entry = self
            .tx
            .append_feed(
                agent_id,
                kind,
                chat.map(|c| c.id.as_str()),
                None,
                &data,
                self.now,
            )
            .await?;
        self.feed_cursors.insert(agent_id.to_owned(), entry.seq);
        self.announce(
            Topic::Agent(agent_id.to_owned()),
            BusEvent::Feed(Box::new(entry)),
        );
        Ok(())
    }

    /// Queues a push of `kind` to each of the agent's devices that takes it, due after
    /// `delay`, in this transaction: it goes out if and only if the change commits. The push
    /// says `text`.
    pub(super) async fn push(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat: Option<&Chat>,
        text: PushText<'_>,
        delay: std::time::Duration,
    ) -> Result<()> {
        let devices = self.tx.push_targets(agent_id, kind).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let cursor = self.feed_cursors.get(agent_id).map(i64::to_string);
        let chat_id = chat.map(|c| c.id.as_str());
        let message = match text {
            PushText::Worded(wording, body) => PushMessage::worded(
                kind,
                wording,
                body,
                &self.org.id,
                chat_id,
                cursor.as_deref(),
            ),
            PushText::Quoted { title, body } => {
                PushMessage::new(kind, title, body, &self.org.id, chat_id, cursor.as_deref())
            }
        };
        let due = self.now + chrono::Duration::from_std(delay).unwrap_or_default();
        for device in devices {
            let job = PushJob {
                id: domain::new_id(),
                device_id: device.id,
                agent_id: agent_id.to_owned(),
                organization_id: self.org.id.clone(),
                kind,
                chat_id: chat.map(|c| c.id.clone()),
                message: message.clone(),
                status: PushJobStatus::Pending,
                attempts: 0,
                next_attempt_at: due,
                last_error: None,
                created_at: self.now,
            };
            self.tx.insert_push_job(&job).await?;
        }
        self.pushes_queued = true;
        Ok(())
    }

    /// The organization's enabled webhook endpoints, read once per change.
    pub(super) async fn webhook_targets(&mut self) -> Result<Vec<crate::domain::WebhookEndpoint>> {
        if self.webhook_targets.is_none() {
            let targets = self.tx.webhook_targets(&self.org.id).await?;
            self.webhook_targets = Some(targets);
        }
        Ok(self.webhook_targets.clone().unwrap_or_default())
    }

    /// The customer's name as pushes show it.
    pub(super) async fn customer_name(&mut self, chat: &Chat) -> Result<String> {
        Ok(self
            .tx
            .customer_name(&chat.customer_id)
            .await?
            .unwrap_or_else(|| Wording::SomeCustomer.text()))
    }

    /// The agents who hear a chat's events: its assignee, supervisors who joined, and the
    /// supervisors of its group; in the order of their ids, the order their feed counters are
    /// locked in (changes in two chats that share agents never wait for each other in a
    /// circle).
    pub(super) async fn watchers(&mut self, chat: &Chat) -> Result<Vec<String>> {
        let mut watchers: Vec<String> = chat.assignee_id.iter().cloned().collect();
        for agent in self
            .tx
            .watchers(&chat.id, &chat.organization_id, chat.group_id.as_deref())
            .await?
        {
            if !watchers.contains(&agent) {
                watchers.push(agent);
            }
        }
        watchers.sort_unstable();
        Ok(watchers)
    }

    /// Publishes `event` on `topic` once the change commits.
    pub(super) fn announce(&mut self, topic: Topic, event: BusEvent) {
        self.announcements.push((topic, event));
    }

    /// The agents who had the chat before and handed it on: they never get it back.
    pub(super) async fn previous_assignees(&mut self, chat_id: &str) -> Result<Vec<String>> {
        Ok(self
            .tx
            .participants(chat_id)
            .await?
            .into_iter()
            .filter(|(_, role)| *role == ParticipantRole::PreviousAssignee)
            .map(|(agent, _)| agent)
            .collect())
    }

    /// Loads a chat of this organization, as NOT_FOUND when there is none.
    pub(super) async fn chat(&mut self, chat_id: &str) -> Result<Chat> {
        self.tx
            .chat(&self.org.id, chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))
    }
}

impl ChatService {
    /// Opens a unit of work in the organization, locking it: for changes that decide where
    /// chats go (assigning, queueing, draining the queue, transfers, agents' status and
    /// limits, closing) or count across chats.
    pub(super) async fn begin(&self, organization_id: &str) -> Result<UnitOfWork> {
        let mut tx = self.store.begin().await?;
        let org = tx.lock_organization(organization_id).await?;
        Ok(self.unit_of_work(tx, org))
    }

    /// Opens a unit of work that writes in one chat of the organization and routes nothing:
    /// it locks the chat's row, not the organization, so changes in other chats of the
    /// organization commit beside it. Changes that lock the organization wait for it (and it
    /// for them). What it may do: read and update the chat, append to its transcript, tell
    /// the chat's agents through their feeds, queue pushes, webhook deliveries, Messenger
    /// sends and emails about the chat.
    ///
    /// Returns the chat, locked, and its customer's name (NOT_FOUND when the organization
    /// has no such chat).
    pub(super) async fn begin_in_chat(
        &self,
        organization_id: &str,
        chat_id: &str,
    ) -> Result<(UnitOfWork, Chat, Option<String>)> {
        let mut tx = self.store.begin().await?;
        let entered = tx
            .enter_chat(organization_id, chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))?;
        let mut work = self.unit_of_work(tx, entered.organization);
        if !entered.has_webhooks {
            work.webhook_targets = Some(Vec::new());
        }
        Ok((work, entered.chat, entered.customer_name))
    }

    fn unit_of_work(&self, tx: Box<dyn ChatTx>, org: Organization) -> UnitOfWork {
        UnitOfWork {
            tx,
            org,
            now: domain::now(),
            announcements: Vec::new(),
            queue_changed: false,
            joined_queue: None,
            pushes_queued: false,
            webhooks_queued: false,
            webhook_targets: None,
            feed_cursors: HashMap::new(),
            drain_candidates: None,
            transcript_locale: None,
            messenger_sends_queued: false,
            offline_email: self.offline_email.clone(),
            emails_queued: false,
        }
    }

    /// Commits, then wakes the push worker and announces what changed.
    ///
    /// The commit and what follows it run on a task of their own, to the end even when the
    /// caller goes away meanwhile (a client that disconnects while its write waits for a
    /// commit it shares with others, on SQLite, or for Postgres): a committed change is
    /// always announced.
    pub(super) async fn finish(&self, work: UnitOfWork) -> Result<()> {
        let UnitOfWork {
            tx,
            org,
            announcements,
            queue_changed,
            joined_queue,
            pushes_queued,
            webhooks_queued,
            messenger_sends_queued,
            offline_email,
            emails_queued,
            ..
        } = work;
        // Nearly every unit of work writes a chat (a new one, an assignment, a message, a
        // close): any may bring a timer's deadline nearer.
        let mut wakes = vec![self.timer_wake.clone()];
        if pushes_queued {
            wakes.push(self.push_wake.clone());
        }
        if webhooks_queued {
            wakes.push(self.webhook_wake.clone());
        }
        if messenger_sends_queued {
            wakes.push(self.messenger_wake.clone());
        }
        if emails_queued && let Some(email) = offline_email {
            wakes.push(email.wake.clone());
        }
        let bus = self.bus.clone();
        let queue = queue_changed.then(|| {
            (
                self.pending_queue_announcements.clone(),
                self.queue_wake.clone(),
                org,
                joined_queue,
            )
        });
        tokio::spawn(async move {
            tx.commit().await?;
            for wake in wakes {
                wake.notify_one();
            }
            for (topic, event) in announcements {
                bus.publish(topic, event);
            }
            if let Some((pending, wake, org, joined)) = queue {
                super::queue::announce_queue_change(&pending, &wake, &org, joined);
            }
            Ok(())
        })
        .await
        .map_err(crate::error::Error::internal)?
    }
}
