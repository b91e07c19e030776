//! Parsed documents, shared: one parse per query text, and one copy in memory however many
//! requests and subscriptions run it.
//!
//! Every request's text is looked up by its SHA-256 before it reaches the schema. A known
//! text hands the request the parsed document by `Arc` (async-graphql, patched in
//! `vendor/async-graphql`, runs it without copying it: its parse-time checks and our
//! extensions look at a copy, and only a request whose `@skip`/`@include` change it gets its
//! own); an unknown one is parsed once and kept. A subscription's stream holds its document
//! for the stream's life, so ten thousand apps subscribed with the SDK's document hold one
//! parsed copy, not ten thousand (37 KB each, measured with heaptrack).
//!
//! The same cache serves automatic persisted queries, as Apollo's clients speak them
//! (https://github.com/apollographql/apollo-link-persisted-queries#apollo-engine): a request
//! may carry `extensions.persistedQuery = {version: 1, sha256Hash}` instead of its text. An
//! unknown hash is answered PERSISTED_QUERY_NOT_FOUND, and the client sends the text with the
//! hash; the server checks the hash and keeps the parsed document, so the next request needs
//! neither the text nor a parse.
//!
//! async-graphql ships an `ApolloPersistedQueries` extension, but its errors carry no
//! `extensions.code` (Apollo Client retries on the code) and, running inside the schema, it
//! cannot tell the HTTP layer which operation a bare hash names (a mutation must not run over
//! GET). So the transports resolve the hash here, before the request reaches the schema; the
//! limits still apply, since async-graphql runs its parse-time checks on a document it is
//! given.
//!
//! Measured once (release build, a throwaway loop over async-graphql-parser 7.2.1):
//! graphql-js's full introspection query (2 KB) parses in 145 µs and copies in 3 µs; a
//! 175-byte chat query parses in 28 µs and copies in 0.7 µs; hashing either costs 0.1–1 µs.
//!
//! The cache is bounded three ways: at most `capacity` documents, least recently used first
//! out; only texts of at most [`MAX_PERSISTED_QUERY_BYTES`]; and at most
//! [`MAX_CACHED_TEXT_BYTES`] of text in all (a parsed document takes some 25 times its text),
//! so anyone may send queries without being able to make the server hold much.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError};
use sha2::{Digest, Sha256};

/// The longest query text kept in the cache. A longer one still runs when sent with its text,
/// it is only not remembered (Apollo Client then sends it in full each time). The standard
/// introspection query is about 2 KB; the SDK's largest document about 1.4 KB.
pub const MAX_PERSISTED_QUERY_BYTES: usize = 16 * 1024;

/// The most query text the cache keeps in all: the least recently used documents go first
/// past it. Every document the apps send together is some 50 KB of text.
pub const MAX_CACHED_TEXT_BYTES: usize = 2 * 1024 * 1024;

/// The code that tells a client to send the query's text with its hash.
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// The code that tells a client to stop sending hashes: the server keeps none.
pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";

/// Parsed documents by the SHA-256 of their text, least recently used evicted first.
pub struct DocumentCache {
    /// `None` when the cache is turned off (a capacity of 0).
    cache: Option<Mutex<Cache>>,
}

struct Cache {
    documents: lru::LruCache<String, Cached>,
    /// The length of all the cached documents' texts.
    text_bytes: usize,
    /// The most text kept, [`MAX_CACHED_TEXT_BYTES`] but in tests.
    max_text_bytes: usize,
}

struct Cached {
    document: Arc<ExecutableDocument>,
    text_bytes: usize,
}

impl Cache {
    fn get(&mut self, hash: &str) -> Option<Arc<ExecutableDocument>> {
        self.documents
            .get(hash)
            .map(|cached| cached.document.clone())
    }

    fn put(&mut self, hash: String, text_bytes: usize, document: Arc<ExecutableDocument>) {
        let cached = Cached {
            document,
            text_bytes,
        };
        self.text_bytes += text_bytes;
        if let Some((_, evicted)) = self.documents.push(hash, cached) {
            self.text_bytes -= evicted.text_bytes;
        }
        while self.text_bytes > self.max_text_bytes {
            let Some((_, evicted)) = self.documents.pop_lru() else {
                break;
            };
            self.text_bytes -= evicted.text_bytes;
        }
    }
}

/// Why a request's persisted query could not be used. Each is a GraphQL error with a code.
#[derive(Debug)]
pub struct PersistedQueryError {
    pub code: &'static str,
    pub message: String,
}

