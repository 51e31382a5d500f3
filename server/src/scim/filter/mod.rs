//! The SCIM filter language (RFC 7644 §3.4.2.2): a parser into an AST, PATCH path parsing
//! (RFC 7644 §3.5.2) and an evaluator over SCIM JSON resources.
//!
//! The parser is bounded: inputs longer than [`MAX_FILTER_LEN`] characters or nested deeper than
//! [`MAX_DEPTH`] levels of `(`, `not (` or `[` are rejected before any deep recursion, so a hostile
//! query string gives an `invalidFilter` error, never a stack overflow.
//!
//! Evaluation semantics chosen where the RFC leaves room (the integrator should know these):
//! - a multi-valued attribute matches when ANY of its values matches;
//! - a complex attribute compared without a sub-attribute (`emails co "x"`, `members eq "id"`,
//!   `manager eq "id"`) is compared through its `value` sub-attribute;
//! - `ne` is the negation of `eq` over all values, so `ne` on a missing attribute is true;
//! - `eq null` is true when the attribute has no value, `ne null` when it has one;
//! - booleans only support `eq`/`ne`; `gt`, `co`, ... on a boolean are false (and [`validate`]
//!   reports them if the caller prefers a 400);
//! - values of different JSON types never match; dateTime attributes compare as instants;
//! - strings compare case-insensitively unless the schema says `caseExact` (unknown and custom
//!   extension attributes: case-insensitive).

use std::fmt;

use serde_json::Value;

use super::schema::{AttributeDef, ResourceKind, resolve};

/// Longest filter (or PATCH path, or attribute list) accepted, in characters.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest nesting of parentheses, `not (...)` and `[...]` accepted.
pub const MAX_DEPTH: usize = 32;

/// A malformed filter or path; `Display` is a human-readable detail for a SCIM error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError(msg.into()))
}

/// An attribute reference: `[urn:]attr[.sub]`. The spelling is kept as sent; every comparison
/// with schema names or JSON keys ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    pub urn: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
}

impl AttrPath {
    pub fn new(attr: impl Into<String>) -> Self {
        AttrPath {
            urn: None,
            attr: attr.into(),
            sub: None,
        }
    }

    pub fn with_urn(urn: impl Into<String>, attr: impl Into<String>) -> Self {
        AttrPath {
            urn: Some(urn.into()),
            attr: attr.into(),
            sub: None,
        }
    }

    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// True when the path names the core schema: no URN, or the core schema's URN.
    pub fn is_core(&self, kind: ResourceKind) -> bool {
        self.urn.as_deref().is_none_or(|u| kind.is_core_urn(u))
    }

    /// Whether this path is `urn:attr.sub` (urn `None` = core schema), ignoring case and treating
    /// the core schema URN as equal to no URN. Handy when translating filters into queries.
    pub fn refers_to(
        &self,
        kind: ResourceKind,
        urn: Option<&str>,
        attr: &str,
        sub: Option<&str>,
    ) -> bool {
        let same_urn = match (self.is_core(kind), urn) {
            (true, None) => true,
            (true, Some(u)) => kind.is_core_urn(u),
            (false, None) => false,
            (false, Some(u)) => self
                .urn
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(u)),
        };
        let same_sub = match (&self.sub, sub) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        same_urn && same_sub && self.attr.eq_ignore_ascii_case(attr)
    }

    /// The schema definition this path names, if it is a known attribute.
    pub fn def(&self, kind: ResourceKind) -> Option<&'static AttributeDef> {
        resolve(kind, self.urn.as_deref(), &self.attr, self.sub.as_deref())
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.attr)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    pub fn parse(s: &str) -> Option<CompareOp> {
        Some(match s.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }

    fn is_substring(self) -> bool {
        matches!(self, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `path[filter]`: inside `filter`, attribute names are sub-attributes of `path`.
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl fmt::Display for Filter {
    /// Writes the filter back in SCIM syntax, fully parenthesised so that it re-parses to the
    /// same tree (useful in logs and error details).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

/// A parsed PATCH `path` (RFC 7644 §3.5.2): `attr`, `attr.sub`, `urn:attr[.sub]`,
/// `attr[filter]` or `attr[filter].sub`. `attr.sub` is only set when there is no filter; after a
/// filter the sub-attribute is in `sub_after_filter`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_after_filter: Option<String>,
}

mod eval;
mod lex;
mod parse;
#[cfg(test)]
mod test_support;

pub use eval::{SortKey, matches, matches_value, sort_key};
pub(crate) use eval::{as_bool, get_ci, is_present, key_ci};
pub use parse::{parse_attr_path, parse_filter, parse_patch_path, validate};
