//! Canned responses: texts agents insert by `#shortcut`, shared by the organization or a group,
//! or an agent's own. Their validation, the placeholders and how they are filled, who sees
//! which, and the order suggestions come in are pure, and tested here.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use super::{Agent, ValidationError};

/// Longest shortcut, without the `#`.
pub const MAX_SHORTCUT_CHARS: usize = 32;
/// Longest title.
pub const MAX_CANNED_TITLE_CHARS: usize = 100;
/// Longest text, as written (a message holds as much).
pub const MAX_CANNED_TEXT_CHARS: usize = 4000;
/// Most suggestions one search returns.
pub const MAX_CANNED_RESULTS: i32 = 50;

/// The placeholders a canned response's text may hold.
pub const CANNED_PLACEHOLDERS: &[&str] = &[
    "customer.first_name",
    "customer.name",
    "customer.email",
    "agent.name",
    "agent.first_name",
];

string_enum! {
    /// Who a canned response is for.
    CannedScope {
        /// Every agent of the organization; admins manage it.
        Organization = "ORGANIZATION",
        /// The agents of one group; admins manage it.
        Group = "GROUP",
        /// Its owner alone, who manages it.
        Personal = "PERSONAL",
    }
}

/// A canned response.
#[derive(Debug, Clone, PartialEq)]
pub struct CannedResponse {
    pub id: String,
    pub organization_id: String,
    /// Lower case, without the `#`.
    pub shortcut: String,
    pub title: String,
    /// As written, placeholders unfilled.
    pub text: String,
    pub scope: CannedScope,
    /// For [`CannedScope::Group`].
    pub group_id: Option<String>,
    /// For [`CannedScope::Personal`].
    pub owner_id: Option<String>,
    /// Messages sent from it.
    pub usage_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CannedResponse {
    /// Whether the agent may see and use it.
    pub fn visible_to(&self, agent: &Agent) -> bool {
        match self.scope {
            CannedScope::Organization => true,
            CannedScope::Group => self
                .group_id
                .as_ref()
                .is_some_and(|group| agent.group_ids.contains(group)),
            CannedScope::Personal => self.owner_id.as_deref() == Some(agent.id.as_str()),
        }
    }

    /// Whether the agent may change or delete it: admins the shared ones, owners their own.
    pub fn managed_by(&self, agent: &Agent) -> bool {
        match self.scope {
            CannedScope::Organization | CannedScope::Group => agent.role.is_admin(),
            CannedScope::Personal => self.owner_id.as_deref() == Some(agent.id.as_str()),
        }
    }
}

/// Drops a leading `#`, lower-cases, and checks the shortcut's characters and length.
pub fn normalize_shortcut(raw: &str) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let shortcut = trimmed.strip_prefix('#').unwrap_or(trimmed).to_lowercase();
    let count = shortcut.chars().count();
    if count == 0 || count > MAX_SHORTCUT_CHARS {
        return Err(ValidationError(format!(
            "shortcut must be 1 to {MAX_SHORTCUT_CHARS} characters (without the #)"
        )));
    }
    if let Some(bad) = shortcut
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(ValidationError(format!(
            "shortcut may hold only letters a-z, digits, '_' and '-', not {bad:?}"
        )));
    }
    Ok(shortcut)
}

/// Trims the title and checks its length.
pub fn validate_canned_title(raw: &str) -> Result<String, ValidationError> {
    let title = raw.trim();
    let count = title.chars().count();
    if count == 0 || count > MAX_CANNED_TITLE_CHARS {
        return Err(ValidationError(format!(
            "title must be 1 to {MAX_CANNED_TITLE_CHARS} characters"
        )));
    }
    Ok(title.to_owned())
}

/// Trims the text, checks its length and that every placeholder in it is known.
pub fn validate_canned_text(raw: &str) -> Result<String, ValidationError> {
    let text = raw.trim();
    let count = text.chars().count();
    if count == 0 || count > MAX_CANNED_TEXT_CHARS {
        return Err(ValidationError(format!(
            "text must be 1 to {MAX_CANNED_TEXT_CHARS} characters"
        )));
    }
    for part in parse(text)? {
        if let Part::Placeholder(name) = part
            && !CANNED_PLACEHOLDERS.contains(&name)
        {
            return Err(ValidationError(format!(
                "unknown placeholder {{{{{name}}}}}; the known ones are {}",
                known_placeholders()
            )));
        }
    }
    Ok(text.to_owned())
}

