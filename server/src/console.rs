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
        StoreError::Internal(e) => {
            tracing::error!(error = %e, "console store failure");
            ConsoleError::Internal
        }
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
        action: &str,
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
        let known = tenants::setup_code_exists(&self.state.db, &sha256_hex(code.trim()))
            .await
            .map_err(internal)?;
        if known {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "The setup code is not correct. Copy it from the server's log.".into(),
            ))
        }
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
        let hash = password::hash(form.password)
            .await
            .map_err(|_| ConsoleError::Internal)?;
        let admin = tenants::NewAdmin {
            name: &admin_name,
            email: &email,
            password_hash: &hash,
            source: "console",
        };
        let tenant = match tenants::create_with_admin(
            db,
            tenants::InstallGate::FirstRun,
            &org_name,
            &domain::slugify(&org_name),
            admin,
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
        self.audit(
            &tenant.id,
            &email,
            "organisation_created",
            &tenant.name,
            client,
        )
        .await?;
        let creds = users::admins_by_email(db, &email.to_lowercase())
            .await
            .map_err(internal)?;
        let me = creds
            .into_iter()
            .find(|c| c.tenant_id == tenant.id)
            .ok_or(ConsoleError::Internal)?;
        self.audit(&tenant.id, &email, "signed_in", "", client)
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
        let db = &self.state.db;
        let now = self.now();
        let email_lc = email.trim().to_lowercase();
        let account_key = format!("account:{email_lc}");
        let address_key = format!("address:{}", client.0);
        let since = now - THROTTLE_WINDOW_MS;
        throttle::prune(db, since).await.map_err(internal)?;
        let by_account = throttle::failures_since(db, &account_key, since)
            .await
            .map_err(internal)?;
        let by_address = throttle::failures_since(db, &address_key, since)
            .await
            .map_err(internal)?;
        if by_account >= MAX_FAILURES_PER_ACCOUNT || by_address >= MAX_FAILURES_PER_ADDRESS {
            return Err(ConsoleError::Forbidden(TOO_MANY_FAILURES.into()));
        }

        let candidates: Vec<_> = users::admins_by_email(db, &email_lc)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|c| tenant_slug.is_none_or(|s| c.tenant_slug == s))
            .collect();
        let mut matching = Vec::new();
        if candidates.is_empty() {
            password::verify(password_given.to_string(), None).await;
        }
        for c in &candidates {
            if password::verify(password_given.to_string(), Some(c.password_hash.clone())).await
                && c.active
            {
                matching.push(c.clone());
            }
        }
        match matching.len() {
            0 => {
                throttle::record_failure(db, &[&account_key, &address_key], now)
                    .await
                    .map_err(internal)?;
                for c in &candidates {
                    self.audit(&c.tenant_id, &email_lc, "sign_in_failed", "", client)
                        .await?;
                }
                Err(ConsoleError::Invalid(WRONG_CREDENTIALS.into()))
            }
            1 => {
                let me = &matching[0];
                throttle::clear(db, &account_key).await.map_err(internal)?;
                self.audit(&me.tenant_id, &email_lc, "signed_in", "", client)
                    .await?;
                Ok(SignInOutcome::Session(
                    self.start_session(&me.user_id, &me.tenant_id).await?,
                ))
            }
            _ => Ok(SignInOutcome::ChooseTenant(
                matching
                    .into_iter()
                    .map(|c| TenantChoice {
                        slug: c.tenant_slug,
                        name: c.tenant_name,
                    })
                    .collect(),
            )),
        }
    }

    async fn sign_out(&self, secret: &str) -> Result<(), ConsoleError> {
        let db = &self.state.db;
        let hash = sha256_hex(secret);
        if let Some(row) = sessions::lookup(db, &hash).await.map_err(internal)? {
            let who = row.email.unwrap_or_default();
            self.audit(
                &row.tenant_id,
                &who,
                "signed_out",
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
        let recent = audit::recent(db, &s.tenant_id, &INTEGRATION_ACTIONS, 20)
            .await
            .map_err(internal)?;
        Ok(IntegrationView {
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

/// The audit actions shown as "Recent changes" on the Microsoft Entra provisioning page.
pub const INTEGRATION_ACTIONS: [&str; 7] = [
    "provisioning_enabled",
    "provisioning_disabled",
    "token_generated",
    "token_rotated",
    "token_revoked",
    "overlap_changed",
    "log_retention_changed",
];

fn token_view(t: &tokens::TokenRow, now: i64) -> TokenView {
    let state = if t.revoked_at.is_some() {
        TokenState::Revoked
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
    }
}

impl Console {
    /// The signed-in admin as an audit actor.
    fn actor<'a>(s: &'a sessions::SessionRow, client: &'a ClientAddr) -> Actor<'a> {
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
