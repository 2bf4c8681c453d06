//! Server-rendered pages (askama templates in `templates/`, one stylesheet and one small script
//! in `assets/`, nothing inline; every page works without the script, which only adds Copy
//! buttons and confirmations). Each page is a struct; `render` turns it into a response with the
//! headers every page carries: a strict Content-Security-Policy, no caching, no framing.

use askama::Template;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub const STYLESHEET: &str = include_str!("../../assets/tessera.css");
/// The one script: copy buttons and confirmations. Every page works without it.
pub const SCRIPT: &str = include_str!("../../assets/tessera.js");

#[derive(Template)]
#[template(path = "login.html")]
pub struct Login<'a> {
    pub server_name: &'a str,
    pub app_name: Option<String>,
    pub error: Option<String>,
    pub csrf: &'a str,
    pub next: &'a str,
    pub email: &'a str,
}

#[derive(Template)]
#[template(path = "register.html")]
pub struct Register<'a> {
    pub server_name: &'a str,
    pub app_name: Option<String>,
    pub error: Option<String>,
    pub csrf: &'a str,
    pub next: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    pub company: &'a str,
    /// An invitation's token, when the person registers through one.
    pub token: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct Consent<'a> {
    pub server_name: &'a str,
    pub app_name: &'a str,
    pub app_initial: String,
    pub author: String,
    pub description: Option<&'a str>,
    pub logo: Option<&'a str>,
    pub user_name: &'a str,
    pub user_email: &'a str,
    pub user_initial: String,
    /// (name, description) of each scope asked for.
    pub scopes: Vec<(&'static str, &'static str)>,
    /// Where the browser goes after the answer (none for a device sign-in).
    pub redirect_url: Option<&'a str>,
    /// The code of a device sign-in (RFC 8628), shown and posted back with the answer.
    pub user_code: Option<&'a str>,
    pub action: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "device.html")]
pub struct Device<'a> {
    pub server_name: &'a str,
    /// What the person typed, kept when it was not a valid code.
    pub typed: &'a str,
    pub error: Option<String>,
    /// The page after an answer: (title, message).
    pub done: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub server_name: &'a str,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct Home<'a> {
    pub server_name: &'a str,
    pub user_name: &'a str,
    pub user_email: &'a str,
    pub user_initial: String,
    /// (id, name, description) of each authorized app.
    pub apps: Vec<(String, String, String)>,
    /// Invitations waiting for this person's answer.
    pub invitations: Vec<InvitationItem>,
    /// (name, role) of each project this person collaborates on.
    pub projects: Vec<(String, String)>,
    /// Invitations this person sent that wait for an answer, with the link to pass on.
    pub sent: Vec<SentItem>,
    pub csrf: &'a str,
}

/// What every settings page shows around its content: the signed-in person's avatar menu, the
/// sidebar with the current page marked, and the session's CSRF token for its forms.
pub struct Chrome<'a> {
    pub user_name: &'a str,
    pub user_initial: String,
    pub csrf: String,
    /// The sidebar entry of this page.
    pub current: &'static str,
    /// Whether the person is a server administrator (the sidebar then shows Server admin).
    pub admin: bool,
}

#[derive(Template)]
#[template(path = "server.html")]
pub struct ServerPage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub name: String,
    pub company: String,
    pub description: String,
    pub admin_contact: String,
    pub terms_of_service: String,
    pub saved: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub users: Vec<UserItem>,
    /// The roles an administrator can give: name and title.
    pub roles: Vec<(&'static str, &'static str)>,
    pub query: String,
    pub total: i64,
    pub next: Option<String>,
    pub error: Option<String>,
}

/// A user in the administrator's list.
pub struct UserItem {
    pub id: String,
    pub name: String,
    pub email: String,
    pub joined: String,
    pub role: &'static str,
    pub role_title: &'static str,
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
pub struct Tokens<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub tokens: Vec<TokenItem>,
    /// (resource, [(scope name, description)]) for the new-token form.
    pub scope_groups: Vec<(String, Vec<(&'static str, &'static str)>)>,
    /// A token just created or regenerated: shown this once.
    pub new_token: Option<String>,
    pub error: Option<String>,
    pub name: &'a str,
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub email: &'a str,
    pub name: String,
    pub company: String,
    pub bio: String,
    pub avatar: String,
    pub saved: bool,
    pub error: Option<String>,
    pub password_changed: bool,
    pub password_error: Option<String>,
}

