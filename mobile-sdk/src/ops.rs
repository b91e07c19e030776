//! The typed operations, generated at build time from `graphql/operations.graphql` against
//! the server's `schema.graphql`.

#![allow(clippy::all, missing_docs)]

use graphql_client::GraphQLQuery;

/// The schema's DateTime: RFC 3339 text, turned into `SystemTime` in `models`.
pub type DateTime = String;
/// The schema's ID.
pub type Id = String;
/// The schema's NaiveDate: YYYY-MM-DD.
pub type NaiveDate = String;

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
    Groups,
    MyChats,
    Queue,
    ChatDetail,
    ChatLatest,
    TakeChat,
    JoinChat,
    ChatEvents,
    TransferChat,
    AgentsForTransfer,
    CloseChat,
    MarkChatRead,
    SetTyping,
    SendMessage,
    RegisterPushDevice,
    UnregisterPushDevice,
    WebPushPublicKey,
    NotificationPreferences,
    UpdateNotificationPreferences,
    AgentEvents,
    VisitorsOnSite,
    SendGreeting,
    VisitorsChanged,
    CannedResponses,
    ManageableCannedResponses,
    RenderCannedResponse,
    CreateCannedResponse,
    UpdateCannedResponse,
    DeleteCannedResponse,
    Tags,
    ChatTags,
    CreateTag,
    UpdateTag,
    DeleteTag,
    AddChatTag,
    RemoveChatTag,
    TeamChats,
    AgentsSeeGroupChats,
    SetAgentsSeeGroupChats,
    FileSettings,
    Archive,
    CustomerProfile,
    UpdateCustomer,
    BanCustomer,
    UnbanCustomer,
    Report,
    Integrations,
    SendChatToIntegration,
    ChatIntegrationSends,
    OfflineMessages,
    ReplyToOfflineMessage,
    MarkOfflineMessageHandled,
);

/// Just the operation `name` and the fragments it uses, out of the whole operations file.
///
/// graphql_client's `QUERY` is the whole file; sending it all with every request would cost
/// bytes on a phone's connection, and would make any operation fail on a server that lacks a
/// field only another operation uses.
pub(crate) fn document(full: &str, name: &str) -> String {
    let definitions = definitions(full);
    let mut wanted = vec![name.to_owned()];
    let mut kept: Vec<&Definition> = Vec::new();
    while let Some(next) = wanted.pop() {
        if kept.iter().any(|d| d.name == next) {
            continue;
        }
        if let Some(definition) = definitions.iter().find(|d| d.name == next) {
            wanted.extend(spreads(&definition.text));
            kept.push(definition);
        }
    }
    kept.iter()
        .map(|d| d.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

struct Definition {
    name: String,
    text: String,
}

/// The top-level definitions of a document, by brace depth (comments dropped).
fn definitions(document: &str) -> Vec<Definition> {
    let mut definitions = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for line in document.lines() {
        let line = line.split('#').next().unwrap_or("");
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        depth += line.matches('{').count();
        depth = depth.saturating_sub(line.matches('}').count());
        if depth == 0 && current.contains('{') {
            let text = std::mem::take(&mut current);
            let name = text
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .filter(|word| !word.is_empty())
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            definitions.push(Definition { name, text });
        }
    }
    definitions
}

/// The fragments a definition spreads (`...Name`, not inline `... on Type`).
fn spreads(text: &str) -> Vec<String> {
    text.split("...")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && name != "on").then_some(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_sent_with_only_the_fragments_it_uses() {
        let full = login::QUERY;
        let me = document(full, "Me");
        assert!(me.starts_with("query Me {"), "{me}");
        assert!(me.contains("fragment AgentFields on Agent"));
        assert!(!me.contains("mutation Login"));
        assert!(!me.contains("ChatFields"));

        let events = document(full, "AgentEvents");
        assert!(events.contains("subscription AgentEvents"));
        assert!(events.contains("fragment ChatFields on Chat"));
        assert!(events.contains("fragment MessageFields on Message"));
        assert!(!events.contains("fragment AuthFields"));

        let login = document(full, "Login");
        assert!(login.contains("fragment AuthFields") && login.contains("fragment AgentFields"));
        // The load harness measures connections with the very subscription the SDK sends.
        assert_eq!(
            document(full, "AgentEvents"),
            include_str!("../../bench/queries/sdk-agent-events.graphql"),
            "bench/queries/sdk-agent-events.graphql is out of date: write document(QUERY, \"AgentEvents\") there"
        );
        // Every operation of the file is found.
        for name in [
            "Logout",
            "ChatDetail",
            "SendMessage",
            "UpdateNotificationPreferences",
        ] {
            assert!(document(full, name).contains(name), "{name}");
        }
    }
}

/// The JSON body of a request for `Q`: its own document, its name and its variables.
pub(crate) fn request_body<Q: GraphQLQuery>(variables: Q::Variables) -> serde_json::Value {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static DOCUMENTS: OnceLock<Mutex<HashMap<&'static str, Arc<str>>>> = OnceLock::new();
    let body = Q::build_query(variables);
    let query = DOCUMENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(body.operation_name)
        .or_insert_with(|| document(body.query, body.operation_name).into())
        .clone();
    serde_json::json!({
        "query": &*query,
        "operationName": body.operation_name,
        "variables": body.variables,
    })
}
