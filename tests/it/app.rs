//! The agent web app's files as the server serves them: every file with its type and cache
//! headers, the page's content security policy, `/app` sending browsers to `/app/`, nothing
//! fetched from another site, and the size budget measured gzipped, the way browsers receive it.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::support::TestServer;

/// Everything the app loads: the page, its script and styles, the manifest, the service
/// worker and the icons.
const APP_BUDGET: usize = 60 * 1024;

const FILES: &[(&str, &str)] = &[
    ("/app/", "text/html; charset=utf-8"),
    ("/app/app.js", "text/javascript; charset=utf-8"),
    ("/app/app.css", "text/css; charset=utf-8"),
    ("/app/sw.js", "text/javascript; charset=utf-8"),
    ("/app/manifest.webmanifest", "application/manifest+json"),
    ("/app/icon.svg", "image/svg+xml"),
    ("/app/icon-192.png", "image/png"),
    ("/app/icon-512.png", "image/png"),
];

/// The text files, which could name another site.
const TEXT_FILES: &[&str] = &[
    "/app/",
    "/app/app.js",
    "/app/app.css",
    "/app/sw.js",
    "/app/manifest.webmanifest",
    "/app/icon.svg",
];

fn gzipped_len(bytes: &[u8]) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", server.base_url))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_app_fits_its_size_budget() {
    let server = TestServer::start().await;
    let mut total = 0;
    let mut sizes = Vec::new();
    for (path, _) in FILES {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 200, "{path}");
        let size = gzipped_len(&response.bytes().await.unwrap());
        sizes.push(format!("{path} {size}"));
        total += size;
    }
    eprintln!(
        "agent app, gzipped: {total} bytes in all ({})",
        sizes.join(", ")
    );
    assert!(
        total < APP_BUDGET,
        "the app is {total} bytes gzipped, over {APP_BUDGET}"
    );
}

#[tokio::test]
async fn app_files_have_their_types_and_cache_headers() {
    let server = TestServer::start().await;
    for (path, media) in FILES {
        let response = get(&server, path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], *media, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(headers.contains_key("cache-control"), "{path}");
        let etag = headers["etag"].to_str().unwrap().to_owned();

        // A cached copy is confirmed without the body.
        let again = client()
            .get(format!("{}{path}", server.base_url))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // The page and the service worker are checked on every start, so a deploy reaches
    // installed apps at once.
    for path in ["/app/", "/app/sw.js"] {
        let response = get(&server, path).await;
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
    }

    // The page runs only its own scripts and talks only to this server.
    let response = get(&server, "/app/").await;
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn app_without_its_slash_redirects_and_unknown_files_are_not_found() {
    let server = TestServer::start().await;
    let response = get(&server, "/app").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/app/");

    for path in [
        "/app/index.html",
        "/app/nope.js",
        "/app/icons.py",
        "/app/../Cargo.toml",
    ] {
        assert_eq!(get(&server, path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn no_app_file_loads_anything_from_another_site() {
    let server = TestServer::start().await;
    for path in TEXT_FILES {
        let body = get(&server, path).await.text().await.unwrap();
        // The SVG namespace names a specification, it is never fetched.
        let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        let body = body.replace("'http://www.w3.org/2000/svg'", "");
        for needle in [
            "http://",
            "https://",
            "//cdn",
            "url(//",
            "src=\"//",
            "href=\"//",
        ] {
            assert!(!body.contains(needle), "{path} contains {needle:?}");
        }
    }
}
