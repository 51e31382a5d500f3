//! Users as SCIM sees them: live (not deprovisioned) rows of one tenant, with the indexed
//! columns extracted from the SCIM document kept beside it.

use super::query::{Sql, hot_rows};
use super::{Db, StoreError, StoreResult, execute, on_db, on_work};
use std::collections::HashMap;

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub resource: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// A console admin (who signs in with `email`); SCIM sees and updates them like anyone.
    pub is_admin: bool,
}

impl UserRecord {
    /// A user as a SCIM creation stores it.
    pub fn created(id: String, cols: &UserColumns, resource: &str, now: i64) -> UserRecord {
        UserRecord {
            id,
            user_name: cols.user_name.clone(),
            external_id: cols.external_id.clone(),
            given_name: cols.given_name.clone(),
            family_name: cols.family_name.clone(),
            display_name: cols.display_name.clone(),
            email: cols.email.clone(),
            active: cols.active,
            resource: resource.to_string(),
            version: 1,
            created_at: now,
            updated_at: now,
            is_admin: false,
        }
    }
}

/// The columns a SCIM write sets, extracted from the document by the SCIM layer.
#[derive(Debug, Clone, Default)]
pub struct UserColumns {
    pub user_name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

pub const COLUMNS: &str = "id, user_name, external_id, given_name, family_name, display_name, email, \
                       active, resource, version, created_at, updated_at, is_admin";

/// A user with their groups, read in the same query (list pages answer in one round trip).
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct UserWithGroups {
    #[sqlx(flatten)]
    pub user: UserRecord,
    /// JSON `[[id, displayName, sort key], ...]` (`NULL` or `[]` without groups).
    pub groups: Option<String>,
}

/// [`COLUMNS`] plus `groups` (see [`UserWithGroups`]) for a query whose users row is `r`.
pub fn columns_with_groups(dialect: super::query::Dialect) -> &'static str {
    match dialect {
        super::query::Dialect::Sqlite => {
            "id, user_name, external_id, given_name, family_name, display_name, email, active, \
             resource, version, created_at, updated_at, is_admin, \
             (SELECT json_group_array(json_array(g.id, g.display_name, g.display_name_lc)) \
              FROM group_members m JOIN scim_groups g ON g.id = m.group_id \
              WHERE m.member_id = r.id AND g.tenant_id = r.tenant_id) AS groups"
        }
        super::query::Dialect::Postgres => {
            "id, user_name, external_id, given_name, family_name, display_name, email, active, \
             resource, version, created_at, updated_at, is_admin, \
             (SELECT json_agg(json_build_array(g.id, g.display_name, g.display_name_lc))::text \
              FROM group_members m JOIN scim_groups g ON g.id = m.group_id \
              WHERE m.member_id = r.id AND g.tenant_id = r.tenant_id) AS groups"
        }
    }
}

impl UserWithGroups {
    /// The groups as (id, displayName), in the order [`groups_of`] gives them.
    pub fn group_list(&self) -> Vec<(String, String)> {
        let mut parsed: Vec<(String, String, String)> = self
            .groups
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        parsed.sort_by(|a, b| a.2.cmp(&b.2));
        parsed.into_iter().map(|(id, name, _)| (id, name)).collect()
    }
}

/// Holds when the row is not the organisation's last active admin (or stays active: `$keep`),
/// so no SCIM request can lock the organisation out of its console. `$t`/`$id` name the row.
fn keeps_an_admin(keep: usize, t: usize, id: usize) -> String {
    format!(
        "(${keep} OR NOT is_admin OR NOT active OR EXISTS (SELECT 1 FROM users o \
         WHERE o.tenant_id = ${t} AND o.id <> ${id} AND o.is_admin AND o.active \
         AND o.deleted_at IS NULL))"
    )
}

/// PostgreSQL: serialise changes that may remove an admin, per organisation, so two of them
/// cannot each see the other admin still active. (SQLite writers are serialised already.)
const LOCK_TENANT_PG: &str = "SELECT id FROM tenants WHERE id = $1 FOR UPDATE";

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> StoreResult<UserRecord> {
    by_ids(db, tenant_id, &[id.to_string()])
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound)
}

/// The search index of a user (see `scim::index`) and the case-folded columns taken from it.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    pub doc: String,
    pub display_name_lc: Option<String>,
    pub given_name_lc: Option<String>,
    pub family_name_lc: Option<String>,
}

