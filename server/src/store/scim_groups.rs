//! SCIM groups. Members are rows of `group_members`: adding one member is one insert, whatever
//! the group's size.

use super::{Db, StoreError, StoreResult, on_db, on_work};
use std::collections::{HashMap, HashSet};

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct GroupRecord {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub kind: MemberKind,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberKind::User => "User",
            MemberKind::Group => "Group",
        }
    }
}

/// A change to a group's member list, applied in order inside one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
}

pub const COLUMNS: &str =
    "id, display_name, external_id, resource, version, created_at, updated_at";

/// Members written per statement: one statement per member made a 10k-member PATCH take
/// seconds; 500 rows (1001 parameters) stays far below both databases' parameter limits.
const MEMBER_CHUNK: usize = 500;

/// `$first, $first+1, ...` (`n` placeholders).
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts `n` members of the group bound as `$1`; each row binds (member_id, member_type).
fn insert_members_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3))
        .collect();
    format!(
        "INSERT INTO group_members (group_id, member_id, member_type) VALUES {} \
         ON CONFLICT (group_id, member_id) DO NOTHING",
        rows.join(", ")
    )
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> StoreResult<GroupRecord> {
    by_ids(db, tenant_id, &[id.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)
}

/// Which of `ids` are live users or groups of the tenant, and which kind each is.
pub async fn resolve_members(
    db: &Db,
    tenant_id: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, MemberKind>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        // Looked up by primary key only, the tenant checked here: with `tenant_id = $1` in the
        // WHERE clause SQLite walks the tenant's whole user index for every chunk (it has no
        // statistics telling it that 500 key lookups are cheaper), which made adding 10k
        // members to a group of a 100k-user tenant take seconds.
        let marks = placeholders(1, chunk.len());
        let sql = format!(
            "SELECT id, tenant_id, 'User' FROM users WHERE id IN ({marks}) AND deleted_at IS NULL \
             UNION ALL SELECT id, tenant_id, 'Group' FROM scim_groups WHERE id IN ({marks})"
        );
        let rows: Vec<(String, String, String)> = on_db!(db, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.fetch_all(p).await
        })?;
        for (id, tenant, kind) in rows {
            if tenant != tenant_id {
                continue;
            }
            out.insert(
                id,
                if kind == "User" {
                    MemberKind::User
                } else {
                    MemberKind::Group
                },
            );
        }
    }
    Ok(out)
}

pub struct GroupWrite<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    /// The search index (`scim::index`).
    pub search: &'a str,
    pub external_id: Option<&'a str>,
    pub resource: &'a str,
}

