//! The browser side of sign-in: `/authn/login`, `/authn/register`, the consent page
//! `/authn/verify/{appId}/{challenge}`, the account page `/`, sign-out and revoking an app.
//!
//! The web session is a web-app (`spklwebapp`) token in an HttpOnly cookie. Every form carries a
//! CSRF token derived from the session with a server key (HMAC-SHA256): for a signed-in person,
//! from their session; before sign-in, from a random browser cookie. A cookie/field pair planted by
//! someone else does not match, since only the server can derive the field from the cookie.
//! Approving an app is always a POST.
//! An unknown app or a malformed challenge shows an error page and never redirects anywhere.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, OriginalUri, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use url::Url;

use super::body::Fields;
use super::cookies::cookie;
use crate::AppState;
use crate::domain::activity::Client;
use crate::domain::apps::WEB_APP_ID;
use crate::domain::auth::Auth;
use crate::domain::authorize::AuthorizeProblem;
use crate::domain::grants::{Authorization, AuthorizationRequest, SESSION_LIFESPAN};
use crate::domain::{random_hex, users};
use crate::error::{self as wire, Error};
use crate::model::UserRecord;
use crate::pages::{
    self, Consent, ErrorPage, Home, InvitationItem, Login, Register, SentItem, initial, render,
};
use tessera_core::error::Result;

pub(super) struct Session {
    pub(super) auth: Auth,
    pub(super) user: UserRecord,
}

/// What a page handler reads of its request: the headers, and who is on the other end.
pub(super) struct Visit {
    pub(super) headers: HeaderMap,
    pub(super) client: Client,
}

