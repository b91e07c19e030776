//! The organization, its agents and groups: who may see and change what.

use std::collections::HashSet;
use std::sync::Arc;

use crate::bus::{BusEvent, EventBus, Topic};
use crate::domain::{self, Agent, Group, Organization, Role};
use crate::error::{Error, Result};
use crate::services::ChatService;
use crate::services::auth::{Principal, hash_password, new_organization, random_token};
use crate::store::{AgentUpdate, Database, NewAgent};

/// Longest agent, organization or group name.
const MAX_NAME_CHARS: usize = 100;

/// A new agent, as an admin typed it.
#[derive(Debug, Clone)]
pub struct CreateAgent {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: Role,
    pub chat_limit: Option<i32>,
    pub group_ids: Vec<String>,
}

/// A change to an agent; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UpdateAgent {
    pub name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)`: back to the organization's default.
    pub chat_limit: Option<Option<i32>>,
    pub group_ids: Option<Vec<String>>,
}

/// What bootstrapping an empty server created, to print once.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    pub organization: Organization,
    pub owner: Agent,
    /// The password, when it was generated (a configured one is not echoed).
    pub generated_password: Option<String>,
}

/// Account use cases.
pub struct AccountService {
    store: Arc<dyn Database>,
    bus: Arc<dyn EventBus>,
    /// Routes a deactivated agent's chats to others.
    chats: Arc<ChatService>,
}

impl AccountService {
    /// An account service over `store`.
    pub fn new(store: Arc<dyn Database>, bus: Arc<dyn EventBus>, chats: Arc<ChatService>) -> Self {
        AccountService { store, bus, chats }
    }

    /// The widget key of the organization created first, for the demo page; `None` before
    /// any exists.
    pub async fn first_widget_key(&self) -> Result<Option<String>> {
        Ok(self
            .store
            .first_organization()
            .await?
            .map(|organization| organization.widget_key))
    }

    /// On a database with no organization, creates one with its owner.
    pub async fn bootstrap(
        &self,
        organization_name: &str,
        owner_email: &str,
        owner_password: Option<&str>,
    ) -> Result<Option<Bootstrapped>> {
        if self.store.organization_count().await? > 0 {
            return Ok(None);
        }
        let generated_password = match owner_password {
            Some(_) => None,
            None => Some(random_token(15)),
        };
        let password = owner_password
            .or(generated_password.as_deref())
            .unwrap_or_default();
        let (organization, owner) =
            new_organization(organization_name, "Owner", owner_email, password).await?;
        let owner = match self.store.create_organization(&organization, &owner).await {
            Ok(owner) => owner,
            // Another node bootstrapped the same database a moment ago.
            Err(crate::store::DbError::Conflict(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        Ok(Some(Bootstrapped {
            organization,
            owner,
            generated_password,
        }))
    }

    /// The principal's organization.
    pub async fn organization(&self, principal: &Principal) -> Result<Organization> {
        Ok(self.store.organization(principal.organization_id()).await?)
    }

    /// Every agent of the principal's organization, deactivated ones included.
    pub async fn agents(&self, principal: &Principal) -> Result<Vec<Agent>> {
        Ok(self.store.agents(principal.organization_id()).await?)
    }

    /// One agent of the principal's organization.
    pub async fn agent(&self, principal: &Principal, agent_id: &str) -> Result<Agent> {
        self.store
            .agent(principal.organization_id(), agent_id)
            .await
            .map_err(|err| not_found(err, "agent"))
    }

    /// The groups of the principal's organization.
    pub async fn groups(&self, principal: &Principal) -> Result<Vec<Group>> {
        Ok(self.store.groups(principal.organization_id()).await?)
    }

    /// Creates an agent. Admins and owners only; only owners create owners.
    pub async fn create_agent(&self, principal: &Principal, input: CreateAgent) -> Result<Agent> {
        principal.require_admin("create agents")?;
        if !principal.role().can_manage(input.role) {
            return Err(Error::forbidden(&format!(
                "create agents with the role {}",
                input.role
            )));
        }
        let email = domain::normalize_email(&input.email)?;
        let name = domain::validate_name("name", &input.name, MAX_NAME_CHARS)?;
        domain::validate_password(&input.password)?;
        validate_chat_limit(input.chat_limit)?;
        let group_ids = self.validate_groups(principal, input.group_ids).await?;
        let agent = NewAgent {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            email,
            name,
            password_hash: hash_password(input.password).await?,
            role: input.role,
            chat_limit: input.chat_limit,
            group_ids,
            created_at: domain::now(),
        };
        Ok(self.store.create_agent(&agent).await?)
    }

    /// Changes an agent's name, role, limit or groups. Admins and owners only.
    pub async fn update_agent(
        &self,
        principal: &Principal,
        agent_id: &str,
        input: UpdateAgent,
    ) -> Result<Agent> {
        principal.require_admin("change agents")?;
        let target = self.agent(principal, agent_id).await?;
        if !principal.role().can_manage(target.role) {
            return Err(Error::forbidden(&format!(
                "change agents with the role {}",
                target.role
            )));
        }
        // Demoting the last active owner is refused by the store, in the change's transaction.
        if let Some(role) = input.role
            && !principal.role().can_manage(role)
        {
            return Err(Error::forbidden(&format!("give agents the role {role}")));
        }
        let name = input
            .name
            .map(|name| domain::validate_name("name", &name, MAX_NAME_CHARS))
            .transpose()?;
        if let Some(limit) = input.chat_limit {
            validate_chat_limit(limit)?;
        }
        let group_ids = match input.group_ids {
            Some(ids) => Some(self.validate_groups(principal, ids).await?),
            None => None,
        };
        let update = AgentUpdate {
            name,
            role: input.role,
            chat_limit: input.chat_limit,
            group_ids,
        };
        let agent = self
            .store
            .update_agent(principal.organization_id(), agent_id, &update)
            .await?;
        self.announce(&agent);
        Ok(agent)
    }

    /// Deactivates an agent: they cannot sign in, their sessions end, their history stays.
    pub async fn deactivate_agent(&self, principal: &Principal, agent_id: &str) -> Result<Agent> {
        principal.require_admin("deactivate agents")?;
        if agent_id == principal.agent.id {
            return Err(Error::BadUserInput("you cannot deactivate yourself".into()));
        }
        let target = self.agent(principal, agent_id).await?;
        if !principal.role().can_manage(target.role) {
            return Err(Error::forbidden(&format!(
                "deactivate agents with the role {}",
                target.role
            )));
        }
        // The store refuses to deactivate the last active owner, in the same transaction.
        let agent = self
            .store
            .deactivate_agent(principal.organization_id(), agent_id, domain::now())
            .await?;
        tracing::warn!(
            agent = %agent.id,
            by = %principal.agent.id,
            reason = "agent deactivated",
            "the agent's sessions revoked"
        );
        // Customers of theirs would otherwise wait on someone who is gone.
        self.chats.reroute_chats_of_deactivated(&agent).await?;
        self.announce(&agent);
        Ok(agent)
    }

    /// Creates a group. Admins and owners only.
    pub async fn create_group(&self, principal: &Principal, name: &str) -> Result<Group> {
        principal.require_admin("create groups")?;
        let group = Group {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            name: domain::validate_name("name", name, MAX_NAME_CHARS)?,
            created_at: domain::now(),
        };
        Ok(self.store.create_group(&group).await?)
    }

    /// Tells the agent's apps that the agent changed, and every node's connections of theirs to
    /// re-check their rights (a new role or groups, a deactivation).
    fn announce(&self, agent: &Agent) {
        self.bus.publish(
            Topic::Access,
            BusEvent::AccessChanged {
                agent_id: agent.id.clone(),
            },
        );
        self.bus.publish(
            Topic::Agent(agent.id.clone()),
            BusEvent::AgentChanged {
                organization_id: agent.organization_id.clone(),
                agent_id: agent.id.clone(),
            },
        );
    }

    /// Group ids must name groups of the principal's organization; duplicates are dropped.
    async fn validate_groups(
        &self,
        principal: &Principal,
        ids: Vec<String>,
    ) -> Result<Vec<String>> {
        if ids.is_empty() {
            return Ok(ids);
        }
        let known: HashSet<String> = self
            .groups(principal)
            .await?
            .into_iter()
            .map(|group| group.id)
            .collect();
        let mut seen = HashSet::new();
        let mut valid = Vec::new();
        for id in ids {
            if !known.contains(&id) {
                return Err(Error::BadUserInput(format!("no group with id {id:?}")));
            }
            if seen.insert(id.clone()) {
                valid.push(id);
            }
        }
        Ok(valid)
    }
}

fn validate_chat_limit(limit: Option<i32>) -> Result<()> {
    match limit {
        Some(limit) if !(1..=domain::MAX_CHAT_LIMIT).contains(&limit) => Err(Error::BadUserInput(
            format!("chatLimit must be between 1 and {}", domain::MAX_CHAT_LIMIT),
        )),
        _ => Ok(()),
    }
}

/// Names the missing thing instead of a bare "not found".
fn not_found(err: crate::store::DbError, what: &str) -> Error {
    match err {
        crate::store::DbError::NotFound => Error::NotFound(format!("no such {what}")),
        other => other.into(),
    }
}
