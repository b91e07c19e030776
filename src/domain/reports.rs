//! Reports: the period a report covers (days in the caller's time zone), who and what it
//! narrows to, the numbers it gives, and the one definition of a percentile both databases
//! follow. The numbers themselves are computed by the database (store `reports`).
//!
//! Every chat metric is over the chats *started* in the period (by `created_at`):
//! - started: every such chat; answered: it had an agent's public reply (`first_response_at`);
//!   missed: it closed without one; transferred: it had more than one assignee (an agent's,
//!   a supervisor's or an automatic transfer).
//! - queue wait: first assignment − start, for chats that were assigned.
//! - first response time: first public agent reply − start, for answered chats.
//! - response time: for each customer message run an agent's public reply answers, reply −
//!   the run's first customer message (a chat's first run starts with the chat); a chat's
//!   response time is the mean of its runs, and the report's average, median and 90th
//!   percentile are over the chats that have one. Notes never count as replies.
//! - chat duration: close − start, for closed chats.
//! - satisfaction: chats rated good, rated bad, and rated ÷ started.
//! - greetings: shown (first reached the visitor's page in the period) and answered (a chat
//!   started from it in the period); by the agent they were sent as and their group.
//!
//! Per agent, a chat counts for its last assignee. Median and 90th percentile are
//! nearest-rank: the value at 1-based rank ⌈p·n⌉ of the n values sorted ascending.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The longest period a report covers, in days.
pub const MAX_REPORT_DAYS: i64 = 400;

/// A local day of the period: its date and the instants it spans, [start, end).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportDay {
    pub date: NaiveDate,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// The days a report covers, `from` to `to` inclusive, in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportPeriod {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub time_zone: Tz,
    pub days: Vec<ReportDay>,
}

impl ReportPeriod {
    /// The period, or what is wrong with it, in words for the person who asked.
    pub fn new(from: NaiveDate, to: NaiveDate, time_zone: &str) -> Result<Self, String> {
        let zone: Tz = time_zone.trim().parse().map_err(|_| {
            format!("unknown time zone {time_zone:?}: use an IANA name such as Europe/Paris")
        })?;
        if to < from {
            return Err("the period's end (to) is before its start (from)".into());
        }
        let length = (to - from).num_days() + 1;
        if length > MAX_REPORT_DAYS {
            return Err(format!(
                "a report covers at most {MAX_REPORT_DAYS} days; this period has {length}"
            ));
        }
        let mut days = Vec::with_capacity(length as usize);
        let mut date = from;
        let mut start = day_start(zone, date);
        while date <= to {
            let next = date + Duration::days(1);
            let end = day_start(zone, next);
            days.push(ReportDay {
                date,
                start_ms: start,
                end_ms: end,
            });
            date = next;
            start = end;
        }
        Ok(ReportPeriod {
            from,
            to,
            time_zone: zone,
            days,
        })
    }

    /// The first instant of the period (ms).
    pub fn start_ms(&self) -> i64 {
        self.days.first().map_or(0, |d| d.start_ms)
    }

    /// The instant after the period (ms).
    pub fn end_ms(&self) -> i64 {
        self.days.last().map_or(0, |d| d.end_ms)
    }

