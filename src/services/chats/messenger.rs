//! Messenger, the chat side: a Messenger customer's message starts or continues their chat
//! through the same use case as the widget's (so routing, the queue, timers and pushes apply),
//! a send Facebook refused is told to the chat's agents, and the agent's typing and reading
//! go back to the customer as sender actions.

use std::sync::Arc;

use super::{ChatService, new_event};
use crate::domain::{
    self, AuthorKind, Channel, Chat, ChatEventKind, MessengerSend, MessengerSendKind, Visibility,
    Wording,
};
use crate::error::Result;
use crate::services::auth::CustomerPrincipal;

/// A typing or seen notice is sent at most this often per customer: Messenger shows typing
/// for 20 seconds, and agents' apps report typing far more often.
const SENDER_ACTION_INTERVAL: chrono::Duration = chrono::Duration::seconds(10);

impl ChatService {
    /// Rung when Send API calls were queued; the Messenger worker waits on it.
    pub fn messenger_wake(&self) -> Arc<tokio::sync::Notify> {
        self.messenger_wake.clone()
    }

    /// A Messenger customer wrote `text`: it goes into their open chat, or starts a chat on
    /// MESSENGER for `group_id` (the page's group). With nobody accepting chats, the chat
    /// waits in the queue: a Messenger customer cannot be shown the offline form.
    pub async fn receive_messenger_message(
        &self,
        customer: &CustomerPrincipal,
        group_id: Option<&str>,
        text: &str,
    ) -> Result<Chat> {
        let text = domain::truncate_chars(text.trim(), domain::MAX_MESSAGE_CHARS).to_owned();
        let record = self
            .store
            .customer(&customer.organization_id, &customer.customer_id)
            .await?;
        self.refuse_banned(&record, None).await?;
        let name = record.name.unwrap_or_else(|| Wording::Customer.text());
        self.open_chat(customer, &name, text, group_id, None, Channel::Messenger)
            .await
    }

    /// Tells the chat's agents, in its transcript and for them only, that one of their
    /// messages did not reach Messenger, and why.
    pub async fn messenger_send_failed(
        &self,
        organization_id: &str,
        chat_id: &str,
        reason: &str,
    ) -> Result<()> {
        let mut work = self.begin(organization_id).await?;
        let chat = work.chat(chat_id).await?;
        let text = work
            .transcript_text(&Wording::MessengerNotDelivered {
                reason: domain::truncate_chars(reason, 300).to_owned(),
            })
            .await?;
        let mut event = new_event(
            &chat,
            ChatEventKind::Message,
            AuthorKind::System,
            None,
            None,
            text,
            work.now,
        );
        event.visibility = Visibility::Agents;
        work.append(&chat, event).await?;
        self.finish(work).await
    }

    /// Sends the Messenger customer of `chat` a sender action (typing_on, mark_seen), at most
    /// one of a kind every few seconds. Nothing for other chats.
    pub(crate) async fn messenger_sender_action(
        &self,
        chat: &Chat,
        kind: MessengerSendKind,
    ) -> Result<()> {
        if chat.channel != Channel::Messenger {
            return Ok(());
        }
        let Some((page_id, psid)) = self.store.messenger_recipient_of_chat(&chat.id).await? else {
            return Ok(());
        };
        let now = domain::now();
        let send = MessengerSend {
            id: domain::new_id(),
            organization_id: chat.organization_id.clone(),
            chat_id: chat.id.clone(),
            event_id: None,
            page_id,
            psid,
            kind,
            text: None,
            messaging_type: None,
            tag: None,
            attempts: 0,
            created_at: now,
        };
        if self
            .store
            .insert_messenger_action(&send, now - SENDER_ACTION_INTERVAL)
            .await?
        {
            self.messenger_wake.notify_one();
        }
        Ok(())
    }
}
