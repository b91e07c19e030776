//! The visitors on the site: who is browsing now, what they look at, and greetings an agent
//! sends them. `watch_visitors` keeps the whole list for the app, applying the server's
//! coalesced changes, and reconnects by itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use graphql_client::Response;

use crate::error::SdkError;
use crate::events::ConnectionState;
use crate::models::{Page, opt_time, time};
use crate::ops::{self, visitors_changed};
use crate::shared::Inner;
use crate::stream::{Ended, Live, Reconnect, Socket, open, subscription_error};
use crate::transport::graphql_error;

/// What a visitor on the site is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VisitorState {
    /// Looking around.
    Browsing,
    /// Shown a greeting they have not answered yet.
    Invited,
    /// Waiting in the queue.
    Queued,
    /// In a chat.
    Chatting,
    /// A state newer than this SDK.
    Unknown,
}

/// A greeting sent to a visitor, by an agent or a rule.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Greeting {
    pub id: String,
    pub text: String,
    /// The agent it is sent as.
    pub agent_name: Option<String>,
    pub agent_id: Option<String>,
    /// The greeting rule that sent it; none when an agent did.
    pub rule_id: Option<String>,
    pub created_at: SystemTime,
    pub shown_at: Option<SystemTime>,
    pub answered_at: Option<SystemTime>,
    pub dismissed_at: Option<SystemTime>,
    /// The chat that answered it.
    pub chat_id: Option<String>,
}

/// Someone on the site now.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Visitor {
    /// The customer's id: `send_greeting` takes it.
    pub customer_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub current_page: Option<Page>,
    /// Since when they have been on the site; count the time on site from it.
    pub on_site_since: SystemTime,
    /// Since when they have been on the current page.
    pub page_since: SystemTime,
    pub visits: i64,
    pub referrer: Option<String>,
    pub location: Option<String>,
    pub state: VisitorState,
    /// Their open chat, when you may see it.
    pub chat_id: Option<String>,
    /// The latest greeting of this stay.
    pub greeting: Option<Greeting>,
}

/// What a visitors watcher hears. Called on the SDK's threads: hop to the main thread before
/// touching the UI.
#[uniffi::export(callback_interface)]
pub trait VisitorsListener: Send + Sync {
    /// Everyone on the site now, longest there first: show this list instead of the last.
    fn on_visitors(&self, visitors: Vec<Visitor>);
    fn on_connection_state(&self, state: ConnectionState);
}

macro_rules! visitor_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::VisitorState> for VisitorState {
                fn from(value: ops::$module::VisitorState) -> Self {
                    use ops::$module::VisitorState as S;
                    match value {
                        S::Browsing => VisitorState::Browsing,
                        S::Invited => VisitorState::Invited,
                        S::Queued => VisitorState::Queued,
                        S::Chatting => VisitorState::Chatting,
                        S::Other(_) => VisitorState::Unknown,
                    }
                }
            }

            impl From<ops::$module::VisitorFields> for Visitor {
                fn from(v: ops::$module::VisitorFields) -> Self {
                    Visitor {
                        customer_id: v.customer.id,
                        name: v.customer.name,
                        email: v.customer.email,
                        current_page: v.current_page.map(|p| Page {
                            url: p.url,
                            title: p.title,
                        }),
                        on_site_since: time(&v.on_site_since),
                        page_since: time(&v.page_since),
                        visits: v.visits,
                        referrer: v.referrer,
                        location: v.location,
                        state: v.state.into(),
                        chat_id: v.chat.map(|c| c.id),
                        greeting: v.greeting.map(Into::into),
                    }
                }
            }
        )*
    };
}

visitor_from!(visitors_on_site, visitors_changed);

macro_rules! greeting_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::GreetingFields> for Greeting {
                fn from(g: ops::$module::GreetingFields) -> Self {
                    Greeting {
                        id: g.id,
                        text: g.text,
                        agent_name: g.agent_name,
                        agent_id: g.agent_id,
                        rule_id: g.rule_id,
                        created_at: time(&g.created_at),
                        shown_at: opt_time(g.shown_at),
                        answered_at: opt_time(g.answered_at),
                        dismissed_at: opt_time(g.dismissed_at),
                        chat_id: g.chat_id,
                    }
                }
            }

        )*
    };
}

greeting_from!(visitors_on_site, visitors_changed, send_greeting);

/// Who is on the site, kept from the server's snapshot and changes.
#[derive(Default)]
struct OnSite {
    visitors: HashMap<String, Visitor>,
}

