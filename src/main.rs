//! The `switchboard` command: serve (the default), migrate, schema, and the admin's
//! commands (org, agent, backup).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::LogFormat;
use switchboard::{App, Config};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A mobile-first live-chat backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Organizations: create one with its owner, or list them.
    #[command(subcommand)]
    Org(switchboard::admin::OrgCommand),
    /// Agents: create, list, reset a password, reactivate.
    #[command(subcommand)]
    Agent(switchboard::admin::AgentCommand),
    /// A consistent copy of the SQLite database, taken while the server runs, with the
    /// data directory's secrets beside it.
    Backup(switchboard::admin::Backup),
    /// Fill the database's first organization with a year of generated chats, for the
    /// reports bench. Never on a database you care about.
    #[command(hide = true)]
    GenerateReportData(switchboard::report_bench::GenerateReportData),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("switchboard: {}", one_line(&err));
            return ExitCode::from(2);
        }
    };
    init_logging(cli.config.log_format);

    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", switchboard::graphql::sdl());
            Ok(())
        }
        Command::Migrate => migrate(cli.config).await,
        Command::GenerateReportData(args) => {
            switchboard::report_bench::generate(&cli.config, &args).await
        }
        Command::Org(command) => switchboard::admin::org(&cli.config, command).await,
        Command::Agent(command) => switchboard::admin::agent(&cli.config, command).await,
        Command::Backup(args) => switchboard::admin::backup(&cli.config, args).await,
        Command::Serve => serve(cli.config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("switchboard: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr, filtered by RUST_LOG: text lines for people, or one JSON object per line
/// with the event's fields at the top level and the enclosing request's (method, route,
/// client, request id) under `span`.
fn init_logging(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// clap's error in one line, naming the environment variable behind the flag, since that is
/// how servers are usually configured.
fn one_line(err: &clap::Error) -> String {
    use clap::CommandFactory;
    use clap::error::{ContextKind, ContextValue};
    let message = err.to_string();
    let first_line = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => flag.split_whitespace().next().unwrap_or_default(),
        _ => return first_line.to_owned(),
    };
    let command = Cli::command();
    let env = command
        .get_arguments()
        .find(|arg| {
            arg.get_long()
                .is_some_and(|long| flag == format!("--{long}"))
        })
        .and_then(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned());
    // An unknown value of a fixed set (a log format, an SMTP TLS mode) names the set.
    let first_line = match err.get(ContextKind::ValidValue) {
        Some(ContextValue::Strings(values)) if !values.is_empty() => {
            format!("{first_line}; use one of: {}", values.join(", "))
        }
        _ => first_line.to_owned(),
    };
    match env {
        Some(env) => format!("{first_line} (from {env} or {flag})"),
        None => first_line,
    }
}

async fn migrate(config: Config) -> Result<(), String> {
    config
        .validate()
        .map_err(|err| format!("invalid configuration: {err}"))?;
    let store = switchboard::open_store(&config)
        .await
        .map_err(|err| err.to_string())?;
    store
        .migrate()
        .await
        .map_err(|err| format!("migration failed: {err}"))?;
    store.close().await;
    println!("migrations applied");
    Ok(())
}

async fn serve(config: Config) -> Result<(), String> {
    let shutdown = shutdown_signal();
    let listen = config.listen;
    // With JSON logs every line is JSON, stdout's too (collectors often read both streams), so
    // the banner is said in log events instead.
    let banner = config.log_format == LogFormat::Text;
    let app = App::start(config).await.map_err(|err| err.to_string())?;
    if let Some(created) = &app.bootstrapped {
        if banner {
            println!("Created organization {:?}.", created.organization.name);
            println!("  owner email:    {}", created.owner.email);
            match &created.generated_password {
                Some(password) => println!("  owner password: {password}"),
                None => println!("  owner password: (as configured)"),
            }
            println!("  widget key:     {}", created.organization.widget_key);
            println!("Sign in with the login mutation; this is shown only once.");
        } else {
            // The password only when generated: this is the one place it is shown.
            tracing::info!(
                organization = %created.organization.name,
                owner_email = %created.owner.email,
                owner_password = created.generated_password.as_deref(),
                widget_key = %created.organization.widget_key,
                "created the first organization; sign in with the login mutation (shown only once)"
            );
        }
    }
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    let address = listener
        .local_addr()
        .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    tracing::info!(%address, backend = app.store.backend_name(), "listening");
    if let Some(metrics) = app.metrics_addr() {
        tracing::info!(%metrics, "serving /metrics on its own address");
    }
    if banner {
        println!("Switchboard is listening on http://{address}/graphql");
        println!("The agent web app: http://{address}/app/");
        if let Some(metrics) = app.metrics_addr() {
            println!("Metrics (Prometheus): http://{metrics}/metrics");
        }
        if app.config.demo {
            println!("The demo shop with the chat widget: http://{address}/demo");
        }
    }
    app.serve(listener, shutdown)
        .await
        .map_err(|err| format!("server failed: {err}"))
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives during start-up is not lost (nor
/// does it kill the process the default way).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
