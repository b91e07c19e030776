//! Webhooks, an outbox kind: [`WebhookJobs`] posts a delivery's JSON document to its endpoint,
//! signed as the Standard Webhooks specification says
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! `webhook-id` (the delivery's id), `webhook-timestamp` (Unix seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256>`, one per secret during a rotation).
//!
//! Any 2xx delivers. Anything else, a timeout or a network error is tried again after the
//! engine's backoff (a longer `Retry-After` wins) until the attempts run out. Every failed
//! attempt counts against the endpoint: too many in a row, or failing too long, disables it
//! and tells its organization's admins. An address that is not public (loopback, private,
//! link-local …) is refused unless the configuration allows it, checked on the addresses
//! the connection really uses, so DNS cannot point a delivery into our network.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::bus::{BusEvent, EventBus, Topic};
use crate::domain::{
    self, DeliveryStatus, WebhookDelivery, WebhookEndpoint, forbidden_webhook_address,
    is_localhost_name, webhook_signature,
};
use crate::outbox::{Fate, Job, JobKind, Outcome};
use crate::store::{Database, DbResult, DeliveryAttempt, DisablePolicy};

/// How webhook deliveries are made.
#[derive(Debug, Clone, Copy)]
pub struct WebhookSettings {
    /// Longest one attempt may take, connection included.
    pub timeout: Duration,
    /// Whether deliveries may go to loopback and private addresses (tests, an on-premises
    /// receiver).
    pub allow_private_targets: bool,
    /// When an endpoint that keeps failing is disabled.
    pub disable: DisablePolicy,
}

/// A claimed delivery, its endpoint, and what its attempt saw (for the delivery log).
pub struct WebhookJob {
    pub delivery: WebhookDelivery,
    pub endpoint: WebhookEndpoint,
    /// The receiver's status and the attempt's duration, written by `deliver`.
    seen: Mutex<(Option<i32>, Option<i64>)>,
}

impl Job for WebhookJob {
    fn id(&self) -> &str {
        &self.delivery.id
    }

    fn attempts(&self) -> i32 {
        self.delivery.attempts
    }
}

/// The webhook kind of outbox job: the `webhook_deliveries` table, posted over HTTP.
pub struct WebhookJobs {
    pub store: Arc<dyn Database>,
    /// Tells admins live when an endpoint is disabled.
    pub bus: Arc<dyn EventBus>,
    pub settings: WebhookSettings,
    http: reqwest::Client,
}

impl WebhookJobs {
    /// The kind over `store`, with an HTTP client that refuses non-public addresses unless
    /// `settings` allow them.
    pub fn new(
        store: Arc<dyn Database>,
        bus: Arc<dyn EventBus>,
        settings: WebhookSettings,
    ) -> Result<Self, String> {
        Ok(WebhookJobs {
            store,
            bus,
            settings,
            http: http_client(settings.allow_private_targets)?,
        })
    }
}

/// The client deliveries go through: no redirects (a POST is not replayed elsewhere), and
/// unless allowed, a resolver that drops addresses that are not public.
pub fn http_client(allow_private_targets: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")));
    if !allow_private_targets {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|err| format!("cannot build the webhook HTTP client: {err}"))
}

/// Resolves names to their public addresses only; a name with none is an error.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = public_addresses(&host, 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a target may not be reached, as a person reads it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RefusedTarget(pub String);

/// The public addresses `host` resolves to; refused when it names the machine or resolves
/// only to addresses that are not public.
pub async fn public_addresses(
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    if is_localhost_name(host) {
        return Err(Box::new(RefusedTarget(format!(
            "{host} is this machine; webhooks go to public addresses only \
             (SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS)"
        ))));
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    let mut refused = None;
    let public: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match forbidden_webhook_address(addr.ip()) {
            Some(why) => {
                refused = Some(format!("{host} resolves to {} ({why})", addr.ip()));
                false
            }
            None => true,
        })
        .collect();
    if public.is_empty() {
        let why = refused.unwrap_or_else(|| format!("{host} has no address"));
        return Err(Box::new(RefusedTarget(format!(
            "{why}; webhooks go to public addresses only \
             (SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS)"
        ))));
    }
    Ok(public)
}

/// Why `url` may not be delivered to, when it may not: an IP literal or a name that is not
/// public. Names that do not resolve pass (the receiver may not exist yet; delivery checks
/// again).
pub async fn refused_target(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Ipv4(ip) => forbidden_webhook_address(ip.into())
            .map(|why| format!("{ip} is {why}; webhooks go to public addresses only")),
        url::Host::Ipv6(ip) => forbidden_webhook_address(ip.into())
            .map(|why| format!("{ip} is {why}; webhooks go to public addresses only")),
        url::Host::Domain(name) => match public_addresses(name, 0).await {
            Err(err) if err.is::<RefusedTarget>() => Some(err.to_string()),
            _ => None,
        },
    }
}

/// How long the receiver asked us to wait: `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| Duration::from_secs(secs.min(3600)))
}

/// The error and its causes on one line: reqwest's own message says little.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn refused_in_chain(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<RefusedTarget>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[async_trait]
impl JobKind for WebhookJobs {
    type Job = WebhookJob;
    type Done = ();
    const NAME: &'static str = "webhook";

