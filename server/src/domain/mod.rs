//! Plain domain values and their validation: no HTTP, SQL or SCIM types here.

pub mod query;

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub provisioning_enabled: bool,
    /// How long a rotated SCIM token stays valid beside its successor.
    pub token_overlap_secs: i64,
    pub created_at: i64,
}

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A display name (organisation or person): trimmed, 1..=100 characters, no control characters.
pub fn clean_name(what: &str, raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(Invalid(format!("{what} is required.")));
    }
    if name.chars().count() > 100 {
        return Err(Invalid(format!("{what} must be at most 100 characters.")));
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid(format!(
            "{what} must not contain control characters."
        )));
    }
    Ok(name.to_string())
}

/// A plausible email address: one `@`, something on both sides, a dot in the domain, no spaces.
pub fn clean_email(raw: &str) -> Result<String, Invalid> {
    let email = raw.trim();
    let bad = || Invalid("Enter a valid email address, like name@example.com.".into());
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(email.to_string())
}

pub fn check_new_password(password: &str, confirm: &str) -> Result<(), Invalid> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(Invalid(format!(
            "The password must be at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(Invalid(format!(
            "The password must be at most {MAX_PASSWORD_CHARS} characters."
        )));
    }
    if password != confirm {
        return Err(Invalid("The two passwords do not match.".into()));
    }
    Ok(())
}

/// A URL-safe identifier from a display name: lowercase ASCII letters, digits and single
/// hyphens, at most 40 characters; `org` when nothing usable is left.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() { "org".into() } else { slug }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Contoso Ltd."), "contoso-ltd");
        assert_eq!(slugify("  Ärger & Co  "), "rger-co");
        assert_eq!(slugify("!!!"), "org");
        assert_eq!(slugify(&"a".repeat(80)).len(), 40);
        assert_eq!(slugify("a -- b"), "a-b");
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(clean_email(" a@b.co ").unwrap(), "a@b.co");
        for bad in [
            "", "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.co", "a@co.",
        ] {
            assert!(clean_email(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn passwords_need_length_and_confirmation() {
        assert!(check_new_password("short", "short").is_err());
        assert!(check_new_password("long enough pw", "long enough px").is_err());
        assert!(check_new_password("long enough pw", "long enough pw").is_ok());
        let huge = "x".repeat(300);
        assert!(check_new_password(&huge, &huge).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(clean_name("Name", "  Acme ").unwrap(), "Acme");
        assert!(clean_name("Name", "   ").is_err());
        assert!(clean_name("Name", &"x".repeat(101)).is_err());
        assert!(clean_name("Name", "a\u{7}b").is_err());
    }
}
