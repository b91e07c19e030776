//! What a change locks: a message locks its chat, not the organization, so one organization's
//! chats commit side by side on Postgres; routing still locks the organization, so the queue
//! stays exact on several nodes; and the sequences (each chat's transcript, each agent's feed)
//! stay gapless under concurrent messages.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;
use switchboard::domain::{ChatEventKind, FeedKind};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, start_chat, visitor, widget_key};

const SEND: &str = "mutation($c: ID!, $t: String!, $k: String) { sendMessage(input: {chatId: $c, text: $t, clientId: $k}) { id } }";
const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";

on_both_backends!(concurrent_messages_to_one_agent_in_many_chats_keep_every_sequence_gapless,);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_in_two_chats_of_one_organization_commit_side_by_side() {
        if let Some(backend) = crate::support::Backend::postgres() {
            super::messages_in_two_chats_of_one_organization_commit_side_by_side(backend).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_on_two_nodes_with_messages_between_fills_every_slot_once() {
        if let Some(backend) = crate::support::Backend::postgres() {
            super::a_burst_on_two_nodes_with_messages_between_fills_every_slot_once(backend).await;
        }
    }
}

/// Creates an agent of `role` who takes `limit` chats; their id and token.
async fn agent(
    server: &TestServer,
    owner: &str,
    email: &str,
    role: &str,
    limit: i64,
) -> (String, String) {
    let data = server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": email, "password": "agent-password-1",
                   "role": role, "chatLimit": limit}}),
        )
        .await;
    let id = data["createAgent"]["id"].as_str().unwrap().to_owned();
    (id, server.agent_token(email).await)
}

