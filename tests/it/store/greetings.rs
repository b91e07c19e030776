//! Greetings and greeting rules: a greeting is shown, answered or dismissed once, the latest
//! one of a customer is found, rules round-trip and stay in their organization, and the
//! counts per rule follow their greetings.

use switchboard::domain::{self, Greeting, GreetingCounts, GreetingRule, RuleConditions};

use super::{acme, customer, organization, queued_chat, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    a_greeting_is_shown_answered_and_dismissed_once,
    greeting_rules_round_trip_within_their_organization,
);

fn greeting(org: &str, customer: &str, rule: Option<&str>) -> Greeting {
    Greeting {
        id: domain::new_id(),
        organization_id: org.into(),
        customer_id: customer.into(),
        agent_id: None,
        agent_name: Some("Ada".into()),
        rule_id: rule.map(str::to_owned),
        group_id: None,
        text: "Hi!".into(),
        created_at: domain::now(),
        shown_at: None,
        answered_at: None,
        chat_id: None,
        dismissed_at: None,
    }
}

fn rule(org: &str, name: &str) -> GreetingRule {
    GreetingRule {
        id: domain::new_id(),
        organization_id: org.into(),
        name: name.into(),
        enabled: true,
        text: "Hi {{visitor.name}}".into(),
        group_id: None,
        conditions: RuleConditions {
            url_contains: Some("/pricing".into()),
            url_pattern: Some("^https://".into()),
            min_seconds_on_page: Some(30),
            min_visits: Some(2),
            referrer_contains: None,
        },
        once_per_hours: 24,
        created_at: domain::now(),
    }
}

async fn a_greeting_is_shown_answered_and_dismissed_once(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, _) = acme(store.as_ref()).await;
    let sam = customer(store.as_ref(), &org).await;
    let sent = greeting(&org.id, &sam.id, None);
    store.insert_greeting(&sent).await.unwrap();
    assert_eq!(store.greeting(&org.id, &sent.id).await.unwrap(), sent);
    let since = sent.created_at - chrono::Duration::seconds(1);
    assert_eq!(
        store.latest_greeting(&sam.id, since).await.unwrap(),
        Some(sent.clone())
    );
    let later = sent.created_at + chrono::Duration::seconds(1);
    assert_eq!(store.latest_greeting(&sam.id, later).await.unwrap(), None);
    let now = domain::now();
    assert!(store.mark_greeting_shown(&sent.id, now).await.unwrap());
    assert!(!store.mark_greeting_shown(&sent.id, now).await.unwrap());

    // Answered in a chat transaction: once, and then it cannot be dismissed.
    let chat = queued_chat(store.as_ref(), &sam).await;
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    assert_eq!(tx.greeting(&org.id, &sent.id).await.unwrap().id, sent.id);
    assert!(tx.answer_greeting(&sent.id, &chat.id, now).await.unwrap());
    assert!(!tx.answer_greeting(&sent.id, &chat.id, now).await.unwrap());
    tx.commit().await.unwrap();
    let after = store
        .dismiss_greeting(&org.id, &sent.id, now)
        .await
        .unwrap();
    assert_eq!(after.answered_at, Some(now));
    assert_eq!(after.chat_id.as_deref(), Some(chat.id.as_str()));
    assert_eq!(after.dismissed_at, None);
    assert_eq!(after.shown_at, Some(now));

    let other = greeting(&org.id, &sam.id, None);
    store.insert_greeting(&other).await.unwrap();
    let dismissed = store
        .dismiss_greeting(&org.id, &other.id, now)
        .await
        .unwrap();
    assert_eq!(dismissed.dismissed_at, Some(now));
    let again = store
        .dismiss_greeting(&org.id, &other.id, now + chrono::Duration::seconds(5))
        .await
        .unwrap();
    assert_eq!(again.dismissed_at, Some(now), "the first dismissal counts");
    // Another organization sees none of it.
    let elsewhere = organization("Elsewhere");
    assert!(store.greeting(&elsewhere.id, &sent.id).await.is_err());
    assert!(
        store
            .open_chat_of_customer(&elsewhere.id, &sam.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .open_chat_of_customer(&org.id, &sam.id)
            .await
            .unwrap()
            .map(|c| c.id),
        Some(chat.id)
    );
}

async fn greeting_rules_round_trip_within_their_organization(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, _) = acme(store.as_ref()).await;
    let first = rule(&org.id, "Pricing");
    store.insert_greeting_rule(&first).await.unwrap();
    let mut second = rule(&org.id, "Checkout");
    second.created_at = first.created_at + chrono::Duration::seconds(1);
    second.enabled = false;
    second.conditions = RuleConditions::default();
    store.insert_greeting_rule(&second).await.unwrap();
    assert_eq!(
        store.greeting_rules(&org.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    let mut changed = first.clone();
    changed.name = "Pricing, later".into();
    changed.once_per_hours = 2;
    changed.conditions.url_pattern = None;
    store.update_greeting_rule(&changed).await.unwrap();
    assert_eq!(
        store.greeting_rule(&org.id, &first.id).await.unwrap(),
        changed
    );
    let elsewhere = organization("Elsewhere");
    assert!(store.greeting_rule(&elsewhere.id, &first.id).await.is_err());
    let mut foreign = changed.clone();
    foreign.organization_id = elsewhere.id.clone();
    assert!(store.update_greeting_rule(&foreign).await.is_err());
    assert!(
        !store
            .delete_greeting_rule(&elsewhere.id, &first.id)
            .await
            .unwrap()
    );

    // Counts follow the rule's greetings; a deleted rule's greetings stay, counted nowhere.
    let sam = customer(store.as_ref(), &org).await;
    let now = domain::now();
    let shown = greeting(&org.id, &sam.id, Some(&first.id));
    store.insert_greeting(&shown).await.unwrap();
    store.mark_greeting_shown(&shown.id, now).await.unwrap();
    store
        .dismiss_greeting(&org.id, &shown.id, now)
        .await
        .unwrap();
    let unseen = greeting(&org.id, &sam.id, Some(&first.id));
    store.insert_greeting(&unseen).await.unwrap();
    assert_eq!(
        store.greeting_counts(&org.id).await.unwrap(),
        vec![(
            first.id.clone(),
            GreetingCounts {
                shown: 1,
                answered: 0,
                dismissed: 1
            }
        )]
    );
    assert_eq!(
        store
            .last_rule_greeting_at(&first.id, &sam.id)
            .await
            .unwrap(),
        Some(unseen.created_at.max(shown.created_at))
    );
    assert!(
        store
            .delete_greeting_rule(&org.id, &first.id)
            .await
            .unwrap()
    );
    assert!(store.greeting_counts(&org.id).await.unwrap().is_empty());
    assert_eq!(
        store.greeting(&org.id, &shown.id).await.unwrap().rule_id,
        None
    );
    assert_eq!(store.greeting_rules(&org.id).await.unwrap(), vec![second]);
}
