use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{error_text, load_credential_warnings, load_home};

/// The console's landing page: the organisation and its admin accounts.
#[component]
pub fn HomePage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_home());
    view! {
        <Title text="Home" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(home) => view! {
                        <h1>{home.tenant_name.clone()}</h1>
                        <CredentialWarningLine />
                        <section class="panel">
                            <h2>"Organisation"</h2>
                            <dl class="facts">
                                <dt>"Name"</dt><dd>{home.tenant_name}</dd>
                                <dt>"Identifier"</dt><dd><code>{home.tenant_slug}</code></dd>
                                <dt>"Created"</dt><dd>{home.created_at}</dd>
                                <dt>"Provisioned users"</dt>
                                <dd><a href="/users?source=entra">{if home.provisioned_users > 10_000 {
                                    "More than 10,000".to_string()
                                } else {
                                    home.provisioned_users.to_string()
                                }}</a></dd>
                                <dt>"Automatic user provisioning"</dt>
                                <dd>{if home.provisioning_enabled { "Enabled" } else { "Disabled" }}</dd>
                            </dl>
                            <p class="summary" data-testid="provisioning-summary">
                                <a href="/setup-admin/integration/microsoft-entra">{home.provisioning_summary.clone()}</a>
                            </p>
                        </section>
                        <section class="panel">
                            <h2>"Admin accounts"</h2>
                            <table class="grid">
                                <thead><tr><th>"Name"</th><th>"Email"</th><th>"Created"</th><th>"State"</th></tr></thead>
                                <tbody>
                                    {home.admins.into_iter().map(|a| view! {
                                        <tr>
                                            <td>{a.name}{a.is_you.then(|| view! { <span class="tag">"you"</span> })}</td>
                                            <td>{a.email}</td>
                                            <td>{a.created_at}</td>
                                            <td>{if a.active { "Active" } else { "Disabled" }}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// One line when a provisioning credential expires within 30 days (or has just expired): the
/// most urgent one, with a link to where it is replaced.
#[component]
fn CredentialWarningLine() -> impl IntoView {
    let warnings = Resource::new(|| (), |_| load_credential_warnings());
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let w = warnings.await.ok()?;
                let more = w.len().saturating_sub(1);
                let first = w.into_iter().next()?;
                let more = (more > 0).then(|| format!(" ({more} more)"));
                Some(view! {
                    <p class=if first.lapsed { "notice error" } else { "notice warn" } data-testid="home-credential-warning">
                        {first.text}{more}" "
                        <A href="/setup-admin/integration/microsoft-entra">"Microsoft Entra provisioning"</A>
                    </p>
                })
            })}
        </Suspense>
    }
}