    /// The zone's UTC offsets over the period: `(until_ms, offset_ms)` pieces in order, the
    /// last until `i64::MAX`. An instant's local day is `(ms + offset_ms) / 86_400_000` days
    /// after 1970-01-01 in its piece, which is how the database splits by day.
    pub fn offset_pieces(&self) -> Vec<(i64, i64)> {
        let offset_at = |ms: i64| -> i64 {
            let at = DateTime::from_timestamp_millis(ms).unwrap_or_default();
            i64::from(
                self.time_zone
                    .offset_from_utc_datetime(&at.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1000
        };
        let mut pieces = Vec::new();
        let mut current = offset_at(self.start_ms());
        for day in &self.days {
            // At most one change a day; find its instant by bisection.
            if offset_at(day.end_ms - 1) != current {
                let (mut low, mut high) = (day.start_ms, day.end_ms - 1);
                while low < high {
                    let mid = low + (high - low) / 2;
                    if offset_at(mid) == current {
                        low = mid + 1;
                    } else {
                        high = mid;
                    }
                }
                pieces.push((low, current));
                current = offset_at(low);
            }
        }
        pieces.push((i64::MAX, current));
        pieces
    }
}

/// The date `days` after 1970-01-01.
pub fn epoch_day(days: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + Duration::days(days)
}

/// When `date` begins in `zone`, in ms: its midnight, or the first instant after a gap that
/// swallowed midnight (a few zones change their clocks at 00:00).
fn day_start(zone: Tz, date: NaiveDate) -> i64 {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for minutes in (0..=180).step_by(15) {
        if let Some(at) = zone
            .from_local_datetime(&(midnight + Duration::minutes(minutes)))
            .earliest()
        {
            return at.timestamp_millis();
        }
    }
    Utc.from_utc_datetime(&midnight).timestamp_millis()
}

/// The date of `at` in `zone`.
pub fn local_date(zone: Tz, at: DateTime<Utc>) -> NaiveDate {
    let local = at.with_timezone(&zone);
    NaiveDate::from_ymd_opt(local.year(), local.month(), local.day()).unwrap_or_default()
}

/// Whose chats a report counts. `groups`: the chats of these groups only (`None`: any).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportScope {
    pub organization_id: String,
    pub groups: Option<Vec<String>>,
    /// The last assignee.
    pub agent_id: Option<String>,
    pub tag_id: Option<String>,
}

/// How a report's rows are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportBy {
    /// One row: the whole period.
    Total,
    /// A row per last assignee (and one without, for chats nobody had).
    Agent,
    /// A row per local day of the period, days without chats too.
    Day,
}

/// Average, median and 90th percentile of a duration, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurationStats {
    /// How many values (chats) there are.
    pub count: i64,
    pub total_ms: i64,
    pub median_ms: Option<i64>,
    pub p90_ms: Option<i64>,
}

impl DurationStats {
    /// The stats of `values`: count, sum, and the nearest-rank median and 90th percentile,
    /// found by selection (linear time) rather than a full sort. `values` is reordered.
    pub fn of(values: &mut [i64]) -> Self {
        let n = values.len() as i64;
        let mut at_rank = |percent: i64| -> Option<i64> {
            (n > 0).then(|| {
                let rank = (percent * n + 99) / 100;
                *values.select_nth_unstable((rank.max(1) - 1) as usize).1
            })
        };
        // The 90th first: selecting it leaves every smaller value before it, so the median's
        // selection that follows works on a partly ordered slice.
        let p90_ms = at_rank(90);
        let median_ms = at_rank(50);
        DurationStats {
            count: n,
            total_ms: values.iter().sum(),
            median_ms,
            p90_ms,
        }
    }

    /// The mean in ms, rounded down, if there are values.
    pub fn average_ms(&self) -> Option<i64> {
        (self.count > 0).then(|| self.total_ms.div_euclid(self.count))
    }
}

/// The nearest-rank `percent`th percentile of ascending `sorted`: the value at 1-based rank
/// ⌈percent·n/100⌉.
pub fn nearest_rank(sorted: &[i64], percent: i64) -> Option<i64> {
    let n = sorted.len() as i64;
    if n == 0 {
        return None;
    }
    let rank = (percent * n + 99) / 100;
    sorted.get((rank.max(1) - 1) as usize).copied()
}

