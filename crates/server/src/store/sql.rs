//! The [`Store`] over SQLite and PostgreSQL through sqlx's `Any` driver (see the module docs of
//! `store` for why one implementation serves both).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use tessera_proto::{ScopeSet, ServerRole, StreamRole, TokenDigest};

use super::*;
use crate::error::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const APP_COLUMNS: &str = "id, secret, name, description, terms_and_conditions_link, logo, \
     trust_by_default, public, redirect_url, scopes, author_id, created_at";

const USER_COLUMNS: &str =
    "id, suuid, email, name, bio, company, avatar, verified, profiles, role, created_at";

/// The PostgreSQL channel revocations are announced on.
const REVOCATION_CHANNEL: &str = "tessera_token_revoked";
/// NOTIFY payloads must stay under 8000 bytes: 500 ids of 10 characters and a comma fit.
const IDS_PER_NOTIFY: usize = 500;

pub struct SqlStore {
    pool: AnyPool,
    url: String,
    backend: Backend,
    connection_uses: Arc<AtomicU64>,
    /// The lock on an SQLite file, held while the store lives: one server per file.
    _lock: Option<std::fs::File>,
}

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
        .map_err(|e| Error::Internal(format!("cannot create {}: {e}", lock_path.display())))?;
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
            return Err(Error::Internal(format!(
                "{} is in use by another Tessera server ({who}); stop it first. One SQLite file \
                 serves one server: to run several replicas, give them all one PostgreSQL \
                 database (--database-url postgres://…)",
                file.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::Internal(format!(
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

impl SqlStore {
    /// Connects to `sqlite://…` or `postgres://…` and applies pending migrations.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Internal(
                "the database URL must start with sqlite:// or postgres://".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| Error::Internal(describe_open_error(&e)))?;
        let lock = match sqlite_file(url) {
            Some(file) if backend == Backend::Sqlite => Some(lock_sqlite_file(&file)?),
            _ => None,
        };
        // One connection first, so that a bad file, a wrong password or an unreachable server is
        // reported at once and plainly (a pool would retry until its timeout and then say only
        // that it timed out).
        let probe = async {
            let mut conn = AnyConnection::connect_with(&options).await?;
            sqlx::query(match backend {
                Backend::Sqlite => "SELECT count(*) FROM sqlite_master",
                Backend::Postgres => "SELECT 1",
            })
            .execute(&mut conn)
            .await?;
            conn.close().await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Internal(describe_open_error(&e))),
            Err(_) => {
                return Err(Error::Internal(format!(
                    "the database did not answer within {} seconds",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let connection_uses = Arc::new(AtomicU64::new(0));
        let uses = connection_uses.clone();
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer. synchronous = FULL syncs
                        // the log at every commit, so an acknowledged write (a revocation above
                        // all) survives a power loss too, not only a crash of the process.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .before_acquire(move |_conn, _meta| {
                uses.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { Ok(true) })
            })
            .connect_with(options)
            .await?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| Error::Internal(format!("migrations failed: {e}")))?;
        Ok(SqlStore {
            pool,
            url: url.to_owned(),
            backend,
            connection_uses,
            _lock: lock,
        })
    }

    /// Inserts an app; `on_conflict` may turn the insert into an upsert.
    async fn insert_app(&self, a: &AppRecord, on_conflict: &str) -> Result<()> {
        let sql = format!(
            "INSERT INTO server_apps (id, secret, name, description, terms_and_conditions_link, \
             logo, public, trust_by_default, author_id, redirect_url, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12){on_conflict}"
        );
        sqlx::query(&sql)
            .bind(&a.id)
            .bind(&a.secret)
            .bind(&a.name)
            .bind(&a.description)
            .bind(&a.terms_and_conditions_link)
            .bind(&a.logo)
            .bind(flag(a.public))
            .bind(flag(a.trust_by_default))
            .bind(&a.author_id)
            .bind(&a.redirect_url)
            .bind(a.scopes.to_names())
            .bind(a.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The row `SELECT {columns} FROM {table} WHERE id = $1`, mapped.
    async fn by_id<T>(
        &self,
        columns: &str,
        table: &str,
        id: &str,
        map: impl Fn(&AnyRow) -> Result<T>,
    ) -> Result<Option<T>> {
        let sql = format!("SELECT {columns} FROM {table} WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(map).transpose()
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn role(name: &str) -> Result<ServerRole> {
    ServerRole::from_name(name).ok_or_else(|| Error::Internal(format!("unknown role {name:?}")))
}

fn digest(hex: &str) -> Result<TokenDigest> {
    TokenDigest::from_hex(hex).ok_or_else(|| Error::Internal("corrupt digest".into()))
}

fn user(row: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        suuid: row.try_get("suuid")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        bio: row.try_get("bio")?,
        company: row.try_get("company")?,
        avatar: row.try_get("avatar")?,
        verified: row.try_get::<i64, _>("verified")? != 0,
        profiles: row.try_get("profiles")?,
        role: role(&row.try_get::<String, _>("role")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn app(row: &AnyRow) -> Result<AppRecord> {
    Ok(AppRecord {
        id: row.try_get("id")?,
        secret: row.try_get("secret")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        terms_and_conditions_link: row.try_get("terms_and_conditions_link")?,
        logo: row.try_get("logo")?,
        trust_by_default: row.try_get::<i64, _>("trust_by_default")? != 0,
        public: row.try_get::<i64, _>("public")? != 0,
        redirect_url: row.try_get("redirect_url")?,
        scopes: ScopeSet::from_names(&row.try_get::<String, _>("scopes")?),
        author_id: row.try_get("author_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn refresh(row: &AnyRow) -> Result<RefreshRecord> {
    Ok(RefreshRecord {
        id: row.try_get("id")?,
        digest: digest(&row.try_get::<String, _>("digest")?)?,
        app_id: row.try_get("app_id")?,
        user_id: row.try_get("user_id")?,
        family_id: row.try_get("family_id")?,
        scopes: ScopeSet::from_names(&row.try_get::<String, _>("scopes")?),
        used: row.try_get::<Option<i64>, _>("used_at")?.is_some(),
        client_authenticated: row.try_get::<i64, _>("client_authenticated")? != 0,
        created_at: row.try_get("created_at")?,
        lifespan: row.try_get("lifespan")?,
    })
}

async fn insert_token(conn: &mut AnyConnection, token: &NewToken) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, digest, owner_id, name, last_chars, scopes, kind, app_id, \
         family_id, lifespan, created_at, last_used) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(&token.id)
    .bind(token.digest.to_hex())
    .bind(&token.owner_id)
    .bind(&token.name)
    .bind(&token.last_chars)
    .bind(token.scopes.to_names())
    .bind(token.kind.as_str())
    .bind(&token.app_id)
    .bind(&token.family_id)
    .bind(token.lifespan)
    .bind(token.created_at)
    .execute(&mut *conn)
    .await?;
    for rule in &token.resources {
        sqlx::query(
            "INSERT INTO token_resources (token_id, resource_type, resource_id) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&token.id)
        .bind(&rule.resource_type)
        .bind(&rule.resource_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn insert_refresh(conn: &mut AnyConnection, refresh: &NewRefresh) -> Result<()> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, digest, app_id, user_id, family_id, scopes, used_at, \
         client_authenticated, created_at, lifespan) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)",
    )
    .bind(&refresh.id)
    .bind(refresh.digest.to_hex())
    .bind(&refresh.app_id)
    .bind(&refresh.user_id)
    .bind(&refresh.family_id)
    .bind(refresh.scopes.to_names())
    .bind(flag(refresh.client_authenticated))
    .bind(refresh.created_at)
    .bind(refresh.lifespan)
    .execute(conn)
    .await?;
    Ok(())
}

/// A statement built in pieces; placeholders are numbered in order of appearance, as SQLite
/// needs (it binds `$n` by first appearance).
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Sql {
    fn new(text: &str) -> Sql {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    fn arg(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    fn text(&mut self, value: &str) -> &mut Sql {
        self.arg(Arg::Text(value.to_owned()))
    }

    fn int(&mut self, value: i64) -> &mut Sql {
        self.arg(Arg::Int(value))
    }

    /// `column IN ($a, $b, …)`; an empty list matches nothing.
    fn in_list(&mut self, column: &str, values: &[String]) -> &mut Sql {
        if values.is_empty() {
            return self.push("1 = 0");
        }
        self.push(column).push(" IN (");
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(v);
        }
        self.push(")")
    }

    /// Keyset pagination, newest first: `AND (key < $k OR (key = $k AND id < $id))`.
    fn after(&mut self, key: &str, id: &str, cursor: &Option<Cursor>) -> &mut Sql {
        if let Some(c) = cursor {
            let n = self.args.len() + 1;
            self.args.push(Arg::Int(c.key));
            self.args.push(Arg::Text(c.id.clone()));
            self.text.push_str(&format!(
                " AND ({key} < ${n} OR ({key} = ${n} AND {id} < ${}))",
                n + 1
            ));
        }
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for arg in &self.args {
            q = match arg {
                Arg::Text(t) => q.bind(t.clone()),
                Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }
}

/// A `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped: String = text
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("%{escaped}%")
}

/// Rows that list page by page, newest first: each knows its cursor.
trait Listed {
    fn cursor(&self) -> Cursor;
}

impl Listed for UserRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.created_at,
            id: self.id.clone(),
        }
    }
}

impl Listed for (ProjectRecord, StreamRole) {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.0.updated_at,
            id: self.0.id.clone(),
        }
    }
}

impl Listed for ModelRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.updated_at,
            id: self.id.clone(),
        }
    }
}

impl Listed for VersionRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.created_at,
            id: self.id.clone(),
        }
    }
}

/// Runs a listing: `SELECT columns` plus `from` (a `FROM … WHERE …` clause) for the page, one row
/// more than asked to know if there is a next, and `SELECT COUNT(*)` plus `from` for the total.
async fn page<T: Listed>(
    pool: &AnyPool,
    columns: &str,
    from: impl Fn(&mut Sql),
    order: (&str, &str),
    page: &PageRequest,
    map: impl Fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    let mut select = Sql::new(&format!("SELECT {columns}"));
    from(&mut select);
    select
        .after(order.0, order.1, &page.after)
        .push(&format!(
            " ORDER BY {} DESC, {} DESC LIMIT ",
            order.0, order.1
        ))
        .int(page.limit + 1);
    let rows = select.query().fetch_all(pool).await?;
    let mut items = rows.iter().map(map).collect::<Result<Vec<T>>>()?;
    let more = items.len() as i64 > page.limit;
    items.truncate(page.limit.max(0) as usize);
    let next = if more {
        items.last().map(Listed::cursor)
    } else {
        None
    };
    let mut count = Sql::new("SELECT COUNT(*)");
    from(&mut count);
    let total: i64 = count.query().fetch_one(pool).await?.try_get(0)?;
    Ok(Page { items, total, next })
}

const PROJECT_COLUMNS: &str = "s.id, s.name, s.description, s.visibility, s.allow_public_comments, s.created_at, s.updated_at";
const MODEL_COLUMNS: &str = "id, stream_id, name, description, author_id, created_at, updated_at";
const VERSION_COLUMNS: &str = "id, stream_id, model_id, author_id, referenced_object, message, \
     source_application, total_children_count, parents, created_at";

fn project(row: &AnyRow) -> Result<ProjectRecord> {
    let visibility: String = row.try_get("visibility")?;
    Ok(ProjectRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        visibility: Visibility::parse(&visibility)
            .ok_or_else(|| Error::Internal(format!("unknown visibility {visibility:?}")))?,
        allow_public_comments: row.try_get::<i64, _>("allow_public_comments")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn stream_role(name: &str) -> Result<StreamRole> {
    StreamRole::from_name(name).ok_or_else(|| Error::Internal(format!("unknown role {name:?}")))
}

fn model(row: &AnyRow) -> Result<ModelRecord> {
    Ok(ModelRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("stream_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        author_id: row.try_get("author_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn version(row: &AnyRow) -> Result<VersionRecord> {
    let parents: Option<String> = row.try_get("parents")?;
    Ok(VersionRecord {
        id: row.try_get("id")?,
        project_id: row.try_get("stream_id")?,
        model_id: row.try_get("model_id")?,
        author_id: row.try_get("author_id")?,
        referenced_object: row.try_get("referenced_object")?,
        message: row.try_get("message")?,
        source_application: row.try_get("source_application")?,
        total_children_count: row.try_get("total_children_count")?,
        parents: parents
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        created_at: row.try_get("created_at")?,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn connection_uses(&self) -> u64 {
        self.connection_uses.load(Ordering::Relaxed)
    }

    async fn create_user(&self, new: NewUser) -> Result<Option<UserRecord>> {
        // One statement decides the role, so two first registrations cannot both read "no users
        // yet" between a count and an insert on SQLite; the unique email index settles conflicts.
        let sql = format!(
            "INSERT INTO users (id, suuid, email, name, bio, company, avatar, verified, \
             password_hash, role, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, 0, $8, \
             CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'server:user' ELSE 'server:admin' END, $9 \
             WHERE true ON CONFLICT (email) DO NOTHING RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&new.id)
            .bind(&new.suuid)
            .bind(&new.email)
            .bind(&new.name)
            .bind(&new.bio)
            .bind(&new.company)
            .bind(&new.avatar)
            .bind(&new.password_hash)
            .bind(new.created_at)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        self.by_id(USER_COLUMNS, "users", id, user).await
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<(UserRecord, Option<String>)>> {
        let sql = format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE email = $1");
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(row) => Ok(Some((user(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<Option<UserRecord>> {
        let mut sets = Vec::new();
        let mut values: Vec<Option<String>> = Vec::new();
        let columns = [
            ("name", update.name.map(Some)),
            ("company", update.company),
            ("bio", update.bio),
            ("avatar", update.avatar),
        ];
        for (column, value) in columns {
            if let Some(value) = value {
                values.push(value);
                sets.push(format!("{column} = ${}", values.len()));
            }
        }
        if sets.is_empty() {
            return self.user_by_id(id).await;
        }
        let sql = format!(
            "UPDATE users SET {} WHERE id = ${} RETURNING {USER_COLUMNS}",
            sets.join(", "),
            values.len() + 1
        );
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        let row = query.bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user).transpose()
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        self.by_id(APP_COLUMNS, "server_apps", id, app).await
    }

    async fn upsert_default_app(&self, a: &AppRecord) -> Result<()> {
        self.insert_app(
            a,
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             description = excluded.description, public = excluded.public, \
             trust_by_default = excluded.trust_by_default, redirect_url = excluded.redirect_url, \
             scopes = excluded.scopes",
        )
        .await
    }

    async fn create_app(&self, a: &AppRecord) -> Result<()> {
        self.insert_app(a, "").await
    }

    async fn update_app(&self, a: &AppRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE server_apps SET name = $1, description = $2, terms_and_conditions_link = $3, \
             logo = $4, public = $5, redirect_url = $6, scopes = $7 WHERE id = $8",
        )
        .bind(&a.name)
        .bind(&a.description)
        .bind(&a.terms_and_conditions_link)
        .bind(&a.logo)
        .bind(flag(a.public))
        .bind(&a.redirect_url)
        .bind(a.scopes.to_names())
        .bind(&a.id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_app_secret(&self, id: &str, secret: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE server_apps SET secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_app(&self, id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let ids = sqlx::query("DELETE FROM api_tokens WHERE app_id = $1 RETURNING id")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        for sql in [
            "DELETE FROM access_codes WHERE app_id = $1",
            "DELETE FROM refresh_tokens WHERE app_id = $1",
            "DELETE FROM server_apps WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn revoke_app_grants(&self, app_id: &str, user_id: Option<&str>) -> Result<Vec<String>> {
        let (tokens, rest) = match user_id {
            Some(_) => (
                "DELETE FROM api_tokens WHERE app_id = $1 AND owner_id = $2 RETURNING id",
                [
                    "DELETE FROM access_codes WHERE app_id = $1 AND user_id = $2",
                    "DELETE FROM refresh_tokens WHERE app_id = $1 AND user_id = $2",
                ],
            ),
            None => (
                "DELETE FROM api_tokens WHERE app_id = $1 RETURNING id",
                [
                    "DELETE FROM access_codes WHERE app_id = $1",
                    "DELETE FROM refresh_tokens WHERE app_id = $1",
                ],
            ),
        };
        let query = |sql| {
            let q = sqlx::query(sql).bind(app_id);
            match user_id {
                Some(user) => q.bind(user),
                None => q,
            }
        };
        let mut tx = self.pool.begin().await?;
        let ids = query(tokens)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        for sql in rest {
            query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn apps_by_author(&self, author_id: &str) -> Result<Vec<AppRecord>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM server_apps WHERE author_id = $1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(author_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(app).collect()
    }

    async fn authorized_apps(&self, user_id: &str) -> Result<Vec<AppRecord>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM server_apps WHERE id IN \
             (SELECT app_id FROM api_tokens WHERE owner_id = $1 AND app_id IS NOT NULL \
              UNION SELECT app_id FROM refresh_tokens WHERE user_id = $1) \
             ORDER BY name, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(app).collect()
    }

    async fn public_apps(&self) -> Result<Vec<AppRecord>> {
        let sql = format!(
            "SELECT {APP_COLUMNS} FROM server_apps WHERE public = 1 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(app).collect()
    }

    async fn insert_token(&self, token: &NewToken) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_token(&mut tx, token).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
        let Some(row) = sqlx::query(
            "SELECT t.id, t.digest, t.owner_id, u.role, t.scopes, t.app_id, t.created_at, \
             t.lifespan FROM api_tokens t JOIN users u ON u.id = t.owner_id WHERE t.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let resources = sqlx::query(
            "SELECT resource_type, resource_id FROM token_resources WHERE token_id = $1 \
             ORDER BY resource_type, resource_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ResourceRule {
                resource_type: r.try_get("resource_type")?,
                resource_id: r.try_get("resource_id")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(TokenAuthRecord {
            id: row.try_get("id")?,
            digest: digest(&row.try_get::<String, _>("digest")?)?,
            owner_id: row.try_get("owner_id")?,
            owner_role: role(&row.try_get::<String, _>("role")?)?,
            scopes: ScopeSet::from_names(&row.try_get::<String, _>("scopes")?),
            app_id: row.try_get("app_id")?,
            created_at: row.try_get("created_at")?,
            lifespan: row.try_get("lifespan")?,
            resources,
        }))
    }

    async fn personal_tokens(&self, owner_id: &str) -> Result<Vec<TokenListing>> {
        sqlx::query(
            "SELECT id, name, last_chars, scopes, created_at, lifespan, last_used \
             FROM api_tokens WHERE owner_id = $1 AND kind = 'pat' ORDER BY created_at, id",
        )
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(TokenListing {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                last_chars: r.try_get("last_chars")?,
                scopes: ScopeSet::from_names(&r.try_get::<String, _>("scopes")?),
                created_at: r.try_get("created_at")?,
                lifespan: r.try_get("lifespan")?,
                last_used: r.try_get("last_used")?,
            })
        })
        .collect()
    }

    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool> {
        let done = match owner_id {
            Some(owner) => {
                sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND owner_id = $2")
                    .bind(id)
                    .bind(owner)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                    .bind(id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected() > 0)
    }

    async fn record_token_use(&self, uses: &[(String, Millis)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id, at) in uses {
            sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2 AND last_used < $1")
                .bind(*at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_code(&self, code: &AccessCode) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_codes (digest, app_id, user_id, challenge, challenge_method, \
             scopes, created_at, lifespan) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(code.digest.to_hex())
        .bind(&code.app_id)
        .bind(&code.user_id)
        .bind(&code.challenge)
        .bind(code.method.as_str())
        .bind(code.scopes.map(ScopeSet::to_names))
        .bind(code.created_at)
        .bind(code.lifespan)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn code(&self, d: &TokenDigest) -> Result<Option<AccessCode>> {
        let row = sqlx::query(
            "SELECT digest, app_id, user_id, challenge, challenge_method, scopes, created_at, \
             lifespan, used_at FROM access_codes WHERE digest = $1",
        )
        .bind(d.to_hex())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let method: String = r.try_get("challenge_method")?;
            Ok(AccessCode {
                digest: digest(&r.try_get::<String, _>("digest")?)?,
                app_id: r.try_get("app_id")?,
                user_id: r.try_get("user_id")?,
                challenge: r.try_get("challenge")?,
                method: ChallengeMethod::parse(&method).ok_or_else(|| {
                    Error::Internal(format!("unknown challenge method {method:?}"))
                })?,
                scopes: r
                    .try_get::<Option<String>, _>("scopes")?
                    .map(|names| ScopeSet::from_names(&names)),
                created_at: r.try_get("created_at")?,
                lifespan: r.try_get("lifespan")?,
                used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn spend_code(
        &self,
        d: &TokenDigest,
        family_id: &str,
        now: Millis,
        pair: Option<(&NewToken, &NewRefresh)>,
    ) -> Result<Spend> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE access_codes SET used_at = $1, family_id = $2 \
             WHERE digest = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .bind(d.to_hex())
        .execute(&mut *tx)
        .await?;
        if spent.rows_affected() == 0 {
            let family_id = sqlx::query("SELECT family_id FROM access_codes WHERE digest = $1")
                .bind(d.to_hex())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("family_id"))
                .transpose()?
                .flatten();
            tx.rollback().await?;
            return Ok(Spend::AlreadySpent { family_id });
        }
        if let Some((token, refresh)) = pair {
            insert_token(&mut tx, token).await?;
            insert_refresh(&mut tx, refresh).await?;
        }
        tx.commit().await?;
        Ok(Spend::Spent)
    }

    async fn purge_expired_codes(&self, now: Millis) -> Result<()> {
        sqlx::query("DELETE FROM access_codes WHERE created_at + lifespan < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn refresh_token(&self, id: &str) -> Result<Option<RefreshRecord>> {
        let row = sqlx::query(
            "SELECT id, digest, app_id, user_id, family_id, scopes, used_at, \
             client_authenticated, created_at, lifespan FROM refresh_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refresh).transpose()
    }

    async fn delete_refresh_token(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM refresh_tokens WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        now: Millis,
        token: &NewToken,
        refresh: &NewRefresh,
    ) -> Result<Rotation> {
        // The transaction starts with the write, so SQLite takes its write lock up front and two
        // concurrent rotations of one token serialise: exactly one sees `used_at IS NULL`.
        let mut tx = self.pool.begin().await?;
        let spent =
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
                .bind(now)
                .bind(old_id)
                .execute(&mut *tx)
                .await?;
        if spent.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Rotation::AlreadyUsed);
        }
        insert_token(&mut tx, token).await?;
        insert_refresh(&mut tx, refresh).await?;
        tx.commit().await?;
        Ok(Rotation::Rotated)
    }

    async fn revoke_family(&self, family_id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let ids = sqlx::query("DELETE FROM api_tokens WHERE family_id = $1 RETURNING id")
            .bind(family_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>("id"))
            .collect::<Result<Vec<_>, _>>()?;
        sqlx::query("DELETE FROM refresh_tokens WHERE family_id = $1")
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn sign_in_failures(
        &self,
        account: &str,
        address: &str,
        since: Millis,
    ) -> Result<FailureCounts> {
        let row = sqlx::query(
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN address = $2 THEN failures ELSE 0 END), 0) AS BIGINT) \
             AS pair, \
             CAST(COALESCE(MAX(CASE WHEN address = $2 THEN last_failure_at ELSE 0 END), 0) \
             AS BIGINT) AS pair_last, \
             CAST(COALESCE(SUM(failures), 0) AS BIGINT) AS account, \
             CAST(COALESCE(MAX(last_failure_at), 0) AS BIGINT) AS account_last \
             FROM sign_in_failures WHERE account = $1 AND last_failure_at >= $3",
        )
        .bind(account)
        .bind(address)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let int = |name: &str| row.try_get::<i64, _>(name);
        Ok(FailureCounts {
            pair: int("pair")?,
            pair_last: int("pair_last")?,
            account: int("account")?,
            account_last: int("account_last")?,
        })
    }

    async fn count_sign_in_attempt(
        &self,
        account: &str,
        address: &str,
        now: Millis,
        since: Millis,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO sign_in_failures (account, address, failures, last_failure_at) \
             VALUES ($1, $2, 1, $3) ON CONFLICT (account, address) DO UPDATE SET \
             failures = CASE WHEN sign_in_failures.last_failure_at < $4 THEN 1 \
             ELSE sign_in_failures.failures + 1 END, last_failure_at = $3 \
             RETURNING failures",
        )
        .bind(account)
        .bind(address)
        .bind(now)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("failures")?)
    }

    async fn clear_sign_in_failures(&self, account: &str, address: &str) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE account = $1 AND address = $2")
            .bind(account)
            .bind(address)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_sign_in_failures(&self, before: Millis) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE last_failure_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(fresh)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    async fn data_migration_done(&self, name: &str) -> Result<bool> {
        let row = sqlx::query("SELECT name FROM data_migrations WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn mark_data_migration_done(&self, name: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO data_migrations (name, done_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn all_user_emails(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, email FROM users ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("email")?)))
            .collect()
    }

    async fn set_user_email(&self, id: &str, email: &str) -> Result<bool> {
        let taken = sqlx::query("SELECT id FROM users WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Ok(false);
        }
        sqlx::query("UPDATE users SET email = $1 WHERE id = $2")
            .bind(email)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    async fn announce_revocations(&self, ids: &[String]) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        for chunk in ids.chunks(IDS_PER_NOTIFY) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOCATION_CHANNEL)
                .bind(chunk.join(","))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn revocations(&self) -> Result<Option<mpsc::UnboundedReceiver<Revoked>>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(REVOCATION_CHANNEL).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(notification) => {
                        for id in notification
                            .payload()
                            .split(',')
                            .filter(|id| !id.is_empty())
                        {
                            if tx.send(Revoked::Token(id.to_owned())).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        // recv() reconnects on the next call; what was announced meanwhile is
                        // lost, so the cache forgets everything it holds.
                        tracing::warn!(error = %e, "revocation listener lost its connection");
                        if tx.send(Revoked::Unknown).is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    async fn search_users(
        &self,
        query: &UserSearch,
        page_req: &PageRequest,
    ) -> Result<Page<UserRecord>> {
        let email = query.text.trim().to_lowercase();
        let from = |sql: &mut Sql| {
            sql.push(" FROM users WHERE (email = ").text(&email);
            if !query.email_only {
                sql.push(" OR lower(name) LIKE ")
                    .text(&contains_pattern(query.text.trim()))
                    .push(" ESCAPE '\\'");
            }
            sql.push(")");
            if !query.include_archived {
                sql.push(" AND role <> 'server:archived-user'");
            }
        };
        page(
            &self.pool,
            USER_COLUMNS,
            from,
            ("created_at", "id"),
            page_req,
            user,
        )
        .await
    }

    async fn create_project(&self, p: &ProjectRecord, owner_id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO streams (id, name, description, visibility, allow_public_comments, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.visibility.as_str())
        .bind(flag(p.allow_public_comments))
        .bind(p.created_at)
        .bind(p.updated_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO stream_acl (stream_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(&p.id)
            .bind(owner_id)
            .bind(StreamRole::Owner.name())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn project(&self, id: &str) -> Result<Option<ProjectRecord>> {
        self.by_id(PROJECT_COLUMNS, "streams s", id, project).await
    }

    async fn update_project(&self, p: &ProjectRecord) -> Result<()> {
        sqlx::query(
            "UPDATE streams SET name = $1, description = $2, visibility = $3, \
             allow_public_comments = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(&p.name)
        .bind(&p.description)
        .bind(p.visibility.as_str())
        .bind(flag(p.allow_public_comments))
        .bind(p.updated_at)
        .bind(&p.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_project(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM streams WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn project_role(&self, project_id: &str, user_id: &str) -> Result<Option<StreamRole>> {
        let row = sqlx::query("SELECT role FROM stream_acl WHERE stream_id = $1 AND user_id = $2")
            .bind(project_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| stream_role(&r.try_get::<String, _>("role")?))
            .transpose()
    }

    async fn set_project_role(
        &self,
        project_id: &str,
        user_id: &str,
        role: Option<StreamRole>,
        now: Millis,
    ) -> Result<RoleChange> {
        // Write first, so that SQLite takes the write lock before the owner count is read.
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE streams SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
        let current =
            sqlx::query("SELECT role FROM stream_acl WHERE stream_id = $1 AND user_id = $2")
                .bind(project_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("role"))
                .transpose()?;
        if current.as_deref() == Some(StreamRole::Owner.name()) && role != Some(StreamRole::Owner) {
            let owners: i64 = sqlx::query(
                "SELECT COUNT(*) FROM stream_acl WHERE stream_id = $1 AND role = 'stream:owner'",
            )
            .bind(project_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            if owners <= 1 {
                tx.rollback().await?;
                return Ok(RoleChange::LastOwner);
            }
        }
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO stream_acl (stream_id, user_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (stream_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(project_id)
                .bind(user_id)
                .bind(role.name())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM stream_acl WHERE stream_id = $1 AND user_id = $2")
                    .bind(project_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(RoleChange::Done)
    }

    async fn project_team(&self, project_id: &str) -> Result<Vec<(UserRecord, StreamRole)>> {
        let sql = format!(
            "SELECT {}, a.role AS stream_role FROM stream_acl a JOIN users u ON u.id = a.user_id \
             WHERE a.stream_id = $1 ORDER BY CASE a.role WHEN 'stream:owner' THEN 0 \
             WHEN 'stream:contributor' THEN 1 ELSE 2 END, lower(u.name), u.id",
            USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        sqlx::query(&sql)
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    user(r)?,
                    stream_role(&r.try_get::<String, _>("stream_role")?)?,
                ))
            })
            .collect()
    }

    async fn user_projects(
        &self,
        user_id: &str,
        filter: &ProjectFilter,
        page_req: &PageRequest,
    ) -> Result<Page<(ProjectRecord, StreamRole)>> {
        let from = |sql: &mut Sql| {
            sql.push(" FROM streams s JOIN stream_acl a ON a.stream_id = s.id WHERE a.user_id = ")
                .text(user_id);
            if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
                sql.push(" AND lower(s.name) LIKE ")
                    .text(&contains_pattern(search.trim()))
                    .push(" ESCAPE '\\'");
            }
            if let Some(roles) = &filter.roles {
                let names: Vec<String> = roles.iter().map(|r| r.name().to_owned()).collect();
                sql.push(" AND ").in_list("a.role", &names);
            }
            if let Some(ids) = &filter.ids {
                sql.push(" AND ").in_list("s.id", ids);
            }
        };
        let columns = format!("{PROJECT_COLUMNS}, a.role AS stream_role");
        page(
            &self.pool,
            &columns,
            from,
            ("s.updated_at", "s.id"),
            page_req,
            |r| {
                Ok((
                    project(r)?,
                    stream_role(&r.try_get::<String, _>("stream_role")?)?,
                ))
            },
        )
        .await
    }

    async fn project_source_apps(&self, project_id: &str) -> Result<Vec<String>> {
        sqlx::query(
            "SELECT DISTINCT source_application FROM versions WHERE stream_id = $1 \
             AND source_application IS NOT NULL ORDER BY source_application",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("source_application")?))
        .collect()
    }

    async fn create_model(&self, m: &ModelRecord) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO models (id, stream_id, name, description, author_id, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.project_id)
        .bind(&m.name)
        .bind(&m.description)
        .bind(&m.author_id)
        .bind(m.created_at)
        .bind(m.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn model(&self, id: &str) -> Result<Option<ModelRecord>> {
        self.by_id(MODEL_COLUMNS, "models", id, model).await
    }

    async fn model_by_name(&self, project_id: &str, name: &str) -> Result<Option<ModelRecord>> {
        let sql =
            format!("SELECT {MODEL_COLUMNS} FROM models WHERE stream_id = $1 AND lower(name) = $2");
        let row = sqlx::query(&sql)
            .bind(project_id)
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(model).transpose()
    }

    async fn update_model(&self, m: &ModelRecord) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE models SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(&m.name)
        .bind(&m.description)
        .bind(m.updated_at)
        .bind(&m.id)
        .execute(&self.pool)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_model(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM models WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn project_models(
        &self,
        project_id: &str,
        filter: &ModelFilter,
        page_req: &PageRequest,
    ) -> Result<Page<ModelRecord>> {
        let from = |sql: &mut Sql| {
            sql.push(" FROM models m WHERE m.stream_id = ")
                .text(project_id);
            if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
                sql.push(" AND lower(m.name) LIKE ")
                    .text(&contains_pattern(search.trim()))
                    .push(" ESCAPE '\\'");
            }
            if let Some(ids) = &filter.ids {
                sql.push(" AND ").in_list("m.id", ids);
            }
            if let Some(ids) = filter.exclude_ids.as_ref().filter(|ids| !ids.is_empty()) {
                sql.push(" AND NOT (").in_list("m.id", ids).push(")");
            }
            if filter.only_with_versions {
                sql.push(" AND EXISTS (SELECT 1 FROM versions v WHERE v.model_id = m.id)");
            }
            if let Some(authors) = &filter.authors {
                sql.push(" AND ").in_list("m.author_id", authors);
            }
            if let Some(apps) = &filter.source_apps {
                sql.push(" AND EXISTS (SELECT 1 FROM versions v WHERE v.model_id = m.id AND ")
                    .in_list("v.source_application", apps)
                    .push(")");
            }
        };
        let columns = MODEL_COLUMNS
            .split(", ")
            .map(|c| format!("m.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        page(
            &self.pool,
            &columns,
            from,
            ("m.updated_at", "m.id"),
            page_req,
            model,
        )
        .await
    }

    async fn create_version(&self, v: &VersionRecord) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO versions (id, stream_id, model_id, author_id, referenced_object, \
             message, source_application, total_children_count, parents, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&v.id)
        .bind(&v.project_id)
        .bind(&v.model_id)
        .bind(&v.author_id)
        .bind(&v.referenced_object)
        .bind(&v.message)
        .bind(&v.source_application)
        .bind(v.total_children_count)
        .bind(serde_json::to_string(&v.parents).map_err(|e| Error::Internal(e.to_string()))?)
        .bind(v.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE models SET updated_at = $1 WHERE id = $2")
            .bind(v.created_at)
            .bind(&v.model_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE streams SET updated_at = $1 WHERE id = $2")
            .bind(v.created_at)
            .bind(&v.project_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn version(&self, id: &str) -> Result<Option<VersionRecord>> {
        self.by_id(VERSION_COLUMNS, "versions", id, version).await
    }

    async fn update_version_message(&self, id: &str, message: Option<&str>) -> Result<bool> {
        let done = sqlx::query("UPDATE versions SET message = $1 WHERE id = $2")
            .bind(message)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_versions(&self, project_id: &str, ids: &[String]) -> Result<u64> {
        let mut sql = Sql::new("DELETE FROM versions WHERE stream_id = ");
        sql.text(project_id).push(" AND ").in_list("id", ids);
        Ok(sql.query().execute(&self.pool).await?.rows_affected())
    }

    async fn versions(
        &self,
        filter: &VersionFilter,
        page_req: &PageRequest,
    ) -> Result<Page<VersionRecord>> {
        let from = |sql: &mut Sql| {
            sql.push(" FROM versions WHERE 1 = 1");
            if let Some(project_id) = &filter.project_id {
                sql.push(" AND stream_id = ").text(project_id);
            }
            if let Some(model_id) = &filter.model_id {
                sql.push(" AND model_id = ").text(model_id);
            }
            if let Some(author_id) = &filter.author_id {
                sql.push(" AND author_id = ").text(author_id);
            }
            if let Some(ids) = &filter.ids {
                sql.push(" AND ").in_list("id", ids);
            }
            if let Some(ids) = &filter.project_ids {
                sql.push(" AND ").in_list("stream_id", ids);
            }
            if let Some(user_id) = &filter.readable_by {
                sql.push(" AND (stream_id IN (SELECT stream_id FROM stream_acl WHERE user_id = ")
                    .text(user_id)
                    .push(
                        ") OR stream_id IN (SELECT id FROM streams WHERE visibility = 'PUBLIC'))",
                    );
            }
        };
        page(
            &self.pool,
            VERSION_COLUMNS,
            from,
            ("created_at", "id"),
            page_req,
            version,
        )
        .await
    }
}
