use anyhow::Context;
use clap::Parser;
use server::clock::{Clock, SystemClock};
use server::config::{Cli, Command, LogFormat, ProvisioningCommand, TenantCommand};
use server::store::{Db, PoolSize, tenants};
use server::{AppState, Settings, auth, domain};
use std::io::BufRead;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    server::process::tune_allocators();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }

    let pool = PoolSize {
        max: cli.db_max_connections,
        min: cli.db_min_connections,
        acquire_timeout: cli.db_acquire_timeout,
    };
    let db = Db::open_with(&cli.database_url, pool)
        .await
        .context("opening the database")?;
    db.migrate()
        .await
        .context("migrating the database; the server will not start")?;
    let indexed = server::directory::reindex_pending(&db)
        .await
        .context("writing the search index of older rows")?;
    if indexed > 0 {
        tracing::info!(
            rows = indexed,
            "wrote the search index of rows from before it existed"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.serve, db, clock).await,
        Command::SetupCode => {
            if tenants::install_completed(&db).await? {
                anyhow::bail!(
                    "this BitaBIZ is already set up: no setup code is needed (add organisations with `bitabiz tenant create`)"
                );
            }
            let code = new_setup_code();
            let now = clock.now_ms();
            let expires_at = now + cli.serve.setup_code_lifetime.as_millis() as i64;
            tenants::replace_setup_code(&db, &auth::sha256_hex(&code), now, expires_at).await?;
            eprintln!(
                "New first-run setup code, valid until {} (any earlier code no longer works):",
                server::clock::display_time(expires_at)
            );
            println!("{code}");
            Ok(())
        }
        Command::Provisioning(cmd) => {
            provisioning_cli(cmd, &db, clock.as_ref(), &cli.serve.public_url()).await
        }
        Command::Tenant(TenantCommand::Create {
            name,
            admin_email,
            admin_name,
        }) => {
            let name = domain::clean_name("--name", &name)?;
            let email = domain::clean_email(&admin_email)?;
            let admin_name =
                domain::clean_name("--admin-name", admin_name.as_deref().unwrap_or(&email))?;
            let password = match std::env::var("BITABIZ_ADMIN_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the admin password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            domain::check_new_password(&password, &password)?;
            let hash = auth::password::hash(password).await?;
            let admin = tenants::NewAdmin {
                name: &admin_name,
                email: &email,
                password_hash: &hash,
                source: "cli",
            };
            let who = server::provisioning::Actor {
                name: "cli",
                client_addr: "",
            };
            let tenant = server::organisations::create(
                &db,
                tenants::InstallGate::Operator,
                &name,
                admin,
                &who,
                clock.now_ms(),
            )
            .await?;
            println!("{}", tenant.slug);
            Ok(())
        }
    }
}

