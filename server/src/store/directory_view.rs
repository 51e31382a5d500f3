//! The console's read-only views of the directory: users and groups listed in keyset order
//! (never OFFSET walks), prefix search on indexed columns, bounded "contains" search, capped
//! counts. Text is compared in byte order: SQLite's default, `COLLATE "C"` on PostgreSQL, so
//! the same indexes serve sorting and prefix ranges on both.

use super::{Db, StoreResult, on_db};
use std::collections::HashMap;

/// The sort key of a user's name: display name, else userName, lower-cased.
const NAME_KEY: &str = "lower(COALESCE(display_name, user_name))";
/// Upper bound of a prefix range: every string starting with the prefix sorts below
/// `prefix + U+10FFFF` in byte order.
const TOP: char = '\u{10FFFF}';
/// A "contains" search looks at this many users per page request, at most.
pub const CONTAINS_WINDOW: i64 = 5_000;
/// Counts stop here ("more than 10,000"): an exact count of a million rows is not worth a
/// page view.
pub const COUNT_CAP: i64 = 10_000;

/// `COLLATE "C"` on PostgreSQL: byte order, like SQLite's default.
fn c(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "",
        Db::Postgres(_) => " COLLATE \"C\"",
    }
}

/// Lower-cases a search term as the database's `lower()` does (SQLite: ASCII only).
fn lower_like_db(db: &Db, s: &str) -> String {
    match db {
        Db::Sqlite(_) => s.to_ascii_lowercase(),
        Db::Postgres(_) => s.to_lowercase(),
    }
}

fn like_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    /// By name, A to Z.
    #[default]
    Name,
    /// By last change, newest first.
    Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Active,
    Disabled,
    Deprovisioned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSource {
    /// Created by SCIM (Microsoft Entra ID).
    Entra,
    /// Created in the console or by the operator CLI.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SearchMode {
    #[default]
    Prefix,
    Contains,
}

/// Where the previous page ended: the sort key and id of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: String,
    pub id: String,
}

