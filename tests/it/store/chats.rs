//! Chats: numbering without gaps under concurrent chat transactions, what a dropped chat
//! transaction leaves (nothing), and the reads and small writes beside it.

use std::sync::Arc;

use switchboard::domain::{
    self, AuthorKind, ChatEventKind, ChatStatus, FeedData, FeedKind, Role, Visibility,
};
use switchboard::store::{Database, DbError, NewChatEvent, ParticipantRole};

use super::{acme, customer, new_agent, queued_chat, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    concurrent_chat_changes_number_events_and_feed_entries_without_gaps,
    a_dropped_chat_change_leaves_no_number_used,
    chat_reads_follow_the_transcript,
    a_message_is_found_again_by_its_client_id,
    participants_and_supervisors,
    visits_recognise_a_returning_customer_by_secret_only,
);

fn message(chat: &domain::Chat, text: &str, client_id: Option<&str>) -> NewChatEvent {
    NewChatEvent {
        chat_id: chat.id.clone(),
        organization_id: chat.organization_id.clone(),
        kind: ChatEventKind::Message,
        author_kind: AuthorKind::Customer,
        author_id: Some(chat.customer_id.clone()),
        author_name: Some("Cleo".into()),
        text: text.into(),
        client_id: client_id.map(str::to_owned),
        visibility: Visibility::Public,
        at: domain::now(),
    }
}

async fn concurrent_chat_changes_number_events_and_feed_entries_without_gaps(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let chat = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    const WRITERS: usize = 12;
    let changes = (0..WRITERS).map(|n| {
        let (store, chat, owner_id) = (store.clone(), chat.clone(), owner.id.clone());
        tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            tx.lock_organization(&chat.organization_id).await.unwrap();
            let event = tx
                .append_event(&message(&chat, &format!("m{n}"), None))
                .await
                .unwrap();
            tx.append_feed(
                &owner_id,
                FeedKind::MessageAdded,
                Some(&chat.id),
                Some(&event),
                &FeedData::default(),
                domain::now(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
            event.seq
        })
    });
    let mut seqs = Vec::new();
    for change in changes {
        seqs.push(change.await.unwrap());
    }
    seqs.sort_unstable();
    let expected: Vec<i64> = (1..=WRITERS as i64).collect();
    assert_eq!(
        seqs, expected,
        "every change took its own number, none skipped"
    );

    let events = store.chat_events(&chat.id, 0, 100, true).await.unwrap();
    let stored: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(stored, expected);
    assert_eq!(
        store.chat_event_seq(&chat.id).await.unwrap(),
        WRITERS as i64
    );

    let feed = store.feed(&owner.id, 0, 100).await.unwrap();
    let feed_seqs: Vec<i64> = feed.iter().map(|f| f.seq).collect();
    assert_eq!(feed_seqs, expected);
    assert_eq!(store.feed_seq(&owner.id).await.unwrap(), WRITERS as i64);
    // Each feed entry carries its transcript entry.
    for entry in &feed {
        let event = entry.event.as_ref().expect("the feed entry's event");
        assert!(events.iter().any(|e| e.id == event.id));
    }
    assert_eq!(store.feed(&owner.id, 10, 100).await.unwrap().len(), 2);
}

async fn a_dropped_chat_change_leaves_no_number_used(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let chat = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;

    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    let event = tx
        .append_event(&message(&chat, "lost", None))
        .await
        .unwrap();
    assert_eq!(event.seq, 1);
    tx.append_feed(
        &owner.id,
        FeedKind::MessageAdded,
        Some(&chat.id),
        Some(&event),
        &FeedData::default(),
        domain::now(),
    )
    .await
    .unwrap();
    let mut closed = chat.clone();
    closed.status = ChatStatus::Closed;
    tx.update_chat(&closed).await.unwrap();
    drop(tx);

    assert_eq!(store.chat_event_seq(&chat.id).await.unwrap(), 0);
    assert_eq!(store.feed_seq(&owner.id).await.unwrap(), 0);
    assert!(
        store
            .chat_events(&chat.id, 0, 10, true)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.chat(&org.id, &chat.id).await.unwrap().status,
        ChatStatus::Queued
    );

    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    let kept = tx
        .append_event(&message(&chat, "kept", None))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        kept.seq, 1,
        "the number of the dropped change is used again"
    );
}

