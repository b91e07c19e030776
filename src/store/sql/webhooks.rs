//! Webhook endpoints and their outbox of deliveries: the [`WebhookStore`] trait, and the chat
//! transaction's part (the enabled endpoints, and queuing a delivery in the change that causes
//! it).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{feed_data_json, json_error, parse};
use super::{Backend, Conn, SqlStore, Transaction, all, execute, one, optional, scalar, texts};
use crate::domain::{
    DeliveryStatus, FeedData, FeedEntry, FeedKind, WebhookDelivery, WebhookEndpoint, WebhookEvent,
};
use crate::store::{
    DbResult, DeliveryAttempt, DisablePolicy, WebhookStore, from_millis, to_millis,
};

macro_rules! endpoint_columns {
    () => {
        "id, organization_id, url, description, events, include_notes, kind, enabled, secret, \
         previous_secret, previous_secret_expires_at, consecutive_failures, failing_since, \
         disabled_reason, disabled_at, created_at, updated_at"
    };
}

macro_rules! delivery_columns {
    () => {
        "seq, id, endpoint_id, organization_id, event_type, chat_id, payload, status, attempts, \
         next_attempt_at, response_status, duration_ms, last_error, requested_by, created_at, \
         delivered_at"
    };
}

const ENDPOINT: &str = concat!(
    "SELECT ",
    endpoint_columns!(),
    " FROM webhook_endpoints WHERE id = $1"
);

const INSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries (id, endpoint_id, \
     organization_id, event_type, chat_id, payload, status, attempts, next_attempt_at, \
     requested_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10)";

const NEXT_FEED_SEQ: &str =
    "UPDATE agents SET feed_seq = feed_seq + 1 WHERE id = $1 RETURNING feed_seq";

const INSERT_FEED: &str = "INSERT INTO agent_feed (agent_id, seq, kind, chat_id, event_id, \
     data, created_at) VALUES ($1, $2, $3, NULL, NULL, $4, $5)";

/// Due deliveries of enabled endpoints, each only when no earlier delivery of its chat to
/// the same endpoint is unfinished. `$1` the lock's end, `$2` now, `$3` how many; the
/// dialect's row lock goes between the halves.
const CLAIM_HEAD: &str = "UPDATE webhook_deliveries SET status = 'SENDING', \
     locked_until = $1, attempts = attempts + 1 WHERE id IN (SELECT d.id FROM \
     webhook_deliveries d WHERE ((d.status = 'PENDING' AND d.next_attempt_at <= $2) \
     OR (d.status = 'SENDING' AND d.locked_until <= $2)) \
     AND d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled) \
     AND (d.chat_id IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
     WHERE p.endpoint_id = d.endpoint_id AND p.chat_id = d.chat_id AND p.seq < d.seq \
     AND p.status IN ('PENDING', 'SENDING'))) ORDER BY d.seq LIMIT $3";

const CLAIM_TAIL: &str = concat!(") RETURNING ", delivery_columns!());

fn endpoint_from(row: &dyn super::Columns) -> DbResult<WebhookEndpoint> {
    let events: Vec<String> = serde_json::from_str(&row.text("events")?).map_err(json_error)?;
    Ok(WebhookEndpoint {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        url: row.text("url")?,
        description: row.opt_text("description")?,
        // An event name a later version dropped is left out rather than failing the read.
        events: events.iter().filter_map(|e| e.parse().ok()).collect(),
        include_notes: row.bool("include_notes")?,
        kind: parse(row.text("kind")?)?,
        enabled: row.bool("enabled")?,
        secret: row.text("secret")?,
        previous_secret: row.opt_text("previous_secret")?,
        previous_secret_expires_at: row.opt_int("previous_secret_expires_at")?.map(from_millis),
        consecutive_failures: row.int32("consecutive_failures")?,
        failing_since: row.opt_int("failing_since")?.map(from_millis),
        disabled_reason: row.opt_text("disabled_reason")?,
        disabled_at: row.opt_int("disabled_at")?.map(from_millis),
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

fn delivery_from(row: &dyn super::Columns) -> DbResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        seq: row.int("seq")?,
        id: row.text("id")?,
        endpoint_id: row.text("endpoint_id")?,
        organization_id: row.text("organization_id")?,
        event: parse(row.text("event_type")?)?,
        chat_id: row.opt_text("chat_id")?,
        payload: row.text("payload")?,
        status: parse(row.text("status")?)?,
        attempts: row.int32("attempts")?,
        next_attempt_at: from_millis(row.int("next_attempt_at")?),
        response_status: row.opt_int32("response_status")?,
        duration_ms: row.opt_int("duration_ms")?,
        last_error: row.opt_text("last_error")?,
        requested_by: row.opt_text("requested_by")?,
        created_at: from_millis(row.int("created_at")?),
        delivered_at: row.opt_int("delivered_at")?.map(from_millis),
    })
}

