//! The one service every door calls (docs/ARCHITECTURE.md, "The service"). It owns the store, the
//! token cache, the clock, the password hasher and the rate limiter; the doors hold a `Tessera`
//! and nothing else of the core's machinery, so no door can reach the store around a rule or
//! forget the cache when it revokes. Its operations live beside their rules, as `impl Tessera`
//! blocks in the `domain` modules; each reads the clock once and hands `now` to the rules.

use std::sync::Arc;

use crate::clock::{Clock, Millis};
use crate::domain::activity::{ActivityLog, Client, DEFAULT_RETENTION_DAYS, Subject};
use crate::domain::admin::ServerInfoCache;
use crate::domain::auth::{Auth, Checked, TokenCache};
use crate::domain::invites::Mailer;
use crate::domain::keys::{KeyFile, SigningKeys};
use crate::domain::limits::{Bucket, FAILURE_WINDOW, Limiter, RateLimits};
use crate::domain::passwords::Passwords;
use crate::domain::users::UserCache;
use crate::error::Result;
use crate::model::ActivityKind;
use tessera_proto::StreamRole;

use crate::domain::is_expired;
use crate::error::Error;
use crate::store::{
    AppRecord, ModelFilter, ModelRecord, Page, PageRequest, ProfileUpdate, ProjectFilter,
    ProjectRecord, Revoked, Store, TokenListing, UserRecord, UserSearch, VersionFilter,
    VersionRecord,
};

/// How long a cached token check is trusted before the store is asked again. Revocation on this
/// node is immediate; this bounds how long another node's revocation can take to arrive when an
/// announcement is lost.
pub const TOKEN_CACHE_TTL: Millis = 60_000;
/// How many token checks the cache keeps: room for 100,000 tokens in use with room to spare,
/// since S3-FIFO keeps a working set only as large as the cache with some slack (bench/RESULTS.md,
/// "1000000 tokens, 100000 in use": at 100,000 most of a pass over 100,000 tokens missed). An
/// entry is a few hundred bytes.
pub const TOKEN_CACHE_CAPACITY: usize = 250_000;

pub struct Tessera {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tokens: TokenCache,
    users: UserCache,
    passwords: Passwords,
    limits: Limiter,
    mailer: Option<Arc<dyn Mailer>>,
    activity: ActivityLog,
    server_info: ServerInfoCache,
    keys: SigningKeys,
    /// This server's public URL: the `iss` of the ID tokens it signs.
    issuer: String,
}

