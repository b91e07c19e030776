//! The event bus: tells whoever listens that something changed. In-process by default
//! ([`LocalBus`]); across the nodes of a cluster with NATS ([`nats::NatsBus`]).
//!
//! The bus carries notifications, not data of record: whatever must not be lost is committed to
//! the database first, so a lost bus message costs latency, never data. Subscribers listen on
//! topics (one agent, one organization), so a publish touches only those who care. When the
//! bus may have lost messages (NATS came back after an outage), every subscriber is sent
//! [`BusEvent::Resync`] and reads again from the store by cursor, as after a lag.

pub mod nats;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::domain::{AuthorKind, ChatEvent, FeedEntry};

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Everything one agent's apps should hear about.
    Agent(String),
    /// Everything every agent of an organization should hear about.
    Organization(String),
    /// Everything the participants of one chat (the customer above all) should hear about.
    Chat(String),
    /// What one customer's open pages should hear about: their greetings, and their chats
    /// starting and ending.
    Customer(String),
    /// Changes of agents' access (a session ended; role, groups, password or active changed),
    /// for every node's WebSockets to re-check their rights.
    Access,
    /// The nodes' news of the visitors on the site whose pages they hold, so that every node
    /// lists every visitor (with NATS only: one node has nobody to tell).
    OnSite,
}

/// Something that happened. Serializable: NATS carries it between nodes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum BusEvent {
    /// An agent's profile, role, limit, groups, status or activity changed.
    AgentChanged {
        organization_id: String,
        agent_id: String,
    },
    /// An agent's access changed (committed): their connections re-check their session and
    /// rights against the store.
    AccessChanged { agent_id: String },
    /// An entry was appended to an agent's feed (committed). Boxed: the largest event by far,
    /// and every broadcast slot is sized for the largest.
    Feed(Box<FeedEntry>),
    /// An entry was appended to a chat's transcript (committed).
    Transcript(ChatEvent),
    /// Someone started or stopped typing in a chat. Never stored.
    Typing(Typing),
    /// A queued chat's place in the queue, after the queue changed. Never stored.
    QueuePosition {
        chat_id: String,
        position: i64,
        estimated_wait_seconds: i64,
    },
    /// The organization's queue changed: every queued chat with its group, oldest first, and
    /// the chats that joined it since the last announcement. Never stored.
    QueueChanged {
        queued: Vec<QueuedChat>,
        joined: Vec<String>,
    },
    /// A greeting to the customer was sent, answered or dismissed (committed): read it again.
    GreetingChanged { greeting_id: String },
    /// One of the customer's chats started, was assigned or queued, or closed (committed).
    CustomerChatChanged {
        chat_id: String,
        status: crate::domain::ChatStatus,
    },
    /// A node's news of the visitors on the site whose pages it holds. Not stored: a lost
    /// piece is made up for by the node's next heartbeat.
    OnSite(Box<SiteNews>),
    /// The bus may have lost events (NATS was away, or a node that was cut off from it came
    /// back): re-read from the store by cursor, as after a lag. Sent by the bus itself to
    /// every local subscriber, never published by services.
    Resync,
}

/// What a node tells the others about the visitors on the site (see
/// `services::visitors::on_site`). Each piece names the node it comes from, so a node knows
/// whose list it changes and skips its own news.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SiteNews {
    /// A visitor arrived or changed on `node`, as it shows them now. `revision` grows with
    /// every change on that node: older news that arrives late is ignored.
    Shown {
        node: String,
        revision: u64,
        visitor: Box<crate::domain::Visitor>,
    },
    /// The visitor is no longer on the site on `node` (their last page there closed and the
    /// grace period passed).
    Gone {
        node: String,
        organization_id: String,
        customer_id: String,
    },
    /// `node` is alive and holds these visitors, at these revisions. Sent every heartbeat
    /// period (in parts, when it holds many); a visitor a node stops hearing of leaves its
    /// list after a few missed heartbeats.
    Heartbeat {
        node: String,
        visitors: Vec<SiteEntry>,
    },
    /// `node` missed news of these visitors of `from`'s (it heard a heartbeat with a revision
    /// it does not have): `from` shows them again.
    Wanted {
        node: String,
        from: String,
        visitors: Vec<SiteEntry>,
    },
    /// `node` stored a page view of the customer: the nodes that hold their pages move them
    /// to it (and let their greeting rules look).
    PageViewed {
        node: String,
        customer: Box<crate::domain::Customer>,
    },
}

/// One visitor a node holds, as its heartbeat lists them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteEntry {
    pub organization_id: String,
    pub customer_id: String,
    /// The node's revision of the visitor when it last showed them.
    pub revision: u64,
}

/// A chat waiting in the queue, as agents' apps need to count what they may take.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QueuedChat {
    pub chat_id: String,
    pub group_id: Option<String>,
}

/// A typing indicator. The draft is the customer's sneak peek, for agents only.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Typing {
    pub chat_id: String,
    pub author_kind: AuthorKind,
    pub author_id: String,
    pub is_typing: bool,
    pub draft: Option<String>,
}

