//! Who may see and change which chats, what bad input gets, idempotent sends, routing status
//! across apps, availability and offline messages, and returning customers.

use crate::support::Backend;
use serde_json::{Value, json};

use crate::support::{TestServer, WsClient, agent_events, visitor, widget_key};

const PASSWORD: &str = "agent-password-1";

// ---- helpers --------------------------------------------------------------------------

/// A server whose configuration allows signUp.
async fn server_with_signup() -> TestServer {
    TestServer::start_with(crate::support::Backend::Sqlite, |c| c.allow_signup = true).await
}

/// Takes the signed-in agent out of routing.
async fn not_accepting(server: &TestServer, token: &str) {
    let data = server
        .ok(
            Some(token),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { routingStatus } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["setRoutingStatus"]["routingStatus"],
        "NOT_ACCEPTING_CHATS"
    );
}

/// Creates a group and returns its id.
/// Creates an agent in `groups` with an own chat limit; returns their id.
async fn create_agent_in(
    server: &TestServer,
    admin: &str,
    email: &str,
    role: &str,
    groups: &[&str],
    chat_limit: Option<i32>,
) -> String {
    server
        .ok(
            Some(admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": format!("Agent {email}"), "password": PASSWORD,
                   "role": role, "chatLimit": chat_limit, "groupIds": groups}}),
        )
        .await["createAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Starts a visitor session, with the secret an earlier one issued, and returns the whole
/// VisitorSession.
async fn visitor_session(
    server: &TestServer,
    key: &str,
    visitor_id: &str,
    visitor_secret: Option<&str>,
) -> Value {
    server
        .ok(
            None,
            "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) {
                token visitorId visitorSecret customer { id visits } } }",
            json!({"input": {"widgetKey": key, "visitorId": visitor_id,
                   "visitorSecret": visitor_secret, "name": "Returning Rob"}}),
        )
        .await["startVisitorSession"]
        .clone()
}

/// A customer starts a chat, optionally for a group; returns the chat's id and status.
async fn start_chat_for(
    server: &TestServer,
    customer: &str,
    message: &str,
    group: Option<&str>,
) -> (String, String) {
    let data = server
        .ok(
            Some(customer),
            "mutation($m: String!, $g: ID) { startChat(input: {message: $m, groupId: $g}) { id status } }",
            json!({"m": message, "g": group}),
        )
        .await;
    (
        data["startChat"]["id"].as_str().unwrap().to_owned(),
        data["startChat"]["status"].as_str().unwrap().to_owned(),
    )
}

/// A chat as an agent sees it: status, assignee and the whole transcript.
async fn chat_as_agent(server: &TestServer, agent: &str, chat_id: &str) -> Value {
    server
        .ok(
            Some(agent),
            "query($id: ID!) { chat(id: $id) { id status rating ratingComment assignee { id }
                events(first: 200) { items { id text author kind clientId } hasMore } } }",
            json!({"id": chat_id}),
        )
        .await["chat"]
        .clone()
}

/// A chat as its customer sees it.
async fn chat_as_customer(server: &TestServer, customer: &str, chat_id: &str) -> Value {
    server
        .ok(
            Some(customer),
            "query($id: ID!) { chat(id: $id) { id status rating ratingComment
                events(first: 200) { items { id text author kind clientId } hasMore } } }",
            json!({"id": chat_id}),
        )
        .await["chat"]
        .clone()
}

fn items(chat: &Value) -> Vec<Value> {
    chat["events"]["items"].as_array().unwrap().clone()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends a message and returns the whole response body.
async fn send(
    server: &TestServer,
    token: &str,
    chat_id: &str,
    text: &str,
    client_id: Option<&str>,
) -> Value {
    server
        .gql(
            Some(token),
            "mutation($c: ID!, $t: String!, $k: String) {
                sendMessage(input: {chatId: $c, text: $t, clientId: $k}) { id text clientId author } }",
            json!({"c": chat_id, "t": text, "k": client_id}),
        )
        .await
}

const CHAT_QUERY: &str = "query($id: ID!) { chat(id: $id) { id } }";
const SEND: &str =
    "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"hello?\"}) { id } }";
