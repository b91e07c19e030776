//! The event bus of a cluster: NATS core publish/subscribe between the nodes, each node's own
//! subscribers served by a [`LocalBus`] as on a single node.
//!
//! A publish reaches this node's subscribers at once and goes to NATS on its topic's subject
//! (`<prefix>.chat.<id>`, `<prefix>.agent.<id>`, `<prefix>.org.<id>`, `<prefix>.customer.<id>`,
//! `<prefix>.access`, `<prefix>.onsite`) as JSON, with this node's id in a header. One
//! subscription (`<prefix>.>`) hands the other nodes' events to this node's subscribers and
//! skips its own, so nothing is delivered twice. Subscribing to everything keeps subscribing
//! free of races: a stream that subscribes and then reads the store cannot miss an event
//! published in between, which a per-topic NATS subscription (set up asynchronously) could.
//!
//! NATS core delivers at most once. The database is the truth, so a lost event costs latency,
//! never data: the next stored event of that chat or agent shows a gap and the stream reads
//! the store again. Losses the bus can see — NATS away and back, an outgoing queue that
//! overflowed, a slow subscription — become [`BusEvent::Resync`] for every subscriber: this
//! node's own at once, the other nodes' through `<prefix>.resync`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::{BusEvent, BusReceiver, BusStatus, EventBus, LocalBus, Topic};
use crate::config::NatsConfig;
use crate::shutdown::Shutdown;

/// The header naming the node that published an event.
const NODE_HEADER: &str = "Switchboard-Node";

/// Events waiting to go to NATS. Past this (NATS too slow, or away), events are dropped and
/// the other nodes told to resync once the queue drains.
const OUTGOING_CAPACITY: usize = 16 * 1024;

/// How long connecting to NATS may take at start before the server gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the NATS bus could not start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read the NATS credentials file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to NATS at {servers}: {source}")]
    Connect {
        servers: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(String),
}

/// The subjects of one cluster.
#[derive(Debug, Clone)]
struct Subjects {
    prefix: String,
}

/// What a message from NATS is about.
#[derive(Debug, PartialEq)]
enum Incoming {
    Topic(Topic),
    /// Another node may have lost events: every subscriber reads the store again.
    Resync,
}

impl Subjects {
    fn of(&self, topic: &Topic) -> String {
        let prefix = &self.prefix;
        match topic {
            Topic::Agent(id) => format!("{prefix}.agent.{}", token(id)),
            Topic::Organization(id) => format!("{prefix}.org.{}", token(id)),
            Topic::Chat(id) => format!("{prefix}.chat.{}", token(id)),
            Topic::Customer(id) => format!("{prefix}.customer.{}", token(id)),
            Topic::Access => format!("{prefix}.access"),
            Topic::OnSite => format!("{prefix}.onsite"),
        }
    }

    fn resync(&self) -> String {
        format!("{}.resync", self.prefix)
    }

    fn everything(&self) -> String {
        format!("{}.>", self.prefix)
    }

    fn incoming(&self, subject: &str) -> Option<Incoming> {
        let rest = subject.strip_prefix(&self.prefix)?.strip_prefix('.')?;
        match rest.split_once('.') {
            None if rest == "access" => Some(Incoming::Topic(Topic::Access)),
            None if rest == "onsite" => Some(Incoming::Topic(Topic::OnSite)),
            None if rest == "resync" => Some(Incoming::Resync),
            None => None,
            Some((kind, id)) => {
                let id = untoken(id)?;
                Some(Incoming::Topic(match kind {
                    "agent" => Topic::Agent(id),
                    "org" => Topic::Organization(id),
                    "chat" => Topic::Chat(id),
                    "customer" => Topic::Customer(id),
                    _ => return None,
                }))
            }
        }
    }
}

