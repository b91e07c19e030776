//! What agents do with chats: their routing status, taking a queued chat, transferring,
//! supervisors joining; and where a deactivated agent's chats go.

use super::events::DomainEvent;
use super::queue::{Otherwise, Route, routable};
use super::{ChatService, MAX_COMMENT_CHARS, TransferTarget, new_event, not_found, optional_text};
use crate::domain::{
    self, Agent, AuthorKind, Chat, ChatEventKind, ChatStatus, FeedData, FeedKind, RoutingStatus,
    Visibility, Wording,
};
use crate::error::{Error, Result};
use crate::services::auth::Principal;
use crate::store::{AgentLoad, ParticipantRole};

/// A transfer's target once checked.
enum Destination {
    Agent(Agent),
    Group(domain::Group),
}

impl ChatService {
    /// Sets whether the agent gets new chats; every app of theirs hears of it.
    pub async fn set_routing_status(
        &self,
        principal: &Principal,
        status: RoutingStatus,
    ) -> Result<Agent> {
        let mut work = self.begin(principal.organization_id()).await?;
        work.tx
            .set_routing_status(&principal.agent.id, status)
            .await?;
        let data = FeedData {
            routing_status: Some(status),
            ..FeedData::default()
        };
        work.feed(
            &principal.agent.id,
            FeedKind::RoutingStatusChanged,
            None,
            data,
        )
        .await?;
        if status == RoutingStatus::AcceptingChats {
            work.drain_queue().await?;
        }
        let agent = work
            .tx
            .agent(principal.organization_id(), &principal.agent.id)
            .await?;
        work.record(DomainEvent::RoutingStatusChanged {
            organization_id: agent.organization_id.clone(),
            agent_id: agent.id.clone(),
        })
        .await?;
        self.finish(work).await?;
        Ok(agent)
    }

    /// Assigns queued chats to agents who have room; run when capacity may have appeared.
    pub async fn drain_queue(&self, organization_id: &str) -> Result<()> {
        let mut work = self.begin(organization_id).await?;
        work.drain_queue().await?;
        self.finish(work).await
    }

    /// An agent takes a queued chat, whatever their limit.
    pub async fn take_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        let mut work = self.begin(principal.organization_id()).await?;
        let mut chat = work.chat(chat_id).await?;
        // A chat of the agent's queue that a teammate took a moment ago is a conflict, not a
        // mystery; other chats are not the agent's to know about.
        let in_their_queue = principal.role().is_admin()
            || domain::in_chat_group(&principal.agent, chat.group_id.as_deref());
        if !in_their_queue {
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status != ChatStatus::Queued {
            return Err(Error::Conflict(Wording::NoLongerQueued.text()));
        }
        let data = FeedData {
            reason: Some(Wording::ReasonTakenFromQueue.text()),
            ..FeedData::default()
        };
        work.assign(&mut chat, &principal.agent.id, FeedKind::ChatAssigned, data)
            .await?;
        self.finish(work).await?;
        Ok(chat)
    }

