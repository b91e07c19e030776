//! Reports: who may see which numbers, and the period and filters checked before the
//! database computes them (store `reports`; the definitions are in `domain::reports`).
//!
//! Agents see their own numbers (the chats they were last assigned, the greetings sent in
//! their name); supervisors see the chats of their groups (all chats when they have none,
//! as they supervise every chat then); admins and owners see the whole organization.

use std::sync::Arc;

use chrono::NaiveDate;

use crate::domain::{ReportBy, ReportPeriod, ReportRow, ReportScope, Role};
use crate::error::{Error, Result};
use crate::services::Principal;
use crate::store::{Database, DbError};

/// What a caller asks for.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The first day, inclusive.
    pub from: NaiveDate,
    /// The last day, inclusive.
    pub to: NaiveDate,
    /// An IANA time zone name; days begin at its midnight.
    pub time_zone: String,
    pub group_id: Option<String>,
    /// The chats whose last assignee this agent is.
    pub agent_id: Option<String>,
    pub tag_id: Option<String>,
}

/// A checked request: the period and the chats it may count.
#[derive(Debug, Clone)]
pub struct PreparedReport {
    pub period: ReportPeriod,
    pub scope: ReportScope,
    /// The parts computed together the first time one is asked for: every part the caller
    /// will ask for, so the chats are read once. Set with [`PreparedReport::parts`].
    parts: Vec<ReportBy>,
    computed: Arc<tokio::sync::OnceCell<Vec<Vec<ReportRow>>>>,
}

impl PreparedReport {
    /// Computes `parts` together when the first of them is asked for (the default: all).
    pub fn parts(mut self, parts: Vec<ReportBy>) -> Self {
        self.parts = parts;
        self
    }
}

/// The use cases of reports.
pub struct ReportService {
    store: Arc<dyn Database>,
}

impl ReportService {
    pub fn new(store: Arc<dyn Database>) -> Self {
        ReportService { store }
    }

    /// Checks the period and the filters against what the caller may see: BAD_USER_INPUT
    /// for a bad period or time zone, NOT_FOUND for a group, agent or tag not of the
    /// organization, FORBIDDEN for another agent's numbers (agents) or another group's
    /// (supervisors).
    pub async fn prepare(
        &self,
        principal: &Principal,
        request: ReportRequest,
    ) -> Result<PreparedReport> {
        let period = ReportPeriod::new(request.from, request.to, &request.time_zone)
            .map_err(Error::BadUserInput)?;
        let organization_id = principal.organization_id().to_owned();
        let clean = |id: Option<String>| id.map(|id| id.trim().to_owned());
        let (group_id, agent_id, tag_id) = (
            clean(request.group_id),
            clean(request.agent_id),
            clean(request.tag_id),
        );
        if let Some(group_id) = &group_id {
            let groups = self.store.groups(&organization_id).await?;
            if !groups.iter().any(|g| &g.id == group_id) {
                return Err(Error::NotFound("no such group".into()));
            }
        }
        if let Some(agent_id) = &agent_id {
            match self.store.agent(&organization_id, agent_id).await {
                Ok(_) => {}
                Err(DbError::NotFound) => return Err(Error::NotFound("no such agent".into())),
                Err(err) => return Err(err.into()),
            }
        }
        if let Some(tag_id) = &tag_id
            && !self
                .store
                .report_tag_exists(&organization_id, tag_id)
                .await?
        {
            return Err(Error::NotFound("no such tag".into()));
        }
        let me = &principal.agent;
        let mut scope = ReportScope {
            organization_id,
            groups: group_id.clone().map(|g| vec![g]),
            agent_id,
            tag_id,
        };
        match me.role {
            Role::Agent => {
                if scope.agent_id.as_ref().is_some_and(|a| a != &me.id) {
                    return Err(Error::Forbidden(
                        "agents see only their own numbers in reports".into(),
                    ));
                }
                scope.agent_id = Some(me.id.clone());
            }
            Role::Supervisor if !me.group_ids.is_empty() => match &group_id {
                Some(group) if !me.group_ids.contains(group) => {
                    return Err(Error::Forbidden(
                        "supervisors see the reports of their own groups".into(),
                    ));
                }
                Some(_) => {}
                None => scope.groups = Some(me.group_ids.clone()),
            },
            Role::Supervisor | Role::Admin | Role::Owner => {}
        }
        Ok(PreparedReport {
            period,
            scope,
            parts: vec![ReportBy::Total, ReportBy::Agent, ReportBy::Day],
            computed: Arc::default(),
        })
    }

    /// The names of the organization's agents by id (the CSV names them).
    pub async fn agent_names(
        &self,
        organization_id: &str,
    ) -> Result<std::collections::HashMap<String, String>> {
        Ok(self
            .store
            .agents(organization_id)
            .await?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect())
    }

    /// The report's rows split `by` total, agent or day. The first call computes every part
    /// of the report's [`PreparedReport::parts`] in one go; the others read the result. A
    /// part that was not announced is computed on its own.
    pub async fn rows(&self, report: &PreparedReport, by: ReportBy) -> Result<Vec<ReportRow>> {
        let Some(at) = report.parts.iter().position(|p| *p == by) else {
            let mut rows = self
                .store
                .report(&report.scope, &report.period, &[by])
                .await?;
            return Ok(rows.pop().unwrap_or_default());
        };
        let computed = report
            .computed
            .get_or_try_init(|| {
                self.store
                    .report(&report.scope, &report.period, &report.parts)
            })
            .await?;
        Ok(computed.get(at).cloned().unwrap_or_default())
    }
}

/// Packs the days whose chats have all closed (store `pack_report_days`), so reports over
/// long periods read a row per day: once per cluster, under a lease. A few days per pass,
/// newest first, so a year of history is packed within the hour after an upgrade and the
/// database is never held for long.
pub struct ReportDayPacker {
    pub store: Arc<dyn Database>,
}

impl ReportDayPacker {
    /// How often it looks.
    const EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    /// How many days a pass looks at.
    const DAYS_PER_PASS: usize = 32;

    /// Runs until `stop` says so.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = crate::domain::now().timestamp_millis();
            match self.store.pack_report_days(now, Self::DAYS_PER_PASS).await {
                Ok(0) => {}
                Ok(packed) => tracing::debug!(packed, "packed report days"),
                Err(err) => tracing::warn!(error = %err, "could not pack report days"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Self::EVERY) => {}
            }
        }
    }
}
