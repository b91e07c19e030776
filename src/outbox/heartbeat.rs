//! Whether this node's outbox workers are doing their work, for /readyz. Each worker beats a
//! [`Heartbeat`] (an atomic: no lock, no database) every time it has looked for due jobs with
//! room to take them; [`WorkerHealth`] holds the heartbeats of the node's workers. A worker is
//! in trouble when its task has ended while the server runs, or when it has not taken jobs for
//! a long time while some are due: stuck on a claim that never returns, or with every delivery
//! slot held by deliveries that never finish. Only then is the database asked whether jobs are
//! due, so a healthy node answers from memory.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain;
use crate::store::{DbError, DbResult};

/// The worker's task runs.
const RUNNING: u8 = 0;
/// Its task returned: the server is stopping.
const STOPPED: u8 = 1;
/// Its task ended in a panic.
const PANICKED: u8 = 2;

/// One worker's sign of life.
pub struct Heartbeat {
    /// What the beats count from.
    since: Instant,
    /// Milliseconds from `since` to the last time the worker looked for due jobs with room to
    /// take them.
    last_look: AtomicU64,
    /// [`RUNNING`], [`STOPPED`] or [`PANICKED`].
    state: AtomicU8,
}

impl Heartbeat {
    fn new() -> Self {
        Heartbeat {
            since: Instant::now(),
            last_look: AtomicU64::new(0),
            state: AtomicU8::new(RUNNING),
        }
    }

    /// The worker has just looked for due jobs with room to take them.
    pub fn beat(&self) {
        let millis = u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_look.store(millis, Ordering::Relaxed);
    }

    /// How long ago the worker last looked (since it started, if it never did).
    fn silent_for(&self) -> Duration {
        self.since.elapsed().saturating_sub(Duration::from_millis(
            self.last_look.load(Ordering::Relaxed),
        ))
    }

    /// Marks the worker's task as ended when dropped: held by the task for as long as it runs,
    /// so a panic that unwinds it is seen as well as a return.
    pub fn alive(self: &Arc<Self>) -> Alive {
        Alive(self.clone())
    }
}

/// Held by a worker's task while it runs; see [`Heartbeat::alive`].
#[must_use = "the worker counts as running only while this lives"]
pub struct Alive(Arc<Heartbeat>);

impl Drop for Alive {
    fn drop(&mut self) {
        let state = if std::thread::panicking() {
            PANICKED
        } else {
            STOPPED
        };
        self.0.state.store(state, Ordering::SeqCst);
    }
}

/// What a worker can say about its kind's jobs without taking any: when the next is due.
#[async_trait]
pub trait DueJobs: Send + Sync {
    /// When the earliest pending job is due, if any.
    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>>;
}

/// A worker as [`WorkerHealth`] watches it.
struct Watched {
    kind: &'static str,
    heartbeat: Arc<Heartbeat>,
    jobs: Arc<dyn DueJobs>,
}

/// The outbox workers of this node. Cheap to clone; every clone is the same list.
#[derive(Clone, Default)]
pub struct WorkerHealth {
    workers: Arc<Mutex<Vec<Watched>>>,
}

/// Why an outbox worker is not doing its work.
#[derive(Debug)]
pub enum WorkerTrouble {
    /// Its task ended; `panicked` when it did by a panic rather than the server stopping.
    Ended { kind: &'static str, panicked: bool },
    /// It has not taken jobs for `silent_for` though jobs have been due since `due_since`.
    Stalled {
        kind: &'static str,
        silent_for: Duration,
        due_since: DateTime<Utc>,
    },
    /// The database could not say whether its jobs are due.
    Unknown { kind: &'static str, error: DbError },
}

impl WorkerHealth {
    /// A heartbeat for a worker of `kind` whose due jobs `jobs` tells, watched from now on.
    pub fn watch(&self, kind: &'static str, jobs: Arc<dyn DueJobs>) -> Arc<Heartbeat> {
        let heartbeat = Arc::new(Heartbeat::new());
        self.workers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Watched {
                kind,
                heartbeat: heartbeat.clone(),
                jobs,
            });
        heartbeat
    }

    /// The first worker in trouble, if any: ended, or silent for longer than `stalled_after`
    /// while its jobs are due.
    pub async fn check(&self, stalled_after: Duration) -> Result<(), WorkerTrouble> {
        let silent: Vec<_> = {
            let workers = self
                .workers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            for worker in workers.iter() {
                match worker.heartbeat.state.load(Ordering::SeqCst) {
                    RUNNING => {}
                    state => {
                        return Err(WorkerTrouble::Ended {
                            kind: worker.kind,
                            panicked: state == PANICKED,
                        });
                    }
                }
            }
            workers
                .iter()
                .filter(|worker| worker.heartbeat.silent_for() > stalled_after)
                .map(|worker| (worker.kind, worker.heartbeat.clone(), worker.jobs.clone()))
                .collect()
        };
        for (kind, heartbeat, jobs) in silent {
            let next_due = jobs
                .next_due()
                .await
                .map_err(|error| WorkerTrouble::Unknown { kind, error })?;
            // Checked again after the query: the worker may have looked meanwhile.
            let silent_for = heartbeat.silent_for();
            if let Some(due_since) = next_due
                && due_since <= domain::now()
                && silent_for > stalled_after
            {
                return Err(WorkerTrouble::Stalled {
                    kind,
                    silent_for,
                    due_since,
                });
            }
        }
        Ok(())
    }
}
