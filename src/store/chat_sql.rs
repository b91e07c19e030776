//! The SQL text of a chat transaction ([`super::ChatTx`]), shared by the sqlx transaction
//! that both backends compile (`sql.rs`) and by SQLite's direct writer (`sqlite/writer.rs`).
//! Parameters are written `$1`: Postgres, sqlx's SQLite driver and SQLite itself all read
//! them by number.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{DbError, DbResult, from_millis};
use crate::domain::{
    Agent, Chat, ChatEvent, ChatSettings, Customer, FeedData, Organization, PushDevice, PushJob,
    PushMessage, RoutingCandidate, UnknownVariant,
};

macro_rules! organization_columns {
    () => {
        "id, name, widget_key, default_chat_limit, auto_transfer_seconds, \
         waiting_long_seconds, customer_idle_seconds, auto_close_seconds, \
         presence_grace_seconds, queue_limit, acceptance_timeout_seconds, created_at, \
         queue_abandon_seconds, new_chats_per_minute"
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
         c.acceptance_deadline, c.customer_seen_at"
    };
}

macro_rules! customer_columns {
    () => {
        "id, organization_id, visitor_id, name, email, location, ip_address, current_page_url, \
         current_page_title, referrer, user_agent, visits, created_at, last_seen_at"
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
         device_name, disabled_reason, created_at, updated_at"
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

pub const ORGANIZATION_COLUMNS: &str = organization_columns!();
pub const AGENT_COLUMNS: &str = agent_columns!();
pub const CHAT_COLUMNS: &str = chat_columns!();
pub const CUSTOMER_COLUMNS: &str = customer_columns!();
pub const EVENT_COLUMNS: &str = event_columns!();
pub const DEVICE_COLUMNS: &str = device_columns!();
pub const JOB_COLUMNS: &str = job_columns!();
pub const LOAD_SQL: &str = load_sql!();
pub const CLAIM_PUSH_JOBS_HEAD: &str = claim_push_jobs_head!();
pub const CLAIM_PUSH_JOBS_TAIL: &str = claim_push_jobs_tail!();
/// The claim as one statement where no locking clause goes between the halves (SQLite).
pub const CLAIM_PUSH_JOBS: &str = concat!(claim_push_jobs_head!(), claim_push_jobs_tail!());

pub const DEVICE: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM push_devices WHERE id = $1"
);
pub const REACHABLE_SQL: &str = reachable_sql!();

/// Postgres appends `FOR UPDATE`: every change of an organization's chats starts here.
pub const ORGANIZATION: &str = concat!(
    "SELECT ",
    organization_columns!(),
    " FROM organizations WHERE id = $1"
);

pub const AGENT: &str = concat!(
    "SELECT ",
    agent_columns!(),
    " FROM agents a WHERE a.id = $1 AND a.organization_id = $2"
);

/// The organization of an agent whose session `$1` is open and who is active.
pub const SESSION_ORGANIZATION: &str = "SELECT a.organization_id FROM sessions s \
     JOIN agents a ON a.id = s.agent_id \
     WHERE s.id = $1 AND s.agent_id = $2 AND s.revoked_at IS NULL AND a.active";

pub const CUSTOMER: &str = concat!(
    "SELECT ",
    customer_columns!(),
    " FROM customers WHERE id = $1 AND organization_id = $2"
);

pub const AGENT_GROUPS: &str =
    "SELECT group_id FROM group_members WHERE agent_id = $1 ORDER BY group_id";

pub const AGENT_LIVE: &str = "SELECT live_until FROM agents WHERE id = $1";

pub const CHAT: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats c WHERE c.id = $1 AND c.organization_id = $2"
);

/// The rest of the row is written by [`UPDATE_CHAT`] right after.
pub const INSERT_CHAT: &str = "INSERT INTO chats (id, organization_id, customer_id, group_id, \
     channel, status, created_at, last_customer_activity_at, last_activity_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub const UPDATE_CHAT: &str = "UPDATE chats SET group_id = $1, status = $2, assignee_id = $3, \
     attention = $4, queued_at = $5, assigned_at = $6, first_response_at = $7, closed_at = $8, \
     rating = $9, rating_comment = $10, awaiting_reply_since = $11, \
     last_customer_activity_at = $12, last_activity_at = $13, agent_typing_since = $14, \
     acceptance_deadline = $15 WHERE id = $16";

/// id, chat_limit, last_assigned_at, load of the agents who may take a chat of group `$3`.
pub const ROUTING_CANDIDATES: &str = concat!(
    "SELECT a.id, a.chat_limit, a.last_assigned_at, (",
    load_sql!(),
    ") AS load FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND a.routing_status = 'ACCEPTING_CHATS' AND (",
    reachable_sql!(),
    ") AND ",
    in_group!("3")
);

pub const PREVIOUS_AGENT_OF_CUSTOMER: &str = "SELECT assignee_id FROM chats \
     WHERE customer_id = $1 AND assignee_id IS NOT NULL ORDER BY created_at DESC LIMIT 1";

