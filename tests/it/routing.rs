//! Routing rules: who gets a chat, the queue under a burst, and the timers (auto-transfer,
//! attention, auto-close).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, agent_events, start_chat, visitor, widget_key};

const NOT_ACCEPTING: &str = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
const MY_CHATS: &str = "{ myChats { id status attention } }";

/// A server whose owner does not take chats, with `agents` agents signed in.
async fn team(server: &TestServer, agents: usize, limit: i64) -> (String, Vec<(String, String)>) {
    let owner = server.owner_token().await;
    server.ok(Some(&owner), NOT_ACCEPTING, json!({})).await;
    let mut team = Vec::new();
    for n in 0..agents {
        let email = format!("agent{n}@example.com");
        let data = server
            .ok(
                Some(&owner),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": format!("Agent {n}"), "password": "agent-password-1", "chatLimit": limit}}),
            )
            .await;
        let id = data["createAgent"]["id"].as_str().unwrap().to_owned();
        team.push((id, server.agent_token(&email).await));
    }
    (owner, team)
}

async fn my_chats(server: &TestServer, token: &str) -> Vec<Value> {
    server.ok(Some(token), MY_CHATS, json!({})).await["myChats"]
        .as_array()
        .unwrap()
        .clone()
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

async fn the_least_loaded_agent_gets_the_chat_and_ties_go_to_the_longest_waiting(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, team) = team(&server, 3, 3).await;
    let key = widget_key(&server, &owner).await;
    // Three chats spread one each, in order of who waited longest (never assigned: by id).
    let mut first_round = Vec::new();
    for n in 0..3 {
        let customer = visitor(&server, &key, &format!("c{n}")).await;
        start_chat(&server, &customer, "hello").await;
        first_round.push(customer);
    }
    for (_, token) in &team {
        assert_eq!(
            my_chats(&server, token).await.len(),
            1,
            "one chat each before anyone gets two"
        );
    }
    // Agent 1 closes theirs: they are the least loaded and get the next chat.
    let agent1_chat = my_chats(&server, &team[1].1).await[0]["id"].clone();
    server
        .ok(
            Some(&team[1].1),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": agent1_chat}),
        )
        .await;
    let customer = visitor(&server, &key, "c3").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    assert_eq!(my_chats(&server, &team[1].1).await[0]["id"], chat.as_str());
    // All at one chat again: the tie goes to the one longest without an assignment (agent 0).
    let customer = visitor(&server, &key, "c4").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    assert!(
        my_chats(&server, &team[0].1)
            .await
            .iter()
            .any(|c| c["id"] == chat.as_str())
    );
}

async fn agents_not_accepting_chats_get_none_and_keep_theirs(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, team) = team(&server, 2, 3).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "first").await;
    let (first, _) = start_chat(&server, &customer, "hello").await;
    let holder = if my_chats(&server, &team[0].1).await.is_empty() {
        &team[1]
    } else {
        &team[0]
    };
    let other = if holder.0 == team[0].0 {
        &team[1]
    } else {
        &team[0]
    };
    server.ok(Some(&holder.1), NOT_ACCEPTING, json!({})).await;
    for n in 0..3 {
        let customer = visitor(&server, &key, &format!("next{n}")).await;
        start_chat(&server, &customer, "hello").await;
    }
    assert_eq!(my_chats(&server, &other.1).await.len(), 3);
    let kept = my_chats(&server, &holder.1).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["id"], first.as_str());
    server
        .ok(
            Some(&holder.1),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"still here\"}) { id } }",
            json!({"c": first}),
        )
        .await;
}

on_both_backends!(
    a_burst_of_300_chats_fills_every_slot_once_and_queues_the_rest,
    a_full_queue_turns_customers_away_and_a_second_start_continues_the_open_chat,
    the_least_loaded_agent_gets_the_chat_and_ties_go_to_the_longest_waiting,
    agents_not_accepting_chats_get_none_and_keep_theirs,
    an_unanswered_chat_moves_to_another_agent_and_never_back,
    typing_stops_the_auto_transfer_clock,
    attention_turns_red_then_normal_then_grey_and_idle_chats_free_a_slot,
    abandoned_chats_close_by_themselves,
    settings_are_validated_and_admin_only,
    take_join_and_transfer_to_a_group,
);

