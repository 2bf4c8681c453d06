//! `activeUser { activity(limit, cursor, kinds) }`: the caller's access log, newest first
//! (docs/ARCHITECTURE.md, "Activity"). The core decides what is in it; this renders it.

use async_graphql::{Enum, SimpleObject};

use super::scalars::DateTime;
use crate::model::ActivityRecord;

/// What happened.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(
    name = "UserActivityKind",
    rename_items = "SCREAMING_SNAKE_CASE",
    remote = "crate::model::ActivityKind"
)]
pub enum ActivityKind {
    SignIn,
    SignInFailed,
    TokenCreated,
    TokenRegenerated,
    TokenRevoked,
    TokenExpired,
    TokenNewAddress,
    AppRegistered,
    AppAuthorized,
    AppRevoked,
    AppSecretRegenerated,
    AppDeleted,
    PasswordChanged,
    SessionEnded,
    ServerInfoChanged,
    ServerRoleChanged,
}

/// A line of the access log. It never holds a secret.
#[derive(SimpleObject)]
#[graphql(name = "UserActivity")]
pub struct Activity {
    pub id: String,
    pub kind: ActivityKind,
    /// The kind as a person reads it ("Token created").
    pub label: String,
    pub time: DateTime,
    /// The client address the request came from, when known.
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// What it concerns, by name (a token's or an app's).
    pub subject: Option<String>,
    /// And by id.
    pub subject_id: Option<String>,
}

impl From<ActivityRecord> for Activity {
    fn from(r: ActivityRecord) -> Activity {
        Activity {
            id: r.id,
            kind: r.kind.into(),
            label: r.kind.label().to_owned(),
            time: DateTime(r.created_at),
            address: r.address,
            user_agent: r.user_agent,
            subject: r.subject,
            subject_id: r.subject_id,
        }
    }
}
