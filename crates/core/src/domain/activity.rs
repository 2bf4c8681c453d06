//! The access log and the list of browser sessions (docs/ARCHITECTURE.md, "Activity").
//!
//! A line is noted in memory by the operation it describes and written behind, in batches, by the
//! housekeeping (and before the log is read), as `lastUsed` is: noting never waits for the
//! database and never fails the request. The buffer is bounded; when the database cannot keep up
//! the newest lines are dropped and counted rather than holding memory without limit. A line names
//! what it concerns (a token's or an app's name and id, an address, a user agent) and never holds
//! a secret.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::apps::WEB_APP_ID;
use super::auth::Auth;
use super::random_hex;
use crate::clock::Millis;
use crate::error::{Error, Missing, Result};
use crate::model::{
    ActivityFilter, ActivityKind, ActivityRecord, Page, PageRequest, SessionRecord, SessionsToEnd,
    TokenId, UserId,
};
use crate::service::Tessera;

/// Lines are kept this long by default (`--activity-retention-days`).
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
pub const DAY: Millis = 24 * 3600 * 1000;
/// At most this many lines wait in memory for the next write.
const MAX_PENDING: usize = 10_000;
/// Addresses remembered per node before the memory of which token came from where starts over.
const MAX_SEEN: usize = 100_000;
/// The longest user agent kept.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// Where a request comes from, as the access log records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub address: Option<IpAddr>,
    /// Shared: every bearer check copies the client into the caller's `Auth`.
    pub user_agent: Option<Arc<str>>,
}

impl Client {
    /// A client at `address` sending `user_agent` (control characters removed, at most 256
    /// characters kept).
    pub fn new(address: IpAddr, user_agent: Option<&str>) -> Client {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .map(|ua| Arc::<str>::from(ua.trim()))
            .filter(|ua| !ua.is_empty());
        Client {
            address: Some(address),
            user_agent,
        }
    }
}

/// What a line is about.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub name: Option<String>,
    pub id: Option<String>,
}

impl Subject {
    pub fn new(name: &str, id: &str) -> Subject {
        Subject {
            name: Some(name.to_owned()),
            id: Some(id.to_owned()),
        }
    }
}

/// A personal access token seen from an address this node had not seen it from.
struct Sighting {
    token_id: TokenId,
    client: Client,
    at: Millis,
}

/// The lines and sightings waiting to be written.
pub struct ActivityLog {
    pending: Mutex<Vec<ActivityRecord>>,
    sightings: Mutex<Vec<Sighting>>,
    /// Hashes of (token, address) pairs seen here: a repeat use allocates nothing.
    seen: Mutex<HashSet<u64>>,
    hasher: RandomState,
    dropped: AtomicU64,
    retention_days: u32,
}

impl ActivityLog {
    pub fn new(retention_days: u32) -> ActivityLog {
        ActivityLog {
            pending: Mutex::new(Vec::new()),
            sightings: Mutex::new(Vec::new()),
            seen: Mutex::new(HashSet::new()),
            hasher: RandomState::new(),
            dropped: AtomicU64::new(0),
            retention_days: retention_days.max(1),
        }
    }