impl Cursor {
    /// Opaque for URLs: hex of `key \u{1f} id`.
    pub fn encode(&self) -> String {
        hex::encode(format!("{}\u{1f}{}", self.key, self.id))
    }
    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = hex::decode(s.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (key, id) = text.split_once('\u{1f}')?;
        Some(Cursor {
            key: key.to_string(),
            id: id.to_string(),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    pub search: Option<String>,
    pub mode: SearchMode,
    pub status: Option<UserStatus>,
    pub source: Option<UserSource>,
    pub sort: UserSort,
    pub after: Option<Cursor>,
    pub limit: i64,
}

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct UserListRow {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub deleted_at: Option<i64>,
    pub source: String,
    pub updated_at: i64,
    pub name_key: String,
}

impl UserListRow {
    pub fn status(&self) -> UserStatus {
        if self.deleted_at.is_some() {
            UserStatus::Deprovisioned
        } else if self.active {
            UserStatus::Active
        } else {
            UserStatus::Disabled
        }
    }
    fn cursor(&self, sort: UserSort) -> Cursor {
        Cursor {
            key: match sort {
                UserSort::Name => self.name_key.clone(),
                UserSort::Changed => self.updated_at.to_string(),
            },
            id: self.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub rows: Vec<UserListRow>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
    /// A "contains" search that stopped at its window before filling the page: `next`
    /// continues the search.
    pub partial: bool,
}

/// A bound value of a dynamically built query.
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
}

/// A WHERE clause under construction: SQL text with `$n` placeholders and their values.
struct Where {
    sql: String,
    args: Vec<Arg>,
}

impl Where {
    fn new(first: Arg) -> Where {
        Where {
            sql: String::new(),
            args: vec![first],
        }
    }
    /// Binds a value and returns its placeholder.
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    fn text(&mut self, s: impl Into<String>) -> String {
        self.arg(Arg::Text(s.into()))
    }
    /// Binds a limit or offset and returns it as an expression: SQLite re-prepares a statement
    /// on every binding of a bare `LIMIT`/`OFFSET` parameter (see `query::Sql::page`).
    fn bound(&mut self, n: i64) -> String {
        format!("{} + 0", self.arg(Arg::Int(n)))
    }
    /// Binds a `LIKE` pattern, as an expression for the same reason.
    fn pattern(&mut self, s: String) -> String {
        format!("({} || '')", self.text(s))
    }
    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Text(s) => q.bind(s.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

fn status_sql(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => " AND deleted_at IS NULL AND active = TRUE",
        UserStatus::Disabled => " AND active = FALSE AND deleted_at IS NULL",
        UserStatus::Deprovisioned => " AND deleted_at IS NOT NULL",
    }
}

fn source_sql(s: UserSource) -> &'static str {
    match s {
        UserSource::Entra => " AND source = 'scim'",
        UserSource::Local => " AND source <> 'scim'",
    }
}

/// The query's search term, trimmed, if any.
fn search_term(q: &UserQuery) -> Option<&str> {
    q.search.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The `FROM` clause of a Users statement and its prefix search's condition (pushed onto `w`):
/// the users it `collect`s ([`collected_from`]), or a test of each user the statement walks
/// (through `walk_index` on SQLite, if named).
fn searched_from(
    db: &Db,
    w: &mut Where,
    term: Option<&str>,
    collect: bool,
    walk_index: Option<&str>,
) -> String {
    match term {
        Some(t) if collect => collected_from(db, w, t),
        Some(t) => {
            let any = TermRanges::bind(db, w, t).any_sql(db, NAME_KEY);
            w.push(&format!(" AND {any}"));
            match (db, walk_index) {
                (Db::Sqlite(_), Some(i)) => format!("users INDEXED BY {i}"),
                _ => "users".to_string(),
            }
        }
        None => "users".to_string(),
    }
}

/// The users a prefix search matches, collected from one index range per column (userName,
/// email, family name, name key) for the join that follows: a `FROM` clause, its join condition
/// pushed onto `w`. Each user comes once, and SQLite reads the ranges first (`CROSS JOIN` keeps
/// the order written).
fn collected_from(db: &Db, w: &mut Where, term: &str) -> String {
    let users = TermRanges::bind(db, w, term).named_users_sql(db);
    w.push(" AND users.id = m.hit");
    format!("(SELECT DISTINCT id AS hit FROM ({users}) AS arms) AS m CROSS JOIN users")
}

/// Rows strictly after the cursor in the sort order.
fn keyset_sql(db: &Db, w: &mut Where, sort: UserSort, after: &Cursor) {
    match sort {
        UserSort::Name => name_after_sql(db, w, NAME_KEY, "id", after),
        UserSort::Changed => {
            let at = after.key.parse::<i64>().unwrap_or(i64::MAX);
            let (k1, k2, id) = (w.arg(Arg::Int(at)), w.arg(Arg::Int(at)), w.text(&after.id));
            w.push(&format!(
                " AND (updated_at < {k1} OR (updated_at = {k2} AND id < {id}))"
            ));
        }
    }
}

/// Rows after the cursor in name order: `key` the name key, `id` the tie-breaker column.
fn name_after_sql(db: &Db, w: &mut Where, key: &str, id: &str, after: &Cursor) {
    let c = c(db);
    let (k1, k2, i) = (w.text(&after.key), w.text(&after.key), w.text(&after.id));
    w.push(&format!(
        " AND ({key}{c} > {k1} OR ({key}{c} = {k2} AND {id} > {i}))"
    ));
}

fn order_sql(db: &Db, sort: UserSort) -> String {
    match sort {
        UserSort::Name => format!(" ORDER BY {NAME_KEY}{}, id", c(db)),
        UserSort::Changed => " ORDER BY updated_at DESC, id DESC".to_string(),
    }
}

/// The columns of a [`UserListRow`] but its name key.
const USER_FIELDS: &str = "id, user_name, display_name, given_name, family_name, email, active, \
                           deleted_at, source, updated_at";

fn user_columns(db: &Db) -> String {
    format!("{USER_FIELDS}, {NAME_KEY}{} AS name_key", c(db))
}

/// One page of the organisation's users.
pub async fn users(db: &Db, tenant_id: &str, q: &UserQuery) -> StoreResult<UserPage> {
    let limit = q.limit.clamp(1, 200);
    let term = search_term(q);
    if let (Some(term), SearchMode::Contains) = (term, q.mode) {
        return users_containing(db, tenant_id, q, term, limit).await;
    }
    let collect = match term {
        Some(t) => users_matching(db, tenant_id, t, true).await? <= COLLECT_UP_TO,
        None => false,
    };
    let (sql, args) = users_sql(db, tenant_id, q, limit + 1, collect);
    page_of(db, &sql, &args, limit, q.sort).await
}

/// Runs a page statement that reads up to `limit + 1` rows: `limit` of them, and where the
/// next page starts if there was one more.
async fn page_of(
    db: &Db,
    sql: &str,
    args: &[Arg],
    limit: i64,
    sort: UserSort,
) -> StoreResult<UserPage> {
    let mut rows: Vec<UserListRow> = on_db!(db, |p| bind_args!(
        sqlx::query_as(sqlx::AssertSqlSafe(sql)),
        args
    )
    .fetch_all(p)
    .await)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| r.cursor(sort))
    } else {
        None
    };
    Ok(UserPage {
        rows,
        next,
        partial: false,
    })
}

/// The statement of [`users`] for a prefix search (or none) and its values (`limit` rows at
/// most). Each status has an index in each order (migrations 0008 and 0016), so a status
/// that few users have is listed from their own index, not by walking the organisation.
///
/// A prefix search either `collect`s the users it matches (one index range per column, at
/// most [`COLLECT_UP_TO`] users: see [`users_matching`]) and sorts them, or walks the page's
/// order testing each user, for a term so common that matches come soon. Left to choose,
/// SQLite walked: 42 s at a million users for a term that matches nobody.
pub fn users_sql(
    db: &Db,
    tenant_id: &str,
    q: &UserQuery,
    limit: i64,
    collect: bool,
) -> (String, Vec<Arg>) {
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    let from = searched_from(db, &mut w, search_term(q), collect, None);
    if let Some(s) = q.status {
        w.push(status_sql(s));
    }
    if let Some(s) = q.source {
        w.push(source_sql(s));
    }
    if let Some(after) = &q.after {
        keyset_sql(db, &mut w, q.sort, after);
    }
    let lim = w.bound(limit);
    let sql = format!(
        "SELECT {} FROM {from} WHERE tenant_id = $1{}{} LIMIT {lim}",
        user_columns(db),
        w.sql,
        order_sql(db, q.sort)
    );
    (sql, w.args)
}

/// Substring search: walks at most `CONTAINS_WINDOW` users (in the page's sort order) per
/// request, so its cost is bounded whatever the organisation's size; the page says when it
/// stopped early and offers to continue.
async fn users_containing(
    db: &Db,
    tenant_id: &str,
    q: &UserQuery,
    term: &str,
    limit: i64,
) -> StoreResult<UserPage> {
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    if let Some(after) = &q.after {
        keyset_sql(db, &mut w, q.sort, after);
    }
    let window_where = w.sql.clone();
    let win = w.bound(CONTAINS_WINDOW);
    let pat = w.pattern(like_pattern(&term.to_lowercase()));
    let pat_db = w.pattern(like_pattern(&lower_like_db(db, term)));
    let mut outer = String::new();
    if let Some(s) = q.status {
        outer.push_str(status_sql(s));
    }
    if let Some(s) = q.source {
        outer.push_str(source_sql(s));
    }
    let lim = w.bound(limit + 1);
    let order = order_sql(db, q.sort);
    let sql = format!(
        "SELECT * FROM (SELECT {cols}, user_name_lc, email_lc FROM users WHERE tenant_id = $1{window_where}{order} LIMIT {win}) w \
         WHERE (user_name_lc LIKE {pat} ESCAPE '\\' OR email_lc LIKE {pat} ESCAPE '\\' \
         OR name_key LIKE {pat_db} ESCAPE '\\'){outer}{outer_order} LIMIT {lim}",
        cols = user_columns(db),
        outer_order = order.replace(&format!("{NAME_KEY}{}", c(db)), "name_key"),
    );
    let mut rows: Vec<UserListRow> = on_db!(db, |p| bind_args!(
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())),
        &w.args
    )
    .fetch_all(p)
    .await)?;
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        let next = rows.last().map(|r| r.cursor(q.sort));
        return Ok(UserPage {
            rows,
            next,
            partial: false,
        });
    }
    // Fewer matches than a page: continue after the window's last user, if the window was full.
    let mut w2 = Where::new(Arg::Text(tenant_id.to_string()));
    if let Some(after) = &q.after {
        keyset_sql(db, &mut w2, q.sort, after);
    }
    let off = w2.bound(CONTAINS_WINDOW - 1);
    let sql = format!(
        "SELECT {} FROM users WHERE tenant_id = $1{}{} LIMIT 1 OFFSET {off}",
        user_columns(db),
        w2.sql,
        order
    );
    let edge: Option<UserListRow> = on_db!(db, |p| bind_args!(
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())),
        &w2.args
    )
    .fetch_optional(p)
    .await)?;
    let next = edge.map(|r| r.cursor(q.sort));
    Ok(UserPage {
        rows,
        partial: next.is_some(),
        next,
    })
}

