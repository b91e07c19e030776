//! Reports: over a generated month of chats, every number (total, per agent, per day in a
//! time zone, with group, agent and tag filters) equals a count made here from the
//! generated data; real chats through the API keep the bookkeeping the reports read; agents
//! see their own numbers and supervisors their groups'; bad periods and foreign ids get
//! coded errors; another organization's data never counts; the CSV export says the same.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use serde_json::{Value, json};
use switchboard::domain::{
    AuthorKind, GeneratedChat, ReportData, ReportDataSpec, generate_report_data,
};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, agent_events, start_chat, visitor, widget_key};

on_both_backends!(
    a_generated_month_matches_an_independent_count,
    real_chats_keep_the_bookkeeping_reports_read,
    agents_and_supervisors_see_their_own_numbers,
    bad_periods_and_foreign_ids_are_refused,
    the_csv_export_says_what_the_report_says,
);

const STATS: &str = "count averageSeconds medianSeconds p90Seconds";

fn row_fields() -> String {
    format!(
        "chatsStarted chatsAnswered chatsMissed chatsTransferred ratedGood ratedBad ratedShare \
         greetingsShown greetingsAnswered queueWait {{ {STATS} }} firstResponseTime {{ {STATS} }} \
         responseTime {{ {STATS} }} chatDuration {{ {STATS} }}"
    )
}

fn report_query() -> String {
    let row = row_fields();
    format!(
        "query($input: ReportInput!) {{ report(input: $input) {{ from to timeZone \
         totals {{ {row} }} byAgent {{ agent {{ id }} {row} }} byDay {{ date {row} }} }} }}"
    )
}

const PASSWORD: &str = "agent-password-1";

async fn agent(
    server: &TestServer,
    owner: &str,
    email: &str,
    role: &str,
    groups: &[&str],
) -> String {
    server
        .ok(
            Some(owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": email, "name": format!("Agent {email}"), "password": PASSWORD,
                   "role": role, "groupIds": groups}}),
        )
        .await["createAgent"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn organization_id(server: &TestServer, token: &str) -> String {
    server
        .ok(Some(token), "{ organization { id } }", json!({}))
        .await["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn ms(y: i32, m: u32, d: u32, h: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .unwrap()
        .timestamp_millis()
}

/// January 2026 in Paris: [2025-12-31 23:00 UTC, 2026-01-31 23:00 UTC).
const FROM: &str = "2026-01-01";
const TO: &str = "2026-01-31";

fn period_ms() -> (i64, i64) {
    (ms(2025, 12, 31, 23), ms(2026, 1, 31, 23))
}

// ---- the independent count ----------------------------------------------------------------

/// Nearest rank, written out: the value at 1-based rank ⌈p·n/100⌉.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100);
    Some(sorted[rank - 1])
}

fn stats(mut values: Vec<i64>) -> Value {
    values.sort_unstable();
    let secs = |v: Option<i64>| v.map(|v| v as f64 / 1000.0);
    let n = values.len() as i64;
    let average = (n > 0).then(|| values.iter().sum::<i64>() / n);
    json!({"count": n, "averageSeconds": secs(average),
           "medianSeconds": secs(percentile(&values, 50)), "p90Seconds": secs(percentile(&values, 90))})
}

/// A chat's response time from its transcript: the mean over the runs an agent answered.
fn response_ms(chat: &GeneratedChat) -> Option<i64> {
    let mut run = Some(chat.created_at);
    let (mut total, mut n) = (0, 0);
    for message in &chat.messages {
        match message.author_kind {
            AuthorKind::Customer => {
                run.get_or_insert(message.at);
            }
            _ => {
                if let Some(start) = run.take() {
                    total += message.at - start;
                    n += 1;
                }
            }
        }
    }
    (n > 0).then(|| total / n)
}

/// The row the report must give for these chats and greetings.
fn expected_row(chats: &[&GeneratedChat], shown: i64, answered: i64, greetings: bool) -> Value {
    let replied = |c: &GeneratedChat| {
        c.messages
            .iter()
            .find(|m| m.author_kind == AuthorKind::Agent)
            .map(|m| m.at)
    };
    let started = chats.len() as i64;
    let good = chats.iter().filter(|c| c.rating == Some("GOOD")).count() as i64;
    let bad = chats.iter().filter(|c| c.rating == Some("BAD")).count() as i64;
    json!({
        "chatsStarted": started,
        "chatsAnswered": chats.iter().filter(|c| replied(c).is_some()).count(),
        "chatsMissed": chats.iter().filter(|c| c.closed_at.is_some() && replied(c).is_none()).count(),
        "chatsTransferred": chats.iter().filter(|c| c.previous_assignee.is_some()).count(),
        "ratedGood": good,
        "ratedBad": bad,
        "ratedShare": (started > 0).then(|| (good + bad) as f64 / started as f64),
        "greetingsShown": greetings.then_some(shown),
        "greetingsAnswered": greetings.then_some(answered),
        "queueWait": stats(chats.iter().filter_map(|c| Some(c.first_assigned_at? - c.created_at)).collect()),
        "firstResponseTime": stats(chats.iter().filter_map(|c| Some(replied(c)? - c.created_at)).collect()),
        "responseTime": stats(chats.iter().filter_map(|c| response_ms(c)).collect()),
        "chatDuration": stats(chats.iter().filter_map(|c| Some(c.closed_at? - c.created_at)).collect()),
    })
}

/// What to count: the chats (and greetings) of a group, an agent or a tag.
#[derive(Default, Clone, Copy)]
struct Filter<'a> {
    groups: Option<&'a [&'a str]>,
    agent: Option<&'a str>,
    tag: Option<&'a str>,
}

