//! Reading the common bodies without building them. Parsing a body into a `serde_json::Value`
//! allocates every key and string it holds; for the two kinds of entry that are most of
//! Entra's traffic this costs more than writing the entry:
//! - a user created or replaced: its request and answer are stored as sent when nothing in them
//!   needs removing or summarising ([`as_sent`]); only their top-level scalars are built, for
//!   describing the entry;
//! - a list answer (lookups): only the attributes a stored list keeps are built
//!   ([`list_summary`]).
//!
//! Either gives `None` for anything else (not JSON, a secret somewhere, a long list, another
//! shape), and the caller takes the general path (`describe::stored_from`).

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer as _, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

use super::describe::{
    LIST_SUMMARY_STORED, MAX_LIST_ITEMS, MAX_STORED_BODY, drop_list_schemas, is_list_schemas,
    is_listed_key,
};

/// A body kept exactly as sent.
#[derive(Debug, PartialEq)]
pub struct AsSent {
    /// Its top-level scalar members (strings, numbers, booleans, nulls).
    pub top: Value,
    pub text: String,
}

/// The body as sent, if it can be stored so: a JSON object within the stored size, with no
/// member anywhere whose name says it holds a secret, no object with a `path` member (a PATCH
/// operation: which value is secret depends on it), and no list longer than
/// [`MAX_LIST_ITEMS`]. What the general path would change in such a body is only its layout.
pub fn as_sent(bytes: &[u8]) -> Option<AsSent> {
    if bytes.len() > MAX_STORED_BODY {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let top = de.deserialize_map(TopScalars).ok()?;
    de.end().ok()?;
    Some(AsSent {
        top: Value::Object(top),
        text: text.to_string(),
    })
}

/// A list answer as stored (see `describe::summarise_list`): every top-level member, and of
/// each resource only [`LISTED_KEYS`](super::describe::LISTED_KEYS), with the marker when something was left out.
pub fn list_summary(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = de.deserialize_map(ListTop).ok()?;
    de.end().ok()?;
    Some(v)
}

/// What [`list_summary`] gives for this list answer, as compact JSON, written from the answer
/// before it was sent (the list handlers hand it to the log: see [`super::Listed`]), so a
/// lookup's entry costs no parsing of its answer and no copy of its members. (The handlers have
/// the shape already: [`list_summary_text_of`].)
#[cfg(test)]
pub fn list_summary_text(body: &Value) -> Vec<u8> {
    list_summary_text_of(body, summary_shape(body))
}

/// [`list_summary_text`] for a body whose [`summary_shape`] the caller already has.
pub fn list_summary_text_of(body: &Value, shape: SummaryShape) -> Vec<u8> {
    serde_json::to_vec(&SummaryOf {
        body,
        leaves_out: !shape.whole,
    })
    .unwrap_or_default()
}

/// What a list answer's summary is, read in one pass over its resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SummaryShape {
    /// How many items the summary's `Resources` list holds: one per resource, and the marker
    /// when something was left out.
    pub items: usize,
    /// True when the summary is the answer itself: no resource holds an attribute the summary
    /// leaves out. Its text is then the answer's (both write the same members in the same
    /// order, compactly).
    pub whole: bool,
}

pub fn summary_shape(body: &Value) -> SummaryShape {
    let Value::Object(top) = body else {
        return SummaryShape {
            items: 0,
            whole: false,
        };
    };
    let mut shape = SummaryShape {
        items: 0,
        whole: true,
    };
    for (k, v) in top {
        if let Value::Array(r) = v
            && k.eq_ignore_ascii_case("Resources")
        {
            let trimmed = trims(r);
            shape.items += r.len() + usize::from(trimmed);
            shape.whole &= !trimmed;
        }
    }
    shape
}

/// Whether a summary leaves out attributes of these resources.
fn trims(resources: &[Value]) -> bool {
    resources.iter().any(|r| match r {
        Value::Object(o) => o.keys().any(|k| !is_listed_key(k)),
        _ => false,
    })
}

/// Serialises a list answer as its summary: every top-level member, and of each resource only
/// the listed keys, with the marker when something was left out.
struct SummaryOf<'a> {
    body: &'a Value,
    /// Some resource loses an attribute (its [`SummaryShape`] is not whole): the usual
    /// `schemas` is left out too.
    leaves_out: bool,
}

