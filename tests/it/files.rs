//! Files attached to messages: customers and agents upload into their chat and send; each side
//! downloads through a signed link; the organization's limits refuse what is too big or of the
//! wrong type with clear errors; other organizations, other customers' chats, and expired or
//! tampered links get nothing.

use futures_util::stream;
use hmac::Mac;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, WsClient, agent_events, start_chat, visitor, widget_key,
};

/// A PNG's signature and the start of its header: what the content check looks at.
pub const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
const PDF: &[u8] = b"%PDF-1.4\n% a tiny document\n";

const SEND: &str = "mutation($c: ID!, $t: String!, $f: [ID!]) {
    sendMessage(input: {chatId: $c, text: $t, fileIds: $f}) {
        id text attachments { id name contentType size isImage url } } }";
const TRANSCRIPT: &str = "query($c: ID!) { chat(id: $c) { events { items {
    id text attachments { id name contentType size isImage url } } } } }";
const SETTINGS: &str = "mutation($input: FileSettingsInput!) {
    updateFileSettings(input: $input) { maxFileBytes allowedTypes } }";

/// What an upload answered: status and JSON body.
pub async fn upload(
    server: &TestServer,
    token: &str,
    chat: &str,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/files", server.base_url))
        .query(&[("chatId", chat), ("name", name)])
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Uploads a file that must be accepted; returns its id.
pub async fn uploaded(
    server: &TestServer,
    token: &str,
    chat: &str,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> String {
    let (status, body) = upload(server, token, chat, name, content_type, bytes).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// GETs a relative link; status, headers and body.
async fn fetch(server: &TestServer, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = server
        .http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

/// The owner (accepting chats, live) and a customer with an active chat assigned to them.
struct Chat {
    server: TestServer,
    owner: String,
    customer: String,
    chat: String,
    _events: WsClient,
}

async fn chat_with_owner(
    backend: Backend,
    configure: impl FnOnce(&mut switchboard::Config),
) -> Chat {
    let server = TestServer::start_with(backend, configure).await;
    let owner = server.owner_token().await;
    let mut events = agent_events(&server, &owner, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "files-visitor-1").await;
    let (chat, status) = start_chat(&server, &customer, "I have a photo of the damage").await;
    assert_eq!(status, "ACTIVE");
    events.next_event("ChatAssigned").await;
    Chat {
        server,
        owner,
        customer,
        chat,
        _events: events,
    }
}

async fn agent_and_customer_exchange_files(backend: Backend) {
    let Chat {
        server,
        owner,
        customer,
        chat,
        _events,
    } = chat_with_owner(backend, |_| {}).await;

    // The customer sends a photo with no text.
    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "../damage é.png",
        "image/png",
        PNG,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "damage é.png");
    assert_eq!(body["contentType"], "image/png");
    assert_eq!(body["size"], PNG.len());
    assert_eq!(body["isImage"], true);
    let photo = body["id"].as_str().unwrap().to_owned();
    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "", "f": [photo]}),
        )
        .await;
    let message = &sent["sendMessage"];
    assert_eq!(message["text"], "");
    assert_eq!(message["attachments"][0]["id"], photo.as_str());
    assert!(
        message["attachments"][0]["url"]
            .as_str()
            .unwrap()
            .starts_with("/files/")
    );

    // The agent sees it in the transcript and downloads it, shown inline.
    let transcript = server
        .ok(Some(&owner), TRANSCRIPT, json!({"c": chat}))
        .await;
    let items = transcript["chat"]["events"]["items"].as_array().unwrap();
    let with_file = items
        .iter()
        .find(|m| !m["attachments"].as_array().unwrap().is_empty())
        .expect("the message with the photo");
    let url = with_file["attachments"][0]["url"].as_str().unwrap();
    let (status, headers, bytes) = fetch(&server, url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PNG);
    assert_eq!(headers["content-type"], "image/png");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("inline;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''damage%20%C3%A9.png"),
        "{disposition}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    // Messages without files have none.
    assert!(items.iter().any(|m| m["attachments"] == json!([])));

    // The agent answers with a PDF; the customer downloads it as an attachment.
    let pdf = uploaded(
        &server,
        &owner,
        &chat,
        "invoice.pdf",
        "application/pdf",
        PDF,
    )
    .await;
    let sent = server
        .ok(
            Some(&owner),
            SEND,
            json!({"c": chat, "t": "Here is the invoice", "f": [pdf]}),
        )
        .await;
    assert_eq!(sent["sendMessage"]["attachments"][0]["isImage"], false);
    let transcript = server
        .ok(Some(&customer), TRANSCRIPT, json!({"c": chat}))
        .await;
    let items = transcript["chat"]["events"]["items"].as_array().unwrap();
    let invoice = items
        .iter()
        .find(|m| m["text"] == "Here is the invoice")
        .expect("the agent's message");
    let url = invoice["attachments"][0]["url"].as_str().unwrap();
    let (status, headers, bytes) = fetch(&server, url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");

    // A larger file, streamed in many chunks past the content check, comes back whole.
    let big: Vec<u8> = (0..700_000).map(|i| b'a' + (i % 26) as u8).collect();
    let log = uploaded(&server, &customer, &chat, "log.txt", "text/plain", &big).await;
    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "the log", "f": [log]}),
        )
        .await;
    let url = sent["sendMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap();
    let (status, headers, bytes) = fetch(&server, url).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-length"], "700000");
    assert!(bytes == big, "the file comes back whole");

    // A file goes with one message only; an empty message still needs files.
    let again = server
        .gql(
            Some(&owner),
            SEND,
            json!({"c": chat, "t": "again", "f": [pdf]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&again), "CONFLICT", "{again}");
    let empty = server
        .gql(Some(&owner), SEND, json!({"c": chat, "t": "  ", "f": []}))
        .await;
    assert_eq!(
        crate::support::error_code(&empty),
        "BAD_USER_INPUT",
        "{empty}"
    );
}

async fn limits_refuse_what_is_too_big_or_of_the_wrong_type(backend: Backend) {
    let Chat {
        server,
        owner,
        customer,
        chat,
        _events,
    } = chat_with_owner(backend, |_| {}).await;

    // The defaults: 10 MB; images, PDF, text and office documents.
    let defaults = server
        .ok(
            Some(&customer),
            "{ fileSettings { maxFileBytes allowedTypes } }",
            json!({}),
        )
        .await;
    assert_eq!(defaults["fileSettings"]["maxFileBytes"], 10 * 1024 * 1024);
    assert!(
        defaults["fileSettings"]["allowedTypes"]
            .as_array()
            .unwrap()
            .contains(&json!("application/pdf"))
    );

    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "setup.exe",
        "application/x-msdownload",
        b"MZ",
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(code(&body), "FILE_TYPE_NOT_ALLOWED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("application/x-msdownload")
    );
    // An SVG with a script named as a PNG, and a page named as a PDF.
    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "cat.png",
        "image/png",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (415, "FILE_TYPE_NOT_ALLOWED"),
        "{body}"
    );
    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "a.pdf",
        "application/pdf",
        b"<html><script>",
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (415, "FILE_TYPE_NOT_ALLOWED"),
        "{body}"
    );
    let (status, body) = upload(&server, &customer, &chat, "x.html", "text/html", b"<p>").await;
    assert_eq!(
        (status, code(&body)),
        (415, "FILE_TYPE_NOT_ALLOWED"),
        "{body}"
    );
    let (status, body) = upload(&server, &customer, &chat, "empty.txt", "text/plain", b"").await;
    assert_eq!((status, code(&body)), (400, "BAD_USER_INPUT"), "{body}");

    // Admins set the limits; pages and scripts cannot be allowed; plain agents cannot.
    let refused = server
        .gql(
            Some(&owner),
            SETTINGS,
            json!({"input": {"maxFileBytes": 1000, "allowedTypes": ["text/html"]}}),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "BAD_USER_INPUT");
    let agent = server
        .create_agent(&owner, "plain@example.com", "AGENT")
        .await;
    let agent_token = server.agent_token("plain@example.com").await;
    assert!(!agent.is_empty());
    let refused = server
        .gql(
            Some(&agent_token),
            SETTINGS,
            json!({"input": {"maxFileBytes": 1000, "allowedTypes": ["text/plain"]}}),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "FORBIDDEN");
    let set = server
        .ok(
            Some(&owner),
            SETTINGS,
            json!({"input": {"maxFileBytes": 1000, "allowedTypes": ["Text/Plain", "image/png"]}}),
        )
        .await;
    assert_eq!(
        set["updateFileSettings"],
        json!({"maxFileBytes": 1000, "allowedTypes": ["text/plain", "image/png"]})
    );

    // Too big, with its length announced…
    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "big.txt",
        "text/plain",
        &[b'a'; 1001],
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "FILE_TOO_LARGE");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes"),
        "{body}"
    );
    // …and streamed without a length: cut off as it arrives.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..50).map(|_| Ok(vec![b'b'; 100])).collect();
    let response = server
        .http
        .post(format!(
            "{}/files?chatId={chat}&name=stream.txt",
            server.base_url
        ))
        .bearer_auth(&customer)
        .header("content-type", "text/plain")
        .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // PDFs are no longer allowed.
    let (status, _) = upload(&server, &customer, &chat, "a.pdf", "application/pdf", PDF).await;
    assert_eq!(status, 415);
    let (status, _) = upload(&server, &customer, &chat, "ok.txt", "text/plain", b"fine").await;
    assert_eq!(status, 201);
}

