//! Rows as the database returns them (`FromRow`, one struct per shape, decoded by column name
//! once, in the derive) and their conversion into the core's records. A stored value the core
//! cannot read (an unknown role, a digest that is not hex) is a storage error, never a default.

use sea_query::IntoColumnRef;
use tessera_core::error::{Error, Result};
use tessera_core::store::*;
use tessera_proto::{ChallengeMethod, ScopeSet, ServerRole, StreamRole, TokenDigest};

use crate::schema::*;

fn corrupt(what: &str, value: &str) -> Error {
    Error::Store(format!("stored {what} {value:?} is not readable"))
}

fn server_role(name: &str) -> Result<ServerRole> {
    ServerRole::from_name(name).ok_or_else(|| corrupt("server role", name))
}

fn stream_role(name: &str) -> Result<StreamRole> {
    StreamRole::from_name(name).ok_or_else(|| corrupt("project role", name))
}

fn digest(hex: &str) -> Result<TokenDigest> {
    TokenDigest::from_hex(hex).ok_or_else(|| corrupt("digest", "…"))
}

/// Stored scope names. A name this build does not know (written by a newer version, say) grants
/// nothing and is logged, so that it is seen rather than silently lost.
pub fn scopes(names: &str) -> ScopeSet {
    let (set, unknown) = ScopeSet::parse_names(names);
    if !unknown.is_empty() {
        tracing::warn!(
            ?unknown,
            "stored scopes this server does not know are ignored"
        );
    }
    set
}

/// The columns of a row struct, table-qualified, in the struct's order.
pub fn qualified<T: sea_query::Iden + Copy + 'static>(
    table: T,
    columns: &[T],
) -> Vec<sea_query::ColumnRef> {
    columns
        .iter()
        .map(|c| (table, *c).into_column_ref())
        .collect()
}

#[derive(sqlx::FromRow)]
pub struct UserRow {
    id: String,
    suuid: String,
    email: String,
    name: String,
    bio: Option<String>,
    company: Option<String>,
    avatar: Option<String>,
    verified: bool,
    profiles: Option<String>,
    role: String,
    created_at: i64,
}

impl UserRow {
    pub const COLUMNS: [Users; 11] = [
        Users::Id,
        Users::Suuid,
        Users::Email,
        Users::Name,
        Users::Bio,
        Users::Company,
        Users::Avatar,
        Users::Verified,
        Users::Profiles,
        Users::Role,
        Users::CreatedAt,
    ];
}

