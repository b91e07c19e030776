//! The webhook rules: the in-transaction subscriber that turns a chat's domain events into
//! webhook deliveries, one per enabled endpoint of the organization that subscribed to the
//! event, queued in the change's own transaction so a delivery goes out if and only if the
//! change commits. A note (visibility AGENTS) goes only to endpoints that asked for notes.

use serde_json::json;

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use crate::domain::{
    self, DeliveryStatus, Visibility, WebhookDelivery, WebhookEvent, chat_json, greeting_json,
    message_json, offline_message_json, tag_json, webhook_document,
};
use crate::error::Result;

/// Queues the deliveries `event` causes.
pub(super) async fn react(work: &mut UnitOfWork, event: &DomainEvent) -> Result<()> {
    let Some((kind, chat_id, visibility, data)) = describe(event) else {
        return Ok(());
    };
    let endpoints = work.webhook_targets().await?;
    let wanted: Vec<_> = endpoints
        .iter()
        .filter(|e| e.wants(kind, visibility))
        .cloned()
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let payload = webhook_document(kind, &domain::new_id(), &work.org.id, work.now, data);
    for endpoint in wanted {
        let delivery = WebhookDelivery {
            id: domain::new_id(),
            seq: 0,
            endpoint_id: endpoint.id,
            organization_id: work.org.id.clone(),
            event: kind,
            chat_id: chat_id.clone(),
            payload: payload.clone(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: work.now,
            response_status: None,
            duration_ms: None,
            last_error: None,
            requested_by: None,
            created_at: work.now,
            delivered_at: None,
        };
        work.tx.insert_webhook_delivery(&delivery).await?;
    }
    work.webhooks_queued = true;
    Ok(())
}

/// The webhook event a domain event is, its chat, who may see it, and its `data`; `None`
/// for events no endpoint hears of.
fn describe(
    event: &DomainEvent,
) -> Option<(WebhookEvent, Option<String>, Visibility, serde_json::Value)> {
    let public = Visibility::Public;
    let (kind, chat, visibility, data) = match event {
        DomainEvent::ChatStarted { chat } => (
            WebhookEvent::ChatStarted,
            chat,
            public,
            json!({ "chat": chat_json(chat) }),
        ),
        DomainEvent::Assigned {
            chat,
            agent_id,
            transferred,
            was_queued,
            ..
        } => (
            WebhookEvent::ChatAssigned,
            chat,
            public,
            json!({
                "chat": chat_json(chat),
                "agentId": agent_id,
                "transferred": transferred,
                "fromQueue": was_queued,
            }),
        ),
        DomainEvent::Transferred { chat } => (
            WebhookEvent::ChatTransferred,
            chat,
            public,
            json!({ "chat": chat_json(chat) }),
        ),
        DomainEvent::MessageAdded { chat, entry } => (
            WebhookEvent::MessageAdded,
            chat,
            entry.visibility,
            json!({ "chat": chat_json(chat), "message": message_json(entry) }),
        ),
        DomainEvent::Closed { chat, .. } => (
            WebhookEvent::ChatClosed,
            chat,
            public,
            json!({ "chat": chat_json(chat) }),
        ),
        DomainEvent::Rated { chat } => (
            WebhookEvent::ChatRated,
            chat,
            public,
            json!({
                "chat": chat_json(chat),
                "rating": chat.rating.map(|r| r.as_str()),
                "comment": chat.rating_comment,
            }),
        ),
        DomainEvent::Tagged { chat, tag, added } => (
            WebhookEvent::ChatTagged,
            chat,
            public,
            json!({
                "chat": chat_json(chat),
                "tag": tag_json(tag),
                "action": if *added { "added" } else { "removed" },
            }),
        ),
        DomainEvent::GreetingAnswered { chat, greeting } => (
            WebhookEvent::GreetingAnswered,
            chat,
            public,
            json!({ "chat": chat_json(chat), "greeting": greeting_json(greeting) }),
        ),
        DomainEvent::OfflineMessageLeft { message, .. } => {
            return Some((
                WebhookEvent::OfflineMessageLeft,
                None,
                public,
                json!({ "offlineMessage": offline_message_json(message) }),
            ));
        }
        DomainEvent::Queued { .. }
        | DomainEvent::RoutingStatusChanged { .. }
        | DomainEvent::AcceptanceMissed { .. } => return None,
    };
    Some((kind, Some(chat.id.clone()), visibility, data))
}
