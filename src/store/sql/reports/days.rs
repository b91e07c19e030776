//! A day's chats packed into one row (`report_days`, migration 0026), so a report over a
//! year reads 365 rows instead of 500,000 chats' and counts them in memory at the speed of
//! a loop. A day (UTC) is packed once every chat that started in it has closed and the day
//! ended an hour ago; a trigger empties the row whenever one of its chats changes after
//! that (a rating after the close, a tag, a reopening, a deletion), and the day is read
//! from the chats again until it is packed anew. Reports read the packed days they find and
//! scan the chats of the rest, so a report is always as current as the chats.
//!
//! The packing (format 1), every integer a LEB128 varint, signed ones zigzagged:
//! - the format, then the agents, the groups and the tags the day's chats name: a count,
//!   then each id as a length and its UTF-8 bytes;
//! - the number of chats, then each chat in order of its start: the start as the difference
//!   from the previous chat's (the first from the day's midnight), its last assignee and
//!   group (1 + the index in their table; 0: none), one byte of flags (closed, the rating in
//!   two bits, transferred, then which of the four duration metrics it has), those metrics'
//!   values (ms, signed), and its tags (a count, then indexes).

use std::collections::{BTreeMap, HashMap};

use super::{Key, METRICS, Tally};
use crate::domain::{ReportBy, ReportPeriod, ReportScope};
use crate::store::{DbError, DbResult};

/// A day, in ms.
pub(super) const DAY_MS: i64 = 86_400_000;
/// The packing's format.
const FORMAT: u64 = 1;

/// The UTC day of an instant (ms): days since 1970-01-01.
pub(super) fn utc_day(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS)
}

/// One chat as a report counts it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DayChat {
    pub created_at: i64,
    pub agent: Option<String>,
    pub group: Option<String>,
    pub closed: bool,
    /// 1 good, 2 bad, 0 none.
    pub rating: i64,
    pub transferred: bool,
    pub values: [Option<i64>; 4],
    pub tags: Vec<String>,
}

/// The chats of a day with the columns [`DayChat`] holds, oldest first (`$1` organization,
/// `[$2, $3)` the day).
pub(super) fn day_chats_sql() -> String {
    let mut values = String::new();
    for (value, when) in METRICS {
        values += &format!(", CASE WHEN {when} THEN {value} END");
    }
    format!(
        "SELECT c.id, c.created_at, c.assignee_id, c.group_id, \
         CASE WHEN c.status = 'CLOSED' THEN 1 ELSE 0 END, \
         CASE c.rating WHEN 'GOOD' THEN 1 WHEN 'BAD' THEN 2 ELSE 0 END, \
         CASE WHEN c.transferred THEN 1 ELSE 0 END{values} \
         FROM chats c WHERE c.organization_id = $1 AND c.created_at >= $2 \
         AND c.created_at < $3 ORDER BY c.created_at, c.id"
    )
}

/// The tags of the chats of a day: `(chat id, tag id)`.
pub(super) const DAY_TAGS: &str = "SELECT t.chat_id, t.tag_id FROM chat_tags t \
     JOIN chats c ON c.id = t.chat_id WHERE c.organization_id = $1 \
     AND c.created_at >= $2 AND c.created_at < $3";

/// Reads one row of [`day_chats_sql`]: its chat id and the chat.
pub(super) fn day_chat(r: &dyn super::super::Columns) -> DbResult<(String, DayChat)> {
    let mut values = [None; 4];
    for (m, value) in values.iter_mut().enumerate() {
        *value = r.opt_int(7 + m)?;
    }
    Ok((
        r.text(0)?,
        DayChat {
            created_at: r.int(1)?,
            agent: r.opt_text(2)?,
            group: r.opt_text(3)?,
            closed: r.int(4)? != 0,
            rating: r.int(5)?,
            transferred: r.int(6)? != 0,
            values,
            tags: Vec::new(),
        },
    ))
}

