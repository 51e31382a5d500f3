//! SCIM filters and `sortBy` → the storage-neutral [`Cond`] and [`Sort`] of `domain::query`.
//!
//! The translation keeps the pure evaluator's semantics (`filter::matches`), term for term, so
//! that the database answers exactly what evaluating every resource in memory would; the
//! differential test in `tests/query_differential.rs` holds the two side by side.

use serde_json::{Value, json};

use super::error::{ScimError, ScimResult};
use super::filter::{AttrPath, CompareOp, Filter, as_bool, matches};
use super::index::instant_nanos;
use super::schema::{AttrType, AttributeDef, ResourceKind, resolve};
use crate::domain::query::{
    Column, Computed, Cond, Link, LinkField, OrdOp, Sort, SortKey, TextOp, ValueTest,
};

/// What the translation needs besides the filter.
pub struct Target<'a> {
    pub kind: ResourceKind,
    /// `{public-url}/scim/v2/{slug}`, for `$ref` and `meta.location`.
    pub base_url: &'a str,
}

/// Where a path is read: the resource, one element of a multi-valued attribute, or a
/// membership row.
#[derive(Clone, Copy)]
enum Scope {
    Resource,
    Element(Option<&'static AttributeDef>),
    Link(Link),
}

/// The index key of a path: `attr[.sub]` for the core schema, `urn:attr[.sub]` otherwise.
pub fn key_of(path: &AttrPath, kind: ResourceKind) -> String {
    let mut key = String::new();
    if !path.is_core(kind)
        && let Some(u) = &path.urn
    {
        key.push_str(&u.to_lowercase());
        key.push(':');
    }
    key.push_str(&path.attr.to_lowercase());
    if let Some(s) = &path.sub {
        key.push('.');
        key.push_str(&s.to_lowercase());
    }
    key
}

fn fold(s: &str, def: Option<&AttributeDef>) -> String {
    if def.is_some_and(|d| d.case_exact) {
        s.to_string()
    } else {
        s.to_lowercase()
    }
}

fn text_op(op: CompareOp) -> Option<TextOp> {
    Some(match op {
        CompareOp::Eq => TextOp::Eq,
        CompareOp::Co => TextOp::Co,
        CompareOp::Sw => TextOp::Sw,
        CompareOp::Ew => TextOp::Ew,
        CompareOp::Gt => TextOp::Gt,
        CompareOp::Ge => TextOp::Ge,
        CompareOp::Lt => TextOp::Lt,
        CompareOp::Le => TextOp::Le,
        CompareOp::Ne => return None,
    })
}

fn ord_op(op: CompareOp) -> Option<OrdOp> {
    Some(match op {
        CompareOp::Eq => OrdOp::Eq,
        CompareOp::Gt => OrdOp::Gt,
        CompareOp::Ge => OrdOp::Ge,
        CompareOp::Lt => OrdOp::Lt,
        CompareOp::Le => OrdOp::Le,
        _ => return None,
    })
}

fn is_derived(path: &AttrPath, kind: ResourceKind) -> Option<Link> {
    if !path.is_core(kind) {
        return None;
    }
    match kind {
        ResourceKind::User if path.attr.eq_ignore_ascii_case("groups") => Some(Link::GroupsOfUser),
        ResourceKind::Group if path.attr.eq_ignore_ascii_case("members") => {
            Some(Link::MembersOfGroup)
        }
        _ => None,
    }
}

fn is_meta(path: &AttrPath, kind: ResourceKind) -> bool {
    path.is_core(kind) && path.attr.eq_ignore_ascii_case("meta")
}

/// True for a core attribute the resource type does not define (`userName` of a group, as
/// the root `/.search` asks of both types). The server refuses to store one (`patch::apply`
/// answers `invalidPath`, for a POST or PUT body too), so no resource holds it and the
/// condition is known without reading any. `schemas` is in every document but in no schema.
fn never_held(path: &AttrPath, kind: ResourceKind) -> bool {
    path.is_core(kind)
        && !path.attr.eq_ignore_ascii_case("schemas")
        && resolve(kind, None, &path.attr, None).is_none()
}

/// A comparison with an attribute that is absent, as the evaluator sees it: `eq null` and
/// `ne` with a value hold, everything else does not.
fn absent_compare(op: CompareOp, rhs: &Value) -> Cond {
    Cond::Const(match op {
        CompareOp::Eq => rhs.is_null(),
        CompareOp::Ne => !rhs.is_null(),
        _ => false,
    })
}

impl Target<'_> {
    /// The condition selecting what `filter` matches.
    pub fn cond(&self, filter: &Filter) -> ScimResult<Cond> {
        self.compile(filter, Scope::Resource)
    }

