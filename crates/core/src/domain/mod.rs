//! The rules: users, tokens, grants. Functions here take the current time as an argument and reach
//! storage only through the [`Store`](crate::store::Store) trait.

pub mod activity;
pub mod admin;
pub mod apps;
pub mod auth;
pub mod authorize;
pub mod cache;
pub mod device;
pub mod grants;
pub mod invites;
pub mod keys;
pub mod limits;
pub mod oauth;
pub mod oidc;
pub mod paging;
pub mod passwords;
pub mod projects;
pub mod tokens;
pub mod users;

use tessera_proto::PlainToken;

use crate::error::{Error, Result};

/// `len` random lowercase hex characters from the OS CSPRNG (ids: users, apps, projects).
pub fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let mut out = hex::encode(bytes);
    out.truncate(len);
    Ok(out)
}

/// A fresh token (or refresh token, or access code): 10-char id + 128-bit secret.
pub fn new_token() -> Result<PlainToken> {
    let mut bytes = [0u8; 21];
    getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    Ok(PlainToken::from_random_bytes(bytes))
}

/// Speckle's expiry rule: a credential is dead once `|now - created_at| > lifespan` (a creation time
/// in the future counts as well, so a skewed clock cannot stretch a lifespan).
pub fn is_expired(created_at: i64, lifespan: i64, now: i64) -> bool {
    now.saturating_sub(created_at).saturating_abs() > lifespan
}

/// A v4 UUID string (Speckle's `suuid`), from OS randomness.
pub fn random_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Builds a field map as the HTTP layer hands it over (a test helper).
#[cfg(test)]
pub(crate) fn fields(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_speckle() {
        assert!(!is_expired(1_000, 500, 1_500));
        assert!(is_expired(1_000, 500, 1_501));
        assert!(
            is_expired(10_000, 500, 1_000),
            "a future creation time expires too"
        );
        assert!(!is_expired(0, i64::MAX, i64::MAX));
    }

    #[test]
    fn random_values_have_the_right_shape() {
        let id = random_hex(10).unwrap();
        assert_eq!(id.len(), 10);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(random_hex(10).unwrap(), id);
        let uuid = random_uuid().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let token = new_token().unwrap();
        assert_eq!(PlainToken::parse(token.expose()), Ok(token));
    }
}
