//! Notes and whispers: messages with [`Visibility::Agents`](crate::domain::Visibility), written
//! through `send_message_once`. A note is for the agents: it never reaches the customer (the
//! transcript reads and the customer's stream leave it out), answers nobody (the reply and
//! attention clocks stay as they are), and pushes only an agent (the assignee, when someone
//! else wrote it). Here: who may write one.

use super::ChatService;
use super::unit_of_work::UnitOfWork;
use crate::domain::{self, Chat, Role};
use crate::error::Result;
use crate::services::auth::Principal;

impl ChatService {
    /// Allows an agent to write a note in a chat: whoever may write in it, and a supervisor
    /// (or admin) who may watch it, without joining it: a whisper to its agent.
    pub(super) async fn require_note_writer(
        &self,
        work: &mut UnitOfWork,
        principal: &Principal,
        chat: &Chat,
    ) -> Result<()> {
        if principal.role() >= Role::Supervisor
            && domain::can_view_chat(&principal.agent, chat, false)
        {
            return Ok(());
        }
        self.require_participant(work, principal, chat).await
    }
}