/// An id as one subject token: ids are ours (UUIDs), but a `.`, `*`, `>` or space would change
/// the subject's meaning, so anything but letters, digits, `-` and `_` is written `%XX`.
fn token(id: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    if id.bytes().all(plain) && !id.is_empty() {
        return id.to_owned();
    }
    let mut out = String::with_capacity(id.len() * 3 + 1);
    // An empty id still needs a token.
    if id.is_empty() {
        out.push('%');
    }
    for b in id.bytes() {
        if plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn untoken(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    if !token.contains('%') {
        return Some(token.to_owned());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The bus of a node in a cluster.
pub struct NatsBus {
    local: Arc<LocalBus>,
    subjects: Subjects,
    /// To the task that publishes on NATS in order.
    outgoing: mpsc::Sender<(String, Bytes)>,
    /// Whether NATS is connected; while it is not, events stay on this node.
    connected: Arc<AtomicBool>,
    /// Events were dropped on their way out: the other nodes must resync.
    lost: Arc<AtomicBool>,
}

impl NatsBus {
    /// Connects to the NATS of `config` and subscribes to the cluster's subjects; the tasks
    /// that publish, receive and watch the connection stop with `shutdown`. Fails when NATS
    /// cannot be reached now: a node that starts without its cluster's bus would serve its
    /// clients half the events.
    pub async fn connect(config: &NatsConfig, shutdown: &Shutdown) -> Result<NatsBus, NatsError> {
        let servers = config
            .servers()
            .map_err(NatsError::Config)?
            .ok_or_else(|| NatsError::Config("SWITCHBOARD_NATS_URL is not set".into()))?;
        // Named without user names or passwords, which URLs may carry.
        let named = servers
            .iter()
            .map(|s| format!("{}:{}", s.host(), s.port()))
            .collect::<Vec<_>>()
            .join(", ");
        let node_id = uuid::Uuid::now_v7().simple().to_string();
        let subjects = Subjects {
            prefix: config.nats_subject_prefix.clone(),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let mut options = match &config.nats_creds_file {
            Some(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|source| NatsError::Credentials {
                    path: path.display().to_string(),
                    source,
                })?,
            None => async_nats::ConnectOptions::new(),
        };
        if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &config.nats_token {
            options = options.token(token.clone());
        }
        if let Some(ca) = &config.nats_tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&config.nats_tls_cert, &config.nats_tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let client = options
            .require_tls(config.nats_require_tls)
            .name(format!("switchboard-{node_id}"))
            .connection_timeout(CONNECT_TIMEOUT)
            // Never give up reconnecting: the node serves its own clients meanwhile.
            .max_reconnects(None::<usize>)
            .event_callback(move |event| {
                let events = events_tx.clone();
                async move {
                    let _ = events.send(event);
                }
            })
            .connect(servers)
            .await
            .map_err(|source| NatsError::Connect {
                servers: named.clone(),
                source,
            })?;
        let subscriber = client
            .subscribe(subjects.everything())
            .await
            .map_err(|err| NatsError::Subscribe(err.to_string()))?;
        // The server has the subscription before this node serves anyone.
        client
            .flush()
            .await
            .map_err(|err| NatsError::Subscribe(err.to_string()))?;
        let local = Arc::new(LocalBus::new());
        let connected = Arc::new(AtomicBool::new(true));
        let lost = Arc::new(AtomicBool::new(false));
        let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_CAPACITY);
        shutdown.spawn(
            Publisher {
                client: client.clone(),
                node_id: node_id.clone(),
                subjects: subjects.clone(),
                lost: lost.clone(),
            }
            .run(outgoing_rx, shutdown.subscribe()),
        );
        shutdown.spawn(
            Receiver {
                node_id: node_id.clone(),
                local: local.clone(),
                subjects: subjects.clone(),
                connected: connected.clone(),
            }
            .run(subscriber, shutdown.subscribe()),
        );
        shutdown.spawn(
            ConnectionWatch {
                client,
                node_id,
                local: local.clone(),
                subjects: subjects.clone(),
                connected: connected.clone(),
            }
            .run(events_rx, shutdown.subscribe()),
        );
        tracing::info!(servers = %named, prefix = %subjects.prefix, "events go through NATS");
        Ok(NatsBus {
            local,
            subjects,
            outgoing,
            connected,
            lost,
        })
    }
}

impl EventBus for NatsBus {
    fn publish(&self, topic: Topic, event: BusEvent) {
        let outgoing = if self.connected.load(Ordering::Acquire) {
            match serde_json::to_vec(&event) {
                Ok(payload) => Some((self.subjects.of(&topic), Bytes::from(payload))),
                Err(err) => {
                    tracing::warn!(error = %err, "an event could not be encoded for NATS");
                    None
                }
            }
        } else {
            // NATS is away: the other nodes resync when it is back.
            None
        };
        self.local.publish(topic, event);
        if let Some(message) = outgoing
            && self.outgoing.try_send(message).is_err()
            && !self.lost.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(
                "NATS does not keep up: events are dropped; the other nodes resync when it does"
            );
        }
    }

    fn subscribe(&self, topic: Topic) -> BusReceiver {
        self.local.subscribe(topic)
    }

    fn status(&self) -> BusStatus {
        if self.connected.load(Ordering::Acquire) {
            BusStatus::Connected
        } else {
            BusStatus::Disconnected
        }
    }
}

/// A header map naming this node.
fn from_node(node_id: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(NODE_HEADER, node_id);
    headers
}

/// Sends this node's events to NATS in the order they were published.
struct Publisher {
    client: async_nats::Client,
    node_id: String,
    subjects: Subjects,
    lost: Arc<AtomicBool>,
}

impl Publisher {
    async fn run(
        self,
        mut outgoing: mpsc::Receiver<(String, Bytes)>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let (subject, payload) = tokio::select! {
                _ = shutdown.changed() => return,
                message = outgoing.recv() => match message {
                    Some(message) => message,
                    None => return,
                },
            };
            if let Err(err) = self
                .client
                .publish_with_headers(subject, from_node(&self.node_id), payload)
                .await
            {
                tracing::debug!(error = %err, "an event could not be sent to NATS");
                self.lost.store(true, Ordering::Release);
            }
            // Caught up after dropping events: the other nodes read the store again.
            if outgoing.is_empty() && self.lost.swap(false, Ordering::AcqRel) {
                tracing::info!("NATS keeps up again: the other nodes resync");
                let _ = self
                    .client
                    .publish_with_headers(
                        self.subjects.resync(),
                        from_node(&self.node_id),
                        Bytes::new(),
                    )
                    .await;
            }
        }
    }
}

/// Hands the other nodes' events to this node's subscribers.
struct Receiver {
    node_id: String,
    local: Arc<LocalBus>,
    subjects: Subjects,
    connected: Arc<AtomicBool>,
}

impl Receiver {
    async fn run(
        self,
        mut subscriber: async_nats::Subscriber,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let message = tokio::select! {
                _ = shutdown.changed() => return,
                message = subscriber.next() => match message {
                    Some(message) => message,
                    None => {
                        tracing::error!("the NATS subscription ended: events of other nodes no longer arrive");
                        self.connected.store(false, Ordering::Release);
                        return;
                    }
                },
            };
            let own = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(NODE_HEADER))
                .is_some_and(|node| node.as_str() == self.node_id);
            if own {
                // Delivered here when it was published.
                continue;
            }
            match self.subjects.incoming(&message.subject) {
                Some(Incoming::Resync) => self.local.resync(),
                Some(Incoming::Topic(topic)) => {
                    // Events for nobody here are not even decoded.
                    if !self.local.has_subscribers(&topic) {
                        continue;
                    }
                    match serde_json::from_slice::<BusEvent>(&message.payload) {
                        // Only the bus itself says that; a node never publishes it.
                        Ok(BusEvent::Resync) => {}
                        Ok(event) => self.local.publish(topic, event),
                        Err(err) => tracing::warn!(
                            subject = %message.subject,
                            error = %err,
                            "an event from another node could not be read (a different version?)"
                        ),
                    }
                }
                None => {}
            }
        }
    }
}

