//! Registered apps (OAuth clients): the first-party apps seeded at start-up, what a developer may
//! register, who may change an app, and where the browser is sent back to.

use tessera_proto::{Scope, ScopeSet, ServerRole};
use url::{Host, Url};

use super::activity::Subject;
use super::auth::Auth;
use super::random_hex;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::ActivityKind;
use crate::service::Tessera;
use crate::store::{AppRecord, Store};

/// The Speckle web app: local login and registration issue access codes for it, and Tessera's own
/// pages hold a token of it as their session.
pub const WEB_APP_ID: &str = "spklwebapp";
/// The `tessera` command line's app (a public client with a loopback redirect).
pub const CLI_APP_ID: &str = "tessera-cli";
/// Registered without a port: the CLI listens on whichever loopback port is free (RFC 8252 §7.3).
pub const CLI_REDIRECT_URL: &str = "http://127.0.0.1/callback";

pub const MAX_NAME_CHARS: usize = 256;
pub const MAX_DESCRIPTION_CHARS: usize = 512;
pub const MAX_LINK_CHARS: usize = 1024;
pub const MAX_LOGO_CHARS: usize = 524_288;

/// What Speckle's desktop connectors ask for.
const DESKTOP_SCOPES: &[Scope] = &[
    Scope::StreamsRead,
    Scope::StreamsWrite,
    Scope::ProfileRead,
    Scope::ProfileEmail,
    Scope::UsersRead,
    Scope::UsersInvite,
];

fn first_party(
    id: &str,
    name: &str,
    description: &str,
    trusted: bool,
    redirect_url: String,
    scopes: ScopeSet,
    now: Millis,
) -> AppRecord {
    AppRecord {
        id: id.into(),
        // Speckle's first-party apps use their id as secret: they are public clients.
        secret: id.into(),
        name: name.into(),
        description: Some(description.into()),
        terms_and_conditions_link: None,
        logo: None,
        trust_by_default: trusted,
        public: true,
        confidential: false,
        redirect_url,
        scopes,
        author_id: None,
        created_at: now,
    }
}

/// The first-party apps of Speckle (reference §6) plus Tessera's CLI, with the server's public
/// URL filled in where a redirect needs it.
pub fn default_apps(public_url: &str, now: Millis) -> Vec<AppRecord> {
    let all = ScopeSet::registered();
    let desktop: ScopeSet = DESKTOP_SCOPES.iter().copied().collect();
    let set = |s: &[Scope]| s.iter().copied().collect::<ScopeSet>();
    let app = |id, name, description, trusted, redirect: &str, scopes| {
        first_party(
            id,
            name,
            description,
            trusted,
            redirect.to_owned(),
            scopes,
            now,
        )
    };
    vec![
        app(
            WEB_APP_ID,
            "Speckle Web Manager",
            "The Speckle web application.",
            true,
            public_url,
            all,
        ),
        app(
            "explorer",
            "Speckle Explorer",
            "GraphiQL Playground with authentication.",
            true,
            &format!("{public_url}/explorer"),
            all,
        ),
        app(
            "sdm",
            "Speckle Desktop Manager",
            "Manages Speckle connectors.",
            true,
            "speckle://account",
            desktop,
        ),
        app(
            "sdui",
            "DUI",
            "Speckle's desktop user interface.",
            false,
            "https://dui.speckle.systems/authn/callback",
            desktop,
        ),
        app(
            "connectrV3",
            "Desktop Connectors",
            "Speckle's desktop connectors.",
            false,
            "http://localhost:29355",
            desktop,
        ),
        app(
            "sca",
            "Speckle Connector",
            "Speckle's connectors (legacy sign-in).",
            true,
            "http://localhost:29363",
            desktop,
        ),
        app(
            "sdas",
            "Speckle Desktop Authentication Service",
            "Signs Speckle's desktop connectors in.",
            true,
            "http://localhost:29364",
            desktop,
        ),
        app(
            "spklexcel",
            "Speckle Connector For Excel",
            "Speckle in Microsoft Excel.",
            true,
            "https://speckle-excel.netlify.app",
            desktop,
        ),
        app(
            "spklpwerbi",
            "Speckle Connector For PowerBI",
            "Speckle in Microsoft Power BI.",
            true,
            "https://oauth.powerbi.com/views/oauthredirect.html",
            set(&[
                Scope::StreamsRead,
                Scope::ProfileRead,
                Scope::ProfileEmail,
                Scope::UsersRead,
                Scope::UsersInvite,
                Scope::TokensWrite,
            ]),
        ),
        app(
            "spklautoma",
            "Speckle Automate",
            "Runs automations on your projects.",
            true,
            "https://automate.speckle.systems/authn/callback",
            set(&[
                Scope::ProfileEmail,
                Scope::ProfileRead,
                Scope::UsersRead,
                Scope::TokensWrite,
                Scope::StreamsRead,
                Scope::StreamsWrite,
            ]),
        ),
        app(
            CLI_APP_ID,
            "Tessera CLI",
            "The tessera command line: sign in and manage your tokens from a terminal.",
            true,
            CLI_REDIRECT_URL,
            set(&[
                Scope::ProfileRead,
                Scope::ProfileEmail,
                Scope::TokensRead,
                Scope::TokensWrite,
                Scope::AppsRead,
                Scope::StreamsRead,
                Scope::UsersRead,
            ]),
        ),
    ]
}

