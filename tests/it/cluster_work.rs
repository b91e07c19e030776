//! Work that must happen once per cluster, and limits shared by all nodes: three nodes on one
//! Postgres database (in-process nodes that share nothing but the database). The chat timers
//! fire once, whichever nodes the chats started on; their lease moves on when its holder shuts
//! down or dies; a queue change is announced once; a visitor with pages on three nodes is
//! greeted once; login failures and customer budgets are counted across the nodes.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::Config;
use tokio::time::Instant;

use crate::support::{
    Backend, OWNER_EMAIL, OWNER_PASSWORD, TestServer, agent_events, error_code, start_chat,
    visitor, widget_key,
};
use crate::visitors::{open_page, quick, visitor_on};

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const LOGIN: &str = "mutation($e: String!, $p: String!) {
    login(input: {email: $e, password: $p}) { accessToken } }";
const SEND: &str =
    "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }";

/// A one-second lease, so takeovers take a second or two.
fn short_lease(config: &mut Config) {
    config.cluster_lease = Duration::from_secs(1);
    config.timer_interval = Duration::from_millis(100);
}

/// Three nodes on one fresh Postgres database, or `None` (with a note) without Postgres.
async fn three_nodes(configure: impl FnOnce(&mut Config)) -> Option<[TestServer; 3]> {
    let backend = Backend::postgres()?;
    let first = TestServer::start_with(backend, configure).await;
    let second = first.another_node().await;
    let third = first.another_node().await;
    Some([first, second, third])
}

