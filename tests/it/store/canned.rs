//! Canned responses: they round-trip within their organization, a shortcut is unique per
//! scope and group or owner, a prefix finds shortcuts in byte order whatever the collation,
//! and uses are counted.

use switchboard::domain::{self, CannedResponse, CannedScope, Role};
use switchboard::store::DbError;

use super::{acme, new_agent, organization, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    canned_responses_round_trip_within_their_organization,
    a_shortcut_is_unique_per_scope_and_found_by_prefix,
);

fn canned(org: &str, shortcut: &str, scope: CannedScope, owner: Option<&str>) -> CannedResponse {
    let now = domain::now();
    CannedResponse {
        id: domain::new_id(),
        organization_id: org.into(),
        shortcut: shortcut.into(),
        title: format!("About {shortcut}"),
        text: "Hi {{customer.first_name}}".into(),
        scope,
        group_id: None,
        owner_id: owner.map(str::to_owned),
        usage_count: 0,
        created_at: now,
        updated_at: now,
    }
}

async fn canned_responses_round_trip_within_their_organization(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let first = canned(&org.id, "shipping", CannedScope::Organization, None);
    store.insert_canned_response(&first).await.unwrap();
    let mine = canned(&org.id, "thanks", CannedScope::Personal, Some(&owner.id));
    store.insert_canned_response(&mine).await.unwrap();
    assert_eq!(
        store.canned_response(&org.id, &first.id).await.unwrap(),
        first
    );
    let mut all = store.canned_responses(&org.id, None).await.unwrap();
    all.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
    assert_eq!(all, vec![first.clone(), mine.clone()]);

    let mut changed = first.clone();
    changed.shortcut = "ship".into();
    changed.text = "Changed".into();
    changed.updated_at = first.updated_at + chrono::Duration::seconds(1);
    store.update_canned_response(&changed).await.unwrap();
    store.count_canned_use(&org.id, &first.id).await.unwrap();
    store.count_canned_use(&org.id, &first.id).await.unwrap();
    let read = store.canned_response(&org.id, &first.id).await.unwrap();
    assert_eq!(read.usage_count, 2);
    assert_eq!(read.text, "Changed");
    assert_eq!(read.created_at, first.created_at);
    assert_eq!(read.updated_at, changed.updated_at);

    // Another organization neither sees nor changes any of it.
    let elsewhere = organization("Elsewhere");
    assert!(matches!(
        store.canned_response(&elsewhere.id, &first.id).await,
        Err(DbError::NotFound)
    ));
    assert!(
        store
            .canned_responses(&elsewhere.id, None)
            .await
            .unwrap()
            .is_empty()
    );
    let mut stolen = changed.clone();
    stolen.organization_id = elsewhere.id.clone();
    assert!(matches!(
        store.update_canned_response(&stolen).await,
        Err(DbError::NotFound)
    ));
    assert!(
        !store
            .delete_canned_response(&elsewhere.id, &first.id)
            .await
            .unwrap()
    );
    store
        .count_canned_use(&elsewhere.id, &first.id)
        .await
        .unwrap();
    assert_eq!(
        store
            .canned_response(&org.id, &first.id)
            .await
            .unwrap()
            .usage_count,
        2
    );

    assert!(
        store
            .delete_canned_response(&org.id, &first.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_canned_response(&org.id, &first.id)
            .await
            .unwrap()
    );
}

async fn a_shortcut_is_unique_per_scope_and_found_by_prefix(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let ada = store
        .create_agent(&new_agent(&org.id, "ada@acme.test", Role::Agent))
        .await
        .unwrap();
    let shared = canned(&org.id, "ship", CannedScope::Organization, None);
    store.insert_canned_response(&shared).await.unwrap();
    let again = canned(&org.id, "ship", CannedScope::Organization, None);
    assert!(matches!(
        store.insert_canned_response(&again).await,
        Err(DbError::Conflict(message)) if message.contains("shortcut")
    ));
    // The same shortcut is free in each agent's own responses.
    for agent in [&owner.id, &ada.id] {
        let own = canned(&org.id, "ship", CannedScope::Personal, Some(agent));
        store.insert_canned_response(&own).await.unwrap();
    }
    let twice = canned(&org.id, "ship", CannedScope::Personal, Some(&ada.id));
    assert!(matches!(
        store.insert_canned_response(&twice).await,
        Err(DbError::Conflict(_))
    ));
    let mut renamed = canned(&org.id, "other", CannedScope::Organization, None);
    store.insert_canned_response(&renamed).await.unwrap();
    renamed.shortcut = "ship".into();
    assert!(matches!(
        store.update_canned_response(&renamed).await,
        Err(DbError::Conflict(_))
    ));

    for shortcut in ["ship-a", "ship_b", "shipz", "shi", "shop", "ship0"] {
        let response = canned(&org.id, shortcut, CannedScope::Organization, None);
        store.insert_canned_response(&response).await.unwrap();
    }
    let mut found: Vec<String> = store
        .canned_responses(&org.id, Some("ship"))
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.scope == CannedScope::Organization)
        .map(|r| r.shortcut)
        .collect();
    found.sort();
    assert_eq!(found, ["ship", "ship-a", "ship0", "ship_b", "shipz"]);
    assert!(
        store
            .canned_responses(&org.id, Some("shipzz"))
            .await
            .unwrap()
            .is_empty()
    );
}
