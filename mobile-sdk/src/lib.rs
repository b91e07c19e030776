//! The Switchboard agent SDK: everything an agent app needs from a Switchboard server, for
//! Rust and, through UniFFI, Swift, Kotlin and Python.
//!
//! A [`Client`] signs an agent in ([`Client::login`], or [`Client::restore`] with a session
//! the app kept through its [`SessionStore`]), keeps the access token fresh, runs the chat
//! operations, delivers messages through a persistent outbox ([`Client::send_message`]), and
//! streams the agent's events ([`Client::subscribe`]). [`parse_push`] reads the data of the
//! server's pushes. Every failure is an [`SdkError`].

uniffi::setup_scaffolding!();

mod client;
mod error;
mod models;
mod ops;
mod outbox;
mod push;
mod runtime;
mod session;
mod stream;
mod transport;

pub use client::{Client, ClientConfig};
pub use error::SdkError;
pub use models::*;
pub use outbox::{OutgoingMessage, OutgoingState};
pub use push::{PushNotification, parse_push};
pub use session::{Session, SessionStore};
pub use stream::{AgentEvent, ConnectionState, EventListener, TaskHandle};
