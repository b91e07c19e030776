//! The visitors on the site across the nodes of a cluster (NATS only): the
//! [`VisitorsAcrossNodes`] worker takes the other nodes' news of their visitors into this
//! node's lists and sends this node's heartbeat. The news itself (what is told when) is
//! `on_site`'s.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::VisitorService;
use crate::bus::{BusEvent, BusStatus, Topic};

/// Hears the other nodes' news of the visitors on the site and lists this node's visitors
/// for them every heartbeat period, until shutdown. One per node, with NATS only.
pub struct VisitorsAcrossNodes {
    visitors: Arc<VisitorService>,
    heartbeat: Duration,
}

impl VisitorService {
    /// The worker that keeps the visitors on the site in step with the other nodes; `None`
    /// on a single node (the in-process bus), which has nobody to tell or hear.
    pub fn across_nodes_worker(self: &Arc<Self>) -> Option<VisitorsAcrossNodes> {
        (self.bus.status() != BusStatus::Local).then(|| VisitorsAcrossNodes {
            visitors: self.clone(),
            heartbeat: self.settings.heartbeat,
        })
    }
}

impl VisitorsAcrossNodes {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let on_site = &self.visitors.on_site;
        let mut news = self.visitors.bus.subscribe(Topic::OnSite);
        // The first beat at once: a node that starts (again) is known without delay, and the
        // others' first beats bring it their visitors.
        let mut beat = tokio::time::interval(self.heartbeat);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = beat.tick() => on_site.send_heartbeat(),
                received = news.recv() => match received {
                    Ok(event) => {
                        if let BusEvent::OnSite(news) = &*event {
                            on_site.hear(news);
                        }
                    }
                    // What was missed, the next heartbeats make up for: a node asks again
                    // for visitors whose revisions it does not have.
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "this node fell behind the news of visitors");
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}
