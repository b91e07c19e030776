//! What a chat shows beyond its own row: lists of chats resolve each chat's assignee, customer
//! and group (through the loaders) to the right ones, and a chat's transcript and customer are
//! refused to an agent who may no longer see the chat, even through an event that names it.

use crate::support::Backend;
use serde_json::{Value, json};

use crate::support::{TestServer, visitor, widget_key};

const PASSWORD: &str = "agent-password-1";

/// Takes the signed-in agent out of routing.
async fn not_accepting(server: &TestServer, token: &str) {
    server
        .ok(
            Some(token),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { routingStatus } }",
            json!({}),
        )
        .await;
}

/// Creates a group and returns its id.
/// Creates an agent in `group`; returns their id.
async fn create_agent_in(
    server: &TestServer,
    admin: &str,
    email: &str,
    role: &str,
    group: &str,
    chat_limit: Option<i32>,
) -> String {
    server
        .ok(
            Some(admin),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": format!("Agent {email}"), "password": PASSWORD,
                   "role": role, "chatLimit": chat_limit, "groupIds": [group]}}),
        )
        .await["createAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A customer starts a chat for a group; returns the chat's id.
async fn start_chat_in(server: &TestServer, customer: &str, message: &str, group: &str) -> String {
    let data = server
        .ok(
            Some(customer),
            "mutation($m: String!, $g: ID) { startChat(input: {message: $m, groupId: $g}) { id status } }",
            json!({"m": message, "g": group}),
        )
        .await;
    assert_eq!(data["startChat"]["status"], "ACTIVE", "{data}");
    data["startChat"]["id"].as_str().unwrap().to_owned()
}

async fn a_list_of_chats_resolves_each_chats_assignee_customer_and_group(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let sales = server.create_group(&owner, "Sales").await;
    let billing = server.create_group(&owner, "Billing").await;
    let sales_agent =
        create_agent_in(&server, &owner, "sid@example.com", "AGENT", &sales, None).await;
    let billing_agent = create_agent_in(
        &server,
        &owner,
        "bea@example.com",
        "AGENT",
        &billing,
        Some(20),
    )
    .await;
    // Logging in makes them reachable.
    server.agent_token("sid@example.com").await;
    server.agent_token("bea@example.com").await;
    let key = widget_key(&server, &owner).await;

    // chat id → (customer name, group, assignee)
    let mut expected = std::collections::HashMap::new();
    for n in 0..6 {
        let visitor_id = format!("v{n}");
        let customer = visitor(&server, &key, &visitor_id).await;
        let (group, agent) = if n % 2 == 0 {
            (&sales, &sales_agent)
        } else {
            (&billing, &billing_agent)
        };
        let chat = start_chat_in(&server, &customer, &format!("question {n}"), group).await;
        expected.insert(
            chat,
            (
                format!("Visitor {visitor_id}"),
                group.clone(),
                agent.clone(),
            ),
        );
    }

    let data = server
        .ok(
            Some(&owner),
            "{ teamChats { id assigneeName assignee { id chatLimit groups { id } }
                customer { name pageHistory { url } } group { id name }
                lastMessage { text } } }",
            json!({}),
        )
        .await;
    let chats = data["teamChats"].as_array().unwrap();
    assert_eq!(chats.len(), 6, "{data}");
    for chat in chats {
        let (customer, group, agent) = &expected[chat["id"].as_str().unwrap()];
        assert_eq!(&chat["customer"]["name"], customer, "{chat}");
        assert_eq!(
            chat["customer"]["pageHistory"],
            json!([{"url": "https://shop.test/pricing"}]),
            "{chat}"
        );
        assert_eq!(&chat["group"]["id"], group, "{chat}");
        let group_name = if group == &sales { "Sales" } else { "Billing" };
        assert_eq!(chat["group"]["name"], group_name, "{chat}");
        assert_eq!(&chat["assignee"]["id"], agent, "{chat}");
        assert_eq!(chat["assignee"]["groups"], json!([{"id": group}]), "{chat}");
        // Bea has a limit of her own; Sid follows the organization's default (3).
        let limit = if agent == &billing_agent { 20 } else { 3 };
        assert_eq!(chat["assignee"]["chatLimit"], limit, "{chat}");
        let email = if agent == &billing_agent {
            "bea"
        } else {
            "sid"
        };
        assert_eq!(
            chat["assigneeName"],
            format!("Agent {email}@example.com"),
            "{chat}"
        );
        assert!(
            chat["lastMessage"]["text"]
                .as_str()
                .unwrap()
                .starts_with("question "),
            "{chat}"
        );
    }
}

/// Everything of a chat an event can reach: its row, transcript, customer and assignee.
const CHAT_FIELDS_OF_EVENTS: &str = "subscription($since: String) { agentEvents(since: $since) {
    __typename cursor
    ... on MessageAdded { chat { id status events { items { text } } lastMessage { text }
        customer { name pageHistory { url } } assignee { id } } }
} }";

/// The messages of a subscription until it has been quiet for a while.
async fn replayed(server: &TestServer, token: &str) -> Vec<Value> {
    let mut ws = server.ws_ready(token).await;
    ws.send(json!({"id": "events", "type": "subscribe", "payload": {
        "query": CHAT_FIELDS_OF_EVENTS, "variables": {"since": "0"}}}))
        .await;
    ws.quiet_for(std::time::Duration::from_millis(1500)).await
}

