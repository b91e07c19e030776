//! What a subscriber hears: the agent's events, the stream's connection state, the listener
//! that receives both, and the handle that keeps a subscription running.

use crate::models::{
    Attention, AuthorKind, Chat, Message, NamedRef, OfflineMessage, RoutingStatus,
};
use crate::outbox::OutgoingMessage;

/// Something that happened to the signed-in agent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AgentEvent {
    /// A chat was given to you. `reason`: "new chat", "returning customer", "queue", ...
    ChatAssigned {
        cursor: String,
        chat: Chat,
        reason: Option<String>,
    },
    /// A chat moved to another agent or group: to you, or away from you.
    ChatTransferred {
        cursor: String,
        chat: Chat,
        /// Who handed it over; none for automatic transfers.
        from_agent: Option<NamedRef>,
        /// The agent who has it now; none when it went to a group's queue.
        to_agent: Option<NamedRef>,
        to_group_id: Option<String>,
        /// The transferring agent's note for the next one.
        note: Option<String>,
        /// Set for automatic transfers.
        reason: Option<String>,
    },
    /// A transcript entry in one of your chats: a message or a system event.
    MessageAdded { cursor: String, message: Message },
    /// A chat of yours ended.
    ChatClosed { cursor: String, chat: Chat },
    /// A chat turned red, grey or back to normal.
    AttentionChanged {
        cursor: String,
        chat_id: String,
        attention: Attention,
    },
    /// Your routing status changed, in this app or another.
    RoutingStatusChanged {
        cursor: String,
        routing_status: RoutingStatus,
    },
    /// A customer left an offline message you may read (one `offlineMessages` lists).
    OfflineMessageReceived {
        cursor: String,
        offline_message: OfflineMessage,
    },
    /// The customer is typing; `draft` is the sneak peek. Live only: not replayed.
    TypingChanged {
        chat_id: String,
        author: AuthorKind,
        /// The customer's or the agent's id: tells a teammate's typing from this agent's echo.
        author_id: String,
        is_typing: bool,
        draft: Option<String>,
    },
    /// A customer joined a queue you serve. Live only.
    ChatQueued { chat: Chat, queue_length: i64 },
    /// The queue you serve changed length. Live only.
    QueueChanged { queue_length: i64 },
    /// The server disabled one of the organization's webhook endpoints that kept failing
    /// (admins and owners); the API's `webhookEndpoints` says which and why.
    WebhookEndpointDisabled { cursor: String },
}

impl AgentEvent {
    /// The cursor of events the server keeps and replays; none for live-only ones.
    pub fn cursor(&self) -> Option<&str> {
        match self {
            AgentEvent::ChatAssigned { cursor, .. }
            | AgentEvent::ChatTransferred { cursor, .. }
            | AgentEvent::MessageAdded { cursor, .. }
            | AgentEvent::ChatClosed { cursor, .. }
            | AgentEvent::AttentionChanged { cursor, .. }
            | AgentEvent::RoutingStatusChanged { cursor, .. }
            | AgentEvent::OfflineMessageReceived { cursor, .. }
            | AgentEvent::WebhookEndpointDisabled { cursor } => Some(cursor),
            AgentEvent::TypingChanged { .. }
            | AgentEvent::ChatQueued { .. }
            | AgentEvent::QueueChanged { .. } => None,
        }
    }
}

/// Whether the event stream is live.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// Opening the connection (first time, or after a wait).
    Connecting,
    /// Live: events arrive as they happen, after any missed ones.
    Connected,
    /// The connection dropped or could not be made; the next try is in `retry_in_ms`
    /// (`Client::reconnect_now` tries at once, e.g. when the phone's network comes back).
    WaitingForNetwork { retry_in_ms: u64, reason: String },
    /// The session ended: the stream stopped. Show the login screen.
    SignedOut,
}

/// What a subscriber hears. Called on the SDK's threads: hop to the main thread before
/// touching the UI.
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    fn on_event(&self, event: AgentEvent);
    fn on_connection_state(&self, state: ConnectionState);
    /// A message sent with `send_message` reached the server (SENT) or was refused (FAILED).
    fn on_outgoing_message(&self, message: OutgoingMessage);
}

/// A running subscription. Dropping it (or `cancel`) stops the stream.
#[derive(uniffi::Object)]
pub struct TaskHandle {
    pub(crate) task: tokio::task::AbortHandle,
}

#[uniffi::export]
impl TaskHandle {
    pub fn cancel(&self) {
        self.task.abort();
    }

    /// Whether the stream has stopped: cancelled, or signed out.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for TaskHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
