//! Tags: admins and owners manage the organization's tags (names unique whatever the case,
//! 1 to 40 characters, hex colours); agents who may see a chat tag it during or after it, and
//! the apps watching the chat hear of it, the customer never; other organizations' tags and
//! chats are NOT_FOUND; deleting a tag takes it off every chat.

use serde_json::{Value, json};

use crate::notes::agent;
use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, WsClient, agent_events, chat_events, start_chat, visitor, widget_key,
};

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const CREATE: &str =
    "mutation($input: TagInput!) { createTag(input: $input) { id name color createdAt } }";
const UPDATE: &str =
    "mutation($id: ID!, $input: TagInput!) { updateTag(id: $id, input: $input) { id name color } }";
const DELETE: &str = "mutation($id: ID!) { deleteTag(id: $id) }";
const ADD: &str =
    "mutation($c: ID!, $t: ID!) { addChatTag(chatId: $c, tagId: $t) { id tags { name } } }";
const REMOVE: &str =
    "mutation($c: ID!, $t: ID!) { removeChatTag(chatId: $c, tagId: $t) { id tags { name } } }";
const CHAT_TAGS: &str = "query($c: ID!) { chat(id: $c) { tags { id name color } } }";

async fn create(server: &TestServer, token: &str, name: &str, color: Option<&str>) -> Value {
    server
        .ok(
            Some(token),
            CREATE,
            json!({"input": {"name": name, "color": color}}),
        )
        .await["createTag"]
        .clone()
}

async fn create_error(server: &TestServer, token: &str, name: &str, color: Option<&str>) -> String {
    server
        .error_code(
            Some(token),
            CREATE,
            json!({"input": {"name": name, "color": color}}),
        )
        .await
}