fn known_placeholders() -> String {
    CANNED_PLACEHOLDERS
        .iter()
        .map(|name| format!("{{{{{name}}}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A piece of a text: as written, or a placeholder's name (trimmed).
#[derive(Debug, PartialEq)]
enum Part<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

/// Splits a text at its `{{…}}`; an opening `{{` without its `}}` is refused, since it
/// would reach the customer as raw braces.
fn parse(text: &str) -> Result<Vec<Part<'_>>, ValidationError> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(ValidationError(format!(
                "a placeholder opened with {{{{ is not closed with }}}}; the known ones are {}",
                known_placeholders()
            )));
        };
        parts.push(Part::Placeholder(after[..close].trim()));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// What the placeholders are filled with; `None` falls back to a word that reads well.
#[derive(Debug, Clone, Default)]
pub struct CannedValues {
    pub customer_name: Option<String>,
    /// The first name an agent set on the customer's profile; `None`: the name's first word.
    pub customer_first_name: Option<String>,
    pub customer_email: Option<String>,
    pub agent_name: String,
}

/// The first word of a name: "Ada" for "Ada Lovelace"; `None` for no name or a blank one.
pub fn first_name(name: Option<&str>) -> Option<String> {
    name?.split_whitespace().next().map(str::to_owned)
}

/// The text with its placeholders filled. A text stored before a placeholder was retired,
/// or otherwise unparsable, keeps no braces: an unknown placeholder becomes nothing.
pub fn render_canned(text: &str, values: &CannedValues) -> String {
    let Ok(parts) = parse(text) else {
        return text.replace("{{", "").replace("}}", "");
    };
    let customer_name = values
        .customer_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let mut out = String::with_capacity(text.len());
    for part in parts {
        match part {
            Part::Text(text) => out.push_str(text),
            Part::Placeholder(name) => out.push_str(&match name {
                "customer.first_name" => values
                    .customer_first_name
                    .clone()
                    .or_else(|| first_name(customer_name))
                    .unwrap_or_else(|| "there".into()),
                "customer.name" => customer_name.unwrap_or("there").to_owned(),
                "customer.email" => values
                    .customer_email
                    .clone()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| "your email address".into()),
                "agent.name" => values.agent_name.clone(),
                "agent.first_name" => first_name(Some(&values.agent_name))
                    .unwrap_or_else(|| values.agent_name.clone()),
                _ => String::new(),
            }),
        }
    }
    out
}

/// What an agent typed to find a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CannedSearch {
    /// Nothing: every response.
    All,
    /// `#ship`: shortcuts starting with `ship`.
    Shortcut(String),
    /// Anything else: shortcuts starting with it (when it could be one), titles and texts
    /// holding it.
    Words(String),
}

impl CannedSearch {
    /// Reads what the agent typed, ignoring case and surrounding spaces.
    pub fn parse(search: Option<&str>) -> Self {
        let search = search.map(str::trim).unwrap_or_default().to_lowercase();
        if let Some(shortcut) = search.strip_prefix('#') {
            CannedSearch::Shortcut(shortcut.trim().to_owned())
        } else if search.is_empty() {
            CannedSearch::All
        } else {
            CannedSearch::Words(search)
        }
    }

    /// The shortcut prefix the store can narrow by, when only shortcuts can match.
    pub fn shortcut_prefix(&self) -> Option<&str> {
        match self {
            CannedSearch::Shortcut(prefix) => Some(prefix),
            _ => None,
        }
    }

    /// How well the response matches: 0 exact shortcut, 1 shortcut prefix, 2 title, 3 text;
    /// `None` when it does not.
    pub fn rank(&self, response: &CannedResponse) -> Option<u8> {
        match self {
            CannedSearch::All => Some(0),
            CannedSearch::Shortcut(prefix) => shortcut_rank(&response.shortcut, prefix),
            CannedSearch::Words(words) => shortcut_rank(&response.shortcut, words)
                .or_else(|| response.title.to_lowercase().contains(words).then_some(2))
                .or_else(|| response.text.to_lowercase().contains(words).then_some(3)),
        }
    }
}

