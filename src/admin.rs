//! The admin's command line: organizations and agents, password resets and backups, run on
//! the configured database whether the server runs or not. Each command is one short
//! transaction through the store, as the API's own changes are, so a running server (or every
//! node of a cluster) sees it as it sees any change: a reset password or a reactivation
//! re-checks the agent's connections (the access triggers of migration 0007).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::Config;
use crate::domain::{self, Agent, Role};
use crate::services::auth::{hash_password, new_organization, random_token};
use crate::store::{Database, DbError, NewAgent};

/// `switchboard org …`
#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization with its first owner; prints the owner's password unless it
    /// is read from stdin.
    Create {
        /// The organization's name.
        #[arg(long)]
        name: String,
        /// The owner's email address.
        #[arg(long)]
        owner_email: String,
        /// The owner's name.
        #[arg(long, default_value = "Owner")]
        owner_name: String,
        /// Read the owner's password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the organizations: id, name, widget key, agents, created.
    List,
}

/// `switchboard agent …`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent; prints their password unless it is read from stdin.
    Create {
        /// The organization's id (`switchboard org list`).
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// AGENT, SUPERVISOR, ADMIN or OWNER.
        #[arg(long, default_value = "AGENT")]
        role: String,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List agents: id, organization, email, name, role, active.
    List {
        /// Only this organization's agents.
        #[arg(long)]
        org: Option<String>,
    },
    /// Set a new password (printed once, or read from stdin) and end every session of the
    /// agent's, on every device.
    ResetPassword(WhichAgent),
    /// Make a deactivated agent active again; they sign in with their password.
    Reactivate(WhichAgent),
}

/// An agent named by email, and by organization when several have that email.
#[derive(Debug, Args)]
pub struct WhichAgent {
    #[arg(long)]
    pub email: String,
    /// The organization's id, when agents of several organizations have this email.
    #[arg(long)]
    pub org: Option<String>,
    /// Read the new password from the first line of stdin (reset-password only).
    #[arg(long)]
    pub password_stdin: bool,
}

/// `switchboard backup <file>`
#[derive(Debug, Args)]
pub struct Backup {
    /// Where the copy of the database goes (it must not exist). The JWT secret and VAPID key
    /// of the data directory are copied beside it, as `<file>.jwt-secret` and
    /// `<file>.vapid-private-key`.
    pub file: PathBuf,
}

type Outcome = Result<(), String>;

fn db(err: DbError) -> String {
    err.to_string()
}

async fn open(config: &Config) -> Result<Arc<dyn Database>, String> {
    let store = crate::open_store(config)
        .await
        .map_err(|err| err.to_string())?;
    store.migrate().await.map_err(db)?;
    Ok(store)
}

