//! The keys ID tokens are signed with (docs/ARCHITECTURE.md, "Signing keys").
//!
//! RSA 2048 keys, signing RS256 (OpenID Connect's mandatory algorithm). The first key is made the
//! first time one is needed (`tessera serve` asks at start-up) and stored in the database, so every
//! replica signs with the same key and publishes the same JWKS. The private half is sealed with
//! AES-256-GCM under the server's key file ([`KeyFile`]), which never enters the database: a copy
//! of the database alone cannot sign.
//!
//! Rotation: once the signing key is [`ROTATE_AFTER`] old, the housekeeping adds a successor that
//! is published at once but signs only [`PUBLISH_AHEAD`] later, by when every replica (which reload
//! every [`RELOAD_EVERY`]) and every client that refreshes its JWKS knows it. The replaced key stays
//! published for [`GRACE`] after its successor starts signing, so ID tokens it signed still verify;
//! then it is deleted. Generations are unique in the store: replicas rotating at once make one key.

use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::Serialize;
use serde_json::{Value, json};

use super::random_hex;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::SigningKeyRecord;
use crate::service::Tessera;

const DAY: Millis = 24 * 3600 * 1000;
/// A signing key signs for 90 days before a successor replaces it.
pub const ROTATE_AFTER: Millis = 90 * DAY;
/// A new key is published this long before it signs.
pub const PUBLISH_AHEAD: Millis = 10 * 60 * 1000;
/// A replaced key stays published this long after its successor signs (ID tokens live an hour).
pub const GRACE: Millis = 7 * DAY;
/// How often a replica rereads the keys (so it signs with, and publishes, what the others made).
pub const RELOAD_EVERY: Millis = 60 * 1000;
const RSA_BITS: usize = 2048;
const SEALED_PREFIX: &str = "v1.";

/// The 32-byte key that seals signing keys in the database (the server's key file). It never
/// prints.
#[derive(Clone)]
pub struct KeyFile([u8; 32]);

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFile(…)")
    }
}

impl KeyFile {
    /// A fresh random key.
    pub fn generate() -> Result<KeyFile> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        Ok(KeyFile(bytes))
    }

    /// Reads the file's text form: 64 hex digits (surrounding white space ignored).
    pub fn parse(text: &str) -> std::result::Result<KeyFile, String> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or("a key file holds 64 hex digits (32 random bytes)")?;
        Ok(KeyFile(bytes))
    }

    /// The file's text form.
    pub fn to_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    fn aead(&self) -> Result<LessSafeKey> {
        let key = UnboundKey::new(&AES_256_GCM, &self.0)
            .map_err(|_| Error::Internal("cannot use the key file".into()))?;
        Ok(LessSafeKey::new(key))
    }

    /// Seals `secret` for the key `kid` (the kid is bound in, so sealed keys cannot be swapped).
    fn seal(&self, kid: &str, secret: &[u8]) -> Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
        let mut sealed = secret.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| Error::Internal("cannot seal a signing key".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens what [`KeyFile::seal`] sealed; `None` if this is not the key it was sealed with.
    fn open(&self, kid: &str, sealed: &str) -> Result<Option<Vec<u8>>> {
        let Some(bytes) = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|b| b.len() > 12)
        else {
            return Ok(None);
        };
        let (nonce, sealed) = bytes.split_at(12);
        let nonce = <[u8; 12]>::try_from(nonce)
            .map_err(|_| Error::Internal("a sealed key without its nonce".into()))?;
        let mut buffer = sealed.to_vec();
        let opened = self.aead()?.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut buffer,
        );
        Ok(opened.ok().map(|plain| plain.to_vec()))
    }
}

/// The key that signs now.
struct Signer {
    kid: String,
    key: EncodingKey,
}

/// What a replica has loaded: the signing key and the published set.
struct Loaded {
    signer: Option<Arc<Signer>>,
    jwks: Value,
    /// The newest key: its generation and since when it signs.
    newest: Option<(i64, Millis)>,
    /// When the next replaced key is due to be deleted.
    next_retirement: Option<Millis>,
    loaded_at: Millis,
}

