//! Users: what registration and profile updates accept. Limits follow Speckle's column sizes.

use std::collections::HashMap;

use super::passwords::Passwords;
use super::{random_hex, random_uuid};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::store::{NewUser, ProfileUpdate, Store, UserRecord};

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 1024;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 512;
pub const MAX_COMPANY_CHARS: usize = 512;
pub const MAX_BIO_CHARS: usize = 2048;
pub const MAX_AVATAR_CHARS: usize = 524_288;

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

fn at_most(value: &str, max: usize, what: &str) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::user_input(format!(
            "{what} is too long; it can be at most {max} characters."
        )));
    }
    Ok(())
}

/// Normalises an email for storage and lookup: trimmed and lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
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
        if !looks_like_email(email) {
            return Err(Error::user_input(
                "E-mail address is not valid; it should look like name@example.com.",
            ));
        }
        at_most(name, MAX_NAME_CHARS, "User name")?;
        let company = non_empty(fields, "company");
        if let Some(company) = company {
            at_most(company, MAX_COMPANY_CHARS, "Company")?;
        }
        let chars = password.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(Error::user_input(
                "Password too short; needs to be 8 characters or longer.",
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(Error::user_input(format!(
                "Password too long; it can be at most {MAX_PASSWORD_CHARS} characters."
            )));
        }
        Ok(Registration {
            email: normalize_email(email),
            password: password.clone(),
            name: name.to_owned(),
            company: company.map(str::to_owned),
        })
    }
}

fn email_taken() -> Error {
    Error::user_input("Email taken. Try logging in?")
}

/// Creates an account from registration fields. The first account of the server becomes its
/// admin. A rejected registration stores nothing and hashes nothing.
pub async fn register(
    store: &dyn Store,
    passwords: &Passwords,
    fields: &HashMap<String, String>,
    now: Millis,
) -> Result<UserRecord> {
    let registration = Registration::from_fields(fields)?;
    if store.user_credentials(&registration.email).await?.is_some() {
        return Err(email_taken());
    }
    let password_hash = passwords.hash(registration.password).await?;
    let user = store
        .create_user(NewUser {
            id: random_hex(10)?,
            suuid: random_uuid()?,
            email: registration.email,
            name: registration.name,
            company: registration.company,
            bio: None,
            avatar: None,
            password_hash,
            created_at: now,
        })
        .await?
        .ok_or_else(email_taken)?;
    tracing::info!(user = %user.id, role = %user.role, "user registered");
    Ok(user)
}

/// Checks an email and password. Every failure spends one password verification (an unknown email
/// is checked against a dummy hash), so the time taken tells nothing about which emails exist.
pub async fn verify_login(
    store: &dyn Store,
    passwords: &Passwords,
    email: &str,
    password: &str,
) -> Result<UserRecord> {
    let email = normalize_email(email);
    let found = if email.is_empty() {
        None
    } else {
        store.user_credentials(&email).await?
    };
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    let matched = passwords.verify(password.to_owned(), hash).await?;
    match user {
        Some(user) if matched => Ok(user),
        _ => Err(Error::InvalidCredentials),
    }
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
        let long = "x".repeat(MAX_PASSWORD_CHARS + 1);
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
