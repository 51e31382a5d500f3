//! OAuth 2.0 client credentials (RFC 6749 §4.4) for the SCIM endpoint: client secrets with the
//! bearer token's lifecycle, the token exchange, the SCIM gate's credential lookup, credential
//! lifetimes and the warnings before a credential lapses. Shared by the console, the token
//! endpoint and the operator CLI; every change is audited.

pub mod cli;
mod console;
pub mod http;
pub mod request;

use crate::auth::{constant_time_eq, random_secret_hex, sha256_hex};
use crate::clock::display_time;
use crate::domain::Invalid;
use crate::provisioning::{Actor, record};
use crate::store::audit::AuditAction;
use crate::store::tokens::{self, GateRow};
use crate::store::{Db, StoreError, StoreResult, oauth as store, tenants, throttle};
use request::{BAD_CLIENT, ClientCredentials, ErrorCode, OAuthError};

/// Every client secret starts with this, every access token with the next: secret scanners can
/// recognise a leaked one, and the gate knows which table to look in.
pub const SECRET_PREFIX: &str = "bbz_cs_";
pub const ACCESS_TOKEN_PREFIX: &str = "bbz_at_";

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Access-token lifetimes an organisation may choose.
pub const MIN_ACCESS_TOKEN_SECS: i64 = 60 * 60;
pub const MAX_ACCESS_TOKEN_SECS: i64 = 6 * 60 * 60;
/// Client-secret expiries an admin may choose, in years.
pub const SECRET_YEARS: std::ops::RangeInclusive<i64> = 1..=3;
pub const DEFAULT_SECRET_YEARS: i64 = 2;
/// Longest maximum lifetime for bearer tokens, in days (the shortest is one day).
pub const MAX_BEARER_DAYS: i64 = 3 * 366;
/// Warnings start this long before a credential expires, and last this long after.
pub const WARN_MS: i64 = 30 * DAY_MS;

/// Failed token requests are counted over this window...
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// ...and refused once a client identifier or an address reaches these counts.
pub const MAX_FAILURES_PER_CLIENT: i64 = 10;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 50;

/// `{public-url}/scim/v2/{slug}/oauth/token`: Entra's "Token endpoint".
pub fn token_endpoint_url(public_url: &str, slug: &str) -> String {
    format!(
        "{}/scim/v2/{slug}/oauth/token",
        public_url.trim_end_matches('/')
    )
}

/// The organisation's client identifier: its id (not a secret, never changes).
pub fn client_id(tenant_id: &str) -> &str {
    tenant_id
}

/// The non-secret form of a secret or token: prefix and last four characters.
pub fn hint(prefix: &str, secret: &str) -> String {
    let tail = &secret[secret.len().saturating_sub(4)..];
    format!("{prefix}…{tail}")
}

/// A client-secret expiry between one and three years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretYears(i64);

impl SecretYears {
    pub fn new(years: i64) -> Result<Self, Invalid> {
        if SECRET_YEARS.contains(&years) {
            Ok(Self(years))
        } else {
            Err(Invalid(
                "A client secret expires after 1, 2 or 3 years.".into(),
            ))
        }
    }
    /// The same day and time `n` years after `ms` (29 February becomes 28 February).
    pub fn after(self, ms: i64) -> i64 {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let year = at.year() + self.0 as i32;
        let later = at
            .replace_year(year)
            .or_else(|_| at.replace_day(28).and_then(|d| d.replace_year(year)));
        match later {
            Ok(t) => (t.unix_timestamp_nanos() / 1_000_000) as i64,
            Err(_) => ms + self.0 * 365 * DAY_MS,
        }
    }
}

impl Default for SecretYears {
    fn default() -> Self {
        Self(DEFAULT_SECRET_YEARS)
    }
}

