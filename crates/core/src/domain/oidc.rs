//! OpenID Connect Core 1.0 over the standard authorization code flow (docs/ARCHITECTURE.md,
//! "OAuth"): a sign-in that asked for `openid` buys an ID token beside its access token, and the
//! access token may read `/oauth/userinfo`. What either says about the person follows the Speckle
//! scopes granted: `name` (and `picture`) with `profile:read`, `email` and `email_verified` with
//! `profile:email`; `sub` is the user id, always.

use serde::Serialize;
use tessera_proto::{Scope, ScopeSet};

use super::auth::Auth;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::UserRecord;
use crate::service::Tessera;

/// ID tokens live an hour: they say who signed in, and the access token does the rest.
pub const ID_TOKEN_LIFESPAN: Millis = 3600 * 1000;
/// The longest `nonce` a client may send.
pub const MAX_NONCE_CHARS: usize = 512;

/// The claims about the person (OpenID Connect Core §5.1), as the granted scopes allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl Identity {
    fn of(user: &UserRecord, scopes: ScopeSet) -> Identity {
        let profile = scopes.contains(Scope::ProfileRead);
        let email = scopes.contains(Scope::ProfileEmail);
        Identity {
            sub: user.id.to_string(),
            name: profile.then(|| user.name.clone()),
            picture: user
                .avatar
                .clone()
                .filter(|a| profile && a.starts_with("https://")),
            email: email.then(|| user.email.clone()),
            email_verified: email.then_some(user.verified),
        }
    }
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(flatten)]
    identity: Identity,
}

/// What an ID token is issued from: the sign-in a code (or device grant) recorded.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn<'a> {
    pub app_id: &'a str,
    pub user_id: &'a str,
    pub scopes: ScopeSet,
    pub nonce: Option<&'a str>,
    /// When the person signed in, if known.
    pub auth_time: Option<Millis>,
}

impl Tessera {
    /// The ID token of a sign-in that was granted `openid`; `None` for any other.
    pub(crate) async fn id_token(&self, signed_in: SignedIn<'_>) -> Result<Option<String>> {
        if !signed_in.scopes.contains(Scope::OpenId) {
            return Ok(None);
        }
        let now = self.now();
        let user = self
            .store()
            .user_by_id(signed_in.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        let claims = IdTokenClaims {
            iss: self.issuer(),
            aud: signed_in.app_id,
            azp: signed_in.app_id,
            iat: now / 1000,
            exp: (now + ID_TOKEN_LIFESPAN) / 1000,
            auth_time: signed_in.auth_time.map(|t| t / 1000),
            nonce: signed_in.nonce,
            identity: Identity::of(&user, signed_in.scopes),
        };
        self.sign_jwt(&claims).await.map(Some)
    }

    /// `/oauth/userinfo`: who the holder of an access token granted `openid` is.
    pub async fn userinfo(&self, auth: &Auth) -> Result<Identity> {
        if !auth.has_scope(Scope::OpenId) {
            return Err(Error::MissingScope(Scope::OpenId));
        }
        let user = self
            .store()
            .user_by_id(&auth.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        Ok(Identity::of(&user, auth.scopes))
    }
}
