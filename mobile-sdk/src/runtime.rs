//! The SDK's own Tokio runtime. Swift, Kotlin and Python drive the exported async functions
//! with their own executors; the network work itself always runs here, so it needs no runtime
//! from the app.

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

/// The runtime, until [`shutdown`] takes it, and a handle to it that outlives it.
struct Sdk {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
}

fn sdk() -> &'static Sdk {
    static SDK: OnceLock<Sdk> = OnceLock::new();
    SDK.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("switchboard-sdk")
            .enable_all()
            .build()
            .expect("the SDK's runtime starts");
        Sdk {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        }
    })
}

/// Where the SDK's tasks run. After [`shutdown`] a task spawned here is cancelled at once.
pub(crate) fn runtime() -> &'static Handle {
    &sdk().handle
}

/// How long [`shutdown`] waits for the SDK's threads to finish what they are doing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Stops the SDK's threads for good: every stream, the outbox sender and any call in flight end,
/// and calls made afterwards fail. Python programs call it before the interpreter exits
/// (`atexit.register(switchboard_sdk.shutdown)`): an SDK thread that calls back into Python
/// (a listener, a finished coroutine) while the interpreter finalizes is killed by CPython, and
/// that aborts the process. Swift and Kotlin apps never need it.
#[uniffi::export]
pub fn shutdown() {
    // The app's logger may be Python code too.
    crate::logging::remove_logger();
    let runtime = sdk()
        .runtime
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(runtime) = runtime {
        runtime.shutdown_timeout(SHUTDOWN_GRACE);
    }
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
        Err(err) => panic!("the SDK was shut down (switchboard_sdk.shutdown()): {err}"),
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
