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

/// The JSON body of an OAuth endpoint's answer (`what` names the endpoint in the error).
async fn json_body(res: reqwest::Response, what: &str) -> Result<Value, ClientError> {
    res.json().await.map_err(|e| ClientError::Protocol {
        message: format!("the {what} answer is not JSON: {e}"),
    })
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

/// The tokens of a successful token answer (RFC 6749 §5.1).
fn tokens_from(body: &Value) -> Result<Tokens, ClientError> {
    let token = body["access_token"].as_str().ok_or(ClientError::Protocol {
        message: "the token answer has no access_token".into(),
    })?;
    Ok(Tokens {
        access_token: Secret::new(token),
        refresh_token: body["refresh_token"].as_str().map(Secret::new),
    })
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
        let body = json_body(res, "device authorization").await?;
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
            let body = json_body(res, "token").await?;
            match oauth_error(&body) {
                None => return tokens_from(&body),
                Some((e, _)) if e == "authorization_pending" => {}
                Some((e, _)) if e == "slow_down" => interval += Duration::from_secs(5),
                Some((code, message)) => return Err(ClientError::Refused { code, message }),
            }
        }
    }
}

/// Makes a local account of freshly bought tokens: who they belong to and which server.
pub async fn account_for(server: &str, tokens: &Tokens) -> Result<Account, ClientError> {
    let mut client = SpeckleClient::for_url(server)?;
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
        in_keychain: false,
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
    let body = json_body(res, "token").await?;
    match oauth_error(&body) {
        Some((code, _)) if code == "invalid_grant" => Err(ClientError::SignInAgain),
        Some((code, message)) => Err(ClientError::Refused { code, message }),
        None => tokens_from(&body),
    }
}

fn random_hex(bytes: usize) -> Result<String, ClientError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| ClientError::Usage(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

/// A browser sign-in for a native app (RFC 8252): the authorization code flow with PKCE S256,
/// the browser coming back to a listener on a free loopback port (the app is registered with
/// `http://127.0.0.1/callback`, which matches any port).
pub struct LoopbackSignIn {
    /// Open this in the person's browser.
    pub authorize_url: String,
    listener: tokio::net::TcpListener,
    redirect_uri: String,
    verifier: Secret,
    state: String,
    server: String,
    client_id: String,
}

impl LoopbackSignIn {
    /// Starts listening and builds the authorization URL.
    pub async fn start(
        server: &str,
        client_id: &str,
        scopes: &[&str],
    ) -> Result<LoopbackSignIn, ClientError> {
        let server = server.trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| ClientError::Usage(format!("cannot listen on loopback: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| ClientError::Usage(format!("cannot listen on loopback: {e}")))?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let verifier = Secret::new(random_hex(32)?);
        let state = random_hex(16)?;
        let mut url = url::Url::parse(&format!("{server}/oauth/authorize"))
            .map_err(|e| ClientError::Usage(format!("the server URL {server:?}: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair(
                "code_challenge",
                &tessera_proto::pkce::s256_challenge(verifier.expose()),
            )
            .append_pair("code_challenge_method", "S256");
        Ok(LoopbackSignIn {
            authorize_url: url.into(),
            listener,
            redirect_uri,
            verifier,
            state,
            server,
            client_id: client_id.to_owned(),
        })
    }

    /// Waits for the browser to come back, answers it with a page saying it may close, checks
    /// `state` and exchanges the code (with the PKCE verifier) for tokens.
    pub async fn finish(self) -> Result<Tokens, ClientError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let answer = loop {
            let (mut socket, _) =
                self.listener.accept().await.map_err(|e| {
                    ClientError::Usage(format!("the loopback listener failed: {e}"))
                })?;
            let mut request = vec![0u8; 8192];
            let n = socket.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).into_owned();
            let target = request
                .lines()
                .next()
                .and_then(|line| line.split(' ').nth(1))
                .unwrap_or("/")
                .to_owned();
            let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
                continue;
            };
            if url.path() != "/callback" {
                let _ = socket
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await;
                continue;
            }
            let params: std::collections::HashMap<String, String> =
                url.query_pairs().into_owned().collect();
            let page = if params.contains_key("code") {
                "Signed in: you can close this tab and go back to the terminal."
            } else {
                "The sign-in did not complete: go back to the terminal."
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: \
                 {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            break params;
        };
        if answer.get("state") != Some(&self.state) {
            return Err(ClientError::Protocol {
                message: "the browser came back with another sign-in's state".into(),
            });
        }
        if let Some(error) = answer.get("error") {
            return Err(ClientError::Refused {
                code: error.clone(),
                message: answer.get("error_description").cloned().unwrap_or_default(),
            });
        }
        let code = answer.get("code").ok_or(ClientError::Protocol {
            message: "the browser came back without a code".into(),
        })?;
        let res = http()?
            .post(format!("{}/oauth/token", self.server))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("code_verifier", self.verifier.expose()),
                ("client_id", &self.client_id),
                ("redirect_uri", &self.redirect_uri),
            ])
            .send()
            .await
            .map_err(|e| ClientError::from_transport(&self.server, e))?;
        let body = json_body(res, "token").await?;
        if let Some((code, message)) = oauth_error(&body) {
            return Err(ClientError::Refused { code, message });
        }
        tokens_from(&body)
    }
}
