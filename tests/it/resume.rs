//! Resuming event streams after a dropped socket (`since`), full transcript replays, bad
//! cursors, reading a transcript from its end, presence (who stays routable without a
//! socket) and live queue positions.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    AGENT_EVENTS, Backend, CHAT_EVENTS, TestServer, WsClient, agent_events, chat_events,
    start_chat, visitor, widget_key,
};

on_both_backends!(
    a_chat_screen_reads_the_transcript_from_its_end,
    agent_events_resume_after_a_dropped_socket_with_nothing_lost_or_repeated,
    chat_events_resume_after_a_dropped_socket_with_nothing_lost_or_repeated,
    chat_events_without_since_replay_the_whole_transcript_by_visibility,
    cursors_ahead_of_the_stream_or_not_numbers_are_bad_user_input,
    agents_stay_routable_only_while_connected_or_within_the_grace_period,
    a_socket_closed_as_the_server_stops_records_its_departure_before_the_store_closes,
    queued_customers_hear_their_position_and_wait_whenever_they_change,
);

/// How long a stream is watched to show that nothing more (nothing twice) arrives.
const QUIET: Duration = Duration::from_millis(700);

/// Signs the owner in, takes them out of routing and returns their token and the widget key.
async fn owner_out_of_routing(server: &TestServer) -> (String, String) {
    let owner = server.owner_token().await;
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let key = widget_key(server, &owner).await;
    (owner, key)
}

/// Sends a message in a chat as `token` (an agent or the chat's customer).
async fn send(server: &TestServer, token: &str, chat_id: &str, text: &str) {
    server
        .ok(
            Some(token),
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
            json!({"c": chat_id, "t": text}),
        )
        .await;
}

/// The event inside a `next` message.
fn event_of(message: &Value) -> Value {
    assert_eq!(message["type"], "next", "expected an event, got {message}");
    message["payload"]["data"]
        .as_object()
        .unwrap_or_else(|| panic!("an event with data, got {message}"))
        .values()
        .next()
        .unwrap()
        .clone()
}

/// The events that arrive while the stream is watched for `QUIET`.
async fn remaining_events(ws: &mut WsClient) -> Vec<Value> {
    ws.quiet_for(QUIET).await.iter().map(event_of).collect()
}

