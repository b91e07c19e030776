//! GraphQL object, enum and input types. Objects wrap domain types; the domain knows nothing
//! of GraphQL.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::{ApiResult, ContextExt, limits};
use crate::services::AuthSession;

/// What an agent may do in their organization.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Role")]
pub enum Role {
    /// Answers chats.
    Agent,
    /// Also watches and joins the chats of their groups.
    Supervisor,
    /// Also manages agents, groups and settings.
    Admin,
    /// Also manages admins and other owners.
    Owner,
}

/// Whether an agent gets new chats.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::RoutingStatus")]
pub enum RoutingStatus {
    /// Gets new chats while below their chat limit.
    AcceptingChats,
    /// Gets no new chats; current chats continue and the agent can monitor.
    NotAcceptingChats,
    /// Signed off.
    Offline,
}

/// A support agent.
pub struct Agent(pub domain::Agent);

#[Object]
impl Agent {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn email(&self) -> &str {
        &self.0.email
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn role(&self) -> Role {
        self.0.role.into()
    }

    async fn routing_status(&self) -> RoutingStatus {
        self.0.routing_status.into()
    }

    /// Whether chats can reach the agent now: a live app connection (or the grace period
    /// after one), or an enabled push device. An agent who accepts chats but is unreachable
    /// gets none; apps show them as unreachable rather than accepting.
    async fn reachable(&self, ctx: &Context<'_>) -> ApiResult<bool> {
        Ok(ctx.services().presence.reachable(&self.0.id).await?)
    }

    /// How many active chats the agent handles at once: their own limit, or the
    /// organization's default when they have none.
    async fn chat_limit(&self, ctx: &Context<'_>) -> ApiResult<i32> {
        match self.0.chat_limit {
            Some(limit) => Ok(limit),
            None => Ok(ctx
                .services()
                .store
                .organization(&self.0.organization_id)
                .await?
                .settings
                .default_chat_limit),
        }
    }

    /// Whether the agent has a limit of their own rather than the organization's default.
    async fn has_own_chat_limit(&self) -> bool {
        self.0.chat_limit.is_some()
    }

    /// The groups (departments) the agent belongs to.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn groups(&self, ctx: &Context<'_>) -> ApiResult<Vec<Group>> {
        if self.0.group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let groups = ctx.services().store.groups(&self.0.organization_id).await?;
        Ok(groups
            .into_iter()
            .filter(|group| self.0.group_ids.contains(&group.id))
            .map(Group)
            .collect())
    }

    /// Deactivated agents cannot sign in; their history stays.
    async fn is_active(&self) -> bool {
        self.0.active
    }

    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_login_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// A department: chats may target a group, agents belong to groups.
pub struct Group(pub domain::Group);

#[Object]
impl Group {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// The company the signed-in agent works for.
pub struct Organization(pub domain::Organization);

#[Object]
impl Organization {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The public key the chat widget is installed with.
    async fn widget_key(&self) -> &str {
        &self.0.widget_key
    }

    /// The chat limit of agents who have none of their own.
    async fn default_chat_limit(&self) -> i32 {
        self.0.settings.default_chat_limit
    }

    /// Routing limits, thresholds and timeouts.
    async fn settings(&self) -> crate::graphql::chat_types::OrganizationSettings {
        self.0.settings.into()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Tokens for a signed-in agent.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Short-lived; send it as `Authorization: Bearer <token>` or in connection_init.
    pub access_token: String,
    /// Trade it for new tokens with refreshToken before the access token expires. Each refresh
    /// token works once; using one twice signs the session out.
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub agent: Agent,
}

impl From<AuthSession> for AuthPayload {
    fn from(session: AuthSession) -> Self {
        AuthPayload {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            access_token_expires_at: session.access_token_expires_at,
            agent: Agent(session.agent),
        }
    }
}

/// A new organization and its owner.
#[derive(InputObject)]
pub struct SignUpInput {
    pub organization_name: String,
    /// The owner's name.
    pub name: String,
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
}

#[derive(InputObject)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
    /// Which organization to sign in to, for a person who is an agent of several with the same
    /// email. Without it, the account whose password matches is signed in (the one signed in
    /// most recently, should several match).
    pub organization_id: Option<ID>,
}

#[derive(InputObject)]
pub struct ChangePasswordInput {
    pub current_password: String,
    /// 8 to 128 characters.
    pub new_password: String,
}

#[derive(InputObject)]
pub struct CreateAgentInput {
    pub email: String,
    pub name: String,
    /// 8 to 128 characters; the agent can change it later.
    pub password: String,
    #[graphql(default_with = "Role::Agent")]
    pub role: Role,
    /// 1 to 100; omitted follows the organization's default.
    pub chat_limit: Option<i32>,
    #[graphql(default)]
    pub group_ids: Vec<ID>,
}

/// Omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateAgentInput {
    pub id: ID,
    pub name: Option<String>,
    pub role: Option<Role>,
    /// 1 to 100; null returns the agent to the organization's default.
    pub chat_limit: MaybeUndefined<i32>,
    /// Replaces the agent's groups.
    pub group_ids: Option<Vec<ID>>,
}

#[derive(InputObject)]
pub struct CreateGroupInput {
    pub name: String,
}
