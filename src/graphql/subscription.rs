//! Subscriptions, served over WebSocket (graphql-transport-ws).

use std::sync::Arc;

use async_graphql::{Context, Subscription};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use crate::bus::Topic;
use crate::graphql::types::Agent;
use crate::graphql::{ApiError, ContextExt};
use crate::services::Services;

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
}
