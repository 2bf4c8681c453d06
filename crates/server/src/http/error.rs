//! The one place an [`Error`] becomes a REST response. Speckle's endpoints each have their own
//! shape, and clients depend on them:
//! - an invalid bearer token: 403 `{"error":"Your token is not valid."}`;
//! - `/auth/token`: 401 `{"err":"<message>"}`;
//! - `/oauth/token`: RFC 6749 `{"error":"invalid_grant","error_description":…}` (400, or 401 for
//!   `invalid_client`);
//! - `/auth/local/login`: 401 `{"err":true,"message":"Invalid credentials."}`;
//! - malformed legacy requests: 400 with a plain-text message;
//! - everything else: `{"error":{"message":…,"code":…}}` with the error's status.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::Error;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if self.is_internal() {
            tracing::error!(error = %self, "request failed");
        }
        if let Error::Busy(detail) = &self {
            tracing::warn!(error = %detail, "database busy; the client was asked to retry");
        }
        let status = self.status();
        let mut response = match &self {
            Error::InvalidToken => {
                (status, Json(json!({ "error": self.to_string() }))).into_response()
            }
            Error::Grant(g) => (status, Json(json!({ "err": g.legacy_message() }))).into_response(),
            Error::OAuth { error, description } => (
                status,
                [(CACHE_CONTROL, "no-store")],
                Json(json!({ "error": error, "error_description": description })),
            )
                .into_response(),
            Error::InvalidCredentials => (
                status,
                Json(json!({ "err": true, "message": self.to_string() })),
            )
                .into_response(),
            Error::BadRequest(message) => (
                status,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                message.to_string(),
            )
                .into_response(),
            _ => (
                status,
                Json(json!({ "error": { "message": self.public_message(), "code": self.code() } })),
            )
                .into_response(),
        };
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, seconds.into());
        }
        response
    }
}
