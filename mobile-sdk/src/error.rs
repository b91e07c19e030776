//! The one error type apps see. Each variant says what the app should do about it, and
//! stands for one of the server's `extensions.code` values (see the server's `src/error.rs`),
//! so apps switch on the type, never on text.

/// What went wrong, in a form an app can act on.
///
/// The text is `msg`, not `message`: Kotlin exceptions already have a `message` property, and
/// a field of that name would make the generated Kotlin fail to compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum SdkError {
    /// The session is gone (signed out, expired, or revoked) or the password was wrong: show
    /// the login screen. (`UNAUTHENTICATED`)
    #[error("not signed in: {msg}")]
    Unauthenticated { msg: String },
    /// Signed in, but the agent's role or the chat's owner does not allow it. (`FORBIDDEN`)
    #[error("forbidden: {msg}")]
    Forbidden { msg: String },
    /// No such thing for this agent: gone, or another organization's. (`NOT_FOUND`)
    #[error("not found: {msg}")]
    NotFound { msg: String },
    /// The input breaks a rule; `msg` says which, and may be shown. Input the SDK can check
    /// itself (an empty message, a malformed server URL) fails this way before any request.
    /// (`BAD_USER_INPUT`)
    #[error("bad input: {msg}")]
    BadInput { msg: String },
    /// The request clashes with what is there: someone else took the chat, a taken name, a
    /// visitor who already left. (`CONFLICT`)
    #[error("conflict: {msg}")]
    Conflict { msg: String },
    /// Too many attempts: try again in `retry_after_secs` seconds. (`RATE_LIMITED`, or HTTP
    /// 429 with `Retry-After`)
    #[error("rate limited, retry in {retry_after_secs} s: {msg}")]
    RateLimited { retry_after_secs: u64, msg: String },
    /// Nobody accepts chats right now. (`AGENTS_OFFLINE`)
    #[error("agents offline: {msg}")]
    AgentsOffline { msg: String },
    /// The customer is banned from chatting with the organization. (`BANNED`)
    #[error("banned: {msg}")]
    Banned { msg: String },
    /// A Messenger customer last wrote too long ago for Facebook to take a reply.
    /// (`MESSENGER_WINDOW_CLOSED`)
    #[error("messenger window closed: {msg}")]
    MessengerWindowClosed { msg: String },
    /// Sending email needs an SMTP server, and the server has none. (`EMAIL_NOT_CONFIGURED`)
    #[error("email not configured: {msg}")]
    EmailNotConfigured { msg: String },
    /// The file is larger than the organization accepts (`FileSettings.max_file_bytes`).
    /// (`FILE_TOO_LARGE`)
    #[error("file too large: {msg}")]
    FileTooLarge { msg: String },
    /// The organization does not accept this type of file (`FileSettings.allowed_types`).
    /// (`FILE_TYPE_NOT_ALLOWED`)
    #[error("file type not allowed: {msg}")]
    FileTypeNotAllowed { msg: String },
    /// The server could not be reached or did not answer: try again later. Messages sent
    /// through `send_message` are retried by the SDK itself. (`REQUEST_TIMEOUT` too)
    #[error("network: {msg}")]
    Network { msg: String },
    /// The server did not understand the SDK's request: a server older or newer than this SDK
    /// expects. Retrying does not help; update the app or the server. (`GRAPHQL_PARSE_FAILED`,
    /// `GRAPHQL_VALIDATION_FAILED`, `QUERY_TOO_COMPLEX`, `BAD_REQUEST`, `PAYLOAD_TOO_LARGE`)
    #[error("incompatible server: {msg}")]
    Incompatible { msg: String },
    /// The SDK could not write its files in `ClientConfig.data_dir`.
    #[error("storage: {msg}")]
    Storage { msg: String },
    /// A fault on the server's side (`INTERNAL`), an answer that is not GraphQL, or a code
    /// this SDK does not know (named in `msg`): try again later.
    #[error("server: {msg}")]
    Server { msg: String },
}

/// What kind of error an `SdkError` is, without its text: kept with a message that failed
/// (`OutgoingMessage.error_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ErrorCode {
    Unauthenticated,
    Forbidden,
    NotFound,
    BadInput,
    Conflict,
    RateLimited,
    AgentsOffline,
    Banned,
    MessengerWindowClosed,
    EmailNotConfigured,
    FileTooLarge,
    FileTypeNotAllowed,
    Network,
    Incompatible,
    Storage,
    Server,
}

/// The wait when a rate limit names none (an HTTP 429 without `Retry-After`).
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

