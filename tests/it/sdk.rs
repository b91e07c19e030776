//! The mobile SDK (switchboard-sdk) against the real server: sign-in and sessions, token
//! refresh, the event stream across a server restart, the outbox across a server outage
//! and an app restart, and canned responses.

use crate::support::Backend;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use switchboard_sdk::{
    AgentEvent, AuthorKind, CannedResponseInput, CannedResponseScope, Client, ClientConfig,
    ConnectionState, ErrorCode, EventListener, MessageKind, OutgoingMessage, OutgoingState,
    RoutingStatus, SdkError, Session, SessionStore, Visitor, VisitorState, VisitorsListener,
};
use tokio::sync::mpsc;

use crate::support::{OWNER_EMAIL, OWNER_PASSWORD, TestServer, start_chat, visitor, widget_key};

const WAIT: Duration = Duration::from_secs(20);

/// The app's keychain: every session the SDK handed over, and whether it was cleared.
#[derive(Default)]
struct Keychain {
    saved: Mutex<Vec<Session>>,
    cleared: Mutex<u32>,
}

impl Keychain {
    fn last(&self) -> Option<Session> {
        self.saved.lock().unwrap().last().cloned()
    }
}

struct SharedKeychain(Arc<Keychain>);

impl SessionStore for SharedKeychain {
    fn save(&self, session: Session) {
        self.0.saved.lock().unwrap().push(session);
    }

    fn clear(&self) {
        *self.0.cleared.lock().unwrap() += 1;
    }
}

/// What a listener heard, as channels a test can wait on.
struct Heard {
    events: mpsc::UnboundedReceiver<AgentEvent>,
    states: mpsc::UnboundedReceiver<ConnectionState>,
    outgoing: mpsc::UnboundedReceiver<OutgoingMessage>,
}

struct Recorder {
    events: mpsc::UnboundedSender<AgentEvent>,
    states: mpsc::UnboundedSender<ConnectionState>,
    outgoing: mpsc::UnboundedSender<OutgoingMessage>,
}

impl EventListener for Recorder {
    fn on_event(&self, event: AgentEvent) {
        let _ = self.events.send(event);
    }

    fn on_connection_state(&self, state: ConnectionState) {
        let _ = self.states.send(state);
    }

    fn on_outgoing_message(&self, message: OutgoingMessage) {
        let _ = self.outgoing.send(message);
    }
}

fn recorder() -> (Box<Recorder>, Heard) {
    let (events, events_rx) = mpsc::unbounded_channel();
    let (states, states_rx) = mpsc::unbounded_channel();
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    (
        Box::new(Recorder {
            events,
            states,
            outgoing,
        }),
        Heard {
            events: events_rx,
            states: states_rx,
            outgoing: outgoing_rx,
        },
    )
}

impl Heard {
    async fn state(&mut self, wanted: impl Fn(&ConnectionState) -> bool) -> ConnectionState {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let state = tokio::time::timeout_at(deadline, self.states.recv())
                .await
                .expect("the stream reaches the state in time")
                .expect("the stream is running");
            if wanted(&state) {
                return state;
            }
        }
    }

    async fn connected(&mut self) {
        self.state(|s| *s == ConnectionState::Connected).await;
    }

    /// The next event that `wanted` picks, skipping the others.
    async fn event(&mut self, wanted: impl Fn(&AgentEvent) -> bool) -> AgentEvent {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("the event arrives in time")
                .expect("the stream is running");
            if wanted(&event) {
                return event;
            }
        }
    }

    async fn outgoing(&mut self) -> OutgoingMessage {
        tokio::time::timeout(WAIT, self.outgoing.recv())
            .await
            .expect("the outbox reports in time")
            .expect("the listener is registered")
    }
}

fn client(server_url: &str, dir: &std::path::Path, keychain: &Arc<Keychain>) -> Arc<Client> {
    Client::new(
        ClientConfig {
            server_url: server_url.to_owned(),
            data_dir: dir.to_string_lossy().into_owned(),
        },
        Box::new(SharedKeychain(keychain.clone())),
    )
    .expect("a client for a valid URL")
}

