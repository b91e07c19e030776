//! DataLoaders for what chats, events and agents reference: an organization's agents, groups
//! and settings, and customers. Sibling fields of a list ask within the same moment and the
//! loader answers them together, so 50 chats cost one read of the organization's agents, one
//! of its groups and one concurrent round of customers, not 50 of each.
//!
//! Keys carry the organization, so a batch may mix requests safely. There is no cache: each
//! batch reads through the services as they are now. Shared by the feature modules; it
//! imports none of them.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};

use crate::domain;
use crate::error::Error;
use crate::graphql::{ApiError, ApiResult};
use crate::services::Services;

/// Loads through the services; one per schema.
pub struct Directory {
    services: Arc<Services>,
}

impl Directory {
    /// The loader of the schema serving `services`.
    pub fn loader(services: Arc<Services>) -> DataLoader<Directory> {
        DataLoader::new(Directory { services }, tokio::spawn)
    }
}

/// Every agent of an organization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrganizationAgents(pub String);

/// Every group of an organization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrganizationGroups(pub String);

/// An organization's settings.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrganizationSettings(pub String);

/// One customer of an organization.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CustomerKey {
    pub organization_id: String,
    pub customer_id: String,
}

impl Loader<OrganizationAgents> for Directory {
    type Value = Arc<Vec<domain::Agent>>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[OrganizationAgents],
    ) -> Result<HashMap<OrganizationAgents, Self::Value>, ApiError> {
        let mut loaded = HashMap::new();
        for key in keys {
            let agents = self.services.chat_views.agents_of(&key.0).await?;
            loaded.insert(key.clone(), Arc::new(agents));
        }
        Ok(loaded)
    }
}

impl Loader<OrganizationGroups> for Directory {
    type Value = Arc<Vec<domain::Group>>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[OrganizationGroups],
    ) -> Result<HashMap<OrganizationGroups, Self::Value>, ApiError> {
        let mut loaded = HashMap::new();
        for key in keys {
            let groups = self.services.chat_views.groups_of(&key.0).await?;
            loaded.insert(key.clone(), Arc::new(groups));
        }
        Ok(loaded)
    }
}

impl Loader<OrganizationSettings> for Directory {
    type Value = domain::ChatSettings;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[OrganizationSettings],
    ) -> Result<HashMap<OrganizationSettings, Self::Value>, ApiError> {
        let mut loaded = HashMap::new();
        for key in keys {
            let settings = self.services.chat_views.settings_of(&key.0).await?;
            loaded.insert(key.clone(), settings);
        }
        Ok(loaded)
    }
}

impl Loader<CustomerKey> for Directory {
    type Value = domain::Customer;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CustomerKey],
    ) -> Result<HashMap<CustomerKey, Self::Value>, ApiError> {
        let mut by_organization: HashMap<&str, Vec<String>> = HashMap::new();
        for key in keys {
            by_organization
                .entry(&key.organization_id)
                .or_default()
                .push(key.customer_id.clone());
        }
        let mut loaded = HashMap::new();
        for (organization_id, ids) in by_organization {
            let customers = self
                .services
                .chat_views
                .customers_of(organization_id, &ids)
                .await?;
            for (customer_id, customer) in customers {
                let key = CustomerKey {
                    organization_id: organization_id.to_owned(),
                    customer_id,
                };
                loaded.insert(key, customer);
            }
        }
        Ok(loaded)
    }
}

fn directory<'a>(ctx: &'a Context<'_>) -> &'a DataLoader<Directory> {
    ctx.data_unchecked::<DataLoader<Directory>>()
}

/// An agent of the organization, or NOT_FOUND.
pub async fn agent(
    ctx: &Context<'_>,
    organization_id: &str,
    agent_id: &str,
) -> ApiResult<domain::Agent> {
    let agents = directory(ctx)
        .load_one(OrganizationAgents(organization_id.to_owned()))
        .await?
        .unwrap_or_default();
    agents
        .iter()
        .find(|agent| agent.id == agent_id)
        .cloned()
        .ok_or_else(|| Error::NotFound("no such agent".into()).into())
}

/// The organization's groups among `ids`, in the organization's order.
pub async fn groups(
    ctx: &Context<'_>,
    organization_id: &str,
    ids: &[String],
) -> ApiResult<Vec<domain::Group>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let groups = directory(ctx)
        .load_one(OrganizationGroups(organization_id.to_owned()))
        .await?
        .unwrap_or_default();
    Ok(groups
        .iter()
        .filter(|group| ids.contains(&group.id))
        .cloned()
        .collect())
}

/// The organization's settings.
pub async fn settings(ctx: &Context<'_>, organization_id: &str) -> ApiResult<domain::ChatSettings> {
    directory(ctx)
        .load_one(OrganizationSettings(organization_id.to_owned()))
        .await?
        .ok_or_else(|| Error::NotFound("no such organization".into()).into())
}

/// A customer of the organization, or NOT_FOUND.
pub async fn customer(
    ctx: &Context<'_>,
    organization_id: &str,
    customer_id: &str,
) -> ApiResult<domain::Customer> {
    directory(ctx)
        .load_one(CustomerKey {
            organization_id: organization_id.to_owned(),
            customer_id: customer_id.to_owned(),
        })
        .await?
        .ok_or_else(|| Error::NotFound("no such customer".into()).into())
}
