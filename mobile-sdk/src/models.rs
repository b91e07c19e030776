//! What apps see: records and enums shaped for Swift and Kotlin, converted from the operations
//! generated from the schema (see `ops.rs`).

use std::time::{Duration, SystemTime};

use crate::ops;

/// What an agent may do in their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
    Owner,
}

/// Whether an agent gets new chats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum RoutingStatus {
    /// Gets new chats while below their chat limit.
    AcceptingChats,
    /// Gets no new chats; current chats continue.
    NotAcceptingChats,
    /// Signed off.
    Offline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChatStatus {
    /// Waiting for an agent with room.
    Queued,
    /// An agent has it.
    Active,
    Closed,
}

/// Where a chat came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Channel {
    Widget,
    Messenger,
    Api,
    /// A channel this SDK version does not know yet.
    Unknown,
}

/// The colour of a chat's circle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Attention {
    Normal,
    /// Red: the customer's last message has waited too long for an answer.
    WaitingLong,
    /// Grey: the customer has been silent for a while.
    CustomerIdle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AuthorKind {
    Agent,
    Customer,
    System,
}

/// A message someone wrote, or a system event with a sentence to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum MessageKind {
    Message,
    ChatQueued,
    AgentAssigned,
    ChatTransferred,
    /// The note a transferring agent left for the next one; agents only.
    TransferNote,
    SupervisorJoined,
    ChatClosed,
    ChatRated,
    /// An agent added or removed a tag (the text says which); agents only: read the chat's
    /// tags again.
    TagsChanged,
    /// An entry this SDK version does not know yet; show its text.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Visibility {
    Public,
    /// Agents only: notes, whispers, transfer notes. Never shown to the customer.
    Agents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Rating {
    Good,
    Bad,
}

/// Why a push went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum NotificationKind {
    NewChat,
    TransferredChat,
    NewMessage,
    QueuedCustomers,
    OfflineMessage,
    /// The agent did not accept a chat in time and stopped accepting chats.
    MissedChat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Platform {
    /// APNs.
    Ios,
    /// FCM.
    Android,
    /// A browser's push service (Web Push): the token is the subscription's endpoint.
    Web,
}

/// Which APNs environment a token is for (ignored for Android).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushEnvironment {
    Sandbox,
    Production,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Agent {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub routing_status: RoutingStatus,
    /// How many active chats the agent handles at once.
    pub chat_limit: i64,
}

/// Another agent or a group, by id and name.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NamedRef {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Page {
    pub url: String,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Customer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Free text such as "Berlin, Germany", as the widget reported it.
    pub location: Option<String>,
    /// The page the customer is on now.
    pub current_page: Option<Page>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Chat {
    pub id: String,
    pub status: ChatStatus,
    pub channel: Channel,
    pub attention: Attention,
    pub customer: Customer,
    /// The agent who has the chat.
    pub assignee: Option<NamedRef>,
    pub group: Option<NamedRef>,
    pub created_at: SystemTime,
    pub queued_at: Option<SystemTime>,
    pub assigned_at: Option<SystemTime>,
    pub closed_at: Option<SystemTime>,
    /// Seconds the customer has waited in the queue, while queued.
    pub wait_seconds: Option<i64>,
    pub rating: Option<Rating>,
    /// The latest message someone wrote (system entries aside): the preview in a list of
    /// chats. In `ChatAssigned`, the customer's opening message.
    pub last_message: Option<Message>,
    /// What the customer wrote since the agent last read the chat on any device
    /// (`Client::mark_chat_read`).
    pub unread_count: i64,
}

/// A transcript entry.
/// A note a customer left while nobody was available.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfflineMessage {
    pub id: String,
    pub name: String,
    pub email: String,
    pub text: String,
    /// The department it was left for; none: anyone.
    pub group_id: Option<String>,
    pub created_at: SystemTime,
    /// Whether an agent has dealt with it (as the server saw it when it sent the event).
    pub handled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    pub id: String,
    /// Where the entry sits in its chat; pass it as `after` to `chat()` for the next page.
    pub cursor: String,
    pub chat_id: String,
    pub kind: MessageKind,
    pub text: String,
    /// The id the sender chose; for messages sent with `send_message`, the outgoing message's
    /// `client_id`, so an app can replace its pending bubble.
    pub client_id: Option<String>,
    pub author: AuthorKind,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub visibility: Visibility,
    pub created_at: SystemTime,
    /// Files sent with the message.
    pub attachments: Vec<Attachment>,
    /// For an agent's message to a Messenger customer: how far it got. `None` otherwise.
    pub delivery: Option<MessageDelivery>,
}

