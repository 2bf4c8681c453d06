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
/// a reader; `run`, `try_run`, `batch`, `begin` and a write with `RETURNING` take the writer,
/// and return only once the write is on disk (`log`, the group commit of an SQLite file; an
/// in-memory database has none).
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

/// A writing statement, to run with others in [`Pool::batch`] or [`Tx::run_all`].
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

/// Runs `writes` on an SQLite connection as one text with their values in order (`?`
/// placeholders are numbered across statements), so the connection's thread runs them all in one
/// trip instead of waiting for this task between statements (docs/ARCHITECTURE.md, "Storage");
/// with `atomically`, the text begins a transaction and commits it too. How many rows each write
/// changed.
async fn sqlite_writes(
    conn: &mut SqliteConnection,
    writes: &[Write],
    atomically: bool,
) -> Result<Vec<u64>> {
    use futures_util::TryStreamExt;
    use sqlx::Executor;
    let (mut sql, mut values) = (String::new(), Vec::new());
    if atomically {
        sql.push_str("BEGIN IMMEDIATE;\n");
    }
    for write in writes {
        let (text, vals) = write.build(SqliteQueryBuilder);
        sql.push_str(&text);
        sql.push_str(";\n");
        values.extend(vals.0);
    }
    if atomically {
        sql.push_str("COMMIT;\n");
    }
    let values = sea_query_binder::SqlxValues(sea_query::Values(values));
    let mut changed = Vec::with_capacity(writes.len() + 2);
    let mut results = conn.fetch_many(sqlx::query_with(&sql, values));
    while let Some(step) = results.try_next().await.map_err(fault)? {
        if let sqlx::Either::Left(done) = step {
            changed.push(done.rows_affected());
        }
    }
    if atomically {
        // BEGIN and COMMIT answer too; without COMMIT's answer the batch did not commit.
        if changed.len() != writes.len() + 2 {
            return Err(Error::Store(format!(
                "a batch of {} statements got {} answers, not one each and BEGIN's and COMMIT's",
                writes.len(),
                changed.len()
            )));
        }
        changed.pop();
        changed.remove(0);
    }
    answered(writes, changed)
}

/// Runs `writes` one by one on a PostgreSQL connection; how many rows each changed.
async fn postgres_writes(conn: &mut PgConnection, writes: &[Write]) -> Result<Vec<u64>> {
    let mut changed = Vec::with_capacity(writes.len());
    for write in writes {
        let (sql, values) = write.build(PostgresQueryBuilder);
        let values = sea_query_binder::SqlxValues(values);
        let done = sqlx::query_with(&sql, values)
            .execute(&mut *conn)
            .await
            .map_err(fault)?;
        changed.push(done.rows_affected());
    }
    answered(writes, changed)
}

/// `changed`, once it has one count per write.
fn answered(writes: &[Write], changed: Vec<u64>) -> Result<Vec<u64>> {
    if changed.len() != writes.len() {
        return Err(Error::Store(format!(
            "{} statements ran, {} answered",
            writes.len(),
            changed.len()
        )));
    }
    Ok(changed)
}

/// The SQLite writer while a batch's own transaction may be open on it. Unless the batch got to
/// its COMMIT, the connection is closed instead of going back to the pool, and closing rolls back
/// what it began: whether a statement failed or the task was dropped while SQLite ran the text.
/// The pool opens a fresh writer once this one is closed.
struct Unfinished {
    conn: PoolConnection<Sqlite>,
    committed: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

impl Tx {
    /// Runs `writes` in order in this transaction and returns how many rows each changed; on
    /// SQLite in one trip to the writer's thread (`sqlite_writes`).
    pub async fn run_all(&mut self, writes: &[Write]) -> Result<Vec<u64>> {
        match self {
            Tx::Sqlite(t, _) => sqlite_writes(t, writes, false).await,
            Tx::Postgres(t) => postgres_writes(t, writes).await,
        }
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

    /// Runs `writes` in order as one transaction, all or none, and returns how many rows each
    /// changed once the commit is on disk. On SQLite the writer gets `BEGIN IMMEDIATE`, the
    /// statements and `COMMIT` in one trip, so the one writer is held for that trip (and sqlx's
    /// ping when it goes back to the pool), not while this task waits to be scheduled between
    /// statements (docs/ARCHITECTURE.md, "Storage"). A batch cannot decide between its statements: a write
    /// that depends on an earlier one says so in its own `WHERE`. PostgreSQL runs them one by one
    /// in a transaction.
    pub async fn batch(&self, writes: &[Write]) -> Result<Vec<u64>> {
        match self {
            Pool::Sqlite { write, log, .. } => {
                let mut writer = Unfinished {
                    conn: write.acquire().await.map_err(fault)?,
                    committed: false,
                };
                let changed = sqlite_writes(&mut writer.conn, writes, true).await?;
                writer.committed = true;
                drop(writer);
                durable(log.as_deref()).await?;
                Ok(changed)
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await.map_err(fault)?;
                let changed = postgres_writes(&mut tx, writes).await?;
                tx.commit().await.map_err(fault)?;
                Ok(changed)
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sea_query::{Alias, Expr, Query};

    /// A migrated SQLite file with a table of numbers.
    async fn numbers() -> (Pool, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = crate::open::open(&url).await.unwrap().pool;
        let Pool::Sqlite { write, .. } = &pool else {
            unreachable!("an SQLite URL")
        };
        sqlx::query("CREATE TABLE numbers (n INTEGER PRIMARY KEY)")
            .execute(write)
            .await
            .unwrap();
        (pool, dir)
    }

    fn insert(n: i64) -> Write {
        Query::insert()
            .into_table(Alias::new("numbers"))
            .columns([Alias::new("n")])
            .values_panic([n.into()])
            .to_owned()
            .into()
    }

    async fn count(pool: &Pool) -> i64 {
        let select = Query::select()
            .expr(Expr::col(Alias::new("n")).count())
            .from(Alias::new("numbers"))
            .to_owned();
        let (n,): (i64,) = pool.one(&select).await.unwrap();
        n
    }

    #[tokio::test]
    async fn a_batch_that_fails_stores_nothing_and_the_writer_goes_on() {
        let (pool, _dir) = numbers().await;
        let failed = pool.batch(&[insert(1), insert(2), insert(1)]).await;
        assert!(failed.is_err(), "the third insert repeats a key");
        assert_eq!(count(&pool).await, 0, "the first two were rolled back");
        assert_eq!(pool.batch(&[insert(3), insert(4)]).await.unwrap(), [1, 1]);
        assert_eq!(count(&pool).await, 2);
    }

    #[tokio::test]
    async fn a_batch_dropped_while_it_runs_is_all_or_nothing_and_the_writer_goes_on() {
        let (pool, _dir) = numbers().await;
        let many: Vec<Write> = (0..20_000).map(insert).collect();
        // Long enough for SQLite to be in the middle of the text when the caller gives up.
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(2), pool.batch(&many));
        assert!(gave_up.await.is_err(), "the batch outlasted the timeout");
        pool.batch(&[insert(-1)])
            .await
            .expect("the next batch finds no transaction left open");
        let n = count(&pool).await;
        assert!(n == 1 || n == 20_001, "all or nothing, not {n}");
    }
}
