//! Visitors on the site and greetings:
//!
//! - `on_site`: who is on the site now, fed by the customers' `visitorEvents` subscriptions
//!   and their page views on this node, and, with several nodes, by the other nodes' news;
//! - `across_nodes`: the [`VisitorsAcrossNodes`] worker that takes the other nodes' news in
//!   and sends this node's heartbeat (with NATS only);
//! - `greetings`: greetings an agent sends, and what the visitor does with them;
//! - `rules`: the admins' greeting rules, and the [`GreetingRules`] worker that sweeps
//!   departures and greets visitors whose time on a page has come.
//!
//! Live changes travel on the bus, on each customer's own topic: a greeting sent, answered or
//! dismissed, and the customer's chats starting and ending. Each open page of the customer
//! listens there and keeps the visitor up to date, so a thousand visitors cost nothing while
//! nothing happens to them. With several nodes, the node that holds the pages then tells the
//! others how the visitor looks now (on the bus's on-site topic), and only it lets the
//! greeting rules look at them.

mod across_nodes;
mod greetings;
mod on_site;
mod rules;

pub use crate::domain::{Visitor, VisitorState};
pub use across_nodes::VisitorsAcrossNodes;
pub use on_site::{Changes, MISSED_HEARTBEATS};
pub use rules::{GreetingRuleInput, GreetingRules};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, stream};
use tokio::sync::broadcast::error::RecvError;

use crate::bus::{BusEvent, BusReceiver, BusStatus, EventBus, Topic};
use crate::domain::{self, CompiledRule, Greeting};
use crate::error::Result;
use crate::services::ChatService;
use crate::services::auth::{CustomerPrincipal, Principal};
use crate::store::Database;

use on_site::{Link, OnSite};

/// How long after it was sent a greeting still shows on a page the visitor opens, unless
/// answered or dismissed.
const GREETING_SHOWN_FOR: chrono::Duration = chrono::Duration::hours(1);

/// How the visitors on the site behave.
#[derive(Debug, Clone, Copy)]
pub struct VisitorSettings {
    /// The least time between two updates of an agent's `visitorsChanged`.
    pub coalesce: Duration,
    /// How long a visitor whose last page closed still counts as on the site.
    pub leave_grace: Duration,
    /// With several nodes, how often each lists the visitors whose pages it holds for the
    /// others; a node's visitors leave the others' lists after [`MISSED_HEARTBEATS`] periods
    /// without a word from it (it died).
    pub heartbeat: Duration,
}

/// The use cases of visitors on the site and greetings.
pub struct VisitorService {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    chats: Arc<ChatService>,
    on_site: OnSite,
    settings: VisitorSettings,
    /// Each organization's enabled rules, compiled: rules change rarely and are checked often.
    rules: Mutex<HashMap<String, KeptRules>>,
}

/// An organization's enabled rules, compiled, and when they were read.
struct KeptRules {
    read_at: tokio::time::Instant,
    rules: Arc<Vec<CompiledRule>>,
}

impl VisitorService {
    /// Nobody on the site yet.
    pub fn new(
        store: Arc<dyn Database>,
        bus: Arc<dyn EventBus>,
        chats: Arc<ChatService>,
        settings: VisitorSettings,
    ) -> Arc<VisitorService> {
        // One node has nobody to tell about its visitors.
        let on_site = if bus.status() == BusStatus::Local {
            OnSite::new(settings.leave_grace)
        } else {
            OnSite::linked(
                settings.leave_grace,
                Link {
                    node: crate::services::leases::node_id(),
                    bus: bus.clone(),
                    heartbeat: settings.heartbeat,
                },
            )
        };
        Arc::new(VisitorService {
            store,
            bus,
            chats,
            on_site,
            settings,
            rules: Mutex::new(HashMap::new()),
        })
    }

    /// The visitors on the organization's site, longest there first. Every agent may look.
    pub fn visitors_on_site(&self, principal: &Principal) -> Vec<Visitor> {
        self.on_site.snapshot(principal.organization_id()).0
    }

    /// The widget reports the page the customer is on: stored in their history, and, while
    /// they are on the site, their current page, which the greeting rules look at. With
    /// several nodes, the nodes that hold the customer's pages are told to move them too.
    pub async fn update_page(
        &self,
        customer: &CustomerPrincipal,
        url: &str,
        title: Option<&str>,
    ) -> Result<domain::Customer> {
        let updated = self.chats.update_visitor_page(customer, url, title).await?;
        self.on_site.tell_page_viewed(&updated);
        if self.on_site.page_viewed(updated.clone()) {
            self.greet_if_a_rule_says_so(&customer.organization_id, &customer.customer_id)
                .await;
        }
        Ok(updated)
    }

