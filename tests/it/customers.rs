//! Customer profiles and bans: agents read a customer with their previous chats and edit
//! their fields (validated); supervisors ban a visitor (and optionally their address) for a
//! time or until lifted; a banned visitor cannot start chats or leave offline messages and
//! their own availability says so, nobody else's; expired and lifted bans stop applying.

use serde_json::json;

use crate::archive::{chat, org, visitor};
use crate::on_both_backends;
use crate::support::{Backend, error_code};

on_both_backends!(
    agents_read_and_edit_a_customer_profile,
    a_banned_visitor_cannot_chat_until_the_ban_ends,
);

const PROFILE: &str = "query($id: ID!) { customer(id: $id) {
    id name firstName email phone note customFields { key value } visits updatedAt
    customer { visitorId pageHistory { url } }
    chats(first: 10) { items { chat { id status } } hasNextPage }
    ban { reason active expiresAt ipAddress createdBy { id } } } }";
const UPDATE: &str = "mutation($id: ID!, $input: UpdateCustomerInput!) {
    updateCustomer(id: $id, input: $input) { name firstName email phone note customFields { key value } } }";
const BAN: &str = "mutation($id: ID!, $input: BanCustomerInput!) {
    banCustomer(customerId: $id, input: $input) { id reason active expiresAt ipAddress } }";
const UNBAN: &str = "mutation($id: ID!) { unbanCustomer(customerId: $id) }";
const START: &str = "mutation { startChat(input: {message: \"hello again\"}) { id } }";
const OFFLINE: &str = "mutation { leaveOfflineMessage(input: {name: \"Al\", email: \"al@example.com\", text: \"call me\"}) { id } }";
const AVAILABILITY: &str =
    "query($key: String!) { availability(widgetKey: $key) { online banned } }";

