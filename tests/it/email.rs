//! Offline messages by email, end to end: the server sends through lettre to an SMTP server
//! started here (aiosmtpd, tests/tools/smtp_sink.py) on a free 127.0.0.1 port, and the tests
//! read what arrived. The Python comes from SWITCHBOARD_TEST_PYTHON (CI installs
//! tests/tools/requirements.txt and sets it, so there a missing aiosmtpd fails the run);
//! without it the suite is skipped with a note.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::config::SmtpTls;
use switchboard::domain::EmailJobStatus;

use crate::on_both_backends;
use crate::support::{Backend, TestServer, visitor, widget_key};

const PYTHON_VAR: &str = "SWITCHBOARD_TEST_PYTHON";
const SENDER: &str = "Support <support@acme.test>";

/// The Python that runs the sink, or `None` (skipped) when none is configured.
fn python() -> Option<String> {
    match std::env::var(PYTHON_VAR) {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            eprintln!(
                "skipped: install tests/tools/requirements.txt into a venv and set {PYTHON_VAR} \
                 to its python to run the email suite"
            );
            None
        }
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One email as the sink received it, decoded.
#[derive(Debug, Clone)]
struct Mail {
    rcpt_tos: Vec<String>,
    headers: serde_json::Map<String, Value>,
    body: String,
}

impl Mail {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_str())
            .unwrap_or_default()
            .to_owned()
    }

    fn to(&self) -> String {
        self.rcpt_tos.join(",")
    }
}

/// The SMTP server, stopped when this goes.
struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// Starts the sink on `port`, refusing mail to `rejected` with a 550.
    async fn start(python: &str, port: u16, rejected: &[&str]) -> SmtpSink {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tools/smtp_sink.py");
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new(python);
        command
            .arg(&script)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path());
        for address in rejected {
            command.args(["--reject", address]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("{PYTHON_VAR}={python} does not start: {err}"));
        let sink = SmtpSink { child, dir, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the SMTP sink did not listen on {port} within 10 s (is aiosmtpd installed?)");
    }

    /// Every email received so far, in order.
    fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|path| {
                let record: Value =
                    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
                Mail {
                    rcpt_tos: record["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect(),
                    headers: record["headers"].as_object().unwrap().clone(),
                    body: record["body"].as_str().unwrap().replace("\r\n", "\n"),
                }
            })
            .collect()
    }

    /// Waits until `count` emails arrived; all of them.
    async fn wait_for(&self, count: usize) -> Vec<Mail> {
        for _ in 0..300 {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{count} emails did not arrive within 30 s; got {:?}",
            self.mails()
        );
    }
}

/// A server that sends through the SMTP server on `port`.
async fn server_with_smtp(backend: Backend, port: u16) -> TestServer {
    TestServer::start_with(backend, |c| {
        c.smtp.smtp_host = Some("127.0.0.1".into());
        c.smtp.smtp_port = Some(port);
        c.smtp.smtp_tls = SmtpTls::None;
        c.smtp.smtp_from = Some(SENDER.into());
        c.smtp.smtp_timeout = Duration::from_secs(5);
        c.smtp.smtp_app_url = Some("https://chat.acme.test/app".into());
        c.allow_signup = true;
    })
    .await
}

const LEAVE: &str = "mutation($group: ID) { leaveOfflineMessage(input: {name: \"Vera\",
    email: \"vera@customer.test\", text: \"Please call me back about my order\", groupId: $group}) { id } }";

const REPLY: &str = "mutation($id: ID!, $text: String!) { replyToOfflineMessage(offlineMessageId: $id, text: $text) {
    id handled replies { text agentName delivery deliveryError createdAt } } }";

const MESSAGES: &str =
    "{ offlineMessages { id handled replies { text agentName delivery deliveryError } } }";

