//! Users: what registration and profile updates accept. Limits follow Speckle's column sizes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;

use tessera_proto::{Scope, ServerRole};

use super::activity::{Client, Subject};
use super::auth::Auth;
use super::cache::Guarded;
use super::{random_hex, random_uuid};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::ActivityKind;
use crate::service::Tessera;
use crate::store::{NewUser, ProfileUpdate, UserRecord, UserSearch};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Passwords are at most this many bytes (UTF-8) before argon2 sees them.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 512;
pub const MAX_COMPANY_CHARS: usize = 512;
pub const MAX_BIO_CHARS: usize = 2048;
pub const MAX_AVATAR_CHARS: usize = 524_288;

/// How long a user record read for a request is reused (docs/ARCHITECTURE.md, "The user
/// cache"). A change made through this node replaces it at once; one made on another replica
/// shows here within this time.
pub const USER_CACHE_TTL: Millis = 10_000;
pub const USER_CACHE_CAPACITY: usize = 100_000;

/// Recently read user records (when, and what), so that `activeUser` on a busy token does not
/// ask the store each time.
pub type UserCache = Guarded<String, (Millis, Arc<UserRecord>)>;

impl Tessera {
    /// A user, from the cache or the store.
    pub async fn user(&self, id: &str) -> Result<Option<UserRecord>> {
        let cache = self.user_cache();
        let now = self.now();
        if let Some((read_at, user)) = cache.get(id)
            && now.saturating_sub(read_at) < USER_CACHE_TTL
        {
            return Ok(Some(UserRecord::clone(&user)));
        }
        let epoch = cache.epoch();
        let Some(user) = self.store().user_by_id(id).await? else {
            return Ok(None);
        };
        cache.admit(id.to_owned(), (now, Arc::new(user.clone())), epoch);
        Ok(Some(user))
    }

    /// Forgets a user whose record changed.
    pub(crate) fn forget_user(&self, id: &str) {
        self.user_cache().forget([id.to_owned()]);
    }
}

/// A registration that passed every rule.
#[derive(Debug)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    pub company: Option<String>,
}

fn non_empty<'a>(fields: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    fields.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
}

pub(crate) fn at_most(value: &str, max: usize, what: &str) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::user_input(format!(
            "{what} is too long; it can be at most {max} characters."
        )));
    }
    Ok(())
}

/// Characters that change nothing a person sees: zero-width spaces and joiners, the word joiner,
/// the byte-order mark, the soft hyphen. They are dropped from emails, so a variant carrying them
/// is the same address.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
    )
}

/// Bidirectional controls: they reorder what is displayed, so `abc` can show as `cba`.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether a display text holds a control, zero-width or bidirectional character.
pub fn has_hidden_characters(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() || is_invisible(c) || is_bidi_control(c))
}

/// Refuses a display text (a name, say) with characters that hide or disguise what it says.
pub(crate) fn check_visible(text: &str, what: &str) -> Result<()> {
    if has_hidden_characters(text) {
        return Err(Error::user_input(format!(
            "{what} contains invisible or control characters (such as zero-width spaces or \
             right-to-left marks); remove them."
        )));
    }
    Ok(())
}

/// Only the user themselves: their projects are read with their own role, and an admin's token
/// does not bypass the project rule.
pub fn require_self<'a>(caller: Option<&'a Auth>, user: &UserRecord) -> Result<&'a Auth> {
    match caller {
        Some(auth) if auth.user_id == user.id => Ok(auth),
        Some(_) => Err(Error::forbidden(
            "You can only list your own projects and versions",
        )),
        None => Err(Error::forbidden(
            "You must be authenticated to access this data",
        )),
    }
}

/// Speckle's `@isOwner`: only the user themselves (or a server admin) may read the field.
pub fn require_owner<'a>(
    caller: Option<&'a Auth>,
    user: &UserRecord,
    field: &str,
) -> Result<&'a Auth> {
    let auth =
        caller.ok_or_else(|| Error::forbidden("You must be authenticated to access this data"))?;
    if auth.user_id != user.id && auth.role != ServerRole::Admin {
        return Err(Error::forbidden(format!(
            "You must be authenticated as the user whose '{field}' value you wish to retrieve"
        )));
    }
    Ok(auth)
}