async fn chat_reads_follow_the_transcript(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let customer = customer(store.as_ref(), &org).await;
    let chat = queued_chat(store.as_ref(), &customer).await;

    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    assert_eq!(
        tx.open_chat_of_customer(&customer.id).await.unwrap(),
        Some(chat.id.clone())
    );
    assert_eq!(tx.queued_count(&org.id, None).await.unwrap(), 1);
    assert_eq!(tx.queued_count(&org.id, Some(&chat.id)).await.unwrap(), 0);
    assert_eq!(tx.queued_chats(&org.id).await.unwrap(), vec![chat.clone()]);
    assert_eq!(
        tx.customer_name(&customer.id).await.unwrap().as_deref(),
        Some("Cleo")
    );
    tx.append_event(&message(&chat, "hello", None))
        .await
        .unwrap();
    let mut note = message(&chat, "agents only", None);
    note.visibility = Visibility::Agents;
    note.author_kind = AuthorKind::Agent;
    note.author_id = Some(owner.id.clone());
    tx.append_event(&note).await.unwrap();
    let mut system = message(&chat, "queued", None);
    system.kind = ChatEventKind::ChatQueued;
    system.author_kind = AuthorKind::System;
    tx.append_event(&system).await.unwrap();
    assert_eq!(
        tx.latest_customer_message(&chat.id)
            .await
            .unwrap()
            .as_deref(),
        Some("hello"),
        "the latest entry the customer wrote"
    );
    let mut active = chat.clone();
    active.status = ChatStatus::Active;
    active.assignee_id = Some(owner.id.clone());
    active.assigned_at = Some(domain::now());
    tx.update_chat(&active).await.unwrap();
    tx.commit().await.unwrap();

    let public = store.chat_events(&chat.id, 0, 10, false).await.unwrap();
    assert_eq!(public.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 3]);
    let before = store
        .chat_events_before(&chat.id, 4, 10, true, true)
        .await
        .unwrap();
    assert_eq!(before.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(store.unread_chats(&owner.id).await.unwrap(), 1);
    let mine = store
        .chats(&org.id, &[ChatStatus::Active], Some(&owner.id))
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert!(
        store
            .chats(&org.id, &[ChatStatus::Queued], None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.customer_chats(&customer.id).await.unwrap().len(), 1);
    let active_chats = store.active_chats().await.unwrap();
    assert!(active_chats.iter().any(|(c, _)| c.id == chat.id));
    let views = store.page_views(&customer.id, 10).await.unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].title.as_deref(), Some("Pricing"));
}

async fn a_message_is_found_again_by_its_client_id(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, _owner) = acme(store.as_ref()).await;
    let chat = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    let sent = tx
        .append_event(&message(&chat, "once", Some("c-1")))
        .await
        .unwrap();
    let again = tx
        .message_by_client_id(&chat.id, &chat.customer_id, "c-1")
        .await
        .unwrap();
    assert_eq!(again, Some(sent.clone()));
    assert_eq!(
        tx.message_by_client_id(&chat.id, &chat.customer_id, "c-2")
            .await
            .unwrap(),
        None
    );
    tx.commit().await.unwrap();
    // Sent again, it is not appended: the earlier one is looked up in the same
    // transaction, which is then dropped.
    let mut tx = store.begin().await.unwrap();
    tx.enter_chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(
        tx.append_message(&message(&chat, "twice", Some("c-1")))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        tx.message_by_client_id(&chat.id, &chat.customer_id, "c-1")
            .await
            .unwrap(),
        Some(sent.clone())
    );
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    let entered = tx.enter_chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(entered.chat.id, chat.id);
    assert_eq!(entered.organization.id, org.id);
    let next = tx
        .append_message(&message(&chat, "next", Some("c-3")))
        .await
        .unwrap()
        .expect("a new client id is appended");
    assert_eq!(next.seq, sent.seq + 1, "the dropped resend left no gap");
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(
        tx.enter_chat(&org.id, "no-such-chat").await,
        Err(DbError::NotFound)
    ));
}

