//! Push notifications: the real FCM client against local fake FCM and OAuth servers, APNs at
//! the sender seam, and the after-hours flow end to end.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use switchboard::domain::{
    NotificationKind, Platform, PushDevice, PushEnvironment, PushMessage, SendOutcome,
};
use switchboard::outbox::push::apns::{self, ApnsPayload, ApnsSender, ApnsTransport};
use switchboard::outbox::push::fcm::{FcmSender, ServiceAccount};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, agent_events, start_chat, visitor, widget_key};

const PUBLIC_KEY: &str = include_str!("fixtures/fcm-test-public.pem");
const SERVICE_ACCOUNT: &str = include_str!("fixtures/fcm-service-account.json");

/// A canned answer of the fake FCM server.
#[derive(Clone)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    fn ok() -> Self {
        Answer {
            status: 200,
            retry_after: None,
            body: json!({"name": "projects/switchboard-test/messages/1"}),
        }
    }

    fn error(status: u16, code: &str, retry_after: Option<u64>) -> Self {
        Answer {
            status,
            retry_after,
            body: json!({"error": {"code": status, "message": "fake", "status": code,
                "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]}}),
        }
    }
}

/// Fake Google OAuth and FCM v1 endpoints that check what the real ones check.
#[derive(Default)]
pub(crate) struct FakeFcm {
    /// Every accepted send body, in order.
    sent: Mutex<Vec<Value>>,
    /// How many access tokens were granted.
    grants: Mutex<usize>,
    /// Scripted answers per device token; when none is left, 200.
    script: Mutex<HashMap<String, VecDeque<Answer>>>,
    /// Tokens the fake refuses with 401 once (simulating an expired access token).
    revoked: Mutex<Vec<String>>,
    token_uri: Mutex<String>,
}

impl FakeFcm {
    fn script(&self, token: &str, answers: Vec<Answer>) {
        self.script
            .lock()
            .unwrap()
            .insert(token.to_owned(), answers.into());
    }

    fn sent(&self) -> Vec<Value> {
        self.sent.lock().unwrap().clone()
    }

    pub(crate) fn sent_to(&self, token: &str) -> Vec<Value> {
        self.sent()
            .into_iter()
            .filter(|m| m["message"]["token"] == token)
            .collect()
    }
}

/// Decodes an application/x-www-form-urlencoded body.
fn form(body: &str) -> HashMap<String, String> {
    let decode = |text: &str| {
        let bytes = text.replace('+', " ").into_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

async fn token(State(fake): State<Arc<FakeFcm>>, body: String) -> Response {
    let form = form(&body);
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return (StatusCode::BAD_REQUEST, "wrong grant_type").into_response();
    }
    let Some(assertion) = form.get("assertion") else {
        return (StatusCode::BAD_REQUEST, "no assertion").into_response();
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[fake.token_uri.lock().unwrap().clone()]);
    validation.set_issuer(&["push@switchboard-test.iam.gserviceaccount.com"]);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(claims)
            if claims.claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging" =>
        {
            let mut grants = fake.grants.lock().unwrap();
            *grants += 1;
            Json(json!({"access_token": format!("access-{grants}"), "expires_in": 3600, "token_type": "Bearer"}))
                .into_response()
        }
        other => (StatusCode::BAD_REQUEST, format!("bad assertion: {other:?}")).into_response(),
    }
}

use axum::Json;

async fn send(
    State(fake): State<Arc<FakeFcm>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(access) = bearer.strip_prefix("Bearer access-") else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}})),
        )
            .into_response();
    };
    {
        let mut revoked = fake.revoked.lock().unwrap();
        if let Some(i) = revoked.iter().position(|r| r == access) {
            revoked.remove(i);
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}})),
            )
                .into_response();
        }
    }
    if project != "switchboard-test" {
        return (StatusCode::NOT_FOUND, "unknown project").into_response();
    }
    // What FCM insists on: a token, and data values that are all strings.
    let message = &body["message"];
    let Some(device) = message["token"].as_str() else {
        return (StatusCode::BAD_REQUEST, "no token").into_response();
    };
    if !message["data"]
        .as_object()
        .is_some_and(|d| d.values().all(Value::is_string))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": 400, "status": "INVALID_ARGUMENT"}})),
        )
            .into_response();
    }
    let answer = fake
        .script
        .lock()
        .unwrap()
        .get_mut(device)
        .and_then(VecDeque::pop_front)
        .unwrap_or_else(Answer::ok);
    if answer.status == 200 {
        fake.sent.lock().unwrap().push(body.clone());
    }
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap(),
        Json(answer.body),
    )
        .into_response();
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

