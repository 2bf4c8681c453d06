//! The settings pages (`/settings/…`): Developer → Access Tokens and Apps. Each handler reads the session,
//! checks the form's CSRF token, calls the core once and renders; the token rules are the
//! core's (the same ones `apiTokenCreate`, `apiTokenRevoke` and `apiTokenRegenerate` apply).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use tessera_proto::{Scope, ScopeSet, ServerRole};
use time::OffsetDateTime;
use time::macros::format_description;

use super::body::Fields;
use super::cookies::cookie;
use super::pages::{Session, Visit, as_signed_in, csrf, see_other};
use crate::AppState;
use crate::domain::activity::{device, parse_kinds};
use crate::domain::apps::AppInput;
use crate::domain::paging;
use crate::domain::tokens::PatRequest;
use crate::domain::users::ProfileInput;
use crate::error::Error;
use crate::model::{ActivityKind, TokenListing};
use crate::pages::{
    ActivityItem, ActivityPage, AppForm, AppPage, Apps, AuthorizedApps, Chrome, GrantItem,
    ProfilePage, SessionItem, SessionsPage, TokenItem, Tokens, initial, registered_by, render,
    scope_list,
};
use tessera_core::error::Result;

const DAY: i64 = 24 * 3600 * 1000;
/// Lines of the access log per page.
const ACTIVITY_PAGE: i64 = 50;
/// Lifespans this long or longer are shown as "never".
const FOREVER: i64 = 50 * 365 * DAY;

pub(super) fn date(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(format_description!("[year]-[month]-[day]")).ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The link to the next page of a list at `path`, keeping its filter (when not empty).
pub(super) fn older_link(
    path: &str,
    (key, value): (&str, &str),
    next: Option<&crate::model::Cursor>,
) -> Option<String> {
    let cursor = next?;
    let mut link = url::form_urlencoded::Serializer::new(String::new());
    if !value.is_empty() {
        link.append_pair(key, value);
    }
    link.append_pair("cursor", &paging::encode(cursor));
    Some(format!("{path}?{}", link.finish()))
}

/// A moment as the pages show it, to the minute, in UTC.
pub(super) fn moment(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The avatar menu, sidebar and CSRF token of a settings page, and the cookies that go with it.
pub(super) fn chrome<'a>(
    state: &AppState,
    headers: &HeaderMap,
    session: &'a Session,
    current: &'static str,
) -> Result<(Chrome<'a>, Vec<String>)> {
    let (csrf, cookies) = csrf(state, headers, Some(session))?;
    let chrome = Chrome {
        user_name: &session.user.name,
        user_initial: initial(&session.user.name),
        csrf,
        current,
        admin: session.user.role == ServerRole::Admin,
    };
    Ok((chrome, cookies))
}

fn item(t: TokenListing, now: i64) -> TokenItem {
    let expires_at = t.created_at.saturating_add(t.lifespan);
    TokenItem {
        id: t.id.to_string(),
        scopes: scope_list(t.scopes),
        created: date(t.created_at),
        last_used: if t.last_used <= t.created_at {
            "never used".to_owned()
        } else {
            date(t.last_used)
        },
        expires: if t.lifespan >= FOREVER {
            "never".to_owned()
        } else {
            date(expires_at)
        },
        expiring: t.lifespan < FOREVER && expires_at.saturating_sub(now) <= 7 * DAY,
        name: t.name,
        last_chars: t.last_chars,
    }
}

/// The scopes a new token may have, grouped by resource: what the session holds, registered on
/// this server, except `tokens:write` (a token cannot mint tokens).
fn scope_groups(held: ScopeSet, admin: bool) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let mut groups: Vec<(String, Vec<(&'static str, &'static str)>)> = Vec::new();
    // `tokens:introspect` only works for administrators: nobody else is offered it.
    let offered = |s: &Scope| *s != Scope::TokensWrite && (admin || *s != Scope::TokensIntrospect);
    for scope in held.iter().filter(offered) {
        let resource = scope.name().split(':').next().unwrap_or_default();
        let title = match resource {
            "streams" => "Projects",
            "profile" => "Your profile",
            "users" => "Other users",
            "apps" => "Apps",
            "tokens" => "Tokens",
            "server" => "Server",
            other => other,
        }
        .to_owned();
        match groups.iter_mut().find(|(t, _)| *t == title) {
            Some((_, scopes)) => scopes.push((scope.name(), scope.description())),
            None => groups.push((title, vec![(scope.name(), scope.description())])),
        }
    }
    groups
}

