//! Configuration: flags and environment variables (every flag has one), validated at start-up
//! so a mistake ends the process with one line that says what is wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};

/// Everything the server can be told. Each field documents its variable in `--help`, README
/// and `.env.sample`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database and the generated JWT secret.
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL: postgres://… selects Postgres, sqlite:… a SQLite file elsewhere than the
    /// data directory. Unset: SQLite at <data dir>/switchboard.db.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Most connections to Postgres per server node.
    #[arg(
        long,
        env = "SWITCHBOARD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 20
    )]
    pub database_max_connections: u32,

    /// SQLite's durability: `normal` (a power loss may undo the last commits, never corrupt
    /// the file) or `full` (every commit is on disk before it is acknowledged, at the cost of
    /// a sync per commit). Postgres follows its own `synchronous_commit`.
    #[arg(
        long,
        env = "SWITCHBOARD_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value = "normal"
    )]
    pub sqlite_synchronous: crate::store::sqlite::Synchronous,

    /// Secret that signs access tokens (at least 32 characters). Unset: generated once and
    /// kept in <data dir>/jwt-secret. Every node of a cluster needs the same one.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Whether anyone may create an organization with the signUp mutation.
    #[arg(long, env = "SWITCHBOARD_ALLOW_SIGNUP", default_value_t = false, action = ArgAction::Set)]
    pub allow_signup: bool,

    /// Email of the owner created on an empty database.
    #[arg(
        long,
        env = "SWITCHBOARD_BOOTSTRAP_OWNER_EMAIL",
        default_value = "owner@example.com"
    )]
    pub bootstrap_owner_email: String,

    /// Password of the owner created on an empty database. Unset: generated and printed once.
    #[arg(
        long,
        env = "SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD",
        hide_env_values = true
    )]
    pub bootstrap_owner_password: Option<String>,

    /// Name of the organization created on an empty database.
    #[arg(
        long,
        env = "SWITCHBOARD_BOOTSTRAP_ORGANIZATION",
        default_value = "My Company"
    )]
    pub bootstrap_organization: String,

    /// How long an access token is valid (e.g. 15m). Apps refresh it with their refresh token.
    #[arg(long, env = "SWITCHBOARD_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// How long an unused refresh token stays valid (e.g. 30d).
    #[arg(long, env = "SWITCHBOARD_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,

    /// Largest request body accepted on /graphql, in bytes; also the largest WebSocket message.
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,

    /// Time a client has to send a request's headers, from when it connects or starts the
    /// request; a slower client (slowloris) is disconnected.
    #[arg(long, env = "SWITCHBOARD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Time a client has to send a request's body; a slower one gets 408 and is disconnected.
    #[arg(long, env = "SWITCHBOARD_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// How long a kept-alive HTTP connection may sit unused before it is closed. WebSockets are
    /// not affected: they have SWITCHBOARD_WS_PING_INTERVAL.
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Most connections (HTTP and WebSocket) open at once from one client address; 0: no cap.
    /// Not applied behind SWITCHBOARD_TRUSTED_PROXIES, where every connection comes from a proxy.
    #[arg(
        long,
        env = "SWITCHBOARD_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// Most connections open at once. Unset: the open-file limit (raised to its hard limit at
    /// start) minus a reserve for the database, pushes and health checks. A larger value is
    /// lowered to that.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Free space the SQLite database's filesystem must have for /readyz to say ready (e.g.
    /// 64MB, 1GB), so a filling disk is reported before writes fail.
    #[arg(long, env = "SWITCHBOARD_MIN_FREE_DISK", default_value = "64MB", value_parser = parse_bytes)]
    pub min_free_disk: u64,

    /// How long an outbox worker (push, webhooks, Messenger, email) may go without taking
    /// jobs while some are due before /readyz says not ready. A working one looks every second.
    #[arg(long, env = "SWITCHBOARD_OUTBOX_STALLED_AFTER", default_value = "60s", value_parser = parse_duration)]
    pub outbox_stalled_after: Duration,

    /// Deepest nesting of fields a query may have.
    #[arg(long, env = "SWITCHBOARD_MAX_QUERY_DEPTH", default_value_t = 12)]
    pub max_query_depth: usize,

    /// Highest complexity a query may have: one per field selected, a list's items counted
    /// as many times as its page size (`first`, `last`) allows, or 10 times without one.
    #[arg(long, env = "SWITCHBOARD_MAX_QUERY_COMPLEXITY", default_value_t = 4000)]
    pub max_query_complexity: usize,

    /// Most aliased fields one operation may have: each alias repeats a field's whole work.
    #[arg(long, env = "SWITCHBOARD_MAX_QUERY_ALIASES", default_value_t = 30)]
    pub max_query_aliases: usize,

    /// Most parsed documents kept, shared by all requests with the same text and by Apollo's
    /// automatic persisted queries, least recently used evicted first; 0 keeps none and turns
    /// persisted queries off (clients are told PERSISTED_QUERY_NOT_SUPPORTED).
    #[arg(long, env = "SWITCHBOARD_PERSISTED_QUERIES", default_value_t = 1000)]
    pub persisted_queries: usize,

    /// How long a WebSocket may stay open without sending connection_init (closed with 4408).
    #[arg(long, env = "SWITCHBOARD_WS_INIT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub ws_init_timeout: Duration,

    /// How often idle WebSockets are pinged; a connection silent for two intervals is dropped.
    #[arg(long, env = "SWITCHBOARD_WS_PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// How often clients of the legacy graphql-ws subprotocol (subscriptions-transport-ws: Apollo
    /// iOS and Apollo Kotlin by default) get a `ka` keep-alive. Well under the 30 s after which
    /// subscriptions-transport-ws's client gives up on a silent server.
    #[arg(long, env = "SWITCHBOARD_WS_KEEP_ALIVE_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub ws_keep_alive_interval: Duration,

    /// Most subscriptions one WebSocket may run at once.
    #[arg(long, env = "SWITCHBOARD_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// The least time between two passes of the chat timers (attention, auto-transfer,
    /// auto-close); they run at the next deadline.
    #[arg(long, env = "SWITCHBOARD_TIMER_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub timer_interval: Duration,

    /// The least time between two updates of an agent's visitorsChanged subscription: changes
    /// on the site gather for this long and go out as one update.
    #[arg(long, env = "SWITCHBOARD_VISITORS_COALESCE", default_value = "2s", value_parser = parse_duration)]
    pub visitors_coalesce: Duration,

    /// How long a visitor whose last page closed still counts as on the site, so a reload or
    /// the next page does not make them leave and arrive again.
    #[arg(long, env = "SWITCHBOARD_VISITOR_LEAVE_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub visitor_leave_grace: Duration,

    /// How often greeting rules look at the visitors on the site whose time on a page has
    /// come (and departures past their grace period are removed).
    #[arg(long, env = "SWITCHBOARD_GREETING_RULES_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub greeting_rules_interval: Duration,

    /// With several nodes (NATS), how often each node lists the visitors whose pages it holds
    /// for the others. A node that dies takes its visitors off the others' lists after three
    /// periods without a word (plus a greeting-rules interval).
    #[arg(long, env = "SWITCHBOARD_VISITORS_HEARTBEAT", default_value = "5s", value_parser = parse_duration)]
    pub visitors_heartbeat: Duration,

    /// Visitor sessions one client address may start per minute (the widget starts one per
    /// page load of a new visitor).
    #[arg(
        long,
        env = "SWITCHBOARD_VISITOR_SESSIONS_PER_MINUTE",
        default_value_t = 60
    )]
    pub visitor_sessions_per_minute: u32,

    /// Path to a Firebase service-account JSON (project_id, client_email, private_key,
    /// token_uri): enables pushes to Android devices through FCM.
    #[arg(long, env = "SWITCHBOARD_FCM_SERVICE_ACCOUNT")]
    pub fcm_service_account: Option<PathBuf>,

    /// Base URL of the FCM HTTP v1 API.
    #[arg(
        long,
        env = "SWITCHBOARD_FCM_ENDPOINT",
        default_value = "https://fcm.googleapis.com"
    )]
    pub fcm_endpoint: String,

    /// Path to the APNs auth key (.p8): enables pushes to iOS devices. Needs the key and team id.
    #[arg(long, env = "SWITCHBOARD_APNS_KEY_PATH")]
    pub apns_key_path: Option<PathBuf>,

    /// The APNs key's id (10 characters, from the Apple developer account).
    #[arg(long, env = "SWITCHBOARD_APNS_KEY_ID")]
    pub apns_key_id: Option<String>,

    /// The Apple developer team id.
    #[arg(long, env = "SWITCHBOARD_APNS_TEAM_ID")]
    pub apns_team_id: Option<String>,

    /// Path to the VAPID private key that signs Web Push requests: PEM (PKCS#8 or SEC1) or
    /// the base64url of the 32-byte P-256 key. Unset: generated once and kept in
    /// <data dir>/vapid-private-key. Every node of a cluster needs the same one, and browsers
    /// subscribed with the old key stop receiving pushes when it changes.
    #[arg(long, env = "SWITCHBOARD_VAPID_PRIVATE_KEY_PATH")]
    pub vapid_private_key_path: Option<PathBuf>,

    /// How push services reach whoever runs this server (VAPID `sub`): a mailto: or https:
    /// URL. Unset: mailto: and SWITCHBOARD_BOOTSTRAP_OWNER_EMAIL.
    #[arg(long, env = "SWITCHBOARD_VAPID_SUBJECT")]
    pub vapid_subject: Option<String>,

    /// Whether browsers may register Web Push endpoints over plain http or at loopback and
    /// private addresses: for tests and a push service on your own network. Off, the server
    /// posts only to public https push services.
    #[arg(long, env = "SWITCHBOARD_WEB_PUSH_ALLOW_LOCAL", default_value_t = false, action = ArgAction::Set)]
    pub web_push_allow_local: bool,

    /// Most push requests in flight at once per node.
    #[arg(long, env = "SWITCHBOARD_PUSH_CONCURRENCY", default_value_t = 64)]
    pub push_concurrency: usize,

    /// Attempts before a push is given up.
    #[arg(long, env = "SWITCHBOARD_PUSH_MAX_ATTEMPTS", default_value_t = 8)]
    pub push_max_attempts: i32,

    /// Messages one customer may send per minute.
    #[arg(
        long,
        env = "SWITCHBOARD_CUSTOMER_MESSAGES_PER_MINUTE",
        default_value_t = 60
    )]
    pub customer_messages_per_minute: u32,

    /// Typing notices (setTyping) one customer may send per minute: widgets send about one a
    /// second while the customer types, so this budget is separate and larger.
    #[arg(
        long,
        env = "SWITCHBOARD_CUSTOMER_TYPING_PER_MINUTE",
        default_value_t = 120
    )]
    pub customer_typing_per_minute: u32,

    /// Other customer operations (rateChat, updateVisitorPage, closeChat, dismissGreeting) one
    /// customer may make per minute.
    #[arg(
        long,
        env = "SWITCHBOARD_CUSTOMER_ACTIONS_PER_MINUTE",
        default_value_t = 30
    )]
    pub customer_actions_per_minute: u32,

    /// Chats one client address may start per minute, whatever visitor it claims to be: one
    /// source cannot use up the organization's per-minute cap on new chats alone.
    #[arg(
        long,
        env = "SWITCHBOARD_CHAT_STARTS_PER_ADDRESS_PER_MINUTE",
        default_value_t = 10
    )]
    pub chat_starts_per_address_per_minute: u32,

    /// How many proxies you run in front of the server. With N > 0 the client address (for
    /// rate limits) is the X-Forwarded-For entry N places from the right, the one your outermost
    /// proxy wrote; entries further left are written by the client and ignored. 0: the TCP peer.
    #[arg(long, env = "SWITCHBOARD_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,

    /// Deprecated: `true` means SWITCHBOARD_TRUSTED_PROXIES=1.
    #[arg(long, env = "SWITCHBOARD_TRUST_FORWARDED_FOR", default_value_t = false, action = ArgAction::Set, hide = true)]
    pub trust_forwarded_for: bool,

    /// Whether /demo serves a sample shop page with the first organization's chat widget.
    #[arg(long, env = "SWITCHBOARD_DEMO", default_value_t = true, action = ArgAction::Set)]
    pub demo: bool,

    /// A bearer token /metrics requires (`Authorization: Bearer <token>`); others get 401.
    /// Unset: /metrics answers whoever reaches it.
    #[arg(long, env = "SWITCHBOARD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// A separate address and port for /metrics (e.g. 127.0.0.1:9090), which the main
    /// address then no longer serves. Unset: /metrics is on the main address.
    #[arg(long, env = "SWITCHBOARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Failed logins per account within 15 minutes before further attempts are refused.
    #[arg(
        long,
        env = "SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_failures_per_account: u32,

    /// Failed logins per client address within 15 minutes before further attempts are refused.
    #[arg(
        long,
        env = "SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_failures_per_address: u32,

    /// How log lines are written to stderr: text, for people, or json, one object per line
    /// for log collectors.
    #[arg(
        long,
        env = "SWITCHBOARD_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Attached files: where they are kept and how long download links last.
    #[command(flatten)]
    pub files: FileStoreConfig,

    /// The Graph API's base URL, for Messenger's Send and profile APIs (tests point it at a
    /// local fake).
    #[arg(
        long,
        env = "SWITCHBOARD_MESSENGER_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub messenger_graph_url: String,

    /// The Graph API version the Messenger calls name, e.g. v21.0.
    #[arg(
        long,
        env = "SWITCHBOARD_MESSENGER_GRAPH_VERSION",
        default_value = "v21.0"
    )]
    pub messenger_graph_version: String,

    /// Offline messages by email: the SMTP server and the sender.
    #[command(flatten)]
    pub smtp: SmtpConfig,

    /// Webhooks: where deliveries may go, how long an attempt may take, when to give up.
    #[command(flatten)]
    pub webhooks: WebhookConfig,

    // ---- Once-per-cluster work (leases) ----
    /// How long a node's lease on once-per-cluster work (the chat timers, the unsent-file
    /// sweeper) lasts; the holder renews it every third of it. When the holder dies, another
    /// node takes the work over within this time and a third.
    #[arg(long, env = "SWITCHBOARD_CLUSTER_LEASE", default_value = "15s", value_parser = parse_duration)]
    pub cluster_lease: Duration,
    // Several nodes: the NATS event bus.
    /// The NATS event bus between the nodes of a cluster.
    #[command(flatten)]
    pub nats: NatsConfig,
}

