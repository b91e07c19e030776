//! The server's perimeter: client addresses behind proxies, connection limits and timeouts,
//! query cost limits, input the databases refuse, readiness, and file modes.

use serde_json::{Value, json};

use crate::support::{TestServer, error_code, widget_key};

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
    let server = TestServer::start_with(crate::support::Backend::Sqlite, |config| {
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
    let server = TestServer::start_with(crate::support::Backend::Sqlite, |config| {
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
