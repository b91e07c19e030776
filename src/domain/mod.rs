//! Pure types and rules of the live-chat domain: no I/O, no async, no storage types.
//!
//! Everything here is used by every other layer and uses none of them, so the rules are
//! unit-tested where they live: `chat` (chats, transcripts, feeds, timers' conditions),
//! `lifecycle` (the chat's transitions), `routing` (who gets the next chat), `settings`
//! (organization settings, chat limits, who is routable), `push`, `validation`, `greetings`
//! (greetings, their rules and placeholders), `visitors` (a visitor on the site as agents see
//! them), `canned` (canned responses, their placeholders and ranking), `files` (attachments:
//! limits, types, content checks), and `copy` (every sentence a person reads).

/// An enum stored and sent as its SCREAMING_SNAKE_CASE spelling.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            /// The spelling used in storage and in the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::domain::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($text => Ok($name::$variant),)+ other => Err($crate::domain::UnknownVariant(other.to_owned())) }
            }
        }
    };
}

mod archive;
mod canned;
mod chat;
mod copy;
mod email;
mod files;
mod greetings;
mod lifecycle;
mod messenger;
mod push;
mod report_data;
mod reports;
mod routing;
mod search;
mod settings;
mod tags;
mod validation;
mod visitors;
mod webhooks;
mod widget;

pub use archive::*;
pub use canned::*;
pub use chat::*;
pub use copy::{DEFAULT_LOCALE, Wording};
pub use email::*;
pub use files::*;
pub use greetings::*;
pub use messenger::*;
pub use push::*;
pub use report_data::*;
pub use reports::*;
pub use routing::{RoutingCandidate, choose_agent};
pub use search::*;
pub use settings::SettingsUpdate;
pub use tags::*;
pub use visitors::*;
pub use webhooks::*;

pub use validation::{ValidationError, normalize_email, validate_name, validate_password};
pub use widget::*;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// The chat limit an organization starts with: how many active chats an agent handles at once.
pub const DEFAULT_CHAT_LIMIT: i32 = 3;

/// The highest chat limit an admin may set; beyond it an agent is not really chatting.
pub const MAX_CHAT_LIMIT: i32 = 100;

/// A new time-ordered id (UUIDv7): ids sort by creation, which keeps indexes append-only.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current time, truncated to milliseconds as it is stored.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// What an agent may do in their organization. Ordered from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Answers chats.
    Agent,
    /// Also watches and joins the chats of their groups.
    Supervisor,
    /// Also manages agents, groups and settings.
    Admin,
    /// Also manages admins and other owners.
    Owner,
}

impl Role {
    /// The spelling used in storage and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "AGENT",
            Role::Supervisor => "SUPERVISOR",
            Role::Admin => "ADMIN",
            Role::Owner => "OWNER",
        }
    }

    /// Admins and owners manage the organization's agents and groups.
    pub fn is_admin(self) -> bool {
        self >= Role::Admin
    }

    /// Whether an agent with this role may create, change or deactivate an agent who has (or
    /// would get) `target`. Only owners touch owners; admins manage everybody else.
    pub fn can_manage(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => target != Role::Owner,
            Role::Supervisor | Role::Agent => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AGENT" => Ok(Role::Agent),
            "SUPERVISOR" => Ok(Role::Supervisor),
            "ADMIN" => Ok(Role::Admin),
            "OWNER" => Ok(Role::Owner),
            other => Err(UnknownVariant(other.to_owned())),
        }
    }
}

/// Whether an agent gets new chats. The seed's "Accept chats" and "Don't accept chats".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoutingStatus {
    /// Gets new chats while below their limit.
    AcceptingChats,
    /// Gets no new chats but keeps and continues the current ones, and can monitor.
    NotAcceptingChats,
    /// Signed off.
    Offline,
}

impl RoutingStatus {
    /// The spelling used in storage and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RoutingStatus::AcceptingChats => "ACCEPTING_CHATS",
            RoutingStatus::NotAcceptingChats => "NOT_ACCEPTING_CHATS",
            RoutingStatus::Offline => "OFFLINE",
        }
    }

    /// The status an agent has after logging in: the very first login makes an agent available
    /// for chats (so a new agent is ready at once), later logins restore what they had chosen.
    pub fn after_login(previous: RoutingStatus, first_login: bool) -> RoutingStatus {
        if first_login {
            RoutingStatus::AcceptingChats
        } else {
            previous
        }
    }
}

impl FromStr for RoutingStatus {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACCEPTING_CHATS" => Ok(RoutingStatus::AcceptingChats),
            "NOT_ACCEPTING_CHATS" => Ok(RoutingStatus::NotAcceptingChats),
            "OFFLINE" => Ok(RoutingStatus::Offline),
            other => Err(UnknownVariant(other.to_owned())),
        }
    }
}

/// A stored enum value this version does not know: a newer server wrote it, or the row was
/// edited by hand.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownVariant(pub String);

/// A tenant: one company with its agents, groups, widget and chats.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: String,
    pub name: String,
    /// The public key a web widget sends to start visitor sessions; safe to embed in pages.
    pub widget_key: String,
    /// Routing limits, thresholds and timeouts.
    pub settings: ChatSettings,
    pub created_at: DateTime<Utc>,
}

/// A support agent of an organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub routing_status: RoutingStatus,
    /// The agent's own limit; `None` follows the organization's default.
    pub chat_limit: Option<i32>,
    pub group_ids: Vec<String>,
    /// Deactivated agents cannot sign in and keep their history.
    pub active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A department: chats may target a group, agents belong to groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_spelling() {
        for role in [Role::Agent, Role::Supervisor, Role::Admin, Role::Owner] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("owner".parse::<Role>().is_err());
    }

    #[test]
    fn only_owners_manage_owners() {
        assert!(Role::Owner.can_manage(Role::Owner));
        assert!(!Role::Admin.can_manage(Role::Owner));
        assert!(Role::Admin.can_manage(Role::Admin));
        assert!(Role::Admin.can_manage(Role::Agent));
        assert!(!Role::Supervisor.can_manage(Role::Agent));
        assert!(!Role::Agent.can_manage(Role::Agent));
    }

    #[test]
    fn first_login_makes_an_agent_accept_chats_and_later_logins_restore() {
        use RoutingStatus::*;
        assert_eq!(RoutingStatus::after_login(Offline, true), AcceptingChats);
        assert_eq!(
            RoutingStatus::after_login(NotAcceptingChats, false),
            NotAcceptingChats
        );
        assert_eq!(
            RoutingStatus::after_login(AcceptingChats, false),
            AcceptingChats
        );
    }

    #[test]
    fn ids_sort_by_creation() {
        let a = new_id();
        let b = new_id();
        assert!(a < b, "{a} should sort before {b}");
    }
}
