//! The read side of chats: what a chat shows beyond its own row (its transcript, its customer's
//! page history) read only after checking that the caller may see the chat, and the people and
//! groups chats reference, read in batches for the API's loaders.
//!
//! Every read of a chat's contents takes the caller and goes through
//! [`ChatService::chat_for`], so an object held across a change of rights (a chat in a
//! subscription's event, a transfer away) shows nothing once its caller lost sight of it.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::try_join_all;

use crate::domain::{Agent, Chat, ChatEvent, ChatSettings, Customer, Group, PageView};
use crate::error::{Error, Result};
use crate::services::{Caller, ChatService, Principal};
use crate::store::{Database, DbError};

/// Reads of chats and what they reference.
pub struct ChatViews {
    store: Arc<dyn Database>,
    /// Decides who may see a chat; the one rule every read here starts with.
    chats: Arc<ChatService>,
}

impl ChatViews {
    /// Views over `store`, with `chats` deciding visibility.
    pub fn new(store: Arc<dyn Database>, chats: Arc<ChatService>) -> Self {
        ChatViews { store, chats }
    }

    /// The chat, when the caller may see it; NOT_FOUND otherwise.
    pub async fn chat(&self, caller: &Caller, chat_id: &str) -> Result<Chat> {
        self.chats.chat_for(caller, chat_id).await
    }

    /// Transcript entries after the cursor `after`, oldest first, at most `limit`, as the
    /// caller may see them (agents also see transfer notes).
    pub async fn events_after(
        &self,
        caller: &Caller,
        chat_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChatEvent>> {
        let chat = self.chat(caller, chat_id).await?;
        Ok(self
            .store
            .chat_events(&chat.id, after, limit, for_agents(caller))
            .await?)
    }

    /// Transcript entries before the cursor `before`, newest first, at most `limit`, as the
    /// caller may see them; with `messages_only`, only what someone wrote.
    pub async fn events_before(
        &self,
        caller: &Caller,
        chat_id: &str,
        before: i64,
        limit: i64,
        messages_only: bool,
    ) -> Result<Vec<ChatEvent>> {
        let chat = self.chat(caller, chat_id).await?;
        Ok(self
            .store
            .chat_events_before(&chat.id, before, limit, for_agents(caller), messages_only)
            .await?)
    }

    /// How many messages the customer wrote since the agent last read the chat, on any of
    /// their devices. Customers have nothing unread here.
    pub async fn unread_count(&self, caller: &Caller, chat_id: &str) -> Result<i64> {
        let Caller::Agent(principal) = caller else {
            return Ok(0);
        };
        let chat = self.chat(caller, chat_id).await?;
        Ok(self
            .store
            .unread_count(&chat.id, &principal.agent.id)
            .await?)
    }

    /// Marks the chat read up to its latest entry for the agent.
    pub async fn mark_read(&self, principal: &Arc<Principal>, chat_id: &str) -> Result<Chat> {
        let chat = self
            .chat(&Caller::Agent(principal.clone()), chat_id)
            .await?;
        self.store
            .mark_chat_read(&chat.id, &principal.agent.id)
            .await?;
        // The chat's own agent reading it shows the Messenger customer their messages seen.
        if chat.assignee_id.as_deref() == Some(principal.agent.id.as_str()) {
            let seen = crate::domain::MessengerSendKind::MarkSeen;
            if let Err(err) = self.chats.messenger_sender_action(&chat, seen).await {
                tracing::warn!(error = %err, "could not queue Messenger's seen notice");
            }
        }
        Ok(chat)
    }

    /// The pages the customer of a chat the caller may see viewed, newest first.
    pub async fn chat_customer_pages(
        &self,
        caller: &Caller,
        chat_id: &str,
        customer_id: &str,
        limit: i64,
    ) -> Result<Vec<PageView>> {
        let chat = self.chat(caller, chat_id).await?;
        if chat.customer_id != customer_id {
            return Err(Error::NotFound("no such customer".into()));
        }
        Ok(self.store.page_views(&chat.customer_id, limit).await?)
    }

    /// The pages a customer viewed, newest first, for the customer a visitor session or a
    /// page update of their own just returned.
    pub async fn own_pages(&self, customer: &Customer, limit: i64) -> Result<Vec<PageView>> {
        Ok(self.store.page_views(&customer.id, limit).await?)
    }

    /// Every agent of an organization, for loaders resolving agents that visible chats,
    /// events and teammates reference (one read for any number of them).
    pub async fn agents_of(&self, organization_id: &str) -> Result<Vec<Agent>> {
        Ok(self.store.agents(organization_id).await?)
    }

    /// Every group of an organization, for loaders (as [`ChatViews::agents_of`]).
    pub async fn groups_of(&self, organization_id: &str) -> Result<Vec<Group>> {
        Ok(self.store.groups(organization_id).await?)
    }

    /// An organization's settings, for loaders resolving agents' default chat limits.
    pub async fn settings_of(&self, organization_id: &str) -> Result<ChatSettings> {
        Ok(self.store.organization(organization_id).await?.settings)
    }

    /// Customers of an organization by id, read concurrently, for loaders resolving the
    /// customers of visible chats; ids of no customer are left out.
    pub async fn customers_of(
        &self,
        organization_id: &str,
        customer_ids: &[String],
    ) -> Result<HashMap<String, Customer>> {
        let reads = customer_ids.iter().map(|id| async move {
            match self.store.customer(organization_id, id).await {
                Ok(customer) => Ok(Some(customer)),
                Err(DbError::NotFound) => Ok(None),
                Err(err) => Err(Error::from(err)),
            }
        });
        Ok(try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|customer| (customer.id.clone(), customer))
            .collect())
    }
}

/// Agents see transfer notes; customers do not.
fn for_agents(caller: &Caller) -> bool {
    matches!(caller, Caller::Agent(_))
}
