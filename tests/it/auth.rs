//! Signing in, staying signed in, signing out, and guessing passwords.

use std::time::Duration;

use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, OWNER_EMAIL, OWNER_PASSWORD, TestServer, error_code};

const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken agent { email } } }";
const LOGIN: &str = "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }";

on_both_backends!(
    login_returns_tokens_and_first_login_accepts_chats,
    refresh_rotates_and_reuse_revokes_the_whole_session,
    logout_ends_the_session,
    deactivated_agents_are_signed_out_and_cannot_sign_in,
);

async fn login_returns_tokens_and_first_login_accepts_chats(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let agent_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let before = server
        .ok(
            Some(&owner),
            "query($id: ID!) { agent(id: $id) { routingStatus lastLoginAt } }",
            json!({"id": agent_id}),
        )
        .await;
    assert_eq!(before["agent"]["routingStatus"], "OFFLINE");
    assert_eq!(before["agent"]["lastLoginAt"], json!(null));

    let payload = server.login(" Ada@Example.com ", "agent-password-1").await;
    assert!(payload["accessToken"].as_str().unwrap().len() > 20);
    assert!(payload["refreshToken"].as_str().unwrap().len() > 20);
    assert!(payload["accessTokenExpiresAt"].as_str().is_some());
    assert_eq!(payload["agent"]["email"], "ada@example.com");
    assert_eq!(payload["agent"]["role"], "AGENT");
    assert_eq!(
        payload["agent"]["routingStatus"], "ACCEPTING_CHATS",
        "the first login makes an agent available"
    );

    let token = payload["accessToken"].as_str().unwrap();
    let me = server
        .ok(Some(token), "{ me { id email routingStatus } }", json!({}))
        .await;
    assert_eq!(me["me"]["id"], agent_id);
    assert_eq!(me["me"]["routingStatus"], "ACCEPTING_CHATS");
}

