//! The agent client: sign-in, chats, messages, pushes and the live event stream.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use graphql_client::GraphQLQuery;
use switchboard_protocol::MAX_MESSAGE_CHARS;

use crate::chat_events::{self, ChatEventListener};
use crate::error::{Result, SdkError};
use crate::events::{EventListener, TaskHandle};
use crate::models::*;
use crate::ops;
use crate::outbox::{Outbox, OutgoingMessage};
use crate::runtime::{AbortOnDrop, Backoff, run, runtime};
use crate::session::{Auth, Session, SessionStore};
use crate::shared::Inner;
use crate::stream;
use crate::transport::Transport;
use crate::visitors::{self, Greeting, Visitor, VisitorsListener};

/// Where the server is and where the SDK may keep its files.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The server's address, e.g. "https://chat.example.com" (with or without "/graphql").
    pub server_url: String,
    /// A directory of the app's own (Application Support on iOS, `filesDir` on Android). The
    /// outbox and the event cursor live here, so they survive app restarts.
    pub data_dir: String,
}

/// One agent's connection to a Switchboard server.
#[derive(uniffi::Object)]
pub struct Client {
    inner: Arc<Inner>,
    _sender: AbortOnDrop,
}

impl Client {
    /// Runs one operation as the signed-in agent, on the SDK's runtime.
    async fn op<Q>(&self, variables: Q::Variables) -> Result<Q::ResponseData>
    where
        Q: GraphQLQuery + 'static,
        Q::Variables: Clone + Send + 'static,
        Q::ResponseData: Send + 'static,
    {
        let inner = self.inner.clone();
        run(async move { inner.auth.run::<Q>(variables).await }).await
    }

    /// Checks a message and puts it in the outbox for the sender.
    fn queue_message(
        &self,
        chat_id: String,
        text: String,
        canned_response_id: Option<String>,
        note: bool,
        file_ids: Vec<String>,
    ) -> Result<OutgoingMessage> {
        let agent_id = self.inner.agent_id()?;
        let length = text.chars().count();
        if (text.trim().is_empty() && file_ids.is_empty()) || length > MAX_MESSAGE_CHARS {
            return Err(SdkError::bad_input(format!(
                "a message has 1 to {MAX_MESSAGE_CHARS} characters; this one has {length}"
            )));
        }
        if chat_id.is_empty() {
            return Err(SdkError::bad_input("chat_id is empty"));
        }
        let message = self.inner.outbox.add(
            &agent_id,
            &chat_id,
            &text,
            canned_response_id.as_deref(),
            note,
            &file_ids,
        )?;
        self.inner.outbox_wake.notify_one();
        Ok(message)
    }
}

#[uniffi::export]
impl Client {
    /// A client for the server at `config.server_url`. Messages an earlier run left unsent
    /// go out as soon as there is a session (after `login` or `restore`).
    #[uniffi::constructor]
    pub fn new(config: ClientConfig, session_store: Box<dyn SessionStore>) -> Result<Arc<Client>> {
        let transport = Transport::new(&config.server_url)?;
        let data_dir = PathBuf::from(&config.data_dir);
        let outbox = Outbox::open(&data_dir)?;
        let inner = Arc::new(Inner::new(
            Auth::new(transport, session_store),
            data_dir,
            outbox,
        ));
        let sender = runtime().spawn(send_outbox(inner.clone()));
        Ok(Arc::new(Client {
            inner,
            _sender: AbortOnDrop(sender.abort_handle()),
        }))
    }

    /// Signs in. The session goes to the `SessionStore` and is kept fresh from then on.
    pub async fn login(&self, email: String, password: String) -> Result<Agent> {
        let inner = self.inner.clone();
        run(async move {
            let (_, agent) = inner.auth.login(&email, &password).await?;
            inner.outbox_wake.notify_one();
            Ok(agent)
        })
        .await
    }

    /// Resumes a session the app kept from an earlier run. Works offline: the tokens are
    /// checked (and refreshed) on first use; an expired session shows as `Unauthenticated`.
    pub fn restore(&self, session: Session) {
        self.inner.auth.restore(session);
        self.inner.outbox_wake.notify_one();
    }

    /// The current session, if signed in.
    pub fn session(&self) -> Option<Session> {
        self.inner.auth.session()
    }

    /// Signs out here and on the server, and drops messages this agent left unsent.
    pub async fn logout(&self) -> Result<()> {
        let inner = self.inner.clone();
        run(async move {
            let agent_id = inner.auth.session().map(|s| s.agent_id);
            inner.auth.logout().await?;
            if let Some(agent_id) = agent_id {
                inner.outbox.forget_agent(&agent_id);
            }
            Ok(())
        })
        .await
    }

