//! Web Push to browsers: a POST to the subscription's endpoint, the push service of the
//! browser's vendor (RFC 8030, https://www.rfc-editor.org/rfc/rfc8030).
//!
//! - The payload is encrypted for the browser with the `aes128gcm` content coding and the
//!   subscription's keys (RFC 8291, https://www.rfc-editor.org/rfc/rfc8291), by the
//!   `web-push-native` crate (RustCrypto); the push service only relays ciphertext.
//! - The server identifies itself with VAPID (RFC 8292, https://www.rfc-editor.org/rfc/rfc8292):
//!   an ES256 JWT for the endpoint's origin, signed with the key whose public half the
//!   browser subscribed with (`webPushPublicKey`), sent as `Authorization: vapid t=…, k=…`.
//! - `TTL`, `Urgency` and `Topic` (RFC 8030 §5.2–5.4) say how long the service keeps the push,
//!   how soon it must reach a browser on battery, and which older push of the same chat it
//!   replaces.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_protocol::push_data;

use crate::domain::{NotificationKind, PushDevice, PushMessage, SendOutcome};

/// What to wait after a 429 that gave no Retry-After.
const DEFAULT_THROTTLE: Duration = Duration::from_secs(60);
/// How long a VAPID JWT is valid; RFC 8292 §2 allows at most 24 hours.
const VAPID_VALIDITY: Duration = Duration::from_secs(12 * 3600);
/// The largest encrypted body push services must accept (RFC 8030 §7.2: 4096 bytes), less
/// the aes128gcm header (86 bytes), the padding delimiter and the tag (17 bytes).
const MAX_PLAINTEXT_BYTES: usize = 4096 - 86 - 17;
/// The longest `Topic` (RFC 8030 §5.4).
const MAX_TOPIC_CHARS: usize = 32;

/// The server's VAPID key pair (P-256).
#[derive(Clone)]
pub struct VapidKey {
    secret: p256::SecretKey,
    signing: EncodingKey,
    /// base64url of the uncompressed public point: `applicationServerKey` and `k=`.
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new random key.
    pub fn generate() -> VapidKey {
        let secret = p256::SecretKey::random(&mut argon2::password_hash::rand_core::OsRng);
        Self::from_secret(secret).unwrap_or_else(|err| panic!("a fresh P-256 key signs: {err}"))
    }

