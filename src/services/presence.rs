//! Which agents are reachable: live WebSocket connections per agent, kept in the store as a
//! lease (`presence_expires_at`) so every node routes by the same truth. While an agent has a
//! connection the lease is renewed; when their last connection closes it runs out after the
//! organization's grace period, and the agent stops getting chats.
//!
//! The same registry tells an agent's connections on this node when the agent's access changed
//! (a session ended, a new role or groups): [`AccessWatch`] hears it on the bus from this node
//! and polls the store for changes made on other nodes, and each connection then re-checks its
//! session against the store.
//!
//! [`Presence::agent_connected`] is the whole use case "an agent's app came online": the lease,
//! acknowledging chats pushed to the agent, and routing waiting customers to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use crate::bus::{BusEvent, EventBus, Topic};
use crate::domain;
use crate::services::{ChatService, LivePrincipal, Principal};
use crate::shutdown::{Running, Shutdown};
use crate::store::Database;

/// How far ahead a connected agent's lease reaches. Renewed every third of it, so a node that
/// dies stops routing to its agents within this time.
pub const LEASE: Duration = Duration::seconds(30);

/// Live connections of this node, per agent.
pub struct Presence {
    store: Arc<dyn Database>,
    /// Routes the queue when an agent who accepts chats comes online.
    chats: Arc<ChatService>,
    connections: Mutex<HashMap<String, Local>>,
    /// Counts each connection's departure, so shutdown closes the store only after it is
    /// written.
    tasks: Shutdown,
}

/// One agent's connections on this node.
struct Local {
    organization_id: String,
    count: usize,
    /// Bumped when the agent's access changed; every connection of theirs watches it.
    access: watch::Sender<u64>,
}

/// Counts a connection until dropped.
pub struct Connected {
    presence: Arc<Presence>,
    agent_id: String,
    access: watch::Receiver<u64>,
    /// Taken when the connection is counted, so shutdown waits for its departure even when
    /// the connection drops just before the server stops.
    departure: Option<Running>,
}

impl Connected {
    /// A signal for the streams of this connection: it changes when the agent's access may
    /// have changed, and they re-read the agent's rights then.
    pub fn rights(&self) -> LivePrincipal {
        LivePrincipal {
            access: self.access.clone(),
        }
    }

    /// Completes when the agent's access may have changed: re-check the session then.
    pub async fn access_changed(&mut self) {
        if self.access.changed().await.is_err() {
            // The registry never drops a sender while a guard lives; wait forever if it did.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        let presence = self.presence.clone();
        let agent_id = std::mem::take(&mut self.agent_id);
        if let (Some(departure), Ok(_)) =
            (self.departure.take(), tokio::runtime::Handle::try_current())
        {
            departure.spawn(async move { presence.disconnected(&agent_id).await });
        }
    }
}

impl Presence {
    /// No connections yet. Departures run as tasks of `tasks`.
    pub fn new(store: Arc<dyn Database>, chats: Arc<ChatService>, tasks: Shutdown) -> Arc<Self> {
        Arc::new(Presence {
            store,
            chats,
            connections: Mutex::new(HashMap::new()),
            tasks,
        })
    }

    /// Tells every connection of the agent on this node to re-check its session and rights.
    pub fn access_changed(&self, agent_id: &str) {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(local) = connections.get(agent_id) {
            local.access.send_modify(|generation| *generation += 1);
        }
    }

