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
    /// One line on provisioning health (last request, requests and failures in 24 h).
    pub provisioning_summary: String,
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

/// What an audit entry records: the one list of actions, for the server that writes them and
/// the pages that show them. `code()` is what the audit log stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    OrganisationCreated,
    SignedIn,
    SignedOut,
    SignInFailed,
    ProvisioningEnabled,
    ProvisioningDisabled,
    TokenGenerated,
    TokenRotated,
    TokenRevoked,
    OverlapChanged,
    AdminEmailChanged,
    LogRetentionChanged,
    ClientSecretGenerated,
    ClientSecretRotated,
    ClientSecretRevoked,
    AccessTokenLifetimeChanged,
    BearerMaxLifetimeChanged,
}

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::OrganisationCreated,
        AuditAction::SignedIn,
        AuditAction::SignedOut,
        AuditAction::SignInFailed,
        AuditAction::ProvisioningEnabled,
        AuditAction::ProvisioningDisabled,
        AuditAction::TokenGenerated,
        AuditAction::TokenRotated,
        AuditAction::TokenRevoked,
        AuditAction::OverlapChanged,
        AuditAction::AdminEmailChanged,
        AuditAction::LogRetentionChanged,
        AuditAction::ClientSecretGenerated,
        AuditAction::ClientSecretRotated,
        AuditAction::ClientSecretRevoked,
        AuditAction::AccessTokenLifetimeChanged,
        AuditAction::BearerMaxLifetimeChanged,
    ];

    pub fn code(self) -> &'static str {
        match self {
            AuditAction::OrganisationCreated => "organisation_created",
            AuditAction::SignedIn => "signed_in",
            AuditAction::SignedOut => "signed_out",
            AuditAction::SignInFailed => "sign_in_failed",
            AuditAction::ProvisioningEnabled => "provisioning_enabled",
            AuditAction::ProvisioningDisabled => "provisioning_disabled",
            AuditAction::TokenGenerated => "token_generated",
            AuditAction::TokenRotated => "token_rotated",
            AuditAction::TokenRevoked => "token_revoked",
            AuditAction::OverlapChanged => "overlap_changed",
            AuditAction::AdminEmailChanged => "admin_email_changed",
            AuditAction::LogRetentionChanged => "log_retention_changed",
            AuditAction::ClientSecretGenerated => "client_secret_generated",
            AuditAction::ClientSecretRotated => "client_secret_rotated",
            AuditAction::ClientSecretRevoked => "client_secret_revoked",
            AuditAction::AccessTokenLifetimeChanged => "access_token_lifetime_changed",
            AuditAction::BearerMaxLifetimeChanged => "bearer_max_lifetime_changed",
        }
    }

    pub fn from_code(code: &str) -> Option<AuditAction> {
        AuditAction::ALL.into_iter().find(|a| a.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            AuditAction::OrganisationCreated => "Organisation created",
            AuditAction::SignedIn => "Signed in",
            AuditAction::SignedOut => "Signed out",
            AuditAction::SignInFailed => "Sign-in failed",
            AuditAction::ProvisioningEnabled => "Automatic user provisioning enabled",
            AuditAction::ProvisioningDisabled => "Automatic user provisioning disabled",
            AuditAction::TokenGenerated => "Bearer token generated",
            AuditAction::TokenRotated => "Bearer token rotated",
            AuditAction::TokenRevoked => "Bearer token revoked",
            AuditAction::OverlapChanged => "Rotation overlap changed",
            AuditAction::AdminEmailChanged => "Admin sign-in email changed by provisioning",
            AuditAction::LogRetentionChanged => "Provisioning log retention changed",
            AuditAction::ClientSecretGenerated => "Client secret generated",
            AuditAction::ClientSecretRotated => "Client secret rotated",
            AuditAction::ClientSecretRevoked => "Client secret revoked",
            AuditAction::AccessTokenLifetimeChanged => "Access-token lifetime changed",
            AuditAction::BearerMaxLifetimeChanged => "Bearer token maximum lifetime changed",
        }
    }

    /// Shown under "Recent changes" on the Microsoft Entra provisioning page.
    pub fn on_integration_page(self) -> bool {
        !matches!(
            self,
            AuditAction::OrganisationCreated
                | AuditAction::SignedIn
                | AuditAction::SignedOut
                | AuditAction::SignInFailed
        )
    }

    /// The label of a stored code ("Change" for one this version does not know).
    pub fn label_of(code: &str) -> &'static str {
        AuditAction::from_code(code).map_or("Change", AuditAction::label)
    }
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

// ---- Users, Groups, Provisioning log and health (the directory console) ----

/// A user's state as the console names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserStatus {
    Active,
    Disabled,
    Deprovisioned,
}

impl UserStatus {
    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Active => "Active",
            UserStatus::Disabled => "Disabled",
            UserStatus::Deprovisioned => "Deprovisioned",
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
            UserStatus::Deprovisioned => "deprovisioned",
        }
    }
}

