//! When the chat timers next have work: the earliest deadline among active and queued chats,
//! by the same rules the timers apply.

use chrono::{DateTime, Duration};
use switchboard::domain::{self, Attention, Chat, ChatStatus};
use switchboard::store::Database;

use super::{acme, customer, queued_chat, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(the_next_timer_deadline_is_the_earliest_rule_due,);

async fn save(store: &dyn Database, chat: &Chat) {
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&chat.organization_id).await.unwrap();
    tx.update_chat(chat).await.unwrap();
    tx.commit().await.unwrap();
}

async fn the_next_timer_deadline_is_the_earliest_rule_due(backend: Backend) {
    let (_server, store) = store(backend).await;
    // Stored to the millisecond.
    let now = DateTime::from_timestamp_millis(domain::now().timestamp_millis()).unwrap();
    assert_eq!(
        store.next_timer_due(now).await.unwrap(),
        None,
        "no chats, no deadline"
    );
    let (org, owner) = acme(store.as_ref()).await;
    // Far apart and far ahead, so the running server's timers leave these chats alone.
    let mut settings = org.settings;
    settings.waiting_long_after = Duration::hours(1);
    settings.auto_transfer_after = Duration::hours(2);
    settings.customer_idle_after = Duration::hours(3);
    settings.queue_abandon_after = Duration::hours(5);
    settings.auto_close_after = Duration::hours(24);
    store
        .update_organization_settings(&org.id, &settings)
        .await
        .unwrap();

    // Queued: abandoned after the last sign of the customer, whichever column holds it.
    let mut queued = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    queued.last_customer_activity_at = now - Duration::minutes(10);
    queued.queued_at = Some(now);
    save(store.as_ref(), &queued).await;
    store
        .renew_customer_presence(&queued.id, now + Duration::minutes(1))
        .await
        .unwrap();
    let abandoned_at = now + Duration::minutes(1) + Duration::hours(5);
    assert_eq!(store.next_timer_due(now).await.unwrap(), Some(abandoned_at));

    // Active and awaiting a reply: the acceptance deadline comes first.
    let mut active = queued_chat(store.as_ref(), &customer(store.as_ref(), &org).await).await;
    active.status = ChatStatus::Active;
    active.assignee_id = Some(owner.id.clone());
    active.awaiting_reply_since = Some(now);
    active.last_customer_activity_at = now;
    active.last_activity_at = now;
    active.acceptance_deadline = Some(now + Duration::minutes(30));
    save(store.as_ref(), &active).await;
    assert_eq!(
        store.next_timer_due(now).await.unwrap(),
        Some(now + Duration::minutes(30))
    );

    // Accepted: the chat turns red after waiting_long_after.
    active.acceptance_deadline = None;
    save(store.as_ref(), &active).await;
    assert_eq!(
        store.next_timer_due(now).await.unwrap(),
        Some(now + Duration::hours(1))
    );

    // Red already: auto-transfer is next; an agent typing holds it off for a minute more.
    active.attention = Attention::WaitingLong;
    active.awaiting_reply_since = Some(now - Duration::hours(2));
    active.agent_typing_since = Some(now - Duration::seconds(30));
    save(store.as_ref(), &active).await;
    assert_eq!(
        store.next_timer_due(now).await.unwrap(),
        Some(now + Duration::seconds(30))
    );

    // Replied: the customer turns idle after customer_idle_after.
    active.attention = Attention::Normal;
    active.awaiting_reply_since = None;
    active.agent_typing_since = None;
    save(store.as_ref(), &active).await;
    assert_eq!(
        store.next_timer_due(now).await.unwrap(),
        Some(now + Duration::hours(3))
    );

    // A stored attention that is out of date is due now.
    active.attention = Attention::WaitingLong;
    save(store.as_ref(), &active).await;
    assert_eq!(store.next_timer_due(now).await.unwrap(), Some(now));

    // Closed chats have no timers.
    active.status = ChatStatus::Closed;
    active.attention = Attention::Normal;
    save(store.as_ref(), &active).await;
    queued.status = ChatStatus::Closed;
    save(store.as_ref(), &queued).await;
    assert_eq!(store.next_timer_due(now).await.unwrap(), None);
}