/// The password to set: the first line of stdin, checked, or a new random one to print.
fn password(from_stdin: bool) -> Result<(String, bool), String> {
    if !from_stdin {
        return Ok((random_token(15), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| format!("cannot read the password from stdin: {err}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    domain::validate_password(&password).map_err(|err| err.to_string())?;
    Ok((password, false))
}

/// A line to stdout, failing quietly when stdout is closed.
fn say(line: &str) {
    let _ = writeln!(std::io::stdout(), "{line}");
}

pub async fn org(config: &Config, command: OrgCommand) -> Outcome {
    let store = open(config).await?;
    let result = match command {
        OrgCommand::Create {
            name,
            owner_email,
            owner_name,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            let (organization, owner) =
                new_organization(&name, &owner_name, &owner_email, &password)
                    .await
                    .map_err(|err| err.to_string())?;
            let owner = store
                .create_organization(&organization, &owner)
                .await
                .map_err(|err| match err {
                    DbError::Conflict(_) => format!("{} is already taken", owner.email),
                    other => other.to_string(),
                })?;
            say(&format!(
                "organization {} {}",
                organization.id, organization.name
            ));
            say(&format!("widget key   {}", organization.widget_key));
            say(&format!("owner        {} {}", owner.id, owner.email));
            if generated {
                say(&format!("password     {password}"));
            }
            Ok(())
        }
        OrgCommand::List => {
            say("id\tname\twidget_key\tagents\tcreated_at");
            for org in store.organizations().await.map_err(db)? {
                let agents = store.agents(&org.id).await.map_err(db)?.len();
                say(&format!(
                    "{}\t{}\t{}\t{agents}\t{}",
                    org.id,
                    org.name,
                    org.widget_key,
                    org.created_at.to_rfc3339()
                ));
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

/// The one agent with this email (in `org` when given).
async fn find_agent(store: &dyn Database, which: &WhichAgent) -> Result<Agent, String> {
    let email = domain::normalize_email(&which.email).map_err(|err| err.to_string())?;
    let found: Vec<Agent> = store
        .agent_credentials(&email)
        .await
        .map_err(db)?
        .into_iter()
        .map(|(agent, _)| agent)
        .filter(|agent| {
            which
                .org
                .as_ref()
                .is_none_or(|o| &agent.organization_id == o)
        })
        .collect();
    match &found[..] {
        [agent] => Ok(agent.clone()),
        [] => Err(match &which.org {
            Some(org) => format!("no agent {email} in organization {org}"),
            None => format!("no agent {email}"),
        }),
        several => Err(format!(
            "agents of several organizations have the email {email}: give --org (one of {})",
            several
                .iter()
                .map(|a| a.organization_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

pub async fn agent(config: &Config, command: AgentCommand) -> Outcome {
    let store = open(config).await?;
    let result = run_agent(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_agent(store: &dyn Database, command: AgentCommand) -> Outcome {
    match command {
        AgentCommand::Create {
            org,
            email,
            name,
            role,
            password_stdin,
        } => {
            let role: Role = role.trim().to_uppercase().parse().map_err(|_| {
                format!("unknown role {role:?}: use AGENT, SUPERVISOR, ADMIN or OWNER")
            })?;
            store.organization(&org).await.map_err(|err| match err {
                DbError::NotFound => format!("no organization {org} (see `switchboard org list`)"),
                other => other.to_string(),
            })?;
            let (password, generated) = password(password_stdin)?;
            let agent = NewAgent {
                id: domain::new_id(),
                organization_id: org,
                email: domain::normalize_email(&email).map_err(|err| err.to_string())?,
                name: domain::validate_name("name", &name, 100).map_err(|err| err.to_string())?,
                password_hash: hash_password(password.clone())
                    .await
                    .map_err(|err| err.to_string())?,
                role,
                chat_limit: None,
                group_ids: Vec::new(),
                created_at: domain::now(),
            };
            let agent = store.create_agent(&agent).await.map_err(|err| match err {
                DbError::Conflict(_) => {
                    format!("the organization already has an agent {}", agent.email)
                }
                other => other.to_string(),
            })?;
            say(&format!(
                "agent    {} {} {}",
                agent.id, agent.email, agent.role
            ));
            if generated {
                say(&format!("password {password}"));
            }
            Ok(())
        }
        AgentCommand::List { org } => {
            let organizations = match org {
                Some(id) => vec![id],
                None => store
                    .organizations()
                    .await
                    .map_err(db)?
                    .into_iter()
                    .map(|o| o.id)
                    .collect(),
            };
            say("id\torganization\temail\tname\trole\tactive");
            for org in organizations {
                for agent in store.agents(&org).await.map_err(db)? {
                    say(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        agent.id, org, agent.email, agent.name, agent.role, agent.active
                    ));
                }
            }
            Ok(())
        }
        AgentCommand::ResetPassword(which) => {
            let agent = find_agent(store, &which).await?;
            let (password, generated) = password(which.password_stdin)?;
            let hash = hash_password(password.clone())
                .await
                .map_err(|err| err.to_string())?;
            // No session is kept: every device signs in again with the new password.
            store
                .change_password(&agent.id, &hash, "", domain::now())
                .await
                .map_err(db)?;
            say(&format!(
                "password reset for {} ({}); every session ended",
                agent.email, agent.id
            ));
            if generated {
                say(&format!("password {password}"));
            }
            if !agent.active {
                say("the agent is deactivated: `switchboard agent reactivate` lets them in");
            }
            Ok(())
        }
        AgentCommand::Reactivate(which) => {
            let agent = find_agent(store, &which).await?;
            if agent.active {
                say(&format!("{} is already active", agent.email));
                return Ok(());
            }
            let agent = store
                .reactivate_agent(&agent.organization_id, &agent.id)
                .await
                .map_err(db)?;
            say(&format!("reactivated {} ({})", agent.email, agent.id));
            Ok(())
        }
    }
}

/// `backup <file>`: a consistent copy of a SQLite database taken while the server runs
/// (`VACUUM INTO`), with the data directory's secrets beside it. Postgres has its own tools.
pub async fn backup(config: &Config, args: Backup) -> Outcome {
    if let Some(url) = config.database_url.as_deref()
        && url.starts_with("postgres")
    {
        return Err(
            "this server runs on Postgres: back it up with pg_dump (for example \
             `pg_dump --format=custom --file=switchboard.dump \"$DATABASE_URL\"`) and keep the \
             JWT secret and VAPID key of the nodes' configuration with it"
                .into(),
        );
    }
    if args.file.exists() {
        return Err(format!(
            "{} exists already: a backup never overwrites a file",
            args.file.display()
        ));
    }
    let store = open(config).await?;
    let copied = store.backup_into(&args.file).await;
    store.close().await;
    copied.map_err(|err| format!("the backup failed: {err}"))?;
    // It holds password hashes and every transcript.
    restrict(&args.file);
    say(&format!("database   {}", args.file.display()));
    for secret in ["jwt-secret", "vapid-private-key"] {
        let from = config.data_dir.join(secret);
        let to = beside(&args.file, secret);
        if from.exists() {
            std::fs::copy(&from, &to)
                .map_err(|err| format!("cannot copy {}: {err}", from.display()))?;
            restrict(&to);
            say(&format!("{secret:<10} {}", to.display()));
        } else if secret == "jwt-secret" && config.jwt_secret.is_some() {
            say(
                "jwt-secret is set in the configuration (SWITCHBOARD_JWT_SECRET): keep it with the backup",
            );
        }
    }
    Ok(())
}

/// `<file>.<suffix>`
fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Only the owner may read a copied secret.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}
