//! Domain events: what a chat use case did, recorded in its unit of work with
//! [`UnitOfWork::record`]. Subscribers react to them, so a new consumer (webhooks, Messenger,
//! NATS) is one more subscriber here rather than an edit to every use case:
//!
//! - in the transaction, before the commit: the push rules (`push_rules`), the webhook rules
//!   (`webhook_rules`) and the Messenger rules (`messenger_rules`) write outbox rows, and so
//!   does the offline email subscriber (`offline_email`) when SMTP is configured;
//! - after the commit: the bus publisher below turns events into live announcements (agents'
//!   status changes, the queue's shape, a customer's chats for the visitors on the site),
//!   published only once the change is durable.
//!
//! Transcript and feed rows are written by the unit of work itself (`append`, `feed`), which
//! also queues their live announcements for after the commit.

use super::unit_of_work::UnitOfWork;
use super::{messenger_rules, offline_email, push_rules, webhook_rules};
use crate::bus::{BusEvent, Topic};
use crate::domain::{Chat, ChatEvent, Greeting, OfflineMessage, Tag};
use crate::error::Result;

/// Something that happened to a chat, an agent or the queue in one unit of work.
#[derive(Debug, Clone)]
pub(super) enum DomainEvent {
    /// A customer started a chat.
    ChatStarted { chat: Chat },
    /// A chat went to an agent: new, from the queue, or transferred.
    Assigned {
        chat: Chat,
        agent_id: String,
        transferred: bool,
        /// Whether the agent has an app connected live (else a push must reach them).
        live: bool,
        /// Whether the chat left the queue.
        was_queued: bool,
    },
    /// A chat joined the queue.
    Queued { chat: Chat },
    /// An agent or supervisor handed a chat on (to an agent or a group).
    Transferred { chat: Chat },
    /// A customer or agent wrote in a chat. A note has `entry.visibility` AGENTS: a
    /// subscriber that tells anyone outside the organization (webhooks, Messenger) must leave
    /// it out.
    MessageAdded { chat: Chat, entry: ChatEvent },
    /// A chat was closed.
    Closed { chat: Chat, was_queued: bool },
    /// A customer rated a chat.
    Rated { chat: Chat },
    /// An agent's routing status changed.
    RoutingStatusChanged {
        organization_id: String,
        agent_id: String,
    },
    /// An agent did not acknowledge a chat assigned through a push in time.
    AcceptanceMissed { chat: Chat, agent_id: String },
    /// A customer left an offline message for `recipients`.
    OfflineMessageLeft {
        message: OfflineMessage,
        recipients: Vec<String>,
    },
    /// An agent put a tag on a chat (`added`) or took it off.
    Tagged { chat: Chat, tag: Tag, added: bool },
    /// A customer answered a greeting by starting `chat`.
    GreetingAnswered { chat: Chat, greeting: Greeting },
}

impl UnitOfWork {
    /// Records `event`: the in-transaction subscribers write their rows now, and the
    /// after-commit ones queue what they publish once the change commits.
    pub(super) async fn record(&mut self, event: DomainEvent) -> Result<()> {
        tracing::debug!(event = event.name(), chat = ?event.chat_id(), "chat event");
        push_rules::react(self, &event).await?;
        webhook_rules::react(self, &event).await?;
        messenger_rules::react(self, &event).await?;
        offline_email::react(self, &event).await?;
        publish_after_commit(self, &event);
        Ok(())
    }
}

impl DomainEvent {
    /// The event's name, for logs.
    fn name(&self) -> &'static str {
        match self {
            DomainEvent::ChatStarted { .. } => "chat started",
            DomainEvent::Assigned { .. } => "assigned",
            DomainEvent::Queued { .. } => "queued",
            DomainEvent::Transferred { .. } => "transferred",
            DomainEvent::MessageAdded { .. } => "message added",
            DomainEvent::Closed { .. } => "closed",
            DomainEvent::Rated { .. } => "rated",
            DomainEvent::RoutingStatusChanged { .. } => "routing status changed",
            DomainEvent::AcceptanceMissed { .. } => "acceptance missed",
            DomainEvent::OfflineMessageLeft { .. } => "offline message left",
            DomainEvent::Tagged { .. } => "tagged",
            DomainEvent::GreetingAnswered { .. } => "greeting answered",
        }
    }

    /// The chat the event is about, if any.
    fn chat_id(&self) -> Option<&str> {
        match self {
            DomainEvent::ChatStarted { chat }
            | DomainEvent::Assigned { chat, .. }
            | DomainEvent::Queued { chat }
            | DomainEvent::Transferred { chat }
            | DomainEvent::MessageAdded { chat, .. }
            | DomainEvent::Closed { chat, .. }
            | DomainEvent::Rated { chat }
            | DomainEvent::AcceptanceMissed { chat, .. } => Some(&chat.id),
            DomainEvent::RoutingStatusChanged { .. } | DomainEvent::OfflineMessageLeft { .. } => {
                None
            }
            DomainEvent::Tagged { chat, .. } | DomainEvent::GreetingAnswered { chat, .. } => {
                Some(&chat.id)
            }
        }
    }
}

/// The bus publisher: what each event tells live clients, queued in order with the feed and
/// transcript announcements and published after the commit.
fn publish_after_commit(work: &mut UnitOfWork, event: &DomainEvent) {
    // The customer's open pages keep the visitors on the site up to date (chatting, queued).
    if let DomainEvent::ChatStarted { chat }
    | DomainEvent::Assigned { chat, .. }
    | DomainEvent::Queued { chat }
    | DomainEvent::Closed { chat, .. } = event
    {
        work.announce(
            Topic::Customer(chat.customer_id.clone()),
            BusEvent::CustomerChatChanged {
                chat_id: chat.id.clone(),
                status: chat.status,
            },
        );
    }
    match event {
        DomainEvent::RoutingStatusChanged {
            organization_id,
            agent_id,
        } => work.announce(
            Topic::Agent(agent_id.clone()),
            BusEvent::AgentChanged {
                organization_id: organization_id.clone(),
                agent_id: agent_id.clone(),
            },
        ),
        DomainEvent::Queued { chat } => {
            work.queue_changed = true;
            work.joined_queue = Some(chat.id.clone());
        }
        DomainEvent::Assigned {
            was_queued: true, ..
        }
        | DomainEvent::Closed {
            was_queued: true, ..
        } => work.queue_changed = true,
        _ => {}
    }
}
