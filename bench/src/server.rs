//! The server under test: a release build started in a temporary directory, or one already
//! running at a URL.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The bootstrap owner of a server the harness starts.
pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "bench-owner-password";

/// A running server.
pub struct Server {
    /// http://host:port
    pub base: String,
    /// Every node of the cluster the clients are spread over (`--urls`), `base` first; just
    /// `base` for one server.
    pub nodes: Vec<String>,
    pub owner_email: String,
    pub owner_password: String,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    /// The binary and the environment it was started with, to run its other commands
    /// against the same database.
    launch: Option<(PathBuf, Vec<(String, String)>)>,
}

impl Server {
    /// Builds the server in release mode and starts it on SQLite in a temporary directory,
    /// with limits raised for load and `env` on top.
    pub async fn start(env: &[(&str, String)]) -> Result<Server> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "-p",
                "switchboard",
                "--bin",
                "switchboard",
            ])
            .current_dir(&root)
            .status()
            .await
            .context("cannot run cargo to build the server")?;
        if !status.success() {
            bail!("building the server failed");
        }
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or(root.join("target"));
        let binary = target.join("release").join("switchboard");
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(&binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_DATA_DIR", dir.path())
            .env("SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD", OWNER_PASSWORD)
            .env(
                "SWITCHBOARD_JWT_SECRET",
                "bench-secret-bench-secret-bench-secret",
            )
            .env("SWITCHBOARD_VISITOR_SESSIONS_PER_MINUTE", "100000000")
            .env("SWITCHBOARD_CUSTOMER_MESSAGES_PER_MINUTE", "100000000")
            .env("SWITCHBOARD_CUSTOMER_TYPING_PER_MINUTE", "100000000")
            .env("SWITCHBOARD_CUSTOMER_ACTIONS_PER_MINUTE", "100000000")
            .env(
                "SWITCHBOARD_CHAT_STARTS_PER_ADDRESS_PER_MINUTE",
                "100000000",
            )
            .env("SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS", "100000000")
            // Every simulated agent and customer connects from 127.0.0.1.
            .env("SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS", "0")
            .env("SWITCHBOARD_ACCESS_TOKEN_TTL", "1d")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut launch_env: Vec<(String, String)> = vec![(
            "SWITCHBOARD_DATA_DIR".into(),
            dir.path().display().to_string(),
        )];
        launch_env.extend(env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        // Allocator tuning under test (MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_, ...) reaches
        // the server; everything else stays cleared.
        for (key, value) in std::env::vars().filter(|(key, _)| key.starts_with("MALLOC_")) {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(address) = line.strip_prefix("Switchboard is listening on ") {
                    return Ok(address.trim_end_matches("/graphql").to_owned());
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .context("the server did not start within 60 s")??;
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            nodes: vec![base.clone()],
            base,
            owner_email: OWNER_EMAIL.into(),
            owner_password: OWNER_PASSWORD.into(),
            child: Some(child),
            _dir: Some(dir),
            launch: Some((binary, launch_env)),
        })
    }

    /// A server started elsewhere (for example on Postgres).
    pub fn attach(base: &str, owner_email: &str, owner_password: &str) -> Server {
        let base = trim(base);
        Server {
            nodes: vec![base.clone()],
            base,
            owner_email: owner_email.into(),
            owner_password: owner_password.into(),
            child: None,
            _dir: None,
            launch: None,
        }
    }

    /// Runs `switchboard <args>` against the started server's database; its stderr
    /// (progress) passes through.
    pub async fn run_command(&self, args: &[String]) -> Result<String> {
        let (binary, env) = self
            .launch
            .as_ref()
            .context("only a server the harness started has a database it can reach")?;
        let output = Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .await?;
        if !output.status.success() {
            bail!("switchboard {} failed", args.join(" "));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Nodes of one cluster (one database, one NATS) started elsewhere: the set-up goes to
    /// the first, the clients are spread over all of them.
    pub fn attach_nodes(urls: &[String], owner_email: &str, owner_password: &str) -> Server {
        let mut server = Server::attach(&urls[0], owner_email, owner_password);
        server.nodes = urls.iter().map(|url| trim(url)).collect();
        server
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql", self.base.replacen("http", "ws", 1))
    }

    /// The GraphQL URL of node `n` (counted round the nodes).
    pub fn graphql_url_of(&self, n: usize) -> String {
        format!("{}/graphql", self.nodes[n % self.nodes.len()])
    }

    /// The WebSocket URL of node `n` (counted round the nodes).
    pub fn ws_url_of(&self, n: usize) -> String {
        format!(
            "{}/graphql",
            self.nodes[n % self.nodes.len()].replacen("http", "ws", 1)
        )
    }

    /// The CPU time every node's process has used so far (user and system), read from each
    /// node's `/metrics` (`process_cpu_seconds_total`); `None` when a node does not serve it
    /// (a metrics token, or metrics on another address). Measured by the server itself, so it
    /// works for nodes started elsewhere; on Postgres it leaves out the database's own CPU.
    pub async fn cpu_seconds(&self) -> Option<f64> {
        let http = reqwest::Client::new();
        let mut total = 0.0;
        for node in &self.nodes {
            let response = http.get(format!("{node}/metrics")).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let text = response.text().await.ok()?;
            let line = text
                .lines()
                .find(|line| line.starts_with("process_cpu_seconds_total "))?;
            total += line.split_whitespace().nth(1)?.parse::<f64>().ok()?;
        }
        Some(total)
    }

    /// The server process's resident memory, when the harness started it (Linux).
    pub fn rss_bytes(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// `http://host:port` from a URL that may end in `/` or `/graphql`.
fn trim(url: &str) -> String {
    url.trim_end_matches('/')
        .trim_end_matches("/graphql")
        .to_owned()
}
