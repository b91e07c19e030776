//! What the probes and the metrics endpoint read about this node's database: whether it takes
//! a write now, the push outbox's depth, and the connection pools. The HTTP layer asks here
//! instead of holding the store, so every read it makes goes through a service.

use std::sync::Arc;

use crate::store::{Database, DbResult, PoolStats};

/// Read-only health of the store, for /readyz and /metrics.
pub struct Health {
    store: Arc<dyn Database>,
}

impl Health {
    /// Health of `store`.
    pub fn new(store: Arc<dyn Database>) -> Self {
        Health { store }
    }

    /// Whether the database accepts a write now (a rolled-back one).
    pub async fn database_writable(&self) -> DbResult<()> {
        self.store.ping().await
    }

    /// How many push jobs wait to be sent.
    pub async fn push_outbox_depth(&self) -> DbResult<i64> {
        self.store.push_outbox_depth().await
    }

    /// Connections of each pool: in use, idle, the most allowed.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.store.pool_stats()
    }
}