/// How long a new token waits in its cookie for the page that shows it.
const SHOWN_FOR_SECONDS: i64 = 120;

/// After creating or regenerating, the page is fetched again (a reload then repeats nothing);
/// the new token rides in a short-lived HttpOnly cookie and is shown once.
fn show_once(state: &AppState, token: &str) -> Response {
    let cookie = state
        .cookies
        .set(state.cookies.new_token(), token, Some(SHOWN_FOR_SECONDS));
    see_other("/settings/tokens", &[cookie])
}

/// The access tokens page. With `show_new`, a token created a moment ago (carried in its cookie
/// by [`show_once`]) is shown this once, if it is one of this person's; the cookie is cleared
/// whenever it is there.
async fn tokens_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    show_new: bool,
    error: Option<String>,
    name: &str,
    status: StatusCode,
) -> Result<Response> {
    let now = state.now();
    let listed = state.core.personal_tokens(&session.user.id).await?;
    let carried = cookie(headers, state.cookies.new_token());
    let new_token = carried
        .filter(|_| show_new)
        .filter(|t| t.len() == 42 && listed.iter().any(|l| t.starts_with(l.id.as_str())))
        .map(str::to_owned);
    let tokens = listed.into_iter().map(|t| item(t, now)).collect();
    let (chrome, mut cookies) = chrome(state, headers, session, "tokens")?;
    if carried.is_some() {
        cookies.push(state.cookies.clear(state.cookies.new_token()));
    }
    let info = state.core.server_info().await;
    let page = Tokens {
        server_name: &info.name,
        chrome,
        tokens,
        scope_groups: scope_groups(session.auth.scopes, session.user.role == ServerRole::Admin),
        new_token,
        error,
        name,
    };
    Ok(render(&page, status, &cookies, None))
}

/// `GET /settings`: the settings area starts at the access tokens.
pub async fn settings() -> Response {
    see_other("/settings/tokens", &[])
}

/// `GET /profile`: the profile settings.
pub async fn profile_redirect() -> Response {
    see_other("/settings/profile", &[])
}

pub async fn tokens(State(state): State<AppState>, visit: Visit) -> Response {
    as_signed_in(&state, &visit, None, "/settings/tokens", async |session| {
        tokens_page(
            &state,
            &visit.headers,
            &session,
            true,
            None,
            "",
            StatusCode::OK,
        )
        .await
    })
    .await
}

/// The form's scope checkboxes (`scope:<name>`) and expiry, as `apiTokenCreate` takes them.
fn request(fields: &HashMap<String, String>) -> PatRequest {
    let scopes = fields
        .keys()
        .filter_map(|k| k.strip_prefix("scope:"))
        .map(str::to_owned)
        .collect();
    let lifespan = match fields.get("expiry").map(String::as_str) {
        Some("never") => None,
        Some(days) => Some(days.parse::<i64>().unwrap_or(30).clamp(1, 365) * DAY),
        None => Some(30 * DAY),
    };
    PatRequest {
        name: fields.get("name").cloned().unwrap_or_default(),
        scopes,
        lifespan,
        limit_resources: None,
    }
}