impl<S: Send + Sync> FromRequestParts<S> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Visit, Self::Rejection> {
        Ok(Visit {
            headers: parts.headers.clone(),
            client: parts
                .extensions
                .get::<Client>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The signed-in user, if the session cookie holds a valid web-app token.
pub(super) async fn session(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Option<Session>> {
    let Some(token) = cookie(headers, state.cookies.session()) else {
        return Ok(None);
    };
    let auth = match state.core.authenticate(token, client).await {
        Ok(auth) if auth.app_id.as_deref() == Some(WEB_APP_ID) => auth,
        Ok(_) | Err(Error::InvalidToken) => return Ok(None),
        Err(e) => return Err(e),
    };
    // An archived account is signed out, whatever its browser still holds.
    Ok(state
        .core
        .user(&auth.user_id)
        .await?
        .filter(|user| user.role != tessera_proto::ServerRole::ArchivedUser)
        .map(|user| Session { auth, user }))
}

/// The CSRF token for `binding` ("session:<token id>" or "browser:<cookie>").
fn csrf_mac(state: &AppState, binding: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&state.csrf_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"tessera csrf v1\0");
    mac.update(binding.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The browser cookie that binds forms shown before sign-in, if the browser has one.
fn browser_id<'a>(state: &AppState, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, state.cookies.csrf()).filter(|v| v.len() == 32)
}

/// The CSRF token for a form, and the cookie to set if the browser needs one: bound to the
/// session when there is one, else to the browser cookie.
pub(super) fn csrf(
    state: &AppState,
    headers: &HeaderMap,
    session: Option<&Session>,
) -> Result<(String, Vec<String>)> {
    if let Some(session) = session {
        return Ok((
            csrf_mac(state, &format!("session:{}", session.auth.token_id)),
            Vec::new(),
        ));
    }
    match browser_id(state, headers) {
        Some(id) => Ok((csrf_mac(state, &format!("browser:{id}")), Vec::new())),
        None => {
            let id = random_hex(32)?;
            let set = state.cookies.set(state.cookies.csrf(), &id, None);
            Ok((csrf_mac(state, &format!("browser:{id}")), vec![set]))
        }
    }
}

/// Checks a form's CSRF token against the session (forms of a signed-in person) or the browser
/// cookie (sign-in and registration forms).
pub(super) fn check_csrf(
    state: &AppState,
    headers: &HeaderMap,
    fields: &HashMap<String, String>,
    session: Option<&Session>,
) -> Result<()> {
    let expected = match session {
        Some(session) => Some(csrf_mac(
            state,
            &format!("session:{}", session.auth.token_id),
        )),
        None => browser_id(state, headers).map(|id| csrf_mac(state, &format!("browser:{id}"))),
    };
    let sent = fields.get("csrf").map(String::as_str).unwrap_or_default();
    match expected {
        Some(expected) if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) => Ok(()),
        _ => Err(Error::forbidden(
            "This form has expired or was not sent from this site. Go back, reload the page and \
             try again.",
        )),
    }
}

/// The page shown when the rate limits refuse a request to a page.
pub fn rate_limited_page(state: &AppState, error: Error) -> Response {
    let message = match error.retry_after() {
        Some(seconds) => format!(
            "There have been too many attempts from your network. Wait {seconds} seconds, then \
             try again."
        ),
        None => error.public_message(),
    };
    let mut page = error_page(state, wire::status(&error), "Too many attempts", &message);
    if let Some(seconds) = error.retry_after() {
        page.headers_mut().insert(RETRY_AFTER, seconds.into());
    }
    page
}

/// A local path to continue to after signing in; anything else (another origin, `//host`)
/// becomes `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.len() <= 2048
                && !n.chars().any(char::is_control) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(super) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        if let Ok(value) = HeaderValue::from_str(c) {
            headers.append(SET_COOKIE, value);
        }
    }
    response
}

fn login_redirect(next: &str) -> Response {
    if next == "/" {
        // Where sign-in goes anyway.
        return see_other("/authn/login", &[]);
    }
    see_other(&format!("/authn/login?next={}", urlencoded(next)), &[])
}

/// `value` form-urlencoded, for a query parameter.
pub(super) fn urlencoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The sign-in page even for someone signed in (`prompt=login`), then `next`.
fn login_again_redirect(next: &str) -> Response {
    see_other(
        &format!("/authn/login?again=1&next={}", urlencoded(next)),
        &[],
    )
}

/// The request's address without its `prompt` parameter.
fn without_prompt(uri: &axum::http::Uri) -> String {
    let kept: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .filter(|(k, _)| k != "prompt")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    format!("{}?{query}", uri.path())
}

fn error_page(state: &AppState, status: StatusCode, title: &str, message: &str) -> Response {
    let info = state.core.server_info_cached();
    let page = ErrorPage {
        server_name: &info.name,
        title,
        message,
    };
    render(&page, status, &[], None)
}

/// Runs a page or a form for a signed-in person, the one shape every account and settings page
/// has: without a session, to the sign-in page (coming back to `back`); a form must carry the
/// session's CSRF token; a failure becomes an error page.
pub(super) async fn as_signed_in(
    state: &AppState,
    Visit { headers, client }: &Visit,
    form: Option<&HashMap<String, String>>,
    back: &str,
    handler: impl AsyncFnOnce(Session) -> Result<Response>,
) -> Response {
    let result = async {
        let Some(session) = session(state, headers, client).await? else {
            return Ok(login_redirect(back));
        };
        if let Some(fields) = form {
            check_csrf(state, headers, fields, Some(&session))?;
        }
        handler(session).await
    }
    .await;
    page_result(state, result)
}

/// Turns a failed page handler into an error page (never JSON, never a redirect).
pub(super) fn page_result(state: &AppState, result: Result<Response>) -> Response {
    match result {
        Ok(response) => response,
        Err(e) => {
            if e.is_internal() {
                tracing::error!(error = %e, "page failed");
            }
            let status = wire::status(&e);
            let title = match status {
                StatusCode::FORBIDDEN => "Not allowed",
                StatusCode::NOT_FOUND => "Not found",
                s if s.is_server_error() => "Something went wrong",
                _ => "This request cannot be completed",
            };
            error_page(state, status, title, &wire::public_message(&e))
        }
    }
}

/// The name of the app a pending authorization (in `next`) is for.
async fn pending_app_name(state: &AppState, next: &str) -> Option<String> {
    let app_id = next.strip_prefix("/authn/verify/")?.split('/').next()?;
    let app_id = url::form_urlencoded::parse(format!("x={app_id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    state.core.app(&app_id).await.ok().flatten().map(|a| a.name)
}

pub async fn stylesheet() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::STYLESHEET,
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        pages::SCRIPT,
    )
        .into_response()
}

/// The two forms that start a session.
#[derive(Clone, Copy)]
enum Form {
    Login,
    Register,
}

/// Renders the sign-in or registration form, keeping what the person typed (never the password)
/// and showing an error if there is one.
async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    form: Form,
    next: &str,
    typed: &HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let (csrf, cookies) = csrf(state, headers, None)?;
    let app_name = pending_app_name(state, next).await;
    let field = |k: &str| typed.get(k).map(String::as_str).unwrap_or_default();
    let info = state.core.server_info().await;
    let server_name = &info.name;
    Ok(match form {
        Form::Login => {
            let page = Login {
                server_name,
                app_name,
                error,
                csrf: &csrf,
                next,
                email: field("email"),
            };
            render(&page, status, &cookies, None)
        }
        Form::Register => {
            let page = Register {
                server_name,
                app_name,
                error,
                csrf: &csrf,
                next,
                name: field("name"),
                email: field("email"),
                company: field("company"),
                token: field("token"),
            };
            render(&page, status, &cookies, None)
        }
    })
}

