//! A visitor on the site as agents see them: who they are, their page, their chat and the
//! greeting sent to them, and what that makes them do (browsing, invited, queued, chatting).
//! Serializable: with several nodes, the node that holds a visitor's pages tells the others.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ChatStatus, Customer, Greeting};

/// What a visitor is doing, as agents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorState {
    /// On the site, nothing more.
    Browsing,
    /// Sent a greeting they have neither answered nor dismissed.
    Invited,
    /// Their chat waits in the queue.
    Queued,
    /// Their chat is with an agent.
    Chatting,
}

/// A visitor on the site as agents see them now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visitor {
    /// As last read: name, visits, referrer, location, and the current page.
    pub customer: Customer,
    pub on_site_since: DateTime<Utc>,
    /// When they opened the current page.
    pub page_since: DateTime<Utc>,
    /// Their open chat and its status.
    pub chat: Option<(String, ChatStatus)>,
    /// The latest greeting sent to them while on the site.
    pub greeting: Option<Greeting>,
}

impl Visitor {
    /// What they are doing: their chat's state first, then a greeting waiting for them.
    pub fn state(&self) -> VisitorState {
        match &self.chat {
            Some((_, ChatStatus::Queued)) => VisitorState::Queued,
            Some((_, ChatStatus::Active)) => VisitorState::Chatting,
            _ if self.greeting.as_ref().is_some_and(Greeting::is_pending) => VisitorState::Invited,
            _ => VisitorState::Browsing,
        }
    }
}