/// The index of the filter few users pass (Disabled, Deprovisioned, Local), if the query has one.
fn rare_filter_index(q: &UserQuery) -> Option<&'static str> {
    match (q.status, q.source) {
        (Some(UserStatus::Disabled), _) => Some("users_console_disabled"),
        (Some(UserStatus::Deprovisioned), _) => Some("users_console_deprovisioned"),
        (_, Some(UserSource::Local)) => Some("users_console_local"),
        _ => None,
    }
}

/// How many users match the query's filters and prefix search, counted up to `COUNT_CAP + 1`.
/// A search counts the users it collects ([`collected_from`]), so the count stops at the cap
/// or when the term's matches end: walking the organisation instead took 13 s at a million
/// users for a term nobody matches. A common term with a filter few users pass (Disabled,
/// Deprovisioned, Local) walks that filter's index instead: collecting would stream every
/// match through it (480 ms for "ada" and Disabled at a million users).
pub async fn count_users(db: &Db, tenant_id: &str, q: &UserQuery) -> StoreResult<i64> {
    let collect = match search_term(q) {
        Some(t) => {
            rare_filter_index(q).is_none()
                || users_matching(db, tenant_id, t, true).await? <= COLLECT_UP_TO
        }
        None => false,
    };
    let (sql, args) = count_users_sql(db, tenant_id, q, collect);
    let n: i64 = on_db!(db, |p| bind_args!(
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())),
        &args
    )
    .fetch_one(p)
    .await)?;
    Ok(n)
}

