//! The live event stream: agentEvents over graphql-transport-ws, reconnected with backoff and
//! resumed from the last cursor, so no event is missed and none is delivered twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use graphql_client::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use switchboard_protocol::ws;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::error::SdkError;
use crate::events::{AgentEvent, ConnectionState, EventListener};
use crate::models::{NamedRef, OfflineMessage, time};
use crate::ops::{self, agent_events};
use crate::runtime::Backoff;
use crate::shared::Inner;
use crate::transport::graphql_error;

/// How a connection ended.
pub(crate) enum Ended {
    /// The server refused the token: refresh it and connect again.
    Unauthorized,
    /// The access token expired while connected: refresh it and reconnect at once.
    TokenExpired,
    /// The server ended the session (logout elsewhere, deactivation, a new password): signed
    /// out now, without waiting for the next call to find out.
    SessionOver,
    /// Dropped, refused or silent; `live` says whether it had been connected.
    Lost { reason: String, live: bool },
    /// The server refused the cursor (a server reset): start from now.
    CursorRefused,
    /// The session ended (logout, or a refused refresh token).
    SignedOut,
}

/// A connection that delivered events, or stayed up this long, was healthy: the next loss
/// starts the backoff from the beginning. One that fails sooner keeps backing off, so a server
/// that accepts connections and then refuses the subscription is not hammered.
const STABLE_AFTER: Duration = Duration::from_secs(30);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const PING_EVERY: Duration = Duration::from_secs(15);
/// With pings every 15 s, a connection silent this long is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(40);

/// The last cursor delivered, kept in the data directory so a restarted app resumes.
#[derive(Serialize, Deserialize, Default)]
struct Position {
    agent_id: String,
    cursor: Option<String>,
}

pub(crate) struct Cursor {
    path: PathBuf,
    agent_id: String,
    last: Option<u64>,
}

impl Cursor {
    pub(crate) fn load(dir: &std::path::Path, agent_id: &str) -> Cursor {
        let path = dir.join("event-cursor.json");
        let position: Position = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let last = (position.agent_id == agent_id)
            .then(|| position.cursor.and_then(|c| c.parse().ok()))
            .flatten();
        Cursor {
            path,
            agent_id: agent_id.to_owned(),
            last,
        }
    }

    fn since(&self) -> Option<String> {
        self.last.map(|n| n.to_string())
    }

    /// Whether the event at `cursor` is new; remembers it when it is.
    fn advance(&mut self, cursor: &str) -> bool {
        let Ok(n) = cursor.parse::<u64>() else {
            return true;
        };
        if self.last.is_some_and(|last| n <= last) {
            return false;
        }
        self.last = Some(n);
        let position = Position {
            agent_id: self.agent_id.clone(),
            cursor: Some(n.to_string()),
        };
        let temporary = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec(&position)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&temporary, bytes))
            .and_then(|_| std::fs::rename(&temporary, &self.path));
        if let Err(err) = written {
            tracing::warn!(%err, "could not keep the event cursor");
        }
        true
    }

    fn reset(&mut self) {
        self.last = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The subscription's life: connect, stream, and on any loss wait and resume.
pub(crate) async fn run(inner: Arc<Inner>, listener: Arc<dyn EventListener>) {
    let report = |state| listener.on_connection_state(state);
    let mut reconnect = Reconnect::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let Some(token) = reconnect.token(&inner, &report).await else {
            return;
        };
        let Some(session) = inner.auth.session() else {
            report(ConnectionState::SignedOut);
            return;
        };
        // A different agent signed in on this client: their own cursor.
        if cursor
            .as_ref()
            .is_none_or(|c| c.agent_id != session.agent_id)
        {
            cursor = Some(Cursor::load(&inner.data_dir, &session.agent_id));
        }
        let position = cursor.as_mut().expect("loaded above");
        // A first subscription starts from the server's latest cursor rather than from "live":
        // live would miss whatever happens while the subscription is being set up.
        if position.last.is_none() {
            match inner
                .auth
                .run::<ops::AgentEventsCursor>(ops::agent_events_cursor::Variables)
                .await
            {
                Ok(data) => {
                    position.advance(&data.agent_events_cursor);
                }
                Err(SdkError::Unauthenticated { .. }) => {
                    report(ConnectionState::SignedOut);
                    return;
                }
                Err(err) => {
                    reconnect.wait(&inner, &report, err.to_string()).await;
                    continue;
                }
            }
        }
        let ended = match connection(&inner, &*listener, &token, position).await {
            Ended::CursorRefused => {
                position.reset();
                Ended::Lost {
                    reason: "the server no longer knows the event cursor".into(),
                    live: false,
                }
            }
            other => other,
        };
        if !reconnect.after(&inner, &report, &token, ended).await {
            return;
        }
    }
}