/// A chat with one page of its transcript, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChatDetail {
    pub chat: Chat,
    pub messages: Vec<Message>,
    /// The first message's cursor: pass it as `before` to `chat_latest` for older messages.
    pub start_cursor: Option<String>,
    /// The last message's cursor: pass it as `after` to `chat` for newer messages.
    pub end_cursor: Option<String>,
    /// From `chat`: whether newer messages exist. From `chat_latest`: whether older ones do.
    pub has_more: bool,
}

/// A waiting customer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct QueueEntry {
    pub chat: Chat,
    /// 1 is next.
    pub position: i64,
    pub wait_seconds: i64,
    pub estimated_wait_seconds: i64,
}

/// An agent a chat could be transferred to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransferCandidate {
    pub agent: Agent,
    pub active_chats: i64,
    pub chat_limit: i64,
    /// Accepting chats and reachable now.
    pub routable: bool,
    /// A transfer reaches them now (an app open or a phone, and not offline); others only
    /// with `force`.
    pub reachable: bool,
}

/// Who a chat goes to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TransferTarget {
    /// This agent, even over their limit.
    Agent { agent_id: String },
    /// Whoever in the group has room; queued there otherwise.
    Group { group_id: String },
}

/// A device to register for pushes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushDeviceRegistration {
    pub platform: Platform,
    /// The APNs device token (hex), the FCM registration token, or for `Web` the push
    /// subscription's endpoint.
    pub token: String,
    /// The APNs topic (bundle id), the Android package, or for `Web` the app's origin.
    pub app_id: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
    /// The push subscription's keys: required for `Web`, refused for the others.
    #[uniffi(default = None)]
    pub web_push: Option<WebPushKeys>,
}

/// A browser's push subscription keys, as `PushSubscription.toJSON().keys` gives them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WebPushKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The authentication secret, base64url.
    pub auth: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushDevice {
    pub id: String,
    pub platform: Platform,
    pub token: String,
    pub app_id: String,
    pub environment: PushEnvironment,
    /// False once the provider refused the token; register it again.
    pub enabled: bool,
}

/// Whether one kind of push is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct NotificationPreference {
    pub kind: NotificationKind,
    pub enabled: bool,
}

/// The server's RFC 3339 times as SystemTime (Date in Swift, Instant in Kotlin).
pub(crate) fn time(text: &str) -> SystemTime {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(at) => {
            let millis = at.timestamp_millis();
            if millis >= 0 {
                SystemTime::UNIX_EPOCH + Duration::from_millis(millis as u64)
            } else {
                SystemTime::UNIX_EPOCH - Duration::from_millis(millis.unsigned_abs())
            }
        }
        Err(err) => {
            tracing::warn!(%text, %err, "the server sent a time that is not RFC 3339");
            SystemTime::UNIX_EPOCH
        }
    }
}

pub(crate) fn opt_time(text: Option<String>) -> Option<SystemTime> {
    text.as_deref().map(time)
}

// ---- conversions from the generated types ---------------------------------------------------
//
// graphql_client generates a module per operation, each with its own copy of the fragments
// and enums it uses. These macros write the same conversion for each copy.

macro_rules! enum_from {
    ($target:ident, [$($module:ident),*], $variants:tt, other => $other:expr) => {
        $(enum_from!(@one $target, $module, $variants, $other);)*
    };
    (@one $target:ident, $module:ident, { $($variant:ident),* }, $other:expr) => {
        impl From<ops::$module::$target> for $target {
            fn from(value: ops::$module::$target) -> Self {
                match value {
                    $(ops::$module::$target::$variant => $target::$variant,)*
                    ops::$module::$target::Other(_) => $other,
                }
            }
        }
    };
}

enum_from!(Role, [login, refresh_token, me, set_routing_status, agents_for_transfer],
    { Agent, Supervisor, Admin, Owner }, other => Role::Agent);
enum_from!(RoutingStatus,
    [login, refresh_token, me, set_routing_status, agents_for_transfer, agent_events],
    { AcceptingChats, NotAcceptingChats, Offline }, other => RoutingStatus::NotAcceptingChats);
enum_from!(ChatStatus,
    [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat, close_chat, agent_events,
     team_chats, join_chat, chat_events],
    { Queued, Active, Closed }, other => ChatStatus::Active);
enum_from!(Channel,
    [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat, close_chat, agent_events,
     team_chats, join_chat, chat_events],
    { Widget, Messenger, Api }, other => Channel::Unknown);
enum_from!(Attention,
    [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat, close_chat, agent_events,
     team_chats, join_chat, chat_events],
    { Normal, WaitingLong, CustomerIdle }, other => Attention::Normal);
enum_from!(Rating,
    [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat, close_chat, agent_events,
     team_chats, join_chat, chat_events],
    { Good, Bad }, other => Rating::Good);
enum_from!(AuthorKind, [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat,
    close_chat, send_message, agent_events, team_chats, join_chat, chat_events],
    { Agent, Customer, System }, other => AuthorKind::System);