/// An id's index in a table of ids, added when new.
fn index_of<'a>(
    table: &mut Vec<&'a str>,
    seen: &mut HashMap<&'a str, u64>,
    id: Option<&'a str>,
) -> u64 {
    let Some(id) = id else { return 0 };
    *seen.entry(id).or_insert_with(|| {
        table.push(id);
        table.len() as u64
    })
}

fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_signed(out: &mut Vec<u8>, value: i64) {
    put(out, ((value << 1) ^ (value >> 63)) as u64);
}

fn put_table(out: &mut Vec<u8>, table: &[&str]) {
    put(out, table.len() as u64);
    for id in table {
        put(out, id.len() as u64);
        out.extend_from_slice(id.as_bytes());
    }
}

/// Packs a day's chats (of UTC day `day`, oldest first).
pub(super) fn pack(day: i64, chats: &[DayChat]) -> Vec<u8> {
    let (mut agents, mut groups, mut tags) = (Vec::new(), Vec::new(), Vec::new());
    let (mut seen_agents, mut seen_groups, mut seen_tags) =
        (HashMap::new(), HashMap::new(), HashMap::new());
    let mut body = Vec::with_capacity(chats.len() * 24);
    put(&mut body, chats.len() as u64);
    let mut previous = day * DAY_MS;
    for chat in chats {
        put_signed(&mut body, chat.created_at - previous);
        previous = chat.created_at;
        put(
            &mut body,
            index_of(&mut agents, &mut seen_agents, chat.agent.as_deref()),
        );
        put(
            &mut body,
            index_of(&mut groups, &mut seen_groups, chat.group.as_deref()),
        );
        let mut flags = u8::from(chat.closed)
            | ((chat.rating.clamp(0, 3) as u8) << 1)
            | (u8::from(chat.transferred) << 3);
        for (m, value) in chat.values.iter().enumerate() {
            if value.is_some() {
                flags |= 1 << (4 + m);
            }
        }
        body.push(flags);
        for value in chat.values.iter().flatten() {
            put_signed(&mut body, *value);
        }
        put(&mut body, chat.tags.len() as u64);
        for tag in &chat.tags {
            let index = index_of(&mut tags, &mut seen_tags, Some(tag.as_str()));
            put(&mut body, index - 1);
        }
    }
    let mut out = Vec::with_capacity(body.len() + 64 * (agents.len() + groups.len()));
    put(&mut out, FORMAT);
    put_table(&mut out, &agents);
    put_table(&mut out, &groups);
    put_table(&mut out, &tags);
    out.extend_from_slice(&body);
    out
}

/// Reads a packing back, one value at a time.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn damaged() -> DbError {
    DbError::Other("a packed report day is damaged; empty report_days to rebuild it".into())
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> DbResult<u64> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = *self.bytes.get(self.at).ok_or_else(damaged)?;
            self.at += 1;
            if shift > 63 {
                return Err(damaged());
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    fn signed(&mut self) -> DbResult<i64> {
        let value = self.next()?;
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    fn byte(&mut self) -> DbResult<u8> {
        let byte = *self.bytes.get(self.at).ok_or_else(damaged)?;
        self.at += 1;
        Ok(byte)
    }

    fn table(&mut self) -> DbResult<Vec<&'a str>> {
        let count = self.next()? as usize;
        let mut table = Vec::with_capacity(count.min(4096));
        for _ in 0..count {
            let length = self.next()? as usize;
            let end = self.at.checked_add(length).ok_or_else(damaged)?;
            let bytes = self.bytes.get(self.at..end).ok_or_else(damaged)?;
            table.push(std::str::from_utf8(bytes).map_err(|_| damaged())?);
            self.at = end;
        }
        Ok(table)
    }
}

