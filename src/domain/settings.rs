//! Organization settings rules: validating a change of settings, an agent's effective chat
//! limit, and whether an agent is routable. Every layer asks these, so they are written once.

use chrono::Duration;

use super::chat::ChatSettings;
use super::validation::ValidationError;
use super::{Agent, MAX_CHAT_LIMIT, RoutingStatus};

/// New organization settings; `None` keeps a value.
#[derive(Debug, Clone, Default)]
pub struct SettingsUpdate {
    pub default_chat_limit: Option<i32>,
    pub auto_transfer_seconds: Option<i32>,
    pub waiting_long_seconds: Option<i32>,
    pub customer_idle_seconds: Option<i32>,
    pub auto_close_seconds: Option<i32>,
    pub presence_grace_seconds: Option<i32>,
    pub queue_limit: Option<i32>,
    pub acceptance_timeout_seconds: Option<i32>,
    pub queue_abandon_seconds: Option<i32>,
    pub new_chats_per_minute: Option<i32>,
    pub agents_see_group_chats: Option<bool>,
}

const DAY: i32 = 86_400;

impl ChatSettings {
    /// These settings with `update` applied, or the first value out of its range (named as
    /// the API spells it).
    pub fn updated(&self, update: &SettingsUpdate) -> Result<ChatSettings, ValidationError> {
        let mut settings = *self;
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
            settings.default_chat_limit = within("defaultChatLimit", limit, 1, MAX_CHAT_LIMIT)?;
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
            settings.new_chats_per_minute = within("newChatsPerMinute", cap, 1, 1_000_000)?;
        }
        if let Some(limit) = update.queue_limit {
            settings.queue_limit = within("queueLimit", limit, 0, 10_000)?;
        }
        if let Some(see) = update.agents_see_group_chats {
            settings.agents_see_group_chats = see;
        }
        Ok(settings)
    }

    /// An agent's chat limit: their own, or this organization's default.
    pub fn chat_limit_of(&self, own: Option<i32>) -> i32 {
        own.unwrap_or(self.default_chat_limit)
    }
}

impl Agent {
    /// How many active chats the agent takes at once: their own limit, or the organization's
    /// default.
    pub fn effective_chat_limit(&self, settings: &ChatSettings) -> i32 {
        settings.chat_limit_of(self.chat_limit)
    }

    /// Whether new chats may go to the agent: active, ACCEPTING_CHATS, and `reachable` (a
    /// live connection, or an enabled push device within the grace period). Room below the
    /// limit is the routing choice's question.
    pub fn routable(&self, reachable: bool) -> bool {
        self.active && reachable && self.routing_status == RoutingStatus::AcceptingChats
    }
}

fn within(name: &str, value: i32, min: i32, max: i32) -> Result<i32, ValidationError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError(format!(
            "{name} must be between {min} and {max}"
        )))
    }
}

fn seconds(
    name: &str,
    value: Option<i32>,
    current: Duration,
    min: i32,
    max: i32,
) -> Result<Duration, ValidationError> {
    match value {
        None => Ok(current),
        Some(v) => Ok(Duration::seconds(i64::from(within(name, v, min, max)?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn agent(limit: Option<i32>) -> Agent {
        Agent {
            id: "a".into(),
            organization_id: "o".into(),
            email: "a@example.com".into(),
            name: "A".into(),
            role: super::super::Role::Agent,
            routing_status: RoutingStatus::AcceptingChats,
            chat_limit: limit,
            group_ids: Vec::new(),
            active: true,
            last_login_at: None,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn an_agent_without_a_limit_of_their_own_follows_the_organization() {
        let settings = ChatSettings::default();
        assert_eq!(
            agent(None).effective_chat_limit(&settings),
            settings.default_chat_limit
        );
        assert_eq!(agent(Some(7)).effective_chat_limit(&settings), 7);
    }

    #[test]
    fn only_active_reachable_accepting_agents_are_routable() {
        let mut a = agent(None);
        assert!(a.routable(true));
        assert!(!a.routable(false));
        a.routing_status = RoutingStatus::NotAcceptingChats;
        assert!(!a.routable(true));
        a.routing_status = RoutingStatus::AcceptingChats;
        a.active = false;
        assert!(!a.routable(true), "a deactivated agent gets no chats");
    }

    #[test]
    fn settings_out_of_range_are_refused_by_their_api_name() {
        let settings = ChatSettings::default();
        let err = settings
            .updated(&SettingsUpdate {
                queue_abandon_seconds: Some(5),
                ..SettingsUpdate::default()
            })
            .unwrap_err();
        assert_eq!(err.0, "queueAbandonSeconds must be between 10 and 86400");
        let err = settings
            .updated(&SettingsUpdate {
                default_chat_limit: Some(0),
                ..SettingsUpdate::default()
            })
            .unwrap_err();
        assert_eq!(err.0, "defaultChatLimit must be between 1 and 100");
        let changed = settings
            .updated(&SettingsUpdate {
                queue_limit: Some(0),
                auto_close_seconds: Some(7 * DAY),
                ..SettingsUpdate::default()
            })
            .unwrap();
        assert_eq!(changed.queue_limit, 0);
        assert_eq!(changed.auto_close_after, Duration::days(7));
        assert_eq!(changed.waiting_long_after, settings.waiting_long_after);
    }
}
