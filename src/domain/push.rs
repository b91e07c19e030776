//! Push notifications: devices, what a push says, and when a failed one is tried again. The
//! senders (APNs, FCM, Web Push) and the outbox worker live in `outbox/`; this is the part
//! without I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_protocol::push_data;

use super::chat::truncate_chars;
use super::copy::Wording;
use super::validation::ValidationError;

/// The most a push payload may weigh: APNs takes 4 KB, FCM 4 KB of data.
pub const MAX_PAYLOAD_BYTES: usize = 4096;
/// How much of a message a push previews.
pub const PREVIEW_CHARS: usize = 120;
/// Attempts before a job is given up as dead.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 8;
/// Messages within this window share one push.
pub const MESSAGE_DEBOUNCE: Duration = Duration::from_secs(10);
/// At most one "customers waiting" push per agent in this window.
pub const QUEUE_PUSH_INTERVAL: Duration = Duration::from_secs(60);

string_enum!(
    /// The device's platform, which decides the provider.
    Platform {
        /// Apple Push Notification service.
        Ios = "IOS",
        /// Firebase Cloud Messaging.
        Android = "ANDROID",
        /// A browser's push service, through Web Push (RFC 8030).
        Web = "WEB",
    }
);

string_enum!(
    /// Which APNs environment a device token belongs to (FCM ignores it).
    PushEnvironment {
        Sandbox = "SANDBOX",
        Production = "PRODUCTION",
    }
);

string_enum!(
    /// Why a push goes out; each can be switched off per agent.
    NotificationKind {
        NewChat = "NEW_CHAT",
        TransferredChat = "TRANSFERRED_CHAT",
        NewMessage = "NEW_MESSAGE",
        QueuedCustomers = "QUEUED_CUSTOMERS",
        OfflineMessage = "OFFLINE_MESSAGE",
        MissedChat = "MISSED_CHAT",
    }
);

string_enum!(
    /// Where an outbox job is.
    PushJobStatus {
        /// Waiting for its time (`next_attempt_at`).
        Pending = "PENDING",
        /// Claimed by a worker until `locked_until`.
        Sending = "SENDING",
        /// Accepted by the provider.
        Sent = "SENT",
        /// Refused for good (a bad request, a dead token, too many attempts).
        Dead = "DEAD",
        /// No longer needed (the agent saw the messages).
        Cancelled = "CANCELLED",
    }
);

impl NotificationKind {
    /// Every kind, for preferences.
    pub const ALL: [NotificationKind; 6] = [
        NotificationKind::NewChat,
        NotificationKind::TransferredChat,
        NotificationKind::NewMessage,
        NotificationKind::QueuedCustomers,
        NotificationKind::OfflineMessage,
        NotificationKind::MissedChat,
    ];

    /// Whether the push should wake the phone at once (APNs priority 10, FCM HIGH).
    pub fn urgent(self) -> bool {
        matches!(
            self,
            NotificationKind::NewChat
                | NotificationKind::TransferredChat
                | NotificationKind::MissedChat
        )
    }

    /// The Web Push `Urgency` (RFC 8030 §5.3): `high` for what a customer waits on, so a
    /// browser on battery saving still delivers it at once.
    pub fn web_push_urgency(self) -> &'static str {
        match self {
            NotificationKind::NewChat
            | NotificationKind::TransferredChat
            | NotificationKind::NewMessage
            | NotificationKind::MissedChat => "high",
            NotificationKind::QueuedCustomers | NotificationKind::OfflineMessage => "normal",
        }
    }

    /// How long a push service keeps the push for a browser that is offline (the Web Push
    /// `TTL`, RFC 8030 §5.2): after that it is news no longer.
    pub fn web_push_ttl(self) -> Duration {
        match self {
            // The queue changes by the minute; a stale count misleads.
            NotificationKind::QueuedCustomers => Duration::from_secs(10 * 60),
            // Someone waits for an answer by email: worth showing the next morning.
            NotificationKind::OfflineMessage => Duration::from_secs(3 * 24 * 3600),
            _ => Duration::from_secs(24 * 3600),
        }
    }
}

/// A browser's push subscription keys, as `PushSubscription.toJSON().keys` gives them
/// (RFC 8291 §2): what a Web Push payload is encrypted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushKeys {
    /// The browser's P-256 public key: base64url of the 65-byte uncompressed point.
    pub p256dh: String,
    /// The 16-byte authentication secret, base64url.
    pub auth: String,
}

/// Longest subscription endpoint we accept (browsers' are a few hundred characters).
pub const MAX_WEB_PUSH_ENDPOINT_CHARS: usize = 2048;