/// Creates a group with its initial members (already resolved to kinds) in one transaction.
pub async fn insert(
    db: &Db,
    tenant_id: &str,
    g: &GroupWrite<'_>,
    members: &[(String, MemberKind)],
    now: i64,
) -> StoreResult<GroupRecord> {
    let id = g.id.to_string();
    let sql = format!(
        "INSERT INTO scim_groups (id, tenant_id, display_name, display_name_lc, external_id, resource, \
         version, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, {}) \
         RETURNING {COLUMNS}",
        db.json_param(8)
    );
    let mut w = db.begin_work().await?;
    let created = on_work!(w, |tx| {
        let created: GroupRecord = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&id)
            .bind(tenant_id)
            .bind(g.display_name)
            .bind(g.display_name.to_lowercase())
            .bind(g.external_id)
            .bind(g.resource)
            .bind(now)
            .bind(g.search)
            .fetch_one(&mut *tx)
            .await?;
        for chunk in members.chunks(MEMBER_CHUNK) {
            let sql = insert_members_sql(chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&id);
            for (mid, kind) in chunk {
                q = q.bind(mid).bind(kind.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        Ok::<_, StoreError>(created)
    })?;
    w.commit().await?;
    Ok(created)
}

/// Updates the group's document (when `g` is given) and applies member changes, all in one
/// transaction, if the group is still at `version`. `kinds` gives the kind of every member id
/// that `ops` adds.
// The arguments are one write (row, expected version, document, member changes, time); a
// struct for a single caller would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &Db,
    tenant_id: &str,
    id: &str,
    version: Option<i64>,
    g: Option<&GroupWrite<'_>>,
    ops: &[MemberOp],
    kinds: &HashMap<String, MemberKind>,
    now: i64,
) -> StoreResult<GroupRecord> {
    let doc_sql = format!(
        "UPDATE scim_groups SET display_name = $1, display_name_lc = $2, external_id = $3, \
         resource = $4, version = version + 1, updated_at = $5, search = {} \
         WHERE tenant_id = $6 AND id = $7 AND ($8 = 0 OR version = $8) RETURNING {COLUMNS}",
        db.json_param(9)
    );
    let version = version.unwrap_or(0);
    let lock = match db {
        Db::Postgres(_) => " FOR SHARE",
        Db::Sqlite(_) => "",
    };
    let bump_sql = format!(
        "UPDATE scim_groups SET version = version + 1, updated_at = $1 \
         WHERE tenant_id = $2 AND id = $3 AND ($4 = 0 OR version = $4) RETURNING {COLUMNS}"
    );
    let mut w = db.begin_work().await?;
    // The group as this write leaves it (members aside), returned by the write itself.
    let written = on_work!(w, |tx| {
        let written: Option<GroupRecord> = match g {
            Some(g) => {
                sqlx::query_as(sqlx::AssertSqlSafe(doc_sql.as_str()))
                    .bind(g.display_name)
                    .bind(g.display_name.to_lowercase())
                    .bind(g.external_id)
                    .bind(g.resource)
                    .bind(now)
                    .bind(tenant_id)
                    .bind(id)
                    .bind(version)
                    .bind(g.search)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            None => {
                sqlx::query_as(sqlx::AssertSqlSafe(bump_sql.as_str()))
                    .bind(now)
                    .bind(tenant_id)
                    .bind(id)
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        let Some(written) = written else {
            return Err(StoreError::Stale);
        };
        for op in ops {
            match op {
                MemberOp::Add(ids) => {
                    for chunk in ids.chunks(MEMBER_CHUNK) {
                        // A user deprovisioned after it was resolved must not become a member:
                        // re-check inside the transaction, holding the user rows (PostgreSQL) so
                        // a concurrent deprovision waits and then removes what this adds.
                        let users: Vec<&String> = chunk
                            .iter()
                            .filter(|m| kinds.get(*m) != Some(&MemberKind::Group))
                            .collect();
                        let live: HashSet<String> = if users.is_empty() {
                            HashSet::new()
                        } else {
                            let sql = format!(
                                "SELECT id FROM users WHERE id IN ({}) AND deleted_at IS NULL{lock}",
                                placeholders(1, users.len())
                            );
                            let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()));
                            for u in &users {
                                q = q.bind(u.as_str());
                            }
                            let found: Vec<String> = q.fetch_all(&mut *tx).await?;
                            found.into_iter().collect()
                        };
                        let keep: Vec<&String> = chunk
                            .iter()
                            .filter(|m| {
                                kinds.get(*m) == Some(&MemberKind::Group) || live.contains(*m)
                            })
                            .collect();
                        if keep.is_empty() {
                            continue;
                        }
                        let sql = insert_members_sql(keep.len());
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id);
                        for mid in keep {
                            let kind = kinds.get(mid).copied().unwrap_or(MemberKind::User);
                            q = q.bind(mid).bind(kind.as_str());
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                MemberOp::Remove(ids) => {
                    for chunk in ids.chunks(MEMBER_CHUNK) {
                        let sql = format!(
                            "DELETE FROM group_members WHERE group_id = $1 AND member_id IN ({})",
                            placeholders(2, chunk.len())
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id);
                        for mid in chunk {
                            q = q.bind(mid);
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                MemberOp::RemoveAll => {
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        Ok::<_, StoreError>(written)
    })?;
    w.commit().await?;
    Ok(written)
}

pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> StoreResult<()> {
    let mut w = db.begin_work().await?;
    on_work!(w, |tx| {
        // Memberships of this group in other groups go too (its own go by cascade).
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM scim_groups WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok::<_, StoreError>(())
    })?;
    w.commit().await
}

/// These groups of the tenant, in the order of `ids`.
pub async fn by_ids(db: &Db, tenant_id: &str, ids: &[String]) -> StoreResult<Vec<GroupRecord>> {
    super::query::rows_by_ids(
        db,
        super::query::Table::Groups,
        tenant_id,
        COLUMNS,
        ids,
        |r: &GroupRecord| r.id.as_str(),
    )
    .await
}

/// Groups written before they had a search index, with their tenant.
pub async fn unindexed(db: &Db, limit: i64) -> StoreResult<Vec<GroupRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM scim_groups WHERE search IS NULL LIMIT $1 + 0");
    let rows = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(limit)
        .fetch_all(p)
        .await)?;
    Ok(rows)
}

/// Writes the search index derived from the group at `version`; a group changed since is left
/// to its own write (see `scim_users::set_index`).
pub async fn set_index(db: &Db, id: &str, version: i64, search: &str) -> StoreResult<()> {
    let sql = format!(
        "UPDATE scim_groups SET search = {} WHERE id = $2 AND version = $3",
        db.json_param(1)
    );
    on_db!(db, |p| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(search)
        .bind(id)
        .bind(version)
        .execute(p)
        .await
        .map(|_| ()))?;
    Ok(())
}

/// Members of these groups with their display names, one query per 500 groups.
pub async fn members_of(
    db: &Db,
    group_ids: &[String],
) -> StoreResult<HashMap<String, Vec<Member>>> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    for chunk in group_ids.chunks(500) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
        let sql = format!(
            "SELECT m.group_id, m.member_id, m.member_type, COALESCE(u.display_name, u.user_name, g.display_name) \
             FROM group_members m LEFT JOIN users u ON u.id = m.member_id \
             LEFT JOIN scim_groups g ON g.id = m.member_id \
             WHERE m.group_id IN ({}) ORDER BY m.group_id, m.member_id",
            marks.join(", ")
        );
        let rows: Vec<(String, String, String, Option<String>)> = on_db!(db, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for id in chunk {
                q = q.bind(id.clone());
            }
            q.fetch_all(p).await
        })?;
        for (gid, mid, kind, display) in rows {
            let kind = if kind == "Group" {
                MemberKind::Group
            } else {
                MemberKind::User
            };
            out.entry(gid).or_default().push(Member {
                id: mid,
                kind,
                display,
            });
        }
    }
    Ok(out)
}

pub async fn member_count(db: &Db, group_id: &str) -> StoreResult<i64> {
    let n = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM group_members WHERE group_id = $1"
    )
    .bind(group_id)
    .fetch_one(p)
    .await)?;
    Ok(n)
}
