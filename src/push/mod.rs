//! Delivering pushes: the outbox worker and the two providers, APNs (through a2) and FCM
//! (HTTP v1). What goes out and when is decided by the chat use cases, which write outbox
//! rows in the transaction of the event that causes them.

pub mod apns;
pub mod fcm;
mod worker;

pub use worker::PushWorker;

use crate::domain::{Platform, PushDevice, PushMessage, SendOutcome};

/// The configured providers. A platform without one gets its jobs marked dead with a reason,
/// so an admin sees what is missing.
#[derive(Default)]
pub struct Senders {
    pub apns: Option<apns::ApnsSender>,
    pub fcm: Option<fcm::FcmSender>,
}

impl Senders {
    /// Sends one push to one device through its platform's provider.
    pub async fn send(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> SendOutcome {
        match device.platform {
            Platform::Ios => match &self.apns {
                Some(apns) => apns.send(device, message, badge).await,
                None => SendOutcome::Failed {
                    reason: "APNs is not configured (SWITCHBOARD_APNS_KEY_PATH)".into(),
                },
            },
            Platform::Android => match &self.fcm {
                Some(fcm) => fcm.send(device, message, badge).await,
                None => SendOutcome::Failed {
                    reason: "FCM is not configured (SWITCHBOARD_FCM_SERVICE_ACCOUNT)".into(),
                },
            },
        }
    }

    /// The provider's name for metrics.
    pub fn provider(platform: Platform) -> &'static str {
        match platform {
            Platform::Ios => "apns",
            Platform::Android => "fcm",
        }
    }
}
