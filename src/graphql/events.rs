//! Live events: what an agent's apps and a chat's participants hear, the `agentEvents` and
//! `chatEvents` subscriptions that carry them, and the cursor to start from. A chat in an
//! event is read when asked for, as its subscriber may see it then.

use async_graphql::{Context, ID, Interface, Object, SimpleObject, Subscription};
use futures_util::{Stream, StreamExt};

use crate::domain;
use crate::graphql::accounts::{Agent, RoutingStatus};
use crate::graphql::chats::{Attention, AuthorKind, Chat, Message, OfflineMessage};
use crate::graphql::{ApiError, ApiResult, ContextExt, loaders};
use crate::services::LivePrincipal;
use crate::services::streams::{self, AgentStreamEvent, ChatStreamEvent, parse_cursor};

/// A chat was given to you.
#[derive(SimpleObject)]
pub struct ChatAssigned {
    pub cursor: String,
    pub chat: Chat,
    /// Why: "new chat", "returning customer", "answered a greeting", "queue", "taken from the
    /// queue".
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
        loaders::agent(ctx, principal.organization_id(), id).await?,
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
    /// Who it is, as `Message.authorId` names authors: an app tells another agent's typing
    /// from its own echo by it.
    pub author_id: ID,
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

/// The server disabled one of the organization's webhook endpoints because it kept failing
/// (admins and owners hear it; `webhookEndpoints` shows the endpoint and why).
#[derive(SimpleObject)]
pub struct WebhookEndpointDisabled {
    pub cursor: String,
    /// Which endpoint, and why.
    pub message: String,
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
    WebhookEndpointDisabled(WebhookEndpointDisabled),
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
    pub fn from_stream(event: AgentStreamEvent) -> Option<AgentEvent> {
        let chat = |id: Option<&String>| id.map(|id| Chat::lazy(id));
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
                    domain::FeedKind::WebhookEndpointDisabled => {
                        AgentEvent::WebhookEndpointDisabled(WebhookEndpointDisabled {
                            cursor,
                            message: entry.data.reason.unwrap_or_default(),
                        })
                    }
                }
            }
            AgentStreamEvent::Typing { cursor, typing } => {
                AgentEvent::TypingChanged(TypingChanged {
                    cursor: cursor.to_string(),
                    chat: Chat::lazy(&typing.chat_id),
                    author: typing.author_kind.into(),
                    author_id: ID(typing.author_id),
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
                chat: Chat::lazy(&chat_id),
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
    pub fn from_stream(event: ChatStreamEvent) -> ChatEvent {
        match event {
            ChatStreamEvent::Transcript(entry) => {
                let entry = *entry;
                let cursor = entry.seq.to_string();
                let chat = Chat::lazy(&entry.chat_id);
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
                chat: Chat::lazy(&typing.chat_id),
                author: typing.author_kind.into(),
                author_id: ID(typing.author_id),
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
                chat: Chat::lazy(&chat_id),
                position,
                estimated_wait_seconds,
            }),
        }
    }
}

/// The cursor to subscribe from.
#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The cursor of the signed-in agent's latest event. Subscribing to `agentEvents` with it
    /// as `since` misses nothing from now on, not even what happens while the subscription
    /// starts.
    async fn agent_events_cursor(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let principal = ctx.principal()?;
        let seq = streams::agent_events_cursor(ctx.services(), principal).await?;
        Ok(seq.to_string())
    }
}

/// The agent's and a chat's live events.
#[derive(Default)]
pub struct EventsSubscription;

#[Subscription]
impl EventsSubscription {
    /// Everything the signed-in agent's apps need live: chats assigned and transferred,
    /// messages, the customer's typing with the sneak peek, the queue, attention, routing
    /// status and offline messages. With `since` (an event's cursor) it first replays what was
    /// missed, in order.
    #[allow(clippy::unused_async)] // async-graphql's subscription fields are async fns
    async fn agent_events(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
    ) -> Result<impl Stream<Item = AgentEvent>, ApiError> {
        let principal = ctx.principal()?.clone();
        let since = parse_cursor(since.as_deref())?;
        // Both boxed: async-graphql keeps this function's future and its stream in one
        // enum for the subscription's life, sized for the larger. Boxed, an idle agent's
        // subscription holds the stream alone.
        let events = Box::pin(streams::agent_events(
            ctx.services().clone(),
            principal,
            ctx.data_opt::<LivePrincipal>().cloned(),
            since,
        ))
        .await?;
        Ok(events
            .filter_map(|event| std::future::ready(AgentEvent::from_stream(event)))
            .boxed())
    }

    /// One chat's events: its transcript (from the start, or after `since`), typing, and the
    /// customer's place in the queue. For its customer and for agents who may see the chat.
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        since: Option<String>,
    ) -> Result<impl Stream<Item = ChatEvent>, ApiError> {
        let caller = ctx.caller()?;
        let since = parse_cursor(since.as_deref())?;
        // Boxed for the reason agent_events gives.
        let events = Box::pin(streams::chat_events(
            ctx.services().clone(),
            caller,
            ctx.data_opt::<LivePrincipal>().cloned(),
            &chat_id,
            since,
        ))
        .await?;
        Ok(events.map(ChatEvent::from_stream).boxed())
    }
}
