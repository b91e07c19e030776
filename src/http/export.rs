//! `GET /export/archive.csv`: the archive as CSV, with the GraphQL `archive` filter as query
//! parameters (`status`, `agentId`, `groupId`, `tagId`, `rating`, `channel`, `from`, `to` as
//! RFC 3339, `customerId`, `search`), for an agent's `Authorization: Bearer <access token>`.
//! Streamed a page at a time, so a large archive never sits in memory as one string.
//! Cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
//! carriage return) are prefixed with a `'`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream;
use serde::Deserialize;

use super::AppState;
use crate::domain::{self, ArchiveCursor, ArchiveFilter, SearchQuery};
use crate::error::Error;
use crate::services::{Caller, Principal, Services};

/// Chats read per page while streaming.
const EXPORT_PAGE: i32 = 50;

/// The columns, in order.
const HEADER: &[&str] = &[
    "chat_id",
    "started_at",
    "closed_at",
    "status",
    "channel",
    "customer_id",
    "customer_name",
    "customer_email",
    "agent",
    "group",
    "rating",
    "rating_comment",
];

/// The query parameters: the archive's filter.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportParams {
    status: Option<String>,
    agent_id: Option<String>,
    group_id: Option<String>,
    tag_id: Option<String>,
    rating: Option<String>,
    channel: Option<String>,
    from: Option<String>,
    to: Option<String>,
    customer_id: Option<String>,
    search: Option<String>,
}

fn parse_enum<T: std::str::FromStr>(name: &str, value: Option<String>) -> Result<Option<T>, Error> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Error::BadUserInput(format!("{name} {text:?} is not one of its values"))),
    }
}

fn parse_time(name: &str, value: Option<String>) -> Result<Option<DateTime<Utc>>, Error> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| Error::BadUserInput(format!("{name} must be an RFC 3339 time"))),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl ExportParams {
    fn into_filter(self) -> Result<ArchiveFilter, Error> {
        Ok(ArchiveFilter {
            status: parse_enum("status", self.status)?,
            agent_id: non_empty(self.agent_id),
            group_id: non_empty(self.group_id),
            tag_id: non_empty(self.tag_id),
            rating: parse_enum("rating", self.rating)?,
            channel: parse_enum("channel", self.channel)?,
            from: parse_time("from", self.from)?,
            to: parse_time("to", self.to)?,
            customer_id: non_empty(self.customer_id),
            search: match non_empty(self.search) {
                Some(text) => Some(SearchQuery::parse(text.trim())?),
                None => None,
            },
        })
    }
}

/// A CSV cell: formula-looking text defused, quoted when it must be.
pub fn csv_cell(text: &str) -> String {
    let defused = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    };
    if defused.contains([',', '"', '\n', '\r'])
        || defused.starts_with(' ')
        || defused.ends_with(' ')
    {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

/// A CSV line (CRLF, as RFC 4180 has it).
fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

fn error_response(err: &Error) -> Response {
    let status = match err {
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::BadUserInput(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = match err {
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "archive export failed");
            "internal error".to_owned()
        }
        other => other.to_string(),
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{}: {message}\n", err.code()),
    )
        .into_response()
}

async fn agent(state: &AppState, headers: &HeaderMap) -> Result<Arc<Principal>, Error> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            Error::Unauthenticated(
                "send an agent's access token as `Authorization: Bearer <token>`".into(),
            )
        })?;
    match state.services.auth.authenticate(token.trim()).await? {
        Caller::Agent(principal) => Ok(principal),
        Caller::Customer(_) => Err(Error::Forbidden("the export is for agents".into())),
    }
}

/// What the stream carries from one page to the next.
struct Export {
    services: Arc<Services>,
    principal: Arc<Principal>,
    filter: ArchiveFilter,
    after: Option<String>,
    agents: HashMap<String, String>,
    groups: HashMap<String, String>,
    customers: HashMap<String, (String, String)>,
    done: bool,
}

