//! Emails, an outbox kind: [`EmailJobs`] sends the rendered emails of `email_jobs` (new
//! offline messages told to agents, agents' replies to customers) through the configured SMTP
//! server with lettre. What goes out is decided and rendered by the use cases, in the
//! transaction of the change that causes it; claiming, retries and shutdown are the
//! [`outbox` engine](crate::outbox::Worker)'s.
//!
//! SMTP: <https://www.rfc-editor.org/rfc/rfc5321> (replies 4xx are transient, 5xx permanent);
//! the headers: <https://www.rfc-editor.org/rfc/rfc5322> (Message-ID, In-Reply-To, References).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpConfig, SmtpTls};
use crate::domain::{EmailJob, EmailJobStatus};
use crate::outbox::{Fate, Job, JobKind, Outcome};
use crate::store::{Database, DbResult};

/// Reads the configured sender (`Name <address>` or a bare address).
pub fn parse_sender(text: &str) -> Result<Mailbox, String> {
    text.trim().parse::<Mailbox>().map_err(|err| {
        format!("{text:?} is not an email address such as Support <support@example.com> ({err})")
    })
}

/// The configured SMTP server and sender.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    sender: Mailbox,
}

impl SmtpSender {
    /// A sender for `config`; `None` when no SMTP host is configured.
    pub fn from_config(config: &SmtpConfig) -> Result<Option<SmtpSender>, String> {
        let Some(host) = config.smtp_host.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let sender = parse_sender(config.smtp_from.as_deref().unwrap_or_default())
            .map_err(|err| format!("SWITCHBOARD_SMTP_FROM: {err}"))?;
        let builder = match config.smtp_tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|err| format!("SWITCHBOARD_SMTP_HOST: {err}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                .map_err(|err| format!("SWITCHBOARD_SMTP_HOST: {err}"))?,
        };
        let mut builder = builder
            .port(config.port())
            .timeout(Some(config.smtp_timeout));
        if let (Some(user), Some(password)) = (&config.smtp_username, &config.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(SmtpSender {
            transport: builder.build(),
            sender,
        }))
    }

    /// The domain Message-IDs are made in: the sender's.
    pub fn domain(&self) -> String {
        self.sender.email.domain().to_owned()
    }

    /// Sends one email: what the SMTP server said, as an outbox outcome.
    pub async fn send(&self, job: &EmailJob) -> Outcome<()> {
        let message = match build_message(&self.sender, job) {
            Ok(message) => message,
            Err(reason) => return Outcome::Failed { reason },
        };
        match self.transport.send(message).await {
            Ok(_) => Outcome::Done(()),
            Err(err) => classify(&err),
        }
    }
}

/// A transient failure (a 4xx answer, no connection, a timeout) is tried again; a permanent
/// one (5xx: no such mailbox, relaying refused) never goes through.
fn classify(err: &lettre::transport::smtp::Error) -> Outcome<()> {
    let reason = format!("SMTP: {err}");
    if err.is_permanent() {
        Outcome::Failed { reason }
    } else {
        Outcome::Retry {
            after: None,
            reason,
        }
    }
}

/// The email `job` stands for, from `sender` (under the job's display name when it has one).
pub fn build_message(sender: &Mailbox, job: &EmailJob) -> Result<Message, String> {
    let from = match &job.from_name {
        Some(name) => Mailbox::new(Some(name.clone()), sender.email.clone()),
        None => sender.clone(),
    };
    let to: Mailbox = job
        .to_address
        .parse()
        .map_err(|err| format!("the address {:?} is unusable: {err}", job.to_address))?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(job.subject.clone())
        .message_id(Some(job.message_id.clone()))
        .header(ContentType::TEXT_PLAIN);
    if let Some(reply_to) = &job.reply_to {
        let reply_to: Mailbox = reply_to
            .parse()
            .map_err(|err| format!("the reply address {reply_to:?} is unusable: {err}"))?;
        builder = builder.reply_to(reply_to);
    }
    if let Some(in_reply_to) = &job.in_reply_to {
        builder = builder
            .in_reply_to(in_reply_to.clone())
            .references(in_reply_to.clone());
    }
    builder
        .body(job.body.clone())
        .map_err(|err| format!("the email cannot be built: {err}"))
}

/// A claimed email job.
pub struct ClaimedEmail(pub EmailJob);

impl Job for ClaimedEmail {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn attempts(&self) -> i32 {
        self.0.attempts
    }
}

