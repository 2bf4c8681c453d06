//! Signing in from a program: the device authorization grant (RFC 8628), for a terminal, a
//! server or CI where no browser can be opened. The program asks for a code, shows the person
//! where to enter it, and polls the token endpoint until they answer; the tokens then become a
//! local account.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::accounts::{Account, AccountServer, AccountUser};
use crate::{ClientError, Secret, SpeckleClient};

/// The first-party public client of the `tessera` command line.
pub const CLI_CLIENT_ID: &str = "tessera-cli";

/// A started device sign-in: what to show the person.
#[derive(Debug)]
pub struct DeviceSignIn {
    /// The code the person enters (`XXXX-XXXX`).
    pub user_code: String,
    /// Where they enter it.
    pub verification_uri: String,
    /// The same page with the code filled in.
    pub verification_uri_complete: Option<String>,
    pub expires_in: Duration,
    interval: Duration,
    device_code: Secret,
    server: String,
    client_id: String,
}

/// Tokens a sign-in bought.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
}

#[derive(Deserialize)]
struct Started {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    expires_in: u64,
    interval: Option<u64>,
}

fn http() -> Result<reqwest::Client, ClientError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ClientError::Usage(format!("cannot build the HTTP client: {e}")))
}

/// An RFC 6749 error answer: (error, description).
fn oauth_error(body: &Value) -> Option<(String, String)> {
    let error = body.get("error")?.as_str()?.to_owned();
    let description = body
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((error, description))
}

impl DeviceSignIn {
    /// Asks `server` (its URL, e.g. `http://localhost:3000`) for a device sign-in as `client_id`.
    pub async fn start(
        server: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> Result<DeviceSignIn, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        let scope = scopes.join(" ");
        let mut form = vec![("client_id", client_id)];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let res = http()?
            .post(format!("{server}/oauth/device_authorization"))
            .form(&form)
            .send()
            .await
            .map_err(|e| ClientError::from_transport(&server, e))?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| ClientError::Protocol {
            message: format!("the device authorization answer is not JSON: {e}"),
        })?;
        if let Some((code, message)) = oauth_error(&body) {
            return Err(ClientError::Refused { code, message });
        }
        if !status.is_success() {
            return Err(ClientError::Protocol {
                message: format!("HTTP {status} from the device authorization endpoint"),
            });
        }
        let started: Started = serde_json::from_value(body).map_err(|e| ClientError::Protocol {
            message: format!("the device authorization answer is incomplete: {e}"),
        })?;
        Ok(DeviceSignIn {
            user_code: started.user_code,
            verification_uri: started.verification_uri,
            verification_uri_complete: started.verification_uri_complete,
            expires_in: Duration::from_secs(started.expires_in),
            interval: Duration::from_secs(started.interval.unwrap_or(5).max(1)),
            device_code: Secret::new(started.device_code),
            server,
            client_id: client_id.to_owned(),
        })
    }

    /// Polls until the person answers: the tokens, or why not (denied, expired).
    pub async fn finish(self) -> Result<Tokens, ClientError> {
        let http = http()?;
        let mut interval = self.interval;
        loop {
            tokio::time::sleep(interval).await;
            let res = http
                .post(format!("{}/oauth/token", self.server))
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", self.device_code.expose()),
                    ("client_id", &self.client_id),
                ])
                .send()
                .await
                .map_err(|e| ClientError::from_transport(&self.server, e))?;
            let body: Value = res.json().await.map_err(|e| ClientError::Protocol {
                message: format!("the token answer is not JSON: {e}"),
            })?;
            match oauth_error(&body) {
                None => {
                    let token = body["access_token"].as_str().ok_or(ClientError::Protocol {
                        message: "the token answer has no access_token".into(),
                    })?;
                    return Ok(Tokens {
                        access_token: Secret::new(token),
                        refresh_token: body["refresh_token"].as_str().map(Secret::new),
                    });
                }
                Some((e, _)) if e == "authorization_pending" => {}
                Some((e, _)) if e == "slow_down" => interval += Duration::from_secs(5),
                Some((code, message)) => return Err(ClientError::Refused { code, message }),
            }
        }
    }
}

/// Makes a local account of freshly bought tokens: who they belong to and which server.
pub async fn account_for(server: &str, tokens: &Tokens) -> Result<Account, ClientError> {
    let use_ssl = !server.to_ascii_lowercase().starts_with("http://");
    let mut client = SpeckleClient::builder(server).use_ssl(use_ssl).build()?;
    let user = client
        .authenticate_with_token(tokens.access_token.expose())
        .await?
        .ok_or_else(|| ClientError::MissingScope {
            scope: "profile:read".into(),
        })?;
    let info = client.server().get().await?;
    Ok(Account {
        id: None,
        token: Some(tokens.access_token.clone()),
        refresh_token: tokens.refresh_token.clone(),
        is_default: false,
        server_info: AccountServer {
            url: Some(client.url().to_owned()),
            name: info.name,
            company: info.company,
            ..Default::default()
        },
        user_info: AccountUser {
            id: Some(user.id),
            name: Some(user.name),
            email: user.email,
            company: user.company,
            avatar: user.avatar,
        },
    })
}

/// Signs a token out at the server (RFC 7009 revocation by a public client): a refresh token
/// takes every token issued from it. The server answers the same whether or not the token was
/// live, so this fails only when the server cannot be asked.
pub async fn revoke(server: &str, client_id: &str, token: &Secret) -> Result<(), ClientError> {
    let server = server.trim_end_matches('/');
    let res = http()?
        .post(format!("{server}/oauth/revoke"))
        .form(&[("token", token.expose()), ("client_id", client_id)])
        .send()
        .await
        .map_err(|e| ClientError::from_transport(server, e))?;
    if res.status().is_success() {
        return Ok(());
    }
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    match oauth_error(&body) {
        Some((code, message)) => Err(ClientError::Refused { code, message }),
        None => Err(ClientError::Protocol {
            message: format!("HTTP {status} from the revocation endpoint"),
        }),
    }
}

/// Trades a refresh token for a new pair (refresh tokens rotate: the old one is spent). A refresh
/// token that was already used, revoked or expired is [`ClientError::SignInAgain`].
pub async fn refresh(
    server: &str,
    client_id: &str,
    refresh_token: &Secret,
) -> Result<Tokens, ClientError> {
    let server = server.trim_end_matches('/');
    let res = http()?
        .post(format!("{server}/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", client_id),
        ])
        .send()
        .await
        .map_err(|e| ClientError::from_transport(server, e))?;
    let body: Value = res.json().await.map_err(|e| ClientError::Protocol {
        message: format!("the token answer is not JSON: {e}"),
    })?;
    match oauth_error(&body) {
        Some((code, _)) if code == "invalid_grant" => Err(ClientError::SignInAgain),
        Some((code, message)) => Err(ClientError::Refused { code, message }),
        None => Ok(Tokens {
            access_token: Secret::new(body["access_token"].as_str().ok_or(
                ClientError::Protocol {
                    message: "the token answer has no access_token".into(),
                },
            )?),
            refresh_token: body["refresh_token"].as_str().map(Secret::new),
        }),
    }
}
