//! Command line and environment. Every option has an env fallback and a default that makes a
//! bare `bitabiz` start work.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

use crate::net::IpRange;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/bitabiz.db";

#[derive(Parser, Debug)]
#[command(
    name = "bitabiz",
    version,
    about = "BitaBIZ admin console and SCIM 2.0 provisioning endpoint",
    long_about = "BitaBIZ admin console and SCIM 2.0 provisioning endpoint.\n\nWith no subcommand, `bitabiz` serves (same as `bitabiz serve`)."
)]
pub struct Cli {
    /// Database URL: `sqlite://PATH` (file and folder are created) or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true, hide_env_values = true)]
    pub database_url: String,

    /// Largest database pool (default 8 for SQLite, 16 for PostgreSQL). With several instances
    /// on one PostgreSQL, instances × this must stay under the server's max_connections.
    #[arg(long, env = "BITABIZ_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<u32>,

    /// Database connections kept open even when idle.
    #[arg(
        long,
        env = "BITABIZ_DB_MIN_CONNECTIONS",
        default_value_t = 0,
        global = true
    )]
    pub db_min_connections: u32,

    /// How long a request waits for a free database connection before failing.
    #[arg(long, env = "BITABIZ_DB_ACQUIRE_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// Log format: `text` for people, `json` (one object per line, with request ids) for log
    /// collectors.
    #[arg(
        long,
        env = "BITABIZ_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub serve: ServeArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(
        long,
        env = "BITABIZ_ADDR",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub addr: SocketAddr,

    /// External base URL, as browsers and Microsoft Entra ID reach this server
    /// (e.g. https://bitabiz.example.com). Defaults to http://ADDR. Used for the SCIM endpoint
    /// URL, the cross-site request check and the `Secure` cookie flag.
    #[arg(long, env = "BITABIZ_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Folder holding the compiled browser bundle (`pkg/`).
    #[arg(
        long,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site",
        global = true
    )]
    pub site_root: String,

    /// Longest string (in characters) accepted in a SCIM attribute value or name.
    #[arg(long, env = "BITABIZ_SCIM_MAX_STRING_LENGTH", default_value_t = crate::scim::limits::DEFAULT_MAX_STRING_CHARS, global = true)]
    pub scim_max_string_length: usize,

    /// Most values accepted in one multi-valued SCIM attribute (emails, phoneNumbers, ...).
    /// Group members are not limited by this.
    #[arg(long, env = "BITABIZ_SCIM_MAX_VALUES", default_value_t = crate::scim::limits::DEFAULT_MAX_VALUES, global = true)]
    pub scim_max_values: usize,

    /// Most attributes accepted in one SCIM object (a resource, an extension, a complex value).
    #[arg(long, env = "BITABIZ_SCIM_MAX_ATTRIBUTES", default_value_t = crate::scim::limits::DEFAULT_MAX_ATTRIBUTES, global = true)]
    pub scim_max_attributes: usize,

    /// Password hashes (argon2, 19 MiB each) computed at once. Sign-ins beyond this wait.
    #[arg(
        long,
        env = "BITABIZ_MAX_CONCURRENT_HASHES",
        default_value_t = 2,
        global = true
    )]
    pub max_concurrent_hashes: usize,

    /// How long a sign-in waits for a free hashing slot before it is answered 503 "try again".
    #[arg(long, env = "BITABIZ_HASH_QUEUE_WAIT", default_value = "3s", value_parser = parse_duration, global = true)]
    pub hash_queue_wait: Duration,

    /// A client must send a request's complete headers within this time, counted from when the
    /// server starts waiting for them (slow-header "slowloris" connections are closed).
    #[arg(long, env = "BITABIZ_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub header_read_timeout: Duration,

    /// A keep-alive connection with no request in progress is closed after this long.
    #[arg(long, env = "BITABIZ_IDLE_TIMEOUT", default_value = "5s", value_parser = parse_duration, global = true)]
    pub idle_timeout: Duration,

    /// A request not answered within this time is stopped and answered 503 (Microsoft Entra
    /// gives up after 60 s).
    #[arg(long, env = "BITABIZ_REQUEST_TIMEOUT", default_value = "50s", value_parser = parse_duration, global = true)]
    pub request_timeout: Duration,

    /// Client connections open at once; beyond it new connections are answered 503 and closed.
    /// Keep it under the process's open-file limit (`ulimit -n`).
    #[arg(
        long,
        env = "BITABIZ_MAX_CONNECTIONS",
        default_value_t = 768,
        global = true
    )]
    pub max_connections: usize,

    /// Connections one client address may hold open at once (trusted proxies are exempt).
    #[arg(
        long,
        env = "BITABIZ_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 128,
        global = true
    )]
    pub max_connections_per_address: usize,

    /// On SIGTERM or Ctrl-C: stop accepting, let requests in flight finish for at most this
    /// long, then exit.
    #[arg(long, env = "BITABIZ_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// Ask for the first-run setup code even when listening on a loopback address (as behind
    /// a reverse proxy on the same host). Without it, the code is asked for only when the
    /// server listens on a non-loopback address.
    #[arg(long, env = "BITABIZ_REQUIRE_SETUP_CODE", global = true)]
    pub require_setup_code: bool,

    /// How long a first-run setup code stays valid. One code is live at a time across every
    /// instance; a start after it expired issues a new one.
    #[arg(long, env = "BITABIZ_SETUP_CODE_LIFETIME", default_value = "24h", value_parser = parse_duration, global = true)]
    pub setup_code_lifetime: Duration,

    /// Lease on each background job (session and provisioning-log pruning): one instance runs
    /// a job at a time and renews its lease every third of this; when it stops, another
    /// instance takes over within this time.
    #[arg(long, env = "BITABIZ_JOB_LEASE", default_value = "60s", value_parser = parse_lease, global = true)]
    pub job_lease: Duration,

    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For,
    /// X-Forwarded-Proto and X-Request-Id are believed. From any other peer they are ignored.
    #[arg(
        long,
        env = "BITABIZ_TRUSTED_PROXY",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxy: Vec<IpRange>,

    /// Client addresses (or CIDR ranges, comma-separated) that may read /metrics.
    #[arg(
        long,
        env = "BITABIZ_METRICS_ALLOW",
        value_delimiter = ',',
        default_value = "127.0.0.1/8,::1",
        global = true
    )]
    pub metrics_allow: Vec<IpRange>,

    /// A bearer token that also opens /metrics, from any address (e.g. for a remote scraper).
    #[arg(
        long,
        env = "BITABIZ_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<Redacted>,
}

