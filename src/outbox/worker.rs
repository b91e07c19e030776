//! The worker engine: claims due jobs of one kind, delivers them with a cap on deliveries at
//! once, and records each one's fate. Several nodes can run one each: claiming marks jobs
//! taken under a lock (SKIP LOCKED on Postgres) that a crashed worker's jobs outlive.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use super::heartbeat::{DueJobs, WorkerHealth};
use super::{Fate, Job, JobKind, Outcome, retry_delay};
use crate::domain;
use crate::store::DbResult;

/// How long a claimed job is ours before another worker may take it over.
const CLAIM_LOCK: Duration = Duration::from_secs(60);
/// The longest the worker sleeps without looking at the outbox (other nodes' jobs, timers).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Delivers one kind's jobs until shutdown.
pub struct Worker<K> {
    pub kind: K,
    /// Rung after a transaction queued jobs of this kind.
    pub wake: Arc<Notify>,
    /// Most deliveries at once.
    pub concurrency: usize,
    /// Attempts before a job is given up.
    pub max_attempts: i32,
    /// How long a claim holds a job.
    pub claim_lock: Duration,
    /// The longest sleep between looks at the outbox.
    pub idle_poll: Duration,
    /// Where /readyz learns whether this worker takes its due jobs, if anywhere.
    pub health: Option<WorkerHealth>,
}

impl<K: JobKind> Worker<K> {
    /// A worker with the usual claim lock and polling.
    pub fn new(kind: K, wake: Arc<Notify>, concurrency: usize, max_attempts: i32) -> Self {
        Worker {
            kind,
            wake,
            concurrency,
            max_attempts,
            claim_lock: CLAIM_LOCK,
            idle_poll: IDLE_POLL,
            health: None,
        }
    }

    /// This worker, watched by `health` from the moment it runs.
    pub fn watched_by(self, health: &WorkerHealth) -> Self {
        Worker {
            health: Some(health.clone()),
            ..self
        }
    }

