//! The push outbox: claims that skip each other's rows, locks that run out, what a finished
//! job becomes; and the devices and preferences behind it.

use chrono::Duration;
use switchboard::domain::{
    self, NotificationKind, Platform, PushDevice, PushEnvironment, PushJob, PushJobStatus,
    PushMessage, WebPushKeys,
};
use switchboard::store::{Database, DbError};

use super::{acme, new_agent, organization, store};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(
    concurrent_claims_get_disjoint_jobs,
    a_claim_whose_lock_ran_out_is_claimed_again,
    finished_jobs_leave_the_outbox,
    a_device_token_stays_in_its_organization,
    a_browser_keeps_its_subscription_keys,
    preferences_choose_the_push_targets,
    acknowledging_assignments_clears_acceptance_deadlines,
    reads_and_an_empty_acknowledgement_do_not_wait_for_a_chat_change,
);

/// The test server's own push worker claims jobs due now: these tests work an hour ahead,
/// where it does not look.
fn later_than_the_servers_worker() -> chrono::DateTime<chrono::Utc> {
    domain::now() + Duration::hours(1)
}

fn device(agent: &domain::Agent, token: &str) -> PushDevice {
    let now = domain::now();
    PushDevice {
        id: domain::new_id(),
        agent_id: agent.id.clone(),
        organization_id: agent.organization_id.clone(),
        platform: Platform::Ios,
        token: token.into(),
        app_id: "test.app".into(),
        environment: PushEnvironment::Sandbox,
        locale: None,
        device_name: Some("phone".into()),
        disabled_reason: None,
        web_push: None,
        created_at: now,
        updated_at: now,
    }
}

/// `count` pending jobs for `device`, due at `due`.
async fn jobs(
    store: &dyn Database,
    device: &PushDevice,
    count: usize,
    due: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&device.organization_id).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..count {
        let job = PushJob {
            id: domain::new_id(),
            device_id: device.id.clone(),
            agent_id: device.agent_id.clone(),
            organization_id: device.organization_id.clone(),
            kind: NotificationKind::NewMessage,
            chat_id: None,
            message: PushMessage::new(
                NotificationKind::NewMessage,
                "Cleo",
                &format!("message {n}"),
                &device.organization_id,
                None,
                None,
            ),
            status: PushJobStatus::Pending,
            attempts: 0,
            next_attempt_at: due,
            last_error: None,
            created_at: domain::now(),
        };
        tx.insert_push_job(&job).await.unwrap();
        ids.push(job.id);
    }
    tx.commit().await.unwrap();
    ids
}

async fn concurrent_claims_get_disjoint_jobs(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    let device = store
        .upsert_push_device(&device(&owner, "t1"))
        .await
        .unwrap();
    let now = later_than_the_servers_worker();
    let created = jobs(store.as_ref(), &device, 10, now - Duration::seconds(1)).await;
    assert_eq!(store.push_outbox_depth().await.unwrap(), 10);

    let claims = (0..2).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim_push_jobs(now, now + Duration::seconds(60), 5)
                .await
                .unwrap()
        })
    });
    let mut claimed = Vec::new();
    for claim in claims {
        let jobs = claim.await.unwrap();
        assert_eq!(jobs.len(), 5);
        for (job, with_device) in jobs {
            assert_eq!(with_device, device);
            assert_eq!(job.status, PushJobStatus::Sending);
            assert_eq!(job.attempts, 1);
            claimed.push(job.id);
        }
    }
    claimed.sort();
    claimed.dedup();
    assert_eq!(claimed.len(), 10, "no job was claimed twice");
    let mut created = created;
    created.sort();
    assert_eq!(claimed, created);
    assert!(
        store
            .claim_push_jobs(now, now + Duration::seconds(60), 5)
            .await
            .unwrap()
            .is_empty(),
        "claimed jobs are locked"
    );
}

async fn a_claim_whose_lock_ran_out_is_claimed_again(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    let device = store
        .upsert_push_device(&device(&owner, "t1"))
        .await
        .unwrap();
    let now = later_than_the_servers_worker();
    let later = jobs(store.as_ref(), &device, 1, now + Duration::seconds(30)).await;
    let due = jobs(store.as_ref(), &device, 1, now - Duration::seconds(1)).await;
    assert_eq!(
        store
            .next_push_due()
            .await
            .unwrap()
            .map(|t| t.timestamp_millis()),
        Some((now - Duration::seconds(1)).timestamp_millis())
    );

    let first = store
        .claim_push_jobs(now, now + Duration::seconds(5), 10)
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|(j, _)| j.id.clone()).collect::<Vec<_>>(),
        due
    );
    // The worker died holding it: nobody takes it while the lock holds…
    let held = store
        .claim_push_jobs(now + Duration::seconds(4), now + Duration::seconds(10), 10)
        .await
        .unwrap();
    assert!(held.is_empty());
    // …and the next worker takes it once the lock ran out, counting a second attempt.
    let again = store
        .claim_push_jobs(now + Duration::seconds(6), now + Duration::seconds(20), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0.id, due[0]);
    assert_eq!(again[0].0.attempts, 2);
    // The job not yet due stays pending.
    assert!(
        store
            .push_jobs(&owner.id)
            .await
            .unwrap()
            .iter()
            .any(|j| j.id == later[0] && j.status == PushJobStatus::Pending)
    );
}

