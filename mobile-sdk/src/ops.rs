//! The typed operations, generated at build time from `graphql/operations.graphql` against
//! the server's `schema.graphql`.

#![allow(clippy::all, missing_docs)]

use graphql_client::GraphQLQuery;

/// The schema's DateTime: RFC 3339 text, turned into `SystemTime` in `models`.
pub type DateTime = String;
/// The schema's ID.
pub type Id = String;

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        $(
            #[derive(GraphQLQuery)]
            #[graphql(
                schema_path = "../schema.graphql",
                query_path = "graphql/operations.graphql",
                normalization = "rust",
                response_derives = "Debug",
                variables_derives = "Debug, Clone"
            )]
            pub struct $name;
        )*
    };
}

operations!(
    Login,
    RefreshToken,
    Logout,
    AgentEventsCursor,
    Me,
    SetRoutingStatus,
    MyChats,
    Queue,
    ChatDetail,
    TakeChat,
    TransferChat,
    AgentsForTransfer,
    CloseChat,
    SetTyping,
    SendMessage,
    RegisterPushDevice,
    UnregisterPushDevice,
    NotificationPreferences,
    UpdateNotificationPreferences,
    AgentEvents,
);
