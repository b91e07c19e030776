//! Counters and gauges for /metrics, rendered in the Prometheus text format. A handful of
//! atomics and small maps: no metrics framework needed for what we count.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::store::PoolStats;

/// Everything the server counts.
#[derive(Default)]
pub struct Metrics {
    /// HTTP requests by route and status code.
    http_requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// GraphQL operations by transport (`http`, `websocket`).
    graphql_operations: Mutex<BTreeMap<&'static str, u64>>,
    /// GraphQL errors by `extensions.code`.
    graphql_errors: Mutex<BTreeMap<String, u64>>,
    websockets_open: AtomicI64,
    websockets_total: AtomicU64,
    /// Connections refused, restricted or closed by a connection limit, by limit.
    connections_limited: Mutex<BTreeMap<&'static str, u64>>,
    /// Push outcomes by (provider, outcome): sent, failed, retried, token_disabled.
    pushes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Enqueue-to-accepted latency of sent pushes, as cumulative bucket counts.
    push_latency: Mutex<Histogram>,
    /// Leases on once-per-cluster work this node has asked for: whether it holds each, and
    /// its node id.
    cluster_leases: Mutex<BTreeMap<&'static str, (String, bool)>>,
}

/// Appends the event bus's gauge: 1 while NATS is connected, 0 while it is away; absent on a
/// single node (no NATS configured).
pub fn render_bus(out: &mut String, status: crate::bus::BusStatus) {
    let connected = match status {
        crate::bus::BusStatus::Local => return,
        crate::bus::BusStatus::Connected => 1,
        crate::bus::BusStatus::Disconnected => 0,
    };
    header(
        out,
        "switchboard_nats_connected",
        "gauge",
        "Whether this node is connected to NATS (1) or not (0).",
    );
    let _ = writeln!(out, "switchboard_nats_connected {connected}");
}

/// Upper bounds (seconds) of the push latency histogram's buckets.
const LATENCY_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Keeps the open-WebSocket gauge right however a connection ends.
pub struct OpenWebSocket<'a>(&'a Metrics);

