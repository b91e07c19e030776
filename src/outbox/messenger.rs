//! Messenger sends, an outbox kind: [`MessengerSends`] posts an agent's message, or a sender
//! action (typing_on, mark_seen), to the Graph API's Send API with the page's access token
//! (<https://developers.facebook.com/docs/messenger-platform/reference/send-api/>). What goes
//! out, with which `messaging_type`, is decided by the chat use cases in the message's
//! transaction (`services::chats::messenger_rules`); claiming and retries are the engine's.
//!
//! [`GraphApi`] is the Graph API client, also used for users' profiles and page names. Its
//! base URL and version are configurable, so tests run it against a local fake.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::{MessengerSend, MessengerSendKind, MessengerSendStatus};
use crate::outbox::{Fate, Job, JobKind, Outcome};
use crate::services::ChatService;
use crate::store::{Database, DbResult};

/// How long one Graph API call may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait after a 429 that names no time.
const DEFAULT_THROTTLE: Duration = Duration::from_secs(30);

/// A Messenger user's public profile, as the page sees it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub profile_pic: Option<String>,
}

impl Profile {
    /// "First Last", or whichever part there is.
    pub fn name(&self) -> Option<String> {
        let parts: Vec<&str> = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// What a Graph API call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GraphOutcome {
    /// 2xx, with the answer's body.
    Ok(Value),
    /// A passing failure (5xx, 429, network): worth trying again.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Refused (4xx): trying again will not help. The reason is Facebook's message.
    Refused { reason: String },
}

/// The Graph API: `{base}/{version}/…`, the access token in the query.
#[derive(Debug, Clone)]
pub struct GraphApi {
    http: reqwest::Client,
    base_url: String,
    version: String,
}

impl GraphApi {
    /// A client for `base_url` (https://graph.facebook.com) and `version` (v21.0).
    pub fn new(base_url: &str, version: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        GraphApi {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            version: version.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.base_url, self.version)
    }

    /// GETs `path` with `fields`.
    async fn get(&self, path: &str, fields: &str, token: &str) -> GraphOutcome {
        let request = self
            .http
            .get(self.url(path))
            .query(&[("fields", fields), ("access_token", token)]);
        classify(request.send().await).await
    }

    /// A user's first and last name and picture
    /// (<https://developers.facebook.com/docs/messenger-platform/identity/user-profile>).
    pub async fn profile(&self, token: &str, psid: &str) -> Result<Profile, String> {
        match self
            .get(psid, "first_name,last_name,profile_pic", token)
            .await
        {
            GraphOutcome::Ok(body) => serde_json::from_value(body).map_err(|e| e.to_string()),
            GraphOutcome::Retry { reason, .. } | GraphOutcome::Refused { reason } => Err(reason),
        }
    }

    /// The page's name, which also proves the access token is the page's.
    pub async fn page_name(&self, token: &str, page_id: &str) -> GraphOutcome {
        self.get(page_id, "name", token).await
    }

    /// POSTs one Send API call.
    pub async fn send(&self, token: &str, body: &Value) -> GraphOutcome {
        let request = self
            .http
            .post(self.url("me/messages"))
            .query(&[("access_token", token)])
            .json(body);
        classify(request.send().await).await
    }
}

/// Sorts an answer into ok, try again, or refused. Errors never carry the URL: it holds the
/// access token.
async fn classify(response: Result<reqwest::Response, reqwest::Error>) -> GraphOutcome {
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            return GraphOutcome::Retry {
                after: None,
                reason: err.without_url().to_string(),
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = || {
        body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("the Graph API answered {status}"), str::to_owned)
    };
    match status {
        200..=299 => GraphOutcome::Ok(body),
        429 => GraphOutcome::Retry {
            after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE)),
            reason: message(),
        },
        500..=599 => GraphOutcome::Retry {
            after: retry_after,
            reason: message(),
        },
        _ => GraphOutcome::Refused { reason: message() },
    }
}

/// The Send API's body for `send`
/// (<https://developers.facebook.com/docs/messenger-platform/send-messages>).
pub fn send_body(send: &MessengerSend) -> Value {
    let recipient = json!({ "id": send.psid });
    match send.kind.sender_action() {
        Some(action) => json!({ "recipient": recipient, "sender_action": action }),
        None => {
            let mut body = json!({
                "recipient": recipient,
                "messaging_type": send.messaging_type.as_deref().unwrap_or("RESPONSE"),
                "message": { "text": send.text.as_deref().unwrap_or_default() },
            });
            if let Some(tag) = &send.tag {
                body["tag"] = json!(tag);
            }
            body
        }
    }
}

