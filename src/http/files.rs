//! Files attached to messages, over plain HTTP: uploading (`POST /files?chatId=…&name=…`, the
//! raw bytes as the body, `Authorization: Bearer` with an agent's or a visitor's token) and
//! downloading through a signed link (`GET /files/{id}/{name}?expires=…&signature=…`, as
//! `Message.attachments.url` gives it). Errors are JSON shaped like GraphQL's:
//! `{"errors": [{"message": …, "extensions": {"code": …}}]}`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::error::Error;
use crate::services::files::UploadError;

/// The query of an upload.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UploadQuery {
    chat_id: Option<String>,
    /// The file's name; `X-File-Name` (percent-encoded) works too.
    name: Option<String>,
}

/// POST /files
pub(super) async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(chat_id) = query.chat_id.filter(|c| !c.is_empty()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "say which chat the file is for: POST /files?chatId=…&name=…",
        );
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "send Authorization: Bearer with an agent's or a visitor's access token",
        );
    };
    let caller = match state.services.auth.authenticate(token).await {
        Ok(caller) => caller,
        Err(err) => return error_response(&err),
    };
    let name = query
        .name
        .or_else(|| {
            headers
                .get("x-file-name")
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    url::form_urlencoded::parse(format!("n={v}").as_bytes())
                        .next()
                        .map(|(_, n)| n.into_owned())
                        .unwrap_or_default()
                })
        })
        .unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let declared_len = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let result = state
        .services
        .files
        .upload(
            &caller,
            &chat_id,
            &name,
            content_type,
            declared_len,
            body.into_data_stream(),
        )
        .await;
    match result {
        Ok(file) => (
            StatusCode::CREATED,
            axum::Json(json!({
                "id": file.id,
                "chatId": file.chat_id,
                "name": file.name,
                "contentType": file.content_type,
                "size": file.size,
                "isImage": file.is_image(),
            })),
        )
            .into_response(),
        Err(UploadError::TooLarge(message)) => {
            let mut response = refuse(StatusCode::PAYLOAD_TOO_LARGE, "FILE_TOO_LARGE", &message);
            // The rest of the body was not read: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Err(UploadError::Unsupported(message)) => refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "FILE_TYPE_NOT_ALLOWED",
            &message,
        ),
        Err(UploadError::Incomplete(message)) => {
            refuse(StatusCode::BAD_REQUEST, "BAD_REQUEST", &message)
        }
        Err(UploadError::Other(err)) => error_response(&err),
    }
}

/// The query of a download link.
#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    expires: Option<i64>,
    signature: Option<String>,
}

/// GET /files/{id}/{name}
pub(super) async fn download(
    State(state): State<AppState>,
    Path((id, _name)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let (Some(expires), Some(signature)) = (query.expires, query.signature) else {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this download link is invalid or has expired",
        );
    };
    let download = match state
        .services
        .files
        .download(&id, expires, &signature)
        .await
    {
        Ok(download) => download,
        Err(err) => return error_response(&err),
    };
    let file = download.file;
    let disposition = if file.is_image() {
        "inline"
    } else {
        "attachment"
    };
    let mut response = Response::new(Body::from_stream(download.body));
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set(header::CONTENT_TYPE, file.content_type.clone());
    set(header::CONTENT_LENGTH, file.size.to_string());
    set(
        header::CONTENT_DISPOSITION,
        format!(
            "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
            ascii_name(&file.name),
            percent_name(&file.name)
        ),
    );
    // The link is private to its holder and expires; a shared cache must not keep it.
    let max_age = (expires - chrono::Utc::now().timestamp()).max(0);
    set(header::CACHE_CONTROL, format!("private, max-age={max_age}"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Whatever the bytes are, opened on its own the file runs nothing and reaches nothing.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The name for old clients' `filename="…"`: ASCII, no quotes or backslashes.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The name for `filename*=UTF-8''…` (RFC 5987).
fn percent_name(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn error_response(err: &Error) -> Response {
    let status = match err {
        Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::Banned(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::BadUserInput(_) => StatusCode::BAD_REQUEST,
        Error::Conflict(_) | Error::MessengerWindowClosed(_) => StatusCode::CONFLICT,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::AgentsOffline(_) | Error::EmailNotConfigured(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal(cause) => {
            tracing::error!(error = %cause, "file request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut response = refuse(status, err.code(), &err.to_string());
    if let Error::RateLimited {
        retry_after_secs, ..
    } = err
        && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({
            "errors": [{ "message": message, "extensions": { "code": code } }]
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_content_disposition_cannot_break_out() {
        assert_eq!(ascii_name("a\"b\\c é.png"), "a_b_c _.png");
        assert_eq!(percent_name("é a.png"), "%C3%A9%20a.png");
    }
}
