//! Notes and whispers: agents write messages only agents see; a supervisor who may watch a
//! chat whispers in it without joining. A note never reaches the customer by any path (their
//! live stream, a replay of it, every transcript read), answers nobody (the reply and
//! attention clocks stay), and counts as unread for the other agents. Customers cannot send
//! one, and agents who may not write in a chat cannot either.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, WsClient, agent_events, chat_events, start_chat, visitor, widget_key,
};

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const SEND: &str = "mutation($c: ID!, $t: String!, $v: Visibility) {
    sendMessage(input: {chatId: $c, text: $t, visibility: $v}) { id text visibility author } }";
/// Every transcript read a customer (or an agent) makes of a chat.
const CHAT_READS: &str = "query($c: ID!) { chat(id: $c) {
    status attention firstResponseAt unreadCount
    lastMessage { text visibility }
    events(first: 200) { items { text visibility kind } }
    latestEvents(last: 200) { items { text visibility kind } } } }";

/// An agent with `role` in `groups`; their id and token.
pub async fn agent(
    server: &TestServer,
    owner: &str,
    name: &str,
    role: &str,
    groups: &[&str],
) -> (String, String) {
    let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
    let data = server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": name, "password": "agent-password-1",
                   "role": role, "groupIds": groups}}),
        )
        .await;
    let id = data["createAgent"]["id"].as_str().unwrap().to_owned();
    (id, server.agent_token(&email).await)
}

async fn settings(server: &TestServer, owner: &str, input: Value) -> Value {
    server
        .ok(
            Some(owner),
            "mutation($input: UpdateOrganizationSettingsInput!) {
                updateOrganizationSettings(input: $input) { settings { agentsSeeGroupChats } } }",
            json!({"input": input}),
        )
        .await["updateOrganizationSettings"]["settings"]
        .clone()
}

async fn send(server: &TestServer, token: &str, chat: &str, text: &str, note: bool) -> Value {
    let visibility = if note { "AGENTS" } else { "PUBLIC" };
    server
        .ok(
            Some(token),
            SEND,
            json!({"c": chat, "t": text, "v": visibility}),
        )
        .await["sendMessage"]
        .clone()
}

async fn send_error(server: &TestServer, token: &str, chat: &str, note: bool) -> String {
    let visibility = if note { "AGENTS" } else { "PUBLIC" };
    server
        .error_code(
            Some(token),
            SEND,
            json!({"c": chat, "t": "psst", "v": visibility}),
        )
        .await
}

/// The chat as `token` reads it.
async fn read_chat(server: &TestServer, token: &str, chat: &str) -> Value {
    server.ok(Some(token), CHAT_READS, json!({"c": chat})).await["chat"].clone()
}

/// Every transcript text of a `read_chat` answer, with its visibility.
fn transcript(chat: &Value) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    for list in ["events", "latestEvents"] {
        for item in chat[list]["items"].as_array().unwrap() {
            entries.push((
                item["text"].as_str().unwrap().to_owned(),
                item["visibility"].as_str().unwrap().to_owned(),
            ));
        }
    }
    entries
}

/// The texts of a chat stream's transcript events up to and including `last`.
async fn stream_until(ws: &mut WsClient, last: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    loop {
        let event = ws.any_event().await;
        if event["__typename"] != "MessageAdded" && event["__typename"] != "ChatClosed" {
            continue;
        }
        let message = &event["message"];
        let text = message["text"].as_str().unwrap().to_owned();
        let visibility = message["visibility"]
            .as_str()
            .unwrap_or("PUBLIC")
            .to_owned();
        seen.push((text.clone(), visibility));
        if text == last {
            return seen;
        }
    }
}

/// Asserts that no note (by its text or its visibility) is among `entries`.
fn no_note(entries: &[(String, String)], path: &str) {
    assert!(!entries.is_empty(), "{path}: nothing read");
    for (text, visibility) in entries {
        assert_eq!(visibility, "PUBLIC", "{path} showed the customer {text:?}");
        assert!(
            !text.contains("NOTE") && !text.contains("WHISPER"),
            "{path} showed the customer {text:?}"
        );
    }
}

