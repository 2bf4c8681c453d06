//! Bearer authentication (docs/ARCHITECTURE.md, "The bearer cache"). Checking a token costs a SHA-256 and a map lookup:
//! a bounded in-memory cache (`cache::Guarded`: S3-FIFO eviction, a read is one sharded lookup)
//! maps token id to what the check needs. A cache miss reads the store once; a hit touches neither the
//! store nor any password hash. `lastUsed` is remembered in memory, to the second, and written
//! behind in batches. Revocation removes the entry at once on this node; the TTL is the safety
//! net for changes made elsewhere.
//!
//! A revocation can race a cache miss: the miss reads the row, the revocation deletes it and clears
//! the cache, and the miss writes the stale entry back. The cache's epoch (`cache.rs`) closes that
//! window: a miss that raced a revocation is not remembered, and reads the store again, so once a
//! revocation is acknowledged no later check accepts the token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tessera_proto::{PlainToken, Scope, ScopeSet, ServerRole, TokenDigest};

use super::activity::Client;
use super::cache::Guarded;
use super::is_expired;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AppId, TokenId, UserId};
use crate::store::{ResourceRule, Store, TokenAuthRecord};

/// What a bearer check needs from storage: the store, or in tests a store that pauses.
#[async_trait::async_trait]
pub trait TokenSource: Send + Sync {
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>>;
    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool>;
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> TokenSource for S {
    async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
        Store::token_for_auth(self, id).await
    }

    async fn delete_token(&self, id: &str, owner_id: Option<&str>) -> Result<bool> {
        Store::delete_token(self, id, owner_id).await
    }
}

/// An authenticated caller: who they are and what their token lets them do.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user_id: UserId,
    pub token_id: TokenId,
    pub role: ServerRole,
    pub scopes: ScopeSet,
    pub app_id: Option<AppId>,
    /// The resources the token is limited to; `None` means not limited.
    pub resources: Option<Arc<[ResourceRule]>>,
    /// Where this request came from (the access log records it).
    pub client: Client,
    /// When the token was issued: for a session on Tessera's pages, when the person signed in
    /// (OpenID Connect's `auth_time`).
    pub issued_at: Millis,
}

/// Speckle's `@hasServerRole`: a signed-in caller whose server role is at least `role`.
pub fn require_role(caller: Option<&Auth>, role: ServerRole) -> Result<&Auth> {
    let auth = caller.ok_or(Error::Unauthenticated)?;
    if !auth.role.satisfies(role) {
        return Err(Error::forbidden("You do not have the required server role"));
    }
    Ok(auth)
}

/// Speckle's `@hasScope`: checked only when the request carries a token (an anonymous caller
/// then meets the role rule instead).
pub fn require_scope(caller: Option<&Auth>, scope: Scope) -> Result<()> {
    match caller {
        Some(auth) if !auth.has_scope(scope) => Err(Error::MissingScope(scope)),
        _ => Ok(()),
    }
}

impl Auth {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// The projects a resource-limited token may reach (none, for a token limited to workspaces
    /// only: Tessera has none); `None` when the token is not limited.
    pub fn project_limits(&self) -> Option<Vec<String>> {
        let rules = self.resources.as_ref()?;
        Some(
            rules
                .iter()
                .filter(|r| r.resource_type == "project")
                .map(|r| r.resource_id.clone())
                .collect(),
        )
    }

    /// Whether the token may reach this project (tokens without project limits reach any).
    pub fn may_reach_project(&self, project_id: &str) -> bool {
        self.project_limits()
            .is_none_or(|ids| ids.iter().any(|id| id == project_id))
    }
}

struct Entry {
    digest: TokenDigest,
    name: Arc<str>,
    created_at: Millis,
    lifespan: Millis,
    loaded_at: Millis,
    /// The last use handed to `uses` (so a busy token takes that lock once a second, not once
    /// a request).
    noted_use: AtomicI64,
    auth: Auth,
}

/// How finely `lastUsed` is kept: uses within this of the last noted one are not noted again.
const USE_RESOLUTION: Millis = 1_000;

/// What a check found.
pub(crate) enum Checked {
    Valid(Auth),
    /// The token was right but has expired (and is now deleted).
    Expired {
        auth: Auth,
        name: Arc<str>,
    },
}

/// A token id as the cache's key: its ten characters inline, so a lookup compares keys without
/// following a pointer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key([u8; tessera_proto::token::ID_LEN]);

impl Key {
    /// `None` for a string that is no token id (no entry can have it).
    fn of(id: &str) -> Option<Key> {
        id.as_bytes().try_into().ok().map(Key)
    }
}