pub async fn create_token(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/tokens",
        async |session| {
            let name = fields.get("name").cloned().unwrap_or_default();
            match state
                .core
                .create_personal_token(&session.auth, request(&fields))
                .await
            {
                Ok(token) => Ok(show_once(&state, token.expose())),
                // A rule of token creation: say it above the form, keeping what was typed.
                Err(e @ (Error::TokenCreate(_) | Error::UserInput(_))) => {
                    let error = Some(e.public_message());
                    let status = StatusCode::BAD_REQUEST;
                    tokens_page(
                        &state,
                        &visit.headers,
                        &session,
                        false,
                        error,
                        &name,
                        status,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
}

pub async fn token_action(
    State(state): State<AppState>,
    visit: Visit,
    Path((id, action)): Path<(String, String)>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/tokens",
        async |session| {
            match action.as_str() {
                "revoke" => {
                    // The core revokes only the caller's own tokens.
                    state.core.revoke(&session.auth, &id).await?;
                    Ok(see_other("/settings/tokens", &[]))
                }
                "regenerate" => {
                    let token = state.core.regenerate_token(&session.auth, &id).await?;
                    Ok(show_once(&state, token.expose()))
                }
                _ => Err(Error::user_input("Choose Regenerate or Revoke.")),
            }
        },
    )
    .await
}

/// The scopes an app may ask for, ticked as `chosen` says.
fn app_scope_choices(chosen: ScopeSet) -> Vec<(&'static str, &'static str, bool)> {
    ScopeSet::registered()
        .iter()
        .map(|s| (s.name(), s.description(), chosen.contains(s)))
        .collect()
}

fn chosen_scopes(fields: &HashMap<String, String>) -> Vec<String> {
    fields
        .keys()
        .filter_map(|k| k.strip_prefix("scope:"))
        .map(str::to_owned)
        .collect()
}

fn app_input(fields: &HashMap<String, String>) -> AppInput {
    let text = |k: &str| fields.get(k).cloned().filter(|v| !v.trim().is_empty());
    AppInput {
        name: fields.get("name").cloned().unwrap_or_default(),
        description: text("description"),
        terms_and_conditions_link: text("termsAndConditionsLink"),
        logo: text("logo"),
        public: None,
        // An unticked checkbox is not sent: the form always says what it wants.
        confidential: Some(fields.contains_key("confidential")),
        redirect_url: fields.get("redirectUrl").cloned().unwrap_or_default(),
        scopes: chosen_scopes(fields),
    }
}

fn typed_form(fields: &HashMap<String, String>) -> AppForm {
    let field = |k: &str| fields.get(k).cloned().unwrap_or_default();
    AppForm {
        name: field("name"),
        description: field("description"),
        redirect_url: field("redirectUrl"),
        logo: field("logo"),
        terms: field("termsAndConditionsLink"),
        confidential: fields.contains_key("confidential"),
    }
}

fn typed_scopes(fields: &HashMap<String, String>) -> ScopeSet {
    chosen_scopes(fields)
        .iter()
        .filter_map(|n| Scope::from_name(n))
        .collect()
}

async fn apps_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    fields: Option<&HashMap<String, String>>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let apps = state
        .core
        .apps_by_author(&session.user.id)
        .await?
        .into_iter()
        .map(|a| (a.id.to_string(), a.name, a.redirect_url))
        .collect();
    let (chrome, cookies) = chrome(state, headers, session, "apps")?;
    let info = state.core.server_info().await;
    let page = Apps {
        server_name: &info.name,
        chrome,
        apps,
        form: fields.map(typed_form).unwrap_or_default(),
        scopes: app_scope_choices(fields.map(typed_scopes).unwrap_or(ScopeSet::EMPTY)),
        error,
    };
    Ok(render(&page, status, &cookies, None))
}

pub async fn apps(State(state): State<AppState>, visit: Visit) -> Response {
    as_signed_in(&state, &visit, None, "/settings/apps", async |session| {
        apps_page(&state, &visit.headers, &session, None, None, StatusCode::OK).await
    })
    .await
}

pub async fn create_app(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/apps",
        async |session| match state
            .core
            .create_app(&session.auth, app_input(&fields))
            .await
        {
            Ok(app) => Ok(see_other(&format!("/settings/apps/{}", app.id), &[])),
            Err(e @ Error::UserInput(_)) => {
                let (error, status) = (Some(e.public_message()), StatusCode::BAD_REQUEST);
                apps_page(
                    &state,
                    &visit.headers,
                    &session,
                    Some(&fields),
                    error,
                    status,
                )
                .await
            }
            Err(e) => Err(e),
        },
    )
    .await
}

async fn app_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    id: &str,
    typed: Option<&HashMap<String, String>>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response> {
    let (app, users) = state.core.managed_app(&session.auth, id).await?;
    let form = match typed {
        Some(fields) => typed_form(fields),
        None => AppForm {
            name: app.name.clone(),
            description: app.description.clone().unwrap_or_default(),
            redirect_url: app.redirect_url.clone(),
            logo: app.logo.clone().unwrap_or_default(),
            terms: app.terms_and_conditions_link.clone().unwrap_or_default(),
            confidential: app.confidential,
        },
    };
    let chosen = typed.map(typed_scopes).unwrap_or(app.scopes);
    let (chrome, cookies) = chrome(state, headers, session, "apps")?;
    let info = state.core.server_info().await;
    let page = AppPage {
        server_name: &info.name,
        chrome,
        app_id: app.id.to_string(),
        app_name: app.name,
        secret: app.secret,
        users,
        form,
        scopes: app_scope_choices(chosen),
        error,
    };
    Ok(render(&page, status, &cookies, None))
}

pub async fn app(State(state): State<AppState>, visit: Visit, Path(id): Path<String>) -> Response {
    as_signed_in(&state, &visit, None, "/settings/apps", async |session| {
        app_page(
            &state,
            &visit.headers,
            &session,
            &id,
            None,
            None,
            StatusCode::OK,
        )
        .await
    })
    .await
}

pub async fn update_app(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/apps",
        async |session| match state
            .core
            .update_app(&session.auth, &id, app_input(&fields))
            .await
        {
            Ok(()) => Ok(see_other(&format!("/settings/apps/{id}"), &[])),
            Err(e @ Error::UserInput(_)) => {
                let (error, status) = (Some(e.public_message()), StatusCode::BAD_REQUEST);
                app_page(
                    &state,
                    &visit.headers,
                    &session,
                    &id,
                    Some(&fields),
                    error,
                    status,
                )
                .await
            }
            Err(e) => Err(e),
        },
    )
    .await
}

