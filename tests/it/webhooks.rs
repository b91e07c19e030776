//! Webhooks: admins register endpoints; chats' events reach them as signed JSON documents
//! (Standard Webhooks), verified here by the specification's Python reference library when
//! SWITCHBOARD_TEST_PYTHON names a Python with tests/tools/requirements.txt installed; failed
//! attempts are retried (Retry-After honoured, a timeout per attempt), a chat's events arrive
//! in order, an endpoint that keeps failing is disabled and its admins told; private addresses
//! are refused unless allowed; agents send a chat to an integration and see it delivered.
//!
//! The receiver is a small HTTP server on 127.0.0.1 that answers as each test scripts it.

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::notes::agent;
use crate::on_both_backends;
use crate::support::{Backend, TestServer, agent_events, start_chat, visitor, widget_key};

const PYTHON_VAR: &str = "SWITCHBOARD_TEST_PYTHON";

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const CREATE: &str = "mutation($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) { secret endpoint { id url events includeNotes kind
    enabled description } } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateWebhookEndpointInput!) {
    updateWebhookEndpoint(id: $id, input: $input) { id enabled disabledReason
    consecutiveFailures events } }";
const ENDPOINTS: &str = "{ webhookEndpoints { id url enabled disabledReason disabledAt
    consecutiveFailures previousSecretExpiresAt } }";
const DELIVERIES: &str = "query($e: ID!, $first: Int, $after: String) {
    webhookDeliveries(endpointId: $e, first: $first, after: $after) { id cursor eventType
    chatId status attempts responseStatus durationMs lastError payload deliveredAt } }";
const SEND_TEST: &str = "mutation($e: ID!) { sendTestWebhook(endpointId: $e) { id status } }";
const REDELIVER: &str =
    "mutation($d: ID!) { redeliverWebhook(deliveryId: $d) { id status eventType } }";
const ROTATE: &str = "mutation($id: ID!, $overlap: Int) {
    rotateWebhookSecret(id: $id, overlapSeconds: $overlap) { secret endpoint { id
    previousSecretExpiresAt } } }";
const SEND_MESSAGE: &str = "mutation($c: ID!, $t: String!, $v: Visibility!) {
    sendMessage(input: {chatId: $c, text: $t, visibility: $v}) { id } }";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn document(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    /// Waits this long before answering (a slow receiver, for the timeout).
    delay: Duration,
}

const OK: Answer = Answer {
    status: 200,
    retry_after: None,
    delay: Duration::ZERO,
};

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers for the next requests, in order; then `otherwise`.
    script: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Option<Answer>>,
}

/// A webhook receiver on 127.0.0.1.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    fn script(&self, answers: &[Answer]) {
        self.state.script.lock().unwrap().extend(answers);
    }

    fn always(&self, answer: Answer) {
        *self.state.otherwise.lock().unwrap() = Some(answer);
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived (each answered as scripted) and returns them all.
    async fn until(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {count} requests: {:?}",
                received.len(),
                received.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The documents received whose type is `kind`.
    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.received()
            .iter()
            .map(Received::document)
            .filter(|d| d["type"] == kind)
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let answer = {
        let next = state.script.lock().unwrap().pop_front();
        next.or(*state.otherwise.lock().unwrap()).unwrap_or(OK)
    };
    // Recorded as it arrives: a request the sender gives up on is dropped mid-answer.
    state.received.lock().unwrap().push(Received {
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        at,
    });
    tokio::time::sleep(answer.delay).await;
    let mut response = StatusCode::from_u16(answer.status).unwrap().into_response();
    if let Some(secs) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.to_string().parse().unwrap());
    }
    response
}

