//! Offline messages by email, when an SMTP server is configured:
//!
//! - an in-transaction subscriber of the domain events: a new offline message is emailed to
//!   the agents it was left for (or to the address the organization chose instead), as email
//!   outbox rows written in the message's transaction;
//! - the reply use case: an agent answers an offline message, the answer is kept with the
//!   message, the message is handled, and the answer is emailed to the customer;
//! - the organization's choice of address.
//!
//! Emails are rendered here, in the organization's language, and sent by the outbox
//! ([`crate::outbox::email`]).

use std::sync::Arc;

use tokio::sync::Notify;

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use super::{ChatService, message_text};
use crate::domain::{
    self, EmailContext, EmailDelivery, OfflineMessage, OfflineReply, Wording, normalize_email,
};
use crate::error::{Error, Result};
use crate::services::auth::Principal;

/// What emailing offline messages needs; a chat service has one when SMTP is configured.
#[derive(Debug)]
pub struct OfflineEmail {
    /// The domain Message-IDs are made in: the configured sender's.
    pub domain: String,
    /// The agent app's address, linked from notifications.
    pub app_url: Option<String>,
    /// Rings the email worker when a change queued emails.
    pub wake: Arc<Notify>,
}

/// An organization's offline-email settings, as admins see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineEmailSettings {
    /// Whether this server can send email at all (SWITCHBOARD_SMTP_HOST).
    pub smtp_configured: bool,
    /// Where new offline messages go instead of the agents' own addresses.
    pub offline_message_email: Option<String>,
}

/// Emails a new offline message to whoever should hear of it, in the message's transaction.
pub(super) async fn react(work: &mut UnitOfWork, event: &DomainEvent) -> Result<()> {
    let DomainEvent::OfflineMessageLeft {
        message,
        recipients,
    } = event
    else {
        return Ok(());
    };
    let Some(email) = work.offline_email.clone() else {
        return Ok(());
    };
    let organization_id = work.org.id.clone();
    let addresses = match work.tx.offline_message_email(&organization_id).await? {
        Some(address) => vec![address],
        None => {
            let mut addresses = Vec::new();
            for agent_id in recipients {
                let agent = work.tx.agent(&organization_id, agent_id).await?;
                if agent.active && !addresses.contains(&agent.email) {
                    addresses.push(agent.email);
                }
            }
            addresses
        }
    };
    if addresses.is_empty() {
        return Ok(());
    }
    let locale = work.tx.transcript_locale(&organization_id).await?;
    let organization = work.org.name.clone();
    let context = EmailContext {
        organization: &organization,
        locale: &locale,
        domain: &email.domain,
        app_url: email.app_url.as_deref(),
        now: work.now,
    };
    for address in addresses {
        let job = context.notification(message, &address);
        work.tx.insert_email_job(&job).await?;
    }
    work.emails_queued = true;
    Ok(())
}

impl ChatService {
    /// Lets this service email offline messages and replies.
    pub fn with_offline_email(mut self, email: OfflineEmail) -> Self {
        self.offline_email = Some(Arc::new(email));
        self
    }

    /// An agent who may read the offline message answers it: the answer is kept with the
    /// message, the message becomes handled, and the answer is emailed to the customer.
    pub async fn reply_to_offline_message(
        &self,
        principal: &Principal,
        offline_message_id: &str,
        text: &str,
    ) -> Result<OfflineMessage> {
        let message = self.offline_message(principal, offline_message_id).await?;
        let text = message_text(text)?;
        let Some(email) = &self.offline_email else {
            return Err(Error::EmailNotConfigured(
                Wording::EmailNotConfigured.text(),
            ));
        };
        if message.email.trim().is_empty() {
            return Err(Error::BadUserInput(
                "the offline message has no email address to reply to".into(),
            ));
        }
        let organization_id = principal.organization_id();
        let organization = self.store.organization(organization_id).await?;
        let locale = self.store.widget_settings(organization_id).await?.locale;
        let context = EmailContext {
            organization: &organization.name,
            locale: &locale,
            domain: &email.domain,
            app_url: email.app_url.as_deref(),
            now: domain::now(),
        };
        let job = context.reply(&message, &principal.agent.name, &text);
        let reply = OfflineReply {
            id: domain::new_id(),
            organization_id: organization_id.to_owned(),
            offline_message_id: message.id.clone(),
            agent_id: principal.agent.id.clone(),
            agent_name: principal.agent.name.clone(),
            text,
            email_job_id: job.id.clone(),
            created_at: context.now,
            delivery: EmailDelivery::Queued,
            delivery_error: None,
        };
        self.store
            .insert_offline_reply(&reply, &job)
            .await
            .map_err(|err| super::not_found(err, "offline message"))?;
        email.wake.notify_one();
        Ok(OfflineMessage {
            handled: true,
            ..message
        })
    }

    /// The replies to an offline message the agent may read, oldest first.
    pub async fn offline_message_replies(
        &self,
        principal: &Principal,
        offline_message_id: &str,
    ) -> Result<Vec<OfflineReply>> {
        Ok(self
            .store
            .offline_replies(principal.organization_id(), offline_message_id)
            .await?)
    }

    /// The organization's offline-email settings: admins only.
    pub async fn offline_email_settings(
        &self,
        principal: &Principal,
    ) -> Result<OfflineEmailSettings> {
        if !principal.role().is_admin() {
            return Err(Error::forbidden("see the email settings"));
        }
        Ok(OfflineEmailSettings {
            smtp_configured: self.offline_email.is_some(),
            offline_message_email: self
                .store
                .offline_message_email(principal.organization_id())
                .await?,
        })
    }

    /// Chooses the address new offline messages are emailed to instead of the agents' own;
    /// `None` or an empty text goes back to the agents. Admins only.
    pub async fn set_offline_message_email(
        &self,
        principal: &Principal,
        email: Option<&str>,
    ) -> Result<OfflineEmailSettings> {
        if !principal.role().is_admin() {
            return Err(Error::forbidden("change the email settings"));
        }
        let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
            Some(email) => Some(normalize_email(email)?),
            None => None,
        };
        self.store
            .set_offline_message_email(principal.organization_id(), email.as_deref())
            .await?;
        self.offline_email_settings(principal).await
    }
}
