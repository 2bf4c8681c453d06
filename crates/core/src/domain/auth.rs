//! Bearer authentication (docs/ARCHITECTURE.md, "The bearer cache"). Checking a token costs a SHA-256 and a map lookup:
//! a bounded in-memory cache maps token id to what the check needs. A cache miss reads the store
//! once; a hit touches neither the store nor any password hash. `lastUsed` is remembered in memory
//! and written behind, in batches. Revocation removes the entry at once on this node; the TTL is
//! the safety net for changes made elsewhere.
//!
//! A revocation can race a cache miss: the miss reads the row, the revocation deletes it and clears
//! the cache, and the miss writes the stale entry back. A revocation epoch closes that window:
//! every revocation bumps it under the cache's write lock, a miss notes it before reading the store,
//! and the entry is remembered only if no revocation happened in between. When one did, the miss
//! reads the store again, so once a revocation is acknowledged no later check accepts the token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tessera_proto::{PlainToken, Scope, ScopeSet, ServerRole, TokenDigest};

use super::activity::Client;
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

#[derive(Clone)]
struct Entry {
    digest: TokenDigest,
    name: Arc<str>,
    created_at: Millis,
    lifespan: Millis,
    loaded_at: Millis,
    auth: Auth,
}

/// What a check found.
pub(crate) enum Checked {
    Valid(Auth),
    /// The token was right but has expired (and is now deleted).
    Expired {
        auth: Auth,
        name: Arc<str>,
    },
}

pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
    uses: Mutex<HashMap<String, Millis>>,
    /// Bumped by every revocation, under the `entries` write lock.
    epoch: AtomicU64,
    capacity: usize,
    ttl: Millis,
}

impl TokenCache {
    pub fn new(capacity: usize, ttl: Millis) -> TokenCache {
        TokenCache {
            entries: RwLock::new(HashMap::new()),
            uses: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn cached(&self, id: &str, now: Millis) -> Option<Entry> {
        let entries = self.entries.read().ok()?;
        entries
            .get(id)
            .filter(|e| now.saturating_sub(e.loaded_at) < self.ttl)
            .cloned()
    }

    /// Remembers an entry read from the store, unless a revocation happened since `epoch` was
    /// read (before the store was); returns whether it did.
    fn remember(&self, id: String, entry: Entry, now: Millis, epoch: u64) -> bool {
        let Ok(mut entries) = self.entries.write() else {
            return false;
        };
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return false;
        }
        if entries.len() >= self.capacity {
            entries.retain(|_, e| now.saturating_sub(e.loaded_at) < self.ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(id, entry);
        true
    }

    /// Forgets tokens at once (after revocation).
    pub fn forget<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let (Ok(mut entries), Ok(mut uses)) = (self.entries.write(), self.uses.lock()) else {
            return;
        };
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for id in ids {
            entries.remove(id);
            uses.remove(id);
        }
    }

    /// Forgets every entry (when revocations from other nodes may have been missed).
    pub fn forget_all(&self) {
        let (Ok(mut entries), Ok(mut uses)) = (self.entries.write(), self.uses.lock()) else {
            return;
        };
        self.epoch.fetch_add(1, Ordering::SeqCst);
        entries.clear();
        uses.clear();
    }

    /// Reads a token from the store for a cache miss, and remembers it if no revocation raced the
    /// read. After a race the store is read again (it now reflects the revocation); a token under a
    /// storm of revocations is answered from a fresh read without being cached.
    async fn load<S: TokenSource + ?Sized>(
        &self,
        store: &S,
        id: &str,
        now: Millis,
    ) -> Result<Entry> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let epoch = self.epoch.load(Ordering::SeqCst);
            let record = store.token_for_auth(id).await?.ok_or(Error::InvalidToken)?;
            let entry = Entry {
                digest: record.digest,
                name: Arc::from(record.name),
                created_at: record.created_at,
                lifespan: record.lifespan,
                loaded_at: now,
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
            };
            if self.remember(id.to_owned(), entry.clone(), now, epoch) || attempt == ATTEMPTS {
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
                auth: entry.auth,
                name: entry.name,
            });
        }
        if let Ok(mut uses) = self.uses.lock() {
            uses.insert(entry.auth.token_id.to_string(), now);
        }
        Ok(Checked::Valid(entry.auth))
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
