//! Opening a database: the SQLite file lock (one server per file), a probe connection that reports
//! a bad file, a wrong password or an unreachable server plainly and at once, the pools, and the
//! migrations of the backend.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tessera_core::error::{Error, Result};

use crate::db::{Pool, fault};
use crate::logsync::LogSync;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long connecting to the database may take at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The file an `sqlite:` URL names, unless it is an in-memory database.
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// Locks `<file>.lock` for as long as the returned handle lives, recording this process's id in
/// it; refuses when another process holds it.
fn lock_sqlite_file(file: &std::path::Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let lock_path = {
        let mut name = file.as_os_str().to_owned();
        name.push(".lock");
        std::path::PathBuf::from(name)
    };
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| Error::Startup(format!("cannot create {}: {e}", lock_path.display())))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("process {holder}")
            };
            return Err(Error::Startup(format!(
                "{} is in use by another Tessera server ({who}); stop it first. One SQLite file \
                 serves one server: to run several replicas, give them all one PostgreSQL \
                 database (--database-url postgres://…)",
                file.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::Startup(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = write!(lock, "{}", std::process::id());
    let _ = lock.flush();
    Ok(lock)
}

/// What went wrong opening the database, in one line with a hint.
fn describe_open_error(e: &sqlx::Error) -> String {
    if let sqlx::Error::Database(db) = e {
        let code = db.code().unwrap_or_default().into_owned();
        let hint = match code.parse::<u32>().map(|c| c & 0xff) {
            Ok(26) => Some("the file is not a SQLite database (damaged, or not Tessera's)"),
            Ok(11) => Some("the database file is damaged"),
            Ok(5 | 6) => Some("the database is locked by another process"),
            Ok(14) => Some(
                "the file cannot be opened (does its directory exist, may this user write it?)",
            ),
            Ok(8) => Some("the database is read-only for this user"),
            _ => match code.as_str() {
                "28P01" | "28000" => Some("PostgreSQL refused the user name or password"),
                "3D000" => Some("that PostgreSQL database does not exist"),
                _ => None,
            },
        };
        return match hint {
            Some(hint) => format!("{hint} ({})", db.message()),
            None => db.message().to_owned(),
        };
    }
    match e {
        sqlx::Error::Io(io) => format!("cannot reach the database server: {io}"),
        sqlx::Error::Tls(tls) => format!("TLS to the database server failed: {tls}"),
        other => other.to_string(),
    }
}

/// An open, migrated database.
pub struct Opened {
    pub pool: Pool,
    pub lock: Option<std::fs::File>,
    pub connection_uses: Arc<AtomicU64>,
}

/// How many connections each backend's pool keeps (SQLite: readers, beside its one writer).
const SQLITE_READERS: u32 = 8;
const POSTGRES_CONNECTIONS: u32 = 16;
/// How long a request waits for a free connection before it is told the server is busy.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `probe` within [`CONNECT_TIMEOUT`], turning its failure into a startup error.
async fn probed(probe: impl Future<Output = Result<(), sqlx::Error>>) -> Result<()> {
    match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Startup(describe_open_error(&e))),
        Err(_) => Err(Error::Startup(format!(
            "the database did not answer within {} seconds",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn migration_failed(e: sqlx::migrate::MigrateError) -> Error {
    Error::Startup(format!("migrations failed: {e}"))
}

/// Opens `sqlite:…` (locking the file) or `postgres:…`, and applies pending migrations.
pub async fn open(url: &str) -> Result<Opened> {
    let connection_uses = Arc::new(AtomicU64::new(0));
    let uses = connection_uses.clone();
    let count = move || {
        uses.fetch_add(1, Ordering::Relaxed);
    };
    if url.starts_with("sqlite:") {
        // WAL lets readers run beside the one writer. An acknowledged write (a revocation above
        // all) survives a power loss too, not only a crash of the process: SQLite commits into
        // its log (synchronous = NORMAL) and the pool answers once a sync of the log that began
        // after the commit is done, one sync for every writer waiting (`LogSync`,
        // docs/ARCHITECTURE.md, "Storage").
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Startup(describe_open_error(&e)))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        // None: an in-memory database.
        let file = sqlite_file(url);
        let lock = match &file {
            Some(file) => Some(lock_sqlite_file(file)?),
            None => None,
        };
        probed(async {
            let mut conn = options.connect().await?;
            sqlx::query("SELECT count(*) FROM sqlite_master")
                .execute(&mut conn)
                .await?;
            conn.close().await
        })
        .await?;
        let counted = |max: u32, options: SqliteConnectOptions| {
            let count = count.clone();
            SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // A connection to a local file does not go stale: sqlx's ping before every
                // acquire would only add a round trip to the connection's thread.
                .test_before_acquire(false)
                .before_acquire(move |_conn, _meta| {
                    count();
                    Box::pin(async { Ok(true) })
                })
                .connect_with(options)
        };
        let write = counted(
            if file.is_none() { SQLITE_READERS } else { 1 },
            options.clone(),
        )
        .await
        .map_err(fault)?;
        SQLITE_MIGRATIONS
            .run(&write)
            .await
            .map_err(migration_failed)?;
        // An in-memory database lives in its connections: there, one pool does both.
        let (read, log) = match &file {
            None => (write.clone(), None),
            Some(file) => {
                let log = LogSync::for_database(file).map_err(|e| {
                    Error::Startup(format!("cannot start the SQLite log syncer: {e}"))
                })?;
                let read = counted(SQLITE_READERS, options.read_only(true))
                    .await
                    .map_err(fault)?;
                (read, Some(Arc::new(log)))
            }
        };
        let pool = Pool::Sqlite { read, write, log };
        // The migrations' writes, and the log file's name in its folder.
        pool.durable().await?;
        Ok(Opened {
            pool,
            lock,
            connection_uses,
        })
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| Error::Startup(describe_open_error(&e)))?;
        probed(async {
            let mut conn = options.connect().await?;
            sqlx::query("SELECT 1").execute(&mut conn).await?;
            conn.close().await
        })
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .before_acquire(move |_conn, _meta| {
                count();
                Box::pin(async { Ok(true) })
            })
            .connect_with(options)
            .await
            .map_err(fault)?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(migration_failed)?;
        Ok(Opened {
            pool: Pool::Postgres(pool),
            lock: None,
            connection_uses,
        })
    } else {
        Err(Error::Startup(
            "the database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}