async fn a_note_never_reaches_the_customer_and_answers_nobody(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {waitingLongSeconds: 1,
                customerIdleSeconds: 3600, autoTransferSeconds: 3600}) { id } }",
            json!({}),
        )
        .await;
    let (_ada_id, ada) = agent(&server, &owner, "Ada", "AGENT", &[]).await;
    let (_sam_id, sam) = agent(&server, &owner, "Sam", "SUPERVISOR", &[]).await;
    let (_bob_id, bob) = agent(&server, &owner, "Bob", "AGENT", &[]).await;
    let mut ada_events = agent_events(&server, &ada, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;
    let (chat, status) = start_chat(&server, &customer, "Where is my parcel?").await;
    assert_eq!(status, "ACTIVE");
    assert_eq!(
        ada_events.next_event("ChatAssigned").await["chat"]["id"],
        chat.as_str()
    );
    let mut customer_live = chat_events(&server, &customer, &chat, None).await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!) { markChatRead(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;
    // The customer waits: red, until someone answers.
    assert_eq!(
        ada_events.next_event("AttentionChanged").await["attention"],
        "WAITING_LONG"
    );

    // Who may not write one.
    assert_eq!(
        send_error(&server, &customer, &chat, true).await,
        "FORBIDDEN"
    );
    assert_eq!(send_error(&server, &bob, &chat, true).await, "NOT_FOUND");
    assert_eq!(
        send_error(&server, &sam, &chat, false).await,
        "FORBIDDEN",
        "a supervisor answers the customer only after joining"
    );

    let note = send(&server, &ada, &chat, "NOTE: a VIP, be quick", true).await;
    assert_eq!(note["visibility"], "AGENTS");
    assert_eq!(note["author"], "AGENT");
    // The supervisor whispers without joining.
    let whisper = send(&server, &sam, &chat, "WHISPER: offer the discount", true).await;
    assert_eq!(whisper["visibility"], "AGENTS");
    let participants = server
        .ok(
            Some(&sam),
            "query($c: ID!) { chat(id: $c) { latestEvents { items { kind } } } }",
            json!({"c": chat}),
        )
        .await;
    assert!(
        !participants.to_string().contains("SUPERVISOR_JOINED"),
        "whispering is not joining"
    );
    // Ada hears the whisper live.
    loop {
        let event = ada_events.next_event("MessageAdded").await;
        if event["message"]["text"] == "WHISPER: offer the discount" {
            break;
        }
    }

    // No answer yet: still red, no first response; the whisper is unread for Ada, her own
    // note is not.
    let seen_by_ada = read_chat(&server, &ada, &chat).await;
    assert_eq!(seen_by_ada["attention"], "WAITING_LONG");
    assert_eq!(seen_by_ada["firstResponseAt"], Value::Null);
    assert_eq!(seen_by_ada["unreadCount"], 1);
    assert_eq!(seen_by_ada["lastMessage"]["visibility"], "AGENTS");
    let agents_see = transcript(&seen_by_ada);
    for text in ["NOTE: a VIP, be quick", "WHISPER: offer the discount"] {
        assert!(
            agents_see.contains(&(text.to_owned(), "AGENTS".to_owned())),
            "agents see {text:?}"
        );
    }
    assert_eq!(
        read_chat(&server, &sam, &chat).await["unreadCount"],
        2,
        "for Sam: the customer's message and Ada's note, not his own whisper"
    );

    // Every read of the customer's shows no note.
    let seen_by_customer = read_chat(&server, &customer, &chat).await;
    no_note(&transcript(&seen_by_customer), "the customer's transcript");
    assert_eq!(
        seen_by_customer["lastMessage"]["text"],
        "Where is my parcel?"
    );
    assert_eq!(seen_by_customer["unreadCount"], 0);

    // A real answer: the clocks move.
    send(&server, &ada, &chat, "Your parcel ships today.", false).await;
    assert_eq!(
        ada_events.next_event("AttentionChanged").await["attention"],
        "NORMAL"
    );
    let answered = read_chat(&server, &ada, &chat).await;
    assert!(answered["firstResponseAt"].is_string());

    // The customer's live stream, and a replay of it from the start, carry the public
    // messages only.
    let live = stream_until(&mut customer_live, "Your parcel ships today.").await;
    no_note(&live, "the customer's live stream");
    assert!(live.iter().any(|(t, _)| t == "Where is my parcel?"));
    let mut replay = chat_events(&server, &customer, &chat, None).await;
    no_note(
        &stream_until(&mut replay, "Your parcel ships today.").await,
        "the customer's replayed stream",
    );
    let after = read_chat(&server, &customer, &chat).await;
    no_note(&transcript(&after), "the customer's transcript");
    assert_eq!(after["lastMessage"]["text"], "Your parcel ships today.");
    // Nor later: a note after the answer stays out of the live stream too.
    send(&server, &ada, &chat, "NOTE: done", true).await;
    send(&server, &ada, &chat, "Anything else?", false).await;
    no_note(
        &stream_until(&mut customer_live, "Anything else?").await,
        "the customer's live stream",
    );
}

/// A chat of the group `group` that Ada gets; its id and the customer's token.
async fn group_chat(
    server: &TestServer,
    owner: &str,
    ada_events: &mut WsClient,
    group: &str,
) -> (String, String) {
    let key = widget_key(server, owner).await;
    let customer = visitor(server, &key, "grouped").await;
    let data = server
        .ok(
            Some(&customer),
            "mutation($g: ID!) { startChat(input: {message: \"Hello team\", groupId: $g}) { id status } }",
            json!({"g": group}),
        )
        .await;
    assert_eq!(data["startChat"]["status"], "ACTIVE");
    let chat = data["startChat"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ada_events.next_event("ChatAssigned").await["chat"]["id"],
        chat.as_str()
    );
    (chat, customer)
}

async fn team_chat_ids(server: &TestServer, token: &str) -> Vec<String> {
    server
        .ok(Some(token), "{ teamChats { id } }", json!({}))
        .await["teamChats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The chats the agent's archive lists.
async fn archive_ids(server: &TestServer, token: &str) -> Vec<String> {
    server
        .ok(
            Some(token),
            "{ archive(first: 50) { items { chat { id } } } }",
            json!({}),
        )
        .await["archive"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["chat"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn teammates_read_their_groups_chats_only_when_the_organization_allows(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let sales = server.create_group(&owner, "Sales").await;
    let support = server.create_group(&owner, "Support").await;
    let (_, ada) = agent(&server, &owner, "Ada", "AGENT", &[&sales]).await;
    let (_, bob) = agent(&server, &owner, "Bob", "AGENT", &[&sales]).await;
    let (_, carl) = agent(&server, &owner, "Carl", "AGENT", &[&support]).await;
    let (_, sam) = agent(&server, &owner, "Sam", "SUPERVISOR", &[&sales]).await;
    let mut ada_events = agent_events(&server, &ada, None).await;
    let (chat, _customer) = group_chat(&server, &owner, &mut ada_events, &sales).await;
    let read = "query($c: ID!) { chat(id: $c) { id latestEvents { items { text } } } }";

    // Off (the default): Bob sees nothing of it.
    let current = server
        .ok(
            Some(&bob),
            "{ organization { settings { agentsSeeGroupChats } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        current["organization"]["settings"]["agentsSeeGroupChats"],
        false
    );
    assert_eq!(
        server
            .error_code(Some(&bob), "{ teamChats { id } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(Some(&bob), read, json!({"c": chat}))
            .await,
        "NOT_FOUND"
    );
    assert!(archive_ids(&server, &bob).await.is_empty());
    assert_eq!(team_chat_ids(&server, &sam).await, [chat.as_str()]);
    // Only admins change it.
    let toggle = "mutation($on: Boolean!) {
        updateOrganizationSettings(input: {agentsSeeGroupChats: $on}) { id } }";
    assert_eq!(
        server
            .error_code(Some(&bob), toggle, json!({"on": true}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        settings(&server, &owner, json!({"agentsSeeGroupChats": true})).await,
        json!({"agentsSeeGroupChats": true})
    );

    // On: Bob lists and reads the chat of his group, live too; Carl, of another group, not.
    assert_eq!(team_chat_ids(&server, &bob).await, [chat.as_str()]);
    let seen = server.ok(Some(&bob), read, json!({"c": chat})).await;
    assert_eq!(
        seen["chat"]["latestEvents"]["items"][0]["text"],
        "Hello team"
    );
    assert!(team_chat_ids(&server, &carl).await.is_empty());
    assert_eq!(archive_ids(&server, &bob).await, [chat.as_str()]);
    assert!(archive_ids(&server, &carl).await.is_empty());
    assert_eq!(
        server
            .error_code(Some(&carl), read, json!({"c": chat}))
            .await,
        "NOT_FOUND"
    );
    let mut bob_watches = chat_events(&server, &bob, &chat, None).await;
    assert!(
        stream_until(&mut bob_watches, "Hello team").await.len() == 1,
        "the replay starts at the customer's message"
    );
    send(&server, &ada, &chat, "NOTE: Bob, see how it's done", true).await;
    let live = stream_until(&mut bob_watches, "NOTE: Bob, see how it's done").await;
    assert_eq!(
        live.last().unwrap().1,
        "AGENTS",
        "a teammate sees notes as an agent"
    );

    // Read only: no message, note, close, transfer or tag.
    assert_eq!(send_error(&server, &bob, &chat, false).await, "FORBIDDEN");
    assert_eq!(send_error(&server, &bob, &chat, true).await, "FORBIDDEN");
    for (mutation, variables) in [
        (
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": chat}),
        ),
        (
            "mutation($c: ID!, $g: ID!) { transferChat(input: {chatId: $c, toGroupId: $g}) { id } }",
            json!({"c": chat, "g": support}),
        ),
        (
            "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true}) }",
            json!({"c": chat}),
        ),
    ] {
        assert_eq!(
            server.error_code(Some(&bob), mutation, variables).await,
            "FORBIDDEN",
            "{mutation}"
        );
    }
    // Supervisors keep whispering and joining.
    send(&server, &sam, &chat, "NOTE: from Sam", true).await;
    server
        .ok(
            Some(&sam),
            "mutation($c: ID!) { joinChat(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;

    // Off again: gone.
    settings(&server, &owner, json!({"agentsSeeGroupChats": false})).await;
    assert!(archive_ids(&server, &bob).await.is_empty());
    assert_eq!(
        server
            .error_code(Some(&bob), read, json!({"c": chat}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(Some(&bob), "{ teamChats { id } }", json!({}))
            .await,
        "FORBIDDEN"
    );
}

/// A whisper rings the assignee's phone when no app of theirs is open, as "Note from …", even
/// though the customer waits for nothing; the agent's own note does not.
async fn a_whisper_pushes_the_assignee_not_the_writer(backend: Backend) {
    use crate::push::{fake_fcm, push_server, register, wait_until};
    let (fake, url) = fake_fcm().await;
    let (server, owner, _dir) = push_server(backend, &url, |_| {}).await;
    let (_, ada) = agent(&server, &owner, "Ada", "AGENT", &[]).await;
    let (_, sam) = agent(&server, &owner, "Sam Super", "SUPERVISOR", &[]).await;
    register(&server, &ada, "ada-phone").await;
    register(&server, &sam, "sam-phone").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "whispered").await;
    // Ada answers from the app, then puts it away: nothing waits for her.
    let ws = server.ws_ready(&ada).await;
    let (chat, status) = start_chat(&server, &customer, "hello").await;
    assert_eq!(status, "ACTIVE");
    send(&server, &ada, &chat, "Hi!", false).await;
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let notes_to = |token: &str| {
        fake.sent_to(token)
            .into_iter()
            .filter(|m| m["message"]["data"]["type"] == "NEW_MESSAGE")
            .collect::<Vec<_>>()
    };

    send(&server, &ada, &chat, "NOTE: my own reminder", true).await;
    send(&server, &sam, &chat, "WHISPER: offer the discount", true).await;
    wait_until("the whisper reaches Ada's phone", || {
        !notes_to("ada-phone").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pushes = notes_to("ada-phone");
    assert_eq!(
        pushes.len(),
        1,
        "the whisper only, not her own note: {pushes:?}"
    );
    let notification = &pushes[0]["message"]["notification"];
    assert_eq!(notification["title"], "Note from Sam Super");
    assert_eq!(notification["body"], "WHISPER: offer the discount");
    assert!(notes_to("sam-phone").is_empty(), "the writer is not pushed");
}

on_both_backends!(
    a_note_never_reaches_the_customer_and_answers_nobody,
    teammates_read_their_groups_chats_only_when_the_organization_allows,
    a_whisper_pushes_the_assignee_not_the_writer,
);
