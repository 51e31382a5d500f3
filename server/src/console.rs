//! The console's backend: implements the UI's `ConsoleBackend` contract over the store.

mod views;

use app::backend::{
    ClientAddr, ConsoleBackend, ConsoleError, NewSession, SetupForm, SignInOutcome,
};
use app::model::*;
use async_trait::async_trait;

use crate::AppState;
use crate::auth::{password, random_secret_hex, sha256_hex};
use crate::clock::display_time;
use crate::domain::{self, Invalid};
use crate::provisioning::{self, Actor, MAX_OVERLAP_SECS};
use crate::store::audit::AuditAction;
use crate::store::{self, StoreError, audit, sessions, tenants, throttle, tokens, users};

/// A session ends after this long without activity...
pub const SESSION_IDLE_MS: i64 = 2 * 60 * 60 * 1000;
/// ...and in any case this long after sign-in.
pub const SESSION_ABSOLUTE_MS: i64 = 12 * 60 * 60 * 1000;
/// `last_seen_at` is written at most this often per session.
const SESSION_TOUCH_MS: i64 = 60 * 1000;
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

const WRONG_CREDENTIALS: &str = "Wrong email or password.";
const TOO_MANY_FAILURES: &str =
    "Too many failed sign-in attempts. Wait 15 minutes, then try again.";
const ALREADY_SET_UP: &str = "This BitaBIZ is already set up. Sign in instead.";

pub struct Console {
    state: AppState,
}

/// Logs the detail of an unexpected store failure and gives the admin a generic message.
pub(crate) fn internal(e: StoreError) -> ConsoleError {
    match e {
        StoreError::NotFound => ConsoleError::NotFound("That item no longer exists.".into()),
        StoreError::Conflict(what) => {
            ConsoleError::Conflict(format!("That conflicts with an existing {what}."))
        }
        StoreError::LastAdmin => {
            ConsoleError::Conflict("The organisation must keep at least one active admin.".into())
        }
        StoreError::Stale => ConsoleError::Conflict(
            "Someone else changed this at the same time; reload and try again.".into(),
        ),
        StoreError::Internal(e) => {
            tracing::error!(error = %e, "console store failure");
            ConsoleError::Internal
        }
    }
}

fn hash_error(e: password::HashError) -> ConsoleError {
    match e {
        password::HashError::Busy => ConsoleError::Busy(
            "Many sign-ins are being checked right now. Wait a few seconds, then try again.".into(),
        ),
        password::HashError::Failed => ConsoleError::Internal,
    }
}

fn invalid(e: Invalid) -> ConsoleError {
    ConsoleError::Invalid(e.0)
}

impl Console {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    fn now(&self) -> i64 {
        self.state.clock.now_ms()
    }

    async fn start_session(
        &self,
        user_id: &str,
        tenant_id: &str,
    ) -> Result<NewSession, ConsoleError> {
        let secret = random_secret_hex();
        sessions::create(
            &self.state.db,
            &sha256_hex(&secret),
            user_id,
            tenant_id,
            self.now(),
        )
        .await
        .map_err(internal)?;
        Ok(NewSession(secret))
    }

    /// The live session for this secret: expired, signed-out, disabled or demoted ones are none.
    pub async fn authenticate(
        &self,
        secret: &str,
    ) -> Result<Option<sessions::SessionRow>, ConsoleError> {
        let db = &self.state.db;
        let hash = sha256_hex(secret);
        let Some(row) = sessions::lookup(db, &hash).await.map_err(internal)? else {
            return Ok(None);
        };
        let now = self.now();
        let expired =
            now - row.last_seen_at > SESSION_IDLE_MS || now - row.created_at > SESSION_ABSOLUTE_MS;
        if expired || !row.active || !row.is_admin {
            sessions::delete(db, &hash).await.map_err(internal)?;
            return Ok(None);
        }
        if now - row.last_seen_at > SESSION_TOUCH_MS {
            sessions::touch(db, &hash, now).await.map_err(internal)?;
        }
        Ok(Some(row))
    }

    pub async fn require(&self, secret: &str) -> Result<sessions::SessionRow, ConsoleError> {
        self.authenticate(secret)
            .await?
            .ok_or(ConsoleError::Unauthorized)
    }

    pub(crate) async fn audit(
        &self,
        tenant_id: &str,
        actor: &str,
        action: AuditAction,
        detail: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let entry = audit::NewAuditEntry {
            tenant_id,
            actor,
            action,
            detail,
            client_addr: &client.0,
        };
        audit::record(&self.state.db, entry, self.now())
            .await
            .map_err(internal)
    }