pub async fn app_action(
    State(state): State<AppState>,
    visit: Visit,
    Path((id, action)): Path<(String, String)>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/apps",
        async |session| match action.as_str() {
            "secret" => {
                state.core.regenerate_secret(&session.auth, &id).await?;
                Ok(see_other(&format!("/settings/apps/{id}"), &[]))
            }
            "delete" => {
                state.core.delete_app(&session.auth, &id).await?;
                Ok(see_other("/settings/apps", &[]))
            }
            _ => Err(Error::user_input("Choose Regenerate secret or Delete.")),
        },
    )
    .await
}

pub async fn authorized_apps(State(state): State<AppState>, visit: Visit) -> Response {
    as_signed_in(
        &state,
        &visit,
        None,
        "/settings/authorized-apps",
        async |session| {
            let grants = state
                .core
                .app_grants(&session.auth)
                .await?
                .into_iter()
                .map(|(grant, author)| GrantItem {
                    id: grant.app.id.to_string(),
                    author: registered_by(&author),
                    scopes: scope_list(grant.scopes),
                    authorized: date(grant.authorized_at),
                    last_used: if grant.last_used <= grant.authorized_at {
                        "not since".to_owned()
                    } else {
                        date(grant.last_used)
                    },
                    name: grant.app.name,
                })
                .collect();
            let (chrome, cookies) = chrome(&state, &visit.headers, &session, "authorized")?;
            let info = state.core.server_info().await;
            let page = AuthorizedApps {
                server_name: &info.name,
                chrome,
                grants,
            };
            Ok(render(&page, StatusCode::OK, &cookies, None))
        },
    )
    .await
}

/// What the profile page reports after a form.
#[derive(Default)]
struct ProfileNotes {
    saved: bool,
    error: Option<String>,
    password_changed: bool,
    password_error: Option<String>,
}

async fn profile_page(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    typed: Option<&HashMap<String, String>>,
    notes: ProfileNotes,
    status: StatusCode,
) -> Result<Response> {
    let user = &session.user;
    let field = |key: &str, stored: &Option<String>| match typed {
        Some(fields) => fields.get(key).cloned().unwrap_or_default(),
        None => stored.clone().unwrap_or_default(),
    };
    let (chrome, cookies) = chrome(state, headers, session, "profile")?;
    let info = state.core.server_info().await;
    let page = ProfilePage {
        server_name: &info.name,
        chrome,
        email: &user.email,
        name: field("name", &Some(user.name.clone())),
        company: field("company", &user.company),
        bio: field("bio", &user.bio),
        avatar: field("avatar", &user.avatar),
        saved: notes.saved,
        error: notes.error,
        password_changed: notes.password_changed,
        password_error: notes.password_error,
    };
    Ok(render(&page, status, &cookies, None))
}

pub async fn profile(
    State(state): State<AppState>,
    visit: Visit,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    as_signed_in(&state, &visit, None, "/settings/profile", async |session| {
        let notes = ProfileNotes {
            saved: query.contains_key("saved"),
            password_changed: query.contains_key("password"),
            ..Default::default()
        };
        profile_page(
            &state,
            &visit.headers,
            &session,
            None,
            notes,
            StatusCode::OK,
        )
        .await
    })
    .await
}