/// Every chat of a packing, oldest first (tests, and the check that a packing reads back).
#[cfg(test)]
pub(super) fn unpack(day: i64, bytes: &[u8]) -> DbResult<Vec<DayChat>> {
    let packing = Packing::open(day, bytes)?;
    let tables = Tables {
        agents: packing.tables.agents.clone(),
        groups: packing.tables.groups.clone(),
        tags: packing.tables.tags.clone(),
    };
    let mut chats = Vec::new();
    packing.each(|chat| {
        chats.push(DayChat {
            created_at: chat.created_at,
            agent: chat.agent.map(|a| tables.agents[a].to_owned()),
            group: chat.group.map(|g| tables.groups[g].to_owned()),
            closed: chat.closed,
            rating: chat.rating,
            transferred: chat.transferred,
            values: chat.values,
            tags: chat
                .tags
                .iter()
                .map(|t| tables.tags[*t].to_owned())
                .collect(),
        });
    })?;
    Ok(chats)
}

/// The id tables of a packing.
struct Tables<'a> {
    agents: Vec<&'a str>,
    groups: Vec<&'a str>,
    tags: Vec<&'a str>,
}

/// One chat of a packing as read: indexes into its [`Tables`].
struct Packed<'t> {
    created_at: i64,
    agent: Option<usize>,
    group: Option<usize>,
    closed: bool,
    rating: i64,
    transferred: bool,
    values: [Option<i64>; 4],
    tags: &'t [usize],
}

/// A packing whose tables are read, its chats next.
struct Packing<'a> {
    day: i64,
    tables: Tables<'a>,
    reader: Reader<'a>,
}

impl<'a> Packing<'a> {
    fn open(day: i64, bytes: &'a [u8]) -> DbResult<Packing<'a>> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.next()? != FORMAT {
            return Err(damaged());
        }
        let tables = Tables {
            agents: reader.table()?,
            groups: reader.table()?,
            tags: reader.table()?,
        };
        Ok(Packing {
            day,
            tables,
            reader,
        })
    }

    /// Calls `each` with every chat, oldest first.
    fn each(self, mut each: impl FnMut(&Packed<'_>)) -> DbResult<()> {
        let Packing {
            day,
            tables,
            reader: mut r,
        } = self;
        let index = |value: u64, table: &[&str]| -> DbResult<Option<usize>> {
            match value {
                0 => Ok(None),
                n if (n as usize) <= table.len() => Ok(Some(n as usize - 1)),
                _ => Err(damaged()),
            }
        };
        let count = r.next()?;
        let mut created_at = day * DAY_MS;
        let mut tags = Vec::new();
        for _ in 0..count {
            created_at += r.signed()?;
            let agent = index(r.next()?, &tables.agents)?;
            let group = index(r.next()?, &tables.groups)?;
            let flags = r.byte()?;
            let mut values = [None; 4];
            for (m, value) in values.iter_mut().enumerate() {
                if flags & (1 << (4 + m)) != 0 {
                    *value = Some(r.signed()?);
                }
            }
            tags.clear();
            for _ in 0..r.next()? {
                let tag = r.next()? as usize;
                if tag >= tables.tags.len() {
                    return Err(damaged());
                }
                tags.push(tag);
            }
            each(&Packed {
                created_at,
                agent,
                group,
                closed: flags & 1 != 0,
                rating: i64::from((flags >> 1) & 3),
                transferred: flags & 8 != 0,
                values,
                tags: &tags,
            });
        }
        if r.at != r.bytes.len() {
            return Err(damaged());
        }
        Ok(())
    }
}

/// Counts the chats of packed days into the parts' tallies, as the scans of the chats do:
/// the chats of the scope that started in the period.
pub(super) struct DayCounter<'s> {
    scope: &'s ReportScope,
    period: &'s ReportPeriod,
    parts: &'s [ReportBy],
    offsets: Vec<(i64, i64)>,
    pub tallies: Vec<BTreeMap<Key, Tally>>,
}

impl<'s> DayCounter<'s> {
    pub fn new(scope: &'s ReportScope, period: &'s ReportPeriod, parts: &'s [ReportBy]) -> Self {
        DayCounter {
            scope,
            period,
            parts,
            offsets: period.offset_pieces(),
            tallies: parts.iter().map(|_| BTreeMap::new()).collect(),
        }
    }