impl PersistedQueryError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        PersistedQueryError {
            code,
            message: message.into(),
        }
    }

    /// Whether Apollo's clients expect this error in a 200 response: they read the body of
    /// a successful response only, and these two make them change what they send.
    pub fn answered_with_ok(&self) -> bool {
        matches!(
            self.code,
            PERSISTED_QUERY_NOT_FOUND | PERSISTED_QUERY_NOT_SUPPORTED
        )
    }

    /// The error as a GraphQL error.
    pub fn into_server_error(self) -> ServerError {
        let mut err = ServerError::new(self.message, None);
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", self.code);
        err
    }
}

impl DocumentCache {
    /// A cache of at most `capacity` documents; 0 turns it, and persisted queries, off.
    pub fn new(capacity: usize) -> Self {
        Self::with_text_budget(capacity, MAX_CACHED_TEXT_BYTES)
    }

    fn with_text_budget(capacity: usize, max_text_bytes: usize) -> Self {
        DocumentCache {
            cache: NonZeroUsize::new(capacity).map(|cap| {
                Mutex::new(Cache {
                    documents: lru::LruCache::new(cap),
                    text_bytes: 0,
                    max_text_bytes,
                })
            }),
        }
    }

    /// Whether `request` names a persisted query (its text may be absent then).
    pub fn is_persisted(request: &Request) -> bool {
        request.extensions.contains_key("persistedQuery")
    }

    /// Gives the request its parsed document from the cache: by its `persistedQuery`
    /// extension's hash, or by its text. A hash sent with the text is checked against it; an
    /// unknown text is parsed and remembered. A text that does not parse is left for the
    /// schema, which reports it.
    pub fn resolve(&self, request: &mut Request) -> Result<(), PersistedQueryError> {
        let Some(extension) = request.extensions.get("persistedQuery") else {
            if let Some(cache) = &self.cache {
                let hash = hex_sha256(&request.query);
                share(cache, hash, request);
            }
            return Ok(());
        };
        let hash = requested_hash(extension)?;
        let Some(cache) = &self.cache else {
            return Err(PersistedQueryError::new(
                PERSISTED_QUERY_NOT_SUPPORTED,
                "PersistedQueryNotSupported: this server keeps no persisted queries; send \
                 the query's text",
            ));
        };
        if request.query.is_empty() {
            let Some(document) = lock(cache).get(&hash) else {
                return Err(PersistedQueryError::new(
                    PERSISTED_QUERY_NOT_FOUND,
                    "PersistedQueryNotFound",
                ));
            };
            request.set_shared_parsed_query(document);
            return Ok(());
        }
        let actual = hex_sha256(&request.query);
        if actual != hash {
            return Err(PersistedQueryError::new(
                "BAD_REQUEST",
                format!(
                    "provided sha does not match query: persistedQuery.sha256Hash must be the \
                     SHA-256 of the query's text ({actual})"
                ),
            ));
        }
        share(cache, hash, request);
        Ok(())
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.cache
            .as_ref()
            .map_or(0, |cache| lock(cache).documents.len())
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Gives the request the document of its text, `hash`: the cached one, or the text parsed
/// and kept (when it is short enough and parses).
fn share(cache: &Mutex<Cache>, hash: String, request: &mut Request) {
    if let Some(document) = lock(cache).get(&hash) {
        request.set_shared_parsed_query(document);
        return;
    }
    let text_bytes = request.query.len();
    if text_bytes > MAX_PERSISTED_QUERY_BYTES {
        return;
    }
    // Parsed outside the lock: a long parse does not hold up other requests' lookups.
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
        return;
    };
    let document = Arc::new(document);
    lock(cache).put(hash, text_bytes, document.clone());
    request.set_shared_parsed_query(document);
}

/// The cache stays usable after a panic elsewhere: it holds nothing a panic could leave half
/// written.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The lowercase hex hash from `{version: 1, sha256Hash}`.
fn requested_hash(extension: &async_graphql::Value) -> Result<String, PersistedQueryError> {
    use async_graphql::Value;
    let bad = |message: &str| PersistedQueryError::new("BAD_REQUEST", message);
    let Value::Object(fields) = extension else {
        return Err(bad(
            "extensions.persistedQuery must be {\"version\": 1, \"sha256Hash\": \"…\"}",
        ));
    };
    match fields.get("version") {
        Some(Value::Number(version)) if version.as_i64() == Some(1) => {}
        _ => return Err(bad("only version 1 of persistedQuery is supported")),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(bad(
            "persistedQuery.sha256Hash must be the SHA-256 of the query, in 64 hex digits",
        )),
    }
}

fn hex_sha256(text: &str) -> String {
    use std::fmt::Write;
    Sha256::digest(text.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, Object, Schema, Subscription};
    use futures_util::{Stream, StreamExt, stream};

    use super::*;

    impl DocumentCache {
        fn cached(&self, text: &str) -> Option<Arc<ExecutableDocument>> {
            lock(self.cache.as_ref()?).get(&hex_sha256(text))
        }
    }

    fn persisted(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::value!({ "version": 1, "sha256Hash": hash }),
        );
        request
    }

