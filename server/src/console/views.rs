//! The console's directory pages (Users, Groups), the Provisioning log and provisioning health:
//! store rows turned into what the pages show. Every listing costs one page of rows.

use app::backend::{ClientAddr, ConsoleError};
use app::model::*;
use serde_json::{Map, Value};

use super::{Console, internal};
use crate::clock::display_time;
use crate::provlog::describe::{self, Operation};
use crate::provlog::{DAY_MS, DEFAULT_RETENTION_DAYS, HOUR_MS};
use crate::store::audit::AuditAction;
use crate::store::directory_view::{
    self as dv, COUNT_CAP, Cursor, SearchMode, UserListRow, UserQuery, UserSort, UserSource,
};
use crate::store::provlog::{self as logstore, ChainEnd, LogFilter, LogRow};
use crate::store::tenants;

/// Rows per page on every listing.
pub const PAGE: i64 = 50;
/// History entries shown on a user's page.
const HISTORY: i64 = 30;
/// Two of Entra's 40-minute cycles without a request: the health box warns.
pub const SILENT_AFTER_MS: i64 = 80 * 60 * 1000;

fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn count_text(n: i64, one: &str, many: &str) -> String {
    if n > COUNT_CAP {
        format!("More than {} {many}", thousands(COUNT_CAP))
    } else if n == 1 {
        format!("1 {one}")
    } else {
        format!("{} {many}", thousands(n))
    }
}

pub fn ago(now: i64, at: i64) -> String {
    let mins = (now - at).max(0) / 60_000;
    match mins {
        0 => "just now".into(),
        1 => "1 minute ago".into(),
        m if m < 120 => format!("{m} minutes ago"),
        m if m < 48 * 60 => format!("{} hours ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

fn duration_text(us: i64) -> String {
    if us < 1000 {
        "<1 ms".into()
    } else if us < 10_000_000 {
        format!("{} ms", us / 1000)
    } else {
        format!("{:.1} s", us as f64 / 1e6)
    }
}

fn status_of(code: &str) -> Option<dv::UserStatus> {
    match code {
        "active" => Some(dv::UserStatus::Active),
        "disabled" => Some(dv::UserStatus::Disabled),
        "deprovisioned" => Some(dv::UserStatus::Deprovisioned),
        _ => None,
    }
}

fn view_status(s: dv::UserStatus) -> UserStatus {
    match s {
        dv::UserStatus::Active => UserStatus::Active,
        dv::UserStatus::Disabled => UserStatus::Disabled,
        dv::UserStatus::Deprovisioned => UserStatus::Deprovisioned,
    }
}

fn source_label(source: &str) -> &'static str {
    if source == "scim" {
        "Microsoft Entra ID"
    } else {
        "Local"
    }
}

fn person_name(
    display: Option<&str>,
    given: Option<&str>,
    family: Option<&str>,
    user_name: &str,
) -> String {
    if let Some(d) = display.filter(|d| !d.trim().is_empty()) {
        return d.to_string();
    }
    let parts: Vec<&str> = [given, family].into_iter().flatten().collect();
    if parts.is_empty() {
        user_name.to_string()
    } else {
        parts.join(" ")
    }
}

fn user_row(r: &UserListRow) -> UserRowView {
    UserRowView {
        id: r.id.clone(),
        name: person_name(
            r.display_name.as_deref(),
            r.given_name.as_deref(),
            r.family_name.as_deref(),
            &r.user_name,
        ),
        user_name: r.user_name.clone(),
        email: r.email.clone().unwrap_or_default(),
        status: view_status(r.status()),
        source: source_label(&r.source).into(),
        last_change: display_time(r.updated_at),
    }
}

fn outcome_of(code: &str) -> LogOutcome {
    match code {
        "success" => LogOutcome::Success,
        "rejected" => LogOutcome::Rejected,
        _ => LogOutcome::Failure,
    }
}

fn target_link(r: &LogRow) -> Option<LinkView> {
    let id = r.target_id.as_ref()?;
    let base = match r.target_type.as_deref()? {
        "User" => "/users",
        "Group" => "/groups",
        _ => return None,
    };
    Some(LinkView {
        href: format!("{base}/{id}"),
        text: r.target_name.clone().unwrap_or_else(|| id.clone()),
    })
}

fn log_row(r: &LogRow) -> LogRowView {
    LogRowView {
        id: r.id.clone(),
        at: display_time_s(r.at),
        action: r.action.clone(),
        target: target_link(r),
        outcome: outcome_of(&r.outcome),
        status: r.status,
        error: r.error_detail.clone(),
        duration: duration_text(r.duration_us),
        client_addr: r.client_addr.clone(),
        in_bulk: r.parent_id.is_some(),
    }
}

/// Log times to the second: several requests share a minute.
fn display_time_s(ms: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| display_time(ms))
}

fn entry_view(r: &LogRow, operations: Vec<LogRowView>) -> LogEntryView {
    LogEntryView {
        row: log_row(r),
        method: r.method.clone(),
        path: r.path.clone(),
        scim_type: r.scim_type.clone(),
        request: r.request_body.as_deref().map(describe::shown_text),
        response: r.response_body.as_deref().map(describe::shown_text),
        parent: r.parent_id.clone(),
        operations,
    }
}

/// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD` (UTC) → ms.
fn parse_when(s: &str) -> Result<Option<i64>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let dt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let d = time::macros::format_description!("[year]-[month]-[day]");
    let at = time::PrimitiveDateTime::parse(s, &dt)
        .or_else(|_| time::Date::parse(s, &d).map(|d| d.midnight()))
        .map_err(|_| ())?;
    Ok(Some(
        (at.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64,
    ))
}

fn log_cursor(r: &LogRow) -> String {
    Cursor {
        key: r.at.to_string(),
        id: r.id.clone(),
    }
    .encode()
}

fn get_ci<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "Yes".into() } else { "No".into() }),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn fact(label: &str, value: Option<String>) -> Option<Fact> {
    value.map(|value| Fact {
        label: label.to_string(),
        value,
        href: None,
    })
}