/// The email kind of outbox job: the `email_jobs` table, sent through [`SmtpSender`].
pub struct EmailJobs {
    pub store: Arc<dyn Database>,
    pub sender: Arc<SmtpSender>,
}

#[async_trait]
impl JobKind for EmailJobs {
    type Job = ClaimedEmail;
    type Done = ();
    const NAME: &'static str = "email";

    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        self.store.next_email_due().await
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<ClaimedEmail>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let jobs = self
            .store
            .claim_email_jobs(now, locked_until, limit)
            .await?;
        Ok(jobs.into_iter().map(ClaimedEmail).collect())
    }

    async fn deliver(&self, job: &ClaimedEmail) -> Outcome<()> {
        let outcome = self.sender.send(&job.0).await;
        if let Outcome::Retry { reason, .. } | Outcome::Failed { reason } = &outcome {
            tracing::info!(email = %job.0.id, %reason, "an email did not go out");
        }
        outcome
    }

    async fn finish(&self, job: &ClaimedEmail, fate: &Fate<()>, at: DateTime<Utc>) -> DbResult<()> {
        let (status, next_attempt_at, error) = match fate {
            Fate::Done(()) => (EmailJobStatus::Sent, at, None),
            Fate::Retry { at: next, reason } => (EmailJobStatus::Pending, *next, Some(reason)),
            Fate::Dead { reason } => (EmailJobStatus::Dead, at, Some(reason)),
        };
        self.store
            .finish_email_job(
                &job.0.id,
                status,
                next_attempt_at,
                error.map(String::as_str),
                at,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailContext, OfflineMessage};

    fn message() -> OfflineMessage {
        OfflineMessage {
            id: "m1".into(),
            organization_id: "o1".into(),
            customer_id: None,
            group_id: None,
            name: "Vera Müller".into(),
            email: "vera@customer.test".into(),
            text: "Call me back".into(),
            handled: false,
            created_at: crate::domain::now(),
        }
    }

    fn context() -> EmailContext<'static> {
        EmailContext {
            organization: "Acme GmbH",
            locale: "en",
            domain: "acme.test",
            app_url: None,
            now: crate::domain::now(),
        }
    }

    fn formatted(job: &EmailJob) -> String {
        let sender = parse_sender("Support <support@acme.test>").unwrap();
        String::from_utf8(build_message(&sender, job).unwrap().formatted()).unwrap()
    }

    #[test]
    fn a_notification_comes_from_the_sender_and_replies_go_to_the_customer() {
        let text = formatted(&context().notification(&message(), "ana@acme.test"));
        assert!(text.contains("From: Support <support@acme.test>"), "{text}");
        assert!(text.contains("To: ana@acme.test"), "{text}");
        assert!(text.contains("Reply-To: vera@customer.test"), "{text}");
        assert!(
            text.contains("In-Reply-To: <offline-m1@acme.test>"),
            "{text}"
        );
        assert!(
            text.contains("Content-Type: text/plain; charset=utf-8"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <"), "{text}");
    }

    #[test]
    fn a_reply_comes_from_the_organization_in_the_thread() {
        let job = context().reply(&message(), "Ana", "We will call you today.");
        let text = formatted(&job);
        assert!(
            text.contains("From: \"Acme GmbH\" <support@acme.test>")
                || text.contains("From: Acme GmbH <support@acme.test>"),
            "{text}"
        );
        assert!(text.contains("To: vera@customer.test"), "{text}");
        assert!(
            text.contains("Subject: Re: Your message to Acme GmbH"),
            "{text}"
        );
        assert!(
            text.contains("In-Reply-To: <offline-m1@acme.test>"),
            "{text}"
        );
        assert!(
            text.contains("References: <offline-m1@acme.test>"),
            "{text}"
        );
        assert!(
            text.contains(&format!("Message-ID: {}", job.message_id)),
            "{text}"
        );
        assert!(
            !text.lines().any(|line| line.starts_with("Reply-To:")),
            "{text}"
        );
    }

    #[test]
    fn an_unusable_address_fails_for_good() {
        let mut job = context().notification(&message(), "ana@acme.test");
        job.to_address = "not an address".into();
        let sender = parse_sender("support@acme.test").unwrap();
        assert!(
            build_message(&sender, &job)
                .unwrap_err()
                .contains("unusable")
        );
    }

    #[test]
    fn the_sender_must_be_an_address() {
        assert!(parse_sender("Support <support@acme.test>").is_ok());
        assert!(parse_sender("nobody").is_err());
    }
}