enum_from!(MessageKind, [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat,
    close_chat, send_message, agent_events, team_chats, join_chat, chat_events],
    { Message, ChatQueued, AgentAssigned, ChatTransferred, TransferNote, SupervisorJoined,
      ChatClosed, ChatRated, TagsChanged }, other => MessageKind::Unknown);
enum_from!(Visibility, [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat,
    close_chat, send_message, agent_events, team_chats, join_chat, chat_events],
    { Public, Agents }, other => Visibility::Agents);
enum_from!(Platform, [register_push_device], { Ios, Android, Web }, other => Platform::Android);
enum_from!(PushEnvironment, [register_push_device], { Sandbox, Production },
    other => PushEnvironment::Production);

macro_rules! agent_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::AgentFields> for Agent {
                fn from(a: ops::$module::AgentFields) -> Self {
                    Agent {
                        id: a.id,
                        email: a.email,
                        name: a.name,
                        role: a.role.into(),
                        routing_status: a.routing_status.into(),
                        chat_limit: a.chat_limit,
                    }
                }
            }
        )*
    };
}

agent_from!(
    login,
    refresh_token,
    me,
    set_routing_status,
    agents_for_transfer
);

macro_rules! chat_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::ChatFields> for Chat {
                fn from(c: ops::$module::ChatFields) -> Self {
                    Chat {
                        id: c.id,
                        status: c.status.into(),
                        channel: c.channel.into(),
                        attention: c.attention.into(),
                        customer: Customer {
                            id: c.customer.id,
                            name: c.customer.name,
                            email: c.customer.email,
                            location: c.customer.location,
                            current_page: c.customer.current_page.map(|p| Page {
                                url: p.url,
                                title: p.title,
                            }),
                        },
                        assignee: c.assignee.map(|a| NamedRef { id: a.id, name: a.name }),
                        group: c.group.map(|g| NamedRef { id: g.id, name: g.name }),
                        created_at: time(&c.created_at),
                        queued_at: opt_time(c.queued_at),
                        assigned_at: opt_time(c.assigned_at),
                        closed_at: opt_time(c.closed_at),
                        wait_seconds: c.wait_seconds,
                        rating: c.rating.map(Into::into),
                        last_message: c.last_message.map(Into::into),
                        unread_count: c.unread_count,
                    }
                }
            }
        )*
    };
}

chat_from!(
    my_chats,
    queue,
    chat_detail,
    chat_latest,
    take_chat,
    transfer_chat,
    close_chat,
    agent_events,
    team_chats,
    join_chat,
    chat_events
);

macro_rules! message_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::MessageFields> for Message {
                fn from(m: ops::$module::MessageFields) -> Self {
                    Message {
                        id: m.id,
                        cursor: m.cursor,
                        chat_id: m.chat_id,
                        kind: m.kind.into(),
                        text: m.text,
                        client_id: m.client_id,
                        author: m.author.into(),
                        author_id: m.author_id,
                        author_name: m.author_name,
                        visibility: m.visibility.into(),
                        created_at: time(&m.created_at),
                        attachments: m
                            .attachments
                            .into_iter()
                            .map(|a| Attachment {
                                id: a.id,
                                name: a.name,
                                content_type: a.content_type,
                                size: a.size,
                                is_image: a.is_image,
                                url: a.url,
                            })
                            .collect(),
                        delivery: m.delivery.map(|d| MessageDelivery {
                            state: d.state.into(),
                            error: d.error,
                        }),
                    }
                }
            }
        )*
    };
}

message_from!(
    my_chats,
    queue,
    chat_detail,
    chat_latest,
    take_chat,
    transfer_chat,
    close_chat,
    send_message,
    agent_events,
    team_chats,
    join_chat,
    chat_events
);

impl From<ops::register_push_device::RegisterPushDeviceRegisterPushDevice> for PushDevice {
    fn from(d: ops::register_push_device::RegisterPushDeviceRegisterPushDevice) -> Self {
        PushDevice {
            id: d.id,
            platform: d.platform.into(),
            token: d.token,
            app_id: d.app_id,
            environment: d.environment.into(),
            enabled: d.enabled,
        }
    }
}

macro_rules! notification_kind {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::NotificationKind> for Option<NotificationKind> {
                fn from(kind: ops::$module::NotificationKind) -> Self {
                    use ops::$module::NotificationKind as K;
                    Some(match kind {
                        K::NewChat => NotificationKind::NewChat,
                        K::TransferredChat => NotificationKind::TransferredChat,
                        K::NewMessage => NotificationKind::NewMessage,
                        K::QueuedCustomers => NotificationKind::QueuedCustomers,
                        K::OfflineMessage => NotificationKind::OfflineMessage,
                        K::MissedChat => NotificationKind::MissedChat,
                        K::Other(_) => return None,
                    })
                }
            }
        )*
    };
}

