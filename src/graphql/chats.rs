//! Chats: starting and answering them, the queue, transfers, offline messages and visitors'
//! sessions, with their GraphQL types. A chat's fields are read through the chat views, which
//! check that the caller may see the chat, and the agents, groups and customers chats
//! reference come from the loaders.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use tokio::sync::OnceCell;

use crate::domain;
use crate::error::Error;
use crate::graphql::accounts::{Agent, Group, RoutingStatus};
use crate::graphql::{ApiResult, ContextExt, limits, loaders};
use crate::services::chats;
use crate::services::widget::VisitorIdentity;

/// Where a chat is in its life.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::ChatStatus")]
pub enum ChatStatus {
    /// Waiting for an agent with room.
    Queued,
    /// An agent has it.
    Active,
    /// Over.
    Closed,
}

/// Where a chat came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Channel")]
pub enum Channel {
    Widget,
    Messenger,
    Api,
}

/// The colour of a chat's circle.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Attention")]
pub enum Attention {
    Normal,
    /// Red: the customer's last message has waited too long for an answer.
    WaitingLong,
    /// Grey: the customer has been silent for a while; the chat does not count toward the
    /// agent's limit.
    CustomerIdle,
}

/// Who wrote a message.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::AuthorKind")]
pub enum AuthorKind {
    Agent,
    Customer,
    System,
}

/// A customer's verdict.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Rating")]
pub enum Rating {
    Good,
    Bad,
}

/// What a transcript entry is: a message written by someone, or a system event with a
/// sentence to show.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::ChatEventKind")]
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
    /// `tags` again.
    TagsChanged,
}

/// Who may see a transcript entry.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Visibility")]
pub enum Visibility {
    /// The customer and the agents.
    Public,
    /// Agents only: a note, a whisper, a transfer note. Never reaches the customer.
    Agents,
}

/// A conversation. Loaded on first use, so `chat { id }` in an event costs nothing; loaded
/// and read through the chat views, which check that the caller may see it.
pub struct Chat {
    id: String,
    loaded: OnceCell<domain::Chat>,
}

impl Chat {
    /// A chat a use case already read for the caller.
    pub fn loaded(chat: domain::Chat) -> Self {
        Chat {
            id: chat.id.clone(),
            loaded: OnceCell::new_with(Some(chat)),
        }
    }

    /// A chat read when a field other than `id` is asked for, if the caller may see it then.
    pub fn lazy(id: &str) -> Self {
        Chat {
            id: id.to_owned(),
            loaded: OnceCell::new(),
        }
    }

    async fn get(&self, ctx: &Context<'_>) -> ApiResult<&domain::Chat> {
        self.loaded
            .get_or_try_init(|| async {
                let caller = ctx.caller()?;
                Ok(ctx.services().chat_views.chat(&caller, &self.id).await?)
            })
            .await
    }
}

#[Object]
impl Chat {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    async fn status(&self, ctx: &Context<'_>) -> ApiResult<ChatStatus> {
        Ok(self.get(ctx).await?.status.into())
    }

    async fn channel(&self, ctx: &Context<'_>) -> ApiResult<Channel> {
        Ok(self.get(ctx).await?.channel.into())
    }

    /// NORMAL, or red (WAITING_LONG) or grey (CUSTOMER_IDLE).
    async fn attention(&self, ctx: &Context<'_>) -> ApiResult<Attention> {
        Ok(self.get(ctx).await?.attention.into())
    }

    /// Who the chat is with: email, location, current page, page history, visits.
    async fn customer(&self, ctx: &Context<'_>) -> ApiResult<Customer> {
        let chat = self.get(ctx).await?;
        let customer = loaders::customer(ctx, &chat.organization_id, &chat.customer_id).await?;
        Ok(Customer::of_chat(customer, &chat.id))
    }

    /// The agent who has the chat. Agents only; customers read `assigneeName`.
    async fn assignee(&self, ctx: &Context<'_>) -> ApiResult<Option<Agent>> {
        ctx.principal()?;
        let chat = self.get(ctx).await?;
        match &chat.assignee_id {
            Some(id) => Ok(Some(Agent(
                loaders::agent(ctx, &chat.organization_id, id).await?,
            ))),
            None => Ok(None),
        }
    }