/// The statement of [`count_users`] and its values: a search either `collect`s its users or
/// tests each user the index of its rare filter holds (named on SQLite, whose planner walked
/// the whole organisation in another index instead).
pub fn count_users_sql(
    db: &Db,
    tenant_id: &str,
    q: &UserQuery,
    collect: bool,
) -> (String, Vec<Arg>) {
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    let from = searched_from(db, &mut w, search_term(q), collect, rare_filter_index(q));
    if let Some(s) = q.status {
        w.push(status_sql(s));
    }
    if let Some(s) = q.source {
        w.push(source_sql(s));
    }
    let cap = w.bound(COUNT_CAP + 1);
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {from} WHERE tenant_id = $1{} LIMIT {cap}) c",
        w.sql
    );
    (sql, w.args)
}

/// Everything the console shows about one user, deprovisioned ones included.
#[derive(sqlx::FromRow, Debug, Clone)]
pub struct UserDetailRow {
    pub id: String,
    pub user_name: String,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub is_admin: bool,
    pub resource: String,
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

pub async fn user(db: &Db, tenant_id: &str, id: &str) -> StoreResult<Option<UserDetailRow>> {
    let row = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT id, user_name, external_id, given_name, family_name, display_name, email, active, \
         is_admin, resource, source, created_at, updated_at, deleted_at \
         FROM users WHERE tenant_id = $1 AND id = $2"
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(p)
    .await
    })?;
    Ok(row)
}

/// The statement of [`user_names`] for `n` ids.
pub fn user_names_sql(db: &Db, n: usize) -> String {
    let marks: Vec<String> = (0..n).map(|i| format!("${}", i + 2)).collect();
    format!(
        "SELECT id, user_name, display_name FROM users WHERE {} = $1 AND id IN ({})",
        db.tenant_by_key(),
        marks.join(", ")
    )
}

