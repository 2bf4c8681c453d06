//! The core's one error type: what went wrong, in the core's own words. It names no status code,
//! wire format or database: each door (`http`, `graphql`, `pages` in the server crate) turns it
//! into its own shape in one place, and each store turns its driver's errors into [`Error::Busy`]
//! or [`Error::Store`] (docs/ARCHITECTURE.md, "Errors").

use std::borrow::Cow;

use tessera_proto::Scope;

use crate::domain::grants::GrantError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The kind of thing that was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Project,
    Model,
    Version,
    User,
    App,
    Session,
}

/// What is wrong with an invitation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteProblem {
    /// It cannot be created as asked.
    Create,
    /// There is no such invitation (or it was used or cancelled).
    NotFound,
    /// It exists but cannot be used or cancelled by this caller.
    Finalizing,
    /// It was sent to an email that is not the caller's.
    OtherEmail,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input the caller can fix.
    #[error("{0}")]
    UserInput(Cow<'static, str>),
    /// A request that is malformed as a whole (a missing part, a cursor that is not one), as
    /// opposed to a value the caller can correct.
    #[error("{0}")]
    Malformed(Cow<'static, str>),
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
    /// Something that does not exist (or that the caller may not know exists).
    #[error("{message}")]
    NotFound {
        what: Missing,
        message: Cow<'static, str>,
    },
    /// A change of project access that is not allowed.
    #[error("{0}")]
    InvalidAccess(Cow<'static, str>),
    /// An invitation cannot be created, used or cancelled as asked.
    #[error("{message}")]
    Invite {
        problem: InviteProblem,
        message: Cow<'static, str>,
    },
    /// A change to a project that its rules refuse (such as a role for someone who is not yet a
    /// collaborator).
    #[error("{0}")]
    ProjectUpdate(Cow<'static, str>),
    /// A rule of token creation was broken.
    #[error("{0}")]
    TokenCreate(Cow<'static, str>),
    /// A token endpoint refused a grant; each endpoint words the reason its own way.
    #[error("the grant was refused: {0:?}")]
    Grant(GrantError),
    /// Too many requests from this client, or too many wrong passwords for this account.
    #[error("You have sent too many requests. You are being rate limited. Please try again later.")]
    RateLimited { retry_after: u64 },
    /// The database is busy (locked by another writer, or every connection is in use): the
    /// request may succeed if retried.
    #[error("The server is busy; please try again in a moment.")]
    Busy(String),
    /// The database failed. Details go to the log, never to the caller.
    #[error("storage error: {0}")]
    Store(String),
    /// The server cannot start: a setting, the database or the address is not usable. Said to the
    /// operator as it is.
    #[error("{0}")]
    Startup(String),
    /// Something that should not happen did. Details go to the log, never to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn user_input(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::UserInput(msg.into())
    }

    pub fn malformed(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::Malformed(msg.into())
    }

    pub fn forbidden(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::Forbidden(msg.into())
    }

    pub fn invite(problem: InviteProblem, msg: impl Into<Cow<'static, str>>) -> Error {
        Error::Invite {
            problem,
            message: msg.into(),
        }
    }

    pub fn token_create(msg: impl Into<Cow<'static, str>>) -> Error {
        Error::TokenCreate(msg.into())
    }

    /// How many seconds a client should wait before trying again, for errors that pass.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::RateLimited { retry_after } => Some(*retry_after),
            Error::Busy(_) => Some(1),
            _ => None,
        }
    }

    /// Whether this is the server's fault (and worth logging at error level). Such errors are
    /// never described to the caller.
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

    /// The message a caller may see. Internal failures are not described.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "Something went wrong while processing your request".to_owned()
        } else {
            self.to_string()
        }
    }
}
