//! Visitors: the widget's session for a customer, and whether a chat can start now.

use std::net::IpAddr;

use super::guards::whole_seconds;
use super::queue::{accepting_slots, chat_limit, routable};
use super::{
    Availability, ChatService, MAX_TITLE_CHARS, MAX_URL_CHARS, MAX_USER_AGENT_CHARS,
    VisitorSession, VisitorSessionInput, optional_name, optional_text,
};
use crate::domain::{self, Wording};
use crate::error::{Error, Result};
use crate::services::auth::random_token;
use crate::services::widget::{organization_for_page, verified_user_id};
use crate::store::{AgentLoad, CustomerVisit};

/// Random bytes in a visitor secret: as strong as a refresh token.
const VISITOR_SECRET_BYTES: usize = 32;
/// Longest visitor secret accepted; ours are 43 characters.
const MAX_VISITOR_SECRET_CHARS: usize = 128;

impl ChatService {
    /// Starts (or resumes, for a known visitor id) a customer's session from the widget.
    pub async fn start_visitor_session(
        &self,
        auth: &crate::services::AuthService,
        input: VisitorSessionInput,
        client: IpAddr,
    ) -> Result<VisitorSession> {
        if let Err(wait) = self.visitor_sessions.acquire(&client.to_string()).await {
            return Err(Error::RateLimited {
                message: Wording::TooManyVisitorSessions.text(),
                retry_after_secs: whole_seconds(wait),
            });
        }
        let (org, _) =
            organization_for_page(&*self.store, &input.widget_key, input.origin.as_deref()).await?;
        let external_id = match &input.identity {
            Some(identity) => Some(verified_user_id(&*self.store, &org.id, identity).await?),
            None => None,
        };
        let visitor_id = match input.visitor_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                if id.len() > 64
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(Error::BadUserInput(
                        "visitorId must be at most 64 letters, digits, '-' or '_'".into(),
                    ));
                }
                id.to_owned()
            }
            _ => domain::new_id(),
        };
        let presented_secret = match input.visitor_secret.as_deref().map(str::trim) {
            Some(secret) if secret.len() > MAX_VISITOR_SECRET_CHARS => {
                return Err(Error::BadUserInput(format!(
                    "visitorSecret must be at most {MAX_VISITOR_SECRET_CHARS} characters"
                )));
            }
            Some(secret) if !secret.is_empty() => Some(secret),
            _ => None,
        };
        let new_secret = random_token(VISITOR_SECRET_BYTES);
        let visit = CustomerVisit {
            organization_id: org.id.clone(),
            visitor_id,
            name: optional_name("name", input.name.as_deref())?,
            email: input
                .email
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(domain::normalize_email)
                .transpose()?,
            location: optional_text("location", input.location.as_deref(), 200)?,
            ip_address: Some(client.to_string()),
            page_url: optional_text("pageUrl", input.page_url.as_deref(), MAX_URL_CHARS)?,
            page_title: optional_text("pageTitle", input.page_title.as_deref(), MAX_TITLE_CHARS)?,
            referrer: optional_text("referrer", input.referrer.as_deref(), MAX_URL_CHARS)?,
            user_agent: optional_text(
                "userAgent",
                input.user_agent.as_deref(),
                MAX_USER_AGENT_CHARS,
            )?,
            at: domain::now(),
            new_secret_hash: visitor_secret_hash(&new_secret),
            presented_secret_hash: presented_secret.map(visitor_secret_hash),
            external_id,
        };
        let recorded = self.store.record_visit(&visit, &domain::new_id()).await?;
        let (token, expires_at) = auth.visitor_token(&recorded.customer)?;
        Ok(VisitorSession {
            token,
            expires_at,
            customer: recorded.customer,
            visitor_secret: recorded.secret_issued.then_some(new_secret),
        })
    }

    /// Whether a chat for `group_id` (any group when `None`) can start now, by the rules
    /// startChat applies: a widget that follows it never offers a chat startChat refuses.
    pub async fn availability(
        &self,
        widget_key: &str,
        group_id: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Availability> {
        let (org, _) = organization_for_page(&*self.store, widget_key, origin).await?;
        if let Some(group_id) = group_id {
            self.require_group(&org.id, group_id).await?;
        }
        let now = domain::now();
        let loads: Vec<AgentLoad> = self
            .store
            .agent_loads(&org.id, now)
            .await?
            .into_iter()
            .filter(|l| routable(l) && domain::in_chat_group(&l.agent, group_id))
            .collect();
        let accepting = !loads.is_empty();
        let someone_has_room = loads.iter().any(|l| l.active_chats < chat_limit(l, &org));
        let queue = self.queue_entries(&org).await?;
        // The limit counts the whole queue, as startChat does; the wait only the group's.
        let queue_is_full = queue.len() as i64 >= i64::from(org.settings.queue_limit);
        let queue_length = match group_id {
            Some(group) => queue
                .iter()
                .filter(|e| e.chat.group_id.as_deref() == Some(group))
                .count() as i64,
            None => queue.len() as i64,
        };
        let started = self
            .store
            .chats_started_since(&org.id, now - chrono::Duration::minutes(1))
            .await?;
        let capped = started >= i64::from(org.settings.new_chats_per_minute);
        let queue_full = accepting && (capped || (!someone_has_room && queue_is_full));
        let online = accepting && !queue_full;
        let estimated_wait_seconds = if !online || someone_has_room {
            0
        } else {
            let handle = self.handle_seconds(&org).await?;
            domain::estimate_wait_seconds(
                queue_length + 1,
                accepting_slots(&loads, &org, group_id),
                handle,
            )
        };
        Ok(Availability {
            online,
            queue_full,
            queue_length,
            estimated_wait_seconds,
        })
    }
}

/// How visitor secrets are stored: SHA-256, hex. They are random, so no salt or slow hash is
/// needed, and a stolen database does not yield secrets that open customers' chats.
fn visitor_secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
