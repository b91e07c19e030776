//! The accept loop and what a connection may cost.
//!
//! Ours rather than `axum::serve`, which has no timeouts and no caps: idle and slow
//! (slowloris) clients could hold connections forever and exhaust the process's file
//! descriptors until even /healthz stopped answering. Here:
//!
//! - a client has `header_read_timeout` to send a request's headers, counted from when it
//!   connects or sends the first byte of the next request; a kept-alive connection may then
//!   sit unused for `idle_timeout`. (The body has its own timeout where it is read.)
//! - connections per client address and in all are capped. The global cap stays below the
//!   open-file limit with a reserve, so the database, pushes and established agents keep
//!   their descriptors; past it a few connections are still served, keep-alive off, and only
//!   for /healthz and /readyz, so orchestrators see the truth.
//! - a WebSocket upgrade leaves these timeouts behind (the socket has its own pings) but keeps
//!   its connection slot until it closes.
//!
//! Hitting a limit is logged at warn, at most once per [`LOG_EVERY`] per kind, with a count.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// How often each kind of limit may log.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Descriptors kept back from connections when the cap comes from the open-file limit, besides
/// the database pool and the health-only connections below: SQLite's files and readers, push
/// and webhook clients, logs. What the server needs besides its clients does not grow with
/// the limit, so neither does the reserve: 20,000 open files leave room for 19,800 agents.
const RESERVE: u64 = 128;
/// Connections served past the global cap, for health checks only.
const HEALTH_ONLY_CONNECTIONS: usize = 32;

/// What the accept loop enforces.
#[derive(Debug, Clone)]
pub(super) struct ConnectionLimits {
    pub timeouts: Timeouts,
    /// `None` behind trusted proxies, where every connection has a proxy's address.
    pub max_per_address: Option<usize>,
    pub max_connections: usize,
}

/// How long a connection may wait for its client.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

impl ConnectionLimits {
    /// The limits `config` asks for, the global cap lowered below the open-file limit.
    pub fn from_config(config: &Config) -> ConnectionLimits {
        let by_open_files =
            connections_the_open_file_limit_allows(u64::from(config.database_max_connections));
        let max_connections = match config.max_connections {
            Some(wanted) if wanted > by_open_files => {
                tracing::warn!(
                    wanted,
                    allowed = by_open_files,
                    "SWITCHBOARD_MAX_CONNECTIONS is above what the open-file limit allows; \
                     raise the hard limit (LimitNOFILE, ulimit -Hn) to use it"
                );
                by_open_files
            }
            Some(wanted) => wanted,
            None => by_open_files,
        };
        ConnectionLimits {
            timeouts: Timeouts {
                header_read: config.header_read_timeout,
                idle: config.idle_timeout,
            },
            max_per_address: (config.max_connections_per_address > 0
                && config.trusted_proxy_hops() == 0)
                .then_some(config.max_connections_per_address),
            max_connections,
        }
    }
}