/// The NATS server the nodes of a cluster tell each other about events through. Unset URL:
/// events stay in this process (one node).
#[derive(Debug, Clone, Args)]
pub struct NatsConfig {
    /// NATS server URL(s), comma-separated (e.g. nats://10.0.0.5:4222, tls://nats:4222):
    /// every node of a cluster needs the same NATS. Unset: one node, events stay in-process.
    #[arg(long, env = "SWITCHBOARD_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,

    /// A NATS credentials file (.creds: a user JWT and its nkey seed), as `nsc` writes it.
    #[arg(long, env = "SWITCHBOARD_NATS_CREDS_FILE")]
    pub nats_creds_file: Option<PathBuf>,

    /// The NATS user name (with SWITCHBOARD_NATS_PASSWORD).
    #[arg(long, env = "SWITCHBOARD_NATS_USER")]
    pub nats_user: Option<String>,

    /// The NATS user's password.
    #[arg(long, env = "SWITCHBOARD_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,

    /// A NATS authentication token.
    #[arg(long, env = "SWITCHBOARD_NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<String>,

    /// A PEM file of the certificate authorities that sign the NATS server's certificate (a
    /// private CA). The system's roots are trusted too.
    #[arg(long, env = "SWITCHBOARD_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,

    /// A PEM client certificate for NATS servers that verify clients (with
    /// SWITCHBOARD_NATS_TLS_KEY).
    #[arg(long, env = "SWITCHBOARD_NATS_TLS_CERT")]
    pub nats_tls_cert: Option<PathBuf>,