    /// The name of the agent who has the chat, as the customer sees it.
    async fn assignee_name(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let chat = self.get(ctx).await?;
        match &chat.assignee_id {
            Some(id) => Ok(Some(
                loaders::agent(ctx, &chat.organization_id, id).await?.name,
            )),
            None => Ok(None),
        }
    }

    async fn group(&self, ctx: &Context<'_>) -> ApiResult<Option<Group>> {
        let chat = self.get(ctx).await?;
        let Some(group_id) = &chat.group_id else {
            return Ok(None);
        };
        let groups =
            loaders::groups(ctx, &chat.organization_id, std::slice::from_ref(group_id)).await?;
        Ok(groups.into_iter().next().map(Group))
    }

    async fn created_at(&self, ctx: &Context<'_>) -> ApiResult<DateTime<Utc>> {
        Ok(self.get(ctx).await?.created_at)
    }

    async fn queued_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.queued_at)
    }

    async fn assigned_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.assigned_at)
    }

    async fn first_response_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.first_response_at)
    }

    async fn closed_at(&self, ctx: &Context<'_>) -> ApiResult<Option<DateTime<Utc>>> {
        Ok(self.get(ctx).await?.closed_at)
    }

    async fn rating(&self, ctx: &Context<'_>) -> ApiResult<Option<Rating>> {
        Ok(self.get(ctx).await?.rating.map(Into::into))
    }

    async fn rating_comment(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(self.get(ctx).await?.rating_comment.clone())
    }

    /// Seconds the customer has waited in the queue, while queued.
    async fn wait_seconds(&self, ctx: &Context<'_>) -> ApiResult<Option<i64>> {
        let chat = self.get(ctx).await?;
        Ok(chat
            .queued_at
            .filter(|_| chat.status == domain::ChatStatus::Queued)
            .map(|at| (Utc::now() - at).num_seconds().max(0)))
    }

    /// The transcript, oldest first, `first` entries after the cursor `after` (a message's
    /// `cursor`). Customers see what is meant for them; agents also see transfer notes.
    #[graphql(
        complexity = "limits::paged_list_cost(first, limits::MAX_EVENTS_PAGE, child_complexity)"
    )]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 50)] first: i32,
    ) -> ApiResult<ChatEventPage> {
        limits::page_size("first", first, limits::MAX_EVENTS_PAGE)?;
        let after = crate::services::streams::parse_cursor(after.as_deref())?.unwrap_or(0);
        let mut events = ctx
            .services()
            .chat_views
            .events_after(&ctx.caller()?, &self.id, after, i64::from(first) + 1)
            .await?;
        let has_more = events.len() > first as usize;
        events.truncate(first as usize);
        Ok(ChatEventPage {
            start_cursor: events.first().map(|e| e.seq.to_string()),
            end_cursor: events.last().map(|e| e.seq.to_string()),
            items: events.into_iter().map(Message).collect(),
            has_more,
        })
    }

    /// The end of the transcript, oldest first: the `last` entries before the cursor `before`
    /// (or the latest ones). What a chat screen shows first; `hasMore` says whether older
    /// entries exist, and `startCursor` is the `before` for them.
    #[graphql(
        complexity = "limits::paged_list_cost(last, limits::MAX_EVENTS_PAGE, child_complexity)"
    )]
    async fn latest_events(
        &self,
        ctx: &Context<'_>,
        before: Option<String>,
        #[graphql(default = 50)] last: i32,
    ) -> ApiResult<ChatEventPage> {
        limits::page_size("last", last, limits::MAX_EVENTS_PAGE)?;
        let before = crate::services::streams::parse_cursor(before.as_deref())?.unwrap_or(i64::MAX);
        let mut events = self
            .events_before(ctx, before, i64::from(last) + 1, false)
            .await?;
        let has_more = events.len() > last as usize;
        events.truncate(last as usize);
        events.reverse();
        Ok(ChatEventPage {
            start_cursor: events.first().map(|e| e.seq.to_string()),
            end_cursor: events.last().map(|e| e.seq.to_string()),
            items: events.into_iter().map(Message).collect(),
            has_more,
        })
    }

    /// Messages the customer wrote, and notes other agents wrote, since the signed-in agent
    /// last read the chat (`markChatRead`), on any of their devices; 0 for customers.
    async fn unread_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        Ok(ctx
            .services()
            .chat_views
            .unread_count(&ctx.caller()?, &self.id)
            .await?)
    }

    /// The organization's tags on the chat, by name. Agents only.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn tags(&self, ctx: &Context<'_>) -> ApiResult<Vec<crate::graphql::tags::Tag>> {
        let principal = ctx.principal()?;
        let chat = self.get(ctx).await?;
        let tags = ctx.services().tags.on_chat(principal, chat).await?;
        Ok(tags.into_iter().map(crate::graphql::tags::Tag).collect())
    }

    /// The latest message someone wrote (not a system entry): the preview in a list of chats.
    async fn last_message(&self, ctx: &Context<'_>) -> ApiResult<Option<Message>> {
        let events = self.events_before(ctx, i64::MAX, 1, true).await?;
        Ok(events.into_iter().next().map(Message))
    }
}

