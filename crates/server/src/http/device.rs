//! The person's side of the device authorization grant (RFC 8628): `GET /device` asks a
//! signed-in person for the code their device shows (or takes it from `?user_code=`, the
//! `verification_uri_complete`), shows the consent page for what the device asks, and
//! `POST /device` records Allow or Deny. The rules are in `domain::device`; the device's side is
//! `POST /oauth/device_authorization` and the device-code grant at `/oauth/token`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::body::Fields;
use super::pages::{ConsentAsked, Visit, as_signed_in, consent_for, urlencoded};
use crate::AppState;
use crate::error::Error;
use crate::pages::{Device, render};
use tessera_core::error::Result;

async fn device_page(
    state: &AppState,
    typed: &str,
    error: Option<String>,
    done: Option<(&str, &str)>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let info = state.core.server_info().await;
    let page = Device {
        server_name: &info.name,
        typed,
        error,
        done,
    };
    render(&page, status, &[], None)
}

/// Where a person comes back to after signing in: the same page, with the code they followed.
fn here(user_code: Option<&str>) -> String {
    match user_code {
        None => "/device".into(),
        Some(code) => format!("/device?user_code={}", urlencoded(code)),
    }
}

/// `GET /device[?user_code=…]`.
pub async fn show(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let typed = query
        .get("user_code")
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty());
    let back = here(typed);
    as_signed_in(&state, &visit, None, &back, async |session| {
        let Some(typed) = typed else {
            return Ok(device_page(&state, "", None, None).await);
        };
        let request = match state.core.device_request(typed).await {
            Ok(request) => request,
            Err(Error::UserInput(message)) => {
                let kept: String = typed.chars().take(32).collect();
                return Ok(device_page(&state, &kept, Some(message.into()), None).await);
            }
            Err(e) => return Err(e),
        };
        let asked = ConsentAsked {
            app: &request.app,
            registered_by: &request.registered_by,
            scopes: request.scopes,
            redirect_url: None,
            user_code: Some(&request.user_code),
            action: "/device",
        };
        consent_for(&state, &visit, &session, &asked).await
    })
    .await
}

/// `POST /device`: Allow or Deny for the posted code.
pub async fn answer(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    let typed = fields.get("user_code").map(String::as_str).unwrap_or("");
    let back = here(Some(typed).filter(|t| !t.is_empty()));
    as_signed_in(&state, &visit, Some(&fields), &back, async |session| {
        let allow = match fields.get("decision").map(String::as_str) {
            Some("allow") => true,
            Some("deny") => false,
            _ => return Err(Error::user_input("Choose Allow or Deny.")),
        };
        let answered: Result<()> = state.core.answer_device(&session.auth, typed, allow).await;
        match answered {
            Ok(()) if allow => Ok(device_page(
                &state,
                "",
                None,
                Some((
                    "Your device is signed in",
                    "You can close this page and go back to your device.",
                )),
            )
            .await),
            Ok(()) => Ok(device_page(
                &state,
                "",
                None,
                Some((
                    "The device was not signed in",
                    "You denied it. If you did not start this sign-in yourself, nothing more \
                     needs doing.",
                )),
            )
            .await),
            Err(Error::UserInput(message)) => {
                Ok(device_page(&state, "", Some(message.into()), None).await)
            }
            Err(e) => Err(e),
        }
    })
    .await
}
