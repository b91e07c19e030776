//! Files embedded in the binary and served with an ETag: the chat widget's, the agent web
//! app's and GraphiQL's. Each module keeps its own list and policies; what answering for one
//! file means is here.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file, served as it is stored.
pub(super) struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

/// A digest of a file's bytes: the first 8 bytes of its SHA-256, in hex.
pub(super) fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Each file's ETag, in the order of `assets`.
pub(super) fn etags(assets: &[Asset]) -> Vec<String> {
    assets
        .iter()
        .map(|asset| format!("\"{}\"", digest(asset.body)))
        .collect()
}

/// The position of the file named `name`.
pub(super) fn find(assets: &[Asset], name: &str) -> Option<usize> {
    assets.iter().position(|asset| asset.name == name)
}

/// The answer for one file: 304 when the client's `If-None-Match` names `etag`, else what
/// `body` makes; either way with the file's type, `cache_control`, `nosniff` and the ETag.
pub(super) fn respond(
    headers: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    cache_control: &'static str,
    body: impl FnOnce() -> Response,
) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body()
    };
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    response
}

pub(super) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
