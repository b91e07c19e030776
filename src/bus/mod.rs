//! The event bus: tells whoever listens that something changed. In-process by default.
//!
//! The bus carries notifications, not data of record: whatever must not be lost is committed to
//! the database first, so a lost bus message costs latency, never data. Subscribers listen on
//! topics (one agent, one organization), so a publish touches only those who care.

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
}

/// Something that happened.
#[derive(Debug, Clone, PartialEq)]
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
}

/// A chat waiting in the queue, as agents' apps need to count what they may take.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedChat {
    pub chat_id: String,
    pub group_id: Option<String>,
}

/// A typing indicator. The draft is the customer's sneak peek, for agents only.
#[derive(Debug, Clone, PartialEq)]
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
}

/// How many events a slow subscriber may fall behind before it is told it lagged.
const TOPIC_CAPACITY: usize = 256;
/// The same for a customer's topic: there is one per visitor on the site, thousands per
/// organization, and few events; a subscriber that lags reads the store again.
const CUSTOMER_TOPIC_CAPACITY: usize = 8;

impl Topic {
    /// The room a topic's channel keeps for subscribers that fall behind.
    fn capacity(&self) -> usize {
        match self {
            Topic::Customer(_) => CUSTOMER_TOPIC_CAPACITY,
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