async fn other_organizations_and_chats_get_nothing(backend: Backend) {
    let Chat {
        server,
        owner,
        customer,
        chat,
        _events,
    } = chat_with_owner(backend, |c| c.allow_signup = true).await;
    let photo = uploaded(&server, &customer, &chat, "a.png", "image/png", PNG).await;

    // Another organization cannot upload into the chat, send its file, or read it.
    let rival = server.rival_organization().await.0;
    let (status, body) = upload(&server, &rival, &chat, "x.png", "image/png", PNG).await;
    assert_eq!((status, code(&body)), (404, "NOT_FOUND"), "{body}");
    let rival_key = widget_key(&server, &rival).await;
    let mut rival_events = agent_events(&server, &rival, None).await;
    let rival_customer = visitor(&server, &rival_key, "rival-visitor").await;
    let (rival_chat, _) = start_chat(&server, &rival_customer, "hello").await;
    rival_events.next_event("ChatAssigned").await;
    let stolen = server
        .gql(
            Some(&rival),
            SEND,
            json!({"c": rival_chat, "t": "look", "f": [photo]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&stolen), "NOT_FOUND", "{stolen}");
    let stolen = server
        .gql(
            Some(&rival_customer),
            SEND,
            json!({"c": rival_chat, "t": "look", "f": [photo]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&stolen), "NOT_FOUND", "{stolen}");
    let read = server
        .gql(Some(&rival), TRANSCRIPT, json!({"c": chat}))
        .await;
    assert_eq!(crate::support::error_code(&read), "NOT_FOUND");

    // The owner cannot send the customer's file as their own either.
    let taken = server
        .gql(
            Some(&owner),
            SEND,
            json!({"c": chat, "t": "mine", "f": [photo]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&taken), "NOT_FOUND", "{taken}");

    // Sent, its link downloads; the same signature on another file's id does not.
    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "photo", "f": [photo]}),
        )
        .await;
    let url = sent["sendMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fetch(&server, &url).await.0, 200);
    let rival_file = uploaded(
        &server,
        &rival_customer,
        &rival_chat,
        "b.png",
        "image/png",
        PNG,
    )
    .await;
    let (status, _, _) = fetch(&server, &url.replace(&photo, &rival_file)).await;
    assert_eq!(status, 403);
    let (status, _, _) = fetch(&server, &format!("/files/{photo}/a.png")).await;
    assert_eq!(status, 403);
}

async fn expired_or_tampered_links_are_refused(backend: Backend) {
    let Chat {
        server,
        customer,
        chat,
        _events,
        ..
    } = chat_with_owner(backend, |_| {}).await;
    let photo = uploaded(&server, &customer, &chat, "a.png", "image/png", PNG).await;
    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "", "f": [photo]}),
        )
        .await;
    let url = sent["sendMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (path, query) = url.split_once('?').unwrap();
    let params: std::collections::HashMap<_, _> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let expires: i64 = params["expires"].parse().unwrap();
    let signature = &params["signature"];
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now + 14 * 60..=now + 16 * 60).contains(&expires),
        "about 15 minutes"
    );

    let mut flipped = signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    for bad in [
        format!("{path}?expires={expires}&signature={flipped}"),
        format!("{path}?expires={}&signature={signature}", expires + 3600),
        format!("{path}?expires={expires}"),
        format!("{path}?expires={expires}&signature=xyz"),
    ] {
        let (status, _, body) = fetch(&server, &bad).await;
        assert_eq!(status, 403, "{bad}");
        assert!(String::from_utf8_lossy(&body).contains("expired"));
    }

    // A link signed with the server's own key, but expired.
    let key = {
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test-secret-test-secret-test-secret!")
                .unwrap();
        mac.update(b"switchboard file download links");
        mac.finalize().into_bytes()
    };
    let sign = |expires: i64| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("switchboard-file\n{photo}\n{expires}").as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        &sign(expires),
        signature,
        "the test signs as the server does"
    );
    let past = now - 1;
    let (status, _, _) = fetch(
        &server,
        &format!("{path}?expires={past}&signature={}", sign(past)),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = fetch(&server, &url).await;
    assert_eq!(status, 200);
}

