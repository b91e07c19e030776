//! The access log: one line per HTTP request and one per WebSocket connection, when it ends.
//!
//! Each request runs in a `request` span holding its method, route, client address and request
//! id, so whatever is logged while it is served (a failed login, a rate limit) carries them
//! too; the access line adds the status and the duration. The route is the matched template
//! (`/files/{id}/{name}`), never the path and query the client sent, which may carry ids and
//! tokens (`?token=` on downloads). Headers and bodies are never logged.
//!
//! The lines have the target `switchboard::http::access_log`: `RUST_LOG` can silence them
//! without silencing the rest.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::{Request, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};

use super::client_addr::client_addr;

/// Requests without a matched route share this label, so no raw path is ever logged.
const UNMATCHED: &str = "unmatched";

/// The request id of the request being served, from `x-request-id`: the client's or a
/// proxy's when it sent one, else a fresh UUID.
fn request_id<B>(request: &Request<B>) -> &str {
    request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
}

/// The route a request matched, as its template.
fn route<B>(request: &Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// Wraps `router` in the access log: a request id set (kept when the client or a proxy sent
/// one) and echoed in the response, and the request's span and access line.
pub(super) fn layer<S>(router: axum::Router<S>, trusted_proxies: usize) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // The last layer added is the outermost: the id is set before the span reads it.
    router
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RequestSpan { trusted_proxies })
                .on_request(())
                .on_response(AccessLine)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Makes each request's span.
#[derive(Clone, Copy)]
struct RequestSpan {
    /// How many proxies' X-Forwarded-For entries to look through for the client's address.
    trusted_proxies: usize,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_addr(request.headers(), *peer, self.trusted_proxies));
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = route(request),
            client = client.map(tracing::field::display),
            request_id = request_id(request),
        )
    }
}

/// Writes the access line of a finished HTTP request. A WebSocket's upgrade (101) writes none:
/// its connection writes one when it ends ([`websocket_closed`]).
#[derive(Clone, Copy)]
struct AccessLine;

impl<B> OnResponse<B> for AccessLine {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &tracing::Span) {
        let status = response.status().as_u16();
        if status == 101 {
            return;
        }
        tracing::info!(status, duration_ms = millis(latency), "request");
    }
}

/// Writes the access line of a WebSocket connection that ended, inside the span of the request
/// that opened it: who closed it (`server`, `client`, or `gone` for a client that vanished or
/// fell silent) and the close frame's code and reason when there was one.
pub(super) fn websocket_closed(
    protocol: &str,
    lasted: Duration,
    closed_by: &str,
    close: Option<(u16, &str)>,
) {
    tracing::info!(
        status = 101,
        protocol,
        duration_ms = millis(lasted),
        closed_by,
        close_code = close.map(|(code, _)| code),
        close_reason = close.map(|(_, reason)| reason),
        "websocket closed"
    );
}

/// A duration in milliseconds, to the microsecond.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}
