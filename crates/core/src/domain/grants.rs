//! Access codes and the token endpoints.
//!
//! Two exchanges share one set of rules: Speckle's legacy `POST /auth/token` (app secret + the
//! challenge itself, compared as a string) and `POST /oauth/token` (RFC 7636 S256: the verifier
//! whose SHA-256 is the challenge). A code remembers its challenge method and can only be redeemed
//! the way it was issued, so neither endpoint can be used to downgrade the other. A code is spent
//! by its first use; a second presentation revokes what the first one issued.
//!
//! Refresh tokens rotate: a refresh token works once, and presenting it again revokes every token
//! issued from its chain (its family).

use std::collections::HashMap;

use subtle::ConstantTimeEq;
use tessera_proto::{ChallengeMethod, PlainToken, ScopeSet, pkce};

use super::activity::Client;
use super::apps::WEB_APP_ID;
use super::auth::Auth;
use super::oidc::SignedIn;
use super::{is_expired, new_token, random_hex};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::ActivityKind;
use crate::service::Tessera;
use crate::store::{
    AccessCode, AppRecord, NewRefresh, NewToken, Rotation, Spend, Store, TokenKind,
};

/// Access codes live 10 minutes (Speckle's 600000 ms).
pub const CODE_LIFESPAN: Millis = 600_000;
/// Refresh tokens live about 182.5 days (Speckle's 1.577e10 ms).
pub const REFRESH_LIFESPAN: Millis = 15_770_000_000;
/// A browser session on Tessera's own pages lasts 30 days (the life of Speckle's `authn` cookie).
pub const SESSION_LIFESPAN: Millis = 30 * 24 * 3600 * 1000;
/// Challenges are stored in a 255-character column in Speckle.
pub const MAX_CHALLENGE_CHARS: usize = 255;

/// Why a token endpoint refused a request. Each endpoint words it its own way: Speckle's exact
/// messages at `/auth/token`, RFC 6749 error codes at `/oauth/token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    /// A required field is missing (named as Speckle names it: "App Id", "Challenge", …).
    Missing(&'static str),
    MissingRefreshToken,
    CodeNotFound,
    CodeForAnotherApp,
    CodeExpired,
    ChallengeMismatch,
    /// The code was issued for the other exchange (its challenge method).
    WrongEndpoint(ChallengeMethod),
    UnknownApp,
    WrongAppSecret,
    /// Unknown refresh token, or one issued to another app.
    RefreshInvalid,
    RefreshWrongSecret,
    RefreshSecretRequired,
    RefreshExpired,
    RefreshTampered,
    RefreshReplayed,
    /// Introspection is for confidential clients: the app secret is required.
    ClientSecretRequired,
    /// The app is a confidential client: its secret is required to exchange a code.
    SecretRequired,
    /// A `token_type_hint` that is neither `access_token` nor `refresh_token`.
    UnsupportedTokenType,
    /// A scope the app may not be granted.
    InvalidScope,
    /// RFC 8628: an unknown or spent device code, or one issued to another client.
    DeviceCodeInvalid,
    /// RFC 8628 §3.5: the person has not answered yet.
    AuthorizationPending,
    /// RFC 8628 §3.5: polled faster than the interval.
    SlowDown,
    /// RFC 8628 §3.5: the person denied the device.
    AccessDenied,
    /// RFC 8628 §3.5: the device code expired.
    ExpiredToken,
}

impl From<GrantError> for Error {
    fn from(g: GrantError) -> Error {
        Error::Grant(g)
    }
}

