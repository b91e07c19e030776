//! GraphiQL as the server serves it: the page and every file it loads come from the server
//! (gzipped, cached for a year under their digest), nothing points at another site, and the
//! introspection query GraphiQL sends to fill its docs passes the default limits while deeper
//! introspection is still refused.

use std::io::Read;

use serde_json::{Value, json};

use crate::support::{TestServer, error_code};

/// The query the vendored GraphiQL sends, taken from its bundle by graphiql/vendor.sh.
const INTROSPECTION: &str = include_str!("fixtures/graphiql-introspection.graphql");

/// Hosts that serve scripts and styles to pages; no file of ours may load from them.
const CDNS: &[&str] = &[
    "unpkg.com",
    "jsdelivr.net",
    "cdnjs.",
    "esm.sh",
    "skypack.dev",
    "googleapis.com",
    "gstatic.com",
    "jspm.io",
];

/// The addresses in the page's `src="…"` and `href="…"` attributes, but inline `data:` ones
/// (the empty icon that spares the browser asking for /favicon.ico).
fn page_addresses(page: &str) -> Vec<String> {
    let mut addresses = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in page.match_indices(attribute) {
            let rest = &page[at + attribute.len()..];
            let address = &rest[..rest.find('"').unwrap()];
            if !address.starts_with("data:") {
                addresses.push(address.to_owned());
            }
        }
    }
    addresses
}

async fn graphiql_page(server: &TestServer) -> reqwest::Response {
    server
        .http
        .get(&server.graphql_url)
        .header("Accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .unwrap();
    plain
}

#[tokio::test]
async fn graphiql_and_every_file_it_loads_come_from_the_server() {
    let server = TestServer::start().await;
    let response = graphiql_page(&server).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("connect-src 'self';"), "{policy}");
    let page = response.text().await.unwrap();
    assert!(page.contains("<title>Switchboard GraphiQL</title>"));
    assert!(
        !page.contains("http://") && !page.contains("https://") && !page.contains("//"),
        "the page names another site: {page}"
    );

    let addresses = page_addresses(&page);
    assert_eq!(addresses.len(), 7, "{addresses:?}");
    let (mut raw_total, mut sent_total) = (0, 0);
    for address in &addresses {
        assert!(address.starts_with("graphiql/"), "{address}");
        let url = format!("{}/{address}", server.base_url);
        let response = server
            .http
            .get(&url)
            .header("Accept-Encoding", "gzip, deflate, br")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{address}");
        let headers = response.headers().clone();
        let media = if address.contains(".js?") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(headers["content-type"], media, "{address}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{address}");
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{address}"
        );
        let sent = response.bytes().await.unwrap().to_vec();
        let gzipped = headers
            .get("content-encoding")
            .is_some_and(|encoding| encoding == "gzip");
        // The vendored builds go out gzipped; our own two small files as they are.
        let vendored = !address.starts_with("graphiql/graphiql.js")
            && !address.starts_with("graphiql/graphiql.css");
        assert_eq!(gzipped, vendored, "{address}");
        let body = if gzipped { gunzip(&sent) } else { sent.clone() };
        eprintln!("{address}: {} bytes, {} bytes sent", body.len(), sent.len());
        raw_total += body.len();
        sent_total += sent.len();

        // A client that does not take gzip gets the same file inflated.
        let plain = server.http.get(&url).send().await.unwrap();
        assert!(
            plain.headers().get("content-encoding").is_none(),
            "{address}"
        );
        assert_eq!(plain.bytes().await.unwrap().to_vec(), body, "{address}");

        let text = String::from_utf8(body).unwrap();
        for cdn in CDNS {
            assert!(!text.contains(cdn), "{address} names {cdn}");
        }
        if media.starts_with("text/css") {
            // Fonts and images are inlined as data: addresses; nothing else is fetched.
            for (at, _) in text.match_indices("url(") {
                let target = text[at + 4..].trim_start_matches(['"', '\'']);
                assert!(
                    target.starts_with("data:"),
                    "{address}: url({})",
                    &target[..40]
                );
            }
            assert!(!text.contains("@import"), "{address}");
        }
    }
    eprintln!("GraphiQL: {raw_total} bytes, {sent_total} bytes sent gzipped");
}

#[tokio::test]
async fn graphiql_files_without_their_digest_are_revalidated() {
    let server = TestServer::start().await;
    let url = format!("{}/graphiql/graphiql.js", server.base_url);
    let response = server.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let again = server
        .http
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    let stale = server
        .http
        .get(format!("{url}?v=0000000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.headers()["cache-control"], "no-cache");

    for missing in [
        "/graphiql/index.html",
        "/graphiql/MANIFEST",
        "/graphiql/..%2FCargo.toml",
    ] {
        let response = server
            .http
            .get(format!("{}{missing}", server.base_url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{missing}");
    }
}

#[tokio::test]
async fn graphiqls_introspection_query_passes_the_default_limits() {
    let server = TestServer::start().await;
    // GraphiQL sends it with the headers of the Headers tab, with or without a token, and falls
    // back to the same query without subscriptionType.
    let token = server.owner_token().await;
    let without_subscriptions = INTROSPECTION.replace("subscriptionType { name }", "");
    for (query, token) in [
        (INTROSPECTION, None),
        (INTROSPECTION, Some(token.as_str())),
        (without_subscriptions.as_str(), None),
    ] {
        let mut request = server.http.post(&server.graphql_url).json(&json!({
            "query": query,
            "operationName": "IntrospectionQuery",
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(body.get("errors").is_none(), "{body}");
        let types = body["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "Agent"), "{body}");
        let agent = types.iter().find(|t| t["name"] == "Agent").unwrap();
        assert!(
            agent["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["name"] == "email")
        );
    }
}

#[tokio::test]
async fn deeper_introspection_and_deep_queries_are_still_refused() {
    let server = TestServer::start().await;
    // Each level of fields-of-a-field's-type multiplies the response by the schema's size.
    let nested_lists = r#"{ __type(name: "Query") { fields { type { fields { type {
        fields { type { fields { name } } } } } } } } }"#;
    let body = server.gql(None, nested_lists, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(body.get("data").is_none_or(Value::is_null), "{body}");

    // The same through fragments and the other lists.
    let through_fragments = r#"{ __schema { types { ...A } } }
        fragment A on __Type { interfaces { ...B } }
        fragment B on __Type { possibleTypes { ...C } }
        fragment C on __Type { inputFields { name } }"#;
    let body = server.gql(None, through_fragments, json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Far more ofTypes than any type needs.
    let mut of_types = "name".to_owned();
    for _ in 0..30 {
        of_types = format!("ofType {{ {of_types} }}");
    }
    let body = server
        .gql(
            None,
            &format!(r#"{{ __type(name: "Agent") {{ {of_types} }} }}"#),
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Outside introspection the configured depth (12) holds, checked before anything runs.
    let mut deep = "id".to_owned();
    for _ in 0..12 {
        deep = format!("a {{ {deep} }}");
    }
    let body = server.gql(None, &format!("{{ {deep} }}"), json!({})).await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep"),
        "{body}"
    );
}
