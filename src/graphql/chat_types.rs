//! GraphQL types of chats, customers, transcripts and the live events.

use async_graphql::{Context, Enum, ID, Interface, Object, SimpleObject};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use crate::domain;
use crate::graphql::types::{Agent, Group, RoutingStatus};
use crate::graphql::{ApiResult, ContextExt, limits};
use crate::services::Caller;
use crate::services::streams::{AgentStreamEvent, ChatStreamEvent};

/// Where a chat is in its life.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::ChatStatus")]
pub enum ChatStatus {
    /// Waiting for an agent with room.
    Queued,
    /// An agent has it.
    Active,
    /// Over.
    Closed,
}

/// Where a chat came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Channel")]
pub enum Channel {
    Widget,
    Messenger,
    Api,
}

/// The colour of a chat's circle.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Attention")]
pub enum Attention {
    Normal,
    /// Red: the customer's last message has waited too long for an answer.
    WaitingLong,
    /// Grey: the customer has been silent for a while; the chat does not count toward the
    /// agent's limit.
    CustomerIdle,
}

/// Who wrote a message.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::AuthorKind")]
pub enum AuthorKind {
    Agent,
    Customer,
    System,
}

/// A customer's verdict.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Rating")]
pub enum Rating {
    Good,
    Bad,
}

/// What a transcript entry is: a message written by someone, or a system event with a
/// sentence to show.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::ChatEventKind")]
pub enum MessageKind {
    Message,
    ChatQueued,
    AgentAssigned,
    ChatTransferred,
    /// The note a transferring agent left for the next one; agents only.
    TransferNote,
    SupervisorJoined,
    ChatClosed,
    ChatRated,
}

/// Who may see a transcript entry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Visibility")]
pub enum Visibility {
    Public,
    Agents,
}

/// A conversation. Loaded on first use, so `chat { id }` in an event costs nothing.
pub struct Chat {
    id: String,
    organization_id: String,
    loaded: OnceCell<domain::Chat>,
}

impl Chat {
    /// A chat already read.
    pub fn loaded(chat: domain::Chat) -> Self {
        Chat {
            id: chat.id.clone(),
            organization_id: chat.organization_id.clone(),
            loaded: OnceCell::new_with(Some(chat)),
        }
    }

    /// A chat read when a field other than `id` is asked for.
    pub fn lazy(organization_id: &str, id: &str) -> Self {
        Chat {
            id: id.to_owned(),
            organization_id: organization_id.to_owned(),
            loaded: OnceCell::new(),
        }
    }

    async fn get(&self, ctx: &Context<'_>) -> ApiResult<&domain::Chat> {
        Ok(self
            .loaded
            .get_or_try_init(|| async {
                ctx.services()
                    .store
                    .chat(&self.organization_id, &self.id)
                    .await
            })
            .await?)
    }
}

#[Object]
impl Chat {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    async fn status(&self, ctx: &Context<'_>) -> ApiResult<ChatStatus> {
        Ok(self.get(ctx).await?.status.into())
    }

    async fn channel(&self, ctx: &Context<'_>) -> ApiResult<Channel> {
        Ok(self.get(ctx).await?.channel.into())
    }

    /// NORMAL, or red (WAITING_LONG) or grey (CUSTOMER_IDLE).
    async fn attention(&self, ctx: &Context<'_>) -> ApiResult<Attention> {
        Ok(self.get(ctx).await?.attention.into())
    }

