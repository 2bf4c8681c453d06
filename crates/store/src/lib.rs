//! The core's [`Store`] over SQLite and PostgreSQL (docs/ARCHITECTURE.md, "Storage").
//!
//! Every statement is built with sea-query, the query builder lldap uses for the same purpose: one
//! statement in Rust, rendered in each backend's dialect, with every value bound as a parameter, so
//! no SQL text is assembled by hand and a misspelt column does not compile. Rows decode into typed
//! structs (`rows`) through sqlx's `FromRow`; the migrations live per backend in `migrations/`.
//! The conformance suite in `tests/` runs every method, the transactions and the races on both.

mod db;
mod logsync;
mod open;
mod rows;
mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sea_query::{
    Asterisk, Cond, Expr, Func, Iden, IntoColumnRef, LikeExpr, OnConflict, Order, Query,
    SelectStatement, SimpleExpr,
};
use tessera_core::clock::Millis;
use tessera_core::domain::limits::FailureCounts;
use tessera_core::error::{Error, Result};
use tessera_core::store::*;
use tessera_proto::{ScopeSet, ServerRole, StreamRole, TokenDigest};
use tokio::sync::mpsc;

use crate::db::{Pool, convert, is_unique_violation};
use crate::rows::*;
use crate::schema::*;

/// The PostgreSQL channel revocations are announced on.
const REVOCATION_CHANNEL: &str = "tessera_token_revoked";
/// NOTIFY payloads must stay under 8000 bytes: 500 ids of 10 characters and a comma fit.
const IDS_PER_NOTIFY: usize = 500;

pub struct SqlStore {
    pool: Pool,
    url: String,
    connection_uses: Arc<AtomicU64>,
    /// The lock on an SQLite file, held while the store lives: one server per file.
    _lock: Option<std::fs::File>,
}

impl SqlStore {
    /// Connects to `sqlite://…` or `postgres://…` and applies pending migrations. Every failure
    /// is an [`Error::Startup`] that says what is wrong in one line.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        let opened = open::open(url).await?;
        Ok(SqlStore {
            pool: opened.pool,
            url: url.to_owned(),
            connection_uses: opened.connection_uses,
            _lock: opened.lock,
        })
    }

    /// How many times a connection has been handed out: tests use it to show that a code path
    /// does not touch the database.
    pub fn connection_uses(&self) -> u64 {
        self.connection_uses.load(Ordering::Relaxed)
    }

    /// How many writes to an SQLite file have been acknowledged after a sync of its log (the
    /// group commit, docs/ARCHITECTURE.md "Storage"); `None` on PostgreSQL, whose commit is
    /// durable when it returns. Tests use it to show that a write waits for the disk.
    pub fn synced_writes(&self) -> Option<u64> {
        self.pool.synced_writes()
    }

    /// The counter behind [`SqlStore::connection_uses`], to read after the store is handed on.
    pub fn connection_counter(&self) -> Arc<AtomicU64> {
        self.connection_uses.clone()
    }

    /// Writes many tokens in one transaction (all or none), with the same statements as
    /// `Store::insert_token`: for seeding a large store quickly (the bench's million tokens),
    /// where a commit per token would spend most of its time waiting for the disk.
    pub async fn import_tokens(&self, tokens: &[NewToken]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for token in tokens {
            insert_token(&mut tx, token).await?;
        }
        tx.commit().await
    }

    fn is_postgres(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Inserts an app, or with `upsert`, refreshes a first-party app's name, flags and scopes.
    async fn insert_app(&self, a: &AppRecord, upsert: bool) -> Result<()> {
        let mut insert = Query::insert();
        insert
            .into_table(ServerApps::Table)
            .columns([
                ServerApps::Id,
                ServerApps::Secret,
                ServerApps::Name,
                ServerApps::Description,
                ServerApps::TermsAndConditionsLink,
                ServerApps::Logo,
                ServerApps::Public,
                ServerApps::Confidential,
                ServerApps::TrustByDefault,
                ServerApps::AuthorId,
                ServerApps::RedirectUrl,
                ServerApps::Scopes,
                ServerApps::CreatedAt,
            ])
            .values([
                String::from(a.id.clone()).into(),
                a.secret.clone().into(),
                a.name.clone().into(),
                a.description.clone().into(),
                a.terms_and_conditions_link.clone().into(),
                a.logo.clone().into(),
                a.public.into(),
                a.confidential.into(),
                a.trust_by_default.into(),
                a.author_id.clone().map(String::from).into(),
                a.redirect_url.clone().into(),
                a.scopes.to_names().into(),
                a.created_at.into(),
            ])
            .map_err(built)?;
        if upsert {
            insert.on_conflict(
                OnConflict::column(ServerApps::Id)
                    .update_columns([
                        ServerApps::Name,
                        ServerApps::Description,
                        ServerApps::Public,
                        ServerApps::TrustByDefault,
                        ServerApps::RedirectUrl,
                        ServerApps::Scopes,
                    ])
                    .to_owned(),
            );
        }
        self.pool.run(&insert).await?;
        Ok(())
    }

    async fn apps_where(&self, cond: Cond, order: &[ServerApps]) -> Result<Vec<AppRecord>> {
        let mut select = Query::select();
        select
            .columns(AppRow::COLUMNS)
            .from(ServerApps::Table)
            .cond_where(cond);
        for column in order {
            select.order_by(*column, Order::Asc);
        }
        convert(self.pool.all::<AppRow, _>(&select).await?)
    }
}

/// A statement that could not be built (a programming error, never the caller's input).
fn built(e: sea_query::error::Error) -> Error {
    Error::Internal(format!("cannot build a statement: {e}"))
}

/// `SELECT columns FROM table WHERE id = ?`.
fn by_id<T: Iden + Copy + 'static>(
    table: T,
    id_column: T,
    columns: &[T],
    id: &str,
) -> SelectStatement {
    Query::select()
        .columns(columns.iter().copied())
        .from(table)
        .and_where(Expr::col(id_column).eq(id))
        .to_owned()
}

/// A `LIKE` pattern matching `text` anywhere (case-insensitively, against a lowercased column),
/// with `%`, `_` and `\` taken literally.
fn contains(column: impl IntoColumnRef, text: &str) -> SimpleExpr {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    Expr::expr(Func::lower(Expr::col(column))).like(LikeExpr::new(pattern).escape('\\'))
}

/// `column IN (…)`; an empty list matches nothing (which `IN ()` cannot say in every dialect).
fn one_of(column: impl IntoColumnRef, values: &[String]) -> SimpleExpr {
    if values.is_empty() {
        Expr::val(1).eq(0)
    } else {
        Expr::col(column).is_in(values.iter().cloned())
    }
}

/// An INSERT of one row, or with a `guard`, of that row only where the guard holds
/// (`INSERT … SELECT … WHERE`): how a write of a batch depends on an earlier one (`Pool::batch`).
fn insert_row<T: Iden + 'static>(
    table: T,
    columns: impl IntoIterator<Item = T>,
    values: Vec<SimpleExpr>,
    guard: Option<&SimpleExpr>,
) -> Result<sea_query::InsertStatement> {
    let mut insert = Query::insert();
    insert.into_table(table).columns(columns);
    match guard {
        None => insert.values(values).map_err(built)?,
        Some(guard) => {
            let row = Query::select()
                .exprs(values)
                .and_where(guard.clone())
                .to_owned();
            insert.select_from(row).map_err(built)?
        }
    };
    Ok(insert)
}

fn token_insert(
    token: &NewToken,
    guard: Option<&SimpleExpr>,
) -> Result<sea_query::InsertStatement> {
    insert_row(
        ApiTokens::Table,
        [
            ApiTokens::Id,
            ApiTokens::Digest,
            ApiTokens::OwnerId,
            ApiTokens::Name,
            ApiTokens::LastChars,
            ApiTokens::Scopes,
            ApiTokens::Kind,
            ApiTokens::AppId,
            ApiTokens::FamilyId,
            ApiTokens::Lifespan,
            ApiTokens::CreatedAt,
            ApiTokens::LastUsed,
        ],
        vec![
            String::from(token.id.clone()).into(),
            token.digest.to_hex().into(),
            String::from(token.owner_id.clone()).into(),
            token.name.clone().into(),
            token.last_chars.clone().into(),
            token.scopes.to_names().into(),
            token.kind.as_str().into(),
            token.app_id.clone().map(String::from).into(),
            token.family_id.clone().into(),
            token.lifespan.into(),
            token.created_at.into(),
            token.created_at.into(),
        ],
        guard,
    )
}

/// The statements that store a token with its resource limits (each rule a row of its own, kept
/// once), every one only where `guard` holds.
fn token_writes(token: &NewToken, guard: Option<&SimpleExpr>) -> Result<Vec<db::Write>> {
    let mut writes = vec![token_insert(token, guard)?.into()];
    for rule in &token.resources {
        let mut insert = insert_row(
            TokenResources::Table,
            [
                TokenResources::TokenId,
                TokenResources::ResourceType,
                TokenResources::ResourceId,
            ],
            vec![
                String::from(token.id.clone()).into(),
                rule.resource_type.clone().into(),
                rule.resource_id.clone().into(),
            ],
            guard,
        )?;
        insert.on_conflict(OnConflict::new().do_nothing().to_owned());
        writes.push(insert.into());
    }
    Ok(writes)
}

/// Stores a token with its resource limits, in the caller's transaction.
async fn insert_token(tx: &mut db::Tx, token: &NewToken) -> Result<()> {
    tx.run_all(&token_writes(token, None)?).await?;
    Ok(())
}

/// A refresh token, stored only where `guard` holds (it is always bought by a spend).
fn refresh_insert(refresh: &NewRefresh, guard: &SimpleExpr) -> Result<sea_query::InsertStatement> {
    insert_row(
        RefreshTokens::Table,
        [
            RefreshTokens::Id,
            RefreshTokens::Digest,
            RefreshTokens::AppId,
            RefreshTokens::UserId,
            RefreshTokens::FamilyId,
            RefreshTokens::Scopes,
            RefreshTokens::ClientAuthenticated,
            RefreshTokens::CreatedAt,
            RefreshTokens::Lifespan,
        ],
        vec![
            String::from(refresh.id.clone()).into(),
            refresh.digest.to_hex().into(),
            String::from(refresh.app_id.clone()).into(),
            String::from(refresh.user_id.clone()).into(),
            refresh.family_id.clone().into(),
            refresh.scopes.to_names().into(),
            refresh.client_authenticated.into(),
            refresh.created_at.into(),
            refresh.lifespan.into(),
        ],
        Some(guard),
    )
}

