//! Use cases: what agents, admins and customers can do. Services call the store and the bus
//! and know nothing of GraphQL or HTTP.

pub mod accounts;
pub mod auth;
pub mod chat_views;
pub mod chats;
pub mod health;
pub mod presence;
pub mod push;
pub mod rate_limit;
pub mod streams;
pub mod timers;

use std::sync::Arc;

use crate::bus::EventBus;
use crate::store::Database;

pub use accounts::AccountService;
pub use auth::{AuthService, AuthSession, Caller, CustomerPrincipal, LivePrincipal, Principal};
pub use chat_views::ChatViews;
pub use chats::ChatService;
pub use health::Health;

/// Every use case, shared by the transports.
pub struct Services {
    /// For background workers (timers, the push outbox, access polling) only: transports
    /// reach data through the services below.
    pub store: Arc<dyn Database>,
    /// For background workers and the services' own streams only, as `store`.
    pub bus: Arc<dyn EventBus>,
    pub auth: AuthService,
    pub accounts: AccountService,
    pub chats: Arc<ChatService>,
    pub presence: Arc<presence::Presence>,
    pub push: push::PushService,
    /// Chats' transcripts and what chats reference, read after a visibility check.
    pub chat_views: ChatViews,
    /// The database's health, for the probes and metrics.
    pub health: Health,
}
