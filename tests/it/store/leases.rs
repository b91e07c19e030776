//! What nodes share besides the data: leases on once-per-cluster work (taken when free or run
//! out, renewed by their holder only, given back) and rate-limit windows (counted in one
//! statement, refused at the limit, refunded, cleared, swept).

use std::sync::Arc;
use std::time::Duration;

use switchboard::domain;

use super::store;
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    a_lease_has_one_holder_until_it_runs_out_or_is_given_back,
    attempts_are_counted_to_the_limit_and_refused_together,
);

async fn a_lease_has_one_holder_until_it_runs_out_or_is_given_back(backend: Backend) {
    let (_server, store) = store(backend).await;
    let length = Duration::from_millis(600);
    assert!(store.acquire_lease("test", "node-a", length).await.unwrap());
    assert!(!store.acquire_lease("test", "node-b", length).await.unwrap());
    // Its holder renews it, keeping when it was taken.
    let taken = store.leases().await.unwrap();
    let taken = taken.iter().find(|l| l.name == "test").unwrap().clone();
    assert_eq!(taken.holder, "node-a");
    assert!(store.acquire_lease("test", "node-a", length).await.unwrap());
    let renewed = store.leases().await.unwrap();
    let renewed = renewed.iter().find(|l| l.name == "test").unwrap().clone();
    assert_eq!(renewed.acquired_at, taken.acquired_at);
    assert!(renewed.expires_at >= taken.expires_at);
    // Run out: another takes it, and the first cannot renew.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(store.acquire_lease("test", "node-b", length).await.unwrap());
    assert!(!store.acquire_lease("test", "node-a", length).await.unwrap());
    // Given back (only by its holder): free at once.
    store.release_lease("test", "node-a").await.unwrap();
    assert!(!store.acquire_lease("test", "node-c", length).await.unwrap());
    store.release_lease("test", "node-b").await.unwrap();
    assert!(store.acquire_lease("test", "node-c", length).await.unwrap());
}

async fn attempts_are_counted_to_the_limit_and_refused_together(backend: Backend) {
    let (_server, store) = store(backend).await;
    let window = Duration::from_secs(60);
    let now = domain::now();
    // Twenty at once: exactly five pass.
    let tries: Vec<_> = (0..20)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .count_attempt("test", "k", 5, window, now)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut passed = 0;
    for attempt in tries {
        if attempt.await.unwrap().is_ok() {
            passed += 1;
        }
    }
    assert_eq!(passed, 5);
    let wait = store
        .count_attempt("test", "k", 5, window, now)
        .await
        .unwrap()
        .unwrap_err();
    assert!(wait > Duration::from_secs(50) && wait <= window, "{wait:?}");
    // Other keys and other limits count on their own.
    assert!(
        store
            .count_attempt("test", "other", 5, window, now)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        store
            .count_attempt("other", "k", 5, window, now)
            .await
            .unwrap()
            .is_ok()
    );
    // A refund gives one back; a clear all.
    store.refund_attempt("test", "k").await.unwrap();
    assert!(
        store
            .count_attempt("test", "k", 5, window, now)
            .await
            .unwrap()
            .is_ok()
    );
    assert!(
        store
            .count_attempt("test", "k", 5, window, now)
            .await
            .unwrap()
            .is_err()
    );
    store.clear_attempts("test", "k").await.unwrap();
    assert!(
        store
            .count_attempt("test", "k", 5, window, now)
            .await
            .unwrap()
            .is_ok()
    );
    // When the window has ended, a new one starts with the next attempt.
    let later = now + chrono::Duration::seconds(61);
    for _ in 0..5 {
        assert!(
            store
                .count_attempt("test", "other", 5, window, later)
                .await
                .unwrap()
                .is_ok()
        );
    }
    assert!(
        store
            .count_attempt("test", "other", 5, window, later)
            .await
            .unwrap()
            .is_err()
    );
    // Sweeping removes windows that started before the given time.
    assert!(
        store
            .sweep_attempts(now + chrono::Duration::seconds(1))
            .await
            .unwrap()
            >= 2
    );
    assert!(
        store
            .count_attempt("other", "k", 1, window, later)
            .await
            .unwrap()
            .is_ok()
    );
}