    const QUERY: &str = "{ me { id } }";

    #[test]
    fn an_unknown_hash_asks_for_the_text_and_the_text_registers_it() {
        let cache = DocumentCache::new(10);
        let hash = hex_sha256(QUERY);
        let err = cache.resolve(&mut persisted("", &hash)).unwrap_err();
        assert_eq!(err.code, PERSISTED_QUERY_NOT_FOUND);
        assert!(err.answered_with_ok());

        let mut request = persisted(QUERY, &hash.to_uppercase());
        cache.resolve(&mut request).unwrap();
        assert!(request.parsed_query().is_ok());
        assert_eq!(cache.len(), 1);

        let mut request = persisted("", &hash);
        cache.resolve(&mut request).unwrap();
        assert!(request.parsed_query().is_ok());
    }

    #[test]
    fn a_wrong_hash_is_refused_and_not_registered() {
        let cache = DocumentCache::new(10);
        let wrong = hex_sha256("{ other }");
        let err = cache.resolve(&mut persisted(QUERY, &wrong)).unwrap_err();
        assert_eq!(err.code, "BAD_REQUEST");
        assert!(!err.answered_with_ok());
        assert!(cache.is_empty());
        for hash in ["", "abc", &"z".repeat(64)] {
            let err = cache.resolve(&mut persisted(QUERY, hash)).unwrap_err();
            assert_eq!(err.code, "BAD_REQUEST", "{hash}");
        }
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = DocumentCache::new(2);
        for name in ["a", "b", "c"] {
            let query = format!("{{ {name} }}");
            cache
                .resolve(&mut persisted(&query, &hex_sha256(&query)))
                .unwrap();
        }
        assert_eq!(cache.len(), 2);
        // The least recently used went first.
        let err = cache
            .resolve(&mut persisted("", &hex_sha256("{ a }")))
            .unwrap_err();
        assert_eq!(err.code, PERSISTED_QUERY_NOT_FOUND);

        let long = format!("{{ {} }}", "a ".repeat(MAX_PERSISTED_QUERY_BYTES));
        let mut request = persisted(&long, &hex_sha256(&long));
        cache.resolve(&mut request).unwrap();
        assert!(
            cache
                .resolve(&mut persisted("", &hex_sha256(&long)))
                .is_err()
        );

        // Text that does not parse is left for the schema to report, and not kept.
        let broken = "{ me {";
        cache
            .resolve(&mut persisted(broken, &hex_sha256(broken)))
            .unwrap();
        assert!(
            cache
                .resolve(&mut persisted("", &hex_sha256(broken)))
                .is_err()
        );
    }

