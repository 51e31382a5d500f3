//! Builders shared by the parser's and the evaluator's tests.
#![allow(dead_code)]

use super::*;
use serde_json::{Value, json};

pub(super) const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub(super) const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExt:2.0:User";

pub(super) fn p(s: &str) -> Filter {
    match parse_filter(s) {
        Ok(f) => f,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

pub(super) fn perr(s: &str) -> String {
    match parse_filter(s) {
        Ok(f) => panic!("{s:?} should not parse, got {f:?}"),
        Err(e) => e.0,
    }
}

pub(super) fn cmp(path: AttrPath, op: CompareOp, value: Value) -> Filter {
    Filter::Compare { path, op, value }
}

pub(super) fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}

pub(super) fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

pub(super) fn pr(attr: &str) -> Filter {
    Filter::Present(AttrPath::new(attr))
}

pub(super) fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen",
        "userName": "Bjensen@Example.com",
        "name": {"familyName": "O'Malley", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
        "x-count": 7,
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        },
        ENT: {
            "employeeNumber": "701984",
            "Department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        CUSTOM: {"badgeColor": "Blue", "floor": 3}
    })
}

pub(super) fn m(filter: &str, resource: &Value) -> bool {
    matches(&p(filter), resource, ResourceKind::User)
}

// --- parsing: the RFC 7644 §3.4.2.2 examples -----------------------------------------
