//! Webhooks: admins and owners manage endpoints (`webhookEndpoints`, `createWebhookEndpoint`,
//! `updateWebhookEndpoint`, `deleteWebhookEndpoint`, `rotateWebhookSecret`), read their
//! delivery logs (`webhookDeliveries`), send a test event and redeliver; any agent sends a
//! chat to an integration (`integrations`, `sendChatToIntegration`) and reads how it went
//! (`chatIntegrationSends`, `webhookDelivery`).

use std::time::Duration;

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain::{self, WebhookEvent};
use crate::error::Error;
use crate::graphql::{ApiResult, ContextExt, limits};
use crate::services::webhooks::{EndpointInput, EndpointWithSecret, MAX_DELIVERIES_PAGE};

/// What an endpoint is for.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::WebhookKind")]
pub enum WebhookKind {
    /// Receives the events it subscribed to.
    Webhook,
    /// Also a target agents send chats to (a CRM, a ticketing system).
    Integration,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::DeliveryStatus")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// An attempt is under way.
    Sending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: out of attempts, or refused.
    Failed,
}

/// An endpoint deliveries are posted to. Its secret is shown only by `createWebhookEndpoint`
/// and `rotateWebhookSecret`.
pub struct WebhookEndpoint(pub domain::WebhookEndpoint);

#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The event types it receives (`chat.started`, `message.added` …).
    async fn events(&self) -> Vec<&'static str> {
        self.0.events.iter().map(|e| e.as_str()).collect()
    }

    /// Whether agents' notes are sent too (as `message.added` with visibility AGENTS).
    async fn include_notes(&self) -> bool {
        self.0.include_notes
    }

    async fn kind(&self) -> WebhookKind {
        self.0.kind.into()
    }

    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why the server disabled it after repeated failures, if it did.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }

    /// Failed attempts in a row since its last success.
    async fn consecutive_failures(&self) -> i32 {
        self.0.consecutive_failures
    }

    /// Until when the previous secret still signs (a second signature) after a rotation.
    async fn previous_secret_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0
            .previous_secret_expires_at
            .filter(|until| *until > domain::now())
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An endpoint with its signing secret (`whsec_…`), shown this once.
pub struct WebhookEndpointWithSecret(EndpointWithSecret);

#[Object]
impl WebhookEndpointWithSecret {
    async fn endpoint(&self) -> WebhookEndpoint {
        WebhookEndpoint(self.0.endpoint.clone())
    }

    /// Verify deliveries with it as the Standard Webhooks libraries do; it is not shown again.
    async fn secret(&self) -> &str {
        &self.0.secret
    }
}

/// One event on its way to one endpoint, and how its last attempt went.
pub struct WebhookDelivery(pub domain::WebhookDelivery);

#[Object]
impl WebhookDelivery {
    /// Also the `webhook-id` header the receiver gets.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Pass as `after` for the next (older) page of the log.
    async fn cursor(&self) -> String {
        self.0.seq.to_string()
    }

    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.clone())
    }

    /// The event type (`chat.closed` …).
    async fn event_type(&self) -> &'static str {
        self.0.event.as_str()
    }

    async fn chat_id(&self) -> Option<ID> {
        self.0.chat_id.clone().map(ID)
    }

    async fn status(&self) -> WebhookDeliveryStatus {
        self.0.status.into()
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// When the next attempt is due, while PENDING.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.0.status == domain::DeliveryStatus::Pending).then_some(self.0.next_attempt_at)
    }

    /// The receiver's HTTP status at the last attempt, if it answered.
    async fn response_status(&self) -> Option<i32> {
        self.0.response_status
    }

    /// How long the last attempt took, in milliseconds.
    async fn duration_ms(&self) -> Option<i64> {
        self.0.duration_ms
    }

    /// What went wrong at the last attempt, if anything.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// The JSON document sent, exactly as signed.
    async fn payload(&self) -> &str {
        &self.0.payload
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at
    }
}

/// An integration agents may send chats to.
#[derive(SimpleObject)]
pub struct Integration {
    pub id: ID,
    /// Its description, or the host it posts to.
    pub name: String,
}

impl From<domain::WebhookEndpoint> for Integration {
    fn from(endpoint: domain::WebhookEndpoint) -> Self {
        let name = endpoint.description.clone().unwrap_or_else(|| {
            url::Url::parse(&endpoint.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default()
        });
        Integration {
            id: ID(endpoint.id),
            name,
        }
    }
}

/// A new endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// http(s); at a public address unless the server allows private ones.
    pub url: String,
    /// Event types from `webhookEventTypes`.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Send agents' notes too. Default false.
    pub include_notes: Option<bool>,
    /// Default WEBHOOK.
    pub kind: Option<WebhookKind>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// A change to an endpoint; what is left out stays as it is.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// Empty to clear it.
    pub description: Option<String>,
    pub include_notes: Option<bool>,
    pub kind: Option<WebhookKind>,
    /// Enabling an endpoint the server disabled starts its failure count afresh.
    pub enabled: Option<bool>,
}

