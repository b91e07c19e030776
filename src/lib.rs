//! Switchboard: a mobile-first live-chat backend.
//!
//! [`App::start`] builds everything from a [`Config`]: it opens the store and migrates it,
//! bootstraps an empty server, wires the services to the bus and the GraphQL schema; then
//! [`App::serve`] runs the HTTP server until a shutdown signal.

pub mod admin;
pub mod bus;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod outbox;
pub mod report_bench;
pub mod services;
pub mod shutdown;
pub mod store;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;

use crate::bus::{EventBus, LocalBus};
use crate::graphql::{AppSchema, QueryLimits};
use crate::metrics::Metrics;
use crate::services::accounts::Bootstrapped;
use crate::services::auth::{AuthSettings, random_token};
use crate::services::timers::ChatTimers;
use crate::services::{AccountService, AuthService, ChatService, Services};
use crate::shutdown::Shutdown;
use crate::store::{Database, DbError};

/// Why the server could not start. Each says what to fix in one line.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot use the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Database(DbError),
    #[error("cannot create the first organization: {0}")]
    Bootstrap(error::Error),
    #[error("push configuration: {0}")]
    Push(String),
    #[error("{0}")]
    Nats(bus::nats::NatsError),
    #[error("cannot listen on SWITCHBOARD_METRICS_LISTEN {address}: {source}")]
    MetricsListen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A built server, ready to serve.
pub struct App {
    pub config: Arc<Config>,
    /// The database: the server's workers and its shutdown use it; transports go through
    /// `services`.
    pub store: Arc<dyn Database>,
    pub bus: Arc<dyn EventBus>,
    pub services: Arc<Services>,
    pub schema: AppSchema,
    pub metrics: Arc<Metrics>,
    /// /metrics's own address (SWITCHBOARD_METRICS_LISTEN), bound at start so a taken port
    /// stops the start.
    pub metrics_listener: Option<TcpListener>,
    /// The push providers the configuration enables.
    pub senders: Arc<outbox::push::Senders>,
    /// Wakes the push worker when a transaction queued pushes.
    pub push_wake: Arc<tokio::sync::Notify>,
    /// The SMTP server offline messages are emailed through, when configured.
    pub smtp: Option<Arc<outbox::email::SmtpSender>>,
    /// Wakes the email worker when a change queued emails.
    pub email_wake: Arc<tokio::sync::Notify>,
    /// What bootstrapping created, when the database was empty: print it once.
    pub bootstrapped: Option<Bootstrapped>,
    /// Tells every background task to stop and counts them until they have, so the store
    /// closes last.
    pub shutdown: Shutdown,
}

