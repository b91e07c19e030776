//! The chat use cases, one file per use case:
//!
//! - `unit_of_work`: the transaction every change runs in, and what it announces after commit;
//! - `events`: the domain events use cases record, and their subscribers (`push_rules`, the
//!   bus publisher);
//! - `visitors`: widget sessions and whether a chat can start;
//! - `customers`: what a customer does: start a chat, leave an offline message, rate, pages;
//! - `messages`: messages, typing and closing, from either side;
//! - `notes`: who may write a note (agents only) and whisper without joining;
//! - `tags`: putting the organization's tags on chats and taking them off;
//! - `agents`: routing status, taking, joining and transferring chats, deactivated agents;
//! - `reading`: the chats, queue and offline messages a caller may see;
//! - `queue`: the one "route or queue" rule, draining the queue, announcing it, wait estimates;
//! - `timers`: acceptance, auto-transfer, auto-close, attention and the abandoned queue;
//! - `guards`: per-customer budgets and who may act on a chat;
//! - `settings`: the organization's routing settings;
//! - `messenger`: Messenger customers' messages and receipts, and what goes back to them
//!   (`messenger_rules` queues agents' messages for the Send API).
//! - `offline_email`: offline messages emailed to agents, and agents' replies by email.
//!
//! Every change runs in a [`ChatTx`](crate::store::ChatTx) that first locks the organization,
//! so the capacity check and the assignment are one step on any number of nodes.

mod agents;
mod bans;
mod customers;
mod events;
mod guards;
mod messages;
mod messenger;
mod messenger_rules;
mod notes;
mod offline_email;
mod push_rules;
mod queue;
mod reading;
mod settings;
mod tags;
mod timers;
mod unit_of_work;
mod visitors;
mod webhook_rules;

pub use offline_email::{OfflineEmail, OfflineEmailSettings};
pub use queue::QueueAnnouncer;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::bus::EventBus;
use crate::domain::{self, AuthorKind, Chat, ChatEventKind, Customer, OfflineMessage, Visibility};
use crate::error::{Error, Result};
use crate::services::auth::{Caller, Principal};
use crate::services::rate_limit::RateLimiter;
use crate::store::{Database, NewChatEvent};

/// Longest URL, page title, referrer, user agent and free-text field we keep.
const MAX_URL_CHARS: usize = 2048;
const MAX_TITLE_CHARS: usize = 300;
const MAX_USER_AGENT_CHARS: usize = 512;
const MAX_COMMENT_CHARS: usize = 1000;

/// What a widget sends to start a visitor session.
#[derive(Debug, Clone, Default)]
pub struct VisitorSessionInput {
    pub widget_key: String,
    pub visitor_id: Option<String>,
    /// The secret the widget was given with the visitor id; without it a known visitor id
    /// starts a new customer.
    pub visitor_secret: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub location: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    /// The page's `Origin`, checked against the organization's allowed origins.
    pub origin: Option<String>,
    /// A logged-in shop customer's signed id: the same customer on every device.
    pub identity: Option<crate::services::widget::VisitorIdentity>,
}

/// A started visitor session.
#[derive(Debug, Clone)]
pub struct VisitorSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub customer: Customer,
    /// A new secret for the widget to keep with the visitor id, when this session issued one.
    pub visitor_secret: Option<String>,
}

/// Whether a widget should offer a chat or the offline form, for one group or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// A chat started now would be accepted: someone of the group accepts chats, and has room
    /// or the queue does.
    pub online: bool,
    /// Agents of the group accept chats, but a new chat cannot start now: every one is full
    /// and the queue is at its limit, or the organization's per-minute cap is reached.
    pub queue_full: bool,
    /// Customers waiting for the group.
    pub queue_length: i64,
    pub estimated_wait_seconds: i64,
}

/// Where a transfer goes.
#[derive(Debug, Clone)]
pub enum TransferTarget {
    Agent(String),
    Group(String),
}

/// A queued chat with its place and expected wait.
#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub chat: Chat,
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// A new offline message.
#[derive(Debug, Clone)]
pub struct OfflineMessageInput {
    pub name: String,
    pub email: String,
    pub text: String,
    pub group_id: Option<String>,
}

/// New organization settings; `None` keeps a value. Validated by the domain.
pub use crate::domain::SettingsUpdate;

/// What customers may do per minute. Every customer operation draws on one of these budgets.
#[derive(Debug, Clone, Copy)]
pub struct CustomerLimits {
    /// Visitor sessions per client address.
    pub visitor_sessions_per_minute: u32,
    /// Messages per customer: startChat, sendMessage, leaveOfflineMessage.
    pub messages_per_minute: u32,
    /// Typing notices per customer: frequent while someone types, so a budget of their own.
    pub typing_per_minute: u32,
    /// Everything else a customer does: rateChat, updateVisitorPage, closeChat.
    pub actions_per_minute: u32,
    /// Chats started per client address, across the visitors it creates.
    pub chat_starts_per_address_per_minute: u32,
}

