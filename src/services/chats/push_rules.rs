//! The push rules, an in-transaction subscriber of the domain events: which event rings which
//! agent's phone. Push jobs are outbox rows written in the event's transaction, so a push goes
//! out if and only if the change commits; their text is worded when sent.

use super::events::DomainEvent;
use super::unit_of_work::{PushText, UnitOfWork};
use crate::domain::{
    self, AuthorKind, Chat, ChatEvent, NotificationKind, PushMessage, PushWording, Visibility,
    Wording,
};
use crate::error::Result;

/// Writes the pushes `event` calls for.
pub(super) async fn react(work: &mut UnitOfWork, event: &DomainEvent) -> Result<()> {
    match event {
        DomainEvent::Assigned {
            chat,
            agent_id,
            transferred,
            live: false,
            ..
        } => assigned(work, chat, agent_id, *transferred).await,
        DomainEvent::Queued { chat } => customers_waiting(work, chat).await,
        DomainEvent::MessageAdded { chat, entry } if entry.author_kind == AuthorKind::Customer => {
            let Some(assignee) = chat.assignee_id.clone() else {
                return Ok(());
            };
            if work.tx.agent_live(&assignee, work.now).await? {
                return Ok(());
            }
            let author = entry.author_name.clone().unwrap_or_default();
            customer_message(work, chat, &assignee, &author, &entry.text).await
        }
        DomainEvent::MessageAdded { chat, entry } if entry.visibility == Visibility::Agents => {
            note(work, chat, entry).await
        }
        DomainEvent::OfflineMessageLeft {
            message,
            recipients,
        } => {
            let wording = PushWording {
                title: Wording::OfflineMessageFrom {
                    name: message.name.clone(),
                },
                body: None,
            };
            for agent in recipients {
                work.push(
                    agent,
                    NotificationKind::OfflineMessage,
                    None,
                    PushText::Worded(wording.clone(), &message.text),
                    std::time::Duration::ZERO,
                )
                .await?;
            }
            Ok(())
        }
        DomainEvent::AcceptanceMissed { chat, agent_id } => {
            let customer = work.customer_name(chat).await?;
            let wording = PushWording {
                title: Wording::MissedChatFrom { customer },
                body: Some(Wording::MissedChatExplained),
            };
            work.push(
                agent_id,
                NotificationKind::MissedChat,
                Some(chat),
                PushText::Worded(wording, ""),
                std::time::Duration::ZERO,
            )
            .await
        }
        _ => Ok(()),
    }
}

/// A chat for an agent with no app connected live: their phone hears of it. An agent with
/// the app open sees the assignment there; a push would ring a phone beside it.
async fn assigned(
    work: &mut UnitOfWork,
    chat: &Chat,
    agent_id: &str,
    transferred: bool,
) -> Result<()> {
    let kind = if transferred {
        NotificationKind::TransferredChat
    } else {
        NotificationKind::NewChat
    };
    // Most assignments go to agents without a phone: look that up before writing text.
    if work.tx.push_targets(agent_id, kind).await?.is_empty() {
        return Ok(());
    }
    let customer = work.customer_name(chat).await?;
    let preview = work
        .tx
        .latest_customer_message(&chat.id)
        .await?
        .unwrap_or_default();
    let title = if transferred {
        Wording::TransferredChatFrom { customer }
    } else {
        Wording::NewChatFrom { customer }
    };
    let wording = PushWording { title, body: None };
    work.push(
        agent_id,
        kind,
        Some(chat),
        PushText::Worded(wording, &preview),
        std::time::Duration::ZERO,
    )
    .await
}

/// A note someone else wrote in the assignee's chat (a supervisor's whisper) rings their
/// phone when no app of theirs is open, as "Note from …". Notes never push a customer.
async fn note(work: &mut UnitOfWork, chat: &Chat, entry: &ChatEvent) -> Result<()> {
    let Some(assignee) = chat.assignee_id.clone() else {
        return Ok(());
    };
    if entry.author_id.as_deref() == Some(assignee.as_str())
        || work.tx.agent_live(&assignee, work.now).await?
    {
        return Ok(());
    }
    let wording = PushWording {
        title: Wording::NoteFrom {
            agent: entry.author_name.clone().unwrap_or_default(),
        },
        body: None,
    };
    work.push(
        &assignee,
        NotificationKind::NewMessage,
        Some(chat),
        PushText::Worded(wording, &entry.text),
        std::time::Duration::ZERO,
    )
    .await
}

/// One collapsed "customers waiting" push to each accepting agent of the chat's group who
/// has no app connected live, at most once a minute.
async fn customers_waiting(work: &mut UnitOfWork, chat: &Chat) -> Result<()> {
    let since =
        work.now - chrono::Duration::from_std(domain::QUEUE_PUSH_INTERVAL).unwrap_or_default();
    let recipients = work
        .tx
        .queue_push_recipients(&work.org.id, chat.group_id.as_deref(), since, work.now)
        .await?;
    if recipients.is_empty() {
        return Ok(());
    }
    let waiting = work.tx.queued_count(&work.org.id, None).await?;
    let wording = PushWording {
        title: Wording::CustomersWaiting { count: waiting },
        body: Some(Wording::OpenTheQueue),
    };
    for agent in recipients {
        work.push(
            &agent,
            NotificationKind::QueuedCustomers,
            None,
            PushText::Worded(wording.clone(), ""),
            std::time::Duration::ZERO,
        )
        .await?;
    }
    Ok(())
}

/// A customer message for an agent with no app connected live: messages within the debounce
/// window share one push, which shows the latest.
async fn customer_message(
    work: &mut UnitOfWork,
    chat: &Chat,
    agent_id: &str,
    customer: &str,
    text: &str,
) -> Result<()> {
    let pending = work
        .tx
        .pending_push_jobs(agent_id, NotificationKind::NewMessage, Some(&chat.id))
        .await?;
    if pending.is_empty() {
        return work
            .push(
                agent_id,
                NotificationKind::NewMessage,
                Some(chat),
                PushText::Quoted {
                    title: customer,
                    body: text,
                },
                domain::MESSAGE_DEBOUNCE,
            )
            .await;
    }
    let cursor = work.feed_cursors.get(agent_id).map(i64::to_string);
    let message = PushMessage::new(
        NotificationKind::NewMessage,
        customer,
        text,
        &chat.organization_id,
        Some(&chat.id),
        cursor.as_deref(),
    );
    for job in pending {
        work.tx.update_push_job_message(&job, &message).await?;
    }
    Ok(())
}
