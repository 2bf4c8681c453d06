//! `GET /auth/accesscode?appId&challenge&token[&preventRedirect=…][&code_challenge_method=S256]`:
//! Speckle's way for a client holding a `tokens:write` token to obtain an access code for an app.
//! Every refusal is 400 with a plain-text message, as in Speckle.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::{Result, WebError};
use crate::AppState;
use crate::domain::activity::Client;
use crate::error::Error;

fn refuse(message: impl Into<String>) -> WebError {
    Error::Malformed(message.into().into()).into()
}

pub async fn access_code(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response> {
    let get = |key: &str| query.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let app_id = get("appId").ok_or_else(|| refuse("appId missing from querystring."))?;
    let app = state
        .core
        .app(app_id)
        .await?
        .ok_or_else(|| refuse("App does not exist."))?;
    let challenge = get("challenge").ok_or_else(|| refuse("Missing challenge"))?;
    let token = get("token").ok_or_else(|| refuse("Missing token"))?;
    // Every refusal is plain text, in Speckle's words where Speckle has them.
    let redirect_url = state
        .core
        .code_for_token(
            &app,
            token,
            challenge,
            get("code_challenge_method"),
            &client,
        )
        .await
        .map_err(|e| match e {
            Error::InvalidToken => refuse("Invalid token"),
            e @ (Error::MissingScope(_) | Error::Forbidden(_) | Error::UserInput(_)) => {
                refuse(e.public_message())
            }
            other => other.into(),
        })?;
    // As in Speckle, any non-empty value asks for JSON instead of a redirect.
    if get("preventRedirect").is_some() {
        return Ok(Json(json!({ "redirectUrl": redirect_url })).into_response());
    }
    Ok((StatusCode::FOUND, [(LOCATION, redirect_url)]).into_response())
}
