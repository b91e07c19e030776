//! Routing and the queue: the one rule that gives a chat to an agent or queues it (used by new
//! chats, group transfers, the queue drain, missed acceptances, auto-transfers and deactivated
//! agents' chats), assigning and enqueuing, and telling customers their place and wait (the
//! [`QueueAnnouncer`] worker).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use super::{ChatService, QueueEntry};
use crate::bus::{BusEvent, EventBus, QueuedChat, Topic};
use crate::domain::{
    self, Chat, ChatEventKind, ChatStatus, FeedData, FeedKind, Organization, RoutingCandidate,
    Wording, choose_agent,
};
use crate::error::{Error, Result};
use crate::store::{AgentLoad, Database, ParticipantRole};

/// Handling time assumed for wait estimates until the organization has closed chats today.
const DEFAULT_HANDLE_SECONDS: i64 = 300;
/// The shortest handling time wait estimates assume: a day of chats closed within seconds
/// (tests, spam) must not tell waiting customers they wait for nothing.
const MIN_HANDLE_SECONDS: i64 = 30;
/// How long queue changes gather before one announcement.
const QUEUE_ANNOUNCEMENT_DELAY: Duration = Duration::from_millis(50);

/// What happens to a chat when no routable agent of its group has room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Otherwise {
    /// A chat that must find someone now (new, transferred to a group): AGENTS_OFFLINE when
    /// nobody in the group accepts chats or the queue is full, else the queue.
    QueueOrRefuse,
    /// A chat already under way: the queue, whatever its limit.
    Queue,
    /// Nothing changes (a queued chat stays queued, an unanswered one stays with its agent).
    Stay,
}

/// How one chat is routed.
pub(super) struct Route<'a> {
    /// A returning customer's previous agent, who gets the chat if they have room.
    pub preferred: Option<&'a str>,
    /// Agents who had the chat: they never get it back.
    pub excluded: &'a [String],
    pub otherwise: Otherwise,
    /// The agent who is not answering, when that is why the chat moves: the customer is told
    /// who comes next before they join.
    pub not_answering: Option<&'a str>,
    /// What the agent who gets the chat sees in their feed.
    pub feed: FeedKind,
    pub data: FeedData,
}

/// Where a routed chat went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Placement {
    /// To this agent.
    Assigned(String),
    Queued,
    Unchanged,
}

impl UnitOfWork {
    /// Routes `chat` in its group: to the preferred or least-loaded agent with room, else as
    /// `route.otherwise` says. The one place that decides between an agent and the queue.
    pub(super) async fn route_or_queue(
        &mut self,
        chat: &mut Chat,
        route: Route<'_>,
    ) -> Result<Placement> {
        let candidates = self.routing_candidates(chat.group_id.as_deref()).await?;
        if route.otherwise == Otherwise::QueueOrRefuse
            && candidates
                .iter()
                .all(|c| route.excluded.contains(&c.agent_id))
        {
            return Err(Error::AgentsOffline(Wording::NobodyAccepting.text()));
        }
        let chosen =
            choose_agent(&candidates, route.preferred, route.excluded).map(|c| c.agent_id.clone());
        let Some(agent_id) = chosen else {
            match route.otherwise {
                Otherwise::Stay => return Ok(Placement::Unchanged),
                Otherwise::QueueOrRefuse => {
                    // A new chat is stored as queued before it is routed: it is not ahead of
                    // itself.
                    let ahead = self.tx.queued_count(&self.org.id, Some(&chat.id)).await?;
                    if ahead >= i64::from(self.org.settings.queue_limit) {
                        return Err(Error::AgentsOffline(Wording::QueueFull.text()));
                    }
                }
                Otherwise::Queue => {
                    if let Some(gone) = route.not_answering {
                        self.system(
                            chat,
                            ChatEventKind::ChatTransferred,
                            not_answering(gone, None),
                        )
                        .await?;
                    }
                }
            }
            self.enqueue(chat).await?;
            return Ok(Placement::Queued);
        };
        if let Some(gone) = route.not_answering {
            let next = self.tx.agent(&self.org.id, &agent_id).await?.name;
            self.system(
                chat,
                ChatEventKind::ChatTransferred,
                not_answering(gone, Some(&next)),
            )
            .await?;
        }
        let mut data = route.data;
        if route.feed == FeedKind::ChatTransferred {
            // Whoever gets a transferred chat sees it was handed to them.
            data.to_agent_id = Some(agent_id.clone());
        }
        self.assign(chat, &agent_id, route.feed, data).await?;
        if let Some(groups) = &mut self.drain_candidates {
            // The agent's load grew in every group they serve.
            for group in groups.values_mut() {
                for candidate in group.iter_mut().filter(|c| c.agent_id == agent_id) {
                    candidate.load += 1;
                }
            }
        }
        Ok(Placement::Assigned(agent_id))
    }