/// Stores a new user; with `writes` (SQLite), through the group commit. The record returned
/// is what was stored (no read back).
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    db: &Db,
    writes: Option<&super::batch::Batcher>,
    tenant_id: &str,
    id: &str,
    cols: &UserColumns,
    resource: &str,
    ix: &SearchIndex,
    now: i64,
) -> StoreResult<UserRecord> {
    let sql = format!(
        "INSERT INTO users (id, tenant_id, user_name, user_name_lc, external_id, given_name, \
         family_name, display_name, email, email_lc, active, is_admin, resource, source, version, \
         created_at, updated_at, last_provisioned_at, search, display_name_lc, given_name_lc, \
         family_name_lc) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, FALSE, $12, 'scim', 1, $13, $13, $13, \
         {}, $15, $16, $17)",
        db.json_param(14)
    );
    let rec = UserRecord::created(id.to_string(), cols, resource, now);
    macro_rules! insert_query {
        ($r:expr, $t:expr, $ix:expr) => {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&$r.id)
                .bind(&$t)
                .bind(&$r.user_name)
                .bind($r.user_name.to_lowercase())
                .bind(&$r.external_id)
                .bind(&$r.given_name)
                .bind(&$r.family_name)
                .bind(&$r.display_name)
                .bind(&$r.email)
                .bind($r.email.as_ref().map(|e| e.to_lowercase()))
                .bind($r.active)
                .bind(&$r.resource)
                .bind(now)
                .bind(&$ix.doc)
                .bind(&$ix.display_name_lc)
                .bind(&$ix.given_name_lc)
                .bind(&$ix.family_name_lc)
        };
    }
    match (db, writes) {
        (Db::Sqlite(_), Some(w)) => {
            // The write runs on the batch's task: it owns what it binds.
            let (r, t, ix) = (rec.clone(), tenant_id.to_string(), ix.clone());
            w.write_statement(move |c| {
                Box::pin(async move {
                    insert_query!(r, t, ix).execute(&mut *c).await?;
                    Ok(())
                })
            })
            .await?;
        }
        _ => {
            execute!(db, insert_query!(rec, tenant_id, ix))?;
        }
    }
    Ok(rec)
}

/// One user of a bulk load (the benchmark's seeding).
pub struct NewUser<'a> {
    pub id: &'a str,
    pub cols: &'a UserColumns,
    pub resource: &'a str,
    pub ix: &'a SearchIndex,
}

/// Inserts many users in one transaction, 400 rows per statement: seeding a large directory
/// through the store, as the scale benchmark does, without an HTTP round trip per user.
pub async fn insert_many(
    db: &Db,
    tenant_id: &str,
    users: &[NewUser<'_>],
    now: i64,
) -> StoreResult<()> {
    const ROWS: usize = 400;
    const COLS: usize = 17;
    on_db!(db, |p| {
        let mut tx = p.begin().await?;
        for chunk in users.chunks(ROWS) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let n = |c: usize| r * COLS + c + 1;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, FALSE, ${}, 'scim', 1, \
                         ${}, ${}, ${}, {}, ${}, ${}, ${})",
                        n(0), n(1), n(2), n(3), n(4), n(5), n(6), n(7), n(8), n(9), n(10), n(11),
                        n(12), n(12), n(12), db.json_param(n(13)), n(14), n(15), n(16)
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO users (id, tenant_id, user_name, user_name_lc, external_id, given_name, \
                 family_name, display_name, email, email_lc, active, is_admin, resource, source, \
                 version, created_at, updated_at, last_provisioned_at, search, display_name_lc, \
                 given_name_lc, family_name_lc) VALUES {}",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for u in chunk {
                q = q
                    .bind(u.id)
                    .bind(tenant_id)
                    .bind(&u.cols.user_name)
                    .bind(u.cols.user_name.to_lowercase())
                    .bind(&u.cols.external_id)
                    .bind(&u.cols.given_name)
                    .bind(&u.cols.family_name)
                    .bind(&u.cols.display_name)
                    .bind(&u.cols.email)
                    .bind(u.cols.email.as_ref().map(|e| e.to_lowercase()))
                    .bind(u.cols.active)
                    .bind(u.resource)
                    .bind(now)
                    .bind(&u.ix.doc)
                    .bind(&u.ix.display_name_lc)
                    .bind(&u.ix.given_name_lc)
                    .bind(&u.ix.family_name_lc);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    })
}