impl App {
    /// Opens and migrates the store, bootstraps an empty database, builds the services.
    pub async fn start(config: Config) -> Result<App, StartupError> {
        config.validate().map_err(StartupError::Config)?;
        if config.trust_forwarded_for {
            tracing::warn!(
                "SWITCHBOARD_TRUST_FORWARDED_FOR is deprecated: set SWITCHBOARD_TRUSTED_PROXIES to \
                 the number of proxies in front of the server (taken as 1 now)"
            );
        }
        // First: a node that cannot reach its cluster's NATS must not start (it would serve its
        // clients half the events), and says so before anything else is touched.
        let shutdown = Shutdown::new();
        let bus: Arc<dyn EventBus> = if config.nats.nats_url.is_some() {
            Arc::new(
                bus::nats::NatsBus::connect(&config.nats, &shutdown)
                    .await
                    .map_err(StartupError::Nats)?,
            )
        } else {
            Arc::new(LocalBus::new())
        };
        // Before the database: a key that is configured but unusable stops the start untouched.
        let vapid_key = vapid_key(&config)?;
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| StartupError::MetricsListen { address, source })?,
            ),
            None => None,
        };
        let store = open_store(&config).await?;
        store.migrate().await.map_err(StartupError::Database)?;
        let metrics = Arc::new(Metrics::new(store.backend_name()));
        let jwt_secret = jwt_secret(&config)?;
        let jwt_secret_for_files = jwt_secret.clone();
        let auth = AuthService::new(
            store.clone(),
            bus.clone(),
            AuthSettings {
                jwt_secret,
                access_token_ttl: config.access_token_ttl,
                refresh_token_ttl: config.refresh_token_ttl,
                allow_signup: config.allow_signup,
                login_failures_per_account: config.login_failures_per_account,
                login_failures_per_address: config.login_failures_per_address,
            },
        );
        let push_wake = Arc::new(tokio::sync::Notify::new());
        let smtp = outbox::email::SmtpSender::from_config(&config.smtp)
            .map_err(StartupError::Config)?
            .map(Arc::new);
        let email_wake = Arc::new(tokio::sync::Notify::new());
        // Shared with the accounts: a deactivated agent's chats are routed on at once.
        let mut chats = ChatService::new(
            store.clone(),
            bus.clone(),
            services::chats::CustomerLimits {
                visitor_sessions_per_minute: config.visitor_sessions_per_minute,
                messages_per_minute: config.customer_messages_per_minute,
                typing_per_minute: config.customer_typing_per_minute,
                actions_per_minute: config.customer_actions_per_minute,
                chat_starts_per_address_per_minute: config.chat_starts_per_address_per_minute,
            },
            push_wake.clone(),
        );
        if let Some(smtp) = &smtp {
            chats = chats.with_offline_email(services::chats::OfflineEmail {
                domain: smtp.domain(),
                app_url: config.smtp.smtp_app_url.clone(),
                wake: email_wake.clone(),
            });
        }
        let chats = Arc::new(chats);
        let accounts = AccountService::new(store.clone(), bus.clone(), chats.clone());
        let bootstrapped = accounts
            .bootstrap(
                &config.bootstrap_organization,
                &config.bootstrap_owner_email,
                config.bootstrap_owner_password.as_deref(),
            )
            .await
            .map_err(StartupError::Bootstrap)?;
        let web_push = services::push::WebPushSettings {
            public_key: vapid_key.public_key().to_owned(),
            allow_local: config.web_push_allow_local,
        };
        let senders = Arc::new(push_senders(&config, vapid_key)?);
        let presence =
            services::presence::Presence::new(store.clone(), chats.clone(), shutdown.clone());
        let services = Arc::new(Services::new(
            store.clone(),
            bus.clone(),
            auth,
            accounts,
            chats,
            presence,
            services::ServiceSettings {
                visitors: services::visitors::VisitorSettings {
                    coalesce: config.visitors_coalesce,
                    leave_grace: config.visitor_leave_grace,
                    heartbeat: config.visitors_heartbeat,
                },
                web_push,
                files: file_service_settings(&config, &jwt_secret_for_files)?,
                allow_private_webhook_targets: config.webhooks.allow_private_webhook_targets,
                messenger_graph: messenger_graph(&config),
            },
        ));
        let schema = graphql::schema(
            services.clone(),
            QueryLimits {
                max_depth: config.max_query_depth,
                max_complexity: config.max_query_complexity,
                max_aliases: config.max_query_aliases,
            },
            metrics.clone(),
        );
        Ok(App {
            config: Arc::new(config),
            store,
            bus,
            services,
            schema,
            metrics,
            metrics_listener,
            senders,
            push_wake,
            smtp,
            email_wake,
            bootstrapped,
            shutdown,
        })
    }

    /// The address /metrics is served on apart from the main one, if configured.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves on `listener` until `shutdown` completes (or [`App::shutdown`] is triggered),
    /// then tells every background task to stop, waits for all of them, and closes the store.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.store.clone();
        let tasks = self.shutdown.clone();
        // Once per cluster: each under a lease in the database (see services::leases).
        let leases = services::leases::Leases {
            store: store.clone(),
            metrics: self.metrics.clone(),
            node: services::leases::node_id().into(),
            length: self.config.cluster_lease,
        };
        let timers = {
            let app_services = self.services.clone();
            let interval = self.config.timer_interval;
            // Other nodes' changes do not ring this node's timer bell: where nodes share the
            // database, the deadline is read again about every second.
            let look_again_after = if store.backend_name() == "postgres" {
                interval.max(std::time::Duration::from_secs(1))
            } else {
                services::timers::LOOK_AGAIN_AFTER
            };
            move |stop| {
                ChatTimers {
                    services: app_services.clone(),
                    interval,
                    look_again_after,
                }
                .run(stop)
            }
        };
        tasks.spawn(
            leases
                .leased(services::leases::CHAT_TIMERS, timers)
                .run(tasks.subscribe()),
        );
        let sweeper = {
            let app_services = self.services.clone();
            move |stop| {
                services::files::UnsentFileSweeper {
                    services: app_services.clone(),
                }
                .run(stop)
            }
        };
        tasks.spawn(
            leases
                .leased(services::leases::UNSENT_FILE_SWEEPER, sweeper)
                .run(tasks.subscribe()),
        );
        let rate_windows = {
            let store = store.clone();
            move |stop| {
                services::leases::RateWindowSweeper {
                    store: store.clone(),
                }
                .run(stop)
            }
        };
        tasks.spawn(
            leases
                .leased(services::leases::RATE_WINDOW_SWEEPER, rate_windows)
                .run(tasks.subscribe()),
        );
        let packer = {
            let store = store.clone();
            move |stop| {
                services::reports::ReportDayPacker {
                    store: store.clone(),
                }
                .run(stop)
            }
        };
        tasks.spawn(
            leases
                .leased(services::leases::REPORT_DAY_PACKER, packer)
                .run(tasks.subscribe()),
        );
        // Per node: each announces the queue changes it committed (once each), renews its own
        // agents' presence, and lets the greeting rules look at the visitors connected to it
        // (a greeting is written once per visitor whichever nodes look).
        tasks.spawn(self.services.chats.queue_announcer().run(tasks.subscribe()));
        tasks.spawn(
            services::presence::Renewal {
                presence: self.services.presence.clone(),
            }
            .run(tasks.subscribe()),
        );
        tasks.spawn(
            self.services
                .visitors
                .greeting_rules_worker(self.config.greeting_rules_interval)
                .run(tasks.subscribe()),
        );
        // With NATS: the other nodes' visitors on this node's lists, and this node's on theirs.
        if let Some(across_nodes) = self.services.visitors.across_nodes_worker() {
            tasks.spawn(across_nodes.run(tasks.subscribe()));
        }
        tasks.spawn(
            services::presence::AccessWatch {
                store: store.clone(),
                bus: self.bus.clone(),
                presence: self.services.presence.clone(),
            }
            .run(tasks.subscribe()),
        );
        // The outbox workers, watched for /readyz.
        let outbox_workers = self.services.health.outbox_workers();
        tasks.spawn(
            outbox::Worker::new(
                outbox::push::PushJobs {
                    store: store.clone(),
                    senders: self.senders.clone(),
                    metrics: self.metrics.clone(),
                },
                self.push_wake.clone(),
                self.config.push_concurrency,
                self.config.push_max_attempts,
            )
            .watched_by(outbox_workers)
            .run(tasks.subscribe()),
        );
        match outbox::webhooks::WebhookJobs::new(
            store.clone(),
            self.bus.clone(),
            outbox::webhooks::WebhookSettings {
                timeout: self.config.webhooks.webhooks_timeout,
                allow_private_targets: self.config.webhooks.allow_private_webhook_targets,
                disable: store::DisablePolicy {
                    after_failures: self.config.webhooks.webhooks_disable_after_failures,
                    after: self.config.webhooks.webhooks_disable_after,
                },
            },
        ) {
            Ok(kind) => {
                tasks.spawn(
                    outbox::Worker::new(
                        kind,
                        self.services.chats.webhook_wake.clone(),
                        self.config.webhooks.webhooks_concurrency,
                        self.config.webhooks.webhooks_max_attempts,
                    )
                    .watched_by(outbox_workers)
                    .run(tasks.subscribe()),
                );
            }
            Err(err) => tracing::error!(error = %err, "webhooks cannot be delivered"),
        }
        tasks.spawn(
            outbox::Worker::new(
                outbox::messenger::MessengerSends {
                    store: store.clone(),
                    chats: self.services.chats.clone(),
                    graph: messenger_graph(&self.config),
                },
                self.services.chats.messenger_wake(),
                self.config.push_concurrency,
                self.config.push_max_attempts,
            )
            .watched_by(outbox_workers)
            .run(tasks.subscribe()),
        );
        if let Some(smtp) = &self.smtp {
            tasks.spawn(
                outbox::Worker::new(
                    outbox::email::EmailJobs {
                        store: store.clone(),
                        sender: smtp.clone(),
                    },
                    self.email_wake.clone(),
                    4,
                    self.config.smtp.smtp_max_attempts,
                )
                .watched_by(outbox_workers)
                .run(tasks.subscribe()),
            );
        }
        let stop = {
            let tasks = tasks.clone();
            async move {
                tokio::select! {
                    () = shutdown => {}
                    () = tasks.triggered() => {}
                }
            }
        };
        let served = http::serve(
            listener,
            self.metrics_listener,
            self.schema,
            self.services,
            self.config,
            self.metrics,
            tasks.clone(),
            stop,
        )
        .await;
        tasks.trigger();
        // Connections finish their requests and close, workers stop, departures are written:
        // all of it needs the store.
        tasks.finished().await;
        store.close().await;
        served
    }
}