async fn a_customer_gets_no_link_to_another_customers_file(backend: Backend) {
    let Chat {
        server,
        owner,
        customer,
        chat,
        _events,
    } = chat_with_owner(backend, |_| {}).await;
    let photo = uploaded(&server, &customer, &chat, "a.png", "image/png", PNG).await;
    server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "mine", "f": [photo]}),
        )
        .await;

    let key = widget_key(&server, &owner).await;
    let other = visitor(&server, &key, "files-visitor-2").await;
    let (other_chat, _) = start_chat(&server, &other, "me too").await;
    let read = server
        .gql(Some(&other), TRANSCRIPT, json!({"c": chat}))
        .await;
    assert_eq!(crate::support::error_code(&read), "NOT_FOUND");
    assert!(!read.to_string().contains("/files/"), "{read}");
    // Nor may they upload into it, or send its file from their own chat.
    let (status, _) = upload(&server, &other, &chat, "x.png", "image/png", PNG).await;
    assert_eq!(status, 404);
    let stolen = server
        .gql(
            Some(&other),
            SEND,
            json!({"c": other_chat, "t": "x", "f": [photo]}),
        )
        .await;
    assert_eq!(crate::support::error_code(&stolen), "NOT_FOUND", "{stolen}");
    // Unauthenticated uploads are refused.
    let response = server
        .http
        .post(format!(
            "{}/files?chatId={chat}&name=a.png",
            server.base_url
        ))
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

