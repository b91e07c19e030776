//! The outbox worker: claims due push jobs, sends them with a cap on concurrent requests,
//! and records what the provider said. Several nodes can run one each: claiming marks jobs
//! SENDING under a lock (SKIP LOCKED on Postgres) that a crashed worker's jobs outlive.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::domain::{
    self, ChatStatus, NotificationKind, PushDevice, PushJob, PushJobStatus, SendOutcome,
};
use crate::metrics::Metrics;
use crate::push::Senders;
use crate::store::Database;

/// How long a claimed job is ours before another worker may take it over.
const CLAIM_LOCK: Duration = Duration::from_secs(60);
/// The longest the worker sleeps without looking at the outbox (other nodes' jobs, timers).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Sends the outbox until shutdown.
pub struct PushWorker {
    pub store: Arc<dyn Database>,
    pub senders: Arc<Senders>,
    pub metrics: Arc<Metrics>,
    /// Rung after a transaction queued pushes.
    pub wake: Arc<Notify>,
    /// Most requests to providers at once.
    pub concurrency: usize,
    /// Attempts before a job is dead.
    pub max_attempts: i32,
}

impl PushWorker {
    /// Runs until `shutdown` turns true; sends in flight then finish.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let this = Arc::new(self);
        let mut in_flight = JoinSet::new();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            let free = permits.available_permits();
            let mut claimed = 0;
            if free > 0 {
                let now = domain::now();
                match this
                    .store
                    .claim_push_jobs(now, now + CLAIM_LOCK, free as i64)
                    .await
                {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for (job, device) in jobs {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = this.clone();
                            in_flight.spawn(async move {
                                worker.deliver(job, device).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "could not claim push jobs"),
                }
            }
            if free > 0 && claimed == free {
                continue; // More may be due.
            }
            let wait = match this.store.next_push_due().await {
                Ok(Some(due)) => (due - domain::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(IDLE_POLL),
                _ => IDLE_POLL,
            };
            tokio::select! {
                () = this.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    async fn deliver(&self, job: PushJob, device: PushDevice) {
        let provider = Senders::provider(device.platform);
        if !self.still_wanted(&job).await {
            self.finish(&job, PushJobStatus::Cancelled, None).await;
            return;
        }
        let badge = self.store.unread_chats(&job.agent_id).await.unwrap_or(0);
        // Worded now, in the device's language: the job may have waited, and the agent may
        // have changed it since.
        let message = job.message.localized(device.locale.as_deref());
        let outcome = self
            .senders
            .send(&device, &message, u32::try_from(badge).unwrap_or(0))
            .await;
        let now = domain::now();
        match outcome {
            SendOutcome::Sent => {
                self.finish(&job, PushJobStatus::Sent, None).await;
                // Message pushes wait out their debounce on purpose; that is not latency.
                let enqueued = if job.kind == NotificationKind::NewMessage {
                    job.created_at
                        + chrono::Duration::from_std(domain::MESSAGE_DEBOUNCE).unwrap_or_default()
                } else {
                    job.created_at
                };
                self.metrics
                    .push_sent(provider, (now - enqueued).to_std().unwrap_or_default());
            }
            SendOutcome::Retry { after, reason } => {
                if job.attempts >= self.max_attempts {
                    tracing::warn!(job = %job.id, %reason, "push gave up after {} attempts", job.attempts);
                    self.finish(&job, PushJobStatus::Dead, Some(&reason)).await;
                    self.metrics.push_failed(provider);
                    return;
                }
                let jitter = 0.5 + f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
                let delay = domain::retry_delay(job.attempts, after, jitter);
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                if let Err(err) = self
                    .store
                    .finish_push_job(&job.id, PushJobStatus::Pending, next, Some(&reason), now)
                    .await
                {
                    tracing::warn!(error = %err, "could not reschedule a push");
                }
                self.metrics.push_retried(provider);
            }
            SendOutcome::Failed { reason } => {
                tracing::warn!(job = %job.id, %reason, "push refused");
                self.finish(&job, PushJobStatus::Dead, Some(&reason)).await;
                self.metrics.push_failed(provider);
            }
            SendOutcome::TokenInvalid { reason } => {
                tracing::info!(device = %device.id, %reason, "push token disabled");
                if let Err(err) = self
                    .store
                    .disable_push_device(&device.id, &reason, now)
                    .await
                {
                    tracing::warn!(error = %err, "could not disable a push device");
                }
                self.finish(&job, PushJobStatus::Dead, Some(&reason)).await;
                self.metrics.push_failed(provider);
                self.metrics.push_token_disabled(provider);
            }
        }
    }

    /// A message push is moot once the agent is back live or has answered.
    async fn still_wanted(&self, job: &PushJob) -> bool {
        if job.kind != NotificationKind::NewMessage {
            return true;
        }
        let Some(chat_id) = &job.chat_id else {
            return true;
        };
        if self
            .store
            .agent_live(&job.agent_id, domain::now())
            .await
            .unwrap_or(false)
        {
            return false;
        }
        match self.store.chat(&job.organization_id, chat_id).await {
            Ok(chat) => {
                chat.status == ChatStatus::Active
                    && chat.assignee_id.as_deref() == Some(job.agent_id.as_str())
                    && chat.awaiting_reply_since.is_some()
            }
            Err(_) => false,
        }
    }

    async fn finish(&self, job: &PushJob, status: PushJobStatus, error: Option<&str>) {
        let now = domain::now();
        if let Err(err) = self
            .store
            .finish_push_job(&job.id, status, now, error, now)
            .await
        {
            tracing::warn!(job = %job.id, error = %err, "could not record a push's fate");
        }
    }
}
