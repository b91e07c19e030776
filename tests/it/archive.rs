//! The archive: every chat an agent may see, filtered, newest first, paged by cursor; the
//! search language gives the same chats on SQLite and Postgres (the same expectations are
//! asserted on each backend); malformed searches and cursors are BAD_USER_INPUT; agents see
//! only what they may, other organizations nothing.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, WsClient, agent_events, error_code, widget_key};

on_both_backends!(
    search_finds_the_same_chats_on_both_backends,
    malformed_searches_and_cursors_are_bad_user_input,
    filters_and_cursor_paging,
    agents_see_only_the_chats_they_may,
    the_archive_exports_as_csv,
    the_migration_indexes_the_chats_that_exist_already,
    a_common_word_pages_through_hundreds_of_matches,
    a_long_chat_is_searched_to_its_end,
);

const ARCHIVE: &str = "query($f: ArchiveFilter, $first: Int, $after: String) {
    archive(filter: $f, first: $first, after: $after) {
        items { chat { id status createdAt customer { name } } snippet { text highlighted } }
        endCursor hasNextPage } }";
const CLOSE: &str = "mutation($c: ID!) { closeChat(chatId: $c) { id } }";
const REPLY: &str =
    "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, text: $t}) { id } }";

/// A server whose owner takes every chat (kept live by an events stream).
pub(crate) struct Org {
    pub server: TestServer,
    pub owner: String,
    pub key: String,
    _events: WsClient,
}

pub(crate) async fn org(backend: Backend) -> Org {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    let events = agent_events(&server, &owner, None).await;
    let key = widget_key(&server, &owner).await;
    Org {
        server,
        owner,
        key,
        _events: events,
    }
}

