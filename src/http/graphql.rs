//! GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): POST with a JSON
//! body, GET with query parameters (queries only), answered as
//! application/graphql-response+json when the client accepts it (with 4xx for requests that
//! could not run) and as application/json otherwise. A browser asking for HTML gets GraphiQL
//! ([`super::graphiql`]).

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{ConnectInfo, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use crate::error::Error;
use crate::graphql::documents::{DocumentCache, PersistedQueryError};
use crate::graphql::{
    ClientAddr, REQUEST_ERROR_CODES, RequestAuth, RequestOrigin, finalize_errors,
};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Where the chat widget's frame says its page is: see [`request_origin`].
const PAGE_ORIGIN: &str = "x-switchboard-page-origin";

/// The origin of the page a request speaks for: the browser's `Origin` header, when it sent
/// one (not `null`, which opaque origins send).
///
/// The chat widget's frame runs on this server's own origin, so its requests carry our Origin
/// whatever site embeds it. The frame names that site in `X-Switchboard-Page-Origin`, as the
/// browser told it (`location.ancestorOrigins`, else the referrer), and the header counts only
/// on requests from our own origin: no page of another site can send our Origin, nor make our
/// frame name a page it is not on.
fn request_origin(headers: &HeaderMap) -> RequestOrigin {
    let origin = header_text(headers, header::ORIGIN.as_str());
    let own = origin.is_some_and(|origin| {
        let host = header_text(headers, header::HOST.as_str());
        origin
            .split_once("://")
            .zip(host)
            .is_some_and(|((_, authority), host)| authority.eq_ignore_ascii_case(host))
    });
    let page = if own {
        header_text(headers, PAGE_ORIGIN).or(origin)
    } else {
        origin
    };
    RequestOrigin(page.map(|origin| origin.chars().take(300).collect::<String>().into()))
}

/// A header's text, unless absent, empty, not text, or `null`.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|text| !text.is_empty() && *text != "null")
}

/// POST /graphql
pub(super) async fn post(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = response_media(&headers);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if !content_type.is_some_and(|ct| ct.trim_start().starts_with("application/json")) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            media,
            "BAD_REQUEST",
            "send the request as Content-Type: application/json".into(),
        );
    }
    let limit = state.config.max_body_bytes;
    let bytes =
        match tokio::time::timeout(state.config.request_timeout, to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => bytes,
            Err(_) => {
                // A body trickled in slowly would hold the connection (and its memory) for as long
                // as the client likes.
                let mut response = refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    media,
                    "REQUEST_TIMEOUT",
                    format!(
                        "the request body did not arrive within {} s",
                        state.config.request_timeout.as_secs_f64()
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
            Ok(Err(_)) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    media,
                    "PAYLOAD_TOO_LARGE",
                    format!("the request body is larger than {limit} bytes"),
                );
            }
        };
    let mut request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                format!("the body is not a GraphQL request ({{\"query\": …}}): {err}"),
            );
        }
    };
    if request.query.trim().is_empty() && !DocumentCache::is_persisted(&request) {
        return refuse(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "the request has no `query`".into(),
        );
    }
    if let Err(err) = state.documents.resolve(&mut request) {
        return refuse_persisted_query(&state, media, err);
    }
    execute(&state, &headers, peer, request, media).await
}

/// Answers a persisted query that could not be used. PERSISTED_QUERY_NOT_FOUND comes with 200,
/// whatever the media type: Apollo's clients look for it only in a successful response, and
/// then send the query's text.
fn refuse_persisted_query(
    state: &AppState,
    media: &'static str,
    err: PersistedQueryError,
) -> Response {
    state
        .metrics
        .graphql_operation("http", &[err.code.to_owned()]);
    let status = if err.answered_with_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    refuse(status, media, err.code, err.message)
}

/// The query parameters of GET /graphql.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    /// JSON, as the spec says.
    variables: Option<String>,
    /// JSON too: Apollo's clients send `{"persistedQuery": …}` here, often without `query`.
    extensions: Option<String>,
}

