//! Apple Push Notification service through the a2 crate, with token authentication (a .p8
//! key, its key id and the team id): https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns
//!
//! a2 hard-codes Apple's hosts and trust roots, so it cannot be pointed at a local fake. The
//! seam is [`ApnsTransport`]: production sends through a2's clients (one per environment),
//! tests record exactly what a2 would send. The payload is our own [`PayloadLike`] type
//! because a2's builder has no `thread-id`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use a2::request::notification::{CollapseId, NotificationOptions, Priority, PushType};
use a2::request::payload::PayloadLike;
use a2::response::ErrorReason;
use async_trait::async_trait;
use serde::Serialize;

use crate::domain::{PushDevice, PushEnvironment, PushMessage, SendOutcome};

/// What APNs asks to wait after 429 TooManyRequests (it sends no Retry-After).
const THROTTLE: Duration = Duration::from_secs(60);

/// The request APNs receives: headers in `options`, the JSON body from the rest.
#[derive(Debug, Serialize)]
pub struct ApnsPayload<'a> {
    #[serde(skip)]
    pub options: NotificationOptions<'a>,
    #[serde(skip)]
    pub device_token: &'a str,
    pub aps: Aps<'a>,
    /// Our data (`type`, `chatId`, `organizationId`, `cursor`) at the top level.
    #[serde(flatten)]
    pub data: BTreeMap<&'a str, &'a str>,
}

/// The `aps` dictionary.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Aps<'a> {
    pub alert: Alert<'a>,
    pub badge: u32,
    pub sound: &'static str,
    /// Groups the chat's notifications together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<&'a str>,
}

/// A notification a person reads.
#[derive(Debug, Serialize)]
pub struct Alert<'a> {
    pub title: &'a str,
    pub body: &'a str,
}

impl PayloadLike for ApnsPayload<'_> {
    fn get_device_token(&self) -> &str {
        self.device_token
    }

    fn get_options(&self) -> &NotificationOptions<'_> {
        &self.options
    }
}

/// Where APNs requests go.
#[async_trait]
pub trait ApnsTransport: Send + Sync {
    async fn send(
        &self,
        payload: ApnsPayload<'_>,
        environment: PushEnvironment,
    ) -> Result<a2::Response, a2::Error>;
}

/// Apple's servers, through a2: one client per environment, sharing the signing key.
pub struct A2Transport {
    sandbox: a2::Client,
    production: a2::Client,
}

impl A2Transport {
    /// Clients from the .p8 key at `key_path`.
    pub fn from_key_file(
        key_path: &std::path::Path,
        key_id: &str,
        team_id: &str,
    ) -> Result<Self, String> {
        let key = std::fs::read(key_path)
            .map_err(|err| format!("cannot read the APNs key {}: {err}", key_path.display()))?;
        let client = |endpoint| {
            a2::Client::token(
                key.as_slice(),
                key_id,
                team_id,
                a2::ClientConfig::new(endpoint),
            )
            .map_err(|err| format!("the APNs key {} is unusable: {err}", key_path.display()))
        };
        Ok(A2Transport {
            sandbox: client(a2::Endpoint::Sandbox)?,
            production: client(a2::Endpoint::Production)?,
        })
    }
}

#[async_trait]
impl ApnsTransport for A2Transport {
    async fn send(
        &self,
        payload: ApnsPayload<'_>,
        environment: PushEnvironment,
    ) -> Result<a2::Response, a2::Error> {
        match environment {
            PushEnvironment::Sandbox => self.sandbox.send(payload).await,
            PushEnvironment::Production => self.production.send(payload).await,
        }
    }
}

/// Sends pushes to iOS devices.
pub struct ApnsSender {
    transport: Arc<dyn ApnsTransport>,
}

impl ApnsSender {
    /// A sender over `transport`.
    pub fn new(transport: Arc<dyn ApnsTransport>) -> Self {
        ApnsSender { transport }
    }

    /// Sends one push.
    pub async fn send(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> SendOutcome {
        let payload = match payload(device, message, badge) {
            Ok(payload) => payload,
            Err(err) => {
                return SendOutcome::Failed {
                    reason: err.to_string(),
                };
            }
        };
        outcome(self.transport.send(payload, device.environment).await)
    }
}

/// The APNs request for one push: topic = the app id, a collapse id per chat, thread-id = the
/// chat, push type alert, priority 10 for new and transferred chats (5 otherwise), badge =
/// the agent's chats with unread customer messages.
pub fn payload<'a>(
    device: &'a PushDevice,
    message: &'a PushMessage,
    badge: u32,
) -> Result<ApnsPayload<'a>, a2::Error> {
    let options = NotificationOptions {
        apns_id: None,
        apns_push_type: Some(PushType::Alert),
        apns_expiration: None,
        apns_priority: Some(if message.urgent {
            Priority::High
        } else {
            Priority::Normal
        }),
        apns_topic: Some(&device.app_id),
        apns_collapse_id: Some(CollapseId::new(&message.collapse_key)?),
    };
    Ok(ApnsPayload {
        options,
        device_token: &device.token,
        aps: Aps {
            alert: Alert {
                title: &message.title,
                body: &message.body,
            },
            badge,
            sound: "default",
            thread_id: message.thread_id.as_deref(),
        },
        data: message
            .data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    })
}

/// What an a2 result means for the job and the token.
pub fn outcome(result: Result<a2::Response, a2::Error>) -> SendOutcome {
    let response = match result {
        Ok(_) => return SendOutcome::Sent,
        Err(a2::Error::ResponseError(response)) => response,
        Err(
            err @ (a2::Error::ConnectionError(_)
            | a2::Error::ClientError(_)
            | a2::Error::RequestTimeout(_)),
        ) => {
            return SendOutcome::Retry {
                after: None,
                reason: format!("APNs unreachable: {err}"),
            };
        }
        Err(err) => {
            return SendOutcome::Failed {
                reason: format!("APNs: {err}"),
            };
        }
    };
    let reason_code = response.error.as_ref().map(|e| &e.reason);
    let reason = match reason_code {
        Some(code) => format!("APNs {} {code:?}", response.code),
        None => format!("APNs {}", response.code),
    };
    match (response.code, reason_code) {
        (410, _)
        | (_, Some(ErrorReason::Unregistered))
        | (_, Some(ErrorReason::BadDeviceToken))
        | (_, Some(ErrorReason::DeviceTokenNotForTopic)) => SendOutcome::TokenInvalid { reason },
        (429, _) | (_, Some(ErrorReason::TooManyRequests)) => SendOutcome::Retry {
            after: Some(THROTTLE),
            reason,
        },
        // A provider token Apple refused is renewed by a2; trying again may work.
        (_, Some(ErrorReason::ExpiredProviderToken)) => SendOutcome::Retry {
            after: None,
            reason,
        },
        (500..=599, _) => SendOutcome::Retry {
            after: None,
            reason,
        },
        _ => SendOutcome::Failed { reason },
    }
}