async fn my_chats(server: &TestServer, token: &str) -> Vec<String> {
    server
        .ok(Some(token), "{ myChats { id } }", json!({}))
        .await["myChats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Sends a message on `server` as `token`; the response body.
async fn send(http: &reqwest::Client, url: &str, token: &str, chat: &str, text: &str) -> Value {
    http.post(url)
        .bearer_auth(token)
        .json(&json!({"query": SEND, "variables": {"c": chat, "t": text, "k": text}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until some session of the server's database waits for a lock; panics after 10 s.
async fn until_a_session_waits_for_a_lock(db: &mut sqlx::PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *db)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the message in the locked chat never waited for its chat"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two chats of one organization, with one agent. While another transaction holds chat A's
/// row, a message in chat A waits for it, and a message in chat B (the same organization,
/// the same agent) commits meanwhile: messages lock their chat, not the organization.
async fn messages_in_two_chats_of_one_organization_commit_side_by_side(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let (_, ada) = agent(&server, &owner, "ada@example.com", "AGENT", 5).await;
    let key = widget_key(&server, &owner).await;
    let customer_a = visitor(&server, &key, "a").await;
    let customer_b = visitor(&server, &key, "b").await;
    let (chat_a, status_a) = start_chat(&server, &customer_a, "hello from a").await;
    let (chat_b, status_b) = start_chat(&server, &customer_b, "hello from b").await;
    assert_eq!((status_a.as_str(), status_b.as_str()), ("ACTIVE", "ACTIVE"));

    let url = server.postgres_url().expect("a Postgres server").to_owned();
    let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT id FROM chats WHERE id = $1 FOR UPDATE")
        .bind(&chat_a)
        .execute(&mut holder)
        .await
        .unwrap();

    let waiting = {
        let (http, url, token, chat) = (
            server.http.clone(),
            server.graphql_url.clone(),
            customer_a.clone(),
            chat_a.clone(),
        );
        tokio::spawn(async move { send(&http, &url, &token, &chat, "a waits").await })
    };
    until_a_session_waits_for_a_lock(&mut watcher).await;

    // Chat B: the agent and then the customer write while chat A's message is in progress.
    for (token, text) in [(&ada, "b by the agent"), (&customer_b, "b by the customer")] {
        let body = tokio::time::timeout(
            Duration::from_secs(10),
            send(&server.http, &server.graphql_url, token, &chat_b, text),
        )
        .await
        .expect("a message in another chat of the organization does not wait");
        assert!(body["errors"].is_null(), "{body}");
    }
    assert!(
        !waiting.is_finished(),
        "the message in chat A waits for its chat's row"
    );

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("chat A's message commits once its row is free")
        .unwrap();
    assert!(body["errors"].is_null(), "{body}");

    for (chat, expected) in [
        (&chat_a, vec!["hello from a", "a waits"]),
        (
            &chat_b,
            vec!["hello from b", "b by the agent", "b by the customer"],
        ),
    ] {
        let events = server.store.chat_events(chat, 0, 100, true).await.unwrap();
        let texts: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == ChatEventKind::Message)
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(texts, expected);
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=events.len() as i64).collect::<Vec<_>>());
    }
}

/// Two supervisors who also take chats, six chats each: every chat is heard by both (its
/// assignee, and the other as a supervisor of every group), so messages in different chats
/// take the same two feed counters, each chat's in its own order if nothing ordered them.
/// Customers and agents write in all twelve chats at once: every message is stored once, each
/// chat's transcript is numbered 1, 2, 3 … and so is each agent's feed, which has every
/// message exactly once.
async fn concurrent_messages_to_one_agent_in_many_chats_keep_every_sequence_gapless(
    backend: Backend,
) {
    const CHATS: usize = 12;
    const EACH: usize = 6;
    let server = TestServer::start_with(backend, |c| c.customer_messages_per_minute = 10_000).await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let first = agent(&server, &owner, "sam@example.com", "SUPERVISOR", 6).await;
    let second = agent(&server, &owner, "sue@example.com", "SUPERVISOR", 6).await;
    let tokens: HashMap<String, String> = [first.clone(), second.clone()].into_iter().collect();
    let key = widget_key(&server, &owner).await;
    let mut chats = Vec::new();
    for n in 0..CHATS {
        let customer = visitor(&server, &key, &format!("c{n}")).await;
        let (chat, status) = start_chat(&server, &customer, &format!("start {n}")).await;
        assert_eq!(status, "ACTIVE");
        chats.push((chat, customer));
    }
    let mut assignees = HashMap::new();
    for (id, token) in &tokens {
        let mine = my_chats(&server, token).await;
        assert_eq!(mine.len(), CHATS / 2, "each supervisor has half the chats");
        for chat in mine {
            assignees.insert(chat, id.clone());
        }
    }

    let mut sends = tokio::task::JoinSet::new();
    for (n, (chat, customer)) in chats.iter().enumerate() {
        let agent_token = tokens[&assignees[chat]].clone();
        for m in 0..EACH {
            for (who, token) in [
                ("customer", customer.clone()),
                ("agent", agent_token.clone()),
            ] {
                let (http, url, chat) = (
                    server.http.clone(),
                    server.graphql_url.clone(),
                    chat.clone(),
                );
                let text = format!("{who} {n}.{m}");
                sends.spawn(async move {
                    let body = send(&http, &url, &token, &chat, &text).await;
                    (text, body)
                });
            }
        }
    }
    let mut sent = HashSet::new();
    while let Some(done) = sends.join_next().await {
        let (text, body) = done.unwrap();
        assert!(body["errors"].is_null(), "{text}: {body}");
        sent.insert(text);
    }
    assert_eq!(sent.len(), CHATS * EACH * 2);

    let mut messages = HashMap::new();
    for (chat, _) in &chats {
        let events = server.store.chat_events(chat, 0, 1000, true).await.unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as i64).collect::<Vec<_>>(),
            "chat {chat}'s transcript is numbered without gaps"
        );
        let written: Vec<_> = events
            .iter()
            .filter(|e| e.kind == ChatEventKind::Message)
            .collect();
        assert_eq!(
            written.len(),
            1 + EACH * 2,
            "every message of chat {chat}, once"
        );
        for event in written {
            messages.insert(event.id.clone(), event.text.clone());
        }
    }
    for text in &sent {
        assert!(
            messages.values().any(|t| t == text),
            "{text} is in its transcript"
        );
    }

    for id in tokens.keys() {
        let feed = server.store.feed(id, 0, 100_000).await.unwrap();
        let seqs: Vec<i64> = feed.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=feed.len() as i64).collect::<Vec<_>>(),
            "the feed is numbered without gaps"
        );
        assert_eq!(server.store.feed_seq(id).await.unwrap(), feed.len() as i64);
        let mut heard = HashMap::new();
        for entry in feed.iter().filter(|e| e.kind == FeedKind::MessageAdded) {
            let event = entry
                .event
                .as_ref()
                .expect("a message entry has its message");
            *heard.entry(event.id.clone()).or_insert(0) += 1;
        }
        for (event, text) in &messages {
            assert_eq!(
                heard.get(event),
                Some(&1),
                "each agent hears {text} exactly once"
            );
        }
    }
}

