//! The storage boundary: the records the rules read and write, and the [`Store`] trait that the
//! store crate implements for SQLite and PostgreSQL. Nothing here knows SQL; each method says what
//! it guarantees (which writes are one transaction, what a race resolves to), and the store
//! crate's conformance suite holds every implementation to it (docs/ARCHITECTURE.md, "Storage").

use async_trait::async_trait;
use tessera_proto::{ScopeSet, ServerRole, StreamRole, TokenDigest};
use tokio::sync::mpsc;

use crate::clock::Millis;
pub use crate::domain::limits::FailureCounts;
use crate::error::Result;

pub use crate::model::*;

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
    /// Stores a new password hash and, in the same transaction, signs out every session of the
    /// user (tokens and refresh tokens of the web app `web_app_id`) but `keep_token_id`; returns
    /// the ids of the deleted tokens.
    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        web_app_id: &str,
        keep_token_id: &str,
    ) -> Result<Vec<String>>;
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

    // Invitations.

    /// Stores an invitation, replacing any pending one of the same project for the same user or
    /// email, in one transaction.
    async fn create_invite(&self, invite: &InviteRecord) -> Result<()>;
    async fn invite_by_id(&self, invite_id: &str) -> Result<Option<InviteRecord>>;
    async fn invite_by_token(&self, project_id: &str, token: &str) -> Result<Option<InviteRecord>>;
    /// The invitation with this token, whatever its project.
    async fn invite_by_any_token(&self, token: &str) -> Result<Option<InviteRecord>>;
    /// The pending invitations of a project, oldest first.
    async fn project_invites(&self, project_id: &str) -> Result<Vec<InviteRecord>>;
    /// The pending invitations of a registered user, oldest first.
    async fn user_invites(&self, user_id: &str) -> Result<Vec<InviteRecord>>;
    /// The pending invitation sent to an email that has no account yet, with this token.
    async fn email_invite(&self, email: &str, token: &str) -> Result<Option<InviteRecord>>;
    /// The pending invitations a user sent, oldest first.
    async fn invites_sent_by(&self, inviter_id: &str) -> Result<Vec<InviteRecord>>;
    /// Deletes an invitation; returns whether it existed.
    async fn delete_invite(&self, invite_id: &str) -> Result<bool>;
    /// Spends an invitation (with any other invitation of the project for the same user) and
    /// gives `user_id` its role, in one transaction; an invitation spent or cancelled meanwhile
    /// gives nothing.
    async fn accept_invite(
        &self,
        invite: &InviteRecord,
        user_id: &str,
        now: Millis,
    ) -> Result<Acceptance>;
    /// Attaches the invitations sent to `email` to the account that now has it.
    async fn claim_invites(&self, email: &str, user_id: &str) -> Result<()>;

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
    /// Replaces what an author can edit (name, description, links, logo, public flag, redirect
    /// and scopes) and, in the same transaction, deletes every code, refresh token and token
    /// issued for the app: a changed app signs everyone out, and no refresh racing the change can
    /// mint a token under the old terms. Returns the deleted token ids, or `None` when there is
    /// no such app.
    async fn update_app(&self, app: &AppRecord) -> Result<Option<Vec<String>>>;
    async fn set_app_secret(&self, id: &str, secret: &str) -> Result<bool>;
    /// Deletes an app with everything issued for it; returns the ids of the deleted tokens.
    async fn delete_app(&self, id: &str) -> Result<Vec<String>>;
    /// Deletes the codes, refresh tokens and app tokens of an app, for one user or (with `None`)
    /// for everyone; returns the ids of the deleted tokens.
    async fn revoke_app_grants(&self, app_id: &str, user_id: Option<&str>) -> Result<Vec<String>>;
    async fn apps_by_author(&self, author_id: &str) -> Result<Vec<AppRecord>>;
    /// The apps a user holds tokens or refresh tokens of, with what those grant, by app name.
    async fn app_grants(&self, user_id: &str) -> Result<Vec<AppGrant>>;
    /// How many people hold tokens or refresh tokens of an app.
    async fn app_user_count(&self, app_id: &str) -> Result<i64>;
    /// Apps the user holds tokens or refresh tokens of.
    async fn authorized_apps(&self, user_id: &str) -> Result<Vec<AppRecord>>;
    async fn public_apps(&self) -> Result<Vec<AppRecord>>;

    // Tokens.

    async fn insert_token(&self, token: &NewToken) -> Result<()>;
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>>;
    async fn personal_tokens(&self, owner_id: &str) -> Result<Vec<TokenListing>>;
    /// Deletes a token; with `owner_id`, only if that user owns it. Returns whether it existed.
    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool>;
    /// Replaces one of `owner_id`'s personal access tokens with `new`, in one transaction;
    /// `false` (and nothing changed) when the owner has no such token.
    async fn replace_token(&self, old_id: &str, owner_id: &str, new: &NewToken) -> Result<bool>;
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
    /// Signs out: deletes a token and, when given, a refresh family, in one transaction; returns
    /// the deleted token ids.
    async fn sign_out(&self, token_id: &str, family_id: Option<&str>) -> Result<Vec<String>>;

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

    // Sessions and the access log (docs/ARCHITECTURE.md, "Activity").

    /// Notes where a browser session (the web-app token `token_id`) was started.
    async fn record_session(
        &self,
        token_id: &str,
        user_id: &str,
        address: Option<&str>,
        user_agent: Option<&str>,
        now: Millis,
    ) -> Result<()>;
    /// A user's browser sessions: their tokens of the web app `web_app_id`, newest first, with
    /// where each was started when that is known.
    async fn sessions(&self, user_id: &str, web_app_id: &str) -> Result<Vec<SessionRecord>>;
    /// Ends sessions of a user (their web-app tokens with the refresh chains they came from), in
    /// one transaction; a token that is not one of the user's sessions is left alone. Returns the
    /// deleted token ids.
    async fn end_sessions(
        &self,
        user_id: &str,
        web_app_id: &str,
        which: SessionsToEnd<'_>,
    ) -> Result<Vec<String>>;
    /// Appends lines to the access log (a batch, written behind).
    async fn record_activity(&self, lines: &[ActivityRecord]) -> Result<()>;
    /// A user's access log, newest first.
    async fn activity(
        &self,
        filter: &ActivityFilter,
        page: &PageRequest,
    ) -> Result<Page<ActivityRecord>>;
    /// Forgets lines older than `before`; returns how many.
    async fn purge_activity(&self, before: Millis) -> Result<u64>;
    /// Notes that tokens were used from addresses, `(token id, address, when)`, in one
    /// transaction; for each, `true` the first time (of every replica) and `false` after, or
    /// when the token no longer exists.
    async fn note_token_addresses(&self, sightings: &[(&str, &str, Millis)]) -> Result<Vec<bool>>;

    // Administration.

    /// What an administrator set about the server, if anything.
    async fn server_info(&self) -> Result<Option<ServerInfoRecord>>;
    async fn set_server_info(&self, info: &ServerInfoRecord, now: Millis) -> Result<()>;
    /// Every user, or those whose name or email contains `query`, newest first.
    async fn list_users(&self, query: Option<&str>, page: &PageRequest)
    -> Result<Page<UserRecord>>;
    /// Changes a user's server role, in one transaction that refuses to demote the last
    /// administrator (racing demotions of the last two included).
    async fn set_server_role(&self, user_id: &str, role: ServerRole) -> Result<ServerRoleChange>;
    /// The ids of every token a user holds (their cached checks carry the user's role).
    async fn user_token_ids(&self, user_id: &str) -> Result<Vec<String>>;

    // Server secrets and data migrations.

    // Device authorizations (RFC 8628).

    /// Stores a new device authorization; `false` when its user code is taken (the caller draws
    /// another).
    async fn insert_device_grant(&self, grant: &DeviceGrant) -> Result<bool>;
    async fn device_grant(&self, device_digest: &TokenDigest) -> Result<Option<DeviceGrant>>;
    async fn device_grant_by_user_code(
        &self,
        user_code_digest: &str,
    ) -> Result<Option<DeviceGrant>>;
    /// Records the person's answer, if the grant is still pending; `false` if it was not.
    async fn decide_device_grant(
        &self,
        user_code_digest: &str,
        decision: DeviceDecision,
        user_id: &str,
        scopes: ScopeSet,
        auth_time: Millis,
    ) -> Result<bool>;
    /// Notes a poll at `now`, with the interval the device must keep from now on.
    async fn note_device_poll(
        &self,
        device_digest: &TokenDigest,
        now: Millis,
        interval: Millis,
    ) -> Result<()>;
    /// Spends an allowed grant and stores the token pair it buys, in one transaction; `false`
    /// (nothing stored) when it was spent already.
    async fn spend_device_grant(
        &self,
        device_digest: &TokenDigest,
        pair: (&NewToken, &NewRefresh),
    ) -> Result<bool>;
    /// Forgets device authorizations that have expired.
    async fn purge_expired_device_grants(&self, now: Millis) -> Result<()>;

    // Signing keys (docs/ARCHITECTURE.md, "Signing keys").

    /// Every stored signing key, oldest generation first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Adds `key` and, in the same transaction, sets `retires_at` on every older key that has
    /// none. `false` (and nothing changed) when its generation is taken: another replica rotated
    /// first.
    async fn add_signing_key(
        &self,
        key: &SigningKeyRecord,
        older_retire_at: Millis,
    ) -> Result<bool>;
    /// Forgets keys whose `retires_at` has passed.
    async fn purge_retired_signing_keys(&self, now: Millis) -> Result<()>;

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