/// The API's `extensions.code` for the refusals these tests expect, from the SDK's variant.
pub(crate) fn code(err: SdkError) -> &'static str {
    match err {
        SdkError::NotFound { .. } => "NOT_FOUND",
        SdkError::BadInput { .. } => "BAD_USER_INPUT",
        SdkError::Conflict { .. } => "CONFLICT",
        SdkError::Forbidden { .. } => "FORBIDDEN",
        SdkError::EmailNotConfigured { .. } => "EMAIL_NOT_CONFIGURED",
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The owner signed in through the SDK with a live stream, and the organization's widget key.
pub(crate) struct Signedin {
    pub(crate) key: String,
    pub(crate) dir: tempfile::TempDir,
    keychain: Arc<Keychain>,
    pub(crate) app: Arc<Client>,
    pub(crate) stream: Arc<switchboard_sdk::TaskHandle>,
    heard: Heard,
}

impl Signedin {
    pub(crate) async fn owner(server: &TestServer) -> Signedin {
        let owner = server.owner_token().await;
        let key = widget_key(server, &owner).await;
        let dir = tempfile::tempdir().unwrap();
        let keychain = Arc::new(Keychain::default());
        let app = client(&server.base_url, dir.path(), &keychain);
        app.login(OWNER_EMAIL.into(), OWNER_PASSWORD.into())
            .await
            .unwrap();
        let (listener, mut heard) = recorder();
        let stream = app.subscribe(listener);
        heard.connected().await;
        Signedin {
            key,
            dir,
            keychain,
            app,
            stream,
            heard,
        }
    }
}

/// The customer writes in their chat.
async fn say(server: &TestServer, customer: &str, chat_id: &str, text: &str) {
    server
        .ok(
            Some(customer),
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
            json!({"c": chat_id, "t": text}),
        )
        .await;
}

/// The texts of the customer's messages in a chat's transcript, as the customer reads it.
async fn transcript(server: &TestServer, visitor: &str, chat_id: &str) -> Vec<(String, Value)> {
    let data = server
        .ok(
            Some(visitor),
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { kind text clientId } } } }",
            json!({"id": chat_id}),
        )
        .await;
    data["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["kind"] == "MESSAGE")
        .map(|item| {
            (
                item["text"].as_str().unwrap().to_owned(),
                item["clientId"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_operations_restore_and_logout() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(Keychain::default());
    let app = client(&server.base_url, dir.path(), &keychain);

    // Bad input gets errors an app can act on.
    let wrong = app
        .login(OWNER_EMAIL.into(), "not-the-password".into())
        .await;
    assert!(
        matches!(wrong, Err(SdkError::Unauthenticated { .. })),
        "{wrong:?}"
    );
    assert!(matches!(
        app.me().await,
        Err(SdkError::Unauthenticated { .. })
    ));
    assert!(matches!(
        app.send_message("chat".into(), "hi".into()),
        Err(SdkError::Unauthenticated { .. })
    ));

    let agent = app
        .login(OWNER_EMAIL.into(), OWNER_PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(agent.email, OWNER_EMAIL);
    let session = keychain.last().expect("the session went to the keychain");
    assert_eq!(session.agent_id, agent.id);
    assert_eq!(app.session(), Some(session.clone()));

    assert!(app.my_chats().await.unwrap().is_empty());
    assert!(app.queue().await.unwrap().is_empty());
    let changed = app
        .set_routing_status(RoutingStatus::NotAcceptingChats)
        .await
        .unwrap();
    assert_eq!(changed.routing_status, RoutingStatus::NotAcceptingChats);
    assert_eq!(
        code(app.chat("no-such-chat".into(), None, 20).await.unwrap_err()),
        "NOT_FOUND"
    );
    assert_eq!(
        code(app.chat("x".into(), None, 0).await.unwrap_err()),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(app.send_message("chat".into(), " ".into()).unwrap_err()),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            app.send_message("chat".into(), "x".repeat(4001))
                .unwrap_err()
        ),
        "BAD_USER_INPUT"
    );
    assert!(app.groups().await.unwrap().is_empty());
    let preferences = app.notification_preferences().await.unwrap();
    assert_eq!(preferences.len(), 6, "every kind of push: {preferences:?}");

    // The app starts again with the session from its keychain, before any network call.
    let restarted = client(&server.base_url, dir.path(), &keychain);
    restarted.restore(session);
    assert_eq!(restarted.me().await.unwrap().id, agent.id);

    let (listener, mut heard) = recorder();
    let stream = restarted.subscribe(listener);
    heard.connected().await;

    restarted.logout().await.unwrap();
    assert_eq!(*keychain.cleared.lock().unwrap(), 1);
    // The open stream hears of it and stops.
    heard.state(|s| *s == ConnectionState::SignedOut).await;
    tokio::time::timeout(WAIT, async {
        while !stream.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the stream stops after SIGNED_OUT");
    assert_eq!(restarted.session(), None);
    // The server ended the session: the first client's tokens stop working too.
    assert!(matches!(
        app.me().await,
        Err(SdkError::Unauthenticated { .. })
    ));

    // Nothing listens on port 1; a URL that is not one is refused before any request.
    let unreachable = client("http://127.0.0.1:1", dir.path(), &keychain);
    assert!(matches!(
        unreachable
            .login(OWNER_EMAIL.into(), OWNER_PASSWORD.into())
            .await,
        Err(SdkError::Network { .. })
    ));
    let bad_url = Client::new(
        ClientConfig {
            server_url: "chat.example.com".into(),
            data_dir: dir.path().to_string_lossy().into_owned(),
        },
        Box::new(SharedKeychain(keychain.clone())),
    );
    assert_eq!(code(bad_url.err().unwrap()), "BAD_USER_INPUT");
}

async fn expired_access_tokens_are_refreshed_transparently(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.access_token_ttl = Duration::from_secs(1);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let keychain = Arc::new(Keychain::default());
    let app = client(&server.base_url, dir.path(), &keychain);
    app.login(OWNER_EMAIL.into(), OWNER_PASSWORD.into())
        .await
        .unwrap();
    let first = keychain.last().unwrap();
    // Expiry is in whole seconds: a 1 s token is good for up to 2 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // The SDK sees the token is about to expire and refreshes before the request.
    app.me().await.unwrap();
    let second = keychain.last().unwrap();
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "a new refresh token was kept"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;

    // A phone whose clock is wrong thinks its expired token is good for an hour: the server
    // answers UNAUTHENTICATED, and the SDK refreshes and sends the request again.
    let skewed = client(&server.base_url, dir.path(), &keychain);
    skewed.restore(Session {
        access_token_expires_at: SystemTime::now() + Duration::from_secs(3600),
        ..second.clone()
    });
    assert_eq!(skewed.me().await.unwrap().id, second.agent_id);
    let third = keychain.last().unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);

    // The event stream connects with a fresh token too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (listener, mut heard) = recorder();
    let _stream = skewed.subscribe(listener);
    heard.connected().await;

    // A refresh token used twice ends the session: the SDK reports it and clears it.
    let replayed = client(&server.base_url, dir.path(), &keychain);
    replayed.restore(Session {
        access_token_expires_at: SystemTime::UNIX_EPOCH,
        ..second
    });
    assert!(matches!(
        replayed.me().await,
        Err(SdkError::Unauthenticated { .. })
    ));
    assert_eq!(replayed.session(), None);
    assert!(*keychain.cleared.lock().unwrap() >= 1);
}

async fn the_stream_signs_out_at_once_when_the_server_ends_the_session(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut signed = Signedin::owner(&server).await;
    // The owner changes the password from another app: every other session ends, this one
    // included, and the stream says so without waiting for the app's next call.
    let desk = server.owner_token().await;
    let started = std::time::Instant::now();
    server
        .ok(
            Some(&desk),
            "mutation($p: String!) { changePassword(input: {currentPassword: $p, newPassword: \"another-password-9\"}) }",
            json!({"p": OWNER_PASSWORD}),
        )
        .await;
    signed
        .heard
        .state(|s| *s == ConnectionState::SignedOut)
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "signed out after {:?}",
        started.elapsed()
    );
    assert_eq!(signed.app.session(), None);
    assert!(*signed.keychain.cleared.lock().unwrap() >= 1);
}

async fn a_token_expiring_on_an_open_stream_is_refreshed_and_the_stream_goes_on(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.access_token_ttl = Duration::from_secs(1);
        // Expiry is checked at each ping.
        config.ws_ping_interval = Duration::from_millis(250);
    })
    .await;
    let mut signed = Signedin::owner(&server).await;
    let first = signed.keychain.last().unwrap();
    // The server closes the socket whenever the token expires; each time the SDK refreshes
    // and reconnects at once, never signing out nor backing off as from a refusal.
    let mut reconnections = 0;
    while reconnections < 3 {
        match signed.heard.state(|_| true).await {
            ConnectionState::Connected => reconnections += 1,
            ConnectionState::Connecting => {}
            other => panic!("an expiring token led to {other:?}"),
        }
    }
    assert_ne!(
        signed.keychain.last().unwrap().access_token,
        first.access_token
    );
    let customer = visitor(&server, &signed.key, "expiry-visitor").await;
    let (chat_id, _) = start_chat(&server, &customer, "still there?").await;
    signed
        .heard
        .event(|e| matches!(e, AgentEvent::ChatAssigned { chat, .. } if chat.id == chat_id))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_survives_a_server_restart_without_losing_or_repeating_events() {
    let mut server = TestServer::start().await;
    let Signedin {
        key,
        dir: _dir,
        keychain: _,
        app: _app,
        stream,
        mut heard,
    } = Signedin::owner(&server).await;

    let customer = visitor(&server, &key, "restart-visitor").await;
    let (chat_id, status) = start_chat(&server, &customer, "m1").await;
    assert_eq!(status, "ACTIVE");
    let mut seen = Vec::new();
    loop {
        let event = heard.event(|_| true).await;
        // The opening message comes with the assignment, as the chat's last message.
        let assigned = matches!(&event, AgentEvent::ChatAssigned { chat, .. }
            if chat.id == chat_id
                && chat.customer.name.as_deref() == Some("Visitor restart-visitor")
                && chat.last_message.as_ref().map(|m| m.text.as_str()) == Some("m1"));
        seen.push(event);
        if assigned {
            break;
        }
    }
    say(&server, &customer, &chat_id, "m2").await;

    // Every event the listener gets, in order, until the customer's message `last`.
    async fn until(heard: &mut Heard, last: &str, seen: &mut Vec<AgentEvent>) {
        loop {
            let event = heard.event(|_| true).await;
            let done =
                matches!(&event, AgentEvent::MessageAdded { message, .. } if message.text == last);
            seen.push(event);
            if done {
                return;
            }
        }
    }
    until(&mut heard, "m2", &mut seen).await;

    server.shut_down().await;
    heard
        .state(|s| matches!(s, ConnectionState::WaitingForNetwork { .. }))
        .await;
    server.start_again().await;
    // Written before the app is back: replayed from its cursor when it reconnects.
    say(&server, &customer, &chat_id, "m3").await;
    say(&server, &customer, &chat_id, "m4").await;
    heard.connected().await;
    say(&server, &customer, &chat_id, "m5").await;
    until(&mut heard, "m5", &mut seen).await;

    let customer_texts: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            AgentEvent::MessageAdded { message, .. }
                if message.kind == MessageKind::Message
                    && message.author == AuthorKind::Customer =>
            {
                Some(message.text.as_str())
            }
            _ => None,
        })
        .collect();
    // m1 opened the chat: the agent reads it in ChatAssigned's transcript, not as an event.
    assert_eq!(customer_texts, ["m2", "m3", "m4", "m5"], "{seen:#?}");
    let cursors: Vec<u64> = seen
        .iter()
        .filter_map(|e| e.cursor())
        .map(|c| c.parse().unwrap())
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[0] < w[1]),
        "each event once, in order: {cursors:?}"
    );

    // Dropping the handle stops the stream.
    drop(stream);
    say(&server, &customer, &chat_id, "m6").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        heard.events.try_recv().is_err(),
        "no events after the handle is dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_the_server_is_down_is_delivered_once_when_it_returns() {
    let mut server = TestServer::start().await;
    let Signedin {
        key,
        dir,
        keychain,
        app,
        stream,
        mut heard,
    } = Signedin::owner(&server).await;
    let customer = visitor(&server, &key, "outage-visitor").await;
    let (chat_id, _) = start_chat(&server, &customer, "Is anyone there?").await;

    // Online: PENDING at once, then SENT with the transcript entry.
    let online = app
        .send_message(chat_id.clone(), "Yes, how can I help?".into())
        .unwrap();
    assert_eq!(online.state, OutgoingState::Pending);
    let sent = heard.outgoing().await;
    assert_eq!(sent.state, OutgoingState::Sent);
    assert_eq!(sent.client_id, online.client_id);
    assert_eq!(
        sent.message.as_ref().unwrap().client_id.as_deref(),
        Some(online.client_id.as_str())
    );

    // A chat that does not exist is refused for good, and does not hold up later messages.
    let doomed = app
        .send_message("no-such-chat".into(), "lost".into())
        .unwrap();
    let failed = heard.outgoing().await;
    assert_eq!(failed.client_id, doomed.client_id);
    assert_eq!(failed.state, OutgoingState::Failed);
    assert_eq!(failed.error_code, Some(ErrorCode::NotFound));
    app.discard_message(doomed.client_id).unwrap();

    // The server goes down; the agent writes anyway, then the app is killed.
    server.shut_down().await;
    let offline = app
        .send_message(
            chat_id.clone(),
            "Sorry, my train went into a tunnel.".into(),
        )
        .unwrap();
    assert_eq!(offline.state, OutgoingState::Pending);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        app.outbox(),
        vec![offline.clone()],
        "still pending while down"
    );
    let session = app.session().unwrap();
    drop(stream);
    drop(app);

    // The app starts again (offline), then the server comes back.
    let app = client(&server.base_url, dir.path(), &keychain);
    app.restore(session);
    assert_eq!(
        app.outbox(),
        vec![offline.clone()],
        "the outbox survived the restart"
    );
    let (listener, mut heard) = recorder();
    let _stream = app.subscribe(listener);
    server.start_again().await;
    let delivered = heard.outgoing().await;
    assert_eq!(delivered.client_id, offline.client_id);
    assert_eq!(delivered.state, OutgoingState::Sent);
    assert!(app.outbox().is_empty());

    let client_id = Value::String(offline.client_id.clone());
    let texts = transcript(&server, &customer, &chat_id).await;
    let copies = texts.iter().filter(|(_, id)| *id == client_id).count();
    assert_eq!(copies, 1, "delivered exactly once: {texts:?}");
    assert_eq!(
        texts.last().map(|(text, _)| text.as_str()),
        Some("Sorry, my train went into a tunnel.")
    );

    // The chat screen opens at the end of the transcript and pages back to its start.
    let latest = app.chat_latest(chat_id.clone(), None, 1).await.unwrap();
    assert_eq!(latest.messages.len(), 1);
    assert_eq!(
        latest.messages[0].client_id,
        Some(offline.client_id.clone())
    );
    assert_eq!(latest.chat.last_message, Some(latest.messages[0].clone()));
    assert!(latest.has_more);
    let older = app
        .chat_latest(chat_id.clone(), latest.start_cursor.clone(), 100)
        .await
        .unwrap();
    assert!(!older.has_more);
    assert_eq!(older.messages[0].text, "Is anyone there?");
    let cursor = |c: &str| c.parse::<u64>().unwrap();
    assert!(
        cursor(&older.messages.last().unwrap().cursor)
            < cursor(latest.start_cursor.as_deref().unwrap()),
        "the older page ends before the latest one starts"
    );
    let from_start = app.chat(chat_id.clone(), None, 100).await.unwrap();
    assert_eq!(from_start.messages.len(), older.messages.len() + 1);
    assert_eq!(
        code(app.chat_latest(chat_id, None, 0).await.unwrap_err()),
        "BAD_USER_INPUT"
    );
}

