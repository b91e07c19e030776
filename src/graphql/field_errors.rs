//! A field whose resolver fails is `null` in `data`, with its error at its path, as the GraphQL
//! spec requires (https://spec.graphql.org/October2021/#sec-Handling-Field-Errors): a nullable
//! field becomes `null` itself; a non-null one makes the nearest nullable field above it (or a
//! nullable list item, or at last `data`) `null`.
//!
//! async-graphql 7 leaves a failed field out of its object instead (and makes the object `null`
//! only when every field failed), which strict clients such as Apollo iOS reject as a malformed
//! response. This extension sits around every field's resolver: it takes the error, answers
//! `null`, and carries a non-null field's failure up to the first field that may hold it. The
//! errors it took go back into the response (or into each event of a subscription).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, NextSubscribe,
    ResolveInfo,
};
use async_graphql::{PathSegment, QueryPathNode, QueryPathSegment, Response, ServerResult, Value};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

/// Puts `null` at failed fields (see the module's docs).
pub(super) struct NullFailedFields;

impl ExtensionFactory for NullFailedFields {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(FieldErrors::default())
    }
}

/// The errors of one request (or of the current event of a subscription).
#[derive(Default)]
struct FieldErrors {
    taken: Arc<Mutex<Taken>>,
    /// How many entries of `Taken::unplaced` there are, so fields need not lock to learn that
    /// none is.
    unplaced: AtomicUsize,
}

#[derive(Default)]
struct Taken {
    errors: Vec<async_graphql::ServerError>,
    /// Paths of failed non-null fields whose `null` has not yet reached a nullable field.
    unplaced: Vec<Vec<PathSegment>>,
}

impl FieldErrors {
    fn lock(&self) -> std::sync::MutexGuard<'_, Taken> {
        self.taken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl Extension for FieldErrors {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let path_node = info.path_node;
        let return_type = info.return_type;
        let nullable = !return_type.ends_with('!');
        match next.run(ctx, info).await {
            Err(mut err) => {
                let path = path_of(path_node);
                if err.path.is_empty() {
                    err.path = path.clone();
                }
                let mut taken = self.lock();
                taken.errors.push(err);
                if !nullable {
                    taken.unplaced.push(path);
                    self.unplaced.fetch_add(1, Ordering::AcqRel);
                }
                Ok(Some(Value::Null))
            }
            Ok(value) if self.unplaced.load(Ordering::Acquire) == 0 => Ok(value),
            Ok(mut value) => {
                let path = path_of(path_node);
                let mut taken = self.lock();
                let before = taken.unplaced.len();
                let mut null_here = false;
                taken.unplaced.retain(|failed| {
                    if !failed.starts_with(&path) || failed.len() == path.len() {
                        return true;
                    }
                    // A failure below this field reached it: an item of a list whose items
                    // may be null takes it, else this field does if it may be null.
                    if let (Some(PathSegment::Index(item)), Some(Value::List(items))) =
                        (failed.get(path.len()), value.as_mut())
                        && list_items_nullable(return_type)
                        && let Some(slot) = items.get_mut(*item)
                    {
                        *slot = Value::Null;
                        return false;
                    }
                    null_here = true;
                    !nullable
                });
                self.unplaced
                    .fetch_sub(before - taken.unplaced.len(), Ordering::AcqRel);
                Ok(if null_here { Some(Value::Null) } else { value })
            }
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        place(&self.taken, response)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // Each event is resolved before it is yielded, so what was taken belongs to it.
        let taken = self.taken.clone();
        next.run(ctx, stream)
            .map(move |response| place(&taken, response))
            .boxed()
    }
}

/// Adds the errors taken to `response`; a non-null failure that reached the top makes `data`
/// `null`.
fn place(taken: &Mutex<Taken>, mut response: Response) -> Response {
    let mut taken = taken
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if taken.errors.is_empty() {
        return response;
    }
    if !taken.unplaced.is_empty() {
        response.data = Value::Null;
        taken.unplaced.clear();
    }
    response.errors.append(&mut taken.errors);
    response
}

/// Whether a type like `[Chat]` or `[Chat]!` lets its items be `null`.
fn list_items_nullable(return_type: &str) -> bool {
    let list = return_type.strip_suffix('!').unwrap_or(return_type);
    list.strip_prefix('[')
        .and_then(|list| list.strip_suffix(']'))
        .is_some_and(|item| !item.ends_with('!'))
}

fn path_of(node: &QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|node| match node.segment {
            QueryPathSegment::Index(index) => PathSegment::Index(index),
            QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
        })
        .collect();
    path.reverse();
    path
}