#[derive(Template)]
#[template(path = "authorized_apps.html")]
pub struct AuthorizedApps<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub grants: Vec<GrantItem>,
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub sessions: Vec<SessionItem>,
    /// Whether there are sessions besides this one.
    pub others: bool,
}

/// A browser session in the list.
pub struct SessionItem {
    pub id: String,
    pub device: String,
    pub address: String,
    pub signed_in: String,
    pub last_active: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "activity.html")]
pub struct ActivityPage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub lines: Vec<ActivityItem>,
    /// The kinds to filter by: stored name and label.
    pub kinds: Vec<(&'static str, &'static str)>,
    /// The kind shown ("" for every kind).
    pub kind: String,
    pub total: i64,
    /// The link to the next (older) page.
    pub next: Option<String>,
    pub retention_days: u32,
}

/// A line of the access log as the page shows it.
pub struct ActivityItem {
    pub when: String,
    pub label: &'static str,
    pub subject: String,
    pub address: String,
    pub device: String,
}

/// An authorized app in the list.
pub struct GrantItem {
    pub id: String,
    pub name: String,
    pub author: String,
    pub scopes: String,
    pub authorized: String,
    pub last_used: String,
}

/// What the app form shows: what was typed or stored.
#[derive(Default)]
pub struct AppForm {
    pub name: String,
    pub description: String,
    pub redirect_url: String,
    pub logo: String,
    pub terms: String,
    /// A confidential client (its secret required at the token endpoint).
    pub confidential: bool,
}

#[derive(Template)]
#[template(path = "apps.html")]
pub struct Apps<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    /// (id, name, redirect URL) of each app the person registered.
    pub apps: Vec<(String, String, String)>,
    pub form: AppForm,
    /// (scope, description, ticked) for the form.
    pub scopes: Vec<(&'static str, &'static str, bool)>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "app.html")]
pub struct AppPage<'a> {
    pub server_name: &'a str,
    pub chrome: Chrome<'a>,
    pub app_id: String,
    pub app_name: String,
    pub secret: String,
    pub users: i64,
    pub form: AppForm,
    pub scopes: Vec<(&'static str, &'static str, bool)>,
    pub error: Option<String>,
}

/// A personal access token in the list.
pub struct TokenItem {
    pub id: String,
    pub name: String,
    pub last_chars: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    /// Expires within a week or less.
    pub expiring: bool,
}

/// An invitation on the invitee's account page.
pub struct InvitationItem {
    pub project_id: String,
    pub project_name: String,
    pub inviter: String,
    pub role: String,
    pub token: String,
}

/// An invitation on the inviter's account page.
pub struct SentItem {
    pub project_name: String,
    pub invitee: String,
    pub role: String,
    /// Where the invitee answers: their account page, or for an email without an account, the
    /// registration page carrying the invitation's token.
    pub link: String,
}

/// Who registered an app, in the pages' words.
pub fn registered_by(by: &tessera_core::domain::grants::RegisteredBy) -> String {
    use tessera_core::domain::grants::RegisteredBy;
    match by {
        RegisteredBy::Server => "A first-party app of this server".to_owned(),
        RegisteredBy::User(name) => format!("Registered by {name}"),
        RegisteredBy::FormerUser => "Registered by a former user".to_owned(),
    }
}

/// Scope names, as a list for people.
pub fn scope_list(scopes: tessera_proto::ScopeSet) -> String {
    scopes
        .iter()
        .map(tessera_proto::Scope::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first letter of a name, for avatars.
pub fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_else(|| "?".into())
}

/// A rendered page. `form_targets` are origins (or `scheme:` sources) a form on the page may end
/// up at after the server's redirect, added to CSP `form-action`.
pub fn render(
    page: &impl Template,
    status: StatusCode,
    cookies: &[String],
    form_targets: Option<&str>,
) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "page failed to render");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown.",
            )
                .into_response();
        }
    };
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         form-action 'self'{}; frame-ancestors 'none'; base-uri 'none'",
        form_targets.map(|t| format!(" {t}")).unwrap_or_default()
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_what_users_write() {
        let page = ErrorPage {
            server_name: "Tessera",
            title: "Oops",
            message: "<script>alert(1)</script>",
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
    }

    #[test]
    fn initials() {
        assert_eq!(initial("ada lovelace"), "A");
        assert_eq!(initial("  élodie"), "É");
        assert_eq!(initial(""), "?");
    }
}
