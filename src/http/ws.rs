//! GraphQL over WebSocket on /graphql, in two subprotocols: graphql-transport-ws, followed to
//! the letter (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>), and the
//! legacy `graphql-ws` of subscriptions-transport-ws
//! (<https://github.com/apollographql/subscriptions-transport-ws/blob/master/PROTOCOL.md>),
//! which Apollo iOS and Apollo Kotlin speak by default. A client offering both gets
//! graphql-transport-ws.
//!
//! async-graphql ships handlers for both, but they do not close with the codes
//! graphql-transport-ws prescribes (4400, 4401, 4403, 4408, 4409, 4429), so the connection
//! state machine is ours and async-graphql only executes operations. It is one [`Connection`]
//! whatever the protocol: authorization, limits, revocation, timeouts and the operations'
//! streams are shared, and each protocol is a small codec ([`transport`], [`legacy`]) that
//! reads its client messages into an [`Incoming`] and writes each [`Outgoing`] its way.
//!
//! One task per connection runs everything: reading, the operations' streams (a `StreamMap`,
//! not a task each), pings and shutdown. Buffers are small because most agent connections sit
//! idle for hours.
//!
//! A socket never keeps rights its agent lost. Every operation is authorized against the
//! session and the agent as the store has them at that moment, as over HTTP. When the agent's
//! access changes anywhere (logout, deactivation, a new password, a reused refresh token, a new
//! role or groups), [`crate::services::presence::AccessWatch`] wakes the connection and its
//! streams: an ended session closes it with 4403, and each stream re-reads the agent's rights.
//! When the access token has expired the socket closes with 4403 too, at the next ping; apps
//! refresh and reconnect from their cursor, so nothing is lost. An idle socket pays for none
//! of this but one receiver of its agent's shared access signal.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::HeaderValue;
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use serde_json::{Value, json};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_stream::StreamMap;
use tracing::Instrument;

use chrono::{DateTime, Utc};

use super::{AppState, access_log};
use crate::error::Error;
use crate::graphql::documents::DocumentCache;
use crate::graphql::{ClientAddr, RequestAuth, RequestOrigin, finalize_errors};
use crate::services::auth::{SESSION_ENDED, TOKEN_EXPIRED};
use crate::services::{Caller, LivePrincipal};

use switchboard_protocol::ws::{FORBIDDEN, UNAUTHORIZED};

mod legacy;
mod transport;

/// tungstenite reads into a buffer of this size; its 128 KiB default would cost 2.5 GiB for
/// 20,000 idle agents. Client messages are small (subscribe, ping); a larger one grows the
/// buffer as it arrives.
const READ_BUFFER_BYTES: usize = 256;
/// A client that stops reading may not make the server buffer more than this for it.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// Accepts the upgrade and runs the connection in the subprotocol agreed.
pub(super) fn upgrade(
    state: AppState,
    upgrade: WebSocketUpgrade,
    client: IpAddr,
    origin: RequestOrigin,
) -> Response {
    let max_message = state.config.max_body_bytes;
    // In order of preference: the first of these that the client offers is the one agreed.
    let mut upgrade = upgrade
        .protocols([transport::PROTOCOL, legacy::PROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        // Write each message out at once: chat wants latency, not batching.
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message);
    let protocol = upgrade.selected_protocol().and_then(Protocol::named);
    if protocol.is_none() {
        // Browsers and tungstenite fail a handshake whose answer names none of the
        // subprotocols they offered, before any close frame could say why. Agreeing to one
        // they offered lets them read the 4406 and its reason instead.
        let offered = upgrade.requested_protocols().next().cloned();
        if let Some(offered) = offered {
            upgrade.set_selected_protocol(offered);
        }
    }
    // Counted from the request, so shutdown cannot miss the socket between the upgrade and its
    // task; the socket's presence guard then counts its departure.
    let running = state.tasks.running();
    // The connection logs in the span of the request that opened it, and ends with its line
    // of the access log.
    let span = tracing::Span::current();
    let opened = Instant::now();
    upgrade.on_upgrade(move |socket| {
        async move {
            let _running = running;
            let (protocol, end) = match protocol {
                Some(protocol) => {
                    let end = Connection::new(socket, protocol, state, client, origin)
                        .run()
                        .await;
                    (protocol.name(), end)
                }
                None => {
                    let reason = subprotocol_not_acceptable();
                    close(socket, 4406, &reason).await;
                    ("none", End::Close(4406, reason))
                }
            };
            let lasted = opened.elapsed();
            match &end {
                End::Close(code, reason) => {
                    access_log::websocket_closed(protocol, lasted, "server", Some((*code, reason)))
                }
                End::ClosedByClient(frame) => access_log::websocket_closed(
                    protocol,
                    lasted,
                    "client",
                    frame
                        .as_ref()
                        .map(|(code, reason)| (*code, reason.as_str())),
                ),
                End::Drop => access_log::websocket_closed(protocol, lasted, "gone", None),
            }
        }
        .instrument(span)
    })
}

/// The 4406 reason: it names the subprotocols served.
fn subprotocol_not_acceptable() -> String {
    format!(
        "Subprotocol not acceptable: use {} or {}",
        transport::PROTOCOL,
        legacy::PROTOCOL
    )
}

/// The subprotocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    /// graphql-transport-ws, of the graphql-ws library.
    TransportWs,
    /// `graphql-ws`, of the older subscriptions-transport-ws library.
    Legacy,
}