impl Chat {
    /// Entries before `before`, newest first, as the caller may see them.
    async fn events_before(
        &self,
        ctx: &Context<'_>,
        before: i64,
        limit: i64,
        messages_only: bool,
    ) -> ApiResult<Vec<domain::ChatEvent>> {
        Ok(ctx
            .services()
            .chat_views
            .events_before(&ctx.caller()?, &self.id, before, limit, messages_only)
            .await?)
    }
}

/// A page of a transcript.
#[derive(SimpleObject)]
pub struct ChatEventPage {
    pub items: Vec<Message>,
    /// The first item's cursor: pass it as `before` to `latestEvents` for older entries.
    pub start_cursor: Option<String>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_more: bool,
}

/// A transcript entry: a message or a system event.
pub struct Message(pub domain::ChatEvent);

#[Object]
impl Message {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Where this entry sits in the chat's stream; pass it as `since` or `after`.
    async fn cursor(&self) -> String {
        self.0.seq.to_string()
    }

    async fn chat_id(&self) -> ID {
        ID(self.0.chat_id.clone())
    }

    async fn kind(&self) -> MessageKind {
        self.0.kind.into()
    }

    async fn text(&self) -> &str {
        &self.0.text
    }

    /// The id the sender chose to make resending harmless.
    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    async fn author(&self) -> AuthorKind {
        self.0.author_kind.into()
    }

    async fn author_id(&self) -> Option<ID> {
        self.0.author_id.clone().map(ID)
    }

    async fn author_name(&self) -> Option<&str> {
        self.0.author_name.as_deref()
    }

    async fn visibility(&self) -> Visibility {
        self.0.visibility.into()
    }