async fn an_agents_day_through_the_sdk_typing_transfer_queue_close_and_push_settings(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let Signedin {
        key,
        dir: _dir,
        keychain: _,
        app,
        stream: _stream,
        mut heard,
    } = Signedin::owner(&server).await;
    let owner = server.owner_token().await;

    // A chat for the owner, the only agent so far.
    let ann = visitor(&server, &key, "day-ann").await;
    let (first, status) = start_chat(&server, &ann, "Hello").await;
    assert_eq!(status, "ACTIVE");
    app.set_typing(first.clone(), true).await.unwrap();
    assert_eq!(
        code(
            app.set_typing("no-such-chat".into(), true)
                .await
                .unwrap_err()
        ),
        "NOT_FOUND"
    );

    // The customer typing reaches the app with who it is.
    server
        .ok(
            Some(&ann),
            "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"Where is\"}) }",
            json!({"c": first}),
        )
        .await;
    let typing = heard
        .event(|e| matches!(e, AgentEvent::TypingChanged { .. }))
        .await;
    let customer_id = app
        .chat(first.clone(), None, 1)
        .await
        .unwrap()
        .chat
        .customer
        .id;
    let AgentEvent::TypingChanged {
        author,
        author_id,
        draft,
        ..
    } = typing
    else {
        unreachable!()
    };
    assert_eq!(author, switchboard_sdk::AuthorKind::Customer);
    assert_eq!(author_id, customer_id);
    assert_eq!(draft.as_deref(), Some("Where is"));

    // Bob joins, live, and the owner hands the chat over with a note.
    let bob_id = server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    let bob = server.agent_token("bob@example.com").await;
    let _bob_live = crate::support::agent_events(&server, &bob, None).await;
    let candidates = app.agents_for_transfer(first.clone()).await.unwrap();
    assert!(
        candidates.iter().any(|c| c.agent.id == bob_id),
        "{candidates:?}"
    );
    let moved = app
        .transfer_chat(
            first.clone(),
            switchboard_sdk::TransferTarget::Agent {
                agent_id: bob_id.clone(),
            },
            Some("Wants a refund".into()),
            false,
        )
        .await
        .unwrap();
    assert_eq!(moved.assignee.map(|a| a.id), Some(bob_id.clone()));
    let transferred = heard
        .event(|e| matches!(e, AgentEvent::ChatTransferred { .. }))
        .await;
    let AgentEvent::ChatTransferred {
        from_agent,
        to_agent,
        note,
        ..
    } = transferred
    else {
        unreachable!()
    };
    assert_eq!(
        from_agent.map(|a| a.name),
        Some(app.me().await.unwrap().name)
    );
    assert_eq!(to_agent.map(|a| a.id), Some(bob_id));
    assert_eq!(note.as_deref(), Some("Wants a refund"));
    assert_eq!(
        code(
            app.transfer_chat(
                "no-such-chat".into(),
                switchboard_sdk::TransferTarget::Group {
                    group_id: "no-such-group".into()
                },
                None,
                false
            )
            .await
            .unwrap_err()
        ),
        "NOT_FOUND"
    );

    // With a limit of one and Bob away, a second customer fills the owner and a third waits.
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {defaultChatLimit: 1}) { id } }",
            json!({}),
        )
        .await;
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let cy = visitor(&server, &key, "day-cy").await;
    assert_eq!(start_chat(&server, &cy, "Hi there").await.1, "ACTIVE");
    let dee = visitor(&server, &key, "day-dee").await;
    let (waiting, status) = start_chat(&server, &dee, "Anyone?").await;
    assert_eq!(status, "QUEUED");
    let queue = app.queue().await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].chat.id, waiting);
    assert_eq!(queue[0].position, 1);
    assert_eq!(
        queue[0].chat.last_message.as_ref().map(|m| m.text.as_str()),
        Some("Anyone?")
    );
    let taken = app.take_chat(waiting.clone()).await.unwrap();
    assert_eq!(taken.status, switchboard_sdk::ChatStatus::Active);
    assert_eq!(taken.unread_count, 1, "Dee's opening message is unread");
    assert_eq!(app.my_chats().await.unwrap().len(), 2);
    app.mark_chat_read(waiting.clone()).await.unwrap();
    let read = app.my_chats().await.unwrap();
    let read = read.iter().find(|c| c.id == waiting).unwrap();
    assert_eq!(read.unread_count, 0);
    assert_eq!(
        code(app.mark_chat_read("no-such-chat".into()).await.unwrap_err()),
        "NOT_FOUND"
    );

    // Closed: a message written afterwards fails for good, and retrying fails the same way.
    let closed = app.close_chat(waiting.clone()).await.unwrap();
    assert_eq!(closed.status, switchboard_sdk::ChatStatus::Closed);
    let late = app.send_message(waiting, "One more thing".into()).unwrap();
    let failed = heard.outgoing().await;
    assert_eq!(
        (failed.client_id.as_str(), failed.state),
        (late.client_id.as_str(), OutgoingState::Failed)
    );
    assert_eq!(failed.error_code, Some(ErrorCode::Conflict));
    assert_eq!(
        app.retry_message(late.client_id.clone()).unwrap().state,
        OutgoingState::Pending
    );
    let again = heard.outgoing().await;
    assert_eq!(again.state, OutgoingState::Failed);
    assert_eq!(app.outbox(), vec![again]);

    // The phone's push token, and which pushes the agent wants.
    let registration = switchboard_sdk::PushDeviceRegistration {
        platform: switchboard_sdk::Platform::Android,
        token: "fcm-token-1".into(),
        app_id: "dev.switchboard.agent".into(),
        environment: switchboard_sdk::PushEnvironment::Production,
        locale: Some("en".into()),
        device_name: Some("Pixel".into()),
        web_push: None,
    };
    let device = app
        .register_push_device(registration.clone())
        .await
        .unwrap();
    assert!(device.enabled);
    assert_eq!(device.token, "fcm-token-1");
    assert_eq!(
        code(
            app.register_push_device(switchboard_sdk::PushDeviceRegistration {
                token: String::new(),
                ..registration
            })
            .await
            .unwrap_err()
        ),
        "BAD_USER_INPUT"
    );
    assert!(
        app.unregister_push_device("fcm-token-1".into())
            .await
            .unwrap()
    );
    assert!(
        !app.unregister_push_device("fcm-token-1".into())
            .await
            .unwrap()
    );
    let off = switchboard_sdk::NotificationPreference {
        kind: switchboard_sdk::NotificationKind::NewMessage,
        enabled: false,
    };
    let updated = app.set_notification_preferences(vec![off]).await.unwrap();
    assert!(updated.contains(&off));
    assert!(app.notification_preferences().await.unwrap().contains(&off));
}