impl Protocol {
    /// The protocol a `Sec-WebSocket-Protocol` value names, when it is one served.
    fn named(name: &HeaderValue) -> Option<Protocol> {
        match name.to_str().ok()? {
            transport::PROTOCOL => Some(Protocol::TransportWs),
            legacy::PROTOCOL => Some(Protocol::Legacy),
            _ => None,
        }
    }

    /// The subprotocol's name, as the handshake says it.
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => transport::PROTOCOL,
            Protocol::Legacy => legacy::PROTOCOL,
        }
    }

    fn decode(self, text: &str) -> Result<Incoming, serde_json::Error> {
        match self {
            Protocol::TransportWs => transport::decode(text),
            Protocol::Legacy => legacy::decode(text),
        }
    }

    fn encode(self, message: Outgoing) -> Option<Value> {
        match self {
            Protocol::TransportWs => transport::encode(message),
            Protocol::Legacy => legacy::encode(message),
        }
    }

    /// Whether the server sends `ka` keep-alives: subscriptions-transport-ws's client closes a
    /// connection whose keep-alives stop once they have begun.
    fn keeps_alive(self) -> bool {
        self == Protocol::Legacy
    }

    /// Whether an operation started with the id of one still running replaces it, as
    /// subscriptions-transport-ws's server does; graphql-transport-ws closes with 4409.
    fn replaces_running_ids(self) -> bool {
        self == Protocol::Legacy
    }
}

/// A client message, in either protocol.
#[derive(Debug)]
enum Incoming {
    /// `connection_init`, with the payload that authorizes the connection.
    Init { payload: Option<Value> },
    /// graphql-transport-ws's `ping`, answered with `pong`.
    Ping,
    /// graphql-transport-ws's `pong`.
    Pong,
    /// An operation to run: `subscribe`, or legacy `start`. Its payload is read by
    /// [`Connection::read_operation`].
    Subscribe { id: String, payload: Value },
    /// The client ends an operation: `complete`, or legacy `stop`.
    Stop { id: String },
    /// Legacy `connection_terminate`: the client is leaving.
    Terminate,
}

