//! `POST /auth/local/register` and `POST /auth/local/login`: email and password sign-in. Both
//! answer 302 to the server's URL with an access code for the web app (`spklwebapp`), bound to the
//! `challenge` of the query string, which the client exchanges at `/auth/token`.

use std::collections::HashMap;

use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};

use super::body::Fields;
use super::error::{Result, WebError};
use crate::AppState;
use crate::domain::activity::Client;
use crate::domain::grants::MAX_CHALLENGE_CHARS;
use crate::domain::users;
use crate::error::Error;

fn challenge(query: &HashMap<String, String>) -> Result<&str> {
    let challenge = query
        .get("challenge")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Malformed("Invalid request: no challenge detected.".into()))?;
    if challenge.chars().count() > MAX_CHALLENGE_CHARS {
        return Err(WebError::from(Error::Malformed(
            format!(
                "Invalid request: the challenge can be at most {MAX_CHALLENGE_CHARS} characters."
            )
            .into(),
        )));
    }
    Ok(challenge)
}

/// Issues the web app's access code and redirects to the server's front page with it.
async fn finish(
    state: &AppState,
    user_id: &str,
    challenge: &str,
    registered: bool,
) -> Result<Response> {
    let code = state.core.sign_in_code(user_id, challenge).await?;
    let mut location = format!("{}/?access_code={}", state.public_url, code.expose());
    if registered {
        location.push_str("&register=true");
    }
    Ok((StatusCode::FOUND, [(LOCATION, location)]).into_response())
}

pub async fn register(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Query(query): Query<HashMap<String, String>>,
    Fields(fields): Fields,
) -> Result<Response> {
    let challenge = challenge(&query)?;
    // Speckle's invitation token, under either of its names.
    let invite = query
        .get("token")
        .or_else(|| query.get("inviteId"))
        .map(String::as_str);
    let user = state.core.register(&fields, invite, &client).await?;
    finish(&state, &user.id, challenge, true).await
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Query(query): Query<HashMap<String, String>>,
    Fields(fields): Fields,
) -> Result<Response> {
    let challenge = challenge(&query)?;
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let attempt = users::SignIn {
        email: field("email"),
        password: field("password"),
        client: &client,
    };
    let user = state.core.verify_login(attempt).await?;
    finish(&state, &user.id, challenge, false).await
}
