//! Abuse limits on customer operations, the queue's protection, and routing that never sends a
//! chat into the void: transfers, deactivation, availability per group, pushes only to agents
//! who are away, and what the customer is told.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::domain::NotificationKind;

use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, WsClient, agent_events, chat_events, error_code, start_chat, visitor,
    widget_key,
};

on_both_backends!(
    every_customer_operation_has_a_budget_that_holds_under_concurrency,
    a_chat_keeps_one_rating_and_one_rating_entry,
    a_transfer_to_an_agent_nobody_can_reach_is_refused_unless_forced,
    the_customer_hears_of_a_transfer_before_the_next_agent_joins,
    an_agent_who_does_not_answer_is_named_and_the_chat_moves_on,
    new_and_transferred_chats_push_only_to_agents_whose_app_is_closed,
    a_deactivated_agents_chats_move_on_at_once,
    a_flood_of_new_chats_is_capped_per_organization_and_minute,
    customers_who_left_leave_the_queue_and_those_connected_stay,
    availability_answers_for_the_group_asked_and_agrees_with_start_chat,
    one_address_starts_a_bounded_number_of_chats_whatever_visitors_it_makes,
);

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const MY_CHATS: &str = "{ myChats { id } }";
const TRANSFER: &str = "mutation($c: ID!, $a: ID!, $force: Boolean) { transferChat(input: {chatId: $c, toAgentId: $a, force: $force}) { status assignee { id } } }";