    /// Counts the matching chats of one packed day.
    pub fn count(&mut self, day: i64, bytes: &[u8]) -> DbResult<()> {
        let (start, end) = (self.period.start_ms(), self.period.end_ms());
        let scope = self.scope;
        let packing = Packing::open(day, bytes)?;
        let tables = &packing.tables;
        // Which of the packing's ids the scope allows, found once per day.
        let mut wanted_agent = None;
        if let Some(agent) = &scope.agent_id {
            match tables.agents.iter().position(|a| a == agent) {
                Some(i) => wanted_agent = Some(i),
                None => return Ok(()),
            }
        }
        let mut allowed_groups = None;
        if let Some(groups) = &scope.groups {
            let allowed: Vec<bool> = tables
                .groups
                .iter()
                .map(|g| groups.iter().any(|w| w == g))
                .collect();
            if !allowed.contains(&true) {
                return Ok(());
            }
            allowed_groups = Some(allowed);
        }
        let mut wanted_tag = None;
        if let Some(tag) = &scope.tag_id {
            match tables.tags.iter().position(|t| t == tag) {
                Some(i) => wanted_tag = Some(i),
                None => return Ok(()),
            }
        }
        // This day's tallies: per agent index (0: none), per local day, and the total.
        let agent_ids: Vec<String> = tables.agents.iter().map(|a| (*a).to_owned()).collect();
        let mut by_agent: Vec<Tally> = (0..=agent_ids.len()).map(|_| Tally::default()).collect();
        let mut by_day: Vec<(i64, Tally)> = Vec::new();
        let mut total = Tally::default();
        let offsets = &self.offsets;
        let wants = |by: ReportBy| self.parts.contains(&by);
        let (want_total, want_agent, want_day) = (
            wants(ReportBy::Total),
            wants(ReportBy::Agent),
            wants(ReportBy::Day),
        );
        packing.each(|chat| {
            if chat.created_at < start || chat.created_at >= end {
                return;
            }
            if wanted_agent.is_some() && chat.agent != wanted_agent {
                return;
            }
            if let Some(allowed) = &allowed_groups
                && !chat.group.is_some_and(|g| allowed[g])
            {
                return;
            }
            if let Some(tag) = wanted_tag
                && !chat.tags.contains(&tag)
            {
                return;
            }
            let transferred = i64::from(chat.transferred);
            if want_total {
                total.count(chat.closed, chat.rating, transferred, &chat.values);
            }
            if want_agent {
                by_agent[chat.agent.map_or(0, |a| a + 1)].count(
                    chat.closed,
                    chat.rating,
                    transferred,
                    &chat.values,
                );
            }
            if want_day {
                let key = local_day(offsets, chat.created_at);
                let at = match by_day.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        by_day.push((key, Tally::default()));
                        by_day.len() - 1
                    }
                };
                by_day[at]
                    .1
                    .count(chat.closed, chat.rating, transferred, &chat.values);
            }
        })?;
        for (part, tallies) in self.parts.iter().zip(self.tallies.iter_mut()) {
            match part {
                ReportBy::Total => {
                    if total.row.chats_started > 0 {
                        tallies
                            .entry(Key::Day(0))
                            .or_default()
                            .merge(std::mem::take(&mut total));
                    }
                }
                ReportBy::Agent => {
                    for (i, tally) in std::mem::take(&mut by_agent).into_iter().enumerate() {
                        if tally.row.chats_started == 0 {
                            continue;
                        }
                        let agent = if i == 0 {
                            String::new()
                        } else {
                            agent_ids[i - 1].clone()
                        };
                        tallies.entry(Key::Agent(agent)).or_default().merge(tally);
                    }
                }
                ReportBy::Day => {
                    for (key, tally) in std::mem::take(&mut by_day) {
                        tallies.entry(Key::Day(key)).or_default().merge(tally);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The local day of an instant over the zone's offset pieces, as the scans key it.
fn local_day(offsets: &[(i64, i64)], ms: i64) -> i64 {
    let offset = offsets
        .iter()
        .find(|(until, _)| ms < *until)
        .map_or(0, |p| p.1);
    (ms + offset).div_euclid(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(created_at: i64, agent: Option<&str>, tags: &[&str]) -> DayChat {
        DayChat {
            created_at,
            agent: agent.map(str::to_owned),
            group: Some("g1".into()),
            closed: true,
            rating: 2,
            transferred: true,
            values: [Some(1_500), None, Some(-3), Some(86_400_000 * 3)],
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn a_packed_day_reads_back_as_it_was() {
        let day = 20_000;
        let chats = vec![
            chat(day * DAY_MS, Some("agent-a"), &["vip", "billing"]),
            chat(day * DAY_MS + 1, None, &[]),
            chat(day * DAY_MS + 5_000_000, Some("agent-b"), &["billing"]),
            DayChat {
                created_at: day * DAY_MS + DAY_MS - 1,
                agent: Some("agent-a".into()),
                group: None,
                closed: false,
                rating: 0,
                transferred: false,
                values: [None; 4],
                tags: Vec::new(),
            },
        ];
        let packed = pack(day, &chats);
        assert_eq!(unpack(day, &packed).unwrap(), chats);
        assert_eq!(unpack(day, &pack(day, &[])).unwrap(), Vec::new());
    }

    #[test]
    fn a_damaged_packing_is_an_error_not_a_panic() {
        let day = 20_000;
        let packed = pack(day, &[chat(day * DAY_MS, Some("agent-a"), &["vip"])]);
        for cut in 0..packed.len() {
            assert!(unpack(day, &packed[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = packed.clone();
        longer.push(0);
        assert!(unpack(day, &longer).is_err());
        let mut other_format = packed;
        other_format[0] = 9;
        assert!(unpack(day, &other_format).is_err());
    }

    #[test]
    fn packed_days_count_only_the_scope_and_the_period() {
        let period = ReportPeriod::new(
            chrono::NaiveDate::from_ymd_opt(2024, 10, 27).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2024, 10, 27).unwrap(),
            "Europe/Paris",
        )
        .unwrap();
        let (start, end) = (period.start_ms(), period.end_ms());
        let day = utc_day(start);
        let chats = vec![
            chat(start - 1, Some("a"), &["vip"]),
            chat(start, Some("a"), &["vip"]),
            chat(start + 10, Some("b"), &[]),
            chat(end - 1, None, &["vip"]),
            chat(end, Some("a"), &["vip"]),
        ];
        // The period's first instant is on the UTC day before.
        let (before, after): (Vec<_>, Vec<_>) = chats
            .into_iter()
            .partition(|c| utc_day(c.created_at) == day);
        let scope = |agent: Option<&str>, tag: Option<&str>| ReportScope {
            organization_id: "org".into(),
            groups: None,
            agent_id: agent.map(str::to_owned),
            tag_id: tag.map(str::to_owned),
        };
        let parts = [ReportBy::Total, ReportBy::Agent, ReportBy::Day];
        let count = |scope: &ReportScope| {
            let mut counter = DayCounter::new(scope, &period, &parts);
            counter.count(day, &pack(day, &before)).unwrap();
            counter.count(day + 1, &pack(day + 1, &after)).unwrap();
            assert_eq!(
                local_day(&counter.offsets, start),
                local_day(&counter.offsets, end - 1)
            );
            counter.tallies
        };
        let all = count(&scope(None, None));
        assert_eq!(all[0][&Key::Day(0)].row.chats_started, 3);
        assert_eq!(all[1][&Key::Agent("a".into())].row.chats_started, 1);
        assert_eq!(all[1][&Key::Agent(String::new())].row.chats_started, 1);
        assert_eq!(all[2].len(), 1);
        assert_eq!(all[0][&Key::Day(0)].values[0].len(), 3);
        let vip = count(&scope(None, Some("vip")));
        assert_eq!(vip[0][&Key::Day(0)].row.chats_started, 2);
        let b = count(&scope(Some("b"), None));
        assert_eq!(b[0][&Key::Day(0)].row.chats_started, 1);
        let nobody = count(&scope(Some("c"), None));
        assert!(nobody[0].is_empty());
    }
}
