//! The tenant's Microsoft Entra provisioning settings: the switch, the bearer tokens and the
//! rotation overlap. Shared by the console and the operator CLI; every change is audited.

use crate::auth::{new_scim_token, sha256_hex, token_hint};
use crate::store::audit::AuditAction;
use crate::store::{Db, StoreResult, Work, audit, tenants, tokens};

/// Longest overlap an admin may choose for a rotated token.
pub const MAX_OVERLAP_SECS: i64 = 24 * 60 * 60;

/// Who did it and from where, for the audit log.
pub struct Actor<'a> {
    pub name: &'a str,
    pub client_addr: &'a str,
}

/// The SCIM base URL Entra's "Tenant URL" field needs.
pub fn endpoint_url(public_url: &str, slug: &str) -> String {
    format!("{}/scim/v2/{slug}", public_url.trim_end_matches('/'))
}

/// Records the audit entry of a change inside the change's unit of work.
pub(crate) async fn record(
    w: &mut Work,
    tenant_id: &str,
    who: &Actor<'_>,
    action: AuditAction,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    let entry = audit::NewAuditEntry {
        tenant_id,
        actor: who.name,
        action,
        detail,
        client_addr: who.client_addr,
    };
    audit::record_in(w, entry, now).await
}

pub async fn set_enabled(
    db: &Db,
    tenant_id: &str,
    enabled: bool,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<()> {
    let mut w = db.begin_work().await?;
    tenants::set_provisioning(&mut w, tenant_id, enabled).await?;
    let action = if enabled {
        AuditAction::ProvisioningEnabled
    } else {
        AuditAction::ProvisioningDisabled
    };
    record(&mut w, tenant_id, who, action, "", now).await?;
    w.commit().await
}

/// A freshly issued token: shown once, never stored.
pub struct IssuedToken {
    pub id: String,
    pub secret: String,
    pub hint: String,
    /// When the tokens it replaced stop working; `None` when nothing was replaced.
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// Generates the tenant's first token, or rotates: the new token is live at once and the
/// previous ones stay valid for the tenant's overlap.
pub async fn issue_token(
    db: &Db,
    tenant_id: &str,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<IssuedToken> {
    let tenant = tenants::by_id(db, tenant_id).await?;
    let secret = new_scim_token();
    let hint = token_hint(&secret);
    let retire_at = now + tenant.token_overlap_secs * 1000;
    // The organisation's optional maximum bearer-token lifetime (off by default).
    let valid_until = crate::oauth::bearer_valid_until(db, tenant_id, now).await?;
    let mut w = db.begin_work().await?;
    let (id, retiring) = tokens::issue(
        &mut w,
        tenant_id,
        &sha256_hex(&secret),
        &hint,
        who.name,
        now,
        retire_at,
        valid_until,
    )
    .await?;
    let rotated = !retiring.is_empty();
    let retire_at = rotated.then_some(retire_at);
    let expiry = valid_until
        .map(|t| format!(" (expires {})", crate::clock::display_time(t)))
        .unwrap_or_default();
    let detail = if rotated {
        format!(
            "{hint}{expiry} replaces {}; the old token works until the overlap ends",
            retiring.join(", ")
        )
    } else {
        format!("{hint}{expiry}")
    };
    let action = if rotated {
        AuditAction::TokenRotated
    } else {
        AuditAction::TokenGenerated
    };
    record(&mut w, tenant_id, who, action, &detail, now).await?;
    w.commit().await?;
    Ok(IssuedToken {
        id,
        secret,
        hint,
        retire_at,
    })
}

pub async fn revoke_token(
    db: &Db,
    tenant_id: &str,
    token_id: &str,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<String> {
    let mut w = db.begin_work().await?;
    let hint = tokens::revoke(&mut w, tenant_id, token_id, now).await?;
    record(
        &mut w,
        tenant_id,
        who,
        AuditAction::TokenRevoked,
        &hint,
        now,
    )
    .await?;
    w.commit().await?;
    Ok(hint)
}

pub async fn set_overlap(
    db: &Db,
    tenant_id: &str,
    secs: i64,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<()> {
    let mut w = db.begin_work().await?;
    tenants::set_token_overlap(&mut w, tenant_id, secs).await?;
    record(
        &mut w,
        tenant_id,
        who,
        AuditAction::OverlapChanged,
        &describe_overlap(secs),
        now,
    )
    .await?;
    w.commit().await
}

pub fn describe_overlap(secs: i64) -> String {
    match secs {
        0 => "no overlap".into(),
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s => format!("{} minutes", s / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_and_overlap_descriptions() {
        assert_eq!(
            endpoint_url("https://x.example/", "acme"),
            "https://x.example/scim/v2/acme"
        );
        assert_eq!(describe_overlap(0), "no overlap");
        assert_eq!(describe_overlap(3600), "1 hour");
        assert_eq!(describe_overlap(7200), "2 hours");
        assert_eq!(describe_overlap(1800), "30 minutes");
    }
}
