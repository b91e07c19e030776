//! The server's metrics for /metrics: a prometheus-client [`Registry`] rendered in the
//! Prometheus text format (0.0.4). Counters, gauges and histograms change where things happen;
//! what the database, the event bus and /proc know is read at each scrape and handed to
//! [`Metrics::render`] as a [`Scrape`], so it is never stale and costs nothing in between.
//!
//! Every label set stays bounded whatever clients send: routes are the router's patterns
//! (unmatched paths share one label), GraphQL operations are named by the first
//! [`OPERATION_NAMES`] names seen (later ones count as `other`), and organizations are the
//! first [`LABELLED_ORGANIZATIONS`] created (the rest summed as `other`).

mod process;

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::bus::BusStatus;
use crate::store::{OrganizationLoad, OutboxBacklog, PoolStats};

pub use process::ProcessStats;

/// The text format's `Content-Type`.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// How many distinct GraphQL operation names get a label of their own; later names count as
/// `other`. Clients choose the names, so without a bound they could grow the series at will.
pub const OPERATION_NAMES: usize = 100;

/// The longest operation name given a label of its own.
const MAX_OPERATION_NAME: usize = 100;

/// How many organizations get a label of their own (the first created); the others are summed
/// under `other`.
pub const LABELLED_ORGANIZATIONS: usize = 50;