/// Checks a browser's push subscription: its endpoint is an https URL (plain http and
/// loopback or private addresses only with `allow_local`, for tests and a push service on
/// your own network) and its keys are a P-256 point and a 16-byte secret. Returns the
/// endpoint and the keys as stored: trimmed, base64url without padding.
pub fn validate_web_push_subscription(
    endpoint: &str,
    keys: &WebPushKeys,
    allow_local: bool,
) -> Result<(String, WebPushKeys), ValidationError> {
    let endpoint = endpoint.trim();
    let refuse = |why: &str| ValidationError(format!("token (the subscription's endpoint) {why}"));
    if endpoint.chars().count() > MAX_WEB_PUSH_ENDPOINT_CHARS {
        return Err(refuse(&format!(
            "must be at most {MAX_WEB_PUSH_ENDPOINT_CHARS} characters"
        )));
    }
    let url = url::Url::parse(endpoint).map_err(|_| refuse("must be an https URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_local => {}
        "http" => {
            return Err(refuse(
                "must be an https URL (plain http only with SWITCHBOARD_WEB_PUSH_ALLOW_LOCAL)",
            ));
        }
        _ => return Err(refuse("must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not contain a user name or password"));
    }
    let local = match url.host() {
        None => return Err(refuse("must name a host")),
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "localhost" || domain.ends_with(".localhost") || !domain.contains('.')
        }
        Some(url::Host::Ipv4(ip)) => !is_global_v4(ip),
        Some(url::Host::Ipv6(ip)) => !is_global_v6(ip),
    };
    if local && !allow_local {
        return Err(refuse(
            "must be a public push service, not a local address (allowed with \
             SWITCHBOARD_WEB_PUSH_ALLOW_LOCAL)",
        ));
    }
    let p256dh = decode_key(&keys.p256dh).ok_or_else(|| {
        ValidationError("webPush.p256dh must be base64url (as the browser gives it)".into())
    })?;
    if p256dh.len() != 65 || p256dh[0] != 4 || p256::PublicKey::from_sec1_bytes(&p256dh).is_err() {
        return Err(ValidationError(
            "webPush.p256dh must be the subscription's P-256 public key (65 bytes, uncompressed)"
                .into(),
        ));
    }
    let auth = decode_key(&keys.auth).ok_or_else(|| {
        ValidationError("webPush.auth must be base64url (as the browser gives it)".into())
    })?;
    if auth.len() != 16 {
        return Err(ValidationError(
            "webPush.auth must be the subscription's 16-byte authentication secret".into(),
        ));
    }
    // Kept as the browser gave it, not as `Url` normalizes it: the app unregisters with it.
    Ok((
        endpoint.to_owned(),
        WebPushKeys {
            p256dh: URL_SAFE_NO_PAD.encode(p256dh),
            auth: URL_SAFE_NO_PAD.encode(auth),
        },
    ))
}

/// base64url with or without padding; browsers give it without, some libraries with.
fn decode_key(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    if text.len() > 200 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Whether an IPv4 address is reachable on the internet (not loopback, private, link-local,
/// shared, documentation, broadcast or unspecified).
fn is_global_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || a >= 240)
}

/// Whether an IPv6 address is reachable on the internet (IPv4-mapped ones as IPv4).
fn is_global_v6(ip: std::net::Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_global_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        || first == 0x2001 && ip.segments()[1] == 0x0db8)
}

/// An agent's phone, tablet or browser that gets pushes.
#[derive(Debug, Clone, PartialEq)]
pub struct PushDevice {
    pub id: String,
    pub agent_id: String,
    pub organization_id: String,
    pub platform: Platform,
    pub token: String,
    /// The APNs topic (bundle id), the Android package, or the web app's origin.
    pub app_id: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
    /// Why the provider refused the token, when it did; such devices get nothing.
    pub disabled_reason: Option<String>,
    /// A browser's subscription keys (`Platform::Web`, where `token` is the endpoint).
    pub web_push: Option<WebPushKeys>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PushDevice {
    /// Whether pushes go to this device.
    pub fn enabled(&self) -> bool {
        self.disabled_reason.is_none()
    }
}

/// What one push says: a title and body a person reads, and data the mobile SDK parses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    /// `type`, `chatId`, `organizationId`, `cursor`: strings, as FCM wants data.
    pub data: BTreeMap<String, String>,
    /// Wake the phone now (new and transferred chats).
    pub urgent: bool,
    /// Pushes with the same key replace each other on the phone (one per chat).
    pub collapse_key: String,
    /// Groups notifications by chat (APNs thread-id).
    pub thread_id: Option<String>,
    /// What the title and body say before rendering, so the push is worded in the device's
    /// locale when it is sent; `title` and `body` hold the default locale's rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wording: Option<PushWording>,
}

