//! The chat use cases: visitors, starting chats, routing and the queue, messages, typing,
//! transfers, supervision, closing and rating.
//!
//! Every change runs in a [`ChatTx`] that first locks the organization, so the capacity check
//! and the assignment are one step on any number of nodes. What a change tells others (feed
//! and transcript entries, typing, queue positions) is collected while it runs and published
//! on the bus only after the commit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::bus::{BusEvent, EventBus, QueuedChat, Topic, Typing};
use crate::domain::{
    self, Agent, Attention, AuthorKind, Channel, Chat, ChatEvent, ChatEventKind, ChatSettings,
    ChatStatus, Customer, FeedData, FeedKind, NotificationKind, OfflineMessage, Organization,
    PushJob, PushJobStatus, PushMessage, Rating, RoutingCandidate, RoutingStatus, Visibility,
    choose_agent,
};
use crate::error::{Error, Result};
use crate::services::auth::{Caller, CustomerPrincipal, Principal, random_token};
use crate::services::rate_limit::FailureLimiter;
use crate::store::{AgentLoad, ChatTx, CustomerVisit, Database, NewChatEvent, ParticipantRole};

/// Handling time assumed for wait estimates until the organization has closed chats today.
const DEFAULT_HANDLE_SECONDS: i64 = 300;
/// The shortest handling time wait estimates assume: a day of chats closed within seconds
/// (tests, spam) must not tell waiting customers they wait for nothing.
const MIN_HANDLE_SECONDS: i64 = 30;
/// Longest URL, page title, referrer, user agent and free-text field we keep.
const MAX_URL_CHARS: usize = 2048;
const MAX_TITLE_CHARS: usize = 300;
const MAX_USER_AGENT_CHARS: usize = 512;
const MAX_COMMENT_CHARS: usize = 1000;
/// Random bytes in a visitor secret: as strong as a refresh token.
const VISITOR_SECRET_BYTES: usize = 32;
/// Longest visitor secret accepted; ours are 43 characters.
const MAX_VISITOR_SECRET_CHARS: usize = 128;

/// What a widget sends to start a visitor session.
#[derive(Debug, Clone, Default)]
pub struct VisitorSessionInput {
    pub widget_key: String,
    pub visitor_id: Option<String>,
    /// The secret the widget was given with the visitor id; without it a known visitor id
    /// starts a new customer.
    pub visitor_secret: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub location: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
}

/// A started visitor session.
#[derive(Debug, Clone)]
pub struct VisitorSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub customer: Customer,
    /// A new secret for the widget to keep with the visitor id, when this session issued one.
    pub visitor_secret: Option<String>,
}

/// Whether a widget should offer a chat or the offline form, for one group or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// A chat started now would be accepted: someone of the group accepts chats, and has room
    /// or the queue does.
    pub online: bool,
    /// Agents of the group accept chats, but a new chat cannot start now: every one is full
    /// and the queue is at its limit, or the organization's per-minute cap is reached.
    pub queue_full: bool,
    /// Customers waiting for the group.
    pub queue_length: i64,
    pub estimated_wait_seconds: i64,
}

/// Where a transfer goes.
#[derive(Debug, Clone)]
pub enum TransferTarget {
    Agent(String),
    Group(String),
}

/// A transfer's target once checked.
enum Destination {
    Agent(Agent),
    Group(domain::Group),
}

/// A queued chat with its place and expected wait.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub chat: Chat,
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// A new offline message.
#[derive(Debug, Clone)]
pub struct OfflineMessageInput {
    pub name: String,
    pub email: String,
    pub text: String,
    pub group_id: Option<String>,
}

/// New organization settings; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub default_chat_limit: Option<i32>,
    pub auto_transfer_seconds: Option<i32>,
    pub waiting_long_seconds: Option<i32>,
    pub customer_idle_seconds: Option<i32>,
    pub auto_close_seconds: Option<i32>,
    pub presence_grace_seconds: Option<i32>,
    pub queue_limit: Option<i32>,
    pub acceptance_timeout_seconds: Option<i32>,
    pub queue_abandon_seconds: Option<i32>,
    pub new_chats_per_minute: Option<i32>,
}

/// What customers may do per minute. Every customer operation draws on one of these budgets.
#[derive(Debug, Clone, Copy)]
pub struct CustomerLimits {
    /// Visitor sessions per client address.
    pub visitor_sessions_per_minute: u32,
    /// Messages per customer: startChat, sendMessage, leaveOfflineMessage.
    pub messages_per_minute: u32,
    /// Typing notices per customer: frequent while someone types, so a budget of their own.
    pub typing_per_minute: u32,
    /// Everything else a customer does: rateChat, updateVisitorPage, closeChat.
    pub actions_per_minute: u32,
    /// Chats started per client address, across the visitors it creates.
    pub chat_starts_per_address_per_minute: u32,
}

/// The chat use cases.
pub struct ChatService {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    visitor_sessions: FailureLimiter,
    customer_messages: FailureLimiter,
    customer_typing: FailureLimiter,
    customer_actions: FailureLimiter,
    chat_starts_per_address: FailureLimiter,
    /// Rung when a change queued pushes.
    push_wake: Arc<tokio::sync::Notify>,
    /// Organizations whose queue changed and is about to be announced, with the chats that
    /// joined it meanwhile.
    pending_queue_announcements: Arc<std::sync::Mutex<HashMap<String, Vec<String>>>>,
}

/// How long queue changes gather before one announcement.
const QUEUE_ANNOUNCEMENT_DELAY: Duration = Duration::from_millis(50);

/// One change in progress: its transaction and what to announce after the commit.
struct Change {
    tx: Box<dyn ChatTx>,
    org: Organization,
    now: DateTime<Utc>,
    announcements: Vec<(Topic, BusEvent)>,
    /// Whether the queue changed, so positions must be announced.
    queue_changed: bool,
    /// A chat that just joined the queue.
    joined_queue: Option<String>,
    /// Whether pushes were queued, so the push worker must wake up.
    pushes_queued: bool,
    /// The last feed cursor given to each agent in this change, for pushes to carry.
    feed_cursors: HashMap<String, i64>,
}