/// Reads the challenge of an authorization request. It arrives as a path segment, possibly with
/// the suffix of Speckle's docs (`<challenge>&code_challenge_method=S256`), and possibly with a
/// `code_challenge_method` query parameter. Without a method it is Speckle's legacy plain
/// challenge.
pub fn parse_challenge(
    segment: &str,
    query_method: Option<&str>,
) -> Result<(String, ChallengeMethod)> {
    let (challenge, path_method) = match segment.split_once("&code_challenge_method=") {
        Some((challenge, method)) => (challenge, Some(method)),
        None => (segment, None),
    };
    let method = match (path_method, query_method) {
        (Some(a), Some(b)) if a != b => {
            return Err(Error::user_input(
                "The request names two different code_challenge_method values.",
            ));
        }
        (Some(m), _) | (None, Some(m)) => ChallengeMethod::parse(m).ok_or_else(|| {
            Error::user_input(format!(
                "Unsupported code_challenge_method {m:?}: use S256 (or leave it out for a legacy \
                 plain challenge)."
            ))
        })?,
        (None, None) => ChallengeMethod::Plain,
    };
    match method {
        ChallengeMethod::S256 if !pkce::is_valid_s256_challenge(challenge) => {
            Err(Error::user_input(
                "An S256 code challenge is 43 characters of base64url: BASE64URL(SHA256(code_verifier)).",
            ))
        }
        ChallengeMethod::Plain if challenge.is_empty() => {
            Err(Error::user_input("The request has no challenge."))
        }
        ChallengeMethod::Plain if challenge.chars().count() > MAX_CHALLENGE_CHARS => {
            Err(Error::user_input(format!(
                "The challenge is too long; it can be at most {MAX_CHALLENGE_CHARS} characters."
            )))
        }
        ChallengeMethod::Plain
            if !challenge
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"&/?#%\"'<>\\`".contains(&b)) =>
        {
            Err(Error::user_input(
                "The challenge may only contain letters, digits and simple punctuation \
                 (such as - . _ ~ @ + =).",
            ))
        }
        _ => Ok((challenge.to_owned(), method)),
    }
}

/// A validated request to sign in to an app through the consent page.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub app: AppRecord,
    pub challenge: String,
    pub method: ChallengeMethod,
    /// The client's `state`, handed back unchanged with the answer (as OAuth's `state` is).
    pub state: Option<String>,
    /// What the app asks for this time (`scope` of a standard request), within its registered
    /// scopes; `None` means all of them.
    pub scopes: Option<ScopeSet>,
    /// A standard request (`/oauth/authorize`): where to answer and whom to name; `None` for
    /// Speckle's `/authn/verify`.
    pub standard: Option<Standard>,
}

/// How a standard authorization request is answered.
#[derive(Debug, Clone)]
pub struct Standard {
    /// The registered redirect URI the client named (a loopback one with its port).
    pub redirect_uri: String,
    /// This server, named as `iss` in every answer (RFC 9207).
    pub issuer: String,
    /// OpenID Connect's `nonce`, repeated in the ID token.
    pub nonce: Option<String>,
    /// What the client asks the sign-in to show, or not.
    pub prompt: super::authorize::Prompt,
}

/// The longest `state` a client may pass through a sign-in.
pub const MAX_STATE_CHARS: usize = 1024;

impl AuthorizationRequest {
    /// Where the browser goes back to the app with `pairs`, after the client's `state` if it sent
    /// one (Speckle's clients read `access_code` as the last parameter).
    pub fn back_to_app(&self, pairs: &[(&str, &str)]) -> Result<String> {
        let mut all: Vec<(&str, &str)> = self.state.iter().map(|s| ("state", s.as_str())).collect();
        all.extend_from_slice(pairs);
        match &self.standard {
            None => super::apps::redirect_with_all(&self.app.redirect_url, &all),
            Some(standard) => {
                all.push(("iss", &standard.issuer));
                super::apps::redirect_with_all(&standard.redirect_uri, &all)
            }
        }
    }

    /// Where the browser goes when the person denies: Speckle's `denied=true`, or OAuth's
    /// `error=access_denied`.
    pub fn denied(&self) -> Result<String> {
        match self.standard {
            None => self.back_to_app(&[("denied", "true")]),
            Some(_) => self.back_to_app(&[
                ("error", "access_denied"),
                ("error_description", "The person did not allow the app."),
            ]),
        }
    }

    /// What the client asked the sign-in to show (nothing special for Speckle's flows).
    pub fn prompt(&self) -> super::authorize::Prompt {
        self.standard.as_ref().map(|s| s.prompt).unwrap_or_default()
    }

