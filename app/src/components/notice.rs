use leptos::prelude::*;

use crate::api::error_text;

/// A readable error line for a failed server function, announced to screen readers.
#[component]
pub fn ErrorNotice(#[prop(into)] error: Signal<Option<ServerFnError>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|e| view! { <p class="notice error" role="alert">{error_text(&e)}</p> })
    }
}
