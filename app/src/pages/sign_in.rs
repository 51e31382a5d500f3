use leptos::prelude::*;
use leptos_meta::Title;

use crate::AuthActions;
use crate::components::notice::ErrorNotice;
use crate::model::SignInReply;

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = expect_context::<AuthActions>().sign_in;
    let error = Signal::derive(move || action.value().get().and_then(|r| r.err()));
    let choices = move || match action.value().get() {
        Some(Ok(SignInReply::ChooseTenant(list))) => Some(list),
        _ => None,
    };
    view! {
        <Title text="Sign in" />
        <main class="centered">
            <div class="card">
                <h1>"Sign in to the Admin Console"</h1>
                <ActionForm action attr:class="stack" attr:aria-label="Sign in">
                    <label>
                        "Email"
                        <input type="email" name="email" required autocomplete="username" />
                    </label>
                    <label>
                        "Password"
                        <input type="password" name="password" required autocomplete="current-password" />
                    </label>
                    {move || choices().map(|list| view! {
                        <label>
                            "Organisation"
                            <select name="tenant" required>
                                {list.into_iter().map(|t| view! {
                                    <option value=t.slug>{t.name}</option>
                                }).collect_view()}
                            </select>
                        </label>
                        <small class="hint">"This email is an admin in several organisations: choose one."</small>
                    })}
                    <ErrorNotice error />
                    <button type="submit" class="primary" disabled=move || action.pending().get()>
                        "Sign in"
                    </button>
                </ActionForm>
            </div>
        </main>
    }
}
