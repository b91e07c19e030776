//! Attached files in an S3-compatible store: moto's server mode on 127.0.0.1, started here on
//! a free port. Its `moto_server` comes from SWITCHBOARD_TEST_MOTO_SERVER (CI installs
//! tests/tools/requirements.txt and sets it, so there a missing server fails the run) or from
//! PATH; without either the suite is skipped with a note, like the Postgres one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::files::{PNG, upload, uploaded};
use crate::on_both_backends;
use crate::support::{Backend, TestServer, agent_events, start_chat, visitor, widget_key};

const MOTO_VAR: &str = "SWITCHBOARD_TEST_MOTO_SERVER";
const BUCKET: &str = "switchboard-files";

/// A moto server, stopped when this goes.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto with an empty bucket; `None` (skipped) when no moto_server is installed
    /// and none was required.
    async fn start() -> Option<Moto> {
        let program = match std::env::var(MOTO_VAR) {
            Ok(path) if !path.is_empty() => path,
            _ => {
                let on_path = std::env::var_os("PATH").and_then(|paths| {
                    std::env::split_paths(&paths)
                        .map(|dir| dir.join("moto_server"))
                        .find(|p| p.is_file())
                });
                match on_path {
                    Some(path) => path.display().to_string(),
                    None => {
                        eprintln!(
                            "skipped: install tests/tools/requirements.txt and set {MOTO_VAR} to \
                             run the S3 suite"
                        );
                        return None;
                    }
                }
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("{MOTO_VAR}={program} does not start: {err}"));
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..100 {
            if http.get(&moto.endpoint).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            ready,
            "moto did not answer at {} within 10 s",
            moto.endpoint
        );
        let created = http
            .put(format!("{}/{BUCKET}", moto.endpoint))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "creating the bucket: {created:?}"
        );
        Some(moto)
    }

    /// The keys in the bucket.
    async fn keys(&self) -> Vec<String> {
        let listing = reqwest::get(format!("{}/{BUCKET}?list-type=2", self.endpoint))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect()
    }
}

const SEND: &str = "mutation($c: ID!, $t: String!, $f: [ID!]) {
    sendMessage(input: {chatId: $c, text: $t, fileIds: $f}) { attachments { id url } } }";

async fn files_round_trip_through_an_s3_compatible_store(backend: Backend) {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let server = TestServer::start_with(backend, |c| {
        c.files.s3_bucket = Some(BUCKET.into());
        c.files.s3_endpoint = Some(moto.endpoint.clone());
        c.files.s3_allow_http = true;
        c.files.s3_access_key_id = Some("testing".into());
        c.files.s3_secret_access_key = Some("testing".into());
    })
    .await;
    let owner = server.owner_token().await;
    let mut events = agent_events(&server, &owner, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "s3-visitor").await;
    let (chat, _) = start_chat(&server, &customer, "a photo").await;
    events.next_event("ChatAssigned").await;

    let photo = uploaded(&server, &customer, &chat, "a.png", "image/png", PNG).await;
    let keys = moto.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].ends_with(&photo), "{keys:?}");
    // A file larger than one multipart part (5 MB) arrives whole.
    let big: Vec<u8> = (0..6 * 1024 * 1024)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let big_id = uploaded(&server, &customer, &chat, "big.txt", "text/plain", &big).await;
    assert_eq!(moto.keys().await.len(), 2);
    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "log", "f": [big_id]}),
        )
        .await;
    let url = sent["sendMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap();
    let response = server
        .http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.bytes().await.unwrap() == big,
        "the big file comes back whole"
    );
    // Nothing of a refused file stays in the bucket.
    let (status, _) = upload(&server, &customer, &chat, "x.png", "image/png", b"<svg/>").await;
    assert_eq!(status, 415);
    server
        .ok(
            Some(&owner),
            "mutation($input: FileSettingsInput!) { updateFileSettings(input: $input) { maxFileBytes } }",
            json!({"input": {"maxFileBytes": 64, "allowedTypes": ["image/png", "text/plain"]}}),
        )
        .await;
    let (status, _) = upload(
        &server,
        &customer,
        &chat,
        "big.txt",
        "text/plain",
        &[b'x'; 600],
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(moto.keys().await.len(), 2);

    let sent = server
        .ok(
            Some(&customer),
            SEND,
            json!({"c": chat, "t": "", "f": [photo]}),
        )
        .await;
    let url = sent["sendMessage"]["attachments"][0]["url"]
        .as_str()
        .unwrap();
    let response = server
        .http
        .get(format!("{}{url}", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
}

on_both_backends!(files_round_trip_through_an_s3_compatible_store);