impl Tessera {
    /// Inserts the first-party apps, or brings their names, flags, redirects and scopes up to date.
    pub async fn seed_default_apps(&self, public_url: &str) -> Result<()> {
        let store = self.store();
        let now = self.now();

        for app in default_apps(public_url, now) {
            store.upsert_default_app(&app).await?;
        }
        Ok(())
    }

    /// Registers an app for the caller; returns it with its new id and secret.
    pub async fn create_app(&self, caller: &Auth, input: AppInput) -> Result<AppRecord> {
        let store = self.store();
        let now = self.now();

        let mut app = AppRecord {
            id: random_hex(10)?.into(),
            secret: random_hex(32)?,
            name: String::new(),
            description: None,
            terms_and_conditions_link: None,
            logo: None,
            trust_by_default: false,
            public: false,
            confidential: false,
            redirect_url: String::new(),
            scopes: ScopeSet::EMPTY,
            author_id: Some(caller.user_id.clone()),
            created_at: now,
        };
        input.apply(&mut app)?;
        store.create_app(&app).await?;
        let subject = Subject::new(&app.name, &app.id);
        self.note_for(caller, ActivityKind::AppRegistered, subject);
        Ok(app)
    }

    /// Changes an app. Every code, refresh token and token issued for it is revoked, for every user:
    /// they authorized what the app was, and must authorize what it is now.
    pub async fn update_app(&self, caller: &Auth, id: &str, input: AppInput) -> Result<()> {
        let store = self.store();
        let mut app = editable_app(store, caller, id).await?;
        input.apply(&mut app)?;
        let revoked = store.update_app(&app).await?.unwrap_or_default();
        self.revoked(&revoked).await
    }

    /// An app its author (or an admin) manages, with how many people are signed in to it.
    pub async fn managed_app(&self, caller: &Auth, id: &str) -> Result<(AppRecord, i64)> {
        let store = self.store();
        let app = editable_app(store, caller, id).await?;
        let users = store.app_user_count(id).await?;
        Ok((app, users))
    }

    /// Deletes an app and everything issued for it.
    pub async fn delete_app(&self, caller: &Auth, id: &str) -> Result<()> {
        let store = self.store();
        let app = editable_app(store, caller, id).await?;
        let revoked = store.delete_app(id).await?;
        self.revoked(&revoked).await?;
        let subject = Subject::new(&app.name, &app.id);
        self.note_for(caller, ActivityKind::AppDeleted, subject);
        Ok(())
    }