    /// Files sent with the message: images to show inline, others to download.
    // Priced flat: a page's attachments load in one query, a message has at most 10 and most
    // none, and a transcript page at its largest must stay within the default limit.
    #[graphql(complexity = "2")]
    async fn attachments(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<crate::graphql::files::Attachment>> {
        crate::graphql::files::attachments_of(ctx, &self.0).await
    }

    /// For an agent's message to a Messenger customer: how far it got (sent, delivered,
    /// read, or failed and why). Null for every other message.
    #[graphql(complexity = "2")]
    async fn delivery(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Option<crate::graphql::messenger::MessageDelivery>> {
        crate::graphql::messenger::delivery_of(ctx, &self.0).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A website visitor or Messenger user, as reached: through a chat the caller may see, or as
/// the customer of a visitor session.
pub struct Customer {
    customer: domain::Customer,
    /// The chat it was reached through; `None` for the customer's own session.
    via_chat: Option<String>,
}

impl Customer {
    /// The customer of a chat, read for a caller who may see the chat.
    pub fn of_chat(customer: domain::Customer, chat_id: &str) -> Self {
        Customer {
            customer,
            via_chat: Some(chat_id.to_owned()),
        }
    }

    /// The customer a visitor session or a page update of their own returned.
    pub fn own(customer: domain::Customer) -> Self {
        Customer {
            customer,
            via_chat: None,
        }
    }

    /// A visitor on the site, read by an agent of their organization.
    pub fn on_site(customer: domain::Customer) -> Self {
        Customer {
            customer,
            via_chat: None,
        }
    }
}

/// A page a customer viewed.
#[derive(SimpleObject)]
pub struct Page {
    pub url: String,
    pub title: Option<String>,
    pub viewed_at: DateTime<Utc>,
}

#[Object]
impl Customer {
    async fn id(&self) -> ID {
        ID(self.customer.id.clone())
    }

    async fn visitor_id(&self) -> &str {
        &self.customer.visitor_id
    }

    async fn name(&self) -> Option<&str> {
        self.customer.name.as_deref()
    }

    /// As an agent set it on the profile, or the first word of their name: what
    /// `{{customer.first_name}}` becomes.
    async fn first_name(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        Ok(ctx.services().archive.first_name(&self.customer).await?)
    }

    async fn email(&self) -> Option<&str> {
        self.customer.email.as_deref()
    }

    /// The shop's own id for the customer, when a signed identity proved it.
    async fn external_id(&self) -> Option<&str> {
        self.customer.external_id.as_deref()
    }

    /// Where they are, when the widget says so (Switchboard ships no GeoIP database).
    async fn location(&self) -> Option<&str> {
        self.customer.location.as_deref()
    }

    async fn ip_address(&self) -> Option<&str> {
        self.customer.ip_address.as_deref()
    }

    /// The page they are on now.
    async fn current_page(&self) -> Option<Page> {
        self.customer.current_page_url.clone().map(|url| Page {
            url,
            title: self.customer.current_page_title.clone(),
            viewed_at: self.customer.last_seen_at,
        })
    }

    /// The pages they viewed, newest first.
    #[graphql(
        complexity = "limits::paged_list_cost(first, limits::MAX_PAGE_HISTORY, child_complexity)"
    )]
    async fn page_history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> ApiResult<Vec<Page>> {
        let first = limits::page_size("first", first, limits::MAX_PAGE_HISTORY)? as i64;
        let views = &ctx.services().chat_views;
        let pages = match &self.via_chat {
            Some(chat_id) => {
                let caller = ctx.caller()?;
                views
                    .chat_customer_pages(&caller, chat_id, &self.customer.id, first)
                    .await?
            }
            None => views.own_pages(&self.customer, first).await?,
        };
        Ok(pages
            .into_iter()
            .map(|view| Page {
                url: view.url,
                title: view.title,
                viewed_at: view.viewed_at,
            })
            .collect())
    }

    async fn referrer(&self) -> Option<&str> {
        self.customer.referrer.as_deref()
    }

    async fn user_agent(&self) -> Option<&str> {
        self.customer.user_agent.as_deref()
    }

    /// How many visitor sessions they started.
    async fn visits(&self) -> i32 {
        self.customer.visits
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.customer.created_at
    }

    async fn last_seen_at(&self) -> DateTime<Utc> {
        self.customer.last_seen_at
    }
}

/// A customer's session, from the widget.
#[derive(SimpleObject)]
pub struct VisitorSession {
    /// Send it as `Authorization: Bearer <token>` or in connection_init.
    pub token: String,
    /// Keep it in the browser: the next visit with it (and `visitorSecret`) is the same
    /// customer.
    pub visitor_id: String,
    /// Keep it in the browser with `visitorId` and send both on the next visit. Returned only
    /// by the session that issued it (a new customer, or one from before visitor secrets);
    /// null when the session presented it. Agents never see it.
    pub visitor_secret: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub customer: Customer,
}

/// Whether to offer a chat or the offline form.
#[derive(SimpleObject)]
pub struct Availability {
    /// A chat started now would be accepted: an agent of the group accepts chats and has
    /// room, or the queue has. False: offer the offline form.
    pub online: bool,
    /// Agents accept chats, but none can start now: every agent is busy and the queue is at
    /// its limit, or too many chats started in the last minute. (online is false then.)
    pub queue_full: bool,
    /// Customers waiting for the group asked (every one waiting, when no group is asked).
    pub queue_length: i64,
    /// About how long a new chat would wait for an agent; 0 when someone has room.
    pub estimated_wait_seconds: i64,
    /// The asking visitor is banned (asked with their own visitor token): chats and offline
    /// messages are unavailable to them, and online is false. Always false for anyone else.
    pub banned: bool,
}

/// A waiting customer.
#[derive(SimpleObject)]
pub struct QueueEntry {
    pub chat: Chat,
    /// 1 is next.
    pub position: i64,
    /// How long they have waited.
    pub wait_seconds: i64,
    pub estimated_wait_seconds: i64,
}

/// An agent a chat could be transferred to.
#[derive(SimpleObject)]
pub struct TransferCandidate {
    pub agent: Agent,
    pub active_chats: i64,
    pub chat_limit: i64,
    /// Accepting chats and reachable now.
    pub routable: bool,
    /// A transfer would reach them now: an app open (or just closed), or a phone for pushes,
    /// and not offline. Others can only be forced.
    pub reachable: bool,
}

/// A note a customer left while nobody was available.
pub struct OfflineMessage(pub domain::OfflineMessage);

#[Object]
impl OfflineMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn text(&self) -> &str {
        &self.0.text
    }

    async fn group_id(&self) -> Option<ID> {
        self.0.group_id.clone().map(ID)
    }

    /// Whether an agent has dealt with it.
    async fn handled(&self) -> bool {
        self.0.handled
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Agents' answers, emailed to the customer, oldest first.
    async fn replies(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<crate::graphql::email::OfflineMessageReply>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .chats
            .offline_message_replies(principal, &self.0.id)
            .await?
            .into_iter()
            .map(crate::graphql::email::OfflineMessageReply)
            .collect())
    }
}

/// What the widget knows when a visitor opens it.
#[derive(InputObject)]
pub struct StartVisitorSessionInput {
    /// The organization's public widget key.
    pub widget_key: String,
    /// The id the widget keeps for this browser (letters, digits, '-', '_'); omitted on a
    /// first visit, and returned in the session.
    pub visitor_id: Option<String>,
    /// The secret the session that issued `visitorId` returned. Without it (or with a wrong
    /// one) a known `visitorId` starts a new customer under a new `visitorId`.
    pub visitor_secret: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    /// Free text such as "Berlin, Germany".
    pub location: Option<String>,
    pub page_url: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    /// A logged-in shop customer's id, signed by the shop's server: the same customer on
    /// every device, whatever `visitorId` says. A wrong signature is FORBIDDEN.
    pub identity: Option<VisitorIdentityInput>,
}

/// Who a logged-in shop customer is, as the shop's server vouches.
#[derive(InputObject)]
pub struct VisitorIdentityInput {
    /// The shop's own id for the customer (1 to 200 characters).
    pub user_id: String,
    /// HMAC-SHA256 of `userId` with the organization's `identitySecret`, in hex. Compute it
    /// on the shop's server; the secret must never reach a browser.
    pub signature: String,
}

#[derive(InputObject)]
pub struct StartChatInput {
    /// The customer's first message (1 to 4000 characters).
    pub message: String,
    /// The department to talk to; omitted: anyone (or the group of the greeting's rule).
    pub group_id: Option<ID>,
    /// The greeting this chat answers: it becomes the chat's first message, in its agent's
    /// name, and the chat goes to that agent when they can take it (routed otherwise).
    pub greeting_id: Option<ID>,
}

#[derive(InputObject)]
pub struct LeaveOfflineMessageInput {
    pub name: String,
    pub email: String,
    pub text: String,
    pub group_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateVisitorPageInput {
    pub url: String,
    pub title: Option<String>,
}

#[derive(InputObject)]
pub struct RateChatInput {
    pub chat_id: ID,
    pub rating: Rating,
    pub comment: Option<String>,
}

#[derive(InputObject)]
pub struct SendMessageInput {
    pub chat_id: ID,
    /// 1 to 4000 characters; empty is allowed when `fileIds` are given.
    pub text: String,
    /// Any id unique to the sender (a UUID); sending again with it returns the first message
    /// instead of a duplicate.
    pub client_id: Option<String>,
    /// The canned response the text came from (agents only): counts one use of it.
    pub canned_response_id: Option<ID>,
    /// AGENTS: a note for the chat's agents, never shown to the customer, and no reply to
    /// them. Agents only (a customer gets FORBIDDEN); a supervisor who may watch the chat
    /// sends one without joining it (a whisper). Default PUBLIC.
    #[graphql(default_with = "Visibility::Public")]
    pub visibility: Visibility,
    /// Files the sender uploaded to this chat (`POST /files`) and sends with this message, at
    /// most 10; with files the text may be empty.
    pub file_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct SetTypingInput {
    pub chat_id: ID,
    pub is_typing: bool,
    /// What the customer has typed so far (the agents' sneak peek). Ignored for agents.
    pub draft: Option<String>,
}

/// Exactly one of `toAgentId` and `toGroupId`.
#[derive(InputObject)]
pub struct TransferChatInput {
    pub chat_id: ID,
    pub to_agent_id: Option<ID>,
    pub to_group_id: Option<ID>,
    /// For the next agent; the customer does not see it.
    pub note: Option<String>,
    /// Transfer even to an agent who cannot be reached now (no app open, no phone) or is
    /// offline; supervisors and admins only. Without it (null or false) such a transfer is a
    /// CONFLICT.
    pub force: Option<bool>,
}

/// Availability, chats, the queue, offline messages, transfer candidates.
#[derive(Default)]
pub struct ChatsQuery;

#[Object]
impl ChatsQuery {
    /// Whether a chat can start now, for a widget choosing between chat and offline form:
    /// for the group `groupId` (the one startChat will be given), or any. Public.
    async fn availability(
        &self,
        ctx: &Context<'_>,
        widget_key: String,
        group_id: Option<ID>,
    ) -> ApiResult<Availability> {
        let a = ctx
            .services()
            .chats
            .availability(
                &widget_key,
                group_id.as_ref().map(|id| id.as_str()),
                ctx.origin(),
            )
            .await?;
        let banned = match ctx.data_opt::<crate::graphql::RequestAuth>() {
            Some(crate::graphql::RequestAuth::Customer(customer)) => {
                ctx.services()
                    .chats
                    .is_banned(customer, &widget_key, ctx.client_addr())
                    .await?
            }
            _ => false,
        };
        Ok(Availability {
            banned,
            online: a.online && !banned,
            queue_full: a.queue_full,
            queue_length: a.queue_length,
            estimated_wait_seconds: a.estimated_wait_seconds,
        })
    }

