//! The [`Store`] over SQLite and PostgreSQL through sqlx's `Any` driver (see the module docs of
//! `store` for why one implementation serves both).

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use tessera_proto::{ScopeSet, ServerRole, TokenDigest};

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
        let options = AnyConnectOptions::from_str(url)?;
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
                        // WAL lets readers run beside the one writer; NORMAL sync is safe in WAL.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
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
        })
    }

    /// Closes every connection (used before a test drops its database).
    pub async fn close(&self) {
        self.pool.close().await;
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
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
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

    async fn user_activity_counts(&self, id: &str) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM stream_acl WHERE user_id = $1) AS streams, \
             (SELECT COUNT(*) FROM versions WHERE author_id = $1) AS versions",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("streams")?, row.try_get("versions")?))
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        let sql = format!("SELECT {APP_COLUMNS} FROM server_apps WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(app).transpose()
    }

    async fn upsert_default_app(&self, a: &AppRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO server_apps (id, secret, name, description, public, trust_by_default, \
             author_id, redirect_url, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             description = excluded.description, public = excluded.public, \
             trust_by_default = excluded.trust_by_default, redirect_url = excluded.redirect_url, \
             scopes = excluded.scopes",
        )
        .bind(&a.id)
        .bind(&a.secret)
        .bind(&a.name)
        .bind(&a.description)
        .bind(flag(a.public))
        .bind(flag(a.trust_by_default))
        .bind(&a.redirect_url)
        .bind(a.scopes.to_names())
        .bind(a.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_app(&self, a: &AppRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO server_apps (id, secret, name, description, terms_and_conditions_link, \
             logo, public, trust_by_default, author_id, redirect_url, scopes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
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
             created_at, lifespan) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(code.digest.to_hex())
        .bind(&code.app_id)
        .bind(&code.user_id)
        .bind(&code.challenge)
        .bind(code.method.as_str())
        .bind(code.created_at)
        .bind(code.lifespan)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn code(&self, d: &TokenDigest) -> Result<Option<AccessCode>> {
        let row = sqlx::query(
            "SELECT digest, app_id, user_id, challenge, challenge_method, created_at, lifespan, \
             used_at FROM access_codes WHERE digest = $1",
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
                created_at: r.try_get("created_at")?,
                lifespan: r.try_get("lifespan")?,
                used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn spend_code(&self, d: &TokenDigest, family_id: &str, now: Millis) -> Result<Spend> {
        let spent = sqlx::query(
            "UPDATE access_codes SET used_at = $1, family_id = $2 \
             WHERE digest = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .bind(d.to_hex())
        .execute(&self.pool)
        .await?;
        if spent.rows_affected() > 0 {
            return Ok(Spend::Spent);
        }
        let family_id = sqlx::query("SELECT family_id FROM access_codes WHERE digest = $1")
            .bind(d.to_hex())
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<String>, _>("family_id"))
            .transpose()?
            .flatten();
        Ok(Spend::AlreadySpent { family_id })
    }

    async fn purge_expired_codes(&self, now: Millis) -> Result<()> {
        sqlx::query("DELETE FROM access_codes WHERE created_at + lifespan < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_token_pair(&self, token: &NewToken, refresh: &NewRefresh) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_token(&mut tx, token).await?;
        insert_refresh(&mut tx, refresh).await?;
        tx.commit().await?;
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

    async fn revocations(&self) -> Result<Option<mpsc::UnboundedReceiver<String>>> {
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
                            if tx.send(id.to_owned()).is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        // recv() reconnects on the next call; until then the cache TTL covers us.
                        tracing::warn!(error = %e, "revocation listener lost its connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }
}
