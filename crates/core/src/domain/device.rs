//! The device authorization grant (RFC 8628), for CLIs, scripts on servers and CI, which have no
//! browser of their own (docs/ARCHITECTURE.md, "OAuth"). The device asks for a device code and a
//! short user code; the person opens `/device` on any browser, signs in, enters the user code (or
//! follows the link that carries it), sees what the device asks for and allows or denies it;
//! meanwhile the device polls the token endpoint, which answers as §3.5 says until it can hand
//! over the tokens, once.
//!
//! User codes are eight letters from a 20-letter alphabet without vowels (no words) and without
//! look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B), shown as `XXXX-XXXX`; entry ignores case, dashes and
//! spaces. With 20^8 codes, ten minutes of life and the sign-in rate limit on the page, guessing
//! one is out of reach. The consent question is always asked, even for a trusted app: a user code
//! can be sent to someone by another person (RFC 8628 §5.4).

use tessera_proto::{PlainToken, ScopeSet};

use super::activity::Subject;
use super::auth::Auth;
use super::authorize::asked_scopes;
use super::grants::{GrantError, RegisteredBy, TokenPair, new_pair};
use super::oauth::ClientCredentials;
use super::oidc::SignedIn;
use super::{is_expired, new_token, random_hex};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{ActivityKind, AppRecord, DeviceDecision, DeviceGrant};
use crate::service::Tessera;

/// A device code lives ten minutes.
pub const DEVICE_CODE_LIFESPAN: Millis = 600_000;
/// The device polls at most every five seconds (RFC 8628 §3.2's default).
pub const POLL_INTERVAL: Millis = 5_000;
/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Millis = 5_000;
/// The letters of a user code: consonants only, none that looks like a digit or another letter.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKMNPQRTVWXY34";
pub const USER_CODE_LETTERS: usize = 8;

/// What `/oauth/device_authorization` answers (RFC 8628 §3.2).
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: PlainToken,
    /// As shown: `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: Millis,
    pub interval: Millis,
}

/// What the `/device` page shows for a user code.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub app: AppRecord,
    pub scopes: ScopeSet,
    pub registered_by: RegisteredBy,
    /// The code, as shown.
    pub user_code: String,
}

/// A user code as typed, normalised: upper case, without dashes or spaces; `None` unless it is
/// eight letters of the alphabet.
pub fn normalize_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid =
        code.len() == USER_CODE_LETTERS && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
    valid.then_some(code)
}

/// `XXXXXXXX` as `XXXX-XXXX`.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len().min(USER_CODE_LETTERS / 2));
    format!("{a}-{b}")
}

fn user_code_digest(normalized: &str) -> String {
    tessera_proto::pkce::challenge_digest(normalized)
}

fn new_user_code() -> Result<String> {
    let mut bytes = [0u8; USER_CODE_LETTERS];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    // 256 is not a multiple of 20: draw again for the top 16 values, so every letter is as likely.
    let mut out = String::with_capacity(USER_CODE_LETTERS);
    let mut pool = bytes.to_vec();
    while out.len() < USER_CODE_LETTERS {
        let b = match pool.pop() {
            Some(b) => b,
            None => {
                let mut more = [0u8; USER_CODE_LETTERS];
                getrandom::fill(&mut more)
                    .map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
                pool.extend_from_slice(&more);
                continue;
            }
        };
        if b < 240 {
            out.push(USER_CODE_ALPHABET[usize::from(b) % 20] as char);
        }
    }
    Ok(out)
}

fn code_is_unknown() -> Error {
    Error::user_input(
        "That code is not valid, or it has expired or been used. Check the code your device \
         shows, or start again on the device.",
    )
}

impl Tessera {
    /// `POST /oauth/device_authorization`: a client starts a device sign-in. `scope` is read as
    /// at `/oauth/authorize` (a subset of the app's, `openid` allowed; default the app's).
    pub async fn start_device_authorization(
        &self,
        credentials: ClientCredentials<'_>,
        scope: Option<&str>,
    ) -> Result<DeviceAuthorization> {
        let app = self.client(credentials).await?;
        if app.confidential && credentials.secret.is_none() {
            return Err(GrantError::SecretRequired.into());
        }
        let scopes = match scope.filter(|s| !s.trim().is_empty()) {
            None => app.scopes,
            Some(asked) => asked_scopes(asked, app.grantable())
                .filter(|s| !s.is_empty())
                .ok_or(GrantError::InvalidScope)?,
        };
        let now = self.now();
        let device_code = new_token()?;
        for _ in 0..5 {
            let user_code = new_user_code()?;
            let grant = DeviceGrant {
                device_digest: device_code.whole_digest(),
                user_code_digest: user_code_digest(&user_code),
                app_id: app.id.clone(),
                scopes,
                created_at: now,
                lifespan: DEVICE_CODE_LIFESPAN,
                interval: POLL_INTERVAL,
                polled_at: None,
                decision: DeviceDecision::Pending,
                user_id: None,
                auth_time: None,
                spent: false,
            };
            if self.store().insert_device_grant(&grant).await? {
                return Ok(DeviceAuthorization {
                    device_code,
                    user_code: display_user_code(&user_code),
                    expires_in: DEVICE_CODE_LIFESPAN,
                    interval: POLL_INTERVAL,
                });
            }
        }
        Err(Error::Internal("could not draw a free user code".into()))
    }

