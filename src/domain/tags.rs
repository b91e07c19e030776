//! Tags: labels an organization defines (admins and owners manage them) and agents put on
//! chats, during or after them. The rules here: what a valid name and colour are.

use chrono::{DateTime, Utc};

use super::validation::{ValidationError, validate_name};

/// Longest tag name, in characters.
pub const MAX_TAG_NAME_CHARS: usize = 40;

/// An organization's tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Tag {
    pub id: String,
    pub organization_id: String,
    /// As shown; unique in the organization whatever the case.
    pub name: String,
    /// A CSS hex colour (`#1a5fd0` or `#abc`), lower case; `None` for the apps' default.
    pub color: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A tag's name: trimmed, 1 to 40 characters, no control characters.
pub fn validate_tag_name(raw: &str) -> Result<String, ValidationError> {
    validate_name("name", raw, MAX_TAG_NAME_CHARS)
}

/// A tag's colour: empty or missing is none; otherwise `#` and 3 or 6 hex digits, stored in
/// lower case.
pub fn validate_tag_color(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    let Some(color) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let digits = color.strip_prefix('#').unwrap_or("");
    if !matches!(digits.len(), 3 | 6) || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ValidationError(format!(
            "color must be a hex colour such as #1a5fd0 or #abc, not {color:?}"
        )));
    }
    Ok(Some(color.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_tag_name("  VIP ").unwrap(), "VIP");
        assert!(validate_tag_name("   ").is_err());
        assert!(validate_tag_name(&"x".repeat(40)).is_ok());
        assert!(validate_tag_name(&"x".repeat(41)).is_err());
        assert!(validate_tag_name("a\nb").is_err());
    }

    #[test]
    fn colours_are_hex() {
        assert_eq!(validate_tag_color(None).unwrap(), None);
        assert_eq!(validate_tag_color(Some(" ")).unwrap(), None);
        assert_eq!(
            validate_tag_color(Some("#1A5FD0")).unwrap().as_deref(),
            Some("#1a5fd0")
        );
        assert_eq!(
            validate_tag_color(Some("#abc")).unwrap().as_deref(),
            Some("#abc")
        );
        for bad in ["1a5fd0", "#1a5fd", "#ggg", "red", "#1a5fd0;x", "url(x)"] {
            assert!(validate_tag_color(Some(bad)).is_err(), "{bad}");
        }
    }
}