/// A single-use grant's row: its table, the column that names it and its value there, and the
/// column a spend writes the id of the token it buys into. `spend_for_pair` adds the key to the
/// spend's `WHERE`, so the spend and the guard name the same row.
struct Grant<T> {
    table: T,
    key: T,
    id: String,
    spent_by: T,
}

/// Spends a single-use grant and stores the pair it buys, as one batch (`Pool::batch`): `spend`
/// is an UPDATE of `grant`'s table that matches only while the grant is unspent (the grant's key
/// is added here), and it also writes the new token's id into the row. Each row of the pair is
/// inserted only where the grant names that token, so a spend that lost the race (or came too
/// late) stores nothing, and the batch commits either way (migrations 0012). Whether the spend
/// changed the row.
async fn spend_for_pair<T: Iden + Copy + 'static>(
    pool: &Pool,
    grant: Grant<T>,
    mut spend: sea_query::UpdateStatement,
    pair: Option<(&NewToken, &NewRefresh)>,
) -> Result<bool> {
    spend.and_where(Expr::col(grant.key).eq(grant.id.clone()));
    let mut bought = Vec::new();
    if let Some((token, refresh)) = pair {
        let token_id = String::from(token.id.clone());
        spend.value(grant.spent_by, token_id.clone());
        let spent_by_this = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(grant.table)
                .and_where(Expr::col(grant.key).eq(grant.id))
                .and_where(Expr::col(grant.spent_by).eq(token_id))
                .to_owned(),
        );
        bought = token_writes(token, Some(&spent_by_this))?;
        bought.push(refresh_insert(refresh, &spent_by_this)?.into());
    }
    let mut writes = vec![db::Write::from(spend)];
    writes.append(&mut bought);
    let changed = pool.batch(&writes).await?;
    Ok(changed.first().is_some_and(|&n| n > 0))
}

/// Deletes the codes, refresh tokens and tokens of an app, for one user or for everyone, in the
/// caller's transaction; returns the deleted token ids.
async fn revoke_grants(
    tx: &mut db::Tx,
    app_id: &str,
    user_id: Option<&str>,
) -> Result<Vec<String>> {
    let of = |app: ApiTokens, user: ApiTokens| {
        let mut cond = Cond::all().add(Expr::col(app).eq(app_id));
        if let Some(user_id) = user_id {
            cond = cond.add(Expr::col(user).eq(user_id));
        }
        cond
    };
    let tokens = delete_returning_ids(
        ApiTokens::Table,
        ApiTokens::Id,
        of(ApiTokens::AppId, ApiTokens::OwnerId),
    );
    let mut codes = Query::delete()
        .from_table(AccessCodes::Table)
        .and_where(Expr::col(AccessCodes::AppId).eq(app_id))
        .to_owned();
    let mut refresh = Query::delete()
        .from_table(RefreshTokens::Table)
        .and_where(Expr::col(RefreshTokens::AppId).eq(app_id))
        .to_owned();
    if let Some(user_id) = user_id {
        codes.and_where(Expr::col(AccessCodes::UserId).eq(user_id));
        refresh.and_where(Expr::col(RefreshTokens::UserId).eq(user_id));
    }
    let revoked = ids(tx.conn().all(&tokens).await?);
    tx.conn().run(&codes).await?;
    tx.conn().run(&refresh).await?;
    Ok(revoked)
}

/// Deletes a refresh family's tokens and refresh tokens in the caller's transaction; returns the
/// deleted token ids.
async fn delete_family(tx: &mut db::Tx, family_id: &str) -> Result<Vec<String>> {
    let tokens = delete_returning_ids(
        ApiTokens::Table,
        ApiTokens::Id,
        Cond::all().add(Expr::col(ApiTokens::FamilyId).eq(family_id)),
    );
    let refresh = Query::delete()
        .from_table(RefreshTokens::Table)
        .and_where(Expr::col(RefreshTokens::FamilyId).eq(family_id))
        .to_owned();
    let revoked = ids(tx.conn().all(&tokens).await?);
    tx.conn().run(&refresh).await?;
    Ok(revoked)
}

/// Deletes the rows of `table` matching `cond` and returns the `id` column of each.
fn delete_returning_ids<T: Iden + Copy + 'static>(
    table: T,
    id: T,
    cond: Cond,
) -> sea_query::DeleteStatement {
    Query::delete()
        .from_table(table)
        .cond_where(cond)
        .returning_col(id)
        .to_owned()
}

fn ids(rows: Vec<Text>) -> Vec<String> {
    rows.into_iter().map(|Text(id)| id).collect()
}

/// Ends web sessions of a user inside `tx`: one (with the refresh chain it came from), or every
/// one but `keep` (with every refresh token of the web app).
async fn end_sessions(
    tx: &mut db::Tx,
    user_id: &str,
    web_app_id: &str,
    which: SessionsToEnd<'_>,
) -> Result<Vec<String>> {
    let theirs = || {
        Cond::all()
            .add(Expr::col(ApiTokens::OwnerId).eq(user_id))
            .add(Expr::col(ApiTokens::AppId).eq(web_app_id))
    };
    match which {
        SessionsToEnd::One(token_id) => {
            // Delete first (returning the chain it came from): no read before the write.
            let token = Query::delete()
                .from_table(ApiTokens::Table)
                .cond_where(theirs().add(Expr::col(ApiTokens::Id).eq(token_id)))
                .returning_col(ApiTokens::FamilyId)
                .to_owned();
            let Some(MaybeText(family)) = tx.conn().optional(&token).await? else {
                return Ok(Vec::new());
            };
            let mut revoked = vec![token_id.to_owned()];
            if let Some(family) = family {
                revoked.extend(delete_family(tx, &family).await?);
            }
            Ok(revoked)
        }
        SessionsToEnd::AllBut(keep) => {
            let sessions = delete_returning_ids(
                ApiTokens::Table,
                ApiTokens::Id,
                theirs().add(Expr::col(ApiTokens::Id).ne(keep)),
            );
            let refresh = Query::delete()
                .from_table(RefreshTokens::Table)
                .and_where(Expr::col(RefreshTokens::UserId).eq(user_id))
                .and_where(Expr::col(RefreshTokens::AppId).eq(web_app_id))
                .to_owned();
            let revoked = ids(tx.conn().all(&sessions).await?);
            tx.conn().run(&refresh).await?;
            Ok(revoked)
        }
    }
}

fn activity_insert(lines: &[ActivityRecord]) -> Result<sea_query::InsertStatement> {
    let mut insert = Query::insert();
    insert
        .into_table(Activity::Table)
        .columns(ActivityRow::COLUMNS)
        .on_conflict(OnConflict::new().do_nothing().to_owned());
    for line in lines {
        insert
            .values([
                line.id.clone().into(),
                String::from(line.user_id.clone()).into(),
                line.kind.as_str().into(),
                line.created_at.into(),
                line.address.clone().into(),
                line.user_agent.clone().into(),
                line.subject.clone().into(),
                line.subject_id.clone().into(),
            ])
            .map_err(built)?;
    }
    Ok(insert)
}

/// A page of users of `base`, newest first.
async fn user_page(
    pool: &Pool,
    base: &SelectStatement,
    request: &PageRequest,
) -> Result<Page<UserRecord>> {
    page::<UserRow, _>(
        pool,
        base,
        |s| {
            s.columns(UserRow::COLUMNS);
        },
        Keyset::new(Users::Table, Users::CreatedAt, Users::Id),
        request,
    )
    .await
}

/// The one row of `server_info`.
const SERVER_INFO_ID: &str = "server";

/// Rows that list page by page, newest first: each knows its cursor.
trait Listed {
    fn cursor(&self) -> Cursor;
}

impl Listed for ActivityRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.created_at,
            id: self.id.clone(),
        }
    }
}

impl Listed for UserRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.created_at,
            id: self.id.to_string(),
        }
    }
}

impl Listed for (ProjectRecord, StreamRole) {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.0.updated_at,
            id: self.0.id.to_string(),
        }
    }
}

impl Listed for ModelRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.updated_at,
            id: self.id.to_string(),
        }
    }
}

impl Listed for VersionRecord {
    fn cursor(&self) -> Cursor {
        Cursor {
            key: self.created_at,
            id: self.id.to_string(),
        }
    }
}

/// How a listing is ordered: newest first by `key`, then by `id`.
struct Keyset {
    key: sea_query::ColumnRef,
    id: sea_query::ColumnRef,
}

impl Keyset {
    fn new<T: Iden + Copy + 'static>(table: T, key: T, id: T) -> Keyset {
        Keyset {
            key: (table, key).into_column_ref(),
            id: (table, id).into_column_ref(),
        }
    }
}