    /// Reads a private key as the common tools write it: a PKCS#8 or SEC1 PEM file
    /// (`openssl ecparam -name prime256v1 -genkey`), or the base64url of the 32-byte scalar
    /// (`web-push generate-vapid-keys`, and the file this server generates).
    pub fn parse(text: &str) -> Result<VapidKey, String> {
        let text = text.trim();
        let secret = if text.starts_with("-----BEGIN PRIVATE KEY-----") {
            p256::SecretKey::from_pkcs8_pem(text)
                .map_err(|err| format!("not a P-256 PKCS#8 key: {err}"))?
        } else if text.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(text)
                .map_err(|err| format!("not a P-256 SEC1 key: {err}"))?
        } else {
            let bytes = URL_SAFE_NO_PAD
                .decode(text.trim_end_matches('='))
                .map_err(|_| "neither PEM nor the base64url of a 32-byte key".to_owned())?;
            p256::SecretKey::from_slice(&bytes)
                .map_err(|_| "not a P-256 private key (32 bytes, base64url)".to_owned())?
        };
        Self::from_secret(secret)
    }

    fn from_secret(secret: p256::SecretKey) -> Result<VapidKey, String> {
        let der = secret
            .to_pkcs8_der()
            .map_err(|err| format!("cannot encode the key: {err}"))?;
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        Ok(VapidKey {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            secret,
            public,
        })
    }

    /// The private key as [`VapidKey::parse`] reads it back (base64url of the scalar).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
    }

    /// The public key, base64url of the uncompressed point.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for a push to `audience` (the endpoint's origin).
    fn authorization(&self, audience: &str, subject: &str) -> Result<String, String> {
        #[derive(Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            exp: i64,
            sub: &'a str,
        }
        let exp = chrono::Utc::now().timestamp()
            + i64::try_from(VAPID_VALIDITY.as_secs()).unwrap_or(i64::MAX);
        let claims = Claims {
            aud: audience,
            exp,
            sub: subject,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.signing)
            .map_err(|err| format!("cannot sign the VAPID token: {err}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

/// Sends pushes to browsers.
pub struct WebPushSender {
    http: reqwest::Client,
    key: VapidKey,
    /// VAPID `sub`: how a push service's operator reaches us (mailto: or https:).
    subject: String,
}

impl WebPushSender {
    /// A sender signing with `key` as `subject`.
    pub fn new(key: VapidKey, subject: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            // A push service answers; it does not send us elsewhere, and a POST must not be
            // replayed at another address.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(WebPushSender {
            http,
            key,
            subject: subject.to_owned(),
        })
    }

    /// The public key browsers subscribe with.
    pub fn public_key(&self) -> &str {
        self.key.public_key()
    }

    /// Sends one push.
    pub async fn send(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> SendOutcome {
        let request = match self.request(device, message, badge) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                return SendOutcome::Retry {
                    after: None,
                    // The endpoint's URL is the subscription's secret: never in a reason.
                    reason: format!("Web Push service unreachable: {}", err.without_url()),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let text = if response.status().is_success() {
            String::new()
        } else {
            response.text().await.unwrap_or_default()
        };
        classify(status, &text, retry_after)
    }

    /// The encrypted, signed request for one push.
    fn request(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> Result<reqwest::RequestBuilder, SendOutcome> {
        // Keys and endpoints are checked at registration; one that fails here never will work.
        let unusable = |why: String| SendOutcome::TokenInvalid {
            reason: format!("Web Push subscription unusable: {why}"),
        };
        let Some(keys) = &device.web_push else {
            return Err(unusable("no subscription keys".into()));
        };
        let endpoint = reqwest::Url::parse(&device.token)
            .map_err(|err| unusable(format!("bad endpoint: {err}")))?;
        let ua_public = URL_SAFE_NO_PAD
            .decode(&keys.p256dh)
            .ok()
            .and_then(|bytes| p256::PublicKey::from_sec1_bytes(&bytes).ok())
            .ok_or_else(|| unusable("bad p256dh key".into()))?;
        let auth: [u8; 16] = URL_SAFE_NO_PAD
            .decode(&keys.auth)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| unusable("bad auth secret".into()))?;
        let plaintext = payload(message, badge);
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(SendOutcome::Failed {
                reason: format!(
                    "Web Push payload of {} bytes is over {MAX_PLAINTEXT_BYTES}",
                    plaintext.len()
                ),
            });
        }
        let body =
            web_push_native::encrypt(plaintext, &ua_public, &web_push_native::Auth::from(auth))
                .map_err(|err| SendOutcome::Failed {
                    reason: format!("Web Push encryption failed: {err}"),
                })?;
        let authorization = self
            .key
            .authorization(&endpoint.origin().ascii_serialization(), &self.subject)
            .map_err(|reason| SendOutcome::Failed { reason })?;
        let kind = message
            .data
            .get(push_data::KIND)
            .and_then(|kind| kind.parse::<NotificationKind>().ok());
        let (ttl, urgency) = match kind {
            Some(kind) => (kind.web_push_ttl(), kind.web_push_urgency()),
            None => (
                Duration::from_secs(24 * 3600),
                if message.urgent { "high" } else { "normal" },
            ),
        };
        Ok(self
            .http
            .post(endpoint)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(reqwest::header::CONTENT_ENCODING, "aes128gcm")
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header("TTL", ttl.as_secs().to_string())
            .header("Urgency", urgency)
            .header("Topic", topic(message))
            .body(body))
    }
}

/// What the browser's service worker receives, decrypted: the data the apps' pushes carry
/// (`type`, `organizationId`, `chatId`, `cursor`) with the `title` and `body` to show and the
/// `badge` (the agent's chats awaiting a reply).
pub fn payload(message: &PushMessage, badge: u32) -> Vec<u8> {
    #[derive(Serialize)]
    struct Payload<'a> {
        #[serde(flatten)]
        data: &'a BTreeMap<String, String>,
        title: &'a str,
        body: &'a str,
        badge: u32,
    }
    serde_json::to_vec(&Payload {
        data: &message.data,
        title: &message.title,
        body: &message.body,
        badge,
    })
    .unwrap_or_default()
}

/// The push's `Topic`: one per chat, so a newer push of a chat replaces an undelivered older
/// one. At most 32 base64url characters: a chat's UUID without its dashes, a kind's collapse
/// key as it is, anything longer hashed.
pub fn topic(message: &PushMessage) -> String {
    let fits = |text: &str| {
        !text.is_empty()
            && text.len() <= MAX_TOPIC_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if let Some(chat_id) = &message.thread_id {
        let hex: String = chat_id.chars().filter(|c| *c != '-').collect();
        if hex.len() == MAX_TOPIC_CHARS && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return hex;
        }
    } else if fits(&message.collapse_key) {
        return message.collapse_key.clone();
    }
    let digest = Sha256::digest(message.collapse_key.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)[..MAX_TOPIC_CHARS].to_owned()
}

