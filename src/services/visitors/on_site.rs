//! Who is on the site now. A visitor arrives when a page of theirs opens the `visitorEvents`
//! subscription, and leaves a grace period after their last page closed, so a reload or a
//! click to the next page does not make them flap. Kept in memory only: a heartbeat costs no
//! database write, and nothing runs per visitor between changes (one sweep for the whole node
//! removes those who left).
//!
//! With several nodes (NATS), each node holds the visitors whose pages are connected to it
//! ("here") and tells the others of every arrival, change and departure ([`SiteNews`] on
//! [`Topic::OnSite`]); it lists the others' visitors ("elsewhere") beside its own, so agents
//! on any node see everyone. Every heartbeat period a node lists the visitors it holds with
//! their revisions: a node that missed news of one asks for it again, and a visitor a node
//! stops hearing of (their node died) leaves its list after [`MISSED_HEARTBEATS`] periods. A
//! visitor with pages on two nodes is one visitor: on the site since the earliest of their
//! arrivals, as the node they moved pages on last shows them. Only a node that holds a
//! visitor's pages lets the greeting rules look at them.
//!
//! Each organization's visitors carry a version that every change bumps; agents' streams
//! watch it and read what changed since the version they last saw, so any number of changes
//! between two looks cost one update.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::bus::{BusEvent, EventBus, SiteEntry, SiteNews, Topic};
use crate::domain::{self, Chat, ChatStatus, Customer, Greeting, Visitor, VisitorState};

/// How long a departure stays in the list of who left, for agents' streams to read: far
/// longer than any stream waits between two looks.
const LEFT_KEPT: Duration = Duration::from_secs(60);

/// Heartbeats a node may miss before the visitors it held leave the other nodes' lists: one
/// lost message does not make anyone leave, a dead node's visitors leave within this many
/// periods (and a sweep).
pub const MISSED_HEARTBEATS: u32 = 3;

/// The most visitors one heartbeat message lists (about 100 bytes each), well within NATS's
/// default 1 MB payload; a node that holds more sends several.
const HEARTBEAT_PART: usize = 2000;

/// One visitor on the site whose pages are on this node.
struct Present {
    visitor: Visitor,
    /// Their open pages (visitorEvents subscriptions) on this node.
    pages: usize,
    /// When their last page closed; they leave once the grace period has passed.
    leaving_since: Option<Instant>,
    /// The organization's version when they last changed as agents see them.
    version: u64,
    /// The version when this node last changed them: what it tells the other nodes, so they
    /// can tell news they missed from news they have.
    revision: u64,
    /// When greeting rules should look at them again; `None`: when something changes.
    rules_due: Option<DateTime<Utc>>,
    /// Greeting rules are looking at them now: another look waits its turn.
    rules_busy: bool,
}

/// A visitor on the site as another node holds them.
struct Remote {
    visitor: Visitor,
    /// That node's revision of them: older news arriving late is ignored.
    revision: u64,
    /// When that node last spoke of them; without a word for a few heartbeats, they leave.
    heard_at: Instant,
}

/// A visitor as the other nodes hold them.
#[derive(Default)]
struct Elsewhere {
    /// By node id, in order, so that the merge does not depend on a hash.
    nodes: BTreeMap<String, Remote>,
    /// The organization's version when this last changed.
    version: u64,
}

/// One organization's visitors on the site.
struct Site {
    /// Those whose pages are on this node.
    visitors: HashMap<String, Present>,
    /// Those whose pages are on other nodes (a visitor may be in both).
    elsewhere: HashMap<String, Elsewhere>,
    /// Who left, at which version and when.
    left: Vec<(String, u64, Instant)>,
    version: u64,
    /// The version, for agents' streams to wait on.
    changed: watch::Sender<u64>,
}

impl Site {
    fn new() -> Site {
        Site {
            visitors: HashMap::new(),
            elsewhere: HashMap::new(),
            left: Vec::new(),
            version: 0,
            changed: watch::channel(0).0,
        }
    }

    /// Moves the organization to `version` and wakes the watchers.
    fn bump(&mut self, version: u64) {
        self.version = version;
        self.changed.send_replace(version);
    }

    fn is_on_site(&self, customer_id: &str) -> bool {
        self.visitors.contains_key(customer_id) || self.elsewhere.contains_key(customer_id)
    }

    /// Everyone on the site, here or elsewhere, once each.
    fn customer_ids(&self) -> impl Iterator<Item = &String> {
        self.visitors.keys().chain(
            self.elsewhere
                .keys()
                .filter(|id| !self.visitors.contains_key(*id)),
        )
    }