/// Creates an agent called `name` (email `<name>@example.com`) and returns their id.
async fn named_agent(server: &TestServer, owner: &str, name: &str, role: &str) -> String {
    server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": format!("{}@example.com", name.to_lowercase()), "name": name,
                   "password": "agent-password-1", "role": role}}),
        )
        .await["createAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The ids of the agent's active chats.
async fn my_chats(server: &TestServer, token: &str) -> Vec<String> {
    server.ok(Some(token), MY_CHATS, json!({})).await["myChats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Reads a customer's chatEvents until an entry with `text` arrives; returns every transcript
/// text seen on the way, in order.
async fn texts_until(ws: &mut WsClient, text: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let event = ws.any_event().await;
        if let Some(t) = event["message"]["text"].as_str() {
            seen.push(t.to_owned());
            if t == text {
                return seen;
            }
        }
    }
}

/// Polls `done` every 50 ms for at most 5 s.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    for _ in 0..100 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// The chat's transcript as its customer sees it: (kind, text) oldest first.
async fn transcript(server: &TestServer, token: &str, chat: &str) -> Vec<(String, String)> {
    server
        .ok(
            Some(token),
            "query($c: ID!) { chat(id: $c) { events(first: 200) { items { kind text } } } }",
            json!({"c": chat}),
        )
        .await["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["kind"].as_str().unwrap().to_owned(),
                i["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Sends `n` copies of an operation at once; returns the bodies.
async fn at_once(
    server: &TestServer,
    token: &str,
    query: &str,
    variables: Value,
    n: usize,
) -> Vec<Value> {
    let requests: Vec<_> = (0..n)
        .map(|_| {
            let request = server
                .http
                .post(&server.graphql_url)
                .bearer_auth(token)
                .json(&json!({"query": query, "variables": variables}));
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        })
        .collect();
    let mut bodies = Vec::new();
    for request in requests {
        bodies.push(request.await.unwrap());
    }
    bodies
}

/// How many bodies succeeded; every other one must be RATE_LIMITED with a retry hint.
fn passed_or_rate_limited(bodies: &[Value]) -> usize {
    let mut passed = 0;
    for body in bodies {
        if body.get("errors").is_none() {
            passed += 1;
            continue;
        }
        assert_eq!(error_code(body), "RATE_LIMITED", "{body}");
        let retry = body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap_or_else(|| panic!("a retry hint: {body}"));
        assert!((1..=60).contains(&retry), "{body}");
    }
    passed
}

/// rateChat, updateVisitorPage and closeChat share one budget per customer, setTyping has its
/// own; requests sent together are counted exactly, not all let through a check.
async fn every_customer_operation_has_a_budget_that_holds_under_concurrency(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.customer_actions_per_minute = 6;
        c.customer_typing_per_minute = 10;
    })
    .await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "flooder").await;
    let (chat, status) = start_chat(&server, &customer, "hello").await;
    assert_eq!(status, "ACTIVE");

    let page = "mutation { updateVisitorPage(input: {url: \"https://shop.test/a\"}) { id } }";
    assert_eq!(
        passed_or_rate_limited(&at_once(&server, &customer, page, json!({}), 4).await),
        4
    );
    let rate =
        "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD, comment: \"ok\"}) { id } }";
    let rated =
        passed_or_rate_limited(&at_once(&server, &customer, rate, json!({"c": chat}), 20).await);
    assert_eq!(rated, 2, "4 page views and 2 ratings use up a budget of 6");
    let close = "mutation($c: ID!) { closeChat(chatId: $c) { id } }";
    assert_eq!(
        server
            .error_code(Some(&customer), close, json!({"c": chat}))
            .await,
        "RATE_LIMITED"
    );

    // Typing has its own budget, and messages theirs: neither was touched above.
    let typing =
        "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true, draft: \"h\"}) }";
    let typed =
        passed_or_rate_limited(&at_once(&server, &customer, typing, json!({"c": chat}), 30).await);
    assert_eq!(typed, 10);
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"still here\"}) { id } }",
            json!({"c": chat}),
        )
        .await;

    // Budgets are per customer: another visitor is not slowed down by the first.
    let other = visitor(&server, &key, "calm").await;
    server.ok(Some(&other), page, json!({})).await;
    // The agent's side has no such budget.
    server.ok(Some(&owner), close, json!({"c": chat})).await;
}

/// A hundred ratings of one chat leave one rating (the last) and one CHAT_RATED entry.
async fn a_chat_keeps_one_rating_and_one_rating_entry(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.customer_actions_per_minute = 1000).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "rater").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    let rate = "mutation($c: ID!, $r: Rating!, $comment: String) { rateChat(input: {chatId: $c, rating: $r, comment: $comment}) { rating ratingComment } }";
    let bodies = at_once(
        &server,
        &customer,
        rate,
        json!({"c": chat, "r": "GOOD", "comment": "x".repeat(1000)}),
        50,
    )
    .await;
    assert_eq!(passed_or_rate_limited(&bodies), 50);
    let last = server
        .ok(
            Some(&customer),
            rate,
            json!({"c": chat, "r": "BAD", "comment": "changed my mind"}),
        )
        .await;
    assert_eq!(
        last["rateChat"],
        json!({"rating": "BAD", "ratingComment": "changed my mind"})
    );
    let ratings: Vec<_> = transcript(&server, &owner, &chat)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "CHAT_RATED")
        .collect();
    assert_eq!(ratings.len(), 1, "{ratings:?}");
    let seen = server
        .ok(
            Some(&owner),
            "query($c: ID!) { chat(id: $c) { rating ratingComment } }",
            json!({"c": chat}),
        )
        .await;
    assert_eq!(seen["chat"]["rating"], "BAD");
}

/// A transfer to an agent with no app open and no phone would leave the customer waiting on
/// nobody: CONFLICT, nothing written. A supervisor or admin may force it; an agent may not.
async fn a_transfer_to_an_agent_nobody_can_reach_is_refused_unless_forced(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    named_agent(&server, &owner, "Ada", "AGENT").await;
    // Bob has an account but has never signed in: no app, no phone.
    let bob_id = named_agent(&server, &owner, "Bob", "AGENT").await;
    let ada = server.agent_token("ada@example.com").await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    assert_eq!(my_chats(&server, &ada).await, vec![chat.clone()]);

    let candidates = server
        .ok(
            Some(&ada),
            "query($c: ID!) { agentsForTransfer(chatId: $c) { agent { id } reachable routable } }",
            json!({"c": chat}),
        )
        .await["agentsForTransfer"]
        .clone();
    let bob = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"]["id"] == bob_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(bob["reachable"], false, "{candidates}");
    assert_eq!(bob["routable"], false);

    let before = transcript(&server, &owner, &chat).await;
    let refused = server
        .gql(Some(&ada), TRANSFER, json!({"c": chat, "a": bob_id}))
        .await;
    assert_eq!(error_code(&refused), "CONFLICT");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("Bob is not available"), "{message}");
    assert_eq!(
        transcript(&server, &owner, &chat).await,
        before,
        "nothing written"
    );
    assert_eq!(my_chats(&server, &ada).await, vec![chat.clone()]);
    assert_eq!(
        server
            .error_code(
                Some(&ada),
                TRANSFER,
                json!({"c": chat, "a": bob_id, "force": true})
            )
            .await,
        "FORBIDDEN",
        "only supervisors and admins force"
    );

    let forced = server
        .ok(
            Some(&owner),
            TRANSFER,
            json!({"c": chat, "a": bob_id, "force": true}),
        )
        .await;
    assert_eq!(forced["transferChat"]["assignee"]["id"], bob_id.as_str());
}

