//! Speckle's `@hasScope` and `@hasServerRole` directives as guards. Scope checks apply only when the
//! request carries a token (an anonymous caller then fails the role check with `UNAUTHORIZED`);
//! with both, a missing scope is reported before a missing role, as in Speckle.

use async_graphql::{Context, Guard, Result};
use tessera_proto::{Scope, ServerRole};

use super::caller;
use crate::domain::auth::Auth;
use crate::error::Error;

pub struct HasScope(pub Scope);

impl Guard for HasScope {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        match caller(ctx) {
            Some(auth) if !auth.has_scope(self.0) => Err(Error::MissingScope(self.0).into()),
            _ => Ok(()),
        }
    }
}

pub struct HasRole(pub ServerRole);

/// The role rule on its own, for resolvers that check it themselves.
pub fn require_role(caller: Option<&Auth>, role: ServerRole) -> Result<&Auth, Error> {
    let auth = caller.ok_or(Error::Unauthenticated)?;
    if !auth.role.satisfies(role) {
        return Err(Error::forbidden("You do not have the required server role"));
    }
    Ok(auth)
}

impl Guard for HasRole {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        require_role(caller(ctx), self.0)?;
        Ok(())
    }
}
