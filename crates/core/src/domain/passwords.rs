//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), run on the
//! blocking pool behind a semaphore so a flood of logins queues up instead of starving API traffic.
//! A login for an unknown email is verified against a dummy hash, so it costs the same time as a
//! wrong password and response times do not reveal which emails have accounts.

use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_now(password: &[u8]) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| Error::Internal(format!("argon2 salt: {e}")))?;
    Ok(argon2()?
        .hash_password(password, &salt)
        .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))?
        .to_string())
}

fn verify_now(password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2().is_ok_and(|a| a.verify_password(password, &parsed).is_ok())
}

pub struct Passwords {
    permits: Semaphore,
    dummy_hash: String,
    computed: AtomicU64,
}

impl Passwords {
    /// `max_concurrent` hashes may run at once (one per core is right: each is CPU-bound).
    pub fn new(max_concurrent: usize) -> Result<Passwords> {
        Ok(Passwords {
            permits: Semaphore::new(max_concurrent.max(1)),
            dummy_hash: hash_now(b"tessera dummy password, never matches")?,
            computed: AtomicU64::new(0),
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Error::Internal("password hasher closed".into()))?;
        self.computed.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(format!("password hashing task failed: {e}")))
    }

    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move || hash_now(password.as_bytes())).await?
    }

    /// Checks a password against a stored hash; with no hash (unknown user) it checks against the
    /// dummy hash, spending the same time, and answers `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let matched = self
            .run(move || verify_now(password.as_bytes(), &hash))
            .await?;
        Ok(known && matched)
    }

    /// How many hashes or verifications have run (a test hook).
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_owasp_argon2id() {
        let passwords = Passwords::new(2).unwrap();
        let hash = passwords.hash("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            passwords
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!passwords.verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(
            !passwords
                .verify("tessera dummy password, never matches".into(), None)
                .await
                .unwrap(),
            "an unknown user never matches, even with the dummy password"
        );
        assert!(
            !passwords
                .verify("x".into(), Some("garbage".into()))
                .await
                .unwrap()
        );
        assert_eq!(passwords.computed(), 5);
    }
}