    async fn check_setup_code(&self, code: &str) -> Result<(), ConsoleError> {
        if !self.state.settings.setup_code_required {
            return Ok(());
        }
        let hash = sha256_hex(code.trim());
        let state = tenants::setup_code_state(&self.state.db, &hash, self.now())
            .await
            .map_err(internal)?;
        let refused = match state {
            tenants::SetupCodeState::Live => return Ok(()),
            tenants::SetupCodeState::Unknown => {
                "The setup code is not correct. Copy it from the server's log.".to_string()
            }
            tenants::SetupCodeState::Expired { expired_at } => format!(
                "This setup code expired on {}. Restart the server, or run `bitabiz setup-code` \
                 on it, for a new one.",
                display_time(expired_at)
            ),
            tenants::SetupCodeState::Replaced => "This setup code was replaced by a newer one. \
                 Use the latest code from the server's log or from `bitabiz setup-code`."
                .to_string(),
        };
        Err(ConsoleError::Forbidden(refused))
    }
}

#[async_trait]
impl ConsoleBackend for Console {
    fn secure_cookies(&self) -> bool {
        self.state.settings.public_url.starts_with("https://")
    }

    async fn setup_info(&self) -> Result<SetupInfo, ConsoleError> {
        let done = tenants::install_completed(&self.state.db)
            .await
            .map_err(internal)?;
        Ok(SetupInfo {
            needs_setup: !done,
            needs_code: !done && self.state.settings.setup_code_required,
        })
    }

    async fn create_first_tenant(
        &self,
        form: SetupForm,
        client: &ClientAddr,
    ) -> Result<NewSession, ConsoleError> {
        let db = &self.state.db;
        if tenants::install_completed(db).await.map_err(internal)? {
            return Err(ConsoleError::Forbidden(ALREADY_SET_UP.into()));
        }
        let org_name = domain::clean_name("Organisation name", &form.org_name).map_err(invalid)?;
        let admin_name = domain::clean_name("Your name", &form.admin_name).map_err(invalid)?;
        let email = domain::clean_email(&form.email).map_err(invalid)?;
        domain::check_new_password(&form.password, &form.confirm).map_err(invalid)?;
        self.check_setup_code(&form.setup_code).await?;
        let hash = self
            .state
            .hasher
            .hash(form.password)
            .await
            .map_err(hash_error)?;
        let admin = tenants::NewAdmin {
            name: &admin_name,
            email: &email,
            password_hash: &hash,
            source: "console",
        };
        let who = crate::provisioning::Actor {
            name: &email,
            client_addr: &client.0,
        };
        let tenant = match crate::organisations::create(
            db,
            tenants::InstallGate::FirstRun,
            &org_name,
            admin,
            &who,
            self.now(),
        )
        .await
        {
            Ok(t) => t,
            Err(StoreError::Conflict(_)) => {
                return Err(ConsoleError::Forbidden(ALREADY_SET_UP.into()));
            }
            Err(e) => return Err(internal(e)),
        };
        let creds = users::admins_by_email(db, &email.to_lowercase())
            .await
            .map_err(internal)?;
        let me = creds
            .into_iter()
            .find(|c| c.tenant_id == tenant.id)
            .ok_or(ConsoleError::Internal)?;
        self.audit(&tenant.id, &email, AuditAction::SignedIn, "", client)
            .await?;
        self.start_session(&me.user_id, &tenant.id).await
    }

    async fn sign_in(
        &self,
        email: &str,
        password_given: &str,
        tenant_slug: Option<&str>,
        client: &ClientAddr,
    ) -> Result<SignInOutcome, ConsoleError> {
        let outcome = self
            .sign_in_checked(email, password_given, tenant_slug, client)
            .await;
        let label = match &outcome {
            Ok(SignInOutcome::Session(_)) => "success",
            Ok(SignInOutcome::ChooseTenant(_)) => "choose_organisation",
            Err(ConsoleError::Invalid(_)) => "wrong",
            Err(ConsoleError::TooManyAttempts(_)) => "throttled",
            Err(ConsoleError::Busy(_)) => "busy",
            Err(_) => "error",
        };
        self.state.metrics.count(crate::metrics::SIGN_IN, label);
        outcome
    }
    async fn sign_out(&self, secret: &str) -> Result<(), ConsoleError> {
        let db = &self.state.db;
        let hash = sha256_hex(secret);
        if let Some(row) = sessions::lookup(db, &hash).await.map_err(internal)? {
            let who = row.email.unwrap_or_default();
            self.audit(
                &row.tenant_id,
                &who,
                AuditAction::SignedOut,
                "",
                &ClientAddr(String::new()),
            )
            .await?;
        }
        sessions::delete(db, &hash).await.map_err(internal)
    }

