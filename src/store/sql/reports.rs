//! Reports: the [`ReportStore`] trait. Every number is an aggregate the database computes
//! over the chats started in the period and the per-chat bookkeeping columns of migration
//! 0019, read from the covering index `chats_report` (0020); no transcript is read. Counts,
//! sums and local days (from the time zone's offsets over the period, see
//! `ReportPeriod::offset_pieces`) are the same SQL on both backends. Percentiles are nearest
//! rank: Postgres's `percentile_disc` in the same scan; on SQLite one pass per metric sorted
//! by the database, of which the reader keeps only the two ranks it needs.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{Backend, SqlStore, Transaction, Value, all, execute, scalar};
use crate::domain::{
    DurationStats, ReportBy, ReportData, ReportPeriod, ReportRow, ReportScope, epoch_day,
};
use crate::store::{DbResult, ReportStore};

/// A statement under construction: its text and its parameters, numbered as they are added.
struct Sql<'a> {
    text: String,
    params: Vec<Value<'a>>,
}

impl<'a> Sql<'a> {
    fn new() -> Self {
        Sql {
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// `$n` for a new parameter.
    fn param(&mut self, value: impl Into<Value<'a>>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }
}

/// What a row is keyed by, over `column` (the instant that places a row on a day).
fn key(sql: &mut Sql<'_>, by: ReportBy, period: &ReportPeriod, agent: &str, at: &str) -> String {
    match by {
        ReportBy::Total => "CAST(0 AS BIGINT)".into(),
        ReportBy::Agent => format!("COALESCE({agent}, '')"),
        ReportBy::Day => {
            let pieces = period.offset_pieces();
            if let [(_, offset)] = pieces[..] {
                let offset = sql.param(offset);
                return format!("({at} + {offset}) / 86400000");
            }
            let mut case = String::from("CASE");
            for (until, offset) in &pieces[..pieces.len() - 1] {
                let until = sql.param(*until);
                let offset = sql.param(*offset);
                case += &format!(" WHEN {at} < {until} THEN ({at} + {offset}) / 86400000");
            }
            let last = sql.param(pieces[pieces.len() - 1].1);
            case += &format!(" ELSE ({at} + {last}) / 86400000 END");
            case
        }
    }
}

/// The chats of the scope started in the period, as conditions on `chats c`.
fn chat_filter<'a>(sql: &mut Sql<'a>, scope: &'a ReportScope, period: &ReportPeriod) -> String {
    let org = sql.param(scope.organization_id.as_str());
    let start = sql.param(period.start_ms());
    let end = sql.param(period.end_ms());
    let mut filter =
        format!("c.organization_id = {org} AND c.created_at >= {start} AND c.created_at < {end}");
    if let Some(groups) = &scope.groups {
        filter += &in_list(sql, "c.group_id", groups);
    }
    if let Some(agent) = &scope.agent_id {
        let agent = sql.param(agent.as_str());
        filter += &format!(" AND c.assignee_id = {agent}");
    }
    if let Some(tag) = &scope.tag_id {
        let tag = sql.param(tag.as_str());
        filter += &format!(
            " AND EXISTS (SELECT 1 FROM chat_tags t WHERE t.chat_id = c.id AND t.tag_id = {tag})"
        );
    }
    filter
}

/// ` AND column IN (…)`; never true for no values.
fn in_list<'a>(sql: &mut Sql<'a>, column: &str, values: &'a [String]) -> String {
    if values.is_empty() {
        return " AND 1 = 0".into();
    }
    let list: Vec<String> = values.iter().map(|v| sql.param(v.as_str())).collect();
    format!(" AND {column} IN ({})", list.join(", "))
}

/// The duration metrics: number, the value of a chat, and when a chat has one.
/// 1 queue wait, 2 first response, 3 response (each chat's mean), 4 duration.
const METRICS: [(i64, &str, &str); 4] = [
    (
        1,
        "c.first_assigned_at - c.created_at",
        "c.first_assigned_at IS NOT NULL",
    ),
    (
        2,
        "c.first_response_at - c.created_at",
        "c.first_response_at IS NOT NULL",
    ),
    (
        3,
        "c.response_total_ms / c.response_count",
        "c.response_count > 0",
    ),
    (4, "c.closed_at - c.created_at", "c.closed_at IS NOT NULL"),
];

/// The counts per key and, per duration metric, how many values and their sum; on Postgres
/// also the median and 90th percentile (`percentile_disc` is nearest rank: the smallest
/// value whose cumulative share reaches p). One scan of the covering index `chats_report`.
fn counts_sql<'a>(
    scope: &'a ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    percentiles: bool,
) -> Sql<'a> {
    let mut sql = Sql::new();
    let filter = chat_filter(&mut sql, scope, period);
    let k = key(&mut sql, by, period, "c.assignee_id", "c.created_at");
    let mut durations = String::new();
    for (m, value, when) in METRICS {
        let x = format!("CASE WHEN {when} THEN {value} END");
        durations += &format!(", COUNT({x}) AS n{m}, CAST(SUM({x}) AS BIGINT) AS t{m}");
        if percentiles {
            durations += &format!(
                ", percentile_disc(0.5) WITHIN GROUP (ORDER BY {x}) AS p50_{m}, \
                 percentile_disc(0.9) WITHIN GROUP (ORDER BY {x}) AS p90_{m}"
            );
        }
    }
    sql.text = format!(
        "SELECT {k} AS k, COUNT(*) AS started, \
         SUM(CASE WHEN c.first_response_at IS NOT NULL THEN 1 ELSE 0 END) AS answered, \
         SUM(CASE WHEN c.status = 'CLOSED' AND c.first_response_at IS NULL THEN 1 ELSE 0 END) \
           AS missed, \
         SUM(CASE WHEN c.rating = 'GOOD' THEN 1 ELSE 0 END) AS good, \
         SUM(CASE WHEN c.rating = 'BAD' THEN 1 ELSE 0 END) AS bad{durations} \
         FROM chats c WHERE {filter} GROUP BY 1"
    );
    sql
}

