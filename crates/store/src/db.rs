//! Running a built statement on whichever backend the store holds. Statements are built once with
//! sea-query and rendered per backend (`?` placeholders for SQLite, `$n` for PostgreSQL), then run
//! through sqlx's native driver for that backend, so rows decode with each driver's own types.

use std::sync::Arc;

use sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
use sea_query_binder::SqlxBinder;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};
use tessera_core::error::{Error, Result};

use crate::logsync::LogSync;

/// A row type both backends can decode.
pub trait Rows: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> Rows for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A driver error in the core's terms: a busy database is worth retrying (503); anything else is
/// the server's fault, described in the log only.
pub fn fault(e: sqlx::Error) -> Error {
    let busy = match &e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes; PostgreSQL's
            // lock_not_available (55P03), too_many_connections (53300) and cannot_connect_now
            // (57P03).
            let code = db.code().unwrap_or_default();
            let sqlite_busy = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite_busy || matches!(code.as_ref(), "55P03" | "53300" | "57P03")
        }
        _ => false,
    };
    if busy {
        Error::Busy(e.to_string())
    } else {
        Error::Store(e.to_string())
    }
}

/// Whether an error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

/// The connections of a store. SQLite has one writer and a pool of read-only readers
/// (docs/ARCHITECTURE.md, "Storage"): writes queue for the one connection instead of meeting
/// `SQLITE_BUSY` and the busy handler's sleeps, and reads run beside them (WAL). A select takes
/// a reader; `run`, `try_run`, `begin` and a write with `RETURNING` take the writer, and return
/// only once the write is on disk (`log`, the group commit of an SQLite file; an in-memory
/// database has none).
#[derive(Clone)]
pub enum Pool {
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        log: Option<Arc<LogSync>>,
    },
    Postgres(PgPool),
}

/// One connection of either backend, borrowed from the pool or from a transaction.
pub enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// Renders `$stmt` for the connection's backend and evaluates `$body` with the executor `$e`,
/// the SQL text `$sql` and its values `$values`.
macro_rules! on_backend {
    ($conn:expr, $stmt:expr, |$e:ident, $sql:ident, $values:ident| $body:expr) => {
        match $conn {
            Conn::Sqlite($e) => {
                let ($sql, $values) = $stmt.build_sqlx(SqliteQueryBuilder);
                $body
            }
            Conn::Postgres($e) => {
                let ($sql, $values) = $stmt.build_sqlx(PostgresQueryBuilder);
                $body
            }
        }
    };
}

impl Conn<'_> {
    pub async fn all<R: Rows>(self, stmt: &impl SqlxBinder) -> Result<Vec<R>> {
        on_backend!(self, stmt, |e, sql, values| {
            sqlx::query_as_with(&sql, values).fetch_all(&mut *e).await
        })
        .map_err(fault)
    }

    pub async fn optional<R: Rows>(self, stmt: &impl SqlxBinder) -> Result<Option<R>> {
        on_backend!(self, stmt, |e, sql, values| {
            sqlx::query_as_with(&sql, values)
                .fetch_optional(&mut *e)
                .await
        })
        .map_err(fault)
    }

    pub async fn one<R: Rows>(self, stmt: &impl SqlxBinder) -> Result<R> {
        on_backend!(self, stmt, |e, sql, values| {
            sqlx::query_as_with(&sql, values).fetch_one(&mut *e).await
        })
        .map_err(fault)
    }

    /// Runs a statement and returns how many rows it changed.
    pub async fn run(self, stmt: &impl SqlxBinder) -> Result<u64> {
        self.try_run(stmt).await.map_err(fault)
    }

    /// [`Conn::run`], handing back the driver's error for the caller to classify.
    pub async fn try_run(self, stmt: &impl SqlxBinder) -> Result<u64, sqlx::Error> {
        on_backend!(self, stmt, |e, sql, values| {
            sqlx::query_with(&sql, values)
                .execute(&mut *e)
                .await
                .map(|done| done.rows_affected())
        })
    }
}