impl Change {
    /// Appends a transcript entry and tells the chat's agents through their feeds.
    async fn append(&mut self, chat: &Chat, event: NewChatEvent) -> Result<ChatEvent> {
        let stored = self.tx.append_event(&event).await?;
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

    /// A system entry everybody sees.
    async fn system(
        &mut self,
        chat: &Chat,
        kind: ChatEventKind,
        text: String,
    ) -> Result<ChatEvent> {
        let event = new_event(chat, kind, AuthorKind::System, None, None, text, self.now);
        self.append(chat, event).await
    }

    /// Adds an entry to one agent's feed.
    async fn feed(
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
    /// `delay`, in this transaction: it goes out if and only if the change commits.
    async fn push(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat: Option<&Chat>,
        title: &str,
        body: &str,
        delay: std::time::Duration,
    ) -> Result<()> {
        let devices = self.tx.push_targets(agent_id, kind).await?;
        if devices.is_empty() {
            return Ok(());
        }
        let cursor = self.feed_cursors.get(agent_id).map(i64::to_string);
        let message = PushMessage::new(
            kind,
            title,
            body,
            &self.org.id,
            chat.map(|c| c.id.as_str()),
            cursor.as_deref(),
        );
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

    /// The customer's name as pushes show it.
    async fn customer_name(&mut self, chat: &Chat) -> Result<String> {
        Ok(self
            .tx
            .customer_name(&chat.customer_id)
            .await?
            .unwrap_or_else(|| "A customer".into()))
    }

    /// The agents who hear a chat's events: its assignee, supervisors who joined, and the
    /// supervisors of its group.
    async fn watchers(&mut self, chat: &Chat) -> Result<Vec<String>> {
        let mut watchers: Vec<String> = chat.assignee_id.iter().cloned().collect();
        for (agent, role) in self.tx.participants(&chat.id).await? {
            if role == ParticipantRole::Supervisor && !watchers.contains(&agent) {
                watchers.push(agent);
            }
        }
        for agent in self
            .tx
            .supervisors(&chat.organization_id, chat.group_id.as_deref())
            .await?
        {
            if !watchers.contains(&agent) {
                watchers.push(agent);
            }
        }
        Ok(watchers)
    }

    fn announce(&mut self, topic: Topic, event: BusEvent) {
        self.announcements.push((topic, event));
    }

    /// Gives `chat` to `agent_id`.
    async fn assign(
        &mut self,
        chat: &mut Chat,
        agent_id: &str,
        feed: FeedKind,
        data: FeedData,
    ) -> Result<()> {
        let agent = self.tx.agent(&self.org.id, agent_id).await?;
        let was_queued = chat.status == ChatStatus::Queued;
        chat.status = ChatStatus::Active;
        chat.assignee_id = Some(agent.id.clone());
        chat.assigned_at = Some(self.now);
        chat.queued_at = None;
        chat.attention = Attention::Normal;
        chat.agent_typing_since = None;
        // The reply clock starts when the agent gets the chat, not when the customer wrote.
        if chat.awaiting_reply_since.is_some() {
            chat.awaiting_reply_since = Some(self.now);
        }
        // An agent with no app connected live must acknowledge in time (see the timers).
        let live = self.tx.agent_live(&agent.id, self.now).await?;
        chat.acceptance_deadline = (!live).then(|| self.now + self.org.settings.acceptance_timeout);
        self.tx.update_chat(chat).await?;
        self.tx.mark_assigned(&agent.id, self.now).await?;
        self.feed(&agent.id, feed, Some(chat), data).await?;
        self.system(
            chat,
            ChatEventKind::AgentAssigned,
            format!("{} joined the chat", agent.name),
        )
        .await?;
        let kind = if feed == FeedKind::ChatTransferred {
            NotificationKind::TransferredChat
        } else {
            NotificationKind::NewChat
        };
        // An agent with the app open sees the assignment there; a push would ring a phone
        // beside it. Most assignments go to agents without a phone: look that up before
        // writing text.
        if !live && !self.tx.push_targets(&agent.id, kind).await?.is_empty() {
            let customer = self.customer_name(chat).await?;
            let preview = self
                .tx
                .latest_customer_message(&chat.id)
                .await?
                .unwrap_or_default();
            let title = match kind {
                NotificationKind::TransferredChat => {
                    format!("Chat with {customer} transferred to you")
                }
                _ => format!("New chat from {customer}"),
            };
            self.push(
                &agent.id,
                kind,
                Some(chat),
                &title,
                &preview,
                std::time::Duration::ZERO,
            )
            .await?;
        }
        if was_queued {
            self.queue_changed = true;
        }
        Ok(())
    }

    /// One collapsed "customers waiting" push to each accepting agent of the chat's group who
    /// has no app connected live, at most once a minute.
    async fn push_queue_reminders(&mut self, chat: &Chat) -> Result<()> {
        let since =
            self.now - chrono::Duration::from_std(domain::QUEUE_PUSH_INTERVAL).unwrap_or_default();
        let recipients = self
            .tx
            .queue_push_recipients(&self.org.id, chat.group_id.as_deref(), since, self.now)
            .await?;
        if recipients.is_empty() {
            return Ok(());
        }
        let waiting = self.tx.queued_count(&self.org.id, None).await?;
        let title = if waiting == 1 {
            "1 customer is waiting".to_owned()
        } else {
            format!("{waiting} customers are waiting")
        };
        for agent in recipients {
            self.push(
                &agent,
                NotificationKind::QueuedCustomers,
                None,
                &title,
                "Open the queue to take a chat",
                std::time::Duration::ZERO,
            )
            .await?;
        }
        Ok(())
    }

    /// Puts `chat` in the queue.
    async fn enqueue(&mut self, chat: &mut Chat) -> Result<()> {
        if let Some(previous) = chat.assignee_id.take() {
            self.tx
                .add_participant(
                    &chat.id,
                    &previous,
                    ParticipantRole::PreviousAssignee,
                    self.now,
                )
                .await?;
        }
        chat.status = ChatStatus::Queued;
        chat.queued_at = Some(self.now);
        chat.attention = Attention::Normal;
        self.tx.update_chat(chat).await?;
        self.system(
            chat,
            ChatEventKind::ChatQueued,
            "All our agents are busy right now; you are in the queue and will be connected as \
             soon as someone is free"
                .into(),
        )
        .await?;
        self.queue_changed = true;
        self.joined_queue = Some(chat.id.clone());
        self.push_queue_reminders(chat).await?;
        Ok(())
    }

    /// Routes `chat` in its group: to `preferred` or the least-loaded agent with room, else
    /// the queue. `Err(AGENTS_OFFLINE)` when nobody in the group accepts chats.
    async fn route(
        &mut self,
        chat: &mut Chat,
        preferred: Option<&str>,
        excluded: &[String],
        feed: FeedKind,
        data: FeedData,
    ) -> Result<()> {
        let candidates = self
            .tx
            .routing_candidates(&self.org, chat.group_id.as_deref(), self.now)
            .await?;
        let reachable: Vec<&RoutingCandidate> = candidates
            .iter()
            .filter(|c| !excluded.contains(&c.agent_id))
            .collect();
        if reachable.is_empty() {
            return Err(Error::AgentsOffline(
                "nobody is accepting chats right now; leave an offline message instead".into(),
            ));
        }
        match choose_agent(&candidates, preferred, excluded) {
            Some(chosen) => {
                let agent_id = chosen.agent_id.clone();
                self.assign(chat, &agent_id, feed, data).await
            }
            None => {
                // A new chat is stored as queued before it is routed: it is not ahead of
                // itself.
                let ahead = self.tx.queued_count(&self.org.id, Some(&chat.id)).await?;
                if ahead >= i64::from(self.org.settings.queue_limit) {
                    return Err(Error::AgentsOffline(
                        "every agent is busy and the queue is full; leave an offline message \
                         instead"
                            .into(),
                    ));
                }
                self.enqueue(chat).await
            }
        }
    }

    /// Gives queued chats, oldest first, to agents who have room.
    async fn drain_queue(&mut self) -> Result<()> {
        let queued = self.tx.queued_chats(&self.org.id).await?;
        if queued.is_empty() {
            return Ok(());
        }
        let mut candidates: HashMap<Option<String>, Vec<RoutingCandidate>> = HashMap::new();
        for mut chat in queued {
            if !candidates.contains_key(&chat.group_id) {
                let found = self
                    .tx
                    .routing_candidates(&self.org, chat.group_id.as_deref(), self.now)
                    .await?;
                candidates.insert(chat.group_id.clone(), found);
            }
            let excluded = self.previous_assignees(&chat.id).await?;
            let group = &candidates[&chat.group_id];
            let Some(chosen) = choose_agent(group, None, &excluded).map(|c| c.agent_id.clone())
            else {
                continue;
            };
            self.assign(
                &mut chat,
                &chosen,
                FeedKind::ChatAssigned,
                FeedData {
                    reason: Some("queue".into()),
                    ..FeedData::default()
                },
            )
            .await?;
            // The agent's load grew in every group they serve.
            for group in candidates.values_mut() {
                for candidate in group.iter_mut().filter(|c| c.agent_id == chosen) {
                    candidate.load += 1;
                }
            }
        }
        Ok(())
    }

    async fn previous_assignees(&mut self, chat_id: &str) -> Result<Vec<String>> {
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
    async fn chat(&mut self, chat_id: &str) -> Result<Chat> {
        self.tx
            .chat(&self.org.id, chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))
    }
}

fn new_event(
    chat: &Chat,
    kind: ChatEventKind,
    author_kind: AuthorKind,
    author: Option<(&str, &str)>,
    client_id: Option<String>,
    text: String,
    at: DateTime<Utc>,
) -> NewChatEvent {
    NewChatEvent {
        chat_id: chat.id.clone(),
        organization_id: chat.organization_id.clone(),
        kind,
        author_kind,
        author_id: author.map(|(id, _)| id.to_owned()),
        author_name: author.map(|(_, name)| name.to_owned()),
        text,
        client_id,
        visibility: Visibility::Public,
        at,
    }
}

impl ChatService {
    /// A chat service over `store`, announcing on `bus`.
    pub fn new(
        store: Arc<dyn Database>,
        bus: Arc<dyn EventBus>,
        limits: CustomerLimits,
        push_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        let per_minute = |limit: u32| FailureLimiter::new(limit, Duration::from_secs(60));
        ChatService {
            store,
            bus,
            push_wake,
            pending_queue_announcements: Arc::default(),
            visitor_sessions: per_minute(limits.visitor_sessions_per_minute),
            customer_messages: per_minute(limits.messages_per_minute),
            customer_typing: per_minute(limits.typing_per_minute),
            customer_actions: per_minute(limits.actions_per_minute),
            chat_starts_per_address: per_minute(limits.chat_starts_per_address_per_minute),
        }
    }

    async fn begin(&self, organization_id: &str) -> Result<Change> {
        let mut tx = self.store.begin().await?;
        let org = tx.lock_organization(organization_id).await?;
        Ok(Change {
            tx,
            org,
            now: domain::now(),
            announcements: Vec::new(),
            queue_changed: false,
            joined_queue: None,
            pushes_queued: false,
            feed_cursors: HashMap::new(),
        })
    }

    /// Commits and announces.
    async fn finish(&self, change: Change) -> Result<()> {
        let Change {
            tx,
            org,
            announcements,
            queue_changed,
            joined_queue,
            pushes_queued,
            ..
        } = change;
        tx.commit().await?;
        if pushes_queued {
            self.push_wake.notify_one();
        }
        for (topic, event) in announcements {
            self.bus.publish(topic, event);
        }
        if queue_changed {
            self.queue_changed(&org, joined_queue);
        }
        Ok(())
    }

    /// Announces the organization's queue shortly, once for every change made meanwhile:
    /// a burst of a thousand chats costs one announcement, not a thousand.
    fn queue_changed(&self, org: &Organization, joined: Option<String>) {
        let mut pending = self
            .pending_queue_announcements
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(joined_so_far) = pending.get_mut(&org.id) {
            joined_so_far.extend(joined);
            return;
        }
        pending.insert(org.id.clone(), joined.into_iter().collect());
        let (store, bus, pending) = (
            self.store.clone(),
            self.bus.clone(),
            self.pending_queue_announcements.clone(),
        );
        let org = org.clone();
        tokio::spawn(async move {
            tokio::time::sleep(QUEUE_ANNOUNCEMENT_DELAY).await;
            let joined = pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&org.id)
                .unwrap_or_default();
            if let Err(err) = announce_queue(store.as_ref(), bus.as_ref(), &org, joined).await {
                tracing::warn!(error = %err, "could not announce the queue");
            }
        });
    }

    /// The queue with places and estimated waits.
    async fn queue_entries(&self, org: &Organization) -> Result<Vec<QueueEntry>> {
        queue_entries(self.store.as_ref(), org).await
    }

    // ---- customers --------------------------------------------------------------------

    /// Starts (or resumes, for a known visitor id) a customer's session from the widget.
    pub async fn start_visitor_session(
        &self,
        auth: &crate::services::AuthService,
        input: VisitorSessionInput,
        client: IpAddr,
    ) -> Result<VisitorSession> {
        if let Err(wait) = self.visitor_sessions.acquire(&client.to_string()) {
            return Err(Error::RateLimited {
                message: "too many visitor sessions from this address; try again in a minute"
                    .into(),
                retry_after_secs: whole_seconds(wait),
            });
        }
        let org = self
            .store
            .organization_by_widget_key(input.widget_key.trim())
            .await
            .map_err(|err| not_found(err, "widget key"))?;
        let visitor_id = match input.visitor_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                if id.len() > 64
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(Error::BadUserInput(
                        "visitorId must be at most 64 letters, digits, '-' or '_'".into(),
                    ));
                }
                id.to_owned()
            }
            _ => domain::new_id(),
        };
        let presented_secret = match input.visitor_secret.as_deref().map(str::trim) {
            Some(secret) if secret.len() > MAX_VISITOR_SECRET_CHARS => {
                return Err(Error::BadUserInput(format!(
                    "visitorSecret must be at most {MAX_VISITOR_SECRET_CHARS} characters"
                )));
            }
            Some(secret) if !secret.is_empty() => Some(secret),
            _ => None,
        };
        let new_secret = random_token(VISITOR_SECRET_BYTES);
        let visit = CustomerVisit {
            organization_id: org.id.clone(),
            visitor_id,
            name: optional_name("name", input.name.as_deref())?,
            email: input
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(domain::normalize_email)
                .transpose()?,
            location: optional_text("location", input.location.as_deref(), 200)?,
            ip_address: Some(client.to_string()),
            page_url: optional_text("pageUrl", input.page_url.as_deref(), MAX_URL_CHARS)?,
            page_title: optional_text("pageTitle", input.page_title.as_deref(), MAX_TITLE_CHARS)?,
            referrer: optional_text("referrer", input.referrer.as_deref(), MAX_URL_CHARS)?,
            user_agent: optional_text(
                "userAgent",
                input.user_agent.as_deref(),
                MAX_USER_AGENT_CHARS,
            )?,
            at: domain::now(),
            new_secret_hash: visitor_secret_hash(&new_secret),
            presented_secret_hash: presented_secret.map(visitor_secret_hash),
        };
        let recorded = self.store.record_visit(&visit, &domain::new_id()).await?;
        let (token, expires_at) = auth.visitor_token(&recorded.customer)?;
        Ok(VisitorSession {
            token,
            expires_at,
            customer: recorded.customer,
            visitor_secret: recorded.secret_issued.then_some(new_secret),
        })
    }

    /// Whether a chat for `group_id` (any group when `None`) can start now, by the rules
    /// startChat applies: a widget that follows it never offers a chat startChat refuses.
    pub async fn availability(
        &self,
        widget_key: &str,
        group_id: Option<&str>,
    ) -> Result<Availability> {
        let org = self
            .store
            .organization_by_widget_key(widget_key.trim())
            .await
            .map_err(|err| not_found(err, "widget key"))?;
        if let Some(group_id) = group_id {
            self.require_group(&org.id, group_id).await?;
        }
        let now = domain::now();
        let loads: Vec<AgentLoad> = self
            .store
            .agent_loads(&org.id, now)
            .await?
            .into_iter()
            .filter(|l| routable(l) && domain::in_chat_group(&l.agent, group_id))
            .collect();
        let accepting = !loads.is_empty();
        let someone_has_room = loads.iter().any(|l| l.active_chats < chat_limit(l, &org));
        let queue = self.queue_entries(&org).await?;
        // The limit counts the whole queue, as startChat does; the wait only the group's.
        let queue_is_full = queue.len() as i64 >= i64::from(org.settings.queue_limit);
        let queue_length = match group_id {
            Some(group) => queue
                .iter()
                .filter(|e| e.chat.group_id.as_deref() == Some(group))
                .count() as i64,
            None => queue.len() as i64,
        };
        let started = self
            .store
            .chats_started_since(&org.id, now - chrono::Duration::minutes(1))
            .await?;
        let capped = started >= i64::from(org.settings.new_chats_per_minute);
        let queue_full = accepting && (capped || (!someone_has_room && queue_is_full));
        let online = accepting && !queue_full;
        let estimated_wait_seconds = if !online || someone_has_room {
            0
        } else {
            let handle = self
                .store
                .average_handle_seconds(&org.id)
                .await?
                .map_or(DEFAULT_HANDLE_SECONDS, |seconds| {
                    seconds.max(MIN_HANDLE_SECONDS)
                });
            domain::estimate_wait_seconds(
                queue_length + 1,
                accepting_slots(&loads, &org, group_id),
                handle,
            )
        };
        Ok(Availability {
            online,
            queue_full,
            queue_length,
            estimated_wait_seconds,
        })
    }

    /// A customer starts a chat with their first message, from `client`.
    pub async fn start_chat(
        &self,
        customer: &CustomerPrincipal,
        message: &str,
        group_id: Option<&str>,
        client: IpAddr,
    ) -> Result<Chat> {
        let text = message_text(message)?;
        self.limit_customer(customer)?;
        if let Err(wait) = self.chat_starts_per_address.acquire(&client.to_string()) {
            return Err(Error::RateLimited {
                message: "too many chats started from this address; try again in a minute".into(),
                retry_after_secs: whole_seconds(wait),
            });
        }
        // Reads the transaction does not need come first: the single SQLite writer should not
        // wait on them.
        if let Some(group_id) = group_id {
            self.require_group(&customer.organization_id, group_id)
                .await?;
        }
        let customer_record = self
            .store
            .customer(&customer.organization_id, &customer.customer_id)
            .await
            .map_err(|err| not_found(err, "customer"))?;
        let author_name = customer_record
            .name
            .clone()
            .unwrap_or_else(|| "Customer".into());
        let mut change = self.begin(&customer.organization_id).await?;
        // A second start (a double tap, a reload) continues the open chat.
        if let Some(open) = change
            .tx
            .open_chat_of_customer(&customer.customer_id)
            .await?
        {
            drop(change);
            self.send_message(&Caller::Customer(customer.clone()), &open, &text, None)
                .await?;
            return Ok(self.store.chat(&customer.organization_id, &open).await?);
        }
        // Counted under the organization's lock, in the database: exact under concurrency
        // and on any number of nodes.
        let minute = chrono::Duration::minutes(1);
        let (started, oldest) = change
            .tx
            .chats_started_since(&customer.organization_id, change.now - minute)
            .await?;
        if started >= i64::from(change.org.settings.new_chats_per_minute) {
            let wait = oldest.map_or(60, |oldest| {
                (oldest + minute - change.now).num_seconds() + 1
            });
            return Err(Error::RateLimited {
                message: "too many chats are starting right now; try again in a moment or \
                          leave a message"
                    .into(),
                retry_after_secs: wait.clamp(1, 60) as u64,
            });
        }
        let now = change.now;
        let mut chat = Chat {
            id: domain::new_id(),
            organization_id: customer.organization_id.clone(),
            customer_id: customer.customer_id.clone(),
            group_id: group_id.map(str::to_owned),
            channel: Channel::Widget,
            status: ChatStatus::Queued,
            assignee_id: None,
            attention: Attention::Normal,
            created_at: now,
            queued_at: Some(now),
            assigned_at: None,
            first_response_at: None,
            closed_at: None,
            rating: None,
            rating_comment: None,
            awaiting_reply_since: Some(now),
            last_customer_activity_at: now,
            last_activity_at: now,
            agent_typing_since: None,
            acceptance_deadline: None,
            customer_seen_at: None,
        };
        let previous = change
            .tx
            .previous_agent_of_customer(&customer.customer_id)
            .await?;
        change.tx.insert_chat(&chat).await?;
        let event = new_event(
            &chat,
            ChatEventKind::Message,
            AuthorKind::Customer,
            Some((&customer.customer_id, &author_name)),
            None,
            text,
            now,
        );
        change.append(&chat, event).await?;
        let data = FeedData {
            reason: Some(
                if previous.is_some() {
                    "returning customer"
                } else {
                    "new chat"
                }
                .into(),
            ),
            ..FeedData::default()
        };
        change
            .route(
                &mut chat,
                previous.as_deref(),
                &[],
                FeedKind::ChatAssigned,
                data,
            )
            .await?;
        self.finish(change).await?;
        Ok(chat)
    }

    /// A customer leaves a note for when someone is back. Every agent who may read it hears
    /// `OfflineMessageReceived` in their feed, and gets a push where they switched it on.
    pub async fn leave_offline_message(
        &self,
        customer: &CustomerPrincipal,
        input: OfflineMessageInput,
    ) -> Result<OfflineMessage> {
        self.limit_customer(customer)?;
        if let Some(group_id) = &input.group_id {
            self.require_group(&customer.organization_id, group_id)
                .await?;
        }
        let message = OfflineMessage {
            id: domain::new_id(),
            organization_id: customer.organization_id.clone(),
            customer_id: Some(customer.customer_id.clone()),
            group_id: input.group_id,
            name: domain::validate_name("name", &input.name, 100)?,
            email: domain::normalize_email(&input.email)?,
            text: message_text(&input.text)?,
            handled: false,
            created_at: domain::now(),
        };
        let mut change = self.begin(&customer.organization_id).await?;
        change.tx.insert_offline_message(&message).await?;
        let recipients = change
            .tx
            .offline_message_recipients(&customer.organization_id, message.group_id.as_deref())
            .await?;
        let title = format!("Offline message from {}", message.name);
        for agent in recipients {
            change
                .feed(
                    &agent,
                    FeedKind::OfflineMessageReceived,
                    None,
                    FeedData {
                        offline_message_id: Some(message.id.clone()),
                        ..FeedData::default()
                    },
                )
                .await?;
            change
                .push(
                    &agent,
                    NotificationKind::OfflineMessage,
                    None,
                    &title,
                    &message.text,
                    std::time::Duration::ZERO,
                )
                .await?;
        }
        self.finish(change).await?;
        Ok(message)
    }

    /// The widget reports the page the customer is on.
    pub async fn update_visitor_page(
        &self,
        customer: &CustomerPrincipal,
        url: &str,
        title: Option<&str>,
    ) -> Result<Customer> {
        self.limit_customer_action(customer)?;
        let url = optional_text("url", Some(url), MAX_URL_CHARS)?
            .ok_or_else(|| Error::BadUserInput("url must not be empty".into()))?;
        let title = optional_text("title", title, MAX_TITLE_CHARS)?;
        self.store
            .record_page_view(
                &customer.organization_id,
                &customer.customer_id,
                &url,
                title.as_deref(),
                domain::now(),
            )
            .await
            .map_err(|err| not_found(err, "customer"))
    }

    /// A customer rates their chat.
    pub async fn rate_chat(
        &self,
        customer: &CustomerPrincipal,
        chat_id: &str,
        rating: Rating,
        comment: Option<&str>,
    ) -> Result<Chat> {
        self.limit_customer_action(customer)?;
        let comment = optional_text("comment", comment, MAX_COMMENT_CHARS)?;
        let mut change = self.begin(&customer.organization_id).await?;
        let mut chat = change.chat(chat_id).await?;
        if chat.customer_id != customer.customer_id {
            return Err(Error::NotFound("no such chat".into()));
        }
        // A chat has one rating: a change of mind replaces it, and the transcript keeps the
        // one entry the first rating wrote (the organization lock orders concurrent ratings).
        let first_rating = chat.rating.is_none();
        chat.rating = Some(rating);
        chat.rating_comment = comment.clone();
        change.tx.update_chat(&chat).await?;
        if !first_rating {
            self.finish(change).await?;
            return Ok(chat);
        }
        let verdict = match rating {
            Rating::Good => "good",
            Rating::Bad => "bad",
        };
        let text = match &comment {
            Some(comment) => format!("The customer rated the chat {verdict}: {comment}"),
            None => format!("The customer rated the chat {verdict}"),
        };
        change.system(&chat, ChatEventKind::ChatRated, text).await?;
        self.finish(change).await?;
        Ok(chat)
    }

    // ---- both sides -------------------------------------------------------------------

    /// Sends a message in a chat. The same client id twice returns the first message.
    pub async fn send_message(
        &self,
        caller: &Caller,
        chat_id: &str,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<ChatEvent> {
        let text = message_text(text)?;
        let client_id = match client_id.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) if c.chars().count() > domain::MAX_CLIENT_ID_CHARS => {
                return Err(Error::BadUserInput(format!(
                    "clientId must be at most {} characters",
                    domain::MAX_CLIENT_ID_CHARS
                )));
            }
            other => other.map(str::to_owned),
        };
        // The customer's name is read before the transaction: the single SQLite writer should
        // not wait on a read it does not need.
        let customer_name = match caller {
            Caller::Customer(customer) => {
                self.limit_customer(customer)?;
                let customer = self
                    .store
                    .customer(&customer.organization_id, &customer.customer_id)
                    .await?;
                customer.name
            }
            Caller::Agent(_) => None,
        };
        let mut change = self.begin(organization_of(caller)).await?;
        let mut chat = change.chat(chat_id).await?;
        let (author_kind, author_id, author_name) = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                let name = customer_name.unwrap_or_else(|| "Customer".into());
                (AuthorKind::Customer, customer.customer_id.clone(), name)
            }
            Caller::Agent(principal) => {
                self.require_participant(&mut change, principal, &chat)
                    .await?;
                (
                    AuthorKind::Agent,
                    principal.agent.id.clone(),
                    principal.agent.name.clone(),
                )
            }
        };
        if let Some(client_id) = &client_id
            && let Some(existing) = change
                .tx
                .message_by_client_id(&chat.id, &author_id, client_id)
                .await?
        {
            return Ok(existing);
        }
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict("the chat is closed".into()));
        }
        let now = change.now;
        let before = chat.attention;
        chat.last_activity_at = now;
        match author_kind {
            AuthorKind::Customer => {
                chat.last_customer_activity_at = now;
                chat.awaiting_reply_since = chat.awaiting_reply_since.or(Some(now));
                if chat.attention == Attention::CustomerIdle {
                    chat.attention = Attention::Normal;
                }
            }
            _ => {
                chat.awaiting_reply_since = None;
                chat.agent_typing_since = None;
                // A reply acknowledges an assignment made through a push.
                chat.acceptance_deadline = None;
                chat.first_response_at = chat.first_response_at.or(Some(now));
                if chat.attention == Attention::WaitingLong {
                    chat.attention = Attention::Normal;
                }
            }
        }
        change.tx.update_chat(&chat).await?;
        let event = new_event(
            &chat,
            ChatEventKind::Message,
            author_kind,
            Some((&author_id, &author_name)),
            client_id,
            text,
            now,
        );
        let stored = change.append(&chat, event).await?;
        if chat.attention != before {
            self.attention_changed(&mut change, &chat).await?;
        }
        if author_kind == AuthorKind::Customer
            && let Some(assignee) = chat.assignee_id.clone()
            && !change.tx.agent_live(&assignee, now).await?
        {
            self.push_message(&mut change, &chat, &assignee, &author_name, &stored.text)
                .await?;
        }
        self.finish(change).await?;
        Ok(stored)
    }

    /// A customer message for an agent with no app connected live: messages within the
    /// debounce window share one push, which shows the latest.
    async fn push_message(
        &self,
        change: &mut Change,
        chat: &Chat,
        agent_id: &str,
        customer: &str,
        text: &str,
    ) -> Result<()> {
        let pending = change
            .tx
            .pending_push_jobs(agent_id, NotificationKind::NewMessage, Some(&chat.id))
            .await?;
        if pending.is_empty() {
            return change
                .push(
                    agent_id,
                    NotificationKind::NewMessage,
                    Some(chat),
                    customer,
                    text,
                    domain::MESSAGE_DEBOUNCE,
                )
                .await;
        }
        let cursor = change.feed_cursors.get(agent_id).map(i64::to_string);
        let message = PushMessage::new(
            NotificationKind::NewMessage,
            customer,
            text,
            &chat.organization_id,
            Some(&chat.id),
            cursor.as_deref(),
        );
        for job in pending {
            change.tx.update_push_job_message(&job, &message).await?;
        }
        Ok(())
    }

    /// Typing indicators: the customer's draft is the agents' sneak peek; an agent's typing
    /// reaches the customer without any draft.
    pub async fn set_typing(
        &self,
        caller: &Caller,
        chat_id: &str,
        is_typing: bool,
        draft: Option<&str>,
    ) -> Result<()> {
        if let Caller::Customer(customer) = caller {
            self.limit_customer_typing(customer)?;
        }
        let chat = self
            .store
            .chat(organization_of(caller), chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))?;
        let now = domain::now();
        let typing = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                self.store.touch_customer_activity(&chat.id, now).await?;
                Typing {
                    chat_id: chat.id.clone(),
                    author_kind: AuthorKind::Customer,
                    author_id: customer.customer_id.clone(),
                    is_typing,
                    draft: draft
                        .filter(|_| is_typing)
                        .map(|d| domain::truncate_chars(d, domain::MAX_DRAFT_CHARS).to_owned()),
                }
            }
            Caller::Agent(principal) => {
                if chat.assignee_id.as_deref() != Some(principal.agent.id.as_str())
                    && !self
                        .store
                        .participated(&chat.id, &principal.agent.id)
                        .await?
                {
                    return Err(Error::Forbidden(
                        "only the chat's agents may type in it".into(),
                    ));
                }
                if chat.assignee_id.as_deref() == Some(principal.agent.id.as_str()) {
                    self.store
                        .set_agent_typing(&chat.id, is_typing, now)
                        .await?;
                }
                Typing {
                    chat_id: chat.id.clone(),
                    author_kind: AuthorKind::Agent,
                    author_id: principal.agent.id.clone(),
                    is_typing,
                    draft: None,
                }
            }
        };
        if chat.status == ChatStatus::Closed {
            return Ok(());
        }
        if typing.author_kind == AuthorKind::Customer
            && let Some(assignee) = &chat.assignee_id
        {
            self.bus.publish(
                Topic::Agent(assignee.clone()),
                BusEvent::Typing(typing.clone()),
            );
        }
        self.bus
            .publish(Topic::Chat(chat.id.clone()), BusEvent::Typing(typing));
        Ok(())
    }

    /// Closes a chat: its customer, its agents or an admin may.
    pub async fn close_chat(&self, caller: &Caller, chat_id: &str) -> Result<Chat> {
        if let Caller::Customer(customer) = caller {
            self.limit_customer_action(customer)?;
        }
        let mut change = self.begin(organization_of(caller)).await?;
        let mut chat = change.chat(chat_id).await?;
        let who = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                "The customer left the chat".to_owned()
            }
            Caller::Agent(principal) => {
                if !principal.role().is_admin() {
                    self.require_participant(&mut change, principal, &chat)
                        .await?;
                }
                format!("{} closed the chat", principal.agent.name)
            }
        };
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict("the chat is already closed".into()));
        }
        close(&mut change, &mut chat, who).await?;
        change.drain_queue().await?;
        self.finish(change).await?;
        Ok(chat)
    }

    // ---- agents -----------------------------------------------------------------------

    /// Sets whether the agent gets new chats; every app of theirs hears of it.
    pub async fn set_routing_status(
        &self,
        principal: &Principal,
        status: RoutingStatus,
    ) -> Result<Agent> {
        let mut change = self.begin(principal.organization_id()).await?;
        change
            .tx
            .set_routing_status(&principal.agent.id, status)
            .await?;
        let data = FeedData {
            routing_status: Some(status),
            ..FeedData::default()
        };
        change
            .feed(
                &principal.agent.id,
                FeedKind::RoutingStatusChanged,
                None,
                data,
            )
            .await?;
        if status == RoutingStatus::AcceptingChats {
            change.drain_queue().await?;
        }
        let agent = change
            .tx
            .agent(principal.organization_id(), &principal.agent.id)
            .await?;
        change.announce(
            Topic::Agent(agent.id.clone()),
            BusEvent::AgentChanged {
                organization_id: agent.organization_id.clone(),
                agent_id: agent.id.clone(),
            },
        );
        self.finish(change).await?;
        Ok(agent)
    }

    /// Assigns queued chats to agents who have room; run when capacity may have appeared.
    pub async fn drain_queue(&self, organization_id: &str) -> Result<()> {
        let mut change = self.begin(organization_id).await?;
        change.drain_queue().await?;
        self.finish(change).await
    }

    /// An agent takes a queued chat, whatever their limit.
    pub async fn take_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        let mut change = self.begin(principal.organization_id()).await?;
        let mut chat = change.chat(chat_id).await?;
        // A chat of the agent's queue that a teammate took a moment ago is a conflict, not a
        // mystery; other chats are not the agent's to know about.
        let in_their_queue = principal.role().is_admin()
            || domain::in_chat_group(&principal.agent, chat.group_id.as_deref());
        if !in_their_queue {
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status != ChatStatus::Queued {
            return Err(Error::Conflict(
                "the chat is no longer waiting in the queue".into(),
            ));
        }
        let data = FeedData {
            reason: Some("taken from the queue".into()),
            ..FeedData::default()
        };
        change
            .assign(&mut chat, &principal.agent.id, FeedKind::ChatAssigned, data)
            .await?;
        self.finish(change).await?;
        Ok(chat)
    }

    /// Hands a chat to another agent (who may exceed their limit) or group (routed like a new
    /// chat), with a note for the agents; the customer is told first, then sees who joined.
    /// An agent who cannot be reached (or is offline) is refused unless a supervisor or admin
    /// `force`s it: the chat would wait on someone who does not see it.
    pub async fn transfer_chat(
        &self,
        principal: &Principal,
        chat_id: &str,
        target: TransferTarget,
        note: Option<&str>,
        force: bool,
    ) -> Result<Chat> {
        let note = optional_text("note", note, MAX_COMMENT_CHARS)?;
        if force && principal.role() < domain::Role::Supervisor {
            return Err(Error::forbidden("force a transfer"));
        }
        let mut change = self.begin(principal.organization_id()).await?;
        let mut chat = change.chat(chat_id).await?;
        let is_assignee = chat.assignee_id.as_deref() == Some(principal.agent.id.as_str());
        let may_transfer = is_assignee
            || (principal.role() >= domain::Role::Supervisor
                && domain::can_view_chat(&principal.agent, &chat, false));
        if !may_transfer {
            if domain::can_view_chat(
                &principal.agent,
                &chat,
                self.store
                    .participated(&chat.id, &principal.agent.id)
                    .await?,
            ) {
                return Err(Error::Forbidden(
                    "only the chat's agent or a supervisor may transfer it".into(),
                ));
            }
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status != ChatStatus::Active {
            return Err(Error::Conflict(format!(
                "only active chats can be transferred; this one is {}",
                chat.status.as_str().to_lowercase()
            )));
        }
        let from = chat.assignee_id.clone();
        let from_name = principal.agent.name.clone();
        if let Some(previous) = &from {
            change
                .tx
                .add_participant(
                    &chat.id,
                    previous,
                    ParticipantRole::PreviousAssignee,
                    change.now,
                )
                .await?;
        }
        let mut data = FeedData {
            from_agent_id: from.clone(),
            note: note.clone(),
            ..FeedData::default()
        };
        // Checked before anything is written: a refused transfer leaves no trace.
        let destination = match &target {
            TransferTarget::Agent(agent_id) => {
                let agent = change
                    .tx
                    .agent(principal.organization_id(), agent_id)
                    .await
                    .map_err(|err| not_found(err, "agent"))?;
                if !agent.active {
                    return Err(Error::BadUserInput("that agent is deactivated".into()));
                }
                if from.as_deref() == Some(agent.id.as_str()) {
                    return Err(Error::BadUserInput("the chat is already theirs".into()));
                }
                let available = agent.routing_status != RoutingStatus::Offline
                    && change.tx.agent_reachable(&agent.id, change.now).await?;
                if !available && !force {
                    return Err(Error::Conflict(format!(
                        "{} is not available: they have no app open and no phone to reach;                          choose someone else, transfer to a group, or (supervisors and admins)                          force it",
                        agent.name
                    )));
                }
                Destination::Agent(agent)
            }
            TransferTarget::Group(group_id) => Destination::Group(
                self.require_group(principal.organization_id(), group_id)
                    .await?,
            ),
        };
        if let Some(note) = &note {
            let mut event = new_event(
                &chat,
                ChatEventKind::TransferNote,
                AuthorKind::Agent,
                Some((&principal.agent.id, &from_name)),
                None,
                note.clone(),
                change.now,
            );
            event.visibility = Visibility::Agents;
            change.append(&chat, event).await?;
        }
        // The customer hears where they are going before whoever takes them joins.
        let customer_text = match &destination {
            Destination::Agent(agent) => format!(
                "You are being transferred to {}, who can see our whole conversation",
                agent.name
            ),
            Destination::Group(group) => format!(
                "You are being transferred to our {} team, who can see our whole conversation",
                group.name
            ),
        };
        change
            .system(&chat, ChatEventKind::ChatTransferred, customer_text)
            .await?;
        match destination {
            Destination::Agent(agent) => {
                data.to_agent_id = Some(agent.id.clone());
                change
                    .assign(
                        &mut chat,
                        &agent.id,
                        FeedKind::ChatTransferred,
                        data.clone(),
                    )
                    .await?;
            }
            Destination::Group(group) => {
                chat.group_id = Some(group.id.clone());
                data.to_group_id = Some(group.id.clone());
                let excluded: Vec<String> = from.iter().cloned().collect();
                change
                    .route(
                        &mut chat,
                        None,
                        &excluded,
                        FeedKind::ChatTransferred,
                        data.clone(),
                    )
                    .await?;
                data.to_agent_id = chat.assignee_id.clone();
            }
        }
        if let Some(previous) = &from {
            change
                .feed(previous, FeedKind::ChatTransferred, Some(&chat), data)
                .await?;
        }
        change.drain_queue().await?;
        self.finish(change).await?;
        Ok(chat)
    }

    /// A deactivated agent's active chats (pending acceptances included) go on at once, each
    /// routed in its group like a transfer, with a word to the customer. Where nobody in the
    /// group accepts chats, or the queue is full, the chat still waits in the queue: it was
    /// already under way, and staying with someone who is gone is worse.
    pub async fn reroute_chats_of_deactivated(&self, agent: &Agent) -> Result<()> {
        let chats = self
            .store
            .chats(
                &agent.organization_id,
                &[ChatStatus::Active],
                Some(&agent.id),
            )
            .await?;
        if chats.is_empty() {
            return Ok(());
        }
        let mut change = self.begin(&agent.organization_id).await?;
        for listed in chats {
            let mut chat = change.chat(&listed.id).await?;
            if chat.status != ChatStatus::Active
                || chat.assignee_id.as_deref() != Some(agent.id.as_str())
            {
                continue;
            }
            change
                .tx
                .add_participant(
                    &chat.id,
                    &agent.id,
                    ParticipantRole::PreviousAssignee,
                    change.now,
                )
                .await?;
            change
                .system(
                    &chat,
                    ChatEventKind::ChatTransferred,
                    format!(
                        "{} is no longer available; transferring you to a colleague, who can \
                         see our whole conversation",
                        agent.name
                    ),
                )
                .await?;
            chat.acceptance_deadline = None;
            let data = FeedData {
                from_agent_id: Some(agent.id.clone()),
                reason: Some(format!("{} was deactivated", agent.name)),
                ..FeedData::default()
            };
            let excluded = vec![agent.id.clone()];
            match change
                .route(&mut chat, None, &excluded, FeedKind::ChatTransferred, data)
                .await
            {
                Ok(()) => {}
                Err(Error::AgentsOffline(_)) => change.enqueue(&mut chat).await?,
                Err(other) => return Err(other),
            }
        }
        self.finish(change).await
    }

    /// The organization's agents a chat could go to, least loaded first.
    pub async fn agents_for_transfer(
        &self,
        principal: &Principal,
        chat_id: &str,
    ) -> Result<Vec<AgentLoad>> {
        let chat = self.visible_chat(principal, chat_id).await?;
        let mut loads: Vec<AgentLoad> = self
            .store
            .agent_loads(principal.organization_id(), domain::now())
            .await?
            .into_iter()
            .filter(|l| l.agent.active && chat.assignee_id.as_deref() != Some(l.agent.id.as_str()))
            .collect();
        loads.sort_by(|a, b| {
            a.active_chats
                .cmp(&b.active_chats)
                .then_with(|| routable(b).cmp(&routable(a)))
                .then_with(|| a.agent.name.cmp(&b.agent.name))
        });
        Ok(loads)
    }

    /// A supervisor joins a chat of their groups; the customer is told.
    pub async fn join_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        if principal.role() < domain::Role::Supervisor {
            return Err(Error::forbidden("join other agents' chats"));
        }
        let mut change = self.begin(principal.organization_id()).await?;
        let chat = change.chat(chat_id).await?;
        if !domain::can_view_chat(&principal.agent, &chat, false) {
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict("the chat is closed".into()));
        }
        change
            .tx
            .add_participant(
                &chat.id,
                &principal.agent.id,
                ParticipantRole::Supervisor,
                change.now,
            )
            .await?;
        change
            .system(
                &chat,
                ChatEventKind::SupervisorJoined,
                format!("{} joined the chat", principal.agent.name),
            )
            .await?;
        self.finish(change).await?;
        Ok(chat)
    }

    /// Changes the organization's routing settings. Admins only.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        update: SettingsUpdate,
    ) -> Result<Organization> {
        principal.require_admin("change organization settings")?;
        let org = self.store.organization(principal.organization_id()).await?;
        let mut settings = org.settings;
        let seconds = |name: &str,
                       value: Option<i32>,
                       current: chrono::Duration,
                       min: i32,
                       max: i32|
         -> Result<chrono::Duration> {
            match value {
                None => Ok(current),
                Some(v) if (min..=max).contains(&v) => Ok(chrono::Duration::seconds(i64::from(v))),
                Some(_) => Err(Error::BadUserInput(format!(
                    "{name} must be between {min} and {max}"
                ))),
            }
        };
        const DAY: i32 = 86_400;
        settings.auto_transfer_after = seconds(
            "autoTransferSeconds",
            update.auto_transfer_seconds,
            settings.auto_transfer_after,
            1,
            DAY,
        )?;
        settings.waiting_long_after = seconds(
            "waitingLongSeconds",
            update.waiting_long_seconds,
            settings.waiting_long_after,
            1,
            DAY,
        )?;
        settings.customer_idle_after = seconds(
            "customerIdleSeconds",
            update.customer_idle_seconds,
            settings.customer_idle_after,
            1,
            DAY,
        )?;
        settings.auto_close_after = seconds(
            "autoCloseSeconds",
            update.auto_close_seconds,
            settings.auto_close_after,
            1,
            7 * DAY,
        )?;
        settings.presence_grace = seconds(
            "presenceGraceSeconds",
            update.presence_grace_seconds,
            settings.presence_grace,
            1,
            DAY,
        )?;
        settings.acceptance_timeout = seconds(
            "acceptanceTimeoutSeconds",
            update.acceptance_timeout_seconds,
            settings.acceptance_timeout,
            1,
            DAY,
        )?;
        if let Some(limit) = update.default_chat_limit {
            if !(1..=domain::MAX_CHAT_LIMIT).contains(&limit) {
                return Err(Error::BadUserInput(format!(
                    "defaultChatLimit must be between 1 and {}",
                    domain::MAX_CHAT_LIMIT
                )));
            }
            settings.default_chat_limit = limit;
        }
        // At least 10 seconds: a reconnecting widget needs a moment.
        settings.queue_abandon_after = seconds(
            "queueAbandonSeconds",
            update.queue_abandon_seconds,
            settings.queue_abandon_after,
            10,
            DAY,
        )?;
        if let Some(cap) = update.new_chats_per_minute {
            if !(1..=1_000_000).contains(&cap) {
                return Err(Error::BadUserInput(
                    "newChatsPerMinute must be between 1 and 1000000".into(),
                ));
            }
            settings.new_chats_per_minute = cap;
        }
        if let Some(limit) = update.queue_limit {
            if !(0..=10_000).contains(&limit) {
                return Err(Error::BadUserInput(
                    "queueLimit must be between 0 and 10000".into(),
                ));
            }
            settings.queue_limit = limit;
        }
        let org = self
            .store
            .update_organization_settings(&org.id, &settings)
            .await?;
        // A higher limit is room for queued chats.
        self.drain_queue(&org.id).await?;
        Ok(org)
    }

    // ---- reading ----------------------------------------------------------------------

    /// A chat the caller may see.
    pub async fn chat_for(&self, caller: &Caller, chat_id: &str) -> Result<Chat> {
        match caller {
            Caller::Agent(principal) => self.visible_chat(principal, chat_id).await,
            Caller::Customer(customer) => {
                let chat = self
                    .store
                    .chat(&customer.organization_id, chat_id)
                    .await
                    .map_err(|err| not_found(err, "chat"))?;
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                Ok(chat)
            }
        }
    }

    /// A chat the agent may see, or NOT_FOUND.
    pub async fn visible_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        let chat = self
            .store
            .chat(principal.organization_id(), chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))?;
        let participated = self
            .store
            .participated(&chat.id, &principal.agent.id)
            .await?;
        if domain::can_view_chat(&principal.agent, &chat, participated) {
            Ok(chat)
        } else {
            Err(Error::NotFound("no such chat".into()))
        }
    }

    /// The agent's active chats, newest first.
    pub async fn my_chats(&self, principal: &Principal) -> Result<Vec<Chat>> {
        Ok(self
            .store
            .chats(
                principal.organization_id(),
                &[ChatStatus::Active],
                Some(&principal.agent.id),
            )
            .await?)
    }

    /// The queue the agent may take from, oldest first.
    pub async fn queue(&self, principal: &Principal) -> Result<Vec<QueueEntry>> {
        let org = self.store.organization(principal.organization_id()).await?;
        Ok(self
            .queue_entries(&org)
            .await?
            .into_iter()
            .filter(|e| {
                principal.role().is_admin()
                    || domain::in_chat_group(&principal.agent, e.chat.group_id.as_deref())
            })
            .collect())
    }

    /// The customer's place in the queue, when their chat waits.
    pub async fn queue_entry(
        &self,
        organization_id: &str,
        chat_id: &str,
    ) -> Result<Option<QueueEntry>> {
        let org = self.store.organization(organization_id).await?;
        Ok(self
            .queue_entries(&org)
            .await?
            .into_iter()
            .find(|e| e.chat.id == chat_id))
    }

    /// Active and queued chats of the supervisor's groups (every group for admins).
    pub async fn team_chats(&self, principal: &Principal) -> Result<Vec<Chat>> {
        if principal.role() < domain::Role::Supervisor {
            return Err(Error::forbidden("see your team's chats"));
        }
        Ok(self
            .store
            .chats(
                principal.organization_id(),
                &[ChatStatus::Active, ChatStatus::Queued],
                None,
            )
            .await?
            .into_iter()
            .filter(|chat| domain::can_view_chat(&principal.agent, chat, false))
            .collect())
    }

    /// Offline messages of the agent's groups (all for admins), newest first.
    pub async fn offline_messages(&self, principal: &Principal) -> Result<Vec<OfflineMessage>> {
        Ok(self
            .store
            .offline_messages(principal.organization_id())
            .await?
            .into_iter()
            .filter(|m| may_read_offline_message(principal, m))
            .collect())
    }

    /// One offline message the agent may read (as in [`Self::offline_messages`]).
    pub async fn offline_message(&self, principal: &Principal, id: &str) -> Result<OfflineMessage> {
        let message = self
            .store
            .offline_message(principal.organization_id(), id)
            .await
            .map_err(|err| not_found(err, "offline message"))?;
        if !may_read_offline_message(principal, &message) {
            return Err(Error::NotFound("no such offline message".into()));
        }
        Ok(message)
    }

    /// Marks an offline message handled (or not).
    pub async fn set_offline_message_handled(
        &self,
        principal: &Principal,
        id: &str,
        handled: bool,
    ) -> Result<OfflineMessage> {
        let visible = self
            .offline_messages(principal)
            .await?
            .into_iter()
            .any(|m| m.id == id);
        if !visible {
            return Err(Error::NotFound("no such offline message".into()));
        }
        Ok(self
            .store
            .set_offline_message_handled(principal.organization_id(), id, handled)
            .await?)
    }

    // ---- timers -----------------------------------------------------------------------

    /// Applies the timers to one active chat: auto-close, auto-transfer, attention.
    pub async fn apply_timers(&self, chat: &Chat, settings: &ChatSettings) -> Result<()> {
        let now = domain::now();
        if domain::acceptance_missed(chat, now) {
            return self.missed_acceptance(chat).await;
        }
        if domain::auto_close_due(chat, settings, now) {
            let mut change = self.begin(&chat.organization_id).await?;
            let mut current = change.chat(&chat.id).await?;
            if domain::auto_close_due(&current, &change.org.settings, change.now) {
                close(
                    &mut change,
                    &mut current,
                    "The chat was closed after a period of inactivity".into(),
                )
                .await?;
                change.drain_queue().await?;
                self.finish(change).await?;
            }
            return Ok(());
        }
        if domain::auto_transfer_due(chat, settings, now) {
            self.auto_transfer(chat).await?;
        }
        if domain::attention_at(chat, settings, now) != chat.attention {
            let mut change = self.begin(&chat.organization_id).await?;
            let mut current = change.chat(&chat.id).await?;
            let attention = domain::attention_at(&current, &change.org.settings, change.now);
            if attention != current.attention {
                let freed = attention == Attention::CustomerIdle;
                current.attention = attention;
                change.tx.update_chat(&current).await?;
                self.attention_changed(&mut change, &current).await?;
                if freed {
                    change.drain_queue().await?;
                }
                self.finish(change).await?;
            }
        }
        Ok(())
    }

    /// Queued chats whose customer has gone (no live subscription, no activity for the
    /// organization's threshold) leave the queue with a word in their transcript; the queue
    /// is announced again. Each is checked again under its organization's lock.
    pub async fn expire_abandoned_queue(&self) -> Result<()> {
        let abandoned = self.store.abandoned_queued_chats(domain::now()).await?;
        let mut by_organization: Vec<(String, Vec<String>)> = Vec::new();
        for (chat_id, organization_id) in abandoned {
            match by_organization.last_mut() {
                Some((org, chats)) if *org == organization_id => chats.push(chat_id),
                _ => by_organization.push((organization_id, vec![chat_id])),
            }
        }
        for (organization_id, chat_ids) in by_organization {
            let mut change = self.begin(&organization_id).await?;
            for chat_id in chat_ids {
                let mut chat = change.chat(&chat_id).await?;
                if domain::queue_abandoned(&chat, &change.org.settings, change.now) {
                    close(&mut change, &mut chat, "The customer left the queue".into()).await?;
                }
            }
            self.finish(change).await?;
        }
        Ok(())
    }

    /// The customer of a queued chat is connected: their chat stays in the queue. Returns
    /// when to say so again: a few times within the organization's threshold, at most every
    /// 30 seconds (the threshold is read each time, so a lowered one takes effect).
    pub async fn customer_present(&self, organization_id: &str, chat_id: &str) -> Result<Duration> {
        self.store
            .renew_customer_presence(chat_id, domain::now())
            .await?;
        let threshold = self
            .store
            .organization(organization_id)
            .await?
            .settings
            .queue_abandon_after
            .to_std()
            .unwrap_or_default();
        Ok((threshold / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)))
    }

    /// The agent did not acknowledge a chat assigned through a push in time: the chat goes to
    /// the next routable agent (or the queue), the agent stops accepting chats, and their
    /// phone hears that they missed it.
    async fn missed_acceptance(&self, chat: &Chat) -> Result<()> {
        let mut change = self.begin(&chat.organization_id).await?;
        let mut current = change.chat(&chat.id).await?;
        if !domain::acceptance_missed(&current, change.now) {
            return Ok(());
        }
        let Some(agent_id) = current.assignee_id.clone() else {
            return Ok(());
        };
        if change.tx.agent_live(&agent_id, change.now).await? {
            // They came back just now: that is an acknowledgement.
            current.acceptance_deadline = None;
            change.tx.update_chat(&current).await?;
            return self.finish(change).await;
        }
        let agent = change.tx.agent(&change.org.id, &agent_id).await?;
        change
            .tx
            .set_routing_status(&agent.id, RoutingStatus::NotAcceptingChats)
            .await?;
        let data = FeedData {
            routing_status: Some(RoutingStatus::NotAcceptingChats),
            ..FeedData::default()
        };
        change
            .feed(&agent.id, FeedKind::RoutingStatusChanged, None, data)
            .await?;
        change.announce(
            Topic::Agent(agent.id.clone()),
            BusEvent::AgentChanged {
                organization_id: agent.organization_id.clone(),
                agent_id: agent.id.clone(),
            },
        );
        change
            .tx
            .add_participant(
                &current.id,
                &agent.id,
                ParticipantRole::PreviousAssignee,
                change.now,
            )
            .await?;
        let seconds = change.org.settings.acceptance_timeout.num_seconds();
        let mut note = new_event(
            &current,
            ChatEventKind::ChatTransferred,
            AuthorKind::System,
            None,
            None,
            format!(
                "{} did not accept the chat within {seconds} seconds and no longer accepts chats",
                agent.name
            ),
            change.now,
        );
        note.visibility = Visibility::Agents;
        change.append(&current, note).await?;
        current.acceptance_deadline = None;
        let excluded = change.previous_assignees(&current.id).await?;
        let candidates = change
            .tx
            .routing_candidates(&change.org, current.group_id.as_deref(), change.now)
            .await?;
        let data = FeedData {
            from_agent_id: Some(agent.id.clone()),
            reason: Some(format!("{} did not accept the chat in time", agent.name)),
            ..FeedData::default()
        };
        let next = choose_agent(&candidates, None, &excluded).map(|c| c.agent_id.clone());
        let next_name = match &next {
            Some(next) => Some(change.tx.agent(&change.org.id, next).await?.name),
            None => None,
        };
        change
            .system(
                &current,
                ChatEventKind::ChatTransferred,
                not_answering(&agent.name, next_name.as_deref()),
            )
            .await?;
        match next {
            Some(next) => {
                change
                    .assign(&mut current, &next, FeedKind::ChatAssigned, data.clone())
                    .await?
            }
            None => {
                current.assignee_id = None;
                change.enqueue(&mut current).await?;
            }
        }
        change
            .feed(&agent.id, FeedKind::ChatTransferred, Some(&current), data)
            .await?;
        let customer = change.customer_name(&current).await?;
        change
            .push(
                &agent.id,
                NotificationKind::MissedChat,
                Some(&current),
                &format!("Missed chat from {customer}"),
                "You did not accept it in time, so you no longer accept chats. Open the app to accept chats again.",
                std::time::Duration::ZERO,
            )
            .await?;
        self.finish(change).await
    }

    async fn auto_transfer(&self, chat: &Chat) -> Result<()> {
        let mut change = self.begin(&chat.organization_id).await?;
        let mut current = change.chat(&chat.id).await?;
        if !domain::auto_transfer_due(&current, &change.org.settings, change.now) {
            return Ok(());
        }
        let Some(from) = current.assignee_id.clone() else {
            return Ok(());
        };
        let mut excluded = change.previous_assignees(&current.id).await?;
        excluded.push(from.clone());
        let candidates = change
            .tx
            .routing_candidates(&change.org, current.group_id.as_deref(), change.now)
            .await?;
        let Some(to) = choose_agent(&candidates, None, &excluded).map(|c| c.agent_id.clone())
        else {
            // Nobody else has room: the chat stays, red, with its agent.
            return Ok(());
        };
        let from_agent = change.tx.agent(&change.org.id, &from).await?;
        change
            .tx
            .add_participant(
                &current.id,
                &from,
                ParticipantRole::PreviousAssignee,
                change.now,
            )
            .await?;
        let minutes = change.org.settings.auto_transfer_after.num_seconds();
        let data = FeedData {
            from_agent_id: Some(from.clone()),
            to_agent_id: Some(to.clone()),
            reason: Some(format!(
                "{} did not reply within {minutes} seconds",
                from_agent.name
            )),
            ..FeedData::default()
        };
        let to_agent = change.tx.agent(&change.org.id, &to).await?;
        change
            .system(
                &current,
                ChatEventKind::ChatTransferred,
                not_answering(&from_agent.name, Some(&to_agent.name)),
            )
            .await?;
        change
            .assign(&mut current, &to, FeedKind::ChatTransferred, data.clone())
            .await?;
        change
            .feed(&from, FeedKind::ChatTransferred, Some(&current), data)
            .await?;
        change.drain_queue().await?;
        self.finish(change).await
    }

    async fn attention_changed(&self, change: &mut Change, chat: &Chat) -> Result<()> {
        let data = FeedData {
            attention: Some(chat.attention),
            ..FeedData::default()
        };
        for agent in change.watchers(chat).await? {
            change
                .feed(&agent, FeedKind::AttentionChanged, Some(chat), data.clone())
                .await?;
        }
        Ok(())
    }

    // ---- checks -----------------------------------------------------------------------

    async fn require_participant(
        &self,
        change: &mut Change,
        principal: &Principal,
        chat: &Chat,
    ) -> Result<()> {
        if chat.assignee_id.as_deref() == Some(principal.agent.id.as_str()) {
            return Ok(());
        }
        let joined = change
            .tx
            .participants(&chat.id)
            .await?
            .into_iter()
            .any(|(agent, role)| {
                agent == principal.agent.id && role == ParticipantRole::Supervisor
            });
        if joined {
            return Ok(());
        }
        if domain::can_view_chat(&principal.agent, chat, false) {
            let hint = if chat.status == ChatStatus::Queued {
                "take it from the queue first"
            } else {
                "join it first"
            };
            return Err(Error::Forbidden(format!("this chat is not yours: {hint}")));
        }
        Err(Error::NotFound("no such chat".into()))
    }

    async fn require_group(&self, organization_id: &str, group_id: &str) -> Result<domain::Group> {
        self.store
            .groups(organization_id)
            .await?
            .into_iter()
            .find(|g| g.id == group_id)
            .ok_or_else(|| Error::BadUserInput(format!("no group with id {group_id:?}")))
    }

    fn limit_customer(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(
            &self.customer_messages,
            customer,
            "you are sending messages too fast; wait a moment",
        )
    }

    fn limit_customer_typing(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(
            &self.customer_typing,
            customer,
            "typing notices come too fast; send at most one a second",
        )
    }

    fn limit_customer_action(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(
            &self.customer_actions,
            customer,
            "too many requests from this visitor; wait a moment",
        )
    }
}