/// An agent who accepts chats (up to `limit`) with their token; the owner stops taking
/// chats.
async fn one_agent(server: &TestServer, limit: i64) -> (String, String, String) {
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let id = server
        .ok(
            Some(&owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": "ada@example.com", "name": "Ada", "password": "agent-password-1", "chatLimit": limit}}),
        )
        .await["createAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = server.agent_token("ada@example.com").await;
    (owner, id, token)
}

async fn settings(server: &TestServer, owner: &str, input: Value) {
    server
        .ok(
            Some(owner),
            "mutation($input: UpdateOrganizationSettingsInput!) { updateOrganizationSettings(input: $input) { id } }",
            json!({"input": input}),
        )
        .await;
}

/// Whether the node says (in /metrics) it holds `lease`.
async fn holds(server: &TestServer, lease: &str) -> bool {
    let wanted = format!("switchboard_cluster_lease_held{{lease=\"{lease}\",");
    server
        .metrics()
        .await
        .lines()
        .any(|line| line.starts_with(&wanted) && line.ends_with(" 1"))
}

/// The indexes of the nodes that say they hold `lease`.
async fn holders(nodes: &[&TestServer], lease: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        if holds(node, lease).await {
            found.push(n);
        }
    }
    found
}

/// Waits until exactly one of `nodes` holds `lease`; its index.
async fn one_holder(nodes: &[&TestServer], lease: &str, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let found = holders(nodes, lease).await;
        if let [one] = found[..] {
            return one;
        }
        assert!(
            Instant::now() < deadline,
            "not exactly one holder of {lease} within {within:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lease's holder as the database has it.
async fn lease_holder(server: &TestServer, lease: &str) -> Option<String> {
    server
        .store
        .leases()
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.name == lease)
        .map(|l| l.holder)
}

async fn count(server: &TestServer, query: &str) -> i64 {
    server.query_scalar(query).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_timers_fire_once_with_three_nodes() {
    let Some(nodes) = three_nodes(short_lease).await else {
        return;
    };
    let (owner, agent_id, agent) = one_agent(&nodes[0], 10).await;
    // Red after a second unanswered, closed after three quiet seconds.
    settings(
        &nodes[0],
        &owner,
        json!({"waitingLongSeconds": 1, "autoCloseSeconds": 3, "autoTransferSeconds": 3600,
            "customerIdleSeconds": 3600}),
    )
    .await;
    // The agent's app is connected to every node.
    let _apps = [
        agent_events(&nodes[0], &agent, None).await,
        agent_events(&nodes[1], &agent, None).await,
        agent_events(&nodes[2], &agent, None).await,
    ];
    let key = widget_key(&nodes[0], &owner).await;
    // Two chats started on each node: every node's timer bell rings.
    let mut chats = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for m in 0..2 {
            let customer = visitor(node, &key, &format!("c{n}-{m}")).await;
            let (chat, status) = start_chat(node, &customer, "hello?").await;
            assert_eq!(status, "ACTIVE");
            chats.push(chat);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = count(
            &nodes[0],
            "SELECT COUNT(*) FROM chats WHERE status <> 'CLOSED'",
        )
        .await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} chats still open after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let a second (and third) pass find nothing more to do.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for chat in &chats {
        let closes = count(
            &nodes[0],
            &format!(
                "SELECT COUNT(*) FROM chat_events WHERE chat_id = '{chat}' AND kind = 'CHAT_CLOSED'"
            ),
        )
        .await;
        assert_eq!(closes, 1, "chat {chat} closed once");
        for (kind, expected) in [("ATTENTION_CHANGED", 1), ("CHAT_CLOSED", 1)] {
            let entries = count(
                &nodes[0],
                &format!(
                    "SELECT COUNT(*) FROM agent_feed WHERE agent_id = '{agent_id}' \
                     AND chat_id = '{chat}' AND kind = '{kind}'"
                ),
            )
            .await;
            assert_eq!(entries, expected, "{kind} entries of chat {chat}");
        }
    }
    // One node did it: the one holding the lease, as the database and its metrics say.
    let refs = [&nodes[0], &nodes[1], &nodes[2]];
    let holder = one_holder(&refs, "chat-timers", Duration::from_secs(1)).await;
    assert!(lease_holder(&nodes[0], "chat-timers").await.is_some());
    assert_eq!(holders(&refs, "chat-timers").await, vec![holder]);
    let [first, second, third] = nodes;
    drop(third);
    drop(second);
    drop(first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_timers_lease_moves_on_when_its_holder_shuts_down_or_dies() {
    let Some(mut nodes) = three_nodes(short_lease).await else {
        return;
    };
    let (owner, _, agent) = one_agent(&nodes[0], 10).await;
    settings(
        &nodes[0],
        &owner,
        json!({"autoCloseSeconds": 1, "waitingLongSeconds": 100, "autoTransferSeconds": 100}),
    )
    .await;
    let key = widget_key(&nodes[0], &owner).await;
    let refs = [&nodes[0], &nodes[1], &nodes[2]];
    let first_holder = one_holder(&refs, "chat-timers", Duration::from_secs(3)).await;

    // The holder shuts down: it gives the lease back, and another node takes it at its next
    // try (a third of the lease).
    nodes[first_holder].shut_down().await;
    let stopped_at = Instant::now();
    let others: Vec<usize> = (0..3).filter(|n| *n != first_holder).collect();
    let other_refs = [&nodes[others[0]], &nodes[others[1]]];
    let second = others[one_holder(&other_refs, "chat-timers", Duration::from_secs(3)).await];
    assert!(
        stopped_at.elapsed() < Duration::from_millis(1500),
        "taken over after {:?}",
        stopped_at.elapsed()
    );
    // And the timers work there: an abandoned chat closes by itself.
    let _app = agent_events(&nodes[second], &agent, None).await;
    let customer = visitor(&nodes[second], &key, "gone").await;
    let (chat, _) = start_chat(&nodes[second], &customer, "hello").await;
    eventually_closed(&nodes[second], &chat).await;

    // A holder that dies keeps the lease until it runs out (here: one that renewed just
    // now), and only then does another node take it.
    nodes[second]
        .execute_sql(
            "UPDATE cluster_leases SET holder = 'dead-node', \
             expires_at = CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) + 2000 \
             WHERE name = 'chat-timers'",
        )
        .await;
    let died_at = Instant::now();
    let mut taken = None;
    while died_at.elapsed() < Duration::from_secs(5) {
        let holder = lease_holder(&nodes[second], "chat-timers").await;
        if holder.as_deref() != Some("dead-node") {
            taken = Some(died_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let taken = taken.expect("another node took the lease within 5 s");
    // Not before it ran out (2 s), and within a third of the lease (and a little) after.
    assert!(
        taken >= Duration::from_millis(1900),
        "taken after {taken:?}"
    );
    assert!(taken < Duration::from_millis(3000), "taken after {taken:?}");
    let other_refs = [&nodes[others[0]], &nodes[others[1]]];
    let third = others[one_holder(&other_refs, "chat-timers", Duration::from_secs(2)).await];
    let customer = visitor(&nodes[third], &key, "gone-too").await;
    let (chat, _) = start_chat(&nodes[third], &customer, "hello").await;
    eventually_closed(&nodes[third], &chat).await;
    let [first, second, third] = nodes;
    drop(third);
    drop(second);
    drop(first);
}

async fn eventually_closed(server: &TestServer, chat: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let closed = server
            .query_scalar(&format!(
                "SELECT COUNT(*) FROM chats WHERE id = '{chat}' AND status = 'CLOSED'"
            ))
            .await;
        if closed == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "chat {chat} not closed in 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queue_change_is_announced_once_by_the_node_that_made_it() {
    let Some(nodes) = three_nodes(short_lease).await else {
        return;
    };
    let (owner, _, agent) = one_agent(&nodes[0], 1).await;
    let key = widget_key(&nodes[0], &owner).await;
    let _app = agent_events(&nodes[0], &agent, None).await;
    let first = visitor(&nodes[0], &key, "first").await;
    assert_eq!(start_chat(&nodes[0], &first, "hi").await.1, "ACTIVE");
    // The owner watches the queue from every node.
    let mut watchers = [
        agent_events(&nodes[0], &owner, None).await,
        agent_events(&nodes[1], &owner, None).await,
        agent_events(&nodes[2], &owner, None).await,
    ];
    // What the first chat's start announced (a moment after it) is not this change's.
    for watcher in watchers.iter_mut() {
        watcher.quiet_for(Duration::from_millis(300)).await;
    }
    let second = visitor(&nodes[1], &key, "second").await;
    assert_eq!(start_chat(&nodes[1], &second, "me too").await.1, "QUEUED");
    let mut announcements = Vec::new();
    for (n, watcher) in watchers.iter_mut().enumerate() {
        for message in watcher.quiet_for(Duration::from_millis(1500)).await {
            let event = &message["payload"]["data"]["agentEvents"];
            // A chat that joined the queue is announced as ChatQueued, other changes as
            // QueueChanged.
            if event["__typename"] == "QueueChanged" || event["__typename"] == "ChatQueued" {
                announcements.push((n, event["queueLength"].clone()));
            }
        }
    }
    assert_eq!(announcements, vec![(1, json!(1))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_visitor_with_pages_on_three_nodes_is_greeted_once() {
    let Some(nodes) = three_nodes(quick).await else {
        return;
    };
    let owner = nodes[0].owner_token().await;
    let key = widget_key(&nodes[0], &owner).await;
    nodes[0]
        .ok(
            Some(&owner),
            "mutation($input: GreetingRuleInput!) { createGreetingRule(input: $input) { id } }",
            json!({"input": {"name": "Everyone", "text": "Welcome!", "referrerContains": "search.test"}}),
        )
        .await;
    let mut customers = Vec::new();
    let mut pages = Vec::new();
    for n in 0..5 {
        let (token, customer) =
            visitor_on(&nodes[0], &key, &format!("v{n}"), "https://shop.test/").await;
        // Three tabs, one on each node, opened together.
        let opened = futures_util::future::join3(
            open_page(&nodes[0], &token),
            open_page(&nodes[1], &token),
            open_page(&nodes[2], &token),
        )
        .await;
        pages.push(opened);
        customers.push(customer);
    }
    // Every node's rules have looked (on arrival, and on their passes since).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for customer in &customers {
        let greetings = count(
            &nodes[0],
            &format!("SELECT COUNT(*) FROM greetings WHERE customer_id = '{customer}'"),
        )
        .await;
        assert_eq!(greetings, 1, "visitor {customer} greeted once");
    }
    drop(pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_failures_are_counted_across_three_nodes() {
    let Some(nodes) = three_nodes(|c| c.login_failures_per_account = 5).await else {
        return;
    };
    // Wrong passwords spread over the nodes: refused at the same total as on one node.
    for attempt in 0..5 {
        let node = &nodes[attempt % 3];
        let body = node
            .gql(
                None,
                LOGIN,
                json!({"e": OWNER_EMAIL, "p": "wrong-password"}),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}");
    }
    for node in &nodes {
        let body = node
            .gql(None, LOGIN, json!({"e": OWNER_EMAIL, "p": OWNER_PASSWORD}))
            .await;
        assert_eq!(error_code(&body), "RATE_LIMITED");
        assert!(body["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() > Some(0));
    }
    let counted = count(
        &nodes[0],
        "SELECT CAST(attempts AS BIGINT) FROM rate_counters WHERE scope = 'login_account'",
    )
    .await;
    assert_eq!(counted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_budget_holds_across_three_nodes_under_concurrency() {
    let Some(nodes) = three_nodes(|c| c.customer_messages_per_minute = 8).await else {
        return;
    };
    let owner = nodes[0].owner_token().await;
    let key = widget_key(&nodes[0], &owner).await;
    let customer = visitor(&nodes[0], &key, "flooder").await;
    let (chat, _) = start_chat(&nodes[0], &customer, "hello").await;
    // 30 messages at once, spread over the three nodes: 7 pass (startChat drew one).
    let requests: Vec<_> = (0..30)
        .map(|n| {
            let node = &nodes[n % 3];
            let request = node
                .http
                .post(&node.graphql_url)
                .bearer_auth(&customer)
                .json(&json!({"query": SEND, "variables": {"c": chat, "t": format!("m{n}")}}));
            tokio::spawn(
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() },
            )
        })
        .collect();
    let mut passed = 0;
    for request in requests {
        let body = request.await.unwrap();
        if body.get("errors").is_none() {
            passed += 1;
        } else {
            assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
        }
    }
    assert_eq!(passed, 7);
    // The agent side draws on no budget: the owner answers from any node.
    for node in &nodes {
        node.ok(Some(&owner), SEND, json!({"c": chat, "t": "answer"}))
            .await;
    }
}