/// Registers an endpoint; returns its id and secret.
async fn create(server: &TestServer, token: &str, input: Value) -> (String, String) {
    let data = server
        .ok(Some(token), CREATE, json!({ "input": input }))
        .await;
    let created = &data["createWebhookEndpoint"];
    (
        created["endpoint"]["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn deliveries(server: &TestServer, token: &str, endpoint: &str) -> Vec<Value> {
    server
        .ok(
            Some(token),
            DELIVERIES,
            json!({"e": endpoint, "first": 100}),
        )
        .await["webhookDeliveries"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until the endpoint's log satisfies `done`, and returns it.
async fn log_until(
    server: &TestServer,
    token: &str,
    endpoint: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = deliveries(server, token, endpoint).await;
        if done(&log) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {log:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a request as the Standard Webhooks specification says, in Rust: the id and
/// timestamp headers, and a `v1` signature by `secret` among those sent.
fn assert_signed(request: &Received, secret: &str) {
    use base64::Engine;
    use hmac::Mac;
    let id = request.header("webhook-id");
    let timestamp = request.header("webhook-timestamp");
    assert!(!id.is_empty(), "no webhook-id");
    let sent_at: i64 = timestamp
        .parse()
        .expect("webhook-timestamp is Unix seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() < 300);
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{}", request.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let signatures: Vec<&str> = request.header("webhook-signature").split(' ').collect();
    assert!(
        signatures.contains(&expected.as_str()),
        "{signatures:?} lacks {expected}"
    );
    assert_eq!(request.header("content-type"), "application/json");
}

/// Whether the Standard Webhooks reference library (Python) verifies the request with
/// `secret`; `None` when SWITCHBOARD_TEST_PYTHON is not set.
fn python_verifies(request: &Received, secret: &str) -> Option<bool> {
    let python = std::env::var(PYTHON_VAR).ok().filter(|p| !p.is_empty())?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/verify_standard_webhook.py"
    );
    let headers: serde_json::Map<String, Value> =
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
            .iter()
            .map(|name| (name.to_string(), json!(request.header(name))))
            .collect();
    let input = json!({"secret": secret, "headers": headers, "body": request.body}).to_string();
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{PYTHON_VAR}={python} does not run: {err}"));
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() || stderr.contains("not verified"),
        "the verifier failed: {stderr}"
    );
    if output.status.success() {
        let kind = String::from_utf8_lossy(&output.stdout);
        assert_eq!(kind.trim(), request.document()["type"].as_str().unwrap());
    }
    Some(output.status.success())
}

fn types(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.document()["type"].as_str().unwrap().to_owned())
        .collect()
}

/// An organization with an owner not accepting chats and Ada, who is, with her app open.
async fn team(server: &TestServer) -> (String, String, String, crate::support::WsClient) {
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (ada_id, ada) = agent(server, &owner, "Ada", "AGENT", &[]).await;
    let app = agent_events(server, &ada, None).await;
    (owner, ada_id, ada, app)
}

const ALL_EVENTS: [&str; 10] = [
    "chat.started",
    "chat.assigned",
    "chat.transferred",
    "message.added",
    "chat.closed",
    "chat.rated",
    "chat.tagged",
    "offline_message.left",
    "customer.updated",
    "greeting.answered",
];

async fn a_chats_events_arrive_signed_in_documented_shapes_and_notes_only_when_asked(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let (owner, ada_id, ada, mut ada_app) = team(&server).await;
    let everything = Receiver::start().await;
    let notes = Receiver::start().await;
    let types_list = server
        .ok(Some(&ada), "{ webhookEventTypes }", json!({}))
        .await;
    assert_eq!(types_list["webhookEventTypes"], json!(ALL_EVENTS));
    let (all_id, all_secret) = create(
        &server,
        &owner,
        json!({"url": everything.url, "events": ALL_EVENTS, "description": "CRM"}),
    )
    .await;
    assert!(all_secret.starts_with("whsec_"));
    create(
        &server,
        &owner,
        json!({"url": notes.url, "events": ["message.added"], "includeNotes": true}),
    )
    .await;
    // The secret is shown once: the list has none.
    let listed = server.ok(Some(&owner), ENDPOINTS, json!({})).await;
    assert!(!listed.to_string().contains("whsec_"));

    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "hooked").await;
    let (chat, _) = start_chat(&server, &customer, "Where is my parcel?").await;
    ada_app.next_event("ChatAssigned").await;
    // Bob comes online once Ada has the chat, to take it over.
    let (bob_id, bob) = agent(&server, &owner, "Bob", "AGENT", &[]).await;
    let _bob_app = agent_events(&server, &bob, None).await;
    server
        .ok(
            Some(&ada),
            SEND_MESSAGE,
            json!({"c": chat, "t": "Let me look.", "v": "PUBLIC"}),
        )
        .await;
    server
        .ok(
            Some(&ada),
            SEND_MESSAGE,
            json!({"c": chat, "t": "Customer seems upset", "v": "AGENTS"}),
        )
        .await;
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
            json!({"c": chat, "t": "Thanks!"}),
        )
        .await;
    let tag = server
        .ok(
            Some(&owner),
            "mutation { createTag(input: {name: \"Shipping\"}) { id } }",
            json!({}),
        )
        .await["createTag"]["id"]
        .clone();
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $t: ID!) { addChatTag(chatId: $c, tagId: $t) { id } }",
            json!({"c": chat, "t": tag}),
        )
        .await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $to: ID!) { transferChat(input: {chatId: $c, toAgentId: $to}) { id } }",
            json!({"c": chat, "to": bob_id}),
        )
        .await;
    server
        .ok(
            Some(&bob),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD, comment: \"Quick\"}) { id } }",
            json!({"c": chat}),
        )
        .await;
    let customer_id = server
        .ok(
            Some(&owner),
            "query($c: ID!) { chat(id: $c) { customer { id } } }",
            json!({"c": chat}),
        )
        .await["chat"]["customer"]["id"]
        .clone();
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateCustomer(id: $id, input: {name: \"Grace Hopper\"}) { phone } }",
            json!({"id": customer_id}),
        )
        .await;
    server
        .ok(
            Some(&customer),
            "mutation { leaveOfflineMessage(input: {name: \"Grace\", email: \"grace@customer.test\", text: \"Call me\"}) { id } }",
            json!({}),
        )
        .await;

    // chat.started, chat.assigned, 2 public messages, tagged, transferred, assigned,
    // closed, rated, customer.updated, offline message.
    let received = everything.until(11).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received_all = everything.received();
    assert_eq!(received_all.len(), 11, "{:?}", types(&received_all));
    for request in &received {
        assert_signed(request, &all_secret);
        let document = request.document();
        assert_eq!(document["version"], 1);
        assert!(document["id"].is_string());
        assert!(document["timestamp"].is_string());
        assert!(document["organizationId"].is_string());
    }
    // A chat's events arrive in the order they happened.
    let chat_types: Vec<String> = received
        .iter()
        .map(Received::document)
        .filter(|d| d["data"]["chat"]["id"] == chat.as_str())
        .map(|d| d["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        chat_types,
        [
            "chat.started",
            "chat.assigned",
            "message.added",
            "message.added",
            "chat.tagged",
            "chat.assigned",
            "chat.transferred",
            "chat.closed",
            "chat.rated",
        ]
    );
    let started = &everything.of_type("chat.started")[0]["data"];
    assert_eq!(started["chat"]["id"], chat.as_str());
    assert_eq!(started["chat"]["channel"], "WIDGET");
    assert_eq!(started["chat"]["customerId"], customer_id);
    let assigned = everything.of_type("chat.assigned");
    assert_eq!(assigned[0]["data"]["agentId"], ada_id.as_str());
    assert_eq!(assigned[0]["data"]["transferred"], false);
    assert_eq!(assigned[0]["data"]["chat"]["status"], "ACTIVE");
    assert_eq!(assigned[1]["data"]["agentId"], bob_id.as_str());
    assert_eq!(assigned[1]["data"]["transferred"], true);
    let messages = everything.of_type("message.added");
    assert_eq!(messages[0]["data"]["message"]["text"], "Let me look.");
    assert_eq!(messages[0]["data"]["message"]["authorKind"], "AGENT");
    assert_eq!(messages[0]["data"]["message"]["authorId"], ada_id.as_str());
    assert_eq!(messages[0]["data"]["message"]["visibility"], "PUBLIC");
    assert_eq!(messages[1]["data"]["message"]["text"], "Thanks!");
    assert_eq!(messages[1]["data"]["message"]["authorKind"], "CUSTOMER");
    assert!(
        !everything
            .received()
            .iter()
            .any(|r| r.body.contains("upset")),
        "a note reached an endpoint that did not ask for notes"
    );
    let tagged = &everything.of_type("chat.tagged")[0]["data"];
    assert_eq!(tagged["tag"]["name"], "Shipping");
    assert_eq!(tagged["action"], "added");
    let transferred = &everything.of_type("chat.transferred")[0]["data"];
    assert_eq!(transferred["chat"]["assigneeId"], bob_id.as_str());
    let closed = &everything.of_type("chat.closed")[0]["data"];
    assert_eq!(closed["chat"]["status"], "CLOSED");
    assert!(closed["chat"]["closedAt"].is_string());
    let rated = &everything.of_type("chat.rated")[0]["data"];
    assert_eq!(rated["rating"], "GOOD");
    assert_eq!(rated["comment"], "Quick");
    let updated = &everything.of_type("customer.updated")[0]["data"];
    assert_eq!(updated["customer"]["id"], customer_id);
    assert_eq!(updated["customer"]["name"], "Grace Hopper");
    let offline = &everything.of_type("offline_message.left")[0]["data"];
    assert_eq!(offline["offlineMessage"]["email"], "grace@customer.test");
    assert_eq!(offline["offlineMessage"]["text"], "Call me");

    // The endpoint that asked for notes gets them, with their visibility.
    let note_messages = notes.until(3).await;
    let texts: Vec<Value> = note_messages
        .iter()
        .map(|r| r.document()["data"]["message"]["text"].clone())
        .collect();
    assert_eq!(
        texts,
        [
            json!("Let me look."),
            json!("Customer seems upset"),
            json!("Thanks!")
        ]
    );
    assert_eq!(
        note_messages[1].document()["data"]["message"]["visibility"],
        "AGENTS"
    );

    // The log says what went out and how.
    let log = deliveries(&server, &owner, &all_id).await;
    assert_eq!(log.len(), 11);
    assert!(log.iter().all(|d| d["status"] == "DELIVERED"
        && d["responseStatus"] == 200
        && d["attempts"] == 1
        && d["durationMs"].is_i64()
        && d["lastError"].is_null()));
    assert_eq!(log[0]["eventType"], "offline_message.left", "newest first");
    let page = server
        .ok(
            Some(&owner),
            DELIVERIES,
            json!({"e": all_id, "first": 4, "after": log[3]["cursor"]}),
        )
        .await["webhookDeliveries"]
        .clone();
    assert_eq!(page[0]["id"], log[4]["id"]);
    assert_eq!(page.as_array().unwrap().len(), 4);
}

async fn the_reference_library_verifies_deliveries_and_both_secrets_during_a_rotation(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let receiver = Receiver::start().await;
    let (endpoint, first_secret) = create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.closed"]}),
    )
    .await;
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let test = receiver.until(1).await.remove(0);
    assert_eq!(test.document()["type"], "webhook.test");
    assert_eq!(test.document()["data"]["endpointId"], endpoint.as_str());
    assert_signed(&test, &first_secret);

    // Rotated with an hour of overlap: both secrets sign.
    let rotated = server
        .ok(
            Some(&owner),
            ROTATE,
            json!({"id": endpoint, "overlap": 3600}),
        )
        .await["rotateWebhookSecret"]
        .clone();
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(second_secret, first_secret);
    assert!(rotated["endpoint"]["previousSecretExpiresAt"].is_string());
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let during = receiver.until(2).await.remove(1);
    assert_eq!(during.header("webhook-signature").split(' ').count(), 2);
    assert_signed(&during, &first_secret);
    assert_signed(&during, &second_secret);

    // Rotated again with no overlap: only the newest secret signs.
    let third_secret = server
        .ok(Some(&owner), ROTATE, json!({"id": endpoint, "overlap": 0}))
        .await["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let after = receiver.until(3).await.remove(2);
    assert_eq!(after.header("webhook-signature").split(' ').count(), 1);
    assert_signed(&after, &third_secret);

    let Some(verified) = python_verifies(&test, &first_secret) else {
        eprintln!(
            "skipped: set {PYTHON_VAR} to a Python with tests/tools/requirements.txt installed \
             to verify with the Standard Webhooks reference library"
        );
        return;
    };
    assert!(verified, "the reference library refused a delivery");
    assert_eq!(python_verifies(&during, &first_secret), Some(true));
    assert_eq!(python_verifies(&during, &second_secret), Some(true));
    assert_eq!(python_verifies(&after, &third_secret), Some(true));
    assert_eq!(
        python_verifies(&after, &second_secret),
        Some(false),
        "a secret past its overlap still verified"
    );
    assert_eq!(python_verifies(&test, &third_secret), Some(false));
}

async fn failed_attempts_are_retried_after_500_honouring_retry_after_and_a_timeout(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |c| {
        c.webhooks.webhooks_timeout = Duration::from_millis(500);
    })
    .await;
    let owner = server.owner_token().await;
    let receiver = Receiver::start().await;
    receiver.script(&[
        Answer {
            status: 500,
            retry_after: Some(3),
            delay: Duration::ZERO,
        },
        Answer {
            status: 200,
            retry_after: None,
            delay: Duration::from_secs(2),
        },
    ]);
    let (endpoint, secret) = create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.started"]}),
    )
    .await;
    let sent = server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await["sendTestWebhook"]
        .clone();
    assert_eq!(sent["status"], "PENDING");

    // The first attempt's 500 is in the log while the retry waits.
    let log = log_until(&server, &owner, &endpoint, "the first attempt", |log| {
        log[0]["attempts"] == 1 && log[0]["status"] == "PENDING"
    })
    .await;
    assert_eq!(log[0]["responseStatus"], 500);
    assert!(
        log[0]["lastError"].as_str().unwrap().contains("500"),
        "{}",
        log[0]
    );
    let log = log_until(&server, &owner, &endpoint, "delivery", |log| {
        log[0]["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["responseStatus"], 200);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    // Every attempt is the same delivery, signed afresh.
    for request in &received {
        assert_eq!(request.header("webhook-id"), sent["id"].as_str().unwrap());
        assert_eq!(request.body, received[0].body);
        assert_signed(request, &secret);
    }
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(2900),
        "Retry-After: 3 was not honoured: retried after {waited:?}"
    );

    // The timed-out attempt was recorded as such before the third went through.
    let received_times: Vec<Instant> = received.iter().map(|r| r.at).collect();
    assert!(received_times[2] > received_times[1]);
    let redelivered = server
        .ok(Some(&owner), REDELIVER, json!({"d": sent["id"]}))
        .await["redeliverWebhook"]
        .clone();
    assert_eq!(redelivered["eventType"], "webhook.test");
    assert_ne!(redelivered["id"], sent["id"]);
    let again = receiver.until(4).await.remove(3);
    assert_eq!(again.body, received[0].body, "the same document");
    assert_eq!(
        again.header("webhook-id"),
        redelivered["id"].as_str().unwrap()
    );
    let log = log_until(&server, &owner, &endpoint, "the redelivery", |log| {
        log.len() == 2 && log[0]["status"] == "DELIVERED"
    })
    .await;
    assert_eq!(log[0]["id"], redelivered["id"]);
}

async fn a_timed_out_attempt_is_logged_and_retried(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.webhooks.webhooks_timeout = Duration::from_millis(300);
    })
    .await;
    let owner = server.owner_token().await;
    let receiver = Receiver::start().await;
    receiver.script(&[Answer {
        status: 200,
        retry_after: None,
        delay: Duration::from_secs(2),
    }]);
    let (endpoint, _) = create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.started"]}),
    )
    .await;
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let log = log_until(&server, &owner, &endpoint, "a timed-out attempt", |log| {
        log[0]["attempts"] == 1 && log[0]["status"] == "PENDING"
    })
    .await;
    assert!(
        log[0]["lastError"].as_str().unwrap().contains("timed out"),
        "{}",
        log[0]
    );
    assert!(log[0]["durationMs"].as_i64().unwrap() < 1500);
    assert_eq!(log[0]["responseStatus"], Value::Null);
    log_until(&server, &owner, &endpoint, "the retry", |log| {
        log[0]["status"] == "DELIVERED" && log[0]["attempts"] == 2
    })
    .await;
}

