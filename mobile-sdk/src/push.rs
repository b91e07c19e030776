//! What the server's pushes carry, for the app's notification handler.

use std::collections::HashMap;

use switchboard_protocol::push_data;

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
    let kind = NotificationKind::parse(data.get(push_data::KIND)?)?;
    let organization_id = data.get(push_data::ORGANIZATION_ID)?.clone();
    let non_empty = |key: &str| data.get(key).filter(|v| !v.is_empty()).cloned();
    Some(PushNotification {
        kind,
        organization_id,
        chat_id: non_empty(push_data::CHAT_ID),
        cursor: non_empty(push_data::CURSOR),
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

    #[test]
    fn every_kind_the_server_sends_is_read() {
        for kind in switchboard_protocol::NotificationKind::ALL {
            let push = parse_push(data(&[
                (push_data::KIND, kind.as_str()),
                (push_data::ORGANIZATION_ID, "org-1"),
                (push_data::CHAT_ID, "chat-1"),
                (push_data::CURSOR, "7"),
            ]))
            .unwrap_or_else(|| panic!("{kind:?} was not read"));
            assert_eq!(push.kind.as_str(), kind.as_str());
            assert_eq!(push.organization_id, "org-1");
            assert_eq!(push.chat_id.as_deref(), Some("chat-1"));
            assert_eq!(push.cursor.as_deref(), Some("7"));
        }
    }

    /// An app matches a push's kind against the preferences it lists through the API, so both
    /// must name each kind alike: the GraphQL enum comes from schema.graphql, the push names
    /// from the protocol crate.
    #[test]
    fn push_kinds_are_named_as_in_the_api() {
        use crate::ops::notification_preferences::NotificationKind as ApiKind;
        for kind in switchboard_protocol::NotificationKind::ALL {
            let api: ApiKind = serde_json::from_value(kind.as_str().into()).unwrap();
            assert_eq!(
                Option::<NotificationKind>::from(api),
                NotificationKind::parse(kind.as_str()),
                "{kind:?}"
            );
        }
    }
}
