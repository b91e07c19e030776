//! A socket never keeps rights its agent lost: ended sessions close every socket of theirs
//! (4403) on every node, each WebSocket operation is authorized as the agent is now, expired
//! tokens close the socket, and password guesses are counted before they are checked.

use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, CHAT_EVENTS, OWNER_EMAIL, TestServer, WsClient, agent_events, error_code, start_chat,
    visitor, widget_key,
};

on_both_backends!(
    logout_closes_that_sessions_sockets_and_no_other,
    operations_over_an_open_socket_are_checked_against_the_session_now,
    a_demoted_admin_loses_admin_rights_on_an_open_socket_and_a_deactivated_one_the_socket,
    a_demoted_supervisor_stops_receiving_a_chat_they_may_no_longer_see,
    a_new_password_ends_every_other_session_and_its_sockets,
    a_session_ended_on_one_node_closes_its_sockets_on_another,
    signing_out_of_the_last_app_makes_the_agent_unreachable_at_once,
);

const CREATE_AGENT: &str = "mutation($email: String!) {
    createAgent(input: {email: $email, name: \"Made\", password: \"made-password-1\", role: ADMIN}) { id } }";

/// Signs in and returns (access token, refresh token).
async fn sign_in(server: &TestServer, email: &str, password: &str) -> (String, String) {
    let auth = server.login(email, password).await;
    (
        auth["accessToken"].as_str().unwrap().to_owned(),
        auth["refreshToken"].as_str().unwrap().to_owned(),
    )
}

/// The session id an access token carries.
fn session_of(token: &str) -> String {
    let claims = token.split('.').nth(1).unwrap();
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

/// Whether the socket still answers a protocol ping (skipping events on the way).
async fn answers_ping(ws: &mut WsClient) -> bool {
    ws.send(json!({"type": "ping"})).await;
    for _ in 0..20 {
        let message = ws.next().await;
        if message["type"] == "pong" {
            return true;
        }
    }
    false
}

/// Runs one operation over the socket and returns what the server answered for it: the
/// `next` payload or the `error` payload as `{"errors": …}`.
async fn over_socket(ws: &mut WsClient, id: &str, query: &str, variables: Value) -> Value {
    ws.send(
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await;
    loop {
        let message = ws.next().await;
        if message["id"] != id {
            continue;
        }
        match message["type"].as_str() {
            Some("next") => return message["payload"].clone(),
            Some("error") => return json!({"errors": message["payload"]}),
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
}

async fn agent_emails(server: &TestServer, owner: &str) -> Vec<String> {
    server
        .ok(Some(owner), "{ agents { email } }", json!({}))
        .await["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["email"].as_str().unwrap().to_owned())
        .collect()
}

/// An agent's routing status and reachability, as an admin sees them.
async fn agent_state(server: &TestServer, admin: &str, id: &str) -> Value {
    server
        .ok(
            Some(admin),
            "query($id: ID!) { agent(id: $id) { routingStatus reachable } }",
            json!({"id": id}),
        )
        .await["agent"]
        .clone()
}

async fn logout_closes_that_sessions_sockets_and_no_other(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let phone = server.agent_token("ada@example.com").await;
    let desk = server.agent_token("ada@example.com").await;
    let mut phone_events = agent_events(&server, &phone, None).await;
    let mut desk_events = agent_events(&server, &desk, None).await;

    let started = Instant::now();
    server
        .ok(Some(&phone), "mutation { logout }", json!({}))
        .await;
    let (code, reason) = phone_events.closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("the session has ended"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "closed after {:?}",
        started.elapsed()
    );
    // The other app's session goes on.
    assert!(answers_ping(&mut desk_events).await);
    server.ok(Some(&desk), "{ me { id } }", json!({})).await;
}

async fn operations_over_an_open_socket_are_checked_against_the_session_now(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "bea@example.com", "ADMIN")
        .await;
    let bea = server.agent_token("bea@example.com").await;
    let mut ws = server.ws_ready(&bea).await;
    let me = over_socket(&mut ws, "me", "{ me { email } }", json!({})).await;
    assert_eq!(me["data"]["me"]["email"], "bea@example.com");

    // The session ends in the store alone, with no announcement: the next operation over the
    // socket still finds out, before anything runs.
    server
        .store
        .revoke_session(&session_of(&bea), "test", chrono::Utc::now())
        .await
        .unwrap();
    ws.send(json!({"id": "make", "type": "subscribe", "payload": {
        "query": CREATE_AGENT, "variables": {"email": "made@example.com"}}}))
        .await;
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4403, "{reason}");
    assert!(
        !agent_emails(&server, &owner)
            .await
            .contains(&"made@example.com".to_owned())
    );
}

async fn a_demoted_admin_loses_admin_rights_on_an_open_socket_and_a_deactivated_one_the_socket(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let bea_id = server
        .create_agent(&owner, "bea@example.com", "ADMIN")
        .await;
    let bea = server.agent_token("bea@example.com").await;
    let mut ws = server.ws_ready(&bea).await;
    let made = over_socket(
        &mut ws,
        "1",
        CREATE_AGENT,
        json!({"email": "first@example.com"}),
    )
    .await;
    assert!(made.get("errors").is_none(), "an admin may: {made}");

    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, role: AGENT}) { role } }",
            json!({"id": bea_id}),
        )
        .await;
    let refused = over_socket(
        &mut ws,
        "2",
        CREATE_AGENT,
        json!({"email": "second@example.com"}),
    )
    .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let settings = over_socket(
        &mut ws,
        "3",
        "mutation { updateOrganizationSettings(input: {queueLimit: 1}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&settings), "FORBIDDEN", "{settings}");
    assert!(
        !agent_emails(&server, &owner)
            .await
            .contains(&"second@example.com".to_owned())
    );
    // Demoted, not signed out: the socket stays.
    assert!(answers_ping(&mut ws).await);

    let started = Instant::now();
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { deactivateAgent(id: $id) { isActive } }",
            json!({"id": bea_id}),
        )
        .await;
    let (code, _) = ws.closed().await;
    assert_eq!(code, 4403);
    assert!(started.elapsed() < Duration::from_secs(1));
    let login = server
        .gql(
            None,
            "mutation { login(input: {email: \"bea@example.com\", password: \"agent-password-1\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&login), "UNAUTHENTICATED");
}

async fn a_demoted_supervisor_stops_receiving_a_chat_they_may_no_longer_see(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let sam_id = server
        .create_agent(&owner, "sam@example.com", "SUPERVISOR")
        .await;
    let sam = server.agent_token("sam@example.com").await;
    // Sam watches the chats without taking any.
    server
        .ok(
            Some(&sam),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let customer = visitor(&server, &key, "v-sup").await;
    let (chat, status) = start_chat(&server, &customer, "Hello").await;
    assert_eq!(status, "ACTIVE");

    let mut ws = server.ws_ready(&sam).await;
    ws.send(json!({"id": "chat", "type": "subscribe", "payload": {
        "query": CHAT_EVENTS, "variables": {"chatId": chat, "since": null}}}))
        .await;
    assert_eq!(
        ws.next_event("MessageAdded").await["message"]["text"],
        "Hello"
    );

    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, role: AGENT}) { role } }",
            json!({"id": sam_id}),
        )
        .await;
    loop {
        let message = ws.next().await;
        if message["type"] == "complete" {
            assert_eq!(message["id"], "chat");
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
    }
    // Nothing of the chat reaches Sam any more, and asking again is refused.
    let again = over_socket(
        &mut ws,
        "again",
        "query($id: ID!) { chat(id: $id) { id } }",
        json!({"id": chat}),
    )
    .await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
}

