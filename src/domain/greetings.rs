//! Greetings and greeting rules: the message a visitor on the site is sent before any chat,
//! and the conditions under which a rule sends one by itself. The rule's checks, its
//! validation and the placeholders are pure, and tested here.

use chrono::{DateTime, Utc};
use regex::Regex;

use super::ValidationError;
use super::validate_name;

/// Longest greeting, as written and as sent.
pub const MAX_GREETING_CHARS: usize = 1000;
/// Longest URL condition (contains or pattern) and referrer condition.
pub const MAX_CONDITION_CHARS: usize = 2048;
/// Longest `urlPattern`, in characters.
pub const MAX_URL_PATTERN_CHARS: usize = 500;
/// The most memory a compiled `urlPattern` may take: a short pattern such as `a{1000}{1000}`
/// can otherwise compile into a program of gigabytes.
const URL_PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// The longest `oncePerHours`: a year.
pub const MAX_ONCE_PER_HOURS: i32 = 8760;
/// The longest time-on-page condition: a day.
pub const MAX_SECONDS_ON_PAGE: i32 = 86_400;
/// The highest visits condition.
pub const MAX_VISITS: i32 = 1_000_000;
/// How often a rule greets one visitor when the admin does not say.
pub const DEFAULT_ONCE_PER_HOURS: i32 = 24;

/// The placeholders a greeting's text may hold.
pub const PLACEHOLDERS: &[&str] = &["visitor.name", "page.title", "agent.name"];

/// A greeting: sent to one customer by an agent, or by a rule in an agent's name.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Greeting {
    pub id: String,
    pub organization_id: String,
    pub customer_id: String,
    /// Who it is sent as: the chat it starts goes to them when they can take it.
    pub agent_id: Option<String>,
    /// Their name when it was sent.
    pub agent_name: Option<String>,
    /// The rule that sent it, if one did.
    pub rule_id: Option<String>,
    /// The group a chat started from it is routed in.
    pub group_id: Option<String>,
    /// As the visitor reads it, placeholders filled in.
    pub text: String,
    pub created_at: DateTime<Utc>,
    /// When it first reached an open page of the visitor.
    pub shown_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    /// The chat answering it started.
    pub chat_id: Option<String>,
    pub dismissed_at: Option<DateTime<Utc>>,
}

impl Greeting {
    /// Neither answered nor dismissed: the widget shows it.
    pub fn is_pending(&self) -> bool {
        self.answered_at.is_none() && self.dismissed_at.is_none()
    }
}

/// What a rule asks of a visitor; `None` is no condition. All that are set must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleConditions {
    /// The page URL contains this (ignoring ASCII case).
    pub url_contains: Option<String>,
    /// The page URL matches this regular expression.
    pub url_pattern: Option<String>,
    pub min_seconds_on_page: Option<i32>,
    pub min_visits: Option<i32>,
    /// The referrer contains this (ignoring ASCII case).
    pub referrer_contains: Option<String>,
}

/// An automatic greeting an admin defined.
#[derive(Debug, Clone, PartialEq)]
pub struct GreetingRule {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub enabled: bool,
    /// The text with its placeholders.
    pub text: String,
    /// Whose agents send it, and where an answer is routed; `None`: any agent.
    pub group_id: Option<String>,
    pub conditions: RuleConditions,
    /// It greets one visitor at most once in this many hours.
    pub once_per_hours: i32,
    pub created_at: DateTime<Utc>,
}

/// How often a rule's greetings were shown, answered and dismissed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreetingCounts {
    pub shown: i64,
    pub answered: i64,
    pub dismissed: i64,
}