fn cursor_of(event: &Value) -> i64 {
    event["cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("an event with a cursor, got {event}"))
        .parse()
        .unwrap_or_else(|_| panic!("a numeric cursor, got {event}"))
}

/// Reads `count` events and checks they are the MessageAdded of `texts` (in order) with
/// strictly increasing cursors after `since`, each message once. Returns the last cursor.
async fn expect_messages(ws: &mut WsClient, since: i64, texts: &[String]) -> i64 {
    let mut last = since;
    let mut ids = HashSet::new();
    for (i, text) in texts.iter().enumerate() {
        let event = ws.any_event().await;
        assert_eq!(
            event["__typename"], "MessageAdded",
            "event {i} after the cursor should be the message {text:?}, got {event}"
        );
        assert_eq!(
            event["message"]["text"], *text,
            "event {i} after the cursor, in order: {event}"
        );
        let cursor = cursor_of(&event);
        assert!(
            cursor > last,
            "cursors increase strictly: {cursor} after {last} ({event})"
        );
        last = cursor;
        let id = event["message"]["id"].as_str().unwrap().to_owned();
        assert!(ids.insert(id), "a message came twice: {event}");
    }
    last
}

/// An agent's feed resumes after `since` with exactly the 50 events missed, in order, and
/// then goes live, without repeating anything.
async fn agent_events_resume_after_a_dropped_socket_with_nothing_lost_or_repeated(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let mut ada_events = agent_events(&server, &ada, None).await;

    let customer = visitor(&server, &key, "resume-agent").await;
    let (chat_id, status) = start_chat(&server, &customer, "Hello there").await;
    assert_eq!(status, "ACTIVE");
    let assigned = ada_events.next_event("ChatAssigned").await;
    assert_eq!(assigned["chat"]["id"], chat_id);
    // The system entry "… joined the chat" follows the assignment; then all is quiet.
    let mut seen = vec![assigned];
    loop {
        let event = ada_events.any_event().await;
        let joined =
            event["__typename"] == "MessageAdded" && event["message"]["kind"] == "AGENT_ASSIGNED";
        seen.push(event);
        if joined {
            break;
        }
    }
    seen.extend(remaining_events(&mut ada_events).await);
    let since = cursor_of(seen.last().unwrap());
    drop(ada_events);

    // 50 events happen while the agent has no socket.
    let texts: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for text in &texts {
        send(&server, &customer, &chat_id, text).await;
    }

    let mut resumed = agent_events(&server, &ada, Some(&since.to_string())).await;
    let last = expect_messages(&mut resumed, since, &texts).await;
    let early = remaining_events(&mut resumed).await;
    assert!(
        early.is_empty(),
        "exactly the 50 missed events are replayed, nothing twice: {early:?}"
    );

    // Then it is live.
    send(&server, &customer, &chat_id, "live").await;
    let live = resumed.any_event().await;
    assert_eq!(live["__typename"], "MessageAdded", "{live}");
    assert_eq!(live["message"]["text"], "live");
    assert_eq!(live["chat"]["id"], chat_id);
    assert!(cursor_of(&live) > last, "{live} comes after {last}");
    let after = remaining_events(&mut resumed).await;
    assert!(after.is_empty(), "the live event came once: {after:?}");
}

/// A customer's chat stream resumes after `since` with exactly the 50 entries missed, in
/// order, and then goes live, without repeating anything.
async fn chat_events_resume_after_a_dropped_socket_with_nothing_lost_or_repeated(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;

    let customer = visitor(&server, &key, "resume-chat").await;
    let (chat_id, status) = start_chat(&server, &customer, "Hello there").await;
    assert_eq!(status, "ACTIVE");
    let mut customer_events = chat_events(&server, &customer, &chat_id, None).await;
    let first = customer_events.any_event().await;
    assert_eq!(first["__typename"], "MessageAdded", "{first}");
    assert_eq!(first["message"]["text"], "Hello there");
    let mut seen = vec![first];
    seen.extend(remaining_events(&mut customer_events).await);
    assert!(
        seen.iter()
            .any(|e| e["message"]["kind"] == "AGENT_ASSIGNED"),
        "the customer sees the agent join: {seen:?}"
    );
    let since = cursor_of(seen.last().unwrap());
    drop(customer_events);

    let texts: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for text in &texts {
        send(&server, &ada, &chat_id, text).await;
    }

    let mut resumed = chat_events(&server, &customer, &chat_id, Some(&since.to_string())).await;
    let last = expect_messages(&mut resumed, since, &texts).await;
    let early = remaining_events(&mut resumed).await;
    assert!(
        early.is_empty(),
        "exactly the 50 missed entries are replayed, nothing twice: {early:?}"
    );

    send(&server, &ada, &chat_id, "live").await;
    let live = resumed.any_event().await;
    assert_eq!(live["__typename"], "MessageAdded", "{live}");
    assert_eq!(live["message"]["text"], "live");
    assert_eq!(live["message"]["author"], "AGENT");
    assert!(cursor_of(&live) > last, "{live} comes after {last}");
    let after = remaining_events(&mut resumed).await;
    assert!(after.is_empty(), "the live entry came once: {after:?}");
}

/// Without `since`, chatEvents replays the transcript from its first entry: for agents all of
/// it, for the customer all but the agents-only transfer note.
async fn chat_events_without_since_replay_the_whole_transcript_by_visibility(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let bob_id = server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;

    let customer = visitor(&server, &key, "replay").await;
    let (chat_id, status) = start_chat(&server, &customer, "Where is my parcel?").await;
    assert_eq!(status, "ACTIVE");
    send(&server, &ada, &chat_id, "Let me check.").await;
    send(&server, &customer, &chat_id, "Order 1234").await;
    // Bob signs in after the chat went to Ada, so it is hers; she hands it over with a note.
    let bob = server.agent_token("bob@example.com").await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $to: ID!) { transferChat(input: {chatId: $c, toAgentId: $to, note: \"Parcel lost, refund it\"}) { id } }",
            json!({"c": chat_id, "to": bob_id}),
        )
        .await;
    send(&server, &bob, &chat_id, "Hi, I'm Bob.").await;

    // The transcript as an agent reads it: the truth both replays are held to.
    let transcript = server
        .ok(
            Some(&bob),
            "query($id: ID!) { chat(id: $id) { events(first: 100) { items { id cursor text kind visibility } hasMore } } }",
            json!({"id": chat_id}),
        )
        .await["chat"]["events"]
        .clone();
    assert_eq!(transcript["hasMore"], false);
    let all: Vec<Value> = transcript["items"].as_array().unwrap().clone();
    assert_eq!(all[0]["text"], "Where is my parcel?");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "TRANSFER_NOTE" && e["text"] == "Parcel lost, refund it"),
        "agents' transcript has the note: {all:?}"
    );
    let public: Vec<Value> = all
        .iter()
        .filter(|e| e["visibility"] == "PUBLIC")
        .cloned()
        .collect();
    assert!(public.len() < all.len());

    for (who, token, expected) in [("bob", &bob, &all), ("the customer", &customer, &public)] {
        let mut ws = chat_events(&server, token, &chat_id, None).await;
        let mut replayed = Vec::new();
        for _ in 0..expected.len() {
            replayed.push(ws.any_event().await);
        }
        replayed.extend(remaining_events(&mut ws).await);
        let got: Vec<(String, String, String)> = replayed
            .iter()
            .map(|e| {
                (
                    e["cursor"].as_str().unwrap_or_default().to_owned(),
                    e["message"]["kind"].as_str().unwrap_or_default().to_owned(),
                    e["message"]["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String, String)> = expected
            .iter()
            .map(|e| {
                (
                    e["cursor"].as_str().unwrap().to_owned(),
                    e["kind"].as_str().unwrap().to_owned(),
                    e["text"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got, want,
            "{who} gets the whole transcript from the start, once, in order"
        );
        assert!(
            replayed.iter().all(|e| e["__typename"] == "MessageAdded"),
            "{replayed:?}"
        );
        let has_note = replayed
            .iter()
            .any(|e| e["message"]["kind"] == "TRANSFER_NOTE");
        if token == &customer {
            assert!(!has_note, "customers never see the transfer note");
            assert!(
                replayed
                    .iter()
                    .all(|e| e["message"]["visibility"] == "PUBLIC"),
                "{replayed:?}"
            );
        } else {
            assert!(has_note, "agents see the transfer note in the replay");
        }
    }
}

/// A subscription with the cursor `since` on a fresh ready socket; returns the first answer.
async fn first_answer(server: &TestServer, token: &str, payload: Value) -> Value {
    let mut ws = server.ws_ready(token).await;
    ws.send(json!({"id": "op", "type": "subscribe", "payload": payload}))
        .await;
    ws.next().await
}

fn assert_bad_user_input(answer: &Value, what: &str) {
    assert_eq!(
        answer["type"], "error",
        "{what}: expected an error message, got {answer}"
    );
    assert_eq!(answer["id"], "op", "{answer}");
    assert_eq!(
        answer["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{what}: {answer}"
    );
}

/// A cursor the server never gave out is refused with BAD_USER_INPUT, on both streams.
async fn cursors_ahead_of_the_stream_or_not_numbers_are_bad_user_input(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let customer = visitor(&server, &key, "bad-cursor").await;
    let (chat_id, status) = start_chat(&server, &customer, "Hello").await;
    assert_eq!(status, "ACTIVE");

    for since in ["999999", "abc", "-1", "1.5"] {
        let answer = first_answer(
            &server,
            &ada,
            json!({"query": AGENT_EVENTS, "variables": {"since": since}}),
        )
        .await;
        assert_bad_user_input(&answer, &format!("agentEvents(since: {since:?})"));
        for (who, token) in [("agent", &ada), ("customer", &customer)] {
            let answer = first_answer(
                &server,
                token,
                json!({"query": CHAT_EVENTS, "variables": {"chatId": chat_id, "since": since}}),
            )
            .await;
            assert_bad_user_input(
                &answer,
                &format!("chatEvents(since: {since:?}) as the {who}"),
            );
        }
    }

    // The stream's own latest cursor is fine: nothing is replayed, and it is live.
    let mut ws = chat_events(&server, &customer, &chat_id, None).await;
    let mut replayed = vec![ws.any_event().await];
    replayed.extend(remaining_events(&mut ws).await);
    let latest = cursor_of(replayed.last().unwrap());
    let mut resumed = chat_events(&server, &customer, &chat_id, Some(&latest.to_string())).await;
    let nothing = remaining_events(&mut resumed).await;
    assert!(nothing.is_empty(), "{nothing:?}");
    send(&server, &customer, &chat_id, "still there?").await;
    let live = resumed.any_event().await;
    assert_eq!(live["message"]["text"], "still there?", "{live}");
}

/// startChat's answer: the chat's id and status, or the error code.
async fn try_start_chat(
    server: &TestServer,
    visitor: &str,
    message: &str,
) -> Result<Value, String> {
    let body = server
        .gql(
            Some(visitor),
            "mutation($m: String!) { startChat(input: {message: $m}) { id status } }",
            json!({"m": message}),
        )
        .await;
    if body.get("errors").is_some() {
        Err(crate::support::error_code(&body))
    } else {
        Ok(body["data"]["startChat"].clone())
    }
}

async fn online(server: &TestServer, key: &str) -> bool {
    server
        .ok(
            None,
            "query($k: String!) { availability(widgetKey: $k) { online } }",
            json!({"k": key}),
        )
        .await["availability"]["online"]
        .as_bool()
        .unwrap()
}

/// Login makes an agent reachable for the grace period; a live socket keeps them reachable;
/// once the socket closes they stop being routable after the grace period again.
async fn agents_stay_routable_only_while_connected_or_within_the_grace_period(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {presenceGraceSeconds: 1}) { id } }",
            json!({}),
        )
        .await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;

    // Signed in, no socket: reachable for the grace period only.
    let ada = server.agent_token("ada@example.com").await;
    assert!(
        online(&server, &key).await,
        "login makes the agent reachable"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!online(&server, &key).await, "the grace period has passed");
    let first = visitor(&server, &key, "presence-1").await;
    assert_eq!(
        try_start_chat(&server, &first, "Anyone?").await,
        Err("AGENTS_OFFLINE".to_owned()),
        "an agent without a socket is not routable after the grace period"
    );

    // A live socket keeps them routable well beyond the grace period.
    let socket = server.ws_ready(&ada).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = visitor(&server, &key, "presence-2").await;
    let chat = try_start_chat(&server, &second, "Hello?")
        .await
        .expect("a connected agent is routable beyond the grace period");
    assert_eq!(chat["status"], "ACTIVE");
    let assignee = server
        .ok(
            Some(&owner),
            "query($id: ID!) { chat(id: $id) { assignee { id } } }",
            json!({"id": chat["id"]}),
        )
        .await["chat"]["assignee"]["id"]
        .clone();
    assert_eq!(assignee, ada_id);

    // The socket closes: routable for the grace period, then not.
    drop(socket);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let third = visitor(&server, &key, "presence-3").await;
    assert_eq!(
        try_start_chat(&server, &third, "Still there?").await,
        Err("AGENTS_OFFLINE".to_owned()),
        "an agent whose socket closed is not routable after the grace period"
    );
    assert!(!online(&server, &key).await);
}

/// A socket that the server closes as it stops still records the agent's departure: shutdown
/// waits for that write before it closes the store, so the live lease does not outlast the
/// node and the agent stops being routable after the grace period.
async fn a_socket_closed_as_the_server_stops_records_its_departure_before_the_store_closes(
    backend: Backend,
) {
    let mut server = TestServer::start_with(backend, |_| {}).await;
    let (owner, _key) = owner_out_of_routing(&server).await;
    server
        .ok(
            Some(&owner),
            "mutation { updateOrganizationSettings(input: {presenceGraceSeconds: 1}) { id } }",
            json!({}),
        )
        .await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let mut socket = server.ws_ready(&ada).await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(
        server.store.agent_reachable(&ada_id, later).await.unwrap(),
        "a live socket holds a lease beyond the grace period"
    );

    // The server closes the socket as it stops; the client keeps reading until then.
    let closing = tokio::spawn(async move { socket.closed().await });
    server.shut_down().await;
    let _ = closing.await;
    server.start_again().await;
    assert!(
        !server.store.agent_reachable(&ada_id, later).await.unwrap(),
        "the departure was written before the store closed"
    );
}

/// A queued customer hears their place and estimated wait on chatEvents, after the replayed
/// transcript and whenever the queue moves.
async fn queued_customers_hear_their_position_and_wait_whenever_they_change(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (owner, key) = owner_out_of_routing(&server).await;
    server
        .ok(
            Some(&owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": "ada@example.com", "name": "Ada", "password": "agent-password-1",
                             "role": "AGENT", "chatLimit": 1}}),
        )
        .await;
    let ada = server.agent_token("ada@example.com").await;

    let first = visitor(&server, &key, "queue-1").await;
    let second = visitor(&server, &key, "queue-2").await;
    let third = visitor(&server, &key, "queue-3").await;
    let (chat1, status1) = start_chat(&server, &first, "First!").await;
    let (chat2, status2) = start_chat(&server, &second, "Second").await;
    let (chat3, status3) = start_chat(&server, &third, "Third").await;
    assert_eq!(
        (status1.as_str(), status2.as_str(), status3.as_str()),
        ("ACTIVE", "QUEUED", "QUEUED")
    );

    // The replayed transcript, then the place in the queue.
    let mut third_events = chat_events(&server, &third, &chat3, None).await;
    let mut transcript = Vec::new();
    let position = loop {
        let event = third_events.any_event().await;
        match event["__typename"].as_str() {
            Some("MessageAdded") => transcript.push(event),
            Some("QueuePositionChanged") => break event,
            _ => panic!("expected the transcript, then the queue position; got {event}"),
        }
    };
    assert_eq!(transcript[0]["message"]["text"], "Third", "{transcript:?}");
    assert!(
        transcript
            .iter()
            .any(|e| e["message"]["kind"] == "CHAT_QUEUED"),
        "{transcript:?}"
    );
    assert_eq!(position["position"], 2, "{position}");
    assert!(
        position["estimatedWaitSeconds"].as_i64().unwrap() > 0,
        "second in line behind a busy agent waits: {position}"
    );

    // The first chat ends (at once: a short chat is as good a sample as any): the second goes
    // to Ada, and the third moves up, the very next event of its stream.
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!) { closeChat(chatId: $c) { status } }",
            json!({"c": chat1}),
        )
        .await;
    // Queue announcements are coalesced for 50 ms: one made before the close, saying the
    // place the customer already had (with the wait estimated a moment later), may still
    // arrive first.
    let moved = loop {
        let event = third_events.any_event().await;
        if event["__typename"] == "QueuePositionChanged" && event["position"] == 2 {
            continue;
        }
        break event;
    };
    assert_eq!(moved["__typename"], "QueuePositionChanged", "{moved}");
    assert_eq!(moved["position"], 1, "{moved}");
    assert!(
        moved["estimatedWaitSeconds"].as_i64().unwrap() > 0,
        "next in line behind an agent at their limit still waits: {moved}"
    );
    let mine = server
        .ok(Some(&ada), "{ myChats { id status } }", json!({}))
        .await;
    assert_eq!(
        mine["myChats"],
        json!([{"id": chat2, "status": "ACTIVE"}]),
        "the second chat went to Ada"
    );
    let quiet = remaining_events(&mut third_events).await;
    assert!(
        quiet.is_empty(),
        "one position change per change: {quiet:?}"
    );
    let third_status = server
        .ok(
            Some(&third),
            "query($id: ID!) { chat(id: $id) { status } }",
            json!({"id": chat3}),
        )
        .await;
    assert_eq!(third_status["chat"]["status"], "QUEUED");
}

async fn a_chat_screen_reads_the_transcript_from_its_end(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let _live = agent_events(&server, &owner, None).await;
    let customer = visitor(&server, &key, "pager").await;
    let (chat_id, _) = start_chat(&server, &customer, "one").await;
    for text in ["two", "three", "four"] {
        server
            .ok(
                Some(&customer),
                "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }",
                json!({"c": chat_id, "t": text}),
            )
            .await;
    }
    const PAGE: &str = "query($id: ID!, $before: String, $last: Int!) { chat(id: $id) {
        lastMessage { text }
        latestEvents(before: $before, last: $last) { items { text kind cursor } startCursor endCursor hasMore } } }";
    let texts = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };

    let data = server
        .ok(Some(&owner), PAGE, json!({"id": chat_id, "last": 2}))
        .await;
    assert_eq!(data["chat"]["lastMessage"]["text"], "four");
    let latest = &data["chat"]["latestEvents"];
    assert_eq!(texts(latest), ["three", "four"], "oldest first");
    assert_eq!(latest["hasMore"], true);
    assert_eq!(latest["startCursor"], latest["items"][0]["cursor"]);
    assert_eq!(latest["endCursor"], latest["items"][1]["cursor"]);

    // Paging back from startCursor reaches the start, with the system entries between.
    let data = server
        .ok(
            Some(&owner),
            PAGE,
            json!({"id": chat_id, "before": latest["startCursor"], "last": 200}),
        )
        .await;
    let older = &data["chat"]["latestEvents"];
    assert_eq!(older["hasMore"], false);
    let older_texts = texts(older);
    assert_eq!(older_texts.first().map(String::as_str), Some("one"));
    assert_eq!(older_texts.last().map(String::as_str), Some("two"));

    // The customer reads the same end of their chat.
    let data = server
        .ok(Some(&customer), PAGE, json!({"id": chat_id, "last": 1}))
        .await;
    assert_eq!(texts(&data["chat"]["latestEvents"]), ["four"]);
    assert_eq!(data["chat"]["lastMessage"]["text"], "four");

    for (variables, why) in [
        (json!({"id": chat_id, "last": 0}), "last below 1"),
        (json!({"id": chat_id, "last": 201}), "last above 200"),
        (
            json!({"id": chat_id, "last": 5, "before": "x"}),
            "a cursor the server never gave",
        ),
    ] {
        assert_eq!(
            server.error_code(Some(&owner), PAGE, variables).await,
            "BAD_USER_INPUT",
            "{why}"
        );
    }
}
