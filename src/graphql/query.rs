//! Queries.

use async_graphql::{Context, ID, Object};

use crate::graphql::chat_types::{
    Availability, Chat, OfflineMessage, QueueEntry, TransferCandidate,
};
use crate::graphql::chat_types::{NotificationPreference, PushDevice};
use crate::graphql::types::{Agent, Group, Organization};
use crate::graphql::{ApiResult, ContextExt, limits};

/// The root of queries.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The signed-in agent.
    async fn me(&self, ctx: &Context<'_>) -> ApiResult<Agent> {
        Ok(Agent(ctx.principal()?.agent.clone()))
    }

    /// The cursor of the signed-in agent's latest event. Subscribing to `agentEvents` with it
    /// as `since` misses nothing from now on, not even what happens while the subscription
    /// starts.
    async fn agent_events_cursor(&self, ctx: &Context<'_>) -> ApiResult<String> {
        let principal = ctx.principal()?;
        let seq = ctx.services().store.feed_seq(&principal.agent.id).await?;
        Ok(seq.to_string())
    }

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
            .availability(&widget_key, group_id.as_ref().map(|id| id.as_str()))
            .await?;
        Ok(Availability {
            online: a.online,
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
        let org = ctx
            .services()
            .store
            .organization(principal.organization_id())
            .await?;
        Ok(ctx
            .services()
            .chats
            .agents_for_transfer(principal, &chat_id)
            .await?
            .into_iter()
            .map(|load| TransferCandidate {
                chat_limit: i64::from(
                    load.agent
                        .chat_limit
                        .unwrap_or(org.settings.default_chat_limit),
                ),
                routable: load.reachable
                    && load.agent.routing_status == crate::domain::RoutingStatus::AcceptingChats,
                reachable: load.reachable
                    && load.agent.routing_status != crate::domain::RoutingStatus::Offline,
                active_chats: load.active_chats,
                agent: Agent(load.agent),
            })
            .collect())
    }

    /// The signed-in agent's push devices.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn my_push_devices(&self, ctx: &Context<'_>) -> ApiResult<Vec<PushDevice>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .devices(principal)
            .await?
            .into_iter()
            .map(PushDevice)
            .collect())
    }

    /// Which kinds of push the signed-in agent gets.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<NotificationPreference>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .preferences(principal)
            .await?
            .into_iter()
            .map(|(kind, enabled)| NotificationPreference {
                kind: kind.into(),
                enabled,
            })
            .collect())
    }
}
