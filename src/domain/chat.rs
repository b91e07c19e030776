//! Chats, their transcript and the per-agent event feed: the types, and the rules that need no
//! I/O (who may see a chat, the attention state, the queue's estimated wait).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Agent, Role};

pub use switchboard_protocol::MAX_MESSAGE_CHARS;
/// Longest client id: apps send a UUID or similar.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Longest draft forwarded as a sneak peek; the rest is cut.
pub const MAX_DRAFT_CHARS: usize = 1000;

string_enum!(
    /// Where a chat is in its life.
    ChatStatus {
        /// Waiting for an agent with room.
        Queued = "QUEUED",
        /// An agent has it.
        Active = "ACTIVE",
        /// Over.
        Closed = "CLOSED",
    }
);

string_enum!(
    /// Where a chat came from.
    Channel {
        Widget = "WIDGET",
        Messenger = "MESSENGER",
        Api = "API",
    }
);

string_enum!(
    /// The colour of the chat's circle in the agent's list.
    Attention {
        Normal = "NORMAL",
        /// Red: the customer's last message has waited too long for an answer.
        WaitingLong = "WAITING_LONG",
        /// Grey: the customer has not done anything for a while.
        CustomerIdle = "CUSTOMER_IDLE",
    }
);

string_enum!(
    /// Who wrote a transcript entry.
    AuthorKind {
        Agent = "AGENT",
        Customer = "CUSTOMER",
        System = "SYSTEM",
    }
);

string_enum!(
    /// Who may see a transcript entry.
    Visibility {
        /// The customer and the agents.
        Public = "PUBLIC",
        /// Agents only, such as a transfer note.
        Agents = "AGENTS",
    }
);

string_enum!(
    /// What a transcript entry is. Messages are written by people; the rest are system events
    /// with a sentence a person reads.
    ChatEventKind {
        Message = "MESSAGE",
        ChatQueued = "CHAT_QUEUED",
        AgentAssigned = "AGENT_ASSIGNED",
        ChatTransferred = "CHAT_TRANSFERRED",
        TransferNote = "TRANSFER_NOTE",
        SupervisorJoined = "SUPERVISOR_JOINED",
        ChatClosed = "CHAT_CLOSED",
        ChatRated = "CHAT_RATED",
        /// A tag was added to or removed from the chat; agents only.
        TagsChanged = "TAGS_CHANGED",
    }
);

string_enum!(
    /// A customer's verdict on a chat.
    Rating {
        Good = "GOOD",
        Bad = "BAD",
    }
);

string_enum!(
    /// What an agent-feed entry says.
    FeedKind {
        ChatAssigned = "CHAT_ASSIGNED",
        ChatTransferred = "CHAT_TRANSFERRED",
        MessageAdded = "MESSAGE_ADDED",
        ChatClosed = "CHAT_CLOSED",
        AttentionChanged = "ATTENTION_CHANGED",
        RoutingStatusChanged = "ROUTING_STATUS_CHANGED",
        /// A customer left an offline message the agent may read.
        OfflineMessageReceived = "OFFLINE_MESSAGE_RECEIVED",
        /// The server disabled a webhook endpoint that kept failing (admins and owners).
        WebhookEndpointDisabled = "WEBHOOK_ENDPOINT_DISABLED",
    }
);

/// A website visitor or Messenger user who chats with the organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    pub organization_id: String,
    /// The widget's own id for the browser, stable across visits.
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Free text such as "Berlin, Germany", when the widget knows it.
    pub location: Option<String>,
    pub ip_address: Option<String>,
    pub current_page_url: Option<String>,
    pub current_page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub visits: i32,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The shop's own id for the customer, proved by a signed identity.
    pub external_id: Option<String>,
}

/// A page a customer viewed.
#[derive(Debug, Clone, PartialEq)]
pub struct PageView {
    pub url: String,
    pub title: Option<String>,
    pub viewed_at: DateTime<Utc>,
}

