//! Rows: the column lists every query selects, and the decoders that turn a row read
//! through [`Columns`] into a domain value. Both backends decode through the same code.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::domain::{
    Agent, Chat, ChatEvent, ChatSettings, Customer, FeedData, Group, OfflineMessage, Organization,
    PushDevice, PushJob, PushMessage, ReplyClock, RoutingCandidate, UnknownVariant, WebPushKeys,
};
use crate::store::{DbError, DbResult, from_millis};

macro_rules! organization_columns {
    () => {
        "id, name, widget_key, default_chat_limit, auto_transfer_seconds, \
         waiting_long_seconds, customer_idle_seconds, auto_close_seconds, \
         presence_grace_seconds, queue_limit, acceptance_timeout_seconds, created_at, \
         queue_abandon_seconds, new_chats_per_minute, agents_see_group_chats"
    };
}

macro_rules! agent_columns {
    () => {
        "a.id, a.organization_id, a.email, a.name, a.role, a.routing_status, a.chat_limit, \
         a.active, a.last_login_at, a.created_at"
    };
}

macro_rules! chat_columns {
    () => {
        "c.id, c.organization_id, c.customer_id, c.group_id, c.channel, c.status, \
         c.assignee_id, c.attention, c.created_at, c.queued_at, c.assigned_at, \
         c.first_response_at, c.closed_at, c.rating, c.rating_comment, c.awaiting_reply_since, \
         c.last_customer_activity_at, c.last_activity_at, c.agent_typing_since, \
         c.acceptance_deadline, c.customer_seen_at, c.first_assigned_at, c.response_count, \
         c.response_total_ms, c.reply_run_since"
    };
}

macro_rules! customer_columns {
    () => {
        "id, organization_id, visitor_id, name, email, location, ip_address, current_page_url, \
         current_page_title, referrer, user_agent, visits, created_at, last_seen_at, external_id"
    };
}

macro_rules! event_columns {
    () => {
        "e.id, e.chat_id, e.organization_id, e.seq, e.kind, e.author_kind, e.author_id, \
         e.author_name, e.text, e.client_id, e.visibility, e.created_at"
    };
}

macro_rules! device_columns {
    () => {
        "id, agent_id, organization_id, platform, token, app_id, environment, locale, \
         device_name, disabled_reason, created_at, updated_at, web_push_p256dh, web_push_auth"
    };
}

macro_rules! job_columns {
    () => {
        "id, device_id, agent_id, organization_id, kind, chat_id, message, status, attempts, \
         next_attempt_at, last_error, created_at"
    };
}

/// Claims due push jobs: pending and due at `$2`, or claimed by a worker whose lock ran out.
/// `$1` is the new lock's end, `$3` how many. Postgres adds `FOR UPDATE SKIP LOCKED` to the
/// inner select, between the two halves.
macro_rules! claim_push_jobs_head {
    () => {
        "UPDATE push_jobs SET status = 'SENDING', locked_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM push_jobs WHERE (status = 'PENDING' AND \
         next_attempt_at <= $2) OR (status = 'SENDING' AND locked_until <= $2) \
         ORDER BY next_attempt_at LIMIT $3"
    };
}

macro_rules! claim_push_jobs_tail {
    () => {
        concat!(") RETURNING ", job_columns!())
    };
}

/// The columns of an email job, in the order `email_job_from` reads them by name.
macro_rules! email_job_columns {
    () => {
        "id, organization_id, offline_message_id, kind, to_address, from_name, reply_to, \
         subject, body, message_id, in_reply_to, status, attempts, next_attempt_at, last_error, \
         created_at"
    };
}

macro_rules! claim_email_jobs_head {
    () => {
        "UPDATE email_jobs SET status = 'SENDING', locked_until = $1, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM email_jobs WHERE (status = 'PENDING' AND \
         next_attempt_at <= $2) OR (status = 'SENDING' AND locked_until <= $2) \
         ORDER BY next_attempt_at LIMIT $3"
    };
}

macro_rules! claim_email_jobs_tail {
    () => {
        concat!(") RETURNING ", email_job_columns!())
    };
}

/// Active chats that count toward an agent's limit: grey (idle) chats do not.
macro_rules! load_sql {
    () => {
        "SELECT COUNT(*) FROM chats l WHERE l.assignee_id = a.id AND l.status = 'ACTIVE' \
         AND l.attention <> 'CUSTOMER_IDLE'"
    };
}

