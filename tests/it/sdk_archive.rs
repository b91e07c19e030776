//! The mobile SDK's archive, customer profile and ban operations against the real server.

use std::collections::BTreeSet;

use serde_json::json;
use switchboard_sdk::{ArchiveFilter, BanInput, ChatStatus, CustomField, CustomerUpdate};

use crate::sdk::{Signedin, code};
use crate::support::{Backend, TestServer, error_code, start_chat};

crate::on_both_backends!(
    an_agent_searches_the_archive_and_edits_and_bans_a_customer_through_the_sdk
);

async fn an_agent_searches_the_archive_and_edits_and_bans_a_customer_through_the_sdk(
    backend: Backend,
) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let Signedin {
        key,
        dir: _dir,
        app,
        stream: _stream,
        ..
    } = Signedin::owner(&server).await;
    let owner = server.owner_token().await;
    let customer = crate::support::visitor(&server, &key, "sdk-visitor").await;
    let (first, _) = start_chat(&server, &customer, "Where is my parcel?").await;
    server
        .ok(
            Some(&owner),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": first}),
        )
        .await;
    let (second, _) = start_chat(&server, &customer, "Can I get a refund?").await;

    // Search with a snippet; filters; paging.
    let page = app
        .archive(
            ArchiveFilter {
                search: Some("parcel".into()),
                ..Default::default()
            },
            20,
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].chat.id, first);
    let snippet = page.items[0].snippet.clone().unwrap();
    assert!(
        snippet.iter().any(|p| p.highlighted && p.text == "parcel"),
        "{snippet:?}"
    );
    let open = app
        .archive(
            ArchiveFilter {
                status: Some(ChatStatus::Active),
                ..Default::default()
            },
            20,
            None,
        )
        .await
        .unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(open.items[0].chat.id, second);
    let one = app
        .archive(ArchiveFilter::default(), 1, None)
        .await
        .unwrap();
    assert!(one.has_next_page);
    let two = app
        .archive(ArchiveFilter::default(), 1, one.end_cursor.clone())
        .await
        .unwrap();
    assert!(!two.has_next_page);
    let seen: BTreeSet<String> = [&one, &two]
        .iter()
        .map(|p| p.items[0].chat.id.clone())
        .collect();
    assert_eq!(seen, [first.clone(), second.clone()].into_iter().collect());
    let bad = app
        .archive(
            ArchiveFilter {
                search: Some("-only".into()),
                ..Default::default()
            },
            20,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(code(bad), "BAD_USER_INPUT");

    // The profile, with their chats; an edit; a ban and its end.
    let customer_id = page.items[0].chat.customer.id.clone();
    let profile = app.customer_profile(customer_id.clone(), 10).await.unwrap();
    assert_eq!(profile.name.as_deref(), Some("Visitor sdk-visitor"));
    assert_eq!(profile.chats.as_ref().unwrap().items.len(), 2);
    let edited = app
        .update_customer(
            customer_id.clone(),
            CustomerUpdate {
                name: Some("Grace Hopper".into()),
                phone: Some("+1 555 0100".into()),
                custom_fields: Some(vec![CustomField {
                    key: "Plan".into(),
                    value: "Pro".into(),
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.first_name.as_deref(), Some("Grace"));
    assert_eq!(edited.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(edited.custom_fields.len(), 1);

    server
        .ok(
            Some(&owner),
            "mutation($c: ID!) { closeChat(chatId: $c) { id } }",
            json!({"c": second}),
        )
        .await;
    let ban = app
        .ban_customer(
            customer_id.clone(),
            BanInput {
                reason: "abuse".into(),
                duration_seconds: Some(3600),
                include_address: false,
            },
        )
        .await
        .unwrap();
    assert!(ban.active && ban.expires_at.is_some());
    let banned = app.customer_profile(customer_id.clone(), 1).await.unwrap();
    assert_eq!(banned.ban.map(|b| b.reason), Some("abuse".into()));
    let body = server
        .gql(
            Some(&customer),
            "mutation { startChat(input: {message: \"hi\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&body), "BANNED");
    assert!(app.unban_customer(customer_id.clone()).await.unwrap());
    assert!(!app.unban_customer(customer_id).await.unwrap());
}