/// One row of a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    /// The agent's id (by agent; `None`: chats without an assignee) or the day (by day).
    pub agent_id: Option<String>,
    pub date: Option<NaiveDate>,
    pub chats_started: i64,
    pub chats_answered: i64,
    pub chats_missed: i64,
    pub chats_transferred: i64,
    pub queue_wait: DurationStats,
    pub first_response: DurationStats,
    pub response: DurationStats,
    pub duration: DurationStats,
    pub rated_good: i64,
    pub rated_bad: i64,
    /// `None` with a tag filter: greetings carry no tags.
    pub greetings_shown: Option<i64>,
    pub greetings_answered: Option<i64>,
}

impl ReportRow {
    /// Rated chats ÷ started chats, if any started.
    pub fn rated_share(&self) -> Option<f64> {
        (self.chats_started > 0)
            .then(|| (self.rated_good + self.rated_bad) as f64 / self.chats_started as f64)
    }
}

/// Neutralizes a CSV cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
/// carriage return first) by prefixing `'`, then quotes it when it needs quoting.
pub fn csv_cell(value: &str) -> String {
    let guarded = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn nearest_rank_matches_its_definition() {
        assert_eq!(nearest_rank(&[], 50), None);
        assert_eq!(nearest_rank(&[7], 50), Some(7));
        assert_eq!(nearest_rank(&[7], 90), Some(7));
        assert_eq!(nearest_rank(&[1, 2], 50), Some(1));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&ten, 50), Some(5));
        assert_eq!(nearest_rank(&ten, 90), Some(9));
        let eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(nearest_rank(&eleven, 50), Some(6));
        assert_eq!(nearest_rank(&eleven, 90), Some(10));
    }

    #[test]
    fn stats_by_selection_match_the_sorted_definition() {
        // A small deterministic generator: many lengths, repeated values, any order.
        let mut state: u64 = 42;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as i64
        };
        for len in (0..40).chain([99, 100, 101, 1_000, 1_001]) {
            let mut values: Vec<i64> = (0..len).map(|_| next() % 50).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let stats = DurationStats::of(&mut values);
            assert_eq!(stats.count, len);
            assert_eq!(stats.total_ms, sorted.iter().sum::<i64>());
            assert_eq!(stats.median_ms, nearest_rank(&sorted, 50), "{len} values");
            assert_eq!(stats.p90_ms, nearest_rank(&sorted, 90), "{len} values");
        }
    }

    #[test]
    fn days_follow_the_time_zone_across_daylight_saving() {
        let period =
            ReportPeriod::new(date("2026-03-28"), date("2026-03-30"), "Europe/Paris").unwrap();
        let hours: Vec<i64> = period
            .days
            .iter()
            .map(|d| (d.end_ms - d.start_ms) / 3_600_000)
            .collect();
        assert_eq!(hours, [24, 23, 24]);
        assert_eq!(
            period.start_ms(),
            Utc.with_ymd_and_hms(2026, 3, 27, 23, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
    }

    #[test]
    fn offset_pieces_put_every_instant_on_its_local_day() {
        let period =
            ReportPeriod::new(date("2026-01-01"), date("2026-12-31"), "America/New_York").unwrap();
        let pieces = period.offset_pieces();
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        for day in &period.days {
            for ms in [day.start_ms, day.start_ms + 3_600_000 * 5, day.end_ms - 1] {
                let offset = pieces.iter().find(|(until, _)| ms < *until).unwrap().1;
                assert_eq!(epoch_day((ms + offset).div_euclid(86_400_000)), day.date);
            }
        }
    }

    #[test]
    fn bad_periods_are_refused_in_words() {
        assert!(
            ReportPeriod::new(date("2026-02-02"), date("2026-02-01"), "UTC")
                .unwrap_err()
                .contains("before")
        );
        assert!(
            ReportPeriod::new(date("2025-01-01"), date("2026-03-01"), "UTC")
                .unwrap_err()
                .contains("at most 400 days")
        );
        assert!(
            ReportPeriod::new(date("2026-01-01"), date("2026-01-01"), "Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
    }

    #[test]
    fn csv_cells_cannot_become_formulas() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("Support"), "Support");
    }
}
