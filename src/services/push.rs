//! Agents' push devices and notification preferences. A device makes its agent reachable, so
//! registering one also routes waiting customers.

use std::sync::Arc;

use crate::domain::{self, NotificationKind, Platform, PushDevice, PushEnvironment, WebPushKeys};
use crate::error::{Error, Result};
use crate::services::{ChatService, Principal};
use crate::store::Database;

/// Longest device token we accept (FCM tokens run to about 200 characters, APNs to 200 hex).
const MAX_TOKEN_CHARS: usize = 4096;

/// A device an agent's app registers.
#[derive(Debug, Clone)]
pub struct DeviceRegistration {
    pub platform: Platform,
    pub token: String,
    pub app_id: String,
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
    /// A browser's subscription keys: required for `Platform::Web`, refused otherwise.
    pub web_push: Option<WebPushKeys>,
}

/// What browsers need to subscribe, and which subscriptions are accepted.
#[derive(Debug, Clone, Default)]
pub struct WebPushSettings {
    /// The VAPID public key, base64url of the uncompressed P-256 point: the
    /// `applicationServerKey` a browser subscribes with.
    pub public_key: String,
    /// Accept endpoints over plain http and at local addresses (tests, a push service on
    /// your own network). Off, the server only posts to public https push services.
    pub allow_local: bool,
}

/// Device and preference use cases.
pub struct PushService {
    store: Arc<dyn Database>,
    /// Routes the queue once a device makes the agent reachable.
    chats: Arc<ChatService>,
    web_push: WebPushSettings,
}

impl PushService {
    /// A push service over `store`.
    pub fn new(
        store: Arc<dyn Database>,
        chats: Arc<ChatService>,
        web_push: WebPushSettings,
    ) -> Self {
        PushService {
            store,
            chats,
            web_push,
        }
    }

    /// The VAPID public key browsers subscribe with.
    pub fn web_push_public_key(&self) -> &str {
        &self.web_push.public_key
    }

    /// Registers (or re-registers) a device for the principal. A token registered by another
    /// agent of the organization before moves to this one: a phone changes hands, its token
    /// stays. A token of another organization's agent is refused (CONFLICT) and stays there:
    /// otherwise anyone who learned a token could divert that agent's pushes.
    ///
    /// A device makes the agent reachable, so waiting customers are routed afterwards.
    pub async fn register_device(
        &self,
        principal: &Principal,
        input: DeviceRegistration,
    ) -> Result<PushDevice> {
        let token = input.token.trim();
        if token.is_empty()
            || token.chars().count() > MAX_TOKEN_CHARS
            || token.contains(char::is_whitespace)
        {
            return Err(Error::BadUserInput(format!(
                "token must be 1 to {MAX_TOKEN_CHARS} characters without spaces"
            )));
        }
        let (token, web_push) = match (input.platform, &input.web_push) {
            (Platform::Web, Some(keys)) => {
                let (endpoint, keys) =
                    domain::validate_web_push_subscription(token, keys, self.web_push.allow_local)?;
                (endpoint, Some(keys))
            }
            (Platform::Web, None) => {
                return Err(Error::BadUserInput(
                    "webPush (the subscription's p256dh and auth keys) is required for \
                     platform WEB"
                        .into(),
                ));
            }
            (_, Some(_)) => {
                return Err(Error::BadUserInput(
                    "webPush is only for platform WEB".into(),
                ));
            }
            (_, None) => (token.to_owned(), None),
        };
        let app_id = domain::validate_name("appId", &input.app_id, 255)?;
        let optional = |field: &str, value: Option<String>, max: usize| -> Result<Option<String>> {
            value
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| domain::validate_name(field, &v, max).map_err(Error::from))
                .transpose()
        };
        let now = domain::now();
        let device = PushDevice {
            id: domain::new_id(),
            agent_id: principal.agent.id.clone(),
            organization_id: principal.organization_id().to_owned(),
            platform: input.platform,
            token,
            app_id,
            environment: input.environment,
            locale: optional("locale", input.locale, 35)?,
            device_name: optional("deviceName", input.device_name, 100)?,
            disabled_reason: None,
            web_push,
            created_at: now,
            updated_at: now,
        };
        let device = self.store.upsert_push_device(&device).await?;
        self.chats.drain_queue(principal.organization_id()).await?;
        Ok(device)
    }

    /// Removes one of the principal's devices (on logout from the app).
    pub async fn unregister_device(&self, principal: &Principal, token: &str) -> Result<bool> {
        Ok(self
            .store
            .delete_push_device(&principal.agent.id, token.trim())
            .await?)
    }

    /// The principal's devices, disabled ones with their reason.
    pub async fn devices(&self, principal: &Principal) -> Result<Vec<PushDevice>> {
        Ok(self.store.push_devices(&principal.agent.id).await?)
    }

    /// Every kind of push with whether the principal gets it.
    pub async fn preferences(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(NotificationKind, bool)>> {
        let set = self.store.push_preferences(&principal.agent.id).await?;
        Ok(NotificationKind::ALL
            .iter()
            .map(|kind| {
                let enabled = set
                    .iter()
                    .find(|(k, _)| k == kind)
                    .is_none_or(|(_, on)| *on);
                (*kind, enabled)
            })
            .collect())
    }

    /// Switches kinds of push on or off.
    pub async fn set_preferences(
        &self,
        principal: &Principal,
        changes: &[(NotificationKind, bool)],
    ) -> Result<Vec<(NotificationKind, bool)>> {
        for (kind, enabled) in changes {
            self.store
                .set_push_preference(&principal.agent.id, *kind, *enabled)
                .await?;
        }
        self.preferences(principal).await
    }
}
