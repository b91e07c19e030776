//! The agent workflow of the seed, end to end over real WebSockets.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, agent_events, chat_events, start_chat, visitor, widget_key,
};

on_both_backends!(the_seed_scenario);

/// An agent logs in and accepts chats; a customer starts a chat from a page; the agent gets
/// it, sees the page and the sneak peek, replies, transfers to a second agent with a note, who
/// sees the transcript while the customer sees a system message; the chat is closed and rated.
async fn the_seed_scenario(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let bob_id = server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    // The owner stays out of routing.
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;

    let ada_login = server.login("ada@example.com", "agent-password-1").await;
    assert_eq!(ada_login["agent"]["routingStatus"], "ACCEPTING_CHATS");
    let ada = ada_login["accessToken"].as_str().unwrap().to_owned();
    let mut ada_events = agent_events(&server, &ada, None).await;

    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;
    server
        .ok(Some(&customer), "mutation { updateVisitorPage(input: {url: \"https://shop.test/checkout\", title: \"Checkout\"}) { id } }", json!({}))
        .await;
    let (chat_id, status) = start_chat(&server, &customer, "Hi, can I pay by invoice?").await;
    assert_eq!(status, "ACTIVE");

    let assigned = ada_events.next_event("ChatAssigned").await;
    assert_eq!(assigned["chat"]["id"], chat_id);
    let chat = server
        .ok(
            Some(&ada),
            "query($id: ID!) { chat(id: $id) { status assignee { id } customer { name email visits currentPage { url title } pageHistory { url } }
               events { items { text author } } } }",
            json!({"id": chat_id}),
        )
        .await["chat"]
        .clone();
    assert_eq!(chat["status"], "ACTIVE");
    assert_eq!(chat["assignee"]["id"], ada_id);
    assert_eq!(
        chat["customer"]["currentPage"],
        json!({"url": "https://shop.test/checkout", "title": "Checkout"})
    );
    assert_eq!(
        chat["customer"]["pageHistory"][1]["url"],
        "https://shop.test/pricing"
    );
    assert_eq!(chat["customer"]["email"], "v1@customer.test");
    assert_eq!(
        chat["events"]["items"][0],
        json!({"text": "Hi, can I pay by invoice?", "author": "CUSTOMER"})
    );

    // The customer's stream, then the sneak peek while they type.
    let mut customer_events = chat_events(&server, &customer, &chat_id, None).await;
    let first = customer_events.next_event("MessageAdded").await;
    assert_eq!(first["message"]["text"], "Hi, can I pay by invoice?");
    server
        .ok(Some(&customer), "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"Also, do you ship to\"}) }", json!({"c": chat_id}))
        .await;
    let typing = ada_events.next_event("TypingChanged").await;
    assert_eq!(typing["draft"], "Also, do you ship to");
    assert_eq!(typing["author"], "CUSTOMER");
    let customer_id = server
        .ok(
            Some(&ada),
            "query($id: ID!) { chat(id: $id) { customer { id } } }",
            json!({"id": chat_id}),
        )
        .await["chat"]["customer"]["id"]
        .clone();
    assert_eq!(typing["authorId"], customer_id);

    // The agent types (the customer sees that, without any draft) and replies.
    server
        .ok(Some(&ada), "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"secret\"}) }", json!({"c": chat_id}))
        .await;
    let agent_typing = customer_events.next_event("TypingChanged").await;
    assert_eq!(agent_typing["author"], "AGENT");
    assert_eq!(
        agent_typing["authorId"], ada_id,
        "who is typing, as messages name authors"
    );
    assert_eq!(
        agent_typing["draft"],
        json!(null),
        "an agent's draft never reaches the customer"
    );
    server
        .ok(Some(&ada), "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"Yes, invoices are fine.\", clientId: \"m1\"}) { id } }", json!({"c": chat_id}))
        .await;
    let reply = customer_events.next_event("MessageAdded").await;
    assert_eq!(reply["message"]["text"], "Yes, invoices are fine.");
    assert_eq!(reply["message"]["author"], "AGENT");

    // Transfer to Bob with a note.
    let bob = server.agent_token("bob@example.com").await;
    let mut bob_events = agent_events(&server, &bob, None).await;
    let candidates = server
        .ok(Some(&ada), "query($c: ID!) { agentsForTransfer(chatId: $c) { agent { id } activeChats routable } }", json!({"c": chat_id}))
        .await;
    assert!(
        candidates["agentsForTransfer"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["agent"]["id"] == bob_id)
    );
    let transferred = server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $to: ID!) { transferChat(input: {chatId: $c, toAgentId: $to, note: \"Wants invoice payment; VIP\"}) { status assignee { id } } }",
            json!({"c": chat_id, "to": bob_id}),
        )
        .await;
    assert_eq!(transferred["transferChat"]["assignee"]["id"], bob_id);
    let to_bob = bob_events.next_event("ChatTransferred").await;
    assert_eq!(to_bob["chat"]["id"], chat_id);
    assert_eq!(to_bob["note"], "Wants invoice payment; VIP");
    assert_eq!(to_bob["fromAgent"]["id"], ada_id);
    let away = ada_events.next_event("ChatTransferred").await;
    assert_eq!(away["toAgent"]["id"], bob_id);

    let transcript = server
        .ok(Some(&bob), "query($id: ID!) { chat(id: $id) { events(first: 100) { items { text author kind } } } }", json!({"id": chat_id}))
        .await;
    let items = transcript["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .clone();
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    assert!(texts.contains(&"Hi, can I pay by invoice?"), "{texts:?}");
    assert!(texts.contains(&"Yes, invoices are fine."));
    assert!(
        texts.contains(&"Wants invoice payment; VIP"),
        "agents see the note"
    );

    let system = customer_events.next_event("MessageAdded").await;
    let mut system = system;
    while system["message"]["kind"] != "CHAT_TRANSFERRED" {
        assert_ne!(
            system["message"]["kind"], "TRANSFER_NOTE",
            "customers never see the note"
        );
        system = customer_events.next_event("MessageAdded").await;
    }
    assert_eq!(system["message"]["author"], "SYSTEM");
    assert!(
        system["message"]["text"]
            .as_str()
            .unwrap()
            .contains("Test Agent")
    );

    // Bob closes; the customer sees it and rates.
    server
        .ok(
            Some(&bob),
            "mutation($c: ID!) { closeChat(chatId: $c) { status } }",
            json!({"c": chat_id}),
        )
        .await;
    let closed = customer_events.next_event("ChatClosed").await;
    assert!(
        closed["message"]["text"]
            .as_str()
            .unwrap()
            .contains("closed the chat")
    );
    let rated = server
        .ok(Some(&customer), "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD, comment: \"Quick!\"}) { rating ratingComment status } }", json!({"c": chat_id}))
        .await;
    assert_eq!(
        rated["rateChat"],
        json!({"rating": "GOOD", "ratingComment": "Quick!", "status": "CLOSED"})
    );
}