/// The transferred chats per key: a statement of their own, so the planner can read the
/// previous assignees once (a semi-join) instead of probing them for every chat.
fn transferred_sql<'a>(scope: &'a ReportScope, period: &ReportPeriod, by: ReportBy) -> Sql<'a> {
    let mut sql = Sql::new();
    let filter = chat_filter(&mut sql, scope, period);
    let k = key(&mut sql, by, period, "c.assignee_id", "c.created_at");
    sql.text = format!(
        "SELECT {k} AS k, COUNT(*) AS n FROM chats c WHERE {filter} AND EXISTS (SELECT 1 \
         FROM chat_participants p WHERE p.chat_id = c.id AND p.role = 'PREVIOUS_ASSIGNEE') \
         GROUP BY 1"
    );
    sql
}

/// One metric's values sorted by key then value (SQLite, which has no `percentile_disc`):
/// the reader counts ranks per key and keeps the two it needs, nothing else.
fn sorted_sql<'a>(
    scope: &'a ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    (_, value, when): (i64, &str, &str),
) -> Sql<'a> {
    let mut sql = Sql::new();
    let filter = chat_filter(&mut sql, scope, period);
    let k = key(&mut sql, by, period, "c.assignee_id", "c.created_at");
    sql.text = format!(
        "SELECT {k} AS k, {value} AS x FROM chats c WHERE {filter} AND {when} ORDER BY 1, 2"
    );
    sql
}

/// The nearest rank (1-based) of percentile `p` among `n` values.
fn rank(p: i64, n: i64) -> i64 {
    (p * n + 99) / 100
}

/// How many values a row has for metric `m`.
fn count(row: &ReportRow, m: i64) -> i64 {
    match m {
        1 => row.queue_wait.count,
        2 => row.first_response.count,
        3 => row.response.count,
        _ => row.duration.count,
    }
}

/// A row's stats for metric `m`.
fn stats(row: &mut ReportRow, m: i64) -> &mut DurationStats {
    match m {
        1 => &mut row.queue_wait,
        2 => &mut row.first_response,
        3 => &mut row.response,
        _ => &mut row.duration,
    }
}

/// Greetings shown (or answered) in the period per key; `None` with a tag filter.
fn greetings_sql<'a>(
    scope: &'a ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    column: &str,
) -> Sql<'a> {
    let mut sql = Sql::new();
    let org = sql.param(scope.organization_id.as_str());
    let start = sql.param(period.start_ms());
    let end = sql.param(period.end_ms());
    let mut filter =
        format!("g.organization_id = {org} AND g.{column} >= {start} AND g.{column} < {end}");
    if let Some(groups) = &scope.groups {
        filter += &in_list(&mut sql, "g.group_id", groups);
    }
    if let Some(agent) = &scope.agent_id {
        let agent = sql.param(agent.as_str());
        filter += &format!(" AND g.agent_id = {agent}");
    }
    let k = key(&mut sql, by, period, "g.agent_id", &format!("g.{column}"));
    sql.text = format!("SELECT {k} AS k, COUNT(*) AS n FROM greetings g WHERE {filter} GROUP BY 1");
    sql
}

