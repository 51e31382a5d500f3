//! Users: the connector's rules and the operations on them. A user needs `userName`, an email,
//! `name.givenName` and `name.familyName`; a password is never stored; deleting deprovisions
//! (the row stays, marked deleted, out of its groups); an organisation keeps an active admin.

use serde_json::{Value, json};

use super::{DirError, DirResult, Directory, LogLink, Preconditions, ScimTenant};
use crate::scim::error::{ScimError, ScimType};
use crate::scim::patch::{PatchRequest, apply_patch};
use crate::scim::resource::{etag, meta, normalize, stored_doc, strip_keys};
use crate::scim::schema::ResourceKind;
use crate::store::scim_users::{self, SearchIndex, UserColumns, UserRecord};
use crate::store::{StoreError, UniqueKey};

const KIND: ResourceKind = ResourceKind::User;

/// The SCIM document of a stored user: the client's document with the authoritative columns,
/// the derived `groups` and `meta`.
pub fn render(rec: &UserRecord, groups: &[(String, String)], t: &ScimTenant) -> Value {
    let mut doc = stored_doc(&rec.resource);
    doc.insert("id".into(), json!(rec.id));
    doc.insert("userName".into(), json!(rec.user_name));
    doc.insert("active".into(), json!(rec.active));
    if let Some(x) = &rec.external_id {
        doc.insert("externalId".into(), json!(x));
    }
    // Accounts made in the console have no SCIM document yet: show what the columns know.
    if !doc.contains_key("name") && (rec.given_name.is_some() || rec.family_name.is_some()) {
        let mut name = serde_json::Map::new();
        if let Some(g) = &rec.given_name {
            name.insert("givenName".into(), json!(g));
        }
        if let Some(f) = &rec.family_name {
            name.insert("familyName".into(), json!(f));
        }
        doc.insert("name".into(), Value::Object(name));
    }
    if !doc.contains_key("displayName")
        && let Some(d) = &rec.display_name
    {
        doc.insert("displayName".into(), json!(d));
    }
    if !doc.contains_key("emails")
        && let Some(e) = &rec.email
    {
        doc.insert(
            "emails".into(),
            json!([{ "value": e, "type": "work", "primary": true }]),
        );
    }
    if !doc.contains_key("schemas") {
        doc.insert("schemas".into(), json!([KIND.core_schema().id]));
    }
    if !groups.is_empty() {
        let list: Vec<Value> = groups
            .iter()
            .map(|(id, name)| {
                json!({ "value": id, "$ref": format!("{}/Groups/{id}", t.base_url), "display": name, "type": "direct" })
            })
            .collect();
        doc.insert("groups".into(), Value::Array(list));
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

fn non_empty(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A string that is not blank, kept as sent (the console and member lists show exactly what the
/// document holds, and the search index compares that).
fn as_sent(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}

fn get_ci<'a>(obj: &'a Value, key: &str) -> &'a Value {
    obj.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .unwrap_or(&Value::Null)
}

/// The indexed columns of a document, enforcing the connector's mandatory attributes:
/// userName, an email, name.givenName and name.familyName.
/// A new user as the store writes it, built from a client's document (POST /Users): what
/// [`Directory::create_user`] inserts, and what bulk loads (the benchmark's seeding, tests of
/// large organisations) hand to `scim_users::insert_many`.
pub struct NewUserDoc {
    pub id: String,
    pub cols: UserColumns,
    pub resource: String,
    pub ix: SearchIndex,
}

impl NewUserDoc {
    /// Checks and normalises `body` as a POST would, and gives the user a new id.
    pub fn of(body: Value, now: i64) -> Result<NewUserDoc, ScimError> {
        let doc = normalize(KIND, body, &["groups"])?;
        let cols = columns(&doc)?;
        let resource = storable(&doc);
        let id = crate::store::new_user_id();
        let ix = search_index(&UserRecord::created(id.clone(), &cols, &resource, now));
        Ok(NewUserDoc {
            id,
            cols,
            resource,
            ix,
        })
    }

    /// The row of a bulk load.
    pub fn row(&self) -> scim_users::NewUser<'_> {
        scim_users::NewUser {
            id: &self.id,
            cols: &self.cols,
            resource: &self.resource,
            ix: &self.ix,
        }
    }
}

pub fn columns(doc: &Value) -> Result<UserColumns, ScimError> {
    user_columns(doc, true)
}

/// As [`columns`]; `names_required` is false for a console admin, whose account was made with a
/// display name only: SCIM may update it (Entra links an admin's account) without first sending
/// a given and family name.
fn user_columns(doc: &Value, names_required: bool) -> Result<UserColumns, ScimError> {
    let missing = |attr: &str| {
        ScimError::invalid_value(format!(
            "{attr} is required by BitaBIZ and is missing or empty."
        ))
    };
    let user_name = non_empty(get_ci(doc, "userName")).ok_or_else(|| missing("userName"))?;
    let name = get_ci(doc, "name");
    let given_name = as_sent(get_ci(name, "givenName"));
    let family_name = as_sent(get_ci(name, "familyName"));
    if names_required {
        given_name
            .as_ref()
            .ok_or_else(|| missing("name.givenName"))?;
        family_name
            .as_ref()
            .ok_or_else(|| missing("name.familyName"))?;
    }
    let emails: Vec<&Value> = get_ci(doc, "emails")
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let email_of = |pred: &dyn Fn(&Value) -> bool| {
        emails
            .iter()
            .filter(|e| pred(e))
            .find_map(|e| non_empty(get_ci(e, "value")))
    };
    // The console shows the work email, else the primary one, else the first.
    let email = email_of(&|e| {
        get_ci(e, "type")
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("work"))
    })
    .or_else(|| email_of(&|e| get_ci(e, "primary").as_bool() == Some(true)))
    .or_else(|| email_of(&|_| true))
    .ok_or_else(|| missing("emails (at least one email address)"))?;
    let active = match get_ci(doc, "active") {
        Value::Bool(b) => *b,
        Value::Null => true,
        Value::String(s) if s.eq_ignore_ascii_case("true") => true,
        Value::String(s) if s.eq_ignore_ascii_case("false") => false,
        other => {
            return Err(ScimError::invalid_value(format!(
                "active must be a boolean, got {other}."
            )));
        }
    };
    Ok(UserColumns {
        user_name,
        external_id: non_empty(get_ci(doc, "externalId")),
        given_name,
        family_name,
        display_name: as_sent(get_ci(doc, "displayName")),
        email: Some(email),
        active,
    })
}

