//! Offline messages by email: the emails the outbox sends (a new offline message told to
//! agents, an agent's reply to the customer) and the replies kept with a message. Everything
//! here is pure: an email is rendered when it is queued, in the organization's language, and
//! the outbox only sends what was rendered. The words are in `copy`.

use chrono::{DateTime, Utc};

use super::chat::OfflineMessage;
use super::copy::Wording;

string_enum!(
    /// Why an email is sent.
    EmailKind {
        /// A new offline message, to an agent (or the organization's chosen address).
        Notification = "NOTIFICATION",
        /// An agent's reply to an offline message, to the customer.
        Reply = "REPLY",
    }
);

string_enum!(
    /// Where an email job is.
    EmailJobStatus {
        /// Waiting for its time (`next_attempt_at`).
        Pending = "PENDING",
        /// Claimed by a worker until `locked_until`.
        Sending = "SENDING",
        /// Accepted by the SMTP server.
        Sent = "SENT",
        /// Refused for good (a 5xx answer, or too many attempts).
        Dead = "DEAD",
    }
);

string_enum!(
    /// How far an email got, as agents see it.
    EmailDelivery {
        /// Waiting to be sent, or being retried after a passing failure.
        Queued = "QUEUED",
        /// The SMTP server accepted it.
        Sent = "SENT",
        /// Given up: the server refused it, or it kept failing.
        Failed = "FAILED",
    }
);

impl EmailJobStatus {
    /// The delivery state this status means to an agent.
    pub fn delivery(self) -> EmailDelivery {
        match self {
            EmailJobStatus::Pending | EmailJobStatus::Sending => EmailDelivery::Queued,
            EmailJobStatus::Sent => EmailDelivery::Sent,
            EmailJobStatus::Dead => EmailDelivery::Failed,
        }
    }
}

/// An email waiting in the outbox (or done with), rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailJob {
    pub id: String,
    pub organization_id: String,
    pub offline_message_id: String,
    pub kind: EmailKind,
    pub to_address: String,
    /// The sender's display name; `None`: the configured sender's own.
    pub from_name: Option<String>,
    /// Where answers go (the customer, on a notification).
    pub reply_to: Option<String>,
    pub subject: String,
    pub body: String,
    /// The Message-ID header, `<…@…>`.
    pub message_id: String,
    /// The message this one answers (In-Reply-To and References), `<…@…>`.
    pub in_reply_to: Option<String>,
    pub status: EmailJobStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An agent's answer to an offline message, kept with it, and how its email fared.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineReply {
    pub id: String,
    pub organization_id: String,
    pub offline_message_id: String,
    pub agent_id: String,
    /// The agent's name when they replied, as the customer read it.
    pub agent_name: String,
    pub text: String,
    pub email_job_id: String,
    pub created_at: DateTime<Utc>,
    pub delivery: EmailDelivery,
    /// Why the email failed (or last failed, while it is retried).
    pub delivery_error: Option<String>,
}

/// What every email about one organization's offline messages needs to know.
#[derive(Debug, Clone)]
pub struct EmailContext<'a> {
    /// The organization's name: it signs replies and names the sender.
    pub organization: &'a str,
    /// The language emails are written in (the organization's widget's).
    pub locale: &'a str,
    /// The domain Message-IDs are made in: the configured sender's.
    pub domain: &'a str,
    /// The agent app's address, linked from notifications when known.
    pub app_url: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl EmailContext<'_> {
    /// The thread an offline message starts: notifications refer to it and replies answer
    /// it, so a customer's mail client shows every reply as one conversation.
    pub fn thread_id(&self, message: &OfflineMessage) -> String {
        format!("<offline-{}@{}>", message.id, self.domain)
    }

    fn job(&self, message: &OfflineMessage, kind: EmailKind, to_address: &str) -> EmailJob {
        let id = super::new_id();
        EmailJob {
            message_id: format!("<{id}@{}>", self.domain),
            id,
            organization_id: message.organization_id.clone(),
            offline_message_id: message.id.clone(),
            kind,
            to_address: to_address.to_owned(),
            from_name: None,
            reply_to: None,
            subject: String::new(),
            body: String::new(),
            in_reply_to: None,
            status: EmailJobStatus::Pending,
            attempts: 0,
            next_attempt_at: self.now,
            last_error: None,
            created_at: self.now,
        }
    }

    /// Tells `to` (an agent, or the organization's chosen address) of a new offline message;
    /// answers go straight to the customer.
    pub fn notification(&self, message: &OfflineMessage, to: &str) -> EmailJob {
        let link = self
            .app_url
            .map(|url| format!("{}#/offline", url.trim_end_matches('#')));
        EmailJob {
            reply_to: Some(message.email.clone()),
            subject: Wording::OfflineEmailSubject {
                name: message.name.clone(),
            }
            .render(self.locale),
            body: Wording::OfflineEmailBody {
                name: message.name.clone(),
                email: message.email.clone(),
                text: message.text.clone(),
                link,
            }
            .render(self.locale),
            in_reply_to: Some(self.thread_id(message)),
            ..self.job(message, EmailKind::Notification, to)
        }
    }

    /// An agent's answer to the customer, from the organization, in the message's thread.
    pub fn reply(&self, message: &OfflineMessage, agent: &str, text: &str) -> EmailJob {
        EmailJob {
            from_name: Some(self.organization.to_owned()),
            subject: Wording::OfflineReplySubject {
                organization: self.organization.to_owned(),
            }
            .render(self.locale),
            body: Wording::OfflineReplyBody {
                text: text.to_owned(),
                agent: agent.to_owned(),
                organization: self.organization.to_owned(),
                original: message.text.clone(),
            }
            .render(self.locale),
            in_reply_to: Some(self.thread_id(message)),
            ..self.job(message, EmailKind::Reply, &message.email)
        }
    }
}

