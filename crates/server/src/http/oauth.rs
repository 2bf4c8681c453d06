//! `POST /oauth/token`: the token endpoint of Speckle's current docs, with RFC 7636 S256 PKCE.
//!
//! It takes the docs' JSON (`{appId, accessCode, codeVerifier}`, or `{appId, refreshToken}`) and
//! the RFC 6749 form (`grant_type=authorization_code&code&code_verifier&client_id`, or
//! `grant_type=refresh_token&refresh_token&client_id`), with the app secret optional
//! (`appSecret`, `client_secret`, or HTTP Basic). A request in RFC 6749 form (with `grant_type`)
//! gets the RFC 6749 §5.1 answer (`access_token`, `token_type`, `expires_in`, `refresh_token`,
//! `scope`); the docs' JSON gets exactly `{"token","refreshToken"}`, as Speckle answers. Refusals
//! are RFC 6749 errors. `GET /oauth/token` answers 200: the C# SDK probes it to choose
//! this flow.
//!
//! It sits outside the bearer middleware: clients authenticate here with their app credentials
//! (possibly in an `Authorization: Basic` header), not with a token.
//!
//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662) sit beside it, with the
//! same client authentication; introspection also takes a server admin's personal access token
//! with `tokens:introspect` as a bearer (the rules are in `domain::oauth`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tessera_proto::pkce;

use super::body::Fields;
use super::error::{Result, WebError};
use super::token::{rfc_token_response, token_pair_response};
use crate::AppState;
use crate::domain::activity::Client;
use crate::domain::grants::CodeProof;
use crate::domain::oauth::{ClientCredentials, Introspector, TokenHint};
use crate::error::Error;

/// RFC 8628 §3.4's grant type.
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn invalid_request(description: impl Into<String>) -> WebError {
    WebError::OAuth {
        error: "invalid_request",
        description: description.into().into(),
    }
}

/// Client credentials from `Authorization: Basic` (RFC 6749 §2.3.1), if present.
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || WebError::OAuth {
        error: "invalid_client",
        description: "The Authorization header must be `Basic base64(client_id:client_secret)`."
            .into(),
    };
    let value = value.to_str().map_err(|_| bad())?;
    let encoded = value
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("basic "))
        .map(|_| value[6..].trim())
        .ok_or_else(bad)?;
    let decoded = STANDARD.decode(encoded).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some((id.to_owned(), secret.to_owned())))
}

/// The first non-empty field among the given names (the docs' camelCase or RFC 6749's names).
fn field<'a>(fields: &'a HashMap<String, String>, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| fields.get(*n).map(String::as_str).filter(|v| !v.is_empty()))
}

pub async fn token(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    match exchange(&state, &client, &headers, &fields).await {
        Ok(response) => response,
        Err(e) => e.into_oauth().into_response(),
    }
}

