//! The resources of a client, each sending the operation specklepy sends (see
//! `../shared/reference/speckle-clients.md`, §1.6), with every interesting field aliased `data`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ClientError, Secret, SpeckleClient};

/// A user as `activeUser` and `otherUser` describe them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub name: String,
    /// Only for the active user, with `profile:email`.
    #[serde(default)]
    pub email: Option<String>,
    pub bio: Option<String>,
    pub company: Option<String>,
    pub avatar: Option<String>,
    pub verified: Option<bool>,
    pub role: Option<String>,
}

/// What `serverInfo` says about the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    pub name: Option<String>,
    pub company: Option<String>,
    pub description: Option<String>,
    pub admin_contact: Option<String>,
    pub canonical_url: Option<String>,
    pub version: Option<String>,
    #[serde(default)]
    pub scopes: Vec<ScopeInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScopeInfo {
    pub name: String,
    pub description: String,
}

/// A personal access token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub last_chars: String,
    pub scopes: Vec<Option<String>>,
    pub created_at: String,
    pub lifespan: Value,
    pub last_used: String,
}

#[derive(Clone, Copy)]
pub struct ActiveUser<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl ActiveUser<'_> {
    /// Who the token belongs to; `None` without a token (or without `profile:read`).
    pub async fn get(self) -> Result<Option<User>, ClientError> {
        self.client
            .graphql(
                "query User { data:activeUser { id email name bio company avatar verified role } }",
                json!({}),
            )
            .await
    }
}

#[derive(Clone, Copy)]
pub struct OtherUser<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl OtherUser<'_> {
    /// Another user's public profile; `None` if there is no such user.
    pub async fn get(self, id: &str) -> Result<Option<User>, ClientError> {
        self.client
            .graphql(
                "query LimitedUser($id: String!) { data:otherUser(id: $id) { id name bio company \
                 avatar verified role } }",
                json!({ "id": id }),
            )
            .await
    }
}

#[derive(Clone, Copy)]
pub struct ServerResource<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl ServerResource<'_> {
    pub async fn get(self) -> Result<ServerInfo, ClientError> {
        self.client
            .graphql(
                "query Server { data:serverInfo { name company description adminContact \
                 canonicalUrl version scopes { name description } } }",
                json!({}),
            )
            .await
    }

    pub async fn version(self) -> Result<String, ClientError> {
        self.client
            .graphql(
                "query Server { data:serverInfo { data:version } }",
                json!({}),
            )
            .await
            .and_then(|info: Value| match info["data"].as_str() {
                Some(version) => Ok(version.to_owned()),
                None => Err(ClientError::Protocol {
                    message: "serverInfo.version is missing".into(),
                }),
            })
    }
}

/// Personal access tokens (the token in use needs `tokens:read` / `tokens:write`).
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl Tokens<'_> {
    /// A new token with `scopes`, living `lifespan_ms` (the server's default when `None`).
    pub async fn create(
        &self,
        name: &str,
        scopes: &[&str],
        lifespan_ms: Option<i64>,
    ) -> Result<Secret, ClientError> {
        let mut token = json!({ "scopes": scopes, "name": name });
        if let Some(ms) = lifespan_ms {
            token["lifespan"] = ms.into();
        }
        self.client
            .graphql(
                "mutation TokenCreate($token: ApiTokenCreateInput!) { data:apiTokenCreate(token: \
                 $token) }",
                json!({ "token": token }),
            )
            .await
            .map(Secret)
    }

    /// Your tokens: names, last characters, scopes, when made and last used.
    pub async fn list(self) -> Result<Vec<TokenInfo>, ClientError> {
        #[derive(Deserialize)]
        struct Listed {
            data: Vec<TokenInfo>,
        }
        let user: Option<Listed> = self
            .client
            .graphql(
                "query Tokens { data:activeUser { data:apiTokens { id name lastChars scopes \
                 createdAt lifespan lastUsed } } }",
                json!({}),
            )
            .await?;
        Ok(user.map(|u| u.data).unwrap_or_default())
    }

    /// Revokes a token given its id or the whole token.
    pub async fn revoke(self, token: &str) -> Result<bool, ClientError> {
        self.client
            .graphql(
                "mutation TokenRevoke($token: String!) { data:apiTokenRevoke(token: $token) }",
                json!({ "token": token }),
            )
            .await
    }

    /// A new secret for a token (same name, scopes and expiry); the old one stops at once.
    pub async fn rotate(self, token: &str) -> Result<Secret, ClientError> {
        self.client
            .graphql(
                "mutation TokenRotate($token: String!) { data:apiTokenRegenerate(token: $token) }",
                json!({ "token": token }),
            )
            .await
            .map(Secret)
    }
}

