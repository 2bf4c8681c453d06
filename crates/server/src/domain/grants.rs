//! Access codes and the token endpoint: Speckle's legacy exchange (`POST /auth/token`, the code's
//! challenge compared as a string) and the refresh grant, which here **rotates**: a refresh token
//! works once, and presenting it again revokes every token issued from its chain (its family).

use std::collections::HashMap;

use subtle::ConstantTimeEq;
use tessera_proto::{PlainToken, ScopeSet};

use super::auth::TokenCache;
use super::{is_expired, new_token, random_hex};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::{AccessCode, AppRecord, NewRefresh, NewToken, Rotation, Store, TokenKind};

/// Access codes live 10 minutes (Speckle's 600000 ms).
pub const CODE_LIFESPAN: Millis = 600_000;
/// Refresh tokens live about 182.5 days (Speckle's 1.577e10 ms).
pub const REFRESH_LIFESPAN: Millis = 15_770_000_000;
/// Challenges are stored in a 255-character column in Speckle.
pub const MAX_CHALLENGE_CHARS: usize = 255;

/// A freshly issued access token and its refresh token.
#[derive(Debug)]
pub struct TokenPair {
    pub token: PlainToken,
    pub refresh_token: PlainToken,
}

/// Issues a single-use access code binding `user_id`, `app_id` and the client's challenge.
pub async fn issue_code(
    store: &dyn Store,
    app_id: &str,
    user_id: &str,
    challenge: &str,
    now: Millis,
) -> Result<PlainToken> {
    let code = new_token()?;
    store
        .insert_code(&AccessCode {
            digest: code.digest(),
            app_id: app_id.to_owned(),
            user_id: user_id.to_owned(),
            challenge: challenge.to_owned(),
            created_at: now,
            lifespan: CODE_LIFESPAN,
        })
        .await?;
    Ok(code)
}

/// A request to `POST /auth/token`.
#[derive(Debug)]
pub enum TokenRequest {
    Code {
        app_id: String,
        app_secret: String,
        access_code: String,
        challenge: String,
    },
    Refresh {
        app_id: String,
        app_secret: String,
        refresh_token: String,
    },
}

fn insufficient(what: &str) -> Error {
    Error::grant(format!(
        "Invalid request, insufficient information provided. {what} is required."
    ))
}

impl TokenRequest {
    /// Reads Speckle's body fields. As in Speckle, the presence of the key `refreshToken` (even
    /// empty) selects the refresh grant, and an empty value counts as missing.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<TokenRequest> {
        let get = |key: &str| fields.get(key).filter(|v| !v.is_empty()).cloned();
        let app_id = get("appId").ok_or_else(|| insufficient("App Id"))?;
        let app_secret = get("appSecret").ok_or_else(|| insufficient("App Secret"))?;
        if fields.contains_key("refreshToken") {
            let refresh_token = get("refreshToken").ok_or_else(|| {
                Error::grant(
                    "Invalid request, insufficient information provided. \
                     A valid refresh token is required.",
                )
            })?;
            return Ok(TokenRequest::Refresh {
                app_id,
                app_secret,
                refresh_token,
            });
        }
        Ok(TokenRequest::Code {
            access_code: get("accessCode").ok_or_else(|| insufficient("Access Code"))?,
            challenge: get("challenge").ok_or_else(|| insufficient("Challenge"))?,
            app_id,
            app_secret,
        })
    }
}

fn secrets_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The records of a new app token and its refresh token in `family_id`.
fn new_pair(
    app: &AppRecord,
    user_id: &str,
    scopes: ScopeSet,
    family_id: String,
    now: Millis,
) -> Result<(NewToken, NewRefresh, TokenPair)> {
    let token = new_token()?;
    let refresh_token = new_token()?;
    let token_record = NewToken {
        id: token.id().to_owned(),
        digest: token.digest(),
        owner_id: user_id.to_owned(),
        name: format!("{}-token", app.name),
        last_chars: token.last_chars().to_owned(),
        scopes,
        kind: TokenKind::App,
        app_id: Some(app.id.clone()),
        family_id: Some(family_id.clone()),
        lifespan: super::tokens::DEFAULT_LIFESPAN,
        created_at: now,
        resources: Vec::new(),
    };
    let refresh_record = NewRefresh {
        id: refresh_token.id().to_owned(),
        digest: refresh_token.digest(),
        app_id: app.id.clone(),
        user_id: user_id.to_owned(),
        family_id,
        scopes,
        used: false,
        created_at: now,
        lifespan: REFRESH_LIFESPAN,
    };
    Ok((
        token_record,
        refresh_record,
        TokenPair {
            token,
            refresh_token,
        },
    ))
}

/// Answers `POST /auth/token`.
pub async fn token(
    store: &dyn Store,
    cache: &TokenCache,
    request: TokenRequest,
    now: Millis,
) -> Result<TokenPair> {
    match request {
        TokenRequest::Code {
            app_id,
            app_secret,
            access_code,
            challenge,
        } => exchange_code(store, &app_id, &app_secret, &access_code, &challenge, now).await,
        TokenRequest::Refresh {
            app_id,
            app_secret,
            refresh_token,
        } => refresh(store, cache, &app_id, &app_secret, &refresh_token, now).await,
    }
}