/// A change written: the user as the write left it (returned by the write itself, so a
/// concurrent change cannot show through), and the log entry of the user's change before it
/// (when this change was logged: see [`CHAIN_LINK`]).
#[derive(sqlx::FromRow, Debug)]
pub struct Written {
    #[sqlx(flatten)]
    pub user: UserRecord,
    pub prev_entry: Option<String>,
}

/// Set by every change of a user's row (`$E` is this change's log entry, or NULL when it is
/// not logged): the entry becomes the user's `last_entry` and the one it replaces is kept in
/// `prev_entry`, which the statement returns. Both sides of `SET` read the row as it was, so
/// parallel changes each get the entry they follow, in the order they were applied.
const CHAIN_LINK: &str = "prev_entry = last_entry, last_entry = COALESCE($E, last_entry)";

fn chain_link(mark: usize) -> String {
    CHAIN_LINK.replace("$E", &format!("${mark}"))
}

/// The row an update replaces, as read at the version the update is pinned to, and the search
/// index stored with it (what [`SearchIndex`] the directory derives from that row: a change of
/// the index's format empties `search`, and the directory writes it again from the row).
pub struct Replaced<'a> {
    pub rec: &'a UserRecord,
    pub ix: &'a SearchIndex,
}

/// Whether [`update`] uses the row it replaces ([`Replaced`]) to write only what changes; a
/// caller need not derive that row's search index otherwise.
///
/// SQLite rewrites the entries of every index on a column named in `SET`, whether or not the
/// value changes: a PATCH of a user's title, naming every column, rewrote entries in each of the
/// users table's indexes, at a million users a page read from disk for most of them (PATCH
/// 1,013–1,198/s at 1M users, 2,296–2,509/s naming only what changed, interleaved runs).
/// PostgreSQL writes a new row version with new index entries either way (every change sets the
/// indexed `updated_at`), and needs every parameter the statement binds to appear in it.
pub fn writes_only_changes(db: &Db) -> bool {
    matches!(db, Db::Sqlite(_))
}

/// The `SET` list of [`update`], with the parameters its statement binds: every column, or,
/// given the row the update replaces (pinned to its version, so it cannot have changed in
/// between) where [`writes_only_changes`], the columns whose values change.
fn update_set(db: &Db, was: Option<&Replaced<'_>>, cols: &UserColumns, ix: &SearchIndex) -> String {
    let search = format!("search = {}", db.json_param(15));
    let chain = chain_link(19);
    // Set whatever the row holds: the resource, its version and times, the log chain.
    const ALWAYS: &str =
        "resource = $10, version = version + 1, updated_at = $11, last_provisioned_at = $11";
    let columns: [&str; 11] = [
        "user_name = $1, user_name_lc = $2",
        "external_id = $3",
        "given_name = $4",
        "family_name = $5",
        "display_name = $6",
        "email = $7, email_lc = $8",
        "active = $9",
        &search,
        "display_name_lc = $16",
        "given_name_lc = $17",
        "family_name_lc = $18",
    ];
    let changes: [bool; 11] = match was.filter(|_| writes_only_changes(db)) {
        None => [true; 11],
        Some(Replaced { rec: r, ix: i }) => [
            r.user_name != cols.user_name,
            r.external_id != cols.external_id,
            r.given_name != cols.given_name,
            r.family_name != cols.family_name,
            r.display_name != cols.display_name,
            r.email != cols.email,
            r.active != cols.active,
            i.doc != ix.doc,
            i.display_name_lc != ix.display_name_lc,
            i.given_name_lc != ix.given_name_lc,
            i.family_name_lc != ix.family_name_lc,
        ],
    };
    let named = columns
        .iter()
        .zip(changes)
        .filter(|(_, c)| *c)
        .map(|(s, _)| *s);
    let mut set: Vec<&str> = named.collect();
    set.extend([ALWAYS, chain.as_str()]);
    set.join(", ")
}