async fn refresh_rotates_and_reuse_revokes_the_whole_session(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let first = server.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let first_refresh = first["refreshToken"].as_str().unwrap();

    let second =
        server.ok(None, REFRESH, json!({"t": first_refresh})).await["refreshToken"].clone();
    assert_eq!(second["agent"]["email"], OWNER_EMAIL);
    let second_access = second["accessToken"].as_str().unwrap().to_owned();
    let second_refresh = second["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    server
        .ok(Some(&second_access), "{ me { email } }", json!({}))
        .await;

    // The spent token comes back: someone copied it. Everything of that session dies.
    let reuse = server.gql(None, REFRESH, json!({"t": first_refresh})).await;
    assert_eq!(error_code(&reuse), "UNAUTHENTICATED");
    assert!(
        reuse["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert_eq!(
        server
            .error_code(None, REFRESH, json!({"t": second_refresh}))
            .await,
        "UNAUTHENTICATED"
    );
    assert_eq!(
        server
            .error_code(Some(&second_access), "{ me { email } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );

    // Other sessions of the same agent are untouched.
    server.owner_token().await;
    assert_eq!(
        server
            .error_code(None, REFRESH, json!({"t": "made-up"}))
            .await,
        "UNAUTHENTICATED"
    );
}

async fn logout_ends_the_session(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let session = server.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let access = session["accessToken"].as_str().unwrap();
    let other = server.owner_token().await;
    assert_eq!(
        server
            .ok(Some(access), "mutation { logout }", json!({}))
            .await["logout"],
        true
    );
    assert_eq!(
        server
            .error_code(Some(access), "{ me { email } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    let refresh = session["refreshToken"].as_str().unwrap();
    assert_eq!(
        server
            .error_code(None, REFRESH, json!({"t": refresh}))
            .await,
        "UNAUTHENTICATED"
    );
    server.ok(Some(&other), "{ me { email } }", json!({})).await;
}

async fn deactivated_agents_are_signed_out_and_cannot_sign_in(backend: Backend) {
    let server = TestServer::start_with(backend, |_| {}).await;
    let owner = server.owner_token().await;
    let agent_id = server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    let agent = server.agent_token("ada@example.com").await;
    let deactivated = server
        .ok(
            Some(&owner),
            "mutation($id: ID!) { deactivateAgent(id: $id) { isActive routingStatus } }",
            json!({"id": agent_id}),
        )
        .await;
    assert_eq!(
        deactivated["deactivateAgent"],
        json!({"isActive": false, "routingStatus": "OFFLINE"})
    );
    assert_eq!(
        server
            .error_code(Some(&agent), "{ me { email } }", json!({}))
            .await,
        "UNAUTHENTICATED"
    );
    let again = server
        .gql(
            None,
            LOGIN,
            json!({"e": "ada@example.com", "p": "agent-password-1"}),
        )
        .await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let server = TestServer::start().await;
    let unknown = server
        .gql(
            None,
            LOGIN,
            json!({"e": "nobody@example.com", "p": "whatever-1"}),
        )
        .await;
    let wrong = server
        .gql(
            None,
            LOGIN,
            json!({"e": OWNER_EMAIL, "p": "wrong-password"}),
        )
        .await;
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    assert_eq!(
        unknown["errors"][0]["message"],
        wrong["errors"][0]["message"]
    );
    assert_eq!(
        unknown["errors"][0]["extensions"],
        wrong["errors"][0]["extensions"]
    );
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_account() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.login_failures_per_account = 3).await;
    let owner = server.owner_token().await;
    server
        .create_agent(&owner, "ada@example.com", "AGENT")
        .await;
    for _ in 0..3 {
        let body = server
            .gql(
                None,
                LOGIN,
                json!({"e": OWNER_EMAIL, "p": "wrong-password"}),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    // Even the right password is refused now, so guessing gains nothing.
    let body = server
        .gql(None, LOGIN, json!({"e": OWNER_EMAIL, "p": OWNER_PASSWORD}))
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
    assert!(
        body["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Other accounts are not affected.
    server.agent_token("ada@example.com").await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_client_address() {
    let server =
        TestServer::start_with(Backend::Sqlite, |c| c.login_failures_per_address = 3).await;
    for n in 0..3 {
        let body = server
            .gql(
                None,
                LOGIN,
                json!({"e": format!("guess{n}@example.com"), "p": "whatever-1"}),
            )
            .await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED");
    }
    let body = server
        .gql(None, LOGIN, json!({"e": OWNER_EMAIL, "p": OWNER_PASSWORD}))
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED");
}

#[tokio::test]
async fn an_expired_access_token_asks_for_a_refresh() {
    let server = TestServer::start_with(Backend::Sqlite, |c| {
        c.access_token_ttl = Duration::from_secs(1);
    })
    .await;
    let session = server.login(OWNER_EMAIL, OWNER_PASSWORD).await;
    let access = session["accessToken"].as_str().unwrap();
    server.ok(Some(access), "{ me { email } }", json!({})).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let body = server
        .gql(Some(access), "{ me { email } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    let refreshed = server
        .ok(None, REFRESH, json!({"t": session["refreshToken"]}))
        .await;
    let access = refreshed["refreshToken"]["accessToken"].as_str().unwrap();
    server.ok(Some(access), "{ me { email } }", json!({})).await;
}

#[tokio::test]
async fn a_malformed_authorization_header_is_explained() {
    let server = TestServer::start().await;
    let response = server
        .http
        .post(&server.graphql_url)
        .header("Authorization", "Token abc")
        .json(&json!({"query": "{ me { email } }"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );
}

const SIGN_UP: &str = "mutation($input: SignUpInput!) { signUp(input: $input) { accessToken agent { email role routingStatus } } }";

#[tokio::test]
async fn sign_up_is_refused_unless_allowed() {
    let server = TestServer::start().await;
    let input = json!({"input": {"organizationName": "Acme", "name": "Wile", "email": "wile@acme.test", "password": "acme-password"}});
    assert_eq!(server.error_code(None, SIGN_UP, input).await, "FORBIDDEN");
}

#[tokio::test]
async fn sign_up_creates_an_organization_and_its_owner() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.allow_signup = true).await;
    let input = json!({"input": {"organizationName": "Acme", "name": "Wile", "email": "wile@acme.test", "password": "acme-password"}});
    let data = server.ok(None, SIGN_UP, input.clone()).await;
    assert_eq!(data["signUp"]["agent"]["role"], "OWNER");
    assert_eq!(data["signUp"]["agent"]["routingStatus"], "ACCEPTING_CHATS");
    let token = data["signUp"]["accessToken"].as_str().unwrap();
    let org = server
        .ok(
            Some(token),
            "{ organization { name widgetKey } }",
            json!({}),
        )
        .await;
    assert_eq!(org["organization"]["name"], "Acme");
    assert!(
        org["organization"]["widgetKey"]
            .as_str()
            .unwrap()
            .starts_with("wk_")
    );
    // The same email again is another company's owner: sign-up says nothing of accounts
    // elsewhere. Each password signs in to its own organization.
    let again = json!({"input": {"organizationName": "Other", "name": "Wile", "email": "wile@acme.test", "password": "other-password"}});
    let other = server.ok(None, SIGN_UP, again).await;
    let other_token = other["signUp"]["accessToken"].as_str().unwrap();
    assert_eq!(organization(&server, other_token).await["name"], "Other");
    let acme = server.login("wile@acme.test", "acme-password").await;
    assert_eq!(
        organization(&server, acme["accessToken"].as_str().unwrap()).await["name"],
        "Acme"
    );
    let other = server.login("wile@acme.test", "other-password").await;
    assert_eq!(
        organization(&server, other["accessToken"].as_str().unwrap()).await["name"],
        "Other"
    );
}

/// The organization a token signs in to.
async fn organization(server: &TestServer, token: &str) -> serde_json::Value {
    server
        .ok(Some(token), "{ organization { id name } }", json!({}))
        .await["organization"]
        .clone()
}

#[tokio::test]
async fn an_email_used_in_another_organization_is_neither_revealed_nor_refused() {
    let server = TestServer::start_with(Backend::Sqlite, |c| c.allow_signup = true).await;
    let owner = server.owner_token().await;
    let acme = server
        .ok(
            None,
            SIGN_UP,
            json!({"input": {"organizationName": "Acme", "name": "Wile", "email": "wile@acme.test", "password": "acme-password"}}),
        )
        .await;
    let acme_owner = acme["signUp"]["accessToken"].as_str().unwrap();
    // Creating an agent whose email Acme uses answers as for an unknown email.
    let create = "mutation($e: String!) { createAgent(input: {email: $e, name: \"W\", password: \"agent-password-1\", role: AGENT}) { email } }";
    let taken_elsewhere = server
        .ok(Some(&owner), create, json!({"e": "wile@acme.test"}))
        .await;
    let unknown = server
        .ok(Some(&owner), create, json!({"e": "nobody@acme.test"}))
        .await;
    assert_eq!(taken_elsewhere["createAgent"]["email"], "wile@acme.test");
    assert_eq!(unknown["createAgent"]["email"], "nobody@acme.test");
    // Within one organization an email is still unique.
    assert_eq!(
        server
            .error_code(Some(acme_owner), create, json!({"e": "wile@acme.test"}))
            .await,
        "CONFLICT"
    );
    // Both Wiles sign in to their own organization; organizationId picks one explicitly.
    let mine = server.login("wile@acme.test", "agent-password-1").await;
    let my_org = organization(&server, mine["accessToken"].as_str().unwrap()).await;
    assert_eq!(my_org["name"], "My Company");
    let acme_org = organization(&server, acme_owner).await["id"].clone();
    let wrong_org = server
        .gql(
            None,
            "mutation($o: ID!) { login(input: {email: \"wile@acme.test\", password: \"agent-password-1\", organizationId: $o}) { accessToken } }",
            json!({"o": acme_org}),
        )
        .await;
    assert_eq!(error_code(&wrong_org), "UNAUTHENTICATED");
}

#[tokio::test]
async fn change_password_checks_the_current_one() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    const CHANGE: &str = "mutation($c: String!, $n: String!) { changePassword(input: {currentPassword: $c, newPassword: $n}) }";
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                CHANGE,
                json!({"c": "wrong-password", "n": "brand-new-pass"})
            )
            .await,
        "BAD_USER_INPUT"
    );
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                CHANGE,
                json!({"c": OWNER_PASSWORD, "n": "short"})
            )
            .await,
        "BAD_USER_INPUT"
    );
    server
        .ok(
            Some(&owner),
            CHANGE,
            json!({"c": OWNER_PASSWORD, "n": "brand-new-pass"}),
        )
        .await;
    server.login(OWNER_EMAIL, "brand-new-pass").await;
}
