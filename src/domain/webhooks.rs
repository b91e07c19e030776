//! Webhooks: the endpoints an organization registers, the events they may ask for, the JSON
//! document each event is delivered as, its signature, and which addresses a delivery may
//! go to.
//!
//! Signatures follow the Standard Webhooks specification
//! (<https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md>):
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`,
//! keyed with the base64 bytes after a `whsec_` secret, so receivers verify with the spec's
//! libraries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{
    Chat, ChatEvent, Customer, Greeting, OfflineMessage, Tag, ValidationError, Visibility,
};

/// The version of every delivery's JSON document. A change that removes or renames a field
/// is a new version; new fields may appear within one.
pub const WEBHOOK_PAYLOAD_VERSION: i32 = 1;

/// Longest endpoint URL accepted.
pub const MAX_WEBHOOK_URL_CHARS: usize = 2000;

/// Longest description accepted.
pub const MAX_WEBHOOK_DESCRIPTION_CHARS: usize = 200;

/// Random bytes in a secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 32;

string_enum!(
    /// What a delivery tells of. The first ten are what endpoints subscribe to; the last two
    /// are sent on request only (an agent sending a chat, an admin's test).
    WebhookEvent {
        ChatStarted = "chat.started",
        ChatAssigned = "chat.assigned",
        ChatTransferred = "chat.transferred",
        /// A customer's or an agent's message; a note only to endpoints that asked for notes.
        MessageAdded = "message.added",
        ChatClosed = "chat.closed",
        ChatRated = "chat.rated",
        ChatTagged = "chat.tagged",
        OfflineMessageLeft = "offline_message.left",
        CustomerUpdated = "customer.updated",
        GreetingAnswered = "greeting.answered",
        /// An agent sent a chat's transcript and customer to an integration.
        ChatSentToIntegration = "chat.sent_to_integration",
        /// An admin's "send a test event".
        Test = "webhook.test",
    }
);

impl WebhookEvent {
    /// The events an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [WebhookEvent; 10] = [
        WebhookEvent::ChatStarted,
        WebhookEvent::ChatAssigned,
        WebhookEvent::ChatTransferred,
        WebhookEvent::MessageAdded,
        WebhookEvent::ChatClosed,
        WebhookEvent::ChatRated,
        WebhookEvent::ChatTagged,
        WebhookEvent::OfflineMessageLeft,
        WebhookEvent::CustomerUpdated,
        WebhookEvent::GreetingAnswered,
    ];

    /// Parses a list of subscribable event names; an unknown or duplicate name is refused
    /// with the list of known ones.
    pub fn parse_subscription(names: &[String]) -> Result<Vec<WebhookEvent>, ValidationError> {
        if names.is_empty() {
            return Err(ValidationError(
                "events must name at least one event type".into(),
            ));
        }
        let mut events = Vec::with_capacity(names.len());
        for name in names {
            let event = name
                .trim()
                .parse::<WebhookEvent>()
                .ok()
                .filter(|e| Self::SUBSCRIBABLE.contains(e))
                .ok_or_else(|| {
                    let known: Vec<&str> = Self::SUBSCRIBABLE.iter().map(|e| e.as_str()).collect();
                    ValidationError(format!(
                        "unknown event type '{name}'; known: {}",
                        known.join(", ")
                    ))
                })?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Ok(events)
    }
}

string_enum!(
    /// What an endpoint is for.
    WebhookKind {
        /// Receives the events it subscribed to.
        Webhook = "WEBHOOK",
        /// Also a target agents send chats to ("send to integration"): a CRM, a ticketing
        /// system.
        Integration = "INTEGRATION",
    }
);

string_enum!(
    /// Where a delivery stands.
    DeliveryStatus {
        /// Waiting for its (next) attempt.
        Pending = "PENDING",
        /// An attempt is under way.
        Sending = "SENDING",
        /// The receiver answered 2xx.
        Delivered = "DELIVERED",
        /// Given up: out of attempts, refused, or its endpoint was disabled.
        Failed = "FAILED",
    }
);

/// An endpoint an organization's admins registered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<WebhookEvent>,
    /// Whether agents' notes are sent too (as `message.added` with visibility AGENTS).
    pub include_notes: bool,
    pub kind: WebhookKind,
    pub enabled: bool,
    /// `whsec_…`: signs every delivery.
    pub secret: String,
    /// The secret before the last rotation, still signing until it expires.
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub failing_since: Option<DateTime<Utc>>,
    /// Why the server disabled it, when it did.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether `event` (with its visibility, for messages) goes to this endpoint.
    pub fn wants(&self, event: WebhookEvent, visibility: Visibility) -> bool {
        self.enabled
            && self.events.contains(&event)
            && (visibility == Visibility::Public || self.include_notes)
    }

    /// The secrets that sign a delivery at `now`: the current one, and the previous one
    /// during a rotation's overlap.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret, self.previous_secret_expires_at)
            && until > now
        {
            secrets.push(previous);
        }
        secrets
    }
}

/// One event on its way to one endpoint: the outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDelivery {
    pub id: String,
    /// Orders deliveries: a chat's go out to an endpoint in this order.
    pub seq: i64,
    pub endpoint_id: String,
    pub organization_id: String,
    pub event: WebhookEvent,
    pub chat_id: Option<String>,
    /// The JSON document, exactly as signed and sent.
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub response_status: Option<i32>,
    /// How long the last attempt took.
    pub duration_ms: Option<i64>,
    pub last_error: Option<String>,
    /// The agent who sent the chat to an integration, if one did.
    pub requested_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A new secret: `whsec_` and base64 of random bytes.
pub fn new_webhook_secret() -> String {
    use argon2::password_hash::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` header for a body signed with each of `secrets`: `v1,<sig>`
