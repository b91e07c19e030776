//! Web Push: the server's sender against a local fake push service that checks what browser
//! vendors' push services check — the VAPID signature, with the public key the browser
//! subscribed with (`webPushPublicKey`) — and reads the payload as the browser would, with the
//! subscription's private key made here. The decryption below is written from RFC 8291 with
//! p256, hkdf and aes-gcm, independently of the crate the server encrypts with.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, error_code, start_chat, visitor, widget_key};

const REGISTER: &str = "mutation($input: RegisterPushDeviceInput!) { registerPushDevice(input: $input) { id platform token appId enabled disabledReason } }";

/// The browser's side of a subscription: what only the browser knows.
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Browser {
        let mut auth = [0u8; 16];
        OsRng.fill_bytes(&mut auth);
        Browser {
            secret: p256::SecretKey::random(&mut OsRng),
            auth,
        }
    }

    /// `PushSubscription.toJSON().keys`.
    fn keys(&self) -> Value {
        json!({
            "p256dh": URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        })
    }

    /// Reads an `aes128gcm` body (RFC 8188 §2) encrypted for this browser (RFC 8291 §3).
    fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        if body.len() < 21 {
            return Err("body shorter than the aes128gcm header".into());
        }
        let salt = &body[..16];
        let record_size = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
        let id_len = body[20] as usize;
        let key_id = body.get(21..21 + id_len).ok_or("truncated key id")?;
        let ciphertext = &body[21 + id_len..];
        if ciphertext.len() > record_size {
            return Err("more than one record".into());
        }
        // The key id is the server's one-time public key (RFC 8291 §4).
        let server_public =
            p256::PublicKey::from_sec1_bytes(key_id).map_err(|_| "key id is not a P-256 point")?;
        let shared =
            p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), server_public.as_affine());
        let mut key_info = b"WebPush: info\0".to_vec();
        key_info.extend_from_slice(self.secret.public_key().to_encoded_point(false).as_bytes());
        key_info.extend_from_slice(key_id);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth[..]), &shared.raw_secret_bytes()[..])
            .expand(&key_info, &mut ikm)
            .map_err(|_| "hkdf")?;
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let mut cek = [0u8; 16];
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .map_err(|_| "hkdf")?;
        let mut nonce = [0u8; 12];
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .map_err(|_| "hkdf")?;
        let record = Aes128Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt(&nonce.into(), ciphertext)
            .map_err(|_| "the record does not decrypt with the subscription's keys")?;
        // The last record ends with the delimiter 2, then zero padding (RFC 8188 §2).
        let end = record
            .iter()
            .rposition(|b| *b != 0)
            .ok_or("record has no delimiter")?;
        if record[end] != 2 {
            return Err("the last record's delimiter is not 2".into());
        }
        Ok(record[..end].to_vec())
    }
}

/// A canned answer of the fake: status and Retry-After seconds.
type Answer = (u16, Option<u64>);

/// One push the fake accepted.
#[derive(Clone, Debug)]
struct Delivery {
    subscription: String,
    headers: HeaderMap,
    payload: Value,
}

/// A fake push service: `POST /push/{subscription}`.
#[derive(Default)]
struct FakePushService {
    /// Subscriptions it knows; others get 404.
    browsers: Mutex<HashMap<String, Browser>>,
    /// The VAPID public key pushes must be signed with (what browsers subscribed with).
    vapid_key: Mutex<String>,
    /// Its own origin: the JWT's audience.
    origin: Mutex<String>,
    delivered: Mutex<Vec<Delivery>>,
    /// Every request: subscription, answer, when.
    attempts: Mutex<Vec<(String, u16, Instant)>>,
    /// Requests a real push service would refuse, and why; tests expect none.
    refused: Mutex<Vec<String>>,
    /// Answers (status, Retry-After) per subscription; when none is left, 201.
    script: Mutex<HashMap<String, VecDeque<Answer>>>,
}

impl FakePushService {
    fn subscribe(&self, name: &str) -> Value {
        let browser = Browser::new();
        let keys = browser.keys();
        self.browsers
            .lock()
            .unwrap()
            .insert(name.to_owned(), browser);
        keys
    }

