//! Accounts: the organization, its agents and groups, sign-up and sessions, and the
//! organization's settings. The `me` subscription lives here too: it is the signed-in agent
//! as it changes.

use std::sync::Arc;

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, Subscription,
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::domain;
use crate::graphql::{ApiError, ApiResult, ContextExt, limits, loaders};
use crate::services::accounts::{CreateAgent, UpdateAgent};
use crate::services::auth::SignUp;
use crate::services::{AuthSession, Services, chats, streams};

/// What an agent may do in their organization.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Role")]
pub enum Role {
    /// Answers chats.
    Agent,
    /// Also watches and joins the chats of their groups.
    Supervisor,
    /// Also manages agents, groups and settings.
    Admin,
    /// Also manages admins and other owners.
    Owner,
}

/// Whether an agent gets new chats.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::RoutingStatus")]
pub enum RoutingStatus {
    /// Gets new chats while below their chat limit.
    AcceptingChats,
    /// Gets no new chats; current chats continue and the agent can monitor.
    NotAcceptingChats,
    /// Signed off.
    Offline,
}

/// A support agent.
pub struct Agent(pub domain::Agent);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn role(&self) -> Role {
        self.0.role.into()
    }

    async fn routing_status(&self) -> RoutingStatus {
        self.0.routing_status.into()
    }

    /// Whether chats can reach the agent now: a live app connection (or the grace period
    /// after one), or an enabled push device. An agent who accepts chats but is unreachable
    /// gets none; apps show them as unreachable rather than accepting.
    async fn reachable(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        Ok(ctx.services().presence.reachable(&self.0.id).await?)
    }

    /// How many active chats the agent handles at once: their own limit, or the
    /// organization's default when they have none.
    async fn chat_limit(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        let settings = loaders::settings(ctx, &self.0.organization_id).await?;
        Ok(self.0.effective_chat_limit(&settings))
    }

    /// Whether the agent has a limit of their own rather than the organization's default.
    async fn has_own_chat_limit(&self) -> bool {
        self.0.chat_limit.is_some()
    }

    /// The groups (departments) the agent belongs to.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn groups(&self, ctx: &Context<'_>) -> ApiResult<Vec<Group>> {
        let groups = loaders::groups(ctx, &self.0.organization_id, &self.0.group_ids).await?;
        Ok(groups.into_iter().map(Group).collect())
    }

    /// Deactivated agents cannot sign in; their history stays.
    async fn is_active(&self) -> bool {
        self.0.active
    }

    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A department: chats may target a group, agents belong to groups.
pub struct Group(pub domain::Group);

#[Object]
impl Group {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The company the signed-in agent works for.
pub struct Organization(pub domain::Organization);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The public key the chat widget is installed with.
    async fn widget_key(&self) -> &str {
        &self.0.widget_key
    }

    /// The chat limit of agents who have none of their own.
    async fn default_chat_limit(&self) -> i32 {
        self.0.settings.default_chat_limit
    }