    /// Gives an app a new secret; the old one stops working at once. Returns the new secret.
    pub async fn regenerate_secret(&self, caller: &Auth, id: &str) -> Result<String> {
        let store = self.store();
        let app = editable_app(store, caller, id).await?;
        let secret = random_hex(32)?;
        store.set_app_secret(id, &secret).await?;
        let subject = Subject::new(&app.name, &app.id);
        self.note_for(caller, ActivityKind::AppSecretRegenerated, subject);
        Ok(secret)
    }

    /// Withdraws the caller's authorization of an app: their codes, refresh tokens and tokens for it
    /// are revoked. Returns whether any token was.
    pub async fn revoke_access(&self, caller: &Auth, app_id: &str) -> Result<bool> {
        let store = self.store();
        let revoked = store
            .revoke_app_grants(app_id, Some(&caller.user_id))
            .await?;
        self.revoked(&revoked).await?;
        if !revoked.is_empty() {
            let name = store.app(app_id).await?.map(|a| a.name);
            let subject = Subject::new(name.as_deref().unwrap_or("an app"), app_id);
            self.note_for(caller, ActivityKind::AppRevoked, subject);
        }
        Ok(!revoked.is_empty())
    }
}

/// Schemes that are not an app's: browser-internal pages and extensions, schemes a browser
/// executes or renders itself, and other protocols' schemes. A redirect URL uses `https`, `http` to
/// this machine, or a private-use scheme an app registered for itself (`speckle://account`,
/// `com.example.app:/callback`, RFC 8252 §7.1); every scheme below is refused.
const FORBIDDEN_SCHEMES: &[&str] = &[
    // Executed or rendered by the browser itself.
    "javascript",
    "vbscript",
    "livescript",
    "data",
    "blob",
    "filesystem",
    "file",
    "about",
    "view-source",
    "jar",
    "wyciwyg",
    "mhtml",
    "ms-its",
    "its",
    "res",
    "cid",
    "mid",
    // Browser-internal pages and extensions.
    "chrome",
    "chrome-extension",
    "chrome-untrusted",
    "chrome-search",
    "devtools",
    "edge",
    "brave",
    "opera",
    "vivaldi",
    "moz-extension",
    "moz-icon",
    "resource",
    "safari-extension",
    "webkit-extension",
    "ms-browser-extension",
    "extension",
    "isolated-app",
    // Android intents launch any app.
    "intent",
    "android-app",
    // Other protocols, not a way back to an app.
    "ftp",
    "ws",
    "wss",
    "mailto",
    "tel",
    "sms",
    "news",
    "nntp",
    "gopher",
    "telnet",
    "ldap",
    "smb",
    "magnet",
    "feed",
];

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a redirect URL: an absolute `https` URL, an `http` URL to this machine (localhost,
/// 127.0.0.0/8 or [::1]), or a custom scheme such as `speckle://account`; never credentials, a
/// fragment, or a scheme a browser would execute.
pub fn check_redirect_url(raw: &str) -> Result<Url> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(Error::user_input("An app needs a redirect URL."));
    }
    if raw.chars().count() > MAX_LINK_CHARS {
        return Err(Error::user_input(format!(
            "The redirect URL is too long; it can be at most {MAX_LINK_CHARS} characters."
        )));
    }
    let url = Url::parse(raw).map_err(|_| {
        Error::user_input(format!(
            "The redirect URL {raw:?} is not an absolute URL, like https://app.example.com/callback."
        ))
    })?;
    if url.fragment().is_some() {
        return Err(Error::user_input(
            "The redirect URL must not contain a fragment (#…).",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::user_input(
            "The redirect URL must not contain credentials (user@…).",
        ));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" | "https" => Err(Error::user_input(
            "An http:// redirect URL must point to this machine (localhost, 127.0.0.1 or [::1]); \
             use https:// for anything else.",
        )),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) || scheme.len() > 64 => {
            Err(Error::user_input(format!(
                "The scheme {scheme}: cannot be used for a redirect URL. Use https://, http:// to \
                 this machine, or a scheme of your app's own (like speckle:// or \
                 com.example.app:/)."
            )))
        }
        _ => Ok(url),
    }
}

