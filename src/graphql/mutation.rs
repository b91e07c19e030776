//! Mutations.

use async_graphql::{Context, ID, MaybeUndefined, Object};

use crate::graphql::types::{
    Agent, AuthPayload, ChangePasswordInput, CreateAgentInput, CreateGroupInput, Group, LoginInput,
    SignUpInput, UpdateAgentInput,
};
use crate::graphql::{ApiResult, ContextExt};
use crate::services::accounts::{CreateAgent, UpdateAgent};
use crate::services::auth::SignUp;

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
            .login(&input.email, &input.password, ctx.client_addr())
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
            .change_password(principal, &input.current_password, &input.new_password)
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
