//! What one operation may cost: page sizes, the complexity of lists, aliases and depth.
//!
//! A response grows with what the query asks for, not with its own size: a 9 KB query of 240
//! aliases of `pageHistory(first: 100)` once returned 49 MB. So a list field costs its page size
//! (or [`UNBOUNDED_LIST_COST`] for lists without one) times the cost of what is selected in each
//! item, every list argument is checked the same way, and aliased fields are capped, since each
//! alias repeats a field's whole work.
//!
//! Depth is ours too, because introspection needs its own rule: the query GraphiQL and other
//! tools send to learn the schema is 15 fields deep (nine nested `ofType`s, to unwrap types like
//! `[[String!]!]!`), over any depth an application's query needs. Below `__schema` and `__type`
//! the depth is bounded by [`MAX_INTROSPECTION_DEPTH`] instead, and what makes an introspection
//! query expensive, lists of types' fields nested in each other, is bounded as graphql-js bounds
//! it (`MaxIntrospectionDepthRule`).

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

/// How deep a selection below `__schema` or `__type` may go, counting that field: the standard
/// introspection query is 15 deep, with room for tools that unwrap a few more `ofType`s. Going
/// down `ofType` costs one object per level.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;

/// The introspection fields that list a type's members. Nesting them multiplies the response by
/// the size of the schema at each level (`fields { type { fields { type { fields …`); the
/// standard query nests none of them, and three are refused, as graphql-js refuses them.
const INTROSPECTION_LISTS: &[&str] = &["fields", "inputFields", "interfaces", "possibleTypes"];
const MAX_INTROSPECTION_LISTS: usize = 2;

/// Refuses operations nested deeper than `max` fields with QUERY_TOO_COMPLEX, before
/// validation; below `__schema` and `__type` the introspection bounds apply instead (see the
/// module's docs). Replaces async-graphql's own depth limit, which knows no exception.
pub(super) struct DepthLimit {
    pub max: usize,
}

impl ExtensionFactory for DepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DepthLimit { max: self.max })
    }
}

#[async_trait::async_trait]
impl Extension for DepthLimit {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        if let Err(refusal) = check_depth(&document, self.max) {
            let message = match refusal {
                TooDeep::Operation => format!(
                    "Query is nested too deep: at most {} levels of fields are allowed",
                    self.max
                ),
                TooDeep::Introspection => format!(
                    "Query is nested too deep: introspection goes at most \
                     {MAX_INTROSPECTION_DEPTH} levels below __schema or __type"
                ),
                TooDeep::IntrospectionLists => format!(
                    "Query is nested too deep: introspection may nest fields, inputFields, \
                     interfaces and possibleTypes at most {MAX_INTROSPECTION_LISTS} deep"
                ),
                TooDeep::Unmeasurable => {
                    "Query is nested too deep: its fragments are spread too deep or too \
                     often to measure"
                        .to_owned()
                }
            };
            let mut err = ServerError::new(message, None);
            err.extensions
                .get_or_insert_with(Default::default)
                .set("code", "QUERY_TOO_COMPLEX");
            return Err(err);
        }
        Ok(document)
    }
}

/// Why an operation is too deep.
#[derive(Debug, PartialEq, Eq)]
enum TooDeep {
    /// Deeper than the configured limit.
    Operation,
    /// Deeper than [`MAX_INTROSPECTION_DEPTH`] below `__schema` or `__type`.
    Introspection,
    /// [`INTROSPECTION_LISTS`] nested more than [`MAX_INTROSPECTION_LISTS`] deep.
    IntrospectionLists,
    /// Fragments nested past [`MAX_FRAGMENT_NESTING`] or more than [`MAX_VISITS`] selections:
    /// refused rather than left unmeasured.
    Unmeasurable,
}

/// Where a selection is: its depth, and the bound that applies to it.
#[derive(Clone, Copy)]
struct Level {
    /// Fields above and including this one (below `__schema`/`__type`, counted from it).
    depth: usize,
    max: usize,
    /// Below `__schema` or `__type`: how many [`INTROSPECTION_LISTS`] enclose it.
    introspection_lists: Option<usize>,
}

/// Checks every operation of the document, fragments measured where they are spread, as
/// async-graphql measures depth.
fn check_depth(document: &ExecutableDocument, max: usize) -> Result<(), TooDeep> {
    let mut walker = DepthWalker {
        document,
        max,
        visits_left: MAX_VISITS,
    };
    let top = Level {
        depth: 0,
        max,
        introspection_lists: None,
    };
    match &document.operations {
        DocumentOperations::Single(operation) => {
            walker.selection_set(&operation.node.selection_set, top, 0)
        }
        DocumentOperations::Multiple(operations) => operations
            .values()
            .try_for_each(|operation| walker.selection_set(&operation.node.selection_set, top, 0)),
    }
}

