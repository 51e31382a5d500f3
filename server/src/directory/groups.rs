//! Groups: the connector's rules and the operations on them. A group needs a `displayName`
//! unique in its organisation; members are users or groups of the same organisation, never the
//! group itself; a PUT without `members` keeps them; member-only PATCHes commute; deleting a
//! group removes it and its memberships.

use serde_json::{Value, json};
use std::collections::HashMap;

use super::{DirError, DirResult, Directory, Preconditions, ScimTenant};
use crate::scim::error::ScimError;
use crate::scim::patch::{MemberChange, PatchRequest, apply_group_patch};
use crate::scim::resource::{etag, meta, normalize, stored_doc, strip_keys};
use crate::scim::schema::ResourceKind;
use crate::store::scim_groups::{self, GroupRecord, GroupWrite, Member, MemberKind, MemberOp};
use crate::store::{StoreError, UniqueKey};

const KIND: ResourceKind = ResourceKind::Group;

/// The SCIM document of a stored group; `members` only when they were read.
pub fn render(rec: &GroupRecord, members: Option<&[Member]>, t: &ScimTenant) -> Value {
    let mut doc = stored_doc(&rec.resource);
    doc.insert("id".into(), json!(rec.id));
    doc.insert("displayName".into(), json!(rec.display_name));
    if let Some(x) = &rec.external_id {
        doc.insert("externalId".into(), json!(x));
    }
    if !doc.contains_key("schemas") {
        doc.insert("schemas".into(), json!([KIND.core_schema().id]));
    }
    if let Some(members) = members {
        let list: Vec<Value> = members
            .iter()
            .map(|m| {
                let plural = if m.kind == MemberKind::Group {
                    "Groups"
                } else {
                    "Users"
                };
                let mut v = json!({
                    "value": m.id,
                    "$ref": format!("{}/{plural}/{}", t.base_url, m.id),
                    "type": m.kind.as_str(),
                });
                if let Some(d) = &m.display {
                    v["display"] = json!(d);
                }
                v
            })
            .collect();
        doc.insert("members".into(), Value::Array(list));
    }
    doc.insert(
        "meta".into(),
        meta(
            KIND,
            &t.base_url,
            &rec.id,
            rec.created_at,
            rec.updated_at,
            rec.version,
        ),
    );
    Value::Object(doc)
}

/// The search index of a group as SCIM renders it (members and `meta` are answered from their
/// tables and columns).
pub fn search_index(rec: &GroupRecord) -> String {
    let none = ScimTenant {
        id: String::new(),
        slug: String::new(),
        base_url: String::new(),
    };
    crate::scim::index::build(&render(rec, None, &none), KIND).to_string()
}

fn display_name(doc: &Value) -> Result<String, ScimError> {
    doc.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("displayName"))
        })
        .and_then(|(_, v)| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ScimError::invalid_value("displayName is required and is missing or empty."))
}

fn external_id(doc: &Value) -> Option<String> {
    doc.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("externalId")))
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

fn storable(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        strip_keys(o, &["id", "meta", "members"]);
    }
    d.to_string()
}

/// Member ids from a `members` value: `[{"value": id, ...}]` or bare id strings.
fn member_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a.as_slice(),
        _ => {
            return Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id} objects.",
            ));
        }
    };
    items
        .iter()
        .map(|m| match m {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("value"))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| {
                    ScimError::invalid_value("every member needs a \"value\" (the member's id).")
                }),
            _ => Err(ScimError::invalid_value(
                "members must be a list of {\"value\": id} objects.",
            )),
        })
        .collect()
}

/// The `members` a client's document carries, if it carries the attribute at all.
fn sent_members(body: &Value) -> Result<Option<Vec<String>>, ScimError> {
    body.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("members")))
        .map(|(_, v)| member_ids(v))
        .transpose()
}

fn taken(key: UniqueKey, name: &str, ext: Option<&str>) -> DirError {
    let value = match key {
        UniqueKey::ExternalId => ext.unwrap_or_default().to_string(),
        _ => name.to_string(),
    };
    DirError::Taken {
        kind: KIND,
        key,
        value,
    }
}