/// Starts the fake on an ephemeral port; returns it and its base URL.
pub(crate) async fn fake_fcm() -> (Arc<FakeFcm>, String) {
    let fake = Arc::new(FakeFcm::default());
    let app = axum::Router::new()
        .route("/token", post(token))
        .route("/v1/projects/{project}/messages:send", post(send))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    *fake.token_uri.lock().unwrap() = format!("{url}/token");
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, url)
}

/// The fixture service account, with its token_uri pointing at the fake.
fn account(base_url: &str) -> ServiceAccount {
    let mut account: ServiceAccount = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
    account.token_uri = format!("{base_url}/token");
    account
}

/// The same, written to a file for the server's configuration.
fn account_file(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let mut json: Value = serde_json::from_str(SERVICE_ACCOUNT).unwrap();
    json["token_uri"] = json!(format!("{base_url}/token"));
    let path = dir.join("service-account.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn device(platform: Platform, token: &str) -> PushDevice {
    PushDevice {
        id: "device-1".into(),
        agent_id: "agent-1".into(),
        organization_id: "org-1".into(),
        platform,
        token: token.into(),
        app_id: "com.example.agent".into(),
        environment: PushEnvironment::Production,
        locale: None,
        device_name: None,
        disabled_reason: None,
        web_push: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

fn message() -> PushMessage {
    PushMessage::new(
        NotificationKind::NewChat,
        "New chat from Sam",
        "Can I pay by invoice?",
        "org-1",
        Some("0190a0b0-0000-7000-8000-000000000001"),
        Some("7"),
    )
}

#[tokio::test]
async fn the_fcm_client_speaks_http_v1_with_a_cached_oauth_token() {
    let (fake, url) = fake_fcm().await;
    let sender = FcmSender::new(account(&url), &url).unwrap();
    assert_eq!(
        sender
            .send(&device(Platform::Android, "ok"), &message(), 3)
            .await,
        SendOutcome::Sent
    );
    assert_eq!(
        sender
            .send(&device(Platform::Android, "ok"), &message(), 3)
            .await,
        SendOutcome::Sent
    );
    assert_eq!(
        *fake.grants.lock().unwrap(),
        1,
        "the access token is cached"
    );
    let sent = fake.sent_to("ok");
    assert_eq!(sent.len(), 2);
    let body = &sent[0]["message"];
    assert_eq!(
        body["notification"],
        json!({"title": "New chat from Sam", "body": "Can I pay by invoice?"})
    );
    assert_eq!(body["data"]["type"], "NEW_CHAT");
    assert_eq!(
        body["data"]["chatId"],
        "0190a0b0-0000-7000-8000-000000000001"
    );
    assert_eq!(body["data"]["organizationId"], "org-1");
    assert_eq!(body["data"]["cursor"], "7");
    assert_eq!(body["android"]["priority"], "HIGH");
    assert_eq!(
        body["android"]["collapse_key"],
        "chat-0190a0b0-0000-7000-8000-000000000001"
    );
    assert_eq!(body["android"]["notification"]["notification_count"], 3);

    // A refused access token is replaced on the next attempt.
    fake.revoked.lock().unwrap().push("1".into());
    assert!(matches!(
        sender
            .send(&device(Platform::Android, "ok"), &message(), 0)
            .await,
        SendOutcome::Retry { .. }
    ));
    assert_eq!(
        sender
            .send(&device(Platform::Android, "ok"), &message(), 0)
            .await,
        SendOutcome::Sent
    );
    assert_eq!(*fake.grants.lock().unwrap(), 2);
}

#[tokio::test]
async fn fcm_errors_map_to_retries_failures_and_dead_tokens() {
    let (fake, url) = fake_fcm().await;
    let sender = FcmSender::new(account(&url), &url).unwrap();
    fake.script(
        "throttled",
        vec![
            Answer::error(429, "QUOTA_EXCEEDED", Some(7)),
            Answer::error(429, "QUOTA_EXCEEDED", None),
        ],
    );
    fake.script("flaky", vec![Answer::error(500, "INTERNAL", None)]);
    fake.script("gone", vec![Answer::error(404, "UNREGISTERED", None)]);
    fake.script(
        "wrong-sender",
        vec![Answer::error(403, "SENDER_ID_MISMATCH", None)],
    );
    fake.script("bad", vec![Answer::error(400, "INVALID_ARGUMENT", None)]);
    let send = |token: &'static str| {
        let sender = &sender;
        async move {
            sender
                .send(&device(Platform::Android, token), &message(), 0)
                .await
        }
    };
    assert!(
        matches!(send("throttled").await, SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7))
    );
    assert!(
        matches!(send("throttled").await, SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(60))
    );
    assert!(matches!(send("flaky").await, SendOutcome::Retry { .. }));
    assert_eq!(
        send("flaky").await,
        SendOutcome::Sent,
        "the next attempt goes through"
    );
    assert!(
        matches!(send("gone").await, SendOutcome::TokenInvalid { reason } if reason.contains("UNREGISTERED"))
    );
    assert!(matches!(
        send("wrong-sender").await,
        SendOutcome::TokenInvalid { .. }
    ));
    assert!(matches!(send("bad").await, SendOutcome::Failed { .. }));
    let unreachable = FcmSender::new(account("http://127.0.0.1:9"), "http://127.0.0.1:9").unwrap();
    assert!(matches!(
        unreachable
            .send(&device(Platform::Android, "ok"), &message(), 0)
            .await,
        SendOutcome::Retry { .. }
    ));
}

/// One request a2 would have sent.
#[derive(Clone)]
struct Recorded {
    json: String,
    topic: String,
    collapse_id: Option<String>,
    /// apns-priority and apns-push-type, as a2 holds them.
    headers: String,
    environment: PushEnvironment,
}

/// Captures what a2 would send, at the transport seam, and answers 200.
#[derive(Default)]
struct RecordingTransport {
    requests: Mutex<Vec<Recorded>>,
}

#[async_trait]
impl ApnsTransport for RecordingTransport {
    async fn send(
        &self,
        payload: ApnsPayload<'_>,
        environment: PushEnvironment,
    ) -> Result<a2::Response, a2::Error> {
        use a2::request::payload::PayloadLike;
        let options = payload.get_options();
        let recorded = Recorded {
            json: payload.to_json_string()?,
            topic: options.apns_topic.unwrap_or_default().to_owned(),
            collapse_id: options
                .apns_collapse_id
                .as_ref()
                .map(|c| c.value.to_owned()),
            headers: format!("{:?}/{:?}", options.apns_priority, options.apns_push_type),
            environment,
        };
        self.requests.lock().unwrap().push(recorded);
        Ok(a2::Response {
            error: None,
            apns_id: None,
            code: 200,
        })
    }
}

#[tokio::test]
async fn apns_requests_match_the_golden_payload() {
    let transport = Arc::new(RecordingTransport::default());
    let sender = ApnsSender::new(transport.clone());
    let mut ios = device(Platform::Ios, "a1b2c3");
    ios.environment = PushEnvironment::Sandbox;
    assert_eq!(sender.send(&ios, &message(), 2).await, SendOutcome::Sent);
    let Recorded {
        json,
        topic,
        collapse_id: collapse,
        headers: priority,
        environment,
    } = transport.requests.lock().unwrap()[0].clone();
    let golden = json!({
        "aps": {
            "alert": {"title": "New chat from Sam", "body": "Can I pay by invoice?"},
            "badge": 2,
            "sound": "default",
            "thread-id": "0190a0b0-0000-7000-8000-000000000001",
        },
        "chatId": "0190a0b0-0000-7000-8000-000000000001",
        "cursor": "7",
        "organizationId": "org-1",
        "type": "NEW_CHAT",
    });
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), golden);
    assert_eq!(topic, "com.example.agent");
    assert_eq!(
        collapse.as_deref(),
        Some("chat-0190a0b0-0000-7000-8000-000000000001")
    );
    assert_eq!(priority, "Some(High)/Some(Alert)");
    assert_eq!(environment, PushEnvironment::Sandbox);

    let queue = PushMessage::new(
        NotificationKind::QueuedCustomers,
        "3 customers are waiting",
        "Open the queue",
        "org-1",
        None,
        None,
    );
    sender.send(&ios, &queue, 0).await;
    let second = transport.requests.lock().unwrap()[1].clone();
    let (collapse, priority) = (second.collapse_id, second.headers);
    assert_eq!(collapse.as_deref(), Some("queued_customers"));
    assert_eq!(priority, "Some(Normal)/Some(Alert)");
}

