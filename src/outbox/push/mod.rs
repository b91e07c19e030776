//! Pushes, the first outbox kind: [`PushJobs`] delivers a push job to its device through the
//! device's provider, APNs (through a2), FCM (HTTP v1) or a browser's push service (Web Push). What goes out and when is decided by
//! the chat use cases, which write push jobs in the transaction of the event that causes them;
//! claiming, retries and shutdown are the [`outbox` engine](crate::outbox::Worker)'s.

pub mod apns;
pub mod fcm;
pub mod webpush;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    self, ChatStatus, NotificationKind, Platform, PushDevice, PushJob, PushJobStatus, PushMessage,
    SendOutcome,
};
use crate::metrics::Metrics;
use crate::outbox::{Fate, Job, JobKind, Outcome};
use crate::store::{Database, DbResult};

/// The configured providers. A platform without one gets its jobs marked dead with a reason,
/// so an admin sees what is missing.
#[derive(Default)]
pub struct Senders {
    pub apns: Option<apns::ApnsSender>,
    pub fcm: Option<fcm::FcmSender>,
    /// Always there in a running server: its VAPID key is generated when none is configured.
    pub web_push: Option<webpush::WebPushSender>,
}

impl Senders {
    /// Sends one push to one device through its platform's provider.
    pub async fn send(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> SendOutcome {
        match device.platform {
            Platform::Ios => match &self.apns {
                Some(apns) => apns.send(device, message, badge).await,
                None => SendOutcome::Failed {
                    reason: "APNs is not configured (SWITCHBOARD_APNS_KEY_PATH)".into(),
                },
            },
            Platform::Android => match &self.fcm {
                Some(fcm) => fcm.send(device, message, badge).await,
                None => SendOutcome::Failed {
                    reason: "FCM is not configured (SWITCHBOARD_FCM_SERVICE_ACCOUNT)".into(),
                },
            },
            Platform::Web => match &self.web_push {
                Some(web_push) => web_push.send(device, message, badge).await,
                None => SendOutcome::Failed {
                    reason: "Web Push is not configured".into(),
                },
            },
        }
    }

    /// The provider's name for metrics.
    pub fn provider(platform: Platform) -> &'static str {
        match platform {
            Platform::Ios => "apns",
            Platform::Android => "fcm",
            Platform::Web => "webpush",
        }
    }
}

/// A claimed push job and the device it goes to.
pub struct DevicePush {
    pub job: PushJob,
    pub device: PushDevice,
}

impl Job for DevicePush {
    fn id(&self) -> &str {
        &self.job.id
    }

    fn attempts(&self) -> i32 {
        self.job.attempts
    }
}

/// How a push job finished well.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDone {
    /// The provider accepted it.
    Sent,
    /// Moot by the time it was due: not sent.
    Cancelled,
}

/// The push kind of outbox job: the `push_jobs` table, sent through [`Senders`].
pub struct PushJobs {
    pub store: Arc<dyn Database>,
    pub senders: Arc<Senders>,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl JobKind for PushJobs {
    type Job = DevicePush;
    type Done = PushDone;
    const NAME: &'static str = "push";

    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        self.store.next_push_due().await
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<DevicePush>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let claimed = self.store.claim_push_jobs(now, locked_until, limit).await?;
        Ok(claimed
            .into_iter()
            .map(|(job, device)| DevicePush { job, device })
            .collect())
    }

    async fn deliver(&self, push: &DevicePush) -> Outcome<PushDone> {
        let DevicePush { job, device } = push;
        if !self.still_wanted(job).await {
            return Outcome::Done(PushDone::Cancelled);
        }
        let badge = self.store.unread_chats(&job.agent_id).await.unwrap_or(0);
        // Worded now, in the device's language: the job may have waited, and the agent may
        // have changed it since.
        let message = job.message.localized(device.locale.as_deref());
        let outcome = self
            .senders
            .send(device, &message, u32::try_from(badge).unwrap_or(0))
            .await;
        match outcome {
            SendOutcome::Sent => Outcome::Done(PushDone::Sent),
            SendOutcome::Retry { after, reason } => Outcome::Retry { after, reason },
            SendOutcome::Failed { reason } => Outcome::Failed { reason },
            SendOutcome::TokenInvalid { reason } => {
                tracing::info!(device = %device.id, %reason, "push token disabled");
                if let Err(err) = self
                    .store
                    .disable_push_device(&device.id, &reason, domain::now())
                    .await
                {
                    tracing::warn!(error = %err, "could not disable a push device");
                }
                self.metrics
                    .push_token_disabled(Senders::provider(device.platform));
                Outcome::Failed { reason }
            }
        }
    }

    async fn finish(
        &self,
        push: &DevicePush,
        fate: &Fate<PushDone>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let (status, next_attempt_at, error) = match fate {
            Fate::Done(PushDone::Sent) => (PushJobStatus::Sent, at, None),
            Fate::Done(PushDone::Cancelled) => (PushJobStatus::Cancelled, at, None),
            Fate::Retry { at: next, reason } => (PushJobStatus::Pending, *next, Some(reason)),
            Fate::Dead { reason } => (PushJobStatus::Dead, at, Some(reason)),
        };
        self.store
            .finish_push_job(
                &push.job.id,
                status,
                next_attempt_at,
                error.map(String::as_str),
                at,
            )
            .await
    }

    fn observe(&self, push: &DevicePush, fate: &Fate<PushDone>, at: DateTime<Utc>) {
        let provider = Senders::provider(push.device.platform);
        match fate {
            Fate::Done(PushDone::Sent) => {
                // Message pushes wait out their debounce on purpose; that is not latency.
                let job = &push.job;
                let enqueued = if job.kind == NotificationKind::NewMessage {
                    job.created_at
                        + chrono::Duration::from_std(domain::MESSAGE_DEBOUNCE).unwrap_or_default()
                } else {
                    job.created_at
                };
                self.metrics
                    .push_sent(provider, (at - enqueued).to_std().unwrap_or_default());
            }
            Fate::Done(PushDone::Cancelled) => {}
            Fate::Retry { .. } => self.metrics.push_retried(provider),
            Fate::Dead { .. } => self.metrics.push_failed(provider),
        }
    }
}

impl PushJobs {
    /// A message push is moot once the agent is back live or has answered; a note's (a
    /// whisper) once the agent is back live or the chat is no longer theirs.
    async fn still_wanted(&self, job: &PushJob) -> bool {
        if job.kind != NotificationKind::NewMessage {
            return true;
        }
        let note = job
            .message
            .wording
            .as_ref()
            .is_some_and(|w| matches!(w.title, domain::Wording::NoteFrom { .. }));
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
                    && (note || chat.awaiting_reply_since.is_some())
            }
            Err(_) => false,
        }
    }
}
