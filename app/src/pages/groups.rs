//! Groups: the organisation's groups with member counts, and one group's members (searchable,
//! a page at a time).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{error_text, load_group, load_groups};
use crate::components::listing::{Pager, url_with};
use crate::pages::users::UserTable;

#[component]
pub fn GroupsPage() -> impl IntoView {
    let query = use_query_map();
    let current = move || {
        let m = query.read();
        (
            m.get("q").unwrap_or_default(),
            m.get("after").unwrap_or_default(),
        )
    };
    let data = Resource::new(current, |(q, after)| load_groups(q, after));
    view! {
        <Title text="Groups" />
        <h1>"Groups"</h1>
        {move || view! {
            <form method="get" action="/groups" class="filters panel" role="search" aria-label="Find groups">
                <label class="grow">"Name starts with"
                    <input type="search" name="q" value=current().0 maxlength="200" />
                </label>
                <button type="submit" class="primary">"Search"</button>
            </form>
        }}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (q, after) = current();
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(list) => {
                        let first = url_with("/groups", &[("q", q.as_str())]);
                        let next = list.next.clone().map(|n| url_with("/groups", &[("q", q.as_str()), ("after", n.as_str())]));
                        view! {
                            <section class="panel">
                                <p class="muted">{list.count_text.clone()}</p>
                                {if list.rows.is_empty() {
                                    view! { <p class="muted">"No groups match."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="grid" aria-label="Groups">
                                            <thead><tr><th>"Name"</th><th>"Members"</th><th>"Last change"</th></tr></thead>
                                            <tbody>
                                                {list.rows.into_iter().map(|g| view! {
                                                    <tr data-testid="group-row">
                                                        <td><a href=format!("/groups/{}", g.id)>{g.name}</a></td>
                                                        <td>{g.members}</td>
                                                        <td>{g.last_change}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                                <Pager first next on_first=after.is_empty() next_label="Next page" />
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
pub fn GroupPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let current = move || {
        let m = query.read();
        (
            params.read().get("id").unwrap_or_default(),
            m.get("q").unwrap_or_default(),
            m.get("after").unwrap_or_default(),
        )
    };
    let data = Resource::new(current, |(id, q, after)| load_group(id, q, after));
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (id, q, after) = current();
                match data.await {
                    Err(e) => view! {
                        <Title text="Group" />
                        <nav class="crumbs" aria-label="Breadcrumb"><A href="/groups">"Groups"</A></nav>
                        <p class="notice error" role="alert">{error_text(&e)}</p>
                    }.into_any(),
                    Ok(g) => {
                        let here = format!("/groups/{id}");
                        let first = url_with(&here, &[("q", q.as_str())]);
                        let next = g.next.clone().map(|n| url_with(&here, &[("q", q.as_str()), ("after", n.as_str())]));
                        view! {
                            <Title text=g.name.clone() />
                            <nav class="crumbs" aria-label="Breadcrumb"><A href="/groups">"Groups"</A>" › "{g.name.clone()}</nav>
                            <h1>{g.name.clone()}</h1>
                            <section class="panel">
                                <dl class="facts">
                                    {g.facts.into_iter().map(|f| view! { <dt>{f.label}</dt><dd>{f.value}</dd> }).collect_view()}
                                </dl>
                            </section>
                            <section class="panel" aria-labelledby="members-h">
                                <h2 id="members-h">"Members"</h2>
                                <form method="get" action=here.clone() class="filters" role="search" aria-label="Find members">
                                    <label class="grow">"Name, email or userName starts with"
                                        <input type="search" name="q" value=q.clone() maxlength="200" />
                                    </label>
                                    <button type="submit">"Search"</button>
                                </form>
                                {(!g.nested_groups.is_empty()).then(|| view! {
                                    <p>"Groups in this group: "
                                        {g.nested_groups.into_iter().map(|l| view! { <a class="sep" href=l.href>{l.text}</a> }).collect_view()}
                                    </p>
                                })}
                                {if g.members.is_empty() {
                                    view! { <p class="muted">{if q.is_empty() { "This group has no user members." } else { "No members match." }}</p> }.into_any()
                                } else {
                                    view! { <UserTable rows=g.members label="Members" /> }.into_any()
                                }}
                                <Pager first next on_first=after.is_empty() next_label="Next page" />
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
