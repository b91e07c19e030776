//! Checks on what people type: emails, names, passwords. Each returns the value to store or a
//! message a person understands.

/// Longest email address SMTP allows (RFC 5321 §4.5.3.1.3).
const MAX_EMAIL_LEN: usize = 254;
/// Longest local part SMTP allows.
const MAX_EMAIL_LOCAL_LEN: usize = 64;
/// Shortest password we accept.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password we accept: hashing is deliberately slow, so unbounded input is a DoS.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a value was refused; the message names the field and says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

/// Trims and lower-cases an email address and checks its shape. Deliverability is not our
/// business; a plausible `local@domain.tld` is.
pub fn normalize_email(raw: &str) -> Result<String, ValidationError> {
    let email = raw.trim().to_lowercase();
    let invalid = || ValidationError(format!("{:?} is not a valid email address", clip(raw)));
    if email.is_empty() {
        return Err(ValidationError("email must not be empty".into()));
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err(ValidationError(format!(
            "email must be at most {MAX_EMAIL_LEN} characters"
        )));
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let well_formed = !local.is_empty()
        && local.len() <= MAX_EMAIL_LOCAL_LEN
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(email)
    } else {
        Err(invalid())
    }
}

/// Trims a display name (of an agent, an organization, a group) and checks it is present and
/// at most `max_chars` long.
pub fn validate_name(field: &str, raw: &str, max_chars: usize) -> Result<String, ValidationError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(ValidationError(format!("{field} must not be empty")));
    }
    if name.chars().count() > max_chars {
        return Err(ValidationError(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ValidationError(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(name.to_owned())
}

/// Checks a new password's length. Passwords are not trimmed: spaces are characters too.
pub fn validate_password(password: &str) -> Result<(), ValidationError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ValidationError(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ValidationError(format!(
            "password must be at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Keeps error messages short when someone sends a megabyte where an email belongs.
fn clip(s: &str) -> String {
    const MAX: usize = 64;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            normalize_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@example..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(
            normalize_email(&long)
                .unwrap_err()
                .0
                .contains("at most 254")
        );
    }

    #[test]
    fn names_must_be_present_and_short() {
        assert_eq!(validate_name("name", "  Ada ", 10).unwrap(), "Ada");
        assert!(validate_name("name", "   ", 10).is_err());
        assert!(validate_name("name", &"x".repeat(11), 10).is_err());
        assert!(validate_name("name", "a\u{0}b", 10).is_err());
    }

    #[test]
    fn passwords_have_bounds_in_characters() {
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
        assert!(validate_password(&"é".repeat(MAX_PASSWORD_CHARS)).is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn error_messages_do_not_echo_huge_input() {
        let err = normalize_email(&"x".repeat(200)).unwrap_err();
        assert!(err.0.len() < 100, "{}", err.0);
    }
}