impl SdkError {
    /// The error for the server's `extensions.code`, its message and, for `RATE_LIMITED`, its
    /// `extensions.retryAfterSeconds`.
    pub(crate) fn from_code(code: &str, msg: String, retry_after_secs: Option<u64>) -> SdkError {
        match code {
            "UNAUTHENTICATED" => SdkError::Unauthenticated { msg },
            "FORBIDDEN" => SdkError::Forbidden { msg },
            "NOT_FOUND" => SdkError::NotFound { msg },
            "BAD_USER_INPUT" => SdkError::BadInput { msg },
            "CONFLICT" => SdkError::Conflict { msg },
            "RATE_LIMITED" => SdkError::RateLimited {
                retry_after_secs: retry_after_secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS),
                msg,
            },
            "AGENTS_OFFLINE" => SdkError::AgentsOffline { msg },
            "BANNED" => SdkError::Banned { msg },
            "MESSENGER_WINDOW_CLOSED" => SdkError::MessengerWindowClosed { msg },
            "EMAIL_NOT_CONFIGURED" => SdkError::EmailNotConfigured { msg },
            "FILE_TOO_LARGE" => SdkError::FileTooLarge { msg },
            "FILE_TYPE_NOT_ALLOWED" => SdkError::FileTypeNotAllowed { msg },
            "REQUEST_TIMEOUT" => SdkError::Network { msg },
            "GRAPHQL_PARSE_FAILED"
            | "GRAPHQL_VALIDATION_FAILED"
            | "QUERY_TOO_COMPLEX"
            | "BAD_REQUEST"
            | "PAYLOAD_TOO_LARGE" => SdkError::Incompatible {
                msg: format!("{code}: {msg}"),
            },
            "INTERNAL" => SdkError::Server { msg },
            other => SdkError::Server {
                msg: format!("{other}: {msg}"),
            },
        }
    }

    /// An HTTP 429, with the wait its `Retry-After` header gives in seconds.
    pub(crate) fn too_many_requests(retry_after: Option<&str>) -> SdkError {
        let retry_after_secs = retry_after
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(DEFAULT_RETRY_AFTER_SECS);
        SdkError::RateLimited {
            retry_after_secs,
            msg: "too many requests".into(),
        }
    }

    pub(crate) fn bad_input(message: impl Into<String>) -> SdkError {
        SdkError::BadInput {
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

    pub(crate) fn server(message: impl Into<String>) -> SdkError {
        SdkError::Server {
            msg: message.into(),
        }
    }

    /// What kind of error this is.
    pub fn code(&self) -> ErrorCode {
        match self {
            SdkError::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            SdkError::Forbidden { .. } => ErrorCode::Forbidden,
            SdkError::NotFound { .. } => ErrorCode::NotFound,
            SdkError::BadInput { .. } => ErrorCode::BadInput,
            SdkError::Conflict { .. } => ErrorCode::Conflict,
            SdkError::RateLimited { .. } => ErrorCode::RateLimited,
            SdkError::AgentsOffline { .. } => ErrorCode::AgentsOffline,
            SdkError::Banned { .. } => ErrorCode::Banned,
            SdkError::MessengerWindowClosed { .. } => ErrorCode::MessengerWindowClosed,
            SdkError::EmailNotConfigured { .. } => ErrorCode::EmailNotConfigured,
            SdkError::FileTooLarge { .. } => ErrorCode::FileTooLarge,
            SdkError::FileTypeNotAllowed { .. } => ErrorCode::FileTypeNotAllowed,
            SdkError::Network { .. } => ErrorCode::Network,
            SdkError::Incompatible { .. } => ErrorCode::Incompatible,
            SdkError::Storage { .. } => ErrorCode::Storage,
            SdkError::Server { .. } => ErrorCode::Server,
        }
    }

    /// The text, without the kind.
    pub fn msg(&self) -> &str {
        match self {
            SdkError::Unauthenticated { msg }
            | SdkError::Forbidden { msg }
            | SdkError::NotFound { msg }
            | SdkError::BadInput { msg }
            | SdkError::Conflict { msg }
            | SdkError::RateLimited { msg, .. }
            | SdkError::AgentsOffline { msg }
            | SdkError::Banned { msg }
            | SdkError::MessengerWindowClosed { msg }
            | SdkError::EmailNotConfigured { msg }
            | SdkError::FileTooLarge { msg }
            | SdkError::FileTypeNotAllowed { msg }
            | SdkError::Network { msg }
            | SdkError::Incompatible { msg }
            | SdkError::Storage { msg }
            | SdkError::Server { msg } => msg,
        }
    }

    /// Whether sending the same request again later may succeed.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            SdkError::Network { .. } | SdkError::RateLimited { .. } | SdkError::Server { .. }
        )
    }
}