/// `GET` of a form: straight on to `next` for someone already signed in.
async fn show_form(
    state: AppState,
    Visit { headers, client }: Visit,
    query: HashMap<String, String>,
    form: Form,
) -> Response {
    let result = async {
        let next = safe_next(query.get("next").map(String::as_str));
        // `again`: an app asked for a fresh sign-in (OpenID Connect's prompt=login).
        let again = matches!(form, Form::Login) && query.contains_key("again");
        if !again && session(&state, &headers, &client).await?.is_some() {
            return Ok(see_other(&next, &[]));
        }
        // An invitation's token in the link is carried into the form; nothing else is.
        let mut typed = HashMap::new();
        if let Some(token) = query.get("token").filter(|t| t.len() <= 128) {
            typed.insert("token".to_owned(), token.clone());
        }
        form_page(&state, &headers, form, &next, &typed, None, StatusCode::OK).await
    }
    .await;
    page_result(&state, result)
}

pub async fn login_page(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    show_form(state, visit, query, Form::Login).await
}

pub async fn register_page(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    show_form(state, visit, query, Form::Register).await
}

/// Starts a web session for `user` and continues to `next`.
async fn signed_in(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
    next: &str,
) -> Result<Response> {
    let token = state.core.issue_session(&user.id, client).await?;
    let cookie = state.cookies.set(
        state.cookies.session(),
        token.expose(),
        Some(SESSION_LIFESPAN / 1000),
    );
    Ok(see_other(next, &[cookie]))
}

pub async fn login_submit(
    State(state): State<AppState>,
    Visit { headers, client }: Visit,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        check_csrf(&state, &headers, &fields, None)?;
        let next = safe_next(fields.get("next").map(String::as_str));
        let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
        let attempt = users::SignIn {
            email: field("email"),
            password: field("password"),
            client: &client,
        };
        match state.core.verify_login(attempt).await {
            Ok(user) => signed_in(&state, &user, &client, &next).await,
            Err(Error::InvalidCredentials) => {
                let error = Some("Wrong email or password.".into());
                let status = StatusCode::UNAUTHORIZED;
                form_page(&state, &headers, Form::Login, &next, &fields, error, status).await
            }
            Err(e @ Error::Forbidden(_)) => {
                let error = Some(e.public_message());
                let status = StatusCode::FORBIDDEN;
                form_page(&state, &headers, Form::Login, &next, &fields, error, status).await
            }
            Err(e @ Error::RateLimited { .. }) => {
                let seconds = e.retry_after().unwrap_or(1);
                let error = Some(format!(
                    "Too many wrong passwords for this account. Wait {seconds} seconds, then try \
                     again."
                ));
                let status = StatusCode::TOO_MANY_REQUESTS;
                let mut page =
                    form_page(&state, &headers, Form::Login, &next, &fields, error, status).await?;
                page.headers_mut().insert(RETRY_AFTER, seconds.into());
                Ok(page)
            }
            Err(e) => Err(e),
        }
    }
    .await;
    page_result(&state, result)
}

