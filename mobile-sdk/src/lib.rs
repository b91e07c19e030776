//! The Switchboard agent SDK: everything an agent app needs from a Switchboard server, for
//! Rust and, through UniFFI, Swift, Kotlin and Python.
//!
//! A [`Client`] signs an agent in ([`Client::login`], or [`Client::restore`] with a session
//! the app kept through its [`SessionStore`]), keeps the access token fresh, runs the chat
//! operations, delivers messages through a persistent outbox ([`Client::send_message`]), and
//! streams the agent's events ([`Client::subscribe`]), one chat's events
//! ([`Client::chat_events`]) and the visitors on the site ([`Client::watch_visitors`]). [`parse_push`] reads the data of the server's pushes. Every
//! failure is an [`SdkError`]. [`set_logger`] hands the SDK's logs to the app's logger. Python
//! programs register [`shutdown`] with `atexit`.
//!
//! Inside the crate each module uses only those after it: `client`, `chat_events`, `visitors`,
//! `stream`, `shared`, `events`, `outbox`, `session`, `push`, `models`, `transport`, `tls`,
//! `ops`, `runtime`, `logging`, `error`.

uniffi::setup_scaffolding!();

mod chat_events;
mod client;
mod error;
mod events;
mod logging;
mod models;
mod ops;
mod outbox;
mod push;
mod runtime;
mod session;
mod shared;
mod stream;
mod tls;
mod transport;
mod visitors;

pub use chat_events::{ChatEvent, ChatEventListener};
pub use client::{Client, ClientConfig};
pub use error::{ErrorCode, SdkError};
pub use events::{AgentEvent, ConnectionState, EventListener, TaskHandle};
pub use logging::{LogLevel, LogListener, LogRecord, remove_logger, set_logger};
pub use models::*;
pub use outbox::{OutgoingMessage, OutgoingState};
pub use push::{PushNotification, parse_push};
pub use runtime::shutdown;
pub use session::{Session, SessionStore};
pub use visitors::{Greeting, Visitor, VisitorState, VisitorsListener};

#[cfg(test)]
mod tests {
    /// The modules in the order of the crate doc: each may use only those after it.
    const LAYERS: [&str; 16] = [
        "client",
        "chat_events",
        "visitors",
        "stream",
        "shared",
        "events",
        "outbox",
        "session",
        "push",
        "models",
        "transport",
        "tls",
        "ops",
        "runtime",
        "logging",
        "error",
    ];

    #[test]
    fn modules_depend_one_way() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let module = path.file_stem().unwrap().to_str().unwrap();
            assert!(
                module == "lib" || LAYERS.contains(&module),
                "{module}.rs has no place in LAYERS"
            );
        }
        for (rank, module) in LAYERS.iter().enumerate() {
            let source = std::fs::read_to_string(src.join(format!("{module}.rs"))).unwrap();
            for path in source.split("crate::").skip(1) {
                let used: String = path
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(used_rank) = LAYERS.iter().position(|m| *m == used) {
                    assert!(
                        used_rank > rank,
                        "{module} uses {used}, which comes before it"
                    );
                }
            }
        }
    }
}
