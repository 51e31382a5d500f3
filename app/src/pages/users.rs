//! Users: every user of the organisation (provisioned and local), searchable, filterable and
//! sortable, a page at a time; and one user's attributes, groups and provisioning history.
//! Filters and paging are plain links and GET forms: they work without the wasm.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{error_text, load_user, load_users};
use crate::components::listing::{Pager, url_with};
use crate::model::*;

fn status_class(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => "state-active",
        UserStatus::Disabled => "state-retiring",
        UserStatus::Deprovisioned => "state-revoked",
    }
}

/// The user table shared by Users and a group's members.
#[component]
pub fn UserTable(rows: Vec<UserRowView>, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <table class="grid" aria-label=label>
            <thead><tr><th>"Name"</th><th>"userName"</th><th>"Email"</th><th>"Status"</th><th>"Source"</th><th>"Last change"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|u| view! {
                    <tr data-testid="user-row">
                        <td><a href=format!("/users/{}", u.id)>{u.name}</a></td>
                        <td class="wrap">{u.user_name}</td>
                        <td class="wrap">{u.email}</td>
                        <td class=status_class(u.status)>{u.status.label()}</td>
                        <td>{u.source}</td>
                        <td>{u.last_change}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn option(value: &'static str, label: &'static str, current: &str) -> impl IntoView + use<> {
    let selected = current == value;
    view! { <option value=value selected=selected>{label}</option> }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let query = use_query_map();
    let current = move || {
        let m = query.read();
        let get = |k: &str| m.get(k).unwrap_or_default();
        UserListQuery {
            q: get("q"),
            r#match: get("match"),
            status: get("status"),
            source: get("source"),
            sort: get("sort"),
            after: get("after"),
        }
    };
    let data = Resource::new(current, load_users);
    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        {move || {
            let q = current();
            view! {
                <form method="get" action="/users" class="filters panel" role="search" aria-label="Find users">
                    <label class="grow">"Search"
                        <input type="search" name="q" value=q.q.clone() placeholder="Name, email or userName" maxlength="200" />
                    </label>
                    <label>"Match"
                        <select name="match">
                            {option("", "Starts with", &q.r#match)}
                            {option("contains", "Contains", &q.r#match)}
                        </select>
                    </label>
                    <label>"Status"
                        <select name="status">
                            {option("", "All", &q.status)}
                            {option("active", "Active", &q.status)}
                            {option("disabled", "Disabled", &q.status)}
                            {option("deprovisioned", "Deprovisioned", &q.status)}
                        </select>
                    </label>
                    <label>"Source"
                        <select name="source">
                            {option("", "All", &q.source)}
                            {option("entra", "Microsoft Entra ID", &q.source)}
                            {option("local", "Local", &q.source)}
                        </select>
                    </label>
                    <label>"Sort by"
                        <select name="sort">
                            {option("", "Name", &q.sort)}
                            {option("changed", "Last change", &q.sort)}
                        </select>
                    </label>
                    <button type="submit" class="primary">"Apply"</button>
                </form>
            }
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let q = current();
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(list) => {
                        let base = [
                            ("q", q.q.as_str()),
                            ("match", q.r#match.as_str()),
                            ("status", q.status.as_str()),
                            ("source", q.source.as_str()),
                            ("sort", q.sort.as_str()),
                        ];
                        let first = url_with("/users", &base);
                        let next = list.next.clone().map(|n| {
                            let mut p = base.to_vec();
                            p.push(("after", n.as_str()));
                            url_with("/users", &p)
                        });
                        let next_label = if list.partial { "Continue searching" } else { "Next page" };
                        view! {
                            <section class="panel">
                                <p class="muted" data-testid="user-count">{list.count_text.clone()}</p>
                                {list.partial.then(|| view! {
                                    <p class="notice warn">"Searched the next 5,000 users in this order; continue for more matches."</p>
                                })}
                                {if list.rows.is_empty() {
                                    view! { <p class="muted">"No users match."</p> }.into_any()
                                } else {
                                    view! { <UserTable rows=list.rows label="Users" /> }.into_any()
                                }}
                                <Pager first next on_first=q.after.is_empty() next_label />
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
pub fn UserPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_user);
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! {
                        <Title text="User" />
                        <nav class="crumbs" aria-label="Breadcrumb"><A href="/users">"Users"</A></nav>
                        <p class="notice error" role="alert">{error_text(&e)}</p>
                    }.into_any(),
                    Ok(u) => view! {
                        <Title text=u.name.clone() />
                        <nav class="crumbs" aria-label="Breadcrumb"><A href="/users">"Users"</A>" › "{u.name.clone()}</nav>
                        <h1>{u.name.clone()}" "<span class=format!("tag {}", status_class(u.status)) data-testid="user-status">{u.status.label()}</span></h1>
                        <p class="muted">{u.user_name.clone()}" · "{u.source.clone()}</p>
                        {u.sections.into_iter().map(|s| view! {
                            <section class="panel">
                                <h2>{s.title}</h2>
                                <dl class="facts">
                                    {s.facts.into_iter().map(|f| view! {
                                        <dt>{f.label}</dt>
                                        <dd>{match f.href {
                                            Some(h) => view! { <a href=h>{f.value}</a> }.into_any(),
                                            None => view! { <span>{f.value}</span> }.into_any(),
                                        }}</dd>
                                    }).collect_view()}
                                </dl>
                            </section>
                        }).collect_view()}
                        <section class="panel" aria-labelledby="groups-h">
                            <h2 id="groups-h">"Groups"</h2>
                            {if u.groups.is_empty() {
                                view! { <p class="muted">"Not a member of any group."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="links" data-testid="user-groups">
                                        {u.groups.into_iter().map(|g| view! { <li><a href=g.href>{g.text}</a></li> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </section>
                        <History items=u.history end=u.history_end />
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn History(items: Vec<HistoryItem>, end: HistoryEnd) -> impl IntoView {
    view! {
        <section class="panel" aria-labelledby="history-h">
            <h2 id="history-h">"Provisioning history"</h2>
            {if items.is_empty() {
                view! { <p class="muted">"Provisioning has not changed this user within the log's retention."</p> }.into_any()
            } else {
                view! {
                    <ol class="history" data-testid="history">
                        {items.into_iter().map(|h| {
                            let failed = h.outcome != LogOutcome::Success;
                            view! {
                                <li>
                                    <div class="row">
                                        <strong>{h.what.clone()}</strong>
                                        <span class=h.outcome.class()>{h.outcome.label()}</span>
                                        <span class="muted">{h.at.clone()}</span>
                                        <a href=format!("/setup-admin/integration/microsoft-entra/log/{}", h.entry_id)>"Log entry"</a>
                                    </div>
                                    {(failed).then(|| h.error.clone().map(|e| view! { <p class="notice error">{e}</p> }))}
                                    {(!h.changes.is_empty()).then(|| view! {
                                        <table class="grid changes" aria-label="Changes">
                                            <thead><tr><th>"Attribute"</th><th>"From"</th><th>"To"</th></tr></thead>
                                            <tbody>
                                                {h.changes.into_iter().map(|c| view! {
                                                    <tr>
                                                        <td>{c.attribute}</td>
                                                        <td class="wrap">{c.from.unwrap_or_else(|| "—".into())}</td>
                                                        <td class="wrap">{c.to.unwrap_or_else(|| "—".into())}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    })}
                                    {(!h.touched.is_empty()).then(|| view! {
                                        <p class="muted">"Attributes sent: "{h.touched.join(", ")}</p>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ol>
                    {match end {
                        HistoryEnd::Complete => None,
                        HistoryEnd::More => Some(view! {
                            <p class="muted" data-testid="history-end">"Older changes are in the provisioning log."</p>
                        }),
                        HistoryEnd::Gap => Some(view! {
                            <p class="muted" data-testid="history-end">
                                "Older changes are no longer in the provisioning log (past its retention, or lost while the log could not keep up)."
                            </p>
                        }),
                    }}
                }.into_any()
            }}
        </section>
    }
}