    /// The pending grant a typed user code names, its app, and the normalised code.
    async fn pending_device_grant(&self, typed: &str) -> Result<(DeviceGrant, AppRecord, String)> {
        let code = normalize_user_code(typed).ok_or_else(code_is_unknown)?;
        let grant = self
            .store()
            .device_grant_by_user_code(&user_code_digest(&code))
            .await?
            .filter(|g| {
                g.decision == DeviceDecision::Pending
                    && !is_expired(g.created_at, g.lifespan, self.now())
            })
            .ok_or_else(code_is_unknown)?;
        let app = self
            .store()
            .app(&grant.app_id)
            .await?
            .ok_or_else(code_is_unknown)?;
        Ok((grant, app, code))
    }

    /// The pending request a typed user code names, for the `/device` page.
    pub async fn device_request(&self, typed: &str) -> Result<DeviceRequest> {
        let (grant, app, code) = self.pending_device_grant(typed).await?;
        let registered_by = self.registered_by(&app).await?;
        Ok(DeviceRequest {
            scopes: grant.scopes.intersection(app.grantable()),
            app,
            registered_by,
            user_code: display_user_code(&code),
        })
    }

    /// The person's answer on `/device`. Allowing grants at most what their session holds (and
    /// who they are, `openid`).
    pub async fn answer_device(&self, session: &Auth, typed: &str, allow: bool) -> Result<()> {
        let (grant, app, code) = self.pending_device_grant(typed).await?;
        let mut held = session.scopes;
        held.insert(tessera_proto::Scope::OpenId);
        let scopes = grant
            .scopes
            .intersection(app.grantable())
            .intersection(held);
        let (decision, scopes) = match allow {
            true if scopes.is_empty() => {
                return Err(Error::forbidden(
                    "Your session holds none of the scopes this device asks for.",
                ));
            }
            true => (DeviceDecision::Allowed, scopes),
            false => (DeviceDecision::Denied, ScopeSet::EMPTY),
        };
        let decided = self
            .store()
            .decide_device_grant(
                &user_code_digest(&code),
                decision,
                &session.user_id,
                scopes,
                session.issued_at,
            )
            .await?;
        if !decided {
            return Err(code_is_unknown());
        }
        if allow {
            let subject = Subject::new(&app.name, &app.id);
            self.note_for(session, ActivityKind::AppAuthorized, subject);
        }
        Ok(())
    }

    /// The device polls the token endpoint (`grant_type=urn:ietf:params:oauth:grant-type:
    /// device_code`). Until the person answers: `authorization_pending`, or `slow_down` (and five
    /// seconds more between polls from then on) when it polls faster than its interval; then
    /// `access_denied`, or the tokens, once; `expired_token` after ten minutes.
    pub async fn poll_device(
        &self,
        credentials: ClientCredentials<'_>,
        device_code: &str,
    ) -> Result<TokenPair> {
        let app = self.client(credentials).await?;
        if app.confidential && credentials.secret.is_none() {
            return Err(GrantError::SecretRequired.into());
        }
        let now = self.now();
        let code = PlainToken::parse(device_code).map_err(|_| GrantError::DeviceCodeInvalid)?;
        let grant = self
            .store()
            .device_grant(&code.whole_digest())
            .await?
            .filter(|g| g.app_id == app.id && !g.spent)
            .ok_or(GrantError::DeviceCodeInvalid)?;
        if is_expired(grant.created_at, grant.lifespan, now) {
            return Err(GrantError::ExpiredToken.into());
        }
        let too_soon = grant
            .polled_at
            .is_some_and(|at| now.saturating_sub(at) < grant.interval);
        let interval = if too_soon {
            grant.interval.saturating_add(SLOW_DOWN_STEP)
        } else {
            grant.interval
        };
        self.store()
            .note_device_poll(&grant.device_digest, now, interval)
            .await?;
        if too_soon {
            return Err(GrantError::SlowDown.into());
        }
        let user_id = match (grant.decision, &grant.user_id) {
            (DeviceDecision::Pending, _) => return Err(GrantError::AuthorizationPending.into()),
            (DeviceDecision::Denied, _) => return Err(GrantError::AccessDenied.into()),
            (DeviceDecision::Allowed, None) => return Err(GrantError::DeviceCodeInvalid.into()),
            (DeviceDecision::Allowed, Some(user_id)) => user_id.clone(),
        };
        let scopes = grant.scopes.intersection(app.grantable());
        let family_id = random_hex(16)?;
        let authenticated = credentials.secret.is_some();
        let (token, refresh, mut pair) =
            new_pair(&app, &user_id, scopes, &family_id, authenticated, now)?;
        if !self
            .store()
            .spend_device_grant(&grant.device_digest, (&token, &refresh))
            .await?
        {
            return Err(GrantError::DeviceCodeInvalid.into());
        }
        pair.id_token = self
            .id_token(SignedIn {
                app_id: &app.id,
                user_id: &user_id,
                scopes,
                nonce: None,
                auth_time: grant.auth_time,
            })
            .await?;
        Ok(pair)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_have_no_look_alikes_and_are_typed_loosely() {
        for forbidden in b"AEIOU0125678LSZ" {
            assert!(
                !USER_CODE_ALPHABET.contains(forbidden),
                "{}",
                *forbidden as char
            );
        }
        let code = new_user_code().unwrap();
        assert_eq!(normalize_user_code(&code).as_deref(), Some(code.as_str()));
        let shown = display_user_code(&code);
        assert_eq!(shown.len(), 9);
        assert_eq!(
            normalize_user_code(&shown.to_lowercase()).as_deref(),
            Some(code.as_str())
        );
        assert_eq!(
            normalize_user_code("BCDF GHJK").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJA"), None, "a vowel");
        assert_eq!(
            normalize_user_code("BCDF-GHJ0"),
            None,
            "a digit that looks like O"
        );
    }

    #[test]
    fn user_codes_use_every_letter() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(new_user_code().unwrap().bytes());
        }
        assert_eq!(seen.len(), USER_CODE_ALPHABET.len());
    }
}