#[test]
fn apns_error_reasons_map_to_outcomes() {
    use a2::response::{ErrorBody, ErrorReason};
    let answer = |code: u16, reason: Option<ErrorReason>| {
        apns::outcome(Err(a2::Error::ResponseError(a2::Response {
            error: reason.map(|reason| ErrorBody {
                reason,
                timestamp: None,
            }),
            apns_id: None,
            code,
        })))
    };
    assert!(matches!(
        answer(410, Some(ErrorReason::Unregistered)),
        SendOutcome::TokenInvalid { .. }
    ));
    assert!(matches!(
        answer(400, Some(ErrorReason::BadDeviceToken)),
        SendOutcome::TokenInvalid { .. }
    ));
    assert!(matches!(
        answer(400, Some(ErrorReason::DeviceTokenNotForTopic)),
        SendOutcome::TokenInvalid { .. }
    ));
    assert!(matches!(
        answer(429, Some(ErrorReason::TooManyRequests)),
        SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(60)
    ));
    assert!(matches!(
        answer(500, Some(ErrorReason::InternalServerError)),
        SendOutcome::Retry { .. }
    ));
    assert!(matches!(
        answer(503, Some(ErrorReason::ServiceUnavailable)),
        SendOutcome::Retry { .. }
    ));
    assert!(matches!(
        answer(400, Some(ErrorReason::BadTopic)),
        SendOutcome::Failed { .. }
    ));
    assert!(matches!(
        answer(413, Some(ErrorReason::PayloadTooLarge)),
        SendOutcome::Failed { .. }
    ));
    assert_eq!(
        apns::outcome(Ok(a2::Response {
            error: None,
            apns_id: None,
            code: 200
        })),
        SendOutcome::Sent
    );
    assert!(matches!(
        apns::outcome(Err(a2::Error::RequestTimeout(20))),
        SendOutcome::Retry { .. }
    ));
}

