//! /readyz: whether this node can do its work now. It must answer quickly and tell the truth:
//! a database that cannot write (a full disk, a read-only or unreachable server) means not
//! ready, and saying so within a second lets a load balancer move traffic before clients time
//! out. An outbox worker that has ended, or takes no jobs while some are due, means pushes,
//! webhooks, Messenger replies or emails wait: not ready either, so the operator hears of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::bus::BusStatus;
use crate::config::Config;
use crate::outbox::WorkerTrouble;
use crate::services::health::Health;

/// How long the database check may take before the node counts as not ready.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the node is not ready, in words for whoever reads the probe.
#[derive(Debug, thiserror::Error)]
pub(super) enum NotReady {
    #[error("the database does not accept writes: {0}")]
    DatabaseRefused(String),
    #[error("the database did not answer within {} s", DATABASE_CHECK_TIMEOUT.as_secs())]
    DatabaseTimeout,
    #[error(
        "{} has {free} bytes free, less than the {minimum} SWITCHBOARD_MIN_FREE_DISK asks for",
        dir.display()
    )]
    DiskLow {
        dir: PathBuf,
        free: u64,
        minimum: u64,
    },
    #[error("cannot read the free space of {}: {error}", dir.display())]
    DiskUnknown { dir: PathBuf, error: String },
    #[error(
        "NATS is unreachable: this node serves its own clients, but events of other nodes do \
         not reach them until it is back"
    )]
    NatsDown,
    #[error(
        "the {kind} outbox worker has stopped{}: its jobs wait until the server restarts",
        if *panicked { " after a panic" } else { "" }
    )]
    OutboxWorkerEnded { kind: &'static str, panicked: bool },
    #[error(
        "the {kind} outbox worker has taken no jobs for {} s though some have been due since \
         {due_since} (SWITCHBOARD_OUTBOX_STALLED_AFTER is {} s)",
        silent_for.as_secs(),
        stalled_after.as_secs()
    )]
    OutboxWorkerStalled {
        kind: &'static str,
        silent_for: Duration,
        due_since: DateTime<Utc>,
        stalled_after: Duration,
    },
}

impl NotReady {
    fn from_outbox(trouble: WorkerTrouble, stalled_after: Duration) -> NotReady {
        match trouble {
            WorkerTrouble::Ended { kind, panicked } => {
                NotReady::OutboxWorkerEnded { kind, panicked }
            }
            WorkerTrouble::Stalled {
                kind,
                silent_for,
                due_since,
            } => NotReady::OutboxWorkerStalled {
                kind,
                silent_for,
                due_since,
                stalled_after,
            },
            WorkerTrouble::Unknown { error, .. } => NotReady::DatabaseRefused(error.to_string()),
        }
    }
}

/// Checks the event bus, the disk under a SQLite database, a rolled-back write, then the
/// outbox workers (from memory, unless one has been silent), within a second.
pub(super) async fn check(
    health: &Health,
    config: &Config,
    bus: BusStatus,
) -> Result<(), NotReady> {
    if bus == BusStatus::Disconnected {
        return Err(NotReady::NatsDown);
    }
    tokio::time::timeout(DATABASE_CHECK_TIMEOUT, check_untimed(health, config))
        .await
        .unwrap_or(Err(NotReady::DatabaseTimeout))
}

async fn check_untimed(health: &Health, config: &Config) -> Result<(), NotReady> {
    if let Some(dir) = sqlite_directory(config) {
        let minimum = config.min_free_disk;
        let reported_dir = dir.clone();
        tokio::task::spawn_blocking(move || check_free_space(&dir, minimum))
            .await
            .map_err(|join_error| NotReady::DiskUnknown {
                dir: reported_dir,
                error: join_error.to_string(),
            })??;
    }
    health
        .database_writable()
        .await
        .map_err(|err| NotReady::DatabaseRefused(err.to_string()))?;
    let stalled_after = config.outbox_stalled_after;
    health
        .outbox_workers_working(stalled_after)
        .await
        .map_err(|trouble| NotReady::from_outbox(trouble, stalled_after))
}

/// The directory holding the SQLite database, when SQLite is the backend.
fn sqlite_directory(config: &Config) -> Option<PathBuf> {
    match config.database_url.as_deref() {
        None => Some(config.data_dir.clone()),
        Some(url) if url.starts_with("sqlite:") => {
            let path = url
                .trim_start_matches("sqlite:")
                .trim_start_matches("//")
                .split('?')
                .next()
                .unwrap_or_default();
            let parent = Path::new(path).parent()?;
            Some(if parent.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                parent.to_owned()
            })
        }
        Some(_) => None,
    }
}

#[cfg(unix)]
fn check_free_space(dir: &Path, minimum: u64) -> Result<(), NotReady> {
    let stats = rustix::fs::statvfs(dir).map_err(|error| NotReady::DiskUnknown {
        dir: dir.to_owned(),
        error: error.to_string(),
    })?;
    // What an unprivileged process may still use, not the root-reserved blocks.
    let free = stats.f_bavail.saturating_mul(stats.f_frsize);
    if free < minimum {
        return Err(NotReady::DiskLow {
            dir: dir.to_owned(),
            free,
            minimum,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_free_space(_dir: &Path, _minimum: u64) -> Result<(), NotReady> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sqlite_directory_comes_from_the_url_or_the_data_dir() {
        let mut config = Config::defaults();
        config.data_dir = "/srv/switchboard".into();
        assert_eq!(
            sqlite_directory(&config),
            Some(PathBuf::from("/srv/switchboard"))
        );
        config.database_url = Some("sqlite:///var/lib/sb/chat.db?mode=rwc".into());
        assert_eq!(
            sqlite_directory(&config),
            Some(PathBuf::from("/var/lib/sb"))
        );
        config.database_url = Some("sqlite:chat.db".into());
        assert_eq!(sqlite_directory(&config), Some(PathBuf::from(".")));
        config.database_url = Some("postgres://db/switchboard".into());
        assert_eq!(sqlite_directory(&config), None);
    }

    #[cfg(unix)]
    #[test]
    fn an_absurd_minimum_is_never_met() {
        let dir = std::env::temp_dir();
        assert!(check_free_space(&dir, 0).is_ok());
        assert!(matches!(
            check_free_space(&dir, u64::MAX),
            Err(NotReady::DiskLow { .. })
        ));
    }
}
