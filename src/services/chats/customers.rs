//! What a customer does: start a chat (answering a greeting or not), leave an offline
//! message, rate a chat, and report the page they are on.

use std::net::IpAddr;

use super::events::DomainEvent;
use super::guards::whole_seconds;
use super::queue::{Otherwise, Route};
use super::unit_of_work::UnitOfWork;
use super::{
    ChatService, MAX_COMMENT_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, OfflineMessageInput,
    message_text, new_event, not_found, optional_text,
};
use crate::bus::{BusEvent, Topic};
use crate::domain::{
    self, AuthorKind, Channel, Chat, ChatEventKind, Customer, FeedData, FeedKind, OfflineMessage,
    Rating, Wording,
};
use crate::error::{Error, Result};
use crate::services::auth::{Caller, CustomerPrincipal};
use crate::store::DbError;

impl ChatService {
    /// A customer starts a chat with their first message, from `client`. Answering
    /// `greeting_id`, the greeting is the chat's first message, in its agent's name, and the
    /// chat goes to that agent when they can take it.
    pub async fn start_chat(
        &self,
        customer: &CustomerPrincipal,
        message: &str,
        group_id: Option<&str>,
        greeting_id: Option<&str>,
        client: IpAddr,
    ) -> Result<Chat> {
        let text = message_text(message)?;
        self.limit_customer(customer).await?;
        if let Err(wait) = self
            .chat_starts_per_address
            .acquire(&client.to_string())
            .await
        {
            return Err(Error::RateLimited {
                message: Wording::TooManyChatStartsFromAddress.text(),
                retry_after_secs: whole_seconds(wait),
            });
        }
        // Reads the transaction does not need come first: the single SQLite writer should not
        // wait on them.
        if let Some(group_id) = group_id {
            self.require_group(&customer.organization_id, group_id)
                .await?;
        }
        let customer_record = self
            .store
            .customer(&customer.organization_id, &customer.customer_id)
            .await
            .map_err(|err| not_found(err, "customer"))?;
        self.refuse_banned(&customer_record, Some(client)).await?;
        let author_name = customer_record
            .name
            .clone()
            .unwrap_or_else(|| Wording::Customer.text());
        self.open_chat(
            customer,
            &author_name,
            text,
            group_id,
            greeting_id,
            Channel::Widget,
        )
        .await
    }