notification_kind!(notification_preferences, update_notification_preferences);

impl NotificationKind {
    /// The name the server and push payloads use.
    pub fn as_str(self) -> &'static str {
        switchboard_protocol::NotificationKind::from(self).as_str()
    }

    pub fn parse(text: &str) -> Option<NotificationKind> {
        switchboard_protocol::NotificationKind::parse(text).map(Into::into)
    }
}

// The names live in the protocol crate; these matches keep the two lists of kinds the same.
impl From<NotificationKind> for switchboard_protocol::NotificationKind {
    fn from(kind: NotificationKind) -> Self {
        use switchboard_protocol::NotificationKind as K;
        match kind {
            NotificationKind::NewChat => K::NewChat,
            NotificationKind::TransferredChat => K::TransferredChat,
            NotificationKind::NewMessage => K::NewMessage,
            NotificationKind::QueuedCustomers => K::QueuedCustomers,
            NotificationKind::OfflineMessage => K::OfflineMessage,
            NotificationKind::MissedChat => K::MissedChat,
        }
    }
}

impl From<switchboard_protocol::NotificationKind> for NotificationKind {
    fn from(kind: switchboard_protocol::NotificationKind) -> Self {
        use switchboard_protocol::NotificationKind as K;
        match kind {
            K::NewChat => NotificationKind::NewChat,
            K::TransferredChat => NotificationKind::TransferredChat,
            K::NewMessage => NotificationKind::NewMessage,
            K::QueuedCustomers => NotificationKind::QueuedCustomers,
            K::OfflineMessage => NotificationKind::OfflineMessage,
            K::MissedChat => NotificationKind::MissedChat,
        }
    }
}

// ---- canned responses -------------------------------------------------------------------------

/// Who a canned response is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum CannedResponseScope {
    /// Every agent of the organization; admins and owners manage it.
    Organization,
    /// The agents of one group; admins and owners manage it.
    Group,
    /// Its owner's alone.
    Personal,
}

/// A text an agent inserts by typing its `#shortcut`.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CannedResponse {
    pub id: String,
    /// Without the `#`, lower case.
    pub shortcut: String,
    pub title: String,
    /// As written, with placeholders: `render_canned_response` fills them for a chat.
    pub text: String,
    pub scope: CannedResponseScope,
    /// For GROUP.
    pub group: Option<NamedRef>,
    /// For PERSONAL.
    pub owner: Option<NamedRef>,
    /// Messages sent from it.
    pub usage_count: i32,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

/// A canned response as an agent writes it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CannedResponseInput {
    /// 1 to 32 of a-z 0-9 _ -; a leading `#` is dropped.
    pub shortcut: String,
    /// 1 to 100 characters.
    pub title: String,
    /// 1 to 4000 characters, with `{{customer.first_name}}`, `{{customer.name}}`,
    /// `{{customer.email}}`, `{{agent.name}}`, `{{agent.first_name}}`.
    pub text: String,
    /// ORGANIZATION and GROUP: admins and owners only.
    pub scope: CannedResponseScope,
    /// Required for GROUP, refused otherwise.
    pub group_id: Option<String>,
}

enum_from!(CannedResponseScope,
    [canned_responses, manageable_canned_responses, create_canned_response, update_canned_response],
    { Organization, Group, Personal }, other => CannedResponseScope::Organization);

macro_rules! canned_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::CannedResponseFields> for CannedResponse {
                fn from(r: ops::$module::CannedResponseFields) -> Self {
                    CannedResponse {
                        id: r.id,
                        shortcut: r.shortcut,
                        title: r.title,
                        text: r.text,
                        scope: r.scope.into(),
                        group: r.group.map(|g| NamedRef { id: g.id, name: g.name }),
                        owner: r.owner.map(|o| NamedRef { id: o.id, name: o.name }),
                        usage_count: r.usage_count as i32,
                        created_at: time(&r.created_at),
                        updated_at: time(&r.updated_at),
                    }
                }
            }
        )*
    };
}

canned_from!(
    canned_responses,
    manageable_canned_responses,
    create_canned_response,
    update_canned_response
);

macro_rules! canned_input_into {
    ($($module:ident),*) => {
        $(
            impl From<CannedResponseInput> for ops::$module::CannedResponseInput {
                fn from(input: CannedResponseInput) -> Self {
                    use ops::$module::CannedResponseScope as S;
                    ops::$module::CannedResponseInput {
                        shortcut: input.shortcut,
                        title: input.title,
                        text: input.text,
                        scope: match input.scope {
                            CannedResponseScope::Organization => S::Organization,
                            CannedResponseScope::Group => S::Group,
                            CannedResponseScope::Personal => S::Personal,
                        },
                        group_id: input.group_id,
                    }
                }
            }
        )*
    };
}

