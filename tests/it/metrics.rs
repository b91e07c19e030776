//! /metrics as a Prometheus server reads it: parsed with a text-format parser after some
//! traffic, with the process, build, latency, outbox and organization families; behind its
//! bearer token; and on an address of its own.

use std::time::Duration;

use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use switchboard::App;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, start_chat, test_config, visitor, widget_key};

const METRICS_TOKEN: &str = "scrape-token-7f3c9a";

const CREATE_WEBHOOK: &str = "mutation($input: CreateWebhookEndpointInput!) {
    createWebhookEndpoint(input: $input) { endpoint { id } } }";

/// Parses a page of the Prometheus text format.
fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("the page parses")
}

/// The samples named `name` whose labels include `labels`.
fn samples<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(key, value)| sample.labels.get(key) == Some(*value))
        })
        .collect()
}

/// The value of the one sample named `name` with `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = samples(scrape, name, labels);
    assert_eq!(found.len(), 1, "one {name} {labels:?}, got {found:?}");
    match &found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is not a single number: {other:?}"),
    }
}

on_both_backends!(scrape_after_traffic_shows_every_family);

async fn scrape_after_traffic_shows_every_family(backend: Backend) {
    let expected_backend = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let server = TestServer::start_with(backend, |_| {}).await;
    // The owner's first sign-in makes them accept chats.
    let owner = server.owner_token().await;
    let organization = server
        .ok(
            Some(&owner),
            "query MetricsProbe { organization { id name } }",
            json!({}),
        )
        .await["organization"]
        .clone();
    let organization_id = organization["id"].as_str().unwrap();
    // Nothing listens on the discard port: the delivery stays in the webhooks outbox.
    server
        .ok(
            Some(&owner),
            CREATE_WEBHOOK,
            json!({"input": {"url": "http://127.0.0.1:9/hook", "events": ["chat.started"]}}),
        )
        .await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "metrics-visitor").await;
    start_chat(&server, &customer, "Hello?").await;

    let scrape = parse(&server.metrics().await);

    assert!(value(&scrape, "process_open_fds", &[]) > 0.0);
    assert!(value(&scrape, "process_max_fds", &[]) >= value(&scrape, "process_open_fds", &[]));
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&scrape, "process_cpu_seconds_total", &[]) > 0.0);
    assert!(value(&scrape, "process_start_time_seconds", &[]) > 1.7e9);

    let build = samples(&scrape, "switchboard_build_info", &[]);
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].value, Value::Gauge(1.0));
    assert_eq!(build[0].labels.get("backend"), Some(expected_backend));
    assert_eq!(
        build[0].labels.get("version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert!(build[0].labels.get("commit").is_some_and(|c| !c.is_empty()));

    let probe = [("operation", "MetricsProbe")];
    assert_eq!(
        value(
            &scrape,
            "switchboard_graphql_operation_duration_seconds_count",
            &probe
        ),
        1.0
    );
    let buckets = samples(
        &scrape,
        "switchboard_graphql_operation_duration_seconds",
        &probe,
    );
    match &buckets[..] {
        [histogram] => match &histogram.value {
            Value::Histogram(counts) => {
                assert!(counts.len() > 5);
                assert_eq!(
                    counts.last().unwrap().count,
                    1.0,
                    "the +Inf bucket holds it"
                );
            }
            other => panic!("not a histogram: {other:?}"),
        },
        other => panic!("one histogram for MetricsProbe, got {other:?}"),
    }
    // Unnamed operations (the helpers' mutations) share one label.
    assert!(
        value(
            &scrape,
            "switchboard_graphql_operation_duration_seconds_count",
            &[("operation", "anonymous")]
        ) >= 3.0
    );
    assert!(
        value(
            &scrape,
            "switchboard_http_request_duration_seconds_count",
            &[("route", "/graphql")]
        ) >= 6.0
    );

    for kind in ["push", "webpush", "webhooks", "messenger", "email"] {
        let depth = value(&scrape, "switchboard_outbox_depth", &[("kind", kind)]);
        let expected = if kind == "webhooks" { 1.0 } else { 0.0 };
        assert_eq!(depth, expected, "{kind}");
        let age = value(
            &scrape,
            "switchboard_outbox_oldest_due_age_seconds",
            &[("kind", kind)],
        );
        assert!(age >= 0.0, "{kind}: {age}");
    }
    assert_eq!(value(&scrape, "switchboard_push_outbox_depth", &[]), 0.0);

    let org = [("organization", organization_id)];
    let active = value(&scrape, "switchboard_organization_active_chats", &org);
    let queued = value(&scrape, "switchboard_organization_queued_chats", &org);
    assert_eq!(active + queued, 1.0, "the one chat is open");
    assert_eq!(
        value(&scrape, "switchboard_organization_accepting_agents", &org),
        1.0
    );
    let info = samples(&scrape, "switchboard_organization_info", &org);
    assert_eq!(info.len(), 1);
    assert_eq!(
        info[0].labels.get("name"),
        organization["name"].as_str(),
        "the info gauge names it"
    );
    assert!(
        samples(
            &scrape,
            "switchboard_organization_active_chats",
            &[("organization", "other")]
        )
        .is_empty(),
        "one organization: nothing summed as other"
    );

    // What was there before the move to the library keeps its name.
    assert_eq!(
        value(
            &scrape,
            "switchboard_graphql_operations_total",
            &[("transport", "http")]
        ),
        value(
            &scrape,
            "switchboard_graphql_operation_duration_seconds_count",
            &probe
        ) + value(
            &scrape,
            "switchboard_graphql_operation_duration_seconds_count",
            &[("operation", "anonymous")]
        )
    );
    assert_eq!(value(&scrape, "switchboard_websockets_open", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_token_is_required_when_set() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.metrics_token = Some(METRICS_TOKEN.into());
    })
    .await;
    let url = format!("{}/metrics", server.base_url);
    let missing = server.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers().get("www-authenticate").unwrap(), "Bearer");
    for wrong in [
        "Bearer scrape-token-7f3c9b".to_owned(),
        format!("Bearer {METRICS_TOKEN}x"),
        format!("Basic {METRICS_TOKEN}"),
        METRICS_TOKEN.to_owned(),
    ] {
        let refused = server
            .http
            .get(&url)
            .header("authorization", &wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{wrong}");
        assert!(!refused.text().await.unwrap().contains("switchboard_"));
    }
    let accepted = server
        .http
        .get(&url)
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let scrape = parse(&accepted.text().await.unwrap());
    assert_eq!(samples(&scrape, "switchboard_build_info", &[]).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_address_of_its_own_takes_metrics_off_the_main_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = App::start(config).await.expect("the server starts");
    let metrics_addr = app.metrics_addr().expect("the metrics address is bound");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let main_addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };

    let main = get(format!("http://{main_addr}/metrics")).await;
    assert_eq!(main.status(), 404);
    assert_eq!(
        get(format!("http://{main_addr}/healthz")).await.status(),
        200
    );

    let apart = get(format!("http://{metrics_addr}/metrics")).await;
    assert_eq!(apart.status(), 200);
    let scrape = parse(&apart.text().await.unwrap());
    assert_eq!(samples(&scrape, "switchboard_build_info", &[]).len(), 1);
    assert!(value(&scrape, "process_open_fds", &[]) > 0.0);
    // The request to the main address counted there; the scrape itself did not.
    assert_eq!(
        value(
            &scrape,
            "switchboard_http_requests_total",
            &[("route", "/healthz"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        get(format!("http://{metrics_addr}/graphql")).await.status(),
        404,
        "only /metrics is served there"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the server and its metrics address stop within 10 s")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(metrics_addr).await.is_err(),
        "the metrics address is closed"
    );
}
