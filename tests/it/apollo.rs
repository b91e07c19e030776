//! What Apollo's clients (and schema tools) expect of a server at its defaults: introspection
//! with every option of graphql-js, automatic persisted queries over HTTP GET, POST and both
//! WebSocket protocols, failed fields `null` at their path, and 4400 for a `subscribe` with no
//! query.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{TestServer, WsClient, agent_events, error_code, visitor, widget_key};

/// graphql-js's `getIntrospectionQuery` with every option on (descriptions, specifiedByUrl,
/// directiveIsRepeatable, schemaDescription, inputValueDeprecation, oneOf), as
/// graphql-codegen and Apollo's tooling send it.
const INTROSPECTION: &str = include_str!("fixtures/introspection-every-option.graphql");

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// POSTs `body` as JSON; the status and the body.
async fn post(server: &TestServer, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = server
        .http
        .post(&server.graphql_url)
        .header("Accept", "application/graphql-response+json")
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// GETs /graphql with `params`; the status and the body.
async fn get(server: &TestServer, token: Option<&str>, params: &[(&str, String)]) -> (u16, Value) {
    let mut request = server
        .http
        .get(&server.graphql_url)
        .header("Accept", "application/graphql-response+json")
        .query(params);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn introspection_with_every_option_passes_the_default_limits() {
    let server = TestServer::start().await;
    let (status, body) = post(
        &server,
        None,
        json!({"query": INTROSPECTION, "operationName": "IntrospectionQuery"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");
    let schema = &body["data"]["__schema"];
    assert_eq!(schema["queryType"]["name"], "QueryRoot");
    let types = schema["types"].as_array().unwrap();
    let date_time = types.iter().find(|t| t["name"] == "DateTime").unwrap();
    assert_eq!(date_time["kind"], "SCALAR");
    assert!(date_time.get("specifiedByURL").is_some(), "{date_time}");
    assert!(schema["directives"][0].get("isRepeatable").is_some());

    // Over GET too, as `apollo client:download-schema` may send it.
    let (status, body) = get(&server, None, &[("query", INTROSPECTION.to_owned())]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");

    // A real query as deep is refused as before, with the same code.
    let mut deep = "id".to_owned();
    for _ in 0..14 {
        deep = format!("me {{ {deep} }}");
    }
    let (status, body) = post(&server, None, json!({"query": format!("{{ {deep} }}")})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too deep")
    );
}

#[tokio::test]
async fn persisted_queries_register_on_a_miss_and_run_by_hash_over_post_and_get() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let query = "query Me { me { email } }";
    let hash = sha256(query);

    // Unknown: 200 with the code Apollo's clients retry on, whatever the media type.
    let (status, body) = post(
        &server,
        Some(&owner),
        json!({"extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND", "{body}");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");

    // The retry with the text runs and registers it.
    let (status, body) = post(
        &server,
        Some(&owner),
        json!({"query": query, "extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["email"], "owner@example.com");

    // From now on the hash alone is enough, over POST and GET.
    let (_, body) = post(
        &server,
        Some(&owner),
        json!({"extensions": persisted(&hash)}),
    )
    .await;
    assert_eq!(body["data"]["me"]["email"], "owner@example.com", "{body}");
    let extensions = persisted(&hash).to_string();
    let (status, body) = get(
        &server,
        Some(&owner),
        &[
            ("operationName", "Me".to_owned()),
            ("extensions", extensions),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["me"]["email"], "owner@example.com", "{body}");

    // GET registers too, the way Apollo's useGETForHashedQueries retries.
    let other = "{ organization { name } }";
    let other_hash = persisted(&sha256(other)).to_string();
    let (status, body) = get(&server, Some(&owner), &[("extensions", other_hash.clone())]).await;
    assert_eq!(
        (status, error_code(&body)),
        (200, "PERSISTED_QUERY_NOT_FOUND".into())
    );
    let (_, body) = get(
        &server,
        Some(&owner),
        &[
            ("query", other.to_owned()),
            ("extensions", other_hash.clone()),
        ],
    )
    .await;
    assert_eq!(body["data"]["organization"]["name"], "My Company", "{body}");
    let (_, body) = get(&server, Some(&owner), &[("extensions", other_hash)]).await;
    assert_eq!(body["data"]["organization"]["name"], "My Company", "{body}");
}

#[tokio::test]
async fn a_persisted_mutation_does_not_run_over_get() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let mutation = "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }";
    let hash = sha256(mutation);
    let (_, body) = post(
        &server,
        Some(&owner),
        json!({"query": mutation, "extensions": persisted(&hash)}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let (status, body) = get(
        &server,
        Some(&owner),
        &[("extensions", persisted(&hash).to_string())],
    )
    .await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(error_code(&body), "BAD_REQUEST");
}

#[tokio::test]
async fn bad_persisted_queries_get_coded_errors() {
    let server = TestServer::start().await;
    let query = "{ __typename }";
    // A hash that is not the text's is refused, and registers nothing.
    let wrong = sha256("{ something { else } }");
    let (status, body) = post(
        &server,
        None,
        json!({"query": query, "extensions": persisted(&wrong)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "BAD_REQUEST");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{body}"
    );
    let (_, body) = post(&server, None, json!({"extensions": persisted(&wrong)})).await;
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_FOUND");

    for extensions in [
        json!({"persistedQuery": {"version": 2, "sha256Hash": sha256(query)}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": "abc"}}),
        json!({"persistedQuery": {"version": 1, "sha256Hash": 12}}),
        json!({"persistedQuery": {"version": 1}}),
        json!({"persistedQuery": "yes"}),
        json!({"persistedQuery": null}),
    ] {
        let (status, body) = post(&server, None, json!({"extensions": extensions})).await;
        assert_eq!(status, 400, "{extensions}: {body}");
        assert_eq!(error_code(&body), "BAD_REQUEST", "{extensions}: {body}");
    }
    for extensions in ["not json", "[1]", "{\"persistedQuery\": {\"version\": 1"] {
        let (status, body) = get(&server, None, &[("extensions", extensions.to_owned())]).await;
        assert_eq!(status, 400, "{extensions}: {body}");
        assert_eq!(error_code(&body), "BAD_REQUEST", "{extensions}: {body}");
    }
    // A kept document is held to the limits each time it runs, as its text would be.
    let mut deep = "id".to_owned();
    for _ in 0..14 {
        deep = format!("me {{ {deep} }}");
    }
    let deep = format!("{{ {deep} }}");
    let (_, body) = post(
        &server,
        None,
        json!({"query": deep, "extensions": persisted(&sha256(&deep))}),
    )
    .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");
    let (_, body) = post(
        &server,
        None,
        json!({"extensions": persisted(&sha256(&deep))}),
    )
    .await;
    assert_eq!(error_code(&body), "QUERY_TOO_COMPLEX", "{body}");

    // Without a query or a persisted query there is nothing to run.
    let (status, body) = post(&server, None, json!({"extensions": {}})).await;
    assert_eq!((status, error_code(&body)), (400, "BAD_REQUEST".into()));
}

#[tokio::test]
async fn persisted_queries_can_be_turned_off() {
    let server = TestServer::start_with(crate::support::Backend::Sqlite, |config| {
        config.persisted_queries = 0;
    })
    .await;
    let query = "{ __typename }";
    let (status, body) = post(
        &server,
        None,
        json!({"query": query, "extensions": persisted(&sha256(query))}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(error_code(&body), "PERSISTED_QUERY_NOT_SUPPORTED");
    // Plain queries are unaffected.
    let (status, body) = post(&server, None, json!({"query": query})).await;
    assert_eq!(
        (status, &body["data"]["__typename"]),
        (200, &json!("QueryRoot"))
    );
}

#[tokio::test]
async fn persisted_queries_work_over_the_websocket() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let query = "subscription { me { email } }";
    let hash = sha256(query);
    let mut ws = server.ws_ready(&owner).await;

    ws.send(json!({"id": "1", "type": "subscribe", "payload": {"extensions": persisted(&hash)}}))
        .await;
    let error = ws.next().await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "1");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    // The connection stays open; the retry with the text registers it.
    ws.send(json!({"id": "1", "type": "subscribe",
        "payload": {"query": query, "extensions": persisted(&hash)}}))
        .await;
    let next = ws.next().await;
    assert_eq!(
        next["payload"]["data"]["me"]["email"], "owner@example.com",
        "{next}"
    );
    ws.send(json!({"type": "complete", "id": "1"})).await;

    // A registered hash runs without its text, on another socket too.
    let mut other = server.ws_ready(&owner).await;
    other
        .send(json!({"id": "2", "type": "subscribe", "payload": {"extensions": persisted(&hash)}}))
        .await;
    let next = other.next().await;
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(next["payload"]["data"]["me"]["email"], "owner@example.com");

    // And one registered over HTTP runs on the socket.
    let over_http = "{ organization { name } }";
    let (_, body) = post(
        &server,
        Some(&owner),
        json!({"query": over_http, "extensions": persisted(&sha256(over_http))}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    other
        .send(json!({"id": "3", "type": "subscribe",
            "payload": {"extensions": persisted(&sha256(over_http))}}))
        .await;
    let next = other.next().await;
    assert_eq!(
        next["payload"]["data"]["organization"]["name"], "My Company",
        "{next}"
    );
}

#[tokio::test]
async fn a_subscribe_without_a_query_closes_with_4400() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    for payload in [
        json!({}),
        json!({"query": ""}),
        json!({"query": "   "}),
        json!({"variables": {"a": 1}, "operationName": "X"}),
    ] {
        let mut ws = server.ws_ready(&owner).await;
        ws.send(json!({"id": "1", "type": "subscribe", "payload": payload}))
            .await;
        let (code, reason) = ws.closed().await;
        assert_eq!(code, 4400, "{payload}");
        assert!(reason.contains("no query"), "{payload}: {reason}");
    }
}

#[tokio::test]
async fn a_failed_field_is_null_at_its_path_beside_its_siblings() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server
        .ok(
            Some(&owner),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    let _online = agent_events(&server, &ada, None).await;
    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "v1").await;

    // `assignee` is for agents only: it fails for the customer, `assigneeName` does not.
    let body = server
        .gql(
            Some(&customer),
            "mutation { startChat(input: {message: \"Hello\"}) { status assignee { id } assigneeName } }",
            json!({}),
        )
        .await;
    let chat = &body["data"]["startChat"];
    assert_eq!(chat["status"], "ACTIVE", "{body}");
    assert!(chat["assigneeName"].is_string(), "{body}");
    assert!(
        chat.as_object().unwrap().contains_key("assignee") && chat["assignee"].is_null(),
        "the failed field is null, not left out: {body}"
    );
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["path"], json!(["startChat", "assignee"]));
    assert_eq!(errors[0]["extensions"]["code"], "FORBIDDEN");

    // A non-null field that fails makes its nearest nullable parent null: here, all of data.
    let body = server
        .gql(
            Some(&owner),
            "query($id: ID!) { organization { name } chat(id: $id) { id } }",
            json!({"id": "no-such-chat"}),
        )
        .await;
    assert_eq!(body["data"], Value::Null, "{body}");
    assert_eq!(body["errors"][0]["path"], json!(["chat"]));
    assert_eq!(error_code(&body), "NOT_FOUND");
}

#[tokio::test]
async fn persisted_queries_work_over_the_legacy_graphql_ws_protocol() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let query = "{ me { email } }";
    let hash = sha256(query);
    let mut ws = server.legacy_ws_ready(&owner).await;
    ws.send(json!({"id": "1", "type": "start", "payload": {"extensions": persisted(&hash)}}))
        .await;
    let error = next_skipping_ka(&mut ws).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );

    ws.send(json!({"id": "2", "type": "start",
        "payload": {"query": query, "extensions": persisted(&hash)}}))
        .await;
    let data = next_skipping_ka(&mut ws).await;
    assert_eq!(
        data["payload"]["data"]["me"]["email"], "owner@example.com",
        "{data}"
    );
    assert_eq!(next_skipping_ka(&mut ws).await["type"], "complete");

    ws.send(json!({"id": "3", "type": "start", "payload": {"extensions": persisted(&hash)}}))
        .await;
    let data = next_skipping_ka(&mut ws).await;
    assert_eq!(
        data["payload"]["data"]["me"]["email"], "owner@example.com",
        "{data}"
    );
}

/// The next legacy message that is not a keep-alive (those come on their own schedule).
async fn next_skipping_ka(ws: &mut WsClient) -> Value {
    loop {
        let message = ws.next().await;
        if message["type"] != "ka" {
            return message;
        }
    }
}