    fn script(&self, name: &str, answers: Vec<Answer>) {
        self.script
            .lock()
            .unwrap()
            .insert(name.to_owned(), answers.into());
    }

    fn delivered_to(&self, name: &str) -> Vec<Delivery> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.subscription == name)
            .cloned()
            .collect()
    }

    fn attempts_at(&self, name: &str) -> Vec<(u16, Instant)> {
        self.attempts
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _, _)| s == name)
            .map(|(_, status, at)| (*status, *at))
            .collect()
    }

    fn assert_nothing_refused(&self) {
        let refused = self.refused.lock().unwrap();
        assert!(refused.is_empty(), "the push service refused: {refused:?}");
    }

    /// What a push service checks before it accepts a push: the VAPID token (RFC 8292 §2–3)
    /// and the headers (RFC 8030 §5).
    fn check_request(&self, headers: &HeaderMap) -> Result<(), String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = header("authorization").ok_or("no Authorization")?;
        let params = authorization
            .strip_prefix("vapid ")
            .ok_or("Authorization is not the vapid scheme")?;
        let mut token = None;
        let mut key = None;
        for param in params.split(',') {
            match param.trim().split_once('=') {
                Some(("t", value)) => token = Some(value.to_owned()),
                Some(("k", value)) => key = Some(value.to_owned()),
                _ => return Err(format!("unknown vapid parameter {param:?}")),
            }
        }
        let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
        if key != *self.vapid_key.lock().unwrap() {
            return Err("k= is not the key the browser subscribed with".into());
        }
        let point = URL_SAFE_NO_PAD
            .decode(&key)
            .map_err(|_| "k= is not base64url")?;
        if point.len() != 65 || point[0] != 4 {
            return Err("k= is not an uncompressed P-256 point".into());
        }
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .map_err(|err| format!("k=: {err}"))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[self.origin.lock().unwrap().clone()]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(&token, &decoding, &validation)
            .map_err(|err| format!("the VAPID token does not verify: {err}"))?
            .claims;
        let lifetime = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
        if lifetime > 24 * 3600 {
            return Err("the VAPID token is valid for more than 24 hours".into());
        }
        let subject = claims["sub"].as_str().unwrap_or("");
        if !(subject.starts_with("mailto:") || subject.starts_with("https:")) {
            return Err(format!("sub {subject:?} is not mailto: or https:"));
        }
        if header("content-encoding").as_deref() != Some("aes128gcm") {
            return Err("Content-Encoding is not aes128gcm".into());
        }
        header("ttl")
            .and_then(|ttl| ttl.parse::<u64>().ok())
            .ok_or("no numeric TTL")?;
        let urgency = header("urgency").unwrap_or_default();
        if !["very-low", "low", "normal", "high"].contains(&urgency.as_str()) {
            return Err(format!("Urgency {urgency:?}"));
        }
        if let Some(topic) = header("topic")
            && (topic.len() > 32
                || !topic
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(format!(
                "Topic {topic:?} is not at most 32 base64url characters"
            ));
        }
        Ok(())
    }
}

async fn push(
    State(fake): State<Arc<FakePushService>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = |status: u16, retry_after: Option<u64>, text: String| {
        fake.attempts
            .lock()
            .unwrap()
            .push((name.clone(), status, Instant::now()));
        let mut response = (StatusCode::from_u16(status).unwrap(), text).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert("retry-after", seconds.into());
        }
        response
    };
    if let Err(why) = fake.check_request(&headers) {
        fake.refused.lock().unwrap().push(format!("{name}: {why}"));
        return answer(403, None, why);
    }
    let decrypted = match fake.browsers.lock().unwrap().get(&name) {
        None => return answer(404, None, "no such subscription".into()),
        Some(browser) => browser.decrypt(&body),
    };
    let payload = match decrypted
        .and_then(|plain| serde_json::from_slice::<Value>(&plain).map_err(|e| e.to_string()))
    {
        Ok(payload) => payload,
        Err(why) => {
            fake.refused.lock().unwrap().push(format!("{name}: {why}"));
            return answer(400, None, why);
        }
    };
    let scripted = fake
        .script
        .lock()
        .unwrap()
        .get_mut(&name)
        .and_then(VecDeque::pop_front);
    let (status, retry_after) = scripted.unwrap_or((201, None));
    if status == 201 {
        fake.delivered.lock().unwrap().push(Delivery {
            subscription: name.clone(),
            headers,
            payload,
        });
    }
    answer(status, retry_after, String::new())
}

