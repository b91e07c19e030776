//! Embedding the widget: its public set-up, the admins' settings, the sites allowed to use the
//! widget key, signed visitor identities, and the API from another origin (CORS).

use serde_json::{Value, json};

use crate::support::{
    Backend, TestServer, WsClient, agent_events, error_code, start_chat, visitor, widget_key,
};

const WIDGET: &str = "query($key: String!) { widget(widgetKey: $key) {
    organizationName color position title greeting offlineText preChatName preChatEmail locale
    groups { id name } } }";

const UPDATE: &str = "mutation($input: UpdateWidgetSettingsInput!) {
    updateWidgetSettings(input: $input) {
        color position title greeting offlineText preChatName preChatEmail locale allowedOrigins } }";

const START: &str = "mutation($input: StartVisitorSessionInput!) {
    startVisitorSession(input: $input) { token visitorId visitorSecret customer { id externalId name } } }";

/// POSTs `query` as a page of `origin` would.
async fn from_origin(
    server: &TestServer,
    origin: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> (reqwest::header::HeaderMap, Value) {
    let mut request = server
        .http
        .post(&server.graphql_url)
        .header("Origin", origin)
        .json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

fn signature(secret: &str, user_id: &str) -> String {
    switchboard::domain::identity_signature(secret, user_id)
}

async fn the_widget_shows_what_admins_set_and_refuses_bad_settings(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;

    let defaults = server.ok(None, WIDGET, json!({"key": key})).await["widget"].clone();
    assert_eq!(defaults["organizationName"], "My Company");
    assert_eq!(defaults["color"], "#2563eb");
    assert_eq!(defaults["position"], "RIGHT");
    assert_eq!(
        defaults["title"],
        Value::Null,
        "null: the widget's own words"
    );
    assert_eq!(defaults["preChatName"], "HIDDEN");
    assert_eq!(defaults["locale"], "en");

    let group = server
        .ok(
            Some(&owner),
            "mutation { createGroup(input: {name: \"Sales\"}) { id } }",
            json!({}),
        )
        .await["createGroup"]["id"]
        .clone();
    let updated = server
        .ok(
            Some(&owner),
            UPDATE,
            json!({"input": {"color": "#FF8800", "position": "LEFT", "title": "Talk to us",
                "greeting": "Hi! How can we help?", "offlineText": "Leave a note",
                "preChatName": "REQUIRED", "preChatEmail": "OPTIONAL", "locale": "de"}}),
        )
        .await["updateWidgetSettings"]
        .clone();
    assert_eq!(updated["color"], "#ff8800");
    assert_eq!(updated["allowedOrigins"], json!([]));

    let widget = server.ok(None, WIDGET, json!({"key": key})).await["widget"].clone();
    assert_eq!(widget["color"], "#ff8800");
    assert_eq!(widget["position"], "LEFT");
    assert_eq!(widget["title"], "Talk to us");
    assert_eq!(widget["greeting"], "Hi! How can we help?");
    assert_eq!(widget["offlineText"], "Leave a note");
    assert_eq!(widget["preChatName"], "REQUIRED");
    assert_eq!(widget["preChatEmail"], "OPTIONAL");
    assert_eq!(widget["locale"], "de");
    assert_eq!(widget["groups"], json!([{"id": group, "name": "Sales"}]));

    // Null returns a text to the widget's own words; omitted fields stay.
    let cleared = server
        .ok(Some(&owner), UPDATE, json!({"input": {"title": null}}))
        .await["updateWidgetSettings"]
        .clone();
    assert_eq!(cleared["title"], Value::Null);
    assert_eq!(cleared["greeting"], "Hi! How can we help?");

    for (input, field) in [
        (json!({"color": "blue"}), "color"),
        (json!({"locale": "tlh"}), "locale"),
        (json!({"title": "x".repeat(81)}), "title"),
        (
            json!({"allowedOrigins": ["https://shop.test/cart"]}),
            "allowedOrigins",
        ),
    ] {
        let body = server
            .gql(Some(&owner), UPDATE, json!({"input": input}))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(field), "{message} names {field}");
    }

    server
        .create_agent(&owner, "agent@example.com", "AGENT")
        .await;
    let agent = server.agent_token("agent@example.com").await;
    assert_eq!(
        server
            .error_code(Some(&agent), UPDATE, json!({"input": {"color": "#000000"}}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(Some(&agent), "{ identitySecret }", json!({}))
            .await,
        "FORBIDDEN"
    );
    // Agents read the settings; the widget key's page reads the public part.
    let seen = server
        .ok(Some(&agent), "{ widgetSettings { color } }", json!({}))
        .await;
    assert_eq!(seen["widgetSettings"]["color"], "#ff8800");
    assert_eq!(
        server
            .error_code(None, WIDGET, json!({"key": "wk_nobody"}))
            .await,
        "NOT_FOUND"
    );
}

async fn allowed_origins_keep_other_sites_out(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let availability = "query($key: String!) { availability(widgetKey: $key) { online } }";
    let start = json!({"input": {"widgetKey": key}});

    // Any site, until the organization lists some.
    let (_, body) = from_origin(&server, "https://anywhere.test", None, START, start.clone()).await;
    assert!(body.get("errors").is_none(), "{body}");

    server
        .ok(
            Some(&owner),
            UPDATE,
            json!({"input": {"allowedOrigins": ["https://shop.test", "http://localhost:3000"]}}),
        )
        .await;
    for (query, variables) in [
        (WIDGET, json!({"key": key})),
        (availability, json!({"key": key})),
        (START, start.clone()),
    ] {
        let (_, body) =
            from_origin(&server, "https://evil.test", None, query, variables.clone()).await;
        assert_eq!(error_code(&body), "FORBIDDEN", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("https://evil.test")
        );
        let (_, body) = from_origin(&server, "https://shop.test", None, query, variables).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // Servers and apps send no Origin: the list is about other sites' pages.
    let token = server.ok(None, START, start).await["startVisitorSession"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    // A WebSocket opened by a page elsewhere is held to the same list.
    for (origin, allowed) in [("https://evil.test", false), ("https://shop.test", true)] {
        let mut socket = WsClient::connect_from(&server.ws_url, origin).await;
        socket
            .send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}))
            .await;
        assert_eq!(socket.next().await["type"], "connection_ack");
        socket
            .send(json!({"id": "1", "type": "subscribe",
                "payload": {"query": WIDGET, "variables": {"key": key}}}))
            .await;
        let answer = socket.next().await;
        if allowed {
            assert_eq!(
                answer["payload"]["data"]["widget"]["color"], "#2563eb",
                "{answer}"
            );
        } else {
            assert_eq!(
                answer["payload"][0]["extensions"]["code"], "FORBIDDEN",
                "{answer}"
            );
        }
    }
}

async fn a_signed_identity_is_the_same_customer_on_every_device(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let secret = server
        .ok(Some(&owner), "{ identitySecret }", json!({}))
        .await["identitySecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(secret.len() >= 40);
    let again = server
        .ok(Some(&owner), "{ identitySecret }", json!({}))
        .await;
    assert_eq!(
        again["identitySecret"],
        secret.as_str(),
        "stable until rotated"
    );

    // The laptop: an anonymous visitor who then logs in to the shop becomes its customer.
    let laptop = server
        .ok(
            None,
            START,
            json!({"input": {"widgetKey": key, "visitorId": "laptop"}}),
        )
        .await["startVisitorSession"]
        .clone();
    let laptop_secret = laptop["visitorSecret"].as_str().unwrap();
    let identity = json!({"userId": "shop-user-7", "signature": signature(&secret, "shop-user-7")});
    let logged_in = server
        .ok(
            None,
            START,
            json!({"input": {"widgetKey": key, "visitorId": "laptop", "visitorSecret": laptop_secret,
                "name": "Grace", "identity": identity}}),
        )
        .await["startVisitorSession"]
        .clone();
    assert_eq!(logged_in["customer"]["id"], laptop["customer"]["id"]);
    assert_eq!(logged_in["customer"]["externalId"], "shop-user-7");

    // The phone: another browser, the same shop customer.
    let phone = server
        .ok(
            None,
            START,
            json!({"input": {"widgetKey": key, "visitorId": "phone", "identity": identity}}),
        )
        .await["startVisitorSession"]
        .clone();
    assert_eq!(phone["customer"]["id"], laptop["customer"]["id"]);
    assert_eq!(phone["customer"]["name"], "Grace");
    assert_eq!(
        phone["visitorId"], "laptop",
        "the customer's own visitor id"
    );
    assert_eq!(phone["visitorSecret"], Value::Null);

    // Another identity in the laptop's browser is another customer.
    let other = json!({"userId": "shop-user-8", "signature": signature(&secret, "shop-user-8")});
    let switched = server
        .ok(
            None,
            START,
            json!({"input": {"widgetKey": key, "visitorId": "laptop", "visitorSecret": laptop_secret,
                "identity": other}}),
        )
        .await["startVisitorSession"]
        .clone();
    assert_ne!(switched["customer"]["id"], laptop["customer"]["id"]);
    assert_eq!(switched["customer"]["externalId"], "shop-user-8");

    // A forged or stale signature is refused, and nothing is written.
    let forged = json!({"userId": "shop-user-7", "signature": signature("guess", "shop-user-7")});
    assert_eq!(
        server
            .error_code(
                None,
                START,
                json!({"input": {"widgetKey": key, "identity": forged}})
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(
                None,
                START,
                json!({"input": {"widgetKey": key,
                    "identity": {"userId": "", "signature": signature(&secret, "")}}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    let rotated = server
        .ok(Some(&owner), "mutation { rotateIdentitySecret }", json!({}))
        .await["rotateIdentitySecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(rotated, secret);
    assert_eq!(
        server
            .error_code(
                None,
                START,
                json!({"input": {"widgetKey": key, "identity": identity}})
            )
            .await,
        "FORBIDDEN",
        "signatures with the old secret stop working"
    );
}

#[tokio::test]
async fn a_browser_on_another_origin_may_call_the_api_without_cookies() {
    let server = TestServer::start().await;
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, &server.graphql_url)
        .header("Origin", "https://shop.test")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        headers["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none());

    // A customer's and an agent's operations alike.
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (headers, body) = from_origin(
        &server,
        "https://shop.test",
        None,
        "query($key: String!) { availability(widgetKey: $key) { online } }",
        json!({"key": key}),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    let (headers, body) = from_origin(
        &server,
        "https://agents.test",
        Some(&owner),
        "{ me { email } }",
        json!({}),
    )
    .await;
    assert_eq!(body["data"]["me"]["email"], "owner@example.com");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("set-cookie").is_none());

    // Errors are readable too.
    let token = visitor(&server, &key, "v1").await;
    let (headers, body) = from_origin(
        &server,
        "https://shop.test",
        Some(&token),
        "{ me { email } }",
        json!({}),
    )
    .await;
    assert_eq!(error_code(&body), "FORBIDDEN");
    assert_eq!(headers["access-control-allow-origin"], "*");
}

async fn a_german_widget_gets_its_system_entries_in_german(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    server
        .ok(Some(&owner), UPDATE, json!({"input": {"locale": "de"}}))
        .await;
    let _app = agent_events(&server, &owner, None).await;
    let customer = visitor(&server, &key, "kunde").await;
    let (chat, status) = start_chat(&server, &customer, "Hallo").await;
    assert_eq!(status, "ACTIVE");
    server
        .ok(
            Some(&customer),
            "mutation($id: ID!) { closeChat(chatId: $id) { id } }",
            json!({"id": chat}),
        )
        .await;
    let transcript = server
        .ok(
            Some(&customer),
            "query($id: ID!) { chat(id: $id) { events { items { kind text } } } }",
            json!({"id": chat}),
        )
        .await;
    let texts: Vec<(String, String)> = transcript["chat"]["events"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        texts
            .iter()
            .any(|(kind, text)| kind == "AGENT_ASSIGNED"
                && text.ends_with("ist dem Chat beigetreten")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|(kind, text)| kind == "CHAT_CLOSED" && text == "Der Kunde hat den Chat verlassen"),
        "{texts:?}"
    );
}

crate::on_both_backends!(
    the_widget_shows_what_admins_set_and_refuses_bad_settings,
    allowed_origins_keep_other_sites_out,
    a_signed_identity_is_the_same_customer_on_every_device,
    a_german_widget_gets_its_system_entries_in_german,
);
