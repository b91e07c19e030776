//! graphql-transport-ws on /graphql: every close code of the protocol, operations, limits,
//! keep-alive and shutdown.

use std::time::Duration;

use serde_json::json;

use crate::support::{Backend, TestServer, WsClient};

const ME: &str = "subscription { me { email name } }";

fn subscribe(id: &str, query: &str) -> serde_json::Value {
    json!({"id": id, "type": "subscribe", "payload": {"query": query}})
}

async fn a_subscription_sends_the_current_value_then_changes(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let agent_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let agent = server.agent_token("ada@example.com").await;
    let mut ws = server.ws_ready(&agent).await;
    ws.send(subscribe("1", ME)).await;
    let first = ws.next().await;
    assert_eq!(first["type"], "next");
    assert_eq!(first["id"], "1");
    assert_eq!(first["payload"]["data"]["me"]["email"], "ada@example.com");

    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, name: \"Ada Lovelace\"}) { id } }",
            json!({"id": agent_id}),
        )
        .await;
    let changed = ws.next().await;
    assert_eq!(changed["type"], "next");
    assert_eq!(changed["payload"]["data"]["me"]["name"], "Ada Lovelace");

    // Deactivation ends the session, and with it the subscription and the socket.
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { deactivateAgent(id: $id) { id } }",
            json!({"id": agent_id}),
        )
        .await;
    assert_eq!(ws.closed().await.0, 4403);
}

async fn queries_and_mutations_run_over_the_socket_and_complete(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(subscribe("q", "{ me { email } }")).await;
    let next = ws.next().await;
    assert_eq!(next["payload"]["data"]["me"]["email"], "owner@example.com");
    assert_eq!(ws.next().await, json!({"type": "complete", "id": "q"}));
    // The id is free again once completed.
    ws.send(subscribe("q", "{ me { name } }")).await;
    assert_eq!(ws.next().await["type"], "next");
    assert_eq!(ws.next().await["type"], "complete");
}

async fn an_invalid_operation_gets_an_error_message_and_no_complete(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(subscribe("bad", "subscription { nope }")).await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["id"], "bad");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(
        ws.next().await,
        json!({"type": "pong"}),
        "no complete came before the pong"
    );
}

async fn the_client_completes_a_subscription(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(subscribe("1", ME)).await;
    assert_eq!(ws.next().await["type"], "next");
    ws.send(json!({"type": "complete", "id": "1"})).await;
    // The same id may be used again at once: the first one is gone.
    ws.send(subscribe("1", ME)).await;
    assert_eq!(ws.next().await["type"], "next");
}

async fn ping_is_answered_with_pong(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut ws = server.ws().await;
    ws.send(json!({"type": "ping", "payload": {"at": 1}})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

async fn close_4400_for_a_malformed_message(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send_text("{not json").await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4400);
    assert!(reason.starts_with("Invalid message"), "{reason}");

    let mut ws = server.ws().await;
    ws.send(json!({"type": "launch_rockets"})).await;
    assert_eq!(ws.closed().await.0, 4400);

    let mut ws = server.ws_ready(&owner).await;
    ws.send(json!({"type": "subscribe", "id": "1"})).await; // no payload
    assert_eq!(ws.closed().await.0, 4400);

    let mut ws = server.ws().await;
    ws.send_binary(b"\x00\x01").await;
    assert_eq!(ws.closed().await.0, 4400);
}

async fn close_4401_for_subscribe_before_connection_ack(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut ws = server.ws().await;
    ws.send(subscribe("1", ME)).await;
    assert_eq!(ws.closed().await, (4401, "Unauthorized".into()));
}

async fn close_4403_when_connection_init_is_rejected(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut ws = server.ws().await;
    ws.send(json!({"type": "connection_init", "payload": {"authorization": "Bearer forged"}}))
        .await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4403);
    assert!(reason.starts_with("Forbidden"), "{reason}");

    let mut ws = server.ws().await;
    ws.send(json!({"type": "connection_init"})).await;
    assert_eq!(ws.closed().await.0, 4403);

    // A token whose session was logged out is refused too.
    let owner = server.owner_token().await;
    server
        .ok(Some(&owner), "mutation { logout }", json!({}))
        .await;
    let mut ws = server.ws().await;
    ws.send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {owner}")}}),
    )
    .await;
    assert_eq!(ws.closed().await.0, 4403);
}