/// Reading webhooks.
#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// The event types endpoints may subscribe to.
    async fn webhook_event_types(&self) -> Vec<&'static str> {
        WebhookEvent::SUBSCRIBABLE
            .iter()
            .map(|e| e.as_str())
            .collect()
    }

    /// The organization's webhook endpoints, oldest first. Admins and owners.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> ApiResult<Vec<WebhookEndpoint>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .webhooks
            .endpoints(principal)
            .await?
            .into_iter()
            .map(WebhookEndpoint)
            .collect())
    }

    /// An endpoint's delivery log, newest first; `after` is the last `cursor` of the page
    /// before. Admins and owners.
    #[graphql(complexity = "limits::paged_list_cost(first, 100, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> ApiResult<Vec<WebhookDelivery>> {
        let principal = ctx.principal()?;
        if !(1..=MAX_DELIVERIES_PAGE).contains(&i64::from(first)) {
            return Err(Error::BadUserInput(format!(
                "first must be between 1 and {MAX_DELIVERIES_PAGE}"
            ))
            .into());
        }
        Ok(ctx
            .services()
            .webhooks
            .deliveries(principal, &endpoint_id, i64::from(first), after.as_deref())
            .await?
            .into_iter()
            .map(WebhookDelivery)
            .collect())
    }

    /// A delivery: admins any, agents the chats they sent.
    async fn webhook_delivery(&self, ctx: &Context<'_>, id: ID) -> ApiResult<WebhookDelivery> {
        let principal = ctx.principal()?;
        Ok(WebhookDelivery(
            ctx.services().webhooks.delivery(principal, &id).await?,
        ))
    }

    /// The integrations agents may send chats to. Any agent.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn integrations(&self, ctx: &Context<'_>) -> ApiResult<Vec<Integration>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .webhooks
            .integrations(principal)
            .await?
            .into_iter()
            .map(Integration::from)
            .collect())
    }

    /// What agents sent of the chat to integrations, newest first, and how each went. Any
    /// agent who may see the chat.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn chat_integration_sends(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
    ) -> ApiResult<Vec<WebhookDelivery>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .webhooks
            .chat_sends(principal, &chat_id)
            .await?
            .into_iter()
            .map(WebhookDelivery)
            .collect())
    }
}

/// Managing webhooks and sending chats to integrations.
#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// Registers an endpoint; the answer holds its secret, shown this once. Admins and owners.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> ApiResult<WebhookEndpointWithSecret> {
        let principal = ctx.principal()?;
        let input = EndpointInput {
            url: Some(input.url),
            description: input.description,
            events: Some(input.events),
            include_notes: input.include_notes,
            kind: input.kind.map(Into::into),
            enabled: input.enabled,
        };
        Ok(WebhookEndpointWithSecret(
            ctx.services().webhooks.create(principal, input).await?,
        ))
    }

    /// Changes an endpoint. Admins and owners.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> ApiResult<WebhookEndpoint> {
        let principal = ctx.principal()?;
        let input = EndpointInput {
            url: input.url,
            description: input.description,
            events: input.events,
            include_notes: input.include_notes,
            kind: input.kind.map(Into::into),
            enabled: input.enabled,
        };
        Ok(WebhookEndpoint(
            ctx.services()
                .webhooks
                .update(principal, &id, input)
                .await?,
        ))
    }

    /// Deletes an endpoint and its delivery log; false when there was none. Admins and owners.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx.services().webhooks.delete(principal, &id).await?)
    }

    /// Gives the endpoint a new secret (in the answer, shown this once). The previous one
    /// keeps signing, as a second signature, for `overlapSeconds` (default a day, at most a
    /// week; 0 ends it now). Admins and owners.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
        overlap_seconds: Option<i32>,
    ) -> ApiResult<WebhookEndpointWithSecret> {
        let principal = ctx.principal()?;
        let overlap = overlap_seconds
            .map(|secs| {
                u64::try_from(secs)
                    .map(Duration::from_secs)
                    .map_err(|_| Error::BadUserInput("overlapSeconds must not be negative".into()))
            })
            .transpose()?;
        Ok(WebhookEndpointWithSecret(
            ctx.services()
                .webhooks
                .rotate_secret(principal, &id, overlap)
                .await?,
        ))
    }

    /// Sends a `webhook.test` event to the endpoint. Admins and owners.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
    ) -> ApiResult<WebhookDelivery> {
        let principal = ctx.principal()?;
        Ok(WebhookDelivery(
            ctx.services()
                .webhooks
                .send_test(principal, &endpoint_id)
                .await?,
        ))
    }

    /// Sends a delivery's document again, as a new delivery. Admins and owners.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> ApiResult<WebhookDelivery> {
        let principal = ctx.principal()?;
        Ok(WebhookDelivery(
            ctx.services()
                .webhooks
                .redeliver(principal, &delivery_id)
                .await?,
        ))
    }

    /// Sends the chat's transcript and customer to an integration
    /// (`chat.sent_to_integration`); read how it went in `chatIntegrationSends` or
    /// `webhookDelivery`. Any agent who may see the chat.
    async fn send_chat_to_integration(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        endpoint_id: ID,
    ) -> ApiResult<WebhookDelivery> {
        let principal = ctx.principal()?;
        Ok(WebhookDelivery(
            ctx.services()
                .webhooks
                .send_chat(principal, &chat_id, &endpoint_id)
                .await?,
        ))
    }
}