/// entries separated by spaces.
pub fn webhook_signature(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .filter_map(|secret| sign(secret, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `v1,<base64>` signature; `None` for a secret that is not `whsec_` base64 (never one
/// of ours).
fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Checks an endpoint URL: http(s), a host, no credentials, not too long. Whether its
/// address may be reached is [`forbidden_webhook_address`]'s question.
pub fn validate_webhook_url(text: &str) -> Result<url::Url, ValidationError> {
    let text = text.trim();
    if text.chars().count() > MAX_WEBHOOK_URL_CHARS {
        return Err(ValidationError(format!(
            "url must be at most {MAX_WEBHOOK_URL_CHARS} characters"
        )));
    }
    let url = url::Url::parse(text)
        .map_err(|err| ValidationError(format!("url is not a valid URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError("url must be http:// or https://".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError("url must name a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValidationError(
            "url must not carry credentials; the signature authenticates deliveries".into(),
        ));
    }
    Ok(url)
}

/// Why a delivery may not go to `ip`, when it may not: loopback, private, link-local,
/// unique-local, unspecified, multicast, broadcast and other non-public ranges (IPv4-mapped
/// and NAT64 IPv6 addresses as their IPv4 address). Keeps webhooks from reaching into the
/// server's own network (SSRF).
pub fn forbidden_webhook_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return forbidden_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    let first = segments[0];
    if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("a unique-local address")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("a link-local address")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

/// Whether a host name is the machine itself whatever DNS says.
pub fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_time(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| Value::String(time(at)))
}

/// The document a delivery sends: the event's type, the payload version, the event's id,
/// when it happened, the organization, and the event's `data`.
pub fn webhook_document(
    event: WebhookEvent,
    event_id: &str,
    organization_id: &str,
    at: DateTime<Utc>,
    data: Value,
) -> String {
    json!({
        "type": event.as_str(),
        "version": WEBHOOK_PAYLOAD_VERSION,
        "id": event_id,
        "timestamp": time(at),
        "organizationId": organization_id,
        "data": data,
    })
    .to_string()
}

/// A chat as deliveries describe it.
pub fn chat_json(chat: &Chat) -> Value {
    json!({
        "id": chat.id,
        "status": chat.status.as_str(),
        "channel": chat.channel.as_str(),
        "customerId": chat.customer_id,
        "groupId": chat.group_id,
        "assigneeId": chat.assignee_id,
        "createdAt": time(chat.created_at),
        "assignedAt": opt_time(chat.assigned_at),
        "firstResponseAt": opt_time(chat.first_response_at),
        "closedAt": opt_time(chat.closed_at),
        "rating": chat.rating.map(|r| r.as_str()),
        "ratingComment": chat.rating_comment,
    })
}

/// A transcript entry as deliveries describe it.
pub fn message_json(entry: &ChatEvent) -> Value {
    json!({
        "id": entry.id,
        "seq": entry.seq,
        "kind": entry.kind.as_str(),
        "authorKind": entry.author_kind.as_str(),
        "authorId": entry.author_id,
        "authorName": entry.author_name,
        "text": entry.text,
        "visibility": entry.visibility.as_str(),
        "createdAt": time(entry.created_at),
    })
}

/// A customer as deliveries describe them.
pub fn customer_json(customer: &Customer) -> Value {
    json!({
        "id": customer.id,
        "name": customer.name,
        "email": customer.email,
        "location": customer.location,
        "currentPageUrl": customer.current_page_url,
        "currentPageTitle": customer.current_page_title,
        "referrer": customer.referrer,
        "visits": customer.visits,
        "createdAt": time(customer.created_at),
        "lastSeenAt": time(customer.last_seen_at),
    })
}

/// A tag as `chat.tagged` describes it.
pub fn tag_json(tag: &Tag) -> Value {
    json!({ "id": tag.id, "name": tag.name, "color": tag.color })
}

/// An offline message as `offline_message.left` describes it.
pub fn offline_message_json(message: &OfflineMessage) -> Value {
    json!({
        "id": message.id,
        "customerId": message.customer_id,
        "groupId": message.group_id,
        "name": message.name,
        "email": message.email,
        "text": message.text,
        "createdAt": time(message.created_at),
    })
}

/// A greeting as `greeting.answered` describes it.
pub fn greeting_json(greeting: &Greeting) -> Value {
    json!({
        "id": greeting.id,
        "ruleId": greeting.rule_id,
        "agentId": greeting.agent_id,
        "groupId": greeting.group_id,
        "text": greeting.text,
        "createdAt": time(greeting.created_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_special_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.9.9.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "64:ff9b::a00:1",
        ] {
            assert!(
                forbidden_webhook_address(ip(refused)).is_some(),
                "{refused} was allowed"
            );
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(
                forbidden_webhook_address(ip(allowed)),
                None,
                "{allowed} was refused"
            );
        }
        assert_eq!(
            forbidden_webhook_address(ip("::ffff:127.0.0.1")),
            Some("a loopback address")
        );
    }

    #[test]
    fn localhost_names_are_the_machine() {
        assert!(is_localhost_name("localhost"));
        assert!(is_localhost_name("LOCALHOST."));
        assert!(is_localhost_name("api.localhost"));
        assert!(!is_localhost_name("localhost.example.com"));
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(validate_webhook_url("https://example.com/hook").is_ok());
        assert!(validate_webhook_url(" http://example.com:8080/x?y=1 ").is_ok());
        for bad in [
            "not a url",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "mailto:a@example.com",
        ] {
            assert!(validate_webhook_url(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_WEBHOOK_URL_CHARS));
        assert!(validate_webhook_url(&long).is_err());
    }

    #[test]
    fn event_names_parse_with_clear_errors() {
        let names = vec!["chat.started".to_string(), "message.added".to_string()];
        assert_eq!(
            WebhookEvent::parse_subscription(&names).unwrap(),
            vec![WebhookEvent::ChatStarted, WebhookEvent::MessageAdded]
        );
        let err = WebhookEvent::parse_subscription(&["chat.exploded".to_string()]).unwrap_err();
        assert!(err.0.contains("chat.exploded"), "{}", err.0);
        assert!(err.0.contains("greeting.answered"), "{}", err.0);
        // Sent on request only: not a subscription.
        assert!(WebhookEvent::parse_subscription(&["webhook.test".to_string()]).is_err());
        assert!(WebhookEvent::parse_subscription(&[]).is_err());
    }

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signatures_match_the_specification() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let timestamp = 1614265330;
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            webhook_signature(&[secret], id, timestamp, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn both_secrets_sign_during_a_rotation_overlap() {
        let now = crate::domain::now();
        let mut endpoint = WebhookEndpoint {
            id: "e".into(),
            organization_id: "o".into(),
            url: "https://example.com".into(),
            description: None,
            events: vec![WebhookEvent::MessageAdded],
            include_notes: false,
            kind: WebhookKind::Webhook,
            enabled: true,
            secret: new_webhook_secret(),
            previous_secret: Some(new_webhook_secret()),
            previous_secret_expires_at: Some(now + chrono::Duration::minutes(1)),
            consecutive_failures: 0,
            failing_since: None,
            disabled_reason: None,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        assert_eq!(endpoint.signing_secrets(now).len(), 2);
        let header = webhook_signature(&endpoint.signing_secrets(now), "id", 1, "{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(
            endpoint
                .signing_secrets(now + chrono::Duration::minutes(2))
                .len(),
            1
        );
        // Notes only to endpoints that asked for them.
        assert!(endpoint.wants(WebhookEvent::MessageAdded, Visibility::Public));
        assert!(!endpoint.wants(WebhookEvent::MessageAdded, Visibility::Agents));
        endpoint.include_notes = true;
        assert!(endpoint.wants(WebhookEvent::MessageAdded, Visibility::Agents));
        assert!(!endpoint.wants(WebhookEvent::ChatClosed, Visibility::Public));
    }
}