/// A project as specklepy's `project.get` selects it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub visibility: String,
    pub allow_public_comments: bool,
    pub role: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub source_apps: Vec<String>,
    pub workspace_id: Option<String>,
}

const PROJECT_FIELDS: &str = "id name description visibility allowPublicComments role createdAt \
                              updatedAt sourceApps workspaceId";

#[derive(Clone, Copy)]
pub struct Projects<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl Projects<'_> {
    /// A project you may read; `ClientError::Refused` (`FORBIDDEN` or `STREAM_NOT_FOUND`) if not.
    pub async fn get(self, id: &str) -> Result<Project, ClientError> {
        let query = format!(
            "query Project($projectId: String!) {{ data:project(id: $projectId) {{ \
             {PROJECT_FIELDS} }} }}"
        );
        self.client
            .graphql(&query, json!({ "projectId": id }))
            .await
    }

    /// Creates a project (`visibility`: `PRIVATE`, `PUBLIC` or `UNLISTED`; the server's default
    /// when `None`).
    pub async fn create(
        &self,
        name: &str,
        description: Option<&str>,
        visibility: Option<&str>,
    ) -> Result<Project, ClientError> {
        #[derive(Deserialize)]
        struct Created {
            data: Project,
        }
        let query = format!(
            "mutation ProjectCreate($input: ProjectCreateInput) {{ data:projectMutations {{ \
             data:create(input: $input) {{ {PROJECT_FIELDS} }} }} }}"
        );
        let input = json!({ "name": name, "description": description, "visibility": visibility });
        let created: Created = self
            .client
            .graphql(&query, json!({ "input": input }))
            .await?;
        Ok(created.data)
    }

    /// Your projects, newest first, at most `limit` (the server caps it).
    pub async fn list(self, limit: u32) -> Result<Vec<Project>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            items: Vec<Project>,
        }
        #[derive(Deserialize)]
        struct Listed {
            data: Page,
        }
        let query = format!(
            "query User($limit: Int!) {{ data:activeUser {{ data:projects(limit: $limit) {{ \
             totalCount cursor items {{ {PROJECT_FIELDS} }} }} }} }}"
        );
        let user: Option<Listed> = self
            .client
            .graphql(&query, json!({ "limit": limit }))
            .await?;
        Ok(user.map(|u| u.data.items).unwrap_or_default())
    }
}

/// An app you registered, as `app(id)` shows it to its author (with its secret).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub redirect_url: String,
    pub confidential: bool,
    #[serde(default)]
    pub scopes: Vec<ScopeInfo>,
    secret: String,
}

impl App {
    /// The App Secret.
    pub fn secret(&self) -> Secret {
        Secret::new(self.secret.clone())
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
pub struct Apps<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl Apps<'_> {
    /// Registers an app (the token needs `apps:write`); returns its id.
    pub async fn create(
        &self,
        name: &str,
        description: &str,
        redirect_url: &str,
        scopes: &[&str],
    ) -> Result<String, ClientError> {
        let app = json!({
            "name": name, "description": description, "redirectUrl": redirect_url,
            "scopes": scopes,
        });
        self.client
            .graphql(
                "mutation AppCreate($app: AppCreateInput!) { data:appCreate(app: $app) }",
                json!({ "app": app }),
            )
            .await
    }

    /// One of your apps, with its secret; `None` if there is no such app.
    pub async fn get(self, id: &str) -> Result<Option<App>, ClientError> {
        self.client
            .graphql(
                "query App($id: String!) { data:app(id: $id) { id name description redirectUrl \
                 confidential scopes { name description } secret } }",
                json!({ "id": id }),
            )
            .await
    }

    /// A new App Secret; the old one stops working at once.
    pub async fn regenerate_secret(self, id: &str) -> Result<Secret, ClientError> {
        self.client
            .graphql(
                "mutation AppRegenerateSecret($id: String!) { data:appRegenerateSecret(appId: $id) }",
                json!({ "id": id }),
            )
            .await
            .map(Secret)
    }
}
