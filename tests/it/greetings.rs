//! Greetings: an agent's greeting reaches the visitor's page, is counted shown, and starts a
//! chat with that agent when answered (or is dismissed); admins' greeting rules fire on their
//! conditions, only while someone can take the chat, once per visitor per `oncePerHours`;
//! bad input gets a coded error.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WsClient, agent_events, widget_key};
use crate::visitors::{eventually_visitor, open_page, quick, view_page, visitor_on};

const SEND_GREETING: &str = "mutation($customer: ID!, $text: String!) {
    sendGreeting(input: {customerId: $customer, text: $text}) {
        id text agentName agentId ruleId createdAt shownAt answeredAt dismissedAt chatId } }";

const DISMISS: &str =
    "mutation($id: ID!) { dismissGreeting(id: $id) { id dismissedAt answeredAt } }";

const START_WITH_GREETING: &str = "mutation($m: String!, $g: ID) {
    startChat(input: {message: $m, greetingId: $g}) { id status assigneeName } }";

const RULE_FIELDS: &str = "id name enabled text group { id } urlContains urlPattern
    minSecondsOnPage minVisits referrerContains oncePerHours shown answered dismissed createdAt";

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const ACCEPTING: &str = "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }";

/// Creates an agent named `name` who accepts chats; returns their id and token.
async fn agent(server: &TestServer, owner: &str, name: &str) -> (String, String) {
    let email = format!("{}@example.com", name.to_lowercase());
    let data = server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": name, "password": "agent-password-1", "role": "AGENT"}}),
        )
        .await;
    let id = data["createAgent"]["id"].as_str().unwrap().to_owned();
    (id, server.agent_token(&email).await)
}

/// The next greeting the visitor's page is given.
async fn greeting_received(page: &mut WsClient) -> Value {
    let event = page.next_event("GreetingReceived").await;
    assert!(event["at"].is_string());
    event["greeting"].clone()
}

async fn create_rule(server: &TestServer, token: &str, input: Value) -> Value {
    server
        .ok(
            Some(token),
            &format!(
                "mutation($input: GreetingRuleInput!) {{ createGreetingRule(input: $input) {{ {RULE_FIELDS} }} }}"
            ),
            json!({"input": input}),
        )
        .await["createGreetingRule"]
        .clone()
}

async fn rules(server: &TestServer, token: &str) -> Vec<Value> {
    server
        .ok(
            Some(token),
            &format!("{{ greetingRules {{ {RULE_FIELDS} }} }}"),
            json!({}),
        )
        .await["greetingRules"]
        .as_array()
        .unwrap()
        .clone()
}

async fn a_greeting_is_shown_then_answered_by_a_chat_with_its_agent(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let key = widget_key(&server, &owner).await;
    // Ada would win a tie; Bob's greeting must still bring the chat to Bob.
    let (_ada, ada_token) = agent(&server, &owner, "Ada").await;
    let (bob, bob_token) = agent(&server, &owner, "Bob").await;
    let _ada_app = agent_events(&server, &ada_token, None).await;
    let _bob_app = agent_events(&server, &bob_token, None).await;
    let (visitor, customer) = visitor_on(&server, &key, "sam", "https://shop.test/pricing").await;
    let mut page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &bob_token, &customer, |_| true).await;

    let sent = server
        .ok(
            Some(&bob_token),
            SEND_GREETING,
            json!({"customer": customer, "text": "Hi {{visitor.name}}, I'm {{agent.name}}. Questions about {{page.title}}?"}),
        )
        .await["sendGreeting"]
        .clone();
    let text = "Hi Visitor sam, I'm Bob. Questions about Pricing?";
    assert_eq!(sent["text"], text);
    assert_eq!(sent["agentName"], "Bob");
    assert_eq!(sent["agentId"], bob.as_str());
    assert_eq!(sent["ruleId"], Value::Null);

    let shown = greeting_received(&mut page).await;
    assert_eq!(shown["id"], sent["id"]);
    assert_eq!(shown["text"], text);
    assert!(shown["shownAt"].is_string(), "counted shown: {shown}");
    let invited = eventually_visitor(&server, &owner, &customer, |v| v["state"] == "INVITED").await;
    assert_eq!(invited["greeting"]["id"], sent["id"]);
    assert!(invited["greeting"]["shownAt"].is_string());

    // Another tab (or a reload) shows the greeting still waiting for an answer.
    let mut other_tab = open_page(&server, &visitor).await;
    assert_eq!(greeting_received(&mut other_tab).await["id"], sent["id"]);

    let chat = server
        .ok(
            Some(&visitor),
            START_WITH_GREETING,
            json!({"m": "Yes: can I pay by invoice?", "g": sent["id"]}),
        )
        .await["startChat"]
        .clone();
    assert_eq!(chat["status"], "ACTIVE");
    assert_eq!(chat["assigneeName"], "Bob");
    let transcript = server
        .ok(
            Some(&bob_token),
            "query($id: ID!) { chat(id: $id) { assignee { id }
                events { items { author authorId authorName kind text } } } }",
            json!({"id": chat["id"]}),
        )
        .await["chat"]
        .clone();
    assert_eq!(transcript["assignee"]["id"], bob.as_str());
    let items = transcript["events"]["items"].as_array().unwrap();
    assert_eq!(items[0]["author"], "AGENT");
    assert_eq!(items[0]["authorId"], bob.as_str());
    assert_eq!(items[0]["authorName"], "Bob");
    assert_eq!(items[0]["text"], text);
    assert_eq!(items[1]["author"], "CUSTOMER");
    assert_eq!(items[1]["text"], "Yes: can I pay by invoice?");

    let chatting =
        eventually_visitor(&server, &owner, &customer, |v| v["state"] == "CHATTING").await;
    assert_eq!(chatting["chat"]["id"], chat["id"]);
    let answered = eventually_visitor(&server, &owner, &customer, |v| {
        v["greeting"]["answeredAt"].is_string()
    })
    .await;
    assert_eq!(answered["greeting"]["chatId"], chat["id"]);
    // Answered once: it cannot start another chat, nor be dismissed now.
    assert_eq!(
        server
            .error_code(Some(&visitor), DISMISS, json!({"id": sent["id"]}))
            .await,
        "CONFLICT"
    );
}

