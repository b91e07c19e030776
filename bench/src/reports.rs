//! The reports scenario: a year of a busy organization generated straight into the
//! database (`switchboard generate-report-data`, bulk inserts), then each report query timed
//! over HTTP as the web app sends it.

use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::client::Gql;
use crate::server::Server;

const ROW: &str = "chatsStarted chatsAnswered chatsMissed chatsTransferred ratedGood ratedBad \
    ratedShare greetingsShown greetingsAnswered \
    queueWait { averageSeconds medianSeconds p90Seconds } \
    firstResponseTime { averageSeconds medianSeconds p90Seconds } \
    responseTime { averageSeconds medianSeconds p90Seconds } \
    chatDuration { averageSeconds medianSeconds p90Seconds }";

pub async fn reports(
    server: &Server,
    chats: usize,
    agents: usize,
    groups: usize,
    tags: usize,
    runs: usize,
) -> Result<Vec<(&'static str, Value)>> {
    let seed = 15;
    let started = Instant::now();
    let generated = server
        .run_command(&[
            "generate-report-data".into(),
            format!("--chats={chats}"),
            format!("--agents={agents}"),
            format!("--groups={groups}"),
            format!("--tags={tags}"),
            format!("--seed={seed}"),
        ])
        .await?;
    let generation_seconds = started.elapsed().as_secs_f64();
    println!("{}", generated.trim());

    let gql = Gql::new(&server.graphql_url());
    let login = gql
        .run(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            json!({"e": server.owner_email, "p": server.owner_password}),
        )
        .await?;
    let owner = login["login"]["accessToken"]
        .as_str()
        .context("no token")?
        .to_owned();
    let group = gql
        .run(Some(&owner), "{ groups { id name } }", json!({}))
        .await?["groups"]
        .as_array()
        .and_then(|g| {
            g.iter().find(|g| {
                g["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("Generated"))
            })
        })
        .and_then(|g| g["id"].as_str())
        .context("no generated group")?
        .to_owned();
    let tag = format!("generated-tag-{seed}-0");
    let today = chrono_free_today();
    let year = json!({"from": today.0, "to": today.1, "timeZone": "UTC"});
    let month = json!({"from": today.2, "to": today.1, "timeZone": "Europe/Paris"});
    let with = |base: &Value, key: &str, value: &str| {
        let mut input = base.clone();
        input[key] = json!(value);
        input
    };
    let cases: Vec<(&'static str, String, Value)> = vec![
        ("yearTotals", format!("totals {{ {ROW} }}"), year.clone()),
        (
            "yearByAgent",
            format!("byAgent {{ agent {{ id }} {ROW} }}"),
            year.clone(),
        ),
        ("yearByDay", format!("byDay {{ date {ROW} }}"), year.clone()),
        (
            "yearAllThree",
            format!("totals {{ {ROW} }} byAgent {{ agent {{ id }} {ROW} }} byDay {{ date {ROW} }}"),
            year.clone(),
        ),
        (
            "yearTotalsGroup",
            format!("totals {{ {ROW} }}"),
            with(&year, "groupId", &group),
        ),
        (
            "yearByDayGroup",
            format!("byDay {{ date {ROW} }}"),
            with(&year, "groupId", &group),
        ),
        (
            "yearTotalsTag",
            format!("totals {{ {ROW} }}"),
            with(&year, "tagId", &tag),
        ),
        (
            "yearByAgentTag",
            format!("byAgent {{ agent {{ id }} {ROW} }}"),
            with(&year, "tagId", &tag),
        ),
        (
            "monthAllThreeParis",
            format!("totals {{ {ROW} }} byAgent {{ agent {{ id }} {ROW} }} byDay {{ date {ROW} }}"),
            month,
        ),
    ];
    let mut results: Vec<(&'static str, Value)> = vec![(
        "generationSeconds",
        json!((generation_seconds * 10.0).round() / 10.0),
    )];
    let mut started_chats = Value::Null;
    for (name, selection, input) in cases {
        let query =
            format!("query($input: ReportInput!) {{ report(input: $input) {{ {selection} }} }}");
        let mut samples = Vec::new();
        for _ in 0..runs.max(1) {
            let at = Instant::now();
            let data = gql
                .run(Some(&owner), &query, json!({"input": input}))
                .await?;
            samples.push(at.elapsed().as_secs_f64() * 1000.0);
            if name == "yearTotals" {
                started_chats = data["report"]["totals"]["chatsStarted"].clone();
            }
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[(samples.len() - 1) / 2];
        let max = samples[samples.len() - 1];
        results.push((
            name,
            json!({"medianMs": (median * 10.0).round() / 10.0, "maxMs": (max * 10.0).round() / 10.0}),
        ));
    }
    results.insert(1, ("chatsInYearReport", started_chats));
    Ok(results)
}

/// (a year ago + 1 day, today, 30 days ago) as YYYY-MM-DD in UTC, without a date library.
fn chrono_free_today() -> (String, String, String) {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    (civil(days - 364), civil(days), civil(days - 29))
}

/// The date `days` after 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
