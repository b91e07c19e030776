//! Firebase Cloud Messaging through the HTTP v1 API:
//! https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages/send
//!
//! Authentication is a service account's OAuth2 JWT-bearer grant
//! (https://developers.google.com/identity/protocols/oauth2/service-account#httprest): a JWT
//! signed with the account's RSA key is traded at its `token_uri` for an access token, which
//! is cached until shortly before it expires. The legacy API (and the `fcm` crate that speaks
//! it) was shut down in July 2024.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::domain::{PushDevice, PushMessage, SendOutcome};

/// The scope FCM sends need.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// How long before expiry a cached access token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// What to wait after a 429 that gave no Retry-After.
const DEFAULT_THROTTLE: Duration = Duration::from_secs(60);

/// The fields of a Google service-account JSON file that FCM needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccount {
    pub project_id: String,
    pub client_email: String,
    pub private_key: String,
    pub token_uri: String,
    #[serde(default)]
    pub private_key_id: Option<String>,
}

/// Sends pushes to Android devices.
pub struct FcmSender {
    http: reqwest::Client,
    /// Base URL, https://fcm.googleapis.com unless configured otherwise.
    endpoint: String,
    account: ServiceAccount,
    key: EncodingKey,
    token: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl FcmSender {
    /// Reads the service-account JSON at `path`.
    pub fn from_file(path: &std::path::Path, endpoint: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
        let account: ServiceAccount = serde_json::from_str(&text)
            .map_err(|err| format!("{} is not a service-account JSON: {err}", path.display()))?;
        Self::new(account, endpoint)
    }

    /// A sender for `account`, talking to `endpoint`.
    pub fn new(account: ServiceAccount, endpoint: &str) -> Result<Self, String> {
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes())
            .map_err(|err| format!("the service account's private_key is not an RSA key: {err}"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(FcmSender {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            account,
            key,
            token: Mutex::new(None),
        })
    }

    /// Sends one push.
    pub async fn send(
        &self,
        device: &PushDevice,
        message: &PushMessage,
        badge: u32,
    ) -> SendOutcome {
        let token = match self.access_token().await {
            Ok(token) => token,
            Err(outcome) => return outcome,
        };
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.endpoint, self.account.project_id
        );
        let response = match self
            .http
            .post(&url)
            .bearer_auth(&token)
            .json(&body(device, message, badge))
            .send()
            .await
        {
            Ok(response) => response,
            Err(err) => {
                return SendOutcome::Retry {
                    after: None,
                    reason: format!("FCM unreachable: {err}"),
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        if status == 200 {
            return SendOutcome::Sent;
        }
        let error: Value = response.json().await.unwrap_or(Value::Null);
        let outcome = classify(status, &error, retry_after);
        if status == 401 {
            // The cached token was refused: get a new one next time.
            *self.token.lock().await = None;
        }
        outcome
    }

    /// A valid access token, from the cache or a new grant.
    async fn access_token(&self) -> Result<String, SendOutcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.value.clone());
        }
        let now = chrono::Utc::now().timestamp();
        let claims = GrantClaims {
            iss: &self.account.client_email,
            scope: SCOPE,
            aud: &self.account.token_uri,
            iat: now,
            exp: now + 3600,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key).map_err(|err| {
            SendOutcome::Failed {
                reason: format!("cannot sign the OAuth grant: {err}"),
            }
        })?;
        let response = self
            .http
            .post(&self.account.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ])
            .send()
            .await
            .map_err(|err| SendOutcome::Retry {
                after: None,
                reason: format!("OAuth unreachable: {err}"),
            })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(SendOutcome::Retry {
                after: None,
                reason: format!(
                    "OAuth token request failed with {status}: {}",
                    crate::domain::preview(&text)
                ),
            });
        }
        let grant: TokenResponse = response.json().await.map_err(|err| SendOutcome::Retry {
            after: None,
            reason: format!("bad OAuth response: {err}"),
        })?;
        let lifetime = Duration::from_secs(grant.expires_in).saturating_sub(REFRESH_MARGIN);
        *cached = Some(CachedToken {
            value: grant.access_token.clone(),
            refresh_at: Instant::now() + lifetime,
        });
        Ok(grant.access_token)
    }
}

/// The request body: a notification a person reads, string data the SDK parses, and Android
/// options (priority, one collapse key per chat).
pub fn body(device: &PushDevice, message: &PushMessage, badge: u32) -> Value {
    json!({
        "message": {
            "token": device.token,
            "notification": { "title": message.title, "body": message.body },
            "data": message.data,
            "android": {
                "priority": if message.urgent { "HIGH" } else { "NORMAL" },
                "collapse_key": message.collapse_key,
                "notification": { "tag": message.collapse_key, "notification_count": badge },
            },
        }
    })
}

/// What an FCM error answer means for the job and the token.
pub fn classify(status: u16, error: &Value, retry_after: Option<Duration>) -> SendOutcome {
    let error_code = error["error"]["details"]
        .as_array()
        .and_then(|details| details.iter().find_map(|d| d["errorCode"].as_str()))
        .or_else(|| error["error"]["status"].as_str())
        .unwrap_or("")
        .to_owned();
    let message = error["error"]["message"].as_str().unwrap_or("").to_owned();
    let reason = match (error_code.is_empty(), message.is_empty()) {
        (true, _) => format!("FCM {status}"),
        (false, true) => format!("FCM {status} {error_code}"),
        (false, false) => format!("FCM {status} {error_code}: {message}"),
    };
    match (status, error_code.as_str()) {
        (_, "UNREGISTERED") | (_, "SENDER_ID_MISMATCH") => SendOutcome::TokenInvalid { reason },
        (404, _) => SendOutcome::TokenInvalid { reason },
        (429, _) => SendOutcome::Retry {
            after: Some(retry_after.unwrap_or(DEFAULT_THROTTLE)),
            reason,
        },
        (401, _) => SendOutcome::Retry {
            after: None,
            reason,
        },
        (500..=599, _) => SendOutcome::Retry {
            after: retry_after,
            reason,
        },
        _ => SendOutcome::Failed { reason },
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_answers_map_to_outcomes() {
        let unregistered = json!({"error": {"code": 404, "status": "NOT_FOUND", "message": "Requested entity was not found.",
            "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}});
        assert!(matches!(
            classify(404, &unregistered, None),
            SendOutcome::TokenInvalid { .. }
        ));
        let mismatch = json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
            "details": [{"errorCode": "SENDER_ID_MISMATCH"}]}});
        assert!(matches!(
            classify(403, &mismatch, None),
            SendOutcome::TokenInvalid { .. }
        ));
        let invalid = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "details": [{"errorCode": "INVALID_ARGUMENT"}]}});
        assert!(matches!(
            classify(400, &invalid, None),
            SendOutcome::Failed { .. }
        ));
        assert_eq!(
            classify(429, &Value::Null, None),
            SendOutcome::Retry {
                after: Some(DEFAULT_THROTTLE),
                reason: "FCM 429".into()
            }
        );
        assert!(matches!(
            classify(429, &Value::Null, Some(Duration::from_secs(7))),
            SendOutcome::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(
            classify(503, &Value::Null, None),
            SendOutcome::Retry { after: None, .. }
        ));
    }
}