pub async fn update_profile(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/profile",
        async |session| {
            let input = ProfileInput {
                name: fields.get("name").cloned(),
                company: fields.get("company").cloned(),
                bio: fields.get("bio").cloned(),
                avatar: fields.get("avatar").cloned(),
            };
            match state.core.update_own_profile(&session.auth, input).await {
                Ok(_) => Ok(see_other("/settings/profile?saved", &[])),
                Err(e @ Error::UserInput(_)) => {
                    let notes = ProfileNotes {
                        error: Some(e.public_message()),
                        ..Default::default()
                    };
                    let status = StatusCode::BAD_REQUEST;
                    profile_page(
                        &state,
                        &visit.headers,
                        &session,
                        Some(&fields),
                        notes,
                        status,
                    )
                    .await
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
}

pub async fn change_password(
    State(state): State<AppState>,
    visit: Visit,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/profile",
        async |session| {
            let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
            match state
                .core
                .change_password(&session.auth, field("current"), field("password"))
                .await
            {
                Ok(()) => Ok(see_other("/settings/profile?password#password", &[])),
                Err(e @ Error::UserInput(_)) => {
                    let notes = ProfileNotes {
                        password_error: Some(e.public_message()),
                        ..Default::default()
                    };
                    let status = StatusCode::BAD_REQUEST;
                    profile_page(&state, &visit.headers, &session, None, notes, status).await
                }
                Err(e) => Err(e),
            }
        },
    )
    .await
}

async fn sessions_page(state: &AppState, visit: &Visit, session: &Session) -> Result<Response> {
    let views = state.core.sessions(&session.auth).await?;
    let others = views.iter().any(|v| !v.current);
    let sessions = views
        .into_iter()
        .map(|v| SessionItem {
            id: v.session.token_id.to_string(),
            device: device(v.session.user_agent.as_deref()),
            address: v.session.address.unwrap_or_else(|| "unknown".to_owned()),
            signed_in: moment(v.session.created_at),
            last_active: if v.session.last_used <= v.session.created_at {
                moment(v.session.created_at)
            } else {
                moment(v.session.last_used)
            },
            current: v.current,
        })
        .collect();
    let (chrome, cookies) = chrome(state, &visit.headers, session, "sessions")?;
    let info = state.core.server_info().await;
    let page = SessionsPage {
        server_name: &info.name,
        chrome,
        sessions,
        others,
    };
    Ok(render(&page, StatusCode::OK, &cookies, None))
}

/// `GET /settings/sessions`: where the person is signed in.
pub async fn sessions(State(state): State<AppState>, visit: Visit) -> Response {
    as_signed_in(
        &state,
        &visit,
        None,
        "/settings/sessions",
        async |session| sessions_page(&state, &visit, &session).await,
    )
    .await
}

/// `POST /settings/sessions/{id}/sign-out` and `/settings/sessions/sign-out-others`.
pub async fn end_session(
    State(state): State<AppState>,
    visit: Visit,
    id: Option<Path<String>>,
    Fields(fields): Fields,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        Some(&fields),
        "/settings/sessions",
        async |session| {
            let one = id.as_ref().map(|Path(id)| id.as_str());
            state.core.end_sessions(&session.auth, one).await?;
            Ok(see_other("/settings/sessions", &[]))
        },
    )
    .await
}

/// `GET /settings/activity[?kind=…&cursor=…]`: the access log, a page at a time.
pub async fn activity(
    State(state): State<AppState>,
    visit: Visit,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    as_signed_in(
        &state,
        &visit,
        None,
        "/settings/activity",
        async |session| {
            let kind = query.get("kind").cloned().unwrap_or_default();
            let kinds = if kind.is_empty() {
                Vec::new()
            } else {
                parse_kinds(std::slice::from_ref(&kind))?
            };
            let cursor = query.get("cursor").map(String::as_str);
            let request = paging::request(ACTIVITY_PAGE, cursor)?;
            let page = state.core.activity(&session.auth, kinds, &request).await?;
            let next = older_link("/settings/activity", ("kind", &kind), page.next.as_ref());
            let lines = page
                .items
                .into_iter()
                .map(|l| ActivityItem {
                    when: moment(l.created_at),
                    label: l.kind.label(),
                    subject: l.subject.unwrap_or_default(),
                    address: l.address.unwrap_or_default(),
                    device: l
                        .user_agent
                        .as_deref()
                        .map(|ua| device(Some(ua)))
                        .unwrap_or_default(),
                })
                .collect();
            let (chrome, cookies) = chrome(&state, &visit.headers, &session, "activity")?;
            let info = state.core.server_info().await;
            let page = ActivityPage {
                server_name: &info.name,
                chrome,
                lines,
                kinds: ActivityKind::ALL
                    .iter()
                    .map(|k| (k.as_str(), k.label()))
                    .collect(),
                kind,
                total: page.total,
                next,
                retention_days: state.core.activity_retention_days(),
            };
            Ok(render(&page, StatusCode::OK, &cookies, None))
        },
    )
    .await
}