/// Reachable at `$2`: a live connection, the grace period after one, or an enabled push
/// device that stands in for the app.
macro_rules! reachable_sql {
    () => {
        "COALESCE(a.presence_expires_at, 0) > $2 OR EXISTS (SELECT 1 FROM push_devices d \
         WHERE d.agent_id = a.id AND d.disabled_reason IS NULL)"
    };
}

/// Agents of any group when `$N` is '', else members of group `$N` and agents without groups
/// (who take chats of every group).
macro_rules! in_group {
    ($n:literal) => {
        concat!(
            "($",
            $n,
            " = '' OR NOT EXISTS (SELECT 1 FROM group_members m WHERE m.agent_id = a.id) \
             OR EXISTS (SELECT 1 FROM group_members m WHERE m.agent_id = a.id \
             AND m.group_id = $",
            $n,
            "))"
        )
    };
}

macro_rules! offline_message_columns {
    () => {
        "id, organization_id, customer_id, group_id, name, email, text, handled, created_at"
    };
}

/// Where a column is: by name, or by position from 0.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    Name(&'a str),
    Index(usize),
}

impl<'a> From<&'a str> for At<'a> {
    fn from(name: &'a str) -> Self {
        At::Name(name)
    }
}

impl From<usize> for At<'_> {
    fn from(index: usize) -> Self {
        At::Index(index)
    }
}

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Name(name) => f.write_str(name),
            At::Index(index) => write!(f, "#{index}"),
        }
    }
}

/// A result row, from either driver. A backend reads the four kinds of value the schema
/// holds; the typed accessors on `dyn Columns` build on them.
pub trait Columns {
    /// A TEXT column.
    fn opt_text_at(&self, at: At<'_>) -> DbResult<Option<String>>;
    /// Any integer column (a boolean, on SQLite).
    fn opt_int_at(&self, at: At<'_>) -> DbResult<Option<i64>>;
    /// A BOOLEAN column (an integer on SQLite).
    fn opt_bool_at(&self, at: At<'_>) -> DbResult<Option<bool>>;
    /// A floating-point result (AVG).
    fn opt_float_at(&self, at: At<'_>) -> DbResult<Option<f64>>;
    /// A BLOB (SQLite) or BYTEA (Postgres) column.
    fn opt_bytes_at(&self, at: At<'_>) -> DbResult<Option<Vec<u8>>>;
    /// An array of integers (Postgres's `array_agg` of a BIGINT); SQLite has no arrays.
    fn opt_ints_at(&self, at: At<'_>) -> DbResult<Option<Vec<i64>>> {
        Err(DbError::Other(
            format!("column {at}: this database has no arrays").into(),
        ))
    }
}

/// A NULL where the schema promises a value.
fn unexpected_null(at: At<'_>) -> DbError {
    DbError::Other(format!("column {at} is NULL").into())
}

/// Typed reads by name or position: `row.text("id")`, `row.int(0)`. A NULL where a value
/// is required is an error, not a default.
impl dyn Columns + '_ {
    pub fn text<'a>(&self, at: impl Into<At<'a>>) -> DbResult<String> {
        let at = at.into();
        self.opt_text_at(at)?.ok_or_else(|| unexpected_null(at))
    }

    pub fn opt_text<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Option<String>> {
        self.opt_text_at(at.into())
    }

    pub fn int<'a>(&self, at: impl Into<At<'a>>) -> DbResult<i64> {
        let at = at.into();
        self.opt_int_at(at)?.ok_or_else(|| unexpected_null(at))
    }

    pub fn opt_int<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Option<i64>> {
        self.opt_int_at(at.into())
    }

    pub fn int32<'a>(&self, at: impl Into<At<'a>>) -> DbResult<i32> {
        let at = at.into();
        narrow(at, self.int(at)?)
    }

    pub fn opt_int32<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Option<i32>> {
        let at = at.into();
        self.opt_int(at)?.map(|v| narrow(at, v)).transpose()
    }

    pub fn bool<'a>(&self, at: impl Into<At<'a>>) -> DbResult<bool> {
        let at = at.into();
        self.opt_bool_at(at)?.ok_or_else(|| unexpected_null(at))
    }

    pub fn opt_float<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Option<f64>> {
        self.opt_float_at(at.into())
    }

    pub fn opt_bytes<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Option<Vec<u8>>> {
        self.opt_bytes_at(at.into())
    }

