//! `tessera`: the Tessera command. `tessera serve` runs the server; `tessera login` and
//! `tessera whoami` are its client side (`account.rs`).

mod account;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tessera_server::Application;
use tessera_server::clock::SystemClock;
use tessera_server::config::{Config, FileConfig, Overrides, redact_url};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera: Speckle-compatible authentication (personal access tokens, OAuth2 + PKCE).",
    long_about = None
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. With no options it serves http://127.0.0.1:3000 from an embedded SQLite
    /// database in ./tessera-data, created on first start.
    Serve(ServeArgs),
    /// Sign in to a server and keep the account where Speckle's SDKs find it (Accounts.db under
    /// SPECKLE_USERDATA_PATH or the usual folder; the first account is the default). Opens the
    /// sign-in page in your browser; with --device, or when no browser can be opened, prints a
    /// URL and a code to enter there from any browser, then waits. With --keychain the tokens go
    /// to the system keychain instead of Accounts.db (Speckle's own SDKs cannot use that account).
    ///
    /// Examples: tessera login --server http://localhost:3000
    ///           tessera login --server https://app.example.com --device --keychain
    Login(account::LoginArgs),
    /// Say who you are: with SPECKLE_TOKEN (and --server or SPECKLE_SERVER) first, else with the
    /// default local account. Exit codes: 0 ok, 3 not signed in or invalid token, 4 cannot
    /// connect, 5 refused.
    ///
    /// Example: SPECKLE_TOKEN=… tessera whoami --server http://localhost:3000
    Whoami(account::WhoamiArgs),
    /// Sign an account out at its server (its tokens stop working) and remove it here
    ///
    /// Example: tessera logout
    Logout(account::LogoutArgs),
    /// The local accounts Speckle's SDKs share
    ///
    /// Example: tessera accounts list
    #[command(subcommand)]
    Accounts(account::AccountsCommand),
    /// Your personal access tokens, with the default account or SPECKLE_TOKEN
    ///
    /// Example: tessera token create --name ci --scope streams:read --expires 30d
    Token {
        /// The server (with SPECKLE_TOKEN); without it SPECKLE_SERVER, else the default account's
        #[arg(long, global = true, value_name = "URL")]
        server: Option<String>,
        #[command(subcommand)]
        command: account::TokenCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:3000]
    #[arg(long, env = "TESSERA_BIND", value_name = "ADDR:PORT")]
    bind: Option<String>,
    /// Directory for the embedded SQLite database [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database to use instead of the embedded one: sqlite://FILE or postgres://USER@HOST/DB
    #[arg(long, env = "TESSERA_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// The server's canonical URL, used in redirects and serverInfo.canonicalUrl
    /// [default: http://<bind address>]
    #[arg(long, env = "TESSERA_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Rate limits on sign-in, registration and the token endpoints: on (the default) or off.
    /// Turn them off only for test kits that sign in hundreds of times
    #[arg(long, env = "TESSERA_RATE_LIMITS", value_name = "on|off")]
    rate_limits: Option<String>,
    /// Reverse proxies whose X-Forwarded-For header names the client: IP addresses or CIDR
    /// ranges, comma-separated (e.g. 10.0.0.0/8). Without it the header is ignored
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", value_name = "CIDRS")]
    trusted_proxies: Option<String>,
    /// The most connections served at once; more are answered 503 [default: 4096, or fewer if
    /// the file limit is lower]
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,
    /// How many days Security -> Activity keeps its lines; older ones are pruned [default: 90]
    #[arg(long, env = "TESSERA_ACTIVITY_RETENTION_DAYS", value_name = "DAYS")]
    activity_retention_days: Option<u32>,
    /// The file that seals the OpenID Connect signing keys stored in the database: 32 random
    /// bytes as hex, created (mode 0600) on first start. Give every replica the same file
    /// [default: <data dir>/tessera.key]
    #[arg(long, env = "TESSERA_KEY_FILE", value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Which requests get a line in the log: full (every one), sampled (one in a hundred, plus
    /// every failed or slow one; cheap enough for heavy traffic) or errors (failed and slow ones
    /// only) [default: sampled]
    #[arg(long, env = "TESSERA_ACCESS_LOG", value_name = "MODE")]
    access_log: Option<String>,
    /// A TOML file with any of the settings above, plus a [server] table
    /// (name, company, description, admin_contact, terms_of_service) and a [rate_limits] table
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path).map_err(anyhow::Error::msg)?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        bind: args.bind,
        data_dir: args.data_dir,
        database_url: args.database_url,
        public_url: args.public_url,
        rate_limits: args.rate_limits,
        trusted_proxies: args.trusted_proxies.map(|p| vec![p]),
        max_connections: args.max_connections,
        activity_retention_days: args.activity_retention_days,
        key_file: args.key_file,
        access_log: args.access_log,
    };
    let config = Config::resolve(overrides, file).map_err(anyhow::Error::msg)?;
    let database = match &config.database_url {
        Some(url) => redact_url(url),
        None => format!("embedded SQLite in {}", config.data_dir.display()),
    };
    let app = Application::build(config, Arc::new(SystemClock))
        .await
        .context("could not start the server")?;
    tracing::info!(database = %database, "store ready");
    app.state()
        .core
        .prepare_signing_keys(true)
        .await
        .context("could not prepare the ID token signing keys")?;
    println!("Tessera is serving {}", app.state().public_url);
    println!("  listening on {} (database: {database})", app.address());
    println!("  press Ctrl-C to stop");
    app.run_until(shutdown_signal()).await?;
    println!("Tessera stopped.");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Login(args) => return account::login(args).await,
        Command::Whoami(args) => return account::whoami(args).await,
        Command::Logout(args) => return account::logout(args).await,
        Command::Accounts(command) => return account::accounts(command).await,
        Command::Token { server, command } => {
            return account::token(command, server.as_deref()).await;
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
