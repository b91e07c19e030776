//! The chat widget as an organization sets it up: how it looks and speaks, which sites may
//! embed it, and how a shop proves who its logged-in customers are.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ValidationError;

string_enum! {
    /// Which corner of the page the chat button sits in.
    WidgetPosition { Right = "RIGHT", Left = "LEFT" }
}

string_enum! {
    /// Whether the widget asks for a field before a chat starts.
    FieldRequirement { Hidden = "HIDDEN", Optional = "OPTIONAL", Required = "REQUIRED" }
}

/// The languages the widget speaks.
pub const WIDGET_LOCALES: [&str; 2] = ["en", "de"];
/// The button's colour until an admin picks one.
pub const DEFAULT_WIDGET_COLOR: &str = "#2563eb";
/// Longest widget title.
pub const MAX_WIDGET_TITLE_CHARS: usize = 80;
/// Longest greeting line and offline text.
pub const MAX_WIDGET_TEXT_CHARS: usize = 500;
/// Most origins an organization may list.
pub const MAX_ALLOWED_ORIGINS: usize = 50;
/// Longest user id a signed identity carries.
pub const MAX_IDENTITY_USER_ID_CHARS: usize = 200;

/// How an organization's widget looks and speaks. Texts left unset (`None`) show the widget's
/// own wording in the visitor's language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct WidgetSettings {
    /// `#rrggbb`.
    pub color: String,
    pub position: WidgetPosition,
    pub title: Option<String>,
    /// The line above an empty chat.
    pub greeting: Option<String>,
    /// The line above the offline form.
    pub offline_text: Option<String>,
    pub pre_chat_name: FieldRequirement,
    pub pre_chat_email: FieldRequirement,
    /// One of [`WIDGET_LOCALES`]; a page may ask for another with `data-locale`.
    pub locale: String,
    /// Origins (`https://shop.example`) whose pages may use the widget key; empty: any.
    pub allowed_origins: Vec<String>,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        WidgetSettings {
            color: DEFAULT_WIDGET_COLOR.to_owned(),
            position: WidgetPosition::Right,
            title: None,
            greeting: None,
            offline_text: None,
            pre_chat_name: FieldRequirement::Hidden,
            pre_chat_email: FieldRequirement::Hidden,
            locale: "en".to_owned(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Changes to [`WidgetSettings`]; `None` keeps a field as it is. For the texts, `Some(None)`
/// (or an empty text) returns to the widget's own wording.
#[derive(Debug, Clone, Default)]
pub struct WidgetSettingsUpdate {
    pub color: Option<String>,
    pub position: Option<WidgetPosition>,
    pub title: Option<Option<String>>,
    pub greeting: Option<Option<String>>,
    pub offline_text: Option<Option<String>>,
    pub pre_chat_name: Option<FieldRequirement>,
    pub pre_chat_email: Option<FieldRequirement>,
    pub locale: Option<String>,
    pub allowed_origins: Option<Vec<String>>,
}

impl WidgetSettings {
    /// The settings with `update` applied, or why it cannot be.
    pub fn updated(&self, update: WidgetSettingsUpdate) -> Result<WidgetSettings, ValidationError> {
        let mut next = self.clone();
        if let Some(color) = update.color {
            next.color = normalize_color(&color)?;
        }
        if let Some(position) = update.position {
            next.position = position;
        }
        if let Some(title) = update.title {
            next.title = optional_text("title", title, MAX_WIDGET_TITLE_CHARS)?;
        }
        if let Some(greeting) = update.greeting {
            next.greeting = optional_text("greeting", greeting, MAX_WIDGET_TEXT_CHARS)?;
        }
        if let Some(offline_text) = update.offline_text {
            next.offline_text = optional_text("offlineText", offline_text, MAX_WIDGET_TEXT_CHARS)?;
        }
        if let Some(requirement) = update.pre_chat_name {
            next.pre_chat_name = requirement;
        }
        if let Some(requirement) = update.pre_chat_email {
            next.pre_chat_email = requirement;
        }
        if let Some(locale) = update.locale {
            next.locale = widget_locale(&locale).ok_or_else(|| {
                ValidationError(format!(
                    "locale must be one of {}",
                    WIDGET_LOCALES.join(", ")
                ))
            })?;
        }
        if let Some(origins) = update.allowed_origins {
            if origins.len() > MAX_ALLOWED_ORIGINS {
                return Err(ValidationError(format!(
                    "allowedOrigins may list at most {MAX_ALLOWED_ORIGINS} origins"
                )));
            }
            let mut normalized = Vec::with_capacity(origins.len());
            for origin in &origins {
                let origin = normalize_origin(origin)?;
                if !normalized.contains(&origin) {
                    normalized.push(origin);
                }
            }
            next.allowed_origins = normalized;
        }
        Ok(next)
    }

    /// Whether a page of `origin` (the browser's `Origin` header; `None` when not a browser's
    /// cross-origin request) may use the widget key.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        match origin {
            _ if self.allowed_origins.is_empty() => true,
            // Servers and apps send no Origin; the list keeps other sites' pages out.
            None => true,
            Some(origin) => self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim_end_matches('/'))),
        }
    }
}

