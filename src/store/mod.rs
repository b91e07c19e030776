//! Persistence: the [`Database`] traits and their two backends, SQLite (the embedded
//! default) and Postgres (for clusters).
//!
//! Both backends run the same SQL: ids are TEXT (UUIDv7 strings), times are BIGINT
//! milliseconds since the Unix epoch (UTC), and parameters are written `$1`. The queries are
//! written once, in `sql/`, over a small connection trait of our own; `sqlite/` implements it
//! on rusqlite alone (one writer, a few readers, a checkpoint thread) and `postgres/` on sqlx
//! alone. Neither driver's types reach past this module: [`DbError`] is driver-neutral.

mod archive;
mod migrations;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use archive::{ArchiveStore, CustomerChange};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Agent, AuthorKind, CannedResponse, Chat, ChatEvent, ChatEventKind, ChatSettings, ChatStatus,
    Customer, EmailJob, EmailJobStatus, FeedData, FeedEntry, FeedKind, FileSettings, Greeting,
    GreetingCounts, GreetingRule, Group, MessageDelivery, MessengerPage, MessengerSend,
    MessengerSendStatus, NotificationKind, OfflineMessage, OfflineReply, Organization, PageView,
    PushDevice, PushJob, PushJobStatus, ReportBy, ReportData, ReportPeriod, ReportRow, ReportScope,
    Role, RoutingCandidate, RoutingStatus, StoredFile, Tag, UnknownVariant, Visibility,
    WebhookDelivery, WebhookEndpoint, WidgetSettings,
};

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row asked for does not exist (in that organization).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the message says what already exists.
    #[error("{0}")]
    Conflict(String),
    /// The change would leave the organization without an active owner. Checked in the
    /// change's own transaction, so two owners removing each other cannot both succeed.
    #[error("the organization must keep an active owner")]
    LastActiveOwner,
    /// Anything else: connection, I/O, a bug in SQL. The driver's error, boxed.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl From<UnknownVariant> for DbError {
    fn from(err: UnknownVariant) -> Self {
        DbError::Other(Box::new(err))
    }
}

/// The result of a store call.
pub type DbResult<T> = Result<T, DbError>;

/// How busy a connection pool is, for /metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` or `write` on SQLite (one writer connection), `main` on Postgres.
    pub name: &'static str,
    pub size: u32,
    pub idle: usize,
    /// SQLite's writer: the writes committed and the commits that carried them (several
    /// writes share a commit under load).
    pub commits: Option<(u64, u64)>,
}

/// What one organization has going on now, for /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrganizationLoad {
    pub organization_id: String,
    /// Chats with an agent.
    pub active_chats: i64,
    /// Chats waiting for one.
    pub queued_chats: i64,
    /// Active agents whose routing status is accepting chats.
    pub accepting_agents: i64,
}

/// One outbox's backlog, for /metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// `push` (APNs and FCM), `webpush`, `webhooks`, `messenger` or `email`.
    pub kind: &'static str,
    /// Jobs waiting or being sent.
    pub depth: i64,
    /// When the job that has waited longest since it fell due fell due; `None` when no job is
    /// due.
    pub oldest_due_at: Option<DateTime<Utc>>,
}