/// (id, userName, display name) of these users, for links (a manager).
pub async fn user_names(
    db: &Db,
    tenant_id: &str,
    ids: &[String],
) -> StoreResult<HashMap<String, (String, Option<String>)>> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(200) {
        let sql = user_names_sql(db, chunk.len());
        let rows: Vec<(String, String, Option<String>)> = on_db!(db, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(tenant_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(p).await
        })?;
        for (id, un, dn) in rows {
            out.insert(id, (un, dn));
        }
    }
    Ok(out)
}

/// The groups a user is a direct member of, by name (at most `limit`).
pub async fn groups_of_user(
    db: &Db,
    tenant_id: &str,
    user_id: &str,
    limit: i64,
) -> StoreResult<Vec<(String, String)>> {
    let rows = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT g.id, g.display_name FROM group_members m JOIN scim_groups g ON g.id = m.group_id \
         WHERE m.member_id = $1 AND g.tenant_id = $2 ORDER BY g.display_name_lc LIMIT $3 + 0"
    )
    .bind(user_id)
    .bind(tenant_id)
    .bind(limit)
    .fetch_all(p)
    .await
    })?;
    Ok(rows)
}

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct GroupListRow {
    pub id: String,
    pub display_name: String,
    pub display_name_lc: String,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    pub rows: Vec<(GroupListRow, i64)>,
    pub next: Option<Cursor>,
}

/// One page of groups by name, with member counts (one grouped query for the page).
pub async fn groups(
    db: &Db,
    tenant_id: &str,
    search: Option<&str>,
    after: Option<&Cursor>,
    limit: i64,
) -> StoreResult<GroupPage> {
    let limit = limit.clamp(1, 200);
    let c = c(db);
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    if let Some(t) = search.map(str::trim).filter(|s| !s.is_empty()) {
        let lc = t.to_lowercase();
        let (a, b) = (w.text(lc.clone()), w.text(format!("{lc}{TOP}")));
        w.push(&format!(
            " AND display_name_lc{c} >= {a} AND display_name_lc{c} < {b}"
        ));
    }
    if let Some(after) = after {
        let (k1, k2, id) = (w.text(&after.key), w.text(&after.key), w.text(&after.id));
        w.push(&format!(
            " AND (display_name_lc{c} > {k1} OR (display_name_lc{c} = {k2} AND id > {id}))"
        ));
    }
    let lim = w.bound(limit + 1);
    let sql = format!(
        "SELECT id, display_name, display_name_lc{c} AS display_name_lc, external_id, created_at, \
         updated_at FROM scim_groups WHERE tenant_id = $1{} ORDER BY display_name_lc{c}, id LIMIT {lim}",
        w.sql
    );
    let mut rows: Vec<GroupListRow> = on_db!(db, |p| bind_args!(
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())),
        &w.args
    )
    .fetch_all(p)
    .await)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| Cursor {
            key: r.display_name_lc.clone(),
            id: r.id.clone(),
        })
    } else {
        None
    };
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let counts = member_counts(db, &ids).await?;
    Ok(GroupPage {
        rows: rows
            .into_iter()
            .map(|r| {
                let n = counts.get(&r.id).copied().unwrap_or(0);
                (r, n)
            })
            .collect(),
        next,
    })
}

pub async fn member_counts(db: &Db, group_ids: &[String]) -> StoreResult<HashMap<String, i64>> {
    let mut out = HashMap::new();
    for chunk in group_ids.chunks(200) {
        if chunk.is_empty() {
            continue;
        }
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
        let sql = format!(
            "SELECT group_id, COUNT(*) FROM group_members WHERE group_id IN ({}) GROUP BY group_id",
            marks.join(", ")
        );
        let rows: Vec<(String, i64)> = on_db!(db, |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}

pub async fn count_groups(db: &Db, tenant_id: &str) -> StoreResult<i64> {
    let n = on_db!(db, |p| sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM scim_groups WHERE tenant_id = $1 LIMIT $2 + 0) c"
    )
    .bind(tenant_id)
    .bind(COUNT_CAP + 1)
    .fetch_one(p)
    .await)?;
    Ok(n)
}