async fn finished_jobs_leave_the_outbox(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    let device = store
        .upsert_push_device(&device(&owner, "t1"))
        .await
        .unwrap();
    let now = later_than_the_servers_worker();
    let ids = jobs(store.as_ref(), &device, 3, now - Duration::seconds(1)).await;
    let claimed = store
        .claim_push_jobs(now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    store
        .finish_push_job(&ids[0], PushJobStatus::Sent, now, None, now)
        .await
        .unwrap();
    store
        .finish_push_job(&ids[1], PushJobStatus::Dead, now, Some("410 Gone"), now)
        .await
        .unwrap();
    let retry_at = now + Duration::seconds(30);
    store
        .finish_push_job(&ids[2], PushJobStatus::Pending, retry_at, Some("503"), now)
        .await
        .unwrap();
    assert_eq!(store.push_outbox_depth().await.unwrap(), 1);
    assert_eq!(
        store
            .next_push_due()
            .await
            .unwrap()
            .map(|t| t.timestamp_millis()),
        Some(retry_at.timestamp_millis())
    );
    let stored = store.push_jobs(&owner.id).await.unwrap();
    let by_id = |id: &str| stored.iter().find(|j| j.id == id).unwrap().clone();
    assert_eq!(by_id(&ids[0]).status, PushJobStatus::Sent);
    assert_eq!(by_id(&ids[1]).last_error.as_deref(), Some("410 Gone"));
    assert_eq!(by_id(&ids[2]).status, PushJobStatus::Pending);
    assert!(
        store
            .claim_push_jobs(now, now + Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting the device takes its jobs with it.
    assert!(store.delete_push_device(&owner.id, "t1").await.unwrap());
    assert!(!store.delete_push_device(&owner.id, "t1").await.unwrap());
    assert!(store.push_jobs(&owner.id).await.unwrap().is_empty());
}

async fn a_device_token_stays_in_its_organization(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let colleague = store
        .create_agent(&new_agent(
            &org.id,
            "c@acme.test",
            switchboard::domain::Role::Agent,
        ))
        .await
        .unwrap();
    let stored = store
        .upsert_push_device(&device(&owner, "t1"))
        .await
        .unwrap();
    store
        .disable_push_device(&stored.id, "unregistered", domain::now())
        .await
        .unwrap();
    assert!(!store.push_devices(&owner.id).await.unwrap()[0].enabled());
    // The same token from a colleague's sign-in moves to them and is enabled again.
    let moved = store
        .upsert_push_device(&device(&colleague, "t1"))
        .await
        .unwrap();
    assert_eq!(moved.agent_id, colleague.id);
    assert!(moved.enabled());
    assert!(store.push_devices(&owner.id).await.unwrap().is_empty());
    // From another organization it is refused.
    let other = organization("Other");
    let stranger = store
        .create_organization(
            &other,
            &new_agent(&other.id, "o@other.test", switchboard::domain::Role::Owner),
        )
        .await
        .unwrap();
    assert!(matches!(
        store.upsert_push_device(&device(&stranger, "t1")).await,
        Err(DbError::Conflict(_))
    ));
    assert_eq!(
        store.push_devices(&colleague.id).await.unwrap()[0].organization_id,
        org.id
    );
}

/// A browser's keys come back with its device, are replaced when it subscribes again, and go
/// when the endpoint is registered as a phone's token.
async fn a_browser_keeps_its_subscription_keys(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_, owner) = acme(store.as_ref()).await;
    let endpoint = "https://push.example.net/wpush/v2/abc";
    let browser = |p256dh: &str| PushDevice {
        platform: Platform::Web,
        app_id: "https://chat.acme.test".into(),
        web_push: Some(WebPushKeys {
            p256dh: p256dh.into(),
            auth: "auth-secret".into(),
        }),
        ..device(&owner, endpoint)
    };
    let stored = store.upsert_push_device(&browser("key-1")).await.unwrap();
    assert_eq!(stored.platform, Platform::Web);
    assert_eq!(stored.web_push, browser("key-1").web_push);
    let again = store.upsert_push_device(&browser("key-2")).await.unwrap();
    assert_eq!(again.id, stored.id, "one device per endpoint");
    assert_eq!(
        store.push_devices(&owner.id).await.unwrap()[0]
            .web_push
            .as_ref()
            .unwrap()
            .p256dh,
        "key-2"
    );
    let phone = store
        .upsert_push_device(&device(&owner, endpoint))
        .await
        .unwrap();
    assert_eq!(phone.platform, Platform::Ios);
    assert_eq!(phone.web_push, None);
    // A browser without its keys is refused by the database itself.
    assert!(
        store
            .upsert_push_device(&PushDevice {
                web_push: None,
                ..browser("key-3")
            })
            .await
            .is_err()
    );
}

async fn preferences_choose_the_push_targets(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (_org, owner) = acme(store.as_ref()).await;
    store
        .upsert_push_device(&device(&owner, "t1"))
        .await
        .unwrap();
    store
        .set_push_preference(&owner.id, NotificationKind::NewMessage, false)
        .await
        .unwrap();
    store
        .set_push_preference(&owner.id, NotificationKind::NewMessage, false)
        .await
        .unwrap();
    assert_eq!(
        store.push_preferences(&owner.id).await.unwrap(),
        vec![(NotificationKind::NewMessage, false)]
    );
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&owner.organization_id).await.unwrap();
    assert!(
        tx.push_targets(&owner.id, NotificationKind::NewMessage)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        tx.push_targets(&owner.id, NotificationKind::NewChat)
            .await
            .unwrap()
            .len(),
        1
    );
    // A device stands in for the app: the agent is reachable.
    assert!(tx.agent_reachable(&owner.id, domain::now()).await.unwrap());
    assert!(!tx.agent_live(&owner.id, domain::now()).await.unwrap());
    drop(tx);
    store
        .set_push_preference(&owner.id, NotificationKind::NewMessage, true)
        .await
        .unwrap();
    assert_eq!(
        store.push_preferences(&owner.id).await.unwrap(),
        vec![(NotificationKind::NewMessage, true)]
    );
}

async fn acknowledging_assignments_clears_acceptance_deadlines(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    // Nothing waiting: nothing to write.
    store.acknowledge_assignments(&owner.id).await.unwrap();
    let customer = super::customer(store.as_ref(), &org).await;
    let chat = super::queued_chat(store.as_ref(), &customer).await;
    let mut assigned = chat.clone();
    assigned.status = domain::ChatStatus::Active;
    assigned.assignee_id = Some(owner.id.clone());
    assigned.acceptance_deadline = Some(domain::now() + Duration::seconds(30));
    let mut tx = store.begin().await.unwrap();
    tx.lock_organization(&org.id).await.unwrap();
    tx.update_chat(&assigned).await.unwrap();
    tx.commit().await.unwrap();
    store.acknowledge_assignments(&owner.id).await.unwrap();
    let acknowledged = store.chat(&org.id, &chat.id).await.unwrap();
    assert_eq!(acknowledged.acceptance_deadline, None);
}

/// Every WebSocket's connection_init acknowledges assignments, and every request reads its
/// session: none of it may queue behind a chat change holding the writer.
async fn reads_and_an_empty_acknowledgement_do_not_wait_for_a_chat_change(backend: Backend) {
    let (_server, store) = store(backend).await;
    let (org, owner) = acme(store.as_ref()).await;
    let customer = super::customer(store.as_ref(), &org).await;
    store
        .create_session("s", &owner.id, &super::token("h", "s", Duration::days(1)))
        .await
        .unwrap();
    let mut change = store.begin().await.unwrap();
    change.lock_organization(&org.id).await.unwrap();
    let soon = std::time::Duration::from_secs(2);
    tokio::time::timeout(soon, store.acknowledge_assignments(&owner.id))
        .await
        .expect("acknowledge_assignments waited for the writer")
        .unwrap();
    let agent = tokio::time::timeout(soon, store.session_agent("s", &owner.id))
        .await
        .expect("session_agent waited for the writer")
        .unwrap();
    assert_eq!(agent.map(|a| a.id), Some(owner.id.clone()));
    tokio::time::timeout(soon, store.customer(&org.id, &customer.id))
        .await
        .expect("customer waited for the writer")
        .unwrap();
    tokio::time::timeout(soon, store.unread_chats(&owner.id))
        .await
        .expect("unread_chats waited for the writer")
        .unwrap();
    change.commit().await.unwrap();
}
