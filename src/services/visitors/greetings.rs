//! Greetings an agent sends to a visitor on the site, and the visitor dismissing one.
//! (Answering one is starting a chat: `ChatService::start_chat` with the greeting's id.)

use super::VisitorService;
use crate::domain::{self, Greeting, PlaceholderValues, render_greeting, validate_greeting_text};
use crate::error::{Error, Result};
use crate::services::auth::{CustomerPrincipal, Principal};
use crate::store::DbError;

impl VisitorService {
    /// An agent (any role) greets a visitor of their organization who is on the site and not
    /// chatting. The text's placeholders are filled in as the rules' are.
    pub async fn send_greeting(
        &self,
        principal: &Principal,
        customer_id: &str,
        text: &str,
    ) -> Result<Greeting> {
        let organization_id = principal.organization_id();
        let text = validate_greeting_text("text", text)?;
        let customer = self
            .store
            .customer(organization_id, customer_id)
            .await
            .map_err(|err| not_found(err, "customer"))?;
        let Some(visitor) = self.on_site.visitor(organization_id, &customer.id) else {
            return Err(Error::Conflict("the visitor is not on the site".into()));
        };
        if self
            .store
            .open_chat_of_customer(organization_id, &customer.id)
            .await?
            .is_some()
        {
            return Err(Error::Conflict("the visitor is chatting already".into()));
        }
        let agent = &principal.agent;
        let text = render_greeting(
            &text,
            &PlaceholderValues {
                visitor_name: visitor.customer.name.as_deref(),
                page_title: visitor.customer.current_page_title.as_deref(),
                agent_name: Some(&agent.name),
            },
        );
        let greeting = Greeting {
            id: domain::new_id(),
            organization_id: organization_id.to_owned(),
            customer_id: customer.id,
            agent_id: Some(agent.id.clone()),
            agent_name: Some(agent.name.clone()),
            rule_id: None,
            group_id: None,
            text,
            created_at: domain::now(),
            shown_at: None,
            answered_at: None,
            chat_id: None,
            dismissed_at: None,
        };
        self.store.insert_greeting(&greeting).await?;
        self.on_site.greeting_changed(greeting.clone());
        self.announce_greeting(&greeting);
        Ok(greeting)
    }

    /// The visitor closes a greeting without answering it.
    pub async fn dismiss_greeting(
        &self,
        customer: &CustomerPrincipal,
        greeting_id: &str,
    ) -> Result<Greeting> {
        self.chats.limit_customer_action(customer).await?;
        let greeting = self.own_greeting(customer, greeting_id).await?;
        if greeting.answered_at.is_some() {
            return Err(Error::Conflict(
                "this greeting has been answered already".into(),
            ));
        }
        if greeting.dismissed_at.is_some() {
            return Ok(greeting);
        }
        let dismissed = self
            .store
            .dismiss_greeting(&customer.organization_id, &greeting.id, domain::now())
            .await?;
        self.on_site.greeting_changed(dismissed.clone());
        self.announce_greeting(&dismissed);
        Ok(dismissed)
    }

    /// The customer's own greeting; someone else's is not found.
    async fn own_greeting(&self, customer: &CustomerPrincipal, id: &str) -> Result<Greeting> {
        match self.store.greeting(&customer.organization_id, id).await {
            Ok(greeting) if greeting.customer_id == customer.customer_id => Ok(greeting),
            Ok(_) | Err(DbError::NotFound) => Err(Error::NotFound("no such greeting".into())),
            Err(err) => Err(err.into()),
        }
    }
}

pub(super) fn not_found(err: DbError, what: &str) -> Error {
    match err {
        DbError::NotFound => Error::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}