pub async fn group(db: &Db, tenant_id: &str, id: &str) -> StoreResult<Option<GroupListRow>> {
    let sql = format!(
        "SELECT id, display_name, display_name_lc{} AS display_name_lc, external_id, created_at, \
         updated_at FROM scim_groups WHERE tenant_id = $1 AND id = $2",
        c(db)
    );
    let row = on_db!(db, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(p)
        .await)?;
    Ok(row)
}

/// A search (of the Users page, or of a group's members) that matches at most this many users
/// of the organisation by its indexed columns collects them; one that matches more walks the
/// page's order.
pub const COLLECT_UP_TO: i64 = 2_000;

/// How a search of a group's members finds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberSearch<'a> {
    /// Collects the organisation's users whose userName, email or family name starts with the
    /// term (few: a range of each column's index) and the members whose name key does (a
    /// range of the group's index), then walks the group's index keeping those. Its cost
    /// follows the number of such users.
    Collect(&'a str),
    /// Walks the group's name index and tests each member. For a term that many users of the
    /// organisation match, matching members come soon; at worst the walk reads the group
    /// (never the organisation).
    Walk(&'a str),
}

/// One page of a group's user members by name, prefix-searchable. The group's own index
/// holds each user member's name key (`group_members.sort_key`, kept by triggers: migration
/// 0015), so a page walks only the memberships it shows and reads each member's row by key,
/// whatever the group's size and however sparse its members are in the organisation.
pub async fn group_members(
    db: &Db,
    tenant_id: &str,
    group_id: &str,
    search: Option<&str>,
    after: Option<&Cursor>,
    limit: i64,
) -> StoreResult<UserPage> {
    let limit = limit.clamp(1, 200);
    let search = match search.map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(t) if users_matching(db, tenant_id, t, false).await? <= COLLECT_UP_TO => {
            Some(MemberSearch::Collect(t))
        }
        Some(t) => Some(MemberSearch::Walk(t)),
    };
    let (sql, args) = group_members_sql(db, tenant_id, group_id, search, after, limit + 1);
    page_of(db, &sql, &args, limit, UserSort::Name).await
}

/// The bounds of a member search term: `(a, b)` for the columns lower-cased when written
/// (userName, email, family name), `(x, y)` for the name key, which the database lower-cases.
struct TermRanges {
    a: String,
    b: String,
    x: String,
    y: String,
}

/// The columns a search term is a prefix of, each lower-cased when written.
const TERM_COLUMNS: [&str; 3] = ["user_name_lc", "email_lc", "family_name_lc"];

impl TermRanges {
    fn bind(db: &Db, w: &mut Where, term: &str) -> TermRanges {
        let lc = term.to_lowercase();
        let (a, b) = (w.text(lc.clone()), w.text(format!("{lc}{TOP}")));
        let dl = lower_like_db(db, term);
        let (x, y) = (w.text(dl.clone()), w.text(format!("{dl}{TOP}")));
        TermRanges { a, b, x, y }
    }

    /// `col` starts with the term.
    fn range(&self, db: &Db, col: &str) -> String {
        let (c, TermRanges { a, b, .. }) = (c(db), self);
        format!("{col}{c} >= {a} AND {col}{c} < {b}")
    }

    /// `col` starts with the term, as two ranges: live users and deprovisioned ones. On SQLite
    /// each side has its own index (the live side's serves SCIM too; migration 0020), so that
    /// creating a user writes one entry per column, not two.
    fn ranges_by_side(&self, db: &Db, col: &str) -> [String; 2] {
        let r = self.range(db, col);
        [
            format!("{r} AND deleted_at IS NULL"),
            format!("{r} AND deleted_at IS NOT NULL"),
        ]
    }

    /// `(… OR …)`: the user's userName, email, name key (`key`) or family name starts with the
    /// term (tested on each user a walk meets).
    fn any_sql(&self, db: &Db, key: &str) -> String {
        let (c, TermRanges { x, y, .. }) = (c(db), self);
        let mut terms = vec![format!("{key}{c} >= {x} AND {key}{c} < {y}")];
        terms.extend(TERM_COLUMNS.iter().map(|col| self.range(db, col)));
        format!("(({}))", terms.join(") OR ("))
    }