/// A server message, in either protocol; a codec leaves out those its protocol does not have.
#[derive(Debug)]
enum Outgoing<'a> {
    /// `connection_ack`.
    Ack,
    /// graphql-transport-ws's answer to `ping`.
    Pong,
    /// Why `connection_init` was refused, just before the socket closes with that reason:
    /// legacy `connection_error`.
    InitRefused { message: &'a str },
    /// Legacy `ka`.
    KeepAlive,
    /// An operation's result: `next`, or legacy `data`.
    Next { id: &'a str, payload: Value },
    /// An operation that failed before it produced anything: `error`, with the list of errors.
    /// No `complete` follows.
    Error { id: &'a str, errors: Value },
    /// An operation is done: `complete`.
    Complete { id: &'a str },
}

/// Why the loop ended.
enum End {
    /// Close the socket with this code and reason.
    Close(u16, String),
    /// The client closed the connection, with this code and reason if it gave them.
    ClosedByClient(Option<(u16, String)>),
    /// The peer is gone or silent: just drop the socket.
    Drop,
}

/// What an operation's stream yields: a response, then `None` when it completes. Boxed, so
/// the connection's future does not reserve room for one while it waits.
type Operation = BoxStream<'static, Option<Box<async_graphql::Response>>>;

struct Connection {
    socket: WebSocket,
    /// The subprotocol agreed in the handshake.
    protocol: Protocol,
    state: AppState,
    client: IpAddr,
    /// The page's origin, for operations that check an organization's allowed origins.
    origin: RequestOrigin,
    init_received: bool,
    caller: Option<Caller>,
    /// When the access token of `caller` expires; the socket closes at the first ping after.
    expires_at: Option<DateTime<Utc>>,
    /// Keeps the agent reachable while the connection lives.
    presence: Option<crate::services::presence::Connected>,
    operations: StreamMap<String, Operation>,
    /// Operations that have sent a result; the others report a first failure as `error`.
    started: std::collections::HashSet<String>,
}

impl Connection {
    fn new(
        socket: WebSocket,
        protocol: Protocol,
        state: AppState,
        client: IpAddr,
        origin: RequestOrigin,
    ) -> Self {
        Connection {
            socket,
            protocol,
            state,
            client,
            origin,
            init_received: false,
            caller: None,
            expires_at: None,
            presence: None,
            // Nearly every connection runs one operation.
            operations: StreamMap::with_capacity(1),
            started: Default::default(),
        }
    }

    /// The connection's loop. It lives as long as the connection, mostly idle, so its future
    /// is kept small: the work done per message (authentication, executing an operation) is
    /// boxed and exists only while it runs.
    async fn run(mut self) -> End {
        let metrics = self.state.metrics.clone();
        let _open = metrics.websocket_opened();
        let mut shutdown = self.state.shutdown.clone();
        // Boxed and dropped once the client has initialised: idle connections keep no timer.
        let mut init_deadline = Some(Box::pin(tokio::time::sleep(
            self.state.config.ws_init_timeout,
        )));
        let ping_every = self.state.config.ws_ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Legacy `ka` messages, from the acknowledgement on; boxed, as only those
        // connections have it.
        let mut keep_alive: Option<Box<Interval>> = None;
        let mut last_heard = Instant::now();

        let end = loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break End::Close(1001, "server shutting down".into());
                    }
                }
                () = async { init_deadline.as_mut().expect("guarded").await },
                    if init_deadline.is_some() =>
                {
                    break End::Close(4408, "Connection initialisation timeout".into());
                }
                () = async { self.presence.as_mut().expect("guarded").access_changed().await },
                    if self.presence.is_some() =>
                {
                    if let Err(end) = Box::pin(self.recheck()).await {
                        break end;
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= ping_every * 2 {
                        tracing::debug!(client = %self.client, "dropping a silent WebSocket");
                        break End::Drop;
                    }
                    if self.token_expired() {
                        break End::Close(FORBIDDEN, format!("Forbidden: {TOKEN_EXPIRED}"));
                    }
                    let ping = self.socket.send(Message::Ping(Default::default()));
                    if Box::pin(ping).await.is_err() {
                        break End::Drop;
                    }
                }
                _ = async { keep_alive.as_mut().expect("guarded").tick().await },
                    if keep_alive.is_some() =>
                {
                    if let Err(end) = Box::pin(self.tell(Outgoing::KeepAlive)).await {
                        break end;
                    }
                }
                Some((id, item)) = self.operations.next(), if !self.operations.is_empty() => {
                    // Boxed: the idle connection's future stays small (see run's docs).
                    if let Err(end) = Box::pin(self.deliver(id, item)).await {
                        break end;
                    }
                }
                message = self.socket.recv() => {
                    last_heard = Instant::now();
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => {
                            break End::Close(4400, "Binary messages are not part of the protocol".into());
                        }
                        Some(Err(err)) if too_big(&err) => {
                            break End::Close(1009, "Message too big".into());
                        }
                        Some(Ok(Message::Close(frame))) => {
                            break End::ClosedByClient(
                                frame.map(|frame| (frame.code, frame.reason.as_str().to_owned())),
                            );
                        }
                        Some(Err(_)) | None => break End::Drop,
                    };
                    if let Err(end) = Box::pin(self.handle(&text)).await {
                        break end;
                    }
                    if self.init_received {
                        init_deadline = None;
                    }
                    if keep_alive.is_none() && self.caller.is_some() && self.protocol.keeps_alive() {
                        // The first `ka` went out with the acknowledgement.
                        let every = self.state.config.ws_keep_alive_interval;
                        let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
                        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        keep_alive = Some(Box::new(ticks));
                    }
                }
            }
        };
        if let End::Close(code, reason) = &end {
            Box::pin(close(self.socket, *code, reason)).await;
        }
        end
    }

    /// Acts on one client message; `Err` ends the connection.
    async fn handle(&mut self, text: &str) -> Result<(), End> {
        let message = self
            .protocol
            .decode(text)
            .map_err(|err| End::Close(4400, format!("Invalid message: {err}")))?;
        match message {
            Incoming::Init { payload } => self.init(payload.as_ref()).await,
            Incoming::Ping => self.tell(Outgoing::Pong).await,
            Incoming::Pong => Ok(()),
            Incoming::Subscribe { id, payload } => self.subscribe(id, payload).await,
            Incoming::Stop { id } => {
                self.operations.remove(&id);
                self.started.remove(&id);
                Ok(())
            }
            Incoming::Terminate => Err(End::Close(1000, String::new())),
        }
    }

    /// Authorizes the connection with the token in `connection_init`'s payload.
    async fn init(&mut self, payload: Option<&Value>) -> Result<(), End> {
        if self.init_received {
            return Err(End::Close(4429, "Too many initialisation requests".into()));
        }
        self.init_received = true;
        let refusal = match bearer_token(payload) {
            None => "Forbidden: no authorization in payload".to_owned(),
            Some(token) => match self.state.services.auth.authenticate_until(&token).await {
                Ok((caller, expires_at)) => {
                    self.expires_at = Some(expires_at);
                    if let Caller::Agent(principal) = &caller {
                        let presence = &self.state.services.presence;
                        self.presence = Some(presence.agent_connected(principal).await);
                    }
                    self.caller = Some(caller);
                    self.tell(Outgoing::Ack).await?;
                    // The legacy protocol's servers send the first keep-alive at once.
                    return self.tell(Outgoing::KeepAlive).await;
                }
                Err(err) => format!("Forbidden: {err}"),
            },
        };
        self.tell(Outgoing::InitRefused { message: &refusal })
            .await?;
        Err(End::Close(FORBIDDEN, refusal))
    }

    /// Reads an operation's payload (`subscribe`, or legacy `start`) into the request to run:
    /// both protocols' operations come through here. A payload that is not a GraphQL request
    /// closes the connection with 4400.
    fn read_operation(&self, payload: Value) -> Result<async_graphql::Request, End> {
        serde_json::from_value(payload)
            .map_err(|err| End::Close(4400, format!("Invalid message: {err}")))
    }

    async fn subscribe(&mut self, id: String, payload: Value) -> Result<(), End> {
        let mut request = self.read_operation(payload)?;
        if self.caller.is_none() {
            return Err(End::Close(UNAUTHORIZED, "Unauthorized".into()));
        }
        // Authorized as the session and the agent are now, exactly as over HTTP.
        self.recheck().await?;
        let Some(caller) = self.caller.clone() else {
            return Err(End::Close(UNAUTHORIZED, "Unauthorized".into()));
        };
        if self.operations.contains_key(&id) {
            if !self.protocol.replaces_running_ids() {
                return Err(End::Close(
                    4409,
                    format!("Subscriber for {id} already exists"),
                ));
            }
            self.operations.remove(&id);
            self.started.remove(&id);
        }
        let limit = self.state.config.ws_max_subscriptions;
        if self.operations.len() >= limit {
            let error = json!({
                "message": format!("at most {limit} operations may run on one connection"),
                "extensions": { "code": "LIMIT_EXCEEDED" },
            });
            return self
                .tell(Outgoing::Error {
                    id: &id,
                    errors: json!([error]),
                })
                .await;
        }
        match prepare_operation(&self.state, &mut request) {
            Ok(()) => {}
            Err(PayloadRefusal::Invalid(reason)) => return Err(End::Close(4400, reason)),
            Err(PayloadRefusal::Operation(error)) => {
                let errors = serde_json::to_value([error]).unwrap_or_default();
                return self.tell(Outgoing::Error { id: &id, errors }).await;
            }
        }
        let mut request = request
            .data(RequestAuth::from(caller))
            .data(ClientAddr(self.client))
            .data(self.origin.clone());
        if let Some(presence) = &self.presence {
            request = request.data::<LivePrincipal>(presence.rights());
        }
        let responses = self.state.schema.execute_stream(request);
        let operation = responses
            .map(|response| Some(Box::new(response)))
            .chain(stream::once(async { None }))
            .boxed();
        self.operations.insert(id, operation);
        Ok(())
    }

    /// Sends an operation's response, or its completion.
    async fn deliver(
        &mut self,
        id: String,
        item: Option<Box<async_graphql::Response>>,
    ) -> Result<(), End> {
        let Some(mut response) = item else {
            // Remove it now, so the client may reuse the id as soon as it sees `complete`.
            self.operations.remove(&id);
            self.started.remove(&id);
            return self.tell(Outgoing::Complete { id: &id }).await;
        };
        let codes = finalize_errors(&mut response);
        self.state.metrics.graphql_operation("websocket", &codes);
        let failed_before_start = !self.started.contains(&id)
            && !response.errors.is_empty()
            && response.data == async_graphql::Value::Null;
        if failed_before_start {
            // `error` ends the operation; no `complete` follows it.
            self.operations.remove(&id);
            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
            return self.tell(Outgoing::Error { id: &id, errors }).await;
        }
        self.started.insert(id.clone());
        let payload = serde_json::to_value(&response).unwrap_or_default();
        self.tell(Outgoing::Next { id: &id, payload }).await
    }

    /// Whether the access token the socket was opened with has expired.
    fn token_expired(&self) -> bool {
        self.expires_at
            .is_some_and(|expires_at| expires_at <= chrono::Utc::now())
    }

    /// Re-reads an agent's session and rights from the store: an ended session closes the
    /// socket with 4403; new rights apply to this socket's next operations (its streams re-read
    /// them themselves). A customer's visitor token has no session; only its expiry ends it.
    async fn recheck(&mut self) -> Result<(), End> {
        if self.token_expired() {
            return Err(End::Close(FORBIDDEN, format!("Forbidden: {TOKEN_EXPIRED}")));
        }
        let Some(Caller::Agent(current)) = &self.caller else {
            return Ok(());
        };
        match self.state.services.auth.revalidate(current).await {
            Ok(principal) => {
                self.caller = Some(Caller::Agent(principal));
                Ok(())
            }
            Err(Error::Unauthenticated(_)) => {
                tracing::info!(agent = %current.agent.id, "closing a WebSocket of an ended session");
                Err(End::Close(FORBIDDEN, format!("Forbidden: {SESSION_ENDED}")))
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not re-check a WebSocket's session");
                Err(End::Close(
                    1011,
                    "could not check the session; reconnect".into(),
                ))
            }
        }
    }

    /// Sends a message in the connection's protocol, unless the protocol has no such message.
    async fn tell(&mut self, message: Outgoing<'_>) -> Result<(), End> {
        match self.protocol.encode(message) {
            Some(message) => self.send(message).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), End> {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(|_| End::Drop)
    }
}