impl Tessera {
    /// A service over `store`, hashing passwords on at most `hashers` threads at once.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: RateLimits,
        hashers: usize,
    ) -> Result<Tessera> {
        Ok(Tessera {
            store,
            clock,
            tokens: TokenCache::new(TOKEN_CACHE_CAPACITY, TOKEN_CACHE_TTL),
            users: UserCache::new(crate::domain::users::USER_CACHE_CAPACITY),
            passwords: Passwords::new(hashers)?,
            limits: Limiter::new(limits),
            mailer: None,
            activity: ActivityLog::new(DEFAULT_RETENTION_DAYS),
            server_info: ServerInfoCache::default(),
            keys: SigningKeys::new(KeyFile::generate()?),
            issuer: String::new(),
        })
    }

    /// Seals the signing keys with `key_file` (a fresh random one by default, which only a
    /// single process can use).
    pub fn with_key_file(mut self, key_file: KeyFile) -> Tessera {
        self.keys = SigningKeys::new(key_file);
        self
    }

    /// Names this server `issuer` in the tokens it signs.
    pub fn with_issuer(mut self, issuer: &str) -> Tessera {
        self.issuer = issuer.trim_end_matches('/').to_owned();
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub(crate) fn signing_keys_state(&self) -> &SigningKeys {
        &self.keys
    }

    /// Sends invitation emails through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Tessera {
        self.mailer = Some(mailer);
        self
    }

    /// Keeps the access log for `days` days (at least one).
    pub fn with_activity_retention(mut self, days: u32) -> Tessera {
        self.activity = ActivityLog::new(days);
        self
    }

    pub(crate) fn user_cache(&self) -> &UserCache {
        &self.users
    }

    pub(crate) fn server_info_cache(&self) -> &ServerInfoCache {
        &self.server_info
    }

    pub(crate) fn server_info_cache_mut(&mut self) -> &mut ServerInfoCache {
        &mut self.server_info
    }

    pub(crate) fn activity_log(&self) -> &ActivityLog {
        &self.activity
    }

    pub(crate) fn mailer(&self) -> Option<&dyn Mailer> {
        self.mailer.as_deref()
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    pub(crate) fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.limits
    }

    /// Whether rate limits are on.
    pub fn rate_limits_enabled(&self) -> bool {
        self.limits.enabled()
    }

    /// Takes one request from `client`'s bucket, or says how long to wait.
    pub fn check_rate(&self, bucket: Bucket, client: std::net::IpAddr) -> Result<()> {
        self.limits.check(bucket, client)
    }

    /// How many password hashes this server has computed (tests show with it that a path hashes
    /// nothing).
    pub fn passwords_computed(&self) -> u64 {
        self.passwords.computed()
    }

    /// The last use of a token seen by this node but not yet written.
    pub fn pending_use(&self, token_id: &str) -> Option<Millis> {
        self.tokens.pending_use(token_id)
    }

    /// Checks a presented bearer token (docs/ARCHITECTURE.md, "The bearer cache") for a request
    /// from `client`. A personal access token's first use from an address, and its first use
    /// after it expired, are noted in its owner's access log.
    pub async fn authenticate(&self, presented: &str, client: &Client) -> Result<Auth> {
        let now = self.now();
        match self.tokens.check(self.store(), presented, now).await? {
            Checked::Valid(mut auth) => {
                auth.client = client.clone();
                self.activity.saw(&auth, client, now);
                Ok(auth)
            }
            Checked::Expired { auth, name } => {
                if auth.app_id.is_none() {
                    let subject = Subject::new(&name, &auth.token_id);
                    self.note(&auth.user_id, ActivityKind::TokenExpired, client, subject);
                }
                Err(Error::InvalidToken)
            }
        }
    }

    /// Revokes tokens: in this node's cache at once, and announced to the other nodes. Every
    /// revocation in the core ends here, after the store has deleted the tokens.
    pub(crate) async fn revoked(&self, ids: &[String]) -> Result<()> {
        self.tokens.revoked(self.store(), ids).await
    }

    /// What another node announced.
    pub fn heard(&self, revoked: Revoked) {
        match revoked {
            Revoked::Token(id) => self.tokens.forget([id.as_str()]),
            Revoked::Unknown => self.tokens.forget_all(),
        }
    }

    /// Whether the store answers.
    pub async fn ping(&self) -> Result<()> {
        self.store.ping().await
    }

    /// The secret stored under `name`, created from `fresh` by the first replica to ask.
    pub async fn server_secret(&self, name: &str, fresh: &str) -> Result<String> {
        self.store.server_secret(name, fresh).await
    }

    /// Writes remembered `lastUsed` times and access-log lines, forgets access-log lines past
    /// their retention, idle rate-limit buckets, old sign-in failures and expired access codes.
    /// Each step runs even when an earlier one failed; the first failure is returned.
    pub async fn housekeeping(&self) -> Result<()> {
        let now = self.now();
        let steps = [
            self.tokens.flush_uses(self.store()).await,
            self.flush_activity().await,
            self.prune_activity().await.map(|_| ()),
            self.store
                .purge_sign_in_failures(now.saturating_sub(FAILURE_WINDOW))
                .await,
            self.store.purge_expired_codes(now).await,
            self.store.purge_expired_device_grants(now).await,
            self.rotate_signing_keys(now).await,
        ];
        self.limits.forget_idle();
        steps.into_iter().collect()
    }
}

