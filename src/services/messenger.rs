//! Facebook Messenger: admins connect their Facebook Pages, and the webhook Facebook calls
//! brings their users' messages and receipts in. One webhook URL serves every page: an event
//! names its page (`entry[].id`), whose app secret must have signed the body
//! (`X-Hub-Signature-256`). A user's message becomes a customer (by page-scoped id, named
//! from the profile API) and a chat on MESSENGER, through the chat use cases; what agents send
//! back goes through the outbox (`outbox::messenger`).
//! <https://developers.facebook.com/docs/messenger-platform/webhooks>

use std::sync::Arc;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::domain::{self, MessengerPage};
use crate::error::{Error, Result};
use crate::outbox::messenger::{GraphApi, GraphOutcome, Profile};
use crate::services::ChatService;
use crate::services::auth::{CustomerPrincipal, Principal};
use crate::store::{Database, DbError};

/// Longest page access token, app secret and verify token accepted.
const MAX_SECRET_CHARS: usize = 1000;

/// A page as an admin connects it.
#[derive(Debug, Clone, Default)]
pub struct ConnectPageInput {
    pub page_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
    pub group_id: Option<String>,
}

/// What an admin changes on a page; `None` keeps a value, an empty group id clears it.
#[derive(Debug, Clone, Default)]
pub struct UpdatePageInput {
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub group_id: Option<String>,
}

/// Why the webhook refused an event delivery.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("the request is not signed (X-Hub-Signature-256)")]
    Unsigned,
    /// The signature is not the page's app secret's, or names a page we do not know.
    #[error("the signature does not match")]
    BadSignature,
    /// Not a Messenger webhook body.
    #[error("{0}")]
    BadRequest(String),
    /// Taking an event in failed on our side; Facebook delivers it again.
    #[error(transparent)]
    Failed(#[from] Error),
}

/// The Messenger use cases: pages, and the webhook's events.
pub struct MessengerService {
    store: Arc<dyn Database>,
    chats: Arc<ChatService>,
    graph: GraphApi,
}

impl MessengerService {
    /// Pages over `store`, chats through `chats`, profiles from `graph`.
    pub fn new(store: Arc<dyn Database>, chats: Arc<ChatService>, graph: GraphApi) -> Self {
        MessengerService {
            store,
            chats,
            graph,
        }
    }

    /// The organization's connected pages. Admins and owners.
    pub async fn pages(&self, principal: &Principal) -> Result<Vec<MessengerPage>> {
        require_admin(principal)?;
        Ok(self
            .store
            .messenger_pages(principal.organization_id())
            .await?)
    }

    /// Connects a page: its access token must be the page's (the Graph API is asked for the
    /// page's name with it). Admins and owners.
    pub async fn connect(
        &self,
        principal: &Principal,
        input: ConnectPageInput,
    ) -> Result<MessengerPage> {
        require_admin(principal)?;
        let page_id = input.page_id.trim().to_owned();
        if page_id.is_empty() || page_id.len() > 32 || !page_id.chars().all(|c| c.is_ascii_digit())
        {
            return Err(Error::BadUserInput(
                "pageId must be the page's numeric Facebook id".into(),
            ));
        }
        let access_token = secret("accessToken", &input.access_token)?;
        let app_secret = secret("appSecret", &input.app_secret)?;
        let verify_token = secret("verifyToken", &input.verify_token)?;
        let group_id = self
            .group(principal, input.group_id.as_deref().unwrap_or(""))
            .await?;
        let name = self.page_name(&access_token, &page_id).await?;
        let page = MessengerPage {
            id: domain::new_id(),
            organization_id: principal.organization_id().to_owned(),
            page_id,
            name,
            access_token,
            app_secret,
            verify_token,
            group_id,
            created_at: domain::now(),
        };
        self.store.insert_messenger_page(&page).await?;
        Ok(page)
    }