/// Why an operation's payload cannot run.
pub(super) enum PayloadRefusal {
    /// It is no operation at all (no query, nor a persisted query's hash): the protocol
    /// treats it as an invalid message, closing with 4400 and this reason.
    Invalid(String),
    /// Its persisted query cannot be used: answered as the operation's error, so Apollo's
    /// clients send the query's text.
    Operation(async_graphql::ServerError),
}

/// Checks an operation's payload (graphql-transport-ws `subscribe`, graphql-ws `start`) and
/// resolves its persisted query, as HTTP does.
pub(super) fn prepare_operation(
    state: &AppState,
    request: &mut async_graphql::Request,
) -> Result<(), PayloadRefusal> {
    if request.query.trim().is_empty() && !DocumentCache::is_persisted(request) {
        return Err(PayloadRefusal::Invalid(
            "Invalid message: the operation's payload has no query".into(),
        ));
    }
    state.documents.resolve(request).map_err(|err| {
        state
            .metrics
            .graphql_operation("websocket", &[err.code.to_owned()]);
        PayloadRefusal::Operation(err.into_server_error())
    })
}

/// Whether reading failed because the peer sent a message or frame over the size limit.
fn too_big(err: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        err.source()
            .and_then(|source| source.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// The token from `{"authorization": "Bearer …"}` (any capitalisation of the key; the
/// `Bearer ` prefix may be left out).
fn bearer_token(payload: Option<&Value>) -> Option<String> {
    let object = payload?.as_object()?;
    let value = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .and_then(|(_, value)| value.as_str())?;
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// Sends a close frame (reasons are cut to the 123 bytes a frame allows) and waits briefly for
/// the peer's answer, so the close is seen before the TCP connection goes.
async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(&reason[..end]),
    };
    if socket.send(Message::Close(Some(frame))).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(message)) = socket.recv().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of what an idle connection's task holds, whatever the compiler does with it.
    fn future_size<A, F: FnOnce(A) -> Fut, Fut>(_: F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// Every idle agent holds one of these for hours: 20,000 of them must fit in memory.
    /// (1,616 bytes when written; it was 2,648 before timers, pings, closes and responses
    /// were boxed.)
    #[test]
    fn an_idle_connection_stays_small() {
        let size = future_size(Connection::run);
        assert!(size <= 2048, "the connection's future grew to {size} bytes");
    }

    #[test]
    fn bearer_tokens_come_from_the_authorization_key() {
        assert_eq!(
            bearer_token(Some(&json!({"authorization": "Bearer abc"}))).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(Some(&json!({"Authorization": "abc"}))).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(Some(&json!({"authorization": "Bearer "}))),
            None
        );
        assert_eq!(bearer_token(Some(&json!({"token": "abc"}))), None);
        assert_eq!(bearer_token(Some(&json!("abc"))), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn the_newer_protocol_is_preferred_and_only_the_two_are_served() {
        let named = |name: &'static str| Protocol::named(&HeaderValue::from_static(name));
        assert_eq!(named("graphql-transport-ws"), Some(Protocol::TransportWs));
        assert_eq!(named("graphql-ws"), Some(Protocol::Legacy));
        assert_eq!(named("graphql-wss"), None);
        assert_eq!(
            [transport::PROTOCOL, legacy::PROTOCOL],
            ["graphql-transport-ws", "graphql-ws"],
            "the order `protocols` prefers them in"
        );
    }

    #[test]
    fn the_4406_reason_names_both_protocols_and_fits_a_close_frame() {
        let reason = subprotocol_not_acceptable();
        assert!(reason.contains("graphql-transport-ws"), "{reason}");
        assert!(reason.contains(" graphql-ws"), "{reason}");
        assert!(reason.len() <= 123);
    }
}
