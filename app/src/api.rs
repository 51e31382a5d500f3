//! Server functions: each checks the session and calls the backend, nothing more.

use crate::model::*;
use leptos::prelude::*;

/// Name of the session cookie (HttpOnly; its value is a random secret).
pub const SESSION_COOKIE: &str = "bbz_session";

/// The session secret from a request's `Cookie` headers; shared by the server functions and the
/// server's page guard.
#[cfg(feature = "ssr")]
pub fn session_from_headers(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

#[cfg(feature = "ssr")]
mod ctx {
    use super::SESSION_COOKIE;
    use crate::backend::{ClientAddr, ConsoleBackend, ConsoleError, NewSession};
    use http::{HeaderValue, header};
    use leptos::prelude::*;
    use std::sync::Arc;

    pub fn backend() -> Arc<dyn ConsoleBackend> {
        expect_context::<Arc<dyn ConsoleBackend>>()
    }

    pub fn client() -> ClientAddr {
        use_context::<http::request::Parts>()
            .and_then(|p| p.extensions.get::<ClientAddr>().cloned())
            .unwrap_or_else(|| ClientAddr("unknown".into()))
    }

    /// The session secret from the request's cookie, if any.
    pub fn session_cookie() -> Option<String> {
        super::session_from_headers(&use_context::<http::request::Parts>()?.headers)
    }

    pub fn require_session() -> Result<String, ServerFnError> {
        session_cookie().ok_or_else(|| fail(ConsoleError::Unauthorized))
    }

    /// The error for the page, with its HTTP status (a wrong password or an ended session is
    /// the client's problem, not a 500).
    pub fn fail(e: ConsoleError) -> ServerFnError {
        if let (Some(res), Ok(status)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            http::StatusCode::from_u16(e.status()),
        ) {
            res.set_status(status);
            if matches!(e, ConsoleError::Busy(_)) {
                res.insert_header(header::RETRY_AFTER, HeaderValue::from_static("3"));
            }
        }
        ServerFnError::ServerError(e.to_string())
    }

    fn set_cookie(value: String) {
        if let (Some(res), Ok(v)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            HeaderValue::from_str(&value),
        ) {
            res.append_header(header::SET_COOKIE, v);
        }
    }

    pub fn start_session(session: NewSession) {
        let secure = if backend().secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        set_cookie(format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
            session.0
        ));
    }

    pub fn end_session() {
        let secure = if backend().secure_cookies() {
            "; Secure"
        } else {
            ""
        };
        set_cookie(format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
        ));
    }
}

#[server(endpoint = "load_setup_info")]
pub async fn load_setup_info() -> Result<SetupInfo, ServerFnError> {
    ctx::backend().setup_info().await.map_err(ctx::fail)
}

#[server(endpoint = "create_organisation")]
pub async fn create_organisation(
    org_name: String,
    admin_name: String,
    email: String,
    password: String,
    confirm: String,
    #[server(default)] setup_code: String,
) -> Result<(), ServerFnError> {
    use crate::backend::SetupForm;
    let form = SetupForm {
        org_name,
        admin_name,
        email,
        password,
        confirm,
        setup_code,
    };
    let session = ctx::backend()
        .create_first_tenant(form, &ctx::client())
        .await
        .map_err(ctx::fail)?;
    ctx::start_session(session);
    leptos_axum::redirect("/");
    Ok(())
}

#[server(endpoint = "sign_in")]
pub async fn sign_in(
    email: String,
    password: String,
    #[server(default)] tenant: String,
) -> Result<SignInReply, ServerFnError> {
    use crate::backend::SignInOutcome;
    let tenant = Some(tenant.trim()).filter(|t| !t.is_empty());
    match ctx::backend()
        .sign_in(&email, &password, tenant, &ctx::client())
        .await
        .map_err(ctx::fail)?
    {
        SignInOutcome::Session(session) => {
            ctx::start_session(session);
            leptos_axum::redirect("/");
            Ok(SignInReply::SignedIn)
        }
        SignInOutcome::ChooseTenant(choices) => Ok(SignInReply::ChooseTenant(choices)),
    }
}

