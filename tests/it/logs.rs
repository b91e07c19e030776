//! The logs an operator reads: the server binary with SWITCHBOARD_LOG_FORMAT=json writes only
//! JSON lines, an access line per request and per WebSocket, failed logins and rate limits at warn
//! with their reason, and never a password, a token or a message's text.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");
const OWNER_EMAIL: &str = "owner@logs.test";
const OWNER_PASSWORD: &str = "owner-pass-never-logged";
const WRONG_PASSWORD: &str = "wrong-pass-never-logged";
const MESSAGE_TEXT: &str = "my card number is 4111 never logged";

/// The server as a child process, with every line it writes to stdout and stderr.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(data_dir: &std::path::Path) -> Server {
        let mut child = Command::new(BINARY)
            .env_clear()
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", data_dir)
            .env("SWITCHBOARD_BOOTSTRAP_OWNER_EMAIL", OWNER_EMAIL)
            .env("SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD", OWNER_PASSWORD)
            // The second failed login in a row is refused by the limit.
            .env("SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let readers = vec![
            read_lines(BufReader::new(stdout), lines.clone()),
            read_lines(BufReader::new(stderr), lines.clone()),
        ];
        Server {
            child,
            lines,
            readers,
        }
    }

    /// The first logged line that `wanted` accepts, waiting up to 20 s for it.
    fn wait_for(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| wanted(line));
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no such line in {:#?}",
                self.lines
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server with SIGTERM and returns everything it wrote.
    fn stop(mut self) -> Vec<String> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "SIGTERM is a clean exit: {status}");
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        std::mem::take(&mut *self.lines.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn read_lines(
    stream: impl BufRead + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in stream.lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    })
}

async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = http
        .post(url)
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

const LOGIN: &str = "mutation($e: String!, $p: String!) {
    login(input: {email: $e, password: $p}) { accessToken refreshToken } }";

