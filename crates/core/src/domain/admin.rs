//! Server administration (docs/ARCHITECTURE.md, "Administration"): what the server says about
//! itself (`serverInfo`, changed by `serverInfoUpdate` and the Server page) and the users' server
//! roles (`userRoleChange` and the Users page). Only `server:admin` may change either.
//!
//! The server's description is read on every `serverInfo` and every page, so it is kept in memory
//! for a short while; a change on this replica is seen at once, on the others within
//! [`SERVER_INFO_TTL`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tessera_proto::ServerRole;

use super::activity::Subject;
use super::apps::WEB_APP_ID;
use super::auth::{Auth, require_role};
use super::paging::check_search;
use super::users::{at_most, check_visible};
use crate::clock::Millis;
use crate::error::{Error, Missing, Result};
use crate::model::{
    ActivityKind, Page, PageRequest, ServerInfoRecord, ServerRoleChange, SessionsToEnd, UserRecord,
};
use crate::service::Tessera;

/// How long another replica's change of the server's description can take to show here.
pub const SERVER_INFO_TTL: Millis = 10_000;
pub const MAX_SERVER_NAME_CHARS: usize = 256;
pub const MAX_SERVER_TEXT_CHARS: usize = 2048;

/// The fields of `serverInfoUpdate` and of the Server page, as sent.
#[derive(Debug, Default, Clone)]
pub struct ServerInfoInput {
    pub name: String,
    pub company: Option<String>,
    pub description: Option<String>,
    pub admin_contact: Option<String>,
    pub terms_of_service: Option<String>,
}

impl ServerInfoInput {
    /// Checks the fields: a visible name, bounded texts; blank optional fields are cleared.
    pub fn validate(self) -> Result<ServerInfoRecord> {
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::user_input("The server needs a name."));
        }
        at_most(&name, MAX_SERVER_NAME_CHARS, "The server name")?;
        check_visible(&name, "The server name")?;
        let optional = |value: Option<String>, what: &str| -> Result<Option<String>> {
            match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => {
                    at_most(&v, MAX_SERVER_TEXT_CHARS, what)?;
                    Ok(Some(v))
                }
            }
        };
        Ok(ServerInfoRecord {
            name,
            company: optional(self.company, "Company")?,
            description: optional(self.description, "Description")?,
            admin_contact: optional(self.admin_contact, "Admin contact")?,
            terms_of_service: optional(self.terms_of_service, "Terms of service")?,
        })
    }
}

/// The description kept in memory, and when it was read.
#[derive(Default)]
pub(crate) struct ServerInfoCache {
    pub(crate) defaults: ServerInfoRecord,
    pub(crate) loaded: std::sync::RwLock<Option<(Arc<ServerInfoRecord>, Millis)>>,
    /// Bumped by every change made here: a read that started before it does not overwrite what
    /// the change put in the cache (as the token cache's epoch does for revocations).
    pub(crate) generation: std::sync::atomic::AtomicU64,
}

/// The roles an administrator can give. Guests exist only in Speckle's guest mode, which
/// Tessera does not have.
pub fn assignable_roles() -> impl Iterator<Item = ServerRole> {
    ServerRole::ALL
        .iter()
        .copied()
        .filter(|r| *r != ServerRole::Guest)
}

impl Tessera {
    /// What the server says about itself when no administrator has said otherwise.
    pub fn with_server_defaults(mut self, defaults: ServerInfoRecord) -> Tessera {
        self.server_info_cache_mut().defaults = defaults;
        self
    }

    /// What the server says about itself. A store that cannot be read leaves the last known
    /// description (or the defaults) in place: this never fails a page.
    pub async fn server_info(&self) -> Arc<ServerInfoRecord> {
        let now = self.now();
        let cache = self.server_info_cache();
        if let Ok(loaded) = cache.loaded.read()
            && let Some((info, at)) = loaded.as_ref()
            && now.saturating_sub(*at) < SERVER_INFO_TTL
        {
            return info.clone();
        }
        let generation = cache.generation.load(Ordering::SeqCst);
        let info = match self.store().server_info().await {
            Ok(stored) => Arc::new(stored.unwrap_or_else(|| cache.defaults.clone())),
            Err(e) => {
                tracing::warn!(error = %e, "the server's description could not be read");
                return self.server_info_cached();
            }
        };
        if let Ok(mut loaded) = cache.loaded.write()
            && cache.generation.load(Ordering::SeqCst) == generation
        {
            *loaded = Some((info.clone(), now));
        }
        info
    }

    /// The description as last read, without waiting for the store (for error pages, which must
    /// not fail): possibly older than [`SERVER_INFO_TTL`].
    pub fn server_info_cached(&self) -> Arc<ServerInfoRecord> {
        let cache = self.server_info_cache();
        match cache.loaded.read() {
            Ok(loaded) => loaded.as_ref().map(|(info, _)| info.clone()),
            Err(_) => None,
        }
        .unwrap_or_else(|| Arc::new(cache.defaults.clone()))
    }