/// A conversation between a customer and the organization's agents.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    pub id: String,
    pub organization_id: String,
    pub customer_id: String,
    pub group_id: Option<String>,
    pub channel: Channel,
    pub status: ChatStatus,
    pub assignee_id: Option<String>,
    pub attention: Attention,
    pub created_at: DateTime<Utc>,
    /// When it last entered the queue; the queue is served oldest first.
    pub queued_at: Option<DateTime<Utc>>,
    pub assigned_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub rating: Option<Rating>,
    pub rating_comment: Option<String>,
    /// Since when a customer message waits for an agent's answer; `None` when answered.
    pub awaiting_reply_since: Option<DateTime<Utc>>,
    pub last_customer_activity_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    /// Since when the assignee is typing; stops the auto-transfer clock.
    pub agent_typing_since: Option<DateTime<Utc>>,
    /// For a chat assigned through a push: unacknowledged by then, it moves on.
    pub acceptance_deadline: Option<DateTime<Utc>>,
    /// While queued: when the customer was last known connected (their chatEvents
    /// subscription renews it). Written by the subscription alone, never by a chat update.
    pub customer_seen_at: Option<DateTime<Utc>>,
    /// Reports' bookkeeping (migration 0019), kept by [`Chat::record_reply_clock`] and
    /// [`Chat::assign`] and stored by the same update as the rest of the chat.
    pub reply_clock: ReplyClock,
}

/// What the reports need of a chat's history without reading its transcript.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyClock {
    /// When the chat first got an assignee (`assigned_at` is the latest assignment).
    pub first_assigned_at: Option<DateTime<Utc>>,
    /// Customer message runs an agent's public reply answered.
    pub response_count: i64,
    /// Their summed waits, each from the run's first customer message to the reply (ms).
    pub response_total_ms: i64,
    /// The first customer message of the run waiting for a reply, once the chat had one;
    /// before its first reply a chat's run starts at `created_at`. `None`: nothing waits.
    pub reply_run_since: Option<DateTime<Utc>>,
}

/// A transcript entry. Its `seq` orders the chat's entries and is the customer's cursor.
/// Serializable: the event bus carries it between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatEvent {
    pub id: String,
    pub chat_id: String,
    pub organization_id: String,
    pub seq: i64,
    pub kind: ChatEventKind,
    pub author_kind: AuthorKind,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub text: String,
    pub client_id: Option<String>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

/// An entry of one agent's feed: what their apps are told, replayable from any cursor.
/// Serializable: the event bus carries it between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub agent_id: String,
    /// Per-agent sequence: 1, 2, 3 … with no gaps, so a client that saw n has missed n+1.
    pub seq: i64,
    pub kind: FeedKind,
    pub chat_id: Option<String>,
    /// The transcript entry, for MESSAGE_ADDED.
    pub event: Option<ChatEvent>,
    pub data: FeedData,
    pub created_at: DateTime<Utc>,
}

/// The details of a feed entry, by kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_group_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<Attention>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_status: Option<super::RoutingStatus>,
    /// The message itself is read when the entry is shown, so a replay shows whether it has
    /// been handled since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_message_id: Option<String>,
}

/// A note a customer left while nobody was available.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineMessage {
    pub id: String,
    pub organization_id: String,
    pub customer_id: Option<String>,
    pub group_id: Option<String>,
    pub name: String,
    pub email: String,
    pub text: String,
    pub handled: bool,
    pub created_at: DateTime<Utc>,
}

/// An organization's tunables for chats, each with the default the product ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatSettings {
    pub default_chat_limit: i32,
    /// An unanswered chat moves to another agent after this long.
    pub auto_transfer_after: Duration,
    /// An unanswered customer message turns the chat red after this long.
    pub waiting_long_after: Duration,
    /// A silent customer turns the chat grey after this long; grey chats do not count toward
    /// the agent's limit.
    pub customer_idle_after: Duration,
    /// A chat nobody touched for this long is closed.
    pub auto_close_after: Duration,
    /// An agent without a live connection stays routable this long.
    pub presence_grace: Duration,
    /// At most this many chats wait in the queue; beyond it customers leave a message.
    pub queue_limit: i32,
    /// A chat assigned through a push must be acknowledged (a live connection or a reply)
    /// this soon, or it moves on and the agent stops accepting chats.
    pub acceptance_timeout: Duration,
    /// A queued chat whose customer has had no live connection and done nothing for this
    /// long leaves the queue: nobody is there to answer.
    pub queue_abandon_after: Duration,
    /// At most this many chats start per minute; a flood beyond it is refused, so it cannot
    /// fill the queue.
    pub new_chats_per_minute: i32,
    /// Plain agents may read (not answer) the chats of their groups, as supervisors do.
    pub agents_see_group_chats: bool,
}

