//! Abuse limits on customer operations, the queue's protection, and routing that never sends a
//! chat into the void: transfers, deactivation, availability per group, pushes only to agents
//! who are away, and what the customer is told.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, error_code, start_chat, visitor, widget_key};

on_both_backends!(
    every_customer_operation_has_a_budget_that_holds_under_concurrency,
    a_chat_keeps_one_rating_and_one_rating_entry,
);

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
