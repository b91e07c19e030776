//! The archive, customer profiles and bans: the [`ArchiveStore`] trait.
//!
//! The archive's query is put together from the filter: each filter adds a condition and its
//! parameters. The search index holds one row per message and one per chat for its customer's
//! name and email (`chat_search_rows`; migration 0028): a search's groups are each read from
//! the full-text index once as the set of chats with a matching row, intersected, less the
//! chats matching an exclusion. SQLite matches the FTS5 table `chat_search_text` and cuts its
//! snippet with `snippet()`; Postgres matches `chat_search_rows.document` (a tsvector with a
//! GIN index) and cuts its snippet with `ts_headline`, both for the page's chats only. Both
//! match the query the domain compiled from the same syntax tree (`SearchQuery`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{chat_from, customer_from};
use super::{Backend, SqlStore, Transaction, Value, all, execute, one, optional};
use crate::domain::{
    ArchiveCursor, ArchiveEntry, ArchiveFilter, ArchiveScope, CustomField, Customer, CustomerBan,
    CustomerProfile, HIGHLIGHT_END, HIGHLIGHT_START, snippet_parts,
};
use crate::store::{ArchiveStore, CustomerChange, DbError, DbResult, from_millis, to_millis};

macro_rules! ban_columns {
    () => {
        "id, organization_id, customer_id, visitor_id, ip_address, reason, created_by, \
         created_at, expires_at, lifted_at, lifted_by"
    };
}

fn ban_from(row: &dyn super::Columns) -> DbResult<CustomerBan> {
    Ok(CustomerBan {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        customer_id: row.text("customer_id")?,
        visitor_id: row.text("visitor_id")?,
        ip_address: row.opt_text("ip_address")?,
        reason: row.text("reason")?,
        created_by: row.text("created_by")?,
        created_at: from_millis(row.int("created_at")?),
        expires_at: row.opt_int("expires_at")?.map(from_millis),
        lifted_at: row.opt_int("lifted_at")?.map(from_millis),
        lifted_by: row.opt_text("lifted_by")?,
    })
}

/// A parameter the query builder owns until the statement runs.
enum Param {
    Int(i64),
    Text(String),
}