impl Serialize for SummaryOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(top) = self.body else {
            return self.body.serialize(s);
        };
        let mut m = s.serialize_map(None)?;
        for (k, v) in top {
            match v {
                Value::Array(resources) if k.eq_ignore_ascii_case("Resources") => {
                    m.serialize_entry(k, &ResourcesOf(resources))?
                }
                other if self.leaves_out && k == "schemas" && is_list_schemas(other) => {}
                other => m.serialize_entry(k, other)?,
            }
        }
        m.end()
    }
}

struct ResourcesOf<'a>(&'a [Value]);

impl Serialize for ResourcesOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let trimmed = trims(self.0);
        let mut seq = s.serialize_seq(Some(self.0.len() + usize::from(trimmed)))?;
        for r in self.0 {
            match r {
                Value::Object(o) => seq.serialize_element(&ListedOf(o))?,
                other => seq.serialize_element(other)?,
            }
        }
        if trimmed {
            seq.serialize_element(LIST_SUMMARY_STORED)?;
        }
        seq.end()
    }
}

struct ListedOf<'a>(&'a Map<String, Value>);

impl Serialize for ListedOf<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if is_listed_key(k) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// Whether `hay` contains `needle` (ASCII, any case), without allocating.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// True for member names whose values are secrets (passwords, tokens, client secrets).
pub fn is_secret_key(k: &str) -> bool {
    contains_ci(k, "password")
        || contains_ci(k, "secret")
        || contains_ci(k, "token")
        || k.eq_ignore_ascii_case("authorization")
        || contains_ci(k, "credential")
}

fn refuse<E: de::Error>() -> E {
    E::custom("not kept as sent")
}

/// A member name, borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The top-level object: keeps its scalar members, checks the rest with [`Check`].
struct TopScalars;

impl<'de> Visitor<'de> for TopScalars {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut top = Map::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            // A top-level `Resources` list is summarised by the general path.
            if is_secret_key(&k)
                || k.eq_ignore_ascii_case("path")
                || k.eq_ignore_ascii_case("Resources")
            {
                return Err(refuse());
            }
            if let Some(v) = map.next_value_seed(Scalar)? {
                top.insert(k.into_owned(), v);
            }
        }
        Ok(top)
    }
}

/// A value that is kept when it is a scalar and checked when it is not.
struct Scalar;