async fn a_greeting_can_be_dismissed(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "sam", "https://shop.test/").await;
    let mut page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &owner, &customer, |_| true).await;
    let sent = server
        .ok(
            Some(&owner),
            SEND_GREETING,
            json!({"customer": customer, "text": "Hello {{visitor.name}}!"}),
        )
        .await["sendGreeting"]
        .clone();
    greeting_received(&mut page).await;
    let dismissed = server
        .ok(Some(&visitor), DISMISS, json!({"id": sent["id"]}))
        .await["dismissGreeting"]
        .clone();
    assert!(dismissed["dismissedAt"].is_string());
    assert_eq!(dismissed["answeredAt"], Value::Null);
    // Dismissing again changes nothing.
    let again = server
        .ok(Some(&visitor), DISMISS, json!({"id": sent["id"]}))
        .await["dismissGreeting"]
        .clone();
    assert_eq!(again["dismissedAt"], dismissed["dismissedAt"]);
    let browsing =
        eventually_visitor(&server, &owner, &customer, |v| v["state"] == "BROWSING").await;
    assert!(browsing["greeting"]["dismissedAt"].is_string());
    // A new page does not show it again, and it cannot start a chat any more.
    let mut reloaded = open_page(&server, &visitor).await;
    assert!(
        reloaded
            .quiet_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    assert_eq!(
        server
            .error_code(
                Some(&visitor),
                START_WITH_GREETING,
                json!({"m": "hi", "g": sent["id"]})
            )
            .await,
        "CONFLICT"
    );
}