    /// The PEM private key of SWITCHBOARD_NATS_TLS_CERT.
    #[arg(long, env = "SWITCHBOARD_NATS_TLS_KEY")]
    pub nats_tls_key: Option<PathBuf>,

    /// Whether the connection to NATS must use TLS (it does anyway with tls:// URLs or when
    /// the server asks for it).
    #[arg(long, env = "SWITCHBOARD_NATS_REQUIRE_TLS", default_value_t = false, action = ArgAction::Set)]
    pub nats_require_tls: bool,

    /// The first part of every subject the nodes publish on (`<prefix>.chat.<id>` …), so
    /// several clusters can share one NATS: each needs its own.
    #[arg(
        long,
        env = "SWITCHBOARD_NATS_SUBJECT_PREFIX",
        default_value = "switchboard"
    )]
    pub nats_subject_prefix: String,
}

impl NatsConfig {
    /// The server addresses of SWITCHBOARD_NATS_URL, when set.
    pub fn servers(&self) -> Result<Option<Vec<async_nats::ServerAddr>>, String> {
        let Some(url) = &self.nats_url else {
            return Ok(None);
        };
        let servers = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<async_nats::ServerAddr>()
                    .map_err(|err| format!("SWITCHBOARD_NATS_URL: {s:?} is not a NATS URL: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err("SWITCHBOARD_NATS_URL must not be empty (unset it to run one node)".into());
        }
        Ok(Some(servers))
    }

    /// Checks what clap cannot.
    fn validate(&self) -> Result<(), String> {
        self.servers()?;
        let methods = [
            self.nats_creds_file.is_some(),
            self.nats_user.is_some() || self.nats_password.is_some(),
            self.nats_token.is_some(),
        ];
        if methods.iter().filter(|set| **set).count() > 1 {
            return Err(
                "SWITCHBOARD_NATS_CREDS_FILE, SWITCHBOARD_NATS_USER/_PASSWORD and \
                        SWITCHBOARD_NATS_TOKEN are three ways to log in: set one"
                    .into(),
            );
        }
        if self.nats_user.is_some() != self.nats_password.is_some() {
            return Err("SWITCHBOARD_NATS_USER and SWITCHBOARD_NATS_PASSWORD go together".into());
        }
        if self.nats_tls_cert.is_some() != self.nats_tls_key.is_some() {
            return Err(
                "SWITCHBOARD_NATS_TLS_CERT and SWITCHBOARD_NATS_TLS_KEY go together".into(),
            );
        }
        let prefix_ok = self.nats_subject_prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        if !prefix_ok {
            return Err(
                "SWITCHBOARD_NATS_SUBJECT_PREFIX must be dot-separated words of \
                        letters, digits, - and _ (e.g. switchboard or acme.chat)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Webhook deliveries: the SSRF guard, timeouts, retries and disabling failing endpoints.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Whether webhook endpoints may be at loopback, private, link-local or other non-public
    /// addresses (an on-premises receiver, tests). Off, such URLs are refused when registered
    /// and every delivery checks the addresses the name resolves to.
    #[arg(long, env = "SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_webhook_targets: bool,

    /// Longest one delivery attempt may take, connecting included (e.g. 10s, 500ms).
    #[arg(long, env = "SWITCHBOARD_WEBHOOKS_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhooks_timeout: Duration,

    /// Attempts before a delivery is given up (exponential backoff from 2 s with jitter,
    /// capped at 10 minutes, or the receiver's longer Retry-After).
    #[arg(long, env = "SWITCHBOARD_WEBHOOKS_MAX_ATTEMPTS", default_value_t = 20)]
    pub webhooks_max_attempts: i32,

    /// Most deliveries in flight at once per node.
    #[arg(long, env = "SWITCHBOARD_WEBHOOKS_CONCURRENCY", default_value_t = 16)]
    pub webhooks_concurrency: usize,

    /// Failed attempts in a row after which an endpoint is disabled and its admins told.
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOKS_DISABLE_AFTER_FAILURES",
        default_value_t = 50
    )]
    pub webhooks_disable_after_failures: i32,

    /// How long an endpoint may keep failing (no success in between) before it is disabled.
    #[arg(long, env = "SWITCHBOARD_WEBHOOKS_DISABLE_AFTER", default_value = "3d", value_parser = parse_duration)]
    pub webhooks_disable_after: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Text,
    /// One JSON object per line: the event's fields at the top level, the request's in `span`.
    Json,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same machine or a trusted network.
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte, "implicit TLS" (port 465).
    Tls,
}

/// The SMTP server offline messages are emailed through. Unset host: no emails; offline
/// messages stay in the app.
#[derive(Debug, Clone, Args)]
pub struct SmtpConfig {
    /// The SMTP server's host name: enables emailing new offline messages to agents and
    /// agents' replies to customers. Needs SWITCHBOARD_SMTP_FROM.
    #[arg(long, env = "SWITCHBOARD_SMTP_HOST")]
    pub smtp_host: Option<String>,

    /// The SMTP server's port. Unset: 587 with starttls, 465 with tls, 25 with none.
    #[arg(long, env = "SWITCHBOARD_SMTP_PORT")]
    pub smtp_port: Option<u16>,

    /// How the connection is secured: starttls, tls (implicit) or none.
    #[arg(
        long,
        env = "SWITCHBOARD_SMTP_TLS",
        value_enum,
        default_value = "starttls"
    )]
    pub smtp_tls: SmtpTls,

