//! The legacy `graphql-ws` subprotocol (subscriptions-transport-ws, Apollo iOS's and Apollo
//! Kotlin's default) on /graphql beside graphql-transport-ws: its messages, and the same
//! authorization, limits, resume and revocation.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{AGENT_EVENTS, Backend, TestServer, WsClient};

const ME: &str = "subscription { me { email name } }";
const STOP_ROUTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";

fn start(id: &str, query: &str, variables: Value) -> Value {
    json!({"id": id, "type": "start", "payload": {"query": query, "variables": variables, "operationName": null}})
}

/// Creates an agent "ada@example.com", signs her in; her token.
async fn ada(server: &TestServer) -> String {
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    server.agent_token("ada@example.com").await
}

/// The agent's latest event, to subscribe from without racing the subscription.
async fn cursor(server: &TestServer, token: &str) -> String {
    server
        .ok(Some(token), "{ agentEventsCursor }", json!({}))
        .await["agentEventsCursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The next message other than a keep-alive.
async fn next_skipping_ka(ws: &mut WsClient) -> Value {
    loop {
        let message = ws.next().await;
        if message["type"] != "ka" {
            return message;
        }
    }
}

/// The event inside a legacy `data` message of an agentEvents subscription.
fn event_of(message: &Value) -> &Value {
    assert_eq!(message["type"], "data", "expected data, got {message}");
    let event = &message["payload"]["data"]["agentEvents"];
    assert!(event.is_object(), "an agentEvents event, got {message}");
    event
}

async fn a_legacy_client_subscribes_and_runs_queries_and_mutations_over_start(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let ada = ada(&server).await;
    let since = cursor(&server, &ada).await;
    let mut ws = server.legacy_ws_ready(&ada).await;

    ws.send(start("events", AGENT_EVENTS, json!({"since": since})))
        .await;
    ws.send(start("me", "query { me { email } }", json!({})))
        .await;
    assert_eq!(
        next_skipping_ka(&mut ws).await,
        json!({"type": "data", "id": "me", "payload": {"data": {"me": {"email": "ada@example.com"}}}})
    );
    assert_eq!(
        next_skipping_ka(&mut ws).await,
        json!({"type": "complete", "id": "me"})
    );

    // A mutation over the socket, whose effect the subscription on the same socket hears.
    ws.send(start("m", STOP_ROUTING, json!({}))).await;
    let mut mutation_done = false;
    let mut event = None;
    let mut mutation_data = None;
    while !(mutation_done && event.is_some()) {
        let message = next_skipping_ka(&mut ws).await;
        match (message["type"].as_str(), message["id"].as_str()) {
            (Some("data"), Some("m")) => mutation_data = Some(message),
            (Some("complete"), Some("m")) => {
                assert!(mutation_data.is_some(), "data comes before complete");
                mutation_done = true;
            }
            (Some("data"), Some("events")) => {
                let heard = event_of(&message);
                if heard["__typename"] == "RoutingStatusChanged" {
                    event = Some(heard.clone());
                }
            }
            _ => panic!("unexpected {message}"),
        }
    }
    let mutation_data = mutation_data.unwrap();
    assert!(mutation_data["payload"]["data"]["setRoutingStatus"]["id"].is_string());
    let event = event.unwrap();
    assert_eq!(event["routingStatus"], "NOT_ACCEPTING_CHATS");

    // `stop` ends the subscription: later events do not come. The server reads a socket's
    // messages in order, so once a query sent after `stop` has completed, `stop` has been done.
    ws.send(json!({"id": "events", "type": "stop"})).await;
    ws.send(start("after", "{ me { email } }", json!({}))).await;
    loop {
        let message = next_skipping_ka(&mut ws).await;
        if message == json!({"type": "complete", "id": "after"}) {
            break;
        }
    }
    server
        .ok(
            Some(&ada),
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let after_stop: Vec<Value> = ws
        .quiet_for(Duration::from_millis(500))
        .await
        .into_iter()
        .filter(|message| message["type"] != "ka")
        .collect();
    assert!(after_stop.is_empty(), "nothing after stop: {after_stop:?}");

    // The client says goodbye; the server closes normally.
    ws.send(json!({"type": "connection_terminate"})).await;
    assert_eq!(ws.closed().await.0, 1000);
}

async fn agent_events_resume_from_a_cursor(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let ada = ada(&server).await;
    let since = cursor(&server, &ada).await;
    // Two events while no socket is open.
    for status in ["NOT_ACCEPTING_CHATS", "ACCEPTING_CHATS"] {
        server
            .ok(
                Some(&ada),
                "mutation($s: RoutingStatus!) { setRoutingStatus(status: $s) { id } }",
                json!({"s": status}),
            )
            .await;
    }
    let mut ws = server.legacy_ws_ready(&ada).await;
    ws.send(start("events", AGENT_EVENTS, json!({"since": since})))
        .await;
    let mut statuses = Vec::new();
    while statuses.len() < 2 {
        let message = next_skipping_ka(&mut ws).await;
        let event = event_of(&message);
        if event["__typename"] == "RoutingStatusChanged" {
            statuses.push(event["routingStatus"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses, ["NOT_ACCEPTING_CHATS", "ACCEPTING_CHATS"]);
}

async fn keep_alives_arrive_periodically_on_the_legacy_protocol_only(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.ws_keep_alive_interval = Duration::from_millis(100);
    })
    .await;
    let owner = server.owner_token().await;
    let mut legacy = server.legacy_ws_ready(&owner).await;
    let mut transport = server.ws_ready(&owner).await;
    let heard = legacy.quiet_for(Duration::from_millis(800)).await;
    assert!(
        heard.len() >= 3
            && heard
                .iter()
                .all(|message| *message == json!({"type": "ka"})),
        "keep-alives every 100 ms: {heard:?}"
    );
    assert!(
        transport
            .quiet_for(Duration::from_millis(300))
            .await
            .is_empty(),
        "graphql-transport-ws has no ka"
    );
}

async fn a_bad_token_gets_connection_error_and_the_socket_closes(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut ws = server.legacy_ws().await;
    ws.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer forged"}}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["type"], "connection_error");
    let message = error["payload"]["message"].as_str().unwrap().to_owned();
    assert!(message.starts_with("Forbidden"), "{message}");
    assert_eq!(ws.closed().await, (4403, message));

    // No authorization at all.
    let mut ws = server.legacy_ws().await;
    ws.send(json!({"type": "connection_init", "payload": {}}))
        .await;
    assert_eq!(ws.next().await["type"], "connection_error");
    assert_eq!(ws.closed().await.0, 4403);
}

async fn a_revoked_session_closes_the_legacy_socket(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let ada = ada(&server).await;
    let mut ws = server.legacy_ws_ready(&ada).await;
    ws.send(start("1", ME, json!({}))).await;
    let first = next_skipping_ka(&mut ws).await;
    assert_eq!(first["type"], "data");
    assert_eq!(first["payload"]["data"]["me"]["email"], "ada@example.com");

    server
        .ok(Some(&ada), "mutation { logout }", json!({}))
        .await;
    assert_eq!(
        ws.closed().await,
        (
            4403,
            "Forbidden: the session has ended; sign in again".into()
        )
    );
}

async fn an_invalid_operation_gets_one_error_message_and_no_complete(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.legacy_ws_ready(&owner).await;
    ws.send(start("bad", "subscription { nope }", json!({})))
        .await;
    let error = next_skipping_ka(&mut ws).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "bad");
    // One object, as Apollo iOS and Apollo Kotlin read it, with every error inside.
    assert!(error["payload"]["message"].is_string(), "{error}");
    assert_eq!(
        error["payload"]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // What comes next is the next operation's answer: no `complete` for "bad".
    ws.send(start("ok", "{ me { email } }", json!({}))).await;
    let next = next_skipping_ka(&mut ws).await;
    assert_eq!(next["type"], "data", "{next}");
    assert_eq!(next["id"], "ok");
}

async fn legacy_connections_have_the_same_limits_and_timeouts(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.ws_max_subscriptions = 1;
        c.ws_init_timeout = Duration::from_secs(1);
    })
    .await;
    let owner = server.owner_token().await;

    // Operations per connection.
    let mut ws = server.legacy_ws_ready(&owner).await;
    ws.send(start("1", ME, json!({}))).await;
    assert_eq!(next_skipping_ka(&mut ws).await["type"], "data");
    ws.send(start("2", ME, json!({}))).await;
    let refused = next_skipping_ka(&mut ws).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["id"], "2");
    assert_eq!(refused["payload"]["extensions"]["code"], "LIMIT_EXCEEDED");
    // A start with a running id replaces that operation, as subscriptions-transport-ws does.
    ws.send(start("1", "subscription { me { name } }", json!({})))
        .await;
    let replaced = next_skipping_ka(&mut ws).await;
    assert_eq!(replaced["type"], "data");
    assert_eq!(replaced["id"], "1");
    assert!(replaced["payload"]["data"]["me"].get("email").is_none());

    // An operation before connection_init.
    let mut ws = server.legacy_ws().await;
    ws.send(start("1", ME, json!({}))).await;
    assert_eq!(ws.closed().await, (4401, "Unauthorized".into()));

    // No connection_init in time.
    let mut ws = server.legacy_ws().await;
    assert_eq!(
        ws.closed().await,
        (4408, "Connection initialisation timeout".into())
    );

    // A second connection_init.
    let mut ws = server.legacy_ws_ready(&owner).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {owner}")}}),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4429);

    // A message of the other protocol.
    let mut ws = server.legacy_ws_ready(&owner).await;
    ws.send(json!({"type": "subscribe", "id": "1", "payload": {"query": ME}}))
        .await;
    assert_eq!(ws.closed().await.0, 4400);
}

async fn a_client_offering_both_protocols_gets_graphql_transport_ws(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    // Whatever order the client lists them in.
    for offered in [
        "graphql-ws, graphql-transport-ws",
        "graphql-transport-ws, graphql-ws",
    ] {
        let mut ws = WsClient::connect(&server.ws_url, Some(offered)).await;
        assert_eq!(ws.protocol.as_deref(), Some("graphql-transport-ws"));
        ws.send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {owner}")}}))
            .await;
        assert_eq!(ws.next().await, json!({"type": "connection_ack"}));
        ws.send(json!({"type": "ping"})).await;
        assert_eq!(ws.next().await, json!({"type": "pong"}));
    }
}

async fn a_client_offering_neither_gets_4406_naming_both(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let reason = "Subprotocol not acceptable: use graphql-transport-ws or graphql-ws".to_owned();
    // The handshake completes (on the protocol offered), so the client can read why.
    let mut ws = WsClient::connect(&server.ws_url, Some("graphql-wss")).await;
    assert_eq!(ws.protocol.as_deref(), Some("graphql-wss"));
    assert_eq!(ws.closed().await, (4406, reason.clone()));
    // Without the header at all, the same close.
    let mut ws = WsClient::connect(&server.ws_url, None).await;
    assert_eq!(ws.protocol, None);
    assert_eq!(ws.closed().await, (4406, reason));
}

crate::on_both_backends!(
    a_legacy_client_subscribes_and_runs_queries_and_mutations_over_start,
    agent_events_resume_from_a_cursor,
    keep_alives_arrive_periodically_on_the_legacy_protocol_only,
    a_bad_token_gets_connection_error_and_the_socket_closes,
    a_revoked_session_closes_the_legacy_socket,
    an_invalid_operation_gets_one_error_message_and_no_complete,
    legacy_connections_have_the_same_limits_and_timeouts,
    a_client_offering_both_protocols_gets_graphql_transport_ws,
    a_client_offering_neither_gets_4406_naming_both,
);
