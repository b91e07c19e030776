//! Migrations compiled into the binary, so a single file runs anywhere. Each backend runs
//! its own list: SQLite with its runner (sqlite/migrations.rs), Postgres with sqlx's
//! migrator (postgres/). Both record them in `_sqlx_migrations`.

/// A migration: version, description, SQL.
pub(super) type Embedded = (i64, &'static str, &'static str);

/// SQLite's migrations, in order. Add a file to migrations/sqlite and a line here.
pub(super) const SQLITE: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "chats",
        include_str!("../../migrations/sqlite/0002_chats.sql"),
    ),
    (
        3,
        "push",
        include_str!("../../migrations/sqlite/0003_push.sql"),
    ),
    (
        4,
        "load_index",
        include_str!("../../migrations/sqlite/0004_load_index.sql"),
    ),
    (
        5,
        "queue_protection",
        include_str!("../../migrations/sqlite/0005_queue_protection.sql"),
    ),
    (
        6,
        "visitor_secret",
        include_str!("../../migrations/sqlite/0006_visitor_secret.sql"),
    ),
    (
        7,
        "access_changes",
        include_str!("../../migrations/sqlite/0007_access_changes.sql"),
    ),
    (
        8,
        "email_per_organization",
        include_str!("../../migrations/sqlite/0008_email_per_organization.sql"),
    ),
    (
        9,
        "widget",
        include_str!("../../migrations/sqlite/0009_widget.sql"),
    ),
    (
        10,
        "greetings",
        include_str!("../../migrations/sqlite/0010_greetings.sql"),
    ),
    (
        11,
        "web_push",
        include_str!("../../migrations/sqlite/0011_web_push.sql"),
    ),
    (
        12,
        "chat_reads",
        include_str!("../../migrations/sqlite/0012_chat_reads.sql"),
    ),
    (
        13,
        "canned_responses",
        include_str!("../../migrations/sqlite/0013_canned_responses.sql"),
    ),
    (
        14,
        "tags",
        include_str!("../../migrations/sqlite/0014_tags.sql"),
    ),
    (
        15,
        "notes_settings",
        include_str!("../../migrations/sqlite/0015_notes_settings.sql"),
    ),
    (
        16,
        "files",
        include_str!("../../migrations/sqlite/0016_files.sql"),
    ),
    (
        17,
        "archive_search",
        include_str!("../../migrations/sqlite/0017_archive_search.sql"),
    ),
    (
        18,
        "customer_profiles",
        include_str!("../../migrations/sqlite/0018_customer_profiles.sql"),
    ),
    (
        19,
        "reports",
        include_str!("../../migrations/sqlite/0019_reports.sql"),
    ),
    (
        20,
        "report_indexes",
        include_str!("../../migrations/sqlite/0020_report_indexes.sql"),
    ),
    (
        21,
        "report_transfers",
        include_str!("../../migrations/sqlite/0021_report_transfers.sql"),
    ),
    (
        22,
        "webhooks",
        include_str!("../../migrations/sqlite/0022_webhooks.sql"),
    ),
    (
        23,
        "messenger",
        include_str!("../../migrations/sqlite/0023_messenger.sql"),
    ),
    (
        24,
        "offline_email",
        include_str!("../../migrations/sqlite/0024_offline_email.sql"),
    ),
    (
        25,
        "cluster_work",
        include_str!("../../migrations/sqlite/0025_cluster_work.sql"),
    ),
    (
        26,
        "report_days",
        include_str!("../../migrations/sqlite/0026_report_days.sql"),
    ),
    (
        27,
        "metrics_indexes",
        include_str!("../../migrations/sqlite/0027_metrics_indexes.sql"),
    ),
];

/// Postgres's migrations, in order. Add a file to migrations/postgres and a line here.
pub(super) const POSTGRES: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "chats",
        include_str!("../../migrations/postgres/0002_chats.sql"),
    ),
    (
        3,
        "push",
        include_str!("../../migrations/postgres/0003_push.sql"),
    ),
    (
        4,
        "load_index",
        include_str!("../../migrations/postgres/0004_load_index.sql"),
    ),
    (
        5,
        "queue_protection",
        include_str!("../../migrations/postgres/0005_queue_protection.sql"),
    ),
    (
        6,
        "visitor_secret",
        include_str!("../../migrations/postgres/0006_visitor_secret.sql"),
    ),
    (
        7,
        "access_changes",
        include_str!("../../migrations/postgres/0007_access_changes.sql"),
    ),
    (
        8,
        "email_per_organization",
        include_str!("../../migrations/postgres/0008_email_per_organization.sql"),
    ),
    (
        9,
        "widget",
        include_str!("../../migrations/postgres/0009_widget.sql"),
    ),
    (
        10,
        "greetings",
        include_str!("../../migrations/postgres/0010_greetings.sql"),
    ),
    (
        11,
        "web_push",
        include_str!("../../migrations/postgres/0011_web_push.sql"),
    ),
    (
        12,
        "chat_reads",
        include_str!("../../migrations/postgres/0012_chat_reads.sql"),
    ),
    (
        13,
        "canned_responses",
        include_str!("../../migrations/postgres/0013_canned_responses.sql"),
    ),
    (
        14,
        "tags",
        include_str!("../../migrations/postgres/0014_tags.sql"),
    ),
    (
        15,
        "notes_settings",
        include_str!("../../migrations/postgres/0015_notes_settings.sql"),
    ),
    (
        16,
        "files",
        include_str!("../../migrations/postgres/0016_files.sql"),
    ),
    (
        17,
        "archive_search",
        include_str!("../../migrations/postgres/0017_archive_search.sql"),
    ),
    (
        18,
        "customer_profiles",
        include_str!("../../migrations/postgres/0018_customer_profiles.sql"),
    ),
    (
        19,
        "reports",
        include_str!("../../migrations/postgres/0019_reports.sql"),
    ),
    (
        20,
        "report_indexes",
        include_str!("../../migrations/postgres/0020_report_indexes.sql"),
    ),
    (
        21,
        "report_transfers",
        include_str!("../../migrations/postgres/0021_report_transfers.sql"),
    ),
    (
        22,
        "webhooks",
        include_str!("../../migrations/postgres/0022_webhooks.sql"),
    ),
    (
        23,
        "messenger",
        include_str!("../../migrations/postgres/0023_messenger.sql"),
    ),
    (
        24,
        "offline_email",
        include_str!("../../migrations/postgres/0024_offline_email.sql"),
    ),
    (
        25,
        "cluster_work",
        include_str!("../../migrations/postgres/0025_cluster_work.sql"),
    ),
    (
        26,
        "report_days",
        include_str!("../../migrations/postgres/0026_report_days.sql"),
    ),
    (
        27,
        "metrics_indexes",
        include_str!("../../migrations/postgres/0027_metrics_indexes.sql"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A file dropped into migrations/ but not listed here would silently never run.
    #[test]
    fn every_migration_file_is_embedded() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .filter(|name| name.ends_with(".sql"))
                .collect();
            files.sort();
            let listed: Vec<String> = list
                .iter()
                .map(|(version, description, _)| format!("{version:04}_{description}.sql"))
                .collect();
            assert_eq!(
                files, listed,
                "migrations/{dir} and store/migrations.rs disagree"
            );
        }
    }

    #[test]
    fn both_backends_have_the_same_versions() {
        let versions = |list: &[Embedded]| list.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>();
        assert_eq!(versions(SQLITE), versions(POSTGRES));
    }
}