/// The Graph API client Messenger's sends, profiles and page names go through.
fn messenger_graph(config: &Config) -> outbox::messenger::GraphApi {
    outbox::messenger::GraphApi::new(&config.messenger_graph_url, &config.messenger_graph_version)
}

/// The push providers the configuration enables; Web Push always, with `vapid_key`.
fn push_senders(
    config: &Config,
    vapid_key: outbox::push::webpush::VapidKey,
) -> Result<outbox::push::Senders, StartupError> {
    let fcm = match &config.fcm_service_account {
        Some(path) => Some(
            outbox::push::fcm::FcmSender::from_file(path, &config.fcm_endpoint)
                .map_err(StartupError::Push)?,
        ),
        None => None,
    };
    let apns = match (
        &config.apns_key_path,
        &config.apns_key_id,
        &config.apns_team_id,
    ) {
        (Some(path), Some(key_id), Some(team_id)) => {
            let transport = outbox::push::apns::A2Transport::from_key_file(path, key_id, team_id)
                .map_err(StartupError::Push)?;
            Some(outbox::push::apns::ApnsSender::new(Arc::new(transport)))
        }
        _ => None,
    };
    let web_push = outbox::push::webpush::WebPushSender::new(vapid_key, &config.vapid_subject())
        .map_err(StartupError::Push)?;
    Ok(outbox::push::Senders {
        apns,
        fcm,
        web_push: Some(web_push),
    })
}