/// `text` as an email quotes it: each line behind "> ".
pub fn quoted(text: &str) -> String {
    text.lines()
        .map(|line| format!("> {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> OfflineMessage {
        OfflineMessage {
            id: "m1".into(),
            organization_id: "o1".into(),
            customer_id: None,
            group_id: None,
            name: "Vera".into(),
            email: "vera@customer.test".into(),
            text: "Call me back\nplease".into(),
            handled: false,
            created_at: super::super::now(),
        }
    }

    fn context(locale: &str) -> EmailContext<'_> {
        EmailContext {
            organization: "Acme",
            locale,
            domain: "acme.test",
            app_url: Some("https://chat.acme.test/app"),
            now: super::super::now(),
        }
    }

    #[test]
    fn a_notification_names_the_customer_links_the_app_and_replies_to_the_customer() {
        let job = context("en").notification(&message(), "ana@acme.test");
        assert_eq!(job.kind, EmailKind::Notification);
        assert_eq!(job.to_address, "ana@acme.test");
        assert_eq!(job.reply_to.as_deref(), Some("vera@customer.test"));
        assert_eq!(job.subject, "Offline message from Vera");
        assert!(
            job.body.contains("Vera (vera@customer.test)"),
            "{}",
            job.body
        );
        assert!(job.body.contains("Call me back\nplease"), "{}", job.body);
        assert!(job.body.contains("https://chat.acme.test/app#/offline"));
        assert_eq!(job.in_reply_to.as_deref(), Some("<offline-m1@acme.test>"));
        assert!(job.message_id.starts_with('<') && job.message_id.ends_with("@acme.test>"));
        assert_eq!(job.status, EmailJobStatus::Pending);
    }

    #[test]
    fn a_reply_goes_to_the_customer_in_the_thread_and_quotes_the_message() {
        let job = context("de").reply(&message(), "Ana", "Wir rufen an.");
        assert_eq!(job.kind, EmailKind::Reply);
        assert_eq!(job.to_address, "vera@customer.test");
        assert_eq!(job.from_name.as_deref(), Some("Acme"));
        assert_eq!(job.reply_to, None);
        assert_eq!(job.subject, "Re: Ihre Nachricht an Acme");
        assert!(job.body.starts_with("Wir rufen an."), "{}", job.body);
        assert!(
            job.body.contains("> Call me back\n> please"),
            "{}",
            job.body
        );
        assert_eq!(job.in_reply_to.as_deref(), Some("<offline-m1@acme.test>"));
    }

    #[test]
    fn without_an_app_url_a_notification_has_no_link() {
        let mut context = context("en");
        context.app_url = None;
        let job = context.notification(&message(), "ana@acme.test");
        assert!(!job.body.contains("http"), "{}", job.body);
    }

    #[test]
    fn job_states_read_as_deliveries() {
        assert_eq!(EmailJobStatus::Pending.delivery(), EmailDelivery::Queued);
        assert_eq!(EmailJobStatus::Sending.delivery(), EmailDelivery::Queued);
        assert_eq!(EmailJobStatus::Sent.delivery(), EmailDelivery::Sent);
        assert_eq!(EmailJobStatus::Dead.delivery(), EmailDelivery::Failed);
    }
}
