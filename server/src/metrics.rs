//! Prometheus text-format metrics, kept in process memory (each instance reports its own; a
//! scraper sums them). No per-user or per-tenant labels: label sets stay small and bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

#[derive(Default)]
pub struct Metrics {
    /// (operation, status) → latency series.
    requests: Mutex<BTreeMap<(&'static str, u16), Series>>,
    /// (metric, outcome) → count.
    outcomes: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub connections_open: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub requests_timed_out: AtomicU64,
    /// Background job → until when this instance holds its lease (`None`: not held).
    leases: Mutex<BTreeMap<&'static str, Option<Instant>>>,
}

/// Names for the outcome counters.
pub const SCIM_AUTH: &str = "bitabiz_scim_auth_total";
pub const SIGN_IN: &str = "bitabiz_sign_in_total";

/// Point-in-time values read when the metrics are rendered.
pub struct Gauges {
    pub db_kind: &'static str,
    pub db_pool_size: u32,
    pub db_pool_idle: usize,
    pub db_pool_max: u32,
    pub hash_slots_in_use: usize,
    pub hash_waiting: usize,
    pub hash_slots: usize,
    pub hashes_computed: u64,
    pub hashes_refused: u64,
}

impl Metrics {
    pub fn observe_request(&self, operation: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Ok(mut m) = self.requests.lock() {
            let s = m.entry((operation, status)).or_default();
            s.count += 1;
            s.sum += secs;
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    s.buckets[i] += 1;
                }
            }
        }
    }

    pub fn count(&self, metric: &'static str, outcome: &'static str) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry((metric, outcome)).or_default() += 1;
        }
    }

    /// Notes until when this instance holds `job`'s lease (`None`: another instance has it).
    pub fn set_lease(&self, job: &'static str, until: Option<Instant>) {
        if let Ok(mut m) = self.leases.lock() {
            m.insert(job, until);
        }
    }

    /// The background jobs this process knows, each with whether it holds its lease now.
    pub fn leases_held(&self) -> Vec<(&'static str, bool)> {
        let now = Instant::now();
        self.leases
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(job, until)| (*job, until.is_some_and(|u| u > now)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The count recorded for one outcome (tests and the bench read it).
    pub fn outcome(&self, metric: &'static str, outcome: &'static str) -> u64 {
        self.outcomes
            .lock()
            .map(|m| m.get(&(metric, outcome)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().map(|m| m.clone()).unwrap_or_default();
        out.push_str(
            "# HELP bitabiz_http_request_duration_seconds Time to answer a request, by operation \
             (SCIM operation, console, other) and status.\n\
             # TYPE bitabiz_http_request_duration_seconds histogram\n",
        );
        for ((op, status), s) in &requests {
            let labels = format!("operation=\"{op}\",status=\"{status}\"");
            for (i, le) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "bitabiz_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "bitabiz_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "bitabiz_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "bitabiz_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out.push_str(
            "# HELP bitabiz_http_requests_total Requests answered, by operation and status.\n\
             # TYPE bitabiz_http_requests_total counter\n",
        );
        for ((op, status), s) in &requests {
            let _ = writeln!(
                out,
                "bitabiz_http_requests_total{{operation=\"{op}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let outcomes = self.outcomes.lock().map(|m| m.clone()).unwrap_or_default();
        for (name, help) in [
            (
                SCIM_AUTH,
                "SCIM bearer-token checks, by outcome (ok, missing, invalid, disabled, error).",
            ),
            (
                SIGN_IN,
                "Console sign-in attempts, by outcome (success, choose_organisation, wrong, \
                 throttled, busy, error).",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((metric, outcome), n) in &outcomes {
                if *metric == name {
                    let _ = writeln!(out, "{name}{{outcome=\"{outcome}\"}} {n}");
                }
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let leases = self.leases_held();
        if !leases.is_empty() {
            out.push_str(
                "# HELP bitabiz_job_lease_held 1 while this instance holds the background job's \
                 lease (and so is the one instance that runs it), else 0.\n\
                 # TYPE bitabiz_job_lease_held gauge\n",
            );
            for (job, held) in leases {
                let _ = writeln!(
                    out,
                    "bitabiz_job_lease_held{{job=\"{job}\"}} {}",
                    held as u8
                );
            }
        }
        let gauges: [(&str, &str, &str, String); 12] = [
            (
                "bitabiz_connections_open",
                "gauge",
                "Client connections open now.",
                load(&self.connections_open).to_string(),
            ),
            (
                "bitabiz_connections_accepted_total",
                "counter",
                "Client connections accepted.",
                load(&self.connections_accepted).to_string(),
            ),
            (
                "bitabiz_connections_refused_total",
                "counter",
                "Client connections closed at once because the connection cap was reached.",
                load(&self.connections_refused).to_string(),
            ),
            (
                "bitabiz_requests_timed_out_total",
                "counter",
                "Requests cut off by the per-request timeout.",
                load(&self.requests_timed_out).to_string(),
            ),
            (
                "bitabiz_db_pool_connections",
                "gauge",
                "Database connections open in the pool (in use plus idle).",
                format!("{}", g.db_pool_size),
            ),
            (
                "bitabiz_db_pool_idle_connections",
                "gauge",
                "Idle database connections in the pool.",
                g.db_pool_idle.to_string(),
            ),
            (
                "bitabiz_db_pool_max_connections",
                "gauge",
                "Configured largest database pool.",
                g.db_pool_max.to_string(),
            ),
            (
                "bitabiz_password_hash_slots_in_use",
                "gauge",
                "Password hashes running now (the sign-in queue's busy slots).",
                g.hash_slots_in_use.to_string(),
            ),
            (
                "bitabiz_password_hash_waiting",
                "gauge",
                "Sign-ins waiting now for a free password-hashing slot.",
                g.hash_waiting.to_string(),
            ),
            (
                "bitabiz_password_hash_slots",
                "gauge",
                "Password hashes allowed at once.",
                g.hash_slots.to_string(),
            ),
            (
                "bitabiz_password_hashes_total",
                "counter",
                "argon2 computations run.",
                g.hashes_computed.to_string(),
            ),
            (
                "bitabiz_password_hashes_refused_total",
                "counter",
                "Sign-ins answered 'try again' because every hashing slot stayed busy.",
                g.hashes_refused.to_string(),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP bitabiz_info Build and database kind.\n# TYPE bitabiz_info gauge\n\
             bitabiz_info{{version=\"{}\",database=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            g.db_kind
        );
        out
    }
}

/// A bounded label for a request: the SCIM operation (`users_patch`, `groups_list`, ...), or
/// `console`, `health`, `metrics`, `static`, `other`.
pub fn operation(method: &http::Method, path: &str) -> &'static str {
    use http::Method;
    let Some(rest) = path.strip_prefix("/scim/v2/") else {
        return match path {
            "/healthz" => "health",
            "/metrics" => "metrics",
            p if p.starts_with("/api/") => "console_api",
            p if p.starts_with("/pkg/") || p == "/style.css" => "static",
            _ => "console_page",
        };
    };
    let mut segs = rest
        .trim_end_matches('/')
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty());
    let resource = segs.next().unwrap_or("");
    let second = segs.next();
    let m = method;
    match (resource, second) {
        ("Users", None) if m == Method::GET => "scim_users_list",
        ("Users", None) if m == Method::POST => "scim_users_create",
        ("Users", Some(".search")) => "scim_users_search",
        ("Users", Some(_)) if m == Method::GET => "scim_users_get",
        ("Users", Some(_)) if m == Method::PUT => "scim_users_replace",
        ("Users", Some(_)) if m == Method::PATCH => "scim_users_patch",
        ("Users", Some(_)) if m == Method::DELETE => "scim_users_delete",
        ("Groups", None) if m == Method::GET => "scim_groups_list",
        ("Groups", None) if m == Method::POST => "scim_groups_create",
        ("Groups", Some(".search")) => "scim_groups_search",
        ("Groups", Some(_)) if m == Method::GET => "scim_groups_get",
        ("Groups", Some(_)) if m == Method::PUT => "scim_groups_replace",
        ("Groups", Some(_)) if m == Method::PATCH => "scim_groups_patch",
        ("Groups", Some(_)) if m == Method::DELETE => "scim_groups_delete",
        ("Bulk", _) => "scim_bulk",
        (".search", _) => "scim_search",
        ("ServiceProviderConfig" | "ResourceTypes" | "Schemas", _) => "scim_discovery",
        _ => "scim_other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn operations_are_a_small_fixed_set() {
        assert_eq!(
            operation(&Method::PATCH, "/scim/v2/acme/Users/42"),
            "scim_users_patch"
        );
        assert_eq!(
            operation(&Method::GET, "/scim/v2/acme/Users/"),
            "scim_users_list"
        );
        assert_eq!(
            operation(&Method::POST, "/scim/v2/acme/Groups/.search"),
            "scim_groups_search"
        );
        assert_eq!(
            operation(&Method::GET, "/scim/v2/acme/Schemas/urn:x"),
            "scim_discovery"
        );
        assert_eq!(operation(&Method::GET, "/scim/v2/acme/Nope"), "scim_other");
        assert_eq!(operation(&Method::POST, "/api/sign_in"), "console_api");
        assert_eq!(operation(&Method::GET, "/whatever/123"), "console_page");
    }

    #[test]
    fn renders_histograms_and_counters() {
        let m = Metrics::default();
        m.observe_request("scim_users_get", 200, Duration::from_millis(7));
        m.observe_request("scim_users_get", 200, Duration::from_millis(300));
        m.count(SIGN_IN, "wrong");
        m.count(SIGN_IN, "wrong");
        let text = m.render(&Gauges {
            db_kind: "sqlite",
            db_pool_size: 2,
            db_pool_idle: 1,
            db_pool_max: 8,
            hash_slots_in_use: 0,
            hash_waiting: 3,
            hash_slots: 2,
            hashes_computed: 3,
            hashes_refused: 0,
        });
        assert!(text.contains(
            "bitabiz_http_request_duration_seconds_bucket{operation=\"scim_users_get\",status=\"200\",le=\"0.01\"} 1"
        ), "{text}");
        assert!(text.contains(
            "bitabiz_http_request_duration_seconds_bucket{operation=\"scim_users_get\",status=\"200\",le=\"0.5\"} 2"
        ));
        assert!(text.contains("bitabiz_sign_in_total{outcome=\"wrong\"} 2"));
        assert!(text.contains("bitabiz_db_pool_max_connections 8"));
        assert!(
            text.contains("\nbitabiz_password_hash_waiting 3\n"),
            "{text}"
        );
        assert!(
            !text.contains("bitabiz_job_lease_held"),
            "no jobs, no lease lines"
        );
        m.set_lease(
            "sessions_prune",
            Some(Instant::now() + Duration::from_secs(60)),
        );
        m.set_lease("provisioning_log_prune", None);
        m.set_lease("expired", Some(Instant::now()));
        let text = m.render(&Gauges {
            db_kind: "sqlite",
            db_pool_size: 0,
            db_pool_idle: 0,
            db_pool_max: 8,
            hash_slots_in_use: 0,
            hash_waiting: 0,
            hash_slots: 2,
            hashes_computed: 0,
            hashes_refused: 0,
        });
        assert!(text.contains("bitabiz_job_lease_held{job=\"sessions_prune\"} 1\n"));
        assert!(text.contains("bitabiz_job_lease_held{job=\"provisioning_log_prune\"} 0\n"));
        assert!(
            text.contains("bitabiz_job_lease_held{job=\"expired\"} 0\n"),
            "{text}"
        );
        assert_eq!(m.outcome(SIGN_IN, "wrong"), 2);
    }
}