#[cfg(test)]
#[allow(clippy::unused_async)] // async-graphql's #[Object] fields are async fns
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

    struct Query;

    #[derive(SimpleObject)]
    struct Inner {
        ok: i32,
    }

    struct Item(i32);

    #[Object]
    impl Item {
        async fn value(&self) -> async_graphql::Result<i32> {
            if self.0 == 1 {
                Err("item failed".into())
            } else {
                Ok(self.0)
            }
        }
    }

    struct Holder;

    #[Object]
    impl Holder {
        async fn fine(&self) -> i32 {
            1
        }
        async fn required(&self) -> async_graphql::Result<i32> {
            Err("required failed".into())
        }
    }

    #[Object]
    impl Query {
        async fn fine(&self) -> i32 {
            1
        }
        async fn optional(&self) -> async_graphql::Result<Option<i32>> {
            Err("optional failed".into())
        }
        async fn holder(&self) -> Option<Holder> {
            Some(Holder)
        }
        async fn items(&self) -> Vec<Option<Item>> {
            vec![Some(Item(0)), Some(Item(1))]
        }
        async fn strict_items(&self) -> Option<Vec<Item>> {
            Some(vec![Item(0), Item(1)])
        }
        async fn inner(&self) -> Inner {
            Inner { ok: 2 }
        }
        async fn required(&self) -> async_graphql::Result<i32> {
            Err("top failed".into())
        }
    }

    async fn run(query: &str) -> serde_json::Value {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(NullFailedFields)
            .finish();
        serde_json::to_value(schema.execute(query).await).unwrap()
    }

    #[tokio::test]
    async fn a_failed_nullable_field_is_null_at_its_path() {
        let body = run("{ fine optional inner { ok } }").await;
        assert_eq!(
            body["data"],
            serde_json::json!({"fine": 1, "optional": null, "inner": {"ok": 2}})
        );
        assert_eq!(body["errors"][0]["path"], serde_json::json!(["optional"]));
        let aliased = run("{ a: optional b: fine }").await;
        assert_eq!(aliased["data"], serde_json::json!({"a": null, "b": 1}));
        assert_eq!(aliased["errors"][0]["path"], serde_json::json!(["a"]));
    }

    #[tokio::test]
    async fn a_failed_non_null_field_nulls_the_nearest_nullable_parent() {
        let body = run("{ fine holder { fine required } }").await;
        assert_eq!(body["data"], serde_json::json!({"fine": 1, "holder": null}));
        assert_eq!(
            body["errors"][0]["path"],
            serde_json::json!(["holder", "required"])
        );

        let items = run("{ items { value } strictItems { value } }").await;
        assert_eq!(
            items["data"],
            serde_json::json!({"items": [{"value": 0}, null], "strictItems": null})
        );
        assert_eq!(items["errors"].as_array().unwrap().len(), 2);

        let top = run("{ fine required }").await;
        assert_eq!(top["data"], serde_json::Value::Null);
        assert_eq!(top["errors"][0]["path"], serde_json::json!(["required"]));
    }

    #[test]
    fn list_item_nullability_is_read_from_the_type() {
        assert!(list_items_nullable("[Chat]"));
        assert!(list_items_nullable("[Chat]!"));
        assert!(!list_items_nullable("[Chat!]!"));
        assert!(!list_items_nullable("Chat"));
    }
}
