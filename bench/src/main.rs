//! The Switchboard load harness. It starts the server (a release build on SQLite in a
//! temporary directory) or attaches to one at a URL, drives it over real HTTP and
//! graphql-transport-ws from this separate process, prints a table and writes
//! bench/results/<scenario>.json.
//!
//! `cargo run -p switchboard-bench --release -- <scenario> [options]`

mod client;
mod reports;
mod scenarios;
mod server;

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

/// Load scenarios for Switchboard.
#[derive(Parser)]
#[command(name = "switchboard-bench")]
struct Cli {
    /// Use the server at this URL (e.g. one on Postgres) instead of starting one.
    #[arg(long, global = true, conflicts_with = "urls")]
    url: Option<String>,
    /// Use the nodes of one cluster at these URLs (comma-separated; one database, one NATS)
    /// and spread the clients over them: the conversation scenario puts every customer on
    /// another node than the agent who has the chat, so each delivery crosses nodes; the
    /// connections scenario deals connections round the nodes. The set-up goes to the first.
    #[arg(long, global = true, value_delimiter = ',')]
    urls: Vec<String>,
    /// The owner's email on an attached server.
    #[arg(long, global = true, default_value = server::OWNER_EMAIL)]
    owner_email: String,
    /// The owner's password on an attached server.
    #[arg(long, global = true, default_value = server::OWNER_PASSWORD)]
    owner_password: String,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// N agents' connections each holding an agentEvents subscription: memory and connect time.
    Connections {
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Distinct agents the connections sign in as (logins hash passwords, which is slow
        /// on purpose); connections are spread over them.
        #[arg(long, default_value_t = 50)]
        agents: usize,
        /// Which agentEvents document each connection subscribes with: `minimal` (the event
        /// type and a message's author) or `sdk` (what the mobile SDK sends: every event with
        /// its chat, bench/queries/sdk-agent-events.graphql).
        #[arg(long, default_value = "minimal", value_parser = ["minimal", "sdk"])]
        document: String,
    },
    /// N open pages with the widget (visitorEvents) watched by agents (visitorsChanged):
    /// memory per page, coalesced updates, page change to agent latency.
    Visitors {
        #[arg(long, default_value_t = 2000)]
        pages: usize,
        /// Agents watching the visitors on the site.
        #[arg(long, default_value_t = 5)]
        agents: usize,
        /// Milliseconds without changes before each measured page change; past the server's
        /// coalescing interval (2 s by default) a change is a lone one and goes out at once.
        #[arg(long, default_value_t = 2100)]
        quiet_ms: u64,
    },
    /// M concurrent chats exchanging messages at a total rate: delivery latency.
    Conversation {
        #[arg(long, default_value_t = 100)]
        chats: usize,
        #[arg(long, default_value_t = 20)]
        agents: usize,
        /// Messages per second, customers and agents together.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Start the server on this (empty) Postgres database instead of SQLite; the results
        /// go to conversation-postgres.json.
        #[arg(long)]
        postgres: Option<String>,
        /// SQLite's durability for the server the harness starts
        /// (SWITCHBOARD_SQLITE_SYNCHRONOUS); `full` writes conversation-full.json.
        #[arg(long, default_value = "normal", value_parser = ["normal", "full"])]
        synchronous: String,
    },
    /// K customers start chats at once against A agents: settle time and correctness.
    Routing {
        #[arg(long, default_value_t = 1000)]
        customers: usize,
        #[arg(long, default_value_t = 50)]
        agents: usize,
        #[arg(long, default_value_t = 10)]
        chat_limit: usize,
    },
    /// P assignments to agents with devices and no live connection, against a local fake FCM.
    Push {
        #[arg(long, default_value_t = 3000)]
        pushes: usize,
        #[arg(long, default_value_t = 50)]
        agents: usize,
        /// Chat starts (so pushes) per second; 0 starts them all at once
        #[arg(long, default_value_t = 1000)]
        rate: u32,
    },
    /// A year of a busy organization's chats generated straight into the database, then the
    /// report queries (totals, per agent, per day; with and without group and tag filters)
    /// timed over HTTP.
    Reports {
        #[arg(long, default_value_t = 500_000)]
        chats: usize,
        #[arg(long, default_value_t = 40)]
        agents: usize,
        #[arg(long, default_value_t = 8)]
        groups: usize,
        #[arg(long, default_value_t = 12)]
        tags: usize,
        /// Runs of each query; the table shows the median and the slowest.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Start the server on this (empty) Postgres database instead of SQLite.
        #[arg(long)]
        postgres: Option<String>,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    raise_file_limit();
    let cli = Cli::parse();
    let attach = |cli: &Cli| {
        if !cli.urls.is_empty() {
            return Some(server::Server::attach_nodes(
                &cli.urls,
                &cli.owner_email,
                &cli.owner_password,
            ));
        }
        cli.url
            .as_deref()
            .map(|url| server::Server::attach(url, &cli.owner_email, &cli.owner_password))
    };
    let nodes = cli.urls.len().max(1);
    let (name, parameters, results) = match &cli.scenario {
        Scenario::Connections {
            connections,
            agents,
            document,
        } => {
            let server = match attach(&cli) {
                Some(server) => server,
                None => server::Server::start(&[]).await?,
            };
            let results =
                scenarios::connections(&server, *connections, *agents, document == "sdk").await?;
            (
                "connections",
                json!({"connections": connections, "agents": agents, "document": document, "nodes": nodes}),
                results,
            )
        }
        Scenario::Conversation {
            chats,
            agents,
            rate,
            seconds,
            postgres,
            synchronous,
        } => {
            let mut env: Vec<(&str, String)> = postgres
                .iter()
                .map(|url| ("DATABASE_URL", url.clone()))
                .collect();
            env.push(("SWITCHBOARD_SQLITE_SYNCHRONOUS", synchronous.clone()));
            let server = match attach(&cli) {
                Some(server) => server,
                None => server::Server::start(&env).await?,
            };
            let results = scenarios::conversation(
                &server,
                *chats,
                *agents,
                *rate,
                Duration::from_secs(*seconds),
            )
            .await?;
            let name = match (nodes, postgres.is_some(), synchronous.as_str()) {
                (1, false, "full") => "conversation-full",
                (1, false, _) => "conversation",
                (1, true, _) => "conversation-postgres",
                _ => "conversation-nodes",
            };
            (
                name,
                json!({"chats": chats, "agents": agents, "rate": rate, "seconds": seconds, "nodes": nodes, "synchronous": synchronous}),
                results,
            )
        }
        Scenario::Visitors {
            pages,
            agents,
            quiet_ms,
        } => {
            let server = match attach(&cli) {
                Some(server) => server,
                None => server::Server::start(&[]).await?,
            };
            let quiet = Duration::from_millis(*quiet_ms);
            let results = scenarios::visitors_on_site(&server, *pages, *agents, quiet).await?;
            (
                "visitors",
                json!({"pages": pages, "agents": agents, "quietMs": quiet_ms}),
                results,
            )
        }
        Scenario::Routing {
            customers,
            agents,
            chat_limit,
        } => {
            let server = match attach(&cli) {
                Some(server) => server,
                None => server::Server::start(&[]).await?,
            };
            let results = scenarios::routing(&server, *customers, *agents, *chat_limit).await?;
            (
                "routing",
                json!({"customers": customers, "agents": agents, "chatLimit": chat_limit}),
                results,
            )
        }
        Scenario::Push {
            pushes,
            agents,
            rate,
        } => {
            let results = scenarios::push(attach(&cli), *pushes, *agents, *rate).await?;
            (
                "push",
                json!({"pushes": pushes, "agents": agents, "rate": rate}),
                results,
            )
        }
        Scenario::Reports {
            chats,
            agents,
            groups,
            tags,
            runs,
            postgres,
        } => {
            // The generated year holds queued and active chats whose timers ran out long ago:
            // with timers at their default the server would close them while the data is
            // written, and on SQLite contend with the import for the one writer until the
            // import gives up. The reports read the data as generated, as the tests do.
            let mut env: Vec<(&str, String)> = vec![("SWITCHBOARD_TIMER_INTERVAL", "1h".into())];
            env.extend(postgres.iter().map(|url| ("DATABASE_URL", url.clone())));
            let server = server::Server::start(&env).await?;
            let backend = if postgres.is_some() {
                "reports-postgres"
            } else {
                "reports-sqlite"
            };
            let results = reports::reports(&server, *chats, *agents, *groups, *tags, *runs).await?;
            (
                backend,
                json!({"chats": chats, "agents": agents, "groups": groups, "tags": tags, "runs": runs}),
                results,
            )
        }
    };
    report(name, parameters, results)
}

/// Prints the results as a table and writes them with the machine and commit to
/// bench/results/<scenario>.json.
fn report(name: &str, parameters: Value, results: Vec<(&'static str, Value)>) -> Result<()> {
    println!("\n{name}");
    let width = results.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in &results {
        println!("  {key:<width$}  {value}");
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024);
    let document = json!({
        "scenario": name,
        "commit": commit,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memoryBytes": memory,
        "parameters": parameters,
        "results": results.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<serde_json::Map<_, _>>(),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&document)? + "\n")?;
    println!("\nwrote {}", path.display());
    Ok(())
}

/// Many connections need many file descriptors, here and in the server it starts (which
/// inherits the limit). Raising the hard limit needs privileges; without them the soft limit
/// goes up to the hard one.
fn raise_file_limit() {
    const WANTED: u64 = 1 << 16;
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get()
        && rlimit::Resource::NOFILE
            .set(WANTED.max(hard), WANTED.max(hard))
            .is_err()
    {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
}