/// The WHERE conditions of an archive query and their parameters, numbered as added.
struct Conditions {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Conditions {
    fn new() -> Self {
        Conditions {
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter; its placeholder.
    fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn text(&mut self, text: &str) -> String {
        self.param(Param::Text(text.to_owned()))
    }

    fn int(&mut self, int: i64) -> String {
        self.param(Param::Int(int))
    }

    fn clause(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn values(&self) -> Vec<Value<'_>> {
        self.params
            .iter()
            .map(|p| match p {
                Param::Int(i) => Value::Int(*i),
                Param::Text(t) => Value::Text(t),
            })
            .collect()
    }

    /// The filter's conditions on `c` (chats), the scope's, and the cursor's.
    fn archive(
        &mut self,
        organization_id: &str,
        scope: &ArchiveScope,
        filter: &ArchiveFilter,
        after: Option<&ArchiveCursor>,
    ) {
        let org = self.text(organization_id);
        self.clause(format!("c.organization_id = {org}"));
        if let ArchiveScope::Own {
            agent_id,
            group_chats,
            group_ids,
        } = scope
        {
            let me = self.text(agent_id);
            // An agent without groups is in every group; a chat without a group is everybody's.
            let in_group = if group_ids.is_empty() {
                "1 = 1".to_owned()
            } else {
                format!(
                    "(c.group_id IS NULL OR c.group_id IN \
                     (SELECT m.group_id FROM group_members m WHERE m.agent_id = {me}))"
                )
            };
            let of_group = if *group_chats {
                in_group
            } else {
                format!("(c.status = 'QUEUED' AND {in_group})")
            };
            self.clause(format!(
                "(c.assignee_id = {me} OR EXISTS (SELECT 1 FROM chat_participants p \
                 WHERE p.chat_id = c.id AND p.agent_id = {me}) OR {of_group})"
            ));
        }
        if let Some(status) = filter.status {
            let p = self.text(status.as_str());
            self.clause(format!("c.status = {p}"));
        }
        if let Some(agent_id) = &filter.agent_id {
            let p = self.text(agent_id);
            self.clause(format!(
                "(c.assignee_id = {p} OR EXISTS (SELECT 1 FROM chat_participants pa \
                 WHERE pa.chat_id = c.id AND pa.agent_id = {p} AND pa.role = 'PREVIOUS_ASSIGNEE'))"
            ));
        }
        if let Some(group_id) = &filter.group_id {
            let p = self.text(group_id);
            self.clause(format!("c.group_id = {p}"));
        }
        if let Some(tag_id) = &filter.tag_id {
            let p = self.text(tag_id);
            self.clause(format!(
                "EXISTS (SELECT 1 FROM chat_tags t WHERE t.chat_id = c.id AND t.tag_id = {p})"
            ));
        }
        if let Some(rating) = filter.rating {
            let p = self.text(rating.as_str());
            self.clause(format!("c.rating = {p}"));
        }
        if let Some(channel) = filter.channel {
            let p = self.text(channel.as_str());
            self.clause(format!("c.channel = {p}"));
        }
        if let Some(from) = filter.from {
            let p = self.int(to_millis(from));
            self.clause(format!("c.created_at >= {p}"));
        }
        if let Some(to) = filter.to {
            let p = self.int(to_millis(to));
            self.clause(format!("c.created_at < {p}"));
        }
        if let Some(customer_id) = &filter.customer_id {
            let p = self.text(customer_id);
            self.clause(format!("c.customer_id = {p}"));
        }
        if let Some(after) = after {
            let at = self.int(after.created_at_ms);
            let id = self.text(&after.chat_id);
            self.clause(format!(
                "(c.created_at < {at} OR (c.created_at = {at} AND c.id < {id}))"
            ));
        }
    }

    fn where_sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

const ORDER: &str = " ORDER BY c.created_at DESC, c.id DESC LIMIT ";

/// The chats of the organization (placeholder `org`) with a search row matching `query` (a
/// placeholder holding an FTS5 expression on SQLite, `to_tsquery` text on Postgres), each
/// once however many of its rows match.
fn chats_matching(postgres: bool, org: &str, query: &str) -> String {
    if postgres {
        format!(
            "SELECT DISTINCT chat_id FROM chat_search_rows WHERE organization_id = {org} \
             AND document @@ to_tsquery('simple', {query})"
        )
    } else {
        format!(
            "SELECT DISTINCT r.chat_id FROM chat_search_text CROSS JOIN chat_search_rows r \
             WHERE chat_search_text MATCH {query} AND r.id = chat_search_text.rowid \
             AND r.organization_id = {org}"
        )
    }
}

/// Options of Postgres's `ts_headline`: the highlight markers the domain splits on, and a
/// snippet of a few fragments of a dozen words or so.
fn headline_options() -> String {
    format!(
        "StartSel={HIGHLIGHT_START}, StopSel={HIGHLIGHT_END}, MaxWords=24, MinWords=8, \
         MaxFragments=2, FragmentDelimiter=\" … \""
    )
}

fn customer_text(change: &CustomerChange) -> String {
    serde_json::to_string(&change.profile.custom_fields).unwrap_or_else(|_| "[]".into())
}

#[async_trait]
impl<B: Backend> ArchiveStore for SqlStore<B> {
    async fn archive(
        &self,
        organization_id: &str,
        scope: &ArchiveScope,
        filter: &ArchiveFilter,
        after: Option<&ArchiveCursor>,
        limit: i64,
    ) -> DbResult<Vec<ArchiveEntry>> {
        let mut cond = Conditions::new();
        let sql = match (&filter.search, self.backend.name()) {
            (None, _) => {
                cond.archive(organization_id, scope, filter, after);
                let limit = cond.int(limit);
                format!(
                    "SELECT {} FROM chats c WHERE {}{ORDER}{limit}",
                    chat_columns!(),
                    cond.where_sql()
                )
            }
            (Some(search), backend) => {
                let postgres = backend == "postgres";
                let compiled = if postgres {
                    search.to_tsquery()
                } else {
                    search.to_fts5()
                };
                // The chats with a row matching every group and none matching an exclusion,
                // each group read from the full-text index once.
                let org = cond.text(organization_id);
                let mut matched = Vec::new();
                for group in &compiled.groups {
                    let query = cond.text(group);
                    matched.push(chats_matching(postgres, &org, &query));
                }
                let mut matched = matched.join(" INTERSECT ");
                if let Some(excluded) = &compiled.excluded {
                    let query = cond.text(excluded);
                    matched.push_str(" EXCEPT ");
                    matched.push_str(&chats_matching(postgres, &org, &query));
                }
                cond.archive(organization_id, scope, filter, after);
                let limit = cond.int(limit);
                // CROSS JOIN keeps the matches the outer loop (SQLite): they are read once and
                // sorted, rather than every chat of the organization probed in turn.
                format!(
                    "WITH matched (chat_id) AS ({matched}) SELECT {} FROM matched m \
                     CROSS JOIN chats c WHERE c.id = m.chat_id AND {}{ORDER}{limit}",
                    chat_columns!(),
                    cond.where_sql()
                )
            }
        };
        let values = cond.values();
        let mut conn = self.backend.read().await?;
        let chats = all(&mut conn, &sql, &values, chat_from).await?;
        let Some(search) = &filter.search else {
            return Ok(chats
                .into_iter()
                .map(|chat| ArchiveEntry {
                    chat,
                    snippet: None,
                })
                .collect());
        };
        if chats.is_empty() {
            return Ok(Vec::new());
        }
        // Each chat's snippet: its first message that matches any of the search's phrases,
        // or its customer's name and email when only they do.
        let postgres = self.backend.name() == "postgres";
        let mut cond = Conditions::new();
        let ids: Vec<String> = chats.iter().map(|c| cond.text(&c.id)).collect();
        let ids = ids.join(", ");
        let sql = if postgres {
            let query = cond.text(&search.to_tsquery().any);
            let options = cond.text(&headline_options());
            format!(
                "SELECT s.chat_id, ts_headline('simple', s.text, to_tsquery('simple', {query}), \
                 {options}) AS snippet FROM (SELECT DISTINCT ON (chat_id) chat_id, text \
                 FROM chat_search_rows WHERE chat_id IN ({ids}) \
                 AND document @@ to_tsquery('simple', {query}) \
                 ORDER BY chat_id, event_id IS NULL, id) s"
            )
        } else {
            let query = cond.text(&search.to_fts5().any);
            format!(
                "SELECT r.chat_id, snippet(chat_search_text, 0, char(1), char(2), '…', 16) \
                 AS snippet FROM chat_search_rows r CROSS JOIN chat_search_text \
                 WHERE r.chat_id IN ({ids}) AND chat_search_text.rowid = r.id \
                 AND chat_search_text MATCH {query} ORDER BY r.event_id IS NULL, r.id"
            )
        };
        let values = cond.values();
        let rows = all(&mut conn, &sql, &values, |row| {
            Ok((row.text("chat_id")?, row.text("snippet")?))
        })
        .await?;
        let mut snippets: HashMap<String, String> = HashMap::new();
        for (chat_id, snippet) in rows {
            snippets.entry(chat_id).or_insert(snippet);
        }
        Ok(chats
            .into_iter()
            .map(|chat| {
                let snippet = snippets.get(&chat.id).map(String::as_str);
                ArchiveEntry {
                    snippet: Some(snippet_parts(snippet.unwrap_or_default())),
                    chat,
                }
            })
            .collect())
    }

    async fn customer_profile(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<CustomerProfile> {
        let mut conn = self.backend.read().await?;
        let profile = optional(
            &mut conn,
            "SELECT first_name, phone, note, custom_fields, updated_at FROM customer_profiles \
             WHERE customer_id = $1 AND organization_id = $2",
            params![customer_id, organization_id],
            |row| {
                let fields: Vec<CustomField> = serde_json::from_str(&row.text("custom_fields")?)
                    .map_err(|err| DbError::Other(Box::new(err)))?;
                Ok(CustomerProfile {
                    first_name: row.opt_text("first_name")?,
                    phone: row.opt_text("phone")?,
                    note: row.opt_text("note")?,
                    custom_fields: fields,
                    updated_at: Some(from_millis(row.int("updated_at")?)),
                })
            },
        )
        .await?;
        Ok(profile.unwrap_or_default())
    }

    async fn update_customer(
        &self,
        organization_id: &str,
        customer_id: &str,
        change: &CustomerChange,
    ) -> DbResult<Customer> {
        let mut tx = self.backend.write().await?;
        let customer = one(
            &mut tx,
            concat!(
                "UPDATE customers SET name = $1, email = $2 WHERE id = $3 AND organization_id = $4 \
                 RETURNING ",
                customer_columns!()
            ),
            params![&change.name, &change.email, customer_id, organization_id],
            customer_from,
        )
        .await?;
        let fields = customer_text(change);
        let profile = &change.profile;
        execute(
            &mut tx,
            "INSERT INTO customer_profiles (customer_id, organization_id, first_name, phone, note, \
             custom_fields, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (customer_id) DO UPDATE SET first_name = excluded.first_name, \
             phone = excluded.phone, note = excluded.note, custom_fields = excluded.custom_fields, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            params![
                customer_id,
                organization_id,
                &profile.first_name,
                &profile.phone,
                &profile.note,
                &fields,
                to_millis(change.updated_at),
                &change.updated_by
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(customer)
    }

    async fn insert_ban(&self, ban: &CustomerBan) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            concat!(
                "INSERT INTO customer_bans (",
                ban_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            params![
                &ban.id,
                &ban.organization_id,
                &ban.customer_id,
                &ban.visitor_id,
                &ban.ip_address,
                &ban.reason,
                &ban.created_by,
                to_millis(ban.created_at),
                ban.expires_at.map(to_millis),
                ban.lifted_at.map(to_millis),
                &ban.lifted_by
            ],
        )
        .await?;
        tx.commit().await
    }

    async fn lift_bans(
        &self,
        organization_id: &str,
        customer_id: &str,
        lifted_by: &str,
        at: DateTime<Utc>,
    ) -> DbResult<u64> {
        let mut tx = self.backend.write().await?;
        let lifted = execute(
            &mut tx,
            "UPDATE customer_bans SET lifted_at = $1, lifted_by = $2 \
             WHERE organization_id = $3 AND customer_id = $4 AND lifted_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $1)",
            params![to_millis(at), lifted_by, organization_id, customer_id],
        )
        .await?;
        tx.commit().await?;
        Ok(lifted)
    }

    async fn customer_bans(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<Vec<CustomerBan>> {
        let mut conn = self.backend.read().await?;
        all(
            &mut conn,
            concat!(
                "SELECT ",
                ban_columns!(),
                " FROM customer_bans WHERE organization_id = $1 AND customer_id = $2 \
                 ORDER BY created_at DESC, id DESC"
            ),
            params![organization_id, customer_id],
            ban_from,
        )
        .await
    }

    async fn ban_in_force(
        &self,
        organization_id: &str,
        visitor_id: &str,
        ip_address: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<CustomerBan>> {
        let mut conn = self.backend.read().await?;
        // Two index lookups (visitor, address), not one OR the planner may scan for.
        optional(
            &mut conn,
            concat!(
                "SELECT ",
                ban_columns!(),
                " FROM customer_bans WHERE organization_id = $1 AND lifted_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) AND visitor_id = $3 \
                 UNION ALL SELECT ",
                ban_columns!(),
                " FROM customer_bans WHERE organization_id = $1 AND lifted_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2) AND ip_address IS NOT NULL \
                 AND ip_address = $4 LIMIT 1"
            ),
            params![organization_id, to_millis(now), visitor_id, ip_address],
            ban_from,
        )
        .await
    }
}
