//! The archive (every chat an agent may see, filtered, newest first, paged by an opaque
//! cursor), customer profiles (the fields agents edit) and bans.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use super::{
    Agent, Channel, Chat, ChatStatus, Rating, Role, SearchQuery, SnippetPart, ValidationError,
};

/// Most chats on one page of the archive.
pub const MAX_ARCHIVE_PAGE: i32 = 50;

/// What the archive lists: every field narrows.
#[derive(Debug, Clone, Default)]
pub struct ArchiveFilter {
    pub status: Option<ChatStatus>,
    /// The chat's agent: its assignee or a previous assignee.
    pub agent_id: Option<String>,
    pub group_id: Option<String>,
    pub tag_id: Option<String>,
    pub rating: Option<Rating>,
    pub channel: Option<Channel>,
    /// Started at or after.
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    pub to: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    pub search: Option<SearchQuery>,
}

/// Which chats of the organization an agent's archive holds, as the store applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveScope {
    /// Admins and owners: every chat.
    Everything,
    /// The chats the agent has or had or joined, the queued chats of their groups and, when
    /// `group_chats`, every chat of their groups (`group_ids` empty: of every group).
    Own {
        agent_id: String,
        group_chats: bool,
        group_ids: Vec<String>,
    },
}

/// THE place where "plain agents see their groups' chats" plugs in: `agents_see_group_chats`
/// is the organization setting of that name (read-only teammates' chats, as
/// [`super::can_read_teammates_chat`] decides for one chat). Supervisors always
/// see their groups' chats; admins and owners everything. Mirrors
/// [`super::can_view_chat`], which decides for one chat.
pub fn archive_scope(agent: &Agent, agents_see_group_chats: bool) -> ArchiveScope {
    if agent.role.is_admin() {
        return ArchiveScope::Everything;
    }
    ArchiveScope::Own {
        agent_id: agent.id.clone(),
        group_chats: agent.role >= Role::Supervisor || agents_see_group_chats,
        group_ids: agent.group_ids.clone(),
    }
}

/// Where a page of the archive starts: after the chat with this start time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveCursor {
    pub created_at_ms: i64,
    pub chat_id: String,
}

impl ArchiveCursor {
    /// The opaque text apps pass back as `after`.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.created_at_ms, self.chat_id))
    }

    pub fn decode(text: &str) -> Result<ArchiveCursor, ValidationError> {
        let invalid = || ValidationError("the cursor is not one this archive gave".into());
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (millis, id) = text.split_once(':').ok_or_else(invalid)?;
        let created_at_ms = millis.parse().map_err(|_| invalid())?;
        if id.is_empty() || id.len() > 64 {
            return Err(invalid());
        }
        Ok(ArchiveCursor {
            created_at_ms,
            chat_id: id.to_owned(),
        })
    }
}

/// A chat of the archive, with where it matched the search.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    pub chat: Chat,
    /// Some when searched: a piece of the transcript or the customer's name, matches marked.
    pub snippet: Option<Vec<SnippetPart>>,
}

/// A page of the archive.
#[derive(Debug, Clone)]
pub struct ArchivePage {
    pub entries: Vec<ArchiveEntry>,
    /// Where the next page starts, when there is one.
    pub next: Option<ArchiveCursor>,
}

// ---- customer profiles ------------------------------------------------------------------

/// Most custom fields on a customer.
pub const MAX_CUSTOM_FIELDS: usize = 20;
/// Longest custom field key, in characters.
pub const MAX_CUSTOM_KEY_CHARS: usize = 40;
/// Longest custom field value, in characters.
pub const MAX_CUSTOM_VALUE_CHARS: usize = 500;
/// Longest note, in characters.
pub const MAX_CUSTOMER_NOTE_CHARS: usize = 2000;
/// Longest phone number, in characters.
pub const MAX_PHONE_CHARS: usize = 40;

/// A key and its value an agent records about a customer ("Plan": "Pro").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomField {
    pub key: String,
    pub value: String,
}

