//! The storage boundary: the records the rules read and write, and the [`Store`] trait that the
//! store crate implements for SQLite and PostgreSQL. Nothing here knows SQL; each method says what
//! it guarantees (which writes are one transaction, what a race resolves to), and the store
//! crate's conformance suite holds every implementation to it (docs/ARCHITECTURE.md, "Storage").

use async_trait::async_trait;
use tessera_proto::{ChallengeMethod, ScopeSet, ServerRole, StreamRole, TokenDigest};
use tokio::sync::mpsc;

use crate::clock::Millis;
pub use crate::domain::limits::FailureCounts;
use crate::error::Result;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub suuid: String,
    pub email: String,
    pub name: String,
    pub bio: Option<String>,
    pub company: Option<String>,
    pub avatar: Option<String>,
    pub verified: bool,
    pub profiles: Option<String>,
    pub role: ServerRole,
    pub created_at: Millis,
}

/// What registration stores. The role is decided by the store: the first user becomes admin.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    pub suuid: String,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub bio: Option<String>,
    pub avatar: Option<String>,
    pub password_hash: String,
    pub created_at: Millis,
}

/// A profile change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub company: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar: Option<Option<String>>,
}

#[derive(Debug, Clone)]
pub struct AppRecord {
    pub id: String,
    pub secret: String,
    pub name: String,
    pub description: Option<String>,
    pub terms_and_conditions_link: Option<String>,
    pub logo: Option<String>,
    pub trust_by_default: bool,
    pub public: bool,
    pub redirect_url: String,
    pub scopes: ScopeSet,
    pub author_id: Option<String>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Personal,
    App,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Personal => "pat",
            TokenKind::App => "app",
        }
    }
}

/// A resource a token is limited to (`limitResources`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRule {
    pub resource_type: String,
    pub resource_id: String,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub digest: TokenDigest,
    pub owner_id: String,
    pub name: String,
    pub last_chars: String,
    pub scopes: ScopeSet,
    pub kind: TokenKind,
    pub app_id: Option<String>,
    pub family_id: Option<String>,
    pub lifespan: Millis,
    pub created_at: Millis,
    pub resources: Vec<ResourceRule>,
}

/// Everything a bearer check needs, read in one go on a cache miss.
#[derive(Debug, Clone)]
pub struct TokenAuthRecord {
    pub id: String,
    pub digest: TokenDigest,
    pub owner_id: String,
    pub owner_role: ServerRole,
    pub scopes: ScopeSet,
    pub app_id: Option<String>,
    pub created_at: Millis,
    pub lifespan: Millis,
    pub resources: Vec<ResourceRule>,
}

/// A personal access token as its owner sees it in a listing.
#[derive(Debug, Clone)]
pub struct TokenListing {
    pub id: String,
    pub name: String,
    pub last_chars: String,
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub lifespan: Millis,
    pub last_used: Millis,
}

#[derive(Debug, Clone)]
pub struct AccessCode {
    /// The digest of the whole code ([`PlainToken::whole_digest`](tessera_proto::PlainToken)).
    pub digest: TokenDigest,
    pub app_id: String,
    pub user_id: String,
    /// The challenge's digest ([`tessera_proto::pkce::challenge_digest`]), never the challenge.
    pub challenge: String,
    pub method: ChallengeMethod,
    /// What the code grants, at most; `None` (older codes) means the app's scopes.
    pub scopes: Option<ScopeSet>,
    pub created_at: Millis,
    pub lifespan: Millis,
    /// When the code was exchanged (a code is spent once).
    pub used: bool,
}

/// What happened when a code was spent.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    /// This call spent the code; tokens issued for it belong to the given family.
    Spent,
    /// The code had been spent before; the tokens of its first use are in this family.
    AlreadySpent { family_id: Option<String> },
}

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub id: String,
    pub digest: TokenDigest,
    pub app_id: String,
    pub user_id: String,
    pub family_id: String,
    pub scopes: ScopeSet,
    pub used: bool,
    /// Whether the client proved its secret when the chain began; if so, refreshing needs it.
    pub client_authenticated: bool,
    pub created_at: Millis,
    pub lifespan: Millis,
}