const TAKE: &str = "mutation($c: ID!) { takeChat(chatId: $c) { id } }";
const CLOSE: &str = "mutation($c: ID!) { closeChat(chatId: $c) { id } }";
const TRANSFER_TO_AGENT: &str =
    "mutation($c: ID!, $a: ID!) { transferChat(input: {chatId: $c, toAgentId: $a}) { id } }";

/// The first message of an operation's `error` on a socket, checked for `id`.
async fn ws_error_code(ws: &mut WsClient, id: &str) -> String {
    let message = ws.next().await;
    assert_eq!(message["type"], "error", "expected an error, got {message}");
    assert_eq!(message["id"], id);
    message["payload"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error with a code, got {message}"))
        .to_owned()
}

// ---- 1. isolation ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organizations_agent_can_neither_see_nor_change_a_chat() {
    let server = server_with_signup().await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], Some(1)).await;
    let ada = server.agent_token("ada@example.com").await;
    let key = widget_key(&server, &owner).await;
    let first = visitor(&server, &key, "v1").await;
    let (active, status) = start_chat_for(&server, &first, "Is anybody there?", None).await;
    assert_eq!(status, "ACTIVE");
    let second = visitor(&server, &key, "v2").await;
    let (queued, status) = start_chat_for(&server, &second, "Me too", None).await;
    assert_eq!(status, "QUEUED", "ada's limit of one is full");
    let active_before = chat_as_agent(&server, &owner, &active).await;
    let queued_before = chat_as_agent(&server, &owner, &queued).await;

    // The rival owner is an admin in their own organization: only the organization stops them.
    let (rival, rival_id) = server.rival_organization().await;
    for chat in [&active, &queued] {
        assert_eq!(
            server
                .error_code(Some(&rival), CHAT_QUERY, json!({"id": chat}))
                .await,
            "NOT_FOUND",
            "chat(id)"
        );
        assert_eq!(
            server
                .error_code(Some(&rival), SEND, json!({"c": chat}))
                .await,
            "NOT_FOUND",
            "sendMessage"
        );
    }
    assert_eq!(
        server
            .error_code(Some(&rival), TAKE, json!({"c": queued}))
            .await,
        "NOT_FOUND",
        "takeChat"
    );
    for chat in [&active, &queued] {
        assert_eq!(
            server
                .error_code(Some(&rival), CLOSE, json!({"c": chat}))
                .await,
            "NOT_FOUND",
            "closeChat"
        );
    }
    assert_eq!(
        server
            .error_code(
                Some(&rival),
                TRANSFER_TO_AGENT,
                json!({"c": active, "a": rival_id})
            )
            .await,
        "NOT_FOUND",
        "transferChat"
    );

    // Nothing changed.
    assert_eq!(chat_as_agent(&server, &owner, &active).await, active_before);
    assert_eq!(chat_as_agent(&server, &owner, &queued).await, queued_before);
    assert_eq!(active_before["status"], "ACTIVE");
    assert_eq!(queued_before["status"], "QUEUED");
    let ada_chats = server
        .ok(Some(&ada), "{ myChats { id status } }", json!({}))
        .await;
    assert_eq!(
        ada_chats["myChats"],
        json!([{"id": active, "status": "ACTIVE"}])
    );
    let rival_team = server
        .ok(
            Some(&rival),
            "{ teamChats { id } queue { chat { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(rival_team, json!({"teamChats": [], "queue": []}));
}

