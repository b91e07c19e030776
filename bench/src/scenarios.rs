//! The scenarios. Each returns (name, value) rows for the report.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::{self, Gql};
use crate::server::Server;

type Rows = Vec<(&'static str, Value)>;

/// Requests in flight at once while setting up.
const SETUP_CONCURRENCY: usize = 32;

const AGENT_EVENTS: &str = "subscription { agentEvents {
    __typename ... on MessageAdded { message { clientId author } } } }";
/// The mobile SDK's agentEvents subscription, as it sends it (an SDK test keeps this copy
/// equal to the SDK's).
const SDK_AGENT_EVENTS: &str = include_str!("../queries/sdk-agent-events.graphql");
const CHAT_EVENTS: &str =
    "subscription($chatId: ID!, $since: String) { chatEvents(chatId: $chatId, since: $since) {
    __typename ... on MessageAdded { message { clientId author } } } }";

/// The organization under load: its owner's token and widget key.
struct Org {
    gql: Gql,
    owner: String,
    widget_key: String,
    /// Distinguishes this run's agents on a server used before.
    run: u128,
}

async fn setup(server: &Server) -> Result<Org> {
    let gql = Gql::new(&server.graphql_url());
    let login = gql
        .run(
            None,
            "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }",
            json!({"e": server.owner_email, "p": server.owner_password}),
        )
        .await
        .context("the owner cannot sign in")?;
    let owner = login["login"]["accessToken"]
        .as_str()
        .context("no token")?
        .to_owned();
    gql.run(
        Some(&owner),
        "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
        json!({}),
    )
    .await?;
    // Timers stay out of the way of what is measured, and so do the abuse limits: the bench
    // starts chats far faster than the per-minute cap allows.
    gql.run(
        Some(&owner),
        "mutation { updateOrganizationSettings(input: {queueLimit: 10000, autoTransferSeconds: 86400,
            waitingLongSeconds: 86400, customerIdleSeconds: 86400, autoCloseSeconds: 604800,
            acceptanceTimeoutSeconds: 86400, presenceGraceSeconds: 86400,
            queueAbandonSeconds: 86400, newChatsPerMinute: 1000000}) { id } }",
        json!({}),
    )
    .await?;
    let org = gql
        .run(Some(&owner), "{ organization { widgetKey } }", json!({}))
        .await?;
    let widget_key = org["organization"]["widgetKey"]
        .as_str()
        .context("no widget key")?
        .to_owned();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    Ok(Org {
        gql,
        owner,
        widget_key,
        run,
    })
}

