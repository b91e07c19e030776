//! The live event streams behind the `agentEvents` and `chatEvents` subscriptions: replay
//! from the store after a cursor, then live from the bus, with nothing lost and nothing twice.
//!
//! Stored entries carry gap-free sequence numbers (per agent for feeds, per chat for
//! transcripts). The stream subscribes to the bus before it reads the store, skips live
//! entries it already replayed, and goes back to the store whenever it sees a gap (a late
//! publication, a lagging subscriber). Ephemeral events (typing, queue positions) carry the
//! cursor of the last stored entry delivered, so resuming from them is exact too.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::bus::{BusEvent, BusReceiver, Topic, Typing};
use crate::domain::{
    self, AuthorKind, ChatEvent, ChatEventKind, ChatStatus, FeedEntry, Visibility,
};
use crate::error::{Error, Result};
use crate::services::{Caller, LivePrincipal, Principal, Services};

/// How many stored entries one store read replays.
const REPLAY_PAGE: i64 = 200;

/// How soon a customer's subscription says again that they are there when saying so failed.
const CUSTOMER_PRESENCE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// An event of an agent's stream.
#[derive(Debug, Clone)]
pub enum AgentStreamEvent {
    Feed(Box<FeedEntry>),
    Typing {
        cursor: i64,
        typing: Typing,
    },
    QueueChanged {
        cursor: i64,
        queue_length: i64,
        joined: Option<String>,
    },
}

/// An event of a chat's stream.
#[derive(Debug, Clone)]
pub enum ChatStreamEvent {
    Transcript(Box<ChatEvent>),
    Typing {
        cursor: i64,
        typing: Typing,
    },
    QueuePosition {
        cursor: i64,
        chat_id: String,
        position: i64,
        estimated_wait_seconds: i64,
    },
}

/// Parses a cursor handed out by a stream.
pub fn parse_cursor(cursor: Option<&str>) -> Result<Option<i64>> {
    cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::BadUserInput(format!("{c:?} is not a cursor this server gave out"))
            })
        })
        .transpose()
}

/// The cursor of the agent's latest event: an `agent_events` stream started from it misses
/// nothing from now on.
pub async fn agent_events_cursor(services: &Services, principal: &Principal) -> Result<i64> {
    Ok(services.store.feed_seq(&principal.agent.id).await?)
}

/// The principal's agent now, then again after every change to them (profile, role, chat
/// limit, groups, routing status) from any app; ends when the session ends.
pub fn agent_changes(
    services: Arc<Services>,
    principal: Arc<Principal>,
) -> impl Stream<Item = domain::Agent> + use<> {
    let changes = services
        .bus
        .subscribe(Topic::Agent(principal.agent.id.clone()));
    let first = Some(principal.agent.clone());
    stream::unfold(
        (first, changes, services, principal),
        |(first, mut changes, services, principal)| async move {
            if let Some(agent) = first {
                return Some((agent, (None, changes, services, principal)));
            }
            loop {
                match changes.recv().await {
                    // A lag only means we missed a notification; the store has the truth.
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return None,
                }
                let agent = services
                    .store
                    .session_agent(&principal.session_id, &principal.agent.id)
                    .await;
                match agent {
                    Ok(Some(agent)) => return Some((agent, (None, changes, services, principal))),
                    Ok(None) => return None,
                    Err(err) => {
                        tracing::warn!(error = %err, "me subscription could not reload agent");
                    }
                }
            }
        },
    )
}

struct AgentStream {
    services: Arc<Services>,
    principal: Arc<Principal>,
    /// The agent's rights as they are now (on a WebSocket): what the queue shows follows them.
    rights: Option<LivePrincipal>,
    own: BusReceiver,
    organization: BusReceiver,
    cursor: i64,
    pending: VecDeque<AgentStreamEvent>,
    replay: bool,
}

/// The agent's stream from `since` (exclusive), or from now. With `rights`, what it shows
/// follows the agent's rights as they change.
pub async fn agent_events(
    services: Arc<Services>,
    principal: Arc<Principal>,
    rights: Option<LivePrincipal>,
    since: Option<i64>,
) -> Result<impl Stream<Item = AgentStreamEvent> + use<>> {
    let own = services
        .bus
        .subscribe(Topic::Agent(principal.agent.id.clone()));
    let organization = services
        .bus
        .subscribe(Topic::Organization(principal.organization_id().to_owned()));
    let latest = services.store.feed_seq(&principal.agent.id).await?;
    let (cursor, replay) = match since {
        Some(since) if since > latest => {
            return Err(Error::BadUserInput(
                "the cursor is ahead of this agent's events".into(),
            ));
        }
        Some(since) => (since, true),
        None => (latest, false),
    };
    let state = AgentStream {
        services,
        principal,
        rights,
        own,
        organization,
        cursor,
        pending: VecDeque::new(),
        replay,
    };
    // Boxed: `unfold` keeps the state beside the future that holds it, so unboxed an idle
    // stream would carry two copies.
    Ok(stream::unfold(Box::new(state), |mut state| async move {
        let event = state.next().await?;
        Some((event, state))
    }))
}

