//! Reports: `report(input)`, the numbers of a period for the organization, a group, an
//! agent or a tag, in total, per agent and per day. Each metric is defined in
//! `domain::reports`; who sees what in `services::reports`.

use async_graphql::{Context, ID, InputObject, Object};
use chrono::NaiveDate;

use crate::domain::{self, ReportBy};
use crate::graphql::accounts::Agent;
use crate::graphql::{ApiResult, ContextExt, loaders};
use crate::services::reports::{PreparedReport, ReportRequest};

/// The period and filters of a report.
#[derive(InputObject)]
pub struct ReportInput {
    /// The first day (inclusive), in `timeZone`.
    pub from: NaiveDate,
    /// The last day (inclusive), at most 400 days after `from`.
    pub to: NaiveDate,
    /// An IANA time zone name (e.g. Europe/Paris); days begin at its midnight.
    #[graphql(default = "UTC")]
    pub time_zone: String,
    /// Only the chats of this group (and the greetings sent for it).
    pub group_id: Option<ID>,
    /// Only the chats this agent was last assigned (and the greetings sent as them). Agents
    /// may give only themselves.
    pub agent_id: Option<ID>,
    /// Only the chats with this tag (greetings are then not counted).
    pub tag_id: Option<ID>,
}

/// A report over a period; its parts are computed as they are asked for.
pub struct Report(PreparedReport);

#[Object]
impl Report {
    async fn from(&self) -> NaiveDate {
        self.0.period.from
    }

    async fn to(&self) -> NaiveDate {
        self.0.period.to
    }

    async fn time_zone(&self) -> String {
        self.0.period.time_zone.name().to_owned()
    }

    /// The whole period.
    async fn totals(&self, ctx: &Context<'_>) -> ApiResult<ReportRow> {
        let rows = ctx
            .services()
            .reports
            .rows(&self.0, ReportBy::Total)
            .await?;
        Ok(ReportRow(rows.into_iter().next().unwrap_or_default()))
    }

    /// A row per agent who was the last assignee of a chat (or sent a greeting), and one
    /// without an agent for chats nobody was assigned.
    async fn by_agent(&self, ctx: &Context<'_>) -> ApiResult<Vec<ReportRow>> {
        let rows = ctx
            .services()
            .reports
            .rows(&self.0, ReportBy::Agent)
            .await?;
        Ok(rows.into_iter().map(ReportRow).collect())
    }

    /// A row per day of the period, days without chats included, oldest first.
    async fn by_day(&self, ctx: &Context<'_>) -> ApiResult<Vec<ReportRow>> {
        let rows = ctx.services().reports.rows(&self.0, ReportBy::Day).await?;
        Ok(rows.into_iter().map(ReportRow).collect())
    }
}

/// The numbers of a period, an agent or a day. Chat numbers count the chats started in it.
pub struct ReportRow(domain::ReportRow);

#[Object]
impl ReportRow {
    /// The day (per day only).
    async fn date(&self) -> Option<NaiveDate> {
        self.0.date
    }

    /// The agent (per agent only; null on the row of chats nobody was assigned).
    async fn agent(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        let Some(agent_id) = &self.0.agent_id else {
            return Ok(None);
        };
        let organization_id = ctx.principal()?.organization_id().to_owned();
        Ok(Some(Agent(
            loaders::agent(ctx, &organization_id, agent_id).await?,
        )))
    }

    /// Chats started.
    async fn chats_started(&self) -> i64 {
        self.0.chats_started
    }

    /// Chats an agent replied to (a public message; notes do not count).
    async fn chats_answered(&self) -> i64 {
        self.0.chats_answered
    }

    /// Chats that ended without an agent's reply.
    async fn chats_missed(&self) -> i64 {
        self.0.chats_missed
    }

    /// Chats that had more than one assignee.
    async fn chats_transferred(&self) -> i64 {
        self.0.chats_transferred
    }

    /// From the chat's start to its first assignment.
    async fn queue_wait(&self) -> DurationStats {
        DurationStats(self.0.queue_wait)
    }

    /// From the chat's start to the first agent reply.
    async fn first_response_time(&self) -> DurationStats {
        DurationStats(self.0.first_response)
    }

    /// Per chat, the mean of its response times (from the first customer message of a run
    /// to the agent reply that answers it); the stats are over chats.
    async fn response_time(&self) -> DurationStats {
        DurationStats(self.0.response)
    }

    /// From the chat's start to its close, for closed chats.
    async fn chat_duration(&self) -> DurationStats {
        DurationStats(self.0.duration)
    }

    async fn rated_good(&self) -> i64 {
        self.0.rated_good
    }

    async fn rated_bad(&self) -> i64 {
        self.0.rated_bad
    }

    /// Rated chats ÷ chats started, 0 to 1; null when none started.
    async fn rated_share(&self) -> Option<f64> {
        self.0.rated_share()
    }

    /// Greetings that reached a visitor's page in the period; null with a tag filter.
    async fn greetings_shown(&self) -> Option<i64> {
        self.0.greetings_shown
    }

    /// Greetings a visitor answered by starting a chat in the period; null with a tag filter.
    async fn greetings_answered(&self) -> Option<i64> {
        self.0.greetings_answered
    }
}

/// Average, median and 90th percentile (nearest rank) of a duration, in seconds.
pub struct DurationStats(domain::DurationStats);

#[Object]
impl DurationStats {
    /// How many chats the stats are over.
    async fn count(&self) -> i64 {
        self.0.count
    }

    async fn average_seconds(&self) -> Option<f64> {
        self.0.average_ms().map(seconds)
    }

    async fn median_seconds(&self) -> Option<f64> {
        self.0.median_ms.map(seconds)
    }

    async fn p90_seconds(&self) -> Option<f64> {
        self.0.p90_ms.map(seconds)
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Reports.
#[derive(Default)]
pub struct ReportsQuery;

#[Object]
impl ReportsQuery {
    /// The numbers of a period: agents get their own, supervisors their groups', admins and
    /// owners the organization's. BAD_USER_INPUT for `to` before `from`, a period over 400
    /// days or an unknown time zone; NOT_FOUND for a group, agent or tag not of the
    /// organization; FORBIDDEN for numbers the caller may not see.
    async fn report(&self, ctx: &Context<'_>, input: ReportInput) -> ApiResult<Report> {
        let principal = ctx.principal()?;
        let request = ReportRequest {
            from: input.from,
            to: input.to,
            time_zone: input.time_zone,
            group_id: input.group_id.map(|id| id.0),
            agent_id: input.agent_id.map(|id| id.0),
            tag_id: input.tag_id.map(|id| id.0),
        };
        // The parts the query selects are computed together, in one read of the chats.
        let selected = ctx.look_ahead();
        let parts = [
            ("totals", ReportBy::Total),
            ("byAgent", ReportBy::Agent),
            ("byDay", ReportBy::Day),
        ]
        .into_iter()
        .filter(|(field, _)| selected.field(field).exists())
        .map(|(_, by)| by)
        .collect();
        Ok(Report(
            ctx.services()
                .reports
                .prepare(principal, request)
                .await?
                .parts(parts),
        ))
    }
}