fn shortcut_rank(shortcut: &str, prefix: &str) -> Option<u8> {
    if shortcut == prefix {
        Some(0)
    } else if shortcut.starts_with(prefix) {
        Some(1)
    } else {
        None
    }
}

/// Which of an organization's responses a list holds for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedList {
    /// Those the agent may use: the organization's, their groups', their own.
    Usable,
    /// Those the agent may change: every shared one for admins, and their own.
    Manageable,
}

/// The agent's responses of that list that match, best first: by match, then personal before
/// shared, then the most used, then by shortcut; at most `first`.
pub fn rank_canned(
    responses: Vec<CannedResponse>,
    agent: &Agent,
    list: CannedList,
    search: &CannedSearch,
    first: usize,
) -> Vec<CannedResponse> {
    let mut ranked: Vec<(u8, CannedResponse)> = responses
        .into_iter()
        .filter(|r| match list {
            CannedList::Usable => r.visible_to(agent),
            CannedList::Manageable => r.managed_by(agent),
        })
        .filter_map(|r| search.rank(&r).map(|rank| (rank, r)))
        .collect();
    ranked.sort_by(|(a_rank, a), (b_rank, b)| {
        a_rank
            .cmp(b_rank)
            .then_with(|| personal_first(a.scope, b.scope))
            .then_with(|| b.usage_count.cmp(&a.usage_count))
            .then_with(|| a.shortcut.cmp(&b.shortcut))
            .then_with(|| a.id.cmp(&b.id))
    });
    ranked.into_iter().take(first).map(|(_, r)| r).collect()
}