    fn announce_greeting(&self, greeting: &Greeting) {
        self.bus.publish(
            Topic::Customer(greeting.customer_id.clone()),
            BusEvent::GreetingChanged {
                greeting_id: greeting.id.clone(),
            },
        );
    }
}

/// A customer's open page: on the site while it lives.
struct OpenPage {
    service: Arc<VisitorService>,
    customer: CustomerPrincipal,
}

impl Drop for OpenPage {
    fn drop(&mut self) {
        self.service
            .on_site
            .depart(&self.customer.organization_id, &self.customer.customer_id);
    }
}

/// The `visitorEvents` stream of one open page.
struct VisitorStream {
    page: OpenPage,
    topic: BusReceiver,
    /// The last greeting this page was given, so it is given once.
    given: Option<String>,
    next: Option<Greeting>,
}

/// The customer's page opened the widget's live connection: they are on the site until it
/// closes (and a grace period after). Yields the greetings to show: first any still waiting
/// for an answer, then new ones as they are sent.
pub async fn visitor_events(
    service: Arc<VisitorService>,
    customer: CustomerPrincipal,
) -> Result<impl Stream<Item = Greeting> + use<>> {
    let topic = service
        .bus
        .subscribe(Topic::Customer(customer.customer_id.clone()));
    let record = service
        .store
        .customer(&customer.organization_id, &customer.customer_id)
        .await
        .map_err(|err| greetings::not_found(err, "customer"))?;
    let chat = service
        .store
        .open_chat_of_customer(&customer.organization_id, &customer.customer_id)
        .await?;
    let latest = service
        .store
        .latest_greeting(&customer.customer_id, domain::now() - GREETING_SHOWN_FOR)
        .await?;
    service
        .on_site
        .arrive(record, chat.as_ref(), latest.clone());
    let mut state = VisitorStream {
        page: OpenPage {
            service: service.clone(),
            customer: customer.clone(),
        },
        topic,
        given: None,
        next: None,
    };
    if let Some(greeting) = latest.filter(|g| g.is_pending() && chat.is_none()) {
        state.give(greeting).await;
    }
    service
        .greet_if_a_rule_says_so(&customer.organization_id, &customer.customer_id)
        .await;
    // Boxed: `unfold` keeps the state beside the future that holds it.
    Ok(stream::unfold(Box::new(state), |mut state| async move {
        let greeting = state.next_greeting().await?;
        Some((greeting, state))
    }))
}

impl VisitorStream {
    async fn next_greeting(&mut self) -> Option<Greeting> {
        loop {
            if let Some(greeting) = self.next.take() {
                return Some(greeting);
            }
            match self.topic.recv().await {
                Ok(event) => match &*event {
                    BusEvent::GreetingChanged { greeting_id } => {
                        self.greeting_changed(greeting_id).await;
                    }
                    BusEvent::CustomerChatChanged { chat_id, status } => {
                        let customer = &self.page.customer;
                        self.page.service.on_site.chat_changed(
                            &customer.organization_id,
                            &customer.customer_id,
                            chat_id,
                            *status,
                        );
                    }
                    // News may have been lost on the way (NATS was away).
                    BusEvent::Resync => self.read_again().await,
                    _ => {}
                },
                // Missed news: the store has the truth.
                Err(RecvError::Lagged(_)) => self.read_again().await,
                Err(RecvError::Closed) => return None,
            }
        }
    }

    async fn greeting_changed(&mut self, greeting_id: &str) {
        let service = &self.page.service;
        let greeting = match service
            .store
            .greeting(&self.page.customer.organization_id, greeting_id)
            .await
        {
            Ok(greeting) => greeting,
            Err(err) => {
                tracing::warn!(error = %err, "a visitor's page could not read a greeting");
                return;
            }
        };
        service.on_site.greeting_changed(greeting.clone());
        if greeting.is_pending() {
            self.give(greeting).await;
        }
    }