fn expected(
    data: &ReportData,
    filter: Filter<'_>,
    day: Option<NaiveDate>,
    agent: Option<Option<&str>>,
) -> Value {
    let (start, end) = period_ms();
    let local_day = |at: i64| {
        DateTime::from_timestamp_millis(at)
            .unwrap()
            .with_timezone(&Paris)
            .date_naive()
    };
    let in_period = |at: i64| at >= start && at < end && day.is_none_or(|d| local_day(at) == d);
    let chats: Vec<&GeneratedChat> = data
        .chats
        .iter()
        .filter(|c| in_period(c.created_at))
        .filter(|c| {
            filter
                .groups
                .is_none_or(|g| c.group_id.as_deref().is_some_and(|id| g.contains(&id)))
        })
        .filter(|c| {
            filter
                .agent
                .is_none_or(|a| c.assignee_id.as_deref() == Some(a))
        })
        .filter(|c| filter.tag.is_none_or(|t| c.tags.iter().any(|x| x == t)))
        .filter(|c| agent.is_none_or(|a| c.assignee_id.as_deref() == a))
        .collect();
    let greetings = data.greetings.iter().filter(|g| {
        filter
            .groups
            .is_none_or(|gs| g.group_id.as_deref().is_some_and(|id| gs.contains(&id)))
            && filter
                .agent
                .is_none_or(|a| g.agent_id.as_deref() == Some(a))
            && agent.is_none_or(|a| g.agent_id.as_deref() == a)
    });
    let shown = greetings
        .clone()
        .filter(|g| g.shown_at.is_some_and(in_period))
        .count() as i64;
    let answered = greetings
        .filter(|g| g.answered_at.is_some_and(in_period))
        .count() as i64;
    expected_row(&chats, shown, answered, filter.tag.is_none())
}

fn without(row: &Value, keys: &[&str]) -> Value {
    let mut row = row.clone();
    for key in keys {
        row.as_object_mut().unwrap().remove(*key);
    }
    row
}

/// Keeps the chat timers from acting on generated data. The generator leaves some chats
/// queued or active, stamped weeks ago: a timer pass would close them as idle or abandoned
/// (now), and the report would rightly count what the independent count does not model.
/// The timers read their first deadline at start, before any data; after that they wait
/// the interval, longer than any test.
fn still_timers(config: &mut switchboard::Config) {
    config.timer_interval = std::time::Duration::from_secs(3600);
}

