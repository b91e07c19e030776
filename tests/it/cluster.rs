//! Several server processes on one Postgres database and one NATS, as behind a load balancer:
//! live events cross nodes and arrive once; every node lists the visitors on the site whose
//! pages are on another, until that node dies; a node killed with SIGKILL under load loses
//! nothing its clients were told was done, and its clients resume on another node by cursor;
//! a node that cannot reach NATS at start says so in one line.
//!
//! The multi-node tests need SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_NATS_URL (CI
//! sets both) and are skipped with a note otherwise. Each cluster has a database and a NATS
//! subject prefix of its own, so tests running at once do not hear each other.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    AGENT_EVENTS, CHAT_EVENTS, OWNER_EMAIL, OWNER_PASSWORD, PostgresDatabase, WsClient,
};

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");
const NATS_URL_VAR: &str = "SWITCHBOARD_TEST_NATS_URL";
const POSTGRES_URL_VAR: &str = "SWITCHBOARD_TEST_POSTGRES_URL";
const AGENT_PASSWORD: &str = "agent-password-1";
const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const SEND: &str = "mutation($c: ID!, $t: String!, $k: String) {
    sendMessage(input: {chatId: $c, text: $t, clientId: $k}) { id text } }";

/// How long a test waits for an event it expects.
const WAIT: Duration = Duration::from_secs(10);

/// The Postgres and NATS URLs, or `None` with a note that the suite is skipped.
fn cluster_env() -> Option<(String, String)> {
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (read(POSTGRES_URL_VAR), read(NATS_URL_VAR)) {
        (Some(postgres), Some(nats)) => Some((postgres, nats)),
        _ => {
            eprintln!(
                "skipped: set {POSTGRES_URL_VAR} and {NATS_URL_VAR} to run the cluster suite"
            );
            None
        }
    }
}

/// What the nodes of one cluster share: a fresh database, the JWT secret, NATS and a subject
/// prefix of their own.
struct Cluster {
    env: Vec<(&'static str, String)>,
    _database: PostgresDatabase,
}

impl Cluster {
    async fn new(postgres: &str, nats: &str) -> Cluster {
        let (database, url) = PostgresDatabase::create(postgres).await;
        let prefix = format!("sbtest.{}", uuid::Uuid::now_v7().simple());
        Cluster {
            env: vec![
                ("DATABASE_URL", url),
                ("SWITCHBOARD_NATS_URL", nats.to_owned()),
                ("SWITCHBOARD_NATS_SUBJECT_PREFIX", prefix),
            ],
            _database: database,
        }
    }

    /// Every node started from now on has `name` set to `value`.
    fn with(mut self, name: &'static str, value: &str) -> Cluster {
        self.env.push((name, value.to_owned()));
        self
    }

