//! A storage-neutral directory query: which users or groups, in which order, which page.
//!
//! The SCIM layer turns a filter into a [`Cond`] (knowing the schema: which attributes are
//! indexed columns, which compare case-exactly); the store turns a `Cond` into SQL with bound
//! parameters for either database. Nothing here knows SCIM syntax or SQL.
//!
//! Attribute values that are not indexed columns are read from the resource's *search index*, a
//! document the service writes beside each resource: for every attribute path (`name.familyname`,
//! `urn:…:enterprise:2.0:user:department`, lower-cased) it lists the comparable values (strings
//! already case-folded unless the attribute is case-exact), which paths are present, the elements
//! of multi-valued attributes, and a sort key. See `scim::index` for how it is built.

/// How two strings are compared. The value is already case-folded when the attribute is not
/// case-exact, exactly as the stored side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Eq,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

/// An ordering comparison on numbers or instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdOp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Indexed columns of users and groups. Text columns hold what the search index would hold for
/// the same attribute (case-folded where the attribute is not case-exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    ExternalId,
    /// userName (users) or displayName (groups), case-folded.
    NameLc,
    /// Users: displayName, case-folded.
    DisplayNameLc,
    GivenNameLc,
    FamilyNameLc,
    /// Users: the work email (else primary, else first), case-folded. Only ever used to narrow.
    EmailLc,
    /// Times in milliseconds.
    Created,
    Modified,
}

/// Text the database derives from columns (`meta` sub-attributes that are not stored as such).
#[derive(Debug, Clone, PartialEq)]
pub enum Computed {
    /// `meta.created` / `meta.lastModified` as the SCIM document writes them
    /// (`YYYY-MM-DDTHH:MM:SS.mmmZ`), case-folded when `folded`.
    TimeText { col: Column, folded: bool },
    /// `meta.version`: `W/"n"`, case-folded when `folded`.
    VersionTag { folded: bool },
    /// `meta.location`: `prefix` followed by the id.
    Location { prefix: String },
}

/// A test on one value found at a path of the search index.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest {
    /// A JSON boolean equal to `value`; with `strings`, also the string "true"/"false" in any
    /// case (when the attribute is boolean or the filter compares with a boolean).
    Bool { value: bool, strings: bool },
    /// A JSON number.
    Number(OrdOp, f64),
    /// A JSON string.
    Text(TextOp, String),
}

/// What a membership row offers to a condition: the other side's id, its display name
/// (case-folded), the member type, and the resource reference `prefix || id`.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkField {
    Id,
    DisplayLc,
    /// `"direct"` for a user's groups; `"User"`/`"Group"` for a group's members, case-folded
    /// when `folded`.
    Type {
        folded: bool,
    },
    /// The reference URL: the prefix for the member's type (already folded if the attribute is
    /// not case-exact) followed by the id.
    Ref {
        user_prefix: String,
        group_prefix: String,
    },
    /// The display name as sent (case-exact comparisons).
    Display,
}

/// Which membership a [`Cond::Linked`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// The groups a user is a direct member of.
    GroupsOfUser,
    /// The direct members of a group.
    MembersOfGroup,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    Const(bool),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// An indexed text column compared with a string.
    Column(Column, TextOp, String),
    /// An indexed time column compared with an instant, in nanoseconds since the epoch.
    Instant(Column, OrdOp, i128),
    /// Some value at `key` of the search index passes the test.
    AnyValue {
        key: String,
        test: ValueTest,
    },
    /// `key` is present (RFC 7644 `pr`): not missing, null, empty string, array or object.
    Present(String),
    /// Some element of the multi-valued (or complex) attribute at `key` satisfies `cond`, which
    /// is evaluated with the element as its document.
    AnyElement {
        key: String,
        cond: Box<Cond>,
    },
    /// Some membership row satisfies `cond`, built from [`Cond::Field`] tests and constants.
    Linked {
        link: Link,
        cond: Box<Cond>,
    },
    /// A value the database computes from a row's columns, compared as text.
    Computed(Computed, TextOp, String),
    /// Inside [`Cond::Linked`] only: a field of the membership row compared with a string.
    Field(LinkField, TextOp, String),
}

impl Cond {
    pub fn and(items: Vec<Cond>) -> Cond {
        let mut out = Vec::new();
        for c in items {
            match c {
                Cond::Const(true) => {}
                Cond::Const(false) => return Cond::Const(false),
                Cond::And(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Cond::Const(true),
            1 => out.pop().unwrap_or(Cond::Const(true)),
            _ => Cond::And(out),
        }
    }

    pub fn or(items: Vec<Cond>) -> Cond {
        let mut out = Vec::new();
        for c in items {
            match c {
                Cond::Const(false) => {}
                Cond::Const(true) => return Cond::Const(true),
                Cond::Or(inner) => out.extend(inner),
                other => out.push(other),
            }
        }
        match out.len() {
            0 => Cond::Const(false),
            1 => out.pop().unwrap_or(Cond::Const(false)),
            _ => Cond::Or(out),
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn not(c: Cond) -> Cond {
        match c {
            Cond::Const(b) => Cond::Const(!b),
            Cond::Not(inner) => *inner,
            other => Cond::Not(Box::new(other)),
        }
    }
}

/// The order of a listing.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// Creation order (the default, and every listing's tie-breaker).
    Created,
    /// An indexed text column (its values all strings, folded as the attribute requires).
    Column(Column),
    /// A computed text.
    Computed(Computed),
    /// The sort key the search index holds for `key` (RFC 7644 §3.4.2.3: missing values last if
    /// ascending, first if descending).
    Indexed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Created,
            descending: false,
        }
    }
}

/// Which slice of the result: SCIM's 1-based `startIndex` and `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: i64,
    pub limit: i64,
}

/// A complete listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub cond: Cond,
    pub sort: Sort,
    pub page: Page,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_fold_away() {
        let c = Cond::Column(Column::Id, TextOp::Eq, "a".into());
        assert_eq!(Cond::and(vec![Cond::Const(true), c.clone()]), c);
        assert_eq!(
            Cond::and(vec![Cond::Const(false), c.clone()]),
            Cond::Const(false)
        );
        assert_eq!(
            Cond::or(vec![Cond::Const(true), c.clone()]),
            Cond::Const(true)
        );
        assert_eq!(Cond::or(vec![Cond::Const(false), c.clone()]), c);
        assert_eq!(Cond::not(Cond::not(c.clone())), c);
        assert_eq!(Cond::and(vec![]), Cond::Const(true));
        assert_eq!(Cond::or(vec![]), Cond::Const(false));
    }
}