/// Follows the connection: reports it away and back, and resyncs when events may have been
/// missed.
struct ConnectionWatch {
    client: async_nats::Client,
    node_id: String,
    local: Arc<LocalBus>,
    subjects: Subjects,
    connected: Arc<AtomicBool>,
}

impl ConnectionWatch {
    async fn run(
        self,
        mut events: mpsc::UnboundedReceiver<async_nats::Event>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut away = false;
        loop {
            let event = tokio::select! {
                _ = shutdown.changed() => return,
                event = events.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
            };
            match event {
                async_nats::Event::Disconnected => {
                    self.connected.store(false, Ordering::Release);
                    if !away {
                        tracing::warn!(
                            "NATS is away: this node serves its own clients; other nodes' events \
                             reach them when it is back"
                        );
                    }
                    away = true;
                }
                async_nats::Event::Connected if away => {
                    // The client subscribes again on the new connection before it sends
                    // anything asked of it now: once this flush returns, the server has the
                    // subscription, and whatever is published from now on reaches this node.
                    if let Err(err) = self.client.flush().await {
                        tracing::warn!(error = %err, "NATS came back but went away again");
                        continue;
                    }
                    away = false;
                    self.connected.store(true, Ordering::Release);
                    // What this node missed, its subscribers read from the store; what it
                    // published meanwhile never left it, so the others do the same.
                    self.local.resync();
                    if let Err(err) = self
                        .client
                        .publish_with_headers(
                            self.subjects.resync(),
                            from_node(&self.node_id),
                            Bytes::new(),
                        )
                        .await
                    {
                        tracing::warn!(error = %err, "could not ask the other nodes to resync");
                    }
                    tracing::info!("NATS is back: this node's streams read what they missed");
                }
                async_nats::Event::Connected => {}
                async_nats::Event::SlowConsumer(_) => {
                    tracing::warn!("this node fell behind NATS and missed events: resync");
                    self.local.resync();
                }
                async_nats::Event::Closed => {
                    self.connected.store(false, Ordering::Release);
                    tracing::error!("the NATS connection is closed");
                }
                event => tracing::info!(%event, "NATS"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_subjects_map_both_ways() {
        let subjects = Subjects {
            prefix: "acme.chat".into(),
        };
        for topic in [
            Topic::Agent("0191-ab_c".into()),
            Topic::Organization("o1".into()),
            Topic::Chat("c.1 *>%".into()),
            Topic::Customer(String::new()),
            Topic::Access,
            Topic::OnSite,
        ] {
            let subject = subjects.of(&topic);
            assert!(
                !subject.contains(' ') && !subject.contains('*'),
                "{subject}"
            );
            assert_eq!(
                subject.matches('.').count(),
                if matches!(topic, Topic::Access | Topic::OnSite) {
                    2
                } else {
                    3
                }
            );
            assert_eq!(subjects.incoming(&subject), Some(Incoming::Topic(topic)));
        }
        assert_eq!(subjects.of(&Topic::Chat("c1".into())), "acme.chat.chat.c1");
        assert_eq!(
            subjects.incoming("acme.chat.resync"),
            Some(Incoming::Resync)
        );
        assert_eq!(subjects.incoming("other.chat.c1"), None);
        assert_eq!(subjects.incoming("acme.chat.unknown.c1"), None);
        assert_eq!(subjects.incoming("acme.chatter.chat.c1"), None);
    }

    #[test]
    fn every_event_survives_the_wire() {
        use crate::domain::{AuthorKind, ChatStatus};
        let events = [
            BusEvent::Typing(crate::bus::Typing {
                chat_id: "c".into(),
                author_kind: AuthorKind::Customer,
                author_id: "u".into(),
                is_typing: true,
                draft: Some("hel".into()),
            }),
            BusEvent::QueueChanged {
                queued: vec![crate::bus::QueuedChat {
                    chat_id: "c".into(),
                    group_id: None,
                }],
                joined: vec!["c".into()],
            },
            BusEvent::CustomerChatChanged {
                chat_id: "c".into(),
                status: ChatStatus::Queued,
            },
            BusEvent::AccessChanged {
                agent_id: "a".into(),
            },
            BusEvent::OnSite(Box::new(crate::bus::SiteNews::Heartbeat {
                node: "n".into(),
                visitors: vec![crate::bus::SiteEntry {
                    organization_id: "o".into(),
                    customer_id: "u".into(),
                    revision: 7,
                }],
            })),
        ];
        for event in events {
            let wire = serde_json::to_vec(&event).unwrap();
            assert_eq!(serde_json::from_slice::<BusEvent>(&wire).unwrap(), event);
        }
    }
}