/// A multi-valued attribute (emails, phones, addresses, roles…) as facts labelled by type.
fn multi(
    o: &Map<String, Value>,
    key: &str,
    noun: &str,
    render: fn(&Value) -> Option<String>,
) -> Vec<Fact> {
    let Some(Value::Array(items)) = get_ci(o, key) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let value = render(item)?;
            let kind = item
                .get("type")
                .and_then(Value::as_str)
                .map(|t| format!("{noun} ({t})"))
                .unwrap_or_else(|| noun.to_string());
            let primary = item.get("primary").and_then(Value::as_bool) == Some(true);
            Some(Fact {
                label: kind,
                value: if primary {
                    format!("{value} (primary)")
                } else {
                    value
                },
                href: None,
            })
        })
        .collect()
}

fn value_of(item: &Value) -> Option<String> {
    match item {
        Value::Object(o) => get_ci(o, "value")
            .or_else(|| get_ci(o, "display"))
            .and_then(text_of),
        other => text_of(other),
    }
}

fn address_of(item: &Value) -> Option<String> {
    let o = item.as_object()?;
    if let Some(f) = get_ci(o, "formatted").and_then(text_of) {
        return Some(f);
    }
    let parts: Vec<String> = [
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
    ]
    .iter()
    .filter_map(|k| get_ci(o, k).and_then(text_of))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_KEYS: [&str; 26] = [
    "schemas",
    "id",
    "meta",
    "groups",
    "password",
    "userName",
    "externalId",
    "active",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "emails",
    "phoneNumbers",
    "addresses",
    "ims",
    "photos",
    "roles",
    "entitlements",
    "x509Certificates",
    ENTERPRISE,
];

/// Flattened `a.b[type]` facts of any other attributes (custom extensions).
fn flat_facts(prefix: &str, v: &Value, out: &mut Vec<Fact>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flat_facts(&p, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                flat_facts(&format!("{prefix}[{}]", i + 1), x, out);
            }
        }
        other => {
            if let Some(t) = text_of(other) {
                out.push(Fact {
                    label: prefix.to_string(),
                    value: t,
                    href: None,
                });
            }
        }
    }
}