/// Draws one request of `customer` from `budget`, or RATE_LIMITED with the wait.
fn limit(budget: &FailureLimiter, customer: &CustomerPrincipal, message: &str) -> Result<()> {
    budget
        .acquire(&customer.customer_id)
        .map_err(|wait| Error::RateLimited {
            message: message.into(),
            retry_after_secs: whole_seconds(wait),
        })
}

/// A wait in whole seconds, rounded up (a client that waits this long is let through), at
/// least one.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// Tells every queued customer their place and wait, and the agents the queue's shape.
async fn announce_queue(
    store: &dyn Database,
    bus: &dyn EventBus,
    org: &Organization,
    joined: Vec<String>,
) -> Result<()> {
    let entries = queue_entries(store, org).await?;
    for entry in &entries {
        bus.publish(
            Topic::Chat(entry.chat.id.clone()),
            BusEvent::QueuePosition {
                chat_id: entry.chat.id.clone(),
                position: entry.position,
                estimated_wait_seconds: entry.estimated_wait_seconds,
            },
        );
    }
    let queued = entries
        .iter()
        .map(|e| QueuedChat {
            chat_id: e.chat.id.clone(),
            group_id: e.chat.group_id.clone(),
        })
        .collect();
    bus.publish(
        Topic::Organization(org.id.clone()),
        BusEvent::QueueChanged { queued, joined },
    );
    Ok(())
}

