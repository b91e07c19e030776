//! Canned responses: agents manage their own and admins the shared ones; suggestions are the
//! agent's visible responses, ranked; a response renders for a chat the agent may see, with
//! fallbacks for what the customer did not say; sending one counts a use; bad input, other
//! people's responses and visitor tokens get coded errors.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WsClient, agent_events, start_chat, widget_key};

const FIELDS: &str = "id shortcut title text scope group { id } owner { id } usageCount \
                      createdAt updatedAt";
const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";

fn create_query() -> String {
    format!(
        "mutation($input: CannedResponseInput!) {{ createCannedResponse(input: $input) {{ {FIELDS} }} }}"
    )
}

fn update_query() -> String {
    format!(
        "mutation($id: ID!, $input: CannedResponseInput!) {{ updateCannedResponse(id: $id, input: $input) {{ {FIELDS} }} }}"
    )
}

const DELETE: &str = "mutation($id: ID!) { deleteCannedResponse(id: $id) }";
const RENDER: &str = "query($id: ID!, $chat: ID!) { renderCannedResponse(id: $id, chatId: $chat) }";
const SEND: &str = "mutation($c: ID!, $t: String!, $r: ID) {
    sendMessage(input: {chatId: $c, text: $t, cannedResponseId: $r}) { id text } }";

/// An agent in `groups`; their id and token.
async fn agent(server: &TestServer, owner: &str, name: &str, groups: &[&str]) -> (String, String) {
    let email = format!("{}@example.com", name.to_lowercase());
    let data = server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": format!("{name} Tester"), "password": "agent-password-1",
                   "role": "AGENT", "groupIds": groups}}),
        )
        .await;
    let id = data["createAgent"]["id"].as_str().unwrap().to_owned();
    (id, server.agent_token(&email).await)
}

async fn create(server: &TestServer, token: &str, input: Value) -> Value {
    server
        .ok(Some(token), &create_query(), json!({"input": input}))
        .await["createCannedResponse"]
        .clone()
}

/// The whole error body of creating `input`.
async fn create_error(server: &TestServer, token: &str, input: Value) -> (String, String) {
    let body = server
        .gql(Some(token), &create_query(), json!({"input": input}))
        .await;
    let code = crate::support::error_code(&body);
    (
        code,
        body["errors"][0]["message"].as_str().unwrap().to_owned(),
    )
}

/// The shortcuts `search` suggests to the agent, best first, as `shortcut:SCOPE`.
async fn suggestions(
    server: &TestServer,
    token: &str,
    search: Option<&str>,
    first: i32,
) -> Vec<String> {
    server
        .ok(
            Some(token),
            "query($s: String, $f: Int!) { cannedResponses(search: $s, first: $f) { shortcut scope } }",
            json!({"s": search, "f": first}),
        )
        .await["cannedResponses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", r["shortcut"].as_str().unwrap(), r["scope"].as_str().unwrap()))
        .collect()
}

fn response(shortcut: &str, text: &str) -> Value {
    json!({"shortcut": shortcut, "title": format!("About {shortcut}"), "text": text})
}

