//! Speckle's `@hasScope` and `@hasServerRole` directives as guards. Scope checks apply only when the
//! request carries a token (an anonymous caller then fails the role check with `UNAUTHORIZED`);
//! with both, a missing scope is reported before a missing role, as in Speckle.

use async_graphql::{Context, Guard, Result};
use tessera_proto::{Scope, ServerRole};

use super::caller;
pub use crate::domain::auth::{require_role, require_scope};

pub struct HasScope(pub Scope);

impl Guard for HasScope {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        Ok(require_scope(caller(ctx), self.0)?)
    }
}

pub struct HasRole(pub ServerRole);

impl Guard for HasRole {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        require_role(caller(ctx), self.0)?;
        Ok(())
    }
}
