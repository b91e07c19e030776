//! What the server's pushes carry, for the app's notification handler.

use std::collections::HashMap;

use crate::models::NotificationKind;

/// A Switchboard push, read from its data.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushNotification {
    pub kind: NotificationKind,
    pub organization_id: String,
    /// The chat to open when the agent taps the notification; none for QUEUED_CUSTOMERS
    /// (open the queue) and OFFLINE_MESSAGE.
    pub chat_id: Option<String>,
    /// The agent's event cursor when the push was made. The event stream resumes on its own;
    /// this tells an app whether it has already seen the event.
    pub cursor: Option<String>,
}

/// Reads a push's data: FCM's `RemoteMessage.data`, or the string values of an APNs
/// `userInfo` (the keys sit at the top level, beside `aps`). Returns nothing for pushes that
/// are not Switchboard's, so an app can pass every push through it.
#[uniffi::export]
pub fn parse_push(data: HashMap<String, String>) -> Option<PushNotification> {
    let kind = NotificationKind::parse(data.get("type")?)?;
    let organization_id = data.get("organizationId")?.clone();
    let non_empty = |key: &str| data.get(key).filter(|v| !v.is_empty()).cloned();
    Some(PushNotification {
        kind,
        organization_id,
        chat_id: non_empty("chatId"),
        cursor: non_empty("cursor"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_server_push_data() {
        let push = parse_push(data(&[
            ("type", "NEW_CHAT"),
            ("organizationId", "org-1"),
            ("chatId", "chat-1"),
            ("cursor", "42"),
        ]))
        .unwrap();
        assert_eq!(
            push,
            PushNotification {
                kind: NotificationKind::NewChat,
                organization_id: "org-1".into(),
                chat_id: Some("chat-1".into()),
                cursor: Some("42".into()),
            }
        );
        let queue = parse_push(data(&[
            ("type", "QUEUED_CUSTOMERS"),
            ("organizationId", "org-1"),
        ]))
        .unwrap();
        assert_eq!(queue.kind, NotificationKind::QueuedCustomers);
        assert_eq!(queue.chat_id, None);
    }

    #[test]
    fn other_pushes_are_not_ours() {
        assert_eq!(parse_push(data(&[])), None);
        assert_eq!(parse_push(data(&[("type", "NEW_CHAT")])), None);
        assert_eq!(
            parse_push(data(&[("type", "MARKETING"), ("organizationId", "o")])),
            None
        );
    }
}