/// Whether the caller may see a user's email: their own with `profile:email`, another user's
/// with `users:email` and the admin role. Otherwise it is silently hidden, as in Speckle.
pub fn email_visible(caller: Option<&Auth>, user: &UserRecord) -> bool {
    let Some(auth) = caller else {
        return false;
    };
    if auth.user_id == user.id {
        auth.has_scope(Scope::ProfileEmail)
    } else {
        auth.role == ServerRole::Admin && auth.has_scope(Scope::UsersEmail)
    }
}

/// A user search as the rules accept it: a bounded query of at least `min_chars` characters.
pub fn search_query(
    text: &str,
    min_chars: usize,
    email_only: bool,
    include_archived: bool,
) -> Result<UserSearch> {
    super::paging::check_search(Some(text), "The search query")?;
    if text.trim().chars().count() < min_chars {
        return Err(Error::Malformed(
            format!("Search query must be at least {min_chars} characters.").into(),
        ));
    }
    Ok(UserSearch {
        text: text.to_owned(),
        email_only,
        include_archived,
    })
}

/// What a new password must be: at least 8 characters, at most 1024 bytes.
fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::user_input(
            "Password too short; needs to be 8 characters or longer.",
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::user_input(format!(
            "Password too long; it can be at most {MAX_PASSWORD_BYTES} bytes."
        )));
    }
    Ok(())
}

/// The one form of an email that is stored and compared, so one person has one identity: trimmed,
/// zero-width characters dropped, Unicode NFC, lowercased, and the domain in its ASCII (punycode)
/// form of letters, digits, hyphens and dots. `None` when it has control or bidirectional
/// characters, or a domain IDNA refuses, or when it is not its own normal form (Unicode has a few
/// characters whose folding does not settle in one pass): normalising twice changes nothing.
pub fn normalize_email(email: &str) -> Option<String> {
    let normal = normalize_once(email)?;
    (normalize_once(&normal)? == normal).then_some(normal)
}

fn normalize_once(email: &str) -> Option<String> {
    if email.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return None;
    }
    let visible: String = email.chars().filter(|c| !is_invisible(*c)).collect();
    let visible = visible.trim();
    // An address has no spaces inside it (and refusing them keeps this function idempotent).
    if visible.chars().any(char::is_whitespace) {
        return None;
    }
    let folded: String = visible
        .nfc()
        .collect::<String>()
        .to_lowercase()
        .nfc()
        .collect();
    match folded.rsplit_once('@') {
        Some((local, domain)) => {
            let domain = idna::domain_to_ascii(domain).ok()?;
            let hostname =
                |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
            if !domain.bytes().all(hostname) {
                return None;
            }
            Some(format!("{local}@{domain}"))
        }
        None => Some(folded),
    }
}

/// A pragmatic email check: one `@`, a non-empty local part, a dotted domain of letters, digits and
/// hyphens, and no spaces. It rejects typos, not exotic-but-valid addresses.
pub fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    !local.is_empty()
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c.is_control())
        && domain.contains('.')
        && domain.split('.').all(label_ok)
}

impl Registration {
    /// Applies Speckle's registration rules, in Speckle's order, plus an email format check.
    pub fn from_fields(fields: &HashMap<String, String>) -> Result<Registration> {
        let password = fields
            .get("password")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::user_input("Password missing"))?;
        let email = non_empty(fields, "email")
            .ok_or_else(|| Error::user_input("E-mail address is required"))?;
        let name =
            non_empty(fields, "name").ok_or_else(|| Error::user_input("User name is required"))?;
        at_most(email, MAX_EMAIL_CHARS, "E-mail address")?;
        let invalid = || {
            Error::user_input("E-mail address is not valid; it should look like name@example.com.")
        };
        let email = normalize_email(email).ok_or_else(invalid)?;
        if !looks_like_email(&email) || email.chars().count() > MAX_EMAIL_CHARS {
            return Err(invalid());
        }
        at_most(name, MAX_NAME_CHARS, "User name")?;
        check_visible(name, "User name")?;
        let company = non_empty(fields, "company");
        if let Some(company) = company {
            at_most(company, MAX_COMPANY_CHARS, "Company")?;
            check_visible(company, "Company")?;
        }
        check_new_password(password)?;
        Ok(Registration {
            email,
            password: password.clone(),
            name: name.to_owned(),
            company: company.map(str::to_owned),
        })
    }
}

