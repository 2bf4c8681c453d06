//! The one place a core [`Error`] becomes a REST response ([`WebError`]). Speckle's endpoints each have their own
//! shape, and clients depend on them:
//! - an invalid bearer token: 403 `{"error":"Your token is not valid."}`;
//! - `/auth/token`: 401 `{"err":"<message>"}`;
//! - `/oauth/token`: RFC 6749 `{"error":"invalid_grant","error_description":…}` (400, or 401 for
//!   `invalid_client`);
//! - `/auth/local/login`: 401 `{"err":true,"message":"Invalid credentials."}`;
//! - malformed legacy requests: 400 with a plain-text message;
//! - everything else: `{"error":{"message":…,"code":…}}` with the error's status.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{self as wire, Error, legacy_grant_message, oauth_grant_error};

pub type Result<T, E = WebError> = std::result::Result<T, E>;

/// A refusal on the REST door: a core error, or one of the two refusals only HTTP has.
#[derive(Debug)]
pub enum WebError {
    Core(Error),
    /// `POST /oauth/token` refused a request: an RFC 6749 §5.2 error.
    OAuth {
        error: &'static str,
        description: Cow<'static, str>,
    },
    /// The request body is larger than this route accepts.
    TooLarge(Cow<'static, str>),
}

impl From<Error> for WebError {
    fn from(e: Error) -> WebError {
        WebError::Core(e)
    }
}

impl WebError {
    /// The same refusal in the form of `POST /oauth/token`.
    pub fn into_oauth(self) -> WebError {
        match self {
            WebError::Core(Error::Grant(g)) => {
                let (error, description) = oauth_grant_error(&g);
                WebError::OAuth {
                    error,
                    description: description.into(),
                }
            }
            other => other,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let e = match self {
            WebError::Core(e) => e,
            WebError::OAuth { error, description } => {
                let status = if error == "invalid_client" {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                return (
                    status,
                    [(CACHE_CONTROL, "no-store")],
                    Json(json!({ "error": error, "error_description": description })),
                )
                    .into_response();
            }
            WebError::TooLarge(message) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Json(json!({ "error": { "message": message, "code": "PAYLOAD_TOO_LARGE" } })),
                )
                    .into_response();
            }
        };
        render(e)
    }
}

fn render(e: Error) -> Response {
    if e.is_internal() {
        tracing::error!(error = %e, "request failed");
    }
    if let Error::Busy(detail) = &e {
        tracing::warn!(error = %detail, "database busy; the client was asked to retry");
    }
    let status = wire::status(&e);
    let mut response = match &e {
        Error::InvalidToken => (status, Json(json!({ "error": e.to_string() }))).into_response(),
        Error::Grant(g) => {
            (status, Json(json!({ "err": legacy_grant_message(g) }))).into_response()
        }
        Error::InvalidCredentials => (
            status,
            Json(json!({ "err": true, "message": e.to_string() })),
        )
            .into_response(),
        Error::Malformed(message) => (
            status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            message.to_string(),
        )
            .into_response(),
        _ => (
            status,
            Json(json!({
                "error": { "message": wire::public_message(&e), "code": wire::code(&e) }
            })),
        )
            .into_response(),
    };
    if let Some(seconds) = e.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, seconds.into());
    }
    response
}