async fn agents_read_and_edit_a_customer_profile(backend: Backend) {
    let org = org(backend).await;
    let server = &org.server;
    let (alice, alice_id) = visitor(&org, "va", "Alice Martin", "alice@example.com").await;
    let first = chat(&org, &alice, "first visit", "hi", true).await;
    let second = chat(&org, &alice, "second visit", "hi again", true).await;

    let profile = server
        .ok(Some(&org.owner), PROFILE, json!({"id": alice_id}))
        .await["customer"]
        .clone();
    assert_eq!(profile["name"], "Alice Martin");
    assert_eq!(profile["firstName"], "Alice");
    assert_eq!(profile["customFields"], json!([]));
    assert_eq!(profile["customer"]["visitorId"], "va");
    assert_eq!(profile["ban"], json!(null));
    let chats: Vec<&str> = profile["chats"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["chat"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(chats, vec![second.as_str(), first.as_str()]);

    // A new name sets the first name; a first name alone changes only it.
    let updated = server
        .ok(
            Some(&org.owner),
            UPDATE,
            json!({"id": alice_id, "input": {"name": " Alicia Martín ", "phone": "+49 (30) 123-456",
                   "note": "Prefers email", "customFields": [{"key": "Plan", "value": "Pro"}]}}),
        )
        .await["updateCustomer"]
        .clone();
    assert_eq!(
        updated,
        json!({"name": "Alicia Martín", "firstName": "Alicia", "email": "alice@example.com",
               "phone": "+49 (30) 123-456", "note": "Prefers email",
               "customFields": [{"key": "Plan", "value": "Pro"}]})
    );
    let updated = server
        .ok(
            Some(&org.owner),
            UPDATE,
            json!({"id": alice_id, "input": {"firstName": "Ali", "email": "ALI@Example.com", "note": ""}}),
        )
        .await["updateCustomer"]
        .clone();
    assert_eq!(updated["firstName"], "Ali");
    assert_eq!(updated["name"], "Alicia Martín");
    assert_eq!(updated["email"], "ali@example.com");
    assert_eq!(updated["note"], json!(null));
    assert_eq!(updated["phone"], "+49 (30) 123-456");
    // Read back, as stored.
    let profile = server
        .ok(Some(&org.owner), PROFILE, json!({"id": alice_id}))
        .await["customer"]
        .clone();
    assert_eq!(profile["firstName"], "Ali");
    assert_eq!(profile["customFields"][0]["value"], "Pro");
    assert!(profile["updatedAt"].is_string());
    // The chat's customer and canned responses use the first name the agent set.
    let seen = server
        .ok(
            Some(&org.owner),
            "query($id: ID!) { chat(id: $id) { customer { firstName } } }",
            json!({"id": first}),
        )
        .await;
    assert_eq!(seen["chat"]["customer"]["firstName"], "Ali");
    let canned = server
        .ok(
            Some(&org.owner),
            "mutation { createCannedResponse(input: {shortcut: \"hi\", title: \"Hi\",
                text: \"Hi {{customer.first_name}}!\"}) { id } }",
            json!({}),
        )
        .await["createCannedResponse"]["id"]
        .clone();
    let rendered = server
        .ok(
            Some(&org.owner),
            "query($id: ID!, $chat: ID!) { renderCannedResponse(id: $id, chatId: $chat) }",
            json!({"id": canned, "chat": first}),
        )
        .await;
    assert_eq!(rendered["renderCannedResponse"], "Hi Ali!");

    // Bad input is refused with a reason.
    let too_many: Vec<_> = (0..21)
        .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
        .collect();
    for input in [
        json!({"email": "not an email"}),
        json!({"phone": "call me maybe"}),
        json!({"note": "x".repeat(2001)}),
        json!({"customFields": too_many}),
        json!({"customFields": [{"key": "a", "value": "1"}, {"key": "A", "value": "2"}]}),
        json!({"customFields": [{"key": " ", "value": "1"}]}),
        json!({"customFields": [{"key": "k", "value": "v".repeat(501)}]}),
        json!({"name": "n".repeat(101)}),
    ] {
        assert_eq!(
            server
                .error_code(
                    Some(&org.owner),
                    UPDATE,
                    json!({"id": alice_id, "input": input})
                )
                .await,
            "BAD_USER_INPUT",
            "{input}"
        );
    }
    // Unknown customers and visitor tokens are refused.
    assert_eq!(
        server
            .error_code(Some(&org.owner), PROFILE, json!({"id": "nobody"}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(Some(&alice), PROFILE, json!({"id": alice_id}))
            .await,
        "FORBIDDEN"
    );
    // Another organization's agent does not find the customer.
    let rival = server.rival_organization().await.0;
    assert_eq!(
        server
            .error_code(Some(&rival), PROFILE, json!({"id": alice_id}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(&rival),
                UPDATE,
                json!({"id": alice_id, "input": {"note": "mine"}})
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(&rival),
                BAN,
                json!({"id": alice_id, "input": {"reason": "x"}})
            )
            .await,
        "NOT_FOUND"
    );
}

async fn a_banned_visitor_cannot_chat_until_the_ban_ends(backend: Backend) {
    let org = org(backend).await;
    let server = &org.server;
    let (spammer, spammer_id) = visitor(&org, "vs", "Sam Spam", "sam@spam.test").await;
    let (neighbour, _) = visitor(&org, "vn", "Nia Near", "nia@example.com").await;
    chat(&org, &spammer, "buy cheap stuff", "", true).await;

    // Plain agents may not ban.
    server
        .create_agent(&org.owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    assert_eq!(
        server
            .error_code(
                Some(&ada),
                BAN,
                json!({"id": spammer_id, "input": {"reason": "spam"}})
            )
            .await,
        "FORBIDDEN"
    );
    for input in [
        json!({"reason": " "}),
        json!({"reason": "r".repeat(501)}),
        json!({"reason": "spam", "durationSeconds": 10}),
        json!({"reason": "spam", "durationSeconds": 400_000_000}),
    ] {
        assert_eq!(
            server
                .error_code(
                    Some(&org.owner),
                    BAN,
                    json!({"id": spammer_id, "input": input})
                )
                .await,
            "BAD_USER_INPUT",
            "{input}"
        );
    }

    // Banned for an hour, the visitor alone.
    let ban = server
        .ok(
            Some(&org.owner),
            BAN,
            json!({"id": spammer_id, "input": {"reason": "spam links", "durationSeconds": 3600}}),
        )
        .await["banCustomer"]
        .clone();
    assert_eq!(ban["active"], true);
    assert_eq!(ban["ipAddress"], json!(null));
    assert!(ban["expiresAt"].is_string());
    let body = server.gql(Some(&spammer), START, json!({})).await;
    assert_eq!(error_code(&body), "BANNED", "{body}");
    assert!(
        !body.to_string().contains("spam links"),
        "the reason stays with agents"
    );
    let body = server.gql(Some(&spammer), OFFLINE, json!({})).await;
    assert_eq!(error_code(&body), "BANNED", "{body}");
    // Their own session's availability says so; anyone else's does not.
    let own = server
        .ok(Some(&spammer), AVAILABILITY, json!({"key": org.key}))
        .await["availability"]
        .clone();
    assert_eq!(own, json!({"online": false, "banned": true}));
    let anonymous =
        server.ok(None, AVAILABILITY, json!({"key": org.key})).await["availability"].clone();
    assert_eq!(anonymous, json!({"online": true, "banned": false}));
    let other = server
        .ok(Some(&neighbour), AVAILABILITY, json!({"key": org.key}))
        .await["availability"]
        .clone();
    assert_eq!(other["banned"], false);
    chat(&org, &neighbour, "a fair question", "", true).await;
    // The profile shows the ban.
    let profile = server
        .ok(Some(&org.owner), PROFILE, json!({"id": spammer_id}))
        .await["customer"]
        .clone();
    assert_eq!(profile["ban"]["reason"], "spam links");

    // Lifted, the visitor chats again; a second unban finds nothing to lift.
    assert_eq!(
        server
            .ok(Some(&org.owner), UNBAN, json!({"id": spammer_id}))
            .await["unbanCustomer"],
        true
    );
    assert_eq!(
        server
            .ok(Some(&org.owner), UNBAN, json!({"id": spammer_id}))
            .await["unbanCustomer"],
        false
    );
    chat(&org, &spammer, "sorry", "", true).await;

    // With the address, every visitor from it is banned (the tests all come from 127.0.0.1).
    let ban = server
        .ok(
            Some(&org.owner),
            BAN,
            json!({"id": spammer_id, "input": {"reason": "again", "includeAddress": true}}),
        )
        .await["banCustomer"]
        .clone();
    assert_eq!(ban["ipAddress"], "127.0.0.1");
    assert_eq!(ban["expiresAt"], json!(null));
    let body = server.gql(Some(&neighbour), START, json!({})).await;
    assert_eq!(error_code(&body), "BANNED", "{body}");

    // An expired ban stops applying by itself.
    server
        .execute_sql("UPDATE customer_bans SET expires_at = 1 WHERE lifted_at IS NULL")
        .await;
    chat(&org, &neighbour, "back again", "", true).await;
    chat(&org, &spammer, "me too", "", true).await;
    let profile = server
        .ok(Some(&org.owner), PROFILE, json!({"id": spammer_id}))
        .await["customer"]
        .clone();
    assert_eq!(profile["ban"], json!(null));
    let bans = server
        .ok(
            Some(&org.owner),
            "query($id: ID!) { customer(id: $id) { bans { reason active } } }",
            json!({"id": spammer_id}),
        )
        .await["customer"]["bans"]
        .clone();
    assert_eq!(
        bans,
        json!([{"reason": "again", "active": false}, {"reason": "spam links", "active": false}])
    );
}