async fn a_supervisor_moved_out_of_a_group_reads_none_of_its_chats_even_through_old_events(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let sales = server.create_group(&owner, "Sales").await;
    let billing = server.create_group(&owner, "Billing").await;
    create_agent_in(&server, &owner, "ann@example.com", "AGENT", &sales, None).await;
    let sam_id = create_agent_in(
        &server,
        &owner,
        "sam@example.com",
        "SUPERVISOR",
        &sales,
        None,
    )
    .await;
    server.agent_token("ann@example.com").await;
    let sam = server.agent_token("sam@example.com").await;
    not_accepting(&server, &sam).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "secretive").await;
    let secret = "my card number is 4111";
    let chat = start_chat_in(&server, &customer, secret, &sales).await;

    // As the supervisor of Sales, Sam sees the chat, and his feed names it.
    let query = "query($id: ID!) { chat(id: $id) { events { items { text } } } }";
    let seen = server.ok(Some(&sam), query, json!({"id": chat})).await;
    assert_eq!(seen["chat"]["events"]["items"][0]["text"], secret);
    let before = replayed(&server, &sam).await;
    let leaked = |messages: &[Value]| {
        messages
            .iter()
            .any(|m| m["payload"]["data"].to_string().contains(secret))
    };
    assert!(
        leaked(&before),
        "the supervisor's replayed event shows the chat: {before:?}"
    );

    // Moved to Billing, he may no longer see it: not by id, not in lists, not via his events.
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!, $g: [ID!]) { updateAgent(input: {id: $id, groupIds: $g}) { id } }",
            json!({"id": sam_id, "g": [billing]}),
        )
        .await;
    assert_eq!(
        server
            .error_code(Some(&sam), query, json!({"id": chat}))
            .await,
        "NOT_FOUND"
    );
    let lists = server
        .ok(
            Some(&sam),
            "{ teamChats { id } queue { chat { id } } myChats { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        lists,
        json!({"teamChats": [], "queue": [], "myChats": []}),
        "{lists}"
    );
    let after = replayed(&server, &sam).await;
    assert!(!leaked(&after), "nothing of the chat: {after:?}");
    let refused = after.iter().any(|m| {
        m["payload"]["errors"].as_array().is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e["extensions"]["code"] == "NOT_FOUND")
        })
    });
    assert!(
        refused,
        "the old event is replayed and its chat refused: {after:?}"
    );
}

async fn send(server: &TestServer, token: &str, chat: &str, text: &str) {
    server
        .ok(
            Some(token),
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
            json!({"c": chat, "t": text}),
        )
        .await;
}

async fn unread(server: &TestServer, token: &str, chat: &str) -> Value {
    server
        .ok(
            Some(token),
            "query($id: ID!) { chat(id: $id) { unreadCount } }",
            json!({"id": chat}),
        )
        .await["chat"]["unreadCount"]
        .clone()
}

async fn each_agent_has_their_own_read_marker_and_only_the_customers_messages_count(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    not_accepting(&server, &owner).await;
    let sales = server.create_group(&owner, "Sales").await;
    let billing = server.create_group(&owner, "Billing").await;
    create_agent_in(&server, &owner, "ann@example.com", "AGENT", &sales, None).await;
    create_agent_in(
        &server,
        &owner,
        "sam@example.com",
        "SUPERVISOR",
        &sales,
        None,
    )
    .await;
    create_agent_in(&server, &owner, "bob@example.com", "AGENT", &billing, None).await;
    let sam = server.agent_token("sam@example.com").await;
    not_accepting(&server, &sam).await;
    let bob = server.agent_token("bob@example.com").await;
    not_accepting(&server, &bob).await;
    let ann = server.agent_token("ann@example.com").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "reader").await;
    let chat = start_chat_in(&server, &customer, "Hello?", &sales).await;
    send(&server, &customer, &chat, "Anyone there?").await;

    // Ann has the chat: both of the customer's messages are unread; her reply and the system
    // entries are not counted.
    assert_eq!(unread(&server, &ann, &chat).await, 2);
    send(&server, &ann, &chat, "Hi, I am here").await;
    assert_eq!(unread(&server, &ann, &chat).await, 2);
    let list = server
        .ok(Some(&ann), "{ myChats { id unreadCount } }", json!({}))
        .await;
    assert_eq!(
        list["myChats"],
        json!([{"id": chat, "unreadCount": 2}]),
        "{list}"
    );

    // Reading it clears her count, on every device: it is kept on the server.
    let read = server
        .ok(
            Some(&ann),
            "mutation($id: ID!) { markChatRead(chatId: $id) { id unreadCount } }",
            json!({"id": chat}),
        )
        .await;
    assert_eq!(
        read["markChatRead"],
        json!({"id": chat, "unreadCount": 0}),
        "{read}"
    );
    send(&server, &customer, &chat, "My order is late").await;
    assert_eq!(unread(&server, &ann, &chat).await, 1);

    // Sam, supervising Sales, has his own marker; the customer has nothing unread here.
    assert_eq!(unread(&server, &sam, &chat).await, 3);
    assert_eq!(unread(&server, &customer, &chat).await, 0);

    // Reading is for agents who may see the chat.
    let mark = "mutation($id: ID!) { markChatRead(chatId: $id) { id } }";
    assert_eq!(
        server
            .error_code(Some(&bob), mark, json!({"id": chat}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(Some(&ann), mark, json!({"id": "no-such-chat"}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(Some(&customer), mark, json!({"id": chat}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server.error_code(None, mark, json!({"id": chat})).await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        unread(&server, &ann, &chat).await,
        1,
        "refused reads change nothing"
    );
}

crate::on_both_backends!(
    each_agent_has_their_own_read_marker_and_only_the_customers_messages_count,
    a_list_of_chats_resolves_each_chats_assignee_customer_and_group,
    a_supervisor_moved_out_of_a_group_reads_none_of_its_chats_even_through_old_events,
);