    /// Who the chat is with: email, location, current page, page history, visits.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Customer> {
        let chat = self.get(ctx).await?;
        Ok(Customer(
            ctx.services()
                .store
                .customer(&chat.organization_id, &chat.customer_id)
                .await?,
        ))
    }

    /// The agent who has the chat. Agents only; customers read `assigneeName`.
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        ctx.principal()?;
        let chat = self.get(ctx).await?;
        match &chat.assignee_id {
            Some(id) => Ok(Some(Agent(
                ctx.services()
                    .store
                    .agent(&chat.organization_id, id)
                    .await?,
            ))),
            None => Ok(None),
        }
    }

    /// The name of the agent who has the chat, as the customer sees it.
    async fn assignee_name(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let chat = self.get(ctx).await?;
        match &chat.assignee_id {
            Some(id) => Ok(Some(
                ctx.services()
                    .store
                    .agent(&chat.organization_id, id)
                    .await?
                    .name,
            )),
            None => Ok(None),
        }
    }

    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Option<Group>> {
        let chat = self.get(ctx).await?;
        let Some(group_id) = &chat.group_id else {
            return Ok(None);
        };
        let groups = ctx.services().store.groups(&chat.organization_id).await?;
        Ok(groups.into_iter().find(|g| &g.id == group_id).map(Group))
    }

    async fn created_at(&self, ctx: &Context<'_>) -> ApiResult<DateTime<Utc>> {
        Ok(self.get(ctx).await?.created_at)
    }

    async fn queued_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.queued_at)
    }

    async fn assigned_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.assigned_at)
    }

    async fn first_response_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.first_response_at)
    }

    async fn closed_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.closed_at)
    }

    async fn rating(&self, ctx: &Context<'_>) -> ApiResult<Option<Rating>> {
        Ok(self.get(ctx).await?.rating.map(Into::into))
    }

    async fn rating_comment(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(self.get(ctx).await?.rating_comment.clone())
    }

    /// Seconds the customer has waited in the queue, while queued.
    async fn wait_seconds(&self, ctx: &Context<'_>) -> ApiResult<Option<i64>> {
        let chat = self.get(ctx).await?;
        Ok(chat
            .queued_at
            .filter(|_| chat.status == domain::ChatStatus::Queued)
            .map(|at| (Utc::now() - at).num_seconds().max(0)))
    }

    /// The transcript, oldest first, `first` entries after the cursor `after` (a message's
    /// `cursor`). Customers see what is meant for them; agents also see transfer notes.
    #[graphql(
        complexity = "limits::paged_list_cost(first, limits::MAX_EVENTS_PAGE, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 50)] first: i32,
    ) -> ApiResult<ChatEventPage> {
        limits::page_size("first", first, limits::MAX_EVENTS_PAGE)?;
        let after = crate::services::streams::parse_cursor(after.as_deref())?.unwrap_or(0);
        let for_agents = matches!(ctx.caller()?, Caller::Agent(_));
        let mut events = ctx
            .services()
            .store
            .chat_events(&self.id, after, i64::from(first) + 1, for_agents)
            .await?;
        let has_more = events.len() > first as usize;
        events.truncate(first as usize);
        Ok(ChatEventPage {
            start_cursor: events.first().map(|e| e.seq.to_string()),
            end_cursor: events.last().map(|e| e.seq.to_string()),
            items: events.into_iter().map(Message).collect(),
            has_more,
        })
    }

    /// The end of the transcript, oldest first: the `last` entries before the cursor `before`
    /// (or the latest ones). What a chat screen shows first; `hasMore` says whether older
    /// entries exist, and `startCursor` is the `before` for them.
    #[graphql(
        complexity = "limits::paged_list_cost(last, limits::MAX_EVENTS_PAGE, child_complexity)"
    )]
    async fn latest_events(
        &self,
        ctx: &Context<'_>,
        before: Option<String>,
        #[graphql(default = 50)] last: i32,
    ) -> ApiResult<ChatEventPage> {
        limits::page_size("last", last, limits::MAX_EVENTS_PAGE)?;
        let before = crate::services::streams::parse_cursor(before.as_deref())?.unwrap_or(i64::MAX);
        let mut events = self
            .events_before(ctx, before, i64::from(last) + 1, false)
            .await?;
        let has_more = events.len() > last as usize;
        events.truncate(last as usize);
        events.reverse();
        Ok(ChatEventPage {
            start_cursor: events.first().map(|e| e.seq.to_string()),
            end_cursor: events.last().map(|e| e.seq.to_string()),
            items: events.into_iter().map(Message).collect(),
            has_more,
        })
    }

    /// The latest message someone wrote (not a system entry): the preview in a list of chats.
    async fn last_message(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        let events = self.events_before(ctx, i64::MAX, 1, true).await?;
        Ok(events.into_iter().next().map(Message))
    }
}

impl Chat {
    /// Entries before `before`, newest first, as the caller may see them.
    async fn events_before(
        &self,
        ctx: &Context<'_>,
        before: i64,
        limit: i64,
        messages_only: bool,
    ) -> ApiResult<Vec<domain::ChatEvent>> {
        let for_agents = matches!(ctx.caller()?, Caller::Agent(_));
        Ok(ctx
            .services()
            .store
            .chat_events_before(&self.id, before, limit, for_agents, messages_only)
            .await?)
    }
}

