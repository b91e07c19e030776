//! Visitors on the site: the widget's visitorEvents makes a visitor arrive and its closing
//! makes them leave (after the grace period), page views move them, and agents see it all in
//! visitorsOnSite and in the coalesced visitorsChanged.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard::Config;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WsClient, start_chat, widget_key};

pub const VISITOR_EVENTS: &str = "subscription { visitorEvents { __typename at
    ... on GreetingReceived { greeting { id text agentName agentId ruleId shownAt answeredAt
        dismissedAt chatId } } } }";

const VISITORS_CHANGED: &str = "subscription { visitorsChanged { snapshot left
    visitors { customer { id name } currentPage { url title } state visits } } }";

pub const VISITORS_ON_SITE: &str =
    "{ visitorsOnSite { customer { id name } currentPage { url title }
    onSiteSince pageSince timeOnSiteSeconds timeOnPageSeconds visits referrer location state
    chat { id status } greeting { id text shownAt answeredAt dismissedAt chatId } } }";

/// Short intervals, so visitors leave, updates go out and rules look quickly.
pub fn quick(config: &mut Config) {
    config.visitors_coalesce = Duration::from_millis(300);
    config.visitor_leave_grace = Duration::from_millis(200);
    config.greeting_rules_interval = Duration::from_millis(100);
}

/// Starts a visitor session on `url`; returns the visitor token and the customer id.
pub async fn visitor_on(
    server: &TestServer,
    widget_key: &str,
    visitor_id: &str,
    url: &str,
) -> (String, String) {
    let data = server
        .ok(
            None,
            "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token customer { id } } }",
            json!({"input": {"widgetKey": widget_key, "visitorId": visitor_id,
                "name": format!("Visitor {visitor_id}"), "pageUrl": url, "pageTitle": "Pricing",
                "referrer": "https://search.test/?q=shoes"}}),
        )
        .await;
    let session = &data["startVisitorSession"];
    (
        session["token"].as_str().unwrap().to_owned(),
        session["customer"]["id"].as_str().unwrap().to_owned(),
    )
}

/// The widget's live connection for a visitor token (subscription id "visitor").
pub async fn open_page(server: &TestServer, visitor: &str) -> WsClient {
    let mut ws = server.ws_ready(visitor).await;
    ws.send(json!({"id": "visitor", "type": "subscribe", "payload": {"query": VISITOR_EVENTS}}))
        .await;
    ws
}

/// Moves the visitor to `url`.
pub async fn view_page(server: &TestServer, visitor: &str, url: &str, title: &str) {
    server
        .ok(
            Some(visitor),
            "mutation($url: String!, $title: String) { updateVisitorPage(input: {url: $url, title: $title}) { id } }",
            json!({"url": url, "title": title}),
        )
        .await;
}

