//! The agent web app's files, served from the binary under `/app/`: the page, its script and
//! styles, the service worker (under the same path, so its scope is `/app/` without extra
//! headers), the PWA manifest and the icons. `/app` redirects to `/app/` so relative URLs in
//! the page resolve inside the app.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::assets::{self, Asset, not_found};

/// The page and the service worker are revalidated on every load, so a deploy reaches an
/// installed app on its next start; the rest is cached briefly and revalidated by ETag.
const REVALIDATED: &[&str] = &["index.html", "sw.js"];

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../app/index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../app/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../app/app.css"),
    },
    Asset {
        name: "sw.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../app/sw.js"),
    },
    Asset {
        name: "manifest.webmanifest",
        content_type: "application/manifest+json",
        body: include_bytes!("../../app/manifest.webmanifest"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../app/icon.svg"),
    },
    Asset {
        name: "icon-192.png",
        content_type: "image/png",
        body: include_bytes!("../../app/icon-192.png"),
    },
    Asset {
        name: "icon-512.png",
        content_type: "image/png",
        body: include_bytes!("../../app/icon-512.png"),
    },
];

/// The app runs only its own files and talks only to this server (`'self'` covers the
/// WebSocket on the same host); no other site may frame it.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; manifest-src 'self'; worker-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Each asset's ETag, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| assets::etags(ASSETS));

/// GET /app
pub(super) async fn redirect() -> Redirect {
    Redirect::permanent("/app/")
}

/// GET /app/
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// GET /app/{file}
pub(super) async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "index.html" {
        // One address for the page, so the service worker's cache holds one copy.
        return not_found();
    }
    serve(&file, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(index) = assets::find(ASSETS, name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let cache_control = if REVALIDATED.contains(&name) {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let mut response = assets::respond(
        headers,
        &ETAGS[index],
        asset.content_type,
        cache_control,
        || asset.body.into_response(),
    );
    let out = response.headers_mut();
    if name == "index.html" {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        );
        // Links to customers' pages must not tell those sites where agents work.
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}
