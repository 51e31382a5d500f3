//! The one contract between the console UI and the backend. The server implements it over its
//! store and provides it as `Arc<dyn ConsoleBackend>` context; server functions only call it.

use crate::model::*;
use async_trait::async_trait;
use std::fmt;

/// The caller's network address, put into each request's extensions by the server.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub String);

/// A fresh session secret, to be set as the session cookie and never stored or logged.
pub struct NewSession(pub String);

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewSession(<redacted>)")
    }
}

#[derive(Debug)]
pub enum SignInOutcome {
    Session(NewSession),
    ChooseTenant(Vec<TenantChoice>),
}

#[derive(Clone, Debug)]
pub struct SetupForm {
    pub org_name: String,
    pub admin_name: String,
    pub email: String,
    pub password: String,
    pub confirm: String,
    pub setup_code: String,
}

/// Errors the console shows to the admin; `Internal` details are logged by the backend only.
#[derive(Clone, Debug, PartialEq)]
pub enum ConsoleError {
    Unauthorized,
    Invalid(String),
    Conflict(String),
    Forbidden(String),
    NotFound(String),
    /// Too many attempts from this address or at this account: wait, then retry (HTTP 429).
    TooManyAttempts(String),
    /// The server is saturated for a moment (e.g. every password-hashing slot is busy): retry
    /// in a few seconds (HTTP 503).
    Busy(String),
    Internal,
}

impl ConsoleError {
    /// The HTTP status a server function answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            ConsoleError::Unauthorized => 401,
            ConsoleError::Invalid(_) => 400,
            ConsoleError::Conflict(_) => 409,
            ConsoleError::Forbidden(_) => 403,
            ConsoleError::NotFound(_) => 404,
            ConsoleError::TooManyAttempts(_) => 429,
            ConsoleError::Busy(_) => 503,
            ConsoleError::Internal => 500,
        }
    }
}

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsoleError::Unauthorized => {
                f.write_str("Your session has ended. Please sign in again.")
            }
            ConsoleError::Invalid(m)
            | ConsoleError::Conflict(m)
            | ConsoleError::Forbidden(m)
            | ConsoleError::NotFound(m)
            | ConsoleError::TooManyAttempts(m)
            | ConsoleError::Busy(m) => f.write_str(m),
            ConsoleError::Internal => {
                f.write_str("Something went wrong on our side. Please try again in a moment.")
            }
        }
    }
}

#[async_trait]
pub trait ConsoleBackend: Send + Sync + 'static {
    /// Whether the session cookie should carry `Secure` (public URL is https).
    fn secure_cookies(&self) -> bool;
    async fn setup_info(&self) -> Result<SetupInfo, ConsoleError>;
    async fn create_first_tenant(
        &self,
        form: SetupForm,
        client: &ClientAddr,
    ) -> Result<NewSession, ConsoleError>;
    async fn sign_in(
        &self,
        email: &str,
        password: &str,
        tenant_slug: Option<&str>,
        client: &ClientAddr,
    ) -> Result<SignInOutcome, ConsoleError>;
    async fn sign_out(&self, session: &str) -> Result<(), ConsoleError>;
    async fn session_info(&self, session: &str) -> Result<Option<SessionInfo>, ConsoleError>;
    async fn home(&self, session: &str) -> Result<HomeData, ConsoleError>;

    // SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning
    async fn integration(&self, session: &str) -> Result<IntegrationView, ConsoleError>;
    async fn set_provisioning(
        &self,
        session: &str,
        enabled: bool,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    /// Generates the first token, or rotates: the previous tokens retire after the overlap.
    async fn issue_token(
        &self,
        session: &str,
        client: &ClientAddr,
    ) -> Result<NewTokenView, ConsoleError>;
    async fn revoke_token(
        &self,
        session: &str,
        token_id: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    async fn set_token_overlap(
        &self,
        session: &str,
        minutes: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;

    // OAuth 2.0 client credentials and credential lifetimes (same page), and the warnings
    // shown there and on Home before a credential lapses.
    async fn oauth_clients(&self, session: &str) -> Result<OAuthView, ConsoleError>;
    /// Generates the first client secret, or rotates (the previous ones retire after the
    /// overlap). It expires after `years` (1 to 3).
    async fn issue_client_secret(
        &self,
        session: &str,
        years: i64,
        client: &ClientAddr,
    ) -> Result<NewClientSecretView, ConsoleError>;
    async fn revoke_client_secret(
        &self,
        session: &str,
        secret_id: &str,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    async fn set_access_token_lifetime(
        &self,
        session: &str,
        minutes: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    /// `days` = 0 turns the maximum off.
    async fn set_bearer_max_lifetime(
        &self,
        session: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    async fn credential_warnings(
        &self,
        session: &str,
    ) -> Result<Vec<CredentialWarningView>, ConsoleError>;

    // Users, Groups, Provisioning log and health (the directory console)
    async fn list_users(
        &self,
        session: &str,
        query: UserListQuery,
    ) -> Result<UserListView, ConsoleError>;
    async fn user_detail(&self, session: &str, id: &str) -> Result<UserDetailView, ConsoleError>;
    async fn list_groups(
        &self,
        session: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupListView, ConsoleError>;
    async fn group_detail(
        &self,
        session: &str,
        id: &str,
        search: &str,
        after: &str,
    ) -> Result<GroupDetailView, ConsoleError>;
    async fn provisioning_log(
        &self,
        session: &str,
        query: LogQuery,
    ) -> Result<LogView, ConsoleError>;
    async fn log_entry(&self, session: &str, id: &str) -> Result<LogEntryView, ConsoleError>;
    async fn set_log_retention(
        &self,
        session: &str,
        days: i64,
        client: &ClientAddr,
    ) -> Result<(), ConsoleError>;
    async fn provisioning_health(&self, session: &str) -> Result<HealthView, ConsoleError>;
}
