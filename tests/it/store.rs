//! The conformance suite of the Database trait: the same expectations on every backend.
//! Accounts and sessions here; chats (numbering, the chat transaction), the push outbox
//! (claims) and tenancy in the modules below, with the fixtures here.

use std::sync::Arc;

use chrono::Duration;
use switchboard::domain::{self, Group, Organization, Role, RoutingStatus};
use switchboard::store::{
    AgentUpdate, Database, DbError, NewAgent, NewRefreshToken, RefreshOutcome,
};

use crate::on_both_backends;
use crate::support::{Backend, TestServer};

// Further behaviours, by aggregate; each runs on both backends too.
mod canned;
mod chats;
mod greetings;
mod leases;
mod outbox;
mod presence;
mod tenancy;
mod timers;

on_both_backends!(
    organizations_and_agents_round_trip,
    emails_are_unique_within_an_organization_only,
    agent_updates_replace_groups_and_respect_tenancy,
    refresh_tokens_rotate_once_and_reuse_revokes,
    deactivation_revokes_every_session,
    concurrent_rotations_let_exactly_one_win,
    a_chat_change_dropped_before_commit_leaves_nothing,
    chat_changes_of_one_organization_take_turns,
);

/// A store on `backend`, migrated, with the bootstrapped organization in it.
async fn store(backend: Backend) -> (TestServer, Arc<dyn Database>) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let store = server.store.clone();
    (server, store)
}

fn organization(name: &str) -> Organization {
    Organization {
        id: domain::new_id(),
        name: name.into(),
        widget_key: format!("wk_{}", domain::new_id()),
        settings: Default::default(),
        created_at: domain::now(),
    }
}

/// Organization "Acme" with its owner, o@acme.test.
async fn acme(store: &dyn Database) -> (Organization, switchboard::domain::Agent) {
    let org = organization("Acme");
    let owner = store
        .create_organization(&org, &new_agent(&org.id, "o@acme.test", Role::Owner))
        .await
        .unwrap();
    (org, owner)
}

fn new_agent(organization_id: &str, email: &str, role: Role) -> NewAgent {
    NewAgent {
        id: domain::new_id(),
        organization_id: organization_id.into(),
        email: email.into(),
        name: "Agent".into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        role,
        chat_limit: None,
        group_ids: vec![],
        created_at: domain::now(),
    }
}

fn token(hash: &str, session_id: &str, ttl: Duration) -> NewRefreshToken {
    let now = domain::now();
    NewRefreshToken {
        token_hash: hash.into(),
        session_id: session_id.into(),
        created_at: now,
        expires_at: now + ttl,
    }
}

async fn organizations_and_agents_round_trip(backend: Backend) {
    let (_server, store) = store(backend).await;
    assert_eq!(
        store.organization_count().await.unwrap(),
        1,
        "bootstrap made one"
    );
    let bootstrapped = store
        .first_organization()
        .await
        .unwrap()
        .expect("one exists");
    let org = organization("Acme");
    let owner = new_agent(&org.id, "wile@acme.test", Role::Owner);
    let created = store.create_organization(&org, &owner).await.unwrap();
    // The demo page's organization stays the one created first.
    assert_eq!(
        store.first_organization().await.unwrap(),
        Some(bootstrapped)
    );
    assert_eq!(created.email, "wile@acme.test");
    assert_eq!(created.role, Role::Owner);
    assert_eq!(created.routing_status, RoutingStatus::Offline);
    assert!(created.active);
    assert_eq!(created.created_at, owner.created_at);
    assert_eq!(store.organization(&org.id).await.unwrap(), org);

    let credentials = store.agent_credentials("wile@acme.test").await.unwrap();
    assert_eq!(
        credentials,
        vec![(created.clone(), owner.password_hash.clone())]
    );
    assert!(
        store
            .agent_credentials("nobody@acme.test")
            .await
            .unwrap()
            .is_empty()
    );

    let at = domain::now();
    let logged_in = store
        .record_login(&created.id, RoutingStatus::AcceptingChats, at)
        .await
        .unwrap();
    assert_eq!(logged_in.routing_status, RoutingStatus::AcceptingChats);
    assert_eq!(logged_in.last_login_at, Some(at));
    assert!(matches!(
        store.organization("missing").await,
        Err(DbError::NotFound)
    ));
}

