//! What /metrics reads at each scrape ([`GaugeStore`]): open chats and accepting agents per
//! organization over the partial indexes of migration 0027, and each outbox's backlog over
//! its `(status, next_attempt_at)` index.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, SqlStore, all};
use crate::store::{DbResult, GaugeStore, OrganizationLoad, OutboxBacklog, from_millis, to_millis};

/// Per organization: active and queued chats. The WHERE term is the index's own, so SQLite
/// uses the partial index too.
const OPEN_CHATS: &str = "SELECT organization_id, \
     SUM(CASE WHEN status = 'ACTIVE' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN status = 'QUEUED' THEN 1 ELSE 0 END) \
     FROM chats WHERE status IN ('QUEUED', 'ACTIVE') GROUP BY organization_id";

const ACCEPTING_AGENTS: &str = "SELECT organization_id, COUNT(*) FROM agents \
     WHERE routing_status = 'ACCEPTING_CHATS' AND active = $1 GROUP BY organization_id";

/// Pushes split by the device's platform: Web Push has a worker path of its own.
const PUSH_BACKLOG: &str = "SELECT CASE WHEN d.platform = 'WEB' THEN 'webpush' ELSE 'push' END, \
     COUNT(*), \
     MIN(CASE WHEN j.status = 'PENDING' AND j.next_attempt_at <= $1 THEN j.next_attempt_at END) \
     FROM push_jobs j JOIN push_devices d ON d.id = j.device_id \
     WHERE j.status IN ('PENDING', 'SENDING') \
     GROUP BY CASE WHEN d.platform = 'WEB' THEN 'webpush' ELSE 'push' END";

/// The other outboxes, one table each; `{table}` is one of ours, never input.
const BACKLOG: &str = "SELECT COUNT(*), \
     MIN(CASE WHEN status = 'PENDING' AND next_attempt_at <= $1 THEN next_attempt_at END) \
     FROM {table} WHERE status IN ('PENDING', 'SENDING')";

#[async_trait]
impl<B: Backend> GaugeStore for SqlStore<B> {
    async fn first_organizations(&self, limit: i64) -> DbResult<Vec<(String, String)>> {
        let mut conn = self.backend.read().await?;
        // Ids are UUIDv7: their order is the order of creation, and the primary key's.
        all(
            &mut conn,
            "SELECT id, name FROM organizations ORDER BY id LIMIT $1",
            params![limit],
            |r| Ok((r.text(0)?, r.text(1)?)),
        )
        .await
    }

    async fn organization_load(&self) -> DbResult<Vec<OrganizationLoad>> {
        let mut conn = self.backend.read().await?;
        let chats = all(&mut conn, OPEN_CHATS, params![], |r| {
            Ok((r.text(0)?, r.int(1)?, r.int(2)?))
        })
        .await?;
        let agents = all(&mut conn, ACCEPTING_AGENTS, params![true], |r| {
            Ok((r.text(0)?, r.int(1)?))
        })
        .await?;
        let mut load: BTreeMap<String, OrganizationLoad> = BTreeMap::new();
        fn row(load: &mut BTreeMap<String, OrganizationLoad>, id: String) -> &mut OrganizationLoad {
            load.entry(id.clone()).or_insert_with(|| OrganizationLoad {
                organization_id: id,
                ..OrganizationLoad::default()
            })
        }
        for (id, active, queued) in chats {
            let row = row(&mut load, id);
            row.active_chats = active;
            row.queued_chats = queued;
        }
        for (id, accepting) in agents {
            row(&mut load, id).accepting_agents = accepting;
        }
        Ok(load.into_values().collect())
    }

    async fn outbox_backlog(&self, now: DateTime<Utc>) -> DbResult<Vec<OutboxBacklog>> {
        let now = to_millis(now);
        let mut conn = self.backend.read().await?;
        let pushes = all(&mut conn, PUSH_BACKLOG, params![now], |r| {
            Ok((r.text(0)?, r.int(1)?, r.opt_int(2)?))
        })
        .await?;
        let mut backlog: Vec<OutboxBacklog> = ["push", "webpush"]
            .into_iter()
            .map(|kind| {
                let found = pushes.iter().find(|(k, _, _)| k == kind);
                OutboxBacklog {
                    kind,
                    depth: found.map_or(0, |(_, depth, _)| *depth),
                    oldest_due_at: found.and_then(|(_, _, due)| due.map(from_millis)),
                }
            })
            .collect();
        for (kind, table) in [
            ("webhooks", "webhook_deliveries"),
            ("messenger", "messenger_sends"),
            ("email", "email_jobs"),
        ] {
            let sql = BACKLOG.replace("{table}", table);
            let row = all(&mut conn, &sql, params![now], |r| {
                Ok((r.int(0)?, r.opt_int(1)?))
            })
            .await?;
            let (depth, due) = row.into_iter().next().unwrap_or((0, None));
            backlog.push(OutboxBacklog {
                kind,
                depth,
                oldest_due_at: due.map(from_millis),
            });
        }
        Ok(backlog)
    }
}
