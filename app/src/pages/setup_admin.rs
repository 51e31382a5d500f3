use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

/// SETUP ADMIN: the organisation's configuration areas.
#[component]
pub fn SetupAdminPage() -> impl IntoView {
    view! {
        <Title text="SETUP ADMIN" />
        <h1>"SETUP ADMIN"</h1>
        <div class="tiles">
            <A href="/setup-admin/integration" attr:class="tile">
                <strong>"INTEGRATION"</strong>
                <span class="muted">"Connect BitaBIZ to your identity provider."</span>
            </A>
        </div>
    }
}

/// SETUP ADMIN > INTEGRATION: the integrations an organisation can configure.
#[component]
pub fn IntegrationPage() -> impl IntoView {
    view! {
        <Title text="INTEGRATION" />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/setup-admin">"SETUP ADMIN"</A>" › INTEGRATION"
        </nav>
        <h1>"INTEGRATION"</h1>
        <div class="tiles">
            <A href="/setup-admin/integration/microsoft-entra" attr:class="tile">
                <strong>"Microsoft Entra provisioning"</strong>
                <span class="muted">"Let Microsoft Entra ID create, update and deprovision your users and groups (SCIM 2.0)."</span>
            </A>
        </div>
    }
}
