//! The shared harness: `TestServer` starts the real server on 127.0.0.1:0 against a fresh
//! database, and clients for GraphQL over HTTP and WebSocket talk to it.

#![allow(dead_code)] // each test module uses a different part

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use switchboard::store::Database;
use switchboard::{App, Config};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "owner-password-1";
const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The base URL; each server gets a fresh database next to it.
    Postgres(String),
}

impl Backend {
    /// Postgres when SWITCHBOARD_TEST_POSTGRES_URL is set; otherwise the test is skipped with
    /// a note. CI sets it, so there Postgres tests fail rather than skip when Postgres is down.
    pub fn postgres() -> Option<Backend> {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                eprintln!("skipped: set {POSTGRES_URL_VAR} to run the Postgres suite");
                None
            }
        }
    }
}

/// Expands test functions `async fn name(backend: Backend)` into one test per backend, in
/// modules `sqlite` and `postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::support::Backend::postgres() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// A fresh Postgres database, dropped when this goes.
pub struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates a database next to `base_url`'s; returns it and its URL.
    pub async fn create(base_url: &str) -> (PostgresDatabase, String) {
        use sqlx::Connection;
        let name = format!("sb_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::PgConnection::connect(base_url)
            .await
            .unwrap_or_else(|err| panic!("Postgres at {POSTGRES_URL_VAR} is unreachable: {err}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let (prefix, _) = base_url.rsplit_once('/').expect("the URL names a database");
        let url = format!("{prefix}/{name}");
        (
            PostgresDatabase {
                admin_url: base_url.to_owned(),
                name,
            },
            url,
        )
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a plain thread with its own runtime may block.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    use sqlx::Connection;
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

/// A configuration for tests: ephemeral port, a known owner password, the given database.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.data_dir = data_dir.to_owned();
    config.bootstrap_owner_password = Some(OWNER_PASSWORD.into());
    config.jwt_secret = Some("test-secret-test-secret-test-secret!".into());
    // Every test customer comes from 127.0.0.1, the one address this cap is about; the tests
    // of the cap set it back.
    config.chat_starts_per_address_per_minute = 10_000;
    // Fake receivers listen on 127.0.0.1; the SSRF tests turn the guard back on.
    config.webhooks.allow_private_webhook_targets = true;
    config
}

/// The real server, listening on an ephemeral port.
pub struct TestServer {
    pub base_url: String,
    pub graphql_url: String,
    pub ws_url: String,
    pub store: Arc<dyn Database>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// What `start_again` starts with: the same database, port and configuration.
    config: Config,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    _postgres: Option<PostgresDatabase>,
}

impl TestServer {
    /// A server on SQLite with the test configuration.
    pub async fn start() -> TestServer {
        Self::start_with(Backend::Sqlite, |_| {}).await
    }

    /// A server on `backend`, after `configure` adjusted the configuration.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        let postgres = match backend {
            Backend::Sqlite => None,
            Backend::Postgres(base) => {
                let (database, url) = PostgresDatabase::create(&base).await;
                config.database_url = Some(url);
                config.database_max_connections = 10;
                Some(database)
            }
        };
        configure(&mut config);
        Self::launch(config, dir, postgres).await
    }

    /// Starts a server with `config` on a fresh port; `dir` and `postgres` live as long as it.
    async fn launch(
        config: Config,
        dir: tempfile::TempDir,
        postgres: Option<PostgresDatabase>,
    ) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (store, shutdown, task) = Self::run(config.clone(), listener).await;
        TestServer {
            base_url: format!("http://{addr}"),
            graphql_url: format!("http://{addr}/graphql"),
            ws_url: format!("ws://{addr}/graphql"),
            store,
            http: reqwest::Client::new(),
            shutdown: Some(shutdown),
            task: Some(task),
            config,
            addr,
            _dir: dir,
            _postgres: postgres,
        }
    }

    async fn run(
        config: Config,
        listener: tokio::net::TcpListener,
    ) -> (Arc<dyn Database>, oneshot::Sender<()>, JoinHandle<()>) {
        let app = App::start(config).await.expect("the server starts");
        let store = app.store.clone();
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let signal = async move {
                let _ = shutdown_rx.await;
            };
            app.serve(listener, signal).await.expect("the server runs");
        });
        (store, shutdown, task)
    }

    /// A second node of the same cluster: another server process on the same database and
    /// JWT secret, on its own port, sharing nothing else with this one (no in-process bus).
    /// Drop it before this one, which owns the database.
    pub async fn another_node(&self) -> TestServer {
        Self::launch(self.config.clone(), tempfile::tempdir().unwrap(), None).await
    }

    /// Starts the server again after `shut_down`: same database, same address, as after a
    /// deploy or a crash.
    pub async fn start_again(&mut self) {
        assert!(self.task.is_none(), "shut the server down first");
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("the old address is free again");
        let (store, shutdown, task) = Self::run(self.config.clone(), listener).await;
        self.store = store;
        self.shutdown = Some(shutdown);
        self.task = Some(task);
    }

    /// Starts a graceful shutdown and waits until the server has stopped.
    pub async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stops within 10 s")
                .unwrap();
        }
    }

    /// POSTs a GraphQL operation and returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(&self.graphql_url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            200,
            "GraphQL over application/json answers 200"
        );
        response.json().await.unwrap()
    }

    /// Runs an operation that must succeed and returns its `data`.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// Runs an operation that must fail and returns the first error's code.
    pub async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let body = self.gql(token, query, variables).await;
        error_code(&body)
    }

    /// Signs in and returns the whole AuthPayload.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let data = self
            .ok(
                None,
                "mutation($email: String!, $password: String!) {
                    login(input: {email: $email, password: $password}) {
                        accessToken refreshToken accessTokenExpiresAt
                        agent { id email name role routingStatus }
                    }
                }",
                json!({"email": email, "password": password}),
            )
            .await;
        data["login"].clone()
    }

    /// Signs the bootstrapped owner in and returns their access token.
    pub async fn owner_token(&self) -> String {
        self.login(OWNER_EMAIL, OWNER_PASSWORD).await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an agent as `admin_token` and returns their id.
    pub async fn create_agent(&self, admin_token: &str, email: &str, role: &str) -> String {
        let data = self
            .ok(
                Some(admin_token),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": "Test Agent", "password": "agent-password-1", "role": role}}),
            )
            .await;
        data["createAgent"]["id"].as_str().unwrap().to_owned()
    }

    /// Signs in an agent created by `create_agent` and returns their access token.
    /// Creates a group in the admin's organization; its id.
    pub async fn create_group(&self, admin_token: &str, name: &str) -> String {
        self.ok(
            Some(admin_token),
            "mutation($name: String!) { createGroup(input: {name: $name}) { id } }",
            json!({"name": name}),
        )
        .await["createGroup"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Signs up a second organization, "Rival Inc"; its owner's access token and agent id.
    pub async fn rival_organization(&self) -> (String, String) {
        let data = self
            .ok(
                None,
                "mutation { signUp(input: {organizationName: \"Rival Inc\", name: \"Rita Rival\",
                    email: \"rita@rival.test\", password: \"rival-password-1\"}) { accessToken agent { id } } }",
                json!({}),
            )
            .await;
        (
            data["signUp"]["accessToken"].as_str().unwrap().to_owned(),
            data["signUp"]["agent"]["id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn agent_token(&self, email: &str) -> String {
        self.login(email, "agent-password-1").await["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens a WebSocket speaking graphql-transport-ws (not yet initialised).
    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.ws_url, Some("graphql-transport-ws")).await
    }

    /// Opens a WebSocket speaking the legacy graphql-ws subprotocol of
    /// subscriptions-transport-ws (not yet initialised).
    pub async fn legacy_ws(&self) -> WsClient {
        let ws = WsClient::connect(&self.ws_url, Some("graphql-ws")).await;
        assert_eq!(ws.protocol.as_deref(), Some("graphql-ws"));
        ws
    }

    /// Opens a legacy graphql-ws WebSocket, completes connection_init with `token` and reads
    /// the `connection_ack` and the first `ka` that follows it.
    pub async fn legacy_ws_ready(&self, token: &str) -> WsClient {
        let mut ws = self.legacy_ws().await;
        ws.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
            .await;
        assert_eq!(ws.next().await, json!({"type": "connection_ack"}));
        assert_eq!(ws.next().await, json!({"type": "ka"}));
        ws
    }

    /// Opens a WebSocket and completes connection_init with `token`.
    pub async fn ws_ready(&self, token: &str) -> WsClient {
        let mut ws = self.ws().await;
        ws.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
            .await;
        assert_eq!(ws.next().await["type"], "connection_ack");
        ws
    }

    /// The server's Postgres database, when it runs on one: for tests that hold its locks
    /// from a connection of their own.
    pub fn postgres_url(&self) -> Option<&str> {
        self.config
            .database_url
            .as_deref()
            .filter(|url| url.starts_with("postgres"))
    }

    /// Runs one SQL statement on the server's database, for states the API cannot make (rows
    /// written by an older version).
    pub async fn execute_sql(&self, statement: &str) {
        match &self.config.database_url {
            Some(url) if url.starts_with("postgres") => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
            _ => {
                let path = self.config.data_dir.join("switchboard.db");
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap();
                conn.execute_batch(statement).unwrap();
            }
        }
    }

    /// Runs one query that returns one integer (a count) on the server's database.
    pub async fn query_scalar(&self, query: &str) -> i64 {
        match &self.config.database_url {
            Some(url) if url.starts_with("postgres") => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar::<_, i64>(query)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            _ => {
                let path = self.config.data_dir.join("switchboard.db");
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .unwrap();
                conn.query_row(query, [], |row| row.get(0)).unwrap()
            }
        }
    }

    /// Reads /metrics.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The first error's `extensions.code`, or a panic that shows the body.
pub fn error_code(body: &Value) -> String {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code, got {body}"))
        .to_owned()
}

/// A GraphQL-over-WebSocket client that checks what the server sends.
pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server agreed to in the handshake.
    pub protocol: Option<String>,
}

/// How long a test waits for a message it expects.
const WAIT: Duration = Duration::from_secs(5);

impl WsClient {
    /// Connects, offering `protocol` when given.
    pub async fn connect(url: &str, protocol: Option<&str>) -> WsClient {
        let mut request = url.into_client_request().unwrap();
        if let Some(protocol) = protocol {
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        }
        let (stream, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        let protocol = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .map(|value| value.to_str().unwrap().to_owned());
        WsClient { stream, protocol }
    }

    /// Connects with graphql-transport-ws as a page of `origin` would.
    pub async fn connect_from(url: &str, origin: &str) -> WsClient {
        let mut request = url.into_client_request().unwrap();
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        headers.insert("Origin", origin.parse().unwrap());
        let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        WsClient {
            stream,
            protocol: Some("graphql-transport-ws".into()),
        }
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.unwrap();
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.stream
            .send(Message::binary(bytes.to_vec()))
            .await
            .unwrap();
    }

    /// The next protocol message (pings are answered by tungstenite and skipped).
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a message within 5 s")
                .expect("the socket is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("the server closes within 5 s");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => return (1005, String::new()),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("the socket failed instead of closing: {err}"),
                None => panic!("the socket ended without a close frame"),
            }
        }
    }

    /// Reads for `duration` and returns the protocol messages that came (none expected, often).
    pub async fn quiet_for(&mut self, duration: Duration) -> Vec<Value> {
        let mut messages = Vec::new();
        let deadline = tokio::time::Instant::now() + duration;
        while let Ok(Some(Ok(message))) =
            tokio::time::timeout_at(deadline, self.stream.next()).await
        {
            if let Message::Text(text) = message {
                messages.push(serde_json::from_str(&text).unwrap());
            }
        }
        messages
    }

    /// The next protocol message within `wait`: `Ok(None)` when none came, `Err(())` when
    /// the connection ended (closed, reset, or its server killed).
    pub async fn next_or_gone(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        loop {
            match tokio::time::timeout(wait, self.stream.next()).await {
                Err(_) => return Ok(None),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return Err(()),
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(Some(serde_json::from_str(&text).unwrap()));
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Whether the connection has ended (closed or reset) when read now.
    pub async fn is_gone(&mut self) -> bool {
        loop {
            match tokio::time::timeout(WAIT, self.stream.next()).await {
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// The organization's widget key, read by an agent.
pub async fn widget_key(server: &TestServer, token: &str) -> String {
    server
        .ok(Some(token), "{ organization { widgetKey } }", json!({}))
        .await["organization"]["widgetKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts a visitor session and returns the visitor token.
pub async fn visitor(server: &TestServer, widget_key: &str, visitor_id: &str) -> String {
    let data = server
        .ok(
            None,
            "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token visitorId customer { id } } }",
            json!({"input": {"widgetKey": widget_key, "visitorId": visitor_id, "name": format!("Visitor {visitor_id}"),
                   "email": format!("{visitor_id}@customer.test"), "pageUrl": "https://shop.test/pricing", "pageTitle": "Pricing"}}),
        )
        .await;
    data["startVisitorSession"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A customer starts a chat; returns the chat's id and status.
pub async fn start_chat(server: &TestServer, visitor: &str, message: &str) -> (String, String) {
    let data = server
        .ok(
            Some(visitor),
            "mutation($m: String!) { startChat(input: {message: $m}) { id status } }",
            json!({"m": message}),
        )
        .await;
    (
        data["startChat"]["id"].as_str().unwrap().to_owned(),
        data["startChat"]["status"].as_str().unwrap().to_owned(),
    )
}

/// Opens an agentEvents subscription (id "events") on a ready socket.
///
/// Without `since` the stream starts at the agent's latest event as of this call, read with
/// `agentEventsCursor` the way the SDK does it: graphql-transport-ws does not say when a
/// subscription is live, so one that starts "from now" would miss whatever another
/// connection does before the server has set it up.
pub async fn agent_events(server: &TestServer, token: &str, since: Option<&str>) -> WsClient {
    let since = match since {
        Some(since) => since.to_owned(),
        None => server
            .ok(Some(token), "{ agentEventsCursor }", json!({}))
            .await["agentEventsCursor"]
            .as_str()
            .expect("a cursor")
            .to_owned(),
    };
    let mut ws = server.ws_ready(token).await;
    ws.send(json!({"id": "events", "type": "subscribe", "payload": {
        "query": AGENT_EVENTS, "variables": {"since": since}}}))
        .await;
    ws
}

/// Opens a chatEvents subscription (id "chat") on a ready socket.
pub async fn chat_events(
    server: &TestServer,
    token: &str,
    chat_id: &str,
    since: Option<&str>,
) -> WsClient {
    let mut ws = server.ws_ready(token).await;
    ws.send(json!({"id": "chat", "type": "subscribe", "payload": {
        "query": CHAT_EVENTS, "variables": {"chatId": chat_id, "since": since}}}))
        .await;
    ws
}

pub const AGENT_EVENTS: &str = "subscription($since: String) { agentEvents(since: $since) {
    __typename cursor
    ... on ChatAssigned { chat { id } reason }
    ... on ChatTransferred { chat { id } note reason fromAgent { id } toAgent { id } }
    ... on MessageAdded { chat { id } message { id text clientId author kind } }
    ... on TypingChanged { chat { id } isTyping draft author authorId }
    ... on ChatQueued { chat { id } queueLength }
    ... on QueueChanged { queueLength }
    ... on ChatClosed { chat { id } }
    ... on AttentionChanged { chat { id } attention }
    ... on RoutingStatusChanged { routingStatus }
    ... on OfflineMessageReceived { offlineMessage { id name email text groupId createdAt handled } }
} }";

pub const CHAT_EVENTS: &str =
    "subscription($chatId: ID!, $since: String) { chatEvents(chatId: $chatId, since: $since) {
    __typename cursor
    ... on MessageAdded { message { id text author kind visibility } }
    ... on TypingChanged { isTyping draft author authorId }
    ... on QueuePositionChanged { position estimatedWaitSeconds }
    ... on ChatClosed { message { text } }
} }";

impl WsClient {
    /// The payload of the next `next` message of a subscription, skipping other events until
    /// one of `typename` arrives.
    pub async fn next_event(&mut self, typename: &str) -> Value {
        loop {
            let message = self.next().await;
            assert_eq!(message["type"], "next", "expected an event, got {message}");
            let data = message["payload"]["data"]
                .as_object()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone();
            if data["__typename"] == typename {
                return data;
            }
        }
    }

    /// The next event, whatever it is.
    pub async fn any_event(&mut self) -> Value {
        let message = self.next().await;
        assert_eq!(message["type"], "next", "expected an event, got {message}");
        message["payload"]["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone()
    }
}
