//! What one operation may cost: page sizes, the complexity of lists, and aliases.
//!
//! A response grows with what the query asks for, not with its own size: a 9 KB query of 240
//! aliases of `pageHistory(first: 100)` once returned 49 MB. So a list field costs its page size
//! (or [`UNBOUNDED_LIST_COST`] for lists without one) times the cost of what is selected in each
//! item, every list argument is checked the same way, and aliased fields are capped, since each
//! alias repeats a field's whole work.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Positioned, ServerError, ServerResult, Variables};

use super::ApiError;
use crate::error::Error;

/// The items one page of a transcript (`events`, `latestEvents`) may hold.
pub const MAX_EVENTS_PAGE: i32 = 200;
/// The entries one page of a customer's page history may hold.
pub const MAX_PAGE_HISTORY: i32 = 100;
/// What a list without a page size is assumed to hold when its cost is estimated: an agent's
/// chats, the queue, a team, their groups. Estimated, not enforced.
pub const UNBOUNDED_LIST_COST: usize = 10;

/// Checks a page size argument: from 1 to `max`, or BAD_USER_INPUT naming the argument.
pub fn page_size(argument: &str, value: i32, max: i32) -> Result<usize, ApiError> {
    if (1..=max).contains(&value) {
        Ok(value as usize)
    } else {
        Err(Error::BadUserInput(format!("{argument} must be between 1 and {max}")).into())
    }
}

/// The complexity of a list field whose page holds up to `requested` items (clamped as
/// [`page_size`] would; an invalid value is refused when the field runs).
pub fn paged_list_cost(requested: i32, max: i32, child_complexity: usize) -> usize {
    let items = requested.clamp(1, max) as usize;
    items.saturating_mul(child_complexity).saturating_add(1)
}

/// The complexity of a list field without a page size.
pub fn unbounded_list_cost(child_complexity: usize) -> usize {
    UNBOUNDED_LIST_COST
        .saturating_mul(child_complexity)
        .saturating_add(1)
}

/// Refuses operations with more than `max` aliased fields (counted through fragments) with
/// QUERY_TOO_COMPLEX, before validation computes anything else.
pub(super) struct AliasLimit {
    pub max: usize,
}

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimit { max: self.max })
    }
}

#[async_trait::async_trait]
impl Extension for AliasLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let aliases = count_aliases(&document, self.max);
        if aliases > self.max {
            let mut err = ServerError::new(
                format!(
                    "the operation has more than {} aliased fields; each alias repeats a \
                     field's work, so at most {} are allowed",
                    self.max, self.max
                ),
                None,
            );
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", "QUERY_TOO_COMPLEX");
            return Err(err);
        }
        Ok(document)
    }
}

/// Fragments nest at most this deep when counting; deeper (or cyclic) ones are left to
/// validation, which refuses them.
const MAX_FRAGMENT_NESTING: usize = 16;
/// Selections visited at most while counting, so fragments spread many times inside each
/// other cannot make the count itself expensive.
const MAX_VISITS: usize = 100_000;

/// Aliased fields in the document's operations, each fragment counted where it is spread.
/// Stops counting past `stop_after`.
fn count_aliases(document: &ExecutableDocument, stop_after: usize) -> usize {
    let mut counter = AliasCounter {
        document,
        count: 0,
        stop_after,
        visits_left: MAX_VISITS,
    };
    match &document.operations {
        DocumentOperations::Single(operation) => {
            counter.selection_set(&operation.node.selection_set, 0)
        }
        DocumentOperations::Multiple(operations) => {
            for operation in operations.values() {
                counter.selection_set(&operation.node.selection_set, 0);
            }
        }
    }
    counter.count
}

struct AliasCounter<'a> {
    document: &'a ExecutableDocument,
    count: usize,
    stop_after: usize,
    visits_left: usize,
}

impl AliasCounter<'_> {
    fn selection_set(&mut self, set: &Positioned<SelectionSet>, nesting: usize) {
        for selection in &set.node.items {
            if self.count > self.stop_after || self.visits_left == 0 {
                return;
            }
            self.visits_left -= 1;
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.alias.is_some() {
                        self.count += 1;
                    }
                    self.selection_set(&field.node.selection_set, nesting);
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set, nesting)
                }
                Selection::FragmentSpread(spread) => {
                    if nesting < MAX_FRAGMENT_NESTING
                        && let Some(fragment) =
                            self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.selection_set(&fragment.node.selection_set, nesting + 1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(query: &str) -> usize {
        count_aliases(&async_graphql::parser::parse_query(query).unwrap(), 1000)
    }

    #[test]
    fn aliases_are_counted_through_fragments() {
        assert_eq!(aliases("{ a: me { id } b: me { x: id } }"), 3);
        assert_eq!(
            aliases("query { ...F ...F } fragment F on Query { a: me { id } }"),
            2
        );
        assert_eq!(aliases("{ me { id } }"), 0);
    }

    #[test]
    fn cyclic_fragments_do_not_hang_the_count() {
        let query = "{ ...A } fragment A on Query { a: me { id } ...A }";
        assert!(aliases(query) <= MAX_FRAGMENT_NESTING + 1);
        let branching = "{ ...A } fragment A on Query { a: me { id } ...A ...A ...A }";
        assert!(aliases(branching) <= MAX_VISITS);
    }

    #[test]
    fn page_sizes_are_checked_the_same_way() {
        assert!(page_size("first", 0, 100).is_err());
        assert!(page_size("first", -5, 100).is_err());
        assert!(page_size("first", 101, 100).is_err());
        assert_eq!(page_size("first", 100, 100).unwrap(), 100);
    }

    #[test]
    fn list_costs_multiply_by_the_page() {
        assert_eq!(paged_list_cost(100, 100, 3), 301);
        assert_eq!(paged_list_cost(-5, 100, 3), 4);
        assert_eq!(paged_list_cost(i32::MAX, 200, 3), 601);
        assert_eq!(unbounded_list_cost(2), 21);
    }
}