fn events_json(endpoint: &WebhookEndpoint) -> DbResult<String> {
    let names: Vec<&str> = endpoint.events.iter().map(|e| e.as_str()).collect();
    serde_json::to_string(&names).map_err(json_error)
}

/// The organization's enabled endpoints.
pub(super) async fn webhook_targets(
    conn: &mut dyn Conn,
    organization_id: &str,
) -> DbResult<Vec<WebhookEndpoint>> {
    all(
        conn,
        concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE organization_id = $1 AND enabled ORDER BY created_at"
        ),
        params![organization_id],
        endpoint_from,
    )
    .await
}

/// Queues a delivery in the caller's transaction.
pub(super) async fn insert_delivery(
    conn: &mut dyn Conn,
    delivery: &WebhookDelivery,
) -> DbResult<()> {
    execute(
        conn,
        INSERT_DELIVERY,
        params![
            &delivery.id,
            &delivery.endpoint_id,
            &delivery.organization_id,
            delivery.event.as_str(),
            &delivery.chat_id,
            &delivery.payload,
            delivery.status.as_str(),
            to_millis(delivery.next_attempt_at),
            &delivery.requested_by,
            to_millis(delivery.created_at),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> WebhookStore for SqlStore<B> {
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let events = events_json(endpoint)?;
        execute(
            &mut tx,
            concat!(
                "INSERT INTO webhook_endpoints (",
                endpoint_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17)"
            ),
            params![
                &endpoint.id,
                &endpoint.organization_id,
                &endpoint.url,
                &endpoint.description,
                &events,
                endpoint.include_notes,
                endpoint.kind.as_str(),
                endpoint.enabled,
                &endpoint.secret,
                &endpoint.previous_secret,
                endpoint.previous_secret_expires_at.map(to_millis),
                endpoint.consecutive_failures,
                endpoint.failing_since.map(to_millis),
                &endpoint.disabled_reason,
                endpoint.disabled_at.map(to_millis),
                to_millis(endpoint.created_at),
                to_millis(endpoint.updated_at),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn webhook_endpoints(&self, organization_id: &str) -> DbResult<Vec<WebhookEndpoint>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                endpoint_columns!(),
                " FROM webhook_endpoints WHERE organization_id = $1 ORDER BY created_at, id"
            ),
            params![organization_id],
            endpoint_from,
        )
        .await
    }

    async fn webhook_endpoint(&self, organization_id: &str, id: &str) -> DbResult<WebhookEndpoint> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                endpoint_columns!(),
                " FROM webhook_endpoints WHERE id = $1 AND organization_id = $2"
            ),
            params![id, organization_id],
            endpoint_from,
        )
        .await
    }

    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let events = events_json(endpoint)?;
        let changed = execute(
            &mut tx,
            "UPDATE webhook_endpoints SET url = $1, description = $2, events = $3, \
             include_notes = $4, kind = $5, enabled = $6, secret = $7, previous_secret = $8, \
             previous_secret_expires_at = $9, consecutive_failures = $10, failing_since = $11, \
             disabled_reason = $12, disabled_at = $13, updated_at = $14 \
             WHERE id = $15 AND organization_id = $16",
            params![
                &endpoint.url,
                &endpoint.description,
                &events,
                endpoint.include_notes,
                endpoint.kind.as_str(),
                endpoint.enabled,
                &endpoint.secret,
                &endpoint.previous_secret,
                endpoint.previous_secret_expires_at.map(to_millis),
                endpoint.consecutive_failures,
                endpoint.failing_since.map(to_millis),
                &endpoint.disabled_reason,
                endpoint.disabled_at.map(to_millis),
                to_millis(endpoint.updated_at),
                &endpoint.id,
                &endpoint.organization_id,
            ],
        )
        .await?;
        if changed == 0 {
            return Err(crate::store::DbError::NotFound);
        }
        tx.commit().await
    }

    async fn delete_webhook_endpoint(&self, organization_id: &str, id: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        let deleted = execute(
            &mut tx,
            "DELETE FROM webhook_endpoints WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn queue_webhook_delivery(&self, delivery: &WebhookDelivery) -> DbResult<()> {
        self.queue_webhook_deliveries(std::slice::from_ref(delivery))
            .await
    }

    async fn queue_webhook_deliveries(&self, deliveries: &[WebhookDelivery]) -> DbResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut tx = self.backend.write().await?;
        for delivery in deliveries {
            insert_delivery(&mut tx, delivery).await?;
        }
        tx.commit().await
    }

    async fn webhook_deliveries(
        &self,
        organization_id: &str,
        endpoint_id: &str,
        before_seq: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<WebhookDelivery>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE organization_id = $1 AND endpoint_id = $2 \
                 AND seq < $3 ORDER BY seq DESC LIMIT $4"
            ),
            params![
                organization_id,
                endpoint_id,
                before_seq.unwrap_or(i64::MAX),
                limit
            ],
            delivery_from,
        )
        .await
    }

    async fn webhook_delivery(&self, organization_id: &str, id: &str) -> DbResult<WebhookDelivery> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE id = $1 AND organization_id = $2"
            ),
            params![id, organization_id],
            delivery_from,
        )
        .await
    }

    async fn chat_webhook_deliveries(
        &self,
        organization_id: &str,
        chat_id: &str,
        event: WebhookEvent,
    ) -> DbResult<Vec<WebhookDelivery>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM webhook_deliveries WHERE organization_id = $1 AND chat_id = $2 \
                 AND event_type = $3 ORDER BY seq DESC LIMIT 100"
            ),
            params![organization_id, chat_id, event.as_str()],
            delivery_from,
        )
        .await
    }

    async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(WebhookDelivery, WebhookEndpoint)>> {
        let mut tx = self.backend.write().await?;
        let sql = format!("{CLAIM_HEAD}{}{CLAIM_TAIL}", tx.dialect().skip_locked);
        let mut deliveries = all(
            &mut tx,
            &sql,
            params![to_millis(locked_until), to_millis(now), limit],
            delivery_from,
        )
        .await?;
        deliveries.sort_by_key(|d| d.seq);
        let mut claimed: Vec<(WebhookDelivery, WebhookEndpoint)> =
            Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let known = claimed
                .iter()
                .find(|(_, e)| e.id == delivery.endpoint_id)
                .map(|(_, e)| e.clone());
            let endpoint = match known {
                Some(endpoint) => endpoint,
                None => {
                    one(
                        &mut tx,
                        ENDPOINT,
                        params![&delivery.endpoint_id],
                        endpoint_from,
                    )
                    .await?
                }
            };
            claimed.push((delivery, endpoint));
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn next_webhook_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let next = one(
            &mut conn,
            "SELECT MIN(d.next_attempt_at) FROM webhook_deliveries d WHERE d.status = 'PENDING' \
             AND d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled)",
            params![],
            |r| r.opt_int(0),
        )
        .await?;
        Ok(next.map(from_millis))
    }

    async fn finish_webhook_delivery(
        &self,
        id: &str,
        attempt: &DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let delivered = (attempt.status == DeliveryStatus::Delivered).then(|| to_millis(at));
        execute(
            &mut tx,
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, \
             response_status = $3, duration_ms = $4, last_error = $5, locked_until = NULL, \
             delivered_at = COALESCE($6, delivered_at) WHERE id = $7",
            params![
                attempt.status.as_str(),
                to_millis(attempt.next_attempt_at),
                attempt.response_status,
                attempt.duration_ms,
                attempt.error.as_deref(),
                delivered,
                id,
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn record_webhook_result(
        &self,
        endpoint_id: &str,
        succeeded: bool,
        error: Option<&str>,
        policy: DisablePolicy,
        at: DateTime<Utc>,
    ) -> DbResult<Option<(WebhookEndpoint, Vec<FeedEntry>)>> {
        let mut tx = self.backend.write().await?;
        if succeeded {
            execute(
                &mut tx,
                "UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL \
                 WHERE id = $1 AND consecutive_failures > 0",
                params![endpoint_id],
            )
            .await?;
            tx.commit().await?;
            return Ok(None);
        }
        let endpoint = optional(
            &mut tx,
            concat!(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1, \
                 failing_since = COALESCE(failing_since, $2) WHERE id = $1 AND enabled \
                 RETURNING ",
                endpoint_columns!()
            ),
            params![endpoint_id, to_millis(at)],
            endpoint_from,
        )
        .await?;
        let Some(mut endpoint) = endpoint else {
            tx.commit().await?;
            return Ok(None);
        };
        let failing_for = (at - endpoint.failing_since.unwrap_or(at))
            .to_std()
            .unwrap_or_default();
        // Too many failures in a row, or failing (more than once) for too long.
        let disable = endpoint.consecutive_failures >= policy.after_failures.max(1)
            || (endpoint.consecutive_failures > 1 && failing_for >= policy.after);
        if !disable {
            tx.commit().await?;
            return Ok(None);
        }
        let reason = format!(
            "disabled after {} failed attempts in a row (failing for {}s); last error: {}",
            endpoint.consecutive_failures,
            failing_for.as_secs(),
            error.unwrap_or("unknown")
        );
        execute(
            &mut tx,
            "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, disabled_at = $3, \
             updated_at = $3 WHERE id = $4",
            params![false, &reason, to_millis(at), endpoint_id],
        )
        .await?;
        endpoint.enabled = false;
        endpoint.disabled_reason = Some(reason);
        endpoint.disabled_at = Some(at);
        let admins = texts(
            &mut tx,
            "SELECT id FROM agents WHERE organization_id = $1 AND active \
             AND role IN ('ADMIN', 'OWNER') ORDER BY id",
            params![&endpoint.organization_id],
        )
        .await?;
        let data = FeedData {
            reason: Some(format!(
                "The webhook endpoint {} was {}",
                endpoint.url,
                endpoint.disabled_reason.as_deref().unwrap_or_default()
            )),
            ..FeedData::default()
        };
        let json = feed_data_json(&data)?;
        let mut entries = Vec::with_capacity(admins.len());
        for agent_id in admins {
            let seq = scalar(&mut tx, NEXT_FEED_SEQ, params![&agent_id]).await?;
            execute(
                &mut tx,
                INSERT_FEED,
                params![
                    &agent_id,
                    seq,
                    FeedKind::WebhookEndpointDisabled.as_str(),
                    &json,
                    to_millis(at)
                ],
            )
            .await?;
            entries.push(FeedEntry {
                agent_id,
                seq,
                kind: FeedKind::WebhookEndpointDisabled,
                chat_id: None,
                event: None,
                data: data.clone(),
                created_at: at,
            });
        }
        tx.commit().await?;
        Ok(Some((endpoint, entries)))
    }
}