async fn a_chats_deliveries_wait_for_the_earlier_ones(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let (owner, _, ada, mut ada_app) = team(&server).await;
    let receiver = Receiver::start().await;
    // The chat's first event fails once; nothing after it may overtake it.
    receiver.script(&[Answer {
        status: 503,
        retry_after: None,
        delay: Duration::ZERO,
    }]);
    create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.started", "chat.assigned", "message.added"]}),
    )
    .await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "ordered").await;
    let (chat, _) = start_chat(&server, &customer, "Hello").await;
    ada_app.next_event("ChatAssigned").await;
    for text in ["one", "two", "three"] {
        server
            .ok(
                Some(&ada),
                SEND_MESSAGE,
                json!({"c": chat, "t": text, "v": "PUBLIC"}),
            )
            .await;
    }
    let received = receiver.until(6).await;
    let seen: Vec<String> = received
        .iter()
        .map(|r| {
            let d = r.document();
            match d["data"]["message"]["text"].as_str() {
                Some(text) => format!("{}:{text}", d["type"].as_str().unwrap()),
                None => d["type"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    assert_eq!(
        seen,
        [
            "chat.started",
            "chat.started",
            "chat.assigned",
            "message.added:one",
            "message.added:two",
            "message.added:three",
        ]
    );
}

async fn an_endpoint_that_keeps_failing_is_disabled_and_its_admins_told(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.webhooks.webhooks_disable_after_failures = 2;
    })
    .await;
    let owner = server.owner_token().await;
    // The owner's app listens, asking for what this event carries.
    let since = server
        .ok(Some(&owner), "{ agentEventsCursor }", json!({}))
        .await["agentEventsCursor"]
        .clone();
    let mut owner_app = server.ws_ready(&owner).await;
    owner_app
        .send(json!({"id": "events", "type": "subscribe", "payload": {
            "query": "subscription($since: String) { agentEvents(since: $since) { __typename cursor
                ... on WebhookEndpointDisabled { message } } }",
            "variables": {"since": since}}}))
        .await;
    let receiver = Receiver::start().await;
    receiver.always(Answer {
        status: 500,
        retry_after: None,
        delay: Duration::ZERO,
    });
    let (endpoint, _) = create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.closed"]}),
    )
    .await;
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let told = owner_app.next_event("WebhookEndpointDisabled").await;
    assert!(
        told["message"].as_str().unwrap().contains(&receiver.url),
        "{told}"
    );
    let listed = server.ok(Some(&owner), ENDPOINTS, json!({})).await["webhookEndpoints"][0].clone();
    assert_eq!(listed["enabled"], false);
    assert_eq!(listed["consecutiveFailures"], 2);
    assert!(listed["disabledAt"].is_string());
    let reason = listed["disabledReason"].as_str().unwrap();
    assert!(reason.contains("2 failed attempts"), "{reason}");
    assert!(reason.contains("500"), "{reason}");
    // Disabled, it gets nothing more: the delivery waits.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(receiver.received().len(), 2);
    let log = deliveries(&server, &owner, &endpoint).await;
    assert_eq!(log[0]["status"], "PENDING");

    // Enabled again, it starts afresh and the waiting delivery goes out.
    receiver.always(OK);
    let enabled = server
        .ok(
            Some(&owner),
            UPDATE,
            json!({"id": endpoint, "input": {"enabled": true}}),
        )
        .await["updateWebhookEndpoint"]
        .clone();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(enabled["consecutiveFailures"], 0);
    log_until(
        &server,
        &owner,
        &endpoint,
        "delivery after enabling",
        |log| log[0]["status"] == "DELIVERED",
    )
    .await;
}