/// A greeting's text as an agent or admin wrote it: trimmed, present, not too long, with
/// known placeholders only.
pub fn validate_greeting_text(field: &str, text: &str) -> Result<String, ValidationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ValidationError(format!("{field} must not be empty")));
    }
    if text.chars().count() > MAX_GREETING_CHARS {
        return Err(ValidationError(format!(
            "{field} must be at most {MAX_GREETING_CHARS} characters"
        )));
    }
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let key = after[..end].trim();
        if !PLACEHOLDERS.contains(&key) {
            return Err(ValidationError(format!(
                "{field} has an unknown placeholder {{{{{key}}}}}; use {}",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{{{p}}}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        rest = &after[end + 2..];
    }
    Ok(text.to_owned())
}

/// Checks and tidies a rule as an admin wrote it: names and texts trimmed, empty conditions
/// dropped, limits and the pattern checked. Errors name the field.
pub fn validate_rule(mut rule: GreetingRule) -> Result<GreetingRule, ValidationError> {
    rule.name = validate_name("name", &rule.name, 100)?;
    rule.text = validate_greeting_text("text", &rule.text)?;
    let c = &mut rule.conditions;
    c.url_contains = condition_text("urlContains", c.url_contains.take())?;
    c.referrer_contains = condition_text("referrerContains", c.referrer_contains.take())?;
    c.url_pattern = condition_text("urlPattern", c.url_pattern.take())?;
    if let Some(pattern) = &c.url_pattern {
        if pattern.chars().count() > MAX_URL_PATTERN_CHARS {
            return Err(ValidationError(format!(
                "urlPattern must be at most {MAX_URL_PATTERN_CHARS} characters"
            )));
        }
        compile_pattern(pattern)?;
    }
    within(
        "minSecondsOnPage",
        c.min_seconds_on_page,
        0,
        MAX_SECONDS_ON_PAGE,
    )?;
    within("minVisits", c.min_visits, 1, MAX_VISITS)?;
    within(
        "oncePerHours",
        Some(rule.once_per_hours),
        1,
        MAX_ONCE_PER_HOURS,
    )?;
    Ok(rule)
}

fn condition_text(field: &str, value: Option<String>) -> Result<Option<String>, ValidationError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.chars().count() > MAX_CONDITION_CHARS => Err(ValidationError(format!(
            "{field} must be at most {MAX_CONDITION_CHARS} characters"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn within(field: &str, value: Option<i32>, min: i32, max: i32) -> Result<(), ValidationError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(ValidationError(format!(
            "{field} must be between {min} and {max}"
        ))),
        _ => Ok(()),
    }
}

/// Compiles a `urlPattern` within the size limit.
fn compile_pattern(pattern: &str) -> Result<Regex, ValidationError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(URL_PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|err| {
            let reason = match err {
                regex::Error::CompiledTooBig(_) => "it compiles too big".to_owned(),
                other => other.to_string(),
            };
            ValidationError(format!(
                "urlPattern is not a valid regular expression: {reason}"
            ))
        })
}

/// What a rule is checked against: the visitor as they are now.
#[derive(Debug, Clone, Copy)]
pub struct VisitorFacts<'a> {
    pub url: Option<&'a str>,
    pub referrer: Option<&'a str>,
    pub visits: i32,
    pub seconds_on_page: i64,
}

/// What checking a rule against a visitor found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleCheck {
    /// Every condition holds.
    Matches,
    /// Every condition but the time on the page holds: check again once the visitor has been
    /// on the page this many seconds.
    AfterSecondsOnPage(i64),
    /// A condition the passing of time does not change fails.
    No,
}

/// A rule ready to be checked many times: its pattern compiled once.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub rule: GreetingRule,
    pattern: Option<Regex>,
}

impl CompiledRule {
    /// Compiles the rule's pattern.
    pub fn new(rule: GreetingRule) -> Result<CompiledRule, ValidationError> {
        let pattern = rule
            .conditions
            .url_pattern
            .as_deref()
            .map(compile_pattern)
            .transpose()?;
        Ok(CompiledRule { rule, pattern })
    }