    /// Starts one more node; it is listening when this returns.
    fn node(&self) -> Node {
        Node::start(&self.env)
    }
}

/// One server process on its own port and data directory.
struct Node {
    child: Child,
    endpoint: Endpoint,
    _dir: tempfile::TempDir,
}

/// Where a node answers: what clients need, cheap to hand to tasks.
#[derive(Clone)]
struct Endpoint {
    name: &'static str,
    graphql_url: String,
    ws_url: String,
    base_url: String,
    http: reqwest::Client,
}

impl Node {
    fn start(env: &[(&'static str, String)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(BINARY);
        command
            .env_clear()
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env(
                "SWITCHBOARD_JWT_SECRET",
                "cluster-secret-cluster-secret-cluster!",
            )
            .env("SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD", OWNER_PASSWORD)
            .env("SWITCHBOARD_DEMO", "false")
            .env("SWITCHBOARD_CHAT_STARTS_PER_ADDRESS_PER_MINUTE", "100000")
            .env("SWITCHBOARD_CUSTOMER_MESSAGES_PER_MINUTE", "100000")
            .env("SWITCHBOARD_CUSTOMER_TYPING_PER_MINUTE", "100000")
            .env("SWITCHBOARD_CUSTOMER_ACTIONS_PER_MINUTE", "100000")
            .env("SWITCHBOARD_VISITOR_SESSIONS_PER_MINUTE", "100000")
            .env("SWITCHBOARD_DATABASE_MAX_CONNECTIONS", "8")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        // Reads stdout to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("Switchboard is listening on http://") {
                    let _ = sender.send(address.trim_end_matches("/graphql").to_owned());
                }
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the node says where it listens within 30 s");
        Node {
            child,
            endpoint: Endpoint {
                name: "node",
                graphql_url: format!("http://{address}/graphql"),
                ws_url: format!("ws://{address}/graphql"),
                base_url: format!("http://{address}"),
                http: reqwest::Client::new(),
            },
            _dir: dir,
        }
    }

    fn named(mut self, name: &'static str) -> Node {
        self.endpoint.name = name;
        self
    }

    /// SIGKILL: no shutdown, no goodbye to anyone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl std::ops::Deref for Node {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.endpoint
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Endpoint {
    /// A GraphQL operation's whole response, or the transport's error (a node that is gone).
    async fn try_gql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Result<Value, reqwest::Error> {
        let mut request = self
            .http
            .post(&self.graphql_url)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await?.json().await
    }

    /// An operation that must succeed; its `data`.
    async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self
            .try_gql(token, query, variables)
            .await
            .unwrap_or_else(|err| panic!("{} does not answer: {err}", self.name));
        assert!(body.get("errors").is_none(), "{}: {body}", self.name);
        body["data"].clone()
    }

    async fn login(&self, email: &str, password: &str) -> String {
        self.ok(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            json!({"e": email, "p": password}),
        )
        .await["login"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn create_agent(&self, owner: &str, email: &str, limit: i64) -> String {
        self.ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": email, "password": AGENT_PASSWORD, "chatLimit": limit}}),
        )
        .await["createAgent"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn widget_key(&self, token: &str) -> String {
        self.ok(Some(token), "{ organization { widgetKey } }", json!({}))
            .await["organization"]["widgetKey"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn visitor(&self, key: &str, visitor_id: &str) -> String {
        self.visitor_session(key, visitor_id).await.0
    }

    /// A visitor session on https://shop.test/: the visitor token and the customer id.
    async fn visitor_session(&self, key: &str, visitor_id: &str) -> (String, String) {
        let data = self
            .ok(
                None,
                "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token customer { id } } }",
                json!({"input": {"widgetKey": key, "visitorId": visitor_id, "name": visitor_id,
                       "email": format!("{visitor_id}@customer.test"), "pageUrl": "https://shop.test/", "pageTitle": "Shop"}}),
            )
            .await;
        let session = &data["startVisitorSession"];
        (
            session["token"].as_str().unwrap().to_owned(),
            session["customer"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// The customer starts a chat; its id and status.
    async fn start_chat(&self, customer: &str, text: &str) -> (String, String) {
        let data = self
            .ok(
                Some(customer),
                "mutation($m: String!) { startChat(input: {message: $m}) { id status } }",
                json!({"m": text}),
            )
            .await;
        (
            data["startChat"]["id"].as_str().unwrap().to_owned(),
            data["startChat"]["status"].as_str().unwrap().to_owned(),
        )
    }

    async fn agent_cursor(&self, token: &str) -> String {
        self.ok(Some(token), "{ agentEventsCursor }", json!({}))
            .await["agentEventsCursor"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens a subscription on a socket of this node.
    async fn subscribe(&self, token: &str, query: &str, variables: Value) -> WsClient {
        let mut ws = WsClient::connect(&self.ws_url, Some("graphql-transport-ws")).await;
        ws.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
            .await;
        assert_eq!(ws.next().await["type"], "connection_ack");
        ws.send(json!({"id": "s", "type": "subscribe", "payload": {"query": query, "variables": variables}}))
            .await;
        ws
    }

    /// The agent's events from `since` (exclusive).
    async fn agent_events(&self, token: &str, since: &str) -> Recorded {
        Recorded::new(
            self.subscribe(token, AGENT_EVENTS, json!({"since": since}))
                .await,
        )
    }

    /// A chat's events from `since` (exclusive), or from its start.
    async fn chat_events(&self, token: &str, chat_id: &str, since: Option<&str>) -> Recorded {
        Recorded::new(
            self.subscribe(
                token,
                CHAT_EVENTS,
                json!({"chatId": chat_id, "since": since}),
            )
            .await,
        )
    }
}

/// A subscription whose every event is kept, to show at the end that none came twice.
struct Recorded {
    ws: WsClient,
    events: Vec<Value>,
    /// Events before this were looked at by `until`.
    read: usize,
}

/// Events that are not stored: they carry the cursor of the last stored one, so theirs repeat.
fn ephemeral(event: &Value) -> bool {
    matches!(
        event["__typename"].as_str(),
        Some("TypingChanged" | "QueueChanged" | "QueuePositionChanged" | "ChatQueued")
    )
}

impl Recorded {
    fn new(ws: WsClient) -> Recorded {
        Recorded {
            ws,
            events: Vec::new(),
            read: 0,
        }
    }

    /// Keeps one protocol message; an error or a completed subscription fails the test.
    fn keep(&mut self, message: Value) {
        assert_eq!(message["type"], "next", "expected an event, got {message}");
        let event = message["payload"]["data"]
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .clone();
        self.events.push(event);
    }

    /// The first event after those already looked at that is a `typename` and `matches`.
    async fn until(&mut self, typename: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            while self.read < self.events.len() {
                let event = &self.events[self.read];
                self.read += 1;
                if event["__typename"] == typename && matches(event) {
                    return event.clone();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ws.next_or_gone(left).await {
                Ok(Some(message)) => self.keep(message),
                Ok(None) => panic!("no {typename} within {WAIT:?}; got {:#?}", &self.events),
                Err(()) => panic!("the socket ended while waiting for {typename}"),
            }
        }
    }

    /// Reads until nothing more comes for a second: whatever was still on its way.
    async fn settle(&mut self) {
        while let Ok(Some(message)) = self.ws.next_or_gone(Duration::from_secs(1)).await {
            self.keep(message);
        }
    }

    /// Every stored event came once: no cursor twice.
    fn assert_once(&self, who: &str) {
        let mut cursors = HashSet::new();
        for event in self.events.iter().filter(|e| !ephemeral(e)) {
            assert!(
                cursors.insert(event["cursor"].as_str().unwrap().to_owned()),
                "{who} got {event} twice: {:#?}",
                self.events
            );
        }
    }

    fn count(&self, matches: impl Fn(&Value) -> bool) -> usize {
        self.events.iter().filter(|e| matches(e)).count()
    }
}

/// A customer on node B and agents on nodes A and C complete the seed's scenario; every live
/// event crosses the nodes and arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_and_agents_on_three_nodes_complete_the_seed_scenario() {
    let Some((postgres, nats)) = cluster_env() else {
        return;
    };
    let cluster = Cluster::new(&postgres, &nats).await;
    let a = cluster.node().named("node A");
    let b = cluster.node().named("node B");
    let c = cluster.node().named("node C");

    let owner = a.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    a.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let ada_id = a.create_agent(&owner, "ada@example.com", 3).await;
    let cyd_id = a.create_agent(&owner, "cyd@example.com", 3).await;
    // Ada works on node A; Cyd signs in on node C only when the chat is Ada's.
    let ada = a.login("ada@example.com", AGENT_PASSWORD).await;
    let mut ada_feed = a.agent_events(&ada, &a.agent_cursor(&ada).await).await;

    // The customer is on node B.
    let key = a.widget_key(&owner).await;
    let customer = b.visitor(&key, "v1").await;
    let (chat_id, status) = b.start_chat(&customer, "Hi, can I pay by invoice?").await;
    assert_eq!(status, "ACTIVE");
    let is_chat = |e: &Value| e["chat"]["id"] == chat_id.as_str();
    ada_feed.until("ChatAssigned", is_chat).await;
    let mut customer_chat = b.chat_events(&customer, &chat_id, None).await;
    customer_chat
        .until("MessageAdded", |e| {
            e["message"]["text"] == "Hi, can I pay by invoice?"
        })
        .await;

    // The sneak peek: the customer types on B, Ada reads along on A.
    b.ok(Some(&customer), "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"Also, do you ship to\"}) }", json!({"c": chat_id}))
        .await;
    let peek = ada_feed
        .until("TypingChanged", |e| e["draft"] == "Also, do you ship to")
        .await;
    assert_eq!(peek["author"], "CUSTOMER");

    // Ada types and replies on A; the customer sees both on B, without Ada's draft.
    a.ok(
        Some(&ada),
        "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"secret\"}) }",
        json!({"c": chat_id}),
    )
    .await;
    let typing = customer_chat
        .until("TypingChanged", |e| e["author"] == "AGENT")
        .await;
    assert_eq!(typing["authorId"], ada_id);
    assert_eq!(typing["draft"], Value::Null);
    a.ok(
        Some(&ada),
        SEND,
        json!({"c": chat_id, "t": "Yes, invoices are fine.", "k": "a1"}),
    )
    .await;
    customer_chat
        .until("MessageAdded", |e| {
            e["message"]["text"] == "Yes, invoices are fine."
        })
        .await;
    b.ok(
        Some(&customer),
        SEND,
        json!({"c": chat_id, "t": "And do you ship to Norway?", "k": "c1"}),
    )
    .await;
    ada_feed
        .until("MessageAdded", |e| {
            e["message"]["text"] == "And do you ship to Norway?"
        })
        .await;

    // Ada transfers to Cyd, who works on node C.
    let cyd = c.login("cyd@example.com", AGENT_PASSWORD).await;
    let mut cyd_feed = c.agent_events(&cyd, &c.agent_cursor(&cyd).await).await;
    let transferred = a
        .ok(
            Some(&ada),
            "mutation($c: ID!, $to: ID!) { transferChat(input: {chatId: $c, toAgentId: $to, note: \"Ships abroad?\"}) { assignee { id } } }",
            json!({"c": chat_id, "to": cyd_id}),
        )
        .await;
    assert_eq!(transferred["transferChat"]["assignee"]["id"], cyd_id);
    let to_cyd = cyd_feed.until("ChatTransferred", is_chat).await;
    assert_eq!(to_cyd["fromAgent"]["id"], ada_id);
    assert_eq!(to_cyd["note"], "Ships abroad?");
    let away = ada_feed.until("ChatTransferred", is_chat).await;
    assert_eq!(away["toAgent"]["id"], cyd_id);
    customer_chat
        .until("MessageAdded", |e| {
            e["message"]["kind"] == "CHAT_TRANSFERRED"
        })
        .await;

    // Cyd and the customer talk across C and B; Cyd also follows the chat itself.
    let mut cyd_chat = c.chat_events(&cyd, &chat_id, None).await;
    c.ok(
        Some(&cyd),
        SEND,
        json!({"c": chat_id, "t": "Hi, Cyd here: yes, we do.", "k": "y1"}),
    )
    .await;
    customer_chat
        .until("MessageAdded", |e| {
            e["message"]["text"] == "Hi, Cyd here: yes, we do."
        })
        .await;
    b.ok(
        Some(&customer),
        SEND,
        json!({"c": chat_id, "t": "Perfect, thanks!", "k": "c2"}),
    )
    .await;
    cyd_feed
        .until("MessageAdded", |e| {
            e["message"]["text"] == "Perfect, thanks!"
        })
        .await;
    cyd_chat
        .until("MessageAdded", |e| {
            e["message"]["text"] == "Perfect, thanks!"
        })
        .await;

    // Cyd closes on C; the customer sees it on B and rates; Cyd sees the rating on C.
    c.ok(
        Some(&cyd),
        "mutation($c: ID!) { closeChat(chatId: $c) { status } }",
        json!({"c": chat_id}),
    )
    .await;
    customer_chat.until("ChatClosed", |_| true).await;
    cyd_feed.until("ChatClosed", is_chat).await;
    b.ok(
        Some(&customer),
        "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD, comment: \"Quick!\"}) { rating } }",
        json!({"c": chat_id}),
    )
    .await;
    cyd_chat
        .until("MessageAdded", |e| e["message"]["kind"] == "CHAT_RATED")
        .await;

    // Nothing came twice, and no event was delivered both locally and over NATS.
    for (who, stream) in [
        ("Ada's feed", &mut ada_feed),
        ("Cyd's feed", &mut cyd_feed),
        ("the customer's chat", &mut customer_chat),
        ("Cyd's chat", &mut cyd_chat),
    ] {
        stream.settle().await;
        stream.assert_once(who);
    }
    assert_eq!(
        ada_feed.count(|e| e["draft"] == "Also, do you ship to"),
        1,
        "the sneak peek arrives once"
    );
    assert_eq!(
        customer_chat.count(|e| e["__typename"] == "TypingChanged" && e["author"] == "AGENT"),
        1,
        "the agent's typing arrives once"
    );
    let transcript = a
        .ok(
            Some(&owner),
            "query($id: ID!) { chat(id: $id) { status rating events(first: 100) { items { text } } } }",
            json!({"id": chat_id}),
        )
        .await;
    assert_eq!(transcript["chat"]["status"], "CLOSED");
    assert_eq!(transcript["chat"]["rating"], "GOOD");
    let texts: Vec<&str> = transcript["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    for text in [
        "Hi, can I pay by invoice?",
        "Yes, invoices are fine.",
        "And do you ship to Norway?",
        "Hi, Cyd here: yes, we do.",
        "Perfect, thanks!",
    ] {
        assert_eq!(texts.iter().filter(|t| **t == text).count(), 1, "{texts:?}");
    }
}

/// A subscription that follows a client through a node's death: when its socket ends, it
/// subscribes again on `fallback` from the last cursor it saw.
struct Follower {
    endpoint: Endpoint,
    fallback: Endpoint,
    token: String,
    /// The chat followed; `None`: the agent's feed.
    chat_id: Option<String>,
    cursor: Option<String>,
    events: Vec<Value>,
    reconnects: usize,
}

impl Follower {
    async fn open(&self) -> WsClient {
        match &self.chat_id {
            Some(chat_id) => {
                self.endpoint
                    .subscribe(
                        &self.token,
                        CHAT_EVENTS,
                        json!({"chatId": chat_id, "since": self.cursor}),
                    )
                    .await
            }
            None => {
                self.endpoint
                    .subscribe(&self.token, AGENT_EVENTS, json!({"since": self.cursor}))
                    .await
            }
        }
    }

    /// Follows until `done` is set and nothing came for two seconds.
    async fn run(mut self, done: Arc<AtomicBool>) -> Follower {
        let mut ws = self.open().await;
        loop {
            match ws.next_or_gone(Duration::from_secs(2)).await {
                Ok(Some(message)) => {
                    assert_eq!(message["type"], "next", "{message}");
                    let event = message["payload"]["data"]
                        .as_object()
                        .unwrap()
                        .values()
                        .next()
                        .unwrap()
                        .clone();
                    if !ephemeral(&event) {
                        self.cursor = Some(event["cursor"].as_str().unwrap().to_owned());
                    }
                    self.events.push(event);
                }
                Ok(None) if done.load(Ordering::Acquire) => return self,
                Ok(None) => {}
                Err(()) => {
                    assert_ne!(
                        self.endpoint.name, self.fallback.name,
                        "the fallback node must not go away"
                    );
                    self.endpoint = self.fallback.clone();
                    self.reconnects += 1;
                    ws = self.open().await;
                }
            }
        }
    }

    /// The ids of the messages received, each once: a second copy fails the test.
    fn message_ids(&self, who: &str) -> HashSet<String> {
        let mut cursors = HashSet::new();
        let mut ids = HashSet::new();
        for event in self.events.iter().filter(|e| !ephemeral(e)) {
            assert!(
                cursors.insert(event["cursor"].as_str().unwrap().to_owned()),
                "{who} got {event} twice"
            );
            if event["__typename"] == "MessageAdded" {
                assert!(
                    ids.insert(event["message"]["id"].as_str().unwrap().to_owned()),
                    "{who} got message {event} twice"
                );
            }
        }
        ids
    }
}

/// Sends `count` messages as `token` into `chats` in turn, each acknowledged before the next;
/// a node that is gone is replaced by `fallback` and the unacknowledged message sent again
/// with the same client id. Returns (chat id, message id, text) of every acknowledged one.
async fn converse(
    mut endpoint: Endpoint,
    fallback: Endpoint,
    token: String,
    chats: Vec<String>,
    label: String,
    count: usize,
    sent: Arc<AtomicUsize>,
) -> Vec<(String, String, String)> {
    let mut acknowledged = Vec::new();
    for n in 0..count {
        let chat_id = &chats[n % chats.len()];
        let text = format!("{label} #{n}");
        let client_id = format!("{label}-{n}");
        let data = loop {
            match endpoint
                .try_gql(
                    Some(&token),
                    SEND,
                    json!({"c": chat_id, "t": text, "k": client_id}),
                )
                .await
            {
                Ok(body) => {
                    assert!(body.get("errors").is_none(), "{label}: {body}");
                    break body["data"].clone();
                }
                Err(err) => {
                    assert_ne!(endpoint.name, fallback.name, "{label}: {err}");
                    endpoint = fallback.clone();
                }
            }
        };
        let id = data["sendMessage"]["id"].as_str().unwrap().to_owned();
        acknowledged.push((chat_id.clone(), id, text));
        sent.fetch_add(1, Ordering::AcqRel);
        // A conversation's pace, so the kill lands in the middle of it.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    acknowledged
}

/// Three nodes under a conversation load; node B is killed with SIGKILL halfway. Its clients
/// (customers and an agent) go on through node C, resuming their subscriptions by cursor:
/// every acknowledged message is in the transcript once and reached every subscriber of its
/// chat once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_and_repeats_nothing() {
    let Some((postgres, nats)) = cluster_env() else {
        return;
    };
    const CUSTOMERS: usize = 6;
    const MESSAGES: usize = 30;
    let cluster = Cluster::new(&postgres, &nats).await;
    let a = cluster.node().named("node A");
    let mut b = cluster.node().named("node B");
    let c = cluster.node().named("node C");
    let nodes = [a.endpoint.clone(), b.endpoint.clone(), c.endpoint.clone()];
    // Whoever was on B goes on through C; nobody else needs to move.
    let fallback = |endpoint: &Endpoint| {
        if endpoint.name == "node B" {
            c.endpoint.clone()
        } else {
            endpoint.clone()
        }
    };

    let owner = a.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    a.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    a.create_agent(&owner, "ann@example.com", 10).await;
    a.create_agent(&owner, "ben@example.com", 10).await;
    // Ann works on node A, Ben on node B.
    let agents = [
        (
            a.endpoint.clone(),
            a.login("ann@example.com", AGENT_PASSWORD).await,
        ),
        (
            b.endpoint.clone(),
            b.login("ben@example.com", AGENT_PASSWORD).await,
        ),
    ];
    let mut since = Vec::new();
    for (endpoint, token) in &agents {
        since.push(endpoint.agent_cursor(token).await);
    }
    let key = a.widget_key(&owner).await;
    let mut customers = Vec::new();
    for n in 0..CUSTOMERS {
        let endpoint = nodes[n % 3].clone();
        let token = endpoint.visitor(&key, &format!("load{n}")).await;
        let (chat_id, status) = endpoint
            .start_chat(&token, &format!("hello from {n}"))
            .await;
        assert_eq!(status, "ACTIVE");
        customers.push((endpoint, token, chat_id));
    }
    let mut agent_chats = Vec::new();
    for (endpoint, token) in &agents {
        let chats: Vec<String> = endpoint
            .ok(Some(token), "{ myChats { id } }", json!({}))
            .await["myChats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(!chats.is_empty(), "both agents have chats");
        agent_chats.push(chats);
    }

    // Everyone follows their events on their own node.
    let done = Arc::new(AtomicBool::new(false));
    let mut followers = Vec::new();
    for ((endpoint, token), since) in agents.iter().zip(&since) {
        let follower = Follower {
            endpoint: endpoint.clone(),
            fallback: fallback(endpoint),
            token: token.clone(),
            chat_id: None,
            cursor: Some(since.clone()),
            events: Vec::new(),
            reconnects: 0,
        };
        followers.push(tokio::spawn(follower.run(done.clone())));
    }
    for (endpoint, token, chat_id) in &customers {
        let follower = Follower {
            endpoint: endpoint.clone(),
            fallback: fallback(endpoint),
            token: token.clone(),
            chat_id: Some(chat_id.clone()),
            cursor: None,
            events: Vec::new(),
            reconnects: 0,
        };
        followers.push(tokio::spawn(follower.run(done.clone())));
    }

    // The conversations: every customer writes, every agent answers in their chats.
    let sent = Arc::new(AtomicUsize::new(0));
    let mut talkers = Vec::new();
    for (n, (endpoint, token, chat_id)) in customers.iter().enumerate() {
        talkers.push(tokio::spawn(converse(
            endpoint.clone(),
            fallback(endpoint),
            token.clone(),
            vec![chat_id.clone()],
            format!("customer {n}"),
            MESSAGES,
            sent.clone(),
        )));
    }
    for (n, ((endpoint, token), chats)) in agents.iter().zip(&agent_chats).enumerate() {
        talkers.push(tokio::spawn(converse(
            endpoint.clone(),
            fallback(endpoint),
            token.clone(),
            chats.clone(),
            format!("agent {n}"),
            MESSAGES,
            sent.clone(),
        )));
    }
    let total = (CUSTOMERS + agents.len()) * MESSAGES;
    let halfway = Instant::now() + Duration::from_secs(60);
    while sent.load(Ordering::Acquire) < total / 2 {
        assert!(Instant::now() < halfway, "half the messages within 60 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    b.kill();
    let killed_at = sent.load(Ordering::Acquire);
    assert!(killed_at < total, "the kill lands under load");

    let mut acknowledged = Vec::new();
    for talker in talkers {
        acknowledged.extend(talker.await.unwrap());
    }
    assert_eq!(acknowledged.len(), total);
    done.store(true, Ordering::Release);
    let mut finished = Vec::new();
    for follower in followers {
        finished.push(follower.await.unwrap());
    }

    // The store: every acknowledged message once, in its chat.
    let mut by_chat: HashMap<&str, Vec<(&str, &str)>> = HashMap::new();
    for (chat_id, id, text) in &acknowledged {
        by_chat
            .entry(chat_id.as_str())
            .or_default()
            .push((id, text));
    }
    for (_, _, chat_id) in &customers {
        let items = a
            .ok(
                Some(&owner),
                "query($id: ID!) { chat(id: $id) { events(first: 200) { items { id text } } } }",
                json!({"id": chat_id}),
            )
            .await["chat"]["events"]["items"]
            .as_array()
            .unwrap()
            .clone();
        for (id, text) in &by_chat[chat_id.as_str()] {
            let copies = items.iter().filter(|i| i["text"] == *text).count();
            assert_eq!(copies, 1, "{text} is in the transcript once");
            assert!(items.iter().any(|i| i["id"] == *id));
        }
    }

    // The subscribers: every acknowledged message of their chats once, none twice.
    let (agent_followers, customer_followers) = finished.split_at(agents.len());
    for (n, follower) in customer_followers.iter().enumerate() {
        let who = format!("customer {n} ({})", customers[n].0.name);
        let received = follower.message_ids(&who);
        for (id, text) in &by_chat[customers[n].2.as_str()] {
            assert!(received.contains(*id), "{who} missed {text}");
        }
        if customers[n].0.name == "node B" {
            assert_eq!(follower.reconnects, 1, "{who} moved to node C once");
        }
    }
    for (n, follower) in agent_followers.iter().enumerate() {
        let who = format!("agent {n} ({})", agents[n].0.name);
        let received = follower.message_ids(&who);
        for chat_id in &agent_chats[n] {
            for (id, text) in by_chat[chat_id.as_str()]
                .iter()
                .filter(|(_, text)| text.starts_with("customer"))
            {
                assert!(received.contains(*id), "{who} missed {text}");
            }
        }
        if agents[n].0.name == "node B" {
            assert_eq!(follower.reconnects, 1, "{who} moved to node C once");
        }
    }
    eprintln!(
        "cluster kill: {total} messages, node B killed after {killed_at}, all delivered once"
    );
}

/// A node whose NATS cannot be reached at start (nothing listens there, or its credentials
/// cannot be read) says so in one line and exits with an error. Needs neither Postgres nor
/// NATS, so it always runs.
#[test]
fn a_node_that_cannot_reach_nats_at_start_says_so_in_one_line() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("nats://127.0.0.1:{closed_port}");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("SWITCHBOARD_NATS_URL", url.as_str())],
            "cannot connect to NATS",
        ),
        (
            &[
                ("SWITCHBOARD_NATS_URL", url.as_str()),
                (
                    "SWITCHBOARD_NATS_CREDS_FILE",
                    "/nonexistent/switchboard.creds",
                ),
            ],
            "credentials file",
        ),
        (
            &[
                ("SWITCHBOARD_NATS_URL", url.as_str()),
                ("SWITCHBOARD_NATS_SUBJECT_PREFIX", "two..dots"),
            ],
            "SWITCHBOARD_NATS_SUBJECT_PREFIX",
        ),
    ];
    for (env, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BINARY)
            .env_clear()
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "{env:?}: exits within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!status.success(), "{env:?}: a failure exit");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{env:?}: {stderr}");
        assert!(stderr.starts_with("switchboard: "), "{stderr}");
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stdout.contains("listening"), "{stdout}");
        if expected == "cannot connect to NATS" {
            assert!(
                stderr.contains(&format!("127.0.0.1:{closed_port}")),
                "{stderr}"
            );
        }
        // Nothing was touched before the check.
        assert!(!dir.path().join("switchboard.db").exists());
    }
}

/// The nats-server program, for the test that takes NATS away: SWITCHBOARD_TEST_NATS_SERVER,
/// else `nats-server` on the PATH or in /usr/sbin.
fn nats_server_program() -> Option<std::path::PathBuf> {
    if let Ok(path) = std::env::var("SWITCHBOARD_TEST_NATS_SERVER") {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
}

/// A NATS server of the test's own, on a port that stays the same across restarts.
struct PrivateNats {
    program: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl PrivateNats {
    fn start(program: std::path::PathBuf) -> PrivateNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = PrivateNats {
            program,
            port,
            child: None,
        };
        nats.start_again();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn start_again(&mut self) {
        let child = Command::new(&self.program)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server listens within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Endpoint {
    /// /readyz's status and body.
    async fn readyz(&self) -> (u16, String) {
        let response = self
            .http
            .get(format!("{}/readyz", self.base_url))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until /readyz answers `status`; its body.
    async fn until_ready_is(&self, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (now, body) = self.readyz().await;
            if now == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /readyz still says {now} {body} after 20 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// NATS goes away: both nodes go on serving their own clients and say they are not ready,
/// with a gauge at 0. It comes back: they are ready again, and the agent on node A gets the
/// message the customer on node B wrote meanwhile, once, by re-reading the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_serve_their_own_clients_without_nats_and_catch_up_when_it_returns() {
    let Some((postgres, _)) = cluster_env() else {
        return;
    };
    let Some(program) = nats_server_program() else {
        eprintln!("skipped: no nats-server program (set SWITCHBOARD_TEST_NATS_SERVER)");
        return;
    };
    let mut nats = PrivateNats::start(program);
    let cluster = Cluster::new(&postgres, &nats.url()).await;
    let a = cluster.node().named("node A");
    let b = cluster.node().named("node B");
    let owner = a.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    a.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    a.create_agent(&owner, "ann@example.com", 3).await;
    let ann = a.login("ann@example.com", AGENT_PASSWORD).await;
    let mut ann_feed = a.agent_events(&ann, &a.agent_cursor(&ann).await).await;
    let key = a.widget_key(&owner).await;
    let customer = b.visitor(&key, "v1").await;
    let (chat_id, _) = b.start_chat(&customer, "hello").await;
    ann_feed
        .until("ChatAssigned", |e| e["chat"]["id"] == chat_id.as_str())
        .await;
    let mut customer_chat = b.chat_events(&customer, &chat_id, None).await;
    customer_chat
        .until("MessageAdded", |e| e["message"]["text"] == "hello")
        .await;
    for node in [&a, &b] {
        assert_eq!(node.readyz().await.0, 200);
        assert!(
            node.metrics()
                .await
                .contains("switchboard_nats_connected 1")
        );
    }

    nats.kill();
    for node in [&a, &b] {
        let body = node.until_ready_is(503).await;
        assert!(body.contains("NATS"), "{body}");
        assert!(
            node.metrics()
                .await
                .contains("switchboard_nats_connected 0")
        );
    }
    // Node B serves its customer as before; the message is stored and told on B at once.
    b.ok(
        Some(&customer),
        SEND,
        json!({"c": chat_id, "t": "written while NATS was away", "k": "c1"}),
    )
    .await;
    customer_chat
        .until("MessageAdded", |e| {
            e["message"]["text"] == "written while NATS was away"
        })
        .await;

    nats.start_again();
    for node in [&a, &b] {
        node.until_ready_is(200).await;
    }
    // Ann on node A catches up from the store, and live events flow again.
    ann_feed
        .until("MessageAdded", |e| {
            e["message"]["text"] == "written while NATS was away"
        })
        .await;
    b.ok(
        Some(&customer),
        SEND,
        json!({"c": chat_id, "t": "and after it came back", "k": "c2"}),
    )
    .await;
    ann_feed
        .until("MessageAdded", |e| {
            e["message"]["text"] == "and after it came back"
        })
        .await;
    for (who, stream) in [
        ("Ann's feed", &mut ann_feed),
        ("the customer's chat", &mut customer_chat),
    ] {
        stream.settle().await;
        stream.assert_once(who);
    }
    assert!(a.metrics().await.contains("switchboard_nats_connected 1"));
}

/// How long a message takes from the customer's node to the agent's app on another node:
/// measured from just before `sendMessage` to the event in the agent's feed. Each of 200
/// messages arrives once; the percentiles are printed for the README.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_quickly_and_once() {
    let Some((postgres, nats)) = cluster_env() else {
        return;
    };
    const MESSAGES: usize = 200;
    let cluster = Cluster::new(&postgres, &nats).await;
    let a = cluster.node().named("node A");
    let b = cluster.node().named("node B");
    let owner = a.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    a.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    a.create_agent(&owner, "ann@example.com", 3).await;
    let ann = a.login("ann@example.com", AGENT_PASSWORD).await;
    let mut ann_feed = a.agent_events(&ann, &a.agent_cursor(&ann).await).await;
    let key = a.widget_key(&owner).await;
    let customer = b.visitor(&key, "v1").await;
    let (chat_id, _) = b.start_chat(&customer, "hello").await;
    ann_feed
        .until("ChatAssigned", |e| e["chat"]["id"] == chat_id.as_str())
        .await;
    let mut latencies = Vec::with_capacity(MESSAGES);
    for n in 0..MESSAGES {
        let text = format!("message {n}");
        let started = Instant::now();
        b.ok(
            Some(&customer),
            SEND,
            json!({"c": chat_id, "t": text, "k": format!("c{n}")}),
        )
        .await;
        ann_feed
            .until("MessageAdded", |e| e["message"]["text"] == text.as_str())
            .await;
        latencies.push(started.elapsed());
    }
    ann_feed.settle().await;
    ann_feed.assert_once("Ann's feed");
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    eprintln!(
        "cross-node delivery (send on B → agent's feed on A), {MESSAGES} messages: p50 {:?}, p99 {:?}, max {:?}",
        at(50),
        at(99),
        latencies[latencies.len() - 1]
    );
}

/// The heartbeat of the visitors test's nodes: a node that dies leaves the others' lists of
/// visitors within three of them (and a sweep).
const HEARTBEAT: Duration = Duration::from_millis(300);
const VISITOR_EVENTS: &str =
    "subscription { visitorEvents { __typename ... on GreetingReceived { greeting { text } } } }";
const VISITORS_CHANGED: &str = "subscription { visitorsChanged { snapshot left
    visitors { customer { id } currentPage { url } state } } }";
const VISITORS_ON_SITE: &str = "{ visitorsOnSite { customer { id } currentPage { url } state } }";
const VIEW_PAGE: &str = "mutation($url: String!) { updateVisitorPage(input: {url: $url}) { id } }";
const SEND_GREETING: &str = "mutation($c: ID!, $t: String!) {
    sendGreeting(input: {customerId: $c, text: $t}) { id } }";

impl Endpoint {
    /// The visitors on the site, as `token` reads them on this node.
    async fn on_site(&self, token: &str) -> Vec<Value> {
        self.ok(Some(token), VISITORS_ON_SITE, json!({})).await["visitorsOnSite"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// An operation that must fail; its first error's `extensions.code`.
    async fn error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let body = self.try_gql(token, query, variables).await.unwrap();
        crate::support::error_code(&body)
    }
}

/// An agent's `visitorsChanged` on one node, and the list its updates make.
struct VisitorList {
    ws: WsClient,
    /// By customer id, as last sent.
    shown: HashMap<String, Value>,
}

impl VisitorList {
    async fn open(node: &Endpoint, token: &str) -> VisitorList {
        VisitorList {
            ws: node.subscribe(token, VISITORS_CHANGED, json!({})).await,
            shown: HashMap::new(),
        }
    }

    /// Takes updates in until the visitor `customer_id` is as `holds` wants (`None`: not on
    /// the list); them, if listed.
    async fn until(
        &mut self,
        what: &str,
        customer_id: &str,
        holds: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        let deadline = Instant::now() + WAIT;
        while !holds(self.shown.get(customer_id)) {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match self.ws.next_or_gone(left).await {
                Ok(Some(message)) => message,
                Ok(None) => panic!("{what}: not within {WAIT:?}; the list: {:#?}", self.shown),
                Err(()) => panic!("{what}: the socket ended"),
            };
            assert_eq!(message["type"], "next", "{message}");
            let update = &message["payload"]["data"]["visitorsChanged"];
            if update["snapshot"] == true {
                self.shown.clear();
            }
            for visitor in update["visitors"].as_array().unwrap() {
                let id = visitor["customer"]["id"].as_str().unwrap();
                self.shown.insert(id.to_owned(), visitor.clone());
            }
            for id in update["left"].as_array().unwrap() {
                self.shown.remove(id.as_str().unwrap());
            }
        }
        self.shown.get(customer_id).cloned()
    }
}

/// A visitor whose page is on node B, seen by an agent on node A (in `visitorsOnSite` and
/// live): arriving, moving to a page stored through node A, greeted from node A, chatting
/// with an agent on node A. Node C, started later, lists them too. When node B is killed
/// they leave both lists within three heartbeats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visitors_are_seen_from_every_node_until_their_node_dies() {
    let Some((postgres, nats)) = cluster_env() else {
        return;
    };
    let cluster = Cluster::new(&postgres, &nats)
        .await
        .with(
            "SWITCHBOARD_VISITORS_HEARTBEAT",
            &format!("{}ms", HEARTBEAT.as_millis()),
        )
        .with("SWITCHBOARD_VISITORS_COALESCE", "100ms")
        .with("SWITCHBOARD_GREETING_RULES_INTERVAL", "100ms");
    let a = cluster.node().named("node A");
    let mut b = cluster.node().named("node B");
    let owner = a.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    a.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let mut on_a = VisitorList::open(&a, &owner).await;
    let key = a.widget_key(&owner).await;
    let (visitor, customer) = b.visitor_session(&key, "v1").await;
    let state =
        |expected: &'static str| move |v: Option<&Value>| v.is_some_and(|v| v["state"] == expected);

    let mut page = b.subscribe(&visitor, VISITOR_EVENTS, json!({})).await;
    let arrived = on_a
        .until("the arrival", &customer, |v| v.is_some())
        .await
        .unwrap();
    assert_eq!(arrived["state"], "BROWSING");
    assert_eq!(arrived["currentPage"]["url"], "https://shop.test/");
    assert_eq!(a.on_site(&owner).await, vec![arrived]);

    a.ok(
        Some(&visitor),
        VIEW_PAGE,
        json!({"url": "https://shop.test/cart"}),
    )
    .await;
    on_a.until("the page view", &customer, |v| {
        v.is_some_and(|v| v["currentPage"]["url"] == "https://shop.test/cart")
    })
    .await;

    a.ok(
        Some(&owner),
        SEND_GREETING,
        json!({"c": customer, "t": "Need help?"}),
    )
    .await;
    let greeting = page.next_event("GreetingReceived").await;
    assert_eq!(greeting["greeting"]["text"], "Need help?");
    on_a.until("the greeting", &customer, state("INVITED"))
        .await;
    assert_eq!(
        a.error_code(Some(&owner), SEND_GREETING, json!({"c": customer, "t": ""}))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        a.error_code(Some(&visitor), VISITORS_ON_SITE, json!({}))
            .await,
        "FORBIDDEN"
    );

    // Ann, on node A, takes the chat the visitor starts through node A.
    a.create_agent(&owner, "ann@example.com", 3).await;
    let ann = a.login("ann@example.com", AGENT_PASSWORD).await;
    let _ann_online = a.agent_events(&ann, &a.agent_cursor(&ann).await).await;
    let (_, status) = a.start_chat(&visitor, "Hello?").await;
    assert_eq!(status, "ACTIVE");
    on_a.until("the chat", &customer, state("CHATTING")).await;
    let listed = a.on_site(&owner).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["currentPage"]["url"], "https://shop.test/cart");

    // A node that starts later hears of the visitor at the next heartbeat of node B.
    let c = cluster.node().named("node C");
    let mut on_c = VisitorList::open(&c, &owner).await;
    on_c.until("node C's list", &customer, state("CHATTING"))
        .await;

    b.kill();
    let killed = Instant::now();
    on_a.until("the departure", &customer, |v| v.is_none())
        .await;
    let after = killed.elapsed();
    eprintln!("the visitor left node A's list {after:?} after node B was killed");
    assert!(
        after < HEARTBEAT * 3 + Duration::from_secs(2),
        "left after {after:?}"
    );
    assert_eq!(a.on_site(&owner).await, Vec::<Value>::new());
    on_c.until("the departure on node C", &customer, |v| v.is_none())
        .await;
}
