//! One error a caller can match on, each saying what to do (as the seeds' "Common Authentication
//! Errors" do). A server answers a bad token with HTTP 403 `{"error": …}` before GraphQL runs, a
//! missing scope with a GraphQL `FORBIDDEN` error naming it, a limit with 429 and `Retry-After`.

use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The token is unknown, revoked or expired (HTTP 403 before GraphQL runs).
    #[error(
        "Invalid token: the server refused it (revoked, expired or mistyped). Create a new \
         personal access token under Settings → Developer → Access Tokens, or sign in again."
    )]
    InvalidToken,
    /// The token works but lacks a scope the request needs.
    #[error(
        "Your token does not have the {scope} scope this request needs: create a token with it."
    )]
    MissingScope { scope: String },
    /// A GraphQL refusal other than a missing scope (`FORBIDDEN`, `BAD_USER_INPUT`, …).
    #[error("The server refused the request ({code}): {message}")]
    Refused { code: String, message: String },
    /// Nothing answers at the URL.
    #[error(
        "Cannot connect to {url}: is the server running, and are the host, port and use_ssl \
         right? ({reason})"
    )]
    CannotConnect { url: String, reason: String },
    /// The server's certificate is not trusted (self-signed, expired, another name).
    #[error(
        "The certificate of {url} is not trusted ({reason}). If it is your own server with a \
         self-signed certificate, build the client with verify_certificate(false)."
    )]
    Certificate { url: String, reason: String },
    /// Too many requests: wait and try again.
    #[error("Rate limited by the server: try again in {} seconds.", retry_after.unwrap_or(1))]
    RateLimited { retry_after: Option<u64> },
    /// The server failed (5xx).
    #[error("The server failed with HTTP {status}: {message}. Try again later or tell its admin.")]
    Server { status: u16, message: String },
    /// The answer was not what a Speckle server sends.
    #[error("Unexpected answer from the server: {message}")]
    Protocol { message: String },
    /// The stored sign-in cannot be renewed (its refresh token was used, revoked or expired).
    #[error("Your sign-in has expired or was revoked: sign in again with `tessera login`.")]
    SignInAgain,
    /// The account keeps its tokens in the OS keychain, and the keychain has none for it.
    #[error(
        "The tokens of account {account} are not in the system keychain (removed, or forgotten \
         when the machine restarted: the Linux kernel keeps them in memory only). Sign in again \
         with `tessera login --keychain`."
    )]
    NotInKeychain { account: String },
    /// No local account to use.
    #[error(
        "No default account found in {folder}: sign in with `tessera login` (or a Speckle \
         connector's account manager), or set SPECKLE_TOKEN."
    )]
    NoLocalAccount { folder: String },
    /// No token to use: nothing in the environment (or `.env`).
    #[error(
        "No token: set SPECKLE_TOKEN (and SPECKLE_SERVER) in the environment or in a .env file, \
         with a personal access token from Settings → Developer → Access Tokens."
    )]
    NoToken,
    /// The client was set up wrongly.
    #[error("{0}")]
    Usage(String),
}

impl ClientError {
    pub(crate) fn from_transport(url: &str, e: reqwest::Error) -> ClientError {
        let reason = error_chain(&e);
        let lower = reason.to_ascii_lowercase();
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            ClientError::Certificate {
                url: url.to_owned(),
                reason,
            }
        } else if e.is_connect() || e.is_timeout() {
            ClientError::CannotConnect {
                url: url.to_owned(),
                reason,
            }
        } else {
            ClientError::Protocol { message: reason }
        }
    }
}

/// The error and its causes, in one line (reqwest's own message is only the outermost).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    parts.join(": ")
}

/// Reads a refusal out of an answer: the HTTP status first, then GraphQL `errors`.
pub(crate) fn check(
    status: StatusCode,
    retry_after: Option<u64>,
    body: Option<&Value>,
    text: &str,
) -> Result<(), ClientError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(ClientError::RateLimited { retry_after });
    }
    let graphql = body.filter(|b| b.get("data").is_some() || b.get("errors").is_some());
    if graphql.is_none() {
        if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
            return Err(ClientError::InvalidToken);
        }
        if status.is_server_error() {
            let message: String = text.chars().take(200).collect();
            return Err(ClientError::Server {
                status: status.as_u16(),
                message,
            });
        }
        return Err(ClientError::Protocol {
            message: format!("HTTP {status} without a GraphQL answer"),
        });
    }
    let Some(first) = graphql
        .and_then(|b| b.get("errors"))
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    else {
        return Ok(());
    };
    let code = first["extensions"]["code"]
        .as_str()
        .unwrap_or("ERROR")
        .to_owned();
    let message = first["message"].as_str().unwrap_or_default().to_owned();
    if let Some(scope) = first["extensions"]["scope"].as_str() {
        return Err(ClientError::MissingScope {
            scope: scope.to_owned(),
        });
    }
    if code == "RATE_LIMITED" || code == "RATE_LIMIT_ERROR" {
        return Err(ClientError::RateLimited { retry_after });
    }
    if code == "INTERNAL_SERVER_ERROR" {
        return Err(ClientError::Server {
            status: status.as_u16(),
            message,
        });
    }
    Err(ClientError::Refused { code, message })
}