async fn bad_greetings_get_coded_errors(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        quick(config);
        config.allow_signup = true;
    })
    .await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "sam", "https://shop.test/").await;
    let send = |token: &str, customer: &str, text: &str| {
        let token = token.to_owned();
        let variables = json!({"customer": customer, "text": text});
        let server = &server;
        async move {
            server
                .error_code(Some(&token), SEND_GREETING, variables)
                .await
        }
    };
    // Not on the site yet.
    assert_eq!(send(&owner, &customer, "Hello").await, "CONFLICT");
    let _page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &owner, &customer, |_| true).await;
    assert_eq!(send(&owner, &customer, "   ").await, "BAD_USER_INPUT");
    assert_eq!(
        send(&owner, &customer, &"x".repeat(1001)).await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        send(&owner, "0190a000-0000-7000-8000-000000000000", "Hello").await,
        "NOT_FOUND"
    );
    // An agent of another organization cannot reach this visitor.
    let other = server
        .ok(
            None,
            "mutation { signUp(input: {organizationName: \"Other\", name: \"Eve\", email: \"eve@other.test\", password: \"other-password\"}) { accessToken } }",
            json!({}),
        )
        .await["signUp"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send(&other, &customer, "Hello").await, "NOT_FOUND");
    assert!(
        server
            .ok(
                Some(&other),
                "{ visitorsOnSite { customer { id } } }",
                json!({})
            )
            .await["visitorsOnSite"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Each side keeps to its own operations.
    assert_eq!(send(&visitor, &customer, "Hello").await, "FORBIDDEN");
    let sent = server
        .ok(
            Some(&owner),
            SEND_GREETING,
            json!({"customer": customer, "text": "Hello"}),
        )
        .await["sendGreeting"]
        .clone();
    assert_eq!(
        server
            .error_code(Some(&owner), DISMISS, json!({"id": sent["id"]}))
            .await,
        "FORBIDDEN"
    );
    // Another visitor cannot dismiss or answer it.
    let (stranger, _) = visitor_on(&server, &key, "eve", "https://shop.test/").await;
    assert_eq!(
        server
            .error_code(Some(&stranger), DISMISS, json!({"id": sent["id"]}))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(&stranger),
                START_WITH_GREETING,
                json!({"m": "hi", "g": sent["id"]})
            )
            .await,
        "NOT_FOUND"
    );
    // A chatting visitor is not greeted.
    server
        .ok(
            Some(&visitor),
            START_WITH_GREETING,
            json!({"m": "hi", "g": Value::Null}),
        )
        .await;
    assert_eq!(send(&owner, &customer, "Hello again").await, "CONFLICT");
}