    /// An array of integers; NULL (an aggregate over no rows) reads as empty.
    pub fn ints<'a>(&self, at: impl Into<At<'a>>) -> DbResult<Vec<i64>> {
        Ok(self.opt_ints_at(at.into())?.unwrap_or_default())
    }
}

fn narrow(at: At<'_>, value: i64) -> DbResult<i32> {
    i32::try_from(value).map_err(|_| DbError::Other(format!("column {at} out of range").into()))
}

/// A stored enum's text back into the enum.
pub fn parse<T: FromStr<Err = UnknownVariant>>(text: String) -> DbResult<T> {
    Ok(text.parse()?)
}

fn parse_opt<T: FromStr<Err = UnknownVariant>>(text: Option<String>) -> DbResult<Option<T>> {
    text.map(parse).transpose()
}

/// An organization row (`organization_columns!`).
pub fn organization_from(row: &dyn Columns) -> DbResult<Organization> {
    let seconds = |column: &str| -> DbResult<chrono::Duration> {
        Ok(chrono::Duration::seconds(row.int(column)?))
    };
    Ok(Organization {
        id: row.text("id")?,
        name: row.text("name")?,
        widget_key: row.text("widget_key")?,
        settings: ChatSettings {
            default_chat_limit: row.int32("default_chat_limit")?,
            auto_transfer_after: seconds("auto_transfer_seconds")?,
            waiting_long_after: seconds("waiting_long_seconds")?,
            customer_idle_after: seconds("customer_idle_seconds")?,
            auto_close_after: seconds("auto_close_seconds")?,
            presence_grace: seconds("presence_grace_seconds")?,
            queue_limit: row.int32("queue_limit")?,
            acceptance_timeout: seconds("acceptance_timeout_seconds")?,
            queue_abandon_after: seconds("queue_abandon_seconds")?,
            new_chats_per_minute: row.int32("new_chats_per_minute")?,
            agents_see_group_chats: row.bool("agents_see_group_chats")?,
        },
        created_at: from_millis(row.int("created_at")?),
    })
}