/// The app's redirect URL with one more query parameter, as the last one (clients such as
/// `speckle-auth` read everything after `access_code=`). The registered URL is kept byte for byte,
/// as Speckle keeps it: `http://localhost:29363` becomes `http://localhost:29363?access_code=…`,
/// not `…29363/?…`.
pub fn redirect_with(redirect_url: &str, key: &str, value: &str) -> Result<String> {
    redirect_with_all(redirect_url, &[(key, value)])
}

/// `redirect_url` with each `key=value` pair added to its query (before any fragment).
pub fn redirect_with_all(redirect_url: &str, pairs: &[(&str, &str)]) -> Result<String> {
    Url::parse(redirect_url)
        .map_err(|_| Error::Internal(format!("stored redirect URL {redirect_url:?} is invalid")))?;
    let (base, fragment) = match redirect_url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect_url, None),
    };
    let mut separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    let encode =
        |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let mut target = base.to_owned();
    for (key, value) in pairs {
        target.push_str(separator);
        target.push_str(&format!("{}={}", encode(key), encode(value)));
        separator = "&";
    }
    if let Some(fragment) = fragment {
        target.push('#');
        target.push_str(fragment);
    }
    Ok(target)
}

/// `appCreate` / `appUpdate` input as sent.
#[derive(Debug, Default)]
pub struct AppInput {
    pub name: String,
    pub description: Option<String>,
    pub terms_and_conditions_link: Option<String>,
    pub logo: Option<String>,
    pub public: Option<bool>,
    /// A confidential client (its secret required at the token endpoint); unchanged when `None`.
    pub confidential: Option<bool>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
}

fn optional(value: Option<String>, max: usize, what: &str) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => Err(Error::user_input(format!(
            "{what} is too long; it can be at most {max} characters."
        ))),
        other => Ok(other),
    }
}

/// The scopes an app asks for: known, registered on this server, at least one.
pub fn app_scopes(names: &[String]) -> Result<ScopeSet> {
    let mut scopes = ScopeSet::EMPTY;
    for name in names {
        let scope = Scope::from_name(name)
            .ok_or_else(|| Error::user_input(format!("Unknown scope {name:?}.")))?;
        if !scope.is_registered() {
            return Err(Error::user_input(format!(
                "The scope {name} is not available on this server."
            )));
        }
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err(Error::user_input("Cannot create an app with no scopes."));
    }
    Ok(scopes)
}

impl AppInput {
    /// Applies the registration rules, producing the editable fields of an app.
    fn apply(self, app: &mut AppRecord) -> Result<()> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(Error::user_input("An app needs a name."));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Error::user_input(format!(
                "The app name is too long; it can be at most {MAX_NAME_CHARS} characters."
            )));
        }
        let terms = optional(
            self.terms_and_conditions_link,
            MAX_LINK_CHARS,
            "The terms link",
        )?;
        if let Some(link) = &terms
            && !Url::parse(link).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return Err(Error::user_input(
                "The terms and conditions link must be an http:// or https:// URL.",
            ));
        }
        let logo = optional(self.logo, MAX_LOGO_CHARS, "The logo")?;
        if let Some(logo) = &logo
            && !(logo.starts_with("data:image/") || logo.starts_with("https://"))
        {
            return Err(Error::user_input(
                "The logo must be an image data URL (data:image/…) or an https:// URL.",
            ));
        }
        app.scopes = app_scopes(&self.scopes)?;
        app.redirect_url = check_redirect_url(&self.redirect_url)?.into();
        app.name = name.to_owned();
        app.description = optional(self.description, MAX_DESCRIPTION_CHARS, "The description")?;
        app.terms_and_conditions_link = terms;
        app.logo = logo;
        app.public = self.public.unwrap_or(app.public);
        app.confidential = self.confidential.unwrap_or(app.confidential);
        Ok(())
    }
}

fn not_editable() -> Error {
    Error::forbidden("You are not authorized to edit this app.")
}