/// Raises the soft open-file limit to the hard one and returns how many connections fit
/// under it with the reserve, the database pool and the health-only connections kept back.
fn connections_the_open_file_limit_allows(database_connections: u64) -> usize {
    #[cfg(unix)]
    let open_files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the open-file limit; assuming 1024");
            1024
        }
    };
    #[cfg(not(unix))]
    let open_files: u64 = 8192;
    let reserve = RESERVE + database_connections + HEALTH_ONLY_CONNECTIONS as u64;
    usize::try_from(open_files.saturating_sub(reserve))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Accepts connections until `shutdown` completes, then tells every connection (through
/// `tasks`' signal) to finish its request and close. Each connection runs as a task of
/// `tasks`; the caller waits for them there.
#[allow(clippy::too_many_arguments)] // one call site, each argument a different role
pub(super) async fn accept_until_shutdown(
    listener: TcpListener,
    app: Router,
    health_only: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
    tasks: Shutdown,
) {
    tracing::info!(
        max_connections = limits.max_connections,
        max_per_address = ?limits.max_per_address,
        "accepting connections"
    );
    let admission = Admission::new(&limits);
    let log = Arc::new(LimitLog::default());
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of descriptors (or a connection reset before accept): back off a
                    // little instead of spinning on the error.
                    log.accept_failed.hit(|count| {
                        tracing::warn!(error = %err, count, "accepting connections failed")
                    });
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (router, slot, policy) = match admission.admit(peer.ip()) {
            Admitted::Full(slot) => (app.clone(), slot, Policy::full(limits.timeouts)),
            Admitted::HealthOnly(slot) => {
                metrics.connection_limited("health_only");
                log.health_only.hit(|count| {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        count,
                        "connection cap reached: new connections get health checks only"
                    )
                });
                (
                    health_only.clone(),
                    slot,
                    Policy::health_only(limits.timeouts),
                )
            }
            Admitted::Refused(Refusal::PerAddress) => {
                metrics.connection_limited("per_address");
                log.per_address.hit(|count| {
                    tracing::warn!(
                        client = %peer.ip(),
                        max_per_address = ?limits.max_per_address,
                        count,
                        "per-address connection cap reached: refusing connections"
                    )
                });
                continue;
            }
            Admitted::Refused(Refusal::Full) => {
                metrics.connection_limited("refused");
                log.refused.hit(|count| {
                    tracing::warn!(
                        count,
                        "connection cap and health-check reserve reached: refusing connections"
                    )
                });
                continue;
            }
        };
        tasks.spawn(serve_connection(
            stream,
            peer,
            router,
            slot,
            policy,
            tasks.subscribe(),
            log.clone(),
            metrics.clone(),
        ));
    }
    tracing::info!("shutting down: finishing requests and closing WebSockets");
    tasks.trigger();
}

/// How one connection is served.
#[derive(Clone, Copy)]
struct Policy {
    timeouts: Timeouts,
    keep_alive: bool,
}

impl Policy {
    fn full(timeouts: Timeouts) -> Policy {
        Policy {
            timeouts,
            keep_alive: true,
        }
    }

    /// One request, promptly, then close: these connections borrow from the reserve.
    fn health_only(timeouts: Timeouts) -> Policy {
        let short = timeouts.header_read.min(Duration::from_secs(5));
        Policy {
            timeouts: Timeouts {
                header_read: short,
                idle: short,
            },
            keep_alive: false,
        }
    }
}