impl TryFrom<UserRow> for UserRecord {
    type Error = Error;
    fn try_from(r: UserRow) -> Result<UserRecord> {
        Ok(UserRecord {
            role: server_role(&r.role)?,
            id: r.id.into(),
            suuid: r.suuid,
            email: r.email,
            name: r.name,
            bio: r.bio,
            company: r.company,
            avatar: r.avatar,
            verified: r.verified,
            profiles: r.profiles,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct CredentialsRow {
    #[sqlx(flatten)]
    pub user: UserRow,
    pub password_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
pub struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    stream_role: String,
}

impl TryFrom<MemberRow> for (UserRecord, StreamRole) {
    type Error = Error;
    fn try_from(r: MemberRow) -> Result<(UserRecord, StreamRole)> {
        Ok((r.user.try_into()?, stream_role(&r.stream_role)?))
    }
}

#[derive(sqlx::FromRow)]
pub struct AppRow {
    id: String,
    secret: String,
    name: String,
    description: Option<String>,
    terms_and_conditions_link: Option<String>,
    logo: Option<String>,
    trust_by_default: bool,
    public: bool,
    confidential: bool,
    redirect_url: String,
    scopes: String,
    author_id: Option<String>,
    created_at: i64,
}

impl AppRow {
    pub const COLUMNS: [ServerApps; 13] = [
        ServerApps::Id,
        ServerApps::Secret,
        ServerApps::Name,
        ServerApps::Description,
        ServerApps::TermsAndConditionsLink,
        ServerApps::Logo,
        ServerApps::TrustByDefault,
        ServerApps::Public,
        ServerApps::Confidential,
        ServerApps::RedirectUrl,
        ServerApps::Scopes,
        ServerApps::AuthorId,
        ServerApps::CreatedAt,
    ];
}

impl TryFrom<AppRow> for AppRecord {
    type Error = Error;
    fn try_from(r: AppRow) -> Result<AppRecord> {
        Ok(AppRecord {
            scopes: scopes(&r.scopes),
            id: r.id.into(),
            secret: r.secret,
            name: r.name,
            description: r.description,
            terms_and_conditions_link: r.terms_and_conditions_link,
            logo: r.logo,
            trust_by_default: r.trust_by_default,
            public: r.public,
            confidential: r.confidential,
            redirect_url: r.redirect_url,
            author_id: r.author_id.map(Into::into),
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct TokenAuthRow {
    id: String,
    digest: String,
    name: String,
    owner_id: String,
    role: String,
    scopes: String,
    app_id: Option<String>,
    created_at: i64,
    lifespan: i64,
}

impl TokenAuthRow {
    pub fn columns() -> Vec<sea_query::ColumnRef> {
        let mut columns = qualified(
            ApiTokens::Table,
            &[
                ApiTokens::Id,
                ApiTokens::Digest,
                ApiTokens::Name,
                ApiTokens::OwnerId,
                ApiTokens::Scopes,
                ApiTokens::AppId,
                ApiTokens::CreatedAt,
                ApiTokens::Lifespan,
            ],
        );
        columns.push((Users::Table, Users::Role).into_column_ref());
        columns
    }

    pub fn into_record(self, resources: Vec<ResourceRule>) -> Result<TokenAuthRecord> {
        Ok(TokenAuthRecord {
            digest: digest(&self.digest)?,
            owner_role: server_role(&self.role)?,
            scopes: scopes(&self.scopes),
            id: self.id.into(),
            owner_id: self.owner_id.into(),
            app_id: self.app_id.map(Into::into),
            created_at: self.created_at,
            lifespan: self.lifespan,
            name: self.name,
            resources,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ResourceRow {
    resource_type: String,
    resource_id: String,
}

impl From<ResourceRow> for ResourceRule {
    fn from(r: ResourceRow) -> ResourceRule {
        ResourceRule {
            resource_type: r.resource_type,
            resource_id: r.resource_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct ListingRow {
    id: String,
    name: String,
    last_chars: String,
    scopes: String,
    created_at: i64,
    lifespan: i64,
    last_used: i64,
}

impl ListingRow {
    pub const COLUMNS: [ApiTokens; 7] = [
        ApiTokens::Id,
        ApiTokens::Name,
        ApiTokens::LastChars,
        ApiTokens::Scopes,
        ApiTokens::CreatedAt,
        ApiTokens::Lifespan,
        ApiTokens::LastUsed,
    ];
}

impl From<ListingRow> for TokenListing {
    fn from(r: ListingRow) -> TokenListing {
        TokenListing {
            scopes: scopes(&r.scopes),
            id: r.id.into(),
            name: r.name,
            last_chars: r.last_chars,
            created_at: r.created_at,
            lifespan: r.lifespan,
            last_used: r.last_used,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct CodeRow {
    digest: String,
    app_id: String,
    user_id: String,
    challenge: String,
    challenge_method: String,
    scopes: Option<String>,
    created_at: i64,
    lifespan: i64,
    used_at: Option<i64>,
    nonce: Option<String>,
    auth_time: Option<i64>,
}

impl CodeRow {
    pub const COLUMNS: [AccessCodes; 11] = [
        AccessCodes::Digest,
        AccessCodes::AppId,
        AccessCodes::UserId,
        AccessCodes::Challenge,
        AccessCodes::ChallengeMethod,
        AccessCodes::Scopes,
        AccessCodes::CreatedAt,
        AccessCodes::Lifespan,
        AccessCodes::UsedAt,
        AccessCodes::Nonce,
        AccessCodes::AuthTime,
    ];
}

impl TryFrom<CodeRow> for AccessCode {
    type Error = Error;
    fn try_from(r: CodeRow) -> Result<AccessCode> {
        Ok(AccessCode {
            digest: digest(&r.digest)?,
            method: ChallengeMethod::parse(&r.challenge_method)
                .ok_or_else(|| corrupt("challenge method", &r.challenge_method))?,
            scopes: r.scopes.as_deref().map(scopes),
            app_id: r.app_id.into(),
            user_id: r.user_id.into(),
            challenge: r.challenge,
            created_at: r.created_at,
            lifespan: r.lifespan,
            used: r.used_at.is_some(),
            nonce: r.nonce,
            auth_time: r.auth_time,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct DeviceGrantRow {
    device_digest: String,
    user_code_digest: String,
    app_id: String,
    scopes: String,
    created_at: i64,
    lifespan: i64,
    interval_ms: i64,
    polled_at: Option<i64>,
    decision: Option<String>,
    user_id: Option<String>,
    auth_time: Option<i64>,
    spent_at: Option<i64>,
}

impl DeviceGrantRow {
    pub const COLUMNS: [DeviceGrants; 12] = [
        DeviceGrants::DeviceDigest,
        DeviceGrants::UserCodeDigest,
        DeviceGrants::AppId,
        DeviceGrants::Scopes,
        DeviceGrants::CreatedAt,
        DeviceGrants::Lifespan,
        DeviceGrants::IntervalMs,
        DeviceGrants::PolledAt,
        DeviceGrants::Decision,
        DeviceGrants::UserId,
        DeviceGrants::AuthTime,
        DeviceGrants::SpentAt,
    ];
}

impl TryFrom<DeviceGrantRow> for DeviceGrant {
    type Error = Error;
    fn try_from(r: DeviceGrantRow) -> Result<DeviceGrant> {
        Ok(DeviceGrant {
            device_digest: digest(&r.device_digest)?,
            decision: DeviceDecision::parse(r.decision.as_deref())
                .ok_or_else(|| corrupt("device decision", r.decision.as_deref().unwrap_or("")))?,
            user_code_digest: r.user_code_digest,
            app_id: r.app_id.into(),
            scopes: scopes(&r.scopes),
            created_at: r.created_at,
            lifespan: r.lifespan,
            interval: r.interval_ms,
            polled_at: r.polled_at,
            user_id: r.user_id.map(Into::into),
            auth_time: r.auth_time,
            spent: r.spent_at.is_some(),
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SigningKeyRow {
    kid: String,
    generation: i64,
    algorithm: String,
    public_jwk: String,
    sealed_private_key: String,
    created_at: i64,
    active_from: i64,
    retires_at: Option<i64>,
}

impl SigningKeyRow {
    pub const COLUMNS: [SigningKeys; 8] = [
        SigningKeys::Kid,
        SigningKeys::Generation,
        SigningKeys::Algorithm,
        SigningKeys::PublicJwk,
        SigningKeys::SealedPrivateKey,
        SigningKeys::CreatedAt,
        SigningKeys::ActiveFrom,
        SigningKeys::RetiresAt,
    ];
}

impl From<SigningKeyRow> for SigningKeyRecord {
    fn from(r: SigningKeyRow) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: r.kid,
            generation: r.generation,
            algorithm: r.algorithm,
            public_jwk: r.public_jwk,
            sealed_private_key: r.sealed_private_key,
            created_at: r.created_at,
            active_from: r.active_from,
            retires_at: r.retires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct RefreshRow {
    id: String,
    digest: String,
    app_id: String,
    user_id: String,
    family_id: String,
    scopes: String,
    used_at: Option<i64>,
    client_authenticated: bool,
    created_at: i64,
    lifespan: i64,
}

impl RefreshRow {
    pub const COLUMNS: [RefreshTokens; 10] = [
        RefreshTokens::Id,
        RefreshTokens::Digest,
        RefreshTokens::AppId,
        RefreshTokens::UserId,
        RefreshTokens::FamilyId,
        RefreshTokens::Scopes,
        RefreshTokens::UsedAt,
        RefreshTokens::ClientAuthenticated,
        RefreshTokens::CreatedAt,
        RefreshTokens::Lifespan,
    ];
}

impl TryFrom<RefreshRow> for RefreshRecord {
    type Error = Error;
    fn try_from(r: RefreshRow) -> Result<RefreshRecord> {
        Ok(RefreshRecord {
            digest: digest(&r.digest)?,
            scopes: scopes(&r.scopes),
            id: r.id.into(),
            app_id: r.app_id.into(),
            user_id: r.user_id.into(),
            family_id: r.family_id,
            used: r.used_at.is_some(),
            client_authenticated: r.client_authenticated,
            created_at: r.created_at,
            lifespan: r.lifespan,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ProjectRow {
    id: String,
    name: String,
    description: Option<String>,
    visibility: String,
    allow_public_comments: bool,
    created_at: i64,
    updated_at: i64,
}

impl ProjectRow {
    pub const COLUMNS: [Streams; 7] = [
        Streams::Id,
        Streams::Name,
        Streams::Description,
        Streams::Visibility,
        Streams::AllowPublicComments,
        Streams::CreatedAt,
        Streams::UpdatedAt,
    ];
}

impl TryFrom<ProjectRow> for ProjectRecord {
    type Error = Error;
    fn try_from(r: ProjectRow) -> Result<ProjectRecord> {
        Ok(ProjectRecord {
            visibility: Visibility::parse(&r.visibility)
                .ok_or_else(|| corrupt("visibility", &r.visibility))?,
            id: r.id.into(),
            name: r.name,
            description: r.description,
            allow_public_comments: r.allow_public_comments,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ProjectRoleRow {
    #[sqlx(flatten)]
    project: ProjectRow,
    stream_role: String,
}

impl TryFrom<ProjectRoleRow> for (ProjectRecord, StreamRole) {
    type Error = Error;
    fn try_from(r: ProjectRoleRow) -> Result<(ProjectRecord, StreamRole)> {
        Ok((r.project.try_into()?, stream_role(&r.stream_role)?))
    }
}

#[derive(sqlx::FromRow)]
pub struct ModelRow {
    id: String,
    stream_id: String,
    name: String,
    description: Option<String>,
    author_id: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl ModelRow {
    pub const COLUMNS: [Models; 7] = [
        Models::Id,
        Models::StreamId,
        Models::Name,
        Models::Description,
        Models::AuthorId,
        Models::CreatedAt,
        Models::UpdatedAt,
    ];
}

impl TryFrom<ModelRow> for ModelRecord {
    type Error = Error;
    fn try_from(r: ModelRow) -> Result<ModelRecord> {
        Ok(ModelRecord {
            id: r.id.into(),
            project_id: r.stream_id.into(),
            name: r.name,
            description: r.description,
            author_id: r.author_id.map(Into::into),
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct VersionRow {
    id: String,
    stream_id: String,
    model_id: String,
    author_id: Option<String>,
    referenced_object: String,
    message: Option<String>,
    source_application: Option<String>,
    total_children_count: Option<i64>,
    parents: Option<String>,
    created_at: i64,
}

impl VersionRow {
    pub const COLUMNS: [Versions; 10] = [
        Versions::Id,
        Versions::StreamId,
        Versions::ModelId,
        Versions::AuthorId,
        Versions::ReferencedObject,
        Versions::Message,
        Versions::SourceApplication,
        Versions::TotalChildrenCount,
        Versions::Parents,
        Versions::CreatedAt,
    ];
}

impl TryFrom<VersionRow> for VersionRecord {
    type Error = Error;
    fn try_from(r: VersionRow) -> Result<VersionRecord> {
        let parents = match r.parents.as_deref() {
            None | Some("") => Vec::new(),
            Some(text) => serde_json::from_str(text).map_err(|_| corrupt("parents", text))?,
        };
        Ok(VersionRecord {
            id: r.id.into(),
            project_id: r.stream_id.into(),
            model_id: r.model_id.into(),
            author_id: r.author_id.map(Into::into),
            referenced_object: r.referenced_object,
            message: r.message,
            source_application: r.source_application,
            total_children_count: r.total_children_count,
            parents,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct FailureRow {
    pub pair: i64,
    pub pair_last: i64,
    pub account: i64,
    pub account_last: i64,
}

/// One text column.
#[derive(sqlx::FromRow)]
pub struct Text(pub String);

/// One optional text column.
#[derive(sqlx::FromRow)]
pub struct MaybeText(pub Option<String>);

/// One integer column.
#[derive(sqlx::FromRow)]
pub struct Int(pub i64);

/// Two text columns.
#[derive(sqlx::FromRow)]
pub struct TextPair(pub String, pub String);

#[derive(sqlx::FromRow)]
pub struct InviteRow {
    id: String,
    stream_id: String,
    user_id: Option<String>,
    email: Option<String>,
    role: String,
    token: String,
    inviter_id: String,
    created_at: i64,
}

impl InviteRow {
    pub const COLUMNS: [ProjectInvites; 8] = [
        ProjectInvites::Id,
        ProjectInvites::StreamId,
        ProjectInvites::UserId,
        ProjectInvites::Email,
        ProjectInvites::Role,
        ProjectInvites::Token,
        ProjectInvites::InviterId,
        ProjectInvites::CreatedAt,
    ];
}

impl TryFrom<InviteRow> for InviteRecord {
    type Error = Error;
    fn try_from(r: InviteRow) -> Result<InviteRecord> {
        Ok(InviteRecord {
            role: stream_role(&r.role)?,
            id: r.id.into(),
            project_id: r.stream_id.into(),
            user_id: r.user_id.map(Into::into),
            email: r.email,
            token: r.token,
            inviter_id: r.inviter_id.into(),
            created_at: r.created_at,
        })
    }
}

/// One grant row: an app, the scopes a token or refresh token of it carries, and its times.
#[derive(sqlx::FromRow)]
pub struct GrantRow {
    pub app_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used: i64,
}

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    id: String,
    created_at: i64,
    last_used: i64,
    lifespan: i64,
    address: Option<String>,
    user_agent: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> SessionRecord {
        SessionRecord {
            token_id: r.id.into(),
            created_at: r.created_at,
            last_used: r.last_used,
            lifespan: r.lifespan,
            address: r.address,
            user_agent: r.user_agent,
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct ActivityRow {
    id: String,
    user_id: String,
    kind: String,
    created_at: i64,
    address: Option<String>,
    user_agent: Option<String>,
    subject: Option<String>,
    subject_id: Option<String>,
}

impl ActivityRow {
    pub const COLUMNS: [Activity; 8] = [
        Activity::Id,
        Activity::UserId,
        Activity::Kind,
        Activity::CreatedAt,
        Activity::Address,
        Activity::UserAgent,
        Activity::Subject,
        Activity::SubjectId,
    ];
}

impl TryFrom<ActivityRow> for ActivityRecord {
    type Error = Error;
    fn try_from(r: ActivityRow) -> Result<ActivityRecord> {
        Ok(ActivityRecord {
            kind: ActivityKind::parse(&r.kind).ok_or_else(|| corrupt("activity kind", &r.kind))?,
            id: r.id,
            user_id: r.user_id.into(),
            created_at: r.created_at,
            address: r.address,
            user_agent: r.user_agent,
            subject: r.subject,
            subject_id: r.subject_id,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ServerInfoRow {
    name: String,
    company: Option<String>,
    description: Option<String>,
    admin_contact: Option<String>,
    terms_of_service: Option<String>,
}

impl ServerInfoRow {
    pub const COLUMNS: [ServerInfo; 5] = [
        ServerInfo::Name,
        ServerInfo::Company,
        ServerInfo::Description,
        ServerInfo::AdminContact,
        ServerInfo::TermsOfService,
    ];
}

impl From<ServerInfoRow> for ServerInfoRecord {
    fn from(r: ServerInfoRow) -> ServerInfoRecord {
        ServerInfoRecord {
            name: r.name,
            company: r.company,
            description: r.description,
            admin_contact: r.admin_contact,
            terms_of_service: r.terms_of_service,
        }
    }
}