    /// Changes a page's token, secret, verify token or group. Admins and owners.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        input: UpdatePageInput,
    ) -> Result<MessengerPage> {
        require_admin(principal)?;
        let mut page = self.page(principal, id).await?;
        if let Some(token) = &input.access_token {
            page.access_token = secret("accessToken", token)?;
            page.name = self.page_name(&page.access_token, &page.page_id).await?;
        }
        if let Some(app_secret) = &input.app_secret {
            page.app_secret = secret("appSecret", app_secret)?;
        }
        if let Some(verify_token) = &input.verify_token {
            page.verify_token = secret("verifyToken", verify_token)?;
        }
        if let Some(group_id) = &input.group_id {
            page.group_id = self.group(principal, group_id).await?;
        }
        self.store.update_messenger_page(&page).await?;
        Ok(page)
    }

    /// Disconnects a page: its events are refused from now on; its chats stay. Admins and
    /// owners.
    pub async fn disconnect(&self, principal: &Principal, id: &str) -> Result<MessengerPage> {
        require_admin(principal)?;
        let page = self.page(principal, id).await?;
        self.store
            .delete_messenger_page(principal.organization_id(), id)
            .await?;
        Ok(page)
    }

    async fn page(&self, principal: &Principal, id: &str) -> Result<MessengerPage> {
        self.store
            .messenger_page(principal.organization_id(), id)
            .await
            .map_err(|err| match err {
                DbError::NotFound => Error::NotFound("no such Messenger page".into()),
                other => other.into(),
            })
    }

    /// The group `group_id` of the organization; `None` for an empty id.
    async fn group(&self, principal: &Principal, group_id: &str) -> Result<Option<String>> {
        let group_id = group_id.trim();
        if group_id.is_empty() {
            return Ok(None);
        }
        let groups = self.store.groups(principal.organization_id()).await?;
        if !groups.iter().any(|g| g.id == group_id) {
            return Err(Error::BadUserInput("groupId: no such group".into()));
        }
        Ok(Some(group_id.to_owned()))
    }

    /// The page's name by its token; the Graph API refusing the token is the admin's to fix.
    async fn page_name(&self, token: &str, page_id: &str) -> Result<Option<String>> {
        match self.graph.page_name(token, page_id).await {
            GraphOutcome::Ok(body) => Ok(body["name"].as_str().map(str::to_owned)),
            GraphOutcome::Refused { reason } => Err(Error::BadUserInput(format!(
                "Facebook refused the page access token: {reason}"
            ))),
            GraphOutcome::Retry { reason, .. } => Err(Error::internal(format!(
                "the Graph API could not be reached: {reason}"
            ))),
        }
    }

    /// What became of these messages, for those sent to Messenger. The caller was allowed
    /// to see the messages.
    pub async fn deliveries(&self, event_ids: &[String]) -> Result<Vec<domain::MessageDelivery>> {
        Ok(self.store.message_deliveries(event_ids).await?)
    }

    /// Facebook's check of the webhook URL: the challenge back when `mode` is `subscribe` and
    /// `verify_token` is a connected page's; `None` refuses.
    pub async fn verify_subscription(
        &self,
        mode: &str,
        verify_token: &str,
        challenge: &str,
    ) -> Result<Option<String>> {
        if mode != "subscribe" || verify_token.is_empty() {
            return Ok(None);
        }
        Ok(self
            .store
            .messenger_verify_token_known(verify_token)
            .await?
            .then(|| challenge.to_owned()))
    }

    /// Takes in a webhook delivery: `body` as received, `signature` the
    /// `X-Hub-Signature-256` header. Every page it names must be connected and have signed it;
    /// then its messages, delivery and read receipts are taken in, each once.
    pub async fn receive(&self, body: &[u8], signature: Option<&str>) -> Result<(), WebhookError> {
        let signature = signature.ok_or(WebhookError::Unsigned)?;
        let webhook: Webhook = serde_json::from_slice(body)
            .map_err(|err| WebhookError::BadRequest(format!("not a webhook body: {err}")))?;
        if webhook.object != "page" {
            return Err(WebhookError::BadRequest(
                "only page events (object: page) are taken".into(),
            ));
        }
        let mut pages = Vec::with_capacity(webhook.entry.len());
        for entry in &webhook.entry {
            let page = self
                .store
                .messenger_page_by_page_id(&entry.id)
                .await
                .map_err(Error::from)?
                .ok_or(WebhookError::BadSignature)?;
            if !signed_by(&page.app_secret, body, signature) {
                return Err(WebhookError::BadSignature);
            }
            pages.push(page);
        }
        for (entry, page) in webhook.entry.iter().zip(&pages) {
            for event in &entry.messaging {
                self.take_in(page, event).await?;
            }
        }
        Ok(())
    }

    /// One messaging event of `page`.
    async fn take_in(&self, page: &MessengerPage, event: &Messaging) -> Result<()> {
        // The user is the sender of what they do; our own echoes are left out.
        let psid = &event.sender.id;
        if let Some(message) = &event.message {
            if message.is_echo {
                return Ok(());
            }
            return self.message(page, psid, message).await;
        }
        if let Some(delivery) = &event.delivery
            && let Some(watermark) = chrono::DateTime::from_timestamp_millis(delivery.watermark)
        {
            self.store
                .mark_messenger_receipts(&page.page_id, psid, watermark, false)
                .await?;
        }
        if let Some(read) = &event.read
            && let Some(watermark) = chrono::DateTime::from_timestamp_millis(read.watermark)
        {
            self.store
                .mark_messenger_receipts(&page.page_id, psid, watermark, true)
                .await?;
        }
        Ok(())
    }

    /// A user's message, taken in once by its mid.
    async fn message(&self, page: &MessengerPage, psid: &str, message: &Incoming) -> Result<()> {
        let text = message.text_with_attachments();
        if text.trim().is_empty() {
            return Ok(());
        }
        let Some(mid) = message.mid.as_deref().filter(|m| !m.is_empty()) else {
            return Ok(());
        };
        if !self.store.claim_messenger_mid(mid, domain::now()).await? {
            return Ok(());
        }
        let taken = self.deliver_message(page, psid, &text).await;
        if taken.is_err() {
            // Not stored: Facebook delivers it again, and then it must not count as seen.
            if let Err(err) = self.store.release_messenger_mid(mid).await {
                tracing::warn!(error = %err, "could not release a Messenger message id");
            }
        }
        taken
    }

    async fn deliver_message(&self, page: &MessengerPage, psid: &str, text: &str) -> Result<()> {
        let organization_id = &page.organization_id;
        let now = domain::now();
        let customer_id = match self.store.messenger_customer(organization_id, psid).await? {
            Some(id) => {
                self.store
                    .touch_messenger_customer(organization_id, psid, now)
                    .await?;
                id
            }
            None => {
                // A profile that cannot be read must not cost the message: a plain name then.
                let profile = match self.graph.profile(&page.access_token, psid).await {
                    Ok(profile) => profile,
                    Err(reason) => {
                        tracing::warn!(%reason, "could not read a Messenger user's profile");
                        Profile::default()
                    }
                };
                let name = profile.name().map_or_else(
                    || fallback_name(psid),
                    |n| domain::truncate_chars(&n, 100).to_owned(),
                );
                self.store
                    .create_messenger_customer(
                        organization_id,
                        &page.page_id,
                        psid,
                        &name,
                        profile.profile_pic.as_deref(),
                        &domain::new_id(),
                        now,
                    )
                    .await?
            }
        };
        let customer = CustomerPrincipal {
            customer_id,
            organization_id: organization_id.clone(),
        };
        self.chats
            .receive_messenger_message(&customer, page.group_id.as_deref(), text)
            .await?;
        Ok(())
    }
}

