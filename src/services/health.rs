//! What the probes and the metrics endpoint read about this node's database: whether it takes
//! a write now, the outboxes' backlogs, the organizations' open chats and accepting agents,
//! and the connection pools; and whether its outbox workers take their due jobs. The HTTP
//! layer asks here instead of holding the store, so every read it makes goes through a
//! service.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::outbox::{WorkerHealth, WorkerTrouble};
use crate::store::{Database, DbResult, OrganizationLoad, OutboxBacklog, PoolStats};

/// Read-only health of the store and the outbox workers, for /readyz and /metrics.
pub struct Health {
    store: Arc<dyn Database>,
    /// The outbox workers, which [`crate::App::serve`] starts watched by this list.
    outbox_workers: WorkerHealth,
}

impl Health {
    /// Health of `store`, with no outbox worker watched yet.
    pub fn new(store: Arc<dyn Database>) -> Self {
        Health {
            store,
            outbox_workers: WorkerHealth::default(),
        }
    }

    /// The list the node's outbox workers report to.
    pub fn outbox_workers(&self) -> &WorkerHealth {
        &self.outbox_workers
    }

    /// Whether every outbox worker runs and has taken jobs within `stalled_after` whenever
    /// some were due.
    pub async fn outbox_workers_working(
        &self,
        stalled_after: Duration,
    ) -> Result<(), WorkerTrouble> {
        self.outbox_workers.check(stalled_after).await
    }

    /// Whether the database accepts a write now (a rolled-back one).
    pub async fn database_writable(&self) -> DbResult<()> {
        self.store.ping().await
    }

    /// How many push jobs wait to be sent.
    pub async fn push_outbox_depth(&self) -> DbResult<i64> {
        self.store.push_outbox_depth().await
    }

    /// Every outbox's backlog at `now`.
    pub async fn outbox_backlog(&self, now: DateTime<Utc>) -> DbResult<Vec<OutboxBacklog>> {
        self.store.outbox_backlog(now).await
    }

    /// The first `first` organizations created, as (id, name), and the load of every
    /// organization that has open chats or accepting agents.
    pub async fn organization_load(
        &self,
        first: usize,
    ) -> DbResult<(Vec<(String, String)>, Vec<OrganizationLoad>)> {
        let first = self
            .store
            .first_organizations(i64::try_from(first).unwrap_or(i64::MAX))
            .await?;
        Ok((first, self.store.organization_load().await?))
    }

    /// Connections of each pool: in use, idle, the most allowed.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.store.pool_stats()
    }
}
