//! The standard endpoints beside Speckle's flows (docs/ARCHITECTURE.md, "OAuth"): RFC 7009 token
//! revocation and RFC 7662 token introspection, over the same tokens, refresh chains, bearer
//! cache and revocation path as everything else.
//!
//! A client names itself with its app id and, if it has one to show, its secret. Revocation needs
//! only the id (a public client holds no secret; possession of the token is the proof), but only
//! ever touches tokens issued to that client. Introspection tells about tokens, so it needs a
//! confidential client (the app secret; it learns only about its own tokens) or a personal access
//! token with `tokens:introspect` held by a server administrator (a resource server's key, for any
//! token).

use tessera_proto::{PlainToken, Scope, ScopeSet, ServerRole};

use super::auth::Auth;
use super::grants::{GrantError, secrets_match};
use super::is_expired;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AppId, AppRecord, UserId};
use crate::service::Tessera;

/// A client's credentials as presented (`client_id`, and `client_secret` or HTTP Basic).
#[derive(Debug, Clone, Copy)]
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub secret: Option<&'a str>,
}

/// Which kind of token the caller thinks it is sending (RFC 7009 §2.1, RFC 7662 §2.1): a hint
/// only; both kinds are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    Access,
    Refresh,
}

impl TokenHint {
    /// `access_token` or `refresh_token`; anything else is `unsupported_token_type`.
    pub fn parse(hint: Option<&str>) -> Result<Option<TokenHint>> {
        match hint.filter(|h| !h.is_empty()) {
            None => Ok(None),
            Some("access_token") => Ok(Some(TokenHint::Access)),
            Some("refresh_token") => Ok(Some(TokenHint::Refresh)),
            Some(_) => Err(GrantError::UnsupportedTokenType.into()),
        }
    }
}

/// Who asks to introspect.
#[derive(Debug, Clone, Copy)]
pub enum Introspector<'a> {
    Client(ClientCredentials<'a>),
    Bearer(&'a Auth),
}

/// What introspection says about an active token (RFC 7662 §2.2); an inactive one says nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub scopes: ScopeSet,
    /// The app it was issued to (`None` for a personal access token).
    pub client_id: Option<AppId>,
    pub user_id: UserId,
    pub refresh: bool,
    pub issued_at: Millis,
    pub expires_at: Millis,
}

/// A token found by its presented value, whichever kind it is.
enum Found {
    Access {
        active: ActiveToken,
        id: String,
    },
    Refresh {
        active: ActiveToken,
        family_id: String,
        used: bool,
    },
}

impl Found {
    fn active(&self) -> &ActiveToken {
        match self {
            Found::Access { active, .. } | Found::Refresh { active, .. } => active,
        }
    }
}

impl Tessera {
    /// The app behind the credentials: it must exist, and a secret, when given, must be its own.
    pub(crate) async fn client(&self, credentials: ClientCredentials<'_>) -> Result<AppRecord> {
        let app = self
            .store()
            .app(credentials.client_id)
            .await?
            .ok_or(GrantError::UnknownApp)?;
        if let Some(secret) = credentials.secret
            && !secrets_match(&app.secret, secret)
        {
            return Err(GrantError::WrongAppSecret.into());
        }
        Ok(app)
    }

    /// Looks a presented token up among access tokens and refresh tokens (the hint's kind first);
    /// `None` for anything that is not a live token.
    async fn find_token(&self, presented: &str, hint: Option<TokenHint>) -> Result<Option<Found>> {
        let Ok(token) = PlainToken::parse(presented) else {
            return Ok(None);
        };
        let now = self.now();
        let order = match hint {
            Some(TokenHint::Refresh) => [TokenHint::Refresh, TokenHint::Access],
            _ => [TokenHint::Access, TokenHint::Refresh],
        };
        for kind in order {
            let found = match kind {
                TokenHint::Access => self
                    .store()
                    .token_for_auth(token.id())
                    .await?
                    .filter(|t| t.digest.matches(&token.digest()))
                    .map(|t| Found::Access {
                        id: t.id.to_string(),
                        active: ActiveToken {
                            scopes: t.scopes,
                            client_id: t.app_id,
                            user_id: t.owner_id,
                            refresh: false,
                            issued_at: t.created_at,
                            expires_at: t.created_at.saturating_add(t.lifespan),
                        },
                    }),
                TokenHint::Refresh => self
                    .store()
                    .refresh_token(token.id())
                    .await?
                    .filter(|r| r.digest.matches(&token.digest()))
                    .map(|r| Found::Refresh {
                        active: ActiveToken {
                            scopes: r.scopes,
                            client_id: Some(r.app_id),
                            user_id: r.user_id,
                            refresh: true,
                            issued_at: r.created_at,
                            expires_at: r.created_at.saturating_add(r.lifespan),
                        },
                        family_id: r.family_id,
                        used: r.used,
                    }),
            };
            if let Some(found) = found {
                let a = found.active();
                let live = !is_expired(a.issued_at, a.expires_at.saturating_sub(a.issued_at), now);
                let spent = matches!(found, Found::Refresh { used: true, .. });
                return Ok((live && !spent).then_some(found));
            }
        }
        Ok(None)
    }

    /// RFC 7009: a client revokes one of its tokens. A refresh token takes its whole chain with
    /// it (every access token issued from it, RFC 7009 §2.1); an access token goes alone. A token
    /// that is unknown, already dead or another client's is left alone, and the answer is the
    /// same (§2.2), so nothing can be learnt from it.
    pub async fn revoke_for_client(
        &self,
        credentials: ClientCredentials<'_>,
        presented: &str,
        hint: Option<TokenHint>,
    ) -> Result<()> {
        let app = self.client(credentials).await?;
        let Some(found) = self.find_token(presented, hint).await? else {
            return Ok(());
        };
        if found.active().client_id.as_ref() != Some(&app.id) {
            return Ok(());
        }
        let revoked = match &found {
            Found::Access { id, .. } => {
                if self.store().delete_token(id, None).await? {
                    vec![id.clone()]
                } else {
                    Vec::new()
                }
            }
            Found::Refresh { family_id, .. } => self.store().revoke_family(family_id).await?,
        };
        self.revoked(&revoked).await
    }

    /// RFC 7662: what a token is, for a caller allowed to ask; `None` means `active: false`.
    pub async fn introspect(
        &self,
        caller: Introspector<'_>,
        presented: &str,
        hint: Option<TokenHint>,
    ) -> Result<Option<ActiveToken>> {
        let only_for: Option<AppId> = match caller {
            Introspector::Client(credentials) => {
                if credentials.secret.is_none() {
                    return Err(GrantError::ClientSecretRequired.into());
                }
                Some(self.client(credentials).await?.id)
            }
            Introspector::Bearer(auth) => {
                if !auth.has_scope(Scope::TokensIntrospect) {
                    return Err(Error::MissingScope(Scope::TokensIntrospect));
                }
                if !auth.role.satisfies(ServerRole::Admin) {
                    return Err(Error::forbidden(
                        "Only a server administrator's token can introspect tokens.",
                    ));
                }
                None
            }
        };
        let Some(found) = self.find_token(presented, hint).await? else {
            return Ok(None);
        };
        let active = match found {
            Found::Access { active, .. } | Found::Refresh { active, .. } => active,
        };
        if only_for.is_some() && active.client_id != only_for {
            return Ok(None);
        }
        Ok(Some(active))
    }
}