    /// The signed-in agent as the server knows them now.
    pub async fn me(&self) -> Result<Agent> {
        let data = self.op::<ops::Me>(ops::me::Variables).await?;
        Ok(data.me.into())
    }

    /// Whether the agent gets new chats; all their apps hear of it.
    pub async fn set_routing_status(&self, status: RoutingStatus) -> Result<Agent> {
        use ops::set_routing_status::RoutingStatus as S;
        let status = match status {
            RoutingStatus::AcceptingChats => S::AcceptingChats,
            RoutingStatus::NotAcceptingChats => S::NotAcceptingChats,
            RoutingStatus::Offline => S::Offline,
        };
        let data = self
            .op::<ops::SetRoutingStatus>(ops::set_routing_status::Variables { status })
            .await?;
        Ok(data.set_routing_status.into())
    }

    /// The agent's active chats, newest first.
    pub async fn my_chats(&self) -> Result<Vec<Chat>> {
        let data = self.op::<ops::MyChats>(ops::my_chats::Variables).await?;
        Ok(data.my_chats.into_iter().map(Into::into).collect())
    }

    /// Customers waiting in the queues the agent serves, next first.
    pub async fn queue(&self) -> Result<Vec<QueueEntry>> {
        let data = self.op::<ops::Queue>(ops::queue::Variables).await?;
        Ok(data
            .queue
            .into_iter()
            .map(|entry| QueueEntry {
                chat: entry.chat.into(),
                position: entry.position,
                wait_seconds: entry.wait_seconds,
                estimated_wait_seconds: entry.estimated_wait_seconds,
            })
            .collect())
    }

    /// One chat and a page of its transcript: `first` entries (1 to 100) after `after` (a
    /// message's cursor; none for the start).
    pub async fn chat(&self, id: String, after: Option<String>, first: u32) -> Result<ChatDetail> {
        if !(1..=100).contains(&first) {
            return Err(SdkError::bad_input("first must be between 1 and 100"));
        }
        let data = self
            .op::<ops::ChatDetail>(ops::chat_detail::Variables {
                id,
                after,
                first: i64::from(first),
            })
            .await?;
        let chat = data.chat;
        Ok(ChatDetail {
            messages: chat.events.items.into_iter().map(Into::into).collect(),
            start_cursor: chat.events.start_cursor,
            end_cursor: chat.events.end_cursor,
            has_more: chat.events.has_more,
            chat: chat.chat_fields.into(),
        })
    }

    /// One chat and the end of its transcript, oldest first: the `last` messages (1 to 100)
    /// before `before` (a message's cursor; none for the latest). What a chat screen opens
    /// with; page back with `start_cursor` while `has_more`.
    pub async fn chat_latest(
        &self,
        id: String,
        before: Option<String>,
        last: u32,
    ) -> Result<ChatDetail> {
        if !(1..=100).contains(&last) {
            return Err(SdkError::bad_input("last must be between 1 and 100"));
        }
        let data = self
            .op::<ops::ChatLatest>(ops::chat_latest::Variables {
                id,
                before,
                last: i64::from(last),
            })
            .await?;
        let chat = data.chat;
        Ok(ChatDetail {
            messages: chat
                .latest_events
                .items
                .into_iter()
                .map(Into::into)
                .collect(),
            start_cursor: chat.latest_events.start_cursor,
            end_cursor: chat.latest_events.end_cursor,
            has_more: chat.latest_events.has_more,
            chat: chat.chat_fields.into(),
        })
    }

    /// Takes a chat from the queue, whatever the agent's limit.
    pub async fn take_chat(&self, chat_id: String) -> Result<Chat> {
        let data = self
            .op::<ops::TakeChat>(ops::take_chat::Variables { chat_id })
            .await?;
        Ok(data.take_chat.into())
    }

    /// Joins a chat of your groups as its supervisor: you may write in it from then on, and
    /// the customer sees that you joined. Supervisors, admins and owners; `Forbidden` for
    /// others, `NotFound` for a chat outside your groups.
    pub async fn join_chat(&self, chat_id: String) -> Result<Chat> {
        let data = self
            .op::<ops::JoinChat>(ops::join_chat::Variables { chat_id })
            .await?;
        Ok(data.join_chat.into())
    }

    /// The organization's groups (departments), for transferring a chat to one.
    pub async fn groups(&self) -> Result<Vec<NamedRef>> {
        let data = self.op::<ops::Groups>(ops::groups::Variables).await?;
        Ok(data
            .groups
            .into_iter()
            .map(|g| NamedRef {
                id: g.id,
                name: g.name,
            })
            .collect())
    }

