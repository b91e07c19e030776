//! The legacy `graphql-ws` protocol of subscriptions-transport-ws, which Apollo iOS
//! (`WebSocketTransport` with `.graphql_ws`) and Apollo Kotlin (`SubscriptionWsProtocol`) speak
//! by default: its messages, read and written, and nothing else. The connection in [`super`]
//! gives it the same authorization, limits and revocation as graphql-transport-ws.
//! Spec: <https://github.com/apollographql/subscriptions-transport-ws/blob/master/PROTOCOL.md>
//!
//! The protocol has no close codes of its own; the connection closes with graphql-transport-ws's
//! (4403 for a refused or ended session, 4408, 4429 …), so both kinds of client read the same
//! reasons.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Incoming, Outgoing};

/// The subprotocol's name, as the client offers it in `Sec-WebSocket-Protocol`.
pub(super) const PROTOCOL: &str = "graphql-ws";

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Start {
        id: String,
        payload: Value,
    },
    Stop {
        id: String,
    },
    ConnectionTerminate {},
}

/// Reads a client message.
pub(super) fn decode(text: &str) -> Result<Incoming, serde_json::Error> {
    Ok(match serde_json::from_str(text)? {
        ClientMessage::ConnectionInit { payload } => Incoming::Init { payload },
        ClientMessage::Start { id, payload } => Incoming::Subscribe { id, payload },
        ClientMessage::Stop { id } => Incoming::Stop { id },
        ClientMessage::ConnectionTerminate {} => Incoming::Terminate,
    })
}

/// Writes a server message; `None` for what this protocol does not say.
pub(super) fn encode(message: Outgoing) -> Option<Value> {
    Some(match message {
        Outgoing::Ack => json!({ "type": "connection_ack" }),
        // Clients never ping in this protocol.
        Outgoing::Pong => return None,
        Outgoing::InitRefused { message } => {
            json!({ "type": "connection_error", "payload": { "message": message } })
        }
        Outgoing::KeepAlive => json!({ "type": "ka" }),
        Outgoing::Next { id, payload } => json!({ "type": "data", "id": id, "payload": payload }),
        Outgoing::Error { id, errors } => {
            json!({ "type": "error", "id": id, "payload": error_payload(errors) })
        }
        Outgoing::Complete { id } => json!({ "type": "complete", "id": id }),
    })
}

/// An `error` message's payload: one object, since Apollo Kotlin and Apollo iOS read it as a
/// map (a list would not parse there). It is the first error (its `message` and
/// `extensions.code`) with every error under `errors`, where subscriptions-transport-ws's own
/// client looks first.
fn error_payload(errors: Value) -> Value {
    let mut payload = match errors.get(0) {
        Some(Value::Object(first)) => first.clone(),
        _ => Map::new(),
    };
    payload
        .entry("message")
        .or_insert_with(|| "the operation failed".into());
    payload.insert("errors".into(), errors);
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_client_message() {
        assert!(matches!(
            decode(r#"{"type":"connection_init","payload":{"Authorization":"Bearer t"}}"#),
            Ok(Incoming::Init { payload: Some(_) })
        ));
        assert!(matches!(
            decode(r#"{"type":"connection_init","payload":null}"#),
            Ok(Incoming::Init { payload: None })
        ));
        assert!(matches!(
            decode(r#"{"id":"1","type":"start","payload":{"query":"subscription { me { id } }","variables":{}}}"#),
            Ok(Incoming::Subscribe { id, .. }) if id == "1"
        ));
        assert!(matches!(
            decode(r#"{"id":"1","type":"stop"}"#),
            Ok(Incoming::Stop { id }) if id == "1"
        ));
        assert!(matches!(
            decode(r#"{"type":"connection_terminate"}"#),
            Ok(Incoming::Terminate)
        ));
    }

    #[test]
    fn refuses_what_the_protocol_does_not_have() {
        // graphql-transport-ws's messages are not this one's.
        assert!(decode(r#"{"type":"subscribe","id":"1","payload":{"query":"{ a }"}}"#).is_err());
        assert!(decode(r#"{"type":"ping"}"#).is_err());
        assert!(
            decode(r#"{"type":"start","id":"1"}"#).is_err(),
            "no payload"
        );
        assert!(decode("[]").is_err());
    }

    #[test]
    fn writes_the_protocols_server_messages() {
        assert_eq!(encode(Outgoing::KeepAlive), Some(json!({ "type": "ka" })));
        assert_eq!(
            encode(Outgoing::Next {
                id: "1",
                payload: json!({ "data": { "me": null } })
            }),
            Some(json!({ "type": "data", "id": "1", "payload": { "data": { "me": null } } }))
        );
        assert_eq!(
            encode(Outgoing::Complete { id: "1" }),
            Some(json!({ "type": "complete", "id": "1" }))
        );
        assert_eq!(
            encode(Outgoing::InitRefused {
                message: "Forbidden: bad token"
            }),
            Some(
                json!({ "type": "connection_error", "payload": { "message": "Forbidden: bad token" } })
            )
        );
        assert_eq!(encode(Outgoing::Pong), None);
    }

    #[test]
    fn an_operation_error_is_one_object_with_every_error() {
        let errors = json!([
            { "message": "Unknown field \"nope\"", "extensions": { "code": "GRAPHQL_VALIDATION_FAILED" } },
            { "message": "second" }
        ]);
        let written = encode(Outgoing::Error {
            id: "2",
            errors: errors.clone(),
        })
        .unwrap();
        assert_eq!(written["type"], "error");
        assert_eq!(written["id"], "2");
        assert_eq!(written["payload"]["message"], "Unknown field \"nope\"");
        assert_eq!(
            written["payload"]["extensions"]["code"],
            "GRAPHQL_VALIDATION_FAILED"
        );
        assert_eq!(written["payload"]["errors"], errors);
        // Without errors to quote there is still a message.
        let written = encode(Outgoing::Error {
            id: "3",
            errors: json!([]),
        })
        .unwrap();
        assert!(written["payload"]["message"].is_string());
    }
}