    /// Back to the app: the person is not signed in and the app asked for no page.
    pub fn login_required(&self) -> Result<String> {
        self.back_to_app(&[
            ("error", "login_required"),
            ("error_description", "The person is not signed in."),
        ])
    }

    /// The scopes the consent page lists and a code grants at most.
    pub fn asked_scopes(&self) -> ScopeSet {
        self.scopes.map_or(self.app.scopes, |asked| {
            asked.intersection(self.app.grantable())
        })
    }
}

/// Who registered an app, as the consent page says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisteredBy {
    /// A first-party app of this server.
    Server,
    User(String),
    /// Its author's account is gone.
    FormerUser,
}

/// What the consent page does for a signed-in person (Kanidm's decision shape: the door only
/// renders it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Go back to the app with this URL (it carries the code).
    Permitted { redirect: String },
    /// Ask the person first.
    ConsentRequested { registered_by: RegisteredBy },
    /// Back to the app without a code: it asked for no page (`prompt=none`) and one was needed.
    Declined { redirect: String },
}

/// A freshly issued access token and its refresh token.
#[derive(Debug)]
pub struct TokenPair {
    pub token: PlainToken,
    pub refresh_token: PlainToken,
    /// What the access token grants, and how long it lives (for RFC 6749 §5.1 answers).
    pub scopes: ScopeSet,
    pub lifespan: Millis,
    /// OpenID Connect's ID token, for a sign-in granted `openid`.
    pub id_token: Option<String>,
}

/// What a code remembers of the sign-in that issued it, for the ID token its exchange returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct CodeSignIn<'a> {
    pub nonce: Option<&'a str>,
    /// When the person signed in, if known.
    pub auth_time: Option<Millis>,
}

impl Tessera {
    /// Issues a single-use access code binding the user, the app and the client's challenge.
    ///
    /// The one place that decides what a code grants: the app's scopes as far as the issuer holds
    /// them (`held`: the scopes of the token or session asking, or every registered scope for a
    /// person who just signed in with a password). Speckle grants the app's scopes whatever the
    /// token, so a `tokens:write` token could mint an all-scope token; here a code never buys more
    /// than its issuer holds, nor more than the app asks for.
    pub async fn issue_code(
        &self,
        app: &AppRecord,
        user_id: &str,
        held: ScopeSet,
        challenge: &str,
        method: ChallengeMethod,
        sign_in: CodeSignIn<'_>,
    ) -> Result<PlainToken> {
        let store = self.store();
        let now = self.now();

        let scopes = app.grantable().intersection(held);
        if scopes.is_empty() {
            return Err(Error::forbidden(
                "Your auth token holds none of the scopes this app asks for.",
            ));
        }
        let code = new_token()?;
        store
            .insert_code(&AccessCode {
                digest: code.whole_digest(),
                app_id: app.id.clone(),
                user_id: user_id.into(),
                challenge: pkce::challenge_digest(challenge),
                method,
                scopes: Some(scopes),
                created_at: now,
                lifespan: CODE_LIFESPAN,
                used: false,
                nonce: sign_in.nonce.map(str::to_owned),
                auth_time: sign_in.auth_time,
            })
            .await?;
        Ok(code)
    }

    /// Deletes a token family and revokes its tokens.
    async fn revoke_family(&self, family_id: &str) -> Result<()> {
        let revoked = self.store().revoke_family(family_id).await?;
        self.revoked(&revoked).await
    }

    /// Answers `POST /auth/token`.
    pub async fn legacy_token(&self, request: TokenRequest, client: &Client) -> Result<TokenPair> {
        match request {
            TokenRequest::Code {
                app_id,
                app_secret,
                access_code,
                challenge,
            } => {
                let proof = CodeProof::Legacy {
                    app_secret: &app_secret,
                    challenge: &challenge,
                };
                self.exchange_code(&app_id, &access_code, proof, client)
                    .await
            }
            TokenRequest::Refresh {
                app_id,
                app_secret,
                refresh_token,
            } => {
                self.refresh(&app_id, Some(&app_secret), &refresh_token, client)
                    .await
            }
        }
    }