/// An agent about to be created.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub chat_limit: Option<i32>,
    pub group_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A change to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentUpdate {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` returns the agent to the organization's default limit.
    pub chat_limit: Option<Option<i32>>,
    pub group_ids: Option<Vec<String>>,
}

/// A refresh token about to be stored. Only its SHA-256 is kept: a stolen database does not
/// yield usable tokens.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub session_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was current; it is now spent and the new one stored.
    Rotated {
        agent_id: String,
        session_id: String,
    },
    /// The token had already been spent: someone holds a copy. The whole session is revoked.
    Reused {
        agent_id: String,
        session_id: String,
    },
    /// Unknown, expired, revoked, or its agent was deactivated.
    Invalid,
}

/// Everything Switchboard keeps. Methods that take an `organization_id` only ever see that
/// organization's rows: tenancy is enforced here, not only above.
#[async_trait]
pub trait Database:
    ChatStore
    + CannedStore
    + TagStore
    + FileStore
    + GreetingStore
    + PushStore
    + ArchiveStore
    + ReportStore
    + WebhookStore
    + MessengerStore
    + EmailStore
    + ClusterStore
    + GaugeStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> DbResult<()>;
    /// Checks that the database accepts writes, for /readyz: a write that changes nothing,
    /// rolled back. (Answering a SELECT says nothing of a read-only or locked database.)
    async fn ping(&self) -> DbResult<()>;
    /// Writes a consistent copy of the database to `path` while it is in use (SQLite's
    /// `VACUUM INTO`); Postgres is backed up with its own tools.
    async fn backup_into(&self, path: &std::path::Path) -> DbResult<()>;
    /// Connection pool usage, for /metrics.
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Closes every connection; later calls fail.
    async fn close(&self);

    /// How many organizations exist; zero means a fresh server that needs bootstrapping.
    async fn organization_count(&self) -> DbResult<i64>;
    /// Creates an organization together with its first owner, atomically.
    async fn create_organization(&self, org: &Organization, owner: &NewAgent) -> DbResult<Agent>;
    async fn organization(&self, id: &str) -> DbResult<Organization>;
    /// The organization created first (the bootstrapped one on most servers), if any: the
    /// demo page embeds its widget.
    async fn first_organization(&self) -> DbResult<Option<Organization>>;

    async fn agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent>;
    /// The agents with this (normalized) email, in any organization, active or not, with their
    /// password hashes: the most recently signed in first, at most a few.
    async fn agent_credentials(&self, email: &str) -> DbResult<Vec<(Agent, String)>>;
    async fn agents(&self, organization_id: &str) -> DbResult<Vec<Agent>>;
    async fn create_agent(&self, agent: &NewAgent) -> DbResult<Agent>;
    /// Changes an agent; [`DbError::LastActiveOwner`] when it would demote the organization's
    /// last active owner.
    async fn update_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        update: &AgentUpdate,
    ) -> DbResult<Agent>;
    /// Deactivates an agent and revokes all their sessions in one transaction;
    /// [`DbError::LastActiveOwner`] when they are the organization's last active owner.
    async fn deactivate_agent(
        &self,
        organization_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<Agent>;
    async fn set_password_hash(&self, agent_id: &str, password_hash: &str) -> DbResult<()>;
    /// Every organization, oldest first (the admin command line).
    async fn organizations(&self) -> DbResult<Vec<Organization>>;
    /// Makes a deactivated agent active again (routing status offline until they sign in);
    /// [`DbError::NotFound`] when there is none.
    async fn reactivate_agent(&self, organization_id: &str, agent_id: &str) -> DbResult<Agent>;
    /// Records a successful login and sets the routing status it leads to.
    async fn record_login(
        &self,
        agent_id: &str,
        routing_status: RoutingStatus,
        at: DateTime<Utc>,
    ) -> DbResult<Agent>;

    async fn groups(&self, organization_id: &str) -> DbResult<Vec<Group>>;
    async fn create_group(&self, group: &Group) -> DbResult<Group>;

    /// Starts a session (one signed-in app) with its first refresh token.
    async fn create_session(
        &self,
        session_id: &str,
        agent_id: &str,
        first_token: &NewRefreshToken,
    ) -> DbResult<()>;
    /// Spends a refresh token and stores its successor, or detects reuse.
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: &NewRefreshToken,
        at: DateTime<Utc>,
    ) -> DbResult<RefreshOutcome>;
    async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// The agent behind a live session: `None` when the session was revoked or the agent
    /// deactivated. Checked on every request, so a logout or deactivation takes effect at once.
    async fn session_agent(&self, session_id: &str, agent_id: &str) -> DbResult<Option<Agent>>;
    /// Sets the agent's password and ends every other session of theirs, in one transaction.
    async fn change_password(
        &self,
        agent_id: &str,
        password_hash: &str,
        keep_session_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Ends a session as its app signs out. When the agent has no other session and no enabled
    /// push device, nothing can reach them any more: their presence lease ends at `at` too, so
    /// no chat is routed to them in the grace period. Returns whether they are still reachable.
    async fn sign_out_session(
        &self,
        session_id: &str,
        agent_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool>;
    /// Agents whose access (sessions, role, groups, password, active) changed after `since`,
    /// with when: nodes poll it to re-check their WebSockets.
    async fn access_changes_since(&self, since: DateTime<Utc>) -> DbResult<Vec<(String, i64)>>;
    /// Whether the agent is reachable at `now` by routing's rule: a live connection, the grace
    /// period after one, or an enabled push device.
    async fn agent_reachable(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// The organization's widget settings; the defaults until an admin changes them.
    async fn widget_settings(&self, organization_id: &str) -> DbResult<WidgetSettings>;
    async fn update_widget_settings(
        &self,
        organization_id: &str,
        settings: &WidgetSettings,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// The organization's identity secret, if one was ever made.
    async fn stored_identity_secret(&self, organization_id: &str) -> DbResult<Option<String>>;
    /// The organization's identity secret, keeping `generated` first when it has none (or,
    /// with `replace`, in any case).
    async fn identity_secret(
        &self,
        organization_id: &str,
        generated: &str,
        replace: bool,
        at: DateTime<Utc>,
    ) -> DbResult<String>;
}

fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A customer's visit as the widget reports it; creates the customer or updates a returning one.
#[derive(Debug, Clone)]
pub struct CustomerVisit {
    pub organization_id: String,
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub location: Option<String>,
    pub ip_address: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub at: DateTime<Utc>,
    /// The hash of a new visitor secret, kept when the visit creates the customer or claims
    /// one from before visitor secrets.
    pub new_secret_hash: String,
    /// The hash of the secret the widget presented: a returning customer must match it.
    pub presented_secret_hash: Option<String>,
    /// The shop's id for the customer, proved by a signed identity: the visit is that
    /// customer's, on whatever device, and an anonymous visitor who proves it becomes them.
    pub external_id: Option<String>,
}

/// What recording a visit led to.
#[derive(Debug, Clone)]
pub struct RecordedVisit {
    pub customer: Customer,
    /// Whether the visit's new secret is now the customer's (a new customer, or one from
    /// before visitor secrets), so the widget must be given it.
    pub secret_issued: bool,
}

/// A transcript entry about to be appended; the store numbers it.
#[derive(Debug, Clone)]
pub struct NewChatEvent {
    pub chat_id: String,
    pub organization_id: String,
    pub kind: ChatEventKind,
    pub author_kind: AuthorKind,
    pub author_id: Option<String>,
    pub author_name: Option<String>,
    pub text: String,
    pub client_id: Option<String>,
    pub visibility: Visibility,
    pub at: DateTime<Utc>,
}

impl NewChatEvent {
    /// The entry as stored under number `seq`, with a new id.
    fn stored(&self, seq: i64) -> ChatEvent {
        ChatEvent {
            id: crate::domain::new_id(),
            chat_id: self.chat_id.clone(),
            organization_id: self.organization_id.clone(),
            seq,
            kind: self.kind,
            author_kind: self.author_kind,
            author_id: self.author_id.clone(),
            author_name: self.author_name.clone(),
            text: self.text.clone(),
            client_id: self.client_id.clone(),
            visibility: self.visibility,
            created_at: self.at,
        }
    }
}

/// How an agent took part in a chat besides being its assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantRole {
    /// Had the chat before; routing never gives it back to them.
    PreviousAssignee,
    /// Joined it to supervise.
    Supervisor,
}

impl ParticipantRole {
    fn as_str(self) -> &'static str {
        match self {
            ParticipantRole::PreviousAssignee => "PREVIOUS_ASSIGNEE",
            ParticipantRole::Supervisor => "SUPERVISOR",
        }
    }

    fn from_stored(role: &str) -> Self {
        if role == "SUPERVISOR" {
            ParticipantRole::Supervisor
        } else {
            ParticipantRole::PreviousAssignee
        }
    }
}

/// An agent's current load, for choosing a transfer target.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLoad {
    pub agent: Agent,
    pub active_chats: i64,
    /// Reachable now: a live connection, or within the grace period after the last one.
    pub reachable: bool,
}

/// A transaction for the chat use cases. Every one starts with [`ChatTx::lock_organization`]
/// or [`ChatTx::enter_chat`]. Locking the organization serializes capacity checks and
/// assignments (no chat assigned twice, no limit exceeded, on any number of nodes) with each
/// other and with the chat writers. Chat writers (messages and notes) run side by side,
/// each alone in its chat: they lock their chat's row, then the feed counters of the chat's
/// agents (`append_feed`) in the order of the agents' ids, one lock order, so they never
/// deadlock. While a `ChatTx` is open, use only its methods: on SQLite it holds the single
/// writer. Dropped without [`ChatTx::commit`], it rolls back.
/// What a chat writer finds when it enters its chat ([`ChatTx::enter_chat`]).
#[derive(Debug, Clone)]
pub struct EnteredChat {
    pub organization: Organization,
    /// Whether the organization has an enabled webhook endpoint.
    pub has_webhooks: bool,
    /// The chat, locked for the rest of the transaction.
    pub chat: Chat,
    /// The name of the chat's customer, if they gave one.
    pub customer_name: Option<String>,
}

#[async_trait]
pub trait ChatTx: Send {
    /// Locks the organization for the rest of the transaction and returns it.
    async fn lock_organization(&mut self, organization_id: &str) -> DbResult<Organization>;
    /// Enters chat `chat_id` as a chat writer: waits for changes that lock the organization
    /// and keeps them out until the transaction ends, locks the chat's row, and returns it
    /// with the organization (read, not locked). `NotFound` when the organization has no
    /// such chat.
    async fn enter_chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<EnteredChat>;
    async fn agent(&mut self, organization_id: &str, agent_id: &str) -> DbResult<Agent>;
    async fn chat(&mut self, organization_id: &str, chat_id: &str) -> DbResult<Chat>;
    async fn insert_chat(&mut self, chat: &Chat) -> DbResult<()>;
    /// Writes every mutable column of `chat`.
    async fn update_chat(&mut self, chat: &Chat) -> DbResult<()>;
    /// The agents who accept chats of `group_id`, are reachable at `now`, with their load.
    async fn routing_candidates(
        &mut self,
        organization: &Organization,
        group_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<RoutingCandidate>>;
    /// The agent of the customer's most recent earlier chat.
    async fn previous_agent_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>>;
    /// The id of the customer's chat that is not closed yet, if any.
    async fn open_chat_of_customer(&mut self, customer_id: &str) -> DbResult<Option<String>>;
    async fn participants(&mut self, chat_id: &str) -> DbResult<Vec<(String, ParticipantRole)>>;
    async fn add_participant(
        &mut self,
        chat_id: &str,
        agent_id: &str,
        role: ParticipantRole,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Who hears chat `chat_id`'s events besides its assignee: the supervisors who joined
    /// it, and the active supervisors whose groups include `group_id` (or who have no
    /// groups); each once, in no set order. Admins and owners look chats up instead of
    /// hearing every one.
    async fn watchers(
        &mut self,
        chat_id: &str,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>>;
    /// Appends a transcript entry with the chat's next sequence number.
    async fn append_event(&mut self, event: &NewChatEvent) -> DbResult<ChatEvent>;
    /// [`ChatTx::append_event`], or nothing when the author already sent an entry with the
    /// event's client id: the chat's number may be spent, so look the earlier entry up and
    /// drop the transaction; committing it would leave a gap in the chat's numbers.
    async fn append_message(&mut self, event: &NewChatEvent) -> DbResult<Option<ChatEvent>>;
    /// The message an author already sent with this client id, if any.
    async fn message_by_client_id(
        &mut self,
        chat_id: &str,
        author_id: &str,
        client_id: &str,
    ) -> DbResult<Option<ChatEvent>>;
    /// Appends an entry to an agent's feed with their next sequence number.
    async fn append_feed(
        &mut self,
        agent_id: &str,
        kind: FeedKind,
        chat_id: Option<&str>,
        event: Option<&ChatEvent>,
        data: &FeedData,
        at: DateTime<Utc>,
    ) -> DbResult<FeedEntry>;
    async fn set_routing_status(&mut self, agent_id: &str, status: RoutingStatus) -> DbResult<()>;
    async fn mark_assigned(&mut self, agent_id: &str, at: DateTime<Utc>) -> DbResult<()>;
    /// The organization's queued chats, oldest first.
    async fn queued_chats(&mut self, organization_id: &str) -> DbResult<Vec<Chat>>;
    /// Whether the agent has a live connection at `now`.
    async fn agent_live(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// The devices a push of `kind` goes to: the agent's enabled devices, unless the agent
    /// switched `kind` off.
    async fn push_targets(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
    ) -> DbResult<Vec<PushDevice>>;
    async fn insert_push_job(&mut self, job: &PushJob) -> DbResult<()>;
    /// Pending jobs of this agent, kind and chat, to merge a new push into.
    async fn pending_push_jobs(
        &mut self,
        agent_id: &str,
        kind: NotificationKind,
        chat_id: Option<&str>,
    ) -> DbResult<Vec<String>>;
    async fn update_push_job_message(
        &mut self,
        job_id: &str,
        message: &crate::domain::PushMessage,
    ) -> DbResult<()>;
    /// Agents to tell that customers wait in `group_id`'s queue: accepting chats, with an
    /// enabled device, no live app, and no such push since `since`.
    async fn queue_push_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<String>>;
    /// How many chats wait in the organization's queue, not counting chat `except`.
    async fn queued_count(&mut self, organization_id: &str, except: Option<&str>) -> DbResult<i64>;
    /// Whether a chat given to the agent now would reach them: a live connection, the grace
    /// period after one, or an enabled push device.
    async fn agent_reachable(&mut self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// How many chats the organization started after `since`, and when the oldest of them
    /// started.
    async fn chats_started_since(
        &mut self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<(i64, Option<DateTime<Utc>>)>;
    /// The text of the chat's latest customer message.
    async fn latest_customer_message(&mut self, chat_id: &str) -> DbResult<Option<String>>;
    async fn customer_name(&mut self, customer_id: &str) -> DbResult<Option<String>>;
    /// The language the organization's transcripts are written in: its widget's locale.
    async fn transcript_locale(&mut self, organization_id: &str) -> DbResult<String>;
    async fn insert_offline_message(&mut self, message: &OfflineMessage) -> DbResult<()>;
    /// Active admins, owners and agents of the group (all agents for no group).
    async fn offline_message_recipients(
        &mut self,
        organization_id: &str,
        group_id: Option<&str>,
    ) -> DbResult<Vec<String>>;
    /// A greeting of the organization.
    async fn greeting(&mut self, organization_id: &str, id: &str) -> DbResult<Greeting>;
    /// Records that the greeting was answered by starting `chat_id`; false when it already was.
    async fn answer_greeting(
        &mut self,
        id: &str,
        chat_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool>;
    /// A tag of the organization (tags: `sql/tags.rs`).
    async fn tag(&mut self, organization_id: &str, id: &str) -> DbResult<Tag>;
    /// Puts the tag on the chat; false when it was there already.
    async fn add_chat_tag(
        &mut self,
        chat: &Chat,
        tag_id: &str,
        added_by: &str,
        at: DateTime<Utc>,
    ) -> DbResult<bool>;
    /// Takes the tag off the chat; false when it was not there.
    async fn remove_chat_tag(&mut self, chat_id: &str, tag_id: &str) -> DbResult<bool>;
    /// Links uploaded files to the message `event_id` sends them with: only files of `chat_id`
    /// uploaded by `uploader_id` and not sent yet. Returns how many were linked.
    async fn attach_files(
        &mut self,
        chat_id: &str,
        uploader_id: &str,
        event_id: &str,
        file_ids: &[String],
    ) -> DbResult<usize>;
    /// The organization's enabled webhook endpoints (webhooks: `sql/webhooks.rs`).
    async fn webhook_targets(&mut self, organization_id: &str) -> DbResult<Vec<WebhookEndpoint>>;
    /// Queues a webhook delivery: it goes out if and only if the change commits.
    async fn insert_webhook_delivery(&mut self, delivery: &WebhookDelivery) -> DbResult<()>;
    /// The Messenger user a customer is (page id, page-scoped id) and when they last wrote;
    /// `None` for a customer from elsewhere (Messenger: `sql/messenger.rs`).
    async fn messenger_recipient(
        &mut self,
        customer_id: &str,
    ) -> DbResult<Option<(String, String, DateTime<Utc>)>>;
    /// Queues a Send API call, due at once.
    async fn insert_messenger_send(&mut self, send: &MessengerSend) -> DbResult<()>;
    async fn commit(self: Box<Self>) -> DbResult<()>;
    /// Queues an email in this transaction: it goes out if and only if the change commits.
    async fn insert_email_job(&mut self, job: &EmailJob) -> DbResult<()>;
    /// The address the organization wants offline messages sent to, if it chose one.
    async fn offline_message_email(&mut self, organization_id: &str) -> DbResult<Option<String>>;
}

/// Files attached to messages, and each organization's limits on them. The bytes themselves
/// are in the file store, not here.
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn insert_file(&self, file: &StoredFile) -> DbResult<()>;
    /// The file, in any organization: a signed download URL names only the file.
    async fn file(&self, id: &str) -> DbResult<StoredFile>;
    /// The files of a chat with these ids (others are left out).
    async fn chat_files(&self, chat_id: &str, ids: &[String]) -> DbResult<Vec<StoredFile>>;
    /// The files sent with each of these messages, oldest first.
    async fn event_files(&self, event_ids: &[String]) -> DbResult<Vec<StoredFile>>;
    /// How many files the uploader has in the chat that no message has sent yet.
    async fn unsent_file_count(&self, chat_id: &str, uploader_id: &str) -> DbResult<i64>;
    /// Files uploaded before `before` and never sent, oldest first, at most `limit`.
    async fn unsent_files_before(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<StoredFile>>;
    /// Removes a file that no message has sent; false when there is none such.
    async fn delete_unsent_file(&self, id: &str) -> DbResult<bool>;
    /// The organization's limits; the defaults when its admins set none.
    async fn file_settings(&self, organization_id: &str) -> DbResult<FileSettings>;
    async fn set_file_settings(
        &self,
        organization_id: &str,
        settings: &FileSettings,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
}

/// Reports: numbers the database computes over an organization's chats and greetings.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// The report's rows for each part asked for, in that order: one row (total), one per
    /// last assignee, or one per day of the period. Asking for several parts at once lets
    /// the database read the period's chats once.
    async fn report(
        &self,
        scope: &ReportScope,
        period: &ReportPeriod,
        parts: &[ReportBy],
    ) -> DbResult<Vec<Vec<ReportRow>>>;
    /// Writes a generated data set in bulk, in one transaction (tests and the bench). Its
    /// organization, agents and groups must exist; its tags are created.
    async fn import_report_data(&self, data: &ReportData) -> DbResult<()>;
    /// Packs the organizations' days (UTC) that ended an hour before `now_ms`, are not
    /// packed, and whose chats have all closed, newest first, looking at `limit` days at
    /// most; how many it packed. Reports read a packed day instead of its chats.
    async fn pack_report_days(&self, now_ms: i64, limit: usize) -> DbResult<usize>;
    /// Refreshes the planner's statistics and the visibility map after a bulk import
    /// (Postgres; SQLite keeps no statistics unless asked, and servers never ask).
    async fn refresh_report_statistics(&self) -> DbResult<()>;
    /// Whether the organization has this tag.
    async fn report_tag_exists(&self, organization_id: &str, tag_id: &str) -> DbResult<bool>;
}

/// Canned responses. Visibility and ranking are the domain's; the store narrows by
/// organization and, for a `#shortcut` search, by prefix.
#[async_trait]
pub trait CannedStore: Send + Sync {
    /// The organization's responses whose shortcut starts with `shortcut_prefix` (all when
    /// `None`).
    async fn canned_responses(
        &self,
        organization_id: &str,
        shortcut_prefix: Option<&str>,
    ) -> DbResult<Vec<CannedResponse>>;
    async fn canned_response(&self, organization_id: &str, id: &str) -> DbResult<CannedResponse>;
    /// [`DbError::Conflict`] when its scope already has the shortcut.
    async fn insert_canned_response(&self, response: &CannedResponse) -> DbResult<()>;
    /// Writes shortcut, title, text, scope, group, owner and `updated_at`;
    /// [`DbError::NotFound`] when there is none, [`DbError::Conflict`] as on insert.
    async fn update_canned_response(&self, response: &CannedResponse) -> DbResult<()>;
    /// False when there was none.
    async fn delete_canned_response(&self, organization_id: &str, id: &str) -> DbResult<bool>;
    /// Counts one message sent from it.
    async fn count_canned_use(&self, organization_id: &str, id: &str) -> DbResult<()>;
}

/// Tags: the organization's, and those on a chat. Names are unique per organization
/// whatever the case.
#[async_trait]
pub trait TagStore: Send + Sync {
    /// The organization's tags, by name.
    async fn tags(&self, organization_id: &str) -> DbResult<Vec<Tag>>;
    /// The tags on a chat of the organization, by name.
    async fn chat_tags(&self, organization_id: &str, chat_id: &str) -> DbResult<Vec<Tag>>;
    /// [`DbError::Conflict`] when the organization has a tag of that name.
    async fn insert_tag(&self, tag: &Tag) -> DbResult<()>;
    /// Writes name and colour; [`DbError::NotFound`] when there is none, [`DbError::Conflict`]
    /// as on insert.
    async fn update_tag(&self, tag: &Tag) -> DbResult<()>;
    /// Deletes the tag and takes it off every chat; false when there was none.
    async fn delete_tag(&self, organization_id: &str, id: &str) -> DbResult<bool>;
}

/// Greetings sent to visitors on the site, and the rules that send them.
#[async_trait]
pub trait GreetingStore: Send + Sync {
    async fn insert_greeting(&self, greeting: &Greeting) -> DbResult<()>;
    /// Writes a greeting of rule `rule_id` unless the rule greeted the customer after
    /// `not_since`, with the customer locked meanwhile: nodes that look at the same visitor at
    /// once greet them once. Whether it was written.
    async fn insert_rule_greeting(
        &self,
        greeting: &Greeting,
        rule_id: &str,
        not_since: DateTime<Utc>,
    ) -> DbResult<bool>;
    async fn greeting(&self, organization_id: &str, id: &str) -> DbResult<Greeting>;
    /// The customer's latest greeting sent at `since` or later.
    async fn latest_greeting(
        &self,
        customer_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<Option<Greeting>>;
    /// Records that the greeting reached the visitor; false when it had before.
    async fn mark_greeting_shown(&self, id: &str, at: DateTime<Utc>) -> DbResult<bool>;
    /// Records that the visitor closed the greeting, unless they answered it or closed it
    /// before; returns it as it is then.
    async fn dismiss_greeting(
        &self,
        organization_id: &str,
        id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<Greeting>;
    /// When the rule last greeted the customer.
    async fn last_rule_greeting_at(
        &self,
        rule_id: &str,
        customer_id: &str,
    ) -> DbResult<Option<DateTime<Utc>>>;
    /// The customer's chat that is not closed yet, if any.
    async fn open_chat_of_customer(
        &self,
        organization_id: &str,
        customer_id: &str,
    ) -> DbResult<Option<Chat>>;
    /// The organization's rules, oldest first: the order they are tried in.
    async fn greeting_rules(&self, organization_id: &str) -> DbResult<Vec<GreetingRule>>;
    async fn greeting_rule(&self, organization_id: &str, id: &str) -> DbResult<GreetingRule>;
    async fn insert_greeting_rule(&self, rule: &GreetingRule) -> DbResult<()>;
    /// Writes every field an admin may change; [`DbError::NotFound`] when there is no such rule.
    async fn update_greeting_rule(&self, rule: &GreetingRule) -> DbResult<()>;
    /// Deletes the rule (its greetings stay); false when there was none.
    async fn delete_greeting_rule(&self, organization_id: &str, id: &str) -> DbResult<bool>;
    /// How the greetings of each of the organization's rules fared.
    async fn greeting_counts(
        &self,
        organization_id: &str,
    ) -> DbResult<Vec<(String, GreetingCounts)>>;
}

/// Reads and small writes of the chat use cases, outside transactions.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Starts a chat transaction.
    async fn begin(&self) -> DbResult<Box<dyn ChatTx>>;
    async fn organization_by_widget_key(&self, widget_key: &str) -> DbResult<Organization>;
    async fn update_organization_settings(
        &self,
        organization_id: &str,
        settings: &ChatSettings,
    ) -> DbResult<Organization>;
    /// Creates the customer, or updates the returning one whose secret the visit presents.
    /// A visit to a known visitor id with a missing or wrong secret creates a new customer
    /// under a new visitor id instead, and leaves the known one untouched.
    async fn record_visit(&self, visit: &CustomerVisit, new_id: &str) -> DbResult<RecordedVisit>;
    async fn customer(&self, organization_id: &str, customer_id: &str) -> DbResult<Customer>;
    async fn record_page_view(
        &self,
        organization_id: &str,
        customer_id: &str,
        url: &str,
        title: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<Customer>;
    /// The customer's most recent page views, newest first.
    async fn page_views(&self, customer_id: &str, limit: i64) -> DbResult<Vec<PageView>>;
    async fn chat(&self, organization_id: &str, chat_id: &str) -> DbResult<Chat>;
    /// Whether the agent had or joined the chat.
    async fn participated(&self, chat_id: &str, agent_id: &str) -> DbResult<bool>;
    /// Chats in `statuses`, of the given assignee or of everyone, newest first.
    async fn chats(
        &self,
        organization_id: &str,
        statuses: &[ChatStatus],
        assignee_id: Option<&str>,
    ) -> DbResult<Vec<Chat>>;
    /// The customer's chats, newest first.
    async fn customer_chats(&self, customer_id: &str) -> DbResult<Vec<Chat>>;
    /// Transcript entries after `after_seq`, oldest first; agents-only ones when asked.
    async fn chat_events(
        &self,
        chat_id: &str,
        after_seq: i64,
        limit: i64,
        include_agents_only: bool,
    ) -> DbResult<Vec<ChatEvent>>;
    /// The `limit` transcript entries before `before_seq`, newest first; agents-only ones when
    /// asked; only messages people wrote (no system entries) when asked.
    async fn chat_events_before(
        &self,
        chat_id: &str,
        before_seq: i64,
        limit: i64,
        include_agents_only: bool,
        messages_only: bool,
    ) -> DbResult<Vec<ChatEvent>>;
    async fn chat_event_seq(&self, chat_id: &str) -> DbResult<i64>;
    /// What the customer wrote in the chat after the agent's read marker, and notes other
    /// agents wrote there.
    async fn unread_count(&self, chat_id: &str, agent_id: &str) -> DbResult<i64>;
    /// Moves the agent's read marker to the chat's latest entry.
    async fn mark_chat_read(&self, chat_id: &str, agent_id: &str) -> DbResult<()>;
    /// Feed entries after `after_seq`, oldest first.
    async fn feed(&self, agent_id: &str, after_seq: i64, limit: i64) -> DbResult<Vec<FeedEntry>>;
    async fn feed_seq(&self, agent_id: &str) -> DbResult<i64>;
    /// Every active chat with its organization's settings, for the timers.
    async fn active_chats(&self) -> DbResult<Vec<(Chat, ChatSettings)>>;
    /// When the chat timers next have something to do, by their organizations' settings: the
    /// earliest missed acceptance, auto-close, auto-transfer, attention change or abandoned
    /// queued chat. Never later than the first of them; `now` when a stored attention is
    /// already out of date; `None` without active or queued chats. A deadline may be past
    /// when its action found nothing to do (an unanswered chat nobody else has room for).
    async fn next_timer_due(&self, now: DateTime<Utc>) -> DbResult<Option<DateTime<Utc>>>;
    /// Every agent of the organization with their load and reachability.
    async fn agent_loads(
        &self,
        organization_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Vec<AgentLoad>>;
    /// Records agents as reachable until `until`, with a live connection or not. Agents
    /// without a session (signed out of every app) are left as they are.
    async fn set_presence(
        &self,
        agent_ids: &[String],
        until: DateTime<Utc>,
        live: bool,
    ) -> DbResult<()>;
    /// The average length of chats closed in the last day, if any.
    async fn average_handle_seconds(&self, organization_id: &str) -> DbResult<Option<i64>>;
    /// How many chats the organization started after `since` (for availability; startChat
    /// counts inside its transaction).
    async fn chats_started_since(
        &self,
        organization_id: &str,
        since: DateTime<Utc>,
    ) -> DbResult<i64>;
    /// Records that the customer of a queued chat is connected now (their chatEvents
    /// subscription is open); a chat no longer queued is left alone.
    async fn renew_customer_presence(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()>;
    /// Queued chats, with their organizations, whose customer has had no live subscription
    /// and no activity for their organization's `queue_abandon_after` since they were queued.
    async fn abandoned_queued_chats(&self, now: DateTime<Utc>) -> DbResult<Vec<(String, String)>>;
    /// Records customer activity (typing), at most every few seconds per chat.
    async fn touch_customer_activity(&self, chat_id: &str, at: DateTime<Utc>) -> DbResult<()>;
    /// Marks the assignee as typing (or not) for the auto-transfer clock. When typing stops
    /// the clock restarts.
    async fn set_agent_typing(
        &self,
        chat_id: &str,
        typing: bool,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    async fn offline_messages(&self, organization_id: &str) -> DbResult<Vec<OfflineMessage>>;
    async fn offline_message(&self, organization_id: &str, id: &str) -> DbResult<OfflineMessage>;
    async fn set_offline_message_handled(
        &self,
        organization_id: &str,
        id: &str,
        handled: bool,
    ) -> DbResult<OfflineMessage>;
}

/// Push devices, preferences and the outbox.
#[async_trait]
pub trait PushStore: Send + Sync {
    /// Registers a device, or updates the one with the same token (which moves to this
    /// agent and is enabled again). A token registered in another organization stays there:
    /// [`DbError::Conflict`].
    async fn upsert_push_device(&self, device: &PushDevice) -> DbResult<PushDevice>;
    /// Removes the agent's device with this token; false when there was none.
    async fn delete_push_device(&self, agent_id: &str, token: &str) -> DbResult<bool>;
    async fn push_devices(&self, agent_id: &str) -> DbResult<Vec<PushDevice>>;
    /// The kinds the agent switched on or off (others are on).
    async fn push_preferences(&self, agent_id: &str) -> DbResult<Vec<(NotificationKind, bool)>>;
    async fn set_push_preference(
        &self,
        agent_id: &str,
        kind: NotificationKind,
        enabled: bool,
    ) -> DbResult<()>;
    /// Claims up to `limit` due jobs (pending and due, or claimed by a worker whose lock ran
    /// out) until `locked_until`, counting an attempt; with their devices.
    async fn claim_push_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(PushJob, PushDevice)>>;
    /// Records what became of a claimed job.
    async fn finish_push_job(
        &self,
        job_id: &str,
        status: PushJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    async fn disable_push_device(
        &self,
        device_id: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Jobs not yet sent, dead or cancelled.
    async fn push_outbox_depth(&self) -> DbResult<i64>;
    /// When the next pending job is due, if any.
    async fn next_push_due(&self) -> DbResult<Option<DateTime<Utc>>>;
    /// Jobs of an agent, newest first (for inspection).
    async fn push_jobs(&self, agent_id: &str) -> DbResult<Vec<PushJob>>;
    /// The agent's active chats with a customer message waiting for an answer: the badge.
    async fn unread_chats(&self, agent_id: &str) -> DbResult<i64>;
    /// Whether the agent has a live connection at `now`.
    async fn agent_live(&self, agent_id: &str, now: DateTime<Utc>) -> DbResult<bool>;
    /// A live connection acknowledges every assignment waiting for one.
    async fn acknowledge_assignments(&self, agent_id: &str) -> DbResult<()>;
}

/// What one delivery attempt came to, as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub status: crate::domain::DeliveryStatus,
    /// When the next attempt is due (for a delivery pending again).
    pub next_attempt_at: DateTime<Utc>,
    pub response_status: Option<i32>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
}

/// When an endpoint that keeps failing is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisablePolicy {
    /// Failed attempts in a row.
    pub after_failures: i32,
    /// Or failing (no success in between) for this long.
    pub after: std::time::Duration,
}

/// Webhook endpoints and their outbox of deliveries. Every method that takes an
/// `organization_id` narrows by it.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> DbResult<()>;
    /// The organization's endpoints, oldest first.
    async fn webhook_endpoints(&self, organization_id: &str) -> DbResult<Vec<WebhookEndpoint>>;
    /// [`DbError::NotFound`] when the organization has no such endpoint.
    async fn webhook_endpoint(&self, organization_id: &str, id: &str) -> DbResult<WebhookEndpoint>;
    /// Writes every field an admin or a rotation changes, and the failure counters.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> DbResult<()>;
    /// Deletes the endpoint and its deliveries; false when there was none.
    async fn delete_webhook_endpoint(&self, organization_id: &str, id: &str) -> DbResult<bool>;
    /// Queues a delivery outside a chat change (tests, redeliveries, sending a chat).
    async fn queue_webhook_delivery(&self, delivery: &WebhookDelivery) -> DbResult<()>;
    /// Queues `deliveries` in one transaction (an event outside a chat change).
    async fn queue_webhook_deliveries(&self, deliveries: &[WebhookDelivery]) -> DbResult<()>;
    /// An endpoint's deliveries, newest first, before `before_seq` when given; at most `limit`.
    async fn webhook_deliveries(
        &self,
        organization_id: &str,
        endpoint_id: &str,
        before_seq: Option<i64>,
        limit: i64,
    ) -> DbResult<Vec<WebhookDelivery>>;
    async fn webhook_delivery(&self, organization_id: &str, id: &str) -> DbResult<WebhookDelivery>;
    /// The chat's deliveries of `event`, newest first (what an agent sent to integrations).
    async fn chat_webhook_deliveries(
        &self,
        organization_id: &str,
        chat_id: &str,
        event: crate::domain::WebhookEvent,
    ) -> DbResult<Vec<WebhookDelivery>>;
    /// Claims up to `limit` due deliveries of enabled endpoints until `locked_until`,
    /// counting an attempt, with their endpoints. A delivery waits while an earlier one of its
    /// chat to the same endpoint is not finished: a chat's events arrive in order.
    async fn claim_webhook_deliveries(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(WebhookDelivery, WebhookEndpoint)>>;
    /// When the next pending delivery of an enabled endpoint is due, if any.
    async fn next_webhook_due(&self) -> DbResult<Option<DateTime<Utc>>>;
    /// Records an attempt's result and releases the delivery's lock.
    async fn finish_webhook_delivery(
        &self,
        id: &str,
        attempt: &DeliveryAttempt,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Records how the endpoint's latest attempt went. A failure that makes it break
    /// `policy` disables it and tells the organization's active admins and owners in their
    /// feeds: the endpoint and those feed entries are returned then.
    async fn record_webhook_result(
        &self,
        endpoint_id: &str,
        succeeded: bool,
        error: Option<&str>,
        policy: DisablePolicy,
        at: DateTime<Utc>,
    ) -> DbResult<Option<(WebhookEndpoint, Vec<FeedEntry>)>>;
}

/// Facebook Messenger: connected pages, the Messenger users who are customers, the message ids
/// taken in, and the Send API outbox (`sql/messenger.rs`).
#[async_trait]
pub trait MessengerStore: Send + Sync {
    /// The organization's pages, oldest first.
    async fn messenger_pages(&self, organization_id: &str) -> DbResult<Vec<MessengerPage>>;
    /// A page of the organization by our id.
    async fn messenger_page(&self, organization_id: &str, id: &str) -> DbResult<MessengerPage>;
    /// The page with Facebook's page id, in any organization: events name only that.
    async fn messenger_page_by_page_id(&self, page_id: &str) -> DbResult<Option<MessengerPage>>;
    /// Whether some page was connected with this verify token.
    async fn messenger_verify_token_known(&self, verify_token: &str) -> DbResult<bool>;
    /// Connects a page; a conflict when its page id is connected already.
    async fn insert_messenger_page(&self, page: &MessengerPage) -> DbResult<()>;
    /// Changes a page's token, secret, verify token, name and group.
    async fn update_messenger_page(&self, page: &MessengerPage) -> DbResult<()>;
    /// Disconnects a page; its customers and chats stay.
    async fn delete_messenger_page(&self, organization_id: &str, id: &str) -> DbResult<()>;
    /// The customer a Messenger user is, if they wrote before.
    async fn messenger_customer(
        &self,
        organization_id: &str,
        psid: &str,
    ) -> DbResult<Option<String>>;
    /// Makes a Messenger user a customer named `name` (keeping the one made first when two
    /// events race); the customer's id.
    #[allow(clippy::too_many_arguments)]
    async fn create_messenger_customer(
        &self,
        organization_id: &str,
        page_id: &str,
        psid: &str,
        name: &str,
        profile_pic: Option<&str>,
        new_customer_id: &str,
        at: DateTime<Utc>,
    ) -> DbResult<String>;
    /// Records that the user wrote at `at`: the messaging window starts again.
    async fn touch_messenger_customer(
        &self,
        organization_id: &str,
        psid: &str,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Takes an incoming message id in; false when it was taken in before.
    async fn claim_messenger_mid(&self, mid: &str, at: DateTime<Utc>) -> DbResult<bool>;
    /// Forgets an incoming message id whose message could not be stored, so a redelivery
    /// tries again.
    async fn release_messenger_mid(&self, mid: &str) -> DbResult<()>;
    /// Queues a sender action unless the same one for the same user was queued after `since`.
    async fn insert_messenger_action(
        &self,
        send: &MessengerSend,
        since: DateTime<Utc>,
    ) -> DbResult<bool>;
    /// The Messenger user of a chat (page id, page-scoped id), if it is a Messenger chat.
    async fn messenger_recipient_of_chat(
        &self,
        chat_id: &str,
    ) -> DbResult<Option<(String, String)>>;
    /// When the next pending send is due, if any.
    async fn next_messenger_send_due(&self) -> DbResult<Option<DateTime<Utc>>>;
    /// Claims due sends (or ones whose claim ran out) with their page's access token.
    async fn claim_messenger_sends(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<(MessengerSend, String)>>;
    /// Records an attempt's end: sent (with Facebook's message id), pending again, or failed.
    async fn finish_messenger_send(
        &self,
        id: &str,
        status: MessengerSendStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        mid: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
    /// Marks the user's messages sent up to `watermark` delivered (or read, with `read`);
    /// how many changed.
    async fn mark_messenger_receipts(
        &self,
        page_id: &str,
        psid: &str,
        watermark: DateTime<Utc>,
        read: bool,
    ) -> DbResult<u64>;
    /// What became of these messages, for those sent to Messenger.
    async fn message_deliveries(&self, event_ids: &[String]) -> DbResult<Vec<MessageDelivery>>;
}

/// Offline messages by email: the organization's chosen address, agents' replies, and the
/// email outbox (`email_jobs`).
#[async_trait]
pub trait EmailStore: Send + Sync {
    /// The address the organization wants offline messages sent to, if it chose one.
    async fn offline_message_email(&self, organization_id: &str) -> DbResult<Option<String>>;
    /// Chooses (or with `None` drops) that address.
    async fn set_offline_message_email(
        &self,
        organization_id: &str,
        email: Option<&str>,
    ) -> DbResult<()>;
    /// Keeps an agent's reply with its message, marks the message handled and queues the
    /// reply's email, in one transaction. NOT_FOUND when the message is not the
    /// organization's.
    async fn insert_offline_reply(&self, reply: &OfflineReply, job: &EmailJob) -> DbResult<()>;
    /// The replies to an offline message of the organization, oldest first, with how their
    /// emails fared.
    async fn offline_replies(
        &self,
        organization_id: &str,
        offline_message_id: &str,
    ) -> DbResult<Vec<OfflineReply>>;
    /// The emails about an offline message of the organization, oldest first.
    async fn email_jobs(
        &self,
        organization_id: &str,
        offline_message_id: &str,
    ) -> DbResult<Vec<EmailJob>>;
    /// When the next pending email is due, if any.
    async fn next_email_due(&self) -> DbResult<Option<DateTime<Utc>>>;
    /// Claims up to `limit` emails due at `now` (or whose claim expired) until `locked_until`.
    async fn claim_email_jobs(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: i64,
    ) -> DbResult<Vec<EmailJob>>;
    /// Records what became of a claimed email.
    async fn finish_email_job(
        &self,
        job_id: &str,
        status: EmailJobStatus,
        next_attempt_at: DateTime<Utc>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> DbResult<()>;
}

/// Who holds a lease on once-per-cluster work, as the database says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub name: String,
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    pub acquired_at: DateTime<Utc>,
}

/// What /metrics reads at each scrape: cheap counts over partial indexes, never a scan of
/// every chat ever held.
#[async_trait]
pub trait GaugeStore: Send + Sync {
    /// The first `limit` organizations in order of creation, as (id, name): the ones /metrics
    /// gives a label of their own.
    async fn first_organizations(&self, limit: i64) -> DbResult<Vec<(String, String)>>;
    /// Active and queued chats and accepting agents of each organization that has any.
    async fn organization_load(&self) -> DbResult<Vec<OrganizationLoad>>;
    /// Every outbox's backlog at `now`, all kinds listed.
    async fn outbox_backlog(&self, now: DateTime<Utc>) -> DbResult<Vec<OutboxBacklog>>;
}

/// What the nodes of a cluster share besides the data: leases on the work that must run on
/// one node at a time, and rate-limit windows every node counts against. Lease times are the
/// database's clock, so nodes whose clocks drift still agree on who holds a lease.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `length` from now (the database's
    /// clock): granted when nobody holds it, its lease ran out, or `holder` holds it already.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        length: std::time::Duration,
    ) -> DbResult<bool>;
    /// Gives the lease back, if `holder` still holds it, so another node takes it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> DbResult<()>;
    /// Every lease, held or run out, by name.
    async fn leases(&self) -> DbResult<Vec<LeaseHolder>>;
    /// Counts one attempt of `key` under the limit `scope` unless it used up `limit` within
    /// `window` (which starts at the key's first attempt), in one statement: attempts that
    /// arrive together on several nodes cannot all pass. `Err(wait)` says how long until the
    /// window ends.
    async fn count_attempt(
        &self,
        scope: &str,
        key: &str,
        limit: u32,
        window: std::time::Duration,
        now: DateTime<Utc>,
    ) -> DbResult<Result<(), std::time::Duration>>;
    /// Gives back one attempt counted by [`ClusterStore::count_attempt`].
    async fn refund_attempt(&self, scope: &str, key: &str) -> DbResult<()>;
    /// Forgets the attempts of `key` under `scope`, after a success.
    async fn clear_attempts(&self, scope: &str, key: &str) -> DbResult<()>;
    /// Deletes windows that started before `before` (ended for every limit); how many.
    async fn sweep_attempts(&self, before: DateTime<Utc>) -> DbResult<u64>;
}
