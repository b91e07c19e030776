//! Reports: the [`ReportStore`] trait. Every number is over the chats started in the period
//! and the per-chat bookkeeping columns of migrations 0019 and 0021 (transferred), read in
//! one scan of the covering index `chats_report`; no transcript is read. Local days come
//! from the time zone's offsets over the period (`ReportPeriod::offset_pieces`), the same
//! key expression on both backends. Percentiles are nearest rank, exact, found by selection
//! over every chat's value rather than by sorting (`DurationStats::of`):
//! - Postgres counts per key in SQL and hands each metric's values over as one array;
//! - SQLite reads one row of small integers per chat and the reader counts, which is
//!   several times faster than SQLite's own `SUM(CASE …)`; one scan serves every part asked
//!   for (total, per agent, per day), and a long period is scanned in pieces side by side,
//!   one read connection and one core each.
//!
//! Either way the server holds, while it answers, the values of the four duration metrics
//! of the period's chats (8 bytes each: 16 MB for 500,000 chats), never a chat's row.
//!
//! A tag filter is an `IN` over the tag's chats, which both planners start from the tag's
//! index (`chat_tags_tag`), instead of an `EXISTS` probed for every chat of the period.

mod days;

use std::collections::BTreeMap;

use async_trait::async_trait;

use futures_util::FutureExt;

use super::{Backend, SqlStore, Transaction, Value, all, execute, one, scalar};
use crate::domain::{
    DurationStats, ReportBy, ReportData, ReportPeriod, ReportRow, ReportScope, epoch_day,
};
use crate::store::{DbError, DbResult, ReportStore};

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

/// The chats of the scope started in `[start, end)` (ms), as conditions on `chats c`.
fn chat_filter<'a>(sql: &mut Sql<'a>, scope: &'a ReportScope, (start, end): (i64, i64)) -> String {
    let org = sql.param(scope.organization_id.as_str());
    let start = sql.param(start);
    let end = sql.param(end);
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
        filter +=
            &format!(" AND c.id IN (SELECT t.chat_id FROM chat_tags t WHERE t.tag_id = {tag})");
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

/// The duration metrics: the value of a chat, and when a chat has one. In this order:
/// queue wait, first response, response (each chat's mean), duration.
const METRICS: [(&str, &str); 4] = [
    (
        "c.first_assigned_at - c.created_at",
        "c.first_assigned_at IS NOT NULL",
    ),
    (
        "c.first_response_at - c.created_at",
        "c.first_response_at IS NOT NULL",
    ),
    (
        "c.response_total_ms / c.response_count",
        "c.response_count > 0",
    ),
    ("c.closed_at - c.created_at", "c.closed_at IS NOT NULL"),
];

/// Postgres: per key the counts, and per duration metric every chat's value as one array
/// (`array_agg`, no sort), from which the reader takes count, sum and the two ranks by
/// selection. One scan of the chats; `percentile_disc` instead sorted every metric of every
/// key in the database, most of a report's time.
fn aggregates_sql<'a>(
    scope: &'a ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    range: (i64, i64),
) -> Sql<'a> {
    let mut sql = Sql::new();
    let filter = chat_filter(&mut sql, scope, range);
    let k = key(&mut sql, by, period, "c.assignee_id", "c.created_at");
    let mut values = String::new();
    for (m, (value, when)) in METRICS.iter().enumerate() {
        values += &format!(", array_agg({value}) FILTER (WHERE {when}) AS v{m}");
    }
    sql.text = format!(
        "SELECT {k} AS k, COUNT(*) AS started, COUNT(c.first_response_at) AS answered, \
         SUM(CASE WHEN c.status = 'CLOSED' AND c.first_response_at IS NULL THEN 1 ELSE 0 END) \
           AS missed, \
         SUM(CASE WHEN c.transferred THEN 1 ELSE 0 END) AS transferred, \
         SUM(CASE WHEN c.rating = 'GOOD' THEN 1 ELSE 0 END) AS good, \
         SUM(CASE WHEN c.rating = 'BAD' THEN 1 ELSE 0 END) AS bad{values} \
         FROM chats c WHERE {filter} GROUP BY 1"
    );
    sql
}