/// A row's key as read back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Agent(String),
    Day(i64),
}

fn read_key(row: &dyn super::Columns, by: ReportBy) -> DbResult<Key> {
    Ok(match by {
        ReportBy::Agent => Key::Agent(row.text("k")?),
        ReportBy::Total | ReportBy::Day => Key::Day(row.int("k")?),
    })
}

#[async_trait]
impl<B: Backend> ReportStore for SqlStore<B> {
    async fn report(
        &self,
        scope: &ReportScope,
        period: &ReportPeriod,
        by: ReportBy,
    ) -> DbResult<Vec<ReportRow>> {
        let mut conn = self.backend.read().await?;
        let mut rows: BTreeMap<Key, ReportRow> = BTreeMap::new();
        match by {
            ReportBy::Total => {
                rows.insert(Key::Day(0), ReportRow::default());
            }
            ReportBy::Day => {
                for day in &period.days {
                    let offset = period
                        .offset_pieces()
                        .iter()
                        .find(|(until, _)| day.start_ms < *until)
                        .map_or(0, |p| p.1);
                    let key = Key::Day((day.start_ms + offset).div_euclid(86_400_000));
                    rows.insert(
                        key,
                        ReportRow {
                            date: Some(day.date),
                            ..ReportRow::default()
                        },
                    );
                }
            }
            ReportBy::Agent => {}
        }
        let postgres = self.backend.name() == "postgres";
        let counts = counts_sql(scope, period, by, postgres);
        let counted = all(&mut conn, &counts.text, &counts.params, |r| {
            let mut row = ReportRow {
                chats_started: r.int("started")?,
                chats_answered: r.int("answered")?,
                chats_missed: r.int("missed")?,
                rated_good: r.int("good")?,
                rated_bad: r.int("bad")?,
                ..ReportRow::default()
            };
            for (m, _, _) in METRICS {
                let count = r.int(format!("n{m}").as_str())?;
                if count == 0 {
                    continue;
                }
                let (median_ms, p90_ms) = if postgres {
                    (
                        r.opt_int(format!("p50_{m}").as_str())?,
                        r.opt_int(format!("p90_{m}").as_str())?,
                    )
                } else {
                    (None, None)
                };
                *stats(&mut row, m) = DurationStats {
                    count,
                    total_ms: r.int(format!("t{m}").as_str())?,
                    median_ms,
                    p90_ms,
                };
            }
            Ok((read_key(r, by)?, row))
        })
        .await?;
        for (key, counted) in counted {
            let row = rows.entry(key).or_default();
            *row = ReportRow {
                date: row.date,
                ..counted
            };
        }
        let transferred = transferred_sql(scope, period, by);
        let counted = all(&mut conn, &transferred.text, &transferred.params, |r| {
            Ok((read_key(r, by)?, r.int("n")?))
        })
        .await?;
        for (key, n) in counted {
            rows.entry(key).or_default().chats_transferred = n;
        }
        if !postgres {
            for metric in METRICS {
                if !rows.values().any(|row| count(row, metric.0) > 0) {
                    continue;
                }
                let sorted = sorted_sql(scope, period, by, metric);
                let mut current: Option<(Key, i64, i64)> = None;
                let mut seen = 0;
                let mut picked: Vec<(Key, Option<i64>, Option<i64>)> = Vec::new();
                let _: Vec<()> = all(&mut conn, &sorted.text, &sorted.params, |r| {
                    let key = read_key(r, by)?;
                    let x = r.int("x")?;
                    if current.as_ref().is_none_or(|(at, _, _)| *at != key) {
                        let n = rows.get(&key).map_or(0, |row| count(row, metric.0));
                        current = Some((key.clone(), rank(50, n), rank(90, n)));
                        picked.push((key, None, None));
                        seen = 0;
                    }
                    seen += 1;
                    let (_, r50, r90) = current.as_ref().expect("set above");
                    let last = picked.last_mut().expect("pushed with current");
                    if seen == *r50 {
                        last.1 = Some(x);
                    }
                    if seen == *r90 {
                        last.2 = Some(x);
                    }
                    Ok(())
                })
                .await?;
                for (key, median, p90) in picked {
                    if let Some(row) = rows.get_mut(&key) {
                        let stats = stats(row, metric.0);
                        stats.median_ms = median;
                        stats.p90_ms = p90;
                    }
                }
            }
        }
        if scope.tag_id.is_none() {
            for row in rows.values_mut() {
                row.greetings_shown = Some(0);
                row.greetings_answered = Some(0);
            }
            for column in ["shown_at", "answered_at"] {
                let greetings = greetings_sql(scope, period, by, column);
                let counted = all(&mut conn, &greetings.text, &greetings.params, |r| {
                    Ok((read_key(r, by)?, r.int("n")?))
                })
                .await?;
                for (key, n) in counted {
                    let row = rows.entry(key).or_insert_with(|| ReportRow {
                        greetings_shown: Some(0),
                        greetings_answered: Some(0),
                        ..ReportRow::default()
                    });
                    if column == "shown_at" {
                        row.greetings_shown = Some(n);
                    } else {
                        row.greetings_answered = Some(n);
                    }
                }
            }
        }
        Ok(rows
            .into_iter()
            .map(|(key, mut row)| {
                match (by, key) {
                    (ReportBy::Agent, Key::Agent(agent)) => {
                        row.agent_id = (!agent.is_empty()).then_some(agent);
                    }
                    (ReportBy::Day, Key::Day(day)) => row.date = Some(epoch_day(day)),
                    _ => {}
                }
                row
            })
            .collect())
    }