/// The Users page's query, as it appears in the page URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserListQuery {
    pub q: String,
    /// "contains" for substring search; anything else is "starts with".
    pub r#match: String,
    /// "active" | "disabled" | "deprovisioned" | "" (all)
    pub status: String,
    /// "entra" | "local" | "" (all)
    pub source: String,
    /// "name" (default) | "changed"
    pub sort: String,
    /// Opaque cursor of the page to show ("" = first page).
    pub after: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRowView {
    pub id: String,
    pub name: String,
    pub user_name: String,
    pub email: String,
    pub status: UserStatus,
    /// "Microsoft Entra ID" or "Local"
    pub source: String,
    pub last_change: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserListView {
    pub rows: Vec<UserRowView>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
    /// "1,234 users", "More than 10,000 users", or empty when not counted.
    pub count_text: String,
    /// A contains search stopped before filling the page (it looked at a bounded window).
    pub partial: bool,
}

/// A labelled value on a detail page; `href` makes it a link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
    pub href: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FactSection {
    pub title: String,
    pub facts: Vec<Fact>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub attribute: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One thing provisioning did (or tried to do) to a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub entry_id: String,
    pub at: String,
    /// "Created", "Updated", "Disabled", "Re-enabled", "Deprovisioned"
    pub what: String,
    pub outcome: LogOutcome,
    pub changes: Vec<Change>,
    /// When earlier values are no longer in the log: the attributes the request named.
    pub touched: Vec<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserDetailView {
    pub id: String,
    pub name: String,
    pub user_name: String,
    pub status: UserStatus,
    pub source: String,
    pub sections: Vec<FactSection>,
    pub groups: Vec<LinkView>,
    pub history: Vec<HistoryItem>,
    /// Where the shown history stops.
    pub history_end: HistoryEnd,
}

/// Where a user's shown provisioning history stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HistoryEnd {
    /// Everything the log holds about the user is shown.
    Complete,
    /// The log holds older changes than the page shows.
    More,
    /// The history reaches a change whose entry the log no longer holds (pruned by retention,
    /// or lost and counted): older changes cannot be shown.
    Gap,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    pub href: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRowView {
    pub id: String,
    pub name: String,
    pub members: i64,
    pub last_change: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupListView {
    pub rows: Vec<GroupRowView>,
    pub next: Option<String>,
    pub count_text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupDetailView {
    pub id: String,
    pub name: String,
    pub facts: Vec<Fact>,
    pub member_count: i64,
    pub members: Vec<UserRowView>,
    pub nested_groups: Vec<LinkView>,
    pub next: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogOutcome {
    Success,
    Failure,
    Rejected,
}

impl LogOutcome {
    pub fn label(self) -> &'static str {
        match self {
            LogOutcome::Success => "Success",
            LogOutcome::Failure => "Failure",
            LogOutcome::Rejected => "Rejected",
        }
    }
    pub fn class(self) -> &'static str {
        match self {
            LogOutcome::Success => "state-active",
            LogOutcome::Failure => "state-bad",
            LogOutcome::Rejected => "state-retiring",
        }
    }
}

/// The Provisioning log page's query, as it appears in the page URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogQuery {
    /// "success" | "failure" | "rejected" | ""
    pub outcome: String,
    /// An operation code (see `LogView::operations`) or "".
    pub operation: String,
    /// "1h" | "24h" | "7d" | "30d" | "" (all kept)
    pub range: String,
    /// Optional bounds, `YYYY-MM-DDTHH:MM` (UTC).
    pub from: String,
    pub to: String,
    pub before: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRowView {
    pub id: String,
    pub at: String,
    pub action: String,
    pub target: Option<LinkView>,
    pub outcome: LogOutcome,
    pub status: i64,
    pub error: Option<String>,
    pub duration: String,
    pub client_addr: String,
    pub in_bulk: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogView {
    pub rows: Vec<LogRowView>,
    pub next: Option<String>,
    pub retention_days: i64,
    /// (code, label) of the operations one can filter by.
    pub operations: Vec<(String, String)>,
    /// A readable error about the query (e.g. a bad date), shown above the table.
    pub notice: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntryView {
    pub row: LogRowView,
    pub method: String,
    pub path: String,
    pub scim_type: Option<String>,
    pub request: Option<String>,
    pub response: Option<String>,
    /// The Bulk request this operation belongs to.
    pub parent: Option<String>,
    /// A Bulk request's operations.
    pub operations: Vec<LogRowView>,
}

/// One bar of a chart: requests and failures (rejections included) in a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartBar {
    pub label: String,
    pub requests: i64,
    pub failures: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    pub enabled: bool,
    pub last_request: Option<String>,
    /// "12 minutes ago"
    pub last_request_ago: Option<String>,
    /// Enabled, and nothing received for longer than two of Entra's 40-minute cycles.
    pub silent: bool,
    pub requests_24h: i64,
    pub failures_24h: i64,
    pub rejected_24h: i64,
    /// Entries lost in the last 24 h because the log writer could not keep up.
    pub lost_24h: i64,
    pub last_error: Option<LogEntryView>,
    pub hourly: Vec<ChartBar>,
    pub daily: Vec<ChartBar>,
}
