//! Creating an organisation with its first admin. The console's setup page and the operator CLI
//! both come here: the organisation, its admin and the audit entry commit together or not at
//! all.

use crate::domain::{self, Tenant};
use crate::provisioning::{Actor, record};
use crate::store::audit::AuditAction;
use crate::store::tenants::{self, InstallGate, NewAdmin};
use crate::store::{Db, StoreResult};

/// Creates the organisation (its slug from its name, made unique) with `admin` as its first
/// admin. `InstallGate::FirstRun` fails with `Conflict(Install)` once any organisation exists.
pub async fn create(
    db: &Db,
    gate: InstallGate,
    name: &str,
    admin: NewAdmin<'_>,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<Tenant> {
    let mut w = db.begin_work().await?;
    let tenant =
        tenants::create_with_admin_in(&mut w, gate, name, &domain::slugify(name), admin, now)
            .await?;
    record(
        &mut w,
        &tenant.id,
        who,
        AuditAction::OrganisationCreated,
        &tenant.name,
        now,
    )
    .await?;
    w.commit().await?;
    // The first admin is a directory user too: give it its search index (derived data,
    // rebuilt from the row whenever it is missing).
    crate::directory::reindex_pending(db).await?;
    Ok(tenant)
}
