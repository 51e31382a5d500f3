use leptos::prelude::*;

/// A read-only value with a Copy button. Without the wasm (or without clipboard access) the
/// text is still selectable by hand.
#[component]
pub fn CopyField(
    /// Accessible name of the field.
    #[prop(into)]
    label: String,
    #[prop(into)] value: Signal<String>,
    /// `data-testid` for tests.
    #[prop(into, optional)]
    testid: String,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let text = value.get_untracked();
            let _ = window().navigator().clipboard().write_text(&text);
        }
        copied.set(true);
    };
    let button_label = label.clone();
    view! {
        <div class="copyfield">
            <input
                type="text"
                readonly
                aria-label=label
                data-testid=testid
                prop:value=move || value.get()
                on:focus=|ev| {
                    #[cfg(feature = "hydrate")]
                    {
                        use wasm_bindgen::JsCast;
                        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            input.select();
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = ev;
                }
            />
            <button type="button" on:click=copy aria-label=format!("Copy {button_label}")>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
        </div>
    }
}
