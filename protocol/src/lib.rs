//! What the Switchboard server and its clients must agree on, written once: the limits the
//! server enforces and the SDK checks first, the data of a push, the notification kinds, and
//! why the server closes a WebSocket. The server re-exports these under its own names; the
//! mobile SDK reads them. Nothing here does I/O or depends on another crate.

/// Longest message, in characters. Longer text belongs in an email or a link.
pub const MAX_MESSAGE_CHARS: usize = 4000;

pub mod push_data {
    //! The keys of a push's data, which the SDK's `parse_push` reads. Values are strings, as
    //! FCM requires of data; APNs carries the same keys beside `aps`.
    //! FCM v1: <https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages>
    //! APNs: <https://developer.apple.com/documentation/usernotifications/generating-a-remote-notification>

    /// Why the push was sent: a [`NotificationKind`](crate::NotificationKind) name.
    pub const KIND: &str = "type";
    /// The organization the push is about.
    pub const ORGANIZATION_ID: &str = "organizationId";
    /// The chat to open on tap; absent for pushes about the queue or offline messages.
    pub const CHAT_ID: &str = "chatId";
    /// The agent's event cursor when the push was made.
    pub const CURSOR: &str = "cursor";
}

pub mod ws {
    //! How the server ends a graphql-transport-ws connection, and what the SDK does about it.
    //! Spec: <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>

    /// The WebSocket subprotocol both sides speak.
    pub const SUBPROTOCOL: &str = "graphql-transport-ws";
    /// Close code for a connection_init without a valid token.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Close code for a token that stopped being good while connected; the reason says why.
    pub const FORBIDDEN: u16 = 4403;
    /// In the close reason when the session ended (logout, deactivation, a new password, a
    /// reused refresh token): apps sign the user out.
    pub const SESSION_ENDED: &str = "the session has ended; sign in again";
    /// In the close reason when the access token expired: apps refresh it and reconnect.
    pub const TOKEN_EXPIRED: &str = "the access token has expired; refresh it";
}

/// Why a push goes out; the server's preferences and the SDK's pushes use these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationKind {
    NewChat,
    TransferredChat,
    NewMessage,
    QueuedCustomers,
    OfflineMessage,
    MissedChat,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 6] = [
        NotificationKind::NewChat,
        NotificationKind::TransferredChat,
        NotificationKind::NewMessage,
        NotificationKind::QueuedCustomers,
        NotificationKind::OfflineMessage,
        NotificationKind::MissedChat,
    ];

    /// The name in push data and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::NewChat => "NEW_CHAT",
            NotificationKind::TransferredChat => "TRANSFERRED_CHAT",
            NotificationKind::NewMessage => "NEW_MESSAGE",
            NotificationKind::QueuedCustomers => "QUEUED_CUSTOMERS",
            NotificationKind::OfflineMessage => "OFFLINE_MESSAGE",
            NotificationKind::MissedChat => "MISSED_CHAT",
        }
    }

    /// The kind with this name; none for a name this version does not know.
    pub fn parse(name: &str) -> Option<NotificationKind> {
        NotificationKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(NotificationKind::parse("new_chat"), None);
        assert_eq!(NotificationKind::parse(""), None);
    }
}