/// The chat use cases.
pub struct ChatService {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    visitor_sessions: RateLimiter,
    customer_messages: RateLimiter,
    customer_typing: RateLimiter,
    customer_actions: RateLimiter,
    chat_starts_per_address: RateLimiter,
    /// Rung when a change queued pushes.
    push_wake: Arc<tokio::sync::Notify>,
    /// Organizations whose queue changed and is about to be announced, with the chats that
    /// joined it meanwhile; the [`QueueAnnouncer`] takes them.
    pending_queue_announcements: Arc<queue::PendingAnnouncements>,
    /// Rings the [`QueueAnnouncer`] when a queue changed.
    queue_wake: Arc<tokio::sync::Notify>,
    /// Rung after a change that may have moved a chat timer's deadline, so the timers look
    /// at the next deadline again.
    timer_wake: Arc<tokio::sync::Notify>,
    /// Rung when a change queued webhook deliveries; the webhook worker waits on it.
    pub webhook_wake: Arc<tokio::sync::Notify>,
    /// Rung after a change queued Send API calls, so the Messenger worker sends them.
    messenger_wake: Arc<tokio::sync::Notify>,
    /// Set when SMTP is configured: offline messages and replies are emailed.
    offline_email: Option<Arc<OfflineEmail>>,
}

impl ChatService {
    /// A chat service over `store`, announcing on `bus`.
    pub fn new(
        store: Arc<dyn Database>,
        bus: Arc<dyn EventBus>,
        limits: CustomerLimits,
        push_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        let per_minute = |scope: &'static str, limit: u32| {
            RateLimiter::for_store(&store, scope, limit, Duration::from_secs(60))
        };
        let visitor_sessions = per_minute("visitor_sessions", limits.visitor_sessions_per_minute);
        let customer_messages = per_minute("customer_messages", limits.messages_per_minute);
        let customer_typing = per_minute("customer_typing", limits.typing_per_minute);
        let customer_actions = per_minute("customer_actions", limits.actions_per_minute);
        let chat_starts_per_address = per_minute(
            "chat_starts_per_address",
            limits.chat_starts_per_address_per_minute,
        );
        ChatService {
            store,
            bus,
            push_wake,
            pending_queue_announcements: Arc::default(),
            queue_wake: Arc::default(),
            timer_wake: Arc::default(),
            webhook_wake: Arc::default(),
            messenger_wake: Arc::default(),
            visitor_sessions,
            customer_messages,
            customer_typing,
            customer_actions,
            chat_starts_per_address,
            offline_email: None,
        }
    }
}

/// A transcript entry for `chat`, visible to everybody.
fn new_event(
    chat: &Chat,
    kind: ChatEventKind,
    author_kind: AuthorKind,
    author: Option<(&str, &str)>,
    client_id: Option<String>,
    text: String,
    at: DateTime<Utc>,
) -> NewChatEvent {
    NewChatEvent {
        chat_id: chat.id.clone(),
        organization_id: chat.organization_id.clone(),
        kind,
        author_kind,
        author_id: author.map(|(id, _)| id.to_owned()),
        author_name: author.map(|(_, name)| name.to_owned()),
        text,
        client_id,
        visibility: Visibility::Public,
        at,
    }
}

fn organization_of(caller: &Caller) -> &str {
    match caller {
        Caller::Agent(principal) => principal.organization_id(),
        Caller::Customer(customer) => &customer.organization_id,
    }
}

/// A message's text: trimmed, present, not too long.
fn message_text(text: &str) -> Result<String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::BadUserInput("the message must not be empty".into()));
    }
    if text.chars().count() > domain::MAX_MESSAGE_CHARS {
        return Err(Error::BadUserInput(format!(
            "the message must be at most {} characters",
            domain::MAX_MESSAGE_CHARS
        )));
    }
    Ok(text.to_owned())
}

fn optional_text(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(Error::BadUserInput(format!(
            "{field} must be at most {max} characters"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn optional_name(field: &str, value: Option<&str>) -> Result<Option<String>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => Ok(Some(domain::validate_name(field, v, 100)?)),
    }
}

/// Who may read an offline message: admins and owners, and the agents of its group (every
/// agent, for a message to no group). `offline_message_recipients` selects the same agents.
fn may_read_offline_message(principal: &Principal, message: &OfflineMessage) -> bool {
    principal.role().is_admin()
        || domain::in_chat_group(&principal.agent, message.group_id.as_deref())
}

fn not_found(err: crate::store::DbError, what: &str) -> Error {
    match err {
        crate::store::DbError::NotFound => Error::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}