/// A page of a transcript.
#[derive(SimpleObject)]
pub struct ChatEventPage {
    pub items: Vec<Message>,
    /// The first item's cursor: pass it as `before` to `latestEvents` for older entries.
    pub start_cursor: Option<String>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_more: bool,
}

/// A transcript entry: a message or a system event.
pub struct Message(pub domain::ChatEvent);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Where this entry sits in the chat's stream; pass it as `since` or `after`.
    async fn cursor(&self) -> String {
        self.0.seq.to_string()
    }

    async fn chat_id(&self) -> ID {
        ID(self.0.chat_id.clone())
    }

    async fn kind(&self) -> MessageKind {
        self.0.kind.into()
    }

    async fn text(&self) -> &str {
        &self.0.text
    }

    /// The id the sender chose to make resending harmless.
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    async fn author(&self) -> AuthorKind {
        self.0.author_kind.into()
    }

    async fn author_id(&self) -> Option<ID> {
        self.0.author_id.clone().map(ID)
    }

    async fn author_name(&self) -> Option<&str> {
        self.0.author_name.as_deref()
    }

    async fn visibility(&self) -> Visibility {
        self.0.visibility.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A website visitor or Messenger user.
pub struct Customer(pub domain::Customer);

/// A page a customer viewed.
#[derive(SimpleObject)]
pub struct Page {
    pub url: String,
    pub title: Option<String>,
    pub viewed_at: DateTime<Utc>,
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn visitor_id(&self) -> &str {
        &self.0.visitor_id
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Where they are, when the widget says so (Switchboard ships no GeoIP database).
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }

    /// The page they are on now.
    async fn current_page(&self) -> Option<Page> {
        self.0.current_page_url.clone().map(|url| Page {
            url,
            title: self.0.current_page_title.clone(),
            viewed_at: self.0.last_seen_at,
        })
    }

    /// The pages they viewed, newest first.
    #[graphql(
        complexity = "limits::paged_list_cost(first, limits::MAX_PAGE_HISTORY, child_complexity)"
    )]
    async fn page_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> ApiResult<Vec<Page>> {
        let first = limits::page_size("first", first, limits::MAX_PAGE_HISTORY)? as i64;
        Ok(ctx
            .services()
            .store
            .page_views(&self.0.id, first)
            .await?
            .into_iter()
            .map(|view| Page {
                url: view.url,
                title: view.title,
                viewed_at: view.viewed_at,
            })
            .collect())
    }

    async fn referrer(&self) -> Option<&str> {
        self.0.referrer.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }

    /// How many visitor sessions they started.
    async fn visits(&self) -> i32 {
        self.0.visits
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.0.last_seen_at
    }
}

/// A customer's session, from the widget.
#[derive(SimpleObject)]
pub struct VisitorSession {
    /// Send it as `Authorization: Bearer <token>` or in connection_init.
    pub token: String,
    /// Keep it in the browser: the next visit with it (and `visitorSecret`) is the same
    /// customer.
    pub visitor_id: String,
    /// Keep it in the browser with `visitorId` and send both on the next visit. Returned only
    /// by the session that issued it (a new customer, or one from before visitor secrets);
    /// null when the session presented it. Agents never see it.
    pub visitor_secret: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub customer: Customer,
}

/// Whether to offer a chat or the offline form.
#[derive(SimpleObject)]
pub struct Availability {
    /// A chat started now would be accepted: an agent of the group accepts chats and has
    /// room, or the queue has. False: offer the offline form.
    pub online: bool,
    /// Agents accept chats, but none can start now: every agent is busy and the queue is at
    /// its limit, or too many chats started in the last minute. (online is false then.)
    pub queue_full: bool,
    /// Customers waiting for the group asked (every one waiting, when no group is asked).
    pub queue_length: i64,
    /// About how long a new chat would wait for an agent; 0 when someone has room.
    pub estimated_wait_seconds: i64,
}

/// A waiting customer.
#[derive(SimpleObject)]
pub struct QueueEntry {
    pub chat: Chat,
    /// 1 is next.
    pub position: i64,
    /// How long they have waited.
    pub wait_seconds: i64,
    pub estimated_wait_seconds: i64,
}