    /// Exchanges an access code, with Speckle's checks in Speckle's order. From the moment the app id
    /// matches, the code is spent, whatever happens next; the tokens it buys are stored in the same
    /// transaction that spends it.
    pub async fn exchange_code(
        &self,
        app_id: &str,
        access_code: &str,
        proof: CodeProof<'_>,
        client: &Client,
    ) -> Result<TokenPair> {
        let store = self.store();
        let now = self.now();

        let code = PlainToken::parse(access_code).map_err(|_| GrantError::CodeNotFound)?;
        let stored = store
            .code(&code.whole_digest())
            .await?
            .ok_or(GrantError::CodeNotFound)?;
        if stored.app_id != app_id {
            return Err(GrantError::CodeForAnotherApp.into());
        }
        let family_id = random_hex(16)?;
        let redeemed = redeem(store, &stored, proof, &family_id, now).await;
        let pair = redeemed
            .as_ref()
            .ok()
            .map(|(token, refresh, _)| (token, refresh));
        if let Spend::AlreadySpent { family_id } = store
            .spend_code(&stored.digest, &family_id, now, pair)
            .await?
        {
            // A code presented twice was intercepted or replayed: what it bought is revoked.
            if let Some(family_id) = family_id {
                self.revoke_family(&family_id).await?;
            }
            return Err(GrantError::CodeNotFound.into());
        }
        let mut pair = redeemed.map(|(_, _, pair)| pair)?;
        pair.id_token = self
            .id_token(SignedIn {
                app_id,
                user_id: &stored.user_id,
                scopes: pair.scopes,
                nonce: stored.nonce.as_deref(),
                auth_time: stored.auth_time,
            })
            .await?;
        self.browser_session(app_id, &pair, &stored.user_id, client)
            .await;
        Ok(pair)
    }

    /// A web-app token bought through Speckle's own sign-in (the frontend's code exchange or
    /// refresh) is a browser session: note where it started, as `issue_session` does.
    async fn browser_session(
        &self,
        app_id: &str,
        pair: &TokenPair,
        user_id: &str,
        client: &Client,
    ) {
        if app_id == WEB_APP_ID {
            self.record_session(pair.token.id(), user_id, client).await;
        }
    }

    /// The refresh grant. A refresh token is spent by its first use; a second presentation means it
    /// leaked (or a client misbehaves), so the whole family is revoked.
    pub async fn refresh(
        &self,
        app_id: &str,
        app_secret: Option<&str>,
        refresh_token: &str,
        client: &Client,
    ) -> Result<TokenPair> {
        let store = self.store();
        let now = self.now();

        let presented = PlainToken::parse(refresh_token).map_err(|_| GrantError::RefreshInvalid)?;
        let stored = store
            .refresh_token(presented.id())
            .await?
            .ok_or(GrantError::RefreshInvalid)?;
        if stored.app_id != app_id {
            return Err(GrantError::RefreshInvalid.into());
        }
        if is_expired(stored.created_at, stored.lifespan, now) {
            store.delete_refresh_token(&stored.id).await?;
            return Err(GrantError::RefreshExpired.into());
        }
        if !stored.digest.matches(&presented.digest()) {
            return Err(GrantError::RefreshTampered.into());
        }
        let app = store.app(app_id).await?.ok_or(GrantError::RefreshInvalid)?;
        match app_secret {
            Some(secret) if !secrets_match(&app.secret, secret) => {
                return Err(GrantError::RefreshWrongSecret.into());
            }
            None if stored.client_authenticated || app.confidential => {
                return Err(GrantError::RefreshSecretRequired.into());
            }
            _ => {}
        }
        if stored.used {
            self.revoke_family(&stored.family_id).await?;
            return Err(GrantError::RefreshReplayed.into());
        }
        // Never wider than what the chain was granted, nor than what the app may still ask for.
        let scopes = stored.scopes.intersection(app.grantable());
        let (token, refresh, pair) = new_pair(
            &app,
            &stored.user_id,
            scopes,
            &stored.family_id,
            stored.client_authenticated,
            now,
        )?;
        match store
            .rotate_refresh_token(&stored.id, now, &token, &refresh)
            .await?
        {
            Rotation::Rotated => {
                self.browser_session(app_id, &pair, &stored.user_id, client)
                    .await;
                Ok(pair)
            }
            Rotation::AlreadyUsed => {
                self.revoke_family(&stored.family_id).await?;
                Err(GrantError::RefreshReplayed.into())
            }
        }
    }