async fn emails_are_unique_within_an_organization_only(backend: Backend) {
    let (_server, store) = store(backend).await;
    let first = organization("One");
    let first_owner = store
        .create_organization(
            &first,
            &new_agent(&first.id, "same@example.com", Role::Owner),
        )
        .await
        .unwrap();
    // Another company may have an agent with the same email: nothing tells either about the
    // other.
    let second = organization("Two");
    let second_owner = store
        .create_organization(
            &second,
            &new_agent(&second.id, "same@example.com", Role::Owner),
        )
        .await
        .unwrap();
    let clash = store
        .create_agent(&new_agent(&second.id, "same@example.com", Role::Agent))
        .await;
    assert!(
        matches!(clash, Err(DbError::Conflict(ref m)) if m.contains("email")),
        "{clash:?}"
    );
    // The one signed in most recently comes first.
    store
        .record_login(
            &first_owner.id,
            RoutingStatus::AcceptingChats,
            domain::now(),
        )
        .await
        .unwrap();
    let ids: Vec<String> = store
        .agent_credentials("same@example.com")
        .await
        .unwrap()
        .into_iter()
        .map(|(agent, _)| agent.id)
        .collect();
    assert_eq!(ids, vec![first_owner.id, second_owner.id]);
}

async fn agent_updates_replace_groups_and_respect_tenancy(backend: Backend) {
    let (_server, store) = store(backend).await;
    let org = organization("Acme");
    store
        .create_organization(&org, &new_agent(&org.id, "owner@acme.test", Role::Owner))
        .await
        .unwrap();
    let group = |name: &str| Group {
        id: domain::new_id(),
        organization_id: org.id.clone(),
        name: name.into(),
        created_at: domain::now(),
    };
    let (sales, support) = (group("Sales"), group("Support"));
    store.create_group(&sales).await.unwrap();
    store.create_group(&support).await.unwrap();
    assert!(matches!(
        store.create_group(&group("Sales")).await,
        Err(DbError::Conflict(_))
    ));
    assert_eq!(
        store.groups(&org.id).await.unwrap(),
        vec![sales.clone(), support.clone()]
    );

    let mut agent = new_agent(&org.id, "ada@acme.test", Role::Agent);
    agent.group_ids = vec![sales.id.clone()];
    agent.chat_limit = Some(4);
    let created = store.create_agent(&agent).await.unwrap();
    assert_eq!(created.group_ids, vec![sales.id.clone()]);
    assert_eq!(created.chat_limit, Some(4));

    let update = AgentUpdate {
        name: Some("Ada".into()),
        role: Some(Role::Supervisor),
        chat_limit: Some(None),
        group_ids: Some(vec![support.id.clone()]),
    };
    let updated = store
        .update_agent(&org.id, &agent.id, &update)
        .await
        .unwrap();
    assert_eq!(updated.name, "Ada");
    assert_eq!(updated.role, Role::Supervisor);
    assert_eq!(updated.chat_limit, None);
    assert_eq!(updated.group_ids, vec![support.id.clone()]);
    let untouched = store
        .update_agent(&org.id, &agent.id, &AgentUpdate::default())
        .await
        .unwrap();
    assert_eq!(untouched, updated);

    let elsewhere = organization("Elsewhere");
    store
        .create_organization(
            &elsewhere,
            &new_agent(&elsewhere.id, "e@else.test", Role::Owner),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.agent(&elsewhere.id, &agent.id).await,
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        store.update_agent(&elsewhere.id, &agent.id, &update).await,
        Err(DbError::NotFound)
    ));
    assert!(matches!(
        store
            .deactivate_agent(&elsewhere.id, &agent.id, domain::now())
            .await,
        Err(DbError::NotFound)
    ));
    assert_eq!(store.agents(&org.id).await.unwrap().len(), 2);
}

