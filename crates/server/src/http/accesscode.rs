//! `GET /auth/accesscode?appId&challenge&token[&preventRedirect=…][&code_challenge_method=S256]`:
//! Speckle's way for a client holding a `tokens:write` token to obtain an access code for an app.
//! Every refusal is 400 with a plain-text message, as in Speckle.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_proto::Scope;

use super::error::{Result, WebError};
use crate::AppState;
use crate::domain::apps::redirect_with;
use crate::domain::grants::parse_challenge;
use crate::error::Error;

fn refuse(message: impl Into<String>) -> WebError {
    Error::Malformed(message.into().into()).into()
}

pub async fn access_code(
    State(state): State<AppState>,
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
    let auth = match state.core.authenticate(token).await {
        Ok(auth) => auth,
        Err(Error::InvalidToken) => return Err(refuse("Invalid token")),
        Err(e) => return Err(e.into()),
    };
    if !auth.has_scope(Scope::TokensWrite) {
        return Err(refuse(
            "Your auth token does not have the required scope: tokens:write.",
        ));
    }
    // Speckle stores this challenge verbatim; a docs-style `&code_challenge_method=S256` suffix is
    // only honoured when the method is given as a parameter of its own.
    let (challenge, method) = match get("code_challenge_method") {
        Some(method) => {
            parse_challenge(challenge, Some(method)).map_err(|e| refuse(e.public_message()))?
        }
        None if challenge.chars().count() > crate::domain::grants::MAX_CHALLENGE_CHARS => {
            return Err(refuse("Challenge is too long"));
        }
        None => (challenge.to_owned(), tessera_proto::ChallengeMethod::Plain),
    };
    let code = state
        .core
        .issue_code(&app, &auth.user_id, auth.scopes, &challenge, method)
        .await
        .map_err(|e| match e {
            Error::Forbidden(message) => refuse(message),
            other => other.into(),
        })?;
    let redirect_url = redirect_with(&app.redirect_url, "access_code", code.expose())?;
    // As in Speckle, any non-empty value asks for JSON instead of a redirect.
    if get("preventRedirect").is_some() {
        return Ok(Json(json!({ "redirectUrl": redirect_url })).into_response());
    }
    Ok((StatusCode::FOUND, [(LOCATION, redirect_url)]).into_response())
}