/// SQLite: one row per chat started in `range`, every column a small integer, read in place
/// by the reader, which counts and collects as it goes. SQLite evaluates aggregates one
/// opcode at a time, so summing in Rust is several times faster than `SUM(CASE …)`, and it
/// is the one scan a report needs: the percentiles come from the same rows, and every part
/// asked for (total, per agent, per day) from the same scan. The columns: a key per part
/// that needs one (the agent, then the day), then whether it closed, its rating, whether it
/// was transferred, and each metric's value.
fn chats_sql<'a>(
    scope: &'a ReportScope,
    period: &ReportPeriod,
    parts: &[ReportBy],
    range: (i64, i64),
) -> Sql<'a> {
    let mut sql = Sql::new();
    let filter = chat_filter(&mut sql, scope, range);
    let mut keys = String::new();
    for by in [ReportBy::Agent, ReportBy::Day] {
        if parts.contains(&by) {
            keys += &key(&mut sql, by, period, "c.assignee_id", "c.created_at");
            keys += ", ";
        }
    }
    let mut values = String::new();
    for (value, when) in METRICS {
        values += &format!(", CASE WHEN {when} THEN {value} END");
    }
    sql.text = format!(
        "SELECT {keys}c.status = 'CLOSED', \
         CASE c.rating WHEN 'GOOD' THEN 1 WHEN 'BAD' THEN 2 ELSE 0 END, \
         c.transferred{values} FROM chats c WHERE {filter}"
    );
    sql
}

/// Counts the rows of [`chats_sql`] into one tally per part.
fn count_chats(
    conn: &mut dyn super::Conn,
    sql: &Sql<'_>,
    parts: &[ReportBy],
) -> DbResult<Vec<BTreeMap<Key, Tally>>> {
    let mut tallies: Vec<BTreeMap<Key, Tally>> = parts.iter().map(|_| BTreeMap::new()).collect();
    let agent_at = parts.contains(&ReportBy::Agent).then_some(0);
    let day_at = parts
        .contains(&ReportBy::Day)
        .then_some(usize::from(agent_at.is_some()));
    let base = usize::from(agent_at.is_some()) + usize::from(day_at.is_some());
    let mut values = [None; METRICS.len()];
    let mut count = |r: &dyn super::Columns| {
        let closed = r.int(base)? != 0;
        let rating = r.int(base + 1)?;
        let transferred = r.int(base + 2)?;
        for (m, value) in values.iter_mut().enumerate() {
            *value = r.opt_int(base + 3 + m)?;
        }
        for (part, tally) in parts.iter().zip(tallies.iter_mut()) {
            let key = match part {
                ReportBy::Total => Key::Day(0),
                ReportBy::Agent => {
                    Key::Agent(r.opt_text(agent_at.unwrap_or(0))?.unwrap_or_default())
                }
                ReportBy::Day => Key::Day(r.int(day_at.unwrap_or(0))?),
            };
            tally
                .entry(key)
                .or_default()
                .count(closed, rating, transferred, &values);
        }
        Ok(())
    };
    let scan = conn.query(&sql.text, &sql.params, &mut count);
    // SQLite runs a statement in place: its step is ready at once.
    scan.now_or_never().ok_or_else(|| {
        DbError::Other("the SQLite report scan did not complete in place".into())
    })??;
    Ok(tallies)
}

/// A key's row as it is counted, with every chat's value of each duration metric.
#[derive(Default)]
struct Tally {
    row: ReportRow,
    values: [Vec<i64>; 4],
}

