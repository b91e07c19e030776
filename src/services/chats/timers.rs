//! The chat timers' actions: a missed acceptance, auto-transfer of an unanswered chat,
//! auto-close, attention changes, and queued chats whose customer has gone. Each re-checks its
//! condition under the organization's lock, so several nodes may run the timers.

use std::time::Duration;

use super::ChatService;
use super::events::DomainEvent;
use super::messages::close;
use super::new_event;
use super::queue::{Otherwise, Placement, Route};
use super::unit_of_work::UnitOfWork;
use crate::domain::{
    self, Attention, AuthorKind, Chat, ChatEventKind, ChatSettings, FeedData, FeedKind,
    RoutingStatus, Visibility, Wording,
};
use crate::error::Result;
use crate::store::ParticipantRole;

impl ChatService {
    /// Rung after changes that may bring a chat timer's deadline nearer.
    pub fn timer_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.timer_wake.clone()
    }

    /// Applies the timers to one active chat: auto-close, auto-transfer, attention.
    pub async fn apply_timers(&self, chat: &Chat, settings: &ChatSettings) -> Result<()> {
        let now = domain::now();
        if domain::acceptance_missed(chat, now) {
            return self.missed_acceptance(chat).await;
        }
        if domain::auto_close_due(chat, settings, now) {
            let mut work = self.begin(&chat.organization_id).await?;
            let mut current = work.chat(&chat.id).await?;
            if domain::auto_close_due(&current, &work.org.settings, work.now) {
                close(&mut work, &mut current, Wording::ClosedForInactivity).await?;
                work.drain_queue().await?;
                self.finish(work).await?;
            }
            return Ok(());
        }
        if domain::auto_transfer_due(chat, settings, now) {
            self.auto_transfer(chat).await?;
        }
        if domain::attention_at(chat, settings, now) != chat.attention {
            let mut work = self.begin(&chat.organization_id).await?;
            let mut current = work.chat(&chat.id).await?;
            let attention = domain::attention_at(&current, &work.org.settings, work.now);
            if attention != current.attention {
                let freed = attention == Attention::CustomerIdle;
                current.attention = attention;
                work.tx.update_chat(&current).await?;
                self.attention_changed(&mut work, &current).await?;
                if freed {
                    work.drain_queue().await?;
                }
                self.finish(work).await?;
            }
        }
        Ok(())
    }

    /// Queued chats whose customer has gone (no live subscription, no activity for the
    /// organization's threshold) leave the queue with a word in their transcript; the queue
    /// is announced again. Each is checked again under its organization's lock.
    pub async fn expire_abandoned_queue(&self) -> Result<()> {
        let abandoned = self.store.abandoned_queued_chats(domain::now()).await?;
        let mut by_organization: Vec<(String, Vec<String>)> = Vec::new();
        for (chat_id, organization_id) in abandoned {
            match by_organization.last_mut() {
                Some((org, chats)) if *org == organization_id => chats.push(chat_id),
                _ => by_organization.push((organization_id, vec![chat_id])),
            }
        }
        for (organization_id, chat_ids) in by_organization {
            let mut work = self.begin(&organization_id).await?;
            for chat_id in chat_ids {
                let mut chat = work.chat(&chat_id).await?;
                if domain::queue_abandoned(&chat, &work.org.settings, work.now) {
                    close(&mut work, &mut chat, Wording::CustomerLeftQueue).await?;
                }
            }
            self.finish(work).await?;
        }
        Ok(())
    }

    /// The customer of a queued chat is connected: their chat stays in the queue. Returns
    /// when to say so again: a few times within the organization's threshold, at most every
    /// 30 seconds (the threshold is read each time, so a lowered one takes effect).
    pub async fn customer_present(&self, organization_id: &str, chat_id: &str) -> Result<Duration> {
        self.store
            .renew_customer_presence(chat_id, domain::now())
            .await?;
        let threshold = self
            .store
            .organization(organization_id)
            .await?
            .settings
            .queue_abandon_after
            .to_std()
            .unwrap_or_default();
        Ok((threshold / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)))
    }

    /// The agent did not acknowledge a chat assigned through a push in time: the chat goes to
    /// the next routable agent (or the queue), the agent stops accepting chats, and their
    /// phone hears that they missed it.
    async fn missed_acceptance(&self, chat: &Chat) -> Result<()> {
        let mut work = self.begin(&chat.organization_id).await?;
        let mut current = work.chat(&chat.id).await?;
        if !domain::acceptance_missed(&current, work.now) {
            return Ok(());
        }
        let Some(agent_id) = current.assignee_id.clone() else {
            return Ok(());
        };
        if work.tx.agent_live(&agent_id, work.now).await? {
            // They came back just now: that is an acknowledgement.
            current.acceptance_deadline = None;
            work.tx.update_chat(&current).await?;
            return self.finish(work).await;
        }
        let agent = work.tx.agent(&work.org.id, &agent_id).await?;
        work.tx
            .set_routing_status(&agent.id, RoutingStatus::NotAcceptingChats)
            .await?;
        let data = FeedData {
            routing_status: Some(RoutingStatus::NotAcceptingChats),
            ..FeedData::default()
        };
        work.feed(&agent.id, FeedKind::RoutingStatusChanged, None, data)
            .await?;
        work.record(DomainEvent::RoutingStatusChanged {
            organization_id: agent.organization_id.clone(),
            agent_id: agent.id.clone(),
        })
        .await?;
        work.tx
            .add_participant(
                &current.id,
                &agent.id,
                ParticipantRole::PreviousAssignee,
                work.now,
            )
            .await?;
        let seconds = work.org.settings.acceptance_timeout.num_seconds();
        let missed = work
            .transcript_text(&Wording::AcceptanceMissed {
                agent: agent.name.clone(),
                seconds,
            })
            .await?;
        let mut note = new_event(
            &current,
            ChatEventKind::ChatTransferred,
            AuthorKind::System,
            None,
            None,
            missed,
            work.now,
        );
        note.visibility = Visibility::Agents;
        work.append(&current, note).await?;
        current.acceptance_deadline = None;
        let excluded = work.previous_assignees(&current.id).await?;
        let data = FeedData {
            from_agent_id: Some(agent.id.clone()),
            reason: Some(
                Wording::ReasonNotAccepted {
                    agent: agent.name.clone(),
                }
                .text(),
            ),
            ..FeedData::default()
        };
        let route = Route {
            preferred: None,
            excluded: &excluded,
            otherwise: Otherwise::Queue,
            not_answering: Some(&agent.name),
            feed: FeedKind::ChatAssigned,
            data: data.clone(),
        };
        work.route_or_queue(&mut current, route).await?;
        work.feed(&agent.id, FeedKind::ChatTransferred, Some(&current), data)
            .await?;
        work.record(DomainEvent::AcceptanceMissed {
            chat: current.clone(),
            agent_id: agent.id.clone(),
        })
        .await?;
        self.finish(work).await
    }

    /// Nobody answered the customer in time: the chat goes to another agent with room, or
    /// stays, red, with its agent when nobody has.
    async fn auto_transfer(&self, chat: &Chat) -> Result<()> {
        let mut work = self.begin(&chat.organization_id).await?;
        let mut current = work.chat(&chat.id).await?;
        if !domain::auto_transfer_due(&current, &work.org.settings, work.now) {
            return Ok(());
        }
        let Some(from) = current.assignee_id.clone() else {
            return Ok(());
        };
        let mut excluded = work.previous_assignees(&current.id).await?;
        excluded.push(from.clone());
        let from_agent = work.tx.agent(&work.org.id, &from).await?;
        let seconds = work.org.settings.auto_transfer_after.num_seconds();
        let mut data = FeedData {
            from_agent_id: Some(from.clone()),
            reason: Some(
                Wording::ReasonNoReply {
                    agent: from_agent.name.clone(),
                    seconds,
                }
                .text(),
            ),
            ..FeedData::default()
        };
        let route = Route {
            preferred: None,
            excluded: &excluded,
            otherwise: Otherwise::Stay,
            not_answering: Some(&from_agent.name),
            feed: FeedKind::ChatTransferred,
            data: data.clone(),
        };
        // Nobody else has room: the chat stays, red, with its agent (nothing was written).
        let Placement::Assigned(to) = work.route_or_queue(&mut current, route).await? else {
            return Ok(());
        };
        work.tx
            .add_participant(
                &current.id,
                &from,
                ParticipantRole::PreviousAssignee,
                work.now,
            )
            .await?;
        data.to_agent_id = Some(to);
        work.feed(&from, FeedKind::ChatTransferred, Some(&current), data)
            .await?;
        work.drain_queue().await?;
        self.finish(work).await
    }

    /// Tells the chat's agents its attention state changed.
    pub(super) async fn attention_changed(&self, work: &mut UnitOfWork, chat: &Chat) -> Result<()> {
        let data = FeedData {
            attention: Some(chat.attention),
            ..FeedData::default()
        };
        for agent in work.watchers(chat).await? {
            work.feed(&agent, FeedKind::AttentionChanged, Some(chat), data.clone())
                .await?;
        }
        Ok(())
    }
}