/// The configured VAPID key, or the one kept in the data directory, generated on first start.
fn vapid_key(config: &Config) -> Result<outbox::push::webpush::VapidKey, StartupError> {
    use outbox::push::webpush::VapidKey;
    let read = |path: &Path| -> Result<Option<VapidKey>, StartupError> {
        match std::fs::read_to_string(path) {
            Ok(text) => VapidKey::parse(&text).map(Some).map_err(|err| {
                StartupError::Push(format!(
                    "the VAPID key {} is unusable: {err}",
                    path.display()
                ))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StartupError::DataDir {
                path: path.display().to_string(),
                source,
            }),
        }
    };
    if let Some(path) = &config.vapid_private_key_path {
        return read(path)?.ok_or_else(|| {
            StartupError::Push(format!(
                "SWITCHBOARD_VAPID_PRIVATE_KEY_PATH: {} does not exist",
                path.display()
            ))
        });
    }
    create_data_dir(&config.data_dir)?;
    let path = config.data_dir.join("vapid-private-key");
    if let Some(key) = read(&path)? {
        return Ok(key);
    }
    let key = VapidKey::generate();
    write_private(&path, &format!("{}\n", key.to_base64url())).map_err(|source| {
        StartupError::DataDir {
            path: path.display().to_string(),
            source,
        }
    })?;
    tracing::info!(path = %path.display(), "generated a VAPID key for Web Push");
    Ok(key)
}

/// Opens the store the configuration names: Postgres or a SQLite file by URL, else SQLite in
/// the data directory.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Database>, StartupError> {
    let store: Arc<dyn Database> = match config.database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => Arc::new(
            store::postgres::connect(url, config.database_max_connections)
                .await
                .map_err(StartupError::Database)?,
        ),
        Some(url) => Arc::new(
            store::sqlite::open_url(url, config.sqlite_synchronous)
                .await
                .map_err(StartupError::Database)?,
        ),
        None => {
            create_data_dir(&config.data_dir)?;
            let path = config.data_dir.join("switchboard.db");
            create_private_file(&path).map_err(|source| StartupError::DataDir {
                path: path.display().to_string(),
                source,
            })?;
            Arc::new(
                store::sqlite::open(&path, config.sqlite_synchronous)
                    .await
                    .map_err(StartupError::Database)?,
            )
        }
    };
    Ok(store)
}

