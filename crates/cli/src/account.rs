//! The client side of the command, on the SDK (`tessera-client`): `login`, `logout`, `whoami`,
//! `accounts` and `token`. Exit codes: 0 ok, 2 usage, 3 not signed in or invalid token, 4 cannot
//! connect, 5 refused by the server. No token is ever printed except the one `token create` or
//! `token rotate` just made.

use std::process::ExitCode;

use tessera_client::login::{
    CLI_CLIENT_ID, DeviceSignIn, LoopbackSignIn, Tokens, account_for, revoke,
};
use tessera_client::{Account, AccountStore, ClientError, SpeckleClient};

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
    /// Sign in with a code entered on another device (RFC 8628) instead of opening a browser
    /// here; also what happens when no browser can be opened
    #[arg(long)]
    device: bool,
    /// Keep the tokens in the system keychain (macOS Keychain, Windows Credential Manager, the
    /// Linux kernel keyring, which forgets them at restart) instead of in Accounts.db; Speckle's
    /// own SDKs then list the account but cannot sign in with it
    #[arg(long)]
    keychain: bool,
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
        ClientError::InvalidToken
        | ClientError::SignInAgain
        | ClientError::NoLocalAccount { .. }
        | ClientError::NotInKeychain { .. }
        | ClientError::NoToken => 3,
        ClientError::CannotConnect { .. } | ClientError::Certificate { .. } => 4,
        ClientError::Usage(_) => 2,
        _ => 5,
    })
}

/// Opens `url` in the person's browser: `$BROWSER` if set, else the system's opener. `false`
/// when there is none (a server, CI, a terminal over SSH).
fn open_browser(url: &str) -> bool {
    let run = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(browser) = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()) {
        return run(&browser, &[]);
    }
    if cfg!(target_os = "macos") {
        run("open", &[])
    } else if cfg!(windows) {
        run("cmd", &["/C", "start", ""])
    } else {
        let display = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        display && run("xdg-open", &[])
    }
}

/// The browser sign-in (loopback, RFC 8252); `None` when no browser could be opened.
async fn browser_sign_in(server: &str) -> Result<Option<Tokens>, ClientError> {
    let started = LoopbackSignIn::start(server, CLI_CLIENT_ID, LOGIN_SCOPES).await?;
    if !open_browser(&started.authorize_url) {
        return Ok(None);
    }
    println!(
        "Your browser opened the sign-in page. If it did not, open:\n{}",
        started.authorize_url
    );
    started.finish().await.map(Some)
}

pub async fn login(args: LoginArgs) -> ExitCode {
    let result = async {
        let from_browser = if args.device {
            None
        } else {
            browser_sign_in(&args.server).await?
        };
        let tokens = match from_browser {
            Some(tokens) => tokens,
            None => device_sign_in(&args.server).await?,
        };
        let mut account = account_for(&args.server, &tokens).await?;
        account.in_keychain = args.keychain;
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

/// The device sign-in: prints where to go and the code, and waits.
async fn device_sign_in(server: &str) -> Result<Tokens, ClientError> {
    let started = DeviceSignIn::start(server, CLI_CLIENT_ID, LOGIN_SCOPES).await?;
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
    with_spinner(started.finish()).await
}

/// Runs `work`, turning a spinner on the terminal meanwhile (nothing when stderr is not one).
async fn with_spinner<T>(work: impl std::future::Future<Output = T>) -> T {
    use std::io::{IsTerminal, Write};
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let frames = ['|', '/', '-', '\\'];
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(150));
    tokio::pin!(work);
    let mut i = 0usize;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = tick.tick() => {
                eprint!("\r{} ", frames[i % frames.len()]);
                let _ = std::io::stderr().flush();
                i = i.wrapping_add(1);
            }
        }
    };
    eprint!("\r  \r");
    result
}

/// The client a command acts with: `SPECKLE_TOKEN` (with `server` or `SPECKLE_SERVER`) first,
/// as the SDKs do, else the default local account.
async fn signed_in(server: Option<&str>) -> Result<SpeckleClient, ClientError> {
    let token = std::env::var("SPECKLE_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    match (token, server) {
        (Some(token), Some(server)) => SpeckleClient::signed_in(server, &token).await,
        (Some(_), None) => SpeckleClient::from_env().await,
        (None, _) => {
            let store = AccountStore::default_location()?;
            let account = store.default_account().await?;
            store.client_for(account, CLI_CLIENT_ID).await
        }
    }
}

pub async fn whoami(args: WhoamiArgs) -> ExitCode {
    let result = async {
        let client = signed_in(args.server.as_deref()).await?;
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

#[derive(clap::Subcommand)]
pub enum AccountsCommand {
    /// The local accounts (Speckle's store), the default one marked `*`
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make an account the default
    Default { id: String },
    /// Forget an account here (without signing it out at the server: see `tessera logout`)
    Remove { id: String },
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The account to sign out (its id, from `tessera accounts list`) [default: the default one]
    account: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create a personal access token and print it (the only time it is shown)
    ///
    /// Example: tessera token create --name "nightly export" --scope streams:read --expires 90d
    Create {
        #[arg(long)]
        name: String,
        /// A scope the token gets (repeat for more), e.g. streams:read
        #[arg(long = "scope", required = true, value_name = "SCOPE")]
        scopes: Vec<String>,
        /// How long it lives: 7d, 30d, 90d, 1y, 12h… [default: the server's, about 100 years]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Your personal access tokens (never their secrets)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (its id, from `tessera token list`)
    Revoke { id: String },
    /// Give a token a new secret with the same name, scopes and expiry; the old one stops at once
    Rotate {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

/// `7d`, `12h`, `1y`, `30m` as milliseconds.
fn lifespan(text: &str) -> Result<i64, ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "--expires {text:?}: write a number and a unit, like 7d, 90d, 1y or 12h"
        ))
    };
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms: i64 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit_ms).ok_or_else(bad)
}