async fn provisioning_cli(
    cmd: ProvisioningCommand,
    db: &Db,
    clock: &dyn Clock,
    public_url: &str,
) -> anyhow::Result<()> {
    use server::provisioning::{self, Actor};
    let slug = match &cmd {
        ProvisioningCommand::Enable { tenant }
        | ProvisioningCommand::Disable { tenant }
        | ProvisioningCommand::RotateToken { tenant }
        | ProvisioningCommand::OauthClient { tenant, .. }
        | ProvisioningCommand::Status { tenant } => tenant.clone(),
    };
    let tenant = tenants::by_slug(db, &slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no organisation with the slug '{slug}'"))?;
    let cli = Actor {
        name: "cli",
        client_addr: "",
    };
    let now = clock.now_ms();
    match cmd {
        ProvisioningCommand::Enable { .. } => {
            provisioning::set_enabled(db, &tenant.id, true, &cli, now).await?;
            eprintln!(
                "Automatic user provisioning is enabled for {}.",
                tenant.slug
            );
        }
        ProvisioningCommand::Disable { .. } => {
            provisioning::set_enabled(db, &tenant.id, false, &cli, now).await?;
            eprintln!(
                "Automatic user provisioning is disabled for {}.",
                tenant.slug
            );
        }
        ProvisioningCommand::RotateToken { .. } => {
            let issued = provisioning::issue_token(db, &tenant.id, &cli, now).await?;
            println!(
                "SCIM_ENDPOINT={}",
                provisioning::endpoint_url(public_url, &tenant.slug)
            );
            println!("SCIM_TOKEN={}", issued.secret);
        }
        ProvisioningCommand::OauthClient { years, .. } => {
            let years = server::oauth::SecretYears::new(years)?;
            let lines =
                server::oauth::cli::oauth_client(db, &tenant, years, public_url, now).await?;
            for line in lines {
                println!("{line}");
            }
        }
        ProvisioningCommand::Status { .. } => {
            for line in server::oauth::cli::status(db, &tenant, public_url, now).await? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

async fn serve(
    args: server::config::ServeArgs,
    db: Db,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let setup_code_required = args.require_setup_code || !args.addr.ip().is_loopback();
    if setup_code_required && !tenants::install_completed(&db).await? {
        // Like Jenkins: whoever claims a fresh public install must be able to read its log.
        // One code is live at a time, whichever instance issued it.
        let code = new_setup_code();
        let now = clock.now_ms();
        let expires_at = now + args.setup_code_lifetime.as_millis() as i64;
        match tenants::issue_setup_code(&db, &auth::sha256_hex(&code), now, expires_at).await? {
            tenants::SetupCodeIssue::Issued => tracing::warn!(
                "first-run setup code (needed on the setup page, valid until {}): {code}",
                server::clock::display_time(expires_at)
            ),
            tenants::SetupCodeIssue::AlreadyLive { expires_at } => tracing::warn!(
                "a first-run setup code was already issued by another instance or an earlier \
                 start and is valid until {}: find it in that log, or run `bitabiz setup-code` \
                 to replace it with a new one",
                server::clock::display_time(expires_at)
            ),
        }
    }
    server::scim::limits::configure(server::scim::limits::ScimLimits {
        max_string_chars: args.scim_max_string_length,
        max_values: args.scim_max_values,
        max_attributes: args.scim_max_attributes,
    });
    let settings = Settings {
        public_url: args.public_url(),
        setup_code_required,
        trusted_proxies: args.trusted_proxy.clone(),
        metrics_allow: args.metrics_allow.clone(),
        metrics_token_hash: args.metrics_token.as_ref().map(|t| auth::sha256_hex(&t.0)),
        request_timeout: args.request_timeout,
        hash_slots: args.max_concurrent_hashes,
        hash_wait: args.hash_queue_wait,
    };
    let state = AppState::new(db, clock, settings, server::leptos_options(&args.site_root));
    let provlog = state.provlog.clone();
    let jobs = server::jobs::Jobs::start(
        state.db.clone(),
        state.clock.clone(),
        state.metrics.clone(),
        args.job_lease,
        server::jobs::server_jobs(&state),
    );
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    tracing::info!(
        "BitaBIZ listening on http://{} (public URL {}, database {})",
        args.addr,
        state.settings.public_url,
        state.db.kind()
    );
    let limits = server::serve::Limits {
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        shutdown_grace: args.shutdown_grace,
        trusted_proxies: args.trusted_proxy.clone(),
    };
    let metrics = state.metrics.clone();
    server::serve::run(
        listener,
        server::router(state),
        metrics,
        limits,
        server::serve::shutdown_signal(),
    )
    .await?;
    // Another instance takes over the background jobs at once.
    jobs.stop().await;
    // Writes the provisioning log entries still queued.
    provlog.drain().await;
    tracing::info!("BitaBIZ stopped");
    Ok(())
}

/// A first-run setup code: 16 hex characters (64 bits), shown once, stored as its SHA-256.
fn new_setup_code() -> String {
    auth::random_secret_hex()[..16].to_string()
}
