//! Local accounts, in the store Speckle's desktop connectors and SDKs share
//! (`../shared/reference/speckle-clients.md`, §3): `<base>/Speckle/Accounts.db`, one table
//! `objects(hash, content)` whose `content` is the account as camelCase JSON, and (read only)
//! `<base>/Speckle/Accounts/*.json`. `<base>` is `SPECKLE_USERDATA_PATH` if set, else the
//! per-OS folder specklepy uses. What the SDK writes, specklepy and the C# SDK read, and the
//! other way round; the file is made readable by its owner only. An account saved with
//! `in_keychain` keeps its tokens in the OS keychain instead (see [`crate::keychain`]).

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Row};

use crate::{ClientError, Secret};

/// The server an account is for, as stored (unknown keys are kept when the SDK rewrites it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountServer {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Who the account is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUser {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub avatar: Option<String>,
}

/// One local account, in the JSON shape Speckle's SDKs read and write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, with = "secret_text")]
    pub token: Option<Secret>,
    #[serde(default, with = "secret_text")]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub server_info: AccountServer,
    #[serde(default)]
    pub user_info: AccountUser,
    /// Its tokens live in the OS keychain, not in the file (Tessera's own mark: Speckle's SDKs
    /// ignore it, and find no token).
    #[serde(
        default,
        rename = "tesseraKeychain",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub in_keychain: bool,
}

impl Account {
    /// The C# SDK's id: upper-case hex MD5 of the email and the server URL.
    pub fn derived_id(&self) -> String {
        let mut hasher = Md5::new();
        hasher.update(self.user_info.email.as_deref().unwrap_or_default());
        hasher.update(self.server_info.url.as_deref().unwrap_or_default());
        hex_upper(&hasher.finalize())
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Secrets are stored as their text (the store is the one place they are written out).
mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::Secret;

    pub fn serialize<S: Serializer>(value: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(secret) => s.serialize_str(secret.expose()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Secret::new))
    }
}

/// Where Speckle keeps its files: `SPECKLE_USERDATA_PATH`, else the per-OS application data
/// folder, with `Speckle` appended.
pub fn speckle_folder(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf, ClientError> {
    if let Some(base) = var("SPECKLE_USERDATA_PATH").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(base).join("Speckle"));
    }
    let home = || {
        var("HOME")
            .map(PathBuf::from)
            .ok_or_else(|| ClientError::Usage("HOME is not set: set SPECKLE_USERDATA_PATH".into()))
    };
    let base = if cfg!(windows) {
        var("APPDATA")
            .map(PathBuf::from)
            .ok_or_else(|| ClientError::Usage("APPDATA is not set".into()))?
    } else if cfg!(target_os = "macos") {
        home()?.join("Library").join("Application Support")
    } else {
        match var("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(xdg) => PathBuf::from(xdg),
            None => home()?.join(".config"),
        }
    };
    Ok(base.join("Speckle"))
}

/// The local account store in one Speckle folder.
#[derive(Debug, Clone)]
pub struct AccountStore {
    folder: PathBuf,
}

impl AccountStore {
    /// The store Speckle's SDKs use on this machine.
    pub fn default_location() -> Result<AccountStore, ClientError> {
        Ok(AccountStore::at(speckle_folder(|v| std::env::var(v).ok())?))
    }

