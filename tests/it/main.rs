//! The one integration-test binary: the real server on an ephemeral port, spoken to over real
//! HTTP and WebSocket, on SQLite always and on Postgres when SWITCHBOARD_TEST_POSTGRES_URL is
//! set (CI sets it).

mod support;

mod accounts;
mod app;
mod auth;
mod canned;
mod chat_access;
mod chat_views;
mod chats;
mod cli;
mod coming_online;
mod embedding;
mod graphiql;
mod greetings;
mod hardening_data;
mod hardening_routing;
mod http;
mod perimeter;
mod push;
mod reports;
mod resume;
mod routing;
mod sdk;
mod sessions;
mod store;
mod visitors;
mod webpush;
mod websocket;
mod widget;
