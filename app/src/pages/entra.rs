//! SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning: the switch, the SCIM endpoint URL,
//! the bearer token (generate, rotate, revoke), the rotation overlap and recent changes.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::api::{
    IssueClientSecret, IssueToken, RevokeClientSecret, RevokeToken, SetAccessTokenLifetime,
    SetBearerMaxLifetime, SetProvisioning, SetTokenOverlap, error_text, load_credential_warnings,
    load_integration, load_oauth_clients, load_provisioning_health,
};
use crate::components::copy::CopyField;
use crate::components::notice::ErrorNotice;
use crate::model::{
    AuditAction, AuditView, ClientSecretView, IntegrationView, OAuthView, TokenState, TokenView,
};
use crate::pages::provisioning_log::HealthPanel;

const OVERLAP_CHOICES: [(i64, &str); 9] = [
    (0, "No overlap (old token stops at once)"),
    (15, "15 minutes"),
    (30, "30 minutes"),
    (60, "1 hour"),
    (120, "2 hours"),
    (240, "4 hours"),
    (480, "8 hours"),
    (720, "12 hours"),
    (1440, "24 hours"),
];

#[component]
pub fn EntraProvisioningPage() -> impl IntoView {
    let toggle = ServerAction::<SetProvisioning>::new();
    let issue = ServerAction::<IssueToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let overlap = ServerAction::<SetTokenOverlap>::new();
    let oauth = OAuthActions::new();
    let data = Resource::new(
        move || {
            (
                toggle.version().get(),
                issue.version().get(),
                revoke.version().get(),
                overlap.version().get(),
                oauth.version(),
            )
        },
        |_| load_integration(),
    );
    let health = Resource::new(
        move || toggle.version().get(),
        |_| load_provisioning_health(),
    );
    let errors = Signal::derive(move || {
        [
            toggle.value().get().and_then(|r| r.err()),
            issue.value().get().and_then(|r| r.err()),
            revoke.value().get().and_then(|r| r.err()),
            overlap.value().get().and_then(|r| r.err()),
            oauth.error(),
        ]
        .into_iter()
        .flatten()
        .next()
    });
    // Expiry warnings follow every credential change on the page.
    let warnings_version = Signal::derive(move || {
        (
            issue.version().get(),
            revoke.version().get(),
            oauth.version(),
        )
    });

    view! {
        <Title text="Microsoft Entra provisioning" />
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/setup-admin">"SETUP ADMIN"</A>" › "
            <A href="/setup-admin/integration">"INTEGRATION"</A>" › Microsoft Entra provisioning"
        </nav>
        <h1>"Microsoft Entra provisioning"</h1>
        <ErrorNotice error=errors />
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match health.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(h) => view! { <HealthPanel health=h /> }.into_any(),
                }
            })}
        </Transition>
        <CredentialWarnings version=warnings_version />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(view) => view! {
                        <ProvisioningSwitch view=view.clone() toggle />
                        <section class="panel" aria-labelledby="endpoint-h">
                            <h2 id="endpoint-h">"SCIM Provisioning endpoint URL"</h2>
                            <CopyField label="SCIM Provisioning endpoint URL" value=view.endpoint_url.clone() testid="endpoint-url" />
                            <p class="muted">"Paste it into the Tenant URL field of the Provisioning tab in Microsoft Entra ID."</p>
                        </section>
                        <TokenPanel view=view.clone() issue revoke />
                        <OAuthSection actions=oauth />
                        <OverlapPanel minutes=view.overlap_minutes overlap />
                        <EntraSteps />
                        <RecentChanges entries=view.recent />
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn ProvisioningSwitch(
    view: IntegrationView,
    toggle: ServerAction<SetProvisioning>,
) -> impl IntoView {
    let enabled = view.enabled;
    let warning = (enabled && !view.has_live_credential()).then(|| {
        view! { <p class="notice warn">"Provisioning is enabled but there is no live bearer token or client secret: generate one below."</p> }
    });
    view! {
        <section class="panel" aria-labelledby="switch-h">
            <h2 id="switch-h">"Automatic user provisioning"</h2>
            <div class="row">
                <div class="toggle" role="group" aria-label="Automatic user provisioning">
                    <ActionForm action=toggle attr:class="inline">
                        <input type="hidden" name="enabled" value="true" />
                        <button type="submit" aria-pressed=if enabled { "true" } else { "false" }>"Enabled"</button>
                    </ActionForm>
                    <ActionForm action=toggle attr:class="inline">
                        <input type="hidden" name="enabled" value="false" />
                        <button type="submit" aria-pressed=if enabled { "false" } else { "true" }>"Disabled"</button>
                    </ActionForm>
                </div>
                <span data-testid="provisioning-state" class=if enabled { "state-active" } else { "state-revoked" }>
                    {if enabled {
                        "Enabled: Microsoft Entra ID can provision users and groups."
                    } else {
                        "Disabled: SCIM requests are refused."
                    }}
                </span>
            </div>
            {warning}
        </section>
    }
}

#[component]
fn TokenPanel(
    view: IntegrationView,
    issue: ServerAction<IssueToken>,
    revoke: ServerAction<RevokeToken>,
) -> impl IntoView {
    let has_active = view.tokens.iter().any(|t| t.state == TokenState::Active);
    let fresh = move || issue.value().get().and_then(|r| r.ok());
    let tokens = view.tokens;
    view! {
        <section class="panel" aria-labelledby="token-h">
            <h2 id="token-h">"Bearer Token"</h2>
            {move || fresh().map(|t| {
                let until = t.old_tokens_until.clone().map(|u| view! {
                    <p class="muted">"The previous token keeps working until "{u}", so you can update Microsoft Entra ID without failed sync cycles."</p>
                });
                view! {
                    <div class="notice ok" data-testid="new-token-box">
                        <p><strong>"Copy this token now. It will not be shown again."</strong></p>
                        <CopyField label="New bearer token" value=t.token.clone() testid="new-token" />
                        <p class="muted">"Paste it into the Secret Token field of the Provisioning tab in Microsoft Entra ID."</p>
                        {until}
                    </div>
                }
            })}
            <ActionForm action=issue attr:class="row">
                <button type="submit" class="primary" disabled=move || issue.pending().get()>
                    {if has_active { "Rotate token" } else { "Generate token" }}
                </button>
                <span class="muted">
                    {if has_active {
                        "Creates a new token; the current one keeps working for the overlap below."
                    } else {
                        "Creates the token Microsoft Entra ID uses to call the SCIM endpoint."
                    }}
                </span>
            </ActionForm>
            {if tokens.is_empty() {
                view! { <p class="muted">"No token has been generated yet."</p> }.into_any()
            } else {
                view! { <TokenTable tokens revoke /> }.into_any()
            }}
        </section>
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenView>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let confirming = RwSignal::new(None::<String>);
    view! {
        <table class="grid" aria-label="Bearer tokens">
            <thead><tr><th>"Token"</th><th>"Created"</th><th>"Last used"</th><th>"State"</th><th></th></tr></thead>
            <tbody>
                {tokens.into_iter().map(|t| {
                    let (state_class, state_text) = match t.state {
                        TokenState::Active => ("state-active", match &t.valid_until {
                            Some(u) => format!("Active, expires {u}"),
                            None => "Active".to_string(),
                        }),
                        TokenState::Retiring => ("state-retiring", format!("Retiring until {}", t.retires_at.clone().unwrap_or_default())),
                        TokenState::Expired => ("state-revoked", "Expired".to_string()),
                        TokenState::Revoked => ("state-revoked", format!("Revoked {}", t.revoked_at.clone().unwrap_or_default())),
                    };
                    let live = matches!(t.state, TokenState::Active | TokenState::Retiring);
                    let id = t.id.clone();
                    let hint = t.hint.clone();
                    view! {
                        <tr data-testid="token-row">
                            <td><code>{t.hint.clone()}</code></td>
                            <td>{t.created_at.clone()}<br /><span class="muted">"by "{t.created_by.clone()}</span></td>
                            <td>{t.last_used_at.clone().unwrap_or_else(|| "Never".into())}</td>
                            <td class=state_class>{state_text}</td>
                            <td>
                                {live.then(|| view! { <RevokeCell id=id.clone() hint=hint.clone() revoke confirming /> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Revoke, with a confirmation step in place.
#[component]
fn RevokeCell(
    id: String,
    hint: String,
    revoke: ServerAction<RevokeToken>,
    confirming: RwSignal<Option<String>>,
) -> impl IntoView {
    move || {
        if confirming.get().as_deref() == Some(id.as_str()) {
            let question = format!("Revoke {hint}? Requests with it fail at once.");
            let token_id = id.clone();
            view! {
                <div role="alertdialog" aria-label="Confirm revoke" class="stack">
                    <span>{question}</span>
                    <div class="row">
                        <ActionForm action=revoke attr:class="inline">
                            <input type="hidden" name="token_id" value=token_id />
                            <button type="submit" class="danger">"Yes, revoke"</button>
                        </ActionForm>
                        <button type="button" on:click=move |_| confirming.set(None)>"Cancel"</button>
                    </div>
                </div>
            }
            .into_any()
        } else {
            let id = id.clone();
            view! {
                <button type="button" class="danger" on:click=move |_| confirming.set(Some(id.clone()))>
                    "Revoke"
                </button>
            }
            .into_any()
        }
    }
}

#[component]
fn OverlapPanel(minutes: i64, overlap: ServerAction<SetTokenOverlap>) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="overlap-h">
            <h2 id="overlap-h">"Rotation overlap"</h2>
            <ActionForm action=overlap attr:class="row">
                <label>
                    "After a rotation, the previous token or client secret keeps working for"
                    <select name="minutes">
                        {OVERLAP_CHOICES.iter().map(|(m, label)| view! {
                            <option value=m.to_string() selected=*m == minutes>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Save"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn EntraSteps() -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="steps-h">
            <h2 id="steps-h">"Configure Microsoft Entra ID"</h2>
            <ol class="steps">
                <li>"Select "<strong>"Enabled"</strong>" in Automatic user provisioning above."</li>
                <li>"In the Microsoft Entra admin center, open Entra ID > Enterprise apps > BitaBIZ > Provisioning, and select + New configuration."</li>
                <li>"Paste the "<strong>"SCIM Provisioning endpoint URL"</strong>" into "<strong>"Tenant URL"</strong>"."</li>
                <li>
                    "Choose one authentication method. "<strong>"Bearer authentication"</strong>": paste the "
                    <strong>"Bearer Token"</strong>" into "<strong>"Secret Token"</strong>". "
                    <strong>"OAuth 2.0 client credentials grant"</strong>": paste the "<strong>"Token endpoint URL"</strong>
                    ", the "<strong>"Client identifier"</strong>" and the "<strong>"Client secret"</strong>" into the fields of the same names."
                </li>
                <li>"Select "<strong>"Test Connection"</strong>", then "<strong>"Create"</strong>". BitaBIZ requires userName, an email, first name and last name for every user."</li>
            </ol>
        </section>
    }
}

#[component]
fn RecentChanges(entries: Vec<AuditView>) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="recent-h">
            <h2 id="recent-h">"Recent changes"</h2>
            {if entries.is_empty() {
                view! { <p class="muted">"No changes yet."</p> }.into_any()
            } else {
                view! {
                    <table class="grid" aria-label="Recent changes">
                        <thead><tr><th>"When"</th><th>"Who"</th><th>"What"</th><th>"From"</th></tr></thead>
                        <tbody>
                            {entries.into_iter().map(|e| view! {
                                <tr>
                                    <td>{e.at}</td>
                                    <td>{e.actor}</td>
                                    <td>{AuditAction::label_of(&e.action)}{(!e.detail.is_empty()).then(|| view! { <br /><span class="muted">{e.detail.clone()}</span> })}</td>
                                    <td>{e.client_addr}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

// ---- OAuth 2.0 client credentials, credential lifetimes and expiry warnings ----

const SECRET_YEAR_CHOICES: [(i64, &str); 3] = [(1, "1 year"), (2, "2 years"), (3, "3 years")];

const ACCESS_TOKEN_CHOICES: [(i64, &str); 6] = [
    (60, "60 minutes"),
    (120, "2 hours"),
    (180, "3 hours"),
    (240, "4 hours"),
    (300, "5 hours"),
    (360, "6 hours"),
];

const BEARER_MAX_CHOICES: [(i64, &str); 6] = [
    (0, "Off (tokens do not expire)"),
    (30, "30 days"),
    (90, "90 days"),
    (180, "180 days"),
    (365, "1 year"),
    (730, "2 years"),
];

type WarningsVersion = (usize, usize, (usize, usize, usize, usize));

/// The page's OAuth actions, shared by the section, the warnings and the page's error line.
#[derive(Clone, Copy)]
struct OAuthActions {
    issue: ServerAction<IssueClientSecret>,
    revoke: ServerAction<RevokeClientSecret>,
    lifetime: ServerAction<SetAccessTokenLifetime>,
    bearer_max: ServerAction<SetBearerMaxLifetime>,
}

impl OAuthActions {
    fn new() -> Self {
        Self {
            issue: ServerAction::new(),
            revoke: ServerAction::new(),
            lifetime: ServerAction::new(),
            bearer_max: ServerAction::new(),
        }
    }
    fn version(&self) -> (usize, usize, usize, usize) {
        (
            self.issue.version().get(),
            self.revoke.version().get(),
            self.lifetime.version().get(),
            self.bearer_max.version().get(),
        )
    }
    fn error(&self) -> Option<ServerFnError> {
        [
            self.issue.value().get().and_then(|r| r.err()),
            self.revoke.value().get().and_then(|r| r.err()),
            self.lifetime.value().get().and_then(|r| r.err()),
            self.bearer_max.value().get().and_then(|r| r.err()),
        ]
        .into_iter()
        .flatten()
        .next()
    }
}

/// One line per credential that expires within 30 days (or has just expired), with what to do.
#[component]
fn CredentialWarnings(version: Signal<WarningsVersion>) -> impl IntoView {
    let warnings = Resource::new(move || version.get(), |_| load_credential_warnings());
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                warnings.await.ok().filter(|w| !w.is_empty()).map(|w| view! {
                    <div class="stack" data-testid="credential-warnings" role="status">
                        {w.into_iter().map(|w| view! {
                            <p class=if w.lapsed { "notice error" } else { "notice warn" }>{w.text}</p>
                        }).collect_view()}
                    </div>
                })
            })}
        </Transition>
    }
}

#[component]
fn OAuthSection(actions: OAuthActions) -> impl IntoView {
    let data = Resource::new(move || actions.version(), |_| load_oauth_clients());
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(view) => view! {
                        <OAuthPanel view=view.clone() actions />
                        <LifetimePanel view actions />
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OAuthPanel(view: OAuthView, actions: OAuthActions) -> impl IntoView {
    let issue = actions.issue;
    let has_active = view.secrets.iter().any(|s| s.state == TokenState::Active);
    let fresh = move || issue.value().get().and_then(|r| r.ok());
    let secrets = view.secrets;
    view! {
        <section class="panel" aria-labelledby="oauth-h">
            <h2 id="oauth-h">"OAuth 2.0 client credentials"</h2>
            <p class="muted">"Instead of the bearer token, Microsoft Entra ID can fetch short-lived access tokens with a client secret. Both methods can be live at once, so you can switch without a failed sync cycle."</p>
            <p class="field-name">"Token endpoint URL"</p>
            <CopyField label="Token endpoint URL" value=view.token_endpoint.clone() testid="token-endpoint" />
            <p class="field-name">"Client identifier"</p>
            <CopyField label="Client identifier" value=view.client_id.clone() testid="client-id" />
            <p class="field-name">"Client secret"</p>
            {move || fresh().map(|s| {
                let until = s.old_secrets_until.clone().map(|u| view! {
                    <p class="muted">"The previous secret, and the access tokens fetched with it, keep working until "{u}"."</p>
                });
                view! {
                    <div class="notice ok" data-testid="new-secret-box">
                        <p><strong>"Copy this client secret now. It will not be shown again."</strong></p>
                        <CopyField label="New client secret" value=s.secret.clone() testid="new-secret" />
                        <p class="muted">"Paste it into the Client Secret field of the Provisioning tab in Microsoft Entra ID. It expires on "{s.expires_at.clone()}"."</p>
                        {until}
                    </div>
                }
            })}
            <ActionForm action=issue attr:class="row">
                <label>
                    "Expires after"
                    <select name="years">
                        {SECRET_YEAR_CHOICES.iter().map(|(y, label)| view! {
                            <option value=y.to_string() selected=*y == 2>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="primary" disabled=move || issue.pending().get()>
                    {if has_active { "Rotate client secret" } else { "Generate client secret" }}
                </button>
            </ActionForm>
            {if secrets.is_empty() {
                view! { <p class="muted">"No client secret has been generated yet."</p> }.into_any()
            } else {
                view! { <SecretTable secrets revoke=actions.revoke /> }.into_any()
            }}
        </section>
    }
}

#[component]
fn SecretTable(
    secrets: Vec<ClientSecretView>,
    revoke: ServerAction<RevokeClientSecret>,
) -> impl IntoView {
    let confirming = RwSignal::new(None::<String>);
    view! {
        <table class="grid" aria-label="Client secrets">
            <thead><tr><th>"Secret"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th>"State"</th><th></th></tr></thead>
            <tbody>
                {secrets.into_iter().map(|s| {
                    let (state_class, state_text) = match s.state {
                        TokenState::Active => ("state-active", "Active".to_string()),
                        TokenState::Retiring => ("state-retiring", format!("Retiring until {}", s.retires_at.clone().unwrap_or_default())),
                        TokenState::Expired => ("state-revoked", "Expired".to_string()),
                        TokenState::Revoked => ("state-revoked", format!("Revoked {}", s.revoked_at.clone().unwrap_or_default())),
                    };
                    let live = matches!(s.state, TokenState::Active | TokenState::Retiring);
                    let id = s.id.clone();
                    let hint = s.hint.clone();
                    view! {
                        <tr data-testid="secret-row">
                            <td><code>{s.hint.clone()}</code></td>
                            <td>{s.created_at.clone()}<br /><span class="muted">"by "{s.created_by.clone()}</span></td>
                            <td>{s.last_used_at.clone().unwrap_or_else(|| "Never".into())}</td>
                            <td>{s.expires_at.clone()}</td>
                            <td class=state_class>{state_text}</td>
                            <td>
                                {live.then(|| view! { <RevokeSecretCell id=id.clone() hint=hint.clone() revoke confirming /> })}
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
}

/// Revoke, with a confirmation step in place.
#[component]
fn RevokeSecretCell(
    id: String,
    hint: String,
    revoke: ServerAction<RevokeClientSecret>,
    confirming: RwSignal<Option<String>>,
) -> impl IntoView {
    move || {
        if confirming.get().as_deref() == Some(id.as_str()) {
            let question =
                format!("Revoke {hint}? Access tokens fetched with it stop working at once.");
            let secret_id = id.clone();
            view! {
                <div role="alertdialog" aria-label="Confirm revoke" class="stack">
                    <span>{question}</span>
                    <div class="row">
                        <ActionForm action=revoke attr:class="inline">
                            <input type="hidden" name="secret_id" value=secret_id />
                            <button type="submit" class="danger">"Yes, revoke"</button>
                        </ActionForm>
                        <button type="button" on:click=move |_| confirming.set(None)>"Cancel"</button>
                    </div>
                </div>
            }
            .into_any()
        } else {
            let id = id.clone();
            view! {
                <button type="button" class="danger" on:click=move |_| confirming.set(Some(id.clone()))>
                    "Revoke"
                </button>
            }
            .into_any()
        }
    }
}

#[component]
fn LifetimePanel(view: OAuthView, actions: OAuthActions) -> impl IntoView {
    let minutes = view.access_token_minutes;
    let bearer_days = view.bearer_max_days.unwrap_or(0);
    view! {
        <section class="panel" aria-labelledby="lifetimes-h">
            <h2 id="lifetimes-h">"Credential lifetimes"</h2>
            <ActionForm action=actions.lifetime attr:class="row">
                <label>
                    "Access-token lifetime (OAuth 2.0)"
                    <select name="minutes">
                        {ACCESS_TOKEN_CHOICES.iter().map(|(m, label)| view! {
                            <option value=m.to_string() selected=*m == minutes>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Save"</button>
            </ActionForm>
            <ActionForm action=actions.bearer_max attr:class="row">
                <label>
                    "Bearer token maximum lifetime"
                    <select name="days">
                        {BEARER_MAX_CHOICES.iter().map(|(d, label)| view! {
                            <option value=d.to_string() selected=*d == bearer_days>{*label}</option>
                        }).collect_view()}
                    </select>
                </label>
                <button type="submit">"Save"</button>
            </ActionForm>
            <p class="muted">"Applies to tokens generated afterwards. Microsoft Entra ID quarantines a provisioning job whose token expires: rotate before the date shown. Warnings appear here and on Home 30 days ahead."</p>
        </section>
    }
}
