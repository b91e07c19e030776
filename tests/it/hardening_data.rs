//! Data and role rules that must hold under concurrency and across organizations: an
//! organization always keeps an active owner, push tokens stay in their organization, a
//! visitor is bound to the secret their widget keeps, and offline messages reach agents'
//! event feeds.

use serde_json::{Value, json};
use switchboard::domain::{self, Organization, Role};
use switchboard::store::{AgentUpdate, DbError, NewAgent};

use crate::on_both_backends;
use crate::support::{
    Backend, TestServer, agent_events, error_code, start_chat, visitor, widget_key,
};

const UPDATE_ROLE: &str =
    "mutation($id: ID!, $role: Role!) { updateAgent(input: {id: $id, role: $role}) { id role } }";
const DEACTIVATE: &str = "mutation($id: ID!) { deactivateAgent(id: $id) { id isActive } }";

on_both_backends!(
    two_owners_removing_each_other_at_once_leave_one_owner,
    the_store_keeps_an_active_owner_whatever_runs_at_once,
    a_push_token_never_moves_to_another_organization,
    a_visitor_id_without_its_secret_gets_a_new_customer,
    a_customer_from_before_visitor_secrets_is_claimed_by_the_next_session,
    an_offline_message_reaches_the_agents_who_may_read_it_as_an_event,
);

/// Signs in the agent with `email` (created with the harness's password): token and id.
async fn sign_in(server: &TestServer, email: &str) -> (String, String) {
    let login = server.login(email, "agent-password-1").await;
    (
        login["accessToken"].as_str().unwrap().to_owned(),
        login["agent"]["id"].as_str().unwrap().to_owned(),
    )
}

