//! SETUP ADMIN > INTEGRATION > Microsoft Entra provisioning > Provisioning log: every SCIM
//! request with its outcome, filterable; one entry with its request and answer; and the
//! provisioning health box shown on the Microsoft Entra provisioning page.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::{SetLogRetention, error_text, load_log_entry, load_provisioning_log};
use crate::components::listing::{BarChart, Pager, url_with};
use crate::components::notice::ErrorNotice;
use crate::model::*;

pub const LOG_PATH: &str = "/setup-admin/integration/microsoft-entra/log";
const RETENTION: [i64; 7] = [7, 14, 30, 60, 90, 180, 365];

fn crumbs(last: &'static str) -> impl IntoView {
    view! {
        <nav class="crumbs" aria-label="Breadcrumb">
            <A href="/setup-admin">"SETUP ADMIN"</A>" › "
            <A href="/setup-admin/integration">"INTEGRATION"</A>" › "
            <A href="/setup-admin/integration/microsoft-entra">"Microsoft Entra provisioning"</A>" › "{last}
        </nav>
    }
}

fn target_cell(t: Option<LinkView>) -> impl IntoView {
    t.map(|l| view! { <a href=l.href class="wrap">{l.text}</a> })
}

/// The log table, shared by the log page and a Bulk request's entry.
#[component]
pub fn LogTable(rows: Vec<LogRowView>, #[prop(into)] label: String) -> impl IntoView {
    view! {
        <table class="grid" aria-label=label>
            <thead><tr><th>"Time"</th><th>"What"</th><th>"Target"</th><th>"Outcome"</th><th>"Status"</th><th>"Duration"</th><th>"From"</th></tr></thead>
            <tbody>
                {rows.into_iter().map(|r| view! {
                    <tr data-testid="log-row">
                        <td><a href=format!("{LOG_PATH}/{}", r.id)>{r.at}</a></td>
                        <td class="wrap">
                            {r.in_bulk.then(|| view! { <span class="tag">"Bulk"</span>" " })}
                            {r.action}
                            {r.error.map(|e| view! { <br /><span class="error-text">{e}</span> })}
                        </td>
                        <td>{target_cell(r.target)}</td>
                        <td class=r.outcome.class()>{r.outcome.label()}</td>
                        <td>{r.status}</td>
                        <td>{r.duration}</td>
                        <td>{r.client_addr}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}

fn option(value: String, label: String, current: &str) -> impl IntoView + use<> {
    let selected = current == value;
    view! { <option value=value selected=selected>{label}</option> }
}

#[component]
pub fn LogPage() -> impl IntoView {
    let query = use_query_map();
    let current = move || {
        let m = query.read();
        let get = |k: &str| m.get(k).unwrap_or_default();
        LogQuery {
            outcome: get("outcome"),
            operation: get("operation"),
            range: get("range"),
            from: get("from"),
            to: get("to"),
            before: get("before"),
        }
    };
    let retention = ServerAction::<SetLogRetention>::new();
    let data = Resource::new(
        move || (current(), retention.version().get()),
        |(q, _)| load_provisioning_log(q),
    );
    let error = Signal::derive(move || retention.value().get().and_then(|r| r.err()));
    view! {
        <Title text="Provisioning log" />
        {crumbs("Provisioning log")}
        <h1>"Provisioning log"</h1>
        <ErrorNotice error />
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let q = current();
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(log) => {
                        let base = [
                            ("outcome", q.outcome.as_str()),
                            ("operation", q.operation.as_str()),
                            ("range", q.range.as_str()),
                            ("from", q.from.as_str()),
                            ("to", q.to.as_str()),
                        ];
                        let first = url_with(LOG_PATH, &base);
                        let next = log.next.clone().map(|n| {
                            let mut p = base.to_vec();
                            p.push(("before", n.as_str()));
                            url_with(LOG_PATH, &p)
                        });
                        let ops = log.operations.clone();
                        view! {
                            <form method="get" action=LOG_PATH class="filters panel" aria-label="Filter the log">
                                <label>"Outcome"
                                    <select name="outcome">
                                        {option("".into(), "All".into(), &q.outcome)}
                                        {option("success".into(), "Success".into(), &q.outcome)}
                                        {option("failure".into(), "Failure".into(), &q.outcome)}
                                        {option("rejected".into(), "Rejected".into(), &q.outcome)}
                                    </select>
                                </label>
                                <label>"Operation"
                                    <select name="operation">
                                        {option("".into(), "All".into(), &q.operation)}
                                        {ops.into_iter().map(|(code, label)| option(code, label, &q.operation)).collect_view()}
                                    </select>
                                </label>
                                <label>"Time"
                                    <select name="range">
                                        {option("".into(), "Everything kept".into(), &q.range)}
                                        {option("1h".into(), "Last hour".into(), &q.range)}
                                        {option("24h".into(), "Last 24 hours".into(), &q.range)}
                                        {option("7d".into(), "Last 7 days".into(), &q.range)}
                                        {option("30d".into(), "Last 30 days".into(), &q.range)}
                                    </select>
                                </label>
                                <label>"From (UTC)"<input type="datetime-local" name="from" value=q.from.clone() /></label>
                                <label>"To (UTC)"<input type="datetime-local" name="to" value=q.to.clone() /></label>
                                <button type="submit" class="primary">"Apply"</button>
                            </form>
                            {log.notice.clone().map(|n| view! { <p class="notice warn" role="alert">{n}</p> })}
                            <section class="panel">
                                {if log.rows.is_empty() {
                                    view! { <p class="muted">"No requests match."</p> }.into_any()
                                } else {
                                    view! { <LogTable rows=log.rows label="Provisioning log" /> }.into_any()
                                }}
                                <Pager first next on_first=q.before.is_empty() next_label="Older entries" />
                            </section>
                            <section class="panel" aria-labelledby="retention-h">
                                <h2 id="retention-h">"Retention"</h2>
                                <ActionForm action=retention attr:class="row">
                                    <label>"Keep entries for"
                                        <select name="days">
                                            {RETENTION.iter().map(|d| view! {
                                                <option value=d.to_string() selected=*d == log.retention_days>{format!("{d} days")}</option>
                                            }).collect_view()}
                                        </select>
                                    </label>
                                    <button type="submit">"Save"</button>
                                </ActionForm>
                                <p class="muted">"Older entries are deleted automatically every hour. Request bodies are stored with passwords and tokens removed."</p>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn body_block(title: &'static str, text: Option<String>) -> impl IntoView {
    view! {
        <section class="panel">
            <h2>{title}</h2>
            {match text {
                Some(t) => view! { <pre class="body">{t}</pre> }.into_any(),
                None => view! { <p class="muted">"(no body)"</p> }.into_any(),
            }}
        </section>
    }
}

#[component]
pub fn LogEntryPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let data = Resource::new(id, load_log_entry);
    view! {
        <Title text="Provisioning log entry" />
        {crumbs("Entry")}
        <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <p class="notice error" role="alert">{error_text(&e)}</p> }.into_any(),
                    Ok(e) => view! { <EntryDetail entry=e /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn EntryDetail(entry: LogEntryView) -> impl IntoView {
    let r = entry.row;
    view! {
        <h1 class="wrap">{r.action.clone()}</h1>
        <section class="panel">
            <dl class="facts">
                <dt>"Time"</dt><dd>{r.at}</dd>
                <dt>"Outcome"</dt><dd class=r.outcome.class() data-testid="entry-outcome">{r.outcome.label()}</dd>
                <dt>"HTTP status"</dt><dd>{r.status}</dd>
                {entry.scim_type.map(|t| view! { <dt>"SCIM error type"</dt><dd><code>{t}</code></dd> })}
                {r.error.map(|e| view! { <dt>"Error"</dt><dd class="error-text" data-testid="entry-error">{e}</dd> })}
                {r.target.map(|t| view! { <dt>"Target"</dt><dd><a href=t.href>{t.text}</a></dd> })}
                <dt>"Request"</dt><dd><code class="wrap">{entry.method}" "{entry.path}</code></dd>
                <dt>"Duration"</dt><dd>{r.duration}</dd>
                <dt>"From"</dt><dd>{r.client_addr}</dd>
                {entry.parent.map(|p| view! { <dt>"Part of"</dt><dd><a href=format!("{LOG_PATH}/{p}")>"Bulk request"</a></dd> })}
            </dl>
        </section>
        {(!entry.operations.is_empty()).then(|| view! {
            <section class="panel">
                <h2>"Operations"</h2>
                <LogTable rows=entry.operations label="Bulk operations" />
            </section>
        })}
        {body_block("Request body", entry.request)}
        {body_block("Answer", entry.response)}
    }
}

/// Provisioning health: on/off, last request (with a warning when Entra has gone quiet),
/// counts for 24 hours, the last error, and charts per hour and per day.
#[component]
pub fn HealthPanel(health: HealthView) -> impl IntoView {
    let h = health;
    let last = match (&h.last_request, &h.last_request_ago) {
        (Some(at), Some(ago)) => format!("{at} ({ago})"),
        _ => "No request received yet".to_string(),
    };
    let silent = h.silent.then(|| {
        let text = if h.last_request.is_some() {
            "Microsoft Entra ID has not called for more than 80 minutes (two provisioning cycles). Check the provisioning job in the Microsoft Entra admin center: it may be stopped or in quarantine."
        } else {
            "Microsoft Entra ID has not called yet. After Test Connection and Start provisioning, the first requests appear here."
        };
        view! { <p class="notice warn" data-testid="silent-warning">{text}</p> }
    });
    view! {
        <section class="panel" aria-labelledby="health-h" data-testid="health">
            <h2 id="health-h">"Provisioning health"</h2>
            <dl class="facts">
                <dt>"Automatic user provisioning"</dt>
                <dd class=if h.enabled { "state-active" } else { "state-revoked" }>{if h.enabled { "On" } else { "Off" }}</dd>
                <dt>"Last request received"</dt><dd data-testid="last-request">{last}</dd>
                <dt>"Last 24 hours"</dt>
                <dd data-testid="health-counts">
                    <span data-testid="requests-24h">{h.requests_24h}</span>" requests · "
                    <span data-testid="failures-24h">{h.failures_24h}</span>" failures · "
                    <span data-testid="rejected-24h">{h.rejected_24h}</span>" rejected"
                </dd>
            </dl>
            {silent}
            {(h.lost_24h > 0).then(|| view! {
                <p class="notice warn">{h.lost_24h}" requests in the last 24 hours were answered but not logged (the log writer could not keep up); they are counted above."</p>
            })}
            {h.last_error.map(|e| view! {
                <div class="last-error" data-testid="last-error">
                    <h3>"Last error"</h3>
                    <p>
                        <a href=format!("{LOG_PATH}/{}", e.row.id)>{e.row.at.clone()}</a>" · "
                        <span class=e.row.outcome.class()>{e.row.outcome.label()}</span>" · HTTP "{e.row.status}
                    </p>
                    <p class="wrap">{e.row.action.clone()}</p>
                    {e.row.error.clone().map(|d| view! { <p class="error-text wrap">{d}</p> })}
                    {e.scim_type.map(|t| view! { <p class="muted">"SCIM error type: "<code>{t}</code></p> })}
                </div>
            })}
            <div class="charts">
                <BarChart title="Requests per hour (last 24 hours, UTC)" bars=h.hourly />
                <BarChart title="Requests per day (last 30 days, UTC)" bars=h.daily />
            </div>
            <p><a href=LOG_PATH data-testid="open-log">"Open the provisioning log »"</a></p>
        </section>
    }
}