    /// The user name to log in with (PLAIN or LOGIN). Unset: no login.
    #[arg(long, env = "SWITCHBOARD_SMTP_USERNAME")]
    pub smtp_username: Option<String>,

    /// The password to log in with.
    #[arg(long, env = "SWITCHBOARD_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,

    /// The sender of every email, e.g. `Support <support@example.com>`. Replies to customers
    /// show the organization's name with this address.
    #[arg(long, env = "SWITCHBOARD_SMTP_FROM")]
    pub smtp_from: Option<String>,

    /// How long one connection and one SMTP command may take.
    #[arg(long, env = "SWITCHBOARD_SMTP_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub smtp_timeout: Duration,

    /// Attempts before an email is given up (transient failures: 4xx answers, no connection).
    #[arg(long, env = "SWITCHBOARD_SMTP_MAX_ATTEMPTS", default_value_t = 10)]
    pub smtp_max_attempts: i32,

    /// The agent app's address as agents open it (e.g. https://chat.example.com/app), linked
    /// from the emails about new offline messages. Unset: no link.
    #[arg(long, env = "SWITCHBOARD_SMTP_APP_URL")]
    pub smtp_app_url: Option<String>,
}

impl SmtpConfig {
    /// The port to connect to: configured, or the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.smtp_port.unwrap_or(match self.smtp_tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    /// Checks what clap cannot.
    fn validate(&self) -> Result<(), String> {
        let host = self.smtp_host.as_deref().map(str::trim);
        if host == Some("") {
            return Err(
                "SWITCHBOARD_SMTP_HOST must not be empty (unset it to send no email)".into(),
            );
        }
        if host.is_some() {
            let Some(from) = &self.smtp_from else {
                return Err("SWITCHBOARD_SMTP_HOST needs SWITCHBOARD_SMTP_FROM, the sender".into());
            };
            crate::outbox::email::parse_sender(from)
                .map_err(|err| format!("SWITCHBOARD_SMTP_FROM: {err}"))?;
        }
        if self.smtp_username.is_some() != self.smtp_password.is_some() {
            return Err(
                "SWITCHBOARD_SMTP_USERNAME and SWITCHBOARD_SMTP_PASSWORD go together".into(),
            );
        }
        if self.smtp_timeout.is_zero() || self.smtp_max_attempts < 1 {
            return Err("SWITCHBOARD_SMTP_TIMEOUT must be longer than zero and \
                        SWITCHBOARD_SMTP_MAX_ATTEMPTS at least 1"
                .into());
        }
        if let Some(url) = &self.smtp_app_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("SWITCHBOARD_SMTP_APP_URL must be an http(s) URL".into());
        }
        Ok(())
    }
}