/// Starts the fake on an ephemeral port; returns it and its origin.
async fn fake_push_service() -> (Arc<FakePushService>, String) {
    let fake = Arc::new(FakePushService::default());
    let app = axum::Router::new()
        .route("/push/{name}", post(push))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    *fake.origin.lock().unwrap() = origin.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, origin)
}

/// A server that may post to the fake on 127.0.0.1, with its owner not taking chats; Ada, an
/// agent, signed in with the app closed. Returns the server, the owner's and Ada's tokens.
async fn web_push_server(backend: Backend) -> (TestServer, String, String) {
    let server = TestServer::start_with(backend, |c| {
        c.web_push_allow_local = true;
        c.timer_interval = Duration::from_millis(100);
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
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    (server, owner, ada)
}

/// The browser subscribes with the server's key and the app registers the subscription.
async fn subscribe(
    server: &TestServer,
    fake: &FakePushService,
    origin: &str,
    token: &str,
    name: &str,
) -> Value {
    let key = server
        .ok(Some(token), "{ webPushPublicKey }", json!({}))
        .await["webPushPublicKey"]
        .as_str()
        .unwrap()
        .to_owned();
    *fake.vapid_key.lock().unwrap() = key;
    let keys = fake.subscribe(name);
    server
        .ok(
            Some(token),
            REGISTER,
            json!({"input": {"platform": "WEB", "token": format!("{origin}/push/{name}"),
                "appId": server.base_url, "webPush": keys}}),
        )
        .await["registerPushDevice"]
        .clone()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..150 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

fn header<'a>(delivery: &'a Delivery, name: &str) -> &'a str {
    delivery
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

on_both_backends!(
    a_browser_reads_a_signed_encrypted_push_for_a_new_chat,
    pushes_of_one_chat_share_its_topic_and_other_chats_do_not,
    gone_and_unknown_subscriptions_are_disabled_with_the_reason,
    throttled_and_failing_pushes_wait_for_retry_after_and_arrive,
);

async fn a_browser_reads_a_signed_encrypted_push_for_a_new_chat(backend: Backend) {
    let (fake, origin) = fake_push_service().await;
    let (server, owner, ada) = web_push_server(backend).await;
    let key = server
        .ok(Some(&ada), "{ webPushPublicKey }", json!({}))
        .await["webPushPublicKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let point = URL_SAFE_NO_PAD.decode(&key).unwrap();
    assert_eq!(
        (point.len(), point[0]),
        (65, 4),
        "an uncompressed P-256 point, as applicationServerKey takes it"
    );
    let device = subscribe(&server, &fake, &origin, &ada, "ada-laptop").await;
    assert_eq!(device["platform"], "WEB");
    assert_eq!(device["token"], format!("{origin}/push/ada-laptop"));
    assert_eq!(device["appId"], server.base_url.as_str());
    assert_eq!(device["enabled"], true);

    let customer = visitor(&server, &widget_key(&server, &owner).await, "sam").await;
    let (chat, status) = start_chat(&server, &customer, "Can I pay by invoice?").await;
    assert_eq!(status, "ACTIVE", "Ada is reachable through her browser");
    wait_until("the browser gets the push", || {
        !fake.delivered_to("ada-laptop").is_empty()
    })
    .await;
    fake.assert_nothing_refused();
    let push = fake.delivered_to("ada-laptop")[0].clone();
    let payload = &push.payload;
    assert_eq!(payload["type"], "NEW_CHAT");
    assert_eq!(payload["chatId"], chat.as_str());
    assert!(payload["organizationId"].is_string());
    assert!(payload["cursor"].is_string());
    assert_eq!(payload["title"], "New chat from Visitor sam");
    assert_eq!(payload["body"], "Can I pay by invoice?");
    assert_eq!(payload["badge"], 1);
    assert_eq!(header(&push, "urgency"), "high");
    assert_eq!(header(&push, "ttl"), "86400");
    assert_eq!(header(&push, "topic"), chat.replace('-', ""));
    assert_eq!(header(&push, "content-type"), "application/octet-stream");

    let devices = server
        .ok(
            Some(&ada),
            "{ myPushDevices { platform token enabled } }",
            json!({}),
        )
        .await;
    assert_eq!(
        devices["myPushDevices"],
        json!([{"platform": "WEB", "token": format!("{origin}/push/ada-laptop"), "enabled": true}])
    );
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("switchboard_pushes_total{provider=\"webpush\",outcome=\"sent\"} 1"),
        "{metrics}"
    );
}

/// A newer push of a chat replaces an older one the browser has not received: they share the
/// chat's topic, and another chat's pushes do not.
async fn pushes_of_one_chat_share_its_topic_and_other_chats_do_not(backend: Backend) {
    let (fake, origin) = fake_push_service().await;
    let (server, owner, ada) = web_push_server(backend).await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 1, autoTransferSeconds: 3600}) { id } }", json!({}))
        .await;
    subscribe(&server, &fake, &origin, &ada, "ada-laptop").await;
    let key = widget_key(&server, &owner).await;
    let first = start_chat(&server, &visitor(&server, &key, "one").await, "hello")
        .await
        .0;
    let second = start_chat(&server, &visitor(&server, &key, "two").await, "hi")
        .await
        .0;
    let of_type = |kind: &str| {
        fake.delivered_to("ada-laptop")
            .into_iter()
            .filter(|d| d.payload["type"] == kind)
            .collect::<Vec<_>>()
    };
    // Ada never opens the app: the assignment lapses, and she hears she missed it.
    wait_until("a missed-chat push", || !of_type("MISSED_CHAT").is_empty()).await;
    fake.assert_nothing_refused();
    let new_chats = of_type("NEW_CHAT");
    assert_eq!(new_chats.len(), 2, "one push per new chat");
    let topic_of = |chat: &str| {
        let push = new_chats
            .iter()
            .find(|d| d.payload["chatId"] == chat)
            .expect("a push for the chat");
        header(push, "topic").to_owned()
    };
    assert_ne!(topic_of(&first), topic_of(&second));
    let missed = &of_type("MISSED_CHAT")[0];
    let missed_chat = missed.payload["chatId"].as_str().unwrap();
    assert_eq!(
        header(missed, "topic"),
        topic_of(missed_chat),
        "the missed-chat push replaces that chat's new-chat push"
    );
}