pub struct TokenCache {
    entries: Guarded<Key, Arc<Entry>>,
    uses: Mutex<HashMap<String, Millis>>,
    ttl: Millis,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens, each trusted for `ttl` after it was read (on the
    /// caller's clock; an entry past it is read again). A scan of one-off tokens cannot push
    /// out the busy ones (`cache.rs`).
    pub fn new(capacity: usize, ttl: Millis) -> TokenCache {
        TokenCache {
            entries: Guarded::new(capacity),
            uses: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn cached(&self, id: &str, now: Millis) -> Option<Arc<Entry>> {
        self.entries
            .get(&Key::of(id)?)
            .filter(|e| now.saturating_sub(e.loaded_at) < self.ttl)
    }

    /// Forgets tokens at once (after revocation).
    pub fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let ids: Vec<&str> = ids.into_iter().collect();
        self.entries.forget(ids.iter().filter_map(|id| Key::of(id)));
        if let Ok(mut uses) = self.uses.lock() {
            for id in ids {
                uses.remove(id);
            }
        }
    }

    /// Forgets every entry (when revocations from other nodes may have been missed).
    pub fn forget_all(&self) {
        self.entries.forget_all();
        if let Ok(mut uses) = self.uses.lock() {
            uses.clear();
        }
    }

    /// How many tokens the cache holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads a token from the store for a cache miss, and remembers it if no revocation raced the
    /// read. After a race the store is read again (it now reflects the revocation); a token under a
    /// storm of revocations is answered from a fresh read without being cached.
    async fn load<S: TokenSource + ?Sized>(
        &self,
        store: &S,
        id: &str,
        now: Millis,
    ) -> Result<Arc<Entry>> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let epoch = self.entries.epoch();
            let record = store.token_for_auth(id).await?.ok_or(Error::InvalidToken)?;
            let entry = Arc::new(Entry {
                digest: record.digest,
                name: Arc::from(record.name),
                created_at: record.created_at,
                lifespan: record.lifespan,
                loaded_at: now,
                noted_use: AtomicI64::new(Millis::MIN),
                auth: Auth {
                    user_id: record.owner_id,
                    token_id: record.id,
                    role: record.owner_role,
                    scopes: record.scopes,
                    app_id: record.app_id,
                    resources: (!record.resources.is_empty()).then(|| Arc::from(record.resources)),
                    client: Client::default(),
                    issued_at: record.created_at,
                },
            });
            let remembered =
                Key::of(id).is_some_and(|key| self.entries.admit(key, entry.clone(), epoch));
            if remembered || attempt == ATTEMPTS {
                return Ok(entry);
            }
        }
    }

    /// Revokes tokens in the cache of this server at once, and announces it to the others.
    pub async fn revoked(&self, store: &dyn Store, ids: &[String]) -> Result<()> {
        self.forget(ids.iter().map(String::as_str));
        store.announce_revocations(ids).await
    }

    /// Checks a presented token. Every failure is [`Error::InvalidToken`]; storage failures are
    /// passed on.
    pub async fn authenticate<S: TokenSource + ?Sized>(
        &self,
        store: &S,
        presented: &str,
        now: Millis,
    ) -> Result<Auth> {
        match self.check(store, presented, now).await? {
            Checked::Valid(auth) => Ok(auth),
            Checked::Expired { .. } => Err(Error::InvalidToken),
        }
    }