fn require_admin(principal: &Principal) -> Result<()> {
    if principal.role().is_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("manage Messenger pages"))
    }
}

/// A token or secret as given: trimmed, present, one word, not too long.
fn secret(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::BadUserInput(format!("{field} must not be empty")));
    }
    if value.chars().count() > MAX_SECRET_CHARS || value.chars().any(char::is_whitespace) {
        return Err(Error::BadUserInput(format!(
            "{field} must be one word of at most {MAX_SECRET_CHARS} characters"
        )));
    }
    Ok(value.to_owned())
}

/// The name of a user whose profile could not be read.
fn fallback_name(psid: &str) -> String {
    let count = psid.chars().count();
    let tail: String = psid.chars().skip(count.saturating_sub(4)).collect();
    format!("Messenger user {tail}")
}

/// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` under `app_secret`,
/// compared in constant time.
pub fn signed_by(app_secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(app_secret.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

// ---- the webhook's body ------------------------------------------------------------------

/// A webhook delivery: one or more pages' events.
#[derive(Debug, Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    /// The page's id.
    id: String,
    #[serde(default)]
    messaging: Vec<Messaging>,
}

#[derive(Debug, Deserialize)]
struct Messaging {
    sender: Party,
    message: Option<Incoming>,
    delivery: Option<Watermark>,
    read: Option<Watermark>,
}

#[derive(Debug, Deserialize)]
struct Party {
    id: String,
}

#[derive(Debug, Deserialize)]
struct Incoming {
    mid: Option<String>,
    text: Option<String>,
    #[serde(default)]
    is_echo: bool,
    #[serde(default)]
    attachments: Vec<Attachment>,
}

impl Incoming {
    /// The text, then a line per attachment with its link: agents open images and files
    /// from there.
    fn text_with_attachments(&self) -> String {
        let mut lines: Vec<String> = self.text.iter().cloned().collect();
        for attachment in &self.attachments {
            if let Some(url) = attachment.payload.as_ref().and_then(|p| p.url.as_deref()) {
                let kind = attachment.kind.as_deref().unwrap_or("file");
                lines.push(format!("[{kind}] {url}"));
            }
        }
        lines.join("\n")
    }
}

#[derive(Debug, Deserialize)]
struct Attachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<AttachmentPayload>,
}

#[derive(Debug, Deserialize)]
struct AttachmentPayload {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Watermark {
    watermark: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let bytes = mac.finalize().into_bytes();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn only_the_app_secret_signs_the_body() {
        let body = br#"{"object":"page","entry":[]}"#;
        let good = sign("app-secret", body);
        assert!(signed_by("app-secret", body, &good));
        assert!(!signed_by("other-secret", body, &good));
        assert!(!signed_by("app-secret", b"{}", &good));
        assert!(!signed_by(
            "app-secret",
            body,
            &good.replace("sha256=", "sha1=")
        ));
        assert!(!signed_by("app-secret", body, "sha256=zz"));
        assert!(!signed_by("app-secret", body, "sha256="));
    }

    #[test]
    fn attachments_become_links() {
        let message: Incoming = serde_json::from_str(
            r#"{"mid":"m1","text":"see","attachments":[{"type":"image","payload":{"url":"https://x/y.png"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            message.text_with_attachments(),
            "see\n[image] https://x/y.png"
        );
    }

    #[test]
    fn a_user_without_a_profile_still_has_a_name() {
        assert_eq!(fallback_name("1234567890"), "Messenger user 7890");
        assert_eq!(fallback_name("12"), "Messenger user 12");
    }
}