    async fn read_again(&mut self) {
        let customer = &self.page.customer;
        let service = &self.page.service;
        let latest = service
            .store
            .latest_greeting(&customer.customer_id, domain::now() - GREETING_SHOWN_FOR)
            .await;
        match latest {
            Ok(Some(greeting)) => self.greeting_changed(&greeting.id.clone()).await,
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "a visitor's page could not catch up"),
        }
        // Their chat's changes may have been missed too.
        let customer = &self.page.customer;
        let service = &self.page.service;
        let open = match service
            .store
            .open_chat_of_customer(&customer.organization_id, &customer.customer_id)
            .await
        {
            Ok(open) => open,
            Err(err) => {
                tracing::warn!(error = %err, "a visitor's page could not read their chat");
                return;
            }
        };
        let (organization_id, customer_id) = (&customer.organization_id, &customer.customer_id);
        match open {
            Some(chat) => {
                service
                    .on_site
                    .chat_changed(organization_id, customer_id, &chat.id, chat.status)
            }
            None => {
                let shown = service
                    .on_site
                    .visitor(organization_id, customer_id)
                    .and_then(|visitor| visitor.chat);
                if let Some((chat_id, _)) = shown {
                    service.on_site.chat_changed(
                        organization_id,
                        customer_id,
                        &chat_id,
                        domain::ChatStatus::Closed,
                    );
                }
            }
        }
    }

    /// Gives the page a greeting to show, once; the first page to show it counts it shown.
    async fn give(&mut self, mut greeting: Greeting) {
        if self.given.as_deref() == Some(greeting.id.as_str()) {
            return;
        }
        self.given = Some(greeting.id.clone());
        if greeting.shown_at.is_none() {
            let now = domain::now();
            match self
                .page
                .service
                .store
                .mark_greeting_shown(&greeting.id, now)
                .await
            {
                Ok(_) => {
                    greeting.shown_at = Some(now);
                    self.page.service.on_site.greeting_changed(greeting.clone());
                }
                Err(err) => tracing::warn!(error = %err, "could not count a greeting shown"),
            }
        }
        self.next = Some(greeting);
    }
}

/// What an agent's `visitorsChanged` yields.
#[derive(Debug, Clone)]
pub struct VisitorsUpdate {
    pub visitors: Vec<Visitor>,
    pub left: Vec<String>,
    /// The whole list (the first update), rather than what changed.
    pub snapshot: bool,
}

/// The organization's visitors on the site for an agent: everyone first, then what changed,
/// at most once per the coalescing interval (at once when the last update is older). Every agent sees every visitor, so a change of
/// the agent's rights changes nothing here; an ended session closes the socket, and this
/// stream with it.
pub fn visitors_changed(
    service: Arc<VisitorService>,
    principal: &Principal,
) -> impl Stream<Item = VisitorsUpdate> + use<> {
    struct State {
        service: Arc<VisitorService>,
        organization_id: String,
        watch: tokio::sync::watch::Receiver<u64>,
        /// The version the agent has seen; `None` before the first update.
        version: Option<u64>,
        /// When the last update went out.
        sent_at: tokio::time::Instant,
    }
    let organization_id = principal.organization_id().to_owned();
    let watch = service.on_site.watch(&organization_id);
    let state = State {
        service,
        organization_id,
        watch,
        version: None,
        sent_at: tokio::time::Instant::now(),
    };
    stream::unfold(Box::new(state), |mut state| async move {
        let Some(mut version) = state.version else {
            state.watch.borrow_and_update();
            let (visitors, version) = state.service.on_site.snapshot(&state.organization_id);
            state.version = Some(version);
            state.sent_at = tokio::time::Instant::now();
            let first = VisitorsUpdate {
                visitors,
                left: Vec::new(),
                snapshot: true,
            };
            return Some((first, state));
        };
        loop {
            state.watch.changed().await.ok()?;
            // A change after a quiet interval goes out at once; changes that come sooner
            // gather until the interval since the last update has passed, and go out as one.
            tokio::time::sleep_until(state.sent_at + state.service.settings.coalesce).await;
            state.watch.borrow_and_update();
            let changes = state
                .service
                .on_site
                .changes_since(&state.organization_id, version);
            version = changes.version;
            state.version = Some(version);
            if changes.visitors.is_empty() && changes.left.is_empty() {
                continue;
            }
            state.sent_at = tokio::time::Instant::now();
            let update = VisitorsUpdate {
                visitors: changes.visitors,
                left: changes.left,
                snapshot: false,
            };
            return Some((update, state));
        }
    })
}
