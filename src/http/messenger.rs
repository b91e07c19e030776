//! Messenger's webhook, one URL for every connected page: `GET /channels/messenger/webhook`
//! answers Facebook's verification (`hub.mode`, `hub.verify_token`, `hub.challenge`), and
//! `POST` takes signed event deliveries in. An unsigned delivery is refused 401, a wrongly
//! signed one (or one for a page nobody connected) 403; Facebook delivers again what we
//! answer 5xx. <https://developers.facebook.com/docs/messenger-platform/webhooks>

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::services::messenger::WebhookError;

/// The webhook's path.
pub const WEBHOOK_PATH: &str = "/channels/messenger/webhook";

/// Facebook's verification of the callback URL: the challenge back, or 403.
pub async fn verify(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    match state
        .services
        .messenger
        .verify_subscription(
            field("hub.mode"),
            field("hub.verify_token"),
            field("hub.challenge"),
        )
        .await
    {
        Ok(Some(challenge)) => (StatusCode::OK, challenge).into_response(),
        Ok(None) => (StatusCode::FORBIDDEN, "the verify token does not match").into_response(),
        Err(err) => {
            tracing::error!(error = %err, "Messenger webhook verification failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An event delivery, signed with the page's app secret.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    match state.services.messenger.receive(&body, signature).await {
        Ok(()) => (StatusCode::OK, "EVENT_RECEIVED").into_response(),
        Err(err @ WebhookError::Unsigned) => {
            (StatusCode::UNAUTHORIZED, err.to_string()).into_response()
        }
        Err(err @ WebhookError::BadSignature) => {
            (StatusCode::FORBIDDEN, err.to_string()).into_response()
        }
        Err(err @ WebhookError::BadRequest(_)) => {
            (StatusCode::BAD_REQUEST, err.to_string()).into_response()
        }
        Err(WebhookError::Failed(err)) => {
            tracing::error!(error = %err, "could not take a Messenger event in");
            (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response()
        }
    }
}