/// A group's attributes as the store writes them.
struct Written {
    name: String,
    ext: Option<String>,
    resource: String,
    search: String,
}

impl Written {
    fn of(rec: &GroupRecord, doc: Option<&Value>) -> Result<Written, ScimError> {
        let (name, ext, resource) = match doc {
            Some(d) => (display_name(d)?, external_id(d), storable(d)),
            None => (
                rec.display_name.clone(),
                rec.external_id.clone(),
                rec.resource.clone(),
            ),
        };
        let search = search_index(&GroupRecord {
            display_name: name.clone(),
            external_id: ext.clone(),
            resource: resource.clone(),
            ..rec.clone()
        });
        Ok(Written {
            name,
            ext,
            resource,
            search,
        })
    }

    fn as_write<'a>(&'a self, id: &'a str) -> GroupWrite<'a> {
        GroupWrite {
            id,
            display_name: &self.name,
            search: &self.search,
            external_id: self.ext.as_deref(),
            resource: &self.resource,
        }
    }

    fn taken(&self, key: UniqueKey) -> DirError {
        taken(key, &self.name, self.ext.as_deref())
    }
}

impl Directory {
    /// A group of the organisation.
    pub async fn group(&self, t: &ScimTenant, id: &str) -> DirResult<GroupRecord> {
        super::found(scim_groups::get(&self.db, &t.id, id).await, KIND, id)
    }

    /// The kinds of every id, or an error naming the first that is not a live user or a group
    /// of this organisation.
    async fn member_kinds(
        &self,
        t: &ScimTenant,
        ids: &[String],
    ) -> DirResult<HashMap<String, MemberKind>> {
        let kinds = scim_groups::resolve_members(&self.db, &t.id, ids).await?;
        if let Some(missing) = ids.iter().find(|id| !kinds.contains_key(*id)) {
            return Err(DirError::Invalid(ScimError::invalid_value(format!(
                "member {missing} is not a user or group of this organisation."
            ))));
        }
        Ok(kinds)
    }

