//! `GET /oauth/authorize`: the standard authorization request (RFC 6749 §4.1 with RFC 7636 PKCE,
//! as OAuth 2.1 and RFC 9700 have it), beside Speckle's `/authn/verify` (docs/ARCHITECTURE.md,
//! "OAuth"). It reads the request into the same [`AuthorizationRequest`] the consent page and the
//! code store already serve, so the sign-in, consent and code rules stay one.
//!
//! What cannot be trusted yet (an unknown `client_id`, a `redirect_uri` that is not the app's) is
//! shown on an error page and never redirected to; every other problem goes back to the client
//! as `error=…&error_description=…&state=…&iss=…` (RFC 6749 §4.1.2.1, RFC 9207).

use std::collections::HashMap;

use tessera_proto::{ChallengeMethod, Scope, ScopeSet};
use url::{Host, Url};

use super::grants::{AuthorizationRequest, MAX_STATE_CHARS, Standard, parse_challenge};
use super::oidc::MAX_NONCE_CHARS;
use crate::error::{Error, Missing};
use crate::service::Tessera;

/// What `prompt` asks of the sign-in (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: show nothing; answer `login_required` or `consent_required` if something would
    /// have to be shown.
    pub none: bool,
    /// `login` (or `select_account`): the person signs in again, even with a session.
    pub login: bool,
    /// `consent`: ask, even for an app the server trusts or one already allowed.
    pub consent: bool,
}