    /// Hands a chat to another agent or a group, with a note the customer does not see. An
    /// agent who cannot be reached now is refused (CONFLICT) unless a supervisor or admin
    /// passes `force`.
    pub async fn transfer_chat(
        &self,
        chat_id: String,
        target: TransferTarget,
        note: Option<String>,
        force: bool,
    ) -> Result<Chat> {
        let (to_agent_id, to_group_id) = match target {
            TransferTarget::Agent { agent_id } => (Some(agent_id), None),
            TransferTarget::Group { group_id } => (None, Some(group_id)),
        };
        let input = ops::transfer_chat::TransferChatInput {
            chat_id,
            to_agent_id,
            to_group_id,
            note,
            force: Some(force),
        };
        let data = self
            .op::<ops::TransferChat>(ops::transfer_chat::Variables { input })
            .await?;
        Ok(data.transfer_chat.into())
    }

    /// Who a chat could go to, least loaded first.
    pub async fn agents_for_transfer(&self, chat_id: String) -> Result<Vec<TransferCandidate>> {
        let data = self
            .op::<ops::AgentsForTransfer>(ops::agents_for_transfer::Variables { chat_id })
            .await?;
        Ok(data
            .agents_for_transfer
            .into_iter()
            .map(|c| TransferCandidate {
                agent: c.agent.into(),
                active_chats: c.active_chats,
                chat_limit: c.chat_limit,
                routable: c.routable,
                reachable: c.reachable,
            })
            .collect())
    }

    pub async fn close_chat(&self, chat_id: String) -> Result<Chat> {
        let data = self
            .op::<ops::CloseChat>(ops::close_chat::Variables { chat_id })
            .await?;
        Ok(data.close_chat.into())
    }

    /// The agent has read the chat up to now: its `unread_count` is 0 on every device of
    /// theirs until the customer writes again.
    pub async fn mark_chat_read(&self, chat_id: String) -> Result<()> {
        self.op::<ops::MarkChatRead>(ops::mark_chat_read::Variables { chat_id })
            .await?;
        Ok(())
    }

    /// Says the agent is typing (or stopped); the customer sees "typing...".
    pub async fn set_typing(&self, chat_id: String, is_typing: bool) -> Result<()> {
        self.op::<ops::SetTyping>(ops::set_typing::Variables { chat_id, is_typing })
            .await?;
        Ok(())
    }

    /// Queues a message and returns it at once as PENDING. The SDK delivers it, retrying
    /// across reconnects and app restarts, until the server has it (SENT) or refuses it for
    /// good (FAILED); subscribers hear both through `on_outgoing_message`.
    pub fn send_message(&self, chat_id: String, text: String) -> Result<OutgoingMessage> {
        self.queue_message(chat_id, text, None, false, Vec::new())
    }

    /// [`Client::send_message`] for a note: a message for the chat's agents only (visibility
    /// AGENTS), never shown to the customer and no reply to them. Whoever may write in the
    /// chat sends one; a supervisor who may watch it sends one without joining (a whisper).
    pub fn send_note(&self, chat_id: String, text: String) -> Result<OutgoingMessage> {
        self.queue_message(chat_id, text, None, true, Vec::new())
    }

    /// [`Client::send_message`] for a text written from a canned response (usually what
    /// `render_canned_response` gave, perhaps edited): the server counts one use of it when
    /// the message arrives, once however often the outbox retries.
    pub fn send_canned_response(
        &self,
        chat_id: String,
        text: String,
        canned_response_id: String,
    ) -> Result<OutgoingMessage> {
        if canned_response_id.is_empty() {
            return Err(SdkError::bad_input("canned_response_id is empty"));
        }
        self.queue_message(chat_id, text, Some(canned_response_id), false, Vec::new())
    }

    /// Uploads a file into a chat the agent takes part in; send it with `send_files`. The
    /// organization's limits apply (`file_settings`): a file too large fails with
    /// FILE_TOO_LARGE, a type not accepted with FILE_TYPE_NOT_ALLOWED.
    pub async fn upload_file(
        &self,
        chat_id: String,
        bytes: Vec<u8>,
        name: String,
        content_type: String,
    ) -> Result<UploadedFile> {
        if chat_id.is_empty() || bytes.is_empty() {
            return Err(SdkError::bad_input(
                "chat_id and the file's bytes are required",
            ));
        }
        let inner = self.inner.clone();
        let body = run(async move {
            let token = inner.auth.access_token().await?;
            inner
                .auth
                .transport
                .upload_file(&token, &chat_id, &name, &content_type, bytes)
                .await
        })
        .await?;
        let text = |field: &str| body[field].as_str().unwrap_or_default().to_owned();
        Ok(UploadedFile {
            id: text("id"),
            name: text("name"),
            content_type: text("contentType"),
            size: body["size"].as_i64().unwrap_or_default(),
            is_image: body["isImage"].as_bool().unwrap_or_default(),
        })
    }