impl AgentStream {
    async fn next(&mut self) -> Option<AgentStreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.replay {
                let entries = match self
                    .services
                    .store
                    .feed(&self.principal.agent.id, self.cursor, REPLAY_PAGE)
                    .await
                {
                    Ok(entries) => entries,
                    Err(err) => {
                        tracing::warn!(error = %err, "agent stream could not replay; ending it");
                        return None;
                    }
                };
                self.replay = entries.len() as i64 == REPLAY_PAGE;
                for entry in entries {
                    self.cursor = entry.seq;
                    self.pending
                        .push_back(AgentStreamEvent::Feed(Box::new(entry)));
                }
                continue;
            }
            let received = {
                let AgentStream {
                    own,
                    organization,
                    rights,
                    ..
                } = self;
                tokio::select! {
                    event = own.recv() => Some(event),
                    event = organization.recv() => Some(event),
                    changed = async { rights.as_mut().expect("guarded").changed().await },
                        if rights.is_some() =>
                    {
                        // The socket is gone; so is this stream.
                        if !changed {
                            return None;
                        }
                        None
                    }
                }
            };
            match received {
                Some(Ok(event)) => self.accept(&event),
                Some(Err(RecvError::Lagged(_))) => self.replay = true,
                Some(Err(RecvError::Closed)) => return None,
                // What the queue shows follows the agent's rights as they are now.
                None => match self.services.auth.revalidate(&self.principal).await {
                    Ok(principal) => self.principal = principal,
                    Err(_) => return None,
                },
            }
        }
    }

    fn accept(&mut self, event: &BusEvent) {
        match event {
            // Events may have been lost on the way (NATS was away): as after a lag.
            BusEvent::Resync => self.replay = true,
            BusEvent::Feed(entry) if entry.agent_id == self.principal.agent.id => {
                if entry.seq == self.cursor + 1 {
                    self.cursor = entry.seq;
                    self.pending
                        .push_back(AgentStreamEvent::Feed(entry.clone()));
                } else if entry.seq > self.cursor + 1 {
                    self.replay = true;
                }
            }
            BusEvent::Typing(typing) if typing.author_kind == AuthorKind::Customer => {
                self.pending.push_back(AgentStreamEvent::Typing {
                    cursor: self.cursor,
                    typing: typing.clone(),
                });
            }
            BusEvent::QueueChanged { queued, joined } => {
                let agent = &self.principal.agent;
                let visible = |group: Option<&str>| {
                    agent.role.is_admin() || domain::in_chat_group(agent, group)
                };
                let queue_length = queued
                    .iter()
                    .filter(|q| visible(q.group_id.as_deref()))
                    .count() as i64;
                let visible_joined: Vec<String> = joined
                    .iter()
                    .filter(|id| {
                        queued
                            .iter()
                            .any(|q| &q.chat_id == *id && visible(q.group_id.as_deref()))
                    })
                    .cloned()
                    .collect();
                if visible_joined.is_empty() {
                    self.pending.push_back(AgentStreamEvent::QueueChanged {
                        cursor: self.cursor,
                        queue_length,
                        joined: None,
                    });
                }
                for chat_id in visible_joined {
                    self.pending.push_back(AgentStreamEvent::QueueChanged {
                        cursor: self.cursor,
                        queue_length,
                        joined: Some(chat_id),
                    });
                }
            }
            _ => {}
        }
    }
}

struct ChatStream {
    services: Arc<Services>,
    chat_id: String,
    /// Says when an agent's rights may have changed (on a WebSocket): the stream ends when
    /// they no longer let the agent see the chat.
    rights: Option<LivePrincipal>,
    /// The agent watching, as of the last check of their rights; `None` for the customer.
    agent: Option<Arc<Principal>>,
    /// Customers see public entries and agents' typing; agents see everything.
    for_customer: bool,
    own_id: String,
    topic: BusReceiver,
    cursor: i64,
    pending: VecDeque<ChatStreamEvent>,
    replay: bool,
    /// The last place in the queue told, so that repeats are not sent again.
    last_position: Option<(i64, i64)>,
    /// For a customer whose chat waits in the queue: when to say again that they are here.
    renew_presence_at: Option<tokio::time::Instant>,
    organization_id: String,
    /// Queue positions may have been lost: read the place in the queue again.
    reread_position: bool,
}