async fn refresh_tokens_rotate_once_and_reuse_revokes(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, agent) = acme(store.as_ref()).await;
    store
        .create_session("s1", &agent.id, &token("h1", "s1", Duration::days(1)))
        .await
        .unwrap();
    assert!(
        store
            .session_agent("s1", &agent.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session_agent("s1", "someone-else")
            .await
            .unwrap()
            .is_none()
    );

    let rotated = store
        .rotate_refresh_token("h1", &token("h2", "", Duration::days(1)), domain::now())
        .await
        .unwrap();
    assert_eq!(
        rotated,
        RefreshOutcome::Rotated {
            agent_id: agent.id.clone(),
            session_id: "s1".into()
        }
    );
    let reused = store
        .rotate_refresh_token("h1", &token("h3", "", Duration::days(1)), domain::now())
        .await
        .unwrap();
    assert_eq!(
        reused,
        RefreshOutcome::Reused {
            agent_id: agent.id.clone(),
            session_id: "s1".into()
        }
    );
    assert!(
        store
            .session_agent("s1", &agent.id)
            .await
            .unwrap()
            .is_none(),
        "the session is revoked"
    );
    let successor = store
        .rotate_refresh_token("h2", &token("h4", "", Duration::days(1)), domain::now())
        .await
        .unwrap();
    assert_eq!(
        successor,
        RefreshOutcome::Invalid,
        "the successor died with the session"
    );
    assert_eq!(
        store
            .rotate_refresh_token(
                "unknown",
                &token("h5", "", Duration::days(1)),
                domain::now()
            )
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );

    store
        .create_session(
            "s2",
            &agent.id,
            &token("old", "s2", Duration::milliseconds(-1)),
        )
        .await
        .unwrap();
    let expired = store
        .rotate_refresh_token("old", &token("h6", "", Duration::days(1)), domain::now())
        .await
        .unwrap();
    assert_eq!(expired, RefreshOutcome::Invalid);

    store
        .create_session("s3", &agent.id, &token("h7", "s3", Duration::days(1)))
        .await
        .unwrap();
    store
        .revoke_session("s3", "logout", domain::now())
        .await
        .unwrap();
    assert!(
        store
            .session_agent("s3", &agent.id)
            .await
            .unwrap()
            .is_none()
    );
}

async fn deactivation_revokes_every_session(backend: Backend) {
    let (_server, store) = store(backend).await;
    let org = organization("Acme");
    store
        .create_organization(&org, &new_agent(&org.id, "o@acme.test", Role::Owner))
        .await
        .unwrap();
    let agent = store
        .create_agent(&new_agent(&org.id, "ada@acme.test", Role::Agent))
        .await
        .unwrap();
    store
        .create_session("a", &agent.id, &token("ha", "a", Duration::days(1)))
        .await
        .unwrap();
    store
        .create_session("b", &agent.id, &token("hb", "b", Duration::days(1)))
        .await
        .unwrap();
    let deactivated = store
        .deactivate_agent(&org.id, &agent.id, domain::now())
        .await
        .unwrap();
    assert!(!deactivated.active);
    assert_eq!(deactivated.routing_status, RoutingStatus::Offline);
    for session in ["a", "b"] {
        assert!(
            store
                .session_agent(session, &agent.id)
                .await
                .unwrap()
                .is_none()
        );
    }
    let refresh = store
        .rotate_refresh_token("ha", &token("hc", "", Duration::days(1)), domain::now())
        .await
        .unwrap();
    assert_eq!(refresh, RefreshOutcome::Invalid);
}

