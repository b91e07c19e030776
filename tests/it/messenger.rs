//! Facebook Messenger end to end: a fake Graph API on 127.0.0.1 (it checks the page access
//! token, serves profiles and page names, and records every Send API call), events signed
//! with the test's app secret and posted to the real webhook, and agents answering over the
//! real GraphQL API. The messaging window is moved by setting the stored time of the
//! customer's last message back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WsClient, agent_events, error_code};

const PAGE_ID: &str = "1029384756";
const PAGE_TOKEN: &str = "EAAtest-page-access-token-0001";
const APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const VERIFY_TOKEN: &str = "switchboard-verify-1";
/// The user the fake has a profile for.
const PSID: &str = "5550001112223334";
const VERSION: &str = "v21.0";

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const CONNECT: &str = "mutation($input: ConnectMessengerPageInput!) {
    connectMessengerPage(input: $input) {
        id pageId name accessTokenHint appSecretHint verifyTokenHint groupId webhookPath } }";
const SEND: &str = "mutation($c: ID!, $t: String!, $v: Visibility) {
    sendMessage(input: {chatId: $c, text: $t, visibility: $v}) { id text } }";
const TRANSCRIPT: &str = "query($c: ID!) { chat(id: $c) {
    channel status customer { name }
    events(first: 100) { items { id text author visibility delivery { state error } } } } }";

/// One request the fake Graph API took.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    body: Value,
}

/// The fake Graph API: profiles, page names and the Send API, for `PAGE_TOKEN` only.
#[derive(Clone, Default)]
struct FakeGraph {
    sends: Arc<Mutex<Vec<Call>>>,
    /// Statuses the next Send API calls answer (then 200).
    script: Arc<Mutex<VecDeque<u16>>>,
    url: String,
}

type Params = Query<std::collections::HashMap<String, String>>;

fn token_refused() -> axum::response::Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}})),
    )
        .into_response()
}

async fn node(
    Path((version, id)): Path<(String, String)>,
    Query(query): Params,
) -> axum::response::Response {
    if version != VERSION || query.get("access_token").map(String::as_str) != Some(PAGE_TOKEN) {
        return token_refused();
    }
    match id.as_str() {
        PAGE_ID => Json(json!({"id": PAGE_ID, "name": "Acme Shoes"})).into_response(),
        PSID => {
            assert_eq!(query["fields"], "first_name,last_name,profile_pic");
            Json(
                json!({"id": PSID, "first_name": "Grace", "last_name": "Hopper",
                        "profile_pic": "https://pics.test/grace.jpg"}),
            )
            .into_response()
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "No profile", "code": 100}})),
        )
            .into_response(),
    }
}

async fn send_api(
    State(fake): State<FakeGraph>,
    Path(version): Path<String>,
    Query(query): Params,
    Json(body): Json<Value>,
) -> axum::response::Response {
    if version != VERSION || query.get("access_token").map(String::as_str) != Some(PAGE_TOKEN) {
        return token_refused();
    }
    let status = fake.script.lock().unwrap().pop_front().unwrap_or(200);
    let mut sends = fake.sends.lock().unwrap();
    sends.push(Call {
        path: format!("/{version}/me/messages"),
        body: body.clone(),
    });
    match status {
        200 => Json(json!({"recipient_id": body["recipient"]["id"],
                           "message_id": format!("m_out_{}", sends.len())}))
        .into_response(),
        status => (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"error": {"message": format!("scripted {status}"), "code": 2}})),
        )
            .into_response(),
    }
}

impl FakeGraph {
    async fn start() -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut fake = FakeGraph {
            url: format!("http://{}", listener.local_addr().unwrap()),
            ..FakeGraph::default()
        };
        let app = axum::Router::new()
            .route("/{version}/me/messages", post(send_api))
            .route("/{version}/{id}", get(node))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake.url = fake.url.clone();
        fake
    }

    fn sends(&self) -> Vec<Call> {
        self.sends.lock().unwrap().clone()
    }

    fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// Waits until `count` Send API calls arrived; all of them.
    async fn wait_for_sends(&self, count: usize) -> Vec<Call> {
        for _ in 0..200 {
            let sends = self.sends();
            if sends.len() >= count {
                return sends;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} Send API calls, got {:?}", self.sends());
    }

    /// The messages (not sender actions) sent so far.
    fn messages(&self) -> Vec<Value> {
        self.sends()
            .into_iter()
            .filter(|c| c.body.get("message").is_some())
            .map(|c| c.body)
            .collect()
    }
}

