//! The `switchboard` binary as an admin runs it: first start, restart, bad configuration,
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

/// Starts the server on an ephemeral port and returns the child, its address and the lines
/// it printed up to "listening" (the owner's credentials on a first start).
fn start(data_dir: &std::path::Path) -> (std::process::Child, String, Vec<String>) {
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(address) = line.strip_prefix("Switchboard is listening on http://") {
                let address = address.trim_end_matches("/graphql").to_owned();
                let _ = sender.send((address, std::mem::take(&mut lines)));
            } else {
                lines.push(line);
            }
        }
    });
    let (address, lines) = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the server says where it listens within 20 s");
    (child, address, lines)
}

fn terminate(mut child: std::process::Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "SIGTERM stops the server within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn first_start_prints_the_owner_once_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (child, address, lines) = start(dir.path());
    let text = lines.join("\n");
    let value = |label: &str| {
        lines
            .iter()
            .find_map(|line| line.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("{label} missing from:\n{text}"))
            .trim()
            .to_owned()
    };
    let email = value("owner email:");
    let password = value("owner password:");
    assert!(value("widget key:").starts_with("wk_"));

    let http = reqwest::Client::new();
    let url = format!("http://{address}/graphql");
    let login: serde_json::Value = http
        .post(&url)
        .json(&json!({"query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
                      "variables": {"e": email, "p": password}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["data"]["login"]["accessToken"]
        .as_str()
        .expect("the printed credentials work");
    let me: serde_json::Value = http
        .post(&url)
        .bearer_auth(token)
        .json(&json!({"query": "{ me { email } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["me"]["email"], email.as_str());
    assert!(terminate(child).success(), "SIGTERM is a clean exit");
    assert!(dir.path().join("switchboard.db").exists());
    assert!(dir.path().join("jwt-secret").exists());
    assert!(dir.path().join("vapid-private-key").exists());

    // A restart keeps the data and prints no credentials.
    let (child, _, lines) = start(dir.path());
    assert!(
        lines.iter().all(|line| !line.contains("owner password")),
        "{lines:?}"
    );
    assert!(terminate(child).success());
}

#[test]
fn invalid_configuration_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 6] = [
        ("SWITCHBOARD_LISTEN", "not-an-address", "SWITCHBOARD_LISTEN"),
        ("SWITCHBOARD_JWT_SECRET", "short", "at least 32"),
        ("DATABASE_URL", "mysql://localhost/db", "DATABASE_URL"),
        ("SWITCHBOARD_WS_INIT_TIMEOUT", "soon", "duration"),
        ("SWITCHBOARD_VAPID_SUBJECT", "ops@example.com", "mailto:"),
        (
            "SWITCHBOARD_VAPID_PRIVATE_KEY_PATH",
            "/nonexistent/vapid.key",
            "does not exist",
        ),
    ];
    for (variable, value, expected) in cases {
        let output = Command::new(BINARY)
            .env_clear()
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env(variable, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{variable}={value} is refused");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "one line for {variable}: {stderr}"
        );
        assert!(
            stderr.contains(expected)
                || stderr.contains(&variable.to_lowercase().replace('_', "-")),
            "{variable}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let output = Command::new(BINARY).arg("schema").output().unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed, include_str!("../../schema.graphql"));
}
