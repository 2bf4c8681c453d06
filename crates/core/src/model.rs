//! The model: the records the rules read and write, and the vocabulary around them (visibility,
//! token kinds, resource limits, pages and filters of listings, the outcomes of racing writes). The
//! doors speak it; the store stores it.
//!
//! Ids are newtypes, so one kind cannot stand in for another:
//!
//! ```compile_fail
//! use tessera_core::model::{ProjectId, UserId};
//! let user: UserId = "0123456789".into();
//! let project: ProjectId = user;
//! ```

use tessera_proto::{ChallengeMethod, ScopeSet, ServerRole, StreamRole, TokenDigest};

use crate::clock::Millis;

/// Declares string id newtypes: each is its own type, so a user id cannot be passed where a
/// project id is expected. They read as `&str` (`Deref`), print as the id, and convert from and
/// into `String` at the edges (rows, wire values). Inside is a `CompactString`: an id (10 to 24
/// characters) sits inline, so copying one, as every bearer check does for the caller's `Auth`,
/// neither allocates nor reads another cache line (docs/ARCHITECTURE.md, "The bearer cache").
macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(compact_str::CompactString);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into().into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id.into())
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.into())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.into_string()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.0 == *other
            }
        }
    )*};
}

ids!(
    /// A user (Speckle's 10-character hex id).
    UserId,
    /// A registered app (OAuth client).
    AppId,
    /// A project (Speckle's stream).
    ProjectId,
    /// A model (Speckle's branch).
    ModelId,
    /// A version (Speckle's commit).
    VersionId,
    /// A token: a personal access token, an app token or a refresh token (its first 10 characters).
    TokenId,
    /// An invitation to a project.
    InviteId,
);

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
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
    pub id: UserId,
    pub suuid: String,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub bio: Option<String>,
    pub avatar: Option<String>,
    pub password_hash: String,
    /// Whether the email is known to be the person's (registering through an invitation sent
    /// to it shows that).
    pub verified: bool,
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
    pub id: AppId,
    pub secret: String,
    pub name: String,
    pub description: Option<String>,
    pub terms_and_conditions_link: Option<String>,
    pub logo: Option<String>,
    pub trust_by_default: bool,
    pub public: bool,
    /// A confidential client (a server-side app) must show its secret at the token endpoint; a
    /// public one (a browser or desktop app) proves its codes with PKCE alone.
    pub confidential: bool,
    pub redirect_url: String,
    pub scopes: ScopeSet,
    pub author_id: Option<UserId>,
    pub created_at: Millis,
}

impl AppRecord {
    /// What a sign-in to the app can grant: its registered scopes, and `openid` (who the person
    /// is), which every app may ask for at the standard endpoint.
    pub fn grantable(&self) -> ScopeSet {
        let mut scopes = self.scopes;
        scopes.insert(tessera_proto::Scope::OpenId);
        scopes
    }
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
    pub id: TokenId,
    pub digest: TokenDigest,
    pub owner_id: UserId,
    pub name: String,
    pub last_chars: String,
    pub scopes: ScopeSet,
    pub kind: TokenKind,
    pub app_id: Option<AppId>,
    pub family_id: Option<String>,
    pub lifespan: Millis,
    pub created_at: Millis,
    pub resources: Vec<ResourceRule>,
}

/// Everything a bearer check needs, read in one go on a cache miss.
#[derive(Debug, Clone)]
pub struct TokenAuthRecord {
    pub id: TokenId,
    pub digest: TokenDigest,
    pub owner_id: UserId,
    pub owner_role: ServerRole,
    pub scopes: ScopeSet,
    pub app_id: Option<AppId>,
    pub created_at: Millis,
    pub lifespan: Millis,
    /// The token's name (for the access log's lines about it).
    pub name: String,
    pub resources: Vec<ResourceRule>,
}

