//! The SDK's own Tokio runtime. Swift, Kotlin and Python drive the exported async functions
//! with their own executors; the network work itself always runs here, so it needs no runtime
//! from the app.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

pub(crate) fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("switchboard-sdk")
            .enable_all()
            .build()
            .expect("the SDK's runtime starts")
    })
}

/// Runs `future` on the SDK's runtime and waits for it from whatever executor calls.
pub(crate) async fn run<F>(future: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(future).await {
        Ok(output) => output,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => panic!("the SDK's runtime stopped: {err}"),
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Exponential backoff with full jitter: a wait between half of and the whole current step.
pub(crate) struct Backoff {
    step: std::time::Duration,
    first: std::time::Duration,
    max: std::time::Duration,
}

impl Backoff {
    pub(crate) fn new(first: std::time::Duration, max: std::time::Duration) -> Backoff {
        Backoff {
            step: first,
            first,
            max,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.step = self.first;
    }

    pub(crate) fn next_delay(&mut self) -> std::time::Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        step.mul_f64(rand::random_range(0.5..=1.0))
    }
}