/// A chat of a customer (named `name`, or nameless) that Ada gets; its id and the
/// customer's token. The owner stays out of routing.
async fn chat_with(
    server: &TestServer,
    owner: &str,
    ada_events: &mut WsClient,
    visitor_id: &str,
    name: Option<&str>,
) -> (String, String) {
    let key = widget_key(server, owner).await;
    let mut input = json!({"widgetKey": key, "visitorId": visitor_id});
    if let Some(name) = name {
        input["name"] = json!(name);
        input["email"] = json!(format!("{visitor_id}@customer.test"));
    }
    let visitor = server
        .ok(
            None,
            "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }",
            json!({"input": input}),
        )
        .await["startVisitorSession"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (chat, status) = start_chat(server, &visitor, "Where is my parcel?").await;
    assert_eq!(status, "ACTIVE");
    assert_eq!(
        ada_events.next_event("ChatAssigned").await["chat"]["id"],
        chat
    );
    (chat, visitor)
}

async fn agents_manage_their_own_and_admins_the_shared(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let sales = server.create_group(&owner, "Sales").await;
    let (ada_id, ada) = agent(&server, &owner, "Ada", &[&sales]).await;
    let (_bob_id, bob) = agent(&server, &owner, "Bob", &[]).await;

    let own = create(
        &server,
        &ada,
        response("#Thanks", "Thank you, {{ customer.first_name }}!"),
    )
    .await;
    assert_eq!(
        own["shortcut"], "thanks",
        "the # is dropped and case lowered"
    );
    assert_eq!(own["scope"], "PERSONAL", "personal unless said otherwise");
    assert_eq!(own["owner"]["id"], ada_id.as_str());
    assert_eq!(own["group"], Value::Null);
    assert_eq!(own["usageCount"], 0);

    // A plain agent shares nothing.
    for scope in [
        json!({"scope": "ORGANIZATION"}),
        json!({"scope": "GROUP", "groupId": sales}),
    ] {
        let mut input = response("hello", "Hello!");
        input
            .as_object_mut()
            .unwrap()
            .extend(scope.as_object().unwrap().clone());
        assert_eq!(create_error(&server, &ada, input).await.0, "FORBIDDEN");
    }

    let shared = create(
        &server,
        &owner,
        json!({"shortcut": "shipping", "title": "Shipping", "text": "We ship in 2 days.", "scope": "ORGANIZATION"}),
    )
    .await;
    assert_eq!(shared["owner"], Value::Null);
    let for_sales = create(
        &server,
        &owner,
        json!({"shortcut": "discount", "title": "Discount", "text": "10% off.", "scope": "GROUP", "groupId": sales}),
    )
    .await;
    assert_eq!(for_sales["group"]["id"], sales.as_str());

    // Each sees the organization's, their groups' and their own.
    assert_eq!(
        suggestions(&server, &ada, None, 20).await,
        ["thanks:PERSONAL", "discount:GROUP", "shipping:ORGANIZATION"]
    );
    assert_eq!(
        suggestions(&server, &bob, None, 20).await,
        ["shipping:ORGANIZATION"]
    );

    // What each may change: the owner, in no group, every shared one (Sales' too); Ada her own.
    let manageable = |token: String| {
        let server = &server;
        async move {
            server
                .ok(
                    Some(&token),
                    "{ cannedResponses(manageable: true) { shortcut scope } }",
                    json!({}),
                )
                .await["cannedResponses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{}:{}",
                        r["shortcut"].as_str().unwrap(),
                        r["scope"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        suggestions(&server, &owner, None, 20).await,
        ["shipping:ORGANIZATION"],
        "the owner uses only what is for everyone or for their groups"
    );
    assert_eq!(
        manageable(owner.clone()).await,
        ["discount:GROUP", "shipping:ORGANIZATION"]
    );
    assert_eq!(manageable(ada.clone()).await, ["thanks:PERSONAL"]);

    // Ada may not change the shared ones; nobody else may even see Ada's.
    let edit = response("shipping", "Changed");
    for token in [&ada] {
        let code = server
            .error_code(
                Some(token),
                &update_query(),
                json!({"id": shared["id"], "input": edit}),
            )
            .await;
        assert_eq!(code, "FORBIDDEN");
        let code = server
            .error_code(Some(token), DELETE, json!({"id": shared["id"]}))
            .await;
        assert_eq!(code, "FORBIDDEN");
    }
    for token in [&owner, &bob] {
        let code = server
            .error_code(
                Some(token),
                &update_query(),
                json!({"id": own["id"], "input": edit}),
            )
            .await;
        assert_eq!(
            code, "NOT_FOUND",
            "another agent's own response is not theirs to see"
        );
        let code = server
            .error_code(Some(token), DELETE, json!({"id": own["id"]}))
            .await;
        assert_eq!(code, "NOT_FOUND");
    }
    let code = server
        .error_code(Some(&bob), DELETE, json!({"id": for_sales["id"]}))
        .await;
    assert_eq!(
        code, "NOT_FOUND",
        "another group's response is not Bob's to see"
    );

    // One shortcut per scope and group or owner.
    let (code, message) = create_error(&server, &ada, response("THANKS", "Again")).await;
    assert_eq!(code, "CONFLICT");
    assert!(message.contains("shortcut"), "{message}");
    create(&server, &bob, response("thanks", "Bob's own")).await;
    create(&server, &ada, response("shipping", "Ada's own shipping")).await;
    let (code, _) = create_error(
        &server,
        &owner,
        json!({"shortcut": "shipping", "title": "Again", "text": "Again", "scope": "ORGANIZATION"}),
    )
    .await;
    assert_eq!(code, "CONFLICT");
    let code = server
        .error_code(
            Some(&ada),
            &update_query(),
            json!({"id": own["id"], "input": response("shipping", "Clash")}),
        )
        .await;
    assert_eq!(code, "CONFLICT", "an update clashes like a create");

    // Ada changes and deletes her own; the admin changes the shared one.
    let changed = server
        .ok(
            Some(&ada),
            &update_query(),
            json!({"id": own["id"], "input": {"shortcut": "ty", "title": "Thanks", "text": "Thanks!"}}),
        )
        .await["updateCannedResponse"]
        .clone();
    assert_eq!(changed["shortcut"], "ty");
    assert_eq!(changed["createdAt"], own["createdAt"]);
    assert_eq!(changed["owner"]["id"], ada_id.as_str());
    let changed = server
        .ok(
            Some(&owner),
            &update_query(),
            json!({"id": shared["id"], "input": {"shortcut": "shipping", "title": "Shipping",
                   "text": "We ship in 1 day.", "scope": "ORGANIZATION"}}),
        )
        .await["updateCannedResponse"]
        .clone();
    assert_eq!(changed["text"], "We ship in 1 day.");
    let deleted = server
        .ok(Some(&ada), DELETE, json!({"id": own["id"]}))
        .await;
    assert_eq!(deleted["deleteCannedResponse"], true);
    let code = server
        .error_code(Some(&ada), DELETE, json!({"id": own["id"]}))
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert!(
        !suggestions(&server, &ada, None, 20)
            .await
            .contains(&"ty:PERSONAL".to_owned())
    );

    // Visitors and strangers use none of it.
    let key = widget_key(&server, &owner).await;
    let visitor = crate::support::visitor(&server, &key, "v1").await;
    let code = server
        .error_code(Some(&visitor), "{ cannedResponses { id } }", json!({}))
        .await;
    assert_eq!(code, "FORBIDDEN");
    let (code, _) = create_error(&server, &visitor, response("x", "x")).await;
    assert_eq!(code, "FORBIDDEN");
    let code = server
        .error_code(None, "{ cannedResponses { id } }", json!({}))
        .await;
    assert_eq!(code, "UNAUTHENTICATED");
}

async fn suggestions_are_ranked_by_match_then_personal_then_use(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let (_ada_id, ada) = agent(&server, &owner, "Ada", &[]).await;
    let shared = |shortcut: &str, title: &str, text: &str| json!({"shortcut": shortcut, "title": title, "text": text, "scope": "ORGANIZATION"});
    create(&server, &owner, shared("ship", "Ship", "We ship.")).await;
    create(&server, &owner, shared("shipping", "Shipping", "Two days.")).await;
    create(&server, &owner, shared("shipx", "Express", "One day.")).await;
    create(
        &server,
        &owner,
        shared("returns", "Shipping back", "Free returns."),
    )
    .await;
    create(&server, &owner, shared("hello", "Hello", "Happy shipping!")).await;
    create(&server, &owner, shared("other", "Other", "Nothing to see.")).await;
    create(&server, &ada, response("shipping", "Mine.")).await;
    create(&server, &ada, response("shipwreck", "Mine too.")).await;

    assert_eq!(
        suggestions(&server, &ada, Some("ship"), 20).await,
        [
            "ship:ORGANIZATION",
            "shipping:PERSONAL",
            "shipwreck:PERSONAL",
            "shipping:ORGANIZATION",
            "shipx:ORGANIZATION",
            "returns:ORGANIZATION",
            "hello:ORGANIZATION",
        ],
        "exact, prefix (personal first, then by shortcut), then title, then text"
    );
    assert_eq!(
        suggestions(&server, &ada, Some("#SHIPP"), 20).await,
        ["shipping:PERSONAL", "shipping:ORGANIZATION"],
        "# searches shortcuts only, ignoring case"
    );
    assert_eq!(suggestions(&server, &ada, Some("#ship"), 2).await.len(), 2);
    assert!(
        suggestions(&server, &ada, Some("#zzz"), 20)
            .await
            .is_empty()
    );
    assert_eq!(
        suggestions(&server, &ada, Some("free RETURNS"), 20).await,
        ["returns:ORGANIZATION"]
    );

    // Used more, ranked higher among equals.
    let mut ada_events = agent_events(&server, &ada, None).await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (chat, _) = chat_with(&server, &owner, &mut ada_events, "v1", Some("Sam Smith")).await;
    let shipx = server
        .ok(
            Some(&ada),
            "{ cannedResponses(search: \"#shipx\") { id } }",
            json!({}),
        )
        .await["cannedResponses"][0]["id"]
        .clone();
    server
        .ok(
            Some(&ada),
            SEND,
            json!({"c": chat, "t": "One day.", "r": shipx}),
        )
        .await;
    assert_eq!(
        suggestions(&server, &ada, Some("#ship"), 20).await,
        [
            "ship:ORGANIZATION",
            "shipping:PERSONAL",
            "shipwreck:PERSONAL",
            "shipx:ORGANIZATION",
            "shipping:ORGANIZATION",
        ]
    );
}

async fn a_response_renders_for_a_chat_with_fallbacks(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (_ada_id, ada) = agent(&server, &owner, "Ada", &[]).await;
    let (_bob_id, bob) = agent(&server, &owner, "Bob", &[]).await;
    server.ok(Some(&bob), NOT_ACCEPTING, json!({})).await;
    let mut ada_events = agent_events(&server, &ada, None).await;
    let hello = create(
        &server,
        &owner,
        json!({"shortcut": "hello", "title": "Hello", "scope": "ORGANIZATION",
               "text": "Hi {{ customer.first_name }} ({{customer.name}}, {{customer.email}}), I'm {{agent.first_name}} — {{agent.name}}."}),
    )
    .await;

    let (named, _) = chat_with(&server, &owner, &mut ada_events, "v1", Some("Sam  Smith")).await;
    let rendered = server
        .ok(
            Some(&ada),
            RENDER,
            json!({"id": hello["id"], "chat": named}),
        )
        .await["renderCannedResponse"]
        .clone();
    assert_eq!(
        rendered,
        "Hi Sam (Sam  Smith, v1@customer.test), I'm Ada — Ada Tester."
    );
    let customer = server
        .ok(
            Some(&ada),
            "query($id: ID!) { chat(id: $id) { customer { name firstName } } }",
            json!({"id": named}),
        )
        .await["chat"]["customer"]
        .clone();
    assert_eq!(customer["firstName"], "Sam");

    let (nameless, _) = chat_with(&server, &owner, &mut ada_events, "v2", None).await;
    let rendered = server
        .ok(
            Some(&ada),
            RENDER,
            json!({"id": hello["id"], "chat": nameless}),
        )
        .await["renderCannedResponse"]
        .clone();
    assert_eq!(
        rendered,
        "Hi there (there, your email address), I'm Ada — Ada Tester."
    );

    // Bob may use the response but not see Ada's chat; nobody renders an unknown one.
    let code = server
        .error_code(
            Some(&bob),
            RENDER,
            json!({"id": hello["id"], "chat": named}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = server
        .error_code(
            Some(&ada),
            RENDER,
            json!({"id": hello["id"], "chat": "no-such-chat"}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let code = server
        .error_code(
            Some(&ada),
            RENDER,
            json!({"id": "no-such-response", "chat": named}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    let bobs = create(&server, &bob, response("mine", "Bob's")).await;
    let code = server
        .error_code(Some(&ada), RENDER, json!({"id": bobs["id"], "chat": named}))
        .await;
    assert_eq!(code, "NOT_FOUND", "another agent's own response");
}

async fn sending_from_a_response_counts_a_use(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (_ada_id, ada) = agent(&server, &owner, "Ada", &[]).await;
    let (_bob_id, bob) = agent(&server, &owner, "Bob", &[]).await;
    let mut ada_events = agent_events(&server, &ada, None).await;
    let thanks = create(
        &server,
        &ada,
        response("thanks", "Thanks, {{customer.first_name}}!"),
    )
    .await;
    let (chat, visitor) =
        chat_with(&server, &owner, &mut ada_events, "v1", Some("Sam Smith")).await;

    let text = server
        .ok(
            Some(&ada),
            RENDER,
            json!({"id": thanks["id"], "chat": chat}),
        )
        .await["renderCannedResponse"]
        .clone();
    let send_once = "mutation($c: ID!, $t: String!, $r: ID) {
        sendMessage(input: {chatId: $c, text: $t, cannedResponseId: $r, clientId: \"m1\"}) {
            id text } }";
    let variables = json!({"c": chat, "t": text, "r": thanks["id"]});
    let sent = server.ok(Some(&ada), send_once, variables.clone()).await;
    assert_eq!(sent["sendMessage"]["text"], "Thanks, Sam!");
    // The SDK's outbox sends again when an answer was lost: one message, one use.
    let again = server.ok(Some(&ada), send_once, variables).await;
    assert_eq!(again["sendMessage"]["id"], sent["sendMessage"]["id"]);
    server
        .ok(
            Some(&ada),
            SEND,
            json!({"c": chat, "t": "Plain reply", "r": null}),
        )
        .await;
    let count = |token: String| {
        let server = &server;
        async move {
            server
                .ok(
                    Some(&token),
                    "{ cannedResponses(search: \"#thanks\") { usageCount } }",
                    json!({}),
                )
                .await["cannedResponses"][0]["usageCount"]
                .clone()
        }
    };
    assert_eq!(count(ada.clone()).await, 1);

    // An id the agent may not use sends nothing and counts nothing.
    let bobs = create(&server, &bob, response("mine", "Bob's")).await;
    for id in [bobs["id"].clone(), json!("no-such-response")] {
        let code = server
            .error_code(
                Some(&ada),
                SEND,
                json!({"c": chat, "t": "Not sent", "r": id}),
            )
            .await;
        assert_eq!(code, "NOT_FOUND");
    }
    let code = server
        .error_code(
            Some(&visitor),
            SEND,
            json!({"c": chat, "t": "Me too", "r": thanks["id"]}),
        )
        .await;
    assert_eq!(code, "FORBIDDEN", "customers send no canned responses");
    let texts: Vec<Value> = server
        .ok(
            Some(&ada),
            "query($id: ID!) { chat(id: $id) { events(first: 50) { items { ... on Message { text } } } } }",
            json!({"id": chat}),
        )
        .await["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["text"].clone())
        .collect();
    assert!(!texts.contains(&json!("Not sent")), "{texts:?}");
    assert!(!texts.contains(&json!("Me too")), "{texts:?}");
    assert_eq!(count(ada).await, 1);
}

async fn bad_input_gets_coded_errors(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let sales = server.create_group(&owner, "Sales").await;
    let long_text = "x".repeat(4001);
    let long_title = "t".repeat(101);
    let long_shortcut = "s".repeat(33);
    let cases = [
        (
            json!({"shortcut": "#", "title": "T", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "two words", "title": "T", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"shortcut": long_shortcut, "title": "T", "text": "x"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "ok", "title": "  ", "text": "x"}),
            "title",
        ),
        (
            json!({"shortcut": "ok", "title": long_title, "text": "x"}),
            "title",
        ),
        (json!({"shortcut": "ok", "title": "T", "text": " "}), "text"),
        (
            json!({"shortcut": "ok", "title": "T", "text": long_text}),
            "text",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "Hi {{customer.nickname}}"}),
            "{{customer.nickname}}",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "Hi {{customer.name"}),
            "not closed",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "x", "scope": "GROUP"}),
            "groupId",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "x", "scope": "PERSONAL", "groupId": sales}),
            "groupId",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "x", "scope": "ORGANIZATION", "groupId": sales}),
            "groupId",
        ),
        (
            json!({"shortcut": "ok", "title": "T", "text": "x", "scope": "GROUP", "groupId": "nope"}),
            "groupId",
        ),
    ];
    for (input, names) in cases {
        let (code, message) = create_error(&server, &owner, input.clone()).await;
        assert_eq!(code, "BAD_USER_INPUT", "{input}");
        assert!(message.contains(names), "{input}: {message}");
    }
    let (_, message) = create_error(
        &server,
        &owner,
        json!({"shortcut": "ok", "title": "T", "text": "{{ x }}"}),
    )
    .await;
    assert!(
        message.contains("{{customer.first_name}}"),
        "lists the known ones: {message}"
    );

    for first in [0, 51] {
        let code = server
            .error_code(
                Some(&owner),
                "query($f: Int!) { cannedResponses(first: $f) { id } }",
                json!({"f": first}),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
    }
    let code = server
        .error_code(
            Some(&owner),
            &update_query(),
            json!({"id": "nope", "input": response("ok", "x")}),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
    assert!(
        suggestions(&server, &owner, None, 50).await.is_empty(),
        "nothing was stored"
    );
}

on_both_backends!(
    agents_manage_their_own_and_admins_the_shared,
    suggestions_are_ranked_by_match_then_personal_then_use,
    a_response_renders_for_a_chat_with_fallbacks,
    sending_from_a_response_counts_a_use,
    bad_input_gets_coded_errors,
);
