//! The Tessera client SDK: a Speckle client in Rust that speaks to a server as specklepy does
//! (the same URL rules, GraphQL operations and headers), so it works against Tessera and
//! Speckle's own server alike.
//!
//! ```no_run
//! # async fn run() -> Result<(), tessera_client::ClientError> {
//! use tessera_client::SpeckleClient;
//!
//! let mut client = SpeckleClient::builder("localhost:3000").use_ssl(false).build()?;
//! client.authenticate_with_token("<a personal access token>").await?;
//! let me = client.active_user().get().await?;
//! println!("{}", me.map(|u| u.name).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! So far: the client, token authentication (also from `SPECKLE_TOKEN`/`SPECKLE_SERVER` or a
//! `.env` file), `active_user`, `other_user`, `server`, personal access tokens, and the local
//! account store Speckle's SDKs share ([`AccountStore`]), with one error type a caller can match
//! on. Sign-in flows and the CLI build on it.

pub mod accounts;
pub mod blocking;
mod error;
pub mod keychain;
pub mod login;
mod resources;

pub use accounts::{Account, AccountStore};
pub use error::ClientError;
pub use resources::{
    ActiveUser, App, Apps, OtherUser, Project, Projects, ScopeInfo, ServerInfo, ServerResource,
    TokenInfo, Tokens, User,
};
pub use tessera_proto as proto;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A token as the SDK holds it: it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The token itself, to send.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How specklepy cleans a host: a leading `<scheme>://` or `//` and one trailing `/` go; the rest
/// (port, path, case) stays.
pub fn normalize_host(host: &str) -> String {
    let trimmed = host.trim();
    let without_scheme = match trimmed.find("://") {
        Some(at) if trimmed[..at].chars().all(|c| c.is_ascii_alphanumeric()) => &trimmed[at + 3..],
        _ => trimmed.strip_prefix("//").unwrap_or(trimmed),
    };
    without_scheme
        .strip_suffix('/')
        .unwrap_or(without_scheme)
        .to_owned()
}

/// Builds a [`SpeckleClient`].
#[derive(Debug, Clone)]
pub struct Builder {
    host: String,
    use_ssl: bool,
    verify_certificate: bool,
}

impl Builder {
    /// `https` (the default) or `http`: the scheme comes from here only, as in specklepy.
    pub fn use_ssl(mut self, use_ssl: bool) -> Builder {
        self.use_ssl = use_ssl;
        self
    }

    /// Whether the server's certificate must be valid (default yes). Turn it off only for a
    /// server with a self-signed certificate that you trust.
    pub fn verify_certificate(mut self, verify: bool) -> Builder {
        self.verify_certificate = verify;
        self
    }

    pub fn build(self) -> Result<SpeckleClient, ClientError> {
        let host = normalize_host(&self.host);
        if host.is_empty() {
            return Err(ClientError::Usage("the server host is empty".into()));
        }
        let scheme = if self.use_ssl { "https" } else { "http" };
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(!self.verify_certificate)
            .user_agent(concat!("tessera-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(SpeckleClient {
            url: format!("{scheme}://{host}"),
            http,
            token: None,
        })
    }
}

/// A client for one Speckle-compatible server.
#[derive(Debug, Clone)]
pub struct SpeckleClient {
    url: String,
    http: reqwest::Client,
    token: Option<Secret>,
}

/// The token an account signs in with; an account without one is an invalid token, or, when its
/// tokens should be in the keychain, [`ClientError::NotInKeychain`].
fn account_token(account: &Account) -> Result<&Secret, ClientError> {
    match (&account.token, account.in_keychain) {
        (Some(token), _) => Ok(token),
        (None, true) => Err(ClientError::NotInKeychain {
            account: account.id.clone().unwrap_or_default(),
        }),
        (None, false) => Err(ClientError::InvalidToken),
    }
}

impl SpeckleClient {
    /// A client for `host` (`"localhost:3000"`, `"https://app.example.com/"`, …).
    pub fn builder(host: &str) -> Builder {
        Builder {
            host: host.to_owned(),
            use_ssl: true,
            verify_certificate: true,
        }
    }

    /// A client for `SPECKLE_SERVER` (default `app.speckle.systems`; `http://…` means no TLS)
    /// authenticated with `SPECKLE_TOKEN`, as the seeds' scripts set them up. Variables in the
    /// environment win; a `.env` file in the current directory fills in what is missing.
    pub async fn from_env() -> Result<SpeckleClient, ClientError> {
        SpeckleClient::from_env_with(|name| std::env::var(name).ok(), Path::new(".env")).await
    }