    /// [`Client::send_message`] with files uploaded by `upload_file`; `text` may be empty.
    pub fn send_files(
        &self,
        chat_id: String,
        text: String,
        file_ids: Vec<String>,
    ) -> Result<OutgoingMessage> {
        if file_ids.is_empty() || file_ids.iter().any(String::is_empty) {
            return Err(SdkError::bad_input("file_ids must name at least one file"));
        }
        self.queue_message(chat_id, text, None, false, file_ids)
    }

    /// An attachment's `url` (relative to the server) as a whole URL to download or show.
    pub fn file_url(&self, url: String) -> Result<String> {
        self.inner.auth.transport.absolute_url(&url)
    }

    /// What files the organization accepts.
    pub async fn file_settings(&self) -> Result<FileSettings> {
        let data = self
            .op::<ops::FileSettings>(ops::file_settings::Variables {})
            .await?;
        Ok(FileSettings {
            max_file_bytes: data.file_settings.max_file_bytes,
            allowed_types: data.file_settings.allowed_types,
        })
    }

    /// The signed-in agent's messages not yet on the server (PENDING) or refused (FAILED),
    /// oldest first.
    pub fn outbox(&self) -> Vec<OutgoingMessage> {
        match self.inner.agent_id() {
            Ok(agent_id) => self.inner.outbox.list(&agent_id),
            Err(_) => Vec::new(),
        }
    }

    /// Sends a FAILED message again.
    pub fn retry_message(&self, client_id: String) -> Result<OutgoingMessage> {
        let message = self.inner.outbox.retry(&client_id)?;
        self.inner.outbox_wake.notify_one();
        Ok(message)
    }

    /// Drops a message from the outbox.
    pub fn discard_message(&self, client_id: String) -> Result<()> {
        self.inner.outbox.discard(&client_id)
    }

    /// Registers this phone for pushes; with a device, an agent who accepts chats gets them
    /// while the app is closed.
    pub async fn register_push_device(&self, device: PushDeviceRegistration) -> Result<PushDevice> {
        use ops::register_push_device as op;
        let input = op::RegisterPushDeviceInput {
            platform: match device.platform {
                Platform::Ios => op::Platform::Ios,
                Platform::Android => op::Platform::Android,
                Platform::Web => op::Platform::Web,
            },
            token: device.token,
            app_id: device.app_id,
            environment: match device.environment {
                PushEnvironment::Sandbox => op::PushEnvironment::Sandbox,
                PushEnvironment::Production => op::PushEnvironment::Production,
            },
            locale: device.locale,
            device_name: device.device_name,
            web_push: device.web_push.map(|keys| op::WebPushSubscriptionInput {
                p256dh: keys.p256dh,
                auth: keys.auth,
            }),
        };
        let data = self
            .op::<ops::RegisterPushDevice>(op::Variables { input })
            .await?;
        Ok(data.register_push_device.into())
    }

    /// The server's VAPID public key (base64url), for a web view or browser to subscribe with
    /// (`pushManager.subscribe({applicationServerKey})`) before registering a `Web` device.
    pub async fn web_push_public_key(&self) -> Result<String> {
        let data = self
            .op::<ops::WebPushPublicKey>(ops::web_push_public_key::Variables)
            .await?;
        Ok(data.web_push_public_key)
    }

    /// Stops pushes to a device (at logout, say); false when it was not registered.
    pub async fn unregister_push_device(&self, token: String) -> Result<bool> {
        let data = self
            .op::<ops::UnregisterPushDevice>(ops::unregister_push_device::Variables { token })
            .await?;
        Ok(data.unregister_push_device)
    }

    /// Which kinds of push the agent gets.
    pub async fn notification_preferences(&self) -> Result<Vec<NotificationPreference>> {
        let data = self
            .op::<ops::NotificationPreferences>(ops::notification_preferences::Variables)
            .await?;
        Ok(data
            .notification_preferences
            .into_iter()
            .filter_map(|p| {
                Option::<NotificationKind>::from(p.kind).map(|kind| NotificationPreference {
                    kind,
                    enabled: p.enabled,
                })
            })
            .collect())
    }