/// How a subscription comes back after its connection ended: with a fresh token after a
/// refusal or an expiry, signed out when the session is over, after a backoff when the
/// connection was lost.
pub(crate) struct Reconnect {
    backoff: Backoff,
    /// Connections refused in a row despite a fresh token.
    refused: u32,
}

impl Reconnect {
    pub(crate) fn new() -> Reconnect {
        Reconnect {
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            refused: 0,
        }
    }

    /// An access token to connect with, after waiting out failures to get one; `None` when
    /// the session is over (reported).
    pub(crate) async fn token(
        &mut self,
        inner: &Inner,
        report: &(dyn Fn(ConnectionState) + Sync),
    ) -> Option<String> {
        loop {
            report(ConnectionState::Connecting);
            match inner.auth.access_token().await {
                Ok(token) => return Some(token),
                Err(SdkError::Unauthenticated { .. }) => {
                    report(ConnectionState::SignedOut);
                    return None;
                }
                Err(err) => self.wait(inner, report, err.to_string()).await,
            }
        }
    }

    /// Waits out the next delay (or until the network is back), saying so first.
    pub(crate) async fn wait(
        &mut self,
        inner: &Inner,
        report: &(dyn Fn(ConnectionState) + Sync),
        reason: String,
    ) {
        let delay = self.backoff.next_delay();
        report(ConnectionState::WaitingForNetwork {
            retry_in_ms: delay.as_millis() as u64,
            reason,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = inner.network_back.notified() => {}
        }
    }

    /// Deals with how the connection `ended`; false when the session is over (reported).
    pub(crate) async fn after(
        &mut self,
        inner: &Inner,
        report: &(dyn Fn(ConnectionState) + Sync),
        token: &str,
        ended: Ended,
    ) -> bool {
        if !matches!(ended, Ended::Unauthorized) {
            self.refused = 0;
        }
        match ended {
            Ended::TokenExpired => {
                if let Err(SdkError::Unauthenticated { .. }) = inner.auth.refresh(token).await {
                    report(ConnectionState::SignedOut);
                    return false;
                }
            }
            Ended::SessionOver => {
                inner.auth.ended_by_server();
                report(ConnectionState::SignedOut);
                return false;
            }
            Ended::Unauthorized => {
                if let Err(SdkError::Unauthenticated { .. }) = inner.auth.refresh(token).await {
                    report(ConnectionState::SignedOut);
                    return false;
                }
                // Refused again right after a refresh: something else is wrong; don't spin.
                self.refused += 1;
                if self.refused > 1 {
                    let reason = "the server refused the connection".to_owned();
                    self.wait(inner, report, reason).await;
                }
            }
            Ended::CursorRefused => {
                let reason = "the server refused the subscription".to_owned();
                self.wait(inner, report, reason).await;
            }
            Ended::SignedOut => {
                report(ConnectionState::SignedOut);
                return false;
            }
            Ended::Lost { reason, live } => {
                if live {
                    self.backoff.reset();
                }
                tracing::debug!(%reason, "subscription lost");
                self.wait(inner, report, reason).await;
            }
        }
        true
    }
}

/// One WebSocket connection, from the handshake until it ends.
async fn connection(
    inner: &Inner,
    listener: &dyn EventListener,
    token: &str,
    cursor: &mut Cursor,
) -> Ended {
    let query = ops::request_body::<ops::AgentEvents>(agent_events::Variables {
        since: cursor.since(),
    });
    let mut socket = match open(inner, token, "events", query).await {
        Ok(socket) => socket,
        Err(ended) => return ended,
    };
    tracing::info!(since = ?cursor.since(), "event stream connected");
    listener.on_connection_state(ConnectionState::Connected);
    inner.connected();

    let opened = tokio::time::Instant::now();
    let mut delivered = false;
    let ended = stream(inner, listener, cursor, &mut socket, &mut delivered).await;
    match ended {
        Ended::Lost { reason, live: true } if !delivered && opened.elapsed() < STABLE_AFTER => {
            Ended::Lost {
                reason,
                live: false,
            }
        }
        other => other,
    }
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, initialises with `token` and subscribes with `payload` under `id`: a socket on
/// which the subscription's messages arrive, or how it ended before that.
pub(crate) async fn open(
    inner: &Inner,
    token: &str,
    id: &str,
    payload: impl Serialize,
) -> Result<Socket, Ended> {
    let lost = |reason: String| Ended::Lost {
        reason,
        live: false,
    };
    let mut request = match inner.auth.transport.websocket_url().into_client_request() {
        Ok(request) => request,
        Err(err) => return Err(lost(err.to_string())),
    };
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(ws::SUBPROTOCOL),
    );
    let host = request.uri().host().unwrap_or("the server").to_owned();
    let connector = inner.auth.transport.websocket_connector();
    let socket = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector)),
    );
    let mut socket = match socket.await {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(err)) => {
            let reason = match crate::tls::refusal(&err) {
                Some(why) => format!("cannot connect securely to {host}: {why}"),
                None => format!("cannot connect: {err}"),
            };
            return Err(lost(reason));
        }
        Err(_) => return Err(lost("the server did not answer in time".into())),
    };

    let init =
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
    if let Err(err) = socket.send(WsMessage::text(init.to_string())).await {
        return Err(lost(err.to_string()));
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.next()).await {
        Ok(Some(Ok(WsMessage::Text(text)))) => {
            let ack: Value = serde_json::from_str(&text).unwrap_or_default();
            if ack["type"] != "connection_ack" {
                return Err(lost(format!(
                    "unexpected answer to connection_init: {text}"
                )));
            }
        }
        Ok(Some(Ok(WsMessage::Close(frame)))) => return Err(closed(frame, false)),
        Ok(Some(Ok(other))) => return Err(lost(format!("unexpected frame {other:?}"))),
        Ok(Some(Err(err))) => return Err(lost(err.to_string())),
        Ok(None) => return Err(lost("the server closed the connection".into())),
        Err(_) => return Err(lost("no connection_ack in time".into())),
    }
    let subscribe = json!({"id": id, "type": "subscribe", "payload": payload});
    if let Err(err) = socket.send(WsMessage::text(subscribe.to_string())).await {
        return Err(lost(err.to_string()));
    }
    Ok(socket)
}

