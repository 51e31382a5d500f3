//! BitaBIZ admin console: the Leptos UI. Compiled with `ssr` inside the server and with
//! `hydrate` to wasm for the browser.

pub mod api;
#[cfg(feature = "ssr")]
pub mod backend;
mod components;
pub mod model;
mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{ParentRoute, Route, Router, Routes},
    path,
};

use crate::api::{CreateOrganisation, SignIn, SignOut, load_session};
use crate::model::SessionInfo;

/// The HTML document around the app, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Actions whose completion changes who is signed in; the header's session data follows them.
#[derive(Clone, Copy)]
pub struct AuthActions {
    pub sign_in: ServerAction<SignIn>,
    pub sign_out: ServerAction<SignOut>,
    pub create_org: ServerAction<CreateOrganisation>,
}

/// The signed-in admin, refetched whenever an auth action completes.
#[derive(Clone, Copy)]
pub struct CurrentSession(pub Resource<Result<Option<SessionInfo>, ServerFnError>>);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let actions = AuthActions {
        sign_in: ServerAction::new(),
        sign_out: ServerAction::new(),
        create_org: ServerAction::new(),
    };
    let session = Resource::new(
        move || {
            (
                actions.sign_in.version().get(),
                actions.sign_out.version().get(),
                actions.create_org.version().get(),
            )
        },
        |_| load_session(),
    );
    provide_context(actions);
    provide_context(CurrentSession(session));
    // Marks the page once the wasm has taken over, for tests and for styling.
    #[cfg(feature = "hydrate")]
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="bitabiz" href="/style.css" />
        <Title formatter=|text: String| {
            if text.is_empty() { "BitaBIZ".to_string() } else { format!("{text} · BitaBIZ") }
        } />
        <Router>
            <Routes fallback=pages::not_found::NotFound>
                <Route path=path!("/setup") view=pages::setup::SetupPage />
                <Route path=path!("/sign-in") view=pages::sign_in::SignInPage />
                <ParentRoute path=path!("") view=components::layout::ConsoleLayout>
                    <Route path=path!("/") view=pages::home::HomePage />
                    <Route path=path!("/users") view=pages::users::UsersPage />
                    <Route path=path!("/users/:id") view=pages::users::UserPage />
                    <Route path=path!("/groups") view=pages::groups::GroupsPage />
                    <Route path=path!("/groups/:id") view=pages::groups::GroupPage />
                    <Route path=path!("/setup-admin") view=pages::setup_admin::SetupAdminPage />
                    <Route path=path!("/setup-admin/integration") view=pages::setup_admin::IntegrationPage />
                    <Route
                        path=path!("/setup-admin/integration/microsoft-entra")
                        view=pages::entra::EntraProvisioningPage
                    />
                    <Route
                        path=path!("/setup-admin/integration/microsoft-entra/log")
                        view=pages::provisioning_log::LogPage
                    />
                    <Route
                        path=path!("/setup-admin/integration/microsoft-entra/log/:id")
                        view=pages::provisioning_log::LogEntryPage
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