impl Console {
    pub(super) async fn users_view(
        &self,
        secret: &str,
        q: UserListQuery,
    ) -> Result<UserListView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let query = UserQuery {
            search: Some(q.q.trim().to_string()).filter(|t| !t.is_empty()),
            mode: if q.r#match == "contains" {
                SearchMode::Contains
            } else {
                SearchMode::Prefix
            },
            status: status_of(&q.status),
            source: match q.source.as_str() {
                "entra" => Some(UserSource::Entra),
                "local" => Some(UserSource::Local),
                _ => None,
            },
            sort: if q.sort == "changed" {
                UserSort::Changed
            } else {
                UserSort::Name
            },
            after: Cursor::decode(&q.after),
            limit: PAGE,
        };
        if query
            .search
            .as_ref()
            .is_some_and(|t| t.chars().count() > 200)
        {
            return Err(ConsoleError::Invalid(
                "Search for at most 200 characters.".into(),
            ));
        }
        let page = dv::users(db, &s.tenant_id, &query)
            .await
            .map_err(internal)?;
        // The count is of the whole result (not the page), capped; a contains search has none.
        let count = if query.mode == SearchMode::Contains && query.search.is_some() {
            String::new()
        } else {
            let n = dv::count_users(db, &s.tenant_id, &query)
                .await
                .map_err(internal)?;
            count_text(n, "user", "users")
        };
        Ok(UserListView {
            rows: page.rows.iter().map(user_row).collect(),
            next: page.next.map(|c| c.encode()),
            count_text: count,
            partial: page.partial,
        })
    }

    pub(super) async fn user_view(
        &self,
        secret: &str,
        id: &str,
    ) -> Result<UserDetailView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let Some(u) = dv::user(db, &s.tenant_id, id).await.map_err(internal)? else {
            return Err(ConsoleError::NotFound(
                "There is no such user in this organisation.".into(),
            ));
        };
        let doc: Map<String, Value> = serde_json::from_str(&u.resource).unwrap_or_default();
        let status = if u.deleted_at.is_some() {
            UserStatus::Deprovisioned
        } else if u.active {
            UserStatus::Active
        } else {
            UserStatus::Disabled
        };
        let name_obj = get_ci(&doc, "name").and_then(Value::as_object);
        let name_part = |k: &str| name_obj.and_then(|n| get_ci(n, k)).and_then(text_of);
        let name = person_name(
            u.display_name.as_deref(),
            u.given_name.as_deref(),
            u.family_name.as_deref(),
            &u.user_name,
        );
        let top = |k: &str| get_ci(&doc, k).and_then(text_of);

        let identity: Vec<Fact> = [
            fact("userName", Some(u.user_name.clone())),
            fact("Display name", u.display_name.clone()),
            fact(
                "First name",
                u.given_name.clone().or_else(|| name_part("givenName")),
            ),
            fact("Middle name", name_part("middleName")),
            fact(
                "Last name",
                u.family_name.clone().or_else(|| name_part("familyName")),
            ),
            fact("Full name", name_part("formatted")),
            fact("Prefix", name_part("honorificPrefix")),
            fact("Suffix", name_part("honorificSuffix")),
            fact("Nickname", top("nickName")),
            fact("External ID", u.external_id.clone()),
            fact("Status", Some(status.label().into())),
            fact("Source", Some(source_label(&u.source).into())),
            fact("Console admin", u.is_admin.then(|| "Yes".to_string())),
            fact("Created", Some(display_time(u.created_at))),
            fact("Last change", Some(display_time(u.updated_at))),
            fact("Deprovisioned", u.deleted_at.map(display_time)),
        ]
        .into_iter()
        .flatten()
        .collect();

        let mut contact = multi(&doc, "emails", "Email", value_of);
        if contact.is_empty()
            && let Some(e) = &u.email
        {
            contact.push(Fact {
                label: "Email".into(),
                value: e.clone(),
                href: None,
            });
        }
        contact.extend(multi(&doc, "phoneNumbers", "Phone", value_of));
        contact.extend(multi(&doc, "addresses", "Address", address_of));
        contact.extend(multi(&doc, "ims", "Messaging", value_of));

        let mut work: Vec<Fact> = [
            fact("Job title", top("title")),
            fact("User type", top("userType")),
            fact("Preferred language", top("preferredLanguage")),
            fact("Locale", top("locale")),
            fact("Time zone", top("timezone")),
            fact("Profile URL", top("profileUrl")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let ent = get_ci(&doc, ENTERPRISE).and_then(Value::as_object);
        let ent_text = |k: &str| ent.and_then(|e| get_ci(e, k)).and_then(text_of);
        work.extend(
            [
                fact("Employee ID", ent_text("employeeNumber")),
                fact("Department", ent_text("department")),
                fact("Division", ent_text("division")),
                fact("Organization", ent_text("organization")),
                fact("Cost center", ent_text("costCenter")),
            ]
            .into_iter()
            .flatten(),
        );
        let manager_id = ent
            .and_then(|e| get_ci(e, "manager"))
            .and_then(|m| match m {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => get_ci(o, "value")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            });
        if let Some(mid) = manager_id.filter(|m| !m.trim().is_empty()) {
            let names = dv::user_names(db, &s.tenant_id, std::slice::from_ref(&mid))
                .await
                .map_err(internal)?;
            work.push(match names.get(&mid) {
                Some((un, dn)) => Fact {
                    label: "Manager".into(),
                    value: dn.clone().unwrap_or_else(|| un.clone()),
                    href: Some(format!("/users/{mid}")),
                },
                None => Fact {
                    label: "Manager".into(),
                    value: format!("{mid} (not in BitaBIZ)"),
                    href: None,
                },
            });
        }
        let mut roles = multi(&doc, "roles", "Role", value_of);
        roles.extend(multi(&doc, "entitlements", "Entitlement", value_of));

        let mut custom = Vec::new();
        for (k, v) in &doc {
            if CORE_KEYS.iter().any(|c| k.eq_ignore_ascii_case(c)) {
                continue;
            }
            let label = if k.to_ascii_lowercase().starts_with("urn:") {
                // urn:ietf:params:scim:schemas:extension:Contoso:2.0:User → Contoso
                let parts: Vec<&str> = k.split(':').collect();
                parts
                    .iter()
                    .position(|p| p.eq_ignore_ascii_case("extension"))
                    .and_then(|i| parts.get(i + 1))
                    .map_or_else(|| k.clone(), |s| s.to_string())
            } else {
                k.clone()
            };
            flat_facts(&label, v, &mut custom);
        }

        let mut sections = vec![FactSection {
            title: "Identity".into(),
            facts: identity,
        }];
        for (title, facts) in [
            ("Contact", contact),
            ("Work", work),
            ("Roles", roles),
            ("Custom extension attributes", custom),
        ] {
            if !facts.is_empty() {
                sections.push(FactSection {
                    title: title.into(),
                    facts,
                });
            }
        }

        let groups = dv::groups_of_user(db, &s.tenant_id, &u.id, 200)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(gid, gname)| LinkView {
                href: format!("/groups/{gid}"),
                text: gname,
            })
            .collect();

        let (history, history_end) = self.history(&s.tenant_id, &u.id, u.created_at).await?;
        Ok(UserDetailView {
            id: u.id.clone(),
            name,
            user_name: u.user_name.clone(),
            status,
            source: source_label(&u.source).into(),
            sections,
            groups,
            history,
            history_end,
        })
    }

    /// What provisioning did to a user, newest first, with "from → to" for each change:
    /// each write's answer (the user after it) compared with the previous write's.
    async fn history(
        &self,
        tenant_id: &str,
        user_id: &str,
        created_at: i64,
    ) -> Result<(Vec<HistoryItem>, HistoryEnd), ConsoleError> {
        let db = &self.state.db;
        // Successful changes: the user's chain, in the order they were applied.
        let (chain, end) = logstore::user_chain(db, tenant_id, user_id, HISTORY as usize + 1)
            .await
            .map_err(internal)?;
        // Failed ones: the target index (a user's successful changes are not in it).
        let filter = LogFilter {
            target_id: Some(user_id.to_string()),
            operations: Operation::ALL
                .into_iter()
                .filter(|o| o.changes_user())
                .map(|o| o.code().to_string())
                .collect(),
            ..Default::default()
        };
        let failed = logstore::list(db, tenant_id, &filter, None, HISTORY + 1, true)
            .await
            .map_err(internal)?;
        // One more than shown: the oldest shown entry needs its predecessor's state.
        let mut rows = merge_newest_first(chain, failed);
        rows.truncate(HISTORY as usize + 1);
        // The creation is not in the target index; it is the oldest entry, needed when the
        // chain ended at the user's first logged change. Its request arrived at most a request
        // timeout before the user was stored.
        let window = self.state.settings.request_timeout.as_millis() as i64 + 10_000;
        if rows.len() as i64 <= HISTORY
            && end == ChainEnd::Start
            && let Some(created) = logstore::creation_of(db, tenant_id, user_id, created_at, window)
                .await
                .map_err(internal)?
        {
            rows.push(created);
        }
        // A gap ends the chain early: retention pruned an entry, or the entry was lost (a failed
        // write of the log, or a full queue past the changes it keeps), which is counted.
        let shown_end = if rows.len() as i64 > HISTORY {
            HistoryEnd::More
        } else if end == ChainEnd::Gap {
            HistoryEnd::Gap
        } else {
            HistoryEnd::Complete
        };
        let after_state = |r: &LogRow| -> Option<Value> {
            if r.outcome != "success" {
                return None;
            }
            r.response_body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .filter(|v| v.get("userName").is_some())
        };
        let mut items = Vec::new();
        for (i, r) in rows.iter().enumerate().take(HISTORY as usize) {
            let op = Operation::from_code(&r.operation).unwrap_or(Operation::Other);
            let what = match op {
                Operation::CreateUser => "Created",
                Operation::DisableUser => "Disabled",
                Operation::EnableUser => "Re-enabled",
                Operation::DeprovisionUser => "Deprovisioned",
                _ => "Updated",
            };
            let outcome = outcome_of(&r.outcome);
            let previous = rows[i + 1..].iter().find_map(after_state);
            let mut changes = Vec::new();
            let mut touched = Vec::new();
            match after_state(r) {
                Some(now) if op == Operation::CreateUser => {
                    changes = describe::flatten_user(&now)
                        .into_iter()
                        .map(|(k, v)| Change {
                            attribute: k,
                            from: None,
                            to: Some(v),
                        })
                        .collect();
                }
                Some(now) if previous.is_some() => {
                    let before = previous.as_ref().unwrap_or(&now);
                    changes = describe::diff_users(before, &now)
                        .into_iter()
                        .map(|(attribute, from, to)| Change {
                            attribute,
                            from,
                            to,
                        })
                        .collect();
                }
                _ if op != Operation::DeprovisionUser => {
                    touched = touched_paths(r.request_body.as_deref());
                }
                _ => {}
            }
            items.push(HistoryItem {
                entry_id: r.id.clone(),
                at: display_time_s(r.at),
                what: what.into(),
                outcome,
                changes,
                touched,
                error: r.error_detail.clone(),
            });
        }
        Ok((items, shown_end))
    }

    pub(super) async fn groups_view(
        &self,
        secret: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupListView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let search = Some(search.trim()).filter(|t| !t.is_empty());
        let page = dv::groups(
            db,
            &s.tenant_id,
            search,
            Cursor::decode(after).as_ref(),
            PAGE,
        )
        .await
        .map_err(internal)?;
        let count = if search.is_none() {
            let n = dv::count_groups(db, &s.tenant_id).await.map_err(internal)?;
            count_text(n, "group", "groups")
        } else {
            String::new()
        };
        Ok(GroupListView {
            rows: page
                .rows
                .into_iter()
                .map(|(g, n)| GroupRowView {
                    id: g.id,
                    name: g.display_name,
                    members: n,
                    last_change: display_time(g.updated_at),
                })
                .collect(),
            next: page.next.map(|c| c.encode()),
            count_text: count,
        })
    }

    pub(super) async fn group_view(
        &self,
        secret: &str,
        id: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupDetailView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let Some(g) = dv::group(db, &s.tenant_id, id).await.map_err(internal)? else {
            return Err(ConsoleError::NotFound(
                "There is no such group in this organisation.".into(),
            ));
        };
        let count = dv::member_counts(db, std::slice::from_ref(&g.id))
            .await
            .map_err(internal)?
            .get(&g.id)
            .copied()
            .unwrap_or(0);
        let after = Cursor::decode(after);
        let search = Some(search.trim()).filter(|t| !t.is_empty());
        let page = dv::group_members(db, &s.tenant_id, &g.id, search, after.as_ref(), PAGE)
            .await
            .map_err(internal)?;
        let nested = if after.is_none() && search.is_none() {
            dv::group_group_members(db, &g.id, 100)
                .await
                .map_err(internal)?
                .into_iter()
                .map(|(gid, name)| LinkView {
                    href: format!("/groups/{gid}"),
                    text: name,
                })
                .collect()
        } else {
            Vec::new()
        };
        let facts = [
            fact("Name", Some(g.display_name.clone())),
            fact("External ID", g.external_id.clone()),
            fact("Members", Some(thousands(count))),
            fact("Created", Some(display_time(g.created_at))),
            fact("Last change", Some(display_time(g.updated_at))),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(GroupDetailView {
            id: g.id.clone(),
            name: g.display_name,
            facts,
            member_count: count,
            members: page.rows.iter().map(user_row).collect(),
            nested_groups: nested,
            next: page.next.map(|c| c.encode()),
        })
    }

    pub(super) async fn log_view(
        &self,
        secret: &str,
        q: LogQuery,
    ) -> Result<LogView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let now = self.now();
        let mut notice = None;
        let mut filter = LogFilter {
            outcome: Some(q.outcome.clone())
                .filter(|o| ["success", "failure", "rejected"].contains(&o.as_str())),
            operation: Operation::from_code(&q.operation).map(|o| o.code().to_string()),
            ..Default::default()
        };
        filter.from = match q.range.as_str() {
            "1h" => Some(now - HOUR_MS),
            "24h" => Some(now - DAY_MS),
            "7d" => Some(now - 7 * DAY_MS),
            "30d" => Some(now - 30 * DAY_MS),
            _ => None,
        };
        match (parse_when(&q.from), parse_when(&q.to)) {
            (Ok(from), Ok(to)) => {
                if let Some(f) = from {
                    filter.from = Some(filter.from.map_or(f, |x| x.max(f)));
                }
                filter.to = to;
            }
            _ => {
                notice = Some(
                    "A time in the filter is not a date: use the date picker or YYYY-MM-DD HH:MM (UTC)."
                        .to_string(),
                );
            }
        }
        let before =
            Cursor::decode(&q.before).and_then(|c| c.key.parse::<i64>().ok().map(|at| (at, c.id)));
        let mut rows = logstore::list(db, &s.tenant_id, &filter, before, PAGE + 1, false)
            .await
            .map_err(internal)?;
        let more = rows.len() as i64 > PAGE;
        rows.truncate(PAGE as usize);
        let retention_days = logstore::retention_days(db, &s.tenant_id)
            .await
            .map_err(internal)?
            .unwrap_or(DEFAULT_RETENTION_DAYS);
        Ok(LogView {
            next: if more {
                rows.last().map(log_cursor)
            } else {
                None
            },
            rows: rows.iter().map(log_row).collect(),
            retention_days,
            operations: Operation::ALL
                .into_iter()
                .map(|o| (o.code().to_string(), o.label().to_string()))
                .collect(),
            notice,
        })
    }

    pub(super) async fn log_entry_view(
        &self,
        secret: &str,
        id: &str,
    ) -> Result<LogEntryView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let Some(r) = logstore::get(db, &s.tenant_id, id)
            .await
            .map_err(internal)?
        else {
            return Err(ConsoleError::NotFound(
                "That log entry does not exist (it may be older than the retention).".into(),
            ));
        };
        let ops = if r.operation == Operation::Bulk.code() {
            let f = LogFilter {
                parent_id: Some(r.id.clone()),
                ..Default::default()
            };
            let mut ops = logstore::list(db, &s.tenant_id, &f, None, 1000, false)
                .await
                .map_err(internal)?;
            ops.reverse();
            ops.iter().map(log_row).collect()
        } else {
            Vec::new()
        };
        Ok(entry_view(&r, ops))
    }

    pub(super) async fn set_retention(
        &self,
        secret: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        if !(1..=365).contains(&days) {
            return Err(ConsoleError::Invalid(
                "Keep the log between 1 and 365 days.".into(),
            ));
        }
        logstore::set_retention_days(&self.state.db, &s.tenant_id, days)
            .await
            .map_err(internal)?;
        let who = s.email.clone().unwrap_or_else(|| "admin".into());
        self.audit(
            &s.tenant_id,
            &who,
            AuditAction::LogRetentionChanged,
            &format!("{days} days"),
            client,
        )
        .await
    }

    pub(super) async fn health_view(&self, secret: &str) -> Result<HealthView, ConsoleError> {
        let s = self.require(secret).await?;
        self.health_of(&s.tenant_id, true).await
    }

    /// Health from the hourly counters (never the raw log), plus the last error (one seek).
    pub(super) async fn health_of(
        &self,
        tenant_id: &str,
        with_error: bool,
    ) -> Result<HealthView, ConsoleError> {
        let db = &self.state.db;
        let now = self.now();
        let tenant = tenants::by_id(db, tenant_id).await.map_err(internal)?;
        let this_hour = now - now.rem_euclid(HOUR_MS);
        let today = now - now.rem_euclid(DAY_MS);
        let first_day = today - 29 * DAY_MS;
        let rows = logstore::hours(
            db,
            tenant_id,
            first_day.min(this_hour - 23 * HOUR_MS),
            this_hour + HOUR_MS,
        )
        .await
        .map_err(internal)?;
        let mut hourly: Vec<ChartBar> = (0..24)
            .map(|i| {
                let h = this_hour - (23 - i) * HOUR_MS;
                ChartBar {
                    label: hour_label(h),
                    requests: 0,
                    failures: 0,
                }
            })
            .collect();
        let mut daily: Vec<ChartBar> = (0..30)
            .map(|i| ChartBar {
                label: day_label(first_day + i * DAY_MS),
                requests: 0,
                failures: 0,
            })
            .collect();
        let (mut req24, mut fail24, mut rej24, mut lost24) = (0, 0, 0, 0);
        for r in &rows {
            let h = (r.hour - (this_hour - 23 * HOUR_MS)) / HOUR_MS;
            if (0..24).contains(&h) {
                let bar = &mut hourly[h as usize];
                bar.requests += r.requests;
                bar.failures += r.failures + r.rejected;
                req24 += r.requests;
                fail24 += r.failures;
                rej24 += r.rejected;
                lost24 += r.dropped;
            }
            let d = (r.hour - first_day).div_euclid(DAY_MS);
            if (0..30).contains(&d) {
                let bar = &mut daily[d as usize];
                bar.requests += r.requests;
                bar.failures += r.failures + r.rejected;
            }
        }
        let last = logstore::last_request_at(db, tenant_id)
            .await
            .map_err(internal)?;
        let last_error = if with_error {
            let f = logstore::latest_with_outcome(db, tenant_id, "failure")
                .await
                .map_err(internal)?;
            let r = logstore::latest_with_outcome(db, tenant_id, "rejected")
                .await
                .map_err(internal)?;
            let newest = match (f, r) {
                (Some(a), Some(b)) => Some(if (b.at, &b.id) > (a.at, &a.id) { b } else { a }),
                (a, b) => a.or(b),
            };
            newest.map(|e| entry_view(&e, Vec::new()))
        } else {
            None
        };
        Ok(HealthView {
            enabled: tenant.provisioning_enabled,
            last_request: last.map(display_time_s),
            last_request_ago: last.map(|t| ago(now, t)),
            silent: tenant.provisioning_enabled && last.is_none_or(|t| now - t > SILENT_AFTER_MS),
            requests_24h: req24,
            failures_24h: fail24,
            rejected_24h: rej24,
            lost_24h: lost24,
            last_error,
            hourly,
            daily,
        })
    }

    /// Home's one line.
    pub(super) async fn health_summary(&self, tenant_id: &str) -> Result<String, ConsoleError> {
        let h = self.health_of(tenant_id, false).await?;
        if !h.enabled {
            return Ok("Automatic user provisioning is disabled.".into());
        }
        let last = match &h.last_request_ago {
            Some(a) => format!("last request {a}"),
            None => "no request received yet".into(),
        };
        let warn = if h.silent && h.last_request_ago.is_some() {
            " (silent for more than 80 minutes)"
        } else {
            ""
        };
        Ok(format!(
            "Provisioning enabled · {last}{warn} · {} requests, {} failures, {} rejected in the last 24 hours",
            thousands(h.requests_24h),
            thousands(h.failures_24h),
            thousands(h.rejected_24h)
        ))
    }
}