    /// [`SpeckleClient::from_env`] with the variables looked up by `var` and the `.env` file at
    /// `dotenv` (if it exists).
    pub async fn from_env_with(
        var: impl Fn(&str) -> Option<String>,
        dotenv: &Path,
    ) -> Result<SpeckleClient, ClientError> {
        let file: Vec<(String, String)> = match dotenvy::from_path_iter(dotenv) {
            Ok(items) => items
                .collect::<Result<_, _>>()
                .map_err(|e| ClientError::Usage(format!("{}: {e}", dotenv.display())))?,
            Err(_) => Vec::new(),
        };
        let lookup = |name: &str| {
            var(name).filter(|v| !v.is_empty()).or_else(|| {
                file.iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
                    .filter(|v| !v.is_empty())
            })
        };
        let token = lookup("SPECKLE_TOKEN").ok_or(ClientError::NoToken)?;
        let server = lookup("SPECKLE_SERVER").unwrap_or_else(|| "app.speckle.systems".into());
        SpeckleClient::signed_in(&server, &token).await
    }

    /// [`SpeckleClient::for_url`], authenticated with `token`.
    pub async fn signed_in(url: &str, token: &str) -> Result<SpeckleClient, ClientError> {
        let mut client = SpeckleClient::for_url(url)?;
        client.authenticate_with_token(token).await?;
        Ok(client)
    }

    /// A client for a server URL, not signed in: `http://…` means no TLS, anything else TLS.
    pub fn for_url(url: &str) -> Result<SpeckleClient, ClientError> {
        let use_ssl = !url.trim().to_ascii_lowercase().starts_with("http://");
        SpeckleClient::builder(url).use_ssl(use_ssl).build()
    }

    /// A client for a local account's server, authenticated with its token.
    pub async fn for_account(account: &Account) -> Result<SpeckleClient, ClientError> {
        let url = account
            .server_info
            .url
            .as_deref()
            .ok_or_else(|| ClientError::Usage("the account names no server URL".into()))?;
        SpeckleClient::signed_in(url, account_token(account)?.expose()).await
    }

    /// Uses a local account's token from now on, and checks it as
    /// [`authenticate_with_token`](Self::authenticate_with_token) does (specklepy's
    /// `authenticate_with_account`). The client keeps its own server URL.
    pub async fn authenticate_with_account(
        &mut self,
        account: &Account,
    ) -> Result<Option<User>, ClientError> {
        self.authenticate_with_token(account_token(account)?.expose())
            .await
    }

    /// The server's URL (`<scheme>://<host>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Uses `token` from now on, and checks it as specklepy does: who it belongs to, and the
    /// server's description. An invalid or expired token is [`ClientError::InvalidToken`].
    pub async fn authenticate_with_token(
        &mut self,
        token: &str,
    ) -> Result<Option<User>, ClientError> {
        self.set_token(token);
        let user = self.active_user().get().await?;
        self.server().get().await?;
        Ok(user)
    }

    /// Uses `token` from now on without checking it (the next call tells).
    pub fn set_token(&mut self, token: &str) {
        self.token = Some(Secret::new(token));
    }

    pub fn active_user(&self) -> ActiveUser<'_> {
        ActiveUser { client: self }
    }

    pub fn other_user(&self) -> OtherUser<'_> {
        OtherUser { client: self }
    }

    pub fn server(&self) -> ServerResource<'_> {
        ServerResource { client: self }
    }

    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { client: self }
    }

    pub fn projects(&self) -> Projects<'_> {
        Projects { client: self }
    }

    pub fn apps(&self) -> Apps<'_> {
        Apps { client: self }
    }

    /// Runs one GraphQL operation and reads the field aliased `data` (specklepy's shape).
    pub(crate) async fn graphql<T: DeserializeOwned>(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<T, ClientError> {
        let endpoint = format!("{}/graphql", self.url);
        let mut request = self
            .http
            .post(&endpoint)
            .header("apollographql-client-name", "tessera-rust")
            .header(
                "apollographql-client-version",
                concat!("rust ", env!("CARGO_PKG_VERSION")),
            )
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::from_transport(&self.url, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::from_transport(&self.url, e))?;
        let body: Option<Value> = serde_json::from_str(&text).ok();
        error::check(status, retry_after, body.as_ref(), &text)?;
        let data = body
            .as_ref()
            .and_then(|b| b.get("data"))
            .and_then(|d| d.get("data"))
            .cloned()
            .unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| ClientError::Protocol {
            message: format!("the server's answer has an unexpected shape: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_cleaned_as_specklepy_cleans_them() {
        for (given, cleaned) in [
            ("localhost:3000", "localhost:3000"),
            ("http://localhost:3000/", "localhost:3000"),
            ("https://app.speckle.systems//", "app.speckle.systems/"),
            ("//host/path/", "host/path"),
            ("HTTPS://x.y", "x.y"),
        ] {
            assert_eq!(normalize_host(given), cleaned, "{given}");
        }
        let client = SpeckleClient::builder("https://x.y/")
            .use_ssl(false)
            .build()
            .unwrap();
        assert_eq!(client.url(), "http://x.y");
        assert!(SpeckleClient::builder(" / ").build().is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("abcdefghij0123456789");
        assert_eq!(format!("{s:?}"), "Secret(…)");
    }
}
