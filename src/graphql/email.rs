//! Offline messages by email: agents answer an offline message (`replyToOfflineMessage`) and
//! the answer is emailed to the customer; admins choose where new offline messages are emailed
//! (`offlineEmailSettings`, `setOfflineMessageEmail`). A message's replies are
//! `OfflineMessage.replies`, in the chats module. Needs an SMTP server (SWITCHBOARD_SMTP_HOST):
//! without one, replies are EMAIL_NOT_CONFIGURED.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::chats::OfflineMessage;
use crate::graphql::{ApiResult, ContextExt};
use crate::services::chats::OfflineEmailSettings as Settings;

/// How far an email got.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::EmailDelivery")]
pub enum EmailDelivery {
    /// Waiting to be sent, or to be tried again after a passing failure.
    Queued,
    /// The SMTP server accepted it.
    Sent,
    /// Given up: the server refused it, or it kept failing (`deliveryError` says why).
    Failed,
}

/// An agent's answer to an offline message, emailed to the customer.
pub struct OfflineMessageReply(pub domain::OfflineReply);

#[Object]
impl OfflineMessageReply {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// What the agent wrote.
    async fn text(&self) -> &str {
        &self.0.text
    }

    /// The agent who replied.
    async fn agent_id(&self) -> ID {
        ID(self.0.agent_id.clone())
    }

    /// The agent's name when they replied, as the customer read it.
    async fn agent_name(&self) -> &str {
        &self.0.agent_name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// How far the email to the customer got.
    async fn delivery(&self) -> EmailDelivery {
        self.0.delivery.into()
    }

    /// Why the email failed, or last failed while it is tried again.
    async fn delivery_error(&self) -> Option<&str> {
        self.0.delivery_error.as_deref()
    }
}

/// Where new offline messages are emailed.
pub struct OfflineEmailSettings(pub Settings);

#[Object]
impl OfflineEmailSettings {
    /// Whether the server can send email (SWITCHBOARD_SMTP_HOST): without it no offline
    /// message is emailed and replies are EMAIL_NOT_CONFIGURED.
    async fn smtp_configured(&self) -> bool {
        self.0.smtp_configured
    }

    /// The one address new offline messages are emailed to; null: each to the agents of the
    /// message's group (every agent, for a message to no group).
    async fn offline_message_email(&self) -> Option<&str> {
        self.0.offline_message_email.as_deref()
    }
}

/// Offline-email settings.
#[derive(Default)]
pub struct EmailQuery;

#[Object]
impl EmailQuery {
    /// Where new offline messages are emailed. Admins and owners.
    async fn offline_email_settings(&self, ctx: &Context<'_>) -> ApiResult<OfflineEmailSettings> {
        let principal = ctx.principal()?;
        Ok(OfflineEmailSettings(
            ctx.services()
                .chats
                .offline_email_settings(principal)
                .await?,
        ))
    }
}

/// Answering offline messages by email, and where they are emailed.
#[derive(Default)]
pub struct EmailMutation;

#[Object]
impl EmailMutation {
    /// Answers an offline message you may read (one `offlineMessages` lists): the answer
    /// (1 to 4000 characters) is emailed to the customer from the organization, kept in the
    /// message's `replies`, and the message becomes handled. EMAIL_NOT_CONFIGURED without an
    /// SMTP server.
    async fn reply_to_offline_message(
        &self,
        ctx: &Context<'_>,
        offline_message_id: ID,
        text: String,
    ) -> ApiResult<OfflineMessage> {
        let principal = ctx.principal()?;
        Ok(OfflineMessage(
            ctx.services()
                .chats
                .reply_to_offline_message(principal, &offline_message_id, &text)
                .await?,
        ))
    }

    /// Emails new offline messages to `email` instead of the agents' own addresses; null or
    /// empty goes back to the agents. Admins and owners.
    async fn set_offline_message_email(
        &self,
        ctx: &Context<'_>,
        email: Option<String>,
    ) -> ApiResult<OfflineEmailSettings> {
        let principal = ctx.principal()?;
        Ok(OfflineEmailSettings(
            ctx.services()
                .chats
                .set_offline_message_email(principal, email.as_deref())
                .await?,
        ))
    }
}