/// A secret from the command line or environment; never shown by `Debug`.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Redacted {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().len() < 16 {
            return Err("the metrics token must be at least 16 characters".into());
        }
        Ok(Redacted(s.trim().to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// `500ms`, `10s`, `2m`, `24h`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 500ms, 10s, 2m, 24h)"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("'{s}': use ms, s, m or h")),
    }
}

/// A background-job lease: at least one second (it is renewed every third of it).
fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("the job lease must be at least 1s".into());
    }
    Ok(d)
}

impl ServeArgs {
    /// The public base URL without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the web console and the SCIM endpoint (the default).
    Serve,
    /// Manage organisations (tenants).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Automatic user provisioning (Microsoft Entra ID over SCIM) of an organisation. Each
    /// change is written to the organisation's audit log with the actor `cli`.
    #[command(subcommand)]
    Provisioning(ProvisioningCommand),
    /// Issue a new first-run setup code, replacing the live one (which stops working), and
    /// print it. For when the code in the log is lost or expired; only before the first
    /// organisation exists.
    SetupCode,
}

#[derive(Subcommand, Debug)]
pub enum ProvisioningCommand {
    /// Turn automatic user provisioning on.
    Enable {
        /// The organisation's slug.
        #[arg(long)]
        tenant: String,
    },
    /// Turn automatic user provisioning off: SCIM requests are then refused with 403.
    Disable {
        /// The organisation's slug.
        #[arg(long)]
        tenant: String,
    },
    /// Issue a new SCIM bearer token (earlier ones keep working for the organisation's
    /// overlap) and print exactly two lines: SCIM_ENDPOINT=<url> and SCIM_TOKEN=<token>.
    RotateToken {
        /// The organisation's slug.
        #[arg(long)]
        tenant: String,
    },
    /// Issue a new OAuth 2.0 client secret (earlier ones keep working for the organisation's
    /// overlap) and print exactly three lines: TOKEN_ENDPOINT=<url>, CLIENT_ID=<id> and
    /// CLIENT_SECRET=<secret>.
    OauthClient {
        /// The organisation's slug.
        #[arg(long)]
        tenant: String,
        /// Years until the secret expires: 1, 2 or 3.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i64).range(1..=3))]
        years: i64,
    },
    /// Print the provisioning state, the live credentials with their expiry, the last SCIM
    /// request and a warning for any credential that expires within 30 days.
    Status {
        /// The organisation's slug.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Create an organisation and its first admin. The admin password is read from
    /// BITABIZ_ADMIN_PASSWORD or, when unset, from the first line of standard input.
    /// Prints the new organisation's slug.
    Create {
        /// The organisation's display name.
        #[arg(long)]
        name: String,
        /// The first admin's email (their sign-in name).
        #[arg(long)]
        admin_email: String,
        /// The first admin's display name (defaults to the email).
        #[arg(long)]
        admin_name: Option<String>,
    },
}