/// Creates and signs in `n` agents with `limit`; returns (id, token) each.
async fn agents(org: &Org, n: usize, limit: usize) -> Result<Vec<(String, String)>> {
    let results: Vec<Result<(String, String)>> = stream::iter(0..n)
        .map(|i| async move {
            let email = format!("bench-{}-{i}@example.com", org.run);
            let created = org
                .gql
                .run(
                    Some(&org.owner),
                    "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                    json!({"input": {"email": email, "name": format!("Agent {i}"), "password": "bench-agent-password", "chatLimit": limit}}),
                )
                .await?;
            let login = org
                .gql
                .run(
                    None,
                    "mutation($e: String!) { login(input: {email: $e, password: \"bench-agent-password\"}) { accessToken } }",
                    json!({"e": email}),
                )
                .await?;
            Ok((
                created["createAgent"]["id"].as_str().context("no id")?.to_owned(),
                login["login"]["accessToken"].as_str().context("no token")?.to_owned(),
            ))
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Starts `n` visitor sessions; returns their tokens.
async fn visitors(org: &Org, n: usize) -> Result<Vec<String>> {
    let results: Vec<Result<String>> = stream::iter(0..n)
        .map(|i| async move {
            let data = org
                .gql
                .run(
                    None,
                    "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token } }",
                    json!({"input": {"widgetKey": org.widget_key, "visitorId": format!("b{}-{i}", org.run), "name": format!("Customer {i}")}}),
                )
                .await?;
            Ok(data["startVisitorSession"]["token"].as_str().context("no token")?.to_owned())
        })
        .buffer_unordered(SETUP_CONCURRENCY * 2)
        .collect()
        .await;
    results.into_iter().collect()
}

/// p50, p95, p99 and max of millisecond samples.
fn percentiles(samples: &mut [f64]) -> Value {
    if samples.is_empty() {
        return json!({"count": 0});
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        (samples[index] * 100.0).round() / 100.0
    };
    json!({"count": samples.len(), "p50Ms": at(0.50), "p95Ms": at(0.95), "p99Ms": at(0.99), "maxMs": at(1.0)})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// N connections each holding an agentEvents subscription.
pub async fn connections(
    server: &Server,
    n: usize,
    agent_count: usize,
    sdk_document: bool,
) -> Result<Rows> {
    let document = if sdk_document {
        SDK_AGENT_EVENTS
    } else {
        AGENT_EVENTS
    };
    let org = setup(server).await?;
    let team = agents(&org, agent_count.max(1), 3).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_bytes();
    let started = Instant::now();
    let sockets: Vec<Result<_>> = stream::iter(0..n)
        .map(|i| {
            let url = server.ws_url_of(i);
            let token = team[i % team.len()].1.clone();
            async move { client::subscribe_from(&url, i, &token, document, json!({})).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connect_time = started.elapsed();
    let failed = sockets.iter().filter(|s| s.is_err()).count();
    if let Some(Err(err)) = sockets.iter().find(|s| s.is_err()) {
        eprintln!("first connection error: {err:#}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_bytes();
    let held = n - failed;
    let per_connection = match (before, after) {
        (Some(b), Some(a)) if held > 0 => json!(a.saturating_sub(b) / held as u64),
        _ => Value::Null,
    };
    drop(sockets);
    Ok(vec![
        ("connections", json!(held)),
        ("failed", json!(failed)),
        (
            "connectSeconds",
            json!((connect_time.as_secs_f64() * 100.0).round() / 100.0),
        ),
        ("serverRssBeforeBytes", json!(before)),
        ("serverRssAfterBytes", json!(after)),
        ("bytesPerConnection", per_connection),
    ])
}

const VISITOR_EVENTS: &str = "subscription { visitorEvents {
    __typename ... on GreetingReceived { greeting { id text } } } }";
const VISITORS_CHANGED: &str = "subscription { visitorsChanged {
    snapshot left visitors { customer { id } currentPage { url } state } } }";

/// N open pages with the widget, each holding the light visitorEvents connection, watched by
/// agents' visitorsChanged subscriptions: the memory a page costs, how many updates an agent
/// receives while they arrive (coalesced), and how long a page change takes to reach them.
pub async fn visitors_on_site(
    server: &Server,
    n: usize,
    watcher_count: usize,
    quiet: Duration,
) -> Result<Rows> {
    let org = setup(server).await?;
    let team = agents(&org, watcher_count.max(1), 3).await?;
    let (updates, mut received) = mpsc::unbounded_channel();
    for (_, token) in &team {
        let socket =
            client::subscribe(&server.ws_url(), token, VISITORS_CHANGED, json!({})).await?;
        client::forward(socket, "agent", updates.clone());
    }
    let tokens = visitors(&org, n).await?;
    // The snapshots of an empty site.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while received.try_recv().is_ok() {}
    let before = server.rss_bytes();
    let url = server.ws_url();
    let started = Instant::now();
    let pages: Vec<Result<_>> = stream::iter(tokens.iter().cloned())
        .map(|token| {
            let url = url.clone();
            async move { client::subscribe(&url, &token, VISITOR_EVENTS, json!({})).await }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    let connect_time = started.elapsed();
    let failed = pages.iter().filter(|p| p.is_err()).count();
    if let Some(Err(err)) = pages.iter().find(|p| p.is_err()) {
        eprintln!("first page error: {err:#}");
    }
    // Long enough for the coalesced updates of the arrivals to go out.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = server.rss_bytes();
    let mut arrival_updates = 0usize;
    let mut seen = HashSet::new();
    while let Ok((_, _, data)) = received.try_recv() {
        arrival_updates += 1;
        for visitor in data["visitors"].as_array().into_iter().flatten() {
            if let Some(id) = visitor["customer"]["id"].as_str() {
                seen.insert(id.to_owned());
            }
        }
    }
    let held = n - failed;
    let per_page = match (before, after) {
        (Some(b), Some(a)) if held > 0 => json!(a.saturating_sub(b) / held as u64),
        _ => Value::Null,
    };

    // Page changes: one visitor at a time moves, each after `quiet` without changes (past
    // the server's coalescing interval, so a lone change); the time until an agent sees it.
    let mut latencies = Vec::new();
    for (i, token) in tokens.iter().take(20).enumerate() {
        tokio::time::sleep(quiet).await;
        let page = format!("https://shop.test/bench/{i}");
        let sent = Instant::now();
        org.gql
            .run(
                Some(token),
                "mutation($url: String!) { updateVisitorPage(input: {url: $url}) { id } }",
                json!({"url": page}),
            )
            .await?;
        let deadline = sent + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((at, _, data))) = tokio::time::timeout(left, received.recv()).await else {
                bail!("no agent saw the page change within 10 s");
            };
            let moved = data["visitors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["currentPage"]["url"].as_str() == Some(page.as_str()));
            if moved {
                latencies.push(ms(at - sent));
                // The other watchers' copies of the same update.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while received.try_recv().is_ok() {}
                break;
            }
        }
    }
    drop(pages);
    Ok(vec![
        ("pages", json!(held)),
        ("failed", json!(failed)),
        ("watchingAgents", json!(team.len())),
        (
            "connectSeconds",
            json!((connect_time.as_secs_f64() * 100.0).round() / 100.0),
        ),
        ("serverRssBeforeBytes", json!(before)),
        ("serverRssAfterBytes", json!(after)),
        ("bytesPerPage", per_page),
        ("updatesWhileArriving", json!(arrival_updates)),
        ("visitorsSeenByAgents", json!(seen.len())),
        ("pageChangeToAgent", percentiles(&mut latencies)),
    ])
}

/// Chats exchanging messages both ways at `rate` per second for `duration`. Latency is from
/// sending `sendMessage` to the other side's subscription receiving the message.
pub async fn conversation(
    server: &Server,
    chat_count: usize,
    agent_count: usize,
    rate: u64,
    duration: Duration,
) -> Result<Rows> {
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    if total == 0 || chat_count == 0 {
        bail!("nothing to send: raise --chats, --rate or --seconds");
    }
    let org = setup(server).await?;
    let limit = chat_count.div_ceil(agent_count.max(1)) + 1;
    let team = agents(&org, agent_count.max(1), limit).await?;
    let (events, mut received) = mpsc::unbounded_channel();
    // Agent `a` works on node `a`, counted round the nodes (one node: all on it).
    for (a, (_, token)) in team.iter().enumerate() {
        let socket =
            client::subscribe(&server.ws_url_of(a), token, AGENT_EVENTS, json!({})).await?;
        client::forward(socket, "agent", events.clone());
    }
    let customers = visitors(&org, chat_count).await?;
    // Each agent's token and node.
    let tokens: HashMap<String, (String, usize)> = team
        .iter()
        .enumerate()
        .map(|(a, (id, token))| (id.clone(), (token.clone(), a)))
        .collect();
    let node_gql: Vec<Gql> = (0..server.nodes.len())
        .map(|n| Gql::new(&server.graphql_url_of(n)))
        .collect();
    let mut chats = Vec::new();
    for customer in &customers {
        let data = org
            .gql
            .run(
                Some(customer),
                "mutation { startChat(input: {message: \"hello\"}) { id } }",
                json!({}),
            )
            .await?;
        let chat_id = data["startChat"]["id"]
            .as_str()
            .context("no chat")?
            .to_owned();
        let chat = org
            .gql
            .run(
                Some(&org.owner),
                "query($id: ID!) { chat(id: $id) { assignee { id } } }",
                json!({"id": chat_id}),
            )
            .await?;
        let assignee = chat["chat"]["assignee"]["id"]
            .as_str()
            .context("a chat was not assigned; raise --agents")?
            .to_owned();
        // The customer is on the node after their agent's: with several nodes, every
        // message crosses from one node to another.
        let (agent_token, agent_node) = tokens[&assignee].clone();
        let customer_node = (agent_node + 1) % server.nodes.len();
        let socket = client::subscribe(
            &server.ws_url_of(customer_node),
            customer,
            CHAT_EVENTS,
            json!({"chatId": chat_id}),
        )
        .await?;
        client::forward(socket, "customer", events.clone());
        chats.push((
            chat_id,
            (customer.clone(), customer_node),
            (agent_token, agent_node % server.nodes.len()),
        ));
    }
    drop(events);

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let errors = Arc::new(Mutex::new(0usize));
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = {
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let (at, side, data) = tokio::select! {
                    arrival = received.recv() => match arrival { Some(a) => a, None => break },
                    _ = &mut stopped => break,
                };
                let message = &data["message"];
                let (Some(client_id), Some(author)) =
                    (message["clientId"].as_str(), message["author"].as_str())
                else {
                    continue;
                };
                // Each side measures what the other side wrote.
                let theirs = (side == "agent" && author == "CUSTOMER")
                    || (side == "customer" && author == "AGENT");
                if theirs && let Some(when) = sent_at.lock().unwrap().remove(client_id) {
                    latencies.push(ms(at - when));
                }
            }
            latencies
        })
    };

    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let cpu_before = server.cpu_seconds().await;
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(1024));
    for n in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
        let (chat_id, customer, agent) = &chats[n % chats.len()];
        // Each side writes through its own node.
        let (token, node) = if (n / chats.len()) % 2 == 0 {
            customer
        } else {
            agent
        };
        let client_id = format!("m{n}");
        sent_at
            .lock()
            .unwrap()
            .insert(client_id.clone(), Instant::now());
        let gql = node_gql[*node].clone();
        let (chat_id, token, errors) = (chat_id.clone(), token.clone(), errors.clone());
        let permit = permits.clone().acquire_owned().await?;
        sends.spawn(async move {
            let result = gql
                .run(
                    Some(&token),
                    "mutation($c: ID!, $t: String!, $id: String!) { sendMessage(input: {chatId: $c, text: $t, clientId: $id}) { id } }",
                    json!({"c": chat_id, "t": "benchmark message", "id": client_id}),
                )
                .await;
            if result.is_err() {
                *errors.lock().unwrap() += 1;
            }
            drop(permit);
        });
    }
    while sends.join_next().await.is_some() {}
    let sending = started.elapsed();
    // Let the last deliveries arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = stop.send(());
    let mut latencies = collector.await?;
    // The server's CPU for the sending and the deliveries (and the two quiet seconds after,
    // which cost next to nothing): steadier than wall time on a shared machine.
    let cpu = match (cpu_before, server.cpu_seconds().await) {
        (Some(before), Some(after)) => Some(after - before),
        _ => None,
    };
    let per_thousand = cpu
        .filter(|_| !latencies.is_empty())
        .map(|cpu| (cpu / latencies.len() as f64 * 1000.0 * 1000.0).round() / 1000.0);
    let undelivered = sent_at.lock().unwrap().len();
    let errors = *errors.lock().unwrap();
    Ok(vec![
        ("messages", json!(total)),
        ("targetRate", json!(rate)),
        (
            "achievedSendRate",
            json!((total as f64 / sending.as_secs_f64() * 10.0).round() / 10.0),
        ),
        ("delivered", json!(latencies.len())),
        ("undelivered", json!(undelivered)),
        ("errors", json!(errors)),
        ("deliveryLatency", percentiles(&mut latencies)),
        (
            "serverCpuSeconds",
            json!(cpu.map(|cpu| (cpu * 100.0).round() / 100.0)),
        ),
        ("serverCpuSecondsPer1000Delivered", json!(per_thousand)),
    ])
}

/// K customers start chats at once against A agents.
pub async fn routing(
    server: &Server,
    customer_count: usize,
    agent_count: usize,
    limit: usize,
) -> Result<Rows> {
    let org = setup(server).await?;
    let team = agents(&org, agent_count, limit).await?;
    let customers = visitors(&org, customer_count).await?;
    let started = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for customer in customers {
        let gql = org.gql.clone();
        starts.spawn(async move {
            let begun = Instant::now();
            let result = gql
                .run(
                    Some(&customer),
                    "mutation { startChat(input: {message: \"hi\"}) { id status } }",
                    json!({}),
                )
                .await;
            (begun.elapsed(), result)
        });
    }
    let mut latencies = Vec::new();
    let (mut active, mut queued, mut errors) = (0, 0, 0);
    while let Some(joined) = starts.join_next().await {
        let (took, result) = joined?;
        latencies.push(ms(took));
        match result
            .as_ref()
            .map(|d| d["startChat"]["status"].as_str().unwrap_or("").to_owned())
        {
            Ok(status) if status == "ACTIVE" => active += 1,
            Ok(status) if status == "QUEUED" => queued += 1,
            _ => errors += 1,
        }
    }
    let settled = started.elapsed();
    let mut seen = HashSet::new();
    let (mut doubles, mut over_limit) = (0, 0);
    for (_, token) in &team {
        let chats = org
            .gql
            .run(Some(token), "{ myChats { id } }", json!({}))
            .await?;
        let chats = chats["myChats"].as_array().cloned().unwrap_or_default();
        if chats.len() > limit {
            over_limit += 1;
        }
        for chat in chats {
            if !seen.insert(chat["id"].as_str().unwrap_or("").to_owned()) {
                doubles += 1;
            }
        }
    }
    Ok(vec![
        ("chats", json!(customer_count)),
        ("active", json!(active)),
        ("queued", json!(queued)),
        ("errors", json!(errors)),
        (
            "settleSeconds",
            json!((settled.as_secs_f64() * 1000.0).round() / 1000.0),
        ),
        ("startChatLatency", percentiles(&mut latencies)),
        ("doubleAssignments", json!(doubles)),
        ("agentsOverLimit", json!(over_limit)),
    ])
}

/// P assignments pushed to agents' phones through a local fake FCM.
pub async fn push(
    attached: Option<Server>,
    pushes: usize,
    agent_count: usize,
    rate: u32,
) -> Result<Rows> {
    let (fake, fake_url) = fake_fcm::start().await?;
    let dir = tempfile::tempdir()?;
    let account = fake_fcm::service_account(dir.path(), &fake_url)?;
    let server = match attached {
        Some(server) => server,
        None => {
            Server::start(&[
                (
                    "SWITCHBOARD_FCM_SERVICE_ACCOUNT",
                    account.display().to_string(),
                ),
                ("SWITCHBOARD_FCM_ENDPOINT", fake_url.clone()),
            ])
            .await?
        }
    };
    let org = setup(&server).await?;
    let limit = pushes.div_ceil(agent_count.max(1)) + 1;
    let team = agents(&org, agent_count.max(1), limit).await?;
    for (i, (_, token)) in team.iter().enumerate() {
        org.gql
            .run(
                Some(token),
                "mutation($t: String!) { registerPushDevice(input: {platform: ANDROID, token: $t, appId: \"bench.agent\"}) { id } }",
                json!({"t": format!("bench-device-{i}")}),
            )
            .await?;
    }
    let customers = visitors(&org, pushes).await?;
    let interval = (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate)));
    let started = Instant::now();
    let started_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut starts = tokio::task::JoinSet::new();
    for (n, customer) in customers.into_iter().enumerate() {
        if let Some(interval) = interval {
            tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
        }
        let gql = org.gql.clone();
        let started_at = started_at.clone();
        starts.spawn(async move {
            let begun = Instant::now();
            let data = gql
                .run(
                    Some(&customer),
                    "mutation { startChat(input: {message: \"hi\"}) { id } }",
                    json!({}),
                )
                .await;
            if let Ok(data) = data
                && let Some(id) = data["startChat"]["id"].as_str()
            {
                started_at.lock().unwrap().insert(id.to_owned(), begun);
            }
        });
    }
    while starts.join_next().await.is_some() {}
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake.received() < pushes && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receipts = fake.receipts();
    let started_at = started_at.lock().unwrap().clone();
    let mut latencies: Vec<f64> = receipts
        .iter()
        .filter_map(|(chat, at)| started_at.get(chat).map(|begun| ms(*at - *begun)))
        .collect();
    let last = receipts.iter().map(|(_, at)| *at).max().unwrap_or(started);
    let span = (last - started).as_secs_f64().max(0.001);
    // The server records a push's latency after the provider's answer: wait for the last.
    let deadline = Instant::now() + Duration::from_secs(5);
    let histogram = loop {
        let metrics = reqwest::get(format!("{}/metrics", server.base))
            .await?
            .text()
            .await?;
        let histogram = push_histogram(&metrics);
        let recorded = histogram.last().map_or(0, |(_, count)| *count);
        if recorded >= receipts.len() as u64 || Instant::now() > deadline {
            break histogram;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Ok(vec![
        ("pushes", json!(pushes)),
        ("delivered", json!(receipts.len())),
        (
            "pushesPerSecond",
            json!((receipts.len() as f64 / span * 10.0).round() / 10.0),
        ),
        ("startChatToProviderLatency", percentiles(&mut latencies)),
        (
            "serverEnqueueToAcceptedP99AtMostMs",
            json!(bucket_quantile(&histogram, 0.99)),
        ),
        (
            "serverEnqueueToAcceptedBuckets",
            json!(
                histogram
                    .iter()
                    .map(|(le, count)| format!("le {le}: {count}"))
                    .collect::<Vec<_>>()
            ),
        ),
    ])
}

/// The server's push latency histogram: (upper bound in seconds, cumulative count), `+Inf`
/// last, from its Prometheus text.
fn push_histogram(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("switchboard_push_latency_seconds_bucket{le=\"")?;
            let (le, count) = rest.split_once("\"} ")?;
            Some((le.to_owned(), count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound, in milliseconds, of the bucket that holds quantile `q`: the histogram's
/// resolution is the bucket, so the true value is at most this. `None` when nothing was
/// recorded or the quantile lies in `+Inf`.
fn bucket_quantile(histogram: &[(String, u64)], q: f64) -> Option<f64> {
    let total = histogram.last()?.1;
    if total == 0 {
        return None;
    }
    let wanted = (q * total as f64).ceil() as u64;
    let (le, _) = histogram.iter().find(|(_, count)| *count >= wanted)?;
    le.parse::<f64>().ok().map(|s| s * 1000.0)
}

mod fake_fcm {
    //! A local stand-in for Google's OAuth and FCM endpoints that accepts everything and
    //! notes when each chat's push arrived.

    use super::*;
    use axum::Json;
    use axum::extract::State;
    use axum::routing::post;

    #[derive(Default)]
    pub struct Fake {
        receipts: Mutex<Vec<(String, Instant)>>,
    }

    impl Fake {
        pub fn received(&self) -> usize {
            self.receipts.lock().unwrap().len()
        }

        pub fn receipts(&self) -> Vec<(String, Instant)> {
            self.receipts.lock().unwrap().clone()
        }
    }

    pub async fn start() -> Result<(Arc<Fake>, String)> {
        let fake = Arc::new(Fake::default());
        let app = axum::Router::new()
            .route(
                "/token",
                post(|| async { Json(json!({"access_token": "bench", "expires_in": 3600})) }),
            )
            .route(
                "/v1/projects/{project}/messages:send",
                post(
                    |State(fake): State<Arc<Fake>>, Json(body): Json<Value>| async move {
                        if body["message"]["data"]["type"] == "NEW_CHAT"
                            && let Some(chat) = body["message"]["data"]["chatId"].as_str()
                        {
                            fake.receipts
                                .lock()
                                .unwrap()
                                .push((chat.to_owned(), Instant::now()));
                        }
                        Json(json!({"name": "projects/bench/messages/1"}))
                    },
                ),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((fake, url))
    }

    /// The test fixture's service account, pointed at the fake.
    pub fn service_account(dir: &std::path::Path, url: &str) -> Result<std::path::PathBuf> {
        let mut account: Value = serde_json::from_str(include_str!(
            "../../tests/it/fixtures/fcm-service-account.json"
        ))?;
        account["token_uri"] = json!(format!("{url}/token"));
        let path = dir.join("service-account.json");
        std::fs::write(&path, account.to_string())?;
        Ok(path)
    }
}