/// What woke a chat stream: a bus event, a change of the agent's rights (`false` when the
/// socket that held them is gone), or the time to renew a queued customer's presence.
enum Woke {
    Event(std::result::Result<Arc<BusEvent>, RecvError>),
    Rights(bool),
    RenewPresence,
}

/// A chat's stream from `since` (exclusive), or from its beginning. With an agent's `rights`,
/// it ends when they no longer let the agent see the chat.
pub async fn chat_events(
    services: Arc<Services>,
    caller: Caller,
    rights: Option<LivePrincipal>,
    chat_id: &str,
    since: Option<i64>,
) -> Result<impl Stream<Item = ChatStreamEvent> + use<>> {
    let chat = services.chats.chat_for(&caller, chat_id).await?;
    let topic = services.bus.subscribe(Topic::Chat(chat.id.clone()));
    let latest = services.store.chat_event_seq(&chat.id).await?;
    let since = since.unwrap_or(0);
    if since > latest {
        return Err(Error::BadUserInput(
            "the cursor is ahead of this chat's events".into(),
        ));
    }
    let (for_customer, own_id) = match &caller {
        Caller::Customer(customer) => (true, customer.customer_id.clone()),
        Caller::Agent(principal) => (false, principal.agent.id.clone()),
    };
    let (rights, agent) = match caller {
        Caller::Agent(principal) => (rights, Some(principal)),
        Caller::Customer(_) => (None, None),
    };
    let mut state = ChatStream {
        services: services.clone(),
        chat_id: chat.id.clone(),
        rights,
        agent,
        for_customer,
        own_id,
        topic,
        cursor: since,
        pending: VecDeque::new(),
        replay: true,
        last_position: None,
        renew_presence_at: None,
        organization_id: chat.organization_id.clone(),
        reread_position: false,
    };
    if for_customer && chat.status == ChatStatus::Queued {
        let again = services
            .chats
            .customer_present(&chat.organization_id, &chat.id)
            .await?;
        state.renew_presence_at = Some(tokio::time::Instant::now() + again);
    }
    state.replay_all().await?;
    if chat.status == ChatStatus::Queued
        && let Some(entry) = services
            .chats
            .queue_entry(&chat.organization_id, &chat.id)
            .await?
    {
        state.last_position = Some((entry.position, entry.estimated_wait_seconds));
        state.pending.push_back(ChatStreamEvent::QueuePosition {
            cursor: state.cursor,
            chat_id: chat.id.clone(),
            position: entry.position,
            estimated_wait_seconds: entry.estimated_wait_seconds,
        });
    }
    // Boxed: `unfold` keeps the state beside the future that holds it, so unboxed an idle
    // stream would carry two copies.
    Ok(stream::unfold(Box::new(state), |mut state| async move {
        let event = state.next().await?;
        Some((event, state))
    }))
}

impl ChatStream {
    async fn replay_all(&mut self) -> Result<()> {
        while self.replay {
            // Agents-only entries are read too, to move the cursor past them.
            let events = self
                .services
                .store
                .chat_events(&self.chat_id, self.cursor, REPLAY_PAGE, true)
                .await?;
            self.replay = events.len() as i64 == REPLAY_PAGE;
            for event in events {
                self.cursor = event.seq;
                if self.visible(&event) {
                    self.pending
                        .push_back(ChatStreamEvent::Transcript(Box::new(event)));
                }
            }
        }
        Ok(())
    }

    fn visible(&self, event: &ChatEvent) -> bool {
        !self.for_customer || event.visibility == Visibility::Public
    }

