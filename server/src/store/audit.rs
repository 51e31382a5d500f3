use super::{Db, StoreResult, Work, execute, on_db, on_work};
pub use app::model::AuditAction;

#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub tenant_id: &'a str,
    pub actor: &'a str,
    pub action: AuditAction,
    pub detail: &'a str,
    pub client_addr: &'a str,
}

/// An entry that owns its text, for a write that runs on another task (the group commit).
#[derive(Debug, Clone)]
pub struct OwnedAuditEntry {
    pub tenant_id: String,
    pub actor: String,
    pub action: AuditAction,
    pub detail: String,
    pub client_addr: String,
}

impl NewAuditEntry<'_> {
    pub fn to_owned_entry(&self) -> OwnedAuditEntry {
        OwnedAuditEntry {
            tenant_id: self.tenant_id.to_string(),
            actor: self.actor.to_string(),
            action: self.action,
            detail: self.detail.to_string(),
            client_addr: self.client_addr.to_string(),
        }
    }
}

impl OwnedAuditEntry {
    pub fn entry(&self) -> NewAuditEntry<'_> {
        NewAuditEntry {
            tenant_id: &self.tenant_id,
            actor: &self.actor,
            action: self.action,
            detail: &self.detail,
            client_addr: &self.client_addr,
        }
    }
}

#[derive(sqlx::FromRow, Debug, Clone, PartialEq)]
pub struct AuditRow {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub client_addr: String,
}

const INSERT: &str = "INSERT INTO audit_log (tenant_id, at, actor, action, detail, client_addr) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// The audit entry's insert, with every value bound.
macro_rules! insert_entry {
    ($e:expr, $now:expr) => {
        sqlx::query(INSERT)
            .bind($e.tenant_id)
            .bind($now)
            .bind($e.actor)
            .bind($e.action.code())
            .bind($e.detail)
            .bind($e.client_addr)
    };
}

/// Records an entry on its own (for events that change nothing else: sign-ins).
pub async fn record(db: &Db, e: NewAuditEntry<'_>, now: i64) -> StoreResult<()> {
    execute!(db, insert_entry!(e, now))?;
    Ok(())
}

/// Records an entry inside the unit of work of the change it describes.
pub async fn record_in(w: &mut Work, e: NewAuditEntry<'_>, now: i64) -> StoreResult<()> {
    on_work!(w, |c| insert_entry!(e, now).execute(c).await.map(|_| ()))?;
    Ok(())
}

/// Records an entry inside a SQLite write already under way (a group-commit write).
pub async fn record_on_sqlite(
    c: &mut sqlx::SqliteConnection,
    e: NewAuditEntry<'_>,
    now: i64,
) -> StoreResult<()> {
    insert_entry!(e, now).execute(c).await?;
    Ok(())
}

/// The newest entries first; `actions` limits to those actions when not empty.
pub async fn recent(
    db: &Db,
    tenant_id: &str,
    actions: &[AuditAction],
    limit: i64,
) -> StoreResult<Vec<AuditRow>> {
    let mut sql = String::from(
        "SELECT at, actor, action, detail, client_addr FROM audit_log WHERE tenant_id = $1",
    );
    if !actions.is_empty() {
        let marks: Vec<String> = (0..actions.len()).map(|i| format!("${}", i + 3)).collect();
        sql.push_str(&format!(" AND action IN ({})", marks.join(", ")));
    }
    sql.push_str(" ORDER BY at DESC, id DESC LIMIT $2 + 0");
    let rows = on_db!(db, |p| {
        // Only numbered placeholders are added to the text; every value is bound.
        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(tenant_id)
            .bind(limit);
        for a in actions {
            q = q.bind(a.code());
        }
        q.fetch_all(p).await
    })?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    // The enum lives in `app` (its pages show the labels); its tests run with the server's.

    #[test]
    fn audit_action_codes_are_unique_and_read_back() {
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(a.code()), Some(a));
            assert!(!a.label().is_empty());
        }
        let mut codes: Vec<&str> = AuditAction::ALL.iter().map(|a| a.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), AuditAction::ALL.len());
        assert_eq!(AuditAction::label_of("no_such_action"), "Change");
    }
}