/// A push's title and, unless it quotes a customer, its body, as [`Wording`]s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushWording {
    pub title: Wording,
    /// `None` keeps the body as written (a customer's message).
    pub body: Option<Wording>,
}

impl PushMessage {
    /// Builds a push, keeping the body to a readable preview and the whole under 4 KB.
    pub fn new(
        kind: NotificationKind,
        title: &str,
        body: &str,
        organization_id: &str,
        chat_id: Option<&str>,
        cursor: Option<&str>,
    ) -> PushMessage {
        let mut data = BTreeMap::new();
        data.insert(push_data::KIND.to_owned(), kind.as_str().to_owned());
        data.insert(
            push_data::ORGANIZATION_ID.to_owned(),
            organization_id.to_owned(),
        );
        if let Some(chat_id) = chat_id {
            data.insert(push_data::CHAT_ID.to_owned(), chat_id.to_owned());
        }
        if let Some(cursor) = cursor {
            data.insert(push_data::CURSOR.to_owned(), cursor.to_owned());
        }
        let collapse_key = match chat_id {
            Some(chat_id) => format!("chat-{chat_id}"),
            None => kind.as_str().to_lowercase(),
        };
        PushMessage {
            title: truncate_chars(title, 80).to_owned(),
            body: preview(body),
            data,
            urgent: kind.urgent(),
            // APNs collapse ids are at most 64 bytes; UUIDs leave room.
            collapse_key: truncate_chars(&collapse_key, 64).to_owned(),
            thread_id: chat_id.map(str::to_owned),
            wording: None,
        }
    }

    /// A push whose title (and body, when given) is `wording`: rendered in the default
    /// locale now, and again in the device's locale when sent.
    pub fn worded(
        kind: NotificationKind,
        wording: PushWording,
        body: &str,
        organization_id: &str,
        chat_id: Option<&str>,
        cursor: Option<&str>,
    ) -> PushMessage {
        let mut message = PushMessage::new(kind, "", body, organization_id, chat_id, cursor);
        message.wording = Some(wording);
        message.localized(None)
    }

    /// This push worded in `locale` (the default locale when `None`). Pushes without a
    /// wording stay as they are.
    pub fn localized(&self, locale: Option<&str>) -> PushMessage {
        let mut message = self.clone();
        if let Some(wording) = &self.wording {
            let locale = locale.unwrap_or(super::copy::DEFAULT_LOCALE);
            message.title = truncate_chars(&wording.title.render(locale), 80).to_owned();
            if let Some(body) = &wording.body {
                message.body = preview(&body.render(locale));
            }
        }
        message
    }

    /// The size of the message once encoded, a bound on any provider's payload.
    pub fn encoded_len(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }
}

/// A message preview: one line, cut on a character boundary, with an ellipsis when cut.
pub fn preview(text: &str) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= PREVIEW_CHARS {
        line
    } else {
        format!("{}…", truncate_chars(&line, PREVIEW_CHARS - 1))
    }
}

