//! `tessera login` and `tessera whoami`: the client side of the command, on the SDK
//! (`tessera-client`). Exit codes: 0 ok, 2 usage, 3 not signed in or invalid token, 4 cannot
//! connect, 5 refused by the server.

use std::process::ExitCode;

use tessera_client::login::{CLI_CLIENT_ID, DeviceSignIn, account_for};
use tessera_client::{AccountStore, ClientError, SpeckleClient};

/// The default server of the command (a Tessera on this machine).
pub const DEFAULT_SERVER: &str = "http://localhost:3000";

/// What the sign-in asks for: enough to manage tokens and read projects from the command line.
const LOGIN_SCOPES: &[&str] = &[
    "profile:read",
    "profile:email",
    "tokens:read",
    "tokens:write",
    "streams:read",
];

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The server to sign in to
    #[arg(long, env = "SPECKLE_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    server: String,
    /// Sign in with a code entered on another device (RFC 8628). This is the sign-in the
    /// command has today, so it is also what happens without the flag
    #[arg(long)]
    device: bool,
}

#[derive(clap::Args)]
pub struct WhoamiArgs {
    /// The server to ask (with SPECKLE_TOKEN); without it, SPECKLE_SERVER, else the default
    /// local account's server
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Print JSON instead of a line of text
    #[arg(long)]
    json: bool,
}

/// The exit code for a failure, and the message.
pub fn fail(e: &ClientError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(match e {
        ClientError::InvalidToken | ClientError::NoLocalAccount { .. } | ClientError::NoToken => 3,
        ClientError::CannotConnect { .. } | ClientError::Certificate { .. } => 4,
        ClientError::Usage(_) => 2,
        _ => 5,
    })
}

pub async fn login(args: LoginArgs) -> ExitCode {
    let _ = args.device;
    let result = async {
        let started = DeviceSignIn::start(&args.server, CLI_CLIENT_ID, LOGIN_SCOPES).await?;
        match &started.verification_uri_complete {
            Some(complete) => println!(
                "To sign in, open {complete}\n(or open {} and enter the code {})",
                started.verification_uri, started.user_code
            ),
            None => println!(
                "To sign in, open {} and enter the code {}",
                started.verification_uri, started.user_code
            ),
        }
        println!(
            "Waiting for you to allow it (the code works for {} minutes)…",
            started.expires_in.as_secs() / 60
        );
        let tokens = started.finish().await?;
        let account = account_for(&args.server, &tokens).await?;
        let saved = AccountStore::default_location()?.save(account).await?;
        Ok::<_, ClientError>(saved)
    }
    .await;
    match result {
        Ok(saved) => {
            println!(
                "Signed in to {} as {} <{}>{}",
                saved.server_info.url.as_deref().unwrap_or_default(),
                saved.user_info.name.as_deref().unwrap_or_default(),
                saved.user_info.email.as_deref().unwrap_or_default(),
                if saved.is_default {
                    "; this is your default account"
                } else {
                    ""
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

pub async fn whoami(args: WhoamiArgs) -> ExitCode {
    let result = async {
        // SPECKLE_TOKEN (with --server or SPECKLE_SERVER) first, as the SDKs do.
        let token = std::env::var("SPECKLE_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let client = match (token, &args.server) {
            (Some(token), Some(server)) => {
                let use_ssl = !server.to_ascii_lowercase().starts_with("http://");
                let mut client = SpeckleClient::builder(server).use_ssl(use_ssl).build()?;
                client.authenticate_with_token(&token).await?;
                client
            }
            (Some(_), None) => SpeckleClient::from_env().await?,
            (None, _) => {
                let account = AccountStore::default_location()?.default_account().await?;
                SpeckleClient::for_account(&account).await?
            }
        };
        let user = client
            .active_user()
            .get()
            .await?
            .ok_or(ClientError::MissingScope {
                scope: "profile:read".into(),
            })?;
        Ok::<_, ClientError>((client.url().to_owned(), user))
    }
    .await;
    match result {
        Ok((server, user)) => {
            if args.json {
                let body = serde_json::json!({
                    "server": server,
                    "id": user.id,
                    "name": user.name,
                    "email": user.email,
                });
                println!("{body}");
            } else {
                let email = user.email.map(|e| format!(" <{e}>")).unwrap_or_default();
                println!("{}{email} on {server}", user.name);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
