//! Speckle's administration mutations: `serverInfoUpdate` and `userRoleChange`, both for
//! `server:admin` with the non-public scope `server:setup`. The rules are the
//! core's (`domain::admin`); the Server and Users pages call the same ones.

use async_graphql::{Context, InputObject, Object, Result};
use tessera_proto::{Scope, ServerRole};

use super::guards::{HasRole, HasScope};
use super::{caller, tessera};
use crate::domain::admin::ServerInfoInput;
use crate::error::Error;

#[derive(InputObject)]
pub struct ServerInfoUpdateInput {
    name: String,
    company: Option<String>,
    description: Option<String>,
    admin_contact: Option<String>,
    terms_of_service: Option<String>,
    /// Accepted for Speckle's clients; Tessera's registration is always open.
    invite_only: Option<bool>,
    /// Accepted for Speckle's clients; Tessera has no guest mode.
    guest_mode_enabled: Option<bool>,
}

#[derive(InputObject)]
pub struct UserRoleInput {
    id: String,
    /// A server role, e.g. `server:admin`.
    role: String,
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// Changes how the server describes itself; every replica shows it within seconds.
    #[graphql(guard = "HasScope(Scope::ServerSetup).and(HasRole(ServerRole::Admin))")]
    async fn server_info_update(
        &self,
        ctx: &Context<'_>,
        info: ServerInfoUpdateInput,
    ) -> Result<Option<bool>> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        if info.invite_only == Some(true) || info.guest_mode_enabled == Some(true) {
            return Err(Error::user_input(
                "Tessera has no invite-only registration or guest mode; leave them off.",
            )
            .into());
        }
        let input = ServerInfoInput {
            name: info.name,
            company: info.company,
            description: info.description,
            admin_contact: info.admin_contact,
            terms_of_service: info.terms_of_service,
        };
        tessera(ctx).update_server_info(auth, input).await?;
        Ok(Some(true))
    }

    /// Gives a user another server role (not yourself; the last administrator stays one).
    /// Needs `server:setup` (Speckle asks only `profile:write`, a public scope any app may be
    /// given: an administrator's authorized app could promote its author).
    #[graphql(guard = "HasScope(Scope::ServerSetup).and(HasRole(ServerRole::Admin))")]
    async fn user_role_change(
        &self,
        ctx: &Context<'_>,
        user_role_input: UserRoleInput,
    ) -> Result<bool> {
        let auth = caller(ctx).ok_or(Error::Unauthenticated)?;
        tessera(ctx)
            .change_server_role(auth, &user_role_input.id, &user_role_input.role)
            .await?;
        Ok(true)
    }
}
