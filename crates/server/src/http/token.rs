//! `POST /auth/token` (code exchange and refresh, Speckle's legacy endpoint) and `POST /auth/logout`.

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::header::{CACHE_CONTROL, EXPIRES, PRAGMA};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::Fields;
use super::error::Result;
use crate::AppState;
use crate::domain::activity::Client;
use crate::domain::grants::{TokenPair, TokenRequest};
use crate::error::Error;

/// Exactly `{"token","refreshToken"}`, never cached.
pub fn token_pair_response(pair: TokenPair) -> Response {
    never_cached(json!({
        "token": pair.token.expose(),
        "refreshToken": pair.refresh_token.expose(),
    }))
}

/// RFC 6749 §5.1: `access_token`, `token_type`, `expires_in`, `refresh_token`, `scope`.
pub fn rfc_token_response(pair: TokenPair) -> Response {
    let scope: Vec<&str> = pair.scopes.iter().map(|s| s.name()).collect();
    let mut body = json!({
        "access_token": pair.token.expose(),
        "token_type": "Bearer",
        "expires_in": pair.lifespan / 1000,
        "refresh_token": pair.refresh_token.expose(),
        "scope": scope.join(" "),
    });
    if let Some(id_token) = pair.id_token {
        body["id_token"] = id_token.into();
    }
    never_cached(body)
}

fn never_cached(body: serde_json::Value) -> Response {
    (
        [
            (CACHE_CONTROL, "no-cache, no-store"),
            (PRAGMA, "no-cache"),
            (EXPIRES, "0"),
        ],
        Json(body),
    )
        .into_response()
}

pub async fn token(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Fields(fields): Fields,
) -> Result<Response> {
    let request = TokenRequest::from_fields(&fields).map_err(Error::Grant)?;
    let pair = state.core.legacy_token(request, &client).await?;
    Ok(token_pair_response(pair))
}

pub async fn logout(State(state): State<AppState>, Fields(fields): Fields) -> Result<Response> {
    state
        .core
        .logout(
            fields.get("token").map(String::as_str),
            fields.get("refreshToken").map(String::as_str),
        )
        .await?;
    Ok(Json(json!({ "message": "You have logged out." })).into_response())
}
