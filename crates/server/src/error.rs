//! How core errors look on Speckle's wire, decided once for every door: the error code clients
//! match on (`extensions.code` in GraphQL, `error.code` in REST bodies) and the HTTP status. The
//! REST shapes are in `http::error`, the GraphQL ones in `graphql::error`
//! (docs/ARCHITECTURE.md, "Errors").

use std::borrow::Cow;

use axum::http::StatusCode;
use tessera_core::domain::grants::GrantError;
pub use tessera_core::error::{Error, InviteProblem, Missing};

/// The Speckle error code of a core error.
pub fn code(e: &Error) -> &'static str {
    match e {
        Error::UserInput(_) => "USER_INPUT_ERROR",
        Error::Malformed(_) => "BAD_REQUEST_ERROR",
        Error::InvalidCredentials | Error::Unauthenticated => "UNAUTHORIZED",
        Error::InvalidToken | Error::MissingScope(_) | Error::Forbidden(_) => "FORBIDDEN",
        Error::TokenCreate(_) => "TOKEN_CREATE_ERROR",
        Error::Invite { problem, .. } => match problem {
            InviteProblem::Create => "INVITE_CREATE_ERROR",
            InviteProblem::NotFound => "INVITE_NOT_FOUND",
            InviteProblem::Finalizing => "INVITE_FINALIZING_ERROR",
            InviteProblem::OtherEmail => "INVITE_FINALIZED_FOR_NEW_EMAIL",
        },
        Error::ProjectUpdate(_) => "STREAM_UPDATE_ERROR",
        Error::NotFound { what, .. } => match what {
            Missing::Project => "STREAM_NOT_FOUND",
            Missing::Model => "MODEL_NOT_FOUND",
            Missing::Version => "VERSION_NOT_FOUND",
            Missing::User => "USER_NOT_FOUND",
            Missing::App => "APP_NOT_FOUND",
            Missing::Session => "SESSION_NOT_FOUND",
        },
        Error::InvalidAccess(_) => "STREAM_INVALID_ACCESS_ERROR",
        Error::Grant(_) => "INVALID_GRANT",
        Error::RateLimited { .. } => "RATE_LIMIT_ERROR",
        Error::Busy(_) => "SERVICE_UNAVAILABLE",
        Error::Store(_) | Error::Internal(_) | Error::Startup(_) => "INTERNAL_SERVER_ERROR",
    }
}

/// The HTTP status of a core error.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::UserInput(_)
        | Error::Malformed(_)
        | Error::TokenCreate(_)
        | Error::InvalidAccess(_)
        | Error::Invite { .. }
        | Error::ProjectUpdate(_) => StatusCode::BAD_REQUEST,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::InvalidCredentials | Error::Unauthenticated | Error::Grant(_) => {
            StatusCode::UNAUTHORIZED
        }
        Error::InvalidToken | Error::MissingScope(_) | Error::Forbidden(_) => StatusCode::FORBIDDEN,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Store(_) | Error::Internal(_) | Error::Startup(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// The message a caller may see: a refused grant in Speckle's words, internal failures not
/// described at all.
pub fn public_message(e: &Error) -> String {
    match e {
        Error::Grant(g) => legacy_grant_message(g).into_owned(),
        other => other.public_message(),
    }
}

/// What Speckle's `POST /auth/token` answers, word for word where Speckle has the case.
pub fn legacy_grant_message(g: &GrantError) -> Cow<'static, str> {
    match g {
        GrantError::Missing(what) => {
            format!("Invalid request, insufficient information provided. {what} is required.")
                .into()
        }
        GrantError::MissingRefreshToken => "Invalid request, insufficient information \
            provided. A valid refresh token is required."
            .into(),
        GrantError::CodeNotFound => "Access code not found.".into(),
        GrantError::CodeForAnotherApp => "Invalid request: application id does not match.".into(),
        GrantError::CodeExpired => "Access code expired".into(),
        GrantError::ChallengeMismatch => "Code challenge mismatch. Ensure the same challenge \
            is used for authentication and token exchange."
            .into(),
        GrantError::WrongEndpoint(_) => "This access code was issued for PKCE \
            (code_challenge_method=S256): exchange it at POST /oauth/token with its code \
            verifier."
            .into(),
        GrantError::UnknownApp => "Invalid app".into(),
        GrantError::WrongAppSecret => {
            "Invalid app secret. Ensure the app secret is correct.".into()
        }
        GrantError::RefreshInvalid
        | GrantError::RefreshWrongSecret
        | GrantError::RefreshSecretRequired => "Invalid request".into(),
        GrantError::RefreshExpired => "Refresh token expired".into(),
        GrantError::RefreshTampered => "Invalid token".into(),
        GrantError::RefreshReplayed => "Refresh token already used. Every token issued from \
            it has been revoked; sign in again."
            .into(),
        // Only the standard endpoints raise these; said in their words.
        g @ (GrantError::ClientSecretRequired
        | GrantError::SecretRequired
        | GrantError::UnsupportedTokenType
        | GrantError::InvalidScope
        | GrantError::DeviceCodeInvalid
        | GrantError::AuthorizationPending
        | GrantError::SlowDown
        | GrantError::AccessDenied
        | GrantError::ExpiredToken) => oauth_grant_error(g).1.into(),
    }
}