    /// [`TermRanges::users_sql`] and the users whose name key starts with the term.
    fn named_users_sql(&self, db: &Db) -> String {
        let (c, TermRanges { x, y, .. }) = (c(db), self);
        format!(
            "SELECT id FROM users WHERE tenant_id = $1 AND {NAME_KEY}{c} >= {x} \
             AND {NAME_KEY}{c} < {y} UNION ALL {}",
            self.users_sql(db)
        )
    }

    /// The ids of the organisation's users (`$1`) whose userName, email or family name starts
    /// with the term, one index range each (a user may come more than once).
    fn users_sql(&self, db: &Db) -> String {
        TERM_COLUMNS
            .iter()
            .flat_map(|col| self.ranges_by_side(db, col))
            .map(|r| format!("SELECT id FROM users WHERE tenant_id = $1 AND {r}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }
}

/// How many users of the organisation a search term matches by userName, email or family name
/// (and, `named`, by name key), counted with repeats and only up to `COLLECT_UP_TO + 1`.
async fn users_matching(db: &Db, tenant_id: &str, term: &str, named: bool) -> StoreResult<i64> {
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    let r = TermRanges::bind(db, &mut w, term);
    let users = if named {
        r.named_users_sql(db)
    } else {
        r.users_sql(db)
    };
    let cap = w.bound(COLLECT_UP_TO + 1);
    let sql = format!("SELECT COUNT(*) FROM ({users} LIMIT {cap}) AS matching");
    let n: i64 = on_db!(db, |p| bind_args!(
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())),
        &w.args
    )
    .fetch_one(p)
    .await)?;
    Ok(n)
}

/// The statement of [`group_members`] and its values (`limit` rows at most): members whose
/// name key, userName, email or family name starts with the search term, if any.
pub fn group_members_sql(
    db: &Db,
    tenant_id: &str,
    group_id: &str,
    search: Option<MemberSearch<'_>>,
    after: Option<&Cursor>,
    limit: i64,
) -> (String, Vec<Arg>) {
    let c = c(db);
    let mut w = Where::new(Arg::Text(tenant_id.to_string()));
    let g = w.text(group_id);
    match search {
        None => {}
        Some(MemberSearch::Collect(t)) => {
            let r = TermRanges::bind(db, &mut w, t);
            let (x, y, users) = (&r.x, &r.y, r.users_sql(db));
            w.push(&format!(
                " AND m.member_id IN (\
                 SELECT member_id FROM group_members WHERE group_id = {g} AND sort_key IS NOT NULL \
                 AND sort_key{c} >= {x} AND sort_key{c} < {y} UNION ALL {users})"
            ));
        }
        Some(MemberSearch::Walk(t)) => {
            let any = TermRanges::bind(db, &mut w, t).any_sql(db, "m.sort_key");
            w.push(&format!(" AND {any}"));
        }
    }
    if let Some(after) = after {
        name_after_sql(db, &mut w, "m.sort_key", "m.member_id", after);
    }
    let lim = w.bound(limit);
    let sql = format!(
        "SELECT {USER_FIELDS}, m.sort_key{c} AS name_key FROM group_members m JOIN users u ON u.id = m.member_id \
         WHERE m.group_id = {g} AND m.sort_key IS NOT NULL AND u.tenant_id = $1{} \
         ORDER BY m.sort_key{c}, m.member_id LIMIT {lim}",
        w.sql
    );
    (sql, w.args)
}

/// Groups that are members of this group (nested groups; few), by name.
pub async fn group_group_members(
    db: &Db,
    group_id: &str,
    limit: i64,
) -> StoreResult<Vec<(String, String)>> {
    let rows = on_db!(db, |p| {
        sqlx::query_as(
        "SELECT g.id, g.display_name FROM group_members m JOIN scim_groups g ON g.id = m.member_id \
         WHERE m.group_id = $1 AND m.member_type = 'Group' ORDER BY g.display_name_lc LIMIT $2 + 0"
    )
    .bind(group_id)
    .bind(limit)
    .fetch_all(p)
    .await
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            key: "ada lovelace".into(),
            id: "u-1".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("zz"), None);
        assert_eq!(Cursor::decode(&hex::encode("no separator")), None);
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }
}
