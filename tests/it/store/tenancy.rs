//! Tenancy: every organization-scoped method sees only that organization's rows. Another
//! organization's ids give NotFound or nothing, and change nothing.

use switchboard::domain::{self, ChatStatus, Group, OfflineMessage, Role};
use switchboard::store::{AgentUpdate, DbError};

use super::{acme, customer, new_agent, organization, queued_chat, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(another_organizations_ids_find_nothing);

fn not_found<T: std::fmt::Debug>(result: Result<T, DbError>) {
    assert!(matches!(result, Err(DbError::NotFound)), "{result:?}");
}

async fn another_organizations_ids_find_nothing(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (acme, owner) = acme(store.as_ref()).await;
    let other = organization("Other");
    let stranger = store
        .create_organization(&other, &new_agent(&other.id, "o@other.test", Role::Owner))
        .await
        .unwrap();
    store
        .create_group(&Group {
            id: domain::new_id(),
            organization_id: acme.id.clone(),
            name: "Sales".into(),
            created_at: domain::now(),
        })
        .await
        .unwrap();
    let customer = customer(store.as_ref(), &acme).await;
    let chat = queued_chat(store.as_ref(), &customer).await;
    let message = OfflineMessage {
        id: domain::new_id(),
        organization_id: acme.id.clone(),
        customer_id: Some(customer.id.clone()),
        group_id: None,
        name: "Cleo".into(),
        email: "cleo@example.test".into(),
        text: "call me".into(),
        handled: false,
        created_at: domain::now(),
    };
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&acme.id).await.unwrap();
    tx.insert_offline_message(&message).await.unwrap();
    tx.commit().await.unwrap();

    // Accounts.
    not_found(store.agent(&other.id, &owner.id).await);
    not_found(
        store
            .update_agent(
                &other.id,
                &owner.id,
                &AgentUpdate {
                    name: Some("Mallory".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    not_found(
        store
            .deactivate_agent(&other.id, &owner.id, domain::now())
            .await,
    );
    let theirs = store.agents(&other.id).await.unwrap();
    assert_eq!(
        theirs.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![stranger.id.clone()]
    );
    assert!(store.groups(&other.id).await.unwrap().is_empty());
    let loads = store.agent_loads(&other.id, domain::now()).await.unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(loads[0].agent.id, stranger.id);

    // Customers and chats.
    not_found(store.customer(&other.id, &customer.id).await);
    not_found(
        store
            .record_page_view(
                &other.id,
                &customer.id,
                "https://x.test",
                None,
                domain::now(),
            )
            .await,
    );
    not_found(store.chat(&other.id, &chat.id).await);
    assert!(
        store
            .chats(&other.id, &[ChatStatus::Queued, ChatStatus::Active], None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .chats_started_since(&other.id, domain::now() - chrono::Duration::hours(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.average_handle_seconds(&other.id).await.unwrap(), None);

    // Offline messages.
    assert!(store.offline_messages(&other.id).await.unwrap().is_empty());
    not_found(store.offline_message(&other.id, &message.id).await);
    not_found(
        store
            .set_offline_message_handled(&other.id, &message.id, true)
            .await,
    );
    assert!(
        !store
            .offline_message(&acme.id, &message.id)
            .await
            .unwrap()
            .handled
    );
    assert!(
        store
            .set_offline_message_handled(&acme.id, &message.id, true)
            .await
            .unwrap()
            .handled
    );

    // The chat transaction.
    let mut tx = store.begin().await.unwrap();
    let locked = tx.lock_organization(&other.id).await.unwrap();
    not_found(tx.agent(&other.id, &owner.id).await);
    not_found(tx.chat(&other.id, &chat.id).await);
    assert!(tx.queued_chats(&other.id).await.unwrap().is_empty());
    assert_eq!(tx.queued_count(&other.id, None).await.unwrap(), 0);
    assert_eq!(
        tx.offline_message_recipients(&other.id, None)
            .await
            .unwrap(),
        vec![stranger.id.clone()]
    );
    let candidates = tx
        .routing_candidates(&locked, None, domain::now())
        .await
        .unwrap();
    assert!(candidates.iter().all(|c| c.agent_id != owner.id));
    drop(tx);
    not_found(
        store
            .begin()
            .await
            .unwrap()
            .lock_organization("missing")
            .await,
    );

    // Nothing of Acme's changed.
    let unchanged = store.agent(&acme.id, &owner.id).await.unwrap();
    assert_eq!(unchanged.name, owner.name);
    assert!(unchanged.active);
    assert_eq!(store.groups(&acme.id).await.unwrap().len(), 1);
}
