//! One chat followed live (`chatEvents`): its transcript as it grows, typing and the queue
//! position, for a supervisor watching a chat of their groups or an agent with a chat open.
//! Resumed after every disconnect from the last entry delivered, so none is missed or repeated.

use std::sync::Arc;

use graphql_client::Response;

use crate::error::{ErrorCode, SdkError};
use crate::events::ConnectionState;
use crate::models::{AuthorKind, Chat, Message};
use crate::ops::{self, chat_events};
use crate::shared::Inner;
use crate::stream::{Ended, Live, Reconnect, Socket, open, subscription_error};
use crate::transport::graphql_error;

/// Something that happened in one chat.
// UniFFI passes records by value (no Box), and one event at a time is no memory concern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ChatEvent {
    /// A transcript entry: a message, a note (agents only) or a system event.
    MessageAdded { cursor: String, message: Message },
    /// The chat ended.
    ChatClosed { cursor: String, chat: Chat },
    /// Someone in the chat is typing (or stopped). Live only: not replayed.
    TypingChanged {
        chat_id: String,
        author: AuthorKind,
        author_id: String,
        is_typing: bool,
        draft: Option<String>,
    },
    /// The chat is queued: the customer's place (1 is next) and the expected wait. Live only.
    QueuePositionChanged {
        chat_id: String,
        position: i64,
        estimated_wait_seconds: i64,
    },
}

/// What a chat's watcher hears. Called on the SDK's threads.
#[uniffi::export(callback_interface)]
pub trait ChatEventListener: Send + Sync {
    fn on_chat_event(&self, event: ChatEvent);
    fn on_connection_state(&self, state: ConnectionState);
    /// The server refused to follow the chat (`NotFound`, `Forbidden`, `BadInput` for a
    /// cursor it does not know): the stream has stopped.
    fn on_refused(&self, code: ErrorCode, message: String);
}

/// How following the chat ended, besides the endings every stream shares.
enum Followed {
    Ended(Ended),
    Refused(SdkError),
}

/// The watcher's life: connect, follow, and on any loss wait and resume after `since`.
pub(crate) async fn run(
    inner: Arc<Inner>,
    chat_id: String,
    mut since: Option<String>,
    listener: Arc<dyn ChatEventListener>,
) {
    let report = |state| listener.on_connection_state(state);
    let mut reconnect = Reconnect::new();
    loop {
        let Some(token) = reconnect.token(&inner, &report).await else {
            return;
        };
        let query = ops::request_body::<ops::ChatEvents>(chat_events::Variables {
            chat_id: chat_id.clone(),
            since: since.clone(),
        });
        let ended = match open(&inner, &token, "chat", query).await {
            Ok(mut socket) => {
                tracing::info!(%chat_id, ?since, "chat events connected");
                report(ConnectionState::Connected);
                match follow(&inner, &*listener, &mut socket, &mut since).await {
                    Followed::Ended(ended) => ended,
                    Followed::Refused(err) => {
                        listener.on_refused(err.code(), err.msg().to_owned());
                        return;
                    }
                }
            }
            Err(ended) => ended,
        };
        if !reconnect.after(&inner, &report, &token, ended).await {
            return;
        }
    }
}

/// Reads a connected watcher until it ends, remembering the last entry delivered.
async fn follow(
    inner: &Inner,
    listener: &dyn ChatEventListener,
    socket: &mut Socket,
    since: &mut Option<String>,
) -> Followed {
    let lost = |reason: String| Followed::Ended(Ended::Lost { reason, live: true });
    let mut live = Live::new(inner).await;
    loop {
        let message = match live.next(inner, socket).await {
            Ok(message) => message,
            Err(ended) => return Followed::Ended(ended),
        };
        match message["type"].as_str() {
            Some("next") => {
                let response: Response<chat_events::ResponseData> =
                    match serde_json::from_value(message["payload"].clone()) {
                        Ok(response) => response,
                        Err(err) => {
                            // An event type newer than this SDK: skip it.
                            tracing::warn!(%err, "skipped a chat event this SDK cannot read");
                            continue;
                        }
                    };
                if let Some(error) = response.errors.as_ref().and_then(|e| e.first()) {
                    return match graphql_error(error) {
                        SdkError::Unauthenticated { .. } => Followed::Ended(Ended::Unauthorized),
                        err => lost(format!("a chat event could not be read: {err}")),
                    };
                }
                let Some(data) = response.data else { continue };
                let event = ChatEvent::from(data.chat_events);
                if let ChatEvent::MessageAdded { cursor, .. }
                | ChatEvent::ChatClosed { cursor, .. } = &event
                {
                    *since = Some(cursor.clone());
                }
                listener.on_chat_event(event);
            }
            Some("error") => {
                return match subscription_error(&message) {
                    Some(SdkError::Unauthenticated { .. }) => Followed::Ended(Ended::Unauthorized),
                    Some(err) if !err.is_transient() => Followed::Refused(err),
                    other => lost(format!("the subscription failed: {other:?}")),
                };
            }
            // The server ends the stream when the session ends.
            Some("complete") => return Followed::Ended(Ended::Unauthorized),
            _ => {}
        }
    }
}

impl From<chat_events::ChatEventsChatEvents> for ChatEvent {
    fn from(event: chat_events::ChatEventsChatEvents) -> Self {
        use chat_events::ChatEventsChatEventsOn as On;
        let cursor = event.cursor;
        match event.on {
            On::MessageAdded(e) => ChatEvent::MessageAdded {
                cursor,
                message: e.message.into(),
            },
            On::ChatClosed(e) => ChatEvent::ChatClosed {
                cursor,
                chat: e.chat.into(),
            },
            On::TypingChanged(e) => ChatEvent::TypingChanged {
                chat_id: e.chat.id,
                author: e.author.into(),
                author_id: e.author_id,
                is_typing: e.is_typing,
                draft: e.draft,
            },
            On::QueuePositionChanged(e) => ChatEvent::QueuePositionChanged {
                chat_id: e.chat.id,
                position: e.position,
                estimated_wait_seconds: e.estimated_wait_seconds,
            },
        }
    }
}