    /// Whether the rule's conditions hold for `visitor`.
    pub fn check(&self, visitor: &VisitorFacts<'_>) -> RuleCheck {
        let c = &self.rule.conditions;
        let url = visitor.url.unwrap_or("");
        if let Some(part) = &c.url_contains
            && !contains_ignoring_case(url, part)
        {
            return RuleCheck::No;
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(url)
        {
            return RuleCheck::No;
        }
        if let Some(part) = &c.referrer_contains
            && !contains_ignoring_case(visitor.referrer.unwrap_or(""), part)
        {
            return RuleCheck::No;
        }
        if let Some(min) = c.min_visits
            && visitor.visits < min
        {
            return RuleCheck::No;
        }
        match c.min_seconds_on_page {
            Some(min) if visitor.seconds_on_page < i64::from(min) => {
                RuleCheck::AfterSecondsOnPage(i64::from(min))
            }
            _ => RuleCheck::Matches,
        }
    }
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

/// What a greeting's placeholders are filled with; `None` or blank renders as nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlaceholderValues<'a> {
    pub visitor_name: Option<&'a str>,
    pub page_title: Option<&'a str>,
    pub agent_name: Option<&'a str>,
}

/// Fills in a greeting's placeholders. A placeholder without a value goes with the space
/// before it when punctuation, a space or the end follows ("Hi {{visitor.name}}, welcome"
/// reads "Hi, welcome"), and a line that would start with a comma loses it. Unknown
/// placeholders stay as written.
pub fn render_greeting(template: &str, values: &PlaceholderValues<'_>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let value = match after[..end].trim() {
            "visitor.name" => values.visitor_name,
            "page.title" => values.page_title,
            "agent.name" => values.agent_name,
            _ => {
                out.push_str(&rest[start..start + 2 + end + 2]);
                rest = &after[end + 2..];
                continue;
            }
        };
        rest = &after[end + 2..];
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            Some(value) => out.push_str(value),
            None => {
                let kept = out.trim_end_matches([' ', '\t']).len();
                let next = rest.chars().next();
                if next.is_none_or(|c| c.is_whitespace() || ",.!?;:".contains(c)) {
                    out.truncate(kept);
                }
                if out.is_empty() || out.ends_with('\n') {
                    rest = rest.trim_start_matches([' ', '\t', ',', ';', ':']);
                }
            }
        }
    }
    out.push_str(rest);
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(conditions: RuleConditions) -> GreetingRule {
        GreetingRule {
            id: "r".into(),
            organization_id: "o".into(),
            name: "Pricing".into(),
            enabled: true,
            text: "Hi {{visitor.name}}!".into(),
            group_id: None,
            conditions,
            once_per_hours: 24,
            created_at: Utc::now(),
        }
    }

    fn facts(url: &str, seconds_on_page: i64) -> VisitorFacts<'_> {
        VisitorFacts {
            url: Some(url),
            referrer: Some("https://search.test/?q=shoes"),
            visits: 2,
            seconds_on_page,
        }
    }

    #[test]
    fn a_rule_matches_when_every_condition_holds() {
        let compiled = CompiledRule::new(rule(RuleConditions {
            url_contains: Some("/PRICING".into()),
            url_pattern: Some(r"^https://shop\.test/".into()),
            min_visits: Some(2),
            referrer_contains: Some("search.test".into()),
            ..RuleConditions::default()
        }))
        .unwrap();
        assert_eq!(
            compiled.check(&facts("https://shop.test/pricing", 0)),
            RuleCheck::Matches
        );
        assert_eq!(
            compiled.check(&facts("https://other.test/pricing", 0)),
            RuleCheck::No
        );
        assert_eq!(
            compiled.check(&facts("https://shop.test/about", 0)),
            RuleCheck::No
        );
        let first_visit = VisitorFacts {
            visits: 1,
            ..facts("https://shop.test/pricing", 0)
        };
        assert_eq!(compiled.check(&first_visit), RuleCheck::No);
    }

    #[test]
    fn time_on_page_says_when_to_look_again() {
        let compiled = CompiledRule::new(rule(RuleConditions {
            min_seconds_on_page: Some(30),
            ..RuleConditions::default()
        }))
        .unwrap();
        assert_eq!(
            compiled.check(&facts("https://shop.test/", 10)),
            RuleCheck::AfterSecondsOnPage(30)
        );
        assert_eq!(
            compiled.check(&facts("https://shop.test/", 30)),
            RuleCheck::Matches
        );
    }

    #[test]
    fn invalid_or_huge_patterns_are_refused_naming_the_field() {
        let err = validate_rule(rule(RuleConditions {
            url_pattern: Some("(unclosed".into()),
            ..RuleConditions::default()
        }))
        .unwrap_err();
        assert!(err.0.starts_with("urlPattern"), "{}", err.0);
        let err = validate_rule(rule(RuleConditions {
            url_pattern: Some(r"\w{1000}{1000}".into()),
            ..RuleConditions::default()
        }))
        .unwrap_err();
        assert!(err.0.contains("too big"), "{}", err.0);
    }

    #[test]
    fn limits_and_placeholders_are_checked() {
        let mut bad = rule(RuleConditions::default());
        bad.once_per_hours = 0;
        assert!(validate_rule(bad).unwrap_err().0.contains("oncePerHours"));
        let mut bad = rule(RuleConditions::default());
        bad.text = "Hi {{visitor.email}}".into();
        assert!(validate_rule(bad).unwrap_err().0.contains("placeholder"));
        let mut bad = rule(RuleConditions::default());
        bad.text = "x".repeat(MAX_GREETING_CHARS + 1);
        assert!(validate_rule(bad).unwrap_err().0.contains("at most"));
        let tidy = validate_rule(rule(RuleConditions {
            url_contains: Some("  ".into()),
            ..RuleConditions::default()
        }))
        .unwrap();
        assert_eq!(tidy.conditions.url_contains, None);
    }

    #[test]
    fn placeholders_are_filled_and_missing_ones_leave_tidy_text() {
        let all = PlaceholderValues {
            visitor_name: Some("Sam"),
            page_title: Some("Pricing"),
            agent_name: Some("Ada"),
        };
        assert_eq!(
            render_greeting(
                "Hi {{visitor.name}}, I'm {{ agent.name }}. Questions about {{page.title}}?",
                &all
            ),
            "Hi Sam, I'm Ada. Questions about Pricing?"
        );
        let none = PlaceholderValues {
            agent_name: Some("Ada"),
            ..PlaceholderValues::default()
        };
        assert_eq!(
            render_greeting("Hi {{visitor.name}}, need help?", &none),
            "Hi, need help?"
        );
        assert_eq!(render_greeting("Hi {{visitor.name}}!", &none), "Hi!");
        assert_eq!(
            render_greeting("Hello {{visitor.name}} and welcome", &none),
            "Hello and welcome"
        );
        assert_eq!(
            render_greeting("{{visitor.name}}, welcome back!", &none),
            "welcome back!"
        );
        assert_eq!(
            render_greeting("{{unknown}} stays", &none),
            "{{unknown}} stays"
        );
    }
}