/// Creates the data directory (and its missing parents) readable by the owner only: it holds
/// every conversation and the token-signing secret. An existing directory keeps its mode.
fn create_data_dir(dir: &Path) -> Result<(), StartupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StartupError::DataDir {
        path: dir.display().to_string(),
        source,
    })
}

/// Creates an empty file readable by the owner only, unless it exists. SQLite gives its -wal
/// and -shm files the mode of the database file, so creating that one first covers all three.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// The configured secret, or the one kept in the data directory, generated on first start.
fn jwt_secret(config: &Config) -> Result<Vec<u8>, StartupError> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    create_data_dir(&config.data_dir)?;
    let path = config.data_dir.join("jwt-secret");
    let data_dir_error = |source| StartupError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(secret) if secret.trim().len() >= 32 => return Ok(secret.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(StartupError::Config(format!(
                "{} holds fewer than 32 characters; delete it to generate a new secret",
                path.display()
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(data_dir_error(err)),
    }
    let secret = random_token(48);
    write_private(&path, &secret).map_err(data_dir_error)?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret.into_bytes())
}

/// Where attached files go: the S3-compatible bucket when one is named, else
/// `<data dir>/files`. Download links are signed with a key derived from the server secret,
/// so every node of a cluster signs alike and a link's signature reveals nothing of the secret.
fn file_service_settings(
    config: &Config,
    server_secret: &[u8],
) -> Result<services::files::FileServiceSettings, StartupError> {
    use hmac::Mac;
    let files = &config.files;
    let blobs: Arc<dyn object_store::ObjectStore> = match &files.s3_bucket {
        Some(bucket) => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket.trim())
                .with_region(&files.s3_region)
                .with_allow_http(files.s3_allow_http)
                .with_virtual_hosted_style_request(files.s3_virtual_hosted);
            if let Some(endpoint) = &files.s3_endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            if let (Some(id), Some(secret)) = (&files.s3_access_key_id, &files.s3_secret_access_key)
            {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            Arc::new(builder.build().map_err(|err| {
                StartupError::Config(format!("the S3 file store cannot be used: {err}"))
            })?)
        }
        None => {
            let dir = config.data_dir.join("files");
            let data_dir_error = |source| StartupError::DataDir {
                path: dir.display().to_string(),
                source,
            };
            std::fs::create_dir_all(&dir).map_err(data_dir_error)?;
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|err| data_dir_error(std::io::Error::other(err)))?,
            )
        }
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(server_secret)
        .map_err(|err| StartupError::Config(err.to_string()))?;
    mac.update(b"switchboard file download links");
    Ok(services::files::FileServiceSettings {
        blobs,
        url_key: mac.finalize().into_bytes().to_vec(),
        url_ttl: files.file_url_ttl,
        upload_timeout: files.file_upload_timeout,
    })
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
