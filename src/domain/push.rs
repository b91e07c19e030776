//! Push notifications: devices, what a push says, and when a failed one is tried again. The
//! senders (APNs, FCM) and the outbox worker live in `outbox/`; this is the part without I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_protocol::push_data;

use super::chat::truncate_chars;
use super::copy::Wording;

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
    /// The phone's operating system, which decides the provider.
    Platform {
        /// Apple Push Notification service.
        Ios = "IOS",
        /// Firebase Cloud Messaging.
        Android = "ANDROID",
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
}

/// An agent's phone (or tablet) that gets pushes.
#[derive(Debug, Clone, PartialEq)]
pub struct PushDevice {
    pub id: String,
    pub agent_id: String,
    pub organization_id: String,
    pub platform: Platform,
    pub token: String,
    /// The APNs topic (bundle id) or the Android package.
    pub app_id: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
    /// Why the provider refused the token, when it did; such devices get nothing.
    pub disabled_reason: Option<String>,
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
