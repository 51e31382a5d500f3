use anyhow::Context;
use clap::Parser;
use server::clock::{Clock, SystemClock};
use server::config::{Cli, Command, ProvisioningCommand, TenantCommand};
use server::store::{Db, tenants};
use server::{AppState, Settings, auth, domain};
use std::io::BufRead;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let db = Db::open(&cli.database_url)
        .await
        .context("opening the database")?;
    db.migrate()
        .await
        .context("migrating the database; the server will not start")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.serve, db, clock).await,
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
            let tenant = tenants::create_with_admin(
                &db,
                tenants::InstallGate::Operator,
                &name,
                &domain::slugify(&name),
                admin,
                clock.now_ms(),
            )
            .await?;
            server::store::audit::record(
                &db,
                server::store::audit::NewAuditEntry {
                    tenant_id: &tenant.id,
                    actor: "cli",
                    action: "organisation_created",
                    detail: &tenant.name,
                    client_addr: "",
                },
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
        | ProvisioningCommand::RotateToken { tenant } => tenant.clone(),
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
    }
    Ok(())
}

async fn serve(
    args: server::config::ServeArgs,
    db: Db,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let setup_code_required = !args.addr.ip().is_loopback();
    if setup_code_required && !tenants::install_completed(&db).await? {
        // Like Jenkins: whoever claims a fresh public install must be able to read its log.
        let code = auth::random_secret_hex()[..16].to_string();
        tenants::save_setup_code(&db, &auth::sha256_hex(&code), clock.now_ms()).await?;
        tracing::warn!("first-run setup code (needed on the setup page): {code}");
    }
    let provlog = server::provlog::ProvLog::start(db.clone(), clock.clone());
    let state = AppState {
        provlog: provlog.clone(),
        db,
        clock,
        settings: Arc::new(Settings {
            public_url: args.public_url(),
            setup_code_required,
        }),
        leptos: server::leptos_options(&args.site_root),
    };
    let pruner = state.clone();
    tokio::spawn(async move {
        loop {
            if let Err(e) = server::console::prune_sessions(&pruner).await {
                tracing::warn!(error = %e, "pruning expired sessions failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        }
    });
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    tracing::info!(
        "BitaBIZ listening on http://{} (public URL {}, database {})",
        args.addr,
        state.settings.public_url,
        state.db.kind()
    );
    axum::serve(
        listener,
        server::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Writes the provisioning log entries still queued.
    provlog.drain().await;
    Ok(())
}