/// The customer's chat that is not closed yet, if any.
pub const OPEN_CHAT_OF_CUSTOMER: &str = "SELECT id FROM chats WHERE customer_id = $1 \
     AND status <> 'CLOSED' ORDER BY created_at DESC LIMIT 1";

pub const PARTICIPANTS: &str = "SELECT agent_id, role FROM chat_participants WHERE chat_id = $1";

pub const ADD_PARTICIPANT: &str = "INSERT INTO chat_participants (chat_id, agent_id, role, \
     joined_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";

pub const SUPERVISORS: &str = concat!(
    "SELECT a.id FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND a.role = 'SUPERVISOR' AND ",
    in_group!("2")
);

/// Taking the next number locks the chat row: entries commit in number order.
pub const NEXT_EVENT_SEQ: &str = "UPDATE chats SET last_event_seq = last_event_seq + 1 \
     WHERE id = $1 RETURNING last_event_seq";

pub const INSERT_EVENT: &str = "INSERT INTO chat_events (id, chat_id, organization_id, seq, \
     kind, author_kind, author_id, author_name, text, client_id, visibility, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

pub const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM chat_events e WHERE e.chat_id = $1 AND e.author_id = $2 AND e.client_id = $3"
);

/// Taking the next number locks the agent row: entries commit in number order.
pub const NEXT_FEED_SEQ: &str =
    "UPDATE agents SET feed_seq = feed_seq + 1 WHERE id = $1 RETURNING feed_seq";

pub const INSERT_FEED: &str = "INSERT INTO agent_feed (agent_id, seq, kind, chat_id, event_id, \
     data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub const SET_ROUTING_STATUS: &str = "UPDATE agents SET routing_status = $1 WHERE id = $2";

pub const MARK_ASSIGNED: &str = "UPDATE agents SET last_assigned_at = $1 WHERE id = $2";

pub const QUEUED_CHATS: &str = concat!(
    "SELECT ",
    chat_columns!(),
    " FROM chats c WHERE c.organization_id = $1 AND c.status = 'QUEUED' \
     ORDER BY c.queued_at, c.id"
);

pub const PUSH_TARGETS: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM push_devices WHERE agent_id = $1 AND disabled_reason IS NULL \
     AND NOT EXISTS (SELECT 1 FROM push_preferences p WHERE p.agent_id = $1 AND p.kind = $2 \
     AND NOT p.enabled) ORDER BY created_at"
);

pub const INSERT_PUSH_JOB: &str = "INSERT INTO push_jobs (id, device_id, agent_id, \
     organization_id, kind, chat_id, message, status, attempts, next_attempt_at, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub const PENDING_PUSH_JOBS: &str = "SELECT id FROM push_jobs WHERE agent_id = $1 AND kind = $2 \
     AND status = 'PENDING' AND COALESCE(chat_id, '') = $3";

pub const UPDATE_PUSH_JOB_MESSAGE: &str = "UPDATE push_jobs SET message = $1 WHERE id = $2";

/// Agents to tell by push that customers wait: accepting chats, no live connection, a
/// device, in the group, and not told since `$4`.
pub const QUEUE_PUSH_RECIPIENTS: &str = concat!(
    "SELECT a.id FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND a.routing_status = 'ACCEPTING_CHATS' AND COALESCE(a.live_until, 0) <= $2 \
     AND EXISTS (SELECT 1 FROM push_devices d \
                 WHERE d.agent_id = a.id AND d.disabled_reason IS NULL) AND ",
    in_group!("3"),
    " AND NOT EXISTS (SELECT 1 FROM push_jobs j WHERE j.agent_id = a.id \
     AND j.kind = 'QUEUED_CUSTOMERS' AND j.created_at >= $4)"
);

/// How many chats organization `$1` started after `$2`, and the oldest one's start.
pub const CHATS_STARTED_SINCE: &str =
    "SELECT COUNT(*), MIN(created_at) FROM chats WHERE organization_id = $1 AND created_at > $2";

/// 1 when agent `$1` is reachable at `$2`, else 0.
pub const AGENT_REACHABLE: &str = concat!(
    "SELECT COUNT(*) FROM agents a WHERE a.id = $1 AND (",
    reachable_sql!(),
    ")"
);

/// Queued chats of the organization, but for chat `$2` ('' for none).
pub const QUEUED_COUNT: &str = "SELECT COUNT(*) FROM chats WHERE organization_id = $1 \
     AND status = 'QUEUED' AND id <> $2";

pub const LATEST_CUSTOMER_MESSAGE: &str = "SELECT text FROM chat_events WHERE chat_id = $1 \
     AND author_kind = 'CUSTOMER' ORDER BY seq DESC LIMIT 1";

pub const CUSTOMER_NAME: &str = "SELECT name FROM customers WHERE id = $1";

pub const INSERT_OFFLINE_MESSAGE: &str = "INSERT INTO offline_messages (id, organization_id, \
     customer_id, group_id, name, email, text, handled, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The badge: the agent's active chats awaiting a reply.
pub const UNREAD_CHATS: &str = "SELECT COUNT(*) FROM chats WHERE assignee_id = $1 \
     AND status = 'ACTIVE' AND awaiting_reply_since IS NOT NULL";

