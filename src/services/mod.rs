//! Use cases: what agents, admins and customers can do. Services call the store and the bus
//! and know nothing of GraphQL or HTTP.

pub mod accounts;
pub mod auth;
pub mod chats;
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
pub use chats::ChatService;

/// Every use case, shared by the transports.
pub struct Services {
    pub store: Arc<dyn Database>,
    pub bus: Arc<dyn EventBus>,
    pub auth: AuthService,
    pub accounts: AccountService,
    pub chats: Arc<ChatService>,
    pub presence: Arc<presence::Presence>,
    pub push: push::PushService,
}