/// 300 chats started at once against 10 agents with a limit of 3: exactly 30 assigned, 270
/// queued, none assigned twice; closing a chat pulls the oldest queued chat to that agent.
async fn a_burst_of_300_chats_fills_every_slot_once_and_queues_the_rest(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.visitor_sessions_per_minute = 1000).await;
    let (owner, team) = team(&server, 10, 3).await;
    // A burst this size is what the per-minute cap on new chats exists to stop; here it is
    // the test, so the organization allows it.
    settings(
        &server,
        &owner,
        json!({"queueLimit": 1000, "newChatsPerMinute": 1000}),
    )
    .await;
    let key = widget_key(&server, &owner).await;
    let mut customers = Vec::new();
    for n in 0..300 {
        customers.push(visitor(&server, &key, &format!("burst{n}")).await);
    }
    let starts = customers.iter().map(|customer| {
        let http = server.http.clone();
        let url = server.graphql_url.clone();
        let customer = customer.clone();
        tokio::spawn(async move {
            let body: Value = http
                .post(url)
                .bearer_auth(customer)
                .json(&json!({"query": "mutation { startChat(input: {message: \"help\"}) { id status } }"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["startChat"]["status"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
        })
    });
    let mut active = 0;
    let mut queued = 0;
    for start in starts {
        match start.await.unwrap().as_str() {
            "ACTIVE" => active += 1,
            "QUEUED" => queued += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((active, queued), (30, 270));

    let mut assigned = HashSet::new();
    for (_, token) in &team {
        let chats = my_chats(&server, token).await;
        assert_eq!(chats.len(), 3, "every agent is exactly full");
        for chat in chats {
            assert!(
                assigned.insert(chat["id"].as_str().unwrap().to_owned()),
                "assigned twice"
            );
        }
    }
    assert_eq!(assigned.len(), 30);
    let queue = server
        .ok(
            Some(&team[0].1),
            "{ queue { chat { id } position } }",
            json!({}),
        )
        .await["queue"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(queue.len(), 270);
    assert_eq!(queue[0]["position"], 1);

    let oldest = queue[0]["chat"]["id"].clone();
    let (_, agent) = &team[4];
    let closing = my_chats(&server, agent).await[0]["id"].clone();
    server
        .ok(
            Some(agent),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": closing}),
        )
        .await;
    let now = my_chats(&server, agent).await;
    assert_eq!(now.len(), 3);
    assert!(
        now.iter().any(|c| c["id"] == oldest),
        "the oldest queued chat went to the agent with room"
    );
}

/// One agent with room for one chat and a queue of one: the third customer is told to leave
/// an offline message, and a customer who starts again keeps their place and chat.
async fn a_full_queue_turns_customers_away_and_a_second_start_continues_the_open_chat(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, _team) = team(&server, 1, 1).await;
    settings(&server, &owner, json!({"queueLimit": 1})).await;
    let key = widget_key(&server, &owner).await;
    let (first, second, third) = (
        visitor(&server, &key, "q1").await,
        visitor(&server, &key, "q2").await,
        visitor(&server, &key, "q3").await,
    );
    assert_eq!(start_chat(&server, &first, "one").await.1, "ACTIVE");
    let (queued, status) = start_chat(&server, &second, "two").await;
    assert_eq!(status, "QUEUED");

    let start = "mutation { startChat(input: {message: \"three\"}) { id } }";
    let body = server.gql(Some(&third), start, json!({})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "AGENTS_OFFLINE",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("queue is full"), "{message}");

    let (again, status) = start_chat(&server, &second, "still there?").await;
    assert_eq!(
        (again.as_str(), status.as_str()),
        (queued.as_str(), "QUEUED")
    );
    let queue = server
        .ok(Some(&owner), "{ queue { chat { id } } }", json!({}))
        .await["queue"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(queue, 1, "the second start made no second chat");
}

async fn an_unanswered_chat_moves_to_another_agent_and_never_back(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let (owner, team) = team(&server, 2, 3).await;
    settings(
        &server,
        &owner,
        json!({"autoTransferSeconds": 1, "waitingLongSeconds": 100}),
    )
    .await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "waiting").await;
    let (chat, _) = start_chat(&server, &customer, "anyone?").await;
    let (first, second) = if my_chats(&server, &team[0].1).await.is_empty() {
        (&team[1], &team[0])
    } else {
        (&team[0], &team[1])
    };
    let mut second_events = agent_events(&server, &second.1, None).await;
    let moved = second_events.next_event("ChatTransferred").await;
    assert_eq!(moved["chat"]["id"], chat.as_str());
    assert_eq!(moved["fromAgent"]["id"], first.0.as_str());
    assert!(moved["reason"].as_str().unwrap().contains("did not reply"));
    assert!(my_chats(&server, &first.1).await.is_empty());
    // The second agent does not answer either, but the chat never goes back to the first.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(my_chats(&server, &second.1).await[0]["id"], chat.as_str());
    assert!(my_chats(&server, &first.1).await.is_empty());
}

async fn typing_stops_the_auto_transfer_clock(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let (owner, team) = team(&server, 2, 3).await;
    settings(&server, &owner, json!({"autoTransferSeconds": 1})).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "patient").await;
    let (chat, _) = start_chat(&server, &customer, "anyone?").await;
    let holder = if my_chats(&server, &team[0].1).await.is_empty() {
        &team[1]
    } else {
        &team[0]
    };
    server
        .ok(
            Some(&holder.1),
            "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: true}) }",
            json!({"c": chat}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert_eq!(
        my_chats(&server, &holder.1).await.len(),
        1,
        "still theirs while they type"
    );
    // Stopping restarts the clock; without a reply the chat then moves on.
    server
        .ok(
            Some(&holder.1),
            "mutation($c: ID!) { setTyping(input: {chatId: $c, isTyping: false}) }",
            json!({"c": chat}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(my_chats(&server, &holder.1).await.is_empty());
}

async fn attention_turns_red_then_normal_then_grey_and_idle_chats_free_a_slot(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let (owner, team) = team(&server, 1, 1).await;
    settings(
        &server,
        &owner,
        json!({"waitingLongSeconds": 1, "customerIdleSeconds": 2, "autoTransferSeconds": 3600}),
    )
    .await;
    let (_, agent) = &team[0];
    let mut events = agent_events(&server, agent, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "slow").await;
    let (chat, _) = start_chat(&server, &customer, "hello?").await;

    let red = events.next_event("AttentionChanged").await;
    assert_eq!(
        red,
        json!({"__typename": "AttentionChanged", "cursor": red["cursor"], "chat": {"id": chat}, "attention": "WAITING_LONG"})
    );
    server
        .ok(
            Some(agent),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"Hi!\"}) { id } }",
            json!({"c": chat}),
        )
        .await;
    assert_eq!(
        events.next_event("AttentionChanged").await["attention"],
        "NORMAL"
    );

    // The customer goes quiet: grey, and the chat stops counting toward the limit of 1.
    assert_eq!(
        events.next_event("AttentionChanged").await["attention"],
        "CUSTOMER_IDLE"
    );
    let another = visitor(&server, &key, "next").await;
    let (second, status) = start_chat(&server, &another, "me too").await;
    assert_eq!(status, "ACTIVE", "the idle chat freed the slot");
    assert_eq!(
        events.next_event("ChatAssigned").await["chat"]["id"],
        second.as_str()
    );
}

async fn abandoned_chats_close_by_themselves(backend: Backend) {
    let server =
        TestServer::start_with(backend, |c| c.timer_interval = Duration::from_millis(100)).await;
    let (owner, team) = team(&server, 1, 3).await;
    settings(
        &server,
        &owner,
        json!({"autoCloseSeconds": 1, "waitingLongSeconds": 100, "autoTransferSeconds": 100}),
    )
    .await;
    let (_, agent) = &team[0];
    let mut events = agent_events(&server, agent, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "gone").await;
    let (chat, _) = start_chat(&server, &customer, "hello").await;
    let closed = events.next_event("ChatClosed").await;
    assert_eq!(closed["chat"]["id"], chat.as_str());
    let status = server
        .ok(
            Some(agent),
            "query($c: ID!) { chat(id: $c) { status } }",
            json!({"c": chat}),
        )
        .await;
    assert_eq!(status["chat"]["status"], "CLOSED");
}

async fn settings_are_validated_and_admin_only(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, team) = team(&server, 1, 3).await;
    const UPDATE: &str = "mutation($input: UpdateOrganizationSettingsInput!) { updateOrganizationSettings(input: $input) { settings { defaultChatLimit waitingLongSeconds } } }";
    assert_eq!(
        server
            .error_code(
                Some(&team[0].1),
                UPDATE,
                json!({"input": {"defaultChatLimit": 5}})
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                UPDATE,
                json!({"input": {"waitingLongSeconds": 0}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                UPDATE,
                json!({"input": {"defaultChatLimit": 1000}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let updated = server
        .ok(
            Some(&owner),
            UPDATE,
            json!({"input": {"defaultChatLimit": 5, "waitingLongSeconds": 30}}),
        )
        .await;
    assert_eq!(
        updated["updateOrganizationSettings"]["settings"],
        json!({"defaultChatLimit": 5, "waitingLongSeconds": 30})
    );
}

async fn take_join_and_transfer_to_a_group(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, team) = team(&server, 2, 1).await;
    let sales = server
        .ok(
            Some(&owner),
            "mutation { createGroup(input: {name: \"Sales\"}) { id } }",
            json!({}),
        )
        .await["createGroup"]["id"]
        .clone();
    let key = widget_key(&server, &owner).await;
    // Both agents get one chat each (limit 1); the third waits and an agent takes it.
    for n in 0..2 {
        let customer = visitor(&server, &key, &format!("busy{n}")).await;
        start_chat(&server, &customer, "hello").await;
    }
    let waiting = visitor(&server, &key, "waiting").await;
    let (queued, status) = start_chat(&server, &waiting, "anyone?").await;
    assert_eq!(status, "QUEUED");
    let taken = server
        .ok(
            Some(&team[0].1),
            "mutation($c: ID!) { takeChat(chatId: $c) { status assignee { id } } }",
            json!({"c": queued}),
        )
        .await;
    assert_eq!(
        taken["takeChat"]["assignee"]["id"],
        team[0].0.as_str(),
        "taking ignores the limit"
    );
    let again = server
        .error_code(
            Some(&team[1].1),
            "mutation($c: ID!) { takeChat(chatId: $c) { id } }",
            json!({"c": queued}),
        )
        .await;
    assert_eq!(again, "CONFLICT");

    // An agent may not join; a supervisor of the chat's group may, and then writes in it.
    assert_eq!(
        server
            .error_code(
                Some(&team[1].1),
                "mutation($c: ID!) { joinChat(chatId: $c) { id } }",
                json!({"c": queued})
            )
            .await,
        "FORBIDDEN"
    );
    let supervisor_id = server
        .create_agent(&owner, "sam@example.com", "SUPERVISOR")
        .await;
    let supervisor = server.agent_token("sam@example.com").await;
    server
        .ok(
            Some(&supervisor),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    server
        .ok(
            Some(&supervisor),
            "mutation($c: ID!) { joinChat(chatId: $c) { id } }",
            json!({"c": queued}),
        )
        .await;
    server
        .ok(Some(&supervisor), "mutation($c: ID!) { sendMessage(input: {chatId: $c, text: \"Supervisor here\"}) { id } }", json!({"c": queued}))
        .await;
    let transcript = server
        .ok(
            Some(&waiting),
            "query($c: ID!) { chat(id: $c) { events { items { text kind } } } }",
            json!({"c": queued}),
        )
        .await;
    let items = transcript["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        items.iter().any(|i| i["kind"] == "SUPERVISOR_JOINED"),
        "{items:?}"
    );
    assert!(items.iter().any(|i| i["text"] == "Supervisor here"));

    // A transfer to a group goes to an agent of that group, over their limit or not.
    server
        .ok(
            Some(&owner),
            "mutation($id: ID!, $g: [ID!]) { updateAgent(input: {id: $id, groupIds: $g, chatLimit: 5}) { id } }",
            json!({"id": team[1].0, "g": [sales]}),
        )
        .await;
    server
        .ok(Some(&owner), "mutation($id: ID!) { updateAgent(input: {id: $id, groupIds: [], chatLimit: 5}) { id } }", json!({"id": supervisor_id}))
        .await;
    let moved = server
        .ok(
            Some(&team[0].1),
            "mutation($c: ID!, $g: ID!) { transferChat(input: {chatId: $c, toGroupId: $g}) { status group { name } assignee { id } } }",
            json!({"c": queued, "g": sales}),
        )
        .await;
    assert_eq!(moved["transferChat"]["group"]["name"], "Sales");
    assert_eq!(moved["transferChat"]["assignee"]["id"], team[1].0.as_str());
}
