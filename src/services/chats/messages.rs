//! What both sides do in a chat: send messages, type, and close it.

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use super::{ChatService, message_text, new_event, not_found, organization_of};
use crate::bus::{BusEvent, Topic, Typing};
use crate::domain::{
    self, AuthorKind, Chat, ChatEvent, ChatEventKind, ChatStatus, FeedData, FeedKind, Visibility,
    Wording,
};
use crate::error::{Error, Result};
use crate::services::auth::Caller;

impl ChatService {
    /// Sends a message in a chat. The same client id twice returns the first message.
    pub async fn send_message(
        &self,
        caller: &Caller,
        chat_id: &str,
        text: &str,
        client_id: Option<&str>,
    ) -> Result<ChatEvent> {
        Ok(self
            .send_message_once(caller, chat_id, text, client_id, Visibility::Public, &[])
            .await?
            .0)
    }

    /// [`Self::send_message`], saying whether the message is new (false: the client id
    /// returned an earlier one), so what counts a send counts a retry once. With
    /// [`Visibility::Agents`] it is a note for the agents (see `notes`). `file_ids` are files
    /// the sender uploaded into this chat and has not sent yet (checked by
    /// [`crate::services::files::FileService::check_sendable`]); with files the text may be
    /// empty.
    pub async fn send_message_once(
        &self,
        caller: &Caller,
        chat_id: &str,
        text: &str,
        client_id: Option<&str>,
        visibility: Visibility,
        file_ids: &[String],
    ) -> Result<(ChatEvent, bool)> {
        let note = visibility == Visibility::Agents;
        if note && matches!(caller, Caller::Customer(_)) {
            return Err(Error::Forbidden(Wording::NotesAreForAgents.text()));
        }
        let text = if file_ids.is_empty() || !text.trim().is_empty() {
            message_text(text)?
        } else {
            String::new()
        };
        let client_id = match client_id.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) if c.chars().count() > domain::MAX_CLIENT_ID_CHARS => {
                return Err(Error::BadUserInput(format!(
                    "clientId must be at most {} characters",
                    domain::MAX_CLIENT_ID_CHARS
                )));
            }
            other => other.map(str::to_owned),
        };
        if let Caller::Customer(customer) = caller {
            self.limit_customer(customer).await?;
        }
        // A message routes nothing: it locks its chat, and messages in the organization's
        // other chats commit beside it. Entering the chat reads its customer's name too.
        let (mut work, mut chat, customer_name) =
            self.begin_in_chat(organization_of(caller), chat_id).await?;
        let (author_kind, author_id, author_name) = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                let name = customer_name.unwrap_or_else(|| Wording::Customer.text());
                (AuthorKind::Customer, customer.customer_id.clone(), name)
            }
            Caller::Agent(principal) => {
                if note {
                    self.require_note_writer(&mut work, principal, &chat)
                        .await?;
                } else {
                    self.require_participant(&mut work, principal, &chat)
                        .await?;
                }
                (
                    AuthorKind::Agent,
                    principal.agent.id.clone(),
                    principal.agent.name.clone(),
                )
            }
        };
        // A resent client id is found by the insert (the chat's row is locked, so the first
        // send has committed); a resend after the close still gets its message back.
        if chat.status == ChatStatus::Closed {
            if let Some(client_id) = &client_id
                && let Some(existing) = work
                    .tx
                    .message_by_client_id(&chat.id, &author_id, client_id)
                    .await?
            {
                return Ok((existing, false));
            }
            return Err(Error::Conflict(Wording::ChatClosed.text()));
        }
        let now = work.now;
        // A note answers nobody: the chat's reply and attention clocks stay as they are, and
        // so does the reports' reply clock.
        let attention_changed = !note && chat.record_message(author_kind, now);
        if !note {
            chat.record_reply_clock(author_kind, now);
            work.tx.update_chat(&chat).await?;
        }
        let mut event = new_event(
            &chat,
            ChatEventKind::Message,
            author_kind,
            Some((&author_id, &author_name)),
            client_id,
            text,
            now,
        );
        event.visibility = visibility;
        let client_id = event.client_id.clone();
        let Some(stored) = work.append_message(&chat, event).await? else {
            // Sent before: its message, and this change (the chat's clocks) rolls back.
            let existing = work
                .tx
                .message_by_client_id(&chat.id, &author_id, client_id.as_deref().unwrap_or(""))
                .await?
                .ok_or_else(|| Error::Conflict("the message was sent twice at once".into()))?;
            return Ok((existing, false));
        };
        // Linked in the message's own transaction: a file sent twice at once goes with one.
        if !file_ids.is_empty()
            && work
                .tx
                .attach_files(&chat.id, &author_id, &stored.id, file_ids)
                .await?
                != file_ids.len()
        {
            return Err(Error::Conflict(
                "a file was already sent, or is not one you uploaded to this chat".into(),
            ));
        }
        if attention_changed {
            self.attention_changed(&mut work, &chat).await?;
        }
        work.record(DomainEvent::MessageAdded {
            chat: chat.clone(),
            entry: stored.clone(),
        })
        .await?;
        self.finish(work).await?;
        Ok((stored, true))
    }

    /// Typing indicators: the customer's draft is the agents' sneak peek; an agent's typing
    /// reaches the customer without any draft.
    pub async fn set_typing(
        &self,
        caller: &Caller,
        chat_id: &str,
        is_typing: bool,
        draft: Option<&str>,
    ) -> Result<()> {
        if let Caller::Customer(customer) = caller {
            self.limit_customer_typing(customer).await?;
        }
        let chat = self
            .store
            .chat(organization_of(caller), chat_id)
            .await
            .map_err(|err| not_found(err, "chat"))?;
        let now = domain::now();
        let typing = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                self.store.touch_customer_activity(&chat.id, now).await?;
                // A grey chat turns normal again: the timers say so.
                self.timer_wake.notify_one();
                Typing {
                    chat_id: chat.id.clone(),
                    author_kind: AuthorKind::Customer,
                    author_id: customer.customer_id.clone(),
                    is_typing,
                    draft: draft
                        .filter(|_| is_typing)
                        .map(|d| domain::truncate_chars(d, domain::MAX_DRAFT_CHARS).to_owned()),
                }
            }
            Caller::Agent(principal) => {
                if chat.assignee_id.as_deref() != Some(principal.agent.id.as_str())
                    && !self
                        .store
                        .participated(&chat.id, &principal.agent.id)
                        .await?
                {
                    return Err(Error::Forbidden(Wording::TypingNotYours.text()));
                }
                if chat.assignee_id.as_deref() == Some(principal.agent.id.as_str()) {
                    self.store
                        .set_agent_typing(&chat.id, is_typing, now)
                        .await?;
                    // Stopping restarts the auto-transfer clock, maybe nearer than it was.
                    self.timer_wake.notify_one();
                }
                Typing {
                    chat_id: chat.id.clone(),
                    author_kind: AuthorKind::Agent,
                    author_id: principal.agent.id.clone(),
                    is_typing,
                    draft: None,
                }
            }
        };
        if chat.status == ChatStatus::Closed {
            return Ok(());
        }
        if typing.author_kind == AuthorKind::Customer
            && let Some(assignee) = &chat.assignee_id
        {
            self.bus.publish(
                Topic::Agent(assignee.clone()),
                BusEvent::Typing(typing.clone()),
            );
        }
        self.bus
            .publish(Topic::Chat(chat.id.clone()), BusEvent::Typing(typing));
        if is_typing && matches!(caller, Caller::Agent(_)) {
            let typing_on = domain::MessengerSendKind::TypingOn;
            if let Err(err) = self.messenger_sender_action(&chat, typing_on).await {
                tracing::warn!(error = %err, "could not queue Messenger's typing notice");
            }
        }
        Ok(())
    }

    /// Closes a chat: its customer, its agents or an admin may.
    pub async fn close_chat(&self, caller: &Caller, chat_id: &str) -> Result<Chat> {
        if let Caller::Customer(customer) = caller {
            self.limit_customer_action(customer).await?;
        }
        let mut work = self.begin(organization_of(caller)).await?;
        let mut chat = work.chat(chat_id).await?;
        let who = match caller {
            Caller::Customer(customer) => {
                if chat.customer_id != customer.customer_id {
                    return Err(Error::NotFound("no such chat".into()));
                }
                Wording::CustomerLeft
            }
            Caller::Agent(principal) => {
                if !principal.role().is_admin() {
                    self.require_participant(&mut work, principal, &chat)
                        .await?;
                }
                Wording::ClosedBy {
                    agent: principal.agent.name.clone(),
                }
            }
        };
        if chat.status == ChatStatus::Closed {
            return Err(Error::Conflict(Wording::AlreadyClosed.text()));
        }
        close(&mut work, &mut chat, who).await?;
        work.drain_queue().await?;
        self.finish(work).await?;
        Ok(chat)
    }
}

/// Closes `chat` with `text` in its transcript; its agents hear it in their feeds.
pub(super) async fn close(work: &mut UnitOfWork, chat: &mut Chat, text: Wording) -> Result<()> {
    let was_queued = chat.close(work.now);
    work.tx.update_chat(chat).await?;
    work.system(chat, ChatEventKind::ChatClosed, text).await?;
    for agent in work.watchers(chat).await? {
        work.feed(
            &agent,
            FeedKind::ChatClosed,
            Some(chat),
            FeedData::default(),
        )
        .await?;
    }
    work.record(DomainEvent::Closed {
        chat: chat.clone(),
        was_queued,
    })
    .await
}