impl Tally {
    /// Counts one chat: whether it closed, its rating (1 good, 2 bad), whether it was
    /// transferred, and its value of each metric.
    fn count(&mut self, closed: bool, rating: i64, transferred: i64, values: &[Option<i64>; 4]) {
        let row = &mut self.row;
        row.chats_started += 1;
        match rating {
            1 => row.rated_good += 1,
            2 => row.rated_bad += 1,
            _ => {}
        }
        row.chats_transferred += transferred;
        for (collected, value) in self.values.iter_mut().zip(values) {
            if let Some(value) = value {
                collected.push(*value);
            }
        }
        // Answered: it has a first response (the second metric); missed: it closed without.
        if values[1].is_some() {
            row.chats_answered += 1;
        } else if closed {
            row.chats_missed += 1;
        }
    }

    /// Adds another piece of the period's counts to these.
    fn merge(&mut self, other: Tally) {
        let (row, more) = (&mut self.row, other.row);
        row.chats_started += more.chats_started;
        row.chats_answered += more.chats_answered;
        row.chats_missed += more.chats_missed;
        row.chats_transferred += more.chats_transferred;
        row.rated_good += more.rated_good;
        row.rated_bad += more.rated_bad;
        for (values, more) in self.values.iter_mut().zip(other.values) {
            values.extend(more);
        }
    }

    /// The row, with each metric's stats from its values (selection, not a sort).
    fn finish(mut self) -> ReportRow {
        let [queue_wait, first_response, response, duration] = &mut self.values;
        self.row.queue_wait = DurationStats::of(queue_wait);
        self.row.first_response = DurationStats::of(first_response);
        self.row.response = DurationStats::of(response);
        self.row.duration = DurationStats::of(duration);
        self.row
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
        ReportBy::Agent => Key::Agent(row.text(0)?),
        ReportBy::Total | ReportBy::Day => Key::Day(row.int(0)?),
    })
}

/// Postgres: one part's rows by key over the chats started in `range`, counted by the
/// database.
async fn count_postgres(
    conn: &mut dyn super::Conn,
    scope: &ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    range: (i64, i64),
) -> DbResult<BTreeMap<Key, Tally>> {
    let aggregates = aggregates_sql(scope, period, by, range);
    let counted = all(conn, &aggregates.text, &aggregates.params, |r| {
        let mut tally = Tally {
            row: ReportRow {
                chats_started: r.int("started")?,
                chats_answered: r.int("answered")?,
                chats_missed: r.int("missed")?,
                chats_transferred: r.int("transferred")?,
                rated_good: r.int("good")?,
                rated_bad: r.int("bad")?,
                ..ReportRow::default()
            },
            values: Default::default(),
        };
        for (m, values) in tally.values.iter_mut().enumerate() {
            *values = r.ints(format!("v{m}").as_str())?;
        }
        Ok((read_key(r, by)?, tally))
    })
    .await?;
    Ok(counted.into_iter().collect())
}

/// A period at least this long is scanned in pieces side by side on SQLite.
const SPLIT_FROM_DAYS: usize = 28;

/// `[start, end)` cut into `pieces` ranges of about equal length.
fn split(start: i64, end: i64, pieces: usize) -> Vec<(i64, i64)> {
    let pieces = pieces.max(1) as i64;
    let step = (end - start).div_euclid(pieces).max(1);
    (0..pieces)
        .map(|i| {
            let from = (start + i * step).min(end);
            let to = if i == pieces - 1 {
                end
            } else {
                (from + step).min(end)
            };
            (from, to)
        })
        .filter(|(from, to)| from < to)
        .collect()
}

