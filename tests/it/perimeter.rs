//! The server's perimeter: client addresses behind proxies, connection limits and timeouts,
//! query cost limits, input the databases refuse, readiness, and file modes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Backend, OWNER_EMAIL, TestServer, error_code, widget_key};

const START_VISITOR_SESSION: &str = "mutation($input: StartVisitorSessionInput!) {
    startVisitorSession(input: $input) { token } }";

/// Starts a visitor session as a request whose X-Forwarded-For says `forwarded_for`.
async fn visitor_session_via_proxy(server: &TestServer, key: &str, forwarded_for: &str) -> Value {
    server
        .http
        .post(&server.graphql_url)
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"query": START_VISITOR_SESSION,
                      "variables": {"input": {"widgetKey": key, "visitorId": uuid::Uuid::now_v7().to_string()}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_left_most_forwarded_hop_does_not_change_the_rate_limit_key() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.trusted_proxies = 1;
        config.visitor_sessions_per_minute = 2;
    })
    .await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    // The proxy appends the real client (203.0.113.7); the client forges a new left-most hop
    // each time, hoping for a fresh allowance.
    for forged in ["198.51.100.1", "198.51.100.2"] {
        let body =
            visitor_session_via_proxy(&server, &key, &format!("{forged}, 203.0.113.7")).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    let body = visitor_session_via_proxy(&server, &key, "198.51.100.3, 203.0.113.7").await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    // Another real client still has its own allowance.
    let body = visitor_session_via_proxy(&server, &key, "198.51.100.3, 203.0.113.8").await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_its_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let mut data_dir = None;
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.data_dir = config.data_dir.join("fresh").join("data");
        config.jwt_secret = None;
        data_dir = Some(config.data_dir.clone());
    })
    .await;
    // A write makes sure the WAL and its index exist.
    server.owner_token().await;
    let data_dir = data_dir.unwrap();
    let mode = |name: &str| {
        let path = data_dir.join(name);
        let metadata = std::fs::metadata(&path)
            .unwrap_or_else(|err| panic!("{} is missing: {err}", path.display()));
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    for file in [
        "switchboard.db",
        "switchboard.db-wal",
        "switchboard.db-shm",
        "jwt-secret",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// A raw TCP connection to the server, for clients no HTTP library would imitate.
async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base_url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Reads until the server closes the connection (or resets it); returns what came. Panics if
/// it stays open longer than `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {within:?}"
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// Whether the connection is still open after `quiet` without the server saying anything.
async fn stays_open(stream: &mut TcpStream, quiet: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(quiet, stream.read(&mut buf))
        .await
        .is_err()
}

/// GET /healthz on a fresh connection (no pooled one), as a probe would.
async fn healthz(server: &TestServer) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_are_refused() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_connections_per_address = 4;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&server).await;
        // A request proves the server counts this connection before the next one connects.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }
    let mut refused = connect(&server).await;
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut refused, Duration::from_secs(3)).await;
    assert_eq!(answer, "", "the fifth connection is closed unanswered");
    // A closed connection frees its place.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = reqwest::Client::new()
            .get(format!("{}/healthz", server.base_url))
            .send()
            .await
            .map(|response| response.status());
        if status.is_ok_and(|status| status == 200) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Asked on a connection already held: a new one might find no place yet.
    let held_connection = &mut held[0];
    held_connection
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let metrics = read_until_closed(held_connection, Duration::from_secs(5)).await;
    let refused: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("switchboard_connections_limited_total{limit=\"per_address\"} ")
        })
        .unwrap_or_else(|| panic!("no per-address count in {metrics}"))
        .parse()
        .unwrap();
    assert!(refused >= 1, "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_connection_is_closed_after_the_header_timeout() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let started = Instant::now();
    let mut stream = connect(&server).await;
    let (mut reader, mut writer) = stream.split();
    // One header line every 100 ms, never the blank line that ends them.
    let trickle = async {
        let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\n").await;
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let closed = async {
        let mut buf = [0u8; 256];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        () = closed => {}
        () = trickle => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => panic!("still open after 5 s"),
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(400),
        "closed too early: {elapsed:?}"
    );
    // A connection that never sends anything is closed the same way.
    let mut silent = connect(&server).await;
    read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert_eq!(healthz(&server).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_request_body_gets_408() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.request_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = connect(&server).await;
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 1000\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.idle_timeout = Duration::from_secs(2);
    })
    .await;
    let mut stream = connect(&server).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive for a while after the response, then closed.
    assert!(stays_open(&mut stream, Duration::from_millis(500)).await);
    read_until_closed(&mut stream, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_answer_while_the_connection_cap_is_reached() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_connections = Some(4);
    })
    .await;
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&server).await;
        // Half a request: the connection is taken and stays so.
        stream.write_all(b"GET /hea").await.unwrap();
        idle.push(stream);
    }
    // The server accepts in order; wait until the four are counted, i.e. a request on a new
    // connection gets the over-capacity answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let body = reqwest::Client::new()
            .post(&server.graphql_url)
            .json(&json!({"query": "{ __typename }"}))
            .send()
            .await
            .unwrap();
        if body.status() == 503 {
            assert_eq!(body.headers()["retry-after"], "1");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cap is never reached"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(healthz(&server).await, 200);
    let ready = reqwest::Client::new()
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    for stream in &mut idle {
        assert!(stays_open(stream, Duration::from_millis(10)).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_established_websocket_outlives_http_timeouts_and_the_cap() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.max_connections = Some(2);
        config.header_read_timeout = Duration::from_millis(300);
        config.idle_timeout = Duration::from_millis(300);
    })
    .await;
    let owner = server.owner_token().await;
    let mut ws = server.ws_ready(&owner).await;
    // The second and last place.
    let mut other = connect(&server).await;
    other.write_all(b"GET /hea").await.unwrap();
    // Past both HTTP timeouts: the plain connection is gone, the WebSocket is not.
    read_until_closed(&mut other, Duration::from_secs(3)).await;
    let mut filler = connect(&server).await;
    filler.write_all(b"GET /hea").await.unwrap();
    ws.send(json!({"id": "me", "type": "subscribe", "payload": {"query": "{ me { email } }"}}))
        .await;
    let answer = ws.next().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["me"]["email"], OWNER_EMAIL);
}

