//! Text the databases can store. Postgres refuses U+0000 (NUL) in text, which surfaced as an
//! INTERNAL error from deep inside a write, while SQLite stored it. No client has a reason to
//! send one, so every request is checked once, up front, on every transport: the variables and
//! every string written inline in the document.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Positioned, ServerError, ServerResult, Value as ConstValue, Variables};

/// Refuses requests with a NUL character in any string, as BAD_USER_INPUT.
pub(super) struct RefuseNul;

impl ExtensionFactory for RefuseNul {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RefuseNul)
    }
}

#[async_trait::async_trait]
impl Extension for RefuseNul {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some((name, _)) = variables.iter().find(|(_, value)| const_has_nul(value)) {
            return Err(refusal(&format!("the variable ${name}")));
        }
        let document = next.run(ctx, query, variables).await?;
        if let Some(argument) = inline_argument_with_nul(&document) {
            return Err(refusal(&format!("the argument `{argument}`")));
        }
        Ok(document)
    }
}

fn refusal(what: &str) -> ServerError {
    let mut err = ServerError::new(
        format!("{what} contains a NUL character (U+0000), which text may not contain"),
        None,
    );
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", "BAD_USER_INPUT");
    err
}

fn const_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(text) => text.contains('\0'),
        ConstValue::List(items) => items.iter().any(const_has_nul),
        ConstValue::Object(fields) => fields.values().any(const_has_nul),
        _ => false,
    }
}

/// The name of the first argument, in any operation or fragment, whose inline value (or
/// variable default) holds a NUL.
fn inline_argument_with_nul(document: &ExecutableDocument) -> Option<String> {
    let operations: Vec<_> = match &document.operations {
        DocumentOperations::Single(operation) => vec![operation],
        DocumentOperations::Multiple(operations) => operations.values().collect(),
    };
    for operation in operations {
        for variable in &operation.node.variable_definitions {
            if variable
                .node
                .default_value
                .as_ref()
                .is_some_and(|value| const_has_nul(&value.node))
            {
                return Some(format!("${}", variable.node.name.node));
            }
        }
        if let Some(found) = in_selection_set(&operation.node.selection_set) {
            return Some(found);
        }
    }
    document
        .fragments
        .values()
        .find_map(|fragment| in_selection_set(&fragment.node.selection_set))
}

fn in_selection_set(set: &Positioned<SelectionSet>) -> Option<String> {
    set.node
        .items
        .iter()
        .find_map(|selection| match &selection.node {
            Selection::Field(field) => field
                .node
                .arguments
                .iter()
                .find(|(_, value)| {
                    // Variables inside the value are checked on their own: read them as null.
                    let inline = value
                        .node
                        .clone()
                        .into_const_with(|_| Ok::<_, std::convert::Infallible>(ConstValue::Null));
                    inline.is_ok_and(|inline| const_has_nul(&inline))
                })
                .map(|(name, _)| name.node.to_string())
                .or_else(|| in_selection_set(&field.node.selection_set)),
            Selection::InlineFragment(fragment) => in_selection_set(&fragment.node.selection_set),
            // Fragment definitions are checked on their own.
            Selection::FragmentSpread(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(query: &str) -> Option<String> {
        inline_argument_with_nul(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn nul_is_found_in_nested_inline_values() {
        assert_eq!(
            inline(
                r#"mutation { login(input: {email: "a\u0000b", password: "x"}) { accessToken } }"#
            ),
            Some("input".into())
        );
        assert_eq!(
            inline(
                r#"{ chat(id: "1") { ...F } } fragment F on Chat { events(after: "\u0000") { hasMore } }"#
            ),
            Some("after".into())
        );
        assert_eq!(
            inline(r#"query($t: [String!] = ["ok", "\u0000"]) { me { id } }"#),
            Some("$t".into())
        );
        assert_eq!(
            inline(r#"mutation { login(input: {email: "a@b.c", password: "x"}) { accessToken } }"#),
            None
        );
    }

    #[test]
    fn nul_is_found_in_variables() {
        let value: ConstValue =
            serde_json::from_value(serde_json::json!({"input": {"tags": ["a", "b\u{0}"]}}))
                .unwrap();
        assert!(const_has_nul(&value));
        let value: ConstValue = serde_json::from_value(serde_json::json!({"name": "Ada"})).unwrap();
        assert!(!const_has_nul(&value));
    }
}