    /// The signed-in agent's active chats, newest first.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn my_chats(&self, ctx: &Context<'_>) -> ApiResult<Vec<Chat>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .chats
            .my_chats(principal)
            .await?
            .into_iter()
            .map(Chat::loaded)
            .collect())
    }

    /// Customers waiting for an agent, oldest first: those of the agent's groups (all, for
    /// admins).
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn queue(&self, ctx: &Context<'_>) -> ApiResult<Vec<QueueEntry>> {
        let principal = ctx.principal()?;
        let now = chrono::Utc::now();
        Ok(ctx
            .services()
            .chats
            .queue(principal)
            .await?
            .into_iter()
            .map(|entry| QueueEntry {
                wait_seconds: entry
                    .chat
                    .queued_at
                    .map(|at| (now - at).num_seconds().max(0))
                    .unwrap_or(0),
                position: entry.position,
                estimated_wait_seconds: entry.estimated_wait_seconds,
                chat: Chat::loaded(entry.chat),
            })
            .collect())
    }

    /// Active and queued chats of the supervisor's groups (every group for admins).
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn team_chats(&self, ctx: &Context<'_>) -> ApiResult<Vec<Chat>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .chats
            .team_chats(principal)
            .await?
            .into_iter()
            .map(Chat::loaded)
            .collect())
    }