async fn names(server: &TestServer, token: &str) -> Vec<String> {
    server.ok(Some(token), "{ tags { name } }", json!({})).await["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn tag_names(chat: &Value) -> Vec<&str> {
    chat["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect()
}

async fn admins_manage_the_organizations_tags(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    let (_, ada) = agent(&server, &owner, "Ada", "AGENT", &[]).await;
    let (_, sam) = agent(&server, &owner, "Sam", "SUPERVISOR", &[]).await;

    let vip = create(&server, &owner, "  VIP ", Some("#D0A01A")).await;
    assert_eq!(vip["name"], "VIP", "trimmed");
    assert_eq!(vip["color"], "#d0a01a", "lower case");
    assert!(vip["createdAt"].is_string());
    let shipping = create(&server, &owner, "shipping", None).await;
    assert_eq!(shipping["color"], Value::Null);
    create(&server, &owner, "Billing", Some("")).await;
    assert_eq!(
        names(&server, &ada).await,
        ["Billing", "shipping", "VIP"],
        "every agent lists them, by name whatever the case"
    );

    // Bad names and colours; the same name in another case.
    assert_eq!(create_error(&server, &owner, "vip", None).await, "CONFLICT");
    assert_eq!(
        create_error(&server, &owner, "   ", None).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        create_error(&server, &owner, &"x".repeat(41), None).await,
        "BAD_USER_INPUT"
    );
    create(&server, &owner, &"x".repeat(40), None).await;
    for color in [
        "red",
        "#12345",
        "#ggg",
        "1a5fd0",
        "#1a5fd0;background:url(x)",
    ] {
        assert_eq!(
            create_error(&server, &owner, "Colourful", Some(color)).await,
            "BAD_USER_INPUT",
            "{color}"
        );
    }
    // Plain agents and supervisors do not manage them.
    for token in [&ada, &sam] {
        assert_eq!(
            create_error(&server, token, "Mine", None).await,
            "FORBIDDEN"
        );
        let code = server
            .error_code(
                Some(token),
                UPDATE,
                json!({"id": vip["id"], "input": {"name": "Mine"}}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
        let code = server
            .error_code(Some(token), DELETE, json!({"id": vip["id"]}))
            .await;
        assert_eq!(code, "FORBIDDEN");
    }

    // Renaming: to its own name in another case is fine, to another tag's is not.
    let renamed = server
        .ok(
            Some(&owner),
            UPDATE,
            json!({"id": vip["id"], "input": {"name": "Vip", "color": "#abc"}}),
        )
        .await["updateTag"]
        .clone();
    assert_eq!(
        renamed,
        json!({"id": vip["id"], "name": "Vip", "color": "#abc"})
    );
    let code = server
        .error_code(
            Some(&owner),
            UPDATE,
            json!({"id": vip["id"], "input": {"name": "SHIPPING"}}),
        )
        .await;
    assert_eq!(code, "CONFLICT");

    // Another organization neither sees nor touches them, and may use the same names.
    let rival = server.rival_organization().await.0;
    assert!(names(&server, &rival).await.is_empty());
    create(&server, &rival, "VIP", None).await;
    let code = server
        .error_code(
            Some(&rival),
            UPDATE,
            json!({"id": vip["id"], "input": {"name": "Stolen"}}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = server
        .error_code(Some(&rival), DELETE, json!({"id": vip["id"]}))
        .await;
    assert_eq!(code, "NOT_FOUND");

    assert_eq!(
        server
            .ok(Some(&owner), DELETE, json!({"id": shipping["id"]}))
            .await["deleteTag"],
        true
    );
    let code = server
        .error_code(Some(&owner), DELETE, json!({"id": shipping["id"]}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(
        names(&server, &ada).await,
        ["Billing", "Vip", &"x".repeat(40)]
    );
}

/// The next transcript entry on a chat stream, skipping typing and queue events.
async fn next_entry(ws: &mut WsClient) -> Value {
    loop {
        let event = ws.any_event().await;
        if event["__typename"] == "MessageAdded" || event["__typename"] == "ChatClosed" {
            return event["message"].clone();
        }
    }
}

async fn agents_tag_the_chats_they_may_see_and_watchers_hear_of_it(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (_, ada) = agent(&server, &owner, "Ada", "AGENT", &[]).await;
    let (bob_id, bob) = agent(&server, &owner, "Bob", "AGENT", &[]).await;
    let (_, sam) = agent(&server, &owner, "Sam", "SUPERVISOR", &[]).await;
    let vip = create(&server, &owner, "VIP", Some("#d0a01a")).await;
    let refund = create(&server, &owner, "Refund", None).await;
    let mut ada_events = agent_events(&server, &ada, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "tagged").await;
    let (chat, _) = start_chat(&server, &customer, "I want my money back").await;
    assert_eq!(
        ada_events.next_event("ChatAssigned").await["chat"]["id"],
        chat.as_str()
    );
    let mut sam_watches = chat_events(&server, &sam, &chat, None).await;
    let mut customer_watches = chat_events(&server, &customer, &chat, None).await;
    assert_eq!(
        next_entry(&mut sam_watches).await["text"],
        "I want my money back"
    );

    // Ada tags her chat; Sam, watching it, hears of it (agents only).
    let tagged = server
        .ok(Some(&ada), ADD, json!({"c": chat, "t": refund["id"]}))
        .await["addChatTag"]
        .clone();
    assert_eq!(tag_names(&tagged), ["Refund"]);
    let mut heard = next_entry(&mut sam_watches).await;
    while heard["kind"] != "TAGS_CHANGED" {
        heard = next_entry(&mut sam_watches).await;
    }
    assert_eq!(heard["visibility"], "AGENTS");
    assert_eq!(heard["text"], "Ada added the tag \u{201c}Refund\u{201d}");
    // The supervisor of its group tags it too; the same tag again changes nothing.
    let both = server
        .ok(Some(&sam), ADD, json!({"c": chat, "t": vip["id"]}))
        .await["addChatTag"]
        .clone();
    assert_eq!(tag_names(&both), ["Refund", "VIP"]);
    server
        .ok(Some(&ada), ADD, json!({"c": chat, "t": vip["id"]}))
        .await;
    let read = server.ok(Some(&ada), CHAT_TAGS, json!({"c": chat})).await;
    assert_eq!(
        read["chat"]["tags"][1],
        json!({"id": vip["id"], "name": "VIP", "color": "#d0a01a"})
    );
    let untagged = server
        .ok(Some(&ada), REMOVE, json!({"c": chat, "t": vip["id"]}))
        .await["removeChatTag"]
        .clone();
    assert_eq!(tag_names(&untagged), ["Refund"]);
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let entry = next_entry(&mut sam_watches).await;
        if entry["kind"] == "TAGS_CHANGED" {
            texts.push(entry["text"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        texts,
        [
            "Sam added the tag \u{201c}VIP\u{201d}",
            "Ada removed the tag \u{201c}VIP\u{201d}"
        ],
        "adding a tag that is there says nothing"
    );

    // Who may not: an agent with nothing to do with the chat; the customer.
    let code = server
        .error_code(Some(&bob), ADD, json!({"c": chat, "t": vip["id"]}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = server
        .error_code(Some(&customer), ADD, json!({"c": chat, "t": vip["id"]}))
        .await;
    assert_eq!(code, "FORBIDDEN", "customers do not tag");
    let code = server
        .error_code(Some(&customer), CHAT_TAGS, json!({"c": chat}))
        .await;
    assert_eq!(code, "FORBIDDEN", "customers do not read tags");
    // Unknown tags, other organizations' tags and chats.
    let rival = server.rival_organization().await.0;
    let rival_tag = create(&server, &rival, "Rival", None).await;
    for (token, tag) in [
        (&ada, json!("no-such-tag")),
        (&ada, rival_tag["id"].clone()),
    ] {
        let code = server
            .error_code(Some(token), ADD, json!({"c": chat, "t": tag}))
            .await;
        assert_eq!(code, "NOT_FOUND");
    }
    let code = server
        .error_code(Some(&rival), ADD, json!({"c": chat, "t": rival_tag["id"]}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = server
        .error_code(Some(&rival), CHAT_TAGS, json!({"c": chat}))
        .await;
    assert_eq!(code, "NOT_FOUND");

    // Handed on to Bob, who closes it: Ada, who had it, still tags it after the chat.
    let _bob_events = agent_events(&server, &bob, None).await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $b: ID!) { transferChat(input: {chatId: $c, toAgentId: $b}) { id } }",
            json!({"c": chat, "b": bob_id}),
        )
        .await;
    server
        .ok(
            Some(&bob),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;
    let after = server
        .ok(Some(&ada), ADD, json!({"c": chat, "t": vip["id"]}))
        .await["addChatTag"]
        .clone();
    assert_eq!(tag_names(&after), ["Refund", "VIP"]);

    // The customer heard none of it.
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD}) { id } }",
            json!({"c": chat}),
        )
        .await;
    let mut seen = Vec::new();
    loop {
        let entry = next_entry(&mut customer_watches).await;
        let kind = entry["kind"].as_str().unwrap_or("CHAT_CLOSED").to_owned();
        let rated = kind == "CHAT_RATED";
        seen.push(kind);
        if rated {
            break;
        }
    }
    assert!(seen.iter().any(|k| k == "CHAT_CLOSED"));
    assert!(
        !seen.iter().any(|k| k == "TAGS_CHANGED"),
        "the customer saw {seen:?}"
    );
    let customer_read = server
        .ok(
            Some(&customer),
            "query($c: ID!) { chat(id: $c) { latestEvents { items { kind } } } }",
            json!({"c": chat}),
        )
        .await;
    assert!(!customer_read.to_string().contains("TAGS_CHANGED"));

    // Deleting a tag takes it off the chat.
    server
        .ok(Some(&owner), DELETE, json!({"id": vip["id"]}))
        .await;
    let read = server.ok(Some(&ada), CHAT_TAGS, json!({"c": chat})).await;
    assert_eq!(tag_names(&read["chat"]), ["Refund"]);
}

on_both_backends!(
    admins_manage_the_organizations_tags,
    agents_tag_the_chats_they_may_see_and_watchers_hear_of_it,
);