/// Where attached files are kept: the data directory (`<data dir>/files`) unless a bucket is
/// named, then any S3-compatible store (AWS, MinIO, Ceph, R2 …).
#[derive(Debug, Clone, Args)]
pub struct FileStoreConfig {
    /// The S3 bucket for attached files. Unset: files are kept in <data dir>/files.
    #[arg(long, env = "SWITCHBOARD_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// The S3 endpoint, for stores other than AWS (e.g. http://127.0.0.1:9000). Unset: AWS.
    #[arg(long, env = "SWITCHBOARD_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The bucket's region.
    #[arg(long, env = "SWITCHBOARD_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// The access key id. Unset: AWS_ACCESS_KEY_ID, or the instance's role.
    #[arg(long, env = "SWITCHBOARD_S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,

    /// The secret access key. Unset: AWS_SECRET_ACCESS_KEY, or the instance's role.
    #[arg(long, env = "SWITCHBOARD_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Whether the endpoint may be plain http: for a store on your own machine or network.
    #[arg(long, env = "SWITCHBOARD_S3_ALLOW_HTTP", default_value_t = false, action = ArgAction::Set)]
    pub s3_allow_http: bool,

    /// Whether to address the bucket as <bucket>.<endpoint> (AWS's style) instead of
    /// <endpoint>/<bucket> (what most self-hosted stores want).
    #[arg(long, env = "SWITCHBOARD_S3_VIRTUAL_HOSTED", default_value_t = false, action = ArgAction::Set)]
    pub s3_virtual_hosted: bool,