async fn concurrent_rotations_let_exactly_one_win(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, agent) = acme(store.as_ref()).await;
    store
        .create_session("s", &agent.id, &token("h0", "s", Duration::days(1)))
        .await
        .unwrap();
    let attempts = (0..8).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .rotate_refresh_token(
                    "h0",
                    &token(&format!("next{n}"), "", Duration::days(1)),
                    domain::now(),
                )
                .await
                .unwrap()
        })
    });
    let mut rotated = 0;
    for attempt in attempts {
        if let RefreshOutcome::Rotated { .. } = attempt.await.unwrap() {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "a refresh token is spent exactly once");
}

async fn a_chat_change_dropped_before_commit_leaves_nothing(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let before = owner.routing_status;
    let after = match before {
        RoutingStatus::AcceptingChats => RoutingStatus::NotAcceptingChats,
        _ => RoutingStatus::AcceptingChats,
    };

    let mut change = store.begin().await.unwrap();
    change.lock_organization(&org.id).await.unwrap();
    change.set_routing_status(&owner.id, after).await.unwrap();
    drop(change);
    let agent = store.agent(&org.id, &owner.id).await.unwrap();
    assert_eq!(agent.routing_status, before);

    // The writer is free again, and a committed change stays.
    let mut change = store.begin().await.unwrap();
    change.lock_organization(&org.id).await.unwrap();
    change.set_routing_status(&owner.id, after).await.unwrap();
    change.commit().await.unwrap();
    let agent = store.agent(&org.id, &owner.id).await.unwrap();
    assert_eq!(agent.routing_status, after);
}

async fn chat_changes_of_one_organization_take_turns(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let mut first = store.begin().await.unwrap();
    first.lock_organization(&org.id).await.unwrap();

    let second = tokio::spawn({
        let (store, org_id) = (store.clone(), org.id.clone());
        async move {
            let mut change = store.begin().await.unwrap();
            change.lock_organization(&org_id).await.unwrap();
            change.commit().await.unwrap();
        }
    });
    // Other writes wait too where the database has one writer (SQLite), and none fails.
    let group = tokio::spawn({
        let store = store.clone();
        let group = Group {
            id: domain::new_id(),
            organization_id: org.id.clone(),
            name: "Sales".into(),
            created_at: domain::now(),
        };
        async move { store.create_group(&group).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !second.is_finished(),
        "the second change waits for the first"
    );

    first
        .set_routing_status(&owner.id, RoutingStatus::AcceptingChats)
        .await
        .unwrap();
    first.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), second)
        .await
        .expect("the second change goes on once the first commits")
        .unwrap();
    let created = tokio::time::timeout(std::time::Duration::from_secs(10), group)
        .await
        .unwrap()
        .unwrap()
        .expect("a write beside chat changes succeeds");
    assert_eq!(created.name, "Sales");
}

/// A customer of `org`, as the widget's first visit creates them.
async fn customer(store: &dyn Database, org: &Organization) -> domain::Customer {
    let visit = switchboard::store::CustomerVisit {
        organization_id: org.id.clone(),
        visitor_id: domain::new_id(),
        name: Some("Cleo".into()),
        email: None,
        location: None,
        ip_address: None,
        page_url: Some("https://acme.test/pricing".into()),
        page_title: Some("Pricing".into()),
        referrer: None,
        user_agent: None,
        at: domain::now(),
        new_secret_hash: format!("secret-{}", domain::new_id()),
        presented_secret_hash: None,
        external_id: None,
    };
    store
        .record_visit(&visit, &domain::new_id())
        .await
        .unwrap()
        .customer
}

/// A queued chat of `customer`, committed.
async fn queued_chat(store: &dyn Database, customer: &domain::Customer) -> domain::Chat {
    let now = domain::now();
    let chat = domain::Chat::started(
        domain::new_id(),
        customer.organization_id.clone(),
        customer.id.clone(),
        None,
        domain::Channel::Widget,
        now,
    );
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&chat.organization_id).await.unwrap();
    tx.insert_chat(&chat).await.unwrap();
    tx.commit().await.unwrap();
    chat
}