/// What a stored document keeps: the document minus what the server derives, and minus any
/// `password` a client sends (BitaBIZ users sign in through SSO; a SCIM password would
/// otherwise sit in the database in clear).
pub fn storable(doc: &Value) -> String {
    let mut d = doc.clone();
    if let Some(o) = d.as_object_mut() {
        strip_keys(o, &["id", "meta", "groups", "password"]);
    }
    d.to_string()
}

/// The search index of a user as SCIM renders it (without `groups` and `meta`, which the
/// database answers from memberships and columns).
pub fn search_index(rec: &UserRecord) -> SearchIndex {
    let none = ScimTenant {
        id: String::new(),
        slug: String::new(),
        base_url: String::new(),
    };
    let ix = crate::scim::index::build(&render(rec, &[], &none), KIND);
    // A column stands in for the index only when the attribute has exactly one string value.
    let single = |key: &str| match ix["v"][key].as_array().map(Vec::as_slice) {
        Some([Value::String(s)]) => Some(s.clone()),
        _ => None,
    };
    SearchIndex {
        display_name_lc: single("displayname"),
        given_name_lc: single("name.givenname"),
        family_name_lc: single("name.familyname"),
        doc: ix.to_string(),
    }
}

/// The key that collided, with the value the client sent for it.
fn taken(key: UniqueKey, cols: &UserColumns) -> DirError {
    let value = match key {
        UniqueKey::ExternalId => cols.external_id.clone().unwrap_or_default(),
        _ => cols.user_name.clone(),
    };
    DirError::Taken {
        kind: KIND,
        key,
        value,
    }
}