    /// The organization's version when the visitor last changed as agents see them.
    fn changed_at(&self, customer_id: &str) -> Option<u64> {
        let here = self.visitors.get(customer_id).map(|p| p.version);
        here.max(self.elsewhere.get(customer_id).map(|e| e.version))
    }

    /// The visitor as agents see them: on the site since the earliest of their arrivals on
    /// any node, as the node they last moved pages on shows them.
    fn seen(&self, customer_id: &str) -> Option<Visitor> {
        let here = self.visitors.get(customer_id).map(|p| &p.visitor);
        let elsewhere = self.elsewhere.get(customer_id);
        let mut views = here.into_iter().chain(
            elsewhere
                .into_iter()
                .flat_map(|e| e.nodes.values().map(|r| &r.visitor)),
        );
        let mut latest = views.next()?;
        let mut on_site_since = latest.on_site_since;
        for view in views {
            on_site_since = on_site_since.min(view.on_site_since);
            if view.page_since > latest.page_since {
                latest = view;
            }
        }
        let mut visitor = latest.clone();
        visitor.on_site_since = on_site_since;
        Some(visitor)
    }

    /// The customer's entry here or elsewhere went away at `version`: they left, or, still
    /// on the site on another node, changed.
    fn went_away(&mut self, customer_id: &str, version: u64, now: Instant) {
        if let Some(elsewhere) = self.elsewhere.get_mut(customer_id) {
            elsewhere.version = version;
        } else if let Some(present) = self.visitors.get_mut(customer_id) {
            present.version = version;
        } else {
            self.left.push((customer_id.to_owned(), version, now));
        }
    }
}

/// How this node tells the others of its visitors: with NATS only.
pub struct Link {
    /// This node's id in its news.
    pub node: String,
    pub bus: Arc<dyn EventBus>,
    /// How often this node lists its visitors for the others; they drop its visitors after
    /// [`MISSED_HEARTBEATS`] periods without news.
    pub heartbeat: Duration,
}

/// What changed among an organization's visitors since a version.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Visitors who arrived or changed.
    pub visitors: Vec<Visitor>,
    /// Customer ids of visitors who left.
    pub left: Vec<String>,
    /// The version this brings the reader to.
    pub version: u64,
}

/// The visitors on the site, per organization: those whose pages are on this node, and,
/// with several nodes, those whose pages are on the others.
pub struct OnSite {
    sites: Mutex<HashMap<String, Site>>,
    /// How long a visitor whose last page closed still counts as on the site.
    grace: Duration,
    /// The last version given out, for every organization: versions never go back, even when
    /// an organization nobody is on is forgotten, so the other nodes can order this node's
    /// news by them.
    clock: AtomicU64,
    /// The other nodes, with NATS; `None` on a single node, which tells nobody anything.
    link: Option<Link>,
}

impl OnSite {
    /// Nobody on the site yet; a single node.
    pub fn new(grace: Duration) -> OnSite {
        OnSite {
            sites: Mutex::new(HashMap::new()),
            grace,
            clock: AtomicU64::new(0),
            link: None,
        }
    }