/// The app, if the caller may change it: its author, or a server admin (the only ones who may
/// touch the first-party apps, which have no author).
async fn editable_app(store: &dyn Store, caller: &Auth, id: &str) -> Result<AppRecord> {
    let app = store.app(id).await?.ok_or_else(not_editable)?;
    let is_author = app.author_id.as_deref() == Some(caller.user_id.as_str());
    if !is_author && caller.role != ServerRole::Admin {
        return Err(not_editable());
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(url: &str) -> String {
        check_redirect_url(url).unwrap_err().to_string()
    }

    #[test]
    fn redirect_urls() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com:8443/cb?x=1",
            "http://localhost:3000/callback",
            "http://127.0.0.1:29363",
            "http://127.8.9.1/cb",
            "http://[::1]:8080/cb",
            "speckle://account",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(check_redirect_url(ok).is_ok(), "{ok}");
        }
        assert!(rejected("http://example.com/cb").contains("must point to this machine"));
        assert!(rejected("http://192.168.1.10/cb").contains("must point to this machine"));
        assert!(rejected("javascript:alert(1)").contains("cannot be used"));
        assert!(rejected("data:text/html,hi").contains("cannot be used"));
        for internal in [
            "view-source:https://a.example/",
            "jar:https://a.example/x.jar!/",
            "chrome://settings",
            "chrome-extension://abc/page.html",
            "intent://scan/?x=1",
            "about:blank",
            "file:///etc/passwd",
            "blob:https://a.example/uuid",
        ] {
            assert!(rejected(internal).contains("cannot be used"), "{internal}");
        }
        assert!(rejected("https://app.example.com/cb#frag").contains("fragment"));
        assert!(rejected("https://user:pw@app.example.com/cb").contains("credentials"));
        assert!(rejected("http://localhost@evil.example.com/").contains("credentials"));
        assert!(rejected("/callback").contains("not an absolute URL"));
        assert!(rejected("").contains("needs a redirect URL"));
    }

    #[test]
    fn access_code_goes_last() {
        assert_eq!(
            redirect_with("http://localhost:29363", "access_code", "abc").unwrap(),
            "http://localhost:29363?access_code=abc",
            "the registered URL byte for byte, as Speckle sends it"
        );
        assert_eq!(
            redirect_with("http://127.0.0.1:3000/cb/", "access_code", "abc").unwrap(),
            "http://127.0.0.1:3000/cb/?access_code=abc"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?", "access_code", "a b&c").unwrap(),
            "https://a.example/cb?access_code=a+b%26c"
        );
        assert_eq!(
            redirect_with("speckle://account", "access_code", "abc").unwrap(),
            "speckle://account?access_code=abc"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?state=1", "denied", "true").unwrap(),
            "https://a.example/cb?state=1&denied=true"
        );
    }

    #[test]
    fn app_scope_rules() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            app_scopes(&[]).unwrap_err().to_string(),
            "Cannot create an app with no scopes."
        );
        assert!(
            app_scopes(&names(&["nope"]))
                .unwrap_err()
                .to_string()
                .contains("Unknown scope")
        );
        assert!(
            app_scopes(&names(&["workspace:read"]))
                .unwrap_err()
                .to_string()
                .contains("not available")
        );
        assert_eq!(
            app_scopes(&names(&["streams:read", "streams:read"]))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn default_apps_match_speckle() {
        let apps = default_apps("https://auth.example.com", 0);
        let ids: Vec<_> = apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "spklwebapp",
                "explorer",
                "sdm",
                "sdui",
                "connectrV3",
                "sca",
                "sdas",
                "spklexcel",
                "spklpwerbi",
                "spklautoma",
                "tessera-cli"
            ]
        );
        for app in &apps {
            assert_eq!(app.id, app.secret);
            assert!(app.public);
            assert!(check_redirect_url(&app.redirect_url).is_ok(), "{}", app.id);
        }
        let untrusted: Vec<_> = apps
            .iter()
            .filter(|a| !a.trust_by_default)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(untrusted, ["sdui", "connectrV3"]);
        assert_eq!(apps[0].redirect_url, "https://auth.example.com");
        assert_eq!(apps[1].redirect_url, "https://auth.example.com/explorer");
    }
}
