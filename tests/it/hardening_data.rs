//! Data and role rules that must hold under concurrency and across organizations: an
//! organization always keeps an active owner, push tokens stay in their organization, a
//! visitor is bound to the secret their widget keeps, and offline messages reach agents'
//! event feeds.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestServer, error_code};

const UPDATE_ROLE: &str =
    "mutation($id: ID!, $role: Role!) { updateAgent(input: {id: $id, role: $role}) { id role } }";
const DEACTIVATE: &str = "mutation($id: ID!) { deactivateAgent(id: $id) { id isActive } }";

on_both_backends!(
    two_owners_removing_each_other_at_once_leave_one_owner,
    a_push_token_never_moves_to_another_organization,
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
    let (mut survivor, _) = {
        let token = server.owner_token().await;
        let id = server.ok(Some(&token), "{ me { id } }", json!({})).await["me"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (token, id)
    };
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