/// A statement, and whether it writes: the pool picks the connection by it, so a write with
/// `RETURNING` run through `one` still goes to the writer.
pub trait Statement: SqlxBinder {
    const WRITES: bool;
}

impl Statement for sea_query::SelectStatement {
    const WRITES: bool = false;
}

impl Statement for sea_query::InsertStatement {
    const WRITES: bool = true;
}

impl Statement for sea_query::UpdateStatement {
    const WRITES: bool = true;
}

impl Statement for sea_query::DeleteStatement {
    const WRITES: bool = true;
}

/// A connection checked out of the pool.
pub enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// A transaction of either backend; dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>, Option<Arc<LogSync>>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Waits until what the writer committed is on disk, where an SQLite file's log needs it.
async fn durable(log: Option<&LogSync>) -> Result<()> {
    match log {
        Some(log) => log.durable().await,
        None => Ok(()),
    }
}

/// A writing statement, to run with others in [`Tx::run_all`].
pub enum Write {
    Insert(sea_query::InsertStatement),
    Update(sea_query::UpdateStatement),
    Delete(sea_query::DeleteStatement),
}

impl From<sea_query::InsertStatement> for Write {
    fn from(s: sea_query::InsertStatement) -> Write {
        Write::Insert(s)
    }
}

impl From<sea_query::UpdateStatement> for Write {
    fn from(s: sea_query::UpdateStatement) -> Write {
        Write::Update(s)
    }
}

impl From<sea_query::DeleteStatement> for Write {
    fn from(s: sea_query::DeleteStatement) -> Write {
        Write::Delete(s)
    }
}

impl Write {
    fn build<B: sea_query::QueryBuilder>(&self, builder: B) -> (String, sea_query::Values) {
        match self {
            Write::Insert(s) => s.build(builder),
            Write::Update(s) => s.build(builder),
            Write::Delete(s) => s.build(builder),
        }
    }
}

impl Tx {
    /// Runs `writes` in order and returns how many rows each changed. SQLite gets them as one
    /// text with their values in order (`?` placeholders are numbered across statements), so the
    /// writer connection's thread runs them all in one trip instead of waiting for this task
    /// between statements (docs/ARCHITECTURE.md, "Storage"); PostgreSQL runs them one by one.
    pub async fn run_all(&mut self, writes: &[Write]) -> Result<Vec<u64>> {
        let mut changed = Vec::with_capacity(writes.len());
        match self {
            Tx::Sqlite(t, _) => {
                use futures_util::TryStreamExt;
                use sqlx::Executor;
                let (mut sql, mut values) = (String::new(), Vec::new());
                for write in writes {
                    let (text, vals) = write.build(SqliteQueryBuilder);
                    sql.push_str(&text);
                    sql.push_str(";\n");
                    values.extend(vals.0);
                }
                let values = sea_query_binder::SqlxValues(sea_query::Values(values));
                let mut results = (&mut **t).fetch_many(sqlx::query_with(&sql, values));
                while let Some(step) = results.try_next().await.map_err(fault)? {
                    if let sqlx::Either::Left(done) = step {
                        changed.push(done.rows_affected());
                    }
                }
            }
            Tx::Postgres(t) => {
                for write in writes {
                    let (sql, values) = write.build(PostgresQueryBuilder);
                    let values = sea_query_binder::SqlxValues(values);
                    let done = sqlx::query_with(&sql, values)
                        .execute(&mut **t)
                        .await
                        .map_err(fault)?;
                    changed.push(done.rows_affected());
                }
            }
        }
        if changed.len() != writes.len() {
            return Err(Error::Store(format!(
                "{} statements ran, {} answered",
                writes.len(),
                changed.len()
            )));
        }
        Ok(changed)
    }

    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t, _) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }

    /// Commits, and returns once the commit is on disk.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t, log) => {
                t.commit().await.map_err(fault)?;
                durable(log.as_deref()).await
            }
            Tx::Postgres(t) => t.commit().await.map_err(fault),
        }
    }
}