async fn a_customer_sees_only_their_own_chats(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let first = visitor(&server, &key, "first").await;
    let (chat, status) = start_chat_for(&server, &first, "My order is late", None).await;
    assert_eq!(status, "ACTIVE");
    let before = chat_as_customer(&server, &first, &chat).await;
    let agent_before = chat_as_agent(&server, &owner, &chat).await;

    let stranger = visitor(&server, &key, "stranger").await;
    assert_eq!(
        server
            .error_code(Some(&stranger), CHAT_QUERY, json!({"id": chat}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(Some(&stranger), SEND, json!({"c": chat}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(chat_as_customer(&server, &first, &chat).await, before);
    assert_eq!(chat_as_agent(&server, &owner, &chat).await, agent_before);
}

async fn agents_see_their_chats_and_their_queue_and_supervisors_their_teams_chats(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let sales = server.create_group(&owner, "Sales").await;
    let support = server.create_group(&owner, "Support").await;
    create_agent_in(
        &server,
        &owner,
        "ada@example.com",
        "AGENT",
        &[&sales],
        Some(1),
    )
    .await;
    create_agent_in(
        &server,
        &owner,
        "bob@example.com",
        "AGENT",
        &[&sales],
        Some(1),
    )
    .await;
    create_agent_in(
        &server,
        &owner,
        "sue@example.com",
        "SUPERVISOR",
        &[&sales],
        None,
    )
    .await;
    let carl_id = create_agent_in(
        &server,
        &owner,
        "carl@example.com",
        "AGENT",
        &[&support],
        None,
    )
    .await;
    let sue = server.agent_token("sue@example.com").await;
    not_accepting(&server, &sue).await;
    let carl = server.agent_token("carl@example.com").await;
    let key = widget_key(&server, &owner).await;

    let ada = server.agent_token("ada@example.com").await;
    let v1 = visitor(&server, &key, "v1").await;
    let (ada_chat, status) = start_chat_for(&server, &v1, "Price list?", Some(&sales)).await;
    assert_eq!(status, "ACTIVE");
    let bob = server.agent_token("bob@example.com").await;
    let v2 = visitor(&server, &key, "v2").await;
    let (bob_chat, status) = start_chat_for(&server, &v2, "Discounts?", Some(&sales)).await;
    assert_eq!(status, "ACTIVE");
    let v3 = visitor(&server, &key, "v3").await;
    let (queued_chat, status) = start_chat_for(&server, &v3, "Hello?", Some(&sales)).await;
    assert_eq!(status, "QUEUED", "both sales agents are at their limit");
    let v4 = visitor(&server, &key, "v4").await;
    let (support_chat, status) = start_chat_for(&server, &v4, "It broke", Some(&support)).await;
    assert_eq!(status, "ACTIVE");
    assert_eq!(
        chat_as_agent(&server, &carl, &support_chat).await["assignee"]["id"],
        carl_id
    );
    assert_eq!(
        chat_as_agent(&server, &bob, &bob_chat).await["status"],
        "ACTIVE",
        "bob has the second chat"
    );

    // Ada: her own chat and her group's queue, not her teammate's chat nor another group's.
    let own = chat_as_agent(&server, &ada, &ada_chat).await;
    assert_eq!(own["status"], "ACTIVE");
    let waiting = chat_as_agent(&server, &ada, &queued_chat).await;
    assert_eq!(waiting["status"], "QUEUED");
    for hidden in [&bob_chat, &support_chat] {
        assert_eq!(
            server
                .error_code(Some(&ada), CHAT_QUERY, json!({"id": hidden}))
                .await,
            "NOT_FOUND",
            "a teammate's or another group's active chat is not ada's to see"
        );
        assert_eq!(
            server
                .error_code(Some(&ada), SEND, json!({"c": hidden}))
                .await,
            "NOT_FOUND"
        );
    }
    let lists = server
        .ok(
            Some(&ada),
            "{ myChats { id } queue { chat { id } position } }",
            json!({}),
        )
        .await;
    assert_eq!(ids(&lists["myChats"]), vec![ada_chat.clone()]);
    assert_eq!(
        lists["queue"],
        json!([{"chat": {"id": queued_chat}, "position": 1}])
    );
    assert_eq!(
        server
            .error_code(Some(&ada), "{ teamChats { id } }", json!({}))
            .await,
        "FORBIDDEN"
    );

    // Sue supervises Sales: every Sales chat, active or queued, and nothing of Support.
    let team = server
        .ok(Some(&sue), "{ teamChats { id status } }", json!({}))
        .await;
    let mut team_ids = ids(&team["teamChats"]);
    team_ids.sort();
    let mut expected = vec![ada_chat.clone(), bob_chat.clone(), queued_chat.clone()];
    expected.sort();
    assert_eq!(team_ids, expected);
    assert_eq!(
        chat_as_agent(&server, &sue, &bob_chat).await["status"],
        "ACTIVE",
        "a supervisor sees the active chats of their groups"
    );
    assert_eq!(
        server
            .error_code(Some(&sue), CHAT_QUERY, json!({"id": support_chat}))
            .await,
        "NOT_FOUND"
    );
}

// ---- 2. roles -------------------------------------------------------------------------

async fn customers_cannot_use_agent_operations_nor_agents_customer_ones(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], Some(1)).await;
    let ada = server.agent_token("ada@example.com").await;
    let key = widget_key(&server, &owner).await;
    let first = visitor(&server, &key, "v1").await;
    let (active, _) = start_chat_for(&server, &first, "Hi", None).await;
    let customer = visitor(&server, &key, "v2").await;
    let (queued, status) = start_chat_for(&server, &customer, "Hi there", None).await;
    assert_eq!(status, "QUEUED");

    for (operation, query, variables) in [
        ("myChats", "{ myChats { id } }", json!({})),
        ("queue", "{ queue { chat { id } } }", json!({})),
        ("teamChats", "{ teamChats { id } }", json!({})),
        ("offlineMessages", "{ offlineMessages { id } }", json!({})),
        ("takeChat", TAKE, json!({"c": queued})),
        (
            "setRoutingStatus",
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        ),
    ] {
        assert_eq!(
            server.error_code(Some(&customer), query, variables).await,
            "FORBIDDEN",
            "{operation} with a visitor token"
        );
    }
    assert_eq!(
        chat_as_customer(&server, &customer, &queued).await["status"],
        "QUEUED",
        "the customer did not take their own chat"
    );

    let mut ws = server.ws_ready(&customer).await;
    ws.send(json!({"id": "events", "type": "subscribe", "payload": {
        "query": crate::support::AGENT_EVENTS, "variables": {"since": null}}}))
        .await;
    assert_eq!(ws_error_code(&mut ws, "events").await, "FORBIDDEN");

    let before = chat_as_agent(&server, &ada, &active).await;
    assert_eq!(
        server
            .error_code(
                Some(&ada),
                "mutation { startChat(input: {message: \"I am an agent\"}) { id } }",
                json!({})
            )
            .await,
        "FORBIDDEN",
        "startChat with an agent token"
    );
    assert_eq!(chat_as_agent(&server, &ada, &active).await, before);
    let ada_chats = server.ok(Some(&ada), "{ myChats { id } }", json!({})).await;
    assert_eq!(ids(&ada_chats["myChats"]), vec![active]);
}

// ---- 3. bad input ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_code_and_changes_nothing() {
    let server = server_with_signup().await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let ada_id = create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], None).await;
    let bob_id = create_agent_in(&server, &owner, "bob@example.com", "AGENT", &[], None).await;
    let group = server.create_group(&owner, "Sales").await;
    let ada = server.agent_token("ada@example.com").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;
    let (chat, status) = start_chat_for(&server, &customer, "Hello", None).await;
    assert_eq!(status, "ACTIVE");
    let (_, rival_id) = server.rival_organization().await;
    let before = chat_as_agent(&server, &ada, &chat).await;
    assert_eq!(before["assignee"]["id"], ada_id);

    // Unknown chats.
    for unknown in ["0192f0c4-0000-7000-8000-000000000000", "no-such-chat"] {
        assert_eq!(
            server
                .error_code(Some(&ada), CHAT_QUERY, json!({"id": unknown}))
                .await,
            "NOT_FOUND"
        );
        assert_eq!(
            server
                .error_code(Some(&customer), CHAT_QUERY, json!({"id": unknown}))
                .await,
            "NOT_FOUND"
        );
        assert_eq!(
            error_of(&send(&server, &ada, unknown, "hi", None).await).0,
            "NOT_FOUND"
        );
    }

    // Message texts: empty, blank, one character too many.
    let too_long = "x".repeat(4001);
    for (token, who) in [(&ada, "agent"), (&customer, "customer")] {
        for text in ["", "   \n\t  ", too_long.as_str()] {
            let (code, message) = error_of(&send(&server, token, &chat, text, None).await);
            assert_eq!(
                code,
                "BAD_USER_INPUT",
                "{who} sending {} characters",
                text.len()
            );
            if text.len() > 4000 {
                assert!(
                    message.contains("4000"),
                    "the message names the limit: {message}"
                );
            }
        }
    }

    // Transfers: an agent of another organization; both targets; none.
    let transfer = "mutation($c: ID!, $a: ID, $g: ID) { transferChat(input: {chatId: $c, toAgentId: $a, toGroupId: $g}) { id } }";
    assert_eq!(
        server
            .error_code(Some(&ada), transfer, json!({"c": chat, "a": rival_id}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(&ada),
                transfer,
                json!({"c": chat, "a": bob_id, "g": group})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .error_code(Some(&ada), transfer, json!({"c": chat}))
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(chat_as_agent(&server, &ada, &chat).await, before);

    // Visitor sessions: an unknown widget key; an invalid email.
    let session = "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token customer { visits } } }";
    assert_eq!(
        server
            .error_code(
                None,
                session,
                json!({"input": {"widgetKey": "wk_no_such_key", "visitorId": "v9"}})
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                None,
                session,
                json!({"input": {"widgetKey": key, "visitorId": "v9", "email": "not an email"}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let first_visit = server
        .ok(
            None,
            session,
            json!({"input": {"widgetKey": key, "visitorId": "v9"}}),
        )
        .await;
    assert_eq!(
        first_visit["startVisitorSession"]["customer"]["visits"], 1,
        "the refused sessions recorded no visit"
    );

    // startChat with an unknown group.
    let newcomer = first_visit["startVisitorSession"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let team_before = server
        .ok(Some(&owner), "{ teamChats { id } }", json!({}))
        .await;
    assert_eq!(
        server
            .error_code(
                Some(&newcomer),
                "mutation($g: ID) { startChat(input: {message: \"Hi\", groupId: $g}) { id } }",
                json!({"g": "0192f0c4-0000-7000-8000-000000000001"})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .ok(Some(&owner), "{ teamChats { id } }", json!({}))
            .await,
        team_before,
        "no chat was started"
    );

    // A malformed cursor for chatEvents.
    for since in ["not-a-cursor", "-1"] {
        let mut ws = server.ws_ready(&customer).await;
        ws.send(json!({"id": "chat", "type": "subscribe", "payload": {
            "query": crate::support::CHAT_EVENTS, "variables": {"chatId": chat, "since": since}}}))
            .await;
        assert_eq!(
            ws_error_code(&mut ws, "chat").await,
            "BAD_USER_INPUT",
            "since {since:?}"
        );
    }

    // A closed chat takes no more messages, from either side.
    server.ok(Some(&ada), CLOSE, json!({"c": chat})).await;
    let closed = chat_as_agent(&server, &ada, &chat).await;
    assert_eq!(closed["status"], "CLOSED");
    for token in [&ada, &customer] {
        assert_eq!(
            error_of(&send(&server, token, &chat, "Still there?", None).await).0,
            "CONFLICT"
        );
    }

    // Ratings: a comment one character too long.
    let rate = "mutation($c: ID!, $comment: String) { rateChat(input: {chatId: $c, rating: GOOD, comment: $comment}) { rating } }";
    assert_eq!(
        server
            .error_code(
                Some(&customer),
                rate,
                json!({"c": chat, "comment": "y".repeat(1001)})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(chat_as_agent(&server, &ada, &chat).await, closed);
    assert_eq!(closed["rating"], json!(null));
    // The limits themselves are allowed.
    server
        .ok(
            Some(&customer),
            rate,
            json!({"c": chat, "comment": "y".repeat(1000)}),
        )
        .await;
}

async fn a_message_of_exactly_4000_characters_is_accepted(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;
    let (chat, _) = start_chat_for(&server, &customer, "Hello", None).await;
    // Characters, not bytes: 4000 two-byte characters fit.
    for text in ["x".repeat(4000), "é".repeat(4000)] {
        for token in [&owner, &customer] {
            let body = send(&server, token, &chat, &text, None).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(body["data"]["sendMessage"]["text"], text.as_str());
        }
    }
}

/// The first error's code and message.
fn error_of(body: &Value) -> (String, String) {
    (
        crate::support::error_code(body),
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

// ---- 4. idempotent sends --------------------------------------------------------------

async fn sending_with_the_same_client_id_twice_stores_one_message(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], None).await;
    let ada = server.agent_token("ada@example.com").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;
    let (chat, _) = start_chat_for(&server, &customer, "Hello", None).await;
    let before = items(&chat_as_agent(&server, &ada, &chat).await).len();

    let mut sent = Vec::new();
    for (token, text) in [(&ada, "How can I help?"), (&customer, "I need a refund")] {
        let first = send(&server, token, &chat, text, Some("client-1")).await;
        let again = send(&server, token, &chat, text, Some("client-1")).await;
        assert!(first.get("errors").is_none(), "{first}");
        assert!(again.get("errors").is_none(), "{again}");
        assert_eq!(
            again["data"]["sendMessage"], first["data"]["sendMessage"],
            "the resend returns the first message"
        );
        assert_eq!(first["data"]["sendMessage"]["clientId"], "client-1");
        sent.push(
            first["data"]["sendMessage"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_ne!(sent[0], sent[1], "client ids are per sender");

    let transcript = items(&chat_as_agent(&server, &ada, &chat).await);
    assert_eq!(transcript.len(), before + 2, "{transcript:?}");
    for (id, text) in sent.iter().zip(["How can I help?", "I need a refund"]) {
        let copies: Vec<&Value> = transcript.iter().filter(|m| m["text"] == text).collect();
        assert_eq!(copies.len(), 1, "{text:?} is in the transcript once");
        assert_eq!(copies[0]["id"], id.as_str());
    }
    let customer_view = items(&chat_as_customer(&server, &customer, &chat).await);
    assert_eq!(
        customer_view
            .iter()
            .filter(|m| m["text"] == "How can I help?" || m["text"] == "I need a refund")
            .count(),
        2
    );
}

// ---- 5. routing status ----------------------------------------------------------------

async fn routing_status_reaches_every_app_survives_login_and_steers_new_chats_only(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let ada_id = create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], None).await;
    let bob_id = create_agent_in(&server, &owner, "bob@example.com", "AGENT", &[], None).await;
    let key = widget_key(&server, &owner).await;

    // Ada signs in on her phone and her desktop; the first login ever makes her accept chats.
    let phone = server.login("ada@example.com", PASSWORD).await;
    assert_eq!(phone["agent"]["routingStatus"], "ACCEPTING_CHATS");
    let phone = phone["accessToken"].as_str().unwrap().to_owned();
    let desktop = server.login("ada@example.com", PASSWORD).await;
    assert_eq!(desktop["agent"]["routingStatus"], "ACCEPTING_CHATS");
    let desktop = desktop["accessToken"].as_str().unwrap().to_owned();
    // Ada has no events yet, so from cursor 0 is from now, without racing the subscription.
    let mut phone_events = agent_events(&server, &phone, Some("0")).await;
    let mut desktop_events = agent_events(&server, &desktop, Some("0")).await;

    let v1 = visitor(&server, &key, "v1").await;
    let (ada_chat, status) = start_chat_for(&server, &v1, "Hi Ada", None).await;
    assert_eq!(status, "ACTIVE");
    assert_eq!(
        chat_as_agent(&server, &phone, &ada_chat).await["assignee"]["id"],
        ada_id
    );

    not_accepting(&server, &phone).await;
    for events in [&mut phone_events, &mut desktop_events] {
        let changed = events.next_event("RoutingStatusChanged").await;
        assert_eq!(changed["routingStatus"], "NOT_ACCEPTING_CHATS");
    }
    let me = server
        .ok(Some(&desktop), "{ me { routingStatus } }", json!({}))
        .await;
    assert_eq!(me["me"]["routingStatus"], "NOT_ACCEPTING_CHATS");

    // Nobody else accepts: no chat for ada, the widget hears AGENTS_OFFLINE.
    let v2 = visitor(&server, &key, "v2").await;
    assert_eq!(
        server
            .error_code(
                Some(&v2),
                "mutation { startChat(input: {message: \"Anyone?\"}) { id } }",
                json!({})
            )
            .await,
        "AGENTS_OFFLINE"
    );

    // Bob accepts: he gets the new chats, even when ada would be next by load or turn.
    let bob = server.agent_token("bob@example.com").await;
    let (second, status) = start_chat_for(&server, &v2, "Anyone now?", None).await;
    assert_eq!(status, "ACTIVE");
    let v3 = visitor(&server, &key, "v3").await;
    let (third, status) = start_chat_for(&server, &v3, "Hello", None).await;
    assert_eq!(status, "ACTIVE");
    for chat in [&second, &third] {
        assert_eq!(
            chat_as_agent(&server, &bob, chat).await["assignee"]["id"],
            bob_id
        );
    }

    // Ada keeps her chat and can still answer in it.
    let reply = send(&server, &desktop, &ada_chat, "Still here for you", None).await;
    assert!(reply.get("errors").is_none(), "{reply}");
    let mine = server
        .ok(Some(&phone), "{ myChats { id status } }", json!({}))
        .await;
    assert_eq!(
        mine["myChats"],
        json!([{"id": ada_chat, "status": "ACTIVE"}])
    );

    // A later login restores her choice rather than accepting chats again.
    let later = server.login("ada@example.com", PASSWORD).await;
    assert_eq!(later["agent"]["routingStatus"], "NOT_ACCEPTING_CHATS");
    let v4 = visitor(&server, &key, "v4").await;
    let (fourth, _) = start_chat_for(&server, &v4, "Hi again", None).await;
    assert_eq!(
        chat_as_agent(&server, &bob, &fourth).await["assignee"]["id"],
        bob_id
    );
    let mine = server
        .ok(Some(&phone), "{ myChats { id } }", json!({}))
        .await;
    assert_eq!(ids(&mine["myChats"]), vec![ada_chat]);
}

// ---- 6. availability and offline messages ---------------------------------------------

async fn availability_is_public_and_offline_messages_reach_agents(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], None).await;
    let key = widget_key(&server, &owner).await;
    let availability = "query($k: String!) { availability(widgetKey: $k) { online queueLength estimatedWaitSeconds } }";

    let open = server.ok(None, availability, json!({"k": key})).await;
    assert_eq!(
        open["availability"],
        json!({"online": true, "queueLength": 0, "estimatedWaitSeconds": 0}),
        "the owner accepts chats after signing in"
    );
    not_accepting(&server, &owner).await;
    let closed = server.ok(None, availability, json!({"k": key})).await;
    assert_eq!(closed["availability"]["online"], false);

    let customer = visitor(&server, &key, "v1").await;
    assert_eq!(
        server
            .error_code(
                Some(&customer),
                "mutation { startChat(input: {message: \"Hello?\"}) { id } }",
                json!({})
            )
            .await,
        "AGENTS_OFFLINE"
    );
    let left = server
        .ok(
            Some(&customer),
            "mutation { leaveOfflineMessage(input: {name: \"Vera\", email: \"vera@customer.test\",
                text: \"Please call me back\"}) { id name email text handled } }",
            json!({}),
        )
        .await["leaveOfflineMessage"]
        .clone();
    assert_eq!(left["handled"], false);
    let message_id = left["id"].as_str().unwrap().to_owned();

    let ada = server.agent_token("ada@example.com").await;
    let open = server.ok(None, availability, json!({"k": key})).await;
    assert_eq!(open["availability"]["online"], true, "ada accepts chats");
    let listed = server
        .ok(
            Some(&ada),
            "{ offlineMessages { id name email text handled } }",
            json!({}),
        )
        .await;
    assert_eq!(
        listed["offlineMessages"],
        json!([{"id": message_id, "name": "Vera", "email": "vera@customer.test",
                "text": "Please call me back", "handled": false}])
    );
    let mark = "mutation($id: ID!, $h: Boolean!) { markOfflineMessageHandled(id: $id, handled: $h) { id handled } }";
    let marked = server
        .ok(Some(&ada), mark, json!({"id": message_id, "h": true}))
        .await;
    assert_eq!(marked["markOfflineMessageHandled"]["handled"], true);
    let listed = server
        .ok(Some(&ada), "{ offlineMessages { id handled } }", json!({}))
        .await;
    assert_eq!(
        listed["offlineMessages"],
        json!([{"id": message_id, "handled": true}])
    );
    let unmarked = server
        .ok(Some(&ada), mark, json!({"id": message_id, "h": false}))
        .await;
    assert_eq!(unmarked["markOfflineMessageHandled"]["handled"], false);

    // The refused chat left nothing open: the next start is a new chat with only its message.
    let (chat, status) = start_chat_for(&server, &customer, "Now?", None).await;
    assert_eq!(status, "ACTIVE");
    let transcript = items(&chat_as_customer(&server, &customer, &chat).await);
    let messages: Vec<&Value> = transcript
        .iter()
        .filter(|m| m["kind"] == "MESSAGE")
        .collect();
    assert_eq!(messages.len(), 1, "{transcript:?}");
    assert_eq!(messages[0]["text"], "Now?");
}

// ---- 7. returning customers -----------------------------------------------------------

async fn a_returning_customer_goes_back_to_their_previous_agent(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let ada_id = create_agent_in(&server, &owner, "ada@example.com", "AGENT", &[], None).await;
    let bob_id = create_agent_in(&server, &owner, "bob@example.com", "AGENT", &[], None).await;
    let key = widget_key(&server, &owner).await;
    let ada = server.agent_token("ada@example.com").await;
    let mut ada_events = agent_events(&server, &ada, Some("0")).await;

    // Ada is the only one accepting: she gets Rob's chat and another.
    let first_visit = visitor_session(&server, &key, "rob", None).await;
    let rob_secret = first_visit["visitorSecret"].as_str().unwrap().to_owned();
    assert_eq!(first_visit["customer"]["visits"], 1);
    let rob = first_visit["token"].as_str().unwrap().to_owned();
    let (first_chat, _) = start_chat_for(&server, &rob, "Where is my parcel?", None).await;
    let other = visitor(&server, &key, "other").await;
    let (other_chat, _) = start_chat_for(&server, &other, "Hello", None).await;
    for chat in [&first_chat, &other_chat] {
        assert_eq!(
            chat_as_agent(&server, &ada, chat).await["assignee"]["id"],
            ada_id
        );
    }
    server.ok(Some(&ada), CLOSE, json!({"c": first_chat})).await;

    // Bob signs in with no chats; ada still has one.
    let bob = server.agent_token("bob@example.com").await;
    let second_visit = visitor_session(&server, &key, "rob", Some(&rob_secret)).await;
    assert_eq!(second_visit["visitorId"], "rob");
    assert_eq!(second_visit["customer"]["visits"], 2);
    assert_eq!(
        second_visit["customer"]["id"],
        first_visit["customer"]["id"]
    );
    let rob = second_visit["token"].as_str().unwrap().to_owned();
    let (second_chat, status) = start_chat_for(&server, &rob, "Me again", None).await;
    assert_eq!(status, "ACTIVE");
    assert_eq!(
        chat_as_agent(&server, &ada, &second_chat).await["assignee"]["id"],
        ada_id,
        "the previous agent, although bob has fewer chats"
    );
    loop {
        let assigned = ada_events.next_event("ChatAssigned").await;
        if assigned["chat"]["id"] == second_chat.as_str() {
            assert_eq!(assigned["reason"], "returning customer");
            break;
        }
    }

    // When their agent does not accept chats, someone else does.
    server
        .ok(Some(&ada), CLOSE, json!({"c": second_chat}))
        .await;
    not_accepting(&server, &ada).await;
    let third_visit = visitor_session(&server, &key, "rob", Some(&rob_secret)).await;
    assert_eq!(third_visit["customer"]["visits"], 3);
    let rob = third_visit["token"].as_str().unwrap().to_owned();
    let (third_chat, _) = start_chat_for(&server, &rob, "Third time", None).await;
    assert_eq!(
        chat_as_agent(&server, &bob, &third_chat).await["assignee"]["id"],
        bob_id
    );
}

crate::on_both_backends!(
    a_customer_sees_only_their_own_chats,
    agents_see_their_chats_and_their_queue_and_supervisors_their_teams_chats,
    customers_cannot_use_agent_operations_nor_agents_customer_ones,
    a_message_of_exactly_4000_characters_is_accepted,
    sending_with_the_same_client_id_twice_stores_one_message,
    routing_status_reaches_every_app_survives_login_and_steers_new_chats_only,
    availability_is_public_and_offline_messages_reach_agents,
    a_returning_customer_goes_back_to_their_previous_agent,
);
