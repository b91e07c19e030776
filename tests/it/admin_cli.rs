//! The admin's command line (`switchboard org|agent|backup`) beside a running server, on
//! SQLite and on Postgres: the organizations and agents it creates sign in, a reset password
//! signs in and ends the old sessions, a reactivated agent signs in again, bad input gets one
//! line and exit code 1, and a SQLite backup taken under the running server restores into a
//! server that serves the same chats.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::PostgresDatabase;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }";

/// A server process and the environment its commands share.
struct Running {
    child: Child,
    url: String,
    env: Vec<(String, String)>,
    /// The bootstrap owner's password.
    owner_password: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &[(String, String)]) -> Running {
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut password = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(p) = line.trim().strip_prefix("owner password:") {
                password = p.trim().to_owned();
            }
            if let Some(address) = line.strip_prefix("Switchboard is listening on ") {
                let _ = sender.send((address.to_owned(), std::mem::take(&mut password)));
            }
        }
    });
    let (url, owner_password) = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server listens within 30 s");
    Running {
        child,
        url,
        env: env.to_vec(),
        owner_password,
    }
}

/// Runs `switchboard <args>` with the server's environment; (exit code, stdout, stderr).
fn run(env: &[(String, String)], args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BINARY)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; its stdout.
fn ok(env: &[(String, String)], args: &[&str], stdin: Option<&str>) -> String {
    let (code, stdout, stderr) = run(env, args, stdin);
    assert_eq!(code, 0, "switchboard {args:?} failed: {stderr}");
    stdout
}