/// The customer reads "You are being transferred to Bob…" and then "Bob joined the chat".
async fn the_customer_hears_of_a_transfer_before_the_next_agent_joins(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    named_agent(&server, &owner, "Ada", "AGENT").await;
    let bob_id = named_agent(&server, &owner, "Bob", "AGENT").await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    server.ok(Some(&bob), NOT_ACCEPTING, json!({})).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    let mut stream = chat_events(&server, &customer, &chat, None).await;
    texts_until(&mut stream, "Ada joined the chat").await;

    server
        .ok(Some(&ada), TRANSFER, json!({"c": chat, "a": bob_id}))
        .await;
    let seen = texts_until(&mut stream, "Bob joined the chat").await;
    assert_eq!(
        seen,
        vec![
            "You are being transferred to Bob, who can see our whole conversation",
            "Bob joined the chat"
        ]
    );
}

/// An unanswered chat moves on by itself; the customer is told why and to whom, before the
/// next agent joins.
async fn an_agent_who_does_not_answer_is_named_and_the_chat_moves_on(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {autoTransferSeconds: 1}) { id } }",
            json!({}),
        )
        .await;
    named_agent(&server, &owner, "Ada", "AGENT").await;
    named_agent(&server, &owner, "Bob", "AGENT").await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    server.ok(Some(&bob), NOT_ACCEPTING, json!({})).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v").await;
    let (chat, _) = start_chat(&server, &customer, "hello?").await;
    assert_eq!(my_chats(&server, &ada).await, vec![chat.clone()]);
    let mut stream = chat_events(&server, &customer, &chat, None).await;
    texts_until(&mut stream, "Ada joined the chat").await;
    // Bob becomes free; Ada never answers.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let seen = texts_until(&mut stream, "Bob joined the chat").await;
    assert_eq!(
        seen,
        vec![
            "Ada is not answering; transferring you to Bob, who can see our whole conversation",
            "Bob joined the chat"
        ]
    );
}

/// An agent with the app open sees new and transferred chats there: no push rings their phone
/// too. Once the app is closed, the phone gets them.
async fn new_and_transferred_chats_push_only_to_agents_whose_app_is_closed(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let ada_id = named_agent(&server, &owner, "Ada", "AGENT").await;
    let bob_id = named_agent(&server, &owner, "Bob", "AGENT").await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    server.ok(Some(&bob), NOT_ACCEPTING, json!({})).await;
    let register = "mutation($t: String!) { registerPushDevice(input: {platform: ANDROID, token: $t, appId: \"com.example.agent\", environment: PRODUCTION}) { id } }";
    server
        .ok(Some(&ada), register, json!({"t": "ada-phone"}))
        .await;
    server
        .ok(Some(&bob), register, json!({"t": "bob-phone"}))
        .await;
    let pushes = |agent: String, kind: NotificationKind| {
        let store = server.store.clone();
        async move {
            store
                .push_jobs(&agent)
                .await
                .unwrap()
                .into_iter()
                .filter(|job| job.kind == kind)
                .count()
        }
    };

    let ada_app = agent_events(&server, &ada, None).await;
    let bob_app = agent_events(&server, &bob, None).await;
    let key = widget_key(&server, &owner).await;
    let first = visitor(&server, &key, "first").await;
    let (chat, _) = start_chat(&server, &first, "hello").await;
    assert_eq!(my_chats(&server, &ada).await, vec![chat.clone()]);
    assert_eq!(pushes(ada_id.clone(), NotificationKind::NewChat).await, 0);
    server
        .ok(Some(&ada), TRANSFER, json!({"c": chat, "a": bob_id}))
        .await;
    assert_eq!(
        pushes(bob_id.clone(), NotificationKind::TransferredChat).await,
        0
    );

    // Both put their phones away.
    drop(ada_app);
    drop(bob_app);
    for agent in [&ada_id, &bob_id] {
        let store = server.store.clone();
        eventually("the app's connection is gone", || {
            let store = store.clone();
            let agent = agent.clone();
            async move { !store.agent_live(&agent, chrono::Utc::now()).await.unwrap() }
        })
        .await;
    }
    let second = visitor(&server, &key, "second").await;
    let (chat, _) = start_chat(&server, &second, "hello").await;
    assert_eq!(pushes(ada_id.clone(), NotificationKind::NewChat).await, 1);
    server
        .ok(Some(&ada), TRANSFER, json!({"c": chat, "a": bob_id}))
        .await;
    assert_eq!(
        pushes(bob_id.clone(), NotificationKind::TransferredChat).await,
        1
    );
}

