//! Tokens kept in the operating system's credential store instead of `Accounts.db`
//! (`tessera login --keychain`): macOS Keychain, Windows Credential Manager, or the Linux
//! kernel's key retention service (keyutils), through the `keyring` crate. The account entry
//! stays in `Accounts.db` without its tokens and with `"tesseraKeychain": true`; Speckle's own
//! SDKs do not know that mark, so they list the account but cannot sign in with it.
//!
//! One credential per account: service `tessera`, user the account id (on Linux the key
//! `tessera:<id>` in the user keyring), secret the JSON
//! `{"token", "refreshToken"}`, so both tokens change in one write (a rotated refresh token is
//! never stored apart from its access token).

use serde::{Deserialize, Serialize};

use crate::{ClientError, Secret};

/// The service name the credentials are filed under.
pub const SERVICE: &str = "tessera";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Held {
    token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The tokens of account `id`, as stored.
pub struct Tokens {
    pub token: Secret,
    pub refresh_token: Option<Secret>,
}

#[cfg(all(feature = "keychain", not(target_os = "linux")))]
fn entry(id: &str) -> Result<keyring::Entry, ClientError> {
    keyring::Entry::new(SERVICE, id).map_err(unavailable)
}

/// On Linux, keyring's own keyutils store files keys in the session keyring and links them to
/// the persistent one, which containers and some distributions refuse (EACCES on the link, seen
/// on the machine the tests run on). The user keyring is what `keyctl … @u` uses: every process
/// of the user shares it, and it lasts until the user's last process ends or the machine
/// restarts. Same store, same crate, another keyring.
#[cfg(all(feature = "keychain", target_os = "linux"))]
fn entry(id: &str) -> Result<keyring::Entry, ClientError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    let user = KeyRing::from_special_id(KeyRingIdentifier::User, false)
        .map_err(|e| unavailable(format!("the kernel's user keyring: {e:?}")))?;
    let credential = keyring::keyutils::KeyutilsCredential {
        session: user,
        persistent: None,
        description: format!("{SERVICE}:{id}"),
    };
    Ok(keyring::Entry::new_with_credential(Box::new(credential)))
}

#[cfg(feature = "keychain")]
fn unavailable(e: impl std::fmt::Display) -> ClientError {
    ClientError::Usage(format!(
        "the system keychain cannot be used ({e}): sign in without --keychain"
    ))
}

/// Stores the tokens of account `id`, replacing what was there.
pub fn put(id: &str, token: &Secret, refresh_token: Option<&Secret>) -> Result<(), ClientError> {
    let held = Held {
        token: token.expose().to_owned(),
        refresh_token: refresh_token.map(|r| r.expose().to_owned()),
    };
    let text = serde_json::to_string(&held)
        .map_err(|e| ClientError::Usage(format!("cannot encode the tokens: {e}")))?;
    #[cfg(feature = "keychain")]
    {
        entry(id)?.set_password(&text).map_err(unavailable)
    }
    #[cfg(not(feature = "keychain"))]
    {
        let _ = (id, text);
        Err(not_built())
    }
}

/// The tokens of account `id`; `None` when the keychain holds none (removed, or on Linux lost
/// with a restart: the kernel keeps keys in memory only).
pub fn get(id: &str) -> Result<Option<Tokens>, ClientError> {
    #[cfg(feature = "keychain")]
    {
        let text = match entry(id)?.get_password() {
            Ok(text) => text,
            Err(keyring::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(unavailable(e)),
        };
        let held: Held = serde_json::from_str(&text).map_err(|e| {
            ClientError::Usage(format!(
                "the keychain entry {SERVICE}/{id} cannot be read ({e}): sign in again"
            ))
        })?;
        Ok(Some(Tokens {
            token: Secret::new(held.token),
            refresh_token: held.refresh_token.map(Secret::new),
        }))
    }
    #[cfg(not(feature = "keychain"))]
    {
        let _ = id;
        Ok(None)
    }
}

/// Forgets the tokens of account `id` (nothing to forget is not an error).
pub fn delete(id: &str) -> Result<(), ClientError> {
    #[cfg(feature = "keychain")]
    {
        match entry(id)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
    #[cfg(not(feature = "keychain"))]
    {
        let _ = id;
        Ok(())
    }
}

#[cfg(not(feature = "keychain"))]
fn not_built() -> ClientError {
    ClientError::Usage(
        "this build of the Tessera SDK has no keychain support (feature `keychain`)".into(),
    )
}
