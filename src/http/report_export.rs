//! CSV export of reports: `GET /export/report.csv?from=…&to=…[&timeZone=…][&groupId=…]
//! [&agentId=…][&tagId=…][&by=total|day|agent]` with `Authorization: Bearer <agent access
//! token>`. The same checks and numbers as the `report` query; a row per day, per agent or
//! one for the period. Text cells a spreadsheet could run as a formula are neutralized.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use super::AppState;
use crate::domain::{DurationStats, ReportBy, ReportRow, csv_cell};
use crate::error::Error;
use crate::services::Caller;
use crate::services::reports::ReportRequest;

/// The query parameters, as the `ReportInput` of the API, plus `by`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportParams {
    from: Option<String>,
    to: Option<String>,
    time_zone: Option<String>,
    group_id: Option<String>,
    agent_id: Option<String>,
    tag_id: Option<String>,
    by: Option<String>,
}

/// `/export/report.csv`.
pub async fn report_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ExportParams>,
) -> Response {
    match export(&state, &headers, params).await {
        Ok((name, body)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            body,
        )
            .into_response(),
        Err(err) => {
            let status = match &err {
                Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::BadUserInput(_) => StatusCode::BAD_REQUEST,
                Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if let Error::Internal(cause) = &err {
                tracing::error!(error = %cause, "report export failed");
            }
            (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{}: {err}\n", err.code()),
            )
                .into_response()
        }
    }
}

fn date(name: &str, value: Option<&str>) -> Result<NaiveDate, Error> {
    let value = value.ok_or_else(|| Error::BadUserInput(format!("{name} is required")))?;
    value.trim().parse().map_err(|_| {
        Error::BadUserInput(format!(
            "{name} must be a date such as 2026-01-31, not {value:?}"
        ))
    })
}

async fn export(
    state: &AppState,
    headers: &HeaderMap,
    params: ExportParams,
) -> Result<(String, String), Error> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            Error::Unauthenticated("send the agent's access token as `Bearer <token>`".into())
        })?;
    let principal = match state.services.auth.authenticate(token.trim()).await? {
        Caller::Agent(principal) => principal,
        Caller::Customer(_) => return Err(Error::Forbidden("reports are for agents".into())),
    };
    let by = match params.by.as_deref().unwrap_or("total") {
        "total" => ReportBy::Total,
        "day" => ReportBy::Day,
        "agent" => ReportBy::Agent,
        other => {
            return Err(Error::BadUserInput(format!(
                "by must be total, day or agent, not {other:?}"
            )));
        }
    };
    let request = ReportRequest {
        from: date("from", params.from.as_deref())?,
        to: date("to", params.to.as_deref())?,
        time_zone: params.time_zone.unwrap_or_else(|| "UTC".into()),
        group_id: params.group_id.filter(|v| !v.is_empty()),
        agent_id: params.agent_id.filter(|v| !v.is_empty()),
        tag_id: params.tag_id.filter(|v| !v.is_empty()),
    };
    let reports = &state.services.reports;
    let report = reports.prepare(&principal, request).await?.parts(vec![by]);
    let rows = reports.rows(&report, by).await?;
    let names = match by {
        ReportBy::Agent => reports.agent_names(principal.organization_id()).await?,
        _ => Default::default(),
    };
    let mut csv = String::new();
    let lead = match by {
        ReportBy::Total => "from,to",
        ReportBy::Day => "date",
        ReportBy::Agent => "agent_id,agent_name",
    };
    csv += lead;
    for column in COLUMNS {
        csv.push(',');
        csv += column;
    }
    csv.push('\n');
    for row in &rows {
        let lead = match by {
            ReportBy::Total => format!("{},{}", report.period.from, report.period.to),
            ReportBy::Day => row.date.map(|d| d.to_string()).unwrap_or_default(),
            ReportBy::Agent => {
                let id = row.agent_id.clone().unwrap_or_default();
                let name = names.get(&id).cloned().unwrap_or_default();
                format!("{},{}", csv_cell(&id), csv_cell(&name))
            }
        };
        csv += &lead;
        for cell in cells(row) {
            csv.push(',');
            csv += &cell;
        }
        csv.push('\n');
    }
    let by_name = match by {
        ReportBy::Total => "total",
        ReportBy::Day => "day",
        ReportBy::Agent => "agent",
    };
    let name = format!(
        "report-{}-{}-{by_name}.csv",
        report.period.from, report.period.to
    );
    Ok((name, csv))
}

/// The columns after the row's key; durations in seconds.
const COLUMNS: [&str; 21] = [
    "chats_started",
    "chats_answered",
    "chats_missed",
    "chats_transferred",
    "queue_wait_avg_s",
    "queue_wait_median_s",
    "queue_wait_p90_s",
    "first_response_avg_s",
    "first_response_median_s",
    "first_response_p90_s",
    "response_avg_s",
    "response_median_s",
    "response_p90_s",
    "duration_avg_s",
    "duration_median_s",
    "duration_p90_s",
    "rated_good",
    "rated_bad",
    "rated_share",
    "greetings_shown",
    "greetings_answered",
];

fn cells(row: &ReportRow) -> Vec<String> {
    let seconds = |ms: Option<i64>| ms.map(|ms| format!("{:.3}", ms as f64 / 1000.0));
    let stats = |s: &DurationStats| {
        [
            seconds(s.average_ms()),
            seconds(s.median_ms),
            seconds(s.p90_ms),
        ]
    };
    let mut cells = vec![
        Some(row.chats_started.to_string()),
        Some(row.chats_answered.to_string()),
        Some(row.chats_missed.to_string()),
        Some(row.chats_transferred.to_string()),
    ];
    for s in [
        &row.queue_wait,
        &row.first_response,
        &row.response,
        &row.duration,
    ] {
        cells.extend(stats(s));
    }
    cells.extend([
        Some(row.rated_good.to_string()),
        Some(row.rated_bad.to_string()),
        row.rated_share().map(|s| format!("{s:.4}")),
        row.greetings_shown.map(|n| n.to_string()),
        row.greetings_answered.map(|n| n.to_string()),
    ]);
    cells.into_iter().map(Option::unwrap_or_default).collect()
}
