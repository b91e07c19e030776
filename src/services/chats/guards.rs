//! Guards: the per-minute budgets customers draw on, and who may act on a chat.

use std::time::Duration;

use super::ChatService;
use super::unit_of_work::UnitOfWork;
use crate::domain::{self, Chat, ChatStatus, Wording};
use crate::error::{Error, Result};
use crate::services::auth::{CustomerPrincipal, Principal};
use crate::services::rate_limit::RateLimiter;
use crate::store::ParticipantRole;

impl ChatService {
    /// Allows an agent to act in a chat they have (or joined as a supervisor); others learn
    /// what to do first, or NOT_FOUND when the chat is not theirs to see.
    pub(super) async fn require_participant(
        &self,
        work: &mut UnitOfWork,
        principal: &Principal,
        chat: &Chat,
    ) -> Result<()> {
        if chat.assignee_id.as_deref() == Some(principal.agent.id.as_str()) {
            return Ok(());
        }
        let joined = work
            .tx
            .participants(&chat.id)
            .await?
            .into_iter()
            .any(|(agent, role)| {
                agent == principal.agent.id && role == ParticipantRole::Supervisor
            });
        if joined {
            return Ok(());
        }
        if domain::can_view_chat(&principal.agent, chat, false) {
            let what_first = if chat.status == ChatStatus::Queued {
                Wording::TakeItFirst
            } else {
                Wording::JoinItFirst
            };
            return Err(Error::Forbidden(what_first.text()));
        }
        if domain::can_read_teammates_chat(&principal.agent, chat, &work.org.settings) {
            return Err(Error::Forbidden(Wording::TeammatesChatReadOnly.text()));
        }
        Err(Error::NotFound("no such chat".into()))
    }

    /// The organization's group `group_id`, or BAD_USER_INPUT.
    pub(super) async fn require_group(
        &self,
        organization_id: &str,
        group_id: &str,
    ) -> Result<domain::Group> {
        self.store
            .groups(organization_id)
            .await?
            .into_iter()
            .find(|g| g.id == group_id)
            .ok_or_else(|| Error::BadUserInput(format!("no group with id {group_id:?}")))
    }

    /// Draws on the customer's message budget.
    pub(super) async fn limit_customer(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(&self.customer_messages, customer, Wording::SendingTooFast).await
    }

    /// Draws on the customer's typing budget.
    pub(super) async fn limit_customer_typing(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(&self.customer_typing, customer, Wording::TypingTooFast).await
    }

    /// Draws on the customer's budget for everything else (dismissing a greeting too).
    pub(crate) async fn limit_customer_action(&self, customer: &CustomerPrincipal) -> Result<()> {
        limit(
            &self.customer_actions,
            customer,
            Wording::TooManyVisitorRequests,
        )
        .await
    }
}

/// Draws one request of `customer` from `budget`, or RATE_LIMITED with the wait.
async fn limit(budget: &RateLimiter, customer: &CustomerPrincipal, message: Wording) -> Result<()> {
    budget
        .acquire(&customer.customer_id)
        .await
        .map_err(|wait| Error::RateLimited {
            message: message.text(),
            retry_after_secs: whole_seconds(wait),
        })
}

/// A wait in whole seconds, rounded up (a client that waits this long is let through), at
/// least one.
pub(super) fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}
