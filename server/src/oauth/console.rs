//! The console's side of OAuth client credentials and credential lifetimes: the
//! `ConsoleBackend` methods of `Console` delegate here.

use app::backend::{ClientAddr, ConsoleError};
use app::model::{
    ClientSecretView, CredentialWarningView, NewClientSecretView, OAuthView, TokenState,
};

use super::{
    SecretYears, check_access_token_lifetime, check_bearer_max_days, client_id,
    credential_warnings, issue_client_secret, revoke_client_secret, set_access_token_lifetime,
    set_bearer_max_lifetime, token_endpoint_url,
};
use crate::clock::display_time;
use crate::console::{Console, internal};
use crate::store::oauth::{self as store, SecretRow};
use crate::store::{StoreError, tenants};

fn secret_view(r: &SecretRow, now: i64) -> ClientSecretView {
    let state = if r.revoked_at.is_some() {
        TokenState::Revoked
    } else if r.ends_at() <= now {
        TokenState::Expired
    } else if r.retire_at.is_some() {
        TokenState::Retiring
    } else {
        TokenState::Active
    };
    ClientSecretView {
        id: r.id.clone(),
        hint: r.hint.clone(),
        created_at: display_time(r.created_at),
        created_by: r.created_by.clone(),
        last_used_at: r.last_used_at.map(display_time),
        expires_at: display_time(r.valid_until),
        state,
        retires_at: r.retire_at.map(display_time),
        revoked_at: r.revoked_at.map(display_time),
    }
}

impl Console {
    pub(crate) async fn oauth_view(&self, secret: &str) -> Result<OAuthView, ConsoleError> {
        let s = self.require(secret).await?;
        let state = self.app_state();
        let db = &state.db;
        let now = state.clock.now_ms();
        let tenant = tenants::by_id(db, &s.tenant_id).await.map_err(internal)?;
        let lifetimes = store::lifetimes(db, &s.tenant_id).await.map_err(internal)?;
        let secrets = store::list_secrets(db, &s.tenant_id)
            .await
            .map_err(internal)?;
        Ok(OAuthView {
            token_endpoint: token_endpoint_url(&state.settings.public_url, &tenant.slug),
            client_id: client_id(&tenant.id).to_string(),
            secrets: secrets.iter().map(|r| secret_view(r, now)).collect(),
            access_token_minutes: lifetimes.access_token_lifetime_secs / 60,
            bearer_max_days: lifetimes.bearer_max_lifetime_days,
        })
    }

    pub(crate) async fn oauth_issue_secret(
        &self,
        secret: &str,
        years: i64,
        client: &ClientAddr,
    ) -> Result<NewClientSecretView, ConsoleError> {
        let s = self.require(secret).await?;
        let years = SecretYears::new(years).map_err(|e| ConsoleError::Invalid(e.0))?;
        let state = self.app_state();
        let issued = issue_client_secret(
            &state.db,
            &s.tenant_id,
            years,
            &Self::actor(&s, client),
            state.clock.now_ms(),
        )
        .await
        .map_err(internal)?;
        Ok(NewClientSecretView {
            secret: issued.secret,
            hint: issued.hint,
            expires_at: display_time(issued.valid_until),
            rotated: issued.retire_at.is_some(),
            old_secrets_until: issued.retire_at.map(display_time),
        })
    }

    pub(crate) async fn oauth_revoke_secret(
        &self,
        secret: &str,
        secret_id: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        let state = self.app_state();
        match revoke_client_secret(
            &state.db,
            &s.tenant_id,
            secret_id,
            &Self::actor(&s, client),
            state.clock.now_ms(),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound) => Err(ConsoleError::NotFound(
                "That client secret does not exist (any more).".into(),
            )),
            Err(e) => Err(internal(e)),
        }
    }

    pub(crate) async fn oauth_set_access_token_lifetime(
        &self,
        secret: &str,
        minutes: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        let secs = minutes.saturating_mul(60);
        check_access_token_lifetime(secs).map_err(|e| ConsoleError::Invalid(e.0))?;
        let state = self.app_state();
        set_access_token_lifetime(
            &state.db,
            &s.tenant_id,
            secs,
            &Self::actor(&s, client),
            state.clock.now_ms(),
        )
        .await
        .map_err(internal)
    }

    pub(crate) async fn oauth_set_bearer_max_lifetime(
        &self,
        secret: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError> {
        let s = self.require(secret).await?;
        let days = (days != 0).then_some(days);
        check_bearer_max_days(days).map_err(|e| ConsoleError::Invalid(e.0))?;
        let state = self.app_state();
        set_bearer_max_lifetime(
            &state.db,
            &s.tenant_id,
            days,
            &Self::actor(&s, client),
            state.clock.now_ms(),
        )
        .await
        .map_err(internal)
    }

    pub(crate) async fn oauth_warnings(
        &self,
        secret: &str,
    ) -> Result<Vec<CredentialWarningView>, ConsoleError> {
        let s = self.require(secret).await?;
        let state = self.app_state();
        let warnings = credential_warnings(&state.db, &s.tenant_id, state.clock.now_ms())
            .await
            .map_err(internal)?;
        Ok(warnings
            .into_iter()
            .map(|w| CredentialWarningView {
                lapsed: w.lapsed,
                text: w.text,
            })
            .collect())
    }
}
