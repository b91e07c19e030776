//! Use cases: what agents, admins and customers can do. Services call the store and the bus
//! and know nothing of GraphQL or HTTP.

pub mod accounts;
pub mod archive;
pub mod auth;
pub mod canned;
pub mod chat_views;
pub mod chats;
pub mod files;
pub mod health;
pub mod leases;
pub mod messenger;
pub mod presence;
pub mod push;
pub mod rate_limit;
pub mod reports;
pub mod streams;
pub mod tags;
pub mod timers;
pub mod visitors;
pub mod webhooks;
pub mod widget;

use std::sync::Arc;

use crate::bus::EventBus;
use crate::store::Database;

pub use accounts::AccountService;
pub use auth::{AuthService, AuthSession, Caller, CustomerPrincipal, LivePrincipal, Principal};
pub use chat_views::ChatViews;
pub use chats::ChatService;
pub use health::Health;
pub use visitors::VisitorService;

/// Every use case, shared by the transports. The store and the bus are private: transports
/// reach data only through the use cases, which check who may see it.
pub struct Services {
    /// For the services' own reads and workers (timers, streams).
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    pub auth: AuthService,
    pub accounts: AccountService,
    /// The archive, customer profiles and bans.
    pub archive: archive::ArchiveService,
    /// Canned responses: search, render, manage, count.
    pub canned: canned::CannedService,
    pub chats: Arc<ChatService>,
    /// Files attached to messages: uploads, download links, the organization's limits.
    pub files: files::FileService,
    pub presence: Arc<presence::Presence>,
    pub push: push::PushService,
    /// Visitors on the site, greetings and greeting rules.
    pub visitors: Arc<VisitorService>,
    /// Chats' transcripts and what chats reference, read after a visibility check.
    pub chat_views: ChatViews,
    /// The database's health, for the probes and metrics.
    pub health: Health,
    /// The chat widget's set-up.
    pub widget: widget::WidgetService,
    /// The organization's tags (putting them on chats is the chats' use case).
    pub tags: tags::TagService,
    /// Reports over chats and greetings.
    pub reports: reports::ReportService,
    /// Webhook endpoints, their deliveries, and sending chats to integrations.
    pub webhooks: webhooks::WebhookService,
    /// Facebook Messenger: connected pages and the webhook's events.
    pub messenger: messenger::MessengerService,
}

/// The settings of the use cases [`Services::new`] builds.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Visitors on the site.
    pub visitors: visitors::VisitorSettings,
    /// Browsers' push subscriptions.
    pub web_push: push::WebPushSettings,
    /// Where attached files are kept and how their links are signed.
    pub files: files::FileServiceSettings,
    /// Whether webhook endpoints may be at loopback and private addresses.
    pub allow_private_webhook_targets: bool,
    /// The Graph API Messenger's profiles and page names come from.
    pub messenger_graph: crate::outbox::messenger::GraphApi,
}

impl Services {
    /// Whether this node's events reach the other nodes now (/readyz, /metrics).
    pub fn bus_status(&self) -> crate::bus::BusStatus {
        self.bus.status()
    }

    /// Gathers the use cases built over `store` and `bus`, and builds those that need only
    /// the store and the chats (pushes, visitors on the site) with their `settings`.
    pub fn new(
        store: Arc<dyn Database>,
        bus: Arc<dyn EventBus>,
        auth: AuthService,
        accounts: AccountService,
        chats: Arc<ChatService>,
        presence: Arc<presence::Presence>,
        settings: ServiceSettings,
    ) -> Services {
        Services {
            archive: archive::ArchiveService::new(store.clone()),
            canned: canned::CannedService::new(store.clone(), chats.clone()),
            tags: tags::TagService::new(store.clone()),
            chat_views: ChatViews::new(store.clone(), chats.clone()),
            files: files::FileService::new(store.clone(), chats.clone(), settings.files),
            health: Health::new(store.clone()),
            push: push::PushService::new(store.clone(), chats.clone(), settings.web_push),
            visitors: VisitorService::new(
                store.clone(),
                bus.clone(),
                chats.clone(),
                settings.visitors,
            ),
            widget: widget::WidgetService::new(store.clone()),
            reports: reports::ReportService::new(store.clone()),
            webhooks: webhooks::WebhookService::new(
                store.clone(),
                chats.clone(),
                settings.allow_private_webhook_targets,
            ),
            messenger: messenger::MessengerService::new(
                store.clone(),
                chats.clone(),
                settings.messenger_graph,
            ),
            store,
            bus,
            auth,
            accounts,
            chats,
            presence,
        }
    }
}
