//! The one error type of the use cases. Each variant is a kind a client can act on; the GraphQL
//! layer turns the kind into `extensions.code` and the message into the error's message.

use crate::domain::ValidationError;
use crate::store::DbError;

/// What went wrong in a use case.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials: the client should sign in (again).
    #[error("{0}")]
    Unauthenticated(String),
    /// Signed in, but the role or the resource's owner does not allow it.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing in the caller's organization. Other organizations' things are "not found"
    /// too, so ids from elsewhere reveal nothing.
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule; the message says which.
    #[error("{0}")]
    BadUserInput(String),
    /// The input clashes with what exists (a taken email, a duplicate name).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again after the given number of seconds.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// Nobody accepts chats right now: leave an offline message instead.
    #[error("{0}")]
    AgentsOffline(String),
    /// The visitor (or their address) is banned from chatting with the organization.
    #[error("{0}")]
    Banned(String),
    /// A Messenger customer last wrote too long ago for Facebook to take an agent's reply.
    #[error("{0}")]
    MessengerWindowClosed(String),
    /// Sending email needs an SMTP server, and this server has none configured.
    #[error("{0}")]
    EmailNotConfigured(String),
    /// A fault on our side. The cause is logged, never shown to the client.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The machine-readable code clients switch on (DESIGN.md's list).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::BadUserInput(_) => "BAD_USER_INPUT",
            Error::Conflict(_) => "CONFLICT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::AgentsOffline(_) => "AGENTS_OFFLINE",
            Error::Banned(_) => "BANNED",
            Error::MessengerWindowClosed(_) => "MESSENGER_WINDOW_CLOSED",
            Error::EmailNotConfigured(_) => "EMAIL_NOT_CONFIGURED",
            Error::Internal(_) => "INTERNAL",
        }
    }

    /// Wraps any fault of ours.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(cause.into())
    }

    /// The error for a role that may not do something.
    pub fn forbidden(what: &str) -> Self {
        Error::Forbidden(format!("your role does not allow you to {what}"))
    }
}

impl From<ValidationError> for Error {
    fn from(err: ValidationError) -> Self {
        Error::BadUserInput(err.0)
    }
}

impl From<DbError> for Error {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => Error::NotFound("not found".into()),
            DbError::Conflict(what) => Error::Conflict(what),
            DbError::LastActiveOwner => Error::BadUserInput(DbError::LastActiveOwner.to_string()),
            DbError::Other(err) => Error::internal(err),
        }
    }
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;