/// What agents add to a customer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerProfile {
    /// `None`: the first word of the name.
    pub first_name: Option<String>,
    pub phone: Option<String>,
    pub note: Option<String>,
    pub custom_fields: Vec<CustomField>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// Checks custom fields: at most [`MAX_CUSTOM_FIELDS`], keys 1 to 40 characters and unique
/// (whatever the case), values up to 500. Trims both.
pub fn validate_custom_fields(
    fields: Vec<CustomField>,
) -> Result<Vec<CustomField>, ValidationError> {
    if fields.len() > MAX_CUSTOM_FIELDS {
        return Err(ValidationError(format!(
            "a customer has at most {MAX_CUSTOM_FIELDS} custom fields"
        )));
    }
    let mut out: Vec<CustomField> = Vec::with_capacity(fields.len());
    for field in fields {
        let key = field.key.trim().to_owned();
        let value = field.value.trim().to_owned();
        if key.is_empty() || key.chars().count() > MAX_CUSTOM_KEY_CHARS {
            return Err(ValidationError(format!(
                "a custom field's key is 1 to {MAX_CUSTOM_KEY_CHARS} characters"
            )));
        }
        if value.chars().count() > MAX_CUSTOM_VALUE_CHARS {
            return Err(ValidationError(format!(
                "a custom field's value is at most {MAX_CUSTOM_VALUE_CHARS} characters"
            )));
        }
        if out
            .iter()
            .any(|f| f.key.to_lowercase() == key.to_lowercase())
        {
            return Err(ValidationError(format!(
                "the custom field \"{key}\" is given twice"
            )));
        }
        out.push(CustomField { key, value });
    }
    Ok(out)
}

/// An optional free text: trimmed, blank is `None`, longer than `max` refused.
pub fn optional_field(
    what: &str,
    text: Option<String>,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    let Some(text) = text else { return Ok(None) };
    let text = text.trim();
    if text.chars().count() > max {
        return Err(ValidationError(format!(
            "{what} is at most {max} characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

// ---- bans ---------------------------------------------------------------------------------

/// Longest ban reason, in characters.
pub const MAX_BAN_REASON_CHARS: usize = 500;

/// A ban: the visitor (and, with `ip_address`, anyone from that address) cannot start chats
/// or leave offline messages until it expires or is lifted.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerBan {
    pub id: String,
    pub organization_id: String,
    pub customer_id: String,
    pub visitor_id: String,
    pub ip_address: Option<String>,
    pub reason: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// `None`: until lifted.
    pub expires_at: Option<DateTime<Utc>>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lifted_by: Option<String>,
}

impl CustomerBan {
    /// Whether it applies at `now`.
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.lifted_at.is_none() && self.expires_at.is_none_or(|end| end > now)
    }
}

/// Who may ban and unban customers: supervisors, admins and owners.
pub fn may_ban(agent: &Agent) -> bool {
    agent.role >= Role::Supervisor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let cursor = ArchiveCursor {
            created_at_ms: 1_700_000_000_000,
            chat_id: "0190-abc".into(),
        };
        assert_eq!(ArchiveCursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in ["", "!!", "bm9jb2xvbg", "MTIzOg"] {
            assert!(ArchiveCursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn custom_fields_are_limited() {
        let field = |k: &str, v: &str| CustomField {
            key: k.into(),
            value: v.into(),
        };
        assert_eq!(
            validate_custom_fields(vec![field(" Plan ", " Pro ")]).unwrap(),
            vec![field("Plan", "Pro")]
        );
        assert!(validate_custom_fields(vec![field("", "x")]).is_err());
        assert!(validate_custom_fields(vec![field("a", "x"), field("A", "y")]).is_err());
        assert!(validate_custom_fields(vec![field("a", &"x".repeat(501))]).is_err());
        assert!(
            validate_custom_fields((0..21).map(|i| field(&i.to_string(), "")).collect()).is_err()
        );
    }
}
