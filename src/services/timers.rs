//! The chat timers: attention (red and grey), auto-transfer of unanswered chats, auto-close of
//! abandoned ones, and queued chats whose customer has gone. Once per cluster: the worker runs
//! on the node that holds the `chat-timers` lease (see `services::leases`); every action
//! re-checks its condition inside its transaction all the same. Renewing the presence of this
//! node's connected agents is each node's own ([`crate::services::presence::Renewal`]).
//!
//! The worker sleeps until the store's next timer deadline, and looks again (at most once an
//! interval) when a change on this node rings the chat service's timer bell. Changes made on
//! other nodes ring theirs, not this one's, so it also looks at least every
//! `look_again_after`: [`LOOK_AGAIN_AFTER`] on a database of one node, about a second where
//! several nodes share one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::domain;
use crate::services::Services;

/// The longest the worker sleeps without reading the next deadline again.
pub const LOOK_AGAIN_AFTER: Duration = Duration::from_secs(30);

/// Runs the timers at their deadlines until shutdown.
pub struct ChatTimers {
    pub services: Arc<Services>,
    /// The shortest time between two passes over the chats: a deadline whose action found
    /// nothing to do (an unanswered chat nobody else has room for) stays in the past, and
    /// would otherwise be retried at once.
    pub interval: Duration,
    /// The longest sleep without reading the next deadline again: changes on other nodes do
    /// not ring this node's bell.
    pub look_again_after: Duration,
}

impl ChatTimers {
    /// Runs until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.services.chats.timer_wake();
        // The first pass may run at once: deadlines passed while the server was down.
        let mut earliest_pass = Instant::now();
        let mut next_read = Instant::now();
        loop {
            // Busy hours ring the bell with every change: the deadline is read at most once
            // an interval, not once a message.
            if let Some(wait) = next_read.checked_duration_since(Instant::now()) {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            // Armed before the deadline is read, so a change committed meanwhile is not missed.
            let rung = wake.notified();
            tokio::pin!(rung);
            rung.as_mut().enable();
            let now = Instant::now();
            next_read = now + self.interval;
            let due = match self.services.store.next_timer_due(domain::now()).await {
                Ok(due) => due.map(|at| now + until(at)),
                Err(err) => {
                    tracing::warn!(error = %err, "chat timers could not read the next deadline");
                    Some(now + self.interval)
                }
            };
            if let Some(due) = due
                && due <= now
                && earliest_pass <= now
            {
                self.tick().await;
                earliest_pass = Instant::now() + self.interval;
                continue;
            }
            let wake_at = next_wake(now, due, earliest_pass, self.look_again_after);
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep_until(wake_at) => {}
                () = &mut rung => {}
            }
        }
    }

    /// One pass over the active chats.
    pub async fn tick(&self) {
        let chats = match self.services.store.active_chats().await {
            Ok(chats) => chats,
            Err(err) => {
                tracing::warn!(error = %err, "chat timers could not read active chats");
                return;
            }
        };
        for (chat, settings) in chats {
            if let Err(err) = self.services.chats.apply_timers(&chat, &settings).await {
                tracing::warn!(chat = %chat.id, error = %err, "chat timer failed");
            }
        }
        if let Err(err) = self.services.chats.expire_abandoned_queue().await {
            tracing::warn!(error = %err, "could not clear abandoned chats from the queue");
        }
    }
}

/// How long from now until `at` by the wall clock; zero when it has passed.
fn until(at: chrono::DateTime<chrono::Utc>) -> Duration {
    (at - domain::now()).to_std().unwrap_or_default()
}

/// When the worker next wakes: at the next deadline (not before the next pass may run), or
/// after `look_again_after`, whichever is first.
fn next_wake(
    now: Instant,
    due: Option<Instant>,
    earliest_pass: Instant,
    look_again_after: Duration,
) -> Instant {
    let mut wake_at = now + look_again_after;
    if let Some(due) = due {
        wake_at = wake_at.min(due.max(earliest_pass));
    }
    wake_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_at_the_next_deadline_but_not_before_the_next_pass_may_run() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(2);
        assert_eq!(next_wake(now, Some(soon), now, LOOK_AGAIN_AFTER), soon);
        let after_pass = now + Duration::from_secs(3);
        assert_eq!(
            next_wake(now, Some(soon), after_pass, LOOK_AGAIN_AFTER),
            after_pass
        );
        assert_eq!(
            next_wake(now, None, now, LOOK_AGAIN_AFTER),
            now + LOOK_AGAIN_AFTER
        );
        let far = now + Duration::from_secs(3600);
        assert_eq!(
            next_wake(now, Some(far), now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