/// Runs a listing: `base` (tables and conditions) with `columns` for one row more than the page
/// asks, to know whether there is a next page, and with `COUNT(*)` for the total.
async fn page<R, T>(
    pool: &Pool,
    base: &SelectStatement,
    columns: impl FnOnce(&mut SelectStatement),
    order: Keyset,
    request: &PageRequest,
) -> Result<Page<T>>
where
    R: db::Rows + TryInto<T, Error = Error>,
    T: Listed,
{
    let mut select = base.clone();
    columns(&mut select);
    if let Some(after) = &request.after {
        select.cond_where(
            Cond::any()
                .add(Expr::col(order.key.clone()).lt(after.key))
                .add(
                    Cond::all()
                        .add(Expr::col(order.key.clone()).eq(after.key))
                        .add(Expr::col(order.id.clone()).lt(after.id.clone())),
                ),
        );
    }
    select
        .order_by(order.key, Order::Desc)
        .order_by(order.id, Order::Desc)
        .limit(u64::try_from(request.limit.max(0)).unwrap_or(0) + 1);
    let mut items: Vec<T> = convert(pool.all::<R, _>(&select).await?)?;
    let limit = usize::try_from(request.limit.max(0)).unwrap_or(0);
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more {
        items.last().map(Listed::cursor)
    } else {
        None
    };
    let mut count = base.clone();
    count.expr(Func::count(Expr::col(Asterisk)));
    let Int(total) = pool.one(&count).await?;
    Ok(Page { items, total, next })
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        let probe = Query::select().expr(Expr::val(1i64)).to_owned();
        let _: Int = self.pool.one(&probe).await?;
        Ok(())
    }

    async fn create_user(&self, new: NewUser) -> Result<Option<UserRecord>> {
        // One statement decides the role, so two first registrations cannot both read "no users
        // yet" between a count and an insert on SQLite; the unique email index settles conflicts.
        let first = Expr::exists(
            Query::select()
                .expr(Expr::val(1))
                .from(Users::Table)
                .to_owned(),
        );
        let role: SimpleExpr = Expr::case(first, "server:user")
            .finally("server:admin")
            .into();
        let values = Query::select()
            .exprs([
                Expr::val(String::from(new.id)).into(),
                Expr::val(new.suuid).into(),
                Expr::val(new.email).into(),
                Expr::val(new.name).into(),
                Expr::val(new.bio).into(),
                Expr::val(new.company).into(),
                Expr::val(new.avatar).into(),
                Expr::val(new.verified).into(),
                Expr::val(new.password_hash).into(),
                role,
                Expr::val(new.created_at).into(),
            ])
            .to_owned();
        let insert = Query::insert()
            .into_table(Users::Table)
            .columns([
                Users::Id,
                Users::Suuid,
                Users::Email,
                Users::Name,
                Users::Bio,
                Users::Company,
                Users::Avatar,
                Users::Verified,
                Users::PasswordHash,
                Users::Role,
                Users::CreatedAt,
            ])
            .select_from(values)
            .map_err(built)?
            .on_conflict(OnConflict::column(Users::Email).do_nothing().to_owned())
            .returning(Query::returning().columns(UserRow::COLUMNS))
            .to_owned();
        let row: Option<UserRow> = self.pool.optional(&insert).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>> {
        let select = by_id(Users::Table, Users::Id, &UserRow::COLUMNS, id);
        let row: Option<UserRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn user_credentials(&self, email: &str) -> Result<Option<(UserRecord, Option<String>)>> {
        let select = Query::select()
            .columns(UserRow::COLUMNS)
            .column(Users::PasswordHash)
            .from(Users::Table)
            .and_where(Expr::col(Users::Email).eq(email))
            .to_owned();
        let row: Option<CredentialsRow> = self.pool.optional(&select).await?;
        row.map(|r| Ok((r.user.try_into()?, r.password_hash)))
            .transpose()
    }

    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<Option<UserRecord>> {
        let mut values: Vec<(Users, SimpleExpr)> = Vec::new();
        if let Some(name) = update.name {
            values.push((Users::Name, name.into()));
        }
        for (column, value) in [
            (Users::Company, update.company),
            (Users::Bio, update.bio),
            (Users::Avatar, update.avatar),
        ] {
            if let Some(value) = value {
                values.push((column, value.into()));
            }
        }
        if values.is_empty() {
            return self.user_by_id(id).await;
        }
        let statement = Query::update()
            .table(Users::Table)
            .values(values)
            .and_where(Expr::col(Users::Id).eq(id))
            .returning(Query::returning().columns(UserRow::COLUMNS))
            .to_owned();
        let row: Option<UserRow> = self.pool.optional(&statement).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        web_app_id: &str,
        keep_token_id: &str,
    ) -> Result<Vec<String>> {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::PasswordHash, password_hash)
            .and_where(Expr::col(Users::Id).eq(user_id))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        tx.conn().run(&update).await?;
        let which = SessionsToEnd::AllBut(keep_token_id);
        let revoked = end_sessions(&mut tx, user_id, web_app_id, which).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn search_users(
        &self,
        query: &UserSearch,
        request: &PageRequest,
    ) -> Result<Page<UserRecord>> {
        let email = query.text.trim().to_lowercase();
        let mut matches = Cond::any().add(Expr::col(Users::Email).eq(email));
        if !query.email_only {
            matches = matches.add(contains(Users::Name, query.text.trim()));
        }
        let mut cond = Cond::all().add(matches);
        if !query.include_archived {
            cond = cond.add(Expr::col(Users::Role).ne("server:archived-user"));
        }
        let base = Query::select()
            .from(Users::Table)
            .cond_where(cond)
            .to_owned();
        user_page(&self.pool, &base, request).await
    }

    async fn create_project(
        &self,
        p: &ProjectRecord,
        owner_id: &str,
        contributors: &[String],
    ) -> Result<()> {
        let project = Query::insert()
            .into_table(Streams::Table)
            .columns(ProjectRow::COLUMNS)
            .values([
                String::from(p.id.clone()).into(),
                p.name.clone().into(),
                p.description.clone().into(),
                p.visibility.as_str().into(),
                p.allow_public_comments.into(),
                p.created_at.into(),
                p.updated_at.into(),
            ])
            .map_err(built)?
            .to_owned();
        let mut team = Query::insert();
        team.into_table(StreamAcl::Table).columns([
            StreamAcl::StreamId,
            StreamAcl::UserId,
            StreamAcl::Role,
        ]);
        let members = std::iter::once((owner_id, StreamRole::Owner)).chain(
            contributors
                .iter()
                .map(|id| (id.as_str(), StreamRole::Contributor)),
        );
        for (user_id, role) in members {
            team.values([
                String::from(p.id.clone()).into(),
                user_id.into(),
                role.name().into(),
            ])
            .map_err(built)?;
        }
        let mut tx = self.pool.begin().await?;
        tx.conn().run(&project).await?;
        tx.conn().run(&team).await?;
        tx.commit().await
    }

    async fn project(&self, id: &str) -> Result<Option<ProjectRecord>> {
        let select = by_id(Streams::Table, Streams::Id, &ProjectRow::COLUMNS, id);
        let row: Option<ProjectRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn update_project(&self, p: &ProjectRecord) -> Result<()> {
        let update = Query::update()
            .table(Streams::Table)
            .values([
                (Streams::Name, p.name.clone().into()),
                (Streams::Description, p.description.clone().into()),
                (Streams::Visibility, p.visibility.as_str().into()),
                (Streams::AllowPublicComments, p.allow_public_comments.into()),
                (Streams::UpdatedAt, p.updated_at.into()),
            ])
            .and_where(Expr::col(Streams::Id).eq(p.id.as_str()))
            .to_owned();
        self.pool.run(&update).await?;
        Ok(())
    }

    async fn delete_project(&self, id: &str) -> Result<bool> {
        let delete = Query::delete()
            .from_table(Streams::Table)
            .and_where(Expr::col(Streams::Id).eq(id))
            .to_owned();
        Ok(self.pool.run(&delete).await? > 0)
    }

    async fn project_role(&self, project_id: &str, user_id: &str) -> Result<Option<StreamRole>> {
        let select = role_select(project_id, user_id);
        let row: Option<Text> = self.pool.optional(&select).await?;
        row.map(|Text(name)| {
            StreamRole::from_name(&name).ok_or_else(|| {
                Error::Store(format!("stored project role {name:?} is not readable"))
            })
        })
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
        let touch = Query::update()
            .table(Streams::Table)
            .value(Streams::UpdatedAt, now)
            .and_where(Expr::col(Streams::Id).eq(project_id))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        tx.conn().run(&touch).await?;
        let current: Option<Text> = tx
            .conn()
            .optional(&role_select(project_id, user_id))
            .await?;
        let owner = StreamRole::Owner.name();
        if current.as_ref().is_some_and(|Text(r)| r == owner) && role != Some(StreamRole::Owner) {
            let owners = Query::select()
                .expr(Func::count(Expr::col(Asterisk)))
                .from(StreamAcl::Table)
                .and_where(Expr::col(StreamAcl::StreamId).eq(project_id))
                .and_where(Expr::col(StreamAcl::Role).eq(owner))
                .to_owned();
            let Int(owners) = tx.conn().one(&owners).await?;
            if owners <= 1 {
                return Ok(RoleChange::LastOwner);
            }
        }
        match role {
            Some(role) => {
                let upsert = Query::insert()
                    .into_table(StreamAcl::Table)
                    .columns([StreamAcl::StreamId, StreamAcl::UserId, StreamAcl::Role])
                    .values([project_id.into(), user_id.into(), role.name().into()])
                    .map_err(built)?
                    .on_conflict(
                        OnConflict::columns([StreamAcl::StreamId, StreamAcl::UserId])
                            .update_column(StreamAcl::Role)
                            .to_owned(),
                    )
                    .to_owned();
                tx.conn().run(&upsert).await?;
            }
            None => {
                let delete = Query::delete()
                    .from_table(StreamAcl::Table)
                    .and_where(Expr::col(StreamAcl::StreamId).eq(project_id))
                    .and_where(Expr::col(StreamAcl::UserId).eq(user_id))
                    .to_owned();
                tx.conn().run(&delete).await?;
            }
        }
        tx.commit().await?;
        Ok(RoleChange::Done)
    }

    async fn project_team(&self, project_id: &str) -> Result<Vec<(UserRecord, StreamRole)>> {
        let role = Expr::col((StreamAcl::Table, StreamAcl::Role));
        let rank = Expr::case(role.clone().eq(StreamRole::Owner.name()), 0)
            .case(role.eq(StreamRole::Contributor.name()), 1)
            .finally(2);
        let select = Query::select()
            .columns(qualified(Users::Table, &UserRow::COLUMNS))
            .expr_as(
                Expr::col((StreamAcl::Table, StreamAcl::Role)),
                sea_query::Alias::new("stream_role"),
            )
            .from(StreamAcl::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id)).equals((StreamAcl::Table, StreamAcl::UserId)),
            )
            .and_where(Expr::col((StreamAcl::Table, StreamAcl::StreamId)).eq(project_id))
            .order_by_expr(rank.into(), Order::Asc)
            .order_by_expr(
                Func::lower(Expr::col((Users::Table, Users::Name))).into(),
                Order::Asc,
            )
            .order_by((Users::Table, Users::Id), Order::Asc)
            .to_owned();
        convert(self.pool.all::<MemberRow, _>(&select).await?)
    }

    async fn user_projects(
        &self,
        user_id: &str,
        filter: &ProjectFilter,
        request: &PageRequest,
    ) -> Result<Page<(ProjectRecord, StreamRole)>> {
        let mut base = Query::select();
        base.from(Streams::Table)
            .inner_join(
                StreamAcl::Table,
                Expr::col((StreamAcl::Table, StreamAcl::StreamId))
                    .equals((Streams::Table, Streams::Id)),
            )
            .and_where(Expr::col((StreamAcl::Table, StreamAcl::UserId)).eq(user_id));
        if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
            base.and_where(contains((Streams::Table, Streams::Name), search.trim()));
        }
        if let Some(roles) = &filter.roles {
            let names: Vec<String> = roles.iter().map(|r| r.name().to_owned()).collect();
            base.and_where(one_of((StreamAcl::Table, StreamAcl::Role), &names));
        }
        if let Some(ids) = &filter.ids {
            base.and_where(one_of((Streams::Table, Streams::Id), ids));
        }
        page::<ProjectRoleRow, _>(
            &self.pool,
            &base,
            |s| {
                s.columns(qualified(Streams::Table, &ProjectRow::COLUMNS))
                    .expr_as(
                        Expr::col((StreamAcl::Table, StreamAcl::Role)),
                        sea_query::Alias::new("stream_role"),
                    );
            },
            Keyset::new(Streams::Table, Streams::UpdatedAt, Streams::Id),
            request,
        )
        .await
    }

    async fn project_source_apps(&self, project_id: &str) -> Result<Vec<String>> {
        let select = Query::select()
            .distinct()
            .column(Versions::SourceApplication)
            .from(Versions::Table)
            .and_where(Expr::col(Versions::StreamId).eq(project_id))
            .and_where(Expr::col(Versions::SourceApplication).is_not_null())
            .order_by(Versions::SourceApplication, Order::Asc)
            .to_owned();
        Ok(ids(self.pool.all(&select).await?))
    }

    async fn create_invite(&self, invite: &InviteRecord) -> Result<()> {
        let mut same_target = Cond::any();
        if let Some(user_id) = &invite.user_id {
            same_target = same_target.add(Expr::col(ProjectInvites::UserId).eq(user_id.as_str()));
        }
        if let Some(email) = &invite.email {
            same_target = same_target.add(Expr::col(ProjectInvites::Email).eq(email.as_str()));
        }
        let replaced = Query::delete()
            .from_table(ProjectInvites::Table)
            .and_where(Expr::col(ProjectInvites::StreamId).eq(invite.project_id.as_str()))
            .cond_where(same_target)
            .to_owned();
        let insert = Query::insert()
            .into_table(ProjectInvites::Table)
            .columns(InviteRow::COLUMNS)
            .values([
                invite.id.as_str().into(),
                invite.project_id.as_str().into(),
                invite.user_id.clone().map(String::from).into(),
                invite.email.clone().into(),
                invite.role.name().into(),
                invite.token.clone().into(),
                invite.inviter_id.as_str().into(),
                invite.created_at.into(),
            ])
            .map_err(built)?
            .to_owned();
        let mut tx = self.pool.begin().await?;
        if invite.user_id.is_some() || invite.email.is_some() {
            tx.conn().run(&replaced).await?;
        }
        tx.conn().run(&insert).await?;
        tx.commit().await
    }

    async fn invite_by_id(&self, invite_id: &str) -> Result<Option<InviteRecord>> {
        let select = invites_where(Cond::all().add(Expr::col(ProjectInvites::Id).eq(invite_id)));
        let row: Option<InviteRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn invite_by_any_token(&self, token: &str) -> Result<Option<InviteRecord>> {
        let select = invites_where(Cond::all().add(Expr::col(ProjectInvites::Token).eq(token)));
        let row: Option<InviteRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn email_invite(&self, email: &str, token: &str) -> Result<Option<InviteRecord>> {
        let select = invites_where(
            Cond::all()
                .add(Expr::col(ProjectInvites::Email).eq(email))
                .add(Expr::col(ProjectInvites::UserId).is_null())
                .add(Expr::col(ProjectInvites::Token).eq(token)),
        );
        let row: Option<InviteRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn invite_by_token(&self, project_id: &str, token: &str) -> Result<Option<InviteRecord>> {
        let select = invites_where(
            Cond::all()
                .add(Expr::col(ProjectInvites::StreamId).eq(project_id))
                .add(Expr::col(ProjectInvites::Token).eq(token)),
        );
        let row: Option<InviteRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn project_invites(&self, project_id: &str) -> Result<Vec<InviteRecord>> {
        let select =
            invites_where(Cond::all().add(Expr::col(ProjectInvites::StreamId).eq(project_id)));
        convert(self.pool.all::<InviteRow, _>(&select).await?)
    }

    async fn user_invites(&self, user_id: &str) -> Result<Vec<InviteRecord>> {
        let select = invites_where(Cond::all().add(Expr::col(ProjectInvites::UserId).eq(user_id)));
        convert(self.pool.all::<InviteRow, _>(&select).await?)
    }

    async fn invites_sent_by(&self, inviter_id: &str) -> Result<Vec<InviteRecord>> {
        let select =
            invites_where(Cond::all().add(Expr::col(ProjectInvites::InviterId).eq(inviter_id)));
        convert(self.pool.all::<InviteRow, _>(&select).await?)
    }

    async fn delete_invite(&self, invite_id: &str) -> Result<bool> {
        let delete = Query::delete()
            .from_table(ProjectInvites::Table)
            .and_where(Expr::col(ProjectInvites::Id).eq(invite_id))
            .to_owned();
        Ok(self.pool.run(&delete).await? > 0)
    }

    async fn accept_invite(
        &self,
        invite: &InviteRecord,
        user_id: &str,
        now: Millis,
    ) -> Result<Acceptance> {
        // The delete comes first: it takes SQLite's write lock, and of two racing acceptances
        // only the one that deleted the row goes on.
        let spend = Query::delete()
            .from_table(ProjectInvites::Table)
            .and_where(Expr::col(ProjectInvites::Id).eq(invite.id.as_str()))
            .to_owned();
        let others = Query::delete()
            .from_table(ProjectInvites::Table)
            .and_where(Expr::col(ProjectInvites::StreamId).eq(invite.project_id.as_str()))
            .and_where(Expr::col(ProjectInvites::UserId).eq(user_id))
            .to_owned();
        let grant = Query::insert()
            .into_table(StreamAcl::Table)
            .columns([StreamAcl::StreamId, StreamAcl::UserId, StreamAcl::Role])
            .values([
                invite.project_id.as_str().into(),
                user_id.into(),
                invite.role.name().into(),
            ])
            .map_err(built)?
            .on_conflict(
                OnConflict::columns([StreamAcl::StreamId, StreamAcl::UserId])
                    .update_column(StreamAcl::Role)
                    .to_owned(),
            )
            .to_owned();
        let touch = Query::update()
            .table(Streams::Table)
            .value(Streams::UpdatedAt, now)
            .and_where(Expr::col(Streams::Id).eq(invite.project_id.as_str()))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        if tx.conn().run(&spend).await? == 0 {
            return Ok(Acceptance::Gone);
        }
        tx.conn().run(&others).await?;
        tx.conn().run(&grant).await?;
        tx.conn().run(&touch).await?;
        tx.commit().await?;
        Ok(Acceptance::Accepted)
    }

    async fn claim_invites(&self, email: &str, user_id: &str) -> Result<()> {
        let update = Query::update()
            .table(ProjectInvites::Table)
            .value(ProjectInvites::UserId, user_id)
            .and_where(Expr::col(ProjectInvites::Email).eq(email))
            .and_where(Expr::col(ProjectInvites::UserId).is_null())
            .to_owned();
        self.pool.run(&update).await?;
        Ok(())
    }

    async fn create_model(&self, m: &ModelRecord) -> Result<bool> {
        let insert = Query::insert()
            .into_table(Models::Table)
            .columns(ModelRow::COLUMNS)
            .values([
                String::from(m.id.clone()).into(),
                String::from(m.project_id.clone()).into(),
                m.name.clone().into(),
                m.description.clone().into(),
                m.author_id.clone().map(String::from).into(),
                m.created_at.into(),
                m.updated_at.into(),
            ])
            .map_err(built)?
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .to_owned();
        Ok(self.pool.run(&insert).await? > 0)
    }

    async fn model(&self, id: &str) -> Result<Option<ModelRecord>> {
        let select = by_id(Models::Table, Models::Id, &ModelRow::COLUMNS, id);
        let row: Option<ModelRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn model_by_name(&self, project_id: &str, name: &str) -> Result<Option<ModelRecord>> {
        let select = Query::select()
            .columns(ModelRow::COLUMNS)
            .from(Models::Table)
            .and_where(Expr::col(Models::StreamId).eq(project_id))
            .and_where(Expr::expr(Func::lower(Expr::col(Models::Name))).eq(name.to_lowercase()))
            .to_owned();
        let row: Option<ModelRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn update_model(&self, m: &ModelRecord) -> Result<bool> {
        let update = Query::update()
            .table(Models::Table)
            .values([
                (Models::Name, m.name.clone().into()),
                (Models::Description, m.description.clone().into()),
                (Models::UpdatedAt, m.updated_at.into()),
            ])
            .and_where(Expr::col(Models::Id).eq(m.id.as_str()))
            .to_owned();
        match self.pool.try_run(&update).await? {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db::fault(e)),
        }
    }

    async fn delete_model(&self, id: &str) -> Result<bool> {
        let delete = Query::delete()
            .from_table(Models::Table)
            .and_where(Expr::col(Models::Id).eq(id))
            .to_owned();
        Ok(self.pool.run(&delete).await? > 0)
    }

    async fn project_models(
        &self,
        project_id: &str,
        filter: &ModelFilter,
        request: &PageRequest,
    ) -> Result<Page<ModelRecord>> {
        let model_id = || Expr::col((Models::Table, Models::Id));
        let versions_of_model = || {
            Query::select()
                .expr(Expr::val(1))
                .from(Versions::Table)
                .and_where(
                    Expr::col((Versions::Table, Versions::ModelId))
                        .equals((Models::Table, Models::Id)),
                )
                .to_owned()
        };
        let mut base = Query::select();
        base.from(Models::Table)
            .and_where(Expr::col((Models::Table, Models::StreamId)).eq(project_id));
        if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
            base.and_where(contains((Models::Table, Models::Name), search.trim()));
        }
        if let Some(ids) = &filter.ids {
            base.and_where(one_of((Models::Table, Models::Id), ids));
        }
        if let Some(ids) = filter.exclude_ids.as_ref().filter(|ids| !ids.is_empty()) {
            base.and_where(model_id().is_not_in(ids.iter().cloned()));
        }
        if filter.only_with_versions {
            base.and_where(Expr::exists(versions_of_model()));
        }
        if let Some(authors) = &filter.authors {
            base.and_where(one_of((Models::Table, Models::AuthorId), authors));
        }
        if let Some(apps) = &filter.source_apps {
            let mut from_apps = versions_of_model();
            from_apps.and_where(one_of((Versions::Table, Versions::SourceApplication), apps));
            base.and_where(Expr::exists(from_apps));
        }
        page::<ModelRow, _>(
            &self.pool,
            &base,
            |s| {
                s.columns(qualified(Models::Table, &ModelRow::COLUMNS));
            },
            Keyset::new(Models::Table, Models::UpdatedAt, Models::Id),
            request,
        )
        .await
    }

    async fn create_version(&self, v: &VersionRecord) -> Result<()> {
        let parents =
            serde_json::to_string(&v.parents).map_err(|e| Error::Internal(e.to_string()))?;
        let insert = Query::insert()
            .into_table(Versions::Table)
            .columns(VersionRow::COLUMNS)
            .values([
                String::from(v.id.clone()).into(),
                String::from(v.project_id.clone()).into(),
                String::from(v.model_id.clone()).into(),
                v.author_id.clone().map(String::from).into(),
                v.referenced_object.clone().into(),
                v.message.clone().into(),
                v.source_application.clone().into(),
                v.total_children_count.into(),
                parents.into(),
                v.created_at.into(),
            ])
            .map_err(built)?
            .to_owned();
        let touch_model = Query::update()
            .table(Models::Table)
            .value(Models::UpdatedAt, v.created_at)
            .and_where(Expr::col(Models::Id).eq(v.model_id.as_str()))
            .to_owned();
        let touch_project = Query::update()
            .table(Streams::Table)
            .value(Streams::UpdatedAt, v.created_at)
            .and_where(Expr::col(Streams::Id).eq(v.project_id.as_str()))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        tx.conn().run(&insert).await?;
        tx.conn().run(&touch_model).await?;
        tx.conn().run(&touch_project).await?;
        tx.commit().await
    }

    async fn version(&self, id: &str) -> Result<Option<VersionRecord>> {
        let select = by_id(Versions::Table, Versions::Id, &VersionRow::COLUMNS, id);
        let row: Option<VersionRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn update_version_message(&self, id: &str, message: Option<&str>) -> Result<bool> {
        let update = Query::update()
            .table(Versions::Table)
            .value(Versions::Message, message)
            .and_where(Expr::col(Versions::Id).eq(id))
            .to_owned();
        Ok(self.pool.run(&update).await? > 0)
    }

    async fn delete_versions(&self, project_id: &str, ids: &[String]) -> Result<u64> {
        let delete = Query::delete()
            .from_table(Versions::Table)
            .and_where(Expr::col(Versions::StreamId).eq(project_id))
            .and_where(one_of(Versions::Id, ids))
            .to_owned();
        self.pool.run(&delete).await
    }

    async fn versions(
        &self,
        filter: &VersionFilter,
        request: &PageRequest,
    ) -> Result<Page<VersionRecord>> {
        let mut base = Query::select();
        base.from(Versions::Table);
        for (column, value) in [
            (Versions::StreamId, &filter.project_id),
            (Versions::ModelId, &filter.model_id),
            (Versions::AuthorId, &filter.author_id),
        ] {
            if let Some(value) = value {
                base.and_where(Expr::col(column).eq(value.clone()));
            }
        }
        if let Some(ids) = &filter.ids {
            base.and_where(one_of(Versions::Id, ids));
        }
        if let Some(ids) = &filter.project_ids {
            base.and_where(one_of(Versions::StreamId, ids));
        }
        if let Some(user_id) = &filter.readable_by {
            let member = Query::select()
                .column(StreamAcl::StreamId)
                .from(StreamAcl::Table)
                .and_where(Expr::col(StreamAcl::UserId).eq(user_id.clone()))
                .to_owned();
            let public = Query::select()
                .column(Streams::Id)
                .from(Streams::Table)
                .and_where(Expr::col(Streams::Visibility).eq(Visibility::Public.as_str()))
                .to_owned();
            base.cond_where(
                Cond::any()
                    .add(Expr::col(Versions::StreamId).in_subquery(member))
                    .add(Expr::col(Versions::StreamId).in_subquery(public)),
            );
        }
        page::<VersionRow, _>(
            &self.pool,
            &base,
            |s| {
                s.columns(VersionRow::COLUMNS);
            },
            Keyset::new(Versions::Table, Versions::CreatedAt, Versions::Id),
            request,
        )
        .await
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        let select = by_id(ServerApps::Table, ServerApps::Id, &AppRow::COLUMNS, id);
        let row: Option<AppRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn upsert_default_app(&self, a: &AppRecord) -> Result<()> {
        self.insert_app(a, true).await
    }

    async fn create_app(&self, a: &AppRecord) -> Result<()> {
        self.insert_app(a, false).await
    }

    async fn update_app(&self, a: &AppRecord) -> Result<Option<Vec<String>>> {
        let update = Query::update()
            .table(ServerApps::Table)
            .values([
                (ServerApps::Name, a.name.clone().into()),
                (ServerApps::Description, a.description.clone().into()),
                (
                    ServerApps::TermsAndConditionsLink,
                    a.terms_and_conditions_link.clone().into(),
                ),
                (ServerApps::Logo, a.logo.clone().into()),
                (ServerApps::Public, a.public.into()),
                (ServerApps::Confidential, a.confidential.into()),
                (ServerApps::RedirectUrl, a.redirect_url.clone().into()),
                (ServerApps::Scopes, a.scopes.to_names().into()),
            ])
            .and_where(Expr::col(ServerApps::Id).eq(a.id.as_str()))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        if tx.conn().run(&update).await? == 0 {
            return Ok(None);
        }
        let revoked = revoke_grants(&mut tx, a.id.as_str(), None).await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    async fn set_app_secret(&self, id: &str, secret: &str) -> Result<bool> {
        let update = Query::update()
            .table(ServerApps::Table)
            .value(ServerApps::Secret, secret)
            .and_where(Expr::col(ServerApps::Id).eq(id))
            .to_owned();
        Ok(self.pool.run(&update).await? > 0)
    }

    async fn delete_app(&self, id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let tokens = delete_returning_ids(
            ApiTokens::Table,
            ApiTokens::Id,
            Cond::all().add(Expr::col(ApiTokens::AppId).eq(id)),
        );
        let revoked = ids(tx.conn().all(&tokens).await?);
        let codes = Query::delete()
            .from_table(AccessCodes::Table)
            .and_where(Expr::col(AccessCodes::AppId).eq(id))
            .to_owned();
        let refresh = Query::delete()
            .from_table(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::AppId).eq(id))
            .to_owned();
        let app = Query::delete()
            .from_table(ServerApps::Table)
            .and_where(Expr::col(ServerApps::Id).eq(id))
            .to_owned();
        tx.conn().run(&codes).await?;
        tx.conn().run(&refresh).await?;
        tx.conn().run(&app).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn revoke_app_grants(&self, app_id: &str, user_id: Option<&str>) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let revoked = revoke_grants(&mut tx, app_id, user_id).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn apps_by_author(&self, author_id: &str) -> Result<Vec<AppRecord>> {
        self.apps_where(
            Cond::all().add(Expr::col(ServerApps::AuthorId).eq(author_id)),
            &[ServerApps::CreatedAt, ServerApps::Id],
        )
        .await
    }

    async fn app_grants(&self, user_id: &str) -> Result<Vec<AppGrant>> {
        let tokens = Query::select()
            .columns([
                ApiTokens::AppId,
                ApiTokens::Scopes,
                ApiTokens::CreatedAt,
                ApiTokens::LastUsed,
            ])
            .from(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::OwnerId).eq(user_id))
            .and_where(Expr::col(ApiTokens::AppId).is_not_null())
            .to_owned();
        // A refresh token has no use of its own: its creation stands for both times.
        let refresh = Query::select()
            .columns([
                RefreshTokens::AppId,
                RefreshTokens::Scopes,
                RefreshTokens::CreatedAt,
            ])
            .expr_as(
                Expr::col(RefreshTokens::CreatedAt),
                sea_query::Alias::new("last_used"),
            )
            .from(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::UserId).eq(user_id))
            .to_owned();
        let mut rows: Vec<GrantRow> = self.pool.all(&tokens).await?;
        rows.extend(self.pool.all::<GrantRow, _>(&refresh).await?);
        let mut grants: Vec<AppGrant> = Vec::new();
        for row in rows {
            let granted = scopes(&row.scopes);
            if let Some(grant) = grants.iter_mut().find(|g| g.app.id == row.app_id) {
                grant.scopes = grant.scopes.union(granted);
                grant.authorized_at = grant.authorized_at.min(row.created_at);
                grant.last_used = grant.last_used.max(row.last_used);
                continue;
            }
            let Some(app) = self.app(&row.app_id).await? else {
                continue;
            };
            grants.push(AppGrant {
                app,
                scopes: granted,
                authorized_at: row.created_at,
                last_used: row.last_used,
            });
        }
        grants.sort_by(|a, b| a.app.name.cmp(&b.app.name).then(a.app.id.cmp(&b.app.id)));
        Ok(grants)
    }

    async fn app_user_count(&self, app_id: &str) -> Result<i64> {
        let with_tokens = Query::select()
            .column(ApiTokens::OwnerId)
            .from(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::AppId).eq(app_id))
            .to_owned();
        let with_refresh = Query::select()
            .column(RefreshTokens::UserId)
            .from(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::AppId).eq(app_id))
            .to_owned();
        let count = Query::select()
            .expr(Func::count(Expr::col(Asterisk)))
            .from(Users::Table)
            .cond_where(
                Cond::any()
                    .add(Expr::col(Users::Id).in_subquery(with_tokens))
                    .add(Expr::col(Users::Id).in_subquery(with_refresh)),
            )
            .to_owned();
        let Int(users) = self.pool.one(&count).await?;
        Ok(users)
    }

    async fn authorized_apps(&self, user_id: &str) -> Result<Vec<AppRecord>> {
        let with_tokens = Query::select()
            .column(ApiTokens::AppId)
            .from(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::OwnerId).eq(user_id))
            .and_where(Expr::col(ApiTokens::AppId).is_not_null())
            .to_owned();
        let with_refresh = Query::select()
            .column(RefreshTokens::AppId)
            .from(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::UserId).eq(user_id))
            .to_owned();
        self.apps_where(
            Cond::any()
                .add(Expr::col(ServerApps::Id).in_subquery(with_tokens))
                .add(Expr::col(ServerApps::Id).in_subquery(with_refresh)),
            &[ServerApps::Name, ServerApps::Id],
        )
        .await
    }

    async fn public_apps(&self) -> Result<Vec<AppRecord>> {
        self.apps_where(
            Cond::all().add(Expr::col(ServerApps::Public).eq(true)),
            &[ServerApps::CreatedAt, ServerApps::Id],
        )
        .await
    }

    async fn insert_token(&self, token: &NewToken) -> Result<()> {
        self.pool.batch(&token_writes(token, None)?).await?;
        Ok(())
    }

    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
        let token = Query::select()
            .columns(TokenAuthRow::columns())
            .from(ApiTokens::Table)
            .inner_join(
                Users::Table,
                Expr::col((Users::Table, Users::Id)).equals((ApiTokens::Table, ApiTokens::OwnerId)),
            )
            .and_where(Expr::col((ApiTokens::Table, ApiTokens::Id)).eq(id))
            .to_owned();
        let resources = Query::select()
            .columns([TokenResources::ResourceType, TokenResources::ResourceId])
            .from(TokenResources::Table)
            .and_where(Expr::col(TokenResources::TokenId).eq(id))
            .order_by(TokenResources::ResourceType, Order::Asc)
            .order_by(TokenResources::ResourceId, Order::Asc)
            .to_owned();
        // Both reads on one connection: one hand-out from the pool per cache miss.
        let mut conn = self.pool.acquire().await?;
        let Some(row) = conn.conn().optional::<TokenAuthRow>(&token).await? else {
            return Ok(None);
        };
        let rules: Vec<ResourceRow> = conn.conn().all(&resources).await?;
        row.into_record(rules.into_iter().map(Into::into).collect())
            .map(Some)
    }

    async fn personal_tokens(&self, owner_id: &str) -> Result<Vec<TokenListing>> {
        let select = Query::select()
            .columns(ListingRow::COLUMNS)
            .from(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::OwnerId).eq(owner_id))
            .and_where(Expr::col(ApiTokens::Kind).eq(TokenKind::Personal.as_str()))
            .order_by(ApiTokens::CreatedAt, Order::Asc)
            .order_by(ApiTokens::Id, Order::Asc)
            .to_owned();
        let rows: Vec<ListingRow> = self.pool.all(&select).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool> {
        let mut delete = Query::delete()
            .from_table(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::Id).eq(id))
            .to_owned();
        if let Some(owner) = owner_id {
            delete.and_where(Expr::col(ApiTokens::OwnerId).eq(owner));
        }
        Ok(self.pool.run(&delete).await? > 0)
    }

    async fn replace_token(&self, old_id: &str, owner_id: &str, new: &NewToken) -> Result<bool> {
        let delete = Query::delete()
            .from_table(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::Id).eq(old_id))
            .and_where(Expr::col(ApiTokens::OwnerId).eq(owner_id))
            .and_where(Expr::col(ApiTokens::Kind).eq(TokenKind::Personal.as_str()))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        if tx.conn().run(&delete).await? == 0 {
            return Ok(false);
        }
        insert_token(&mut tx, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn record_token_use(&self, uses: &[(String, Millis)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for (id, at) in uses {
            let update = Query::update()
                .table(ApiTokens::Table)
                .value(ApiTokens::LastUsed, *at)
                .and_where(Expr::col(ApiTokens::Id).eq(id.clone()))
                .and_where(Expr::col(ApiTokens::LastUsed).lt(*at))
                .to_owned();
            tx.conn().run(&update).await?;
        }
        tx.commit().await
    }

    async fn insert_code(&self, code: &AccessCode) -> Result<()> {
        let insert = Query::insert()
            .into_table(AccessCodes::Table)
            .columns([
                AccessCodes::Digest,
                AccessCodes::AppId,
                AccessCodes::UserId,
                AccessCodes::Challenge,
                AccessCodes::ChallengeMethod,
                AccessCodes::Scopes,
                AccessCodes::CreatedAt,
                AccessCodes::Lifespan,
                AccessCodes::Nonce,
                AccessCodes::AuthTime,
            ])
            .values([
                code.digest.to_hex().into(),
                String::from(code.app_id.clone()).into(),
                String::from(code.user_id.clone()).into(),
                code.challenge.clone().into(),
                code.method.as_str().into(),
                code.scopes.map(ScopeSet::to_names).into(),
                code.created_at.into(),
                code.lifespan.into(),
                code.nonce.clone().into(),
                code.auth_time.into(),
            ])
            .map_err(built)?
            .to_owned();
        self.pool.run(&insert).await?;
        Ok(())
    }

    async fn code(&self, digest: &TokenDigest) -> Result<Option<AccessCode>> {
        let select = by_id(
            AccessCodes::Table,
            AccessCodes::Digest,
            &CodeRow::COLUMNS,
            &digest.to_hex(),
        );
        let row: Option<CodeRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn spend_code(
        &self,
        digest: &TokenDigest,
        family_id: &str,
        now: Millis,
        pair: Option<(&NewToken, &NewRefresh)>,
    ) -> Result<Spend> {
        let digest = digest.to_hex();
        let spend = Query::update()
            .table(AccessCodes::Table)
            .values([
                (AccessCodes::UsedAt, now.into()),
                (AccessCodes::FamilyId, family_id.into()),
            ])
            .and_where(Expr::col(AccessCodes::UsedAt).is_null())
            .to_owned();
        let grant = Grant {
            table: AccessCodes::Table,
            key: AccessCodes::Digest,
            id: digest.clone(),
            spent_by: AccessCodes::SpentBy,
        };
        if !spend_for_pair(&self.pool, grant, spend, pair).await? {
            // Whoever spent it first wrote its family, and it never changes after.
            let family = Query::select()
                .column(AccessCodes::FamilyId)
                .from(AccessCodes::Table)
                .and_where(Expr::col(AccessCodes::Digest).eq(digest))
                .to_owned();
            let row: Option<MaybeText> = self.pool.optional(&family).await?;
            return Ok(Spend::AlreadySpent {
                family_id: row.and_then(|MaybeText(f)| f),
            });
        }
        Ok(Spend::Spent)
    }

    async fn purge_expired_codes(&self, now: Millis) -> Result<()> {
        let delete = Query::delete()
            .from_table(AccessCodes::Table)
            .and_where(
                Expr::expr(Expr::col(AccessCodes::CreatedAt).add(Expr::col(AccessCodes::Lifespan)))
                    .lt(now),
            )
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn refresh_token(&self, id: &str) -> Result<Option<RefreshRecord>> {
        let select = by_id(
            RefreshTokens::Table,
            RefreshTokens::Id,
            &RefreshRow::COLUMNS,
            id,
        );
        let row: Option<RefreshRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn delete_refresh_token(&self, id: &str) -> Result<()> {
        let delete = Query::delete()
            .from_table(RefreshTokens::Table)
            .and_where(Expr::col(RefreshTokens::Id).eq(id))
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        now: Millis,
        token: &NewToken,
        refresh: &NewRefresh,
    ) -> Result<Rotation> {
        let spend = Query::update()
            .table(RefreshTokens::Table)
            .value(RefreshTokens::UsedAt, now)
            .and_where(Expr::col(RefreshTokens::UsedAt).is_null())
            .to_owned();
        let grant = Grant {
            table: RefreshTokens::Table,
            key: RefreshTokens::Id,
            id: old_id.to_owned(),
            spent_by: RefreshTokens::SpentBy,
        };
        if !spend_for_pair(&self.pool, grant, spend, Some((token, refresh))).await? {
            return Ok(Rotation::AlreadyUsed);
        }
        Ok(Rotation::Rotated)
    }

    async fn revoke_family(&self, family_id: &str) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let revoked = delete_family(&mut tx, family_id).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn sign_out(&self, token_id: &str, family_id: Option<&str>) -> Result<Vec<String>> {
        let token = delete_returning_ids(
            ApiTokens::Table,
            ApiTokens::Id,
            Cond::all().add(Expr::col(ApiTokens::Id).eq(token_id)),
        );
        let mut tx = self.pool.begin().await?;
        let mut revoked = ids(tx.conn().all(&token).await?);
        if let Some(family_id) = family_id {
            revoked.extend(delete_family(&mut tx, family_id).await?);
        }
        tx.commit().await?;
        Ok(revoked)
    }

    async fn sign_in_failures(
        &self,
        account: &str,
        address: &str,
        since: Millis,
    ) -> Result<FailureCounts> {
        let this_address = || Expr::col(SignInFailures::Address).eq(address);
        let bigint = || sea_query::Alias::new("BIGINT");
        // SUM over BIGINT is NUMERIC in PostgreSQL: cast back, so both backends answer integers.
        let total = |expr: SimpleExpr| {
            Func::cast_as(Func::coalesce([expr, Expr::val(0i64).into()]), bigint())
        };
        let select = Query::select()
            .expr_as(
                total(
                    Func::sum(
                        Expr::case(this_address(), Expr::col(SignInFailures::Failures))
                            .finally(0i64),
                    )
                    .into(),
                ),
                sea_query::Alias::new("pair"),
            )
            .expr_as(
                total(
                    Func::max(
                        Expr::case(this_address(), Expr::col(SignInFailures::LastFailureAt))
                            .finally(0i64),
                    )
                    .into(),
                ),
                sea_query::Alias::new("pair_last"),
            )
            .expr_as(
                total(Func::sum(Expr::col(SignInFailures::Failures)).into()),
                sea_query::Alias::new("account"),
            )
            .expr_as(
                total(Func::max(Expr::col(SignInFailures::LastFailureAt)).into()),
                sea_query::Alias::new("account_last"),
            )
            .from(SignInFailures::Table)
            .and_where(Expr::col(SignInFailures::Account).eq(account))
            .and_where(Expr::col(SignInFailures::LastFailureAt).gte(since))
            .to_owned();
        let row: FailureRow = self.pool.one(&select).await?;
        Ok(FailureCounts {
            pair: row.pair,
            pair_last: row.pair_last,
            account: row.account,
            account_last: row.account_last,
        })
    }

    async fn count_sign_in_attempt(
        &self,
        account: &str,
        address: &str,
        now: Millis,
        since: Millis,
    ) -> Result<i64> {
        let stale = Expr::col((SignInFailures::Table, SignInFailures::LastFailureAt)).lt(since);
        let next: SimpleExpr = Expr::case(stale, 1i64)
            .finally(Expr::col((SignInFailures::Table, SignInFailures::Failures)).add(1i64))
            .into();
        let upsert = Query::insert()
            .into_table(SignInFailures::Table)
            .columns([
                SignInFailures::Account,
                SignInFailures::Address,
                SignInFailures::Failures,
                SignInFailures::LastFailureAt,
            ])
            .values([account.into(), address.into(), 1i64.into(), now.into()])
            .map_err(built)?
            .on_conflict(
                OnConflict::columns([SignInFailures::Account, SignInFailures::Address])
                    .values([
                        (SignInFailures::Failures, next),
                        (SignInFailures::LastFailureAt, now.into()),
                    ])
                    .to_owned(),
            )
            .returning_col(SignInFailures::Failures)
            .to_owned();
        let Int(failures) = self.pool.one(&upsert).await?;
        Ok(failures)
    }

    async fn clear_sign_in_failures(&self, account: &str, address: &str) -> Result<()> {
        let delete = Query::delete()
            .from_table(SignInFailures::Table)
            .and_where(Expr::col(SignInFailures::Account).eq(account))
            .and_where(Expr::col(SignInFailures::Address).eq(address))
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn purge_sign_in_failures(&self, before: Millis) -> Result<()> {
        let delete = Query::delete()
            .from_table(SignInFailures::Table)
            .and_where(Expr::col(SignInFailures::LastFailureAt).lt(before))
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn record_session(
        &self,
        token_id: &str,
        user_id: &str,
        address: Option<&str>,
        user_agent: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        let insert = Query::insert()
            .into_table(Sessions::Table)
            .columns([
                Sessions::TokenId,
                Sessions::UserId,
                Sessions::Address,
                Sessions::UserAgent,
                Sessions::CreatedAt,
            ])
            .values([
                token_id.into(),
                user_id.into(),
                address.map(str::to_owned).into(),
                user_agent.map(str::to_owned).into(),
                now.into(),
            ])
            .map_err(built)?
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .to_owned();
        self.pool.run(&insert).await?;
        Ok(())
    }

    async fn sessions(&self, user_id: &str, web_app_id: &str) -> Result<Vec<SessionRecord>> {
        let select = Query::select()
            .columns(qualified(
                ApiTokens::Table,
                &[
                    ApiTokens::Id,
                    ApiTokens::CreatedAt,
                    ApiTokens::LastUsed,
                    ApiTokens::Lifespan,
                ],
            ))
            .columns(qualified(
                Sessions::Table,
                &[Sessions::Address, Sessions::UserAgent],
            ))
            .from(ApiTokens::Table)
            .left_join(
                Sessions::Table,
                Expr::col((Sessions::Table, Sessions::TokenId))
                    .equals((ApiTokens::Table, ApiTokens::Id)),
            )
            .and_where(Expr::col((ApiTokens::Table, ApiTokens::OwnerId)).eq(user_id))
            .and_where(Expr::col((ApiTokens::Table, ApiTokens::AppId)).eq(web_app_id))
            .order_by((ApiTokens::Table, ApiTokens::CreatedAt), Order::Desc)
            .order_by((ApiTokens::Table, ApiTokens::Id), Order::Desc)
            .to_owned();
        let rows: Vec<SessionRow> = self.pool.all(&select).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn end_sessions(
        &self,
        user_id: &str,
        web_app_id: &str,
        which: SessionsToEnd<'_>,
    ) -> Result<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let revoked = end_sessions(&mut tx, user_id, web_app_id, which).await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn record_activity(&self, lines: &[ActivityRecord]) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        // A line of a user deleted meanwhile has nowhere to go (its row would break the foreign
        // key): keep only the lines of users that exist.
        let mut users: Vec<String> = lines.iter().map(|l| l.user_id.to_string()).collect();
        users.sort();
        users.dedup();
        let mut known = std::collections::HashSet::new();
        for chunk in users.chunks(500) {
            let select = Query::select()
                .column(Users::Id)
                .from(Users::Table)
                .and_where(one_of(Users::Id, chunk))
                .to_owned();
            known.extend(ids(self.pool.all(&select).await?));
        }
        let kept: Vec<ActivityRecord> = lines
            .iter()
            .filter(|l| known.contains(&*l.user_id))
            .cloned()
            .collect();
        // A few hundred rows per statement keeps well under either backend's parameter limit.
        for chunk in kept.chunks(500) {
            self.pool.run(&activity_insert(chunk)?).await?;
        }
        Ok(())
    }

    async fn activity(
        &self,
        filter: &ActivityFilter,
        request: &PageRequest,
    ) -> Result<Page<ActivityRecord>> {
        let mut base = Query::select();
        base.from(Activity::Table)
            .and_where(Expr::col(Activity::UserId).eq(filter.user_id.to_string()));
        if !filter.kinds.is_empty() {
            let kinds: Vec<String> = filter.kinds.iter().map(|k| k.as_str().to_owned()).collect();
            base.and_where(one_of(Activity::Kind, &kinds));
        }
        page::<ActivityRow, _>(
            &self.pool,
            &base,
            |s| {
                s.columns(ActivityRow::COLUMNS);
            },
            Keyset::new(Activity::Table, Activity::CreatedAt, Activity::Id),
            request,
        )
        .await
    }

    async fn purge_activity(&self, before: Millis) -> Result<u64> {
        // In batches: after the retention is shortened, a large backlog never holds the (SQLite)
        // writer for long in one statement.
        const BATCH: u64 = 5_000;
        let old = Query::select()
            .column(Activity::Id)
            .from(Activity::Table)
            .and_where(Expr::col(Activity::CreatedAt).lt(before))
            .limit(BATCH)
            .to_owned();
        let delete = Query::delete()
            .from_table(Activity::Table)
            .and_where(Expr::col(Activity::Id).in_subquery(old))
            .to_owned();
        // An address first seen longer ago than that is "new" again: a line about it would be
        // gone anyway.
        let addresses = Query::delete()
            .from_table(TokenAddresses::Table)
            .and_where(Expr::col(TokenAddresses::FirstUsed).lt(before))
            .to_owned();
        self.pool.run(&addresses).await?;
        let mut purged = 0;
        loop {
            let deleted = self.pool.run(&delete).await?;
            purged += deleted;
            if deleted < BATCH {
                return Ok(purged);
            }
        }
    }

    async fn note_token_addresses(&self, sightings: &[(&str, &str, Millis)]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut first = Vec::with_capacity(sightings.len());
        for &(token_id, address, at) in sightings {
            // Only for a token that still exists: the select inserts nothing otherwise.
            let exists = Query::select()
                .expr(Expr::val(token_id))
                .expr(Expr::val(address))
                .expr(Expr::val(at))
                .from(ApiTokens::Table)
                .and_where(Expr::col(ApiTokens::Id).eq(token_id))
                .to_owned();
            let insert = Query::insert()
                .into_table(TokenAddresses::Table)
                .columns([
                    TokenAddresses::TokenId,
                    TokenAddresses::Address,
                    TokenAddresses::FirstUsed,
                ])
                .select_from(exists)
                .map_err(built)?
                .on_conflict(OnConflict::new().do_nothing().to_owned())
                .to_owned();
            first.push(tx.conn().run(&insert).await? > 0);
        }
        tx.commit().await?;
        Ok(first)
    }

    async fn server_info(&self) -> Result<Option<ServerInfoRecord>> {
        let select = by_id(
            ServerInfo::Table,
            ServerInfo::Id,
            &ServerInfoRow::COLUMNS,
            SERVER_INFO_ID,
        );
        let row: Option<ServerInfoRow> = self.pool.optional(&select).await?;
        Ok(row.map(Into::into))
    }

    async fn set_server_info(&self, info: &ServerInfoRecord, now: Millis) -> Result<()> {
        let values = [
            info.name.clone().into(),
            info.company.clone().into(),
            info.description.clone().into(),
            info.admin_contact.clone().into(),
            info.terms_of_service.clone().into(),
            now.into(),
        ];
        let insert = Query::insert()
            .into_table(ServerInfo::Table)
            .columns([
                ServerInfo::Id,
                ServerInfo::Name,
                ServerInfo::Company,
                ServerInfo::Description,
                ServerInfo::AdminContact,
                ServerInfo::TermsOfService,
                ServerInfo::UpdatedAt,
            ])
            .values(std::iter::once(SERVER_INFO_ID.into()).chain(values))
            .map_err(built)?
            .on_conflict(
                OnConflict::column(ServerInfo::Id)
                    .update_columns([
                        ServerInfo::Name,
                        ServerInfo::Company,
                        ServerInfo::Description,
                        ServerInfo::AdminContact,
                        ServerInfo::TermsOfService,
                        ServerInfo::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .to_owned();
        self.pool.run(&insert).await?;
        Ok(())
    }

    async fn list_users(
        &self,
        query: Option<&str>,
        request: &PageRequest,
    ) -> Result<Page<UserRecord>> {
        let mut base = Query::select();
        base.from(Users::Table);
        if let Some(text) = query.map(str::trim).filter(|t| !t.is_empty()) {
            base.cond_where(
                Cond::any()
                    .add(contains(Users::Name, text))
                    .add(contains(Users::Email, text)),
            );
        }
        user_page(&self.pool, &base, request).await
    }

    async fn set_server_role(&self, user_id: &str, role: ServerRole) -> Result<ServerRoleChange> {
        let admin = ServerRole::Admin.name();
        // The administrators' rows, locked (on PostgreSQL) until this transaction ends: two
        // demotions of the last two administrators cannot both see the other one still there.
        let admins = Query::select()
            .column(Users::Id)
            .from(Users::Table)
            .and_where(Expr::col(Users::Role).eq(admin))
            .lock(sea_query::LockType::Update)
            .to_owned();
        let update = Query::update()
            .table(Users::Table)
            .value(Users::Role, role.name())
            .and_where(Expr::col(Users::Id).eq(user_id))
            .to_owned();
        let select = by_id(Users::Table, Users::Id, &UserRow::COLUMNS, user_id);
        // Write first: on SQLite the transaction then holds the write lock before it reads, so
        // no other write can slip in between (a read-then-write transaction would fail busy).
        let touch = Query::update()
            .table(Users::Table)
            .value(Users::Role, Expr::col(Users::Role))
            .and_where(Expr::col(Users::Id).eq(user_id))
            .to_owned();
        let mut tx = self.pool.begin().await?;
        if tx.conn().run(&touch).await? == 0 {
            return Ok(ServerRoleChange::NoSuchUser);
        }
        let admins = ids(tx.conn().all(&admins).await?);
        if role != ServerRole::Admin && admins.len() <= 1 && admins.iter().any(|a| a == user_id) {
            return Ok(ServerRoleChange::LastAdmin);
        }
        tx.conn().run(&update).await?;
        let row: UserRow = tx.conn().one(&select).await?;
        tx.commit().await?;
        Ok(ServerRoleChange::Changed(Box::new(row.try_into()?)))
    }

    async fn user_token_ids(&self, user_id: &str) -> Result<Vec<String>> {
        let select = Query::select()
            .column(ApiTokens::Id)
            .from(ApiTokens::Table)
            .and_where(Expr::col(ApiTokens::OwnerId).eq(user_id))
            .to_owned();
        Ok(ids(self.pool.all(&select).await?))
    }

    async fn insert_device_grant(&self, grant: &DeviceGrant) -> Result<bool> {
        let insert = Query::insert()
            .into_table(DeviceGrants::Table)
            .columns(DeviceGrantRow::COLUMNS)
            .values([
                grant.device_digest.to_hex().into(),
                grant.user_code_digest.clone().into(),
                String::from(grant.app_id.clone()).into(),
                grant.scopes.to_names().into(),
                grant.created_at.into(),
                grant.lifespan.into(),
                grant.interval.into(),
                grant.polled_at.into(),
                grant.decision.as_str().into(),
                grant.user_id.clone().map(String::from).into(),
                grant.auth_time.into(),
                None::<i64>.into(),
            ])
            .map_err(built)?
            .to_owned();
        match self.pool.try_run(&insert).await? {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db::fault(e)),
        }
    }

    async fn device_grant(&self, device_digest: &TokenDigest) -> Result<Option<DeviceGrant>> {
        let select = by_id(
            DeviceGrants::Table,
            DeviceGrants::DeviceDigest,
            &DeviceGrantRow::COLUMNS,
            &device_digest.to_hex(),
        );
        let row: Option<DeviceGrantRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn device_grant_by_user_code(
        &self,
        user_code_digest: &str,
    ) -> Result<Option<DeviceGrant>> {
        let select = by_id(
            DeviceGrants::Table,
            DeviceGrants::UserCodeDigest,
            &DeviceGrantRow::COLUMNS,
            user_code_digest,
        );
        let row: Option<DeviceGrantRow> = self.pool.optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    async fn decide_device_grant(
        &self,
        user_code_digest: &str,
        decision: DeviceDecision,
        user_id: &str,
        scopes: ScopeSet,
        auth_time: Millis,
    ) -> Result<bool> {
        let update = Query::update()
            .table(DeviceGrants::Table)
            .values([
                (DeviceGrants::Decision, decision.as_str().into()),
                (DeviceGrants::UserId, user_id.into()),
                (DeviceGrants::Scopes, scopes.to_names().into()),
                (DeviceGrants::AuthTime, auth_time.into()),
            ])
            .and_where(Expr::col(DeviceGrants::UserCodeDigest).eq(user_code_digest))
            .and_where(Expr::col(DeviceGrants::Decision).is_null())
            .to_owned();
        Ok(self.pool.run(&update).await? == 1)
    }

    async fn note_device_poll(
        &self,
        device_digest: &TokenDigest,
        now: Millis,
        interval: Millis,
    ) -> Result<()> {
        let update = Query::update()
            .table(DeviceGrants::Table)
            .values([
                (DeviceGrants::PolledAt, now.into()),
                (DeviceGrants::IntervalMs, interval.into()),
            ])
            .and_where(Expr::col(DeviceGrants::DeviceDigest).eq(device_digest.to_hex()))
            .to_owned();
        self.pool.run(&update).await?;
        Ok(())
    }

    async fn spend_device_grant(
        &self,
        device_digest: &TokenDigest,
        (token, refresh): (&NewToken, &NewRefresh),
    ) -> Result<bool> {
        let spend = Query::update()
            .table(DeviceGrants::Table)
            .value(DeviceGrants::SpentAt, token.created_at)
            .and_where(Expr::col(DeviceGrants::SpentAt).is_null())
            .and_where(Expr::col(DeviceGrants::Decision).eq("allowed"))
            .to_owned();
        let grant = Grant {
            table: DeviceGrants::Table,
            key: DeviceGrants::DeviceDigest,
            id: device_digest.to_hex(),
            spent_by: DeviceGrants::SpentBy,
        };
        spend_for_pair(&self.pool, grant, spend, Some((token, refresh))).await
    }

    async fn purge_expired_device_grants(&self, now: Millis) -> Result<()> {
        let delete = Query::delete()
            .from_table(DeviceGrants::Table)
            .and_where(
                Expr::expr(
                    Expr::col(DeviceGrants::CreatedAt).add(Expr::col(DeviceGrants::Lifespan)),
                )
                .lt(now),
            )
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let select = Query::select()
            .columns(SigningKeyRow::COLUMNS)
            .from(SigningKeys::Table)
            .order_by(SigningKeys::Generation, Order::Asc)
            .to_owned();
        let rows: Vec<SigningKeyRow> = self.pool.all(&select).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
        older_retire_at: Millis,
    ) -> Result<bool> {
        let insert = Query::insert()
            .into_table(SigningKeys::Table)
            .columns(SigningKeyRow::COLUMNS)
            .values([
                key.kid.clone().into(),
                key.generation.into(),
                key.algorithm.clone().into(),
                key.public_jwk.clone().into(),
                key.sealed_private_key.clone().into(),
                key.created_at.into(),
                key.active_from.into(),
                key.retires_at.into(),
            ])
            .map_err(built)?
            .to_owned();
        let retire = Query::update()
            .table(SigningKeys::Table)
            .value(SigningKeys::RetiresAt, older_retire_at)
            .and_where(Expr::col(SigningKeys::Generation).lt(key.generation))
            .and_where(Expr::col(SigningKeys::RetiresAt).is_null())
            .to_owned();
        let mut tx = self.pool.begin().await?;
        match tx.conn().try_run(&insert).await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(false),
            Err(e) => return Err(db::fault(e)),
        }
        tx.conn().run(&retire).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn purge_retired_signing_keys(&self, now: Millis) -> Result<()> {
        let delete = Query::delete()
            .from_table(SigningKeys::Table)
            .and_where(Expr::col(SigningKeys::RetiresAt).lt(now))
            .to_owned();
        self.pool.run(&delete).await?;
        Ok(())
    }

    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String> {
        let insert = Query::insert()
            .into_table(ServerSecrets::Table)
            .columns([ServerSecrets::Name, ServerSecrets::Value])
            .values([name.into(), fresh.into()])
            .map_err(built)?
            .on_conflict(
                OnConflict::column(ServerSecrets::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        self.pool.run(&insert).await?;
        let select = Query::select()
            .column(ServerSecrets::Value)
            .from(ServerSecrets::Table)
            .and_where(Expr::col(ServerSecrets::Name).eq(name))
            .to_owned();
        let Text(value) = self.pool.one(&select).await?;
        Ok(value)
    }

    async fn data_migration_done(&self, name: &str) -> Result<bool> {
        let select = Query::select()
            .column(DataMigrations::Name)
            .from(DataMigrations::Table)
            .and_where(Expr::col(DataMigrations::Name).eq(name))
            .to_owned();
        Ok(self.pool.optional::<Text, _>(&select).await?.is_some())
    }

    async fn mark_data_migration_done(&self, name: &str, now: Millis) -> Result<()> {
        let insert = Query::insert()
            .into_table(DataMigrations::Table)
            .columns([DataMigrations::Name, DataMigrations::DoneAt])
            .values([name.into(), now.into()])
            .map_err(built)?
            .on_conflict(
                OnConflict::column(DataMigrations::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .to_owned();
        self.pool.run(&insert).await?;
        Ok(())
    }

    async fn all_user_emails(&self) -> Result<Vec<(String, String)>> {
        let select = Query::select()
            .columns([Users::Id, Users::Email])
            .from(Users::Table)
            .order_by(Users::CreatedAt, Order::Asc)
            .order_by(Users::Id, Order::Asc)
            .to_owned();
        let rows: Vec<TextPair> = self.pool.all(&select).await?;
        Ok(rows
            .into_iter()
            .map(|TextPair(id, email)| (id, email))
            .collect())
    }

    async fn set_user_email(&self, id: &str, email: &str) -> Result<bool> {
        let update = Query::update()
            .table(Users::Table)
            .value(Users::Email, email)
            .and_where(Expr::col(Users::Id).eq(id))
            .to_owned();
        match self.pool.try_run(&update).await? {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db::fault(e)),
        }
    }

    async fn announce_revocations(&self, ids: &[String]) -> Result<()> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(());
        };
        for chunk in ids.chunks(IDS_PER_NOTIFY) {
            // A function call, not a table statement: the one fixed text the query builder has no
            // form for.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(REVOCATION_CHANNEL)
                .bind(chunk.join(","))
                .execute(pool)
                .await
                .map_err(db::fault)?;
        }
        Ok(())
    }

    async fn revocations(&self) -> Result<Option<mpsc::UnboundedReceiver<Revoked>>> {
        if !self.is_postgres() {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url)
            .await
            .map_err(db::fault)?;
        listener
            .listen(REVOCATION_CHANNEL)
            .await
            .map_err(db::fault)?;
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
}

/// Invitations matching `cond`, oldest first.
fn invites_where(cond: Cond) -> SelectStatement {
    Query::select()
        .columns(InviteRow::COLUMNS)
        .from(ProjectInvites::Table)
        .cond_where(cond)
        .order_by(ProjectInvites::CreatedAt, Order::Asc)
        .order_by(ProjectInvites::Id, Order::Asc)
        .to_owned()
}

fn role_select(project_id: &str, user_id: &str) -> SelectStatement {
    Query::select()
        .column(StreamAcl::Role)
        .from(StreamAcl::Table)
        .and_where(Expr::col(StreamAcl::StreamId).eq(project_id))
        .and_where(Expr::col(StreamAcl::UserId).eq(user_id))
        .to_owned()
}