/// A visitor with a chat of their own, the way the widget sets one up.
async fn visitor_with_chat(server: &TestServer) -> (String, String) {
    let owner = server.owner_token().await;
    let key = widget_key(server, &owner).await;
    let visitor = crate::support::visitor(server, &key, "amplifier").await;
    let (chat, _) = crate::support::start_chat(server, &visitor, "hello").await;
    (visitor, chat)
}

/// `count` aliases of the customer's page history, `first` entries each.
fn aliased_page_history(count: usize, first: i32) -> String {
    let aliases: String = (0..count)
        .map(|i| format!(" h{i}: pageHistory(first: {first}) {{ url title viewedAt }}"))
        .collect();
    format!("query($id: ID!) {{ chat(id: $id) {{ customer {{ {aliases} }} }} }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_aliases_are_refused() {
    let server = TestServer::start().await;
    let (visitor, chat) = visitor_with_chat(&server).await;
    let body = server
        .gql(
            Some(&visitor),
            &aliased_page_history(240, 100),
            json!({"id": chat}),
        )
        .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aliased fields"),
        "{body}"
    );
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_costs_multiply_by_their_page_size() {
    let server = TestServer::start().await;
    let (visitor, chat) = visitor_with_chat(&server).await;
    let body = server
        .gql(
            Some(&visitor),
            &aliased_page_history(30, 100),
            json!({"id": chat}),
        )
        .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    // The same fields on small pages are fine: the cost is the page size, not the field count.
    server
        .ok(
            Some(&visitor),
            &aliased_page_history(30, 5),
            json!({"id": chat}),
        )
        .await;
    // Variables count as much as literals.
    let body = server
        .gql(
            Some(&visitor),
            "query($id: ID!, $n: Int!) { chat(id: $id) { a: events(first: $n) { items { id text author kind createdAt } }
                b: events(first: $n) { items { id text author kind createdAt } }
                c: latestEvents(last: $n) { items { id text author kind createdAt } }
                d: latestEvents(last: $n) { items { id text author kind createdAt } } } }",
            json!({"id": chat, "n": 200}),
        )
        .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_argument_is_validated_the_same_way() {
    let server = TestServer::start().await;
    let (visitor, chat) = visitor_with_chat(&server).await;
    for field in [
        "customer { pageHistory(first: -5) { url } }",
        "customer { pageHistory(first: 0) { url } }",
        "customer { pageHistory(first: 101) { url } }",
        "events(first: -5) { hasMore }",
        "events(first: 201) { hasMore }",
        "latestEvents(last: 0) { hasMore }",
    ] {
        let body = server
            .gql(
                Some(&visitor),
                &format!("query($id: ID!) {{ chat(id: $id) {{ {field} }} }}"),
                json!({"id": chat}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{field}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("must be between 1 and"),
            "{field}: {body}"
        );
    }
}

/// The SDK's operations as it sends them: each with the fragments it uses, by name.
fn sdk_operations() -> std::collections::BTreeMap<String, String> {
    let source = include_str!("../../mobile-sdk/graphql/operations.graphql");
    // Top-level definitions, split where braces balance (comments hold none).
    let mut definitions = Vec::new();
    let (mut current, mut depth) = (String::new(), 0);
    for line in source
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
    {
        current.push_str(line);
        current.push('\n');
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 && !current.trim().is_empty() {
            definitions.push(std::mem::take(&mut current));
        }
    }
    let name_of = |definition: &str| {
        let mut words = definition.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        let _keyword = words.find(|w| !w.is_empty());
        words.find(|w| !w.is_empty()).unwrap_or_default().to_owned()
    };
    let fragments: std::collections::BTreeMap<String, String> = definitions
        .iter()
        .filter(|d| d.trim_start().starts_with("fragment"))
        .map(|d| (name_of(d), d.clone()))
        .collect();
    let spreads = |text: &str| -> Vec<String> {
        text.split("...")
            .skip(1)
            .map(|rest| rest.trim_start())
            .filter(|rest| !rest.starts_with("on "))
            .map(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    };
    definitions
        .iter()
        .filter(|d| !d.trim_start().starts_with("fragment"))
        .map(|operation| {
            let mut used: Vec<String> = Vec::new();
            let mut pending = spreads(operation);
            while let Some(name) = pending.pop() {
                if !used.contains(&name) {
                    let fragment = fragments
                        .get(&name)
                        .unwrap_or_else(|| panic!("no fragment {name}"));
                    pending.extend(spreads(fragment));
                    used.push(name);
                }
            }
            let mut document = operation.clone();
            for name in used {
                document.push_str(&fragments[&name]);
            }
            (name_of(operation), document)
        })
        .collect()
}

/// Values of the right type for every variable the SDK's operations declare, at the largest
/// page sizes the server allows, so the worst case of each document is what gets checked.
fn sdk_variables(operation: &str) -> Value {
    let input = match operation {
        "TransferChat" => json!({"chatId": "none", "toAgentId": "none"}),
        "RegisterPushDevice" => json!({"platform": "IOS", "token": "t", "appId": "a"}),
        "CreateCannedResponse" | "UpdateCannedResponse" => {
            json!({"shortcut": "s", "title": "t", "text": "hi"})
        }
        "CreateTag" | "UpdateTag" => json!({"name": "t", "color": "#abc"}),
        "UpdateCustomer" => json!({"note": "n"}),
        "BanCustomer" => json!({"reason": "r"}),
        "Report" => json!({"from": "2026-01-01", "to": "2026-12-31"}),
        _ => Value::Null,
    };
    json!({
        "email": "nobody@example.com", "password": "wrong-password", "refreshToken": "x",
        "status": "ACCEPTING_CHATS", "id": "none", "chatId": "none", "customerId": "none", "first": 200, "last": 200,
        "isTyping": true, "text": "hi", "clientId": "c", "token": "t", "preferences": [],
        "input": input, "tagId": "none", "on": false, "endpointId": "none",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mobile_sdk_operations_pass_the_default_limits() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let operations = sdk_operations();
    assert!(operations.len() > 20, "{:?}", operations.keys());
    let refused = [
        "GRAPHQL_PARSE_FAILED",
        "GRAPHQL_VALIDATION_FAILED",
        "QUERY_TOO_COMPLEX",
    ];
    for (name, document) in &operations {
        if document.contains(&format!("subscription {name}")) {
            continue; // checked over the WebSocket below
        }
        let body: Value = server
            .http
            .post(&server.graphql_url)
            .bearer_auth(&owner)
            .json(&json!({"query": document, "variables": sdk_variables(name)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for error in body["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(!refused.contains(&code), "{name} was refused: {body}");
        }
    }
    for (name, query, variables) in [
        ("AgentEvents", operations["AgentEvents"].as_str(), json!({})),
        (
            "VisitorsChanged",
            operations["VisitorsChanged"].as_str(),
            json!({}),
        ),
        ("AGENT_EVENTS", crate::support::AGENT_EVENTS, json!({})),
        (
            "CHAT_EVENTS",
            crate::support::CHAT_EVENTS,
            json!({"chatId": "none"}),
        ),
    ] {
        // The loop above ran Logout: sign in again.
        let owner = server.owner_token().await;
        let mut ws = server.ws_ready(&owner).await;
        let payload = json!({"query": query, "variables": variables});
        ws.send(json!({"id": "1", "type": "subscribe", "payload": payload}))
            .await;
        // A refusal comes at once; an accepted subscription stays quiet until something happens.
        for answer in ws.quiet_for(Duration::from_secs(1)).await {
            let codes: Vec<&str> = answer["payload"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|error| error["extensions"]["code"].as_str())
                .collect();
            assert!(
                codes.iter().all(|code| !refused.contains(code)),
                "{name} was refused: {answer}"
            );
        }
    }
}

/// Asserts `body` refused a NUL character as BAD_USER_INPUT, saying so.
fn assert_nul_refused(body: &Value, operation: &str) {
    assert_eq!(error_code(body), "BAD_USER_INPUT", "{operation}: {body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("NUL character"),
        "{operation}: {body}"
    );
}

async fn nul_characters_are_refused_as_bad_user_input(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;

    // Anonymous, in a variable.
    let body = server
        .gql(
            None,
            START_VISITOR_SESSION,
            json!({"input": {"widgetKey": key, "visitorId": "v-nul", "name": "Ada\u{0}"}}),
        )
        .await;
    assert_nul_refused(&body, "startVisitorSession");
    // Anonymous, inline.
    let body = server
        .gql(
            None,
            r#"mutation { login(input: {email: "owner@example.com\u0000", password: "x"}) { accessToken } }"#,
            json!({}),
        )
        .await;
    assert_nul_refused(&body, "login");
    // A customer, in a variable.
    let visitor = crate::support::visitor(&server, &key, "v-nul").await;
    let body = server
        .gql(
            Some(&visitor),
            "mutation($m: String!) { startChat(input: {message: $m}) { id } }",
            json!({"m": "hello\u{0}"}),
        )
        .await;
    assert_nul_refused(&body, "startChat");
    // An agent, inline in a nested input.
    let body = server
        .gql(
            Some(&owner),
            r#"mutation { createAgent(input: {email: "nul@example.com", name: "Bad\u0000Name",
                password: "agent-password-1", role: AGENT}) { id } }"#,
            json!({}),
        )
        .await;
    assert_nul_refused(&body, "createAgent");
    // Over the WebSocket too.
    let mut ws = server.ws_ready(&owner).await;
    ws.send(json!({"id": "1", "type": "subscribe", "payload": {
        "query": "query($id: ID!) { chat(id: $id) { id } }", "variables": {"id": "x\u{0}"}}}))
        .await;
    let answer = ws.next().await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["payload"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Nothing was stored, and the same operations without the NUL work.
    crate::support::start_chat(&server, &visitor, "hello").await;
    server
        .create_agent(&owner, "nul@example.com", "AGENT")
        .await;
}

/// GET /readyz on a fresh connection: its status, body, and how long it took.
async fn readyz(server: &TestServer) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(format!("{}/readyz", server.base_url))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("/readyz answers within 15 s");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    (status, body, started.elapsed())
}

async fn readyz_says_ready_when_the_database_takes_writes(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let (status, body, _) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_a_full_disk_under_sqlite_at_once() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.min_free_disk = u64::MAX;
    })
    .await;
    let (status, body, took) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("SWITCHBOARD_MIN_FREE_DISK"), "{body}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Liveness is a different question.
    assert_eq!(healthz(&server).await, 200);
}

/// A TCP proxy in front of Postgres that can be made to swallow everything, as a network
/// partition would: connections stay open, nothing gets through.
struct Blackhole {
    addr: std::net::SocketAddr,
    swallowing: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Blackhole {
    async fn start(upstream: String) -> Blackhole {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallowing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = swallowing.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let flag = flag.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if flag.load(Ordering::SeqCst) {
                        let _held = client;
                        std::future::pending::<()>().await;
                        return;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        Self::pipe(client_read, server_write, flag.clone()),
                        Self::pipe(server_read, client_write, flag),
                    );
                });
            }
        });
        Blackhole { addr, swallowing }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        swallowing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if swallowing.load(std::sync::atomic::Ordering::SeqCst) {
                // Keep both ends open and say nothing, like a dead route.
                let _held = (from, to);
                std::future::pending::<()>().await;
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn swallow(&self) {
        self.swallowing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `url` with its host and port replaced by `addr`.
fn through(url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (credentials, rest) = match rest.split_once('@') {
        Some((credentials, rest)) => (format!("{credentials}@"), rest),
        None => (String::new(), rest),
    };
    let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
    format!("{scheme}://{credentials}{addr}{path}")
}

fn host_and_port(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let rest = rest.rsplit_once('@').map(|(_, rest)| rest).unwrap_or(rest);
    let host = rest.split('/').next().unwrap();
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_an_unreachable_postgres_within_a_second() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres(base) = &backend else {
        unreachable!()
    };
    let proxy = Blackhole::start(host_and_port(base)).await;
    let server = TestServer::start_with(backend.clone(), |config| {
        let url = config.database_url.take().unwrap();
        config.database_url = Some(through(&url, proxy.addr));
    })
    .await;
    let (status, body, _) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");

    proxy.swallow();
    let (status, body, took) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    // One second in the server; the rest is slack for a loaded machine.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(healthz(&server).await, 200);
}

/// Asks /readyz until it answers `status` (within 20 s); its body.
async fn readyz_until(server: &TestServer, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (now, body, _) = readyz(server).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still says {now} {body} after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A pending push job for the owner's phone, due now.
async fn due_push_job(server: &TestServer) -> String {
    use switchboard::domain::{self, NotificationKind, PushJob, PushJobStatus, PushMessage};
    let owner = server.owner_token().await;
    crate::push::register(server, &owner, "owner-phone").await;
    let me = server.ok(Some(&owner), "{ me { id } }", json!({})).await;
    let agent_id = me["me"]["id"].as_str().unwrap();
    let device = server.store.push_devices(agent_id).await.unwrap().remove(0);
    let job = PushJob {
        id: domain::new_id(),
        device_id: device.id.clone(),
        agent_id: device.agent_id.clone(),
        organization_id: device.organization_id.clone(),
        kind: NotificationKind::NewMessage,
        chat_id: None,
        message: PushMessage::new(
            NotificationKind::NewMessage,
            "Cleo",
            "is anyone there?",
            &device.organization_id,
            None,
            None,
        ),
        status: PushJobStatus::Pending,
        attempts: 0,
        next_attempt_at: domain::now(),
        last_error: None,
        created_at: domain::now(),
    };
    let mut tx = server.store.begin().await.unwrap();
    tx.lock_organization(&device.organization_id).await.unwrap();
    tx.insert_push_job(&job).await.unwrap();
    tx.commit().await.unwrap();
    job.id
}

/// An outbox worker that takes no jobs while some are due makes the node not ready, naming
/// the worker, until it takes them again. Here a trigger refuses its claims, as a table it
/// cannot write would; the database still takes other writes.
async fn readyz_reports_an_outbox_worker_that_takes_no_due_jobs(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.outbox_stalled_after = Duration::from_secs(2);
    })
    .await;
    let postgres = server.postgres_url().is_some();
    if postgres {
        server
            .execute_sql(
                "CREATE FUNCTION refuse_push_claims() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'push_jobs refuses writes'; END $$",
            )
            .await;
        server
            .execute_sql(
                "CREATE TRIGGER refuse_push_claims BEFORE UPDATE ON push_jobs \
                 FOR EACH ROW EXECUTE FUNCTION refuse_push_claims()",
            )
            .await;
    } else {
        server
            .execute_sql(
                "CREATE TRIGGER refuse_push_claims BEFORE UPDATE ON push_jobs \
                 BEGIN SELECT RAISE(ABORT, 'push_jobs refuses writes'); END",
            )
            .await;
    }
    // Nothing is due yet: a worker that cannot claim is no trouble.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body, _) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");

    let job = due_push_job(&server).await;
    let body = readyz_until(&server, 503).await;
    assert!(
        body.contains("the push outbox worker has taken no jobs for"),
        "{body}"
    );
    assert!(body.contains("SWITCHBOARD_OUTBOX_STALLED_AFTER"), "{body}");
    assert_eq!(healthz(&server).await, 200);

    if postgres {
        server
            .execute_sql("DROP TRIGGER refuse_push_claims ON push_jobs")
            .await;
    } else {
        server.execute_sql("DROP TRIGGER refuse_push_claims").await;
    }
    readyz_until(&server, 200).await;
    let attempts = server
        .query_scalar(&format!(
            "SELECT CAST(attempts AS BIGINT) FROM push_jobs WHERE id = '{job}'"
        ))
        .await;
    assert!(attempts >= 1, "the job was taken once the worker could");
}

crate::on_both_backends!(
    nul_characters_are_refused_as_bad_user_input,
    readyz_says_ready_when_the_database_takes_writes,
    readyz_reports_an_outbox_worker_that_takes_no_due_jobs,
);
