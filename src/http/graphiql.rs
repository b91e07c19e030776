//! GraphiQL, served from the binary: the page a browser gets at GET /graphql and its files at
//! `/graphiql/<file>`. Nothing comes from a CDN.
//!
//! React, GraphiQL and graphql-ws are vendored in `graphiql/vendor/` as their published browser
//! builds, gzipped once by `graphiql/vendor.sh` (GraphiQL alone is 3.5 MB raw, 0.7 MB gzipped).
//! They are embedded and sent gzipped as they are, since every browser accepts gzip; a client
//! that does not gets them inflated. The page names each file with a digest of its bytes, so
//! browsers keep them for a year and a new build is fetched as a new address.

use std::io::Read;
use std::sync::{LazyLock, OnceLock};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::assets::{self, not_found};

/// How an embedded file is stored.
enum Stored {
    /// As it is served.
    Plain(&'static [u8]),
    /// Gzipped.
    Gzip(&'static [u8]),
}

/// One embedded file of the page.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    stored: Stored,
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            stored: Stored::Gzip(include_bytes!(concat!(
                "../../graphiql/vendor/",
                $name,
                ".gz"
            ))),
        }
    };
}

const ASSETS: &[Asset] = &[
    vendored!("react.production.min.js", JS),
    vendored!("react-dom.production.min.js", JS),
    vendored!("graphiql.min.js", JS),
    vendored!("graphiql.min.css", CSS),
    vendored!("graphql-ws.min.js", JS),
    Asset {
        name: "graphiql.js",
        content_type: JS,
        stored: Stored::Plain(include_bytes!("../../graphiql/graphiql.js")),
    },
    Asset {
        name: "graphiql.css",
        content_type: CSS,
        stored: Stored::Plain(include_bytes!("../../graphiql/graphiql.css")),
    },
];

/// The page runs only its own files and talks only to this server (`'self'` covers the
/// WebSocket at the same address). GraphiQL's editors set inline styles.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Files requested with their current digest never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Each asset's digest (see [`assets::digest`]) of its stored bytes.
static DIGESTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| match asset.stored {
            Stored::Plain(bytes) | Stored::Gzip(bytes) => assets::digest(bytes),
        })
        .collect()
});

/// The page, each `{{file}}` replaced by the file's address with its digest. Relative, so the
/// page works behind a proxy that serves it under a path prefix.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    let mut page = include_str!("../../graphiql/index.html").to_owned();
    for (asset, digest) in ASSETS.iter().zip(DIGESTS.iter()) {
        page = page.replace(
            &format!("{{{{{}}}}}", asset.name),
            &format!("graphiql/{}?v={digest}", asset.name),
        );
    }
    page
});

/// The gzipped files inflated, for the rare client that does not accept gzip: once each.
static INFLATED: LazyLock<Vec<OnceLock<Vec<u8>>>> =
    LazyLock::new(|| ASSETS.iter().map(|_| OnceLock::new()).collect());

/// The GraphiQL page, for GET /graphql from a browser.
pub(super) fn page() -> Response {
    let mut response = PAGE.as_str().into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page names the current files, so it is revalidated on every load.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The query of a file's address.
#[derive(Deserialize)]
pub(super) struct FileParams {
    /// The digest the page named the file with.
    v: Option<String>,
}

/// GET /graphiql/{file}
pub(super) async fn file(
    Path(name): Path<String>,
    Query(params): Query<FileParams>,
    headers: HeaderMap,
) -> Response {
    let Some(index) = ASSETS.iter().position(|asset| asset.name == name) else {
        return not_found();
    };
    let asset = &ASSETS[index];
    let digest = &DIGESTS[index];
    // An address without the current digest may name an older build: check each time.
    let cache = if params.v.as_deref() == Some(digest.as_str()) {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let etag = format!("\"{digest}\"");
    let mut response = assets::respond(&headers, &etag, asset.content_type, cache, || match asset
        .stored
    {
        Stored::Plain(bytes) => bytes.into_response(),
        Stored::Gzip(bytes) if accepts_gzip(&headers) => {
            let mut response = bytes.into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
        }
        Stored::Gzip(bytes) => INFLATED[index]
            .get_or_init(|| inflate(bytes))
            .as_slice()
            .into_response(),
    });
    if matches!(asset.stored, Stored::Gzip(_)) {
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|part| {
            let mut pieces = part.split(';');
            let coding = pieces.next().unwrap_or_default().trim();
            let refused = pieces.any(|param| {
                param
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

fn inflate(gzipped: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut plain)
        .expect("the vendored files are valid gzip (tests/it/graphiql.rs inflates each)");
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept_encoding(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn gzip_is_sent_to_clients_that_accept_it() {
        assert!(accepts_gzip(&accept_encoding("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&accept_encoding("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&accept_encoding("*")));
        assert!(!accepts_gzip(&accept_encoding("gzip;q=0")));
        assert!(!accepts_gzip(&accept_encoding("identity")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn the_page_names_every_file_by_its_digest() {
        assert!(!PAGE.contains("{{"), "a file of the page is not embedded");
        for (asset, digest) in ASSETS.iter().zip(DIGESTS.iter()) {
            let address = format!("\"graphiql/{}?v={digest}\"", asset.name);
            assert!(PAGE.contains(&address), "{address}");
        }
    }
}
