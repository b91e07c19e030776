//! Counting attempts per key (an account, a client address, a customer) in fixed windows that
//! start at a key's first attempt: failed logins that slow down password guessing, and the
//! per-minute budgets of customers.
//!
//! One interface, two counters. On Postgres, where several nodes share the database, each
//! attempt is one statement on a shared row (`rate_counters`), so three nodes do not triple a
//! limit. On SQLite, which has one node, counters live in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain;
use crate::store::Database;

/// Above this many keys, expired windows are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

/// The longest window any limit counts: shared windows that started before this are swept.
pub const LONGEST_WINDOW: Duration = Duration::from_secs(3600);

/// Refuses a key after `limit` attempts within `window`, until the window ends.
pub struct RateLimiter {
    /// The limit's name in the log (and the shared counters' scope).
    name: &'static str,
    limit: u32,
    window: Duration,
    counter: Counter,
}

/// Where the attempts are counted.
enum Counter {
    /// In this node's memory.
    Memory(Mutex<HashMap<String, Window>>),
    /// In the shared database, under the limit's name.
    Shared {
        store: Arc<dyn Database>,
        scope: &'static str,
    },
}

struct Window {
    started: Instant,
    attempts: u32,
}

impl RateLimiter {
    /// A limiter named `name` allowing `limit` attempts per `window`, counting in memory.
    pub fn new(name: &'static str, limit: u32, window: Duration) -> Self {
        RateLimiter {
            name,
            limit,
            window,
            counter: Counter::Memory(Mutex::new(HashMap::new())),
        }
    }

    /// A limiter for `store`: counted in the database under `scope` when several nodes may
    /// share it (Postgres), in memory otherwise (SQLite has one node).
    pub fn for_store(
        store: &Arc<dyn Database>,
        scope: &'static str,
        limit: u32,
        window: Duration,
    ) -> Self {
        if store.backend_name() == "postgres" {
            RateLimiter {
                name: scope,
                limit,
                window,
                counter: Counter::Shared {
                    store: store.clone(),
                    scope,
                },
            }
        } else {
            RateLimiter::new(scope, limit, window)
        }
    }

    /// Whether attempts are counted in the shared database.
    pub fn is_shared(&self) -> bool {
        matches!(self.counter, Counter::Shared { .. })
    }

    /// Counts one attempt unless `key` has used up its budget, in one step: requests that
    /// arrive together (on any node, when shared) cannot all pass a check before any of them
    /// is counted. `Err(wait)` says how long until the key may try again. A success may
    /// [`RateLimiter::refund`] its attempt. When the shared counter cannot be reached the
    /// attempt passes (and a warning is logged): the request needs the same database anyway.
    /// Each refusal is logged at warn with the limit's name; the request's span says whose.
    pub async fn acquire(&self, key: &str) -> Result<(), Duration> {
        let counted = self.count(key).await;
        if let Err(wait) = counted {
            tracing::warn!(
                limit = self.name,
                retry_after_secs = wait.as_secs().max(1),
                "rate limit hit"
            );
        }
        counted
    }

    async fn count(&self, key: &str) -> Result<(), Duration> {
        match &self.counter {
            Counter::Memory(windows) => self.acquire_in_memory(windows, key),
            Counter::Shared { store, scope } => {
                if self.limit == 0 {
                    return Err(self.window);
                }
                match store
                    .count_attempt(scope, key, self.limit, self.window, domain::now())
                    .await
                {
                    Ok(counted) => counted,
                    Err(err) => {
                        tracing::warn!(error = %err, limit = scope, "could not count an attempt");
                        Ok(())
                    }
                }
            }
        }
    }

    fn acquire_in_memory(
        &self,
        windows: &Mutex<HashMap<String, Window>>,
        key: &str,
    ) -> Result<(), Duration> {
        let mut windows = windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| w.started.elapsed() < self.window);
        }
        let now = Instant::now();
        let window = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            attempts: 0,
        });
        if window.started.elapsed() >= self.window {
            *window = Window {
                started: now,
                attempts: 0,
            };
        }
        if window.attempts >= self.limit {
            return Err(self.window.saturating_sub(window.started.elapsed()));
        }
        window.attempts += 1;
        Ok(())
    }

    /// Gives back one attempt counted by [`RateLimiter::acquire`].
    pub async fn refund(&self, key: &str) {
        match &self.counter {
            Counter::Memory(windows) => {
                let mut windows = windows
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                if let Some(window) = windows.get_mut(key) {
                    window.attempts = window.attempts.saturating_sub(1);
                }
            }
            Counter::Shared { store, scope } => {
                if let Err(err) = store.refund_attempt(scope, key).await {
                    tracing::warn!(error = %err, limit = scope, "could not refund an attempt");
                }
            }
        }
    }

    /// Forgets the attempts of `key`, after a success.
    pub async fn clear(&self, key: &str) {
        match &self.counter {
            Counter::Memory(windows) => {
                windows
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .remove(key);
            }
            Counter::Shared { store, scope } => {
                if let Err(err) = store.clear_attempts(scope, key).await {
                    tracing::warn!(error = %err, limit = scope, "could not clear attempts");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_after_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new("test", 2, Duration::from_millis(50));
        assert!(limiter.acquire("k").await.is_ok());
        assert!(limiter.acquire("k").await.is_ok());
        let wait = limiter.acquire("k").await.unwrap_err();
        assert!(wait <= Duration::from_millis(50));
        assert!(limiter.acquire("other").await.is_ok());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(limiter.acquire("k").await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn acquire_counts_and_refuses_in_one_step() {
        let limiter = Arc::new(RateLimiter::new("test", 5, Duration::from_secs(60)));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.acquire("k").await.is_ok() })
            })
            .collect();
        let mut passed = 0;
        for task in tasks {
            if task.await.unwrap() {
                passed += 1;
            }
        }
        assert_eq!(passed, 5);
        assert!(limiter.acquire("k").await.unwrap_err() <= Duration::from_secs(60));
        limiter.refund("k").await;
        assert!(limiter.acquire("k").await.is_ok());
        assert!(limiter.acquire("k").await.is_err());
    }

    #[tokio::test]
    async fn a_success_clears_the_count() {
        let limiter = RateLimiter::new("test", 1, Duration::from_secs(60));
        assert!(limiter.acquire("k").await.is_ok());
        assert!(limiter.acquire("k").await.is_err());
        limiter.clear("k").await;
        assert!(limiter.acquire("k").await.is_ok());
    }
}