canned_input_into!(create_canned_response, update_canned_response);

// ---- notes, tags, teammates' chats -------------------------------------------------------------

/// A label the organization puts on chats.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Tag {
    pub id: String,
    /// Unique in the organization whatever the case; 1 to 40 characters.
    pub name: String,
    /// A hex colour such as `#1a5fd0`; `None` for the app's default.
    pub color: Option<String>,
    pub created_at: SystemTime,
}

/// A tag as an admin writes it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TagInput {
    /// 1 to 40 characters, unique in the organization whatever the case.
    pub name: String,
    /// `#rrggbb` or `#rgb`; `None` for the default.
    pub color: Option<String>,
}

macro_rules! tag_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::TagFields> for Tag {
                fn from(t: ops::$module::TagFields) -> Self {
                    Tag {
                        id: t.id,
                        name: t.name,
                        color: t.color,
                        created_at: time(&t.created_at),
                    }
                }
            }
        )*
    };
}

tag_from!(
    tags,
    chat_tags,
    create_tag,
    update_tag,
    add_chat_tag,
    remove_chat_tag
);

macro_rules! tag_input_from {
    ($($module:ident),*) => {
        $(
            impl From<TagInput> for ops::$module::TagInput {
                fn from(input: TagInput) -> Self {
                    ops::$module::TagInput {
                        name: input.name,
                        color: input.color,
                    }
                }
            }
        )*
    };
}

tag_input_from!(create_tag, update_tag);

// ---- files ---------------------------------------------------------------------------------

/// A file sent with a message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    /// Such as image/png or application/pdf.
    pub content_type: String,
    /// In bytes.
    pub size: i64,
    /// Show it inline (PNG, JPEG, GIF, WebP); other files are downloads.
    pub is_image: bool,
    /// The download link, relative to the server and valid for about 15 minutes: make it whole
    /// with `Client::file_url`, and read the message again for a fresh one.
    pub url: Option<String>,
}

/// A file uploaded into a chat, ready to be sent with `send_files`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UploadedFile {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub is_image: bool,
}

/// What files the organization accepts.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileSettings {
    /// The largest file, in bytes.
    pub max_file_bytes: i64,
    /// Content types such as image/png.
    pub allowed_types: Vec<String>,
}

// ---- archive, customer profiles, bans -------------------------------------------------------

/// What the archive lists; every field given narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ArchiveFilter {
    #[uniffi(default = None)]
    pub status: Option<ChatStatus>,
    /// The chat's agent, now or before.
    #[uniffi(default = None)]
    pub agent_id: Option<String>,
    #[uniffi(default = None)]
    pub group_id: Option<String>,
    #[uniffi(default = None)]
    pub tag_id: Option<String>,
    #[uniffi(default = None)]
    pub rating: Option<Rating>,
    /// `Channel::Unknown` is no filter.
    #[uniffi(default = None)]
    pub channel: Option<Channel>,
    /// Chats started at or after.
    #[uniffi(default = None)]
    pub from: Option<SystemTime>,
    /// Chats started before.
    #[uniffi(default = None)]
    pub to: Option<SystemTime>,
    #[uniffi(default = None)]
    pub customer_id: Option<String>,
    /// Words are ANDed; `"a phrase"`; `a OR b`; `-excluded`; `prefix*`. A malformed search
    /// is a bad-input error.
    #[uniffi(default = None)]
    pub search: Option<String>,
}

/// A piece of a search snippet; show highlighted parts marked, every part as plain text.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SnippetPart {
    pub text: String,
    pub highlighted: bool,
}

/// A chat of the archive.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ArchiveItem {
    pub chat: Chat,
    /// Where the search matched; none when not searched.
    pub snippet: Option<Vec<SnippetPart>>,
}

/// A page of the archive, newest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ArchivePage {
    pub items: Vec<ArchiveItem>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// A key and value agents record about a customer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CustomField {
    pub key: String,
    pub value: String,
}

/// A ban on a customer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CustomerBan {
    pub id: String,
    pub reason: String,
    /// The address banned with the visitor, if any.
    pub ip_address: Option<String>,
    pub created_at: SystemTime,
    /// None: until lifted.
    pub expires_at: Option<SystemTime>,
    pub active: bool,
    pub created_by: NamedRef,
}

/// A customer as agents see them.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CustomerProfile {
    pub id: String,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    pub custom_fields: Vec<CustomField>,
    pub visits: i64,
    pub updated_at: Option<SystemTime>,
    /// The ban in force, if any.
    pub ban: Option<CustomerBan>,
    /// Their chats you may see, newest first (from `customer_profile`; none after an update).
    pub chats: Option<ArchivePage>,
}