/// A customer leaves an offline message (for `group`, if any); its id.
async fn leave_message(server: &TestServer, owner: &str, group: Option<&str>) -> String {
    let key = widget_key(server, owner).await;
    let customer = visitor(server, &key, &format!("v{}", free_port())).await;
    server
        .ok(Some(&customer), LEAVE, json!({"group": group}))
        .await["leaveOfflineMessage"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The offline message `id` as `token` lists it.
async fn listed(server: &TestServer, token: &str, id: &str) -> Value {
    let data = server.ok(Some(token), MESSAGES, json!({})).await;
    data["offlineMessages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} is not listed: {data}"))
}

async fn emailed_to_the_groups_agents_and_answered_by_email(backend: Backend) {
    let Some(python) = python() else { return };
    let sink = SmtpSink::start(&python, free_port(), &[]).await;
    let server = server_with_smtp(backend, sink.port).await;
    let owner = server.owner_token().await;
    let sales = server.create_group(&owner, "Sales").await;
    let support = server.create_group(&owner, "Support").await;
    for (email, group) in [("sam@acme.test", &sales), ("sue@acme.test", &support)] {
        server
            .ok(
                Some(&owner),
                "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
                json!({"input": {"email": email, "name": email.split('@').next(), "password": "agent-password-1", "groupIds": [group]}}),
            )
            .await;
    }

    let id = leave_message(&server, &owner, Some(&sales)).await;
    // Sales' agent and the owner (admins read every group's messages); not Support's.
    let mails = sink.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.mails().len(), 2, "nobody else is told");
    let mut to: Vec<String> = mails.iter().map(Mail::to).collect();
    to.sort();
    assert_eq!(to, ["owner@example.com", "sam@acme.test"]);
    let mail = &mails[0];
    assert_eq!(mail.header("Subject"), "Offline message from Vera");
    assert_eq!(mail.header("From"), SENDER);
    assert_eq!(mail.header("Reply-To"), "vera@customer.test");
    assert!(
        mail.header("Message-ID").ends_with("@acme.test>"),
        "{mail:?}"
    );
    assert!(mail.body.contains("Vera (vera@customer.test)"), "{mail:?}");
    assert!(
        mail.body.contains("Please call me back about my order"),
        "{mail:?}"
    );
    assert!(
        mail.body.contains("https://chat.acme.test/app#/offline"),
        "{mail:?}"
    );

    // Sam answers from the API.
    let sam = server.agent_token("sam@acme.test").await;
    let replied = server
        .ok(
            Some(&sam),
            REPLY,
            json!({"id": id, "text": "  We will call you today.\nSam  "}),
        )
        .await["replyToOfflineMessage"]
        .clone();
    assert_eq!(replied["id"], id);
    assert_eq!(replied["handled"], true);
    assert_eq!(
        replied["replies"][0]["text"],
        "We will call you today.\nSam"
    );
    assert_eq!(replied["replies"][0]["agentName"], "sam");

    let mails = sink.wait_for(3).await;
    let reply = &mails[2];
    assert_eq!(reply.to(), "vera@customer.test");
    assert_eq!(reply.header("From"), "My Company <support@acme.test>");
    assert_eq!(reply.header("Subject"), "Re: Your message to My Company");
    let thread = format!("<offline-{id}@acme.test>");
    assert_eq!(reply.header("In-Reply-To"), thread);
    assert_eq!(reply.header("References"), thread);
    assert_eq!(mails[0].header("In-Reply-To"), thread, "one thread");
    assert!(
        reply.body.starts_with("We will call you today.\nSam"),
        "{reply:?}"
    );
    assert!(reply.body.contains("sam, My Company"), "{reply:?}");
    assert!(
        reply.body.contains("> Please call me back about my order"),
        "{reply:?}"
    );

    // Kept with the message, handled, and shown as sent once the server said so.
    let mut message = listed(&server, &owner, &id).await;
    for _ in 0..50 {
        if message["replies"][0]["delivery"] == "SENT" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        message = listed(&server, &owner, &id).await;
    }
    assert_eq!(message["handled"], true);
    assert_eq!(message["replies"][0]["delivery"], "SENT", "{message}");
    assert_eq!(message["replies"][0]["deliveryError"], Value::Null);
    assert_eq!(message["replies"].as_array().unwrap().len(), 1);
}