struct DepthWalker<'a> {
    document: &'a ExecutableDocument,
    max: usize,
    visits_left: usize,
}

impl DepthWalker<'_> {
    fn selection_set(
        &mut self,
        set: &Positioned<SelectionSet>,
        at: Level,
        nesting: usize,
    ) -> Result<(), TooDeep> {
        for selection in &set.node.items {
            self.visits_left = self
                .visits_left
                .checked_sub(1)
                .ok_or(TooDeep::Unmeasurable)?;
            match &selection.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let here = match at.introspection_lists {
                        None if matches!(name, "__schema" | "__type") => {
                            // The field itself is one level of the operation.
                            if at.depth + 1 > self.max {
                                return Err(TooDeep::Operation);
                            }
                            Level {
                                depth: 1,
                                max: MAX_INTROSPECTION_DEPTH,
                                introspection_lists: Some(0),
                            }
                        }
                        None => Level {
                            depth: at.depth + 1,
                            ..at
                        },
                        Some(lists) => {
                            let lists = lists + usize::from(INTROSPECTION_LISTS.contains(&name));
                            if lists > MAX_INTROSPECTION_LISTS {
                                return Err(TooDeep::IntrospectionLists);
                            }
                            Level {
                                depth: at.depth + 1,
                                max: at.max,
                                introspection_lists: Some(lists),
                            }
                        }
                    };
                    if here.depth > here.max {
                        return Err(match here.introspection_lists {
                            None => TooDeep::Operation,
                            Some(_) => TooDeep::Introspection,
                        });
                    }
                    self.selection_set(&field.node.selection_set, here, nesting)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.selection_set(&fragment.node.selection_set, at, nesting)?
                }
                Selection::FragmentSpread(spread) => {
                    if nesting >= MAX_FRAGMENT_NESTING {
                        return Err(TooDeep::Unmeasurable);
                    }
                    // An unknown fragment is left to validation, which reports it.
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.selection_set(&fragment.node.selection_set, at, nesting + 1)?;
                    }
                }
            }
        }
        Ok(())
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

    fn depth(query: &str, max: usize) -> Result<(), TooDeep> {
        check_depth(&async_graphql::parser::parse_query(query).unwrap(), max)
    }

    #[test]
    fn depth_counts_fields_through_fragments() {
        assert_eq!(depth("{ me { id } }", 2), Ok(()));
        assert_eq!(depth("{ me { id } }", 1), Err(TooDeep::Operation));
        let spread = "{ me { ...F } } fragment F on Agent { groups { id } }";
        assert_eq!(depth(spread, 3), Ok(()));
        assert_eq!(depth(spread, 2), Err(TooDeep::Operation));
        assert_eq!(
            depth("{ me { ... on Agent { groups { id } } } }", 2),
            Err(TooDeep::Operation)
        );
    }

    #[test]
    fn introspection_has_its_own_bounds() {
        let of_types = |n: usize| {
            let mut query = "kind".to_owned();
            for _ in 0..n {
                query = format!("kind ofType {{ {query} }}");
            }
            format!("{{ __type(name: \"Agent\") {{ fields {{ type {{ {query} }} }} }} }}")
        };
        // __type, fields, type, then the ofTypes and the kind below the last.
        assert_eq!(depth(&of_types(MAX_INTROSPECTION_DEPTH - 4), 12), Ok(()));
        assert_eq!(
            depth(&of_types(MAX_INTROSPECTION_DEPTH - 3), 12),
            Err(TooDeep::Introspection)
        );
        // Still one level of the operation.
        assert_eq!(
            depth("{ __schema { types { name } } }", 0),
            Err(TooDeep::Operation)
        );

        let two = "{ __schema { types { fields { type { fields { name } } } } } }";
        assert_eq!(depth(two, 12), Ok(()));
        let three = "{ __schema { types { fields { type { interfaces { fields { name } } } } } } }";
        assert_eq!(depth(three, 12), Err(TooDeep::IntrospectionLists));
        let hidden = "{ __type(name: \"Agent\") { ...A } } \
            fragment A on __Type { fields { type { ...B } } } \
            fragment B on __Type { possibleTypes { ...C } } \
            fragment C on __Type { inputFields { name } }";
        assert_eq!(depth(hidden, 12), Err(TooDeep::IntrospectionLists));
    }

    #[test]
    fn fragments_too_tangled_to_measure_are_refused() {
        let cyclic = "{ ...A } fragment A on Query { me { id } ...A }";
        assert_eq!(depth(cyclic, 12), Err(TooDeep::Unmeasurable));
        let branching = "{ ...A } fragment A on Query { __typename ...B ...B ...B } \
            fragment B on Query { __typename ...A ...A ...A }";
        assert_eq!(depth(branching, 12), Err(TooDeep::Unmeasurable));
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