    /// Notes customers left while nobody was available, newest first.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn offline_messages(&self, ctx: &Context<'_>) -> ApiResult<Vec<OfflineMessage>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .chats
            .offline_messages(principal)
            .await?
            .into_iter()
            .map(OfflineMessage)
            .collect())
    }

    /// One chat: agents see the chats they may; customers their own.
    async fn chat(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Chat> {
        let caller = ctx.caller()?;
        Ok(Chat::loaded(
            ctx.services().chats.chat_for(&caller, &id).await?,
        ))
    }

    /// Who a chat could go to, least loaded first.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn agents_for_transfer(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
    ) -> ApiResult<Vec<TransferCandidate>> {
        let principal = ctx.principal()?;
        let org = ctx.services().accounts.organization(principal).await?;
        Ok(ctx
            .services()
            .chats
            .agents_for_transfer(principal, &chat_id)
            .await?
            .into_iter()
            .map(|load| TransferCandidate {
                chat_limit: i64::from(load.agent.effective_chat_limit(&org.settings)),
                routable: load.agent.routable(load.reachable),
                reachable: load.reachable
                    && load.agent.routing_status != crate::domain::RoutingStatus::Offline,
                active_chats: load.active_chats,
                agent: Agent(load.agent),
            })
            .collect())
    }
}