async fn the_organizations_address_gets_offline_messages_instead(backend: Backend) {
    let Some(python) = python() else { return };
    let sink = SmtpSink::start(&python, free_port(), &[]).await;
    let server = server_with_smtp(backend, sink.port).await;
    let owner = server.owner_token().await;
    server.create_agent(&owner, "al@acme.test", "AGENT").await;
    let agent = server.agent_token("al@acme.test").await;
    const SET: &str = "mutation($e: String) { setOfflineMessageEmail(email: $e) { smtpConfigured offlineMessageEmail } }";

    let settings = server
        .ok(
            Some(&owner),
            "{ offlineEmailSettings { smtpConfigured offlineMessageEmail } }",
            json!({}),
        )
        .await;
    assert_eq!(settings["offlineEmailSettings"]["smtpConfigured"], true);
    assert_eq!(
        settings["offlineEmailSettings"]["offlineMessageEmail"],
        Value::Null
    );
    assert_eq!(
        server
            .error_code(Some(&agent), SET, json!({"e": "desk@acme.test"}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(
                Some(&agent),
                "{ offlineEmailSettings { smtpConfigured } }",
                json!({})
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .error_code(Some(&owner), SET, json!({"e": "not an address"}))
            .await,
        "BAD_USER_INPUT"
    );
    let set = server
        .ok(Some(&owner), SET, json!({"e": " Desk@Acme.test "}))
        .await;
    assert_eq!(
        set["setOfflineMessageEmail"]["offlineMessageEmail"],
        "desk@acme.test"
    );

    leave_message(&server, &owner, None).await;
    let mails = sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.mails().len(), 1, "only the chosen address: {mails:?}");
    assert_eq!(mails[0].to(), "desk@acme.test");
    assert_eq!(mails[0].header("Reply-To"), "vera@customer.test");

    // Cleared, messages go to the agents again (the owner and Al: a message to no group).
    let cleared = server.ok(Some(&owner), SET, json!({"e": null})).await;
    assert_eq!(
        cleared["setOfflineMessageEmail"]["offlineMessageEmail"],
        Value::Null
    );
    leave_message(&server, &owner, None).await;
    let mails = sink.wait_for(3).await;
    let mut to: Vec<String> = mails[1..].iter().map(Mail::to).collect();
    to.sort();
    assert_eq!(to, ["al@acme.test", "owner@example.com"]);
}

async fn bad_replies_are_refused_with_clear_codes(backend: Backend) {
    let Some(python) = python() else { return };
    let sink = SmtpSink::start(&python, free_port(), &[]).await;
    let server = server_with_smtp(backend.clone(), sink.port).await;
    let owner = server.owner_token().await;
    let sales = server.create_group(&owner, "Sales").await;
    let support = server.create_group(&owner, "Support").await;
    server
        .ok(
            Some(&owner),
            "mutation($input: CreateAgentInput!) { createAgent(input: $input) { id } }",
            json!({"input": {"email": "out@acme.test", "name": "Otto", "password": "agent-password-1", "groupIds": [support]}}),
        )
        .await;
    let outsider = server.agent_token("out@acme.test").await;
    let id = leave_message(&server, &owner, Some(&sales)).await;
    let (rival, _) = server.rival_organization().await;

    for (token, text, code) in [
        (&rival, "hello", "NOT_FOUND"),
        (&outsider, "hello", "NOT_FOUND"),
        (&owner, "   ", "BAD_USER_INPUT"),
        (&owner, &"x".repeat(4001), "BAD_USER_INPUT"),
    ] {
        assert_eq!(
            server
                .error_code(Some(token), REPLY, json!({"id": id, "text": text}))
                .await,
            code,
            "{text:.10}"
        );
    }
    assert_eq!(
        server
            .error_code(
                Some(&owner),
                REPLY,
                json!({"id": "no-such-message", "text": "hi"})
            )
            .await,
        "NOT_FOUND"
    );
    let message = listed(&server, &owner, &id).await;
    assert_eq!(message["handled"], false);
    assert_eq!(message["replies"], json!([]));

    // Without SMTP nothing is emailed and a reply says why.
    let plain = TestServer::start_with(backend, |_| {}).await;
    let owner = plain.owner_token().await;
    let id = leave_message(&plain, &owner, None).await;
    let response = plain
        .gql(Some(&owner), REPLY, json!({"id": id, "text": "hello"}))
        .await;
    assert_eq!(
        response["errors"][0]["extensions"]["code"], "EMAIL_NOT_CONFIGURED",
        "{response}"
    );
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("SWITCHBOARD_SMTP_HOST"),
        "{response}"
    );
    let settings = plain
        .ok(
            Some(&owner),
            "{ offlineEmailSettings { smtpConfigured } }",
            json!({}),
        )
        .await;
    assert_eq!(settings["offlineEmailSettings"]["smtpConfigured"], false);
    let organization = plain
        .ok(Some(&owner), "{ organization { id } }", json!({}))
        .await["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        plain
            .store
            .email_jobs(&organization, &id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(listed(&plain, &owner, &id).await["handled"], false);
}

async fn emails_wait_for_the_smtp_server_and_go_out_once_it_is_up(backend: Backend) {
    let Some(python) = python() else { return };
    let port = free_port();
    let server = server_with_smtp(backend, port).await;
    let owner = server.owner_token().await;
    let organization = server
        .ok(Some(&owner), "{ organization { id } }", json!({}))
        .await["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = leave_message(&server, &owner, None).await;

    // Nobody listens: the attempt fails and the email waits for another.
    let mut jobs = Vec::new();
    for _ in 0..100 {
        jobs = server.store.email_jobs(&organization, &id).await.unwrap();
        if jobs
            .iter()
            .any(|job| job.attempts >= 1 && job.last_error.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].status, EmailJobStatus::Pending, "{jobs:?}");
    assert!(
        jobs[0]
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("SMTP"),
        "{jobs:?}"
    );

    let sink = SmtpSink::start(&python, port, &[]).await;
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to(), "owner@example.com");
    let mut job = server.store.email_jobs(&organization, &id).await.unwrap();
    for _ in 0..50 {
        if job[0].status == EmailJobStatus::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        job = server.store.email_jobs(&organization, &id).await.unwrap();
    }
    assert_eq!(job[0].status, EmailJobStatus::Sent, "{job:?}");
    assert!(job[0].attempts >= 2, "{job:?}");
}

async fn a_refused_reply_is_shown_failed(backend: Backend) {
    let Some(python) = python() else { return };
    let sink = SmtpSink::start(&python, free_port(), &["vera@customer.test"]).await;
    let server = server_with_smtp(backend, sink.port).await;
    let owner = server.owner_token().await;
    let id = leave_message(&server, &owner, None).await;
    sink.wait_for(1).await;
    server
        .ok(Some(&owner), REPLY, json!({"id": id, "text": "Hello Vera"}))
        .await;
    let mut message = listed(&server, &owner, &id).await;
    for _ in 0..100 {
        if message["replies"][0]["delivery"] != "QUEUED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        message = listed(&server, &owner, &id).await;
    }
    // A 5xx is final: not retried.
    assert_eq!(message["replies"][0]["delivery"], "FAILED", "{message}");
    let error = message["replies"][0]["deliveryError"].as_str().unwrap();
    assert!(
        error.contains("550") || error.contains("mailbox"),
        "{error}"
    );
    assert_eq!(message["handled"], true);
    assert_eq!(sink.mails().len(), 1, "the reply never arrived");
}

async fn the_mobile_sdk_answers_an_offline_message_by_email(backend: Backend) {
    use switchboard_sdk::EmailDelivery;
    let Some(python) = python() else { return };
    let sink = SmtpSink::start(&python, free_port(), &[]).await;
    let server = server_with_smtp(backend, sink.port).await;
    let owner = server.owner_token().await;
    let id = leave_message(&server, &owner, None).await;
    sink.wait_for(1).await;
    let signed_in = crate::sdk::Signedin::owner(&server).await;
    let app = &signed_in.app;

    let listed = app.offline_messages().await.unwrap();
    let thread = listed.iter().find(|t| t.message.id == id).unwrap();
    assert_eq!(thread.message.email, "vera@customer.test");
    assert!(!thread.message.handled);
    assert!(thread.replies.is_empty());

    assert_eq!(
        crate::sdk::code(
            app.reply_to_offline_message(id.clone(), "  ".into())
                .await
                .unwrap_err()
        ),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        crate::sdk::code(
            app.reply_to_offline_message("no-such-message".into(), "hi".into())
                .await
                .unwrap_err()
        ),
        "NOT_FOUND"
    );
    let answered = app
        .reply_to_offline_message(id.clone(), "Sent from the phone".into())
        .await
        .unwrap();
    assert!(answered.message.handled);
    assert_eq!(answered.replies.len(), 1);
    assert_eq!(answered.replies[0].text, "Sent from the phone");
    let mails = sink.wait_for(2).await;
    assert_eq!(mails[1].to(), "vera@customer.test");
    assert!(
        mails[1].body.starts_with("Sent from the phone"),
        "{:?}",
        mails[1]
    );
    let mut delivery = EmailDelivery::Queued;
    for _ in 0..50 {
        let listed = app.offline_messages().await.unwrap();
        delivery = listed.iter().find(|t| t.message.id == id).unwrap().replies[0].delivery;
        if delivery == EmailDelivery::Sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivery, EmailDelivery::Sent);
}

on_both_backends!(
    emailed_to_the_groups_agents_and_answered_by_email,
    the_organizations_address_gets_offline_messages_instead,
    bad_replies_are_refused_with_clear_codes,
    emails_wait_for_the_smtp_server_and_go_out_once_it_is_up,
    a_refused_reply_is_shown_failed,
    the_mobile_sdk_answers_an_offline_message_by_email,
);