    /// The store in `folder` (the `Speckle` folder itself).
    pub fn at(folder: impl Into<PathBuf>) -> AccountStore {
        AccountStore {
            folder: folder.into(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.folder.join("Accounts.db")
    }

    async fn open(&self, create: bool) -> Result<Option<SqliteConnection>, ClientError> {
        let path = self.database_path();
        if !create && !path.exists() {
            return Ok(None);
        }
        if create {
            std::fs::create_dir_all(&self.folder).map_err(|e| io(&self.folder, e))?;
        }
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(create)
            .connect()
            .await
            .map_err(|e| store(&path, e))?;
        if create {
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS objects (hash TEXT PRIMARY KEY, content TEXT) \
                 WITHOUT ROWID",
            )
            .execute(&mut conn)
            .await
            .map_err(|e| store(&path, e))?;
            owner_only(&path)?;
        }
        Ok(Some(conn))
    }

    /// Every account: those in `Accounts.db` first (by id), then the JSON files, as specklepy
    /// lists them.
    pub async fn list(&self) -> Result<Vec<Account>, ClientError> {
        let mut accounts = Vec::new();
        if let Some(mut conn) = self.open(false).await? {
            let rows = sqlx::query("SELECT hash, content FROM objects")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| store(&self.database_path(), e))?;
            for row in rows {
                let content: String = row
                    .try_get("content")
                    .map_err(|e| store(&self.database_path(), e))?;
                accounts.push(with_keychain_tokens(parse(
                    &content,
                    &self.database_path(),
                )?));
            }
        }
        let json_folder = self.folder.join("Accounts");
        if let Ok(entries) = std::fs::read_dir(&json_folder) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
                accounts.push(parse(&text, &file)?);
            }
        }
        Ok(accounts)
    }

    /// The default account, chosen as specklepy chooses it: the first marked default, else the
    /// first; [`ClientError::NoLocalAccount`] when there is none.
    pub async fn default_account(&self) -> Result<Account, ClientError> {
        let accounts = self.list().await?;
        let chosen = accounts
            .iter()
            .find(|a| a.is_default)
            .or_else(|| accounts.first())
            .cloned();
        let mut chosen = chosen.ok_or_else(|| ClientError::NoLocalAccount {
            folder: self.folder.display().to_string(),
        })?;
        chosen.is_default = true;
        Ok(chosen)
    }

    /// Saves `account` in `Accounts.db` (replacing one with the same id); the first account
    /// becomes the default. With `in_keychain`, its tokens go to the OS keychain and the entry
    /// in the file has none. Returns it as stored (with its tokens).
    pub async fn save(&self, mut account: Account) -> Result<Account, ClientError> {
        let existing = self.list().await?;
        if let Some(url) = account.server_info.url.as_mut() {
            while url.ends_with('/') {
                url.pop();
            }
        }
        let id = account.id.clone().unwrap_or_else(|| account.derived_id());
        account.id = Some(id.clone());
        account.is_default = account.is_default || existing.is_empty();
        let mut written = account.clone();
        if account.in_keychain {
            if let Some(token) = &account.token {
                crate::keychain::put(&id, token, account.refresh_token.as_ref())?;
            }
            written.token = None;
            written.refresh_token = None;
        } else if existing
            .iter()
            .any(|a| a.in_keychain && a.id.as_deref() == Some(id.as_str()))
        {
            crate::keychain::delete(&id)?;
        }
        let content = serde_json::to_string(&written)
            .map_err(|e| ClientError::Usage(format!("cannot write the account: {e}")))?;
        let path = self.database_path();
        let Some(mut conn) = self.open(true).await? else {
            return Err(ClientError::Usage(format!(
                "cannot open {}",
                path.display()
            )));
        };
        sqlx::query("REPLACE INTO objects (hash, content) VALUES (?, ?)")
            .bind(&id)
            .bind(&content)
            .execute(&mut conn)
            .await
            .map_err(|e| store(&path, e))?;
        Ok(account)
    }

    /// Makes the account with `id` the only default one.
    pub async fn set_default(&self, id: &str) -> Result<(), ClientError> {
        let accounts = self.stored().await?;
        if !accounts.iter().any(|a| a.id.as_deref() == Some(id)) {
            return Err(ClientError::Usage(format!(
                "no local account has the id {id}"
            )));
        }
        for mut account in accounts {
            account.is_default = account.id.as_deref() == Some(id);
            self.save(account).await?;
        }
        Ok(())
    }

    /// Removes the account with `id`; if it was the default, the first one left becomes it.
    pub async fn remove(&self, id: &str) -> Result<Account, ClientError> {
        let accounts = self.stored().await?;
        let removed = accounts
            .iter()
            .find(|a| a.id.as_deref() == Some(id))
            .cloned()
            .ok_or_else(|| ClientError::Usage(format!("no local account has the id {id}")))?;
        let path = self.database_path();
        if let Some(mut conn) = self.open(false).await? {
            sqlx::query("DELETE FROM objects WHERE hash = ?")
                .bind(id)
                .execute(&mut conn)
                .await
                .map_err(|e| store(&path, e))?;
        }
        if removed.in_keychain {
            crate::keychain::delete(id)?;
        }
        let left = self.stored().await?;
        if removed.is_default
            && !left.iter().any(|a| a.is_default)
            && let Some(mut first) = left.into_iter().next()
        {
            first.is_default = true;
            self.save(first).await?;
        }
        Ok(removed)
    }

    /// A client signed in with `account`. When its access token is refused and it has a refresh
    /// token (issued to `client_id`), the pair is renewed once, transparently: the new pair is
    /// saved before it is used, so a rotated refresh token is never lost. A refresh token that
    /// no longer works is [`ClientError::SignInAgain`].
    pub async fn client_for(
        &self,
        mut account: Account,
        client_id: &str,
    ) -> Result<crate::SpeckleClient, ClientError> {
        match crate::SpeckleClient::for_account(&account).await {
            Err(ClientError::InvalidToken) => {
                let Some(refresh_token) = account.refresh_token.clone() else {
                    return Err(ClientError::InvalidToken);
                };
                let server = account.server_info.url.clone().unwrap_or_default();
                let renewed = crate::login::refresh(&server, client_id, &refresh_token).await?;
                account.token = Some(renewed.access_token);
                account.refresh_token = renewed.refresh_token;
                let account = self.save(account).await?;
                crate::SpeckleClient::for_account(&account).await
            }
            other => other,
        }
    }

    /// The accounts in `Accounts.db` only (the JSON files are never written).
    async fn stored(&self) -> Result<Vec<Account>, ClientError> {
        let Some(mut conn) = self.open(false).await? else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query("SELECT content FROM objects")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| store(&self.database_path(), e))?;
        rows.iter()
            .map(|row| {
                let content: String = row
                    .try_get("content")
                    .map_err(|e| store(&self.database_path(), e))?;
                parse(&content, &self.database_path()).map(with_keychain_tokens)
            })
            .collect()
    }
}

fn parse(text: &str, from: &Path) -> Result<Account, ClientError> {
    serde_json::from_str(text).map_err(|e| {
        ClientError::Usage(format!(
            "an account in {} cannot be read ({e}): fix or remove it",
            from.display()
        ))
    })
}

/// An account marked `in_keychain` with its tokens read from the keychain; left without them
/// when the keychain has none or cannot be read (using it then says so).
fn with_keychain_tokens(mut account: Account) -> Account {
    if account.in_keychain
        && let Some(id) = account.id.as_deref()
        && let Ok(Some(tokens)) = crate::keychain::get(id)
    {
        account.token = Some(tokens.token);
        account.refresh_token = tokens.refresh_token;
    }
    account
}

fn io(path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Usage(format!("{}: {e}", path.display()))
}

fn store(path: &Path, e: sqlx::Error) -> ClientError {
    ClientError::Usage(format!("the account store {}: {e}", path.display()))
}

/// Tokens live in the file: only its owner may read it.
fn owner_only(path: &Path) -> Result<(), ClientError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io(path, e))?;
    }
    Ok(())
}