/// GET /graphql: a WebSocket upgrade, GraphiQL for a browser, or a query.
pub(super) async fn get(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    if let Ok(upgrade) = upgrade {
        let client = client_addr(&state, &headers, peer);
        return super::ws::upgrade(state, upgrade, client, request_origin(&headers));
    }
    let media = response_media(&headers);
    let params = match params {
        Ok(Query(params)) => Some(params),
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                media,
                "BAD_REQUEST",
                err.body_text(),
            );
        }
    };
    let Some(params) =
        params.filter(|params| params.query.is_some() || params.extensions.is_some())
    else {
        if accepts(&headers, "text/html") {
            return super::graphiql::page();
        }
        return refuse(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "missing the `query` parameter".into(),
        );
    };
    let has_query = params.query.is_some();
    let mut request = async_graphql::Request::new(params.query.unwrap_or_default());
    if let Some(extensions) = params.extensions {
        match serde_json::from_str(&extensions) {
            Ok(extensions) => request.extensions = extensions,
            Err(err) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    format!("`extensions` is not a JSON object: {err}"),
                );
            }
        }
    }
    if !has_query && !DocumentCache::is_persisted(&request) {
        return refuse(
            StatusCode::BAD_REQUEST,
            media,
            "BAD_REQUEST",
            "missing the `query` parameter".into(),
        );
    }
    if let Err(err) = state.documents.resolve(&mut request) {
        return refuse_persisted_query(&state, media, err);
    }
    if is_mutation(&mut request, params.operation_name.as_deref()) {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            media,
            "BAD_REQUEST",
            "mutations are not allowed over GET; use POST".into(),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    if let Some(name) = params.operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = params.variables {
        match serde_json::from_str(&variables) {
            Ok(variables) => {
                request = request.variables(async_graphql::Variables::from_json(variables))
            }
            Err(err) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    media,
                    "BAD_REQUEST",
                    format!("`variables` is not JSON: {err}"),
                );
            }
        }
    }
    execute(&state, &headers, peer, request, media).await
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    request: async_graphql::Request,
    media: &'static str,
) -> Response {
    let auth = authenticate(state, headers).await;
    let request = request
        .data(auth)
        .data(ClientAddr(client_addr(state, headers, peer)))
        .data(request_origin(headers));
    let mut response = state.schema.execute(request).await;
    let codes = finalize_errors(&mut response);
    state.metrics.graphql_operation("http", &codes);
    let request_error = codes
        .iter()
        .any(|code| REQUEST_ERROR_CODES.contains(&code.as_str()));

    let mut body = match serde_json::to_value(&response) {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "could not serialize a GraphQL response");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                media,
                "INTERNAL",
                "internal error".into(),
            );
        }
    };
    if request_error && let Some(object) = body.as_object_mut() {
        // A request that never ran has no data entry at all (GraphQL over HTTP §6.4.2).
        object.remove("data");
    }
    let status = if request_error && media == GRAPHQL_RESPONSE {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    json(status, media, body.to_string())
}

/// Reads the bearer token, if any, and checks it against the store.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> RequestAuth {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return RequestAuth::Anonymous;
    };
    let token = value.to_str().ok().and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    });
    let Some(token) = token else {
        return RequestAuth::Rejected(
            Error::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
                .into(),
        );
    };
    match state.services.auth.authenticate(token.trim()).await {
        Ok(caller) => caller.into(),
        Err(err) => RequestAuth::Rejected(err.into()),
    }
}

/// The client's address as the configured proxies report it.
pub(super) fn client_addr(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> std::net::IpAddr {
    super::client_addr::client_addr(headers, peer, state.config.trusted_proxy_hops())
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|part| part.trim().starts_with(media)))
}

/// application/graphql-response+json when the client accepts it, else application/json.
fn response_media(headers: &HeaderMap) -> &'static str {
    if accepts(headers, GRAPHQL_RESPONSE) {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    }
}

/// Whether the operation that would run is a mutation. The request keeps the parsed document,
/// so it is not parsed again; unparsable queries are left to the executor, which reports them
/// properly.
fn is_mutation(request: &mut async_graphql::Request, operation_name: Option<&str>) -> bool {
    use async_graphql::parser::types::{DocumentOperations, OperationType};
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Mutation,
        DocumentOperations::Multiple(ops) => ops.iter().any(|(name, op)| {
            operation_name.is_none_or(|wanted| name.as_str() == wanted)
                && op.node.ty == OperationType::Mutation
        }),
    }
}

fn refuse(status: StatusCode, media: &'static str, code: &str, message: String) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    json(status, media, body.to_string())
}

fn json(status: StatusCode, media: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let content_type = if media == GRAPHQL_RESPONSE {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