impl<'de> DeserializeSeed<'de> for Scalar {
    type Value = Option<Value>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scalar {
    type Value = Option<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Some(Value::Bool(b)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Some(
            serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(Value::String(s.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Some(Value::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Check.visit_map(map).map(|()| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Check.visit_seq(seq).map(|()| None)
    }
}

/// Walks a value, building nothing, and fails on what the general path would change.
struct Check;

impl<'de> DeserializeSeed<'de> for Check {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Check {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(k)) = map.next_key::<Key>()? {
            if is_secret_key(&k) || k.eq_ignore_ascii_case("path") {
                return Err(refuse());
            }
            map.next_value_seed(Check)?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while seq.next_element_seed(Check)?.is_some() {
            n += 1;
            if n > MAX_LIST_ITEMS {
                return Err(refuse());
            }
        }
        Ok(())
    }
}

/// The top level of a list answer.
struct ListTop;

impl<'de> Visitor<'de> for ListTop {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut top = Map::new();
        let mut trimmed = false;
        while let Some(Key(k)) = map.next_key::<Key>()? {
            let v = if k.eq_ignore_ascii_case("Resources") {
                let (resources, left_out) = map.next_value_seed(Listed)?;
                trimmed |= left_out;
                resources
            } else {
                map.next_value::<Value>()?
            };
            top.insert(k.into_owned(), v);
        }
        let mut v = Value::Object(top);
        if trimmed {
            drop_list_schemas(&mut v);
        }
        Ok(v)
    }
}

/// `Resources`: each resource with only the listed keys, and the marker after them when any
/// resource had more (then also `true`).
struct Listed;

impl<'de> DeserializeSeed<'de> for Listed {
    type Value = (Value, bool);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(Value, bool), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Listed {
    type Value = (Value, bool);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of resources")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Value, bool), A::Error> {
        let mut out = Vec::new();
        let mut trimmed = false;
        while let Some(r) = seq.next_element_seed(Resource {
            trimmed: &mut trimmed,
        })? {
            out.push(r);
        }
        if trimmed {
            out.push(Value::String(LIST_SUMMARY_STORED.to_string()));
        }
        Ok((Value::Array(out), trimmed))
    }
}

struct Resource<'t> {
    trimmed: &'t mut bool,
}

impl<'de> DeserializeSeed<'de> for Resource<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Resource<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a resource")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            if is_listed_key(&k) {
                kept.insert(k.into_owned(), map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
                *self.trimmed = true;
            }
        }
        Ok(Value::Object(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provlog::describe::stored_text;
    use serde_json::json;

    /// What the general path stores, parsed (its layout differs from the body's).
    fn general(body: &Value) -> Value {
        serde_json::from_str(&stored_text(Some(body.to_string().as_bytes())).unwrap()).unwrap()
    }

    #[test]
    fn a_plain_user_is_kept_as_sent_with_its_scalars() {
        let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName":"ada@contoso.com","active":true,"externalId":"e\"1",
            "name":{"givenName":"Ada","familyName":"Lovelace"},
            "emails":[{"type":"work","value":"ada@contoso.com","primary":true}]}"#;
        let kept = as_sent(body.as_bytes()).unwrap();
        assert_eq!(kept.text, body, "byte for byte");
        assert_eq!(
            kept.top,
            json!({"userName": "ada@contoso.com", "active": true, "externalId": "e\"1"})
        );
        let parsed: Value = serde_json::from_str(body).unwrap();
        assert_eq!(general(&parsed), parsed, "the general path changes nothing");
    }

    #[test]
    fn what_the_general_path_would_change_is_not_kept_as_sent() {
        for body in [
            json!({"userName": "a", "password": "Secret1!"}),
            json!({"userName": "a", "x": {"ClientSecret": "s"}}),
            json!({"userName": "a", "emails": [{"value": "a", "accessToken": "t"}]}),
            json!({"Operations": [{"op": "replace", "path": "password", "value": "p"}]}),
            json!({"userName": "a", "groups": (0..=MAX_LIST_ITEMS).collect::<Vec<_>>()}),
            json!({"Resources": [{"id": "u1", "title": "t"}]}),
        ] {
            assert_eq!(as_sent(body.to_string().as_bytes()), None, "{body}");
            assert_ne!(general(&body), body, "the general path does change {body}");
        }
        assert_eq!(as_sent(b"[1, 2]"), None, "not an object");
        assert_eq!(as_sent(b"{\"a\": 1} x"), None, "trailing bytes");
        assert_eq!(as_sent(b"{\"a\": "), None, "cut short");
        let big = json!({"userName": "x".repeat(MAX_STORED_BODY)});
        assert_eq!(
            as_sent(big.to_string().as_bytes()),
            None,
            "past the stored size"
        );
        // Exactly the longest list the general path keeps whole.
        let ok = json!({"groups": (1..=MAX_LIST_ITEMS).collect::<Vec<_>>()});
        assert!(as_sent(ok.to_string().as_bytes()).is_some());
    }

    #[test]
    fn a_list_summary_is_what_the_general_path_stores() {
        let user = |i: usize| {
            json!({"id": format!("u{i}"), "userName": format!("user{i}@contoso.com"),
                   "active": i.is_multiple_of(2), "externalId": format!("e{i}"), "title": "Engineer",
                   "emails": [{"value": "x"}], "groups": [{"value": "g1", "display": "G"}]})
        };
        let page = |n: usize| {
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                   "totalResults": n, "startIndex": 1, "itemsPerPage": n,
                   "Resources": (0..n).map(user).collect::<Vec<_>>()})
        };
        for n in [0, 1, 3, MAX_LIST_ITEMS + 5] {
            let body = page(n);
            let mut lean = list_summary(body.to_string().as_bytes()).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&list_summary_text(&body)).unwrap(),
                lean,
                "{n} resources: the handler's summary is the parsed one"
            );
            let stored = general(&body);
            // The general path also cuts long lists; the summary is cut the same way later.
            crate::provlog::describe::redact(&mut lean);
            assert_eq!(lean, stored, "{n} resources");
        }
        // Resources with nothing to leave out get no marker.
        let bare = json!({"totalResults": 1, "Resources": [{"id": "g1", "displayName": "G"}]});
        assert_eq!(list_summary(bare.to_string().as_bytes()).unwrap(), bare);
        assert_eq!(list_summary_text(&bare), bare.to_string().into_bytes());
        assert_eq!(
            list_summary(b"{\"Resources\": [1]}"),
            None,
            "not a resource"
        );
        assert_eq!(list_summary(b"not json"), None);
    }

    #[test]
    fn secret_names_are_found_in_any_case_without_allocating() {
        for k in [
            "password",
            "PassWord",
            "clientSecret",
            "access_token",
            "Authorization",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["userName", "path", "auth", "pass", "tok"] {
            assert!(!is_secret_key(k), "{k}");
        }
        assert!(contains_ci("xxTOKENxx", "token"));
        assert!(!contains_ci("", "token"));
    }
}