#[allow(clippy::too_many_arguments)] // one call site, each argument a different role
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    slot: ConnectionSlot,
    policy: Policy,
    mut shutdown: watch::Receiver<bool>,
    log: Arc<LimitLog>,
    metrics: Arc<Metrics>,
) {
    let activity = Arc::new(Activity::new(Instant::now()));
    let io = TokioIo::new(WatchedStream {
        inner: stream,
        activity: activity.clone(),
        _slot: slot,
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let in_flight = requests.request_started();
        let response = router.clone().call(request);
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    let connection = http1::Builder::new()
        .keep_alive(policy.keep_alive)
        // Our watchdog times headers; hyper's own timer would also cut kept-alive connections
        // at the header timeout.
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    let mut connection = pin!(connection);
    let mut watchdog = pin!(activity.expired(policy.timeouts));
    let mut draining = false;
    loop {
        if !draining && *shutdown.borrow() {
            draining = true;
            connection.as_mut().graceful_shutdown();
        }
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(err) = served {
                    tracing::debug!(client = %peer, error = %err, "connection ended with an error");
                }
                return;
            }
            expired = watchdog.as_mut() => {
                match expired {
                    Expired::Headers => {
                        metrics.connection_limited("header_timeout");
                        log.slow_headers.hit(|count| tracing::warn!(
                        client = %peer,
                        count,
                        "closed connections that sent their headers too slowly"
                    ))
                    }
                    Expired::Idle => {
                        tracing::debug!(client = %peer, "closing an idle connection")
                    }
                }
                return;
            }
            changed = shutdown.changed(), if !draining => {
                if changed.is_err() {
                    // The server is gone; stop as if told to.
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// What a connection holds while open: its share of the global and per-address caps.
struct ConnectionSlot {
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
}

/// One connection counted against its address; uncounted on drop.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

enum Refusal {
    PerAddress,
    Full,
}

enum Admitted {
    Full(ConnectionSlot),
    HealthOnly(ConnectionSlot),
    Refused(Refusal),
}

/// Counts open connections and decides what a new one gets.
struct Admission {
    connections: Arc<Semaphore>,
    health_only: Arc<Semaphore>,
    max_per_address: Option<usize>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Admission {
        Admission {
            connections: Arc::new(Semaphore::new(limits.max_connections)),
            health_only: Arc::new(Semaphore::new(HEALTH_ONLY_CONNECTIONS)),
            max_per_address: limits.max_per_address,
            per_address: Default::default(),
        }
    }

    fn admit(&self, address: IpAddr) -> Admitted {
        let address_slot = match self.max_per_address {
            None => None,
            Some(max) => {
                let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
                let count = counts.entry(address).or_insert(0);
                if *count >= max {
                    return Admitted::Refused(Refusal::PerAddress);
                }
                *count += 1;
                Some(AddressSlot {
                    counts: self.per_address.clone(),
                    address,
                })
            }
        };
        if let Ok(permit) = self.connections.clone().try_acquire_owned() {
            return Admitted::Full(ConnectionSlot {
                _permit: permit,
                _address: address_slot,
            });
        }
        match self.health_only.clone().try_acquire_owned() {
            Ok(permit) => Admitted::HealthOnly(ConnectionSlot {
                _permit: permit,
                _address: address_slot,
            }),
            Err(_) => Admitted::Refused(Refusal::Full),
        }
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, PartialEq, Eq)]
enum Expired {
    Headers,
    Idle,
}

/// What the watchdog needs to know about a connection: whether a request is being handled,
/// and since when the client has been expected to send something.
struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the watchdog when its deadline may have moved earlier.
    deadline_moved: tokio::sync::Notify,
}

struct ActivityState {
    requests_in_flight: usize,
    /// When the connection opened or the last response was handed over.
    waiting_since: Instant,
    /// Whether a request was served: before the first one, silence counts against the header
    /// timeout; afterwards it is keep-alive idleness.
    served_one: bool,
    /// When the first byte of the next request arrived.
    request_started_at: Option<Instant>,
}

impl Activity {
    fn new(now: Instant) -> Activity {
        Activity {
            state: Mutex::new(ActivityState {
                requests_in_flight: 0,
                waiting_since: now,
                served_one: false,
                request_started_at: None,
            }),
            deadline_moved: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bytes_read(&self, now: Instant) {
        let mut state = self.state();
        if state.requests_in_flight == 0 && state.request_started_at.is_none() {
            state.request_started_at = Some(now);
            drop(state);
            self.deadline_moved.notify_one();
        }
    }

    fn bytes_written(&self, now: Instant) {
        let mut state = self.state();
        // A client slowly reading a response is not idle.
        if state.requests_in_flight == 0 && state.request_started_at.is_none() {
            state.waiting_since = now;
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.state().requests_in_flight += 1;
        InFlight(self.clone())
    }

    fn request_finished(&self, now: Instant) {
        let mut state = self.state();
        state.requests_in_flight -= 1;
        if state.requests_in_flight == 0 {
            state.waiting_since = now;
            state.served_one = true;
            state.request_started_at = None;
            drop(state);
            self.deadline_moved.notify_one();
        }
    }

    /// When the connection expires unless something happens, and why; `None` while a request
    /// is being handled.
    fn deadline(&self, timeouts: Timeouts) -> Option<(Instant, Expired)> {
        let state = self.state();
        if state.requests_in_flight > 0 {
            return None;
        }
        Some(match state.request_started_at {
            Some(started) => (started + timeouts.header_read, Expired::Headers),
            None if !state.served_one => {
                (state.waiting_since + timeouts.header_read, Expired::Headers)
            }
            None => (state.waiting_since + timeouts.idle, Expired::Idle),
        })
    }

    /// Completes when the connection has expired.
    async fn expired(&self, timeouts: Timeouts) -> Expired {
        loop {
            match self.deadline(timeouts) {
                Some((deadline, why)) if deadline <= Instant::now() => return why,
                Some((deadline, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.deadline_moved.notified() => {}
                    }
                }
                // Handlers bound their own work (the body timeout); the end of the request
                // wakes us.
                None => self.deadline_moved.notified().await,
            }
        }
    }
}

/// Marks a request as handled until dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

/// The TCP stream, telling the watchdog when bytes move, and holding the connection's slot
/// for as long as the socket lives (through a WebSocket upgrade too).
struct WatchedStream {
    inner: TcpStream,
    activity: Arc<Activity>,
    _slot: ConnectionSlot,
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read(Instant::now());
        }
        polled
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.bytes_written(Instant::now());
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            this.activity.bytes_written(Instant::now());
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Limits that were hit, each logged at most once per [`LOG_EVERY`].
#[derive(Default)]
struct LimitLog {
    per_address: CoalescedLog,
    health_only: CoalescedLog,
    refused: CoalescedLog,
    slow_headers: CoalescedLog,
    accept_failed: CoalescedLog,
}

/// Counts events and logs the first, then at most one line per [`LOG_EVERY`] with how many
/// happened since: a flood of refused connections must not become a flood of log lines.
#[derive(Default)]
struct CoalescedLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl CoalescedLog {
    fn hit(&self, log: impl FnOnce(u64)) {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 += 1;
        if state
            .0
            .is_none_or(|last| now.duration_since(last) >= LOG_EVERY)
        {
            let count = std::mem::take(&mut state.1);
            state.0 = Some(now);
            drop(state);
            log(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn a_new_connection_has_the_header_timeout_to_start() {
        let start = Instant::now();
        let activity = Activity::new(start);
        assert_eq!(
            activity.deadline(TIMEOUTS),
            Some((start + TIMEOUTS.header_read, Expired::Headers))
        );
    }

    #[test]
    fn a_served_connection_is_idle_until_the_next_request_starts() {
        let start = Instant::now();
        let activity = Arc::new(Activity::new(start));
        let request = activity.request_started();
        assert_eq!(activity.deadline(TIMEOUTS), None);
        drop(request);
        let (deadline, why) = activity.deadline(TIMEOUTS).unwrap();
        assert_eq!(why, Expired::Idle);
        assert!(deadline >= start + TIMEOUTS.idle);
        let next_byte = start + Duration::from_secs(30);
        activity.bytes_read(next_byte);
        activity.bytes_read(next_byte + Duration::from_secs(5));
        assert_eq!(
            activity.deadline(TIMEOUTS),
            Some((next_byte + TIMEOUTS.header_read, Expired::Headers))
        );
    }

    #[test]
    fn the_per_address_cap_counts_open_connections() {
        let admission = Admission::new(&ConnectionLimits {
            timeouts: TIMEOUTS,
            max_per_address: Some(2),
            max_connections: 10,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = admission.admit(a);
        let _second = admission.admit(a);
        assert!(matches!(
            admission.admit(a),
            Admitted::Refused(Refusal::PerAddress)
        ));
        assert!(matches!(admission.admit(b), Admitted::Full(_)));
        drop(first);
        assert!(matches!(admission.admit(a), Admitted::Full(_)));
    }

    #[test]
    fn past_the_global_cap_come_health_checks_then_refusals() {
        let admission = Admission::new(&ConnectionLimits {
            timeouts: TIMEOUTS,
            max_per_address: None,
            max_connections: 1,
        });
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        let _full = admission.admit(address);
        let health: Vec<_> = (0..HEALTH_ONLY_CONNECTIONS)
            .map(|_| admission.admit(address))
            .collect();
        assert!(health.iter().all(|a| matches!(a, Admitted::HealthOnly(_))));
        assert!(matches!(
            admission.admit(address),
            Admitted::Refused(Refusal::Full)
        ));
    }

    #[test]
    fn a_flood_of_hits_logs_once() {
        let log = CoalescedLog::default();
        let mut lines = Vec::new();
        for _ in 0..1000 {
            log.hit(|count| lines.push(count));
        }
        assert_eq!(lines, vec![1]);
    }
}