    fn compile(&self, f: &Filter, scope: Scope) -> ScimResult<Cond> {
        Ok(match f {
            Filter::And(..) | Filter::Or(..) => {
                // Flatten left-deep chains iteratively (the parser bounds nesting, not length).
                let is_and = matches!(f, Filter::And(..));
                let mut terms = Vec::new();
                let mut cur = f;
                loop {
                    match (cur, is_and) {
                        (Filter::And(l, r), true) | (Filter::Or(l, r), false) => {
                            terms.push(self.compile(r, scope)?);
                            cur = l;
                        }
                        _ => {
                            terms.push(self.compile(cur, scope)?);
                            break;
                        }
                    }
                }
                terms.reverse();
                if is_and {
                    Cond::and(terms)
                } else {
                    Cond::or(terms)
                }
            }
            Filter::Not(inner) => Cond::not(self.compile(inner, scope)?),
            Filter::Present(path) => self.present(path, scope),
            Filter::Compare { path, op, value } => self.compare(path, *op, value, scope),
            Filter::ValuePath { path, filter } => self.value_path(path, filter, scope)?,
        })
    }

    fn def_in(&self, path: &AttrPath, scope: Scope) -> Option<&'static AttributeDef> {
        match scope {
            Scope::Resource | Scope::Link(_) => path.def(self.kind),
            Scope::Element(parent) => {
                let d = parent.and_then(|p| p.sub(&path.attr));
                match &path.sub {
                    None => d,
                    Some(s) => d.and_then(|d| d.sub(s)),
                }
            }
        }
    }

    fn present(&self, path: &AttrPath, scope: Scope) -> Cond {
        match scope {
            Scope::Resource => {
                if let Some(link) = is_derived(path, self.kind) {
                    return match path.sub.as_deref().map(link_field_name) {
                        None | Some(Some(_)) => Cond::Linked {
                            link,
                            cond: Box::new(Cond::Const(true)),
                        },
                        Some(None) => Cond::Const(false),
                    };
                }
                if is_meta(path, self.kind) {
                    return Cond::Const(matches(
                        &Filter::Present(path.clone()),
                        &self.meta_sample(),
                        self.kind,
                    ));
                }
                if never_held(path, self.kind) {
                    return Cond::Const(false);
                }
                Cond::Present(key_of(path, self.kind))
            }
            Scope::Element(_) => Cond::Present(element_key(path)),
            Scope::Link(_) => {
                // Every field of a membership row has a non-empty value.
                let name = if path.sub.is_some() {
                    None
                } else {
                    link_field_name(&path.attr)
                };
                Cond::Const(name.is_some())
            }
        }
    }

    /// `meta` with every sub-attribute present: what constant-folds `meta` terms that do not
    /// depend on the row.
    fn meta_sample(&self) -> Value {
        json!({ "meta": {
            "resourceType": self.kind.name(),
            "created": "x", "lastModified": "x", "location": "x", "version": "x",
        }})
    }

    fn compare(&self, path: &AttrPath, op: CompareOp, rhs: &Value, scope: Scope) -> Cond {
        if let Scope::Link(link) = scope {
            let field = path.sub.is_none().then_some(path.attr.as_str());
            return self.row_compare(link, field, op, rhs);
        }
        if matches!(scope, Scope::Resource) {
            if let Some(link) = is_derived(path, self.kind) {
                let field = path.sub.as_deref().unwrap_or("value");
                return self.link_compare(link, Some(field), op, rhs);
            }
            if is_meta(path, self.kind) {
                return self.meta_compare(path, op, rhs);
            }
            if never_held(path, self.kind) {
                return absent_compare(op, rhs);
            }
        }
        let def = self.def_in(path, scope);
        let key = match scope {
            Scope::Resource => key_of(path, self.kind),
            _ => element_key(path),
        };
        if rhs.is_null() {
            let any = Cond::Present(format!("={key}"));
            return match op {
                CompareOp::Eq => Cond::not(any),
                CompareOp::Ne => any,
                _ => Cond::Const(false),
            };
        }
        if op == CompareOp::Ne {
            return Cond::not(self.compare(path, CompareOp::Eq, rhs, scope));
        }
        let leaf_def = match def {
            Some(d) if d.is_complex() => d.sub("value"),
            other => other,
        };
        if matches!(scope, Scope::Resource)
            && let (Value::String(s), Some(top)) = (rhs, text_op(op))
            && let Some(col) = self.column_for(path)
        {
            return Cond::Column(col, top, fold(s, leaf_def));
        }
        let any = |test| Cond::AnyValue {
            key: key.clone(),
            test,
        };
        let bool_mode = leaf_def.is_some_and(|d| d.ty == AttrType::Boolean) || rhs.is_boolean();
        if bool_mode {
            return match (op, as_bool(rhs)) {
                (CompareOp::Eq, Some(b)) => any(ValueTest::Bool {
                    value: b,
                    strings: true,
                }),
                _ => Cond::Const(false),
            };
        }
        let mut tests = Vec::new();
        if op == CompareOp::Eq
            && let Some(b) = as_bool(rhs)
        {
            tests.push(any(ValueTest::Bool {
                value: b,
                strings: false,
            }));
        }
        match rhs {
            Value::Number(n) => {
                if let (Some(o), Some(x)) = (ord_op(op), n.as_f64()) {
                    tests.push(any(ValueTest::Number(o, x)));
                }
            }
            Value::String(s) => {
                if let Some(t) = text_op(op) {
                    tests.push(any(ValueTest::Text(t, fold(s, leaf_def))));
                }
            }
            _ => {}
        }
        Cond::or(tests)
    }

    /// Indexed columns that hold exactly what the index would for this path.
    fn column_for(&self, path: &AttrPath) -> Option<Column> {
        let is = |attr: &str, sub: Option<&str>| path.refers_to(self.kind, None, attr, sub);
        if is("id", None) {
            return Some(Column::Id);
        }
        if is("externalId", None) {
            return Some(Column::ExternalId);
        }
        match self.kind {
            ResourceKind::User if is("userName", None) => Some(Column::NameLc),
            ResourceKind::User if is("displayName", None) => Some(Column::DisplayNameLc),
            ResourceKind::User if is("name", Some("givenName")) => Some(Column::GivenNameLc),
            ResourceKind::User if is("name", Some("familyName")) => Some(Column::FamilyNameLc),
            ResourceKind::Group if is("displayName", None) => Some(Column::NameLc),
            _ => None,
        }
    }

    fn meta_compare(&self, path: &AttrPath, op: CompareOp, rhs: &Value) -> Cond {
        let sub = path.sub.as_deref().unwrap_or("");
        let def = path.def(self.kind);
        let time_col = if sub.eq_ignore_ascii_case("created") {
            Some(Column::Created)
        } else if sub.eq_ignore_ascii_case("lastModified") {
            Some(Column::Modified)
        } else {
            None
        };
        let computed = if let Some(col) = time_col {
            Some(Computed::TimeText {
                col,
                folded: !def.is_some_and(|d| d.case_exact),
            })
        } else if sub.eq_ignore_ascii_case("version") {
            Some(Computed::VersionTag {
                folded: !def.is_some_and(|d| d.case_exact),
            })
        } else if sub.eq_ignore_ascii_case("location") {
            let plural = match self.kind {
                ResourceKind::User => "Users",
                ResourceKind::Group => "Groups",
            };
            Some(Computed::Location {
                prefix: fold(&format!("{}/{plural}/", self.base_url), def),
            })
        } else {
            None
        };
        let Some(computed) = computed else {
            // resourceType, unknown sub-attributes and `meta` itself do not vary by row.
            let f = Filter::Compare {
                path: path.clone(),
                op,
                value: rhs.clone(),
            };
            return Cond::Const(matches(&f, &self.meta_sample(), self.kind));
        };
        match (op, rhs) {
            (_, Value::Null) => Cond::Const(op == CompareOp::Ne),
            (CompareOp::Ne, _) => Cond::not(self.meta_compare(path, CompareOp::Eq, rhs)),
            (_, Value::String(s)) => {
                if let (Some(col), Some(o), Some(t)) = (time_col, ord_op(op), instant_nanos(s)) {
                    return Cond::Instant(col, o, t);
                }
                match text_op(op) {
                    Some(t) => Cond::Computed(computed, t, fold(s, def)),
                    None => Cond::Const(false),
                }
            }
            _ => Cond::Const(false),
        }
    }

    fn link_field_for(&self, link: Link, field: Option<&str>) -> (Option<LinkField>, bool) {
        let sub_def = field.and_then(|f| {
            let attr = match link {
                Link::GroupsOfUser => "groups",
                Link::MembersOfGroup => "members",
            };
            super::schema::resolve(self.kind, None, attr, Some(f))
        });
        let exact = sub_def.is_some_and(|d| d.case_exact);
        (
            field
                .and_then(link_field_name)
                .map(|name| self.link_field(link, name, exact)),
            exact,
        )
    }

    /// One membership row's field compared with `rhs` (`field` None: a path with no values).
    fn row_compare(&self, link: Link, field: Option<&str>, op: CompareOp, rhs: &Value) -> Cond {
        let (Some(lf), exact) = self.link_field_for(link, field) else {
            return Cond::Const(op == CompareOp::Ne || (op == CompareOp::Eq && rhs.is_null()));
        };
        match (op, rhs) {
            // Every field of a row has a value.
            (CompareOp::Ne, Value::Null) => Cond::Const(true),
            (_, Value::Null) => Cond::Const(false),
            (CompareOp::Ne, _) => Cond::not(self.row_compare(link, field, CompareOp::Eq, rhs)),
            (_, Value::String(s)) => match text_op(op) {
                Some(t) => Cond::Field(lf, t, if exact { s.clone() } else { s.to_lowercase() }),
                None => Cond::Const(false),
            },
            _ => Cond::Const(false),
        }
    }

    /// A membership attribute of the resource (`groups.display`, `members`) compared with `rhs`:
    /// true when any row's field matches (`ne`: when none does).
    fn link_compare(&self, link: Link, field: Option<&str>, op: CompareOp, rhs: &Value) -> Cond {
        if self.link_field_for(link, field).0.is_none() {
            return Cond::Const(op == CompareOp::Ne || (op == CompareOp::Eq && rhs.is_null()));
        }
        let any_row = |cond: Cond| Cond::Linked {
            link,
            cond: Box::new(cond),
        };
        match (op, rhs) {
            (CompareOp::Eq, Value::Null) => Cond::not(any_row(Cond::Const(true))),
            (CompareOp::Ne, Value::Null) => any_row(Cond::Const(true)),
            (CompareOp::Ne, _) => Cond::not(self.link_compare(link, field, CompareOp::Eq, rhs)),
            _ => match self.row_compare(link, field, op, rhs) {
                Cond::Const(false) => Cond::Const(false),
                row => any_row(row),
            },
        }
    }

    fn link_field(&self, link: Link, name: &str, exact: bool) -> LinkField {
        match name {
            "value" => LinkField::Id,
            "display" if exact => LinkField::Display,
            "display" => LinkField::DisplayLc,
            "type" => LinkField::Type { folded: !exact },
            _ => {
                let f = |p: &str| {
                    let s = format!("{}/{p}/", self.base_url);
                    if exact { s } else { s.to_lowercase() }
                };
                match link {
                    Link::GroupsOfUser => LinkField::Ref {
                        user_prefix: f("Groups"),
                        group_prefix: f("Groups"),
                    },
                    Link::MembersOfGroup => LinkField::Ref {
                        user_prefix: f("Users"),
                        group_prefix: f("Groups"),
                    },
                }
            }
        }
    }

    fn value_path(&self, path: &AttrPath, inner: &Filter, scope: Scope) -> ScimResult<Cond> {
        if !matches!(scope, Scope::Resource) || path.sub.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "A value filter must name a top-level attribute: {path}[…]."
            )));
        }
        if let Some(link) = is_derived(path, self.kind) {
            return Ok(Cond::Linked {
                link,
                cond: Box::new(self.compile(inner, Scope::Link(link))?),
            });
        }
        let def = path.def(self.kind);
        if never_held(path, self.kind) {
            // No element to match; the inner filter is still checked.
            self.compile(inner, Scope::Element(None))?;
            return Ok(Cond::Const(false));
        }
        match def {
            Some(d) if !d.multi_valued && d.is_complex() => {
                // A single complex value is its own only element: `name[givenName eq "x"]` is
                // `name.givenName eq "x"`.
                self.compile(&rebase(inner, path)?, Scope::Resource)
            }
            Some(d) if !d.multi_valued => Err(ScimError::invalid_filter(format!(
                "{path} is a simple attribute; a value filter needs a multi-valued or complex one."
            ))),
            _ => Ok(Cond::AnyElement {
                key: key_of(path, self.kind),
                cond: Box::new(self.compile(inner, Scope::Element(def))?),
            }),
        }
    }

    /// The order for `sortBy` (none: creation order).
    pub fn sort(&self, by: Option<&AttrPath>, descending: bool) -> ScimResult<Sort> {
        let Some(path) = by else {
            return Ok(Sort::default());
        };
        if is_derived(path, self.kind).is_some() {
            return Err(ScimError::invalid_value(format!(
                "sortBy cannot name {path}: it is a list of references."
            )));
        }
        let key = if is_meta(path, self.kind) {
            let sub = path.sub.as_deref().unwrap_or("");
            if sub.eq_ignore_ascii_case("created") {
                SortKey::Created
            } else if sub.eq_ignore_ascii_case("lastModified") {
                SortKey::Column(Column::Modified)
            } else if sub.eq_ignore_ascii_case("location") {
                SortKey::Column(Column::Id)
            } else if sub.eq_ignore_ascii_case("version") {
                SortKey::Computed(Computed::VersionTag {
                    folded: !path.def(self.kind).is_some_and(|d| d.case_exact),
                })
            } else {
                // The same for every row: creation order, in either direction.
                return Ok(Sort::default());
            }
        } else {
            match self.column_for(path) {
                Some(Column::Id) => SortKey::Column(Column::Id),
                Some(Column::ExternalId) => SortKey::Column(Column::ExternalId),
                Some(Column::NameLc) => SortKey::Column(Column::NameLc),
                _ => SortKey::Indexed(key_of(path, self.kind)),
            }
        };
        Ok(Sort { key, descending })
    }
}

