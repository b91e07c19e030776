//! The one error type apps see. Each variant says what the app should do about it.

/// What went wrong, in a form an app can act on.
///
/// The text is `msg`, not `message`: Kotlin exceptions already have a `message` property, and
/// a field of that name would make the generated Kotlin fail to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SdkError {
    /// The session is gone (signed out, expired, or revoked): show the login screen.
    #[error("not signed in: {msg}")]
    Unauthenticated { msg: String },
    /// The server could not be reached or did not answer: try again later. Messages sent
    /// through `send_message` are retried by the SDK itself.
    #[error("network: {msg}")]
    Network { msg: String },
    /// The server (or the SDK, for input it can check itself) refused the request. `code` is
    /// the server's `extensions.code`: `BAD_USER_INPUT`, `NOT_FOUND`, `FORBIDDEN`,
    /// `CONFLICT`, `RATE_LIMITED`, `INTERNAL`, ...
    #[error("{code}: {msg}")]
    Server { code: String, msg: String },
}

impl SdkError {
    pub(crate) fn bad_input(message: impl Into<String>) -> SdkError {
        SdkError::Server {
            code: "BAD_USER_INPUT".into(),
            msg: message.into(),
        }
    }

    pub(crate) fn network(message: impl std::fmt::Display) -> SdkError {
        SdkError::Network {
            msg: message.to_string(),
        }
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> SdkError {
        SdkError::Unauthenticated {
            msg: message.into(),
        }
    }

    /// Whether sending the same request again later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            SdkError::Network { .. } => true,
            SdkError::Unauthenticated { .. } => false,
            SdkError::Server { code, .. } => code == "RATE_LIMITED" || code == "INTERNAL",
        }
    }
}

pub type Result<T, E = SdkError> = std::result::Result<T, E>;
