//! Command line and environment. Every option has an env fallback and a default that makes a
//! bare `bitabiz` start work.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;

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