    /// `serverInfoUpdate` and the Server page: an administrator changes the description.
    pub async fn update_server_info(&self, caller: &Auth, input: ServerInfoInput) -> Result<()> {
        require_role(Some(caller), ServerRole::Admin)?;
        let info = input.validate()?;
        self.store().set_server_info(&info, self.now()).await?;
        let subject = Subject {
            name: Some(info.name.clone()),
            id: None,
        };
        self.note_for(caller, ActivityKind::ServerInfoChanged, subject);
        let cache = self.server_info_cache();
        if let Ok(mut loaded) = cache.loaded.write() {
            cache.generation.fetch_add(1, Ordering::SeqCst);
            *loaded = Some((Arc::new(info), self.now()));
        }
        Ok(())
    }

    /// The Users page: every user, or those whose name or email contains `query`.
    pub async fn admin_users(
        &self,
        caller: &Auth,
        query: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>> {
        require_role(Some(caller), ServerRole::Admin)?;
        check_search(query, "The search")?;
        self.store().list_users(query, page).await
    }

    /// `userRoleChange` and the Users page: an administrator gives a user another server role.
    /// Nobody changes their own role (so an administrator cannot lock themselves out), and the
    /// last administrator stays one. The user's cached token checks are dropped at once, here and
    /// on the other replicas, so the new role applies to their next request.
    pub async fn change_server_role(
        &self,
        caller: &Auth,
        user_id: &str,
        role: &str,
    ) -> Result<UserRecord> {
        require_role(Some(caller), ServerRole::Admin)?;
        let role = ServerRole::from_name(role)
            .filter(|r| assignable_roles().any(|a| a == *r))
            .ok_or_else(|| {
                let names: Vec<&str> = assignable_roles().map(|r| r.name()).collect();
                Error::user_input(format!(
                    "There is no server role {role:?}; choose one of {}.",
                    names.join(", ")
                ))
            })?;
        if user_id == &*caller.user_id {
            return Err(Error::user_input(
                "You cannot change your own server role; ask another administrator.",
            ));
        }
        let changed = self.store().set_server_role(user_id, role).await;
        self.forget_user(user_id);
        match changed? {
            ServerRoleChange::Changed(user) => {
                if user.role == ServerRole::ArchivedUser {
                    // Archived: signed out of every browser at once (their other tokens stay,
                    // but every rule that needs a user refuses them).
                    let ended = self
                        .store()
                        .end_sessions(user_id, WEB_APP_ID, SessionsToEnd::AllBut(""))
                        .await?;
                    self.revoked(&ended).await?;
                }
                let tokens = self.store().user_token_ids(user_id).await?;
                // Not a revocation: the tokens stay valid, but their cached checks hold the old
                // role. Forgetting them here and announcing them to the other replicas is what
                // a revocation does to the cache.
                self.revoked(&tokens).await?;
                tracing::info!(user = %user.id, role = %user.role, by = %caller.user_id, "server role changed");
                // In both logs: the administrator's (what they did) and the user's (what was
                // done to them).
                let role = user.role.title();
                let theirs = Subject::new(&format!("{}: {role}", user.name), &user.id);
                self.note_for(caller, ActivityKind::ServerRoleChanged, theirs);
                let mine = Subject::new(&format!("{role}, by an administrator"), &user.id);
                self.note(
                    &user.id,
                    ActivityKind::ServerRoleChanged,
                    &caller.client,
                    mine,
                );
                Ok(*user)
            }
            ServerRoleChange::NoSuchUser => Err(Error::NotFound {
                what: Missing::User,
                message: "There is no user with this id.".into(),
            }),
            ServerRoleChange::LastAdmin => Err(Error::user_input(
                "This is the server's last administrator; make someone else an administrator first.",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_info_input_is_checked() {
        let ok = ServerInfoInput {
            name: "  Studio  ".into(),
            company: Some(" ".into()),
            description: Some("Ours".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.name, "Studio");
        assert_eq!(ok.company, None, "blank clears");
        assert_eq!(ok.description.as_deref(), Some("Ours"));
        let empty = ServerInfoInput::default().validate().unwrap_err();
        assert!(empty.to_string().contains("needs a name"));
        let hidden = ServerInfoInput {
            name: "Stu\u{200B}dio".into(),
            ..Default::default()
        };
        assert!(hidden.validate().is_err());
        let long = ServerInfoInput {
            name: "S".into(),
            description: Some("x".repeat(MAX_SERVER_TEXT_CHARS + 1)),
            ..Default::default()
        };
        assert!(
            long.validate()
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
    }
}