#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), ServerFnError> {
    if let Some(session) = ctx::session_cookie() {
        ctx::backend().sign_out(&session).await.map_err(ctx::fail)?;
    }
    ctx::end_session();
    leptos_axum::redirect("/sign-in");
    Ok(())
}

#[server(endpoint = "load_session")]
pub async fn load_session() -> Result<Option<SessionInfo>, ServerFnError> {
    match ctx::session_cookie() {
        Some(s) => ctx::backend().session_info(&s).await.map_err(ctx::fail),
        None => Ok(None),
    }
}

#[server(endpoint = "load_home")]
pub async fn load_home() -> Result<HomeData, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend().home(&session).await.map_err(ctx::fail)
}

/// The message to show an admin for a failed server function.
pub fn error_text(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        _ => "The server could not be reached. Check your connection and try again.".into(),
    }
}

#[server(endpoint = "load_integration")]
pub async fn load_integration() -> Result<IntegrationView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .integration(&session)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "set_provisioning")]
pub async fn set_provisioning(enabled: bool) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .set_provisioning(&session, enabled, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "issue_token")]
pub async fn issue_token() -> Result<NewTokenView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .issue_token(&session, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "revoke_token")]
pub async fn revoke_token(token_id: String) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .revoke_token(&session, &token_id, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "set_token_overlap")]
pub async fn set_token_overlap(minutes: i64) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .set_token_overlap(&session, minutes, &ctx::client())
        .await
        .map_err(ctx::fail)
}

// OAuth 2.0 client credentials, credential lifetimes and expiry warnings.

#[server(endpoint = "load_oauth_clients")]
pub async fn load_oauth_clients() -> Result<OAuthView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .oauth_clients(&session)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "issue_client_secret")]
pub async fn issue_client_secret(years: i64) -> Result<NewClientSecretView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .issue_client_secret(&session, years, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "revoke_client_secret")]
pub async fn revoke_client_secret(secret_id: String) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .revoke_client_secret(&session, &secret_id, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "set_access_token_lifetime")]
pub async fn set_access_token_lifetime(minutes: i64) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .set_access_token_lifetime(&session, minutes, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "set_bearer_max_lifetime")]
pub async fn set_bearer_max_lifetime(days: i64) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .set_bearer_max_lifetime(&session, days, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_credential_warnings")]
pub async fn load_credential_warnings() -> Result<Vec<CredentialWarningView>, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .credential_warnings(&session)
        .await
        .map_err(ctx::fail)
}

// ---- Users, Groups, Provisioning log and health ----

#[server(endpoint = "load_users")]
pub async fn load_users(query: UserListQuery) -> Result<UserListView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .list_users(&session, query)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_user")]
pub async fn load_user(id: String) -> Result<UserDetailView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .user_detail(&session, &id)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_groups")]
pub async fn load_groups(q: String, after: String) -> Result<GroupListView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .list_groups(&session, &q, &after)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_group")]
pub async fn load_group(
    id: String,
    q: String,
    after: String,
) -> Result<GroupDetailView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .group_detail(&session, &id, &q, &after)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_provisioning_log")]
pub async fn load_provisioning_log(query: LogQuery) -> Result<LogView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .provisioning_log(&session, query)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_log_entry")]
pub async fn load_log_entry(id: String) -> Result<LogEntryView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .log_entry(&session, &id)
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "set_log_retention")]
pub async fn set_log_retention(days: i64) -> Result<(), ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .set_log_retention(&session, days, &ctx::client())
        .await
        .map_err(ctx::fail)
}

#[server(endpoint = "load_provisioning_health")]
pub async fn load_provisioning_health() -> Result<HealthView, ServerFnError> {
    let session = ctx::require_session()?;
    ctx::backend()
        .provisioning_health(&session)
        .await
        .map_err(ctx::fail)
}