fn account_line(a: &Account) -> String {
    format!(
        "{} {}  {} <{}>  {}{}",
        if a.is_default { "*" } else { " " },
        a.id.as_deref().unwrap_or("-"),
        a.user_info.name.as_deref().unwrap_or("?"),
        a.user_info.email.as_deref().unwrap_or("?"),
        a.server_info.url.as_deref().unwrap_or("?"),
        if a.in_keychain {
            "  (tokens in keychain)"
        } else {
            ""
        },
    )
}

pub async fn accounts(command: AccountsCommand) -> ExitCode {
    let result = async {
        let store = AccountStore::default_location()?;
        match command {
            AccountsCommand::List { json } => {
                let list = store.list().await?;
                if json {
                    let items: Vec<_> = list
                        .iter()
                        .map(|a| {
                            serde_json::json!({
                                "id": a.id, "isDefault": a.is_default,
                                "server": a.server_info.url, "name": a.user_info.name,
                                "email": a.user_info.email, "inKeychain": a.in_keychain,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::from(items));
                } else if list.is_empty() {
                    println!("No local accounts: sign in with `tessera login`.");
                } else {
                    for account in &list {
                        println!("{}", account_line(account));
                    }
                }
            }
            AccountsCommand::Default { id } => {
                store.set_default(&id).await?;
                println!("{id} is now the default account.");
            }
            AccountsCommand::Remove { id } => {
                store.remove(&id).await?;
                println!("Removed {id} from this machine.");
            }
        }
        Ok::<_, ClientError>(())
    }
    .await;
    result.map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
}

pub async fn logout(args: LogoutArgs) -> ExitCode {
    let result = async {
        let store = AccountStore::default_location()?;
        let account = match &args.account {
            Some(id) => store
                .list()
                .await?
                .into_iter()
                .find(|a| a.id.as_deref() == Some(id))
                .ok_or_else(|| ClientError::Usage(format!("no local account has the id {id}")))?,
            None => store.default_account().await?,
        };
        let server = account.server_info.url.clone().unwrap_or_default();
        // The refresh token takes its whole chain with it; an account without one revokes its
        // access token alone.
        if let Some(token) = account.refresh_token.as_ref().or(account.token.as_ref()) {
            revoke(&server, CLI_CLIENT_ID, token).await?;
        }
        if let Some(id) = &account.id {
            store.remove(id).await?;
        }
        println!("Signed out of {server} and removed the account from this machine.");
        Ok::<_, ClientError>(())
    }
    .await;
    result.map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
}

pub async fn token(command: TokenCommand, server: Option<&str>) -> ExitCode {
    let result = async {
        let client = signed_in(server).await?;
        let tokens = client.tokens();
        match command {
            TokenCommand::Create {
                name,
                scopes,
                expires,
                json,
            } => {
                let ms = expires.as_deref().map(lifespan).transpose()?;
                let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
                let made = tokens.create(&name, &scopes, ms).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "token": made.expose(), "name": name })
                    );
                } else {
                    println!("{}", made.expose());
                    eprintln!("Keep it safe: this is the only time it is shown.");
                }
            }
            TokenCommand::List { json } => {
                let list = tokens.list().await?;
                if json {
                    let items: Vec<_> = list
                        .iter()
                        .map(|t| {
                            serde_json::json!({
                                "id": t.id, "name": t.name, "lastChars": t.last_chars,
                                "scopes": t.scopes, "createdAt": t.created_at,
                                "lastUsed": t.last_used,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::from(items));
                } else if list.is_empty() {
                    println!("No personal access tokens.");
                } else {
                    println!("{:<12} {:<24} {:<8} SCOPES", "ID", "NAME", "ENDS");
                    for t in &list {
                        let scopes: Vec<&str> =
                            t.scopes.iter().flatten().map(String::as_str).collect();
                        println!(
                            "{:<12} {:<24} …{:<7} {}",
                            t.id,
                            t.name,
                            t.last_chars,
                            scopes.join(" ")
                        );
                    }
                }
            }
            TokenCommand::Revoke { id } => {
                tokens.revoke(&id).await?;
                println!("Revoked {id}.");
            }
            TokenCommand::Rotate { id, json } => {
                let made = tokens.rotate(&id).await?;
                // A new secret comes with a new id (a token's first ten characters).
                let new_id = tessera_client::proto::PlainToken::parse(made.expose())
                    .map(|t| t.id().to_owned())
                    .unwrap_or_default();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "token": made.expose(), "id": new_id })
                    );
                } else {
                    println!("{}", made.expose());
                    eprintln!(
                        "The old secret no longer works; the token's id is now {new_id}. Keep \
                         this one safe: it is shown once."
                    );
                }
            }
        }
        Ok::<_, ClientError>(())
    }
    .await;
    result.map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifespans() {
        assert_eq!(lifespan("7d").unwrap(), 7 * 86_400_000);
        assert_eq!(lifespan("12h").unwrap(), 12 * 3_600_000);
        assert_eq!(lifespan("1y").unwrap(), 365 * 86_400_000);
        for bad in ["", "d", "7", "-1d", "0d", "7w", "99999999999999999y"] {
            assert!(lifespan(bad).is_err(), "{bad}");
        }
    }
}