impl Default for ChatSettings {
    fn default() -> Self {
        ChatSettings {
            default_chat_limit: super::DEFAULT_CHAT_LIMIT,
            auto_transfer_after: Duration::minutes(3),
            waiting_long_after: Duration::seconds(40),
            customer_idle_after: Duration::minutes(10),
            auto_close_after: Duration::minutes(30),
            presence_grace: Duration::seconds(60),
            queue_limit: 100,
            acceptance_timeout: Duration::seconds(60),
            queue_abandon_after: Duration::minutes(3),
            new_chats_per_minute: 60,
            agents_see_group_chats: false,
        }
    }
}

/// The attention a chat deserves at `now`: red when a customer waits for an answer past the
/// threshold, grey when the customer has been silent past theirs, otherwise normal.
pub fn attention_at(chat: &Chat, settings: &ChatSettings, now: DateTime<Utc>) -> Attention {
    if chat.status != ChatStatus::Active {
        return Attention::Normal;
    }
    match chat.awaiting_reply_since {
        Some(since) if now - since >= settings.waiting_long_after => Attention::WaitingLong,
        Some(_) => Attention::Normal,
        None if now - chat.last_customer_activity_at >= settings.customer_idle_after => {
            Attention::CustomerIdle
        }
        None => Attention::Normal,
    }
}

/// Whether the assignee should lose the chat to another agent for not answering.
pub fn auto_transfer_due(chat: &Chat, settings: &ChatSettings, now: DateTime<Utc>) -> bool {
    /// Typing that never said "stopped" counts for this long.
    const TYPING_COUNTS_FOR_SECONDS: i64 = 60;
    let typing = chat
        .agent_typing_since
        .is_some_and(|since| now - since < Duration::seconds(TYPING_COUNTS_FOR_SECONDS));
    chat.status == ChatStatus::Active
        && !typing
        && chat
            .awaiting_reply_since
            .is_some_and(|since| now - since >= settings.auto_transfer_after)
}

/// Whether an assignment made through a push went unacknowledged for too long.
pub fn acceptance_missed(chat: &Chat, now: DateTime<Utc>) -> bool {
    chat.status == ChatStatus::Active && chat.acceptance_deadline.is_some_and(|d| now >= d)
}

/// Whether a queued chat's customer has gone: no live subscription and no activity for the
/// organization's threshold since the chat (re)joined the queue.
pub fn queue_abandoned(chat: &Chat, settings: &ChatSettings, now: DateTime<Utc>) -> bool {
    let last_sign = [chat.customer_seen_at, chat.queued_at]
        .into_iter()
        .flatten()
        .fold(chat.last_customer_activity_at, DateTime::max);
    chat.status == ChatStatus::Queued && now - last_sign >= settings.queue_abandon_after
}

/// Whether a chat has been left alone long enough to close.
pub fn auto_close_due(chat: &Chat, settings: &ChatSettings, now: DateTime<Utc>) -> bool {
    chat.status == ChatStatus::Active && now - chat.last_activity_at >= settings.auto_close_after
}

/// A rough wait for the customer at `position` (1 = next): chats ahead of them, spread over
/// the chat slots of agents accepting chats, each taking the usual handling time.
pub fn estimate_wait_seconds(
    position: i64,
    accepting_slots: i64,
    average_handle_seconds: i64,
) -> i64 {
    if position <= 0 {
        return 0;
    }
    let slots = accepting_slots.max(1);
    // Rounds up: the first in line waits for one chat to end somewhere.
    (position * average_handle_seconds + slots - 1) / slots
}

/// Whether `viewer` (with `viewer_group_ids`) may see a chat: assigned or previously assigned
/// chats, queued chats of their groups, joined chats, and for supervisors and admins the
/// chats of their groups (admins and owners: every chat of the organization).
pub fn can_view_chat(viewer: &Agent, chat: &Chat, participated: bool) -> bool {
    if viewer.organization_id != chat.organization_id {
        return false;
    }
    if chat.assignee_id.as_deref() == Some(viewer.id.as_str()) || participated {
        return true;
    }
    if viewer.role.is_admin() {
        return true;
    }
    let in_group = in_chat_group(viewer, chat.group_id.as_deref());
    match chat.status {
        ChatStatus::Queued => in_group,
        _ => viewer.role >= Role::Supervisor && in_group,
    }
}

