//! What the operator commands `bitabiz provisioning oauth-client` and `… status` print. Built
//! here, as text, so the binary only prints it.

use super::{
    CredentialWarning, SecretYears, client_id, credential_warnings, issue_client_secret,
    token_endpoint_url,
};
use crate::clock::display_time;
use crate::domain::Tenant;
use crate::provisioning::{Actor, describe_overlap, endpoint_url};
use crate::store::{Db, StoreResult, oauth as store, tokens};

/// Issues a client secret for `tenant` (audited as `cli`) and returns exactly three lines:
/// `TOKEN_ENDPOINT=…`, `CLIENT_ID=…`, `CLIENT_SECRET=…`.
pub async fn oauth_client(
    db: &Db,
    tenant: &Tenant,
    years: SecretYears,
    public_url: &str,
    now: i64,
) -> StoreResult<[String; 3]> {
    let cli = Actor {
        name: "cli",
        client_addr: "",
    };
    let issued = issue_client_secret(db, &tenant.id, years, &cli, now).await?;
    Ok([
        format!(
            "TOKEN_ENDPOINT={}",
            token_endpoint_url(public_url, &tenant.slug)
        ),
        format!("CLIENT_ID={}", client_id(&tenant.id)),
        format!("CLIENT_SECRET={}", issued.secret),
    ])
}

fn when(at: Option<i64>) -> String {
    at.map_or_else(|| "never".into(), display_time)
}

/// The organisation's provisioning state, its live credentials with their expiry, the last SCIM
/// request and any expiry warning, as lines of text.
pub async fn status(
    db: &Db,
    tenant: &Tenant,
    public_url: &str,
    now: i64,
) -> StoreResult<Vec<String>> {
    let lifetimes = store::lifetimes(db, &tenant.id).await?;
    let mut out = vec![
        format!("Organisation: {} ({})", tenant.name, tenant.slug),
        format!(
            "Automatic user provisioning: {}",
            if tenant.provisioning_enabled {
                "enabled"
            } else {
                "disabled (SCIM requests are refused with 403)"
            }
        ),
        format!("SCIM endpoint: {}", endpoint_url(public_url, &tenant.slug)),
        format!(
            "Token endpoint: {}",
            token_endpoint_url(public_url, &tenant.slug)
        ),
        format!("Client identifier: {}", client_id(&tenant.id)),
        format!(
            "Access-token lifetime: {}",
            describe_overlap(lifetimes.access_token_lifetime_secs)
        ),
        format!(
            "Bearer-token maximum lifetime: {}",
            lifetimes
                .bearer_max_lifetime_days
                .map_or_else(|| "off".into(), |d| format!("{d} days"))
        ),
        format!(
            "Rotation overlap: {}",
            describe_overlap(tenant.token_overlap_secs)
        ),
    ];
    let mut live = Vec::new();
    for t in tokens::list(db, &tenant.id).await? {
        if t.is_live(now) {
            let state = if t.expires_at.is_some() {
                "retiring"
            } else {
                "active"
            };
            live.push(format!(
                "  bearer token   {}  {state}  created {} by {}  last used {}  expires {}",
                t.hint,
                display_time(t.created_at),
                t.created_by,
                when(t.last_used_at),
                when(t.ends_at()),
            ));
        }
    }
    for s in store::list_secrets(db, &tenant.id).await? {
        if s.is_live(now) {
            let state = if s.retire_at.is_some() {
                "retiring"
            } else {
                "active"
            };
            live.push(format!(
                "  client secret  {}  {state}  created {} by {}  last used {}  expires {}",
                s.hint,
                display_time(s.created_at),
                s.created_by,
                when(s.last_used_at),
                display_time(s.ends_at()),
            ));
        }
    }
    if live.is_empty() {
        out.push("Live credentials: none (Microsoft Entra ID cannot connect)".into());
    } else {
        out.push("Live credentials:".into());
        out.extend(live);
    }
    out.push(format!(
        "Last request: {}",
        when(store::last_request(db, &tenant.id).await?)
    ));
    let warnings: Vec<CredentialWarning> = credential_warnings(db, &tenant.id, now).await?;
    for w in &warnings {
        out.push(format!(
            "{}: {}",
            if w.lapsed { "EXPIRED" } else { "WARNING" },
            w.text
        ));
    }
    if !warnings.is_empty() {
        out.push(format!(
            "Replace a credential from here with `bitabiz provisioning rotate-token --tenant {0}` \
             or `bitabiz provisioning oauth-client --tenant {0}`.",
            tenant.slug
        ));
    }
    Ok(out)
}
