//! Pieces the listing pages share: links that carry a page's query, the pager, and bar charts
//! drawn as SVG on the server (readable without JavaScript).

use leptos::prelude::*;

use crate::model::ChartBar;

/// Percent-encodes a query value (everything but unreserved characters).
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `base?k=v&…` with the empty values left out.
pub fn url_with(base: &str, pairs: &[(&str, &str)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    if q.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", q.join("&"))
    }
}

/// "First page" (when not on it) and "Next page" links.
#[component]
pub fn Pager(
    /// Link to the first page (without a cursor).
    first: String,
    /// Link to the next page, if there is one.
    next: Option<String>,
    on_first: bool,
    #[prop(into)] next_label: String,
) -> impl IntoView {
    view! {
        <nav class="pager" aria-label="Pages">
            {(!on_first).then(|| view! { <a href=first.clone()>"« First page"</a> })}
            {next.map(|n| view! { <a href=n rel="next" data-testid="next-page">{next_label.clone()}" »"</a> })}
        </nav>
    }
}

/// Requests (bar) and failures (red part of the bar) per period.
#[component]
pub fn BarChart(#[prop(into)] title: String, bars: Vec<ChartBar>) -> impl IntoView {
    let n = bars.len().max(1) as f64;
    let (w, h, top) = (600.0_f64, 120.0_f64, 8.0_f64);
    let max = bars.iter().map(|b| b.requests).max().unwrap_or(0).max(1) as f64;
    let slot = w / n;
    let bar_w = (slot * 0.7).max(1.0);
    let scale = |v: i64| (v as f64 / max) * (h - top);
    let label_every = (bars.len() / 6).max(1);
    let total: i64 = bars.iter().map(|b| b.requests).sum();
    let failed: i64 = bars.iter().map(|b| b.failures).sum();
    let summary = format!("{title}: {total} requests, {failed} failed or rejected");
    let rects = bars
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let x = i as f64 * slot + (slot - bar_w) / 2.0;
            let rh = scale(b.requests);
            let fh = scale(b.failures.min(b.requests)).max(if b.failures > 0 { 1.5 } else { 0.0 });
            let tip = format!("{}: {} requests, {} failed or rejected", b.label, b.requests, b.failures);
            view! {
                <g>
                    <title>{tip}</title>
                    <rect class="bar" x=format!("{x:.1}") y=format!("{:.1}", h - rh) width=format!("{bar_w:.1}") height=format!("{rh:.1}") />
                    <rect class="bar-fail" x=format!("{x:.1}") y=format!("{:.1}", h - fh) width=format!("{bar_w:.1}") height=format!("{fh:.1}") />
                </g>
            }
        })
        .collect_view();
    let labels = bars
        .iter()
        .enumerate()
        // Offset from the edges so the first and last labels are not cut off.
        .filter(|(i, _)| i % label_every == label_every / 2)
        .map(|(i, b)| {
            let x = i as f64 * slot + slot / 2.0;
            view! { <text x=format!("{x:.1}") y=format!("{:.1}", h + 14.0) text-anchor="middle">{b.label.clone()}</text> }
        })
        .collect_view();
    view! {
        <figure class="chart">
            <figcaption>{title.clone()}<span class="muted">" · max "{max as i64}" per bar"</span></figcaption>
            <svg viewBox=format!("0 0 {w} {}", h + 18.0) role="img" aria-label=summary preserveAspectRatio="none">
                <line class="axis" x1="0" y1=format!("{h}") x2=format!("{w}") y2=format!("{h}") />
                {rects}
                {labels}
            </svg>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_set_values_encoded() {
        assert_eq!(url_with("/users", &[("q", ""), ("sort", "")]), "/users");
        assert_eq!(
            url_with("/users", &[("q", "a b&c"), ("after", "00ff")]),
            "/users?q=a%20b%26c&after=00ff"
        );
    }
}