async fn close_4408_when_connection_init_does_not_arrive_in_time(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.ws_init_timeout = Duration::from_millis(200)).await;
    let mut ws = server.ws().await;
    let started = std::time::Instant::now();
    assert_eq!(
        ws.closed().await,
        (4408, "Connection initialisation timeout".into())
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
}

async fn an_initialised_connection_outlives_the_init_timeout(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.ws_init_timeout = Duration::from_millis(200)).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    assert!(ws.quiet_for(Duration::from_millis(400)).await.is_empty());
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

async fn close_4409_for_a_duplicate_subscription_id(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(subscribe("dup", ME)).await;
    assert_eq!(ws.next().await["type"], "next");
    ws.send(subscribe("dup", ME)).await;
    assert_eq!(
        ws.closed().await,
        (4409, "Subscriber for dup already exists".into())
    );
}

async fn close_4429_for_a_second_connection_init(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {owner}")}}),
    )
    .await;
    assert_eq!(
        ws.closed().await,
        (4429, "Too many initialisation requests".into())
    );
}

async fn close_4406_without_the_graphql_transport_ws_subprotocol(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut ws = WsClient::connect(&server.ws_url, None).await;
    assert_eq!(ws.closed().await.0, 4406);
}

async fn operations_per_connection_are_limited(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.ws_max_subscriptions = 2).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    for id in ["1", "2"] {
        ws.send(subscribe(id, ME)).await;
        assert_eq!(ws.next().await["type"], "next");
    }
    ws.send(subscribe("3", ME)).await;
    let refused = ws.next().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["id"], "3");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "LIMIT_EXCEEDED"
    );
    // The connection stays usable and the slot frees when one completes.
    ws.send(json!({"type": "complete", "id": "1"})).await;
    ws.send(subscribe("3", ME)).await;
    assert_eq!(ws.next().await["type"], "next");
}

async fn a_silent_connection_is_dropped_and_a_live_one_kept(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.ws_ping_interval = Duration::from_millis(100)).await;
    let owner = server.owner_token().await;
    let mut live = server.ws_ready(&owner).await;
    let mut silent = server.ws_ready(&owner).await;
    assert!(
        server
            .metrics()
            .await
            .contains("switchboard_websockets_open 2")
    );

    // `live` keeps reading, so tungstenite answers the server's pings; `silent` reads nothing.
    assert!(live.quiet_for(Duration::from_millis(700)).await.is_empty());
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("switchboard_websockets_open 1"),
        "{metrics}"
    );
    live.send(json!({"type": "ping"})).await;
    assert_eq!(live.next().await["type"], "pong");
    assert!(silent.is_gone().await);
}

async fn shutdown_closes_websockets_with_1001(backend: Backend) {
    let mut server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    ws.send(subscribe("1", ME)).await;
    assert_eq!(ws.next().await["type"], "next");
    let closing = tokio::spawn(async move { ws.closed().await });
    server.shut_down().await;
    let (code, _) = closing.await.unwrap();
    assert_eq!(code, 1001);
}

crate::on_both_backends!(
    a_subscription_sends_the_current_value_then_changes,
    queries_and_mutations_run_over_the_socket_and_complete,
    an_invalid_operation_gets_an_error_message_and_no_complete,
    the_client_completes_a_subscription,
    ping_is_answered_with_pong,
    close_4400_for_a_malformed_message,
    close_4401_for_subscribe_before_connection_ack,
    close_4403_when_connection_init_is_rejected,
    close_4408_when_connection_init_does_not_arrive_in_time,
    an_initialised_connection_outlives_the_init_timeout,
    close_4409_for_a_duplicate_subscription_id,
    close_4429_for_a_second_connection_init,
    close_4406_without_the_graphql_transport_ws_subprotocol,
    operations_per_connection_are_limited,
    a_silent_connection_is_dropped_and_a_live_one_kept,
    shutdown_closes_websockets_with_1001,
);