/// A claimed send and its page's access token.
pub struct ClaimedSend {
    pub send: MessengerSend,
    access_token: String,
}

impl Job for ClaimedSend {
    fn id(&self) -> &str {
        &self.send.id
    }

    fn attempts(&self) -> i32 {
        self.send.attempts
    }
}

/// The Messenger kind of outbox job: the `messenger_sends` table, sent through [`GraphApi`].
pub struct MessengerSends {
    pub store: Arc<dyn Database>,
    /// Tells a chat's agents when their message did not reach Messenger.
    pub chats: Arc<ChatService>,
    pub graph: GraphApi,
}

#[async_trait]
impl JobKind for MessengerSends {
    type Job = ClaimedSend;
    /// Facebook's id for the message sent, if it gave one.
    type Done = Option<String>;
    const NAME: &'static str = "messenger";

    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        self.store.next_messenger_send_due().await
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<ClaimedSend>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .store
            .claim_messenger_sends(now, locked_until, limit)
            .await?
            .into_iter()
            .map(|(send, access_token)| ClaimedSend { send, access_token })
            .collect())
    }

    async fn deliver(&self, job: &ClaimedSend) -> Outcome<Option<String>> {
        match self
            .graph
            .send(&job.access_token, &send_body(&job.send))
            .await
        {
            GraphOutcome::Ok(body) => Outcome::Done(body["message_id"].as_str().map(str::to_owned)),
            GraphOutcome::Retry { after, reason } => Outcome::Retry { after, reason },
            GraphOutcome::Refused { reason } => Outcome::Failed { reason },
        }
    }

    async fn finish(
        &self,
        job: &ClaimedSend,
        fate: &Fate<Option<String>>,
        at: DateTime<Utc>,
    ) -> DbResult<()> {
        let (status, next, error, mid) = match fate {
            Fate::Done(mid) => (MessengerSendStatus::Sent, at, None, mid.as_deref()),
            Fate::Retry { at: next, reason } => {
                (MessengerSendStatus::Pending, *next, Some(reason), None)
            }
            Fate::Dead { reason } => (MessengerSendStatus::Failed, at, Some(reason), None),
        };
        self.store
            .finish_messenger_send(
                &job.send.id,
                status,
                next,
                error.map(String::as_str),
                mid,
                at,
            )
            .await?;
        if let Fate::Dead { reason } = fate
            && job.send.kind == MessengerSendKind::Message
            && let Err(err) = self
                .chats
                .messenger_send_failed(&job.send.organization_id, &job.send.chat_id, reason)
                .await
        {
            tracing::warn!(error = %err, "could not tell agents of a failed Messenger send");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(kind: MessengerSendKind, tag: Option<&str>) -> MessengerSend {
        MessengerSend {
            id: "s".into(),
            organization_id: "o".into(),
            chat_id: "c".into(),
            event_id: None,
            page_id: "p".into(),
            psid: "42".into(),
            kind,
            text: Some("Hello".into()),
            messaging_type: Some(
                if tag.is_some() {
                    "MESSAGE_TAG"
                } else {
                    "RESPONSE"
                }
                .into(),
            ),
            tag: tag.map(str::to_owned),
            attempts: 0,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn bodies_follow_the_send_api() {
        assert_eq!(
            send_body(&send(MessengerSendKind::Message, None)),
            json!({"recipient": {"id": "42"}, "messaging_type": "RESPONSE",
                   "message": {"text": "Hello"}})
        );
        assert_eq!(
            send_body(&send(MessengerSendKind::Message, Some("HUMAN_AGENT"))),
            json!({"recipient": {"id": "42"}, "messaging_type": "MESSAGE_TAG",
                   "tag": "HUMAN_AGENT", "message": {"text": "Hello"}})
        );
        assert_eq!(
            send_body(&send(MessengerSendKind::TypingOn, None)),
            json!({"recipient": {"id": "42"}, "sender_action": "typing_on"})
        );
    }

    #[test]
    fn a_profile_names_whoever_it_can() {
        let profile = Profile {
            first_name: Some("Ada".into()),
            last_name: Some(" ".into()),
            profile_pic: None,
        };
        assert_eq!(profile.name().as_deref(), Some("Ada"));
        assert_eq!(Profile::default().name(), None);
    }
}
