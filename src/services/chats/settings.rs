//! The organization's routing settings: limits, thresholds and timeouts.

use super::{ChatService, SettingsUpdate};
use crate::domain::{self, Organization};
use crate::error::{Error, Result};
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
        let mut settings = org.settings;
        let seconds = |name: &str,
                       value: Option<i32>,
                       current: chrono::Duration,
                       min: i32,
                       max: i32|
         -> Result<chrono::Duration> {
            match value {
                None => Ok(current),
                Some(v) if (min..=max).contains(&v) => Ok(chrono::Duration::seconds(i64::from(v))),
                Some(_) => Err(Error::BadUserInput(format!(
                    "{name} must be between {min} and {max}"
                ))),
            }
        };
        const DAY: i32 = 86_400;
        settings.auto_transfer_after = seconds(
            "autoTransferSeconds",
            update.auto_transfer_seconds,
            settings.auto_transfer_after,
            1,
            DAY,
        )?;
        settings.waiting_long_after = seconds(
            "waitingLongSeconds",
            update.waiting_long_seconds,
            settings.waiting_long_after,
            1,
            DAY,
        )?;
        settings.customer_idle_after = seconds(
            "customerIdleSeconds",
            update.customer_idle_seconds,
            settings.customer_idle_after,
            1,
            DAY,
        )?;
        settings.auto_close_after = seconds(
            "autoCloseSeconds",
            update.auto_close_seconds,
            settings.auto_close_after,
            1,
            7 * DAY,
        )?;
        settings.presence_grace = seconds(
            "presenceGraceSeconds",
            update.presence_grace_seconds,
            settings.presence_grace,
            1,
            DAY,
        )?;
        settings.acceptance_timeout = seconds(
            "acceptanceTimeoutSeconds",
            update.acceptance_timeout_seconds,
            settings.acceptance_timeout,
            1,
            DAY,
        )?;
        if let Some(limit) = update.default_chat_limit {
            if !(1..=domain::MAX_CHAT_LIMIT).contains(&limit) {
                return Err(Error::BadUserInput(format!(
                    "defaultChatLimit must be between 1 and {}",
                    domain::MAX_CHAT_LIMIT
                )));
            }
            settings.default_chat_limit = limit;
        }
        // At least 10 seconds: a reconnecting widget needs a moment.
        settings.queue_abandon_after = seconds(
            "queueAbandonSeconds",
            update.queue_abandon_seconds,
            settings.queue_abandon_after,
            10,
            DAY,
        )?;
        if let Some(cap) = update.new_chats_per_minute {
            if !(1..=1_000_000).contains(&cap) {
                return Err(Error::BadUserInput(
                    "newChatsPerMinute must be between 1 and 1000000".into(),
                ));
            }
            settings.new_chats_per_minute = cap;
        }
        if let Some(limit) = update.queue_limit {
            if !(0..=10_000).contains(&limit) {
                return Err(Error::BadUserInput(
                    "queueLimit must be between 0 and 10000".into(),
                ));
            }
            settings.queue_limit = limit;
        }
        let org = self
            .store
            .update_organization_settings(&org.id, &settings)
            .await?;
        // A higher limit is room for queued chats.
        self.drain_queue(&org.id).await?;
        Ok(org)
    }
}
