//! `switchboard generate-report-data`: fills the database (the configured one, SQLite or
//! Postgres) with a busy organization's history for the reports bench: groups, agents and
//! chats with transcripts, transfers, tags, ratings and greetings, written in bulk into
//! the first organization. Never run it against a database you care about.

use std::time::Instant;

use chrono::{Duration, Utc};

use crate::Config;
use crate::domain::{self, Group, ReportDataSpec, Role, generate_report_data};
use crate::store::NewAgent;

/// What to generate.
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateReportData {
    /// Chats over the period.
    #[arg(long, default_value_t = 500_000)]
    pub chats: usize,
    #[arg(long, default_value_t = 40)]
    pub agents: usize,
    #[arg(long, default_value_t = 8)]
    pub groups: usize,
    #[arg(long, default_value_t = 12)]
    pub tags: usize,
    /// The period: this many days up to now.
    #[arg(long, default_value_t = 365)]
    pub days: i64,
    #[arg(long, default_value_t = 15)]
    pub seed: u64,
}

/// Chats written per transaction.
const CHUNK: usize = 10_000;

/// Generates the data set into the configured database's first organization.
pub async fn generate(config: &Config, args: &GenerateReportData) -> Result<(), String> {
    let store = crate::open_store(config)
        .await
        .map_err(|err| err.to_string())?;
    store.migrate().await.map_err(|err| err.to_string())?;
    let org = store
        .first_organization()
        .await
        .map_err(|err| err.to_string())?
        .ok_or("no organization yet: start the server once to bootstrap one")?;
    let started = Instant::now();
    let now = domain::now();
    let mut groups = Vec::new();
    for n in 0..args.groups {
        let group = Group {
            id: domain::new_id(),
            organization_id: org.id.clone(),
            name: format!("Generated group {n} {}", args.seed),
            created_at: now,
        };
        store
            .create_group(&group)
            .await
            .map_err(|err| err.to_string())?;
        groups.push(group.id);
    }
    let mut agents = Vec::new();
    for n in 0..args.agents {
        // Each agent is in one or two groups.
        let mut group_ids = vec![groups[n % groups.len().max(1)].clone()];
        if n % 3 == 0 && groups.len() > 1 {
            group_ids.push(groups[(n + 1) % groups.len()].clone());
        }
        let agent = NewAgent {
            id: domain::new_id(),
            organization_id: org.id.clone(),
            email: format!("generated-{}-{n}@example.com", args.seed),
            name: format!("Generated Agent {n}"),
            // Not a hash of anything: nobody signs in as them.
            password_hash: "!generated".into(),
            role: Role::Agent,
            chat_limit: None,
            group_ids: group_ids.clone(),
            created_at: now,
        };
        store
            .create_agent(&agent)
            .await
            .map_err(|err| err.to_string())?;
        agents.push((agent.id, group_ids));
    }
    let tags: Vec<String> = (0..args.tags)
        .map(|n| format!("generated-tag-{}-{n}", args.seed))
        .collect();
    let end = Utc::now();
    let start = end - Duration::days(args.days);
    let mut written = 0;
    let mut chunk = 0;
    while written < args.chats {
        let chats = CHUNK.min(args.chats - written);
        let data = generate_report_data(&ReportDataSpec {
            organization_id: org.id.clone(),
            agents: agents.clone(),
            groups: groups.clone(),
            tags: tags.clone(),
            chats,
            start_ms: start.timestamp_millis(),
            end_ms: end.timestamp_millis(),
            seed: args.seed.wrapping_mul(1_000_003).wrapping_add(chunk),
        });
        store
            .import_report_data(&data)
            .await
            .map_err(|err| err.to_string())?;
        written += chats;
        chunk += 1;
        eprintln!(
            "{written} chats written in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    // Pack the finished days now, as a running server does within the hour.
    let packed = store
        .pack_report_days(Utc::now().timestamp_millis(), usize::MAX)
        .await
        .map_err(|err| err.to_string())?;
    eprintln!(
        "{packed} days packed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    store
        .refresh_report_statistics()
        .await
        .map_err(|err| err.to_string())?;
    println!(
        "generated {written} chats, {} agents, {} groups, {} tags in {:.1} s ({})",
        args.agents,
        args.groups,
        args.tags,
        started.elapsed().as_secs_f64(),
        store.backend_name()
    );
    store.close().await;
    Ok(())
}
