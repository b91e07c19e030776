//! Greetings and greeting rules: the [`GreetingStore`] trait, and the two statements the chat
//! transaction runs when a visitor answers a greeting.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::chat_from;
use super::{Backend, Conn, SqlStore, Transaction, all, execute, one, optional};
use crate::domain::{Chat, Greeting, GreetingCounts, GreetingRule, RuleConditions};
use crate::store::{DbError, DbResult, GreetingStore, from_millis, to_millis};

macro_rules! greeting_columns {
    () => {
        "id, organization_id, customer_id, agent_id, agent_name, rule_id, group_id, text, \
         created_at, shown_at, answered_at, chat_id, dismissed_at"
    };
}

macro_rules! rule_columns {
    () => {
        "id, organization_id, name, enabled, text, group_id, url_contains, url_pattern, \
         min_seconds_on_page, min_visits, referrer_contains, once_per_hours, created_at"
    };
}

const GREETING: &str = concat!(
    "SELECT ",
    greeting_columns!(),
    " FROM greetings WHERE id = $1 AND organization_id = $2"
);

const ANSWER_GREETING: &str = "UPDATE greetings SET answered_at = $1, chat_id = $2 \
     WHERE id = $3 AND answered_at IS NULL";

const OPEN_CHAT: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats c WHERE c.customer_id = $1 AND c.organization_id = $2 \
     AND c.status <> 'CLOSED' ORDER BY c.created_at DESC LIMIT 1"
);

fn greeting_from(row: &dyn super::Columns) -> DbResult<Greeting> {
    let at = |column: &str| -> DbResult<Option<DateTime<Utc>>> {
        Ok(row.opt_int(column)?.map(from_millis))
    };
    Ok(Greeting {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        customer_id: row.text("customer_id")?,
        agent_id: row.opt_text("agent_id")?,
        agent_name: row.opt_text("agent_name")?,
        rule_id: row.opt_text("rule_id")?,
        group_id: row.opt_text("group_id")?,
        text: row.text("text")?,
        created_at: from_millis(row.int("created_at")?),
        shown_at: at("shown_at")?,
        answered_at: at("answered_at")?,
        chat_id: row.opt_text("chat_id")?,
        dismissed_at: at("dismissed_at")?,
    })
}