/// A refresh token to store; it starts unused.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    pub id: String,
    pub digest: TokenDigest,
    pub app_id: String,
    pub user_id: String,
    pub family_id: String,
    pub scopes: ScopeSet,
    pub client_authenticated: bool,
    pub created_at: Millis,
    pub lifespan: Millis,
}

/// Who may see a project. Speckle's `UNLISTED` is stored (and read back) as `PUBLIC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "PRIVATE",
            Visibility::Public => "PUBLIC",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        match s {
            "PRIVATE" => Some(Visibility::Private),
            "PUBLIC" | "UNLISTED" => Some(Visibility::Public),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub allow_public_comments: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub description: Option<String>,
    pub author_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub id: String,
    pub project_id: String,
    pub model_id: String,
    pub author_id: Option<String>,
    pub referenced_object: String,
    pub message: Option<String>,
    pub source_application: Option<String>,
    pub total_children_count: Option<i64>,
    pub parents: Vec<String>,
    pub created_at: Millis,
}

/// Where a page of a list starts: after the item with this sort key and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub key: i64,
    pub id: String,
}

/// A page of a list, newest first.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: i64,
    pub after: Option<Cursor>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// Where the next page starts, if there may be one.
    pub next: Option<Cursor>,
}

/// Which projects a listing includes.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    /// Part of the name (case-insensitive).
    pub search: Option<String>,
    /// Only projects where the user holds one of these roles.
    pub roles: Option<Vec<StreamRole>>,
    /// Only these projects (a resource-limited token).
    pub ids: Option<Vec<String>>,
}

/// Which models a listing includes.
#[derive(Debug, Clone, Default)]
pub struct ModelFilter {
    pub search: Option<String>,
    pub ids: Option<Vec<String>>,
    pub exclude_ids: Option<Vec<String>>,
    pub only_with_versions: bool,
    /// Only models these users created.
    pub authors: Option<Vec<String>>,
    /// Only models with versions sent from these applications.
    pub source_apps: Option<Vec<String>>,
}

/// Which versions a listing includes; every field given narrows it.
#[derive(Debug, Clone, Default)]
pub struct VersionFilter {
    pub project_id: Option<String>,
    pub model_id: Option<String>,
    pub author_id: Option<String>,
    pub ids: Option<Vec<String>>,
    /// Only in these projects (a resource-limited token).
    pub project_ids: Option<Vec<String>>,
    /// Only in projects this user collaborates on, or public ones.
    pub readable_by: Option<String>,
}

/// Which users a search finds.
#[derive(Debug, Clone)]
pub struct UserSearch {
    /// Part of the name, or a whole email.
    pub text: String,
    pub email_only: bool,
    pub include_archived: bool,
}

/// What happened when a project role was changed.
#[derive(Debug, PartialEq, Eq)]
pub enum RoleChange {
    Done,
    /// Refused: the project would have no owner left.
    LastOwner,
}

/// What happened when a refresh token was spent.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is spent and the new pair is stored.
    Rotated,
    /// The old token had already been spent: nothing was stored.
    AlreadyUsed,
}