impl Prompt {
    fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut prompt = Prompt::default();
        for word in value.unwrap_or_default().split_whitespace() {
            match word {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => {
                    return Err(format!(
                        "prompt {other:?} is not supported: use none, login, consent or \
                         select_account."
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none cannot be combined with other values.".into());
        }
        Ok(prompt)
    }
}

/// Reads a standard `scope` parameter against what the app may be granted: Speckle's scope names
/// and `openid`. OpenID Connect's `profile` and `email` stand for `profile:read` and
/// `profile:email` when the app has those and are left out when it has not, as is
/// `offline_access` (a refresh token always comes with the access token); `None` when a name is
/// neither known nor the app's.
pub(crate) fn asked_scopes(asked: &str, grantable: ScopeSet) -> Option<ScopeSet> {
    let mut scopes = ScopeSet::EMPTY;
    for name in asked.split_whitespace() {
        let scope = match name {
            "profile" => Scope::ProfileRead,
            "email" => Scope::ProfileEmail,
            "offline_access" => continue,
            name => Scope::from_name(name).filter(|s| grantable.contains(*s))?,
        };
        if grantable.contains(scope) {
            scopes.insert(scope);
        }
    }
    Some(scopes)
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeProblem {
    /// Shown to the person; nothing is redirected (the client or its redirect is not known).
    Page(Error),
    /// Sent back to the client: where the browser goes.
    Client(String),
}

/// Whether a presented redirect URI is the registered one: exactly, except that a loopback
/// `http` URI registered without a port matches any port (RFC 8252 §7.3: native apps listen on
/// a port the system gives them).
pub fn redirect_matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(registered), Ok(presented)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback = |u: &Url| match u.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    registered.scheme() == "http"
        && presented.scheme() == "http"
        && loopback(&registered)
        && registered.port().is_none()
        && registered.host() == presented.host()
        && registered.path() == presented.path()
        && registered.query() == presented.query()
        && presented.fragment().is_none()
}

impl Tessera {
    /// Reads a `GET /oauth/authorize` request. `issuer` is this server's public URL (named in
    /// every answer, RFC 9207).
    pub async fn standard_authorization_request(
        &self,
        params: &HashMap<String, String>,
        issuer: &str,
    ) -> Result<AuthorizationRequest, AuthorizeProblem> {
        let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let page = |message: String| AuthorizeProblem::Page(Error::user_input(message));
        let client_id = get("client_id").ok_or_else(|| page("client_id is required.".into()))?;
        let app = self
            .store()
            .app(client_id)
            .await
            .map_err(AuthorizeProblem::Page)?
            .ok_or_else(|| {
                AuthorizeProblem::Page(Error::NotFound {
                    what: Missing::App,
                    message: format!(
                        "No app with the id {client_id:?} is registered on this server."
                    )
                    .into(),
                })
            })?;
        let redirect_uri = match get("redirect_uri") {
            None => app.redirect_url.clone(),
            Some(uri) if redirect_matches(&app.redirect_url, uri) => uri.to_owned(),
            Some(uri) => {
                return Err(page(format!(
                    "The redirect_uri {uri:?} is not the one registered for {}; nothing was sent \
                     there.",
                    app.name
                )));
            }
        };
        // From here on the client is known and so is where it listens: problems go back to it.
        let state = get("state")
            .filter(|s| s.chars().count() <= MAX_STATE_CHARS)
            .map(str::to_owned);
        let mut request = AuthorizationRequest {
            app,
            challenge: String::new(),
            method: ChallengeMethod::S256,
            state,
            scopes: None,
            standard: Some(Standard {
                redirect_uri,
                issuer: issuer.to_owned(),
                nonce: None,
                prompt: Prompt::default(),
            }),
        };
        let refuse = |request: &AuthorizationRequest, error: &str, description: &str| {
            request
                .back_to_app(&[("error", error), ("error_description", description)])
                .map_or_else(AuthorizeProblem::Page, AuthorizeProblem::Client)
        };
        if get("state").is_some_and(|s| s.chars().count() > MAX_STATE_CHARS) {
            return Err(refuse(
                &request,
                "invalid_request",
                &format!("The state can be at most {MAX_STATE_CHARS} characters."),
            ));
        }
        match get("response_type") {
            Some("code") => {}
            None => {
                return Err(refuse(
                    &request,
                    "invalid_request",
                    "response_type=code is required.",
                ));
            }
            Some(_) => {
                return Err(refuse(
                    &request,
                    "unsupported_response_type",
                    "Only response_type=code is supported.",
                ));
            }
        }
        let Some(challenge) = get("code_challenge") else {
            return Err(refuse(
                &request,
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256 (RFC 7636).",
            ));
        };
        match get("code_challenge_method") {
            Some("S256") => {}
            _ => {
                return Err(refuse(
                    &request,
                    "invalid_request",
                    "code_challenge_method must be S256; the plain method is not accepted.",
                ));
            }
        }
        match parse_challenge(challenge, Some("S256")) {
            Ok((challenge, method)) => {
                request.challenge = challenge;
                request.method = method;
            }
            Err(e) => return Err(refuse(&request, "invalid_request", &e.public_message())),
        }
        if let Some(asked) = get("scope") {
            match asked_scopes(asked, request.app.grantable()) {
                Some(scopes) if !scopes.is_empty() => request.scopes = Some(scopes),
                _ => {
                    return Err(refuse(
                        &request,
                        "invalid_scope",
                        "Ask only for scopes the app is registered with (and openid).",
                    ));
                }
            }
        }
        let nonce = get("nonce");
        if nonce.is_some_and(|n| n.chars().count() > MAX_NONCE_CHARS) {
            return Err(refuse(
                &request,
                "invalid_request",
                &format!("The nonce can be at most {MAX_NONCE_CHARS} characters."),
            ));
        }
        let prompt = match Prompt::parse(get("prompt")) {
            Ok(prompt) => prompt,
            Err(message) => return Err(refuse(&request, "invalid_request", &message)),
        };
        if let Some(standard) = request.standard.as_mut() {
            standard.nonce = nonce.map(str::to_owned);
            standard.prompt = prompt;
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_scope_names() {
        let app: ScopeSet = [Scope::StreamsRead, Scope::ProfileRead, Scope::OpenId]
            .into_iter()
            .collect();
        let names = |s: &str| asked_scopes(s, app).map(ScopeSet::to_names);
        assert_eq!(
            names("openid profile email offline_access").as_deref(),
            Some("profile:read openid"),
            "email is left out: the app cannot read it"
        );
        assert_eq!(names("streams:read").as_deref(), Some("streams:read"));
        assert_eq!(names("streams:write"), None, "not the app's");
        assert_eq!(names("nope"), None);
    }

    #[test]
    fn prompt_values() {
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(Prompt::parse(Some("select_account")).unwrap().login);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("create")).is_err());
    }

    #[test]
    fn redirects_match_exactly_or_on_any_loopback_port() {
        let cb = "https://app.example.com/cb";
        assert!(redirect_matches(cb, cb));
        assert!(!redirect_matches(cb, "https://app.example.com/cb2"));
        assert!(!redirect_matches(cb, "https://app.example.com:8443/cb"));
        assert!(!redirect_matches(cb, "https://evil.example.com/cb"));
        let loop4 = "http://127.0.0.1/callback";
        assert!(redirect_matches(loop4, "http://127.0.0.1:53682/callback"));
        assert!(!redirect_matches(loop4, "http://127.0.0.1:53682/other"));
        assert!(!redirect_matches(loop4, "http://localhost:53682/callback"));
        assert!(!redirect_matches(loop4, "http://127.0.0.2:1/callback"));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:9000/cb"));
        // A port that was registered is kept.
        assert!(!redirect_matches(
            "http://127.0.0.1:5173/cb",
            "http://127.0.0.1:5174/cb"
        ));
        assert!(!redirect_matches("speckle://account", "speckle://other"));
    }
}
