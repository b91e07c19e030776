//! The Messenger rules, an in-transaction subscriber of the domain events: an agent's public
//! message in a Messenger chat becomes a Send API call in the outbox, written in the
//! message's transaction, so it goes out if and only if the message is stored. Facebook's
//! messaging window is decided here, at send time, from the customer's last message: within
//! 24 hours a RESPONSE, within 7 days tagged HUMAN_AGENT, later the message is refused with
//! MESSENGER_WINDOW_CLOSED and the change rolls back. Notes and system entries never leave.

use super::events::DomainEvent;
use super::unit_of_work::UnitOfWork;
use crate::domain::{
    self, AuthorKind, Channel, MessagingWindow, MessengerSend, MessengerSendKind, Visibility,
    Wording,
};
use crate::error::{Error, Result};

/// Queues the Send API call `event` calls for, or refuses a reply Facebook would refuse.
pub(super) async fn react(work: &mut UnitOfWork, event: &DomainEvent) -> Result<()> {
    let DomainEvent::MessageAdded { chat, entry } = event else {
        return Ok(());
    };
    if chat.channel != Channel::Messenger
        || entry.author_kind != AuthorKind::Agent
        || entry.visibility != Visibility::Public
    {
        return Ok(());
    }
    let Some((page_id, psid, last_customer_message)) =
        work.tx.messenger_recipient(&chat.customer_id).await?
    else {
        return Ok(());
    };
    let Some((messaging_type, tag)) =
        MessagingWindow::at(last_customer_message, work.now).messaging_type()
    else {
        return Err(Error::MessengerWindowClosed(
            Wording::MessengerWindowClosed.text(),
        ));
    };
    // A message of files alone has no text to send; its files are in the web app's transcript.
    if entry.text.is_empty() {
        return Ok(());
    }
    let send = MessengerSend {
        id: domain::new_id(),
        organization_id: chat.organization_id.clone(),
        chat_id: chat.id.clone(),
        event_id: Some(entry.id.clone()),
        page_id,
        psid,
        kind: MessengerSendKind::Message,
        text: Some(entry.text.clone()),
        messaging_type: Some(messaging_type.to_owned()),
        tag: tag.map(str::to_owned),
        attempts: 0,
        created_at: work.now,
    };
    work.tx.insert_messenger_send(&send).await?;
    work.messenger_sends_queued = true;
    Ok(())
}