/// Visitors' sessions, chats and their messages, routing status, transfers, offline messages.
#[derive(Default)]
pub struct ChatsMutation;

#[Object]
impl ChatsMutation {
    /// Starts a customer's session from the widget. Public; a known `visitorId` with its
    /// `visitorSecret` is the same customer again, with one more visit; without the secret it
    /// is a new customer.
    async fn start_visitor_session(
        &self,
        ctx: &Context<'_>,
        input: StartVisitorSessionInput,
    ) -> ApiResult<VisitorSession> {
        let services = ctx.services();
        let input = chats::VisitorSessionInput {
            widget_key: input.widget_key,
            visitor_id: input.visitor_id,
            visitor_secret: input.visitor_secret,
            name: input.name,
            email: input.email,
            location: input.location,
            page_url: input.page_url,
            page_title: input.page_title,
            referrer: input.referrer,
            user_agent: input.user_agent,
            origin: ctx.origin().map(str::to_owned),
            identity: input.identity.map(|identity| VisitorIdentity {
                user_id: identity.user_id,
                signature: identity.signature,
            }),
        };
        let session = services
            .chats
            .start_visitor_session(&services.auth, input, ctx.client_addr())
            .await?;
        Ok(VisitorSession {
            token: session.token,
            visitor_id: session.customer.visitor_id.clone(),
            visitor_secret: session.visitor_secret,
            expires_at: session.expires_at,
            customer: Customer::own(session.customer),
        })
    }

    /// A customer starts a chat: ACTIVE when an agent got it, QUEUED when all are busy, or
    /// the error AGENTS_OFFLINE when nobody accepts chats.
    async fn start_chat(&self, ctx: &Context<'_>, input: StartChatInput) -> ApiResult<Chat> {
        let customer = ctx.customer()?;
        let group = input.group_id.as_ref().map(|id| id.as_str());
        Ok(Chat::loaded(
            ctx.services()
                .chats
                .start_chat(
                    customer,
                    &input.message,
                    group,
                    input.greeting_id.as_ref().map(|id| id.as_str()),
                    ctx.client_addr(),
                )
                .await?,
        ))
    }

    /// A customer leaves a note for the team.
    async fn leave_offline_message(
        &self,
        ctx: &Context<'_>,
        input: LeaveOfflineMessageInput,
    ) -> ApiResult<OfflineMessage> {
        let customer = ctx.customer()?;
        let input = chats::OfflineMessageInput {
            name: input.name,
            email: input.email,
            text: input.text,
            group_id: input.group_id.map(|id| id.0),
        };
        Ok(OfflineMessage(
            ctx.services()
                .chats
                .leave_offline_message(customer, input)
                .await?,
        ))
    }

    /// The widget reports the page the customer is on; agents see it and the history, and,
    /// while the visitor is on the site, the page and its time in `visitorsOnSite`.
    async fn update_visitor_page(
        &self,
        ctx: &Context<'_>,
        input: UpdateVisitorPageInput,
    ) -> ApiResult<Customer> {
        let customer = ctx.customer()?;
        Ok(Customer::own(
            ctx.services()
                .visitors
                .update_page(customer, &input.url, input.title.as_deref())
                .await?,
        ))
    }

    /// A customer rates their chat.
    async fn rate_chat(&self, ctx: &Context<'_>, input: RateChatInput) -> ApiResult<Chat> {
        let customer = ctx.customer()?;
        let chat = ctx
            .services()
            .chats
            .rate_chat(
                customer,
                &input.chat_id,
                input.rating.into(),
                input.comment.as_deref(),
            )
            .await?;
        Ok(Chat::loaded(chat))
    }

