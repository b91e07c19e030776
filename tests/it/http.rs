//! GraphQL over HTTP: methods, media types, limits, bad input; and the operational endpoints.

use serde_json::{Value, json};

use crate::support::{Backend, OWNER_PASSWORD, TestServer, error_code};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

async fn post_raw(
    server: &TestServer,
    content_type: &str,
    accept: &str,
    body: String,
) -> (u16, String, Value) {
    let response = server
        .http
        .post(&server.graphql_url)
        .header("Content-Type", content_type)
        .header("Accept", accept)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let media = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, media, response.json().await.unwrap())
}

#[tokio::test]
async fn queries_run_over_get_but_mutations_do_not() {
    let server = TestServer::start().await;
    let token = server.owner_token().await;
    let response = server
        .http
        .get(&server.graphql_url)
        .query(&[
            ("query", "query Me { me { email } }"),
            ("operationName", "Me"),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["email"], "owner@example.com");

    let response = server
        .http
        .get(&server.graphql_url)
        .query(&[("query", "mutation { logout }")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    // The session was not logged out.
    server.ok(Some(&token), "{ me { email } }", json!({})).await;

    let response = server
        .http
        .get(&server.graphql_url)
        .query(&[("query", "{ me { email } }"), ("variables", "{oops")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn graphql_response_json_gets_400_for_requests_that_cannot_run() {
    let server = TestServer::start().await;
    let body = json!({"query": "{ noSuchField }"}).to_string();
    let (status, media, json) =
        post_raw(&server, "application/json", GRAPHQL_RESPONSE, body.clone()).await;
    assert_eq!(status, 400);
    assert!(media.starts_with(GRAPHQL_RESPONSE));
    assert!(
        json.get("data").is_none(),
        "a request that never ran has no data: {json}"
    );
    assert_eq!(error_code(&json), "GRAPHQL_VALIDATION_FAILED");

    let (status, media, json) =
        post_raw(&server, "application/json", "application/json", body).await;
    assert_eq!(status, 200);
    assert_eq!(media, "application/json");
    assert_eq!(error_code(&json), "GRAPHQL_VALIDATION_FAILED");

    // A field error is a response, not a request error: 200 with data.
    let body = json!({"query": "{ me { email } }"}).to_string();
    let (status, _, json) = post_raw(&server, "application/json", GRAPHQL_RESPONSE, body).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&json), "UNAUTHENTICATED");
    assert!(json.get("data").is_some());

    let (status, _, json) = post_raw(
        &server,
        "application/json",
        GRAPHQL_RESPONSE,
        json!({"query": "{ me {"}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&json), "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn malformed_requests_are_refused_with_a_reason() {
    let server = TestServer::start().await;
    let (status, _, json) = post_raw(
        &server,
        "application/json",
        "application/json",
        "{\"query\": ".into(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&json), "BAD_REQUEST");

    let (status, _, json) = post_raw(
        &server,
        "application/json",
        "application/json",
        "{\"variables\": {}}".into(),
    )
    .await;
    assert_eq!(status, 400, "a body without a query");
    assert_eq!(error_code(&json), "BAD_REQUEST");

    let (status, _, json) = post_raw(
        &server,
        "text/plain",
        "application/json",
        "{ me { id } }".into(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(error_code(&json), "BAD_REQUEST");
}

#[tokio::test]
async fn the_body_size_is_limited() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.max_body_bytes = 4096).await;
    let query = format!("{{ me {{ email }} }} # {}", "x".repeat(5000));
    let (status, _, json) = post_raw(
        &server,
        "application/json",
        "application/json",
        json!({"query": query}).to_string(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&json), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn depth_and_complexity_are_limited() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.max_query_depth = 2;
        c.max_query_complexity = 6;
    })
    .await;
    // Limits are checked before anything runs, so no token is needed to hit them.
    // Deep but cheap: no lists, whose items count many times.
    let deep = server
        .gql(
            None,
            r#"{ chat(id: "x") { assignee { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(error_code(&deep), "QUERY_TOO_COMPLEX");
    assert!(
        deep["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep")
    );
    let wide = server
        .gql(
            None,
            "{ me { id email name role routingStatus isActive createdAt } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&wide), "QUERY_TOO_COMPLEX");
    assert!(
        wide["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex")
    );
    let fine = server.gql(None, "{ me { email } }", json!({})).await;
    assert_eq!(
        error_code(&fine),
        "UNAUTHENTICATED",
        "within the limits the query runs"
    );
}

#[tokio::test]
async fn bad_input_gets_a_code_and_changes_nothing() {
    let server = TestServer::start().await;
    let token = server.owner_token().await;
    const CREATE: &str =
        "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }";
    let cases = [
        (
            json!({"email": "not-an-email", "name": "A", "password": "agent-password-1"}),
            "BAD_USER_INPUT",
            "valid email",
        ),
        (
            json!({"email": "a@example.com", "name": "x".repeat(10_000), "password": "agent-password-1"}),
            "BAD_USER_INPUT",
            "at most 100",
        ),
        (
            json!({"email": "a@example.com", "name": "   ", "password": "agent-password-1"}),
            "BAD_USER_INPUT",
            "must not be empty",
        ),
        (
            json!({"email": "a@example.com", "name": "A", "password": "p".repeat(1000)}),
            "BAD_USER_INPUT",
            "at most 128",
        ),
        (
            json!({"email": "a@example.com", "name": "A", "password": "agent-password-1", "role": "KING"}),
            "GRAPHQL_VALIDATION_FAILED",
            "KING",
        ),
        (
            json!({"email": 5, "name": "A", "password": "agent-password-1"}),
            "GRAPHQL_VALIDATION_FAILED",
            "email",
        ),
        (
            json!({"email": "a@example.com", "name": "A", "password": "agent-password-1", "chatLimit": "many"}),
            "GRAPHQL_VALIDATION_FAILED",
            "chatLimit",
        ),
    ];
    for (input, code, message) in cases {
        let body = server
            .gql(Some(&token), CREATE, json!({"input": input}))
            .await;
        assert_eq!(error_code(&body), code, "{input} → {body}");
        let text = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            text.contains(message),
            "{text:?} should mention {message:?}"
        );
        assert!(
            text.len() < 400,
            "the message does not echo huge input: {text}"
        );
    }
    // Literal arguments of the wrong type are caught before anything runs.
    let body = server
        .gql(
            None,
            "mutation { login(input: {email: 5, password: \"x\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "GRAPHQL_VALIDATION_FAILED");
    let invalid_email = server
        .gql(
            None,
            "mutation { login(input: {email: \"nope\", password: \"x\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&invalid_email), "BAD_USER_INPUT");

    let agents = server
        .ok(Some(&token), "{ agents { email } }", json!({}))
        .await;
    assert_eq!(
        agents["agents"].as_array().unwrap().len(),
        1,
        "no agent was created"
    );
    server.login("owner@example.com", OWNER_PASSWORD).await;
}

#[tokio::test]
async fn a_browser_gets_graphiql() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(&server.graphql_url)
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("GraphiQL"));
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let mut server = TestServer::start().await;
    let health = server
        .http
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = server
        .http
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    server.gql(None, "{ me { email } }", json!({})).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("switchboard_http_requests_total{route=\"/graphql\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("switchboard_graphql_operations_total{transport=\"http\"} 1"));
    assert!(metrics.contains("switchboard_graphql_errors_total{code=\"UNAUTHENTICATED\"} 1"));
    assert!(metrics.contains("switchboard_websockets_open 0"));
    assert!(metrics.contains("switchboard_db_pool_connections{pool=\"write\",state=\"idle\"}"));

    // With the database gone, the server is alive but not ready.
    server.store.close().await;
    let ready = server
        .http
        .get(format!("{}/readyz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let health = server
        .http
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.shut_down().await;
}

#[tokio::test]
async fn internal_errors_reach_the_client_as_internal_only() {
    let server = TestServer::start().await;
    let token = server.owner_token().await;
    server.store.close().await;
    let body = server
        .gql(Some(&token), "{ me { email } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "INTERNAL");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert_eq!(message, "internal error", "no cause leaks to the client");
}