fn email_taken() -> Error {
    Error::user_input("Email taken. Try logging in?")
}

impl Tessera {
    /// Creates an account from registration fields. The first account of the server becomes its
    /// admin. A rejected registration stores nothing and hashes nothing.
    ///
    /// With an invitation's token (Speckle's `token` or `inviteId` parameter), the email must be
    /// the one the invitation was sent to; the account is then verified.
    pub async fn register(
        &self,
        fields: &HashMap<String, String>,
        invite_token: Option<&str>,
        client: &Client,
    ) -> Result<UserRecord> {
        let store = self.store();
        let passwords = self.passwords();
        let now = self.now();

        let registration = Registration::from_fields(fields)?;
        if store.user_credentials(&registration.email).await?.is_some() {
            return Err(email_taken());
        }
        let invited = match invite_token.filter(|t| !t.is_empty()) {
            None => false,
            Some(token) => {
                store
                    .email_invite(&registration.email, token)
                    .await?
                    .ok_or_else(|| {
                        Error::invite(
                            crate::error::InviteProblem::NotFound,
                            "Wrong e-mail address or invite token. Make sure you're using the \
                             same e-mail address that received the invite.",
                        )
                    })?;
                true
            }
        };
        let password_hash = passwords.hash(registration.password).await?;
        let user = store
            .create_user(NewUser {
                id: random_hex(10)?.into(),
                suuid: random_uuid()?,
                email: registration.email,
                name: registration.name,
                company: registration.company,
                bio: None,
                avatar: None,
                password_hash,
                verified: invited,
                created_at: now,
            })
            .await?
            .ok_or_else(email_taken)?;
        // Invitations sent to this email before it had an account are now the account's.
        store.claim_invites(&user.email, &user.id).await?;
        tracing::info!(user = %user.id, role = %user.role, "user registered");
        let subject = Subject {
            name: Some("a new account".into()),
            id: None,
        };
        self.note(&user.id, ActivityKind::SignIn, client, subject);
        Ok(user)
    }

