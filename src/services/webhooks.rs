//! Webhooks: admins register endpoints (URL, events, enabled, a description) and read their
//! delivery logs, send a test event, redeliver and rotate secrets; agents send a chat's
//! transcript and customer to an endpoint flagged as an integration ("send to integration")
//! and see whether it was delivered. Events reach endpoints through the chat use cases'
//! webhook rules (in the change's transaction) and [`queue_event`] for changes made outside
//! a chat change; the outbox's webhook worker delivers them.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::domain::{
    self, DeliveryStatus, MAX_WEBHOOK_DESCRIPTION_CHARS, Visibility, WebhookDelivery,
    WebhookEndpoint, WebhookEvent, WebhookKind, chat_json, customer_json, message_json,
    new_webhook_secret, validate_webhook_url, webhook_document,
};
use crate::error::{Error, Result};
use crate::outbox::webhooks::refused_target;
use crate::services::{Caller, ChatService, Principal};
use crate::store::{Database, DbError};

/// The longest transcript sent to an integration, in entries.
const MAX_TRANSCRIPT_ENTRIES: i64 = 1000;
/// The overlap of a rotation when the admin names none: a day.
const DEFAULT_ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// The longest overlap of a rotation: a week.
const MAX_ROTATION_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most deliveries one page of the log holds.
pub const MAX_DELIVERIES_PAGE: i64 = 100;

/// An endpoint as an admin writes it; `None` leaves a field as it is on update (on create:
/// the default).
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Option<String>,
    /// Event names (`chat.started` …).
    pub events: Option<Vec<String>>,
    pub include_notes: Option<bool>,
    pub kind: Option<WebhookKind>,
    pub enabled: Option<bool>,
}

/// An endpoint with its secret, which is shown once: on creation and on rotation.
#[derive(Debug, Clone)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// The use cases of webhooks.
pub struct WebhookService {
    store: Arc<dyn Database>,
    chats: Arc<ChatService>,
    /// Whether endpoints may be at loopback and private addresses.
    allow_private_targets: bool,
}

impl WebhookService {
    pub fn new(
        store: Arc<dyn Database>,
        chats: Arc<ChatService>,
        allow_private_targets: bool,
    ) -> Self {
        WebhookService {
            store,
            chats,
            allow_private_targets,
        }
    }

    /// The organization's endpoints, oldest first. Admins and owners.
    pub async fn endpoints(&self, principal: &Principal) -> Result<Vec<WebhookEndpoint>> {
        principal.require_admin("manage webhooks")?;
        Ok(self
            .store
            .webhook_endpoints(principal.organization_id())
            .await?)
    }

    /// One endpoint of the organization. Admins and owners.
    pub async fn endpoint(&self, principal: &Principal, id: &str) -> Result<WebhookEndpoint> {
        principal.require_admin("manage webhooks")?;
        self.own_endpoint(principal, id).await
    }