/// The value after `label` on its line of a command's output.
fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{output}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn gql(url: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = reqwest::Client::new()
        .post(url)
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

/// An access token, or `None` when the login is refused.
async fn login(url: &str, email: &str, password: &str) -> Option<String> {
    let body = gql(url, None, LOGIN, json!({"e": email, "p": password})).await;
    body["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
}

/// What every backend must do; returns the new agent's email and password.
async fn organizations_and_agents(server: &Running) -> (String, String) {
    let env = &server.env;
    let url = &server.url;
    let created = ok(
        env,
        &[
            "org",
            "create",
            "--name",
            "Beta",
            "--owner-email",
            "Boss@Beta.test",
        ],
        None,
    );
    let beta = field(&created, "organization ");
    let boss_password = field(&created, "password ");
    assert!(field(&created, "widget key ").starts_with("wk_"));
    let boss = login(url, "boss@beta.test", &boss_password)
        .await
        .expect("the new owner signs in with the printed password");

    let listed = ok(env, &["org", "list"], None);
    assert_eq!(
        listed.lines().count(),
        3,
        "a header and two organizations: {listed}"
    );
    assert!(listed.contains(&beta));

    let created = ok(
        env,
        &[
            "agent",
            "create",
            "--org",
            &beta,
            "--email",
            "ann@beta.test",
            "--name",
            "Ann",
            "--role",
            "supervisor",
        ],
        None,
    );
    assert!(created.contains("SUPERVISOR"), "{created}");
    let first_password = field(&created, "password ");
    let ann = login(url, "ann@beta.test", &first_password)
        .await
        .expect("the new agent signs in");

    // A reset: the new password signs in, the old one and Ann's session do not.
    let reset = ok(
        env,
        &[
            "agent",
            "reset-password",
            "--email",
            "ann@beta.test",
            "--password-stdin",
        ],
        Some("a-new-password-1\n"),
    );
    assert!(
        !reset.contains("password a-new"),
        "a password from stdin is not echoed"
    );
    assert!(login(url, "ann@beta.test", &first_password).await.is_none());
    let me = gql(url, Some(&ann), "{ me { email } }", json!({})).await;
    assert_eq!(
        me["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "the reset ended Ann's session: {me}"
    );
    assert!(
        login(url, "ann@beta.test", "a-new-password-1")
            .await
            .is_some()
    );

    // Deactivated in the app, reactivated from the command line.
    let ann_id = field(&created, "agent ");
    let deactivated = gql(
        url,
        Some(&boss),
        "mutation($id: ID!) { deactivateAgent(id: $id) { isActive } }",
        json!({"id": ann_id}),
    )
    .await;
    assert_eq!(
        deactivated["data"]["deactivateAgent"]["isActive"], false,
        "{deactivated}"
    );
    assert!(
        login(url, "ann@beta.test", "a-new-password-1")
            .await
            .is_none()
    );
    let back = ok(
        env,
        &["agent", "reactivate", "--email", "ann@beta.test"],
        None,
    );
    assert!(back.contains("reactivated"), "{back}");
    assert!(
        login(url, "ann@beta.test", "a-new-password-1")
            .await
            .is_some()
    );

    let agents = ok(env, &["agent", "list", "--org", &beta], None);
    assert!(
        agents.contains("ann@beta.test") && agents.contains("boss@beta.test"),
        "{agents}"
    );
    assert!(
        agents.lines().all(|l| !l.contains("$argon2")),
        "no hashes listed"
    );

    // Bad input: one line, exit code 1, nothing changed.
    for (args, stdin, says) in [
        (
            vec![
                "agent",
                "create",
                "--org",
                &beta,
                "--email",
                "x@beta.test",
                "--name",
                "X",
                "--role",
                "chief",
            ],
            None,
            "unknown role",
        ),
        (
            vec![
                "agent",
                "create",
                "--org",
                "no-such-org",
                "--email",
                "x@beta.test",
                "--name",
                "X",
            ],
            None,
            "no organization",
        ),
        (
            vec![
                "agent",
                "create",
                "--org",
                &beta,
                "--email",
                "ann@beta.test",
                "--name",
                "Ann",
            ],
            None,
            "already has an agent",
        ),
        (
            vec!["agent", "reset-password", "--email", "nobody@beta.test"],
            None,
            "no agent",
        ),
        (
            vec![
                "agent",
                "reset-password",
                "--email",
                "ann@beta.test",
                "--password-stdin",
            ],
            Some("short\n"),
            "at least 8 characters",
        ),
        (
            vec![
                "org",
                "create",
                "--name",
                "Gamma",
                "--owner-email",
                "not an email",
            ],
            None,
            "not a valid email",
        ),
    ] {
        let (code, _, stderr) = run(env, &args, stdin);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?} says {stderr:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr:?}");
    }
    assert!(
        login(url, "ann@beta.test", "a-new-password-1")
            .await
            .is_some()
    );
    ("ann@beta.test".into(), "a-new-password-1".into())
}

#[tokio::test]
async fn the_admin_commands_work_beside_a_running_sqlite_server_and_its_backup_restores() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![(
        "SWITCHBOARD_DATA_DIR".to_owned(),
        dir.path().display().to_string(),
    )];
    let server = start(&env);
    let (ann, ann_password) = organizations_and_agents(&server).await;

    // A chat in the first organization, then the backup under the running server.
    let url = &server.url;
    let owner = login(url, "owner@example.com", &server.owner_password)
        .await
        .expect("the bootstrap owner signs in");
    let key = gql(
        url,
        Some(&owner),
        "{ organization { widgetKey } }",
        json!({}),
    )
    .await["data"]["organization"]["widgetKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let visitor = gql(
        url,
        None,
        "mutation($k: String!) { startVisitorSession(input: {widgetKey: $k, visitorId: \"v1\"}) { token } }",
        json!({"k": key}),
    )
    .await["data"]["startVisitorSession"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let chat = gql(
        url,
        Some(&visitor),
        "mutation { startChat(input: {message: \"Is my order on its way?\"}) { id } }",
        json!({}),
    )
    .await["data"]["startChat"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("switchboard-backup.db");
    let file_arg = file.display().to_string();
    let said = ok(&env, &["backup", &file_arg], None);
    assert!(said.contains("jwt-secret"), "{said}");
    let (code, _, stderr) = run(&env, &["backup", &file_arg], None);
    assert_eq!(code, 1);
    assert!(stderr.contains("exists already"), "{stderr}");
    drop(server);

    // Restored into another data directory: the same chat, the same agents and passwords,
    // and the old access token still valid (the JWT secret came with it).
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&file, restored.path().join("switchboard.db")).unwrap();
    for secret in ["jwt-secret", "vapid-private-key"] {
        std::fs::copy(
            backups
                .path()
                .join(format!("switchboard-backup.db.{secret}")),
            restored.path().join(secret),
        )
        .unwrap();
    }
    let env = vec![(
        "SWITCHBOARD_DATA_DIR".to_owned(),
        restored.path().display().to_string(),
    )];
    let server = start(&env);
    assert!(login(&server.url, &ann, &ann_password).await.is_some());
    let found = gql(
        &server.url,
        Some(&owner),
        "query($id: ID!) { chat(id: $id) { id events { items { text } } } }",
        json!({"id": chat}),
    )
    .await;
    assert_eq!(found["data"]["chat"]["id"], chat.as_str(), "{found}");
    assert!(
        found.to_string().contains("Is my order on its way?"),
        "{found}"
    );
}

/// Under `postgres::`, so CI's Postgres step runs it.
mod postgres {
    use super::*;

    #[tokio::test]
    async fn the_admin_commands_work_beside_a_running_server() {
        let Some(base) = std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())
        else {
            eprintln!(
                "skipped: set SWITCHBOARD_TEST_POSTGRES_URL to run the Postgres admin commands"
            );
            return;
        };
        let (_database, database_url) = PostgresDatabase::create(&base).await;
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            (
                "SWITCHBOARD_DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("DATABASE_URL".to_owned(), database_url),
        ];
        let server = start(&env);
        organizations_and_agents(&server).await;
        let (code, _, stderr) = run(&env, &["backup", "/tmp/never-written.db"], None);
        assert_eq!(code, 1);
        assert!(stderr.contains("pg_dump"), "{stderr}");
        assert!(!std::path::Path::new("/tmp/never-written.db").exists());
    }
}