impl Export {
    /// The next page's lines; `None` after the last.
    async fn next_page(&mut self) -> Result<Option<String>, Error> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .services
            .archive
            .archive(
                &self.principal,
                &self.filter,
                EXPORT_PAGE,
                self.after.as_deref(),
            )
            .await?;
        let mut out = String::new();
        for entry in &page.entries {
            let chat = &entry.chat;
            if !self.customers.contains_key(&chat.customer_id) {
                let record = self
                    .services
                    .archive
                    .customer(&self.principal, &chat.customer_id)
                    .await?;
                self.customers.insert(
                    chat.customer_id.clone(),
                    (
                        record.customer.name.unwrap_or_default(),
                        record.customer.email.unwrap_or_default(),
                    ),
                );
            }
            let (name, email) = &self.customers[&chat.customer_id];
            let time = |t: Option<DateTime<Utc>>| {
                t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
                    .unwrap_or_default()
            };
            let lookup = |map: &HashMap<String, String>, id: &Option<String>| {
                id.as_ref()
                    .and_then(|id| map.get(id).cloned())
                    .unwrap_or_default()
            };
            out.push_str(&csv_line(&[
                chat.id.clone(),
                time(Some(chat.created_at)),
                time(chat.closed_at),
                chat.status.as_str().to_owned(),
                chat.channel.as_str().to_owned(),
                chat.customer_id.clone(),
                name.clone(),
                email.clone(),
                lookup(&self.agents, &chat.assignee_id),
                lookup(&self.groups, &chat.group_id),
                chat.rating
                    .map(|r| r.as_str().to_owned())
                    .unwrap_or_default(),
                chat.rating_comment.clone().unwrap_or_default(),
            ]));
        }
        match page.next {
            Some(cursor) => self.after = Some(ArchiveCursor::encode(&cursor)),
            None => self.done = true,
        }
        Ok(Some(out))
    }
}

/// `GET /export/archive.csv`.
pub async fn archive_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let principal = match agent(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return error_response(&err),
    };
    let filter = match params
        .map_err(|err| Error::BadUserInput(format!("bad query parameters: {}", err.body_text())))
        .and_then(|Query(p)| p.into_filter())
    {
        Ok(filter) => filter,
        Err(err) => return error_response(&err),
    };
    let services = state.services.clone();
    let organization_id = principal.organization_id().to_owned();
    let names = async {
        let agents = services.chat_views.agents_of(&organization_id).await?;
        let groups = services.chat_views.groups_of(&organization_id).await?;
        Ok::<_, Error>((agents, groups))
    };
    let (agents, groups) = match names.await {
        Ok(names) => names,
        Err(err) => return error_response(&err),
    };
    let mut export = Export {
        services,
        principal,
        filter,
        after: None,
        agents: agents.into_iter().map(|a| (a.id, a.name)).collect(),
        groups: groups.into_iter().map(|g| (g.id, g.name)).collect(),
        customers: HashMap::new(),
        done: false,
    };
    // The first page is read before answering, so a bad filter or a database error is a
    // proper status rather than a cut-off download.
    let first = match export.next_page().await {
        Ok(page) => page.unwrap_or_default(),
        Err(err) => return error_response(&err),
    };
    let head = csv_line(&HEADER.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    let rest = stream::unfold(export, |mut export| async move {
        match export.next_page().await {
            Ok(Some(lines)) => Some((Ok::<_, std::io::Error>(Bytes::from(lines)), export)),
            Ok(None) => None,
            Err(err) => {
                tracing::error!(error = %err, "archive export stopped");
                export.done = true;
                Some((Err(std::io::Error::other("the export stopped")), export))
            }
        }
    });
    let start = stream::iter([Ok::<_, std::io::Error>(Bytes::from(head + &first))]);
    let filename = format!(
        "attachment; filename=\"archive-{}.csv\"",
        domain::now().format("%Y%m%d-%H%M%S")
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(futures_util::StreamExt::chain(start, rest)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@cmd"), "'@cmd");
        assert_eq!(csv_cell("=A1,\"x\""), "\"'=A1,\"\"x\"\"\"");
        assert_eq!(csv_cell(""), "");
    }
}
