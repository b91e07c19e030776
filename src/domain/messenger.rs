//! Facebook Messenger: a connected page, what the Send API outbox holds, and the one rule of
//! the channel, the messaging window: Facebook takes a page's reply as a RESPONSE within
//! 24 hours of the user's last message, with the HUMAN_AGENT tag within 7 days, and not at
//! all later (<https://developers.facebook.com/docs/messenger-platform/policy/policy-overview>).

use chrono::{DateTime, Duration, Utc};

/// A Facebook Page an organization connected: its events come to our webhook, its customers'
/// chats are answered through the Send API with its access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessengerPage {
    pub id: String,
    pub organization_id: String,
    /// Facebook's id of the page (`entry[].id` in webhook events).
    pub page_id: String,
    /// The page's name, when the Graph API told it.
    pub name: Option<String>,
    /// The page access token the Send and profile APIs take.
    pub access_token: String,
    /// The app secret that signs the page's webhook events (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// What Facebook echoes when it verifies the webhook URL.
    pub verify_token: String,
    /// The group the page's chats go to, if any.
    pub group_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The end of a secret as admins may see it back: `…abcd`, never the whole.
pub fn secret_hint(secret: &str) -> String {
    let count = secret.chars().count();
    if count <= 8 {
        return "…".into();
    }
    let tail: String = secret.chars().skip(count - 4).collect();
    format!("…{tail}")
}

/// How long after a user's last message a page may still answer, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagingWindow {
    /// Within 24 hours: `messaging_type: RESPONSE`.
    Response,
    /// Within 7 days: `messaging_type: MESSAGE_TAG` with `tag: HUMAN_AGENT`.
    HumanAgent,
    /// Later: Facebook refuses any message.
    Closed,
}

impl MessagingWindow {
    /// The window at `now` for a user who last wrote at `last_customer_message`.
    pub fn at(last_customer_message: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        let since = now - last_customer_message;
        if since < Duration::hours(24) {
            MessagingWindow::Response
        } else if since < Duration::days(7) {
            MessagingWindow::HumanAgent
        } else {
            MessagingWindow::Closed
        }
    }

    /// The Send API's `messaging_type` and `tag`; `None` when closed.
    pub fn messaging_type(self) -> Option<(&'static str, Option<&'static str>)> {
        match self {
            MessagingWindow::Response => Some(("RESPONSE", None)),
            MessagingWindow::HumanAgent => Some(("MESSAGE_TAG", Some("HUMAN_AGENT"))),
            MessagingWindow::Closed => None,
        }
    }
}

string_enum!(
    /// What a Send API call carries.
    MessengerSendKind {
        /// An agent's message.
        Message = "MESSAGE",
        /// `sender_action: typing_on`: the agent types.
        TypingOn = "TYPING_ON",
        /// `sender_action: mark_seen`: the agent read the chat.
        MarkSeen = "MARK_SEEN",
    }
);

impl MessengerSendKind {
    /// The Send API's `sender_action` for a sender action; `None` for a message.
    pub fn sender_action(self) -> Option<&'static str> {
        match self {
            MessengerSendKind::Message => None,
            MessengerSendKind::TypingOn => Some("typing_on"),
            MessengerSendKind::MarkSeen => Some("mark_seen"),
        }
    }
}

string_enum!(
    /// Where a Send API call stands.
    MessengerSendStatus {
        /// Waiting to be sent (or to be tried again).
        Pending = "PENDING",
        /// Claimed by a worker, being sent.
        Sending = "SENDING",
        /// Facebook took it.
        Sent = "SENT",
        /// Facebook refused it, or it ran out of attempts.
        Failed = "FAILED",
    }
);

/// One Send API call in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessengerSend {
    pub id: String,
    pub organization_id: String,
    pub chat_id: String,
    /// The agent's message it carries; `None` for a sender action.
    pub event_id: Option<String>,
    /// Facebook's page id and the user's page-scoped id.
    pub page_id: String,
    pub psid: String,
    pub kind: MessengerSendKind,
    pub text: Option<String>,
    pub messaging_type: Option<String>,
    pub tag: Option<String>,
    /// Attempts so far, the current one included once claimed.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

string_enum!(
    /// How far an agent's message to a Messenger customer got.
    DeliveryState {
        /// In the outbox.
        Pending = "PENDING",
        /// Facebook took it.
        Sent = "SENT",
        /// The customer's Messenger received it.
        Delivered = "DELIVERED",
        /// The customer read it.
        Read = "READ",
        /// Facebook refused it or could not be reached: it never arrived.
        Failed = "FAILED",
    }
);

impl DeliveryState {
    /// The state of a send row: its status, then its receipts.
    pub fn of(status: MessengerSendStatus, delivered: bool, read: bool) -> Self {
        match status {
            MessengerSendStatus::Pending | MessengerSendStatus::Sending => DeliveryState::Pending,
            MessengerSendStatus::Failed => DeliveryState::Failed,
            MessengerSendStatus::Sent if read => DeliveryState::Read,
            MessengerSendStatus::Sent if delivered => DeliveryState::Delivered,
            MessengerSendStatus::Sent => DeliveryState::Sent,
        }
    }
}

/// What became of one message sent to Messenger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDelivery {
    pub event_id: String,
    pub state: DeliveryState,
    /// Why it failed.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_answers_then_tags_then_closes() {
        let last = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let at = |d: Duration| MessagingWindow::at(last, last + d);
        assert_eq!(at(Duration::zero()), MessagingWindow::Response);
        assert_eq!(
            at(Duration::hours(24) - Duration::seconds(1)),
            MessagingWindow::Response
        );
        assert_eq!(at(Duration::hours(24)), MessagingWindow::HumanAgent);
        assert_eq!(
            at(Duration::days(7) - Duration::seconds(1)),
            MessagingWindow::HumanAgent
        );
        assert_eq!(at(Duration::days(7)), MessagingWindow::Closed);
        assert_eq!(
            MessagingWindow::HumanAgent.messaging_type(),
            Some(("MESSAGE_TAG", Some("HUMAN_AGENT")))
        );
        assert_eq!(MessagingWindow::Closed.messaging_type(), None);
    }

    #[test]
    fn hints_never_give_a_secret_away() {
        assert_eq!(secret_hint("EAAB-long-page-token-1234"), "…1234");
        assert_eq!(secret_hint("short"), "…");
    }
}
