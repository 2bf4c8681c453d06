//! The Tessera server as a library: the `tessera serve` command and the integration tests both
//! build an [`Application`] and run it.

pub mod config;
pub mod error;
pub mod graphql;
pub mod http;
pub mod pages;

pub use tessera_core::{clock, domain, store};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::clock::{Clock, Millis};
use crate::config::{Config, ServerDetails, redact_url};
use crate::domain::auth::TokenCache;
use crate::domain::limits::Limiter;
use crate::domain::passwords::Passwords;
use crate::store::{Revoked, Store};
use tessera_core::error::{Error, Result};
use tessera_store::SqlStore;

/// How long a cached token check is trusted before the store is asked again. Revocation on this
/// node is immediate; this bounds how long another node's revocation can take to arrive.
pub const TOKEN_CACHE_TTL: Millis = 60_000;
pub const TOKEN_CACHE_CAPACITY: usize = 100_000;
/// How often the housekeeping runs: remembered `lastUsed` times are written, and expired access
/// codes (kept after use until then, to catch replays) are forgotten.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(10);

/// Everything a request handler needs; shared behind an `Arc`.
pub struct Tessera {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenCache,
    pub passwords: Passwords,
    /// The canonical URL, without a trailing slash.
    pub public_url: String,
    pub server: ServerDetails,
    pub schema: graphql::TesseraSchema,
    /// How Tessera's own pages set their cookies.
    pub cookies: http::CookiePolicy,
    /// The rate limits.
    pub limits: Limiter,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The key CSRF tokens are derived from (shared by replicas through the store).
    pub csrf_key: Vec<u8>,
    /// Whether the public URL is https (then responses carry `Strict-Transport-Security`).
    pub https: bool,
    /// How many connections the store has handed out (tests show with it that a path does not
    /// touch the database).
    pub store_connections: Arc<std::sync::atomic::AtomicU64>,
}

pub type AppState = Arc<Tessera>;

impl Tessera {
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Writes remembered `lastUsed` times and forgets expired access codes.
    pub async fn housekeeping(&self) -> Result<()> {
        self.tokens.flush_uses(self.store.as_ref()).await?;
        self.limits.forget_idle();
        let now = self.now();
        self.store
            .purge_sign_in_failures(now.saturating_sub(domain::limits::FAILURE_WINDOW))
            .await?;
        self.store.purge_expired_codes(now).await
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
        domain::apps::seed_default_apps(&store, &public_url, clock.now()).await?;
        domain::users::normalize_stored_emails(&store, clock.now()).await?;
        let csrf_key = store
            .server_secret("csrf", &domain::random_hex(64)?)
            .await?
            .into_bytes();
        // Listen before serving, so no revocation announced after start-up is missed.
        let revocations = store.revocations().await?;
        let store_connections = store.connection_counter();
        let state = Arc::new(Tessera {
            store_connections,
            store: Arc::new(store),
            clock,
            tokens: TokenCache::new(TOKEN_CACHE_CAPACITY, TOKEN_CACHE_TTL),
            passwords: Passwords::new(cores)?,
            cookies: http::CookiePolicy::for_public_url(&public_url),
            limits: Limiter::new(config.rate_limits),
            trusted_proxies: config.trusted_proxies,
            csrf_key,
            https: public_url.starts_with("https://"),
            public_url,
            server: config.server,
            schema: graphql::schema(),
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
                    if let Err(e) = state.housekeeping().await {
                        tracing::warn!(error = %e, "housekeeping failed");
                    }
                }
            }
        });
        let listener = self.revocations.map(|mut revoked| {
            let state = state.clone();
            tokio::spawn(async move {
                while let Some(revoked) = revoked.recv().await {
                    match revoked {
                        Revoked::Token(id) => state.tokens.forget([id.as_str()]),
                        Revoked::Unknown => state.tokens.forget_all(),
                    }
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
        state.housekeeping().await
    }
}