    async fn next_due(&self) -> DbResult<Option<DateTime<Utc>>> {
        self.store.next_webhook_due().await
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        locked_until: DateTime<Utc>,
        limit: usize,
    ) -> DbResult<Vec<WebhookJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let claimed = self
            .store
            .claim_webhook_deliveries(now, locked_until, limit)
            .await?;
        Ok(claimed
            .into_iter()
            .map(|(delivery, endpoint)| WebhookJob {
                delivery,
                endpoint,
                seen: Mutex::new((None, None)),
            })
            .collect())
    }

    async fn deliver(&self, job: &WebhookJob) -> Outcome<()> {
        let WebhookJob {
            delivery, endpoint, ..
        } = job;
        let url = match url::Url::parse(&endpoint.url) {
            Ok(url) => url,
            Err(err) => {
                return Outcome::Failed {
                    reason: format!("the endpoint's URL is invalid: {err}"),
                };
            }
        };
        if !self.settings.allow_private_targets {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => forbidden_webhook_address(ip.into()),
                Some(url::Host::Ipv6(ip)) => forbidden_webhook_address(ip.into()),
                _ => None,
            };
            if let Some(why) = literal {
                return Outcome::Failed {
                    reason: format!(
                        "refused: the endpoint's address is {why}; webhooks go to public \
                         addresses only (SWITCHBOARD_ALLOW_PRIVATE_WEBHOOK_TARGETS)"
                    ),
                };
            }
        }
        let now = domain::now();
        let timestamp = now.timestamp();
        let signature = webhook_signature(
            &endpoint.signing_secrets(now),
            &delivery.id,
            timestamp,
            &delivery.payload,
        );
        let started = Instant::now();
        let sent = self
            .http
            .post(url)
            .timeout(self.settings.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let after = retry_after(response.headers());
                // Read (a little of) the body so the connection can be reused; its content
                // does not matter.
                let _ = tokio::time::timeout(Duration::from_secs(1), response.bytes()).await;
                let elapsed = started.elapsed();
                self.see(job, Some(i32::from(status.as_u16())), elapsed);
                if status.is_success() {
                    return Outcome::Done(());
                }
                Outcome::Retry {
                    after,
                    reason: format!("the endpoint answered HTTP {}", status.as_u16()),
                }
            }
            Err(err) => {
                self.see(job, None, started.elapsed());
                // The reason is logged, and a webhook's URL may hold its receiver's secret.
                let err = err.without_url();
                if refused_in_chain(&err) {
                    Outcome::Failed {
                        reason: format!("refused: {}", describe(&err)),
                    }
                } else if err.is_timeout() {
                    Outcome::Retry {
                        after: None,
                        reason: format!("timed out after {} ms", self.settings.timeout.as_millis()),
                    }
                } else {
                    Outcome::Retry {
                        after: None,
                        reason: describe(&err),
                    }
                }
            }
        }
    }

    async fn finish(&self, job: &WebhookJob, fate: &Fate<()>, at: DateTime<Utc>) -> DbResult<()> {
        let (response_status, duration_ms) = *job.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (status, next_attempt_at, error) = match fate {
            Fate::Done(()) => (DeliveryStatus::Delivered, at, None),
            Fate::Retry { at: next, reason } => (DeliveryStatus::Pending, *next, Some(reason)),
            Fate::Dead { reason } => (DeliveryStatus::Failed, at, Some(reason)),
        };
        self.store
            .finish_webhook_delivery(
                &job.delivery.id,
                &DeliveryAttempt {
                    status,
                    next_attempt_at,
                    response_status,
                    duration_ms,
                    error: error.cloned(),
                },
                at,
            )
            .await?;
        let disabled = self
            .store
            .record_webhook_result(
                &job.endpoint.id,
                error.is_none(),
                error.map(String::as_str),
                self.settings.disable,
                at,
            )
            .await?;
        if let Some((endpoint, entries)) = disabled {
            // The host only: a webhook's URL may hold its receiver's secret.
            let host = url::Url::parse(&endpoint.url)
                .ok()
                .and_then(|url| url.host_str().map(str::to_owned));
            tracing::warn!(
                endpoint = %endpoint.id,
                host,
                reason = endpoint.disabled_reason.as_deref().unwrap_or_default(),
                "webhook endpoint disabled"
            );
            for entry in entries {
                self.bus.publish(
                    Topic::Agent(entry.agent_id.clone()),
                    BusEvent::Feed(Box::new(entry)),
                );
            }
        }
        Ok(())
    }
}

impl WebhookJobs {
    fn see(&self, job: &WebhookJob, status: Option<i32>, elapsed: Duration) {
        let millis = i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX);
        *job.seen.lock().unwrap_or_else(|e| e.into_inner()) = (status, Some(millis));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_of_this_machine_and_private_literals_are_refused() {
        let refused = |text: &str| {
            let url = url::Url::parse(text).unwrap();
            async move { refused_target(&url).await }
        };
        assert!(refused("http://127.0.0.1:8080/").await.is_some());
        assert!(refused("http://[::1]/").await.is_some());
        assert!(refused("http://[::ffff:10.0.0.1]/").await.is_some());
        assert!(refused("http://169.254.169.254/latest").await.is_some());
        assert!(refused("http://localhost:3000/").await.is_some());
        assert!(refused("https://93.184.216.34/").await.is_none());
    }
}