async fn private_targets_are_refused_unless_the_server_allows_them(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.webhooks.allow_private_webhook_targets = false;
    })
    .await;
    let owner = server.owner_token().await;
    let receiver = Receiver::start().await;
    for url in [
        receiver.url.as_str(),
        "http://localhost:9/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ] {
        let body = server
            .gql(
                Some(&owner),
                CREATE,
                json!({"input": {"url": url, "events": ["chat.started"]}}),
            )
            .await;
        assert_eq!(crate::support::error_code(&body), "BAD_USER_INPUT", "{url}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("public addresses"), "{url}: {message}");
    }
    // An endpoint whose address turns private later (here: changed behind the API's back)
    // is refused at delivery, and nothing reaches it.
    let (endpoint, _) = create(
        &server,
        &owner,
        json!({"url": "https://93.184.216.34/hook", "events": ["chat.started"]}),
    )
    .await;
    server
        .execute_sql(&format!(
            "UPDATE webhook_endpoints SET url = '{}' WHERE id = '{endpoint}'",
            receiver.url
        ))
        .await;
    server
        .ok(Some(&owner), SEND_TEST, json!({"e": endpoint}))
        .await;
    let log = log_until(&server, &owner, &endpoint, "the refusal", |log| {
        log[0]["status"] == "FAILED"
    })
    .await;
    assert!(
        log[0]["lastError"].as_str().unwrap().contains("refused"),
        "{}",
        log[0]
    );
    assert!(receiver.received().is_empty());
}