    /// How long a file's download link works once given out (e.g. 15m).
    #[arg(long, env = "SWITCHBOARD_FILE_URL_TTL", default_value = "15m", value_parser = parse_duration)]
    pub file_url_ttl: Duration,

    /// Time a client has to upload one file; slower uploads are cut off.
    #[arg(long, env = "SWITCHBOARD_FILE_UPLOAD_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub file_upload_timeout: Duration,
}

impl Config {
    /// Proxy hops in front of the server, counting the deprecated
    /// SWITCHBOARD_TRUST_FORWARDED_FOR as one.
    pub fn trusted_proxy_hops(&self) -> usize {
        if self.trust_forwarded_for {
            self.trusted_proxies.max(1)
        } else {
            self.trusted_proxies
        }
    }

    /// The configuration with every default, for tests and tools.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            config: Config,
        }
        <Defaults as clap::Parser>::try_parse_from(["switchboard"])
            .map(|d| d.config)
            .unwrap_or_else(|err| panic!("the defaults must parse: {err}"))
    }

    /// The VAPID subject: configured, or the bootstrap owner's email.
    pub fn vapid_subject(&self) -> String {
        match &self.vapid_subject {
            Some(subject) => subject.clone(),
            None => format!("mailto:{}", self.bootstrap_owner_email.trim()),
        }
    }

    /// Checks what clap cannot: relations between values and their sizes.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            return Err(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
            );
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return Err("SWITCHBOARD_JWT_SECRET must be at least 32 characters".into());
        }
        if let Some(password) = &self.bootstrap_owner_password {
            crate::domain::validate_password(password)
                .map_err(|err| format!("SWITCHBOARD_BOOTSTRAP_OWNER_PASSWORD: {err}"))?;
        }
        crate::domain::normalize_email(&self.bootstrap_owner_email)
            .map_err(|err| format!("SWITCHBOARD_BOOTSTRAP_OWNER_EMAIL: {err}"))?;
        if self.access_token_ttl < Duration::from_secs(1) {
            return Err("SWITCHBOARD_ACCESS_TOKEN_TTL must be at least 1s".into());
        }
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|token| token.trim().is_empty() || token.contains(char::is_whitespace))
        {
            return Err("SWITCHBOARD_METRICS_TOKEN must not be empty or hold spaces".into());
        }
        if self.header_read_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.idle_timeout.is_zero()
        {
            return Err(
                "SWITCHBOARD_HEADER_READ_TIMEOUT, SWITCHBOARD_REQUEST_TIMEOUT and \
                        SWITCHBOARD_IDLE_TIMEOUT must be longer than zero"
                    .into(),
            );
        }
        if self.max_connections == Some(0) {
            return Err("SWITCHBOARD_MAX_CONNECTIONS must be at least 1 (or unset)".into());
        }
        if self.ws_ping_interval.is_zero()
            || self.ws_init_timeout.is_zero()
            || self.ws_keep_alive_interval.is_zero()
            || self.timer_interval.is_zero()
        {
            return Err("WebSocket intervals must be longer than zero".into());
        }
        if self.greeting_rules_interval.is_zero() {
            return Err("SWITCHBOARD_GREETING_RULES_INTERVAL must be longer than zero".into());
        }
        if self.visitors_heartbeat < Duration::from_millis(10) {
            return Err("SWITCHBOARD_VISITORS_HEARTBEAT must be at least 10ms".into());
        }
        if self.apns_key_path.is_some()
            && (self.apns_key_id.is_none() || self.apns_team_id.is_none())
        {
            return Err("SWITCHBOARD_APNS_KEY_PATH needs SWITCHBOARD_APNS_KEY_ID and SWITCHBOARD_APNS_TEAM_ID".into());
        }
        if !(self.fcm_endpoint.starts_with("http://") || self.fcm_endpoint.starts_with("https://"))
        {
            return Err("SWITCHBOARD_FCM_ENDPOINT must be an http(s) URL".into());
        }
        if !(self.messenger_graph_url.starts_with("http://")
            || self.messenger_graph_url.starts_with("https://"))
        {
            return Err("SWITCHBOARD_MESSENGER_GRAPH_URL must be an http(s) URL".into());
        }
        if self.messenger_graph_version.is_empty()
            || !self
                .messenger_graph_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return Err("SWITCHBOARD_MESSENGER_GRAPH_VERSION must look like v21.0".into());
        }
        if let Some(subject) = &self.vapid_subject
            && !(subject.starts_with("mailto:") || subject.starts_with("https://"))
        {
            return Err("SWITCHBOARD_VAPID_SUBJECT must be a mailto: or https:// URL".into());
        }
        if self.webhooks.webhooks_max_attempts < 1
            || self.webhooks.webhooks_concurrency < 1
            || self.webhooks.webhooks_disable_after_failures < 1
            || self.webhooks.webhooks_timeout.is_zero()
        {
            return Err("SWITCHBOARD_WEBHOOKS_MAX_ATTEMPTS, _CONCURRENCY and \
                 _DISABLE_AFTER_FAILURES must be at least 1, and SWITCHBOARD_WEBHOOKS_TIMEOUT \
                 more than 0"
                .into());
        }
        if self.push_max_attempts < 1 || self.push_concurrency < 1 {
            return Err(
                "SWITCHBOARD_PUSH_MAX_ATTEMPTS and SWITCHBOARD_PUSH_CONCURRENCY must be at least 1"
                    .into(),
            );
        }
        if self.files.file_url_ttl < Duration::from_secs(10)
            || self.files.file_upload_timeout.is_zero()
        {
            return Err("SWITCHBOARD_FILE_URL_TTL must be at least 10s and \
                 SWITCHBOARD_FILE_UPLOAD_TIMEOUT longer than zero"
                .into());
        }
        if self
            .files
            .s3_bucket
            .as_deref()
            .is_some_and(|b| b.trim().is_empty())
        {
            return Err(
                "SWITCHBOARD_S3_BUCKET must not be empty (unset it to keep files on disk)".into(),
            );
        }
        if let Some(endpoint) = &self.files.s3_endpoint
            && !(endpoint.starts_with("https://")
                || (endpoint.starts_with("http://") && self.files.s3_allow_http))
        {
            return Err(
                "SWITCHBOARD_S3_ENDPOINT must be an https:// URL (http:// needs \
                 SWITCHBOARD_S3_ALLOW_HTTP=true)"
                    .into(),
            );
        }
        if self.files.s3_access_key_id.is_some() != self.files.s3_secret_access_key.is_some() {
            return Err(
                "SWITCHBOARD_S3_ACCESS_KEY_ID and SWITCHBOARD_S3_SECRET_ACCESS_KEY go together"
                    .into(),
            );
        }
        if self.max_body_bytes < 1024 {
            return Err("SWITCHBOARD_MAX_BODY_BYTES must be at least 1024".into());
        }
        // A working outbox worker looks for jobs every second: less would call it stalled.
        if self.outbox_stalled_after < Duration::from_secs(2) {
            return Err("SWITCHBOARD_OUTBOX_STALLED_AFTER must be at least 2s".into());
        }
        self.smtp.validate()?;
        // Once-per-cluster work (leases).
        if self.cluster_lease < Duration::from_secs(1) {
            return Err("SWITCHBOARD_CLUSTER_LEASE must be at least 1s".into());
        }
        // Several nodes: the NATS event bus.
        self.nats.validate()?;
        Ok(())
    }
}