/// Reads a connected stream until it ends; `delivered` says whether any event came.
async fn stream(
    inner: &Inner,
    listener: &dyn EventListener,
    cursor: &mut Cursor,
    socket: &mut Socket,
    delivered: &mut bool,
) -> Ended {
    let mut live = Live::new(inner).await;
    loop {
        let message = match live.next(inner, socket).await {
            Ok(message) => message,
            Err(ended) => return ended,
        };
        match message["type"].as_str() {
            Some("next") => {
                *delivered = true;
                if let Some(ended) = deliver(listener, cursor, message["payload"].clone()) {
                    return ended;
                }
            }
            Some("error") => {
                return match subscription_error(&message) {
                    Some(SdkError::Unauthenticated { .. }) => Ended::Unauthorized,
                    Some(SdkError::BadInput { .. }) => Ended::CursorRefused,
                    other => Ended::Lost {
                        reason: format!("the subscription failed: {other:?}"),
                        live: true,
                    },
                };
            }
            // The server ends the stream when the session ends.
            Some("complete") => return Ended::Unauthorized,
            _ => {}
        }
    }
}

/// What a subscription's `error` message says.
pub(crate) fn subscription_error(message: &Value) -> Option<SdkError> {
    let errors: Vec<graphql_client::Error> =
        serde_json::from_value(message["payload"].clone()).unwrap_or_default();
    errors.first().map(graphql_error)
}