/// The supported locale `requested` names (`de-AT` is `de`), if any.
pub fn widget_locale(requested: &str) -> Option<String> {
    let language = requested
        .trim()
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    WIDGET_LOCALES
        .contains(&language.as_str())
        .then_some(language)
}

fn normalize_color(raw: &str) -> Result<String, ValidationError> {
    let color = raw.trim().to_ascii_lowercase();
    let hex = color.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(color)
    } else {
        Err(ValidationError(format!(
            "color must be a colour such as #2563eb, not {:?}",
            raw.chars().take(20).collect::<String>()
        )))
    }
}

fn optional_text(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, ValidationError> {
    let Some(text) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max_chars {
        return Err(ValidationError(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ValidationError(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(Some(text))
}

/// `https://shop.example[:port]`: a scheme, a host and an optional port, nothing else.
fn normalize_origin(raw: &str) -> Result<String, ValidationError> {
    let origin = raw.trim().trim_end_matches('/').to_ascii_lowercase();
    let invalid = || {
        ValidationError(format!(
            "allowedOrigins: {:?} is not an origin such as https://shop.example",
            raw.chars().take(100).collect::<String>()
        ))
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(invalid)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.len() > 253 {
        return Err(invalid());
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    if host_ok && port_ok {
        Ok(origin)
    } else {
        Err(invalid())
    }
}

/// The signature a shop's server gives its page for `user_id`: HMAC-SHA256 with the
/// organization's identity secret, in lower-case hex.
pub fn identity_signature(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(user_id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `signature` is the one for `user_id`, compared in constant time.
pub fn identity_verified(secret: &str, user_id: &str, signature: &str) -> bool {
    let Some(expected) = decode_hex(signature.trim()) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(user_id.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_validated_and_normalized() {
        let settings = WidgetSettings::default()
            .updated(WidgetSettingsUpdate {
                color: Some(" #FF8800 ".into()),
                title: Some(Some("  Help  ".into())),
                locale: Some("de-AT".into()),
                allowed_origins: Some(vec![
                    "https://Shop.example/".into(),
                    "https://shop.example".into(),
                    "http://localhost:3000".into(),
                ]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(settings.color, "#ff8800");
        assert_eq!(settings.title.as_deref(), Some("Help"));
        assert_eq!(settings.locale, "de");
        assert_eq!(
            settings.allowed_origins,
            ["https://shop.example", "http://localhost:3000"]
        );
        let cleared = settings
            .updated(WidgetSettingsUpdate {
                title: Some(Some("  ".into())),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cleared.title, None);
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let bad = [
            WidgetSettingsUpdate {
                color: Some("red".into()),
                ..Default::default()
            },
            WidgetSettingsUpdate {
                locale: Some("xx".into()),
                ..Default::default()
            },
            WidgetSettingsUpdate {
                allowed_origins: Some(vec!["https://shop.example/path".into()]),
                ..Default::default()
            },
            WidgetSettingsUpdate {
                allowed_origins: Some(vec!["shop.example".into()]),
                ..Default::default()
            },
            WidgetSettingsUpdate {
                title: Some(Some("x".repeat(MAX_WIDGET_TITLE_CHARS + 1))),
                ..Default::default()
            },
        ];
        for (update, field) in bad.into_iter().zip([
            "color",
            "locale",
            "allowedOrigins",
            "allowedOrigins",
            "title",
        ]) {
            let err = WidgetSettings::default().updated(update).unwrap_err();
            assert!(err.0.contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn origins_are_checked_only_when_listed() {
        let open = WidgetSettings::default();
        assert!(open.allows_origin(Some("https://anywhere.example")));
        let closed = open
            .updated(WidgetSettingsUpdate {
                allowed_origins: Some(vec!["https://shop.example".into()]),
                ..Default::default()
            })
            .unwrap();
        assert!(closed.allows_origin(Some("https://shop.example")));
        assert!(closed.allows_origin(None));
        assert!(!closed.allows_origin(Some("https://evil.example")));
    }

    #[test]
    fn identities_verify_only_with_their_own_signature() {
        let signature = identity_signature("secret", "user-42");
        assert_eq!(signature.len(), 64);
        assert!(identity_verified("secret", "user-42", &signature));
        assert!(identity_verified(
            "secret",
            "user-42",
            &signature.to_uppercase()
        ));
        assert!(!identity_verified("secret", "user-43", &signature));
        assert!(!identity_verified("other", "user-42", &signature));
        assert!(!identity_verified("secret", "user-42", "zz"));
    }
}
