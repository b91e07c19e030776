//! Which agents are reachable: live WebSocket connections per agent, kept in the store as a
//! lease (`presence_expires_at`) so every node routes by the same truth. While an agent has a
//! connection the lease is renewed; when their last connection closes it runs out after the
//! organization's grace period, and the agent stops getting chats.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::Duration;

use crate::domain;
use crate::services::Principal;
use crate::store::Database;

/// How far ahead a connected agent's lease reaches. Renewed every third of it, so a node that
/// dies stops routing to its agents within this time.
pub const LEASE: Duration = Duration::seconds(30);

/// Live connections of this node, per agent.
pub struct Presence {
    store: Arc<dyn Database>,
    /// agent id → (organization id, open connections)
    connections: Mutex<HashMap<String, (String, usize)>>,
}

/// Counts a connection until dropped.
pub struct Connected {
    presence: Arc<Presence>,
    agent_id: String,
}

impl Drop for Connected {
    fn drop(&mut self) {
        let presence = self.presence.clone();
        let agent_id = std::mem::take(&mut self.agent_id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { presence.disconnected(&agent_id).await });
        }
    }
}

impl Presence {
    /// No connections yet.
    pub fn new(store: Arc<dyn Database>) -> Arc<Self> {
        Arc::new(Presence {
            store,
            connections: Mutex::new(HashMap::new()),
        })
    }

    /// Records a live connection of the principal. Returns the guard and whether this is the
    /// agent's first connection here (capacity may have appeared).
    pub async fn connected(self: &Arc<Self>, principal: &Principal) -> (Connected, bool) {
        let agent_id = principal.agent.id.clone();
        let first = {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            let entry = connections
                .entry(agent_id.clone())
                .or_insert_with(|| (principal.organization_id().to_owned(), 0));
            entry.1 += 1;
            entry.1 == 1
        };
        if first
            && let Err(err) = self
                .store
                .set_presence(std::slice::from_ref(&agent_id), domain::now() + LEASE, true)
                .await
        {
            tracing::warn!(error = %err, "could not record an agent's presence");
        }
        (
            Connected {
                presence: self.clone(),
                agent_id,
            },
            first,
        )
    }

    async fn disconnected(&self, agent_id: &str) {
        let organization = {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            match connections.get_mut(agent_id) {
                Some(entry) if entry.1 > 1 => {
                    entry.1 -= 1;
                    return;
                }
                Some(_) => connections.remove(agent_id).map(|(org, _)| org),
                None => return,
            }
        };
        let Some(organization) = organization else {
            return;
        };
        let grace = match self.store.organization(&organization).await {
            Ok(org) => org.settings.presence_grace,
            Err(err) => {
                tracing::warn!(error = %err, "could not read the presence grace period");
                domain::ChatSettings::default().presence_grace
            }
        };
        if let Err(err) = self
            .store
            .set_presence(&[agent_id.to_owned()], domain::now() + grace, false)
            .await
        {
            tracing::warn!(error = %err, "could not record an agent's departure");
        }
    }

    /// Renews the lease of every agent connected here.
    pub async fn renew(&self) {
        let agents: Vec<String> = {
            let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            connections.keys().cloned().collect()
        };
        for chunk in agents.chunks(500) {
            if let Err(err) = self
                .store
                .set_presence(chunk, domain::now() + LEASE, true)
                .await
            {
                tracing::warn!(error = %err, "could not renew agents' presence");
            }
        }
    }
}
