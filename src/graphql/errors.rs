//! Every error leaves with `extensions.code`. Use-case errors carry their own code; errors
//! async-graphql raises itself (parse, validation, limits, input coercion) get one here.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use std::sync::Arc;

use crate::error::Error;

/// The codes that mean the request as a whole was refused before anything ran.
pub const REQUEST_ERROR_CODES: &[&str] = &[
    "GRAPHQL_PARSE_FAILED",
    "GRAPHQL_VALIDATION_FAILED",
    "QUERY_TOO_COMPLEX",
];

/// A use-case error ready for GraphQL. It deliberately does not implement `Display`, so it
/// cannot fall into async-graphql's blanket conversion that would drop the code; `?` on a
/// use-case error inside a resolver comes here instead.
#[derive(Clone, Debug)]
pub struct ApiError(async_graphql::Error);

/// The result type of resolvers.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        if let Error::Internal(cause) = &err {
            tracing::error!(error = %cause, cause = ?cause, "internal error");
        }
        let mut gql = async_graphql::Error::new(err.to_string());
        let mut extensions = ErrorExtensionValues::default();
        extensions.set("code", err.code());
        if let Error::RateLimited {
            retry_after_secs, ..
        } = &err
        {
            extensions.set("retryAfterSeconds", *retry_after_secs);
        }
        gql.extensions = Some(extensions);
        ApiError(gql)
    }
}

impl From<crate::store::DbError> for ApiError {
    fn from(err: crate::store::DbError) -> Self {
        Error::from(err).into()
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(err: ApiError) -> Self {
        err.0
    }
}

impl ApiError {
    /// The GraphQL error, for transports that report errors outside a response.
    pub fn into_server_error(self) -> ServerError {
        self.0.into_server_error(Default::default())
    }
}

fn set_code(mut err: ServerError, code: &str) -> ServerError {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    err
}

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

fn limit_or(err: &ServerError, otherwise: &'static str) -> &'static str {
    let message = err.message.as_str();
    if message.contains("too deep")
        || message.contains("too complex")
        || message.contains("depth")
        || message.contains("directives")
    {
        "QUERY_TOO_COMPLEX"
    } else {
        otherwise
    }
}

/// Gives every error of a response a code, and returns the codes in order (for metrics and
/// for choosing the HTTP status). Errors without one by now come from async-graphql: with a
/// path, an argument failed to convert (BAD_USER_INPUT); without, the operation could not be
/// chosen (GRAPHQL_VALIDATION_FAILED).
pub fn finalize_errors(response: &mut Response) -> Vec<String> {
    let errors = std::mem::take(&mut response.errors);
    response.errors = errors
        .into_iter()
        .map(|err| {
            if has_code(&err) {
                err
            } else if err.path.is_empty() {
                set_code(err, "GRAPHQL_VALIDATION_FAILED")
            } else {
                set_code(err, "BAD_USER_INPUT")
            }
        })
        .collect();
    response
        .errors
        .iter()
        .map(|err| {
            err.extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .map(|code| match code {
                    async_graphql::Value::String(code) => code.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        })
        .collect()
}

/// Tags parse and validation errors with their codes, where async-graphql raises them.
pub(super) struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|err| {
            if has_code(&err) {
                // Raised by a later extension (limits, input checks) with its own code.
                return err;
            }
            let code = limit_or(&err, "GRAPHQL_PARSE_FAILED");
            set_code(err, code)
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|err| {
                    let code = limit_or(&err, "GRAPHQL_VALIDATION_FAILED");
                    set_code(err, code)
                })
                .collect()
        })
    }
}
