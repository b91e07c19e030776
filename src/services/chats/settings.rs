//! The organization's routing settings: limits, thresholds and timeouts.

use super::{ChatService, SettingsUpdate};
use crate::domain::Organization;
use crate::error::Result;
use crate::services::auth::Principal;

impl ChatService {
    /// Changes the organization's routing settings. Admins only.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        update: SettingsUpdate,
    ) -> Result<Organization> {
        principal.require_admin("change organization settings")?;
        let org = self.store.organization(principal.organization_id()).await?;
        let settings = org.settings.updated(&update)?;
        let org = self
            .store
            .update_organization_settings(&org.id, &settings)
            .await?;
        // Shorter thresholds bring the chat timers' deadlines nearer.
        self.timer_wake.notify_one();
        // A higher limit is room for queued chats.
        self.drain_queue(&org.id).await?;
        Ok(org)
    }
}