impl Drop for OpenWebSocket<'_> {
    fn drop(&mut self) {
        self.0.websockets_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one HTTP request.
    pub fn http_request(&self, route: &str, status: u16) {
        let mut map = lock(&self.http_requests);
        *map.entry((route.to_owned(), status)).or_default() += 1;
    }

    /// Counts one GraphQL operation and its errors' codes.
    pub fn graphql_operation(&self, transport: &'static str, error_codes: &[String]) {
        *lock(&self.graphql_operations).entry(transport).or_default() += 1;
        if !error_codes.is_empty() {
            let mut map = lock(&self.graphql_errors);
            for code in error_codes {
                *map.entry(code.clone()).or_default() += 1;
            }
        }
    }

    /// Counts a connection a limit acted on: `per_address` and `refused` (not served),
    /// `health_only` (past the global cap), `header_timeout` (closed while sending headers).
    pub fn connection_limited(&self, limit: &'static str) {
        *lock(&self.connections_limited).entry(limit).or_default() += 1;
    }

    /// Counts a WebSocket as open until the returned guard drops.
    pub fn websocket_opened(&self) -> OpenWebSocket<'_> {
        self.websockets_open.fetch_add(1, Ordering::Relaxed);
        self.websockets_total.fetch_add(1, Ordering::Relaxed);
        OpenWebSocket(self)
    }

    /// Counts a push the provider accepted, with how long it took since it was queued.
    pub fn push_sent(&self, provider: &'static str, latency: std::time::Duration) {
        self.push_outcome(provider, "sent");
        let seconds = latency.as_secs_f64();
        let mut histogram = lock(&self.push_latency);
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
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
        *lock(&self.pushes).entry((provider, outcome)).or_default() += 1;
    }

    /// Records whether this node (`node`) holds the lease `name` now.
    pub fn lease_held(&self, name: &'static str, node: &str, held: bool) {
        lock(&self.cluster_leases).insert(name, (node.to_owned(), held));
    }

    /// How many WebSockets are open now.
    pub fn websockets_open(&self) -> i64 {
        self.websockets_open.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of everything, with the database pools' state.
    pub fn render(&self, pools: &[PoolStats], push_outbox_depth: Option<i64>) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "switchboard_http_requests_total",
            "counter",
            "HTTP requests by route and status.",
        );
        for ((route, status), count) in lock(&self.http_requests).iter() {
            let _ = writeln!(
                out,
                "switchboard_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
        header(
            &mut out,
            "switchboard_graphql_operations_total",
            "counter",
            "GraphQL operations by transport.",
        );
        for (transport, count) in lock(&self.graphql_operations).iter() {
            let _ = writeln!(
                out,
                "switchboard_graphql_operations_total{{transport=\"{transport}\"}} {count}"
            );
        }
        header(
            &mut out,
            "switchboard_graphql_errors_total",
            "counter",
            "GraphQL errors by code.",
        );
        for (code, count) in lock(&self.graphql_errors).iter() {
            let _ = writeln!(
                out,
                "switchboard_graphql_errors_total{{code=\"{code}\"}} {count}"
            );
        }
        header(
            &mut out,
            "switchboard_websockets_open",
            "gauge",
            "WebSocket connections open now.",
        );
        let _ = writeln!(
            out,
            "switchboard_websockets_open {}",
            self.websockets_open()
        );
        header(
            &mut out,
            "switchboard_websockets_total",
            "counter",
            "WebSocket connections accepted.",
        );
        let _ = writeln!(
            out,
            "switchboard_websockets_total {}",
            self.websockets_total.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "switchboard_connections_limited_total",
            "counter",
            "Connections a limit refused, restricted to health checks, or closed.",
        );
        for (limit, count) in lock(&self.connections_limited).iter() {
            let _ = writeln!(
                out,
                "switchboard_connections_limited_total{{limit=\"{limit}\"}} {count}"
            );
        }
        header(
            &mut out,
            "switchboard_db_pool_connections",
            "gauge",
            "Database connections by pool and state.",
        );
        for pool in pools {
            let idle = pool.idle as u64;
            let busy = u64::from(pool.size).saturating_sub(idle);
            for (state, count) in [("idle", idle), ("busy", busy)] {
                let _ = writeln!(
                    out,
                    "switchboard_db_pool_connections{{pool=\"{}\",state=\"{state}\"}} {count}",
                    pool.name
                );
            }
        }
        header(
            &mut out,
            "switchboard_pushes_total",
            "counter",
            "Push attempts by provider and outcome.",
        );
        for ((provider, outcome), count) in lock(&self.pushes).iter() {
            let _ = writeln!(
                out,
                "switchboard_pushes_total{{provider=\"{provider}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        if let Some(depth) = push_outbox_depth {
            header(
                &mut out,
                "switchboard_push_outbox_depth",
                "gauge",
                "Pushes waiting to be sent.",
            );
            let _ = writeln!(out, "switchboard_push_outbox_depth {depth}");
        }
        let name = "switchboard_push_latency_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time from queueing a push to the provider accepting it.",
        );
        let histogram = lock(&self.push_latency);
        for (bound, count) in LATENCY_BUCKETS.iter().zip(histogram.buckets) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
        let _ = writeln!(out, "{name}_sum {}", histogram.sum);
        let _ = writeln!(out, "{name}_count {}", histogram.count);
        drop(histogram);
        let leases = lock(&self.cluster_leases);
        if !leases.is_empty() {
            header(
                &mut out,
                "switchboard_cluster_lease_held",
                "gauge",
                "1 while this node holds the lease on a kind of once-per-cluster work.",
            );
            for (lease, (node, held)) in leases.iter() {
                let _ = writeln!(
                    out,
                    "switchboard_cluster_lease_held{{lease=\"{lease}\",node=\"{node}\"}} {}",
                    u8::from(*held)
                );
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
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
        let metrics = Metrics::default();
        metrics.http_request("/graphql", 200);
        metrics.graphql_operation("http", &["UNAUTHENTICATED".into()]);
        let guard = metrics.websocket_opened();
        metrics.push_sent("fcm", std::time::Duration::from_millis(30));
        metrics.push_retried("fcm");
        let pools = [PoolStats {
            name: "main",
            size: 3,
            idle: 1,
        }];
        let text = metrics.render(&pools, Some(4));
        assert!(
            text.contains("switchboard_http_requests_total{route=\"/graphql\",status=\"200\"} 1")
        );
        assert!(text.contains("switchboard_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1"));
        assert!(text.contains("switchboard_websockets_open 1"));
        assert!(text.contains("switchboard_db_pool_connections{pool=\"main\",state=\"busy\"} 2"));
        assert!(text.contains("switchboard_pushes_total{provider=\"fcm\",outcome=\"sent\"} 1"));
        assert!(text.contains("switchboard_pushes_total{provider=\"fcm\",outcome=\"retried\"} 1"));
        assert!(text.contains("switchboard_push_outbox_depth 4"));
        assert!(text.contains("switchboard_push_latency_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("switchboard_push_latency_seconds_bucket{le=\"0.05\"} 1"));
        drop(guard);
        assert!(
            metrics
                .render(&[], None)
                .contains("switchboard_websockets_open 0")
        );
    }
}