    /// Switches kinds of push on or off; returns every kind.
    pub async fn set_notification_preferences(
        &self,
        preferences: Vec<NotificationPreference>,
    ) -> Result<Vec<NotificationPreference>> {
        use ops::update_notification_preferences as op;
        let preferences = preferences
            .into_iter()
            .map(|p| op::NotificationPreferenceInput {
                kind: match p.kind {
                    NotificationKind::NewChat => op::NotificationKind::NewChat,
                    NotificationKind::TransferredChat => op::NotificationKind::TransferredChat,
                    NotificationKind::NewMessage => op::NotificationKind::NewMessage,
                    NotificationKind::QueuedCustomers => op::NotificationKind::QueuedCustomers,
                    NotificationKind::OfflineMessage => op::NotificationKind::OfflineMessage,
                    NotificationKind::MissedChat => op::NotificationKind::MissedChat,
                },
                enabled: p.enabled,
            })
            .collect();
        let data = self
            .op::<ops::UpdateNotificationPreferences>(op::Variables { preferences })
            .await?;
        Ok(data
            .update_notification_preferences
            .into_iter()
            .filter_map(|p| {
                Option::<NotificationKind>::from(p.kind).map(|kind| NotificationPreference {
                    kind,
                    enabled: p.enabled,
                })
            })
            .collect())
    }

    /// Starts the live event stream. It reconnects by itself with backoff and jitter and
    /// resumes after the last event delivered (also after an app restart), so the listener
    /// sees every event once. Runs until the handle is dropped or cancelled, or the session
    /// ends (`ConnectionState::SignedOut`).
    pub fn subscribe(&self, listener: Box<dyn EventListener>) -> Arc<TaskHandle> {
        let listener: Arc<dyn EventListener> = Arc::from(listener);
        let guard = self.inner.add_listener(listener.clone());
        let inner = self.inner.clone();
        let task = runtime().spawn(async move {
            let _guard = guard;
            stream::run(inner, listener).await;
        });
        Arc::new(TaskHandle {
            task: task.abort_handle(),
        })
    }

    /// The visitors on the site now, longest there first: whatever your role or status.
    pub async fn visitors_on_site(&self) -> Result<Vec<Visitor>> {
        let data = self
            .op::<ops::VisitorsOnSite>(ops::visitors_on_site::Variables)
            .await?;
        Ok(data.visitors_on_site.into_iter().map(Into::into).collect())
    }

    /// Greets a visitor on the site: their widget shows it at once, and if they answer, the
    /// chat starts with it and comes to you when you can take it. CONFLICT when they left or
    /// are already chatting.
    pub async fn send_greeting(&self, customer_id: String, text: String) -> Result<Greeting> {
        let data = self
            .op::<ops::SendGreeting>(ops::send_greeting::Variables { customer_id, text })
            .await?;
        Ok(data.send_greeting.into())
    }

    /// A report of a period (see the server's README for each number): agents get their own
    /// numbers, supervisors their groups', admins and owners the organization's.
    pub async fn report(&self, input: ReportInput) -> Result<Report> {
        let data = self
            .op::<ops::Report>(ops::report::Variables {
                input: ops::report::ReportInput {
                    from: input.from,
                    to: input.to,
                    time_zone: input.time_zone.unwrap_or_else(|| "UTC".into()),
                    group_id: input.group_id,
                    agent_id: input.agent_id,
                    tag_id: input.tag_id,
                },
            })
            .await?;
        Ok(data.report.into())
    }

    /// The canned responses you may use, best first: the organization's, your groups', your
    /// own. `search`: "#ship" or "ship" matches shortcuts starting with it; other words
    /// match titles and texts. `first`: 1 to 50.
    pub async fn canned_responses(
        &self,
        search: Option<String>,
        first: u32,
    ) -> Result<Vec<CannedResponse>> {
        let data = self
            .op::<ops::CannedResponses>(ops::canned_responses::Variables {
                search,
                first: i64::from(first),
            })
            .await?;
        Ok(data.canned_responses.into_iter().map(Into::into).collect())
    }

    /// The canned responses you may change, for a screen that manages them: as an admin or
    /// owner every shared one (a group's too when you are not in it), and your own.
    pub async fn manageable_canned_responses(&self, first: u32) -> Result<Vec<CannedResponse>> {
        let data = self
            .op::<ops::ManageableCannedResponses>(ops::manageable_canned_responses::Variables {
                first: i64::from(first),
            })
            .await?;
        Ok(data.canned_responses.into_iter().map(Into::into).collect())
    }

    /// The response's text with its placeholders filled for the chat's customer and you:
    /// what to show in the reply box before sending it with `send_canned_response`.
    pub async fn render_canned_response(&self, id: String, chat_id: String) -> Result<String> {
        let data = self
            .op::<ops::RenderCannedResponse>(ops::render_canned_response::Variables { id, chat_id })
            .await?;
        Ok(data.render_canned_response)
    }

    /// Adds a canned response: PERSONAL for anyone, shared for admins and owners. CONFLICT
    /// when the shortcut is taken for the same people.
    pub async fn create_canned_response(
        &self,
        input: CannedResponseInput,
    ) -> Result<CannedResponse> {
        let data = self
            .op::<ops::CreateCannedResponse>(ops::create_canned_response::Variables {
                input: input.into(),
            })
            .await?;
        Ok(data.create_canned_response.into())
    }

