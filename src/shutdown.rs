//! Stopping the server in order: one signal tells every background task to stop (the HTTP
//! connections and WebSockets, the workers, presence departures), and one count of the tasks
//! still running lets [`crate::App::serve`] wait for all of them before it closes the store.
//!
//! A task counts while it holds a [`Running`] guard. Work that must outlive the value that
//! starts it (an agent's departure, written when their connection guard drops) takes its guard
//! when that value is created, so the count never reaches zero between the value's drop and
//! the task it spawns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The server's shutdown signal and the count of its running background tasks. Cheap to
/// clone; every clone is the same handle.
#[derive(Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

struct Inner {
    /// `true` once the server is stopping; workers watch it.
    stop: watch::Sender<bool>,
    /// Tasks that must finish before the store closes.
    running: AtomicUsize,
    /// Rung when `running` drops to zero.
    idle: Notify,
}

/// Counts one running task until dropped.
#[must_use = "the task counts only while the guard lives"]
pub struct Running {
    inner: Arc<Inner>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Not stopping, no tasks.
    pub fn new() -> Shutdown {
        Shutdown {
            inner: Arc::new(Inner {
                stop: watch::channel(false).0,
                running: AtomicUsize::new(0),
                idle: Notify::new(),
            }),
        }
    }

    /// The signal, for a task's `run(shutdown)`: it changes to `true` when the server stops.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.inner.stop.subscribe()
    }

    /// Tells every task to stop. Idempotent.
    pub fn trigger(&self) {
        self.inner.stop.send_replace(true);
    }

    /// Whether the server is stopping.
    pub fn is_triggered(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Completes once the server is stopping.
    pub async fn triggered(&self) {
        let mut stop = self.subscribe();
        // Errors only when the sender is gone, and `self` holds it.
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    /// A guard that counts one running task until it is dropped.
    pub fn running(&self) -> Running {
        self.inner.running.fetch_add(1, Ordering::SeqCst);
        Running {
            inner: self.inner.clone(),
        }
    }

    /// Spawns `task` on the current runtime, counted until it completes.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.running().spawn(task)
    }

    /// How many tasks are counted now.
    pub fn tasks(&self) -> usize {
        self.inner.running.load(Ordering::SeqCst)
    }

    /// Completes when no task is counted. Call after [`Shutdown::trigger`], or tasks that
    /// run until told may keep it waiting.
    pub async fn finished(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            // Registered before the check, so a task ending in between still wakes us.
            idle.as_mut().enable();
            if self.tasks() == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Running {
    /// Spawns `task` on the current runtime; this guard counts it until it completes.
    pub fn spawn<F>(self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(async move {
            let output = task.await;
            drop(self);
            output
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn finished_waits_for_a_task_that_outlives_the_signal() {
        let shutdown = Shutdown::new();
        let wrote = Arc::new(AtomicBool::new(false));
        let mut stop = shutdown.subscribe();
        let task_wrote = wrote.clone();
        shutdown.spawn(async move {
            let _ = stop.changed().await;
            // Work done after the signal, like a departure written on the way out.
            tokio::time::sleep(Duration::from_millis(50)).await;
            task_wrote.store(true, Ordering::SeqCst);
        });
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), shutdown.finished())
            .await
            .expect("the task ends");
        assert!(wrote.load(Ordering::SeqCst), "finished before the task did");
        assert_eq!(shutdown.tasks(), 0);
    }

    #[tokio::test]
    async fn a_guard_keeps_the_count_until_the_task_it_spawns_ends() {
        let shutdown = Shutdown::new();
        let guard = shutdown.running();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        guard.spawn(async move {
            let _ = released.await;
        });
        assert_eq!(shutdown.tasks(), 1);
        let finished = tokio::time::timeout(Duration::from_millis(50), shutdown.finished()).await;
        assert!(finished.is_err(), "finished while a task ran");
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), shutdown.finished())
            .await
            .expect("the task ends");
    }

    #[tokio::test]
    async fn finished_is_immediate_without_tasks_and_triggered_completes_after_trigger() {
        let shutdown = Shutdown::new();
        shutdown.finished().await;
        assert!(!shutdown.is_triggered());
        let waiting = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("triggered completes")
            .unwrap();
        assert!(shutdown.is_triggered());
    }
}