/// The legacy authorization-code exchange, with Speckle's checks in Speckle's order. From the
/// moment the app id matches, the code is consumed, whatever happens next.
async fn exchange_code(
    store: &dyn Store,
    app_id: &str,
    app_secret: &str,
    access_code: &str,
    challenge: &str,
    now: Millis,
) -> Result<TokenPair> {
    let not_found = || Error::grant("Access code not found.");
    let code = PlainToken::parse(access_code).map_err(|_| not_found())?;
    let stored = store.code(&code.digest()).await?.ok_or_else(not_found)?;
    if stored.app_id != app_id {
        return Err(Error::grant(
            "Invalid request: application id does not match.",
        ));
    }
    if !store.delete_code(&stored.digest).await? {
        return Err(not_found());
    }
    if is_expired(stored.created_at, stored.lifespan, now) {
        return Err(Error::grant("Access code expired"));
    }
    if !secrets_match(&stored.challenge, challenge) {
        return Err(Error::grant(
            "Code challenge mismatch. Ensure the same challenge is used for authentication and \
             token exchange.",
        ));
    }
    let app = store
        .app(app_id)
        .await?
        .ok_or_else(|| Error::grant("Invalid app"))?;
    if !secrets_match(&app.secret, app_secret) {
        return Err(Error::grant(
            "Invalid app secret. Ensure the app secret is correct.",
        ));
    }
    let (token, refresh, pair) = new_pair(&app, &stored.user_id, app.scopes, random_hex(16)?, now)?;
    store.insert_token_pair(&token, &refresh).await?;
    Ok(pair)
}

/// The refresh grant. A refresh token is spent by its first use; a second presentation means it
/// leaked (or a client misbehaves), so the whole family is revoked.
async fn refresh(
    store: &dyn Store,
    cache: &TokenCache,
    app_id: &str,
    app_secret: &str,
    refresh_token: &str,
    now: Millis,
) -> Result<TokenPair> {
    let invalid = || Error::grant("Invalid request");
    let presented = PlainToken::parse(refresh_token).map_err(|_| invalid())?;
    let stored = store
        .refresh_token(presented.id())
        .await?
        .ok_or_else(invalid)?;
    if stored.app_id != app_id {
        return Err(invalid());
    }
    if is_expired(stored.created_at, stored.lifespan, now) {
        store.delete_refresh_token(&stored.id).await?;
        return Err(Error::grant("Refresh token expired"));
    }
    if !stored.digest.matches(&presented.digest()) {
        return Err(Error::grant("Invalid token"));
    }
    let app = store.app(app_id).await?.ok_or_else(invalid)?;
    if !secrets_match(&app.secret, app_secret) {
        return Err(invalid());
    }
    let replayed = || async {
        let revoked = store.revoke_family(&stored.family_id).await?;
        cache.revoked(store, &revoked).await?;
        Err(Error::grant(
            "Refresh token already used. Every token issued from it has been revoked; sign in \
             again.",
        ))
    };
    if stored.used {
        return replayed().await;
    }
    // Never wider than what the chain was granted, nor than what the app may still ask for.
    let scopes = stored.scopes.intersection(app.scopes);
    let (token, refresh, pair) =
        new_pair(&app, &stored.user_id, scopes, stored.family_id.clone(), now)?;
    match store
        .rotate_refresh_token(&stored.id, now, &token, &refresh)
        .await?
    {
        Rotation::Rotated => Ok(pair),
        Rotation::AlreadyUsed => replayed().await,
    }
}

/// `POST /auth/logout`: revokes a token, and the refresh chain of a refresh token, but only for a
/// caller who presents the whole token (Speckle needs just the 10-character id).
pub async fn logout(
    store: &dyn Store,
    cache: &TokenCache,
    token: Option<&str>,
    refresh_token: Option<&str>,
) -> Result<()> {
    let failed = || Error::BadRequest("Something went wrong while trying to logout.".into());
    let token = PlainToken::parse(token.ok_or_else(failed)?).map_err(|_| failed())?;
    let record = store.token_for_auth(token.id()).await?.ok_or_else(failed)?;
    if !record.digest.matches(&token.digest()) {
        return Err(failed());
    }
    let family = match refresh_token.filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let presented = PlainToken::parse(r).map_err(|_| failed())?;
            let stored = store
                .refresh_token(presented.id())
                .await?
                .ok_or_else(failed)?;
            if !stored.digest.matches(&presented.digest()) || stored.user_id != record.owner_id {
                return Err(failed());
            }
            Some(stored.family_id)
        }
    };
    store.delete_token(token.id(), None).await?;
    let mut revoked = vec![token.id().to_owned()];
    if let Some(family) = family {
        revoked.extend(store.revoke_family(&family).await?);
    }
    cache.revoked(store, &revoked).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields;

    fn message(pairs: &[(&str, &str)]) -> String {
        TokenRequest::from_fields(&fields(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn missing_fields_in_speckle_order() {
        let p = "Invalid request, insufficient information provided.";
        assert_eq!(message(&[]), format!("{p} App Id is required."));
        assert_eq!(
            message(&[("accessCode", "x"), ("challenge", "y")]),
            format!("{p} App Id is required.")
        );
        assert_eq!(
            message(&[("appId", "a")]),
            format!("{p} App Secret is required.")
        );
        assert_eq!(
            message(&[("appId", "a"), ("appSecret", "s")]),
            format!("{p} Access Code is required.")
        );
        assert_eq!(
            message(&[("appId", "a"), ("appSecret", "s"), ("accessCode", "c")]),
            format!("{p} Challenge is required.")
        );
        assert_eq!(
            message(&[("appId", "a"), ("appSecret", "s"), ("refreshToken", "")]),
            format!("{p} A valid refresh token is required.")
        );
        assert!(matches!(
            TokenRequest::from_fields(&fields(&[
                ("appId", "a"),
                ("appSecret", "s"),
                ("refreshToken", "r"),
                ("accessCode", "c")
            ])),
            Ok(TokenRequest::Refresh { .. })
        ));
    }
}
