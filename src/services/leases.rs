//! Work that must run on one node of a cluster at a time (the chat timers, the unsent-file
//! sweeper, the sweep of ended rate-limit windows, packing report days) runs under a lease kept in the database
//! (`cluster_leases`). Every node runs a [`Leased`] worker for each: it takes the lease when
//! it is free or has run out, renews it every third of its length while it works, and gives
//! it back when the node shuts down. A node that dies keeps it until it runs out; another
//! node takes it at its next try, within a third of the lease after that.
//!
//! The lease makes the work run once; it is not what keeps it correct. Every timer action
//! re-checks its condition inside its own transaction, so the moment two nodes overlap (a
//! holder that stalled past its lease) costs a wasted look, never a second close.
//!
//! On SQLite, which has one node, the work runs without a lease.
//!
//! Times are the database's clock, so nodes whose clocks drift agree on who holds a lease.
//! A holder that cannot renew stops its work before the lease could have run out by its
//! own measure (it counts from before each renewal was sent).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::store::Database;

/// The chat timers: attention, auto-transfer, auto-close, missed acceptances, the queue's
/// abandoned chats.
pub const CHAT_TIMERS: &str = "chat-timers";
/// Deleting uploads nobody sent.
pub const UNSENT_FILE_SWEEPER: &str = "unsent-file-sweeper";
/// Deleting rate-limit windows that ended.
pub const RATE_WINDOW_SWEEPER: &str = "rate-window-sweeper";
/// Packing the days whose chats have all closed, for reports.
pub const REPORT_DAY_PACKER: &str = "report-day-packer";

/// This node's name in the leases it holds: random per start, so two nodes (or a node and
/// its restarted self) never pass for one another.
pub fn node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 64
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        })
        .unwrap_or_else(|| "node".into());
    // A v7 id's last 8 hex digits are random.
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}-{}", &id[id.len() - 8..])
}

/// What every lease of this node shares.
#[derive(Clone)]
pub struct Leases {
    pub store: Arc<dyn Database>,
    pub metrics: Arc<Metrics>,
    /// This node's id ([`node_id`]).
    pub node: Arc<str>,
    /// How long a taken or renewed lease lasts.
    pub length: Duration,
}

impl Leases {
    /// The worker `work` makes, run while this node holds the lease `name`.
    pub fn leased<W>(&self, name: &'static str, work: W) -> Leased<W> {
        Leased {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            name,
            node: self.node.clone(),
            length: self.length,
            work,
        }
    }
}

/// Runs the worker `work` makes while this node holds the lease `name`, until shutdown.
pub struct Leased<W> {
    pub store: Arc<dyn Database>,
    pub metrics: Arc<Metrics>,
    pub name: &'static str,
    /// This node's id ([`node_id`]).
    pub node: Arc<str>,
    /// How long a taken or renewed lease lasts.
    pub length: Duration,
    /// Makes the worker each time the lease is taken; the worker stops when its receiver
    /// says so (the lease was lost, or the node shuts down).
    pub work: W,
}

/// Why a node stopped working under a lease.
enum Stop {
    Shutdown,
    /// Another node has it, or it could not be renewed in time.
    Lost,
    /// The worker ended by itself.
    Ended,
}

impl<W, F> Leased<W>
where
    W: Fn(watch::Receiver<bool>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    /// Follows and holds the lease until `shutdown` says stop; gives it back then.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        if self.store.backend_name() != "postgres" {
            // SQLite has one node: nobody to share with, and no lease to wait for after a
            // crash.
            self.metrics.lease_held(self.name, &self.node, true);
            (self.work)(shutdown).await;
            return;
        }
        let try_every = (self.length / 3).max(Duration::from_millis(100));
        loop {
            let sent = Instant::now();
            if !self.acquire().await {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep_until(sent + try_every) => continue,
                }
            }
            tracing::info!(lease = self.name, node = %self.node, "took the lease");
            self.metrics.lease_held(self.name, &self.node, true);
            let stop = self.hold(sent, try_every, &mut shutdown).await;
            self.metrics.lease_held(self.name, &self.node, false);
            match stop {
                Stop::Shutdown => {
                    if let Err(err) = self.store.release_lease(self.name, &self.node).await {
                        tracing::warn!(lease = self.name, error = %err, "could not give the lease back");
                    }
                    return;
                }
                Stop::Lost => {
                    tracing::warn!(lease = self.name, node = %self.node, "lost the lease");
                }
                Stop::Ended => {
                    tracing::warn!(lease = self.name, "the leased work ended by itself");
                    if let Err(err) = self.store.release_lease(self.name, &self.node).await {
                        tracing::warn!(lease = self.name, error = %err, "could not give the lease back");
                    }
                }
            }
            // Another node may take it now; this one tries again in a while.
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(try_every) => {}
            }
        }
    }

    /// Works while renewing the lease taken at `taken`; stops the work, and waits until it
    /// has stopped, before saying why.
    async fn hold(
        &self,
        taken: Instant,
        renew_every: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Stop {
        let (stop_work, stopped) = watch::channel(false);
        // A task of its own: the work must go on while the renewal waits for the database
        // (on SQLite the renewal waits for the one writer, which the work may hold).
        let mut work = tokio::spawn((self.work)(stopped));
        let mut last_sent = taken;
        let mut held_until = taken + self.length;
        let stop = loop {
            tokio::select! {
                _ = shutdown.changed() => break Stop::Shutdown,
                _ = &mut work => break Stop::Ended,
                () = tokio::time::sleep_until(last_sent + renew_every) => {}
            }
            let sent = Instant::now();
            last_sent = sent;
            // A database that does not answer before the lease may have run out: stop.
            let renewed = tokio::time::timeout_at(
                held_until,
                self.store.acquire_lease(self.name, &self.node, self.length),
            )
            .await;
            let Ok(renewed) = renewed else {
                tracing::warn!(lease = self.name, "the lease could not be renewed in time");
                break Stop::Lost;
            };
            match renewed {
                Ok(true) => held_until = sent + self.length,
                Ok(false) => break Stop::Lost,
                Err(err) => {
                    tracing::warn!(lease = self.name, error = %err, "could not renew the lease");
                    // The next try would come after the lease may have run out: stop now.
                    if Instant::now() + renew_every >= held_until {
                        break Stop::Lost;
                    }
                }
            }
        };
        if !matches!(stop, Stop::Ended) {
            let _ = stop_work.send(true);
            if let Err(err) = work.await {
                tracing::warn!(lease = self.name, error = %err, "the leased work failed");
            }
        }
        stop
    }

    async fn acquire(&self) -> bool {
        match self
            .store
            .acquire_lease(self.name, &self.node, self.length)
            .await
        {
            Ok(held) => held,
            Err(err) => {
                tracing::warn!(lease = self.name, error = %err, "could not ask for the lease");
                false
            }
        }
    }
}

/// Deletes the shared rate-limit windows that have ended, every few minutes (Postgres; on
/// SQLite the table stays empty and the sweep finds nothing).
pub struct RateWindowSweeper {
    pub store: Arc<dyn Database>,
}

impl RateWindowSweeper {
    /// How often the sweep runs.
    const EVERY: Duration = Duration::from_secs(300);

    /// Runs until `stop` says so.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            let before = crate::domain::now()
                - chrono::Duration::from_std(super::rate_limit::LONGEST_WINDOW)
                    .unwrap_or_else(|_| chrono::Duration::hours(1));
            match self.store.sweep_attempts(before).await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "swept ended rate-limit windows"),
                Err(err) => tracing::warn!(error = %err, "could not sweep rate-limit windows"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Self::EVERY) => {}
            }
        }
    }
}