/// 300 chats start at once on two nodes of one Postgres while the customers whose chats
/// start write their next message at once: exactly 30 assigned, 270 queued, none twice, and
/// every message is in its transcript.
async fn a_burst_on_two_nodes_with_messages_between_fills_every_slot_once(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.visitor_sessions_per_minute = 1000;
        c.customer_messages_per_minute = 10_000;
    })
    .await;
    let node_b = server.another_node().await;
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    server
        .ok(
            Some(&owner),
            "mutation($input: UpdateOrganizationSettingsInput!) { updateOrganizationSettings(input: $input) { id } }",
            // Starting 300 visitors takes a while on a busy machine: the agents, who sign
            // in next, stay reachable meanwhile.
            json!({"input": {"queueLimit": 1000, "newChatsPerMinute": 1000,
                             "presenceGraceSeconds": 86400}}),
        )
        .await;
    let mut team = Vec::new();
    for n in 0..10 {
        team.push(
            agent(
                &server,
                &owner,
                &format!("agent{n}@example.com"),
                "AGENT",
                3,
            )
            .await,
        );
    }
    let key = widget_key(&server, &owner).await;
    let mut customers = Vec::new();
    for n in 0..300 {
        customers.push(visitor(&server, &key, &format!("burst{n}")).await);
    }
    let starts = customers.iter().enumerate().map(|(n, customer)| {
        let node = if n % 2 == 0 { &server } else { &node_b };
        let (http, url, customer) = (
            node.http.clone(),
            node.graphql_url.clone(),
            customer.clone(),
        );
        tokio::spawn(async move {
            let body: Value = http
                .post(&url)
                .bearer_auth(&customer)
                .json(&json!({"query": "mutation { startChat(input: {message: \"help\"}) { id status } }"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let chat = &body["data"]["startChat"];
            let (Some(id), Some(status)) = (chat["id"].as_str(), chat["status"].as_str()) else {
                panic!("{body}");
            };
            let reply = send(&http, &url, &customer, id, &format!("more from {n}")).await;
            assert!(reply["errors"].is_null(), "{reply}");
            (id.to_owned(), status.to_owned(), n)
        })
    });
    let mut active = 0;
    let mut queued = 0;
    let mut started = Vec::new();
    for start in starts {
        let (id, status, n) = start.await.unwrap();
        match status.as_str() {
            "ACTIVE" => active += 1,
            "QUEUED" => queued += 1,
            other => panic!("unexpected status {other}"),
        }
        started.push((id, n));
    }
    assert_eq!((active, queued), (30, 270));

    let mut assigned = HashSet::new();
    for (_, token) in &team {
        let chats = my_chats(&node_b, token).await;
        assert_eq!(chats.len(), 3, "every agent is exactly full");
        for chat in chats {
            assert!(assigned.insert(chat), "assigned twice");
        }
    }
    assert_eq!(assigned.len(), 30);
    for (chat, n) in &started {
        let events = server.store.chat_events(chat, 0, 100, true).await.unwrap();
        let texts: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == ChatEventKind::Message)
            .map(|e| e.text.as_str())
            .collect();
        assert_eq!(texts, ["help", format!("more from {n}").as_str()]);
    }
    drop(node_b);
}