/// What a visitors watcher heard: every list it was given.
struct VisitorLists(mpsc::UnboundedSender<Vec<Visitor>>);

impl VisitorsListener for VisitorLists {
    fn on_visitors(&self, visitors: Vec<Visitor>) {
        let _ = self.0.send(visitors);
    }

    fn on_connection_state(&self, _state: ConnectionState) {}
}

/// The next list `wanted` picks, skipping the others.
async fn visitor_list(
    lists: &mut mpsc::UnboundedReceiver<Vec<Visitor>>,
    wanted: impl Fn(&[Visitor]) -> bool,
) -> Vec<Visitor> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let list = tokio::time::timeout_at(deadline, lists.recv())
            .await
            .expect("the list arrives in time")
            .expect("the watcher is running");
        if wanted(&list) {
            return list;
        }
    }
}

async fn an_agent_watches_the_visitors_on_the_site_and_greets_one_through_the_sdk(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, crate::visitors::quick).await;
    let signed = Signedin::owner(&server).await;
    let (lists, mut heard) = mpsc::unbounded_channel();
    let watcher = signed.app.watch_visitors(Box::new(VisitorLists(lists)));
    assert!(
        visitor_list(&mut heard, |list| list.is_empty())
            .await
            .is_empty(),
        "an empty site first"
    );

    let (token, customer_id) = crate::visitors::visitor_on(
        &server,
        &signed.key,
        "sdk-visitor",
        "https://shop.test/pricing",
    )
    .await;
    let mut page = crate::visitors::open_page(&server, &token).await;
    let list = visitor_list(&mut heard, |list| list.len() == 1).await;
    assert_eq!(list[0].customer_id, customer_id);
    assert_eq!(list[0].state, VisitorState::Browsing);
    assert_eq!(
        list[0].current_page.as_ref().map(|p| p.url.as_str()),
        Some("https://shop.test/pricing")
    );

    let greeting = signed
        .app
        .send_greeting(customer_id.clone(), "Hi, can I help with pricing?".into())
        .await
        .unwrap();
    assert_eq!(greeting.text, "Hi, can I help with pricing?");
    let shown = page.next().await;
    assert_eq!(
        shown["payload"]["data"]["visitorEvents"]["greeting"]["id"],
        greeting.id.as_str()
    );
    let list = visitor_list(&mut heard, |list| {
        list.first()
            .is_some_and(|v| v.state == VisitorState::Invited)
    })
    .await;
    assert_eq!(list[0].greeting.as_ref().map(|g| &g.id), Some(&greeting.id));
    let read = signed.app.visitors_on_site().await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].state, VisitorState::Invited);

    // A greeting to nobody on the site is refused with a code the app can switch on.
    let err = signed
        .app
        .send_greeting("no-such-customer".into(), "Hello".into())
        .await
        .unwrap_err();
    assert_eq!(code(err), "NOT_FOUND");

    drop(page);
    visitor_list(&mut heard, |list| list.is_empty()).await;
    watcher.cancel();
}

