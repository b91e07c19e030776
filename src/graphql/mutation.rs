//! Mutations.

use async_graphql::{Context, ID, MaybeUndefined, Object};

use crate::error::Error;
use crate::graphql::chat_types::{
    Chat, Customer, LeaveOfflineMessageInput, Message, OfflineMessage, RateChatInput,
    SendMessageInput, SetTypingInput, StartChatInput, StartVisitorSessionInput, TransferChatInput,
    UpdateOrganizationSettingsInput, UpdateVisitorPageInput, VisitorSession,
};
use crate::graphql::chat_types::{NotificationPreference, PushDevice, RegisterPushDeviceInput};
use crate::graphql::types::{
    Agent, AuthPayload, ChangePasswordInput, CreateAgentInput, CreateGroupInput, Group, LoginInput,
    Organization, RoutingStatus, SignUpInput, UpdateAgentInput,
};
use crate::graphql::{ApiResult, ContextExt};
use crate::services::accounts::{CreateAgent, UpdateAgent};
use crate::services::auth::SignUp;
use crate::services::chats;

/// The root of mutations.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates an organization and its owner, when the server allows sign-up.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> ApiResult<AuthPayload> {
        let input = SignUp {
            organization_name: input.organization_name,
            name: input.name,
            email: input.email,
            password: input.password,
        };
        Ok(ctx
            .services()
            .auth
            .sign_up(input, ctx.client_addr())
            .await?
            .into())
    }

    /// Signs an agent in. The first login ever makes the agent accept chats; later logins
    /// restore the status they had.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> ApiResult<AuthPayload> {
        let session = ctx
            .services()
            .auth
            .login(
                &input.email,
                &input.password,
                input.organization_id.as_ref().map(|id| id.as_str()),
                ctx.client_addr(),
            )
            .await?;
        Ok(session.into())
    }

    /// Trades a refresh token for new tokens. The old refresh token stops working.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> ApiResult<AuthPayload> {
        Ok(ctx.services().auth.refresh(&refresh_token).await?.into())
    }

    /// Ends the current session everywhere its tokens are used.
    async fn logout(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        ctx.services().auth.logout(ctx.principal()?).await?;
        Ok(true)
    }

    /// Changes the signed-in agent's password.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        ctx.services()
            .auth
            .change_password(
                principal,
                &input.current_password,
                &input.new_password,
                ctx.client_addr(),
            )
            .await?;
        Ok(true)
    }

    /// Creates an agent. Admins and owners only; only owners create owners.
    async fn create_agent(&self, ctx: &Context<'_>, input: CreateAgentInput) -> ApiResult<Agent> {
        let principal = ctx.principal()?;
        let input = CreateAgent {
            email: input.email,
            name: input.name,
            password: input.password,
            role: input.role.into(),
            chat_limit: input.chat_limit,
            group_ids: input.group_ids.into_iter().map(|id| id.0).collect(),
        };
        Ok(Agent(
            ctx.services()
                .accounts
                .create_agent(principal, input)
                .await?,
        ))
    }

    /// Changes an agent's name, role, chat limit or groups. Admins and owners only.
    async fn update_agent(&self, ctx: &Context<'_>, input: UpdateAgentInput) -> ApiResult<Agent> {
        let principal = ctx.principal()?;
        let update = UpdateAgent {
            name: input.name,
            role: input.role.map(Into::into),
            chat_limit: match input.chat_limit {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(limit) => Some(Some(limit)),
            },
            group_ids: input
                .group_ids
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
        };
        Ok(Agent(
            ctx.services()
                .accounts
                .update_agent(principal, &input.id, update)
                .await?,
        ))
    }

    /// Deactivates an agent: they are signed out everywhere and cannot sign in again.
    async fn deactivate_agent(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Agent> {
        let principal = ctx.principal()?;
        Ok(Agent(
            ctx.services()
                .accounts
                .deactivate_agent(principal, &id)
                .await?,
        ))
    }

    /// Creates a group. Admins and owners only.
    async fn create_group(&self, ctx: &Context<'_>, input: CreateGroupInput) -> ApiResult<Group> {
        let principal = ctx.principal()?;
        Ok(Group(
            ctx.services()
                .accounts
                .create_group(principal, &input.name)
                .await?,
        ))
    }

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
            customer: Customer(session.customer),
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
                .start_chat(customer, &input.message, group, ctx.client_addr())
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

    /// The widget reports the page the customer is on; agents see it and the history.
    async fn update_visitor_page(
        &self,
        ctx: &Context<'_>,
        input: UpdateVisitorPageInput,
    ) -> ApiResult<Customer> {
        let customer = ctx.customer()?;
        Ok(Customer(
            ctx.services()
                .chats
                .update_visitor_page(customer, &input.url, input.title.as_deref())
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
        let message = ctx
            .services()
            .chats
            .send_message(
                &caller,
                &input.chat_id,
                &input.text,
                input.client_id.as_deref(),
            )
            .await?;
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

    /// Tunes routing without a restart. Admins and owners only.
    async fn update_organization_settings(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationSettingsInput,
    ) -> ApiResult<Organization> {
        let principal = ctx.principal()?;
        let update = chats::SettingsUpdate {
            default_chat_limit: input.default_chat_limit,
            auto_transfer_seconds: input.auto_transfer_seconds,
            waiting_long_seconds: input.waiting_long_seconds,
            customer_idle_seconds: input.customer_idle_seconds,
            auto_close_seconds: input.auto_close_seconds,
            presence_grace_seconds: input.presence_grace_seconds,
            queue_limit: input.queue_limit,
            acceptance_timeout_seconds: input.acceptance_timeout_seconds,
            queue_abandon_seconds: input.queue_abandon_seconds,
            new_chats_per_minute: input.new_chats_per_minute,
        };
        Ok(Organization(
            ctx.services()
                .chats
                .update_settings(principal, update)
                .await?,
        ))
    }

    /// Registers the signed-in agent's device for pushes (again: the same token updates it,
    /// re-enables it, and moves it from any other agent of the organization; a token registered
    /// in another organization is refused with CONFLICT). With a device, an agent who accepts
    /// chats stays routable while the app is closed.
    async fn register_push_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterPushDeviceInput,
    ) -> ApiResult<PushDevice> {
        let principal = ctx.principal()?;
        let services = ctx.services();
        let registration = crate::services::push::DeviceRegistration {
            platform: input.platform.into(),
            token: input.token,
            app_id: input.app_id,
            environment: input.environment.into(),
            locale: input.locale,
            device_name: input.device_name,
        };
        let device = services
            .push
            .register_device(principal, registration)
            .await?;
        // A reachable agent may take waiting chats.
        services
            .chats
            .drain_queue(principal.organization_id())
            .await?;
        Ok(PushDevice(device))
    }

    /// Removes one of the signed-in agent's devices; false when it was not registered.
    async fn unregister_push_device(&self, ctx: &Context<'_>, token: String) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .unregister_device(principal, &token)
            .await?)
    }

    /// Switches kinds of push on or off for the signed-in agent; returns every kind.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        preferences: Vec<NotificationPreference>,
    ) -> ApiResult<Vec<NotificationPreference>> {
        let principal = ctx.principal()?;
        let changes: Vec<_> = preferences
            .iter()
            .map(|p| (p.kind.into(), p.enabled))
            .collect();
        let all = ctx
            .services()
            .push
            .set_preferences(principal, &changes)
            .await?;
        Ok(all
            .into_iter()
            .map(|(kind, enabled)| NotificationPreference {
                kind: kind.into(),
                enabled,
            })
            .collect())
    }
}