    /// Nobody on the site yet; one node of several, which tells the others through `link`.
    pub fn linked(grace: Duration, link: Link) -> OnSite {
        OnSite {
            link: Some(link),
            ..OnSite::new(grace)
        }
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, HashMap<String, Site>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_version(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Tells the other nodes, if there are any. Called with the sites locked, so that news
    /// of one visitor leaves in the order it happened.
    fn tell(&self, news: impl FnOnce(&str) -> SiteNews) {
        if let Some(link) = &self.link {
            link.bus
                .publish(Topic::OnSite, BusEvent::OnSite(Box::new(news(&link.node))));
        }
    }

    /// Whether `node` is this node.
    fn is_own(&self, node: &str) -> bool {
        self.link.as_ref().is_some_and(|link| link.node == node)
    }

    /// Bumps the version for a change of `customer_id` here, wakes the watchers, and shows
    /// the change to the other nodes.
    fn touch(&self, site: &mut Site, customer_id: &str) {
        let version = self.next_version();
        site.bump(version);
        if let Some(present) = site.visitors.get_mut(customer_id) {
            present.version = version;
            present.revision = version;
            let visitor = &present.visitor;
            self.tell(|node| SiteNews::Shown {
                node: node.to_owned(),
                revision: version,
                visitor: Box::new(visitor.clone()),
            });
        }
    }

    /// A page of the customer opened: they are on the site (again, within the grace period,
    /// as they were). `chat` and `greeting` are theirs as the store has them now.
    pub fn arrive(&self, customer: Customer, chat: Option<&Chat>, greeting: Option<Greeting>) {
        let now = domain::now();
        let mut sites = self.sites();
        let site = sites
            .entry(customer.organization_id.clone())
            .or_insert_with(Site::new);
        let customer_id = customer.id.clone();
        let chat = chat.map(|c| (c.id.clone(), c.status));
        match site.visitors.get_mut(&customer_id) {
            Some(present) => {
                present.pages += 1;
                present.leaving_since = None;
                if present.visitor.customer.current_page_url != customer.current_page_url {
                    present.visitor.page_since = now;
                }
                present.visitor.customer = customer;
                present.visitor.chat = chat;
                if greeting.is_some() {
                    present.visitor.greeting = greeting;
                }
                present.rules_due = Some(now);
            }
            None => {
                site.visitors.insert(
                    customer_id.clone(),
                    Present {
                        visitor: Visitor {
                            customer,
                            on_site_since: now,
                            page_since: now,
                            chat,
                            greeting,
                        },
                        pages: 1,
                        leaving_since: None,
                        version: 0,
                        revision: 0,
                        rules_due: Some(now),
                        rules_busy: false,
                    },
                );
            }
        }
        self.touch(site, &customer_id);
    }

    /// A page of the customer closed. With none left open they leave after the grace
    /// period, at the next sweep.
    pub fn depart(&self, organization_id: &str, customer_id: &str) {
        let mut sites = self.sites();
        let Some(present) = sites
            .get_mut(organization_id)
            .and_then(|site| site.visitors.get_mut(customer_id))
        else {
            return;
        };
        present.pages = present.pages.saturating_sub(1);
        if present.pages == 0 {
            present.leaving_since = Some(Instant::now());
        }
    }

    /// The customer, as stored after a page view: their page (and its time, when the page
    /// changed). False when their pages are not on this node.
    pub fn page_viewed(&self, customer: Customer) -> bool {
        let mut sites = self.sites();
        let Some(site) = sites.get_mut(&customer.organization_id) else {
            return false;
        };
        let customer_id = customer.id.clone();
        let Some(present) = site.visitors.get_mut(&customer_id) else {
            return false;
        };
        let now = domain::now();
        if present.visitor.customer.current_page_url != customer.current_page_url {
            present.visitor.page_since = now;
        }
        present.visitor.customer = customer;
        present.rules_due = Some(now);
        self.touch(site, &customer_id);
        true
    }

    /// Tells the other nodes of a page view stored on this one: those that hold the
    /// customer's pages move them (and their greeting rules look).
    pub fn tell_page_viewed(&self, customer: &Customer) {
        self.tell(|node| SiteNews::PageViewed {
            node: node.to_owned(),
            customer: Box::new(customer.clone()),
        });
    }

    /// One of the customer's chats changed status.
    pub fn chat_changed(
        &self,
        organization_id: &str,
        customer_id: &str,
        chat_id: &str,
        status: ChatStatus,
    ) {
        let mut sites = self.sites();
        let Some(site) = sites.get_mut(organization_id) else {
            return;
        };
        let Some(present) = site.visitors.get_mut(customer_id) else {
            return;
        };
        let chat = &mut present.visitor.chat;
        let next = match (status, &*chat) {
            (ChatStatus::Closed, Some((open, _))) if open == chat_id => None,
            (ChatStatus::Closed, _) => return,
            (status, _) => Some((chat_id.to_owned(), status)),
        };
        if *chat == next {
            return;
        }
        let closed = next.is_none();
        *chat = next;
        if closed {
            // Back to browsing: the rules may greet them again.
            present.rules_due = Some(domain::now());
        }
        self.touch(site, customer_id);
    }

    /// A greeting to the customer was sent, answered or dismissed.
    pub fn greeting_changed(&self, greeting: Greeting) {
        let mut sites = self.sites();
        let Some(site) = sites.get_mut(&greeting.organization_id) else {
            return;
        };
        let customer_id = greeting.customer_id.clone();
        let Some(present) = site.visitors.get_mut(&customer_id) else {
            return;
        };
        let newer = present.visitor.greeting.as_ref().is_none_or(|current| {
            current.id == greeting.id || current.created_at <= greeting.created_at
        });
        if !newer || present.visitor.greeting.as_ref() == Some(&greeting) {
            return;
        }
        present.visitor.greeting = Some(greeting);
        self.touch(site, &customer_id);
    }

    /// The customer, if on the site (on any node).
    pub fn visitor(&self, organization_id: &str, customer_id: &str) -> Option<Visitor> {
        self.sites().get(organization_id)?.seen(customer_id)
    }

    /// Everyone on the organization's site, longest there first, with the version they are
    /// as of.
    pub fn snapshot(&self, organization_id: &str) -> (Vec<Visitor>, u64) {
        let sites = self.sites();
        let Some(site) = sites.get(organization_id) else {
            return (Vec::new(), 0);
        };
        let mut visitors: Vec<Visitor> =
            site.customer_ids().filter_map(|id| site.seen(id)).collect();
        visitors.sort_by(|a, b| {
            a.on_site_since
                .cmp(&b.on_site_since)
                .then_with(|| a.customer.id.cmp(&b.customer.id))
        });
        (visitors, site.version)
    }

    /// Watches the organization's version: it changes with every arrival, departure and
    /// change.
    pub fn watch(&self, organization_id: &str) -> watch::Receiver<u64> {
        self.sites()
            .entry(organization_id.to_owned())
            .or_insert_with(Site::new)
            .changed
            .subscribe()
    }

    /// What changed in the organization after `version`.
    pub fn changes_since(&self, organization_id: &str, version: u64) -> Changes {
        let sites = self.sites();
        let Some(site) = sites.get(organization_id) else {
            return Changes::default();
        };
        let visitors = site
            .customer_ids()
            .filter(|id| site.changed_at(id).is_some_and(|at| at > version))
            .filter_map(|id| site.seen(id))
            .collect();
        let mut left: Vec<String> = site
            .left
            .iter()
            .filter(|(id, at, _)| *at > version && !site.is_on_site(id))
            .map(|(id, _, _)| id.clone())
            .collect();
        left.dedup();
        Changes {
            visitors,
            left,
            version: site.version,
        }
    }

    /// Removes the visitors whose grace period has passed, and those of other nodes that
    /// were not heard of for [`MISSED_HEARTBEATS`] heartbeats; forgets organizations nobody
    /// is on or watching.
    pub fn sweep(&self) {
        let now = Instant::now();
        let grace = self.grace;
        let unheard = self
            .link
            .as_ref()
            .map(|link| link.heartbeat * MISSED_HEARTBEATS);
        let mut sites = self.sites();
        for (organization_id, site) in sites.iter_mut() {
            site.left
                .retain(|(_, _, at)| now.saturating_duration_since(*at) < LEFT_KEPT);
            let gone: Vec<String> = site
                .visitors
                .iter()
                .filter(|(_, p)| p.leaving_since.is_some_and(|since| since + grace <= now))
                .map(|(id, _)| id.clone())
                .collect();
            let mut unheard_of = Vec::new();
            if let Some(unheard) = unheard {
                site.elsewhere.retain(|id, elsewhere| {
                    let before = elsewhere.nodes.len();
                    elsewhere.nodes.retain(|_, remote| {
                        now.saturating_duration_since(remote.heard_at) < unheard
                    });
                    if elsewhere.nodes.len() < before {
                        unheard_of.push(id.clone());
                    }
                    !elsewhere.nodes.is_empty()
                });
            }
            if gone.is_empty() && unheard_of.is_empty() {
                continue;
            }
            let version = self.next_version();
            for id in gone {
                site.visitors.remove(&id);
                self.tell(|node| SiteNews::Gone {
                    node: node.to_owned(),
                    organization_id: organization_id.clone(),
                    customer_id: id.clone(),
                });
                site.went_away(&id, version, now);
            }
            for id in unheard_of {
                site.went_away(&id, version, now);
            }
            site.bump(version);
        }
        sites.retain(|_, site| {
            !site.visitors.is_empty()
                || !site.elsewhere.is_empty()
                || !site.left.is_empty()
                || site.changed.receiver_count() > 0
        });
    }

    /// Lists this node's visitors for the other nodes, with their revisions: they keep them
    /// on their lists, and ask again for those they missed news of. Nothing without NATS.
    pub fn send_heartbeat(&self) {
        let Some(link) = &self.link else {
            return;
        };
        let entries: Vec<SiteEntry> = self
            .sites()
            .iter()
            .flat_map(|(organization_id, site)| {
                site.visitors
                    .iter()
                    .map(move |(customer_id, present)| SiteEntry {
                        organization_id: organization_id.clone(),
                        customer_id: customer_id.clone(),
                        revision: present.revision,
                    })
            })
            .collect();
        // Outside the lock: news sent meanwhile carries a later revision, which the others
        // keep; a visitor who left meanwhile is asked for and not shown again.
        for part in entries.chunks(HEARTBEAT_PART) {
            link.bus.publish(
                Topic::OnSite,
                BusEvent::OnSite(Box::new(SiteNews::Heartbeat {
                    node: link.node.clone(),
                    visitors: part.to_vec(),
                })),
            );
        }
    }

    /// Takes in another node's news (this node's own is skipped). A page view of a visitor
    /// whose pages are here moves them; the greeting rules look at them on their next pass.
    pub fn hear(&self, news: &SiteNews) {
        let now = Instant::now();
        match news {
            SiteNews::Shown { node, .. }
            | SiteNews::Gone { node, .. }
            | SiteNews::Heartbeat { node, .. }
            | SiteNews::Wanted { node, .. }
            | SiteNews::PageViewed { node, .. }
                if self.is_own(node) => {}
            SiteNews::Shown {
                node,
                revision,
                visitor,
            } => {
                let mut sites = self.sites();
                let site = sites
                    .entry(visitor.customer.organization_id.clone())
                    .or_insert_with(Site::new);
                let elsewhere = site
                    .elsewhere
                    .entry(visitor.customer.id.clone())
                    .or_default();
                if let Some(known) = elsewhere.nodes.get_mut(node)
                    && known.revision >= *revision
                {
                    // Older than what that node said since.
                    known.heard_at = now;
                    return;
                }
                elsewhere.nodes.insert(
                    node.clone(),
                    Remote {
                        visitor: (**visitor).clone(),
                        revision: *revision,
                        heard_at: now,
                    },
                );
                let version = self.next_version();
                elsewhere.version = version;
                site.bump(version);
            }
            SiteNews::Gone {
                node,
                organization_id,
                customer_id,
            } => {
                let mut sites = self.sites();
                let Some(site) = sites.get_mut(organization_id) else {
                    return;
                };
                let Some(elsewhere) = site.elsewhere.get_mut(customer_id) else {
                    return;
                };
                if elsewhere.nodes.remove(node).is_none() {
                    return;
                }
                if elsewhere.nodes.is_empty() {
                    site.elsewhere.remove(customer_id);
                }
                let version = self.next_version();
                site.went_away(customer_id, version, now);
                site.bump(version);
            }
            SiteNews::Heartbeat { node, visitors } => {
                let mut sites = self.sites();
                let mut missed = Vec::new();
                for entry in visitors {
                    let known = sites
                        .get_mut(&entry.organization_id)
                        .and_then(|site| site.elsewhere.get_mut(&entry.customer_id))
                        .and_then(|elsewhere| elsewhere.nodes.get_mut(node));
                    match known {
                        Some(known) if known.revision >= entry.revision => known.heard_at = now,
                        _ => missed.push(entry.clone()),
                    }
                }
                if !missed.is_empty() {
                    self.tell(|own| SiteNews::Wanted {
                        node: own.to_owned(),
                        from: node.clone(),
                        visitors: missed,
                    });
                }
            }
            SiteNews::Wanted { from, visitors, .. } => {
                if !self.is_own(from) {
                    return;
                }
                let sites = self.sites();
                for entry in visitors {
                    let Some(present) = sites
                        .get(&entry.organization_id)
                        .and_then(|site| site.visitors.get(&entry.customer_id))
                    else {
                        continue;
                    };
                    self.tell(|node| SiteNews::Shown {
                        node: node.to_owned(),
                        revision: present.revision,
                        visitor: Box::new(present.visitor.clone()),
                    });
                }
            }
            SiteNews::PageViewed { customer, .. } => {
                self.page_viewed((**customer).clone());
            }
        }
    }

    /// Asks the greeting rules to look at every visitor of the organization whose pages are
    /// here again (its rules changed).
    pub fn look_again(&self, organization_id: &str) {
        let now = domain::now();
        if let Some(site) = self.sites().get_mut(organization_id) {
            for present in site.visitors.values_mut() {
                present.rules_due = Some(now);
            }
        }
    }

    /// Claims the customer for a look by the greeting rules, if their pages are here (one
    /// open at least), they are browsing, and nobody else is looking.
    pub fn claim(&self, organization_id: &str, customer_id: &str) -> Option<Claimed<'_>> {
        let mut sites = self.sites();
        let present = sites
            .get_mut(organization_id)?
            .visitors
            .get_mut(customer_id)?;
        claim(present).map(|visitor| Claimed::new(self, visitor))
    }

    /// Claims every visitor here the greeting rules should look at again by `now`.
    pub fn claim_due(&self, now: DateTime<Utc>) -> Vec<Claimed<'_>> {
        let mut sites = self.sites();
        sites
            .values_mut()
            .flat_map(|site| site.visitors.values_mut())
            .filter(|p| p.rules_due.is_some_and(|due| due <= now))
            .filter_map(claim)
            .map(|visitor| Claimed::new(self, visitor))
            .collect()
    }

