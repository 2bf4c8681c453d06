//! Personal access tokens: Speckle's creation rules and revocation.

use tessera_proto::{PlainToken, Scope, ScopeSet};

use super::activity::Subject;
use super::auth::Auth;
use super::new_token;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::ActivityKind;
use crate::service::Tessera;
use crate::store::{NewToken, ResourceRule, TokenKind};

/// Speckle's default token lifespan: 3.154e12 ms, about 100 years.
pub const DEFAULT_LIFESPAN: Millis = 3_154_000_000_000;
pub const MAX_NAME_CHARS: usize = 512;
pub const MAX_LIMITED_RESOURCES: usize = 100;

/// `apiTokenCreate(token: {...})` as sent.
#[derive(Debug)]
pub struct PatRequest {
    pub name: String,
    pub scopes: Vec<String>,
    pub lifespan: Option<i64>,
    pub limit_resources: Option<Vec<ResourceRule>>,
}

/// A request that passed every rule.
#[derive(Debug, PartialEq)]
pub struct ValidPat {
    pub name: String,
    pub scopes: ScopeSet,
    pub lifespan: Millis,
    pub resources: Vec<ResourceRule>,
}

/// Speckle's rules, in its order: scopes present, never `tokens:write`, only scopes the calling
/// token has. Then Tessera's limits on the name, lifespan and resource list.
pub fn check_personal_token(caller_scopes: ScopeSet, req: PatRequest) -> Result<ValidPat> {
    if req.scopes.is_empty() {
        return Err(Error::token_create("No scopes provided"));
    }
    if req.scopes.iter().any(|s| s == Scope::TokensWrite.name()) {
        return Err(Error::token_create(
            "You can't create a personal access token with the tokens:write scope",
        ));
    }
    let mut scopes = ScopeSet::EMPTY;
    for name in &req.scopes {
        match Scope::from_name(name) {
            Some(scope) if caller_scopes.contains(scope) => scopes.insert(scope),
            _ => {
                return Err(Error::token_create(
                    "You can't create a token with scopes that you don't have",
                ));
            }
        }
    }
    let name = req.name.trim();
    if name.is_empty() {
        return Err(Error::token_create("A token needs a name"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::token_create(format!(
            "Token name is too long; it can be at most {MAX_NAME_CHARS} characters"
        )));
    }
    let lifespan = match req.lifespan {
        None => DEFAULT_LIFESPAN,
        Some(ms) if ms <= 0 => {
            return Err(Error::token_create(
                "Token lifespan must be a positive number of milliseconds",
            ));
        }
        Some(ms) if ms > DEFAULT_LIFESPAN => {
            return Err(Error::token_create(format!(
                "Token lifespan can be at most {DEFAULT_LIFESPAN} ms (about 100 years)"
            )));
        }
        Some(ms) => ms,
    };
    let resources = req.limit_resources.unwrap_or_default();
    if resources.len() > MAX_LIMITED_RESOURCES {
        return Err(Error::token_create(format!(
            "A token can be limited to at most {MAX_LIMITED_RESOURCES} resources"
        )));
    }
    if resources.iter().any(|r| r.resource_id.trim().is_empty()) {
        return Err(Error::token_create("A limited resource needs an id"));
    }
    Ok(ValidPat {
        name: name.to_owned(),
        scopes,
        lifespan,
        resources,
    })
}

impl Tessera {
    /// Creates a personal access token for the caller; the returned token is the only time the secret
    /// exists outside the caller's hands.
    pub async fn create_personal_token(
        &self,
        caller: &Auth,
        req: PatRequest,
    ) -> Result<PlainToken> {
        let store = self.store();
        let now = self.now();

        let valid = check_personal_token(caller.scopes, req)?;
        let token = new_token()?;
        let subject = Subject::new(&valid.name, token.id());
        store
            .insert_token(&NewToken {
                id: token.id().into(),
                digest: token.digest(),
                owner_id: caller.user_id.clone(),
                name: valid.name,
                last_chars: token.last_chars().to_owned(),
                scopes: valid.scopes,
                kind: TokenKind::Personal,
                app_id: None,
                family_id: None,
                lifespan: valid.lifespan,
                created_at: now,
                resources: valid.resources,
            })
            .await?;
        self.note_for(caller, ActivityKind::TokenCreated, subject);
        Ok(token)
    }

    /// Gives one of the caller's personal access tokens a new secret: the same name, scopes,
    /// resource limits and expiry, and the old secret stops working at once (the seeds' answer to
    /// a leaked token, in one step). Returns the new token, the only time its secret is shown.
    pub async fn regenerate_token(&self, caller: &Auth, id: &str) -> Result<PlainToken> {
        let store = self.store();
        let now = self.now();
        let not_found = || Error::user_input("No such token of yours");
        let listing = store
            .personal_tokens(&caller.user_id)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(not_found)?;
        let old = store.token_for_auth(id).await?.ok_or_else(not_found)?;
        if super::is_expired(old.created_at, old.lifespan, now) {
            return Err(Error::user_input(
                "This token has expired; create a new one.",
            ));
        }
        // The same moment of expiry: what is left of the old lifespan.
        let expires = old.created_at.saturating_add(old.lifespan);
        let token = new_token()?;
        let subject = Subject::new(&listing.name, token.id());
        let replacement = NewToken {
            id: token.id().into(),
            digest: token.digest(),
            owner_id: caller.user_id.clone(),
            name: listing.name,
            last_chars: token.last_chars().to_owned(),
            scopes: old.scopes,
            kind: TokenKind::Personal,
            app_id: None,
            family_id: None,
            lifespan: expires.saturating_sub(now),
            created_at: now,
            resources: old.resources,
        };
        if !store
            .replace_token(id, &caller.user_id, &replacement)
            .await?
        {
            return Err(not_found());
        }
        self.revoked(&[id.to_owned()]).await?;
        self.note_for(caller, ActivityKind::TokenRegenerated, subject);
        Ok(token)
    }

    /// Revokes one of the caller's own tokens (personal or app), effective on the next request.
    pub async fn revoke(&self, caller: &Auth, arg: &str) -> Result<()> {
        let store = self.store();
        let id = revoked_token_id(arg).ok_or_else(|| Error::user_input("Did not revoke token"))?;
        // Its name, for the access log (read before it is gone).
        let name = store
            .token_for_auth(id)
            .await?
            .filter(|t| t.owner_id == caller.user_id)
            .map(|t| t.name);
        if !store.delete_token(id, Some(&caller.user_id)).await? {
            return Err(Error::user_input("Did not revoke token"));
        }
        self.revoked(&[id.to_owned()]).await?;
        let subject = Subject::new(name.as_deref().unwrap_or("a token"), id);
        self.note_for(caller, ActivityKind::TokenRevoked, subject);
        Ok(())
    }
}

/// The token id named by `apiTokenRevoke`'s argument: an id, a full token, or `Bearer <token>`.
pub fn revoked_token_id(arg: &str) -> Option<&str> {
    let token = arg.split_whitespace().last()?;
    token.get(..tessera_proto::token::ID_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> ScopeSet {
        ScopeSet::registered()
    }

    fn req(scopes: &[&str]) -> PatRequest {
        PatRequest {
            name: "my token".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            lifespan: None,
            limit_resources: None,
        }
    }

    fn rejected(scopes: ScopeSet, r: PatRequest) -> String {
        check_personal_token(scopes, r).unwrap_err().to_string()
    }

    #[test]
    fn speckle_rules() {
        assert_eq!(rejected(caller(), req(&[])), "No scopes provided");
        assert_eq!(
            rejected(caller(), req(&["streams:read", "tokens:write"])),
            "You can't create a personal access token with the tokens:write scope"
        );
        let narrow: ScopeSet = [Scope::ProfileRead, Scope::TokensWrite]
            .into_iter()
            .collect();
        assert_eq!(
            rejected(narrow, req(&["streams:read"])),
            "You can't create a token with scopes that you don't have"
        );
        assert_eq!(
            rejected(caller(), req(&["workspace:billing"])),
            "You can't create a token with scopes that you don't have"
        );
        assert_eq!(
            rejected(caller(), req(&["nope:nope"])),
            "You can't create a token with scopes that you don't have"
        );
        let ok = check_personal_token(caller(), req(&["streams:read", "profile:read"])).unwrap();
        assert_eq!(ok.scopes.to_names(), "streams:read profile:read");
        assert_eq!(ok.lifespan, DEFAULT_LIFESPAN);
    }

    #[test]
    fn tessera_limits() {
        let mut r = req(&["streams:read"]);
        r.name = "  ".into();
        assert_eq!(rejected(caller(), r), "A token needs a name");
        let mut r = req(&["streams:read"]);
        r.lifespan = Some(0);
        assert!(rejected(caller(), r).contains("positive"));
        let mut r = req(&["streams:read"]);
        r.lifespan = Some(DEFAULT_LIFESPAN + 1);
        assert!(rejected(caller(), r).contains("at most"));
        let mut r = req(&["streams:read"]);
        r.lifespan = Some(2000);
        assert_eq!(check_personal_token(caller(), r).unwrap().lifespan, 2000);
    }

    #[test]
    fn revoke_argument_forms() {
        let token = "00e6c2213296946635d6398214027885abc7adfe08";
        assert_eq!(revoked_token_id(token), Some("00e6c22132"));
        assert_eq!(
            revoked_token_id(&format!("Bearer {token}")),
            Some("00e6c22132")
        );
        assert_eq!(revoked_token_id("00e6c22132"), Some("00e6c22132"));
        assert_eq!(revoked_token_id("short"), None);
        assert_eq!(revoked_token_id(""), None);
        assert_eq!(
            revoked_token_id("aééééééééé"),
            None,
            "no panic on a split character"
        );
    }
}