async fn exchange(
    state: &AppState,
    client: &Client,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
) -> Result<Response> {
    let basic = basic_credentials(headers)?;
    let app_id = basic
        .as_ref()
        .map(|(id, _)| id.as_str())
        .or_else(|| field(fields, &["appId", "client_id"]))
        .ok_or_else(|| invalid_request("appId (client_id) is required."))?;
    let app_secret = basic
        .as_ref()
        .map(|(_, secret)| secret.as_str())
        .or_else(|| field(fields, &["appSecret", "client_secret"]));
    // RFC 6749's request (a form with `grant_type`) gets RFC 6749's answer; the docs' JSON gets
    // Speckle's, which its SDKs read strictly.
    let form_encoded = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let rfc_form = form_encoded && field(fields, &["grant_type"]).is_some();
    let grant_type = match field(fields, &["grant_type"]) {
        Some(g) => g,
        None if fields.contains_key("refreshToken") => "refresh_token",
        None => "authorization_code",
    };
    let pair = match grant_type {
        "authorization_code" => {
            let code = field(fields, &["accessCode", "code"])
                .ok_or_else(|| invalid_request("accessCode (code) is required."))?;
            let verifier = field(fields, &["codeVerifier", "code_verifier"])
                .ok_or_else(|| invalid_request("codeVerifier (code_verifier) is required."))?;
            if !pkce::is_valid_verifier(verifier) {
                return Err(invalid_request(
                    "The code verifier must be 43 to 128 characters of A-Z, a-z, 0-9, \
                     '-', '.', '_' and '~' (RFC 7636).",
                ));
            }
            let proof = CodeProof::Pkce {
                verifier,
                app_secret,
            };
            state
                .core
                .exchange_code(app_id, code, proof, client)
                .await?
        }
        "refresh_token" => {
            let refresh = field(fields, &["refreshToken", "refresh_token"])
                .ok_or_else(|| invalid_request("refreshToken (refresh_token) is required."))?;
            state
                .core
                .refresh(app_id, app_secret, refresh, client)
                .await?
        }
        DEVICE_CODE_GRANT => {
            let device_code = field(fields, &["device_code"])
                .ok_or_else(|| invalid_request("device_code is required."))?;
            let credentials = ClientCredentials {
                client_id: app_id,
                secret: app_secret,
            };
            let pair = state.core.poll_device(credentials, device_code).await?;
            return Ok(rfc_token_response(pair));
        }
        other => {
            return Err(WebError::OAuth {
                error: "unsupported_grant_type",
                description: format!(
                    "grant_type {other:?} is not supported: use authorization_code, \
                     refresh_token or {DEVICE_CODE_GRANT}."
                )
                .into(),
            });
        }
    };
    Ok(if rfc_form {
        rfc_token_response(pair)
    } else {
        token_pair_response(pair)
    })
}

/// The client of a revocation or introspection request: HTTP Basic, or `client_id` (with
/// `client_secret` when the client has one to show) in the form.
fn credentials<'a>(
    basic: &'a Option<(String, String)>,
    fields: &'a HashMap<String, String>,
) -> Result<ClientCredentials<'a>> {
    if let Some((client_id, secret)) = basic {
        return Ok(ClientCredentials {
            client_id,
            secret: Some(secret),
        });
    }
    let client_id = field(fields, &["client_id", "appId"])
        .ok_or_else(|| invalid_request("client_id is required (or HTTP Basic credentials)."))?;
    Ok(ClientCredentials {
        client_id,
        secret: field(fields, &["client_secret", "appSecret"]),
    })
}

/// The token of an `Authorization: Bearer …` header (RFC 6750 §2.1), if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|s| s.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        })
        .filter(|t| !t.is_empty())
}

fn presented_token(fields: &HashMap<String, String>) -> Result<&str> {
    field(fields, &["token"]).ok_or_else(|| invalid_request("token is required."))
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1): a device starts a sign-in; the answer
/// says where the person goes and which code they enter there.
pub async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        let basic = basic_credentials(&headers)?;
        let credentials = credentials(&basic, &fields)?;
        let started = state
            .core
            .start_device_authorization(credentials, field(&fields, &["scope"]))
            .await?;
        let base = &state.public_url;
        let code = super::pages::urlencoded(&started.user_code);
        let body = json!({
            "device_code": started.device_code.expose(),
            "user_code": started.user_code,
            "verification_uri": format!("{base}/device"),
            "verification_uri_complete": format!("{base}/device?user_code={code}"),
            "expires_in": started.expires_in / 1000,
            "interval": started.interval / 1000,
        });
        Ok::<_, WebError>(([(CACHE_CONTROL, "no-store")], Json(body)).into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.into_oauth().into_response())
}

/// `POST /oauth/revoke` (RFC 7009): 200 with an empty body whether or not the token was live.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        let basic = basic_credentials(&headers)?;
        let credentials = credentials(&basic, &fields)?;
        let token = presented_token(&fields)?;
        let hint = TokenHint::parse(field(&fields, &["token_type_hint"]))?;
        state
            .core
            .revoke_for_client(credentials, token, hint)
            .await?;
        Ok::<_, WebError>(StatusCode::OK.into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.into_oauth().into_response())
}