/// What a push service's answer means for the job and the subscription (RFC 8030 §5–6).
pub fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> SendOutcome {
    let reason = match crate::domain::preview(body) {
        text if text.is_empty() => format!("Web Push {status}"),
        text => format!("Web Push {status}: {text}"),
    };
    match status {
        200..=299 => SendOutcome::Sent,
        // The browser unsubscribed or the subscription expired: it never comes back.
        404 | 410 => SendOutcome::TokenInvalid { reason },
        429 => SendOutcome::Retry {
            after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE)),
            reason,
        },
        500..=599 => SendOutcome::Retry {
            after: retry_after,
            reason,
        },
        // 401/403: the VAPID token was refused (a changed key, a bad subject); the
        // subscription may be fine once the configuration is, so it stays enabled.
        _ => SendOutcome::Failed { reason },
    }
}

/// Retry-After in seconds or as an HTTP date (RFC 9110 §10.2.3).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(chat_id: Option<&str>, kind: NotificationKind) -> PushMessage {
        PushMessage::new(kind, "New chat from Sam", "Hi", "org", chat_id, Some("7"))
    }

    #[test]
    fn topics_are_one_per_chat_and_fit_the_header() {
        let chat = "0190a0b0-0000-7000-8000-000000000001";
        let new_chat = topic(&message(Some(chat), NotificationKind::NewChat));
        assert_eq!(new_chat, "0190a0b0000070008000000000000001");
        assert_eq!(
            topic(&message(Some(chat), NotificationKind::NewMessage)),
            new_chat,
            "a newer push of the chat replaces the older"
        );
        assert_eq!(
            topic(&message(None, NotificationKind::QueuedCustomers)),
            "queued_customers"
        );
        let odd = topic(&message(Some("not a uuid"), NotificationKind::NewChat));
        assert_eq!(odd.len(), 32);
        assert!(
            odd.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn the_payload_is_the_data_with_what_to_show() {
        let json: serde_json::Value =
            serde_json::from_slice(&payload(&message(Some("c"), NotificationKind::NewChat), 3))
                .unwrap();
        assert_eq!(json["type"], "NEW_CHAT");
        assert_eq!(json["chatId"], "c");
        assert_eq!(json["organizationId"], "org");
        assert_eq!(json["cursor"], "7");
        assert_eq!(json["title"], "New chat from Sam");
        assert_eq!(json["body"], "Hi");
        assert_eq!(json["badge"], 3);
    }

    #[test]
    fn answers_map_to_outcomes() {
        assert_eq!(classify(201, "", None), SendOutcome::Sent);
        assert!(matches!(
            classify(410, "Gone", None),
            SendOutcome::TokenInvalid { reason } if reason == "Web Push 410: Gone"
        ));
        assert!(matches!(
            classify(404, "", None),
            SendOutcome::TokenInvalid { .. }
        ));
        assert_eq!(
            classify(429, "", None),
            SendOutcome::Retry {
                after: Some(DEFAULT_THROTTLE),
                reason: "Web Push 429".into()
            }
        );
        assert!(matches!(
            classify(429, "", Some(Duration::from_secs(7))),
            SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(503, "", None),
            SendOutcome::Retry { after: None, .. }
        ));
        assert!(matches!(
            classify(403, "bad jwt", None),
            SendOutcome::Failed { .. }
        ));
        assert!(matches!(
            classify(413, "", None),
            SendOutcome::Failed { .. }
        ));
    }

    #[test]
    fn keys_read_back_in_every_format() {
        let key = VapidKey::generate();
        let again = VapidKey::parse(&key.to_base64url()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let pem = key.secret.to_pkcs8_pem(Default::default()).unwrap();
        assert_eq!(
            VapidKey::parse(&pem).unwrap().public_key(),
            key.public_key()
        );
        let sec1 = key.secret.to_sec1_pem(Default::default()).unwrap();
        assert_eq!(
            VapidKey::parse(&sec1).unwrap().public_key(),
            key.public_key()
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(key.public_key()).unwrap().len(), 65);
        assert!(VapidKey::parse("not a key").is_err());
        assert!(VapidKey::parse("AAAA").is_err());
    }
}