/// A generated organization: groups, agents, a supervisor, a month and a half of chats.
struct Generated {
    owner: String,
    data: ReportData,
    groups: Vec<String>,
    agents: Vec<String>,
    supervisor_email: String,
}

async fn generated(server: &TestServer, chats: usize) -> Generated {
    let owner = server.owner_token().await;
    let org = organization_id(server, &owner).await;
    let sales = server.create_group(&owner, "Sales").await;
    let support = server.create_group(&owner, "Support").await;
    let mut agents = Vec::new();
    for (n, groups) in [
        vec![sales.as_str()],
        vec![sales.as_str(), support.as_str()],
        vec![support.as_str()],
        vec![support.as_str()],
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("gen{n}@example.com");
        let id = agent(server, &owner, &email, "AGENT", &groups).await;
        agents.push((id, groups.iter().map(|g| g.to_string()).collect::<Vec<_>>()));
    }
    agent(
        server,
        &owner,
        "sup@example.com",
        "SUPERVISOR",
        &[sales.as_str()],
    )
    .await;
    let spec = ReportDataSpec {
        organization_id: org,
        agents: agents.clone(),
        groups: vec![sales.clone(), support.clone()],
        tags: vec!["tag-vip".into(), "tag-billing".into()],
        chats,
        // A day on either side, so the period's edges matter.
        start_ms: ms(2025, 12, 30, 12),
        end_ms: ms(2026, 2, 1, 12),
        seed: 15,
    };
    let data = generate_report_data(&spec);
    server.store.import_report_data(&data).await.unwrap();
    Generated {
        owner,
        data,
        groups: vec![sales, support],
        agents: agents.into_iter().map(|(id, _)| id).collect(),
        supervisor_email: "sup@example.com".into(),
    }
}

async fn report(server: &TestServer, token: &str, input: Value) -> Value {
    server
        .ok(Some(token), &report_query(), json!({"input": input}))
        .await["report"]
        .clone()
}

/// `value` with every fraction rounded to 6 places: JSON parsing may be off in the last bit.
fn rounded(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => json!((n.as_f64().unwrap() * 1e6).round() / 1e6),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), rounded(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(rounded).collect()),
        other => other.clone(),
    }
}