/// `sha256=<hex>` of `body` under `secret`, as Facebook signs.
fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A webhook body with one messaging event from `psid` to the page.
fn event(psid: &str, messaging: Value) -> Value {
    let mut messaging = messaging;
    messaging["sender"] = json!({"id": psid});
    messaging["recipient"] = json!({"id": PAGE_ID});
    messaging["timestamp"] = json!(now_millis());
    json!({"object": "page", "entry": [{"id": PAGE_ID, "time": now_millis(), "messaging": [messaging]}]})
}

fn text_event(psid: &str, mid: &str, text: &str) -> Value {
    event(psid, json!({"message": {"mid": mid, "text": text}}))
}

struct Setup {
    server: TestServer,
    fake: FakeGraph,
    owner: String,
    alex: String,
    alex_events: WsClient,
}

impl Setup {
    /// A server pointed at a fake Graph API, the page connected, and Alex accepting chats
    /// with a live connection.
    async fn start(backend: Backend) -> Setup {
        let fake = FakeGraph::start().await;
        let url = fake.url.clone();
        let server = TestServer::start_with(backend, move |c| {
            c.messenger_graph_url = url;
            c.messenger_graph_version = VERSION.into();
        })
        .await;
        let owner = server.owner_token().await;
        server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
        let page = server
            .ok(
                Some(&owner),
                CONNECT,
                json!({"input": {"pageId": PAGE_ID, "accessToken": PAGE_TOKEN,
                       "appSecret": APP_SECRET, "verifyToken": VERIFY_TOKEN}}),
            )
            .await["connectMessengerPage"]
            .clone();
        assert_eq!(page["name"], "Acme Shoes");
        server
            .create_agent(&owner, "alex@example.com", "AGENT")
            .await;
        let alex = server.agent_token("alex@example.com").await;
        let alex_events = agent_events(&server, &alex, None).await;
        Setup {
            server,
            fake,
            owner,
            alex,
            alex_events,
        }
    }

    /// Posts `body` to the webhook, signed with `secret` (unsigned with `None`).
    async fn post(&self, body: &Value, secret: Option<&str>) -> u16 {
        let bytes = serde_json::to_vec(body).unwrap();
        let mut request = self
            .server
            .http
            .post(format!(
                "{}/channels/messenger/webhook",
                self.server.base_url
            ))
            .header("content-type", "application/json");
        if let Some(secret) = secret {
            request = request.header("X-Hub-Signature-256", sign(secret, &bytes));
        }
        request.body(bytes).send().await.unwrap().status().as_u16()
    }

    /// The customer writes `text`; the webhook takes it.
    async fn customer_writes(&self, psid: &str, mid: &str, text: &str) {
        assert_eq!(
            self.post(&text_event(psid, mid, text), Some(APP_SECRET))
                .await,
            200
        );
    }

    async fn transcript(&self, chat: &str) -> Value {
        self.server
            .ok(Some(&self.alex), TRANSCRIPT, json!({"c": chat}))
            .await["chat"]
            .clone()
    }

    async fn reply(&self, chat: &str, text: &str) -> Value {
        self.server
            .gql(
                Some(&self.alex),
                SEND,
                json!({"c": chat, "t": text, "v": "PUBLIC"}),
            )
            .await
    }

    /// Moves the customer's last message `hours` into the past.
    async fn customer_last_wrote_hours_ago(&self, psid: &str, hours: i64) {
        let at = now_millis() - hours * 3_600_000;
        self.server
            .execute_sql(&format!(
                "UPDATE messenger_customers SET last_message_at = {at} WHERE psid = '{psid}'"
            ))
            .await;
    }

