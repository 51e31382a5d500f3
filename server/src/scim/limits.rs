//! Size limits on SCIM documents: every string (values and attribute names) at most
//! `max_string_chars` characters and free of NUL, every multi-valued attribute at most
//! `max_values` values, every object at most `max_attributes` attributes. Group membership is
//! exempt from the count (a group may have 100k members; they are written in batches).
//!
//! Pure: [`check`] walks a JSON value and says what is too big. It runs where every client
//! document is applied (the PATCH applier, which also canonicalises POST and PUT bodies), on
//! the operation values before any work and on the result.

use serde_json::Value;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScimLimits {
    pub max_string_chars: usize,
    pub max_values: usize,
    /// Attributes in one object (a resource, an extension, a complex value).
    pub max_attributes: usize,
}

pub const DEFAULT_MAX_STRING_CHARS: usize = 2048;
pub const DEFAULT_MAX_VALUES: usize = 256;
pub const DEFAULT_MAX_ATTRIBUTES: usize = 256;

impl Default for ScimLimits {
    fn default() -> Self {
        ScimLimits {
            max_string_chars: DEFAULT_MAX_STRING_CHARS,
            max_values: DEFAULT_MAX_VALUES,
            max_attributes: DEFAULT_MAX_ATTRIBUTES,
        }
    }
}

static CONFIGURED: OnceLock<ScimLimits> = OnceLock::new();

/// Sets the process's limits (once, at start); later calls are ignored.
pub fn configure(limits: ScimLimits) {
    let _ = CONFIGURED.set(limits);
}

/// The process's limits: as configured, or the defaults.
pub fn current() -> ScimLimits {
    CONFIGURED.get().copied().unwrap_or_default()
}

/// Attribute names whose arrays are memberships, not bounded by `max_values`.
fn is_membership(name: &str) -> bool {
    name.eq_ignore_ascii_case("members") || name.eq_ignore_ascii_case("groups")
}

const CORE_URN_PREFIX: &str = "urn:ietf:params:scim:schemas:core:2.0:";

/// A core schema's URN (`urn:…:core:2.0:Group`): its attributes are top-level attributes.
fn is_core_urn(name: &str) -> bool {
    name.get(..CORE_URN_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(CORE_URN_PREFIX))
        && !name[CORE_URN_PREFIX.len()..].contains(':')
}

/// Whether a PATCH path names a membership list: `members`, `members[…]`, or the same
/// qualified by the core schema (`urn:…:core:2.0:Group:members`).
pub fn is_membership_path(path: &str) -> bool {
    let bare = match path.rfind(':') {
        Some(i) if is_core_urn(&path[..i]) => &path[i + 1..],
        _ => path,
    };
    let name = bare.split(['[', '.']).next().unwrap_or("");
    is_membership(name)
}

/// Checks `v`. `path` names it in messages (`""` for a whole document); when `v` itself is a
/// membership list (a PATCH whose path is `members`), pass `membership = true`.
pub fn check(v: &Value, path: &str, membership: bool, l: &ScimLimits) -> Result<(), String> {
    walk(v, path, membership, path.is_empty(), l)
}

/// `top`: `v` holds top-level attributes (the document, or its core schema's URN object).
fn walk(v: &Value, path: &str, membership: bool, top: bool, l: &ScimLimits) -> Result<(), String> {
    match v {
        Value::String(s) => check_str(s, path, l),
        Value::Array(items) => {
            if !membership && items.len() > l.max_values {
                return Err(format!(
                    "'{}' has {} values; at most {} are accepted.",
                    shown(path),
                    items.len(),
                    l.max_values
                ));
            }
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), false, false, l)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            if map.len() > l.max_attributes {
                return Err(format!(
                    "'{}' has {} attributes; at most {} are accepted.",
                    shown(path),
                    map.len(),
                    l.max_attributes
                ));
            }
            for (k, child) in map {
                let child_path = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                check_str(k, &child_path, l)?;
                let top_level_membership = top && is_membership(k);
                let holds_top_level = path.is_empty() && is_core_urn(k);
                walk(child, &child_path, top_level_membership, holds_top_level, l)?;
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the document"
    } else {
        path
    }
}

