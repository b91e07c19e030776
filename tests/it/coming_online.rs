//! An agent who becomes reachable takes the customers waiting: when their app connects, and
//! when they register a phone for pushes.

use std::time::Duration;

use serde_json::json;

use crate::support::{Backend, TestServer, WsClient, start_chat, visitor, widget_key};

/// A server where Ada (limit 1) is connected and busy with one chat, a second customer waits
/// in the queue, and Bob accepts chats but cannot be reached (his login's grace is over).
/// Returns the server, Bob's token, the waiting chat and Ada's socket (keep it open).
async fn a_customer_waits_while_bob_is_unreachable(
    backend: Backend,
) -> (TestServer, String, String, WsClient) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id }
                updateOrganizationSettings(input: {presenceGraceSeconds: 1}) { id } }",
            json!({}),
        )
        .await;
    for email in ["ada@example.com", "bob@example.com"] {
        server
            .ok(
                Some(&owner),
                "mutation($e: String!) { createAgent(input: {email: $e, name: $e,
                    password: \"agent-password-1\", chatLimit: 1}) { id } }",
                json!({"e": email}),
            )
            .await;
    }
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    let ada_app = server.ws_ready(&ada).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let key = widget_key(&server, &owner).await;
    let first = visitor(&server, &key, "first").await;
    let (_, status) = start_chat(&server, &first, "hello").await;
    assert_eq!(status, "ACTIVE", "Ada has room");
    let second = visitor(&server, &key, "second").await;
    let (waiting, status) = start_chat(&server, &second, "anyone else?").await;
    assert_eq!(status, "QUEUED", "Ada is full and Bob cannot be reached");
    (server, bob, waiting, ada_app)
}

/// Bob's active chats.
async fn bobs_chats(server: &TestServer, bob: &str) -> serde_json::Value {
    server.ok(Some(bob), "{ myChats { id } }", json!({})).await["myChats"].clone()
}

async fn an_agents_app_coming_online_takes_the_waiting_customer(backend: Backend) {
    let (server, bob, waiting, _ada_app) = a_customer_waits_while_bob_is_unreachable(backend).await;
    // The server acknowledges the connection once the app is online, queue routed.
    let _bob_app = server.ws_ready(&bob).await;
    assert_eq!(bobs_chats(&server, &bob).await, json!([{"id": waiting}]));
}

async fn registering_a_phone_takes_the_waiting_customer(backend: Backend) {
    let (server, bob, waiting, _ada_app) = a_customer_waits_while_bob_is_unreachable(backend).await;
    server
        .ok(
            Some(&bob),
            "mutation { registerPushDevice(input: {platform: ANDROID, token: \"bob-phone\",
                appId: \"com.example.agent\"}) { id } }",
            json!({}),
        )
        .await;
    // Routed before the mutation answers.
    assert_eq!(bobs_chats(&server, &bob).await, json!([{"id": waiting}]));
}

crate::on_both_backends!(
    an_agents_app_coming_online_takes_the_waiting_customer,
    registering_a_phone_takes_the_waiting_customer,
);