    /// Checks a presented token, telling an expired one (which this check deletes) apart.
    pub(crate) async fn check<S: TokenSource + ?Sized>(
        &self,
        store: &S,
        presented: &str,
        now: Millis,
    ) -> Result<Checked> {
        let token = PlainToken::parse(presented).map_err(|_| Error::InvalidToken)?;
        let entry = match self.cached(token.id(), now) {
            Some(entry) => entry,
            None => self.load(store, token.id(), now).await?,
        };
        if !entry.digest.matches(&token.digest()) {
            return Err(Error::InvalidToken);
        }
        if is_expired(entry.created_at, entry.lifespan, now) {
            // As Speckle does: the first use after expiry deletes the token.
            self.forget([token.id()]);
            store.delete_token(token.id(), None).await?;
            return Ok(Checked::Expired {
                auth: entry.auth.clone(),
                name: entry.name.clone(),
            });
        }
        let noted = entry.noted_use.load(Ordering::Relaxed);
        if now.saturating_sub(noted) >= USE_RESOLUTION
            && entry
                .noted_use
                .compare_exchange(noted, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            && let Ok(mut uses) = self.uses.lock()
        {
            uses.insert(entry.auth.token_id.to_string(), now);
        }
        Ok(Checked::Valid(entry.auth.clone()))
    }

    /// The last use of a token seen by this node but not yet written.
    pub fn pending_use(&self, id: &str) -> Option<Millis> {
        self.uses.lock().ok()?.get(id).copied()
    }

    /// Writes the remembered `lastUsed` times to the store.
    pub async fn flush_uses(&self, store: &dyn Store) -> Result<()> {
        let batch: Vec<(String, Millis)> = match self.uses.lock() {
            Ok(mut uses) => uses.drain().collect(),
            Err(_) => return Ok(()),
        };
        store.record_token_use(&batch).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tessera_proto::{PlainToken, ScopeSet, ServerRole};

    use super::{TokenCache, TokenSource};
    use crate::error::Result;
    use crate::model::TokenAuthRecord;

    /// Tokens in memory, counting the reads that reach "storage".
    struct Source {
        tokens: HashMap<String, TokenAuthRecord>,
        reads: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenSource for Source {
        async fn token_for_auth(&self, id: &str) -> Result<Option<TokenAuthRecord>> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.tokens.get(id).cloned())
        }

        async fn delete_token(&self, _id: &str, _owner_id: Option<&str>) -> Result<bool> {
            Ok(false)
        }
    }

    fn tokens(n: usize) -> (Vec<PlainToken>, Source) {
        let plain: Vec<PlainToken> = (0..n)
            .map(|i| {
                let mut bytes = [7u8; 21];
                bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
                PlainToken::from_random_bytes(bytes)
            })
            .collect();
        let tokens = plain
            .iter()
            .map(|t| {
                let record = TokenAuthRecord {
                    id: t.id().into(),
                    digest: t.digest(),
                    owner_id: "someone".into(),
                    owner_role: ServerRole::User,
                    scopes: ScopeSet::EMPTY,
                    app_id: None,
                    created_at: 0,
                    lifespan: i64::MAX,
                    name: "t".into(),
                    resources: Vec::new(),
                };
                (t.id().to_owned(), record)
            })
            .collect();
        let source = Source {
            tokens,
            reads: AtomicUsize::new(0),
        };
        (plain, source)
    }

    /// A full cache evicts one entry at a time and keeps the busy tokens: one-off tokens going
    /// past do not empty it (the old cache cleared itself when it reached its capacity).
    #[tokio::test]
    async fn a_full_cache_keeps_its_busy_tokens() {
        let (plain, source) = tokens(2_000);
        let cache = TokenCache::new(100, 60_000);
        let busy = &plain[..20];
        for round in 0..5 {
            for t in busy {
                cache
                    .authenticate(&source, t.expose(), round)
                    .await
                    .unwrap();
            }
        }
        let reads_for_busy = source.reads.load(Ordering::SeqCst);
        assert_eq!(reads_for_busy, 20, "one read per busy token, then hits");
        // 1,980 one-off tokens go past while the busy ones keep being used.
        for (i, t) in plain[20..].iter().enumerate() {
            let now = 10 + i as i64;
            cache.authenticate(&source, t.expose(), now).await.unwrap();
            let busy_one = &busy[i % busy.len()];
            cache
                .authenticate(&source, busy_one.expose(), now)
                .await
                .unwrap();
        }
        let reread = source.reads.load(Ordering::SeqCst) - 20 - 1_980;
        assert!(
            reread <= 20,
            "the busy tokens stayed while the cache was full ({reread} re-reads)"
        );
        assert!(cache.len() <= 100, "bounded: {} entries", cache.len());
        assert!(!cache.is_empty(), "not emptied");
        let before = source.reads.load(Ordering::SeqCst);
        for t in busy {
            cache
                .authenticate(&source, t.expose(), 5_000)
                .await
                .unwrap();
        }
        let misses = source.reads.load(Ordering::SeqCst) - before;
        assert!(
            misses <= 2,
            "the busy tokens survived 1,980 one-off ones ({misses} of 20 were read again)"
        );
    }

    /// `lastUsed` is noted to the second: a busy token is noted once per second of use.
    #[tokio::test]
    async fn uses_are_noted_to_the_second() {
        let (plain, source) = tokens(1);
        let cache = TokenCache::new(10, 60_000);
        let id = plain[0].id();
        cache
            .authenticate(&source, plain[0].expose(), 1_000)
            .await
            .unwrap();
        assert_eq!(cache.pending_use(id), Some(1_000));
        cache
            .authenticate(&source, plain[0].expose(), 1_500)
            .await
            .unwrap();
        assert_eq!(cache.pending_use(id), Some(1_000), "within the second");
        cache
            .authenticate(&source, plain[0].expose(), 2_000)
            .await
            .unwrap();
        assert_eq!(cache.pending_use(id), Some(2_000));
    }
}