    /// A browser session on Tessera's own pages: a web-app (`spklwebapp`) token for 30 days, without a
    /// refresh token.
    pub async fn issue_session(
        &self,
        user_id: &str,
        client: &super::activity::Client,
    ) -> Result<PlainToken> {
        let store = self.store();
        let now = self.now();

        let app = store
            .app(WEB_APP_ID)
            .await?
            .ok_or_else(|| Error::Internal("the web app is not seeded".into()))?;
        let (token, record) = new_app_token(
            &app,
            user_id,
            app.scopes,
            &random_hex(16)?,
            SESSION_LIFESPAN,
            now,
        )?;
        store.insert_token(&record).await?;
        self.record_session(token.id(), user_id, client).await;
        Ok(token)
    }

    /// `POST /auth/logout`: revokes a token, and the refresh chain of a refresh token, but only for a
    /// caller who presents the whole token (Speckle needs just the 10-character id).
    /// The code a person who just signed in with a password gets for the web app: bound to the
    /// client's plain challenge, and granting every registered scope (a password is the whole
    /// account).
    pub async fn sign_in_code(&self, user_id: &str, challenge: &str) -> Result<PlainToken> {
        let web_app = self
            .store()
            .app(WEB_APP_ID)
            .await?
            .ok_or_else(|| Error::Internal("the web app is not seeded".into()))?;
        self.issue_code(
            &web_app,
            user_id,
            ScopeSet::registered(),
            challenge,
            ChallengeMethod::Plain,
            CodeSignIn {
                nonce: None,
                auth_time: Some(self.now()),
            },
        )
        .await
    }

    /// Speckle's `GET /auth/accesscode`: a client holding a `tokens:write` token asks for a code
    /// for `app` on behalf of the token's owner. The challenge is kept verbatim (plain) unless a
    /// method is given as a parameter of its own; the code grants at most what the token holds.
    /// Returns where the client goes with the code.
    pub async fn code_for_token(
        &self,
        app: &AppRecord,
        token: &str,
        challenge: &str,
        method: Option<&str>,
        client: &super::activity::Client,
    ) -> Result<String> {
        let auth = self.authenticate(token, client).await?;
        if !auth.has_scope(tessera_proto::Scope::TokensWrite) {
            return Err(Error::MissingScope(tessera_proto::Scope::TokensWrite));
        }
        let (challenge, method) = match method {
            Some(_) => parse_challenge(challenge, method)?,
            None if challenge.chars().count() > MAX_CHALLENGE_CHARS => {
                return Err(Error::user_input("Challenge is too long"));
            }
            None => (challenge.to_owned(), ChallengeMethod::Plain),
        };
        let code = self
            .issue_code(
                app,
                &auth.user_id,
                auth.scopes,
                &challenge,
                method,
                CodeSignIn::default(),
            )
            .await?;
        super::apps::redirect_with(&app.redirect_url, "access_code", code.expose())
    }