pub async fn register_submit(
    State(state): State<AppState>,
    Visit { headers, client }: Visit,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        check_csrf(&state, &headers, &fields, None)?;
        let next = safe_next(fields.get("next").map(String::as_str));
        let invite = fields.get("token").map(String::as_str);
        match state.core.register(&fields, invite, &client).await {
            Ok(user) => signed_in(&state, &user, &client, &next).await,
            Err(Error::UserInput(message)) => {
                let error = Some(message.into_owned());
                let status = StatusCode::BAD_REQUEST;
                form_page(
                    &state,
                    &headers,
                    Form::Register,
                    &next,
                    &fields,
                    error,
                    status,
                )
                .await
            }
            Err(e) => Err(e),
        }
    }
    .await;
    page_result(&state, result)
}

/// What an authorization request asks for, once checked.
/// The sign-in request of the path, or the error page that says what is wrong with it (before
/// anything else, so a broken link never redirects anywhere).
async fn authorization(
    state: &AppState,
    app_id: &str,
    challenge: &str,
    query: &HashMap<String, String>,
) -> Result<AuthorizationRequest, Response> {
    let method = query.get("code_challenge_method").map(String::as_str);
    let client_state = query.get("state").map(String::as_str);
    match state
        .core
        .authorization_request(app_id, challenge, method, client_state)
        .await
    {
        Ok(request) => Ok(request),
        Err(e) => Err(broken_request_page(state, e)),
    }
}

/// The page for a sign-in request that cannot go on: an unknown app, a broken link.
fn broken_request_page(state: &AppState, e: Error) -> Response {
    match e {
        e @ Error::NotFound { .. } => error_page(
            state,
            StatusCode::NOT_FOUND,
            "Unknown app",
            &e.public_message(),
        ),
        e @ Error::UserInput(_) => error_page(
            state,
            StatusCode::BAD_REQUEST,
            "This sign-in link is broken",
            &e.public_message(),
        ),
        e => page_result(state, Err(e)),
    }
}