fn rule_from(row: &dyn super::Columns) -> DbResult<GreetingRule> {
    Ok(GreetingRule {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        name: row.text("name")?,
        enabled: row.bool("enabled")?,
        text: row.text("text")?,
        group_id: row.opt_text("group_id")?,
        conditions: RuleConditions {
            url_contains: row.opt_text("url_contains")?,
            url_pattern: row.opt_text("url_pattern")?,
            min_seconds_on_page: row.opt_int32("min_seconds_on_page")?,
            min_visits: row.opt_int32("min_visits")?,
            referrer_contains: row.opt_text("referrer_contains")?,
        },
        once_per_hours: row.int32("once_per_hours")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A greeting of the organization, in the chat transaction.
pub(super) async fn greeting(
    conn: &mut dyn Conn,
    organization_id: &str,
    id: &str,
) -> DbResult<Greeting> {
    one(conn, GREETING, params![id, organization_id], greeting_from).await
}

/// Records that the greeting was answered by starting `chat_id`; false when it already was.
pub(super) async fn answer_greeting(
    conn: &mut dyn Conn,
    id: &str,
    chat_id: &str,
    at: DateTime<Utc>,
) -> DbResult<bool> {
    Ok(execute(conn, ANSWER_GREETING, params![to_millis(at), chat_id, id]).await? == 1)
}

/// Writes a new greeting on `conn`.
async fn insert_greeting(conn: &mut dyn Conn, g: &Greeting) -> DbResult<()> {
    execute(
        conn,
        "INSERT INTO greetings (id, organization_id, customer_id, agent_id, agent_name, \
         rule_id, group_id, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        params![
            &g.id,
            &g.organization_id,
            &g.customer_id,
            &g.agent_id,
            &g.agent_name,
            &g.rule_id,
            &g.group_id,
            &g.text,
            to_millis(g.created_at),
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> GreetingStore for SqlStore<B> {
    async fn insert_greeting(&self, g: &Greeting) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        insert_greeting(&mut tx, g).await?;
        tx.commit().await
    }

    async fn insert_rule_greeting(
        &self,
        g: &Greeting,
        rule_id: &str,
        not_since: DateTime<Utc>,
    ) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        // Locks the customer's row until commit (SQLite's one writer is locked already), so
        // nodes whose rules look at the same visitor at once greet them once.
        let customers = execute(
            &mut tx,
            "UPDATE customers SET visits = visits WHERE id = $1 AND organization_id = $2",
            params![&g.customer_id, &g.organization_id],
        )
        .await?;
        if customers == 0 {
            return Err(DbError::NotFound);
        }
        let last = optional(
            &mut tx,
            "SELECT MAX(created_at) FROM greetings WHERE rule_id = $1 AND customer_id = $2",
            params![rule_id, &g.customer_id],
            |r| r.opt_int(0),
        )
        .await?
        .flatten();
        if last.is_some_and(|last| last > to_millis(not_since)) {
            return Ok(false);
        }
        insert_greeting(&mut tx, g).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn greeting(&self, organization_id: &str, id: &str) -> DbResult<Greeting> {
        let mut conn = self.backend.read().await?;
        greeting(&mut conn, organization_id, id).await
    }

    async fn latest_greeting(
        &self,
        customer_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<Option<Greeting>> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            concat!(
                "SELECT ",
                greeting_columns!(),
                " FROM greetings WHERE customer_id = $1 AND created_at >= $2 \
                 ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            params![customer_id, to_millis(since)],
            greeting_from,
        )
        .await
    }

    async fn mark_greeting_shown(&self, id: &str, at: DateTime<Utc>) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE greetings SET shown_at = $1 WHERE id = $2 AND shown_at IS NULL",
            params![to_millis(at), id],
        )
        .await?;
        tx.commit().await?;
        Ok(changed == 1)
    }

    async fn dismiss_greeting(
        &self,
        organization_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<Greeting> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "UPDATE greetings SET dismissed_at = $1 WHERE id = $2 AND organization_id = $3 \
             AND dismissed_at IS NULL AND answered_at IS NULL",
            params![to_millis(at), id, organization_id],
        )
        .await?;
        let dismissed = greeting(&mut tx, organization_id, id).await?;
        tx.commit().await?;
        Ok(dismissed)
    }

    async fn last_rule_greeting_at(
        &self,
        rule_id: &str,
        customer_id: &str,
    ) -> DbResult<Option<DateTime<Utc>>> {
        let mut conn = self.backend.read().await?;
        let latest = optional(
            &mut conn,
            "SELECT MAX(created_at) FROM greetings WHERE rule_id = $1 AND customer_id = $2",
            params![rule_id, customer_id],
            |r| r.opt_int(0),
        )
        .await?;
        Ok(latest.flatten().map(from_millis))
    }

    async fn open_chat_of_customer(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<Option<Chat>> {
        let mut conn = self.backend.read().await?;
        optional(
            &mut conn,
            OPEN_CHAT,
            params![customer_id, organization_id],
            chat_from,
        )
        .await
    }

    async fn greeting_rules(&self, organization_id: &str) -> DbResult<Vec<GreetingRule>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                rule_columns!(),
                " FROM greeting_rules WHERE organization_id = $1 ORDER BY created_at, id"
            ),
            params![organization_id],
            rule_from,
        )
        .await
    }

    async fn greeting_rule(&self, organization_id: &str, id: &str) -> DbResult<GreetingRule> {
        let mut conn = self.backend.read().await?;
        one(
            &mut conn,
            concat!(
                "SELECT ",
                rule_columns!(),
                " FROM greeting_rules WHERE id = $1 AND organization_id = $2"
            ),
            params![id, organization_id],
            rule_from,
        )
        .await
    }

    async fn insert_greeting_rule(&self, rule: &GreetingRule) -> DbResult<()> {
        let c = &rule.conditions;
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            concat!(
                "INSERT INTO greeting_rules (",
                rule_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            params![
                &rule.id,
                &rule.organization_id,
                &rule.name,
                rule.enabled,
                &rule.text,
                &rule.group_id,
                &c.url_contains,
                &c.url_pattern,
                c.min_seconds_on_page,
                c.min_visits,
                &c.referrer_contains,
                rule.once_per_hours,
                to_millis(rule.created_at),
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn update_greeting_rule(&self, rule: &GreetingRule) -> DbResult<()> {
        let c = &rule.conditions;
        let mut tx = self.backend.write().await?;
        let changed = execute(
            &mut tx,
            "UPDATE greeting_rules SET name = $1, enabled = $2, text = $3, group_id = $4, \
             url_contains = $5, url_pattern = $6, min_seconds_on_page = $7, min_visits = $8, \
             referrer_contains = $9, once_per_hours = $10 \
             WHERE id = $11 AND organization_id = $12",
            params![
                &rule.name,
                rule.enabled,
                &rule.text,
                &rule.group_id,
                &c.url_contains,
                &c.url_pattern,
                c.min_seconds_on_page,
                c.min_visits,
                &c.referrer_contains,
                rule.once_per_hours,
                &rule.id,
                &rule.organization_id,
            ],
        )
        .await?;
        if changed == 0 {
            return Err(DbError::NotFound);
        }
        tx.commit().await
    }

    async fn delete_greeting_rule(&self, organization_id: &str, id: &str) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        // The greetings it sent stay, counted nowhere: their rule is gone.
        execute(
            &mut tx,
            "UPDATE greetings SET rule_id = NULL WHERE rule_id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        let deleted = execute(
            &mut tx,
            "DELETE FROM greeting_rules WHERE id = $1 AND organization_id = $2",
            params![id, organization_id],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    async fn greeting_counts(
        &self,
        organization_id: &str,
    ) -> DbResult<Vec<(String, GreetingCounts)>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            "SELECT rule_id, COUNT(shown_at), COUNT(answered_at), COUNT(dismissed_at) \
             FROM greetings WHERE rule_id IN \
             (SELECT id FROM greeting_rules WHERE organization_id = $1) GROUP BY rule_id",
            params![organization_id],
            |r| {
                Ok((
                    r.text(0)?,
                    GreetingCounts {
                        shown: r.int(1)?,
                        answered: r.int(2)?,
                        dismissed: r.int(3)?,
                    },
                ))
            },
        )
        .await
    }
}