fn element_key(path: &AttrPath) -> String {
    let mut key = path.attr.to_lowercase();
    if let Some(s) = &path.sub {
        key.push('.');
        key.push_str(&s.to_lowercase());
    }
    key
}

fn link_field_name(name: &str) -> Option<&'static str> {
    ["value", "display", "type", "$ref"]
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(name))
}

/// `inner` with every path made a sub-attribute of `parent` (for single complex attributes).
fn rebase(inner: &Filter, parent: &AttrPath) -> ScimResult<Filter> {
    let move_path = |p: &AttrPath| -> ScimResult<AttrPath> {
        if p.sub.is_some() || p.urn.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "{parent}[…] can only compare its own sub-attributes."
            )));
        }
        Ok(AttrPath {
            urn: parent.urn.clone(),
            attr: parent.attr.clone(),
            sub: Some(p.attr.clone()),
        })
    };
    Ok(match inner {
        Filter::Compare { path, op, value } => Filter::Compare {
            path: move_path(path)?,
            op: *op,
            value: value.clone(),
        },
        Filter::Present(p) => Filter::Present(move_path(p)?),
        Filter::And(a, b) => {
            Filter::And(Box::new(rebase(a, parent)?), Box::new(rebase(b, parent)?))
        }
        Filter::Or(a, b) => Filter::Or(Box::new(rebase(a, parent)?), Box::new(rebase(b, parent)?)),
        Filter::Not(a) => Filter::Not(Box::new(rebase(a, parent)?)),
        Filter::ValuePath { .. } => {
            return Err(ScimError::invalid_filter("Value filters cannot be nested."));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;

    fn users(f: &str) -> Cond {
        Target {
            kind: ResourceKind::User,
            base_url: "https://x.test/scim/v2/acme",
        }
        .cond(&parse_filter(f).unwrap())
        .unwrap()
    }

    #[test]
    fn entra_lookups_use_indexed_columns() {
        assert_eq!(
            users(r#"userName eq "Alice@X.com""#),
            Cond::Column(Column::NameLc, TextOp::Eq, "alice@x.com".into())
        );
        assert_eq!(
            users(r#"externalId eq "AbC""#),
            Cond::Column(Column::ExternalId, TextOp::Eq, "AbC".into())
        );
        assert_eq!(
            users(r#"name.familyName sw "Sm""#),
            Cond::Column(Column::FamilyNameLc, TextOp::Sw, "sm".into())
        );
    }

    fn groups(f: &str) -> Cond {
        Target {
            kind: ResourceKind::Group,
            base_url: "https://x.test/scim/v2/acme",
        }
        .cond(&parse_filter(f).unwrap())
        .unwrap()
    }

    #[test]
    fn core_attributes_of_the_other_type_are_known_absent() {
        // The root `/.search` sends a user lookup to both types: no group is read for it.
        let f = r#"userName eq "alice@x.com""#;
        assert_eq!(groups(f), Cond::Const(false));
        assert_eq!(groups(r#"userName ne "a""#), Cond::Const(true));
        assert_eq!(groups("userName eq null"), Cond::Const(true));
        assert_eq!(groups("userName ne null"), Cond::Const(false));
        assert_eq!(groups(r#"title co "x""#), Cond::Const(false));
        assert_eq!(groups("active pr"), Cond::Const(false));
        assert_eq!(groups("not (active eq true)"), Cond::Const(true));
        assert_eq!(groups(r#"emails[value eq "a@x.com"]"#), Cond::Const(false));
        assert_eq!(
            groups(r#"userName eq "a" or displayName eq "Sales""#),
            Cond::Column(Column::NameLc, TextOp::Eq, "sales".into())
        );
        assert_eq!(users(r#"members.value eq "x""#), Cond::Const(false));
        // Every document names its schemas, and an extension may hold anything.
        assert!(!matches!(groups(r#"schemas eq "x""#), Cond::Const(_)));
        let ext = r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#;
        assert!(!matches!(groups(ext), Cond::Const(_)));
        // The attributes each type defines are still read.
        assert!(!matches!(users(r#"title co "x""#), Cond::Const(_)));
        assert!(!matches!(users("active pr"), Cond::Const(_)));
        // Each agrees with the evaluator on a group, which never holds the attribute.
        let group =
            json!({"schemas": [ResourceKind::Group.core_schema().id], "displayName": "Sales"});
        for f in [
            r#"userName ne "a""#,
            "userName eq null",
            "userName ne null",
            "not (active eq true)",
            r#"userName gt "a""#,
        ] {
            let want = matches(&parse_filter(f).unwrap(), &group, ResourceKind::Group);
            assert_eq!(groups(f), Cond::Const(want), "{f}");
        }
    }

    #[test]
    fn ne_and_null_follow_the_evaluator() {
        assert_eq!(
            users(r#"title ne "X""#),
            Cond::not(Cond::AnyValue {
                key: "title".into(),
                test: ValueTest::Text(TextOp::Eq, "x".into())
            })
        );
        assert_eq!(
            users("title eq null"),
            Cond::not(Cond::Present("=title".into()))
        );
        assert_eq!(users("title gt null"), Cond::Const(false));
    }

    #[test]
    fn booleans_accept_strings_in_boolean_attributes() {
        assert_eq!(
            users(r#"active eq "True""#),
            Cond::AnyValue {
                key: "active".into(),
                test: ValueTest::Bool {
                    value: true,
                    strings: true
                }
            }
        );
        // A string attribute compared with "true" matches the string, or a boolean true.
        let c = users(r#"title eq "true""#);
        assert!(matches!(c, Cond::Or(ref v) if v.len() == 2), "{c:?}");
    }

    #[test]
    fn value_paths_become_element_conditions() {
        let c = users(r#"emails[type eq "work" and value co "@X"]"#);
        let Cond::AnyElement { key, cond } = c else {
            panic!("{c:?}")
        };
        assert_eq!(key, "emails");
        assert_eq!(
            *cond,
            Cond::And(vec![
                Cond::AnyValue {
                    key: "type".into(),
                    test: ValueTest::Text(TextOp::Eq, "work".into())
                },
                Cond::AnyValue {
                    key: "value".into(),
                    test: ValueTest::Text(TextOp::Co, "@x".into())
                },
            ])
        );
        assert_eq!(
            users(r#"name[givenName eq "A"]"#),
            Cond::Column(Column::GivenNameLc, TextOp::Eq, "a".into())
        );
        let t = Target {
            kind: ResourceKind::User,
            base_url: "b",
        };
        assert!(
            t.cond(&parse_filter(r#"userName[value eq "x"]"#).unwrap())
                .is_err()
        );
    }

    #[test]
    fn memberships_and_meta() {
        assert_eq!(
            users(r#"groups eq "G1""#),
            Cond::Linked {
                link: Link::GroupsOfUser,
                cond: Box::new(Cond::Field(LinkField::Id, TextOp::Eq, "g1".into()))
            }
        );
        assert_eq!(users(r#"meta.resourceType eq "User""#), Cond::Const(true));
        assert_eq!(
            users(r#"meta.created gt "2026-01-01T00:00:00Z""#),
            Cond::Instant(Column::Created, OrdOp::Gt, 1_767_225_600_000_000_000)
        );
        assert!(matches!(
            users(r#"meta.lastModified co "2026""#),
            Cond::Computed(Computed::TimeText { .. }, TextOp::Co, _)
        ));
    }

    #[test]
    fn sort_keys() {
        let t = Target {
            kind: ResourceKind::User,
            base_url: "b",
        };
        let p = |s: &str| crate::scim::filter::parse_attr_path(s).unwrap();
        assert_eq!(
            t.sort(Some(&p("userName")), true).unwrap(),
            Sort {
                key: SortKey::Column(Column::NameLc),
                descending: true
            }
        );
        assert_eq!(
            t.sort(Some(&p("name.familyName")), false).unwrap().key,
            SortKey::Indexed("name.familyname".into())
        );
        assert!(t.sort(Some(&p("groups")), false).is_err());
    }
}