async fn gone_and_unknown_subscriptions_are_disabled_with_the_reason(backend: Backend) {
    let (fake, origin) = fake_push_service().await;
    let (server, owner, ada) = web_push_server(backend).await;
    subscribe(&server, &fake, &origin, &ada, "unsubscribed").await;
    subscribe(&server, &fake, &origin, &ada, "forgotten").await;
    subscribe(&server, &fake, &origin, &ada, "alive").await;
    fake.script("unsubscribed", vec![(410, None)]);
    fake.browsers.lock().unwrap().remove("forgotten");
    let customer = visitor(&server, &widget_key(&server, &owner).await, "v").await;
    start_chat(&server, &customer, "hello").await;

    let mut devices = Value::Null;
    for _ in 0..100 {
        devices = server
            .ok(
                Some(&ada),
                "{ myPushDevices { token enabled disabledReason } }",
                json!({}),
            )
            .await["myPushDevices"]
            .clone();
        let disabled = devices
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["enabled"] == false)
            .count();
        if disabled == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let device = |name: &str| {
        devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["token"] == format!("{origin}/push/{name}"))
            .unwrap()
            .clone()
    };
    assert_eq!(device("unsubscribed")["enabled"], false);
    assert!(
        device("unsubscribed")["disabledReason"]
            .as_str()
            .unwrap()
            .starts_with("Web Push 410")
    );
    assert_eq!(device("forgotten")["enabled"], false);
    assert!(
        device("forgotten")["disabledReason"]
            .as_str()
            .unwrap()
            .starts_with("Web Push 404")
    );
    assert_eq!(device("alive")["enabled"], true);
    assert_eq!(fake.delivered_to("alive").len(), 1);
    fake.assert_nothing_refused();
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            "switchboard_pushes_total{provider=\"webpush\",outcome=\"token_disabled\"} 2"
        ),
        "{metrics}"
    );

    // The browser subscribes again: the device is back.
    let again = subscribe(&server, &fake, &origin, &ada, "forgotten").await;
    assert_eq!(again["enabled"], true);
}