/// A personal access token as its owner sees it in a listing.
#[derive(Debug, Clone)]
pub struct TokenListing {
    pub id: TokenId,
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
    pub app_id: AppId,
    pub user_id: UserId,
    /// The challenge's digest ([`tessera_proto::pkce::challenge_digest`]), never the challenge.
    pub challenge: String,
    pub method: ChallengeMethod,
    /// What the code grants, at most; `None` (older codes) means the app's scopes.
    pub scopes: Option<ScopeSet>,
    pub created_at: Millis,
    pub lifespan: Millis,
    /// When the code was exchanged (a code is spent once).
    pub used: bool,
    /// OpenID Connect: the client's `nonce`, repeated in the ID token.
    pub nonce: Option<String>,
    /// When the person signed in (the ID token's `auth_time`); `None` for older codes.
    pub auth_time: Option<Millis>,
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
    pub id: TokenId,
    pub digest: TokenDigest,
    pub app_id: AppId,
    pub user_id: UserId,
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
    pub id: TokenId,
    pub digest: TokenDigest,
    pub app_id: AppId,
    pub user_id: UserId,
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
    pub id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub allow_public_comments: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ModelRecord {
    pub id: ModelId,
    pub project_id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub author_id: Option<UserId>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub id: VersionId,
    pub project_id: ProjectId,
    pub model_id: ModelId,
    pub author_id: Option<UserId>,
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

/// An invitation to collaborate on a project: to a registered user, or to an email that has no
/// account yet (`user_id` is filled in when that email registers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteRecord {
    pub id: InviteId,
    pub project_id: ProjectId,
    pub user_id: Option<UserId>,
    /// The normalised email it was sent to, when it was sent to an email.
    pub email: Option<String>,
    /// The role given on acceptance.
    pub role: StreamRole,
    /// What the invitee presents to accept or decline it.
    pub token: String,
    pub inviter_id: UserId,
    pub created_at: Millis,
}

/// What happened when an invitation was accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// The invitation is spent and the role given.
    Accepted,
    /// The invitation had already been used or cancelled.
    Gone,
}

/// An app as a person authorized it: what its tokens grant, since when, last used when.
#[derive(Debug, Clone)]
pub struct AppGrant {
    pub app: AppRecord,
    pub scopes: tessera_proto::ScopeSet,
    pub authorized_at: Millis,
    pub last_used: Millis,
}

/// Declares [`ActivityKind`] from one table: variant, stored name, and how a person reads it.
macro_rules! activity_kinds {
    ($($variant:ident => $name:literal, $label:literal;)*) => {
        /// What a line of the access log records (docs/ARCHITECTURE.md, "Activity"). The names
        /// are stored, and are the GraphQL enum's values in upper case.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActivityKind {
            $($variant,)*
        }

        impl ActivityKind {
            pub const ALL: &[ActivityKind] = &[$(ActivityKind::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ActivityKind::$variant => $name,)*
                }
            }

            /// How a person reads it.
            pub fn label(self) -> &'static str {
                match self {
                    $(ActivityKind::$variant => $label,)*
                }
            }
        }
    };
}

activity_kinds! {
    SignIn => "sign_in", "Signed in";
    SignInFailed => "sign_in_failed", "Failed sign-in";
    TokenCreated => "token_created", "Token created";
    TokenRegenerated => "token_regenerated", "Token regenerated";
    TokenRevoked => "token_revoked", "Token revoked";
    TokenExpired => "token_expired", "Token expired";
    TokenNewAddress => "token_new_address", "Token used from a new address";
    AppRegistered => "app_registered", "App registered";
    AppAuthorized => "app_authorized", "App authorized";
    AppRevoked => "app_revoked", "App access revoked";
    AppSecretRegenerated => "app_secret_regenerated", "App secret regenerated";
    AppDeleted => "app_deleted", "App deleted";
    PasswordChanged => "password_changed", "Password changed";
    SessionEnded => "session_ended", "Signed out";
    ServerInfoChanged => "server_info_changed", "Server description changed";
    ServerRoleChanged => "server_role_changed", "Server role changed";
}

impl ActivityKind {
    pub fn parse(name: &str) -> Option<ActivityKind> {
        ActivityKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
    }
}