    /// Reads a sign-in request of Speckle's consent page (`/authn/verify/{appId}/{challenge}`):
    /// the app must exist and the challenge be well-formed. Nothing is decided yet.
    pub async fn authorization_request(
        &self,
        app_id: &str,
        challenge: &str,
        method: Option<&str>,
        state: Option<&str>,
    ) -> Result<AuthorizationRequest> {
        let app = self
            .store()
            .app(app_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: crate::error::Missing::App,
                message: format!("No app with the id {app_id:?} is registered on this server.")
                    .into(),
            })?;
        let (challenge, method) = parse_challenge(challenge, method)?;
        let state = state.filter(|s| !s.is_empty());
        if state.is_some_and(|s| s.chars().count() > MAX_STATE_CHARS) {
            return Err(Error::user_input(format!(
                "The state can be at most {MAX_STATE_CHARS} characters."
            )));
        }
        Ok(AuthorizationRequest {
            app,
            challenge,
            method,
            state: state.map(str::to_owned),
            scopes: None,
            standard: None,
        })
    }

    /// What a signed-in person meets at the consent page: an app the server trusts by default
    /// is permitted at once (the code is issued); any other asks for consent.
    pub async fn authorize(
        &self,
        session: &Auth,
        request: &AuthorizationRequest,
    ) -> Result<Authorization> {
        let prompt = request.prompt();
        let permitted = (request.app.trust_by_default && !prompt.consent)
            || (prompt.none && self.already_allowed(session, request).await?);
        if permitted {
            return Ok(Authorization::Permitted {
                redirect: self.approve(session, request).await?,
            });
        }
        if prompt.none {
            return Ok(Authorization::Declined {
                redirect: request.back_to_app(&[
                    ("error", "consent_required"),
                    (
                        "error_description",
                        "The person has not allowed this app these scopes yet.",
                    ),
                ])?,
            });
        }
        let registered_by = self.registered_by(&request.app).await?;
        Ok(Authorization::ConsentRequested { registered_by })
    }

    /// Whether the person already allowed the app what it asks (a live grant covers it).
    async fn already_allowed(
        &self,
        session: &Auth,
        request: &AuthorizationRequest,
    ) -> Result<bool> {
        let mut asked = request.asked_scopes();
        asked.remove(tessera_proto::Scope::OpenId);
        Ok(self
            .store()
            .app_grants(&session.user_id)
            .await?
            .iter()
            .any(|g| g.app.id == request.app.id && asked.is_subset(g.scopes)))
    }

    /// Who registered an app, as the pages say it.
    pub(crate) async fn registered_by(&self, app: &AppRecord) -> Result<RegisteredBy> {
        Ok(match &app.author_id {
            None => RegisteredBy::Server,
            Some(id) => match self.store().user_by_id(id).await? {
                Some(author) => RegisteredBy::User(author.name),
                None => RegisteredBy::FormerUser,
            },
        })
    }

    /// The person allowed the app: issues the code (at most what the session holds) and says
    /// where the browser goes with it.
    pub async fn approve(&self, session: &Auth, request: &AuthorizationRequest) -> Result<String> {
        // A person signed in on these pages can always say who they are (`openid`).
        let mut held = session.scopes;
        held.insert(tessera_proto::Scope::OpenId);
        let nonce = request.standard.as_ref().and_then(|s| s.nonce.as_deref());
        let code = self
            .issue_code(
                &request.app,
                &session.user_id,
                held.intersection(request.asked_scopes()),
                &request.challenge,
                request.method,
                CodeSignIn {
                    nonce,
                    auth_time: Some(session.issued_at),
                },
            )
            .await?;
        if request.app.id != WEB_APP_ID {
            let subject = super::activity::Subject::new(&request.app.name, &request.app.id);
            self.note_for(session, ActivityKind::AppAuthorized, subject);
        }
        let name = if request.standard.is_some() {
            "code"
        } else {
            "access_code"
        };
        request.back_to_app(&[(name, code.expose())])
    }

    /// Ends a session on Tessera's own pages: the session's token stops working at once.
    pub async fn end_session(&self, session: &Auth) -> Result<()> {
        let revoked = self.store().sign_out(&session.token_id, None).await?;
        self.revoked(&revoked).await?;
        let subject = super::activity::Subject {
            name: Some("this session".into()),
            id: Some(session.token_id.to_string()),
        };
        self.note_for(session, ActivityKind::SessionEnded, subject);
        Ok(())
    }

    pub async fn logout(&self, token: Option<&str>, refresh_token: Option<&str>) -> Result<()> {
        let store = self.store();
        let failed = || Error::Malformed("Something went wrong while trying to logout.".into());
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
                if !stored.digest.matches(&presented.digest()) || stored.user_id != record.owner_id
                {
                    return Err(failed());
                }
                Some(stored.family_id)
            }
        };
        let revoked = store.sign_out(token.id(), family.as_deref()).await?;
        self.revoked(&revoked).await
    }
}