async fn a_new_password_ends_every_other_session_and_its_sockets(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let (desk, _) = sign_in(&server, "ada@example.com", "agent-password-1").await;
    let (stolen, stolen_refresh) = sign_in(&server, "ada@example.com", "agent-password-1").await;
    let mut stolen_ws = server.ws_ready(&stolen).await;

    server
        .ok(
            Some(&desk),
            "mutation { changePassword(input: {currentPassword: \"agent-password-1\", newPassword: \"new-password-22\"}) }",
            json!({}),
        )
        .await;
    let (code, reason) = stolen_ws.closed().await;
    assert_eq!(code, 4403);
    assert!(reason.contains("the session has ended"), "{reason}");
    assert_eq!(
        server
            .error_code(Some(&stolen), "{ me { id } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    let refreshed = server
        .gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({"t": stolen_refresh}),
        )
        .await;
    assert_eq!(error_code(&refreshed), "UNAUTHENTICATED");
    // The session that changed it goes on, and the new password signs in.
    server.ok(Some(&desk), "{ me { id } }", json!({})).await;
    sign_in(&server, "ada@example.com", "new-password-22").await;
}

async fn a_session_ended_on_one_node_closes_its_sockets_on_another(backend: Backend) {
    let server = TestServer::start_with(backend.clone(), |_| {}).await;
    let owner = server.owner_token().await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "ADMIN")
        .await;
    let node_b = server.another_node().await;
    let (ada, _) = sign_in(&server, "ada@example.com", "agent-password-1").await;
    let (other, _) = sign_in(&server, "ada@example.com", "agent-password-1").await;
    let mut on_b = node_b.ws_ready(&ada).await;
    let mut other_on_b = node_b.ws_ready(&other).await;

    // A role changed on node A holds at once for an operation over node B's socket: the
    // store is the truth.
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, role: AGENT}) { role } }",
            json!({"id": ada_id}),
        )
        .await;
    let refused = over_socket(
        &mut on_b,
        "1",
        CREATE_AGENT,
        json!({"email": "x@example.com"}),
    )
    .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");

    // Node B hears of a logout on node A only from the store.
    let started = Instant::now();
    server
        .ok(Some(&ada), "mutation { logout }", json!({}))
        .await;
    let (code, _) = on_b.closed().await;
    let took = started.elapsed();
    assert_eq!(code, 4403);
    assert!(took < Duration::from_millis(1500), "closed after {took:?}");
    assert!(answers_ping(&mut other_on_b).await);
    drop(node_b);
}

