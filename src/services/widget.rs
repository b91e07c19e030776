//! The chat widget's set-up: what a page with the widget key may read, what admins change,
//! which sites may embed it, and the secret that signs visitor identities.

use std::sync::Arc;

use crate::domain::{self, Group, Organization, WidgetSettings, WidgetSettingsUpdate};
use crate::error::{Error, Result};
use crate::services::auth::{Principal, random_token};
use crate::store::{Database, DbError};

/// Random bytes in an identity secret.
const IDENTITY_SECRET_BYTES: usize = 32;

/// What a page needs to draw the widget.
pub struct WidgetConfig {
    pub organization: Organization,
    pub settings: WidgetSettings,
    pub groups: Vec<Group>,
}

/// A visitor's claim to be the shop's customer `user_id`, signed by the shop's server.
#[derive(Debug, Clone)]
pub struct VisitorIdentity {
    pub user_id: String,
    pub signature: String,
}

/// The widget's set-up.
pub struct WidgetService {
    store: Arc<dyn Database>,
}

impl WidgetService {
    pub fn new(store: Arc<dyn Database>) -> Self {
        WidgetService { store }
    }

    /// The widget's looks, words and groups, for a page of `origin`. Public.
    pub async fn config(&self, widget_key: &str, origin: Option<&str>) -> Result<WidgetConfig> {
        let (organization, settings) =
            organization_for_page(&*self.store, widget_key, origin).await?;
        let groups = self.store.groups(&organization.id).await?;
        Ok(WidgetConfig {
            organization,
            settings,
            groups,
        })
    }

    /// The organization's widget settings, for any of its agents.
    pub async fn settings(&self, principal: &Principal) -> Result<WidgetSettings> {
        Ok(self
            .store
            .widget_settings(principal.organization_id())
            .await?)
    }

    /// Changes the widget settings. Admins only; pages pick them up on their next load.
    pub async fn update(
        &self,
        principal: &Principal,
        update: WidgetSettingsUpdate,
    ) -> Result<WidgetSettings> {
        principal.require_admin("change the widget")?;
        let organization_id = principal.organization_id();
        let settings = self
            .store
            .widget_settings(organization_id)
            .await?
            .updated(update)?;
        self.store
            .update_widget_settings(organization_id, &settings, domain::now())
            .await?;
        Ok(settings)
    }

    /// The secret the shop signs visitor identities with (created on first read); with
    /// `rotate`, a new one, and signatures made with the old one stop working. Admins only.
    pub async fn identity_secret(&self, principal: &Principal, rotate: bool) -> Result<String> {
        principal.require_admin("read the identity secret")?;
        Ok(self
            .store
            .identity_secret(
                principal.organization_id(),
                &random_token(IDENTITY_SECRET_BYTES),
                rotate,
                domain::now(),
            )
            .await?)
    }
}

/// The organization of `widget_key`, when a page of `origin` may use it.
pub(crate) async fn organization_for_page(
    store: &dyn Database,
    widget_key: &str,
    origin: Option<&str>,
) -> Result<(Organization, WidgetSettings)> {
    let organization = store
        .organization_by_widget_key(widget_key.trim())
        .await
        .map_err(|err| match err {
            DbError::NotFound => Error::NotFound("no such widget key".into()),
            other => other.into(),
        })?;
    let settings = store.widget_settings(&organization.id).await?;
    if !settings.allows_origin(origin) {
        return Err(Error::Forbidden(format!(
            "the organization does not allow its widget on {}",
            origin.unwrap_or_default()
        )));
    }
    Ok((organization, settings))
}

/// The user id `identity` proves for the organization, or FORBIDDEN.
pub(crate) async fn verified_user_id(
    store: &dyn Database,
    organization_id: &str,
    identity: &VisitorIdentity,
) -> Result<String> {
    let user_id = identity.user_id.trim();
    if user_id.is_empty() || user_id.chars().count() > domain::MAX_IDENTITY_USER_ID_CHARS {
        return Err(Error::BadUserInput(format!(
            "identity.userId must be 1 to {} characters",
            domain::MAX_IDENTITY_USER_ID_CHARS
        )));
    }
    // No secret yet: nobody can have signed anything.
    let secret = store.stored_identity_secret(organization_id).await?;
    if secret.is_some_and(|secret| domain::identity_verified(&secret, user_id, &identity.signature))
    {
        Ok(user_id.to_owned())
    } else {
        Err(Error::Forbidden(
            "identity.signature is not the organization's signature of identity.userId".into(),
        ))
    }
}