/// A visitor with a name and email; their token and customer id.
pub(crate) async fn visitor(
    org: &Org,
    visitor_id: &str,
    name: &str,
    email: &str,
) -> (String, String) {
    let data = org
        .server
        .ok(
            None,
            "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) { token customer { id } } }",
            json!({"input": {"widgetKey": org.key, "visitorId": visitor_id, "name": name, "email": email}}),
        )
        .await;
    (
        data["startVisitorSession"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
        data["startVisitorSession"]["customer"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

/// A chat the visitor starts with `message`, the owner answering with `reply`; closed when
/// `close`. Its id.
pub(crate) async fn chat(
    org: &Org,
    visitor: &str,
    message: &str,
    reply: &str,
    close: bool,
) -> String {
    let data = org
        .server
        .ok(
            Some(visitor),
            "mutation($m: String!) { startChat(input: {message: $m}) { id status } }",
            json!({"m": message}),
        )
        .await;
    let id = data["startChat"]["id"].as_str().unwrap().to_owned();
    assert_eq!(data["startChat"]["status"], "ACTIVE", "{data}");
    if !reply.is_empty() {
        org.server
            .ok(Some(&org.owner), REPLY, json!({"c": id, "t": reply}))
            .await;
    }
    if close {
        org.server
            .ok(Some(&org.owner), CLOSE, json!({"c": id}))
            .await;
    }
    id
}

async fn archive(server: &TestServer, token: &str, filter: Value) -> Value {
    server
        .ok(Some(token), ARCHIVE, json!({"f": filter, "first": 50}))
        .await["archive"]
        .clone()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["chat"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The chats a search finds; each must be listed once, however many of its messages match.
async fn found(server: &TestServer, token: &str, search: &str) -> BTreeSet<String> {
    let page = archive(server, token, json!({"search": search})).await;
    let listed = ids(&page);
    let chats: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        chats.len(),
        listed.len(),
        "search {search:?} listed a chat twice: {listed:?}"
    );
    chats
}

/// The same data on each backend; the same chats for each query.
async fn search_finds_the_same_chats_on_both_backends(backend: Backend) {
    let org = org(backend).await;
    let (alice, _) = visitor(&org, "va", "Alice Martin", "alice@example.com").await;
    let (bob, _) = visitor(&org, "vb", "Bob Stone", "bob@shop.test").await;
    let (chloe, _) = visitor(&org, "vc", "Chloé Dubois", "chloe@exemple.fr").await;
    let (dan, _) = visitor(&org, "vd", "Dan", "dan@north.test").await;
    let c1 = chat(
        &org,
        &alice,
        "My parcel never arrived, I want a refund",
        "Sorry! The refund is on its way.",
        true,
    )
    .await;
    let c2 = chat(
        &org,
        &bob,
        "Can I return the blue shoes?",
        "Yes, returns are free within 30 days.",
        true,
    )
    .await;
    let c3 = chat(
        &org,
        &chloe,
        "Le colis est arrivé abîmé, remboursement svp",
        "",
        true,
    )
    .await;
    let c4 = chat(
        &org,
        &dan,
        "Shipping to Norway takes how long?",
        "Shipment to Norway takes 3 days.",
        false,
    )
    .await;

    let set = |chats: &[&String]| chats.iter().map(|c| (*c).clone()).collect::<BTreeSet<_>>();
    let cases: Vec<(&str, BTreeSet<String>)> = vec![
        ("refund", set(&[&c1])),
        ("REFUND", set(&[&c1])),
        ("refund parcel", set(&[&c1])),
        ("refund shoes", set(&[])),
        ("refund OR return", set(&[&c1, &c2])),
        ("refund OR return -shoes", set(&[&c1])),
        // Terms are ANDed over the chat, phrases match within one message, and an exclusion
        // found in any message leaves the chat out.
        ("parcel sorry", set(&[&c1])),
        ("\"refund sorry\"", set(&[])),
        ("refund -sorry", set(&[])),
        ("alice refund", set(&[&c1])),
        ("\"blue shoes\"", set(&[&c2])),
        ("\"shoes blue\"", set(&[])),
        ("ship*", set(&[&c4])),
        ("ship* -norway", set(&[])),
        ("\"to norw*\"", set(&[&c4])),
        ("alice@example.com", set(&[&c1])),
        ("martin", set(&[&c1])),
        ("stone 30", set(&[&c2])),
        ("abîmé", set(&[&c3])),
        ("abime", set(&[])),
        ("chloé remboursement", set(&[&c3])),
        ("arrived OR arrivé", set(&[&c1, &c3])),
        ("nothing-like-this", set(&[])),
        // Query syntax of either database is only words here.
        ("NEAR(refund parcel)", set(&[])),
        ("refund:* | parcel", set(&[&c1])),
    ];
    for (query, expected) in &cases {
        assert_eq!(
            &found(&org.server, &org.owner, query).await,
            expected,
            "search {query:?}"
        );
    }

    // Snippets mark what matched, as parts.
    let page = archive(&org.server, &org.owner, json!({"search": "refund"})).await;
    let parts = page["items"][0]["snippet"].as_array().unwrap();
    assert!(
        parts.iter().any(|p| p["highlighted"] == true
            && p["text"].as_str().unwrap().eq_ignore_ascii_case("refund")),
        "{parts:?}"
    );
    assert!(parts.iter().any(|p| p["highlighted"] == false));
    // Without a search, no snippet; newest first.
    let all = archive(&org.server, &org.owner, json!({})).await;
    assert_eq!(
        ids(&all),
        vec![c4.clone(), c3.clone(), c2.clone(), c1.clone()]
    );
    assert_eq!(all["items"][0]["snippet"], Value::Null);

    // Renaming the customer re-indexes their chats.
    let customer_id = org
        .server
        .ok(
            Some(&org.owner),
            "query($id: ID!) { chat(id: $id) { customer { id } } }",
            json!({"id": c4}),
        )
        .await["chat"]["customer"]["id"]
        .clone();
    org.server
        .ok(
            Some(&org.owner),
            "mutation($id: ID!) { updateCustomer(id: $id, input: {name: \"Daniel Nordmann\"}) { name } }",
            json!({"id": customer_id}),
        )
        .await;
    assert_eq!(
        found(&org.server, &org.owner, "nordmann").await,
        set(&[&c4])
    );
    // A message written later is found too.
    org.server
        .ok(
            Some(&org.owner),
            REPLY,
            json!({"c": c4, "t": "Tracking code ZX81 sent."}),
        )
        .await;
    assert_eq!(found(&org.server, &org.owner, "zx81").await, set(&[&c4]));
}

async fn malformed_searches_and_cursors_are_bad_user_input(backend: Backend) {
    let org = org(backend).await;
    let (alice, _) = visitor(&org, "va", "Alice", "alice@example.com").await;
    chat(&org, &alice, "hello there", "", true).await;
    for search in [
        "-only",
        "\"unclosed",
        "OR refund",
        "refund OR",
        "a OR -b",
        "\"\"",
        "...",
        &"word ".repeat(17),
        &"x".repeat(201),
    ] {
        let body = org
            .server
            .gql(
                Some(&org.owner),
                ARCHIVE,
                json!({"f": {"search": search}, "first": 20}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{search:?}: {body}");
    }
    for after in ["nonsense", "", "MTIz"] {
        let body = org
            .server
            .gql(
                Some(&org.owner),
                ARCHIVE,
                json!({"after": after, "first": 20}),
            )
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{after:?}: {body}");
    }
    for first in [0, 51] {
        let body = org
            .server
            .gql(Some(&org.owner), ARCHIVE, json!({"first": first}))
            .await;
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = org
        .server
        .gql(
            Some(&org.owner),
            ARCHIVE,
            json!({"f": {"from": "2030-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "first": 20}),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    // Odd but valid: punctuation is no syntax.
    for search in [
        "hello's",
        "hello\\",
        "(hello)",
        "hello:*",
        "'hello'",
        "hello & !x",
        "hel*lo",
    ] {
        org.server
            .ok(
                Some(&org.owner),
                ARCHIVE,
                json!({"f": {"search": search}, "first": 20}),
            )
            .await;
    }
    // Whatever is typed, the answer is results or BAD_USER_INPUT, never a database error.
    for search in [
        "²",
        "x²",
        "ǅemal",
        "١٢٣",
        "🙂",
        "a🙂b",
        "\u{301}",
        "e\u{301}",
        "ＦＵＬＬ",
        "ß*",
        "İstanbul",
        "\"a\"*",
        "\"* a\"",
        "***",
        "-\"\"",
        "a OR \"\" OR b",
        "NOT a",
        "a AND b",
        "a NEAR b",
        "a:*",
        "'a' & 'b'",
        "a <-> b",
        "a|b",
        "!a",
        "(a",
        "a)",
        "\\\"",
        "a--b",
        "-a-b",
    ] {
        let body = org
            .server
            .gql(
                Some(&org.owner),
                ARCHIVE,
                json!({"f": {"search": search}, "first": 20}),
            )
            .await;
        if body.get("errors").is_some() {
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{search:?}: {body}");
        }
    }
    // Visitors and strangers cannot read the archive.
    assert_eq!(
        org.server
            .error_code(Some(&alice), ARCHIVE, json!({"first": 20}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        org.server
            .error_code(None, ARCHIVE, json!({"first": 20}))
            .await,
        "UNAUTHENTICATED"
    );
}

async fn filters_and_cursor_paging(backend: Backend) {
    let org = org(backend).await;
    let server = &org.server;
    let group = server
        .ok(
            Some(&org.owner),
            "mutation { createGroup(input: {name: \"Billing\"}) { id } }",
            json!({}),
        )
        .await["createGroup"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (alice, alice_id) = visitor(&org, "va", "Alice", "alice@example.com").await;
    let (bob, _) = visitor(&org, "vb", "Bob", "bob@example.com").await;
    let a1 = chat(&org, &alice, "first", "ok", true).await;
    let b1 = chat(&org, &bob, "second", "ok", true).await;
    let a2 = chat(&org, &alice, "third", "ok", true).await;
    let grouped = server
        .ok(
            Some(&bob),
            "mutation($g: ID!) { startChat(input: {message: \"fourth\", groupId: $g}) { id } }",
            json!({"g": group}),
        )
        .await["startChat"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .ok(Some(&org.owner), CLOSE, json!({"c": grouped}))
        .await;
    let open = chat(&org, &alice, "fifth", "", false).await;
    server
        .ok(
            Some(&alice),
            "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: GOOD}) { id } }",
            json!({"c": a2}),
        )
        .await;
    // Tags are another feature's; the table is shared.
    server
        .execute_sql(&format!(
            "INSERT INTO tags (id, organization_id, name, created_at) \
             SELECT 'tag-1', organization_id, 'vip', 0 FROM chats WHERE id = '{b1}'"
        ))
        .await;
    server
        .execute_sql(&format!(
            "INSERT INTO chat_tags (chat_id, tag_id, organization_id, added_at) \
             SELECT id, 'tag-1', organization_id, 0 FROM chats WHERE id = '{b1}'"
        ))
        .await;
    let owner_id = server
        .ok(Some(&org.owner), "{ me { id } }", json!({}))
        .await["me"]["id"]
        .clone();

    let owner: &str = &org.owner;
    let check = |filter: Value, expected: Vec<&String>| {
        let filter = filter.clone();
        let expected: Vec<String> = expected.into_iter().cloned().collect();
        async move {
            let page = archive(server, owner, filter.clone()).await;
            assert_eq!(ids(&page), expected, "filter {filter}");
        }
    };
    check(json!({}), vec![&open, &grouped, &a2, &b1, &a1]).await;
    check(json!({"status": "ACTIVE"}), vec![&open]).await;
    check(
        json!({"status": "CLOSED", "customerId": alice_id}),
        vec![&a2, &a1],
    )
    .await;
    check(json!({"rating": "GOOD"}), vec![&a2]).await;
    check(json!({"rating": "BAD"}), vec![]).await;
    check(json!({"groupId": group}), vec![&grouped]).await;
    check(json!({"tagId": "tag-1"}), vec![&b1]).await;
    check(
        json!({"channel": "WIDGET", "agentId": owner_id}),
        vec![&open, &grouped, &a2, &b1, &a1],
    )
    .await;
    check(json!({"channel": "API"}), vec![]).await;
    check(json!({"to": "2000-01-01T00:00:00Z"}), vec![]).await;
    check(
        json!({"from": "2000-01-01T00:00:00Z", "search": "third OR fifth"}),
        vec![&open, &a2],
    )
    .await;
    check(json!({"customerId": "nobody"}), vec![]).await;

    // Pages of two, each after the last one's cursor, cover the whole archive once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for page_number in 0.. {
        let page = server
            .ok(
                Some(&org.owner),
                ARCHIVE,
                json!({"first": 2, "after": after}),
            )
            .await["archive"]
            .clone();
        seen.extend(ids(&page));
        if page["hasNextPage"] == false {
            assert_eq!(page["endCursor"], Value::Null);
            break;
        }
        assert!(page_number < 3, "more pages than chats");
        after = Some(page["endCursor"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, vec![open.clone(), grouped, a2, b1, a1]);
}

async fn agents_see_only_the_chats_they_may(backend: Backend) {
    let org = org(backend).await;
    let server = &org.server;
    let group = server
        .ok(
            Some(&org.owner),
            "mutation { createGroup(input: {name: \"Sales\"}) { id } }",
            json!({}),
        )
        .await["createGroup"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_group = server
        .ok(
            Some(&org.owner),
            "mutation { createGroup(input: {name: \"Returns\"}) { id } }",
            json!({}),
        )
        .await["createGroup"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (email, role, groups) in [
        ("ada@example.com", "AGENT", vec![group.clone()]),
        ("sue@example.com", "SUPERVISOR", vec![group.clone()]),
    ] {
        server
            .ok(
                Some(&org.owner),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": email, "password": "agent-password-1",
                       "role": role, "groupIds": groups}}),
            )
            .await;
    }
    let ada = server.agent_token("ada@example.com").await;
    let sue = server.agent_token("sue@example.com").await;
    // Neither takes chats: the owner does.
    for token in [&ada, &sue] {
        server
            .ok(
                Some(token),
                "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
                json!({}),
            )
            .await;
    }
    let (alice, _) = visitor(&org, "va", "Alice", "alice@example.com").await;
    let owner: &str = &org.owner;
    let start_in = |group: String, message: &'static str| {
        let alice = alice.clone();
        async move {
            let id = server
                .ok(
                    Some(&alice),
                    "mutation($g: ID!, $m: String!) { startChat(input: {message: $m, groupId: $g}) { id } }",
                    json!({"g": group, "m": message}),
                )
                .await["startChat"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            server.ok(Some(owner), CLOSE, json!({"c": id})).await;
            id
        }
    };
    let sales = start_in(group.clone(), "sales secret").await;
    let returns = start_in(other_group.clone(), "returns secret").await;

    let ids_for = |token: String, search: Option<&'static str>| async move {
        let filter = match search {
            Some(s) => json!({"search": s}),
            None => json!({}),
        };
        ids(&archive(server, &token, filter).await)
    };
    // The owner sees everything, the supervisor their group's, the plain agent nothing yet.
    assert_eq!(
        ids_for(org.owner.clone(), None).await,
        vec![returns.clone(), sales.clone()]
    );
    assert_eq!(ids_for(sue.clone(), None).await, vec![sales.clone()]);
    assert_eq!(
        ids_for(sue.clone(), Some("secret")).await,
        vec![sales.clone()]
    );
    assert_eq!(ids_for(ada.clone(), None).await, Vec::<String>::new());
    assert_eq!(
        ids_for(ada.clone(), Some("secret")).await,
        Vec::<String>::new()
    );

    // A chat the plain agent had before is in their archive.
    let ada_id = server.ok(Some(&ada), "{ me { id } }", json!({})).await["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .execute_sql(&format!(
            "INSERT INTO chat_participants (chat_id, agent_id, role, joined_at) \
             VALUES ('{returns}', '{ada_id}', 'PREVIOUS_ASSIGNEE', 0)"
        ))
        .await;
    assert_eq!(
        ids_for(ada.clone(), Some("secret")).await,
        vec![returns.clone()]
    );

    // Another organization sees none of it, with no error to tell the ids exist.
    let rival = server.rival_organization().await.0;
    assert_eq!(ids_for(rival.clone(), None).await, Vec::<String>::new());
    assert_eq!(
        ids_for(rival.clone(), Some("secret")).await,
        Vec::<String>::new()
    );
}

async fn export(org: &Org, token: Option<&str>, query: &str) -> (u16, String, String) {
    let mut request = org
        .server
        .http
        .get(format!("{}/export/archive.csv{query}", org.server.base_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, response.text().await.unwrap())
}

/// The same chats as the archive, in CSV with the same filters; formula-looking cells are
/// defused and quoting holds commas, quotes and line breaks; more chats than a page stream
/// whole.
async fn the_archive_exports_as_csv(backend: Backend) {
    let org = org(backend).await;
    let (eve, _) = visitor(
        &org,
        "ve",
        "=HYPERLINK(\"http://evil.test\",\"x\")",
        "eve@example.com",
    )
    .await;
    let (bob, bob_id) = visitor(&org, "vb", "Stone, Bob", "bob@example.com").await;
    let e1 = chat(&org, &eve, "refund please", "ok", true).await;
    let b1 = chat(&org, &bob, "where is my parcel", "", true).await;
    org.server
        .ok(
            Some(&bob),
            "mutation($c: ID!) { rateChat(input: {chatId: $c, rating: BAD, comment: \"slow,\\n\\\"very\\\" slow\"}) { id } }",
            json!({"c": b1}),
        )
        .await;

    let (status, media, body) = export(&org, Some(&org.owner), "").await;
    assert_eq!(status, 200, "{body}");
    assert!(media.starts_with("text/csv"), "{media}");
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "chat_id,started_at,closed_at,status,channel,customer_id,customer_name,customer_email,agent,group,rating,rating_comment"
    );
    assert!(body.starts_with("chat_id,"));
    assert!(lines[1].starts_with(&format!("{b1},")), "{body}");
    assert!(
        lines[1].contains(&format!(",{bob_id},\"Stone, Bob\",bob@example.com,")),
        "{body}"
    );
    assert!(
        lines[1].contains(",BAD,\"slow,\n\"\"very\"\" slow\""),
        "{body}"
    );
    assert!(
        lines[2].contains(",\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\","),
        "{body}"
    );
    assert!(lines[2].starts_with(&format!("{e1},")));

    // The archive's filters, as query parameters.
    let (_, _, body) = export(&org, Some(&org.owner), "?search=refund&status=CLOSED").await;
    assert_eq!(body.matches("\r\n").count(), 2, "{body}");
    assert!(body.contains(&e1) && !body.contains(&b1));
    let (_, _, body) = export(&org, Some(&org.owner), "?rating=BAD").await;
    assert!(body.contains(&b1) && !body.contains(&e1));

    // Bad filters, no token, a visitor's token.
    for query in [
        "?search=-only",
        "?status=SLEEPING",
        "?from=yesterday",
        "?unknown=1",
    ] {
        let (status, _, body) = export(&org, Some(&org.owner), query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.starts_with("BAD_USER_INPUT"), "{body}");
    }
    assert_eq!(export(&org, None, "").await.0, 401);
    assert_eq!(export(&org, Some("not-a-token"), "").await.0, 401);
    assert_eq!(export(&org, Some(&eve), "").await.0, 403);

    // More chats than one page (50): every one, once.
    for i in 0..110 {
        org.server
            .execute_sql(&format!(
                "INSERT INTO chats (id, organization_id, customer_id, channel, status, created_at, \
                 last_customer_activity_at, last_activity_at) SELECT 'bulk-{i:03}', organization_id, \
                 customer_id, 'WIDGET', 'CLOSED', created_at - {i}, created_at, created_at \
                 FROM chats WHERE id = '{b1}'"
            ))
            .await;
    }
    let (_, _, body) = export(&org, Some(&org.owner), &format!("?customerId={bob_id}")).await;
    let rows: Vec<&str> = body
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 111);
    let distinct: BTreeSet<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    assert_eq!(distinct.len(), 111);
    assert!(distinct.contains("bulk-109"));
}

/// Migration 28 fills the index for chats written before it: its backfill, run again over an
/// emptied index, finds what the triggers had indexed.
async fn the_migration_indexes_the_chats_that_exist_already(backend: Backend) {
    let (migration, wipe) = match backend {
        Backend::Sqlite => (
            include_str!("../../migrations/sqlite/0028_message_search.sql"),
            &[
                "DELETE FROM chat_search_text",
                "DELETE FROM chat_search_rows",
            ][..],
        ),
        Backend::Postgres(_) => (
            include_str!("../../migrations/postgres/0028_message_search.sql"),
            &["DELETE FROM chat_search_rows"][..],
        ),
    };
    let org = org(backend).await;
    let (alice, _) = visitor(&org, "va", "Alice Martin", "alice@example.com").await;
    let (bob, _) = visitor(&org, "vb", "Bob Stone", "bob@example.com").await;
    let c1 = chat(
        &org,
        &alice,
        "My parcel never arrived",
        "The refund is on its way.",
        true,
    )
    .await;
    let c2 = chat(&org, &bob, "Do you ship to Norway?", "", false).await;
    for statement in wipe {
        org.server.execute_sql(statement).await;
    }
    assert!(found(&org.server, &org.owner, "refund").await.is_empty());
    let (_, backfill) = migration
        .split_once("-- The chats that exist already.")
        .expect("the migration's backfill");
    for statement in backfill
        .split(";\n")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        org.server.execute_sql(statement).await;
    }
    let only = |c: &String| BTreeSet::from([c.clone()]);
    assert_eq!(
        found(&org.server, &org.owner, "\"parcel never\" refund").await,
        only(&c1)
    );
    assert_eq!(found(&org.server, &org.owner, "martin").await, only(&c1));
    assert_eq!(
        found(&org.server, &org.owner, "norway stone").await,
        only(&c2)
    );
    // And the triggers go on from there.
    org.server
        .ok(
            Some(&org.owner),
            REPLY,
            json!({"c": c2, "t": "Yes, in 3 days."}),
        )
        .await;
    assert_eq!(
        found(&org.server, &org.owner, "norway days").await,
        only(&c2)
    );
}

/// Hundreds of matches (past the point where Postgres walks the chats newest first rather than
/// reading the index first) page the same way as a few: every match once, newest first.
async fn a_common_word_pages_through_hundreds_of_matches(backend: Backend) {
    let org = org(backend).await;
    let (alice, _) = visitor(&org, "va", "Alice", "alice@example.com").await;
    let first = chat(&org, &alice, "hello", "", true).await;
    let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 620) ";
    org.server
        .execute_sql(&format!(
            "{rows}INSERT INTO chats (id, organization_id, customer_id, channel, status, created_at, \
             last_customer_activity_at, last_activity_at) SELECT 'many-' || (1000 + i), \
             c.organization_id, c.customer_id, 'WIDGET', 'CLOSED', c.created_at - i, c.created_at, \
             c.created_at FROM n, chats c WHERE c.id = '{first}'"
        ))
        .await;
    org.server
        .execute_sql(&format!(
            "{rows}INSERT INTO chat_events (id, chat_id, organization_id, seq, kind, author_kind, \
             text, visibility, created_at) SELECT 'many-event-' || i, 'many-' || (1000 + i), \
             c.organization_id, 1, 'MESSAGE', 'CUSTOMER', \
             CASE WHEN i % 2 = 0 THEN 'an even order' ELSE 'an odd order' END, 'PUBLIC', 0 \
             FROM n, chats c WHERE c.id = '{first}'"
        ))
        .await;
    for (search, expected) in [("order", 620), ("even order", 310), ("\"odd order\"", 310)] {
        let mut seen: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = org
                .server
                .ok(
                    Some(&org.owner),
                    ARCHIVE,
                    json!({"f": {"search": search}, "first": 50, "after": after}),
                )
                .await["archive"]
                .clone();
            for item in page["items"].as_array().unwrap() {
                assert!(
                    item["snippet"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["highlighted"] == true)
                );
            }
            seen.extend(ids(&page));
            if page["hasNextPage"] == false {
                break;
            }
            after = Some(page["endCursor"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), expected, "{search}");
        // Chat many-(1000 + i) started i ms before the first: the lowest number is the newest.
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert!(seen == sorted, "{search}: newest first, each once");
    }
}

/// Each message is its own search row, so a chat far longer than one Postgres tsvector holds
/// (16,383 positions) is found by the words of its last message, and the snippet shows that
/// message.
async fn a_long_chat_is_searched_to_its_end(backend: Backend) {
    let org = org(backend).await;
    let (alice, _) = visitor(&org, "va", "Alice", "alice@example.com").await;
    let long = chat(&org, &alice, "hello there", "", false).await;
    // 2,500 messages of eight words after the first: 20,000 words.
    org.server
        .execute_sql(&format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500) \
             INSERT INTO chat_events (id, chat_id, organization_id, seq, kind, author_kind, \
             text, visibility, created_at) SELECT 'long-' || i, c.id, c.organization_id, \
             100 + i, 'MESSAGE', 'CUSTOMER', 'one more line of the same old story', 'PUBLIC', 0 \
             FROM n, chats c WHERE c.id = '{long}'"
        ))
        .await;
    org.server
        .execute_sql(&format!(
            "UPDATE chats SET last_event_seq = 2600 WHERE id = '{long}'"
        ))
        .await;
    org.server
        .ok(
            Some(&org.owner),
            REPLY,
            json!({"c": long, "t": "Your parcel number is QX4410, it leaves today."}),
        )
        .await;
    let page = archive(
        &org.server,
        &org.owner,
        json!({"search": "\"number is qx4410\""}),
    )
    .await;
    assert_eq!(ids(&page), vec![long.clone()]);
    let text: String = page["items"][0]["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert!(text.contains("QX4410") && !text.contains("story"), "{text}");
    assert_eq!(
        found(&org.server, &org.owner, "story qx4410 hello").await,
        BTreeSet::from([long.clone()])
    );
    assert!(
        found(&org.server, &org.owner, "qx4410 -story")
            .await
            .is_empty()
    );
}