/// An agent row without the groups, which come from a second query.
pub fn agent_from(row: &dyn Columns, group_ids: Vec<String>) -> DbResult<Agent> {
    Ok(Agent {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        role: parse(row.text("role")?)?,
        routing_status: parse(row.text("routing_status")?)?,
        chat_limit: row.opt_int32("chat_limit")?,
        group_ids,
        active: row.bool("active")?,
        last_login_at: row.opt_int("last_login_at")?.map(from_millis),
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A row of the routing candidates: id, chat_limit, last_assigned_at, load.
pub fn candidate_from(
    organization: &Organization,
    row: &dyn Columns,
) -> DbResult<RoutingCandidate> {
    Ok(RoutingCandidate {
        agent_id: row.text(0)?,
        load: row.int(3)?,
        chat_limit: i64::from(
            row.opt_int32(1)?
                .unwrap_or(organization.settings.default_chat_limit),
        ),
        last_assigned_at: row.opt_int(2)?.map(from_millis),
    })
}

/// A group row.
pub fn group_from(row: &dyn Columns) -> DbResult<Group> {
    Ok(Group {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        name: row.text("name")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// An offline message (`offline_message_columns!`).
pub fn offline_message_from(row: &dyn Columns) -> DbResult<OfflineMessage> {
    Ok(OfflineMessage {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        customer_id: row.opt_text("customer_id")?,
        group_id: row.opt_text("group_id")?,
        name: row.text("name")?,
        email: row.text("email")?,
        text: row.text("text")?,
        handled: row.bool("handled")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A chat row (`chat_columns!`).
pub fn chat_from(row: &dyn Columns) -> DbResult<Chat> {
    let time = |column: &str| -> DbResult<Option<DateTime<Utc>>> {
        Ok(row.opt_int(column)?.map(from_millis))
    };
    Ok(Chat {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        customer_id: row.text("customer_id")?,
        group_id: row.opt_text("group_id")?,
        channel: parse(row.text("channel")?)?,
        status: parse(row.text("status")?)?,
        assignee_id: row.opt_text("assignee_id")?,
        attention: parse(row.text("attention")?)?,
        created_at: from_millis(row.int("created_at")?),
        queued_at: time("queued_at")?,
        assigned_at: time("assigned_at")?,
        first_response_at: time("first_response_at")?,
        closed_at: time("closed_at")?,
        rating: parse_opt(row.opt_text("rating")?)?,
        rating_comment: row.opt_text("rating_comment")?,
        awaiting_reply_since: time("awaiting_reply_since")?,
        last_customer_activity_at: from_millis(row.int("last_customer_activity_at")?),
        last_activity_at: from_millis(row.int("last_activity_at")?),
        agent_typing_since: time("agent_typing_since")?,
        acceptance_deadline: time("acceptance_deadline")?,
        customer_seen_at: time("customer_seen_at")?,
        reply_clock: ReplyClock {
            first_assigned_at: time("first_assigned_at")?,
            response_count: row.int("response_count")?,
            response_total_ms: row.int("response_total_ms")?,
            reply_run_since: time("reply_run_since")?,
        },
    })
}

/// A customer row (`customer_columns!`).
pub fn customer_from(row: &dyn Columns) -> DbResult<Customer> {
    Ok(Customer {
        id: row.text("id")?,
        organization_id: row.text("organization_id")?,
        visitor_id: row.text("visitor_id")?,
        name: row.opt_text("name")?,
        email: row.opt_text("email")?,
        location: row.opt_text("location")?,
        ip_address: row.opt_text("ip_address")?,
        current_page_url: row.opt_text("current_page_url")?,
        current_page_title: row.opt_text("current_page_title")?,
        referrer: row.opt_text("referrer")?,
        user_agent: row.opt_text("user_agent")?,
        visits: row.int32("visits")?,
        created_at: from_millis(row.int("created_at")?),
        last_seen_at: from_millis(row.int("last_seen_at")?),
        external_id: row.opt_text("external_id")?,
    })
}

/// A transcript entry (`event_columns!`).
pub fn event_from(row: &dyn Columns) -> DbResult<ChatEvent> {
    Ok(ChatEvent {
        id: row.text("id")?,
        chat_id: row.text("chat_id")?,
        organization_id: row.text("organization_id")?,
        seq: row.int("seq")?,
        kind: parse(row.text("kind")?)?,
        author_kind: parse(row.text("author_kind")?)?,
        author_id: row.opt_text("author_id")?,
        author_name: row.opt_text("author_name")?,
        text: row.text("text")?,
        client_id: row.opt_text("client_id")?,
        visibility: parse(row.text("visibility")?)?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A push device (`device_columns!`).
pub fn device_from(row: &dyn Columns) -> DbResult<PushDevice> {
    Ok(PushDevice {
        id: row.text("id")?,
        agent_id: row.text("agent_id")?,
        organization_id: row.text("organization_id")?,
        platform: parse(row.text("platform")?)?,
        token: row.text("token")?,
        app_id: row.text("app_id")?,
        environment: parse(row.text("environment")?)?,
        locale: row.opt_text("locale")?,
        device_name: row.opt_text("device_name")?,
        disabled_reason: row.opt_text("disabled_reason")?,
        web_push: match (
            row.opt_text("web_push_p256dh")?,
            row.opt_text("web_push_auth")?,
        ) {
            (Some(p256dh), Some(auth)) => Some(WebPushKeys { p256dh, auth }),
            _ => None,
        },
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

/// A push job (`job_columns!`).
pub fn job_from(row: &dyn Columns) -> DbResult<PushJob> {
    Ok(PushJob {
        id: row.text("id")?,
        device_id: row.text("device_id")?,
        agent_id: row.text("agent_id")?,
        organization_id: row.text("organization_id")?,
        kind: parse(row.text("kind")?)?,
        chat_id: row.opt_text("chat_id")?,
        message: serde_json::from_str(&row.text("message")?).map_err(json_error)?,
        status: parse(row.text("status")?)?,
        attempts: row.int32("attempts")?,
        next_attempt_at: from_millis(row.int("next_attempt_at")?),
        last_error: row.opt_text("last_error")?,
        created_at: from_millis(row.int("created_at")?),
    })
}

/// A JSON column that failed to encode or decode.
pub fn json_error(err: serde_json::Error) -> DbError {
    DbError::Other(Box::new(err))
}

/// A feed entry's data as stored.
pub fn feed_data_json(data: &FeedData) -> DbResult<String> {
    serde_json::to_string(data).map_err(json_error)
}

/// A feed entry's stored data.
pub fn feed_data(json: &str) -> DbResult<FeedData> {
    serde_json::from_str(json).map_err(json_error)
}

/// A push message as stored.
pub fn push_message_json(message: &PushMessage) -> DbResult<String> {
    serde_json::to_string(message).map_err(json_error)
}