/// Replaces the stored document, columns and index. With `version`, only while the row is still
/// at that version (a changed version is reported as `Stale`). With `writes` (SQLite), through
/// the group commit. `entry` is the provisioning log entry the change is recorded under.
/// `was`, the row the update replaces, requires `version` to be its version (it is ignored
/// otherwise): only the columns that change are then written (see [`update_set`]).
// One write: row, expected version, the row it replaces, columns, document, index, log entry,
// time.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    db: &Db,
    writes: Option<&super::batch::Batcher>,
    tenant_id: &str,
    id: &str,
    version: Option<i64>,
    was: Option<&Replaced<'_>>,
    cols: &UserColumns,
    resource: &str,
    ix: &SearchIndex,
    audit: Option<super::audit::NewAuditEntry<'_>>,
    entry: Option<&str>,
    now: i64,
) -> StoreResult<Written> {
    let was = was.filter(|w| version == Some(w.rec.version));
    let sql = format!(
        "UPDATE users SET {} \
         WHERE tenant_id = $12 AND id = $13 AND ($14 = 0 OR version = $14) AND deleted_at IS NULL \
         AND {} RETURNING {COLUMNS}, prev_entry",
        update_set(db, was, cols, ix),
        keeps_an_admin(9, 12, 13)
    );
    let entry = entry.map(str::to_string);
    macro_rules! update_query {
        ($c:expr, $t:expr, $id:expr, $res:expr, $ix:expr, $entry:expr) => {
            sqlx::query_as::<_, Written>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(&$c.user_name)
                .bind($c.user_name.to_lowercase())
                .bind(&$c.external_id)
                .bind(&$c.given_name)
                .bind(&$c.family_name)
                .bind(&$c.display_name)
                .bind(&$c.email)
                .bind($c.email.as_ref().map(|e| e.to_lowercase()))
                .bind($c.active)
                .bind($res)
                .bind(now)
                .bind($t)
                .bind($id)
                .bind(version.unwrap_or(0))
                .bind(&$ix.doc)
                .bind(&$ix.display_name_lc)
                .bind(&$ix.given_name_lc)
                .bind(&$ix.family_name_lc)
                .bind(&$entry)
        };
    }
    // `None`: no row changed.
    let changed: Option<Written> = match (db, writes) {
        (Db::Sqlite(_), Some(w)) => {
            let (c, t, uid, res, ix, e) = (
                cols.clone(),
                tenant_id.to_string(),
                id.to_string(),
                resource.to_string(),
                ix.clone(),
                entry.clone(),
            );
            match audit.map(|e| e.to_owned_entry()) {
                None => {
                    w.write_statement(move |conn| {
                        Box::pin(async move {
                            Ok(update_query!(c, &t, &uid, &res, ix, e)
                                .fetch_optional(&mut *conn)
                                .await?)
                        })
                    })
                    .await?
                }
                // An audited change (rare: an admin's sign-in email) and its entry share the
                // write's savepoint: both commit or neither.
                Some(audit) => {
                    w.write(move |conn| {
                        Box::pin(async move {
                            let changed = update_query!(c, &t, &uid, &res, ix, e)
                                .fetch_optional(&mut *conn)
                                .await?;
                            if changed.is_some() {
                                super::audit::record_on_sqlite(conn, audit.entry(), now).await?;
                            }
                            Ok(changed)
                        })
                    })
                    .await?
                }
            }
        }
        _ => {
            let mut w = db.begin_work().await?;
            let postgres = w.is_postgres();
            let changed = on_work!(w, |tx| {
                if postgres && !cols.active {
                    sqlx::query(LOCK_TENANT_PG)
                        .bind(tenant_id)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok::<_, StoreError>(
                    update_query!(cols, tenant_id, id, resource, ix, entry)
                        .fetch_optional(&mut *tx)
                        .await?,
                )
            })?;
            if changed.is_some()
                && let Some(audit) = audit
            {
                super::audit::record_in(&mut w, audit, now).await?;
            }
            w.commit().await?;
            changed
        }
    };
    let Some(written) = changed else {
        let now_row = get(db, tenant_id, id).await?;
        let same_version = version.is_none_or(|v| v == now_row.version);
        if same_version && now_row.is_admin && now_row.active && !cols.active {
            return Err(StoreError::LastAdmin);
        }
        return Err(StoreError::Stale);
    };
    Ok(written)
}

/// These users (live ones of the tenant), in the order of `ids`.
pub async fn by_ids(db: &Db, tenant_id: &str, ids: &[String]) -> StoreResult<Vec<UserRecord>> {
    super::query::rows_by_ids(
        db,
        super::query::Table::Users,
        tenant_id,
        COLUMNS,
        ids,
        |r: &UserRecord| r.id.as_str(),
    )
    .await
}

/// Users (live or not) written before they had a search index, with their tenant.
pub async fn unindexed(db: &Db, limit: i64) -> StoreResult<Vec<(String, UserRecord)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: String,
        #[sqlx(flatten)]
        rec: UserRecord,
    }
    let sql = format!("SELECT tenant_id, {COLUMNS} FROM users WHERE search IS NULL LIMIT $1 + 0");
    let rows: Vec<Row> = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(limit)
        .fetch_all(p)
        .await)?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r.rec)).collect())
}