/// This replica's view of the signing keys.
pub struct SigningKeys {
    key_file: KeyFile,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// One generation at a time in this process (replicas are kept apart by the store).
    making: tokio::sync::Mutex<()>,
}

impl SigningKeys {
    pub fn new(key_file: KeyFile) -> SigningKeys {
        SigningKeys {
            key_file,
            loaded: RwLock::new(None),
            making: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, now: Millis) -> Option<Arc<Loaded>> {
        let loaded = self.loaded.read().ok()?.clone()?;
        (now.saturating_sub(loaded.loaded_at) < RELOAD_EVERY).then_some(loaded)
    }

    fn forget(&self) {
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = None;
        }
    }
}

/// Makes a new RSA key (on the blocking pool: it takes a while) and its stored record.
async fn make_key(
    key_file: &KeyFile,
    generation: i64,
    now: Millis,
    active_from: Millis,
) -> Result<SigningKeyRecord> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;

    let private = tokio::task::spawn_blocking(|| {
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
    })
    .await
    .map_err(|e| Error::Internal(format!("key generation stopped: {e}")))?
    .map_err(|e| Error::Internal(format!("cannot make a signing key: {e}")))?;
    let der = private
        .to_pkcs1_der()
        .map_err(|e| Error::Internal(format!("cannot encode a signing key: {e}")))?;
    let kid = random_hex(16)?;
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
    });
    Ok(SigningKeyRecord {
        sealed_private_key: key_file.seal(&kid, der.as_bytes())?,
        kid,
        generation,
        algorithm: "RS256".into(),
        public_jwk: jwk.to_string(),
        created_at: now,
        active_from,
        retires_at: None,
    })
}

impl Tessera {
    /// Reads the stored keys and opens the one that signs now. Every stored key must open with
    /// this server's key file: a replica given another file says so instead of signing with keys
    /// no one else publishes.
    async fn load_keys(&self, now: Millis) -> Result<Arc<Loaded>> {
        let keys = self.signing_keys_state();
        let records = self.store().signing_keys().await?;
        let published: Vec<&SigningKeyRecord> = records
            .iter()
            .filter(|k| k.retires_at.is_none_or(|at| at > now))
            .collect();
        let signing = published
            .iter()
            .filter(|k| k.active_from <= now)
            .max_by_key(|k| k.generation)
            .or_else(|| published.iter().min_by_key(|k| k.generation));
        let mut signer = None;
        for key in &records {
            let opened = keys.key_file.open(&key.kid, &key.sealed_private_key)?;
            let Some(der) = opened else {
                return Err(Error::Startup(format!(
                    "the signing key {} in the database was sealed with another key file; give \
                     every replica the same key file (--key-file)",
                    key.kid
                )));
            };
            if signing.is_some_and(|s| s.kid == key.kid) {
                signer = Some(Arc::new(Signer {
                    kid: key.kid.clone(),
                    key: EncodingKey::from_rsa_der(&der),
                }));
            }
        }
        let jwks: Vec<Value> = published
            .iter()
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        let loaded = Arc::new(Loaded {
            signer,
            jwks: json!({ "keys": jwks }),
            newest: records.last().map(|k| (k.generation, k.active_from)),
            next_retirement: records.iter().filter_map(|k| k.retires_at).min(),
            loaded_at: now,
        });
        if let Ok(mut slot) = keys.loaded.write() {
            *slot = Some(loaded.clone());
        }
        Ok(loaded)
    }