/// The RFC 6749 §5.2 error code and a description, for `POST /oauth/token`.
pub fn oauth_grant_error(g: &GrantError) -> (&'static str, String) {
    let grant = |d: &str| ("invalid_grant", d.to_owned());
    match g {
        GrantError::Missing(what) => ("invalid_request", format!("{what} is required.")),
        GrantError::MissingRefreshToken => ("invalid_request", "refresh_token is required.".into()),
        GrantError::CodeNotFound => grant("The access code is not valid or was already used."),
        GrantError::CodeForAnotherApp => grant("The access code was issued to another app."),
        GrantError::CodeExpired => grant("The access code has expired."),
        GrantError::ChallengeMismatch => {
            grant("The code verifier does not match the code challenge.")
        }
        GrantError::WrongEndpoint(_) => grant(
            "This access code was issued for a plain challenge: exchange it at \
             POST /auth/token with the app secret and the challenge.",
        ),
        GrantError::UnknownApp => ("invalid_client", "Unknown app.".into()),
        GrantError::WrongAppSecret | GrantError::RefreshWrongSecret => {
            ("invalid_client", "The app secret is wrong.".into())
        }
        GrantError::RefreshSecretRequired => (
            "invalid_client",
            "This refresh token was issued to a client that authenticated with its app \
             secret: send the secret too."
                .into(),
        ),
        GrantError::ClientSecretRequired => (
            "invalid_client",
            "Introspection is for confidential clients: send the app secret (HTTP Basic or \
             client_secret), or a server admin's token with tokens:introspect."
                .into(),
        ),
        GrantError::SecretRequired => (
            "invalid_client",
            "This app is a confidential client: send its app secret (HTTP Basic or \
             client_secret) with the code."
                .into(),
        ),
        GrantError::UnsupportedTokenType => (
            "unsupported_token_type",
            "token_type_hint must be access_token or refresh_token.".into(),
        ),
        GrantError::RefreshInvalid => grant("The refresh token is not valid."),
        GrantError::RefreshExpired => grant("The refresh token has expired."),
        GrantError::RefreshTampered => grant("The refresh token is not valid."),
        GrantError::RefreshReplayed => grant(
            "The refresh token was already used; every token issued from it has been \
             revoked. Sign in again.",
        ),
        GrantError::InvalidScope => (
            "invalid_scope",
            "Ask only for scopes the app is registered with (and openid).".into(),
        ),
        GrantError::DeviceCodeInvalid => {
            grant("The device code is not valid, was issued to another client or was used.")
        }
        GrantError::AuthorizationPending => (
            "authorization_pending",
            "The person has not answered yet: keep polling at the interval.".into(),
        ),
        GrantError::SlowDown => (
            "slow_down",
            "Polled too soon: wait five seconds more between polls from now on.".into(),
        ),
        GrantError::AccessDenied => ("access_denied", "The person denied the device.".into()),
        GrantError::ExpiredToken => (
            "expired_token",
            "The device code has expired: start the sign-in again.".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::ChallengeMethod;

    #[test]
    fn missing_fields_are_named_as_speckle_names_them() {
        let p = "Invalid request, insufficient information provided.";
        assert_eq!(
            legacy_grant_message(&GrantError::Missing("App Id")),
            format!("{p} App Id is required.")
        );
        assert_eq!(
            legacy_grant_message(&GrantError::MissingRefreshToken),
            format!("{p} A valid refresh token is required.")
        );
    }

    #[test]
    fn every_refusal_has_an_rfc_6749_code() {
        let all = [
            GrantError::Missing("x"),
            GrantError::MissingRefreshToken,
            GrantError::CodeNotFound,
            GrantError::CodeForAnotherApp,
            GrantError::CodeExpired,
            GrantError::ChallengeMismatch,
            GrantError::WrongEndpoint(ChallengeMethod::Plain),
            GrantError::UnknownApp,
            GrantError::WrongAppSecret,
            GrantError::RefreshInvalid,
            GrantError::RefreshWrongSecret,
            GrantError::RefreshSecretRequired,
            GrantError::RefreshExpired,
            GrantError::RefreshTampered,
            GrantError::RefreshReplayed,
        ];
        for g in all {
            let (code, description) = oauth_grant_error(&g);
            assert!(
                ["invalid_request", "invalid_grant", "invalid_client"].contains(&code),
                "{g:?}"
            );
            assert!(!description.is_empty());
            assert!(!legacy_grant_message(&g).is_empty());
        }
    }
}
