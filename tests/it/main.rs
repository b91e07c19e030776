//! The one integration-test binary: the real server on an ephemeral port, spoken to over real
//! HTTP and WebSocket, on SQLite always and on Postgres when SWITCHBOARD_TEST_POSTGRES_URL is
//! set (CI sets it).

mod support;

mod accounts;
mod admin_cli;
mod apollo;
mod app;
mod archive;
mod auth;
mod canned;
mod chat_access;
mod chat_views;
mod chats;
mod cli;
mod cluster;
mod cluster_work;
mod coming_online;
mod customers;
mod email;
mod embedding;
mod files;
mod graphiql;
mod greetings;
mod hardening_data;
mod hardening_routing;
mod http;
mod legacy_websocket;
mod logs;
mod messenger;
mod metrics;
mod notes;
mod org_locks;
mod perimeter;
mod push;
mod reports;
mod resume;
mod routing;
mod s3;
mod sdk;
mod sdk_archive;
mod sessions;
mod store;
mod tags;
mod visitors;
mod webhooks;
mod webpush;
mod websocket;
mod widget;