/// Deactivating an agent routes their chats on at once, like transfers: to a colleague with
/// room, else the queue; each customer is told before anyone joins.
async fn a_deactivated_agents_chats_move_on_at_once(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let ada_id = named_agent(&server, &owner, "Ada", "AGENT").await;
    let bob_id = named_agent(&server, &owner, "Bob", "AGENT").await;
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, chatLimit: 1}) { id } }",
            json!({"id": bob_id}),
        )
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    server.ok(Some(&bob), NOT_ACCEPTING, json!({})).await;
    let key = widget_key(&server, &owner).await;
    let mut customers = Vec::new();
    for n in 0..2 {
        let customer = visitor(&server, &key, &format!("c{n}")).await;
        let (chat, _) = start_chat(&server, &customer, "hello").await;
        customers.push((customer, chat));
    }
    assert_eq!(my_chats(&server, &ada).await.len(), 2);
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let mut streams = Vec::new();
    for (customer, chat) in &customers {
        let mut stream = chat_events(&server, customer, chat, None).await;
        texts_until(&mut stream, "Ada joined the chat").await;
        streams.push(stream);
    }

    server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { deactivateAgent(id: $id) { id } }",
            json!({"id": ada_id}),
        )
        .await;
    let mut statuses = Vec::new();
    for ((_, chat), stream) in customers.iter().zip(&mut streams) {
        let now = server
            .ok(
                Some(&owner),
                "query($c: ID!) { chat(id: $c) { status assignee { id } } }",
                json!({"c": chat}),
            )
            .await["chat"]
            .clone();
        let told = "Ada is no longer available; transferring you to a colleague, who can see our whole conversation";
        let next = if now["status"] == "ACTIVE" {
            assert_eq!(now["assignee"]["id"], bob_id.as_str());
            "Bob joined the chat"
        } else {
            assert_eq!(now["status"], "QUEUED");
            "All our agents are busy right now; you are in the queue and will be connected as soon as someone is free"
        };
        assert_eq!(texts_until(stream, next).await, vec![told, next]);
        statuses.push(now["status"].as_str().unwrap().to_owned());
    }
    statuses.sort();
    assert_eq!(statuses, ["ACTIVE", "QUEUED"], "Bob has room for one");
    assert_eq!(my_chats(&server, &bob).await.len(), 1);
}