#[tokio::test]
async fn json_logs_carry_the_access_log_and_failed_logins_but_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let listening = server.wait_for(|line| line["message"] == "listening");
    let address = listening["address"].as_str().unwrap().to_owned();
    let url = format!("http://{address}/graphql");
    let http = reqwest::Client::new();

    // The owner signs in, then fails twice: the second attempt is refused by the limit.
    let login = gql(
        &http,
        &url,
        None,
        LOGIN,
        json!({"e": OWNER_EMAIL, "p": OWNER_PASSWORD}),
    )
    .await;
    let access_token = login["data"]["login"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{login}"))
        .to_owned();
    let refresh_token = login["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for code in ["UNAUTHENTICATED", "RATE_LIMITED"] {
        let failed = gql(
            &http,
            &url,
            None,
            LOGIN,
            json!({"e": OWNER_EMAIL, "p": WRONG_PASSWORD}),
        )
        .await;
        assert_eq!(failed["errors"][0]["extensions"]["code"], code, "{failed}");
    }

    // A GraphQL request with a token and a request id of the client's.
    let response = http
        .post(&url)
        .bearer_auth(&access_token)
        .header("x-request-id", "client-chosen-id-1")
        .json(&json!({"query": "{ organization { widgetKey } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id-1");
    let body: Value = response.json().await.unwrap();
    let widget_key = body["data"]["organization"]["widgetKey"]
        .as_str()
        .unwrap()
        .to_owned();

    // A token in a query string, on a route with ids in its path.
    let download = http
        .get(format!(
            "http://{address}/files/some-file-id/notes.txt?token={access_token}"
        ))
        .send()
        .await
        .unwrap();
    assert!(download.status().is_client_error());
    let generated_id = download.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    // A customer writes a message.
    let session = gql(
        &http,
        &url,
        None,
        "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }",
        json!({"input": {"widgetKey": widget_key, "visitorId": "v1"}}),
    )
    .await;
    let visitor_token = session["data"]["startVisitorSession"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{session}"))
        .to_owned();
    let started = gql(
        &http,
        &url,
        Some(&visitor_token),
        "mutation($m: String!) { startChat(input: {message: $m}) { id } }",
        json!({"m": MESSAGE_TEXT}),
    )
    .await;
    assert!(
        started["data"]["startChat"]["id"].is_string(),
        "the owner, just signed in, takes chats: {started}"
    );

    // A WebSocket that signs in with the token, then is closed by the client.
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {access_token}")}})
                .to_string(),
        ))
        .await
        .unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack}");
    socket
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {}
    server.wait_for(|line| line["message"] == "websocket closed");

    let lines = server.stop();

    // Every line is one JSON object with a time, a level and a message.
    let logged: Vec<Value> = lines
        .iter()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
            assert!(value["timestamp"].is_string(), "{line}");
            assert!(value["level"].is_string(), "{line}");
            assert!(value["message"].is_string(), "{line}");
            value
        })
        .collect();

    // Nothing secret, nor anything the customer wrote.
    for secret in [
        OWNER_PASSWORD,
        WRONG_PASSWORD,
        &access_token,
        &refresh_token,
        &visitor_token,
        MESSAGE_TEXT,
        "some-file-id",
    ] {
        for line in &lines {
            assert!(!line.contains(secret), "{secret:?} logged: {line}");
        }
    }

    // An access line per request, with the request's fields in its span.
    let access: Vec<&Value> = logged
        .iter()
        .filter(|line| line["message"] == "request")
        .collect();
    // Three logins, the organization, the download, the visitor's session and chat; the
    // WebSocket's upgrade has its own line, below.
    assert_eq!(access.len(), 7, "{access:#?}");
    for line in &access {
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["status"].is_u64(), "{line}");
        assert!(line["duration_ms"].is_number(), "{line}");
        let span = &line["span"];
        for field in ["method", "route", "client", "request_id"] {
            assert!(
                span[field].as_str().is_some_and(|value| !value.is_empty()),
                "{field} missing: {line}"
            );
        }
        assert_eq!(span["client"], "127.0.0.1", "{line}");
    }
    let by_id = |id: &str| {
        access
            .iter()
            .find(|line| line["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no access line for {id}: {access:#?}"))
    };
    let graphql = by_id("client-chosen-id-1");
    assert_eq!(graphql["span"]["method"], "POST");
    assert_eq!(graphql["span"]["route"], "/graphql");
    assert_eq!(graphql["status"], 200);
    let download = by_id(&generated_id);
    assert_eq!(download["span"]["method"], "GET");
    assert_eq!(download["span"]["route"], "/files/{id}/{name}");
    assert_eq!(download["status"].as_u64(), Some(403));

    // The WebSocket's line, when it closed.
    let websocket = logged
        .iter()
        .find(|line| line["message"] == "websocket closed")
        .unwrap();
    assert_eq!(websocket["span"]["route"], "/graphql", "{websocket}");
    assert_eq!(websocket["span"]["method"], "GET", "{websocket}");
    assert_eq!(websocket["span"]["client"], "127.0.0.1", "{websocket}");
    assert!(websocket["span"]["request_id"].is_string(), "{websocket}");
    assert_eq!(websocket["protocol"], "graphql-transport-ws", "{websocket}");
    assert!(websocket["duration_ms"].is_number(), "{websocket}");
    assert_eq!(websocket["closed_by"], "client", "{websocket}");
    assert_eq!(websocket["close_code"], 1000, "{websocket}");
    assert_eq!(websocket["close_reason"], "bye", "{websocket}");

    // The failed logins, with their reasons and the request each came in.
    let warnings = |message: &str| -> Vec<&Value> {
        logged
            .iter()
            .filter(|line| line["message"] == message)
            .inspect(|line| {
                assert_eq!(line["level"], "WARN", "{line}");
                assert_eq!(line["span"]["route"], "/graphql", "{line}");
                assert!(line["span"]["request_id"].is_string(), "{line}");
            })
            .collect()
    };
    let failed_logins = warnings("failed login");
    let reasons: Vec<&Value> = failed_logins.iter().map(|line| &line["reason"]).collect();
    assert_eq!(reasons, ["wrong password", "too many failed attempts"]);
    let limits = warnings("rate limit hit");
    assert_eq!(limits.len(), 1, "{limits:#?}");
    assert_eq!(limits[0]["limit"], "login_account");
    assert!(limits[0]["retry_after_secs"].is_u64());
}

#[test]
fn an_unknown_log_format_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .env_clear()
        .env("SWITCHBOARD_LOG_FORMAT", "xml")
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("SWITCHBOARD_LOG_FORMAT"), "{stderr}");
    assert!(stderr.contains("'xml'"), "{stderr}");
    assert!(stderr.contains("text, json"), "{stderr}");
    assert!(!dir.path().join("switchboard.db").exists());
}