/// A push service that is down (5xx) is tried again after a backoff; one that throttles (429)
/// is not tried again before its Retry-After.
async fn throttled_and_failing_pushes_wait_for_retry_after_and_arrive(backend: Backend) {
    let (fake, origin) = fake_push_service().await;
    let (server, owner, ada) = web_push_server(backend).await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {acceptanceTimeoutSeconds: 3600}) { id } }", json!({}))
        .await;
    subscribe(&server, &fake, &origin, &ada, "busy").await;
    fake.script("busy", vec![(503, None), (429, Some(3))]);
    let customer = visitor(&server, &widget_key(&server, &owner).await, "v").await;
    start_chat(&server, &customer, "hello").await;
    wait_until("the push gets through", || {
        !fake.delivered_to("busy").is_empty()
    })
    .await;
    fake.assert_nothing_refused();
    let attempts = fake.attempts_at("busy");
    let statuses: Vec<u16> = attempts.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [503, 429, 201]);
    let waited = attempts[2].1 - attempts[1].1;
    assert!(
        waited >= Duration::from_secs(3),
        "Retry-After: 3 was honoured, waited {waited:?}"
    );
    let ada_id = server.ok(Some(&ada), "{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let jobs = server.store.push_jobs(&ada_id).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].status, switchboard::domain::PushJobStatus::Sent);
    assert_eq!(jobs[0].attempts, 3);
    let devices = server
        .ok(Some(&ada), "{ myPushDevices { enabled } }", json!({}))
        .await;
    assert_eq!(
        devices["myPushDevices"][0]["enabled"], true,
        "a busy push service says nothing about the subscription"
    );
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_a_clear_message() {
    // The default configuration: only public https push services.
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let browser = Browser::new();
    let keys = browser.keys();
    let refused = |input: Value| {
        let server = &server;
        let owner = owner.clone();
        async move {
            let body = server
                .gql(Some(&owner), REGISTER, json!({ "input": input }))
                .await;
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            body["errors"][0]["message"].as_str().unwrap().to_owned()
        }
    };
    let web = |token: &str, keys: Value| json!({"platform": "WEB", "token": token, "appId": "https://chat.example.com", "webPush": keys});
    let endpoint = "https://push.example.net/wpush/v2/abc";

    let message =
        refused(json!({"platform": "WEB", "token": endpoint, "appId": "https://chat.example.com"}))
            .await;
    assert!(message.contains("webPush"), "{message}");
    let message = refused(json!({"platform": "ANDROID", "token": "fcm-token", "appId": "com.example", "webPush": keys})).await;
    assert!(message.contains("only for platform WEB"), "{message}");
    let message = refused(web("not-a-url", keys.clone())).await;
    assert!(message.contains("https URL"), "{message}");
    let message = refused(web("http://push.example.net/x", keys.clone())).await;
    assert!(message.contains("plain http"), "{message}");
    let message = refused(web("https://127.0.0.1:8443/x", keys.clone())).await;
    assert!(message.contains("local address"), "{message}");
    let message = refused(web(
        endpoint,
        json!({"p256dh": URL_SAFE_NO_PAD.encode([4u8; 65]), "auth": keys["auth"]}),
    ))
    .await;
    assert!(message.contains("P-256 public key"), "{message}");
    let message = refused(web(
        endpoint,
        json!({"p256dh": "not base64!", "auth": keys["auth"]}),
    ))
    .await;
    assert!(message.contains("p256dh must be base64url"), "{message}");
    let message = refused(web(
        endpoint,
        json!({"p256dh": keys["p256dh"], "auth": URL_SAFE_NO_PAD.encode([1u8; 4])}),
    ))
    .await;
    assert!(message.contains("16-byte"), "{message}");
    assert_eq!(
        server
            .ok(Some(&owner), "{ myPushDevices { id } }", json!({}))
            .await["myPushDevices"],
        json!([]),
        "nothing was registered"
    );

    // The key is for agents.
    let customer = visitor(&server, &widget_key(&server, &owner).await, "x").await;
    assert_eq!(
        server
            .error_code(Some(&customer), "{ webPushPublicKey }", json!({}))
            .await,
        "FORBIDDEN"
    );
}

async fn key_of(server: &TestServer) -> String {
    let owner = server.owner_token().await;
    server
        .ok(Some(&owner), "{ webPushPublicKey }", json!({}))
        .await["webPushPublicKey"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_vapid_key_is_generated_once_or_taken_from_the_configuration() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_owned();
    let dir = data_dir.clone();
    let mut server = TestServer::start_with(Backend::Sqlite, move |c| c.data_dir = dir).await;
    let generated = key_of(&server).await;
    let file = data_dir.join("vapid-private-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads the private key");
    }
    server.shut_down().await;
    server.start_again().await;
    assert_eq!(key_of(&server).await, generated, "kept across restarts");
    drop(server);

    // A configured key, as `web-push generate-vapid-keys` prints it.
    let secret = p256::SecretKey::random(&mut OsRng);
    let configured = tempfile::tempdir().unwrap();
    let path = configured.path().join("vapid.key");
    std::fs::write(&path, URL_SAFE_NO_PAD.encode(secret.to_bytes())).unwrap();
    let key_path = path.clone();
    let server = TestServer::start_with(Backend::Sqlite, move |c| {
        c.vapid_private_key_path = Some(key_path)
    })
    .await;
    assert_eq!(
        key_of(&server).await,
        URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes())
    );
    drop(server);

    // A file that is not a key stops the start with a line that says so.
    std::fs::write(&path, "hello").unwrap();
    let mut config = crate::support::test_config(configured.path());
    config.vapid_private_key_path = Some(path);
    let err = switchboard::App::start(config).await.err().unwrap();
    assert!(err.to_string().contains("VAPID key"), "{err}");
}

