//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), run on a fixed
//! set of threads of its own, so a flood of logins queues up instead of starving API traffic.
//! Those threads run at the lowest scheduling priority (nice 19 on Linux): when the cores are busy
//! with requests, the requests go first and the hashes take the time left over; when they are
//! not, the hashes get every core. A sign-in flood then slows sign-ins far more than the API; what
//! it still costs the API (a few ms of p99, from the kernel's scheduling) is in
//! docs/ARCHITECTURE.md "Passwords" and bench/RESULTS.md.
//! A login for an unknown email is verified against a dummy hash, so it costs the same time as a
//! wrong password and response times do not reveal which emails have accounts.

use std::sync::atomic::{AtomicU64, Ordering};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// OWASP Password Storage Cheat Sheet, argon2id option 2: m = 19 MiB, t = 2, p = 1.
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;

fn params() -> Result<Params> {
    Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))
}

fn argon2() -> Result<Argon2<'static>> {
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params()?))
}

thread_local! {
    /// A hashing thread's argon2 memory, kept from one hash to the next: 19 MiB allocated afresh
    /// for every hash costs thousands of page faults of zeroed pages each time (work the API's
    /// threads feel on the same cores), and argon2 overwrites every block before reading it.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The raw argon2 output of `password` with `salt`, into `out`, in this thread's memory.
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> bool {
    BLOCKS.with_borrow_mut(|blocks| {
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), argon2::Block::default());
        }
        argon2
            .hash_password_into_with_memory(password, salt, out, blocks.as_mut_slice())
            .is_ok()
    })
}

fn hash_now(password: &[u8]) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::Internal(format!("no randomness: {e}")))?;
    let encoded =
        SaltString::encode_b64(&salt).map_err(|e| Error::Internal(format!("argon2 salt: {e}")))?;
    let params = params()?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    if !compute(&argon2()?, &params, password, &salt, &mut out) {
        return Err(Error::Internal("argon2 hash failed".into()));
    }
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?,
        salt: Some(encoded.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| Error::Internal(format!("argon2 output: {e}")))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` is the one `hash` (a PHC string, with whatever parameters it was made
/// with) was made from; the comparison is constant-time (`Output`'s equality).
fn verify_now(password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    compute(&argon2, &params, password, salt, &mut out)
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// How much lower the hashing threads' priority is (a nice value: 0 normal, 19 lowest).
pub const HASHER_NICENESS: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads: as many as hashes may run at once, taking jobs from one queue in order.
struct Hashers {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Hashers {
    fn start(threads: usize) -> Result<Hashers> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("tessera-hasher-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Hashers { jobs })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A request that went away while its hash waited (timeout, closed connection)
            // costs nothing more.
            if !done.is_closed() {
                let _ = done.send(work());
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal("password hasher closed".into()))?;
        result
            .await
            .map_err(|_| Error::Internal("password hashing thread failed".into()))
    }
}

/// Lowers the calling thread's scheduling priority (Linux; elsewhere threads keep the normal
/// one). Failing to is not fatal: hashes then compete with requests as equals.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::thread::gettid();
        let lower = (current_niceness() + HASHER_NICENESS).min(19);
        if let Err(e) = rustix::process::setpriority_process(Some(me), lower) {
            tracing::warn!(error = %e, "could not lower the priority of a password hashing thread");
        }
    }
}

/// The calling thread's nice value (a test hook; 0 where it cannot be read).
pub fn current_niceness() -> i32 {
    #[cfg(target_os = "linux")]
    {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

pub struct Passwords {
    hashers: Hashers,
    dummy_hash: String,
    computed: AtomicU64,
}

impl Passwords {
    /// `max_concurrent` hashes may run at once (one per core is right: each is CPU-bound).
    pub fn new(max_concurrent: usize) -> Result<Passwords> {
        Ok(Passwords {
            hashers: Hashers::start(max_concurrent.max(1))?,
            dummy_hash: hash_now(b"tessera dummy password, never matches")?,
            computed: AtomicU64::new(0),
        })
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        self.computed.fetch_add(1, Ordering::Relaxed);
        self.hashers.run(work).await
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

    /// Hashing in reused memory gives the same PHC strings argon2's own API makes and checks:
    /// stored hashes keep working, in both directions, however dirty the memory was.
    #[test]
    fn reused_memory_agrees_with_argon2s_own_api() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let stock = argon2().unwrap();
        for password in ["first", "second, after the memory is dirty", ""] {
            let ours = hash_now(password.as_bytes()).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            assert!(stock.verify_password(password.as_bytes(), &parsed).is_ok());
            assert!(stock.verify_password(b"not it", &parsed).is_err());

            let salt = SaltString::encode_b64(b"sixteen byte sal").unwrap();
            let theirs = stock.hash_password(password.as_bytes(), &salt).unwrap();
            assert!(verify_now(password.as_bytes(), &theirs.to_string()));
            assert!(!verify_now(b"not it", &theirs.to_string()));
        }
        // Other parameters (a hash made before a change of them) verify with their own.
        let older = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, Some(24)).unwrap(),
        );
        let salt = SaltString::encode_b64(b"another salt 16b").unwrap();
        let hash = older.hash_password(b"old one", &salt).unwrap().to_string();
        assert!(verify_now(b"old one", &hash));
        assert!(!verify_now(b"old one!", &hash));
        assert!(!verify_now(
            b"old one",
            "$argon2id$v=19$m=19456,t=2,p=1$bm90IGEgaGFzaA"
        ));
    }

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

    /// The hashes run on threads below the normal priority (Linux), so requests go first.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_yield_to_requests() {
        let passwords = Passwords::new(1).unwrap();
        let here = current_niceness();
        let there = passwords.run(current_niceness).await.unwrap();
        assert_eq!(
            there,
            (here + HASHER_NICENESS).min(19),
            "hasher nice {there}, caller {here}"
        );
    }
}