/// The organization's active owners.
async fn active_owners(server: &TestServer, token: &str) -> Vec<String> {
    server
        .ok(Some(token), "{ agents { id role isActive } }", json!({}))
        .await["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["role"] == "OWNER" && a["isActive"] == true)
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Each round starts with exactly two active owners who, at the same moment, deactivate (or
/// demote) each other: one of the two changes must lose, every time.
async fn two_owners_removing_each_other_at_once_leave_one_owner(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let mut survivor = server.owner_token().await;
    for round in 0..40 {
        let demote = round % 2 == 1;
        let email = format!("owner{round}@example.com");
        server.create_agent(&survivor, &email, "OWNER").await;
        let (newcomer, newcomer_id) = sign_in(&server, &email).await;
        let owners = active_owners(&server, &survivor).await;
        assert_eq!(owners.len(), 2, "round {round} starts with two owners");
        let other_id = owners
            .iter()
            .find(|id| **id != newcomer_id)
            .unwrap()
            .clone();

        let remove = |token: String, target: String| {
            let server = &server;
            async move {
                let body = if demote {
                    server
                        .gql(
                            Some(&token),
                            UPDATE_ROLE,
                            json!({"id": target, "role": "ADMIN"}),
                        )
                        .await
                } else {
                    server
                        .gql(Some(&token), DEACTIVATE, json!({"id": target}))
                        .await
                };
                (token, body)
            }
        };
        let (first, second) = tokio::join!(
            remove(survivor.clone(), newcomer_id.clone()),
            remove(newcomer.clone(), other_id.clone()),
        );
        let succeeded: Vec<&(String, Value)> = [&first, &second]
            .into_iter()
            .filter(|(_, body)| body.get("errors").is_none())
            .collect();
        assert_eq!(
            succeeded.len(),
            1,
            "round {round} (demote: {demote}): exactly one succeeds: {} {}",
            first.1,
            second.1
        );
        for (_, body) in [&first, &second] {
            if body.get("errors").is_some() {
                let code = error_code(body);
                assert!(
                    ["BAD_USER_INPUT", "FORBIDDEN", "UNAUTHENTICATED"].contains(&code.as_str()),
                    "round {round}: the loser is refused with a clear code: {body}"
                );
            }
        }
        // The winner is the one whose change went through; they remain the only owner.
        survivor = succeeded[0].0.clone();
        let owners = active_owners(&server, &survivor).await;
        assert_eq!(owners.len(), 1, "round {round} leaves one active owner");
    }
}

fn owner_of(organization_id: &str, email: &str) -> NewAgent {
    NewAgent {
        id: domain::new_id(),
        organization_id: organization_id.into(),
        email: email.into(),
        name: "Owner".into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        role: Role::Owner,
        chat_limit: None,
        group_ids: vec![],
        created_at: domain::now(),
    }
}

/// The same rule at the store, without HTTP between the two changes: a deactivation and a
/// demotion of the two owners, started together, never both commit.
async fn the_store_keeps_an_active_owner_whatever_runs_at_once(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let store = server.store.clone();
    for round in 0..20 {
        let org = Organization {
            id: domain::new_id(),
            name: format!("Org {round}"),
            widget_key: format!("wk_{}", domain::new_id()),
            settings: Default::default(),
            created_at: domain::now(),
        };
        let first = store
            .create_organization(&org, &owner_of(&org.id, &format!("a{round}@org.test")))
            .await
            .unwrap();
        let second = store
            .create_agent(&owner_of(&org.id, &format!("b{round}@org.test")))
            .await
            .unwrap();
        let demotion = AgentUpdate {
            role: Some(Role::Admin),
            ..AgentUpdate::default()
        };
        let (deactivated, demoted) = tokio::join!(
            store.deactivate_agent(&org.id, &second.id, domain::now()),
            store.update_agent(&org.id, &first.id, &demotion),
        );
        let refused = [deactivated.is_err(), demoted.is_err()];
        assert_eq!(
            refused.iter().filter(|r| **r).count(),
            1,
            "round {round}: {deactivated:?} {demoted:?}"
        );
        for result in [deactivated.err(), demoted.err()].into_iter().flatten() {
            assert!(matches!(result, DbError::LastActiveOwner), "{result:?}");
        }
        let owners = store
            .agents(&org.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.role == Role::Owner && a.active)
            .count();
        assert_eq!(owners, 1, "round {round}");
    }
}

const REGISTER_DEVICE: &str = "mutation($token: String!) { registerPushDevice(input: {platform: ANDROID, token: $token, appId: \"com.example.agent\", environment: PRODUCTION}) { token } }";
const MY_DEVICES: &str = "{ myPushDevices { token } }";

/// A token moves between agents of one organization (a phone changes hands), never from an
/// agent of another: that would divert their pushes to whoever learned the token.
async fn a_push_token_never_moves_to_another_organization(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    server
        .ok(Some(&owner), REGISTER_DEVICE, json!({"token": "phone-1"}))
        .await;
    let outsider = server
        .ok(
            None,
            "mutation { signUp(input: {organizationName: \"Other\", name: \"Eve\", email: \"eve@other.test\", password: \"other-password\"}) { accessToken } }",
            json!({}),
        )
        .await["signUp"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = server
        .gql(
            Some(&outsider),
            REGISTER_DEVICE,
            json!({"token": "phone-1"}),
        )
        .await;
    assert_eq!(error_code(&refused), "CONFLICT", "{refused}");
    assert!(
        !refused.to_string().contains("owner@example.com"),
        "the answer names nobody: {refused}"
    );
    assert_eq!(
        server.ok(Some(&outsider), MY_DEVICES, json!({})).await["myPushDevices"],
        json!([])
    );
    assert_eq!(
        server.ok(Some(&owner), MY_DEVICES, json!({})).await["myPushDevices"],
        json!([{"token": "phone-1"}]),
        "the token stays with its agent"
    );

    // Within the organization the phone changes hands.
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let ada = server.agent_token("ada@example.com").await;
    server
        .ok(Some(&ada), REGISTER_DEVICE, json!({"token": "phone-1"}))
        .await;
    assert_eq!(
        server.ok(Some(&ada), MY_DEVICES, json!({})).await["myPushDevices"],
        json!([{"token": "phone-1"}])
    );
    assert_eq!(
        server.ok(Some(&owner), MY_DEVICES, json!({})).await["myPushDevices"],
        json!([])
    );
}

const START_SESSION: &str =
    "mutation($input: StartVisitorSessionInput!) { startVisitorSession(input: $input) {
    token visitorId visitorSecret customer { id name email visits } } }";
const CUSTOMER_OF_CHAT: &str =
    "query($id: ID!) { chat(id: $id) { customer { id visitorId name email visits } } }";

/// Starts a visitor session with `input` (the widget key added) and returns it.
async fn session(server: &TestServer, key: &str, mut input: Value) -> Value {
    input["widgetKey"] = json!(key);
    server
        .ok(None, START_SESSION, json!({"input": input}))
        .await["startVisitorSession"]
        .clone()
}

/// Agents read visitor ids; a visitor id alone must not open the customer's chat or let
/// anyone rewrite their name and email. Only the secret issued with it does.
async fn a_visitor_id_without_its_secret_gets_a_new_customer(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;

    let alice = session(
        &server,
        &key,
        json!({"visitorId": "alice", "name": "Alice", "email": "alice@customer.test"}),
    )
    .await;
    assert_eq!(alice["visitorId"], "alice");
    let secret = alice["visitorSecret"]
        .as_str()
        .expect("a first session issues a secret");
    assert!(secret.len() >= 32, "{secret}");
    let alice_token = alice["token"].as_str().unwrap();
    let (alice_chat, _) = start_chat(&server, alice_token, "Where is my parcel?").await;

    // Agents see the visitor id, never the secret.
    let seen = server
        .ok(Some(&owner), CUSTOMER_OF_CHAT, json!({"id": alice_chat}))
        .await;
    assert_eq!(seen["chat"]["customer"]["visitorId"], "alice");
    let customer_fields = server
        .ok(
            Some(&owner),
            "{ __type(name: \"Customer\") { fields { name } } }",
            json!({}),
        )
        .await;
    assert!(
        !customer_fields
            .to_string()
            .to_lowercase()
            .contains("secret"),
        "{customer_fields}"
    );

    // Whoever learned the id, without the secret or with a wrong one, is someone new.
    for (attempt, secret) in [(0, None), (1, Some("not-the-secret"))] {
        let mallory = session(
            &server,
            &key,
            json!({"visitorId": "alice", "visitorSecret": secret,
                   "name": format!("Mallory {attempt}"), "email": "mallory@evil.test"}),
        )
        .await;
        assert_ne!(mallory["visitorId"], "alice", "{mallory}");
        assert_ne!(mallory["customer"]["id"], alice["customer"]["id"]);
        assert_eq!(mallory["customer"]["visits"], 1);
        assert_eq!(mallory["customer"]["name"], format!("Mallory {attempt}"));
        assert!(
            mallory["visitorSecret"].is_string(),
            "a new customer gets a secret"
        );
        let mallory_token = mallory["token"].as_str().unwrap();
        let code = server
            .error_code(
                Some(mallory_token),
                "query($id: ID!) { chat(id: $id) { id } }",
                json!({"id": alice_chat}),
            )
            .await;
        assert!(
            ["NOT_FOUND", "FORBIDDEN"].contains(&code.as_str()),
            "{code}"
        );
        let (mallory_chat, _) = start_chat(&server, mallory_token, "Hi").await;
        assert_ne!(mallory_chat, alice_chat, "not the customer's open chat");
    }
    let unchanged = server
        .ok(Some(&owner), CUSTOMER_OF_CHAT, json!({"id": alice_chat}))
        .await["chat"]["customer"]
        .clone();
    assert_eq!(unchanged["name"], "Alice");
    assert_eq!(unchanged["email"], "alice@customer.test");
    assert_eq!(unchanged["visits"], 1);

    // The widget that kept both is the same customer, and is not given the secret again.
    let back = session(
        &server,
        &key,
        json!({"visitorId": "alice", "visitorSecret": secret}),
    )
    .await;
    assert_eq!(back["visitorId"], "alice");
    assert_eq!(back["customer"]["id"], alice["customer"]["id"]);
    assert_eq!(back["customer"]["visits"], 2);
    assert_eq!(back["customer"]["name"], "Alice");
    assert!(back["visitorSecret"].is_null(), "{back}");
    let chat = server
        .ok(
            back["token"].as_str(),
            "query($id: ID!) { chat(id: $id) { id } }",
            json!({"id": alice_chat}),
        )
        .await;
    assert_eq!(chat["chat"]["id"], alice_chat.as_str());

    // A secret no widget could have been given is refused as such.
    let too_long = server
        .gql(
            None,
            START_SESSION,
            json!({"input": {"widgetKey": key, "visitorId": "alice", "visitorSecret": "x".repeat(500)}}),
        )
        .await;
    assert_eq!(error_code(&too_long), "BAD_USER_INPUT");
}

/// Customers stored before visitor secrets have none: the next session claims them and is
/// given the secret, after which the visitor id alone no longer opens them.
async fn a_customer_from_before_visitor_secrets_is_claimed_by_the_next_session(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let key = widget_key(&server, &owner).await;
    let first = session(
        &server,
        &key,
        json!({"visitorId": "old-timer", "name": "Olga"}),
    )
    .await;
    server
        .execute_sql("UPDATE customers SET visitor_secret_hash = NULL")
        .await;

    let claimed = session(&server, &key, json!({"visitorId": "old-timer"})).await;
    assert_eq!(claimed["customer"]["id"], first["customer"]["id"]);
    assert_eq!(claimed["customer"]["name"], "Olga");
    assert_eq!(claimed["customer"]["visits"], 2);
    let secret = claimed["visitorSecret"]
        .as_str()
        .expect("the claim issues a secret");
    assert_ne!(Some(secret), first["visitorSecret"].as_str());

    let without = session(&server, &key, json!({"visitorId": "old-timer"})).await;
    assert_ne!(without["customer"]["id"], first["customer"]["id"]);
    let with = session(
        &server,
        &key,
        json!({"visitorId": "old-timer", "visitorSecret": secret}),
    )
    .await;
    assert_eq!(with["customer"]["id"], first["customer"]["id"]);
    assert_eq!(with["customer"]["visits"], 3);
}

/// Creates a group and puts the agent `email` (created now) in it: the agent's token.
async fn agent_in_group(server: &TestServer, owner: &str, email: &str, group: &str) -> String {
    let group_id = server
        .ok(
            Some(owner),
            "mutation($name: String!) { createGroup(input: {name: $name}) { id } }",
            json!({"name": group}),
        )
        .await["createGroup"]["id"]
        .clone();
    let id = server.create_agent(owner, email, "AGENT").await;
    server
        .ok(
            Some(owner),
            "mutation($id: ID!, $groups: [ID!]!) { updateAgent(input: {id: $id, groupIds: $groups}) { id } }",
            json!({"id": id, "groups": [group_id]}),
        )
        .await;
    server.agent_token(email).await
}

/// An offline message is an agent event for exactly the agents who may list it, stored in
/// their feeds: a stream resumed from an earlier cursor replays it.
async fn an_offline_message_reaches_the_agents_who_may_read_it_as_an_event(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let ada = agent_in_group(&server, &owner, "ada@example.com", "Sales").await;
    let bob = agent_in_group(&server, &owner, "bob@example.com", "Support").await;
    let sales = server
        .ok(Some(&owner), "{ groups { id name } }", json!({}))
        .await["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Sales")
        .unwrap()["id"]
        .clone();
    let ada_cursor = server
        .ok(Some(&ada), "{ agentEventsCursor }", json!({}))
        .await["agentEventsCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ada_live = agent_events(&server, &ada, Some(&ada_cursor)).await;
    let mut owner_live = agent_events(&server, &owner, None).await;
    let mut bob_live = agent_events(&server, &bob, None).await;

    let key = widget_key(&server, &owner).await;
    let customer = visitor(&server, &key, "offline-olga").await;
    let left = server
        .ok(
            Some(&customer),
            "mutation($group: ID) { leaveOfflineMessage(input: {name: \"Olga\", email: \"olga@customer.test\", text: \"Call me back\", groupId: $group}) { id createdAt } }",
            json!({"group": sales}),
        )
        .await["leaveOfflineMessage"]
        .clone();

    let expected = json!({"id": left["id"], "name": "Olga", "email": "olga@customer.test",
        "text": "Call me back", "groupId": sales, "createdAt": left["createdAt"], "handled": false});
    let received = ada_live.next_event("OfflineMessageReceived").await;
    assert_eq!(received["offlineMessage"], expected);
    let cursor = received["cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        owner_live.next_event("OfflineMessageReceived").await["offlineMessage"],
        expected,
        "owners read every offline message"
    );

    // Bob is not in Sales: his next event is the one he causes next, not the message.
    server
        .ok(
            Some(&bob),
            "mutation { setRoutingStatus(status: NOT_ACCEPTING_CHATS) { id } }",
            json!({}),
        )
        .await;
    let next = bob_live.any_event().await;
    assert_eq!(next["__typename"], "RoutingStatusChanged", "{next}");

    // Stored like the other feed events: resuming before it replays it, as it is now.
    server
        .ok(
            Some(&ada),
            "mutation($id: ID!) { markOfflineMessageHandled(id: $id) { handled } }",
            json!({"id": left["id"]}),
        )
        .await;
    let mut replay = agent_events(&server, &ada, Some(&ada_cursor)).await;
    let replayed = replay.next_event("OfflineMessageReceived").await;
    assert_eq!(replayed["cursor"], cursor.as_str());
    assert_eq!(replayed["offlineMessage"]["id"], left["id"]);
    assert_eq!(replayed["offlineMessage"]["handled"], true);
}
