//! The tables and columns, as identifiers the query builder quotes. A column that is renamed or
//! dropped here no longer compiles where it is used.

use sea_query::Iden;

#[derive(Iden, Clone, Copy)]
pub enum Users {
    Table,
    Id,
    Suuid,
    Email,
    Name,
    Bio,
    Company,
    Avatar,
    Verified,
    Profiles,
    PasswordHash,
    Role,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ServerApps {
    Table,
    Confidential,
    Id,
    Secret,
    Name,
    Description,
    TermsAndConditionsLink,
    Logo,
    Public,
    TrustByDefault,
    AuthorId,
    RedirectUrl,
    Scopes,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ApiTokens {
    Table,
    Id,
    Digest,
    OwnerId,
    Name,
    LastChars,
    Scopes,
    Kind,
    AppId,
    FamilyId,
    Lifespan,
    CreatedAt,
    LastUsed,
}

#[derive(Iden, Clone, Copy)]
pub enum TokenResources {
    Table,
    TokenId,
    ResourceType,
    ResourceId,
}

#[derive(Iden, Clone, Copy)]
pub enum AccessCodes {
    Table,
    Digest,
    AppId,
    UserId,
    Challenge,
    ChallengeMethod,
    Scopes,
    CreatedAt,
    Lifespan,
    UsedAt,
    FamilyId,
    Nonce,
    AuthTime,
    SpentBy,
}

#[derive(Iden, Clone, Copy)]
pub enum RefreshTokens {
    Table,
    Id,
    Digest,
    AppId,
    UserId,
    FamilyId,
    Scopes,
    UsedAt,
    ClientAuthenticated,
    CreatedAt,
    Lifespan,
    SpentBy,
}

/// Projects; the table keeps Speckle's name.
#[derive(Iden, Clone, Copy)]
pub enum Streams {
    Table,
    Id,
    Name,
    Description,
    Visibility,
    AllowPublicComments,
    CreatedAt,
    UpdatedAt,
}

/// Project roles; the table keeps Speckle's name.
#[derive(Iden, Clone, Copy)]
pub enum StreamAcl {
    Table,
    StreamId,
    UserId,
    Role,
}

#[derive(Iden, Clone, Copy)]
pub enum Models {
    Table,
    Id,
    StreamId,
    Name,
    Description,
    AuthorId,
    CreatedAt,
    UpdatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Versions {
    Table,
    Id,
    StreamId,
    ModelId,
    AuthorId,
    ReferencedObject,
    Message,
    SourceApplication,
    TotalChildrenCount,
    Parents,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum SignInFailures {
    Table,
    Account,
    Address,
    Failures,
    LastFailureAt,
}

#[derive(Iden, Clone, Copy)]
pub enum DeviceGrants {
    Table,
    DeviceDigest,
    UserCodeDigest,
    AppId,
    Scopes,
    CreatedAt,
    Lifespan,
    IntervalMs,
    PolledAt,
    Decision,
    UserId,
    AuthTime,
    SpentAt,
    SpentBy,
}

#[derive(Iden, Clone, Copy)]
pub enum SigningKeys {
    Table,
    Kid,
    Generation,
    Algorithm,
    PublicJwk,
    SealedPrivateKey,
    CreatedAt,
    ActiveFrom,
    RetiresAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ServerSecrets {
    Table,
    Name,
    Value,
}

#[derive(Iden, Clone, Copy)]
pub enum DataMigrations {
    Table,
    Name,
    DoneAt,
}

#[derive(Iden, Clone, Copy)]
pub enum ProjectInvites {
    Table,
    Id,
    StreamId,
    UserId,
    Email,
    Role,
    Token,
    InviterId,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Sessions {
    Table,
    TokenId,
    UserId,
    Address,
    UserAgent,
    CreatedAt,
}

#[derive(Iden, Clone, Copy)]
pub enum Activity {
    Table,
    Id,
    UserId,
    Kind,
    CreatedAt,
    Address,
    UserAgent,
    Subject,
    SubjectId,
}

#[derive(Iden, Clone, Copy)]
pub enum TokenAddresses {
    Table,
    TokenId,
    Address,
    FirstUsed,
}

#[derive(Iden, Clone, Copy)]
pub enum ServerInfo {
    Table,
    Id,
    Name,
    Company,
    Description,
    AdminContact,
    TermsOfService,
    UpdatedAt,
}