/// The upkeep of a connected socket: pings both ways, silence, and the session ending.
pub(crate) struct Live {
    sessions: tokio::sync::watch::Receiver<u64>,
    ping: tokio::time::Interval,
}

impl Live {
    pub(crate) async fn new(inner: &Inner) -> Live {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        Live {
            sessions: inner.auth.watch(),
            ping,
        }
    }

    /// The next protocol message the subscription acts on (`next`, `error`, `complete`),
    /// answering the server's pings on the way; how the connection ended otherwise.
    pub(crate) async fn next(
        &mut self,
        inner: &Inner,
        socket: &mut Socket,
    ) -> Result<Value, Ended> {
        let lost = |reason: String| Ended::Lost { reason, live: true };
        loop {
            let frame = tokio::select! {
                frame = tokio::time::timeout(SILENCE_LIMIT, socket.next()) => frame,
                _ = self.sessions.changed() => {
                    if inner.auth.session().is_none() {
                        let _ = socket.close(None).await;
                        return Err(Ended::SignedOut);
                    }
                    continue;
                }
                _ = self.ping.tick() => {
                    if let Err(err) = socket.send(WsMessage::text(r#"{"type":"ping"}"#)).await {
                        return Err(lost(err.to_string()));
                    }
                    continue;
                }
            };
            let text = match frame {
                Ok(Some(Ok(WsMessage::Text(text)))) => text,
                Ok(Some(Ok(WsMessage::Close(frame)))) => return Err(closed(frame, true)),
                Ok(Some(Ok(_))) => continue, // WebSocket pings are answered by tungstenite
                Ok(Some(Err(err))) => return Err(lost(err.to_string())),
                Ok(None) => return Err(lost("the server closed the connection".into())),
                Err(_) => return Err(lost("the connection went silent".into())),
            };
            let message: Value = match serde_json::from_str(&text) {
                Ok(message) => message,
                Err(err) => return Err(lost(format!("unreadable message: {err}"))),
            };
            if message["type"] == "ping" {
                if let Err(err) = socket.send(WsMessage::text(r#"{"type":"pong"}"#)).await {
                    return Err(lost(err.to_string()));
                }
                continue;
            }
            return Ok(message);
        }
    }
}

pub(crate) fn closed(
    frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>,
    live: bool,
) -> Ended {
    match frame {
        // The server says why it refuses: an ended session or an expired token (see the
        // server's README, "WebSocket").
        Some(frame)
            if u16::from(frame.code) == ws::FORBIDDEN
                && frame.reason.contains(ws::SESSION_ENDED) =>
        {
            Ended::SessionOver
        }
        Some(frame)
            if u16::from(frame.code) == ws::FORBIDDEN
                && frame.reason.contains(ws::TOKEN_EXPIRED) =>
        {
            Ended::TokenExpired
        }
        Some(frame) if matches!(u16::from(frame.code), ws::UNAUTHORIZED | ws::FORBIDDEN) => {
            Ended::Unauthorized
        }
        Some(frame) if frame.code == CloseCode::Away => Ended::Lost {
            reason: "the server is restarting".into(),
            live,
        },
        Some(frame) => Ended::Lost {
            reason: format!(
                "closed by the server ({}): {}",
                u16::from(frame.code),
                frame.reason
            ),
            live,
        },
        None => Ended::Lost {
            reason: "closed by the server".into(),
            live,
        },
    }
}

/// Hands one `next` payload to the listener, unless it was already delivered.
fn deliver(listener: &dyn EventListener, cursor: &mut Cursor, payload: Value) -> Option<Ended> {
    let response: Response<agent_events::ResponseData> = match serde_json::from_value(payload) {
        Ok(response) => response,
        Err(err) => {
            // An event type newer than this SDK: skip it, but never stall the stream on it.
            tracing::warn!(%err, "skipped an event this SDK version cannot read");
            return None;
        }
    };
    if let Some(error) = response.errors.as_ref().and_then(|e| e.first()) {
        return match graphql_error(error) {
            SdkError::Unauthenticated { .. } => Some(Ended::Unauthorized),
            err => {
                tracing::warn!(%err, "an event could not be read");
                None
            }
        };
    }
    let event = AgentEvent::from(response.data?.agent_events);
    if let Some(at) = event.cursor()
        && !cursor.advance(at)
    {
        return None;
    }
    listener.on_event(event);
    None
}

impl From<agent_events::AgentEventsAgentEvents> for AgentEvent {
    fn from(event: agent_events::AgentEventsAgentEvents) -> Self {
        use agent_events::AgentEventsAgentEventsOn as On;
        let cursor = event.cursor;
        match event.on {
            On::ChatAssigned(e) => AgentEvent::ChatAssigned {
                cursor,
                chat: e.chat.into(),
                reason: e.reason,
            },
            On::ChatTransferred(e) => AgentEvent::ChatTransferred {
                cursor,
                chat: e.chat.into(),
                from_agent: e.from_agent.map(|a| NamedRef {
                    id: a.id,
                    name: a.name,
                }),
                to_agent: e.to_agent.map(|a| NamedRef {
                    id: a.id,
                    name: a.name,
                }),
                to_group_id: e.to_group_id,
                note: e.note,
                reason: e.reason,
            },
            On::MessageAdded(e) => AgentEvent::MessageAdded {
                cursor,
                message: e.message.into(),
            },
            On::ChatClosed(e) => AgentEvent::ChatClosed {
                cursor,
                chat: e.chat.into(),
            },
            On::AttentionChanged(e) => AgentEvent::AttentionChanged {
                cursor,
                chat_id: e.chat.id,
                attention: e.attention.into(),
            },
            On::RoutingStatusChanged(e) => AgentEvent::RoutingStatusChanged {
                cursor,
                routing_status: e.routing_status.into(),
            },
            On::OfflineMessageReceived(e) => AgentEvent::OfflineMessageReceived {
                cursor,
                offline_message: OfflineMessage {
                    id: e.offline_message.id,
                    name: e.offline_message.name,
                    email: e.offline_message.email,
                    text: e.offline_message.text,
                    group_id: e.offline_message.group_id,
                    created_at: time(&e.offline_message.created_at),
                    handled: e.offline_message.handled,
                },
            },
            On::TypingChanged(e) => AgentEvent::TypingChanged {
                chat_id: e.chat.id,
                author: e.author.into(),
                author_id: e.author_id,
                is_typing: e.is_typing,
                draft: e.draft,
            },
            On::ChatQueued(e) => AgentEvent::ChatQueued {
                chat: e.chat.into(),
                queue_length: e.queue_length,
            },
            On::QueueChanged(e) => AgentEvent::QueueChanged {
                queue_length: e.queue_length,
            },
            On::WebhookEndpointDisabled => AgentEvent::WebhookEndpointDisabled { cursor },
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;

    use super::*;

    fn close(code: u16, reason: &str) -> Ended {
        closed(
            Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            }),
            true,
        )
    }

    #[test]
    fn close_reasons_decide_between_signing_out_and_refreshing() {
        let session_ended = format!("Forbidden: {}", ws::SESSION_ENDED);
        let token_expired = format!("Forbidden: {}", ws::TOKEN_EXPIRED);
        assert!(matches!(
            close(ws::FORBIDDEN, &session_ended),
            Ended::SessionOver
        ));
        assert!(matches!(
            close(ws::FORBIDDEN, &token_expired),
            Ended::TokenExpired
        ));
        assert!(matches!(
            close(ws::FORBIDDEN, "Forbidden"),
            Ended::Unauthorized
        ));
        assert!(matches!(
            close(ws::UNAUTHORIZED, "Unauthorized"),
            Ended::Unauthorized
        ));
        assert!(matches!(close(1001, "bye"), Ended::Lost { live: true, .. }));
    }
}