    async fn next(&mut self) -> Option<ChatStreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.replay {
                if let Err(err) = self.replay_all().await {
                    tracing::warn!(error = %err, "chat stream could not replay; ending it");
                    return None;
                }
                continue;
            }
            if self.reread_position {
                self.reread_position = false;
                self.read_position().await;
                continue;
            }
            // What woke the stream: a bus event, new rights (an agent's), or the time to say
            // again that a queued customer is here.
            let woke = {
                let ChatStream {
                    topic,
                    rights,
                    renew_presence_at,
                    ..
                } = self;
                let renew_at = renew_presence_at.unwrap_or_else(tokio::time::Instant::now);
                tokio::select! {
                    event = topic.recv() => Woke::Event(event),
                    changed = async { rights.as_mut().expect("guarded").changed().await },
                        if rights.is_some() => Woke::Rights(changed),
                    () = tokio::time::sleep_until(renew_at), if renew_presence_at.is_some() => {
                        Woke::RenewPresence
                    }
                }
            };
            match woke {
                Woke::Event(Ok(event)) => self.accept(&event),
                Woke::Event(Err(RecvError::Lagged(_))) => self.replay = true,
                Woke::Event(Err(RecvError::Closed)) => return None,
                // The socket is gone; so is this stream.
                Woke::Rights(false) => return None,
                Woke::Rights(true) => {
                    if !self.still_visible().await {
                        return None;
                    }
                }
                Woke::RenewPresence => self.renew_presence().await,
            }
        }
    }

    /// Whether the agent's rights, read again, still let them see the chat.
    async fn still_visible(&mut self) -> bool {
        let Some(agent) = &self.agent else {
            return true;
        };
        let principal = match self.services.auth.revalidate(agent).await {
            Ok(principal) => principal,
            Err(_) => return false,
        };
        self.agent = Some(principal.clone());
        match self
            .services
            .chats
            .chat_for(&Caller::Agent(principal), &self.chat_id)
            .await
        {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(chat = %self.chat_id, error = %err, "chat stream ends: rights changed");
                false
            }
        }
    }

    /// The chat's place in the queue as the store has it, told when it changed.
    async fn read_position(&mut self) {
        let entry = match self
            .services
            .chats
            .queue_entry(&self.organization_id, &self.chat_id)
            .await
        {
            Ok(Some(entry)) => entry,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(chat = %self.chat_id, error = %err, "could not read a place in the queue");
                return;
            }
        };
        let place = (entry.position, entry.estimated_wait_seconds);
        if self.last_position == Some(place) {
            return;
        }
        self.last_position = Some(place);
        self.pending.push_back(ChatStreamEvent::QueuePosition {
            cursor: self.cursor,
            chat_id: self.chat_id.clone(),
            position: entry.position,
            estimated_wait_seconds: entry.estimated_wait_seconds,
        });
    }

    /// Keeps the customer's queued chat in the queue while this subscription is open.
    async fn renew_presence(&mut self) {
        let again = match self
            .services
            .chats
            .customer_present(&self.organization_id, &self.chat_id)
            .await
        {
            Ok(again) => again,
            Err(err) => {
                tracing::warn!(chat = %self.chat_id, error = %err, "could not renew a customer's presence");
                CUSTOMER_PRESENCE_RETRY
            }
        };
        self.renew_presence_at = Some(tokio::time::Instant::now() + again);
    }

    fn accept(&mut self, event: &BusEvent) {
        match event {
            // Events may have been lost on the way (NATS was away): as after a lag, and the
            // place in the queue is read again too.
            BusEvent::Resync => {
                self.replay = true;
                self.reread_position = true;
            }
            BusEvent::Transcript(entry) if entry.chat_id == self.chat_id => {
                // Out of the queue, the chat needs no sign of the customer's presence.
                if matches!(
                    entry.kind,
                    ChatEventKind::AgentAssigned | ChatEventKind::ChatClosed
                ) {
                    self.renew_presence_at = None;
                }
                if entry.seq == self.cursor + 1 {
                    self.cursor = entry.seq;
                    if self.visible(entry) {
                        self.pending
                            .push_back(ChatStreamEvent::Transcript(Box::new(entry.clone())));
                    }
                } else if entry.seq > self.cursor + 1 {
                    self.replay = true;
                }
            }
            BusEvent::Typing(typing) if typing.author_id != self.own_id => {
                let mut typing = typing.clone();
                if self.for_customer {
                    if typing.author_kind == AuthorKind::Customer {
                        return;
                    }
                    // An agent's draft never reaches the customer.
                    typing.draft = None;
                }
                self.pending.push_back(ChatStreamEvent::Typing {
                    cursor: self.cursor,
                    typing,
                });
            }
            BusEvent::QueuePosition {
                chat_id,
                position,
                estimated_wait_seconds,
            } => {
                let place = (*position, *estimated_wait_seconds);
                // Back in the queue (an agent missed it): the customer's presence counts again.
                if self.for_customer && self.renew_presence_at.is_none() {
                    self.renew_presence_at = Some(tokio::time::Instant::now());
                }
                if self.last_position == Some(place) {
                    return;
                }
                self.last_position = Some(place);
                self.pending.push_back(ChatStreamEvent::QueuePosition {
                    cursor: self.cursor,
                    chat_id: chat_id.clone(),
                    position: *position,
                    estimated_wait_seconds: *estimated_wait_seconds,
                });
            }
            _ => {}
        }
    }
}
