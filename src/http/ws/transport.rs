//! The graphql-transport-ws protocol's messages, read and written, and nothing else: the
//! connection in [`super`] decides what they do.
//! Spec: <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Incoming, Outgoing};

/// The subprotocol's name, as the client offers it in `Sec-WebSocket-Protocol`.
pub(super) const PROTOCOL: &str = switchboard_protocol::ws::SUBPROTOCOL;

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: Value,
    },
    Complete {
        id: String,
    },
}

/// Reads a client message.
pub(super) fn decode(text: &str) -> Result<Incoming, serde_json::Error> {
    Ok(match serde_json::from_str(text)? {
        ClientMessage::ConnectionInit { payload } => Incoming::Init { payload },
        ClientMessage::Ping {} => Incoming::Ping,
        ClientMessage::Pong {} => Incoming::Pong,
        ClientMessage::Subscribe { id, payload } => Incoming::Subscribe { id, payload },
        ClientMessage::Complete { id } => Incoming::Stop { id },
    })
}

/// Writes a server message; `None` for what this protocol does not say.
pub(super) fn encode(message: Outgoing) -> Option<Value> {
    Some(match message {
        Outgoing::Ack => json!({ "type": "connection_ack" }),
        Outgoing::Pong => json!({ "type": "pong" }),
        // The close code (4403) and its reason are all the protocol has for a refused init.
        Outgoing::InitRefused { .. } => return None,
        // Liveness is WebSocket pings here.
        Outgoing::KeepAlive => return None,
        Outgoing::Next { id, payload } => json!({ "type": "next", "id": id, "payload": payload }),
        Outgoing::Error { id, errors } => json!({ "type": "error", "id": id, "payload": errors }),
        Outgoing::Complete { id } => json!({ "type": "complete", "id": id }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_client_message() {
        assert!(matches!(
            decode(r#"{"type":"connection_init","payload":{"authorization":"Bearer t"}}"#),
            Ok(Incoming::Init { payload: Some(_) })
        ));
        assert!(matches!(
            decode(r#"{"type":"connection_init"}"#),
            Ok(Incoming::Init { payload: None })
        ));
        assert!(matches!(
            decode(r#"{"type":"ping","payload":{}}"#),
            Ok(Incoming::Ping)
        ));
        assert!(matches!(decode(r#"{"type":"pong"}"#), Ok(Incoming::Pong)));
        assert!(matches!(
            decode(r#"{"type":"subscribe","id":"1","payload":{"query":"{ me { id } }"}}"#),
            Ok(Incoming::Subscribe { id, .. }) if id == "1"
        ));
        assert!(matches!(
            decode(r#"{"type":"complete","id":"1"}"#),
            Ok(Incoming::Stop { id }) if id == "1"
        ));
    }

    #[test]
    fn refuses_what_the_protocol_does_not_have() {
        // The legacy protocol's messages are not this one's.
        assert!(decode(r#"{"type":"start","id":"1","payload":{"query":"{ a }"}}"#).is_err());
        assert!(decode(r#"{"type":"connection_terminate"}"#).is_err());
        assert!(
            decode(r#"{"type":"subscribe","id":"1"}"#).is_err(),
            "no payload"
        );
        assert!(decode("{not json").is_err());
    }

    #[test]
    fn writes_operation_errors_as_the_list_of_errors() {
        let errors = json!([{ "message": "nope" }]);
        assert_eq!(
            encode(Outgoing::Error { id: "7", errors }),
            Some(json!({ "type": "error", "id": "7", "payload": [{ "message": "nope" }] }))
        );
        assert_eq!(encode(Outgoing::KeepAlive), None);
        assert_eq!(
            encode(Outgoing::InitRefused {
                message: "Forbidden"
            }),
            None
        );
    }
}