/// The CSP `form-action` source that lets the consent form's redirect reach the app.
fn form_target(redirect_url: &str) -> Option<String> {
    let url = Url::parse(redirect_url).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

pub async fn consent_page(
    State(state): State<AppState>,
    visit: Visit,
    OriginalUri(uri): OriginalUri,
    Path((app_id, challenge)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match authorization(&state, &app_id, &challenge, &query).await {
        Ok(request) => show_consent(&state, &visit, &uri, &request).await,
        Err(page) => page,
    }
}

pub async fn consent_submit(
    State(state): State<AppState>,
    visit: Visit,
    OriginalUri(uri): OriginalUri,
    Path((app_id, challenge)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    Fields(fields): Fields,
) -> Response {
    match authorization(&state, &app_id, &challenge, &query).await {
        Ok(request) => answer_consent(&state, &visit, &uri, &request, &fields).await,
        Err(page) => page,
    }
}

/// `GET /oauth/authorize`: the standard authorization request, on the same consent page.
pub async fn oauth_authorize_page(
    State(state): State<AppState>,
    visit: Visit,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match standard_authorization(&state, &params).await {
        Ok(request) => show_consent(&state, &visit, &uri, &request).await,
        Err(page) => page,
    }
}

/// `POST /oauth/authorize`: the consent form's answer to a standard request.
pub async fn oauth_authorize_submit(
    State(state): State<AppState>,
    visit: Visit,
    OriginalUri(uri): OriginalUri,
    Query(params): Query<HashMap<String, String>>,
    Fields(fields): Fields,
) -> Response {
    match standard_authorization(&state, &params).await {
        Ok(request) => answer_consent(&state, &visit, &uri, &request, &fields).await,
        Err(page) => page,
    }
}

async fn standard_authorization(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<AuthorizationRequest, Response> {
    match state
        .core
        .standard_authorization_request(params, &state.public_url)
        .await
    {
        Ok(request) => Ok(request),
        Err(AuthorizeProblem::Client(redirect)) => Err(see_other(&redirect, &[])),
        Err(AuthorizeProblem::Page(e)) => Err(broken_request_page(state, e)),
    }
}

/// The consent page of a sign-in request (or straight back to the app, for a trusted one).
async fn show_consent(
    state: &AppState,
    visit: &Visit,
    uri: &axum::http::Uri,
    request: &AuthorizationRequest,
) -> Response {
    let here = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| uri.path().to_owned());
    let prompt = request.prompt();
    if prompt.none || prompt.login {
        let signed_in = session(state, &visit.headers, &visit.client).await;
        let signed_in = match signed_in {
            Ok(session) => session.is_some(),
            Err(e) => return page_result(state, Err(e)),
        };
        if prompt.none && !signed_in {
            return page_result(
                state,
                request.login_required().map(|to| see_other(&to, &[])),
            );
        }
        if prompt.login {
            // Sign in again, then come back to the same request without `prompt=login`.
            return login_again_redirect(&without_prompt(uri));
        }
    }
    as_signed_in(state, visit, None, &here, async |session| {
        let registered_by = match state.core.authorize(&session.auth, request).await? {
            Authorization::Permitted { redirect } | Authorization::Declined { redirect } => {
                return Ok(see_other(&redirect, &[]));
            }
            Authorization::ConsentRequested { registered_by } => registered_by,
        };
        let redirect_url = request
            .standard
            .as_ref()
            .map_or(request.app.redirect_url.as_str(), |s| {
                s.redirect_uri.as_str()
            });
        let asked = ConsentAsked {
            app: &request.app,
            registered_by: &registered_by,
            scopes: request.asked_scopes(),
            redirect_url: Some(redirect_url),
            user_code: None,
            action: &here,
        };
        consent_for(state, visit, &session, &asked).await
    })
    .await
}

/// What a consent page asks about.
pub(super) struct ConsentAsked<'a> {
    pub app: &'a crate::model::AppRecord,
    pub registered_by: &'a crate::domain::grants::RegisteredBy,
    pub scopes: tessera_proto::ScopeSet,
    /// Where the browser goes after the answer (none for a device sign-in).
    pub redirect_url: Option<&'a str>,
    /// The code of a device sign-in, shown and posted back.
    pub user_code: Option<&'a str>,
    /// Where the answer is posted.
    pub action: &'a str,
}

/// The consent page: who asks, for what, of whom.
pub(super) async fn consent_for(
    state: &AppState,
    visit: &Visit,
    session: &Session,
    asked: &ConsentAsked<'_>,
) -> Result<Response> {
    let (csrf, cookies) = csrf(state, &visit.headers, Some(session))?;
    let app = asked.app;
    let info = state.core.server_info().await;
    let page = Consent {
        server_name: &info.name,
        app_name: &app.name,
        app_initial: initial(&app.name),
        author: pages::registered_by(asked.registered_by),
        description: app.description.as_deref(),
        logo: app.logo.as_deref(),
        user_name: &session.user.name,
        user_email: &session.user.email,
        user_initial: initial(&session.user.name),
        scopes: asked
            .scopes
            .iter()
            .map(|s| (s.name(), s.description()))
            .collect(),
        redirect_url: asked.redirect_url,
        user_code: asked.user_code,
        action: asked.action,
        csrf: &csrf,
    };
    let target = asked.redirect_url.and_then(form_target);
    Ok(render(&page, StatusCode::OK, &cookies, target.as_deref()))
}

/// The person's answer on the consent page: Allow issues the code, Deny tells the app.
async fn answer_consent(
    state: &AppState,
    visit: &Visit,
    uri: &axum::http::Uri,
    request: &AuthorizationRequest,
    fields: &HashMap<String, String>,
) -> Response {
    let result = async {
        let Some(session) = session(state, &visit.headers, &visit.client).await? else {
            let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Ok(login_redirect(here));
        };
        check_csrf(state, &visit.headers, fields, Some(&session))?;
        match fields.get("decision").map(String::as_str) {
            Some("allow") => {
                let redirect = state.core.approve(&session.auth, request).await?;
                Ok(see_other(&redirect, &[]))
            }
            Some("deny") => Ok(see_other(&request.denied()?, &[])),
            _ => Err(Error::user_input("Choose Allow or Deny.")),
        }
    }
    .await;
    page_result(state, result)
}

pub async fn home(State(state): State<AppState>, visit: Visit) -> Response {
    as_signed_in(&state, &visit, None, "/", async |session| {
        let apps = state
            .core
            .apps_to_review(&session.user.id)
            .await?
            .into_iter()
            .map(|a| (a.id.into(), a.name, a.description.unwrap_or_default()))
            .collect();
        let invitations = state
            .core
            .my_invites(&session.auth)
            .await?
            .into_iter()
            .map(|p| InvitationItem {
                project_id: p.project.id.to_string(),
                project_name: p.project.name.clone(),
                inviter: p
                    .inviter
                    .as_ref()
                    .map_or("Someone".to_owned(), |u| u.name.clone()),
                role: role_label(p.invite.role),
                token: p.invite.token.clone(),
            })
            .collect();
        let projects = state
            .core
            .user_projects(
                &session.user.id,
                &Default::default(),
                &crate::model::PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .await?
            .items
            .into_iter()
            .map(|(p, role)| (p.name, role_label(role)))
            .collect();
        let sent = state
            .core
            .sent_invites(&session.auth)
            .await?
            .into_iter()
            .map(|p| SentItem {
                project_name: p.project.name.clone(),
                invitee: p.title(),
                role: role_label(p.invite.role),
                link: match &p.invite.user_id {
                    Some(_) => format!("{}/", state.public_url),
                    None => format!(
                        "{}/authn/register?token={}",
                        state.public_url, p.invite.token
                    ),
                },
            })
            .collect();
        let (csrf, cookies) = csrf(&state, &visit.headers, Some(&session))?;
        let info = state.core.server_info().await;
        let page = Home {
            server_name: &info.name,
            user_name: &session.user.name,
            user_email: &session.user.email,
            user_initial: initial(&session.user.name),
            apps,
            invitations,
            projects,
            sent,
            csrf: &csrf,
        };
        Ok(render(&page, StatusCode::OK, &cookies, None))
    })
    .await
}

pub async fn logout(
    State(state): State<AppState>,
    Visit { headers, client }: Visit,
    Fields(fields): Fields,
) -> Response {
    let result = async {
        if let Some(session) = session(&state, &headers, &client).await? {
            check_csrf(&state, &headers, &fields, Some(&session))?;
            state.core.end_session(&session.auth).await?;
        }
        let next = safe_next(fields.get("next").map(String::as_str));
        let clear = state.cookies.clear(state.cookies.session());
        Ok(see_other(&next, &[clear]))
    }
    .await;
    page_result(&state, result)
}

/// A project role as a person reads it.
fn role_label(role: tessera_proto::StreamRole) -> String {
    match role {
        tessera_proto::StreamRole::Owner => "owner",
        tessera_proto::StreamRole::Contributor => "contributor",
        tessera_proto::StreamRole::Reviewer => "reviewer",
    }
    .to_owned()
}

/// Accepts or declines an invitation from the account page.
pub async fn answer_invite(
    State(state): State<AppState>,
    visit: Visit,
    Path((project_id, answer)): Path<(String, String)>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(&state, &visit, Some(&fields), "/", async |session| {
        let accept = match answer.as_str() {
            "accept" => true,
            "decline" => false,
            _ => return Err(Error::user_input("Choose Accept or Decline.")),
        };
        let token = fields.get("token").map(String::as_str).unwrap_or_default();
        state
            .core
            .use_invite(&session.auth, &project_id, token, accept)
            .await?;
        Ok(see_other("/", &[]))
    })
    .await
}

pub async fn revoke_app(
    State(state): State<AppState>,
    visit: Visit,
    Path(app_id): Path<String>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(&state, &visit, Some(&fields), "/", async |session| {
        state.core.revoke_access(&session.auth, &app_id).await?;
        // Back where the form was: the account page or Settings → Authorized Apps.
        let next = safe_next(fields.get("next").map(String::as_str));
        Ok(see_other(&next, &[]))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(
            safe_next(Some("/authn/verify/sca/abc")),
            "/authn/verify/sca/abc"
        );
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/a\nb")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn form_targets() {
        assert_eq!(
            form_target("http://localhost:29363").as_deref(),
            Some("http://localhost:29363")
        );
        assert_eq!(
            form_target("https://a.example/cb?x=1").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            form_target("speckle://account").as_deref(),
            Some("speckle:")
        );
    }
}