    /// Creates a group with the members its document lists.
    pub async fn create_group(&self, t: &ScimTenant, body: Value) -> DirResult<GroupRecord> {
        let members = sent_members(&body)?.unwrap_or_default();
        let doc = normalize(KIND, body, &["members"])?;
        let kinds = self.member_kinds(t, &members).await?;
        let with_kinds: Vec<(String, MemberKind)> =
            members.iter().map(|m| (m.clone(), kinds[m])).collect();
        let id = crate::store::new_id();
        let now = self.clock.now_ms();
        let fresh = GroupRecord {
            id: id.clone(),
            display_name: String::new(),
            external_id: None,
            resource: String::new(),
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let w = Written::of(&fresh, Some(&doc))?;
        scim_groups::insert(&self.db, &t.id, &w.as_write(&id), &with_kinds, now)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(key) => w.taken(key),
                e => e.into(),
            })
    }

    /// Replaces a group's document (PUT). Its member list is replaced only when the document
    /// carries one (RFC 7644 §3.5.1 leaves unsent attributes to the server; clearing a large
    /// group by omission would be a nasty surprise).
    pub async fn replace_group(
        &self,
        t: &ScimTenant,
        id: &str,
        body: Value,
        pre: &Preconditions,
    ) -> DirResult<GroupRecord> {
        let rec = self.group(t, id).await?;
        pre.check(&etag(rec.version))?;
        let members = sent_members(&body)?;
        let doc = normalize(KIND, body, &["members"])?;
        if members.as_ref().is_some_and(|m| m.contains(&rec.id)) {
            return Err(DirError::Invalid(ScimError::invalid_value(
                "A group cannot be a member of itself.",
            )));
        }
        let ops = match &members {
            Some(ids) => vec![MemberOp::RemoveAll, MemberOp::Add(ids.clone())],
            None => Vec::new(),
        };
        let kinds = self
            .member_kinds(t, members.as_deref().unwrap_or(&[]))
            .await?;
        let expect = pre.pins_version().then_some(rec.version);
        self.save_group(t, &rec, Some(&doc), &ops, &kinds, expect)
            .await?
            .ok_or(DirError::Stale { kind: KIND })
    }

    /// Applies a PATCH. Member-only changes commute: Entra sends them for one group in
    /// parallel, and none depends on the others. Only a change of the group's own attributes
    /// (or a client `If-Match`) pins the version it was computed from; such a change is
    /// re-applied on a newer version when another write got in first.
    pub async fn patch_group(
        &self,
        t: &ScimTenant,
        id: &str,
        req: &PatchRequest,
        pre: &Preconditions,
    ) -> DirResult<GroupRecord> {
        super::until_written(KIND, pre, || async {
            let rec = self.group(t, id).await?;
            pre.check(&etag(rec.version))?;
            let mut doc = render(&rec, None, t);
            if let Some(o) = doc.as_object_mut() {
                strip_keys(o, &["meta"]);
            }
            let before = doc.clone();
            let changes = apply_group_patch(&mut doc, &req.operations)?;
            let mut ops = Vec::new();
            let mut added = Vec::new();
            for c in changes {
                match c {
                    MemberChange::Add(ids) => {
                        added.extend(ids.iter().cloned());
                        ops.push(MemberOp::Add(ids));
                    }
                    MemberChange::Remove(ids) => ops.push(MemberOp::Remove(ids)),
                    MemberChange::RemoveAll => ops.push(MemberOp::RemoveAll),
                    MemberChange::ReplaceAll(ids) => {
                        added.extend(ids.iter().cloned());
                        ops.push(MemberOp::RemoveAll);
                        ops.push(MemberOp::Add(ids));
                    }
                }
            }
            let kinds = self.member_kinds(t, &added).await?;
            if added.contains(&rec.id) {
                return Err(DirError::Invalid(ScimError::invalid_value(
                    "A group cannot be a member of itself.",
                )));
            }
            let doc_changed = doc != before;
            let expect = (doc_changed || pre.pins_version()).then_some(rec.version);
            let doc = doc_changed.then_some(&doc);
            self.save_group(t, &rec, doc, &ops, &kinds, expect).await
        })
        .await
    }

    /// Writes the group: its document (when given) and member changes, in one unit of work.
    /// `expect` pins the version (a moved row gives `None`).
    async fn save_group(
        &self,
        t: &ScimTenant,
        rec: &GroupRecord,
        doc: Option<&Value>,
        ops: &[MemberOp],
        kinds: &HashMap<String, MemberKind>,
        expect: Option<i64>,
    ) -> DirResult<Option<GroupRecord>> {
        let w = Written::of(rec, doc)?;
        let g = w.as_write(&rec.id);
        let now = self.clock.now_ms();
        match scim_groups::update(
            &self.db,
            &t.id,
            &rec.id,
            expect,
            doc.map(|_| &g),
            ops,
            kinds,
            now,
        )
        .await
        {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::Stale) => Ok(None),
            Err(StoreError::Conflict(key)) => Err(w.taken(key)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a group and its memberships (in other groups too).
    pub async fn delete_group(
        &self,
        t: &ScimTenant,
        id: &str,
        pre: &Preconditions,
    ) -> DirResult<()> {
        let rec = self.group(t, id).await?;
        pre.check(&etag(rec.version))?;
        super::found(scim_groups::delete(&self.db, &t.id, id).await, KIND, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_accept_objects_and_strings() {
        assert_eq!(
            member_ids(&json!([{"value": "a", "$ref": null}, "b"])).unwrap(),
            vec!["a", "b"]
        );
        assert!(member_ids(&json!([{"display": "x"}])).is_err());
        assert!(member_ids(&json!("a")).is_err());
    }

    #[test]
    fn a_put_without_members_says_so() {
        assert_eq!(sent_members(&json!({"displayName": "x"})).unwrap(), None);
        assert_eq!(
            sent_members(&json!({"Members": [{"value": "u"}]})).unwrap(),
            Some(vec!["u".to_string()])
        );
        assert!(sent_members(&json!({"members": 3})).is_err());
    }
}
