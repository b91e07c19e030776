//! The HTTP surface: /graphql (POST, GET, WebSocket), /files (uploads and signed downloads),
//! /healthz, /readyz, /metrics, the chat
//! widget's files and the demo page, the agent web app under /app/, GraphiQL's files, and the
//! server loop with graceful shutdown.

mod access_log;
mod app;
mod assets;
mod client_addr;
mod connections;
mod export;
mod files;
mod graphiql;
mod graphql;
mod messenger;
mod metrics;
mod readiness;
mod report_export;
mod widget;
mod ws;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{self, AllowHeaders, CorsLayer};

use crate::config::Config;
use crate::graphql::AppSchema;
use crate::graphql::documents::DocumentCache;
use crate::metrics::Metrics;
use crate::services::Services;
use crate::shutdown::Shutdown;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub services: Arc<Services>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Parsed documents by their text's hash: every request's, and Apollo's persisted queries.
    pub documents: Arc<DocumentCache>,
    /// Flips to `true` when the server starts shutting down; WebSockets then close.
    shutdown: watch::Receiver<bool>,
    /// Counts every connection and WebSocket task; shutdown waits until all have ended.
    tasks: Shutdown,
}

/// Builds the router over `state`.
fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/graphql", with_cors(get(graphql::get).post(graphql::post)))
        .route("/files", with_cors(post(files::upload)))
        .route("/files/{id}/{name}", get(files::download))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/widget.js", get(widget::loader))
        .route("/widget/{file}", get(widget::file))
        .route("/app", get(app::redirect))
        .route("/app/", get(app::index))
        .route("/app/{file}", get(app::file))
        .route("/graphiql/{file}", get(graphiql::file))
        .route("/export/archive.csv", get(export::archive_csv))
        .route("/export/report.csv", get(report_export::report_csv))
        .route(
            messenger::WEBHOOK_PATH,
            get(messenger::verify).post(messenger::receive),
        );
    // With an address of its own, /metrics is not served here at all.
    if state.config.metrics_listen.is_none() {
        router = router.route("/metrics", get(metrics::metrics));
    }
    if state.config.demo {
        router = router
            .route("/demo", get(widget::demo))
            .route("/demo/about", get(widget::demo_about));
    }
    let router = router.layer(middleware::from_fn_with_state(
        state.clone(),
        count_requests,
    ));
    access_log::layer(router, state.config.trusted_proxy_hops()).with_state(state)
}

/// What a connection past the global cap is served: the health checks, so orchestrators still
/// see the truth, and a 503 for anything else.
fn health_only_router(state: AppState) -> Router {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(at_capacity);
    access_log::layer(router, state.config.trusted_proxy_hops()).with_state(state)
}

async fn at_capacity() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "the server is at its connection limit; retry shortly\n",
    )
        .into_response()
}

/// Serves on `listener` until `shutdown` completes, then stops accepting and triggers `tasks`:
/// in-flight requests finish and every WebSocket closes with 1001. Each connection runs as a
/// task of `tasks`; the caller waits for them with [`Shutdown::finished`]. With
/// `metrics_listener`, /metrics is served there (and not on `listener`) until `tasks` triggers.
#[allow(clippy::too_many_arguments)] // one call site, each argument a different role
pub async fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    schema: AppSchema,
    services: Arc<Services>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    tasks: Shutdown,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = connections::ConnectionLimits::from_config(&config);
    let state = AppState {
        schema,
        services,
        documents: Arc::new(DocumentCache::new(config.persisted_queries)),
        config,
        metrics: metrics.clone(),
        shutdown: tasks.subscribe(),
        tasks: tasks.clone(),
    };
    if let Some(metrics_listener) = metrics_listener {
        tasks.spawn(metrics::serve_apart(
            metrics_listener,
            state.clone(),
            tasks.clone(),
        ));
    }
    connections::accept_until_shutdown(
        listener,
        router(state.clone()),
        health_only_router(state),
        limits,
        metrics,
        shutdown,
        tasks,
    )
    .await;
    Ok(())
}

/// The API takes bearer tokens, never cookies, so any page may call it: a widget on a shop's
/// own domain, an agent web app elsewhere. Organizations that list allowed origins have them
/// checked where the widget key is used, since a preflight names no organization. Pages may
/// read the `Retry-After` of a rate limit.
fn with_cors(methods: MethodRouter<AppState>) -> MethodRouter<AppState> {
    methods
        .layer(
            CorsLayer::new()
                .allow_origin(cors::Any)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers(AllowHeaders::mirror_request())
                .expose_headers([header::RETRY_AFTER])
                .max_age(Duration::from_secs(86400)),
        )
        .layer(middleware::from_fn(preflight_without_content))
}

/// Answers a preflight 204, as the API always has: tower-http's empty answer says 200.
async fn preflight_without_content(request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let bus = state.services.bus_status();
    match readiness::check(&state.services.health, &state.config, bus).await {
        Ok(()) => "ready\n".into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            )
                .into_response()
        }
    }
}

async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // Unmatched paths share one label, so scanners cannot blow up the series count.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .http_request(&route, response.status().as_u16(), started.elapsed());
    response
}
