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
