//! Values that travel between the console's server functions and its pages.
//! Times are pre-formatted on the server (UTC) so the browser bundle needs no date library.

use serde::{Deserialize, Serialize};

/// Who is signed in, shown in the console header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub admin_name: String,
    pub admin_email: String,
}

/// What the first-run page needs to know before it renders its form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetupInfo {
    /// True while no organisation exists.
    pub needs_setup: bool,
    /// True when the server listens beyond loopback and printed a one-time setup code.
    pub needs_code: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdminAccount {
    pub name: String,
    pub email: String,
    pub created_at: String,
    pub active: bool,
    pub is_you: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HomeData {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub created_at: String,
    pub admins: Vec<AdminAccount>,
    pub provisioned_users: i64,
    pub provisioning_enabled: bool,
}

/// An organisation in which one email is an admin; offered when the email is ambiguous.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantChoice {
    pub slug: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SignInReply {
    /// Signed in; the browser is being sent to the console.
    SignedIn,
    /// The email is an admin in several organisations: ask which one.
    ChooseTenant(Vec<TenantChoice>),
}

/// Everything SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IntegrationView {
    pub enabled: bool,
    /// `{public-url}/scim/v2/{slug}`: Entra's "Tenant URL".
    pub endpoint_url: String,
    pub tokens: Vec<TokenView>,
    /// How long a rotated token keeps working, in minutes.
    pub overlap_minutes: i64,
    pub recent: Vec<AuditView>,
    /// True when an OAuth client secret would let Entra fetch access tokens now.
    #[serde(default)]
    pub has_live_client_secret: bool,
}

impl IntegrationView {
    /// True when at least one token would pass the SCIM gate now.
    pub fn has_live_token(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t.state, TokenState::Active | TokenState::Retiring))
    }
    /// True when Entra can authenticate with either method.
    pub fn has_live_credential(&self) -> bool {
        self.has_live_token() || self.has_live_client_secret
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum TokenState {
    Active,
    /// Replaced by a newer token; still accepted until `TokenView::retires_at`.
    Retiring,
    Expired,
    Revoked,
}

/// A SCIM token as listed after its one-time display: never the secret itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    /// e.g. `bbz_scim_…3f9a`
    pub hint: String,
    pub created_at: String,
    pub created_by: String,
    pub last_used_at: Option<String>,
    pub state: TokenState,
    pub retires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// End of life under the organisation's maximum bearer-token lifetime, if any.
    #[serde(default)]
    pub valid_until: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub client_addr: String,
}

/// A token just generated: the only time its secret leaves the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTokenView {
    pub token: String,
    pub hint: String,
    pub rotated: bool,
    /// When the tokens it replaced stop working (rotation only).
    pub old_tokens_until: Option<String>,
}

/// The "OAuth 2.0 client credentials" section and the credential lifetimes of the Microsoft
/// Entra provisioning page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OAuthView {
    /// `{public-url}/scim/v2/{slug}/oauth/token`: Entra's "Token endpoint".
    pub token_endpoint: String,
    /// Entra's "Client identifier".
    pub client_id: String,
    pub secrets: Vec<ClientSecretView>,
    /// Lifetime of the access tokens the token endpoint issues, in minutes (60 to 360).
    pub access_token_minutes: i64,
    /// Maximum lifetime of new bearer tokens in days; `None`: off (the default).
    pub bearer_max_days: Option<i64>,
}

/// A client secret as listed after its one-time display: never the secret itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSecretView {
    pub id: String,
    /// e.g. `bbz_cs_…3f9a`
    pub hint: String,
    pub created_at: String,
    pub created_by: String,
    /// The last access-token fetch or SCIM request with it.
    pub last_used_at: Option<String>,
    pub expires_at: String,
    pub state: TokenState,
    pub retires_at: Option<String>,
    pub revoked_at: Option<String>,
}

/// A client secret just generated: the only time it leaves the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewClientSecretView {
    pub secret: String,
    pub hint: String,
    pub expires_at: String,
    pub rotated: bool,
    /// When the secrets it replaced (and their access tokens) stop working.
    pub old_secrets_until: Option<String>,
}

/// A credential that expires within 30 days (or has just expired with nothing to replace it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CredentialWarningView {
    pub lapsed: bool,
    pub text: String,
}