/// How a client proves that a code is its own.
#[derive(Debug, Clone, Copy)]
pub enum CodeProof<'a> {
    /// `POST /auth/token`: the app secret and the (plain) challenge itself.
    Legacy {
        app_secret: &'a str,
        challenge: &'a str,
    },
    /// `POST /oauth/token`: the PKCE verifier, and the app secret if the client has one.
    Pkce {
        verifier: &'a str,
        app_secret: Option<&'a str>,
    },
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

impl TokenRequest {
    /// Reads Speckle's body fields. As in Speckle, the presence of the key `refreshToken` (even
    /// empty) selects the refresh grant, and an empty value counts as missing.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<TokenRequest, GrantError> {
        let get = |key: &str| fields.get(key).filter(|v| !v.is_empty()).cloned();
        let app_id = get("appId").ok_or(GrantError::Missing("App Id"))?;
        let app_secret = get("appSecret").ok_or(GrantError::Missing("App Secret"))?;
        if fields.contains_key("refreshToken") {
            return Ok(TokenRequest::Refresh {
                refresh_token: get("refreshToken").ok_or(GrantError::MissingRefreshToken)?,
                app_id,
                app_secret,
            });
        }
        Ok(TokenRequest::Code {
            access_code: get("accessCode").ok_or(GrantError::Missing("Access Code"))?,
            challenge: get("challenge").ok_or(GrantError::Missing("Challenge"))?,
            app_id,
            app_secret,
        })
    }
}

pub(crate) fn secrets_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Builds an app token for `user_id` in `family_id`.
fn new_app_token(
    app: &AppRecord,
    user_id: &str,
    scopes: ScopeSet,
    family_id: &str,
    lifespan: Millis,
    now: Millis,
) -> Result<(PlainToken, NewToken)> {
    let token = new_token()?;
    let record = NewToken {
        id: token.id().into(),
        digest: token.digest(),
        owner_id: user_id.into(),
        name: format!("{}-token", app.name),
        last_chars: token.last_chars().to_owned(),
        scopes,
        kind: TokenKind::App,
        app_id: Some(app.id.clone()),
        family_id: Some(family_id.to_owned()),
        lifespan,
        created_at: now,
        resources: Vec::new(),
    };
    Ok((token, record))
}

/// The records of a new app token and its refresh token in `family_id`.
pub(crate) fn new_pair(
    app: &AppRecord,
    user_id: &str,
    scopes: ScopeSet,
    family_id: &str,
    client_authenticated: bool,
    now: Millis,
) -> Result<(NewToken, NewRefresh, TokenPair)> {
    let (token, token_record) = new_app_token(
        app,
        user_id,
        scopes,
        family_id,
        super::tokens::DEFAULT_LIFESPAN,
        now,
    )?;
    let refresh_token = new_token()?;
    let refresh_record = NewRefresh {
        id: refresh_token.id().into(),
        digest: refresh_token.digest(),
        app_id: app.id.clone(),
        user_id: user_id.into(),
        family_id: family_id.to_owned(),
        scopes,
        client_authenticated,
        created_at: now,
        lifespan: REFRESH_LIFESPAN,
    };
    Ok((
        token_record,
        refresh_record,
        TokenPair {
            token,
            refresh_token,
            scopes,
            lifespan: super::tokens::DEFAULT_LIFESPAN,
            id_token: None,
        },
    ))
}