    fn push(&self, line: ActivityRecord) {
        match self.pending.lock() {
            Ok(mut pending) if pending.len() < MAX_PENDING => pending.push(line),
            _ => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Notes a use of a personal access token; the first from an address becomes a sighting.
    pub(crate) fn saw(&self, auth: &Auth, client: &Client, at: Millis) {
        let Some(address) = client.address else {
            return;
        };
        if auth.app_id.is_some() {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        // A 64-bit collision only costs a missed "new address" line; the store decides anyway.
        let key = self.hasher.hash_one((auth.token_id.as_str(), address));
        if seen.contains(&key) {
            return;
        }
        // Seen only once it is in line: a sighting the full buffer turns away is tried again at
        // the token's next use, after the housekeeping has emptied the buffer.
        if let Ok(mut sightings) = self.sightings.lock()
            && sightings.len() < MAX_PENDING
        {
            seen.insert(key);
            sightings.push(Sighting {
                token_id: auth.token_id.clone(),
                client: client.clone(),
                at,
            });
        }
    }

    /// How many days lines are kept.
    pub fn retention_days(&self) -> u32 {
        self.retention_days
    }

    /// How many lines were dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A session as its owner sees it in the list.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: SessionRecord,
    /// The session asking.
    pub current: bool,
}

/// Which kinds a listing asks for, by their names; an unknown name is refused, naming the known
/// ones.
pub fn parse_kinds(names: &[String]) -> Result<Vec<ActivityKind>> {
    names
        .iter()
        .map(|name| {
            ActivityKind::parse(&name.to_lowercase()).ok_or_else(|| {
                let known: Vec<&str> = ActivityKind::ALL.iter().map(|k| k.as_str()).collect();
                Error::user_input(format!(
                    "There is no activity kind {name:?}; the kinds are {}.",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

impl Tessera {
    /// Notes a line of `user_id`'s access log, to be written behind. Never fails.
    pub(crate) fn note(
        &self,
        user_id: &UserId,
        kind: ActivityKind,
        client: &Client,
        subject: Subject,
    ) {
        self.note_at(self.now(), user_id, kind, client, subject);
    }

    /// Notes a line of something that happened at `at` (a sighting, written later).
    fn note_at(
        &self,
        at: Millis,
        user_id: &UserId,
        kind: ActivityKind,
        client: &Client,
        subject: Subject,
    ) {
        let Ok(id) = random_hex(16) else {
            return;
        };
        self.activity_log().push(ActivityRecord {
            id,
            user_id: user_id.clone(),
            kind,
            created_at: at,
            address: client.address.map(|a| a.to_string()),
            user_agent: client.user_agent.as_deref().map(str::to_owned),
            subject: subject.name,
            subject_id: subject.id,
        });
    }

    /// Notes a line about the caller, from where the caller's request came.
    pub(crate) fn note_for(&self, caller: &Auth, kind: ActivityKind, subject: Subject) {
        self.note(&caller.user_id, kind, &caller.client, subject);
    }

    /// Turns sightings of tokens from new addresses into lines (once per token and address,
    /// whichever replica saw it first), then writes the lines noted so far. The housekeeping's
    /// work; a failure keeps what is not written for the next pass.
    pub async fn flush_activity(&self) -> Result<()> {
        let log = self.activity_log();
        let sightings: Vec<Sighting> = match log.sightings.lock() {
            Ok(mut s) => s.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        if let Err(e) = self.sighted(&sightings).await {
            // Back in line, for the next pass.
            if let Ok(mut pending) = log.sightings.lock() {
                pending.extend(sightings);
                pending.truncate(MAX_PENDING);
            }
            return Err(e);
        }
        self.write_lines().await
    }

    /// Notes the sightings in one transaction, and a line for each first one.
    async fn sighted(&self, sightings: &[Sighting]) -> Result<()> {
        let addresses: Vec<(&Sighting, String)> = sightings
            .iter()
            .filter_map(|s| s.client.address.map(|a| (s, a.to_string())))
            .collect();
        if addresses.is_empty() {
            return Ok(());
        }
        let batch: Vec<(&str, &str, Millis)> = addresses
            .iter()
            .map(|(s, address)| (s.token_id.as_str(), address.as_str(), s.at))
            .collect();
        let first = self.store().note_token_addresses(&batch).await?;
        for ((s, _), first) in addresses.iter().zip(first) {
            if !first {
                continue;
            }
            if let Some(token) = self.store().token_for_auth(&s.token_id).await? {
                self.note_at(
                    s.at,
                    &token.owner_id,
                    ActivityKind::TokenNewAddress,
                    &s.client,
                    Subject::new(&token.name, &token.id),
                );
            }
        }
        Ok(())
    }

    /// Writes the lines noted so far in one batch; on failure they wait for the next attempt.
    async fn write_lines(&self) -> Result<()> {
        let log = self.activity_log();
        let dropped = log.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "activity lines were dropped: the database fell behind"
            );
        }
        let lines: Vec<ActivityRecord> = match log.pending.lock() {
            Ok(mut p) => p.drain(..).collect(),
            Err(_) => Vec::new(),
        };
        if let Err(e) = self.store().record_activity(&lines).await {
            if let Ok(mut pending) = log.pending.lock() {
                let room = MAX_PENDING.saturating_sub(pending.len());
                let kept = lines.len().min(room);
                log.dropped
                    .fetch_add((lines.len() - kept) as u64, Ordering::Relaxed);
                pending.extend(lines.into_iter().take(kept));
            }
            return Err(e);
        }
        Ok(())
    }

    /// How many days the access log keeps its lines.
    pub fn activity_retention_days(&self) -> u32 {
        self.activity_log().retention_days()
    }

    /// Forgets lines older than the retention period.
    pub(crate) async fn prune_activity(&self) -> Result<u64> {
        let retention = Millis::from(self.activity_log().retention_days) * DAY;
        let before = self.now().saturating_sub(retention);
        self.store().purge_activity(before).await
    }

    /// The caller's access log, newest first, of the given kinds (all when empty; each at most
    /// once, so the list stays short whatever is asked).
    pub async fn activity(
        &self,
        caller: &Auth,
        kinds: Vec<ActivityKind>,
        page: &PageRequest,
    ) -> Result<Page<ActivityRecord>> {
        // One batch insert of what is pending (sightings wait for the housekeeping), so the log
        // shows what was just done; if it fails, the read goes on without it.
        if let Err(e) = self.write_lines().await {
            tracing::warn!(error = %e, "activity could not be written before reading");
        }
        let mut kinds = kinds;
        kinds.sort_by_key(|k| k.as_str());
        kinds.dedup();
        let filter = ActivityFilter {
            user_id: caller.user_id.clone(),
            kinds,
        };
        self.store().activity(&filter, page).await
    }

    /// The caller's browser sessions, newest first; expired ones are left out.
    pub async fn sessions(&self, caller: &Auth) -> Result<Vec<SessionView>> {
        let now = self.now();
        let sessions = self.store().sessions(&caller.user_id, WEB_APP_ID).await?;
        Ok(sessions
            .into_iter()
            .filter(|s| !super::is_expired(s.created_at, s.lifespan, now))
            .map(|mut session| {
                if let Some(used) = self.pending_use(&session.token_id) {
                    session.last_used = session.last_used.max(used);
                }
                SessionView {
                    current: session.token_id == caller.token_id,
                    session,
                }
            })
            .collect())
    }

    /// Signs out one of the caller's sessions (`Some`), or every one but the caller's (`None`).
    /// A session that is not the caller's is "not found", never ended.
    pub async fn end_sessions(&self, caller: &Auth, one: Option<&str>) -> Result<usize> {
        let which = match one {
            Some(id) => SessionsToEnd::One(id),
            None => SessionsToEnd::AllBut(&caller.token_id),
        };
        let revoked = self
            .store()
            .end_sessions(&caller.user_id, WEB_APP_ID, which)
            .await?;
        if one.is_some() && revoked.is_empty() {
            return Err(Error::NotFound {
                what: Missing::Session,
                message: "There is no such session of yours.".into(),
            });
        }
        self.revoked(&revoked).await?;
        let subject = match one {
            Some(id) => Subject {
                name: Some("a session".into()),
                id: Some(id.to_owned()),
            },
            None => Subject {
                name: Some(other_sessions(revoked.len())),
                id: None,
            },
        };
        self.note_for(caller, ActivityKind::SessionEnded, subject);
        Ok(revoked.len())
    }

    /// Notes where a new session was started; never fails.
    pub(crate) async fn record_session(&self, token_id: &str, user_id: &str, client: &Client) {
        let address = client.address.map(|a| a.to_string());
        let recorded = self
            .store()
            .record_session(
                token_id,
                user_id,
                address.as_deref(),
                client.user_agent.as_deref(),
                self.now(),
            )
            .await;
        // Where a session started is for the Sessions list; not knowing it never fails a
        // sign-in (the session then lists as an unknown device).
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "where a session started could not be recorded");
        }
    }
}

/// "1 other session", "3 other sessions".
pub(crate) fn other_sessions(n: usize) -> String {
    match n {
        1 => "1 other session".to_owned(),
        n => format!("{n} other sessions"),
    }
}

/// A person-readable device from a user agent: the browser and the system, or the SDK.
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown device".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("python-requests", "Python"),
        ("specklepy", "specklepy"),
        ("curl/", "curl"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    let system = [
        ("Windows", "Windows"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .into_iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| name);
    match (browser, system) {
        (Some(b), Some(s)) => format!("{b} on {s}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(s)) => format!("A browser on {s}"),
        (None, None) => ua.chars().take(60).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_read_from_user_agents() {
        let chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Linux");
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(safari)), "Safari on iPhone");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 \
                       Firefox/121.0";
        assert_eq!(device(Some(firefox)), "Firefox on Windows");
        assert_eq!(device(Some("curl/8.5.0")), "curl");
        assert_eq!(device(None), "Unknown device");
    }

    #[test]
    fn user_agents_are_cleaned_and_bounded() {
        let long = "a".repeat(1000);
        let c = Client::new([127, 0, 0, 1].into(), Some(&long));
        assert_eq!(c.user_agent.map(|u| u.len()), Some(MAX_USER_AGENT_CHARS));
        let c = Client::new([127, 0, 0, 1].into(), Some("x\r\ny\u{7}"));
        assert_eq!(c.user_agent.as_deref(), Some("xy"));
        assert_eq!(
            Client::new([127, 0, 0, 1].into(), Some(" ")).user_agent,
            None
        );
    }

    #[test]
    fn a_sighting_turned_away_by_a_full_buffer_is_tried_again() {
        let log = ActivityLog::new(90);
        let client = Client::new([192, 0, 2, 1].into(), None);
        let auth = |token: String| Auth {
            user_id: "someone".into(),
            token_id: token.into(),
            role: tessera_proto::ServerRole::User,
            scopes: tessera_proto::ScopeSet::registered(),
            app_id: None,
            resources: None,
            client: client.clone(),
            issued_at: 0,
        };
        for n in 0..MAX_PENDING {
            log.saw(&auth(format!("tok{n:07}")), &client, 1);
        }
        let late = auth("latecomer0".into());
        log.saw(&late, &client, 2);
        let pending = |log: &ActivityLog| log.sightings.lock().unwrap().len();
        assert_eq!(pending(&log), MAX_PENDING, "the full buffer turns it away");
        log.sightings.lock().unwrap().clear(); // the housekeeping's pass
        log.saw(&late, &client, 3);
        log.saw(&late, &client, 4);
        assert_eq!(pending(&log), 1, "the next use is a sighting, once");
    }

    #[test]
    fn kinds_parse_by_name_and_unknown_ones_are_named() {
        let kinds = parse_kinds(&["sign_in".into(), "TOKEN_CREATED".into()]).unwrap();
        assert_eq!(kinds, [ActivityKind::SignIn, ActivityKind::TokenCreated]);
        let err = parse_kinds(&["nope".into()]).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("sign_in"), "{err}");
    }
}
