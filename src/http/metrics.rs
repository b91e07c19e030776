//! /metrics: the Prometheus page, read fresh at each scrape, behind a bearer token when
//! SWITCHBOARD_METRICS_TOKEN is set, on the main address or on SWITCHBOARD_METRICS_LISTEN.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use super::AppState;
use crate::metrics::{CONTENT_TYPE, LABELLED_ORGANIZATIONS, Organizations, Scrape};
use crate::shutdown::Shutdown;

/// The page, or 401 without the configured token.
pub(super) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics_token
        && !presents(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs the metrics bearer token\n",
        )
            .into_response();
    }
    let scrape = read(&state).await;
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        state.metrics.render(&scrape),
    )
        .into_response()
}

/// Serves /metrics alone on `listener` until the server stops.
pub(super) async fn serve_apart(listener: TcpListener, state: AppState, tasks: Shutdown) {
    let router = Router::new()
        .route("/metrics", get(metrics))
        .with_state(state);
    let stopped = async move { tasks.triggered().await };
    if let Err(err) = axum::serve(listener, router)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::error!(error = %err, "the metrics address stopped serving");
    }
}

/// Whether the request carries `Authorization: Bearer <token>`. Both sides are hashed first,
/// so the comparison takes the same time whatever the presented token's length or contents.
fn presents(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, credentials)| credentials.trim());
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(token.as_bytes());
    presented.ct_eq(&expected).into()
}

/// What the page shows besides the registry: the database's gauges (left out, with a
/// warning, when the database does not answer), the bus and this process.
async fn read(state: &AppState) -> Scrape {
    let health = &state.services.health;
    let now = Utc::now();
    let (outboxes, organizations) = tokio::join!(
        health.outbox_backlog(now),
        health.organization_load(LABELLED_ORGANIZATIONS + 1),
    );
    let outboxes = outboxes
        .inspect_err(|err| tracing::warn!(error = %err, "metrics: cannot read the outboxes"))
        .ok();
    let organizations = organizations
        .inspect_err(|err| tracing::warn!(error = %err, "metrics: cannot read the organizations"))
        .ok();
    Scrape {
        pools: health.pool_stats(),
        outboxes: outboxes.map(|backlog| (backlog, now)),
        organizations: organizations.map(|(first, load)| Organizations { first, load }),
        bus: Some(state.services.bus_status()),
        process: Scrape::read_process(),
    }
}