/// Checks a code's proof and, if it holds, prepares the token pair it buys.
async fn redeem(
    store: &dyn Store,
    stored: &AccessCode,
    proof: CodeProof<'_>,
    family_id: &str,
    now: Millis,
) -> Result<(NewToken, NewRefresh, TokenPair)> {
    if is_expired(stored.created_at, stored.lifespan, now) {
        return Err(GrantError::CodeExpired.into());
    }
    let app_secret = match proof {
        CodeProof::Legacy {
            app_secret,
            challenge,
        } => {
            if stored.method != ChallengeMethod::Plain {
                return Err(GrantError::WrongEndpoint(stored.method).into());
            }
            if !secrets_match(&stored.challenge, &pkce::challenge_digest(challenge)) {
                return Err(GrantError::ChallengeMismatch.into());
            }
            Some(app_secret)
        }
        CodeProof::Pkce {
            verifier,
            app_secret,
        } => {
            if stored.method != ChallengeMethod::S256 {
                return Err(GrantError::WrongEndpoint(stored.method).into());
            }
            let computed = pkce::challenge_digest(&pkce::s256_challenge(verifier));
            if !secrets_match(&stored.challenge, &computed) {
                return Err(GrantError::ChallengeMismatch.into());
            }
            app_secret
        }
    };
    let app = store
        .app(&stored.app_id)
        .await?
        .ok_or(GrantError::UnknownApp)?;
    if let Some(secret) = app_secret
        && !secrets_match(&app.secret, secret)
    {
        return Err(GrantError::WrongAppSecret.into());
    }
    if app.confidential && app_secret.is_none() {
        return Err(GrantError::SecretRequired.into());
    }
    // What the code granted, and never more than the app may still ask for.
    let scopes = stored
        .scopes
        .unwrap_or(app.scopes)
        .intersection(app.grantable());
    new_pair(
        &app,
        &stored.user_id,
        scopes,
        family_id,
        app_secret.is_some(),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fields;

    fn refusal(pairs: &[(&str, &str)]) -> GrantError {
        TokenRequest::from_fields(&fields(pairs)).unwrap_err()
    }

    #[test]
    fn missing_fields_in_speckle_order() {
        use GrantError::{Missing, MissingRefreshToken};
        assert_eq!(refusal(&[]), Missing("App Id"));
        assert_eq!(
            refusal(&[("accessCode", "x"), ("challenge", "y")]),
            Missing("App Id")
        );
        assert_eq!(refusal(&[("appId", "a")]), Missing("App Secret"));
        assert_eq!(
            refusal(&[("appId", "a"), ("appSecret", "s")]),
            Missing("Access Code")
        );
        assert_eq!(
            refusal(&[("appId", "a"), ("appSecret", "s"), ("accessCode", "c")]),
            Missing("Challenge")
        );
        assert_eq!(
            refusal(&[("appId", "a"), ("appSecret", "s"), ("refreshToken", "")]),
            MissingRefreshToken
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

    #[test]
    fn challenges_from_the_path() {
        let s256 = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let parsed =
            |seg: &str, q: Option<&str>| parse_challenge(seg, q).map_err(|e| e.to_string());
        assert_eq!(
            parsed("abc123", None),
            Ok(("abc123".into(), ChallengeMethod::Plain))
        );
        assert_eq!(
            parsed(&format!("{s256}&code_challenge_method=S256"), None),
            Ok((s256.into(), ChallengeMethod::S256)),
            "the docs' suffix"
        );
        assert_eq!(
            parsed(s256, Some("S256")),
            Ok((s256.into(), ChallengeMethod::S256))
        );
        assert_eq!(
            parsed("abc", Some("plain")),
            Ok(("abc".into(), ChallengeMethod::Plain))
        );
        assert!(
            parsed("short&code_challenge_method=S256", None)
                .unwrap_err()
                .contains("43")
        );
        assert!(
            parsed(s256, Some("s256"))
                .unwrap_err()
                .contains("Unsupported")
        );
        assert!(
            parsed(&format!("{s256}&code_challenge_method=S256"), Some("plain"))
                .unwrap_err()
                .contains("two different")
        );
        assert!(parsed("", None).is_err());
        assert!(
            parsed(&"a".repeat(256), None)
                .unwrap_err()
                .contains("too long")
        );
        assert!(parsed("a<b", None).is_err());
        assert!(parsed("a&b=c", None).is_err());
        // What Speckle's connectors send.
        assert!(parsed("aB3_x.y@z-Q+w=", None).is_ok());
    }
}