/// `POST /oauth/introspect` (RFC 7662): `{"active": false}` or what the token is.
pub async fn introspect(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        let token = presented_token(&fields)?;
        let hint = TokenHint::parse(field(&fields, &["token_type_hint"]))?;
        let bearer = bearer(&headers);
        let basic = match bearer {
            Some(_) => None,
            None => basic_credentials(&headers)?,
        };
        let found = match bearer {
            Some(bearer) => {
                let auth = state.core.authenticate(bearer, &client).await?;
                state
                    .core
                    .introspect(Introspector::Bearer(&auth), token, hint)
                    .await?
            }
            None => {
                let credentials = credentials(&basic, &fields)?;
                state
                    .core
                    .introspect(Introspector::Client(credentials), token, hint)
                    .await?
            }
        };
        let body = match found {
            None => json!({ "active": false }),
            Some(t) => json!({
                "active": true,
                "scope": t.scopes.iter().map(|s| s.name()).collect::<Vec<_>>().join(" "),
                "client_id": t.client_id.map(String::from),
                "sub": String::from(t.user_id),
                "token_type": if t.refresh { "refresh_token" } else { "Bearer" },
                "iat": t.issued_at / 1000,
                "exp": t.expires_at / 1000,
                "iss": state.public_url,
            }),
        };
        Ok::<_, WebError>(Json(body).into_response())
    }
    .await;
    result.unwrap_or_else(|e| e.into_oauth().into_response())
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414) and
/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): one document, what a
/// standard OAuth or OpenID Connect client needs to know, so libraries configure themselves from
/// the issuer URL alone.
pub async fn metadata(State(state): State<AppState>) -> Response {
    let base = &state.public_url;
    let mut scopes: Vec<&str> = tessera_proto::Scope::ALL
        .iter()
        .filter(|s| s.is_registered() && s.is_public())
        .map(|s| s.name())
        .collect();
    scopes.extend(["openid", "profile", "email", "offline_access"]);
    let clients = ["none", "client_secret_basic", "client_secret_post"];
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "userinfo_endpoint": format!("{base}/oauth/userinfo"),
        "jwks_uri": format!("{base}/oauth/jwks"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "device_authorization_endpoint": format!("{base}/oauth/device_authorization"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": clients,
        "revocation_endpoint_auth_methods_supported": clients,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce",
            "name", "picture", "email", "email_verified",
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

/// `GET /oauth/jwks`: the public keys ID tokens are signed with (RFC 7517). A new key is
/// published ten minutes before it signs, so five minutes of caching is safe.
pub async fn jwks(State(state): State<AppState>) -> Result<Response> {
    let keys = state.core.jwks().await?;
    Ok(([(CACHE_CONTROL, "public, max-age=300")], Json(keys)).into_response())
}

/// `GET`/`POST /oauth/userinfo` (OpenID Connect Core §5.3): who the holder of an access token
/// granted `openid` is. Refusals follow RFC 6750 §3: 401 `invalid_token`, 403
/// `insufficient_scope`, with a `WWW-Authenticate` header saying so.
pub async fn userinfo(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
) -> Response {
    let refuse = |status: StatusCode, error: &str, description: &str| {
        let challenge = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
        (
            status,
            [(WWW_AUTHENTICATE, challenge)],
            Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    let Some(token) = bearer(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer")],
            Json(json!({
                "error": "invalid_request",
                "error_description": "Send the access token as Authorization: Bearer <token>.",
            })),
        )
            .into_response();
    };
    let result = async {
        let auth = state.core.authenticate(token, &client).await?;
        state.core.userinfo(&auth).await
    }
    .await;
    match result {
        Ok(identity) => Json(identity).into_response(),
        Err(Error::InvalidToken) => refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The access token is not valid (unknown, expired or revoked).",
        ),
        Err(Error::MissingScope(_)) => refuse(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "The access token was not granted the openid scope.",
        ),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// The capability probe of Speckle's C# SDK: 200 means "the S256 flow is here".
pub async fn describe() -> Response {
    Json(json!({
        "message": "POST an access code with its PKCE code verifier (RFC 7636, S256) here.",
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
    }))
    .into_response()
}