/// A push waiting in the outbox, for one device.
#[derive(Debug, Clone, PartialEq)]
pub struct PushJob {
    pub id: String,
    pub device_id: String,
    pub agent_id: String,
    pub organization_id: String,
    pub kind: NotificationKind,
    pub chat_id: Option<String>,
    pub message: PushMessage,
    pub status: PushJobStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What a provider said to one push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted.
    Sent,
    /// A passing failure (5xx, network, throttling): try again, after `after` if given.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// This push will never be accepted (a bad request); the token may still be fine.
    Failed { reason: String },
    /// The token is dead (uninstalled app, wrong topic): disable the device.
    TokenInvalid { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SDK knows the kinds from the shared protocol crate; the server's enum needs the
    /// names as literals, so this keeps the two lists equal.
    #[test]
    fn notification_kinds_are_the_ones_the_sdk_knows() {
        let server: Vec<&str> = NotificationKind::ALL.iter().map(|k| k.as_str()).collect();
        let shared: Vec<&str> = switchboard_protocol::NotificationKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(server, shared);
    }

    /// A subscription as Chrome gives it (RFC 8291 §5's example keys).
    fn keys() -> WebPushKeys {
        WebPushKeys {
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
        }
    }

    #[test]
    fn web_push_subscriptions_need_a_public_https_endpoint_and_real_keys() {
        let endpoint = "https://fcm.googleapis.com/fcm/send/dpH5lCsTSSM:APA91bHqj";
        let (kept, stored) = validate_web_push_subscription(endpoint, &keys(), false).unwrap();
        assert_eq!(kept, endpoint, "kept as the browser gave it");
        assert_eq!(stored, keys());
        let padded = WebPushKeys {
            auth: format!("{}==", keys().auth),
            ..keys()
        };
        assert_eq!(
            validate_web_push_subscription(endpoint, &padded, false)
                .unwrap()
                .1,
            keys()
        );

        let refused = |endpoint: &str, keys: &WebPushKeys, allow_local: bool| {
            validate_web_push_subscription(endpoint, keys, allow_local)
                .unwrap_err()
                .0
        };
        assert!(refused("not a url", &keys(), false).contains("https URL"));
        assert!(refused("ftp://push.example.com/x", &keys(), false).contains("https URL"));
        assert!(refused("http://push.example.com/x", &keys(), false).contains("plain http"));
        for local in [
            "https://127.0.0.1/x",
            "https://localhost:8443/x",
            "https://10.1.2.3/x",
            "https://192.168.0.1/x",
            "https://169.254.169.254/latest",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://intranet/x",
        ] {
            assert!(
                refused(local, &keys(), false).contains("local address"),
                "{local}"
            );
        }
        assert!(validate_web_push_subscription("http://127.0.0.1:9/x", &keys(), true).is_ok());
        assert!(refused("https://user:pw@push.example.com/x", &keys(), false).contains("password"));

        let bad_point = WebPushKeys {
            p256dh: URL_SAFE_NO_PAD.encode([4u8; 65]),
            ..keys()
        };
        assert!(refused(endpoint, &bad_point, false).contains("p256dh must be the"));
        let not_base64 = WebPushKeys {
            p256dh: "not base64!".into(),
            ..keys()
        };
        assert!(refused(endpoint, &not_base64, false).contains("p256dh must be base64url"));
        let short_auth = WebPushKeys {
            auth: URL_SAFE_NO_PAD.encode([1u8; 8]),
            ..keys()
        };
        assert!(refused(endpoint, &short_auth, false).contains("16-byte"));
    }

    #[test]
    fn what_a_customer_waits_on_is_urgent_on_the_web_too() {
        assert_eq!(NotificationKind::NewChat.web_push_urgency(), "high");
        assert_eq!(NotificationKind::NewMessage.web_push_urgency(), "high");
        assert_eq!(
            NotificationKind::QueuedCustomers.web_push_urgency(),
            "normal"
        );
        assert!(
            NotificationKind::QueuedCustomers.web_push_ttl()
                < NotificationKind::NewChat.web_push_ttl()
        );
    }

    #[test]
    fn previews_are_one_line_and_cut_on_characters() {
        assert_eq!(preview("Hello\n  there"), "Hello there");
        let long = "é".repeat(500);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn messages_carry_string_data_and_stay_small() {
        let message = PushMessage::new(
            NotificationKind::NewChat,
            &"Ada ".repeat(100),
            &"😀".repeat(5000),
            "org",
            Some("chat-1"),
            Some("42"),
        );
        assert_eq!(message.data["type"], "NEW_CHAT");
        assert_eq!(message.data["chatId"], "chat-1");
        assert_eq!(message.data["cursor"], "42");
        assert!(message.urgent);
        assert_eq!(message.collapse_key, "chat-chat-1");
        assert!(
            message.encoded_len() < MAX_PAYLOAD_BYTES,
            "{}",
            message.encoded_len()
        );
        let queue = PushMessage::new(
            NotificationKind::QueuedCustomers,
            "t",
            "b",
            "org",
            None,
            None,
        );
        assert!(!queue.urgent);
        assert_eq!(queue.collapse_key, "queued_customers");
    }

    #[test]
    fn a_worded_push_is_rendered_again_in_the_devices_locale_and_keeps_quoted_bodies() {
        let message = PushMessage::worded(
            NotificationKind::NewChat,
            PushWording {
                title: Wording::NewChatFrom {
                    customer: "Bo".into(),
                },
                body: None,
            },
            "Where is my  parcel?",
            "org",
            Some("chat"),
            None,
        );
        assert_eq!(message.title, "New chat from Bo");
        assert_eq!(message.body, "Where is my parcel?");
        let stored: PushMessage =
            serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap();
        let sent = stored.localized(Some("de-DE"));
        assert_eq!(sent.title, "Neuer Chat von Bo");
        assert_eq!(
            sent.body, "Where is my parcel?",
            "the customer's words as they wrote them"
        );
        let unknown = stored.localized(Some("xx"));
        assert_eq!(
            unknown.title, "New chat from Bo",
            "English for other locales"
        );
    }
}
