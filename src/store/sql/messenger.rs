//! Facebook Messenger: the [`MessengerStore`] trait (pages, Messenger customers, incoming
//! message ids, the Send API outbox and its receipts), and the chat transaction's part: who a
//! chat's customer is on Messenger, and queuing an agent's message in the change that adds it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Backend, Conn, SqlStore, Transaction, Value, all, execute, on_unique, optional};
use crate::domain::{
    DeliveryState, MessageDelivery, MessengerPage, MessengerSend, MessengerSendStatus,
};
use crate::store::{DbError, DbResult, MessengerStore, from_millis, to_millis};

const PAGE_COLUMNS: &str = "id, organization_id, page_id, name, access_token, app_secret, \
     verify_token, group_id, created_at";

const SEND_COLUMNS: &str = "s.id, s.organization_id, s.chat_id, s.event_id, s.page_id, s.psid, \
     s.kind, s.text, s.messaging_type, s.tag, s.attempts, s.created_at";

const PAGE_TAKEN: &str = "this Facebook page is connected already";

fn page_from(row: &dyn super::Columns) -> DbResult<MessengerPage> {
    Ok(MessengerPage {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        page_id: row.text("page_id")?,
        name: row.opt_text("name")?,
        access_token: row.text("access_token")?,
        app_secret: row.text("app_secret")?,
        verify_token: row.text("verify_token")?,
        group_id: row.opt_text("group_id")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

fn send_from(row: &dyn super::Columns) -> DbResult<MessengerSend> {
    Ok(MessengerSend {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        chat_id: row.text("chat_id")?,
        event_id: row.opt_text("event_id")?,
        page_id: row.text("page_id")?,
        psid: row.text("psid")?,
        kind: row.text("kind")?.parse().map_err(DbError::from)?,
        text: row.opt_text("text")?,
        messaging_type: row.opt_text("messaging_type")?,
        tag: row.opt_text("tag")?,
        attempts: row.int32("attempts")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Messenger user a customer is, and when they last wrote.
pub(super) async fn messenger_recipient(
    conn: &mut dyn Conn,
    customer_id: &str,
) -> DbResult<Option<(String, String, DateTime<Utc>)>> {
    optional(
        conn,
        "SELECT page_id, psid, last_message_at FROM messenger_customers WHERE customer_id = $1",
        params![customer_id],
        |r| {
            Ok((
                r.text("page_id")?,
                r.text("psid")?,
                from_millis(r.int("last_message_at")?),
            ))
        },
    )
    .await
}

/// Queues a Send API call, due at once.
pub(super) async fn insert_send(conn: &mut dyn Conn, send: &MessengerSend) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO messenger_sends (id, organization_id, chat_id, event_id, page_id, psid, \
         kind, text, messaging_type, tag, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'PENDING', 0, $11, $11)",
        params![
            &send.id,
            &send.organization_id,
            &send.chat_id,
            &send.event_id,
            &send.page_id,
            &send.psid,
            send.kind.as_str(),
            &send.text,
            &send.messaging_type,
            &send.tag,
            to_millis(send.created_at),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> MessengerStore for SqlStore<B> {
    async fn messenger_pages(&self, organization_id: &str) -> DbResult<Vec<MessengerPage>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            &format!(
                "SELECT {PAGE_COLUMNS} FROM messenger_pages WHERE organization_id = $1 \
                 ORDER BY created_at, id"
            ),
            params![organization_id],
            page_from,
        )
        .await
    }

    async fn messenger_page(&self, organization_id: &str, id: &str) -> DbResult<MessengerPage> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            &format!(
                "SELECT {PAGE_COLUMNS} FROM messenger_pages WHERE id = $1 AND organization_id = $2"
            ),
            params![id, organization_id],
            page_from,
        )
        .await?
        .ok_or(DbError::NotFound)
    }

    async fn messenger_page_by_page_id(&self, page_id: &str) -> DbResult<Option<MessengerPage>> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            &format!("SELECT {PAGE_COLUMNS} FROM messenger_pages WHERE page_id = $1"),
            params![page_id],
            page_from,
        )
        .await
    }

    async fn messenger_verify_token_known(&self, verify_token: &str) -> DbResult<bool> {
        let mut conn = self.backend.read().await?;
        Ok(optional(
            &mut conn,
            "SELECT 1 FROM messenger_pages WHERE verify_token = $1 LIMIT 1",
            params![verify_token],
            |_| Ok(()),
        )
        .await?
        .is_some())
    }

    async fn insert_messenger_page(&self, page: &MessengerPage) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO messenger_pages (id, organization_id, page_id, name, access_token, \
             app_secret, verify_token, group_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                &page.id,
                &page.organization_id,
                &page.page_id,
                &page.name,
                &page.access_token,
                &page.app_secret,
                &page.verify_token,
                &page.group_id,
                to_millis(page.created_at),
            ],
        )
        .await
        .map_err(on_unique(PAGE_TAKEN))?;
        tx.commit().await
    }

    async fn update_messenger_page(&self, page: &MessengerPage) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE messenger_pages SET name = $1, access_token = $2, app_secret = $3, \
             verify_token = $4, group_id = $5 WHERE id = $6 AND organization_id = $7",
            params![
                &page.name,
                &page.access_token,
                &page.app_secret,
                &page.verify_token,
                &page.group_id,
                &page.id,
                &page.organization_id,
            ],
        )
        .await?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn delete_messenger_page(&self, organization_id: &str, id: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "DELETE FROM messenger_pages WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn messenger_customer(
        &self,
        organization_id: &str,
        psid: &str,
    ) -> DbResult<Option<String>> {
        let mut conn = self.backend.read().await?;
        super::optional_text(
            &mut conn,
            "SELECT customer_id FROM messenger_customers WHERE organization_id = $1 AND psid = $2",
            params![organization_id, psid],
        )
        .await
    }

    async fn create_messenger_customer(
        &self,
        organization_id: &str,
        page_id: &str,
        psid: &str,
        name: &str,
        profile_pic: Option<&str>,
        new_customer_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<String> {
        let mut tx = self.backend.write().await?;
        // The visitor id only keeps the customer apart from the widget's visitors.
        let visitor_id = format!("messenger-{psid}");
        execute(
            &mut tx,
            "INSERT INTO customers (id, organization_id, visitor_id, name, visits, created_at, \
             last_seen_at) VALUES ($1, $2, $3, $4, 1, $5, $5) \
             ON CONFLICT (organization_id, visitor_id) DO NOTHING",
            params![
                new_customer_id,
                organization_id,
                &visitor_id,
                name,
                to_millis(at)
            ],
        )
        .await?;
        let customer_id = super::optional_text(
            &mut tx,
            "SELECT id FROM customers WHERE organization_id = $1 AND visitor_id = $2",
            params![organization_id, &visitor_id],
        )
        .await?
        .ok_or(DbError::NotFound)?;
        execute(
            &mut tx,
            "INSERT INTO messenger_customers (organization_id, psid, page_id, customer_id, \
             profile_pic, last_message_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (organization_id, psid) DO NOTHING",
            params![
                organization_id,
                psid,
                page_id,
                &customer_id,
                profile_pic,
                to_millis(at)
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(customer_id)
    }

    async fn touch_messenger_customer(
        &self,
        organization_id: &str,
        psid: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE messenger_customers SET last_message_at = $1 \
             WHERE organization_id = $2 AND psid = $3 AND last_message_at < $1",
            params![to_millis(at), organization_id, psid],
        )
        .await?;
        tx.commit().await
    }

    async fn claim_messenger_mid(&self, mid: &str, at: DateTime<Utc>) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let inserted = execute(
            &mut tx,
            "INSERT INTO messenger_inbound (mid, received_at) VALUES ($1, $2) \
             ON CONFLICT (mid) DO NOTHING",
            params![mid, to_millis(at)],
        )
        .await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }

    async fn release_messenger_mid(&self, mid: &str) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "DELETE FROM messenger_inbound WHERE mid = $1",
            params![mid],
        )
        .await?;
        tx.commit().await
    }

    async fn insert_messenger_action(
        &self,
        send: &MessengerSend,
        since: DateTime<Utc>,
    ) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let recent = optional(
            &mut tx,
            "SELECT 1 FROM messenger_sends WHERE page_id = $1 AND psid = $2 AND kind = $3 \
             AND created_at > $4 LIMIT 1",
            params![
                &send.page_id,
                &send.psid,
                send.kind.as_str(),
                to_millis(since)
            ],
            |_| Ok(()),
        )
        .await?;
        if recent.is_some() {
            return Ok(false);
        }
        insert_send(&mut tx, send).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn messenger_recipient_of_chat(
        &self,
        chat_id: &str,
    ) -> DbResult<Option<(String, String)>> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            "SELECT m.page_id, m.psid FROM chats c \
             JOIN messenger_customers m ON m.customer_id = c.customer_id \
             WHERE c.id = $1 AND c.channel = 'MESSENGER'",
            params![chat_id],
            |r| Ok((r.text("page_id")?, r.text("psid")?)),
        )
        .await
    }

    async fn next_messenger_send_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let next = optional(
            &mut conn,
            "SELECT MIN(next_attempt_at) FROM messenger_sends WHERE status = 'PENDING'",
            params![],
            |r| r.opt_int(0),
        )
        .await?;
        Ok(next.flatten().map(from_millis))
    }

    async fn claim_messenger_sends(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(MessengerSend, String)>> {
        let mut tx = self.backend.write().await?;
        // The outer condition is checked again on the row as it is once locked, so on
        // Postgres a send another worker claimed meanwhile is skipped, never claimed twice.
        let claimed = all(
            &mut tx,
            "UPDATE messenger_sends SET status = 'SENDING', locked_until = $1, \
             attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM messenger_sends WHERE (status = 'PENDING' AND \
             next_attempt_at <= $2) OR (status = 'SENDING' AND locked_until <= $2) \
             ORDER BY next_attempt_at LIMIT $3) \
             AND ((status = 'PENDING' AND next_attempt_at <= $2) \
             OR (status = 'SENDING' AND locked_until <= $2)) \
             RETURNING id",
            params![to_millis(locked_until), to_millis(now), limit],
            |r| r.text(0),
        )
        .await?;
        let mut out = Vec::with_capacity(claimed.len());
        if !claimed.is_empty() {
            let sql = format!(
                "SELECT {SEND_COLUMNS}, p.access_token FROM messenger_sends s \
                 JOIN messenger_pages p ON p.page_id = s.page_id \
                 WHERE s.id IN ({}) ORDER BY s.created_at, s.id",
                placeholders(1, claimed.len())
            );
            let params: Vec<Value<'_>> = claimed.iter().map(Value::from).collect();
            out = all(&mut tx, &sql, &params, |r| {
                Ok((send_from(r)?, r.text("access_token")?))
            })
            .await?;
            // A send whose page was disconnected cannot go out.
            if out.len() < claimed.len() {
                let found: Vec<&str> = out.iter().map(|(s, _)| s.id.as_str()).collect();
                for id in claimed.iter().filter(|id| !found.contains(&id.as_str())) {
                    execute(
                        &mut tx,
                        "UPDATE messenger_sends SET status = 'FAILED', \
                         last_error = 'the Facebook page was disconnected' WHERE id = $1",
                        params![id],
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn finish_messenger_send(
        &self,
        id: &str,
        status: MessengerSendStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        mid: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let sent_at = (status == MessengerSendStatus::Sent).then(|| to_millis(at));
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE messenger_sends SET status = $1, next_attempt_at = $2, last_error = $3, \
             mid = COALESCE($4, mid), sent_at = COALESCE($5, sent_at), locked_until = NULL \
             WHERE id = $6",
            params![
                status.as_str(),
                to_millis(next_attempt_at),
                error,
                mid,
                sent_at,
                id
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn mark_messenger_receipts(
        &self,
        page_id: &str,
        psid: &str,
        watermark: DateTime<Utc>,
        read: bool,
    ) -> DbResult<u64> {
        // Read implies delivered: a read receipt may come without a delivery receipt.
        let sql = if read {
            "UPDATE messenger_sends SET read_at = $1, delivered_at = COALESCE(delivered_at, $1) \
             WHERE page_id = $2 AND psid = $3 AND kind = 'MESSAGE' AND status = 'SENT' \
             AND sent_at <= $1 AND read_at IS NULL"
        } else {
            "UPDATE messenger_sends SET delivered_at = $1 \
             WHERE page_id = $2 AND psid = $3 AND kind = 'MESSAGE' AND status = 'SENT' \
             AND sent_at <= $1 AND delivered_at IS NULL"
        };
        let mut tx = self.backend.write().await?;
        let changed = execute(&mut tx, sql, params![to_millis(watermark), page_id, psid]).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn message_deliveries(&self, event_ids: &[String]) -> DbResult<Vec<MessageDelivery>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT event_id, status, last_error, delivered_at, read_at FROM messenger_sends \
             WHERE event_id IN ({})",
            placeholders(1, event_ids.len())
        );
        let params: Vec<Value<'_>> = event_ids.iter().map(Value::from).collect();
        let mut conn = self.backend.read().await?;
        all(&mut conn, &sql, &params, |r| {
            let status: MessengerSendStatus = r.text("status")?.parse().map_err(DbError::from)?;
            let state = DeliveryState::of(
                status,
                r.opt_int("delivered_at")?.is_some(),
                r.opt_int("read_at")?.is_some(),
            );
            Ok(MessageDelivery {
                event_id: r.text("event_id")?,
                state,
                error: r
                    .opt_text("last_error")?
                    .filter(|_| state == DeliveryState::Failed),
            })
        })
        .await
    }
}