/// At most `newChatsPerMinute` chats start in a minute, however many arrive at once; the rest
/// are RATE_LIMITED with a retry hint, and a customer's second start still continues their chat.
async fn a_flood_of_new_chats_is_capped_per_organization_and_minute(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let defaults = server
        .ok(
            Some(&owner),
            "{ organization { settings { newChatsPerMinute queueAbandonSeconds } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        defaults["organization"]["settings"],
        json!({"newChatsPerMinute": 60, "queueAbandonSeconds": 180})
    );
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {newChatsPerMinute: 5}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                "mutation { updateOrganizationSettings(input: {newChatsPerMinute: 0}) { id } }",
                json!({})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let key = widget_key(&server, &owner).await;
    let mut customers = Vec::new();
    for n in 0..12 {
        customers.push(visitor(&server, &key, &format!("flood{n}")).await);
    }
    let starts: Vec<_> = customers
        .iter()
        .map(|customer| {
            let request = server
                .http
                .post(&server.graphql_url)
                .bearer_auth(customer)
                .json(&json!({"query": "mutation { startChat(input: {message: \"hi\"}) { id } }"}));
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        })
        .collect();
    let mut bodies = Vec::new();
    for start in starts {
        bodies.push(start.await.unwrap());
    }
    assert_eq!(passed_or_rate_limited(&bodies), 5);
    // A widget asking now is told not to offer a chat.
    let availability = server
        .ok(
            None,
            "query($k: String!) { availability(widgetKey: $k) { online queueFull } }",
            json!({"k": key}),
        )
        .await;
    assert_eq!(
        availability["availability"],
        json!({"online": false, "queueFull": true})
    );
    let started = bodies
        .iter()
        .position(|b| b.get("errors").is_none())
        .unwrap();
    // A customer whose chat started may still write: their second start is a message.
    server
        .ok(
            Some(&customers[started]),
            "mutation { startChat(input: {message: \"still me\"}) { id } }",
            json!({}),
        )
        .await;
}