/// What another server announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// This token was revoked.
    Token(String),
    /// Announcements may have been missed (the listening connection was lost): forget everything.
    Unknown,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for health checks.
    async fn ping(&self) -> Result<()>;

    // Users.

    /// Stores a user; the first user of the server becomes `server:admin`. `None` when the email
    /// is taken.
    async fn create_user(&self, user: NewUser) -> Result<Option<UserRecord>>;
    async fn user_by_id(&self, id: &str) -> Result<Option<UserRecord>>;
    /// A user with their password hash, by lowercased email.
    async fn user_credentials(&self, email: &str) -> Result<Option<(UserRecord, Option<String>)>>;
    async fn update_profile(&self, id: &str, update: ProfileUpdate) -> Result<Option<UserRecord>>;
    /// Users by part of their name or their whole email, by name.
    async fn search_users(
        &self,
        query: &UserSearch,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>>;

    // Projects.

    /// Creates a project with `owner_id` as its owner and `contributors` as contributors, in one
    /// transaction.
    async fn create_project(
        &self,
        project: &ProjectRecord,
        owner_id: &str,
        contributors: &[String],
    ) -> Result<()>;
    async fn project(&self, id: &str) -> Result<Option<ProjectRecord>>;
    async fn update_project(&self, project: &ProjectRecord) -> Result<()>;
    async fn delete_project(&self, id: &str) -> Result<bool>;
    async fn project_role(&self, project_id: &str, user_id: &str) -> Result<Option<StreamRole>>;
    /// Sets (or with `None` removes) a user's role, refusing to leave the project without owner.
    async fn set_project_role(
        &self,
        project_id: &str,
        user_id: &str,
        role: Option<StreamRole>,
        now: Millis,
    ) -> Result<RoleChange>;
    /// The collaborators, owners first.
    async fn project_team(&self, project_id: &str) -> Result<Vec<(UserRecord, StreamRole)>>;
    /// The projects a user collaborates on, most recently updated first.
    async fn user_projects(
        &self,
        user_id: &str,
        filter: &ProjectFilter,
        page: &PageRequest,
    ) -> Result<Page<(ProjectRecord, StreamRole)>>;
    /// The applications versions of the project were sent from.
    async fn project_source_apps(&self, project_id: &str) -> Result<Vec<String>>;

    // Models and versions.

    /// `false` when the project already has a model of that name (in any case).
    async fn create_model(&self, model: &ModelRecord) -> Result<bool>;
    async fn model(&self, id: &str) -> Result<Option<ModelRecord>>;
    async fn model_by_name(&self, project_id: &str, name: &str) -> Result<Option<ModelRecord>>;
    /// `false` when the new name is taken.
    async fn update_model(&self, model: &ModelRecord) -> Result<bool>;
    async fn delete_model(&self, id: &str) -> Result<bool>;
    async fn project_models(
        &self,
        project_id: &str,
        filter: &ModelFilter,
        page: &PageRequest,
    ) -> Result<Page<ModelRecord>>;
    /// Stores a version and marks its model and project updated.
    async fn create_version(&self, version: &VersionRecord) -> Result<()>;
    async fn version(&self, id: &str) -> Result<Option<VersionRecord>>;
    async fn update_version_message(&self, id: &str, message: Option<&str>) -> Result<bool>;
    async fn delete_versions(&self, project_id: &str, ids: &[String]) -> Result<u64>;
    /// Versions, newest first.
    async fn versions(
        &self,
        filter: &VersionFilter,
        page: &PageRequest,
    ) -> Result<Page<VersionRecord>>;

    // Apps.

    async fn app(&self, id: &str) -> Result<Option<AppRecord>>;
    /// Inserts a first-party app, or refreshes its name, flags and scopes.
    async fn upsert_default_app(&self, app: &AppRecord) -> Result<()>;
    async fn create_app(&self, app: &AppRecord) -> Result<()>;
    /// Replaces what an author can edit: name, description, links, logo, public flag, redirect
    /// and scopes. Returns whether the app exists.
    async fn update_app(&self, app: &AppRecord) -> Result<bool>;
    async fn set_app_secret(&self, id: &str, secret: &str) -> Result<bool>;
    /// Deletes an app with everything issued for it; returns the ids of the deleted tokens.
    async fn delete_app(&self, id: &str) -> Result<Vec<String>>;
    /// Deletes the codes, refresh tokens and app tokens of an app, for one user or (with `None`)
    /// for everyone; returns the ids of the deleted tokens.
    async fn revoke_app_grants(&self, app_id: &str, user_id: Option<&str>) -> Result<Vec<String>>;
    async fn apps_by_author(&self, author_id: &str) -> Result<Vec<AppRecord>>;
    /// Apps the user holds tokens or refresh tokens of.
    async fn authorized_apps(&self, user_id: &str) -> Result<Vec<AppRecord>>;
    async fn public_apps(&self) -> Result<Vec<AppRecord>>;

    // Tokens.

    async fn insert_token(&self, token: &NewToken) -> Result<()>;
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>>;
    async fn personal_tokens(&self, owner_id: &str) -> Result<Vec<TokenListing>>;
    /// Deletes a token; with `owner_id`, only if that user owns it. Returns whether it existed.
    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool>;
    /// Writes `lastUsed` for a batch of tokens (write-behind from the token cache).
    async fn record_token_use(&self, uses: &[(String, Millis)]) -> Result<()>;

    // Access codes.

    async fn insert_code(&self, code: &AccessCode) -> Result<()>;
    async fn code(&self, digest: &TokenDigest) -> Result<Option<AccessCode>>;
    /// Spends a code, recording the family its tokens belong to and, in the same transaction,
    /// storing the token pair it buys (if any): a replay can never slip in between.
    async fn spend_code(
        &self,
        digest: &TokenDigest,
        family_id: &str,
        now: Millis,
        pair: Option<(&NewToken, &NewRefresh)>,
    ) -> Result<Spend>;
    /// Forgets codes that have expired (spent or not).
    async fn purge_expired_codes(&self, now: Millis) -> Result<()>;

    // Token pairs and refresh tokens.

    async fn refresh_token(&self, id: &str) -> Result<Option<RefreshRecord>>;
    async fn delete_refresh_token(&self, id: &str) -> Result<()>;
    /// Marks `old_id` used and stores the new pair, atomically; if `old_id` was already used,
    /// stores nothing.
    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        now: Millis,
        token: &NewToken,
        refresh: &NewRefresh,
    ) -> Result<Rotation>;
    /// Deletes every refresh token and app token of a family; returns the deleted token ids.
    async fn revoke_family(&self, family_id: &str) -> Result<Vec<String>>;

    // Sign-in failures (the per-account rule of `domain::limits`).

    /// Failures since `since` for the (account, address) pair and for the account overall.
    async fn sign_in_failures(
        &self,
        account: &str,
        address: &str,
        since: Millis,
    ) -> Result<FailureCounts>;
    /// Counts one more attempt for the pair (a count older than `since` starts again at 1) and
    /// returns the new count.
    async fn count_sign_in_attempt(
        &self,
        account: &str,
        address: &str,
        now: Millis,
        since: Millis,
    ) -> Result<i64>;
    async fn clear_sign_in_failures(&self, account: &str, address: &str) -> Result<()>;
    /// Forgets failures last seen before `before`.
    async fn purge_sign_in_failures(&self, before: Millis) -> Result<()>;

    // Server secrets and data migrations.

    /// The secret stored under `name`, storing `fresh` first if there is none (the first replica
    /// to start decides; the others read it).
    async fn server_secret(&self, name: &str, fresh: &str) -> Result<String>;
    /// Whether a one-time data migration has run.
    async fn data_migration_done(&self, name: &str) -> Result<bool>;
    async fn mark_data_migration_done(&self, name: &str, now: Millis) -> Result<()>;
    /// Every user's id and stored email (for the email normalisation migration).
    async fn all_user_emails(&self) -> Result<Vec<(String, String)>>;
    /// Changes a stored email; `false` when another account has it already.
    async fn set_user_email(&self, id: &str, email: &str) -> Result<bool>;

    // Revocation across replicas.

    /// Tells every other server on this database that these tokens are revoked (PostgreSQL
    /// `NOTIFY`; nothing to do on SQLite, where one server owns the file).
    async fn announce_revocations(&self, ids: &[String]) -> Result<()>;

    /// The tokens other servers revoke, as they announce them; `None` where there are no other
    /// servers to hear from (SQLite).
    async fn revocations(&self) -> Result<Option<mpsc::UnboundedReceiver<Revoked>>>;
}
