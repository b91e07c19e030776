//! The chat timers: attention (red and grey), auto-transfer of unanswered chats, auto-close of
//! abandoned ones, queued chats whose customer has gone, and renewing the presence of
//! connected agents. One worker per node; every
//! action re-checks its condition inside its transaction, so several nodes can run it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::services::Services;
use crate::services::presence::LEASE;

/// Runs the timers every `interval` until shutdown.
pub struct ChatTimers {
    pub services: Arc<Services>,
    pub interval: Duration,
}

impl ChatTimers {
    /// Ticks until `shutdown` says stop.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let renew_every = Duration::from_secs((LEASE.num_seconds() / 3).max(1) as u64);
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
            if last_renewal.elapsed() >= renew_every {
                self.services.presence.renew().await;
                last_renewal = tokio::time::Instant::now();
            }
            self.tick().await;
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