/// A freshly issued client secret: shown once, never stored.
pub struct IssuedSecret {
    pub id: String,
    pub secret: String,
    pub hint: String,
    pub valid_until: i64,
    /// When the secrets it replaced stop working; `None` when nothing was replaced.
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for IssuedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSecret")
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

/// Generates the tenant's first client secret, or rotates: the new secret is live at once and
/// the previous ones (and their access tokens) stay valid for the tenant's rotation overlap.
pub async fn issue_client_secret(
    db: &Db,
    tenant_id: &str,
    years: SecretYears,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<IssuedSecret> {
    let tenant = tenants::by_id(db, tenant_id).await?;
    let secret = format!("{SECRET_PREFIX}{}", random_secret_hex());
    let hint = hint(SECRET_PREFIX, &secret);
    let valid_until = years.after(now);
    let retire_at = now + tenant.token_overlap_secs * 1000;
    let new = store::NewSecret {
        tenant_id,
        secret_hash: &sha256_hex(&secret),
        hint: &hint,
        created_by: who.name,
        valid_until,
    };
    let mut w = db.begin_work().await?;
    let (id, retiring) = store::issue_secret(&mut w, new, now, retire_at).await?;
    let rotated = !retiring.is_empty();
    let detail = if rotated {
        format!(
            "{hint} (expires {}) replaces {}; the old secret works until the overlap ends",
            display_time(valid_until),
            retiring.join(", ")
        )
    } else {
        format!("{hint} (expires {})", display_time(valid_until))
    };
    let action = if rotated {
        AuditAction::ClientSecretRotated
    } else {
        AuditAction::ClientSecretGenerated
    };
    record(&mut w, tenant_id, who, action, &detail, now).await?;
    w.commit().await?;
    Ok(IssuedSecret {
        id,
        secret,
        hint,
        valid_until,
        retire_at: rotated.then_some(retire_at),
    })
}

/// Revokes a client secret at once, with every access token issued for it.
pub async fn revoke_client_secret(
    db: &Db,
    tenant_id: &str,
    secret_id: &str,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<String> {
    let mut w = db.begin_work().await?;
    let hint = store::revoke_secret(&mut w, tenant_id, secret_id, now).await?;
    record(
        &mut w,
        tenant_id,
        who,
        AuditAction::ClientSecretRevoked,
        &hint,
        now,
    )
    .await?;
    w.commit().await?;
    Ok(hint)
}

pub fn check_access_token_lifetime(secs: i64) -> Result<(), Invalid> {
    if (MIN_ACCESS_TOKEN_SECS..=MAX_ACCESS_TOKEN_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(Invalid(
            "The access-token lifetime must be between 60 minutes and 6 hours.".into(),
        ))
    }
}

pub async fn set_access_token_lifetime(
    db: &Db,
    tenant_id: &str,
    secs: i64,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<()> {
    let mut w = db.begin_work().await?;
    store::set_access_token_lifetime(&mut w, tenant_id, secs).await?;
    let detail = crate::provisioning::describe_overlap(secs);
    record(
        &mut w,
        tenant_id,
        who,
        AuditAction::AccessTokenLifetimeChanged,
        &detail,
        now,
    )
    .await?;
    w.commit().await
}

pub fn check_bearer_max_days(days: Option<i64>) -> Result<(), Invalid> {
    match days {
        Some(d) if !(1..=MAX_BEARER_DAYS).contains(&d) => Err(Invalid(format!(
            "The maximum bearer-token lifetime must be between 1 and {MAX_BEARER_DAYS} days, or off."
        ))),
        _ => Ok(()),
    }
}

/// Sets or clears the maximum lifetime of bearer tokens issued from now on. Tokens already
/// issued keep the lifetime they were issued with, so the change never cuts Entra off.
pub async fn set_bearer_max_lifetime(
    db: &Db,
    tenant_id: &str,
    days: Option<i64>,
    who: &Actor<'_>,
    now: i64,
) -> StoreResult<()> {
    let mut w = db.begin_work().await?;
    store::set_bearer_max_lifetime(&mut w, tenant_id, days).await?;
    let detail = match days {
        None => "off (bearer tokens do not expire on their own)".to_string(),
        Some(d) => format!("{d} days, for tokens generated from now on"),
    };
    record(
        &mut w,
        tenant_id,
        who,
        AuditAction::BearerMaxLifetimeChanged,
        &detail,
        now,
    )
    .await?;
    w.commit().await
}

/// When a bearer token issued at `now` must stop, under the tenant's maximum lifetime.
pub async fn bearer_valid_until(db: &Db, tenant_id: &str, now: i64) -> StoreResult<Option<i64>> {
    let l = store::lifetimes(db, tenant_id).await?;
    Ok(l.bearer_max_lifetime_days.map(|d| now + d * DAY_MS))
}

/// What the token endpoint hands out.
pub struct Grant {
    pub access_token: String,
    pub expires_in: i64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

fn server_error(e: StoreError) -> OAuthError {
    tracing::error!(error = %e, "token endpoint store failure");
    OAuthError::new(
        ErrorCode::ServerError,
        "Internal error; it has been logged. Try again shortly.",
    )
}

/// Authenticates the client of organisation `slug` and issues an access token.
///
/// Unknown client, wrong secret, another organisation's secret, and a revoked, rotated-out or
/// expired secret take the same path (one lookup by the secret's hash, constant-time compares,
/// one failure record) and get the same answer. Failures are counted per client identifier and
/// per address; past the limits every request from either is refused until the window passes.
pub async fn exchange(
    db: &Db,
    slug: &str,
    client_addr: &str,
    creds: &ClientCredentials,
    now: i64,
) -> Result<Grant, OAuthError> {
    let client_key = format!("oauth-client:{}", creds.client_id);
    let address_key = format!("oauth-address:{client_addr}");
    let since = now - THROTTLE_WINDOW_MS;
    throttle::prune(db, since).await.map_err(server_error)?;
    // Counted before the secret is checked (and taken back on success), so concurrent wrong
    // guesses cannot overrun the limits.
    let limits = [
        throttle::Limit {
            key: &client_key,
            max: MAX_FAILURES_PER_CLIENT,
        },
        throttle::Limit {
            key: &address_key,
            max: MAX_FAILURES_PER_ADDRESS,
        },
    ];
    let attempt = match throttle::reserve(db, &limits, since, now)
        .await
        .map_err(server_error)?
    {
        throttle::Reservation::Granted(id) => id,
        throttle::Reservation::Refused => {
            tracing::warn!(
                tenant = slug,
                client_addr,
                "token request refused: too many failed attempts"
            );
            return Err(OAuthError::new(
                ErrorCode::TooManyAttempts,
                "Too many failed client authentications. Wait 15 minutes, then try again.",
            ));
        }
    };

    let hash = sha256_hex(&creds.client_secret);
    let row = store::client_lookup(db, &hash)
        .await
        .map_err(server_error)?;
    let row = row.filter(|r| {
        let same_hash = constant_time_eq(&r.secret_hash, &hash);
        let same_client = constant_time_eq(client_id(&r.tenant_id), &creds.client_id);
        let same_tenant = constant_time_eq(&r.tenant_slug, slug);
        let live = r.revoked_at.is_none() & (r.ends_at() > now);
        same_hash & same_client & same_tenant & live
    });
    let Some(row) = row else {
        // The reservation stays: it is this failure's record.
        tracing::info!(
            tenant = slug,
            client_addr,
            "token request refused: client authentication failed"
        );
        return Err(BAD_CLIENT);
    };

    throttle::release(db, &attempt)
        .await
        .map_err(server_error)?;
    let access_token = format!("{ACCESS_TOKEN_PREFIX}{}", random_secret_hex());
    // Never longer than the secret it was issued for: expires_in tells the truth.
    let expires_at = (now + row.access_token_lifetime_secs * 1000).min(row.ends_at());
    store::issue_access_token(
        db,
        &row.tenant_id,
        &row.secret_id,
        &sha256_hex(&access_token),
        now,
        expires_at,
    )
    .await
    .map_err(server_error)?;
    Ok(Grant {
        access_token,
        expires_in: (expires_at - now) / 1000,
    })
}

/// The SCIM gate's one lookup: an access token (by its prefix) or a bearer token, by hash.
/// The row's `expires_at` and `revoked_at` already combine every limit that applies.
pub async fn gate_lookup(db: &Db, presented: &str, hash: &str) -> StoreResult<Option<GateRow>> {
    if presented.starts_with(ACCESS_TOKEN_PREFIX) {
        store::access_gate_lookup(db, hash).await
    } else {
        tokens::gate_lookup(db, hash).await
    }
}

/// Records the use of whichever credential passed the gate.
pub async fn touch(db: &Db, row: &GateRow, now: i64) -> StoreResult<()> {
    if row.access_token {
        store::touch_access_token(db, &row.token_id, now).await
    } else {
        tokens::touch(db, &row.token_id, now).await
    }
}

/// A credential that expires within 30 days, or expired within the last 30 days while no other
/// credential of its kind is live.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialWarning {
    pub lapsed: bool,
    pub text: String,
}

fn days_between(from: i64, to: i64) -> i64 {
    ((to - from) + DAY_MS - 1).div_euclid(DAY_MS)
}

/// Warnings for the tenant's credentials at `now`, most urgent first.
pub async fn credential_warnings(
    db: &Db,
    tenant_id: &str,
    now: i64,
) -> StoreResult<Vec<CredentialWarning>> {
    let (live_bearer, live_secrets) = store::live_counts(db, tenant_id, now).await?;
    let mut out = Vec::new();
    for e in store::expiring(db, tenant_id, now - WARN_MS, now + WARN_MS).await? {
        let bearer = e.kind == "bearer";
        let (what, fix) = if bearer {
            (
                "Bearer token",
                "Select Rotate token and paste the new token into the Secret Token field in Microsoft Entra ID",
            )
        } else {
            (
                "Client secret",
                "Select Rotate client secret and paste the new secret into the Client Secret field in Microsoft Entra ID",
            )
        };
        let when = display_time(e.valid_until);
        if e.valid_until <= now {
            let others_live = if bearer { live_bearer } else { live_secrets } > 0;
            if others_live {
                continue;
            }
            out.push(CredentialWarning {
                lapsed: true,
                text: format!(
                    "{what} {} expired on {when}: Microsoft Entra ID cannot use it any more. {fix}.",
                    e.hint
                ),
            });
        } else {
            let days = days_between(now, e.valid_until);
            let left = if days == 1 {
                "in less than a day".to_string()
            } else {
                format!("in {days} days")
            };
            out.push(CredentialWarning {
                lapsed: false,
                text: format!(
                    "{what} {} expires on {when} ({left}). {fix} before then.",
                    e.hint
                ),
            });
        }
    }
    out.sort_by_key(|w| !w.lapsed);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_ids_and_hints() {
        assert_eq!(
            token_endpoint_url("https://x.example/", "acme"),
            "https://x.example/scim/v2/acme/oauth/token"
        );
        assert_eq!(client_id("abc"), "abc");
        assert_eq!(hint(SECRET_PREFIX, "bbz_cs_0123abcd"), "bbz_cs_…abcd");
    }

    #[test]
    fn secret_years_are_bounded_and_calendar_exact() {
        assert!(SecretYears::new(0).is_err());
        assert!(SecretYears::new(4).is_err());
        assert_eq!(SecretYears::default(), SecretYears::new(2).unwrap());
        // 2025-11-26 05:30 UTC + 2 years = 2027-11-26 05:30 UTC.
        let start = 1_764_135_000_000;
        assert_eq!(
            display_time(SecretYears::new(2).unwrap().after(start)),
            "2027-11-26 05:30 UTC"
        );
        // 2028-02-29 + 1 year = 2029-02-28.
        let leap = 1_835_395_200_000; // 2028-02-29 00:00 UTC
        assert_eq!(display_time(leap), "2028-02-29 00:00 UTC");
        assert_eq!(
            display_time(SecretYears::new(1).unwrap().after(leap)),
            "2029-02-28 00:00 UTC"
        );
    }

    #[test]
    fn lifetimes_are_checked() {
        assert!(check_access_token_lifetime(3599).is_err());
        assert!(check_access_token_lifetime(3600).is_ok());
        assert!(check_access_token_lifetime(21600).is_ok());
        assert!(check_access_token_lifetime(21601).is_err());
        assert!(check_bearer_max_days(None).is_ok());
        assert!(check_bearer_max_days(Some(0)).is_err());
        assert!(check_bearer_max_days(Some(90)).is_ok());
        assert!(check_bearer_max_days(Some(MAX_BEARER_DAYS + 1)).is_err());
    }

    #[test]
    fn days_round_up() {
        assert_eq!(days_between(0, 1), 1);
        assert_eq!(days_between(0, DAY_MS), 1);
        assert_eq!(days_between(0, DAY_MS + 1), 2);
        assert_eq!(days_between(0, 30 * DAY_MS), 30);
    }
}
