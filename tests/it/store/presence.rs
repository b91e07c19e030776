//! Sessions, presence and the chat clocks: signing out, password changes, reachability,
//! the customer's and the agent's activity, and the store's own health.

use chrono::Duration;
use switchboard::domain::{self, Role, RoutingStatus};
use switchboard::store::DbError;

use super::{acme, customer, new_agent, queued_chat, store, token};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    signing_out_of_the_last_app_ends_presence,
    a_password_change_ends_every_other_session,
    chat_clocks_follow_customer_and_agent_activity,
    organization_settings_and_logins_round_trip,
    the_store_reports_its_health,
);

async fn signing_out_of_the_last_app_ends_presence(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    store
        .create_session("s1", &owner.id, &token("h1", "s1", Duration::days(1)))
        .await
        .unwrap();
    store
        .create_session("s2", &owner.id, &token("h2", "s2", Duration::days(1)))
        .await
        .unwrap();
    let now = domain::now();
    store
        .set_presence(
            std::slice::from_ref(&owner.id),
            now + Duration::seconds(60),
            true,
        )
        .await
        .unwrap();
    assert!(store.agent_live(&owner.id, now).await.unwrap());
    assert!(store.agent_reachable(&owner.id, now).await.unwrap());

    assert!(store.sign_out_session("s1", &owner.id, now).await.unwrap());
    assert!(
        store
            .session_agent("s1", &owner.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session_agent("s2", &owner.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store.agent_live(&owner.id, now).await.unwrap(),
        "s2 is still there"
    );

    assert!(!store.sign_out_session("s2", &owner.id, now).await.unwrap());
    assert!(!store.agent_live(&owner.id, now).await.unwrap());
    assert!(!store.agent_reachable(&owner.id, now).await.unwrap());
    // A socket closing after the sign-out does not bring the agent back.
    store
        .set_presence(
            std::slice::from_ref(&owner.id),
            now + Duration::seconds(60),
            false,
        )
        .await
        .unwrap();
    assert!(!store.agent_reachable(&owner.id, now).await.unwrap());
}

async fn a_password_change_ends_every_other_session(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    let before = domain::now() - Duration::seconds(1);
    for (session, hash) in [("s1", "h1"), ("s2", "h2")] {
        store
            .create_session(session, &owner.id, &token(hash, session, Duration::days(1)))
            .await
            .unwrap();
    }
    store
        .change_password(&owner.id, "$argon2id$new", "s1", domain::now())
        .await
        .unwrap();
    assert!(
        store
            .session_agent("s1", &owner.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_agent("s2", &owner.id)
            .await
            .unwrap()
            .is_none()
    );
    let changes = store.access_changes_since(before).await.unwrap();
    assert!(changes.iter().any(|(id, _)| *id == owner.id), "{changes:?}");
    let credentials = store.agent_credentials("o@acme.test").await.unwrap();
    assert_eq!(credentials.len(), 1);
    assert_eq!(credentials[0].1, "$argon2id$new");
    assert!(matches!(
        store
            .change_password("missing", "x", "s1", domain::now())
            .await,
        Err(DbError::NotFound)
    ));
    store
        .set_password_hash(&owner.id, "$argon2id$newer")
        .await
        .unwrap();
    assert_eq!(
        store.agent_credentials("o@acme.test").await.unwrap()[0].1,
        "$argon2id$newer"
    );
    assert!(matches!(
        store.set_password_hash("missing", "x").await,
        Err(DbError::NotFound)
    ));
}

async fn chat_clocks_follow_customer_and_agent_activity(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, _owner) = acme(store.as_ref()).await;
    let chat = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis();
    let start = chat.last_customer_activity_at;

    // Typing is recorded at a resolution of seconds, not keys.
    store
        .touch_customer_activity(&chat.id, start + Duration::seconds(1))
        .await
        .unwrap();
    let read = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(ms(read.last_customer_activity_at), ms(start));
    let later = start + Duration::seconds(10);
    store
        .touch_customer_activity(&chat.id, later)
        .await
        .unwrap();
    let read = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(ms(read.last_customer_activity_at), ms(later));

    // The agent typing stops the auto-transfer clock; stopping restarts it.
    store.set_agent_typing(&chat.id, true, later).await.unwrap();
    let read = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(read.agent_typing_since.map(ms), Some(ms(later)));
    let stopped = later + Duration::seconds(5);
    store
        .set_agent_typing(&chat.id, false, stopped)
        .await
        .unwrap();
    let read = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(read.agent_typing_since, None);
    assert_eq!(read.awaiting_reply_since.map(ms), Some(ms(stopped)));

    // A queued chat's customer, seen now, is not abandoned; unseen, they are.
    let abandon = org.settings.queue_abandon_after;
    let seen = later + abandon;
    store.renew_customer_presence(&chat.id, seen).await.unwrap();
    let read = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(read.customer_seen_at.map(ms), Some(ms(seen)));
    let abandoned = |at| {
        let store = store.clone();
        async move { store.abandoned_queued_chats(at).await.unwrap() }
    };
    assert!(abandoned(seen + Duration::seconds(1)).await.is_empty());
    assert_eq!(
        abandoned(seen + abandon + Duration::seconds(1)).await,
        vec![(chat.id.clone(), org.id.clone())]
    );
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    let (count, oldest) = tx
        .chats_started_since(&org.id, start - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!((count, oldest.map(ms)), (1, Some(ms(chat.created_at))));
    drop(tx);
    assert_eq!(
        store
            .chats_started_since(&org.id, start + Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
}

async fn organization_settings_and_logins_round_trip(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    assert_eq!(
        store
            .organization_by_widget_key(&org.widget_key)
            .await
            .unwrap()
            .id,
        org.id
    );
    let mut settings = org.settings;
    settings.default_chat_limit = 7;
    settings.queue_abandon_after = Duration::seconds(90);
    settings.new_chats_per_minute = 11;
    let updated = store
        .update_organization_settings(&org.id, &settings)
        .await
        .unwrap();
    assert_eq!(updated.settings, settings);
    assert_eq!(
        store.organization(&org.id).await.unwrap().settings,
        settings
    );
    assert!(matches!(
        store
            .update_organization_settings("missing", &settings)
            .await,
        Err(DbError::NotFound)
    ));
    let at = domain::now();
    let logged_in = store
        .record_login(&owner.id, RoutingStatus::AcceptingChats, at)
        .await
        .unwrap();
    assert_eq!(logged_in.routing_status, RoutingStatus::AcceptingChats);
    assert_eq!(
        logged_in.last_login_at.map(|t| t.timestamp_millis()),
        Some(at.timestamp_millis())
    );
    // The agent signed in most recently comes first among agents with the same email.
    let other = super::organization("Other");
    let twin = store
        .create_organization(&other, &new_agent(&other.id, "o@acme.test", Role::Owner))
        .await
        .unwrap();
    let credentials = store.agent_credentials("o@acme.test").await.unwrap();
    assert_eq!(
        credentials
            .iter()
            .map(|(a, _)| a.id.clone())
            .collect::<Vec<_>>(),
        vec![owner.id.clone(), twin.id.clone()]
    );
}

async fn the_store_reports_its_health(backend: Backend) {
    let (_server, store) = store(backend).await;
    store.ping().await.unwrap();
    assert!(store.organization_count().await.unwrap() >= 1);
    let names: Vec<&str> = store.pool_stats().iter().map(|p| p.name).collect();
    match store.backend_name() {
        "sqlite" => assert_eq!(names, vec!["read", "write"]),
        "postgres" => assert_eq!(names, vec!["main"]),
        other => panic!("unknown backend {other}"),
    }
    // Migrating again changes nothing.
    store.migrate().await.unwrap();
}