    /// Starts a chat on `channel` with the customer's first message, checked and limited
    /// already, and routes it; an open chat of the customer gets the message instead. The one
    /// way every channel's chats begin, so routing, the queue, timers and pushes apply alike.
    pub(super) async fn open_chat(
        &self,
        customer: &CustomerPrincipal,
        author_name: &str,
        text: String,
        group_id: Option<&str>,
        greeting_id: Option<&str>,
        channel: Channel,
    ) -> Result<Chat> {
        let mut work = self.begin(&customer.organization_id).await?;
        // A second start (a double tap, a reload) continues the open chat.
        if let Some(open) = work.tx.open_chat_of_customer(&customer.customer_id).await? {
            drop(work);
            self.send_message(&Caller::Customer(customer.clone()), &open, &text, None)
                .await?;
            return Ok(self.store.chat(&customer.organization_id, &open).await?);
        }
        // Counted under the organization's lock, in the database: exact under concurrency
        // and on any number of nodes.
        let minute = chrono::Duration::minutes(1);
        let (started, oldest) = work
            .tx
            .chats_started_since(&customer.organization_id, work.now - minute)
            .await?;
        if started >= i64::from(work.org.settings.new_chats_per_minute) {
            let wait = oldest.map_or(60, |oldest| (oldest + minute - work.now).num_seconds() + 1);
            tracing::warn!(
                limit = "new_chats_per_minute",
                organization = %customer.organization_id,
                retry_after_secs = wait.clamp(1, 60),
                "rate limit hit"
            );
            return Err(Error::RateLimited {
                message: Wording::TooManyChatsStarting.text(),
                retry_after_secs: wait.clamp(1, 60) as u64,
            });
        }
        let now = work.now;
        let greeting = match greeting_id {
            Some(id) => Some(answerable_greeting(&mut work, customer, id).await?),
            None => None,
        };
        // A greeting from a rule of a group is answered by that group.
        let group_id = group_id.or_else(|| greeting.as_ref()?.group_id.as_deref());
        let mut chat = Chat::started(
            domain::new_id(),
            customer.organization_id.clone(),
            customer.customer_id.clone(),
            group_id.map(str::to_owned),
            channel,
            now,
        );
        let previous = work
            .tx
            .previous_agent_of_customer(&customer.customer_id)
            .await?;
        work.tx.insert_chat(&chat).await?;
        if let Some(greeting) = &greeting {
            // The greeting opens the transcript as the agent's message, before the answer.
            let author = greeting
                .agent_id
                .as_deref()
                .zip(greeting.agent_name.as_deref());
            let kind = if author.is_some() {
                AuthorKind::Agent
            } else {
                AuthorKind::System
            };
            let opening = new_event(
                &chat,
                ChatEventKind::Message,
                kind,
                author,
                None,
                greeting.text.clone(),
                now,
            );
            work.append(&chat, opening).await?;
            work.tx.answer_greeting(&greeting.id, &chat.id, now).await?;
            work.announce(
                Topic::Customer(customer.customer_id.clone()),
                BusEvent::GreetingChanged {
                    greeting_id: greeting.id.clone(),
                },
            );
        }
        let event = new_event(
            &chat,
            ChatEventKind::Message,
            AuthorKind::Customer,
            Some((&customer.customer_id, author_name)),
            None,
            text,
            now,
        );
        work.append(&chat, event).await?;
        work.record(DomainEvent::ChatStarted { chat: chat.clone() })
            .await?;
        if let Some(greeting) = &greeting {
            work.record(DomainEvent::GreetingAnswered {
                chat: chat.clone(),
                greeting: greeting.clone(),
            })
            .await?;
        }
        let reason = if greeting.is_some() {
            Wording::ReasonGreetingAnswered
        } else if previous.is_some() {
            Wording::ReasonReturningCustomer
        } else {
            Wording::ReasonNewChat
        };
        let data = FeedData {
            reason: Some(reason.text()),
            ..FeedData::default()
        };
        // The greeting's agent before the previous one: the visitor is answering them.
        let preferred = greeting
            .as_ref()
            .and_then(|g| g.agent_id.as_deref())
            .or(previous.as_deref());
        let route = Route {
            preferred,
            excluded: &[],
            // A Messenger customer cannot be shown the offline form: their chat waits in the
            // queue until someone accepts chats.
            otherwise: if channel == Channel::Messenger {
                Otherwise::Queue
            } else {
                Otherwise::QueueOrRefuse
            },
            not_answering: None,
            feed: FeedKind::ChatAssigned,
            data,
        };
        work.route_or_queue(&mut chat, route).await?;
        self.finish(work).await?;
        Ok(chat)
    }