    /// Hands a chat to another agent (who may exceed their limit) or group (routed like a new
    /// chat), with a note for the agents; the customer is told first, then sees who joined.
    /// An agent who cannot be reached (or is offline) is refused unless a supervisor or admin
    /// `force`s it: the chat would wait on someone who does not see it.
    pub async fn transfer_chat(
        &self,
        principal: &Principal,
        chat_id: &str,
        target: TransferTarget,
        note: Option<&str>,
        force: bool,
    ) -> Result<Chat> {
        let note = optional_text("note", note, MAX_COMMENT_CHARS)?;
        if force && principal.role() < domain::Role::Supervisor {
            return Err(Error::forbidden("force a transfer"));
        }
        let mut work = self.begin(principal.organization_id()).await?;
        let mut chat = work.chat(chat_id).await?;
        let is_assignee = chat.assignee_id.as_deref() == Some(principal.agent.id.as_str());
        let may_transfer = is_assignee
            || (principal.role() >= domain::Role::Supervisor
                && domain::can_view_chat(&principal.agent, &chat, false));
        if !may_transfer {
            if domain::can_view_chat(
                &principal.agent,
                &chat,
                self.store
                    .participated(&chat.id, &principal.agent.id)
                    .await?,
            ) {
                return Err(Error::Forbidden(Wording::TransferNotYours.text()));
            }
            if domain::can_read_teammates_chat(&principal.agent, &chat, &work.org.settings) {
                return Err(Error::Forbidden(Wording::TeammatesChatReadOnly.text()));
            }
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status != ChatStatus::Active {
            let status = chat.status.as_str().to_lowercase();
            return Err(Error::Conflict(
                Wording::TransferNotActive { status }.text(),
            ));
        }
        let from = chat.assignee_id.clone();
        let from_name = principal.agent.name.clone();
        if let Some(previous) = &from {
            work.tx
                .add_participant(
                    &chat.id,
                    previous,
                    ParticipantRole::PreviousAssignee,
                    work.now,
                )
                .await?;
        }
        let mut data = FeedData {
            from_agent_id: from.clone(),
            note: note.clone(),
            ..FeedData::default()
        };
        // Checked before anything is written: a refused transfer leaves no trace.
        let destination = match &target {
            TransferTarget::Agent(agent_id) => {
                let agent = work
                    .tx
                    .agent(principal.organization_id(), agent_id)
                    .await
                    .map_err(|err| not_found(err, "agent"))?;
                if !agent.active {
                    return Err(Error::BadUserInput(Wording::AgentDeactivated.text()));
                }
                if from.as_deref() == Some(agent.id.as_str()) {
                    return Err(Error::BadUserInput(Wording::AlreadyTheirs.text()));
                }
                let available = agent.routing_status != RoutingStatus::Offline
                    && work.tx.agent_reachable(&agent.id, work.now).await?;
                if !available && !force {
                    let agent = agent.name.clone();
                    return Err(Error::Conflict(Wording::AgentUnavailable { agent }.text()));
                }
                Destination::Agent(agent)
            }
            TransferTarget::Group(group_id) => Destination::Group(
                self.require_group(principal.organization_id(), group_id)
                    .await?,
            ),
        };
        if let Some(note) = &note {
            let mut event = new_event(
                &chat,
                ChatEventKind::TransferNote,
                AuthorKind::Agent,
                Some((&principal.agent.id, &from_name)),
                None,
                note.clone(),
                work.now,
            );
            event.visibility = Visibility::Agents;
            work.append(&chat, event).await?;
        }
        // The customer hears where they are going before whoever takes them joins.
        let customer_text = match &destination {
            Destination::Agent(agent) => Wording::TransferringToAgent {
                agent: agent.name.clone(),
            },
            Destination::Group(group) => Wording::TransferringToGroup {
                group: group.name.clone(),
            },
        };
        work.system(&chat, ChatEventKind::ChatTransferred, customer_text)
            .await?;
        match destination {
            Destination::Agent(agent) => {
                data.to_agent_id = Some(agent.id.clone());
                work.assign(
                    &mut chat,
                    &agent.id,
                    FeedKind::ChatTransferred,
                    data.clone(),
                )
                .await?;
            }
            Destination::Group(group) => {
                chat.group_id = Some(group.id.clone());
                data.to_group_id = Some(group.id.clone());
                let excluded: Vec<String> = from.iter().cloned().collect();
                let route = Route {
                    preferred: None,
                    excluded: &excluded,
                    otherwise: Otherwise::QueueOrRefuse,
                    not_answering: None,
                    feed: FeedKind::ChatTransferred,
                    data: data.clone(),
                };
                work.route_or_queue(&mut chat, route).await?;
                data.to_agent_id = chat.assignee_id.clone();
            }
        }
        if let Some(previous) = &from {
            work.feed(previous, FeedKind::ChatTransferred, Some(&chat), data)
                .await?;
        }
        work.record(DomainEvent::Transferred { chat: chat.clone() })
            .await?;
        work.drain_queue().await?;
        self.finish(work).await?;
        Ok(chat)
    }

    /// A deactivated agent's active chats (pending acceptances included) go on at once, each
    /// routed in its group like a transfer, with a word to the customer. Where nobody in the
    /// group accepts chats, or the queue is full, the chat still waits in the queue: it was
    /// already under way, and staying with someone who is gone is worse.
    pub async fn reroute_chats_of_deactivated(&self, agent: &Agent) -> Result<()> {
        let chats = self
            .store
            .chats(
                &agent.organization_id,
                &[ChatStatus::Active],
                Some(&agent.id),
            )
            .await?;
        if chats.is_empty() {
            return Ok(());
        }
        let mut work = self.begin(&agent.organization_id).await?;
        for listed in chats {
            let mut chat = work.chat(&listed.id).await?;
            if chat.status != ChatStatus::Active
                || chat.assignee_id.as_deref() != Some(agent.id.as_str())
            {
                continue;
            }
            work.tx
                .add_participant(
                    &chat.id,
                    &agent.id,
                    ParticipantRole::PreviousAssignee,
                    work.now,
                )
                .await?;
            work.system(
                &chat,
                ChatEventKind::ChatTransferred,
                Wording::AgentNoLongerAvailable {
                    agent: agent.name.clone(),
                },
            )
            .await?;
            chat.acceptance_deadline = None;
            let data = FeedData {
                from_agent_id: Some(agent.id.clone()),
                reason: Some(
                    Wording::ReasonDeactivated {
                        agent: agent.name.clone(),
                    }
                    .text(),
                ),
                ..FeedData::default()
            };
            let excluded = vec![agent.id.clone()];
            let route = Route {
                preferred: None,
                excluded: &excluded,
                otherwise: Otherwise::Queue,
                not_answering: None,
                feed: FeedKind::ChatTransferred,
                data,
            };
            work.route_or_queue(&mut chat, route).await?;
        }
        self.finish(work).await
    }

    /// The organization's agents a chat could go to, least loaded first.
    pub async fn agents_for_transfer(
        &self,
        principal: &Principal,
        chat_id: &str,
    ) -> Result<Vec<AgentLoad>> {
        let chat = self.visible_chat(principal, chat_id).await?;
        let mut loads: Vec<AgentLoad> = self
            .store
            .agent_loads(principal.organization_id(), domain::now())
            .await?
            .into_iter()
            .filter(|l| l.agent.active && chat.assignee_id.as_deref() != Some(l.agent.id.as_str()))
            .collect();
        loads.sort_by(|a, b| {
            a.active_chats
                .cmp(&b.active_chats)
                .then_with(|| routable(b).cmp(&routable(a)))
                .then_with(|| a.agent.name.cmp(&b.agent.name))
        });
        Ok(loads)
    }

    /// A supervisor joins a chat of their groups; the customer is told.
    pub async fn join_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        if principal.role() < domain::Role::Supervisor {
            return Err(Error::forbidden("join other agents' chats"));
        }
        let mut work = self.begin(principal.organization_id()).await?;
        let chat = work.chat(chat_id).await?;
        if !domain::can_view_chat(&principal.agent, &chat, false) {
            return Err(Error::NotFound("no such chat".into()));
        }
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict(Wording::ChatClosed.text()));
        }
        work.tx
            .add_participant(
                &chat.id,
                &principal.agent.id,
                ParticipantRole::Supervisor,
                work.now,
            )
            .await?;
        work.system(
            &chat,
            ChatEventKind::SupervisorJoined,
            Wording::Joined {
                agent: principal.agent.name.clone(),
            },
        )
        .await?;
        self.finish(work).await?;
        Ok(chat)
    }
}
