//! Facebook Messenger: the organization's connected pages (`messengerPages`; admins and
//! owners connect, change and disconnect them) and how far an agent's message to a
//! Messenger customer got (`Message.delivery`). Tokens and secrets are written, never read
//! back: pages show their last characters only.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::{ApiError, ApiResult, ContextExt, limits};
use crate::services::Services;
use crate::services::messenger::{ConnectPageInput, UpdatePageInput};

/// A Facebook Page whose Messenger conversations come in as chats.
pub struct MessengerPage(pub domain::MessengerPage);

#[Object]
impl MessengerPage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// Facebook's id of the page.
    async fn page_id(&self) -> &str {
        &self.0.page_id
    }

    /// The page's name, as Facebook gave it when the token was set.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// The page access token's last characters, to tell tokens apart.
    async fn access_token_hint(&self) -> String {
        domain::secret_hint(&self.0.access_token)
    }

    /// The app secret's last characters.
    async fn app_secret_hint(&self) -> String {
        domain::secret_hint(&self.0.app_secret)
    }

    /// The verify token's last characters.
    async fn verify_token_hint(&self) -> String {
        domain::secret_hint(&self.0.verify_token)
    }

    /// The group the page's chats go to; null routes them like any chat of no group.
    async fn group_id(&self) -> Option<ID> {
        self.0.group_id.clone().map(ID)
    }

    /// The callback path to give Facebook, after the server's public address.
    async fn webhook_path(&self) -> &'static str {
        "/channels/messenger/webhook"
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A page as an admin connects it.
#[derive(InputObject)]
pub struct ConnectMessengerPageInput {
    /// Facebook's numeric id of the page.
    pub page_id: String,
    /// A page access token with pages_messaging; checked with the Graph API.
    pub access_token: String,
    /// The Facebook app's secret: it signs the page's webhook events.
    pub app_secret: String,
    /// Any word you also give Facebook as the webhook's verify token.
    pub verify_token: String,
    /// The group the page's chats go to; null for none.
    pub group_id: Option<ID>,
}

/// What an admin changes on a page; a null field keeps its value.
#[derive(InputObject)]
pub struct UpdateMessengerPageInput {
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    /// The group the page's chats go to; an empty string for none.
    pub group_id: Option<ID>,
}

/// How far an agent's message to a Messenger customer got.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domain::DeliveryState")]
pub enum DeliveryState {
    /// Waiting in the outbox to be sent.
    Pending,
    /// Facebook took it.
    Sent,
    /// It reached the customer's Messenger.
    Delivered,
    /// The customer read it.
    Read,
    /// It did not reach Messenger (see `error`); the transcript says so to the agents too.
    Failed,
}

/// What became of a message sent to Messenger.
#[derive(SimpleObject)]
pub struct MessageDelivery {
    pub state: DeliveryState,
    /// Why it failed, as Facebook said.
    pub error: Option<String>,
}

/// Loads the delivery of a page of messages in one query.
pub struct DeliveryLoader {
    services: Arc<Services>,
}

impl DeliveryLoader {
    /// The loader of the schema serving `services`.
    pub fn loader(services: Arc<Services>) -> DataLoader<DeliveryLoader> {
        DataLoader::new(DeliveryLoader { services }, tokio::spawn)
    }
}

impl Loader<String> for DeliveryLoader {
    type Value = domain::MessageDelivery;
    type Error = ApiError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, ApiError> {
        let found = self.services.messenger.deliveries(keys).await?;
        Ok(found.into_iter().map(|d| (d.event_id.clone(), d)).collect())
    }
}

/// The delivery of `message` to Messenger; `None` for a message that was not sent there.
pub async fn delivery_of(
    ctx: &Context<'_>,
    message: &domain::ChatEvent,
) -> ApiResult<Option<MessageDelivery>> {
    if message.kind != domain::ChatEventKind::Message
        || message.author_kind != domain::AuthorKind::Agent
    {
        return Ok(None);
    }
    let loaded = ctx
        .data_unchecked::<DataLoader<DeliveryLoader>>()
        .load_one(message.id.clone())
        .await?;
    Ok(loaded.map(|d| MessageDelivery {
        state: d.state.into(),
        error: d.error,
    }))
}

/// The organization's Messenger pages.
#[derive(Default)]
pub struct MessengerQuery;

#[Object]
impl MessengerQuery {
    /// The Facebook Pages connected to the organization. Admins and owners.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn messenger_pages(&self, ctx: &Context<'_>) -> ApiResult<Vec<MessengerPage>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .messenger
            .pages(principal)
            .await?
            .into_iter()
            .map(MessengerPage)
            .collect())
    }
}

/// Connecting Facebook Pages.
#[derive(Default)]
pub struct MessengerMutation;

#[Object]
impl MessengerMutation {
    /// Connects a Facebook Page: its users' messages become chats on MESSENGER. The access
    /// token is checked with the Graph API (BAD_USER_INPUT when Facebook refuses it); a page
    /// connected already is a CONFLICT. Admins and owners.
    async fn connect_messenger_page(
        &self,
        ctx: &Context<'_>,
        input: ConnectMessengerPageInput,
    ) -> ApiResult<MessengerPage> {
        let principal = ctx.principal()?;
        let input = ConnectPageInput {
            page_id: input.page_id,
            access_token: input.access_token,
            app_secret: input.app_secret,
            verify_token: input.verify_token,
            group_id: input.group_id.map(|id| id.0),
        };
        Ok(MessengerPage(
            ctx.services().messenger.connect(principal, input).await?,
        ))
    }

    /// Changes a page's token, secret, verify token or group. Admins and owners.
    async fn update_messenger_page(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateMessengerPageInput,
    ) -> ApiResult<MessengerPage> {
        let principal = ctx.principal()?;
        let input = UpdatePageInput {
            access_token: input.access_token,
            app_secret: input.app_secret,
            verify_token: input.verify_token,
            group_id: input.group_id.map(|id| id.0),
        };
        Ok(MessengerPage(
            ctx.services()
                .messenger
                .update(principal, &id, input)
                .await?,
        ))
    }

    /// Disconnects a page: its events are refused from now on; its chats stay. Admins and
    /// owners.
    async fn disconnect_messenger_page(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<MessengerPage> {
        let principal = ctx.principal()?;
        Ok(MessengerPage(
            ctx.services().messenger.disconnect(principal, &id).await?,
        ))
    }
}