/// The mobile SDK registers a browser (a web view's subscription) like a phone.
#[tokio::test]
async fn the_sdk_reads_the_key_and_registers_a_browser() {
    struct Keychain;
    impl switchboard_sdk::SessionStore for Keychain {
        fn save(&self, _: switchboard_sdk::Session) {}
        fn clear(&self) {}
    }
    let (fake, origin) = fake_push_service().await;
    let server = TestServer::start_with(Backend::Sqlite, |c| c.web_push_allow_local = true).await;
    let dir = tempfile::tempdir().unwrap();
    let app = switchboard_sdk::Client::new(
        switchboard_sdk::ClientConfig {
            server_url: server.base_url.clone(),
            data_dir: dir.path().to_string_lossy().into_owned(),
        },
        Box::new(Keychain),
    )
    .unwrap();
    app.login(
        crate::support::OWNER_EMAIL.into(),
        crate::support::OWNER_PASSWORD.into(),
    )
    .await
    .unwrap();
    let key = app.web_push_public_key().await.unwrap();
    let owner = server.owner_token().await;
    assert_eq!(
        server
            .ok(Some(&owner), "{ webPushPublicKey }", json!({}))
            .await["webPushPublicKey"],
        key.as_str()
    );
    let keys = fake.subscribe("sdk");
    let registration = switchboard_sdk::PushDeviceRegistration {
        platform: switchboard_sdk::Platform::Web,
        token: format!("{origin}/push/sdk"),
        app_id: server.base_url.clone(),
        environment: switchboard_sdk::PushEnvironment::Production,
        locale: None,
        device_name: Some("Firefox".into()),
        web_push: Some(switchboard_sdk::WebPushKeys {
            p256dh: keys["p256dh"].as_str().unwrap().into(),
            auth: keys["auth"].as_str().unwrap().into(),
        }),
    };
    let device = app
        .register_push_device(registration.clone())
        .await
        .unwrap();
    assert_eq!(device.platform, switchboard_sdk::Platform::Web);
    assert!(device.enabled);
    let missing = app
        .register_push_device(switchboard_sdk::PushDeviceRegistration {
            web_push: None,
            ..registration
        })
        .await
        .unwrap_err();
    match missing {
        switchboard_sdk::SdkError::BadInput { .. } => {}
        other => panic!("expected BAD_USER_INPUT, got {other:?}"),
    }
}