impl OnSite {
    /// Applies one `visitorsChanged` item; a snapshot replaces everything.
    fn apply(&mut self, snapshot: bool, changed: Vec<Visitor>, left: Vec<String>) {
        if snapshot {
            self.visitors.clear();
        }
        for id in left {
            self.visitors.remove(&id);
        }
        for visitor in changed {
            self.visitors.insert(visitor.customer_id.clone(), visitor);
        }
    }

    /// Longest on the site first.
    fn list(&self) -> Vec<Visitor> {
        let mut list: Vec<Visitor> = self.visitors.values().cloned().collect();
        list.sort_by(|a, b| {
            a.on_site_since
                .cmp(&b.on_site_since)
                .then_with(|| a.customer_id.cmp(&b.customer_id))
        });
        list
    }
}

/// The watcher's life: connect, follow the changes, and on any loss wait and start again
/// from a new snapshot (nothing to resume: the list is the state).
pub(crate) async fn run(inner: Arc<Inner>, listener: Arc<dyn VisitorsListener>) {
    let report = |state| listener.on_connection_state(state);
    let mut reconnect = Reconnect::new();
    loop {
        let Some(token) = reconnect.token(&inner, &report).await else {
            return;
        };
        let query = ops::request_body::<ops::VisitorsChanged>(visitors_changed::Variables);
        let ended = match open(&inner, &token, "visitors", query).await {
            Ok(mut socket) => {
                report(ConnectionState::Connected);
                follow(&inner, &*listener, &mut socket).await
            }
            Err(ended) => ended,
        };
        if !reconnect.after(&inner, &report, &token, ended).await {
            return;
        }
    }
}

/// Reads a connected watcher until it ends, handing the whole list on after each change.
async fn follow(inner: &Inner, listener: &dyn VisitorsListener, socket: &mut Socket) -> Ended {
    let lost = |reason: String| Ended::Lost { reason, live: true };
    let mut on_site = OnSite::default();
    let mut live = Live::new(inner).await;
    loop {
        let message = match live.next(inner, socket).await {
            Ok(message) => message,
            Err(ended) => return ended,
        };
        match message["type"].as_str() {
            Some("next") => {
                let response: Response<visitors_changed::ResponseData> =
                    match serde_json::from_value(message["payload"].clone()) {
                        Ok(response) => response,
                        Err(err) => return lost(format!("unreadable visitors: {err}")),
                    };
                if let Some(error) = response.errors.as_ref().and_then(|e| e.first()) {
                    return match graphql_error(error) {
                        SdkError::Unauthenticated { .. } => Ended::Unauthorized,
                        err => lost(format!("the visitors could not be read: {err}")),
                    };
                }
                let Some(data) = response.data else { continue };
                let change = data.visitors_changed;
                on_site.apply(
                    change.snapshot,
                    change.visitors.into_iter().map(Into::into).collect(),
                    change.left,
                );
                listener.on_visitors(on_site.list());
            }
            Some("error") => {
                return match subscription_error(&message) {
                    Some(SdkError::Unauthenticated { .. }) => Ended::Unauthorized,
                    other => lost(format!("the subscription failed: {other:?}")),
                };
            }
            Some("complete") => return Ended::Unauthorized,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn visitor(id: &str, since_secs: u64) -> Visitor {
        Visitor {
            customer_id: id.into(),
            name: None,
            email: None,
            current_page: None,
            on_site_since: SystemTime::UNIX_EPOCH + Duration::from_secs(since_secs),
            page_since: SystemTime::UNIX_EPOCH + Duration::from_secs(since_secs),
            visits: 1,
            referrer: None,
            location: None,
            state: VisitorState::Browsing,
            chat_id: None,
            greeting: None,
        }
    }

    #[test]
    fn changes_update_the_list_and_a_snapshot_replaces_it() {
        let mut on_site = OnSite::default();
        on_site.apply(true, vec![visitor("b", 20), visitor("a", 10)], vec![]);
        let ids = |list: Vec<Visitor>| -> Vec<String> {
            list.into_iter().map(|v| v.customer_id).collect()
        };
        assert_eq!(ids(on_site.list()), ["a", "b"], "longest on the site first");

        let mut moved = visitor("b", 20);
        moved.state = VisitorState::Chatting;
        on_site.apply(false, vec![moved, visitor("c", 30)], vec!["a".into()]);
        let list = on_site.list();
        assert_eq!(ids(list.clone()), ["b", "c"]);
        assert_eq!(list[0].state, VisitorState::Chatting);

        on_site.apply(true, vec![visitor("d", 5)], vec![]);
        assert_eq!(ids(on_site.list()), ["d"]);
    }
}