    /// Sends a message, as an agent of the chat or as its customer.
    async fn send_message(&self, ctx: &Context<'_>, input: SendMessageInput) -> ApiResult<Message> {
        let caller = ctx.caller()?;
        let services = ctx.services();
        // Checked before sending, so an unusable id sends nothing.
        let canned = match &input.canned_response_id {
            Some(id) => Some(services.canned.usable(ctx.principal()?, id).await?),
            None => None,
        };
        let file_ids: Vec<String> = input
            .file_ids
            .iter()
            .flatten()
            .map(|id| id.to_string())
            .collect();
        let file_ids = services
            .files
            .check_sendable(&caller, &input.chat_id, &file_ids)
            .await?;
        let (message, new) = services
            .chats
            .send_message_once(
                &caller,
                &input.chat_id,
                &input.text,
                input.client_id.as_deref(),
                input.visibility.into(),
                &file_ids,
            )
            .await?;
        // A retry with the same clientId returns the first message and counts nothing.
        if let Some(canned) = canned.filter(|_| new) {
            services.canned.count_use(ctx.principal()?, &canned).await?;
        }
        Ok(Message(message))
    }

    /// Says that the caller is typing (or stopped). A customer's draft reaches agents only.
    async fn set_typing(&self, ctx: &Context<'_>, input: SetTypingInput) -> ApiResult<bool> {
        let caller = ctx.caller()?;
        ctx.services()
            .chats
            .set_typing(
                &caller,
                &input.chat_id,
                input.is_typing,
                input.draft.as_deref(),
            )
            .await?;
        Ok(true)
    }

    /// Sets whether the agent gets new chats; all their apps hear of it at once.
    async fn set_routing_status(
        &self,
        ctx: &Context<'_>,
        status: RoutingStatus,
    ) -> ApiResult<Agent> {
        let principal = ctx.principal()?;
        Ok(Agent(
            ctx.services()
                .chats
                .set_routing_status(principal, status.into())
                .await?,
        ))
    }

    /// Takes a chat from the queue, whatever the agent's limit.
    async fn take_chat(&self, ctx: &Context<'_>, chat_id: ID) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        Ok(Chat::loaded(
            ctx.services().chats.take_chat(principal, &chat_id).await?,
        ))
    }

    /// Hands a chat to another agent (who may go over their limit) or group (routed like a
    /// new chat). The target sees the whole transcript; the customer gets a system message.
    async fn transfer_chat(&self, ctx: &Context<'_>, input: TransferChatInput) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        let target = match (input.to_agent_id, input.to_group_id) {
            (Some(agent), None) => chats::TransferTarget::Agent(agent.0),
            (None, Some(group)) => chats::TransferTarget::Group(group.0),
            _ => {
                return Err(Error::BadUserInput(
                    "give exactly one of toAgentId and toGroupId".into(),
                )
                .into());
            }
        };
        let chat = ctx
            .services()
            .chats
            .transfer_chat(
                principal,
                &input.chat_id,
                target,
                input.note.as_deref(),
                input.force.unwrap_or(false),
            )
            .await?;
        Ok(Chat::loaded(chat))
    }

    /// A supervisor joins a chat of their groups.
    async fn join_chat(&self, ctx: &Context<'_>, chat_id: ID) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        Ok(Chat::loaded(
            ctx.services().chats.join_chat(principal, &chat_id).await?,
        ))
    }

    /// Closes a chat, as its agent, a supervisor who joined, an admin, or its customer.
    async fn close_chat(&self, ctx: &Context<'_>, chat_id: ID) -> ApiResult<Chat> {
        let caller = ctx.caller()?;
        Ok(Chat::loaded(
            ctx.services().chats.close_chat(&caller, &chat_id).await?,
        ))
    }

    /// The signed-in agent has read the chat up to its latest entry: its `unreadCount` is 0
    /// on every device of theirs until the customer writes again.
    async fn mark_chat_read(&self, ctx: &Context<'_>, chat_id: ID) -> ApiResult<Chat> {
        let principal = ctx.principal()?;
        Ok(Chat::loaded(
            ctx.services()
                .chat_views
                .mark_read(principal, &chat_id)
                .await?,
        ))
    }

    /// Marks an offline message as dealt with (or not).
    async fn mark_offline_message_handled(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = true)] handled: bool,
    ) -> ApiResult<OfflineMessage> {
        let principal = ctx.principal()?;
        Ok(OfflineMessage(
            ctx.services()
                .chats
                .set_offline_message_handled(principal, &id, handled)
                .await?,
        ))
    }
}
