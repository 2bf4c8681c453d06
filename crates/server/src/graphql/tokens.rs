//! Personal access tokens: `apiTokenCreate`, `apiTokenRevoke` and the `ApiToken` listing type.

use async_graphql::{Context, Enum, InputObject, Object, Result};
use tessera_proto::{Scope, ServerRole};

use super::guards::{HasRole, HasScope};
use super::scalars::{BigInt, DateTime};
use super::{caller, state};
use crate::domain::tokens::PatRequest;
use crate::error::Error;
use crate::model::{ResourceRule, TokenListing};

pub struct ApiToken(pub TokenListing);

#[Object]
impl ApiToken {
    async fn id(&self) -> &str {
        &self.0.id
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The last six characters of the token, to recognise it by.
    async fn last_chars(&self) -> &str {
        &self.0.last_chars
    }

    async fn scopes(&self) -> Vec<Option<String>> {
        self.0
            .scopes
            .iter()
            .map(|s| Some(s.name().to_owned()))
            .collect()
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    /// Milliseconds from creation to expiry.
    async fn lifespan(&self) -> BigInt {
        BigInt(self.0.lifespan)
    }

    async fn last_used(&self) -> DateTime {
        DateTime(self.0.last_used)
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum TokenResourceIdentifierType {
    #[graphql(name = "project")]
    Project,
    #[graphql(name = "workspace")]
    Workspace,
}

#[derive(InputObject)]
pub struct TokenResourceIdentifierInput {
    id: String,
    #[graphql(name = "type")]
    kind: TokenResourceIdentifierType,
}

#[derive(InputObject)]
pub struct ApiTokenCreateInput {
    scopes: Vec<String>,
    name: String,
    /// Milliseconds until the token expires (default: about 100 years).
    lifespan: Option<BigInt>,
    /// Limit the token to these resources.
    limit_resources: Option<Vec<TokenResourceIdentifierInput>>,
}

#[derive(Default)]
pub struct TokenMutation;

#[Object]
impl TokenMutation {
    /// Creates a personal access token and returns it: the only time it is ever shown.
    #[graphql(guard = "HasScope(Scope::TokensWrite).and(HasRole(ServerRole::User))")]
    async fn api_token_create(
        &self,
        ctx: &Context<'_>,
        token: ApiTokenCreateInput,
    ) -> Result<String> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        let request = PatRequest {
            name: token.name,
            scopes: token.scopes,
            lifespan: token.lifespan.map(|l| l.0),
            limit_resources: token.limit_resources.map(|list| {
                list.into_iter()
                    .map(|r| ResourceRule {
                        resource_type: match r.kind {
                            TokenResourceIdentifierType::Project => "project",
                            TokenResourceIdentifierType::Workspace => "workspace",
                        }
                        .to_owned(),
                        resource_id: r.id,
                    })
                    .collect()
            }),
        };
        let created = state.core.create_personal_token(auth, request).await?;
        Ok(created.expose().to_owned())
    }

    /// Revokes one of your tokens, given its id, the whole token, or `Bearer <token>`.
    #[graphql(guard = "HasScope(Scope::TokensWrite).and(HasRole(ServerRole::User))")]
    async fn api_token_revoke(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let state = state(ctx);
        state.core.revoke(auth, &token).await?;
        Ok(true)
    }

    /// Tessera's addition: gives one of your personal access tokens a new secret (given its id,
    /// the whole token, or `Bearer <token>`), keeping its name, scopes and expiry. The old secret
    /// stops working at once; the new token is returned, the only time it is shown.
    #[graphql(guard = "HasScope(Scope::TokensWrite).and(HasRole(ServerRole::User))")]
    async fn api_token_regenerate(&self, ctx: &Context<'_>, token: String) -> Result<String> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        let id = crate::domain::tokens::revoked_token_id(&token)
            .ok_or_else(|| Error::user_input("No such token of yours"))?;
        let fresh = state(ctx).core.regenerate_token(auth, id).await?;
        Ok(fresh.expose().to_owned())
    }
}