/// The queue with places (per group: chats of other groups wait for other agents) and
/// estimated waits.
async fn queue_entries(store: &dyn Database, org: &Organization) -> Result<Vec<QueueEntry>> {
    let mut queued = store.chats(&org.id, &[ChatStatus::Queued], None).await?;
    queued.sort_by(|a, b| a.queued_at.cmp(&b.queued_at).then_with(|| a.id.cmp(&b.id)));
    let loads = store.agent_loads(&org.id, domain::now()).await?;
    let handle = store
        .average_handle_seconds(&org.id)
        .await?
        .map_or(DEFAULT_HANDLE_SECONDS, |seconds| {
            seconds.max(MIN_HANDLE_SECONDS)
        });
    let mut positions: HashMap<Option<String>, i64> = HashMap::new();
    Ok(queued
        .into_iter()
        .map(|chat| {
            let position = positions.entry(chat.group_id.clone()).or_default();
            *position += 1;
            let slots = accepting_slots(&loads, org, chat.group_id.as_deref());
            QueueEntry {
                position: *position,
                estimated_wait_seconds: domain::estimate_wait_seconds(*position, slots, handle),
                chat,
            }
        })
        .collect())
}

async fn close(change: &mut Change, chat: &mut Chat, text: String) -> Result<()> {
    let was_queued = chat.status == ChatStatus::Queued;
    chat.status = ChatStatus::Closed;
    chat.closed_at = Some(change.now);
    chat.queued_at = None;
    chat.awaiting_reply_since = None;
    chat.attention = Attention::Normal;
    change.tx.update_chat(chat).await?;
    change.system(chat, ChatEventKind::ChatClosed, text).await?;
    for agent in change.watchers(chat).await? {
        change
            .feed(
                &agent,
                FeedKind::ChatClosed,
                Some(chat),
                FeedData::default(),
            )
            .await?;
    }
    if was_queued {
        change.queue_changed = true;
    }
    Ok(())
}