    /// Replaces a canned response's fields; its usage count stays.
    pub async fn update_canned_response(
        &self,
        id: String,
        input: CannedResponseInput,
    ) -> Result<CannedResponse> {
        let data = self
            .op::<ops::UpdateCannedResponse>(ops::update_canned_response::Variables {
                id,
                input: input.into(),
            })
            .await?;
        Ok(data.update_canned_response.into())
    }

    /// Deletes a canned response you manage.
    pub async fn delete_canned_response(&self, id: String) -> Result<bool> {
        let data = self
            .op::<ops::DeleteCannedResponse>(ops::delete_canned_response::Variables { id })
            .await?;
        Ok(data.delete_canned_response)
    }

    /// The organization's tags, by name.
    pub async fn tags(&self) -> Result<Vec<Tag>> {
        let data = self.op::<ops::Tags>(ops::tags::Variables).await?;
        Ok(data.tags.into_iter().map(Into::into).collect())
    }

    /// The tags on a chat you may see, by name.
    pub async fn chat_tags(&self, chat_id: String) -> Result<Vec<Tag>> {
        let data = self
            .op::<ops::ChatTags>(ops::chat_tags::Variables { chat_id })
            .await?;
        Ok(data.chat.tags.into_iter().map(Into::into).collect())
    }

    /// Puts a tag on a chat (during it or after it) and returns the chat's tags. The chat's
    /// agent, whoever took part, its group's supervisors and admins may.
    pub async fn add_chat_tag(&self, chat_id: String, tag_id: String) -> Result<Vec<Tag>> {
        let data = self
            .op::<ops::AddChatTag>(ops::add_chat_tag::Variables { chat_id, tag_id })
            .await?;
        Ok(data.add_chat_tag.tags.into_iter().map(Into::into).collect())
    }