    /// Changes the caller's password, given the current one, and signs out every other session
    /// of theirs (the one asking stays signed in), in one store transaction.
    pub async fn change_password(&self, session: &Auth, current: &str, new: &str) -> Result<()> {
        let store = self.store();
        let passwords = self.passwords();
        let user = store
            .user_by_id(&session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if current.len() > MAX_PASSWORD_BYTES {
            return Err(Error::user_input("The current password is not right."));
        }
        let (_, hash) = store
            .user_credentials(&user.email)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !passwords.verify(current.to_owned(), hash).await? {
            return Err(Error::user_input("The current password is not right."));
        }
        check_new_password(new)?;
        let hash = passwords.hash(new.to_owned()).await?;
        let revoked = store
            .set_password(&user.id, &hash, super::apps::WEB_APP_ID, &session.token_id)
            .await?;
        self.revoked(&revoked).await?;
        let subject = Subject {
            name: Some(format!(
                "{} signed out",
                super::activity::other_sessions(revoked.len())
            )),
            id: None,
        };
        self.note_for(session, ActivityKind::PasswordChanged, subject);
        Ok(())
    }

    /// Checks an email and password. The per-account rate limit comes first (an account under attack
    /// answers 429 without hashing anything); then every failure spends one password verification (an
    /// unknown email is checked against a dummy hash), so the time taken tells nothing about which
    /// emails exist.
    pub async fn verify_login(&self, attempt: SignIn<'_>) -> Result<UserRecord> {
        let store = self.store();
        let passwords = self.passwords();
        let limits = self.limiter();
        let now = self.now();

        let email = normalize_email(attempt.email).unwrap_or_default();
        if email.is_empty() || email.chars().count() > MAX_EMAIL_CHARS {
            return Err(Error::InvalidCredentials);
        }
        let address = attempt
            .client
            .address
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let counted = limits.begin_sign_in(store, &email, address, now).await?;
        // No registered password is longer; refusing it unhashed reveals nothing about the account.
        if attempt.password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::InvalidCredentials);
        }
        let (user, hash) = match store.user_credentials(&email).await? {
            Some((user, hash)) => (Some(user), hash),
            None => (None, None),
        };
        let matched = passwords.verify(attempt.password.to_owned(), hash).await?;
        let Some(user) = user else {
            return Err(Error::InvalidCredentials);
        };
        let (kind, why, outcome) = match (matched, user.role) {
            (true, ServerRole::ArchivedUser) => (
                ActivityKind::SignInFailed,
                Some("archived account"),
                Err(Error::forbidden(ARCHIVED)),
            ),
            (true, _) => {
                limits.succeeded(store, counted).await?;
                (ActivityKind::SignIn, None, Ok(()))
            }
            (false, _) => (
                ActivityKind::SignInFailed,
                Some("wrong password"),
                Err(Error::InvalidCredentials),
            ),
        };
        let subject = Subject {
            name: why.map(str::to_owned),
            id: None,
        };
        self.note(&user.id, kind, attempt.client, subject);
        outcome.map(|()| user)
    }

    /// Brings stored emails to their normalised form, once (the data migration of issue 7). Two
    /// accounts whose emails normalise to the same address are left as they are and reported: merging
    /// accounts is for an administrator to decide.
    pub async fn normalize_stored_emails(&self) -> Result<()> {
        let store = self.store();
        let now = self.now();

        const NAME: &str = "0005_normalize_emails";
        if store.data_migration_done(NAME).await? {
            return Ok(());
        }
        let (mut changed, mut collisions) = (0, 0);
        for (id, email) in store.all_user_emails().await? {
            match normalize_email(&email) {
                Some(normal) if normal == email => {}
                Some(normal) => {
                    if store.set_user_email(&id, &normal).await? {
                        changed += 1;
                    } else {
                        collisions += 1;
                        tracing::warn!(
                            user = %id,
                            "this account's email normalises to the address of another account; \
                             it was left unchanged (merge or rename one of them)"
                        );
                    }
                }
                None => {
                    collisions += 1;
                    tracing::warn!(
                        user = %id,
                        "this account's email has control or bidirectional characters; it was left \
                         unchanged"
                    );
                }
            }
        }
        if changed + collisions > 0 {
            tracing::info!(
                changed,
                left_unchanged = collisions,
                "normalised stored emails"
            );
        }
        store.mark_data_migration_done(NAME, now).await
    }
}

/// What an archived user is told when they sign in with the right password.
pub const ARCHIVED: &str =
    "This account has been archived by an administrator of this server; ask them to restore it.";

/// A sign-in: who is trying, from where, with what.
pub struct SignIn<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub client: &'a Client,
}

/// The fields of `activeUserMutations.update` as sent (absent fields are `None`).
#[derive(Debug, Default)]
pub struct ProfileInput {
    pub name: Option<String>,
    pub company: Option<String>,
    pub bio: Option<String>,
    pub avatar: Option<String>,
}

