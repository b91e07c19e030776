//! Reading: the chats, queue entries and offline messages a caller may see, and marking an
//! offline message handled.

use super::{ChatService, QueueEntry, may_read_offline_message, not_found};
use crate::domain::{self, Chat, ChatStatus, OfflineMessage};
use crate::error::{Error, Result};
use crate::services::auth::{Caller, Principal};

impl ChatService {
    /// A chat the caller may see.
    pub async fn chat_for(&self, caller: &Caller, chat_id: &str) -> Result<Chat> {
        match caller {
            Caller::Agent(principal) => self.visible_chat(principal, chat_id).await,
            Caller::Customer(customer) => {
                let chat = self
                    .store
                    .chat(&customer.organization_id, chat_id)
                    .await
                    .map_err(|err| not_found(err, "chat"))?;
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                Ok(chat)
            }
        }
    }

    /// A chat the agent may see, or NOT_FOUND.
    pub async fn visible_chat(&self, principal: &Principal, chat_id: &str) -> Result<Chat> {
        let chat = self
            .store
            .chat(principal.organization_id(), chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))?;
        let participated = self
            .store
            .participated(&chat.id, &principal.agent.id)
            .await?;
        if domain::can_view_chat(&principal.agent, &chat, participated)
            || self.reads_teammates_chat(principal, &chat).await?
        {
            Ok(chat)
        } else {
            Err(Error::NotFound("no such chat".into()))
        }
    }

    /// Whether the agent may read the chat only because the organization lets plain agents
    /// see their groups' chats. The settings are read only when that could be so.
    pub(super) async fn reads_teammates_chat(
        &self,
        principal: &Principal,
        chat: &Chat,
    ) -> Result<bool> {
        if !domain::in_chat_group(&principal.agent, chat.group_id.as_deref()) {
            return Ok(false);
        }
        let settings = self
            .store
            .organization(principal.organization_id())
            .await?
            .settings;
        Ok(domain::can_read_teammates_chat(
            &principal.agent,
            chat,
            &settings,
        ))
    }

    /// The agent's active chats, newest first.
    pub async fn my_chats(&self, principal: &Principal) -> Result<Vec<Chat>> {
        Ok(self
            .store
            .chats(
                principal.organization_id(),
                &[ChatStatus::Active],
                Some(&principal.agent.id),
            )
            .await?)
    }

    /// The queue the agent may take from, oldest first.
    pub async fn queue(&self, principal: &Principal) -> Result<Vec<QueueEntry>> {
        let org = self.store.organization(principal.organization_id()).await?;
        Ok(self
            .queue_entries(&org)
            .await?
            .into_iter()
            .filter(|e| {
                principal.role().is_admin()
                    || domain::in_chat_group(&principal.agent, e.chat.group_id.as_deref())
            })
            .collect())
    }

    /// The customer's place in the queue, when their chat waits.
    pub async fn queue_entry(
        &self,
        organization_id: &str,
        chat_id: &str,
    ) -> Result<Option<QueueEntry>> {
        let org = self.store.organization(organization_id).await?;
        Ok(self
            .queue_entries(&org)
            .await?
            .into_iter()
            .find(|e| e.chat.id == chat_id))
    }

    /// Active and queued chats of the supervisor's groups (every group for admins); for plain
    /// agents too, read only, when the organization lets them see their groups' chats.
    pub async fn team_chats(&self, principal: &Principal) -> Result<Vec<Chat>> {
        let settings = self
            .store
            .organization(principal.organization_id())
            .await?
            .settings;
        if principal.role() < domain::Role::Supervisor && !settings.agents_see_group_chats {
            return Err(Error::forbidden("see your team's chats"));
        }
        Ok(self
            .store
            .chats(
                principal.organization_id(),
                &[ChatStatus::Active, ChatStatus::Queued],
                None,
            )
            .await?
            .into_iter()
            .filter(|chat| {
                domain::can_view_chat(&principal.agent, chat, false)
                    || domain::can_read_teammates_chat(&principal.agent, chat, &settings)
            })
            .collect())
    }

    /// Offline messages of the agent's groups (all for admins), newest first.
    pub async fn offline_messages(&self, principal: &Principal) -> Result<Vec<OfflineMessage>> {
        Ok(self
            .store
            .offline_messages(principal.organization_id())
            .await?
            .into_iter()
            .filter(|m| may_read_offline_message(principal, m))
            .collect())
    }

    /// One offline message the agent may read (as in [`Self::offline_messages`]).
    pub async fn offline_message(&self, principal: &Principal, id: &str) -> Result<OfflineMessage> {
        let message = self
            .store
            .offline_message(principal.organization_id(), id)
            .await
            .map_err(|err| not_found(err, "offline message"))?;
        if !may_read_offline_message(principal, &message) {
            return Err(Error::NotFound("no such offline message".into()));
        }
        Ok(message)
    }

    /// Marks an offline message handled (or not).
    pub async fn set_offline_message_handled(
        &self,
        principal: &Principal,
        id: &str,
        handled: bool,
    ) -> Result<OfflineMessage> {
        let visible = self
            .offline_messages(principal)
            .await?
            .into_iter()
            .any(|m| m.id == id);
        if !visible {
            return Err(Error::NotFound("no such offline message".into()));
        }
        Ok(self
            .store
            .set_offline_message_handled(principal.organization_id(), id, handled)
            .await?)
    }
}