/// Upper bounds (seconds) of the push latency histogram's buckets.
const PUSH_LATENCY_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Upper bounds (seconds) of the request and operation latency histograms' buckets.
const REQUEST_LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// The commit the binary was built from, or `unknown` (see build.rs).
const BUILD_COMMIT: &str = env!("SWITCHBOARD_BUILD_COMMIT");

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn request_latency() -> Histogram {
    Histogram::new(REQUEST_LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorCode {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Limit {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushOutcome {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lease {
    lease: &'static str,
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildInfo {
    version: &'static str,
    commit: &'static str,
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolState {
    pool: &'static str,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxKind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrganizationLabel {
    organization: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrganizationName {
    organization: String,
    name: String,
}

/// Everything the server counts as it goes.
pub struct Metrics {
    /// Holds a handle to each metric below; encoding it renders them all.
    registry: Registry,
    http_requests: Family<RouteStatus, Counter>,
    /// Time to the response's head, by route.
    http_duration: HistogramFamily<Route>,
    graphql_operations: Family<Transport, Counter>,
    /// GraphQL errors by `extensions.code`.
    graphql_errors: Family<ErrorCode, Counter>,
    /// Queries and mutations (not subscriptions) from the request to the response, by name.
    graphql_duration: HistogramFamily<Operation>,
    /// The operation names that have a label of their own.
    operation_names: Mutex<HashSet<String>>,
    websockets_open: Gauge,
    websockets_total: Counter,
    /// Connections refused, restricted or closed by a connection limit, by limit.
    connections_limited: Family<Limit, Counter>,
    /// Push outcomes by provider: sent, failed, retried, token_disabled.
    pushes: Family<PushOutcome, Counter>,
    /// Enqueue-to-accepted latency of sent pushes.
    push_latency: Histogram,
    /// Whether this node holds each lease on once-per-cluster work it asked for.
    cluster_leases: Family<Lease, Gauge>,
}

/// Keeps the open-WebSocket gauge right however a connection ends.
pub struct OpenWebSocket<'a>(&'a Metrics);

impl Drop for OpenWebSocket<'_> {
    fn drop(&mut self) {
        self.0.websockets_open.dec();
    }
}

/// What /metrics reads at each scrape besides the registry. A part that could not be read is
/// left out of the page (and logged by whoever read it).
#[derive(Debug, Default)]
pub struct Scrape {
    pub pools: Vec<PoolStats>,
    /// Each outbox's backlog, with the time it was read at.
    pub outboxes: Option<(Vec<OutboxBacklog>, DateTime<Utc>)>,
    pub organizations: Option<Organizations>,
    pub bus: Option<BusStatus>,
    pub process: Option<ProcessStats>,
}

/// The organizations' gauges as read from the store.
#[derive(Debug, Default)]
pub struct Organizations {
    /// The first [`LABELLED_ORGANIZATIONS`] + 1 organizations created, as (id, name): one more
    /// than are labelled tells whether there are others.
    pub first: Vec<(String, String)>,
    /// Every organization that has open chats or accepting agents.
    pub load: Vec<OrganizationLoad>,
}

/// One label's worth of the organizations' gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OrganizationGauges {
    /// The organization's id, or `other`.
    label: String,
    /// Its name; none for `other`.
    name: Option<String>,
    active_chats: i64,
    queued_chats: i64,
    accepting_agents: i64,
}

impl Scrape {
    /// This process's resources, read now.
    pub fn read_process() -> Option<ProcessStats> {
        process::read()
    }
}

impl Metrics {
    /// A fresh set of metrics for a server on `backend` (`sqlite` or `postgres`).
    pub fn new(backend: &'static str) -> Metrics {
        let mut registry = Registry::default();
        let build_info = Family::<BuildInfo, Gauge>::default();
        build_info
            .get_or_create(&BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                commit: BUILD_COMMIT,
                backend,
            })
            .set(1);
        registry.register(
            "switchboard_build_info",
            "The running build: version, commit, database backend; always 1",
            build_info,
        );
        let metrics = Metrics {
            http_requests: Family::default(),
            http_duration: HistogramFamily::new_with_constructor(request_latency),
            graphql_operations: Family::default(),
            graphql_errors: Family::default(),
            graphql_duration: HistogramFamily::new_with_constructor(request_latency),
            operation_names: Mutex::new(HashSet::new()),
            websockets_open: Gauge::default(),
            websockets_total: Counter::default(),
            connections_limited: Family::default(),
            pushes: Family::default(),
            push_latency: Histogram::new(PUSH_LATENCY_BUCKETS),
            cluster_leases: Family::default(),
            registry: Registry::default(),
        };
        // Counters are registered without `_total`: the encoder appends it.
        registry.register(
            "switchboard_http_requests",
            "HTTP requests by route and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "switchboard_http_request_duration_seconds",
            "Time from an HTTP request to its response's head, by route",
            metrics.http_duration.clone(),
        );
        registry.register(
            "switchboard_graphql_operations",
            "GraphQL operations by transport",
            metrics.graphql_operations.clone(),
        );
        registry.register(
            "switchboard_graphql_errors",
            "GraphQL errors by code",
            metrics.graphql_errors.clone(),
        );
        registry.register(
            "switchboard_graphql_operation_duration_seconds",
            "Time to answer a GraphQL query or mutation, by operation name (anonymous, or other \
             past the first 100 names)",
            metrics.graphql_duration.clone(),
        );
        registry.register(
            "switchboard_websockets_open",
            "WebSocket connections open now",
            metrics.websockets_open.clone(),
        );
        registry.register(
            "switchboard_websockets",
            "WebSocket connections accepted",
            metrics.websockets_total.clone(),
        );
        registry.register(
            "switchboard_connections_limited",
            "Connections a limit refused, restricted to health checks, or closed",
            metrics.connections_limited.clone(),
        );
        registry.register(
            "switchboard_pushes",
            "Push attempts by provider and outcome",
            metrics.pushes.clone(),
        );
        registry.register(
            "switchboard_push_latency_seconds",
            "Time from queueing a push to the provider accepting it",
            metrics.push_latency.clone(),
        );
        registry.register(
            "switchboard_cluster_lease_held",
            "1 while this node holds the lease on a kind of once-per-cluster work",
            metrics.cluster_leases.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Counts one HTTP request, answered (its head sent) after `elapsed`.
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one GraphQL operation and its errors' codes.
    pub fn graphql_operation(&self, transport: &'static str, error_codes: &[String]) {
        self.graphql_operations
            .get_or_create(&Transport { transport })
            .inc();
        for code in error_codes {
            self.graphql_errors
                .get_or_create(&ErrorCode { code: code.clone() })
                .inc();
        }
    }

    /// Records how long a query or mutation named `name` (`None`: anonymous) took.
    pub fn graphql_duration(&self, name: Option<&str>, elapsed: Duration) {
        let operation = self.operation_label(name);
        self.graphql_duration
            .get_or_create(&Operation { operation })
            .observe(elapsed.as_secs_f64());
    }

    /// The label of an operation name: itself while the names seen stay within
    /// [`OPERATION_NAMES`], else `other`.
    fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".into();
        };
        if name.len() > MAX_OPERATION_NAME {
            return "other".into();
        }
        let mut names = lock(&self.operation_names);
        if names.contains(name) {
            return name.to_owned();
        }
        if names.len() < OPERATION_NAMES {
            names.insert(name.to_owned());
            return name.to_owned();
        }
        "other".into()
    }

    /// Counts a connection a limit acted on: `per_address` and `refused` (not served),
    /// `health_only` (past the global cap), `header_timeout` (closed while sending headers).
    pub fn connection_limited(&self, limit: &'static str) {
        self.connections_limited
            .get_or_create(&Limit { limit })
            .inc();
    }

    /// Counts a WebSocket as open until the returned guard drops.
    pub fn websocket_opened(&self) -> OpenWebSocket<'_> {
        self.websockets_open.inc();
        self.websockets_total.inc();
        OpenWebSocket(self)
    }

    /// Counts a push the provider accepted, with how long it took since it was queued.
    pub fn push_sent(&self, provider: &'static str, latency: Duration) {
        self.push_outcome(provider, "sent");
        self.push_latency.observe(latency.as_secs_f64());
    }

    /// Counts a push given up (refused, dead token, too many attempts).
    pub fn push_failed(&self, provider: &'static str) {
        self.push_outcome(provider, "failed");
    }

    /// Counts a push scheduled for another attempt.
    pub fn push_retried(&self, provider: &'static str) {
        self.push_outcome(provider, "retried");
    }

    /// Counts a device token disabled on the provider's word.
    pub fn push_token_disabled(&self, provider: &'static str) {
        self.push_outcome(provider, "token_disabled");
    }

    fn push_outcome(&self, provider: &'static str, outcome: &'static str) {
        self.pushes
            .get_or_create(&PushOutcome { provider, outcome })
            .inc();
    }

    /// Records whether this node (`node`) holds the lease `name` now.
    pub fn lease_held(&self, name: &'static str, node: &str, held: bool) {
        self.cluster_leases
            .get_or_create(&Lease {
                lease: name,
                node: node.to_owned(),
            })
            .set(i64::from(held));
    }

    /// How many WebSockets are open now.
    pub fn websockets_open(&self) -> i64 {
        self.websockets_open.get()
    }

    /// The Prometheus text exposition of everything: the registry, then what `scrape` read.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        let _ = prometheus_text::encode(&mut out, &scrape_registry(scrape));
        out
    }
}

/// The metrics read at this scrape, in a registry of their own (their names are not in
/// [`Metrics`]'s, so the two pages join into one).
fn scrape_registry(scrape: &Scrape) -> Registry {
    let mut registry = Registry::default();
    registry.register(
        "switchboard_db_pool_connections",
        "Database connections by pool and state",
        pools_family(&scrape.pools),
    );
    if let Some((writes, commits)) = scrape.pools.iter().find_map(|pool| pool.commits) {
        registry.register(
            "switchboard_sqlite_writes",
            "Write transactions committed on SQLite",
            ConstCounter::new(writes),
        );
        registry.register(
            "switchboard_sqlite_commits",
            "Commits on SQLite; under load several writes share one",
            ConstCounter::new(commits),
        );
    }
    if let Some((outboxes, now)) = &scrape.outboxes {
        let push_depth: i64 = outboxes
            .iter()
            .filter(|outbox| matches!(outbox.kind, "push" | "webpush"))
            .map(|outbox| outbox.depth)
            .sum();
        registry.register(
            "switchboard_push_outbox_depth",
            "Pushes waiting to be sent",
            ConstGauge::new(push_depth),
        );
        let depth = Family::<OutboxKind, Gauge>::default();
        let age = Family::<OutboxKind, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        for outbox in outboxes {
            let kind = OutboxKind { kind: outbox.kind };
            depth.get_or_create(&kind).set(outbox.depth);
            let waited = outbox.oldest_due_at.map_or(0.0, |due| {
                (*now - due).to_std().unwrap_or_default().as_secs_f64()
            });
            age.get_or_create(&kind).set(waited);
        }
        registry.register(
            "switchboard_outbox_depth",
            "Outbox jobs waiting or being sent, by kind",
            depth,
        );
        registry.register(
            "switchboard_outbox_oldest_due_age_seconds",
            "How long the job that fell due first has been due without being sent, by kind; 0 \
             when none is due",
            age,
        );
    }
    if let Some(organizations) = &scrape.organizations {
        let active = Family::<OrganizationLabel, Gauge>::default();
        let queued = Family::<OrganizationLabel, Gauge>::default();
        let accepting = Family::<OrganizationLabel, Gauge>::default();
        let info = Family::<OrganizationName, Gauge>::default();
        for gauges in per_organization(organizations) {
            let label = OrganizationLabel {
                organization: gauges.label.clone(),
            };
            active.get_or_create(&label).set(gauges.active_chats);
            queued.get_or_create(&label).set(gauges.queued_chats);
            accepting.get_or_create(&label).set(gauges.accepting_agents);
            if let Some(name) = gauges.name {
                info.get_or_create(&OrganizationName {
                    organization: gauges.label,
                    name,
                })
                .set(1);
            }
        }
        registry.register(
            "switchboard_organization_active_chats",
            "Chats with an agent, by organization (the first 50 created; the rest as other)",
            active,
        );
        registry.register(
            "switchboard_organization_queued_chats",
            "Chats waiting for an agent, by organization (the first 50 created; the rest as other)",
            queued,
        );
        registry.register(
            "switchboard_organization_accepting_agents",
            "Agents accepting chats, by organization (the first 50 created; the rest as other)",
            accepting,
        );
        registry.register(
            "switchboard_organization_info",
            "The name of each organization labelled in the organization gauges; always 1",
            info,
        );
    }
    match scrape.bus {
        Some(BusStatus::Connected) | Some(BusStatus::Disconnected) => {
            registry.register(
                "switchboard_nats_connected",
                "Whether this node is connected to NATS (1) or not (0)",
                ConstGauge::new(i64::from(scrape.bus == Some(BusStatus::Connected))),
            );
        }
        // A single node has no NATS to be connected to.
        Some(BusStatus::Local) | None => {}
    }
    if let Some(process) = &scrape.process {
        register_process(&mut registry, process);
    }
    registry
}

/// Each pool's idle and busy connections.
fn pools_family(pools: &[PoolStats]) -> Family<PoolState, Gauge> {
    let gauges = Family::<PoolState, Gauge>::default();
    for pool in pools {
        let idle = i64::try_from(pool.idle).unwrap_or(i64::MAX);
        let busy = i64::from(pool.size).saturating_sub(idle).max(0);
        for (state, count) in [("idle", idle), ("busy", busy)] {
            gauges
                .get_or_create(&PoolState {
                    pool: pool.name,
                    state,
                })
                .set(count);
        }
    }
    gauges
}

/// The process's resources under the names client libraries use for them.
fn register_process(registry: &mut Registry, process: &ProcessStats) {
    registry.register(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds",
        ConstCounter::new(process.cpu_seconds),
    );
    registry.register(
        "process_resident_memory_bytes",
        "Resident memory size in bytes",
        ConstGauge::new(process.resident_memory_bytes as i64),
    );
    registry.register(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes",
        ConstGauge::new(process.virtual_memory_bytes as i64),
    );
    registry.register(
        "process_open_fds",
        "Number of open file descriptors",
        ConstGauge::new(process.open_fds as i64),
    );
    if let Some(max) = process.max_fds {
        registry.register(
            "process_max_fds",
            "Maximum number of open file descriptors",
            ConstGauge::new(i64::try_from(max).unwrap_or(i64::MAX)),
        );
    }
    if let Some(start) = process.start_time_seconds {
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            ConstGauge::new(start),
        );
    }
}

/// The organizations' gauges by label: the first [`LABELLED_ORGANIZATIONS`] created each
/// under its id (zeros included, so their series never vanish), everything else summed under
/// `other`, present whenever more organizations exist.
fn per_organization(organizations: &Organizations) -> Vec<OrganizationGauges> {
    let mut labelled: BTreeMap<&str, OrganizationGauges> = organizations
        .first
        .iter()
        .take(LABELLED_ORGANIZATIONS)
        .map(|(id, name)| {
            (
                id.as_str(),
                OrganizationGauges {
                    label: id.clone(),
                    name: Some(name.clone()),
                    ..OrganizationGauges::default()
                },
            )
        })
        .collect();
    let mut other = OrganizationGauges {
        label: "other".into(),
        ..OrganizationGauges::default()
    };
    let mut others_exist = organizations.first.len() > LABELLED_ORGANIZATIONS;
    for load in &organizations.load {
        let gauges = match labelled.get_mut(load.organization_id.as_str()) {
            Some(gauges) => gauges,
            None => {
                others_exist = true;
                &mut other
            }
        };
        gauges.active_chats += load.active_chats;
        gauges.queued_chats += load.queued_chats;
        gauges.accepting_agents += load.accepting_agents;
    }
    let mut out: Vec<OrganizationGauges> = labelled.into_values().collect();
    if others_exist {
        out.push(other);
    }
    out
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_the_open_websocket_gauge() {
        let metrics = Metrics::new("sqlite");
        metrics.http_request("/graphql", 200, Duration::from_millis(3));
        metrics.graphql_operation("http", &["UNAUTHENTICATED".into()]);
        let guard = metrics.websocket_opened();
        metrics.push_sent("fcm", Duration::from_millis(30));
        metrics.push_retried("fcm");
        let now = Utc::now();
        let scrape = Scrape {
            pools: vec![PoolStats {
                name: "main",
                size: 3,
                idle: 1,
                commits: Some((12, 4)),
            }],
            outboxes: Some((
                vec![
                    OutboxBacklog {
                        kind: "push",
                        depth: 3,
                        oldest_due_at: Some(now - chrono::Duration::seconds(5)),
                    },
                    OutboxBacklog {
                        kind: "webpush",
                        depth: 1,
                        oldest_due_at: None,
                    },
                ],
                now,
            )),
            ..Scrape::default()
        };
        let text = metrics.render(&scrape);
        assert!(
            text.contains("switchboard_http_requests_total{route=\"/graphql\",status=\"200\"} 1")
        );
        assert!(text.contains("switchboard_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1"));
        assert!(text.contains("switchboard_websockets_open 1"));
        assert!(text.contains("switchboard_db_pool_connections{pool=\"main\",state=\"busy\"} 2"));
        assert!(text.contains("switchboard_sqlite_writes_total 12"));
        assert!(text.contains("switchboard_sqlite_commits_total 4"));
        assert!(text.contains("switchboard_pushes_total{provider=\"fcm\",outcome=\"sent\"} 1"));
        assert!(text.contains("switchboard_pushes_total{provider=\"fcm\",outcome=\"retried\"} 1"));
        assert!(text.contains("switchboard_push_outbox_depth 4"));
        assert!(text.contains("switchboard_outbox_depth{kind=\"push\"} 3"));
        assert!(text.contains("switchboard_outbox_oldest_due_age_seconds{kind=\"push\"} 5"));
        assert!(text.contains("switchboard_push_latency_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("switchboard_push_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("switchboard_build_info{version=\""));
        assert!(text.contains("backend=\"sqlite\"} 1"));
        drop(guard);
        assert!(
            metrics
                .render(&Scrape::default())
                .contains("switchboard_websockets_open 0")
        );
    }

    #[test]
    fn operation_names_past_the_bound_count_as_other() {
        let metrics = Metrics::new("sqlite");
        for n in 0..OPERATION_NAMES {
            assert_eq!(
                metrics.operation_label(Some(&format!("Op{n}"))),
                format!("Op{n}")
            );
        }
        assert_eq!(metrics.operation_label(Some("OneTooMany")), "other");
        assert_eq!(metrics.operation_label(Some("Op7")), "Op7");
        assert_eq!(metrics.operation_label(None), "anonymous");
        assert_eq!(metrics.operation_label(Some(&"A".repeat(101))), "other");
    }

    #[test]
    fn organizations_past_the_first_fifty_are_summed_as_other() {
        let first: Vec<(String, String)> = (0..=LABELLED_ORGANIZATIONS)
            .map(|n| (format!("org-{n:03}"), format!("Org {n}")))
            .collect();
        let load = |id: &str, active, queued, accepting| OrganizationLoad {
            organization_id: id.into(),
            active_chats: active,
            queued_chats: queued,
            accepting_agents: accepting,
        };
        let gauges = per_organization(&Organizations {
            first,
            load: vec![
                load("org-001", 2, 1, 3),
                load("org-050", 1, 0, 0),
                load("org-999", 4, 2, 1),
            ],
        });
        assert_eq!(gauges.len(), LABELLED_ORGANIZATIONS + 1);
        assert_eq!(
            gauges[1],
            OrganizationGauges {
                label: "org-001".into(),
                name: Some("Org 1".into()),
                active_chats: 2,
                queued_chats: 1,
                accepting_agents: 3,
            }
        );
        assert_eq!(
            gauges[0].active_chats, 0,
            "an idle organization shows zeros"
        );
        let other = gauges.last().unwrap();
        assert_eq!(
            (other.label.as_str(), other.active_chats, other.queued_chats),
            ("other", 5, 2)
        );

        let few = per_organization(&Organizations {
            first: vec![("org-1".into(), "One".into())],
            load: vec![load("org-1", 1, 0, 1)],
        });
        assert_eq!(few.len(), 1, "no other without other organizations");
    }
}
