//! The chat widget's files and the demo page, served from the binary: `/widget.js` (the loader
//! a site embeds), `/widget/<file>` (the frame it opens on this origin), and `/demo` (a sample
//! shop with the first organization's widget, when `SWITCHBOARD_DEMO` is on).

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::AppState;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Everything under /widget/ plus the loader. The loader is fetched on every page of every
/// site that embeds it, so it is cached briefly and revalidated by ETag; a deploy reaches
/// every visitor within minutes.
const ASSETS: &[Asset] = &[
    Asset {
        name: "widget.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../widget/widget.js"),
    },
    Asset {
        name: "frame.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../widget/frame.html"),
    },
    Asset {
        name: "frame.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../widget/frame.js"),
    },
    Asset {
        name: "frame.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../widget/frame.css"),
    },
];

const CACHE_CONTROL: &str = "public, max-age=300";

/// The frame runs only its own files and talks only to this server, whatever page embeds it.
const FRAME_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

const DEMO: &str = include_str!("../../widget/demo.html");
const DEMO_ABOUT: &str = include_str!("../../widget/demo-about.html");

/// Each asset's ETag: a digest of its bytes, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("\"{hex}\"")
        })
        .collect()
});

/// GET /widget.js
pub(super) async fn loader(headers: HeaderMap) -> Response {
    serve("widget.js", &headers)
}

/// GET /widget/{file}
pub(super) async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "widget.js" {
        // One address for the loader, so caches hold one copy.
        return not_found();
    }
    serve(&file, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.body.into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    if name == "frame.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(FRAME_POLICY),
        );
    }
    response
}

/// GET /demo: the sample shop with the first organization's widget.
pub(super) async fn demo(State(state): State<AppState>) -> Response {
    demo_page(&state, DEMO).await
}

/// GET /demo/about: a second page of the shop, reached by a full page load.
pub(super) async fn demo_about(State(state): State<AppState>) -> Response {
    demo_page(&state, DEMO_ABOUT).await
}

async fn demo_page(state: &AppState, template: &str) -> Response {
    match state.services.accounts.first_widget_key().await {
        Ok(Some(key)) => {
            let mut response = Html(template.replace("{{WIDGET_KEY}}", &key)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Ok(None) => not_found(),
        Err(err) => {
            tracing::error!(error = %err, "cannot read the demo's organization");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
        }
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}