    #[test]
    fn turned_off_it_says_so() {
        let cache = DocumentCache::new(0);
        let err = cache
            .resolve(&mut persisted("", &hex_sha256(QUERY)))
            .unwrap_err();
        assert_eq!(err.code, PERSISTED_QUERY_NOT_SUPPORTED);
        // Requests without the extension are untouched.
        cache.resolve(&mut Request::new(QUERY)).unwrap();
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hex_sha256("{ value }"),
            "854174ebed716fe24fd6659c30290aecd9bc1d17dc4f47939a1848a1b8ed3c6b"
        );
    }

    #[test]
    fn requests_with_the_same_text_share_one_parsed_document() {
        let cache = DocumentCache::new(10);
        let mut first = Request::new(QUERY);
        let mut second = Request::new(QUERY);
        cache.resolve(&mut first).unwrap();
        cache.resolve(&mut second).unwrap();
        assert_eq!(cache.len(), 1);
        let first = first.parsed_query().unwrap() as *const ExecutableDocument;
        let second = second.parsed_query().unwrap() as *const ExecutableDocument;
        assert_eq!(first, second, "one parsed document for both");

        // A text sent plainly is known by its hash too.
        let mut by_hash = persisted("", &hex_sha256(QUERY));
        cache.resolve(&mut by_hash).unwrap();
        assert_eq!(by_hash.parsed_query().unwrap() as *const _, first);
    }

    #[test]
    fn the_cache_keeps_at_most_its_text_budget() {
        let budget = 10_000;
        let cache = DocumentCache::with_text_budget(1000, budget);
        let texts: Vec<String> = (0..30)
            .map(|i| format!("{{ a{i} {} }}", "x ".repeat(500)))
            .collect();
        let size = texts[0].len();
        for text in &texts {
            cache.resolve(&mut Request::new(text.as_str())).unwrap();
        }
        assert_eq!(cache.len(), budget / size);
        // The most recent stay, the oldest went.
        assert!(cache.cached(&texts[29]).is_some());
        assert!(cache.cached(&texts[0]).is_none());
    }

    struct Query;

    #[Object]
    impl Query {
        async fn name(&self) -> &str {
            "Ada"
        }

        async fn email(&self) -> &str {
            "ada@example.com"
        }
    }

    struct Subscription;

    #[Subscription]
    impl Subscription {
        async fn ticks(&self) -> impl Stream<Item = Tick> {
            stream::iter([Tick(1), Tick(2)]).chain(stream::pending())
        }
    }

    struct Tick(i32);

    #[Object]
    impl Tick {
        async fn value(&self) -> i32 {
            self.0
        }

        async fn double(&self) -> i32 {
            self.0 * 2
        }
    }

    #[tokio::test]
    async fn a_subscription_holds_the_shared_document_not_a_copy() {
        let schema = Schema::new(Query, EmptyMutation, Subscription);
        let cache = DocumentCache::new(10);
        let text = "subscription Ticks { ticks { ...T } } fragment T on Tick { value double }";
        let mut streams = Vec::new();
        for _ in 0..3 {
            let mut request = Request::new(text);
            cache.resolve(&mut request).unwrap();
            let mut stream = schema.execute_stream(request);
            let first = stream.next().await.unwrap();
            assert!(first.errors.is_empty(), "{:?}", first.errors);
            assert_eq!(
                first.data.into_json().unwrap(),
                serde_json::json!({"ticks": {"value": 1, "double": 2}})
            );
            streams.push(stream);
        }
        let document = cache.cached(text).unwrap();
        // The cache, this handle and each of the three streams (its operation and fragments).
        assert_eq!(Arc::strong_count(&document), 2 + 3 * 2);
        drop(streams);
        assert_eq!(Arc::strong_count(&document), 2);
    }

    #[tokio::test]
    async fn skip_and_include_follow_each_requests_variables() {
        let schema = Schema::new(Query, EmptyMutation, Subscription);
        let cache = DocumentCache::new(10);
        let text = "query Me($email: Boolean!) { name email @include(if: $email) }";
        for (email, expected) in [
            (
                true,
                serde_json::json!({"name": "Ada", "email": "ada@example.com"}),
            ),
            (false, serde_json::json!({"name": "Ada"})),
            (
                true,
                serde_json::json!({"name": "Ada", "email": "ada@example.com"}),
            ),
        ] {
            let mut request = Request::new(text).variables(async_graphql::Variables::from_json(
                serde_json::json!({ "email": email }),
            ));
            cache.resolve(&mut request).unwrap();
            let response = schema.execute(request).await;
            assert!(response.errors.is_empty(), "{:?}", response.errors);
            assert_eq!(response.data.into_json().unwrap(), expected);
        }
        // The cached document kept its directives: no request changed it for the others.
        let document = cache.cached(text).unwrap();
        assert_eq!(Arc::strong_count(&document), 2);
        let printed = format!("{:?}", document);
        assert!(printed.contains("include"));
    }

    #[tokio::test]
    async fn a_shared_document_still_passes_the_parse_time_checks() {
        let schema = Schema::build(Query, EmptyMutation, Subscription)
            .limit_recursive_depth(0)
            .finish();
        let cache = DocumentCache::new(10);
        let text = "subscription { ticks { value } }";
        for _ in 0..2 {
            let mut request = Request::new(text);
            cache.resolve(&mut request).unwrap();
            let response = schema.execute_stream(request).next().await.unwrap();
            assert_eq!(response.errors.len(), 1, "refused each time, shared or not");
        }
        assert!(cache.cached(text).is_some());
    }
}