/// A queued chat whose customer has gone (no subscription, nothing done) leaves the queue with
/// a word in its transcript, and those behind move up; a customer whose chatEvents subscription
/// is open stays, however quiet.
async fn customers_who_left_leave_the_queue_and_those_connected_stay(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let owner = server.owner_token().await;
    server
        .ok(Some(&owner), "mutation { updateOrganizationSettings(input: {queueAbandonSeconds: 10, defaultChatLimit: 1}) { id } }", json!({}))
        .await;
    let key = widget_key(&server, &owner).await;
    let busy = visitor(&server, &key, "busy").await;
    let (_, status) = start_chat(&server, &busy, "first").await;
    assert_eq!(status, "ACTIVE");
    let gone = visitor(&server, &key, "gone").await;
    let (gone_chat, status) = start_chat(&server, &gone, "anyone?").await;
    assert_eq!(status, "QUEUED");
    let waiting = visitor(&server, &key, "waiting").await;
    let (waiting_chat, status) = start_chat(&server, &waiting, "I will wait").await;
    assert_eq!(status, "QUEUED");
    let mut stream = chat_events(&server, &waiting, &waiting_chat, None).await;
    assert_eq!(
        stream.next_event("QueuePositionChanged").await["position"],
        2
    );

    // The customer who has gone is out after 10 s; the connected one moves up.
    let status_of = |chat: String| {
        let server = &server;
        let owner = owner.clone();
        async move {
            server
                .ok(
                    Some(&owner),
                    "query($c: ID!) { chat(id: $c) { status } }",
                    json!({"c": chat}),
                )
                .await["chat"]["status"]
                .clone()
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while status_of(gone_chat.clone()).await != "CLOSED" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "out of the queue within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        stream.next_event("QueuePositionChanged").await["position"],
        1
    );
    assert_eq!(
        transcript(&server, &gone, &gone_chat).await.last().unwrap(),
        &(
            "CHAT_CLOSED".to_owned(),
            "The customer left the queue".to_owned()
        )
    );
    // Quiet for longer than the threshold, but connected: still waiting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = server
        .ok(
            Some(&owner),
            "query($c: ID!) { chat(id: $c) { status } queue { chat { id } } }",
            json!({"c": waiting_chat}),
        )
        .await;
    assert_eq!(still["chat"]["status"], "QUEUED");
    assert_eq!(still["queue"].as_array().unwrap().len(), 1);
}

/// `availability` answers for the group a widget will start its chat in, and says when the
/// queue is full: whenever it says online, startChat accepts; whenever not, startChat refuses.
async fn availability_answers_for_the_group_asked_and_agrees_with_start_chat(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let group = |name: &'static str| {
        let server = &server;
        let owner = owner.clone();
        async move {
            server
                .ok(
                    Some(&owner),
                    "mutation($n: String!) { createGroup(input: {name: $n}) { id } }",
                    json!({"n": name}),
                )
                .await["createGroup"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let support = group("Support").await;
    let sales = group("Sales").await;
    let ada_id = named_agent(&server, &owner, "Ada", "AGENT").await;
    let carol_id = named_agent(&server, &owner, "Carol", "AGENT").await;
    for (id, groups) in [(&ada_id, &support), (&carol_id, &sales)] {
        server
            .ok(Some(&owner), "mutation($id: ID!, $g: ID!) { updateAgent(input: {id: $id, groupIds: [$g], chatLimit: 1}) { id } }", json!({"id": id, "g": groups}))
            .await;
    }
    server.agent_token("ada@example.com").await;
    let carol = server.agent_token("carol@example.com").await;
    server.ok(Some(&carol), NOT_ACCEPTING, json!({})).await;
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {queueLimit: 1}) { id } }",
            json!({}),
        )
        .await;
    let key = widget_key(&server, &owner).await;
    let availability = |group: Option<String>| {
        let server = &server;
        let key = key.clone();
        async move {
            server
                .ok(None, "query($k: String!, $g: ID) { availability(widgetKey: $k, groupId: $g) { online queueFull queueLength } }", json!({"k": key, "g": group}))
                .await["availability"]
                .clone()
        }
    };
    let start = |visitor_id: &'static str, group: String| {
        let server = &server;
        let key = key.clone();
        async move {
            let customer = visitor(server, &key, visitor_id).await;
            server
                .gql(Some(&customer), "mutation($g: ID) { startChat(input: {message: \"hi\", groupId: $g}) { status } }", json!({"g": group}))
                .await
        }
    };

    // Sales has nobody accepting chats, Support has Ada: each group answers for itself.
    let offline = json!({"online": false, "queueFull": false, "queueLength": 0});
    assert_eq!(availability(Some(sales.clone())).await, offline);
    assert_eq!(
        error_code(&start("s1", sales.clone()).await),
        "AGENTS_OFFLINE"
    );
    let free = json!({"online": true, "queueFull": false, "queueLength": 0});
    assert_eq!(availability(Some(support.clone())).await, free);
    assert_eq!(availability(None).await, free);
    assert_eq!(
        server
            .error_code(
                None,
                "query($k: String!) { availability(widgetKey: $k, groupId: \"nope\") { online } }",
                json!({"k": key})
            )
            .await,
        "BAD_USER_INPUT"
    );

    // Ada takes one chat (her limit); the queue takes one more; then it is full.
    assert_eq!(
        start("p1", support.clone()).await["data"]["startChat"]["status"],
        "ACTIVE"
    );
    assert_eq!(availability(Some(support.clone())).await["online"], true);
    assert_eq!(
        start("p2", support.clone()).await["data"]["startChat"]["status"],
        "QUEUED"
    );
    let full = json!({"online": false, "queueFull": true, "queueLength": 1});
    assert_eq!(availability(Some(support.clone())).await, full);
    assert_eq!(
        error_code(&start("p3", support.clone()).await),
        "AGENTS_OFFLINE"
    );
}

/// One address cannot use up the organization's new chats alone by making visitor after
/// visitor: its chat starts are capped, counted exactly when they arrive together.
async fn one_address_starts_a_bounded_number_of_chats_whatever_visitors_it_makes(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.chat_starts_per_address_per_minute = 3).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let mut starts = Vec::new();
    for n in 0..8 {
        let customer = visitor(&server, &key, &format!("sock{n}")).await;
        let request = server
            .http
            .post(&server.graphql_url)
            .bearer_auth(customer)
            .json(&json!({"query": "mutation { startChat(input: {message: \"hi\"}) { id } }"}));
        starts.push(request);
    }
    let starts: Vec<_> = starts
        .into_iter()
        .map(|request| {
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        })
        .collect();
    let mut bodies = Vec::new();
    for start in starts {
        bodies.push(start.await.unwrap());
    }
    assert_eq!(passed_or_rate_limited(&bodies), 3);
}