    /// Ends a look by the greeting rules; they look again at `due` (`None`: on the next
    /// change).
    fn release(&self, organization_id: &str, customer_id: &str, due: Option<DateTime<Utc>>) {
        let mut sites = self.sites();
        if let Some(present) = sites
            .get_mut(organization_id)
            .and_then(|site| site.visitors.get_mut(customer_id))
        {
            present.rules_busy = false;
            // A change while the rules looked asked for another look: keep the earlier time.
            present.rules_due = match (present.rules_due, due) {
                (Some(asked), Some(due)) => Some(asked.min(due)),
                (asked, due) => asked.or(due),
            };
        }
    }
}

/// A visitor the greeting rules are looking at. Released when dropped: by then the look says
/// when to look again ([`Claimed::look_again_at`]); a look that never finished (its request
/// was cancelled) has the next pass look again.
pub struct Claimed<'a> {
    on_site: &'a OnSite,
    pub visitor: Visitor,
    /// When to look again, once the look has said so.
    again: Option<Option<DateTime<Utc>>>,
}

impl<'a> Claimed<'a> {
    fn new(on_site: &'a OnSite, visitor: Visitor) -> Self {
        Claimed {
            on_site,
            visitor,
            again: None,
        }
    }

    /// The look is over: look again at `due` (`None`: on the next change).
    pub fn look_again_at(mut self, due: Option<DateTime<Utc>>) {
        self.again = Some(due);
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        let due = self.again.unwrap_or_else(|| Some(domain::now()));
        let customer = &self.visitor.customer;
        self.on_site
            .release(&customer.organization_id, &customer.id, due);
    }
}

