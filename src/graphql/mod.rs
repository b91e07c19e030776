//! The GraphQL API: schema, per-request context, and the mapping from use-case errors to
//! GraphQL errors with `extensions.code`.
//!
//! One module per feature (accounts, canned, chats, tags, events, files, push, visitors) holds its GraphQL
//! types and its parts of the roots, merged here in the order the schema has always printed. Resolvers call
//! services and the loaders, never the store or the bus.

mod accounts;
mod archive;
mod canned;
mod chats;
pub mod documents;
mod email;
mod errors;
mod events;
mod field_errors;
mod files;
pub mod limits;
mod loaders;
mod messenger;
mod push;
mod reports;
mod tags;
mod text_input;
mod timing;
mod visitors;
mod webhooks;
mod widget;

use std::net::IpAddr;
use std::sync::Arc;

use crate::metrics::Metrics;

use async_graphql::{Context, MergedObject, MergedSubscription, Schema, SchemaBuilder};

use crate::error::Error;
use crate::services::{Caller, CustomerPrincipal, Principal, Services};

pub use errors::{ApiError, ApiResult, REQUEST_ERROR_CODES, finalize_errors};

/// The root of queries.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    accounts::MeQuery,
    events::EventsQuery,
    accounts::AccountsQuery,
    chats::ChatsQuery,
    push::PushQuery,
    visitors::VisitorsQuery,
    widget::WidgetQuery,
    canned::CannedQuery,
    tags::TagsQuery,
    files::FilesQuery,
    archive::ArchiveQuery,
    reports::ReportsQuery,
    webhooks::WebhooksQuery,
    messenger::MessengerQuery,
    email::EmailQuery,
);

/// The root of mutations.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    accounts::AccountsMutation,
    chats::ChatsMutation,
    accounts::SettingsMutation,
    push::PushMutation,
    visitors::VisitorsMutation,
    widget::WidgetMutation,
    canned::CannedMutation,
    tags::TagsMutation,
    files::FilesMutation,
    archive::ArchiveMutation,
    webhooks::WebhooksMutation,
    messenger::MessengerMutation,
    email::EmailMutation,
);

/// The root of subscriptions.
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    accounts::AccountsSubscription,
    events::EventsSubscription,
    visitors::VisitorsSubscription,
);

/// The schema apps talk to.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Limits every operation is checked against before it runs.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Most aliased fields an operation may have.
    pub max_aliases: usize,
}

fn builder(limits: QueryLimits) -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(16)
    .extension(errors::ErrorCodes)
    .extension(limits::AliasLimit {
        max: limits.max_aliases,
    })
    .extension(limits::DepthLimit {
        max: limits.max_depth,
    })
    .extension(text_input::RefuseNul)
    .extension(field_errors::NullFailedFields)
}

/// The schema serving `services`, timing its operations into `metrics`.
pub fn schema(services: Arc<Services>, limits: QueryLimits, metrics: Arc<Metrics>) -> AppSchema {
    builder(limits)
        .extension(timing::OperationTimer { metrics })
        .data(loaders::Directory::loader(services.clone()))
        .data(files::AttachmentLoader::loader(services.clone()))
        .data(messenger::DeliveryLoader::loader(services.clone()))
        .data(services)
        .finish()
}

/// The SDL of the schema, as checked in at schema.graphql.
pub fn sdl() -> String {
    builder(QueryLimits {
        max_depth: 1,
        max_complexity: 1,
        max_aliases: 0,
    })
    .finish()
    .sdl()
}

/// Who made a request, as established by the transport from the bearer token.
#[derive(Clone)]
pub enum RequestAuth {
    /// No credentials.
    Anonymous,
    /// A signed-in agent.
    Agent(Arc<Principal>),
    /// A website visitor with a visitor token.
    Customer(CustomerPrincipal),
    /// Credentials were sent but refused; operations that need a principal report why.
    Rejected(ApiError),
}

/// The client's network address, for rate limits.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// The `Origin` a browser sent with the request (or the WebSocket's upgrade): the page's
/// site, checked against an organization's allowed origins.
#[derive(Debug, Clone)]
pub struct RequestOrigin(pub Option<Arc<str>>);

/// What resolvers read from the request context.
pub(crate) trait ContextExt {
    fn services(&self) -> &Arc<Services>;
    fn principal(&self) -> Result<&Arc<Principal>, ApiError>;
    fn customer(&self) -> Result<&CustomerPrincipal, ApiError>;
    fn caller(&self) -> Result<Caller, ApiError>;
    fn client_addr(&self) -> IpAddr;
    fn origin(&self) -> Option<&str>;
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Arc<Services> {
        self.data_unchecked::<Arc<Services>>()
    }

    fn principal(&self) -> Result<&Arc<Principal>, ApiError> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth::Agent(principal)) => Ok(principal),
            Some(RequestAuth::Customer(_)) => Err(Error::Forbidden(
                "this operation is for agents; visitor tokens cannot use it".into(),
            )
            .into()),
            other => Err(unauthenticated(other)),
        }
    }

    fn customer(&self) -> Result<&CustomerPrincipal, ApiError> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth::Customer(customer)) => Ok(customer),
            Some(RequestAuth::Agent(_)) => Err(Error::Forbidden(
                "this operation is for customers: start a visitor session first".into(),
            )
            .into()),
            other => Err(unauthenticated(other)),
        }
    }

    fn caller(&self) -> Result<Caller, ApiError> {
        match self.data_opt::<RequestAuth>() {
            Some(RequestAuth::Agent(principal)) => Ok(Caller::Agent(principal.clone())),
            Some(RequestAuth::Customer(customer)) => Ok(Caller::Customer(customer.clone())),
            other => Err(unauthenticated(other)),
        }
    }

    fn client_addr(&self) -> IpAddr {
        self.data_opt::<ClientAddr>()
            .map(|addr| addr.0)
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    fn origin(&self) -> Option<&str> {
        self.data_opt::<RequestOrigin>()
            .and_then(|origin| origin.0.as_deref())
    }
}

fn unauthenticated(auth: Option<&RequestAuth>) -> ApiError {
    match auth {
        Some(RequestAuth::Rejected(err)) => err.clone(),
        _ => Error::Unauthenticated(
            "sign in first: send an access token as `Authorization: Bearer <token>`".into(),
        )
        .into(),
    }
}

impl From<Caller> for RequestAuth {
    fn from(caller: Caller) -> Self {
        match caller {
            Caller::Agent(principal) => RequestAuth::Agent(principal),
            Caller::Customer(customer) => RequestAuth::Customer(customer),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Apps and the mobile SDK build against schema.graphql: it must say what the server serves.
    #[test]
    fn schema_file_matches_the_server() {
        let checked_in = include_str!("../../schema.graphql");
        assert!(
            checked_in == super::sdl(),
            "schema.graphql is out of date: run `cargo run -- schema > schema.graphql`"
        );
    }
}
