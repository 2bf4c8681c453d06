//! `serverInfo`: what clients read to learn about the server (specklepy's `server.get()`, the C#
//! SDK's account check). `version` is the Speckle server version whose API Tessera speaks, in
//! numeric `x.y.z` form because the C# SDK parses it as a .NET `Version`.

use async_graphql::{Context, Object, SimpleObject};
use tessera_proto::{Scope, ServerRole, StreamRole};

use super::{state, tessera};

/// The Speckle server release whose API this build implements.
pub const SPECKLE_API_VERSION: &str = "2.31.14";

#[derive(Default)]
pub struct ServerInfoQuery;

#[Object]
impl ServerInfoQuery {
    async fn server_info(&self) -> ServerInfo {
        ServerInfo
    }
}

pub struct ServerInfo;

/// A scope as GraphQL shows it (Speckle's `Scope` type).
#[derive(SimpleObject)]
#[graphql(name = "Scope")]
pub struct ScopeInfo {
    name: String,
    description: String,
}

impl From<Scope> for ScopeInfo {
    fn from(s: Scope) -> Self {
        ScopeInfo {
            name: s.name().into(),
            description: s.description().into(),
        }
    }
}

#[derive(SimpleObject)]
pub struct Role {
    name: String,
    description: String,
    resource_target: String,
}

#[derive(SimpleObject)]
pub struct ServerRoleItem {
    id: String,
    title: String,
}

#[derive(SimpleObject)]
pub struct AuthStrategy {
    id: String,
    name: String,
    icon: String,
    url: String,
    color: Option<String>,
}

#[derive(SimpleObject)]
pub struct ServerMigration {
    moved_from: Option<String>,
    moved_to: Option<String>,
}

#[derive(SimpleObject)]
pub struct ServerWorkspacesInfo {
    /// Tessera has no workspaces.
    workspaces_enabled: bool,
}

#[Object]
impl ServerInfo {
    async fn name(&self, ctx: &Context<'_>) -> String {
        tessera(ctx).server_info().await.name.clone()
    }

    async fn company(&self, ctx: &Context<'_>) -> Option<String> {
        tessera(ctx).server_info().await.company.clone()
    }

    async fn description(&self, ctx: &Context<'_>) -> Option<String> {
        tessera(ctx).server_info().await.description.clone()
    }

    async fn admin_contact(&self, ctx: &Context<'_>) -> Option<String> {
        tessera(ctx).server_info().await.admin_contact.clone()
    }

    async fn terms_of_service(&self, ctx: &Context<'_>) -> Option<String> {
        tessera(ctx).server_info().await.terms_of_service.clone()
    }

    /// The server's public URL.
    async fn canonical_url(&self, ctx: &Context<'_>) -> Option<String> {
        Some(state(ctx).public_url.clone())
    }

    async fn version(&self) -> Option<String> {
        Some(SPECKLE_API_VERSION.into())
    }

    /// Registration is open to anyone who can reach the server.
    async fn invite_only(&self) -> Option<bool> {
        Some(false)
    }

    async fn guest_mode_enabled(&self) -> bool {
        false
    }

    /// The scopes users and apps may be offered (public ones only).
    async fn scopes(&self) -> Vec<ScopeInfo> {
        Scope::ALL
            .iter()
            .filter(|s| s.is_registered() && s.is_public())
            .map(|s| ScopeInfo::from(*s))
            .collect()
    }

    /// Public roles (the project roles).
    #[graphql(deprecation = "Use serverRoles")]
    async fn roles(&self) -> Vec<Role> {
        StreamRole::ALL
            .iter()
            .map(|r| Role {
                name: r.name().into(),
                description: r.description().into(),
                resource_target: "streams".into(),
            })
            .collect()
    }

    /// The server roles a user can hold (guests only exist in guest mode, which is off).
    async fn server_roles(&self) -> Vec<ServerRoleItem> {
        ServerRole::ALL
            .iter()
            .filter(|r| **r != ServerRole::Guest)
            .map(|r| ServerRoleItem {
                id: r.name().into(),
                title: r.title().into(),
            })
            .collect()
    }

    async fn auth_strategies(&self) -> Vec<AuthStrategy> {
        vec![AuthStrategy {
            id: "local".into(),
            name: "Local".into(),
            icon: "mdi-email".into(),
            url: "/auth/local".into(),
            color: Some("accent".into()),
        }]
    }

    async fn migration(&self) -> Option<ServerMigration> {
        Some(ServerMigration {
            moved_from: None,
            moved_to: None,
        })
    }

    async fn workspaces(&self) -> ServerWorkspacesInfo {
        ServerWorkspacesInfo {
            workspaces_enabled: false,
        }
    }
}
