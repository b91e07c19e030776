//! The chat widget's files and the demo page as the server serves them: content types,
//! caching, 404s, `/demo` on and off, and the size budgets measured gzipped, the way browsers
//! receive them.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer, error_code};

/// The loader every page of an embedding site fetches.
const LOADER_BUDGET: usize = 5 * 1024;
/// Everything the widget needs: the loader and every file of the frame.
const WIDGET_BUDGET: usize = 60 * 1024;
const FRAME_FILES: &[&str] = &["frame.html", "frame.js", "frame.css"];

fn gzipped_len(bytes: &[u8]) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap().len()
}

/// GETs `path`; the status, the content type and the body.
async fn get(server: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let response = server
        .http
        .get(format!("{}{path}", server.base_url))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn the_widget_fits_its_size_budgets() {
    let server = TestServer::start().await;
    let (status, _, loader) = get(&server, "/widget.js").await;
    assert_eq!(status, 200);
    let loader_size = gzipped_len(&loader);
    let mut total = loader_size;
    for file in FRAME_FILES {
        let (status, _, body) = get(&server, &format!("/widget/{file}")).await;
        assert_eq!(status, 200, "{file}");
        total += gzipped_len(&body);
    }
    eprintln!("widget sizes, gzipped: loader {loader_size} bytes, everything {total} bytes");
    assert!(
        loader_size < LOADER_BUDGET,
        "the loader is {loader_size} bytes gzipped, over {LOADER_BUDGET}"
    );
    assert!(
        total < WIDGET_BUDGET,
        "the widget is {total} bytes gzipped, over {WIDGET_BUDGET}"
    );
}

#[tokio::test]
async fn widget_files_have_their_types_and_cache_headers() {
    let server = TestServer::start().await;
    for (path, media) in [
        ("/widget.js", "text/javascript; charset=utf-8"),
        ("/widget/frame.html", "text/html; charset=utf-8"),
        ("/widget/frame.js", "text/javascript; charset=utf-8"),
        ("/widget/frame.css", "text/css; charset=utf-8"),
    ] {
        let response = server
            .http
            .get(format!("{}{path}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], media, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age"),
            "{path}"
        );
        let etag = headers["etag"].to_str().unwrap().to_owned();

        // A cached copy is confirmed without the body.
        let again = server
            .http
            .get(format!("{}{path}", server.base_url))
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
    }

    // The frame runs only its own files, whatever page embeds it.
    let response = server
        .http
        .get(format!("{}/widget/frame.html", server.base_url))
        .send()
        .await
        .unwrap();
    let policy = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(response.headers().get("x-frame-options").is_none());
}

#[tokio::test]
async fn unknown_widget_files_are_not_found() {
    let server = TestServer::start().await;
    for path in [
        "/widget/nothing.js",
        "/widget/widget.js",
        "/widget/..%2Fsrc%2Fmain.rs",
        "/widget/",
        "/widget.css",
    ] {
        let (status, _, _) = get(&server, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

crate::on_both_backends!(the_demo_embeds_the_first_organizations_widget);

/// The demo reads the first organization from the store: both backends.
async fn the_demo_embeds_the_first_organizations_widget(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let token = server.owner_token().await;
    let key = crate::support::widget_key(&server, &token).await;
    for path in ["/demo", "/demo/about"] {
        let (status, media, body) = get(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(media, "text/html; charset=utf-8");
        let page = String::from_utf8(body).unwrap();
        assert!(
            page.contains(&format!(
                "<script src=\"/widget.js\" data-widget-key=\"{key}\" async></script>"
            )),
            "{path}: {page}"
        );
        assert!(!page.contains("{{"), "{path} has an unfilled placeholder");
    }
}

#[tokio::test]
async fn the_demo_can_be_switched_off() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.demo = false;
    })
    .await;
    let (status, _, _) = get(&server, "/demo").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&server, "/demo/about").await;
    assert_eq!(status, 404);
    // The widget itself is still served.
    let (status, _, _) = get(&server, "/widget.js").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_frame_speaks_for_the_page_that_embeds_it_and_only_the_frame_can() {
    let server = TestServer::start().await;
    let token = server.owner_token().await;
    let key = crate::support::widget_key(&server, &token).await;
    server
        .ok(
            Some(&token),
            "mutation { updateWidgetSettings(input: {allowedOrigins: [\"https://shop.test\"]}) { allowedOrigins } }",
            json!({}),
        )
        .await;
    // The frame's own origin is the server's; what counts is the page it names.
    let own = server.base_url.clone();
    for (origin, page, allowed) in [
        (own.as_str(), Some("https://shop.test"), true),
        (own.as_str(), Some("https://evil.test"), false),
        // Our own pages without a frame (GraphiQL) are not on the list either.
        (own.as_str(), None, false),
        // Another site's page cannot borrow the frame's header.
        ("https://evil.test", Some("https://shop.test"), false),
        ("https://shop.test", None, true),
    ] {
        let mut request = server
            .http
            .post(&server.graphql_url)
            .header("Origin", origin)
            .json(&json!({
                "query": "query($key: String!) { widget(widgetKey: $key) { organizationName } }",
                "variables": {"key": key},
            }));
        if let Some(page) = page {
            request = request.header("X-Switchboard-Page-Origin", page);
        }
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        if allowed {
            assert!(body.get("errors").is_none(), "{origin} {page:?}: {body}");
        } else {
            assert_eq!(error_code(&body), "FORBIDDEN", "{origin} {page:?}: {body}");
        }
    }
}

#[tokio::test]
async fn the_start_up_banner_says_where_the_demo_is() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .env_clear()
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut address = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Switchboard is listening on http://") {
                address = Some(rest.trim_end_matches("/graphql").to_owned());
            } else if let Some(demo) = line.strip_prefix("The demo shop with the chat widget: ") {
                let _ = sender.send((address.take(), demo.to_owned()));
                return;
            }
        }
    });
    let banner = receiver.recv_timeout(std::time::Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let (address, demo) = banner.expect("the banner names the demo within 20 s");
    let address = address.expect("the listening line comes first");
    assert_eq!(demo, format!("http://{address}/demo"));
}