impl Directory {
    /// A live user of the organisation.
    pub async fn user(&self, t: &ScimTenant, id: &str) -> DirResult<UserRecord> {
        super::found(scim_users::get(&self.db, &t.id, id).await, KIND, id)
    }

    /// Creates a user from a client's document (`groups` in it is ignored: it is derived).
    pub async fn create_user(&self, t: &ScimTenant, body: Value) -> DirResult<UserRecord> {
        let now = self.clock.now_ms();
        let u = NewUserDoc::of(body, now)?;
        scim_users::insert(
            &self.db,
            self.writes.as_ref(),
            &t.id,
            &u.id,
            &u.cols,
            &u.resource,
            &u.ix,
            now,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(key) => taken(key, &u.cols),
            e => e.into(),
        })
    }

    /// Replaces a user's document (PUT). Last writer wins unless the client pinned a version.
    pub async fn replace_user(
        &self,
        t: &ScimTenant,
        id: &str,
        body: Value,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<UserRecord> {
        let rec = self.user(t, id).await?;
        pre.check(&etag(rec.version))?;
        if let Some((_, sent)) = body
            .as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("id")))
            && sent.as_str().is_some_and(|s| s != id)
        {
            return Err(DirError::Invalid(ScimError::bad_request(
                ScimType::Mutability,
                "id is read-only and cannot be changed.",
            )));
        }
        let doc = normalize(KIND, body, &["groups"])?;
        // Written over the version read, so only what changes is written; if the row has moved
        // on, over whatever it holds now (last writer wins) unless the client pinned a version.
        if let Some(saved) = self
            .write_user(t, &rec, &doc, Some(rec.version), link)
            .await?
        {
            return Ok(saved);
        }
        if pre.pins_version() {
            return Err(DirError::Stale { kind: KIND });
        }
        self.write_user(t, &rec, &doc, None, link)
            .await?
            .ok_or(DirError::Stale { kind: KIND })
    }

    /// Applies a PATCH. Without `If-Match`, a concurrent write in between makes it re-read and
    /// re-apply on the newer version, so parallel attribute changes never lose one.
    pub async fn patch_user(
        &self,
        t: &ScimTenant,
        id: &str,
        req: &PatchRequest,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<UserRecord> {
        super::until_written(KIND, pre, || async {
            let rec = self.user(t, id).await?;
            pre.check(&etag(rec.version))?;
            let mut doc = render(&rec, &[], t);
            if let Some(o) = doc.as_object_mut() {
                strip_keys(o, &["meta"]);
            }
            apply_patch(&mut doc, &req.operations, KIND)?;
            self.write_user(t, &rec, &doc, Some(rec.version), link)
                .await
        })
        .await
    }

    /// Writes `doc` over `rec`; `None` when `expect` was given and the row has moved on.
    async fn write_user(
        &self,
        t: &ScimTenant,
        rec: &UserRecord,
        doc: &Value,
        expect: Option<i64>,
        link: &LogLink,
    ) -> DirResult<Option<UserRecord>> {
        let cols = user_columns(doc, !rec.is_admin)?;
        let now = self.clock.now_ms();
        let resource = storable(doc);
        let ix = search_index(&UserRecord::created(rec.id.clone(), &cols, &resource, now));
        // The replaced row's index, only where the update can use it.
        let was_ix = (expect == Some(rec.version) && scim_users::writes_only_changes(&self.db))
            .then(|| search_index(rec));
        let was = was_ix.as_ref().map(|ix| scim_users::Replaced { rec, ix });
        // An admin signs in with this address: the organisation must see the change, and the
        // entry commits with it.
        let email_change = (rec.is_admin && cols.email != rec.email).then(|| {
            format!(
                "Sign-in email of admin {} changed by SCIM provisioning: {} → {}",
                cols.user_name,
                rec.email.as_deref().unwrap_or("(none)"),
                cols.email.as_deref().unwrap_or("(none)")
            )
        });
        let audit = email_change
            .as_deref()
            .map(|detail| crate::store::audit::NewAuditEntry {
                tenant_id: &t.id,
                actor: "scim",
                action: crate::store::audit::AuditAction::AdminEmailChanged,
                detail,
                client_addr: "",
            });
        match scim_users::update(
            &self.db,
            self.writes.as_ref(),
            &t.id,
            &rec.id,
            expect,
            was.as_ref(),
            &cols,
            &resource,
            &ix,
            audit,
            link.entry_id(),
            now,
        )
        .await
        {
            Ok(w) => {
                link.written_after(w.prev_entry);
                Ok(Some(w.user))
            }
            Err(StoreError::Stale) => Ok(None),
            Err(StoreError::Conflict(key)) => Err(taken(key, &cols)),
            Err(e) => Err(e.into()),
        }
    }

    /// Deprovisions a user: kept (for the console and audit), marked deleted and inactive, out
    /// of its groups; SCIM no longer finds it and its userName is free again.
    pub async fn deprovision_user(
        &self,
        t: &ScimTenant,
        id: &str,
        pre: &Preconditions,
        link: &LogLink,
    ) -> DirResult<()> {
        let rec = self.user(t, id).await?;
        pre.check(&etag(rec.version))?;
        let now = self.clock.now_ms();
        let prev = super::found(
            scim_users::deprovision(&self.db, &t.id, id, link.entry_id(), now).await,
            KIND,
            id,
        )?;
        link.written_after(prev);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_derived_attributes_are_never_stored() {
        let doc = json!({"userName": "a", "password": "hunter2hunter2", "Password": "x", "groups": [], "meta": {}});
        let stored = storable(&doc);
        assert!(!stored.contains("hunter2"), "{stored}");
        assert!(!stored.to_lowercase().contains("password"), "{stored}");
        assert!(!stored.contains("groups") && !stored.contains("meta"));
        assert!(stored.contains("userName"));
    }

    #[test]
    fn mandatory_attributes_are_named() {
        let ok = json!({"userName": "a@b.c", "name": {"givenName": "A", "familyName": "B"},
                        "emails": [{"value": "home@b.c", "type": "home"}, {"value": "w@b.c", "type": "work"}]});
        let c = columns(&ok).unwrap();
        assert_eq!(c.email.as_deref(), Some("w@b.c"));
        assert!(c.active);
        for (drop, named) in [
            ("userName", "userName"),
            ("name", "name.givenName"),
            ("emails", "emails"),
        ] {
            let mut d = ok.clone();
            d.as_object_mut().unwrap().remove(drop);
            let e = columns(&d).unwrap_err();
            assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
            assert!(e.detail.contains(named), "{}", e.detail);
        }
        let mut d = ok.clone();
        d["name"]["familyName"] = json!("  ");
        assert!(columns(&d).unwrap_err().detail.contains("name.familyName"));
        let mut d = ok;
        d["active"] = json!("False");
        assert!(!columns(&d).unwrap().active);
    }

    #[test]
    fn a_collision_names_the_key_and_the_value_sent() {
        let cols = UserColumns {
            user_name: "alice@x".into(),
            external_id: Some("ext-1".into()),
            ..Default::default()
        };
        for (key, value) in [
            (UniqueKey::UserName, "alice@x"),
            (UniqueKey::ExternalId, "ext-1"),
        ] {
            match taken(key.clone(), &cols) {
                DirError::Taken {
                    key: k, value: v, ..
                } => {
                    assert_eq!((k, v.as_str()), (key, value));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
