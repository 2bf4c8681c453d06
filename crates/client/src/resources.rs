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

pub struct ActiveUser<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl ActiveUser<'_> {
    /// Who the token belongs to; `None` without a token (or without `profile:read`).
    pub async fn get(&self) -> Result<Option<User>, ClientError> {
        self.client
            .graphql(
                "query User { data:activeUser { id email name bio company avatar verified role } }",
                json!({}),
            )
            .await
    }
}

pub struct OtherUser<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl OtherUser<'_> {
    /// Another user's public profile; `None` if there is no such user.
    pub async fn get(&self, id: &str) -> Result<Option<User>, ClientError> {
        self.client
            .graphql(
                "query LimitedUser($id: String!) { data:otherUser(id: $id) { id name bio company \
                 avatar verified role } }",
                json!({ "id": id }),
            )
            .await
    }
}

pub struct ServerResource<'a> {
    pub(crate) client: &'a SpeckleClient,
}

impl ServerResource<'_> {
    pub async fn get(&self) -> Result<ServerInfo, ClientError> {
        self.client
            .graphql(
                "query Server { data:serverInfo { name company description adminContact \
                 canonicalUrl version scopes { name description } } }",
                json!({}),
            )
            .await
    }

    pub async fn version(&self) -> Result<String, ClientError> {
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
    pub async fn list(&self) -> Result<Vec<TokenInfo>, ClientError> {
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
    pub async fn revoke(&self, token: &str) -> Result<bool, ClientError> {
        self.client
            .graphql(
                "mutation TokenRevoke($token: String!) { data:apiTokenRevoke(token: $token) }",
                json!({ "token": token }),
            )
            .await
    }

    /// A new secret for a token (same name, scopes and expiry); the old one stops at once.
    pub async fn rotate(&self, token: &str) -> Result<Secret, ClientError> {
        self.client
            .graphql(
                "mutation TokenRotate($token: String!) { data:apiTokenRegenerate(token: $token) }",
                json!({ "token": token }),
            )
            .await
            .map(Secret)
    }
}