    async fn session_info(&self, secret: &str) -> Result<Option<SessionInfo>, ConsoleError> {
        Ok(self.authenticate(secret).await?.map(|s| SessionInfo {
            admin_name: s
                .display_name
                .clone()
                .or(s.email.clone())
                .unwrap_or_default(),
            admin_email: s.email.unwrap_or_default(),
            tenant_name: s.tenant_name,
            tenant_slug: s.tenant_slug,
        }))
    }

    async fn home(&self, secret: &str) -> Result<HomeData, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let tenant = tenants::by_id(db, &s.tenant_id).await.map_err(internal)?;
        let admins = users::list_admins(db, &s.tenant_id)
            .await
            .map_err(internal)?;
        let provisioned_users = users::count_provisioned(db, &s.tenant_id)
            .await
            .map_err(internal)?;
        let provisioning_summary = self.health_summary(&s.tenant_id).await?;
        Ok(HomeData {
            tenant_name: tenant.name,
            tenant_slug: tenant.slug,
            created_at: display_time(tenant.created_at),
            provisioning_enabled: tenant.provisioning_enabled,
            provisioned_users,
            provisioning_summary,
            admins: admins
                .into_iter()
                .map(|a| AdminAccount {
                    is_you: a.id == s.user_id,
                    name: a
                        .display_name
                        .clone()
                        .or(a.email.clone())
                        .unwrap_or_default(),
                    email: a.email.unwrap_or_default(),
                    created_at: display_time(a.created_at),
                    active: a.active,
                })
                .collect(),
        })
    }

    async fn integration(&self, secret: &str) -> Result<IntegrationView, ConsoleError> {
        let s = self.require(secret).await?;
        let db = &self.state.db;
        let tenant = tenants::by_id(db, &s.tenant_id).await.map_err(internal)?;
        let now = self.now();
        let tokens = tokens::list(db, &s.tenant_id).await.map_err(internal)?;
        // The page's own actions and those of its OAuth 2.0 section.
        let actions: Vec<AuditAction> = AuditAction::ALL
            .into_iter()
            .filter(|a| a.on_integration_page())
            .collect();
        let recent = audit::recent(db, &s.tenant_id, &actions, 20)
            .await
            .map_err(internal)?;
        let (_, live_secrets) = store::oauth::live_counts(db, &s.tenant_id, now)
            .await
            .map_err(internal)?;
        Ok(IntegrationView {
            has_live_client_secret: live_secrets > 0,
            enabled: tenant.provisioning_enabled,
            endpoint_url: provisioning::endpoint_url(&self.state.settings.public_url, &tenant.slug),
            tokens: tokens.iter().map(|t| token_view(t, now)).collect(),
            overlap_minutes: tenant.token_overlap_secs / 60,
            recent: recent
                .into_iter()
                .map(|e| AuditView {
                    at: display_time(e.at),
                    actor: e.actor,
                    action: e.action,
                    detail: e.detail,
                    client_addr: e.client_addr,
                })
                .collect(),
        })
    }

    async fn set_provisioning(
        &self,
        secret: &str,
        enabled: bool,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        let tenant = tenants::by_id(&self.state.db, &s.tenant_id)
            .await
            .map_err(internal)?;
        if tenant.provisioning_enabled == enabled {
            return Ok(());
        }
        provisioning::set_enabled(
            &self.state.db,
            &s.tenant_id,
            enabled,
            &Self::actor(&s, client),
            self.now(),
        )
        .await
        .map_err(internal)
    }

    async fn issue_token(
        &self,
        secret: &str,
        client: &ClientAddr,
    ) -> Result<NewTokenView, ConsoleError> {
        let s = self.require(secret).await?;
        let now = self.now();
        let issued =
            provisioning::issue_token(&self.state.db, &s.tenant_id, &Self::actor(&s, client), now)
                .await
                .map_err(internal)?;
        Ok(NewTokenView {
            token: issued.secret,
            hint: issued.hint,
            rotated: issued.retire_at.is_some(),
            old_tokens_until: issued.retire_at.map(display_time),
        })
    }

    async fn revoke_token(
        &self,
        secret: &str,
        token_id: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        match provisioning::revoke_token(
            &self.state.db,
            &s.tenant_id,
            token_id,
            &Self::actor(&s, client),
            self.now(),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => Err(ConsoleError::NotFound(
                "That token does not exist (any more).".into(),
            )),
            Err(e) => Err(internal(e)),
        }
    }

    async fn set_token_overlap(
        &self,
        secret: &str,
        minutes: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        let secs = minutes.saturating_mul(60);
        if !(0..=MAX_OVERLAP_SECS).contains(&secs) {
            return Err(ConsoleError::Invalid(
                "The overlap must be between 0 minutes and 24 hours.".into(),
            ));
        }
        provisioning::set_overlap(
            &self.state.db,
            &s.tenant_id,
            secs,
            &Self::actor(&s, client),
            self.now(),
        )
        .await
        .map_err(internal)
    }

    // OAuth 2.0 client credentials: implemented in `crate::oauth::console`.
    async fn oauth_clients(&self, secret: &str) -> Result<OAuthView, ConsoleError> {
        self.oauth_view(secret).await
    }
    async fn issue_client_secret(
        &self,
        secret: &str,
        years: i64,
        client: &ClientAddr,
    ) -> Result<NewClientSecretView, ConsoleError> {
        self.oauth_issue_secret(secret, years, client).await
    }
    async fn revoke_client_secret(
        &self,
        secret: &str,
        secret_id: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        self.oauth_revoke_secret(secret, secret_id, client).await
    }
    async fn set_access_token_lifetime(
        &self,
        secret: &str,
        minutes: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        self.oauth_set_access_token_lifetime(secret, minutes, client)
            .await
    }
    async fn set_bearer_max_lifetime(
        &self,
        secret: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        self.oauth_set_bearer_max_lifetime(secret, days, client)
            .await
    }
    async fn credential_warnings(
        &self,
        secret: &str,
    ) -> Result<Vec<CredentialWarningView>, ConsoleError> {
        self.oauth_warnings(secret).await
    }

    // Users, Groups, Provisioning log and health: see `views`.
    async fn list_users(
        &self,
        secret: &str,
        query: UserListQuery,
    ) -> Result<UserListView, ConsoleError> {
        self.users_view(secret, query).await
    }

    async fn user_detail(&self, secret: &str, id: &str) -> Result<UserDetailView, ConsoleError> {
        self.user_view(secret, id).await
    }

    async fn list_groups(
        &self,
        secret: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupListView, ConsoleError> {
        self.groups_view(secret, search, after).await
    }

    async fn group_detail(
        &self,
        secret: &str,
        id: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupDetailView, ConsoleError> {
        self.group_view(secret, id, search, after).await
    }

    async fn provisioning_log(
        &self,
        secret: &str,
        query: LogQuery,
    ) -> Result<LogView, ConsoleError> {
        self.log_view(secret, query).await
    }

    async fn log_entry(&self, secret: &str, id: &str) -> Result<LogEntryView, ConsoleError> {
        self.log_entry_view(secret, id).await
    }

    async fn set_log_retention(
        &self,
        secret: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        self.set_retention(secret, days, client).await
    }

    async fn provisioning_health(&self, secret: &str) -> Result<HealthView, ConsoleError> {
        self.health_view(secret).await
    }
}

fn token_view(t: &tokens::TokenRow, now: i64) -> TokenView {
    let state = if t.revoked_at.is_some() {
        TokenState::Revoked
    } else if t.valid_until.is_some_and(|at| at <= now) {
        TokenState::Expired
    } else {
        match t.expires_at {
            Some(at) if at <= now => TokenState::Expired,
            Some(_) => TokenState::Retiring,
            None => TokenState::Active,
        }
    };
    TokenView {
        id: t.id.clone(),
        hint: t.hint.clone(),
        created_at: display_time(t.created_at),
        created_by: t.created_by.clone(),
        last_used_at: t.last_used_at.map(display_time),
        state,
        retires_at: t.expires_at.map(display_time),
        revoked_at: t.revoked_at.map(display_time),
        valid_until: t.valid_until.map(display_time),
    }
}

impl Console {
    /// Sign-in proper. The attempt is counted against the account and the address *before* any
    /// password is checked (a success takes it back), so concurrent guesses cannot overrun the
    /// limits. Exactly one password hash is computed unless that first one matches: the time
    /// of a wrong guess says nothing about how many organisations the email is admin in.
    async fn sign_in_checked(
        &self,
        email: &str,
        password_given: &str,
        tenant_slug: Option<&str>,
        client: &ClientAddr,
    ) -> Result<SignInOutcome, ConsoleError> {
        let db = &self.state.db;
        let now = self.now();
        let email_lc = email.trim().to_lowercase();
        let account_key = format!("account:{email_lc}");
        let address_key = format!("address:{}", client.0);
        let since = now - THROTTLE_WINDOW_MS;
        throttle::prune(db, since).await.map_err(internal)?;
        let limits = [
            throttle::Limit {
                key: &account_key,
                max: MAX_FAILURES_PER_ACCOUNT,
            },
            throttle::Limit {
                key: &address_key,
                max: MAX_FAILURES_PER_ADDRESS,
            },
        ];
        let attempt = match throttle::reserve(db, &limits, since, now)
            .await
            .map_err(internal)?
        {
            throttle::Reservation::Granted(id) => id,
            throttle::Reservation::Refused => {
                return Err(ConsoleError::TooManyAttempts(TOO_MANY_FAILURES.into()));
            }
        };
        let checked = self
            .matching_admins(&email_lc, password_given, tenant_slug)
            .await;
        let (candidates, matching) = match checked {
            Ok(v) => v,
            Err(e) => {
                // The password was never judged: the attempt does not count.
                if let Err(re) = throttle::release(db, &attempt).await {
                    tracing::warn!(error = %re, "releasing a sign-in reservation failed");
                }
                return Err(e);
            }
        };
        if matching.is_empty() {
            // The reservation stays as the failure. Auditing happens off the request path, so
            // the number of organisations does not show in the answer's timing either.
            let state = self.state.clone();
            let client = client.0.clone();
            tokio::spawn(async move {
                for c in candidates {
                    let entry = audit::NewAuditEntry {
                        tenant_id: &c.tenant_id,
                        actor: &email_lc,
                        action: AuditAction::SignInFailed,
                        detail: "",
                        client_addr: &client,
                    };
                    if let Err(e) = audit::record(&state.db, entry, now).await {
                        tracing::warn!(error = %e, "auditing a failed sign-in failed");
                    }
                }
            });
            return Err(ConsoleError::Invalid(WRONG_CREDENTIALS.into()));
        }
        throttle::release(db, &attempt).await.map_err(internal)?;
        throttle::clear(db, &account_key).await.map_err(internal)?;
        if let [me] = matching.as_slice() {
            self.audit(&me.tenant_id, &email_lc, AuditAction::SignedIn, "", client)
                .await?;
            return Ok(SignInOutcome::Session(
                self.start_session(&me.user_id, &me.tenant_id).await?,
            ));
        }
        Ok(SignInOutcome::ChooseTenant(
            matching
                .into_iter()
                .map(|c| TenantChoice {
                    slug: c.tenant_slug,
                    name: c.tenant_name,
                })
                .collect(),
        ))
    }

    /// The admin accounts (active, with this password) the email may sign in to, and every
    /// candidate looked at. The first candidate (or a dummy) is always checked; the others only
    /// when it matched, so an admin who uses different passwords in different organisations
    /// names the organisation.
    async fn matching_admins(
        &self,
        email_lc: &str,
        password_given: &str,
        tenant_slug: Option<&str>,
    ) -> Result<(Vec<users::AdminCredentials>, Vec<users::AdminCredentials>), ConsoleError> {
        let candidates: Vec<_> = users::admins_by_email(&self.state.db, email_lc)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|c| tenant_slug.is_none_or(|s| c.tenant_slug == s))
            .collect();
        let hasher = &self.state.hasher;
        let verify = |phc: Option<String>| hasher.verify(password_given.to_string(), phc);
        let mut matching = Vec::new();
        let first_ok = verify(candidates.first().map(|c| c.password_hash.clone()))
            .await
            .map_err(hash_error)?;
        if first_ok {
            for (i, c) in candidates.iter().enumerate() {
                let ok = i == 0
                    || verify(Some(c.password_hash.clone()))
                        .await
                        .map_err(hash_error)?;
                if ok && c.active {
                    matching.push(c.clone());
                }
            }
        }
        Ok((candidates, matching))
    }

    pub(crate) fn app_state(&self) -> &AppState {
        &self.state
    }

    /// The signed-in admin as an audit actor.
    pub(crate) fn actor<'a>(s: &'a sessions::SessionRow, client: &'a ClientAddr) -> Actor<'a> {
        Actor {
            name: s.email.as_deref().unwrap_or("admin"),
            client_addr: &client.0,
        }
    }
}

/// Prunes sessions past their expiry; run now and then by the server.
pub async fn prune_sessions(state: &AppState) -> Result<u64, StoreError> {
    let now = state.clock.now_ms();
    store::sessions::prune(&state.db, now - SESSION_IDLE_MS, now - SESSION_ABSOLUTE_MS).await
}
