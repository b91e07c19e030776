//! Queries.

use async_graphql::{Context, ID, Object};

use crate::graphql::types::{Agent, Group, Organization};
use crate::graphql::{ApiResult, ContextExt};

/// The root of queries.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The signed-in agent.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Agent> {
        Ok(Agent(ctx.principal()?.agent.clone()))
    }

    /// The signed-in agent's organization.
    async fn organization(&self, ctx: &Context<'_>) -> ApiResult<Organization> {
        let principal = ctx.principal()?;
        Ok(Organization(
            ctx.services().accounts.organization(principal).await?,
        ))
    }

    /// Every agent of the organization, deactivated ones included.
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