async fn an_agent_finds_renders_and_sends_a_canned_response_through_the_sdk(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    // The data directory (the outbox) and the stream (which reports it) stay open.
    let Signedin {
        key,
        dir: _dir,
        app,
        stream: _stream,
        mut heard,
        ..
    } = Signedin::owner(&server).await;
    let input = |shortcut: &str| CannedResponseInput {
        shortcut: shortcut.into(),
        title: "Shipping times".into(),
        text: "Hi {{customer.first_name}}, parcels leave within 2 days.".into(),
        scope: CannedResponseScope::Organization,
        group_id: None,
    };
    let created = app
        .create_canned_response(input("#Shipping"))
        .await
        .unwrap();
    assert_eq!(created.shortcut, "shipping");
    assert_eq!(created.scope, CannedResponseScope::Organization);
    assert_eq!(
        code(
            app.create_canned_response(input("shipping"))
                .await
                .unwrap_err()
        ),
        "CONFLICT"
    );
    assert_eq!(
        code(
            app.create_canned_response(input("two words"))
                .await
                .unwrap_err()
        ),
        "BAD_USER_INPUT"
    );
    let found = app.canned_responses(Some("#shi".into()), 8).await.unwrap();
    assert_eq!(found, vec![created.clone()]);
    assert_eq!(
        app.manageable_canned_responses(50).await.unwrap(),
        vec![created.clone()],
        "the owner may change it"
    );

    let customer = visitor(&server, &key, "canned-visitor").await;
    let (chat_id, _) = start_chat(&server, &customer, "When will it ship?").await;
    let text = app
        .render_canned_response(created.id.clone(), chat_id.clone())
        .await
        .unwrap();
    assert_eq!(text, "Hi Visitor, parcels leave within 2 days.");
    let pending = app
        .send_canned_response(chat_id.clone(), text.clone(), created.id.clone())
        .unwrap();
    assert_eq!(
        pending.canned_response_id.as_deref(),
        Some(created.id.as_str())
    );
    let sent = heard.outgoing().await;
    assert_eq!(sent.state, OutgoingState::Sent);
    assert_eq!(sent.message.unwrap().text, text);
    let counted = app.canned_responses(Some("ship".into()), 8).await.unwrap();
    assert_eq!(counted[0].usage_count, 1);

    let changed = app
        .update_canned_response(created.id.clone(), input("ship"))
        .await
        .unwrap();
    assert_eq!(
        (changed.shortcut.as_str(), changed.usage_count),
        ("ship", 1)
    );
    assert!(
        app.delete_canned_response(created.id.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        code(
            app.render_canned_response(created.id, chat_id)
                .await
                .unwrap_err()
        ),
        "NOT_FOUND"
    );
}

crate::on_both_backends!(
    an_agent_finds_renders_and_sends_a_canned_response_through_the_sdk,
    an_agent_watches_the_visitors_on_the_site_and_greets_one_through_the_sdk,
    expired_access_tokens_are_refreshed_transparently,
    the_stream_signs_out_at_once_when_the_server_ends_the_session,
    a_token_expiring_on_an_open_stream_is_refreshed_and_the_stream_goes_on,
    an_agents_day_through_the_sdk_typing_transfer_queue_close_and_push_settings,
);
