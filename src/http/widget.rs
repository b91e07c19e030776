//! The chat widget's files and the demo page, served from the binary: `/widget.js` (the loader
//! a site embeds), `/widget/<file>` (the frame it opens on this origin), and `/demo` (a sample
//! shop with the first organization's widget, when `SWITCHBOARD_DEMO` is on).

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::assets::{self, Asset, not_found};

/// Everything under /widget/ plus the loader. The loader is fetched on every page of every
/// site that embeds it, so it is cached briefly and revalidated by ETag; a deploy reaches
/// every visitor within minutes.
const ASSETS: &[Asset] = &[
    Asset {
        name: "widget.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../widget/widget.js"),
    },
    Asset {
        name: "frame.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../../widget/frame.html"),
    },
    Asset {
        name: "frame.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../widget/frame.js"),
    },
    Asset {
        name: "frame.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../widget/frame.css"),
    },
];

const CACHE_CONTROL: &str = "public, max-age=300";

/// The frame runs only its own files and talks only to this server, whatever page embeds it.
const FRAME_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

const DEMO: &str = include_str!("../../widget/demo.html");
const DEMO_ABOUT: &str = include_str!("../../widget/demo-about.html");

/// Each asset's ETag, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| assets::etags(ASSETS));

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
    let Some(index) = assets::find(ASSETS, name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let mut response = assets::respond(
        headers,
        &ETAGS[index],
        asset.content_type,
        CACHE_CONTROL,
        || asset.body.into_response(),
    );
    if name == "frame.html" {
        response.headers_mut().insert(
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