fn check_str(s: &str, path: &str, l: &ScimLimits) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!(
            "'{}' contains a NUL character, which is not accepted.",
            shown(path)
        ));
    }
    // Bytes bound characters from above: count characters only when it might matter.
    if s.len() > l.max_string_chars {
        let chars = s.chars().count();
        if chars > l.max_string_chars {
            return Err(format!(
                "'{}' is {chars} characters long; at most {} are accepted.",
                shown(path),
                l.max_string_chars
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SMALL: ScimLimits = ScimLimits {
        max_string_chars: 12,
        max_values: 3,
        max_attributes: 5,
    };

    #[test]
    fn documents_within_the_limits_pass() {
        let doc = json!({"userName": "ada@x.y", "active": true, "n": 1,
            "emails": [{"value": "a"}, {"value": "b"}], "name": {"givenName": "Ada"}});
        assert_eq!(check(&doc, "", false, &SMALL), Ok(()));
        assert_eq!(check(&doc, "", false, &ScimLimits::default()), Ok(()));
    }

    #[test]
    fn long_strings_are_refused_by_characters_not_bytes() {
        let e = check(&json!({"userName": "1234567890123"}), "", false, &SMALL).unwrap_err();
        assert_eq!(
            e,
            "'userName' is 13 characters long; at most 12 are accepted."
        );
        // Twelve characters, twenty-four bytes.
        assert_eq!(
            check(&json!({"userName": "éééééééééééé"}), "", false, &SMALL),
            Ok(())
        );
        let e = check(
            &json!({"name": {"givenName": "x".repeat(20)}}),
            "",
            false,
            &SMALL,
        );
        assert!(e.unwrap_err().starts_with("'name.givenName' is 20"));
        let e = check(
            &json!({"emails": [{"value": "x".repeat(13)}]}),
            "",
            false,
            &SMALL,
        );
        assert!(e.unwrap_err().starts_with("'emails[0].value'"));
        // Attribute names count too.
        let e = check(&json!({"x".repeat(13): 1}), "", false, &SMALL).unwrap_err();
        assert!(e.contains("characters long"), "{e}");
    }

    #[test]
    fn nul_characters_are_refused_anywhere() {
        for doc in [
            json!({"userName": "a\u{0}b"}),
            json!({"a\u{0}": 1}),
            json!({"emails": [{"value": "\u{0}"}]}),
        ] {
            let e = check(&doc, "", false, &SMALL).unwrap_err();
            assert!(e.contains("NUL"), "{e}");
        }
        assert!(check(&json!("x\u{0}"), "displayName", false, &SMALL).is_err());
    }

    #[test]
    fn too_many_values_or_attributes_are_refused() {
        let e = check(&json!({"phoneNumbers": [1, 2, 3, 4]}), "", false, &SMALL).unwrap_err();
        assert_eq!(e, "'phoneNumbers' has 4 values; at most 3 are accepted.");
        let six = json!({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6});
        let e = check(&six, "", false, &SMALL).unwrap_err();
        assert_eq!(
            e,
            "'the document' has 6 attributes; at most 5 are accepted."
        );
        let e = check(&json!([1, 2, 3, 4]), "emails", false, &SMALL).unwrap_err();
        assert!(e.starts_with("'emails' has 4 values"));
    }

    #[test]
    fn memberships_are_not_counted_but_their_strings_are_checked() {
        let many: Vec<_> = (0..10).map(|i| json!({"value": i.to_string()})).collect();
        assert_eq!(check(&json!({"members": many}), "", false, &SMALL), Ok(()));
        assert_eq!(check(&json!(many), "members", true, &SMALL), Ok(()));
        // Only at the top level: a nested `members` is an ordinary attribute.
        assert!(check(&json!({"x": {"members": [1, 2, 3, 4]}}), "", false, &SMALL).is_err());
        let bad = json!({"members": [{"value": "\u{0}"}]});
        assert!(check(&bad, "", false, &SMALL).is_err());
        // The core schema's URN object holds top-level attributes too (a pathless PATCH).
        const LONG_NAMES: ScimLimits = ScimLimits {
            max_string_chars: 100,
            ..SMALL
        };
        let urn = "urn:ietf:params:scim:schemas:core:2.0:Group";
        assert_eq!(
            check(&json!({urn: {"members": many}}), "", false, &LONG_NAMES),
            Ok(())
        );
        let ext = "urn:ietf:params:scim:schemas:extension:x:2.0:Group";
        let e = check(
            &json!({ext: {"members": [1, 2, 3, 4]}}),
            "",
            false,
            &LONG_NAMES,
        );
        assert!(e.unwrap_err().contains("has 4 values"));
    }

    #[test]
    fn membership_paths_are_recognised_qualified_or_not() {
        for p in [
            "members",
            "Members",
            "members[value eq \"x\"]",
            "urn:ietf:params:scim:schemas:core:2.0:Group:members",
            "urn:ietf:params:scim:schemas:core:2.0:Group:members[value eq \"x\"]",
        ] {
            assert!(is_membership_path(p), "{p}");
        }
        for p in [
            "",
            "displayName",
            "membersx",
            "urn:ietf:params:scim:schemas:extension:x:2.0:Group:members",
            "emails[value eq \"members\"]",
        ] {
            assert!(!is_membership_path(p), "{p}");
        }
    }

    #[test]
    fn the_defaults_apply_until_configured() {
        assert_eq!(current().max_string_chars, DEFAULT_MAX_STRING_CHARS);
        let long = json!({"userName": "x".repeat(100_000)});
        assert!(check(&long, "", false, &ScimLimits::default()).is_err());
    }
}
