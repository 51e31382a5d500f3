use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::{AuthActions, CurrentSession};

/// The console frame: header with the organisation, navigation, the signed-in admin and
/// sign-out; the page goes below.
#[component]
pub fn ConsoleLayout() -> impl IntoView {
    let CurrentSession(session) = expect_context::<CurrentSession>();
    let actions = expect_context::<AuthActions>();
    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo">"BitaBIZ"</span>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        session.await.ok().flatten().map(|s| view! {
                            <span class="org" data-testid="org-name">{s.tenant_name}</span>
                        })
                    })}
                </Transition>
            </div>
            <nav class="mainnav" aria-label="Console">
                <A href="/" exact=true>"Home"</A>
                <A href="/users">"Users"</A>
                <A href="/groups">"Groups"</A>
                <A href="/setup-admin">"SETUP ADMIN"</A>
            </nav>
            <div class="who">
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        session.await.ok().flatten().map(|s| view! {
                            <span class="admin" title=s.admin_email.clone()>{s.admin_name}</span>
                        })
                    })}
                </Transition>
                <ActionForm action=actions.sign_out attr:class="inline">
                    <button type="submit" class="link">"Sign out"</button>
                </ActionForm>
            </div>
        </header>
        <main class="page">
            <Outlet />
        </main>
    }
}
