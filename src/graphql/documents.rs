//! Automatic persisted queries, as Apollo's clients speak them
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
//! A hit hands the request a copy of the parsed document. Measured once (release build, a
//! throwaway loop over async-graphql-parser 7.2.1): graphql-js's full introspection query
//! (2 KB) parses in 145 µs and copies in 3 µs; a 175-byte chat query parses in 28 µs and
//! copies in 0.7 µs; hashing either costs 0.1–1 µs.
//!
//! The cache is bounded twice: at most `capacity` documents, least recently used first out,
//! and only documents whose text is at most [`MAX_PERSISTED_QUERY_BYTES`], so anyone may
//! register queries without being able to make the server hold much.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, ServerError};
use sha2::{Digest, Sha256};

/// The longest query text kept in the cache. A longer one still runs when sent with its text,
/// it is only not remembered (Apollo Client then sends it in full each time). The standard
/// introspection query is about 2 KB; the apps' largest operation about 1 KB.
pub const MAX_PERSISTED_QUERY_BYTES: usize = 16 * 1024;

/// The code that tells a client to send the query's text with its hash.
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
/// The code that tells a client to stop sending hashes: the server keeps none.
pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";

/// Parsed documents by the SHA-256 of their text, least recently used evicted first.
pub struct PersistedQueries {
    /// `None` when persisted queries are turned off (a capacity of 0).
    cache: Option<Mutex<lru::LruCache<String, Arc<ExecutableDocument>>>>,
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

impl PersistedQueries {
    /// A cache of at most `capacity` documents; 0 turns persisted queries off.
    pub fn new(capacity: usize) -> Self {
        PersistedQueries {
            cache: NonZeroUsize::new(capacity).map(|cap| Mutex::new(lru::LruCache::new(cap))),
        }
    }

    /// Whether `request` names a persisted query (its text may be absent then).
    pub fn is_persisted(request: &Request) -> bool {
        request.extensions.contains_key("persistedQuery")
    }

    /// Resolves the request's `persistedQuery` extension, if it has one: a known hash gives the
    /// request its parsed document (and skips the parse); a hash sent with the text is checked
    /// against it and the parsed text remembered. A request without the extension is left as
    /// it is. A text that does not parse is left for the schema, which reports it.
    pub fn resolve(&self, request: &mut Request) -> Result<(), PersistedQueryError> {
        let Some(extension) = request.extensions.get("persistedQuery") else {
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
        let known = lock(cache).get(&hash).cloned();
        if request.query.is_empty() {
            let Some(document) = known else {
                return Err(PersistedQueryError::new(
                    PERSISTED_QUERY_NOT_FOUND,
                    "PersistedQueryNotFound",
                ));
            };
            request.set_parsed_query((*document).clone());
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
        if let Some(document) = known {
            request.set_parsed_query((*document).clone());
        } else if request.query.len() <= MAX_PERSISTED_QUERY_BYTES
            && let Ok(document) = async_graphql::parser::parse_query(&request.query)
        {
            lock(cache).put(hash, Arc::new(document.clone()));
            request.set_parsed_query(document);
        }
        Ok(())
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| lock(cache).len())
    }

    /// Whether no document is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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
    use super::*;

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
        let cache = PersistedQueries::new(10);
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
        let cache = PersistedQueries::new(10);
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
        let cache = PersistedQueries::new(2);
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
        let cache = PersistedQueries::new(0);
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
}