    /// The loaded keys, making the first key if there is none yet.
    async fn keys_now(&self) -> Result<Arc<Loaded>> {
        let now = self.now();
        if let Some(loaded) = self.signing_keys_state().cached(now)
            && loaded.signer.is_some()
        {
            return Ok(loaded);
        }
        let loaded = self.load_keys(now).await?;
        if loaded.signer.is_some() {
            return Ok(loaded);
        }
        let keys = self.signing_keys_state();
        let _one_at_a_time = keys.making.lock().await;
        let loaded = self.load_keys(now).await?;
        if loaded.newest.is_none() {
            let first = make_key(&keys.key_file, 1, now, now).await?;
            // Another replica may have made the first key meanwhile: then it is the one.
            self.store().add_signing_key(&first, now).await?;
            tracing::info!(kid = %first.kid, "made the first ID token signing key");
        }
        self.load_keys(now).await
    }

    /// Opens the stored signing keys (start-up checks the key file fits them) and, with `make`,
    /// makes the first one if there is none (`tessera serve` does, so the first sign-in waits
    /// for nothing).
    pub async fn prepare_signing_keys(&self, make: bool) -> Result<()> {
        if make {
            self.keys_now().await?;
        } else {
            self.load_keys(self.now()).await?;
        }
        Ok(())
    }

    /// The published keys, as `jwks_uri` serves them (RFC 7517 JWK Set).
    pub async fn jwks(&self) -> Result<Value> {
        Ok(self.keys_now().await?.jwks.clone())
    }

    /// Signs `claims` as a JWS (RS256) with the key that signs now.
    pub(crate) async fn sign_jwt(&self, claims: &impl Serialize) -> Result<String> {
        let loaded = self.keys_now().await?;
        let signer = loaded
            .signer
            .as_ref()
            .ok_or_else(|| Error::Internal("no signing key".into()))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &signer.key)
            .map_err(|e| Error::Internal(format!("cannot sign a token: {e}")))
    }

    /// The housekeeping's part: adds a successor to a signing key that is due for rotation, and
    /// forgets keys past their grace period. Nothing happens before the first key exists. It
    /// works from the loaded keys (reread at most every [`RELOAD_EVERY`]) and writes only when
    /// something is due.
    pub(crate) async fn rotate_signing_keys(&self, now: Millis) -> Result<()> {
        let mut loaded = match self.signing_keys_state().cached(now) {
            Some(loaded) => loaded,
            None => self.load_keys(now).await?,
        };
        if loaded.next_retirement.is_some_and(|at| at < now) {
            self.store().purge_retired_signing_keys(now).await?;
            loaded = self.load_keys(now).await?;
        }
        let Some((generation, active_from)) = loaded.newest else {
            return Ok(());
        };
        if now.saturating_sub(active_from) < ROTATE_AFTER {
            return Ok(());
        }
        let keys = self.signing_keys_state();
        let _one_at_a_time = keys.making.lock().await;
        let starts = now.saturating_add(PUBLISH_AHEAD);
        let next = make_key(&keys.key_file, generation + 1, now, starts).await?;
        if self
            .store()
            .add_signing_key(&next, starts.saturating_add(GRACE))
            .await?
        {
            tracing::info!(kid = %next.kid, generation = generation + 1, "rotated the ID token signing key");
        }
        keys.forget();
        self.load_keys(now).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_file_and_kid() {
        let file = KeyFile::generate().unwrap();
        let sealed = file.seal("kid1", b"private").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("private"));
        assert_eq!(file.open("kid1", &sealed).unwrap().unwrap(), b"private");
        assert_eq!(
            file.open("kid2", &sealed).unwrap(),
            None,
            "bound to its kid"
        );
        let other = KeyFile::generate().unwrap();
        assert_eq!(other.open("kid1", &sealed).unwrap(), None);
        assert_eq!(file.open("kid1", "v1.AAAA").unwrap(), None);
        assert_eq!(file.open("kid1", "garbage").unwrap(), None);
    }

    #[test]
    fn key_files_round_trip_and_refuse_other_text() {
        let file = KeyFile::generate().unwrap();
        let again = KeyFile::parse(&file.to_text()).unwrap();
        assert_eq!(again.0, file.0);
        assert!(KeyFile::parse("abc").is_err());
        assert!(KeyFile::parse(&"zz".repeat(32)).is_err());
        assert_eq!(format!("{file:?}"), "KeyFile(…)");
    }
}