    /// Takes a tag off a chat and returns the chat's tags.
    pub async fn remove_chat_tag(&self, chat_id: String, tag_id: String) -> Result<Vec<Tag>> {
        let data = self
            .op::<ops::RemoveChatTag>(ops::remove_chat_tag::Variables { chat_id, tag_id })
            .await?;
        Ok(data
            .remove_chat_tag
            .tags
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Adds a tag to the organization. Admins and owners; CONFLICT when the name is taken.
    pub async fn create_tag(&self, input: TagInput) -> Result<Tag> {
        let data = self
            .op::<ops::CreateTag>(ops::create_tag::Variables {
                input: input.into(),
            })
            .await?;
        Ok(data.create_tag.into())
    }

    /// Renames or recolours a tag. Admins and owners.
    pub async fn update_tag(&self, id: String, input: TagInput) -> Result<Tag> {
        let data = self
            .op::<ops::UpdateTag>(ops::update_tag::Variables {
                id,
                input: input.into(),
            })
            .await?;
        Ok(data.update_tag.into())
    }

    /// Deletes a tag and takes it off every chat. Admins and owners.
    pub async fn delete_tag(&self, id: String) -> Result<bool> {
        let data = self
            .op::<ops::DeleteTag>(ops::delete_tag::Variables { id })
            .await?;
        Ok(data.delete_tag)
    }

    /// The chats of your groups you may watch: for supervisors and admins, and for every
    /// agent (read only) when the organization lets agents see their groups' chats.
    pub async fn team_chats(&self) -> Result<Vec<Chat>> {
        let data = self
            .op::<ops::TeamChats>(ops::team_chats::Variables)
            .await?;
        Ok(data.team_chats.into_iter().map(Into::into).collect())
    }

    /// Whether plain agents may read the chats of their groups.
    pub async fn agents_see_group_chats(&self) -> Result<bool> {
        let data = self
            .op::<ops::AgentsSeeGroupChats>(ops::agents_see_group_chats::Variables)
            .await?;
        Ok(data.organization.settings.agents_see_group_chats)
    }

    /// Lets plain agents read the chats of their groups (or not). Admins and owners.
    pub async fn set_agents_see_group_chats(&self, on: bool) -> Result<bool> {
        let data = self
            .op::<ops::SetAgentsSeeGroupChats>(ops::set_agents_see_group_chats::Variables { on })
            .await?;
        Ok(data
            .update_organization_settings
            .settings
            .agents_see_group_chats)
    }

    // ---- archive, customer profiles, bans ---------------------------------------------------

    /// Every chat you may see, open or closed, newest first, narrowed by `filter` (with a
    /// full-text `search`, each item carries a snippet). `first`: 1 to 50; `after`: the
    /// previous page's `end_cursor`.
    pub async fn archive(
        &self,
        filter: ArchiveFilter,
        first: u32,
        after: Option<String>,
    ) -> Result<ArchivePage> {
        let data = self
            .op::<ops::Archive>(ops::archive::Variables {
                filter: Some(filter.into()),
                first: i64::from(first),
                after,
            })
            .await?;
        Ok(data.archive.into())
    }

    /// A customer with what agents added, their ban in force, and the first `first_chats`
    /// (1 to 50) of their chats you may see.
    pub async fn customer_profile(&self, id: String, first_chats: u32) -> Result<CustomerProfile> {
        let data = self
            .op::<ops::CustomerProfile>(ops::customer_profile::Variables {
                id,
                first: i64::from(first_chats),
            })
            .await?;
        let customer = data.customer;
        let chats: ArchivePage = customer.chats.into();
        let mut profile: CustomerProfile = customer.customer_profile_fields.into();
        profile.chats = Some(chats);
        Ok(profile)
    }

    /// Changes a customer's name, first name, email, phone, note or custom fields.
    pub async fn update_customer(
        &self,
        id: String,
        update: CustomerUpdate,
    ) -> Result<CustomerProfile> {
        let data = self
            .op::<ops::UpdateCustomer>(ops::update_customer::Variables {
                id,
                input: update.into(),
            })
            .await?;
        Ok(data.update_customer.into())
    }

    /// Bans a customer (supervisors, admins, owners): they cannot start chats or leave
    /// offline messages until it ends. Replaces a ban in force.
    pub async fn ban_customer(&self, customer_id: String, ban: BanInput) -> Result<CustomerBan> {
        if ban.reason.trim().is_empty() {
            return Err(SdkError::bad_input("a ban needs a reason"));
        }
        let data = self
            .op::<ops::BanCustomer>(ops::ban_customer::Variables {
                customer_id,
                input: ops::ban_customer::BanCustomerInput {
                    reason: ban.reason,
                    duration_seconds: ban.duration_seconds,
                    include_address: ban.include_address,
                },
            })
            .await?;
        Ok(data.ban_customer.into())
    }

    /// Lifts a customer's ban; false when none was in force.
    pub async fn unban_customer(&self, customer_id: String) -> Result<bool> {
        let data = self
            .op::<ops::UnbanCustomer>(ops::unban_customer::Variables { customer_id })
            .await?;
        Ok(data.unban_customer)
    }

    /// Watches the visitors on the site: the listener gets the whole list at once and again
    /// after every change (the server coalesces them, a couple of seconds apart at most). It
    /// reconnects by itself with backoff and starts from a fresh list. Runs until the handle
    /// is dropped or cancelled, or the session ends.
    pub fn watch_visitors(&self, listener: Box<dyn VisitorsListener>) -> Arc<TaskHandle> {
        let listener: Arc<dyn VisitorsListener> = Arc::from(listener);
        let inner = self.inner.clone();
        let task = runtime().spawn(visitors::run(inner, listener));
        Arc::new(TaskHandle {
            task: task.abort_handle(),
        })
    }

    /// Follows one chat live: each transcript entry after `since` (from the start when
    /// `None`; pass the `end_cursor` of the page on screen to get only what is new), then
    /// typing and the queue position as they happen. For a supervisor watching a chat of
    /// their groups (see `team_chats`) as for the chat's agent. After a lost connection it
    /// reconnects with backoff and resumes after the last entry delivered. Runs until the
    /// handle is dropped or cancelled, the session ends, or the server refuses the chat
    /// (`on_refused`).
    pub fn chat_events(
        &self,
        chat_id: String,
        since: Option<String>,
        listener: Box<dyn ChatEventListener>,
    ) -> Arc<TaskHandle> {
        let listener: Arc<dyn ChatEventListener> = Arc::from(listener);
        let inner = self.inner.clone();
        let task = runtime().spawn(chat_events::run(inner, chat_id, since, listener));
        Arc::new(TaskHandle {
            task: task.abort_handle(),
        })
    }

    /// Tries the event stream and the outbox again now instead of waiting out their backoff,
    /// e.g. when the phone's network comes back or the app returns to the foreground.
    pub fn reconnect_now(&self) {
        self.inner.network_back.notify_waiters();
        self.inner.outbox_wake.notify_one();
    }

    /// The offline messages you may read (your groups'; all for admins), newest first, each
    /// with the answers agents emailed.
    pub async fn offline_messages(&self) -> Result<Vec<OfflineMessageThread>> {
        let data = self
            .op::<ops::OfflineMessages>(ops::offline_messages::Variables {})
            .await?;
        Ok(data.offline_messages.into_iter().map(Into::into).collect())
    }

    /// Answers an offline message by email: the server emails `text` (1 to 4000 characters)
    /// to the customer from the organization, keeps it with the message and marks the message
    /// handled. The reply's `delivery` says how far the email got. Fails with the code
    /// EMAIL_NOT_CONFIGURED when the server has no SMTP server.
    pub async fn reply_to_offline_message(
        &self,
        offline_message_id: String,
        text: String,
    ) -> Result<OfflineMessageThread> {
        if text.trim().is_empty() {
            return Err(SdkError::bad_input("a reply needs text"));
        }
        let data = self
            .op::<ops::ReplyToOfflineMessage>(ops::reply_to_offline_message::Variables {
                id: offline_message_id,
                text,
            })
            .await?;
        Ok(data.reply_to_offline_message.into())
    }
}

#[uniffi::export]
impl Client {
    /// Marks an offline message as dealt with (`handled: true`) or back to open, for the
    /// inbox's filter. Whoever may read it may mark it.
    pub async fn mark_offline_message_handled(
        &self,
        offline_message_id: String,
        handled: bool,
    ) -> Result<OfflineMessageThread> {
        let data = self
            .op::<ops::MarkOfflineMessageHandled>(ops::mark_offline_message_handled::Variables {
                id: offline_message_id,
                handled,
            })
            .await?;
        Ok(data.mark_offline_message_handled.into())
    }
}

/// The sender: delivers the outbox in order, one message at a time.
async fn send_outbox(inner: Arc<Inner>) {
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let mut sessions = inner.auth.watch();
    loop {
        let Some(agent_id) = inner.auth.session().map(|s| s.agent_id) else {
            let _ = sessions.changed().await;
            continue;
        };
        let Some(pending) = inner.outbox.next(&agent_id) else {
            inner.outbox_wake.notified().await;
            continue;
        };
        let result = inner
            .auth
            .run::<ops::SendMessage>(ops::send_message::Variables {
                chat_id: pending.chat_id,
                text: pending.text,
                client_id: pending.client_id.clone(),
                canned_response_id: pending.canned_response_id,
                visibility: Some(if pending.note {
                    ops::send_message::Visibility::Agents
                } else {
                    ops::send_message::Visibility::Public
                }),
                file_ids: Some(pending.file_ids).filter(|ids| !ids.is_empty()),
            })
            .await;
        let update = match result {
            Ok(data) => {
                backoff.reset();
                tracing::debug!(client_id = %pending.client_id, "message delivered");
                inner
                    .outbox
                    .sent(&pending.client_id, data.send_message.into())
            }
            Err(SdkError::Unauthenticated { .. }) => {
                // Kept for when this agent signs in again.
                let _ = sessions.changed().await;
                continue;
            }
            Err(err) if err.is_transient() => {
                let mut delay = backoff.next_delay();
                if let SdkError::RateLimited {
                    retry_after_secs, ..
                } = &err
                {
                    delay = delay.max(Duration::from_secs(*retry_after_secs));
                }
                tracing::debug!(%err, ?delay, "message not sent yet");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = inner.outbox_wake.notified() => {}
                    _ = inner.network_back.notified() => {}
                }
                continue;
            }
            Err(err) => {
                tracing::info!(client_id = %pending.client_id, %err, "message refused");
                inner
                    .outbox
                    .failed(&pending.client_id, err.code(), err.msg())
            }
        };
        if let Some(update) = update {
            inner.announce(&update);
        }
    }
}

/// Send to integration: a chat's transcript and customer to a CRM or ticketing system.
#[uniffi::export]
impl Client {
    /// The integrations you may send chats to.
    pub async fn integrations(&self) -> Result<Vec<Integration>> {
        let data = self
            .op::<ops::Integrations>(ops::integrations::Variables)
            .await?;
        Ok(data.integrations.into_iter().map(Into::into).collect())
    }

    /// Sends a chat you may see (its transcript, your notes only if the integration takes
    /// notes, and its customer) to an integration; follow it with `chat_integration_sends`.
    pub async fn send_chat_to_integration(
        &self,
        chat_id: String,
        integration_id: String,
    ) -> Result<IntegrationSend> {
        let data = self
            .op::<ops::SendChatToIntegration>(ops::send_chat_to_integration::Variables {
                chat_id,
                endpoint_id: integration_id,
            })
            .await?;
        Ok(data.send_chat_to_integration.into())
    }

    /// What was sent of a chat to integrations, newest first, and how each went.
    pub async fn chat_integration_sends(&self, chat_id: String) -> Result<Vec<IntegrationSend>> {
        let data = self
            .op::<ops::ChatIntegrationSends>(ops::chat_integration_sends::Variables { chat_id })
            .await?;
        Ok(data
            .chat_integration_sends
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