/// A user's changes, newest first: its chain (in the order the changes were applied, kept as
/// it is) with the failed changes placed by time; an entry in both is shown once.
fn merge_newest_first(chain: Vec<LogRow>, failed: Vec<LogRow>) -> Vec<LogRow> {
    let in_chain: std::collections::HashSet<String> = chain.iter().map(|r| r.id.clone()).collect();
    let mut failed = failed
        .into_iter()
        .filter(|r| !in_chain.contains(&r.id))
        .peekable();
    let mut out = Vec::with_capacity(chain.len() + failed.size_hint().0);
    for r in chain {
        while let Some(f) = failed.next_if(|f| (f.at, &f.id) > (r.at, &r.id)) {
            out.push(f);
        }
        out.push(r);
    }
    out.extend(failed);
    out
}

fn hour_label(ms: i64) -> String {
    let fmt = time::macros::format_description!("[hour]:00");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn day_label(ms: i64) -> String {
    let fmt = time::macros::format_description!("[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// The attributes a PATCH or PUT named (when no earlier state is left to compare with).
fn touched_paths(request: Option<&str>) -> Vec<String> {
    let Some(v) = request.and_then(|b| serde_json::from_str::<Value>(b).ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(ops) = v.get("Operations").and_then(Value::as_array) {
        for op in ops {
            match op.get("path").and_then(Value::as_str) {
                Some(p) => out.push(describe::short_path(p)),
                None => {
                    if let Some(o) = op.get("value").and_then(Value::as_object) {
                        out.extend(o.keys().map(|k| describe::short_path(k)));
                    }
                }
            }
        }
    } else {
        out = describe::flatten_user(&v)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_keeps_the_chains_order_and_places_failures_by_time() {
        let row = |id: &str, at: i64| LogRow {
            id: id.into(),
            at,
            ..Default::default()
        };
        // B arrived after A but was applied before it; B also failed after writing.
        let chain = vec![row("a", 30), row("b", 31), row("c", 10)];
        let failed = vec![row("f", 40), row("b", 31), row("g", 25), row("h", 5)];
        let ids: Vec<String> = merge_newest_first(chain, failed)
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["f", "a", "b", "g", "c", "h"]);
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(
            count_text(COUNT_CAP + 1, "user", "users"),
            "More than 10,000 users"
        );
        assert_eq!(count_text(1, "user", "users"), "1 user");
        assert_eq!(ago(10 * 60_000, 0), "10 minutes ago");
        assert_eq!(ago(3 * 3_600_000, 0), "3 hours ago");
        assert_eq!(duration_text(500), "<1 ms");
        assert_eq!(duration_text(12_345), "12 ms");
        assert_eq!(parse_when("2026-01-02T03:04"), Ok(Some(1_767_323_040_000)));
        assert_eq!(parse_when(""), Ok(None));
        assert!(parse_when("yesterday").is_err());
    }
}