/// Checks a report against the count, in total, per day and per agent.
fn check(report: &Value, data: &ReportData, filter: Filter<'_>) {
    let report = &rounded(report);
    let expected =
        |data: &ReportData, filter, day, agent| rounded(&expected(data, filter, day, agent));
    assert_eq!(
        report["totals"],
        expected(data, filter, None, None),
        "totals"
    );
    let days = report["byDay"].as_array().unwrap();
    assert_eq!(days.len(), 31);
    for day in days {
        let date: NaiveDate = day["date"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            without(day, &["date"]),
            expected(data, filter, Some(date), None),
            "day {date}"
        );
    }
    for row in report["byAgent"].as_array().unwrap() {
        let agent = row["agent"]["id"].as_str();
        assert_eq!(
            without(row, &["agent"]),
            expected(data, filter, None, Some(agent)),
            "agent {agent:?}"
        );
    }
    let counted: i64 = report["byAgent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["chatsStarted"].as_i64().unwrap())
        .sum();
    assert_eq!(Some(counted), report["totals"]["chatsStarted"].as_i64());
}

async fn a_generated_month_matches_an_independent_count(backend: Backend) {
    let server = TestServer::start_with(backend, |c| {
        c.allow_signup = true;
        still_timers(c);
    })
    .await;
    let g = generated(&server, 2500).await;
    // Another organization's data, in the same period, must never count.
    let (rival_token, rival_id) = server.rival_organization().await;
    let rival_data = generate_report_data(&ReportDataSpec {
        organization_id: organization_id(&server, &rival_token).await,
        agents: vec![(rival_id, vec![])],
        groups: vec![],
        tags: vec!["tag-rival".into()],
        chats: 400,
        start_ms: ms(2025, 12, 30, 12),
        end_ms: ms(2026, 2, 1, 12),
        seed: 99,
    });
    server.store.import_report_data(&rival_data).await.unwrap();

    let base = json!({"from": FROM, "to": TO, "timeZone": "Europe/Paris"});
    // First from the chats, then with some days packed, then every day packed whose chats
    // all closed (the generated data leaves the last hours' open), then after tags changed
    // on packed days.
    let mut data = g.data.clone();
    let now = Utc::now().timestamp_millis();
    for round in ["scanned", "partly packed", "packed", "retagged"] {
        match round {
            "partly packed" => {
                // The newest days packed, the older ones scanned.
                let packed = server.store.pack_report_days(now, 12).await.unwrap();
                assert_eq!(packed, 12);
            }
            "packed" => {
                let packed = server
                    .store
                    .pack_report_days(now, usize::MAX)
                    .await
                    .unwrap();
                assert!(packed > 20, "{packed} days packed");
                assert_eq!(
                    server
                        .store
                        .pack_report_days(now, usize::MAX)
                        .await
                        .unwrap(),
                    0
                );
            }
            "retagged" => {
                // Tags changed after the close: a trigger empties each packed day touched,
                // and the reports read those days from the chats again.
                let mut changed = 0;
                for chat in data
                    .chats
                    .iter_mut()
                    .filter(|c| c.status == "CLOSED")
                    .step_by(97)
                {
                    let had = chat.tags.iter().any(|t| t == "tag-vip");
                    let change = if had { "removeChatTag" } else { "addChatTag" };
                    server
                        .ok(
                            Some(&g.owner),
                            &format!("mutation($c: ID!) {{ {change}(chatId: $c, tagId: \"tag-vip\") {{ id }} }}"),
                            json!({"c": chat.id}),
                        )
                        .await;
                    if had {
                        chat.tags.retain(|t| t != "tag-vip");
                    } else {
                        chat.tags.push("tag-vip".into());
                    }
                    changed += 1;
                }
                assert!(changed > 10, "{changed} chats retagged");
            }
            _ => {}
        }
        let everything = report(&server, &g.owner, base.clone()).await;
        assert_eq!(everything["timeZone"], "Europe/Paris");
        assert!(everything["totals"]["chatsStarted"].as_i64().unwrap() > 2000);
        check(&everything, &data, Filter::default());

        let sales = [g.groups[0].as_str()];
        let mut input = base.clone();
        input["groupId"] = json!(g.groups[0]);
        check(
            &report(&server, &g.owner, input).await,
            &data,
            Filter {
                groups: Some(&sales),
                ..Filter::default()
            },
        );

        let mut input = base.clone();
        input["tagId"] = json!("tag-vip");
        let tagged = report(&server, &g.owner, input).await;
        assert_eq!(tagged["totals"]["greetingsShown"], json!(null));
        check(
            &tagged,
            &data,
            Filter {
                tag: Some("tag-vip"),
                ..Filter::default()
            },
        );

        let mut input = base.clone();
        input["agentId"] = json!(g.agents[1]);
        input["groupId"] = json!(g.groups[1]);
        let support = [g.groups[1].as_str()];
        check(
            &report(&server, &g.owner, input).await,
            &data,
            Filter {
                groups: Some(&support),
                agent: Some(&g.agents[1]),
                ..Filter::default()
            },
        );
    }

    // The rival sees their own chats only, and none of ours.
    let theirs = report(&server, &rival_token, base).await;
    check(&theirs, &rival_data, Filter::default());
    let mut foreign = json!({"from": FROM, "to": TO});
    foreign["tagId"] = json!("tag-vip");
    assert_eq!(
        server
            .error_code(
                Some(&rival_token),
                &report_query(),
                json!({"input": foreign})
            )
            .await,
        "NOT_FOUND"
    );
}

async fn agents_and_supervisors_see_their_own_numbers(backend: Backend) {
    let server = TestServer::start_with(backend, still_timers).await;
    let g = generated(&server, 800).await;
    let base = json!({"from": FROM, "to": TO, "timeZone": "Europe/Paris"});

    // An agent: their own numbers, whatever they ask for; never another agent's.
    let gen0 = server.agent_token("gen0@example.com").await;
    let own = report(&server, &gen0, base.clone()).await;
    let mine = Filter {
        agent: Some(&g.agents[0]),
        ..Filter::default()
    };
    check(&own, &g.data, mine);
    assert!(own["byAgent"].as_array().unwrap().len() <= 1);
    let mut input = base.clone();
    input["agentId"] = json!(g.agents[1]);
    assert_eq!(
        server
            .error_code(Some(&gen0), &report_query(), json!({"input": input}))
            .await,
        "FORBIDDEN"
    );

    // A supervisor of Sales: Sales' chats; Support is not theirs.
    let sup = server.agent_token(&g.supervisor_email).await;
    let sales = [g.groups[0].as_str()];
    check(
        &report(&server, &sup, base.clone()).await,
        &g.data,
        Filter {
            groups: Some(&sales),
            ..Filter::default()
        },
    );
    let mut input = base.clone();
    input["groupId"] = json!(g.groups[1]);
    assert_eq!(
        server
            .error_code(Some(&sup), &report_query(), json!({"input": input}))
            .await,
        "FORBIDDEN"
    );
}

async fn bad_periods_and_foreign_ids_are_refused(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    let query = "query($input: ReportInput!) { report(input: $input) { totals { chatsStarted } } }";
    for (input, code, words) in [
        (
            json!({"from": "2026-02-01", "to": "2026-01-31"}),
            "BAD_USER_INPUT",
            "before",
        ),
        (
            json!({"from": "2025-01-01", "to": "2026-02-05"}),
            "BAD_USER_INPUT",
            "400 days",
        ),
        (
            json!({"from": "2026-01-01", "to": "2026-01-31", "timeZone": "Mars/Olympus"}),
            "BAD_USER_INPUT",
            "time zone",
        ),
        (
            json!({"from": "2026-01-01", "to": "2026-01-31", "groupId": "nope"}),
            "NOT_FOUND",
            "group",
        ),
        (
            json!({"from": "2026-01-01", "to": "2026-01-31", "agentId": "nope"}),
            "NOT_FOUND",
            "agent",
        ),
        (
            json!({"from": "2026-01-01", "to": "2026-01-31", "tagId": "nope"}),
            "NOT_FOUND",
            "tag",
        ),
    ] {
        let body = server
            .gql(Some(&owner), query, json!({"input": input.clone()}))
            .await;
        assert_eq!(crate::support::error_code(&body), code, "{input}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(words),
            "{input}: {body}"
        );
    }
    // Dates that are not dates are the schema's to refuse.
    let body = server
        .gql(
            Some(&owner),
            query,
            json!({"input": {"from": "yesterday", "to": "2026-01-31"}}),
        )
        .await;
    assert!(body["errors"].is_array(), "{body}");
    // A visitor is no agent.
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v-reports").await;
    let body = server
        .gql(
            Some(&customer),
            query,
            json!({"input": {"from": "2026-01-01", "to": "2026-01-31"}}),
        )
        .await;
    assert!(body["errors"].is_array(), "{body}");
    // Another organization's group is not found, not reported.
    let rival = server.rival_organization().await.0;
    let ours = server.create_group(&owner, "Sales").await;
    assert_eq!(
        server
            .error_code(
                Some(&rival),
                query,
                json!({"input": {"from": "2026-01-01", "to": "2026-01-31", "groupId": ours}})
            )
            .await,
        "NOT_FOUND"
    );
}

/// The messages of a chat as (author, createdAt in ms), oldest first.
async fn transcript(server: &TestServer, token: &str, chat_id: &str) -> Vec<(String, i64)> {
    let data = server
        .ok(
            Some(token),
            "query($id: ID!) { chat(id: $id) { events { items { author kind createdAt } } } }",
            json!({"id": chat_id}),
        )
        .await;
    data["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "MESSAGE")
        .map(|e| {
            let at: DateTime<Utc> = e["createdAt"].as_str().unwrap().parse().unwrap();
            (
                e["author"].as_str().unwrap().to_owned(),
                at.timestamp_millis(),
            )
        })
        .collect()
}

async fn real_chats_keep_the_bookkeeping_reports_read(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let ada_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let bob_id = server
        .create_agent(&owner, "bob@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let bob = server.agent_token("bob@example.com").await;
    let _ada_events = agent_events(&server, &ada, None).await;
    let key = widget_key(&server, &owner).await;
    let send =
        "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }";

    // Bob is away while the chat starts: it goes to Ada.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let customer = visitor(&server, &key, "v1").await;
    let (chat, status) = start_chat(&server, &customer, "Hello?").await;
    assert_eq!(status, "ACTIVE");
    server
        .ok(
            Some(&customer),
            send,
            json!({"c": chat, "t": "Anyone there?"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    server
        .ok(Some(&ada), send, json!({"c": chat, "t": "Hi! Here."}))
        .await;
    server
        .ok(Some(&ada), send, json!({"c": chat, "t": "How can I help?"}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    server
        .ok(
            Some(&customer),
            send,
            json!({"c": chat, "t": "An invoice, please"}),
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    // Bob takes over and answers.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let _bob_events = agent_events(&server, &bob, None).await;
    server
        .ok(
            Some(&ada),
            "mutation($c: ID!, $to: ID!) { transferChat(input: {chatId: $c, toAgentId: $to}) { status } }",
            json!({"c": chat, "to": bob_id}),
        )
        .await;
    server
        .ok(Some(&bob), send, json!({"c": chat, "t": "Sent it."}))
        .await;
    server
        .ok(
            Some(&bob),
            "mutation($c: ID!) { closeChat(chatId: $c) { status } }",
            json!({"c": chat}),
        )
        .await;

    // A second customer gives up before Ada replies.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let other = visitor(&server, &key, "v2").await;
    let (missed, _) = start_chat(&server, &other, "Hello, prices?").await;
    server
        .ok(
            Some(&other),
            "mutation($c: ID!) { closeChat(chatId: $c) { status } }",
            json!({"c": missed}),
        )
        .await;

    // Today packed as if it had ended (every chat of it closed); then the rating after the
    // close empties the packed day (a trigger), and the report reads the chats again.
    let later = Utc::now().timestamp_millis() + 2 * 86_400_000;
    let pack_today = || async {
        let packed = server.store.pack_report_days(later, usize::MAX).await;
        assert!(packed.unwrap() >= 1, "today was not packed");
    };
    pack_today().await;
    let today = Utc::now().date_naive().to_string();
    let packed = report(&server, &owner, json!({"from": today, "to": today})).await;
    assert_eq!(packed["totals"]["chatsStarted"], 2, "{packed}");
    assert_eq!(packed["totals"]["ratedGood"], 0, "{packed}");
    server
        .ok(
            Some(&customer),
            "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD}) { rating } }",
            json!({"c": chat}),
        )
        .await;
    let rated = report(&server, &owner, json!({"from": today, "to": today})).await;
    assert_eq!(rated["totals"]["ratedGood"], 1, "{rated}");
    pack_today().await;

    // The expected response time, from the transcript: runs answered by a reply.
    let messages = transcript(&server, &owner, &chat).await;
    let (start, mut run, mut total, mut runs) = (messages[0].1, None, 0, 0);
    run.get_or_insert(start);
    for (author, at) in &messages {
        if author == "CUSTOMER" {
            run.get_or_insert(*at);
        } else if let Some(since) = run.take() {
            total += at - since;
            runs += 1;
        }
    }
    assert_eq!(runs, 2, "{messages:?}");
    let first_reply = messages.iter().find(|m| m.0 == "AGENT").unwrap().1;

    let got = report(&server, &owner, json!({"from": today, "to": today})).await;
    let totals = &got["totals"];
    assert_eq!(totals["chatsStarted"], 2, "{got}");
    assert_eq!(totals["chatsAnswered"], 1);
    assert_eq!(totals["chatsMissed"], 1);
    assert_eq!(totals["chatsTransferred"], 1);
    assert_eq!(totals["ratedGood"], 1);
    assert_eq!(totals["ratedShare"], 0.5);
    assert_eq!(totals["responseTime"]["count"], 1);
    assert_eq!(
        totals["responseTime"]["averageSeconds"],
        json!((total / runs) as f64 / 1000.0)
    );
    assert_eq!(
        totals["firstResponseTime"]["medianSeconds"],
        json!((first_reply - start) as f64 / 1000.0)
    );
    assert_eq!(totals["queueWait"]["count"], 2);
    assert_eq!(totals["chatDuration"]["count"], 2);
    // The chat counts for its last assignee, Bob; the missed one for Ada, who had it.
    let by_agent = got["byAgent"].as_array().unwrap();
    assert_eq!(by_agent.len(), 2, "{got}");
    let bob_row = by_agent
        .iter()
        .find(|r| r["agent"]["id"] == bob_id)
        .unwrap();
    assert_eq!(bob_row["chatsStarted"], 1);
    assert_eq!(bob_row["chatsTransferred"], 1);
    assert_eq!(bob_row["responseTime"]["count"], 1);
    let ada_row = by_agent
        .iter()
        .find(|r| r["agent"]["id"] == ada_id)
        .unwrap();
    assert_eq!(ada_row["chatsMissed"], 1);
    assert_eq!(ada_row["chatsAnswered"], 0);
    // Days in another zone hold the same chats (today spans at most two of its days).
    let zone = report(&server, &owner, json!({"from": Utc::now().date_naive().pred_opt().unwrap().to_string(),
        "to": Utc::now().date_naive().succ_opt().unwrap().to_string(), "timeZone": "Pacific/Kiritimati"})).await;
    assert_eq!(zone["totals"]["chatsStarted"], 2);
}

async fn the_csv_export_says_what_the_report_says(backend: Backend) {
    let server = TestServer::start_with(backend, still_timers).await;
    let g = generated(&server, 300).await;
    let got = report(
        &server,
        &g.owner,
        json!({"from": FROM, "to": TO, "timeZone": "Europe/Paris"}),
    )
    .await;
    let url = format!(
        "{}/export/report.csv?from={FROM}&to={TO}&timeZone=Europe/Paris&by=day",
        server.base_url
    );
    let response = server
        .http
        .get(&url)
        .bearer_auth(&g.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(
        lines[0].starts_with("date,chats_started,chats_answered,chats_missed"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 1 + 31);
    for (line, day) in lines[1..].iter().zip(got["byDay"].as_array().unwrap()) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], day["date"].as_str().unwrap());
        assert_eq!(cells[1], day["chatsStarted"].to_string());
        assert_eq!(cells[2], day["chatsAnswered"].to_string());
    }
    // Per agent, names are cells a spreadsheet must not run.
    server
        .ok(
            Some(&g.owner),
            "mutation($id: ID!) { updateAgent(input: {id: $id, name: \"=HYPERLINK(1)\"}) { id } }",
            json!({"id": g.agents[0]}),
        )
        .await;
    let by_agent = server
        .http
        .get(format!(
            "{}/export/report.csv?from={FROM}&to={TO}&timeZone=Europe/Paris&by=agent",
            server.base_url
        ))
        .bearer_auth(&g.owner)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(by_agent.contains("'=HYPERLINK(1)"), "{by_agent}");
    assert!(!by_agent.contains(",=HYPERLINK"), "{by_agent}");
    // Without a token, or with bad input: refused, in words.
    let anonymous = server.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad = server
        .http
        .get(format!(
            "{}/export/report.csv?from=2026-02-01&to=2026-01-01",
            server.base_url
        ))
        .bearer_auth(&g.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("before"));
}