async fn bad_inputs_and_other_organizations_get_clear_errors(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    let (_, ada) = agent(&server, &owner, "Ada", "AGENT", &[]).await;
    let receiver = Receiver::start().await;
    let (endpoint, _) = create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.started"]}),
    )
    .await;
    let code = |body: Value| crate::support::error_code(&body);
    for (input, expected) in [
        (
            json!({"url": "not a url", "events": ["chat.started"]}),
            "valid URL",
        ),
        (
            json!({"url": "ftp://example.com/", "events": ["chat.started"]}),
            "http",
        ),
        (
            json!({"url": receiver.url, "events": ["chat.exploded"]}),
            "chat.exploded",
        ),
        (json!({"url": receiver.url, "events": []}), "at least one"),
        (
            json!({"url": receiver.url, "events": ["chat.started"], "description": "x".repeat(201)}),
            "description",
        ),
    ] {
        let body = server
            .gql(Some(&owner), CREATE, json!({"input": input}))
            .await;
        assert_eq!(code(body.clone()), "BAD_USER_INPUT", "{input}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{input}: {message}");
    }
    // Agents do not manage webhooks.
    let body = server
        .gql(
            Some(&ada),
            CREATE,
            json!({"input": {"url": receiver.url, "events": ["chat.started"]}}),
        )
        .await;
    assert_eq!(code(body), "FORBIDDEN");
    assert_eq!(
        code(server.gql(Some(&ada), ENDPOINTS, json!({})).await),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            server
                .gql(Some(&ada), SEND_TEST, json!({"e": endpoint}))
                .await
        ),
        "FORBIDDEN"
    );
    // Out-of-range pages and overlaps.
    let body = server
        .gql(Some(&owner), DELIVERIES, json!({"e": endpoint, "first": 0}))
        .await;
    assert_eq!(code(body), "BAD_USER_INPUT");
    let body = server
        .gql(Some(&owner), ROTATE, json!({"id": endpoint, "overlap": -1}))
        .await;
    assert_eq!(code(body), "BAD_USER_INPUT");
    let body = server
        .gql(
            Some(&owner),
            UPDATE,
            json!({"id": endpoint, "input": {"events": ["nope"]}}),
        )
        .await;
    assert_eq!(code(body), "BAD_USER_INPUT");

    // Another organization's endpoint is not found, whatever the operation.
    let rival = server.rival_organization().await.0;
    assert_eq!(
        code(
            server
                .gql(
                    Some(&rival),
                    UPDATE,
                    json!({"id": endpoint, "input": {"enabled": false}})
                )
                .await
        ),
        "NOT_FOUND"
    );
    for (query, variables) in [
        (SEND_TEST, json!({"e": endpoint})),
        (DELIVERIES, json!({"e": endpoint, "first": 10})),
        (ROTATE, json!({"id": endpoint})),
        (
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({"id": endpoint}),
        ),
    ] {
        let body = server.gql(Some(&rival), query, variables).await;
        // deleteWebhookEndpoint answers false rather than failing.
        if body["errors"].is_null() {
            assert_eq!(body["data"]["deleteWebhookEndpoint"], false);
        } else {
            assert_eq!(code(body), "NOT_FOUND", "{query}");
        }
    }
    let rival_list = server.ok(Some(&rival), ENDPOINTS, json!({})).await;
    assert_eq!(rival_list["webhookEndpoints"], json!([]));
    // Still there for its own organization.
    let mine = server.ok(Some(&owner), ENDPOINTS, json!({})).await;
    assert_eq!(mine["webhookEndpoints"][0]["id"], endpoint.as_str());
}

