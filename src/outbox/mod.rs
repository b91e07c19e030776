//! The durable outbox: jobs written in the transaction of the event that causes them, and one
//! worker engine that delivers them. The engine ([`Worker`]) owns everything that is the same
//! for every kind of job: waking on a [`Notify`](tokio::sync::Notify) or at the next due time,
//! claiming due jobs under a lock, a cap on deliveries at once, and each job's fate (done, again
//! after a backoff, or given up after too many attempts), then a clean stop. A [`JobKind`] owns
//! the rest: its table, how one job is delivered, and what it counts.
//!
//! The kinds: pushes (APNs, FCM, Web Push) in [`push`], webhook deliveries in [`webhooks`],
//! Messenger's Send API calls in [`messenger`] and emails in [`email`]. Another kind is one
//! file implementing
//! [`JobKind`] over its store methods, and one more [`Worker`] started in [`crate::App::serve`].
//!
//! Each worker beats a heartbeat when it looks for due jobs; [`WorkerHealth`] tells /readyz
//! which worker, if any, has stopped taking them.

pub mod email;
mod heartbeat;
pub mod messenger;
pub mod push;
pub mod webhooks;
mod worker;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use heartbeat::{Alive, DueJobs, Heartbeat, WorkerHealth, WorkerTrouble};
pub use worker::Worker;

use crate::store::DbResult;

/// One claimed job, as the engine sees it.
pub trait Job: Send + Sync + 'static {
    /// Names the job in logs.
    fn id(&self) -> &str;
    /// Attempts so far, this one included: claiming a job counts an attempt, so a job whose
    /// worker died mid-delivery does not retry for ever.
    fn attempts(&self) -> i32;
}

/// What one delivery attempt came to, as the kind reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<D> {
    /// Finished for good, and how (sent, or no longer wanted).
    Done(D),
    /// A passing failure (5xx, network, throttling): try again, not before `after` if the
    /// receiver said so.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// This job will never go through: give it up now.
    Failed { reason: String },
}

/// What becomes of a job after an attempt, as the engine decides it from the [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate<D> {
    /// Finished for good.
    Done(D),
    /// Pending again, due at `at`.
    Retry { at: DateTime<Utc>, reason: String },
    /// Given up: refused, or out of attempts.
    Dead { reason: String },
}

/// A kind of outbox job: where its jobs are stored and how one is delivered. The engine calls
/// `claim`, then `deliver` and `finish` once per claimed job, then `observe`.
#[async_trait]
pub trait JobKind: Send + Sync + 'static {
    /// A claimed job, with whatever delivering it needs.
    type Job: Job;
    /// How a job finished well, for the kind's record and counters.
    type Done: Send + Sync + 'static;
    /// The kind in logs.
    const NAME: &'static str;

    /// When the next pending job is due, if any.
    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>>;
    /// Takes up to `limit` jobs due at `now` (or whose previous claim expired), locked until
    /// `locked_until` so that no other worker takes them meanwhile.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<Self::Job>>;
    /// Makes one attempt.
    async fn deliver(&self, job: &Self::Job) -> Outcome<Self::Done>;
    /// Records the job's fate, decided at `at`, and releases its lock.
    async fn finish(
        &self,
        job: &Self::Job,
        fate: &Fate<Self::Done>,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Counts a finished attempt (the metrics hook); whether `finish` could record it or not.
    fn observe(&self, _job: &Self::Job, _fate: &Fate<Self::Done>, _at: DateTime<Utc>) {}
}

/// How long to wait before attempt `attempt` + 1 (1-based) after a passing failure:
/// exponential from 2 s, capped at 10 minutes, times `jitter` in [0.5, 1.5) so that a burst of
/// failures does not retry in lockstep; the receiver's Retry-After wins when longer.
pub fn retry_delay(attempt: i32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    const BASE_SECONDS: f64 = 2.0;
    const CAP_SECONDS: f64 = 600.0;
    let exponent = attempt.clamp(1, 20) - 1;
    let backoff = (BASE_SECONDS * 2f64.powi(exponent)).min(CAP_SECONDS) * jitter.clamp(0.5, 1.5);
    let backoff = Duration::from_secs_f64(backoff);
    match retry_after {
        Some(after) => after.max(backoff),
        None => backoff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_with_jitter_and_honour_retry_after() {
        assert_eq!(retry_delay(1, None, 1.0), Duration::from_secs(2));
        assert_eq!(retry_delay(2, None, 1.0), Duration::from_secs(4));
        assert_eq!(retry_delay(4, None, 1.0), Duration::from_secs(16));
        assert_eq!(retry_delay(30, None, 1.0), Duration::from_secs(600));
        assert_eq!(retry_delay(1, None, 0.5), Duration::from_secs(1));
        assert_eq!(retry_delay(1, None, 0.0), Duration::from_secs(1));
        assert_eq!(retry_delay(2, None, 9.0), Duration::from_secs(6));
        assert_eq!(retry_delay(0, None, 1.0), Duration::from_secs(2));
        assert_eq!(
            retry_delay(1, Some(Duration::from_secs(60)), 1.0),
            Duration::from_secs(60)
        );
        assert_eq!(
            retry_delay(10, Some(Duration::from_secs(60)), 1.0),
            Duration::from_secs(600)
        );
    }
}