async fn uploads_nobody_sends_are_capped_and_swept(backend: Backend) {
    let mut data_dir = std::path::PathBuf::new();
    let Chat {
        mut server,
        customer,
        chat,
        _events,
        ..
    } = chat_with_owner(backend, |c| data_dir = c.data_dir.clone()).await;
    let sent = uploaded(&server, &customer, &chat, "sent.txt", "text/plain", b"sent").await;
    server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "", "f": [sent]}),
        )
        .await;
    let mut unsent = Vec::new();
    for n in 0..20 {
        let name = format!("draft-{n}.txt");
        unsent.push(uploaded(&server, &customer, &chat, &name, "text/plain", b"draft").await);
    }
    let (status, body) = upload(
        &server,
        &customer,
        &chat,
        "one-more.txt",
        "text/plain",
        b"x",
    )
    .await;
    assert_eq!((status, code(&body)), (409, "CONFLICT"), "{body}");

    // A day later, the server's sweep deletes what was never sent, rows and bytes.
    server
        .execute_sql("UPDATE files SET created_at = created_at - 90000000")
        .await;
    let files_dir = data_dir.join("files");
    let stored = |dir: &std::path::Path| walk(dir).len();
    assert_eq!(stored(&files_dir), 21);
    server.shut_down().await;
    server.start_again().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for id in &unsent {
        while !matches!(
            server.store.file(id).await,
            Err(switchboard::store::DbError::NotFound)
        ) {
            assert!(std::time::Instant::now() < deadline, "{id} was not swept");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    assert!(server.store.file(&sent).await.is_ok(), "a sent file stays");
    assert_eq!(stored(&files_dir), 1, "only the sent file's bytes are left");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

async fn a_note_never_gives_its_files_to_the_customer(backend: Backend) {
    let Chat {
        server,
        owner,
        customer,
        chat,
        _events,
    } = chat_with_owner(backend, |_| {}).await;
    let file = uploaded(
        &server,
        &owner,
        &chat,
        "internal.pdf",
        "application/pdf",
        PDF,
    )
    .await;
    let sent = server
        .ok(
            Some(&owner),
            SEND,
            json!({"c": chat, "t": "for the team", "f": [file]}),
        )
        .await;
    let id = sent["sendMessage"]["id"].as_str().unwrap();
    // Made a note the way the notes' write path stores one.
    server
        .execute_sql(&format!(
            "UPDATE chat_events SET visibility = 'AGENTS' WHERE id = '{id}'"
        ))
        .await;
    let agents = server
        .ok(Some(&owner), TRANSCRIPT, json!({"c": chat}))
        .await;
    assert!(agents.to_string().contains("/files/"), "{agents}");
    let seen = server
        .gql(Some(&customer), TRANSCRIPT, json!({"c": chat}))
        .await;
    assert!(!seen.to_string().contains("/files/"), "{seen}");
    let latest = server
        .gql(
            Some(&customer),
            "query($c: ID!) { chat(id: $c) { latestEvents { items { attachments { url } } } } }",
            json!({"c": chat}),
        )
        .await;
    assert!(!latest.to_string().contains("/files/"), "{latest}");
}

/// The app's keychain, which this test does not need.
struct NoKeychain;

impl switchboard_sdk::SessionStore for NoKeychain {
    fn save(&self, _session: switchboard_sdk::Session) {}
    fn clear(&self) {}
}

/// What the SDK's outbox reports.
struct Outgoing(tokio::sync::mpsc::UnboundedSender<switchboard_sdk::OutgoingMessage>);

impl switchboard_sdk::EventListener for Outgoing {
    fn on_event(&self, _event: switchboard_sdk::AgentEvent) {}
    fn on_connection_state(&self, _state: switchboard_sdk::ConnectionState) {}
    fn on_outgoing_message(&self, message: switchboard_sdk::OutgoingMessage) {
        let _ = self.0.send(message);
    }
}

async fn the_sdk_uploads_sends_and_reads_attachments(backend: Backend) {
    use switchboard_sdk::{Client, ClientConfig, OutgoingState, SdkError};
    let Chat {
        server,
        customer,
        chat,
        _events,
        ..
    } = chat_with_owner(backend, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let app = Client::new(
        ClientConfig {
            server_url: server.base_url.clone(),
            data_dir: dir.path().to_string_lossy().into_owned(),
        },
        Box::new(NoKeychain),
    )
    .unwrap();
    app.login(
        crate::support::OWNER_EMAIL.into(),
        crate::support::OWNER_PASSWORD.into(),
    )
    .await
    .unwrap();
    let (tx, mut outgoing) = tokio::sync::mpsc::unbounded_channel();
    let _stream = app.subscribe(Box::new(Outgoing(tx)));

    let settings = app.file_settings().await.unwrap();
    assert_eq!(settings.max_file_bytes, 10 * 1024 * 1024);
    let file = app
        .upload_file(
            chat.clone(),
            PNG.to_vec(),
            "shot.png".into(),
            "image/png".into(),
        )
        .await
        .unwrap();
    assert!(file.is_image);
    assert_eq!(file.size, PNG.len() as i64);
    match app
        .upload_file(
            chat.clone(),
            b"MZ".to_vec(),
            "a.exe".into(),
            "application/x-msdownload".into(),
        )
        .await
    {
        Err(SdkError::FileTypeNotAllowed { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    let queued = app
        .send_files(chat.clone(), String::new(), vec![file.id.clone()])
        .unwrap();
    assert_eq!(queued.file_ids, vec![file.id.clone()]);
    let sent = loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), outgoing.recv())
            .await
            .expect("the outbox reports in time")
            .unwrap();
        if message.state != OutgoingState::Pending {
            break message;
        }
    };
    assert_eq!(sent.state, OutgoingState::Sent, "{sent:?}");
    let attachment = &sent.message.unwrap().attachments[0];
    assert_eq!(attachment.id, file.id);
    assert_eq!(attachment.name, "shot.png");

    // The transcript carries it, and its link downloads for the customer's side too.
    let detail = app.chat_latest(chat.clone(), None, 10).await.unwrap();
    let with_file = detail
        .messages
        .iter()
        .find(|m| !m.attachments.is_empty())
        .expect("the message with the file");
    let url = app
        .file_url(with_file.attachments[0].url.clone().unwrap())
        .unwrap();
    assert!(url.starts_with(&server.base_url), "{url}");
    let bytes = server
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), PNG);
    let seen = server
        .ok(Some(&customer), TRANSCRIPT, json!({"c": chat}))
        .await;
    assert!(seen.to_string().contains(&file.id));
}

on_both_backends!(
    a_note_never_gives_its_files_to_the_customer,
    uploads_nobody_sends_are_capped_and_swept,
    the_sdk_uploads_sends_and_reads_attachments,
    agent_and_customer_exchange_files,
    limits_refuse_what_is_too_big_or_of_the_wrong_type,
    other_organizations_and_chats_get_nothing,
    expired_or_tampered_links_are_refused,
    a_customer_gets_no_link_to_another_customers_file,
);