    /// The routable agents of `group_id` with their loads; while the queue drains, from the
    /// drain's copy.
    async fn routing_candidates(
        &mut self,
        group_id: Option<&str>,
    ) -> Result<Vec<RoutingCandidate>> {
        let key = group_id.map(str::to_owned);
        if let Some(cached) = self.drain_candidates.as_ref().and_then(|c| c.get(&key)) {
            return Ok(cached.clone());
        }
        let found = self
            .tx
            .routing_candidates(&self.org, group_id, self.now)
            .await?;
        if let Some(groups) = &mut self.drain_candidates {
            groups.insert(key, found.clone());
        }
        Ok(found)
    }

    /// Gives queued chats, oldest first, to agents who have room.
    pub(super) async fn drain_queue(&mut self) -> Result<()> {
        let queued = self.tx.queued_chats(&self.org.id).await?;
        if queued.is_empty() {
            return Ok(());
        }
        self.drain_candidates = Some(HashMap::new());
        let drained = self.drain(queued).await;
        self.drain_candidates = None;
        drained
    }

    async fn drain(&mut self, queued: Vec<Chat>) -> Result<()> {
        for mut chat in queued {
            let excluded = self.previous_assignees(&chat.id).await?;
            let route = Route {
                preferred: None,
                excluded: &excluded,
                otherwise: Otherwise::Stay,
                not_answering: None,
                feed: FeedKind::ChatAssigned,
                data: FeedData {
                    reason: Some(Wording::ReasonQueue.text()),
                    ..FeedData::default()
                },
            };
            self.route_or_queue(&mut chat, route).await?;
        }
        Ok(())
    }

    /// Gives `chat` to `agent_id`.
    pub(super) async fn assign(
        &mut self,
        chat: &mut Chat,
        agent_id: &str,
        feed: FeedKind,
        data: FeedData,
    ) -> Result<()> {
        let agent = self.tx.agent(&self.org.id, agent_id).await?;
        // An agent with no app connected live must acknowledge in time (see the timers).
        let live = self.tx.agent_live(&agent.id, self.now).await?;
        let was_queued = chat.assign(
            &agent.id,
            self.now,
            live,
            self.org.settings.acceptance_timeout,
        );
        self.tx.update_chat(chat).await?;
        self.tx.mark_assigned(&agent.id, self.now).await?;
        self.feed(&agent.id, feed, Some(chat), data).await?;
        self.system(
            chat,
            ChatEventKind::AgentAssigned,
            Wording::Joined {
                agent: agent.name.clone(),
            },
        )
        .await?;
        self.record(DomainEvent::Assigned {
            chat: chat.clone(),
            agent_id: agent.id.clone(),
            transferred: feed == FeedKind::ChatTransferred,
            live,
            was_queued,
        })
        .await?;
        Ok(())
    }

    /// Puts `chat` in the queue.
    pub(super) async fn enqueue(&mut self, chat: &mut Chat) -> Result<()> {
        if let Some(previous) = chat.enqueue(self.now) {
            self.tx
                .add_participant(
                    &chat.id,
                    &previous,
                    ParticipantRole::PreviousAssignee,
                    self.now,
                )
                .await?;
        }
        self.tx.update_chat(chat).await?;
        self.system(chat, ChatEventKind::ChatQueued, Wording::Queued)
            .await?;
        self.record(DomainEvent::Queued { chat: chat.clone() })
            .await
    }
}

/// Organizations whose queue changed and waits to be announced, each with the chats that
/// joined it meanwhile.
pub(super) type PendingAnnouncements = Mutex<HashMap<String, (Organization, Vec<String>)>>;

/// Announces queues that changed: every queued customer hears their place and wait, agents
/// the queue's shape. Changes gather for a moment before one announcement, so a burst of a
/// thousand chats costs one announcement per organization, not a thousand. Spawned beside
/// the timers; the chat service rings it after each commit that changed a queue.
pub struct QueueAnnouncer {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    pending: Arc<PendingAnnouncements>,
    wake: Arc<Notify>,
}

impl QueueAnnouncer {
    /// Announces changed queues until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = self.wake.notified() => {}
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(QUEUE_ANNOUNCEMENT_DELAY) => {}
            }
            let due = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            for (org, joined) in due.into_values() {
                if let Err(err) =
                    announce_queue(self.store.as_ref(), self.bus.as_ref(), &org, joined).await
                {
                    tracing::warn!(error = %err, "could not announce the queue");
                }
            }
        }
    }
}