fn claim(present: &mut Present) -> Option<Visitor> {
    if present.rules_busy
        || present.leaving_since.is_some()
        || present.visitor.state() != VisitorState::Browsing
    {
        return None;
    }
    present.rules_busy = true;
    present.rules_due = None;
    Some(present.visitor.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{BusReceiver, LocalBus};

    fn customer(id: &str, url: &str) -> Customer {
        let now = domain::now();
        Customer {
            id: id.into(),
            organization_id: "org".into(),
            visitor_id: id.into(),
            name: None,
            email: None,
            location: None,
            ip_address: None,
            current_page_url: Some(url.into()),
            current_page_title: None,
            referrer: None,
            user_agent: None,
            visits: 1,
            created_at: now,
            last_seen_at: now,
            external_id: None,
        }
    }

    #[test]
    fn a_visitor_leaves_only_after_the_grace_period() {
        let on_site = OnSite::new(Duration::from_millis(100));
        let watch = on_site.watch("org");
        on_site.arrive(customer("sam", "https://shop.test/"), None, None);
        on_site.depart("org", "sam");
        on_site.sweep();
        assert!(
            on_site.visitor("org", "sam").is_some(),
            "still in the grace period"
        );
        // A reload within the grace period: the same visit goes on.
        on_site.arrive(customer("sam", "https://shop.test/"), None, None);
        on_site.depart("org", "sam");
        std::thread::sleep(Duration::from_millis(150));
        let before = *watch.borrow();
        on_site.sweep();
        assert!(on_site.visitor("org", "sam").is_none());
        let changes = on_site.changes_since("org", before);
        assert_eq!(changes.left, vec!["sam".to_owned()]);
        assert!(changes.visitors.is_empty());
    }

    #[test]
    fn changes_since_a_version_are_read_at_once() {
        let on_site = OnSite::new(Duration::from_secs(5));
        on_site.arrive(customer("sam", "https://shop.test/"), None, None);
        let (_, version) = on_site.snapshot("org");
        for page in ["a", "b", "c"] {
            on_site.page_viewed(customer("sam", &format!("https://shop.test/{page}")));
        }
        let changes = on_site.changes_since("org", version);
        assert_eq!(changes.visitors.len(), 1);
        assert_eq!(
            changes.visitors[0].customer.current_page_url.as_deref(),
            Some("https://shop.test/c")
        );
        assert!(
            on_site
                .changes_since("org", changes.version)
                .visitors
                .is_empty()
        );
    }

    #[test]
    fn chats_decide_the_state_before_greetings() {
        let on_site = OnSite::new(Duration::from_secs(5));
        on_site.arrive(customer("sam", "https://shop.test/"), None, None);
        on_site.chat_changed("org", "sam", "c1", ChatStatus::Queued);
        assert_eq!(
            on_site.visitor("org", "sam").unwrap().state(),
            VisitorState::Queued
        );
        assert!(
            on_site.claim("org", "sam").is_none(),
            "rules leave chatting visitors alone"
        );
        on_site.chat_changed("org", "sam", "c1", ChatStatus::Active);
        assert_eq!(
            on_site.visitor("org", "sam").unwrap().state(),
            VisitorState::Chatting
        );
        on_site.chat_changed("org", "sam", "c1", ChatStatus::Closed);
        assert_eq!(
            on_site.visitor("org", "sam").unwrap().state(),
            VisitorState::Browsing
        );
        let claimed = on_site.claim("org", "sam").expect("a browsing visitor");
        assert!(on_site.claim("org", "sam").is_none(), "one look at a time");
        drop(claimed);
        assert!(
            on_site.claim("org", "sam").is_some(),
            "a look that never finished is over when dropped"
        );
    }

    /// One node of a cluster, with what it tells the others.
    struct Node {
        on_site: OnSite,
        told: BusReceiver,
    }

    fn node(name: &str, heartbeat: Duration) -> Node {
        let bus = Arc::new(LocalBus::new());
        let told = bus.subscribe(Topic::OnSite);
        let link = Link {
            node: name.into(),
            bus,
            heartbeat,
        };
        Node {
            on_site: OnSite::linked(Duration::from_millis(50), link),
            told,
        }
    }

    impl Node {
        /// Hands what this node told since the last call to `to`, as NATS would.
        fn relay(&mut self, to: &Node) {
            while let Ok(event) = self.told.try_recv() {
                if let BusEvent::OnSite(news) = &*event {
                    to.on_site.hear(news);
                }
            }
        }

        /// Loses what this node told since the last call.
        fn lose(&mut self) {
            while self.told.try_recv().is_ok() {}
        }

        fn page(&self, id: &str) -> Option<String> {
            self.on_site
                .visitor("org", id)
                .and_then(|v| v.customer.current_page_url)
        }

        /// Closes the visitor's last page here and lets the grace period pass.
        fn leave(&self, id: &str) {
            self.on_site.depart("org", id);
            std::thread::sleep(Duration::from_millis(60));
            self.on_site.sweep();
        }
    }

    #[test]
    fn visitors_whose_pages_are_elsewhere_follow_their_nodes_news() {
        let heartbeat = Duration::from_secs(5);
        let (a, mut b) = (node("a", heartbeat), node("b", heartbeat));
        b.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        b.relay(&a);
        assert_eq!(a.page("sam").as_deref(), Some("https://shop.test/"));
        assert!(
            a.on_site.claim("org", "sam").is_none(),
            "the rules look where the pages are"
        );

        let (_, before) = a.on_site.snapshot("org");
        b.on_site
            .page_viewed(customer("sam", "https://shop.test/shoes"));
        b.on_site
            .chat_changed("org", "sam", "c1", ChatStatus::Queued);
        b.relay(&a);
        let changes = a.on_site.changes_since("org", before);
        assert_eq!(changes.visitors.len(), 1);
        assert_eq!(a.page("sam").as_deref(), Some("https://shop.test/shoes"));
        assert_eq!(
            a.on_site.visitor("org", "sam").unwrap().state(),
            VisitorState::Queued
        );

        b.leave("sam");
        b.relay(&a);
        assert!(a.on_site.visitor("org", "sam").is_none());
        let changes = a.on_site.changes_since("org", changes.version);
        assert_eq!(changes.left, vec!["sam".to_owned()]);
        assert!(changes.visitors.is_empty());
    }

    #[test]
    fn a_page_view_stored_on_any_node_moves_the_visitor_where_their_pages_are() {
        let heartbeat = Duration::from_secs(5);
        let (a, mut b, mut c) = (
            node("a", heartbeat),
            node("b", heartbeat),
            node("c", heartbeat),
        );
        b.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        b.relay(&a);
        // The rules looked at the arrival; nothing is due until something changes.
        b.on_site.claim("org", "sam").unwrap().look_again_at(None);
        assert!(b.on_site.claim_due(domain::now()).is_empty());
        let viewed = customer("sam", "https://shop.test/cart");
        c.on_site.tell_page_viewed(&viewed);
        assert!(!c.on_site.page_viewed(viewed), "no pages on node c");
        c.relay(&b);
        assert_eq!(b.page("sam").as_deref(), Some("https://shop.test/cart"));
        assert_eq!(
            b.on_site.claim_due(domain::now()).len(),
            1,
            "node b's rules look at the new page"
        );
        b.relay(&a);
        assert_eq!(a.page("sam").as_deref(), Some("https://shop.test/cart"));
    }

    #[test]
    fn a_visitor_with_pages_on_two_nodes_is_one_visitor() {
        let heartbeat = Duration::from_secs(5);
        let (mut a, mut b) = (node("a", heartbeat), node("b", heartbeat));
        a.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        let since = a.on_site.visitor("org", "sam").unwrap().on_site_since;
        std::thread::sleep(Duration::from_millis(5));
        b.on_site
            .arrive(customer("sam", "https://shop.test/help"), None, None);
        b.relay(&a);
        a.relay(&b);
        for node in [&a, &b] {
            let (visitors, _) = node.on_site.snapshot("org");
            assert_eq!(visitors.len(), 1);
            assert_eq!(visitors[0].on_site_since, since, "since the first arrival");
            assert_eq!(
                visitors[0].customer.current_page_url.as_deref(),
                Some("https://shop.test/help"),
                "on the page opened last"
            );
        }
        // Their page on node a closes: still on the site, through node b.
        let (_, before) = a.on_site.snapshot("org");
        a.leave("sam");
        a.relay(&b);
        for node in [&a, &b] {
            assert!(node.on_site.visitor("org", "sam").is_some());
        }
        let changes = a.on_site.changes_since("org", before);
        assert!(changes.left.is_empty(), "{changes:?}");
        assert_eq!(changes.visitors.len(), 1);
    }

    #[test]
    fn a_silent_nodes_visitors_leave_after_missed_heartbeats() {
        let heartbeat = Duration::from_millis(30);
        let (a, mut b) = (node("a", heartbeat), node("b", heartbeat));
        b.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        b.relay(&a);
        let (_, before) = a.on_site.snapshot("org");
        // Heartbeats keep them on the list past the expiry (three periods).
        for _ in 0..6 {
            std::thread::sleep(heartbeat);
            b.on_site.send_heartbeat();
            b.relay(&a);
            a.on_site.sweep();
            assert!(a.on_site.visitor("org", "sam").is_some());
        }
        // Node b dies.
        std::thread::sleep(heartbeat * MISSED_HEARTBEATS + Duration::from_millis(10));
        a.on_site.sweep();
        assert!(a.on_site.visitor("org", "sam").is_none());
        assert_eq!(
            a.on_site.changes_since("org", before).left,
            vec!["sam".to_owned()]
        );
    }

    #[test]
    fn news_a_node_missed_is_sent_again_after_a_heartbeat() {
        let heartbeat = Duration::from_secs(5);
        let (mut a, mut b) = (node("a", heartbeat), node("b", heartbeat));
        b.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        b.on_site
            .page_viewed(customer("sam", "https://shop.test/shoes"));
        b.lose();
        assert!(a.on_site.visitor("org", "sam").is_none());
        b.on_site.send_heartbeat();
        b.relay(&a);
        a.relay(&b);
        b.relay(&a);
        assert_eq!(a.page("sam").as_deref(), Some("https://shop.test/shoes"));
        // Nothing more to ask for.
        b.on_site.send_heartbeat();
        b.relay(&a);
        assert!(a.told.try_recv().is_err());
    }

    #[test]
    fn a_node_ignores_its_own_news_and_late_news() {
        let heartbeat = Duration::from_secs(5);
        let (mut a, b) = (node("a", heartbeat), node("b", heartbeat));
        a.on_site
            .arrive(customer("sam", "https://shop.test/"), None, None);
        let shown = a.told.try_recv().unwrap();
        a.on_site
            .page_viewed(customer("sam", "https://shop.test/shoes"));
        a.relay(&b);
        // The first news arrives again, late: the newer page stays.
        let BusEvent::OnSite(shown) = &*shown else {
            panic!("{shown:?}");
        };
        b.on_site.hear(shown);
        assert_eq!(b.page("sam").as_deref(), Some("https://shop.test/shoes"));
        // Hearing its own news changes nothing: the visitor leaves when their page closes.
        a.on_site.hear(shown);
        a.leave("sam");
        assert!(a.on_site.visitor("org", "sam").is_none());
    }
}