/// Whether `viewer` may read a chat they cannot act in: an active or closed chat of their
/// groups, when the organization lets plain agents see their teammates' chats. Read only:
/// acting in a chat still takes [`can_view_chat`] and the action's own rule.
pub fn can_read_teammates_chat(viewer: &Agent, chat: &Chat, settings: &ChatSettings) -> bool {
    settings.agents_see_group_chats
        && viewer.organization_id == chat.organization_id
        && in_chat_group(viewer, chat.group_id.as_deref())
}

/// Whether an agent belongs to the group a chat targets. A chat without a group is for
/// everybody; so is an agent without groups.
pub fn in_chat_group(agent: &Agent, group_id: Option<&str>) -> bool {
    match group_id {
        None => true,
        Some(group) => agent.group_ids.is_empty() || agent.group_ids.iter().any(|g| g == group),
    }
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((index, _)) => &text[..index],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RoutingStatus;

    fn chat(now: DateTime<Utc>) -> Chat {
        Chat {
            id: "c".into(),
            organization_id: "o".into(),
            customer_id: "cu".into(),
            group_id: None,
            channel: Channel::Widget,
            status: ChatStatus::Active,
            assignee_id: Some("a".into()),
            attention: Attention::Normal,
            created_at: now,
            queued_at: None,
            assigned_at: Some(now),
            first_response_at: None,
            closed_at: None,
            rating: None,
            rating_comment: None,
            awaiting_reply_since: Some(now),
            last_customer_activity_at: now,
            last_activity_at: now,
            agent_typing_since: None,
            acceptance_deadline: None,
            customer_seen_at: None,
            reply_clock: ReplyClock::default(),
        }
    }

    fn agent(role: Role, groups: &[&str]) -> Agent {
        Agent {
            id: "viewer".into(),
            organization_id: "o".into(),
            email: "v@example.com".into(),
            name: "V".into(),
            role,
            routing_status: RoutingStatus::AcceptingChats,
            chat_limit: None,
            group_ids: groups.iter().map(|g| g.to_string()).collect(),
            active: true,
            last_login_at: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn teammates_read_their_groups_chats_only_when_the_organization_allows() {
        let now = Utc::now();
        let mut chat = chat(now);
        chat.group_id = Some("sales".into());
        let teammate = agent(Role::Agent, &["sales"]);
        let stranger = agent(Role::Agent, &["support"]);
        let mut settings = ChatSettings::default();
        assert!(!can_view_chat(&teammate, &chat, false));
        assert!(!can_read_teammates_chat(&teammate, &chat, &settings));
        settings.agents_see_group_chats = true;
        assert!(can_read_teammates_chat(&teammate, &chat, &settings));
        assert!(!can_read_teammates_chat(&stranger, &chat, &settings));
        chat.status = ChatStatus::Closed;
        assert!(can_read_teammates_chat(&teammate, &chat, &settings));
        chat.organization_id = "other".into();
        assert!(!can_read_teammates_chat(&teammate, &chat, &settings));
    }

    #[test]
    fn an_unanswered_customer_turns_the_chat_red() {
        let now = Utc::now();
        let settings = ChatSettings::default();
        let chat = chat(now);
        assert_eq!(
            attention_at(&chat, &settings, now + Duration::seconds(39)),
            Attention::Normal
        );
        assert_eq!(
            attention_at(&chat, &settings, now + Duration::seconds(40)),
            Attention::WaitingLong
        );
    }

    #[test]
    fn a_silent_customer_turns_the_chat_grey() {
        let now = Utc::now();
        let settings = ChatSettings::default();
        let mut chat = chat(now);
        chat.awaiting_reply_since = None;
        assert_eq!(
            attention_at(&chat, &settings, now + Duration::minutes(9)),
            Attention::Normal
        );
        assert_eq!(
            attention_at(&chat, &settings, now + Duration::minutes(10)),
            Attention::CustomerIdle
        );
        chat.status = ChatStatus::Closed;
        assert_eq!(
            attention_at(&chat, &settings, now + Duration::minutes(10)),
            Attention::Normal
        );
    }

    #[test]
    fn a_queued_chat_is_abandoned_only_without_any_sign_of_its_customer() {
        let now = Utc::now();
        let settings = ChatSettings::default();
        let mut chat = chat(now);
        chat.status = ChatStatus::Queued;
        chat.queued_at = Some(now);
        let later = now + Duration::minutes(3);
        assert!(!queue_abandoned(
            &chat,
            &settings,
            later - Duration::seconds(1)
        ));
        assert!(queue_abandoned(&chat, &settings, later));
        chat.customer_seen_at = Some(now + Duration::minutes(2));
        assert!(!queue_abandoned(&chat, &settings, later), "still connected");
        chat.customer_seen_at = None;
        chat.queued_at = Some(now + Duration::minutes(1));
        assert!(
            !queue_abandoned(&chat, &settings, later),
            "queued again lately"
        );
        chat.status = ChatStatus::Active;
        assert!(!queue_abandoned(
            &chat,
            &settings,
            later + Duration::hours(1)
        ));
    }

    #[test]
    fn typing_holds_off_the_auto_transfer() {
        let now = Utc::now();
        let settings = ChatSettings::default();
        let mut chat = chat(now);
        let later = now + Duration::minutes(3);
        assert!(auto_transfer_due(&chat, &settings, later));
        chat.agent_typing_since = Some(later - Duration::seconds(5));
        assert!(!auto_transfer_due(&chat, &settings, later));
        chat.agent_typing_since = Some(later - Duration::seconds(61));
        assert!(
            auto_transfer_due(&chat, &settings, later),
            "stale typing no longer counts"
        );
        chat.awaiting_reply_since = None;
        chat.agent_typing_since = None;
        assert!(
            !auto_transfer_due(&chat, &settings, later),
            "answered chats stay"
        );
    }

    #[test]
    fn idle_chats_close_after_the_timeout() {
        let now = Utc::now();
        let settings = ChatSettings::default();
        let chat = chat(now);
        assert!(!auto_close_due(
            &chat,
            &settings,
            now + Duration::minutes(29)
        ));
        assert!(auto_close_due(
            &chat,
            &settings,
            now + Duration::minutes(30)
        ));
    }

    #[test]
    fn waits_spread_over_the_accepting_slots() {
        assert_eq!(estimate_wait_seconds(1, 30, 300), 10);
        assert_eq!(estimate_wait_seconds(30, 30, 300), 300);
        assert_eq!(
            estimate_wait_seconds(5, 0, 300),
            1500,
            "no slots: as if one"
        );
        assert_eq!(estimate_wait_seconds(0, 3, 300), 0);
    }

    #[test]
    fn who_sees_a_chat() {
        let now = Utc::now();
        let mut grouped = chat(now);
        grouped.group_id = Some("sales".into());
        grouped.assignee_id = Some("someone".into());
        assert!(
            !can_view_chat(&agent(Role::Agent, &["sales"]), &grouped, false),
            "a teammate's chat"
        );
        assert!(
            can_view_chat(&agent(Role::Agent, &["sales"]), &grouped, true),
            "a chat they had"
        );
        assert!(can_view_chat(
            &agent(Role::Supervisor, &["sales"]),
            &grouped,
            false
        ));
        assert!(!can_view_chat(
            &agent(Role::Supervisor, &["support"]),
            &grouped,
            false
        ));
        assert!(can_view_chat(
            &agent(Role::Admin, &["support"]),
            &grouped,
            false
        ));
        grouped.status = ChatStatus::Queued;
        grouped.assignee_id = None;
        assert!(
            can_view_chat(&agent(Role::Agent, &["sales"]), &grouped, false),
            "their queue"
        );
        assert!(!can_view_chat(
            &agent(Role::Agent, &["support"]),
            &grouped,
            false
        ));
        let mut foreign = grouped.clone();
        foreign.organization_id = "other".into();
        assert!(!can_view_chat(&agent(Role::Owner, &[]), &foreign, true));
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("hi", 5), "hi");
        assert_eq!(truncate_chars("😀😀😀", 1), "😀");
    }
}