/// Reads. They decide nothing: a door reaches them only with a record a rule already let it see
/// (a project it may read, the caller's own user), or for what is public (apps, user lookups,
/// which the GraphQL door limits to the fields Speckle shows).
impl Tessera {
    pub async fn search_users(
        &self,
        query: &UserSearch,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>> {
        self.store.search_users(query, page).await
    }

    /// Changes the caller's own profile, by the rules of `users::ProfileInput::validate`.
    pub async fn update_own_profile(
        &self,
        caller: &Auth,
        input: crate::domain::users::ProfileInput,
    ) -> Result<UserRecord> {
        let update: ProfileUpdate = input.validate()?;
        let updated = self.store.update_profile(&caller.user_id, update).await;
        self.forget_user(&caller.user_id);
        updated?.ok_or_else(|| Error::user_input("Your user no longer exists"))
    }

    /// A user's personal access tokens that have not expired, with uses this node has seen but
    /// not yet written.
    pub async fn personal_tokens(&self, user_id: &str) -> Result<Vec<TokenListing>> {
        let now = self.now();
        let tokens = self.store.personal_tokens(user_id).await?;
        Ok(tokens
            .into_iter()
            .filter(|t| !is_expired(t.created_at, t.lifespan, now))
            .map(|mut t| {
                if let Some(used) = self.tokens.pending_use(&t.id) {
                    t.last_used = t.last_used.max(used);
                }
                t
            })
            .collect())
    }

    pub async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        self.store.app(id).await
    }

    pub async fn public_apps(&self) -> Result<Vec<AppRecord>> {
        self.store.public_apps().await
    }

    pub async fn apps_by_author(&self, user_id: &str) -> Result<Vec<AppRecord>> {
        self.store.apps_by_author(user_id).await
    }

    pub async fn authorized_apps(&self, user_id: &str) -> Result<Vec<AppRecord>> {
        self.store.authorized_apps(user_id).await
    }

    /// The apps a person authorized, with what they granted and when, and who registered each;
    /// the server's own web app is left out (its session ends by signing out).
    pub async fn app_grants(
        &self,
        caller: &Auth,
    ) -> Result<Vec<(crate::model::AppGrant, crate::domain::grants::RegisteredBy)>> {
        let mut out = Vec::new();
        for grant in self.store.app_grants(&caller.user_id).await? {
            if grant.app.id == crate::domain::apps::WEB_APP_ID {
                continue;
            }
            let author = self.registered_by(&grant.app).await?;
            out.push((grant, author));
        }
        Ok(out)
    }

    /// The apps a person reviews and may revoke on the account page: those they authorized,
    /// except the server's own web app (whose session they end by signing out).
    pub async fn apps_to_review(&self, user_id: &str) -> Result<Vec<AppRecord>> {
        let mut apps = self.store.authorized_apps(user_id).await?;
        apps.retain(|a| a.id != crate::domain::apps::WEB_APP_ID);
        Ok(apps)
    }

    pub async fn project_team(
        &self,
        project: &ProjectRecord,
    ) -> Result<Vec<(UserRecord, StreamRole)>> {
        self.store.project_team(&project.id).await
    }

    pub async fn project_source_apps(&self, project: &ProjectRecord) -> Result<Vec<String>> {
        self.store.project_source_apps(&project.id).await
    }

    pub async fn user_projects(
        &self,
        user_id: &str,
        filter: &ProjectFilter,
        page: &PageRequest,
    ) -> Result<Page<(ProjectRecord, StreamRole)>> {
        self.store.user_projects(user_id, filter, page).await
    }

    pub async fn project_models(
        &self,
        project_id: &str,
        filter: &ModelFilter,
        page: &PageRequest,
    ) -> Result<Page<ModelRecord>> {
        self.store.project_models(project_id, filter, page).await
    }

    pub async fn model(&self, id: &str) -> Result<Option<ModelRecord>> {
        self.store.model(id).await
    }

    pub async fn model_by_name(&self, project_id: &str, name: &str) -> Result<Option<ModelRecord>> {
        self.store.model_by_name(project_id, name).await
    }

    pub async fn versions(
        &self,
        filter: &VersionFilter,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>> {
        self.store.versions(filter, page).await
    }
}