/// When the next pending push is due.
pub const NEXT_PUSH_DUE: &str =
    "SELECT MIN(next_attempt_at) FROM push_jobs WHERE status = 'PENDING'";

/// A push job's fate: sent, dead, or pending again at `$2`.
pub const FINISH_PUSH_JOB: &str = "UPDATE push_jobs SET status = $1, next_attempt_at = $2, \
     last_error = $3, locked_until = NULL, sent_at = CASE WHEN $1 = 'SENT' THEN $4 ELSE sent_at END \
     WHERE id = $5";

/// Admins and owners see every offline message; others those of their groups.
pub const OFFLINE_MESSAGE_RECIPIENTS: &str = concat!(
    "SELECT a.id FROM agents a WHERE a.organization_id = $1 AND a.active \
     AND (a.role IN ('ADMIN', 'OWNER') OR ",
    in_group!("2"),
    ")"
);

// ---- rows ----------------------------------------------------------------------------------
// Rows are read as tuples where sqlx can (its `FromRow` derive would pull in its macro crate,
// which builds both database drivers a second time), else by column name through `Columns`.

/// A result row read by column name, from either driver.
pub trait Columns {
    fn text(&self, column: &str) -> DbResult<String>;
    fn opt_text(&self, column: &str) -> DbResult<Option<String>>;
    fn int(&self, column: &str) -> DbResult<i64>;
    fn int32(&self, column: &str) -> DbResult<i32>;
    fn opt_int(&self, column: &str) -> DbResult<Option<i64>>;
}

pub fn parse<T: FromStr<Err = UnknownVariant>>(text: String) -> DbResult<T> {
    Ok(text.parse()?)
}

fn parse_opt<T: FromStr<Err = UnknownVariant>>(text: Option<String>) -> DbResult<Option<T>> {
    text.map(parse).transpose()
}

/// The columns of ORGANIZATION_COLUMNS, in order: ids and names, the settings, creation,
/// the settings added later.
pub type OrganizationRow = (
    String,
    String,
    String,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i32,
    i64,
    i32,
    i32,
);

pub fn organization_from_row(row: OrganizationRow) -> Organization {
    let (
        id,
        name,
        widget_key,
        limit,
        transfer,
        waiting,
        idle,
        close,
        grace,
        queue,
        accept,
        at,
        abandon,
        new_chats,
    ) = row;
    let seconds = |s: i32| chrono::Duration::seconds(i64::from(s));
    Organization {
        id,
        name,
        widget_key,
        settings: ChatSettings {
            default_chat_limit: limit,
            auto_transfer_after: seconds(transfer),
            waiting_long_after: seconds(waiting),
            customer_idle_after: seconds(idle),
            auto_close_after: seconds(close),
            presence_grace: seconds(grace),
            queue_limit: queue,
            acceptance_timeout: seconds(accept),
            queue_abandon_after: seconds(abandon),
            new_chats_per_minute: new_chats,
        },
        created_at: from_millis(at),
    }
}

/// The columns of AGENT_COLUMNS, in order.
pub type AgentRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<i32>,
    bool,
    Option<i64>,
    i64,
);

pub fn agent_from_row(row: AgentRow, group_ids: Vec<String>) -> DbResult<Agent> {
    let (
        id,
        organization_id,
        email,
        name,
        role,
        routing_status,
        chat_limit,
        active,
        last_login_at,
        created_at,
    ) = row;
    Ok(Agent {
        id,
        organization_id,
        email,
        name,
        role: role.parse()?,
        routing_status: routing_status.parse()?,
        chat_limit,
        group_ids,
        active,
        last_login_at: last_login_at.map(from_millis),
        created_at: from_millis(created_at),
    })
}

/// The columns of ROUTING_CANDIDATES, in order.
pub type CandidateRow = (String, Option<i32>, Option<i64>, i64);

pub fn candidate_from_row(
    organization: &Organization,
    (agent_id, limit, last_assigned_at, load): CandidateRow,
) -> RoutingCandidate {
    RoutingCandidate {
        agent_id,
        load,
        chat_limit: i64::from(limit.unwrap_or(organization.settings.default_chat_limit)),
        last_assigned_at: last_assigned_at.map(from_millis),
    }
}

pub fn chat_from(row: &impl Columns) -> DbResult<Chat> {
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
    })
}

pub fn customer_from(row: &impl Columns) -> DbResult<Customer> {
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
    })
}

pub fn event_from(row: &impl Columns) -> DbResult<ChatEvent> {
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

pub fn device_from(row: &impl Columns) -> DbResult<PushDevice> {
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
        created_at: from_millis(row.int("created_at")?),
        updated_at: from_millis(row.int("updated_at")?),
    })
}

pub fn job_from(row: &impl Columns) -> DbResult<PushJob> {
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
    DbError::Other(sqlx::Error::Decode(Box::new(err)))
}

pub fn feed_data_json(data: &FeedData) -> DbResult<String> {
    serde_json::to_string(data).map_err(json_error)
}

pub fn push_message_json(message: &PushMessage) -> DbResult<String> {
    serde_json::to_string(message).map_err(json_error)
}
