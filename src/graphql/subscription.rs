//! Subscriptions, served over WebSocket (graphql-transport-ws).

use std::sync::Arc;

use async_graphql::{Context, ID, Subscription};
use futures_util::stream;
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::bus::Topic;
use crate::graphql::chat_types::{AgentEvent, ChatEvent};
use crate::graphql::types::Agent;
use crate::graphql::{ApiError, ContextExt};
use crate::services::streams::{self, parse_cursor};
use crate::services::{LivePrincipal, Services};

/// The root of subscriptions.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// The signed-in agent now, then again after every change to them (profile, role, chat
    /// limit, groups, routing status) made from any app. Ends when the session ends.
    #[allow(clippy::unused_async)] // async-graphql's subscription fields are async fns
    async fn me(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Agent>, ApiError> {
        let principal = ctx.principal()?.clone();
        let services: Arc<Services> = ctx.services().clone();
        let changes = services
            .bus
            .subscribe(Topic::Agent(principal.agent.id.clone()));
        let first = Some(principal.agent.clone());
        Ok(stream::unfold(
            (first, changes, services, principal),
            |(first, mut changes, services, principal)| async move {
                if let Some(agent) = first {
                    return Some((Agent(agent), (None, changes, services, principal)));
                }
                loop {
                    match changes.recv().await {
                        // A lag only means we missed a notification; the store has the truth.
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return None,
                    }
                    let agent = services
                        .store
                        .session_agent(&principal.session_id, &principal.agent.id)
                        .await;
                    match agent {
                        Ok(Some(agent)) => {
                            return Some((Agent(agent), (None, changes, services, principal)));
                        }
                        Ok(None) => return None,
                        Err(err) => {
                            tracing::warn!(error = %err, "me subscription could not reload agent");
                        }
                    }
                }
            },
        ))
    }

    /// Everything the signed-in agent's apps need live: chats assigned and transferred,
    /// messages, the customer's typing with the sneak peek, the queue, attention, routing
    /// status and offline messages. With `since` (an event's cursor) it first replays what was
    /// missed, in order.
    #[allow(clippy::unused_async)] // async-graphql's subscription fields are async fns
    async fn agent_events(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
    ) -> Result<impl Stream<Item = AgentEvent>, ApiError> {
        let principal = ctx.principal()?.clone();
        let since = parse_cursor(since.as_deref())?;
        let organization_id = principal.organization_id().to_owned();
        // Both boxed: async-graphql keeps this function's future and its stream in one
        // enum for the subscription's life, sized for the larger. Boxed, an idle agent's
        // subscription holds the stream alone.
        let events = Box::pin(streams::agent_events(
            ctx.services().clone(),
            principal,
            ctx.data_opt::<LivePrincipal>().cloned(),
            since,
        ))
        .await?;
        Ok(events
            .filter_map(move |event| {
                std::future::ready(AgentEvent::from_stream(&organization_id, event))
            })
            .boxed())
    }

    /// One chat's events: its transcript (from the start, or after `since`), typing, and the
    /// customer's place in the queue. For its customer and for agents who may see the chat.
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        since: Option<String>,
    ) -> Result<impl Stream<Item = ChatEvent>, ApiError> {
        let caller = ctx.caller()?;
        let since = parse_cursor(since.as_deref())?;
        let organization_id = match &caller {
            crate::services::Caller::Agent(p) => p.organization_id().to_owned(),
            crate::services::Caller::Customer(c) => c.organization_id.clone(),
        };
        // Boxed for the reason agent_events gives.
        let events = Box::pin(streams::chat_events(
            ctx.services().clone(),
            caller,
            ctx.data_opt::<LivePrincipal>().cloned(),
            &chat_id,
            since,
        ))
        .await?;
        Ok(events
            .map(move |event| ChatEvent::from_stream(&organization_id, event))
            .boxed())
    }
}