/// What the customer is told when their agent does not answer and the chat moves on.
fn not_answering(agent: &str, next: Option<&str>) -> String {
    match next {
        Some(next) => format!(
            "{agent} is not answering; transferring you to {next}, who can see our whole \
             conversation"
        ),
        None => format!("{agent} is not answering; we are finding you someone else"),
    }
}

fn organization_of(caller: &Caller) -> &str {
    match caller {
        Caller::Agent(principal) => principal.organization_id(),
        Caller::Customer(customer) => &customer.organization_id,
    }
}

fn routable(load: &AgentLoad) -> bool {
    load.agent.active
        && load.reachable
        && load.agent.routing_status == RoutingStatus::AcceptingChats
}

fn chat_limit(load: &AgentLoad, org: &Organization) -> i64 {
    i64::from(
        load.agent
            .chat_limit
            .unwrap_or(org.settings.default_chat_limit),
    )
}

/// Chat slots of the agents who accept chats of `group_id` now.
fn accepting_slots(loads: &[AgentLoad], org: &Organization, group_id: Option<&str>) -> i64 {
    loads
        .iter()
        .filter(|l| routable(l) && domain::in_chat_group(&l.agent, group_id))
        .map(|l| chat_limit(l, org))
        .sum()
}

/// A message's text: trimmed, present, not too long.
fn message_text(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::BadUserInput("the message must not be empty".into()));
    }
    if text.chars().count() > domain::MAX_MESSAGE_CHARS {
        return Err(Error::BadUserInput(format!(
            "the message must be at most {} characters",
            domain::MAX_MESSAGE_CHARS
        )));
    }
    Ok(text.to_owned())
}

fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(Error::BadUserInput(format!(
            "{field} must be at most {max} characters"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(domain::validate_name(field, v, 100)?)),
    }
}

/// Who may read an offline message: admins and owners, and the agents of its group (every
/// agent, for a message to no group). `offline_message_recipients` selects the same agents.
fn may_read_offline_message(principal: &Principal, message: &OfflineMessage) -> bool {
    principal.role().is_admin()
        || domain::in_chat_group(&principal.agent, message.group_id.as_deref())
}

/// How visitor secrets are stored: SHA-256, hex. They are random, so no salt or slow hash is
/// needed, and a stolen database does not yield secrets that open customers' chats.
fn visitor_secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn not_found(err: crate::store::DbError, what: &str) -> Error {
    match err {
        crate::store::DbError::NotFound => Error::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}