/// A change to a customer: none leaves a field, an empty text clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct CustomerUpdate {
    /// Also sets the first name to its first word, unless `first_name` is given too.
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub first_name: Option<String>,
    #[uniffi(default = None)]
    pub email: Option<String>,
    #[uniffi(default = None)]
    pub phone: Option<String>,
    #[uniffi(default = None)]
    pub note: Option<String>,
    /// Replaces them all (at most 20).
    #[uniffi(default = None)]
    pub custom_fields: Option<Vec<CustomField>>,
}

/// A ban as you ask for it (supervisors, admins, owners).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BanInput {
    /// 1 to 500 characters; agents see it, the customer does not.
    pub reason: String,
    /// 60 seconds to ten years; none: until lifted.
    #[uniffi(default = None)]
    pub duration_seconds: Option<i64>,
    /// Also ban the address the customer was last seen at.
    #[uniffi(default = false)]
    pub include_address: bool,
}

pub(crate) fn rfc3339(at: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(at).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

enum_from!(ChatStatus, [archive, customer_profile], { Queued, Active, Closed },
    other => ChatStatus::Active);
enum_from!(Channel, [archive, customer_profile], { Widget, Messenger, Api },
    other => Channel::Unknown);
enum_from!(Attention, [archive, customer_profile], { Normal, WaitingLong, CustomerIdle },
    other => Attention::Normal);
enum_from!(Rating, [archive, customer_profile], { Good, Bad }, other => Rating::Good);
enum_from!(AuthorKind, [archive, customer_profile], { Agent, Customer, System },
    other => AuthorKind::System);
enum_from!(MessageKind, [archive, customer_profile],
    { Message, ChatQueued, AgentAssigned, ChatTransferred, TransferNote, SupervisorJoined,
      ChatClosed, ChatRated, TagsChanged }, other => MessageKind::Unknown);
enum_from!(Visibility, [archive, customer_profile], { Public, Agents },
    other => Visibility::Agents);
chat_from!(archive, customer_profile);
message_from!(archive, customer_profile);

macro_rules! archive_page_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::ArchivePageFields> for ArchivePage {
                fn from(p: ops::$module::ArchivePageFields) -> Self {
                    ArchivePage {
                        items: p
                            .items
                            .into_iter()
                            .map(|i| ArchiveItem {
                                chat: i.chat.into(),
                                snippet: i.snippet.map(|parts| {
                                    parts
                                        .into_iter()
                                        .map(|s| SnippetPart { text: s.text, highlighted: s.highlighted })
                                        .collect()
                                }),
                            })
                            .collect(),
                        end_cursor: p.end_cursor,
                        has_next_page: p.has_next_page,
                    }
                }
            }
        )*
    };
}

archive_page_from!(archive, customer_profile);

macro_rules! ban_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::CustomerBanFields> for CustomerBan {
                fn from(b: ops::$module::CustomerBanFields) -> Self {
                    CustomerBan {
                        id: b.id,
                        reason: b.reason,
                        ip_address: b.ip_address,
                        created_at: time(&b.created_at),
                        expires_at: opt_time(b.expires_at),
                        active: b.active,
                        created_by: NamedRef { id: b.created_by.id, name: b.created_by.name },
                    }
                }
            }
        )*
    };
}

ban_from!(customer_profile, update_customer, ban_customer);

macro_rules! profile_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::CustomerProfileFields> for CustomerProfile {
                fn from(c: ops::$module::CustomerProfileFields) -> Self {
                    CustomerProfile {
                        id: c.id,
                        name: c.name,
                        first_name: c.first_name,
                        email: c.email,
                        phone: c.phone,
                        note: c.note,
                        custom_fields: c
                            .custom_fields
                            .into_iter()
                            .map(|f| CustomField { key: f.key, value: f.value })
                            .collect(),
                        visits: c.visits,
                        updated_at: opt_time(c.updated_at),
                        ban: c.ban.map(Into::into),
                        chats: None,
                    }
                }
            }
        )*
    };
}

profile_from!(customer_profile, update_customer);

impl From<ArchiveFilter> for ops::archive::ArchiveFilter {
    fn from(f: ArchiveFilter) -> Self {
        use ops::archive::{Channel as C, ChatStatus as S, Rating as R};
        ops::archive::ArchiveFilter {
            status: f.status.map(|s| match s {
                ChatStatus::Queued => S::Queued,
                ChatStatus::Active => S::Active,
                ChatStatus::Closed => S::Closed,
            }),
            agent_id: f.agent_id,
            group_id: f.group_id,
            tag_id: f.tag_id,
            rating: f.rating.map(|r| match r {
                Rating::Good => R::Good,
                Rating::Bad => R::Bad,
            }),
            channel: f.channel.and_then(|c| match c {
                Channel::Widget => Some(C::Widget),
                Channel::Messenger => Some(C::Messenger),
                Channel::Api => Some(C::Api),
                Channel::Unknown => None,
            }),
            from: f.from.map(rfc3339),
            to: f.to.map(rfc3339),
            customer_id: f.customer_id,
            search: f.search,
        }
    }
}