    /// Runs until `shutdown` turns true; deliveries in flight then finish.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        // Taken out, so the list that holds this worker is not held by it.
        let health = self.health.take();
        let this = Arc::new(self);
        let heartbeat = health.map(|health| health.watch(K::NAME, this.clone()));
        // Tells the list when this task ends, by a return or a panic.
        let _alive = heartbeat.as_ref().map(|heartbeat| heartbeat.alive());
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
                let lock = chrono::Duration::from_std(this.claim_lock).unwrap_or_default();
                match this.kind.claim(now, now + lock, free).await {
                    Ok(jobs) => {
                        if let Some(heartbeat) = &heartbeat {
                            heartbeat.beat();
                        }
                        claimed = jobs.len();
                        for job in jobs {
                            let Ok(permit) = permits.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = this.clone();
                            in_flight.spawn(async move {
                                worker.attempt(job).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(err) => {
                        tracing::warn!(kind = K::NAME, error = %err, "could not claim outbox jobs");
                    }
                }
            }
            if free > 0 && claimed >= free {
                continue; // More may be due.
            }
            // With every slot taken, a due job waits for a delivery to finish: its due time,
            // already past, would only wake the loop again at once.
            let wait = if permits.available_permits() == 0 {
                this.idle_poll
            } else {
                match this.kind.next_due().await {
                    Ok(Some(due)) => (due - domain::now())
                        .to_std()
                        .unwrap_or_default()
                        .min(this.idle_poll),
                    _ => this.idle_poll,
                }
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

    /// Delivers one job and records its fate.
    async fn attempt(&self, job: K::Job) {
        let outcome = self.kind.deliver(&job).await;
        let now = domain::now();
        let fate = self.fate(&job, outcome, now);
        if let Err(err) = self.kind.finish(&job, &fate, now).await {
            tracing::warn!(kind = K::NAME, job = job.id(), error = %err, "could not record a job's fate");
        }
        self.kind.observe(&job, &fate, now);
    }

    /// The retry policy: a passing failure comes back after [`retry_delay`] until the job is
    /// out of attempts.
    fn fate(
        &self,
        job: &K::Job,
        outcome: Outcome<K::Done>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Fate<K::Done> {
        match outcome {
            Outcome::Done(done) => Fate::Done(done),
            Outcome::Retry { reason, .. } if job.attempts() >= self.max_attempts => {
                tracing::warn!(
                    kind = K::NAME,
                    job = job.id(),
                    %reason,
                    "gave up after {} attempts",
                    job.attempts()
                );
                Fate::Dead { reason }
            }
            Outcome::Retry { after, reason } => {
                let jitter = 0.5 + f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
                let delay = retry_delay(job.attempts(), after, jitter);
                tracing::warn!(
                    kind = K::NAME,
                    job = job.id(),
                    attempt = job.attempts(),
                    %reason,
                    retry_in_secs = delay.as_secs(),
                    "delivery failed; will retry"
                );
                Fate::Retry {
                    at: now + chrono::Duration::from_std(delay).unwrap_or_default(),
                    reason,
                }
            }
            Outcome::Failed { reason } => {
                tracing::warn!(kind = K::NAME, job = job.id(), %reason, "refused");
                Fate::Dead { reason }
            }
        }
    }
}

#[async_trait::async_trait]
impl<K: JobKind> DueJobs for Worker<K> {
    async fn next_due(&self) -> DbResult<Option<chrono::DateTime<chrono::Utc>>> {
        self.kind.next_due().await
    }
}

#[cfg(test)]
mod tests {
    //! The engine over an in-memory kind whose deliveries follow a script.

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::{DbError, DbResult};

    #[derive(Clone)]
    struct TestJob {
        id: String,
        attempts: i32,
    }

    impl Job for TestJob {
        fn id(&self) -> &str {
            &self.id
        }
        fn attempts(&self) -> i32 {
            self.attempts
        }
    }

    struct Row {
        id: String,
        due: DateTime<Utc>,
        attempts: i32,
        claimed: bool,
        finished: bool,
    }

    type Script = Box<dyn Fn(&TestJob) -> Outcome<()> + Send + Sync>;
    /// A job's fate and when it was decided.
    type Recorded = (String, Fate<()>, DateTime<Utc>);

    /// Jobs in a vector. A retried job comes due again at once so the tests need not wait
    /// out the backoff; the time the engine asked for is kept in `fates` to be checked.
    struct Memory {
        rows: Mutex<Vec<Row>>,
        script: Script,
        /// How long each delivery takes.
        delivery_time: Duration,
        /// When set, deliveries wait until it is rung.
        gate: Option<Arc<Notify>>,
        delivered: Mutex<Vec<(String, i32)>>,
        fates: Mutex<Vec<Recorded>>,
        observed: AtomicUsize,
        delivering: AtomicUsize,
        most_at_once: AtomicUsize,
        largest_claim: AtomicUsize,
        /// How often the engine asked when the next job is due.
        due_asked: AtomicUsize,
        /// Claims that fail before one succeeds, as when the database is briefly away.
        failing_claims: AtomicUsize,
        /// Whether a claim panics, as a bug in the engine would.
        panicking_claims: std::sync::atomic::AtomicBool,
    }

    impl Memory {
        fn new(script: impl Fn(&TestJob) -> Outcome<()> + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(Memory {
                rows: Mutex::new(Vec::new()),
                script: Box::new(script),
                delivery_time: Duration::ZERO,
                gate: None,
                delivered: Mutex::new(Vec::new()),
                fates: Mutex::new(Vec::new()),
                observed: AtomicUsize::new(0),
                delivering: AtomicUsize::new(0),
                most_at_once: AtomicUsize::new(0),
                largest_claim: AtomicUsize::new(0),
                due_asked: AtomicUsize::new(0),
                failing_claims: AtomicUsize::new(0),
                panicking_claims: std::sync::atomic::AtomicBool::new(false),
            })
        }

        fn add(&self, id: &str, due: DateTime<Utc>) {
            self.rows.lock().unwrap().push(Row {
                id: id.into(),
                due,
                attempts: 0,
                claimed: false,
                finished: false,
            });
        }

        fn delivered(&self) -> Vec<(String, i32)> {
            self.delivered.lock().unwrap().clone()
        }

        fn fates(&self) -> Vec<Recorded> {
            self.fates.lock().unwrap().clone()
        }

        fn finished(&self) -> usize {
            self.rows
                .lock()
                .unwrap()
                .iter()
                .filter(|r| r.finished)
                .count()
        }
    }

    #[async_trait]
    impl JobKind for Arc<Memory> {
        type Job = TestJob;
        type Done = ();
        const NAME: &'static str = "test";

        async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>> {
            self.due_asked.fetch_add(1, Ordering::SeqCst);
            let rows = self.rows.lock().unwrap();
            Ok(rows
                .iter()
                .filter(|r| !r.claimed && !r.finished)
                .map(|r| r.due)
                .min())
        }

        async fn claim(
            &self,
            now: DateTime<Utc>,
            _locked_until: DateTime<Utc>,
            limit: usize,
        ) -> DbResult<Vec<TestJob>> {
            self.largest_claim.fetch_max(limit, Ordering::SeqCst);
            assert!(
                !self.panicking_claims.load(Ordering::SeqCst),
                "a claim that panics"
            );
            if self
                .failing_claims
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(DbError::Other("the database is away".into()));
            }
            let mut rows = self.rows.lock().unwrap();
            let mut claimed = Vec::new();
            for row in rows.iter_mut() {
                if claimed.len() < limit && !row.claimed && !row.finished && row.due <= now {
                    row.claimed = true;
                    row.attempts += 1;
                    claimed.push(TestJob {
                        id: row.id.clone(),
                        attempts: row.attempts,
                    });
                }
            }
            Ok(claimed)
        }

        async fn deliver(&self, job: &TestJob) -> Outcome<()> {
            let now = self.delivering.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            self.delivered
                .lock()
                .unwrap()
                .push((job.id.clone(), job.attempts));
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            tokio::time::sleep(self.delivery_time).await;
            self.delivering.fetch_sub(1, Ordering::SeqCst);
            (self.script)(job)
        }

        async fn finish(&self, job: &TestJob, fate: &Fate<()>, at: DateTime<Utc>) -> DbResult<()> {
            let mut rows = self.rows.lock().unwrap();
            let row = rows.iter_mut().find(|r| r.id == job.id).unwrap();
            row.claimed = false;
            match fate {
                Fate::Retry { .. } => row.due = at,
                Fate::Done(()) | Fate::Dead { .. } => row.finished = true,
            }
            self.fates
                .lock()
                .unwrap()
                .push((job.id.clone(), fate.clone(), at));
            Ok(())
        }

        fn observe(&self, _job: &TestJob, _fate: &Fate<()>, _at: DateTime<Utc>) {
            self.observed.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A worker that only a wake, a due time or a finished delivery rouses: if the engine
    /// missed one of those, the tests would wait an hour and time out.
    fn worker(kind: &Arc<Memory>, max_attempts: i32) -> Worker<Arc<Memory>> {
        Worker {
            idle_poll: Duration::from_secs(3600),
            ..Worker::new(kind.clone(), Arc::new(Notify::new()), 2, max_attempts)
        }
    }

    fn start(worker: Worker<Arc<Memory>>) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (stop, stopped) = watch::channel(false);
        (stop, tokio::spawn(worker.run(stopped)))
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn stop(stop: watch::Sender<bool>, handle: tokio::task::JoinHandle<()>) {
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the worker stops")
            .unwrap();
    }

    fn assert_backoff(fate: &Fate<()>, at: DateTime<Utc>, attempt: i32) {
        let Fate::Retry { at: due, .. } = fate else {
            panic!("expected a retry, got {fate:?}");
        };
        let delay = (*due - at).to_std().unwrap();
        assert!(delay >= retry_delay(attempt, None, 0.5), "{delay:?}");
        assert!(delay <= retry_delay(attempt, None, 1.5), "{delay:?}");
    }

    #[tokio::test]
    async fn a_passing_failure_is_retried_at_the_backoff_then_finished_once() {
        let kind = Memory::new(|job| match job.attempts {
            1 => Outcome::Retry {
                after: None,
                reason: "503".into(),
            },
            2 => Outcome::Retry {
                after: Some(Duration::from_secs(120)),
                reason: "429".into(),
            },
            _ => Outcome::Done(()),
        });
        kind.add("a", domain::now());
        let (stop_tx, handle) = start(worker(&kind, 5));
        until("the job is finished", || kind.finished() == 1).await;
        // Nothing more happens to a finished job.
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop(stop_tx, handle).await;

        let a = |n| ("a".to_string(), n);
        assert_eq!(kind.delivered(), vec![a(1), a(2), a(3)]);
        let fates = kind.fates();
        assert_eq!(fates.len(), 3);
        assert_backoff(&fates[0].1, fates[0].2, 1);
        // A receiver's Retry-After longer than the backoff wins.
        let Fate::Retry { at, reason } = &fates[1].1 else {
            panic!("{:?}", fates[1]);
        };
        assert_eq!(*at - fates[1].2, chrono::Duration::seconds(120));
        assert_eq!(reason, "429");
        assert_eq!(fates[2].1, Fate::Done(()));
        assert_eq!(kind.observed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_job_that_keeps_failing_is_given_up_after_the_last_attempt() {
        let kind = Memory::new(|job| Outcome::Retry {
            after: None,
            reason: format!("503 on attempt {}", job.attempts),
        });
        kind.add("a", domain::now());
        let (stop_tx, handle) = start(worker(&kind, 3));
        until("the job is given up", || kind.finished() == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop(stop_tx, handle).await;

        assert_eq!(kind.delivered().len(), 3);
        let fates = kind.fates();
        assert_eq!(fates.len(), 3);
        assert_backoff(&fates[0].1, fates[0].2, 1);
        assert_backoff(&fates[1].1, fates[1].2, 2);
        assert_eq!(
            fates[2].1,
            Fate::Dead {
                reason: "503 on attempt 3".into()
            }
        );
    }

    #[tokio::test]
    async fn a_refused_job_is_given_up_at_once() {
        let kind = Memory::new(|_| Outcome::Failed {
            reason: "400".into(),
        });
        kind.add("a", domain::now());
        let (stop_tx, handle) = start(worker(&kind, 5));
        until("the job is given up", || kind.finished() == 1).await;
        stop(stop_tx, handle).await;

        assert_eq!(kind.delivered().len(), 1);
        let fates = kind.fates();
        assert_eq!(fates.len(), 1);
        assert_eq!(
            fates[0].1,
            Fate::Dead {
                reason: "400".into()
            }
        );
    }

    #[tokio::test]
    async fn a_failed_claim_is_tried_again_and_the_job_goes_out_once() {
        let kind = Memory::new(|_| Outcome::Done(()));
        kind.failing_claims.store(3, Ordering::SeqCst);
        kind.add("a", domain::now());
        let worker = Worker {
            idle_poll: Duration::from_millis(10),
            ..worker(&kind, 5)
        };
        let (stop_tx, handle) = start(worker);
        until("the job is finished", || kind.finished() == 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop(stop_tx, handle).await;

        assert_eq!(kind.failing_claims.load(Ordering::SeqCst), 0);
        assert_eq!(kind.delivered(), vec![("a".to_string(), 1)]);
    }

    #[tokio::test]
    async fn deliveries_at_once_stay_under_the_cap_and_all_jobs_go_out() {
        let mut kind = Memory::new(|_| Outcome::Done(()));
        Arc::get_mut(&mut kind).unwrap().delivery_time = Duration::from_millis(30);
        for i in 0..7 {
            kind.add(&format!("job-{i}"), domain::now());
        }
        let (stop_tx, handle) = start(worker(&kind, 5));
        until("every job is finished", || kind.finished() == 7).await;
        stop(stop_tx, handle).await;

        assert_eq!(kind.delivered().len(), 7);
        assert_eq!(kind.most_at_once.load(Ordering::SeqCst), 2);
        assert!(kind.largest_claim.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test]
    async fn a_worker_with_every_slot_taken_waits_for_a_delivery_instead_of_spinning() {
        let gate = Arc::new(Notify::new());
        let mut kind = Memory::new(|_| Outcome::Done(()));
        Arc::get_mut(&mut kind).unwrap().gate = Some(gate.clone());
        for i in 0..3 {
            kind.add(&format!("job-{i}"), domain::now());
        }
        let (stop_tx, handle) = start(worker(&kind, 5));
        until("both slots deliver", || kind.delivered().len() == 2).await;
        let asked = kind.due_asked.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            kind.due_asked.load(Ordering::SeqCst) <= asked + 1,
            "the worker kept asking for due jobs it had no room for"
        );

        gate.notify_waiters();
        until("the third job is taken", || kind.delivered().len() == 3).await;
        gate.notify_one();
        until("every job is finished", || kind.finished() == 3).await;
        stop(stop_tx, handle).await;
    }

    #[tokio::test]
    async fn a_wake_and_a_due_time_start_deliveries_without_polling() {
        let kind = Memory::new(|_| Outcome::Done(()));
        let worker = worker(&kind, 5);
        let wake = worker.wake.clone();
        let (stop_tx, handle) = start(worker);
        // Let it find the outbox empty and go to sleep for its hour.
        tokio::time::sleep(Duration::from_millis(50)).await;

        kind.add("now", domain::now());
        wake.notify_one();
        until("a woken worker delivers", || kind.finished() == 1).await;

        let due = domain::now() + chrono::Duration::milliseconds(200);
        kind.add("later", due);
        wake.notify_one();
        until("a job is delivered when due", || kind.finished() == 2).await;
        let fates = kind.fates();
        assert_eq!(fates[1].0, "later");
        assert!(fates[1].2 >= due, "delivered before it was due");
        stop(stop_tx, handle).await;
    }

    #[tokio::test]
    async fn shutdown_lets_deliveries_in_flight_finish_and_claims_nothing_more() {
        let gate = Arc::new(Notify::new());
        let mut kind = Memory::new(|_| Outcome::Done(()));
        Arc::get_mut(&mut kind).unwrap().gate = Some(gate.clone());
        kind.add("in-flight", domain::now());
        let worker = worker(&kind, 5);
        let wake = worker.wake.clone();
        let (stop_tx, handle) = start(worker);
        until("the first job is being delivered", || {
            kind.delivered().len() == 1
        })
        .await;

        stop_tx.send(true).unwrap();
        kind.add("too-late", domain::now());
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!handle.is_finished(), "the worker left a delivery behind");

        gate.notify_one();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .expect("the worker stops")
            .unwrap();
        assert_eq!(kind.delivered(), vec![("in-flight".to_string(), 1)]);
        let fates = kind.fates();
        assert_eq!(fates.len(), 1);
        assert_eq!(fates[0].1, Fate::Done(()));
    }

    // ---- what /readyz learns from the heartbeat ----

    use crate::outbox::{WorkerHealth, WorkerTrouble};

    /// Longer than the tests' workers take between looks when they have room, far shorter than
    /// the hour they sleep when idle.
    const STALLED_AFTER: Duration = Duration::from_millis(200);

    fn watched(kind: &Arc<Memory>) -> (Worker<Arc<Memory>>, WorkerHealth) {
        let health = WorkerHealth::default();
        (worker(kind, 5).watched_by(&health), health)
    }

    #[tokio::test]
    async fn a_worker_whose_slots_never_free_is_stalled_while_jobs_are_due() {
        let gate = Arc::new(Notify::new());
        let mut kind = Memory::new(|_| Outcome::Done(()));
        Arc::get_mut(&mut kind).unwrap().gate = Some(gate.clone());
        for i in 0..3 {
            kind.add(&format!("job-{i}"), domain::now());
        }
        let (worker, health) = watched(&kind);
        let (stop_tx, handle) = start(worker);
        until("both slots deliver", || kind.delivered().len() == 2).await;
        health.check(STALLED_AFTER).await.unwrap();

        tokio::time::sleep(STALLED_AFTER + Duration::from_millis(100)).await;
        match health.check(STALLED_AFTER).await {
            Err(WorkerTrouble::Stalled {
                kind: "test",
                silent_for,
                ..
            }) => assert!(silent_for > STALLED_AFTER, "{silent_for:?}"),
            other => panic!("expected a stalled worker, got {other:?}"),
        }

        // A slot frees: the worker takes the third job, and is well again.
        gate.notify_waiters();
        until("the third job is taken", || kind.delivered().len() == 3).await;
        health.check(STALLED_AFTER).await.unwrap();
        gate.notify_one();
        until("every job is finished", || kind.finished() == 3).await;
        stop(stop_tx, handle).await;
        assert!(matches!(
            health.check(STALLED_AFTER).await,
            Err(WorkerTrouble::Ended {
                kind: "test",
                panicked: false
            })
        ));
    }

    #[tokio::test]
    async fn a_silent_worker_with_nothing_due_is_well() {
        let kind = Memory::new(|_| Outcome::Done(()));
        let (worker, health) = watched(&kind);
        let (stop_tx, handle) = start(worker);
        // It looks once, finds nothing, and sleeps for its hour.
        tokio::time::sleep(STALLED_AFTER + Duration::from_millis(100)).await;
        health.check(STALLED_AFTER).await.unwrap();
        // A job due later is not due yet.
        kind.add("later", domain::now() + chrono::Duration::hours(1));
        health.check(STALLED_AFTER).await.unwrap();
        stop(stop_tx, handle).await;
    }

    #[tokio::test]
    async fn a_worker_that_panicked_is_reported() {
        let kind = Memory::new(|_| Outcome::Done(()));
        kind.panicking_claims.store(true, Ordering::SeqCst);
        let (worker, health) = watched(&kind);
        let (_stop_tx, handle) = start(worker);
        assert!(handle.await.unwrap_err().is_panic());
        assert!(matches!(
            health.check(STALLED_AFTER).await,
            Err(WorkerTrouble::Ended {
                kind: "test",
                panicked: true
            })
        ));
    }
}
