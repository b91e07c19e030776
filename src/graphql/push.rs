//! Push: the signed-in agent's devices and which kinds of push they get.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::graphql::{ApiResult, ContextExt, limits};
use crate::services::push::DeviceRegistration;

/// The device's platform, which decides the push provider.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::Platform")]
pub enum Platform {
    /// APNs.
    Ios,
    /// FCM.
    Android,
    /// A browser, through Web Push (RFC 8030) with VAPID: the token is the subscription's
    /// endpoint.
    Web,
}

/// Which APNs environment the token is for (ignored for Android).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::PushEnvironment")]
pub enum PushEnvironment {
    Sandbox,
    Production,
}

/// Why a push goes out.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::domain::NotificationKind")]
pub enum NotificationKind {
    /// A chat was assigned to you.
    NewChat,
    /// A chat was transferred to you.
    TransferredChat,
    /// A customer wrote while none of your apps was connected.
    NewMessage,
    /// Customers wait in the queue (at most one a minute).
    QueuedCustomers,
    /// A customer left an offline message.
    OfflineMessage,
    /// You did not accept a chat in time and stopped accepting chats.
    MissedChat,
}

/// A device that gets pushes.
pub struct PushDevice(pub domain::PushDevice);

#[Object]
impl PushDevice {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn platform(&self) -> Platform {
        self.0.platform.into()
    }

    async fn token(&self) -> &str {
        &self.0.token
    }

    /// The APNs topic (bundle id), Android package, or web app origin.
    async fn app_id(&self) -> &str {
        &self.0.app_id
    }

    async fn environment(&self) -> PushEnvironment {
        self.0.environment.into()
    }

    async fn locale(&self) -> Option<&str> {
        self.0.locale.as_deref()
    }

    async fn device_name(&self) -> Option<&str> {
        self.0.device_name.as_deref()
    }

    /// False once the provider refused the token; register it again after a reinstall.
    async fn enabled(&self) -> bool {
        self.0.enabled()
    }

    /// Why the provider refused the token.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Whether one kind of push is on.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "NotificationPreferenceInput")]
pub struct NotificationPreference {
    pub kind: NotificationKind,
    pub enabled: bool,
}

/// A device to register.
#[derive(InputObject)]
pub struct RegisterPushDeviceInput {
    pub platform: Platform,
    /// The APNs device token (hex), the FCM registration token, or for WEB the push
    /// subscription's `endpoint` (an https URL).
    pub token: String,
    /// The APNs topic (bundle id), the Android package, or for WEB the app's origin.
    pub app_id: String,
    #[graphql(default_with = "PushEnvironment::Production")]
    pub environment: PushEnvironment,
    pub locale: Option<String>,
    pub device_name: Option<String>,
    /// The browser's subscription keys: required for WEB, refused for the others.
    pub web_push: Option<WebPushSubscriptionInput>,
}

/// A browser's push subscription keys, exactly as `PushSubscription.toJSON().keys` gives them.
#[derive(InputObject)]
pub struct WebPushSubscriptionInput {
    /// The browser's P-256 public key, base64url.
    #[graphql(name = "p256dh")]
    pub p256dh: String,
    /// The authentication secret, base64url.
    pub auth: String,
}

/// Devices and preferences.
#[derive(Default)]
pub struct PushQuery;

#[Object]
impl PushQuery {
    /// The signed-in agent's push devices.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn my_push_devices(&self, ctx: &Context<'_>) -> ApiResult<Vec<PushDevice>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .devices(principal)
            .await?
            .into_iter()
            .map(PushDevice)
            .collect())
    }

    /// The server's VAPID public key, base64url of the uncompressed P-256 point: what a
    /// browser's `pushManager.subscribe({applicationServerKey})` takes. Subscribe with it,
    /// then `registerPushDevice` with `platform: WEB`.
    async fn web_push_public_key(&self, ctx: &Context<'_>) -> ApiResult<String> {
        ctx.principal()?;
        Ok(ctx.services().push.web_push_public_key().to_owned())
    }

    /// Which kinds of push the signed-in agent gets.
    #[graphql(complexity = "limits::unbounded_list_cost(child_complexity)")]
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> ApiResult<Vec<NotificationPreference>> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .preferences(principal)
            .await?
            .into_iter()
            .map(|(kind, enabled)| NotificationPreference {
                kind: kind.into(),
                enabled,
            })
            .collect())
    }
}

/// Registering devices and choosing kinds of push.
#[derive(Default)]
pub struct PushMutation;

#[Object]
impl PushMutation {
    /// Registers the signed-in agent's device for pushes (again: the same token updates it,
    /// re-enables it, and moves it from any other agent of the organization; a token registered
    /// in another organization is refused with CONFLICT). With a device, an agent who accepts
    /// chats stays routable while the app is closed.
    async fn register_push_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterPushDeviceInput,
    ) -> ApiResult<PushDevice> {
        let principal = ctx.principal()?;
        let services = ctx.services();
        let registration = DeviceRegistration {
            platform: input.platform.into(),
            token: input.token,
            app_id: input.app_id,
            environment: input.environment.into(),
            locale: input.locale,
            device_name: input.device_name,
            web_push: input.web_push.map(|keys| domain::WebPushKeys {
                p256dh: keys.p256dh,
                auth: keys.auth,
            }),
        };
        let device = services
            .push
            .register_device(principal, registration)
            .await?;
        Ok(PushDevice(device))
    }

    /// Removes one of the signed-in agent's devices; false when it was not registered.
    async fn unregister_push_device(&self, ctx: &Context<'_>, token: String) -> ApiResult<bool> {
        let principal = ctx.principal()?;
        Ok(ctx
            .services()
            .push
            .unregister_device(principal, &token)
            .await?)
    }

    /// Switches kinds of push on or off for the signed-in agent; returns every kind.
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        preferences: Vec<NotificationPreference>,
    ) -> ApiResult<Vec<NotificationPreference>> {
        let principal = ctx.principal()?;
        let changes: Vec<_> = preferences
            .iter()
            .map(|p| (p.kind.into(), p.enabled))
            .collect();
        let all = ctx
            .services()
            .push
            .set_preferences(principal, &changes)
            .await?;
        Ok(all
            .into_iter()
            .map(|(kind, enabled)| NotificationPreference {
                kind: kind.into(),
                enabled,
            })
            .collect())
    }
}