// ---- through the server ---------------------------------------------------------------------

const REGISTER: &str = "mutation($input: RegisterPushDeviceInput!) { registerPushDevice(input: $input) { id token enabled disabledReason } }";

pub(crate) async fn register(server: &TestServer, token: &str, device_token: &str) -> Value {
    server
        .ok(
            Some(token),
            REGISTER,
            json!({"input": {"platform": "ANDROID", "token": device_token, "appId": "com.example.agent", "environment": "PRODUCTION"}}),
        )
        .await["registerPushDevice"]
        .clone()
}

/// A server whose FCM talks to `fake_url`, with its owner set aside.
pub(crate) async fn push_server(
    backend: Backend,
    fake_url: &str,
    configure: impl FnOnce(&mut switchboard::Config),
) -> (TestServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = account_file(dir.path(), fake_url);
    let fake_url = fake_url.to_owned();
    let server = TestServer::start_with(backend, move |c| {
        c.fcm_service_account = Some(path);
        c.fcm_endpoint = fake_url;
        c.timer_interval = Duration::from_millis(100);
        configure(c);
    })
    .await;
    let owner = server.owner_token().await;
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    (server, owner, dir)
}

pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

on_both_backends!(
    after_hours_a_push_then_the_next_agent_when_nobody_acknowledges,
    an_acknowledged_assignment_stays_with_the_agent,
    customer_messages_share_one_push_per_ten_seconds_and_none_once_seen,
    a_dead_token_is_disabled_with_its_reason,
    devices_move_with_their_token_and_preferences_silence_kinds,
    waiting_customers_and_offline_messages_reach_phones,
);