    /// Whether any agent is connected to this node.
    fn has_connections(&self) -> bool {
        !self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Whether the agent is reachable now by routing's rule: a live connection (on any node),
    /// the grace period after one, or an enabled push device.
    pub async fn reachable(&self, agent_id: &str) -> crate::store::DbResult<bool> {
        self.store.agent_reachable(agent_id, domain::now()).await
    }

    /// An agent's app came online: records the live connection, acknowledges the chats
    /// assigned to the agent through a push (a live app has them), and, when this is the
    /// agent's first connection here and they accept chats, routes waiting customers to them.
    /// Failures after the connection is recorded are logged: the app is online either way.
    pub async fn agent_connected(self: &Arc<Self>, principal: &Principal) -> Connected {
        let (connected, first) = self.connected(principal).await;
        if let Err(err) = self
            .store
            .acknowledge_assignments(&principal.agent.id)
            .await
        {
            tracing::warn!(error = %err, "could not acknowledge assignments");
        }
        let accepting = principal.agent.routing_status == domain::RoutingStatus::AcceptingChats;
        if first
            && accepting
            && let Err(err) = self.chats.drain_queue(principal.organization_id()).await
        {
            tracing::warn!(error = %err, "could not route the queue");
        }
        connected
    }

    /// Records a live connection of the principal. Returns the guard and whether this is the
    /// agent's first connection here (capacity may have appeared).
    pub async fn connected(self: &Arc<Self>, principal: &Principal) -> (Connected, bool) {
        let agent_id = principal.agent.id.clone();
        // Counted before the connection is, so no departure can be missed by shutdown.
        let departure = self.tasks.running();
        let (first, access) = {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            let local = connections
                .entry(agent_id.clone())
                .or_insert_with(|| Local {
                    organization_id: principal.organization_id().to_owned(),
                    count: 0,
                    access: watch::channel(0).0,
                });
            local.count += 1;
            (local.count == 1, local.access.subscribe())
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
                access,
                departure: Some(departure),
            },
            first,
        )
    }

    async fn disconnected(&self, agent_id: &str) {
        let organization = {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            match connections.get_mut(agent_id) {
                Some(local) if local.count > 1 => {
                    local.count -= 1;
                    return;
                }
                Some(_) => connections
                    .remove(agent_id)
                    .map(|local| local.organization_id),
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

/// Renews the presence lease of the agents connected to this node every third of [`LEASE`].
/// Each node's own: only the node an agent is connected to knows they are there.
pub struct Renewal {
    pub presence: Arc<Presence>,
}

impl Renewal {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let every = (LEASE / 3)
            .to_std()
            .unwrap_or(StdDuration::from_secs(10))
            .max(StdDuration::from_secs(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => self.presence.renew().await,
            }
        }
    }
}

/// How often each node asks the store whose access changed: a session ended or rights changed on
/// another node reaches this node's WebSockets within this time (the bus is faster where it
/// reaches).
pub const ACCESS_POLL_INTERVAL: StdDuration = StdDuration::from_millis(250);

/// How far back each poll looks. Changes are stamped by the database's clock (or the writing
/// node's), so the window covers clock differences between nodes and a slow poll; changes seen
/// before are remembered and not announced twice.
const ACCESS_POLL_WINDOW: Duration = Duration::seconds(30);

/// Tells this node's connections when their agent's access changed: at once for changes
/// announced on the bus, and by polling the store for the rest (the store is the truth).
pub struct AccessWatch {
    pub store: Arc<dyn Database>,
    pub bus: Arc<dyn EventBus>,
    pub presence: Arc<Presence>,
}

impl AccessWatch {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut announced = self.bus.subscribe(Topic::Access);
        let mut poll = tokio::time::interval(ACCESS_POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // agent id → the change last seen, so a change is announced once.
        let mut seen: HashMap<String, i64> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                event = announced.recv() => match event {
                    Ok(event) => match &*event {
                        BusEvent::AccessChanged { agent_id } => {
                            self.presence.access_changed(agent_id);
                        }
                        // Announcements may have been lost: ask the store now.
                        BusEvent::Resync => self.poll(&mut seen).await,
                        _ => {}
                    },
                    // Missed announcements: the next poll finds them.
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
                _ = poll.tick() => self.poll(&mut seen).await,
            }
        }
    }

    async fn poll(&self, seen: &mut HashMap<String, i64>) {
        let since = domain::now() - ACCESS_POLL_WINDOW;
        if !self.presence.has_connections() {
            seen.clear();
            return;
        }
        let changes = match self.store.access_changes_since(since).await {
            Ok(changes) => changes,
            Err(err) => {
                tracing::warn!(error = %err, "could not read agents' access changes");
                return;
            }
        };
        let oldest = since.timestamp_millis();
        seen.retain(|_, at| *at > oldest);
        for (agent_id, at) in changes {
            if seen.insert(agent_id.clone(), at) != Some(at) {
                self.presence.access_changed(&agent_id);
            }
        }
    }
}
