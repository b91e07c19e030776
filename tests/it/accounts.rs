//! Agents, groups and roles, and the wall between organizations.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, error_code};

const CREATE_AGENT: &str = "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id email role chatLimit hasOwnChatLimit groups { name } } }";
const UPDATE_AGENT: &str = "mutation($input: UpdateAgentInput!) { updateAgent(input: $input) { id name role chatLimit hasOwnChatLimit groups { name } } }";
const CREATE_GROUP: &str =
    "mutation($name: String!) { createGroup(input: {name: $name}) { id name } }";

fn agent_input(email: &str, role: &str) -> serde_json::Value {
    json!({"input": {"email": email, "name": "New Agent", "password": "agent-password-1", "role": role}})
}

on_both_backends!(
    admins_manage_agents_and_groups,
    organizations_cannot_see_or_touch_each_other
);

async fn admins_manage_agents_and_groups(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let sales = server
        .ok(Some(&owner), CREATE_GROUP, json!({"name": "Sales"}))
        .await["createGroup"]["id"]
        .clone();
    let support = server
        .ok(Some(&owner), CREATE_GROUP, json!({"name": "Support"}))
        .await["createGroup"]["id"]
        .clone();
    assert_eq!(
        server
            .error_code(Some(&owner), CREATE_GROUP, json!({"name": "Sales"}))
            .await,
        "CONFLICT"
    );

    let created = server
        .ok(
            Some(&owner),
            CREATE_AGENT,
            json!({"input": {"email": "ada@example.com", "name": "Ada", "password": "agent-password-1",
                   "role": "SUPERVISOR", "chatLimit": 5, "groupIds": [sales, sales]}}),
        )
        .await["createAgent"]
        .clone();
    assert_eq!(created["role"], "SUPERVISOR");
    assert_eq!(created["chatLimit"], 5);
    assert_eq!(created["groups"], json!([{"name": "Sales"}]));
    let ada = created["id"].clone();

    // Without a limit of their own, agents follow the organization's default.
    let updated = server
        .ok(Some(&owner), UPDATE_AGENT, json!({"input": {"id": ada, "chatLimit": null, "groupIds": [support], "name": " Ada L. "}}))
        .await["updateAgent"]
        .clone();
    assert_eq!(updated["chatLimit"], 3);
    assert_eq!(updated["hasOwnChatLimit"], false);
    assert_eq!(updated["groups"], json!([{"name": "Support"}]));
    assert_eq!(updated["name"], "Ada L.");
    assert_eq!(updated["role"], "SUPERVISOR", "omitted fields stay");

    let agents = server
        .ok(
            Some(&owner),
            "{ agents { email } groups { name } }",
            json!({}),
        )
        .await;
    assert_eq!(agents["agents"].as_array().unwrap().len(), 2);
    assert_eq!(
        agents["groups"],
        json!([{"name": "Sales"}, {"name": "Support"}])
    );

    assert_eq!(
        server
            .error_code(
                Some(&owner),
                CREATE_AGENT,
                agent_input("ADA@example.com", "AGENT")
            )
            .await,
        "CONFLICT"
    );
    let unknown_group = json!({"input": {"email": "x@example.com", "name": "X", "password": "agent-password-1", "groupIds": ["nope"]}});
    assert_eq!(
        server
            .error_code(Some(&owner), CREATE_AGENT, unknown_group)
            .await,
        "BAD_USER_INPUT"
    );
    let bad_limit = json!({"input": {"id": ada, "chatLimit": 0}});
    assert_eq!(
        server
            .error_code(Some(&owner), UPDATE_AGENT, bad_limit)
            .await,
        "BAD_USER_INPUT"
    );
}