    /// A customer leaves a note for when someone is back. Every agent who may read it hears
    /// `OfflineMessageReceived` in their feed, and gets a push where they switched it on.
    pub async fn leave_offline_message(
        &self,
        customer: &CustomerPrincipal,
        input: OfflineMessageInput,
    ) -> Result<OfflineMessage> {
        self.limit_customer(customer).await?;
        let customer_record = self
            .store
            .customer(&customer.organization_id, &customer.customer_id)
            .await
            .map_err(|err| not_found(err, "customer"))?;
        self.refuse_banned(&customer_record, None).await?;
        if let Some(group_id) = &input.group_id {
            self.require_group(&customer.organization_id, group_id)
                .await?;
        }
        let message = OfflineMessage {
            id: domain::new_id(),
            organization_id: customer.organization_id.clone(),
            customer_id: Some(customer.customer_id.clone()),
            group_id: input.group_id,
            name: domain::validate_name("name", &input.name, 100)?,
            email: domain::normalize_email(&input.email)?,
            text: message_text(&input.text)?,
            handled: false,
            created_at: domain::now(),
        };
        let mut work = self.begin(&customer.organization_id).await?;
        work.tx.insert_offline_message(&message).await?;
        let recipients = work
            .tx
            .offline_message_recipients(&customer.organization_id, message.group_id.as_deref())
            .await?;
        for agent in &recipients {
            work.feed(
                agent,
                FeedKind::OfflineMessageReceived,
                None,
                FeedData {
                    offline_message_id: Some(message.id.clone()),
                    ..FeedData::default()
                },
            )
            .await?;
        }
        work.record(DomainEvent::OfflineMessageLeft {
            message: message.clone(),
            recipients,
        })
        .await?;
        self.finish(work).await?;
        Ok(message)
    }

    /// The widget reports the page the customer is on.
    pub async fn update_visitor_page(
        &self,
        customer: &CustomerPrincipal,
        url: &str,
        title: Option<&str>,
    ) -> Result<Customer> {
        self.limit_customer_action(customer).await?;
        let url = optional_text("url", Some(url), MAX_URL_CHARS)?
            .ok_or_else(|| Error::BadUserInput("url must not be empty".into()))?;
        let title = optional_text("title", title, MAX_TITLE_CHARS)?;
        self.store
            .record_page_view(
                &customer.organization_id,
                &customer.customer_id,
                &url,
                title.as_deref(),
                domain::now(),
            )
            .await
            .map_err(|err| not_found(err, "customer"))
    }

    /// A customer rates their chat.
    pub async fn rate_chat(
        &self,
        customer: &CustomerPrincipal,
        chat_id: &str,
        rating: Rating,
        comment: Option<&str>,
    ) -> Result<Chat> {
        self.limit_customer_action(customer).await?;
        let comment = optional_text("comment", comment, MAX_COMMENT_CHARS)?;
        let mut work = self.begin(&customer.organization_id).await?;
        let mut chat = work.chat(chat_id).await?;
        if chat.customer_id != customer.customer_id {
            return Err(Error::NotFound("no such chat".into()));
        }
        // A chat has one rating: a change of mind replaces it, and the transcript keeps the
        // one entry the first rating wrote (the organization lock orders concurrent ratings).
        let first_rating = chat.rate(rating, comment.clone());
        work.tx.update_chat(&chat).await?;
        if !first_rating {
            self.finish(work).await?;
            return Ok(chat);
        }
        let rated = Wording::Rated { rating, comment };
        work.system(&chat, ChatEventKind::ChatRated, rated).await?;
        work.record(DomainEvent::Rated { chat: chat.clone() })
            .await?;
        self.finish(work).await?;
        Ok(chat)
    }
}

/// The customer's greeting `id`, if they may still answer it: NOT_FOUND for someone else's,
/// CONFLICT once answered or dismissed.
async fn answerable_greeting(
    work: &mut UnitOfWork,
    customer: &CustomerPrincipal,
    id: &str,
) -> Result<domain::Greeting> {
    let greeting = match work.tx.greeting(&customer.organization_id, id).await {
        Ok(greeting) if greeting.customer_id == customer.customer_id => greeting,
        Ok(_) | Err(DbError::NotFound) => return Err(Error::NotFound("no such greeting".into())),
        Err(err) => return Err(err.into()),
    };
    if greeting.answered_at.is_some() {
        return Err(Error::Conflict(
            "this greeting has been answered already".into(),
        ));
    }
    if greeting.dismissed_at.is_some() {
        return Err(Error::Conflict("this greeting was dismissed".into()));
    }
    Ok(greeting)
}