fn personal_first(a: CannedScope, b: CannedScope) -> Ordering {
    let shared = |scope| scope != CannedScope::Personal;
    shared(a).cmp(&shared(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Role, RoutingStatus};

    fn agent(id: &str, role: Role, groups: &[&str]) -> Agent {
        Agent {
            id: id.into(),
            organization_id: "org".into(),
            email: format!("{id}@example.com"),
            name: "Grace Hopper".into(),
            role,
            routing_status: RoutingStatus::AcceptingChats,
            chat_limit: None,
            group_ids: groups.iter().map(|g| g.to_string()).collect(),
            active: true,
            last_login_at: None,
            created_at: Utc::now(),
        }
    }

    fn response(shortcut: &str, scope: CannedScope, usage: i64) -> CannedResponse {
        CannedResponse {
            id: format!("id-{shortcut}-{}", scope.as_str()),
            organization_id: "org".into(),
            shortcut: shortcut.into(),
            title: format!("About {shortcut}"),
            text: "Hello".into(),
            scope,
            group_id: (scope == CannedScope::Group).then(|| "sales".into()),
            owner_id: (scope == CannedScope::Personal).then(|| "me".into()),
            usage_count: usage,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn shortcut_drops_the_hash_and_lower_cases() {
        assert_eq!(normalize_shortcut(" #Ship_Time-2 ").unwrap(), "ship_time-2");
        assert!(normalize_shortcut("#").is_err());
        assert!(normalize_shortcut("two words").is_err());
        assert!(normalize_shortcut("café").is_err());
        assert!(normalize_shortcut(&"a".repeat(33)).is_err());
        assert!(normalize_shortcut(&"a".repeat(32)).is_ok());
    }

    #[test]
    fn title_and_text_lengths_are_checked() {
        assert!(validate_canned_title("  ").is_err());
        assert!(validate_canned_title(&"t".repeat(101)).is_err());
        assert!(validate_canned_text(&"t".repeat(4001)).is_err());
        assert_eq!(validate_canned_text(" Hi ").unwrap(), "Hi");
    }

    #[test]
    fn unknown_placeholder_is_named_with_the_known_ones() {
        let err = validate_canned_text("Hi {{ customer.nickname }}").unwrap_err();
        assert!(err.0.contains("{{customer.nickname}}"), "{}", err.0);
        assert!(err.0.contains("{{customer.first_name}}"), "{}", err.0);
        assert!(validate_canned_text("Hi {{customer.first_name").is_err());
        assert!(validate_canned_text("Hi {{ customer.first_name }}, {{agent.name}}").is_ok());
    }

    #[test]
    fn placeholders_fall_back_to_words_that_read_well() {
        let text = "Hi {{ customer.first_name }} ({{customer.name}}), we write to \
                    {{customer.email}}. {{agent.first_name}} / {{agent.name}}";
        let full = CannedValues {
            customer_name: Some("Ada  Lovelace".into()),
            customer_email: Some("ada@example.com".into()),
            agent_name: "Grace Hopper".into(),
            ..Default::default()
        };
        assert_eq!(
            render_canned(text, &full),
            "Hi Ada (Ada  Lovelace), we write to ada@example.com. Grace / Grace Hopper"
        );
        let empty = CannedValues {
            customer_name: Some("  ".into()),
            customer_email: None,
            agent_name: "Grace".into(),
            ..Default::default()
        };
        assert_eq!(
            render_canned(text, &empty),
            "Hi there (there), we write to your email address. Grace / Grace"
        );
    }

    #[test]
    fn rendering_never_leaves_braces() {
        let values = CannedValues::default();
        assert_eq!(render_canned("a {{retired}} b", &values), "a  b");
        assert_eq!(render_canned("a {{ open", &values), "a  open");
    }

    #[test]
    fn first_name_is_the_first_word() {
        assert_eq!(first_name(Some(" Ada Lovelace")).as_deref(), Some("Ada"));
        assert_eq!(first_name(Some("   ")), None);
        assert_eq!(first_name(None), None);
    }

    #[test]
    fn search_reads_hash_as_shortcut_prefix() {
        assert_eq!(
            CannedSearch::parse(Some(" #Ship")),
            CannedSearch::Shortcut("ship".into())
        );
        assert_eq!(CannedSearch::parse(Some("  ")), CannedSearch::All);
        assert_eq!(CannedSearch::parse(None), CannedSearch::All);
        assert_eq!(
            CannedSearch::parse(Some("Refund")),
            CannedSearch::Words("refund".into())
        );
    }

    #[test]
    fn each_agent_sees_the_organizations_their_groups_and_their_own() {
        let me = agent("me", Role::Agent, &["sales"]);
        let other = agent("other", Role::Admin, &["support"]);
        let org = response("a", CannedScope::Organization, 0);
        let group = response("b", CannedScope::Group, 0);
        let mine = response("c", CannedScope::Personal, 0);
        assert!(org.visible_to(&me) && org.visible_to(&other));
        assert!(group.visible_to(&me) && !group.visible_to(&other));
        assert!(mine.visible_to(&me) && !mine.visible_to(&other));
        assert!(!org.managed_by(&me) && org.managed_by(&other));
        assert!(mine.managed_by(&me) && !mine.managed_by(&other));
    }

    #[test]
    fn ranking_is_match_then_personal_then_usage_then_shortcut() {
        let me = agent("me", Role::Agent, &["sales"]);
        let mut by_text = response("zzz", CannedScope::Organization, 99);
        by_text.text = "Your shipping is free".into();
        let mut by_title = response("yyy", CannedScope::Organization, 0);
        by_title.title = "Shipping times".into();
        let responses = vec![
            by_text,
            by_title,
            response("shipping", CannedScope::Organization, 50),
            response("shipping", CannedScope::Personal, 0),
            response("ship", CannedScope::Organization, 0),
            response("shipx", CannedScope::Organization, 0),
            response("other", CannedScope::Organization, 0),
        ];
        let order = |search: &str, first| {
            rank_canned(
                responses.clone(),
                &me,
                CannedList::Usable,
                &CannedSearch::parse(Some(search)),
                first,
            )
            .into_iter()
            .map(|r| format!("{}:{}", r.shortcut, r.scope.as_str()))
            .collect::<Vec<_>>()
        };
        assert_eq!(
            order("ship", 50),
            [
                "ship:ORGANIZATION",
                "shipping:PERSONAL",
                "shipping:ORGANIZATION",
                "shipx:ORGANIZATION",
                "yyy:ORGANIZATION",
                "zzz:ORGANIZATION",
            ]
        );
        assert_eq!(order("#shipp", 50).len(), 2);
        assert_eq!(
            order("#ship", 2),
            ["ship:ORGANIZATION", "shipping:PERSONAL"]
        );
    }
}
