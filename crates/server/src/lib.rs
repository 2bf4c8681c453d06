//! The Tessera server as a library: the `tessera serve` command and the integration tests both
//! build an [`Application`] and run it.

pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod mail;
pub mod pages;

pub use tessera_core::{clock, domain, model, store};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::config::{Config, redact_url};
use crate::store::{Revoked, Store};
use tessera_core::Tessera;
use tessera_core::error::{Error, Result};
use tessera_store::SqlStore;

/// How often the housekeeping runs: remembered `lastUsed` times are written, and expired access
/// codes (kept after use until then, to catch replays) are forgotten.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);

/// Everything a door needs; shared behind an `Arc`. The core service is the only way to the
/// rules and the data; the rest is how the doors speak.
pub struct Server {
    pub core: Tessera,
    /// The canonical URL, without a trailing slash.
    pub public_url: String,
    pub schema: graphql::TesseraSchema,
    /// Query texts parsed before, and their documents.
    pub documents: graphql::Documents,
    /// How Tessera's own pages set their cookies.
    pub cookies: http::CookiePolicy,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The key CSRF tokens are derived from (shared by replicas through the store).
    pub csrf_key: Vec<u8>,
    /// Whether the public URL is https (then responses carry `Strict-Transport-Security`).
    pub https: bool,
    /// How many connections the store has handed out (tests show with it that a path does not
    /// touch the database).
    pub store_connections: Arc<std::sync::atomic::AtomicU64>,
    /// Which requests the request log writes.
    pub access_log: config::AccessLog,
}

pub type AppState = Arc<Server>;

impl Server {
    pub fn now(&self) -> crate::clock::Millis {
        self.core.now()
    }
}

/// A server bound to its address, with its store connected and migrated.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    address: SocketAddr,
    revocations: Option<mpsc::UnboundedReceiver<Revoked>>,
    max_connections: usize,
}

impl Application {
    /// Binds the address, connects to the store, applies migrations and seeds first-party apps.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Application> {
        let url = config.effective_database_url().map_err(Error::Startup)?;
        let store = SqlStore::connect(&url).await.map_err(|e| {
            let reason = match e {
                Error::Startup(reason) | Error::Internal(reason) => reason,
                other => other.to_string(),
            };
            Error::Startup(format!(
                "cannot open database {}: {reason}",
                redact_url(&url)
            ))
        })?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|e| Error::Startup(format!("cannot listen on {}: {e}", config.bind)))?;
        let address = listener
            .local_addr()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let public_url = config.public_url.clone().unwrap_or_else(|| {
            let host = if address.ip().is_unspecified() {
                "localhost".to_owned()
            } else {
                address.ip().to_string()
            };
            format!("http://{host}:{}", address.port())
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Listen before serving, so no revocation announced after start-up is missed.
        let revocations = store.revocations().await?;
        let store_connections = store.connection_counter();
        let key_file = config.load_key_file().map_err(Error::Startup)?;
        let mut core = Tessera::new(Arc::new(store), clock, config.rate_limits, cores)?
            .with_activity_retention(config.activity_retention_days)
            .with_server_defaults(config.server.clone())
            .with_key_file(key_file)
            .with_issuer(&public_url);
        if let Some(smtp) = &config.smtp {
            let mailer = mail::SmtpMailer::new(smtp, &public_url, &config.server.name)?;
            core = core.with_mailer(Arc::new(mailer));
            tracing::info!(host = %smtp.host, "invitations are emailed");
        }
        core.seed_default_apps(&public_url).await?;
        core.normalize_stored_emails().await?;
        core.prepare_signing_keys(false).await?;
        let csrf_key = core
            .server_secret("csrf", &domain::random_hex(64)?)
            .await?
            .into_bytes();
        let state = Arc::new(Server {
            core,
            store_connections,
            access_log: config.access_log,
            cookies: http::CookiePolicy::for_public_url(&public_url),
            trusted_proxies: config.trusted_proxies,
            csrf_key,
            https: public_url.starts_with("https://"),
            public_url,
            schema: graphql::schema(),
            documents: graphql::Documents::default(),
        });
        Ok(Application {
            state,
            listener,
            address,
            revocations,
            max_connections: http::serve::effective_max_connections(config.max_connections),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and writes the
    /// remembered `lastUsed` times.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let housekeeper = tokio::spawn({
            let state = state.clone();
            async move {
                let mut every = tokio::time::interval(HOUSEKEEPING_EVERY);
                loop {
                    every.tick().await;
                    if let Err(e) = state.core.housekeeping().await {
                        tracing::warn!(error = %e, "housekeeping failed");
                    }
                }
            }
        });
        let listener = self.revocations.map(|mut revoked| {
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(revoked) = revoked.recv().await {
                    state.core.heard(revoked);
                }
            })
        });
        http::serve::serve(
            self.listener,
            http::router(state.clone()),
            self.max_connections,
            shutdown,
        )
        .await;
        housekeeper.abort();
        if let Some(listener) = listener {
            listener.abort();
        }
        state.core.housekeeping().await
    }
}