async fn signing_out_of_the_last_app_makes_the_agent_unreachable_at_once(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    // The owner does not take chats: only Ada could.
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let phone = server.agent_token("ada@example.com").await;
    let desk = server.agent_token("ada@example.com").await;
    let me = server
        .ok(Some(&desk), "{ me { routingStatus reachable } }", json!({}))
        .await;
    assert_eq!(me["me"]["routingStatus"], "ACCEPTING_CHATS");
    assert_eq!(me["me"]["reachable"], true);

    // Signing out of one of two apps leaves her reachable.
    server
        .ok(Some(&phone), "mutation { logout }", json!({}))
        .await;
    assert_eq!(
        agent_state(&server, &owner, &ada_id).await["reachable"],
        true
    );

    // Out of the last one, nothing can reach her: no chat is routed into the void.
    server
        .ok(Some(&desk), "mutation { logout }", json!({}))
        .await;
    let agent = agent_state(&server, &owner, &ada_id).await;
    assert_eq!(agent["routingStatus"], "ACCEPTING_CHATS");
    assert_eq!(agent["reachable"], false);
    let customer = visitor(&server, &key, "v-void").await;
    let started = server
        .gql(
            Some(&customer),
            "mutation { startChat(input: {message: \"anyone?\"}) { id status } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&started), "AGENTS_OFFLINE", "{started}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_closes_when_its_access_token_expires() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.access_token_ttl = Duration::from_secs(1);
        // Expiry is checked at each ping.
        config.ws_ping_interval = Duration::from_millis(200);
    })
    .await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    // Expiry is in whole seconds: a 1 s token lives up to 2 s.
    let (code, reason) = ws.closed().await;
    assert_eq!(code, 4403);
    assert!(reason.contains("the access token has expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_together_are_counted_before_any_is_checked() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let guess = |password: &'static str| {
        server.gql(
            None,
            "mutation($p: String!) { login(input: {email: \"ada@example.com\", password: $p}) { accessToken } }",
            json!({"p": password}),
        )
    };
    let answers = join_all((0..100).map(|_| guess("wrong-password"))).await;
    let codes: Vec<String> = answers.iter().map(error_code).collect();
    let checked = codes.iter().filter(|c| *c == "UNAUTHENTICATED").count();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert!(checked <= 5, "{checked} guesses were checked");
    assert_eq!(checked + limited, 100, "{codes:?}");
    // The right password is refused too until the window ends.
    let right = guess("agent-password-1").await;
    assert_eq!(error_code(&right), "RATE_LIMITED");
    assert!(
        right["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_current_passwords_are_limited_like_logins() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let change = || {
        server.gql(
            Some(&owner),
            "mutation { changePassword(input: {currentPassword: \"not-the-password\", newPassword: \"whatever-123\"}) }",
            json!({}),
        )
    };
    let answers = join_all((0..20).map(|_| change())).await;
    let codes: Vec<String> = answers.iter().map(error_code).collect();
    let checked = codes.iter().filter(|c| *c == "BAD_USER_INPUT").count();
    assert!(
        checked <= 5,
        "{checked} current passwords were checked: {codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "RATE_LIMITED").count(),
        20 - checked
    );
    // And the owner's logins share the budget: a guessed current password is a guess.
    let login = server
        .gql(
            None,
            "mutation($e: String!) { login(input: {email: $e, password: \"owner-password-1\"}) { accessToken } }",
            json!({"e": OWNER_EMAIL}),
        )
        .await;
    assert_eq!(error_code(&login), "RATE_LIMITED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_websocket_message_closes_with_1009() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_body_bytes = 4096;
    })
    .await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    let big = "x".repeat(10_000);
    ws.send(json!({"id": "big", "type": "subscribe", "payload": {"query": big}}))
        .await;
    let (code, _) = ws.closed().await;
    assert_eq!(code, 1009);
}
