//! Who is on the site now, on this node: a visitor arrives when a page of theirs opens the
//! `visitorEvents` subscription, and leaves a grace period after their last page closed, so
//! a reload or a click to the next page does not make them flap. Kept in memory only: a
//! heartbeat costs no database write, and nothing runs per visitor between changes (one
//! sweep for the whole node removes those who left).
//!
//! Each organization's visitors carry a version that every change bumps; agents' streams
//! watch it and read what changed since the version they last saw, so any number of changes
//! between two looks cost one update.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::domain::{self, Chat, ChatStatus, Customer, Greeting, Visitor, VisitorState};

/// How long a departure stays in the list of who left, for agents' streams to read: far
/// longer than any stream waits between two looks.
const LEFT_KEPT: Duration = Duration::from_secs(60);

/// One visitor on the site.
struct Present {
    visitor: Visitor,
    /// Their open pages (visitorEvents subscriptions) on this node.
    pages: usize,
    /// When their last page closed; they leave once the grace period has passed.
    leaving_since: Option<Instant>,
    /// The organization's version when they last changed.
    version: u64,
    /// When greeting rules should look at them again; `None`: when something changes.
    rules_due: Option<DateTime<Utc>>,
    /// Greeting rules are looking at them now: another look waits its turn.
    rules_busy: bool,
}

/// One organization's visitors on the site.
struct Site {
    visitors: HashMap<String, Present>,
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
            left: Vec::new(),
            version: 0,
            changed: watch::channel(0).0,
        }
    }

    /// Bumps the version for `customer_id`'s change and wakes the watchers.
    fn touch(&mut self, customer_id: &str) {
        self.version += 1;
        if let Some(present) = self.visitors.get_mut(customer_id) {
            present.version = self.version;
        }
        self.changed.send_replace(self.version);
    }
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

/// The visitors on the site, per organization, on this node.
pub struct OnSite {
    sites: Mutex<HashMap<String, Site>>,
    /// How long a visitor whose last page closed still counts as on the site.
    grace: Duration,
}

impl OnSite {
    /// Nobody on the site yet.
    pub fn new(grace: Duration) -> OnSite {
        OnSite {
            sites: Mutex::new(HashMap::new()),
            grace,
        }
    }

    fn sites(&self) -> std::sync::MutexGuard<'_, HashMap<String, Site>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
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
                        rules_due: Some(now),
                        rules_busy: false,
                    },
                );
            }
        }
        site.touch(&customer_id);
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
    /// changed). False when they are not on the site.
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
        site.touch(&customer_id);
        true
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
        site.touch(customer_id);
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
        site.touch(&customer_id);
    }

    /// The customer, if on the site.
    pub fn visitor(&self, organization_id: &str, customer_id: &str) -> Option<Visitor> {
        self.sites()
            .get(organization_id)?
            .visitors
            .get(customer_id)
            .map(|p| p.visitor.clone())
    }

    /// Everyone on the organization's site, longest there first, with the version they are
    /// as of.
    pub fn snapshot(&self, organization_id: &str) -> (Vec<Visitor>, u64) {
        let sites = self.sites();
        let Some(site) = sites.get(organization_id) else {
            return (Vec::new(), 0);
        };
        let mut visitors: Vec<Visitor> =
            site.visitors.values().map(|p| p.visitor.clone()).collect();
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
            .visitors
            .values()
            .filter(|p| p.version > version)
            .map(|p| p.visitor.clone())
            .collect();
        let mut left: Vec<String> = site
            .left
            .iter()
            .filter(|(id, at, _)| *at > version && !site.visitors.contains_key(id))
            .map(|(id, _, _)| id.clone())
            .collect();
        left.dedup();
        Changes {
            visitors,
            left,
            version: site.version,
        }
    }

    /// Removes the visitors whose grace period has passed, and forgets organizations nobody
    /// is on or watching.
    pub fn sweep(&self) {
        let now = Instant::now();
        let grace = self.grace;
        let mut sites = self.sites();
        for site in sites.values_mut() {
            let gone: Vec<String> = site
                .visitors
                .iter()
                .filter(|(_, p)| p.leaving_since.is_some_and(|since| since + grace <= now))
                .map(|(id, _)| id.clone())
                .collect();
            site.left
                .retain(|(_, _, at)| now.saturating_duration_since(*at) < LEFT_KEPT);
            if gone.is_empty() {
                continue;
            }
            site.version += 1;
            for id in gone {
                site.visitors.remove(&id);
                site.left.push((id, site.version, now));
            }
            site.changed.send_replace(site.version);
        }
        sites.retain(|_, site| {
            !site.visitors.is_empty() || !site.left.is_empty() || site.changed.receiver_count() > 0
        });
    }

    /// Asks the greeting rules to look at every visitor of the organization again (its rules
    /// changed).
    pub fn look_again(&self, organization_id: &str) {
        let now = domain::now();
        if let Some(site) = self.sites().get_mut(organization_id) {
            for present in site.visitors.values_mut() {
                present.rules_due = Some(now);
            }
        }
    }

    /// Claims the customer for a look by the greeting rules, if they are on the site with a
    /// page open, browsing, and nobody else is looking.
    pub fn claim(&self, organization_id: &str, customer_id: &str) -> Option<Claimed<'_>> {
        let mut sites = self.sites();
        let present = sites
            .get_mut(organization_id)?
            .visitors
            .get_mut(customer_id)?;
        claim(present).map(|visitor| Claimed::new(self, visitor))
    }

    /// Claims every visitor the greeting rules should look at again by `now`.
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
}