/// Writes the search index derived from the row at `version`; a row changed since is left to
/// its own write (which wrote its index, or left it empty for the next pass).
pub async fn set_index(db: &Db, id: &str, version: i64, ix: &SearchIndex) -> StoreResult<()> {
    let sql = format!(
        "UPDATE users SET search = {}, display_name_lc = $2, given_name_lc = $3, family_name_lc = $4 \
         WHERE id = $5 AND version = $6",
        db.json_param(1)
    );
    execute!(
        db,
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(&ix.doc)
            .bind(&ix.display_name_lc)
            .bind(&ix.given_name_lc)
            .bind(&ix.family_name_lc)
            .bind(id)
            .bind(version)
    )?;
    Ok(())
}

/// No hard deletes: the user is marked deleted and inactive, leaves every group and loses any
/// console session; the row stays for the console and the audit trail.
/// `entry` is the provisioning log entry the change is recorded under; the answer is the entry
/// of the user's change before it (see [`CHAIN_LINK`]).
pub async fn deprovision(
    db: &Db,
    tenant_id: &str,
    id: &str,
    entry: Option<&str>,
    now: i64,
) -> StoreResult<Option<String>> {
    let mut w = db.begin_work().await?;
    let postgres = w.is_postgres();
    let prev_entry = on_work!(w, |tx| {
        if postgres {
            sqlx::query(LOCK_TENANT_PG)
                .bind(tenant_id)
                .execute(&mut *tx)
                .await?;
        }
        let sql = format!(
            "UPDATE users SET deleted_at = $1, active = FALSE, version = version + 1, updated_at = $1, \
             last_provisioned_at = $1, {} WHERE tenant_id = $2 AND id = $3 \
             AND deleted_at IS NULL AND {} RETURNING prev_entry",
            chain_link(5),
            keeps_an_admin(4, 2, 3)
        );
        let changed: Option<Option<String>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(now)
            .bind(tenant_id)
            .bind(id)
            .bind(false)
            .bind(entry)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(prev_entry) = changed else {
            let live: Option<bool> = sqlx::query_scalar(
                "SELECT is_admin FROM users WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(if live.is_some() {
                StoreError::LastAdmin
            } else {
                StoreError::NotFound
            });
        };
        sqlx::query("DELETE FROM group_members WHERE member_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok::<_, StoreError>(prev_entry)
    })?;
    w.commit().await?;
    Ok(prev_entry)
}

/// The groups each of these users belongs to directly, in one query: user id → (id, name).
pub async fn groups_of(
    db: &Db,
    tenant_id: &str,
    user_ids: &[String],
) -> StoreResult<HashMap<String, Vec<(String, String)>>> {
    let mut out: HashMap<String, Vec<(String, String)>> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(out);
    }
    for chunk in user_ids.chunks(500) {
        // Looked up by member id only (the index that fits); memberships never cross
        // organisations, and the tenant is checked on the rows that come back.
        let mut sql = Sql::new(db.dialect());
        sql.push(
            "SELECT m.member_id, g.id, g.display_name, g.tenant_id FROM group_members m \
             JOIN scim_groups g ON g.id = m.group_id WHERE m.member_id IN (",
        )
        .text_list(chunk)
        .push(") ORDER BY g.display_name_lc");
        // Read with every read of a user by id, deep page and root search: on SQLite by a
        // reader (one round trip, no pooled connection).
        let rows: Vec<(String, String, String, String)> = hot_rows(db, &sql).await?;
        for (member, gid, name, _) in rows.into_iter().filter(|r| r.3 == tenant_id) {
            out.entry(member).or_default().push((gid, name));
        }
    }
    Ok(out)
}
