//! Tags on chats: agents who may see a chat (its agent, whoever took part, the supervisors
//! of its group, admins) put the organization's tags on it and take them off, during the
//! chat or after it. Each change writes an agents-only entry in the transcript, so every
//! app showing the chat hears of it live and reads the chat's tags again.

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use super::{ChatService, new_event, not_found};
use crate::domain::{self, AuthorKind, Chat, ChatEventKind, Visibility, Wording};
use crate::error::{Error, Result};
use crate::services::auth::Principal;

impl ChatService {
    /// Puts the organization's tag `tag_id` on the chat; a tag already there changes nothing.
    pub async fn add_chat_tag(
        &self,
        principal: &Principal,
        chat_id: &str,
        tag_id: &str,
    ) -> Result<Chat> {
        self.change_chat_tag(principal, chat_id, tag_id, true).await
    }

    /// Takes the tag `tag_id` off the chat; a tag not there changes nothing.
    pub async fn remove_chat_tag(
        &self,
        principal: &Principal,
        chat_id: &str,
        tag_id: &str,
    ) -> Result<Chat> {
        self.change_chat_tag(principal, chat_id, tag_id, false)
            .await
    }

    async fn change_chat_tag(
        &self,
        principal: &Principal,
        chat_id: &str,
        tag_id: &str,
        add: bool,
    ) -> Result<Chat> {
        // Tagging routes nothing: it locks the chat, as a message does.
        let (mut work, chat, _) = self
            .begin_in_chat(principal.organization_id(), chat_id)
            .await?;
        require_tagger(&mut work, principal, &chat).await?;
        let tag = work
            .tx
            .tag(principal.organization_id(), tag_id)
            .await
            .map_err(|err| not_found(err, "tag"))?;
        let changed = if add {
            work.tx
                .add_chat_tag(&chat, &tag.id, &principal.agent.id, work.now)
                .await?
        } else {
            work.tx.remove_chat_tag(&chat.id, &tag.id).await?
        };
        if changed {
            let (agent, name) = (principal.agent.name.clone(), tag.name.clone());
            let wording = if add {
                Wording::TagAdded { agent, tag: name }
            } else {
                Wording::TagRemoved { agent, tag: name }
            };
            let text = work.transcript_text(&wording).await?;
            let mut event = new_event(
                &chat,
                ChatEventKind::TagsChanged,
                AuthorKind::System,
                None,
                None,
                text,
                work.now,
            );
            event.visibility = Visibility::Agents;
            work.append(&chat, event).await?;
            work.record(DomainEvent::Tagged {
                chat: chat.clone(),
                tag,
                added: add,
            })
            .await?;
        }
        self.finish(work).await?;
        Ok(chat)
    }
}

/// Allows the agents who may see the chat (as [`domain::can_view_chat`] says, having taken
/// part counting) to tag it; a teammate who may only read it is FORBIDDEN, others NOT_FOUND.
async fn require_tagger(work: &mut UnitOfWork, principal: &Principal, chat: &Chat) -> Result<()> {
    let participated = work
        .tx
        .participants(&chat.id)
        .await?
        .iter()
        .any(|(agent, _)| *agent == principal.agent.id);
    if domain::can_view_chat(&principal.agent, chat, participated) {
        return Ok(());
    }
    if domain::can_read_teammates_chat(&principal.agent, chat, &work.org.settings) {
        return Err(Error::Forbidden(Wording::TeammatesChatReadOnly.text()));
    }
    Err(Error::NotFound("no such chat".into()))
}