async fn agents_send_a_chat_to_an_integration_and_see_it_delivered(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let (owner, ada_id, ada, mut ada_app) = team(&server).await;
    let (_, bob) = agent(&server, &owner, "Bob", "AGENT", &[]).await;
    let crm = Receiver::start().await;
    let plain = Receiver::start().await;
    let (crm_id, crm_secret) = create(
        &server,
        &owner,
        json!({"url": crm.url, "events": ["chat.closed"], "kind": "INTEGRATION",
               "description": "Acme CRM"}),
    )
    .await;
    let (plain_id, _) = create(
        &server,
        &owner,
        json!({"url": plain.url, "events": ["chat.closed"]}),
    )
    .await;
    let integrations = server
        .ok(Some(&ada), "{ integrations { id name } }", json!({}))
        .await;
    assert_eq!(
        integrations["integrations"],
        json!([{"id": crm_id, "name": "Acme CRM"}])
    );

    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "crm").await;
    let (chat, _) = start_chat(&server, &customer, "I need an invoice").await;
    ada_app.next_event("ChatAssigned").await;
    server
        .ok(
            Some(&ada),
            SEND_MESSAGE,
            json!({"c": chat, "t": "Sending it over", "v": "PUBLIC"}),
        )
        .await;
    server
        .ok(
            Some(&ada),
            SEND_MESSAGE,
            json!({"c": chat, "t": "internal only", "v": "AGENTS"}),
        )
        .await;
    const SEND: &str = "mutation($c: ID!, $e: ID!) {
        sendChatToIntegration(chatId: $c, endpointId: $e) { id status eventType chatId } }";
    let sent = server
        .ok(Some(&ada), SEND, json!({"c": chat, "e": crm_id}))
        .await["sendChatToIntegration"]
        .clone();
    assert_eq!(sent["eventType"], "chat.sent_to_integration");
    assert_eq!(sent["chatId"], chat.as_str());

    let request = crm.until(1).await.remove(0);
    assert_signed(&request, &crm_secret);
    let document = request.document();
    assert_eq!(document["type"], "chat.sent_to_integration");
    assert_eq!(document["version"], 1);
    let data = &document["data"];
    assert_eq!(data["chat"]["id"], chat.as_str());
    assert_eq!(data["customer"]["email"], "crm@customer.test");
    assert_eq!(data["sentBy"]["id"], ada_id.as_str());
    let texts: Vec<&str> = data["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"I need an invoice"), "{texts:?}");
    assert!(texts.contains(&"Sending it over"), "{texts:?}");
    assert!(
        !texts.contains(&"internal only"),
        "a note left the organization"
    );
    if let Some(verified) = python_verifies(&request, &crm_secret) {
        assert!(verified);
    }

    // The agent sees it delivered, on the chat and by id.
    const SENDS: &str = "query($c: ID!) { chatIntegrationSends(chatId: $c) { id status endpointId responseStatus } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sends = server.ok(Some(&ada), SENDS, json!({"c": chat})).await;
        let first = &sends["chatIntegrationSends"][0];
        assert_eq!(first["id"], sent["id"]);
        if first["status"] == "DELIVERED" {
            assert_eq!(first["responseStatus"], 200);
            assert_eq!(first["endpointId"], crm_id.as_str());
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {sends}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let by_id = server
        .ok(
            Some(&ada),
            "query($id: ID!) { webhookDelivery(id: $id) { status } }",
            json!({"id": sent["id"]}),
        )
        .await;
    assert_eq!(by_id["webhookDelivery"]["status"], "DELIVERED");

    // Not to a plain webhook, not a chat one may not see, not someone else's delivery.
    let body = server
        .gql(Some(&ada), SEND, json!({"c": chat, "e": plain_id}))
        .await;
    assert_eq!(crate::support::error_code(&body), "NOT_FOUND");
    let body = server
        .gql(Some(&bob), SEND, json!({"c": chat, "e": crm_id}))
        .await;
    assert_eq!(crate::support::error_code(&body), "NOT_FOUND");
    let body = server
        .gql(
            Some(&bob),
            "query($id: ID!) { webhookDelivery(id: $id) { status } }",
            json!({"id": sent["id"]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&body), "FORBIDDEN");
    assert!(plain.received().is_empty());
}

async fn an_answered_greeting_is_delivered_after_the_chat_it_started(backend: Backend) {
    use crate::visitors::{eventually_visitor, open_page, quick, visitor_on};
    let server = TestServer::start_with(backend, |c| {
        quick(c);
        c.allow_signup = true;
    })
    .await;
    let (owner, ada_id, ada, _ada_app) = team(&server).await;
    let receiver = Receiver::start().await;
    create(
        &server,
        &owner,
        json!({"url": receiver.url, "events": ["chat.started", "greeting.answered"]}),
    )
    .await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "gina", "https://shop.test/pricing").await;
    let _page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &ada, &customer, |_| true).await;
    let greeting = server
        .ok(
            Some(&ada),
            "mutation($c: ID!) { sendGreeting(input: {customerId: $c, text: \"Need help?\"}) { id } }",
            json!({"c": customer}),
        )
        .await["sendGreeting"]["id"]
        .clone();
    let chat = server
        .ok(
            Some(&visitor),
            "mutation($g: ID) { startChat(input: {message: \"Yes please\", greetingId: $g}) { id } }",
            json!({"g": greeting}),
        )
        .await["startChat"]["id"]
        .clone();
    let received = receiver.until(2).await;
    assert_eq!(types(&received), ["chat.started", "greeting.answered"]);
    let data = &received[1].document()["data"];
    assert_eq!(data["greeting"]["id"], greeting);
    assert_eq!(data["greeting"]["agentId"], ada_id.as_str());
    assert_eq!(data["greeting"]["text"], "Need help?");
    assert_eq!(data["chat"]["id"], chat);
}

on_both_backends!(
    a_chats_events_arrive_signed_in_documented_shapes_and_notes_only_when_asked,
    the_reference_library_verifies_deliveries_and_both_secrets_during_a_rotation,
    failed_attempts_are_retried_after_500_honouring_retry_after_and_a_timeout,
    a_timed_out_attempt_is_logged_and_retried,
    a_chats_deliveries_wait_for_the_earlier_ones,
    an_endpoint_that_keeps_failing_is_disabled_and_its_admins_told,
    private_targets_are_refused_unless_the_server_allows_them,
    bad_inputs_and_other_organizations_get_clear_errors,
    agents_send_a_chat_to_an_integration_and_see_it_delivered,
    an_answered_greeting_is_delivered_after_the_chat_it_started,
);