/// One line of a user's access log. It names what it concerns (a token's or an app's name and
/// id) and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRecord {
    pub id: String,
    pub user_id: UserId,
    pub kind: ActivityKind,
    pub created_at: Millis,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub subject: Option<String>,
    pub subject_id: Option<String>,
}

/// Which lines of the access log a listing shows: one user's, of some kinds (all when empty).
#[derive(Debug, Clone)]
pub struct ActivityFilter {
    pub user_id: UserId,
    pub kinds: Vec<ActivityKind>,
}

/// A browser session on Tessera's pages (a web-app token), with where it was started.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub token_id: TokenId,
    pub created_at: Millis,
    pub last_used: Millis,
    pub lifespan: Millis,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// Which of a user's sessions to end.
#[derive(Debug, Clone, Copy)]
pub enum SessionsToEnd<'a> {
    One(&'a str),
    AllBut(&'a str),
}

/// What the server says about itself (`serverInfo`): set by an administrator, or else the
/// configuration's `[server]` table, which is read into this record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerInfoRecord {
    pub name: String,
    pub company: Option<String>,
    pub description: Option<String>,
    pub admin_contact: Option<String>,
    pub terms_of_service: Option<String>,
}

impl Default for ServerInfoRecord {
    fn default() -> Self {
        ServerInfoRecord {
            name: "Tessera".into(),
            company: None,
            description: Some("A Speckle-compatible authentication server.".into()),
            admin_contact: None,
            terms_of_service: None,
        }
    }
}

/// How a change of a user's server role ended.
#[derive(Debug, Clone)]
pub enum ServerRoleChange {
    Changed(Box<UserRecord>),
    NoSuchUser,
    /// It would leave the server without an administrator.
    LastAdmin,
}

/// A key ID tokens are signed with, as stored (docs/ARCHITECTURE.md, "Signing keys").
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The key id (`kid`) tokens name it by.
    pub kid: String,
    /// 1 for the first key, one more for each rotation.
    pub generation: i64,
    /// `RS256`.
    pub algorithm: String,
    /// The public key as a JWK (RFC 7517), as the JWKS publishes it.
    pub public_jwk: String,
    /// The private key, sealed with the server's key file.
    pub sealed_private_key: String,
    pub created_at: Millis,
    /// From when it signs (a new key is published first, so every replica and client knows it).
    pub active_from: Millis,
    /// Until when it is published; `None` while it is the newest key.
    pub retires_at: Option<Millis>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("generation", &self.generation)
            .field("active_from", &self.active_from)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

/// What the person said on the `/device` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceDecision {
    Pending,
    Allowed,
    Denied,
}

impl DeviceDecision {
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            DeviceDecision::Pending => None,
            DeviceDecision::Allowed => Some("allowed"),
            DeviceDecision::Denied => Some("denied"),
        }
    }

    pub fn parse(stored: Option<&str>) -> Option<DeviceDecision> {
        match stored {
            None => Some(DeviceDecision::Pending),
            Some("allowed") => Some(DeviceDecision::Allowed),
            Some("denied") => Some(DeviceDecision::Denied),
            Some(_) => None,
        }
    }
}

/// A device authorization (RFC 8628), as stored: the device polls with its device code, the
/// person approves it on `/device` with the user code. Neither code is stored, only digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The digest of the whole device code.
    pub device_digest: TokenDigest,
    /// The hex SHA-256 of the normalised user code.
    pub user_code_digest: String,
    pub app_id: AppId,
    /// What the device asked for; once allowed, what the person granted.
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub lifespan: Millis,
    /// How long the device must wait between polls (grows by 5 s with each `slow_down`).
    pub interval: Millis,
    pub polled_at: Option<Millis>,
    pub decision: DeviceDecision,
    pub user_id: Option<UserId>,
    /// When the person who allowed it signed in.
    pub auth_time: Option<Millis>,
    /// Whether its tokens were issued (a device code buys them once).
    pub spent: bool,
}