async fn greeting_rules_are_managed_by_admins(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let (_, agent_token) = agent(&server, &owner, "Ada").await;
    let input = json!({"name": "Pricing", "text": "Hi {{visitor.name}}!", "urlContains": "/pricing",
        "minSecondsOnPage": 20, "minVisits": 2, "referrerContains": "search", "oncePerHours": 12});
    assert_eq!(
        server
            .error_code(
                Some(&agent_token),
                "mutation($input: GreetingRuleInput!) { createGreetingRule(input: $input) { id } }",
                json!({"input": input}),
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(Some(&agent_token), "{ greetingRules { id } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    let rule = create_rule(&server, &owner, input.clone()).await;
    assert_eq!(rule["enabled"], true);
    assert_eq!(rule["urlContains"], "/pricing");
    assert_eq!(rule["minSecondsOnPage"], 20);
    assert_eq!(rule["oncePerHours"], 12);
    assert_eq!(rule["shown"], 0);

    let bad = server
        .gql(
            Some(&owner),
            "mutation($input: GreetingRuleInput!) { createGreetingRule(input: $input) { id } }",
            json!({"input": {"name": "Bad", "text": "Hi", "urlPattern": "(unclosed"}}),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("urlPattern"),
        "{bad}"
    );
    for input in [
        json!({"name": "Bad", "text": "Hi {{visitor.email}}"}),
        json!({"name": "Bad", "text": "Hi", "oncePerHours": 0}),
        json!({"name": "Bad", "text": "Hi", "groupId": "0190a000-0000-7000-8000-000000000000"}),
        json!({"name": "", "text": "Hi"}),
    ] {
        assert_eq!(
            server
                .error_code(
                    Some(&owner),
                    "mutation($input: GreetingRuleInput!) { createGreetingRule(input: $input) { id } }",
                    json!({"input": input}),
                )
                .await,
            "BAD_USER_INPUT",
            "{input}"
        );
    }

    let updated = server
        .ok(
            Some(&owner),
            &format!(
                "mutation($id: ID!, $input: GreetingRuleInput!) {{ updateGreetingRule(id: $id, input: $input) {{ {RULE_FIELDS} }} }}"
            ),
            json!({"id": rule["id"], "input": {"name": "Checkout", "text": "Need help?", "enabled": false,
                "urlPattern": "^https://shop\\.test/checkout"}}),
        )
        .await["updateGreetingRule"]
        .clone();
    assert_eq!(updated["id"], rule["id"]);
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["urlContains"], Value::Null);
    assert_eq!(updated["urlPattern"], "^https://shop\\.test/checkout");
    assert_eq!(updated["oncePerHours"], 24);
    let listed = rules(&server, &owner).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Checkout");
    let delete = "mutation($id: ID!) { deleteGreetingRule(id: $id) }";
    assert_eq!(
        server
            .ok(Some(&owner), delete, json!({"id": rule["id"]}))
            .await["deleteGreetingRule"],
        true
    );
    assert_eq!(
        server
            .ok(Some(&owner), delete, json!({"id": rule["id"]}))
            .await["deleteGreetingRule"],
        false
    );
    assert!(rules(&server, &owner).await.is_empty());
}

async fn a_rule_greets_on_its_conditions_while_someone_accepts_chats_and_once(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let owner_name = server.ok(Some(&owner), "{ me { name } }", json!({})).await["me"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let key = widget_key(&server, &owner).await;
    let rule = create_rule(
        &server,
        &owner,
        json!({"name": "Pricing", "text": "Hi {{visitor.name}}, I'm {{agent.name}}: questions about {{page.title}}?",
            "urlContains": "/pricing", "minSecondsOnPage": 1, "oncePerHours": 1}),
    )
    .await;

    // Nobody accepts chats: no greeting, however long the visitor stays.
    let (sam, sam_id) = visitor_on(&server, &key, "sam", "https://shop.test/pricing").await;
    let mut sam_page = open_page(&server, &sam).await;
    // Another page than the rule's: never greeted.
    let (eve, eve_id) = visitor_on(&server, &key, "eve", "https://shop.test/about").await;
    let mut eve_page = open_page(&server, &eve).await;
    eventually_visitor(&server, &owner, &sam_id, |_| true).await;
    eventually_visitor(&server, &owner, &eve_id, |_| true).await;
    assert!(
        sam_page
            .quiet_for(Duration::from_millis(1500))
            .await
            .is_empty()
    );

    // Someone accepts chats: the rule fires once the visitor has been on the page long enough.
    server.ok(Some(&owner), ACCEPTING, json!({})).await;
    let greeting = greeting_received(&mut sam_page).await;
    assert_eq!(
        greeting["text"],
        format!("Hi Visitor sam, I'm {owner_name}: questions about Pricing?")
    );
    assert_eq!(greeting["ruleId"], rule["id"]);
    assert_eq!(greeting["agentName"], owner_name.as_str());
    assert!(
        eve_page
            .quiet_for(Duration::from_millis(500))
            .await
            .is_empty()
    );
    server
        .ok(Some(&sam), DISMISS, json!({"id": greeting["id"]}))
        .await;

    // Once per hour: back on the page, long enough, the rule stays quiet.
    view_page(&server, &sam, "https://shop.test/", "Home").await;
    view_page(&server, &sam, "https://shop.test/pricing", "Pricing").await;
    assert!(
        sam_page
            .quiet_for(Duration::from_millis(1800))
            .await
            .is_empty()
    );

    // Another visitor arriving on the page is greeted at once they qualify, and answers.
    view_page(
        &server,
        &eve,
        "https://shop.test/pricing?plan=pro",
        "Pro plan",
    )
    .await;
    let for_eve = greeting_received(&mut eve_page).await;
    assert_eq!(for_eve["ruleId"], rule["id"]);
    assert!(
        for_eve["text"]
            .as_str()
            .unwrap()
            .ends_with("questions about Pro plan?")
    );
    let chat = server
        .ok(
            Some(&eve),
            START_WITH_GREETING,
            json!({"m": "Yes please", "g": for_eve["id"]}),
        )
        .await["startChat"]
        .clone();
    assert_eq!(chat["status"], "ACTIVE");

    let counted = rules(&server, &owner).await;
    assert_eq!(counted[0]["shown"], 2);
    assert_eq!(counted[0]["answered"], 1);
    assert_eq!(counted[0]["dismissed"], 1);
}

async fn a_new_rule_greets_visitors_already_on_the_site(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "sam", "https://shop.test/pricing").await;
    let mut page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &owner, &customer, |_| true).await;
    assert!(page.quiet_for(Duration::from_millis(300)).await.is_empty());
    let rule = create_rule(
        &server,
        &owner,
        json!({"name": "Everyone", "text": "Welcome!", "referrerContains": "SEARCH.test"}),
    )
    .await;
    let greeting = greeting_received(&mut page).await;
    assert_eq!(greeting["ruleId"], rule["id"]);
    assert_eq!(greeting["text"], "Welcome!");
    let invited = eventually_visitor(&server, &owner, &customer, |v| v["state"] == "INVITED").await;
    assert_eq!(invited["greeting"]["id"], greeting["id"]);
}

on_both_backends!(
    a_new_rule_greets_visitors_already_on_the_site,
    a_greeting_is_shown_then_answered_by_a_chat_with_its_agent,
    a_greeting_can_be_dismissed,
    bad_greetings_get_coded_errors,
    greeting_rules_are_managed_by_admins,
    a_rule_greets_on_its_conditions_while_someone_accepts_chats_and_once,
);