impl ChatService {
    /// The worker that announces queue changes for this service; run it once per node.
    pub fn queue_announcer(&self) -> QueueAnnouncer {
        QueueAnnouncer {
            store: self.store.clone(),
            bus: self.bus.clone(),
            pending: self.pending_queue_announcements.clone(),
            wake: self.queue_wake.clone(),
        }
    }

    /// The queue with places and estimated waits.
    pub(super) async fn queue_entries(&self, org: &Organization) -> Result<Vec<QueueEntry>> {
        queue_entries(self.store.as_ref(), org).await
    }

    /// The handling time wait estimates assume: today's average, within bounds.
    pub(super) async fn handle_seconds(&self, org: &Organization) -> Result<i64> {
        handle_seconds(self.store.as_ref(), org).await
    }
}

/// Hands the organization's changed queue to the [`QueueAnnouncer`], with `joined` among the
/// chats that joined it since the last announcement.
pub(super) fn announce_queue_change(
    pending: &PendingAnnouncements,
    wake: &tokio::sync::Notify,
    org: &Organization,
    joined: Option<String>,
) {
    let mut pending = pending.lock().unwrap_or_else(|p| p.into_inner());
    let (latest, joined_so_far) = pending
        .entry(org.id.clone())
        .or_insert_with(|| (org.clone(), Vec::new()));
    *latest = org.clone();
    joined_so_far.extend(joined);
    drop(pending);
    wake.notify_one();
}

async fn handle_seconds(store: &dyn Database, org: &Organization) -> Result<i64> {
    Ok(store
        .average_handle_seconds(&org.id)
        .await?
        .map_or(DEFAULT_HANDLE_SECONDS, |seconds| {
            seconds.max(MIN_HANDLE_SECONDS)
        }))
}

/// Tells every queued customer their place and wait, and the agents the queue's shape.
async fn announce_queue(
    store: &dyn Database,
    bus: &dyn EventBus,
    org: &Organization,
    joined: Vec<String>,
) -> Result<()> {
    let entries = queue_entries(store, org).await?;
    for entry in &entries {
        bus.publish(
            Topic::Chat(entry.chat.id.clone()),
            BusEvent::QueuePosition {
                chat_id: entry.chat.id.clone(),
                position: entry.position,
                estimated_wait_seconds: entry.estimated_wait_seconds,
            },
        );
    }
    let queued = entries
        .iter()
        .map(|e| QueuedChat {
            chat_id: e.chat.id.clone(),
            group_id: e.chat.group_id.clone(),
        })
        .collect();
    bus.publish(
        Topic::Organization(org.id.clone()),
        BusEvent::QueueChanged { queued, joined },
    );
    Ok(())
}

/// The queue with places (per group: chats of other groups wait for other agents) and
/// estimated waits.
async fn queue_entries(store: &dyn Database, org: &Organization) -> Result<Vec<QueueEntry>> {
    let mut queued = store.chats(&org.id, &[ChatStatus::Queued], None).await?;
    queued.sort_by(|a, b| a.queued_at.cmp(&b.queued_at).then_with(|| a.id.cmp(&b.id)));
    let loads = store.agent_loads(&org.id, domain::now()).await?;
    let handle = handle_seconds(store, org).await?;
    let mut positions: HashMap<Option<String>, i64> = HashMap::new();
    Ok(queued
        .into_iter()
        .map(|chat| {
            let position = positions.entry(chat.group_id.clone()).or_default();
            *position += 1;
            let slots = accepting_slots(&loads, org, chat.group_id.as_deref());
            QueueEntry {
                position: *position,
                estimated_wait_seconds: domain::estimate_wait_seconds(*position, slots, handle),
                chat,
            }
        })
        .collect())
}

/// What the customer is told when their agent does not answer and the chat moves on.
fn not_answering(agent: &str, next: Option<&str>) -> Wording {
    Wording::NotAnswering {
        agent: agent.to_owned(),
        next: next.map(str::to_owned),
    }
}

/// Whether new chats may go to the agent of `load` (see [`domain::Agent::routable`]).
pub(super) fn routable(load: &AgentLoad) -> bool {
    load.agent.routable(load.reachable)
}

/// The agent's own chat limit or the organization's default.
pub(super) fn chat_limit(load: &AgentLoad, org: &Organization) -> i64 {
    i64::from(load.agent.effective_chat_limit(&org.settings))
}

/// Chat slots of the agents who accept chats of `group_id` now.
pub(super) fn accepting_slots(
    loads: &[AgentLoad],
    org: &Organization,
    group_id: Option<&str>,
) -> i64 {
    loads
        .iter()
        .filter(|l| routable(l) && domain::in_chat_group(&l.agent, group_id))
        .map(|l| chat_limit(l, org))
        .sum()
}