impl From<CustomerUpdate> for ops::update_customer::UpdateCustomerInput {
    fn from(u: CustomerUpdate) -> Self {
        ops::update_customer::UpdateCustomerInput {
            name: u.name,
            first_name: u.first_name,
            email: u.email,
            phone: u.phone,
            note: u.note,
            custom_fields: u.custom_fields.map(|fields| {
                fields
                    .into_iter()
                    .map(|f| ops::update_customer::CustomFieldInput {
                        key: f.key,
                        value: f.value,
                    })
                    .collect()
            }),
        }
    }
}

// ---- reports ----------------------------------------------------------------------------------

/// Average, median and 90th percentile (nearest rank) of a duration, in seconds.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DurationStats {
    /// How many chats the stats are over.
    pub count: i64,
    pub average_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

/// The numbers of a period, an agent or a day (see the server's README for each definition).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ReportRow {
    /// Per day: YYYY-MM-DD.
    pub date: Option<String>,
    /// Per agent; `None` on the row of chats nobody was assigned.
    pub agent: Option<NamedRef>,
    pub chats_started: i64,
    pub chats_answered: i64,
    pub chats_missed: i64,
    pub chats_transferred: i64,
    pub queue_wait: DurationStats,
    pub first_response_time: DurationStats,
    pub response_time: DurationStats,
    pub chat_duration: DurationStats,
    pub rated_good: i64,
    pub rated_bad: i64,
    /// Rated ÷ started, 0 to 1.
    pub rated_share: Option<f64>,
    /// `None` with a tag filter.
    pub greetings_shown: Option<i64>,
    pub greetings_answered: Option<i64>,
}

/// A report: the whole period, per agent, per day.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub time_zone: String,
    pub totals: ReportRow,
    pub by_agent: Vec<ReportRow>,
    pub by_day: Vec<ReportRow>,
}

/// The period and filters of a report.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReportInput {
    /// The first day, YYYY-MM-DD, inclusive.
    pub from: String,
    /// The last day, inclusive; at most 400 days after `from`.
    pub to: String,
    /// An IANA time zone name; `None`: UTC.
    pub time_zone: Option<String>,
    pub group_id: Option<String>,
    /// Agents may give only themselves.
    pub agent_id: Option<String>,
    pub tag_id: Option<String>,
}

impl From<ops::report::DurationStatsFields> for DurationStats {
    fn from(s: ops::report::DurationStatsFields) -> Self {
        DurationStats {
            count: s.count,
            average_seconds: s.average_seconds,
            median_seconds: s.median_seconds,
            p90_seconds: s.p90_seconds,
        }
    }
}

impl ReportRow {
    fn from_fields(
        r: ops::report::ReportRowFields,
        date: Option<String>,
        agent: Option<NamedRef>,
    ) -> Self {
        ReportRow {
            date,
            agent,
            chats_started: r.chats_started,
            chats_answered: r.chats_answered,
            chats_missed: r.chats_missed,
            chats_transferred: r.chats_transferred,
            queue_wait: r.queue_wait.into(),
            first_response_time: r.first_response_time.into(),
            response_time: r.response_time.into(),
            chat_duration: r.chat_duration.into(),
            rated_good: r.rated_good,
            rated_bad: r.rated_bad,
            rated_share: r.rated_share,
            greetings_shown: r.greetings_shown,
            greetings_answered: r.greetings_answered,
        }
    }
}

impl From<ops::report::ReportReport> for Report {
    fn from(r: ops::report::ReportReport) -> Self {
        Report {
            from: r.from,
            to: r.to,
            time_zone: r.time_zone,
            totals: ReportRow::from_fields(r.totals, None, None),
            by_agent: r
                .by_agent
                .into_iter()
                .map(|a| {
                    let agent = a.agent.map(|g| NamedRef {
                        id: g.id,
                        name: g.name,
                    });
                    ReportRow::from_fields(a.report_row_fields, None, agent)
                })
                .collect(),
            by_day: r
                .by_day
                .into_iter()
                .map(|d| ReportRow::from_fields(d.report_row_fields, d.date, None))
                .collect(),
        }
    }
}

/// A CRM, ticketing system or other integration the organization's admins set up, that
/// agents send chats to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Integration {
    pub id: String,
    /// What the admins called it, or the host it posts to.
    pub name: String,
}

impl From<ops::integrations::IntegrationsIntegrations> for Integration {
    fn from(i: ops::integrations::IntegrationsIntegrations) -> Self {
        Integration {
            id: i.id,
            name: i.name,
        }
    }
}