    /// Registers an endpoint; its secret is in the answer, and never again.
    pub async fn create(
        &self,
        principal: &Principal,
        input: EndpointInput,
    ) -> Result<EndpointWithSecret> {
        principal.require_admin("manage webhooks")?;
        let url = input
            .url
            .ok_or_else(|| Error::BadUserInput("url is required".into()))?;
        let now = domain::now();
        let secret = new_webhook_secret();
        let endpoint = WebhookEndpoint {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            url: self.checked_url(&url).await?,
            description: description(input.description)?,
            events: WebhookEvent::parse_subscription(&input.events.unwrap_or_default())?,
            include_notes: input.include_notes.unwrap_or(false),
            kind: input.kind.unwrap_or(WebhookKind::Webhook),
            enabled: input.enabled.unwrap_or(true),
            secret: secret.clone(),
            previous_secret: None,
            previous_secret_expires_at: None,
            consecutive_failures: 0,
            failing_since: None,
            disabled_reason: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_webhook_endpoint(&endpoint).await?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// Changes an endpoint. Enabling one the server disabled starts its failure count afresh,
    /// and its waiting deliveries go out again.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        input: EndpointInput,
    ) -> Result<WebhookEndpoint> {
        principal.require_admin("manage webhooks")?;
        let mut endpoint = self.own_endpoint(principal, id).await?;
        if let Some(url) = input.url {
            endpoint.url = self.checked_url(&url).await?;
        }
        if input.description.is_some() {
            endpoint.description = description(input.description)?;
        }
        if let Some(events) = input.events {
            endpoint.events = WebhookEvent::parse_subscription(&events)?;
        }
        if let Some(include_notes) = input.include_notes {
            endpoint.include_notes = include_notes;
        }
        if let Some(kind) = input.kind {
            endpoint.kind = kind;
        }
        if let Some(enabled) = input.enabled {
            if enabled && !endpoint.enabled {
                endpoint.consecutive_failures = 0;
                endpoint.failing_since = None;
                endpoint.disabled_reason = None;
                endpoint.disabled_at = None;
            }
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = domain::now();
        self.store
            .update_webhook_endpoint(&endpoint)
            .await
            .map_err(not_found)?;
        Ok(endpoint)
    }

    /// Deletes an endpoint and its delivery log; false when there was none.
    pub async fn delete(&self, principal: &Principal, id: &str) -> Result<bool> {
        principal.require_admin("manage webhooks")?;
        Ok(self
            .store
            .delete_webhook_endpoint(principal.organization_id(), id)
            .await?)
    }

    /// Gives the endpoint a new secret; the old one keeps signing (a second signature) for
    /// `overlap` (a day when `None`, at most a week), so receivers can switch over.
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: &str,
        overlap: Option<Duration>,
    ) -> Result<EndpointWithSecret> {
        principal.require_admin("manage webhooks")?;
        let overlap = overlap.unwrap_or(DEFAULT_ROTATION_OVERLAP);
        if overlap > MAX_ROTATION_OVERLAP {
            return Err(Error::BadUserInput(format!(
                "overlapSeconds must be at most {}",
                MAX_ROTATION_OVERLAP.as_secs()
            )));
        }
        let mut endpoint = self.own_endpoint(principal, id).await?;
        let now = domain::now();
        let secret = new_webhook_secret();
        endpoint.previous_secret = Some(std::mem::replace(&mut endpoint.secret, secret.clone()));
        endpoint.previous_secret_expires_at =
            Some(now + chrono::Duration::from_std(overlap).unwrap_or_default());
        endpoint.updated_at = now;
        self.store
            .update_webhook_endpoint(&endpoint)
            .await
            .map_err(not_found)?;
        Ok(EndpointWithSecret { endpoint, secret })
    }

    /// The endpoint's deliveries, newest first, before the cursor `before` (a delivery's
    /// `cursor`); at most `first` (up to [`MAX_DELIVERIES_PAGE`]).
    pub async fn deliveries(
        &self,
        principal: &Principal,
        endpoint_id: &str,
        first: i64,
        before: Option<&str>,
    ) -> Result<Vec<WebhookDelivery>> {
        principal.require_admin("manage webhooks")?;
        let endpoint = self.own_endpoint(principal, endpoint_id).await?;
        if !(1..=MAX_DELIVERIES_PAGE).contains(&first) {
            return Err(Error::BadUserInput(format!(
                "first must be between 1 and {MAX_DELIVERIES_PAGE}"
            )));
        }
        let before = before
            .map(|cursor| {
                cursor
                    .parse::<i64>()
                    .map_err(|_| Error::BadUserInput("after is not a delivery cursor".into()))
            })
            .transpose()?;
        Ok(self
            .store
            .webhook_deliveries(&endpoint.organization_id, &endpoint.id, before, first)
            .await?)
    }

    /// Queues a `webhook.test` event to the endpoint (even a disabled one goes out once it
    /// is enabled again).
    pub async fn send_test(
        &self,
        principal: &Principal,
        endpoint_id: &str,
    ) -> Result<WebhookDelivery> {
        principal.require_admin("manage webhooks")?;
        let endpoint = self.own_endpoint(principal, endpoint_id).await?;
        let now = domain::now();
        let data = json!({
            "endpointId": endpoint.id,
            "message": "A test event from Switchboard: this endpoint receives and verifies webhooks.",
            "sentBy": { "id": principal.agent.id, "name": principal.agent.name },
        });
        let payload = webhook_document(
            WebhookEvent::Test,
            &domain::new_id(),
            &endpoint.organization_id,
            now,
            data,
        );
        let delivery = new_delivery(&endpoint, WebhookEvent::Test, None, payload, now);
        self.store.queue_webhook_delivery(&delivery).await?;
        self.chats.webhook_wake.notify_one();
        Ok(delivery)
    }

    /// Sends a delivery's document again, as a new delivery (with its own `webhook-id`, so a
    /// receiver that deduplicates takes it).
    pub async fn redeliver(
        &self,
        principal: &Principal,
        delivery_id: &str,
    ) -> Result<WebhookDelivery> {
        principal.require_admin("manage webhooks")?;
        let original = self
            .store
            .webhook_delivery(principal.organization_id(), delivery_id)
            .await
            .map_err(|err| match err {
                DbError::NotFound => Error::NotFound("no such webhook delivery".into()),
                other => other.into(),
            })?;
        let endpoint = self.own_endpoint(principal, &original.endpoint_id).await?;
        let now = domain::now();
        let mut delivery = new_delivery(
            &endpoint,
            original.event,
            original.chat_id.clone(),
            original.payload,
            now,
        );
        delivery.requested_by = Some(principal.agent.id.clone());
        self.store.queue_webhook_delivery(&delivery).await?;
        self.chats.webhook_wake.notify_one();
        Ok(delivery)
    }

    /// The enabled integrations agents may send chats to. Any agent.
    pub async fn integrations(&self, principal: &Principal) -> Result<Vec<WebhookEndpoint>> {
        Ok(self
            .store
            .webhook_endpoints(principal.organization_id())
            .await?
            .into_iter()
            .filter(|e| e.kind == WebhookKind::Integration && e.enabled)
            .collect())
    }

    /// Sends the chat's transcript and customer to an integration: any agent who may see
    /// the chat. Notes go only to integrations that take notes.
    pub async fn send_chat(
        &self,
        principal: &Arc<Principal>,
        chat_id: &str,
        endpoint_id: &str,
    ) -> Result<WebhookDelivery> {
        let chat = self
            .chats
            .chat_for(&Caller::Agent(principal.clone()), chat_id)
            .await?;
        let endpoint = self
            .integrations(principal)
            .await?
            .into_iter()
            .find(|e| e.id == endpoint_id)
            .ok_or_else(|| Error::NotFound("no such integration (or it is disabled)".into()))?;
        let customer = self
            .store
            .customer(&chat.organization_id, &chat.customer_id)
            .await?;
        let transcript: Vec<Value> = self
            .store
            .chat_events(&chat.id, 0, MAX_TRANSCRIPT_ENTRIES, endpoint.include_notes)
            .await?
            .iter()
            .filter(|e| e.visibility == Visibility::Public || endpoint.include_notes)
            .map(message_json)
            .collect();
        let now = domain::now();
        let data = json!({
            "chat": chat_json(&chat),
            "customer": customer_json(&customer),
            "transcript": transcript,
            "sentBy": { "id": principal.agent.id, "name": principal.agent.name },
        });
        let payload = webhook_document(
            WebhookEvent::ChatSentToIntegration,
            &domain::new_id(),
            &chat.organization_id,
            now,
            data,
        );
        let mut delivery = new_delivery(
            &endpoint,
            WebhookEvent::ChatSentToIntegration,
            Some(chat.id.clone()),
            payload,
            now,
        );
        delivery.requested_by = Some(principal.agent.id.clone());
        self.store.queue_webhook_delivery(&delivery).await?;
        self.chats.webhook_wake.notify_one();
        Ok(delivery)
    }

    /// What was sent of the chat to integrations, newest first: any agent who may see it.
    pub async fn chat_sends(
        &self,
        principal: &Arc<Principal>,
        chat_id: &str,
    ) -> Result<Vec<WebhookDelivery>> {
        let chat = self
            .chats
            .chat_for(&Caller::Agent(principal.clone()), chat_id)
            .await?;
        Ok(self
            .store
            .chat_webhook_deliveries(
                &chat.organization_id,
                &chat.id,
                WebhookEvent::ChatSentToIntegration,
            )
            .await?)
    }

    /// A delivery of the organization (an agent reads the state of a send).
    pub async fn delivery(&self, principal: &Principal, id: &str) -> Result<WebhookDelivery> {
        let delivery = self
            .store
            .webhook_delivery(principal.organization_id(), id)
            .await
            .map_err(|err| match err {
                DbError::NotFound => Error::NotFound("no such webhook delivery".into()),
                other => other.into(),
            })?;
        let own_send = delivery.requested_by.as_deref() == Some(principal.agent.id.as_str());
        if !own_send {
            principal.require_admin("read other people's webhook deliveries")?;
        }
        Ok(delivery)
    }

    async fn own_endpoint(&self, principal: &Principal, id: &str) -> Result<WebhookEndpoint> {
        self.store
            .webhook_endpoint(principal.organization_id(), id)
            .await
            .map_err(not_found)
    }

    /// The URL, trimmed, once it is acceptable: http(s), and at a public address unless the
    /// server allows private ones.
    async fn checked_url(&self, url: &str) -> Result<String> {
        let url = validate_webhook_url(url)?;
        if !self.allow_private_targets
            && let Some(why) = refused_target(&url).await
        {
            return Err(Error::BadUserInput(format!(
                "url is refused: {why} (SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS)"
            )));
        }
        Ok(url.to_string())
    }
}

/// Queues `event` to each enabled endpoint of the organization that subscribed to it, for a
/// change made outside a chat change (a customer's profile). The worker finds it at its next
/// look.
pub async fn queue_event(
    store: &dyn Database,
    organization_id: &str,
    event: WebhookEvent,
    chat_id: Option<&str>,
    data: Value,
) -> Result<()> {
    let endpoints: Vec<WebhookEndpoint> = store
        .webhook_endpoints(organization_id)
        .await?
        .into_iter()
        .filter(|e| e.wants(event, Visibility::Public))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let now = domain::now();
    let payload = webhook_document(event, &domain::new_id(), organization_id, now, data);
    let deliveries: Vec<WebhookDelivery> = endpoints
        .iter()
        .map(|e| new_delivery(e, event, chat_id.map(str::to_owned), payload.clone(), now))
        .collect();
    store.queue_webhook_deliveries(&deliveries).await?;
    Ok(())
}

fn new_delivery(
    endpoint: &WebhookEndpoint,
    event: WebhookEvent,
    chat_id: Option<String>,
    payload: String,
    now: chrono::DateTime<chrono::Utc>,
) -> WebhookDelivery {
    WebhookDelivery {
        id: domain::new_id(),
        seq: 0,
        endpoint_id: endpoint.id.clone(),
        organization_id: endpoint.organization_id.clone(),
        event,
        chat_id,
        payload,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: now,
        response_status: None,
        duration_ms: None,
        last_error: None,
        requested_by: None,
        created_at: now,
        delivered_at: None,
    }
}

fn description(text: Option<String>) -> Result<Option<String>> {
    let Some(text) = text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_WEBHOOK_DESCRIPTION_CHARS {
        return Err(Error::BadUserInput(format!(
            "description must be at most {MAX_WEBHOOK_DESCRIPTION_CHARS} characters"
        )));
    }
    Ok(Some(text))
}

fn not_found(err: DbError) -> Error {
    match err {
        DbError::NotFound => Error::NotFound("no such webhook endpoint".into()),
        other => other.into(),
    }
}