impl Pool {
    /// A connection for reads.
    pub async fn acquire(&self) -> Result<Pooled> {
        Ok(match self {
            Pool::Sqlite { read, .. } => Pooled::Sqlite(read.acquire().await.map_err(fault)?),
            Pool::Postgres(p) => Pooled::Postgres(p.acquire().await.map_err(fault)?),
        })
    }

    /// The connection for writes (a statement with `RETURNING` too). Private: whoever writes
    /// through it must wait for [`Pool::durable`] before answering.
    async fn writer(&self) -> Result<Pooled> {
        Ok(match self {
            Pool::Sqlite { write, .. } => Pooled::Sqlite(write.acquire().await.map_err(fault)?),
            Pool::Postgres(p) => Pooled::Postgres(p.acquire().await.map_err(fault)?),
        })
    }

    /// A transaction, on the writer.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite { write, log, .. } => {
                Tx::Sqlite(write.begin().await.map_err(fault)?, log.clone())
            }
            Pool::Postgres(p) => Tx::Postgres(p.begin().await.map_err(fault)?),
        })
    }

    /// The reader for a select, the writer for anything else.
    async fn for_statement<S: Statement>(&self) -> Result<Pooled> {
        if S::WRITES {
            self.writer().await
        } else {
            self.acquire().await
        }
    }

    /// Returns once every write committed so far is on disk (the SQLite file's group commit;
    /// PostgreSQL and an in-memory database are there when the commit returns).
    pub async fn durable(&self) -> Result<()> {
        match self {
            Pool::Sqlite { log, .. } => durable(log.as_deref()).await,
            Pool::Postgres(_) => Ok(()),
        }
    }

    /// How many writes the SQLite file's group commit has acknowledged; `None` where the commit
    /// itself is durable (PostgreSQL) or nothing is on disk (an in-memory database).
    pub fn synced_writes(&self) -> Option<u64> {
        match self {
            Pool::Sqlite { log: Some(log), .. } => Some(log.synced()),
            _ => None,
        }
    }

    /// `outcome` of a statement of type `S`, once what it wrote is on disk.
    async fn settled<T, S: Statement>(&self, outcome: Result<T>) -> Result<T> {
        let value = outcome?;
        if S::WRITES {
            self.durable().await?;
        }
        Ok(value)
    }

    pub async fn all<R: Rows, S: Statement>(&self, stmt: &S) -> Result<Vec<R>> {
        let rows = self.for_statement::<S>().await?.conn().all(stmt).await;
        self.settled::<_, S>(rows).await
    }

    pub async fn optional<R: Rows, S: Statement>(&self, stmt: &S) -> Result<Option<R>> {
        let row = self.for_statement::<S>().await?.conn().optional(stmt).await;
        self.settled::<_, S>(row).await
    }

    pub async fn one<R: Rows, S: Statement>(&self, stmt: &S) -> Result<R> {
        let row = self.for_statement::<S>().await?.conn().one(stmt).await;
        self.settled::<_, S>(row).await
    }

    pub async fn run(&self, stmt: &impl SqlxBinder) -> Result<u64> {
        let changed = self.writer().await?.conn().run(stmt).await?;
        self.durable().await?;
        Ok(changed)
    }

    pub async fn try_run(&self, stmt: &impl SqlxBinder) -> Result<Result<u64, sqlx::Error>> {
        let outcome = self.writer().await?.conn().try_run(stmt).await;
        if outcome.is_ok() {
            self.durable().await?;
        }
        Ok(outcome)
    }
}

/// Converts every row of a listing.
pub fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    R: TryInto<T, Error = Error>,
{
    rows.into_iter().map(TryInto::try_into).collect()
}