/// Where sending a chat to an integration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum IntegrationSendStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// An attempt is under way.
    Sending,
    /// The integration took it.
    Delivered,
    /// Given up; `last_error` says why.
    Failed,
}

/// One chat sent to an integration, and how it went.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct IntegrationSend {
    pub id: String,
    pub integration_id: String,
    pub status: IntegrationSendStatus,
    pub attempts: i32,
    /// The integration's HTTP status at the last attempt, if it answered.
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: SystemTime,
    pub delivered_at: Option<SystemTime>,
}

macro_rules! integration_send_from {
    ($($module:ident),*) => {
        $(
            impl From<ops::$module::IntegrationSendFields> for IntegrationSend {
                fn from(d: ops::$module::IntegrationSendFields) -> Self {
                    use ops::$module::WebhookDeliveryStatus as S;
                    IntegrationSend {
                        id: d.id,
                        integration_id: d.endpoint_id,
                        status: match d.status {
                            S::Pending => IntegrationSendStatus::Pending,
                            S::Sending => IntegrationSendStatus::Sending,
                            S::Delivered => IntegrationSendStatus::Delivered,
                            S::Failed | S::Other(_) => IntegrationSendStatus::Failed,
                        },
                        attempts: i32::try_from(d.attempts).unwrap_or(i32::MAX),
                        response_status: d.response_status.and_then(|s| i32::try_from(s).ok()),
                        last_error: d.last_error,
                        created_at: time(&d.created_at),
                        delivered_at: opt_time(d.delivered_at),
                    }
                }
            }
        )*
    };
}

integration_send_from!(send_chat_to_integration, chat_integration_sends);
/// How far an agent's message to a Messenger customer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DeliveryState {
    /// Waiting in the server's outbox.
    Pending,
    /// Facebook took it.
    Sent,
    /// It reached the customer's Messenger.
    Delivered,
    /// The customer read it.
    Read,
    /// It did not reach Messenger; `MessageDelivery::error` says why.
    Failed,
    /// A state this SDK version does not know yet.
    Unknown,
}

/// What became of a message sent to Messenger.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MessageDelivery {
    pub state: DeliveryState,
    /// Why it failed, as Facebook said.
    pub error: Option<String>,
}

enum_from!(DeliveryState, [my_chats, queue, chat_detail, chat_latest, take_chat, transfer_chat,
    close_chat, send_message, agent_events, team_chats, join_chat, chat_events, archive, customer_profile],
    { Pending, Sent, Delivered, Read, Failed }, other => DeliveryState::Unknown);
// ---- offline messages by email ----------------------------------------------------------

/// How far an email to a customer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum EmailDelivery {
    /// Waiting to be sent, or to be tried again after a passing failure.
    Queued,
    /// The organization's mail server accepted it.
    Sent,
    /// Given up: refused, or it kept failing (`delivery_error` says why).
    Failed,
}

/// An agent's answer to an offline message, emailed to the customer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfflineMessageReply {
    pub id: String,
    pub text: String,
    pub agent_id: String,
    /// The agent's name when they replied, as the customer read it.
    pub agent_name: String,
    pub created_at: SystemTime,
    pub delivery: EmailDelivery,
    /// Why the email failed, or last failed while it is tried again.
    pub delivery_error: Option<String>,
}

/// An offline message with the agents' answers to it, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OfflineMessageThread {
    pub message: OfflineMessage,
    pub replies: Vec<OfflineMessageReply>,
}

/// The same conversion for each operation's copy of the fragment.
macro_rules! offline_thread_from {
    ($($module:ident),*) => {$(
        impl From<ops::$module::OfflineMessageThreadFields> for OfflineMessageThread {
            fn from(m: ops::$module::OfflineMessageThreadFields) -> Self {
                use ops::$module::EmailDelivery as D;
                OfflineMessageThread {
                    message: OfflineMessage {
                        id: m.id,
                        name: m.name,
                        email: m.email,
                        text: m.text,
                        group_id: m.group_id,
                        created_at: time(&m.created_at),
                        handled: m.handled,
                    },
                    replies: m
                        .replies
                        .into_iter()
                        .map(|r| OfflineMessageReply {
                            id: r.id,
                            text: r.text,
                            agent_id: r.agent_id,
                            agent_name: r.agent_name,
                            created_at: time(&r.created_at),
                            delivery: match r.delivery {
                                D::Queued => EmailDelivery::Queued,
                                D::Sent => EmailDelivery::Sent,
                                D::Failed | D::Other(_) => EmailDelivery::Failed,
                            },
                            delivery_error: r.delivery_error,
                        })
                        .collect(),
                }
            }
        }
    )*};
}

offline_thread_from!(
    offline_messages,
    reply_to_offline_message,
    mark_offline_message_handled
);