#[tokio::test]
async fn agents_and_supervisors_cannot_administer() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "agent@example.com", "AGENT")
        .await;
    server
        .create_agent(&owner, "super@example.com", "SUPERVISOR")
        .await;
    for email in ["agent@example.com", "super@example.com"] {
        let token = server.agent_token(email).await;
        assert_eq!(
            server
                .error_code(
                    Some(&token),
                    CREATE_AGENT,
                    agent_input("x@example.com", "AGENT")
                )
                .await,
            "FORBIDDEN"
        );
        assert_eq!(
            server
                .error_code(Some(&token), CREATE_GROUP, json!({"name": "G"}))
                .await,
            "FORBIDDEN"
        );
        let me = server.ok(Some(&token), "{ me { id } }", json!({})).await["me"]["id"].clone();
        assert_eq!(
            server
                .error_code(
                    Some(&token),
                    UPDATE_AGENT,
                    json!({"input": {"id": me, "role": "ADMIN"}})
                )
                .await,
            "FORBIDDEN"
        );
        // Reading the team is fine: agents pick transfer targets from it.
        server
            .ok(
                Some(&token),
                "{ agents { name } groups { name } organization { name } }",
                json!({}),
            )
            .await;
    }
    let anonymous = server.gql(None, "{ agents { name } }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn only_owners_manage_owners_and_an_owner_always_remains() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let owner_id = server.ok(Some(&owner), "{ me { id } }", json!({})).await["me"]["id"].clone();
    server
        .create_agent(&owner, "admin@example.com", "ADMIN")
        .await;
    let admin = server.agent_token("admin@example.com").await;

    assert_eq!(
        server
            .error_code(
                Some(&admin),
                CREATE_AGENT,
                agent_input("o2@example.com", "OWNER")
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(
                Some(&admin),
                UPDATE_AGENT,
                json!({"input": {"id": owner_id, "name": "x"}})
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(
                Some(&admin),
                "mutation($id: ID!) { deactivateAgent(id: $id) { id } }",
                json!({"id": owner_id})
            )
            .await,
        "FORBIDDEN"
    );
    // Admins do manage agents.
    server
        .create_agent(&admin, "agent@example.com", "AGENT")
        .await;

    // The last owner can neither step down nor be removed, nor remove themselves.
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                UPDATE_AGENT,
                json!({"input": {"id": owner_id, "role": "ADMIN"}})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                "mutation($id: ID!) { deactivateAgent(id: $id) { id } }",
                json!({"id": owner_id})
            )
            .await,
        "BAD_USER_INPUT"
    );
    // With a second owner, the first may step down.
    server
        .create_agent(&owner, "owner2@example.com", "OWNER")
        .await;
    let demoted = server
        .ok(
            Some(&owner),
            UPDATE_AGENT,
            json!({"input": {"id": owner_id, "role": "ADMIN"}}),
        )
        .await;
    assert_eq!(demoted["updateAgent"]["role"], "ADMIN");
    // The role change applies to the very next request of the same token.
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                CREATE_AGENT,
                agent_input("o3@example.com", "OWNER")
            )
            .await,
        "FORBIDDEN"
    );
}

async fn organizations_cannot_see_or_touch_each_other(backend: Backend) {
    let server = TestServer::start_with(backend, |c| c.allow_signup = true).await;
    let owner_a = server.owner_token().await;
    let agent_a = server
        .create_agent(&owner_a, "ada@example.com", "AGENT")
        .await;
    let group_a = server
        .ok(Some(&owner_a), CREATE_GROUP, json!({"name": "Sales"}))
        .await["createGroup"]["id"]
        .clone();

    let signed_up = server
        .ok(
            None,
            "mutation { signUp(input: {organizationName: \"Other\", name: \"Eve\", email: \"eve@other.test\", password: \"other-password\"}) { accessToken } }",
            json!({}),
        )
        .await;
    let owner_b = signed_up["signUp"]["accessToken"].as_str().unwrap();

    let agents = server
        .ok(
            Some(owner_b),
            "{ agents { email } groups { id } }",
            json!({}),
        )
        .await;
    assert_eq!(agents["agents"], json!([{"email": "eve@other.test"}]));
    assert_eq!(agents["groups"], json!([]));
    assert_eq!(
        server
            .error_code(
                Some(owner_b),
                "query($id: ID!) { agent(id: $id) { email } }",
                json!({"id": agent_a})
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(owner_b),
                UPDATE_AGENT,
                json!({"input": {"id": agent_a, "name": "Pwned"}})
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .error_code(
                Some(owner_b),
                "mutation($id: ID!) { deactivateAgent(id: $id) { id } }",
                json!({"id": agent_a})
            )
            .await,
        "NOT_FOUND"
    );
    let foreign_group = json!({"input": {"email": "x@other.test", "name": "X", "password": "agent-password-1", "groupIds": [group_a]}});
    assert_eq!(
        server
            .error_code(Some(owner_b), CREATE_AGENT, foreign_group)
            .await,
        "BAD_USER_INPUT"
    );

    // Nothing changed on A's side.
    let agent = server
        .ok(
            Some(&owner_a),
            "query($id: ID!) { agent(id: $id) { name isActive } }",
            json!({"id": agent_a}),
        )
        .await;
    assert_eq!(
        agent["agent"],
        json!({"name": "Test Agent", "isActive": true})
    );
}