impl ProfileInput {
    /// Validates a profile change. An empty company, bio or avatar clears it (as in Speckle); a
    /// name cannot be cleared.
    pub fn validate(self) -> Result<ProfileUpdate> {
        let clearable =
            |value: Option<String>, max: usize, what: &str| -> Result<Option<Option<String>>> {
                match value {
                    None => Ok(None),
                    Some(v) if v.trim().is_empty() => Ok(Some(None)),
                    Some(v) => {
                        at_most(&v, max, what)?;
                        Ok(Some(Some(v)))
                    }
                }
            };
        let name = match self.name {
            None => None,
            Some(n) if n.trim().is_empty() => {
                return Err(Error::user_input("User name cannot be empty"));
            }
            Some(n) => {
                let n = n.trim().to_owned();
                at_most(&n, MAX_NAME_CHARS, "User name")?;
                check_visible(&n, "User name")?;
                Some(n)
            }
        };
        Ok(ProfileUpdate {
            name,
            company: clearable(self.company, MAX_COMPANY_CHARS, "Company")?,
            bio: clearable(self.bio, MAX_BIO_CHARS, "Bio")?,
            avatar: clearable(self.avatar, MAX_AVATAR_CHARS, "Avatar")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_normalisation_is_idempotent_where_unicode_folding_is_not() {
        // Found by the `email` fuzz target: U+0385 in a domain folds to a space and combining
        // marks, which IDNA then maps again.
        for input in ["@``\u{3bd}*\u{385}", "a@b\u{385}.com", "Ab@Ex*ample.com"] {
            if let Some(normal) = normalize_email(input) {
                assert_eq!(
                    normalize_email(&normal).as_deref(),
                    Some(normal.as_str()),
                    "{input:?}"
                );
            }
        }
        assert_eq!(normalize_email("a@ex*ample.com"), None, "not a host name");
        assert_eq!(
            normalize_email("José@Exämple.COM").as_deref(),
            Some("josé@xn--exmple-cua.com")
        );
    }
    use crate::domain::fields;

    fn message(pairs: &[(&str, &str)]) -> String {
        Registration::from_fields(&fields(pairs))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn registration_rules_in_speckle_order() {
        assert_eq!(
            message(&[("email", "a@b.co"), ("name", "A")]),
            "Password missing"
        );
        assert_eq!(
            message(&[("password", "12345678"), ("name", "A")]),
            "E-mail address is required"
        );
        assert_eq!(
            message(&[
                ("password", "12345678"),
                ("email", "a@b.co"),
                ("name", "  ")
            ]),
            "User name is required"
        );
        assert!(
            message(&[
                ("password", "12345678"),
                ("email", "not-an-email"),
                ("name", "A")
            ])
            .starts_with("E-mail address is not valid")
        );
        assert_eq!(
            message(&[("password", "1234567"), ("email", "a@b.co"), ("name", "A")]),
            "Password too short; needs to be 8 characters or longer."
        );
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(
            message(&[("password", &long), ("email", "a@b.co"), ("name", "A")])
                .starts_with("Password too long")
        );
        let ok = Registration::from_fields(&fields(&[
            ("password", "12345678"),
            ("email", " Alice@Example.ORG "),
            ("name", " Alice "),
            ("company", ""),
        ]))
        .unwrap();
        assert_eq!(ok.email, "alice@example.org");
        assert_eq!(ok.name, "Alice");
        assert_eq!(ok.company, None);
    }

    #[test]
    fn one_identity_per_email() {
        let canonical = normalize_email("josé@bücher.example").unwrap();
        assert_eq!(canonical, "josé@xn--bcher-kva.example");
        for variant in [
            "jose\u{301}@bücher.example",
            "JOSÉ@BÜCHER.EXAMPLE",
            "josé@xn--bcher-kva.example",
            "jo\u{200B}sé@bücher.example",
            " josé@bu\u{308}cher.example ",
        ] {
            assert_eq!(
                normalize_email(variant).as_deref(),
                Some(canonical.as_str()),
                "{variant:?}"
            );
        }
        assert_eq!(
            normalize_email("ad\u{202E}min@example.org"),
            None,
            "bidi control"
        );
        assert_eq!(
            normalize_email("a\u{7}@example.org"),
            None,
            "control character"
        );
        assert_eq!(normalize_email("a b@example.org"), None, "a space inside");
        // Found by the fuzzer: a combining grapheme joiner that IDNA drops left spaces behind.
        let once = normalize_email(" @.  \u{34F}").unwrap();
        assert_eq!(normalize_email(&once).as_deref(), Some(once.as_str()));
        assert!(has_hidden_characters("Ada\u{200B}"));
        assert!(has_hidden_characters("\u{202E}Ada"));
        assert!(!has_hidden_characters("Ada Lovelace-Byron, née Byron"));
    }

    #[test]
    fn email_shapes() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "x@xn--bcher-kva.de",
        ] {
            assert!(looks_like_email(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@",
            "@b.co",
            "a@b",
            "a b@c.de",
            "a@b..c",
            "a@-b.c",
            "a@b.c@d.e",
        ] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    fn profile_updates() {
        let update = ProfileInput {
            name: Some(" Ron ".into()),
            company: Some("".into()),
            bio: Some("hi".into()),
            avatar: None,
        }
        .validate()
        .unwrap();
        assert_eq!(update.name.as_deref(), Some("Ron"));
        assert_eq!(update.company, Some(None));
        assert_eq!(update.bio, Some(Some("hi".into())));
        assert_eq!(update.avatar, None);
        assert!(
            ProfileInput {
                name: Some(" ".into()),
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
