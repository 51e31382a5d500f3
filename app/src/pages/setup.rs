use leptos::prelude::*;
use leptos_meta::Title;

use crate::AuthActions;
use crate::api::load_setup_info;
use crate::components::notice::ErrorNotice;

/// First run: creates the organisation and its first admin. The server refuses it (and the
/// router redirects away) as soon as an organisation exists.
#[component]
pub fn SetupPage() -> impl IntoView {
    let action = expect_context::<AuthActions>().create_org;
    let info = Resource::new(|| (), |_| load_setup_info());
    let error = Signal::derive(move || action.value().get().and_then(|r| r.err()));
    view! {
        <Title text="Set up BitaBIZ" />
        <main class="centered">
            <div class="card">
                <h1>"Welcome to BitaBIZ"</h1>
                <p class="lead">
                    "Create your organisation and its first admin account. You will use this account to sign in to the Admin Console."
                </p>
                <ActionForm action attr:class="stack" attr:aria-label="Create organisation">
                    <label>
                        "Organisation name"
                        <input type="text" name="org_name" required maxlength="100" autocomplete="organization" />
                    </label>
                    <label>
                        "Your name"
                        <input type="text" name="admin_name" required maxlength="100" autocomplete="name" />
                    </label>
                    <label>
                        "Email"
                        <input type="email" name="email" required maxlength="254" autocomplete="email" />
                    </label>
                    <label>
                        "Password"
                        <input type="password" name="password" required minlength="12" maxlength="256" autocomplete="new-password" aria-describedby="password-hint" />
                    </label>
                    <small id="password-hint" class="hint">"At least 12 characters."</small>
                    <label>
                        "Confirm password"
                        <input type="password" name="confirm" required minlength="12" maxlength="256" autocomplete="new-password" />
                    </label>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let needs_code = info.await.map(|i| i.needs_code).unwrap_or(false);
                            needs_code.then(|| view! {
                                <label>
                                    "Setup code"
                                    <input type="text" name="setup_code" required autocomplete="off" aria-describedby="code-hint" />
                                </label>
                                <small id="code-hint" class="hint">"The server printed this one-time code in its log when it first started. Lost it? Run `bitabiz setup-code` on the server for a new one."</small>
                            })
                        })}
                    </Suspense>
                    <ErrorNotice error />
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        "Create organisation"
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