    async fn refresh_report_statistics(&self) -> DbResult<()> {
        if self.backend.name() == "postgres" {
            // Statistics for the planner, and the visibility map an index-only scan needs:
            // what autovacuum does in steady state, done now after a bulk import.
            let mut conn = self.backend.read().await?;
            execute(&mut conn, "VACUUM ANALYZE", &[]).await?;
        }
        Ok(())
    }

    async fn report_tag_exists(&self, organization_id: &str, tag_id: &str) -> DbResult<bool> {
        let mut conn = self.backend.read().await?;
        let n = scalar(
            &mut conn,
            "SELECT COUNT(*) FROM tags WHERE id = $1 AND organization_id = $2",
            params![tag_id, organization_id],
        )
        .await?;
        Ok(n > 0)
    }

    async fn import_report_data(&self, data: &ReportData) -> DbResult<()> {
        let mut tx = self.backend.write().await?;
        let org = data.organization_id.as_str();
        let mut customer_rows = Vec::new();
        for (id, at) in &data.customers {
            customer_rows.push(vec![
                Value::Text(id),
                Value::Text(org),
                Value::Text(id),
                Value::Int(1),
                Value::Int(*at),
                Value::Int(*at),
            ]);
        }
        insert(
            &mut tx,
            "customers (id, organization_id, visitor_id, visits, created_at, last_seen_at)",
            customer_rows,
        )
        .await?;
        let mut tag_ids: Vec<&str> = data
            .chats
            .iter()
            .flat_map(|c| c.tags.iter().map(String::as_str))
            .collect();
        tag_ids.sort_unstable();
        tag_ids.dedup();
        let mut chats = Vec::new();
        let mut chat_tags = Vec::new();
        let mut participants = Vec::new();
        let mut events = Vec::new();
        let mut event_ids = Vec::new();
        for chat in &data.chats {
            for n in 0..chat.messages.len() {
                event_ids.push(format!("{}-m{n}", chat.id));
            }
        }
        let mut event_id = event_ids.iter();
        for chat in &data.chats {
            let last = chat.messages.last().map_or(chat.created_at, |m| m.at);
            chats.push(vec![
                Value::Text(&chat.id),
                Value::Text(org),
                Value::Text(&chat.customer_id),
                Value::from(chat.group_id.as_deref()),
                Value::Text("WIDGET"),
                Value::Text(chat.status),
                Value::from(chat.assignee_id.as_deref()),
                Value::Int(chat.created_at),
                Value::from(chat.first_assigned_at),
                Value::from(chat.first_assigned_at),
                Value::from(chat.first_response_at),
                Value::from(chat.closed_at),
                Value::from(chat.rating),
                Value::Int(last),
                Value::Int(last),
                Value::Int(chat.messages.len() as i64),
                Value::Int(chat.response_count),
                Value::Int(chat.response_total_ms),
            ]);
            for tag in &chat.tags {
                chat_tags.push(vec![
                    Value::Text(&chat.id),
                    Value::Text(tag),
                    Value::Text(org),
                    Value::Int(chat.created_at),
                ]);
            }
            if let Some(previous) = &chat.previous_assignee {
                participants.push(vec![
                    Value::Text(&chat.id),
                    Value::Text(previous),
                    Value::Text("PREVIOUS_ASSIGNEE"),
                    Value::Int(chat.created_at),
                ]);
            }
            for (n, message) in chat.messages.iter().enumerate() {
                let (kind, text) = match message.author_kind {
                    crate::domain::AuthorKind::Customer => ("CUSTOMER", "Hello, a question"),
                    _ => ("AGENT", "Happy to help"),
                };
                events.push(vec![
                    Value::Text(event_id.next().map_or("", String::as_str)),
                    Value::Text(&chat.id),
                    Value::Text(org),
                    Value::Int(n as i64 + 1),
                    Value::Text("MESSAGE"),
                    Value::Text(kind),
                    Value::from(message.author_id.as_deref()),
                    Value::Text(text),
                    Value::Text("PUBLIC"),
                    Value::Int(message.at),
                ]);
            }
        }
        // The tags the chats carry, named after their ids.
        let tags: Vec<Vec<Value<'_>>> = tag_ids
            .iter()
            .map(|t| {
                vec![
                    Value::Text(t),
                    Value::Text(org),
                    Value::Text(t),
                    Value::Int(0),
                ]
            })
            .collect();
        insert(
            &mut tx,
            "tags (id, organization_id, name, created_at)",
            tags,
        )
        .await?;
        insert(
            &mut tx,
            "chats (id, organization_id, customer_id, group_id, channel, status, assignee_id, \
             created_at, assigned_at, first_assigned_at, first_response_at, closed_at, rating, \
             last_customer_activity_at, last_activity_at, last_event_seq, response_count, \
             response_total_ms)",
            chats,
        )
        .await?;
        insert(
            &mut tx,
            "chat_tags (chat_id, tag_id, organization_id, added_at)",
            chat_tags,
        )
        .await?;
        insert(
            &mut tx,
            "chat_participants (chat_id, agent_id, role, joined_at)",
            participants,
        )
        .await?;
        insert(
            &mut tx,
            "chat_events (id, chat_id, organization_id, seq, kind, author_kind, author_id, text, \
             visibility, created_at)",
            events,
        )
        .await?;
        let mut greetings = Vec::new();
        for g in &data.greetings {
            greetings.push(vec![
                Value::Text(&g.id),
                Value::Text(org),
                Value::Text(&g.customer_id),
                Value::from(g.agent_id.as_deref()),
                Value::from(g.group_id.as_deref()),
                Value::Text("Hello! Can I help?"),
                Value::Int(g.created_at),
                Value::from(g.shown_at),
                Value::from(g.answered_at),
                Value::from(g.chat_id.as_deref()),
            ]);
        }
        insert(
            &mut tx,
            "greetings (id, organization_id, customer_id, agent_id, group_id, text, created_at, \
             shown_at, answered_at, chat_id)",
            greetings,
        )
        .await?;
        tx.commit().await
    }
}

/// Inserts `rows` into `table (columns)` many rows a statement.
async fn insert(
    conn: &mut dyn super::Conn,
    table: &str,
    rows: Vec<Vec<Value<'_>>>,
) -> DbResult<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    // Well under both databases' limits on parameters, and small enough to compile fast.
    let per_statement = (2_000 / width).max(1);
    for batch in rows.chunks(per_statement) {
        // Tags are shared by every chunk of a data set: the first one creates them.
        let mut text = format!("INSERT INTO {table} VALUES ");
        let mut n = 0;
        for (i, _) in batch.iter().enumerate() {
            if i > 0 {
                text.push_str(", ");
            }
            text.push('(');
            for c in 0..width {
                if c > 0 {
                    text.push_str(", ");
                }
                n += 1;
                text += &format!("${n}");
            }
            text.push(')');
        }
        if table.starts_with("tags ") {
            text += " ON CONFLICT DO NOTHING";
        }
        let params: Vec<Value<'_>> = batch.iter().flatten().copied().collect();
        execute(conn, &text, &params).await?;
    }
    Ok(())
}