/// An agent a chat could be transferred to.
#[derive(SimpleObject)]
pub struct TransferCandidate {
    pub agent: Agent,
    pub active_chats: i64,
    pub chat_limit: i64,
    /// Accepting chats and reachable now.
    pub routable: bool,
    /// A transfer would reach them now: an app open (or just closed), or a phone for pushes,
    /// and not offline. Others can only be forced.
    pub reachable: bool,
}

/// A note a customer left while nobody was available.
pub struct OfflineMessage(pub domain::OfflineMessage);

#[Object]
impl OfflineMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn text(&self) -> &str {
        &self.0.text
    }

    async fn group_id(&self) -> Option<ID> {
        self.0.group_id.clone().map(ID)
    }

    /// Whether an agent has dealt with it.
    async fn handled(&self) -> bool {
        self.0.handled
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// An organization's routing settings; times in seconds.
#[derive(SimpleObject)]
pub struct OrganizationSettings {
    pub default_chat_limit: i32,
    pub auto_transfer_seconds: i64,
    pub waiting_long_seconds: i64,
    pub customer_idle_seconds: i64,
    pub auto_close_seconds: i64,
    pub presence_grace_seconds: i64,
    pub queue_limit: i32,
    /// How soon a chat assigned through a push must be acknowledged.
    pub acceptance_timeout_seconds: i64,
    /// A queued chat whose customer has had no live connection and done nothing for this long
    /// leaves the queue (default 180).
    pub queue_abandon_seconds: i64,
    /// Most chats that may start within a minute; more are refused with RATE_LIMITED
    /// (default 60).
    pub new_chats_per_minute: i32,
}

impl From<domain::ChatSettings> for OrganizationSettings {
    fn from(s: domain::ChatSettings) -> Self {
        OrganizationSettings {
            default_chat_limit: s.default_chat_limit,
            auto_transfer_seconds: s.auto_transfer_after.num_seconds(),
            waiting_long_seconds: s.waiting_long_after.num_seconds(),
            customer_idle_seconds: s.customer_idle_after.num_seconds(),
            auto_close_seconds: s.auto_close_after.num_seconds(),
            presence_grace_seconds: s.presence_grace.num_seconds(),
            queue_limit: s.queue_limit,
            acceptance_timeout_seconds: s.acceptance_timeout.num_seconds(),
            queue_abandon_seconds: s.queue_abandon_after.num_seconds(),
            new_chats_per_minute: s.new_chats_per_minute,
        }
    }
}

// ---- live events ---------------------------------------------------------------------------

/// A chat was given to you.
#[derive(SimpleObject)]
pub struct ChatAssigned {
    pub cursor: String,
    pub chat: Chat,
    /// Why: "new chat", "returning customer", "queue", "taken from the queue".
    pub reason: Option<String>,
}

/// A chat moved to another agent or group: to you, or away from you.
pub struct ChatTransferred {
    cursor: String,
    chat: Chat,
    data: domain::FeedData,
}

#[Object]
impl ChatTransferred {
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    async fn chat(&self) -> &Chat {
        &self.chat
    }

    async fn from_agent(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        agent_by_id(ctx, self.data.from_agent_id.as_deref()).await
    }

    async fn to_agent(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        agent_by_id(ctx, self.data.to_agent_id.as_deref()).await
    }

    async fn to_group_id(&self) -> Option<ID> {
        self.data.to_group_id.clone().map(ID)
    }

    /// The transferring agent's note for the next one.
    async fn note(&self) -> Option<&str> {
        self.data.note.as_deref()
    }

    /// Set for automatic transfers.
    async fn reason(&self) -> Option<&str> {
        self.data.reason.as_deref()
    }
}

async fn agent_by_id(ctx: &Context<'_>, id: Option<&str>) -> ApiResult<Option<Agent>> {
    let Some(id) = id else { return Ok(None) };
    let principal = ctx.principal()?;
    Ok(Some(Agent(
        ctx.services()
            .store
            .agent(principal.organization_id(), id)
            .await?,
    )))
}

/// A transcript entry was added: a message or a system event.
#[derive(SimpleObject)]
pub struct MessageAdded {
    pub cursor: String,
    pub chat: Chat,
    pub message: Message,
}

/// Someone started or stopped typing. For agents, a customer's `draft` is the sneak peek;
/// customers never see an agent's draft.
#[derive(SimpleObject)]
pub struct TypingChanged {
    pub cursor: String,
    pub chat: Chat,
    pub author: AuthorKind,
    pub is_typing: bool,
    pub draft: Option<String>,
}

/// A new customer joined the queue you serve.
#[derive(SimpleObject)]
pub struct ChatQueued {
    pub cursor: String,
    pub chat: Chat,
    pub queue_length: i64,
}

/// The queue you serve changed length.
#[derive(SimpleObject)]
pub struct QueueChanged {
    pub cursor: String,
    pub queue_length: i64,
}

/// A chat ended. `message` is the closing sentence, in customers' streams.
#[derive(SimpleObject)]
pub struct ChatClosed {
    pub cursor: String,
    pub chat: Chat,
    pub message: Option<Message>,
}

/// A chat turned red, grey or back to normal.
#[derive(SimpleObject)]
pub struct AttentionChanged {
    pub cursor: String,
    pub chat: Chat,
    pub attention: Attention,
}

/// Your routing status changed, in this app or another.
#[derive(SimpleObject)]
pub struct RoutingStatusChanged {
    pub cursor: String,
    pub routing_status: RoutingStatus,
}

/// A customer left an offline message you may read (one `offlineMessages` lists).
pub struct OfflineMessageReceived {
    cursor: String,
    offline_message_id: String,
}

#[Object]
impl OfflineMessageReceived {
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The message as it is now: a replayed event shows whether it has been handled since.
    async fn offline_message(&self, ctx: &Context<'_>) -> ApiResult<OfflineMessage> {
        let principal = ctx.principal()?;
        Ok(OfflineMessage(
            ctx.services()
                .chats
                .offline_message(principal, &self.offline_message_id)
                .await?,
        ))
    }
}

/// The customer's place in the queue changed.
#[derive(SimpleObject)]
pub struct QueuePositionChanged {
    pub cursor: String,
    pub chat: Chat,
    /// 1 is next.
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// What an agent's apps hear. Pass the last `cursor` as `since` to resume.
#[derive(Interface)]
#[graphql(field(name = "cursor", ty = "String"))]
pub enum AgentEvent {
    ChatAssigned(ChatAssigned),
    ChatTransferred(ChatTransferred),
    MessageAdded(MessageAdded),
    TypingChanged(TypingChanged),
    ChatQueued(ChatQueued),
    QueueChanged(QueueChanged),
    ChatClosed(ChatClosed),
    AttentionChanged(AttentionChanged),
    RoutingStatusChanged(RoutingStatusChanged),
    OfflineMessageReceived(OfflineMessageReceived),
}

/// What a chat's participants hear. Pass the last `cursor` as `since` to resume.
#[derive(Interface)]
#[graphql(field(name = "cursor", ty = "String"))]
pub enum ChatEvent {
    MessageAdded(MessageAdded),
    TypingChanged(TypingChanged),
    QueuePositionChanged(QueuePositionChanged),
    ChatClosed(ChatClosed),
}

impl AgentEvent {
    /// The GraphQL form of a stream event; `None` for entries with nothing to show.
    pub fn from_stream(organization_id: &str, event: AgentStreamEvent) -> Option<AgentEvent> {
        let chat = |id: Option<&String>| id.map(|id| Chat::lazy(organization_id, id));
        Some(match event {
            AgentStreamEvent::Feed(entry) => {
                let entry = *entry;
                let cursor = entry.seq.to_string();
                match entry.kind {
                    domain::FeedKind::ChatAssigned => AgentEvent::ChatAssigned(ChatAssigned {
                        cursor,
                        chat: chat(entry.chat_id.as_ref())?,
                        reason: entry.data.reason,
                    }),
                    domain::FeedKind::ChatTransferred => {
                        AgentEvent::ChatTransferred(ChatTransferred {
                            cursor,
                            chat: chat(entry.chat_id.as_ref())?,
                            data: entry.data,
                        })
                    }
                    domain::FeedKind::MessageAdded => AgentEvent::MessageAdded(MessageAdded {
                        cursor,
                        chat: chat(entry.chat_id.as_ref())?,
                        message: Message(entry.event?),
                    }),
                    domain::FeedKind::ChatClosed => AgentEvent::ChatClosed(ChatClosed {
                        cursor,
                        chat: chat(entry.chat_id.as_ref())?,
                        message: None,
                    }),
                    domain::FeedKind::AttentionChanged => {
                        AgentEvent::AttentionChanged(AttentionChanged {
                            cursor,
                            chat: chat(entry.chat_id.as_ref())?,
                            attention: entry.data.attention?.into(),
                        })
                    }
                    domain::FeedKind::RoutingStatusChanged => {
                        AgentEvent::RoutingStatusChanged(RoutingStatusChanged {
                            cursor,
                            routing_status: entry.data.routing_status?.into(),
                        })
                    }
                    domain::FeedKind::OfflineMessageReceived => {
                        AgentEvent::OfflineMessageReceived(OfflineMessageReceived {
                            cursor,
                            offline_message_id: entry.data.offline_message_id?,
                        })
                    }
                }
            }
            AgentStreamEvent::Typing { cursor, typing } => {
                AgentEvent::TypingChanged(TypingChanged {
                    cursor: cursor.to_string(),
                    chat: Chat::lazy(organization_id, &typing.chat_id),
                    author: typing.author_kind.into(),
                    is_typing: typing.is_typing,
                    draft: typing.draft,
                })
            }
            AgentStreamEvent::QueueChanged {
                cursor,
                queue_length,
                joined: Some(chat_id),
            } => AgentEvent::ChatQueued(ChatQueued {
                cursor: cursor.to_string(),
                chat: Chat::lazy(organization_id, &chat_id),
                queue_length,
            }),
            AgentStreamEvent::QueueChanged {
                cursor,
                queue_length,
                joined: None,
            } => AgentEvent::QueueChanged(QueueChanged {
                cursor: cursor.to_string(),
                queue_length,
            }),
        })
    }
}

impl ChatEvent {
    /// The GraphQL form of a chat stream event.
    pub fn from_stream(organization_id: &str, event: ChatStreamEvent) -> ChatEvent {
        match event {
            ChatStreamEvent::Transcript(entry) => {
                let entry = *entry;
                let cursor = entry.seq.to_string();
                let chat = Chat::lazy(organization_id, &entry.chat_id);
                if entry.kind == domain::ChatEventKind::ChatClosed {
                    ChatEvent::ChatClosed(ChatClosed {
                        cursor,
                        chat,
                        message: Some(Message(entry)),
                    })
                } else {
                    ChatEvent::MessageAdded(MessageAdded {
                        cursor,
                        chat,
                        message: Message(entry),
                    })
                }
            }
            ChatStreamEvent::Typing { cursor, typing } => ChatEvent::TypingChanged(TypingChanged {
                cursor: cursor.to_string(),
                chat: Chat::lazy(organization_id, &typing.chat_id),
                author: typing.author_kind.into(),
                is_typing: typing.is_typing,
                draft: typing.draft,
            }),
            ChatStreamEvent::QueuePosition {
                cursor,
                chat_id,
                position,
                estimated_wait_seconds,
            } => ChatEvent::QueuePositionChanged(QueuePositionChanged {
                cursor: cursor.to_string(),
                chat: Chat::lazy(organization_id, &chat_id),
                position,
                estimated_wait_seconds,
            }),
        }
    }
}

// ---- inputs --------------------------------------------------------------------------------

/// What the widget knows when a visitor opens it.
#[derive(async_graphql::InputObject)]
pub struct StartVisitorSessionInput {
    /// The organization's public widget key.
    pub widget_key: String,
    /// The id the widget keeps for this browser (letters, digits, '-', '_'); omitted on a
    /// first visit, and returned in the session.
    pub visitor_id: Option<String>,
    /// The secret the session that issued `visitorId` returned. Without it (or with a wrong
    /// one) a known `visitorId` starts a new customer under a new `visitorId`.
    pub visitor_secret: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Free text such as "Berlin, Germany".
    pub location: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(async_graphql::InputObject)]
pub struct StartChatInput {
    /// The customer's first message (1 to 4000 characters).
    pub message: String,
    /// The department to talk to; omitted: anyone.
    pub group_id: Option<ID>,
}

#[derive(async_graphql::InputObject)]
pub struct LeaveOfflineMessageInput {
    pub name: String,
    pub email: String,
    pub text: String,
    pub group_id: Option<ID>,
}

#[derive(async_graphql::InputObject)]
pub struct UpdateVisitorPageInput {
    pub url: String,
    pub title: Option<String>,
}

#[derive(async_graphql::InputObject)]
pub struct RateChatInput {
    pub chat_id: ID,
    pub rating: Rating,
    pub comment: Option<String>,
}

#[derive(async_graphql::InputObject)]
pub struct SendMessageInput {
    pub chat_id: ID,
    /// 1 to 4000 characters.
    pub text: String,
    /// Any id unique to the sender (a UUID); sending again with it returns the first message
    /// instead of a duplicate.
    pub client_id: Option<String>,
}

#[derive(async_graphql::InputObject)]
pub struct SetTypingInput {
    pub chat_id: ID,
    pub is_typing: bool,
    /// What the customer has typed so far (the agents' sneak peek). Ignored for agents.
    pub draft: Option<String>,
}

/// Exactly one of `toAgentId` and `toGroupId`.
#[derive(async_graphql::InputObject)]
pub struct TransferChatInput {
    pub chat_id: ID,
    pub to_agent_id: Option<ID>,
    pub to_group_id: Option<ID>,
    /// For the next agent; the customer does not see it.
    pub note: Option<String>,
    /// Transfer even to an agent who cannot be reached now (no app open, no phone) or is
    /// offline; supervisors and admins only. Without it (null or false) such a transfer is a
    /// CONFLICT.
    pub force: Option<bool>,
}

/// Omitted fields stay as they are; times in seconds.
#[derive(async_graphql::InputObject)]
pub struct UpdateOrganizationSettingsInput {
    pub default_chat_limit: Option<i32>,
    pub auto_transfer_seconds: Option<i32>,
    pub waiting_long_seconds: Option<i32>,
    pub customer_idle_seconds: Option<i32>,
    pub auto_close_seconds: Option<i32>,
    pub presence_grace_seconds: Option<i32>,
    pub queue_limit: Option<i32>,
    pub acceptance_timeout_seconds: Option<i32>,
    /// 10 to 86400.
    pub queue_abandon_seconds: Option<i32>,
    /// 1 to 1000000.
    pub new_chats_per_minute: Option<i32>,
}

// ---- push ----------------------------------------------------------------------------------

/// The phone's operating system.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Platform")]
pub enum Platform {
    /// APNs.
    Ios,
    /// FCM.
    Android,
}

/// Which APNs environment the token is for (ignored for Android).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::PushEnvironment")]
pub enum PushEnvironment {
    Sandbox,
    Production,
}

/// Why a push goes out.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::NotificationKind")]
pub enum NotificationKind {
    /// A chat was assigned to you.
    NewChat,
    /// A chat was transferred to you.
    TransferredChat,
    /// A customer wrote while none of your apps was connected.
    NewMessage,
    /// Customers wait in the queue (at most one a minute).
    QueuedCustomers,
    /// A customer left an offline message.
    OfflineMessage,
    /// You did not accept a chat in time and stopped accepting chats.
    MissedChat,
}

/// A device that gets pushes.
pub struct PushDevice(pub domain::PushDevice);

#[Object]
impl PushDevice {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn platform(&self) -> Platform {
        self.0.platform.into()
    }

    async fn token(&self) -> &str {
        &self.0.token
    }

    /// The APNs topic (bundle id) or Android package.
    async fn app_id(&self) -> &str {
        &self.0.app_id
    }

    async fn environment(&self) -> PushEnvironment {
        self.0.environment.into()
    }

    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }

    async fn device_name(&self) -> Option<&str> {
        self.0.device_name.as_deref()
    }

    /// False once the provider refused the token; register it again after a reinstall.
    async fn enabled(&self) -> bool {
        self.0.enabled()
    }

    /// Why the provider refused the token.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Whether one kind of push is on.
#[derive(SimpleObject, async_graphql::InputObject)]
#[graphql(input_name = "NotificationPreferenceInput")]
pub struct NotificationPreference {
    pub kind: NotificationKind,
    pub enabled: bool,
}

/// A device to register.
#[derive(async_graphql::InputObject)]
pub struct RegisterPushDeviceInput {
    pub platform: Platform,
    /// The APNs device token (hex) or FCM registration token.
    pub token: String,
    /// The APNs topic (bundle id) or Android package.
    pub app_id: String,
    #[graphql(default_with = "PushEnvironment::Production")]
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
}