/// Parses `250ms`, `10s`, `15m`, `2h`, `30d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s or 15m"))?;
    let millis = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit (use ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(millis)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Parses `512KB`, `64MB`, `1GB`, `1TB` (powers of 1024) or a bare number of bytes.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 64MB or 1GB"))?;
    let multiplier: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit (use KB, MB, GB or TB)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `.env.sample` names every option's variable and nothing else, so an operator who
    /// starts from it sees every setting.
    #[test]
    fn the_sample_environment_file_names_every_option() {
        #[derive(clap::Parser)]
        struct All {
            #[command(flatten)]
            config: Config,
        }
        let options: std::collections::BTreeSet<String> = <All as clap::CommandFactory>::command()
            .get_arguments()
            .filter(|arg| !arg.is_hide_set())
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        let sample = include_str!("../.env.sample");
        let named: std::collections::BTreeSet<String> = sample
            .lines()
            .map(|line| line.trim_start_matches('#').trim())
            .filter_map(|line| line.split_once('='))
            .map(|(name, _)| name.trim().to_owned())
            .filter(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        let missing: Vec<_> = options.difference(&named).collect();
        let unknown: Vec<_> = named
            .difference(&options)
            .filter(|name| name.as_str() != "RUST_LOG")
            .collect();
        assert!(missing.is_empty(), ".env.sample lacks {missing:?}");
        assert!(
            unknown.is_empty(),
            ".env.sample names no option {unknown:?}"
        );
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_bytes("64MB").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5PB").is_err());
        assert!(parse_bytes("99999999999TB").is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let config = Config::defaults();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(!config.allow_signup);
        config.validate().unwrap();
    }

    #[test]
    fn an_outbox_stall_shorter_than_two_idle_polls_is_refused() {
        let mut config = Config::defaults();
        assert_eq!(config.outbox_stalled_after, Duration::from_secs(60));
        config.outbox_stalled_after = Duration::from_secs(1);
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("SWITCHBOARD_OUTBOX_STALLED_AFTER")
        );
    }

    #[test]
    fn short_secrets_and_foreign_urls_are_refused() {
        let mut config = Config::defaults();
        config.jwt_secret = Some("short".into());
        assert!(config.validate().unwrap_err().contains("at least 32"));
        let mut config = Config::defaults();
        config.database_url = Some("mysql://x".into());
        assert!(config.validate().unwrap_err().contains("DATABASE_URL"));
    }

    #[test]
    fn a_metrics_token_must_be_a_usable_bearer_token() {
        for token in ["", "  ", "two words"] {
            let mut config = Config::defaults();
            config.metrics_token = Some(token.into());
            assert!(
                config
                    .validate()
                    .unwrap_err()
                    .contains("SWITCHBOARD_METRICS_TOKEN"),
                "{token:?}"
            );
        }
        let mut config = Config::defaults();
        config.metrics_token = Some("a-scrape-token".into());
        config.metrics_listen = Some("127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn nats_takes_urls_one_login_and_a_subject_prefix() {
        let mut config = Config::defaults();
        config.nats.nats_url = Some("nats://10.0.0.5:4222, tls://nats.internal:4222".into());
        config.validate().unwrap();
        assert_eq!(config.nats.servers().unwrap().unwrap().len(), 2);
        config.nats.nats_url = Some(" , ".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("SWITCHBOARD_NATS_URL")
        );
        config.nats.nats_url = Some("nats://127.0.0.1:4222".into());
        config.nats.nats_token = Some("t".into());
        config.nats.nats_user = Some("u".into());
        config.nats.nats_password = Some("p".into());
        assert!(config.validate().unwrap_err().contains("set one"));
        config.nats.nats_token = None;
        config.validate().unwrap();
        config.nats.nats_password = None;
        assert!(config.validate().unwrap_err().contains("go together"));
        config.nats.nats_user = None;
        for prefix in ["", "a..b", "a.>", "a *"] {
            config.nats.nats_subject_prefix = prefix.into();
            assert!(
                config.validate().unwrap_err().contains("SUBJECT_PREFIX"),
                "{prefix:?}"
            );
        }
        config.nats.nats_subject_prefix = "acme.chat-eu_1".into();
        config.validate().unwrap();
    }

    #[test]
    fn smtp_needs_a_sender_and_whole_credentials() {
        let mut config = Config::defaults();
        config.smtp.smtp_host = Some("smtp.example.com".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("SWITCHBOARD_SMTP_FROM")
        );
        config.smtp.smtp_from = Some("not an address".into());
        assert!(
            config
                .validate()
                .unwrap_err()
                .contains("SWITCHBOARD_SMTP_FROM")
        );
        config.smtp.smtp_from = Some("Support <support@example.com>".into());
        config.validate().unwrap();
        assert_eq!(config.smtp.port(), 587);
        config.smtp.smtp_username = Some("user".into());
        assert!(config.validate().unwrap_err().contains("go together"));
        config.smtp.smtp_password = Some("secret".into());
        config.validate().unwrap();
        config.smtp.smtp_tls = SmtpTls::Tls;
        assert_eq!(config.smtp.port(), 465);
    }
}
