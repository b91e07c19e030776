//! Counting attempts per key (an account, a client address, a customer) in fixed windows:
//! failed logins that slow down password guessing, and the per-minute budgets of customers.
//! Counters live in memory: each node of a cluster counts on its own.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Above this many keys, expired windows are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

/// Refuses a key after `limit` attempts within `window`, until the window ends.
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, Window>>,
}

struct Window {
    started: Instant,
    attempts: u32,
}

impl RateLimiter {
    /// A limiter allowing `limit` attempts per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        RateLimiter {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one attempt unless `key` has used up its budget, in one step under the lock:
    /// requests that arrive together cannot all pass a check before any of them is counted.
    /// `Err(wait)` says how long until the key may try again. A success may
    /// [`RateLimiter::refund`] its attempt.
    pub fn acquire(&self, key: &str) -> Result<(), Duration> {
        let mut windows = self
            .windows
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
    pub fn refund(&self, key: &str) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(window) = windows.get_mut(key) {
            window.attempts = window.attempts.saturating_sub(1);
        }
    }

    /// Forgets the attempts of `key`, after a success.
    pub fn clear(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new(2, Duration::from_millis(50));
        assert!(limiter.acquire("k").is_ok());
        assert!(limiter.acquire("k").is_ok());
        let wait = limiter.acquire("k").unwrap_err();
        assert!(wait <= Duration::from_millis(50));
        assert!(limiter.acquire("other").is_ok());
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.acquire("k").is_ok());
    }

    #[test]
    fn acquire_counts_and_refuses_in_one_step() {
        let limiter = std::sync::Arc::new(RateLimiter::new(5, Duration::from_secs(60)));
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || limiter.acquire("k").is_ok())
            })
            .collect();
        let passed = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(passed, 5);
        assert!(limiter.acquire("k").unwrap_err() <= Duration::from_secs(60));
        limiter.refund("k");
        assert!(limiter.acquire("k").is_ok());
        assert!(limiter.acquire("k").is_err());
    }

    #[test]
    fn a_success_clears_the_count() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        assert!(limiter.acquire("k").is_ok());
        assert!(limiter.acquire("k").is_err());
        limiter.clear("k");
        assert!(limiter.acquire("k").is_ok());
    }
}