impl ErrorCode {
    /// The name kept in the outbox file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::BadInput => "BAD_USER_INPUT",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::AgentsOffline => "AGENTS_OFFLINE",
            ErrorCode::Banned => "BANNED",
            ErrorCode::MessengerWindowClosed => "MESSENGER_WINDOW_CLOSED",
            ErrorCode::EmailNotConfigured => "EMAIL_NOT_CONFIGURED",
            ErrorCode::FileTooLarge => "FILE_TOO_LARGE",
            ErrorCode::FileTypeNotAllowed => "FILE_TYPE_NOT_ALLOWED",
            ErrorCode::Network => "NETWORK",
            ErrorCode::Incompatible => "INCOMPATIBLE",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Server => "INTERNAL",
        }
    }

    /// Reads a name kept in the outbox file (by this version or an earlier one, which kept
    /// the server's codes as they came).
    pub(crate) fn parse(text: &str) -> ErrorCode {
        match text {
            "NETWORK" => ErrorCode::Network,
            "INCOMPATIBLE" => ErrorCode::Incompatible,
            "STORAGE" => ErrorCode::Storage,
            server => SdkError::from_code(server, String::new(), None).code(),
        }
    }
}

pub type Result<T, E = SdkError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_code_has_its_variant() {
        let cases = [
            ("UNAUTHENTICATED", ErrorCode::Unauthenticated),
            ("FORBIDDEN", ErrorCode::Forbidden),
            ("NOT_FOUND", ErrorCode::NotFound),
            ("BAD_USER_INPUT", ErrorCode::BadInput),
            ("CONFLICT", ErrorCode::Conflict),
            ("RATE_LIMITED", ErrorCode::RateLimited),
            ("AGENTS_OFFLINE", ErrorCode::AgentsOffline),
            ("BANNED", ErrorCode::Banned),
            ("MESSENGER_WINDOW_CLOSED", ErrorCode::MessengerWindowClosed),
            ("EMAIL_NOT_CONFIGURED", ErrorCode::EmailNotConfigured),
            ("FILE_TOO_LARGE", ErrorCode::FileTooLarge),
            ("FILE_TYPE_NOT_ALLOWED", ErrorCode::FileTypeNotAllowed),
            ("REQUEST_TIMEOUT", ErrorCode::Network),
            ("GRAPHQL_PARSE_FAILED", ErrorCode::Incompatible),
            ("GRAPHQL_VALIDATION_FAILED", ErrorCode::Incompatible),
            ("QUERY_TOO_COMPLEX", ErrorCode::Incompatible),
            ("BAD_REQUEST", ErrorCode::Incompatible),
            ("PAYLOAD_TOO_LARGE", ErrorCode::Incompatible),
            ("INTERNAL", ErrorCode::Server),
            ("SOMETHING_NEWER", ErrorCode::Server),
        ];
        for (code, expected) in cases {
            let err = SdkError::from_code(code, "the text".into(), None);
            assert_eq!(err.code(), expected, "{code}");
            assert!(err.msg().ends_with("the text"), "{code}: {err:?}");
        }
        // A code this SDK does not know keeps its name in the text.
        let newer = SdkError::from_code("SOMETHING_NEWER", "x".into(), None);
        assert_eq!(newer.msg(), "SOMETHING_NEWER: x");
    }

    #[test]
    fn a_rate_limit_carries_its_delay() {
        assert_eq!(
            SdkError::from_code("RATE_LIMITED", "slow down".into(), Some(42)),
            SdkError::RateLimited {
                retry_after_secs: 42,
                msg: "slow down".into()
            }
        );
        let without = SdkError::from_code("RATE_LIMITED", "slow down".into(), None);
        assert!(matches!(
            without,
            SdkError::RateLimited {
                retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                ..
            }
        ));
        assert!(matches!(
            SdkError::too_many_requests(Some(" 7 ")),
            SdkError::RateLimited {
                retry_after_secs: 7,
                ..
            }
        ));
        assert!(matches!(
            SdkError::too_many_requests(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            SdkError::RateLimited {
                retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
                ..
            }
        ));
    }

    #[test]
    fn codes_kept_in_the_outbox_read_back() {
        for code in [
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::BadInput,
            ErrorCode::Conflict,
            ErrorCode::RateLimited,
            ErrorCode::AgentsOffline,
            ErrorCode::Banned,
            ErrorCode::MessengerWindowClosed,
            ErrorCode::EmailNotConfigured,
            ErrorCode::FileTooLarge,
            ErrorCode::FileTypeNotAllowed,
            ErrorCode::Network,
            ErrorCode::Incompatible,
            ErrorCode::Storage,
            ErrorCode::Server,
        ] {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("GRAPHQL_PARSE_FAILED"),
            ErrorCode::Incompatible
        );
    }

    #[test]
    fn only_what_may_pass_is_retried() {
        assert!(SdkError::network("down").is_transient());
        assert!(SdkError::server("oops").is_transient());
        assert!(SdkError::too_many_requests(None).is_transient());
        for code in [
            "NOT_FOUND",
            "FORBIDDEN",
            "BAD_USER_INPUT",
            "CONFLICT",
            "BAD_REQUEST",
        ] {
            assert!(!SdkError::from_code(code, String::new(), None).is_transient());
        }
    }
}