async fn participants_and_supervisors(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let supervisor = store
        .create_agent(&new_agent(&org.id, "s@acme.test", Role::Supervisor))
        .await
        .unwrap();
    let chat = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    let now = domain::now();
    tx.add_participant(&chat.id, &owner.id, ParticipantRole::PreviousAssignee, now)
        .await
        .unwrap();
    // Twice is once.
    tx.add_participant(&chat.id, &owner.id, ParticipantRole::PreviousAssignee, now)
        .await
        .unwrap();
    tx.add_participant(&chat.id, &supervisor.id, ParticipantRole::Supervisor, now)
        .await
        .unwrap();
    let mut participants = tx.participants(&chat.id).await.unwrap();
    participants.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (owner.id.clone(), ParticipantRole::PreviousAssignee),
        (supervisor.id.clone(), ParticipantRole::Supervisor),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(participants, expected);
    // A supervisor who joined and supervises the chat's group hears it once; the owner, a
    // previous assignee, not at all.
    assert_eq!(
        tx.watchers(&chat.id, &org.id, None).await.unwrap(),
        vec![supervisor.id.clone()]
    );
    tx.commit().await.unwrap();
    assert!(store.participated(&chat.id, &owner.id).await.unwrap());
    let stranger = store
        .create_agent(&new_agent(&org.id, "x@acme.test", Role::Agent))
        .await
        .unwrap();
    assert!(!store.participated(&chat.id, &stranger.id).await.unwrap());
}

async fn visits_recognise_a_returning_customer_by_secret_only(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, _owner) = acme(store.as_ref()).await;
    let store: Arc<dyn Database> = store;
    let first = switchboard::store::CustomerVisit {
        organization_id: org.id.clone(),
        visitor_id: "v-1".into(),
        name: Some("Cleo".into()),
        email: None,
        location: None,
        ip_address: None,
        page_url: None,
        page_title: None,
        referrer: None,
        user_agent: None,
        at: domain::now(),
        new_secret_hash: "s1".into(),
        presented_secret_hash: None,
        external_id: None,
    };
    let created = store.record_visit(&first, &domain::new_id()).await.unwrap();
    assert!(created.secret_issued);
    let returning = switchboard::store::CustomerVisit {
        name: None,
        new_secret_hash: "s2".into(),
        presented_secret_hash: Some("s1".into()),
        ..first.clone()
    };
    let back = store
        .record_visit(&returning, &domain::new_id())
        .await
        .unwrap();
    assert_eq!(back.customer.id, created.customer.id);
    assert_eq!(back.customer.visits, 2);
    assert_eq!(back.customer.name.as_deref(), Some("Cleo"));
    assert!(!back.secret_issued);
    let impostor = switchboard::store::CustomerVisit {
        presented_secret_hash: Some("wrong".into()),
        ..first.clone()
    };
    let other = store
        .record_visit(&impostor, &domain::new_id())
        .await
        .unwrap();
    assert_ne!(other.customer.id, created.customer.id);
    assert_ne!(other.customer.visitor_id, "v-1");
    let unchanged = store.customer(&org.id, &created.customer.id).await.unwrap();
    assert_eq!(unchanged.visits, 2);
    let moved = store
        .record_page_view(
            &org.id,
            &created.customer.id,
            "https://acme.test/",
            None,
            domain::now(),
        )
        .await
        .unwrap();
    assert_eq!(
        moved.current_page_url.as_deref(),
        Some("https://acme.test/")
    );
    assert!(matches!(
        store.customer(&org.id, "missing").await,
        Err(DbError::NotFound)
    ));
}