/// The seed's after-hours promise: an agent keeps "Accept chats" on with the phone in a
/// pocket; a chat pushes to the phone; unacknowledged, it moves to the next agent and the first
/// gets MISSED_CHAT and stops accepting chats.
async fn after_hours_a_push_then_the_next_agent_when_nobody_acknowledges(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 1, autoTransferSeconds: 3600}) { id } }", json!({}))
        .await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let bob_id = server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;

    // Ada's app registers the phone, then goes to the background: its socket closes.
    let ws = server.ws_ready(&ada).await;
    assert_eq!(register(&server, &ada, "ada-phone").await["enabled"], true);
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut bob_events = agent_events(&server, &bob, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "night-owl").await;
    let (chat, status) = start_chat(&server, &customer, "Are you there?").await;
    assert_eq!(status, "ACTIVE", "Ada stays routable through her phone");
    wait_until("the phone gets the push", || {
        !fake.sent_to("ada-phone").is_empty()
    })
    .await;
    let push = fake.sent_to("ada-phone")[0]["message"].clone();
    assert_eq!(push["data"]["type"], "NEW_CHAT");
    assert_eq!(push["data"]["chatId"], chat.as_str());
    assert_eq!(push["android"]["priority"], "HIGH");
    assert!(
        push["notification"]["body"]
            .as_str()
            .unwrap()
            .contains("Are you there?")
    );

    // Bob comes online; Ada never acknowledges.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let moved = bob_events.next_event("ChatAssigned").await;
    assert_eq!(moved["chat"]["id"], chat.as_str());
    let now = server.ok(Some(&owner), "query($id: ID!, $id2: ID!) { chat(id: $id) { assignee { id } } agent(id: $id2) { routingStatus } }", json!({"id": chat, "id2": ada_id})).await;
    assert_eq!(now["chat"]["assignee"]["id"], bob_id.as_str());
    assert_eq!(now["agent"]["routingStatus"], "NOT_ACCEPTING_CHATS");
    wait_until("Ada hears she missed it", || {
        fake.sent_to("ada-phone")
            .iter()
            .any(|m| m["message"]["data"]["type"] == "MISSED_CHAT")
    })
    .await;
    let pushes = fake.sent_to("ada-phone");
    assert_eq!(
        pushes
            .iter()
            .filter(|m| m["message"]["data"]["type"] == "NEW_CHAT")
            .count(),
        1,
        "exactly one push for the chat"
    );
}

async fn an_acknowledged_assignment_stays_with_the_agent(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 1, autoTransferSeconds: 3600}) { id } }", json!({}))
        .await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    register(&server, &ada, "ada-phone").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    wait_until("the push goes out", || {
        !fake.sent_to("ada-phone").is_empty()
    })
    .await;
    // Tapping the push opens the app: a live connection acknowledges.
    let _ws = server.ws_ready(&ada).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mine = server
        .ok(
            Some(&ada),
            "{ myChats { id } me { routingStatus } }",
            json!({}),
        )
        .await;
    assert_eq!(mine["myChats"][0]["id"], chat.as_str());
    assert_eq!(mine["me"]["routingStatus"], "ACCEPTING_CHATS");
}