/// The greetings shown and answered per key, added to `rows` (a key without chats gets a
/// row of its own); `None` with a tag filter, which greetings do not carry.
async fn add_greetings(
    conn: &mut dyn super::Conn,
    scope: &ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    rows: &mut BTreeMap<Key, ReportRow>,
) -> DbResult<()> {
    if scope.tag_id.is_some() {
        return Ok(());
    }
    for row in rows.values_mut() {
        row.greetings_shown = Some(0);
        row.greetings_answered = Some(0);
    }
    for column in ["shown_at", "answered_at"] {
        let greetings = greetings_sql(scope, period, by, column);
        let counted = all(conn, &greetings.text, &greetings.params, |r| {
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
    Ok(())
}

/// A part's rows as the API gives them: the total always, every day of the period (empty
/// ones too), the agents with chats or greetings; each with its key filled in.
fn arrange(
    scope: &ReportScope,
    period: &ReportPeriod,
    by: ReportBy,
    counted: BTreeMap<Key, ReportRow>,
) -> Vec<ReportRow> {
    let mut rows: BTreeMap<Key, ReportRow> = BTreeMap::new();
    match by {
        ReportBy::Total => {
            rows.insert(Key::Day(0), ReportRow::default());
        }
        ReportBy::Day => {
            let pieces = period.offset_pieces();
            for day in &period.days {
                let offset = pieces
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
    for (key, counted) in counted {
        let row = rows.entry(key).or_default();
        *row = ReportRow {
            date: row.date,
            ..counted
        };
    }
    if scope.tag_id.is_none() {
        // Days without chats or greetings still show zero greetings.
        for row in rows.values_mut() {
            row.greetings_shown.get_or_insert(0);
            row.greetings_answered.get_or_insert(0);
        }
    }
    rows.into_iter()
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
        .collect()
}

/// The packed days a report reads and the ranges of chats it scans instead: the days
/// (UTC) of the period found packed, and the rest of the period as at most
/// [`MAX_SCANNED_RANGES`] ranges; more would be scanned as one span, and the packed days
/// inside it left unread.
fn plan(period: &ReportPeriod, mut packed: PackedDays) -> (PackedDays, Vec<(i64, i64)>) {
    let (start, end) = (period.start_ms(), period.end_ms());
    if start >= end {
        return (BTreeMap::new(), Vec::new());
    }
    let (first, last) = (days::utc_day(start), days::utc_day(end - 1));
    packed.retain(|day, _| (first..=last).contains(day));
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for day in first..=last {
        if packed.contains_key(&day) {
            continue;
        }
        let from = (day * days::DAY_MS).max(start);
        let to = ((day + 1) * days::DAY_MS).min(end);
        match ranges.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => ranges.push((from, to)),
        }
    }
    if ranges.len() > MAX_SCANNED_RANGES {
        let span = (ranges[0].0, ranges[ranges.len() - 1].1);
        packed.retain(|day, _| {
            *day * days::DAY_MS + days::DAY_MS <= span.0 || *day * days::DAY_MS >= span.1
        });
        ranges = vec![span];
    }
    (packed, ranges)
}

/// Packed days by UTC day.
type PackedDays = BTreeMap<i64, Vec<u8>>;

/// At most this many ranges of chats are scanned beside the packed days of a report.
const MAX_SCANNED_RANGES: usize = 4;

/// The packed days of the organization from `first` to `last` (UTC days).
const PACKED_DAYS: &str = "SELECT day, block FROM report_days WHERE organization_id = $1 \
     AND day >= $2 AND day <= $3 AND block IS NOT NULL";

async fn packed_days(
    conn: &mut dyn super::Conn,
    scope: &ReportScope,
    period: &ReportPeriod,
) -> DbResult<PackedDays> {
    let (start, end) = (period.start_ms(), period.end_ms());
    if start >= end {
        return Ok(BTreeMap::new());
    }
    let rows = all(
        conn,
        PACKED_DAYS,
        params![
            scope.organization_id.as_str(),
            days::utc_day(start),
            days::utc_day(end - 1)
        ],
        |r| Ok((r.int(0)?, r.opt_bytes(1)?.unwrap_or_default())),
    )
    .await?;
    Ok(rows.into_iter().collect())
}

/// Adds the packed days' counts to the scans'.
fn count_packed(
    scope: &ReportScope,
    period: &ReportPeriod,
    parts: &[ReportBy],
    packed: &PackedDays,
    counted: &mut [BTreeMap<Key, Tally>],
) -> DbResult<()> {
    let mut counter = days::DayCounter::new(scope, period, parts);
    for (day, bytes) in packed {
        counter.count(*day, bytes)?;
    }
    for (tallies, more) in counted.iter_mut().zip(counter.tallies) {
        for (key, tally) in more {
            tallies.entry(key).or_default().merge(tally);
        }
    }
    Ok(())
}

impl<B: Backend> SqlStore<B> {
    /// Packs one day of the organization's chats when every one of them has closed; whether
    /// it did. On Postgres the day's row is taken first (the triggers' upsert takes it too),
    /// so a change to its chats in flight is either seen or empties the packing after.
    async fn pack_day(&self, organization_id: &str, day: i64) -> DbResult<bool> {
        let mut tx = self.backend.write().await?;
        execute(
            &mut tx,
            "INSERT INTO report_days (organization_id, day) VALUES ($1, $2) \
             ON CONFLICT (organization_id, day) DO NOTHING",
            params![organization_id, day],
        )
        .await?;
        let lock = if self.backend.name() == "postgres" {
            "SELECT CASE WHEN block IS NULL THEN 0 ELSE 1 END FROM report_days \
             WHERE organization_id = $1 AND day = $2 FOR UPDATE"
        } else {
            "SELECT CASE WHEN block IS NULL THEN 0 ELSE 1 END FROM report_days \
             WHERE organization_id = $1 AND day = $2"
        };
        if scalar(&mut tx, lock, params![organization_id, day]).await? > 0 {
            // Packed meanwhile by another node.
            return Ok(false);
        }
        let range = params![
            organization_id,
            day * days::DAY_MS,
            (day + 1) * days::DAY_MS
        ];
        let mut chats = all(&mut tx, &days::day_chats_sql(), range, days::day_chat).await?;
        if chats.iter().any(|(_, chat)| !chat.closed) {
            tx.commit().await?;
            return Ok(false);
        }
        let tags = all(&mut tx, days::DAY_TAGS, range, |r| {
            Ok((r.text(0)?, r.text(1)?))
        })
        .await?;
        if !tags.is_empty() {
            let at: std::collections::HashMap<&str, usize> = chats
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (id.as_str(), i))
                .collect();
            let mut tagged: Vec<(usize, String)> = tags
                .into_iter()
                .filter_map(|(chat, tag)| at.get(chat.as_str()).map(|i| (*i, tag)))
                .collect();
            tagged.sort();
            for (i, tag) in tagged {
                chats[i].1.tags.push(tag);
            }
        }
        let chats: Vec<days::DayChat> = chats.into_iter().map(|(_, chat)| chat).collect();
        let block = days::pack(day, &chats);
        execute(
            &mut tx,
            "UPDATE report_days SET block = $3, chats = $4 \
             WHERE organization_id = $1 AND day = $2",
            params![
                organization_id,
                day,
                Value::Bytes(&block),
                chats.len() as i64
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// SQLite: every part's tallies from one scan of the chats started in `ranges`. One long
    /// range is cut into as many pieces as the machine has cores (at most four); the pieces
    /// are scanned each on a read connection of its own beside the others (WAL lets readers
    /// run together), and their counts and values are merged.
    async fn count_sqlite(
        &self,
        scope: &ReportScope,
        period: &ReportPeriod,
        parts: &[ReportBy],
        ranges: &[(i64, i64)],
    ) -> DbResult<Vec<BTreeMap<Key, Tally>>> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pieces = match ranges {
            [(start, end)] if end - start >= SPLIT_FROM_DAYS as i64 * days::DAY_MS => {
                split(*start, *end, cores.min(4))
            }
            _ => ranges.to_vec(),
        };
        let mut readers = Vec::with_capacity(pieces.len());
        for _ in &pieces {
            readers.push(self.backend.read().await?);
        }
        let statements: Vec<Sql<'_>> = pieces
            .iter()
            .map(|range| chats_sql(scope, period, parts, *range))
            .collect();
        std::thread::scope(|threads| {
            let mut jobs = readers.iter_mut().zip(&statements);
            let first = jobs.next();
            let others: Vec<_> = jobs
                .map(|(reader, sql)| {
                    threads.spawn(move || count_chats(reader as &mut dyn super::Conn, sql, parts))
                })
                .collect();
            let mut counted = match first {
                Some((reader, sql)) => count_chats(reader, sql, parts)?,
                None => parts.iter().map(|_| BTreeMap::new()).collect(),
            };
            for other in others {
                let other = other
                    .join()
                    .map_err(|_| DbError::Other("a report scan stopped unexpectedly".into()))??;
                for (tallies, more) in counted.iter_mut().zip(other) {
                    for (key, tally) in more {
                        tallies.entry(key).or_default().merge(tally);
                    }
                }
            }
            Ok(counted)
        })
    }
}

#[async_trait]
impl<B: Backend> ReportStore for SqlStore<B> {
    async fn report(
        &self,
        scope: &ReportScope,
        period: &ReportPeriod,
        parts: &[ReportBy],
    ) -> DbResult<Vec<Vec<ReportRow>>> {
        let finish = |tallies: BTreeMap<Key, Tally>| -> BTreeMap<Key, ReportRow> {
            tallies
                .into_iter()
                .map(|(key, tally)| (key, tally.finish()))
                .collect()
        };
        let mut counted = Vec::with_capacity(parts.len());
        if self.backend.name() == "postgres" {
            // A transaction of its own, only so these settings end with it. The planner
            // cannot tell how many days or agents a key expression yields (it guesses one
            // per chat) and would sort every chat to group them, spilling to disk at the
            // default work_mem; grouping by hash needs memory for the keys' values only.
            let mut tx = self.backend.write().await?;
            execute(&mut tx, "SET LOCAL enable_sort = off", &[]).await?;
            execute(&mut tx, "SET LOCAL work_mem = '64MB'", &[]).await?;
            let (packed, ranges) = plan(period, packed_days(&mut tx, scope, period).await?);
            let mut tallies: Vec<BTreeMap<Key, Tally>> =
                parts.iter().map(|_| BTreeMap::new()).collect();
            for (by, tallies) in parts.iter().zip(tallies.iter_mut()) {
                for range in &ranges {
                    for (key, tally) in count_postgres(&mut tx, scope, period, *by, *range).await? {
                        tallies.entry(key).or_default().merge(tally);
                    }
                }
            }
            count_packed(scope, period, parts, &packed, &mut tallies)?;
            for (by, tallies) in parts.iter().zip(tallies) {
                let mut rows = finish(tallies);
                add_greetings(&mut tx, scope, period, *by, &mut rows).await?;
                counted.push(rows);
            }
            tx.commit().await?;
        } else {
            let mut conn = self.backend.read().await?;
            let (packed, ranges) = plan(period, packed_days(&mut conn, scope, period).await?);
            let mut tallies = if ranges.is_empty() {
                parts.iter().map(|_| BTreeMap::new()).collect()
            } else {
                self.count_sqlite(scope, period, parts, &ranges).await?
            };
            count_packed(scope, period, parts, &packed, &mut tallies)?;
            for (by, tallies) in parts.iter().zip(tallies) {
                let mut rows = finish(tallies);
                add_greetings(&mut conn, scope, period, *by, &mut rows).await?;
                counted.push(rows);
            }
        }
        Ok(parts
            .iter()
            .zip(counted)
            .map(|(by, rows)| arrange(scope, period, *by, rows))
            .collect())
    }

    async fn pack_report_days(&self, now_ms: i64, limit: usize) -> DbResult<usize> {
        // Days that ended an hour ago: no node's clock still starts chats in them.
        let before = days::utc_day(now_ms - 3_600_000);
        let organizations = {
            let mut conn = self.backend.read().await?;
            super::texts(&mut conn, "SELECT id FROM organizations ORDER BY id", &[]).await?
        };
        let (mut looked, mut packed) = (0, 0);
        for org in &organizations {
            let (first, done) = {
                let mut conn = self.backend.read().await?;
                let first = one(
                    &mut conn,
                    "SELECT MIN(created_at) FROM chats WHERE organization_id = $1",
                    params![org.as_str()],
                    |r| r.opt_int(0),
                )
                .await?;
                let done = all(
                    &mut conn,
                    "SELECT day FROM report_days WHERE organization_id = $1 \
                     AND block IS NOT NULL",
                    params![org.as_str()],
                    |r| r.int(0),
                )
                .await?;
                (
                    first,
                    done.into_iter().collect::<std::collections::HashSet<i64>>(),
                )
            };
            let Some(first) = first else { continue };
            // Reports reach back at most MAX_REPORT_DAYS.
            let from = days::utc_day(first).max(before - crate::domain::MAX_REPORT_DAYS - 1);
            for day in (from..before).rev() {
                if done.contains(&day) {
                    continue;
                }
                if looked >= limit {
                    return Ok(packed);
                }
                looked += 1;
                if self.pack_day(org, day).await? {
                    packed += 1;
                }
            }
        }
        Ok(packed)
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
        // Imported chats start in the past: days packed before must be read again.
        execute(
            &mut tx,
            "UPDATE report_days SET block = NULL WHERE organization_id = $1",
            params![org],
        )
        .await?;
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
                Value::Bool(chat.previous_assignee.is_some()),
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
             response_total_ms, transferred)",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_cut_into_pieces_that_cover_it_once() {
        let pieces = split(1_000, 1_011, 3);
        assert_eq!(pieces, vec![(1_000, 1_003), (1_003, 1_006), (1_006, 1_011)]);
        assert_eq!(split(5, 6, 4), vec![(5, 6)]);
        assert_eq!(split(0, 10, 1), vec![(0, 10)]);
    }

    #[test]
    fn a_report_reads_the_packed_days_and_scans_the_rest_once() {
        use chrono::NaiveDate;
        let date = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        // Ten days in New York: each local day straddles two UTC days.
        let period = ReportPeriod::new(date(1), date(10), "America/New_York").unwrap();
        let (start, end) = (period.start_ms(), period.end_ms());
        let first = days::utc_day(start);
        let last = days::utc_day(end - 1);
        assert_eq!(last - first, 10);
        let packed = |which: &[i64]| -> BTreeMap<i64, Vec<u8>> {
            which.iter().map(|d| (first + d, vec![])).collect()
        };
        // Every day packed: nothing to scan.
        let all: Vec<i64> = (0..=10).collect();
        let (read, ranges) = plan(&period, packed(&all));
        assert_eq!(read.len(), 11);
        assert!(ranges.is_empty());
        // The middle packed: the two ends scanned, cut at the period's edges.
        let (read, ranges) = plan(&period, packed(&[2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(read.len(), 7);
        assert_eq!(
            ranges,
            vec![
                (start, (first + 2) * days::DAY_MS),
                ((first + 9) * days::DAY_MS, end)
            ]
        );
        // Every other day: more ranges than are worth scanning apart, so one span is
        // scanned and the packed days inside it are left unread.
        let (read, ranges) = plan(&period, packed(&[1, 3, 5, 7, 9]));
        assert!(read.is_empty(), "{read:?}");
        assert_eq!(ranges, vec![(start, end)]);
        // A packed day outside the period is never read.
        let (read, _) = plan(&period, packed(&[11]));
        assert!(read.is_empty());
    }
}