    /// Waits until the delivery of agent message `id` is `state`.
    async fn wait_for_delivery(&self, chat: &str, id: &str, state: &str) -> Value {
        for _ in 0..200 {
            let transcript = self.transcript(chat).await;
            let item = transcript["events"]["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .cloned()
                .unwrap();
            if item["delivery"]["state"] == state {
                return item;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} never became {state}");
    }
}

fn texts(transcript: &Value) -> Vec<String> {
    transcript["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

on_both_backends!(
    pages_are_connected_by_admins_and_verify_the_webhook,
    unsigned_and_wrongly_signed_events_are_refused,
    a_messenger_customer_chats_with_an_agent_within_facebooks_window,
    graph_errors_are_retried_or_fail_the_message_visibly,
    a_profile_that_cannot_be_read_does_not_lose_the_message,
);

async fn pages_are_connected_by_admins_and_verify_the_webhook(backend: Backend) {
    let s = Setup::start(backend).await;
    let server = &s.server;
    // What admins see back: hints, never a token or secret.
    let pages = server
        .ok(
            Some(&s.owner),
            "{ messengerPages { id pageId accessTokenHint appSecretHint verifyTokenHint } }",
            json!({}),
        )
        .await["messengerPages"]
        .clone();
    assert_eq!(pages.as_array().unwrap().len(), 1);
    assert_eq!(pages[0]["pageId"], PAGE_ID);
    assert_eq!(pages[0]["accessTokenHint"], "…0001");
    assert!(!pages.to_string().contains(PAGE_TOKEN));
    assert!(!pages.to_string().contains(APP_SECRET));
    let page_id = pages[0]["id"].as_str().unwrap().to_owned();

    // Bad inputs, each with its code.
    let input = |page: &str, token: &str, secret: &str, verify: &str| {
        json!({"input": {"pageId": page, "accessToken": token, "appSecret": secret,
                         "verifyToken": verify}})
    };
    assert_eq!(
        server
            .error_code(
                Some(&s.alex),
                CONNECT,
                input("42", PAGE_TOKEN, APP_SECRET, "v")
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(Some(&s.alex), "{ messengerPages { id } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    for bad in [
        input("not-a-number", PAGE_TOKEN, APP_SECRET, "v"),
        input("42", " ", APP_SECRET, "v"),
        input("42", PAGE_TOKEN, "", "v"),
        input("42", PAGE_TOKEN, APP_SECRET, "two words"),
        // Facebook refuses the token.
        input("42", "EAA-some-other-token", APP_SECRET, "v"),
    ] {
        assert_eq!(
            server
                .error_code(Some(&s.owner), CONNECT, bad.clone())
                .await,
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    let mut with_group = input("42", PAGE_TOKEN, APP_SECRET, "v");
    with_group["input"]["groupId"] = json!("no-such-group");
    assert_eq!(
        server.error_code(Some(&s.owner), CONNECT, with_group).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .error_code(
                Some(&s.owner),
                CONNECT,
                input(PAGE_ID, PAGE_TOKEN, APP_SECRET, "v")
            )
            .await,
        "CONFLICT"
    );
    let update = "mutation($id: ID!, $input: UpdateMessengerPageInput!) {
        updateMessengerPage(id: $id, input: $input) { id groupId verifyTokenHint } }";
    assert_eq!(
        server
            .error_code(
                Some(&s.owner),
                update,
                json!({"id": "nope", "input": {"verifyToken": "x"}})
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(&s.owner),
                update,
                json!({"id": page_id, "input": {"accessToken": "EAA-wrong"}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let group = server.create_group(&s.owner, "Shoes").await;
    let updated = server
        .ok(
            Some(&s.owner),
            update,
            json!({"id": page_id, "input": {"groupId": group}}),
        )
        .await;
    assert_eq!(updated["updateMessengerPage"]["groupId"], group.as_str());

    // Facebook's verification of the callback URL.
    let verify = |mode: &str, token: &str| {
        server
            .http
            .get(format!("{}/channels/messenger/webhook", server.base_url))
            .query(&[
                ("hub.mode", mode),
                ("hub.verify_token", token),
                ("hub.challenge", "1158201444"),
            ])
            .send()
    };
    let good = verify("subscribe", VERIFY_TOKEN).await.unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(good.text().await.unwrap(), "1158201444");
    assert_eq!(verify("subscribe", "wrong").await.unwrap().status(), 403);
    assert_eq!(
        verify("unsubscribe", VERIFY_TOKEN).await.unwrap().status(),
        403
    );

    // Disconnected, the page's verify token and events are refused.
    server
        .ok(
            Some(&s.owner),
            "mutation($id: ID!) { disconnectMessengerPage(id: $id) { id } }",
            json!({"id": page_id}),
        )
        .await;
    assert_eq!(
        verify("subscribe", VERIFY_TOKEN).await.unwrap().status(),
        403
    );
    assert_eq!(
        s.post(&text_event(PSID, "m_gone", "Hello?"), Some(APP_SECRET))
            .await,
        403
    );
}

async fn unsigned_and_wrongly_signed_events_are_refused(backend: Backend) {
    let mut s = Setup::start(backend).await;
    let body = text_event(PSID, "m_1", "Do you ship to Norway?");
    assert_eq!(s.post(&body, None).await, 401);
    assert_eq!(s.post(&body, Some("not-the-app-secret")).await, 403);
    // A signature over another body.
    let bytes = serde_json::to_vec(&body).unwrap();
    let forged = s
        .server
        .http
        .post(format!("{}/channels/messenger/webhook", s.server.base_url))
        .header("X-Hub-Signature-256", sign(APP_SECRET, b"{}"))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Nothing of it was taken in: the same message id, signed, is new.
    assert!(
        s.alex_events
            .quiet_for(Duration::from_millis(300))
            .await
            .is_empty(),
        "a refused event started a chat"
    );
    assert_eq!(s.post(&body, Some(APP_SECRET)).await, 200);
    let assigned = s.alex_events.next_event("ChatAssigned").await;
    assert!(assigned["chat"]["id"].is_string());
}

async fn a_messenger_customer_chats_with_an_agent_within_facebooks_window(backend: Backend) {
    let mut s = Setup::start(backend).await;
    s.customer_writes(PSID, "m_first", "Hi! Are the red boots back?")
        .await;
    let chat = s.alex_events.next_event("ChatAssigned").await["chat"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Facebook redelivers: the same mid is taken in once.
    s.customer_writes(PSID, "m_first", "Hi! Are the red boots back?")
        .await;
    // Our own echo is not a customer message.
    let echo = event(
        PSID,
        json!({"message": {"mid": "m_echo", "text": "echo", "is_echo": true}}),
    );
    assert_eq!(s.post(&echo, Some(APP_SECRET)).await, 200);
    let transcript = s.transcript(&chat).await;
    assert_eq!(transcript["channel"], "MESSENGER");
    assert_eq!(transcript["status"], "ACTIVE");
    assert_eq!(transcript["customer"]["name"], "Grace Hopper");
    assert_eq!(
        texts(&transcript)
            .iter()
            .filter(|t| t.contains("red boots"))
            .count(),
        1
    );
    assert!(!texts(&transcript).iter().any(|t| t == "echo"));

    // The agent types, reads and answers: typing_on, mark_seen, then the message, RESPONSE.
    s.server
        .ok(
            Some(&s.alex),
            "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true}) }",
            json!({"c": chat}),
        )
        .await;
    s.server
        .ok(
            Some(&s.alex),
            "mutation($c: ID!) { markChatRead(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;
    let reply = s.reply(&chat, "They are! Size?").await;
    let reply_id = reply["data"]["sendMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A note never goes to Messenger.
    let note = s
        .server
        .gql(
            Some(&s.alex),
            SEND,
            json!({"c": chat, "t": "VIP customer", "v": "AGENTS"}),
        )
        .await;
    assert!(note.get("errors").is_none(), "{note}");
    let sends = s.fake.wait_for_sends(3).await;
    let actions: Vec<&str> = sends
        .iter()
        .filter_map(|c| c.body["sender_action"].as_str())
        .collect();
    assert!(actions.contains(&"typing_on"), "{sends:?}");
    assert!(actions.contains(&"mark_seen"), "{sends:?}");
    assert!(sends.iter().all(|c| c.path == "/v21.0/me/messages"));
    let messages = s.fake.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(
        messages[0],
        json!({"recipient": {"id": PSID}, "messaging_type": "RESPONSE",
               "message": {"text": "They are! Size?"}})
    );
    s.wait_for_delivery(&chat, &reply_id, "SENT").await;

    // Receipts mark the message: delivered, then read.
    let delivery = event(
        PSID,
        json!({"delivery": {"mids": ["m_out_3"], "watermark": now_millis() + 1000}}),
    );
    assert_eq!(s.post(&delivery, Some(APP_SECRET)).await, 200);
    s.wait_for_delivery(&chat, &reply_id, "DELIVERED").await;
    let read = event(PSID, json!({"read": {"watermark": now_millis() + 1000}}));
    assert_eq!(s.post(&read, Some(APP_SECRET)).await, 200);
    s.wait_for_delivery(&chat, &reply_id, "READ").await;

    // After 24 hours: tagged HUMAN_AGENT.
    s.customer_last_wrote_hours_ago(PSID, 30).await;
    let late = s.reply(&chat, "Still there?").await;
    assert!(late.get("errors").is_none(), "{late}");
    s.fake.wait_for_sends(sends.len() + 1).await;
    let messages = s.fake.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["messaging_type"], "MESSAGE_TAG");
    assert_eq!(messages[1]["tag"], "HUMAN_AGENT");
    assert_eq!(messages[1]["message"]["text"], "Still there?");

    // After 7 days: refused up front, in words, and not stored.
    s.customer_last_wrote_hours_ago(PSID, 8 * 24).await;
    let refused = s.reply(&chat, "Hello again").await;
    assert_eq!(error_code(&refused), "MESSENGER_WINDOW_CLOSED");
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("7 days"),
        "{refused}"
    );
    assert!(!texts(&s.transcript(&chat).await).contains(&"Hello again".to_owned()));

    // The customer writes again: the window opens, the reply is a RESPONSE.
    s.customer_writes(PSID, "m_second", "Size 38 please").await;
    let answer = s.reply(&chat, "Reserved for you").await;
    assert!(answer.get("errors").is_none(), "{answer}");
    for _ in 0..200 {
        if s.fake.messages().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let messages = s.fake.messages();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert_eq!(messages[2]["messaging_type"], "RESPONSE");
    assert!(
        messages
            .iter()
            .all(|m| m["message"]["text"] != "VIP customer")
    );
}

async fn graph_errors_are_retried_or_fail_the_message_visibly(backend: Backend) {
    let mut s = Setup::start(backend).await;
    s.customer_writes(PSID, "m_1", "Hello").await;
    let chat = s.alex_events.next_event("ChatAssigned").await["chat"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A 5xx is tried again.
    s.fake.script(&[500]);
    let first = s.reply(&chat, "First answer").await;
    let first_id = first["data"]["sendMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sends = s.fake.wait_for_sends(2).await;
    assert_eq!(sends[0].body["message"]["text"], "First answer");
    assert_eq!(sends[1].body["message"]["text"], "First answer");
    s.wait_for_delivery(&chat, &first_id, "SENT").await;

    // A 4xx is given up: the message is marked failed, and its agents are told.
    s.fake.script(&[400]);
    let second = s.reply(&chat, "Second answer").await;
    let second_id = second["data"]["sendMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed = s.wait_for_delivery(&chat, &second_id, "FAILED").await;
    assert_eq!(failed["delivery"]["error"], "scripted 400");
    // The note follows the failure's commit, so it may arrive a moment after it.
    let mut told = None;
    for _ in 0..100 {
        let transcript = s.transcript(&chat).await;
        told = transcript["events"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["text"]
                    .as_str()
                    .unwrap()
                    .contains("did not reach Messenger")
            })
            .cloned();
        if told.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let told = told.expect("the agents are told");
    assert_eq!(told["visibility"], "AGENTS");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.fake.messages().len(),
        3,
        "a refused message is not sent again"
    );
}

async fn a_profile_that_cannot_be_read_does_not_lose_the_message(backend: Backend) {
    let mut s = Setup::start(backend).await;
    s.customer_writes("777000111", "m_x", "Where is my order?")
        .await;
    let chat = s.alex_events.next_event("ChatAssigned").await["chat"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let transcript = s.transcript(&chat).await;
    assert_eq!(transcript["customer"]["name"], "Messenger user 0111");
    assert!(texts(&transcript).contains(&"Where is my order?".to_owned()));
}