async fn customer_messages_share_one_push_per_ten_seconds_and_none_once_seen(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    register(&server, &ada, "ada-phone").await;
    // Ada opens the chat on the phone, answers, and puts the phone away.
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "chatty").await;
    let ws = server.ws_ready(&ada).await;
    let (chat, _) = start_chat(&server, &customer, "first").await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"Hi!\"}) { id } }",
            json!({"c": chat}),
        )
        .await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for text in ["one", "two", "three"] {
        server.ok(Some(&customer), "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }", json!({"c": chat, "t": text})).await;
    }
    let message_pushes = |fake: &FakeFcm| {
        fake.sent_to("ada-phone")
            .into_iter()
            .filter(|m| m["message"]["data"]["type"] == "NEW_MESSAGE")
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(message_pushes(&fake).is_empty(), "debounced for 10 s");
    wait_until("the shared push goes out", || {
        !message_pushes(&fake).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushes = message_pushes(&fake);
    assert_eq!(pushes.len(), 1, "three messages, one push");
    assert_eq!(
        pushes[0]["message"]["notification"]["body"], "three",
        "it shows the latest"
    );

    // Once Ada has answered, a pending push is dropped.
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"four\"}) { id } }",
            json!({"c": chat}),
        )
        .await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"On it\"}) { id } }",
            json!({"c": chat}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(
        message_pushes(&fake).len(),
        1,
        "no push for what she has seen"
    );
}

async fn a_dead_token_is_disabled_with_its_reason(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    fake.script("old-phone", vec![Answer::error(404, "UNREGISTERED", None)]);
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    register(&server, &ada, "old-phone").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v").await;
    start_chat(&server, &customer, "hello").await;
    let mut devices = Value::Null;
    for _ in 0..50 {
        devices = server
            .ok(
                Some(&ada),
                "{ myPushDevices { token enabled disabledReason } }",
                json!({}),
            )
            .await;
        if devices["myPushDevices"][0]["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(devices["myPushDevices"][0]["enabled"], false);
    assert!(
        devices["myPushDevices"][0]["disabledReason"]
            .as_str()
            .unwrap()
            .contains("UNREGISTERED")
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("switchboard_pushes_total{provider=\"fcm\",outcome=\"token_disabled\"} 1"),
        "{metrics}"
    );
    // Registering the token again (after a reinstall) enables it.
    assert_eq!(register(&server, &ada, "old-phone").await["enabled"], true);
}

async fn devices_move_with_their_token_and_preferences_silence_kinds(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    let first = register(&server, &ada, "shared-tablet").await;
    let again = register(&server, &bob, "shared-tablet").await;
    assert_eq!(first["id"], again["id"], "one device per token");
    assert_eq!(
        server
            .ok(Some(&ada), "{ myPushDevices { token } }", json!({}))
            .await["myPushDevices"],
        json!([])
    );
    assert_eq!(
        server
            .ok(Some(&bob), "{ myPushDevices { token } }", json!({}))
            .await["myPushDevices"][0]["token"],
        "shared-tablet"
    );
    let bad = server
        .gql(
            Some(&bob),
            REGISTER,
            json!({"input": {"platform": "ANDROID", "token": "  ", "appId": "com.example.agent"}}),
        )
        .await;
    assert_eq!(crate::support::error_code(&bad), "BAD_USER_INPUT");
    let customer_token = visitor(&server, &widget_key(&server, &owner).await, "x").await;
    let forbidden = server
        .gql(
            Some(&customer_token),
            REGISTER,
            json!({"input": {"platform": "IOS", "token": "t", "appId": "a"}}),
        )
        .await;
    assert_eq!(crate::support::error_code(&forbidden), "FORBIDDEN");

    // Bob switches new-chat pushes off: a chat reaches him without one.
    let prefs = server
        .ok(Some(&bob), "mutation { updateNotificationPreferences(preferences: [{kind: NEW_CHAT, enabled: false}]) { kind enabled } }", json!({}))
        .await;
    assert!(
        prefs["updateNotificationPreferences"]
            .as_array()
            .unwrap()
            .contains(&json!({"kind": "NEW_CHAT", "enabled": false}))
    );
    server
        .ok(
            Some(&ada),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let customer = visitor(&server, &widget_key(&server, &owner).await, "quiet").await;
    let (_, status) = start_chat(&server, &customer, "hello").await;
    assert_eq!(status, "ACTIVE");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(fake.sent_to("shared-tablet").is_empty());
    assert!(
        server
            .ok(
                Some(&bob),
                "mutation { unregisterPushDevice(token: \"shared-tablet\") }",
                json!({})
            )
            .await["unregisterPushDevice"]
            == true
    );
    assert_eq!(
        server
            .ok(Some(&bob), "{ myPushDevices { token } }", json!({}))
            .await["myPushDevices"],
        json!([])
    );
}

/// Jobs queued while FCM is unreachable survive a restart and are sent exactly once after it.
#[tokio::test]
async fn the_outbox_survives_a_restart_without_loss_or_duplicates() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_owned();
    let (fake, url) = fake_fcm().await;
    // First life: FCM is down (nothing listens on port 9).
    let dir = data_dir.clone();
    let (mut first, owner, _d1) = push_server(Backend::Sqlite, "http://127.0.0.1:9", move |c| {
        c.data_dir = dir
    })
    .await;
    first
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 3600}) { id } }", json!({}))
        .await;
    first.create_agent(&owner, "ada@example.com", "AGENT").await;
    let ada = first.agent_token("ada@example.com").await;
    register(&first, &ada, "ada-phone").await;
    let key = widget_key(&first, &owner).await;
    let mut chats = Vec::new();
    for n in 0..3 {
        let customer = visitor(&first, &key, &format!("c{n}")).await;
        chats.push(start_chat(&first, &customer, "hello").await.0);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.shut_down().await;

    // Second life on the same database: FCM is back.
    let dir = data_dir.clone();
    let (second, _, _d2) = push_server(Backend::Sqlite, &url, move |c| c.data_dir = dir).await;
    wait_until("every queued push is delivered", || {
        fake.sent_to("ada-phone").len() >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = fake.sent_to("ada-phone");
    let mut delivered: Vec<String> = sent
        .iter()
        .map(|m| m["message"]["data"]["chatId"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    chats.sort();
    assert_eq!(delivered, chats, "each chat's push exactly once");
    let ada_id = second
        .ok(
            Some(&second.agent_token("ada@example.com").await),
            "{ me { id } }",
            json!({}),
        )
        .await["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jobs = second.store.push_jobs(&ada_id).await.unwrap();
    assert!(
        jobs.iter()
            .all(|j| j.status == switchboard::domain::PushJobStatus::Sent),
        "{jobs:?}"
    );
    assert!(
        jobs.iter().all(|j| j.attempts >= 2),
        "the first life tried and failed"
    );
}

async fn waiting_customers_and_offline_messages_reach_phones(backend: Backend) {
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 3600, queueLimit: 10}) { id } }", json!({}))
        .await;
    let data = server
        .ok(
            Some(&owner),
            "mutation { createAgent(input: {email: \"ada@example.com\", name: \"Ada\", password: \"agent-password-1\", chatLimit: 1}) { id } }",
            json!({}),
        )
        .await;
    assert!(data["createAgent"]["id"].is_string());
    let ada = server.agent_token("ada@example.com").await;
    register(&server, &ada, "ada-phone").await;
    register(&server, &owner, "owner-phone").await;
    let key = widget_key(&server, &owner).await;
    // The first chat fills Ada's only slot; the next two wait: one collapsed queue push.
    for n in 0..3 {
        let customer = visitor(&server, &key, &format!("q{n}")).await;
        start_chat(&server, &customer, "hello").await;
    }
    let of_type = |token: &str, kind: &str| {
        fake.sent_to(token)
            .into_iter()
            .filter(|m| m["message"]["data"]["type"] == kind)
            .collect::<Vec<_>>()
    };
    wait_until("a queue push", || {
        !of_type("ada-phone", "QUEUED_CUSTOMERS").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let queue = of_type("ada-phone", "QUEUED_CUSTOMERS");
    assert_eq!(queue.len(), 1, "at most one a minute");
    assert_eq!(queue[0]["message"]["android"]["priority"], "NORMAL");
    assert!(
        of_type("owner-phone", "QUEUED_CUSTOMERS").is_empty(),
        "only agents who accept chats"
    );

    // An offline message reaches the admins (the owner) and the group's agents.
    let customer = visitor(&server, &key, "after-hours").await;
    server
        .ok(
            Some(&customer),
            "mutation { leaveOfflineMessage(input: {name: \"Sam\", email: \"sam@example.com\", text: \"Call me back\"}) { id } }",
            json!({}),
        )
        .await;
    wait_until("the owner's offline-message push", || {
        !of_type("owner-phone", "OFFLINE_MESSAGE").is_empty()
    })
    .await;
    let offline = &of_type("owner-phone", "OFFLINE_MESSAGE")[0]["message"];
    assert_eq!(offline["notification"]["title"], "Offline message from Sam");
    assert_eq!(offline["notification"]["body"], "Call me back");
}