/// The visitors on the site, as `token` reads them.
pub async fn on_site(server: &TestServer, token: &str) -> Vec<Value> {
    server.ok(Some(token), VISITORS_ON_SITE, json!({})).await["visitorsOnSite"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits (up to 5 s) until the visitor `customer_id` is on the site and `check` holds for
/// them; returns them.
pub async fn eventually_visitor(
    server: &TestServer,
    token: &str,
    customer_id: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let visitors = on_site(server, token).await;
        if let Some(visitor) = visitors
            .iter()
            .find(|v| v["customer"]["id"] == customer_id && check(v))
        {
            return visitor.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "visitor {customer_id} not as expected within 5 s: {visitors:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 5 s) until nobody is on the site.
async fn eventually_nobody(server: &TestServer, token: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !on_site(server, token).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "visitors stayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An agent's visitorsChanged (subscription id "visitors").
async fn watch_visitors(server: &TestServer, token: &str) -> WsClient {
    let mut ws = server.ws_ready(token).await;
    ws.send(json!({"id": "visitors", "type": "subscribe", "payload": {"query": VISITORS_CHANGED}}))
        .await;
    ws
}

async fn a_visitor_is_on_the_site_while_the_widget_is_connected(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    // Any agent sees the visitors, whatever their role or status.
    let agent_id = server
        .create_agent(&owner, "agent@example.com", "AGENT")
        .await;
    assert!(!agent_id.is_empty());
    let agent = server.agent_token("agent@example.com").await;
    server
        .ok(
            Some(&agent),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let mut watching = watch_visitors(&server, &agent).await;
    let first = watching.any_event().await;
    assert_eq!(first["snapshot"], true);
    assert_eq!(first["visitors"], json!([]));

    let (visitor, customer) = visitor_on(&server, &key, "v1", "https://shop.test/pricing").await;
    assert!(
        on_site(&server, &agent).await.is_empty(),
        "a session alone is not being on the site"
    );
    let page = open_page(&server, &visitor).await;
    let arrived = watching.any_event().await;
    assert_eq!(arrived["snapshot"], false);
    assert_eq!(arrived["visitors"][0]["customer"]["id"], customer.as_str());
    assert_eq!(arrived["visitors"][0]["state"], "BROWSING");
    assert_eq!(
        arrived["visitors"][0]["currentPage"]["url"],
        "https://shop.test/pricing"
    );
    let listed = eventually_visitor(&server, &agent, &customer, |_| true).await;
    assert_eq!(listed["customer"]["name"], "Visitor v1");
    assert_eq!(listed["visits"], 1);
    assert_eq!(listed["referrer"], "https://search.test/?q=shoes");
    assert_eq!(listed["currentPage"]["title"], "Pricing");
    assert!(listed["timeOnSiteSeconds"].as_i64().unwrap() >= 0);
    assert_eq!(listed["chat"], Value::Null);

    drop(page);
    let left = watching.any_event().await;
    assert_eq!(left["left"], json!([customer]));
    assert_eq!(left["visitors"], json!([]));
    eventually_nobody(&server, &agent).await;
}

async fn a_reload_within_the_grace_period_keeps_the_visit(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        quick(config);
        config.visitor_leave_grace = Duration::from_secs(2);
    })
    .await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "v1", "https://shop.test/").await;
    let page = open_page(&server, &visitor).await;
    let before = eventually_visitor(&server, &owner, &customer, |_| true).await;
    let mut watching = watch_visitors(&server, &owner).await;
    watching.any_event().await;
    drop(page);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _again = open_page(&server, &visitor).await;
    // Past the grace period of the first page: the visitor never left.
    let updates = watching.quiet_for(Duration::from_millis(2500)).await;
    assert!(
        updates
            .iter()
            .all(|u| u["payload"]["data"]["visitorsChanged"]["left"] == json!([])),
        "the visitor left and came back: {updates:?}"
    );
    let after = eventually_visitor(&server, &owner, &customer, |_| true).await;
    assert_eq!(after["onSiteSince"], before["onSiteSince"]);
}

async fn page_changes_reach_agents_as_one_update(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        quick(config);
        config.visitors_coalesce = Duration::from_secs(1);
    })
    .await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "v1", "https://shop.test/").await;
    let _page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &owner, &customer, |_| true).await;
    let mut watching = watch_visitors(&server, &owner).await;
    let first = watching.any_event().await;
    assert_eq!(first["snapshot"], true);
    assert_eq!(first["visitors"][0]["customer"]["id"], customer.as_str());

    for (url, title) in [
        ("https://shop.test/shoes", "Shoes"),
        ("https://shop.test/shoes/red", "Red shoes"),
        ("https://shop.test/checkout", "Checkout"),
    ] {
        view_page(&server, &visitor, url, title).await;
    }
    let update = watching.any_event().await;
    assert_eq!(update["snapshot"], false);
    let visitors = update["visitors"].as_array().unwrap();
    assert_eq!(visitors.len(), 1, "one entry for the visitor: {update}");
    assert_eq!(
        visitors[0]["currentPage"],
        json!({"url": "https://shop.test/checkout", "title": "Checkout"})
    );
    let more = watching.quiet_for(Duration::from_millis(1500)).await;
    assert!(
        more.is_empty(),
        "three quick changes made one update: {more:?}"
    );
    // After a quiet interval, a change goes out at once rather than an interval later.
    view_page(&server, &visitor, "https://shop.test/", "Home").await;
    let at_once = watching.quiet_for(Duration::from_millis(600)).await;
    assert_eq!(at_once.len(), 1, "{at_once:?}");
    assert_eq!(
        at_once[0]["payload"]["data"]["visitorsChanged"]["visitors"][0]["currentPage"]["url"],
        "https://shop.test/"
    );
    view_page(&server, &visitor, "https://shop.test/checkout", "Checkout").await;
    let listed = eventually_visitor(&server, &owner, &customer, |_| true).await;
    assert_eq!(listed["currentPage"]["url"], "https://shop.test/checkout");
    assert!(listed["timeOnPageSeconds"].as_i64().unwrap() <= 2);
    assert!(listed["pageSince"].as_str().unwrap() > listed["onSiteSince"].as_str().unwrap());
}

async fn the_state_follows_the_visitors_chat(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, customer) = visitor_on(&server, &key, "v1", "https://shop.test/").await;
    let _page = open_page(&server, &visitor).await;
    eventually_visitor(&server, &owner, &customer, |v| v["state"] == "BROWSING").await;
    let (chat, status) = start_chat(&server, &visitor, "Hello").await;
    assert_eq!(status, "ACTIVE");
    let chatting =
        eventually_visitor(&server, &owner, &customer, |v| v["state"] == "CHATTING").await;
    assert_eq!(chatting["chat"]["id"], chat.as_str());
    server
        .ok(
            Some(&owner),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": chat}),
        )
        .await;
    let browsing =
        eventually_visitor(&server, &owner, &customer, |v| v["state"] == "BROWSING").await;
    assert_eq!(browsing["chat"], Value::Null);
}

async fn each_side_keeps_to_its_own_operations(backend: Backend) {
    let server = TestServer::start_with(backend, quick).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let (visitor, _) = visitor_on(&server, &key, "v1", "https://shop.test/").await;
    assert_eq!(
        server
            .error_code(Some(&visitor), VISITORS_ON_SITE, json!({}))
            .await,
        "FORBIDDEN"
    );
    let mut ws = server.ws_ready(&visitor).await;
    ws.send(json!({"id": "v", "type": "subscribe", "payload": {"query": VISITORS_CHANGED}}))
        .await;
    let refused = ws.next().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    let mut ws = server.ws_ready(&owner).await;
    ws.send(json!({"id": "v", "type": "subscribe", "payload": {"query": VISITOR_EVENTS}}))
        .await;
    let refused = ws.next().await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        server.error_code(None, VISITORS_ON_SITE, json!({})).await,
        "UNAUTHENTICATED"
    );
}

on_both_backends!(
    a_visitor_is_on_the_site_while_the_widget_is_connected,
    a_reload_within_the_grace_period_keeps_the_visit,
    page_changes_reach_agents_as_one_update,
    the_state_follows_the_visitors_chat,
    each_side_keeps_to_its_own_operations,
);