    /// Routing limits, thresholds and timeouts.
    async fn settings(&self) -> OrganizationSettings {
        self.0.settings.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Tokens for a signed-in agent.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived; send it as `Authorization: Bearer <token>` or in connection_init.
    pub access_token: String,
    /// Trade it for new tokens with refreshToken before the access token expires. Each refresh
    /// token works once; using one twice signs the session out.
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub agent: Agent,
}

impl From<AuthSession> for AuthPayload {
    fn from(session: AuthSession) -> Self {
        AuthPayload {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            access_token_expires_at: session.access_token_expires_at,
            agent: Agent(session.agent),
        }
    }
}

/// A new organization and its owner.
#[derive(InputObject)]
pub struct SignUpInput {
    pub organization_name: String,
    /// The owner's name.
    pub name: String,
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Which organization to sign in to, for a person who is an agent of several with the same
    /// email. Without it, the account whose password matches is signed in (the one signed in
    /// most recently, should several match).
    pub organization_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    pub email: String,
    pub name: String,
    /// 8 to 128 characters; the agent can change it later.
    pub password: String,
    #[graphql(default_with = "Role::Agent")]
    pub role: Role,
    /// 1 to 100; omitted follows the organization's default.
    pub chat_limit: Option<i32>,
    #[graphql(default)]
    pub group_ids: Vec<ID>,
}

/// Omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateAgentInput {
    pub id: ID,
    pub name: Option<String>,
    pub role: Option<Role>,
    /// 1 to 100; null returns the agent to the organization's default.
    pub chat_limit: MaybeUndefined<i32>,
    /// Replaces the agent's groups.
    pub group_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct CreateGroupInput {
    pub name: String,
}

/// An organization's routing settings; times in seconds.
#[derive(SimpleObject)]
pub struct OrganizationSettings {
    pub default_chat_limit: i32,
    pub auto_transfer_seconds: i64,
    pub waiting_long_seconds: i64,
    pub customer_idle_seconds: i64,
    pub auto_close_seconds: i64,
    pub presence_grace_seconds: i64,
    pub queue_limit: i32,
    /// How soon a chat assigned through a push must be acknowledged.
    pub acceptance_timeout_seconds: i64,
    /// A queued chat whose customer has had no live connection and done nothing for this long
    /// leaves the queue (default 180).
    pub queue_abandon_seconds: i64,
    /// Most chats that may start within a minute; more are refused with RATE_LIMITED
    /// (default 60).
    pub new_chats_per_minute: i32,
    /// Plain agents may read (not answer, close or transfer) the chats of their groups, as
    /// supervisors do (default false).
    pub agents_see_group_chats: bool,
}

impl From<domain::ChatSettings> for OrganizationSettings {
    fn from(s: domain::ChatSettings) -> Self {
        OrganizationSettings {
            default_chat_limit: s.default_chat_limit,
            auto_transfer_seconds: s.auto_transfer_after.num_seconds(),
            waiting_long_seconds: s.waiting_long_after.num_seconds(),
            customer_idle_seconds: s.customer_idle_after.num_seconds(),
            auto_close_seconds: s.auto_close_after.num_seconds(),
            presence_grace_seconds: s.presence_grace.num_seconds(),
            queue_limit: s.queue_limit,
            acceptance_timeout_seconds: s.acceptance_timeout.num_seconds(),
            queue_abandon_seconds: s.queue_abandon_after.num_seconds(),
            new_chats_per_minute: s.new_chats_per_minute,
            agents_see_group_chats: s.agents_see_group_chats,
        }
    }
}

/// Omitted fields stay as they are; times in seconds.
#[derive(InputObject)]
pub struct UpdateOrganizationSettingsInput {
    pub default_chat_limit: Option<i32>,
    pub auto_transfer_seconds: Option<i32>,
    pub waiting_long_seconds: Option<i32>,
    pub customer_idle_seconds: Option<i32>,
    pub auto_close_seconds: Option<i32>,
    pub presence_grace_seconds: Option<i32>,
    pub queue_limit: Option<i32>,
    pub acceptance_timeout_seconds: Option<i32>,
    /// 10 to 86400.
    pub queue_abandon_seconds: Option<i32>,
    /// 1 to 1000000.
    pub new_chats_per_minute: Option<i32>,
    /// Lets plain agents read the chats of their groups.
    pub agents_see_group_chats: Option<bool>,
}

/// `me`, first among the queries.
#[derive(Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// The signed-in agent.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Agent> {
        Ok(Agent(ctx.principal()?.agent.clone()))
    }
}

/// The organization, its agents and groups.
#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in agent's organization.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        let principal = ctx.principal()?;
        Ok(Organization(
            ctx.services().accounts.organization(principal).await?,
        ))
    }

    /// Every agent of the organization, deactivated ones included.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn agents(&self, ctx: &Context<'_>) -> ApiResult<Vec<Agent>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .accounts
            .agents(principal)
            .await?
            .into_iter()
            .map(Agent)
            .collect())
    }

    /// One agent of the organization.
    async fn agent(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Agent> {
        let principal = ctx.principal()?;
        Ok(Agent(ctx.services().accounts.agent(principal, &id).await?))
    }

    /// The organization's groups.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn groups(&self, ctx: &Context<'_>) -> ApiResult<Vec<Group>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .accounts
            .groups(principal)
            .await?
            .into_iter()
            .map(Group)
            .collect())
    }
}

/// Sign-up, sessions, agents and groups.
#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
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
}

/// The organization's settings.
#[derive(Default)]
pub struct SettingsMutation;

#[Object]
impl SettingsMutation {
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
            agents_see_group_chats: input.agents_see_group_chats,
        };
        Ok(Organization(
            ctx.services()
                .chats
                .update_settings(principal, update)
                .await?,
        ))
    }
}

/// The signed-in agent, live.
#[derive(Default)]
pub struct AccountsSubscription;

#[Subscription]
impl AccountsSubscription {
    /// The signed-in agent now, then again after every change to them (profile, role, chat
    /// limit, groups, routing status) made from any app. Ends when the session ends.
    #[allow(clippy::unused_async)] // async-graphql's subscription fields are async fns
    async fn me(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Agent>, ApiError> {
        let principal = ctx.principal()?.clone();
        let services: Arc<Services> = ctx.services().clone();
        Ok(streams::agent_changes(services, principal).map(Agent))
    }
}
