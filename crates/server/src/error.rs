//! The one error type of the server. Each variant knows its Speckle error code and HTTP status;
//! turning it into a response body happens in exactly one place per wire format:
//! `http::error` (REST bodies) and `graphql::error` (GraphQL errors).

use std::borrow::Cow;

use axum::http::StatusCode;
use tessera_proto::Scope;

use crate::domain::grants::GrantError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the caller can fix (Speckle's `USER_INPUT_ERROR`).
    #[error("{0}")]
    UserInput(Cow<'static, str>),
    /// A malformed request to a legacy REST endpoint, answered in plain text as Speckle does.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// Wrong password or unknown email: one answer for both, so emails cannot be enumerated.
    #[error("Invalid credentials.")]
    InvalidCredentials,
    /// A presented bearer token that is malformed, unknown, revoked or expired.
    #[error("Your token is not valid.")]
    InvalidToken,
    /// No token where one is required.
    #[error("Must provide an auth token")]
    Unauthenticated,
    /// The token lacks a scope the operation needs.
    #[error("Your auth token does not have the required scope: {0}.")]
    MissingScope(Scope),
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    /// Something that does not exist (or that the caller may not know exists), with Speckle's
    /// code for it, e.g. `STREAM_NOT_FOUND`.
    #[error("{message}")]
    NotFound {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// A change of project access that is not allowed (`STREAM_INVALID_ACCESS_ERROR`).
    #[error("{0}")]
    InvalidAccess(Cow<'static, str>),
    /// A rule of token creation was broken (Speckle's `TOKEN_CREATE_ERROR`).
    #[error("{0}")]
    TokenCreate(Cow<'static, str>),
    /// `POST /auth/token` refused a grant; Speckle answers these with 401 `{"err": …}`.
    #[error("{}", .0.legacy_message())]
    Grant(GrantError),
    /// `POST /oauth/token` refused a request: an RFC 6749 §5.2 error.
    #[error("{error}: {description}")]
    OAuth {
        error: &'static str,
        description: Cow<'static, str>,
    },
    /// Too many requests from this client, or too many wrong passwords for this account.
    #[error("You have sent too many requests. You are being rate limited. Please try again later.")]
    RateLimited { retry_after: u64 },
    /// The request body is larger than this route accepts.
    #[error("{0}")]
    TooLarge(Cow<'static, str>),
    /// The database is busy (locked by another writer, or every connection is in use): the
    /// request may succeed if retried.
    #[error("The server is busy; please try again in a moment.")]
    Busy(String),
    /// The database failed. Details go to the log, never to the caller.
    #[error("storage error: {0}")]
    Store(sqlx::Error),
    /// The server cannot start: a setting, the database or the address is not usable. Said to the
    /// operator as it is.
    #[error("{0}")]
    Startup(String),
    /// Something that should not happen did. Details go to the log, never to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for Error {
    /// A busy database is worth retrying (503); anything else is the server's fault.
    fn from(e: sqlx::Error) -> Error {
        let busy = match &e {
            sqlx::Error::PoolTimedOut => true,
            sqlx::Error::Database(db) => {
                // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes; PostgreSQL's
                // lock_not_available (55P03), too_many_connections (53300) and
                // cannot_connect_now (57P03).
                let code = db.code().unwrap_or_default();
                let sqlite_busy = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
                sqlite_busy || matches!(code.as_ref(), "55P03" | "53300" | "57P03")
            }
            _ => false,
        };
        if busy {
            Error::Busy(e.to_string())
        } else {
            Error::Store(e)
        }
    }
}

impl Error {
    pub fn user_input(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::UserInput(msg.into())
    }

    /// The same refusal in the form of `POST /oauth/token`.
    pub fn into_oauth(self) -> Error {
        match self {
            Error::Grant(g) => {
                let (error, description) = g.oauth();
                Error::OAuth {
                    error,
                    description: description.into(),
                }
            }
            other => other,
        }
    }

    pub fn forbidden(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::Forbidden(msg.into())
    }

    pub fn token_create(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::TokenCreate(msg.into())
    }

    /// The error code clients match on (`extensions.code` in GraphQL).
    pub fn code(&self) -> &'static str {
        match self {
            Error::UserInput(_) => "USER_INPUT_ERROR",
            Error::BadRequest(_) => "BAD_REQUEST_ERROR",
            Error::InvalidCredentials | Error::Unauthenticated => "UNAUTHORIZED",
            Error::InvalidToken | Error::MissingScope(_) | Error::Forbidden(_) => "FORBIDDEN",
            Error::TokenCreate(_) => "TOKEN_CREATE_ERROR",
            Error::NotFound { code, .. } => code,
            Error::InvalidAccess(_) => "STREAM_INVALID_ACCESS_ERROR",
            Error::Grant(_) | Error::OAuth { .. } => "INVALID_GRANT",
            Error::RateLimited { .. } => "RATE_LIMIT_ERROR",
            Error::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            Error::Busy(_) => "SERVICE_UNAVAILABLE",
            Error::Store(_) | Error::Internal(_) | Error::Startup(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::UserInput(_)
            | Error::BadRequest(_)
            | Error::TokenCreate(_)
            | Error::InvalidAccess(_) => StatusCode::BAD_REQUEST,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::OAuth { error, .. } if *error == "invalid_client" => StatusCode::UNAUTHORIZED,
            Error::OAuth { .. } => StatusCode::BAD_REQUEST,
            Error::InvalidCredentials | Error::Unauthenticated | Error::Grant(_) => {
                StatusCode::UNAUTHORIZED
            }
            Error::InvalidToken | Error::MissingScope(_) | Error::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) | Error::Startup(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// How many seconds a client should wait before trying again, for errors that pass.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            Error::Busy(_) => Some(1),
            _ => None,
        }
    }

    /// The message a caller may see. Internal failures are not described.
    pub fn public_message(&self) -> String {
        match self {
            Error::Store(_) | Error::Internal(_) | Error::Startup(_) => {
                "Something went wrong while processing your request".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// Whether this is the server's fault (and worth logging at error level).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Store(_) | Error::Internal(_) | Error::Startup(_)
        )
    }

    /// Whether this is worth a warning in the log (not the caller's fault, but passing).
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Busy(_))
    }
}