/// A subscription to one topic. `recv` reports `Lagged` when the subscriber fell behind and
/// missed events; it should then re-read what it shows from the store.
pub type BusReceiver = broadcast::Receiver<Arc<BusEvent>>;

/// Publishes and subscribes to events by topic.
pub trait EventBus: Send + Sync + 'static {
    /// Delivers `event` to the current subscribers of `topic`, if any. Never blocks.
    fn publish(&self, topic: Topic, event: BusEvent);
    /// Starts listening to `topic`.
    fn subscribe(&self, topic: Topic) -> BusReceiver;
    /// Whether events reach the other nodes now, for /readyz and /metrics.
    fn status(&self) -> BusStatus {
        BusStatus::Local
    }
}

/// How a bus reaches the other nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusStatus {
    /// In-process only: a single node.
    Local,
    /// Connected to NATS.
    Connected,
    /// NATS is away: this node serves its own clients, and its subscribers re-read from the
    /// store when it comes back.
    Disconnected,
}

/// How many events a slow subscriber may fall behind before it is told it lagged.
const TOPIC_CAPACITY: usize = 256;
/// The same for a customer's topic: there is one per visitor on the site, thousands per
/// organization, and few events; a subscriber that lags reads the store again.
const CUSTOMER_TOPIC_CAPACITY: usize = 8;
/// The same for the visitors on the site: one subscriber per node hears every node's arrivals
/// and page views, which come in bursts; what it misses, the next heartbeat makes up for.
const ON_SITE_TOPIC_CAPACITY: usize = 4096;

impl Topic {
    /// The room a topic's channel keeps for subscribers that fall behind.
    fn capacity(&self) -> usize {
        match self {
            Topic::Customer(_) => CUSTOMER_TOPIC_CAPACITY,
            Topic::OnSite => ON_SITE_TOPIC_CAPACITY,
            _ => TOPIC_CAPACITY,
        }
    }
}

/// The bus of a single server process.
#[derive(Default)]
pub struct LocalBus {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<BusEvent>>>>,
}

impl LocalBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many topics have a channel, for tests of cleanup.
    pub fn topic_count(&self) -> usize {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether anyone on this node listens to `topic`: events for others need not be decoded.
    pub fn has_subscribers(&self, topic: &Topic) -> bool {
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(topic)
            .is_some_and(|sender| sender.receiver_count() > 0)
    }

    /// Tells every subscriber that events may have been lost ([`BusEvent::Resync`]), and
    /// forgets the topics nobody listens to any more.
    pub fn resync(&self) {
        let resync = Arc::new(BusEvent::Resync);
        self.topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .retain(|_, sender| sender.send(resync.clone()).is_ok());
    }
}

impl EventBus for LocalBus {
    fn publish(&self, topic: Topic, event: BusEvent) {
        let mut topics = self
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let event = Arc::new(event);
        if let Some(sender) = topics.get(&topic)
            && sender.send(event).is_err()
        {
            // Nobody listens any more: forget the topic so the map stays small.
            topics.remove(&topic);
        }
    }

    fn subscribe(&self, topic: Topic) -> BusReceiver {
        let mut topics = self
            .topics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let capacity = topic.capacity();
        topics
            .entry(topic)
            .or_insert_with(|| broadcast::channel(capacity).0)
            .subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(agent: &str) -> BusEvent {
        BusEvent::AgentChanged {
            organization_id: "o".into(),
            agent_id: agent.into(),
        }
    }

    #[tokio::test]
    async fn subscribers_hear_only_their_topic() {
        let bus = LocalBus::new();
        let mut ada = bus.subscribe(Topic::Agent("ada".into()));
        let mut bob = bus.subscribe(Topic::Agent("bob".into()));
        bus.publish(Topic::Agent("ada".into()), changed("ada"));
        assert_eq!(*ada.recv().await.unwrap(), changed("ada"));
        assert!(bob.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_resync_reaches_every_subscriber() {
        let bus = LocalBus::new();
        let mut ada = bus.subscribe(Topic::Agent("ada".into()));
        let mut chat = bus.subscribe(Topic::Chat("c".into()));
        drop(bus.subscribe(Topic::Access));
        bus.resync();
        assert_eq!(*ada.recv().await.unwrap(), BusEvent::Resync);
        assert_eq!(*chat.recv().await.unwrap(), BusEvent::Resync);
        assert_eq!(
            bus.topic_count(),
            2,
            "a topic nobody listens to is forgotten"
        );
        assert!(bus.has_subscribers(&Topic::Chat("c".into())));
        assert!(!bus.has_subscribers(&Topic::Access));
    }

    #[test]
    fn topics_without_listeners_are_forgotten() {
        let bus = LocalBus::new();
        let receiver = bus.subscribe(Topic::Agent("ada".into()));
        assert_eq!(bus.topic_count(), 1);
        drop(receiver);
        bus.publish(Topic::Agent("ada".into()), changed("ada"));
        assert_eq!(bus.topic_count(), 0);
    }
}
